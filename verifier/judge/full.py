"""Full mode's judgement of one call: every entry of every tensor against the oracle, then the
loss value; and the judgement of a train_step result against W - lr dJ/dW."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..records import Failure
from . import evidence, factors, lazy
from .compare import any_failed, compare_gradients
from .oracle import Summed
from .references import REFERENCES
from .rows import loss_rows, mismatch_row, nonfinite_rows, verdict_row
from .shape import FLOAT_KINDS, bias_notes, dtypes_of, structure


def judge_gradients(case, oracle, grads, loss, layout=None, loss_dtype=None):
    """(failures, tensor verdicts, dtype name) for one call's returned gradients; the loss value
    judged to `loss_dtype`, the dtype it came back in."""
    shaped = structure(case, grads, layout)
    if isinstance(shaped, Failure):
        return [shaped], [], None
    notes = bias_notes(case, grads)
    grads, dtype = shaped
    kinds = dtypes_of(grads)
    jd = oracle.judgement_of(kinds)
    failures = [
        f
        for l, (g, e) in enumerate(zip(grads, oracle.grads), start=1)
        for p, name in enumerate("Wb")
        for f in nonfinite_rows(case, l, name, g[p], e[p])
    ]
    verdicts = [
        replace(v, dtype=kinds[v.layer - 1]["Wb".index(v.param)])
        for v in compare_gradients(grads, oracle.grads, by_parts(jd.tol), jd.centre, jd.radius)
    ]
    for v in verdicts:
        if v.failed and not any(f.layer == v.layer and f.param == v.param for f in failures):
            failures.append(mismatch_row(case, oracle.grads, grads, jd, v))
    jd_loss = oracle.for_loss(jd, kinds, loss_dtype)
    return notes + failures + loss_rows(case, oracle.loss, loss, jd_loss, not failures), verdicts, dtype


def by_parts(tol):
    """Tolerances as compare_gradients takes them best: a Summed list as its lazy parts."""
    return tol.by_parts() if isinstance(tol, Summed) else tol


def learning_rate(oracle) -> float:
    """A step small enough that the loss must go down, big enough to see it go down."""
    g2 = sum(float(np.vdot(w, w) + np.vdot(b, b)) for w, b in oracle.grads)  # vdot: no W-sized square
    return float(min(0.1, 1e-3 * max(abs(oracle.loss), 1e-3) / g2)) if g2 > 0 else 0.1


def step_note(c: float, batch: int, n_out: int) -> tuple[str | None, str]:
    """(label, what the detail says) for a step of c lr dJ/dW: "it steps 2 lr", "lr/B or lr/2"."""
    if np.isclose(c, -1.0, rtol=1e-6):
        return "sign", "the update has the wrong sign (W + lr dJ/dW)"
    nm = factors.named(c, batch, n_out)

    def one(name):
        sign, name = ("-", name[1:]) if name.startswith("-") else ("", name)
        if "/" not in name:
            return f"{sign}{name} lr"
        num, den = name.split("/", 1)
        return f"{sign}lr/{den}" if num == "1" else f"{sign}{num} lr/{den}"

    text = " or ".join(one(n) for n in nm.text.split(" or ")) if nm.forms else f"{nm.text} lr"
    label = "batch_reduction" if nm.batch_only else "scale"
    return label, f"it steps {text} (W - c lr dJ/dW with c = {c:.6g})"


def update_tolerance(case, oracle, kinds, lr):
    """[(tW, tb), ...]: how far a right W - lr dJ/dW may be from the oracle's, each new tensor
    in its own returned dtype (`kinds`, [(W's dtype name, b's), ...], or one name for all)."""
    if isinstance(kinds, str):
        kinds = [(kinds, kinds)] * len(case.params)
    jd = oracle.judgement_of(kinds)
    u = [tuple(float(np.finfo(FLOAT_KINDS[k]).eps) for k in pair) for pair in kinds]
    return [
        (_step_tolerance(lr, tW, uW, W), _step_tolerance(lr, tb, ub, b))
        for (W, b), (tW, tb), (uW, ub) in zip(case.params, jd.tol, u)
    ]


def _step_tolerance(lr, t, u, W):
    """lr t + 4 u |W|: the step's tolerance and the rounding of W - step; lazy for a big W."""
    if lazy.big(np.size(W)):
        return lazy.Parts((lazy.Scaled(t, lr), lazy.Scaled(W, 4 * u, absolute=True)))
    return lr * np.asarray(t) + 4 * u * np.abs(W)


