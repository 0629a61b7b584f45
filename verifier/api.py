"""The Python API: `check` returns a record, `assert_gradients_close` raises on a failure.

    import verifier
    result = verifier.check("my_backprop.py", examples=100)      # a CheckResult
    verifier.assert_gradients_close(my_module.gradients, loss="sse")

Isolation applies to files and module names: their code runs in a separate, limited process
(verifier/sandbox.py), so a crash, hang or exit becomes a failure row. A Python function (or
module object) is checked in this process instead, on the same generated cases: it cannot be
sent to a child process. Its exceptions, bad outputs and mutated inputs still become failure
rows, but a hang is not timed out and a crash or `os._exit` takes the caller down with it.
"""

from __future__ import annotations

import os
import sys
import time
import types
from dataclasses import replace

import numpy as np

from .errors import GradientMismatch, ImplementationError, SpecError

__all__ = ["check", "assert_gradients_close", "run_crosscheck"]


def check(impl, *, examples=200, seed=0, sizes=None, activations=None, layer_activations=None,
          loss=None, batch=None, case=None, timeout=10.0, cases_dir=None):
    """Check `impl`'s gradients on `examples` generated cases and return a CheckResult.

    impl: a .py path or module name (run isolated), or a function
        gradients(params, X, T, spec) / a module object (run in this process).
    sizes: pin n_0..n_L; layer_activations: pin one activation per layer (with sizes);
    activations, loss: names to draw from; batch: pin the batch size;
    case: a Case or case file path to run alone (a failure's replay);
    cases_dir: where the smallest failing case is saved (None: not saved).
    Raises VerifierError (SpecError, ImplementationError, ReferenceDisagreement) when the
    harness cannot do its job; a failing implementation is a result, not an exception.
    """
    from .check import run_check

    options = _validated(examples=examples, seed=seed, sizes=sizes, activations=activations,
                         layer_activations=layer_activations, loss=loss, batch=batch, case=case,
                         timeout=timeout)
    if isinstance(impl, (str, os.PathLike)):
        return run_check(os.fspath(impl), cases_dir=cases_dir, **options)
    if not (callable(impl) or isinstance(impl, types.ModuleType)):
        raise SpecError(f"impl: got {type(impl).__name__}; give a .py path, a module name, "
                        "a module, or a function gradients(params, X, T, spec)")
    runner = InProcess(impl)
    result = run_check(runner.name, cases_dir=cases_dir, runner=runner, **options)
    if isinstance(impl, types.ModuleType):
        return result
    # a function cannot be named on a command line: keep the case file, drop the replay
    return replace(result, failures=tuple(replace(f, replay=None) for f in result.failures))


def assert_gradients_close(impl, *, examples=200, seed=0, sizes=None, activations=None,
                           layer_activations=None, loss=None, batch=None, case=None, timeout=10.0,
                           cases_dir=None):
    """`check(impl, ...)`, raising GradientMismatch (the short text report as its message, the
    CheckResult as `.result`) unless it passes; returns the CheckResult when it does."""
    result = check(impl, examples=examples, seed=seed, sizes=sizes, activations=activations,
                   layer_activations=layer_activations, loss=loss, batch=batch, case=case,
                   timeout=timeout, cases_dir=cases_dir)
    if result.verdict != "pass":
        from . import report

        raise GradientMismatch(report.text(result).rstrip("\n"), result)
    return result


def run_crosscheck(*, examples=200, seed=0):
    """Cross-check every reference against every other; a CrosscheckResult (verdict "pass" or
    "error": references disagreeing is a harness bug, never the user's)."""
    from .crosscheck import run_crosscheck as run

    _validated(examples=examples, seed=seed)
    return run(examples=examples, seed=seed)


