"""Points: a rubric (`--points FILE`, TOML or JSON) applied to a check's result, for graders.

A rubric names what earns points; every key is optional (TOML shown; JSON has the same shape):

    loss = 10                 # the loss value returned beside the gradients, right on every case
    train_step = 20           # train_step(params, X, T, spec, lr) steps W - lr dJ/dW on every case
    [gradients]
    points = 60               # split evenly over the layers judged (`gradients = 60` alone says the same)
    [gradients.layers]        # instead of (or beside) the even split: a layer its own points
    1 = 30
    [misbehaviour]            # kept when no row of that kind appears (exception, timeout, ...)
    exception = 5
    mutated_input = 5
    [layers]                  # layer files (DESIGN 3a): points per forward/backward pair
    affine = 10

Each layer's points are half for its dW, half for its db.
Partial credit follows what passed: a layer's dW and db earn their halves apart, each when it
was judged on at least one case and no entry of it was ever wrong; an item never judged (a loss
the code does not return, a layer no case had) earns nothing and says why. A run the harness
could not finish (verdict "error") earns nothing: the graders' formats report it as ungradable.

`grade(result, rubric)` returns plain data (JSON-safe, so a shard's JSON report carries it and
`merge` renders it again): {"score", "max_score", "items": [...]}, each item with name, number,
score, max_score, status ("passed" only at full marks), note, tags and the indices of the
result's failure rows that belong to it. The graders' report modules lay these out.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace

from ..errors import SpecError
from ..records import CheckResult

__all__ = ["AUDIENCES", "MISBEHAVIOUR", "DEFAULT_RUBRIC", "grade", "load_rubric", "parse_rubric", "with_grading"]

AUDIENCES = ("instructor", "student")
MISBEHAVIOUR = ("exception", "timeout", "exited", "bad_output", "nonfinite", "mutated_input")
KEYS = ("gradients", "loss", "train_step", "misbehaviour", "layers")
DEFAULT_RUBRIC = {"gradients": {"points": 10.0, "layers": {}}, "loss": None, "train_step": None}


def _points(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SpecError(f"rubric: {where} = {value!r}; give a number of points >= 0, e.g. {where} = 10")
    return float(value)


def _table(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(f"rubric: {where} must be a table of name = points, e.g. [{where}] followed by lines")
    return value


def parse_rubric(data) -> dict:
    """A rubric from its parsed TOML or JSON, checked: unknown keys, kinds and bad numbers are
    SpecErrors that say the fix. Returns the canonical form grade() reads."""
    data = _table(data, "the rubric")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise SpecError(f"rubric: unknown key(s) {', '.join(unknown)}; use {', '.join(KEYS)}")
    grads = data.get("gradients", {})
    if not isinstance(grads, dict):
        grads = {"points": grads}
    extra = sorted(set(grads) - {"points", "layers"})
    if extra:
        raise SpecError(f"rubric: gradients has {', '.join(extra)}; use gradients.points or [gradients.layers]")
    layers = {}
    for k, v in _table(grads.get("layers", {}), "gradients.layers").items():
        if not str(k).isdigit() or int(k) < 1:
            raise SpecError(f"rubric: gradients.layers key {k!r}; layers are numbered 1, 2, ... from the input")
        layers[int(k)] = _points(v, f"gradients.layers.{k}")
    mis = _table(data.get("misbehaviour", {}), "misbehaviour")
    bad = sorted(set(mis) - set(MISBEHAVIOUR))
    if bad:
        raise SpecError(f"rubric: misbehaviour kind(s) {', '.join(bad)}; use {', '.join(MISBEHAVIOUR)}")
    return {
        "gradients": {
            "points": _points(grads["points"], "gradients.points") if "points" in grads else None,
            "layers": layers,
        },
        "loss": _points(data["loss"], "loss") if "loss" in data else None,
        "train_step": _points(data["train_step"], "train_step") if "train_step" in data else None,
        "misbehaviour": {k: _points(v, f"misbehaviour.{k}") for k, v in mis.items()},
        "layers": {str(k): _points(v, f"layers.{k}") for k, v in _table(data.get("layers", {}), "layers").items()},
    }


def _toml():
    try:
        import tomllib

        return tomllib
    except ImportError:  # Python 3.10: tomli, the same parser, is a dependency there
        try:
            import tomli

            return tomli
        except ImportError:
            raise SpecError("a TOML rubric needs Python 3.11 or the tomli package; or write it as JSON") from None


def load_rubric(path: str) -> dict:
    """The rubric in `path`: TOML (.toml, read with tomllib) or JSON (anything else)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise SpecError(f"--points {path}: cannot read it ({exc.strerror}); give a TOML or JSON rubric") from None
    try:
        if os.path.splitext(path)[1].lower() == ".toml":
            data = _toml().loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise SpecError(f"--points {path}: not a valid rubric file: {exc}") from None
    return parse_rubric(data)


def _item(name, tags, max_score, score, note, failures=()):
    score = round(min(score, max_score), 6)
    return {
        "name": name,
        "score": score,
        "max_score": max_score,
        "status": "passed" if score >= max_score else "failed",
        "note": note,
        "tags": list(tags),
        "failures": list(failures),
    }


def _tensor_share(t, param, share):
    """(points, words) of one tensor (a layer's dW or db) over every case it was judged on."""
    if t is None or t.compared == 0:
        return 0.0, f"d{param} never judged"
    if t.failed:
        return 0.0, f"d{t.param} wrong on {t.failed} of {t.compared} entries judged (max rel err {t.max_rel:.3g})"
    return share, f"d{t.param} right on all {t.compared} entries judged"


