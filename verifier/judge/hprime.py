"""activation_derivative: the gradient of a delta rule with another h' in some layers.

Two ways to recognise one, both at the highest failing layer t (where a wrong h' first shows):

- known mistakes (verifier/judge/signatures.py `candidates`): h' missing, taken at A, another
  activation's formula ..., at layer t alone, at every layer up to t of t's activation, at
  every layer up to t (for mistakes relative to each layer's own activation), or in one of
  layer t's two tensors only (dW right and db without h', or the reverse);
- families with constants fitted to layer t's gradient by least squares: a polynomial of
  degree 2 in h or in z (1 - h, 1 - h^2 on a sigmoid layer, 1 - z^2 ...) or a step (a for
  z > 0, b for z < 0: the wrong side of a kink, another leaky slope). The constants must be
  simple fractions, the fit must leave one independent entry of evidence over the constants,
  and the h' found must be neither constant (a factor, or h' missing) nor a multiple of the
  right h' (a factor).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

from reference_impls import model

from . import signatures as sig
from .matching import Finding, layers, matches_wrong, same, skips, wrong_finding

LABEL = "activation_derivative"


def _variants(case, top):
    """(note, wrong_on(case) -> Wrong) for each known wrong h' at layer `top`, in its scopes."""
    acts, L = case.spec.activations, len(case.params)
    act = acts[top - 1]
    if act in model.OUTPUT_ONLY:
        ones = lambda Z, A: np.ones_like(Z)  # noqa: E731
        return [(f"layer {top}: the softmax Jacobian left out (dJ/dy used as dJ/dz)", lambda c: sig.Wrong({L: ones}))]
    same_act = [l for l in range(1, top + 1) if acts[l - 1] == act]
    every = [l for l in range(1, top + 1) if acts[l - 1] not in model.OUTPUT_ONLY]
    out = []
    for key, (what, g, own) in sig.candidates(act).items():
        scopes = [[top]] + ([same_act] if len(same_act) > 1 else [])
        if own and every != same_act and all(key in sig.candidates(acts[l - 1]) for l in every):
            scopes.append(every)

        def pick(l, c, key=key, own=own, g=g):
            return sig.candidates(c.spec.activations[l - 1])[key][1] if own else g

        for scope in scopes:
            names = ", ".join(acts[l - 1] for l in scope)
            wrong_on = lambda c, s=scope, pick=pick: sig.Wrong({l: pick(l, c) for l in s})  # noqa: E731
            out.append((f"{layers(scope)}: {what} ({names})", wrong_on))
        for only in ("W", "b"):
            other = "b" if only == "W" else "W"
            note = f"layer {top} {only}: {what} in d{only} only ({act}; d{other} has the right h')"
            out.append((note, lambda c, only=only, pick=pick: sig.Wrong({top: pick(top, c)}, only=only)))
    return out


def _right_already(case, wrong):
    """Whether every h' `wrong` plants is the right one on this case (no bug to see)."""
    Z, A = model.forward(list(case.params), case.X, case.spec)
    acts = case.spec.activations
    with np.errstate(all="ignore"):
        return all(
            acts[l - 1] not in model.OUTPUT_ONLY and same(g(Z[l], A[l]), sig.right_dh(acts[l - 1], Z[l]))
            for l, g in wrong.hs.items()
        )


def _one_bug(case, a, b):
    """Whether two planted bugs are one on this case: the same tensors, the same h' values."""
    if set(a.hs) != set(b.hs) or a.only != b.only:
        return False
    Z, A = model.forward(list(case.params), case.X, case.spec)
    with np.errstate(all="ignore"):
        return all(same(a.hs[l](Z[l], A[l]), b.hs[l](Z[l], A[l])) for l in a.hs)


def known(case, got, expected, tols, top) -> Finding | None:
    """The known wrong h' that gives `got`; unsettled when two different ones do."""
    found: list[tuple[str, Callable, sig.Wrong]] = []
    for note, wrong_on in _variants(case, top):
        w = wrong_on(case)
        if _right_already(case, w) or any(_one_bug(case, w, seen) for _, _, seen in found):
            continue  # the right h' here, or another name for one found (relu's h', "1 where h > 0")
        if matches_wrong(case, got, expected, tols, w):
            found.append((note, wrong_on, w))
    if not found:
        return None
    if len(found) == 1:
        return wrong_finding(LABEL, found[0][0], found[0][1])
    note = f"{found[0][0]}, or {found[1][0]} (this case cannot tell them apart)"
    return wrong_finding(LABEL, note, found[0][1], settled=False)


