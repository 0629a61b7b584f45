from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier
from reference_impls import model
from verifier import specs, strategies
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
    "only softmax for one output": dict(activations=["softmax"], sizes=(3, 1)),
    "only softmax_ce for one output": dict(losses=["softmax_ce"], sizes=(3, 4, 1)),
    "only softmax_ce, width 1": dict(losses=["softmax_ce"], max_width=1),
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
    "softmax over one output": NetworkSpec((2, 3, 1), ("tanh", "softmax"), "sse"),
    "softmax_ce over one output": NetworkSpec((2, 1), ("softmax",), "softmax_ce"),
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_invalid_specs_are_refused(spec):
    with pytest.raises(SpecError):
        validate_spec(spec)


def one_output_softmax(spec):
    return spec.activations[-1] == "softmax" and spec.sizes[-1] == 1


@given(network_specs())
def test_no_drawn_spec_has_a_softmax_over_one_output(spec):
    assert not one_output_softmax(spec)


@given(network_specs(activations=["softmax", "tanh"], losses=["softmax_ce", "sse"], max_width=2))
def test_softmax_is_left_out_of_one_output_networks_not_the_other_way_round(spec):
    assert not one_output_softmax(spec)
    if spec.sizes[-1] == 1:
        assert spec.activations[-1] == "tanh" and spec.loss == "sse"


@given(network_specs(losses=["softmax_ce"], max_width=3))
def test_softmax_ce_alone_draws_two_or_more_outputs(spec):
    assert spec.sizes[-1] >= 2 and spec.activations[-1] == "softmax"


def test_one_output_softmax_is_reached_without_the_rule():
    """The twin: one-output networks are common and softmax a common output, so the rule above
    is what keeps them apart (draws with it relaxed do pair them)."""
    seen = []
    relaxed = lambda act, loss, outputs: strategies.compatible(act, loss)  # noqa: E731
    with mock.patch.object(strategies, "fits", relaxed), mock.patch.object(specs, "fits", relaxed):
        strategies.explore(network_specs(), seen.append, examples=300, seed=1, shrink=False)
    assert any(one_output_softmax(s) for s in seen)


def test_a_pinned_one_output_softmax_is_refused_with_the_reason_and_the_fix():
    with pytest.raises(SpecError, match="constant 1.*two or more units"):
        strategies.pinned_specs((4, 8, 1), ("tanh", "softmax"), ["sse", "softmax_ce"])
    with pytest.raises(SpecError, match="constant 1.*two or more units"):
        validate_spec(NetworkSpec((4, 1), ("softmax",), "softmax_ce"))
    spec = NetworkSpec((4, 8, 2), ("tanh", "softmax"), "softmax_ce")
    assert validate_spec(spec) is spec


def test_same_seed_same_cases():
    a, b = [], []
    strategies.explore(cases(), a.append, examples=20, seed=3, shrink=False)
    strategies.explore(cases(), b.append, examples=20, seed=3, shrink=False)
    assert [c.spec for c in a] == [c.spec for c in b]
    assert all(np.array_equal(x.X, y.X) for x, y in zip(a, b))


DRAWS = """
import importlib, sys
from unittest import mock
from verifier import strategies
s = strategies.cases(activations=["sigmoid", "tanh"], losses=["sse"])

def drawn(backend):
    seen = []
    with mock.patch.object(strategies, "BACKEND", backend):
        strategies.explore(s, lambda c: seen.append((c.spec, float(c.X.sum()))), examples=300, seed=3, shrink=False)
    return seen

before = {b: drawn(b) for b in (strategies.BACKEND, "hypothesis")}
with open("bpv_constants.py", "w") as f:  # a local module full of integer literals, then imported
    f.write("VALUES = [4099, 65521, 123457, 2147483647, 987654321, 4000000001, 77, 1234567]\\n")
sys.path.insert(0, ".")
importlib.import_module("bpv_constants")
print(strategies.BACKEND, drawn(strategies.BACKEND) == before[strategies.BACKEND], drawn("hypothesis") == before["hypothesis"])
"""


