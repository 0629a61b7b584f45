"""The network model of DESIGN section 2, in numpy: each activation and loss beside its derivative.

Everything here accepts real or complex arrays, so the same forward serves the delta rule,
finite differences and the complex-step derivative. Branches (relu's kink, the stable forms
of sigmoid and softplus) are taken on the real part, which keeps each function analytic in a
neighbourhood of every real point away from a kink.

    A[0] = X;   Z[l] = A[l-1] @ W[l].T + b[l];   A[l] = h_l(Z[l]);   Y = A[L]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import conventions

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


def leaky_relu(z, slope=LEAKY_SLOPE):
    """h(z) = z if z > 0 else slope z (slope 0.01 unless the name says, e.g. leaky_relu:0.2)."""
    return np.where(_real(z) > 0, z, slope * z)


def d_leaky_relu(z, slope=LEAKY_SLOPE):
    """h'(z) = 1 if z > 0 else slope (the convention: the slope at the kink z = 0)."""
    return np.where(_real(z) > 0, 1.0, slope).astype(np.result_type(z, 1.0))


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
PARAMETERISED = ("leaky_relu",)  # names that may carry a parameter: leaky_relu:SLOPE (DESIGN 2a)


def split_name(name: str) -> tuple[str, float | None]:
    """("leaky_relu", 0.2) for "leaky_relu:0.2", (name, None) for a plain name; ValueError
    saying the fix for a parameter that is not a finite number >= 0, or on another name."""
    base, sep, arg = str(name).partition(":")
    if not sep:
        return base, None
    if base not in PARAMETERISED:
        raise ValueError(f"activation {name!r}: only {', '.join(PARAMETERISED)} takes a parameter (leaky_relu:0.2)")
    try:
        slope = float(arg)
    except ValueError:
        slope = math.nan
    if not math.isfinite(slope) or slope < 0:
        raise ValueError(f"activation {name!r}: the slope after ':' must be a number >= 0, e.g. leaky_relu:0.2")
    return base, slope


def activation_name(name: str) -> str:
    """The canonical spelling: "leaky_relu" for slope 0.01, "leaky_relu:0.2" (repr of the
    float) otherwise, the name itself for the rest. ValueError for an unknown name."""
    base, slope = split_name(name)
    if base not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)} or leaky_relu:SLOPE")
    return base if slope is None or slope == LEAKY_SLOPE else f"{base}:{slope!r}"


def base_name(name: str) -> str:
    """The activation without its parameter: "leaky_relu" for "leaky_relu:0.2"."""
    return str(name).partition(":")[0]


def activation(name: str) -> Activation:
    """The Activation a name stands for, its parameter included (leaky_relu:0.2). A plain name
    is looked up in ACTIVATIONS each time (so the table stays the one truth)."""
    if ":" not in str(name):
        try:
            return ACTIVATIONS[name]
        except KeyError:
            raise ValueError(
                f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)} or leaky_relu:SLOPE"
            ) from None
    return _parameterised(name)


@functools.lru_cache(maxsize=64)
def _parameterised(name: str) -> Activation:
    base, slope = split_name(name)
    if base not in ACTIVATIONS or slope is None:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)} or leaky_relu:SLOPE")
    return Activation(
        functools.partial(leaky_relu, slope=slope),
        functools.partial(d_leaky_relu, slope=slope),
        (min(slope, 1.0), max(slope, 1.0)),
    )


# --- losses (DESIGN section 2a): each kind's term l(y, t) beside dl/dy --------------------
#
# J = factor * sum_n sum_k l(y_nk, t_nk) / D + penalty, D = (n_L if over_outputs is mean) *
# (B if over_batch is mean) (reference_impls/conventions.py). Dividing by the integer D, not
# multiplying by 1/D, keeps every preset's value bit for bit what it was.


def squared(Y, T):
    """l = (y - t)^2."""
    return (Y - T) ** 2


def d_squared(Y, T):
    """dl/dy = 2 (y - t)."""
    return 2 * (Y - T)


def bce_terms(Y, T):
    """l = -[t log y + (1 - t) log(1 - y)]."""
    return -(T * np.log(Y) + (1 - T) * np.log(1 - Y))


def d_bce_terms(Y, T):
    """dl/dy = (y - t) / (y (1 - y))."""
    return (Y - T) / (Y * (1 - Y))


def ce_terms(Y, T):
    """l = -t log y."""
    return -(T * np.log(Y))


def d_ce_terms(Y, T):
    """dl/dy = -t / y."""
    return -T / Y


class Loss(NamedTuple):
    l: Callable
    dl: Callable


LOSS_KINDS = {
    "squared": Loss(squared, d_squared),
    "bce": Loss(bce_terms, d_bce_terms),
    "ce": Loss(ce_terms, d_ce_terms),
}
LOSS_NAMES = tuple(conventions.PRESETS)  # the presets; any convention of section 2a works
# Kinds defined for one output activation only (DESIGN section 2); squared fits any output.
OUTPUT_FOR_KIND = {"bce": "sigmoid", "ce": "softmax"}


def convention(spec) -> conventions.Convention:
    """The loss convention of `spec` (its `loss`: a preset name or a convention's spelling)."""
    return conventions.parse(spec.loss)


def needs_output(loss):
    """The output activation a loss is defined on, or None when any fits."""
    return OUTPUT_FOR_KIND.get(conventions.parse(loss).kind)


def compatible(output_activation, loss_name):
    """Whether `loss_name` is defined on an output layer with `output_activation`."""
    need = needs_output(loss_name)
    return need is None or output_activation == need


