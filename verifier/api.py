"""The Python API: `check` returns a record, `assert_gradients_close` raises on a failure.

    import verifier
    result = verifier.check("my_backprop.py", examples=100)      # a CheckResult
    verifier.assert_gradients_close(my_module.gradients, loss="sse")

Isolation applies to files and module names: their code runs in a separate, limited process
(verifier/sandbox/), so a crash, hang or exit becomes a failure row. A Python function (or
module object) is checked in this process instead, on the same generated cases: it cannot be
sent to a child process. Its exceptions, bad outputs and mutated inputs still become failure
rows, but a hang is not timed out and a crash or `os._exit` takes the caller down with it.
"""

from __future__ import annotations

import os
import types
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from . import casefile
from .errors import GradientMismatch, SpecError
from .records import Case, CheckResult, CrosscheckResult, RunConfig

__all__ = ["check", "assert_gradients_close", "run_crosscheck"]

DEFAULT = RunConfig()
Impl = Any  # a .py path, a module name, a module object or a gradients function


def check(
    impl: Impl,
    *,
    examples: int = DEFAULT.examples,
    seed: int = DEFAULT.seed,
    sizes: Sequence[int] | None = None,
    activations: Sequence[str] | None = None,
    layer_activations: Sequence[str] | None = None,
    loss: str | None = None,
    batch: int | None = None,
    case: Case | str | os.PathLike | None = None,
    timeout: float = DEFAULT.timeout,
    cases_dir: str | None = None,
    budget: float = DEFAULT.budget,
    require_isolation: bool = DEFAULT.require_isolation,
) -> CheckResult:
    """Check `impl`'s gradients on `examples` generated cases and return a CheckResult.

    impl: a .py path or module name (run isolated), or a function
        gradients(params, X, T, spec) / a module object (run in this process).
    sizes: pin n_0..n_L; layer_activations: pin one activation per layer (with sizes);
    activations, loss: names to draw from; batch: pin the batch size;
    case: a Case or case file path to run alone (a failure's replay);
    cases_dir: where the smallest failing case is saved (None: not saved);
    budget: seconds for the whole run: when spent it ends with what it has, never a pass;
    require_isolation: raise IsolationError unless the code runs with "full" isolation (a
    function or module object, run in this process, never does).
    Raises VerifierError (SpecError, ImplementationError, ReferenceDisagreement) when the
    harness cannot do its job; a failing implementation is a result, not an exception.
    """
    from .run.check import run_check
    from .sandbox import InProcess

    options = _validated(
        examples=examples,
        seed=seed,
        sizes=sizes,
        activations=activations,
        layer_activations=layer_activations,
        loss=loss,
        batch=batch,
        case=case,
        timeout=timeout,
        budget=budget,
    )
    case = options.pop("case")
    config = RunConfig(cases_dir=cases_dir, require_isolation=bool(require_isolation), **options)
    if isinstance(impl, (str, os.PathLike)):
        return run_check(os.fspath(impl), config, case=case)
    if not (callable(impl) or isinstance(impl, types.ModuleType)):
        raise SpecError(
            f"impl: got {type(impl).__name__}; give a .py path, a module name, "
            "a module, or a function gradients(params, X, T, spec)"
        )
    runner = InProcess(impl)
    result = run_check(runner.name, config, case=case, runner=runner)
    if isinstance(impl, types.ModuleType):
        return result
    # a function cannot be named on a command line: keep the case file, drop the replay
    return replace(result, failures=tuple(replace(f, replay=None) for f in result.failures))


def assert_gradients_close(
    impl: Impl,
    *,
    examples: int = DEFAULT.examples,
    seed: int = DEFAULT.seed,
    sizes: Sequence[int] | None = None,
    activations: Sequence[str] | None = None,
    layer_activations: Sequence[str] | None = None,
    loss: str | None = None,
    batch: int | None = None,
    case: Case | str | os.PathLike | None = None,
    timeout: float = DEFAULT.timeout,
    cases_dir: str | None = None,
    budget: float = DEFAULT.budget,
    require_isolation: bool = DEFAULT.require_isolation,
) -> CheckResult:
    """`check(impl, ...)`, raising GradientMismatch (the short text report as its message, the
    CheckResult as `.result`) unless it passes; returns the CheckResult when it does."""
    result = check(
        impl,
        examples=examples,
        seed=seed,
        sizes=sizes,
        activations=activations,
        layer_activations=layer_activations,
        loss=loss,
        batch=batch,
        case=case,
        timeout=timeout,
        cases_dir=cases_dir,
        budget=budget,
        require_isolation=require_isolation,
    )
    if result.verdict != "pass":
        from .report import render

        raise GradientMismatch(render(result, "text").rstrip("\n"), result)
    return result


def run_crosscheck(*, examples: int = DEFAULT.examples, seed: int = DEFAULT.seed) -> CrosscheckResult:
    """Cross-check every reference against every other; a CrosscheckResult (verdict "pass" or
    "error": references disagreeing is a harness bug, never the user's)."""
    from .run.crosscheck import run_crosscheck as run

    _validated(examples=examples, seed=seed)
    return run(examples=examples, seed=seed)


def _validated(*, examples, seed, timeout=DEFAULT.timeout, budget=DEFAULT.budget, sizes=None, case=None, **rest):
    """The options, checked up front with errors that say the fix."""
    if isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 1:
        raise SpecError(f"examples={examples!r}: give a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SpecError(f"seed={seed!r}: give a whole number")
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise SpecError(f"timeout={timeout!r}: give a number of seconds > 0")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
        raise SpecError(f"budget={budget!r}: give a number of seconds > 0 for the whole run")
    if sizes is not None:
        sizes = tuple(int(n) for n in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise SpecError(f"sizes={list(sizes)}: give at least two sizes, each >= 1, like (4, 8, 3)")
    if isinstance(case, (str, os.PathLike)):
        case = casefile.load(os.fspath(case))
    if isinstance(rest.get("activations"), str) or isinstance(rest.get("layer_activations"), str):
        raise SpecError("activations and layer_activations take a list of names, like ['sigmoid']")
    for key in ("activations", "layer_activations"):
        if rest.get(key) is not None:
            rest[key] = tuple(rest[key])
    if rest.get("layer_activations") is not None and sizes is None:
        raise SpecError("layer_activations pins one activation per layer: give sizes too")
    return dict(
        examples=int(examples),
        seed=int(seed),
        timeout=float(timeout),
        budget=float(budget),
        sizes=sizes,
        case=case,
        **rest,
    )
