import numpy as np

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
