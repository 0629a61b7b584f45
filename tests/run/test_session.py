"""Bounded runs: every hostile implementation gives its row within 30 s at the default settings
(200 examples, 10 s per call, a 300 s budget), as a user runs it: the whole command, timed.

A hang or an output flood is a verdict after one call; an exit or a MemoryError after at most
three; code too slow to finish its examples in the budget ends after its second case; a slow
import is paid once per child, and the child is not replaced while the code behaves. The
twins: a correct implementation behind a slow import still passes, and a run with enough budget
for the slow code goes on."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from verifier.records import RunConfig
from verifier.run import session

CORRECT = """
import numpy as np

def gradients(params, X, T, spec):
    {misbehaviour}
    Z, A = [None], [X]
    for W, b in params:
        Z.append(A[-1] @ W.T + b)
        A.append(1 / (1 + np.exp(-Z[-1])))
    delta = 2 * (A[-1] - T) * A[-1] * (1 - A[-1])
    grads = []
    for l in range(len(params), 0, -1):
        grads.insert(0, (delta.T @ A[l - 1], delta.sum(axis=0)))
        if l > 1:
            delta = (delta @ params[l - 1][0]) * A[l - 1] * (1 - A[l - 1])
    return grads
"""

HOSTILE = {  # name: (code at import, code in gradients, expected exit code, expected row kind)
    "hang": ("", "while True:\n        pass", 1, "timeout"),
    "exit": ("", "import os\n    os._exit(3)", 1, "exited"),
    "flood": ("", "while True:\n        print('x' * 10000)", 1, "timeout"),
    # address space grabbed without touching it: the 2 GB limit (RLIMIT_AS) is met at once. Pages
    # touched (np.ones) are met at the speed the machine faults them in, over 10 s on a fresh
    # virtual machine, and the row is then the time limit's, not MemoryError's
    "memory": ("", "hog = []\n    while True:\n        hog.append(np.empty(2**24))", 1, "exception"),
    "sleeps_just_under_the_limit": ("", "import time\n    time.sleep(9.0)", 2, "incomplete"),
    "slow_import_then_hang": ("import time\ntime.sleep(4)\n", "while True:\n        pass", 1, "timeout"),
}


def _impl(tmp_path, name, at_import, misbehaviour):
    path = tmp_path / f"{name}.py"
    src = at_import + CORRECT.format(misbehaviour=misbehaviour or "pass")
    path.write_text(
        src.replace(
            "import numpy as np\n\ndef",
            "import numpy as np\n\nSUPPORTED_ACTIVATIONS = ('sigmoid',)\nSUPPORTED_LOSSES = ('sse',)\n\ndef",
        )
    )
    return path


def _check(path, *args):
    """(exit code, JSON report, seconds) of the whole `check` command at the default settings."""
    start = time.monotonic()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "check",
            str(path),
            "--format",
            "json",
            "--quiet",
            "--cases-dir",
            str(path.parent / "cases"),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.monotonic() - start
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else p.stderr), seconds


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_implementation_gives_its_row_within_30_s(tmp_path, name):
    at_import, body, code, kind = HOSTILE[name]
    rc, report, seconds = _check(_impl(tmp_path, name, at_import, body))
    assert rc == code, report
    assert seconds < 30, f"{name} took {seconds:.1f} s"
    assert report["failures"][0]["kind"] == kind, report["failures"][0]
    assert report["verdict"] != "pass"
    assert report["stopped"], "a run that ended early says so"
    assert report["examples"] <= 3


def test_a_slow_import_is_paid_once_and_correct_code_passes(tmp_path):
    path = _impl(tmp_path, "slow_import", "import time\ntime.sleep(4)\n", "")
    rc, report, seconds = _check(path)
    assert rc == 0 and report["verdict"] == "pass" and report["examples"] == RunConfig().examples, report
    assert report["stopped"] is None
    assert seconds < 30, f"took {seconds:.1f} s: the import was paid more than once?"


def test_slow_code_with_a_budget_to_match_goes_on(tmp_path):
    """The twin of the slow case: 0.2 s a call fits 20 examples in a 60 s budget, so nothing ends early."""
    path = _impl(tmp_path, "slow", "", "import time\n    time.sleep(0.2)")
    rc, report, _ = _check(path, "--examples", "20", "--budget", "60")
    assert rc == 0 and report["verdict"] == "pass" and report["examples"] == 20, report
    rc, report, _ = _check(path, "--examples", "2000", "--budget", "60")
    assert rc == 2 and report["failures"][0]["kind"] == "incomplete" and report["examples"] < 20, report
    assert "over the budget of 60 s" in report["stopped"]


def test_the_budget_ends_a_run_mid_call_and_it_is_not_the_codes_timeout(tmp_path):
    # The call sleeps far past the budget and the per-call timeout is longer still, so only the
    # budget can end it, however loaded the machine is.
    path = _impl(tmp_path, "sleepy", "", "import time\n    time.sleep(60)")
    rc, report, seconds = _check(path, "--budget", "6", "--timeout", "120", "--examples", "1")
    assert rc == 2 and seconds < 45, report
    assert [f["kind"] for f in report["failures"]] == ["incomplete"], report
    assert "budget of 6 s was spent" in report["stopped"]


# --- the rules themselves, on recorded outcomes ------------------------------------------------


class _Outcomes:
    """A stand-in runner that answers each call with the next recorded outcome."""

    def __init__(self, kinds):
        from verifier.records import CallOutcome

        self.kinds, self.CallOutcome = list(kinds), CallOutcome

    def gradients(self, *args):
        kind = self.kinds.pop(0)
        return self.CallOutcome(kind, "MemoryError: planted" if kind == "exception" else kind)


def _run(kinds, cases=10, **config):
    from verifier.records import NetworkSpec
    from verifier.strategies import case_from_draw

    s = session.Session(_Outcomes(kinds), {}, RunConfig(**config))
    case = case_from_draw(NetworkSpec((2, 1), ("sigmoid",), "sse"), 1, "normal", 0)
    judged = 0
    for _ in range(cases):
        try:
            s.check(case, None, None)
        except session.Stop:
            break
        judged += 1
        if s.stopped:
            break
    return judged, s.stopped


def test_a_timeout_ends_at_once_an_exit_after_confirming():
    assert _run(["timeout"] * 10) == (1, "ended early after 1 call(s) that timed out")
    judged, why = _run(["exited", "exited"] * 5)
    assert judged == 2 and "ended the process" in why
    judged, why = _run(["exited"] + ["bad_output"] * 9)  # one exit, then two confirming cases
    assert judged == 1 + session.CONFIRM and why
    assert _run(["bad_output"] * 10) == (10, None)  # cheap misbehaviour: every case is tried


def test_a_background_result_is_its_value_and_its_error_is_raised_where_asked_for():
    import threading

    started = threading.Event()

    def slow(x):
        started.set()
        return x * 2

    assert session.Background(slow, 21).result() == 42 and started.is_set()

    def broken():
        raise ValueError("the references disagree")

    pending = session.Background(broken)
    with pytest.raises(ValueError, match="disagree"):
        pending.result()
    assert session.resolved(7) == 7  # an oracle already there is itself


def test_an_oracle_computed_beside_the_call_is_waited_for_and_its_error_wins():
    """Session.check takes a Background oracle: judged with its value once the code answered;
    a harness error while computing it is raised, never a verdict about the code."""
    import numpy as np

    from verifier.errors import ReferenceDisagreement
    from verifier.records import CallOutcome, NetworkSpec
    from verifier.strategies import case_from_draw

    case = case_from_draw(NetworkSpec((2, 3, 1), ("tanh", "identity"), "sse"), 2, "normal", 0)

    class Box:
        def gradients(self, *args):
            return CallOutcome(kind="ok", grads=[(np.zeros_like(W), np.zeros_like(b)) for W, b in case.params])

    s = session.Session(Box(), {}, RunConfig())
    seen = []

    def judge(c, oracle, grads, loss, layout, loss_dtype=None):
        seen.append(oracle)
        return [], [], "float64"

    s.check(case, session.Background(lambda: "the oracle"), judge)
    assert seen == ["the oracle"]

    def disagree():
        raise ReferenceDisagreement("references delta_rule and complex_step disagree")

    with pytest.raises(ReferenceDisagreement):
        s.check(case, session.Background(disagree), judge)
    assert seen == ["the oracle"]  # nothing judged against an oracle that is not there


def test_a_later_is_computed_once_and_its_error_is_raised_where_asked_for():
    calls = []
    later = session.Later(lambda x: calls.append(x) or x * 2, 21)
    later()
    later()  # a retried call runs its meanwhile again: the work is done once
    assert later.result() == 42 and calls == [21]
    assert session.resolved(session.Later(lambda: "oracle")) == "oracle"  # never run by a call: run now

    def broken():
        raise ValueError("the references disagree")

    pending = session.Later(broken)
    pending()  # inside the sandbox's exchange: nothing raised there
    with pytest.raises(ValueError, match="disagree"):
        pending.result()


def _overlapping_box(case, log, overlaps=True):
    import numpy as np

    from verifier.records import CallOutcome

    class Box:
        def gradients(self, *args, meanwhile=None):
            log.append("gradients")
            if meanwhile is not None:
                meanwhile()
            return CallOutcome(kind="ok", grads=[(np.zeros_like(W), np.zeros_like(b)) for W, b in case.params])

        def train_step(self, *args, meanwhile=None):
            log.append("train_step")
            if meanwhile is not None:
                meanwhile()
            return CallOutcome(kind="ok", params=[(W.copy(), b.copy()) for W, b in case.params])

    Box.overlaps = overlaps
    return Box()


@pytest.mark.parametrize("overlaps", [True, False], ids=["sandbox", "runner-without-overlap"])
def test_the_oracle_is_computed_during_gradients_and_the_judging_during_train_step(overlaps):
    """With a runner that overlaps (a Sandbox) the oracle is computed inside the gradients call
    and the gradients are judged inside the train_step call; one that does not gets each first.
    The rows are the same either way: the gradients' failures, then train_step's."""
    from verifier.records import Failure, NetworkSpec
    from verifier.run.check import oracle_of
    from verifier.strategies import case_from_draw

    case = case_from_draw(NetworkSpec((2, 3, 1), ("tanh", "identity"), "sse"), 2, "normal", 0)
    log = []
    s = session.Session(_overlapping_box(case, log, overlaps), {"has_train_step": True}, RunConfig())

    def oracle():
        log.append("oracle")
        return oracle_of(case, RunConfig())

    def judge(c, oracle, grads, loss, layout, loss_dtype=None):
        log.append("judge")
        return [Failure("wrong_gradient", "planted")], [], "float64"

    failures, _, dtype = s.check(case, session.Later(oracle), judge)
    if overlaps:
        assert log == ["gradients", "oracle", "train_step", "judge"]
    else:
        assert log == ["oracle", "gradients", "judge", "train_step"]
    assert failures[0].detail == "planted" and dtype == "float64"
    assert len(failures) == 2 and failures[1].kind != "wrong_gradient"  # train_step returned params unchanged
