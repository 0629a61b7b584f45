"""The sandbox's child process: runs a user's implementation behind a data-only pipe protocol.

Started by `verifier.sandbox.Sandbox` as `python -I -B -u <this file> REQ_FD REP_FD`. It imports
only the standard library and numpy, never the harness: it holds no reference, no comparison
and no report writer, so whatever the user's code does here can only corrupt this process.

Protocol (both directions): a frame is

    b"BPV1" | uint32 big-endian header length | JSON header | raw array bytes

The header's "arrays" lists `{"dtype": "<f8", "shape": [..]}` for each array, in order; the
raw bytes are the C-ordered contents of those arrays, back to back. No pickle anywhere.
The child reads requests from REQ_FD (a socket it can only read) and writes replies to REP_FD
(a pipe); its stdout and stderr are a third pipe that the parent drains and caps, so printing
cannot corrupt the protocol.

Its siblings are loaded by path at start, before any user code, while the child may still be
privileged: `child_ns.py` (its namespaces, entered first), `child_setup.py` (import path,
limits, the privilege drop of "init"), `child_fs.py` (its private /tmp and /dev/shm, what it
sees of the filesystem, Landlock) and `child_values.py` (the spec handed to the user, the
user's return value read back as arrays, exception texts; also used in-process by the Python
API).

Requests ("op"): "init" (limits, privileges, import path), "load" (import the user's module,
answer with its optional attributes), "call" (run gradients or train_step on the arrays sent),
"layer" and "points" (a layer's call, and batched evaluations for self mode: child_layers.py),
"supports" (the module's supports(spec) on a spec alone: no arrays, so it is cheap).
The parent validates everything it receives; this file does its best to answer well-formed
frames even when the user's code has monkeypatched numpy, but the parent never relies on it.
"""

import base64
import faulthandler
import importlib
import importlib.util
import json
import linecache
import os
import struct
import sys
import time
import types

_THIS_FILE = os.path.abspath(__file__)


