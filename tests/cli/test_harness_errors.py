"""No harness error is ever swallowed: an exception planted in any stage of a check (generation,
a reference, the judge, shrinking, diagnosis, rendering) or of a cross-check ends the command
with exit 2, its type and message, and "a harness bug, please report it": never 0 (a pass) and
never 1 (blaming the checked code). The twins: the same commands without the plant exit 0 on
the correct example and 1 on the buggy one."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES

from verifier import cli, report, strategies
from verifier.judge.references import BY_LAYER  # the form of the complex step the oracle calls
from verifier.report import Format
from verifier.run import check as run_check_module
from verifier.run import diagnose as run_diagnose_module
from verifier.run import shrink as shrink_module
from verifier.run.crosscheck import run_crosscheck  # noqa: F401  (the module the crosscheck plant patches)

CORRECT, BUGGY = EXAMPLES / "correct_vectorized.py", EXAMPLES / "bug_sign_flip.py"


class Planted(RuntimeError):
    pass


def _raise(*args, **kwargs):
    raise Planted("planted in the harness")


def _after(n, fn):
    """`fn`, raising the planted error from its n-th call on."""
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] >= n:
            _raise()
        return fn(*args, **kwargs)

    return wrapped


STAGES = {
    "generation": lambda mp: mp.setattr(strategies, "case_from_draw", _after(3, strategies.case_from_draw)),
    "reference": lambda mp: mp.setitem(BY_LAYER, "complex_step", _after(3, BY_LAYER["complex_step"])),
    "judge": lambda mp: mp.setattr(run_check_module, "judge_gradients", _after(3, run_check_module.judge_gradients)),
    "shrink": lambda mp: mp.setattr(shrink_module, "_finder", lambda judge, key: _raise),
    "diagnosis": lambda mp: mp.setattr(run_diagnose_module, "diagnosis", _raise),
    "render": lambda mp: mp.setitem(report.FORMATS, "text", Format(_raise, "txt")),
}
WHERE = {"shrink": [BUGGY], "diagnosis": [BUGGY]}  # stages only a failing check reaches


def _main(capsys, *argv):
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_harness_error_in_any_stage_is_exit_2_never_a_verdict(stage, monkeypatch, capsys, tmp_path):
    STAGES[stage](monkeypatch)
    for impl in WHERE.get(stage, [CORRECT, BUGGY]):
        code, err = _main(capsys, "check", str(impl), "--examples", "20", "--cases-dir", str(tmp_path))
        assert code == 2, (stage, impl.name, code, err)
        assert "Planted: planted in the harness" in err and "a harness bug, please report it" in err, err


def test_without_the_plant_the_same_checks_pass_and_fail(capsys, tmp_path):
    assert _main(capsys, "check", str(CORRECT), "--examples", "20", "--cases-dir", str(tmp_path))[0] == 0
    assert _main(capsys, "check", str(BUGGY), "--examples", "20", "--cases-dir", str(tmp_path))[0] == 1


def test_a_crosscheck_that_breaks_after_three_cases_is_not_a_pass(monkeypatch, capsys):
    from verifier.run import crosscheck

    monkeypatch.setattr(crosscheck, "compare_case", _after(4, crosscheck.compare_case))
    code, err = _main(capsys, "crosscheck", "--examples", "10")
    assert code == 2 and "a harness bug, please report it" in err, err


def test_a_crosscheck_without_the_plant_passes(capsys):
    assert _main(capsys, "crosscheck", "--examples", "10")[0] == 0
