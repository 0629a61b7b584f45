"""`check --mode fast`: every parameter tensor checked along a few random directions; entries
only for the tensors that fail there.

For a tensor P (W[l] or b[l]) and a unit direction v of P's shape, the user's gradient g is
right along v when

    |<g, v> - D_v J| <= sum_k |v_k| tol_k,      D_v J = Im J(params + iH v) / H

D_v J is the complex-step directional derivative: the complex forward of the numpy model along
v (each hidden activation's complex step taken once, at the clean pre-activations, for every
direction), no backward pass, no derivative formula. tol_k is the error model's per-entry
tolerance (the user's dtype plus the reference's own float64 rounding, as in full mode), so
the bound holds whenever every entry is within its own tolerance. Directions are Gaussian,
normalised, drawn from (directions_seed, layer, param): the same seed gives the same
directions, and two wrong entries cannot cancel except on a set of directions of measure zero.

What a direction can see. A lone wrong entry k is seen when its error exceeds about
sum|v| tol / |v_k|, i.e. about n times an entry's tolerance for a tensor of n entries (the
price of judging n entries with one number); for a float64 result that is still ~1e-9 of the
gradient's scale at n = 10^5, far below any real bug. Full mode judges each entry by itself.

Kinks: entries the error model gives a kink interval (radius > 0) are left out of the
directions and judged entry by entry against their interval, as in full mode.

A tensor that fails along some direction is then judged entry by entry against the delta
rule, exactly as full mode judges it (tolerance, kink intervals, worst entries, heatmap); the
delta rule itself is cross-checked against the complex step along the same directions, and a
disagreement there is a harness error (ReferenceDisagreement), never the user's.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from reference_impls import complex_step, delta_rule, model

from ..errors import ReferenceDisagreement
from ..records import Failure, TensorVerdict
from . import lazy
from .agreement import HARNESS_BUG, pair_tolerance
from .compare import entry_errors, row_blocks, tensor_verdict
from .lazy import part
from .oracle import Oracle, check_losses
from .references import SECOND_FORWARD, second_loss
from .rows import loss_rows, mismatch_row, nonfinite_rows
from .shape import bias_notes, dtypes_of, structure
from .tolerance import judgement

__all__ = ["DIRECTIONS", "REFERENCES", "FastOracle", "judge_fast"]

DIRECTIONS = 3  # random directions per tensor
REFERENCES = ("complex_step_directional", "delta_rule")


class FastOracle(Oracle):
    """The delta rule's gradients, cross-checked with the complex step along random directions
    of every tensor (not entry by entry); `judgement(dtype)` is full mode's."""

    def __init__(self, case, directions_seed: int, directions: int = DIRECTIONS):
        self.case, self.jd64 = case, judgement(case)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            Z, A = model.forward(list(case.params), case.X, case.spec)  # one forward for both
            self.loss = float(model.loss_from_output(Z[-1], A[-1], case.T, case.spec))
            self.grads = delta_rule.backward(
                list(case.params), Z, A, delta_rule.output_delta(Z, A, case.T, case.spec), case.spec
            )
            self.v, self.kink = _directions(case, self.jd64.radius, directions_seed, directions)
            self.derivs = _directional_derivatives(case, Z, A, self.v)
        self.directions_seed = directions_seed
        where = f"on sizes {list(case.spec.sizes)}: {HARNESS_BUG}"
        check_losses("delta_rule", self.loss, {SECOND_FORWARD: second_loss(case)}, self.jd64, where)
        for (l, name), got, want, t in _along(self.grads, self.v, self.derivs, pair_tolerance(self.jd64)):
            if not np.all(np.abs(got - want) <= t):
                raise ReferenceDisagreement(
                    f"references delta_rule and complex_step disagree along a random direction of "
                    f"layer {l} {name} on sizes {list(case.spec.sizes)} (directions seed "
                    f"{directions_seed}): {HARNESS_BUG}"
                )


def _directions(case, radius, seed, count):
    """Per tensor, `count` unit Gaussian directions over its non-kink entries (Directions), and
    the tensor's kink mask."""
    v, kink = [], []
    for l, ((W, b), (rW, rb)) in enumerate(zip(case.params, radius), start=1):
        pair_v, pair_k = [], []
        for p, (P, r) in enumerate(((W, rW), (b, rb))):
            mask = _kinks(r, P.shape)
            pair_v.append(Directions(int(seed) % 2**63, l, p, P.shape, count, mask))
            pair_k.append(mask)
        v.append(tuple(pair_v))
        kink.append(tuple(pair_k))
    return v, kink


