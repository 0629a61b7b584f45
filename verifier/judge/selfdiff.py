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
   one-sided differences that disagree mark a kink, judged as an interval. Every tolerance
   has an absolute floor of K sigma / scale: without the user's forward, the rounding of forms
   such as 1 - tanh^2 near saturation (right only to an absolute accuracy, in their gradient
   and in the complex step alike) is bounded by f's own measured noise;
4. per entry only for the tensors that failed: one more batch (1 point an entry by complex
   step, else 4), judged entry by entry like model mode, worst entries first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ..records import TensorVerdict
from .compare import tensor_verdict

U = np.finfo(np.float64).eps / 2
H0 = 1e-3  # central-difference step, times max(1, rms of the tensor)
CS = 1e-20  # complex step, times the same scale
LADDER = 8  # noise ladder points per tensor
K_ROUND = 32.0  # safety factor over the rounding of <g, v> and of complex-step values
K_TRUNC = 4.0  # safety factor over Richardson's error estimate
RTOL = 1e-11  # the user's own rounding, unknown without their forward: far below any bug's O(1)


class SelfResult(NamedTuple):
    verdicts: list[TensorVerdict]
    expected: dict[int, np.ndarray]  # tensor -> numerical gradient, for tensors judged per entry
    tolerance: dict[int, np.ndarray]
    method: str  # "complex_step" or "central_diff"
    noise: float  # measured rounding noise of f (largest over tensors)
    evaluations: int
    error: str | None  # the function could not be evaluated (its exception): no verdict
    f0: float | None = None  # the function's value at the base point


def _directions(base, seed):
    rng = np.random.default_rng(seed)
    out = []
    for a in base:
        v = rng.normal(size=np.shape(a))
        out.append(v / max(np.linalg.norm(v), 1e-300))
    return out


def _scale(a) -> float:
    a = np.asarray(a, dtype=float)
    return max(1.0, float(np.sqrt(np.mean(a * a)))) if a.size else 1.0


def _noise(ladder) -> float:
    """sigma from the fourth differences of f on the ladder (each has variance 70 sigma^2)."""
    d4 = np.diff(np.real(ladder), n=4)
    return float(np.sqrt(np.mean(d4 * d4) / 70.0)) if d4.size else 0.0


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
    dirs = _directions([base[k] for k in judged], seed)
    pts: list[tuple[int, int, int, complex]] = [(judged[0], -1, -1, 0.0), (judged[0], -1, -1, 0.0)]
    for i, k in enumerate(judged):
        h = H0 * _scale(base[k])
        pts += [(k, i, -1, t) for t in (h, -h, h / 2, -h / 2, 1j * CS * _scale(base[k]))]
        pts += [(k, i, -1, j * h * 1e-4) for j in range(LADDER)]
    rows = evaluate(pts, dirs)
    if isinstance(rows, str):
        return SelfResult([], {}, {}, "", 0.0, len(pts), rows)
    f = scalar(rows)
    f0 = np.real(f[0])
    per = 5 + LADDER
    noise_repeat = abs(np.real(f[0]) - np.real(f[1]))
    noises, safe, info = [], True, []
    for i, k in enumerate(judged):
        g = f[2 + per * i : 2 + per * (i + 1)]
        h = H0 * _scale(base[k])
        # the floor: an output gradient of up to sqrt|f| + |f| (the losses of DESIGN 2), rounded,
        # carried through values of the case's size
        reach = max([1.0] + [float(np.abs(np.real(a)).max(initial=0.0)) for a in base if np.size(a)])
        sigma = max(_noise(g[5:]), noise_repeat, U * (abs(f0) + np.sqrt(abs(f0))) * reach)
        D1, D2 = np.real(g[0] - g[1]) / (2 * h), np.real(g[2] - g[3]) / h
        rich = (4 * D2 - D1) / 3
        tol_fd = K_TRUNC * abs(rich - D2) + 8 * sigma / h
        cs = np.imag(g[4]) / (CS * _scale(base[k]))
        if not (
            np.iscomplexobj(g) and abs(np.real(g[4]) - f0) <= 8 * sigma and abs(cs - rich) <= tol_fd + 1e-8 * abs(cs)
        ):
            safe = False
        one_sided = (np.real(g[2]) - f0) / (h / 2), (f0 - np.real(g[3])) / (h / 2)
        info.append((rich, tol_fd, cs, one_sided, sigma))
        noises.append(sigma)
    verdicts, failing = [], []
    for i, k in enumerate(judged):
        rich, tol_fd, cs, one_sided, sigma = info[i]
        g_k = np.asarray(grads[k], dtype=np.float64)
        got = float(np.sum(g_k * dirs[i]))
        size = float(np.sum(np.abs(g_k * dirs[i])))
        want = cs if safe else rich
        tol = (
            K_ROUND * (U * (size + abs(want)) + sigma / _scale(base[k]))
            + RTOL * size
            + (0.0 if safe else tol_fd)
            + 1e-300
        )
        lo, hi = min(one_sided), max(one_sided)
        kink = not safe and hi - lo > 2 * tol + 1e-6 * max(abs(lo), abs(hi))
        ok = abs(got - want) <= tol or (kink and lo - tol <= got <= hi + tol)
        v = TensorVerdict(layer, names[k], int(g_k.size), int(g_k.size) if kink else 0, 0, abs(got - want), 0.0, ())
        if ok:
            verdicts.append(v)
        else:
            failing.append(k)
            verdicts.append(v)  # replaced below by the per-entry verdict
    expected, tolerance, count = {}, {}, len(pts)
    if failing:
        entry_verdicts, expected, tolerance, n, err = _entries(
            evaluate, base, grads, names, scalar, failing, safe, noises, judged, f0, layer
        )
        count += n
        doubtful = [k for k in failing if entry_verdicts.get(k) is not None and entry_verdicts[k].failed]
        if not err and safe and doubtful:
            # a complex step is exact only where the code is analytic (np.var, abs, conj are not):
            # a failure it finds is confirmed by central differences before it stands, first at a
            # sample of entries (the worst and some at random); where they disagree, everywhere
            sample = {k: _sample(expected[k], grads[k], tolerance[k], seed) for k in doubtful}
            n, err, disagree = _confirm(evaluate, base, scalar, sample, expected, noises, judged, f0)
            count += n
            if not err and disagree:
                cd = _entries(evaluate, base, grads, names, scalar, disagree, False, noises, judged, f0, layer)
                count += cd[3]
                err = cd[4]
                for k in disagree:  # where central differences pass, the complex step was wrong
                    if not err and not cd[0][k].failed:
                        entry_verdicts[k], expected[k], tolerance[k] = cd[0][k], cd[1][k], cd[2][k]
        if err:
            return SelfResult([], {}, {}, "", 0.0, count, err)
        verdicts = [entry_verdicts.get(judged[i], v) for i, v in enumerate(verdicts)]
    method = "complex_step" if safe else "central_diff"
    return SelfResult(verdicts, expected, tolerance, method, max(noises, default=0.0), count, None, float(f0))


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
        if not np.all((np.abs(cs - rich) <= tol) | ((lo - tol <= cs) & (cs <= hi + tol))):
            disagree.append(k)
    return len(pts), None, disagree


