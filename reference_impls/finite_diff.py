"""Central finite differences with a per-entry error estimate, structure-aware and vectorised.

Error model, for one entry w (of W[l] or b[l]) and the loss J as a function of it:

    D(h) = (J(w+h) - J(w-h)) / 2h = J'(w) + h^2 J'''/6 + O(h^4) + rounding,  |rounding| <= r/h

where r bounds the rounding error of one evaluation of J. The step balances truncation
h^2 |J'''|/6 against rounding r/h at h = cbrt(eps) max(|w|, 1), rounded to a power of two so
that the perturbations (h, h/2 times an input) are exact. Two steps give Richardson's value

    value = (4 D(h/2) - D(h)) / 3,     error = |D(h) - D(h/2)| + 3 r/h

|D(h) - D(h/2)| ~ (3/4) h^2 |J'''|/6 is far above the O(h^4) remainder of the extrapolation,
and 3 r/h bounds its rounding, (4 * 2r/h + r/h) / 3. r is a first-order rounding analysis of
what an evaluation recomputes: r = KAPPA eps sum |dJ/dv| |v| over the recomputed values v,
per entry: the pre-activations and activations from the perturbed layer on, the output Y,
and inside the loss the magnitudes it actually sums, never the loss value (_loss_rounding,
loss by loss). The two differ where the loss is small and its parts are not: a softmax_ce
near 0 (a one-hot target on a winning logit) still sums an exp-sum of about 1, whose
rounding becomes an absolute eps in log S; an output y = t + 1e-6 still rounds y at eps |y|.
|dJ/dZ[L]| and |dJ/dY| come from one-sided differences at the output (so that a loss flat
at w but curved over the step still counts), and |dJ/dv| is carried back through |W| and
central-difference estimates of |h'|.

An L2 penalty (DESIGN section 2a) joins every evaluation whole, coef (S - w^2 + (w +- h)^2)
with S the sum of squares it counts; a quadratic, so it adds no truncation error, and the
rounding of its squares and sum joins r (_loss_rounding).

Kinks (relu, leaky_relu at 0): an entry straddles one when a pre-activation of a kinked layer
that its perturbation moves changes side between any two evaluation points, or sits at exactly
0. Straddling entries are retried with steps h/16 and h/256 (about sqrt(eps): below it
rounding dominates); those still straddling are flagged. Their value is the plain central
difference D(h) at the last step, and their error covers, sample by sample (J is a sum over
samples), both one-sided differences (J_n(w+h) - J_n(w))/h and (J_n(w) - J_n(w-h))/h with a
curvature allowance: any choice of side per sample is inside. (Backprop's convention h'(0) =
lo at every kink can combine sides in a way no one-sided difference does: across samples
this interval covers it, within one sample whose path meets two kinks it may not.) A kink
crossed and re-crossed between evaluation points is not detected.

Structure: perturbing W[l][j, i] adds h A[l-1][:, i] to Z[l][:, j] only (a bias adds h). So
the clean forward runs once, and a stack of perturbed copies (one per evaluation point of a
chunk of entries) is pushed through layers l..L as differences from the clean forward: the
rank-one change at layer l + 1, then batched matrix products. Pre-activations that a
perturbation does not reach keep their clean bits, which makes the kink test exact.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import conventions, model

__all__ = ["FDResult", "gradients", "gradients_with_error"]

EPS = np.finfo(np.float64).eps
KAPPA = 8.0  # safety factor on the first-order rounding bound r (calibrated by the tests)
RETRY = (16.0, 256.0)  # step divisors for entries straddling a kink; h/256 ~ sqrt(eps) scale
CHUNK_BYTES = 8 * 2**20  # one stack array; measured fastest (temporaries stay in the heap)
_SIGNS = np.array([1.0, -1.0, 0.5, -0.5, 0.0])  # evaluation points, in units of the step


class FDResult(NamedTuple):
    """Loss, gradients, per-entry absolute error bounds and kink-straddle flags, all as
    [(W-shaped, b-shaped), ...] lists like the gradients."""

    loss: float
    grads: list
    errors: list
    straddled: list


class _Net(NamedTuple):
    """The clean forward, 1-based like the notes: Z[l], A[l], act[l] for l = 1..L."""

    params: list
    T: np.ndarray
    spec: object
    Z: list
    A: list
    act: list
    kinked: list


def gradients(params, X, T, spec):
    """(J, [(dJ/dW1, dJ/db1), ...]) by Richardson-extrapolated central differences."""
    result = gradients_with_error(params, X, T, spec)
    return result.loss, result.grads


def gradients_with_error(params, X, T, spec) -> FDResult:
    """Finite-difference gradients with their error bounds and kink flags (module docstring)."""
    if "softmax" in spec.activations[:-1]:
        raise ValueError("softmax is an output-layer activation only")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        Z, A = model.forward(params, X, spec)
        acts = [None] + [model.activation(name) for name in spec.activations]
        net = _Net(list(params), T, spec, Z, A, [a and a.h for a in acts], [bool(a and a.kink) for a in acts])
        J = float(model.loss_from_output(Z[-1], A[-1], T, spec) + model.penalty(params, spec, len(X)))
        R = _rounding_scale(net)
        grads, errors, flags = [], [], []
        for l in range(1, len(params) + 1):
            g, e, s = _layer(net, l, R[l])
            grads.append(g)
            errors.append(e)
            flags.append(s)
        return FDResult(J, grads, errors, flags)


def _step(w):
    """cbrt(eps) max(|w|, 1), rounded to a power of two."""
    return np.exp2(np.round(np.log2(np.cbrt(EPS) * np.maximum(np.abs(w), 1.0))))


def _layer(net, l, R):
    """(dW, db), their errors and straddle flags for layer l; entries are W row-major, then b."""
    W, b = net.params[l - 1]
    n_out, n_in = W.shape
    j = np.concatenate([np.repeat(np.arange(n_out), n_in), np.arange(n_out)])
    i = np.concatenate([np.tile(np.arange(n_in), n_out), np.full(n_out, n_in)])
    w = np.concatenate([W.ravel(), b])
    h = _step(w)
    pen = _penalty(net, w, n_out * n_in)
    inputs = np.concatenate([net.A[l - 1], np.ones((len(net.T), 1))], axis=1).T
    value, error, straddled = np.empty(len(j)), np.empty(len(j)), np.zeros(len(j), bool)
    todo, signs = np.arange(len(j)), _SIGNS[:4]
    for div in (1.0, *RETRY):
        last = div == RETRY[-1]
        part = None if pen is None else (pen[0], pen[1], pen[2][todo], pen[3][todo])
        v, e, s = _entries(net, l, j[todo], inputs, i[todo], h[todo] / div, R[j[todo]], signs, part)
        done = ~s | last
        value[todo[done]], error[todo[done]], straddled[todo[done]] = v[done], e[done], s[done]
        todo, signs = todo[~done], _SIGNS
        if not todo.size:
            break
    split = n_out * n_in
    return tuple((x[:split].reshape(W.shape), x[split:]) for x in (value, error, straddled))


def _penalty(net, w, n_weights):
    """(coef, S, w, counted) of the L2 penalty coef * S, S the sum of squares of the entries it
    counts, for the entries w of one layer (weights first, then biases); None without one."""
    conv = model.convention(net.spec)
    if not conv.l2:
        return None
    S = sum(np.sum(W * W) + (np.sum(b * b) if conv.l2_bias else 0.0) for W, b in net.params)
    counted = np.arange(len(w)) < n_weights if not conv.l2_bias else np.ones(len(w), bool)
    return conventions.l2_coef(conv, len(net.T)), float(S), w, counted


def _entries(net, l, j, inputs, i, h, R, signs, pen=None):
    """Value, error and straddle flag of the entries adding h * inputs[i] to Z[l][:, j]; `pen`
    (see _penalty) adds the L2 penalty to every evaluation, recomputed as a whole: S - w^2 +
    (w + s h)^2 (its rounding is in R, see _loss_rounding)."""
    K, B = len(signs), inputs.shape[1]
    Js, crossed = np.empty((len(j), K)), np.empty(len(j), bool)
    J = np.empty((len(j), K, B)) if K == 5 else None  # per sample, for kinks only
    for sl in _chunks(len(j), K * _member_bytes(net, l)):
        dz = (h[sl, None] * signs)[:, :, None] * inputs[i[sl], None, :]
        Jm, cm = _stack_losses(net, l, np.repeat(j[sl], K), dz.reshape(-1, B))
        Js[sl], crossed[sl] = Jm.sum(axis=1).reshape(-1, K), cm.reshape(-1, K).any(axis=1)
        if J is not None:
            J[sl] = Jm.reshape(-1, K, B)
    if pen is not None:
        coef, S, w, counted = pen
        moved = w[:, None] + h[:, None] * signs
        Js += coef * np.where(counted[:, None], (S - w[:, None] ** 2) + moved**2, S)
    r = KAPPA * EPS * R
    D1, D2 = (Js[:, 0] - Js[:, 1]) / (2 * h), (Js[:, 2] - Js[:, 3]) / h
    value, error = (4 * D2 - D1) / 3, np.abs(D1 - D2) + 3 * r / h
    if K == 5:  # kinks: per sample, the interval between the one-sided differences
        H = h[:, None]
        right1, left1 = (J[:, 0] - J[:, 4]) / H, (J[:, 4] - J[:, 1]) / H
        right2, left2 = 2 * (J[:, 2] - J[:, 4]) / H, 2 * (J[:, 4] - J[:, 3]) / H
        curvature = 2 * np.maximum(np.abs(right1 - right2), np.abs(left1 - left2))
        kink_error = np.sum(np.abs(right1 - left1) / 2 + curvature, axis=1) + 16 * r / h
        value, error = np.where(crossed, D1, value), np.where(crossed, kink_error, error)
    return value, error, crossed


def _stack_losses(net, l, j, dz):
    """Each sample's share of J (M, B) for every member m of the stack Z[l][:, j[m]] += dz[m]
    (dz: (M, B)), and whether a kinked pre-activation it moved changed side or sits at 0.
    Layers before l are reused."""
    L, M = len(net.params), len(j)
    z0 = net.Z[l][:, j].T
    zc = z0 + dz
    crossed = _crossed(zc, z0) if net.kinked[l] else np.zeros(M, bool)
    if l == L:
        Zs = np.repeat(net.Z[L][None], M, axis=0)
        Zs[np.arange(M), :, j] = zc
        return _sample_losses(Zs, _output(net, Zs), net.T, net.spec), crossed
    dA = net.act[l](zc) - net.A[l][:, j].T
    Zs = dA[:, :, None] * net.params[l][0][:, j].T[:, None, :]
    Zs += net.Z[l + 1]
    for m in range(l + 1, L):
        if net.kinked[m]:
            crossed |= _crossed(Zs, net.Z[m])
        W = net.params[m][0]
        dA = net.act[m](Zs)
        dA -= net.A[m]
        Zs = (dA.reshape(-1, W.shape[1]) @ W.T).reshape(M, -1, W.shape[0])
        Zs += net.Z[m + 1]
    if net.kinked[L]:
        crossed |= _crossed(Zs, net.Z[L])
    return _sample_losses(Zs, _output(net, Zs), net.T, net.spec), crossed


def _output(net, ZL):
    """Y = h_L(Z[L]), unless the loss is computed from Z[L] alone (model.FUSED)."""
    return None if model.fused(net.spec) else net.act[-1](ZL)


def _crossed(Zp, Z0):
    """Per member: some entry changed side of 0, or moved off an exact 0."""
    side = (Zp > 0) != (Z0 > 0)
    zero = Z0 == 0
    if np.any(zero):
        side |= zero & (Zp != 0)
    return side.reshape(len(Zp), -1).any(axis=1)


def _loss_terms(ZL, YL, T, spec):
    """(terms, divisor) with the data term of J = (sum of terms over the last two axes) /
    divisor: the formulas of model.LOSS_KINDS and model.fused_terms, broadcast over leading
    stack axes."""
    kind, divisor = model.convention(spec).kind, model.divisor(spec, T.shape)
    if model.fused(spec):
        return model.fused_terms(ZL, T, kind), divisor
    return model.LOSS_KINDS[kind].l(YL, T), divisor


def _sample_losses(ZL, YL, T, spec):
    """Each sample's share of J, for each member of a stack of outputs (..., B, n_L)."""
    terms, divisor = _loss_terms(ZL, YL, T, spec)
    return np.sum(terms, axis=-1) / divisor


