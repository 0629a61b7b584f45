"""Classic bug: the factor 2 of d/dy (y - t)^2 forgotten (SSE, not half SSE).

backprop-verify check examples/bug_forgot_factor_2.py
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
    dJdY = Y - T  # BUG: d/dy (y - t)^2 is 2 (y - t)
    delta = dJdY * h_prime(spec.activations[-1], Y)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ params[l][0]) * h_prime(spec.activations[l - 1], As[l])
    return grads[::-1]
