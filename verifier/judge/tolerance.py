"""Per-entry tolerances and kink intervals, from a first-order rounding-error model.

A correct implementation working in a dtype with unit roundoff u computes every forward and
backward quantity with an absolute error of about u times a magnitude that can be propagated
alongside the quantity itself. Writing eQ for that magnitude (so |error of Q| <~ u * eQ):

    eA[0]  = |X|                                    (inputs rounded to the dtype)
    eZ[l]  = 2 |A[l-1]| |W|^T + |b| + eA[l-1] |W|^T  (products, sums and rounded weights)
    eA[l]  = |h'(Z)| eZ[l] + |A[l]| (+ 1 for sigmoid, tanh, softplus: see ABSOLUTE)
    e_delta = e_g |h'(Z)| + |g| (s_h + |h''(Z)| eZ)  (s_h: the rounding of the h' formula)
    e_dW   = e_delta^T |A| + |delta|^T (|A| + eA),   e_db = sum_n (e_delta + |delta|)
    e_g    = (e_delta + |delta|) |W|                  (one layer down)

and the tolerance of an entry is K u e + K n tiny (tiny: the dtype's smallest normal, for
underflow). This is the per-entry error model of DESIGN section 8: nothing is scaled by the
size of a tensor, and the tolerance is reported with every entry it judged.

Kinks: a relu or leaky_relu pre-activation within K u eZ of 0 may fall on either side in a
correct implementation, and at exactly 0 any h' in [lo, hi] is right. The delta rule is run
in centre-radius interval arithmetic with h' = [lo, hi] at those units; every entry whose
radius is positive is a kink entry, and any value inside its interval (plus tolerance) is right.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference_impls import delta_rule, model

from . import lazy

K = 16.0  # safety factor over the first-order bound: summation length, reassociation


class Judgement(NamedTuple):
    """Everything needed to judge a gradient computed in one dtype, for one case."""

    tol: list  # [(tol_W, tol_b), ...] absolute tolerance per entry
    centre: list  # [(c_W, c_b), ...] kink-interval centres (exact delta rule away from kinks)
    radius: list  # [(r_W, r_b), ...] kink-interval radii, 0 where no kink reaches the entry
    loss_tol: float  # absolute tolerance of the loss value
    unit_roundoff: float


def _d2(name, Z, A):
    """|h''(z)|, for the propagation of the pre-activation's error into h'."""
    if name == "sigmoid":
        return np.abs(model.d_sigmoid(Z) * (1 - 2 * A))
    if name == "tanh":
        return np.abs(2 * A * model.d_tanh(Z))
    if name == "softplus":
        return np.abs(model.d_sigmoid(Z))
    return np.zeros_like(Z)


# Activations that common, correct code computes only to an absolute accuracy: forms such as
# 0.5 (1 + tanh(z/2)), log(1 + e^z) or 1 - 2/(e^{2z} + 1) lose every relative digit when the
# unit saturates toward 0, leaving an error of about u (times 1, the size of the "1 +").
ABSOLUTE = {"sigmoid", "tanh", "softplus"}


def _formula_scale(name, A):
    """The magnitude of the rounding error of a textbook h' formula, in units of u; the
    absolute error of A itself (see ABSOLUTE) enters as the 1."""
    if name == "sigmoid":  # y (1 - y)
        return 2 * np.abs(A) + 1
    if name == "tanh":  # 1 - y^2
        return 1 + 3 * A**2
    if name == "softplus":  # sigmoid(z)
        return np.abs(A) + 1
    return np.zeros_like(A)


def _slope(name, Z, band):
    """|h'| bounded over what a correct implementation may use: at a kink unit (|z| <= band)
    either side's slope or any h'(0) in [lo, hi], so the largest |h'| of the interval."""
    act = model.activation(name)
    dh = np.abs(act.dh(Z))
    if act.kink is None:
        return dh
    return np.where(np.abs(Z) <= band, max(abs(act.kink[0]), abs(act.kink[1])), dh)


def _kink_derivative(name, Z, band):
    """h' as an interval (centre, radius): [lo, hi] where |z| <= band, exact elsewhere."""
    act = model.activation(name)
    dh = act.dh(Z)
    if act.kink is None:
        return dh, np.zeros_like(dh)
    lo, hi = act.kink
    at = np.abs(Z) <= band
    return np.where(at, (lo + hi) / 2, dh), np.where(at, (hi - lo) / 2, 0.0)


