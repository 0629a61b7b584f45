"""Self mode (DESIGN 3 and 3a): a gradient judged against numerical derivatives of the user's
OWN function, the way torch.autograd.gradcheck judges a function against itself.

The function f (a layer's <forward(x, params), dout>, or a network's loss(params, X, T, spec))
is evaluated by the caller, in the sandbox, at points this module chooses: `evaluate(points)`
returns one row per point (the layer's output, or the loss), and `scalar` turns a row into f.
A point is (tensor, direction or -1, entry or -1, t). Cheap first:

1. one batch: per tensor a random unit direction v, f at t = +-h, +-h/2 (central differences
   and one Richardson step), t = i*1e-20*h (the complex step) and a ladder t = k*delta,
   k = 0..7, whose fourth differences measure f's rounding noise sigma (a smooth f contributes
   delta^4 f'''' there, nothing at delta = 1e-4 h): the noise is measured, not assumed;
2. the complex step is used when the code is complex-safe: every probe came back complex,
   with a real part equal to f and an imaginary part agreeing with Richardson's estimate;
3. each tensor's directional derivative <g, v> is judged against it, with a tolerance from
   Richardson's own error estimate plus sigma / h (or, complex step, the rounding of <g, v>);
   one-sided differences whose gap does not shrink with the step mark a kink, judged as an
   interval. Every tolerance
   has an absolute floor of K sigma / scale: without the user's forward, the rounding of forms
   such as 1 - tanh^2 near saturation (right only to an absolute accuracy, in their gradient
   and in the complex step alike) is bounded by f's own measured noise;
   (verifier/judge/selfdir.py);
4. for a tensor that failed, a hypothesis first (verifier/judge/selfhypothesis.py): the right
   gradient guessed from the returned one (c times it, its transpose) and put to the same test
   along a fresh random direction, all such tensors in one batch of 5 points each; a guess that
   passes is the right gradient at a pass's confidence, and each entry is judged against it;
5. per entry only for the failed tensors no hypothesis explained: one more batch (1 point an
   entry by complex step, else 4), judged entry by entry like model mode, worst entries first.

`how` says, per tensor, which of 3 to 5 judged it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ..records import TensorVerdict
from . import selfblocks, selfdir, selfhypothesis
from .compare import tensor_verdict
from .selfdir import CS, H0, K_ROUND, K_TRUNC, RTOL, U

DIRECTIONAL = "by a random directional derivative"
GUESSED = "against"
PER_ENTRY = "entry by entry"


def how_kind(how: str) -> str:
    """ "direction", "hypothesis" or "entries": which step of the module's docstring judged a tensor."""
    return "direction" if how == DIRECTIONAL else "entries" if how.startswith(PER_ENTRY) else "hypothesis"


class SelfResult(NamedTuple):
    verdicts: list[TensorVerdict]
    expected: dict[int, np.ndarray]  # tensor -> the right gradient, for tensors judged per entry
    tolerance: dict[int, np.ndarray]
    method: str  # "complex_step" or "central_diff"
    noise: float  # measured rounding noise of f (largest over tensors)
    evaluations: int
    error: str | None  # the function could not be evaluated (its exception): no verdict
    f0: float | None = None  # the function's value at the base point
    how: dict[int, str] = {}  # tensor -> how its entries were judged (DIRECTIONAL, a hypothesis, per entry)


