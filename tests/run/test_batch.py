"""`check A.py B.py ... --jobs N`: one report each, a summary table, the worst exit code."""

import json
import os
import shutil

import pytest
from conftest import EXAMPLES

from verifier import cli, safe_io
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


def test_a_worker_that_dies_costs_only_its_own_submission(tmp_path, monkeypatch):
    import tempfile

    from classes import crashing_work

    from verifier.records import RunConfig
    from verifier.run.batch import run_batch

    crash = tmp_path / "crash_worker.py"
    shutil.copy(CORRECT, crash)
    impls = [CORRECT, str(crash), BUGGY, CORRECT]
    tmp = tmp_path / "tmp"  # the run's temp dir, this process's and its workers'
    tmp.mkdir(mode=0o1777)
    tmp.chmod(0o1777)  # as /tmp: a root harness's children have their own uids
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    config = RunConfig(examples=8, mode="fast", cases_dir=str(tmp_path / "cases"), sizes=(2, 2, 1), loss="sse")
    results = run_batch(impls, config, jobs=2, work=crashing_work)
    assert [r.verdict for r in results] == ["pass", "error", "fail", "pass"], [r.failures for r in results]
    assert "worker process checking it died" in results[1].failures[0].detail
    # the classmates' workers the broken pool took down could not remove their children's work
    # directories: the run did
    assert os.listdir(tmp) == []


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


# --- a class run by an ordinary user (tests/users.py) -------------------------------------------
# Run by root the child's kill of its pool worker is refused by the uid change alone; run by an
# ordinary user the child has the worker's uid, and only the sandbox stands between them.

CRASH_RUN = """
from classes import crashing_work

from verifier.records import RunConfig
from verifier.run.batch import run_batch


def run(impls, cases):
    config = RunConfig(examples=8, mode="fast", cases_dir=cases, sizes=(2, 2, 1), loss="sse")
    return [[r.verdict, [f.detail for f in r.failures]] for r in run_batch(impls, config, jobs=2, work=crashing_work)]
"""

KILLER = (
    "import os, signal\n"
    "def gradients(params, X, T, spec):\n"
    "    os.kill(os.getppid(), signal.SIGKILL)  # its parent: the pool worker, unless isolation stops it\n"
    "    raise RuntimeError('still here')\n"
)


@pytest.fixture(scope="module")
def class_as_user():
    from users import ROOT as REPO
    from users import Runner, snapshot

    runner = Runner("user")
    try:
        left_before = runner.leftovers()
        outside = runner.outside()
        outside_before = snapshot(outside)
        runner.pythonpath += os.pathsep + str(REPO / "tests")  # the crashing job function, by name
        d = runner.dir
        for who in ("alice", "bob"):
            (d / who).mkdir()
            runner.chown(d / who)
            runner.write(f"{who}/impl.py", open(BUGGY).read())
        runner.write("correct.py", open(CORRECT).read())
        runner.write("buggy.py", open(BUGGY).read())
        runner.write("crash_worker.py", open(CORRECT).read())
        runner.write("killer.py", KILLER)
        runner.write("crash_run.py", CRASH_RUN)
        options = [*QUICK, "--sizes", "2,2,1", "--loss", "sse", "--format", "json", "--cases-dir", "cases"]
        runs = {
            "same_name": ["check", "alice/impl.py", "bob/impl.py", "--jobs", "2", *options],
            "killer": ["check", "correct.py", "killer.py", "buggy.py", "correct.py", "--jobs", "2", *options],
            "crash": {
                "call": "crash_run:run",
                "kwargs": {"impls": ["correct.py", "crash_worker.py", "buggy.py", "correct.py"], "cases": "cases"},
            },
        }
        done = dict(zip(runs, runner.cli(list(runs.values()))))
        yield {
            "runner": runner,
            "runs": done,
            "outside_changed": snapshot(outside) != outside_before,
            "left": runner.leftovers() - left_before,
        }
    finally:
        runner.cleanup()


def test_as_an_ordinary_user_same_named_submissions_get_their_own_case_files(class_as_user):
    run = class_as_user["runs"]["same_name"]
    assert run["code"] == 1 and run["seconds"] < 60, run
    reports = json.loads(run["out"])["reports"]
    files = [r["failures"][0]["case_file"] for r in reports]
    assert [r["verdict"] for r in reports] == ["fail", "fail"] and len(set(files)) == 2, files
    d = class_as_user["runner"].dir
    for sub, r, f in zip(("alice/impl.py", "bob/impl.py"), reports, files):
        assert os.path.dirname(f) == "cases" and (d / f).is_file()
        assert r["failures"][0]["replay"] == f"backprop-verify check {sub} --case {f}"
    assert not class_as_user["outside_changed"] and not class_as_user["left"], class_as_user["left"]


