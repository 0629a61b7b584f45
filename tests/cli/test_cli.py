import json
import subprocess
import sys
from pathlib import Path

import pytest

from verifier import casefile, cli

ROOT = Path(__file__).resolve().parents[2]


def test_grad_on_the_worked_example_gives_0_0214695_from_every_reference(tmp_path, capsys):
    path = casefile.save(casefile.from_dict(casefile.WORKED_EXAMPLE), tmp_path / "worked.json")
    assert cli.main(["grad", path, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["grads"]) == {"delta_rule", "jax_reverse", "jax_forward", "central_diff", "complex_step"}
    for name, grads in out["grads"].items():
        assert grads[0]["W"][0][0] == pytest.approx(0.0214695, abs=5e-8), name
    assert len(set(round(v, 12) for v in out["loss"].values())) == 1
    assert cli.main(["grad", path]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("[0, 0]"))
    assert row.count("0.02146953") == 5  # layer 1 dW[0, 0]: one per reference, side by side


BAD = {
    "no such case file": (["grad", "nope.json"], "no case file"),
    "not json": (["grad", "{bad}"], "not valid JSON"),
    "bad examples": (["crosscheck", "--examples", "0"], ">= 1"),
    "bad format": (["crosscheck", "--format", "pdf"], "invalid choice"),
    "bad sizes": (["check", "examples/correct_vectorized.py", "--sizes", "4,x"], "4,8,3"),
    "unknown loss": (["check", "examples/correct_vectorized.py", "--loss", "l2", "--examples", "2"], "choose from"),
    "unsupported pin": (["check", "examples/correct_loops.py", "--loss", "bce", "--examples", "2"], "supports"),
    "softmax over one output": (
        ["check", "examples/correct_vectorized.py", "--sizes", "4,8,1", "--activations", "tanh", "softmax"],
        "two or more units",
    ),
    "case file with a one-output softmax": (
        ["grad", json.dumps(dict(casefile.WORKED_EXAMPLE, activations=["sigmoid", "softmax"]))],
        "softmax over one output unit is the constant 1",
    ),
}


@pytest.mark.parametrize("argv,words", BAD.values(), ids=BAD.keys())
def test_bad_input_is_a_clear_error_with_exit_2(argv, words, tmp_path):
    if argv[0] == "grad" and argv[1].startswith("{"):
        (tmp_path / "bad.json").write_text(argv[1])
        argv = ["grad", str(tmp_path / "bad.json")]
    p = subprocess.run([sys.executable, "-m", "verifier", *argv], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    assert words in p.stderr and "Traceback" not in p.stderr


def test_invalid_case_files_say_which_field(tmp_path):
    bad = dict(casefile.WORKED_EXAMPLE, params=[{"W": [[1, 1]], "b": [0, 0]}, {"W": [[1, 1]], "b": [0]}])
    with pytest.raises(casefile.SpecError, match="layer 1 W"):
        casefile.from_dict(bad)
    with pytest.raises(casefile.SpecError, match="lacks T"):
        casefile.from_dict({k: v for k, v in casefile.WORKED_EXAMPLE.items() if k != "T"})


def test_case_files_round_trip_every_bit(tmp_path):
    import numpy as np

    case = casefile.from_dict(dict(casefile.WORKED_EXAMPLE, X=[[0.1 + 1e-17, -1 / 3]]))
    again = casefile.load(casefile.save(case, tmp_path / "c.json"))
    assert np.array_equal(case.X, again.X) and again.spec == case.spec


def test_report_to_a_file(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert cli.main(["crosscheck", "--examples", "3", "--format", "json", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["examples"] == 3 and capsys.readouterr().out == ""


def test_python_dash_m_is_the_same_program():
    p = subprocess.run([sys.executable, "-m", "verifier", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and "crosscheck" in p.stdout and "check" in p.stdout


# --- --targets labels|one_hot|soft (DESIGN section 3) ----------------------------------------

_ONE_HOT_ONLY = """
def gradients(params, X, T, spec):
    if spec.targets == "labels":
        assert T.dtype.kind == "i" and T.shape == (X.shape[0],), "labels are class indices"
        T = np.eye(spec.sizes[-1])[T]
    elif not (np.isin(T, (0.0, 1.0)).all() and (T.sum(axis=1) == 1).all()):
        raise ValueError("this code takes one-hot rows only")
    return _vectorized(params, X, T, spec)
"""


@pytest.fixture
def one_hot_only(tmp_path):
    text = (ROOT / "examples" / "correct_vectorized.py").read_text()
    text = text.replace("def gradients(params, X, T, spec):", "def _vectorized(params, X, T, spec):", 1)
    impl = tmp_path / "one_hot_only.py"
    impl.write_text(text[: text.index("def train_step")] + _ONE_HOT_ONLY)
    return impl


@pytest.mark.parametrize("targets", ["one_hot", "labels"])
def test_targets_one_hot_and_labels_reach_the_code(one_hot_only, targets, capsys):
    argv = ["check", str(one_hot_only), "--loss", "softmax_ce", "--targets", targets, "--examples", "12"]
    assert cli.main(argv + ["--format", "json"]) == 0, capsys.readouterr().out


def test_soft_targets_are_the_default_and_fail_one_hot_only_code(one_hot_only, capsys):
    code = cli.main(["check", str(one_hot_only), "--loss", "softmax_ce", "--examples", "12", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and "one-hot rows only" in report["failures"][0]["detail"]


# ------------------------------------------------------------------ --require-isolation

CORRECT = ROOT / "examples" / "correct_vectorized.py"


def _weak_kernel(monkeypatch):
    """Simulate a kernel without namespaces or Landlock: the level the child's report comes to."""
    import verifier.sandbox.parent as parent

    monkeypatch.setattr(parent, "isolation_level", lambda iso: ("process", ()))


@pytest.mark.parametrize("command", ["check", "gate"])
def test_require_isolation_refuses_a_machine_without_namespaces(command, monkeypatch, capsys, tmp_path):
    _weak_kernel(monkeypatch)
    argv = [command, str(CORRECT), "--examples", "3", "--cases-dir", str(tmp_path), "--require-isolation"]
    if command == "gate":
        argv += ["--baseline", str(tmp_path / "baseline.json"), "--update"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--require-isolation" in err and "only at level 'process'" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "baseline.json").exists()
    # the twin: without the option the same weak machine runs it, and the report says how weak
    argv.remove("--require-isolation")
    assert cli.main(argv) == 0
    assert "Isolation: process." in capsys.readouterr().out
    assert (tmp_path / "baseline.json").exists() == (command == "gate")


def test_require_isolation_runs_where_the_kernel_isolates_fully(capsys, tmp_path):
    from verifier.sandbox import Sandbox

    with Sandbox(str(CORRECT), timeout=10) as box:
        box.describe()
        if box.isolation_level[0] != "full":
            pytest.skip(f"this machine isolates only at level {box.isolation_level}")
    code = cli.main(["check", str(CORRECT), "--examples", "3", "--require-isolation", "--format", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["isolation"] == "full" and any("Landlock" in m for m in out["isolation_mechanisms"]), out


def test_check_of_a_case_file_imports_no_hypothesis_and_a_drawn_run_does(tmp_path):
    """A case file needs no strategies: `check --case FILE` leaves Hypothesis unimported (its
    import is a fifth of the command's start); a run that draws cases still imports it."""
    path = casefile.save(casefile.from_dict(casefile.WORKED_EXAMPLE), tmp_path / "worked.json")
    code = (
        "import sys\n"
        "from verifier import cli\n"
        "rc = cli.main(sys.argv[1:])\n"
        "print('RESULT', rc, 'hypothesis' in sys.modules)\n"
    )
    impl = str(ROOT / "examples" / "correct_vectorized.py")
    common = ["check", impl, "--quiet", "--cases-dir", str(tmp_path)]

    def run(*extra):
        out = subprocess.run([sys.executable, "-c", code, *common, *extra], capture_output=True, text=True, cwd=ROOT)
        return next(line.split()[1:] for line in out.stdout.splitlines() if line.startswith("RESULT"))

    assert run("--case", path) == ["0", "False"]
    assert run("--examples", "2") == ["0", "True"]
