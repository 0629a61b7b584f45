"""The reference registry: every entry on one signature, and the references full mode judges
against, chosen by network size without importing jax."""

import subprocess
import sys

import numpy as np
import pytest

from verifier.judge.references import FULL, REFERENCES, full_oracles
from verifier.records import NetworkSpec
from verifier.strategies import case_from_draw

WIDTH, DEPTH, ROWS = 16, 6, 16  # jax_pack's smallest bucket, as the docs promise it


def case(sizes, batch, acts=None):
    acts = acts or ("tanh",) * (len(sizes) - 2) + ("identity",)
    return case_from_draw(NetworkSpec(tuple(sizes), tuple(acts), "sse"), batch, "normal", 0)


def test_every_reference_answers_the_worked_example():
    from verifier import casefile

    worked = casefile.from_dict(casefile.WORKED_EXAMPLE)
    for name, ref in REFERENCES.items():
        out = ref(worked)
        assert out.grads[0][0][0, 0] == pytest.approx(0.0214695, abs=1e-6), name


def test_small_networks_get_jax_as_a_third_reference_when_asked():
    assert full_oracles(case((1, 1), 1), jax=True) == FULL + ("jax_reverse",)
    assert full_oracles(case((WIDTH,) * (DEPTH + 1), ROWS), jax=True) == FULL + ("jax_reverse",)
    assert full_oracles(case((1, 1), 1)) == FULL  # the default: no JAX


@pytest.mark.parametrize(
    "sizes, batch",
    [
        ((WIDTH + 1, 2), 1),  # one unit too wide
        ((2,) * (DEPTH + 2), 1),  # one layer too deep
        ((2, 2), ROWS + 1),  # one row too many
        ((64, 128, 64, 10), 16),
    ],
)
def test_bigger_networks_get_the_two_that_compile_nothing(sizes, batch):
    assert full_oracles(case(sizes, batch), jax=True) == FULL == ("delta_rule", "complex_step")


def test_the_smallest_bucket_is_the_one_jax_ref_runs_small_networks_in():
    from reference_impls import jax_pack, jax_ref

    assert jax_ref.bucket is jax_pack.bucket
    smallest = jax_ref.bucket((1, 1), 1)
    assert jax_ref.bucket((WIDTH,) * (DEPTH + 1), ROWS) == smallest == (WIDTH, DEPTH, ROWS)
    for sizes, batch in [((WIDTH + 1, 1), 1), ((1,) * (DEPTH + 2), 1), ((1, 1), ROWS + 1)]:
        assert jax_ref.bucket(sizes, batch) != smallest and not jax_pack.is_smallest(sizes, batch)


def test_choosing_references_and_judging_a_big_network_imports_no_jax():
    code = (
        "import sys\n"
        "from verifier.judge.oracle import Oracle\n"
        "from verifier.records import NetworkSpec\n"
        "from verifier.strategies import case_from_draw\n"
        "c = case_from_draw(NetworkSpec((40, 30, 3), ('relu', 'identity'), 'mse'), 8, 'normal', 0)\n"
        "o = Oracle(c)\n"
        "print(o.names, 'jax' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["('delta_rule',", "'complex_step')", "False"]


def test_delta_rule_and_complex_step_agree_on_a_big_network():
    c = case((64, 128, 64, 10), 16)
    a, b = REFERENCES["delta_rule"](c), REFERENCES["complex_step"](c)
    assert a.loss == b.loss
    for (gW, gb), (hW, hb) in zip(a.grads, b.grads):
        np.testing.assert_allclose(hW, gW, rtol=1e-10, atol=1e-12 * np.abs(gW).max())
        np.testing.assert_allclose(hb, gb, rtol=1e-10, atol=1e-12 * np.abs(gb).max())