def could_vanish(case, top) -> bool:
    """Whether a wrong h' could make layer `top`'s delta 0 on this case: one of the known ones,
    or a step (relu' on the wrong side), that is 0 at every unit whose back-propagated error
    is not 0 (integer cases have dead units and h = 0 or 1 exactly)."""
    act = case.spec.activations[top - 1]
    if act in model.OUTPUT_ONLY:
        return False
    with np.errstate(all="ignore"):
        Z, A = model.forward(list(case.params), case.X, case.spec)
        live = sig.back_propagated(case, top) != 0
        gs = [g for _, g, _ in sig.candidates(act).values()]
        gs += [lambda Z, A: (np.real(Z) > 0) * 1.0, lambda Z, A: (np.real(Z) < 0) * 1.0]
        return any(np.all(g(Z[top], A[top])[live] == 0) for g in gs)


def _simple(c):
    f = Fraction(float(c)).limit_denominator(100)
    return f if abs(float(f) - c) <= 1e-6 * max(1.0, abs(c)) else None


def fitted(case, got, expected, tols, top, strength) -> Finding | None:
    """An h' of one of signatures.FAMILIES, its constants fitted to layer `top`'s gradient."""
    spec, L = case.spec, len(case.params)
    act = spec.activations[top - 1]
    if act in model.OUTPUT_ONLY or (top == L and act == "identity"):
        return None  # an elementwise factor at a linear output could as well be dJ/dy's
    skip, tt = skips(expected, tols)[top - 1], tols.tol[top - 1]

    def rows(gr):
        with np.errstate(all="ignore"):
            return np.concatenate([(gr[p] / tt[p])[~skip[p]] for p in (0, 1)])

    y = rows(got[top - 1])
    if not np.all(np.isfinite(y)):
        return None
    Z, A = model.forward(list(case.params), case.X, spec)
    right = sig.right_dh(act, Z[top])
    for family, (_, basis) in sig.FAMILIES.items():
        cols = [rows(sig.gradients(case, sig.Wrong({top: f}))[top - 1]) for f in basis]
        keep = [i for i, col in enumerate(cols) if np.any(col != 0) and np.all(np.isfinite(col))]
        if not keep or len(keep) + 1 > strength:
            continue
        with np.errstate(all="ignore"):
            coef, _, rank, _ = np.linalg.lstsq(np.stack([cols[i] for i in keep], axis=1), y, rcond=None)
        if not np.all(np.isfinite(coef)):
            continue
        simple = [_simple(c) for c in coef]
        if rank < len(keep) or any(c is None for c in simple):
            continue
        coefs = [Fraction(0)] * len(basis)
        for i, c in zip(keep, simple):
            coefs[i] = c
        if (family == "step" and coefs[0] == coefs[1]) or (family != "step" and not any(coefs[1:])):
            continue  # a constant h': a factor, or h' missing (tried before)
        g = sig.combination(basis, [float(c) for c in coefs])
        gz = g(Z[top], A[top])
        with np.errstate(all="ignore"):
            k = float(np.sum(gz * right) / np.sum(right * right)) if np.any(right) else 0.0
        if np.any(right) and same(gz, k * right):
            continue  # a multiple of the right h': a factor, not another h'
        below = [l for l in range(1, top + 1) if spec.activations[l - 1] == act]
        for scope in [[top]] + ([below] if len(below) > 1 else []):
            if matches_wrong(case, got, expected, tols, sig.Wrong({l: g for l in scope})):
                form = sig.spelled(family, coefs)
                note = f"{layers(scope)}: h'(z) computed as {form} ({act}'s h' is {sig.true_form(act)})"
                return wrong_finding(LABEL, note, lambda c, s=scope, g=g: sig.Wrong({l: g for l in s}))
    return None
