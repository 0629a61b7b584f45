"""A second forward pass and loss, written apart from reference_impls/model.py: the loss value
the delta rule's forward gives is cross-checked against this one on every case, in
microseconds, without JAX.

Independent on purpose (DESIGN section 8): nothing here imports model.py, the delta rule or the
harness, and nothing is shared in formulation either:

- units are columns, as in the notes' z_j = sum_i w_ji x_i: the state is a (n_l, B) matrix,
  a[l] = W[l] x[l-1] + b[l] (model.py keeps samples as rows, Z = A W^T + b);
- activations by other identities: sigmoid(z) = exp(-log(1 + e^-z)) by logaddexp, tanh from
  expm1, softplus as logaddexp(0, z), relu as a maximum, leaky_relu (any slope) by where;
- a loss is its convention (DESIGN section 2a: kind, factor, reduction over outputs and over
  the batch), not five formulas; bce and cross-entropy from the output pre-activation as
  softplus(z) - t z and t (logsumexp(z) - z), not from t log y.

    loss_value(params, X, T, spec) -> J (a float)
"""

from __future__ import annotations

import numpy as np

from . import conventions

__all__ = ["CONVENTIONS", "loss_value"]

LEAKY_SLOPE = 0.01

# a convention as this module reads it (DESIGN 2a): kind, factor, over_outputs, over_batch
CONVENTIONS = {name: (c.kind, c.factor, c.over_outputs, c.over_batch) for name, c in conventions.PRESETS.items()}


def _sigmoid(a):
    """1 / (1 + e^-a) = exp(-log(1 + e^-a)); logaddexp never overflows."""
    return np.exp(-np.logaddexp(0.0, -a))


def _tanh(a):
    """sign(a) (1 - e^{-2|a|}) / (1 + e^{-2|a|}), the numerator by expm1 (exact near 0)."""
    m = np.abs(a)
    return np.copysign(-np.expm1(-2.0 * m) / (1.0 + np.exp(-2.0 * m)), a)


def _log_softmax_columns(a):
    """log softmax over the units (axis 0) of each sample (column): a - logsumexp(a)."""
    top = np.max(a, axis=0, keepdims=True)
    return a - (top + np.log(np.sum(np.exp(a - top), axis=0, keepdims=True)))


def _leaky_relu(a, slope=LEAKY_SLOPE):
    return np.where(a > 0, a, slope * a)


UNITS = {
    "identity": lambda a: a,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "relu": lambda a: np.maximum(a, 0.0),
    "leaky_relu": _leaky_relu,
    "softplus": lambda a: np.logaddexp(0.0, a),
    "softmax": lambda a: np.exp(_log_softmax_columns(a)),
}


def _per_entry(kind, a, y, t, out):
    """l(y_kn, t_kn) for every output unit k and sample n (columns are samples)."""
    if kind == "squared":
        return (y - t) ** 2
    if kind == "bce":
        if out == "sigmoid":  # -[t log s(a) + (1-t) log(1-s(a))] = log(1 + e^a) - t a
            return np.logaddexp(0.0, a) - t * a
        return -(t * np.log(y) + (1.0 - t) * np.log1p(-y))
    if kind == "ce":
        return -t * (_log_softmax_columns(a) if out == "softmax" else np.log(y))
    raise ValueError(f"unknown loss kind {kind!r}")


def _reduce(x, how, axis):
    return np.sum(x, axis=axis) if how == "sum" else np.mean(x, axis=axis)


def _unit(name):
    """The function of an activation name; leaky_relu:SLOPE carries its slope."""
    base, _, slope = str(name).partition(":")
    if slope:
        return lambda a: UNITS[base](a, float(slope))
    return UNITS[base]


def _targets(T, n_out):
    """Targets as (n_L, B) columns; integer class labels of shape (B,) become one-hot columns."""
    T = np.asarray(T)
    if T.ndim == 1:
        return (np.arange(n_out)[:, None] == T[None, :].astype(np.int64)).astype(np.float64)
    return T.astype(np.float64).T


def loss_value(params, X, T, spec) -> float:
    """J for `params` on the batch X (B, n_0) with targets T (B, n_L), by the column forward: the
    data term of spec.loss's convention, then its L2 term (sum of squares by dot products)."""
    conv = conventions.parse(spec.loss)
    B = np.asarray(X).shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        x = np.asarray(X, dtype=np.float64).T
        a = x
        for (W, b), name in zip(params, spec.activations):
            a = np.asarray(W) @ x + np.asarray(b)[:, None]
            x = _unit(name)(a)
        out = str(spec.activations[-1]).partition(":")[0]
        l = _per_entry(conv.kind, a, x, _targets(T, x.shape[0]), out)
        J = conv.factor * _reduce(_reduce(l, conv.over_outputs, 0), conv.over_batch, 0)
        if conv.l2:
            squares = 0.0
            for W, b in params:
                w = np.ravel(np.asarray(W, dtype=np.float64))
                squares += float(w @ w)
                if conv.l2_bias:
                    v = np.ravel(np.asarray(b, dtype=np.float64))
                    squares += float(v @ v)
            J = J + conv.l2 * conv.l2_factor * squares / (B if conv.l2_over_batch == "mean" else 1)
        return float(J)
