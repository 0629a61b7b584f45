"""judge_update: a train_step is W - lr dJ/dW; when it is W - c lr dJ/dW for a constant c, the
row names c (2 lr, lr/B ...), only on evidence of more than one entry."""

import numpy as np
import pytest

from verifier.judge.full import judge_update, learning_rate, step_ratio, update_tolerance
from verifier.judge.oracle import Oracle
from verifier.records import NetworkSpec
from verifier.strategies import case_from_draw

NET = NetworkSpec((4, 5, 3), ("tanh", "sigmoid"), "sse")


def _judged(step, net=NET, batch=5):
    """The update_mismatch rows of a train_step whose step is step(B) * lr dJ/dW."""
    case = case_from_draw(net, batch, "normal", seed=2)
    oracle = Oracle(case)
    lr = learning_rate(oracle)
    c = step(batch)
    new = [(W - c * lr * dW, b - c * lr * db) for (W, b), (dW, db) in zip(case.params, oracle.grads)]
    return judge_update(case, oracle, new, lr)


STEPS = {
    "2 lr": (lambda B: 2.0, "scale", "it steps 2 lr"),
    "lr/B": (lambda B: 1.0 / B, "batch_reduction", "it steps lr/B"),
    "lr/2": (lambda B: 0.5, "scale", "it steps lr/2"),
    "-lr": (lambda B: -1.0, "sign", "wrong sign (W + lr dJ/dW)"),
    "1.37 lr": (lambda B: 1.37, "scale", "it steps 1.37 lr"),
}


@pytest.mark.parametrize("step, label, words", STEPS.values(), ids=STEPS.keys())
def test_a_constant_step_ratio_is_named(step, label, words):
    rows = _judged(step)
    assert [r.kind for r in rows] == ["update_mismatch"]
    assert rows[0].diagnosis == label and words in rows[0].detail


def test_the_right_step_passes_and_no_step_is_said_so():
    assert _judged(lambda B: 1.0) == []
    rows = _judged(lambda B: 0.0)
    assert rows[0].diagnosis is None and "came back unchanged" in rows[0].detail


def test_a_step_that_is_no_constant_multiple_names_nothing():
    case = case_from_draw(NET, 5, "normal", seed=2)
    oracle = Oracle(case)
    lr = learning_rate(oracle)
    new = [(W - lr * (dW + 0.1 * W), b - lr * db) for (W, b), (dW, db) in zip(case.params, oracle.grads)]
    rows = judge_update(case, oracle, new, lr)
    assert rows[0].diagnosis is None and "it steps" not in rows[0].detail


def test_b_cannot_be_told_from_2_at_batch_2_and_both_are_named():
    rows = _judged(lambda B: 1.0 / B, batch=2)
    assert rows[0].diagnosis == "scale" and "lr/2 or lr/B" in rows[0].detail


def test_one_unit_one_sample_is_one_number_and_names_no_ratio():
    case = case_from_draw(NetworkSpec((1, 1), ("sigmoid",), "sse"), 1, "normal", seed=2)
    oracle = Oracle(case)
    lr = learning_rate(oracle)
    new = [(W - 2 * lr * dW, b - 2 * lr * db) for (W, b), (dW, db) in zip(case.params, oracle.grads)]
    assert step_ratio(case, new, oracle.grads, lr, update_tolerance(case, oracle, "float64", lr)) is None
    rows = judge_update(case, oracle, new, lr)
    assert rows and rows[0].diagnosis is None and "it steps" not in rows[0].detail
    assert np.isclose(step_ratio(*_bigger_twice()), 2.0)


def _bigger_twice():
    case = case_from_draw(NET, 5, "normal", seed=2)
    oracle = Oracle(case)
    lr = learning_rate(oracle)
    new = [(W - 2 * lr * dW, b - 2 * lr * db) for (W, b), (dW, db) in zip(case.params, oracle.grads)]
    return case, new, oracle.grads, lr, update_tolerance(case, oracle, "float64", lr)
