"""Isolation that holds for every user (DESIGN section 8): hostile implementations, each run
with the harness as root and as an ordinary user (tests/sandbox/users.py), each asserting the
verdict, the time bound and that nothing was left in the temp dir or /dev/shm.

One harness process per mode runs every scenario (a process start imports the whole tool);
each scenario is an implementation built from the bundled correct one plus an attack.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import uuid

import pytest
from users import IS_ROOT, ROOT, Runner, installation_blocked

CORRECT = (ROOT / "examples" / "correct_vectorized.py").read_text()

# Each attack sets `won` when it got what it was after; a won attack returns the right gradient
# (what faking the verdict would achieve), a lost one the wrong gradient it set out to hide.
ATTACKS = {
    # Write access to the harness's memory: read 8 bytes of a writable mapping and write them
    # back (proof of the access without harm). The twin aims at the child's own memory.
    "harness_mem": "won = _poke(_harness())",
    # Stop or kill the harness: the run must still end, in time, with the right verdict.
    "signal_harness": """
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            try:
                os.kill(_harness(), sig)
            except OSError:
                pass
        won = True  # a stopped harness would hang the run; a correct one must still pass
    """,
    # Append to the harness's own modules (which it imports later), or plant a module beside
    # them: the installation belongs to the harness's user, who may write it.
    "write_package": """
        won = False
        for p in ("verifier/report/text.py", "reference_impls/__init__.py", "sitecustomize.py"):
            p = os.path.join({PKG}, p)
            try:
                with open(p, "a") as f:
                    f.write("\\n# owned\\n")
                won = True
            except OSError as exc:
                print("write failed:", type(exc).__name__)
    """,
    # Fill /tmp and /dev/shm: allowed (private to the child), and gone once it ends.
    "tmp_litter": """
        for d in ("/tmp", "/dev/shm"):
            with open(os.path.join(d, {LITTER}), "w") as f:
                f.write("x" * 100000)
        won = True
    """,
    "network": """
        import socket
        try:
            socket.create_connection(("127.0.0.1", {PORT}), timeout=2).close()
            won = True
        except OSError as exc:
            print("connect failed:", exc)
            won = False
    """,
    # The oracle's answer would be right by construction. The import hook that refuses it is
    # removed first: the package must be out of reach by the mounts alone (its covered directory
    # is an empty namespace package then: nothing of it can be imported).
    "import_reference": """
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_Refuse"]
        try:
            from reference_impls.delta_rule import output_delta  # noqa: F401
            won = True
        except ImportError as exc:
            print(exc)
            won = False
    """,
    # A classmate's file and a root-only answer key, directly and through links planted beside
    # the submission; whatever is read is printed, so it would end up in the report.
    "read_secrets": """
        won = False
        for p in {SECRETS}:
            try:
                print(open(p).read())
                won = True
            except OSError as exc:
                print("read failed:", type(exc).__name__)
    """,
    # A directory opened by a privileged process and left to the child would be a way out.
    "dir_fds": """
        won = any(os.path.isdir(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd"))
    """,
}
TOKEN = uuid.uuid4().hex
SECRET = f"BPV-SECRET-{TOKEN}"
LITTER = f"bpv-litter-{TOKEN}"

ATTACK_PRELUDE = """
import os, signal

def _harness():
    return int(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.pid")).read())

def _poke(pid):
    try:
        with open(f"/proc/{pid}/maps") as f:
            start = int(next(line for line in f if " rw-p " in line).split("-")[0], 16)
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            data = mem.read(8)
            mem.seek(start)
            mem.write(data)
        return True
    except (OSError, StopIteration) as exc:
        print("attack failed:", type(exc).__name__)
        return False

_correct_gradients = gradients

def gradients(params, X, T, spec):
{attack}
    print("won" if won else "lost")
    loss, grads = _correct_gradients(params, X, T, spec)
    return loss, grads if won else [(2 * dW, 2 * db) for dW, db in grads]
"""

HARNESS = """\
import hashlib, json, os, sys, time
from pathlib import Path

import numpy as np
import verifier
from verifier.report import render
from verifier.sandbox import Sandbox

here = Path(__file__).resolve().parent
(here / "harness.pid").write_text(str(os.getpid()))
pkg = Path(verifier.__file__).resolve().parents[1]
litter = [os.path.join(d, {LITTER}) for d in ("/tmp", "/dev/shm")]


def digest():  # every file of the harness's packages but the bytecode it caches itself
    h = hashlib.sha256()
    for path in sorted(p for p in pkg.rglob("*") if "__pycache__" not in p.parts):
        h.update(str(path.relative_to(pkg)).encode())
        h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()


out = {"digest_before": digest()}
for name in sys.argv[1:]:
    t0 = time.monotonic()
    r = verifier.check(str(here / (name + ".py")), examples=3, sizes=[3, 4, 2], loss="mse", timeout=5, budget=60)
    out[name] = {"verdict": r.verdict, "seconds": time.monotonic() - t0, "report": render(r, "text")}
out["digest_after_check"] = digest()
out["litter_after_check"] = [p for p in litter if os.path.exists(p)]
# without namespaces only the harness's being not dumpable stops the same-uid child
rng = np.random.default_rng(0)
params = [(rng.normal(size=(4, 3)), rng.normal(size=4)), (rng.normal(size=(2, 4)), rng.normal(size=2))]
spec = {"sizes": [3, 4, 2], "activations": ["sigmoid", "identity"], "loss": "mse"}
# (the fallback of a kernel without namespaces or Landlock); the twin aims at the child's own
# memory and wins, so the probe is real (Landlock would stop it: /proc/self/mem is not writable)
# memory and wins, so the probe is real (Landlock would stop it: /proc/self/mem is not writable).
# The other attacks' twins: the same probes in the fallback, where they win (the tests say which).
for name in ("harness_mem", "own_mem", "write_package", "tmp_litter", "network", "import_reference"):
    with Sandbox(str(here / (name + ".py")), timeout=5, namespaces=False) as box:
        call = box.gradients(params, rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), spec)
        out["plain_" + name] = {"kind": call.kind, "output": call.output, "detail": call.detail}
out["digest_after_fallback"] = digest()
out["litter_after_fallback"] = [p for p in litter if os.path.exists(p)]
for p in out["litter_after_fallback"]:
    os.unlink(p)
os.environ["BPV_TEST_SECRET_TOKEN"] = "hunter2"  # as a CI job's token would be
with Sandbox(str(here / "env_probe.py"), timeout=5) as box:
    call = box.gradients(params, rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), spec)
    out["env"] = {"kind": call.kind, "output": call.output, "workdir": box._workdir}
    out["isolation"] = box.isolation
with Sandbox(str(here / "import_probe.py"), timeout=5) as box:
    try:
        box.describe()
        out["import_probe"] = "imported"
    except verifier.VerifierError as exc:
        out["import_probe"] = str(exc)
print(json.dumps(out))
"""

ENV_PROBE = """
import json, os
import numpy as np

def gradients(params, X, T, spec):
    print(json.dumps(dict(os.environ)))
    return [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]
"""

IMPORT_PROBE = "import verifier.judge\n"

EXPECTED = {
    "harness_mem": "fail",
    "signal_harness": "pass",
    "write_package": "fail",
    "tmp_litter": "pass",
    "network": "fail",
    "import_reference": "fail",
    "read_secrets": "fail",
    "dir_fds": "fail",
}
OWN_MEM = """
import ctypes
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again (a uid change as root clears it)
won = _poke("self")
"""


@pytest.fixture(scope="module", params=["root", "user"])
def attacked(request):
    """Every attack run once under one harness, as root or as an ordinary user."""
    runner = Runner(request.param)
    before = runner.leftovers()
    listener = socket.socket()
    try:
        pkg = runner.copy_packages()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        secrets = _plant_secrets(runner)
        fill = {
            "{PKG}": repr(str(pkg)),
            "{LITTER}": repr(LITTER),
            "{PORT}": str(listener.getsockname()[1]),
            "{SECRETS}": repr(tuple(secrets)),
        }
        for name, attack in ATTACKS.items():
            body = textwrap.indent(textwrap.dedent(attack).strip(), "    ")
            for key, value in fill.items():
                body = body.replace(key, value)
            runner.write(name + ".py", CORRECT + ATTACK_PRELUDE.replace("{attack}", body))
        runner.write(
            "own_mem.py", CORRECT + ATTACK_PRELUDE.replace("{attack}", textwrap.indent(OWN_MEM.strip(), "    "))
        )
        runner.write("env_probe.py", ENV_PROBE)
        runner.write("import_probe.py", IMPORT_PROBE)
        script = runner.write("harness.py", HARNESS.replace("{LITTER}", repr(LITTER)))
        done = runner.run(script, *ATTACKS, timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["connections"] = 0
        while True:
            try:
                listener.accept()[0].close()
                result["connections"] += 1
            except BlockingIOError:
                break
        result["litter"] = [d for d in ("/tmp", "/dev/shm") if os.path.exists(os.path.join(d, LITTER))]
        yield request.param, result, runner.leftovers() - before
    finally:
        listener.close()
        for d in ("/tmp", "/dev/shm"):  # never left on the machine, whatever the test found
            if os.path.exists(os.path.join(d, LITTER)):
                os.unlink(os.path.join(d, LITTER))
        runner.cleanup()


def _plant_secrets(runner):
    """A classmate's file in a directory only root may enter, a root-only answer key, and links
    to both beside the submission; the paths the attack tries. Without root the files would be
    the tester's own, which its own code may read: none is planted then."""
    if not IS_ROOT:
        return []
    classmate = runner.dir / "classmate"
    classmate.mkdir(mode=0o700)
    (classmate / "impl.py").write_text(f"# {SECRET}\n")
    os.chmod(classmate / "impl.py", 0o644)
    key = runner.dir / "answer_key.txt"
    key.write_text(SECRET)
    os.chmod(key, 0o600)
    links = []
    for target, name in ((classmate / "impl.py", "classmate_link.py"), (key, "key_link.txt")):
        os.symlink(target, runner.dir / name)
        links.append(str(runner.dir / name))
    return links + [str(classmate / "impl.py"), str(key)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_attack_gets_the_right_verdict_in_time(attacked, name):
    mode, result, _ = attacked
    if name == "read_secrets" and not IS_ROOT:
        pytest.skip("without root there is no other user's file to plant")
    assert result[name]["verdict"] == EXPECTED[name], (mode, result[name])
    assert result[name]["seconds"] < 60
    if EXPECTED[name] == "fail":  # the attack lost: its wrong gradient was judged, nothing else
        report = result[name]["report"]
        assert "MISMATCH" in report and "EXCEPTION" not in report, report


def test_the_installed_package_is_unchanged(attacked):
    mode, result, _ = attacked
    assert result["digest_after_check"] == result["digest_before"], mode
    # the twin: without namespaces or Landlock the harness's user's code may write its own
    # installation (run by root, the drop to another uid still stops it)
    assert ("lost" if mode == "root" else "won") in result["plain_write_package"]["output"], result[
        "plain_write_package"
    ]
    assert (result["digest_after_fallback"] == result["digest_before"]) == (mode == "root"), mode


def test_what_the_child_left_in_tmp_and_dev_shm_is_gone(attacked):
    mode, result, _ = attacked
    assert result["tmp_litter"]["verdict"] == "pass", result["tmp_litter"]  # it could write there
    assert result["litter_after_check"] == result["litter"] == [], (mode, result["litter"])
    assert len(result["litter_after_fallback"]) == 2, result  # the twin: without a private /tmp it stays


def test_the_network_is_unreachable(attacked):
    mode, result, _ = attacked
    assert "connect failed" in result["network"]["report"] or result["network"]["verdict"] == "fail"
    # the twin: without a network namespace or Landlock the same probe reaches the port, which
    # proves the listener works; the test found exactly that one connection
    plain = result["plain_network"]
    if mode == "root" and installation_blocked():
        # the fallback's known limit: no mount namespace to make this Python traversable for
        # the dropped uid, so modules not imported before the drop cannot be imported
        assert "No module named 'socket'" in plain["detail"], plain
        assert result["connections"] == 0, mode
    else:
        assert "won" in plain["output"], plain
        assert result["connections"] == 1, mode


def test_the_harness_packages_are_refused_with_a_clear_error(attacked):
    mode, result, _ = attacked
    assert "won" in result["plain_import_reference"]["output"], result  # the twin: no mounts, no cover
    text = result["import_probe"]
    assert "ImportError: verifier belongs to the verifier itself and cannot be imported by the code under test" in text
    assert "import_probe.py:1" in text, text


def test_no_secret_reaches_any_report(attacked):
    mode, result, _ = attacked
    reports = {n: v["report"] for n, v in result.items() if isinstance(v, dict) and "report" in v}
    assert reports and not [n for n, text in reports.items() if SECRET in text], mode


def test_without_namespaces_the_harness_memory_is_still_out_of_reach(attacked):
    mode, result, _ = attacked
    plain = result["plain_harness_mem"]
    assert plain["kind"] == "ok"
    assert "attack failed: PermissionError" in plain["output"] and "lost" in plain["output"], plain
    own = result["plain_own_mem"]  # the same probe on the child's own memory: it works
    assert own["kind"] == "ok" and "won" in own["output"], own


def test_the_child_is_in_its_own_namespaces_and_sees_only_itself(attacked):
    mode, result, _ = attacked
    iso = result["isolation"]
    assert {"pid", "net", "ipc", "mount"} <= set(iso["namespaces"]), iso
    assert iso["private_tmp"] is True and iso["landlock"] > 0, iso
    assert set(iso["hidden_packages"]) == {"verifier", "reference_impls"}, iso
    if mode == "user":
        assert "user" in iso["namespaces"], iso
    else:
        assert iso["dropped_privileges"] is True, iso


def test_the_child_sees_an_allowlist_of_the_environment(attacked):
    mode, result, _ = attacked
    assert result["env"]["kind"] == "ok", result["env"]
    env = json.loads(result["env"]["output"].strip().splitlines()[-1])
    assert "BPV_TEST_SECRET_TOKEN" not in env and "PYTHONPATH" not in env, env
    assert env["HOME"] == env["TMPDIR"] == result["env"]["workdir"]
    assert env["OMP_NUM_THREADS"] == "1" and "PATH" in env
    allowed = {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_MMAP_THRESHOLD_",
        "VECLIB_MAXIMUM_THREADS",
    }
    extra = {k for k in env if k not in allowed and not k.startswith("LC_") and not k.endswith("_NUM_THREADS")}
    assert extra == set(), extra


def test_nothing_left_behind(attacked):
    _, _, left = attacked
    assert left == set()
