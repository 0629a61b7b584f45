"""scikit-learn's MLPRegressor, checked through its own `_backprop`
(sklearn/neural_network/_multilayer_perceptron.py; losses in sklearn/neural_network/_base.py).

The gradient `_backprop` returns: deltas[last] = activations[-1] - y at the identity output, then
coef_grads = (A^T delta + alpha W) / n_samples and intercept_grads = sum(delta) / n_samples
(`_compute_loss_grad`): the gradient of 1/(2B) sum_n sum_k (y - t)^2 + alpha/(2B) sum ||W||^2,
biases not penalised. The loss VALUE it returns is `squared_loss`, 0.5 * mean over samples, then
`.mean()` over outputs: n_outputs times smaller than the function its gradient belongs to when
there is more than one output (scikit-learn issue #8349, open). LOSS declares the gradient's
convention, so the returned value is expected to fail on multi-output cases.
"""

from sklearn.neural_network import MLPRegressor

ALPHA = 1e-2  # MLPRegressor(alpha=...), the L2 strength
LOSS = {
    "kind": "squared",
    "factor": 0.5,  # squared_loss: 0.5 * ...; delta = y - t
    "over_outputs": "sum",  # the gradient: delta is not divided by n_outputs (the value's .mean() is #8349)
    "over_batch": "mean",  # squared_loss: np.average(..., axis=0); the gradient: / sw_sum = n_samples
    "l2": ALPHA,
    "l2_factor": 0.5,  # loss += (0.5 * self.alpha) * values / sw_sum
    "l2_over_batch": "mean",  # ... / sw_sum, and coef_grads[layer] /= sw_sum
    "l2_bias": False,  # values sums np.dot(s, s) over self.coefs_ only; intercept_grads get no alpha term
}
LAYOUT = "in_out"  # coefs_[i] is (n_i, n_{i+1}): activations[i + 1] = activations[i] @ coefs_[i] + intercepts_[i]
SKLEARN_NAME = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}  # ACTIVATIONS
SUPPORTED_ACTIVATIONS = tuple(SKLEARN_NAME)


def supports(spec):  # one `activation` for every hidden layer (ACTIVATIONS[self.activation]), an identity output
    return len(set(spec.activations[:-1])) <= 1 and spec.activations[-1] == "identity"


def gradients(params, X, T, spec):
    net = MLPRegressor(activation=SKLEARN_NAME[(*spec.activations[:-1], "relu")[0]], alpha=ALPHA)
    net.coefs_, net.intercepts_ = [W for W, _ in params], [b for _, b in params]
    net.n_layers_, net.out_activation_ = len(params) + 1, "identity"  # as _initialize sets them
    loss, dW, db = net._backprop(X, T, None, [X, *params], [*params], [*params], [*params])  # lists it fills in
    return loss, list(zip(dW, db))
