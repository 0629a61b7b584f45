"""`backprop-verify check FILE`: find which contract a file follows (DESIGN 3 and 3a) and check
all of it. A `gradients` function is checked on generated networks (verifier/run/check.py),
against the model's references, the user's own `loss` (self mode, verifier/run/selfcheck.py)
or both, as `--against` says; `NAME_forward`/`NAME_backward` pairs and `NAME_loss` functions
layer by layer (verifier/run/layers.py); a file with both gets one report holding both.

The child that reads which contract a file follows goes on to serve its network check: one
child start, not two. Layers and self mode are imported when a file needs them.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import ImplementationError, SpecError
from ..records import CheckResult, RunConfig
from ..sandbox import Sandbox
from .check import run_check

AGAINST = ("model", "self", "both")  # what a network's gradients are judged against
_ORDER = {"pass": 0, "fail": 1, "error": 2}


def run_file(
    impl, config: RunConfig | None = None, *, case=None, progress=None, case_stem=None, **options
) -> CheckResult:
    """Check every contract `impl` follows; one CheckResult. `case_stem` names a network's case
    files (run_check's; class runs give each submission its own)."""
    config = config if config is not None else RunConfig(**options)
    if config.against not in AGAINST:
        raise SpecError(f"--against {config.against}: use one of {', '.join(AGAINST)}")
    if case is not None and config.layers is None:
        return _networks(impl, config, case, progress, case_stem)
    with Sandbox(impl, timeout=config.timeout, python=config.python, require_isolation=config.require_isolation) as box:
        contract = box.contract()
        has_layers = bool(contract.get("layers") or contract.get("layer_losses"))
        if config.layers is not None or (has_layers and not contract.get("has_gradients")):
            if not has_layers:
                raise ImplementationError(
                    f"{impl} defines no layers: --layer needs NAME_forward(x, ...) and NAME_backward(dout, cache) "
                    "functions, or NAME_loss(x, y)"
                )
            return _layers(impl, box, contract, config, progress)
        if not has_layers:
            return _networks(impl, config, case, progress, case_stem, box)
        layered = _layers(impl, box, contract, config, progress)
    return merge(_networks(impl, config, case, progress, case_stem), layered)


def run_layers_file(impl, config: RunConfig | None = None, **options) -> CheckResult:
    """Check `impl`'s layers alone (every one, or those of `config.layers`); ImplementationError
    when it defines none."""
    config = config if config is not None else RunConfig(**options)
    with Sandbox(impl, timeout=config.timeout, python=config.python, require_isolation=config.require_isolation) as box:
        contract = box.contract()
        if not (contract.get("layers") or contract.get("layer_losses")):
            raise ImplementationError(
                f"{impl} defines no layers: a layers file has NAME_forward(x, ...) and NAME_backward(dout, "
                "cache) functions, or NAME_loss(x, y)"
            )
        return _layers(impl, box, contract, config)


def _layers(impl, box, contract, config, progress=None) -> CheckResult:
    from .layers import run_layers

    return run_layers(impl, box, contract, config, progress)


def _networks(impl, config, case, progress, case_stem, box=None) -> CheckResult:
    """The network check: against the model on `box` (the child that read the contract; None:
    a child of its own), or self mode (its own child)."""
    if config.against == "model":
        return run_check(impl, config, case=case, progress=progress, case_stem=case_stem, runner=box)
    from .selfcheck import run_self

    if box is not None:
        box.close()
    return run_self(impl, config, case=case, progress=progress)


def merge(net: CheckResult, layered: CheckResult) -> CheckResult:
    """One report of a file with both contracts: the network rows, then the layer rows."""
    verdict = max(net.verdict, layered.verdict, key=_ORDER.__getitem__)
    return replace(
        net,
        verdict=verdict,
        examples=net.examples + layered.examples,
        references=tuple(dict.fromkeys(net.references + layered.references)),
        failures=net.failures + layered.failures,
        seconds=net.seconds + layered.seconds,
        extra={**net.extra, **layered.extra},
        stopped=net.stopped or layered.stopped,
    )
