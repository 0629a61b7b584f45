import numpy as np
import pytest
from hypothesis import given, settings

from verifier import strategies
from verifier.errors import SpecError
from verifier.records import NetworkSpec
from verifier.strategies import cases, network_specs, validate_spec


@given(cases())
def test_drawn_cases_are_valid_networks(case):
    spec = validate_spec(case.spec)
    L = len(spec.sizes) - 1
    assert 1 <= L <= 4 and len(case.params) == L
    for l, (W, b) in enumerate(case.params, start=1):
        assert W.shape == (spec.sizes[l], spec.sizes[l - 1]) and b.shape == (spec.sizes[l],)
    assert case.X.shape[1] == spec.sizes[0] and case.T.shape == (case.X.shape[0], spec.sizes[-1])
    if spec.loss == "softmax_ce":
        np.testing.assert_allclose(case.T.sum(axis=1), 1.0)
    if spec.loss == "bce":
        assert ((case.T >= 0) & (case.T <= 1)).all()


def test_every_regime_is_reached():
    """Depth 1 and 4, width 1, square layers, batch 1 and more, one and several outputs,
    saturation, exact relu kinks, every activation and loss."""
    seen = []
    strategies.explore(cases(), seen.append, examples=600, seed=7, shrink=False)
    specs = [c.spec for c in seen]
    assert {len(s.sizes) - 1 for s in specs} >= {1, 2, 3, 4}
    assert any(1 in s.sizes for s in specs)
    assert any(s.sizes[i] == s.sizes[i + 1] for s in specs for i in range(len(s.sizes) - 1))
    assert {c.X.shape[0] for c in seen} >= {1, 2, 5}
    assert {s.sizes[-1] == 1 for s in specs} == {True, False}
    assert {a for s in specs for a in s.activations} == set(strategies.ALL_ACTIVATIONS)
    assert {s.loss for s in specs} == set(strategies.ALL_LOSSES)
    assert {(s.activations[-1], s.loss) for s in specs} >= {("sigmoid", "bce"), ("softmax", "softmax_ce")}
    Z = [c.X @ c.params[0][0].T + c.params[0][1] for c in seen]
    assert any((np.abs(z) > 30).any() for z in Z) or any((np.abs(c.params[-1][0]) > 30).any() for c in seen)
    assert any(((z == 0) & np.isin(c.spec.activations[0], ["relu", "leaky_relu"])).any() for z, c in zip(Z, seen))


@settings(max_examples=20)
@given(network_specs(sizes=(4, 8, 3), activations=["sigmoid", "softmax"], losses=["softmax_ce", "sse"]))
def test_pinned_sizes_and_names(spec):
    assert spec.sizes == (4, 8, 3)
    assert spec.activations[0] == "sigmoid" and spec.activations[-1] in ("sigmoid", "softmax")


INVALID = {
    "unknown activation": dict(activations=["sigmoidd"]),
    "unknown loss": dict(losses=["l2"]),
    "depth range": dict(min_depth=3, max_depth=2),
    "no compatible output": dict(activations=["tanh"], losses=["bce"]),
    "only softmax for a deep net": dict(activations=["softmax"], sizes=(2, 3, 2)),
    "bad sizes": dict(sizes=(3,)),
}


@pytest.mark.parametrize("kwargs", INVALID.values(), ids=INVALID.keys())
def test_invalid_arguments_say_the_fix(kwargs):
    with pytest.raises(SpecError):
        network_specs(**kwargs)


SPECS = {
    "softmax hidden": NetworkSpec((2, 3, 2), ("softmax", "softmax"), "softmax_ce"),
    "bce without sigmoid": NetworkSpec((2, 1), ("tanh",), "bce"),
    "too few activations": NetworkSpec((2, 3, 1), ("tanh",), "sse"),
    "zero width": NetworkSpec((2, 0, 1), ("tanh", "tanh"), "sse"),
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_invalid_specs_are_refused(spec):
    with pytest.raises(SpecError):
        validate_spec(spec)


def test_same_seed_same_cases():
    a, b = [], []
    strategies.explore(cases(), a.append, examples=20, seed=3, shrink=False)
    strategies.explore(cases(), b.append, examples=20, seed=3, shrink=False)
    assert [c.spec for c in a] == [c.spec for c in b]
    assert all(np.array_equal(x.X, y.X) for x, y in zip(a, b))
