"""The network model of DESIGN section 2, in numpy: each activation and loss beside its derivative.

Everything here accepts real or complex arrays, so the same forward serves the delta rule,
finite differences and the complex-step derivative. Branches (relu's kink, the stable forms
of sigmoid and softplus) are taken on the real part, which keeps each function analytic in a
neighbourhood of every real point away from a kink.

    A[0] = X;   Z[l] = A[l-1] @ W[l].T + b[l];   A[l] = h_l(Z[l]);   Y = A[L]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01


def _real(z):
    return np.real(z)


def _exp_neg_abs(z):
    """e^{-|z|} continued analytically: e^{-z} where Re z > 0, else e^{z}; never overflows.

    The branch test must be the same `> 0` as in sigmoid and softplus: at exactly Re z = 0 a
    mismatched pair would be the wrong analytic function and flip the complex-step derivative."""
    return np.exp(np.where(_real(z) > 0, -z, z))


# --- activations: h(z) and h'(z), side by side ------------------------------------------


def identity(z):
    """h(z) = z."""
    return z


def d_identity(z):
    """h'(z) = 1."""
    return np.ones_like(z)


def sigmoid(z):
    """h(z) = 1 / (1 + e^{-z}), in the form that cannot overflow on either side."""
    e = _exp_neg_abs(z)
    return np.where(_real(z) > 0, 1 / (1 + e), e / (1 + e))


def d_sigmoid(z):
    """h'(z) = h(z)(1 - h(z)) = e^{-|z|} / (1 + e^{-|z|})^2, accurate when saturated."""
    e = _exp_neg_abs(z)
    return e / (1 + e) ** 2


def tanh(z):
    """h(z) = tanh z."""
    return np.tanh(z)


def d_tanh(z):
    """h'(z) = 1 - tanh^2 z = 4 e^{-2|z|} / (1 + e^{-2|z|})^2, accurate when saturated."""
    e = _exp_neg_abs(2 * z)
    return 4 * e / (1 + e) ** 2


def relu(z):
    """h(z) = max(z, 0)."""
    return np.where(_real(z) > 0, z, 0 * z)


def d_relu(z):
    """h'(z) = 1 if z > 0 else 0 (the convention 0 at the kink z = 0)."""
    return np.where(_real(z) > 0, 1.0, 0.0).astype(np.result_type(z, 1.0))


def leaky_relu(z):
    """h(z) = z if z > 0 else 0.01 z."""
    return np.where(_real(z) > 0, z, LEAKY_SLOPE * z)


def d_leaky_relu(z):
    """h'(z) = 1 if z > 0 else 0.01 (the convention 0.01 at the kink z = 0)."""
    return np.where(_real(z) > 0, 1.0, LEAKY_SLOPE).astype(np.result_type(z, 1.0))


def softplus(z):
    """h(z) = log(1 + e^z) = max(z, 0) + log(1 + e^{-|z|})."""
    return np.where(_real(z) > 0, z, 0 * z) + np.log1p(_exp_neg_abs(z))


def d_softplus(z):
    """h'(z) = sigmoid(z)."""
    return sigmoid(z)


def softmax(Z):
    """h(z)_k = e^{z_k} / sum_m e^{z_m}, row by row (output layer only)."""
    E = np.exp(Z - np.max(_real(Z), axis=-1, keepdims=True))
    return E / np.sum(E, axis=-1, keepdims=True)


def log_softmax(Z):
    """log h(z)_k = z_k - log sum_m e^{z_m}, without forming h."""
    Zs = Z - np.max(_real(Z), axis=-1, keepdims=True)
    return Zs - np.log(np.sum(np.exp(Zs), axis=-1, keepdims=True))


def softmax_vjp(Y, G):
    """G^T times the softmax Jacobian, row by row: y_k (g_k - sum_m g_m y_m)."""
    return Y * (G - np.sum(G * Y, axis=-1, keepdims=True))


class Activation(NamedTuple):
    h: Callable
    dh: Callable | None  # None: not elementwise (softmax), use softmax_vjp
    kink: tuple[float, float] | None  # (lo, hi) of h'(0) for a piecewise-linear kink at 0


ACTIVATIONS = {
    "identity": Activation(identity, d_identity, None),
    "sigmoid": Activation(sigmoid, d_sigmoid, None),
    "tanh": Activation(tanh, d_tanh, None),
    "relu": Activation(relu, d_relu, (0.0, 1.0)),
    "leaky_relu": Activation(leaky_relu, d_leaky_relu, (LEAKY_SLOPE, 1.0)),
    "softplus": Activation(softplus, d_softplus, None),
    "softmax": Activation(softmax, None, None),
}
# The names every other module uses, derived from the table above: softmax only at the output.
OUTPUT_ONLY = ("softmax",)
HIDDEN_ACTIVATIONS = tuple(n for n in ACTIVATIONS if n not in OUTPUT_ONLY)
ACTIVATION_NAMES = tuple(ACTIVATIONS)


