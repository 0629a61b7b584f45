"""The diagnosis of a run's smallest failing case, on a larger case when that one is too small.

A shrunk case is often a network of one unit and one sample, where every wrong delta gives
the same constant ratio to the right gradient, and where B = 1 or n_L = 1 cannot tell a
factor 1/B from 1/n_L or 1/(B*n_L): evidence of one entry (DESIGN section 7). When the
diagnosis of the minimal case is not settled, the implementation runs once more, in its
sandbox, on a larger case built around the minimal one (every width at least 3, a batch size
at which B, n_L, 2 and B*n_L all differ, the minimal case's values in the leading block, new
ones drawn like the `normal` regime's), and a label found there is given only if it also
explains the minimal case's gradient. The same holds for a train_step whose step the
minimal case cannot name (2 lr, lr/B): its step is measured on the larger case, and named
only if that ratio also gives the minimal case's step.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from reference_impls import model

from .. import casefile, specs
from ..judge import factors
from ..judge.diagnosis import NOTHING, Tols, find
from ..judge.full import learning_rate, step_note, step_ratio, steps_by, update_tolerance
from ..judge.shape import FLOAT_KINDS, dtypes_of, structure
from ..records import Case, Failure
from .session import user_targets

MIN_WIDTH = 3


def larger_case(case: Case, *, keep_sizes: bool = False, keep_batch: bool = False, seed: int = 0) -> Case | None:
    """A case around `case` that can give the evidence and tell the factors apart, or None if
    the options pin everything that would grow (or nothing would)."""
    sizes = tuple(case.spec.sizes) if keep_sizes else tuple(max(int(n), MIN_WIDTH) for n in case.spec.sizes)
    B = int(case.X.shape[0])
    if not keep_batch and (B < MIN_WIDTH or not factors.separates(B, sizes[-1])):
        B = factors.separating_batch(sizes[-1])
    if sizes == tuple(case.spec.sizes) and B == case.X.shape[0]:
        return None
    spec = replace(case.spec, sizes=sizes)
    fresh = specs.case_from_draw(spec, B, "normal", seed)
    params = []
    for (W, b), (W0, b0) in zip(fresh.params, case.params):
        W, b = W.copy(), b.copy()
        W[: W0.shape[0], : W0.shape[1]], b[: b0.shape[0]] = W0, b0
        params.append((W, b))
    X, T = fresh.X.copy(), fresh.T.copy()
    b0, n0 = case.X.shape
    X[:b0, :n0] = case.X
    if model.convention(spec).kind == "ce":
        T[:b0] = 0.0  # the old rows, padded with zeros, stay on the simplex
    T[:b0, : case.T.shape[1]] = case.T
    return Case(spec, tuple(params), X, T)


def _finding(sandbox, info, case, oracle_for, to_user):
    """(Finding, got, expected, tols) of the implementation on `case`, or None when it does not
    return gradients of the right shapes there."""
    layout = info.get("LAYOUT")
    outcome = sandbox.gradients(to_user(case.params, layout), case.X, user_targets(case), casefile.spec_dict(case.spec))
    if outcome.kind not in ("ok", "mutated_input"):
        return None
    shaped = structure(case, outcome.grads, layout)
    if isinstance(shaped, Failure):
        return None
    grads, dtype = shaped
    oracle = oracle_for(case)
    jd = oracle.judgement_of(dtypes_of(grads))
    tols = Tols(jd.tol, jd.radius, oracle.judgement(FLOAT_KINDS["float32"]).tol, jd.unit_roundoff, dtype)
    return find(case, grads, oracle.grads, tols), grads, oracle.grads, tols


def _larger(case, config):
    return larger_case(case, keep_sizes=config.sizes is not None, keep_batch=config.batch is not None, seed=config.seed)


def _where(big):
    return f"seen on a larger case built around this one: sizes {'-'.join(map(str, big.spec.sizes))}, batch {big.X.shape[0]}"


def diagnosis(sandbox, info, case, config, oracle_for, to_user):
    """(label, note) for the minimal failing `case`, or (None, None)."""
    first = _finding(sandbox, info, case, oracle_for, to_user)
    if first is None:
        return None, None
    f0, got, expected, tols = first
    if f0.settled:
        return f0.label, f0.note
    big = _larger(case, config)
    second = _finding(sandbox, info, big, oracle_for, to_user) if big is not None else None
    f1 = second[0] if second is not None else NOTHING
    if f1.label and (f1.settled or f0.label is None) and f1.explains(case, got, expected, tols):
        return f1.label, f"{f1.note} ({_where(big)})"
    return f0.label, f0.note


def _step(sandbox, info, case, oracle_for, to_user):
    """(new params, oracle gradients, lr, tolerances) of train_step on `case`, or None."""
    layout = info.get("LAYOUT")
    oracle = oracle_for(case)
    lr = learning_rate(oracle)
    step = sandbox.train_step(
        to_user(case.params, layout), case.X, user_targets(case), casefile.spec_dict(case.spec), lr
    )
    if step.kind not in ("ok", "mutated_input"):
        return None
    shaped = structure(case, step.params, layout)
    if isinstance(shaped, Failure):
        return None
    new, _ = shaped
    return new, oracle.grads, lr, update_tolerance(case, oracle, dtypes_of(new), lr)


def step_diagnosis(sandbox, info, case, config, oracle_for, to_user):
    """(label, note) naming the step of a train_step that fails on the minimal `case`, from a
    larger case around it, or (None, None)."""
    big = _larger(case, config)
    there = _step(sandbox, info, big, oracle_for, to_user) if big is not None else None
    c = step_ratio(big, *there) if there is not None else None
    here = _step(sandbox, info, case, oracle_for, to_user) if c is not None else None
    if c is None or here is None or np.isclose(c, 1.0, rtol=1e-9):
        return None, None
    B, n = big.X.shape[0], big.T.shape[1]
    forms = factors.named(c, B, n).forms
    values = [np.sign(c) * f.value(case.X.shape[0], case.T.shape[1]) for f in forms] or [c]
    if not any(steps_by(case, *here, v) for v in values):
        return None, None
    label, note = step_note(c, B, n)
    return label, f"{note} ({_where(big)})"
