"""Frozen records passed between compute, judge and report. Data only, no logic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class NetworkSpec:
    """sizes n_0..n_L, one activation name per layer, one loss (DESIGN section 2): a preset's
    name or a convention's canonical spelling (DESIGN section 2a, reference_impls/conventions.py),
    and the kind of targets the implementation takes (soft, one_hot, labels: DESIGN section 3)."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    targets: str = "soft"


@dataclass(frozen=True, eq=False)
class Case:
    """One network with its parameters and data: the unit every reference is run on."""

    spec: NetworkSpec
    params: tuple[tuple[np.ndarray, np.ndarray], ...]
    X: np.ndarray
    T: np.ndarray


@dataclass(frozen=True)
class EntryError:
    """One entry of one gradient tensor, compared."""

    index: tuple[int, ...]
    got: float
    expected: float
    abs_error: float
    rel_error: float
    tolerance: float


@dataclass(frozen=True)
class TensorVerdict:
    """The comparison of one tensor (layer l, W or b) between a subject and an oracle."""

    layer: int
    param: str
    compared: int
    excused: int  # kink entries judged by their interval instead of a single value
    failed: int
    max_abs: float
    max_rel: float
    worst: tuple[EntryError, ...]  # failing entries first, worst first; at most a few
    dtype: str | None = None  # the dtype the subject returned this tensor in: what it was judged to


@dataclass(frozen=True)
class PairStats:
    """Agreement between two references over every case of a cross-check."""

    a: str
    b: str
    compared: int
    excused: int
    disagreements: int
    max_abs: float
    max_rel: float


@dataclass(frozen=True)
class Failure:
    """One failure row (DESIGN section 6)."""

    kind: str
    detail: str
    layer: int | None = None
    param: str | None = None
    index: tuple[int, ...] | None = None
    got: float | None = None
    expected: float | None = None
    abs_error: float | None = None
    rel_error: float | None = None
    tolerance: float | None = None
    diagnosis: str | None = None
    case: dict[str, Any] | None = None
    case_file: str | None = None
    replay: str | None = None
    worst: tuple[EntryError, ...] = ()
    subject: str | None = None  # which reference, in a cross-check
    heatmap: tuple[tuple[float, ...], ...] | None = None  # per-entry rel error of the tensor, <= 64x64
    step_curve: tuple[tuple[float, float], ...] | None = None  # (h, |central difference - exact|)
    layer_name: str | None = None  # a named layer of a layers file (DESIGN 3a): "affine", "batchnorm"


@dataclass(frozen=True)
class CrosscheckResult:
    verdict: str
    seed: int
    examples: int
    references: tuple[str, ...]
    disagreements: int
    pairs: tuple[PairStats, ...]
    failures: tuple[Failure, ...] = ()
    seconds: float = 0.0
    minimal_case: Any = None  # the shrunk Case behind the first failure, if any


@dataclass(frozen=True)
class GradResult:
    """Every reference's loss and gradients on one case (`backprop-verify grad`)."""

    case: str  # where the case came from (its file)
    loss: dict[str, float]  # reference name -> loss value
    grads: dict[str, list[tuple[np.ndarray, np.ndarray]]]  # reference name -> [(dW, db), ...]


