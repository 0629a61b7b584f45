"""The oracle's cross-check of its references: a big network's complex step is compared with the
delta rule a block of rows at a time, never made whole, and still catches one entry that differs."""

import numpy as np
import pytest

from reference_impls import complex_step
from verifier.errors import ReferenceDisagreement
from verifier.judge import compare, references
from verifier.judge.oracle import Oracle
from verifier.records import NetworkSpec
from verifier.strategies import case_from_draw


def big_case():
    c = case_from_draw(NetworkSpec((700, 600, 1), ("tanh", "identity"), "sse"), 4, "normal", 0)
    assert c.params[0][0].size > compare.BLOCK  # the blocked path, not the one-block one
    return c


def test_a_layers_complex_step_is_compared_in_row_blocks_without_making_it_whole(monkeypatch):
    asked = []

    def whole(self):
        raise AssertionError("the whole layer's complex step was made")

    original = complex_step.Product.__getitem__

    def rows(self, key):
        asked.append(key)
        return original(self, key)

    monkeypatch.setattr(complex_step.Product, "whole", whole)
    monkeypatch.setattr(complex_step.Product, "__getitem__", rows)
    oracle = Oracle(big_case())
    assert oracle.names == ("delta_rule", "complex_step")
    assert len(asked) > 1 and all(isinstance(k, slice) and k != slice(None) for k in asked)


def test_one_entry_where_the_references_differ_is_still_a_disagreement(monkeypatch):
    c = big_case()
    delta_rule = references.REFERENCES["delta_rule"]

    def off_by_one_entry(case):
        out = delta_rule(case)
        dW = out.grads[0][0].copy()
        dW[555, 17] *= 1 + 1e-6  # far past the tolerance of two float64 references
        return out._replace(grads=[(dW, out.grads[0][1])] + list(out.grads[1:]))

    Oracle(c)  # the twin: the references as they are agree
    monkeypatch.setitem(references.REFERENCES, "delta_rule", off_by_one_entry)
    with pytest.raises(ReferenceDisagreement, match="layer 1 W"):
        Oracle(c)


def test_rows_of_a_product_are_the_rows_of_the_whole():
    rng = np.random.default_rng(4)
    d, inputs, W = rng.normal(size=(9, 3)), rng.normal(size=(3, 5)), rng.normal(size=(9, 5))
    p = complex_step.Product(d, inputs, W, lambda v: 2 * v)
    whole = d @ inputs + 2 * W
    np.testing.assert_allclose(np.asarray(p), whole, rtol=1e-15)
    np.testing.assert_allclose(p[2:7], whole[2:7], rtol=1e-15)
    assert p[4, 1] == pytest.approx(whole[4, 1], rel=1e-15) and p.shape == whole.shape
