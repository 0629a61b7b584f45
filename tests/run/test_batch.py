"""`check A.py B.py ... --jobs N`: one report each, a summary table, the worst exit code."""

import json
import os
import shutil

import pytest
from conftest import EXAMPLES

from verifier import cli
from verifier.cli import check as batch
from verifier.records import CheckResult, Failure
from verifier.report.common import SUMMARY_HEADERS

CORRECT = str(EXAMPLES / "correct_vectorized.py")
BUGGY = str(EXAMPLES / "bug_sign_flip.py")
QUICK = ["--examples", "8", "--mode", "fast", "--quiet"]


def _run(capsys, tmp_path, *args):
    code = cli.main(["check", *args, *QUICK, "--cases-dir", str(tmp_path / "cases")])
    captured = capsys.readouterr()
    _run.err = captured.err
    return code, captured.out


def test_jobs_2_one_report_file_each_and_a_summary(capsys, tmp_path):
    other = tmp_path / "sub" / "correct_vectorized.py"  # same name as CORRECT: a distinct file
    other.parent.mkdir()
    shutil.copy(CORRECT, other)
    out_dir = tmp_path / "reports"
    code, out = _run(capsys, tmp_path, CORRECT, BUGGY, str(other), "--jobs", "2", "--output", str(out_dir))
    assert code == 1  # worst of pass, fail, pass
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == ["bug_sign_flip.txt", "correct_vectorized-2.txt", "correct_vectorized.txt"]
    assert (out_dir / "bug_sign_flip.txt").read_text().startswith(f"FAIL {BUGGY}")
    assert (out_dir / "correct_vectorized.txt").read_text().startswith(f"PASS {CORRECT}")
    assert (out_dir / "correct_vectorized-2.txt").read_text().startswith(f"PASS {other}")
    lines = out.splitlines()
    assert lines[0] == "Summary: 3 implementations"
    assert lines[2].split() == ["impl", "verdict", "cases", "failures", "first", "failure", "seconds"]
    rows = {line.split()[0]: line.split() for line in lines[4:]}
    assert rows[BUGGY][1:4] == ["fail", "8", "1"] and "mismatch" in rows[BUGGY]
    assert rows[CORRECT][1:4] == ["pass", "8", "0"] and rows[str(other)][1] == "pass"


def test_an_unusable_implementation_is_an_error_row_and_exit_2(capsys, tmp_path):
    broken = tmp_path / "no_gradients.py"
    broken.write_text("x = 1\n")
    code, out = _run(capsys, tmp_path, BUGGY, str(broken), CORRECT, "--jobs", "2")
    assert code == 2  # worst of fail, error, pass
    reports = out.split("=" * 72)
    assert len(reports) == 4  # three reports, then the summary
    assert reports[0].startswith(f"FAIL {BUGGY}") and reports[2].strip().startswith(f"PASS {CORRECT}")
    assert "ERROR" in reports[1] and "gradients" in reports[1]
    summary = reports[3]
    assert "Summary: 3 implementations" in summary and "error" in summary


