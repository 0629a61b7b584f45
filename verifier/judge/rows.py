"""Failure rows (DESIGN section 6), built in one place for full mode, fast mode, the update
check and the cross-check; and the pictures a row carries (heatmap, step curve), computed here
so that a report only lays them out."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from reference_impls import delta_rule, model

from .. import casefile
from ..records import Case, Failure, TensorVerdict
from ..safe_io import clean_text
from .compare import entry_errors, relative

# The eps of a clipped log, as libraries and tutorials write it: np.clip(y, eps, 1 - eps);
# float64's machine epsilon is scikit-learn's (np.finfo(y.dtype).eps).
CLIP_EPS = (float(np.finfo(np.float64).eps), 1e-15, 1e-12, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4)
HEATMAP_MAX = 64  # cells per side of a failure's heatmap; larger tensors are max-pooled
STEPS = tuple(10.0**-k for k in range(1, 14))  # the step curve's h: 1e-1 .. 1e-13
CURVE_KINDS = frozenset({"mismatch", "reference_disagreement", "kink_mismatch"})  # rows about one entry


def row(kind: str, detail: str, case: Case | None, **kw) -> Failure:
    """A failure row carrying the summary of the case it happened on. The detail may hold what
    the checked code said (its exception text, what it printed): cleaned here, once, for every
    report format (safe_io.clean_text)."""
    return Failure(kind, clean_text(detail), case=casefile.summary(case) if case is not None else None, **kw)


def verdict_row(kind: str, detail: str, case: Case | None, v: TensorVerdict, **kw) -> Failure:
    """A row about one tensor: its worst entry in the row's fields, its worst entries as a table."""
    w = v.worst[0]
    return row(
        kind,
        detail,
        case,
        layer=v.layer,
        param=v.param,
        index=w.index,
        got=w.got,
        expected=w.expected,
        abs_error=w.abs_error,
        rel_error=w.rel_error,
        tolerance=w.tolerance,
        worst=v.worst,
        **kw,
    )


def nonfinite_rows(case, l, name, got, expected) -> list[Failure]:
    """A row for the first NaN or infinity where the right value is finite, if any."""
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if not bad.any():
        return []
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return [
        row(
            "nonfinite",
            f"layer {l} d{name} holds {got[idx]} where {expected[idx]:.6g} is right",
            case,
            layer=l,
            param=name,
            index=idx,
            got=float(got[idx]),
            expected=float(expected[idx]),
        )
    ]


def mismatch_row(case, expected, grads, jd, v: TensorVerdict, note: str = "") -> Failure:
    """The row of a tensor with wrong entries: its worst entries and its heatmap."""
    return verdict_row(
        "mismatch",
        f"{v.failed} of {v.compared} entries of layer {v.layer} d{v.param} are wrong{note}",
        case,
        v,
        heatmap=heatmap(grads, expected, jd, v.layer, "Wb".index(v.param)),
    )


def clipped_eps(case, loss, jd) -> float | None:
    """The eps of CLIP_EPS at which the declared loss, its probabilities clipped to
    [eps, 1 - eps] before the log, is the returned value (within the loss tolerance), if any."""
    if model.convention(case.spec).kind == "squared":
        return None
    for eps in CLIP_EPS:
        J = model.clipped_loss(list(case.params), case.X, case.T, case.spec, eps)
        if np.isfinite(J) and abs(loss - J) <= jd.loss_tol:
            return eps
    return None


def loss_rows(case, expected_loss: float, loss, jd, grads_right: bool | None = None) -> list[Failure]:
    """A row when the implementation returned a loss value the references do not give: a
    clipped_log note when the only difference is a probability clipped at eps before the log,
    else loss_mismatch, saying whether the gradients of the case are right (`grads_right`)."""
    if loss is None or abs(loss - expected_loss) <= jd.loss_tol:
        return []
    eps = clipped_eps(case, loss, jd)
    if eps is not None:
        return [
            row(
                "clipped_log",
                f"the returned loss clips probabilities at eps = {eps:g} before the log (e.g. {loss!r} "
                f"where the unclipped loss is {expected_loss!r}); accepted",
                case,
            )
        ]
    grads = {True: "; the gradients of this case are right", False: "", None: ""}[grads_right]
    return [
        row(
            "loss_mismatch",
            f"returned loss {loss!r}, the references give {expected_loss!r}{grads}",
            case,
            got=float(loss),
            expected=float(expected_loss),
            abs_error=abs(loss - expected_loss),
            tolerance=jd.loss_tol,
        )
    ]


def heatmap(grads, expected, jd, layer: int, p: int) -> tuple[tuple[float, ...], ...]:
    """Per-entry relative error of one tensor, max-pooled to at most 64x64: a report's picture."""
    k = layer - 1
    _, _, abs_error, nearest = entry_errors(grads[k][p], expected[k][p], jd.tol[k][p], jd.centre[k][p], jd.radius[k][p])
    rel = np.atleast_2d(relative(abs_error, nearest))
    rel = np.where(np.isnan(rel), np.inf, rel)
    r, c = (-(-n // HEATMAP_MAX) for n in rel.shape)
    if r > 1 or c > 1:
        pad = np.zeros((-(-rel.shape[0] // r) * r, -(-rel.shape[1] // c) * c))
        pad[: rel.shape[0], : rel.shape[1]] = rel
        rel = pad.reshape(pad.shape[0] // r, r, pad.shape[1] // c, c).max(axis=(1, 3))
    return tuple(tuple(float(x) for x in row) for row in rel)


def with_step_curves(failures, case: Case) -> list[Failure]:
    """The rows about one gradient entry of `case` (the minimal case), each with its step curve;
    other rows as they are. Computed once, for the case a report shows, not for every case seen."""
    out, exact = [], None
    for f in failures:
        if f.kind in CURVE_KINDS and f.index is not None and f.layer and f.case == casefile.summary(case):
            if exact is None:
                exact = delta_rule.gradients(list(case.params), case.X, case.T, case.spec)[1]
            f = replace(f, step_curve=step_curve(case, f.layer, f.param, f.index, exact))
        out.append(f)
    return out


def step_curve(case, layer: int, param: str, index, exact) -> tuple[tuple[float, float], ...] | None:
    """[(h, |D(h) - exact|)] for the central difference D(h) = (J(w+h) - J(w-h)) / 2h at one entry,
    h = 1e-1..1e-13, against `exact` ([(dW, db), ...], the delta rule's): the V of truncation
    meeting rounding that a report draws beside the checked value's error. None when fewer than
    two points are finite."""
    p, idx = "Wb".index(param), tuple(index)
    want = float(np.asarray(exact[layer - 1][p])[idx])
    out = []
    for h in STEPS:
        J = []
        for s in (h, -h):
            params = [[W.copy(), b.copy()] for W, b in case.params]
            params[layer - 1][p][idx] += s
            J.append(float(model.loss(params, case.X, case.T, case.spec)))
        err = abs((J[0] - J[1]) / (2 * h) - want)
        if np.isfinite(err):
            out.append((h, err))
    return tuple(out) if len(out) > 1 else None