def _gradient_items(r: CheckResult, rubric) -> list[dict]:
    tensors = {(t.layer, t.param): t for t in r.tensors}
    seen = sorted({layer for layer, _ in tensors})
    points = dict(rubric["gradients"]["layers"])
    even = rubric["gradients"]["points"]
    rest = [layer for layer in seen if layer not in points]
    if even is not None and rest:
        points.update({layer: even / len(rest) for layer in rest})
    elif even is not None and not seen and not points:  # nothing judged: the whole share is lost
        return [_item("gradients", ["gradients"], even, 0.0, "no layer's gradients were judged")]
    items = []
    for layer in sorted(points):
        mine = [i for i, f in enumerate(r.failures) if f.layer == layer]
        if layer not in seen:
            note = f"not judged: no case had a layer {layer} that was compared"
            items.append(_item(f"layer {layer} gradients", ["gradients", f"layer {layer}"], points[layer], 0.0, note))
            continue
        half = points[layer] / 2
        w, w_note = _tensor_share(tensors.get((layer, "W")), "W", half)
        b, b_note = _tensor_share(tensors.get((layer, "b")), "b", half)
        name = f"layer {layer} gradients (dW, db)"
        items.append(_item(name, ["gradients", f"layer {layer}"], points[layer], w + b, f"{w_note}; {b_note}", mine))
    return items


def _judged_item(r, key, points, kinds, what, prefix=None):
    """The loss value or train_step: full points when judged and never wrong."""
    judged = (r.extra.get("judged") or {}).get(key, 0)
    rows = [
        i
        for i, f in enumerate(r.failures)
        if f.kind in kinds or (prefix and f.detail.startswith(prefix) and f.layer is None)
    ]
    if not judged:
        return _item(what, [key], points, 0.0, f"not judged: {NOT_JUDGED[key]}", rows)
    if rows:
        return _item(what, [key], points, 0.0, f"wrong on some of the {judged} cases judged", rows)
    return _item(what, [key], points, points, f"right on all {judged} cases judged")


NOT_JUDGED = {
    "loss": "gradients() returned no loss value; return (loss, grads) to have it checked",
    "train_step": "the file defines no train_step(params, X, T, spec, lr)",
}


def _misbehaviour_items(r, rubric) -> list[dict]:
    items = []
    for kind, points in rubric["misbehaviour"].items():
        rows = [i for i, f in enumerate(r.failures) if f.kind == kind]
        note = f"{len(rows)} row(s) of kind {kind}" if rows else f"no {kind} on {r.examples} cases"
        earned = points if not rows and r.examples else 0.0
        items.append(_item(f"no {kind.replace('_', ' ')}", ["misbehaviour", kind], points, earned, note, rows))
    return items


def _layer_pair_items(r, rubric) -> list[dict]:
    """Points per layer of a layers file (DESIGN 3a): a `NAME_forward`/`NAME_backward` pair or
    a `NAME_loss`. run/layers.py leaves, per layer, {"judged": cases, "failed": cases} in
    result.extra["layer_pairs"], and its failure rows name the layer (`layer_name`); a layer
    the rubric names that was never judged earns nothing and says so."""
    pairs = r.extra.get("layer_pairs") or {}
    items = []
    for name, points in rubric["layers"].items():
        got = pairs.get(name) or {}
        rows = [i for i, f in enumerate(r.failures) if name in (f.layer_name, f.subject)]
        if not got.get("judged"):
            items.append(_item(f"layer {name}", ["layers", name], points, 0.0, f"not judged: no pair {name}", rows))
            continue
        ok = not got.get("failed") and not rows
        note = f"right on all {got['judged']} cases" if ok else f"wrong on {got.get('failed') or len(rows)} case(s)"
        items.append(_item(f"layer {name}", ["layers", name], points, points if ok else 0.0, note, rows))
    return items


def grade(r: CheckResult, rubric=None) -> dict:
    """The points of `r` under `rubric` (parse_rubric's form; None: DEFAULT_RUBRIC, which adds
    a loss and a train_step item of 1 point each only when the code has them)."""
    if rubric is None:
        judged = r.extra.get("judged") or {}
        rubric = {
            **DEFAULT_RUBRIC,
            "loss": 1.0 if judged.get("loss") else None,
            "train_step": 1.0 if judged.get("train_step") else None,
            "misbehaviour": {},
            "layers": {},
        }
    items = _gradient_items(r, rubric)
    if rubric["loss"] is not None:
        items.append(_judged_item(r, "loss", rubric["loss"], ("loss_mismatch",), "loss value"))
    if rubric["train_step"] is not None:
        items.append(
            _judged_item(r, "train_step", rubric["train_step"], ("update_mismatch",), "train_step", "train_step")
        )
    items += _misbehaviour_items(r, rubric) + _layer_pair_items(r, rubric)
    if r.verdict == "error":  # ungradable: nothing earned, whatever was judged before it stopped
        items = [{**it, "score": 0.0, "status": "failed"} for it in items]
    for n, it in enumerate(items, 1):
        it["number"] = str(n)
    return {
        "score": round(sum(it["score"] for it in items), 6),
        "max_score": round(sum(it["max_score"] for it in items), 6),
        "items": items,
    }


def with_grading(r: CheckResult, rubric=None, audience: str = "instructor") -> CheckResult:
    """`r` with its points and the audience of its reports in extra["grading"]."""
    if audience not in AUDIENCES:
        raise SpecError(f"audience {audience!r}: use one of {', '.join(AUDIENCES)}")
    grading = {**grade(r, rubric), "audience": audience}
    return replace(r, extra={**r.extra, "grading": grading})
