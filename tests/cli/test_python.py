"""`--python PATH`: the checked code runs under the user's interpreter, with its libraries
(DESIGN section 3); a module missing here but present in another python on PATH is named with
the --python that finds it."""

from __future__ import annotations

import os
import subprocess
import sys
import venv

import pytest
from conftest import ROOT

CODE = (
    (ROOT / "examples" / "correct_vectorized.py")
    .read_text()
    .replace("import numpy as np\n", "import numpy as np\nimport bpv_only_in_other_env\n", 1)
)


@pytest.fixture(scope="module")
def other_env(tmp_path_factory):
    """A second venv (sharing this interpreter's site packages for numpy) holding a module no
    other environment has."""
    where = tmp_path_factory.mktemp("other-venv")
    venv.EnvBuilder(system_site_packages=True, symlinks=True).create(where)
    python = where / "bin" / "python"
    probe = subprocess.run([python, "-c", "import numpy"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no numpy reachable from a --system-site-packages venv of this interpreter")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    (where / purelib / "bpv_only_in_other_env.py").write_text("VALUE = 1\n")
    return python


def _check(impl, *extra, env=None):
    argv = [sys.executable, "-m", "verifier", "check", str(impl), "--examples", "3", *extra]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)


def test_code_importing_a_library_of_another_env_passes_under_its_python(other_env, tmp_path):
    impl = tmp_path / "uses_lib.py"
    impl.write_text(CODE)
    p = _check(impl, "--python", str(other_env))
    assert p.returncode == 0 and p.stdout.startswith("PASS"), p.stderr


def test_without_it_the_error_names_the_python_that_has_the_module(other_env, tmp_path):
    impl = tmp_path / "uses_lib.py"
    impl.write_text(CODE)
    env = {**os.environ, "PATH": f"{other_env.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    p = _check(impl, env=env)
    assert p.returncode == 2 and "No module named 'bpv_only_in_other_env'" in p.stderr
    assert f"run again with --python {other_env.parent}" in p.stderr and "Traceback" not in p.stderr


def test_a_module_no_python_has_gets_no_such_hint(tmp_path):
    impl = tmp_path / "uses_nothing.py"
    impl.write_text(CODE.replace("bpv_only_in_other_env", "bpv_in_no_env_at_all"))
    p = _check(impl)
    assert p.returncode == 2 and "No module named 'bpv_in_no_env_at_all'" in p.stderr and "--python" not in p.stderr


def test_a_python_that_is_not_there_says_the_fix(tmp_path):
    p = _check(ROOT / "examples" / "correct_vectorized.py", "--python", str(tmp_path / "nope" / "python"))
    assert p.returncode == 2 and "no executable there; give the path of a python" in p.stderr
