"""Each label for its signature, no label on a correct gradient, on a bug of another kind, or
without the evidence (DESIGN section 7). The buggy gradients come from planted
implementations (tests/planted.py), written like the examples, judged against the references.
"""

import numpy as np
import pytest
from planted import at, backprop, h_prime, mapped, one

from reference_impls import delta_rule
from verifier.judge import factors
from verifier.judge import tolerance as error_model
from verifier.judge.diagnosis import Tols, diagnose, find
from verifier.records import NetworkSpec
from verifier.strategies import case_from_draw

TANH3 = ((4, 5, 4, 3), ("tanh", "tanh", "sigmoid"), "sse")
SIGMOID3 = ((4, 5, 4, 3), ("sigmoid", "sigmoid", "identity"), "mse")
KINKS = ((4, 5, 4, 3), ("relu", "leaky_relu", "identity"), "sse")
SQUARE = ((4, 5, 5, 3), ("tanh", "tanh", "sigmoid"), "sse")
SOFTMAX_SSE = ((4, 5, 3), ("tanh", "softmax"), "sse")
SOFTMAX_MSE = ((4, 5, 3), ("tanh", "softmax"), "mse")
SOFTMAX_CE = ((4, 5, 3), ("tanh", "softmax"), "softmax_ce")
BCE = ((4, 5, 3), ("tanh", "sigmoid"), "bce")
WIDE = ((20, 64, 48, 10), ("tanh", "sigmoid", "identity"), "mse")


def _case(net, batch=5, regime="normal", seed=5):
    return case_from_draw(NetworkSpec(*net), batch, regime, seed=seed)


def _judged(impl, net, **kw):
    """(label, note) of `impl`'s gradient on a case of `net`."""
    case = _case(net, **kw)
    _, right = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    jd = error_model.judgement(case)
    got = impl(list(case.params), case.X, case.T, case.spec)
    return diagnose(case, got, right, jd.tol, radius=jd.radius)


def _transposed_layer_2(*a):
    g = backprop(*a)
    return [g[0], (g[1][0].T, g[1][1]), g[2]]


# --- the planted bugs: (implementation, network, label, words in the note) ------------------

