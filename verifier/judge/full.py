"""Full mode's judgement of one call: every entry of every tensor against the oracle, then the
loss value; and the judgement of a train_step result against W - lr dJ/dW."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..records import Failure
from .compare import compare_gradients
from .references import REFERENCES
from .rows import loss_rows, mismatch_row, nonfinite_rows, verdict_row
from .shape import FLOAT_KINDS, structure


def judge_gradients(case, oracle, grads, loss, layout=None):
    """(failures, tensor verdicts, dtype name) for one call's returned gradients."""
    shaped = structure(case, grads, layout)
    if isinstance(shaped, Failure):
        return [shaped], [], None
    grads, dtype = shaped
    jd = oracle.judgement(FLOAT_KINDS[dtype])
    failures = [
        f
        for l, (g, e) in enumerate(zip(grads, oracle.grads), start=1)
        for p, name in enumerate("Wb")
        for f in nonfinite_rows(case, l, name, g[p], e[p])
    ]
    verdicts = compare_gradients(grads, oracle.grads, jd.tol, jd.centre, jd.radius)
    for v in verdicts:
        if v.failed and not any(f.layer == v.layer and f.param == v.param for f in failures):
            failures.append(mismatch_row(case, oracle.grads, grads, jd, v))
    return failures + loss_rows(case, oracle.loss, loss, jd), verdicts, dtype


def learning_rate(oracle) -> float:
    """A step small enough that the loss must go down, big enough to see it go down."""
    g2 = sum(float(np.sum(w**2) + np.sum(b**2)) for w, b in oracle.grads)
    return float(min(0.1, 1e-3 * max(abs(oracle.loss), 1e-3) / g2)) if g2 > 0 else 0.1


def judge_update(case, oracle, new_params, lr, layout=None) -> list[Failure]:
    """Failures of a train_step result against W - lr dJ/dW (and the loss going down)."""
    shaped = structure(case, new_params, layout)
    if isinstance(shaped, Failure):
        return [replace(shaped, kind="bad_output", detail="train_step: " + shaped.detail)]
    new, dtype = shaped
    jd = oracle.judgement(FLOAT_KINDS[dtype])
    u = np.finfo(FLOAT_KINDS[dtype]).eps
    want, tol, flipped = [], [], []
    for (W, b), (dW, db), (tW, tb) in zip(case.params, oracle.grads, jd.tol):
        want.append((W - lr * dW, b - lr * db))
        flipped.append((W + lr * dW, b + lr * db))
        tol.append((lr * tW + 4 * u * np.abs(W), lr * tb + 4 * u * np.abs(b)))
    bad = [v for v in compare_gradients(new, want, tol) if v.failed]
    if not bad:
        return []
    with np.errstate(all="ignore"):
        before = oracle.loss
        after = float(REFERENCES["delta_rule"](replace(case, params=tuple(new))).loss)
    sign = all(not v.failed for v in compare_gradients(new, flipped, tol))
    v = bad[0]
    trend = "went up" if after > before else "went down"
    return [
        verdict_row(
            "update_mismatch",
            f"train_step(lr={lr:.3g}) is not W - lr dJ/dW at layer {v.layer} {v.param}; the loss {trend} "
            f"({before:.6g} -> {after:.6g})" + ("; the update has the wrong sign (W + lr dJ/dW)" if sign else ""),
            case,
            v,
            diagnosis="sign" if sign else None,
        )
    ]
