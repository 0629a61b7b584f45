import numpy as np
import pytest

from verifier.judge import lazy


def _arrays():
    rng = np.random.default_rng(7)
    left, right = rng.normal(size=(6, 11)), rng.normal(size=(6, 13))
    W, dW = rng.normal(size=(11, 13)), rng.normal(size=(11, 13))
    return left, right, W, dW


def _lazies():
    left, right, W, dW = _arrays()
    low = lazy.LowRank(left, right, 0.25, 1e-3)
    return {
        "LowRank": (low, 0.25 * left.T @ right + 1e-3),
        "Scaled": (lazy.Scaled(W, -3.0), -3.0 * W),
        "Scaled abs": (lazy.Scaled(W, 2.0, absolute=True), 2.0 * np.abs(W)),
        "Combined": (lazy.Combined(W, dW, -0.1), W - 0.1 * dW),
        "Parts": (lazy.Parts((low, np.abs(W), 0.5)), 0.25 * left.T @ right + 1e-3 + np.abs(W) + 0.5),
        "Scaled of lazy": (lazy.Scaled(low, 4.0), 4.0 * (0.25 * left.T @ right + 1e-3)),
    }


@pytest.mark.parametrize("name", list(_lazies()))
def test_a_lazy_array_is_its_array_whole_and_by_rows(name):
    a, want = _lazies()[name]
    assert a.shape == want.shape and a.ndim == 2 and a.size == want.size and len(a) == len(want)
    np.testing.assert_allclose(np.asarray(a), want, rtol=1e-13)
    for rows in (slice(0, 4), slice(4, 11), slice(10, 11)):
        np.testing.assert_allclose(a[rows], want[rows], rtol=1e-13)
        np.testing.assert_allclose(lazy.part(a, rows, want.shape), want[rows], rtol=1e-13)
    np.testing.assert_allclose(a[want > 0], want[want > 0], rtol=1e-13)  # not rows: made whole, then indexed


def test_arithmetic_and_array_methods_on_a_lazy_array_see_the_whole_array():
    a, want = _lazies()["LowRank"]
    np.testing.assert_allclose(2.0 * a + 1.0, 2.0 * want + 1.0, rtol=1e-13)
    np.testing.assert_array_equal(a > 0, want > 0)
    np.testing.assert_allclose(np.maximum(a, 0.1), np.maximum(want, 0.1), rtol=1e-13)
    assert float(a.max()) == pytest.approx(float(want.max()), rel=1e-13)
    np.testing.assert_allclose(a.ravel(), want.ravel(), rtol=1e-13)
    with pytest.raises(AttributeError):
        a.not_an_ndarray_method  # noqa: B018


def test_a_small_product_is_a_plain_array_and_a_big_one_lazy(monkeypatch):
    left, right, _, _ = _arrays()
    small = lazy.product(left, right, 2.0, 1.0)
    assert isinstance(small, np.ndarray)
    np.testing.assert_allclose(small, 2.0 * left.T @ right + 1.0, rtol=1e-13)
    monkeypatch.setattr(lazy, "LAZY_MIN", 11 * 13)
    big = lazy.product(left, right, 2.0, 1.0)
    assert isinstance(big, lazy.LowRank)
    np.testing.assert_allclose(np.asarray(big), small, rtol=1e-13)


def test_part_broadcasts_plain_arrays_and_keeps_none():
    assert lazy.part(None, slice(0, 2), (3, 4)) is None
    np.testing.assert_array_equal(lazy.part(np.float64(2.0), slice(0, 2), (3, 4)), np.full((2, 4), 2.0))
