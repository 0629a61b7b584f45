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

from collections.abc import Callable, Sequence
from typing import Any

import hypothesis
import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from reference_impls import conventions, model

from .errors import SpecError
from .records import Case, NetworkSpec

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
]

HIDDEN_ACTIVATIONS = model.HIDDEN_ACTIVATIONS
ALL_ACTIVATIONS = model.ACTIVATION_NAMES
ALL_LOSSES = model.LOSS_NAMES
REGIMES = ("integers", "normal", "saturated", "tiny")
# What T holds (DESIGN section 3): soft, any rows on the simplex for ce, any values in [0, 1]
# for bce; one_hot, rows with one 1; labels, the class indices (B,) of one-hot rows, for ce.
# Cases always carry T as (B, n_L) rows; the sandbox hands labels over as indices.
TARGETS = ("soft", "one_hot", "labels")
SATURATION = 40.0
# The largest |z| of a bce or softmax_ce output: sigmoid(z) and softmax (logits at most 30
# apart) stay strictly inside (0, 1) in float64, and sigmoid in float32 too (it rounds to 1
# beyond about 17), so naive y (1 - y) and log(y) code stays finite.
OUTPUT_BOUND = 15.0


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


def compatible(output_activation: str, loss: str) -> bool:
    """bce needs a sigmoid output, softmax_ce a softmax output (DESIGN section 2)."""
    return bool(model.compatible(output_activation, loss))


def loss_name(loss) -> str:
    """The canonical name of a loss (a preset, a `kind,key=value` string or a mapping, DESIGN
    section 2a); SpecError saying the fix otherwise."""
    try:
        return conventions.name(loss)
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def loss_names(losses) -> tuple[str, ...]:
    """Canonical names of `losses` (default: the five presets), each checked by `loss_name`."""
    if losses is None:
        return tuple(ALL_LOSSES)
    if isinstance(losses, (str, dict)):
        losses = [losses]
    names = tuple(dict.fromkeys(loss_name(x) for x in losses))
    if not names:
        raise SpecError(f"no loss given; choose from {', '.join(ALL_LOSSES)} or a convention")
    return names


def activation_names(names) -> tuple[str, ...]:
    """Canonical activation names (leaky_relu:SLOPE included, DESIGN 2a); every activation
    when `names` is None; SpecError saying the fix for an unknown name or a bad slope."""
    if names is None:
        return tuple(ALL_ACTIVATIONS)
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise SpecError(f"no activation given; choose from {', '.join(ALL_ACTIVATIONS)}")
    try:
        return tuple(dict.fromkeys(model.activation_name(n) for n in names))
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def _fits(output_activation: str, loss: str, outputs: int) -> bool:
    """Whether an output layer of `outputs` units with `output_activation` can carry `loss`:
    a compatible pair, and no softmax over one unit (the constant 1, whose gradient is zero
    whatever the code computes)."""
    return compatible(output_activation, loss) and not (output_activation == "softmax" and outputs == 1)


ONE_OUTPUT_SOFTMAX = (
    "a softmax over one output unit is the constant 1, so every gradient through it is zero "
    "and says nothing about the code: give the output layer two or more units, or, for one "
    "probability, a sigmoid output (with bce)"
)


def validate_spec(spec: NetworkSpec) -> NetworkSpec:
    """Raise SpecError, saying the fix, unless `spec` is a network DESIGN section 2 defines."""
    L = len(spec.sizes) - 1
    if L < 1 or any(int(n) < 1 for n in spec.sizes):
        raise SpecError(f"sizes {list(spec.sizes)}: give at least two sizes, each >= 1")
    if len(spec.activations) != L:
        raise SpecError(f"{L} layers need {L} activations, got {len(spec.activations)}")
    activation_names(spec.activations)  # SpecError for an unknown name or a bad slope
    wrong = [a for a in spec.activations if model.activation_name(a) != a]
    if wrong:
        raise SpecError(f"activation {wrong[0]!r}: spell it {model.activation_name(wrong[0])!r}")
    if loss_name(spec.loss) != spec.loss:
        raise SpecError(f"loss {spec.loss!r}: spell it {loss_name(spec.loss)!r} (strategies.loss_name)")
    inner = [a for a in spec.activations[:-1] if a in model.OUTPUT_ONLY]
    if inner:
        raise SpecError(f"{inner[0]} is for the output layer only; use another hidden activation")
    if not compatible(spec.activations[-1], spec.loss):
        need = model.needs_output(spec.loss)
        raise SpecError(f"loss {spec.loss} needs a {need} output layer, not {spec.activations[-1]}")
    if not _fits(spec.activations[-1], spec.loss, int(spec.sizes[-1])):
        raise SpecError(f"sizes {list(spec.sizes)}: {ONE_OUTPUT_SOFTMAX}")
    _check_targets(spec.targets, [spec.loss])
    return spec


def _check_targets(targets, losses):
    if targets not in TARGETS:
        raise SpecError(f"targets {targets!r}: choose from {', '.join(TARGETS)}")
    if targets == "labels" and any(model.convention(NetworkSpec((), (), n)).kind != "ce" for n in losses):
        raise SpecError(
            "targets labels (class indices) are for a ce loss (softmax_ce or ce,...) only: "
            "use --targets one_hot for other losses, or --loss softmax_ce"
        )


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
    _check_targets(targets, chosen_losses)
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
    one_output = any(_fits(a, n, 1) for n in usable for a in acts)  # else only softmax outputs fit
    if not one_output and (int(sizes[-1]) == 1 if sizes is not None else max_width < 2):
        where = f"sizes {list(sizes)}" if sizes is not None else f"max_width {max_width}"
        raise SpecError(f"{where} with activations {list(acts)} and losses {list(chosen_losses)}: {ONE_OUTPUT_SOFTMAX}")
    return _network_specs(min_depth, max_depth, max_width, acts, hidden, usable, sizes, 1 if one_output else 2, targets)


