"""A Python function or module object checked in this process (the API's in-process runner).

It offers the Sandbox interface (describe, gradients, train_step, supports), on read-only copies of the
inputs, through the same readers of the user's values as the child (child_values.py). A function
cannot be sent to a child process, so there is no timeout and no containment: a hang is not
timed out and a crash or `os._exit` takes the caller down with it.
"""

from __future__ import annotations

import sys
import time
import types

import numpy as np

from ..errors import ImplementationError
from ..records import CallOutcome
from .child_values import BadOutput, attribute_names, convert, exception_text, make_spec


class InProcess:
    """The Sandbox interface (describe, gradients, train_step) for a function or module object,
    run in this process on read-only copies of the inputs. No timeout, no containment."""

    def __init__(self, target):
        module = target if isinstance(target, types.ModuleType) else None
        self._gradients = getattr(module, "gradients", None) if module else target
        self._train_step = getattr(module, "train_step", None) if module else None
        self._supports = getattr(module, "supports", None) if module else None
        # the optional attributes (DESIGN section 3): on the function, else on its module
        self._attrs = [module] if module else [target, sys.modules.get(getattr(target, "__module__", None))]
        self.name = (
            module.__name__
            if module
            else (f"{getattr(target, '__module__', None) or '?'}.{getattr(target, '__qualname__', repr(target))}")
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def describe(self):
        if not callable(self._gradients):
            raise ImplementationError(
                f"{self.name} defines no function `gradients`: define "
                "gradients(params, X, T, spec) returning [(dW1, db1), ...]"
            )
        names = {}
        for attr in ("SUPPORTED_ACTIVATIONS", "SUPPORTED_LOSSES"):
            try:
                names[attr] = attribute_names(self._attr(attr), attr)
            except TypeError as exc:
                raise ImplementationError(f"{self.name}: {exc}") from None
        layout = self._attr("LAYOUT")
        if layout is not None and not isinstance(layout, str):
            raise ImplementationError(f'{self.name}: LAYOUT must be a string such as "in_out"')
        try:
            loss = self._attr("LOSS")
            names["LOSS"] = None if loss is None else attribute_names(loss, "SUPPORTED_LOSSES")[0]
        except TypeError as exc:
            raise ImplementationError(f"{self.name}: LOSS: {exc}") from None
        targets = self._attr("TARGETS")
        if targets is not None and not isinstance(targets, str):
            raise ImplementationError(f'{self.name}: TARGETS must be a string such as "labels"')
        return {
            **names,
            "TARGETS": targets,
            "LAYOUT": layout,
            "has_gradients": True,
            "has_train_step": callable(self._train_step),
            "has_supports": callable(self._supports),
        }

    def _attr(self, name):
        return next((getattr(o, name) for o in self._attrs if getattr(o, name, None) is not None), None)

    def gradients(self, params, X, T, spec):
        return self._call(self._gradients, "gradients", params, X, T, spec)

    def train_step(self, params, X, T, spec, lr):
        return self._call(self._train_step, "train_step", params, X, T, spec, float(lr))

    def supports(self, spec):
        """The module's supports(spec): its answer in `accepted`, or the exception it raised."""
        try:
            value = self._supports(make_spec(spec))
        except Exception as exc:
            return CallOutcome("exception", exception_text(exc))
        if not isinstance(value, (bool, np.bool_)):
            return CallOutcome("bad_output", f"supports(spec) returned {type(value).__name__}, not True or False")
        return CallOutcome("ok", accepted=bool(value))

    def _call(self, fn, fn_name, params, X, T, spec, *lr):
        originals = [a for W, b in params for a in (W, b)] + [X, T]
        copies = [_read_only(a) for a in originals]
        user_params = [(copies[2 * i], copies[2 * i + 1]) for i in range(len(params))]
        given = list(user_params)
        t0 = time.perf_counter()
        try:
            result = fn(user_params, copies[-2], copies[-1], make_spec(spec), *lr)
        except SystemExit as exc:
            return CallOutcome("exited", f"{fn_name} called sys.exit({exc.code!r})")
        except Exception as exc:
            return CallOutcome("exception", exception_text(exc.with_traceback(exc.__traceback__.tb_next)))
        seconds = time.perf_counter() - t0
        try:
            loss, arrays, loss_dtype = convert(result, len(params), fn_name)
        except BadOutput as exc:
            return CallOutcome("bad_output", f"{fn_name} returned the wrong kind of value: {exc}")
        pairs = [(arrays[2 * i], arrays[2 * i + 1]) for i in range(len(params))]
        kind, detail = "ok", ""
        swapped = len(user_params) != len(given) or any(a is not b for a, b in zip(user_params, given))
        if swapped or any(not np.array_equal(c, o, equal_nan=True) for c, o in zip(copies, originals)):
            kind = "mutated_input"
            detail = (
                f"{fn_name} modified its inputs in place; inputs are read-only: copy an "
                "array before changing it (e.g. W = W.copy())"
            )
        return CallOutcome(
            kind,
            detail,
            loss=loss,
            loss_dtype=loss_dtype,
            seconds=seconds,
            grads=pairs if fn_name == "gradients" else None,
            params=pairs if fn_name == "train_step" else None,
        )


def _read_only(a):
    a = np.array(a, dtype=np.int64 if np.asarray(a).dtype.kind in "iu" else np.float64, copy=True)  # labels stay ints
    a.flags.writeable = False
    return a
