"""Check a user's implementation: generated cases, an isolated child, per-entry judgement,
a shrunk smallest failing case and a diagnosis.

Compute, then judge, then report: `run_check` returns a CheckResult; the CLI and the assert
helper turn it into an exit code or an exception.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from .. import casefile, strategies
from ..errors import SpecError
from ..judge import fast
from ..judge.full import judge_gradients, judge_update, learning_rate
from ..judge.oracle import Oracle
from ..judge.references import full_oracles
from ..judge.rows import row, with_step_curves
from ..judge.shape import narrowest
from ..records import CheckResult, RunConfig, TensorVerdict
from ..sandbox import Sandbox
from . import explore
from .diagnose import diagnosis, step_diagnosis

MODES = ("full", "fast")  # fast: see verifier/judge/fast.py
MISBEHAVIOUR = ("exception", "timeout", "exited")  # not shrunk: each try can cost a timeout
KEPT = 20  # failure rows kept when nothing could be shrunk


def to_user(params, layout):
    """The parameters in the implementation's own layout (LAYOUT = "in_out": W transposed)."""
    return [(W.T.copy() if layout == "in_out" else W, b) for W, b in params]


def oracle_for(case, config: RunConfig):
    """(oracle, judge) for the run's mode: full judges every entry against full_oracles(case);
    fast (verifier/judge/fast.py) judges each tensor along random directions, entries only
    where that fails."""
    if config.mode == "fast":
        return fast.FastOracle(case, config.directions_seed), fast.judge_fast
    return Oracle(case), judge_gradients


def check_case(sandbox, info, case, config: RunConfig):
    """(failures, verdicts, dtype) of the implementation on one case."""
    oracle, judge = oracle_for(case, config)
    layout, spec = info.get("LAYOUT"), casefile.spec_dict(case.spec)
    outcome = sandbox.gradients(to_user(case.params, layout), case.X, case.T, spec)
    if outcome.kind not in ("ok", "mutated_input"):
        return [row(outcome.kind, outcome.detail, case)], [], None
    failures, verdicts, dtype = judge(case, oracle, outcome.grads, outcome.loss, layout)
    if outcome.kind == "mutated_input":
        failures.insert(0, row("mutated_input", outcome.detail, case))
    if info.get("has_train_step") and not failures:
        lr = learning_rate(oracle)
        step = sandbox.train_step(to_user(case.params, layout), case.X, case.T, spec, lr)
        if step.kind not in ("ok", "mutated_input"):
            failures.append(row(step.kind, "train_step: " + step.detail, case))
        else:
            failures += judge_update(case, oracle, step.params, lr, layout)
    return failures, verdicts, dtype


def require_supported(info, activations, loss, what):
    """SpecError unless the implementation supports every one of these activations and the loss:
    a network it never claimed to handle is the command's mistake, not a failure of the code."""
    checks = (("SUPPORTED_ACTIVATIONS", "activation", activations), ("SUPPORTED_LOSSES", "loss", [loss]))
    for attr, kind, names in checks:
        theirs = info.get(attr)
        missing = [n for n in dict.fromkeys(names) if n is not None and theirs is not None and n not in theirs]
        if missing:
            raise SpecError(
                f"{what} uses {kind} {', '.join(missing)}, but the implementation's {attr} is "
                f"{list(theirs)}: use only those, or add the names to {attr}"
            )


def strategy_for(info, config: RunConfig, *, max_depth=4, max_width=6):
    """The cases an implementation is checked on: what it supports, narrowed by the options."""

    def narrow(theirs, ours, what):
        if theirs is None:
            return ours
        theirs = tuple(theirs)
        if ours is None:
            return theirs
        both = tuple(n for n in ours if n in theirs)
        if not both:
            raise SpecError(f"the implementation supports {what} {list(theirs)}, none of {list(ours)}")
        return both

    acts = narrow(info.get("SUPPORTED_ACTIVATIONS"), config.activations, "activations")
    losses = narrow(info.get("SUPPORTED_LOSSES"), [config.loss] if config.loss else None, "losses")
    pinned = config.layer_activations
    if pinned is not None:  # a pinned homework network
        if config.sizes is None:
            raise SpecError("layer_activations pins one activation per layer: give sizes too")
        require_supported(info, pinned, None, "the pinned network")
        names = losses or [n for n in strategies.ALL_LOSSES if strategies.compatible(pinned[-1], n)]
        specs = strategies.pinned_specs(config.sizes, pinned, names)
    else:
        specs = strategies.network_specs(
            max_depth=max_depth, max_width=max_width, activations=acts, losses=losses, sizes=config.sizes
        )
    return strategies.cases(specs=specs, batch=config.batch)


