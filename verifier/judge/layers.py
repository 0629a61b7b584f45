"""Judge one call of a layer (DESIGN 3a): a known layer against the numpy references of
reference_impls/layers.py, entry by entry with a per-entry rounding tolerance; a custom
layer's rows come from self mode (verifier/judge/selfdiff.py) and are worded here too.

Rows name the layer (`layer_name`) and the argument (`param`: out, loss, dx, dw, db, dgamma
...), with the worst entries, and a diagnosis label when a signature is clear: `scale` (with
its factor, N the batch), `sign`, `zero`, `transposed`, and for an activation layer's dx
`activation_derivative` when dx is dout times one of the known wrong h' (verifier/judge/
signatures.py): h'(x) in terms of h given the input x instead of the output h(x) (sigmoid's
x(1 - x), tanh's 1 - x^2), h' missing, h' taken at h(x), another activation's h'.
"""

from __future__ import annotations

import numpy as np

from reference_impls import layers as ref
from reference_impls import model

from ..records import Failure, LayerCase, LayerOutcome, TensorVerdict
from ..safe_io import clean_text
from . import signatures as sig
from .compare import tensor_verdict
from .factors import FORMS, RTOL, named

U = np.finfo(np.float64).eps / 2
K = 16.0  # safety factor over the first-order rounding bound, as in verifier/judge/tolerance.py
TINY = 1e-300


def summary(case: LayerCase) -> dict:
    """The case as a report's `case` field."""
    shapes = {n: list(np.shape(a)) for n, a in case.args}
    return {
        "layer": case.name,
        "shapes": shapes,
        "batch": int(np.shape(case.args[0][1])[0]) if np.ndim(case.args[0][1]) else 1,
        "regime": case.regime,
        "dout": case.dout_regime if case.kind == "pair" else None,
        "kwargs": case.kwargs,
    }


def dout_of(case: LayerCase, out: np.ndarray) -> np.ndarray:
    """The upstream gradient the child handed the backward: the pool's first out.size values."""
    pool = np.asarray(case.dout_pool, dtype=np.float64)
    return pool[: out.size].reshape(np.shape(out))


def grad_names(case: LayerCase) -> list[str]:
    return ["dx"] if case.kind == "loss" else [f"d{n}" for n, _ in case.args]


def _references(case: LayerCase, dout):
    """[(argument, centre, radius, tol)] of a known layer, and the reference out / loss."""
    args = [np.asarray(a, dtype=np.float64) if n != "y" else np.asarray(a) for n, a in case.args]
    x = args[0]
    if case.kind == "loss":
        loss, [(dx, r)] = ref.LOSSES[case.name](x, args[1])
        N = x.shape[0]
        p = np.exp(model.log_softmax(x)) if case.name == "softmax_loss" else np.ones_like(x)
        span = np.ptp(x, axis=1, keepdims=True) + 1.0
        tol = K * U * (p * span + 1.0) / N + TINY
        loss_tol = K * U * (abs(loss) + float(np.abs(x).max(initial=0.0)) + 1.0)
        return [("dx", dx, r, tol)], ("loss", np.asarray(loss), loss_tol)
    params = args[1:]
    out = ref.pair_forward(case.name, x, *params)
    grads = ref.pair_grads(case.name, x, params, dout)
    ad = np.abs(dout)
    if case.name == "affine":
        w, b = params
        x2 = np.abs(x.reshape(x.shape[0], -1))
        tols = [
            (ad @ np.abs(w).T).reshape(x.shape),
            x2.T @ ad,
            ad.sum(axis=0),
        ]
        out_tol = K * U * (x2 @ np.abs(w) + np.abs(b)) + TINY
    else:
        dh = model.ACTIVATIONS[case.name].dh
        if dh is None:  # softmax and identity-like forms with no elementwise h' have no layer
            raise ValueError(f"{case.name} has no elementwise derivative: it is not a layer reference")
        absolute = 1.0 if case.name in ("sigmoid", "tanh", "softplus") else 0.0
        tols = [ad * (np.abs(dh(x)) + absolute + 1e-300)]
        out_tol = K * U * (np.abs(out) + absolute) + TINY
    named_grads = [(g, c, r, K * U * t + TINY) for g, (c, r), t in zip(grad_names(case), grads, tols)]
    return named_grads, ("out", out, out_tol)


