"""When two references agree: the one rule, used by full mode's oracle, fast mode's oracle and
the cross-check.

Two references agree on an entry when they are within twice the float64 tolerance of the error
model (each may carry its own rounding) plus each reference's own error estimate (finite
differences' truncation); entries at a kink, and entries a reference cannot vouch for (a finite
difference that straddled a kink), are excused. Loss values agree within twice the loss
tolerance. A disagreement is never blamed on a user: a reference (or the error model) is wrong.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..records import Failure, TensorVerdict
from .compare import BLOCK, compare_gradients, entry_errors, row_blocks, tensor_verdict
from .lazy import Lazy, Parts, part
from .references import LOSS_PAIR, REFERENCES, SECOND_FORWARD, RefOutput, second_loss
from .rows import row, verdict_row
from .tolerance import Judgement, judgement

HARNESS_BUG = "a harness bug, please report it"


def _plus(*tols):
    """Entry-wise sum of [(W, b), ...] tolerance lists, skipping Nones; lazy beside a lazy one."""
    tols = [t for t in tols if t is not None]
    return [tuple(_sum([t[l][p] for t in tols]) for p in (0, 1)) for l in range(len(tols[0]))]


def _sum(arrays):
    return Parts(arrays) if any(isinstance(a, Lazy) for a in arrays) else sum(arrays)


def _either(*masks):
    masks = [m for m in masks if m is not None]
    return [tuple(np.logical_or.reduce([m[l][p] for m in masks]) for p in (0, 1)) for l in range(len(masks[0]))]


def pair_tolerance(jd: Judgement, *outputs: RefOutput) -> list:
    """Per entry: twice the float64 tolerance plus each reference's own error estimate."""
    return _plus(jd.tol, jd.tol, *(o.extra_tol for o in outputs))


def pair_excused(jd: Judgement, *outputs: RefOutput) -> list:
    """Per entry: at a kink, or not vouched for by one of the references."""
    return _either([(w > 0, b > 0) for w, b in jd.radius], *(o.excused for o in outputs))


def pair_verdicts(got: RefOutput, expected: RefOutput, jd: Judgement) -> list[TensorVerdict]:
    """Tensor verdicts of one reference against another, by the rule above."""
    return compare_gradients(
        got.grads, expected.grads, pair_tolerance(jd, got, expected), excused=pair_excused(jd, got, expected)
    )


def pair_agrees(got: RefOutput, expected: RefOutput, jd: Judgement) -> bool:
    """Whether pair_verdicts would fail nothing, without building verdicts, block by block
    (compare.row_blocks): no tolerance or mask the size of a whole tensor is made. A small
    network's tensors are judged together, as one block."""
    outputs = (got, expected)
    tensors = [(l, p) for l in range(len(jd.tol)) for p in (0, 1)]
    if sum(np.size(expected.grads[l][p]) for l, p in tensors) <= BLOCK:
        pieces = [_pair_block(outputs, jd, l, p, slice(None)) for l, p in tensors]
        g, e, tol, excused = (np.concatenate([np.ravel(piece[k]) for piece in pieces]) for k in range(4))
        return not entry_errors(g, e, tol, excused=excused)[0].any()
    for l, p in tensors:
        for rows in row_blocks(np.shape(np.atleast_1d(expected.grads[l][p]))):
            g, e, tol, excused = _pair_block(outputs, jd, l, p, rows)
            if entry_errors(g, e, tol, excused=excused)[0].any():
                return False
    return True


def _pair_block(outputs, jd: Judgement, l: int, p: int, rows):
    """(got, expected, tolerance, excused) of rows `rows` of tensor p of layer l (0-based)."""
    got, expected = outputs
    g, e = (_rows(o.grads[l][p], rows) for o in outputs)
    shape = np.shape(np.atleast_1d(expected.grads[l][p]))
    tol = np.multiply(part(jd.tol[l][p], rows, shape), 2.0)
    excused = part(jd.radius[l][p], rows, shape) > 0
    for o in outputs:
        if o.extra_tol is not None:
            tol += part(o.extra_tol[l][p], rows, shape)
        if o.excused is not None:
            excused |= part(o.excused[l][p], rows, shape)
    return g, e, tol, excused


