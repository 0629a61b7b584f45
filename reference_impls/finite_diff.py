"""Central finite differences with a per-entry error estimate, structure-aware and vectorised.

Error model, for one entry w (of W[l] or b[l]) and the loss J as a function of it:

    D(h) = (J(w+h) - J(w-h)) / 2h = J'(w) + h^2 J'''/6 + O(h^4) + rounding,  |rounding| <= r/h

where r bounds the rounding error of one evaluation of J. The step balances truncation
h^2 |J'''|/6 against rounding r/h at h = cbrt(eps) max(|w|, 1), rounded to a power of two so
that the perturbations (h, h/2 times an input) are exact. Two steps give Richardson's value

    value = (4 D(h/2) - D(h)) / 3,     error = |D(h) - D(h/2)| + 3 r/h

|D(h) - D(h/2)| ~ (3/4) h^2 |J'''|/6 is far above the O(h^4) remainder of the extrapolation,
and 3 r/h bounds its rounding, (4 * 2r/h + r/h) / 3. r is a first-order rounding analysis of
what an evaluation recomputes: r = KAPPA eps (sum over recomputed values v of |dJ/dv| |v|
plus the sum of |loss terms|, or for softmax_ce of what its terms are computed from), with |dJ/dZ[L]| from one-sided differences at the output
(so that a loss flat at w but curved over the step still counts) and |dJ/dv| carried back
through |W| and central-difference estimates of |h'|.

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

from . import model

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
        acts = [None] + [model.ACTIVATIONS[name] for name in spec.activations]
        net = _Net(list(params), T, spec, Z, A, [a and a.h for a in acts], [bool(a and a.kink) for a in acts])
        J = float(model.loss_from_output(Z[-1], A[-1], T, spec))
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
    h = _step(np.concatenate([W.ravel(), b]))
    inputs = np.concatenate([net.A[l - 1], np.ones((len(net.T), 1))], axis=1).T
    value, error, straddled = np.empty(len(j)), np.empty(len(j)), np.zeros(len(j), bool)
    todo, signs = np.arange(len(j)), _SIGNS[:4]
    for div in (1.0, *RETRY):
        last = div == RETRY[-1]
        v, e, s = _entries(net, l, j[todo], inputs, i[todo], h[todo] / div, R[j[todo]], signs)
        done = ~s | last
        value[todo[done]], error[todo[done]], straddled[todo[done]] = v[done], e[done], s[done]
        todo, signs = todo[~done], _SIGNS
        if not todo.size:
            break
    split = n_out * n_in
    return tuple((x[:split].reshape(W.shape), x[split:]) for x in (value, error, straddled))


def _entries(net, l, j, inputs, i, h, R, signs):
    """Value, error and straddle flag of the entries adding h * inputs[i] to Z[l][:, j]."""
    K, B = len(signs), inputs.shape[1]
    Js, crossed = np.empty((len(j), K)), np.empty(len(j), bool)
    J = np.empty((len(j), K, B)) if K == 5 else None  # per sample, for kinks only
    for sl in _chunks(len(j), K * _member_bytes(net, l)):
        dz = (h[sl, None] * signs)[:, :, None] * inputs[i[sl], None, :]
        Jm, cm = _stack_losses(net, l, np.repeat(j[sl], K), dz.reshape(-1, B))
        Js[sl], crossed[sl] = Jm.sum(axis=1).reshape(-1, K), cm.reshape(-1, K).any(axis=1)
        if J is not None:
            J[sl] = Jm.reshape(-1, K, B)
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
    fused = (net.spec.activations[-1], net.spec.loss) in model.FUSED
    return None if fused else net.act[-1](ZL)


def _crossed(Zp, Z0):
    """Per member: some entry changed side of 0, or moved off an exact 0."""
    side = (Zp > 0) != (Z0 > 0)
    zero = Z0 == 0
    if np.any(zero):
        side |= zero & (Zp != 0)
    return side.reshape(len(Zp), -1).any(axis=1)


def _loss_terms(ZL, YL, T, spec):
    """(terms, divisor) with J = (sum of terms over the last two axes) / divisor: the formulas
    of model.LOSSES and model.fused_loss, broadcast over leading stack axes."""
    B, n = T.shape
    pair = (spec.activations[-1], spec.loss)
    if pair == ("sigmoid", "bce"):
        return T * model.softplus(-ZL) + (1 - T) * model.softplus(ZL), B * n
    if pair == ("softmax", "softmax_ce"):
        return -(T * model.log_softmax(ZL)), B
    if spec.loss == "bce":
        return -(T * np.log(YL) + (1 - T) * np.log(1 - YL)), B * n
    if spec.loss == "softmax_ce":
        return -(T * np.log(YL)), B
    return (YL - T) ** 2, {"sse": 1, "half_sse": 2, "mse": B * n}[spec.loss]


def _sample_losses(ZL, YL, T, spec):
    """Each sample's share of J, for each member of a stack of outputs (..., B, n_L)."""
    terms, divisor = _loss_terms(ZL, YL, T, spec)
    return np.sum(terms, axis=-1) / divisor


def _rounding_scale(net):
    """R[l][j]: sum of |dJ/dv| |v| over the values v that perturbing unit j of layer l
    recomputes (its own column, every later layer), plus sum |loss terms|; r = KAPPA eps R."""
    L = len(net.params)
    UZ = np.abs(_output_sensitivity(net))
    below = _terms_scale(net.Z[L], net.A[L], net.T, net.spec)
    R, UA = [None] * (L + 1), None
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


def _terms_scale(ZL, YL, T, spec):
    """The magnitude the loss terms are rounded at: sum |terms| / divisor, except for the
    fused softmax_ce, whose -t (z - max - log sum e^(z - max)) is computed from values of size
    |z - max|, the log-sum-exp and the sum itself (at least 1), so it keeps an absolute error of
    about eps t when the term is near 0 (the target's y near 1)."""
    terms, divisor = _loss_terms(ZL, YL, T, spec)
    if (spec.activations[-1], spec.loss) != ("softmax", "softmax_ce"):
        return np.sum(np.abs(terms)) / divisor
    Zs = ZL - np.max(ZL, axis=-1, keepdims=True)
    lse = np.log(np.sum(np.exp(Zs), axis=-1, keepdims=True))
    return np.sum(np.abs(T) * (np.abs(Zs) + lse + 1)) / divisor


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
