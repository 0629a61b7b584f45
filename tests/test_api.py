"""The public Python API: frozen names and signatures, a cheap import, checks of files (isolated)
and of functions (in process), and the assert helper's message."""

import inspect
import subprocess
import sys

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from hypothesis import given, settings

import verifier
from verifier.errors import SpecError

SMALL = dict(examples=10, sizes=(3, 4, 2), loss="sse")


def plain(fn):
    """The signature's names, kinds and defaults: the contract, whatever the annotations say."""
    sig = inspect.signature(fn)
    return str(
        sig.replace(
            parameters=[p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()],
            return_annotation=inspect.Signature.empty,
        )
    )


def test_the_public_functions_are_annotated():
    strategies = verifier.strategies
    public = (strategies.network_specs, strategies.cases, strategies.case_from_draw, strategies.explore)
    for fn in (verifier.check, verifier.assert_gradients_close, verifier.run_crosscheck, *public):
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, fn.__name__
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), fn.__name__


def test_the_public_api_is_frozen():
    assert verifier.__all__ == [
        "check",
        "assert_gradients_close",
        "run_crosscheck",
        "strategies",
        "CheckResult",
        "CrosscheckResult",
        "NetworkSpec",
        "Case",
        "GradientMismatch",
        "VerifierError",
    ]
    options = (
        "*, examples=200, seed=0, sizes=None, activations=None, layer_activations=None, "
        "loss=None, batch=None, case=None, timeout=10.0, cases_dir=None, budget=300.0, require_isolation=False"
    )
    assert plain(verifier.check) == f"(impl, {options})"
    assert plain(verifier.assert_gradients_close) == f"(impl, {options})"
    assert plain(verifier.run_crosscheck) == "(*, examples=200, seed=0)"
    assert plain(verifier.strategies.network_specs) == (
        "(*, min_depth=1, max_depth=4, max_width=6, activations=None, losses=None, sizes=None, targets='soft')"
    )
    assert plain(verifier.strategies.cases) == (
        "(*, specs=None, batch=None, max_batch=5, regimes=('integers', 'normal', 'saturated', 'tiny'), **spec_kwargs)"
    )
    assert issubclass(verifier.GradientMismatch, AssertionError)
    assert issubclass(verifier.VerifierError, Exception)
    assert all(getattr(verifier, name) is not None for name in verifier.__all__)


def test_import_verifier_does_not_import_jax():
    code = (
        "import verifier, sys; assert 'jax' not in sys.modules; "
        "verifier.NetworkSpec, verifier.strategies; assert 'jax' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_check_stays_the_function_after_its_module_is_imported():
    from verifier.run.check import run_check  # sets verifier.check to the module, were it not kept

    assert callable(run_check) and inspect.isfunction(verifier.check)


def test_a_file_is_checked_isolated_and_passes():
    result = verifier.check(EXAMPLES / "correct_vectorized.py", **SMALL)
    assert isinstance(result, verifier.CheckResult)
    assert result.verdict == "pass" and result.examples == 10 and result.dtype == "float64"


def test_a_float32_implementation_is_judged_to_float32_accuracy():
    result = verifier.check(str(EXAMPLES / "correct_float32.py"), examples=30, seed=1)
    assert result.verdict == "pass" and result.dtype == "float32"


def test_assert_gradients_close_raises_with_the_short_report(tmp_path):
    with pytest.raises(verifier.GradientMismatch) as caught:
        verifier.assert_gradients_close(str(EXAMPLES / "bug_sign_flip.py"), cases_dir=tmp_path, **SMALL)
    message = str(caught.value)
    assert message.startswith("FAIL ") and "MISMATCH" in message and "[sign]" in message
    assert "replay: backprop-verify check" in message
    assert caught.value.result.verdict == "fail"


def test_a_function_is_checked_in_process():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import bug_sign_flip
        import correct_vectorized
    finally:
        sys.path.remove(str(EXAMPLES))
    assert verifier.assert_gradients_close(correct_vectorized.gradients, examples=20).verdict == "pass"
    assert verifier.check(correct_vectorized, **SMALL).verdict == "pass"  # a module object too
    result = verifier.check(bug_sign_flip.gradients, **SMALL)
    assert result.verdict == "fail" and result.failures[0].diagnosis == "sign"
    assert result.implementation == "bug_sign_flip.gradients"
    assert all(f.replay is None for f in result.failures)  # a function has no command line


def _raises(params, X, T, spec):
    raise ZeroDivisionError("planted")


def _mutates(params, X, T, spec):
    X.flags.writeable = True
    X[...] = 0
    return [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]


def _wrong_shape(params, X, T, spec):
    return [(W.T * 0, b * 0) for W, b in params]


def _not_a_list(params, X, T, spec):
    return "gradients"


@pytest.mark.parametrize(
    "fn, kind, words",
    [
        (_raises, "exception", "ZeroDivisionError: planted"),
        (_mutates, "mutated_input", "read-only"),
        (_wrong_shape, "bad_output", "shape"),
        (_not_a_list, "bad_output", "expected a list"),
    ],
    ids=["raises", "mutates", "wrong-shape", "not-a-list"],
)
def test_a_misbehaving_function_becomes_a_failure_row(fn, kind, words):
    result = verifier.check(fn, examples=3, sizes=(3, 2), loss="sse")
    assert result.verdict == "fail" and result.failures[0].kind == kind
    assert words in result.failures[0].detail


@pytest.mark.parametrize(
    "impl, options, message",
    [
        ("x.py", dict(examples=0), "examples=0"),
        ("x.py", dict(seed="1"), "seed='1'"),
        ("x.py", dict(sizes=(3,)), "at least two sizes"),
        ("x.py", dict(activations="sigmoid"), "list of names"),
        ("x.py", dict(sizes=(2, 3, 1), layer_activations="tanh"), "list of names"),
        ("x.py", dict(layer_activations=["tanh"]), "give sizes too"),
        ("x.py", dict(timeout=0), "timeout=0"),
        ("x.py", dict(sizes=(2, 3, 1), layer_activations=["tanh", "softmax"]), "two or more units"),
        ("x.py", dict(sizes=(3, 1), activations=["softmax"]), "two or more units"),
        (42, {}, "got int"),
    ],
    ids=[
        "examples",
        "seed",
        "sizes",
        "activations-str",
        "layer-str",
        "layer-no-sizes",
        "timeout",
        "one-output-softmax-pinned",
        "one-output-softmax-only",
        "impl",
    ],
)
def test_bad_options_are_refused_up_front_with_the_fix(impl, options, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        verifier.check(impl, **options)


def test_a_missing_file_is_a_verifier_error():
    with pytest.raises(verifier.VerifierError, match="cannot read"):
        verifier.check("no_such_impl.py", examples=1)


def test_run_crosscheck_returns_its_record():
    result = verifier.run_crosscheck(examples=3, seed=0)
    assert isinstance(result, verifier.CrosscheckResult) and result.verdict == "pass"


@settings(max_examples=5)
@given(verifier.strategies.cases(specs=verifier.strategies.network_specs(max_depth=2, losses=["sse"])))
def test_the_strategies_are_usable_in_a_projects_own_tests(case):
    assert isinstance(case, verifier.Case) and isinstance(case.spec, verifier.NetworkSpec)
    assert case.X.shape == (case.X.shape[0], case.spec.sizes[0])
