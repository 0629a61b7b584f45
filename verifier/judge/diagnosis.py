"""Name what a wrong gradient looks like (DESIGN section 7), only when the evidence is there.

A signature is a prediction of the whole gradient: the right one transformed (zero, sign,
transposed, a constant factor), or the gradient of a known-wrong delta rule
(verifier/judge/signatures.py: another h' (verifier/judge/hprime.py), another output delta),
compared entry by entry within the verdict's tolerances (verifier/judge/matching.py). A label
is given when the prediction matches and

- the failing entries carry at least two independent numbers (verifier/judge/evidence.py),
  one more than the constants the signature fitted: a single-entry tensor, or a network of one
  unit and one sample, has a constant ratio to anything and gets no label;
- entries a kink makes uncertain (any value in an interval is right there) are no evidence.

Signatures are tried in this order: zero, sign, transposed, a constant factor (scale or
batch_reduction), another loss convention's gradient (verifier/judge/losses.py: the L2 term
missing or with another factor is `regularization`), a known wrong h', a wrong output delta (loss_derivative, softmax_jacobian),
an h' with fitted constants, precision. `find` says whether its answer is settled: when the
case is too small to give the evidence, or to tell two names apart (B = 2 cannot tell a factor
B from 2), the caller may run the implementation on a larger case and ask again
(verifier/run/diagnose.py), and use a finding there only if it also `explains` this case.
"""

from __future__ import annotations

import numpy as np

from reference_impls import conventions, delta_rule, model

from . import evidence, factors, hprime, losses
from . import signatures as sig
from .matching import (
    NOTHING,
    SLACK,
    UNSETTLED,
    Finding,
    Tols,
    applied,
    f64,
    failing,
    fits,
    keys_of,
    matches_wrong,
    scaled,
    skips,
    tensors,
    wrong_finding,
)

__all__ = ["NOTHING", "Finding", "Tols", "diagnose", "find"]


NOTES = {
    "sign": "the gradient has the wrong sign (t - y instead of y - t?)",
    "transposed": "dW is the transpose of the right one (z_i delta_j instead of delta_j z_i)",
}


def _transformed(case, got, expected, tols, keys):
    """zero, sign, transposed: the failing tensors are the right ones transformed."""
    square = all(p == "W" and expected[l - 1][0].shape[0] == expected[l - 1][0].shape[1] for l, p in keys)
    tests = [("zero", np.zeros_like), ("sign", np.negative)] + ([("transposed", np.transpose)] if square else [])
    for label, f in tests:
        if not fits(got, applied(keys, expected, f), scaled(tols, symmetric=True), skips(expected, tols)):
            continue
        if label == "zero" and not all(np.all(np.abs(got[l - 1]["Wb".index(p)]) <= 0) for l, p in keys):
            continue  # "left at 0" is about whole tensors, kink entries too (a dead unit makes zeros)

        def explains(c2, g2, e2, t2, f=f):
            return fits(f64(g2), applied(keys, e2, f), scaled(t2, symmetric=True), skips(e2, t2))

        note = NOTES.get(label)
        if label == "zero":
            everything = all(np.all(np.abs(g[p]) <= t[p]) for g, t in zip(got, tols.tol) for p in (0, 1))
            note = (
                "every gradient entry is 0"
                if everything
                else f"the failing tensors are left at 0 (a gradient not computed or not stored: {tensors(keys)})"
            )
        return Finding(label, note, True, explains)
    return None


def _ratio(got, expected, tols, keys, skip):
    """The c with got = c * expected on the tensors in `keys`, by least squares, if any."""
    g, e, w = [], [], []
    for l, p in keys:
        i = "Wb".index(p)
        m = ~skip[l - 1][i]
        g.append(got[l - 1][i][m])
        e.append(expected[l - 1][i][m])
        w.append(1 / np.maximum(tols.tol[l - 1][i][m], 1e-300))
    g, e, w = (np.concatenate([np.ravel(x) for x in xs]) for xs in (g, e, w))
    big = np.abs(e) * w > 10
    if not big.any():
        return None
    ew, gw = e[big] * w[big], g[big] * w[big]
    with np.errstate(all="ignore"):
        c = float(np.dot(gw, ew) / np.dot(ew, ew))
    return c if np.isfinite(c) and c != 0 and not np.isclose(c, 1.0, rtol=1e-9) else None


def _whole(expected, keys):
    """Whether `keys` holds every tensor whose right gradient is not 0."""
    return {(l, p) for l, e in enumerate(expected, start=1) for p in "Wb" if np.any(e["Wb".index(p)] != 0)} <= keys


