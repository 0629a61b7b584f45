"""Networks and the values of a case, without Hypothesis: the names a spec may use, the rules a
spec must keep (DESIGN section 2), and the case a (spec, batch, regime, seed) draw stands for.

Everything here is plain numpy, so reading a case file, naming a loss or replaying a seed
imports no Hypothesis; verifier/strategies.py draws from these rules and re-exports them.
Regimes (what `case_from_draw` builds; verifier/strategies.py says where each bug hides):
integers, normal, saturated, tiny.
"""

from __future__ import annotations

import numpy as np

from reference_impls import conventions, model

from .errors import SpecError
from .records import Case, NetworkSpec

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


def fits(output_activation: str, loss: str, outputs: int) -> bool:
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
    if not fits(spec.activations[-1], spec.loss, int(spec.sizes[-1])):
        raise SpecError(f"sizes {list(spec.sizes)}: {ONE_OUTPUT_SOFTMAX}")
    check_targets(spec.targets, [spec.loss])
    return spec


def check_targets(targets, losses):
    if targets not in TARGETS:
        raise SpecError(f"targets {targets!r}: choose from {', '.join(TARGETS)}")
    if targets == "labels" and any(model.convention(NetworkSpec((), (), n)).kind != "ce" for n in losses):
        raise SpecError(
            "targets labels (class indices) are for a ce loss (softmax_ce or ce,...) only: "
            "use --targets one_hot for other losses, or --loss softmax_ce"
        )


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


def saturable_layers(spec):
    """Layers whose saturation keeps every correct implementation finite: not a bce or
    softmax_ce output, where y rounds to exactly 0 or 1 and log(y) is -inf in naive code
    (and a saturated hidden layer's large values are kept from it by `_output_inside`)."""
    L = len(spec.sizes) - 1
    last_ok = not model.fused(spec)
    return [l for l in range(1, L + 1) if l < L or last_ok]