# --- losses over the whole batch: J(Y, T) and dJ/dY, side by side -------------------------


def sse(Y, T):
    """J = sum_n sum_k (y_nk - t_nk)^2."""
    return np.sum((Y - T) ** 2)


def d_sse(Y, T):
    """dJ/dy = 2 (y - t)."""
    return 2 * (Y - T)


def half_sse(Y, T):
    """J = 1/2 sum_n sum_k (y_nk - t_nk)^2."""
    return 0.5 * np.sum((Y - T) ** 2)


def d_half_sse(Y, T):
    """dJ/dy = y - t (so delta_k = y_k - t_k for a linear output, the notes' (5))."""
    return Y - T


def mse(Y, T):
    """J = mean over all B*n_L elements of (y - t)^2."""
    return np.sum((Y - T) ** 2) / Y.size


def d_mse(Y, T):
    """dJ/dy = 2 (y - t) / (B n_L)."""
    return 2 * (Y - T) / Y.size


def bce(Y, T):
    """J = mean of -[t log y + (1 - t) log(1 - y)]."""
    return -np.sum(T * np.log(Y) + (1 - T) * np.log(1 - Y)) / Y.size


def d_bce(Y, T):
    """dJ/dy = (y - t) / (y (1 - y)) / (B n_L)."""
    return (Y - T) / (Y * (1 - Y)) / Y.size


def softmax_ce(Y, T):
    """J = -(1/B) sum_n sum_k t_nk log y_nk."""
    return -np.sum(T * np.log(Y)) / Y.shape[0]


def d_softmax_ce(Y, T):
    """dJ/dy = -t / (B y)."""
    return -T / (Y * Y.shape[0])


class Loss(NamedTuple):
    J: Callable
    dJ: Callable


LOSSES = {
    "sse": Loss(sse, d_sse),
    "half_sse": Loss(half_sse, d_half_sse),
    "mse": Loss(mse, d_mse),
    "bce": Loss(bce, d_bce),
    "softmax_ce": Loss(softmax_ce, d_softmax_ce),
}
LOSS_NAMES = tuple(LOSSES)
# Losses defined for one output activation only (DESIGN section 2); the others fit any output.
OUTPUT_FOR_LOSS = {"bce": "sigmoid", "softmax_ce": "softmax"}


def compatible(output_activation, loss_name):
    """Whether `loss_name` is defined on an output layer with `output_activation`."""
    need = OUTPUT_FOR_LOSS.get(loss_name)
    return need is None or output_activation == need


# Output activation and loss pairs whose J and delta are computed from Z, not from Y: the same
# functions, in the forms that stay finite when the output saturates.
FUSED = {("sigmoid", "bce"), ("softmax", "softmax_ce")}


def fused_loss(ZL, T, pair):
    """J from the output pre-activation: bce = mean(t softplus(-z) + (1-t) softplus(z));
    softmax_ce = -(1/B) sum t log_softmax(z)."""
    if pair == ("sigmoid", "bce"):
        return np.sum(T * softplus(-ZL) + (1 - T) * softplus(ZL)) / ZL.size
    return -np.sum(T * log_softmax(ZL)) / ZL.shape[0]


def fused_delta(YL, T, pair):
    """dJ/dZ[L]: (y - t) / (B n_L) for sigmoid+bce; (y sum_k t_k - t) / B for softmax_ce."""
    if pair == ("sigmoid", "bce"):
        return (YL - T) / YL.size
    return (YL * np.sum(T, axis=-1, keepdims=True) - T) / YL.shape[0]


# --- the forward pass ---------------------------------------------------------------------


def forward(params, X, spec):
    """Return (Z, A): Z[l] for l = 1..L (Z[0] is None) and A[l] for l = 0..L."""
    Z, A = [None], [X]
    for (W, b), name in zip(params, spec.activations):
        Z.append(A[-1] @ W.T + b)
        A.append(ACTIVATIONS[name].h(Z[-1]))
    return Z, A


def loss_from_output(ZL, YL, T, spec):
    """J for the output pre-activation ZL and activation YL."""
    pair = (spec.activations[-1], spec.loss)
    if pair in FUSED:
        return fused_loss(ZL, T, pair)
    return LOSSES[spec.loss].J(YL, T)


def loss(params, X, T, spec):
    """J(params) on the batch X with targets T."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        Z, A = forward(params, X, spec)
        return loss_from_output(Z[-1], A[-1], T, spec)
