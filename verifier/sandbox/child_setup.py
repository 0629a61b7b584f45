"""The sandbox child's setup, before any user code: import path, filesystem, limits, privileges.

Loaded by path by `verifier/sandbox/child.py` (see there) while the child is still privileged; `init`
answers the harness's "init" request. Standard library only.

Nothing is read on the user's behalf with the child's start-up privileges: the user's code
imports only what its own uid can read. Run by root, the child drops to an unprivileged uid;
an import directory below a directory that uid cannot search (a Python under root's home) is
made traversable by a bind in the child's mount namespace (verifier/sandbox/child_fs.py), not by
reading it beforehand or by descriptors opened as root. The harness's own packages are covered
in that namespace and refused by an import hook with a clear message.
"""

import ctypes
import importlib
import importlib.abc
import os
import resource
import sys


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


class _Refuse(importlib.abc.MetaPathFinder):
    """First on sys.meta_path: the harness's own packages are not for the code under test."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names:
            raise ImportError(
                f"{fullname} belongs to the verifier itself and cannot be imported by the code under test: "
                "compute the gradients with your own code (numpy and the standard library are available)",
                name=fullname,
            )
        return None


def _hide_packages(names):
    """Refuse `names` on import, and drop the meta path finders that map them (editable installs)."""
    kept = []
    for finder in sys.meta_path:
        mapping = getattr(getattr(sys.modules.get(getattr(finder, "__module__", "")), "MAPPING", None), "keys", None)
        if mapping is not None and set(mapping()) & set(names):
            continue
        kept.append(finder)
    sys.meta_path[:] = [_Refuse(names)] + kept


def init(header, namespaces=((), ()), fs=None, drop_caps=None):
    """Set the process up as the "init" request asks; the isolation achieved, with notes on
    what could not be done. `namespaces` is what child_ns.enter returned (the names entered,
    notes); `fs` the child_fs module; `drop_caps` child_ns.drop_caps (called once the mounts
    are made, when the child runs in a user namespace of its own)."""
    names, ns_notes = namespaces
    notes = list(ns_notes)
    root = os.geteuid() == 0
    isolation = {
        "uid": os.getuid(),
        "dropped_privileges": False,
        "namespaces": list(names),
        "private_tmp": False,
        "landlock": 0,
        "hidden_packages": [],
    }
    workdir = header.get("workdir")
    paths = [str(p) for p in header.get("sys_path", [])]
    impl_dir = (header.get("impl") or {}).get("dir")
    if fs is not None and "mount" in names and workdir:
        done, fs_notes = fs.mounts(
            workdir,
            paths + ([impl_dir] if impl_dir else []),
            header.get("hide", []),
            int(header.get("tmp_mb", 64)),
            root,
        )
        notes += fs_notes
        isolation["private_tmp"] = done["private_tmp"]
        isolation["hidden_packages"] = done["hidden"]
    if "user" in names and (drop_caps is None or not drop_caps()):
        # a worker that could undo its own mounts must not run user code
        os.write(2, b"capabilities of the user namespace not dropped\n")
        os._exit(71)
    if workdir:
        os.chdir(workdir)
    sys.path[:] = paths
    sys.path_importer_cache.clear()
    _hide_packages(header.get("hide_names", ["verifier", "reference_impls"]))
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
            notes.append(
                f"memory_mb={memory_mb} is below what Python and numpy already use ({used} MB of address space)"
            )
            isolation["fatal"] = True
        limits["RLIMIT_AS"] = int(memory_mb) * 2**20
    for name, value in limits.items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            isolation[name] = value
        except (ValueError, OSError, AttributeError) as exc:
            notes.append(f"{name} not set: {exc}")

    if header.get("drop") and root:
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
        stdlib = os.path.dirname(os.__file__)
        if isolation["dropped_privileges"] and not os.access(stdlib, os.R_OK | os.X_OK):
            notes.append(
                f"the Python installation ({stdlib}) is not readable to uid {isolation['uid']} and no mount "
                "namespace makes it so: modules not imported before the drop cannot be imported"
            )
    elif not root:
        notes.append("privileges not dropped (the harness is not root): the implementation runs as the harness's user")
    if not _prctl(38, 1):  # PR_SET_NO_NEW_PRIVS: no setuid binaries from here on
        notes.append("PR_SET_NO_NEW_PRIVS not set")
    # PR_SET_PDEATHSIG (cleared by a uid change, so set after it): die with the harness.
    # In a pid namespace the parent is the namespace's init, which dies with the harness.
    if _prctl(1, 9) and "pid" not in names and os.getppid() != header.get("ppid"):
        os._exit(0)
    if impl_dir and not os.access(impl_dir, os.R_OK | os.X_OK):
        isolation["unreadable"] = impl_dir
    if fs is not None:
        writable = [workdir] + (["/tmp", "/dev/shm"] if isolation["private_tmp"] else []) + [os.devnull]
        isolation["landlock"], ll_notes = fs.landlock([w for w in writable if w])
        notes += ll_notes
    isolation["notes"] = notes
    return isolation
