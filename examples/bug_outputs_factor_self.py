"""A network whose gradient is n_outputs times the gradient of its own loss: the loss it reports
is 1/2 sum over samples of the MEAN over outputs, the gradient that of the SUM over outputs (a
bug a well-known library's MLP regressor has had for years). Model mode with half_sse passes it;
`--against self` fails it with `scale` and the factor n_L.
"""

import numpy as np

SUPPORTED_ACTIVATIONS = ("tanh", "sigmoid", "identity")
SUPPORTED_LOSSES = ("half_sse",)


def _h(name, z):
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    return z


def _dh(name, a):
    if name == "tanh":
        return 1 - a**2
    if name == "sigmoid":
        return a * (1 - a)
    return np.ones_like(a)


def _forward(params, X, spec):
    A = [X]
    for (W, b), name in zip(params, spec.activations):
        A.append(_h(name, A[-1] @ W.T + b))
    return A


def loss(params, X, T, spec):
    Y = _forward(params, X, spec)[-1]
    return 0.5 * ((Y - T) ** 2).mean(axis=1).sum()


def gradients(params, X, T, spec):
    A = _forward(params, X, spec)
    delta = (A[-1] - T) * _dh(spec.activations[-1], A[-1])  # d/dY of 0.5 * SUM over outputs
    grads = []
    for l in range(len(params), 0, -1):
        W, _ = params[l - 1]
        grads.append((delta.T @ A[l - 1], delta.sum(axis=0)))
        if l > 1:
            delta = (delta @ W) * _dh(spec.activations[l - 2], A[l - 1])
    return grads[::-1]
