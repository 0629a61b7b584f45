"""A correct backprop written the way the notes derive it: one sample, one unit at a time.

a_j = sum_i w_ji z_i + b_j          z_j = h(a_j)
delta_k = dE/dy_k * h'(a_k)          (output units)
delta_j = h'(a_j) * sum_k w_kj delta_k   (hidden units)
dE/dw_ji = delta_j z_i, summed over the samples n (E = sum_n E_n)
"""

import math

import numpy as np

SUPPORTED_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu")
SUPPORTED_LOSSES = ("sse", "half_sse", "mse")


def h(name, a):
    if name == "sigmoid":
        return 1 / (1 + math.exp(-a)) if a >= 0 else math.exp(a) / (1 + math.exp(a))
    if name == "tanh":
        return math.tanh(a)
    if name == "relu":
        return max(a, 0.0)
    return a


def h_prime(name, a, z):
    if name == "sigmoid":
        return z * (1 - z)
    if name == "tanh":
        return 1 - z * z
    if name == "relu":
        return 1.0 if a > 0 else 0.0
    return 1.0


def gradients(params, X, T, spec):
    L = len(params)
    dW = [np.zeros_like(W) for W, _ in params]
    db = [np.zeros_like(b) for _, b in params]
    E = 0.0
    N, K = len(X), len(T[0])
    scale = {"sse": 2.0, "half_sse": 1.0, "mse": 2.0 / (N * K)}[spec.loss]
    for n in range(N):
        z = [list(X[n])]  # z[l][i]: output of unit i in layer l
        a = [None]
        for l in range(L):
            W, b = params[l]
            a.append([sum(W[j][i] * z[l][i] for i in range(len(z[l]))) + b[j] for j in range(len(b))])
            z.append([h(spec.activations[l], aj) for aj in a[l + 1]])
        y = z[L]
        E += sum((y[k] - T[n][k]) ** 2 for k in range(K))
        delta = [scale * (y[k] - T[n][k]) * h_prime(spec.activations[L - 1], a[L][k], y[k]) for k in range(K)]
        for l in range(L, 0, -1):
            for j in range(len(delta)):
                db[l - 1][j] += delta[j]
                for i in range(len(z[l - 1])):
                    dW[l - 1][j][i] += delta[j] * z[l - 1][i]
            if l > 1:
                W = params[l - 1][0]
                delta = [
                    h_prime(spec.activations[l - 2], a[l - 1][j], z[l - 1][j])
                    * sum(W[k][j] * delta[k] for k in range(len(delta)))
                    for j in range(len(z[l - 1]))
                ]
    E *= {"sse": 1.0, "half_sse": 0.5, "mse": 1.0 / (N * K)}[spec.loss]
    return E, list(zip(dW, db))