BUGS = {
    # a constant factor, named in the conventions' terms
    "factor 2 forgotten": (lambda *a: backprop(*a, dJ=lambda loss, Y, T: Y - T), TANH3, "scale", "1/2"),
    "twice the gradient": (mapped(lambda g: 2 * g), TANH3, "scale", "factor 2"),
    "mean over the batch": (mapped(lambda g: g / 5), TANH3, "batch_reduction", "1/B"),
    "mse summed": (lambda *a: backprop(*a, dJ=lambda loss, Y, T: 2 * (Y - T)), SIGMOID3, "batch_reduction", "B*n_L"),
    "db mean, dW sum": (lambda *a: [(w, b / 5) for w, b in backprop(*a)], TANH3, "batch_reduction", "layer 1 b"),
    "sign": (mapped(np.negative), TANH3, "sign", "wrong sign"),
    "zero": (mapped(np.zeros_like), TANH3, "zero", "every gradient entry is 0"),
    "transposed": (_transposed_layer_2, SQUARE, "transposed", "transpose"),
    # the loss derivative
    "y - t as the output delta": (
        lambda *a: backprop(*a, out=lambda Y, T, Z: Y - T),
        TANH3,
        "loss_derivative",
        "y - t",
    ),
    "sse's delta for bce": (
        lambda *a: backprop(*a, out=lambda Y, T, Z: 2 * (Y - T) * Y * (1 - Y)),
        BCE,
        "loss_derivative",
        "that of sse",
    ),
    # h' missing, misplaced or wrong, in one layer, in several, in one tensor only
    "h' missing, layer 1": (
        lambda *a: backprop(*a, hp=at([1], one)),
        TANH3,
        "activation_derivative",
        "layer 1: h' missing",
    ),
    "h' missing, every hidden layer": (
        lambda *a: backprop(*a, hp=at([1, 2], one)),
        TANH3,
        "activation_derivative",
        "layers 1 and 2: h' missing",
    ),
    "h' missing at the output": (lambda *a: backprop(*a, hp=at([3], one)), TANH3, "activation_derivative", "layer 3"),
    "h' at A": (
        lambda *a: backprop(*a, hp=at([2], lambda n, Z, A: h_prime(n, A, np.tanh(A)))),
        TANH3,
        "activation_derivative",
        "layer 2: h' taken at the activation",
    ),
    "sigmoid's y(1-y) on tanh layers": (
        lambda *a: backprop(*a, hp=at([1, 2], lambda n, Z, A: A * (1 - A))),
        TANH3,
        "activation_derivative",
        "h(1 - h) (sigmoid's",
    ),
    "tanh's 1-y^2 on sigmoid layers": (
        lambda *a: backprop(*a, hp=at([1, 2], lambda n, Z, A: 1 - A**2)),
        SIGMOID3,
        "activation_derivative",
        "1 - h^2 (tanh's",
    ),
    "tanh's 1-y^2 on a sigmoid output": (
        lambda *a: backprop(*a, hp=at([3], lambda n, Z, A: 1 - A**2)),
        TANH3,
        "activation_derivative",
        "layer 3: 1 - h^2",
    ),
    "tanh' as 1 - y (a formula of no one)": (
        lambda *a: backprop(*a, hp=at([1], lambda n, Z, A: 1 - A)),
        TANH3,
        "activation_derivative",
        "computed as 1 - h",
    ),
    "y(1-y) given z": (
        lambda *a: backprop(*a, hp=at([1], lambda n, Z, A: Z * (1 - Z))),
        SIGMOID3,
        "activation_derivative",
        "given z instead of h",
    ),
    "relu' = 1 everywhere": (lambda *a: backprop(*a, hp=at([1], one)), KINKS, "activation_derivative", "h' missing"),
    "relu' on the wrong side": (
        lambda *a: backprop(*a, hp=at([1], lambda n, Z, A: (Z < 0) * 1.0)),
        KINKS,
        "activation_derivative",
        "0 for z > 0, 1 for z < 0",
    ),
    "leaky slope 0.1": (
        lambda *a: backprop(*a, hp=at([2], lambda n, Z, A: np.where(Z > 0, 1.0, 0.1))),
        KINKS,
        "activation_derivative",
        "1 for z > 0, 0.1 for z < 0",
    ),
    "leaky_relu as relu": (
        lambda *a: backprop(*a, hp=at([2], lambda n, Z, A: (Z > 0) * 1.0)),
        KINKS,
        "activation_derivative",
        "relu's h'(z) used",
    ),
    "db without h', dW with": (
        lambda *a: backprop(*a, hp_b=(1, one)),
        TANH3,
        "activation_derivative",
        "layer 1 b: h' missing in db only",
    ),
    "dW without h', db with": (
        lambda *a: backprop(*a, hp_W=(2, one)),
        TANH3,
        "activation_derivative",
        "layer 2 W: h' missing in dW only",
    ),
    "wide: h' missing in every hidden layer": (
        lambda *a: backprop(*a, hp=at([1, 2], one)),
        WIDE,
        "activation_derivative",
        "layers 1 and 2",
    ),
    "wide: db without h'": (lambda *a: backprop(*a, hp_b=(2, one)), WIDE, "activation_derivative", "in db only"),
    # softmax: the diagonal of its Jacobian only
    "softmax diagonal, sse": (lambda *a: backprop(*a, softmax_diag=True), SOFTMAX_SSE, "softmax_jacobian", "diagonal"),
    "softmax diagonal, mse": (lambda *a: backprop(*a, softmax_diag=True), SOFTMAX_MSE, "softmax_jacobian", "diagonal"),
    "softmax Jacobian left out": (
        lambda *a: backprop(*a, out=lambda Y, T, Z: 2 * (Y - T)),
        SOFTMAX_SSE,
        "activation_derivative",
        "softmax Jacobian left out",
    ),
}


@pytest.mark.parametrize("impl, net, label, words", BUGS.values(), ids=BUGS.keys())
def test_a_planted_bug_gets_its_label_and_no_other(impl, net, label, words):
    got, note = _judged(impl, net)
    assert got == label, note
    assert words in note