def _sibling(name):
    """A module of this directory, loaded by path: run with -I the child has no sys.path entry
    for it, and importing it through the `verifier` package would import the harness."""
    path = os.path.join(os.path.dirname(_THIS_FILE), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"bpv_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Namespaces first, before numpy: only the worker process returns (verifier/sandbox/child_ns.py).
_ns = _sibling("child_ns")
PLAIN = sys.argv[3:4] == ["plain"]  # the fallback of a kernel without namespaces or Landlock
if __name__ == "__main__" and not PLAIN:
    NAMESPACES = _ns.enter((int(sys.argv[1]), int(sys.argv[2])))
else:
    NAMESPACES = ([], ["namespaces not requested"])

# the standard library's modules user code (and reference_impls) reaches for most, loaded while
# the interpreter's files are still readable, for the same fallback
import dataclasses  # noqa: E402,F401
import functools  # noqa: E402,F401

import numpy as np  # noqa: E402
import numpy.fft  # noqa: E402,F401  preloaded: after a privilege drop the install may be unreadable
import numpy.linalg  # noqa: E402,F401
import numpy.random  # noqa: E402,F401

MAGIC = b"BPV1"
_HEAD = struct.Struct(">4sI")

# References captured before any user code runs, so that a user monkeypatching numpy
# (np.frombuffer = ..., np.lib.format.write_array = ...) does not change how replies are built.
_frombuffer = np.frombuffer
_np_dtype = np.dtype
_json_dumps = json.dumps
_json_loads = json.loads
_perf_counter = time.perf_counter
_os_readv = os.readv
_os_write = os.write


setup = _sibling("child_setup")
values = _sibling("child_values")
layers = _sibling("child_layers")
layers.bind(values)
fs = _sibling("child_fs")


# ---------------------------------------------------------------- framing


def _read_exact(fd, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = _os_readv(fd, [view[got:]])
        if k == 0:
            raise EOFError("the harness closed the request pipe")
        got += k
    return buf


def _write_all(fd, data):
    view = memoryview(data).cast("B")
    while len(view):
        k = _os_write(fd, view)
        view = view[k:]


def _recv(fd):
    magic, hlen = _HEAD.unpack(bytes(_read_exact(fd, _HEAD.size)))
    if magic != MAGIC:
        raise EOFError("bad frame from the harness")
    header = _json_loads(bytes(_read_exact(fd, hlen)))
    arrays = []
    for desc in header.get("arrays", ()):
        dtype = _np_dtype(desc["dtype"])
        shape = tuple(int(s) for s in desc["shape"])
        count = 1
        for s in shape:
            count *= s
        arrays.append((_read_exact(fd, count * dtype.itemsize), dtype, shape))
    return header, arrays


def _send(fd, header, arrays=()):
    header = dict(header)
    header["arrays"] = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]
    hbytes = _json_dumps(header).encode()
    _write_all(fd, _HEAD.pack(MAGIC, len(hbytes)) + hbytes)
    for a in arrays:
        if a.size:
            _write_all(fd, a)


# ---------------------------------------------------------------- loading the user's module


_module = None


def _load(impl):
    global _module
    if impl["kind"] == "file":
        path = impl["path"]
        source = base64.b64decode(impl["source"])
        name = impl.get("name") or "user_impl"
        try:
            text = source.decode("utf-8", errors="replace")
            lines = text.splitlines(keepends=True)
            linecache.cache[path] = (len(text), None, lines, path)
        except Exception:
            pass
        module = types.ModuleType(name)
        module.__file__ = path
        sys.modules[name] = module
        code = compile(source, path, "exec", dont_inherit=True)
        exec(code, module.__dict__)
    else:
        module = importlib.import_module(impl["name"])
    _module = module
    return module


# ---------------------------------------------------------------- one call


def _call(header, arrays):
    nlayers = int(header["nlayers"])
    fn_name = header["fn"]
    reply = {"kind": "ok", "detail": "", "loss": None, "loss_dtype": None, "mutated": [], "seconds": 0.0}
    fn = getattr(_module, fn_name, None) if _module is not None else None
    if not callable(fn):
        sig = "gradients(params, X, T, spec)" if fn_name == "gradients" else "train_step(params, X, T, spec, lr)"
        reply.update(kind="exception", detail=f"the implementation defines no {sig}")
        return reply, []

    # Read-only arrays for the user over the received buffers; a copy of the bytes stays
    # here as the reference (a user may flip `writeable` back on and write).
    inputs = []
    names = []
    for i in range(nlayers):
        names += [f"params[{i}].W", f"params[{i}].b"]
    names += ["X", "T"]
    for (buf, dtype, shape), name in zip(arrays, names):
        arr = _frombuffer(buf, dtype=dtype).reshape(shape)
        arr.flags.writeable = False
        inputs.append((name, arr, buf, bytes(buf), shape, dtype, arr.strides))
    params = [(inputs[2 * i][1], inputs[2 * i + 1][1]) for i in range(nlayers)]
    params_items = list(params)
    X = inputs[2 * nlayers][1]
    T = inputs[2 * nlayers + 1][1]
    spec = values.make_spec(header.get("spec", {}))
    args = (params, X, T, spec) if fn_name == "gradients" else (params, X, T, spec, float(header["lr"]))

    result = None
    t0 = _perf_counter()
    try:
        result = fn(*args)
    except SystemExit as exc:
        where = values.exception_text(exc).partition("\n")[2]
        reply.update(kind="exited", detail=f"{fn_name} called sys.exit({exc.code!r})" + ("\n" + where if where else ""))
    except MemoryError as exc:
        reply.update(
            kind="exception",
            detail=values.exception_text(exc) + f"\n  (the sandbox's memory limit is {header.get('memory_mb')} MB)",
        )
    except BaseException as exc:
        reply.update(kind="exception", detail=values.exception_text(exc))
    reply["seconds"] = _perf_counter() - t0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass

    mutated = []
    for name, arr, buf, raw, shape, dtype, strides in inputs:
        try:
            same = arr.shape == shape and arr.dtype == dtype and arr.strides == strides and buf == raw
        except BaseException:
            same = False
        if not same:
            mutated.append(name)
    if len(params) != nlayers or any(a is not b for a, b in zip(params, params_items)):
        mutated.append("params")
    reply["mutated"] = mutated

    out = []
    if reply["kind"] == "ok":
        try:
            loss, out, reply["loss_dtype"] = values.convert(result, nlayers, fn_name)
            reply["loss"] = loss
            nbytes = sum(a.nbytes for a in out)
            cap = int(header["reply_cap"])
            if nbytes > cap:
                raise values.BadOutput(
                    f"returned {nbytes} bytes of arrays, more than the "
                    f"{cap}-byte limit for a network of this size (shapes "
                    f"{[list(a.shape) for a in out][:6]})"
                )
        except values.BadOutput as exc:
            reply.update(kind="bad_output", detail=f"{fn_name} returned the wrong kind of value: {exc}")
            out = []
        except BaseException as exc:
            reply.update(
                kind="bad_output",
                detail=f"{fn_name}'s return value could not be read: {values.exception_text(exc, frames=1)}",
            )
            out = []
    if mutated:
        readable = ", ".join(_readable_input(n) for n in mutated)
        text = (
            f"{fn_name} modified its input {readable} in place; inputs are read-only: "
            f"copy an array before changing it (e.g. W = W.copy())"
        )
        if reply["kind"] == "ok":
            reply.update(kind="mutated_input", detail=text)
        else:
            reply["detail"] += "\n" + text
    return reply, out


def _readable_input(name):
    if name.startswith("params["):
        layer = int(name[7 : name.index("]")]) + 1
        return f"{name} (layer {layer} {name[-1]})"
    if name == "params":
        return "params (the list itself)"
    return name


def _supports(header):
    """The user's supports(spec) as {"kind": "ok", "value": bool}, or the exception it raised."""
    fn = getattr(_module, "supports", None) if _module is not None else None
    if not callable(fn):
        return {"kind": "exception", "detail": "the implementation defines no supports(spec)"}
    try:
        value = fn(values.make_spec(header.get("spec", {})))
    except SystemExit as exc:
        return {"kind": "exited", "detail": f"supports called sys.exit({exc.code!r})"}
    except BaseException as exc:
        return {"kind": "exception", "detail": values.exception_text(exc)}
    if not isinstance(value, (bool, np.bool_)):
        return {"kind": "bad_output", "detail": f"supports(spec) returned {type(value).__name__}, not True or False"}
    return {"kind": "ok", "value": bool(value)}


# ---------------------------------------------------------------- main loop


_isolation: dict = {}  # what "init" achieved


def main(argv):
    global _isolation
    req_fd, rep_fd = int(argv[1]), int(argv[2])
    faulthandler.enable(file=sys.__stderr__)
    while True:
        try:
            header, arrays = _recv(req_fd)
        except (EOFError, OSError, ValueError, struct.error):
            os._exit(0)
        op = header.get("op")
        seq = header.get("seq")
        out = []
        try:
            if op == "init":
                _isolation = setup.init(header, NAMESPACES, None if PLAIN else fs, _ns.drop_caps)
                reply = {"kind": "ready", "isolation": _isolation}
            elif op == "load":
                try:
                    module = _load(header["impl"])
                    reply = {"kind": "loaded", "describe": {**values.describe(module), **layers.describe(module)}}
                except SystemExit as exc:
                    reply = {
                        "kind": "load_error",
                        "error": "exited",
                        "detail": f"importing the implementation called sys.exit({exc.code!r})",
                    }
                except BaseException as exc:
                    detail = values.exception_text(exc)
                    if isinstance(exc, ImportError) and _isolation.get("unreadable"):
                        detail += (
                            f"\n  (the code under test runs as uid {os.getuid()}, which cannot read "
                            f"{_isolation['unreadable']}: nothing is read for it with the harness's privileges; "
                            "make that directory and its .py files readable to others, or run the check as their owner)"
                        )
                    reply = {"kind": "load_error", "error": "exception", "detail": detail}
            elif op == "call":
                reply, out = _call(header, arrays)
            elif op in ("layer", "points"):  # child_layers.py: a layer's call, batched evaluations
                reply, out = (layers.layer if op == "layer" else layers.points)(_module, header, arrays)
            elif op == "supports":
                reply = _supports(header)
            else:
                reply = {"kind": "error", "detail": f"unknown request {op!r}"}
        except BaseException as exc:
            reply = {"kind": "error", "detail": "the sandbox child failed: " + values.exception_text(exc, frames=2)}
            out = []
        reply["seq"] = seq
        try:
            _send(rep_fd, reply, out)
        except BaseException:
            try:
                _send(rep_fd, {"kind": "error", "seq": seq, "detail": "the reply could not be encoded"})
            except BaseException:
                os._exit(70)


if __name__ == "__main__":
    main(sys.argv)