def stepped(W, dW, lr):
    """W - lr dW; lazy for a big W (made a block at a time where it is judged)."""
    return lazy.Combined(W, dW, -lr) if lazy.big(np.size(W)) else W - lr * dW


def steps_by(case, new, grads, lr, tol, c) -> bool:
    """Whether new = W - c lr dJ/dW in every entry, within tolerance."""
    with np.errstate(all="ignore"):
        return all(
            bool(np.all(np.abs((W - nW) - c * lr * dW) <= 4 * max(1.0, abs(c)) * tW))
            and bool(np.all(np.abs((b - nb) - c * lr * db) <= 4 * max(1.0, abs(c)) * tb))
            for (W, b), (nW, nb), (dW, db), (tW, tb) in zip(case.params, new, grads, tol)
        )


def step_ratio(case, new, grads, lr, tol) -> float | None:
    """The constant c with new = W - c lr dJ/dW in every entry, when the entries that show a
    step carry at least two independent numbers (verifier/judge/evidence.py), else None."""
    steps = [(W - nW, b - nb) for (W, b), (nW, nb) in zip(case.params, new)]
    want = [(lr * dW, lr * db) for dW, db in grads]
    shown = [tuple(np.abs(w[p]) > 10 * t[p] for p in (0, 1)) for w, t in zip(want, tol)]
    if evidence.independent(case, shown) < 2:
        return None
    s = np.concatenate([x[p][m[p]] / t[p][m[p]] for x, m, t in zip(steps, shown, tol) for p in (0, 1)])
    w = np.concatenate([x[p][m[p]] / t[p][m[p]] for x, m, t in zip(want, shown, tol) for p in (0, 1)])
    with np.errstate(all="ignore"):
        c = float(np.dot(s, w) / np.dot(w, w))
    return c if np.isfinite(c) and steps_by(case, new, grads, lr, tol, c) else None


def judge_update(case, oracle, new_params, lr, layout=None) -> list[Failure]:
    """Failures of a train_step result against W - lr dJ/dW (and the loss going down); when
    the step is c lr dJ/dW for a constant c, the detail names c (2 lr, lr/B ...)."""
    shaped = structure(case, new_params, layout)
    if isinstance(shaped, Failure):
        return [replace(shaped, kind="bad_output", detail="train_step: " + shaped.detail)]
    new, _ = shaped
    tol = update_tolerance(case, oracle, dtypes_of(new), lr)
    want = [(stepped(W, dW, lr), b - lr * db) for (W, b), (dW, db) in zip(case.params, oracle.grads)]
    if not any_failed(new, want, tol):
        return []
    bad = [v for v in compare_gradients(new, want, tol) if v.failed]
    if not bad:
        return []
    with np.errstate(all="ignore"):
        before = oracle.loss
        after = float(REFERENCES["delta_rule"](replace(case, params=tuple(new))).loss)
    c = step_ratio(case, new, oracle.grads, lr, tol)
    label, why = None, ""
    if all(not v.failed for v in compare_gradients(new, list(case.params), tol)):
        why = "; the parameters came back unchanged (no step taken)"
    elif c is not None:
        label, note = step_note(c, case.X.shape[0], case.T.shape[1])
        why = "; " + note
    v = bad[0]
    trend = "went up" if after > before else "went down"
    return [
        verdict_row(
            "update_mismatch",
            f"train_step(lr={lr:.3g}) is not W - lr dJ/dW at layer {v.layer} {v.param}; the loss {trend} "
            f"({before:.6g} -> {after:.6g})" + why,
            case,
            v,
            diagnosis=label,
        )
    ]
