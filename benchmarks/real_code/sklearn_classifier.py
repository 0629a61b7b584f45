"""scikit-learn's MLPClassifier on several classes (a softmax output), checked through its own
`_backprop` (sklearn/neural_network/_multilayer_perceptron.py; losses in
sklearn/neural_network/_base.py).

The loss value is `log_loss`: -np.average(xlogy(y_true, clip(y_prob, eps, 1 - eps)), axis=0).sum()
with eps = np.finfo(y_prob.dtype).eps, plus (0.5 * alpha) * sum ||W||^2 / n_samples. The gradient
is that of the unclipped loss: deltas[last] = activations[-1] - y (softmax with cross-entropy),
coef_grads = (A^T delta + alpha W) / n_samples. `fit` hands `_backprop` the label binarizer's
one-hot rows (`self._label_binarizer.transform(y).astype(bool)`).
"""

from sklearn.neural_network import MLPClassifier

ALPHA = 1e-2  # MLPClassifier(alpha=...), the L2 strength
LOSS = {
    "kind": "ce",  # log_loss: -xlogy(y_true, y_prob)
    "over_outputs": "sum",  # log_loss: .sum() over classes
    "over_batch": "mean",  # log_loss: np.average(..., axis=0); the gradient: / sw_sum = n_samples
    "l2": ALPHA,
    "l2_factor": 0.5,  # loss += (0.5 * self.alpha) * values / sw_sum
    "l2_over_batch": "mean",  # ... / sw_sum, and coef_grads[layer] /= sw_sum
    "l2_bias": False,  # values sums np.dot(s, s) over self.coefs_ only
}
TARGETS = "one_hot"  # _validate_input: self._label_binarizer.transform(y): one 1 per row for multiclass
LAYOUT = "in_out"  # coefs_[i] is (n_i, n_{i+1})
SKLEARN_NAME = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}  # ACTIVATIONS
SUPPORTED_ACTIVATIONS = (*SKLEARN_NAME, "softmax")


def supports(spec):  # one `activation` for every hidden layer; softmax out (_initialize: y_type_ == "multiclass")
    return set(spec.activations[:-1]) <= set(SKLEARN_NAME) and len(set(spec.activations[:-1])) <= 1


def gradients(params, X, T, spec):
    net = MLPClassifier(activation=SKLEARN_NAME[(*spec.activations[:-1], "relu")[0]], alpha=ALPHA)
    net.coefs_, net.intercepts_ = [W for W, _ in params], [b for _, b in params]
    net.n_layers_, net.out_activation_ = len(params) + 1, "softmax"  # as _initialize sets them
    loss, dW, db = net._backprop(X, T, None, [X, *params], [*params], [*params], [*params])  # lists it fills in
    return loss, list(zip(dW, db))
