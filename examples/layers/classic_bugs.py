"""A course's layers with the classic bugs (tanh alone is right), each marked BUG; the correct
version is examples/layers/correct.py. CS231n's convention:

NAME_forward(x, *params) -> (out, cache);  NAME_backward(dout, cache) -> (dx, *dparams)
NAME_loss(x, y) -> (loss, dx)
"""

import numpy as np

LAYERS = {"batchnorm": {"x": "N,D", "gamma": "D", "beta": "D", "kwargs": {"eps": 1e-5}}}


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dw = x.reshape(x.shape[0], -1).T @ dout
    dx = (dout @ dw.T).reshape(x.shape)  # BUG: the wrong matrix (dw, not w)
    db = dout.mean(axis=0)  # BUG: not summed over the batch
    return dx, dw, db


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache < 0)  # BUG: the mask on the wrong side


def sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    return out, x  # BUG: the backward takes s(1 - s) of the input, not of the output


def sigmoid_backward(dout, cache):
    s = cache
    return dout * s * (1 - s)


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    return dout * (1 - cache**2)


def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    N = x.shape[0]
    loss = -log_probs[np.arange(N), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(N), y] -= 1
    return loss, dx  # BUG: not divided by N


def svm_loss(x, y):
    N = x.shape[0]
    correct = x[np.arange(N), y][:, None]
    margins = np.maximum(0, x - correct + 1.0)
    margins[np.arange(N), y] = 0
    loss = margins.sum() / N
    counts = (x - correct + 0.5 > 0).astype(float)  # BUG: a margin of 0.5, the loss's is 1
    counts[np.arange(N), y] = -counts.sum(axis=1)
    return loss, counts / N


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def batchnorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    N = dout.shape[0]
    dbeta = dout.mean(axis=0)  # BUG: the mean, not the sum
    dgamma = (dout * xhat)[0]  # BUG: the first sample only, not summed
    dxhat = dout * gamma
    dx = (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (N * np.sqrt(var + eps))
    return dx, dgamma, dbeta
