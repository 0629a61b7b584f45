"""Running the harness as root and as an ordinary user, for the isolation tests.

`runner(mode)` gives a function that runs `python SCRIPT ARGS...` with this interpreter, as
root ("root") or as an ordinary user ("user"), in a directory that user owns. Run by root, the
ordinary user is one these tests create (`bpv-test`, no home); run by an ordinary user, the
"user" half is that user and the "root" half is skipped. When this interpreter sits below a
directory an ordinary user cannot search (e.g. a Python installed under root's home), the user
half runs in a private mount namespace where only the installation's own directory is exposed
there: the interpreter is the same, nothing on the machine changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

IS_ROOT = os.geteuid() == 0
TEST_USER = "bpv-test"
ROOT = Path(__file__).resolve().parents[1]
CHILD_UID_BASE = 2_000_000_000  # the harness's per-child uids when run as root


def _test_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        pytest.skip("running as root, but there is no useradd to create an ordinary user")
    done = subprocess.run([useradd, "-M", "-s", "/usr/sbin/nologin", TEST_USER], capture_output=True, text=True)
    if done.returncode != 0 and "exists" not in done.stderr:
        pytest.skip(f"could not create the test user {TEST_USER}: {done.stderr.strip()}")
    return pwd.getpwnam(TEST_USER)


def _blocked_dirs(paths: list[str]) -> list[tuple[str, str]]:
    """(directory others cannot search, its child on the way to a path) pairs."""
    found = []
    for path in paths:
        parts = Path(path).parts
        for i in range(1, len(parts) - 1):
            d = os.path.join(*parts[: i + 1])
            try:
                st = os.stat(d)
            except OSError:
                break
            if not st.st_mode & 0o001 and (d, parts[i + 1]) not in found:
                found.append((d, parts[i + 1]))
    return found


def installation_blocked() -> bool:
    """Whether this Python sits below a directory an ordinary user cannot search."""
    return bool(_blocked_dirs([os.path.realpath(sys.executable), sys.prefix, sys.base_prefix]))


def _exposing_script(blocked: list[tuple[str, str]]) -> str:
    lines = ["set -e"]
    for d, child in blocked:
        q, c = shlex.quote(d), shlex.quote(os.path.join(d, child))
        lines += [
            "t=$(mktemp -d)",
            f'mount --bind {c} "$t"',
            f"mount -t tmpfs -o mode=755,size=1m bpv-expose {q}",
            f"mkdir -p {c}",
            f'mount --move "$t" {c}',
            'rmdir "$t"',
        ]
    return "\n".join(lines + ['exec "$@"'])


_HELD = {"fd": -1, "count": 0}


def _hold(acquire: bool) -> None:
    """One runner at a time on this machine (every test process, every xdist worker): they all
    run as the same test user, and what one run has in /dev/shm or /tmp meanwhile (a class
    run's semaphores) would read as another's leftovers. Re-entrant within a process."""
    if acquire:
        if _HELD["count"] == 0:
            fd = os.open(os.path.join(tempfile.gettempdir(), "bpv-iso-test-lock"), os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            _HELD["fd"] = fd
        _HELD["count"] += 1
    elif _HELD["count"] > 0:
        _HELD["count"] -= 1
        if _HELD["count"] == 0:
            os.close(_HELD["fd"])  # closing the file releases the lock


class Runner:
    def __init__(self, mode: str):
        self.mode = mode
        self.uid = os.getuid()
        self.prefix: list[str] = []
        if mode == "root" and not IS_ROOT:
            pytest.skip("the root half needs root")
        if mode == "user" and IS_ROOT:
            user = _test_user()
            self.uid = user.pw_uid
            drop = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
            if shutil.which("setpriv") is None:
                pytest.skip("running as root, but there is no setpriv to run as the test user")
            blocked = _blocked_dirs([os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, str(ROOT)])
            if blocked:
                if shutil.which("unshare") is None:
                    pytest.skip("this Python is below a directory the test user cannot search, and no unshare")
                self.prefix = ["unshare", "--mount", "sh", "-c", _exposing_script(blocked), "sh"] + drop
            else:
                self.prefix = drop
        self.outside_dir: Path | None = None
        _hold(True)
        self.dir = Path(tempfile.mkdtemp(prefix="bpv-iso-test-"))
        os.chmod(self.dir, 0o755)
        self.pythonpath = str(ROOT)
        self.tmp = self.dir / "tmp"  # the harness's temp dir: what is left there is a leak
        self.tmp.mkdir()
        if self.uid != os.getuid():
            os.chown(self.dir, self.uid, -1)
            os.chown(self.tmp, self.uid, -1)

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        if self.uid != os.getuid():
            os.chown(path, self.uid, -1)
        return path

    def copy_packages(self) -> Path:
        """The harness's packages copied to a directory of the harness's user, who may write
        them (as an installation owned by its user is), and run from there."""
        pkg = self.dir / "pkg"
        for name in ("verifier", "reference_impls"):
            shutil.copytree(ROOT / name, pkg / name, ignore=shutil.ignore_patterns("__pycache__"))
        if self.uid != os.getuid():
            for path in [pkg, *pkg.rglob("*")]:
                os.chown(path, self.uid, -1)
        self.pythonpath = str(pkg)
        return pkg

    def run(self, script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": self.pythonpath,
            "HOME": str(self.dir),
            "TMPDIR": str(self.tmp),
        }
        return subprocess.run(
            self.prefix + [sys.executable, str(script), *args],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def outside(self) -> Path:
        """A directory of the harness's user beside (not inside) the work directory, holding a
        file of that user's (`victim.txt`): where a planted link would make the harness write.
        Compare `snapshot(runner.outside_dir)` before and after a run."""
        if self.outside_dir is None:
            self.outside_dir = Path(tempfile.mkdtemp(prefix="bpv-iso-test-out-"))
            os.chmod(self.outside_dir, 0o755)
            (self.outside_dir / "victim.txt").write_text("the user's own file\n")
            if self.uid != os.getuid():
                os.chown(self.outside_dir, self.uid, -1)
                os.chown(self.outside_dir / "victim.txt", self.uid, -1)
        return self.outside_dir

    def chown(self, path: Path) -> Path:
        """`path` (and all below it) made the harness's user's, as files that user made are."""
        if self.uid != os.getuid():
            for p in [path, *(path.rglob("*") if path.is_dir() and not path.is_symlink() else [])]:
                os.chown(p, self.uid, -1, follow_symlinks=False)
        return path

    def cli(self, runs: list, timeout: float = 180) -> list[dict]:
        """Each argv of `runs` through `verifier.cli.main`, in order, in one harness process run
        as this runner's user (a process start imports the whole tool): per run its exit code,
        standard output and error, and seconds. A list item that is a dict {"call": "module:fn",
        "kwargs": {...}} calls that function instead (its value must be JSON)."""
        spec = self.write("cli_runs.json", json.dumps(runs))
        script = self.write("cli_harness.py", CLI_HARNESS)
        done = self.run(script, str(spec), timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.outside_dir is not None:
            shutil.rmtree(self.outside_dir, ignore_errors=True)
        _hold(False)

    def leftovers(self) -> set[str]:
        """What is in the harness's temp dir, and entries of /tmp and /dev/shm owned by the
        test user or by a child of a root harness (compare before and after a run)."""
        return {str(p) for p in self.tmp.iterdir()} | leftovers()


CLI_HARNESS = """\
import contextlib, importlib, io, json, sys, time

from verifier import cli


def run(item):
    if isinstance(item, dict):
        module, name = item["call"].split(":")
        return {"value": getattr(importlib.import_module(module), name)(**item.get("kwargs", {}))}
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(item)
        except SystemExit as exc:  # argparse
            code = exc.code
    return {"code": code, "out": stdout.getvalue(), "err": stderr.getvalue()}


if __name__ == "__main__":  # a class run's workers start by spawn, which imports this file again
    out = []
    for item in json.load(open(sys.argv[1])):
        t0 = time.monotonic()
        out.append({**run(item), "seconds": time.monotonic() - t0})
    print(json.dumps(out))
"""


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every entry below `roots` (not following links): its type and mode, owner, and the
    digest of a regular file's bytes or a link's target. Equal before and after a run: nothing
    there changed."""
    found: dict[str, tuple] = {}
    for root in roots:
        for p in [root, *root.rglob("*")]:
            st = os.lstat(p)
            if p.is_symlink():
                what = os.readlink(p)
            elif p.is_file():
                what = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                what = ""
            found[str(p)] = (st.st_mode, st.st_uid, what)
    return found


def leftovers() -> set[str]:
    """Entries of /tmp and /dev/shm owned by the test user or by a child of a root harness."""
    found = set()
    test_uid = None if IS_ROOT else os.getuid()
    try:
        test_uid = pwd.getpwnam(TEST_USER).pw_uid if IS_ROOT else test_uid
    except KeyError:
        pass
    for d in (tempfile.gettempdir(), "/dev/shm"):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            try:
                uid = os.lstat(os.path.join(d, n)).st_uid
            except OSError:
                continue
            # a root harness's child uids in /tmp only in /dev/shm: other harnesses on the
            # machine make sandbox dirs in /tmp with such uids all the time
            child = uid >= CHILD_UID_BASE and d == "/dev/shm"
            if child or (uid == test_uid and not n.startswith("bpv-iso-test-")):
                found.add(os.path.join(d, n))
    return found
