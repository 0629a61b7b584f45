"""The JAX reference: right (against the delta rule and an unpadded JAX computation), unchanged by
its padding, and cheap to compile (one program per bucket and mode, whatever the shapes)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reference_impls import delta_rule, jax_ref
from verifier.records import NetworkSpec

HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus")
OUTPUT_LOSS = (
    [(out, loss) for out in HIDDEN + ("softmax",) for loss in ("sse", "half_sse", "mse")]
    + [("sigmoid", "bce"), ("softmax", "softmax_ce")]
    # the plain (unfused) formulas, where they are defined: y in (0, 1)
    + [("softmax", "bce"), ("sigmoid", "softmax_ce")]
)
MODES = {"reverse": jax_ref.gradients_reverse, "forward": jax_ref.gradients_forward}


def targets(rng, loss, B, n):
    if loss == "bce":
        return rng.uniform(size=(B, n))
    if loss == "softmax_ce":
        return rng.dirichlet(np.ones(n), size=B)
    return rng.normal(size=(B, n))


def random_network(rng, out, loss, *, depth=(1, 5), width=(1, 9), batch=(1, 9), hidden=None):
    """A random network, data and targets; weights scaled by 1/sqrt(fan-in) so that deep
    networks do not saturate into gradients made of rounding noise."""
    L = int(rng.integers(depth[0], depth[1] + 1))
    sizes = [int(rng.integers(width[0], width[1] + 1)) for _ in range(L + 1)]
    if out == "softmax" and sizes[-1] == 1:
        sizes[-1] = int(rng.integers(2, width[1] + 1))
    acts = tuple(hidden or rng.choice(HIDDEN) for _ in range(L - 1)) + (out,)
    B = int(rng.integers(batch[0], batch[1] + 1))
    params = [
        (1.5 * rng.normal(size=(sizes[l + 1], sizes[l])) / np.sqrt(sizes[l]), rng.normal(size=sizes[l + 1]))
        for l in range(L)
    ]
    X = rng.normal(size=(B, sizes[0]))
    return params, X, targets(rng, loss, B, sizes[-1]), NetworkSpec(tuple(sizes), acts, loss)


def assert_close(got, expected, rtol=1e-12, what=""):
    """(J, grads) pairs agree: J to rtol, every gradient entry to rtol times the largest
    gradient entry of the network (entries far below it are rounding noise in both)."""
    (J, grads), (J0, grads0) = got, expected
    assert J == pytest.approx(J0, rel=rtol, abs=1e-300), what
    scale = max(max(np.abs(dW).max(), np.abs(db).max()) for dW, db in grads0)
    for l, ((dW, db), (dW0, db0)) in enumerate(zip(grads, grads0), start=1):
        assert dW.shape == dW0.shape and db.shape == db0.shape, (what, l)
        assert dW.dtype == np.float64 and db.dtype == np.float64, (what, l)
        np.testing.assert_allclose(dW, dW0, rtol=0, atol=rtol * scale, err_msg=f"{what} W{l}")
        np.testing.assert_allclose(db, db0, rtol=0, atol=rtol * scale, err_msg=f"{what} b{l}")


# --- right ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_worked_example(mode):
    """The 2-2-1 sigmoid network of the notes, every weight 1: dJ/dW[1][0,0] = 0.0214695."""
    spec = NetworkSpec((2, 2, 1), ("sigmoid", "sigmoid"), "mse")
    params = [(np.ones((2, 2)), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))]
    X, T = np.array([[-2.0, -1.0]]), np.array([[1.0]])
    J, grads = MODES[mode](params, X, T, spec)
    assert grads[0][0][0, 0] == pytest.approx(0.0214695, abs=1e-7)
    assert_close((J, grads), delta_rule.gradients(params, X, T, spec))
    assert jax_ref.loss_value(params, X, T, spec) == J


@pytest.mark.parametrize("out,loss", OUTPUT_LOSS, ids=[f"{o}-{l}" for o, l in OUTPUT_LOSS])
def test_agrees_with_delta_rule_for_every_activation_and_loss(out, loss):
    rng = np.random.default_rng(sum(map(ord, out + loss)))
    for hidden in HIDDEN:
        for _ in range(2):
            params, X, T, spec = random_network(rng, out, loss, hidden=hidden)
            expected = delta_rule.gradients(params, X, T, spec)
            for mode, fn in MODES.items():
                assert_close(fn(params, X, T, spec), expected, what=f"{mode} {spec}")


def test_agrees_with_delta_rule_on_random_networks():
    rng = np.random.default_rng(2024)
    standard = [p for p in OUTPUT_LOSS if p not in (("softmax", "bce"), ("sigmoid", "softmax_ce"))]
    for _ in range(150):
        out, loss = standard[rng.integers(len(standard))]
        params, X, T, spec = random_network(rng, out, loss)
        expected = delta_rule.gradients(params, X, T, spec)
        for mode, fn in MODES.items():
            assert_close(fn(params, X, T, spec), expected, what=f"{mode} {spec}")


@pytest.mark.parametrize("mode", MODES)
def test_kink_conventions_at_exactly_zero(mode):
    """relu'(0) = 0 and leaky_relu'(0) = 0.01 (the z <= 0 side), as the delta rule has them;
    the smooth activations are right at 0 too."""
    for act in HIDDEN:
        spec = NetworkSpec((2, 3, 1), (act, "identity"), "sse")
        params = [(np.ones((3, 2)), np.zeros(3)), (np.ones((1, 3)), np.array([0.5]))]
        X, T = np.zeros((2, 2)), np.ones((2, 1))
        got = MODES[mode](params, X, T, spec)
        assert_close(got, delta_rule.gradients(params, X, T, spec), what=act)
        slope = {"relu": 0.0, "leaky_relu": 0.01, "sigmoid": 0.25, "softplus": 0.5}.get(act, 1.0)
        # dJ/db1_j = sum_n 2 (y_n - t_n) * w2_j * h'(0)
        y = 0.5 + 3 * {"sigmoid": 0.5, "softplus": np.log(2)}.get(act, 0.0)
        np.testing.assert_allclose(got[1][0][1], 2 * 2 * (y - 1) * slope, rtol=1e-15, atol=0)


SATURATING = [
    ("sigmoid", "bce"),
    ("softmax", "softmax_ce"),
    ("tanh", "sse"),
    ("sigmoid", "mse"),
    ("softplus", "half_sse"),
]


@pytest.mark.parametrize("out,loss", SATURATING, ids=[f"{o}-{l}" for o, l in SATURATING])
def test_saturated_outputs_stay_finite_and_accurate(out, loss):
    """Logits in the hundreds: fused losses from the logits, activations in saturation-safe
    forms; every entry matches the delta rule to a few ulps of its own size."""
    rng = np.random.default_rng(7)
    for scale in (10.0, 100.0, 400.0):
        spec = NetworkSpec((3, 4), (out,), loss)
        params = [(scale * rng.normal(size=(4, 3)), scale * rng.normal(size=4))]
        X = rng.normal(size=(5, 3))
        T = targets(rng, loss, 5, 4)
        J0, g0 = delta_rule.gradients(params, X, T, spec)
        for fn in MODES.values():
            J, g = fn(params, X, T, spec)
            assert np.isfinite(J) and J == pytest.approx(J0, rel=1e-13)
            for got, want in zip(g[0], g0[0]):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


def test_unchosen_loss_terms_do_not_poison_gradients():
    """A relu output with outputs at exactly 0 under sse: the unchosen log terms (bce,
    cross-entropy) would be log(0) if fed y; gradients stay finite and right."""
    spec = NetworkSpec((2, 3), ("relu",), "sse")
    params = [(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]]), np.zeros(3))]
    X, T = np.array([[1.0, -1.0], [2.0, 0.5]]), np.ones((2, 3))
    for fn in MODES.values():
        J, g = fn(params, X, T, spec)
        assert np.isfinite(J) and all(np.isfinite(a).all() for pair in g for a in pair)
        assert_close((J, g), delta_rule.gradients(params, X, T, spec))


# --- padding changes nothing ---------------------------------------------------------------------


def test_padding_changes_nothing():
    """The same network in a much bigger bucket (more units, rows and pass-through layers)."""
    rng = np.random.default_rng(11)
    big = dict(min_width=32, min_batch=32, min_depth=8)
    for k in range(20):
        out, loss = OUTPUT_LOSS[k % len(OUTPUT_LOSS)]
        params, X, T, spec = random_network(rng, out, loss)
        assert jax_ref.bucket(spec.sizes, len(X)) != jax_ref.bucket(spec.sizes, len(X), **big)
        for mode, fn in MODES.items():
            assert_close(fn(params, X, T, spec, **big), fn(params, X, T, spec), rtol=1e-13, what=f"{mode} {spec}")


def _plain_loss(params, X, T, spec):
    """The network and loss of DESIGN section 2 in plain jax.numpy, at its own shapes."""
    h = {
        "identity": lambda z: z,
        "sigmoid": jax.nn.sigmoid,
        "tanh": jnp.tanh,
        "relu": lambda z: jnp.where(z > 0, z, 0.0),
        "leaky_relu": lambda z: jnp.where(z > 0, z, 0.01 * z),
        "softplus": lambda z: jnp.logaddexp(z, 0.0),
        "softmax": jax.nn.softmax,
    }
    A = X
    for (W, b), act in zip(params, spec.activations):
        Z = A @ W.T + b
        A = h[act](Z)
    if spec.loss == "bce":  # sigmoid output: from the logits
        return jnp.mean(T * jnp.logaddexp(-Z, 0.0) + (1 - T) * jnp.logaddexp(Z, 0.0))
    if spec.loss == "softmax_ce":  # softmax output: from the logits
        return -jnp.sum(T * jax.nn.log_softmax(Z)) / X.shape[0]
    scale = {"sse": 1.0, "half_sse": 0.5, "mse": 1.0 / T.size}[spec.loss]
    return scale * jnp.sum((A - T) ** 2)


def test_matches_an_unpadded_jax_computation():
    rng = np.random.default_rng(5)
    for out, loss in [
        ("identity", "sse"),
        ("sigmoid", "bce"),
        ("softmax", "softmax_ce"),
        ("tanh", "mse"),
        ("softmax", "half_sse"),
        ("relu", "sse"),
    ]:
        params, X, T, spec = random_network(rng, out, loss, depth=(2, 4))
        J, g = jax.jit(jax.value_and_grad(_plain_loss), static_argnums=3)(params, X, T, spec)
        plain = (float(J), [(np.asarray(dW), np.asarray(db)) for dW, db in g])
        for mode, fn in MODES.items():
            assert_close(fn(params, X, T, spec), plain, rtol=1e-13, what=f"{mode} {spec}")


def test_forward_mode_differentiates_only_real_entries(monkeypatch):
    """One basis tangent per real parameter; the chunk's filler tangents are zero ones."""
    seen = []
    real_chunk = jax_ref._jvp_chunk

    def counting(*args):
        seen.append(np.asarray(args[-1]))
        return real_chunk(*args)

    monkeypatch.setattr(jax_ref, "_jvp_chunk", counting)
    params, X, T, spec = random_network(np.random.default_rng(3), "tanh", "sse", depth=(5, 5))
    jax_ref.gradients_forward(params, X, T, spec)
    n_real = sum(W.size + b.size for W, b in params)
    idx = np.concatenate(seen)
    P, Lp, _ = jax_ref.bucket(spec.sizes, len(X))
    n_padded = Lp * P * (P + 1)
    assert len(np.unique(idx[idx < n_padded])) == n_real == np.sum(idx < n_padded)
    assert len(idx) - n_real < jax_ref.chunk_size(P, Lp)


