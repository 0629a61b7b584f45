"""Case files (DESIGN section 5): one network, its parameters and its data, as JSON."""

from __future__ import annotations

import json

import numpy as np

from reference_impls import conventions

from . import safe_io
from .errors import SpecError
from .records import Case, NetworkSpec
from .specs import TARGETS, loss_name, validate_spec


def spec_dict(spec: NetworkSpec) -> dict:
    """A spec as plain data: what the implementation's `spec` is built from, and a case file's
    head (DESIGN section 3): `loss` the preset's name, or the convention as a mapping when it is
    none; `convention` always the full mapping; `targets` the targets' kind."""
    preset = conventions.preset(spec.loss)
    return {
        "sizes": list(spec.sizes),
        "activations": list(spec.activations),
        "loss": preset if preset else conventions.as_dict(spec.loss),
        "convention": conventions.as_dict(spec.loss),
        "targets": spec.targets,
    }


def summary(case: Case) -> dict:
    """The short description every failure row carries: sizes, activations, loss (its name, as
    `--loss` takes it), batch."""
    d = {"sizes": list(case.spec.sizes), "activations": list(case.spec.activations), "loss": case.spec.loss}
    if case.spec.targets != "soft":
        d["targets"] = case.spec.targets
    return {**d, "batch": int(case.X.shape[0])}


def _num(x):
    """A JSON number: integers stay integers, floats keep every bit (repr round-trips)."""
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def _nested(a):
    """Nested lists of _num's numbers, made by tolist() (a big network's case file holds
    millions): the entries _num makes integers are picked out as a whole first."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        whole = (a == np.trunc(a)) & (np.abs(a) < 2**53)
    if whole.all():
        return a.astype(np.int64).tolist()
    if not whole.any():
        return a.tolist()
    out = a.astype(object)
    out[whole] = a[whole].astype(np.int64).tolist()
    return out.tolist()


def to_dict(case: Case) -> dict:
    d = spec_dict(case.spec)
    d["params"] = [{"W": _nested(W), "b": _nested(b)} for W, b in case.params]
    d["X"], d["T"] = _nested(case.X), _nested(case.T)
    return d


KEPT = 100_000  # numbers: a bigger minimal case is in its case file only (a report shows 2,000 characters)


def kept(minimal: dict) -> dict:
    """{"minimal_case": to_dict(first case)} for a run's result to carry, or {} when there is
    none or it is too big to be read there (8 M numbers would be seconds and a gigabyte)."""
    case = next(iter(minimal.values()), None)
    if case is None or sum(W.size + b.size for W, b in case.params) + case.X.size + case.T.size > KEPT:
        return {}
    return {"minimal_case": to_dict(case)}


def dumps(case: Case) -> str:
    return json.dumps(to_dict(case))


def _array(value, shape, where):
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"{where}: expected a numeric array of shape {shape}") from None
    if a.shape != shape:
        raise SpecError(f"{where}: shape {a.shape}, expected {shape} from sizes")
    if not np.isfinite(a).all():
        raise SpecError(f"{where}: holds NaN or infinity; give finite numbers")
    return a


def from_dict(d) -> Case:
    """A validated Case; SpecError naming the field and the fix otherwise."""
    if not isinstance(d, dict):
        raise SpecError("a case file holds one JSON object with sizes, activations, loss, params, X, T")
    missing = [k for k in ("sizes", "activations", "loss", "params", "X", "T") if k not in d]
    if missing:
        raise SpecError(f"case file lacks {', '.join(missing)} (DESIGN section 5 shows one)")
    try:
        sizes = tuple(int(n) for n in d["sizes"])
        acts = tuple(str(a) for a in d["activations"])
    except (TypeError, ValueError):
        raise SpecError("sizes must be a list of integers, activations a list of names") from None
    loss = d["loss"] if isinstance(d["loss"], (str, dict)) else str(d["loss"])
    targets = d.get("targets", "soft")
    if targets not in TARGETS:
        raise SpecError(f"targets {targets!r}: choose from {', '.join(TARGETS)}")
    spec = NetworkSpec(sizes, acts, loss_name(loss), targets)
    validate_spec(spec)
    L = len(sizes) - 1
    if not isinstance(d["params"], list) or len(d["params"]) != L:
        raise SpecError(f'params must be a list of {L} objects {{"W": ..., "b": ...}}')
    params = []
    for l, p in enumerate(d["params"], start=1):
        if not isinstance(p, dict) or "W" not in p or "b" not in p:
            raise SpecError(f"params[{l - 1}] must be an object with W and b")
        params.append(
            (_array(p["W"], (sizes[l], sizes[l - 1]), f"layer {l} W"), _array(p["b"], (sizes[l],), f"layer {l} b"))
        )
    X = np.array(d["X"], dtype=np.float64) if isinstance(d["X"], list) else None
    B = X.shape[0] if X is not None and X.ndim == 2 else -1
    X = _array(d["X"], (max(B, 1), sizes[0]), "X")
    T = _array(d["T"], (X.shape[0], sizes[-1]), "T")
    return Case(spec, tuple(params), X, T)


def load(path) -> Case:
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        raise SpecError(f"no case file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read case file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return from_dict(d)


def save(case: Case, path, *, own_dir: bool = False) -> str:
    """Write `case` to `path` safely (safe_io: never through a planted link or FIFO); `own_dir`:
    `path`'s directory is the cases directory, which must be this user's."""
    return safe_io.write_text(path, dumps(case) + "\n", own_dir=own_dir, what="case file")


WORKED_EXAMPLE = {
    "sizes": [2, 2, 1],
    "activations": ["sigmoid", "sigmoid"],
    "loss": "mse",
    "params": [{"W": [[1, 1], [1, 1]], "b": [0, 0]}, {"W": [[1, 1]], "b": [0]}],
    "X": [[-2, -1]],
    "T": [[1]],
}
