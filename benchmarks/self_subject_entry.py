"""Self mode's benchmark subject (benchmarks/self_mode.py) with a planted bug no hypothesis
explains: benchmarks/self_subject_correct.py with ONE entry of layer 1's dW wrong (1.5 times the
right one at [3, 5]), so self mode's per-entry fallback must find that entry.

    backprop-verify check benchmarks/self_subject_entry.py --against self --sizes 64,128,64,10 --batch 16
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
    delta = 2 * (Y - T)  # dJ/dY
    if spec.activations[-1] == "tanh":
        delta = delta * (1 - Y**2)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ params[l][0]) * (1 - As[l] ** 2)  # hidden layers are tanh
    grads = grads[::-1]
    grads[0][0][3, 5] *= 1.5  # BUG: one entry of dW1
    return J, grads
