"""Hypothesis strategies for networks and data that reach every regime where backprop bugs hide.

Public, so a project can use them in its own tests:

    from verifier.strategies import network_specs, cases

    @given(cases(activations=["sigmoid"], losses=["sse"]))
    def test_my_backprop(case): ...

Regimes a drawn case can land in (Hypothesis shrinks toward the first of each list):
- ``integers``: every value a small integer (W, X in -2..2, b in -1..1): pre-activations
  land exactly on relu kinks, and a failing case reads like the notes' worked example;
- ``normal``: Gaussian weights scaled by 1/sqrt(fan-in), Gaussian data;
- ``saturated``: as normal, with one layer's weights and bias scaled so |z| > 30;
- ``tiny``: weights near 1e-3, where a missing factor hides in the rounding of a wrong scale.
In every regime a bce or softmax_ce output stays out of saturation (|z| <= 15, y strictly
inside (0, 1)): the data must never fail a correct textbook (y - t) / (y (1 - y)); hidden
layers still saturate.
Shapes: depth 1 up to `max_depth`, widths from 1, square layers, batch 1 and larger, one and
several outputs. Values come from a numpy generator seeded by a drawn integer, so a drawn case
of any size costs microseconds and replays exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from reference_impls import model

from .errors import SpecError
from .records import Case, NetworkSpec
from .specs import (
    ALL_ACTIVATIONS,
    ALL_LOSSES,
    HIDDEN_ACTIVATIONS,
    ONE_OUTPUT_SOFTMAX,
    OUTPUT_BOUND,
    REGIMES,
    SATURATION,
    TARGETS,
    activation_names,
    case_from_draw,
    check_targets,
    compatible,
    fits,
    loss_name,
    loss_names,
    saturable_layers,
    validate_spec,
)

__all__ = [
    "network_specs",
    "cases",
    "case_from_draw",
    "compatible",
    "validate_spec",
    "loss_name",
    "loss_names",
    "activation_names",
    "pinned_specs",
    "explore",
    "is_flaky",
    "reject",
    "is_unsatisfiable",
    "REGIMES",
    "TARGETS",
    "ONE_OUTPUT_SOFTMAX",
    "ALL_ACTIVATIONS",
    "ALL_LOSSES",
    "HIDDEN_ACTIVATIONS",
    "OUTPUT_BOUND",
    "SATURATION",
]


def _backend() -> str:
    """The Hypothesis backend `explore` draws with: Hypothesis's own, less its constant pools.

    Hypothesis (6.131 and later) sometimes draws an integer from the literal constants in the
    source of every "local" module loaded, which would make the cases a seed stands for depend
    on this project's code, on the user's code when it is checked in process, on the test files
    pytest has loaded, and on whether the package is installed editable. Our strategies draw
    only bounded sizes, indices and seeds, so the constants add nothing here; without them a
    seed and a strategy alone fix the cases (tests/test_strategies.py holds it to that)."""
    from hypothesis.internal.conjecture import providers

    if not hasattr(providers.HypothesisProvider, "_maybe_draw_constant"):
        return "hypothesis"  # a Hypothesis without constant pools: its own backend is deterministic

    class SeedOnly(providers.HypothesisProvider):
        def _maybe_draw_constant(self, choice_type, constraints, *, p=0.05):
            return None

    providers.AVAILABLE_PROVIDERS.setdefault("backprop_verify", SeedOnly)
    return "backprop_verify"


BACKEND = _backend()


def network_specs(
    *,
    min_depth: int = 1,
    max_depth: int = 4,
    max_width: int = 6,
    activations: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    sizes: Sequence[int] | None = None,
    targets: str = "soft",
) -> SearchStrategy[NetworkSpec]:
    """Network specs: depth, widths, one activation per layer and a compatible loss.

    `sizes` pins the shape (a homework network); `activations` and `losses` restrict the
    names drawn from. Softmax is drawn only for the output layer, and only over two or more
    outputs (over one it is the constant 1). Arguments are checked here, before anything is
    drawn, with a SpecError that says the fix.
    """
    acts = activation_names(activations)
    chosen_losses = loss_names(losses)
    check_targets(targets, chosen_losses)
    if sizes is None and (not 1 <= min_depth <= max_depth or max_width < 1):
        raise SpecError("need 1 <= min_depth <= max_depth and max_width >= 1")
    if sizes is not None and (len(sizes) < 2 or min(int(n) for n in sizes) < 1):
        raise SpecError(f"sizes {list(sizes)}: give at least two sizes, each >= 1")
    hidden = tuple(a for a in acts if a not in model.OUTPUT_ONLY)
    usable = tuple(n for n in chosen_losses if any(compatible(a, n) for a in acts))
    deep = (sizes is not None and len(sizes) > 2) or (sizes is None and max_depth > 1)
    if (deep and not hidden) or not usable:
        raise SpecError(
            f"no network fits activations {list(acts)} with losses {list(chosen_losses)}: "
            "add a hidden activation or a loss that fits the output activation"
        )
    one_output = any(fits(a, n, 1) for n in usable for a in acts)  # else only softmax outputs fit
    if not one_output and (int(sizes[-1]) == 1 if sizes is not None else max_width < 2):
        where = f"sizes {list(sizes)}" if sizes is not None else f"max_width {max_width}"
        raise SpecError(f"{where} with activations {list(acts)} and losses {list(chosen_losses)}: {ONE_OUTPUT_SOFTMAX}")
    return _network_specs(min_depth, max_depth, max_width, acts, hidden, usable, sizes, 1 if one_output else 2, targets)


@functools.cache
def _integers(lo: int, hi: int) -> SearchStrategy[int]:
    """st.integers(lo, hi), built once: a strategy made afresh for every draw is validated,
    labelled and checked for emptiness each time, most of a small case's generation cost."""
    return st.integers(lo, hi)


