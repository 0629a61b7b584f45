"""Check a user's implementation: generated cases, an isolated child, per-entry judgement,
a shrunk smallest failing case and a diagnosis.

Compute, then judge, then report: `run_check` returns a CheckResult; the CLI and the assert
helper turn it into an exit code or an exception.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from .. import casefile, safe_io
from ..errors import IsolationError, SpecError
from ..judge import fast, references
from ..judge.full import judge_gradients
from ..judge.oracle import Oracle
from ..judge.references import full_oracles
from ..judge.rows import with_step_curves
from ..judge.shape import NOTE_KINDS, mixed_note, narrowest
from ..records import CheckResult, Failure, RunConfig, TensorVerdict
from ..sandbox import Sandbox
from ..specs import TARGETS, activation_names, loss_name
from . import explore, shrink
from .explore import Stop
from .session import Background, Later, Session, to_user

MODES = ("full", "fast")  # fast: see verifier/judge/fast.py


NO_VERDICT = ("incomplete", "nothing_to_judge")  # rows that make a run an error, not a fail


def min_judged(config: RunConfig, case) -> int:
    """Judged cases a verdict needs: a quarter of the examples (at least 1); the case, for a replay."""
    return 1 if case is not None else max(1, config.examples // 4)


def oracle_for(case, config: RunConfig):
    """(oracle, judge) for the run's mode: full judges every entry against full_oracles(case)
    (with JAX too when config.jax); fast (verifier/judge/fast.py) judges each tensor along
    random directions, entries only where that fails."""
    return oracle_of(case, config), judge_of(config)


def oracle_of(case, config: RunConfig):
    """The references' answer for `case` in the run's mode (see oracle_for)."""
    if config.mode == "fast":
        return fast.FastOracle(case, config.directions_seed)
    return Oracle(case, full_oracles(case, config.jax))


OVERLAP_MIN = 50_000  # parameters from which a case's references are computed beside the call


def oracle_beside_call(case, config: RunConfig):
    """The oracle of `case`, computed while the code runs: in a thread (run/session.py:
    Background) when the network is big enough for that to pay, from the start of the call;
    else once the call's request is sent, in this thread while the child works (Later): on a
    small network a thread's start and the hand-over of the interpreter lock cost more than
    the milliseconds overlapped."""
    if sum(W.size + b.size for W, b in case.params) >= OVERLAP_MIN:
        return Background(oracle_of, case, config)
    return Later(oracle_of, case, config)


def judge_of(config: RunConfig):
    return fast.judge_fast if config.mode == "fast" else judge_gradients


def check_case(sandbox, info, case, config: RunConfig):
    """(failures, verdicts, dtype) of the implementation on one case, outside any run's budget."""
    oracle, judge = oracle_for(case, config)
    return Session(sandbox, info, replace(config, budget=float("inf"))).check(case, oracle, judge)


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


def declared(info, config: RunConfig):
    """The module's declarations in canonical form: LOSS (the one loss it computes) and
    SUPPORTED_LOSSES as canonical names (LOSS alone stands for SUPPORTED_LOSSES = (LOSS,)),
    TARGETS checked against --targets. SpecError saying the fix for anything else."""
    info = dict(info)

    def canonical(value, attr):
        try:
            return loss_name(value)
        except SpecError as exc:
            raise SpecError(f"the implementation's {attr}: {exc}") from None

    loss = info.get("LOSS")
    supported = info.get("SUPPORTED_LOSSES")
    if supported is not None:
        supported = list(dict.fromkeys(canonical(v, "SUPPORTED_LOSSES") for v in supported))
    if loss is not None:
        loss = canonical(loss, "LOSS")
        if supported is not None and loss not in supported:
            raise SpecError(f"the implementation's LOSS {loss} is not in its SUPPORTED_LOSSES {supported}: drop one")
        supported = supported or [loss]
    info["LOSS"], info["SUPPORTED_LOSSES"] = loss, supported
    if info.get("SUPPORTED_ACTIVATIONS") is not None:
        try:
            info["SUPPORTED_ACTIVATIONS"] = list(activation_names(info["SUPPORTED_ACTIVATIONS"]))
        except SpecError as exc:
            raise SpecError(f"the implementation's SUPPORTED_ACTIVATIONS: {exc}") from None
    theirs = info.get("TARGETS")
    if theirs is not None and theirs not in TARGETS:
        raise SpecError(f"the implementation's TARGETS {theirs!r}: choose from {', '.join(TARGETS)}")
    if theirs is not None and config.targets is not None and theirs != config.targets:
        raise SpecError(f"--targets {config.targets} but the implementation's TARGETS is {theirs!r}: drop one")
    info["TARGETS"] = config.targets or theirs or "soft"
    return info


