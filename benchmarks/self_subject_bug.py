"""Self mode's benchmark subject (benchmarks/self_mode.py), with the planted bug: benchmarks/subject_bug.py
with its own forward and loss, `loss(params, X, T, spec)` = sum (y - t)^2, for `--against self`.

    backprop-verify check benchmarks/self_subject_bug.py --against self --sizes 64,128,64,10 --batch 16
"""

import numpy as np

SUPPORTED_ACTIVATIONS = ("tanh", "identity")
SUPPORTED_LOSSES = ("sse",)


def loss(params, X, T, spec):
    """J = sum_n sum_k (y_nk - t_nk)^2 of the MLP: tanh hidden layers, the output's activation."""
    A = X
    for (W, b), name in zip(params, spec.activations):
        Z = A @ W.T + b
        A = np.tanh(Z) if name == "tanh" else Z
    return np.sum((A - T) ** 2)


def gradients(params, X, T, spec):
    As = [X]
    for (W, b), name in zip(params, spec.activations):
        Z = As[-1] @ W.T + b
        As.append(np.tanh(Z) if name == "tanh" else Z)
    Y = As[-1]
    J = np.sum((Y - T) ** 2)
    delta = Y - T  # BUG: dJ/dY = 2 (Y - T)
    if spec.activations[-1] == "tanh":
        delta = delta * (1 - Y**2)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ params[l][0]) * (1 - As[l] ** 2)  # hidden layers are tanh
    return J, grads[::-1]
