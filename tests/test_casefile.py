import json

import numpy as np
import pytest

from verifier import casefile


def _one_by_one(a):
    """The case file's numbers as _num makes them, entry by entry (the definition)."""
    a = np.asarray(a, dtype=np.float64)
    return [_one_by_one(r) for r in a] if a.ndim > 1 else [casefile._num(v) for v in a]


SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 2.0**53, 2.0**53 - 1, -(2.0**60), 0.5, 3.0])


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4), (0,), (4, 0)])
@pytest.mark.parametrize("kind", ["floats", "integers", "mixed", "special"])
def test_nested_numbers_are_those_of_num_entry_by_entry(shape, kind):
    rng = np.random.default_rng(len(shape) * 10 + len(kind))
    a = rng.normal(size=shape)
    if kind == "integers":
        a = np.round(3 * a)
    elif kind == "mixed":
        a = np.where(rng.random(shape) < 0.5, np.round(a), a)
    elif kind == "special":
        a = SPECIAL[rng.integers(0, len(SPECIAL), shape)]
    assert json.dumps(casefile._nested(a)) == json.dumps(_one_by_one(a))


def test_a_case_file_round_trips_every_bit():
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    rng = np.random.default_rng(3)
    params = tuple((W + rng.normal(size=W.shape) * 1e-3, b) for W, b in case.params)
    case = case.__class__(case.spec, params, case.X, case.T)
    again = casefile.from_dict(json.loads(casefile.dumps(case)))
    for (W, b), (W2, b2) in zip(case.params, again.params):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)
    text = json.loads(casefile.dumps(casefile.from_dict(casefile.WORKED_EXAMPLE)))
    assert {k: text[k] for k in ("params", "X", "T")} == {k: casefile.WORKED_EXAMPLE[k] for k in ("params", "X", "T")}


def test_a_result_keeps_a_small_minimal_case_and_leaves_a_big_one_to_its_file(monkeypatch):
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    assert casefile.kept({}) == {}
    assert casefile.kept({"mismatch": case}) == {"minimal_case": casefile.to_dict(case)}
    monkeypatch.setattr(casefile, "KEPT", 9)  # the worked example holds 11 numbers
    assert casefile.kept({"mismatch": case}) == {}
