"""Outputs written safely: a link, FIFO or directory planted at an output path is refused with
the fix (exit 2 on the command line) and the file it names is left alone; a class run's output
directory or the cases directory that is a link or another user's is refused; each planted
attack has a should-pass twin (a regular file is replaced, our own directory is used)."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from conftest import EXAMPLES

from verifier import cli, safe_io
from verifier.errors import UnsafeOutputError

CORRECT = str(EXAMPLES / "correct_vectorized.py")
BUGGY = str(EXAMPLES / "bug_sign_flip.py")
QUICK = ["--examples", "3", "--mode", "fast", "--quiet", "--sizes", "2,2,1"]
OTHER_UID = 65534  # nobody


def _leftovers(directory):
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


def _bounded(fn, seconds=30):
    """fn() in a thread; fails the test (instead of hanging it) when fn blocks, as a write into
    a FIFO would."""
    out = {}

    def run():
        try:
            fn()
        except BaseException as exc:  # handed back to the test
            out["exc"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the write blocked"
    return out.get("exc")


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "root-only.txt"
    v.write_text("secret\n")
    v.chmod(0o600)
    return v


def test_a_new_file_is_written_and_a_regular_one_replaced(tmp_path):
    target = tmp_path / "r.txt"
    assert safe_io.write_text(target, "one\n") == str(target) and target.read_text() == "one\n"
    safe_io.write_text(target, "two\n")
    assert target.read_text() == "two\n" and _leftovers(tmp_path) == []


def test_a_hard_link_at_the_path_is_replaced_not_written_through(tmp_path, victim):
    os.link(victim, tmp_path / "r.txt")
    safe_io.write_text(tmp_path / "r.txt", "report\n")
    assert victim.read_text() == "secret\n" and (tmp_path / "r.txt").read_text() == "report\n"


def test_a_symlink_at_the_path_is_refused_and_its_target_left_alone(tmp_path, victim):
    (tmp_path / "r.txt").symlink_to(victim)
    with pytest.raises(UnsafeOutputError, match="is a symbolic link, not a regular file.*remove it"):
        safe_io.write_text(tmp_path / "r.txt", "pwned\n")
    assert victim.read_text() == "secret\n" and _leftovers(tmp_path) == []


def test_a_dangling_symlink_is_refused_too(tmp_path):
    (tmp_path / "r.txt").symlink_to(tmp_path / "created-by-the-link")
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        safe_io.write_text(tmp_path / "r.txt", "x")
    assert not (tmp_path / "created-by-the-link").exists()


def test_a_fifo_at_the_path_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "r.txt")
    exc = _bounded(lambda: safe_io.write_text(tmp_path / "r.txt", "x"))
    assert isinstance(exc, UnsafeOutputError) and "FIFO" in str(exc)


def test_a_directory_at_the_path_is_refused(tmp_path):
    (tmp_path / "r.txt").mkdir()
    with pytest.raises(UnsafeOutputError, match="is a directory, not a regular file"):
        safe_io.write_text(tmp_path / "r.txt", "x")


def test_an_own_directory_that_is_a_link_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    with pytest.raises(UnsafeOutputError, match="is a symbolic link"):
        safe_io.write_text(tmp_path / "out" / "r.txt", "x", own_dir=True)
    assert list(real.iterdir()) == []
    safe_io.write_text(real / "r.txt", "x", own_dir=True)  # the twin: the real directory is fine
    assert (real / "r.txt").read_text() == "x"


def _foreign_dir(path, monkeypatch):
    """A directory owned by another user: really (chown, as root), else as this process sees it."""
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, OTHER_UID, OTHER_UID)
    else:
        me = os.geteuid()
        monkeypatch.setattr(safe_io.os, "geteuid", lambda: me + 1)
    return path


def test_an_output_directory_of_another_user_is_refused(tmp_path, monkeypatch):
    d = _foreign_dir(tmp_path / "out", monkeypatch)
    with pytest.raises(UnsafeOutputError, match="belongs to another user.*remove it or give a directory of your own"):
        safe_io.output_dir(d)
    with pytest.raises(UnsafeOutputError, match="belongs to another user"):
        safe_io.write_text(d / "r.txt", "x", own_dir=True)
    assert list(d.iterdir()) == []


def test_an_output_directory_is_made_or_reused_when_it_is_ours(tmp_path):
    d = tmp_path / "a" / "b"
    assert safe_io.output_dir(d) == str(d) and d.is_dir()
    assert safe_io.output_dir(d) == str(d)
    assert safe_io.output_dir(tmp_path / "none", create=False) and not (tmp_path / "none").exists()


def test_an_output_directory_that_is_a_link_or_a_file_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("")
    with pytest.raises(UnsafeOutputError, match="is a symbolic link, not a directory"):
        safe_io.output_dir(tmp_path / "link")
    with pytest.raises(UnsafeOutputError, match="not a regular file|not a directory"):
        safe_io.output_dir(tmp_path / "file")


def test_reading_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "b.json")
    exc = _bounded(lambda: safe_io.read_regular(tmp_path / "b.json", what="baseline"))
    assert isinstance(exc, UnsafeOutputError) and "FIFO" in str(exc)
    (tmp_path / "c.json").write_bytes(b"{}")
    assert safe_io.read_regular(tmp_path / "c.json") == b"{}"


def test_a_digest_line_is_what_sha256sum_writes():
    line = safe_io.digest_line(b"abc", "b.json")
    assert line == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  b.json\n"


# --- on the command line: exit 2, saying the fix, the planted target untouched -------------------


def test_check_refuses_a_report_path_that_is_a_link_before_running(tmp_path, victim, capsys):
    (tmp_path / "report.txt").symlink_to(victim)
    argv = ["check", CORRECT, *QUICK, "--output", str(tmp_path / "report.txt"), "--cases-dir", str(tmp_path / "c")]
    assert cli.main(argv) == 2
    assert "symbolic link" in capsys.readouterr().err and victim.read_text() == "secret\n"


def test_check_refuses_a_fifo_at_the_report_path(tmp_path, capsys):
    os.mkfifo(tmp_path / "report.txt")
    argv = ["check", CORRECT, *QUICK, "--output", str(tmp_path / "report.txt")]
    assert cli.main(argv) == 2 and "FIFO" in capsys.readouterr().err


def test_a_class_run_refuses_an_output_directory_that_is_a_link(tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "elsewhere")
    argv = ["check", CORRECT, BUGGY, *QUICK, "--output", str(tmp_path / "out"), "--cases-dir", str(tmp_path / "c")]
    assert cli.main(argv) == 2
    assert "--output directory" in capsys.readouterr().err and list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory of another user needs root")
def test_a_class_run_refuses_an_output_directory_of_another_user(tmp_path, capsys, monkeypatch):
    d = _foreign_dir(tmp_path / "out", monkeypatch)
    argv = ["check", CORRECT, BUGGY, *QUICK, "--output", str(d), "--cases-dir", str(tmp_path / "c")]
    assert cli.main(argv) == 2
    assert "belongs to another user" in capsys.readouterr().err and list(d.iterdir()) == []


def test_a_class_run_writes_into_its_own_directory(tmp_path, capsys):
    argv = ["check", CORRECT, BUGGY, *QUICK, "--output", str(tmp_path / "out"), "--cases-dir", str(tmp_path / "c")]
    assert cli.main(argv) == 1
    assert sorted(os.listdir(tmp_path / "out")) == ["bug_sign_flip.txt", "correct_vectorized.txt"]


def test_a_cases_directory_that_is_a_link_is_refused_and_nothing_lands_where_it_points(tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cases").symlink_to(tmp_path / "elsewhere")
    assert cli.main(["check", BUGGY, *QUICK, "--cases-dir", str(tmp_path / "cases")]) == 2
    assert "cases directory" in capsys.readouterr().err and list((tmp_path / "elsewhere").iterdir()) == []


def test_a_case_file_path_that_is_a_link_is_refused(tmp_path, victim, capsys):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "bug_sign_flip-minimal.json").symlink_to(victim)
    code = cli.main(["check", BUGGY, *QUICK, "--cases-dir", str(tmp_path / "cases")])
    assert code == 2 and "case file" in capsys.readouterr().err and victim.read_text() == "secret\n"


# --- text the checked code puts into a report: inert in every format ----------------------------

FAKE = "\x1b[2K\x1b[1GPASS all gradients right"
HOSTILE = f"""
import sys
def gradients(params, X, T, spec):
    print({FAKE!r} + "\\n::error::printed\\r\\x9b")
    sys.stdout.flush()
    raise RuntimeError({FAKE!r} + "\\n::error file=x.py::the gradient is right\\n  ::set-output name=v::1")