def check(
    evaluate: Callable[[list, list], np.ndarray | str],
    base: Sequence[np.ndarray],
    grads: Sequence[np.ndarray],
    names: Sequence[str],
    scalar: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int = 0,
    judged: Sequence[int] | None = None,
    layer: int = 1,
) -> SelfResult:
    """Judge grads[k] = df/dbase[k] for each judged k. `evaluate(points, directions)` returns
    one row per point, or the text of why the function could not be evaluated."""
    judged = list(range(len(base))) if judged is None else list(judged)
    dirs = selfdir.directions([base[k] for k in judged], np.random.default_rng(seed))
    pts: list[tuple[int, int, int, complex]] = [(judged[0], -1, -1, 0.0), (judged[0], -1, -1, 0.0)]
    for i, k in enumerate(judged):
        pts += selfdir.points(k, i, base[k], ladder=True)
    rows = evaluate(pts, dirs)
    if isinstance(rows, str):
        return SelfResult([], {}, {}, "", 0.0, len(pts), rows)
    f = scalar(rows)
    f0 = float(np.real(f[0]))
    per = selfdir.STEPS + selfdir.LADDER
    noise_repeat = abs(np.real(f[0]) - np.real(f[1]))
    # the floor: an output gradient of up to sqrt|f| + |f| (the losses of DESIGN 2), rounded,
    # carried through values of the case's size
    reach = max([1.0] + [float(np.abs(np.real(a)).max(initial=0.0)) for a in base if np.size(a)])
    ests, sigmas = {}, {}
    for i, k in enumerate(judged):
        g = f[2 + per * i : 2 + per * (i + 1)]
        sigmas[k] = max(selfdir.noise(g[selfdir.STEPS :]), noise_repeat, U * (abs(f0) + np.sqrt(abs(f0))) * reach)
        ests[k] = selfdir.estimate(g[: selfdir.STEPS], base[k], f0, sigmas[k])
    safe = all(e.agrees for e in ests.values())
    verdicts, failing, how = {}, [], {}
    for i, k in enumerate(judged):
        j = selfdir.judge(grads[k], dirs[i], ests[k], base[k], safe)
        size = int(np.size(grads[k]))
        verdicts[k] = TensorVerdict(layer, names[k], size, size if j.kink else 0, 0, j.error, 0.0, ())
        if j.ok:
            how[k] = DIRECTIONAL
        else:
            failing.append(k)  # its verdict is replaced by a per-entry one below
    expected, tolerance, count = {}, {}, len(pts)
    noises = [sigmas[k] for k in judged]
    if failing:
        cands = [
            c
            for i, k in enumerate(judged)
            if k in failing
            for c in [selfhypothesis.candidate(k, grads[k], dirs[i], ests[k], base[k], safe)]
            if c is not None
        ]
        conf = selfhypothesis.confirm(evaluate, base, scalar, cands, f0, sigmas, safe, seed)
        count += conf.evaluations
        if conf.error:
            return SelfResult([], {}, {}, "", 0.0, count, conf.error)
        for k, c in conf.candidates.items():
            v, want, tol = against(layer, names[k], grads[k], c.g_hat, base[k], conf.estimates[k], safe)
            if v.failed:  # none wrong against g_hat though <g, v> failed: let the entries say
                verdicts[k], expected[k], tolerance[k] = v, want, tol
                how[k] = (
                    f"{GUESSED} {c.what} the returned gradient, a guess that passed the same test along a fresh random direction"
                )
        rest = [k for k in failing if k not in how]
        if rest:
            res = _per_entry(evaluate, base, grads, names, scalar, rest, safe, noises, judged, f0, layer, seed)
            count += res.evaluations
            if res.error:
                return SelfResult([], {}, {}, "", 0.0, count, res.error)
            verdicts.update({k: v for k, v in zip(rest, res.verdicts)})
            expected.update(res.expected)
            tolerance.update(res.tolerance)
            how.update(res.how)
    method = "complex_step" if safe else "central_diff"
    return SelfResult(
        [verdicts[k] for k in judged], expected, tolerance, method, max(noises, default=0.0), count, None, f0, how
    )


