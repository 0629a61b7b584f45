"""Every failure class of a run shrunk to its own smallest case.

Exploration may find failures of different classes: a wrong gradient, a wrong loss value, a
train_step that does not step along the gradient, a NaN, a bad shape. One minimal case per class
is searched for, so that one class never hides another (a loss-value mismatch never hides the
gradient's verdict). Misbehaviour (a crash, a hang, an exit, a mutated input) keeps the case it
happened on: each try could cost a timeout. Within a class the minimal case is the smallest
network Hypothesis can find that still fails the same way (depth, widths and batch all shrink).
"""

from __future__ import annotations

from dataclasses import replace

from .. import specs
from ..errors import SpecError
from ..records import Failure
from . import explore

MISBEHAVIOUR = ("exception", "timeout", "exited")  # kept on the case they happened on: a try can cost a timeout
MAX_CLASSES = 4  # shrinks per run at most; the rest keep their explored rows
KEPT = 10  # rows kept per class that was not shrunk
VALUES = tuple((regime, seed) for seed in range(4) for regime in ("normal", "integers"))  # draws per shape tried
TRIES = 400  # calls the reduction after Hypothesis's shrink may make, at most


def failure_class(f: Failure) -> tuple:
    """The class of a failure row: its kind, with train_step rows apart from the gradients'."""
    return (f.kind, f.detail.startswith("train_step"))


def every_class(strategy, judge, config, failures) -> tuple[list[Failure], dict]:
    """(rows, {class: minimal case}): each shrinkable class's rows replaced by those of its own
    smallest failing case; misbehaviour rows, and classes that did not shrink, as explored."""
    classes = list(dict.fromkeys(failure_class(f) for f in failures if f.kind not in MISBEHAVIOUR))
    rows: list[Failure] = []
    minimal: dict = {}
    for key in classes:
        found = None
        if len(minimal) < MAX_CLASSES:
            found = explore.shrink(strategy, _finder(judge, key), examples=config.examples, seed=config.seed)
        if found is None:  # flaky, stopped, or over MAX_CLASSES: keep what was seen
            rows += [f for f in failures if failure_class(f) == key][:KEPT]
            continue
        pinned = config.sizes is not None  # a homework network keeps its shape
        case, fails = found if pinned else smaller(*found, _finder(judge, key), keep_batch=config.batch is not None)
        minimal[key] = case
        rows += [f for f in fails if failure_class(f) == key]
    rows += [f for f in failures if f.kind in MISBEHAVIOUR][:KEPT]
    return rows, minimal


def smaller(case, fails, find, keep_batch=False):
    """(case, fails) at the smallest shape that still fails, from Hypothesis's minimal case.

    Hypothesis shrinks the draws, but one seed makes a shape's values, so a smaller shape with the
    same seed may happen not to fail (a zero weight, a sample on the flat side of a kink) and the
    shrink stops at a local minimum. Here each smaller shape (one layer fewer, one unit fewer in
    one layer, one sample fewer) is tried with a few value draws of its own, greedily, until no
    smaller shape fails the same way; every case tried is a real case the code fails on."""
    tried = 0
    while tried < TRIES:
        for spec, batch in _smaller_shapes(case, keep_batch):
            hit = None
            for regime, seed in VALUES:
                tried += 1
                candidate = specs.case_from_draw(spec, batch, regime, seed)
                try:
                    hit = find(candidate)
                except explore.Stop:
                    return case, fails
                if hit or tried >= TRIES:
                    break
            if hit:
                case, fails = candidate, hit
                break
            if tried >= TRIES:
                return case, fails
        else:
            return case, fails  # no smaller shape fails: this one is minimal
    return case, fails


def _smaller_shapes(case, keep_batch=False):
    """(spec, batch) one step smaller than `case`'s, smallest first, each a valid network."""
    spec, batch, sizes = case.spec, int(case.X.shape[0]), list(case.spec.sizes)
    out = []
    if batch > 1 and not keep_batch:
        out.append((spec, 1))
        out.append((spec, batch - 1))
    for l in range(1, len(sizes) - 1):  # drop hidden layer l (its units and its activation)
        acts = spec.activations[: l - 1] + spec.activations[l:]
        out.append((replace(spec, sizes=tuple(sizes[:l] + sizes[l + 1 :]), activations=acts), batch))
    for k, n in enumerate(sizes):
        if n > 1:
            out.append((replace(spec, sizes=tuple(sizes[:k] + [n - 1] + sizes[k + 1 :])), batch))
    valid = []
    for s, b in sorted(dict.fromkeys(out), key=lambda sb: _size(sb[0].sizes) + sb[1]):
        try:
            valid.append((specs.validate_spec(s), b))
        except SpecError:
            continue
    return valid


def _size(sizes) -> int:
    return sum(m * n + m for n, m in zip(sizes, sizes[1:]))


def _finder(judge, key):
    def find(case):
        fails = judge(case)[0]
        return fails if any(failure_class(f) == key for f in fails) else None

    return find