def divisor(spec, shape):
    """D / factor: the data term is sum_n sum_k l / divisor for outputs of `shape` (..., B, n_L)."""
    conv = convention(spec)
    B, n = shape[-2], shape[-1]
    D = (n if conv.over_outputs == "mean" else 1) * (B if conv.over_batch == "mean" else 1)
    return D if conv.factor == 1 else D / conv.factor


def data_loss(Y, T, spec):
    """The data term of J from the output Y."""
    return np.sum(LOSS_KINDS[convention(spec).kind].l(Y, T)) / divisor(spec, Y.shape)


def d_loss(Y, T, spec):
    """dJ/dY of the data term."""
    kind = convention(spec).kind
    if kind == "ce":  # -t / (y D): one rounding fewer than (-t / y) / D
        return -T / (Y * divisor(spec, Y.shape))
    return LOSS_KINDS[kind].dl(Y, T) / divisor(spec, Y.shape)


class _LossOnly(NamedTuple):
    loss: str


class PresetLoss(NamedTuple):
    J: Callable
    dJ: Callable


def _preset_table():
    """{preset: Loss(J, dJ)} with J(Y, T) and dJ/dY(Y, T): the five presets as functions of the
    output alone, for code that wants them by name."""
    table = {}
    for name in LOSS_NAMES:
        spec = _LossOnly(name)
        table[name] = PresetLoss(lambda Y, T, s=spec: data_loss(Y, T, s), lambda Y, T, s=spec: d_loss(Y, T, s))
    return table


LOSSES = _preset_table()  # preset -> PresetLoss(J, dJ/dY)


# Output activation and loss kind pairs whose J and delta are computed from Z, not from Y: the
# same functions, in the forms that stay finite when the output saturates.
FUSED = {("sigmoid", "bce"), ("softmax", "ce")}


def fused(spec):
    """Whether the output layer and loss of `spec` are one of the FUSED pairs."""
    return (spec.activations[-1], convention(spec).kind) in FUSED


def fused_terms(ZL, T, kind):
    """l from the output pre-activation: t softplus(-z) + (1-t) softplus(z) for bce,
    -t log_softmax(z) for ce."""
    if kind == "bce":
        return T * softplus(-ZL) + (1 - T) * softplus(ZL)
    return -(T * log_softmax(ZL))


def fused_loss(ZL, T, spec):
    """The data term of J from the output pre-activation (a FUSED pair)."""
    return np.sum(fused_terms(ZL, T, convention(spec).kind)) / divisor(spec, ZL.shape)


def fused_delta(YL, T, spec):
    """dJ/dZ[L] of a FUSED pair: (y - t) / divisor for sigmoid+bce; (y sum_k t_k - t) / divisor
    for softmax+ce."""
    if convention(spec).kind == "bce":
        return (YL - T) / divisor(spec, YL.shape)
    return (YL * np.sum(T, axis=-1, keepdims=True) - T) / divisor(spec, YL.shape)


# --- the L2 penalty: l2_coef * sum ||W||^2 (+ ||b||^2), and its gradient 2 l2_coef W ----------


def penalty(params, spec, batch):
    """l2 * c * (sum_l ||W[l]||^2 [+ ||b[l]||^2]) [/ B]; 0.0 without a penalty."""
    conv = convention(spec)
    if not conv.l2:
        return 0.0
    total = sum(np.sum(W * W) + (np.sum(b * b) if conv.l2_bias else 0) for W, b in params)
    return conventions.l2_coef(conv, batch) * total


def penalty_slope(spec, batch):
    """(2 coef, whether b is penalized too): the penalty's gradient is 2 coef W; None without one."""
    conv = convention(spec)
    if not conv.l2:
        return None
    return 2 * conventions.l2_coef(conv, batch), conv.l2_bias


def d_penalty(params, spec, batch):
    """[(2 coef W, 2 coef b or 0), ...]; None without a penalty."""
    slope = penalty_slope(spec, batch)
    if slope is None:
        return None
    c, bias = slope
    return [(c * W, c * b if bias else np.zeros_like(b)) for W, b in params]


def with_penalty(grads, params, spec, batch):
    """grads plus the penalty's gradient (grads unchanged without a penalty)."""
    dP = d_penalty(params, spec, batch)
    if dP is None:
        return grads
    return [(dW + pW, db + pb) for (dW, db), (pW, pb) in zip(grads, dP)]


# --- the forward pass ---------------------------------------------------------------------


def forward(params, X, spec):
    """Return (Z, A): Z[l] for l = 1..L (Z[0] is None) and A[l] for l = 0..L."""
    Z, A = [None], [X]
    for (W, b), name in zip(params, spec.activations):
        Z.append(A[-1] @ W.T + b)
        A.append(activation(name).h(Z[-1]))
    return Z, A


def loss_from_output(ZL, YL, T, spec):
    """The data term of J for the output pre-activation ZL and activation YL."""
    if fused(spec):
        return fused_loss(ZL, T, spec)
    return data_loss(YL, T, spec)


def clipped_loss(params, X, T, spec, eps):
    """J with the output probabilities clipped to [eps, 1 - eps] before every log, as code that
    guards log(0) computes it (bce and ce kinds; the squared kind takes no log)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        Z, A = forward(params, X, spec)
        Y = np.clip(A[-1], eps, 1 - eps)
        return data_loss(Y, T, spec) + penalty(params, spec, len(X))


def loss(params, X, T, spec):
    """J(params) on the batch X with targets T: the data term plus the penalty."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        Z, A = forward(params, X, spec)
        return loss_from_output(Z[-1], A[-1], T, spec) + penalty(params, spec, len(X))
