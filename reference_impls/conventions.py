"""Loss conventions (DESIGN section 2a): one formula with a few choices, so that any loss a
real implementation computes can be named instead of approximated.

    J = factor * R_batch_n( R_outputs_k( l(y_nk, t_nk) ) )  +  l2 * c * (sum_l ||W[l]||^2 [+ ||b[l]||^2]) [/ B]

    l = (y - t)^2 (squared), -[t log y + (1 - t) log(1 - y)] (bce), -t log y (ce)
    R = sum or mean;  c = l2_factor (1 or 1/2);  [/ B] when l2_over_batch is "mean"

Both reductions are linear, so the data term is `scale` times the plain sum of l over every
entry, with scale = factor / (n_L if over_outputs is mean) / (B if over_batch is mean); the
penalty is `l2_coef` times a plain sum of squares. Every reference computes these two sums
its own way and multiplies by these two numbers.

A loss is written as a preset name (`mse`), a kind followed by its choices
(`squared,factor=0.5,over_batch=mean`) or a mapping of the same keys; `parse` accepts all
three and `name` gives the one canonical spelling (the preset name when it is a preset), which
is what a NetworkSpec carries. Pure Python: no numpy, nothing of the harness.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache

__all__ = ["Convention", "PRESETS", "KINDS", "parse", "name", "as_dict", "scale", "l2_coef", "describe"]

KINDS = ("squared", "bce", "ce")
REDUCTIONS = ("sum", "mean")
L2_OVER_BATCH = ("none", "mean")
L2_FACTORS = (1.0, 0.5)


@dataclass(frozen=True)
class Convention:
    """The choices of DESIGN section 2a; defaults are the plain sum with no penalty."""

    kind: str
    factor: float = 1.0
    over_outputs: str = "sum"
    over_batch: str = "sum"
    l2: float = 0.0
    l2_factor: float = 1.0
    l2_over_batch: str = "none"
    l2_bias: bool = False


PRESETS = {
    "sse": Convention("squared"),
    "half_sse": Convention("squared", factor=0.5),
    "mse": Convention("squared", over_outputs="mean", over_batch="mean"),
    "bce": Convention("bce", over_outputs="mean", over_batch="mean"),
    "softmax_ce": Convention("ce", over_outputs="sum", over_batch="mean"),
}
KEYS = tuple(f.name for f in fields(Convention))
EXAMPLE = "squared,factor=0.5,over_outputs=mean,over_batch=mean,l2=1e-4,l2_factor=0.5,l2_over_batch=mean"


def _bad(msg: str) -> ValueError:
    return ValueError(
        f"{msg}; choose from the presets {', '.join(PRESETS)}, or a kind ({', '.join(KINDS)}) and its choices, "
        f"e.g. {EXAMPLE}"
    )


def _number(key, value, low, strict):
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise _bad(f"loss {key}={value!r}: give a number") from None
    if isinstance(value, bool) or x != x or x in (float("inf"), float("-inf")) or x < low or (strict and x == low):
        raise _bad(f"loss {key}={value!r}: give a finite number {'>' if strict else '>='} {low:g}")
    return x


def _choice(key, value, allowed):
    if value not in allowed:
        raise _bad(f"loss {key}={value!r}: choose from {', '.join(map(str, allowed))}")
    return value


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise _bad(f"loss l2_bias={value!r}: give true or false")


def _validated(d: Mapping) -> Convention:
    unknown = [k for k in d if k not in KEYS]
    if unknown:
        raise _bad(f"unknown loss key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    if "kind" not in d:
        raise _bad("a loss mapping needs a kind")
    kind = _choice("kind", d["kind"], KINDS)
    factor = _number("l2_factor", d.get("l2_factor", 1.0), 0.0, True)
    if factor not in L2_FACTORS:
        raise _bad(f"loss l2_factor={d['l2_factor']!r}: give 1 (lambda sum W^2) or 0.5 (lambda/2 sum W^2)")
    return Convention(
        kind=kind,
        factor=_number("factor", d.get("factor", 1.0), 0.0, True),
        over_outputs=_choice("over_outputs", d.get("over_outputs", "sum"), REDUCTIONS),
        over_batch=_choice("over_batch", d.get("over_batch", "sum"), REDUCTIONS),
        l2=_number("l2", d.get("l2", 0.0), 0.0, False),
        l2_factor=factor,
        l2_over_batch=_choice("l2_over_batch", d.get("l2_over_batch", "none"), L2_OVER_BATCH),
        l2_bias=_bool(d.get("l2_bias", False)),
    )


def _from_text(text: str) -> Convention:
    text = text.strip()
    if text in PRESETS:
        return PRESETS[text]
    head, *rest = [p.strip() for p in text.split(",")]
    d: dict = {}
    if head in PRESETS:  # a preset with more choices: mse,l2=1e-3
        d = asdict(PRESETS[head])
    elif head in KINDS:
        d["kind"] = head
    else:
        raise _bad(f"unknown loss {head!r}")
    for part in rest:
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise _bad(f"loss choice {part!r}: write key=value")
        d[key.strip()] = value.strip()
    return _validated(d)


@lru_cache(maxsize=256)
def _parse_text(text: str) -> Convention:
    return _from_text(text)


def parse(loss) -> Convention:
    """A Convention from a preset name, a `kind,key=value,...` string, a mapping or a
    Convention; ValueError saying the fix otherwise."""
    if isinstance(loss, Convention):
        return _validated(asdict(loss))
    if isinstance(loss, str):
        return _parse_text(loss)
    if isinstance(loss, Mapping):
        return _validated(dict(loss))
    raise _bad(f"loss {loss!r}: give a name, a string or a mapping, not {type(loss).__name__}")


def _number_text(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def name(loss) -> str:
    """The canonical spelling: the preset's name, else the kind and every choice that differs
    from what `parse` starts the kind from (the defaults; for bce, the preset bce), in the
    order of KEYS, so equal conventions have equal names and `parse(name(c)) == c`."""
    conv = parse(loss)
    for preset, c in PRESETS.items():
        if c == conv:
            return preset
    parts, default = [conv.kind], PRESETS.get(conv.kind, Convention(conv.kind))  # what `parse` starts from
    for key in KEYS[1:]:
        value = getattr(conv, key)
        if value != getattr(default, key):
            text = _number_text(value) if isinstance(value, float) else str(value).lower()
            parts.append(f"{key}={text}")
    return ",".join(parts)


def as_dict(loss) -> dict:
    """Every key of the convention, as plain data."""
    return asdict(parse(loss))


def preset(loss) -> str | None:
    """The preset's name when the convention is one, else None."""
    n = name(loss)
    return n if n in PRESETS else None


