"""backprop-verifier: tells you whether your backpropagation computes the right gradients.

    import verifier
    verifier.assert_gradients_close("my_backprop.py")           # GradientMismatch if wrong
    result = verifier.check(my_gradients, sizes=(2, 3, 1))       # a CheckResult record

    from verifier.strategies import network_specs, cases         # Hypothesis strategies

The public API is `__all__` below, frozen by tests/test_api.py. Names are loaded on first
use, so `import verifier` stays cheap (no JAX) until a check runs.

The package is laid out by concern: `judge/` (references, tolerances, comparison, diagnosis),
`sandbox/` (the isolated child), `run/` (the commands' work), `report/` (one module per format),
`cli/` (one module per command); records, errors, strategies and case files at the top.
"""

from __future__ import annotations

import importlib

__all__ = [
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

_WHERE = {  # public name -> (module, attribute; None for the module itself)
    "check": ("api", "check"),
    "assert_gradients_close": ("api", "assert_gradients_close"),
    "run_crosscheck": ("api", "run_crosscheck"),
    "strategies": ("strategies", None),
    "CheckResult": ("records", "CheckResult"),
    "CrosscheckResult": ("records", "CrosscheckResult"),
    "NetworkSpec": ("records", "NetworkSpec"),
    "Case": ("records", "Case"),
    "GradientMismatch": ("errors", "GradientMismatch"),
    "VerifierError": ("errors", "VerifierError"),
}


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'verifier' has no attribute {name!r}")
    module, attr = _WHERE[name]
    value = importlib.import_module(f".{module}", __name__)
    return value if attr is None else getattr(value, attr)


def __dir__():
    return sorted(set(globals()) | set(__all__))
