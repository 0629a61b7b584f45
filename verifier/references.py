"""The registry of independent gradient references, all called the same way on a Case.

Each entry returns a RefOutput: its loss value and gradients, plus what its own error model
says about them: an extra per-entry error (finite differences' truncation estimate) and the
entries it cannot vouch for (a finite difference that straddled a kink).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from reference_impls import delta_rule


class RefOutput(NamedTuple):
    loss: float
    grads: list  # [(dW, db), ...] float64
    extra_tol: list | None = None  # [(eW, eb), ...] the reference's own error estimate
    excused: list | None = None  # [(mW, mb), ...] entries it cannot vouch for


def _delta_rule(case):
    J, grads = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    return RefOutput(float(J), grads)


def _jax(mode):
    def run(case):
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


REFERENCES: dict[str, Callable] = {
    "delta_rule": _delta_rule,
    "jax_reverse": _jax("reverse"),
    "jax_forward": _jax("forward"),
    "central_diff": _central_diff,
    "complex_step": _complex_step,
}
# Loss values are compared between these two: they share no forward code.
LOSS_PAIR = ("delta_rule", "jax_reverse")