def test_json_on_stdout_is_one_document(capsys, tmp_path):
    code, out = _run(capsys, tmp_path, CORRECT, BUGGY, "--jobs", "2", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["verdict"] == "fail"
    assert [r["implementation"] for r in doc["reports"]] == [CORRECT, BUGGY]
    assert [s["verdict"] for s in doc["summary"]] == ["pass", "fail"]
    assert set(doc["summary"][0]) == set(SUMMARY_HEADERS)
    assert doc["reports"][1]["failures"][0]["diagnosis"] == "sign"


def test_jobs_1_runs_in_process_with_the_same_reports(capsys, tmp_path):
    code, out = _run(capsys, tmp_path, CORRECT, BUGGY, "--format", "json")
    assert code == 1
    assert [s["verdict"] for s in json.loads(out)["summary"]] == ["pass", "fail"]


def test_junit_of_several_needs_a_directory(capsys, tmp_path):
    code, out = _run(capsys, tmp_path, CORRECT, BUGGY, "--format", "junit")
    assert code == 2 and out == ""  # refused before any check ran
    assert "--output DIR" in _run.err


def _result(verdict):
    return CheckResult(
        verdict=verdict,
        seed=0,
        examples=1,
        implementation=verdict,
        references=(),
        failures=() if verdict == "pass" else (Failure("mismatch", "x", layer=1, param="W"),),
    )


@pytest.mark.parametrize(
    "verdicts, code",
    [
        (["pass", "pass"], 0),
        (["pass", "fail"], 1),
        (["fail", "error", "pass"], 2),
        (["error"], 2),
        ([], 0),
    ],
)
def test_exit_code_is_the_worst(verdicts, code):
    assert batch.exit_code([_result(v) for v in verdicts]) == code


def test_output_names_are_distinct_and_follow_the_format():
    assert batch.output_names(["a/x.py", "b/x.py", "y", "x-2.py"], "markdown") == ["x.md", "x-2.md", "y.md", "x-2-2.md"]


# --- each submission its own: case files, and a worker crash -----------------------------------


def test_two_submissions_with_the_same_file_name_get_their_own_case_files(tmp_path):
    from verifier.records import RunConfig
    from verifier.run.batch import run_batch

    subs = []
    for who in ("alice", "bob"):
        f = tmp_path / who / "impl.py"
        f.parent.mkdir()
        shutil.copy(BUGGY, f)
        subs.append(str(f))
    cases = tmp_path / "cases"
    config = RunConfig(examples=8, mode="fast", cases_dir=str(cases), sizes=(2, 2, 1), loss="sse")
    for jobs in (1, 2):
        results = run_batch(subs, config, jobs=jobs)
        files = [r.failures[0].case_file for r in results]
        assert [r.verdict for r in results] == ["fail", "fail"] and len(set(files)) == 2, files
        for sub, r, f in zip(subs, results, files):
            assert os.path.isfile(f) and os.path.dirname(f) == str(cases)
            assert r.failures[0].replay == f"backprop-verify check {sub} --case {f}"  # its own case, its own file
    assert len(os.listdir(cases)) == 2


def test_a_single_check_keeps_its_plain_case_file_name(tmp_path):
    from verifier.run.check import run_check

    r = run_check(BUGGY, examples=8, mode="fast", cases_dir=str(tmp_path), sizes=(2, 2, 1), loss="sse")
    assert os.path.basename(r.failures[0].case_file) == "bug_sign_flip-minimal.json"


def test_a_worker_that_dies_costs_only_its_own_submission(tmp_path):
    from classes import crashing_work

    from verifier.records import RunConfig
    from verifier.run.batch import run_batch

    crash = tmp_path / "crash_worker.py"
    shutil.copy(CORRECT, crash)
    impls = [CORRECT, str(crash), BUGGY, CORRECT]
    config = RunConfig(examples=8, mode="fast", cases_dir=str(tmp_path / "cases"), sizes=(2, 2, 1), loss="sse")
    results = run_batch(impls, config, jobs=2, work=crashing_work)
    assert [r.verdict for r in results] == ["pass", "error", "fail", "pass"], [r.failures for r in results]
    assert "worker process checking it died" in results[1].failures[0].detail


def test_a_submission_that_kills_its_own_worker_changes_no_classmates_verdict(tmp_path):
    killer = tmp_path / "killer.py"
    killer.write_text(
        "import os, signal\n"
        "def gradients(params, X, T, spec):\n"
        "    os.kill(os.getppid(), signal.SIGKILL)  # its parent: the pool worker, unless isolation stops it\n"
        "    raise RuntimeError('still here')\n"
    )
    from verifier.records import RunConfig
    from verifier.run.batch import run_batch

    config = RunConfig(examples=8, mode="fast", cases_dir=str(tmp_path / "cases"), sizes=(2, 2, 1), loss="sse")
    results = run_batch([CORRECT, str(killer), BUGGY, CORRECT], config, jobs=2)
    assert [r.verdict for r in results[::2]] == ["pass", "fail"] and results[3].verdict == "pass"
    assert results[1].verdict != "pass"
