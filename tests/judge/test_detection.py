"""The detection ladder, small: no false positive on correct implementations (float64, float32,
either relu convention at the kink), and a single entry off by a relative 1e-6 caught.

The full run is `python benchmarks/detection_ladder.py` (10,000 cases, reports/detection_ladder.md);
this is the same judgement, `verifier.check.judge_gradients`, on a few hundred cases.
"""

import numpy as np
import pytest

from benchmarks import detection_ladder as ladder
from reference_impls import delta_rule
from verifier import casefile, strategies
from verifier.judge.full import judge_gradients
from verifier.judge.oracle import Oracle

CASES = 300
CORRECT = ("vectorized float32", "relu'(0)=1 float64", "relu'(0)=1 float32", "correct_vectorized float64")


@pytest.fixture(scope="module")
def impls():
    return ladder.implementations()


@pytest.fixture(scope="module")
def generated(impls):
    """Per generated case: (draw, {impl: failures}, ladder entry or None, caught at 1e-6)."""
    out = []

    def body(draw):
        case = strategies.case_from_draw(*draw)
        oracle = ladder.CachedOracle(case, ("delta_rule",))
        fps = {}
        for name in CORRECT:
            fn = impls[name][0]
            with np.errstate(all="ignore"):
                J, grads = fn(list(case.params), case.X, case.T, case.spec)
            failures = judge_gradients(case, oracle, grads, float(J))[0]
            if failures:
                fps[name] = failures
        pool = ladder._entries(oracle, np.float64, oracle.grads, "significant")
        entry = caught = None
        if pool:
            entry = pool[int(np.random.default_rng([0, len(out)]).integers(len(pool)))]
            caught = ladder._caught(case, oracle, oracle.grads, *entry[:3], 1e-6)
        out.append((draw, fps, entry, caught))

    exc = strategies.explore(ladder.draws(), body, examples=CASES, seed=0, shrink=False)
    if exc is not None:
        raise exc
    return out


@pytest.mark.parametrize("name", CORRECT)
def test_no_false_positive_on_generated_cases(generated, name):
    bad = [
        (ladder.repro(d), [(f.kind, f.layer, f.param, f.index, f.got, f.expected, f.tolerance) for f in fps[name][:2]])
        for d, fps, _, _ in generated
        if name in fps
    ]
    assert len(generated) >= CASES * 0.9
    assert not bad, f"{len(bad)} false positives for {name}, first: {bad[:3]}"


def test_every_regime_is_generated(generated):
    regimes = {d[2] for d, *_ in generated}
    assert regimes == set(strategies.REGIMES)


def test_single_entry_off_by_1e_6_is_caught_and_located(generated):
    """Caught and reported at the perturbed (layer, param, index) in every case with a
    significant entry (|g| >= 1000 tolerances, away from kinks), except in the saturated regime
    where an entry's own tolerance may exceed 1e-6 of it: there the textbook forms a correct
    implementation may use (y(1-y), 0.5(1+tanh(z/2)), log(1+e^z)) are only absolutely accurate,
    and judging tighter would fail correct code. There it is caught whenever its tolerance is
    below 1e-6 of the entry."""
    tried = [(d, e, c) for d, _, e, c in generated if e is not None]
    assert len(tried) >= 0.85 * len(generated)
    missed = [
        (ladder.repro(d), e)
        for d, e, (caught, located) in tried
        if not (caught and located) and (d[2] != "saturated" or e[3] < 1e-6)
    ]
    assert not missed, missed[:3]
    caught = sum(c[0] for _, _, c in tried)
    assert caught >= 0.95 * len(tried)


# --- hand-made should-pass / should-fail pairs ------------------------------------------------


def _judge(case, grads, loss=None):
    return judge_gradients(case, Oracle(case, ("delta_rule",)), grads, loss)[0]


def _exact(case):
    J, grads = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    return J, [(np.array(dW), np.array(db)) for dW, db in grads]


def test_worked_example_exact_passes_and_each_entry_off_by_1e_6_fails():
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    J, grads = _exact(case)
    assert _judge(case, grads, float(J)) == []
    for l, (dW, db) in enumerate(grads, start=1):
        for p, arr in (("W", dW), ("b", db)):
            for idx in np.ndindex(arr.shape):
                bad = ladder._perturbed(grads, l, p, idx, 1e-6)
                failures = _judge(case, bad)
                assert len(failures) == 1, (l, p, idx)
                f = failures[0]
                assert (f.kind, f.layer, f.param, tuple(f.index)) == ("mismatch", l, p, idx)
                assert f.rel_error == pytest.approx(1e-6, rel=1e-3) and f.tolerance < 1e-6 * abs(f.expected)


