"""scikit-learn's MLPClassifier on binary or multilabel targets (a logistic output), checked
through its own `_backprop` (sklearn/neural_network/_multilayer_perceptron.py; losses in
sklearn/neural_network/_base.py).

With out_activation_ == "logistic", `_backprop` switches log_loss to `binary_log_loss`:
-np.average(xlogy(t, y) + xlogy(1 - t, 1 - y), axis=0).sum() on y clipped to [eps, 1 - eps]:
summed over outputs, averaged over samples (not the bce preset's mean over both), plus
(0.5 * alpha) * sum ||W||^2 / n_samples. The gradient: deltas[last] = activations[-1] - y,
exact for any t in [0, 1], so targets are soft (fit itself hands it 0/1 indicator columns).
"""

from sklearn.neural_network import MLPClassifier

ALPHA = 1e-2  # MLPClassifier(alpha=...), the L2 strength
LOSS = {
    "kind": "bce",  # binary_log_loss: xlogy(t, y) + xlogy(1 - t, 1 - y)
    "over_outputs": "sum",  # binary_log_loss: .sum() over outputs
    "over_batch": "mean",  # binary_log_loss: np.average(..., axis=0); the gradient: / sw_sum = n_samples
    "l2": ALPHA,
    "l2_factor": 0.5,  # loss += (0.5 * self.alpha) * values / sw_sum
    "l2_over_batch": "mean",  # ... / sw_sum, and coef_grads[layer] /= sw_sum
    "l2_bias": False,  # values sums np.dot(s, s) over self.coefs_ only
}
LAYOUT = "in_out"  # coefs_[i] is (n_i, n_{i+1})
SKLEARN_NAME = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}  # ACTIVATIONS
SUPPORTED_ACTIVATIONS = tuple(SKLEARN_NAME)


def supports(spec):  # one `activation` for every hidden layer; a logistic output (_initialize, not multiclass)
    return len(set(spec.activations[:-1])) <= 1 and spec.activations[-1] == "sigmoid"


def gradients(params, X, T, spec):
    net = MLPClassifier(activation=SKLEARN_NAME[(*spec.activations[:-1], "relu")[0]], alpha=ALPHA)
    net.coefs_, net.intercepts_ = [W for W, _ in params], [b for _, b in params]
    net.n_layers_, net.out_activation_ = len(params) + 1, "logistic"  # as _initialize sets them
    loss, dW, db = net._backprop(X, T, None, [X, *params], [*params], [*params], [*params])  # lists it fills in
    return loss, list(zip(dW, db))
