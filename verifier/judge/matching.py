"""The comparisons every diagnosis signature is made of: a prediction of the whole gradient
against what the implementation returned, entry by entry, within tolerance.

A prediction matches when every entry is within SLACK times the verdict's tolerance, plus, for
the gradient of a wrong delta rule (verifier/judge/signatures.py), TERMS unit roundoffs times
the size of the terms that entry sums: a wrong h' can make the terms larger than the right
gradient's, and their rounding with them. Entries a kink makes uncertain are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import signatures as sig

SLACK = 4.0
TERMS = 64.0


class Tols(NamedTuple):
    """The tolerances a case's gradient is judged with."""

    tol: list  # [(tW, tb), ...] per entry, the verdict's
    radius: list | None = None  # kink radii: entries with radius > 0 are left out
    tol32: list | None = None  # float32 tolerances, for `precision`
    unit_roundoff: float = 2.0**-53
    returned_dtype: str | None = None


class Finding(NamedTuple):
    label: str | None
    note: str | None
    settled: bool  # enough evidence, and one name: a larger case would add nothing
    explains: Callable | None = None  # explains(case, got, expected, tols) -> bool


UNSETTLED = Finding(None, None, False)  # too little evidence on this case to say anything
NOTHING = Finding(None, None, True)  # the evidence is there, and no signature fits


def f64(grads):
    return [tuple(np.asarray(x, dtype=np.float64) for x in g) for g in grads]


def skips(expected, tols: Tols):
    """[(mW, mb), ...]: the entries no signature is judged on (kink entries)."""
    if tols.radius is None:
        return [(np.zeros(np.shape(W), bool), np.zeros(np.shape(b), bool)) for W, b in expected]
    return [tuple(np.asarray(r) > 0 for r in rb) for rb in tols.radius]


def fits(got, want, tol, skip) -> bool:
    """|got - want| <= tol in every entry but the skipped ones (NaN never fits)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return all(
            bool(np.all((np.abs(g[p] - w[p]) <= t[p]) | s[p]))
            for g, w, t, s in zip(got, want, tol, skip)
            for p in (0, 1)
        )


def failing(got, expected, tols: Tols, skip, margin: float = 1.0):
    """[(mW, mb), ...]: the entries that fail by more than `margin` times their tolerance
    (kink entries left out). With margin 2 SLACK, an entry is evidence: a prediction that
    matches it within SLACK tolerances cannot also match the right value."""
    with np.errstate(invalid="ignore", over="ignore"):
        return [
            tuple(~(np.abs(g[p] - e[p]) <= margin * t[p]) & ~s[p] for p in (0, 1))
            for g, e, t, s in zip(got, expected, tols.tol, skip)
        ]


def keys_of(masks):
    """{(layer, "W" | "b")} of the tensors with an entry in `masks`."""
    return {(l, "Wb"[p]) for l, m in enumerate(masks, start=1) for p in (0, 1) if np.any(m[p])}


def applied(keys, expected, f):
    """The expected gradient with f applied to the tensors in `keys`."""
    return [tuple(f(e[p]) if (l, "Wb"[p]) in keys else e[p] for p in (0, 1)) for l, e in enumerate(expected, start=1)]


def scaled(tols: Tols, k: float = 1.0, symmetric: bool = False):
    """SLACK * k * the verdict's tolerances; `symmetric`: square W tolerances made symmetric
    (for comparing with a transpose)."""

    def sym(t):
        return np.maximum(t, t.T) if symmetric and t.ndim == 2 and t.shape[0] == t.shape[1] else t

    return [(SLACK * k * sym(tW), SLACK * k * tb) for tW, tb in tols.tol]


def same(a, b) -> bool:
    """Equal to rounding: two formulas giving the same values on a case."""
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(np.asarray(a, float) - np.asarray(b, float)) <= 1e-15 * (1 + np.abs(b))))


def layers(ls) -> str:
    ls = list(ls)
    if len(ls) == 1:
        return f"layer {ls[0]}"
    return "layers " + ", ".join(map(str, ls[:-1])) + f" and {ls[-1]}"


def tensors(keys) -> str:
    return ", ".join(f"layer {l} {p}" for l, p in sorted(keys))


def matches_wrong(case, got, expected, tols: Tols, wrong: sig.Wrong) -> bool:
    """Whether `got` is the gradient of the wrong delta rule `wrong`, within tolerance."""
    pred = sig.gradients(case, wrong)
    mag = sig.magnitude(case, wrong)
    if not all(np.all(np.isfinite(x[p])) for xs in (pred, mag) for x in xs for p in (0, 1)):
        return False  # a saturated output's dJ/dy overflows: no prediction, and no infinite tolerance
    u = tols.unit_roundoff
    tol = [tuple(SLACK * t[p] + TERMS * u * m[p] for p in (0, 1)) for t, m in zip(tols.tol, mag)]
    return fits(got, pred, tol, skips(expected, tols))


def wrong_finding(label, note, wrong_on, settled=True) -> Finding:
    """A Finding whose prediction on any case is the gradient of the wrong delta rule
    `wrong_on(case)`."""

    def explains(c2, g2, e2, t2):
        return matches_wrong(c2, f64(g2), e2, t2, wrong_on(c2))

    return Finding(label, note, settled, explains)
