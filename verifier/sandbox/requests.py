"""The sandbox's requests beyond "call" (the child's half is child_layers.py): one call of a
layer of a layers file (DESIGN 3a), and batched evaluations of a user's function at points
the parent chose, for self mode (DESIGN 3). The child only evaluates; nothing here judges.

    out = layer_call(box, case)                       # a LayerOutcome
    ev = evaluate(box, target, base, directions, points)  # an Evaluations, or a CallOutcome

A point is (argument index, direction index or -1, flat entry or -1, t): the function at
base[arg] + t * directions[d] (or + t at one entry); t may be complex (complex step).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..records import CallOutcome, LayerCase, LayerOutcome
from .protocol import as_text, call_fields

CHUNK = 1024  # points per request at most: one request stays within the per-call timeout


class Evaluations(NamedTuple):
    values: np.ndarray  # (points, outputs): NaN where the function raised
    failed: int  # points where the function raised
    detail: str  # the first such exception
    seconds: float  # round trips, all chunks


def _cap(arrays) -> int:
    return 64 * 2**20 + 16 * sum(a.nbytes for a in arrays)


def layer_call(box, case: LayerCase) -> LayerOutcome:
    """Run one layer call of `case` in the sandbox `box` and say what it came to."""
    arrays = [np.ascontiguousarray(a) for _, a in case.args]
    if case.kind == "pair":
        arrays.append(np.ascontiguousarray(case.dout_pool, dtype=np.float64))
    fields = {
        "op": "layer",
        "name": case.name,
        "kind": case.kind,
        "arg_names": [n for n, _ in case.args],
        "kwargs": case.kwargs,
    }
    reply = box.request(fields, arrays, _cap(arrays), ("ok", "exception", "exited", "bad_output", "mutated_input"))
    if isinstance(reply, CallOutcome):
        return LayerOutcome(reply.kind, reply.detail, output=reply.output, seconds=reply.seconds)
    header, out = reply
    detail, seconds, loss, mutated = call_fields(header, 0.0)
    kind = header["kind"]
    want = (1 + len(case.args)) if case.kind == "pair" else 1
    if kind in ("ok", "mutated_input") and len(out) != want:
        return LayerOutcome("bad_output", "malformed reply from the sandbox process (wrong number of arrays)")
    if case.kind == "pair" and kind in ("ok", "mutated_input"):
        return LayerOutcome(kind, detail, out=out[0], grads=tuple(out[1:]), mutated=mutated, seconds=seconds)
    return LayerOutcome(kind, detail, grads=tuple(out), loss=loss, mutated=mutated, seconds=seconds)


def evaluate(box, target: dict[str, Any], base, directions, points, per_call: float = 0.0) -> Evaluations | CallOutcome:
    """The user's function (`target`: {"kind": "layer", "name", "kwargs"} or {"kind": "loss",
    "nlayers", "spec"}) at every point, in as few round trips as the timeout allows."""
    base = [np.ascontiguousarray(a) for a in base]
    directions = [np.ascontiguousarray(d) for d in directions]
    chunk = CHUNK if per_call <= 0 else int(max(1, min(CHUNK, box.timeout / (4 * per_call))))
    rows, failed, detail, seconds = [], 0, "", 0.0
    for start in range(0, len(points), chunk):
        part = [
            [int(a), int(d), int(f), float(np.real(t)), float(np.imag(t))]
            for a, d, f, t in points[start : start + chunk]
        ]
        fields = {"op": "points", "target": target, "nbase": len(base), "points": part}
        arrays = base + directions
        reply = box.request(fields, arrays, _cap(arrays) + 16 * len(part) * (1 + _width(base)), ("ok", "exception"))
        if isinstance(reply, CallOutcome):
            return reply
        header, out = reply
        if header["kind"] != "ok" or len(out) != 1 or out[0].shape[0] != len(part):
            return CallOutcome("exception", as_text(header.get("detail")) or "malformed reply from the sandbox process")
        n = header.get("failed")
        failed += n if isinstance(n, int) and n >= 0 else 0
        detail = detail or as_text(header.get("detail"))
        rows.append(out[0])
        s = header.get("seconds")
        seconds += float(s) if isinstance(s, (int, float)) else 0.0
    width = max((r.shape[1] for r in rows), default=1)
    if any(r.shape[1] != width for r in rows):
        return CallOutcome("bad_output", "the function's output changed size from one point to another")
    values = np.concatenate(rows) if rows else np.zeros((0, width))
    return Evaluations(values, failed, detail, seconds)


def _width(base) -> int:
    return 4 * sum(int(a.size) for a in base) + 16