def test_worked_example_tolerance_is_the_boundary():
    """Off by half the reported tolerance passes, off by twice it fails."""
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    J, grads = _exact(case)
    tol = Oracle(case, ("delta_rule",)).judgement(np.float64).tol[0][0][1, 0]
    for factor, fails in ((0.5, False), (2.0, True)):
        bad = [(dW.copy(), db.copy()) for dW, db in grads]
        bad[0][0][1, 0] += factor * tol
        assert bool(_judge(case, bad)) is fails


def test_worked_example_loss_value():
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    J, grads = _exact(case)
    assert _judge(case, grads, float(J)) == []
    f = _judge(case, grads, float(J) * (1 + 1e-6))
    assert [x.kind for x in f] == ["loss_mismatch"]


def test_float32_passes_as_float32_and_fails_as_float64(impls):
    """A float32 result is judged with float32 tolerances; the same numbers claimed as float64
    are wrong beyond float64's precision."""
    case = casefile.from_dict(casefile.WORKED_EXAMPLE)
    J, grads = impls["vectorized float32"][0](list(case.params), case.X, case.T, case.spec)
    assert all(g.dtype == np.float32 for pair in grads for g in pair)
    assert _judge(case, grads, float(J)) == []
    as64 = [(dW.astype(np.float64), db.astype(np.float64)) for dW, db in grads]
    assert [f.kind for f in _judge(case, as64)][:1] == ["mismatch"]


def _kink_case(act, out="identity", loss="half_sse", W2=2.0, b2=0.0, T=1.0):
    """1-1-1 network whose hidden pre-activation is exactly 0: z1 = 1 * 1 - 1."""
    return casefile.from_dict(
        {
            "sizes": [1, 1, 1],
            "activations": [act, out],
            "loss": loss,
            "params": [{"W": [[1]], "b": [-1]}, {"W": [[W2]], "b": [b2]}],
            "X": [[1]],
            "T": [[T]],
        }
    )


@pytest.mark.parametrize(
    "act, slopes_ok, slopes_bad",
    [
        ("relu", (0.0, 0.5, 1.0), (1.5, -0.5)),
        ("leaky_relu", (0.01, 0.3, 1.0), (0.0, 1.2)),
    ],
)
def test_kink_any_derivative_in_the_interval_passes(act, slopes_ok, slopes_bad):
    """At z = 0 exactly, h'(0) anywhere in [lo, hi] is right and outside it is wrong: with
    half_sse, an identity output and W2 = 2, dJ/dW1 = dJ/db1 = -2 h'(0)."""
    case = _kink_case(act)
    _, grads = _exact(case)
    for slope in slopes_ok + slopes_bad:
        g = [(np.array([[-2.0 * slope]]), np.array([-2.0 * slope])), grads[1]]
        failures = _judge(case, g)
        if slope in slopes_ok:
            assert failures == [], slope
        else:
            assert {(f.layer, f.param) for f in failures} == {(1, "W"), (1, "b")}, slope


def test_kink_endpoint_off_by_1e_6_fails():
    case = _kink_case("relu")
    _, grads = _exact(case)
    g = [(np.array([[-2.0 * (1 + 1e-6)]]), np.array([-2.0])), grads[1]]
    assert [(f.layer, f.param, tuple(f.index)) for f in _judge(case, g)] == [(1, "W", (0, 0))]


@pytest.mark.parametrize(
    "out, W2, b2, T", [("sigmoid", -1.3, 0.91, 0.45), ("tanh", 0.29, 0.03, 0.55), ("softplus", 0.29, 0.03, 0.55)]
)
def test_relu_one_at_the_kink_with_a_rounded_output_passes(impls, out, W2, b2, T):
    """relu'(0) = 1 on an exact kink, below an output whose h' a correct implementation rounds
    differently from the reference: the rounding of g times 1 is within tolerance."""
    case = _kink_case("relu", out, "sse", W2, b2, T)
    for name in ("relu'(0)=1 float64", "correct_vectorized float64"):
        J, grads = impls[name][0](list(case.params), case.X, case.T, case.spec)
        assert _judge(case, grads, float(J)) == [], name


def test_reference_passes_its_own_judgement_at_a_leaky_kink():
    """z = 0 exactly at a leaky_relu output: the delta rule's own dJ/db = 3 * 0.01 is the end of
    the kink interval [0.03, 3], which is computed as 3 * 0.505 -/+ 3 * 0.495 and rounds past
    0.03; the tolerance must cover that rounding."""
    case = casefile.from_dict(
        {
            "sizes": [1, 1],
            "activations": ["leaky_relu"],
            "loss": "half_sse",
            "params": [{"W": [[1]], "b": [-1]}],
            "X": [[1]],
            "T": [[-3]],
        }
    )
    J, grads = _exact(case)
    assert grads[0][1][0] == pytest.approx(0.03)
    assert _judge(case, grads, float(J)) == []
