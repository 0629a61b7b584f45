import numpy as np
import pytest

from verifier.judge.compare import compare_gradients, entry_errors, tensor_verdict


def test_entry_outside_its_tolerance_fails_and_leads_the_table():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = expected.copy()
    got[1, 0] += 1e-9
    v = tensor_verdict(2, "W", got, expected, np.full((2, 2), 1e-12))
    assert v.failed == 1 and v.compared == 4 and v.layer == 2 and v.param == "W"
    assert v.worst[0].index == (1, 0) and v.worst[0].tolerance == 1e-12
    assert np.isclose(v.worst[0].rel_error, 1e-9 / 3)


def test_the_same_entry_inside_its_tolerance_passes():
    expected = np.array([1.0, 2.0])
    v = tensor_verdict(1, "b", expected + 1e-13, expected, np.full(2, 1e-12))
    assert v.failed == 0 and v.max_abs <= 1e-12


def test_nan_and_inf_fail():
    fail, *_ = entry_errors(np.array([np.nan, np.inf, 1.0]), np.ones(3), np.ones(3))
    assert fail.tolist() == [True, True, False]


def test_kink_entry_accepts_anything_in_its_interval_and_counts_as_excused():
    centre, radius, tol = np.array([0.5, 0.0]), np.array([0.5, 0.0]), np.full(2, 1e-12)
    for value in (0.0, 0.3, 1.0):
        v = tensor_verdict(1, "b", np.array([value, 0.0]), centre, tol, centre, radius)
        assert v.failed == 0 and v.excused == 1
    v = tensor_verdict(1, "b", np.array([1.1, 0.0]), centre, tol, centre, radius)
    assert v.failed == 1 and np.isclose(v.worst[0].expected, 1.0) and np.isclose(v.worst[0].abs_error, 0.1)


def test_compare_gradients_names_every_tensor():
    g = [(np.ones((2, 3)), np.ones(2)), (np.ones((1, 2)), np.ones(1))]
    tol = [(np.full((2, 3), 1e-9), np.full(2, 1e-9)), (np.full((1, 2), 1e-9), np.full(1, 1e-9))]
    vs = compare_gradients(g, g, tol)
    assert [(v.layer, v.param) for v in vs] == [(1, "W"), (1, "b"), (2, "W"), (2, "b")]
    assert all(v.failed == 0 for v in vs)


# --- judging in row blocks ----------------------------------------------------------------


def _tensor(rng, shape, kind):
    """got, expected, tol, centre, radius, excused for one tensor, with failing entries, ties,
    NaN and inf, kink intervals and excused entries mixed in as `kind` says."""
    expected = rng.normal(size=shape)
    tol = np.full(shape, 1e-6) if kind != "ties" else np.ones(shape)
    got = expected + rng.normal(scale=1e-7, size=shape)
    flat = got.reshape(-1)
    n = flat.size
    if kind in ("fail", "nonfinite"):
        flat[rng.choice(n, size=min(n, 9), replace=False)] += 1.0
    if kind == "nonfinite":
        flat[rng.choice(n, size=min(n, 3), replace=False)] = np.nan
        flat[rng.choice(n, size=min(n, 2), replace=False)] = np.inf
    if kind == "ties":
        got = expected + 0.5  # every entry equally close to failing: the first positions win
    radius = np.where(rng.random(shape) < 0.1, 0.3, 0.0) if kind == "kinks" else None
    centre = expected if kind == "kinks" else None
    excused = rng.random(shape) < 0.05 if kind == "kinks" else None
    return got, expected, tol, centre, radius, excused


@pytest.mark.parametrize("kind", ["pass", "fail", "nonfinite", "ties", "kinks"])
@pytest.mark.parametrize("shape", [(37, 11), (50,), (1, 300)])
def test_a_verdict_judged_in_blocks_is_the_verdict_of_the_whole_tensor(monkeypatch, kind, shape):
    from verifier.judge import compare

    rng = np.random.default_rng(hash((kind, shape)) % 2**32)
    args = _tensor(rng, shape, kind)
    whole = tensor_verdict(2, "W", *args)
    failed_whole = compare.any_failed([(args[0],)], [(args[1],)], [(args[2],)], params=(0,))
    monkeypatch.setattr(compare, "BLOCK", 13)  # many blocks, rows split unevenly
    assert len(compare.row_blocks(shape)) > 1 or shape[0] == 1 or np.prod(shape) <= 13
    blocked = tensor_verdict(2, "W", *args)
    assert repr(blocked) == repr(whole)  # NaN maxima included
    assert compare.any_failed([(args[0],)], [(args[1],)], [(args[2],)], params=(0,)) == failed_whole
    assert (whole.failed > 0) == (kind in ("fail", "nonfinite"))


def test_a_lazy_sum_of_tolerances_is_added_block_by_block(monkeypatch):
    from verifier.judge import compare
    from verifier.judge.lazy import Parts

    rng = np.random.default_rng(3)
    got, expected, tol, *_ = _tensor(rng, (40, 9), "fail")
    monkeypatch.setattr(compare, "BLOCK", 17)
    assert repr(tensor_verdict(1, "W", got, expected, Parts((tol / 4, 3 * tol / 4)))) == repr(
        tensor_verdict(1, "W", got, expected, tol)
    )