def _rounding_scale(net):
    """R[l][j]: sum of |dJ/dv| |v| over the values v that perturbing unit j of layer l
    recomputes (its own column, every later layer, the loss); r = KAPPA eps R."""
    L = len(net.params)
    UZ = np.abs(_output_sensitivity(net))
    UA, below = _output_rounding(net), _loss_rounding(net, UZ)
    R = [None] * (L + 1)
    for l in range(L, 0, -1):
        col = np.sum(UZ * np.abs(net.Z[l]), axis=0)
        if UA is not None:
            col = col + np.sum(UA * np.abs(net.A[l]), axis=0)
        R[l], below = below + col, below + col.sum()
        if l > 1:
            UA = UZ @ np.abs(net.params[l - 1][0])
            d = _step(net.Z[l - 1])
            act = net.act[l - 1]
            UZ = UA * np.abs(act(net.Z[l - 1] + d) - act(net.Z[l - 1] - d)) / (2 * d)
    return R


# Output activations whose values are Z[L] itself, or 0, bit for bit: nothing to round.
_EXACT_OUTPUT = ("identity", "relu")


def _output_rounding(net):
    """|dJ/dY| where Y = h_L(Z[L]) is computed elementwise, rounded and fed to the loss: the
    output's own column is recomputed by a perturbation of it, so this joins R column by
    column like a hidden activation. None where Y is exact, not used (model.FUSED) or not
    elementwise (softmax: _loss_rounding counts it)."""
    out = net.spec.activations[-1]
    if model.fused(net.spec) or out in _EXACT_OUTPUT + ("softmax",):
        return None
    return _loss_slope(net)


