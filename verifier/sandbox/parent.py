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

The child (`verifier/sandbox/child.py`, run by path with `python -I`) imports only the standard
library and numpy. The parts, each in its own module:
  - verifier/sandbox/protocol.py: the data-only wire protocol (never pickle) and the validation of
    everything the child sends, before anything is allocated; anything else becomes
    `bad_output` and the child is replaced;
  - verifier/sandbox/exchange.py: one round trip over the child's channels (requests on a socket,
    replies on a pipe, stdout and stderr on a third pipe, drained and capped), with the
    per-call timeout and CPU budget;
  - verifier/sandbox/limits.py: starting the child with its limits (memory, file size, no new
    processes, the privilege drop when run as root) and killing its process group;
  - here: the Sandbox's calls, and what each comes to.
A call whose request never reached the child, or whose garbage came from a child that had
served earlier calls, is run once more on a fresh child, so one call's misdeeds cannot become
another call's row.

Limitations (those of the process limits are in verifier/sandbox/limits.py): one child serves many
calls, so state the user's code leaves behind (globals, its own monkeypatches) carries over to
its later calls until the child is replaced. A Sandbox is not thread-safe: one call at a time.
"""

from __future__ import annotations

import base64
import errno
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImplementationError, IsolationError, VerifierError
from ..records import CallOutcome, RunConfig
from .exchange import Exchange
from .limits import LEVELS, init_request, isolation_level, kill_group, release, spawn, worker_pid
from .prestart import take
from .protocol import Broken, as_text, call_fields, check_description, loss_dtype, pack_inputs, spec_json

OUTPUT_EXCERPT = 4096  # characters of captured output put into a CallOutcome
_KINDS = ("ok", "exception", "timeout", "exited", "bad_output", "mutated_input")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def missing_module_hint(detail: str, python: str | None) -> str | None:
    """For an import that failed with ModuleNotFoundError: which other python on PATH has the
    module (found by importlib.util.find_spec, which imports nothing), and the --python that
    would use it; None when no other one has it."""
    m = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", detail or "")
    if not m:
        return None
    module = m.group(1).split(".")[0]
    mine = os.path.abspath(python or sys.executable)  # venvs link one binary: not realpath
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 1)"
    for name in ("python3", "python"):
        other = shutil.which(name)
        if not other or os.path.abspath(other) == mine:
            continue
        try:
            found = subprocess.run([other, "-I", "-c", probe, module], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            continue
        if found:
            return (
                f"The checked code runs under {python or sys.executable}, which has no module {module!r}; "
                f"{other} has it: run again with --python {other}"
            )
    return None


def _read_source(path: Path) -> bytes:
    """The bytes of the implementation file the harness was given, which it sends to the child.

    Only a regular file (a FIFO would hang the harness). Run by root, not through a symbolic
    link either: a submission that is a link to the grader's answer key, or to a root-only
    file, would otherwise be read with root's privileges and run or shown in the report."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (os.O_NOFOLLOW if os.geteuid() == 0 else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.geteuid() == 0 and path.is_symlink():
            raise OSError(
                exc.errno,
                "it is a symbolic link, and run as root the verifier reads only the file itself "
                "(give the link's target if you trust it)",
            ) from None
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return f.read()


