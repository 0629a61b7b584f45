"""Name what a wrong gradient looks like (DESIGN section 7), only when the evidence is there.

Each signature is tested against every entry of the failing tensors, with the same per-entry
tolerances the verdict used: a label is given when the implementation's gradient equals the
right one transformed (zero, sign, transposed, a constant factor) or equals the gradient of a
known-wrong delta rule (a missing or misplaced h', a wrong dJ/dy), and no label otherwise.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from reference_impls import delta_rule, model


def _close(got, want, tol):
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(np.asarray(got, float) - want) <= tol))


def _factor_name(c, batch, n_out):
    """'2', '1/2', 'B', '1/B', 'B*n_L' ... when c is one; batch sizes are tried first."""
    named = []
    if batch > 1:
        named += [
            (batch, "B"),
            (1 / batch, "1/B"),
            (2 * batch, "2B"),
            (1 / (2 * batch), "1/(2B)"),
            (2 / batch, "2/B"),
            (batch / 2, "B/2"),
        ]
    if n_out > 1:
        named += [(batch * n_out, "B*n_L"), (1 / (batch * n_out), "1/(B*n_L)")]
    for value, name in named:
        if np.isclose(c, value, rtol=1e-6):
            return name
    f = Fraction(float(c)).limit_denominator(16)
    return str(f) if np.isclose(float(f), c, rtol=1e-6) else None


def _constant_ratio(got, want, tol):
    """The c with got = c * want entry by entry, if there is one."""
    g = np.concatenate([np.ravel(x) for x in got]).astype(float)
    w = np.concatenate([np.ravel(x) for x in want])
    t = np.concatenate([np.ravel(x) for x in tol])
    big = np.abs(w) > 10 * t
    if not big.any():
        return None
    c = float(np.median(g[big] / w[big]))
    if not np.isfinite(c) or c == 0 or np.isclose(c, 1.0, rtol=1e-9):
        return None
    return c if _close(g, c * w, t * max(1.0, abs(c))) else None


def _variant(case, *, no_dh=None, dh_at_A=None, output=None):
    """The gradients of a deliberately wrong delta rule: h' dropped (no_dh) or taken at A
    instead of Z (dh_at_A) in one layer, or the output delta formed from (Y - T) alone. The
    delta rule itself runs, with another h' for that layer (its `dh` hook)."""
    spec, params, L = case.spec, list(case.params), len(case.params)
    with np.errstate(all="ignore"):
        Z, A = model.forward(params, case.X, spec)

        def dh(spec, l, Zl):
            if l == no_dh:
                return 1.0
            return delta_rule.h_prime(spec, l, A[l] if l == dh_at_A else Zl)

        if output == "y_minus_t":
            delta = A[-1] - case.T
        elif L == no_dh and spec.activations[-1] not in model.OUTPUT_ONLY:
            delta = model.LOSSES[spec.loss].dJ(A[-1], case.T)
        else:
            Zd = Z[:-1] + [A[-1] if L == dh_at_A else Z[-1]]
            delta = delta_rule.output_delta(Zd, A, case.T, spec)
        return delta_rule.backward(params, Z, A, delta, spec, dh=dh)


def _matches(got, grads, tol):
    return all(_close(g[p], v[p], t[p] * 4) for g, v, t in zip(got, grads, tol) for p in (0, 1))


def diagnose(case, got, expected, tol, *, dtype_tol32=None, returned_dtype=None):
    """(label, note) for a failing gradient `got` of `case`, or (None, None).

    `got`, `expected`, `tol` are [(W, b), ...]; `dtype_tol32` the float32 tolerances, used to
    recognise a float64 result that is only float32-accurate.
    """
    flat = lambda xs: [x[p] for x in xs for p in (0, 1)]  # noqa: E731
    G, E, T = flat(got), flat(expected), flat(tol)
    if all(_close(g, 0.0, t) for g, t in zip(G, T)) and not all(_close(e, 0.0, t) for e, t in zip(E, T)):
        return "zero", "every gradient entry is 0"
    bad = [i for i, (g, e, t) in enumerate(zip(G, E, T)) if not _close(g, e, t)]
    Gb, Eb, Tb = [G[i] for i in bad], [E[i] for i in bad], [T[i] for i in bad]
    if all(_close(g, 0.0, t) for g, t in zip(Gb, Tb)):
        return "zero", "the failing tensors are left at 0 (a gradient not computed or not stored)"
    if all(_close(g, -e, t) for g, e, t in zip(Gb, Eb, Tb)):
        return "sign", "the gradient has the wrong sign (t - y instead of y - t?)"
    if all(np.ndim(e) == 2 and e.shape[0] == e.shape[1] and _close(g, e.T, t) for g, e, t in zip(Gb, Eb, Tb)):
        return "transposed", "dW is the transpose of the right one (z_i delta_j instead of delta_j z_i)"
    L = len(case.params)
    for l in range(1, L + 1):
        for kw, what in (
            (dict(no_dh=l), "h' missing"),
            (dict(dh_at_A=l), "h' taken at the activation A instead of the pre-activation Z"),
        ):
            if case.spec.activations[l - 1] == "identity":  # h' = 1: nothing to drop or misplace
                continue
            if _matches(got, _variant(case, **kw), tol):
                return "activation_derivative", f"layer {l}: {what} ({case.spec.activations[l - 1]})"
    batch, n_out = case.X.shape[0], case.T.shape[1]
    c = _constant_ratio(Gb, Eb, Tb)
    if c is not None:
        name = _factor_name(c, batch, n_out) or f"{c:.6g}"
        if batch > 1 and name in ("B", "1/B"):
            return (
                "batch_reduction",
                f"off by a factor {name} (B = {batch}): mean over the batch where the sum belongs, or the reverse",
            )
        return "scale", f"off by a constant factor {name}"
    if _matches(got, _variant(case, output="y_minus_t"), tol):
        return "loss_derivative", f"the output delta is y - t, not dJ/dy h'(a) for {case.spec.loss}"
    if dtype_tol32 is not None and returned_dtype == "float64":
        if _matches(got, expected, dtype_tol32):
            return "precision", "right to float32 accuracy only, though float64 was returned"
    return None, None
