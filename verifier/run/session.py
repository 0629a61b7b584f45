"""One check's calls of the user's code, bounded: the whole-run budget, and an early end when
the code has shown what it does.

A hang, a crash or a limit hit is a verdict, not a reason to try every case: a timeout (a hang,
or output without end) ends exploration at once, since each try costs the whole limit; after
the first exit, kill or MemoryError at most CONFIRM more cases are tried (a second one ends it
too), then exploration ends with the rows it has. A run whose cases take so long that the examples
asked for cannot fit in the budget ends as soon as that is clear (after its second case: the
first pays for start-up and compiling), and a run that spends its budget ends there. Each call
gets at most the time left in the budget; a call cut short by the budget is not the code's
timeout, and its case is not judged.

A case's references are computed while the user's code runs, and its gradients are judged while
its train_step runs: the two are independent until the judging, and the machine has a core for
each. A big network's references start in a thread (`Background`); a small one's are computed
in this thread once the call's request is sent (`Later`, the sandbox's `meanwhile`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np

from .. import casefile
from ..judge.full import judge_update, learning_rate
from ..judge.rows import row
from ..records import CallOutcome, RunConfig
from .explore import Stop

CONFIRM = 2  # cases tried after the first costly misbehaviour
COSTLY_KINDS = ("timeout", "exited")  # calls that cost a child (and, for a timeout, the whole limit)


def costly(outcome: CallOutcome) -> bool:
    """A call that killed its child or hit a resource limit: each costs a restart, or a limit's worth of time."""
    return outcome.kind in COSTLY_KINDS or (outcome.kind == "exception" and "MemoryError" in outcome.detail)


def to_user(params, layout):
    """The parameters in the implementation's own layout (LAYOUT = "in_out": W transposed)."""
    return [(W.T.copy() if layout == "in_out" else W, b) for W, b in params]


def user_targets(case):
    """T as the implementation takes it: the class indices (B,) of one-hot rows for labels."""
    if case.spec.targets == "labels":
        return np.argmax(case.T, axis=1).astype(np.int64)
    return case.T


def declined(outcome: CallOutcome) -> bool:
    """Whether the call raised NotImplementedError: the code declines the case (DESIGN 3)."""
    return outcome.kind == "exception" and outcome.detail.startswith("NotImplementedError")