def test_h_prime_bugs_are_named_on_saturated_tiny_and_kinked_cases():
    for regime in ("saturated", "tiny"):
        assert _judged(lambda *a: backprop(*a, hp=at([1, 2], one)), TANH3, regime=regime)[0] == "activation_derivative"
    # integer values put relu units exactly on their kink: those entries are no evidence, the rest is
    got = _judged(lambda *a: backprop(*a, hp=at([1], one)), ((3, 4, 2), ("relu", "identity"), "sse"), regime="integers")
    assert got[0] == "activation_derivative"


CORRECT_NETS = [TANH3, SIGMOID3, KINKS, SQUARE, SOFTMAX_SSE, SOFTMAX_CE, BCE, WIDE]


@pytest.mark.parametrize("net", CORRECT_NETS, ids=lambda n: "-".join(n[1]) + "-" + n[2])
def test_a_correct_gradient_gets_no_label(net):
    for regime in ("normal", "integers", "saturated"):
        assert _judged(backprop, net, regime=regime) == (None, None)


def test_the_other_kink_convention_is_no_bug():
    relu_one = at([1, 2], lambda n, Z, A: np.where(Z >= 0, 1.0, 0.01 if n == "leaky_relu" else 0.0))
    assert _judged(lambda *a: backprop(*a, hp=relu_one), KINKS, regime="integers") == (None, None)


OTHER_KIND = {
    "scale": mapped(lambda g: 2 * g),
    "sign": mapped(np.negative),
    "batch_reduction": mapped(lambda g: g / 5),
    "loss_derivative": lambda *a: backprop(*a, out=lambda Y, T, Z: Y - T),
    "zero": mapped(np.zeros_like),
}


@pytest.mark.parametrize("label", OTHER_KIND)
@pytest.mark.parametrize("net", [TANH3, KINKS, SOFTMAX_SSE], ids=["tanh", "relu", "softmax"])
def test_a_bug_of_another_kind_is_not_an_activation_or_softmax_derivative(label, net):
    got, note = _judged(OTHER_KIND[label], net)
    assert got not in ("activation_derivative", "softmax_jacobian"), note
    if label == "loss_derivative" and net is KINKS:
        assert got == "scale" and "half_sse" in note  # y - t at a linear output of sse is half the gradient
    else:
        assert got == label, note


def test_softmax_jacobian_only_for_the_diagonal():
    assert _judged(lambda *a: backprop(*a, hp=at([1], one)), SOFTMAX_SSE)[0] == "activation_derivative"
    assert _judged(mapped(lambda g: 2 * g), SOFTMAX_MSE)[0] == "scale"


def test_wrong_but_no_signature_gets_no_label():
    rng = np.random.default_rng(0)
    noisy = mapped(lambda g: g + rng.normal(size=g.shape) * 0.1)
    one_entry = lambda *a: [(w, b + (np.arange(b.size) == 0)) for w, b in backprop(*a)]  # noqa: E731
    weight_decay = lambda p, X, T, s: [(w + 1e-2 * W, b) for (w, b), (W, _) in zip(backprop(p, X, T, s), p)]  # noqa: E731
    for impl in (noisy, one_entry):
        assert _judged(impl, TANH3) == (None, None)
    # weight decay is a convention now (DESIGN section 2a): named, with the --loss that passes
    assert _judged(weight_decay, TANH3) == (
        "regularization",
        "the L2 term's gradient is missing or has another factor: it is the gradient of "
        "squared,l2=0.005, not of sse; --loss squared,l2=0.005 would pass",
    )


# --- evidence beyond one entry --------------------------------------------------------------


@pytest.mark.parametrize(
    "impl",
    [mapped(lambda g: g / 2), mapped(np.negative), lambda *a: backprop(*a, hp=at([1], one))],
    ids=["scale", "sign", "h' missing"],
)
def test_one_unit_one_sample_is_evidence_of_one_entry_and_gets_no_label(impl):
    # dW = delta x and db = delta: two entries, one number; any wrong delta fits every signature
    for net in [((1, 1), ("sigmoid",), "sse"), ((1, 1, 1), ("sigmoid", "sigmoid"), "sse")]:
        case = _case(net, batch=1)
        _, right = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
        finding = find(
            case, impl(list(case.params), case.X, case.T, case.spec), right, Tols(error_model.judgement(case).tol)
        )
        assert finding.label is None and not finding.settled  # the caller may try a larger case