def batch_factor(c: float, batch: int) -> str:
    """A factor named in the batch size B alone (a layer has no n_L): "1/B", "2 or B", "0.37"."""
    sign = -1 if c < 0 else 1
    fits = [f for f in FORMS if f.q == 0 and np.isclose(sign * c, f.value(batch, 1), rtol=RTOL, atol=0)]
    if fits:
        return " or ".join(("-" if sign < 0 else "") + f.name for f in fits[:3])
    return named(c, batch, 1).text


def diagnose(got, expected, tol, batch: int, n_out: int | None) -> tuple[str | None, str]:
    """(label, note) of one argument's discrepancy, or (None, "") when no signature is clear.
    A label needs two or more entries that show it (DESIGN section 7). n_out None: a layer,
    whose factors are named in the batch alone."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    big = np.abs(expected) > 4 * tol
    if np.count_nonzero(big) < 2:
        return None, ""
    if np.all(np.abs(got) <= tol):
        return "zero", "the gradient is left at zero"
    ratio = got[big] / expected[big]
    c = float(np.median(ratio))
    if np.all(np.abs(got - c * expected) <= 4 * tol * max(1.0, abs(c))) and abs(c - 1) > 1e-6:
        if np.isclose(c, -1.0, rtol=1e-9):
            return "sign", "the gradient has the wrong sign"
        text = batch_factor(c, batch) if n_out is None else named(c, batch, n_out).text
        return "scale", f"the gradient is {text} times the right one"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and np.all(np.abs(got.T - expected) <= tol):
        return "transposed", "the gradient is the transpose of the right one"
    return None, ""


# the known wrong h' (signatures.candidates) worded for a layer, whose z is its input x
LAYER_NOTES = {
    "missing": "h' left out: dx = dout",
    "at A": "h' taken at the output h(x) instead of the input x",
    "h": "h(x) itself used for h'(x)",
}


def activation_finding(case: LayerCase, dout, got, expected, tol) -> tuple[str | None, str]:
    """activation_derivative when an activation layer's dx is dout times a known wrong h' on
    every entry, and differs from the right dx at two or more entries (DESIGN section 7)."""
    x = np.asarray(case.args[0][1], dtype=np.float64)
    got, right = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    with np.errstate(all="ignore"):
        h = ref.pair_forward(case.name, x)
        for key, (what, g, _own) in sig.candidates(case.name).items():
            wrong = dout * g(x, h)
            slack = 4 * tol + 64 * U * np.abs(wrong)
            if not np.all(np.isfinite(wrong)) or np.count_nonzero(np.abs(wrong - right) > slack) < 2:
                continue
            if np.all(np.abs(got - wrong) <= slack):
                if key == "form at z":
                    form = sig.OUTPUT_FORMS[case.name][0]
                    note = f"{case.name}'s h' formula {form} applied to the input x instead of the output h(x)"
                else:
                    note = f"{case.name}: " + LAYER_NOTES.get(key, what.replace("h'(z)", "h'(x)"))
                return "activation_derivative", note
    return None, ""


def rows_from_verdict(case: LayerCase, v: TensorVerdict, got, expected, tol, what: str, dout=None) -> list[Failure]:
    """A mismatch row for an argument with wrong entries (none when it passed); `dout` given
    for an activation layer's dx, whose wrong h' may be named."""
    if not v.failed:
        return []
    # factors are named in the batch alone (B): a layer has no network outputs n_L
    label, note = diagnose(got, expected, tol, summary(case)["batch"], None)
    if label is None and dout is not None:
        label, note = activation_finding(case, dout, got, expected, tol)
    w = v.worst[0]
    detail = f"{v.failed} of {v.compared} entries of {case.name} {v.param} are wrong ({what})"
    return [
        Failure(
            "mismatch",
            detail + (f"; {note}" if note else ""),
            param=v.param,
            index=w.index,
            got=w.got,
            expected=w.expected,
            abs_error=w.abs_error,
            rel_error=w.rel_error,
            tolerance=w.tolerance,
            diagnosis=label,
            case=summary(case),
            worst=v.worst,
            layer_name=case.name,
        )
    ]


def call_row(case: LayerCase, outcome: LayerOutcome) -> Failure:
    """The row of a call that did not return gradients to judge (or mutated its inputs); what the
    code said is cleaned as every row's is (rows.row)."""
    return Failure(outcome.kind, clean_text(outcome.detail), case=summary(case), layer_name=case.name)