def _kinks(radius, shape):
    """Where the radius is positive, made a row block at a time; a read-only False that takes no
    memory when nothing is (a big network without kinks holds no mask)."""
    blocks = [part(radius, rows, shape) > 0 for rows in row_blocks(shape)]
    if not any(b.any() for b in blocks):
        return np.broadcast_to(False, shape)
    return np.concatenate(blocks)


class Directions(lazy.Lazy):
    """`count` unit Gaussian directions of one tensor's shape, stacked on a leading axis, zero at
    its kink entries. A tensor of one row block (compare.row_blocks) has them drawn from (seed,
    layer, param) and held; a bigger one has each row block drawn from (seed, layer, param,
    block) where it is used (`blocks`), never held whole: 3 directions of a big layer would be
    3 copies of it. Everything computed from a direction is linear in it, so a sweep over raw
    blocks is made unit by `scale` (1/|v| per direction) at its end."""

    def __init__(self, seed, l, p, shape, count, kink):
        self.key, self.shape, self.count, self.kink = (seed, l, p), (count, *shape), count, kink
        self.slices = row_blocks(shape)
        self.held = None
        if len(self.slices) == 1:
            d = _gaussian(seed, l, p, shape, count)
            self.held = _unit(d * ~kink) if np.any(kink) else d
        self.scale = np.ones(count) if self.held is not None else None

    def blocks(self):
        """(rows, raw directions on those rows) for each row block; `scale` is known at the end."""
        if self.held is not None:
            yield slice(None), self.held
            return
        norm2 = np.zeros(self.count)
        for j, rows in enumerate(self.slices):
            d = np.random.default_rng([*self.key, j]).standard_normal(
                (self.count, rows.stop - rows.start, *self.shape[2:])
            )
            if self.kink[rows].any():
                d *= ~self.kink[rows]
            flat = d.reshape(self.count, -1)
            norm2 += np.einsum("ij,ij->i", flat, flat)  # no block-sized square
            yield rows, d
        self.scale = np.divide(1.0, np.sqrt(norm2), out=np.zeros(self.count), where=norm2 > 0)

    def rows(self, key):  # the whole stack, unit (what a test or a small tensor's reader sees)
        whole = self.held if self.held is not None else np.concatenate([d for _, d in self.blocks()], axis=1)
        return (whole * self.scale.reshape(-1, *[1] * (whole.ndim - 1)))[key]


@functools.lru_cache(maxsize=32)
def _gaussian(seed, l, p, shape, count):
    """`count` unit Gaussian directions of `shape` from (seed, layer, param); the same for every
    case of a run, so drawn once (read-only)."""
    d = _unit(np.random.default_rng([seed, l, p]).standard_normal((count, *shape)))
    d.flags.writeable = False
    return d


def _unit(d):
    norm = np.sqrt(np.sum(d**2, axis=tuple(range(1, d.ndim)), keepdims=True))
    return np.divide(d, norm, out=np.zeros_like(d), where=norm > 0)


def _directional_derivatives(case, Z, A, v):
    """D_v J = Im J(params + iH v) / H for every direction of every tensor, from the clean forward
    Z, A, by the complex step's own tangent map (reference_impls/complex_step.py):

        t_Z[l] = A[l-1] V^T (a W direction) or V (a b direction)
        t_Z[m+1] = (s_m * t_Z[m]) W[m+1]^T,   s_m = Im h_m(Z[m] + iH) / H  (complex step of h_m)
        D_v J = sum t_Z[L] * G,   G = Im J(Z[L] + iH e_nk) / H  (the output activation and loss)

    so each hidden activation takes one complex step, at the clean pre-activations, for every
    direction at once; no derivative formula is used. A W direction's rows are its outputs:
    t_Z is filled a row block of V at a time."""
    spec = case.spec
    slope = complex_step.slopes(Z, spec)
    G = complex_step.output_gradient(Z[-1], case.T, spec)
    out = []
    for l, (VW, Vb) in enumerate(v, start=1):
        tW = np.empty((VW.count, *Z[l].shape))
        for rows, d in VW.blocks():
            tW[:, :, rows] = A[l - 1] @ np.swapaxes(d, 1, 2)
        tW *= VW.scale[:, None, None]
        vb = np.asarray(Vb)
        t = np.concatenate([tW, np.broadcast_to(vb[:, None, :], (len(vb), *Z[l].shape))])
        tL, _ = complex_step.carry(case.params, slope, l, t)
        d = np.einsum("ebk,bk->e", tL, G)
        out.append((d[: VW.count], d[VW.count :]))
    return out


