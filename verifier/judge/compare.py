"""Judge gradients entry by entry: every entry against its own tolerance, kink entries against
their interval. Returns records; raises nothing and exits nothing (compute, judge, report)."""

from __future__ import annotations

import numpy as np

from ..records import EntryError, TensorVerdict

WORST = 5  # entries kept per tensor: the short table a report leads with


def entry_errors(got, expected, tol, centre=None, radius=None, excused=None):
    """(fail, kink, abs_error, nearest) arrays for one tensor.

    Away from kinks an entry fails when |got - expected| > tol. A kink entry (radius > 0) is
    right anywhere in [centre - radius, centre + radius] and its error is the distance to that
    interval; `nearest` is the closest right value, reported as "expected". `excused` entries
    (a finite difference that straddled a kink) are counted as kinks and never failed.
    """
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    nearest = expected
    kink = np.zeros(expected.shape, dtype=bool)
    if radius is not None:
        kink = radius > 0
        nearest = np.where(kink, np.clip(got, centre - radius, centre + radius), expected)
    with np.errstate(invalid="ignore"):
        abs_error = np.abs(got - nearest)
        fail = ~(abs_error <= tol)  # NaN and inf fail
    if excused is not None:
        fail &= ~excused
        kink = kink | excused
    return fail, kink, abs_error, nearest


def relative(abs_error, expected):
    """abs / |expected|; 0 when both are 0, inf when only the expected value is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = abs_error / np.abs(expected)
    return np.where(abs_error == 0, 0.0, rel)


def tensor_verdict(layer, param, got, expected, tol, centre=None, radius=None, excused=None):
    """A TensorVerdict for tensor `param` of `layer` (1-based), with the worst few entries."""
    tol = np.broadcast_to(tol, np.shape(expected))
    fail, kink, abs_error, nearest = entry_errors(got, expected, tol, centre, radius, excused)
    rel = relative(abs_error, nearest)
    judged = ~(kink & ~fail)  # max errors over judged entries; relative ones where |value| > tol
    with np.errstate(divide="ignore", invalid="ignore"):
        badness = np.where(np.isfinite(abs_error), abs_error / np.maximum(tol, 1e-300), np.inf)
    order = np.lexsort((-badness.ravel(), ~fail.ravel()))[:WORST]
    got64 = np.asarray(got, dtype=np.float64)
    worst = tuple(
        EntryError(
            tuple(int(i) for i in np.unravel_index(k, np.shape(expected))),
            float(got64.flat[k]),
            float(nearest.flat[k]),
            float(abs_error.flat[k]),
            float(rel.flat[k]),
            float(tol.flat[k]),
        )
        for k in order
        if fail.flat[k] or not fail.any()
    )
    return TensorVerdict(
        layer=layer,
        param=param,
        compared=int(np.size(expected)),
        excused=int(np.sum(kink & ~fail)),
        failed=int(np.sum(fail)),
        max_abs=float(np.max(abs_error[judged], initial=0.0)),
        max_rel=float(np.max(rel[judged & (np.abs(nearest) > tol)], initial=0.0)),
        worst=worst,
    )


def compare_gradients(got, expected, tol, centre=None, radius=None, excused=None):
    """A TensorVerdict per (layer, W|b); all arguments are [(W-like, b-like), ...] lists."""
    out = []
    for l, (g, e, t) in enumerate(zip(got, expected, tol), start=1):
        for p, name in enumerate("Wb"):
            out.append(
                tensor_verdict(
                    l,
                    name,
                    g[p],
                    e[p],
                    t[p],
                    centre[l - 1][p] if centre is not None else None,
                    radius[l - 1][p] if radius is not None else None,
                    excused[l - 1][p] if excused is not None else None,
                )
            )
    return out
