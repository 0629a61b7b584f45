"""Layer references in the CS231n convention (DESIGN section 3a), in numpy: each forward beside
its exact gradient, so a course's `NAME_forward`/`NAME_backward` pairs and `NAME_loss`
functions can be judged one layer at a time.

    affine:        out = x w + b,  x (N, D), w (D, M), b (M,)
                   dx = dout w^T,  dw = x^T dout,  db = sum_n dout_n
    activations:   out = h(x) elementwise (every hidden activation of reference_impls/model.py)
                   dx = dout * h'(x); at a kink (relu, leaky_relu at x = 0) any h' in [lo, hi]
    softmax_loss:  L = -(1/N) sum_n log softmax(x_n)_{y_n},  dx = (softmax(x) - onehot(y)) / N
    svm_loss:      L = (1/N) sum_n sum_{j != y_n} max(0, x_nj - x_ny_n + 1)
                   dx_nj = [m_nj > 0] / N,  dx_ny_n = -sum_j [m_nj > 0] / N;  at m_nj = 0
                   exactly, any slope in [0, 1] (a kink of the hinge)

Each gradient function returns (centre, radius) pairs: away from a kink the radius is 0 and
the centre is the exact value; at a kink any value in [centre - radius, centre + radius] is a
right (sub)gradient. numpy only; reference_impls/jax_layers.py holds the JAX twins.
"""

from __future__ import annotations

import numpy as np

from . import model

MARGIN = 1.0  # svm_loss's margin, as in CS231n


def affine_forward(x, w, b):
    """out = x w + b (x flattened to (N, D) first, as CS231n does)."""
    return x.reshape(x.shape[0], -1) @ w + b


def affine_grads(x, w, b, dout):
    """[(dx, 0), (dw, 0), (db, 0)]: dx = dout w^T (reshaped as x), dw = x^T dout, db = sum_n dout."""
    x2 = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x2.T @ dout
    db = dout.sum(axis=0)
    return [(dx, np.zeros_like(dx)), (dw, np.zeros_like(dw)), (db, np.zeros_like(db))]


def activation_forward(name, x):
    return model.ACTIVATIONS[name].h(x)


def activation_grads(name, x, dout):
    """[(dx, radius)]: dx = dout h'(x); at x == 0 of a kink, h' anywhere in [lo, hi]."""
    act = model.ACTIVATIONS[name]
    if act.dh is None:
        raise ValueError(f"{name} is not elementwise; it has no layer reference")
    dx = dout * act.dh(x)
    radius = np.zeros_like(dx)
    if act.kink is not None:
        lo, hi = act.kink
        at = x == 0
        dx = np.where(at, dout * (lo + hi) / 2, dx)
        radius = np.where(at, np.abs(dout) * (hi - lo) / 2, 0.0)
    return [(dx, radius)]


def softmax_loss(x, y):
    """(L, [(dx, 0)]) of the mean cross-entropy of softmax(x) against integer labels y."""
    N = x.shape[0]
    logp = model.log_softmax(x)
    loss = -logp[np.arange(N), y].sum() / N
    dx = np.exp(logp)
    dx[np.arange(N), y] -= 1.0
    dx /= N
    return float(loss), [(dx, np.zeros_like(dx))]


def svm_margins(x, y):
    """m_nj = x_nj - x_ny_n + MARGIN for j != y_n, and -inf at j = y_n (never counted)."""
    N = x.shape[0]
    m = x - x[np.arange(N), y][:, None] + MARGIN
    m[np.arange(N), y] = -np.inf
    return m


def svm_loss(x, y):
    """(L, [(dx, radius)]) of the multiclass hinge loss, mean over the batch."""
    N = x.shape[0]
    m = svm_margins(x, y)
    loss = np.maximum(m, 0).sum() / N
    on = (m > 0).astype(float)
    kink = (m == 0).astype(float)
    # at a kink the slope of max(0, m) is anywhere in [0, 1]: centre 1/2, radius 1/2
    slope = on + 0.5 * kink
    dx = slope / N
    dx[np.arange(N), y] = -slope.sum(axis=1) / N
    radius = 0.5 * kink / N
    radius[np.arange(N), y] = 0.5 * kink.sum(axis=1) / N
    return float(loss), [(dx, radius)]


# name -> the names of the forward's parameters after x (DESIGN 3a); loss layers take (x, y)
PAIRS = {"affine": ("w", "b")} | {name: () for name in model.HIDDEN_ACTIVATIONS}
LOSSES = {"softmax_loss": softmax_loss, "svm_loss": svm_loss}


def pair_forward(name, x, *params):
    return affine_forward(x, *params) if name == "affine" else activation_forward(name, x)


def pair_grads(name, x, params, dout):
    """[(centre, radius)] for dx and each parameter of layer `name`, in the backward's order."""
    if name == "affine":
        return affine_grads(x, *params, dout)
    return activation_grads(name, x, dout)
