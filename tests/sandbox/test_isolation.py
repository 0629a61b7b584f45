"""Isolation that holds for every user (DESIGN section 8): hostile implementations, each run
with the harness as root and as an ordinary user (tests/sandbox/users.py), each asserting the
verdict, the time bound and that nothing was left in the temp dir or /dev/shm.

One harness process per mode runs every scenario (a process start imports the whole tool);
each scenario is an implementation built from the bundled correct one plus an attack.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from users import ROOT, Runner

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
}

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
import json, os, sys, time
from pathlib import Path

import numpy as np
import verifier
from verifier.sandbox import Sandbox

here = Path(__file__).resolve().parent
(here / "harness.pid").write_text(str(os.getpid()))
out = {}
for name in sys.argv[1:]:
    t0 = time.monotonic()
    r = verifier.check(str(here / (name + ".py")), examples=3, sizes=[3, 4, 2], loss="mse", timeout=5, budget=60)
    out[name] = {"verdict": r.verdict, "seconds": time.monotonic() - t0}
# without namespaces only the harness's being not dumpable stops the same-uid child
rng = np.random.default_rng(0)
params = [(rng.normal(size=(4, 3)), rng.normal(size=4)), (rng.normal(size=(2, 4)), rng.normal(size=2))]
spec = {"sizes": [3, 4, 2], "activations": ["sigmoid", "identity"], "loss": "mse"}
# (the fallback of a kernel without namespaces or Landlock); the twin aims at the child's own
# memory and wins, so the probe is real (Landlock would stop it: /proc/self/mem is not writable)
for name in ("harness_mem", "own_mem"):
    with Sandbox(str(here / (name + ".py")), timeout=5, namespaces=False) as box:
        call = box.gradients(params, rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), spec)
        out["plain_" + name] = {"kind": call.kind, "output": call.output, "uid": box.isolation.get("uid")}
os.environ["BPV_TEST_SECRET_TOKEN"] = "hunter2"  # as a CI job's token would be
with Sandbox(str(here / "env_probe.py"), timeout=5) as box:
    call = box.gradients(params, rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), spec)
    out["env"] = {"kind": call.kind, "output": call.output, "workdir": box._workdir}
    out["isolation"] = box.isolation
print(json.dumps(out))
"""

ENV_PROBE = """
import json, os
import numpy as np

def gradients(params, X, T, spec):
    print(json.dumps(dict(os.environ)))
    return [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]
"""

EXPECTED = {"harness_mem": "fail", "signal_harness": "pass"}
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
    try:
        for name, attack in ATTACKS.items():
            body = textwrap.indent(textwrap.dedent(attack).strip(), "    ")
            runner.write(name + ".py", CORRECT + ATTACK_PRELUDE.replace("{attack}", body))
        runner.write(
            "own_mem.py", CORRECT + ATTACK_PRELUDE.replace("{attack}", textwrap.indent(OWN_MEM.strip(), "    "))
        )
        runner.write("env_probe.py", ENV_PROBE)
        script = runner.write("harness.py", HARNESS)
        done = runner.run(script, *ATTACKS, timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        yield request.param, result, runner.leftovers() - before
    finally:
        runner.cleanup()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_attack_gets_the_right_verdict_in_time(attacked, name):
    mode, result, _ = attacked
    assert result[name]["verdict"] == EXPECTED[name], (mode, result[name])
    assert result[name]["seconds"] < 60


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