ABS_BLOCK = 2**18  # entries of |W| made at a time (2 MB in float64)


def abs_product(M, W, transposed=False):
    """M @ |W| (or M @ |W|.T), with |W| made a block of rows at a time: a big layer's |W| would
    otherwise be a whole weight-sized array beside the tolerances being built."""
    if W.size <= ABS_BLOCK:
        return M @ (np.abs(W).T if transposed else np.abs(W))
    step = max(1, ABS_BLOCK // max(1, W.shape[1]))
    if transposed:  # rows j of W give columns j of the result
        out = np.empty((M.shape[0], W.shape[0]), np.result_type(M, W))
        for j in range(0, W.shape[0], step):
            out[:, j : j + step] = M @ np.abs(W[j : j + step]).T
        return out
    out = np.zeros((M.shape[0], W.shape[1]), np.result_type(M, W))
    for j in range(0, W.shape[0], step):
        out += M[:, j : j + step] @ np.abs(W[j : j + step])
    return out


def judgement(case, dtype=np.float64, k=K):
    """Tolerances and kink intervals for judging a gradient of `case` computed in `dtype`."""
    finfo = np.finfo(dtype)
    u, tiny = float(finfo.eps) / 2, float(finfo.tiny)
    spec, params = case.spec, case.params
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        Z, A = model.forward(params, case.X, spec)
        eA, eZ = [np.abs(case.X)], [None]
        for (W, b), name, l in zip(params, spec.activations, range(1, len(params) + 1)):
            eZ.append(abs_product(2 * np.abs(A[l - 1]) + eA[l - 1], W, transposed=True) + np.abs(b))
            dh = _slope(name, Z[l], k * u * eZ[l]) if name != "softmax" else 1.0
            eA.append(dh * eZ[l] + np.abs(A[l]) + (name in ABSOLUTE))
        return _backward(case, Z, A, eA, eZ, u, tiny, k)


def _backward(case, Z, A, eA, eZ, u, tiny, k):
    spec, params, L = case.spec, case.params, len(case.params)
    band = [None] + [k * u * e for e in eZ[1:]]
    delta, e_delta, mag = _output_delta(case, Z, A, eA, eZ, band[-1])
    out = spec.activations[-1]
    if out == "softmax" or model.fused(spec):
        c, r = delta, np.zeros_like(delta)
    else:
        g = model.d_loss(A[-1], case.T, spec)
        hc, hr = _kink_derivative(out, Z[-1], band[-1])
        c, r = g * hc, np.abs(g) * hr
    tol, centre, radius = [None] * L, [None] * L, [None] * L
    # Without a kinked activation every radius is exactly 0 and no centre is ever looked at:
    # read-only zeros that take no memory stand for both (the interval arithmetic is skipped).
    kinked = any(model.activation(a).kink is not None for a in spec.activations)
    for l in range(L, 0, -1):
        W = params[l - 1][0]
        absA = np.abs(A[l - 1])
        n = max(W.shape[1], case.X.shape[0]) + 1
        # e_delta^T |A| + |delta|^T (|A| + eA) as one product (samples stacked), of thin
        # factors: a big layer's is kept as the factors (lazy.product), made where judged
        e_W = lazy.product(
            np.concatenate([e_delta, mag]), np.concatenate([absA, absA + eA[l - 1]]), k * u, k * n * tiny
        )
        e_b = (e_delta + mag).sum(axis=0)
        tol[l - 1] = (e_W, k * u * e_b + k * n * tiny)
        if kinked:
            centre[l - 1] = (lazy.product(c, A[l - 1]), c.sum(axis=0))
            radius[l - 1] = (lazy.product(r, absA), r.sum(axis=0))
        else:
            centre[l - 1] = radius[l - 1] = (_zeros(W.shape), _zeros(W.shape[:1]))
        if l == 1:
            break
        name = spec.activations[l - 2]
        g, e_g = delta @ W, abs_product(e_delta + mag, W)
        delta, e_delta, mag = _through(name, g, e_g, Z[l - 1], A[l - 1], eZ[l - 1], band[l - 1])
        if kinked:
            hc, hr = _kink_derivative(name, Z[l - 1], band[l - 1])
            gc, gr = c @ W, abs_product(r, W)
            c, r = gc * hc, np.abs(gc) * hr + gr * np.abs(hc) + gr * hr
    loss_tol = k * u * _loss_scale(case, Z, A, eA, eZ) + k * tiny
    tol, centre = _penalty(case, tol, centre, k * u)
    return Judgement(tol, centre, radius, float(loss_tol), u)


def _penalty(case, tol, centre, ku):
    """The L2 term's gradient 2 c W joins every centre, and its rounding (the product and the
    sum with the data term's gradient, 3 |2 c W|) every tolerance: lazily beside a lazy one."""
    slope = model.penalty_slope(case.spec, len(case.X))
    if slope is None:
        return tol, centre
    c, bias = slope
    tols, centres = [], []
    for (W, b), (tW, tb), (cW, cb) in zip(case.params, tol, centre):
        pb = c * b if bias else np.zeros_like(b)
        if isinstance(tW, lazy.Lazy):
            tW, cW = (
                lazy.Parts((tW, lazy.Scaled(W, 3 * ku * abs(c), absolute=True))),
                lazy.Parts((cW, lazy.Scaled(W, c))),
            )
        else:
            pW = c * W
            tW, cW = tW + 3 * ku * np.abs(pW), cW + pW
        tols.append((tW, tb + 3 * ku * np.abs(pb)))
        centres.append((cW, cb + pb))
    return tols, centres


def _zeros(shape):
    return np.broadcast_to(np.float64(0.0), shape)


def _output_delta(case, Z, A, eA, eZ, band):
    """delta = dJ/dZ[L], its error scale and a bound on |delta| (see _through)."""
    spec, T, Y = case.spec, case.T, A[-1]
    out = spec.activations[-1]
    delta = delta_rule.output_delta(Z, A, T, spec)
    if model.fused(spec):
        n = model.divisor(spec, Y.shape)
        t_sum = np.abs(T).sum(axis=-1, keepdims=True) if model.convention(spec).kind == "ce" else 1.0
        return delta, ((eA[-1] + np.abs(Y)) * t_sum + np.abs(T)) / n, np.abs(delta)
    g = model.d_loss(Y, T, spec)
    c = np.abs(model.d_loss(np.ones_like(Y), np.zeros_like(T), spec))  # 2, 1 or 2/N
    e_g = c * (eA[-1] + np.abs(Y) + np.abs(T))
    if out == "softmax":
        absY, absg = np.abs(Y), np.abs(g)
        gy = np.sum(absg * absY, axis=-1, keepdims=True)
        e_delta = absY * (e_g + np.sum(e_g * absY, axis=-1, keepdims=True) + absg + gy)
        return delta, e_delta + eA[-1] * (absg + gy), np.abs(delta)
    return _through(out, g, e_g, Z[-1], Y, eZ[-1], band)


def _through(name, g, e_g, Zl, Al, eZl, band):
    """delta = g h'(Z), its error scale (g's error, the h' formula's, Z's error via h'') and a
    bound on |delta|: at a kink unit a correct implementation's delta may be anything up to
    |g| hi, not the reference's g h'(0), and its rounding is carried by every product below."""
    dh = model.activation(name).dh(Zl)
    slope = _slope(name, Zl, band)
    e_delta = e_g * slope + np.abs(g) * (_formula_scale(name, Al) + _d2(name, Zl, Al) * eZl)
    return g * dh, e_delta, np.abs(g) * slope


def _loss_scale(case, Z, A, eA, eZ):
    """Magnitude of the loss value's rounding error, in units of u: the terms summed, plus
    the output's own error times the loss's sensitivity to it."""
    spec, T = case.spec, case.T
    J = abs(float(model.loss_from_output(Z[-1], A[-1], T, spec)))
    P = 3 * float(model.penalty(case.params, spec, len(T)))  # the squares, their sum, the product
    if model.fused(spec):
        n = model.divisor(spec, T.shape)
        delta = delta_rule.output_delta(Z, A, T, spec)
        return 2 * J + P + float(np.sum(np.abs(delta) * eZ[-1]) + np.sum(np.abs(T * Z[-1])) / n)
    g = model.d_loss(A[-1], T, spec)
    return 2 * J + P + float(np.sum(np.abs(g) * (eA[-1] + np.abs(A[-1]) + np.abs(T))))