@pytest.fixture(scope="module")
def draws_around_an_import(tmp_path_factory):
    """(our backend, same cases after the import with it, same cases with Hypothesis's own), in a
    fresh interpreter: few modules loaded, as when the command runs."""
    tmp_path = tmp_path_factory.mktemp("constants")
    import subprocess
    import sys

    from conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-c", DRAWS],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], out[1] == "True", out[2] == "True"


def test_the_cases_of_a_seed_do_not_depend_on_the_code_that_is_loaded(draws_around_an_import):
    _, ours_same, _ = draws_around_an_import
    assert ours_same


def test_hypothesis_own_backend_would_let_loaded_code_change_them(draws_around_an_import):
    """The twin: with Hypothesis's default backend, importing a module of constants does change
    the cases of a seed (where this Hypothesis has constant pools at all)."""
    backend, _, theirs_same = draws_around_an_import
    if backend == "hypothesis":
        pytest.skip("this Hypothesis draws no constants from loaded code")
    assert not theirs_same


# --- a bce or softmax_ce output never saturates, in any regime -------------------------------

FUSED_LOSSES = ["bce", "softmax_ce"]


def output(case):
    """(Z[L], Y) of the reference forward, in float64."""
    Z, A = model.forward(case.params, case.X, case.spec)
    return Z[-1], A[-1]


def unguarded(*draw):
    """The case a draw stood for before the output guard: computed directly, the guard off."""
    with mock.patch.object(specs, "_output_inside", lambda spec, params, X, regime: params):
        return strategies.case_from_draw(*draw)


@given(cases(regimes=["integers"], losses=FUSED_LOSSES))
def test_integer_cases_keep_a_sigmoid_or_softmax_output_strictly_inside_0_1(case):
    Z, Y = output(case)
    assert ((Y > 0) & (Y < 1)).all() and np.abs(Z).max() <= strategies.OUTPUT_BOUND
    if case.spec.activations[-1] == "sigmoid":  # in float32 too, where sigmoid rounds to 1 beyond ~17
        Y32 = model.sigmoid(Z.astype(np.float32))
        assert Y32.dtype == np.float32 and ((Y32 > 0) & (Y32 < 1)).all()
    values = [case.X, *(a for p in case.params for a in p)]
    assert all(np.array_equal(v, np.round(v)) for v in values)  # still an integer case


@given(cases(losses=FUSED_LOSSES))
def test_every_regime_keeps_a_sigmoid_or_softmax_output_strictly_inside_0_1(case):
    Z, Y = output(case)
    assert ((Y > 0) & (Y < 1)).all() and np.abs(Z).max() <= strategies.OUTPUT_BOUND * (1 + 1e-12)


@st.composite
def draws(draw, regime):
    """What `cases(regimes=[regime], losses=FUSED_LOSSES)` draws before the values."""
    spec = draw(network_specs(losses=FUSED_LOSSES, min_depth=2 if regime == "saturated" else 1))
    layers = strategies.saturable_layers(spec) if regime == "saturated" else [0]
    return spec, draw(st.integers(1, 5)), regime, draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from(layers))


@pytest.mark.parametrize("regime", ["integers", "saturated"])
def test_the_guard_is_needed_and_changes_only_the_output_layer_of_cases_that_saturate(regime):
    """The twin of the tests above: drawn without the guard, some integer cases (depth and
    width take |z| to the hundreds) and some saturated ones (a saturated relu or identity layer
    feeds the output) round y to exactly 0 or 1. With it, only those cases change, and only in
    their output layer: the hidden layers, X and T are as drawn, so hidden layers still saturate."""
    saturating, hidden_saturated = [], []

    def body(draw):
        before, case = unguarded(*draw), strategies.case_from_draw(*draw)
        _, Y = output(before)
        saturating.append(not ((Y > 0) & (Y < 1)).all())
        assert np.array_equal(before.X, case.X) and np.array_equal(before.T, case.T)
        for (W0, b0), (W, b) in zip(before.params[:-1], case.params[:-1]):
            assert np.array_equal(W0, W) and np.array_equal(b0, b)
        if not saturating[-1] and np.abs(output(before)[0]).max() <= strategies.OUTPUT_BOUND:
            assert all(np.array_equal(p, q) for p, q in zip(before.params[-1], case.params[-1]))
        if regime == "saturated":
            Z = model.forward(case.params, case.X, case.spec)[0][draw[4]]
            hidden_saturated.append(bool((np.abs(Z) > 30).any()))

    assert strategies.explore(draws(regime), body, examples=400, seed=11, shrink=False) is None
    assert sum(saturating) >= 5
    assert regime != "saturated" or np.mean(hidden_saturated) > 0.8