def _scale(case, got, expected, tols, keys):
    skip = skips(expected, tols)
    c = _ratio(got, expected, tols, keys, skip)
    if c is None or not fits(got, applied(keys, expected, lambda a: c * a), scaled(tols, max(1.0, abs(c))), skip):
        return None
    B, n = case.X.shape[0], case.T.shape[1]
    nm = factors.named(c, B, n)
    forms = nm.forms

    def explains(c2, g2, e2, t2):
        B2, n2 = c2.X.shape[0], c2.T.shape[1]
        values = [f.value(B2, n2) * np.sign(c) for f in forms] if forms else [c]
        return any(
            fits(f64(g2), applied(keys, e2, lambda a, v=v: v * a), scaled(t2, max(1.0, abs(v))), skips(e2, t2))
            for v in values
        )

    whole = _whole(expected, keys)
    if not whole and not nm.simple:
        return None  # a factor like 1.027 in some tensors only: a coincidence more likely than a bug
    where = "" if whole else f" in {tensors(keys)}"
    conv = [conventions.name(m) for m in losses.matching(case, got, expected, tols)] if whole else []
    tail = f"; it is the gradient of {' or '.join(conv)}: --loss {conv[0]} would pass" if 0 < len(conv) <= 2 else ""
    if nm.batch_only:
        note = f"off by a factor {nm.text}{where}: mean over the batch where the sum belongs, or the reverse"
        return Finding("batch_reduction", note + tail, not nm.ambiguous, explains)
    return Finding("scale", f"off by a constant factor {nm.text}{where}" + tail, not nm.ambiguous, explains)


def _proportional(a, b) -> bool:
    """Whether output delta a is a constant multiple of b on this case."""
    with np.errstate(all="ignore"):
        a, b = np.ravel(a), np.ravel(b)
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or not np.any(b):
            return False
        k = np.dot(a, b) / np.dot(b, b)
        return bool(np.all(np.abs(a - k * b) <= 1e-12 * np.max(np.abs(a))))


def _output(case, got, expected, tols, top):
    """loss_derivative (the output delta of y - t, or of another loss) and softmax_jacobian.
    A delta that is a constant multiple of the right one here is a factor, not another loss
    (sse's for half_sse; y - t at a linear output of sse): `scale` judges those."""
    spec, L = case.spec, len(case.params)
    tries = [("loss_derivative", f"the output delta is y - t, not dJ/dy h'(z) for {spec.loss}", sig.y_minus_t)]
    for other in model.LOSS_NAMES:
        if other != spec.loss and model.compatible(spec.activations[-1], other):
            note = f"the output delta is that of {other}, not of {spec.loss}"
            tries.append(("loss_derivative", note, sig.other_loss(other)))
    if spec.activations[-1] == "softmax" and top == L:
        note = f"layer {L}: only the diagonal s(1 - s) of the softmax Jacobian is used, not s_k (g_k - sum_m g_m s_m)"
        tries.insert(0, ("softmax_jacobian", note, sig.softmax_diagonal))
    with np.errstate(all="ignore"):
        Z, A = model.forward(list(case.params), case.X, spec)
        right = delta_rule.output_delta(Z, A, case.T, spec)
    for label, note, out in tries:
        w = sig.Wrong(output=out)
        with np.errstate(all="ignore"):
            if _proportional(out(case, Z, A), right):
                continue
        if matches_wrong(case, got, expected, tols, w):
            return wrong_finding(label, note, lambda c, w=w: w)
    return None


def find(case, got, expected, tols: Tols) -> Finding:
    """The Finding for a failing gradient `got` of `case` ([(dW, db), ...] like `expected`)."""
    got, expected = f64(got), f64(expected)
    skip = skips(expected, tols)
    if not keys_of(failing(got, expected, tols, skip)):
        return NOTHING
    fail = failing(got, expected, tols, skip, margin=2 * SLACK)  # the entries that are evidence
    keys = keys_of(fail)
    if not keys:
        return UNSETTLED  # wrong only by a few tolerances: nothing a signature could be told by
    strength = evidence.independent(case, fail)
    if strength < 2:
        return UNSETTLED
    top = max(l for l, _ in keys)
    f = _transformed(case, got, expected, tols, keys)
    if f is not None:
        if f.label == "zero" and _whole(expected[:top], keys) and hprime.could_vanish(case, top):
            return UNSETTLED  # delta_t = 0: as well an h' that is 0 on every unit of layer t here
        return f
    f = _scale(case, got, expected, tols, keys)
    if f is not None:
        if not _whole(expected, keys) and hprime.known(case, got, expected, tols, top) is not None:
            return UNSETTLED  # a factor in layers 1..t only, or an h' that is constant here: cannot tell
        return f
    f = losses.finding(case, got, expected, tols)
    if f is not None:  # another convention's gradient: a penalty missing or another factor
        return f
    for test in (hprime.known, _output):
        f = test(case, got, expected, tols, top)
        if f is not None:
            return f
    f = hprime.fitted(case, got, expected, tols, top, strength)
    if f is not None:
        return f
    if tols.tol32 is not None and tols.returned_dtype == "float64" and fits(got, expected, tols.tol32, skip):

        def explains(c2, g2, e2, t2):
            return t2.tol32 is not None and fits(f64(g2), e2, t2.tol32, skips(e2, t2))

        return Finding("precision", "right to float32 accuracy only, though float64 was returned", True, explains)
    return NOTHING


def diagnose(case, got, expected, tol, *, dtype_tol32=None, returned_dtype=None, radius=None):
    """(label, note) for a failing gradient `got` of `case`, or (None, None).

    `got`, `expected`, `tol` are [(W, b), ...]; `dtype_tol32` the float32 tolerances, used to
    recognise a float64 result that is only float32-accurate; `radius` the kink radii."""
    u = float(np.finfo(np.float32 if returned_dtype == "float32" else np.float64).eps) / 2
    f = find(case, got, expected, Tols(tol, radius, dtype_tol32, u, returned_dtype))
    return f.label, f.note
