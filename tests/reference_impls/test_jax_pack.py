"""Packing into JAX's shape buckets: numpy only, a round trip, and which bucket a network gets."""

import subprocess
import sys

import numpy as np
import pytest
from nets import Spec, random_case

from reference_impls import jax_pack


def test_pack_then_unpack_gives_the_network_back():
    rng = np.random.default_rng(3)
    for _ in range(50):
        params, X, T, spec = random_case(rng)
        args, sizes, off = jax_pack.pack(params, X, T, spec)
        P, Lp, Bp = jax_pack.bucket(spec.sizes, len(X))
        assert args[0].shape == (Lp, P, P) and args[2].shape == args[3].shape == (Bp, P)
        for (W, b), (W2, b2) in zip(params, jax_pack.unpack(args[0], args[1], sizes, off)):
            assert np.array_equal(W, W2) and np.array_equal(b, b2)
        np.testing.assert_array_equal(args[0][:off], np.broadcast_to(np.eye(P), (off, P, P)))


@pytest.mark.parametrize(
    "sizes, batch, smallest",
    [
        ((1, 1), 1, True),
        ((16, 16, 16, 16, 16, 16, 16), 16, True),
        ((17, 1), 1, False),
        ((2,) * 8, 1, False),
        ((2, 2), 17, False),
        ((64, 128, 64, 10), 16, False),
    ],
)
def test_is_smallest(sizes, batch, smallest):
    assert jax_pack.is_smallest(sizes, batch) is smallest


def test_bad_specs_are_refused_before_anything_runs():
    params = [(np.ones((1, 2)), np.zeros(1))]
    with pytest.raises(ValueError, match="unknown activation"):
        jax_pack.pack(params, np.ones((1, 2)), np.ones((1, 1)), Spec((2, 1), ("cube",), "sse"))
    with pytest.raises(ValueError, match="do not fit sizes"):
        jax_pack.pack(params, np.ones((1, 3)), np.ones((1, 1)), Spec((2, 1), ("tanh",), "sse"))


def test_imports_no_jax():
    code = "import sys; from reference_impls import jax_pack; print('jax' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_the_codes_cover_exactly_the_models_names():
    """The name lists come from the model: JAX's codes must cover every activation and loss it has."""
    from reference_impls import model

    assert set(jax_pack.ACTIVATION_CODES) == set(model.ACTIVATIONS)
    assert jax_pack.LOSSES == model.LOSS_NAMES == tuple(model.LOSSES)