def _loss_slope(net):
    """|dJ/dY| over the values each output takes in an evaluation: the larger one-sided
    difference of its loss term (a non-fused term depends on its own y alone) between y and
    y' = h_L(z +- step), the whole move of y when z moves by its step (0 where y does not
    move: then no evaluation rounds it differently); a softmax output couples its row, so
    there y' = y +- step(y)."""
    L = len(net.params)
    Z, Y, T, spec = net.Z[L], net.A[L], net.T, net.spec
    terms, divisor = _loss_terms(Z, Y, T, spec)
    slope = np.zeros_like(Y)
    for s in (1.0, -1.0):
        Y2 = Y + s * _step(Y) if spec.activations[-1] == "softmax" else net.act[L](Z + s * _step(Z))
        dy = np.abs(Y2 - Y)
        dl = np.abs(_loss_terms(Z, Y2, T, spec)[0] - terms)
        slope = np.fmax(slope, np.divide(dl, dy, out=np.zeros_like(dy), where=dy > 0))
    return slope / divisor


def _loss_rounding(net, UZ):
    """Sum of |dJ/dv| |v| over the values v that an evaluation computes from Z[L] (and Y) to
    J, whichever entry it perturbs; magnitudes of what the loss sums, never the loss value,
    which cancellation can make far smaller than its parts.

    - every loss: its terms, their sums over k and n and the division: sum |terms| / divisor
      (the terms are what those operations add up; counted once, KAPPA covers the few);
    - squared, (y - t)^2: y - t and its square are bounded by the terms; y's own rounding is
      _output_rounding's (by column), or the softmax's below;
    - bce, fused (sigmoid output): t softplus(-z) + (1 - t) softplus(z), each softplus the sum
      of max(z, 0) and log1p(e^{-|z|}): no piece exceeds |t| softplus(-z) + |1 - t|
      softplus(z), which is the term for t in [0, 1];
    - bce on y: log y and log(1 - y) turn the relative rounding of y and of 1 - y into an
      absolute one, |dJ/dv| |v| = |t| / (B n) and |1 - t| / (B n) whatever the loss: y's is
      _output_rounding's, 1 - y's is counted here;
    - softmax_ce, fused: -t_k log_softmax(z)_k = -t_k (s_k - log S), s_k = z_k - max z,
      S = sum_m e^{s_m}. With tau = sum_k |t_k| a row, over B: the shift sum_k |dJ/dz_k| |s_k|,
      the exps tau sum_k e^{s_k} / S = tau, their sum tau (its relative rounding is absolute
      after the log), the log tau |log S|; s_k - log S and its product with t_k are the terms.
      A small loss (a one-hot t on a winning logit) makes the terms tiny, not the exp-sum;
    - softmax output, not fused: the shift as above, and y_k = e^{s_k} / S with, at g = dJ/dy,
      the exps at most 2 sum_k |g_k| y_k, the sum and the division |g| . y each;
    - softmax_ce on y: -t log y, whose y is rounded relatively: counted with y's rounding.
    """
    L, B = len(net.params), len(net.T)
    ZL, YL, T, spec = net.Z[L], net.A[L], net.T, net.spec
    out, kind, fused = spec.activations[-1], model.convention(spec).kind, model.fused(spec)
    terms, divisor = _loss_terms(ZL, YL, T, spec)
    if fused and kind == "bce":
        terms = np.abs(T) * model.softplus(-ZL) + np.abs(1 - T) * model.softplus(ZL)
    total = np.sum(np.abs(terms)) / divisor
    if kind == "bce" and not fused:
        total += np.sum(np.abs(1 - T)) / divisor
    # the L2 penalty, recomputed whole by each evaluation: its squares, their sum, the product
    total += 3 * float(model.penalty(net.params, spec, B))
    if out == "softmax":
        shift = ZL - np.max(ZL, axis=-1, keepdims=True)
        total += np.sum(UZ * np.abs(shift))
        if fused:  # the exps and their sum (tau each), the log (tau |log S|)
            log_S = np.log(np.sum(np.exp(shift), axis=-1))
            total += np.sum(np.sum(np.abs(T), axis=-1) * (2 + np.abs(log_S))) / B
        else:
            total += 4 * np.sum(_loss_slope(net) * np.abs(YL))
    return float(total)


