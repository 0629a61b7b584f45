"""Classic bug: the error signal t - y instead of y - t, so every gradient has the wrong sign.

backprop-verify check examples/bug_sign_flip.py
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
    dJdY = 2 * (T - Y)  # BUG: dJ/dy = 2 (y - t)
    delta = dJdY * h_prime(spec.activations[-1], Y)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ params[l][0]) * h_prime(spec.activations[l - 1], As[l])
    return grads[::-1]
