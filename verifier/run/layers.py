"""Check the layers of a layers file (DESIGN 3a), one layer at a time, in the isolated child.

Each layer gets generated calls (verifier/layer_strategies.py: batch sizes from 1, dout of
zeros, large and tiny magnitudes, inputs on kinks): a known name is judged against the numpy
references (verifier/judge/layers.py), any other against its own forward in self mode
(verifier/judge/selfdiff.py, with the forward evaluated in the child at points the parent
chose). A failing layer is shrunk to its smallest failing call; every row names the layer and
the argument.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..errors import SpecError
from ..judge import layers as jl
from ..judge import selfdiff
from ..judge.layers import batch_factor
from ..records import CheckResult, Failure, LayerCase, RunConfig
from ..safe_io import clean_text, shell_word, shown_name
from ..sandbox.requests import Evaluations, evaluate, layer_call
from . import explore
from .explore import Stop

REFERENCE = "layer_reference"


def selected(contract: dict, config: RunConfig) -> list[str]:
    """The layer names to check: every pair and loss layer, or those of `config.layers`."""
    found = list(contract.get("layers", [])) + list(contract.get("layer_losses", []))
    if config.layers is None:
        return found
    missing = [n for n in config.layers if n not in found]
    if missing:
        raise SpecError(
            f"--layer {', '.join(missing)}: the file defines no such layer; it defines "
            f"{', '.join(found) or 'none'} (a pair NAME_forward/NAME_backward, or NAME_loss)"
        )
    return list(dict.fromkeys(config.layers))


def strategy(name: str, contract: dict, config: RunConfig):
    from .. import layer_strategies  # Hypothesis: imported by a layers run, not by a network's check

    declared = (contract.get("LAYERS") or {}).get(name)
    is_loss = name in contract.get("layer_losses", [])
    return layer_strategies.layer_cases(name, declaration=declared, loss=is_loss, batch=config.batch)


def known(name: str, contract: dict) -> bool:
    from .. import layer_strategies  # as in strategy

    if (contract.get("LAYERS") or {}).get(name) is not None:
        return False
    if name in contract.get("layer_losses", []):
        return name in layer_strategies.KNOWN_LOSSES
    return name in layer_strategies.KNOWN_PAIRS


def judge_call(box, case: LayerCase, is_known: bool, seed: int) -> tuple[list[Failure], str]:
    """(rows, what judged it) of one call of a layer."""
    outcome = layer_call(box, case)
    if is_known:
        return jl.judge_known(case, outcome)[0], REFERENCE
    if outcome.kind not in ("ok", "mutated_input"):
        return [jl.call_row(case, outcome)], "self"
    rows = [jl.call_row(case, outcome)] if outcome.kind == "mutated_input" else []
    bad = jl.shape_rows(case, outcome)
    if bad:
        return rows + bad, "self"
    return rows + self_rows(box, case, outcome, seed), "self"


def self_rows(box, case: LayerCase, outcome, seed: int) -> list[Failure]:
    """A custom layer judged against its own forward: <forward(x, params), dout> (or its loss)."""
    base = [np.asarray(a) for _, a in case.args]
    names = jl.grad_names(case)
    if case.kind == "pair":
        dout = jl.dout_of(case, np.asarray(outcome.out)).reshape(-1)
        target = {"kind": "layer", "name": case.name, "kwargs": case.kwargs}
        judged = list(range(len(base)))
        scalar = lambda rows: rows @ dout  # noqa: E731
    else:
        target = {"kind": "layer_loss", "name": case.name, "kwargs": {}}
        judged = [0]
        scalar = lambda rows: rows[:, 0]  # noqa: E731
    grads = list(outcome.grads) + [np.zeros(0)] * (len(base) - len(outcome.grads))

    def run(points, directions):
        ev = evaluate(box, target, base, list(directions), points, per_call=outcome.seconds)
        if not isinstance(ev, Evaluations):
            return f"{ev.kind}: {ev.detail}"
        if ev.failed:
            return f"{case.name} raised at {ev.failed} of {len(points)} nearby points: {ev.detail}"
        return ev.values

    res = selfdiff.check(run, base, grads, names, scalar, seed=seed, judged=judged, layer=0)
    if res.error:
        return [Failure("exception", clean_text(res.error), case=jl.summary(case), layer_name=case.name)]
    out = []
    for v in res.verdicts:
        k = names.index(v.param)
        if v.failed:
            out += jl.rows_from_verdict(
                case,
                v,
                grads[k],
                res.expected[k],
                res.tolerance[k],
                f"its own forward, {res.method}; entries judged {res.how.get(k, '')}",
            )
    return out


def run_layers(impl, box, contract: dict, config: RunConfig, progress=None) -> CheckResult:
    """Check every selected layer of `impl` in the sandbox `box`; one CheckResult for all."""
    start = time.perf_counter()
    names = selected(contract, config)
    failures: list[Failure] = []
    table, examples, judges = [], 0, set()
    pairs: dict[str, dict[str, int]] = {}  # name -> cases judged and failed (points, run/grading.py)
    stopped = None
    for name in names:
        is_known = known(name, contract)
        strat = strategy(name, contract, config)

        def judge(case, is_known=is_known):
            if time.perf_counter() - start > config.budget:
                raise Stop(f"spent its budget of {config.budget:g} s")
            rows, who = judge_call(box, case, is_known, config.seed)
            judges.add(who)
            return rows

        try:
            runs = explore.explore(strat, judge, examples=config.examples, seed=config.seed)
        except Stop as exc:
            stopped, runs = str(exc), []
        examples += len(runs)
        pairs[name] = {"judged": len(runs), "failed": sum(1 for _, r in runs if r)}
        rows = [f for _, r in runs for f in r]
        classes = list(dict.fromkeys((f.kind, f.param) for f in rows))
        if classes and config.shrink and stopped is None:
            # each (kind, argument) shrunk on its own: an affine with a wrong dx and a wrong db
            # shows both, each on its smallest case
            rows = [f for key in classes for f in _shrunk(strat, judge, key, rows, config)]
        replay = f"backprop-verify check {shell_word(impl)} --layer {shell_word(name)} --seed {config.seed}"
        seen = []
        for f in rows:  # one row per (kind, argument): the first, on the smallest case
            if (f.kind, f.param) not in seen:
                seen.append((f.kind, f.param))
                failures.append(_with_replay(f, replay))
        table.append(
            {"layer": name, "judged_by": REFERENCE if is_known else "self", "cases": len(runs), "failures": len(seen)}
        )
        if progress:
            progress(len(table), len(names))
        if stopped:
            break
    if stopped and not failures:
        failures.append(Failure("incomplete", f"{stopped}: nothing failed so far, but this is not a pass"))
    return CheckResult(
        verdict=("error" if all(f.kind == "incomplete" for f in failures) else "fail") if failures else "pass",
        seed=config.seed,
        examples=examples,
        implementation=shown_name(impl),
        references=tuple(sorted(judges)),
        failures=tuple(failures),
        dtype="float64",
        seconds=time.perf_counter() - start,
        stopped=stopped,
        isolation=getattr(box, "isolation_level", ("in-process", ()))[0],
        isolation_mechanisms=tuple(getattr(box, "isolation_level", ("in-process", ()))[1]),
        extra={"layers": table, "layer_pairs": pairs},
    )


def _shrunk(strat, judge, key, rows: list[Failure], config: RunConfig) -> list[Failure]:
    """The rows of class `key` on the smallest call that still shows it (labelled from the larger
    calls explored before), or the first explored ones when it does not show again."""

    def same_class(case):
        return [f for f in judge(case) if (f.kind, f.param) == key]

    found = explore.shrink(strat, same_class, examples=config.examples, seed=config.seed)
    if found:
        return [_labelled(f, rows) for f in found[1]]
    return [f for f in rows if (f.kind, f.param) == key]


def _labelled(f: Failure, seen: list[Failure]) -> Failure:
    """A minimal case's row without a label (one entry tells nothing), labelled from a larger
    case of the same class explored before, when that label also explains the minimal case."""
    if f.kind != "mismatch" or f.diagnosis:
        return f
    same = [g for g in seen if (g.kind, g.param) == (f.kind, f.param)]
    labels = {g.diagnosis for g in same if g.diagnosis}
    # a label stands only when the larger calls agree on it: relu's mask on the wrong side
    # leaves dx at zero on a call whose inputs are all positive, and is no `zero` bug
    if len(labels) != 1 or 2 * sum(g.diagnosis is not None for g in same) < len(same):
        return f
    for g in same:
        if g.diagnosis is None:
            continue
        if g.diagnosis == "zero" and f.got is not None and f.tolerance is not None and abs(f.got) > f.tolerance:
            continue
        if g.diagnosis == "sign" and f.got is not None and f.expected is not None and f.got * f.expected >= 0:
            continue
        note = g.detail.split("; ", 1)[1] if "; " in g.detail else ""
        if g.diagnosis == "scale" and f.got is not None and f.expected:
            factor = note.removeprefix("the gradient is ").removesuffix(" times the right one")
            here = batch_factor(f.got / f.expected, f.case["batch"] if f.case else 1)
            if not set(factor.split(" or ")) & set(here.split(" or ")):
                continue
        size = "x".join(map(str, next(iter(g.case["shapes"].values())))) if g.case else "?"
        return replace(f, diagnosis=g.diagnosis, detail=f"{f.detail}; {note} (seen on a larger case: x {size})")
    return f


def _with_replay(f: Failure, replay: str) -> Failure:
    return replace(f, replay=replay)