def _output_sensitivity(net):
    """|dJ/dZ[L]| over a step: the larger one-sided difference (a magnitude for the error
    model only; it stays positive where J is flat at the clean point but curved)."""
    L, (B, n) = len(net.params), net.T.shape
    tau = _step(net.Z[L]).ravel()
    rows, cols = np.divmod(np.arange(B * n), n)
    J = np.empty((B * n, 3))
    for sl in _chunks(B * n, 3 * _member_bytes(net, L)):
        k = np.arange(sl.start, sl.stop)
        dz = np.zeros((len(k), 3, B))
        dz[np.arange(len(k)), :, rows[k]] = tau[k, None] * [1.0, -1.0, 0.0]
        Jk = _stack_losses(net, L, np.repeat(cols[k], 3), dz.reshape(-1, B))[0]
        J[sl] = Jk.sum(axis=1).reshape(-1, 3)
    one_sided = np.maximum(np.abs(J[:, 0] - J[:, 2]), np.abs(J[:, 2] - J[:, 1])) / tau
    return one_sided.reshape(B, n)


def _member_bytes(net, l):
    """Memory of one member's widest array from layer l on."""
    return 8 * len(net.T) * max(W.shape[0] for W, _ in net.params[l - 1 :])


def _chunks(count, item_bytes):
    """Slices of at most CHUNK_BYTES // item_bytes items covering range(count)."""
    size = max(1, CHUNK_BYTES // item_bytes)
    return [slice(s, min(s + size, count)) for s in range(0, count, size)]
