"""Self mode for networks (DESIGN 3, `--against self|both`): the user's `gradients` judged
against the derivative of the user's own `loss(params, X, T, spec)`.

Per generated case: one call of gradients, then one or two batches of loss evaluations in the
child (the parent sends the points, the child returns values, the parent judges:
verifier/judge/selfdiff.py). Failures are shrunk per class like model mode, the minimal case
saved with its replay command, and diagnosed from the per-entry values. `--against both` adds
model mode's judgement (verifier/run/check.py) and `forward_mismatch` rows where the user's
loss differs from the declared convention's.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import replace

from .. import casefile, safe_io
from ..errors import ImplementationError, SpecError
from ..judge import selfdiff, selfjudge
from ..judge.rows import row
from ..records import CheckResult, Failure, RunConfig
from ..sandbox import Sandbox
from ..sandbox.requests import Evaluations, evaluate
from . import explore, shrink
from .check import run_check, strategy_for
from .explore import Stop
from .session import Session, to_user

REFERENCES = ("self:complex_step", "self:central_diff")


def _self_judge(session: Session, box, seed: int, both: bool, methods: set, judged_by: Counter):
    """judge(case) -> (failures, verdicts, dtype) against the user's own loss; the numerical
    methods used go into `methods`, and how each tensor was judged (selfdiff.how_kind) is
    counted in `judged_by`."""
    layout = session.info.get("LAYOUT")

    def judge(case):
        if session.stopped:
            raise Stop(session.stopped)
        spec = casefile.spec_dict(case.spec)
        outcome = session.call("gradients", to_user(case.params, layout), case.X, case.T, spec)
        if outcome.kind not in ("ok", "mutated_input"):
            return [row(outcome.kind, outcome.detail, case)], [], None
        target = {"kind": "loss", "fn": "loss", "nlayers": len(case.params), "spec": spec}

        def run(points, directions):
            base = [a for W, b in to_user(case.params, layout) for a in (W, b)] + [case.X, case.T]
            ev = evaluate(box, target, base, list(directions), points, per_call=outcome.seconds)
            if not isinstance(ev, Evaluations):
                return f"{ev.kind}: {ev.detail}"
            if ev.failed:
                return f"loss raised at {ev.failed} of {len(points)} points: {ev.detail}"
            return ev.values

        failures, verdicts, dtype, res = selfjudge.judge_self(case, run, outcome.grads, layout, seed)
        if outcome.kind == "mutated_input":
            failures.insert(0, row("mutated_input", outcome.detail, case))
        if both and res is not None and res.f0 is not None:
            failures += selfjudge.forward_rows(case, res.f0, res.noise)
        if res is not None and res.error is None:
            methods.add(res.method)
            judged_by.update(selfdiff.how_kind(h) for h in res.how.values())
        return failures, verdicts, dtype

    return judge


def run_self(impl, config: RunConfig, *, case=None, progress=None) -> CheckResult:
    """Check `impl` against its own loss (and, with against="both", the model's references)."""
    if config.against not in ("self", "both"):
        raise SpecError(f"run_self judges against self or both, not {config.against!r}")
    if case is None:
        strategy_for({}, config)
    start = time.perf_counter()
    with Sandbox(impl, timeout=config.timeout, python=config.python, require_isolation=config.require_isolation) as box:
        info = box.describe()
        if not info.get("has_loss"):
            raise ImplementationError(
                f"{impl} defines no loss(params, X, T, spec): --against {config.against} judges the "
                "gradients against that function; define it (your forward and loss), or use --against model"
            )
        session = Session(box, info, config)
        used: set[str] = set()
        judged_by: Counter = Counter()
        judge = _self_judge(session, box, config.seed, config.against == "both", used, judged_by)
        if case is not None:
            runs = [(case, judge(case))]
            failures, minimal = list(runs[0][1][0]), {shrink.failure_class(f): case for f in runs[0][1][0]}
        else:
            strategy = strategy_for(info, config)
            runs = explore.explore(strategy, judge, examples=config.examples, seed=config.seed, progress=progress)
            failures, minimal = [f for _, r in runs for f in r[0]], {}
            if config.shrink and not session.stopped and failures:
                failures, minimal = shrink.every_class(strategy, judge, config, failures)
        failures = _saved(failures, minimal, impl, config)
        methods = sorted(used)
    stopped = session.stopped
    if stopped and not failures:
        failures = [Failure("incomplete", f"{stopped}, after {len(runs)} of {config.examples} cases: not a pass")]
    result = CheckResult(
        verdict=("error" if all(f.kind == "incomplete" for f in failures) else "fail") if failures else "pass",
        seed=config.seed,
        examples=len(runs),
        implementation=safe_io.shown_name(impl),
        references=tuple(f"self:{m}" for m in methods),
        failures=tuple(failures),
        dtype="float64",
        seconds=time.perf_counter() - start,
        stopped=stopped,
        isolation=box.isolation_level[0],
        isolation_mechanisms=tuple(box.isolation_level[1]),
        extra={
            "against": config.against,
            "self_judged": {kind: judged_by[kind] for kind in ("direction", "hypothesis", "entries")},
            **casefile.kept(minimal),
        },
    )
    if config.against == "both":
        model = run_check(impl, replace(config, against="model"), case=case, progress=progress)
        result = replace(
            result,
            verdict=max(result.verdict, model.verdict, key=("pass", "fail", "error").index),
            failures=model.failures + result.failures,
            references=model.references + result.references,
            examples=result.examples + model.examples,
            tensors=model.tensors,
            seconds=result.seconds + model.seconds,
        )
    return result


def _saved(failures, minimal, impl, config: RunConfig):
    """Each class's minimal case saved, with the replay command on its rows."""
    out = list(failures)
    for n, (key, case) in enumerate(minimal.items()):
        path = None
        if config.cases_dir:
            os.makedirs(config.cases_dir, exist_ok=True)
            stem = safe_io.file_stem(impl)
            path = casefile.save(case, os.path.join(config.cases_dir, f"{stem}-self-minimal-{n + 1}.json"))
        replay = (
            f"backprop-verify check {safe_io.shell_word(impl)} --against {config.against} "
            f"--case {safe_io.shell_word(path)}"
            if path
            else None
        )
        out = [
            replace(f, case_file=path, replay=replay)
            if shrink.failure_class(f) == key and f.case == casefile.summary(case)
            else f
            for f in out
        ]
    return out
