"""The CI regression gate: the check, plus a baseline of every tensor's largest error.

A baseline (JSON) records what the check ran with (implementation name, seed, examples,
network options) and, per layer and parameter, the largest absolute and relative error over
every case. The gate reruns the check with exactly that configuration and fails on

- any failure of the check (wrong gradients, misbehaviour), and
- a precision regression: a tensor's max relative error grown more than `factor` times
  against max(baseline, FLOOR), e.g. a float64 code path turned float32. The floor keeps a
  baseline of exactly 0 (a tiny network computed exactly) from making any rounding a regression.

Same seed and options give the same cases, so an unchanged implementation reproduces its
baseline figures. Compute, then judge: `judge` and `update` return CheckResult records (the
gate's rows added to the check's); only the CLI turns them into exit codes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import safe_io
from ..errors import SpecError, UnsafeOutputError
from ..records import Failure, RunConfig

FORMAT = 1
FLOOR = 16 * float(np.finfo(np.float64).eps)
DEFAULT_FACTOR = 10.0
DIGEST_SUFFIX = ".sha256"
CONFIG_KEYS = ("examples", "seed", "sizes", "activations", "loss", "batch")
DEFAULTS = {k: getattr(RunConfig(), k) for k in CONFIG_KEYS}
_FLAGS = {
    "examples": "--examples",
    "seed": "--seed",
    "sizes": "--sizes",
    "activations": "--activations",
    "loss": "--loss",
    "batch": "--batch",
}


def name_of(impl) -> str:
    """What a baseline is recorded for: a file's stem, or a module's name (paths move in CI)."""
    impl = str(impl)
    return Path(impl).stem if impl.endswith(".py") or "/" in impl or os.sep in impl else impl


def load(path) -> dict:
    """The baseline at `path`, validated; SpecError saying the fix when it is missing or bad."""
    text = _checked_text(path)
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        config = {k: data["config"][k] for k in CONFIG_KEYS}
        tensors = {(int(t["layer"]), str(t["param"])): t for t in data["tensors"]}
        for t in tensors.values():
            t["max_rel"], t["max_abs"], t["entries"] = float(t["max_rel"]), float(t["max_abs"]), int(t["entries"])
        data["name"], data["examples"] = str(data["name"]), int(data["examples"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SpecError(
            f"the baseline {path} cannot be used ({type(exc).__name__}: {exc}); record it again with --update"
        ) from None
    return {**data, "config": config, "tensors": tensors}


def configuration(impl, given: dict, baseline: dict | None = None, path=None) -> dict:
    """The check's options: the baseline's, which `given` may repeat but not change (without a
    baseline, as for --update: `given` over the defaults). None in `given` means absent."""
    given = {k: _plain(v) for k, v in given.items() if v is not None}
    unknown = set(given) - set(CONFIG_KEYS)
    if unknown:
        raise SpecError(f"unknown gate options {sorted(unknown)}; use {', '.join(CONFIG_KEYS)}")
    if baseline is None:
        return {**DEFAULTS, **given}
    if baseline["name"] != name_of(impl):
        raise SpecError(
            f"the baseline {path} was recorded for {baseline['name']}, not {name_of(impl)}: "
            "give the right --baseline, or pass --update to record one for this implementation"
        )
    recorded = baseline["config"]
    changed = [k for k, v in given.items() if recorded.get(k) != v]
    if changed:
        asked = " ".join(_flag(k, given[k]) for k in changed)
        had = " ".join(_flag(k, recorded.get(k)) for k in changed)
        raise SpecError(
            f"{asked} differs from the baseline {path}, recorded with {had}: drop the "
            "option to use the baseline's, or pass --update to record a new baseline"
        )
    return dict(recorded)


def record(result, config: dict, impl=None) -> dict:
    """The baseline of a passing result: its configuration and per-tensor maximum errors."""
    return {
        "format": FORMAT,
        "implementation": str(impl or result.implementation),
        "name": name_of(impl or result.implementation),
        "config": {k: _plain(config.get(k)) for k in CONFIG_KEYS},
        "examples": result.examples,
        "dtype": result.dtype,
        "references": list(result.references),
        "tensors": [
            {
                "layer": t.layer,
                "param": t.param,
                "entries": t.compared,
                "max_abs": _num(t.max_abs),
                "max_rel": _num(t.max_rel),
            }
            for t in result.tensors
        ],
    }


def digest_path(path) -> Path:
    """Where the baseline's digest is kept: beside it, `BASELINE.sha256` (a `sha256sum` line)."""
    path = Path(path)
    return path.with_name(path.name + DIGEST_SUFFIX)


def save(path, data: dict) -> str:
    """Write the baseline, then its digest beside it, each renamed into place (safe_io): a CI
    job killed mid-write leaves the old baseline intact, and nothing planted at either path
    redirects the write. A job killed between the two leaves a mismatch: exit 2, never a pass."""
    path = Path(path)
    text = json.dumps(data, indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"cannot write the baseline {path}: {exc.strerror}") from None
    safe_io.write_text(path, text, what="baseline")
    safe_io.write_text(digest_path(path), safe_io.digest_line(text.encode("utf-8"), path.name), what="baseline digest")
    return str(path)


