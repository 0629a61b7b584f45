"""The sandbox child's layer calls and batched evaluations (DESIGN 3 and 3a).

Loaded by path by `verifier/sandbox/child.py`, before any user code; standard library and
numpy only. Two requests:

  "layer"   one call of a layer: NAME_forward(x, *params, **kwargs) -> (out, cache), then
            NAME_backward(dout, cache) -> (dx, *dparams) with dout the first out.size values
            of the pool sent; or NAME_loss(x, y) -> (loss, dx). The user gets writeable copies,
            and any change to them (x, a parameter, dout, and so the cache's inputs) is
            reported as "mutated_input" with the grads still returned.
  "points"  many evaluations of one function at points the parent chose: base arrays plus
            `t` times a direction (a dense array sent) or times a basis vector (one entry),
            t real or complex. The function is a layer's forward (each output comes back) or
            the network's loss(params, X, T, spec) (each value comes back). The child only
            evaluates; the parent alone judges.
"""

import time

import numpy as np

_perf_counter = time.perf_counter
_asarray = np.asarray
_frombuffer = np.frombuffer
values = None  # child_values, bound by child.py


def bind(child_values):
    global values
    values = child_values


def describe(module):
    """The layer names a module defines, its LAYERS declarations, and whether it has loss()."""
    names = [n for n in dir(module) if not n.startswith("_")]
    pairs = sorted(
        n[: -len("_forward")]
        for n in names
        if n.endswith("_forward") and len(n) > 8 and callable(getattr(module, n, None))
        if callable(getattr(module, n[: -len("_forward")] + "_backward", None))
    )
    losses = sorted(n for n in names if n.endswith("_loss") and len(n) > 5 and callable(getattr(module, n, None)))
    return {
        "layers": pairs,
        "layer_losses": losses,
        "LAYERS": _plain(getattr(module, "LAYERS", None), 0),
        "has_loss": callable(getattr(module, "loss", None)),
    }


def _plain(x, depth):
    """A JSON-able copy of a declaration (str keys; str, numbers, bools, lists, dicts)."""
    if depth > 6:
        return None
    if isinstance(x, dict):
        return {str(k): _plain(v, depth + 1) for k, v in list(x.items())[:200]}
    if isinstance(x, (list, tuple)):
        return [_plain(v, depth + 1) for v in list(x)[:200]]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, (int, float)):
        return x
    try:
        return float(x)
    except BaseException:
        return str(type(x).__name__)


def _arrays(raw):
    """Writeable copies of the received arrays."""
    return [_frombuffer(buf, dtype=dtype).reshape(shape).copy() for buf, dtype, shape in raw]


def _changed(arr, snap):
    try:
        return arr.shape != snap.shape or arr.dtype != snap.dtype or not np.array_equal(arr, snap, equal_nan=True)
    except BaseException:
        return True


def _grad_arrays(result, count, what):
    items = list(result) if isinstance(result, (tuple, list)) else [result]
    if len(items) != count:
        raise values.BadOutput(f"{what} returned {len(items)} value(s); expected {count} (dx, then each parameter's)")
    return [values.to_array(g, f"{what} value {i + 1}") for i, g in enumerate(items)]


