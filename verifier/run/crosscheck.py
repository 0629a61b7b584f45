"""The cross-check engine: every reference against every other, on generated cases.

A disagreement is never blamed on a user: it means a reference is wrong (or the error model
is), so it is a harness error. When one reference disagrees with all the others while they
agree among themselves, it is named (verifier/judge/agreement.py); the smallest case that shows
it is found by shrinking.
"""

from __future__ import annotations

import time

from ..judge.agreement import compare_case
from ..judge.references import REFERENCES
from ..judge.rows import with_step_curves
from ..records import CrosscheckResult, PairStats, RunConfig
from . import explore

DEFAULT = RunConfig()
COUNTED = ("loss_mismatch", "kink_mismatch", "exception")  # rows counted beside the pairs' entries


def run_crosscheck(
    *,
    examples: int = DEFAULT.examples,
    seed: int = DEFAULT.seed,
    references=None,
    progress=None,
    shrink: bool = DEFAULT.shrink,
) -> CrosscheckResult:
    """Cross-check every pair of references on `examples` generated cases."""
    references = references or REFERENCES
    start = time.perf_counter()
    from .. import strategies  # Hypothesis: not imported by the CLI's start, which loads every command

    strategy = strategies.cases()
    runs = explore.explore(
        strategy, lambda case: compare_case(case, references), examples=examples, seed=seed, progress=progress
    )
    stats: dict[tuple[str, str], list] = {}
    for _, (pairs, _) in runs:
        for key, verdicts in pairs.items():
            stats.setdefault(key, []).extend(verdicts)
    failures = [f for _, (_, fails) in runs for f in fails]
    pair_stats = tuple(_pair_stats(a, b, vs) for (a, b), vs in stats.items())
    disagreements = sum(p.disagreements for p in pair_stats) + sum(1 for f in failures if f.kind in COUNTED)
    minimal = None
    if failures and shrink:
        found = explore.shrink(strategy, lambda case: compare_case(case, references)[1], examples=examples, seed=seed)
        if found is not None:
            minimal, failures = found[0], with_step_curves(found[1], found[0])
    return CrosscheckResult(
        verdict="pass" if disagreements == 0 else "error",
        seed=seed,
        examples=len(runs),
        references=tuple(references),
        disagreements=disagreements,
        pairs=pair_stats,
        failures=tuple(failures[:20]),
        seconds=time.perf_counter() - start,
        minimal_case=minimal,
    )


def _pair_stats(a, b, verdicts):
    return PairStats(
        a,
        b,
        compared=sum(v.compared - v.excused for v in verdicts),
        excused=sum(v.excused for v in verdicts),
        disagreements=sum(v.failed for v in verdicts),
        max_abs=max((v.max_abs for v in verdicts), default=0.0),
        max_rel=max((v.max_rel for v in verdicts), default=0.0),
    )
