"""The loss-value check (DESIGN section 3): a returned loss whose only difference from the
declared one is a probability clipped at eps before the log is noted, not failed; any other
difference is loss_mismatch, which says when the gradients of the case are right; neither
ever hides a wrong gradient."""

from __future__ import annotations

import numpy as np
import pytest

from verifier.records import Case, NetworkSpec
from verifier.run.check import run_check
from verifier.sandbox import InProcess

SPEC = NetworkSpec((2, 3), ("softmax",), "softmax_ce")


def _case(spread):
    """One layer, 2 -> 3, softmax_ce; the logits of each row `spread` apart."""
    W = np.array([[spread / 2, 0.0], [0.0, 0.0], [-spread / 2, 0.0]])
    X = np.array([[1.0, 0.5], [-1.0, 0.2]])
    T = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    return Case(SPEC, ((W, np.zeros(3)),), X, T)


def _impl(eps=1e-7, loss_off=0.0, grad_scale=1.0):
    def gradients(params, X, T, spec):
        (W, b), B = params[0], X.shape[0]
        Z = X @ W.T + b
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        Y = E / E.sum(axis=1, keepdims=True)
        J = -np.sum(T * np.log(np.clip(Y, eps, 1 - eps))) / B + loss_off
        dZ = grad_scale * (Y - T) / B
        return J, [(dZ.T @ X, dZ.sum(axis=0))]

    return gradients


def _run(fn, case):
    return run_check("clipped", case=case, runner=InProcess(fn))


def test_a_clipped_log_is_noted_not_failed():
    r = _run(_impl(), _case(40.0))  # y ~ e^-40, clipped to 1e-7 in the returned loss
    assert r.verdict == "pass" and r.failures == ()
    (note,) = r.notes
    assert "clips probabilities at eps = 1e-07" in note


def test_machine_epsilon_is_an_eps_too():  # scikit-learn's log_loss: np.clip(y, finfo(dtype).eps, 1 - eps)
    eps = float(np.finfo(np.float64).eps)
    r = _run(_impl(eps=eps), _case(80.0))  # y ~ e^-80, far below eps
    assert r.verdict == "pass" and r.failures == ()
    (note,) = r.notes
    assert f"clips probabilities at eps = {eps:g}" in note, note


def test_where_the_clip_changes_nothing_there_is_no_note():
    r = _run(_impl(), _case(1.0))
    assert r.verdict == "pass" and r.notes == ()


def test_another_wrong_loss_is_a_mismatch_that_says_the_gradients_are_right():
    r = _run(_impl(loss_off=0.1), _case(40.0))
    (row,) = r.failures
    assert row.kind == "loss_mismatch" and row.detail.endswith("the gradients of this case are right")


@pytest.mark.parametrize("loss_off", [0.0, 0.1], ids=["clipped", "wrong_loss"])
def test_a_wrong_gradient_is_never_hidden_by_the_loss(loss_off):
    r = _run(_impl(loss_off=loss_off, grad_scale=2.0), _case(40.0))
    kinds = [f.kind for f in r.failures]
    assert r.verdict == "fail" and "mismatch" in kinds
    assert all("gradients of this case are right" not in f.detail for f in r.failures)
