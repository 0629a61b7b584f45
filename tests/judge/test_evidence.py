import numpy as np
import pytest

from verifier.judge import evidence
from verifier.records import NetworkSpec
from verifier.strategies import case_from_draw


def _all(case):
    return [(np.ones(W.shape, bool), np.ones(b.shape, bool)) for W, b in case.params]


def test_one_unit_and_one_sample_carry_one_number():
    """dW = delta x and db = delta: two entries, one number (the module's own example)."""
    case = case_from_draw(NetworkSpec((1, 1), ("identity",), "sse"), 1, "normal", 0)
    assert evidence.independent(case, _all(case)) == 1


def test_a_generic_layer_reaches_the_cap_and_no_entries_give_nothing():
    case = case_from_draw(NetworkSpec((5, 6, 3), ("tanh", "identity"), "mse"), 4, "normal", 1)
    assert evidence.independent(case, _all(case)) == evidence.CAP
    none = [(np.zeros(W.shape, bool), np.zeros(b.shape, bool)) for W, b in case.params]
    assert evidence.independent(case, none) == 0


@pytest.mark.parametrize("seed", range(6))
def test_a_few_entries_of_a_big_tensor_never_count_more_than_all_of_them(monkeypatch, seed):
    """A tensor's entries past LIMIT are left out of the rank (spread evenly): the count can only
    go down, so a label is never given on evidence that is not there; here, with LIMIT made
    tiny, it is at most the count from every entry, and reaches the cap on a generic case."""
    rng = np.random.default_rng(seed)
    case = case_from_draw(NetworkSpec((4, 5, 2), ("tanh", "identity"), "sse"), int(rng.integers(1, 4)), "normal", seed)
    masks = [(rng.random(W.shape) < 0.5, rng.random(b.shape) < 0.5) for W, b in case.params]
    full = evidence.independent(case, masks)
    monkeypatch.setattr(evidence, "LIMIT", 2)
    assert evidence.independent(case, masks) <= full
    assert evidence.independent(case, _all(case)) == evidence.CAP


def test_some_spreads_its_entries_over_the_mask():
    mask = np.zeros((100, 50), bool)
    mask[::3] = True
    picked = evidence._some(mask, limit=40)
    assert len(picked) <= 40 and np.all(mask.ravel()[picked])
    assert picked.min() < 50 and picked.max() > 90 * 50  # first rows to last rows
    assert np.array_equal(evidence._some(mask, limit=10**6), np.flatnonzero(mask))
