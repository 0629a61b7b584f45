"""Isolation: run a user's implementation in a separate, limited process (DESIGN section 3).

    with Sandbox("my_backprop.py", timeout=10) as box:
        info = box.describe()     # optional attributes; ImplementationError if unusable
        out = box.gradients(params, X, T, {"sizes": [2, 3, 1], "activations": [...],
                                           "loss": "mse"})
        if out.kind == "ok":
            grads = out.grads     # [(dW1, db1), ...] exactly as returned

One child process serves every call of a Sandbox; after a crash, timeout, exit or protocol
violation the child is killed (its whole process group) and the next call starts a fresh one.
Whatever the user's code does becomes a `CallOutcome` with a `kind`; it never raises here.

The child (`verifier/_child.py`, run by path with `python -I`) imports only the standard
library and numpy. Parent and child speak a data-only protocol (never pickle) over dedicated
channels: requests on a socket (sent with MSG_NOSIGNAL, so a dead child can never SIGPIPE the
harness), replies on a pipe. A frame is `b"BPV1"`, a 4-byte header length, a JSON header, then
raw C-ordered array bytes described by the header. The child's stdout and stderr are a third
pipe, drained and capped here. Everything the child sends is validated (magic, header size,
JSON fields, dtypes, shapes, byte counts against a cap) before anything is allocated; anything
else becomes `bad_output` and the child is replaced. A call whose request never reached the
child, or whose garbage came from a child that had served earlier calls, is run once more on a
fresh child, so one call's misdeeds cannot become another call's row.

Limits: a wall-clock timeout per call (the parent kills the process group), an optional CPU
budget per call (the parent reads the child's CPU time from /proc), an address-space cap
(RLIMIT_AS), no core files, a per-file size cap (RLIMIT_FSIZE), no new processes or threads
(RLIMIT_NPROC = 0, enforced by the kernel for non-root users only), the output cap, and, when
the harness runs as root, a drop to a fresh unprivileged uid (one per child, so that children
cannot signal each other or system daemons), with no_new_privs set.

Limitations: run as an ordinary user, the child has the harness's uid, so it can signal the
harness and write the files that user can write; run the harness as root (e.g. in a container)
for the privilege drop. One child serves many calls, so state the user's code leaves behind
(globals, its own monkeypatches) carries over to its later calls until the child is replaced.
The child inherits the environment, with BLAS limited to one thread. Disk use is capped per
file, not in total. The child dies with the harness thread that started it (PDEATHSIG). A
Sandbox is not thread-safe: one call at a time.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImplementationError, VerifierError

MAGIC = b"BPV1"
_HEAD = struct.Struct(">4sI")
_CHILD = str(Path(__file__).with_name("_child.py"))
_MAX_HEADER = 4 * 2**20  # bytes of JSON header accepted from the child
_MAX_DETAIL = 20_000  # characters of a detail string kept
OUTPUT_EXCERPT = 4096  # characters of captured output put into a CallOutcome
_UID_BASE = 2_000_000_000  # child uid = base + child pid when the harness runs as root
_DTYPE_RE = re.compile(r"^[<>|=]?[biufc][0-9]{1,2}$")
_KINDS = ("ok", "exception", "timeout", "exited", "bad_output", "mutated_input")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, eq=False)
class CallOutcome:
    """What one call of the user's code came to.

    kind: "ok" | "exception" | "timeout" | "exited" | "bad_output" | "mutated_input".
    Values, shapes, dtypes and finiteness are passed through unjudged; "mutated_input" still
    carries the grads (or params) that were returned.
    """

    kind: str
    detail: str = ""
    grads: list[tuple[np.ndarray, np.ndarray]] | None = None
    loss: float | None = None
    params: list[tuple[np.ndarray, np.ndarray]] | None = None
    output: str = ""  # the first OUTPUT_EXCERPT characters of the call's stdout/stderr
    seconds: float = 0.0  # time inside the user's function (wall-clock time for a timeout)
    mutated: tuple[str, ...] = ()  # inputs changed in place, e.g. ("params[0].W", "X")
    output_bytes: int = 0  # bytes the call printed in total, kept or not
    wall_seconds: float = 0.0  # round trip seen by the harness, transfer included


class _Broken(Exception):
    """The child stopped answering properly during one exchange."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.before_call = False  # the request never fully reached the child