@st.composite
def _network_specs(draw, min_depth, max_depth, max_width, acts, hidden, usable, sizes, min_outputs, targets):
    if sizes is None:
        depth = draw(st.integers(min_depth, max_depth if hidden else 1))
        widths = [draw(st.integers(1, max_width))]
        for i in range(depth):
            lo = min_outputs if i == depth - 1 else 1
            square = draw(st.booleans())
            widths.append(widths[-1] if square and widths[-1] >= lo else draw(st.integers(lo, max_width)))
        sizes = tuple(widths)
    sizes = tuple(int(n) for n in sizes)
    chosen = [draw(st.sampled_from(hidden)) for _ in sizes[1:-1]]
    # With one output, softmax (and so softmax_ce) is left out; with several, every pair fits.
    losses = [n for n in usable if any(_fits(a, n, sizes[-1]) for a in acts)]
    loss = draw(st.sampled_from(losses))
    out = draw(st.sampled_from([a for a in acts if _fits(a, loss, sizes[-1])]))
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


def _targets(rng, spec, B, regime):
    n = spec.sizes[-1]
    kind = model.convention(spec).kind
    if spec.targets != "soft":
        return np.eye(n)[rng.integers(0, n, B)]
    if kind == "bce":
        return rng.integers(0, 2, (B, n)).astype(float) if regime == "integers" else rng.uniform(size=(B, n))
    if kind == "ce":
        if regime == "integers":
            return np.eye(n)[rng.integers(0, n, B)]
        return rng.dirichlet(np.ones(n), size=B)
    if regime == "integers":
        return rng.integers(-2, 3, (B, n)).astype(float)
    return rng.normal(size=(B, n))


def case_from_draw(spec: NetworkSpec, batch: int, regime: str, seed: int, layer: int = 0) -> Case:
    """The case a (spec, batch, regime, seed) draw stands for; `layer` picks the saturated one."""
    rng = np.random.default_rng(seed)
    sizes, L = spec.sizes, len(spec.sizes) - 1
    params = []
    for l in range(1, L + 1):
        shape = (sizes[l], sizes[l - 1])
        if regime == "integers":
            W = rng.integers(-2, 3, shape).astype(float)
            b = rng.integers(-1, 2, sizes[l]).astype(float)
        else:
            scale = 1e-3 if regime == "tiny" else 1 / np.sqrt(sizes[l - 1])
            W, b = rng.normal(size=shape) * scale, rng.normal(size=sizes[l]) * 0.5
            if regime == "saturated" and l == layer:
                W, b = W * SATURATION * np.sqrt(sizes[l - 1]), np.sign(b) * SATURATION + b
        params.append((W, b))
    X = (
        rng.integers(-2, 3, (batch, sizes[0])).astype(float)
        if regime == "integers"
        else rng.normal(size=(batch, sizes[0]))
    )
    params = _output_inside(spec, params, X, regime)
    return Case(spec, tuple(params), X, _targets(rng, spec, batch, regime))


def _output_inside(spec, params, X, regime):
    """`params` with the output layer of a bce or softmax_ce network brought within
    |z| <= OUTPUT_BOUND on the batch X, so y stays strictly inside (0, 1) and a textbook
    (y - t) / (y (1 - y)) or -t / y is finite; the hidden layers are left as drawn.

    Integer weights are stepped toward 0, one unit at a time, the one that moves z most first
    (all zero leaves |z| = |b| <= 1), so the case stays integers; other regimes' output rows
    are scaled down. Deterministic: the draw still fixes the case."""
    if not model.fused(spec):
        return params
    A = model.forward(params[:-1], X, spec)[1][-1]  # A[L-1]: zip stops before the output layer
    W, b = params[-1]
    peak = np.abs(A @ W.T + b).max(axis=0)
    if (peak <= OUTPUT_BOUND).all():
        return params
    if regime == "integers":
        W, reach = W.copy(), np.abs(A).max(axis=0)
        for k in np.flatnonzero(peak > OUTPUT_BOUND):
            while np.abs(A @ W[k] + b[k]).max() > OUTPUT_BOUND:
                j = int(np.argmax(np.abs(W[k]) * reach))
                W[k, j] -= np.sign(W[k, j])
    else:
        scale = np.minimum(1.0, OUTPUT_BOUND / peak)
        W, b = W * scale[:, None], b * scale
    return params[:-1] + [(W, b)]


def _saturable_layers(spec):
    """Layers whose saturation keeps every correct implementation finite: not a bce or
    softmax_ce output, where y rounds to exactly 0 or 1 and log(y) is -inf in naive code
    (and a saturated hidden layer's large values are kept from it by `_output_inside`)."""
    L = len(spec.sizes) - 1
    last_ok = not model.fused(spec)
    return [l for l in range(1, L + 1) if l < L or last_ok]


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
    B = int(batch) if batch is not None else draw(st.integers(1, max_batch))
    regime = draw(st.sampled_from(tuple(regimes)))
    layer = 0
    if regime == "saturated":
        choices = _saturable_layers(spec)
        if not choices:
            regime = "normal"
        else:
            layer = draw(st.sampled_from(choices))
    seed = draw(st.integers(0, 2**32 - 1))
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
