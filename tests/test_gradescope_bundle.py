"""The Gradescope bundle in docs/gradescope: run_autograder, in a fresh directory laid out like
/autograder (AUTOGRADER_ROOT points there), writes a results.json Gradescope reads, whatever the
submission does."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import jsonschema
import pytest
from conftest import EXAMPLES, ROOT
from grader_schemas import GRADESCOPE

BUNDLE = ROOT / "docs" / "gradescope"


def _autograder(tmp_path, submission: dict[str, str], config: str | None = None):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    shutil.copytree(BUNDLE, root / "source")
    (root / "source" / "config.sh").write_text(
        config or 'SUBMISSION_FILE=backprop.py\nCHECK_OPTIONS="--examples 6 --mode fast"\nAUDIENCE=student\n'
    )
    for name, text in submission.items():
        (root / "submission" / name).write_text(text)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "BACKPROP_VERIFY": f"{sys.executable} -m verifier"}
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(doc, GRADESCOPE)
    return doc


@pytest.mark.parametrize(
    "example, score", [("correct_vectorized.py", 100.0), ("bug_sign_flip.py", 10.0)], ids=["passing", "failing"]
)
def test_run_autograder_writes_results_json(tmp_path, example, score):
    doc = _autograder(tmp_path, {"backprop.py": (EXAMPLES / example).read_text()})
    assert doc["score"] == score  # the bundle's rubric: 100 points, 10 for no misbehaviour
    assert "replay" not in json.dumps(doc) and str(tmp_path) not in json.dumps(doc)


def test_a_missing_file_or_a_broken_grader_still_writes_results(tmp_path):
    doc = _autograder(tmp_path / "a", {"my_code.py": "x = 1\n"})
    assert doc["score"] == 0 and "No backprop.py in your submission (found: my_code.py" in doc["output"]
    bad = 'SUBMISSION_FILE=backprop.py\nCHECK_OPTIONS="--examples zero"\n'
    doc = _autograder(tmp_path / "b", {"backprop.py": "x = 1\n"}, config=bad)
    assert doc["score"] == 0 and "not your code's fault" in doc["output"]


def test_make_bundle_zips_the_wheel_and_the_scripts_flat(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash")
    out = tmp_path / "autograder.zip"
    proc = subprocess.run(
        ["bash", str(BUNDLE / "make-bundle.sh"), str(out)], cwd=ROOT, capture_output=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    names = zipfile.ZipFile(out).namelist()
    assert {"setup.sh", "run_autograder", "config.sh", "rubric.toml"} <= set(names)
    assert any(n.startswith("backprop_verifier-") and n.endswith(".whl") for n in names)
