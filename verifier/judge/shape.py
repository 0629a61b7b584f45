"""The first judgement of what an implementation returned: one (dW, db) pair per layer, float
arrays of the model's shapes. Anything else is a bad_output row before any value is compared,
except a bias gradient shaped (1, n) or (n, 1), as code that keeps b as a row or a column
returns it: read as (n,), and said in a note (DESIGN section 3)."""

from __future__ import annotations

import numpy as np

from ..records import Failure
from .rows import row

NOTE_KINDS = ("bias_shape", "clipped_log")  # rows that are notes: said in the report, never failures
FLOAT_KINDS: dict[str, type[np.floating]] = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


def narrowest(dtypes) -> str | None:
    """The least precise of these float dtype names (what a run is judged to), or None."""
    names = sorted(set(dtypes), key=lambda k: np.finfo(FLOAT_KINDS[k]).bits)
    return names[0] if names else None


def dtypes_of(grads) -> list[tuple[str, str]]:
    """[(dW's dtype name, db's), ...] of gradients `structure` accepted: what each tensor is
    judged to (Oracle.judgement_of)."""
    return [(dW.dtype.name, db.dtype.name) for dW, db in grads]


def mixed_note(tensors) -> str | None:
    """The words for a result whose tensors came back in more than one dtype, or None: each was
    judged to its own, so a float16 tensor loosened no other's tolerance."""
    kinds: dict[str, list[str]] = {}
    for t in tensors:
        if t.dtype:
            kinds.setdefault(t.dtype, []).append(f"layer {t.layer} {t.param}")
    if len(kinds) < 2:
        return None
    order = sorted(kinds, key=lambda k: np.finfo(FLOAT_KINDS[k]).bits)
    parts = "; ".join(f"{k}: {', '.join(kinds[k])}" for k in order)
    return (
        f"mixed precision: the gradients came back in {len(kinds)} dtypes ({parts}); each tensor "
        "was judged to its own dtype, as the loss value is"
    )


def structure(case, grads, layout=None) -> tuple[list, str] | Failure:
    """([(dW, db)] float arrays in the model's layout, dtype name) or a bad_output Failure."""
    sizes, L = case.spec.sizes, len(case.params)
    if len(grads) != L:
        return row("bad_output", f"expected {L} (dW, db) pairs, got {len(grads)}", case)
    out, kinds = [], []
    for l, (dW, db) in enumerate(grads, start=1):
        want = (sizes[l], sizes[l - 1])
        for name, a in (("W", dW), ("b", db)):
            if a.dtype.name not in FLOAT_KINDS:
                return row(
                    "bad_output",
                    f"layer {l} d{name}: dtype {a.dtype}, expected a float array",
                    case,
                    layer=l,
                    param=name,
                )
            kinds.append(a.dtype.name)
        if layout == "in_out":
            dW = dW.T
        if dW.shape != want:
            transposed = dW.shape == want[::-1]
            return row(
                "bad_output",
                f"layer {l} dW: shape {dW.shape}, expected {want} (W[l] is (n_l, n_{{l-1}}))",
                case,
                layer=l,
                param="W",
                diagnosis="transposed" if transposed else None,
            )
        if db.shape in ((1, sizes[l]), (sizes[l], 1)):
            db = db.reshape(sizes[l])
        if db.shape != (sizes[l],):
            return row(
                "bad_output", f"layer {l} db: shape {db.shape}, expected ({sizes[l]},)", case, layer=l, param="b"
            )
        out.append((dW, db))
    return out, min(kinds, key=lambda k: np.finfo(FLOAT_KINDS[k]).bits)


def bias_notes(case, grads) -> list[Failure]:
    """A bias_shape note for the first db returned as (1, n) or (n, 1) instead of (n,)."""
    for l, (_, db) in enumerate(grads, start=1):
        n, shape = case.spec.sizes[l], getattr(db, "shape", None)
        if shape != (n,) and shape in ((1, n), (n, 1)):
            return [row("bias_shape", f"bias gradients of shape {db.shape} (layer {l} db) are read as ({n},)", case)]
    return []
