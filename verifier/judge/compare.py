"""Judge gradients entry by entry: every entry against its own tolerance, kink entries against
their interval. Returns records; raises nothing and exits nothing (compute, judge, report)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..records import EntryError, TensorVerdict
from .lazy import Lazy, part

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


BLOCK = 1 << 18  # entries judged at once: a big tensor is judged in row blocks of about 2 MB


def row_blocks(shape) -> list:
    """Slices of the first axis that split an array of `shape` into blocks of about BLOCK
    entries (one slice for a small array): what is judged at once, so that judging a 32 MB
    tensor makes a few 2 MB temporaries, not several 32 MB ones."""
    if len(shape) == 0:
        return [slice(None)]
    per_row = max(1, int(np.prod(shape[1:], dtype=np.int64)))
    step = max(1, BLOCK // per_row)
    return [slice(i, min(i + step, shape[0])) for i in range(0, max(shape[0], 1), step)]


class _Best:
    """The WORST largest keys seen so far, with their entries' values, ties by position (what
    _top gives on the whole tensor: NaN first, then largest, then lowest index)."""

    def __init__(self):
        self.keys: list = []

    def add(self, keys, positions, *columns) -> None:
        for i in _top(keys.copy(), WORST):
            k = float(keys[i])
            self.keys.append((0 if k != k else 1, -k if k == k else 0.0, int(positions[i]), *(c[i] for c in columns)))
        self.keys.sort()
        del self.keys[WORST:]

    def entries(self):
        return [k[2:] for k in self.keys]


def tensor_verdict(layer, param, got, expected, tol, centre=None, radius=None, excused=None):
    """A TensorVerdict for tensor `param` of `layer` (1-based), with the worst few entries: the
    failing ones by error over tolerance, or, when none fails, the closest to failing. Judged
    in row blocks (row_blocks): what a block leaves is its counts, maxima and worst entries."""
    if np.ndim(expected) == 0:  # a scalar (a layer's loss value): judged as one entry, reported at ()
        one = [None if a is None else np.reshape(a, 1) for a in (got, expected, tol, centre, radius, excused)]
        v = tensor_verdict(layer, param, *one)
        return replace(v, worst=tuple(replace(e, index=()) for e in v.worst))
    shape = np.shape(expected)
    got, expected = np.asarray(got), _array(expected)
    per_row = int(np.prod(shape[1:], dtype=np.int64))
    failed = spared_n = 0
    max_abs = max_rel = np.float64(0.0)  # np.maximum below: a NaN maximum stays NaN
    worst_failing, worst_any = _Best(), _Best()
    for rows in row_blocks(shape):
        t = part(tol, rows, shape)
        fail, kink, abs_error, nearest = entry_errors(
            got[rows], expected[rows], t, *(part(a, rows, shape) for a in (centre, radius, excused))
        )
        first = (rows.start or 0) * per_row
        n_fail = int(np.count_nonzero(fail))
        failed += n_fail
        spared = kink & ~fail
        spared_n += int(np.count_nonzero(spared))
        judged = ~spared
        flat_err, flat_tol, flat_near = abs_error.ravel(), t.ravel(), nearest.ravel()
        flat_got = np.asarray(got[rows], dtype=np.float64).ravel()
        bad = _badness(flat_err, flat_tol)
        positions = np.arange(first, first + flat_err.size)
        if n_fail:
            at = np.flatnonzero(fail)
            worst_failing.add(bad[at], positions[at], flat_got[at], flat_near[at], flat_err[at], flat_tol[at])
        if not failed:  # the closest to failing matter only while nothing failed
            worst_any.add(bad, positions, flat_got, flat_near, flat_err, flat_tol)
        max_abs = np.maximum(max_abs, np.max(abs_error, where=judged, initial=0.0))
        size = np.abs(nearest)
        rel_mask = size > t
        rel_mask &= judged
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.divide(abs_error, size, out=size, where=rel_mask)
            rel[~rel_mask] = 0.0
        max_rel = np.maximum(max_rel, np.max(rel, initial=0.0))
    chosen = worst_failing.entries() if failed else worst_any.entries()
    worst = tuple(
        EntryError(
            tuple(int(i) for i in np.unravel_index(k, shape)),
            float(g),
            float(n),
            float(err),
            float(relative(err, n)),
            float(t),
        )
        for k, g, n, err, t in chosen
    )
    return TensorVerdict(
        layer=layer,
        param=param,
        compared=int(np.size(expected)),
        excused=spared_n,
        failed=failed,
        max_abs=float(max_abs),
        max_rel=float(max_rel),
        worst=worst,
    )


def any_failed(got, expected, tol, centre=None, radius=None, excused=None, params=(0, 1)) -> bool:
    """Whether compare_gradients would fail any tensor (same arguments), without building the
    verdicts: the cheap question asked of references that must agree and of an update.
    `params`: which of each layer's tensors to look at (0: W, 1: b). Judged in row blocks."""
    for l, (g, e, t) in enumerate(zip(got, expected, tol)):
        for p in params:
            c = centre[l][p] if centre is not None else None
            r = radius[l][p] if radius is not None else None
            x = excused[l][p] if excused is not None else None
            gp, ep = np.asarray(g[p]), _array(e[p])
            if np.ndim(ep) == 0:  # a scalar: one block of one entry
                if entry_errors(gp, ep, t[p], c, r, x)[0].any():
                    return True
                continue
            shape = np.shape(ep)
            for rows in row_blocks(shape):
                blocks = (part(a, rows, shape) for a in (t[p], c, r, x))
                if entry_errors(gp[rows], ep[rows], *blocks)[0].any():
                    return True
    return False


def _array(a):
    """An array, or a lazy one kept lazy (judged a block at a time)."""
    return a if isinstance(a, Lazy) else np.asarray(a)


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
