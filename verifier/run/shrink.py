"""Every failure class of a run shrunk to its own smallest case.

Exploration may find failures of different classes: a wrong gradient, a wrong loss value, a
train_step that does not step along the gradient, a NaN, a bad shape. One minimal case per class
is searched for, so that one class never hides another (a loss-value mismatch never hides the
gradient's verdict). Misbehaviour (a crash, a hang, an exit, a mutated input) keeps the case it
happened on: each try could cost a timeout. Within a class the minimal case is the smallest
network Hypothesis can find that still fails the same way (depth, widths and batch all shrink).
"""

from __future__ import annotations

from ..records import Failure
from . import explore

MISBEHAVIOUR = ("exception", "timeout", "exited")  # kept on the case they happened on: a try can cost a timeout
MAX_CLASSES = 4  # shrinks per run at most; the rest keep their explored rows
KEPT = 10  # rows kept per class that was not shrunk


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
        case, fails = found
        minimal[key] = case
        rows += [f for f in fails if failure_class(f) == key]
    rows += [f for f in failures if f.kind in MISBEHAVIOUR][:KEPT]
    return rows, minimal


def _finder(judge, key):
    def find(case):
        fails = judge(case)[0]
        return fails if any(failure_class(f) == key for f in fails) else None

    return find
