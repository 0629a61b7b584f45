"""The cross-check engine: every reference against every other, on generated cases.

A disagreement is never blamed on a user: it means a reference is wrong (or the error model
is), so it is a harness error. When one reference disagrees with all the others while they
agree among themselves, it is named; the smallest case that shows it is found by shrinking.
"""

from __future__ import annotations

import itertools
import time
import numpy as np

from . import casefile, error_model, strategies
from .compare import compare_gradients, tensor_verdict
from .records import CrosscheckResult, Failure, PairStats
from .references import LOSS_PAIR, REFERENCES


class _Disagreement(Exception):
    def __init__(self, case, failures):
        super().__init__(failures[0].detail)
        self.case, self.failures = case, failures


def _plus(*tols):
    """Entry-wise sum of [(W, b), ...] tolerance lists, skipping Nones."""
    tols = [t for t in tols if t is not None]
    return [tuple(sum(t[l][p] for t in tols) for p in (0, 1)) for l in range(len(tols[0]))]


def _either(*masks):
    masks = [m for m in masks if m is not None]
    if not masks:
        return None
    return [tuple(np.logical_or.reduce([m[l][p] for m in masks]) for p in (0, 1)) for l in range(len(masks[0]))]


def run_references(case, references):
    """{name: RefOutput} and the failures of references that raised."""
    outputs, failures = {}, []
    for name, fn in references.items():
        try:
            with np.errstate(all="ignore"):
                outputs[name] = fn(case)
        except Exception as exc:  # a reference crashing is a harness bug: report, go on
            failures.append(Failure("exception", f"{name} raised {type(exc).__name__}: {exc}", subject=name))
    return outputs, failures


def compare_case(case, references=None):
    """(per-pair tensor verdicts, failures) for one case."""
    references = references or REFERENCES
    outputs, failures = run_references(case, references)
    jd = error_model.judgement(case)
    base = _plus(jd.tol, jd.tol)
    kink = [tuple(r > 0 for r in pair) for pair in jd.radius]
    failures += _loss_failures(case, outputs, jd)
    failures += _kink_failures(case, outputs, jd, base)
    pairs = {}
    for a, b in itertools.combinations(outputs, 2):
        oa, ob = outputs[a], outputs[b]
        pairs[(a, b)] = compare_gradients(
            oa.grads, ob.grads, _plus(base, oa.extra_tol, ob.extra_tol),
            excused=_either(kink, oa.excused, ob.excused),
        )
    failures += _blame(case, pairs, list(outputs))
    return pairs, failures


def _loss_failures(case, outputs, jd):
    a, b = LOSS_PAIR
    out = []
    if a in outputs and b in outputs:
        la, lb = outputs[a].loss, outputs[b].loss
        if not abs(la - lb) <= 2 * jd.loss_tol:
            out.append(Failure(
                "loss_mismatch", f"loss values differ: {a} {la!r}, {b} {lb!r}",
                got=lb, expected=la, abs_error=abs(la - lb), tolerance=2 * jd.loss_tol,
                case=casefile.summary(case), subject=b,
            ))
    return out


def _kink_failures(case, outputs, jd, base):
    """Each reference's kink entries must lie in their interval."""
    out = []
    for name, o in outputs.items():
        tol = _plus(base, o.extra_tol)
        for l, (g, t, c, r) in enumerate(zip(o.grads, tol, jd.centre, jd.radius), start=1):
            for p, param in enumerate("Wb"):
                if not (r[p] > 0).any():
                    continue
                excused = ~(r[p] > 0) if o.excused is None else ~(r[p] > 0) | o.excused[l - 1][p]
                v = tensor_verdict(l, param, g[p], c[p], t[p], c[p], r[p], excused)
                if v.failed:
                    out.append(_row("kink_mismatch", name, v, case,
                                    f"{name} outside the kink interval at layer {l} {param}"))
    return out


def _row(kind, subject, v, case, detail):
    w = v.worst[0]
    return Failure(
        kind, detail, layer=v.layer, param=v.param, index=w.index, got=w.got,
        expected=w.expected, abs_error=w.abs_error, rel_error=w.rel_error, tolerance=w.tolerance,
        case=casefile.summary(case), worst=v.worst, subject=subject,
    )


def _blame(case, pairs, names):
    """Name the reference that disagrees with all the others, per failing tensor."""
    out, seen = [], set()
    for (a, b), verdicts in pairs.items():
        for v in verdicts:
            if not v.failed or (v.layer, v.param) in seen:
                continue
            seen.add((v.layer, v.param))
            bad = {n: 0 for n in names}
            for (x, y), vs in pairs.items():
                if any(u.failed for u in vs if (u.layer, u.param) == (v.layer, v.param)):
                    bad[x] += 1
                    bad[y] += 1
            odd = [n for n in names if bad[n] == len(names) - 1]
            if len(odd) == 1 and len(names) > 2:
                subject = odd[0]
                detail = f"{subject} disagrees with every other reference at layer {v.layer} {v.param}"
            else:
                subject = f"{a} vs {b}"
                detail = (f"{a} and {b} disagree at layer {v.layer} {v.param}; "
                          "no single reference is the odd one out")
            out.append(_row("reference_disagreement", subject, v, case, detail))
    return out


def run_crosscheck(*, examples=200, seed=0, references=None, progress=None, shrink=True):
    """Cross-check every pair of references on `examples` generated cases."""
    references = references or REFERENCES
    start = time.perf_counter()
    stats = {}
    failures, count = [], [0]

    def body(case):
        pairs, fails = compare_case(case, references)
        count[0] += 1
        for key, verdicts in pairs.items():
            stats.setdefault(key, []).extend(verdicts)
        failures.extend(fails)
        if progress:
            progress(count[0], examples)

    strategy = strategies.cases()
    strategies.explore(strategy, body, examples=examples, seed=seed, shrink=False)
    pair_stats = tuple(_pair_stats(a, b, vs) for (a, b), vs in stats.items())
    disagreements = sum(p.disagreements for p in pair_stats) + sum(
        1 for f in failures if f.kind in ("loss_mismatch", "kink_mismatch", "exception")
    )
    minimal = None
    if failures and shrink:
        minimal, shrunk = _shrunk(strategy, references, seed, examples)
        failures = shrunk or failures
    return CrosscheckResult(
        verdict="pass" if disagreements == 0 else "error",
        seed=seed, examples=count[0], references=tuple(references),
        disagreements=disagreements, pairs=pair_stats, failures=tuple(failures[:20]),
        seconds=time.perf_counter() - start, minimal_case=minimal,
    )


def _pair_stats(a, b, verdicts):
    return PairStats(
        a, b,
        compared=sum(v.compared - v.excused for v in verdicts),
        excused=sum(v.excused for v in verdicts),
        disagreements=sum(v.failed for v in verdicts),
        max_abs=max((v.max_abs for v in verdicts), default=0.0),
        max_rel=max((v.max_rel for v in verdicts), default=0.0),
    )


def _shrunk(strategy, references, seed, examples):
    """The failures of the smallest case that still shows a disagreement."""

    def body(case):
        _, fails = compare_case(case, references)
        if fails:
            raise _Disagreement(case, fails) from None

    exc = strategies.explore(strategy, body, examples=examples, seed=seed, shrink=True)
    return (exc.case, list(exc.failures)) if isinstance(exc, _Disagreement) else (None, None)