def against(layer, name, got, g_hat, a, est: selfdir.Estimate, safe: bool):
    """(verdict, want, tol) of each entry of `got` against a confirmed right gradient g_hat, with
    the per-entry tolerance a complex step would give (and, without one, the truncation bound
    of the difference that confirmed it)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(g_hat, dtype=np.float64).reshape(got.shape)
    scale = np.maximum(1.0, np.abs(np.asarray(a, dtype=float)))
    tol = K_ROUND * (U * (np.abs(got) + np.abs(want) + np.abs(want).max(initial=0.0)) + est.sigma / scale)
    tol = tol + RTOL * np.abs(want) + (0.0 if safe else est.tol_fd)
    return tensor_verdict(layer, name, got, want, tol, want, np.zeros_like(want)), want, tol


def _per_entry(evaluate, base, grads, names, scalar, failing, safe, noises, judged, f0, layer, seed) -> SelfResult:
    """Per-entry verdicts (in `failing` order) of the tensors no hypothesis explained: the
    entries blocks of directional tests could not clear (verifier/judge/selfblocks.py) are
    evaluated one by one, the others are right by their block's test."""
    sigmas = {k: noises[judged.index(k)] for k in failing}
    subsets, count, err = selfblocks.localize(evaluate, base, grads, scalar, failing, safe, sigmas, f0, seed)
    if err:
        return SelfResult([], {}, {}, "", 0.0, count, err)
    values, n, err = _entries(evaluate, base, grads, scalar, subsets, safe, sigmas, f0)
    count += n
    entry_verdicts, expected, tolerance = {}, {}, {}
    for k in failing:
        entry_verdicts[k], expected[k], tolerance[k] = _assembled(
            layer, names[k], grads[k], base[k], subsets[k], values.get(k), sigmas[k]
        )
    doubtful = [k for k in failing if entry_verdicts[k].failed]
    if not err and safe and doubtful:
        # a complex step is exact only where the code is analytic (np.var, abs, conj are not):
        # a failure it finds is confirmed by central differences before it stands, first at a
        # sample of entries (the worst and some at random); where they disagree, everywhere
        sample = {k: _sample(expected[k], grads[k], tolerance[k], seed) for k in doubtful}
        n, err, disagree = _confirm(evaluate, base, scalar, sample, expected, noises, judged, f0)
        count += n
        if not err and disagree:
            cd, n, err = _entries(evaluate, base, grads, scalar, {k: subsets[k] for k in disagree}, False, sigmas, f0)
            count += n
            for k in disagree:  # where central differences pass, the complex step was wrong
                again = _assembled(layer, names[k], grads[k], base[k], subsets[k], cd.get(k), sigmas[k])
                if not err and not again[0].failed:
                    entry_verdicts[k], expected[k], tolerance[k] = again
    if err:
        return SelfResult([], {}, {}, "", 0.0, count, err)
    method = "complex step" if safe else "central differences"
    how = {}
    for k in failing:
        m, size = subsets[k].size, int(np.size(grads[k]))
        blocks = (
            ""
            if m == size
            else f" at {m} of {size} entries, the others right by random directional derivatives over blocks of entries"
        )
        how[k] = f"{PER_ENTRY} ({method}){blocks}"
    return SelfResult([entry_verdicts[k] for k in failing], expected, tolerance, "", 0.0, count, None, f0, how)


def _assembled(layer, name, got, a, idx, values, sigma):
    """(verdict, want, tol) of a whole tensor: the evaluated entries `idx` against their values,
    the others (right by their block's test) against themselves."""
    got = np.asarray(got, dtype=np.float64)
    shape = got.shape
    flat = got.reshape(-1)
    scale = np.maximum(1.0, np.abs(np.asarray(a, dtype=float).reshape(-1)))
    want = flat.copy()
    tol = K_ROUND * (U * (2 * np.abs(flat) + np.abs(flat).max(initial=0.0)) + sigma / scale) + RTOL * np.abs(flat)
    centre, radius = want.copy(), np.zeros_like(want)
    if values is not None and idx.size:
        want[idx], tol[idx], centre[idx], radius[idx] = values
    want, tol = want.reshape(shape), tol.reshape(shape)
    v = tensor_verdict(layer, name, got, want, tol, centre.reshape(shape), radius.reshape(shape))
    return v, want, tol


SAMPLE = 8  # entries of a tensor where central differences confirm a complex-step failure


def _sample(want, got, tol, seed) -> np.ndarray:
    """Flat indices: the SAMPLE worst entries by complex step, and SAMPLE more at random."""
    err = (np.abs(np.asarray(got, dtype=float) - want) / tol).reshape(-1)
    worst = np.argsort(-err, kind="stable")[:SAMPLE]
    rest = np.random.default_rng(seed).choice(err.size, size=min(SAMPLE, err.size), replace=False)
    return np.unique(np.concatenate([worst, rest]))


