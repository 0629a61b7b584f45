"""Planted implementations for the diagnosis tests: one backprop written the way the examples
write theirs (h' from the activation, y(1 - y) and 1 - y^2; no code shared with
reference_impls), with a knob for each classic bug. Each planted bug is a small function of
(params, X, T, spec), so it can be judged directly or checked in process by verifier.check.
"""

from __future__ import annotations

import numpy as np


def h(name, Z):
    if name == "sigmoid":
        return 0.5 * (1 + np.tanh(0.5 * Z))
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
    return Z


def h_prime(name, Z, A):
    """The right h', as code usually writes it."""
    if name == "sigmoid":
        return A * (1 - A)
    if name == "tanh":
        return 1 - A**2
    if name == "relu":
        return (Z > 0) * 1.0
    if name == "leaky_relu":
        return np.where(Z > 0, 1.0, 0.01)
    if name == "softplus":
        return 0.5 * (1 + np.tanh(0.5 * Z))
    return np.ones_like(Z)


def dJdY(loss, Y, T):
    if loss == "sse":
        return 2 * (Y - T)
    if loss == "half_sse":
        return Y - T
    if loss == "mse":
        return 2 * (Y - T) / Y.size
    if loss == "bce":
        return (Y - T) / (Y * (1 - Y)) / Y.size
    return -T / Y / Y.shape[0]  # softmax_ce


def backprop(params, X, T, spec, *, hp=None, hp_W=None, hp_b=None, dJ=dJdY, out=None, softmax_diag=False):
    """[(dW, db), ...]. hp(l, name, Z, A): the h' used at layer l (default the right one);
    hp_W / hp_b = (l, f): dW (db) of layer l computed with h' f(name, Z, A) instead, the
    propagated delta keeping hp's; out(Y, T, Z): another output delta; softmax_diag: the
    diagonal s(1 - s) instead of the softmax Jacobian."""
    hp = hp or (lambda l, name, Z, A: h_prime(name, Z, A))
    As, Zs = [X], [None]
    for (W, b), name in zip(params, spec.activations):
        Zs.append(As[-1] @ W.T + b)
        As.append(h(name, Zs[-1]))
    Y, L = As[-1], len(params)
    act, loss, P = spec.activations[-1], spec.loss, None
    if out is not None:
        delta = out(Y, T, Zs[-1])
    elif (act, loss) == ("sigmoid", "bce"):
        delta = (Y - T) / Y.size
    elif (act, loss) == ("softmax", "softmax_ce"):
        delta = (Y * T.sum(axis=1, keepdims=True) - T) / Y.shape[0]
    elif act == "softmax":
        G = dJ(loss, Y, T)
        delta = G * Y * (1 - Y) if softmax_diag else Y * (G - (G * Y).sum(axis=1, keepdims=True))
    else:
        P = dJ(loss, Y, T)
        delta = P * hp(L, act, Zs[-1], Y)
    grads = []
    for l in range(L, 0, -1):
        name = spec.activations[l - 1]
        dW_delta, db_delta = delta, delta
        if hp_W and hp_W[0] == l:
            dW_delta = P * hp_W[1](name, Zs[l], As[l])
        if hp_b and hp_b[0] == l:
            db_delta = P * hp_b[1](name, Zs[l], As[l])
        grads.append((dW_delta.T @ As[l - 1], db_delta.sum(axis=0)))
        if l > 1:
            P = delta @ params[l - 1][0]
            delta = P * hp(l - 1, spec.activations[l - 2], Zs[l - 1], As[l - 1])
    return grads[::-1]


def at(layers, f):
    """hp: the h' f(name, Z, A) at `layers`, the right one elsewhere."""
    return lambda l, name, Z, A: f(name, Z, A) if l in layers else h_prime(name, Z, A)


def one(name, Z, A):
    return np.ones_like(Z)


def mapped(f):
    """A bug applied to the whole right gradient: f(array) for every tensor."""
    return lambda *a: [(f(dW), f(db)) for dW, db in backprop(*a)]