def shape_rows(case: LayerCase, outcome: LayerOutcome) -> list[Failure]:
    """bad_output rows for gradients whose shapes are not their inputs' shapes."""
    names = grad_names(case)
    want = [np.shape(a) for n, a in case.args if n != "y"]
    for name, g, shape in zip(names, outcome.grads, want):
        if np.shape(g) != shape:
            return [
                Failure(
                    "bad_output",
                    f"{case.name} returned {name} of shape {list(np.shape(g))}; it must have its input's shape {list(shape)}",
                    param=name,
                    case=summary(case),
                    layer_name=case.name,
                )
            ]
    return []


def nonfinite_row(case, name, got) -> list[Failure]:
    bad = ~np.isfinite(np.asarray(got, dtype=float))
    if not bad.any():
        return []
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return [
        Failure(
            "nonfinite",
            f"{case.name} {name} holds {np.asarray(got)[idx]} at {list(idx)}",
            param=name,
            index=idx,
            case=summary(case),
            layer_name=case.name,
        )
    ]


def judge_known(case: LayerCase, outcome: LayerOutcome) -> tuple[list[Failure], list[TensorVerdict]]:
    """Rows and per-argument verdicts of one call of a known layer, against the references."""
    if outcome.kind not in ("ok", "mutated_input"):
        return [call_row(case, outcome)], []
    failures = [call_row(case, outcome)] if outcome.kind == "mutated_input" else []
    if case.kind == "pair":
        out = np.asarray(outcome.out)
        x, params = case.args[0][1], [a for _, a in case.args[1:]]
        want_shape = np.shape(ref.pair_forward(case.name, np.asarray(x, float), *params))
        if np.shape(out) != want_shape:
            return failures + [
                Failure(
                    "bad_output",
                    f"{case.name}_forward returned out of shape {list(np.shape(out))}; expected {list(want_shape)}",
                    param="out",
                    case=summary(case),
                    layer_name=case.name,
                )
            ], []
        dout = dout_of(case, out)
    else:
        dout = None
    bad = shape_rows(case, outcome)
    if bad:
        return failures + bad, []
    grads_ref, (vname, value, vtol) = _references(case, dout)
    verdicts = []
    got_value = outcome.out if case.kind == "pair" else np.asarray(outcome.loss if outcome.loss is not None else np.nan)
    v = tensor_verdict(0, vname, got_value, value, vtol)
    verdicts.append(v)
    failures += nonfinite_row(case, vname, got_value) or rows_from_verdict(case, v, got_value, value, vtol, "forward")
    for (name, centre, radius, tol), got in zip(grads_ref, outcome.grads):
        v = tensor_verdict(0, name, got, centre, tol, centre, radius)
        verdicts.append(v)
        elementwise = case.kind == "pair" and name == "dx" and case.name in model.HIDDEN_ACTIVATIONS
        failures += nonfinite_row(case, name, got) or rows_from_verdict(
            case, v, got, centre, tol, "reference", dout=dout if elementwise else None
        )
    return failures, verdicts
