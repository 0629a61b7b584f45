"""The public layer strategies: every regime reached, declarations validated with the fix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from verifier.errors import SpecError
from verifier.layer_strategies import layer_cases, parse_declaration

DECL = {"x": "N,D", "gamma": "D", "beta": "D", "kwargs": {"eps": 1e-5}}


def test_a_declared_layer_gets_its_shapes_and_kwargs():
    seen = set()

    @settings(max_examples=60, derandomize=True)  # a coverage claim: the same draws every run
    @given(layer_cases("batchnorm", declaration=DECL))
    def run(case):
        (_, x), (_, g), (_, b) = case.args
        assert g.shape == b.shape == (x.shape[1],) and case.kwargs == {"eps": 1e-5}
        assert case.dout_pool.size >= x.size
        if case.dout_regime == "zeros":
            assert not case.dout_pool.any()
        seen.add((case.dout_regime, x.shape[0] == 1))

    run()
    assert {r for r, _ in seen} == {"normal", "zeros", "large", "tiny"} and {b for _, b in seen} == {True, False}


def test_loss_layers_get_integer_labels_in_range():
    @given(layer_cases("svm_loss"))
    def run(case):
        (_, x), (_, y) = case.args
        assert y.dtype.kind == "i" and ((0 <= y) & (y < x.shape[1])).all() and case.dout_pool is None

    run()


@pytest.mark.parametrize(
    "decl, match",
    [
        ({"gamma": "D"}, "starting with x"),
        ({"x": "N,"}, "each dimension"),
        ({"x": 3}, "must be a shape"),
        ({"x": "N,D", "kwargs": 1}, "kwargs"),
    ],
    ids=["no x", "empty dimension", "not a string", "kwargs not a dict"],
)
def test_bad_declarations_say_the_fix(decl, match):
    with pytest.raises(SpecError, match=match):
        parse_declaration("bn", decl)


def test_an_unknown_undeclared_name_says_to_declare_it():
    @given(layer_cases("conv"))
    def run(case):
        pass

    with pytest.raises(SpecError, match="declare its shapes in LAYERS"):
        run()


def test_a_draw_replays_exactly():
    from verifier.layer_strategies import layer_case_from_draw

    a = layer_case_from_draw(
        "affine", "pair", [("x", ("N", "D"))], {}, None, {"N": 2, "D": 3, "M": 2}, "normal", "normal", 7
    )
    b = layer_case_from_draw(
        "affine", "pair", [("x", ("N", "D"))], {}, None, {"N": 2, "D": 3, "M": 2}, "normal", "normal", 7
    )
    assert np.array_equal(a.args[0][1], b.args[0][1]) and np.array_equal(a.dout_pool, b.dout_pool)
