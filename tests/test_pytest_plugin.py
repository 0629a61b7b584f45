"""The pytest plugin, run the way a project runs it: pytest in a subprocess, on a test file that
uses the `backprop_check` fixture; once plainly and once under pytest-xdist with two workers.

Plugin autoloading is off in these runs (PYTEST_DISABLE_PLUGIN_AUTOLOAD), so the plugin comes
from `-p verifier.pytest_plugin` whether or not the package is installed, and xdist from `-p`.
The implementation is given as `--backprop-impl=PATH`: as a separate argument, the path would
take part in pytest's choice of rootdir.
"""

import os
import subprocess
import sys

import pytest
import tomllib
from conftest import EXAMPLES, ROOT

TESTS = f"""
CORRECT = {str(EXAMPLES / "correct_vectorized.py")!r}
BUGGY = {str(EXAMPLES / "bug_sign_flip.py")!r}


def test_correct(backprop_check):
    assert backprop_check(CORRECT, sizes=(3, 4, 2), loss="sse").verdict == "pass"


def test_buggy(backprop_check):
    backprop_check(BUGGY)


def test_the_option(backprop_check):
    assert backprop_check().implementation == CORRECT


def test_harness_error(backprop_check):
    backprop_check("no_such_impl.py")
"""


LAYER_TESTS = f"""
CORRECT = {str(EXAMPLES / "layers" / "correct.py")!r}
BUGGY = {str(EXAMPLES / "layers" / "classic_bugs.py")!r}


def test_correct_layers(backprop_layers):
    result = backprop_layers(CORRECT)
    assert result.verdict == "pass" and len(result.extra["layers"]) == 7


def test_some_layers_by_name(backprop_layers):
    assert [r["layer"] for r in backprop_layers(BUGGY, "tanh").extra["layers"]] == ["tanh"]


def test_buggy_layer(backprop_layers):
    backprop_layers(BUGGY, "softmax_loss", examples=20)


def test_not_a_layers_file(backprop_layers):
    backprop_layers({str(EXAMPLES / "correct_vectorized.py")!r})


def test_a_wrong_option(backprop_layers):
    backprop_layers(CORRECT, sizes=(2, 3))
"""


def run_pytest(tmp_path, *args, tests=TESTS):
    (tmp_path / "test_backprop.py").write_text(tests)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "verifier.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-rfE",
            "--backprop-examples",
            "5",
            *args,
            "test_backprop.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def assert_the_report_fails_the_buggy_test(out):
    assert "FAILED test_backprop.py::test_buggy" in out, out
    assert "MISMATCH" in out and "[sign]" in out and "wrong sign" in out  # the short report
    assert "replay: backprop-verify check" in out
    assert "Traceback" not in out and "pytest_plugin.py" not in out  # the report, not our internals
    assert "backprop-verifier could not check no_such_impl.py: cannot read" in out


def test_the_fixture_fails_wrong_gradients_with_the_report(tmp_path):
    code, out = run_pytest(tmp_path)
    assert code == 1 and "3 failed, 1 passed" in out, out
    assert_the_report_fails_the_buggy_test(out)
    assert "FAILED test_backprop.py::test_the_option" in out and "pass --backprop-impl PATH" in out


def test_it_works_under_xdist_with_the_option(tmp_path):
    pytest.importorskip("xdist")
    code, out = run_pytest(
        tmp_path, "-p", "xdist.plugin", "-n", "2", f"--backprop-impl={EXAMPLES / 'correct_vectorized.py'}"
    )
    assert code == 1 and "2 workers" in out and "2 failed, 2 passed" in out, out
    assert_the_report_fails_the_buggy_test(out)


def test_the_entry_point_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"backprop_verifier": "verifier.pytest_plugin"}
    assert any(d.startswith("pytest-xdist") for d in project["optional-dependencies"]["test"])


def test_loading_the_plugin_is_cheap():
    code = "import verifier.pytest_plugin, sys; assert 'jax' not in sys.modules and 'hypothesis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_layers_fixture_checks_a_layers_file_layer_by_layer(tmp_path):
    code, out = run_pytest(tmp_path, tests=LAYER_TESTS)
    assert code == 1 and "3 failed, 2 passed" in out, out
    assert "FAILED test_backprop.py::test_buggy_layer" in out and "layer softmax_loss dx" in out
    assert "replay: backprop-verify check" in out and "--layer softmax_loss" in out
    assert "could not check" in out and "defines no layers" in out
    assert "unknown option sizes" in out
    assert "Traceback" not in out and "pytest_plugin.py" not in out


def test_the_plugin_can_require_full_isolation(tmp_path):
    # a conftest simulates a kernel without namespaces or Landlock; the option makes that a failure
    (tmp_path / "conftest.py").write_text(
        "import verifier.sandbox.parent as parent\nparent.isolation_level = lambda iso: ('process', ())\n"
    )
    (tmp_path / "test_backprop.py").write_text(
        f"def test_correct(backprop_check):\n    backprop_check({str(EXAMPLES / 'correct_vectorized.py')!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    base = [sys.executable, "-m", "pytest", "-p", "verifier.pytest_plugin", "-p", "no:cacheprovider", "-rfE"]
    base += ["--backprop-examples", "3", "test_backprop.py"]
    for extra, code, needle in (
        (["--backprop-require-isolation"], 1, "could not check"),
        ([], 0, "1 passed"),  # the twin: the same weak machine is accepted without the option
    ):
        proc = subprocess.run(base + extra, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        out = proc.stdout + proc.stderr
        assert proc.returncode == code and needle in out, out
        if code:
            assert "--require-isolation: this machine isolates the code under test only at level 'process'" in out