def test_a_factor_is_named_only_as_far_as_the_case_can_tell():
    half = mapped(lambda g: g / 3)
    # B = n_L = 3: 1/B and 1/n_L are the same number here
    assert "1/B or 1/n_L" in _judged(half, ((4, 5, 3), ("tanh", "sigmoid"), "sse"), batch=3)[1]
    # B = 3, n_L = 1: 1/B and 1/(B*n_L) too
    label, note = _judged(half, ((4, 5, 1), ("tanh", "sigmoid"), "sse"), batch=3)
    assert label == "batch_reduction" and "1/B or 1/(B*n_L)" in note
    # B = 3, n_L = 4: 1/B alone, and the convention it is the gradient of
    label, note = _judged(half, ((4, 5, 4), ("tanh", "sigmoid"), "sse"), batch=3)
    assert label == "batch_reduction" and "1/B:" in note and "over_batch=mean" in note
    # B = 2 cannot tell a factor 1/2 from 1/B: a scale, both named, unsettled
    case = _case(TANH3, batch=2)
    _, right = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    f = find(case, [(w / 2, b / 2) for w, b in right], right, Tols(error_model.judgement(case).tol))
    assert f.label == "scale" and "1/2 or 1/B" in f.note and not f.settled


def test_separating_batch_sizes_tell_every_form_apart():
    assert factors.separates(5, 3) and not factors.separates(3, 3) and not factors.separates(2, 4)
    assert not factors.separates(5, 1)  # n_L = 1: no batch size tells B from B*n_L
    assert factors.named(1 / 15, 5, 3).text == "1/(B*n_L)" and factors.conventions(1 / 15, "sse", 5, 3) == ["mse"]
    assert factors.conventions(0.5, "sse", 5, 3) == ["half_sse"]


def test_a_finding_explains_another_case_only_if_the_same_bug_gives_it():
    big, small = _case(TANH3), _case(((2, 2, 2, 2), ("tanh", "tanh", "sigmoid"), "sse"), batch=2)
    grads = {c: delta_rule.gradients(list(c.params), c.X, c.T, c.spec)[1] for c in (big, small)}
    tols = {c: Tols(error_model.judgement(c).tol) for c in (big, small)}
    for bug, other in [(lambda g: g / 5, lambda g: g / 3), (np.negative, lambda g: -2 * g)]:
        f = find(big, [(bug(w), bug(b)) for w, b in grads[big]], grads[big], tols[big])
        as_named = (
            [(bug(w), bug(b)) for w, b in grads[small]]
            if bug is np.negative
            else [(w / 2, b / 2) for w, b in grads[small]]
        )
        assert f.explains(small, as_named, grads[small], tols[small])  # 1/B on B = 2 is 1/2
        assert not f.explains(small, [(other(w), other(b)) for w, b in grads[small]], grads[small], tols[small])
    f = find(big, backprop(list(big.params), big.X, big.T, big.spec, hp=at([1], one)), grads[big], tols[big])
    small_missing = backprop(list(small.params), small.X, small.T, small.spec, hp=at([1], one))
    small_at_A = backprop(
        list(small.params), small.X, small.T, small.spec, hp=at([1], lambda n, Z, A: 1 - np.tanh(A) ** 2)
    )
    assert f.explains(small, small_missing, grads[small], tols[small])
    assert not f.explains(small, small_at_A, grads[small], tols[small])


def test_precision_only_when_float32_accurate_but_float64_returned():
    case = _case(TANH3)
    _, g = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    tol = error_model.judgement(case).tol
    rough = [(w.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)) for w, b in g]
    tol32 = error_model.judgement(case, np.float32).tol
    assert diagnose(case, rough, g, tol, dtype_tol32=tol32, returned_dtype="float64")[0] == "precision"
    assert diagnose(case, rough, g, tol, dtype_tol32=tol32, returned_dtype="float32")[0] is None
