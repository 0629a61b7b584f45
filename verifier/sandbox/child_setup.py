"""The sandbox child's setup, before any user code: import path, resource limits, privileges.

Loaded by path by `verifier/sandbox/child.py` (see there) while the child is still privileged; `init`
answers the harness's "init" request. Standard library only.

When started by root, `init` drops to an unprivileged uid. The Python installation may then be
unreadable to that uid (e.g. under root's home), so every import directory is opened first and
imported through /proc/self/fd/N, and the sources of a user directory the new uid cannot list
are read beforehand and imported from memory.
"""

import ctypes
import importlib
import importlib.abc
import importlib.util
import linecache
import os
import resource
import sys


def _remap_to_fds(paths, fd_prefixes):
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
        fd_prefixes.append((fdpath, p))
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
                    pkg_path[i] = mapping[p] + q[len(p) :]
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
        spec = importlib.util.spec_from_loader(fullname, self, origin=filename, is_package=is_package)
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
            elif depth < 4 and n.isidentifier() and os.path.isfile(os.path.join(full, "__init__.py")):
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


def init(header, fd_prefixes, namespaces=((), ())):
    """Set the process up as the "init" request asks; the isolation achieved, with notes on
    what could not be done. `fd_prefixes` receives the (fd path, real path) pairs of the
    import directories opened for after the privilege drop; `namespaces` is what
    child_ns.enter returned (the names entered, notes)."""
    names, ns_notes = namespaces
    notes = list(ns_notes)
    isolation = {"uid": os.getuid(), "dropped_privileges": False, "namespaces": list(names)}
    workdir = header.get("workdir")
    if workdir:
        os.chdir(workdir)
    paths = [str(p) for p in header.get("sys_path", [])]
    drop = header.get("drop") and os.geteuid() == 0
    finder = None
    if drop:
        finder = _preload_unlistable(header, paths)
        paths = _remap_to_fds(paths, fd_prefixes)
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
        notes.append("privileges not dropped (the harness is not root): the implementation runs as the harness's user")
    if finder is not None:
        sys.meta_path.append(finder)
        isolation["preloaded_sources"] = finder.files
    if not _prctl(38, 1):  # PR_SET_NO_NEW_PRIVS: no setuid binaries from here on
        notes.append("PR_SET_NO_NEW_PRIVS not set")
    # PR_SET_PDEATHSIG (cleared by a uid change, so set after it): die with the harness.
    # In a pid namespace the parent is the namespace's init, which dies with the harness.
    if _prctl(1, 9) and "pid" not in names and os.getppid() != header.get("ppid"):
        os._exit(0)
    isolation["notes"] = notes
    return isolation