class Sandbox:
    """Runs one user implementation (a .py path or an importable module name) in a child."""

    def __init__(self, impl: str, *, timeout: float = 10.0, memory_mb: int = 2048,
                 output_limit: int = 1_000_000, cpu_seconds: float | None = None,
                 start_timeout: float | None = None, file_size_mb: int = 64):
        self.impl = str(impl)
        self.timeout = float(timeout)
        self.memory_mb = int(memory_mb)
        self.output_limit = int(output_limit)
        self.cpu_seconds = cpu_seconds
        # Starting Python and numpy does not run user code; give it room on a loaded machine.
        self.start_timeout = float(start_timeout if start_timeout is not None
                                   else max(30.0, self.timeout))
        self.file_size_mb = int(file_size_mb)
        self.isolation: dict[str, Any] = {}  # what the child reported about its limits
        self.starts = 0  # child processes started so far
        self._impl_msg = self._resolve(self.impl)
        self._proc: subprocess.Popen | None = None
        self._fds: dict[str, int] = {}
        self._req_sock: socket.socket | None = None
        self._workdir: str | None = None
        self._description: dict[str, Any] | None = None
        self._seq = 0
        self._child_calls = 0  # calls answered by the current child
        self._out = bytearray()
        self._out_total = 0

    # ------------------------------------------------------------ public API

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def last_output(self) -> bytes:
        """Up to output_limit bytes of what the last call (or import) printed."""
        return bytes(self._out)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def close(self) -> None:
        """Kill the child and its process group; the Sandbox may still be used afterwards."""
        self._kill()

    def describe(self) -> dict[str, Any]:
        """The implementation's optional attributes (DESIGN section 3).

        Keys: SUPPORTED_ACTIVATIONS, SUPPORTED_LOSSES (lists of str or None), LAYOUT (str or
        None), has_gradients, has_train_step. Raises ImplementationError when the module
        cannot be imported or defines no `gradients`.
        """
        try:
            self._ensure_loaded()
        except _Broken as exc:
            raise ImplementationError(self._load_message(exc)) from None
        desc = dict(self._description or {})
        if not desc.get("has_gradients"):
            raise ImplementationError(
                f"{self.impl} defines no function `gradients`: define "
                "gradients(params, X, T, spec) returning [(dW1, db1), ..., (dWL, dbL)]")
        return desc

    def gradients(self, params, X, T, spec) -> CallOutcome:
        """Run the user's gradients(params, X, T, spec) on read-only copies of the inputs."""
        return self._call("gradients", params, X, T, spec, None)

    def train_step(self, params, X, T, spec, lr: float) -> CallOutcome:
        """Run the user's train_step(params, X, T, spec, lr); the new params come back."""
        return self._call("train_step", params, X, T, spec, float(lr))

    # ------------------------------------------------------------ implementation

    def _resolve(self, impl: str) -> dict[str, Any]:
        path = Path(impl)
        if impl.endswith(".py") or os.sep in impl or path.is_file():
            try:
                source = path.read_bytes()
            except OSError as exc:
                raise ImplementationError(
                    f"cannot read {impl}: {exc.strerror or exc}; give the path of a .py file "
                    "that defines gradients(params, X, T, spec), or an importable module "
                    "name") from None
            stem = path.stem if path.stem.isidentifier() else "user_impl"
            resolved = path.resolve()
            return {"kind": "file", "path": str(resolved), "name": stem,
                    "dir": str(resolved.parent),
                    "source": base64.b64encode(source).decode("ascii")}
        if not _MODULE_RE.match(impl):
            raise ImplementationError(
                f"{impl!r} is neither a .py file nor a module name; give the path of a .py "
                "file that defines gradients(params, X, T, spec), or an importable module name")
        return {"kind": "module", "name": impl}

    def _load_message(self, exc: _Broken) -> str:
        what = f"could not import {self.impl}"
        if exc.kind == "timeout":
            return f"{what}: importing it did not finish within {self.timeout:g} s"
        if exc.kind == "exited":
            return f"{what}: {exc.detail}"
        return (f"{what}:\n{exc.detail}\nFix that error (running `python {self.impl}` shows "
                "it too), then run again." if self._impl_msg["kind"] == "file" else
                f"{what}:\n{exc.detail}\nFix that error, then run again.")

    def _ensure_loaded(self) -> None:
        if self._proc is not None and (self._proc.poll() is not None
                                       or not self._quiet()):
            self._kill()  # dead, or it wrote outside the protocol: start afresh
        if self._proc is not None and self._description is not None:
            return
        if self._proc is None:
            self._start()
        try:
            header, _ = self._exchange({"op": "load", "impl": self._impl_msg}, [],
                                       self.timeout, 0, ("loaded", "load_error"))
        except _Broken:
            self._kill()
            raise
        if header["kind"] == "load_error":
            error = header.get("error")
            detail = _text(header.get("detail"))
            self._kill()
            raise _Broken("exited" if error == "exited" else "exception", detail)
        try:
            self._description = _check_description(header.get("describe"))
        except ValueError as exc:
            self._kill()
            raise _Broken("exception", str(exc)) from None

    def _quiet(self) -> bool:
        """True when nothing is waiting on the reply pipe between two calls."""
        try:
            return os.read(self._fds["rep_r"], 1) is None
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _start(self) -> None:
        self._kill()
        fds: dict[str, int] = {}
        workdir = None
        try:
            # Requests go over a socket so that writing to a dead child can never raise
            # SIGPIPE in the harness (MSG_NOSIGNAL), whatever the harness's signal setup.
            parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            parent_end.shutdown(socket.SHUT_RD)
            child_end.shutdown(socket.SHUT_WR)
            fds["req_r"] = child_end.detach()
            req_sock = parent_end
            req_sock.setblocking(False)
            fds["req_w"] = req_sock.fileno()
            fds["rep_r"], fds["rep_w"] = os.pipe()
            fds["out_r"], fds["out_w"] = os.pipe()
            workdir = tempfile.mkdtemp(prefix="bpv-sandbox-")
            env = dict(os.environ)
            env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                       VECLIB_MAXIMUM_THREADS="1", NUMEXPR_NUM_THREADS="1",
                       HOME=workdir, TMPDIR=workdir,
                       # keep freed memory for the next call: first-touch page faults,
                       # not copying, dominate the cost of moving arrays otherwise
                       MALLOC_TRIM_THRESHOLD_=str(256 * 2**20),
                       MALLOC_MMAP_THRESHOLD_=str(32 * 2**20))
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-u", _CHILD, str(fds["req_r"]), str(fds["rep_w"])],
                stdin=subprocess.DEVNULL, stdout=fds["out_w"], stderr=fds["out_w"],
                pass_fds=(fds["req_r"], fds["rep_w"]), start_new_session=True, env=env,
                cwd=workdir, close_fds=True)
        except OSError as exc:
            for name, fd in fds.items():
                if name != "req_w":
                    _close(fd)
            if "req_w" in fds:
                req_sock.close()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            raise VerifierError(f"could not start the sandbox process: {exc}") from None
        for name in ("req_r", "rep_w", "out_w"):
            _close(fds.pop(name))
        for fd in fds.values():
            os.set_blocking(fd, False)
        self._proc, self._fds, self._workdir = proc, fds, workdir
        self._req_sock = req_sock
        self._description = None
        self._child_calls = 0
        self.starts += 1
        drop = os.geteuid() == 0
        uid = _UID_BASE + proc.pid
        if drop:
            try:
                os.chown(workdir, uid, uid)
            except OSError:
                pass
        sys_path = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
        if self._impl_msg["kind"] == "file":
            sys_path.insert(0, self._impl_msg["dir"])
        sys_path = list(dict.fromkeys(p for p in sys_path if p != str(Path(_CHILD).parent)))
        init = {"op": "init", "workdir": workdir, "sys_path": sys_path, "drop": drop,
                "uid": uid, "ppid": os.getpid(), "memory_mb": self.memory_mb,
                "impl": {k: v for k, v in self._impl_msg.items() if k != "source"},
                "fsize_mb": self.file_size_mb}
        try:
            header, _ = self._exchange(init, [], self.start_timeout, 0, ("ready",))
        except _Broken as exc:
            output = self._out.decode("utf-8", "replace")[-2000:]
            self._kill()
            raise VerifierError(f"the sandbox process did not start ({exc.kind}: "
                                f"{exc.detail})\n{output}") from None
        isolation = header.get("isolation")
        self.isolation = isolation if isinstance(isolation, dict) else {}
        if self.isolation.get("fatal"):
            notes = "; ".join(map(str, self.isolation.get("notes", [])))
            self._kill()
            raise VerifierError(f"the sandbox process cannot run: {notes}")

    def _call(self, fn: str, params, X, T, spec, lr) -> CallOutcome:
        t0 = time.monotonic()
        arrays: list[np.ndarray] = []
        try:
            for W, b in params:
                arrays += [_as_input(W), _as_input(b)]
        except (TypeError, ValueError) as exc:
            raise TypeError(f"params must be a list of (W, b) array pairs: {exc}") from None
        nlayers = len(arrays) // 2
        arrays += [_as_input(X), _as_input(T)]
        spec_json = _spec_json(spec)
        in_bytes = sum(a.nbytes for a in arrays[: 2 * nlayers])
        reply_cap = 64 * 2**20 + 8 * in_bytes
        request = {"op": "call", "fn": fn, "nlayers": nlayers, "spec": spec_json, "lr": lr,
                   "reply_cap": reply_cap, "memory_mb": self.memory_mb}
        expect = _KINDS + ("error",)
        for attempt in (1, 2):
            try:
                self._ensure_loaded()
            except _Broken as exc:
                kind = exc.kind if exc.kind in _KINDS else "exception"
                elapsed = time.monotonic() - t0
                return CallOutcome(kind=kind, detail=self._load_message(exc),
                                   output=self._excerpt(), output_bytes=self._out_total,
                                   seconds=elapsed, wall_seconds=elapsed)
            fresh = self._child_calls == 0
            t1 = time.monotonic()
            try:
                header, out = self._exchange(request, arrays, self.timeout, reply_cap, expect)
            except _Broken as exc:
                self._kill()
                if attempt == 1 and (exc.before_call or exc.kind == "bad_output" and not fresh):
                    # The request never reached the child, or garbage came from a child that
                    # served earlier calls (maybe their late writes): an earlier call's doing,
                    # so this call is judged again, on a fresh child.
                    continue
                elapsed = time.monotonic() - t1
                return CallOutcome(kind=exc.kind, detail=f"{fn}: {exc.detail}",
                                   output=self._excerpt(), output_bytes=self._out_total,
                                   seconds=elapsed, wall_seconds=time.monotonic() - t0)
            self._child_calls += 1
            break
        wall = time.monotonic() - t0
        kind = header["kind"]
        detail = _text(header.get("detail"))
        seconds = header.get("seconds")
        seconds = float(seconds) if _is_real(seconds) and 0 <= seconds < 1e9 else wall
        loss = header.get("loss")
        loss = float(loss) if _is_real(loss) else None
        mutated = header.get("mutated")
        mutated = tuple(_text(m)[:100] for m in mutated[:100]) if isinstance(mutated, list) else ()
        if kind == "error":
            self._kill()
            kind = "bad_output"
            detail = f"{fn}: the sandbox could not report the result: {detail}"
        pairs = None
        if kind in ("ok", "mutated_input"):
            if len(out) != 2 * nlayers:
                self._kill()
                return CallOutcome(kind="bad_output", detail=f"{fn}: malformed reply from the "
                                   "sandbox process (wrong number of arrays); the implementation "
                                   "may have tampered with the harness's protocol",
                                   output=self._excerpt(), output_bytes=self._out_total,
                                   seconds=seconds, wall_seconds=wall)
            pairs = [(out[2 * i], out[2 * i + 1]) for i in range(nlayers)]
        return CallOutcome(kind=kind, detail=detail, loss=loss if pairs is not None else None,
                           grads=pairs if fn == "gradients" else None,
                           params=pairs if fn == "train_step" else None,
                           output=self._excerpt(), seconds=seconds, mutated=mutated,
                           output_bytes=self._out_total, wall_seconds=wall)

    def _excerpt(self) -> str:
        text = bytes(self._out[:OUTPUT_EXCERPT * 4]).decode("utf-8", "replace")[:OUTPUT_EXCERPT]
        if self._out_total > len(text.encode()):
            text += f"\n[... {self._out_total} bytes of output in all]"
        return text

    # ------------------------------------------------------------ the exchange

    def _exchange(self, header: dict, arrays: list[np.ndarray], timeout: float, reply_cap: int,
                  kinds: tuple[str, ...]) -> tuple[dict, list[np.ndarray]]:
        """Send one request, wait for its reply. Raises _Broken on timeout, death or garbage."""
        proc = self._proc
        if proc is None:  # callers start the child first; say so rather than crash later
            raise VerifierError("internal: a sandbox exchange without a running child")
        fds = self._fds
        self._seq += 1
        seq = self._seq
        header = dict(header, seq=seq)
        header["arrays"] = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]
        hbytes = json.dumps(header).encode()
        pending = [memoryview(_HEAD.pack(MAGIC, len(hbytes)) + hbytes)]
        pending += [memoryview(a).cast("B") for a in arrays if a.size]

        # Output printed between calls (e.g. from a signal handler) is dropped.
        self._drain_output(keep=False)
        self._out = bytearray()
        self._out_total = 0

        parser = _ReplyParser(seq, reply_cap, kinds)
        poller = select.poll()
        poller.register(fds["rep_r"], select.POLLIN)
        poller.register(fds["out_r"], select.POLLIN)
        out_open = True
        writing = True
        poller.register(fds["req_w"], select.POLLOUT)
        start = time.monotonic()
        deadline = start + timeout
        cpu0 = _cpu_seconds(proc.pid) if self.cpu_seconds is not None else None
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    raise _Broken("timeout", f"no answer within {timeout:g} s; the process "
                                  "group was killed")
                if cpu0 is not None:
                    used = _cpu_seconds(proc.pid)
                    if used is not None and used - cpu0 > self.cpu_seconds:
                        raise _Broken("timeout", f"used more than {self.cpu_seconds:g} s of "
                                      "CPU time; the process group was killed")
                events = poller.poll(max(1, int(min(deadline - now, 0.1) * 1000)))
                rep_eof = False
                for fd, _ev in events:
                    if fd == fds["req_w"] and writing:
                        try:
                            while pending:
                                k = self._req_sock.send(pending[0][:1 << 20],
                                                        socket.MSG_NOSIGNAL)
                                pending[0] = pending[0][k:]
                                if not len(pending[0]):
                                    pending.pop(0)
                        except BlockingIOError:
                            pass
                        except OSError:
                            if proc.poll() is None:
                                raise _Broken("exited", "the sandbox process stopped reading "
                                              "requests (it closed the harness's channel)")
                            writing = False  # it died: noticed below
                            poller.unregister(fd)
                            continue
                        if not pending:
                            writing = False
                            poller.unregister(fd)
                    elif fd == fds["out_r"] and out_open:
                        if not self._read_output():
                            out_open = False
                            poller.unregister(fd)
                    elif fd == fds["rep_r"]:
                        if not self._read_reply(parser):
                            rep_eof = True
                            poller.unregister(fd)
                    if parser.done:
                        break
                if parser.done:
                    break
                if rep_eof or proc.poll() is not None:
                    # Dead, or it closed the reply pipe: take what is there, then give up.
                    self._read_reply(parser)
                    if parser.done:
                        break
                    try:
                        proc.wait(timeout=0.5)
                    except subprocess.TimeoutExpired:
                        pass
                    self._drain_output(keep=True)
                    raise _Broken("exited", _death(proc.returncode))
        except _Broken as exc:
            exc.before_call = bool(pending)
            raise
        finally:
            try:
                poller.unregister(fds["req_w"])
            except (KeyError, ValueError):
                pass
        self._drain_output(keep=True)
        return parser.header, parser.arrays

    def _read_reply(self, parser: _ReplyParser) -> bool:
        """Read what is available into the parser; False on end of file."""
        return parser.read_from(self._fds["rep_r"])

    def _read_output(self) -> bool:
        """Read a bounded amount of captured output; False on end of file."""
        for _ in range(16):
            try:
                data = os.read(self._fds["out_r"], 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            self._keep_output(data)
        return True

    def _keep_output(self, data: bytes) -> None:
        self._out_total += len(data)
        room = self.output_limit - len(self._out)
        if room > 0:
            self._out += data[:room]

    def _drain_output(self, keep: bool) -> None:
        fd = self._fds.get("out_r")
        if fd is None:
            return
        for _ in range(64):  # bounded: a child may keep printing from a signal handler
            try:
                data = os.read(fd, 1 << 16)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            if keep:
                self._keep_output(data)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                proc.kill()
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for name, fd in self._fds.items():
            if name != "req_w":
                _close(fd)
        if self._req_sock is not None:
            self._req_sock.close()
            self._req_sock = None
        self._fds = {}
        self._description = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


class _ReplyParser:
    """Incremental, validating reader of one reply frame.

    It never reads past the frame: the fixed head, then exactly the header's length, then the
    payload straight into one buffer of the size the (validated) header announced."""

    def __init__(self, seq: int, cap: int, kinds: tuple[str, ...]):
        self.seq, self.cap, self.kinds = seq, cap, kinds
        self.small = bytearray()  # head and header
        self.hlen: int | None = None
        self.header: dict | None = None
        self.descs: list[tuple[np.dtype, tuple[int, ...], int]] = []
        self.total = 0
        self.payload: bytearray | None = None
        self.got = 0
        self.done = False
        self.arrays: list[np.ndarray] = []

    def read_from(self, fd: int) -> bool:
        """Read what is available (non-blocking fd); False on end of file."""
        while not self.done:
            try:
                if self.payload is not None:
                    k = os.readv(fd, [memoryview(self.payload)[self.got:]])
                    if k == 0:
                        return False
                    self.got += k
                else:
                    need = (_HEAD.size if self.hlen is None else _HEAD.size + self.hlen)
                    data = os.read(fd, need - len(self.small))
                    if not data:
                        return False
                    self.small += data
            except BlockingIOError:
                return True
            except OSError:
                return False
            self._advance()
        return True

    def _advance(self) -> None:
        if self.hlen is None and len(self.small) == _HEAD.size:
            magic, hlen = _HEAD.unpack(bytes(self.small))
            if magic != MAGIC:
                raise _Broken("bad_output", "malformed reply from the sandbox process (not a "
                              "protocol frame); the implementation may have written to the "
                              "harness's pipe")
            if hlen > _MAX_HEADER:
                raise _Broken("bad_output", f"malformed reply from the sandbox process (a "
                              f"{hlen}-byte header)")
            self.hlen = hlen
        if self.hlen is not None and self.header is None \
                and len(self.small) == _HEAD.size + self.hlen:
            self._parse_header(bytes(self.small[_HEAD.size:]))
            self.payload = bytearray(self.total)
        if self.payload is not None and self.got == self.total:
            self._build()
            self.done = True

    def _parse_header(self, raw: bytes) -> None:
        bad = "malformed reply from the sandbox process"
        try:
            header = json.loads(raw)
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise _Broken("bad_output", f"{bad} (the header is not JSON)") from None
        if not isinstance(header, dict) or header.get("seq") != self.seq \
                or header.get("kind") not in self.kinds:
            raise _Broken("bad_output", f"{bad} (unexpected header fields)")
        descs = header.get("arrays", [])
        if not isinstance(descs, list) or len(descs) > 100_000:
            raise _Broken("bad_output", f"{bad} (bad array list)")
        total = 0
        for d in descs:
            if not isinstance(d, dict) or not isinstance(d.get("dtype"), str) \
                    or not _DTYPE_RE.match(d["dtype"]) or not isinstance(d.get("shape"), list) \
                    or len(d["shape"]) > 32:
                raise _Broken("bad_output", f"{bad} (bad array description)")
            try:
                dtype = np.dtype(d["dtype"])
            except TypeError:
                raise _Broken("bad_output", f"{bad} (bad dtype)") from None
            if dtype.kind not in "biufc" or dtype.fields is not None or dtype.itemsize <= 0:
                raise _Broken("bad_output", f"{bad} (bad dtype)")
            shape = d["shape"]
            count = 1
            for s in shape:
                if not isinstance(s, int) or isinstance(s, bool) or s < 0:
                    raise _Broken("bad_output", f"{bad} (bad shape)")
                count *= s
                if count > self.cap:
                    break
            nbytes = count * dtype.itemsize
            total += nbytes
            if total > self.cap:
                raise _Broken("bad_output", f"returned more than {self.cap} bytes of arrays "
                              "(the limit for a network of this size)")
            self.descs.append((dtype, tuple(shape), nbytes))
        self.total = total
        self.header = header

    def _build(self) -> None:
        offset = 0
        for dtype, shape, nbytes in self.descs:
            count = nbytes // dtype.itemsize
            arr = np.frombuffer(self.payload, dtype=dtype, count=count, offset=offset)
            arr = arr.reshape(shape)
            if not arr.flags.aligned:
                arr = arr.copy()
            self.arrays.append(arr)  # writeable views of this reply's own buffer
            offset += nbytes


# ---------------------------------------------------------------- helpers


def _as_input(a) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"inputs must be numeric arrays, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr) if arr.ndim else arr.copy()


def _spec_json(spec) -> dict[str, Any]:
    if isinstance(spec, dict):
        get = spec.get
    else:
        def get(key, default=None):
            return getattr(spec, key, default)
    out = {"sizes": [int(s) for s in get("sizes", ())],
           "activations": [str(a) for a in get("activations", ())],
           "loss": str(get("loss", ""))}
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key not in out:
                try:
                    json.dumps(value)
                except (TypeError, ValueError):
                    continue
                out[str(key)] = value
    return out


def _check_description(desc) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise ValueError("malformed description from the sandbox process")
    out: dict[str, Any] = {}
    for key in ("SUPPORTED_ACTIVATIONS", "SUPPORTED_LOSSES"):
        value = desc.get(key)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            raise ValueError(f"{key} must be a tuple of names")
        out[key] = value
    layout = desc.get("LAYOUT")
    if layout is not None and not isinstance(layout, str):
        raise ValueError("LAYOUT must be a string")
    out["LAYOUT"] = layout
    for key in ("has_gradients", "has_train_step"):
        out[key] = desc.get(key) is True
    return out


def _is_real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _text(x) -> str:
    s = x if isinstance(x, str) else ""
    return s if len(s) <= _MAX_DETAIL else s[:_MAX_DETAIL] + " ..."


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _death(returncode: int | None) -> str:
    if returncode is None:
        return "the sandbox process closed the harness's pipe and was killed"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = {
            "SIGKILL": " (possibly the system's out-of-memory killer)",
            "SIGXFSZ": " (a file grew beyond the sandbox's file size limit)",
            "SIGSEGV": " (a crash in native code)",
            "SIGXCPU": " (CPU limit)",
        }.get(name, "")
        return f"the process was killed by {name}{why}"
    return f"the process exited with code {returncode}"
