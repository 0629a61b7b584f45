"""A child started early (verifier/sandbox/prestart.py) serves the first Sandbox that fits, and
one nobody takes is killed with its directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from verifier.sandbox import Sandbox, prestart

IMPL = """\
import numpy as np

def gradients(params, X, T, spec):
    return [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]
"""
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _nothing_waiting(tmp_path, monkeypatch):
    """No child left from another test; children's directories in a temp dir of this test's
    own, so that tests running beside it never see them."""
    private = tmp_path / "tmp"
    private.mkdir()
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    prestart.discard()
    yield
    prestart.discard()


def _impl(tmp_path) -> str:
    os.chmod(tmp_path, 0o755)  # run as root, the child reads it as its own uid
    path = tmp_path / "impl.py"
    path.write_text(IMPL)
    return str(path)


def _call(box: Sandbox):
    params = [(np.ones((2, 3)), np.ones(2))]
    return box.gradients(
        params, np.ones((4, 3)), np.ones((4, 2)), {"sizes": [3, 2], "activations": ["identity"], "loss": "sse"}
    )


def test_the_first_sandbox_takes_the_waiting_child_and_it_works(tmp_path):
    assert prestart.prestart()
    pid, _ = prestart.waiting()[(None, True)]
    with Sandbox(_impl(tmp_path)) as box:
        outcome = _call(box)
        assert outcome.kind == "ok", outcome.detail
        assert box.starts == 1
        assert box.pid == pid  # the early child, not a new one
    assert prestart.waiting() == {}  # given out once


def test_a_child_started_for_another_setting_is_not_taken_and_is_killed_at_the_end(tmp_path):
    assert prestart.prestart(namespaces=False)  # a Sandbox with namespaces does not fit it
    pid, workdir = prestart.waiting()[(None, False)]
    with Sandbox(_impl(tmp_path)) as box:
        assert _call(box).kind == "ok"
        assert box.pid != pid
    assert prestart.waiting() == {(None, False): (pid, workdir)}  # still waiting for its Sandbox
    prestart.discard()
    assert prestart.waiting() == {} and not os.path.exists(workdir) and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_that_died_while_waiting_is_not_given_out():
    assert prestart.prestart()
    pid, workdir = prestart.waiting()[(None, True)]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert prestart.take(None, True) is None
    assert not os.path.exists(workdir)


@pytest.mark.parametrize(
    "argv, started",
    [
        (["check", "x.py"], True),
        (["gate", "x.py", "--baseline", "b.json"], True),
        (["check", "a.py", "b.py", "--jobs", "1"], True),
        (["check", "a.py", "b.py", "--jobs", "2"], False),  # each worker starts its own
        (["check", "a.py", "b.py", "--jobs=3"], False),
        (["check", "a.py", "--scheduler", "tcp://127.0.0.1:1"], False),
        (["check", "--help"], False),
        (["check", "x.py", "--python", "/nonexistent/python"], False),  # the parser says what is wrong
        (["crosscheck"], False),
        ([], False),
    ],
)
def test_which_command_lines_start_a_child_early(argv, started):
    from verifier import cli

    cli.early_child(argv)
    assert bool(prestart.waiting()) is started


def test_python_option_keys_the_child_by_the_interpreter_it_names():
    from verifier import cli

    cli.early_child(["check", "x.py", f"--python={sys.executable}"])
    assert list(prestart.waiting()) == [(os.path.abspath(sys.executable), True)]


@pytest.mark.parametrize(
    "argv", [["--examples", "2"], ["--sizes", "nonsense"], ["--python", sys.executable, "--examples", "1"]]
)
def test_a_whole_command_leaves_no_child_directory_behind(tmp_path, argv):
    """Taken (a run), never taken (the parser refuses --sizes), or taken under --python: no
    bpv-sandbox directory outlives the command."""
    impl = _impl(tmp_path)
    private = Path(tempfile.gettempdir())  # the fixture's: this command's alone
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "check", impl, "--quiet", "--cases-dir", str(tmp_path / "cases"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(private)},
    )
    assert done.returncode in (1, 2), done.stderr  # zero gradients fail; nonsense sizes are refused
    assert "Traceback" not in done.stderr
    assert list(private.iterdir()) == []
