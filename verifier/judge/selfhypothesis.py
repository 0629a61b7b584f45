"""Self mode's second step, for a tensor whose random directional derivative failed
(verifier/judge/selfdir.py): the right gradient guessed from the wrong one, then tested.

A hypothesis of the diagnosis vocabulary (DESIGN 7) that says what the right gradient is in
terms of the returned g gives a candidate g_hat = fix(g): `transposed` (g_hat = g^T, a square
dW), `sign` and `scale` (g_hat = c g, c from the failed direction: c = f'_v / <g, v>, snapped
to the simplest fraction that still fits it). `zero` names no candidate (the right gradient of a
tensor left at 0 is unknown) and neither does a g whose <g, v> is within tolerance of 0.

The candidate is chosen before any new direction is drawn, then put to the SAME test a passing
tensor passes (selfdir.judge: same tolerance, one direction, complex step when the code is
complex-safe, the Richardson check too) along a FRESH random direction. A g_hat that passes it
is the right gradient at the confidence a pass has, and each entry of g is judged against it
(verifier/judge/selfdiff.py). One that fails leaves the tensor to per-entry evaluation.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import numpy as np

from . import selfdir

DENOMINATORS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)  # fractions tried, simplest first


class Candidate(NamedTuple):
    k: int  # the tensor
    what: str  # "2 times", "the transpose of"
    g_hat: np.ndarray


def _factor(c: float, fits) -> tuple[float, str]:
    """The simplest fraction near c that `fits`, else c itself: (value, text)."""
    for d in DENOMINATORS:
        frac = Fraction(c).limit_denominator(d)
        if frac != 0 and fits(float(frac)):
            return float(frac), str(frac)
    return c, f"{c:.10g}"


def candidate(k: int, g, v, est: selfdir.Estimate, a, safe: bool) -> Candidate | None:
    """The hypothesis the failed direction v supports for tensor k, or None."""
    g = np.asarray(g, dtype=np.float64)
    if not np.any(g) or not np.all(np.isfinite(g)):
        return None
    if g.ndim == 2 and g.shape[0] == g.shape[1] > 1:
        j = selfdir.judge(g.T, v, est, a, safe)
        if j.ok and not j.kink:
            return Candidate(k, "the transpose of", g.T.copy())
    zero = selfdir.judge(np.zeros_like(g), v, est, a, safe)
    got = float(np.sum(g * v))
    if zero.ok or zero.kink or abs(got) <= zero.tolerance:
        return None  # f'_v or <g, v> indistinguishable from 0: no factor to read off

    def fits(c: float) -> bool:
        j = selfdir.judge(c * g, v, est, a, safe)
        return j.ok and not j.kink

    want = est.cs if safe else est.rich
    c, text = _factor(want / got, fits)
    if not fits(c):
        return None
    return Candidate(k, "-1 times" if c == -1 else f"{text} times", c * g)


class Confirmed(NamedTuple):
    candidates: dict[int, Candidate]  # the tensors whose candidate passed
    rejected: dict[int, Candidate]
    estimates: dict[int, selfdir.Estimate]  # the fresh directions' estimates, of every candidate
    evaluations: int
    error: str | None


def confirm(evaluate, base, scalar, cands: list[Candidate], f0: float, sigmas: dict, safe: bool, seed: int):
    """Each candidate put to the directional test along a fresh random direction, in one batch."""
    if not cands:
        return Confirmed({}, {}, {}, 0, None)
    rng = np.random.default_rng([abs(int(seed)), 1])  # a stream of its own: not the first test's
    dirs = selfdir.directions([base[c.k] for c in cands], rng)
    pts = [p for i, c in enumerate(cands) for p in selfdir.points(c.k, i, base[c.k], ladder=False)]
    rows = evaluate(pts, dirs)
    if isinstance(rows, str):
        return Confirmed({}, {}, {}, len(pts), rows)
    f = scalar(rows)
    good: dict[int, Candidate] = {}
    bad: dict[int, Candidate] = {}
    ests: dict[int, selfdir.Estimate] = {}
    n = selfdir.STEPS
    for i, c in enumerate(cands):
        est = selfdir.estimate(f[n * i : n * (i + 1)], base[c.k], f0, sigmas[c.k])
        ests[c.k] = est
        j = selfdir.judge(c.g_hat, dirs[i], est, base[c.k], safe)
        # complex-safe along the first directions must hold along this one too
        passed = j.ok and not j.kink and (est.agrees or not safe)
        (good if passed else bad)[c.k] = c
    return Confirmed(good, bad, ests, len(pts), None)