def _rows(a, rows):
    """Rows `rows` of a reference's tensor: a lazy one (complex_step.Product) computes just those."""
    return a[rows] if getattr(a, "ndim", 0) else np.atleast_1d(a)[rows]


def losses_agree(a: float, b: float, jd: Judgement) -> bool:
    """Within twice the loss tolerance; or the same value, infinite or NaN (a loss that
    overflows in both forwards is the network's, not a disagreement)."""
    return abs(a - b) <= 2 * jd.loss_tol or a == b or (a != a and b != b)


def run_references(case, references=None) -> tuple[dict[str, RefOutput], list[Failure]]:
    """{name: RefOutput} and the failures of references that raised."""
    outputs, failures = {}, []
    for name, fn in (references or REFERENCES).items():
        try:
            with np.errstate(all="ignore"):
                outputs[name] = fn(case)
        except Exception as exc:  # a reference crashing is a harness bug: report, go on
            failures.append(Failure("exception", f"{name} raised {type(exc).__name__}: {exc}", subject=name))
    return outputs, failures


def compare_case(case, references=None):
    """(per-pair tensor verdicts, failures) for one case: every reference against every other."""
    outputs, failures = run_references(case, references)
    jd = judgement(case)
    failures += _loss_failures(case, outputs, jd)
    failures += _kink_failures(case, outputs, jd)
    pairs = {(a, b): pair_verdicts(outputs[a], outputs[b], jd) for a, b in itertools.combinations(outputs, 2)}
    failures += _blame(case, pairs, list(outputs))
    return pairs, failures


def _loss_failures(case, outputs, jd):
    """The delta rule's loss value against the other forwards that share no code with it: JAX's
    (when it ran) and the second numpy forward's (always)."""
    a, b = LOSS_PAIR
    if a not in outputs:
        return []
    others = {b: outputs[b].loss} if b in outputs else {}
    with np.errstate(all="ignore"):
        others[SECOND_FORWARD] = second_loss(case)
    la, out = outputs[a].loss, []
    for name, lb in others.items():
        if not losses_agree(la, lb, jd):
            out.append(
                row(
                    "loss_mismatch",
                    f"loss values differ: {a} {la!r}, {name} {lb!r}",
                    case,
                    got=lb,
                    expected=la,
                    abs_error=abs(la - lb),
                    tolerance=2 * jd.loss_tol,
                    subject=name,
                )
            )
    return out


def _kink_failures(case, outputs, jd):
    """Each reference's kink entries must lie in their interval."""
    out = []
    for name, o in outputs.items():
        tol = pair_tolerance(jd, o)
        for l, (g, t, c, r) in enumerate(zip(o.grads, tol, jd.centre, jd.radius), start=1):
            for p, param in enumerate("Wb"):
                if not (r[p] > 0).any():
                    continue
                excused = ~(r[p] > 0) if o.excused is None else ~(r[p] > 0) | o.excused[l - 1][p]
                v = tensor_verdict(l, param, g[p], c[p], t[p], c[p], r[p], excused)
                if v.failed:
                    out.append(
                        verdict_row(
                            "kink_mismatch",
                            f"{name} outside the kink interval at layer {l} {param}",
                            case,
                            v,
                            subject=name,
                        )
                    )
    return out


def _blame(case, pairs, names):
    """Name the reference that disagrees with all the others, per failing tensor."""
    out, seen = [], set()
    for (a, b), verdicts in pairs.items():
        for v in verdicts:
            if not v.failed or (v.layer, v.param) in seen:
                continue
            seen.add((v.layer, v.param))
            bad = {n: 0 for n in names}
            for (x, y), vs in pairs.items():
                if any(u.failed for u in vs if (u.layer, u.param) == (v.layer, v.param)):
                    bad[x] += 1
                    bad[y] += 1
            odd = [n for n in names if bad[n] == len(names) - 1]
            if len(odd) == 1 and len(names) > 2:
                subject = odd[0]
                detail = f"{subject} disagrees with every other reference at layer {v.layer} {v.param}"
            else:
                subject = f"{a} vs {b}"
                detail = f"{a} and {b} disagree at layer {v.layer} {v.param}; no single reference is the odd one out"
            out.append(verdict_row("reference_disagreement", detail, case, v, subject=subject))
    return out
