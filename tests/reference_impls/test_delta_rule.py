import numpy as np
import pytest

from reference_impls import delta_rule, model
from verifier import casefile


def worked_example():
    return casefile.from_dict(casefile.WORKED_EXAMPLE)


def test_worked_example_of_the_notes():
    """The 2-2-1 sigmoid network of the notes: dJ/dw1 = 0.0214695 with dL/dy = -2(1 - y).

    The notes print dL/dy as -2(1 - y)^2, which would give 0.0102; the 0.0214 they report is
    the value of the correct formula."""
    case = worked_example()
    J, grads = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    assert grads[0][0][0, 0] == pytest.approx(0.0214695, abs=5e-8)
    # The typo'd formula: rescale the output delta by (1 - y), as -2(1-y)^2 would.
    y = model.forward(list(case.params), case.X, case.spec)[1][-1][0, 0]
    assert grads[0][0][0, 0] * (1 - y) == pytest.approx(0.0102, abs=1e-4)
    assert J == pytest.approx((1 - y) ** 2)


def test_delta_rule_matches_the_notes_for_half_sse_linear_output():
    """For 1/2 SSE and a linear output the output delta is y - t (the notes' (5))."""
    spec = casefile.from_dict(
        {**casefile.WORKED_EXAMPLE, "activations": ["sigmoid", "identity"], "loss": "half_sse"}
    ).spec
    case = casefile.from_dict({**casefile.WORKED_EXAMPLE, "activations": list(spec.activations), "loss": "half_sse"})
    Z, A = model.forward(list(case.params), case.X, spec)
    delta = delta_rule.output_delta(Z, A, case.T, spec)
    np.testing.assert_array_equal(delta, A[-1] - case.T)


def test_gradient_sums_over_the_batch():
    """dE/dw = sum_n dE_n/dw (the notes): the batch gradient equals the sum of per-sample ones."""
    rng = np.random.default_rng(3)
    case = casefile.from_dict(
        {
            **casefile.WORKED_EXAMPLE,
            "loss": "sse",
            "X": rng.normal(size=(4, 2)).tolist(),
            "T": rng.normal(size=(4, 1)).tolist(),
        }
    )
    _, whole = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)
    parts = [
        delta_rule.gradients(list(case.params), case.X[n : n + 1], case.T[n : n + 1], case.spec)[1] for n in range(4)
    ]
    for l in range(2):
        np.testing.assert_allclose(whole[l][0], sum(p[l][0] for p in parts), rtol=1e-13)
