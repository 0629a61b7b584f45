"""Each tensor judged to its own returned dtype: one tensor returned as float16 does not loosen
the tolerance of another (a 5% error in a float64 tensor fails), and its twin, float16 on one
tensor and every other exact, passes with each tensor's dtype on its verdict. The loss value is
judged to the dtype it came back in, too: a float16 tensor does not loosen a float64 loss's."""

import numpy as np
import pytest

from verifier import casefile
from verifier.judge import fast
from verifier.judge.full import judge_gradients, judge_update, learning_rate
from verifier.judge.oracle import Oracle
from verifier.judge.shape import mixed_note

CASE = casefile.from_dict(
    {
        "sizes": [3, 4, 2],
        "activations": ["tanh", "sigmoid"],
        "loss": "sse",
        "params": [
            {"W": [[0.3, -0.2, 0.5], [0.1, 0.4, -0.6], [-0.3, 0.2, 0.1], [0.7, -0.5, 0.2]], "b": [0.1, -0.1, 0.2, 0.0]},
            {"W": [[0.5, -0.4, 0.3, 0.2], [-0.1, 0.6, -0.2, 0.4]], "b": [0.05, -0.05]},
        ],
        "X": [[0.5, -1.0, 0.3], [1.2, 0.4, -0.7]],
        "T": [[0.2, 0.9], [0.7, 0.1]],
    }
)

JUDGES = {"full": (Oracle, judge_gradients), "fast": (lambda c: fast.FastOracle(c, 0), fast.judge_fast)}


def _returned(oracle, bad_db2=1.0):
    """The oracle's gradients with dW1 returned as float16 and db2 (float64) times `bad_db2`."""
    (dW1, db1), (dW2, db2) = oracle.grads
    return [(dW1.astype(np.float16), db1.copy()), (dW2.copy(), db2 * bad_db2)]


def test_the_planted_error_is_inside_a_float16_tolerance():
    """Why the attack worked when the narrowest dtype set every tolerance: 5% of db2 is within
    what a float16 db2 would be allowed."""
    oracle = Oracle(CASE)
    db2 = oracle.grads[1][1]
    assert np.all(0.05 * np.abs(db2) <= oracle.judgement(np.float16).tol[1][1])
    assert np.all(0.05 * np.abs(db2) > oracle.judgement(np.float64).tol[1][1])


@pytest.mark.parametrize("mode", JUDGES)
def test_a_float16_tensor_does_not_loosen_a_float64_ones_tolerance(mode):
    make, judge = JUDGES[mode]
    oracle = make(CASE)
    failures, verdicts, dtype = judge(CASE, oracle, _returned(oracle, 1.05), None)
    assert [(f.kind, f.layer, f.param) for f in failures] == [("mismatch", 2, "b")]
    assert {(v.layer, v.param): v.dtype for v in verdicts} == {
        (1, "W"): "float16",
        (1, "b"): "float64",
        (2, "W"): "float64",
        (2, "b"): "float64",
    }
    assert dtype == "float16"  # the narrowest, as before: what the headline's dtype says


@pytest.mark.parametrize("mode", JUDGES)
def test_the_twin_float16_tensor_with_every_other_exact_passes(mode):
    make, judge = JUDGES[mode]
    oracle = make(CASE)
    failures, verdicts, _ = judge(CASE, oracle, _returned(oracle), None)
    assert failures == [] and len(verdicts) == 4
    note = mixed_note(verdicts)
    assert note and "float16: layer 1 W" in note and "float64: layer 1 b, layer 2 W, layer 2 b" in note


def test_one_dtype_is_no_mixed_precision():
    oracle = Oracle(CASE)
    _, verdicts, _ = judge_gradients(
        CASE, oracle, [(w.astype(np.float32), b.astype(np.float32)) for w, b in oracle.grads], None
    )
    assert {v.dtype for v in verdicts} == {"float32"} and mixed_note(verdicts) is None


def test_a_train_step_tensor_is_judged_to_its_own_dtype_too():
    oracle = Oracle(CASE)
    lr = learning_rate(oracle)
    new = [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(CASE.params, oracle.grads)]
    right = [(new[0][0].astype(np.float16), new[0][1]), new[1]]
    assert judge_update(CASE, oracle, right, lr) == []
    off = [(right[0][0], right[0][1]), (new[1][0], CASE.params[1][1] - 1.05 * lr * oracle.grads[1][1])]
    rows = judge_update(CASE, oracle, off, lr)
    assert [(f.kind, f.layer, f.param) for f in rows] == [("update_mismatch", 2, "b")]


LOSS_OFF = 1e-3  # relative: inside a float16 loss value's tolerance, far outside a float64 one's


def test_the_planted_loss_error_is_inside_a_float16_tolerance():
    """Why a float16 tensor used to hide it: the loss was judged to the narrowest tensor dtype."""
    oracle = Oracle(CASE)
    assert LOSS_OFF * abs(oracle.loss) <= oracle.judgement(np.float16).loss_tol
    assert LOSS_OFF * abs(oracle.loss) > 100 * oracle.judgement(np.float64).loss_tol


@pytest.mark.parametrize("mode", JUDGES)
def test_a_float16_tensor_does_not_loosen_a_float64_loss_values_tolerance(mode):
    make, judge = JUDGES[mode]
    oracle = make(CASE)
    loss = oracle.loss * (1 + LOSS_OFF)
    failures, _, _ = judge(CASE, oracle, _returned(oracle), loss, loss_dtype="float64")
    assert [(f.kind, f.tolerance) for f in failures] == [("loss_mismatch", oracle.judgement(np.float64).loss_tol)]
    assert "the gradients of this case are right" in failures[0].detail


@pytest.mark.parametrize("mode", JUDGES)
def test_the_twin_an_exact_float64_loss_and_a_float16_loss_within_its_own_precision_pass(mode):
    make, judge = JUDGES[mode]
    oracle = make(CASE)
    assert judge(CASE, oracle, _returned(oracle), oracle.loss, loss_dtype="float64")[0] == []
    # a loss value returned as float16 is allowed float16's error, whatever the tensors' dtypes
    off = oracle.loss * (1 + LOSS_OFF)
    all64 = [(dW.copy(), db.copy()) for dW, db in oracle.grads]
    assert judge(CASE, oracle, all64, off, loss_dtype="float16")[0] == []
    assert [f.kind for f in judge(CASE, oracle, all64, off, loss_dtype="float64")[0]] == ["loss_mismatch"]