def scale(conv: Convention, batch: int, n_out: int) -> float:
    """The data term's multiplier of sum_n sum_k l(y_nk, t_nk)."""
    return conv.factor / (n_out if conv.over_outputs == "mean" else 1) / (batch if conv.over_batch == "mean" else 1)


def l2_coef(conv: Convention, batch: int) -> float:
    """The penalty's multiplier of sum ||W||^2 (+ ||b||^2): l2 * l2_factor [/ B]."""
    return conv.l2 * conv.l2_factor / (batch if conv.l2_over_batch == "mean" else 1)


def without_l2(conv: Convention) -> Convention:
    """The same data term with no penalty."""
    return replace(conv, l2=0.0, l2_factor=1.0, l2_over_batch="none", l2_bias=False)


def describe(loss) -> str:
    """The formula in words, for reports: '0.5 * mean_n sum_k (y - t)^2 + 1e-4/2 sum W^2 / B'."""
    conv = parse(loss)
    term = {"squared": "(y - t)^2", "bce": "bce(y, t)", "ce": "-t log y"}[conv.kind]
    head = "" if conv.factor == 1 else f"{conv.factor:g} * "
    text = f"{head}{conv.over_batch}_n {conv.over_outputs}_k {term}"
    if conv.l2:
        c = "" if conv.l2_factor == 1 else "/2"
        what = "(W^2 + b^2)" if conv.l2_bias else "W^2"
        text += f" + {conv.l2:g}{c} sum {what}{' / B' if conv.l2_over_batch == 'mean' else ''}"
    return text
