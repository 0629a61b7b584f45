"""Classic bug: hidden deltas without h'(a_j): delta_j = sum_k w_kj delta_k.

backprop-verify check examples/bug_missing_activation_derivative.py
"""

import numpy as np

SUPPORTED_ACTIVATIONS = ("sigmoid", "tanh")
SUPPORTED_LOSSES = ("sse",)


def h(name, Z):
    return 0.5 * (1 + np.tanh(0.5 * Z)) if name == "sigmoid" else np.tanh(Z)


def h_prime(name, A):
    return A * (1 - A) if name == "sigmoid" else 1 - A**2


def gradients(params, X, T, spec):
    As = [X]
    for (W, b), name in zip(params, spec.activations):
        As.append(h(name, As[-1] @ W.T + b))
    Y = As[-1]
    dJdY = 2 * (Y - T)  # J = sum (y - t)^2
    delta = dJdY * h_prime(spec.activations[-1], Y)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = delta @ params[l][0]  # BUG: the notes' (6) multiplies by h'(a_j)
    return grads[::-1]
