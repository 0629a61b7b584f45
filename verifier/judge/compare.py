"""Judge gradients entry by entry: every entry against its own tolerance, kink entries against
their interval. Returns records; raises nothing and exits nothing (compute, judge, report)."""

from __future__ import annotations

from dataclasses import replace

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
    if radius is not None and np.any(radius):  # a network without kinks skips the interval
        kink = radius > 0
        nearest = np.where(kink, np.clip(got, centre - radius, centre + radius), expected)
    with np.errstate(invalid="ignore"):
        abs_error = np.subtract(got, nearest)
        np.abs(abs_error, out=abs_error)
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


def _top(keys, k):
    """Positions of the k largest keys (all >= 0 or inf), largest first, ties by position: what
    a stable sort of -keys cut to k gives, by k passes of argmax (which returns the first of
    equals) instead of a sort or a partitioned copy of a big tensor. `keys` is scratch: the
    chosen entries are overwritten."""
    out = []
    for _ in range(min(k, len(keys))):
        i = int(np.argmax(keys))
        out.append(i)
        keys[i] = -1.0
    return np.array(out, dtype=np.intp)


def _badness(abs_error, tol):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(np.isfinite(abs_error), abs_error / np.maximum(tol, 1e-300), np.inf)


def tensor_verdict(layer, param, got, expected, tol, centre=None, radius=None, excused=None):
    """A TensorVerdict for tensor `param` of `layer` (1-based), with the worst few entries: the
    failing ones by error over tolerance, or, when none fails, the closest to failing."""
    if np.ndim(expected) == 0:  # a scalar (a layer's loss value): judged as one entry, reported at ()
        one = [None if a is None else np.reshape(a, 1) for a in (got, expected, tol, centre, radius, excused)]
        v = tensor_verdict(layer, param, *one)
        return replace(v, worst=tuple(replace(e, index=()) for e in v.worst))
    shape = np.shape(expected)
    tol = np.broadcast_to(tol, shape)
    fail, kink, abs_error, nearest = entry_errors(got, expected, tol, centre, radius, excused)
    failed = int(np.count_nonzero(fail))
    spared = kink & ~fail
    judged = ~spared  # max errors over judged entries; relative ones where |value| > tol
    flat_err, flat_tol = abs_error.ravel(), tol.ravel()
    if failed:
        at = np.flatnonzero(fail)
        order = at[_top(_badness(flat_err[at], flat_tol[at]), WORST)]
    elif spared.any():  # excused entries may hold any error, NaN included
        order = _top(_badness(flat_err, flat_tol), WORST)
    else:  # every error is within its (finite) tolerance, so finite: _badness without its checks
        ratio = np.maximum(flat_tol, 1e-300)
        with np.errstate(invalid="ignore"):
            np.divide(flat_err, ratio, out=ratio)
        order = _top(ratio if not np.isnan(ratio).any() else _badness(flat_err, flat_tol), WORST)  # inf / inf
        del ratio
    size = np.abs(nearest)
    rel_mask = size > tol
    rel_mask &= judged
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.divide(abs_error, size, out=size, where=rel_mask)
        rel[~rel_mask] = 0.0
    got64 = np.asarray(got, dtype=np.float64).ravel()
    flat_near = nearest.ravel()
    worst = tuple(
        EntryError(
            tuple(int(i) for i in np.unravel_index(k, shape)),
            float(got64[k]),
            float(flat_near[k]),
            float(flat_err[k]),
            float(relative(flat_err[k], flat_near[k])),
            float(flat_tol[k]),
        )
        for k in order
    )
    return TensorVerdict(
        layer=layer,
        param=param,
        compared=int(np.size(expected)),
        excused=int(np.count_nonzero(spared)),
        failed=failed,
        max_abs=float(np.max(abs_error, where=judged, initial=0.0)),
        max_rel=float(np.max(rel, initial=0.0)),
        worst=worst,
    )


def any_failed(got, expected, tol, centre=None, radius=None, excused=None, params=(0, 1)) -> bool:
    """Whether compare_gradients would fail any tensor (same arguments), without building the
    verdicts: the cheap question asked of references that must agree and of an update.
    `params`: which of each layer's tensors to look at (0: W, 1: b)."""
    for l, (g, e, t) in enumerate(zip(got, expected, tol)):
        for p in params:
            c = centre[l][p] if centre is not None else None
            r = radius[l][p] if radius is not None else None
            x = excused[l][p] if excused is not None else None
            if entry_errors(g[p], e[p], np.broadcast_to(t[p], np.shape(e[p])), c, r, x)[0].any():
                return True
    return False


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
