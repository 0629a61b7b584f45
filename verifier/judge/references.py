"""The registry of independent gradient references, all called the same way on a Case.

Each entry returns a RefOutput: its loss value and gradients, plus what its own error model
says about them: an extra per-entry error (finite differences' truncation estimate) and the
entries it cannot vouch for (a finite difference that straddled a kink).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

from reference_impls import delta_rule, jax_pack, second_forward


class RefOutput(NamedTuple):
    loss: float
    grads: list  # [(dW, db), ...] float64
    extra_tol: list | None = None  # [(eW, eb), ...] the reference's own error estimate
    excused: list | None = None  # [(mW, mb), ...] entries it cannot vouch for


def _delta_rule(case):
    J, grads = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    return RefOutput(float(J), grads)


_LOADING: list[threading.Thread] = []  # the background import of JAX, when one was started


def load_jax_in_background() -> None:
    """Start importing the JAX reference in a thread, so that its import (about a second)
    overlaps the start of the run; the first use of JAX waits for it. Idempotent."""
    if not _LOADING:
        _LOADING.append(threading.Thread(target=_import_jax, name="backprop-verify-jax", daemon=True))
        _LOADING[0].start()


def wait_for_jax() -> None:
    """Wait for the background import, if one was started (before JAX is used, and before the
    process ends: an import cut short at exit can take the interpreter down with it)."""
    if _LOADING:
        _LOADING[0].join()


def _import_jax():
    from reference_impls import jax_ref  # noqa: F401


def _jax(mode):
    def run(case):
        wait_for_jax()
        from reference_impls import jax_ref

        fn = jax_ref.gradients_reverse if mode == "reverse" else jax_ref.gradients_forward
        J, grads = fn(list(case.params), case.X, case.T, case.spec)
        return RefOutput(float(J), grads)

    return run


def _central_diff(case):
    from reference_impls import finite_diff

    r = finite_diff.gradients_with_error(list(case.params), case.X, case.T, case.spec)
    return RefOutput(float(r.loss), r.grads, r.errors, r.straddled)


def _complex_step(case):
    from reference_impls import complex_step

    r = complex_step.gradients_with_flags(list(case.params), case.X, case.T, case.spec)
    return RefOutput(float(r.loss), r.grads)


def _complex_step_by_layer(case):
    from reference_impls import complex_step

    J, grads = complex_step.gradients_by_layer(list(case.params), case.X, case.T, case.spec)
    return RefOutput(float(J), grads)


FULL = ("delta_rule", "complex_step")


def full_oracles(case, jax: bool = False):
    """The references `check --mode full` judges every entry of a case against, first the one
    whose gradients are reported.

    The delta rule (reverse, by the h' formulas) and the complex step (forward, one tangent per
    unit, no derivative formula) on every network: both cost milliseconds even at 10^5
    parameters and compile nothing. With `jax` (`check --jax`), JAX, with a forward of its own,
    joins where one compiled program serves the whole run: networks in its smallest shape
    bucket (up to 16 units a layer, 6 layers, 16 rows), which every generated case fits; a
    bigger network would cost a compile of its own (a second or more at 64-128-64-10,
    reports/benchmarks.md) for a third opinion on one case. Without it no JAX is imported: its
    import and compile alone cost more than the rest of a 200-case run."""
    small = jax and jax_pack.is_smallest(case.spec.sizes, len(case.X))
    return FULL + (("jax_reverse",) if small else ())


def second_loss(case) -> float:
    """The loss value by the second forward (reference_impls/second_forward.py), which shares no
    code with the delta rule's: every case's loss value is cross-checked against it."""
    return second_forward.loss_value(list(case.params), case.X, case.T, case.spec)


REFERENCES: dict[str, Callable] = {
    "delta_rule": _delta_rule,
    "jax_reverse": _jax("reverse"),
    "jax_forward": _jax("forward"),
    "central_diff": _central_diff,
    "complex_step": _complex_step,
}
# The same references where a layer at a time will do (the Oracle's agreement check): a
# layer's gradients are made when compared, and gone before the next layer's.
BY_LAYER: dict[str, Callable] = {"complex_step": _complex_step_by_layer}
# Loss values are compared between these two wherever both ran (crosscheck, check --jax): they
# share no forward code. On every case, the delta rule's is also compared with second_loss.
LOSS_PAIR = ("delta_rule", "jax_reverse")
SECOND_FORWARD = "second_forward"  # the name second_loss goes by in messages
