"""Self mode's cheap test (verifier/judge/selfdiff.py): a tensor's gradient g judged by one
random directional derivative of the user's own function f.

For a unit direction v, f is evaluated at the tensor's base point moved by t v for
t = +-h, +-h/2 (central differences D1, D2 and one Richardson step R = (4 D2 - D1) / 3) and
t = i * 1e-20 * scale (the complex step, Im f / t, when the code is complex-safe), and, on the
first test of a tensor, at a ladder t = k * 1e-4 h, k = 0..7, whose fourth differences measure
f's rounding noise sigma. <g, v> is then right when it is within

    K_ROUND (u (sum |g v| + |f'_v|) + sigma / scale) + RTOL sum |g v| (+ K_TRUNC |R - D2| + 8 sigma / h)

of the complex step (or of R, with the bracketed truncation and rounding of the differences),
or, at a kink, anywhere between the two one-sided differences at h/2. A kink is told from a
smooth f by how the gap between the one-sided differences shrinks with the step: h f'' at h
and h/2 f'' at h/2 where f is smooth, the slope's jump at both across a kink (`kinked`). A tensor g
with g != f' passes only if a random v happens to miss the difference: that chance is what a
pass's confidence is, and any candidate gradient put to this same test earns the same.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

U = np.finfo(np.float64).eps / 2
H0 = 1e-3  # central-difference step, times max(1, rms of the tensor)
CS = 1e-20  # complex step, times the same scale
LADDER = 8  # noise ladder points per tensor
STEPS = 5  # +h, -h, +h/2, -h/2, the complex step
K_ROUND = 32.0  # safety factor over the rounding of <g, v> and of complex-step values
K_TRUNC = 4.0  # safety factor over Richardson's error estimate
RTOL = 1e-11  # the user's own rounding, unknown without their forward: far below any bug's O(1)


def directions(arrays, rng) -> list[np.ndarray]:
    """A random unit direction of each array's shape."""
    out = []
    for a in arrays:
        v = rng.normal(size=np.shape(a))
        out.append(v / max(np.linalg.norm(v), 1e-300))
    return out


def scale(a) -> float:
    a = np.asarray(a, dtype=float)
    return max(1.0, float(np.sqrt(np.mean(a * a)))) if a.size else 1.0


def step(a) -> float:
    return H0 * scale(a)


def points(k: int, i: int, a, *, ladder: bool) -> list[tuple[int, int, int, complex]]:
    """The points of one directional test of tensor k along direction i (STEPS, then LADDER)."""
    h = step(a)
    pts = [(k, i, -1, t) for t in (h, -h, h / 2, -h / 2, 1j * CS * scale(a))]
    return pts + ([(k, i, -1, j * h * 1e-4) for j in range(LADDER)] if ladder else [])


def noise(ladder) -> float:
    """sigma from the fourth differences of f on the ladder (each has variance 70 sigma^2)."""
    d4 = np.diff(np.real(ladder), n=4)
    return float(np.sqrt(np.mean(d4 * d4) / 70.0)) if d4.size else 0.0


class Estimate(NamedTuple):
    """f's derivative along one direction, by both methods, with what bounds their errors."""

    rich: float  # Richardson's central difference
    tol_fd: float  # its truncation and rounding bound
    cs: float  # the complex step (meaningless unless `agrees`)
    one_sided: tuple[float, float]  # (right, left) differences at h/2
    excess: float  # gap(h) - 2 gap(h/2) of the one-sided differences: 0 to O(h^3) where f is smooth
    sigma: float  # f's rounding noise
    agrees: bool  # complex values came back, Re f = f0, and Im f / t agrees with Richardson


def estimate(g, a, f0: float, sigma: float) -> Estimate:
    """The Estimate from the STEPS values of `points` (in order) around f0."""
    h = step(a)
    D1, D2 = np.real(g[0] - g[1]) / (2 * h), np.real(g[2] - g[3]) / h
    rich = float((4 * D2 - D1) / 3)
    tol_fd = float(K_TRUNC * abs(rich - D2) + 8 * sigma / h)
    cs = float(np.imag(g[4]) / (CS * scale(a)))
    agrees = bool(
        np.iscomplexobj(g) and abs(np.real(g[4]) - f0) <= 8 * sigma and abs(cs - rich) <= tol_fd + 1e-8 * abs(cs)
    )
    one_sided = (float((np.real(g[2]) - f0) / (h / 2)), float((f0 - np.real(g[3])) / (h / 2)))
    excess = float(excess_gap(np.real(g[:4]), f0, h))
    return Estimate(rich, tol_fd, cs, one_sided, excess, sigma, agrees)


def excess_gap(g, f0, h):
    """gap(h) - 2 gap(h/2), gap(s) = (f(s) - f0) / s - (f0 - f(-s)) / s, from the values at
    +h, -h, +h/2, -h/2 (the last axis): h^3 f''''/16 and rounding where f is smooth, minus the
    slope's jump across a kink."""
    g = np.asarray(g, dtype=float)
    gap_h = (g[..., 0] + g[..., 1] - 2 * f0) / h
    gap_h2 = (g[..., 2] + g[..., 3] - 2 * f0) / (h / 2)
    return gap_h - 2 * gap_h2


def kinked(excess, right, left, tol, sigma, h):
    """Whether the one-sided differences show a kink (elementwise): their gap does not shrink
    with the step as a smooth f's does, beyond the tolerance and the differences' rounding."""
    slack = 2 * tol + 48 * sigma / h + 1e-6 * np.maximum(np.abs(right), np.abs(left))
    return np.abs(excess) > slack


class Judged(NamedTuple):
    ok: bool
    error: float  # |<g, v> - f'_v|
    tolerance: float
    kink: bool  # the one-sided differences disagree: judged as an interval


def judge(g, v, est: Estimate, a, safe: bool) -> Judged:
    """<g, v> against the derivative along v (the complex step when `safe`, else Richardson)."""
    g = np.asarray(g, dtype=np.float64)
    got = float(np.sum(g * v))
    size = float(np.sum(np.abs(g * v)))
    want = est.cs if safe else est.rich
    tol = (
        K_ROUND * (U * (size + abs(want)) + est.sigma / scale(a)) + RTOL * size + (0.0 if safe else est.tol_fd) + 1e-300
    )
    lo, hi = min(est.one_sided), max(est.one_sided)
    kink = not safe and bool(kinked(est.excess, hi, lo, tol, est.sigma, step(a)))
    ok = abs(got - want) <= tol or (kink and lo - tol <= got <= hi + tol)
    return Judged(bool(ok), abs(got - want), tol, bool(kink))
