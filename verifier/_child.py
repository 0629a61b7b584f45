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

When started by root, "init" drops to an unprivileged uid after importing numpy. The Python
installation may then be unreadable to that uid (e.g. under root's home), so every import
directory is opened first and imported through /proc/self/fd/N, and the sources of a user
directory the new uid cannot list are read beforehand and imported from memory.

Requests ("op"): "init" (limits, privileges, import path), "load" (import the user's module,
answer with its optional attributes), "call" (run gradients or train_step on the arrays sent).
The parent validates everything it receives; this file does its best to answer well-formed
frames even when the user's code has monkeypatched numpy, but the parent never relies on it.
"""

import base64
import collections
import ctypes
import faulthandler
import importlib
import importlib.abc
import importlib.util
import json
import linecache
import os
import resource
import struct
import sys
import time
import traceback
import types

import numpy as np
import numpy.fft  # noqa: F401  preloaded: after a privilege drop the install may be unreadable
import numpy.linalg  # noqa: F401
import numpy.random  # noqa: F401

MAGIC = b"BPV1"
_HEAD = struct.Struct(">4sI")
_THIS_FILE = os.path.abspath(__file__)

# References captured before any user code runs, so that a user monkeypatching numpy
# (np.asarray = ..., np.lib.format.write_array = ...) does not change how replies are built.
_asarray = np.asarray
_frombuffer = np.frombuffer
_ndarray = np.ndarray
_np_dtype = np.dtype
_generic = np.generic
_json_dumps = json.dumps
_json_loads = json.loads
_perf_counter = time.perf_counter
_extract_frames = traceback.StackSummary.extract
_walk_tb = traceback.walk_tb
_format_exc_only = traceback.format_exception_only
_os_read = os.read
_os_readv = os.readv
_os_write = os.write

_NUMERIC_KINDS = "biufc"
_FD_PREFIXES = []  # (fd path, original path) pairs, to show real paths in tracebacks


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


# ---------------------------------------------------------------- what the user gets


class Spec(collections.abc.Mapping):
    """The network spec handed to the user: attributes `.sizes`, `.activations`, `.loss`
    (plus any extra field the harness sends), read-only, and also readable as a mapping."""

    __slots__ = ("_fields",)

    def __init__(self, fields):
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_fields")[name]
        except KeyError:
            raise AttributeError(f"spec has no field {name!r}") from None

    def __setattr__(self, name, value):
        raise AttributeError("spec is read-only")

    def __delattr__(self, name):
        raise AttributeError("spec is read-only")

    def __getitem__(self, key):
        return self._fields[key]

    def __iter__(self):
        return iter(self._fields)

    def __len__(self):
        return len(self._fields)

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"Spec({inner})"


def _make_spec(raw):
    fields = dict(raw)
    fields["sizes"] = tuple(int(s) for s in raw.get("sizes", ()))
    fields["activations"] = tuple(str(a) for a in raw.get("activations", ()))
    fields["loss"] = str(raw.get("loss", ""))
    return Spec(fields)


# ---------------------------------------------------------------- describing failures


def _show_path(filename):
    for fdpath, original in _FD_PREFIXES:
        if filename == fdpath or filename.startswith(fdpath + "/"):
            filename = original + filename[len(fdpath):]
            break
    base = os.path.basename(filename)
    if base == "__init__.py":
        base = os.path.join(os.path.basename(os.path.dirname(filename)), base)
    return base


def _exception_text(exc, frames=3):
    """'Type: message' and the last few frames of the user's code, innermost last."""
    try:
        msg = "".join(_format_exc_only(type(exc), exc)).strip()
    except BaseException:  # an exception whose __str__ itself fails
        try:
            msg = type(exc).__name__ + ": <message could not be shown>"
        except BaseException:
            msg = "<exception could not be shown>"
    if len(msg) > 2000:
        msg = msg[:2000] + " ..."
    lines = [msg]
    try:
        last = collections.deque(maxlen=12)
        for frame, lineno in _walk_tb(exc.__traceback__):
            filename = frame.f_code.co_filename
            if os.path.abspath(filename) != _THIS_FILE and not filename.startswith("<frozen"):
                last.append((frame, lineno))
        summary = _extract_frames(iter(last), lookup_lines=True)
        for fs in list(summary)[-frames:]:
            code = (fs.line or "").strip()
            if len(code) > 160:
                code = code[:160] + " ..."
            where = f"  {_show_path(fs.filename)}:{fs.lineno} in {fs.name}"
            lines.append(f"{where}: {code}" if code else where)
    except BaseException:
        pass
    return "\n".join(lines)


# ---------------------------------------------------------------- setting up the process


def _remap_to_fds(paths):
    """Open every import directory now, and import through /proc/self/fd/N afterwards.

    After dropping privileges the Python installation may sit in a directory the new user
    cannot traverse (e.g. under root's home); a directory opened before the drop can still be
    read below itself. Already-imported packages get their __path__ rewritten the same way,
    so lazily imported submodules keep working."""
    mapping = {}
    new_paths = []
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            new_paths.append(p)
            continue
        fdpath = f"/proc/self/fd/{fd}"
        mapping[p] = fdpath
        new_paths.append(fdpath)
        _FD_PREFIXES.append((fdpath, p))
    if not os.path.isdir("/proc/self/fd"):
        return paths
    prefixes = sorted(mapping, key=len, reverse=True)
    for mod in list(sys.modules.values()):
        pkg_path = getattr(mod, "__path__", None)
        if not isinstance(pkg_path, list):
            continue
        for i, q in enumerate(pkg_path):
            for p in prefixes:
                if isinstance(q, str) and q.startswith(p + os.sep):
                    pkg_path[i] = mapping[p] + q[len(p):]
                    break
    return new_paths


class _SourceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves modules whose sources were read before the privilege drop.

    Used only for directories the unprivileged user cannot list (e.g. a user's file in a
    directory only root may read): their .py files and packages are read, never run, while
    the child is still privileged, and imported from memory afterwards."""

    MAX_FILES = 2000
    MAX_BYTES = 64 * 2**20

    def __init__(self):
        self.sources = {}  # module name -> (filename, source bytes, is_package)
        self.files = 0
        self.bytes = 0

    def find_spec(self, fullname, path=None, target=None):
        entry = self.sources.get(fullname)
        if entry is None:
            return None
        filename, _source, is_package = entry
        spec = importlib.util.spec_from_loader(fullname, self, origin=filename,
                                               is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(filename)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        filename, source, _ = self.sources[module.__spec__.name]
        module.__file__ = filename
        exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)

    def _read(self, name, filename, is_package):
        try:
            size = os.stat(filename).st_size
            if self.files >= self.MAX_FILES or self.bytes + size > self.MAX_BYTES:
                return False
            with open(filename, "rb") as f:
                source = f.read(size + 1)
        except OSError:
            return False
        self.files += 1
        self.bytes += len(source)
        self.sources.setdefault(name, (filename, source, is_package))
        try:
            text = source.decode("utf-8", errors="replace")
            linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        except Exception:
            pass
        return True

    def add_dir(self, directory, prefix="", depth=0):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for n in names:
            full = os.path.join(directory, n)
            if n.endswith(".py") and n[:-3].isidentifier() and n != "__init__.py":
                self._read(prefix + n[:-3], full, False)
            elif depth < 4 and n.isidentifier() \
                    and os.path.isfile(os.path.join(full, "__init__.py")):
                if self._read(prefix + n, os.path.join(full, "__init__.py"), True):
                    self.add_dir(full, prefix + n + ".", depth + 1)


def _others_can_list(directory):
    try:
        return os.stat(directory).st_mode & 0o005 == 0o005
    except OSError:
        return True  # nothing there to read anyway


def _preload_unlistable(header, paths):
    """A _SourceFinder for the user's directory if the unprivileged user could not list it."""
    finder = _SourceFinder()
    impl = header.get("impl") or {}
    dirs = []
    if impl.get("kind") == "file" and impl.get("dir"):
        dirs.append(impl["dir"])
    elif impl.get("kind") == "module":
        top = str(impl.get("name", "")).split(".")[0]
        for p in paths:
            pkg = os.path.join(p, top)
            if os.path.isfile(pkg + ".py") or os.path.isfile(os.path.join(pkg, "__init__.py")):
                dirs.append(p)
                if os.path.isdir(pkg) and not _others_can_list(pkg):
                    finder.add_dir(p)
                break
    for d in dirs:
        if not _others_can_list(d):
            finder.add_dir(d)
    return finder if finder.sources else None


def _prctl(option, arg):
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _vm_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0


def _init(header):
    notes = []
    isolation = {"uid": os.getuid(), "dropped_privileges": False}
    workdir = header.get("workdir")
    if workdir:
        os.chdir(workdir)
    paths = [str(p) for p in header.get("sys_path", [])]
    drop = header.get("drop") and os.geteuid() == 0
    finder = None
    if drop:
        finder = _preload_unlistable(header, paths)
        paths = _remap_to_fds(paths)
    sys.path[:] = paths
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()

    limits = {
        "RLIMIT_CORE": 0,
        "RLIMIT_FSIZE": int(header.get("fsize_mb", 64)) * 2**20,
        "RLIMIT_NPROC": 0,  # no fork, no threads (enforced for non-root users only)
    }
    memory_mb = header.get("memory_mb")
    if memory_mb:
        used = _vm_mb()
        if used and used * 1.2 > memory_mb:
            notes.append(f"memory_mb={memory_mb} is below what Python and numpy already use "
                         f"({used} MB of address space)")
            isolation["fatal"] = True
        limits["RLIMIT_AS"] = int(memory_mb) * 2**20
    for name, value in limits.items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            isolation[name] = value
        except (ValueError, OSError, AttributeError) as exc:
            notes.append(f"{name} not set: {exc}")

    if drop:
        uid = int(header["uid"])
        for candidate in (uid, 65534):
            try:
                os.setgroups([])
                os.setresgid(candidate, candidate, candidate)
                os.setresuid(candidate, candidate, candidate)
            except OSError as exc:
                notes.append(f"could not switch to uid {candidate}: {exc}")
                continue
            isolation["dropped_privileges"] = True
            isolation["uid"] = candidate
            break
        if isolation["dropped_privileges"]:
            try:
                os.setuid(0)
                isolation["dropped_privileges"] = False
                notes.append("privileges could be regained; running as root")
            except OSError:
                pass
    elif os.geteuid() != 0:
        notes.append("privileges not dropped (the harness is not root): the implementation "
                     "runs as the harness's user")
    if finder is not None:
        sys.meta_path.append(finder)
        isolation["preloaded_sources"] = finder.files
    if not _prctl(38, 1):  # PR_SET_NO_NEW_PRIVS: no setuid binaries from here on
        notes.append("PR_SET_NO_NEW_PRIVS not set")
    # PR_SET_PDEATHSIG (cleared by a uid change, so set after it): die with the harness.
    if _prctl(1, 9) and os.getppid() != header.get("ppid"):
        os._exit(0)
    isolation["notes"] = notes
    return isolation


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


def _names(value, attr):
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{attr} must be a tuple of names such as (\"sigmoid\", \"tanh\"), "
                        f"got {type(value).__name__}") from None
    if not all(isinstance(v, str) for v in items):
        raise TypeError(f"{attr} must contain names (str) only, got {items!r:.200}")
    return items


def _describe(module):
    layout = getattr(module, "LAYOUT", None)
    if layout is not None and not isinstance(layout, str):
        raise TypeError(f"LAYOUT must be a string such as \"in_out\", got {type(layout).__name__}")
    return {
        "SUPPORTED_ACTIVATIONS": _names(getattr(module, "SUPPORTED_ACTIVATIONS", None),
                                        "SUPPORTED_ACTIVATIONS"),
        "SUPPORTED_LOSSES": _names(getattr(module, "SUPPORTED_LOSSES", None), "SUPPORTED_LOSSES"),
        "LAYOUT": layout,
        "has_gradients": callable(getattr(module, "gradients", None)),
        "has_train_step": callable(getattr(module, "train_step", None)),
    }


# ---------------------------------------------------------------- one call


class _BadOutput(Exception):
    pass


def _type_name(obj):
    try:
        return type(obj).__name__
    except BaseException:
        return "?"


def _to_array(obj, what):
    try:
        arr = _asarray(obj)
    except BaseException as exc:
        raise _BadOutput(f"{what}: expected a numeric array, got {_type_name(obj)} that numpy "
                         f"cannot convert ({_exception_text(exc, frames=0)})") from None
    if not isinstance(arr, _ndarray):
        raise _BadOutput(f"{what}: expected a numeric array, got {_type_name(obj)}")
    if arr.dtype.kind not in _NUMERIC_KINDS or arr.dtype.fields is not None:
        raise _BadOutput(f"{what}: expected a numeric array, got {_type_name(obj)} "
                         f"(as an array: dtype {arr.dtype})")
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    return arr


def _is_scalar(obj):
    if isinstance(obj, bool):
        return False
    if isinstance(obj, (int, float, _generic)):
        return True
    if isinstance(obj, _ndarray):
        return obj.size == 1
    return hasattr(obj, "__array__") and getattr(obj, "size", None) == 1 \
        and not isinstance(obj, (list, tuple))


def _convert(result, nlayers, what):
    """(loss or None, [W1, b1, ..., WL, bL] as arrays) from what the user returned."""
    loss = None
    if isinstance(result, (tuple, list)) and len(result) == 2 and _is_scalar(result[0]) \
            and isinstance(result[1], (tuple, list)):
        try:
            loss_arr = _asarray(result[0])
            if loss_arr.dtype.kind not in "biuf":
                raise TypeError(str(loss_arr.dtype))
            loss = float(loss_arr.reshape(-1)[0])
        except BaseException:
            raise _BadOutput(f"the loss value: expected a real number, got "
                             f"{_type_name(result[0])}") from None
        result = result[1]
    if what == "gradients":
        expected = f"a list of {nlayers} (dW, db) pairs, one per layer, or (loss, that list)"
        names = ("dW", "db")
    else:
        expected = f"a list of {nlayers} new (W, b) pairs, one per layer"
        names = ("W", "b")
    if not isinstance(result, (tuple, list)):
        raise _BadOutput(f"expected {expected}; got {_type_name(result)}")
    if len(result) != nlayers:
        raise _BadOutput(f"expected {expected}; got a {_type_name(result)} of "
                         f"{len(result)} item(s)")
    arrays = []
    for layer, pair in enumerate(result, start=1):
        if isinstance(pair, dict):
            keys = [k for k in (("dW", "db"), ("W", "b")) if all(x in pair for x in k)]
            if keys:
                pair = (pair[keys[0][0]], pair[keys[0][1]])
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            got = _type_name(pair)
            if isinstance(pair, (tuple, list)):
                got += f" of {len(pair)} item(s)"
            raise _BadOutput(f"layer {layer}: expected a ({names[0]}, {names[1]}) pair, got {got}")
        for name, obj in zip(names, pair):
            arrays.append(_to_array(obj, f"layer {layer} {name}"))
    return loss, arrays


def _call(header, arrays):
    nlayers = int(header["nlayers"])
    fn_name = header["fn"]
    reply = {"kind": "ok", "detail": "", "loss": None, "mutated": [], "seconds": 0.0}
    fn = getattr(_module, fn_name, None) if _module is not None else None
    if not callable(fn):
        sig = ("gradients(params, X, T, spec)" if fn_name == "gradients"
               else "train_step(params, X, T, spec, lr)")
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
    spec = _make_spec(header.get("spec", {}))
    args = (params, X, T, spec) if fn_name == "gradients" else \
        (params, X, T, spec, float(header["lr"]))

    result = None
    t0 = _perf_counter()
    try:
        result = fn(*args)
    except SystemExit as exc:
        where = _exception_text(exc).partition("\n")[2]
        reply.update(kind="exited", detail=f"{fn_name} called sys.exit({exc.code!r})"
                     + ("\n" + where if where else ""))
    except MemoryError as exc:
        reply.update(kind="exception", detail=_exception_text(exc)
                     + f"\n  (the sandbox's memory limit is {header.get('memory_mb')} MB)")
    except BaseException as exc:
        reply.update(kind="exception", detail=_exception_text(exc))
    reply["seconds"] = _perf_counter() - t0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass

    mutated = []
    for name, arr, buf, raw, shape, dtype, strides in inputs:
        try:
            same = (arr.shape == shape and arr.dtype == dtype and arr.strides == strides
                    and buf == raw)
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
            loss, out = _convert(result, nlayers, fn_name)
            reply["loss"] = loss
            nbytes = sum(a.nbytes for a in out)
            cap = int(header["reply_cap"])
            if nbytes > cap:
                raise _BadOutput(f"returned {nbytes} bytes of arrays, more than the "
                                 f"{cap}-byte limit for a network of this size (shapes "
                                 f"{[list(a.shape) for a in out][:6]})")
        except _BadOutput as exc:
            reply.update(kind="bad_output", detail=f"{fn_name} returned the wrong kind of "
                         f"value: {exc}")
            out = []
        except BaseException as exc:
            reply.update(kind="bad_output", detail=f"{fn_name}'s return value could not be "
                         f"read: {_exception_text(exc, frames=1)}")
            out = []
    if mutated:
        readable = ", ".join(_readable_input(n) for n in mutated)
        text = (f"{fn_name} modified its input {readable} in place; inputs are read-only: "
                f"copy an array before changing it (e.g. W = W.copy())")
        if reply["kind"] == "ok":
            reply.update(kind="mutated_input", detail=text)
        else:
            reply["detail"] += "\n" + text
    return reply, out


def _readable_input(name):
    if name.startswith("params["):
        layer = int(name[7:name.index("]")]) + 1
        return f"{name} (layer {layer} {name[-1]})"
    if name == "params":
        return "params (the list itself)"
    return name


# ---------------------------------------------------------------- main loop


def main(argv):
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
                reply = {"kind": "ready", "isolation": _init(header)}
            elif op == "load":
                try:
                    reply = {"kind": "loaded", "describe": _describe(_load(header["impl"]))}
                except SystemExit as exc:
                    reply = {"kind": "load_error", "error": "exited",
                             "detail": f"importing the implementation called sys.exit("
                                       f"{exc.code!r})"}
                except BaseException as exc:
                    reply = {"kind": "load_error", "error": "exception",
                             "detail": _exception_text(exc)}
            elif op == "call":
                reply, out = _call(header, arrays)
            else:
                reply = {"kind": "error", "detail": f"unknown request {op!r}"}
        except BaseException as exc:
            reply = {"kind": "error", "detail": "the sandbox child failed: "
                     + _exception_text(exc, frames=2)}
            out = []
        reply["seq"] = seq
        try:
            _send(rep_fd, reply, out)
        except BaseException:
            try:
                _send(rep_fd, {"kind": "error", "seq": seq,
                               "detail": "the reply could not be encoded"})
            except BaseException:
                os._exit(70)


if __name__ == "__main__":
    main(sys.argv)