def run_check(
    impl, config: RunConfig | None = None, *, case=None, progress=None, runner=None, **options
) -> CheckResult:
    """Check `impl` (a .py path or module name) and return a CheckResult.

    `config` (or, instead, its fields as keyword `options`) says how; `case` runs that one case
    alone (a failure's replay); `runner`, an object with the Sandbox interface, replaces the
    isolated child (the API's in-process functions)."""
    if config is None:
        config = RunConfig(**options)
    elif options:
        raise SpecError(f"give either a RunConfig or its fields, not both ({', '.join(options)})")
    if config.mode not in MODES:
        raise SpecError(f"mode {config.mode!r}: use one of {', '.join(MODES)}")
    start = time.perf_counter()
    with runner if runner is not None else Sandbox(impl, timeout=config.timeout) as sandbox:
        info = sandbox.describe()

        def judge(c):
            return check_case(sandbox, info, c, config)

        if case is not None:
            require_supported(info, case.spec.activations, case.spec.loss, "the case")
            runs, minimal = [(case, judge(case))], case
            failures = list(runs[0][1][0])
        else:
            strategy = strategy_for(info, config)
            runs = explore.explore(strategy, judge, examples=config.examples, seed=config.seed, progress=progress)
            failures, minimal = [f for _, r in runs for f in r[0]], None
            if config.shrink:
                failures, minimal = _shrink(strategy, judge, config, failures)
        failures = _finish(sandbox, info, failures, minimal, impl, config)
    return CheckResult(
        verdict="fail" if failures else "pass",
        seed=config.seed,
        examples=len(runs),
        implementation=str(impl),
        references=_references(config.mode, [c for c, _ in runs]),
        failures=tuple(failures),
        mode=config.mode,
        dtype=narrowest(r[2] for _, r in runs if r[2]),
        tensors=_per_tensor(runs),
        seconds=time.perf_counter() - start,
        extra={
            **({"minimal_case": casefile.to_dict(minimal)} if minimal is not None else {}),
            **({"directions_seed": config.directions_seed} if config.mode == "fast" else {}),
        },
    )


def _references(mode, cases):
    """The references a run judged against: every one that judged one of its cases."""
    if mode == "fast":
        return fast.REFERENCES
    return tuple(dict.fromkeys(n for case in cases for n in full_oracles(case)))


def _shrink(strategy, judge, config, failures):
    """Replace the first shrinkable failure's rows by those of the smallest case that fails
    the same way; misbehaviour rows (crash, hang, exit) keep the case they happened on."""
    target = next((f for f in failures if f.kind not in MISBEHAVIOUR), None)
    if target is None:
        return failures[:KEPT], None

    def same_kind(case):
        fails = judge(case)[0]
        return fails if any(f.kind == target.kind for f in fails) else None

    found = explore.shrink(strategy, same_kind, examples=config.examples, seed=config.seed)
    if found is None:  # flaky: keep what was seen
        return failures[:KEPT], None
    minimal, fails = found
    return list(fails) + [f for f in failures if f.kind in MISBEHAVIOUR][:10], minimal


def _finish(sandbox, info, failures, minimal, impl, config):
    """Diagnose the minimal case's gradient failures, save it, attach the replay command and
    the step curves of its rows."""
    if minimal is None or not failures:
        return failures
    path = None
    if config.cases_dir:
        os.makedirs(config.cases_dir, exist_ok=True)
        stem = os.path.splitext(os.path.basename(str(impl)))[0]
        path = casefile.save(minimal, os.path.join(config.cases_dir, f"{stem}-minimal.json"))
    replay = f"backprop-verify check {impl} --case {path}" if path else None
    here = [f for f in failures if f.case == casefile.summary(minimal)]
    oracle = lambda c: oracle_for(c, config)[0]  # noqa: E731
    label = (None, None)
    if any(f.kind == "mismatch" for f in here):
        label = diagnosis(sandbox, info, minimal, config, oracle, to_user)
    step = (None, None)
    if any(f.kind == "update_mismatch" and f.diagnosis is None and "unchanged" not in f.detail for f in here):
        step = step_diagnosis(sandbox, info, minimal, config, oracle, to_user)
    out = []
    for f in failures:
        if f.case == casefile.summary(minimal):
            f = replace(f, case_file=path, replay=replay)
            if f.kind == "mismatch" and label[0]:
                f = replace(f, diagnosis=label[0], detail=f"{f.detail}; {label[1]}")
            if f.kind == "update_mismatch" and f.diagnosis is None and step[0]:
                f = replace(f, diagnosis=step[0], detail=f"{f.detail}; {step[1]}")
        out.append(f)
    return with_step_curves(out, minimal)


def _per_tensor(runs) -> tuple[TensorVerdict, ...]:
    """Per (layer, param) maximum errors over every case: what the gate's baseline records."""
    best: dict[tuple[int, str], TensorVerdict] = {}
    for _, (_, verdicts, _) in runs:
        for v in verdicts:
            k = (v.layer, v.param)
            if k not in best:
                best[k] = v
            else:
                b = best[k]
                best[k] = replace(
                    b,
                    compared=b.compared + v.compared,
                    excused=b.excused + v.excused,
                    failed=b.failed + v.failed,
                    max_abs=max(b.max_abs, v.max_abs),
                    max_rel=max(b.max_rel, v.max_rel),
                    worst=(),
                )
    return tuple(best[k] for k in sorted(best))
