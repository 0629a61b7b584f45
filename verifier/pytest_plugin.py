"""pytest plugin (entry point `pytest11`): check a backprop implementation from a test.

    pytest --backprop-impl my_backprop.py [--backprop-examples 50] [--backprop-budget 120]
           [--backprop-require-isolation]

    def test_backprop(backprop_check):
        backprop_check()                                   # the --backprop-impl implementation
        backprop_check("other.py", sizes=(4, 8, 3))        # or any other, with check's options

    def test_layers(backprop_layers):
        backprop_layers("layers.py")                        # every layer of a layers file
        backprop_layers("layers.py", "affine", "relu", examples=50)   # or some, by name

`backprop_check(impl=None, **options)` runs `verifier.check` and fails the test with the short
text report when the implementation is wrong; it returns the CheckResult when it passes. `backprop_layers(impl=None, *names, **options)`
does the same for a layers file (DESIGN 3a: NAME_forward/NAME_backward pairs, NAME_loss
functions), layer by layer; options are examples, seed, batch, budget and timeout.
Works under pytest-xdist: every call starts its own isolated child, Hypothesis keeps no
example database, and minimal failing cases go to the test's own tmp_path.

This module is imported by every pytest run where the package is installed, so it imports
nothing heavy until a check runs.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("backprop-verifier")
    group.addoption(
        "--backprop-impl",
        metavar="PATH",
        default=None,
        help="the backprop implementation (a .py file or module) the backprop_check fixture checks",
    )
    group.addoption(
        "--backprop-examples",
        metavar="N",
        type=int,
        default=None,
        help="generated cases per backprop_check call (default: verifier.check's)",
    )
    group.addoption(
        "--backprop-budget",
        metavar="SECONDS",
        type=float,
        default=None,
        help="seconds per backprop_check call: when spent the check ends, never a pass (default: verifier.check's)",
    )
    group.addoption(
        "--backprop-require-isolation",
        action="store_true",
        default=False,
        help="fail every backprop_check call on a machine that cannot isolate the code under test fully "
        "(its own namespaces, private /tmp and /dev/shm, Landlock)",
    )


@pytest.fixture
def backprop_check(request):
    """A callable `(impl=None, **options) -> CheckResult` that fails the test on a wrong gradient."""
    default_impl = request.config.getoption("backprop_impl")
    default_examples = request.config.getoption("backprop_examples")
    default_budget = request.config.getoption("backprop_budget")
    require_isolation = request.config.getoption("backprop_require_isolation")

    def run(impl=None, **options):
        from . import api
        from .errors import VerifierError
        from .report import render

        impl = impl if impl is not None else default_impl
        if impl is None:
            pytest.fail(
                "backprop_check: no implementation; pass --backprop-impl PATH to pytest, or call backprop_check(impl)",
                pytrace=False,
            )
        if default_examples is not None:
            options.setdefault("examples", default_examples)
        if default_budget is not None:
            options.setdefault("budget", default_budget)
        if require_isolation:
            options.setdefault("require_isolation", True)
        options.setdefault("cases_dir", str(request.getfixturevalue("tmp_path") / "backprop-verify"))
        try:
            result = api.check(impl, **options)
        except VerifierError as exc:
            pytest.fail(f"backprop-verifier could not check {impl}: {exc}", pytrace=False)
        if result.verdict != "pass":
            pytest.fail(render(result, "text"), pytrace=False)
        return result

    return run


LAYER_OPTIONS = ("examples", "seed", "batch", "budget", "timeout")


@pytest.fixture
def backprop_layers(request):
    """A callable `(impl=None, *names, **options) -> CheckResult` that fails the test when a layer
    of a layers file (every one, or those named) is wrong."""
    default_impl = request.config.getoption("backprop_impl")
    default_examples = request.config.getoption("backprop_examples")
    default_budget = request.config.getoption("backprop_budget")

    def run(impl=None, *names, **options):
        from .errors import VerifierError
        from .records import RunConfig
        from .report import render
        from .run.contract import run_layers_file

        impl = impl if impl is not None else default_impl
        if impl is None:
            pytest.fail(
                "backprop_layers: no layers file; pass --backprop-impl PATH to pytest, or call backprop_layers(path)",
                pytrace=False,
            )
        unknown = sorted(set(options) - set(LAYER_OPTIONS))
        if unknown:
            pytest.fail(
                f"backprop_layers: unknown option {', '.join(unknown)}; use {', '.join(LAYER_OPTIONS)}", pytrace=False
            )
        if default_examples is not None:
            options.setdefault("examples", default_examples)
        if default_budget is not None:
            options.setdefault("budget", default_budget)
        cases = str(request.getfixturevalue("tmp_path") / "backprop-verify")
        config = RunConfig(cases_dir=cases, layers=tuple(names) or None, **options)
        try:
            result = run_layers_file(str(impl), config)
        except VerifierError as exc:
            pytest.fail(f"backprop-verifier could not check {impl}: {exc}", pytrace=False)
        if result.verdict != "pass":
            pytest.fail(render(result, "text"), pytrace=False)
        return result

    return run