def test_medium_network_forward_mode():
    """About 1,700 parameters (a bigger bucket) in forward mode, against the delta rule."""
    rng = np.random.default_rng(8)
    sizes = (20, 24, 20, 16, 12, 10)
    spec = NetworkSpec(sizes, ("tanh", "relu", "softplus", "sigmoid", "softmax"), "softmax_ce")
    params = [
        (rng.normal(size=(sizes[l + 1], sizes[l])) / np.sqrt(sizes[l]), rng.normal(size=sizes[l + 1])) for l in range(5)
    ]
    X, T = rng.normal(size=(20, 20)), targets(rng, "softmax_ce", 20, 10)
    expected = delta_rule.gradients(params, X, T, spec)
    for fn in MODES.values():
        assert_close(fn(params, X, T, spec), expected)


# --- cheap to compile ----------------------------------------------------------------------------


def test_varied_small_shapes_share_one_compiled_program_per_mode():
    rng = np.random.default_rng(30)
    networks = [
        random_network(rng, *OUTPUT_LOSS[k % len(OUTPUT_LOSS)], depth=(1, 6), width=(1, 10), batch=(1, 10))
        for k in range(30)
    ]
    shapes = {(spec.sizes, len(X)) for _, X, _, spec in networks}
    buckets = {jax_ref.bucket(spec.sizes, len(X)) for _, X, _, spec in networks}
    assert len(shapes) == 30 and buckets == {(16, 6, 16)}
    before = jax_ref.compile_counts()
    for params, X, T, spec in networks:
        for fn in MODES.values():
            fn(params, X, T, spec)
    after = jax_ref.compile_counts()
    assert after["reverse"] - before["reverse"] <= 1
    assert after["forward"] - before["forward"] <= 1
    # a wider, deeper network with a bigger batch: one more bucket, one program per mode
    params, X, T, spec = random_network(rng, "tanh", "mse", depth=(5, 5), width=(17, 20), batch=(17, 20))
    assert jax_ref.bucket(spec.sizes, len(X)) == (32, 8, 32)
    for fn in MODES.values():
        fn(params, X, T, spec)
    final = jax_ref.compile_counts()
    assert final["reverse"] - after["reverse"] <= 1 and final["forward"] - after["forward"] <= 1


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes,acts,loss,message",
    [
        ((2, 3, 2), ("softmax", "identity"), "sse", "output layer only"),
        ((2, 2), ("swish",), "sse", "unknown activation"),
        ((2, 2), ("identity",), "hinge", "unknown loss"),
        ((2, 3, 2), ("identity",), "sse", r"need L \+ 1 sizes"),
    ],
    ids=["hidden-softmax", "unknown-activation", "unknown-loss", "wrong-depth"],
)
def test_rejects_bad_specs(sizes, acts, loss, message):
    params = [(np.zeros((sizes[l + 1], sizes[l])), np.zeros(sizes[l + 1])) for l in range(len(sizes) - 1)]
    with pytest.raises(ValueError, match=message):
        jax_ref.gradients_reverse(params, np.zeros((1, 2)), np.zeros((1, 2)), NetworkSpec(sizes, acts, loss))


def test_rejects_shapes_that_do_not_fit():
    spec = NetworkSpec((2, 2), ("identity",), "sse")
    with pytest.raises(ValueError, match="do not fit"):
        jax_ref.gradients_forward([(np.zeros((2, 3)), np.zeros(2))], np.zeros((1, 2)), np.zeros((1, 2)), spec)
    with pytest.raises(ValueError, match="do not fit"):
        jax_ref.gradients_forward([(np.zeros((2, 2)), np.zeros(2))], np.zeros((1, 3)), np.zeros((1, 2)), spec)
