"""`check --mode fast`: directions per tensor catch each example bug in the right tensors, pass
the correct examples, and a planted single-entry error is localised to its tensor and entry."""

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import EXAMPLES

from reference_impls import delta_rule, model
from verifier.casefile import spec_dict
from verifier.errors import ReferenceDisagreement
from verifier.judge import fast
from verifier.judge.full import judge_gradients
from verifier.judge.oracle import Oracle
from verifier.records import NetworkSpec
from verifier.run.check import run_check
from verifier.strategies import case_from_draw

SPEC = NetworkSpec((4, 6, 5, 3), ("tanh", "sigmoid", "tanh"), "sse")
ALL = {(l, p) for l in (1, 2, 3) for p in "Wb"}


def _module(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _user_grads(mod, case):
    out = mod.gradients(
        [(W.copy(), b.copy()) for W, b in case.params],
        case.X.copy(),
        case.T.copy(),
        SimpleNamespace(**spec_dict(case.spec)),
    )
    return out if isinstance(out, tuple) and len(out) == 2 and np.isscalar(out[0]) else (None, out)


def _failing(failures):
    return {(f.layer, f.param) for f in failures if f.kind == "mismatch"}


@pytest.mark.parametrize(
    "name, tensors",
    [
        ("bug_sign_flip", ALL),
        ("bug_forgot_factor_2", ALL),
        ("bug_mean_instead_of_sum", ALL),
        ("bug_missing_activation_derivative", ALL - {(3, "W"), (3, "b")}),  # the output layer is right
    ],
)
def test_each_example_bug_is_caught_in_the_right_tensors(name, tensors):
    mod = _module(name)
    for seed in range(3):
        case = case_from_draw(SPEC, 4, "normal", seed)
        loss, grads = _user_grads(mod, case)
        failures, verdicts, _ = fast.judge_fast(case, fast.FastOracle(case, seed), grads, loss)
        assert _failing(failures) == tensors
        every_entry = judge_gradients(case, Oracle(case, ("delta_rule",)), grads, loss)[0]
        assert _failing(failures) == _failing(every_entry)
        assert {(f.layer, f.param, f.index) for f in failures} == {(f.layer, f.param, f.index) for f in every_entry}
        assert all("random directions" in f.detail for f in failures)


@pytest.mark.parametrize("name", ["correct_vectorized", "correct_loops", "correct_float32"])
def test_correct_examples_pass_on_every_regime(name):
    mod = _module(name)
    specs = [
        SPEC,
        NetworkSpec((3, 5, 4), ("relu", "softmax"), "softmax_ce"),
        NetworkSpec((3, 4, 2), ("leaky_relu", "sigmoid"), "bce"),
        NetworkSpec((2, 3, 3, 2), ("softplus", "relu", "identity"), "mse"),
    ]
    acts = getattr(mod, "SUPPORTED_ACTIVATIONS", model.ACTIVATIONS)
    losses = getattr(mod, "SUPPORTED_LOSSES", model.LOSSES)
    specs = [s for s in specs if set(s.activations) <= set(acts) and s.loss in losses]
    assert specs
    for k, spec in enumerate(specs):
        for regime in ("integers", "normal", "saturated", "tiny"):
            case = case_from_draw(spec, 3, regime, 10 + k, layer=1)
            loss, grads = _user_grads(mod, case)
            failures, verdicts, _ = fast.judge_fast(case, fast.FastOracle(case, k), grads, loss)
            assert failures == [], (spec, regime, failures[0].detail)
            assert len(verdicts) == 2 * (len(spec.sizes) - 1)


@pytest.mark.parametrize(
    "name, label",
    [
        ("bug_sign_flip", "sign"),
        ("bug_forgot_factor_2", "scale"),
        ("bug_mean_instead_of_sum", "batch_reduction"),
        ("bug_missing_activation_derivative", "activation_derivative"),
    ],
)
def test_run_check_fast_mode_fails_each_bug_with_its_diagnosis(name, label, tmp_path):
    result = run_check(str(EXAMPLES / f"{name}.py"), examples=25, seed=3, mode="fast", cases_dir=str(tmp_path))
    assert result.verdict == "fail" and result.mode == "fast"
    assert result.failures[0].diagnosis == label
    assert result.extra["directions_seed"] == 3
    assert result.references == fast.REFERENCES


def test_run_check_fast_mode_passes_a_correct_example(tmp_path):
    result = run_check(
        str(EXAMPLES / "correct_vectorized.py"), examples=25, seed=5, mode="fast", cases_dir=str(tmp_path)
    )
    assert result.verdict == "pass", result.failures[:1]
    assert result.extra["directions_seed"] == 5


def _planted(case, layer, param, index, rel):
    _, grads = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    grads = [(W.copy(), b.copy()) for W, b in grads]
    p = "Wb".index(param)
    g = grads[layer - 1][p]
    g[index] += rel * np.max(np.abs(g))
    return grads


@pytest.mark.parametrize("layer, param, index", [(1, "W", (17, 23)), (2, "b", (11,)), (3, "W", (2, 30))])
def test_a_planted_single_entry_error_is_localised_to_its_tensor_and_entry(layer, param, index):
    spec = NetworkSpec((40, 32, 32, 5), ("tanh", "softplus", "identity"), "mse")
    case = case_from_draw(spec, 8, "normal", 7)
    grads = _planted(case, layer, param, index, 1e-6)
    failures, verdicts, _ = fast.judge_fast(case, fast.FastOracle(case, 0), grads, None)
    assert [(f.kind, f.layer, f.param, f.index) for f in failures] == [("mismatch", layer, param, index)]
    assert failures[0].detail.startswith(f"1 of {np.size(grads[layer - 1]['Wb'.index(param)])} entries")
    passing = [v for v in verdicts if (v.layer, v.param) != (layer, param)]
    assert all(v.failed == 0 and v.compared == fast.DIRECTIONS for v in passing)  # never expanded


def test_directions_are_reproducible_from_their_seed():
    case = case_from_draw(SPEC, 4, "normal", 1)
    a, b, c = (fast.FastOracle(case, s) for s in (4, 4, 5))
    for x, y, z in zip(a.v, b.v, c.v):
        for p in (0, 1):
            assert np.array_equal(x[p], y[p]) and not np.array_equal(x[p], z[p])
            norms = np.sqrt(np.sum(x[p].reshape(fast.DIRECTIONS, -1) ** 2, axis=1))
            assert np.allclose(norms, 1.0)


def test_kink_entries_are_judged_by_their_interval_not_a_direction(monkeypatch):
    spec = NetworkSpec((3, 4, 2), ("relu", "identity"), "sse")
    case = case_from_draw(spec, 4, "integers", 6)
    Z, _ = model.forward(list(case.params), case.X, spec)
    assert np.any(Z[1] == 0)  # pre-activations exactly on the kink
    relu = model.ACTIVATIONS["relu"]
    monkeypatch.setitem(model.ACTIVATIONS, "relu", relu._replace(dh=lambda z: (np.real(z) >= 0) * 1.0))
    _, other = delta_rule.gradients(list(case.params), case.X, case.T, spec)  # h'(0) = 1, also right
    monkeypatch.setitem(model.ACTIVATIONS, "relu", relu)
    _, usual = delta_rule.gradients(list(case.params), case.X, case.T, spec)
    assert not np.allclose(other[0][0], usual[0][0])
    oracle = fast.FastOracle(case, 0)
    assert oracle.kink[0][0].any() and np.all(oracle.v[0][0][:, oracle.kink[0][0]] == 0)
    assert fast.judge_fast(case, oracle, other, None)[0] == []
    wrong = [(W.copy(), b.copy()) for W, b in other]
    k = tuple(np.argwhere(oracle.kink[0][0])[0])
    wrong[0][0][k] += 3 * oracle.jd64.radius[0][0][k]  # out of its interval
    assert _failing(fast.judge_fast(case, oracle, wrong, None)[0]) == {(1, "W")}


def test_a_wrong_delta_rule_is_a_harness_error_not_the_users(monkeypatch):
    case = case_from_draw(SPEC, 4, "normal", 2)

    right = delta_rule.backward

    def off_by_a_bit(*args):
        return [(dW * 1.001, db) for dW, db in right(*args)]

    monkeypatch.setattr(fast.delta_rule, "backward", off_by_a_bit)
    with pytest.raises(ReferenceDisagreement, match="delta_rule and complex_step disagree"):
        fast.FastOracle(case, 0)


def test_non_finite_gradients_are_reported_as_such():
    case = case_from_draw(SPEC, 4, "normal", 4)
    _, grads = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    grads = [(W.copy(), b.copy()) for W, b in grads]
    grads[1][0][2, 3] = np.nan
    failures = fast.judge_fast(case, fast.FastOracle(case, 0), grads, None)[0]
    assert [(f.kind, f.layer, f.param, f.index) for f in failures] == [("nonfinite", 2, "W", (2, 3))]


def test_a_big_tensors_directions_are_drawn_a_row_block_at_a_time(monkeypatch):
    """Past one row block (compare.BLOCK, here made small) a tensor's directions are drawn a
    block at a time and never held: still unit, zero at kinks, reproducible from their seed."""
    from verifier.judge import compare

    monkeypatch.setattr(compare, "BLOCK", 64)
    spec = NetworkSpec((3, 40, 2), ("relu", "identity"), "sse")
    case = case_from_draw(spec, 4, "integers", 6)
    a, b, c = (fast.FastOracle(case, s) for s in (4, 4, 5))
    dirs = a.v[0][0]
    assert dirs.held is None and len(dirs.slices) > 1
    assert dirs.shape == (fast.DIRECTIONS, 40, 3) and np.asarray(dirs).shape == dirs.shape
    norms = np.sqrt(np.sum(np.asarray(dirs).reshape(fast.DIRECTIONS, -1) ** 2, axis=1))
    assert np.allclose(norms, 1.0)
    assert np.array_equal(np.asarray(dirs), np.asarray(b.v[0][0])) and not np.array_equal(
        np.asarray(dirs), np.asarray(c.v[0][0])
    )
    assert a.kink[0][0].any() and np.all(np.asarray(dirs)[:, a.kink[0][0]] == 0)


@pytest.mark.parametrize("layer, param, index", [(1, "W", (17, 23)), (2, "W", (30, 5)), (3, "W", (2, 30))])
def test_directions_drawn_by_blocks_catch_a_planted_entry_and_pass_its_twin(monkeypatch, layer, param, index):
    from verifier.judge import compare

    monkeypatch.setattr(compare, "BLOCK", 100)  # every W of more than 100 entries by blocks
    spec = NetworkSpec((40, 32, 32, 5), ("tanh", "softplus", "identity"), "mse")
    case = case_from_draw(spec, 8, "normal", 7)
    oracle = fast.FastOracle(case, 0)
    assert all(oracle.v[k][0].held is None for k in range(3))
    _, right = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    failures, verdicts, _ = fast.judge_fast(case, oracle, right, None)
    assert failures == [] and all(v.failed == 0 and v.compared == fast.DIRECTIONS for v in verdicts)
    grads = _planted(case, layer, param, index, 1e-6)
    failures, _, _ = fast.judge_fast(case, oracle, grads, None)
    assert [(f.kind, f.layer, f.param, f.index) for f in failures] == [("mismatch", layer, param, index)]