def test_as_an_ordinary_user_a_submission_cannot_kill_its_worker_or_a_classmate(class_as_user):
    run = class_as_user["runs"]["killer"]
    assert run["code"] == 1 and run["seconds"] < 60, run
    verdicts = [r["verdict"] for r in json.loads(run["out"])["reports"]]
    assert verdicts == ["pass", "fail", "fail", "pass"], verdicts  # the killer's own exception


def test_as_an_ordinary_user_a_dying_worker_costs_only_its_own_submission(class_as_user):
    run = class_as_user["runs"]["crash"]
    assert run["seconds"] < 90, run
    verdicts = [v for v, _ in run["value"]]
    assert verdicts == ["pass", "error", "fail", "pass"], run["value"]
    assert "worker process checking it died" in run["value"][1][1][0]


# --- a student's file name with escapes: never raw in a report, a file name or a terminal -------

PLANTED_NAME = "evil\x1b[2K\x1b[1GPASS\n::error::x.py"


def _inert(text):
    assert not [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F], repr(text)
    assert not [line for line in text.splitlines() if line.lstrip().startswith("::")], text


def _replay_words(replay):
    """The words bash reads in a replay command (its $'...' form included)."""
    import subprocess

    if shutil.which("bash") is None:
        pytest.skip("no bash to read the replay command")
    done = subprocess.run(["bash", "-c", f"printf '%s\\0' {replay}"], capture_output=True, timeout=30)
    return done.stdout.decode().split("\0")[:-1]


@pytest.fixture(scope="module")
def planted_names(tmp_path_factory):
    d = tmp_path_factory.mktemp("names")
    os.chmod(d, 0o755)  # run as root, the children read the submissions with their own uids
    planted, twin = d / PLANTED_NAME, d / "bug_sign_flip.py"
    shutil.copy(BUGGY, planted)
    shutil.copy(BUGGY, twin)
    impls = [str(planted), str(twin)]
    cases = d / "cases"
    args = [*QUICK, "--sizes", "2,2,1", "--loss", "sse", "--cases-dir", str(cases)]
    codes = {}
    streams = {}
    import contextlib
    import io

    for key, extra in (("dir", ["--output", str(d / "out")]), ("json", ["--format", "json"])):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            codes[key] = cli.main(["check", *impls, *args, *extra])
        streams[key] = (out.getvalue(), err.getvalue())
    return {"dir": d, "impls": impls, "cases": cases, "codes": codes, "streams": streams}


def test_a_planted_file_name_reaches_no_report_or_terminal_raw(planted_names):
    from verifier.records import RunConfig
    from verifier.report import FORMATS, render
    from verifier.run.batch import run_batch
    from verifier.run.grading import with_grading

    assert planted_names["codes"] == {"dir": 1, "json": 1}
    for out, err in planted_names["streams"].values():
        _inert(out)
        _inert(err)
    summary = planted_names["streams"]["dir"][0]
    assert safe_io.shown_name(planted_names["impls"][0]) in summary, summary  # recognisable, inert
    for name in os.listdir(planted_names["dir"] / "out"):
        _inert(name)
        _inert((planted_names["dir"] / "out" / name).read_text())
    config = RunConfig(examples=8, mode="fast", cases_dir=str(planted_names["cases"]), sizes=(2, 2, 1), loss="sse")
    planted = run_batch(planted_names["impls"][:1], config)[0]
    assert planted.verdict == "fail" and planted.implementation == safe_io.shown_name(planted_names["impls"][0])
    for fmt in FORMATS:
        text = render(with_grading(planted), fmt)
        _inert(text)
        assert "\\u001b" not in text and "\\u009b" not in text, fmt


def test_a_planted_names_files_are_safe_and_its_replay_names_the_very_file(planted_names):
    d = planted_names["dir"]
    out_names = sorted(os.listdir(d / "out"))
    assert out_names == ["bug_sign_flip.txt", "evil_x1b[2K_x1b[1GPASS_n::error::x.txt"], out_names
    for name in os.listdir(planted_names["cases"]):
        _inert(name)
    reports = json.loads(planted_names["streams"]["json"][0])["reports"]
    planted, twin = (r["failures"][0] for r in reports)
    assert os.path.basename(planted["case_file"]).startswith("evil_x1b[2K_x1b[1GPASS_n::error::x-")
    words = _replay_words(planted["replay"])
    assert words[:3] == ["backprop-verify", "check", planted_names["impls"][0]] and words[3] == "--case"
    assert os.path.isfile(words[4]) and words[4] == planted["case_file"]


def test_the_twin_an_ordinary_name_keeps_its_report_name_and_plain_replay(planted_names):
    reports = json.loads(planted_names["streams"]["json"][0])["reports"]
    twin = reports[1]
    assert twin["implementation"] == planted_names["impls"][1]
    f = twin["failures"][0]
    assert f["replay"] == f"backprop-verify check {planted_names['impls'][1]} --case {f['case_file']}"
    assert os.path.basename(f["case_file"]).startswith("bug_sign_flip-")
