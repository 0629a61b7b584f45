"""An activation layer's dx that is dout times a known wrong h' is named `activation_derivative`
(verifier/judge/layers.py): sigmoid's and tanh's formula in terms of h applied to the input x
instead of the output, h' left out; the right dx has no row, and a dx wrong in no known way gets
no label (a label is never guessed)."""

from __future__ import annotations

import numpy as np
import pytest

from verifier.judge.layers import judge_known
from verifier.records import LayerCase, LayerOutcome

RNG = np.random.default_rng(5)
X = RNG.normal(size=(4, 3))
DOUT = RNG.normal(size=(4, 3))


def case(name):
    return LayerCase(name, "pair", (("x", X),), {}, DOUT.reshape(-1), "normal", "normal")


def h(name, x):
    return 1 / (1 + np.exp(-x)) if name == "sigmoid" else np.tanh(x)


def form(name, s):
    return s * (1 - s) if name == "sigmoid" else 1 - s**2


def rows(name, dx):
    return judge_known(case(name), LayerOutcome("ok", out=h(name, X), grads=(dx,)))[0]


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_the_right_dx_has_no_row(name):
    assert rows(name, DOUT * form(name, h(name, X))) == []


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_the_h_formula_of_the_input_is_named(name):
    (row,) = rows(name, DOUT * form(name, X))
    assert (row.param, row.diagnosis) == ("dx", "activation_derivative"), row.detail
    assert "applied to the input x instead of the output h(x)" in row.detail, row.detail


def test_h_prime_left_out_is_named():
    (row,) = rows("sigmoid", DOUT.copy())
    assert row.diagnosis == "activation_derivative" and "h' left out" in row.detail, row.detail


def test_a_dx_wrong_in_no_known_way_gets_no_label():
    dx = DOUT * form("sigmoid", h("sigmoid", X)) + 0.1 * RNG.normal(size=X.shape)
    (row,) = rows("sigmoid", dx)
    assert row.diagnosis is None, row.detail
