"""The sandbox child's namespaces, entered first of all (standard library only, loaded by path).

`enter` puts the child into new user (when not root), pid, net, ipc and mount namespaces where
the kernel allows it, and only the process that will run the user's code returns from it:

    harness -> keeper (outside the new pid namespace: what the harness started and waits for)
               -> init (pid 1 of the new pid namespace: reaps, dies with the keeper)
                  -> worker (pid 2: imports numpy, then the user's code)

The user's code cannot name the harness, its workers or another submission's child: they are
not in its pid namespace (and a fresh /proc shows only its own). Signals to pid 1 from inside
are dropped by the kernel, which is why the user's code is pid 2 and not the init: its own
fatal signals (a SIGSEGV, a SIGTERM to itself) still kill it, and the keeper relays the exit
status so the harness sees exactly what it would have seen without namespaces. Killing the
keeper kills init (PDEATHSIG), and the kernel then kills everything in the namespace.

When run by an ordinary user the new user namespace maps only that user's own uid and gid (no
root inside). The worker keeps the namespace's capabilities only until its mounts are made
(verifier/sandbox/child_fs.py, at the harness's "init" request, before any user code); then
`drop_caps` drops them all, so nothing the user's code does can undo a mount or regain a
capability by exec (no_new_privs); a worker whose capabilities could not be dropped exits.
Without the kernel's support (e.g. a container whose seccomp profile refuses unshare) nothing
is entered and the notes say why; the harness reports the isolation level either way.
"""

import ctypes
import os
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_REC, MS_PRIVATE = 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24

_NAMES = (
    ("user", CLONE_NEWUSER),
    ("pid", CLONE_NEWPID),
    ("net", CLONE_NEWNET),
    ("ipc", CLONE_NEWIPC),
    ("mount", CLONE_NEWNS),
)

_libc: "ctypes.CDLL | None"
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - a libc is always there on Linux
    _libc = None


def _err(what):
    return f"{what}: {os.strerror(ctypes.get_errno())}"


def _prctl(option, arg):
    return _libc is not None and _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) == 0


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _unshare(root):
    """Unshare as much as the kernel allows; the names entered (the user namespace comes with
    the rest or not at all, since without it an ordinary user may unshare nothing)."""
    base = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWNS
    flags = base if root else base | CLONE_NEWUSER
    uid, gid = os.getuid(), os.getgid()
    if _libc is None or _libc.unshare(flags) != 0:
        return [], [_err("namespaces not available (unshare)")]
    if not root:
        try:  # the one mapping an ordinary user may write: itself, and no setgroups
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as exc:
            return [n for n, f in _NAMES if f & flags], [f"user namespace without a uid map: {exc}"]
    return [n for n, f in _NAMES if f & flags], []


def _keeper(init_pid, status_r):
    """Wait for init, then exit the way the worker did (read from init's status pipe)."""
    _, status = os.waitpid(init_pid, 0)
    data = os.read(status_r, 32)
    if data:
        status = int(data)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 70)


def _init(worker_pid, status_w):
    """pid 1: reap everything; when the worker ends, pass its status on and end the namespace."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(70)
        if pid == worker_pid:
            os.write(status_w, str(status).encode())
            os._exit(0)


def _quiet(keep):
    """A keeper or init holds none of the worker's channels: EOF must mean the worker closed them."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    for fd in keep:
        try:
            os.close(fd)
        except OSError:
            pass


def drop_caps():
    """Drop every capability (bounding set first, then the rest); False if that failed."""
    cap = 0
    while cap < 64 and _prctl(PR_CAPBSET_DROP, cap):
        cap += 1

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    data = (ctypes.c_uint32 * 6)()
    return _libc.capset(ctypes.byref(Header(0x20080522, 0)), data) == 0


def enter(channels):
    """Enter the namespaces; returns (names entered, notes) in the worker only. `channels`:
    the worker's file descriptors, closed in the keeper and init."""
    root = os.geteuid() == 0
    names, notes = _unshare(root)
    if not names:
        return names, notes
    _prctl(PR_SET_DUMPABLE, 0)  # keeper and init: nothing in the namespace may ptrace them
    status_r, status_w = os.pipe()
    init_pid = os.fork()
    if init_pid:
        _quiet(list(channels) + [status_w])
        _keeper(init_pid, status_r)
    os.close(status_r)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if "mount" in names:
        if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            notes.append(_err("mounts not made private"))
        elif _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
            notes.append(_err("no /proc of its own"))
    worker_pid = os.fork()
    if worker_pid:
        _quiet(list(channels))
        _init(worker_pid, status_w)
    os.close(status_w)
    _prctl(PR_SET_DUMPABLE, 1)
    return names, notes
