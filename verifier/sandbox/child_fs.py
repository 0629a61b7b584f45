"""The sandbox child's filesystem, set up before any user code (standard library only, loaded
by path by `verifier/sandbox/child.py`): what the user's code can see and where it can write.

In the child's own mount namespace (verifier/sandbox/child_ns.py), `mounts`:
  - puts a fresh, size-capped tmpfs on /tmp and /dev/shm: what the user's code leaves there
    is gone with the namespace, and it can neither read nor fill the machine's own;
  - binds back, read-only, the few real paths the child needs that those covered (its import
    directories, the submission's directory) and, writable, its own work directory;
  - run by root, where an import directory sits below a directory others cannot search (a
    Python installed under root's home), covers that directory with an empty tmpfs holding
    only binds of the needed paths. This gives the unprivileged child traversal, never read
    access: every file is still opened with the child's own uid and permission bits, and a
    symlink towards anything not bound resolves to nothing;
  - covers the harness's own packages (`verifier`, `reference_impls`) with an empty read-only
    tmpfs, so the user's code cannot import the references or the judge.
`landlock` then, as the last step before user code (after the uid drop and no_new_privs),
restricts writes to the work directory, the private /tmp and /dev/shm and /dev/null, denies
every TCP bind and connect, and, where the kernel's Landlock ABI has scopes, signals and
abstract unix sockets outside the child's own domain. Without Landlock the mount namespace
still keeps /tmp and /dev/shm private; the isolation record says what was in force.
"""

import ctypes
import os
import platform
import stat

MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4
MS_REMOUNT, MS_BIND = 32, 4096
O_PATH = getattr(os, "O_PATH", 0o10000000)

_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
_FS_WRITE_FILE = 1 << 1
_FS_WRITES = (
    _FS_WRITE_FILE
    | (1 << 4)  # REMOVE_DIR
    | (1 << 5)  # REMOVE_FILE
    | (1 << 6)  # MAKE_CHAR
    | (1 << 7)  # MAKE_DIR
    | (1 << 8)  # MAKE_REG
    | (1 << 9)  # MAKE_SOCK
    | (1 << 10)  # MAKE_FIFO
    | (1 << 11)  # MAKE_BLOCK
    | (1 << 12)  # MAKE_SYM
)
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
_NET_TCP = (1 << 0) | (1 << 1)  # BIND_TCP, CONNECT_TCP: ABI 4
_SCOPES = (1 << 0) | (1 << 1)  # ABSTRACT_UNIX_SOCKET, SIGNAL: ABI 6

_libc: "ctypes.CDLL | None"
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.syscall.restype = ctypes.c_long
except OSError:  # pragma: no cover - a libc is always there on Linux
    _libc = None


def _err(what):
    return f"{what}: {os.strerror(ctypes.get_errno())}"


def _mount(source, target, fstype, flags, data=None):
    enc = [None if v is None else v.encode() for v in (source, target, fstype, data)]
    return _libc is not None and _libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]) == 0


def _below(path, top):
    return path != top and path.startswith(top.rstrip("/") + "/")


def _blocked_top(path):
    """The topmost ancestor of `path` that others cannot search, or None."""
    parts = path.split("/")
    for i in range(2, len(parts)):
        d = "/".join(parts[:i])
        try:
            if not os.stat(d).st_mode & 0o001:
                return d
        except OSError:
            return None
    return None


def mounts(workdir, needed, hide, tmp_mb, root):
    """Set the child's view up (see the module's docstring); returns (what was done, notes).

    `needed`: real paths the child reads (import directories, the submission's directory);
    `hide`: the harness's own package directories; `tmp_mb`: the size of each private tmpfs."""
    done = {"private_tmp": False, "hidden": [], "exposed": 0}
    notes = []
    covers = ["/tmp", "/dev/shm"]
    wanted = [(os.path.realpath(workdir), False)]
    wanted += [(os.path.realpath(p), True) for p in needed if p and os.path.exists(p)]
    if root:
        covers += [t for t in (_blocked_top(p) for p, _ in wanted) if t is not None]
    covers = sorted({c for c in covers if os.path.isdir(c)})
    covers = [c for c in covers if not any(_below(c, o) for o in covers)]
    # Open what must stay visible before anything is covered; bind it back afterwards.
    keep = []
    for path, read_only in sorted(set(wanted), key=lambda pr: (len(pr[0]), pr)):
        if any(_below(path, c) for c in covers):
            try:
                keep.append((path, read_only, os.open(path, O_PATH | os.O_CLOEXEC)))
            except OSError as exc:
                notes.append(f"{path} not kept visible: {exc.strerror}")
    try:
        for c in covers:
            private = c in ("/tmp", "/dev/shm")
            opts = f"mode={'1777' if private else '755'},size={tmp_mb if private else 1}m"
            if not _mount("bpv-tmp", c, "tmpfs", MS_NOSUID | MS_NODEV, opts):
                notes.append(_err(f"no private {c}"))
                return done, notes
        done["private_tmp"] = True
        for path, read_only, fd in keep:
            if not _make_target(path, fd):
                notes.append(f"{path} not kept visible")
                continue
            if not _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND):
                notes.append(_err(f"{path} not kept visible"))
                continue
            if read_only and not _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV):
                notes.append(_err(f"{path} not made read-only"))
            done["exposed"] += 1
    finally:
        for _, _, fd in keep:
            os.close(fd)
    for d in hide:
        if os.path.isdir(d):
            if _mount("bpv-hidden", d, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=555,size=4k"):
                done["hidden"].append(os.path.basename(d))
            else:
                notes.append(_err(f"{os.path.basename(d)} not hidden"))
    return done, notes


def _make_target(path, fd):
    """An empty directory (or file) at `path` to bind onto, with search rights for all."""
    if os.path.lexists(path):
        return True
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, mode=0o755, exist_ok=True)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.mkdir(path, 0o755)
        else:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        return True
    except OSError:
        return False


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi():
    """The kernel's Landlock ABI version, 0 without Landlock."""
    nrs = _SYSCALLS.get(platform.machine())
    if _libc is None or nrs is None:
        return 0
    abi = _libc.syscall(ctypes.c_long(nrs[0]), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(abi), 0)


def landlock(writable):
    """Restrict this process (and what it starts) to writing below the `writable` paths only,
    with no TCP and, where the ABI has them, no signals or abstract sockets out of its domain.
    Returns (the ABI in force, 0 if none, notes)."""
    abi = landlock_abi()
    if not abi:
        return 0, ["Landlock not available: writes are limited by file permissions and the mounts only"]
    create, add, restrict = _SYSCALLS[platform.machine()]
    fs = _FS_WRITES | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(fs, _NET_TCP if abi >= 4 else 0, _SCOPES if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(ctypes.c_long(create), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0, [_err("Landlock ruleset not created")]
    notes = []
    try:
        for path in writable:
            try:
                fd = os.open(path, O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
                allowed = fs if is_dir else _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
                rule = _PathBeneath(allowed, fd)
                if _libc.syscall(ctypes.c_long(add), ctypes.c_int(ruleset), 1, ctypes.byref(rule), 0) != 0:
                    notes.append(_err(f"Landlock rule for {path} not added"))
            finally:
                os.close(fd)
        if _libc.syscall(ctypes.c_long(restrict), ctypes.c_int(ruleset), 0) != 0:
            return 0, notes + [_err("Landlock not enforced")]
    finally:
        os.close(ruleset)
    return abi, notes
