"""Code as people write it (DESIGN sections 2a and 3): an implementation of each loss
convention passes when it declares that convention, and fails, with a finding that names the
convention and the `--loss` that would pass, when another is declared. Run in process."""

from __future__ import annotations

import re
import types

import numpy as np
import pytest

from verifier.run.check import run_check
from verifier.sandbox import InProcess


def _act(name, z):
    return {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "identity": lambda z: z}[name](z)


def _dact(name, a):
    return {"tanh": 1 - a**2, "sigmoid": a * (1 - a), "identity": np.ones_like(a)}[name]


def user_module(
    kind,
    factor=1.0,
    outputs="sum",
    batch="sum",
    l2=0.0,
    l2_factor=1.0,
    l2_mean=False,
    l2_bias=False,
    declare=None,
    targets=None,
):
    """A hand-written backprop computing one convention, as a tutorial would: its own forward,
    dJ/dY for its loss, the delta rule, and weight decay added to the gradients."""

    def gradients(params, X, T, spec):
        A = [X]
        for (W, b), name in zip(params, spec.activations):
            Z = A[-1] @ W.T + b
            if name == "softmax":
                E = np.exp(Z - Z.max(axis=1, keepdims=True))
                A.append(E / E.sum(axis=1, keepdims=True))
            else:
                A.append(_act(name, Z))
        Y, (B, n) = A[-1], A[-1].shape
        if kind == "ce" and T.ndim == 1:  # integer labels
            T = np.eye(n)[T]
        div = (n if outputs == "mean" else 1) * (B if batch == "mean" else 1) / factor
        if kind == "squared":
            delta = 2 * (Y - T) / div * _dact(spec.activations[-1], Y)
        else:  # sigmoid + bce or softmax + ce: dJ/dz = (y - t) / div
            delta = (Y - T) / div
        grads = []
        for l in range(len(params), 0, -1):
            W, b = params[l - 1]
            c = 2 * l2 * l2_factor / (B if l2_mean else 1)
            grads.insert(0, (delta.T @ A[l - 1] + c * W, delta.sum(axis=0) + (c * b if l2_bias else 0)))
            if l > 1:
                delta = (delta @ W) * _dact(spec.activations[l - 2], A[l - 1])
        return grads

    m = types.ModuleType("user_impl")
    m.gradients = gradients
    m.SUPPORTED_ACTIVATIONS = ("tanh", "sigmoid", "identity") + (("softmax",) if kind == "ce" else ())
    if declare is not None:
        m.LOSS = declare
    if targets is not None:
        m.TARGETS = targets
    return m


def _check(module, **kw):
    runner = InProcess(module)
    return run_check(runner.name, runner=runner, examples=kw.pop("examples", 25), seed=kw.pop("seed", 0), **kw)


CONVENTIONS = {
    "ce summed over the batch": (dict(kind="ce", batch="sum"), "ce,over_batch=sum", "softmax_ce"),
    "sum over outputs, mean over batch": (dict(kind="squared", batch="mean"), "squared,over_batch=mean", "sse"),
    "1/(2B) sum": (dict(kind="squared", factor=0.5, batch="mean"), "squared,factor=0.5,over_batch=mean", "half_sse"),
    "1/2 mean": (
        dict(kind="squared", factor=0.5, outputs="mean", batch="mean"),
        {"kind": "squared", "factor": 0.5, "over_outputs": "mean", "over_batch": "mean"},
        "mse",
    ),
    "lambda sum W^2": (dict(kind="squared", l2=0.01), "sse,l2=0.01", "sse"),
    "lambda/2 sum W^2": (dict(kind="squared", l2=0.01, l2_factor=0.5), "sse,l2=0.01,l2_factor=0.5", "sse,l2=0.01"),
    "lambda/(2B) sum W^2": (
        dict(kind="squared", l2=0.02, l2_factor=0.5, l2_mean=True),
        "sse,l2=0.02,l2_factor=0.5,l2_over_batch=mean",
        "sse,l2=0.02,l2_factor=0.5",
    ),
    "with biases": (dict(kind="squared", l2=0.03, l2_bias=True), "sse,l2=0.03,l2_bias=true", "sse,l2=0.03"),
    "with biases, none declared": (dict(kind="squared", l2=0.03, l2_bias=True), "sse,l2=0.03,l2_bias=true", "sse"),
}


@pytest.mark.parametrize("what", list(CONVENTIONS))
def test_a_convention_passes_when_declared(what):
    conv, declared, _ = CONVENTIONS[what]
    r = _check(user_module(**conv, declare=declared))
    assert r.verdict == "pass", [f.detail for f in r.failures]


@pytest.mark.parametrize("what", list(CONVENTIONS))
def test_a_convention_fails_under_another_and_the_finding_names_the_loss_that_passes(what):
    conv, _, wrong = CONVENTIONS[what]
    r = _check(user_module(**conv), loss=wrong)
    assert r.verdict == "fail"
    named = [f for f in r.failures if f.kind == "mismatch" and f.diagnosis]
    assert named, [f.detail for f in r.failures]
    f = named[0]
    want = "regularization" if "W^2" in what or what.startswith("with biases") else ("batch_reduction", "scale")
    assert f.diagnosis in (want if isinstance(want, tuple) else (want,)), f.detail
    suggested = re.search(r"--loss (\S+) would pass", f.detail).group(1)
    assert _check(user_module(**conv), loss=suggested).verdict == "pass"  # the exact string passes


def test_labels_are_class_indices_and_pass_for_ce():
    seen = []
    module = user_module("ce", batch="mean", declare="softmax_ce", targets="labels")
    inner = module.gradients

    def gradients(params, X, T, spec):
        seen.append((T.dtype.kind, T.ndim, spec.targets))
        return inner(params, X, T, spec)

    module.gradients = gradients
    r = _check(module, examples=10)
    assert r.verdict == "pass" and set(seen) == {("i", 1, "labels")}


def test_labels_for_a_squared_loss_say_the_fix():
    from verifier.errors import SpecError

    with pytest.raises(SpecError, match="targets labels .* for a ce loss"):
        _check(user_module("squared", declare="sse", targets="labels"))


def test_the_spec_names_the_convention():
    got = []
    module = user_module("squared", factor=0.5, batch="mean", declare="squared,factor=0.5,over_batch=mean")
    inner = module.gradients

    def gradients(params, X, T, spec):
        got.append((spec.loss, spec.convention))
        return inner(params, X, T, spec)

    module.gradients = gradients
    assert _check(module, examples=3).verdict == "pass"
    loss, conv = got[0]
    assert (
        loss
        == conv
        == {
            "kind": "squared",
            "factor": 0.5,
            "over_outputs": "sum",
            "over_batch": "mean",
            "l2": 0.0,
            "l2_factor": 1.0,
            "l2_over_batch": "none",
            "l2_bias": False,
        }
    )
    module.LOSS = "mse"
    module.gradients = lambda p, X, T, spec: got.append((spec.loss, spec.convention["kind"])) or inner(p, X, T, spec)
    _check(module, examples=1)
    assert got[-1] == ("mse", "squared")