def _along(grads, v, derivs, tol):
    """Per tensor: ((layer, name), <g, v_k> for each k, D_{v_k} J, sum |v_k| tol), a row block at a time."""
    for l, (g, vs, ds, ts) in enumerate(zip(grads, v, derivs, tol), start=1):
        for p, name in enumerate("Wb"):
            gp, dirs = np.asarray(g[p], dtype=np.float64), vs[p]
            got, bound = np.zeros(dirs.count), np.zeros(dirs.count)
            for rows, d in dirs.blocks():
                flat, gb = d.reshape(dirs.count, -1), gp[rows].ravel()
                with np.errstate(invalid="ignore", over="ignore"):
                    dot = flat @ gb
                    if not np.all(np.isfinite(dot)):  # 0 * nan outside v is not the user's fault here
                        dot = flat @ np.where(flat.any(axis=0), gb, 0.0)
                    got += dot
                bound += np.abs(flat) @ np.ravel(part(ts[p], rows, gp.shape))
            with np.errstate(invalid="ignore", over="ignore"):
                got, bound = got * dirs.scale, bound * dirs.scale
            yield (l, name), got, ds[p], bound


def judge_fast(case, oracle, grads, loss, layout=None, loss_dtype=None):
    """(failures, tensor verdicts, dtype) like check.judge_gradients, by directions first; the
    loss value judged to `loss_dtype`, the dtype it came back in."""
    shaped = structure(case, grads, layout)
    if isinstance(shaped, Failure):
        return [shaped], [], None
    notes = bias_notes(case, grads)
    grads, dtype = shaped
    kinds = dtypes_of(grads)
    jd = oracle.judgement_of(kinds)
    failures, verdicts = [], []
    for (l, name), got, want, tol in _along(grads, oracle.v, oracle.derivs, jd.tol):
        k, p = l - 1, "Wb".index(name)
        g = np.asarray(grads[k][p], dtype=np.float64)
        kink = oracle.kink[k][p]
        with np.errstate(invalid="ignore"):
            off = ~(np.abs(got - want) <= tol)
        fail_kink = (
            kink.any()
            and (entry_errors(g, oracle.grads[k][p], jd.tol[k][p], jd.centre[k][p], jd.radius[k][p])[0] & kink).any()
        )
        if not off.any() and not fail_kink and np.all(np.isfinite(g)):
            verdicts.append(replace(_directional_verdict(l, name, got, want, int(kink.sum())), dtype=kinds[k][p]))
            continue
        verdict = tensor_verdict(l, name, g, oracle.grads[k][p], jd.tol[k][p], jd.centre[k][p], jd.radius[k][p])
        verdicts.append(replace(verdict, dtype=kinds[k][p]))
        failures += _entry_rows(case, oracle, grads, jd, verdict, g, off)
    failures += loss_rows(case, oracle.loss, loss, oracle.for_loss(jd, kinds, loss_dtype), not failures)
    return notes + failures, verdicts, dtype


def _directional_verdict(layer, name, got, want, kinks):
    """A passing tensor's verdict: `compared` counts directions and kink entries, the errors are
    those of the directional derivatives."""
    err = np.abs(got - want)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0, 0.0, err / np.abs(want))
    return TensorVerdict(
        layer,
        name,
        compared=len(got) + kinks,
        excused=kinks,
        failed=0,
        max_abs=float(np.max(err, initial=0.0)),
        max_rel=float(np.max(rel[np.isfinite(rel)], initial=0.0)),
        worst=(),
    )


def _entry_rows(case, oracle, grads, jd, v, g, off):
    """Failure rows of a tensor that failed along a direction (or at a kink), entry by entry."""
    l, name, p = v.layer, v.param, "Wb".index(v.param)
    rows = nonfinite_rows(case, l, name, g, oracle.grads[l - 1][p])
    if rows or not v.failed:  # every entry within its own tolerance: the entries decide, as in full mode
        return rows
    seen = f"; seen along {int(off.sum())} of {len(off)} random directions" if off.any() else ""
    return [mismatch_row(case, oracle.grads, grads, jd, v, seen)]