@functools.cache
def _one_of(values: tuple) -> SearchStrategy:
    """st.sampled_from(values), built once (see _integers)."""
    return st.sampled_from(values)


_BOOLEANS = st.booleans()


@st.composite
def _network_specs(draw, min_depth, max_depth, max_width, acts, hidden, usable, sizes, min_outputs, targets):
    if sizes is None:
        depth = draw(_integers(min_depth, max_depth if hidden else 1))
        widths = [draw(_integers(1, max_width))]
        for i in range(depth):
            lo = min_outputs if i == depth - 1 else 1
            square = draw(_BOOLEANS)
            widths.append(widths[-1] if square and widths[-1] >= lo else draw(_integers(lo, max_width)))
        sizes = tuple(widths)
    sizes = tuple(int(n) for n in sizes)
    chosen = [draw(_one_of(tuple(hidden))) for _ in sizes[1:-1]]
    # With one output, softmax (and so softmax_ce) is left out; with several, every pair fits.
    losses = tuple(n for n in usable if any(fits(a, n, sizes[-1]) for a in acts))
    loss = draw(_one_of(losses))
    out = draw(_one_of(tuple(a for a in acts if fits(a, loss, sizes[-1]))))
    return validate_spec(NetworkSpec(sizes, tuple(chosen) + (out,), loss, targets))


def pinned_specs(
    sizes: Sequence[int], activations: Sequence[str], losses: Sequence[str], targets: str = "soft"
) -> SearchStrategy[NetworkSpec]:
    """One network shape and its activations, pinned; the loss drawn from `losses`."""
    if activations and int(sizes[-1]) == 1 and activations[-1] == "softmax":
        raise SpecError(f"the pinned network {list(sizes)}, {list(activations)}: {ONE_OUTPUT_SOFTMAX}")
    losses = loss_names(losses)
    specs = [
        NetworkSpec(tuple(sizes), tuple(activations), n, targets) for n in losses if compatible(activations[-1], n)
    ]
    if not specs:
        raise SpecError(f"no loss in {list(losses)} fits output activation {activations[-1]}")
    for s in specs:
        validate_spec(s)
    return st.sampled_from(specs)


@st.composite
def cases(
    draw,
    *,
    specs: SearchStrategy[NetworkSpec] | None = None,
    batch: int | None = None,
    max_batch: int = 5,
    regimes: Sequence[str] = REGIMES,
    **spec_kwargs: Any,
) -> Case:
    """Cases: a spec (from `specs`, a strategy, or `network_specs(**spec_kwargs)`), a batch
    (pinned by `batch` or 1..max_batch), a regime and the seed of its values."""
    if batch is not None and int(batch) < 1:
        raise SpecError(f"batch {batch}: give a batch size >= 1")
    if max_batch < 1:
        raise SpecError(f"max_batch {max_batch}: give a batch size >= 1")
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown:
        raise SpecError(f"unknown regime {unknown}; choose from {', '.join(REGIMES)}")
    spec = draw(specs if specs is not None else network_specs(**spec_kwargs))
    B = int(batch) if batch is not None else draw(_integers(1, int(max_batch)))
    regime = draw(_one_of(tuple(regimes)))
    layer = 0
    if regime == "saturated":
        choices = saturable_layers(spec)
        if not choices:
            regime = "normal"
        else:
            layer = draw(_one_of(tuple(choices)))
    seed = draw(_integers(0, 2**32 - 1))
    return case_from_draw(spec, B, regime, seed, layer)


def explore(
    strategy: SearchStrategy, body: Callable[[Any], None], *, examples: int, seed: int, shrink: bool = True
) -> Exception | None:
    """Run `body(case)` on `examples` cases drawn from `strategy`, reproducibly from `seed`.

    `body` raises to report a failing case; Hypothesis then shrinks it to the smallest case
    that still fails (if `shrink`) and that exception is returned. None when nothing failed.
    """
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]

    @hypothesis.seed(seed)
    @settings(
        max_examples=max(1, int(examples)),
        database=None,
        deadline=None,
        phases=phases,
        backend=BACKEND,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.quiet,
    )
    @given(strategy)
    def run(case):
        body(case)

    try:
        run()
    except Exception as exc:  # the shrunk failure, re-raised by Hypothesis
        return exc
    return None


def reject() -> None:
    """Inside `explore`'s body: this case does not count (the code declined it); draw another."""
    hypothesis.reject()


def is_unsatisfiable(exc: BaseException | None) -> bool:
    """Whether `explore` ended because every case drawn was rejected."""
    return isinstance(exc, hypothesis.errors.Unsatisfiable)


def is_flaky(exc: BaseException | None) -> bool:
    """Whether `explore` ended on a failure that did not happen again when replayed (code whose
    answer changes from call to call), not on a failure of its own."""
    return isinstance(exc, hypothesis.errors.Flaky)
