"""Golden reports: real runs of the CLI compared, line for line, with the expected reports in
tests/data/golden/ (text, markdown and JSON).

Covered: `check` of two buggy examples (failing, with a diagnosis label) and of a correct one
(passing), all on 30 cases with seed 0; `grad` on the worked example; `crosscheck` on 20 cases
with seed 0; each with its exit code. Before comparing, tests/golden.py masks timings and the
test's temporary directory and nothing else, so a change in any gradient, tolerance, verdict,
label or table fails here with a unified diff.

To rewrite the golden files on purpose (a deliberate change of a report, or a Hypothesis upgrade
that draws other cases from the same seed), run

    BACKPROP_VERIFY_UPDATE_GOLDEN=1 python -m pytest tests/report/test_golden.py

and review `git diff tests/data/golden` before committing it.

The runs are deterministic: the CLI fixes its own Hypothesis settings and seed, so neither the
test profile (CI=true loads `ci`, otherwise `dev`) nor an earlier run in the same process changes
a report; test_the_reports_do_not_depend_on_the_profile_or_on_an_earlier_run checks that, and
test_a_fresh_process_gives_the_same_report that a separate interpreter agrees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from golden import TIME, TMP, compare, diff, mask
from hypothesis import settings

from verifier import casefile, cli

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden"
EXTENSIONS = {"text": "txt", "markdown": "md", "json": "json"}
TMP_ARG = "{tmp}"

# name -> (argv, with {tmp} for the test's temporary directory; expected exit code)
RUNS = {
    "check-bug_sign_flip": (
        ["check", "examples/bug_sign_flip.py", "--examples", "30", "--seed", "0", "--cases-dir", "{tmp}/cases"],
        1,
    ),
    "check-bug_missing_activation_derivative": (
        [
            "check",
            "examples/bug_missing_activation_derivative.py",
            "--examples",
            "30",
            "--seed",
            "0",
            "--cases-dir",
            "{tmp}/cases",
        ],
        1,
    ),
    "check-correct_vectorized": (
        ["check", "examples/correct_vectorized.py", "--examples", "30", "--seed", "0", "--cases-dir", "{tmp}/cases"],
        0,
    ),
    "grad-worked_example": (["grad", "{tmp}/worked_example.json"], 0),
    "crosscheck": (["crosscheck", "--examples", "20", "--seed", "0"], 0),
}


def _argv(name: str, fmt: str, tmp: Path) -> list[str]:
    """The command line of run `name` in format `fmt`, with the worked example written to `tmp`."""
    casefile.save(casefile.from_dict(casefile.WORKED_EXAMPLE), tmp / "worked_example.json")
    argv, _ = RUNS[name]
    return [a.replace(TMP_ARG, str(tmp)) for a in argv] + ["--format", fmt, "--quiet"]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """The CLI in this process, from the checkout (the examples' paths are relative to it)."""
    capsys.readouterr()
    code = cli.main(argv)
    return code, capsys.readouterr().out


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("fmt", EXTENSIONS)
@pytest.mark.parametrize("name", RUNS)
def test_the_report_is_the_golden_one(name, fmt, tmp_path, capsys, at_root):
    code, out = run_cli(_argv(name, fmt, tmp_path), capsys)
    assert code == RUNS[name][1], out
    compare(GOLDEN / f"{name}.{EXTENSIONS[fmt]}", out, tmp_path)


def _current_profile() -> str:
    """The profile tests/conftest.py loaded (the same rule)."""
    return os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")


@pytest.mark.parametrize("name", ["check-bug_missing_activation_derivative", "crosscheck"])
def test_the_reports_do_not_depend_on_the_profile_or_on_an_earlier_run(name, tmp_path, capsys, at_root):
    """Twice under `dev`, once under `ci` (what CI=true loads): the same masked report each time.
    JSON, because it holds every tensor's statistics over all the generated cases, not only the
    shrunk failure."""
    outputs = {}
    try:
        for run, profile in enumerate(["dev", "dev", "ci"]):
            settings.load_profile(profile)
            code, out = run_cli(_argv(name, "json", tmp_path), capsys)
            assert code == RUNS[name][1]
            outputs[f"{profile} (run {run + 1})"] = mask(out, tmp_path)
    finally:
        settings.load_profile(_current_profile())
    (first, expected), *others = outputs.items()
    for label, actual in others:
        assert actual == expected, f"{label} differs from {first}:\n{diff(expected, actual)}"


def test_a_fresh_process_gives_the_same_report(tmp_path):
    """`python -m verifier` in its own interpreter (what a terminal runs), with CI=true in its
    environment, against the same golden file as the in-process run: no state of this test
    process (modules loaded, the profile) is in the golden files."""
    name = "check-bug_missing_activation_derivative"
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [sys.executable, "-m", "verifier", *_argv(name, "json", tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert p.returncode == RUNS[name][1], p.stderr
    compare(GOLDEN / f"{name}.json", p.stdout, tmp_path, update=False)


# --- the comparison itself can fail -----------------------------------------------------------


def _golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def test_one_changed_digit_fails_with_a_diff(tmp_path):
    """The planted-bug twin of every golden test: a tolerance off in one digit is caught, and the
    message shows the line as expected and as got."""
    expected = _golden("check-bug_sign_flip.txt")
    assert "2.93e-14" in expected
    wrong = expected.replace("2.93e-14", "2.94e-14")
    golden = tmp_path / "check-bug_sign_flip.txt"
    golden.write_text(expected, encoding="utf-8")
    with pytest.raises(AssertionError) as failed:
        compare(golden, wrong, tmp_path, update=False)
    message = str(failed.value)
    assert "--- expected check-bug_sign_flip.txt" in message and "+++ actual check-bug_sign_flip.txt" in message
    assert any(line.startswith("-") and "2.93e-14" in line for line in message.splitlines())
    assert any(line.startswith("+") and "2.94e-14" in line for line in message.splitlines())


@pytest.mark.parametrize(
    "old,new",
    [
        ("[sign]", "[scale]"),  # the diagnosis label
        ("FAIL ", "PASS "),  # the verdict
        ("-0.75  0.75", "0.75   0.75"),  # a gradient
        ("30 cases", "31 cases"),
    ],
)
def test_a_changed_label_verdict_or_number_fails(old, new, tmp_path):
    expected = _golden("check-bug_sign_flip.txt")
    assert old in expected
    with pytest.raises(AssertionError, match="differs"):
        compare(GOLDEN / "check-bug_sign_flip.txt", expected.replace(old, new, 1), tmp_path, update=False)


def test_a_changed_json_value_fails(tmp_path):
    expected = _golden("check-bug_missing_activation_derivative.json")
    assert '"diagnosis": "activation_derivative"' in expected
    wrong = expected.replace('"diagnosis": "activation_derivative"', '"diagnosis": "scale"', 1)
    with pytest.raises(AssertionError, match="differs"):
        compare(GOLDEN / "check-bug_missing_activation_derivative.json", wrong, tmp_path, update=False)


def test_other_timings_and_another_temporary_directory_pass(tmp_path):
    """What masking is for: the same report from a slower run in another directory."""
    for name, timing, seconds in [
        ("check-bug_sign_flip.txt", f"({TIME} s)", None),
        ("check-correct_vectorized.md", f", {TIME} s", None),
        ("crosscheck.txt", f"({TIME} s)", None),
        ("check-bug_sign_flip.json", None, f'"seconds": "{TIME}"'),
    ]:
        expected = _golden(name)
        other = tmp_path / "elsewhere"
        output = expected.replace(TMP, str(other))
        if timing:
            assert timing in expected, name
            output = output.replace(timing, timing.replace(TIME, "123.4"))
        if seconds:
            assert seconds in expected, name
            output = output.replace(seconds, '"seconds": 0.017298')
        assert output != expected
        compare(GOLDEN / name, output, other, update=False)


def test_masking_leaves_every_number_but_timings():
    text = "FAIL x: 30 cases, seed 0, 2 failure(s) (3.6 s)\n  [0]  -0.75  0.75  1.5  2  2.93e-14\n"
    assert mask(text) == text.replace("3.6 s", f"{TIME} s")
    assert mask('{"seconds": 2.8256, "tolerance": 2.93e-14}') == '{"seconds": "<T>", "tolerance": 2.93e-14}'
    assert mask("31 cases, 0.5 s, 17 ms per case") == f"31 cases, {TIME} s, {TIME} ms per case"
    assert mask(mask(text)) == mask(text)