def _entries(evaluate, base, grads, names, scalar, failing, safe, noises, judged, f0, layer):
    """Per-entry verdicts of the failing tensors, in one more batch of points."""
    pts, spans = [], {}
    for k in failing:
        a = np.asarray(base[k], dtype=float).reshape(-1)
        start = len(pts)
        for j in range(a.size):
            h = H0 * max(1.0, abs(a[j]))
            pts += (
                [(k, -1, j, 1j * CS * max(1.0, abs(a[j])))] if safe else [(k, -1, j, t) for t in (h, -h, h / 2, -h / 2)]
            )
        spans[k] = (start, len(pts))
    rows = evaluate(pts, [])
    if isinstance(rows, str):
        return {}, {}, {}, len(pts), rows
    f = scalar(rows)
    out, expected, tolerance = {}, {}, {}
    for k in failing:
        a = np.asarray(base[k], dtype=float)
        s, e = spans[k]
        g = f[s:e]
        sigma = noises[judged.index(k)]
        scale = np.maximum(1.0, np.abs(a.reshape(-1)))
        got = np.asarray(grads[k], dtype=np.float64)
        if safe:
            want = np.imag(g) / (CS * scale)
            # a floor at the tensor's largest entry: forms such as 1 - tanh^2 are right only to
            # an absolute accuracy, in the user's code and in the complex step alike
            tol = K_ROUND * (
                U * (np.abs(got.reshape(-1)) + np.abs(want) + np.abs(want).max(initial=0.0)) + sigma / scale
            )
            tol = tol + RTOL * np.abs(want)
            centre, radius = want, np.zeros_like(want)
        else:
            g = np.real(g).reshape(-1, 4)
            h = H0 * scale
            D1, D2 = (g[:, 0] - g[:, 1]) / (2 * h), (g[:, 2] - g[:, 3]) / h
            want = (4 * D2 - D1) / 3
            floor = np.abs(got).max(initial=0.0)
            tol = (
                K_TRUNC * np.abs(want - D2)
                + 8 * sigma / h
                + K_ROUND * (U * (np.abs(got.reshape(-1)) + floor) + sigma / scale)
            )
            tol = tol + RTOL * np.abs(want)
            right, left = (g[:, 2] - f0) / (h / 2), (f0 - g[:, 3]) / (h / 2)
            kink = np.abs(right - left) > 2 * tol + 1e-6 * np.maximum(np.abs(right), np.abs(left))
            centre = np.where(kink, (right + left) / 2, want)
            radius = np.where(kink, np.abs(right - left) / 2, 0.0)
        shape = a.shape
        want, tol = want.reshape(shape), tol.reshape(shape)
        out[k] = tensor_verdict(
            layer, names[k], got.reshape(shape), want, tol, centre.reshape(shape), radius.reshape(shape)
        )
        expected[k], tolerance[k] = want, tol
    return out, expected, tolerance, len(pts), None
