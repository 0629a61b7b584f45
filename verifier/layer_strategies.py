"""Hypothesis strategies for the layers of a layers file (DESIGN 3a), public like the network
ones (verifier/strategies.py), so a course can use them in its own tests:

    from verifier.layer_strategies import layer_cases

    @given(layer_cases("affine"))
    def test_affine(case):
        x, w, b = (a for _, a in case.args)
        ...

A drawn LayerCase holds the inputs (x first, then each parameter in the forward's order; for
a loss layer x and integer labels y), keyword arguments, and a pool of upstream-gradient values
(dout is its first out.size values in the output's shape, whatever shape the forward returns).
Regimes of the inputs: ``integers`` (small integers: relu kinks and svm margins land exactly
on 0), ``normal`` (Gaussian), ``saturated`` (|x| near 30: sigmoid and tanh flat). Regimes of
dout: ``normal``, ``zeros`` (every gradient must then be 0), ``large`` (1e6) and ``tiny``
(1e-6), where a missing or extra factor cannot hide in the rounding. Batch sizes from 1.

Known names (affine, each hidden activation, softmax_loss, svm_loss) have their shapes here;
any other name needs a declaration, the value of `LAYERS[name]` in the layers file, e.g.
`{"x": "N,D", "gamma": "D", "beta": "D", "kwargs": {"eps": 1e-5}}`: each shape a comma list
of symbols (N is the batch) or integers, in the forward's argument order; `"out"` may give
the output's shape when it is larger than the inputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

from reference_impls import layers as ref
from reference_impls import model

from .errors import SpecError
from .records import LayerCase

__all__ = ["layer_cases", "parse_declaration", "KNOWN_PAIRS", "KNOWN_LOSSES", "REGIMES", "DOUT_REGIMES"]

KNOWN_PAIRS = tuple(ref.PAIRS)
KNOWN_LOSSES = tuple(ref.LOSSES)
REGIMES = ("integers", "normal", "saturated")
DOUT_REGIMES = ("normal", "zeros", "large", "tiny")
DOUT_SCALE = {"normal": 1.0, "zeros": 0.0, "large": 1e6, "tiny": 1e-6}
MAX_DIM = 6
_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_declaration(name: str, decl: Any) -> tuple[list[tuple[str, tuple]], dict[str, Any], tuple | None]:
    """([(argument, shape symbols)], kwargs, out shape or None) of a LAYERS declaration;
    SpecError with the fix for anything else."""
    example = '{"x": "N,D", "gamma": "D", "beta": "D", "kwargs": {"eps": 1e-5}}'
    if not isinstance(decl, Mapping) or "x" not in decl:
        raise SpecError(f"LAYERS[{name!r}] must be a dict of argument shapes starting with x, such as {example}")
    kwargs = decl.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise SpecError(f"LAYERS[{name!r}]['kwargs'] must be a dict of keyword arguments, such as {{'eps': 1e-5}}")
    shapes, out = [], None
    for arg, text in decl.items():
        if arg == "kwargs":
            continue
        dims = _dims(name, arg, text)
        if arg == "out":
            out = dims
        else:
            shapes.append((str(arg), dims))
    if shapes[0][0] != "x":
        raise SpecError(f"LAYERS[{name!r}]: x must come first, then the parameters in the forward's order")
    return shapes, dict(kwargs), out


def _dims(name, arg, text) -> tuple:
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f'LAYERS[{name!r}][{arg!r}] must be a shape such as "N,D" (N is the batch), got {text!r}')
    dims: list[int | str] = []
    for part in text.replace(" ", "").split(","):
        if part.isdigit() and int(part) >= 1:
            dims.append(int(part))
        elif _SYMBOL.match(part):
            dims.append(part)
        else:
            raise SpecError(f"LAYERS[{name!r}][{arg!r}] = {text!r}: each dimension is a symbol or an integer >= 1")
    return tuple(dims)


def _known_shapes(name: str) -> list[tuple[str, tuple]]:
    if name == "affine":
        return [("x", ("N", "D")), ("w", ("D", "M")), ("b", ("M",))]
    if name in model.HIDDEN_ACTIVATIONS:
        return [("x", ("N", "D"))]
    return [("x", ("N", "C")), ("y", ("N",))]


def _values(rng, shape, regime):
    if regime == "integers":
        return rng.integers(-2, 3, shape).astype(float)
    x = rng.normal(size=shape)
    return x + 30 * np.sign(x) if regime == "saturated" else x


def layer_case_from_draw(
    name: str, kind: str, shapes, kwargs, out, sizes: dict, regime: str, dout_regime: str, seed: int
) -> LayerCase:
    """The LayerCase a draw stands for (every value from a numpy generator seeded by `seed`)."""
    rng = np.random.default_rng(seed)
    concrete = [(arg, tuple(d if isinstance(d, int) else sizes[d] for d in dims)) for arg, dims in shapes]
    args = []
    for arg, shape in concrete:
        if kind == "loss" and arg == "y":
            args.append((arg, rng.integers(0, sizes["C"], shape)))
        else:
            args.append((arg, _values(rng, shape, "normal" if kind == "loss" and regime == "saturated" else regime)))
    pool = None
    if kind == "pair":
        if out is not None:
            need = int(np.prod([d if isinstance(d, int) else sizes[d] for d in out]))
        elif name == "affine":
            need = sizes["N"] * sizes["M"]
        else:
            need = 4 * sum(int(np.prod(s)) for _, s in concrete) + 16
        base = rng.integers(-2, 3, need).astype(float) if dout_regime == "normal" and regime == "integers" else None
        pool = (base if base is not None else rng.normal(size=need)) * DOUT_SCALE[dout_regime]
    return LayerCase(name, kind, tuple(args), dict(kwargs), pool, regime, dout_regime)


@st.composite
def layer_cases(
    draw,
    name: str,
    *,
    declaration: Any = None,
    loss: bool | None = None,
    batch: int | None = None,
    max_batch: int = 5,
    regimes=REGIMES,
    dout_regimes=DOUT_REGIMES,
) -> LayerCase:
    """LayerCases for layer `name`: a known name's shapes, or `declaration` (a LAYERS entry).
    `loss` says it is a NAME_loss(x, y) layer (default: the name ends in "_loss")."""
    is_loss = name.endswith("_loss") if loss is None else bool(loss)
    if batch is not None and int(batch) < 1:
        raise SpecError(f"batch {batch}: give a batch size >= 1")
    if declaration is not None:
        shapes, kwargs, out = parse_declaration(name, declaration)
    elif name in KNOWN_PAIRS or name in KNOWN_LOSSES:
        shapes, kwargs, out = _known_shapes(name), {}, None
    else:
        raise SpecError(
            f"layer {name!r} is not a known layer ({', '.join(KNOWN_PAIRS + KNOWN_LOSSES)}): declare its "
            f'shapes in LAYERS, e.g. LAYERS = {{"{name}": {{"x": "N,D", "gamma": "D", "beta": "D"}}}}'
        )
    symbols = dict.fromkeys(d for _, dims in shapes for d in dims if isinstance(d, str))
    if out is not None:
        symbols.update(dict.fromkeys(d for d in out if isinstance(d, str)))
    sizes = {}
    for s in symbols:
        if s == "N":
            sizes[s] = int(batch) if batch is not None else draw(st.integers(1, max_batch))
        else:
            sizes[s] = draw(st.integers(2 if s == "C" else 1, MAX_DIM))
    regime = draw(st.sampled_from(tuple(regimes)))
    dout_regime = draw(st.sampled_from(tuple(dout_regimes))) if not is_loss else "normal"
    seed = draw(st.integers(0, 2**32 - 1))
    return layer_case_from_draw(
        name, "loss" if is_loss else "pair", shapes, kwargs, out, sizes, regime, dout_regime, seed
    )