class Background:
    """fn(*args) computed in a thread while the caller waits for something else (the user's
    code in its child); `result()` waits for it and raises what fn raised. numpy releases the
    interpreter lock in its products, so the references and the child's work overlap."""

    def __init__(self, fn, *args):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), name="backprop-verify-oracle", daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # re-raised where the result is asked for
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class Later:
    """fn(*args), computed once, when first called: by the sandbox while the user's code runs in
    its child (the `meanwhile` of a call), else by `result()`. No thread: the child is the other
    process, so a small case's references cost no thread start or lock hand-over. What fn raised
    is kept and raised by `result()`, never inside the sandbox's exchange."""

    def __init__(self, fn, *args):
        self._fn, self._args = fn, args
        self._done = False
        self._value = self._error = None

    def __call__(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:  # re-raised where the result is asked for
            self._error = exc
        self._fn = self._args = None

    def result(self):
        self()
        if self._error is not None:
            raise self._error
        return self._value


def resolved(oracle):
    """The oracle itself, once a Background or Later computing it is done."""
    return oracle.result() if isinstance(oracle, (Background, Later)) else oracle


class Session:
    """The sandbox (or in-process runner), what it described, the run's configuration, and the
    clock: `check(case, oracle, judge)` judges one case or raises Stop."""

    def __init__(self, sandbox, info: dict, config: RunConfig):
        self.sandbox, self.info, self.config = sandbox, info, config
        self.start = time.monotonic()
        self.stopped: str | None = None  # why the session ended, in words
        self.cases = 0
        self.first_done: float | None = None  # when the first case finished
        self.costly: list[str] = []  # kinds of the costly calls so far
        self.after_costly = 0  # cases judged since the first costly call
        self.judged = {"loss": 0, "train_step": 0}  # cases on which each was judged (for points)
        self.skipped = 0  # cases the code declined with NotImplementedError (DESIGN section 3)
        self.answers: dict = {}  # NetworkSpec -> CallOutcome of the code's supports(spec)

    # --- the clock ---------------------------------------------------------------------------

    def left(self) -> float:
        return self.config.budget - (time.monotonic() - self.start)

    def stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
        raise Stop(self.stopped)

    def call(self, method: str, *args, meanwhile: Later | None = None) -> CallOutcome:
        """One call of the user's code, with at most the budget's time left; `meanwhile` is
        computed while the code runs when the runner can overlap the two (a Sandbox), else first."""
        if self.stopped:
            raise Stop(self.stopped)
        left = self.left()
        if left <= 0:
            self.stop(f"the budget of {self.config.budget:g} s was spent")
        limit = min(self.config.timeout, left)
        if hasattr(self.sandbox, "timeout"):
            self.sandbox.timeout = limit
        if meanwhile is not None and getattr(self.sandbox, "overlaps", False):
            outcome = getattr(self.sandbox, method)(*args, meanwhile=meanwhile)
        else:
            if meanwhile is not None:
                meanwhile()
            outcome = getattr(self.sandbox, method)(*args)
        if outcome.kind == "timeout" and limit < self.config.timeout:
            self.stop(f"the budget of {self.config.budget:g} s was spent (during a call)")
        return outcome

    # --- what the code takes ------------------------------------------------------------------

    def supports(self, spec) -> bool:
        """Whether the code takes networks like `spec`: its supports(spec), asked once per spec
        (True when it defines none). A supports call that misbehaves answers True, so that the
        case is drawn and its row says what supports did (`check`), never dropped in silence."""
        if not self.info.get("has_supports"):
            return True
        if spec not in self.answers:
            self.answers[spec] = self.call("supports", casefile.spec_dict(spec))
        return self.answers[spec].accepted is not False

    @property
    def rejected(self) -> int:
        """Networks (specs) the code's supports(spec) turned down: never drawn as cases."""
        return sum(1 for o in self.answers.values() if o.accepted is False)

    # --- one case ----------------------------------------------------------------------------

    def check(self, case, oracle, judge):
        """(failures, verdicts, dtype) of the implementation on one case; Stop when the session
        has ended (its last case is judged first). `oracle` may be a Background still computing
        it: it is waited for once the code has answered (its error, a harness bug, raised then)."""
        layout, spec = self.info.get("LAYOUT"), casefile.spec_dict(case.spec)
        answer = self.answers.get(case.spec)
        if answer is not None and answer.kind != "ok":  # supports(spec) itself misbehaved
            resolved(oracle)
            self._after([answer])
            return [row(answer.kind, "supports(spec): " + answer.detail.removeprefix("supports: "), case)], [], None
        try:
            outcome = self.call(
                "gradients",
                to_user(case.params, layout),
                case.X,
                user_targets(case),
                spec,
                meanwhile=oracle if isinstance(oracle, Later) else None,
            )
        finally:
            oracle = resolved(oracle)  # never left running behind a Stop
        calls = [outcome]
        if declined(outcome):  # a case the code says it does not handle: skipped, not failed
            self.skipped += 1
            self._after(calls)
            return [], [], None
        if outcome.kind not in ("ok", "mutated_input"):
            result = [row(outcome.kind, outcome.detail, case)], [], None
        else:
            judged = Later(judge, case, oracle, outcome.grads, outcome.loss, layout, outcome.loss_dtype)
            # the returned gradients are held by `judged` alone, let go once judged: a big
            # network's train_step reply then arrives beside no copy of them
            outcome = replace(outcome, grads=None)
            calls = [outcome]
            self.judged["loss"] += outcome.loss is not None
            step = None
            if self.info.get("has_train_step"):  # judged whatever the gradients were: its own verdict
                lr = learning_rate(oracle)
                args = (to_user(case.params, layout), case.X, user_targets(case), spec, lr)
                step = self.call("train_step", *args, meanwhile=judged)  # judging while it runs
                calls.append(step)
                self.judged["train_step"] += 1
            failures, verdicts, dtype = judged.result()
            if outcome.kind == "mutated_input":
                failures.insert(0, row("mutated_input", outcome.detail, case))
            if step is not None and step.kind not in ("ok", "mutated_input"):
                failures.append(row(step.kind, "train_step: " + step.detail, case))
            elif step is not None:
                failures += judge_update(case, oracle, step.params, lr, layout)
            result = failures, verdicts, dtype
        self._after(calls)
        return result

    def _after(self, calls) -> None:
        """Count the case, and decide whether the session goes on (the case is kept either way)."""
        self.cases += 1
        now = time.monotonic()
        if self.first_done is None:
            self.first_done = now
        bad = [c.kind for c in calls if costly(c)]
        if self.costly:
            self.after_costly += 1
        self.costly += bad
        if "timeout" in self.costly or len(self.costly) > 1 or (self.costly and self.after_costly >= CONFIRM):
            self.stopped = f"ended early after {len(self.costly)} call(s) that " + _what(self.costly)
        elif self.cases >= 2 and self.config.examples > self.cases:
            per_case = (now - self.first_done) / (self.cases - 1)
            need = (now - self.start) + per_case * (self.config.examples - self.cases)
            if need > self.config.budget:
                self.stopped = (
                    f"ended early: at {per_case:.2g} s a case, {self.config.examples} cases would take about "
                    f"{need:.0f} s, over the budget of {self.config.budget:g} s"
                )


def _what(kinds) -> str:
    words = {"timeout": "timed out", "exited": "ended the process", "exception": "ran out of memory"}
    return " or ".join(dict.fromkeys(words.get(k, k) for k in kinds))
