"""A second forward pass and loss, written apart from reference_impls/model.py: the loss value
the delta rule's forward gives is cross-checked against this one on every case, in
microseconds, without JAX.

Independent on purpose (DESIGN section 8): nothing here imports model.py, the delta rule or the
harness, and nothing is shared in formulation either:

- units are columns, as in the notes' z_j = sum_i w_ji x_i: the state is a (n_l, B) matrix,
  a[l] = W[l] x[l-1] + b[l] (model.py keeps samples as rows, Z = A W^T + b);
- activations by other identities: sigmoid(z) = exp(-log(1 + e^-z)) by logaddexp, tanh from
  expm1, softplus as logaddexp(0, z), relu and leaky_relu as a maximum;
- a loss is its convention (DESIGN section 2a: kind, factor, reduction over outputs and over
  the batch), not five formulas; bce and cross-entropy from the output pre-activation as
  softplus(z) - t z and t (logsumexp(z) - z), not from t log y.

    loss_value(params, X, T, spec) -> J (a float)
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONVENTIONS", "loss_value"]

LEAKY_SLOPE = 0.01

# name -> (kind, factor, reduction over the outputs k, reduction over the batch n)
CONVENTIONS = {
    "sse": ("squared", 1.0, "sum", "sum"),
    "half_sse": ("squared", 0.5, "sum", "sum"),
    "mse": ("squared", 1.0, "mean", "mean"),
    "bce": ("bce", 1.0, "mean", "mean"),
    "softmax_ce": ("ce", 1.0, "sum", "mean"),
}


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


UNITS = {
    "identity": lambda a: a,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "relu": lambda a: np.maximum(a, 0.0),
    "leaky_relu": lambda a: np.maximum(a, LEAKY_SLOPE * a),
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


def loss_value(params, X, T, spec) -> float:
    """J for `params` on the batch X (B, n_0) with targets T (B, n_L), by the column forward."""
    kind, factor, over_outputs, over_batch = CONVENTIONS[spec.loss]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        x = np.asarray(X, dtype=np.float64).T
        a = x
        for (W, b), name in zip(params, spec.activations):
            a = np.asarray(W) @ x + np.asarray(b)[:, None]
            x = UNITS[name](a)
        l = _per_entry(kind, a, x, np.asarray(T, dtype=np.float64).T, spec.activations[-1])
        return float(factor * _reduce(_reduce(l, over_outputs, 0), over_batch, 0))
