"""Frozen records passed between compute, judge and report. Data only, no logic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class NetworkSpec:
    """sizes n_0..n_L, one activation name per layer, one loss name (DESIGN section 2)."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str


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