def _validated(*, examples, seed, timeout=1.0, sizes=None, case=None, **rest):
    """The options, checked up front with errors that say the fix."""
    if isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 1:
        raise SpecError(f"examples={examples!r}: give a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SpecError(f"seed={seed!r}: give a whole number")
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise SpecError(f"timeout={timeout!r}: give a number of seconds > 0")
    if sizes is not None:
        sizes = tuple(int(n) for n in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise SpecError(f"sizes={list(sizes)}: give at least two sizes, each >= 1, like (4, 8, 3)")
    if isinstance(case, (str, os.PathLike)):
        from . import casefile

        case = casefile.load(os.fspath(case))
    if isinstance(rest.get("activations"), str) or isinstance(rest.get("layer_activations"), str):
        raise SpecError("activations and layer_activations take a list of names, like ['sigmoid']")
    for key in ("activations", "layer_activations"):
        if rest.get(key) is not None:
            rest[key] = tuple(rest[key])
    if rest.get("layer_activations") is not None and sizes is None:
        raise SpecError("layer_activations pins one activation per layer: give sizes too")
    return dict(examples=int(examples), seed=int(seed), timeout=float(timeout), sizes=sizes,
                case=case, **rest)


class InProcess:
    """The Sandbox interface (describe, gradients, train_step) for a function or module object,
    run in this process on read-only copies of the inputs. No timeout, no containment."""

    def __init__(self, target):
        module = target if isinstance(target, types.ModuleType) else None
        self._gradients = getattr(module, "gradients", None) if module else target
        self._train_step = getattr(module, "train_step", None) if module else None
        # the optional attributes (DESIGN section 3): on the function, else on its module
        self._attrs = [module] if module else [target, sys.modules.get(getattr(target, "__module__", None))]
        self.name = module.__name__ if module else (
            f"{getattr(target, '__module__', None) or '?'}.{getattr(target, '__qualname__', repr(target))}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def describe(self):
        from . import _child_values as values

        if not callable(self._gradients):
            raise ImplementationError(f"{self.name} defines no function `gradients`: define "
                                      "gradients(params, X, T, spec) returning [(dW1, db1), ...]")
        names = {}
        for attr in ("SUPPORTED_ACTIVATIONS", "SUPPORTED_LOSSES"):
            try:
                names[attr] = values.attribute_names(self._attr(attr), attr)
            except TypeError as exc:
                raise ImplementationError(f"{self.name}: {exc}") from None
        layout = self._attr("LAYOUT")
        if layout is not None and not isinstance(layout, str):
            raise ImplementationError(f"{self.name}: LAYOUT must be a string such as \"in_out\"")
        return {**names, "LAYOUT": layout, "has_gradients": True,
                "has_train_step": callable(self._train_step)}

    def _attr(self, name):
        return next((getattr(o, name) for o in self._attrs if getattr(o, name, None) is not None), None)

    def gradients(self, params, X, T, spec):
        return self._call(self._gradients, "gradients", params, X, T, spec)

    def train_step(self, params, X, T, spec, lr):
        return self._call(self._train_step, "train_step", params, X, T, spec, float(lr))

    def _call(self, fn, fn_name, params, X, T, spec, *lr):
        from . import _child_values as values
        from .sandbox import CallOutcome

        originals = [a for W, b in params for a in (W, b)] + [X, T]
        copies = [_read_only(a) for a in originals]
        user_params = [(copies[2 * i], copies[2 * i + 1]) for i in range(len(params))]
        given = list(user_params)
        t0 = time.perf_counter()
        try:
            result = fn(user_params, copies[-2], copies[-1], values.make_spec(spec), *lr)
        except SystemExit as exc:
            return CallOutcome("exited", f"{fn_name} called sys.exit({exc.code!r})")
        except Exception as exc:
            return CallOutcome("exception", values.exception_text(exc.with_traceback(exc.__traceback__.tb_next)))
        seconds = time.perf_counter() - t0
        try:
            loss, arrays = values.convert(result, len(params), fn_name)
        except values.BadOutput as exc:
            return CallOutcome("bad_output", f"{fn_name} returned the wrong kind of value: {exc}")
        pairs = [(arrays[2 * i], arrays[2 * i + 1]) for i in range(len(params))]
        kind, detail = "ok", ""
        swapped = len(user_params) != len(given) or any(a is not b for a, b in zip(user_params, given))
        if swapped or any(not np.array_equal(c, o, equal_nan=True) for c, o in zip(copies, originals)):
            kind = "mutated_input"
            detail = (f"{fn_name} modified its inputs in place; inputs are read-only: copy an "
                      "array before changing it (e.g. W = W.copy())")
        return CallOutcome(kind, detail, loss=loss, seconds=seconds,
                           grads=pairs if fn_name == "gradients" else None,
                           params=pairs if fn_name == "train_step" else None)


def _read_only(a):
    a = np.array(a, dtype=np.float64, copy=True)
    a.flags.writeable = False
    return a
