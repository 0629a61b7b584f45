"""Starting, limiting and killing the sandbox's child process, the harness's side.

Limits: a wall-clock timeout per call (the parent kills the process group), an optional CPU
budget per call (the parent reads the child's CPU time from /proc), an address-space cap
(RLIMIT_AS), no core files, a per-file size cap (RLIMIT_FSIZE), no new processes or threads
(RLIMIT_NPROC = 0, enforced by the kernel for non-root users only), the output cap, and, when
the harness runs as root, a drop to a fresh unprivileged uid (one per child, so that children
cannot signal each other or system daemons), with no_new_privs set. The child applies the
resource limits and the drop to itself (`verifier/sandbox/child_setup.py`) from the init request built here,
before it imports any user code; the timeout, the CPU budget and the output cap are enforced
by the harness (verifier/sandbox/exchange.py), where the child cannot undo them.

The child is started in a new session, so that one killpg reaches everything it left behind,
in a fresh working directory that is also its HOME and TMPDIR, with an allowlist of the
harness's environment (PATH, locale, TZ, TERM; `_ENV_ALLOWED`) and BLAS limited to one thread. It dies with the harness thread that started it (PDEATHSIG).

The harness makes itself not dumpable before it starts a child (`not_dumpable`), so a child of
the same uid can neither ptrace it nor open its /proc/<pid>/mem. The child enters new user
(when not root), pid, net, ipc and mount namespaces where the kernel allows it
(verifier/sandbox/child_ns.py): it cannot name, hence signal, the harness or another child, and
has no network; the names entered are in `Sandbox.isolation["namespaces"]`.

In its mount namespace the child gets a private, size-capped /tmp and /dev/shm, read-only
binds of what it reads, the harness's packages covered, and Landlock confines its writes to
its work directory (verifier/sandbox/child_fs.py). `isolation_level` says what a run had;
`Sandbox(require_isolation=True)` refuses anything below "full" (IsolationError, exit 2).

Limitations: where the kernel refuses namespaces, a child run by an ordinary user has the
harness's uid, so it can signal the harness and, without Landlock, write the files that user
can write; run as root, the privilege drop still keeps children apart, but a Python installed
below a directory others cannot search then offers the child only the modules imported before
the drop (nothing is opened for it as root). Disk use is capped per file and per private tmpfs
(the file size cap), not in total in the work directory.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import VerifierError

_CHILD = str(Path(__file__).with_name("child.py"))
# The harness's own packages: covered in the child's mount namespace, refused on import.
HIDDEN_PACKAGES = ("verifier", "reference_impls")
_UID_BASE = 2_000_000_000  # child uid = base + child pid when the harness runs as root


def not_dumpable() -> bool:
    """Make this process not dumpable: no process of the same uid may then ptrace it or open
    its /proc/<pid>/mem (the kernel requires CAP_SYS_PTRACE), and it leaves no core file.
    Set in every harness process that starts a child (the CLI, a class run's workers, the
    pytest plugin's process); False where prctl is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(4, ctypes.c_ulong(0), 0, 0, 0) == 0  # PR_SET_DUMPABLE
    except (OSError, AttributeError):
        return False


def worker_pid(keeper: int) -> int:
    """The pid, as the harness sees it, of the process that runs the user's code: in a pid
    namespace the grandchild of the process the harness started (verifier/sandbox/child_ns.py)."""
    pid = keeper
    for _ in range(2):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return keeper
        if len(kids) != 1:
            return keeper
        pid = int(kids[0])
    return pid


REPLY_PIPE = 1 << 20  # bytes: Linux's default limit for an unprivileged process (pipe-max-size)


def _widen(fd: int) -> None:
    """Give the reply pipe REPLY_PIPE bytes instead of 64 KiB where the system allows it: a big
    network's gradients then cross in 64 writes, not a thousand, each of which switched between
    the two processes (about 0.3 s for 64 MB here)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, REPLY_PIPE)
    except (OSError, AttributeError):  # a lower limit, or no such call: the default pipe works
        pass


def spawn(
    python: str | None = None, namespaces: bool = True
) -> tuple[subprocess.Popen, dict[str, int], socket.socket, str]:
    """Start a child (under the interpreter `python`, default this one) on fresh channels: the process, the harness's non-blocking ends (req_w,
    rep_r, out_r), the request socket and the working directory. VerifierError if it fails.
    `namespaces=False` starts it without namespaces (the fallback, for tests)."""
    not_dumpable()
    fds: dict[str, int] = {}
    workdir = None
    try:
        # Requests go over a socket so that writing to a dead child can never raise
        # SIGPIPE in the harness (MSG_NOSIGNAL), whatever the harness's signal setup.
        req_sock, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        req_sock.shutdown(socket.SHUT_RD)
        child_end.shutdown(socket.SHUT_WR)
        fds["req_r"] = child_end.detach()
        req_sock.setblocking(False)
        fds["req_w"] = req_sock.fileno()
        fds["rep_r"], fds["rep_w"] = os.pipe()
        _widen(fds["rep_r"])
        fds["out_r"], fds["out_w"] = os.pipe()
        workdir = tempfile.mkdtemp(prefix="bpv-sandbox-")
        proc = subprocess.Popen(
            [python or sys.executable, "-I", "-B", "-u", _CHILD, str(fds["req_r"]), str(fds["rep_w"])]
            + ([] if namespaces else ["plain"]),
            stdin=subprocess.DEVNULL,
            stdout=fds["out_w"],
            stderr=fds["out_w"],
            pass_fds=(fds["req_r"], fds["rep_w"]),
            start_new_session=True,
            env=_child_env(workdir),
            cwd=workdir,
            close_fds=True,
        )
    except OSError as exc:
        release(fds, req_sock if "req_w" in fds else None, workdir)
        raise VerifierError(f"could not start the sandbox process: {exc}") from None
    for name in ("req_r", "rep_w", "out_w"):
        _close(fds.pop(name))
    for fd in fds.values():
        os.set_blocking(fd, False)
    return proc, fds, req_sock, workdir


# What the child may see of the harness's environment: how to find programs and how to speak.
# Nothing else (tokens, credentials, the CI's variables) ever reaches the user's code.
_ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM")
_ENV_ALLOWED_PREFIXES = ("LC_",)


def _child_env(workdir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOWED or k.startswith(_ENV_ALLOWED_PREFIXES)}
    env.update(
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        VECLIB_MAXIMUM_THREADS="1",
        NUMEXPR_NUM_THREADS="1",
        HOME=workdir,
        TMPDIR=workdir,
        # keep freed memory for the next call: first-touch page faults,
        # not copying, dominate the cost of moving arrays otherwise
        MALLOC_TRIM_THRESHOLD_=str(256 * 2**20),
        MALLOC_MMAP_THRESHOLD_=str(32 * 2**20),
    )
    return env


@functools.lru_cache(maxsize=8)
def interpreter_path(python: str, cwd: str) -> tuple[str, ...]:
    """The sys.path of another interpreter, as it would be for code run from `cwd` (its site
    packages, PYTHONPATH): what its child imports from. VerifierError if it cannot say."""
    probe = "import sys, json; print(json.dumps(sys.path))"
    try:
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=30, cwd=cwd)
        paths = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        paths = None
    if not isinstance(paths, list):
        raise VerifierError(f"--python {python}: could not run it as a Python interpreter; give the path of a python")
    return tuple(os.path.join(cwd, p) if not os.path.isabs(p or "") else p for p in paths if isinstance(p, str))


def init_request(
    pid: int, workdir: str, impl_msg: dict[str, Any], memory_mb: int, fsize_mb: int, python: str | None = None
) -> dict[str, Any]:
    """The first request to a new child: where it runs, and the limits it puts on itself; under
    another interpreter, that one's own import path."""
    drop = os.geteuid() == 0
    uid = _UID_BASE + pid
    if drop:
        try:
            os.chown(workdir, uid, uid)
        except OSError:
            pass
    here = sys.path if python is None else interpreter_path(python, os.getcwd())
    sys_path = [os.path.abspath(p) if p else os.getcwd() for p in here]
    if impl_msg["kind"] == "file":
        sys_path.insert(0, impl_msg["dir"])
    sys_path = list(dict.fromkeys(p for p in sys_path if p != str(Path(_CHILD).parent)))
    return {
        "hide": _package_dirs(),
        "hide_names": list(HIDDEN_PACKAGES),
        "tmp_mb": fsize_mb,
        "op": "init",
        "workdir": workdir,
        "sys_path": sys_path,
        "drop": drop,
        "uid": uid,
        "ppid": os.getpid(),
        "memory_mb": memory_mb,
        "impl": {k: v for k, v in impl_msg.items() if k != "source"},
        "fsize_mb": fsize_mb,
    }