def layer(module, header, raw):
    """(reply, arrays) of one "layer" request."""
    name, kind = header["name"], header["kind"]
    reply = {"kind": "ok", "detail": "", "loss": None, "mutated": [], "seconds": 0.0}
    inputs = _arrays(raw)
    arg_names = list(header["arg_names"])
    if kind == "pair":
        pool = inputs.pop()
        fns = [getattr(module, f"{name}_forward", None), getattr(module, f"{name}_backward", None)]
    else:
        pool, fns = None, [getattr(module, name, None)]
    if not all(callable(f) for f in fns):
        reply.update(kind="exception", detail=f"the implementation defines no {name} layer functions")
        return reply, []
    snaps = [a.copy() for a in inputs]
    stage = fns[0].__name__ if hasattr(fns[0], "__name__") else name
    out_arrays = []
    try:
        t0 = _perf_counter()
        if kind == "pair":
            stage = f"{name}_forward"
            result = fns[0](*inputs, **header.get("kwargs", {}))
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise values.BadOutput(f"{name}_forward must return (out, cache), got {values.type_name(result)}")
            out = values.to_array(result[0], f"{name}_forward's out")
            if out.size > pool.size:
                raise values.BadOutput(
                    f"{name}_forward's out has {out.size} entries, more than expected: declare its shape "
                    f'as "out" in LAYERS["{name}"]'
                )
            dout = pool[: out.size].reshape(out.shape).copy()
            dout_snap = dout.copy()
            stage = f"{name}_backward"
            grads = _grad_arrays(fns[1](dout, result[1]), len(inputs), f"{name}_backward")
            reply["seconds"] = _perf_counter() - t0
            if _changed(dout, dout_snap):
                reply["mutated"].append("dout")
            out_arrays = [out.copy(), *grads]
        else:
            stage = name
            result = fns[0](*inputs)
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise values.BadOutput(f"{name} must return (loss, dx), got {values.type_name(result)}")
            loss = _asarray(result[0])
            if loss.size != 1 or loss.dtype.kind not in "biuf":
                raise values.BadOutput(f"{name}'s loss must be a real number, got {values.type_name(result[0])}")
            reply["loss"] = float(loss.reshape(-1)[0])
            out_arrays = [values.to_array(result[1], f"{name}'s dx")]
            reply["seconds"] = _perf_counter() - t0
    except values.BadOutput as exc:
        reply.update(kind="bad_output", detail=str(exc))
        out_arrays = []
    except SystemExit as exc:
        reply.update(kind="exited", detail=f"{stage} called sys.exit({exc.code!r})")
    except BaseException as exc:
        reply.update(kind="exception", detail=f"{stage} raised " + values.exception_text(exc))
    reply["mutated"] += [n for n, a, s in zip(arg_names, inputs, snaps) if _changed(a, s)]
    if reply["mutated"] and reply["kind"] == "ok":
        reply.update(
            kind="mutated_input",
            detail=f"layer {name} modified {', '.join(reply['mutated'])} in place (directly or through the "
            "cache); copy an array before changing it (e.g. dx = dout.copy())",
        )
    return reply, out_arrays


def points(module, header, raw):
    """(reply, [values]) of one "points" request: the function at every point asked for."""
    arrays = _arrays(raw)
    nbase = int(header["nbase"])
    base, directions = arrays[:nbase], arrays[nbase:]
    target = header["target"]
    if target["kind"] in ("layer", "layer_loss"):
        suffix = "_forward" if target["kind"] == "layer" else ""
        fn = getattr(module, f"{target['name']}{suffix}", None)
        kwargs = target.get("kwargs", {})
    else:
        fn = getattr(module, target.get("fn", "loss"), None)
        spec = values.make_spec(target.get("spec", {}))
        nlayers = int(target["nlayers"])
    reply = {"kind": "ok", "detail": "", "failed": 0}
    if not callable(fn):
        reply.update(kind="exception", detail="the implementation defines no such function")
        return reply, []
    shared = target["kind"] == "loss"
    if shared:  # loss() gets its params, X and T read-only (DESIGN 3), shared between points
        for a in base:
            a.flags.writeable = False
    rows = []
    for arg, direction, flat, t_re, t_im in header["points"]:
        t = complex(t_re, t_im) if t_im else float(t_re)
        # only the perturbed array is new: a copy of every array at every point costs more than
        # a small network's loss
        args = list(base) if shared else [a.copy() for a in base]
        if direction >= 0:
            args[arg] = base[arg] + t * directions[direction]
        elif flat >= 0:
            moved = base[arg].astype(complex) if t_im else base[arg].copy()
            moved.reshape(-1)[flat] += t
            args[arg] = moved
        elif t_im:
            args[arg] = base[arg].astype(complex)
        if shared:
            args[arg].flags.writeable = False
        try:
            if target["kind"] != "loss":
                result = fn(*args, **kwargs)
                value = _asarray(result[0]).reshape(-1)
            else:
                params = [(args[2 * i], args[2 * i + 1]) for i in range(nlayers)]
                value = _asarray(fn(params, args[2 * nlayers], args[2 * nlayers + 1], spec)).reshape(-1)[:1]
            value = value.astype(complex if value.dtype.kind == "c" else float)
        except BaseException as exc:
            if not reply["failed"]:
                reply["detail"] = values.exception_text(exc, frames=2)
            reply["failed"] += 1
            value = None
        rows.append(value)
    width = max((r.size for r in rows if r is not None), default=1)
    cplx = any(r is not None and r.dtype.kind == "c" for r in rows)
    out = np.full((len(rows), width), np.nan, dtype=complex if cplx else float)
    for i, r in enumerate(rows):
        if r is not None and r.size == width:
            out[i] = r
    return reply, [out]