def _checked_text(path) -> str:
    """The baseline's text, read only from a regular file, and only when the digest the gate
    recorded beside it matches: a baseline changed since (by hand, or by the checked code) is
    a harness error, never silently trusted."""
    try:
        data = safe_io.read_regular(path, what="baseline")
    except FileNotFoundError:
        raise SpecError(
            f"no baseline at {path}: record one first with `backprop-verify gate IMPL --baseline {path} --update`"
        ) from None
    digest, name = safe_io.read_digest(digest_path(path)), digest_path(path)
    if digest is None:
        raise UnsafeOutputError(
            f"the baseline {path} has no digest beside it ({name}), so it cannot be trusted: record "
            "it again with --update (or, if you vouch for this file, write one with `sha256sum`)"
        )
    if digest != safe_io.sha256_of(data):
        raise UnsafeOutputError(
            f"the baseline {path} does not match the digest the gate recorded in {name}: it was "
            "changed after it was recorded (by hand, or by the checked code); look at the change, "
            "then record it again with --update"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"the baseline {path} is not UTF-8 ({exc}); record it again with --update") from None


def update(result, config: dict, path, impl=None):
    """(Re)write the baseline from `result` if it passed; a failing implementation cannot become
    a baseline. The result comes back with the gate's notes in extra["gate"]."""
    written = result.verdict == "pass"
    if written:
        save(path, record(result, config, impl))
        note = f"baseline written to {path} ({len(result.tensors)} tensors, {result.examples} cases)"
    else:
        note = f"baseline {path} not written: the check failed, and a failing implementation cannot become a baseline"
    return replace(
        result,
        extra={**result.extra, "gate": {"baseline": str(path), "updated": written, "config": config, "note": note}},
    )


def judge(result, baseline: dict, path, factor: float = DEFAULT_FACTOR):
    """The gate's verdict on a check `result` run with the baseline's configuration: its failures,
    plus a precision_regression row per tensor whose max relative error grew beyond `factor`."""
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 1):
        raise SpecError(
            f"factor {factor!r}: give a number >= 1 (how much a tensor's max relative "
            "error may grow before the gate fails)"
        )
    # Precision is compared when the gradients are right, at least to their own dtype: a wrong
    # sign or a crash is reported as such, not as a thousandfold loss of precision.
    right = all(f.diagnosis == "precision" for f in result.failures)
    now = {(t.layer, t.param): t for t in result.tensors}
    same_cases = {k: t.compared for k, t in now.items()} == {k: t["entries"] for k, t in baseline["tensors"].items()}
    if right and not same_cases:
        raise SpecError(
            f"this run's cases differ from those of the baseline {path} (did SUPPORTED_ACTIVATIONS, "
            "SUPPORTED_LOSSES or the network change?): pass --update to record a new baseline"
        )
    rows, compared = [], []
    for key, t in sorted(now.items()):
        base = baseline["tensors"].get(key)
        if base is None:
            continue
        limit = factor * max(base["max_rel"], FLOOR)
        ratio = t.max_rel / max(base["max_rel"], FLOOR) if math.isfinite(base["max_rel"]) else math.nan
        regressed = math.isfinite(base["max_rel"]) and not t.max_rel <= limit  # NaN regresses
        compared.append(
            {
                "layer": key[0],
                "param": key[1],
                "baseline_max_rel": base["max_rel"],
                "max_rel": t.max_rel,
                "baseline_max_abs": base["max_abs"],
                "max_abs": t.max_abs,
                "ratio": ratio,
                "regressed": regressed,
            }
        )
        if regressed and right:
            rows.append(_regression(t, base, ratio, limit, factor, result, baseline))
    failures = tuple(result.failures) + tuple(rows)
    gate = {
        "baseline": str(path),
        "factor": factor,
        "floor": FLOOR,
        "baseline_dtype": baseline.get("dtype"),
        "precision_compared": right,
        "tensors": compared,
        "regressions": len(rows),
    }
    return replace(
        result, failures=failures, verdict="fail" if failures else "pass", extra={**result.extra, "gate": gate}
    )


def _regression(t, base, ratio, limit, factor, result, baseline):
    floor = f" (a baseline below {FLOOR:.2g} counts as {FLOOR:.2g})" if base["max_rel"] < FLOOR else ""
    dtype = ""
    if baseline.get("dtype") and result.dtype != baseline.get("dtype"):
        dtype = f"; the gradients now come back as {result.dtype}, the baseline's as {baseline['dtype']}"
    return Failure(
        "precision_regression",
        f"max relative error {t.max_rel:.3g} over {result.examples} cases, {ratio:.3g} times the "
        f"baseline's {base['max_rel']:.3g}{floor}, more than the allowed {factor:g} times{dtype}: "
        "precision was lost (a float64 computation now done in float32?)",
        layer=t.layer,
        param=t.param,
        got=t.max_rel,
        expected=base["max_rel"],
        abs_error=t.max_abs,
        rel_error=t.max_rel,
        tolerance=limit,
    )


def _plain(v):
    """JSON-shaped: tuples to lists, numpy scalars to Python numbers."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else str(x)  # "inf" / "nan": strict JSON, and float() reads them back


def _flag(key, value):
    if value is None:
        return f"(no {_FLAGS[key]})"
    if key == "sizes":
        return f"--sizes {','.join(map(str, value))}"
    if key == "activations":
        return f"--activations {' '.join(value)}"
    return f"{_FLAGS[key]} {value}"
