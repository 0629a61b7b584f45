"""Every failure class of a run is shrunk to its own smallest case, and that case is minimal:
the smallest depth, widths and batch that still fail. A loss-value mismatch never hides the
gradient's verdict, and a train_step problem is reported beside a gradient problem. Checked on
several seeds, not one."""

from __future__ import annotations

import numpy as np
import pytest

import verifier
from reference_impls import delta_rule

SEEDS = (0, 1, 2)


def _right(params, X, T, spec):
    return delta_rule.gradients(params, X, T, spec)


def output_layer_bug(params, X, T, spec):
    """Right everywhere but the output layer's dW, which is twice too large."""
    J, grads = _right(params, X, T, spec)
    grads[-1] = (2 * grads[-1][0], grads[-1][1])
    return grads


output_layer_bug.SUPPORTED_ACTIVATIONS = ("sigmoid", "tanh")
output_layer_bug.SUPPORTED_LOSSES = ("sse",)


def hidden_layer_bug(params, X, T, spec):
    """Right but for layer 1's db when layer 1 is a hidden layer (it is left at 0)."""
    J, grads = _right(params, X, T, spec)
    if len(params) > 1:
        grads[0] = (grads[0][0], np.zeros_like(grads[0][1]))
    return grads


hidden_layer_bug.SUPPORTED_ACTIVATIONS = ("sigmoid", "tanh")
hidden_layer_bug.SUPPORTED_LOSSES = ("sse",)


def _sizes(result, kind):
    return [(tuple(f.case["sizes"]), f.case["batch"]) for f in result.failures if f.kind == kind]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_failure_at_the_output_layer_alone_shrinks_to_one_layer(seed):
    result = verifier.check(output_layer_bug, examples=60, seed=seed)
    assert result.verdict == "fail"
    assert set(_sizes(result, "mismatch")) == {((1, 1), 1)}, result.failures


@pytest.mark.parametrize("seed", SEEDS)
def test_a_failure_that_needs_a_hidden_layer_shrinks_to_two_layers_of_one_unit(seed):
    result = verifier.check(hidden_layer_bug, examples=60, seed=seed)
    assert result.verdict == "fail"
    assert set(_sizes(result, "mismatch")) == {((1, 1, 1), 1)}, result.failures


def wrong_loss_and_gradient(params, X, T, spec):
    """The loss value always 10% off; the gradient wrong on networks with a hidden layer only."""
    J0, _ = _right(params, X, T, spec)
    return 1.1 * J0 + 1.0, hidden_layer_bug(params, X, T, spec)


wrong_loss_and_gradient.SUPPORTED_ACTIVATIONS = ("sigmoid", "tanh")
wrong_loss_and_gradient.SUPPORTED_LOSSES = ("sse",)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_loss_mismatch_never_hides_the_gradient_verdict(seed):
    result = verifier.check(wrong_loss_and_gradient, examples=60, seed=seed)
    kinds = {f.kind for f in result.failures}
    assert {"loss_mismatch", "mismatch"} <= kinds, result.failures
    assert set(_sizes(result, "loss_mismatch")) == {((1, 1), 1)}  # each class its own minimal case
    assert set(_sizes(result, "mismatch")) == {((1, 1, 1), 1)}


class _TwoProblems:
    """A module-like object: gradients wrong at the output layer, train_step stepping 2 lr."""

    SUPPORTED_ACTIVATIONS = ("sigmoid", "tanh")
    SUPPORTED_LOSSES = ("sse",)

    @staticmethod
    def gradients(params, X, T, spec):
        return output_layer_bug(params, X, T, spec)

    @staticmethod
    def train_step(params, X, T, spec, lr):
        _, grads = _right(params, X, T, spec)
        return [(W - 2 * lr * dW, b - 2 * lr * db) for (W, b), (dW, db) in zip(params, grads)]


def test_a_train_step_problem_is_reported_beside_a_gradient_problem():
    import types

    module = types.ModuleType("two_problems")
    module.__dict__.update({k: getattr(_TwoProblems, k) for k in dir(_TwoProblems) if not k.startswith("__")})
    result = verifier.check(module, examples=40)
    kinds = {f.kind for f in result.failures}
    assert {"mismatch", "update_mismatch"} <= kinds, result.failures


def test_the_twin_the_right_gradients_pass():
    def right(params, X, T, spec):
        return _right(params, X, T, spec)

    right.SUPPORTED_ACTIVATIONS, right.SUPPORTED_LOSSES = ("sigmoid", "tanh"), ("sse",)
    assert verifier.check(right, examples=60).verdict == "pass"