def strategy_for(info, config: RunConfig, *, max_depth=4, max_width=6, supports=None):
    """The cases an implementation is checked on: what it supports, narrowed by the options;
    `supports(spec) -> bool` (the code's own, asked in the child) filters the networks before
    any data is drawn, so a rejected network costs a round trip, not an example."""
    from .. import strategies  # Hypothesis, imported only by a run that draws (a case file needs none)

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
    targets = info.get("TARGETS") or config.targets or "soft"
    pinned = config.layer_activations
    if pinned is not None:  # a pinned homework network
        if config.sizes is None:
            raise SpecError("layer_activations pins one activation per layer: give sizes too")
        require_supported(info, pinned, None, "the pinned network")
        names = losses or [n for n in strategies.ALL_LOSSES if strategies.compatible(pinned[-1], n)]
        specs = strategies.pinned_specs(config.sizes, pinned, names, targets)
    else:
        specs = strategies.network_specs(
            max_depth=max_depth,
            max_width=max_width,
            activations=acts,
            losses=losses,
            sizes=config.sizes,
            targets=targets,
        )
    if supports is not None:
        specs = specs.filter(supports)
    return strategies.cases(specs=specs, batch=config.batch)


def run_check(
    impl, config: RunConfig | None = None, *, case=None, progress=None, runner=None, case_stem=None, **options
) -> CheckResult:
    """Check `impl` (a .py path or module name) and return a CheckResult.

    `config` (or, instead, its fields as keyword `options`) says how; `case` runs that one case
    alone (a failure's replay); `runner`, an object with the Sandbox interface, replaces the
    isolated child (the API's in-process functions); `case_stem` names its minimal case files
    (default: the file's stem; a class run gives each submission its own, run/batch.py)."""
    if config is None:
        config = RunConfig(**options)
    elif options:
        raise SpecError(f"give either a RunConfig or its fields, not both ({', '.join(options)})")
    if config.loss is not None:
        config = replace(config, loss=loss_name(config.loss))
    if config.activations is not None:  # leaky_relu:0.20 is leaky_relu:0.2
        config = replace(config, activations=activation_names(config.activations))
    if config.layer_activations is not None:  # one per layer, repeats kept
        pinned = tuple(activation_names([n])[0] for n in config.layer_activations)
        config = replace(config, layer_activations=pinned)
    if config.mode not in MODES:
        raise SpecError(f"mode {config.mode!r}: use one of {', '.join(MODES)}")
    if runner is not None and config.require_isolation and not hasattr(runner, "isolation_level"):
        raise IsolationError(
            "require_isolation: code checked in this process is not isolated at all; give the path "
            "of a .py file or a module name instead, or drop require_isolation"
        )
    if case is None:  # networks the options alone rule out: said before the code is even imported
        strategy_for({}, config)
    if config.cases_dir:  # a link or someone else's directory there: refused before the code runs
        safe_io.output_dir(config.cases_dir, what="cases directory", create=False)
    start = time.perf_counter()
    if config.jax and config.mode == "full":  # its import overlaps the child's start and the first case
        references.load_jax_in_background()
    sandbox_or_runner = (
        runner
        if runner is not None
        else Sandbox(impl, timeout=config.timeout, python=config.python, require_isolation=config.require_isolation)
    )
    with sandbox_or_runner as sandbox:
        session = Session(sandbox, declared(sandbox.describe(), config), config)
        notes: dict[str, str] = {}  # note kind -> the first such row's detail

        def judge(c):
            if session.stopped:
                raise Stop(session.stopped)
            before = session.skipped
            rows, verdicts, dtype = session.check(c, oracle_beside_call(c, config), judge_of(config))
            if session.skipped > before and case is None:
                from .. import strategies  # drawn cases only: loaded by strategy_for already

                strategies.reject()  # declined (NotImplementedError): not a case, draw another
            for f in rows:
                if f.kind in NOTE_KINDS:
                    notes.setdefault(f.kind, f.detail)
            return [f for f in rows if f.kind not in NOTE_KINDS], verdicts, dtype

        if case is not None:
            require_supported(session.info, case.spec.activations, case.spec.loss, "the case")
            runs = [(case, judge(case))]
            failures, minimal = list(runs[0][1][0]), {_class(f): case for f in runs[0][1][0]}
        else:
            strategy = strategy_for(session.info, config, supports=session.supports)
            runs = explore.explore(strategy, judge, examples=config.examples, seed=config.seed, progress=progress)
            failures, minimal = [f for _, r in runs for f in r[0]], {}
            if config.shrink and not session.stopped:
                failures, minimal = shrink.every_class(strategy, judge, config, failures)
        failures = _finish(session, failures, minimal, impl, case_stem)
    references.wait_for_jax()
    stopped = session.stopped
    judged = len(runs) if case is None else len(runs) - session.skipped
    if not failures and not stopped and judged < min_judged(config, case):  # a stop is incomplete, below
        failures = [_nothing_to_judge(session, judged, min_judged(config, case))]
    level, mechanisms = getattr(sandbox, "isolation_level", ("in-process", ()))
    if stopped and not failures:  # never a pass: the run did not judge what it was asked to
        failures = [
            Failure(
                "incomplete",
                f"{stopped}, after {len(runs)} of {config.examples} cases: nothing "
                "failed so far, but this is not a pass; raise --budget or --timeout, or lower "
                "--examples",
            )
        ]
    tensors = _per_tensor(runs)
    mixed = mixed_note(tensors)
    return CheckResult(
        verdict=("error" if all(f.kind in NO_VERDICT for f in failures) else "fail") if failures else "pass",
        seed=config.seed,
        examples=len(runs),
        implementation=safe_io.shown_name(impl),  # a student's file name: shown, never raw
        references=_references(config, [c for c, _ in runs]),
        failures=tuple(failures),
        mode=config.mode,
        dtype=narrowest(r[2] for _, r in runs if r[2]),
        tensors=tensors,
        seconds=time.perf_counter() - start,
        stopped=stopped,
        skipped=session.skipped,
        notes=tuple(notes.values()) + ((mixed,) if mixed else ()),
        isolation=level,
        isolation_mechanisms=tuple(mechanisms),
        extra={
            **casefile.kept(minimal),
            **({"directions_seed": config.directions_seed} if config.mode == "fast" else {}),
            # cases whose loss value and train_step were judged (for points); absent when none
            **({"judged": dict(session.judged)} if any(session.judged.values()) else {}),
            **({"rejected_networks": session.rejected} if session.rejected else {}),
        },
    )


