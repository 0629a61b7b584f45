"""`backprop-verify merge DIR...`: one class from the JSON reports of its shards.

Each shard (`check ... --shard I/N --format json --output DIR`) leaves one JSON report per
submission and a manifest, `shard-I-of-N.json`, naming the submissions it held. Merging reads
them back into CheckResult records (DESIGN section 6 is the JSON; the pictures of the html
report, which the JSON leaves out, are not rebuilt) and checks that the class is whole: every
shard 1..N present, every submission a manifest names reported, none reported twice.
A file given instead of a directory is read the same way; the one document a class run writes
on standard output with --format json (its "reports") counts as a directory of reports.
"""

from __future__ import annotations

import json
import os

from ..errors import SpecError
from ..records import CheckResult, EntryError, Failure, TensorVerdict

__all__ = ["MANIFEST", "load_class", "manifest", "result_from_json"]

MANIFEST = "shard-{index}-of-{count}.json"
_FAILURE_FLOATS = ("got", "expected", "abs_error", "rel_error", "tolerance")


def manifest(index: int, count: int, impls) -> dict:
    """What a shard writes beside its reports, so that a merge can tell the class is whole."""
    return {"shard": {"index": index, "count": count}, "implementations": [str(i) for i in impls]}


def _float(x):
    return float(x) if isinstance(x, str) else x  # "inf" and "nan" were written as strings


def _entry(d) -> EntryError:
    return EntryError(
        index=tuple(d["index"]), **{k: float(d[k]) for k in ("got", "expected", "abs_error", "rel_error", "tolerance")}
    )


def _failure(d) -> Failure:
    known = {k: v for k, v in d.items() if k in Failure.__dataclass_fields__ and k not in ("heatmap", "step_curve")}
    known.update({k: _float(known[k]) for k in _FAILURE_FLOATS if known.get(k) is not None})
    if known.get("index") is not None:
        known["index"] = tuple(known["index"])
    known["worst"] = tuple(_entry(e) for e in d.get("worst") or ())
    return Failure(**known)


def result_from_json(d: dict) -> CheckResult:
    """A check's JSON report (DESIGN section 6, as to_json writes it) as a CheckResult again."""
    try:
        return CheckResult(
            verdict=d["verdict"],
            seed=d["seed"],
            examples=d["examples"],
            implementation=d["implementation"],
            references=tuple(d.get("references") or ()),
            failures=tuple(_failure(f) for f in d.get("failures") or ()),
            dtype=d.get("dtype"),
            tensors=tuple(
                TensorVerdict(**{**t, "max_abs": _float(t["max_abs"]), "max_rel": _float(t["max_rel"]), "worst": ()})
                for t in d.get("tensors") or ()
            ),
            mode=d.get("mode", "full"),
            seconds=float(d.get("seconds", 0.0)),
            extra=dict(d.get("extra") or {}),
            stopped=d.get("stopped"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"not a check report of this version ({type(exc).__name__}: {exc})") from None


def _documents(path: str):
    """(file, parsed JSON) of every .json file at `path` (a directory, or one file)."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".json"))
    elif os.path.isfile(path):
        files = [path]
    else:
        raise SpecError(f"merge {path}: no such directory or file; give the shards' --output directories")
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                yield f, json.load(fh)
        except (OSError, ValueError) as exc:
            raise SpecError(
                f"merge: {f} is not readable JSON ({exc}); was that shard run with --format json?"
            ) from None


def load_class(paths) -> list[CheckResult]:
    """Every submission's result from the shards at `paths`, sorted by name; SpecError when the
    class is not whole or a submission is there twice."""
    results: dict[str, CheckResult] = {}
    manifests: dict[int, dict] = {}
    counts = set()
    for path in paths:
        for f, doc in _documents(path):
            if isinstance(doc, dict) and "shard" in doc and "implementations" in doc:
                s = doc["shard"]
                counts.add(s["count"])
                manifests[s["index"]] = doc
            reports = (doc.get("reports") or []) if isinstance(doc, dict) and "reports" in doc else [doc]
            for d in reports:
                if not (isinstance(d, dict) and "verdict" in d and "implementation" in d):
                    continue  # a summary, or another tool's file
                try:
                    r = result_from_json(d)
                except SpecError as exc:
                    raise SpecError(f"merge: {f}: {exc}") from None
                if r.implementation in results:
                    raise SpecError(
                        f"merge: {r.implementation} is reported twice (again in {f}): give each shard's "
                        "directory once, and shards of one split only"
                    )
                results[r.implementation] = r
    _whole(manifests, counts, results)
    if not results and not manifests:
        raise SpecError("merge: no check reports found; run the shards with --format json --output DIR")
    return [results[k] for k in sorted(results)]


def _whole(manifests, counts, results) -> None:
    if not counts:
        return
    if len(counts) > 1:
        raise SpecError(f"merge: shards of different splits ({', '.join(f'/{c}' for c in sorted(counts))})")
    count = counts.pop()
    missing = [i for i in range(1, count + 1) if i not in manifests]
    if missing:
        raise SpecError(
            f"merge: shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: give every shard's directory"
        )
    named = [i for m in manifests.values() for i in m["implementations"]]
    lost = sorted(set(named) - set(results))
    if lost:
        raise SpecError(f"merge: no report for {', '.join(lost)} (named by a shard's manifest): rerun that shard")
