import numpy as np
import pytest

from reference_impls import delta_rule
from verifier import casefile
from verifier.judge import tolerance as error_model
from verifier.records import Case, NetworkSpec


def _relu_case():
    """A relu unit sitting exactly on its kink: z = 1*1 + (-1) = 0."""
    spec = NetworkSpec((1, 1, 1), ("relu", "identity"), "sse")
    return Case(
        spec,
        ((np.array([[1.0]]), np.array([-1.0])), (np.array([[2.0]]), np.array([0.0]))),
        np.array([[1.0]]),
        np.array([[1.0]]),
    )


def test_tolerance_is_per_entry_and_tiny_for_float64():
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    jd = error_model.judgement(case)
    _, grads = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    tol, g = jd.tol[0][0], grads[0][0]
    assert tol.shape == g.shape and np.all(tol > 0) and np.all(tol < 1e-13 * np.abs(g).max() * 100)


def test_float32_tolerance_is_float32_sized():
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    t64 = error_model.judgement(case).tol[0][0]
    t32 = error_model.judgement(case, np.float32).tol[0][0]
    assert np.allclose(t32 / t64, np.finfo(np.float32).eps / np.finfo(np.float64).eps, rtol=1e-3)


def test_kink_interval_covers_both_conventions():
    case = _relu_case()
    jd = error_model.judgement(case)
    (_, cb), (rW, rb) = jd.centre[0], jd.radius[0]
    # output delta 2 (y - t) = -2 at y = 0; through w = 2 and h' in [0, 1]: dJ/db1 in [-4, 0]
    assert cb[0] - rb[0] == pytest.approx(-4.0) and cb[0] + rb[0] == pytest.approx(0.0)
    assert rW[0, 0] > 0
    assert np.all(jd.radius[1][0] == 0)  # A[1] = relu(0) = 0 whatever h'(0) is
    assert np.all(jd.radius[1][1] == 0)


def test_no_kink_no_radius():
    jd = error_model.judgement(casefile.from_dict(casefile.WORKED_EXAMPLE))
    assert all(np.all(r == 0) for pair in jd.radius for r in pair)


def test_loss_tolerance_is_positive_and_small():
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    jd = error_model.judgement(case)
    assert 0 < jd.loss_tol < 1e-13


@pytest.mark.parametrize("transposed", [False, True], ids=["M|W|", "M|W|^T"])
def test_abs_product_in_row_blocks_is_the_product_with_the_whole_abs(monkeypatch, transposed):
    rng = np.random.default_rng(11)
    W = rng.normal(size=(23, 7))
    M = np.abs(rng.normal(size=(5, 7 if transposed else 23)))
    want = M @ (np.abs(W).T if transposed else np.abs(W))
    np.testing.assert_allclose(error_model.abs_product(M, W, transposed), want, rtol=1e-14)
    monkeypatch.setattr(error_model, "ABS_BLOCK", 20)  # blocks of 2 rows, the last one short
    np.testing.assert_allclose(error_model.abs_product(M, W, transposed), want, rtol=1e-14)


def test_a_big_networks_tolerances_are_the_same_built_in_blocks(monkeypatch):
    """Blocks of |W| change only the order of a sum: the tolerances agree to rounding."""
    from verifier.strategies import case_from_draw

    case = case_from_draw(NetworkSpec((30, 40, 20, 3), ("tanh", "relu", "identity"), "mse"), 4, "normal", 2)
    whole = error_model.judgement(case)
    monkeypatch.setattr(error_model, "ABS_BLOCK", 50)
    blocked = error_model.judgement(case)
    for a, b in zip(whole.tol, blocked.tol):
        for p in (0, 1):
            np.testing.assert_allclose(b[p], a[p], rtol=1e-12)


@pytest.mark.parametrize(
    "acts, loss",
    [
        (("tanh", "relu", "identity"), "mse"),
        (("relu", "leaky_relu", "sigmoid"), "sse"),
        (("relu", "tanh", "identity"), "squared,l2=0.01,l2_bias=true"),
        (("softplus", "relu", "softmax"), "ce,l2=0.5,l2_factor=0.5,l2_over_batch=mean"),
    ],
    ids=["tanh-relu-mse", "kinks-sse", "l2-bias", "softmax-l2"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_lazy_tolerances_kink_centres_and_radii_are_the_arrays(monkeypatch, acts, loss, dtype):
    """Kept as thin factors (lazy.LowRank, the penalty as lazy.Scaled), every tolerance, kink
    centre and radius is, row block by row block and whole, the array built at once."""
    from verifier.judge import lazy
    from verifier.strategies import case_from_draw

    case = case_from_draw(NetworkSpec((30, 40, 20, 3), acts, loss), 5, "normal", 2)
    whole = error_model.judgement(case, dtype)
    monkeypatch.setattr(lazy, "LAZY_MIN", 1)
    kept = error_model.judgement(case, dtype)
    assert kept.loss_tol == whole.loss_tol
    for field in ("tol", "centre", "radius"):
        for a, b in zip(getattr(whole, field), getattr(kept, field)):
            assert isinstance(b[0], lazy.Lazy) or (field != "tol" and not np.any(a[0]))
            np.testing.assert_allclose(np.asarray(b[0]), a[0], rtol=1e-12, atol=0)
            np.testing.assert_allclose(lazy.part(b[0], slice(3, 9), a[0].shape), a[0][3:9], rtol=1e-12, atol=0)
            np.testing.assert_array_equal(b[1], a[1])


def test_a_lazy_kink_radius_is_the_array(monkeypatch):
    from verifier.judge import lazy

    whole = error_model.judgement(_relu_case())
    monkeypatch.setattr(lazy, "LAZY_MIN", 1)
    kept = error_model.judgement(_relu_case())
    assert isinstance(kept.radius[0][0], lazy.Lazy) and kept.radius[0][0][0:1][0, 0] > 0
    for a, b in zip(whole.radius + whole.centre, kept.radius + kept.centre):
        np.testing.assert_array_equal(np.asarray(b[0]), a[0])