"""


def _inert(text):
    """No escape or control character but newline and tab, and no line a CI runner would read
    as a workflow command."""
    assert not [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F], repr(text)
    assert not [line for line in text.splitlines() if line.lstrip().startswith("::")], text


def test_clean_text_strips_escapes_and_controls_and_neutralises_workflow_commands():
    text = safe_io.clean_text(FAKE + "\r\x07\x9b\x1b]0;title\x07\u202eok\n::error::x\n\t::warning::y")
    assert text == "PASS all gradients rightok\n[user] ::error::x\n\t[user] ::warning::y"
    _inert(text)
    assert safe_io.clean_text(text) == text  # idempotent


def test_ordinary_text_is_left_as_it_is():
    text = "layer 1 dW: shape (2, 3), expected (3, 2)\n\tline two: a::b, C:\\path, 5 % off, naïve"
    assert safe_io.clean_text(text) == text


def test_a_hostile_exception_text_is_inert_in_every_report_format(tmp_path):
    from verifier.report import FORMATS, render
    from verifier.run.check import run_check
    from verifier.run.grading import with_grading

    impl = tmp_path / "hostile.py"
    impl.write_text(HOSTILE)
    r = run_check(str(impl), examples=3, sizes=(2, 2, 1), activations=("tanh", "sigmoid"), loss="sse")
    assert r.verdict == "fail" and r.failures[0].kind == "exception"
    detail = r.failures[0].detail
    assert "PASS all gradients right" in detail and "[user] ::error file=x.py::" in detail  # kept, inert
    _inert(detail)
    for fmt in FORMATS:
        out = render(with_grading(r), fmt)
        _inert(out)
        assert "\\u001b" not in out and "\\u009b" not in out, fmt  # nor escaped inside JSON strings
        assert "PASS all gradients right" in out.replace("\\n", "\n"), fmt


def test_the_command_lines_error_line_is_inert(tmp_path, capsys):
    impl = tmp_path / "bad_import.py"
    impl.write_text(f"raise ImportError({FAKE!r} + '\\n::error::fake')\n")
    assert cli.main(["check", str(impl), *QUICK]) == 2
    err = capsys.readouterr().err
    _inert(err)
    assert "[user] ::error::fake" in err


# --- the same attacks with the harness run by an ordinary user (tests/users.py) -----------------
# A CI job or the pytest plugin runs the tool as an ordinary user, who owns what it writes: a
# link planted there names that user's own files. One harness process runs every scenario; each
# asserts its exit code and message, a time bound, that nothing outside the work directory
# changed, and that nothing was left in the temp dir or /dev/shm.

# The checked code itself tries to plant the link at the report path while the check runs.
PLANTER = """
import os
_correct = gradients
def gradients(params, X, T, spec):
    try:
        os.symlink({VICTIM}, {REPORT})
        print("planted")
    except OSError as exc:
        print("plant failed:", type(exc).__name__)
    return _correct(params, X, T, spec)