def textbook_bce(params, X, T, spec):
    """Backprop as the textbook writes it, unfused: y = sigmoid(z), dJ/dy = (y - t) / (y (1 - y)) / N,
    times y (1 - y). Correct, and finite wherever y is not rounded to exactly 0 or 1."""

    def h(name, Z):
        with np.errstate(over="ignore"):  # exp(-z) = inf at z < -709 gives the right 0
            return {
                "identity": lambda: Z,
                "sigmoid": lambda: 1 / (1 + np.exp(-Z)),
                "tanh": lambda: np.tanh(Z),
                "relu": lambda: np.maximum(Z, 0),
                "leaky_relu": lambda: np.where(Z > 0, Z, 0.01 * Z),
                "softplus": lambda: np.log1p(np.exp(Z)),
            }[name]()

    def dh(name, Z, A):
        return {
            "identity": lambda: np.ones_like(Z),
            "sigmoid": lambda: A * (1 - A),
            "tanh": lambda: 1 - A**2,
            "relu": lambda: (Z > 0) * 1.0,
            "leaky_relu": lambda: np.where(Z > 0, 1.0, 0.01),
            "softplus": lambda: h("sigmoid", Z),
        }[name]()

    Zs, As = [], [X]
    for (W, b), name in zip(params, spec.activations):
        Zs.append(As[-1] @ W.T + b)
        As.append(h(name, Zs[-1]))
    Y = As[-1]
    dY = (Y - T) / (Y * (1 - Y)) / Y.size
    delta = dY * dh("sigmoid", Zs[-1], Y)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ params[l][0]) * dh(spec.activations[l - 1], Zs[l - 1], As[l])
    return grads[::-1]


# Before the guard this integer draw was W1 = [[-2, 2], [-2, 2]], b1 = [-1, -1], W2 = [[-2, -2]],
# b2 = [1], X = [[2, -2]]: z = 37, sigmoid(z) == 1.0 exactly and the textbook dJ/dy is 0/0.
SATURATING_DRAW = (NetworkSpec((2, 2, 1), ("identity", "sigmoid"), "bce"), 1, "integers", 8952)


def test_a_textbook_bce_passes_the_integer_case_that_used_to_saturate():
    case = strategies.case_from_draw(*SATURATING_DRAW)
    assert case.params[1][0].tolist() == [[0.0, -1.0]] and output(case)[0].tolist() == [[10.0]]
    assert verifier.check(textbook_bce, case=case).verdict == "pass"


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_without_the_guard_that_case_fails_a_correct_textbook_bce():
    """The twin: the unguarded draw is the data's failure, not the code's."""
    case = unguarded(*SATURATING_DRAW)
    assert case.params[1][0].tolist() == [[-2.0, -2.0]] and output(case)[1].tolist() == [[1.0]]
    result = verifier.check(textbook_bce, case=case)
    assert result.verdict == "fail" and {f.kind for f in result.failures} == {"nonfinite"}


def test_a_textbook_bce_passes_200_generated_cases():
    """Seed 0 failed before the guard: NaN where y rounded to 1.0 (the smallest case: sizes 5, 1, 1)."""
    result = verifier.check(textbook_bce, loss="bce", examples=200, seed=0)
    assert result.verdict == "pass", [(f.kind, f.case) for f in result.failures]