def _nothing_to_judge(session, judged: int, need: int) -> Failure:
    """The row of a run that judged too few cases to give a verdict (DESIGN section 3)."""
    why = []
    if session.skipped:
        why.append(f"the code declined {session.skipped} case(s) with NotImplementedError")
    if session.rejected:
        why.append(f"its supports(spec) turned down {session.rejected} of {len(session.answers)} networks drawn")
    return Failure(
        "nothing_to_judge",
        f"nothing to judge: {' and '.join(why) or 'no case could be drawn'}, and {judged} judged is fewer "
        f"than the {need} a verdict needs; narrow the cases to what it supports (--sizes, --activations, "
        "--loss, SUPPORTED_ACTIVATIONS, SUPPORTED_LOSSES) or make it handle them",
    )


def _references(config, cases):
    """The references a run judged against: every one that judged one of its cases."""
    if config.mode == "fast":
        return fast.REFERENCES
    return tuple(dict.fromkeys(n for case in cases for n in full_oracles(case, config.jax)))


def _finish(session, failures, minimal, impl, case_stem=None):
    """Each failure class's minimal case saved, its gradient rows diagnosed, the replay command
    and the step curves attached."""
    out = list(failures)
    for n, (key, case) in enumerate(minimal.items()):
        path = None
        if session.config.cases_dir:
            safe_io.output_dir(session.config.cases_dir, what="cases directory")
            stem = case_stem or safe_io.file_stem(impl)
            name = f"{stem}-minimal.json" if n == 0 else f"{stem}-minimal-{n + 1}.json"
            path = casefile.save(case, os.path.join(session.config.cases_dir, name), own_dir=True)
        replay = f"backprop-verify check {safe_io.shell_word(impl)} --case {safe_io.shell_word(path)}" if path else None
        ours = [i for i, f in enumerate(out) if _class(f) == key and f.case == casefile.summary(case)]
        label = _diagnosis(session, case) if any(out[i].kind == "mismatch" for i in ours) else (None, None)
        steps = [out[i] for i in ours if out[i].kind == "update_mismatch" and out[i].diagnosis is None]
        step = _diagnosis(session, case, "step") if any("unchanged" not in f.detail for f in steps) else (None, None)
        for i in ours:
            f = replace(out[i], case_file=path, replay=replay)
            if f.kind == "mismatch" and label[0]:
                f = replace(f, diagnosis=label[0], detail=f"{f.detail}; {label[1]}")
            if f.kind == "update_mismatch" and f.diagnosis is None and step[0]:
                f = replace(f, diagnosis=step[0], detail=f"{f.detail}; {step[1]}")
            out[i] = f
        out = with_step_curves(out, case)
    return out


def _class(f) -> tuple:
    """What makes two failures the same class for shrinking: their kind (see run/shrink.py)."""
    return shrink.failure_class(f)


def _diagnosis(session, case, what="gradients"):
    """(label, note) for the minimal case's rows (verifier/run/diagnose.py), or (None, None)
    when no time is left to call the code again: the rows then stand without a label."""
    if session.stopped or session.left() <= 0:
        return None, None
    from .diagnose import diagnosis, step_diagnosis  # a failure's work: not imported by a pass

    oracle = lambda c: oracle_for(c, session.config)[0]  # noqa: E731
    find = diagnosis if what == "gradients" else step_diagnosis
    return find(session.sandbox, session.info, case, session.config, oracle, to_user)


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
                    dtype=narrowest(d for d in (b.dtype, v.dtype) if d),
                )
    return tuple(best[k] for k in sorted(best))