@dataclass(frozen=True)
class CheckResult:
    verdict: str
    seed: int
    examples: int
    implementation: str
    references: tuple[str, ...]
    failures: tuple[Failure, ...]
    dtype: str | None = None
    tensors: tuple[TensorVerdict, ...] = ()  # per layer/param maximum errors over all cases
    mode: str = "full"
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None  # why exploration ended before its examples (budget, misbehaviour)
    skipped: int = 0  # cases the code declined (NotImplementedError): run, not judged
    notes: tuple[str, ...] = ()  # what the code does that is accepted but said (a (1, n) db, a clipped log)
    # how the code under test was isolated: "full", "partial", "process" or "in-process"
    # (verifier/sandbox/limits.py: isolation_level), and the mechanisms in force
    isolation: str = ""
    isolation_mechanisms: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    """How a check runs: made once at the edge (command line, API, plugin, gate baseline) and
    passed down whole. The defaults here are the only ones."""

    examples: int = 200  # generated cases
    seed: int = 0  # of the generated cases, and of fast mode's random directions
    mode: str = "full"  # "full": every entry; "fast": directions first (verifier/judge/fast.py)
    timeout: float = 10.0  # seconds per call of the implementation
    budget: float = 300.0  # seconds for the whole run: when spent, it ends with what it has
    sizes: tuple[int, ...] | None = None  # pin n_0..n_L
    activations: tuple[str, ...] | None = None  # names to draw from
    layer_activations: tuple[str, ...] | None = None  # one per layer, with sizes: pinned
    loss: str | None = None  # pin the loss: a preset or a convention's canonical name
    python: str | None = None  # the interpreter the checked code runs under (None: this one)
    targets: str | None = None  # soft, one_hot or labels (None: the module's TARGETS, else soft)
    batch: int | None = None  # pin the batch size
    cases_dir: str | None = None  # where the smallest failing case is saved (None: nowhere)
    shrink: bool = True  # look for the smallest failing case
    against: str = "model"  # networks: "model" (the references), "self" (the user's loss), "both"
    layers: tuple[str, ...] | None = None  # layers files: the names to check (None: every one)
    require_isolation: bool = False  # refuse to run the code without "full" isolation
    jax: bool = False  # JAX reverse mode as a third reference on small networks (check --jax)

    @property
    def directions_seed(self) -> int:
        """The seed of fast mode's random directions: the run's seed."""
        return self.seed


@dataclass(frozen=True, eq=False)
class LayerCase:
    """One call of a layer of a layers file (DESIGN 3a): its inputs and its upstream gradient.

    kind "pair": NAME_forward(x, *params, **kwargs) then NAME_backward(dout, cache); `args`
    holds x then each parameter in the forward's order. kind "loss": NAME_loss(x, y); `args`
    holds x and the integer labels y. `dout_pool` holds at least as many values as the
    forward's output: dout is its first out.size values, in the output's shape."""

    name: str
    kind: str
    args: tuple[tuple[str, np.ndarray], ...]
    kwargs: dict[str, Any]
    dout_pool: np.ndarray | None
    regime: str  # of the inputs: "integers", "normal", "saturated"
    dout_regime: str  # "normal", "zeros", "large", "tiny"


@dataclass(frozen=True, eq=False)
class LayerOutcome:
    """What one call of a layer came to: `kind` as in CallOutcome; `out` the forward's output
    (None for a loss layer), `grads` the backward's (dx, *dparams) or the loss layer's (dx,),
    `loss` the loss layer's value."""

    kind: str
    detail: str = ""
    out: np.ndarray | None = None
    grads: tuple[np.ndarray, ...] = ()
    loss: float | None = None
    mutated: tuple[str, ...] = ()
    output: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, eq=False)
class CallOutcome:
    """What one call of the user's code came to.

    kind: "ok" | "exception" | "timeout" | "exited" | "bad_output" | "mutated_input".
    A supports(spec) call answers in `accepted` (its kind "ok"); it carries no arrays.
    Values, shapes, dtypes and finiteness are passed through unjudged; "mutated_input" still
    carries the grads (or params) that were returned.
    """

    kind: str
    detail: str = ""
    grads: list[tuple[np.ndarray, np.ndarray]] | None = None
    loss: float | None = None
    params: list[tuple[np.ndarray, np.ndarray]] | None = None
    loss_dtype: str | None = None  # the dtype the loss value came back in: what it is judged to
    output: str = ""  # the first characters of the call's stdout/stderr (sandbox OUTPUT_EXCERPT)
    seconds: float = 0.0  # time inside the user's function (wall-clock time for a timeout)
    mutated: tuple[str, ...] = ()  # inputs changed in place, e.g. ("params[0].W", "X")
    output_bytes: int = 0  # bytes the call printed in total, kept or not
    wall_seconds: float = 0.0  # round trip seen by the harness, transfer included
    accepted: bool | None = None  # what supports(spec) answered, for a supports call