class Sandbox(Exchange):
    """Runs one user implementation (a .py path or an importable module name) in a child."""

    def __init__(
        self,
        impl: str,
        *,
        timeout: float = RunConfig.timeout,
        memory_mb: int = 2048,
        output_limit: int = 1_000_000,
        cpu_seconds: float | None = None,
        start_timeout: float | None = None,
        file_size_mb: int = 64,
        python: str | None = None,
        namespaces: bool = True,
        require_isolation: bool = False,
    ):
        self.impl = str(impl)
        self.python = python  # the interpreter the child runs under (None: this one)
        self.timeout = float(timeout)
        self.memory_mb = int(memory_mb)
        self.output_limit = int(output_limit)
        self.cpu_seconds = cpu_seconds
        # Starting Python and numpy does not run user code; give it room on a loaded machine.
        self.start_timeout = float(start_timeout if start_timeout is not None else max(30.0, self.timeout))
        self.file_size_mb = int(file_size_mb)
        # False: the fallback of a kernel without namespaces or Landlock (for tests)
        self.namespaces = bool(namespaces)
        self.require_isolation = bool(require_isolation)  # refuse a child without "full" isolation
        self.isolation: dict[str, Any] = {}  # what the child reported about its limits
        self._level: tuple[str, tuple[str, ...]] | None = None  # the weakest of its children's
        self.starts = 0  # child processes started so far
        self._impl_msg = self._resolve(self.impl)
        self._proc: subprocess.Popen | None = None
        self._cpu_pid: int | None = None  # the process running the user's code
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

    @property
    def isolation_level(self) -> tuple[str, tuple[str, ...]]:
        """(level, mechanisms) of the weakest child started so far (verifier/sandbox/limits.py:
        isolation_level); ("", ()) before the first."""
        return self._level or ("", ())

    def close(self) -> None:
        """Kill the child and its process group; the Sandbox may still be used afterwards."""
        self._kill()

    def describe(self) -> dict[str, Any]:
        """The implementation's optional attributes (DESIGN section 3).

        Keys: SUPPORTED_ACTIVATIONS, SUPPORTED_LOSSES (lists of str or None), LAYOUT (str or
        None), has_gradients, has_train_step. Raises ImplementationError when the module
        cannot be imported or defines no `gradients`.
        """
        desc = self.contract()
        if not desc.get("has_gradients"):
            raise ImplementationError(
                f"{self.impl} defines no function `gradients`: define "
                "gradients(params, X, T, spec) returning [(dW1, db1), ..., (dWL, dbL)]"
            )
        return desc

    def contract(self) -> dict[str, Any]:
        """describe()'s keys, plus what a layers file defines (DESIGN 3a): `layers` (names with
        NAME_forward and NAME_backward), `layer_losses` (NAME_loss names), `LAYERS` (the
        declarations) and `has_loss`; no requirement of `gradients`. ImplementationError when
        the module cannot be imported."""
        try:
            self._ensure_loaded()
        except Broken as exc:
            raise ImplementationError(self._load_message(exc)) from None
        return dict(self._description or {})

    def request(
        self,
        fields: dict,
        arrays: list[np.ndarray],
        reply_cap: int,
        kinds: tuple[str, ...],
        timeout: float | None = None,
    ) -> tuple[dict, list[np.ndarray]] | CallOutcome:
        """One request of another kind than "call" (verifier/sandbox/requests.py builds them): the
        reply's header and arrays, or the CallOutcome of a call that broke. Retried once on a
        fresh child like a call."""
        t0 = time.monotonic()
        for attempt in (1, 2):
            try:
                self._ensure_loaded()
            except Broken as exc:
                return self._unloaded(exc, t0)
            fresh = self._child_calls == 0
            t1 = time.monotonic()
            try:
                reply = self._exchange(fields, arrays, timeout or self.timeout, reply_cap, kinds + ("error",))
            except Broken as exc:
                self._kill()
                if attempt == 1 and (exc.before_call or exc.kind == "bad_output" and not fresh):
                    continue
                return self._broken(str(fields.get("op")), exc, t0, t1)
            self._child_calls += 1
            if reply[0]["kind"] == "error":
                self._kill()
                return CallOutcome(
                    "bad_output", f"the sandbox could not report the result: {as_text(reply[0].get('detail'))}"
                )
            return reply
        raise VerifierError("internal: a sandbox request ended without an answer")

    overlaps = True  # gradients and train_step take `meanwhile` (see gradients)

    def gradients(self, params, X, T, spec, meanwhile: Callable[[], object] | None = None) -> CallOutcome:
        """Run the user's gradients(params, X, T, spec) on read-only copies of the inputs.

        `meanwhile()`, if given, is run while the child works on the call: the harness's own
        work for the case, overlapped with the user's code. It must not raise, and must do its
        work once however often it is called (a call retried on a fresh child calls it again;
        run/session.py: Later). A call that breaks before its request is sent never runs it."""
        return self._call("gradients", params, X, T, spec, None, meanwhile)

    def train_step(self, params, X, T, spec, lr: float, meanwhile: Callable[[], object] | None = None) -> CallOutcome:
        """Run the user's train_step(params, X, T, spec, lr); the new params come back.
        `meanwhile` as for gradients."""
        return self._call("train_step", params, X, T, spec, float(lr), meanwhile)

    def supports(self, spec) -> CallOutcome:
        """Run the user's supports(spec) (DESIGN section 3): `accepted` holds its answer. A spec
        goes over, no arrays, so the call costs a round trip."""
        t0 = time.monotonic()
        request = {"op": "supports", "spec": spec_json(spec)}
        try:
            self._ensure_loaded()
            header, _ = self._exchange(request, [], self.timeout, 0, ("ok",) + _KINDS[1:] + ("error",))
        except Broken as exc:
            self._kill()
            return CallOutcome(kind=exc.kind, detail=f"supports: {exc.detail}", output=self._excerpt())
        kind, detail = header["kind"], as_text(header.get("detail"))
        value = header.get("value")
        if kind == "ok" and not isinstance(value, bool):
            kind, detail = "bad_output", "supports: malformed reply from the sandbox process"
        if kind == "error":
            self._kill()
            kind = "bad_output"
        wall = time.monotonic() - t0
        return CallOutcome(
            kind=kind,
            detail=detail,
            accepted=value if kind == "ok" else None,
            output=self._excerpt(),
            wall_seconds=wall,
        )

    # ------------------------------------------------------------ implementation

    def _resolve(self, impl: str) -> dict[str, Any]:
        path = Path(impl)
        if impl.endswith(".py") or os.sep in impl or path.is_file():
            try:
                source = _read_source(path)
            except OSError as exc:
                raise ImplementationError(
                    f"cannot read {impl}: {exc.strerror or exc}; give the path of a .py file "
                    "that defines gradients(params, X, T, spec), or an importable module "
                    "name"
                ) from None
            stem = path.stem if path.stem.isidentifier() else "user_impl"
            resolved = path.resolve()
            return {
                "kind": "file",
                "path": str(resolved),
                "name": stem,
                "dir": str(resolved.parent),
                "source": base64.b64encode(source).decode("ascii"),
            }
        if not _MODULE_RE.match(impl):
            raise ImplementationError(
                f"{impl!r} is neither a .py file nor a module name; give the path of a .py "
                "file that defines gradients(params, X, T, spec), or an importable module name"
            )
        return {"kind": "module", "name": impl}

    def _load_message(self, exc: Broken) -> str:
        what = f"could not import {self.impl}"
        if exc.kind == "timeout":
            return f"{what}: importing it did not finish within {self.timeout:g} s"
        if exc.kind == "exited":
            return f"{what}: {exc.detail}"
        hint = missing_module_hint(exc.detail, self.python)
        if hint:
            return f"{what}:\n{exc.detail}\n{hint}"
        return (
            f"{what}:\n{exc.detail}\nFix that error (running `python {self.impl}` shows it too), then run again."
            if self._impl_msg["kind"] == "file"
            else f"{what}:\n{exc.detail}\nFix that error, then run again."
        )

    def _ensure_loaded(self) -> None:
        if self._proc is not None and (self._proc.poll() is not None or not self._quiet()):
            self._kill()  # dead, or it wrote outside the protocol: start afresh
        if self._proc is not None and self._description is not None:
            return
        if self._proc is None:
            self._start()
        try:
            header, _ = self._exchange(
                {"op": "load", "impl": self._impl_msg}, [], self.timeout, 0, ("loaded", "load_error")
            )
        except Broken:
            self._kill()
            raise
        if header["kind"] == "load_error":
            error = header.get("error")
            detail = as_text(header.get("detail"))
            self._kill()
            raise Broken("exited" if error == "exited" else "exception", detail)
        try:
            self._description = check_description(header.get("describe"))
        except ValueError as exc:
            self._kill()
            raise Broken("exception", str(exc)) from None

    def _start(self) -> None:
        self._kill()
        # the child the command line started while the harness was loading, if it fits
        proc, fds, req_sock, workdir = take(self.python, self.namespaces) or spawn(self.python, self.namespaces)
        self._proc, self._fds, self._workdir = proc, fds, workdir
        self._req_sock = req_sock
        self._description = None
        self._child_calls = 0
        self.starts += 1
        init = init_request(proc.pid, workdir, self._impl_msg, self.memory_mb, self.file_size_mb, self.python)
        try:
            header, _ = self._exchange(init, [], self.start_timeout, 0, ("ready",))
        except Broken as exc:
            output = self._out.decode("utf-8", "replace")[-2000:]
            self._kill()
            raise VerifierError(f"the sandbox process did not start ({exc.kind}: {exc.detail})\n{output}") from None
        isolation = header.get("isolation")
        self.isolation = isolation if isinstance(isolation, dict) else {}
        self._cpu_pid = worker_pid(proc.pid) if "pid" in self.isolation.get("namespaces", ()) else proc.pid
        notes = "; ".join(map(str, self.isolation.get("notes", [])))
        if self.isolation.get("fatal"):
            self._kill()
            raise VerifierError(f"the sandbox process cannot run: {notes}")
        level = isolation_level(self.isolation)
        if self._level is None or LEVELS.index(level[0]) > LEVELS.index(self._level[0]):
            self._level = level
        if self.require_isolation and level[0] != "full":
            self._kill()
            raise IsolationError(
                f"--require-isolation: this machine isolates the code under test only at level "
                f"{level[0]!r} ({', '.join(level[1]) or 'a separate process with resource limits'}), "
                f"not 'full' (its own pid, net and mount namespaces, private /tmp and /dev/shm, "
                f"Landlock, no privilege of the harness's){': ' + notes if notes else ''}. Run it where "
                "the kernel allows unprivileged user namespaces and Landlock (or as root), or without "
                "--require-isolation to accept the weaker level, which the report states"
            )

    def _call(self, fn: str, params, X, T, spec, lr, meanwhile: Callable[[], object] | None = None) -> CallOutcome:
        t0 = time.monotonic()
        arrays, nlayers = pack_inputs(params, X, T)
        spec = spec_json(spec)
        in_bytes = sum(a.nbytes for a in arrays[: 2 * nlayers])
        reply_cap = 64 * 2**20 + 8 * in_bytes
        request = {
            "op": "call",
            "fn": fn,
            "nlayers": nlayers,
            "spec": spec,
            "lr": lr,
            "reply_cap": reply_cap,
            "memory_mb": self.memory_mb,
        }
        expect = _KINDS + ("error",)
        for attempt in (1, 2):
            try:
                self._ensure_loaded()
            except Broken as exc:
                return self._unloaded(exc, t0)
            fresh = self._child_calls == 0
            t1 = time.monotonic()
            try:
                header, out = self._exchange(request, arrays, self.timeout, reply_cap, expect, meanwhile)
            except Broken as exc:
                self._kill()
                if attempt == 1 and (exc.before_call or exc.kind == "bad_output" and not fresh):
                    # The request never reached the child, or garbage came from a child that
                    # served earlier calls (maybe their late writes): an earlier call's doing,
                    # so this call is judged again, on a fresh child.
                    continue
                return self._broken(fn, exc, t0, t1)
            self._child_calls += 1
            break
        return self._outcome(fn, header, out, nlayers, time.monotonic() - t0)

    def _unloaded(self, exc: Broken, t0: float) -> CallOutcome:
        """The row of a call whose module could not be imported."""
        kind = exc.kind if exc.kind in _KINDS else "exception"
        elapsed = time.monotonic() - t0
        return CallOutcome(
            kind=kind,
            detail=self._load_message(exc),
            output=self._excerpt(),
            output_bytes=self._out_total,
            seconds=elapsed,
            wall_seconds=elapsed,
        )

    def _broken(self, fn: str, exc: Broken, t0: float, t1: float) -> CallOutcome:
        """The row of a call whose exchange broke (timeout, death, garbage)."""
        elapsed = time.monotonic() - t1
        return CallOutcome(
            kind=exc.kind,
            detail=f"{fn}: {exc.detail}",
            output=self._excerpt(),
            output_bytes=self._out_total,
            seconds=elapsed,
            wall_seconds=time.monotonic() - t0,
        )

    def _outcome(self, fn: str, header: dict, out: list[np.ndarray], nlayers: int, wall: float) -> CallOutcome:
        """The row of a call the child answered."""
        kind = header["kind"]
        detail, seconds, loss, mutated = call_fields(header, wall)
        if kind == "error":
            self._kill()
            kind = "bad_output"
            detail = f"{fn}: the sandbox could not report the result: {detail}"
        pairs = None
        if kind in ("ok", "mutated_input"):
            if len(out) != 2 * nlayers:
                self._kill()
                return CallOutcome(
                    kind="bad_output",
                    detail=f"{fn}: malformed reply from the "
                    "sandbox process (wrong number of arrays); the implementation "
                    "may have tampered with the harness's protocol",
                    output=self._excerpt(),
                    output_bytes=self._out_total,
                    seconds=seconds,
                    wall_seconds=wall,
                )
            pairs = [(out[2 * i], out[2 * i + 1]) for i in range(nlayers)]
        return CallOutcome(
            kind=kind,
            detail=detail,
            loss=loss if pairs is not None else None,
            loss_dtype=loss_dtype(header) if pairs is not None and loss is not None else None,
            grads=pairs if fn == "gradients" else None,
            params=pairs if fn == "train_step" else None,
            output=self._excerpt(),
            seconds=seconds,
            mutated=mutated,
            output_bytes=self._out_total,
            wall_seconds=wall,
        )

    def _excerpt(self) -> str:
        text = bytes(self._out[: OUTPUT_EXCERPT * 4]).decode("utf-8", "replace")[:OUTPUT_EXCERPT]
        if self._out_total > len(text.encode()):
            text += f"\n[... {self._out_total} bytes of output in all]"
        return text

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            kill_group(proc)
        release(self._fds, self._req_sock, self._workdir)
        self._req_sock = None
        self._fds = {}
        self._description = None
        self._workdir = None
        self._cpu_pid = None
