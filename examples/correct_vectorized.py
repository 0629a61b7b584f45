"""A correct backprop, vectorized over the batch: every activation and loss of the model.

backprop-verify check examples/correct_vectorized.py
"""

import numpy as np


def _act(name, Z):
    if name == "identity":
        return Z
    if name == "sigmoid":
        return 0.5 * (1 + np.tanh(0.5 * Z))  # = 1 / (1 + e^-z), without overflow
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, 0.01 * Z)
    if name == "softplus":
        return np.logaddexp(0, Z)
    if name == "softmax":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    raise ValueError(name)


def _dact(name, Z, A):
    """h'(z), from z and from a = h(z)."""
    if name == "identity":
        return np.ones_like(Z)
    if name == "sigmoid":
        return A * (1 - A)
    if name == "tanh":
        return 1 - A**2
    if name == "relu":
        return (Z > 0).astype(Z.dtype)
    if name == "leaky_relu":
        return np.where(Z > 0, 1.0, 0.01)
    if name == "softplus":
        return 0.5 * (1 + np.tanh(0.5 * Z))
    raise ValueError(name)


def gradients(params, X, T, spec):
    Zs, As = [], [X]
    for (W, b), name in zip(params, spec.activations):
        Zs.append(As[-1] @ W.T + b)
        As.append(_act(name, Zs[-1]))
    Y, Z, out = As[-1], Zs[-1], spec.activations[-1]
    if spec.loss == "sse":
        J, dY = np.sum((Y - T) ** 2), 2 * (Y - T)
    elif spec.loss == "half_sse":
        J, dY = 0.5 * np.sum((Y - T) ** 2), Y - T
    elif spec.loss == "mse":
        J, dY = np.mean((Y - T) ** 2), 2 * (Y - T) / Y.size
    elif spec.loss == "bce":  # sigmoid output: dJ/dz = (y - t) / N
        J = np.mean(T * np.logaddexp(0, -Z) + (1 - T) * np.logaddexp(0, Z))
        delta = (Y - T) / Y.size
    else:  # softmax_ce with a softmax output: dJ/dz = (y - t) / B
        logY = Z - Z.max(axis=1, keepdims=True)
        logY = logY - np.log(np.exp(logY).sum(axis=1, keepdims=True))
        J = -np.sum(T * logY) / Y.shape[0]
        delta = (Y * T.sum(axis=1, keepdims=True) - T) / Y.shape[0]
    if spec.loss in ("sse", "half_sse", "mse"):
        if out == "softmax":
            delta = Y * (dY - np.sum(dY * Y, axis=1, keepdims=True))
        else:
            delta = dY * _dact(out, Z, Y)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ params[l][0]) * _dact(spec.activations[l - 1], Zs[l - 1], As[l])
    return J, grads[::-1]


def train_step(params, X, T, spec, lr):
    _, grads = gradients(params, X, T, spec)
    return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)]