def _package_dirs() -> list[str]:
    """The directories of the harness's own packages (those installed; no import needed)."""
    out = [str(Path(__file__).resolve().parents[1])]
    for name in HIDDEN_PACKAGES[1:]:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for d in (spec.submodule_search_locations or []) if spec is not None else []:
            out.append(str(Path(d).resolve()))
    return list(dict.fromkeys(out))


# What a run's isolation comes to, strongest first (see `isolation_level`).
LEVELS = ("full", "partial", "process", "in-process")


def isolation_level(iso: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(level, mechanisms in force) from what a child reported at its start.

    "full": its own pid, net and mount namespaces, a private /tmp and /dev/shm, writes
    confined by Landlock, and no privilege of the harness's (the drop to a fresh uid as root,
    a user namespace of its own otherwise). "partial": some of those. "process": a separate
    process with resource limits and nothing more (a kernel without namespaces or Landlock,
    run by an ordinary user)."""
    names = [str(n) for n in iso.get("namespaces", ()) if isinstance(n, str)]
    mechanisms = []
    if names:
        mechanisms.append("namespaces: " + ", ".join(names))
    if iso.get("private_tmp"):
        mechanisms.append("private /tmp and /dev/shm")
    if iso.get("landlock"):
        mechanisms.append(f"Landlock ABI {int(iso['landlock'])}")
    if iso.get("dropped_privileges"):
        mechanisms.append("unprivileged uid")
    if iso.get("hidden_packages"):
        mechanisms.append("harness packages hidden")
    own = iso.get("dropped_privileges") or "user" in names
    full = {"pid", "net", "mount"} <= set(names) and iso.get("private_tmp") and iso.get("landlock") and own
    level = "full" if full else "partial" if mechanisms else "process"
    return level, tuple(mechanisms)


def kill_group(proc: subprocess.Popen) -> None:
    """Kill the child's whole process group (what it forked too) and reap the child."""
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


def release(fds: dict[str, int], req_sock: socket.socket | None, workdir: str | None) -> None:
    """Close a child's channels and remove its working directory."""
    for name, fd in fds.items():
        if name != "req_w":  # owned by req_sock, closed with it
            _close(fd)
    if req_sock is not None:
        req_sock.close()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def death(returncode: int | None) -> str:
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