def _confirm(evaluate, base, scalar, sample, expected, noises, judged, f0):
    """(evaluations, error, tensors where central differences disagree with the complex step
    at a sampled entry) in one batch of points."""
    pts, spans = [], {}
    for k, idx in sample.items():
        a = np.asarray(base[k], dtype=float).reshape(-1)
        spans[k] = len(pts)
        for j in idx:
            h = H0 * max(1.0, abs(a[j]))
            pts += [(k, -1, int(j), s) for s in (h, -h, h / 2, -h / 2)]
    rows = evaluate(pts, [])
    if isinstance(rows, str):
        return len(pts), rows, []
    f = np.real(scalar(rows))
    disagree = []
    for k, idx in sample.items():
        a = np.asarray(base[k], dtype=float).reshape(-1)[idx]
        g = f[spans[k] : spans[k] + 4 * len(idx)].reshape(-1, 4)
        h = H0 * np.maximum(1.0, np.abs(a))
        D1, D2 = (g[:, 0] - g[:, 1]) / (2 * h), (g[:, 2] - g[:, 3]) / h
        rich = (4 * D2 - D1) / 3
        cs = np.asarray(expected[k]).reshape(-1)[idx]
        sigma = noises[judged.index(k)]
        tol = (
            K_TRUNC * np.abs(rich - D2) + 8 * sigma / h + K_ROUND * U * (np.abs(rich) + np.abs(cs)) + RTOL * np.abs(cs)
        )
        right, left = (g[:, 2] - f0) / (h / 2), (f0 - g[:, 3]) / (h / 2)
        lo, hi = np.minimum(right, left), np.maximum(right, left)
        kink = selfdir.kinked(selfdir.excess_gap(g, f0, h), right, left, tol, sigma, h)
        if not np.all((np.abs(cs - rich) <= tol) | (kink & (lo - tol <= cs) & (cs <= hi + tol))):
            disagree.append(k)
    return len(pts), None, disagree


def _entries(evaluate, base, grads, scalar, subsets, safe, sigmas, f0):
    """({k: (want, tol, centre, radius) at the entries subsets[k]}, evaluations, error), in one
    batch of points: 1 an entry by complex step, else 4."""
    pts, spans = [], {}
    for k, idx in subsets.items():
        a = np.asarray(base[k], dtype=float).reshape(-1)
        start = len(pts)
        for j in idx:
            j = int(j)
            h = H0 * max(1.0, abs(a[j]))
            pts += (
                [(k, -1, j, 1j * CS * max(1.0, abs(a[j])))] if safe else [(k, -1, j, t) for t in (h, -h, h / 2, -h / 2)]
            )
        spans[k] = (start, len(pts))
    if not pts:
        return {}, 0, None
    rows = evaluate(pts, [])
    if isinstance(rows, str):
        return {}, len(pts), rows
    f = scalar(rows)
    out = {}
    for k, idx in subsets.items():
        s, e = spans[k]
        g = f[s:e]
        sigma = sigmas[k]
        scale = np.maximum(1.0, np.abs(np.asarray(base[k], dtype=float).reshape(-1)[idx]))
        all_got = np.asarray(grads[k], dtype=np.float64).reshape(-1)
        got = all_got[idx]
        floor = np.abs(all_got).max(initial=0.0)
        if safe:
            want = np.imag(g) / (CS * scale)
            # a floor at the tensor's largest entry: forms such as 1 - tanh^2 are right only to
            # an absolute accuracy, in the user's code and in the complex step alike
            floor = max(floor, float(np.abs(want).max(initial=0.0)))
            tol = K_ROUND * (U * (np.abs(got) + np.abs(want) + floor) + sigma / scale)
            tol = tol + RTOL * np.abs(want)
            centre, radius = want, np.zeros_like(want)
        else:
            g = np.real(g).reshape(-1, 4)
            h = H0 * scale
            D1, D2 = (g[:, 0] - g[:, 1]) / (2 * h), (g[:, 2] - g[:, 3]) / h
            want = (4 * D2 - D1) / 3
            tol = K_TRUNC * np.abs(want - D2) + 8 * sigma / h + K_ROUND * (U * (np.abs(got) + floor) + sigma / scale)
            tol = tol + RTOL * np.abs(want)
            right, left = (g[:, 2] - f0) / (h / 2), (f0 - g[:, 3]) / (h / 2)
            kink = selfdir.kinked(selfdir.excess_gap(g, f0, h), right, left, tol, sigma, h)
            centre = np.where(kink, (right + left) / 2, want)
            radius = np.where(kink, np.abs(right - left) / 2, 0.0)
        out[k] = (want, tol, centre, radius)
    return out, len(pts), None