"""


@pytest.fixture(scope="module")
def as_user():
    from users import Runner, snapshot

    from verifier.report import FORMATS

    runner = Runner("user")
    try:
        before_left = runner.leftovers()
        outside = runner.outside()
        victim = outside / "victim.txt"
        d = runner.dir
        correct = open(CORRECT).read()
        runner.write("correct.py", correct)
        runner.write("buggy.py", open(BUGGY).read())
        runner.write("hostile.py", HOSTILE)
        report = d / "planted-report.txt"
        runner.write("planter.py", correct + PLANTER.format(VICTIM=repr(str(victim)), REPORT=repr(str(report))))
        (d / "link.txt").symlink_to(victim)
        os.mkfifo(d / "fifo.txt")
        (d / "cases").mkdir()
        (d / "cases" / "buggy-minimal.json").symlink_to(victim)
        (d / "out-link").symlink_to(outside)
        for p in ("link.txt", "fifo.txt", "cases", "out-link"):
            runner.chown(d / p)
        if os.geteuid() == 0:  # another user's directory the test user could write into
            foreign = d / "foreign"
            foreign.mkdir()
            foreign.chmod(0o777)
        else:  # run by an ordinary user: the machine's temp dir is another user's (root's)
            foreign = d.parent
        quick = QUICK
        cases = ["--cases-dir", str(d / "fresh-cases")]
        runs = {
            "report_link": ["check", "correct.py", *quick, "--output", "link.txt", *cases],
            "report_fifo": ["check", "correct.py", *quick, "--output", "fifo.txt", *cases],
            "case_link": ["check", "buggy.py", *quick, "--cases-dir", "cases"],
            "class_out_link": ["check", "correct.py", "buggy.py", *quick, "--output", "out-link", *cases],
            "class_out_foreign": ["check", "correct.py", "buggy.py", *quick, "--output", str(foreign), *cases],
            "twin_report": ["check", "correct.py", *quick, "--output", "report.txt", *cases],
            "twin_class": ["check", "correct.py", "buggy.py", *quick, "--output", "own-out", *cases],
            "child_plants": ["check", "planter.py", *quick, "--output", str(report), *cases],
        }
        for fmt in FORMATS:
            runs["hostile_" + fmt] = ["check", "hostile.py", *quick, "--format", fmt, "--output", f"hostile.{fmt}"]
        outside_before = snapshot(outside)
        foreign_before = sorted(os.listdir(foreign))
        done = dict(zip(runs, runner.cli(list(runs.values()))))
        yield {
            "runner": runner,
            "runs": done,
            "victim": victim,
            "outside_changed": snapshot(outside) != outside_before,
            "foreign_changed": sorted(os.listdir(foreign)) != foreign_before,
            "left": runner.leftovers() - before_left,
        }
    finally:
        runner.cleanup()


REFUSED = {
    "report_link": (2, "is a symbolic link, not a regular file"),
    "report_fifo": (2, "is a FIFO (named pipe), not a regular file"),
    "case_link": (2, "case file"),
    "class_out_link": (2, "--output directory"),
    "class_out_foreign": (2, "belongs to another user"),
    "twin_report": (0, ""),
    "twin_class": (1, ""),
    "child_plants": (0, ""),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_as_an_ordinary_user_planted_outputs_are_refused_in_time(as_user, name):
    run = as_user["runs"][name]
    code, message = REFUSED[name]
    assert run["code"] == code and message in run["err"], run
    assert run["seconds"] < 30, run
    assert as_user["victim"].read_text() == "the user's own file\n"


def test_as_an_ordinary_user_what_was_planted_stays_and_nothing_went_through_it(as_user):
    d = as_user["runner"].dir
    assert (d / "link.txt").is_symlink() and (d / "cases" / "buggy-minimal.json").is_symlink()
    assert stat.S_ISFIFO(os.lstat(d / "fifo.txt").st_mode)
    assert not as_user["outside_changed"] and not as_user["foreign_changed"]
    assert not as_user["left"], as_user["left"]


def test_as_an_ordinary_user_the_twins_write_where_they_were_told(as_user):
    d = as_user["runner"].dir
    assert os.stat(d / "report.txt").st_uid == as_user["runner"].uid  # written by that user
    assert (d / "report.txt").read_text().startswith("PASS correct.py")
    assert sorted(os.listdir(d / "own-out")) == ["buggy.txt", "correct.txt"]
    # the checked code could not plant its link (its view of this directory is read-only), so
    # the report is a regular file there
    assert not (d / "planted-report.txt").is_symlink()
    assert (d / "planted-report.txt").read_text().startswith("PASS planter.py")
    assert "planted\n" not in (d / "planted-report.txt").read_text()


def test_as_an_ordinary_user_a_hostile_exception_text_is_inert_in_every_format(as_user):
    from verifier.report import FORMATS

    d = as_user["runner"].dir
    for fmt in FORMATS:
        run = as_user["runs"]["hostile_" + fmt]
        assert run["code"] == 1 and run["seconds"] < 30, (fmt, run)
        out = (d / f"hostile.{fmt}").read_text()
        _inert(out)
        _inert(run["err"])
        assert "\\u001b" not in out and "\\u009b" not in out, fmt
        assert "PASS all gradients right" in out.replace("\\n", "\n") and "[user] ::error" in out, fmt


# --- a submission's file name: shown, a file name, a replay word ---------------------------------

PLANTED_NAME = "sub/evil\x1b[2K\x1b[1GPASS\n::error::it's \x9b\u202eok.py"


def test_a_file_name_with_escapes_is_shown_as_one_inert_line():
    shown = safe_io.shown_name(PLANTED_NAME)
    assert shown == "sub/evil\\x1b[2K\\x1b[1GPASS\\n::error::it's \\x9b\\u202eok.py"
    _inert(shown)
    assert safe_io.shown_name("::error::x.py") == "[user] ::error::x.py"


def test_a_file_stem_has_no_control_character_separator_or_leading_dot():
    assert safe_io.file_stem(PLANTED_NAME) == "evil_x1b[2K_x1b[1GPASS_n::error::it's _x9b_u202eok"
    assert safe_io.file_stem(safe_io.shown_name(PLANTED_NAME)) == safe_io.file_stem(PLANTED_NAME)
    assert [safe_io.file_stem(n) for n in ("../..x.py", "a\\b.py", "/", "")] == ["x", "a_b", "impl", "impl"]


def test_a_replay_word_with_control_characters_pastes_back_to_the_very_file():
    import shutil
    import subprocess

    word = safe_io.shell_word(PLANTED_NAME)
    _inert(word)
    if shutil.which("bash") is None:
        pytest.skip("no bash to read the $'...' word back")
    done = subprocess.run(["bash", "-c", f"printf '%s' {word}"], capture_output=True, timeout=30)
    assert done.stdout.decode() == PLANTED_NAME


@pytest.mark.parametrize("name", ["examples/correct_vectorized.py", "my impl.py", "naïve-2.py"])
def test_the_twin_ordinary_names_stay_as_they_are(name):
    import shlex

    assert safe_io.shown_name(name) == name
    assert safe_io.file_stem(name) == os.path.splitext(os.path.basename(name))[0]
    assert shlex.split(safe_io.shell_word(name)) == [name]
