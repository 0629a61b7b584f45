"""What known-wrong backprops return: the gradients a failure is compared with.

Each bug is simulated by the delta rule itself (reference_impls/delta_rule.py): another h' for
some layers goes in through its `dh` hook, another output delta is one line beside
`delta_rule.output_delta`. Nothing here copies the backward loop.

    Wrong(hs={1: g})            h'_1 replaced by g(Z[1], A[1]) (and what follows from it below)
    Wrong(hs={2: g}, only="b")  db of layer 2 computed with g, everything else right
    Wrong(output=f)             the output delta f(case, Z, A) instead of dJ/dZ[L]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from reference_impls import delta_rule, model

G = Callable[[np.ndarray, np.ndarray], np.ndarray]  # g(Z[l], A[l]): what is used for h'_l


class Wrong(NamedTuple):
    hs: dict[int, G] = {}  # layer (1-based) -> the g used for its h'
    output: Callable | None = None  # f(case, Z, A) -> the output delta used
    only: str | None = None  # "W" or "b": only that tensor of layer max(hs) takes the bug


def _deltas(case, wrong, Z, A):
    spec, L = case.spec, len(case.params)
    if wrong.output is not None:
        return wrong.output(case, Z, A)
    if L in wrong.hs:
        return model.d_loss(A[-1], case.T, spec) * wrong.hs[L](Z[-1], A[-1])
    return delta_rule.output_delta(Z, A, case.T, spec)


def gradients(case, wrong: Wrong):
    """[(dW, db), ...] of the delta rule with the bug `wrong` planted."""
    params, spec = list(case.params), case.spec
    with np.errstate(all="ignore"):
        Z, A = model.forward(params, case.X, spec)

        def dh(spec, l, Zl):
            return wrong.hs[l](Zl, A[l]) if l in wrong.hs else delta_rule.h_prime(spec, l, Zl)

        grads = delta_rule.backward(params, Z, A, _deltas(case, wrong, Z, A), spec, dh=dh)
        if wrong.only is None:
            return grads
        right = delta_rule.backward(params, Z, A, delta_rule.output_delta(Z, A, case.T, spec), spec)
        t, p = max(wrong.hs), "Wb".index(wrong.only)
        mixed = list(right)
        mixed[t - 1] = tuple(grads[t - 1][i] if i == p else right[t - 1][i] for i in (0, 1))
        return mixed


def magnitude(case, wrong: Wrong):
    """[(mW, mb), ...]: the size of the terms each entry of `gradients(case, wrong)` sums, the
    delta rule run on absolute values (a hidden h' by |g| + 1: the rounding of a formula such
    as 1 - h^2 is absolute)."""
    params, spec = list(case.params), case.spec
    with np.errstate(all="ignore"):
        Z, A = model.forward(params, case.X, spec)
        absA = [np.abs(a) for a in A]
        absP = [(np.abs(W), np.abs(b)) for W, b in params]
        # the output delta's terms: its own size (dJ/dy can be huge where g is tiny: a saturated
        # bce output), and the right delta's
        top = np.abs(_deltas(case, wrong, Z, A)) + np.abs(delta_rule.output_delta(Z, A, case.T, spec))

        def dh(spec, l, Zl):
            g = wrong.hs[l](Zl, A[l]) if l in wrong.hs else delta_rule.h_prime(spec, l, Zl)
            return np.abs(g) + 1

        return delta_rule.backward(absP, Z, absA, top, spec, dh=dh)


def back_propagated(case, top):
    """P[n] = dJ/dA[top] of sample n, up to a positive factor (a mean over the batch): the
    error that h'_top multiplies. It is db of layer `top` with h'_top replaced by 1, on each
    sample alone."""
    ones = lambda Z, A: np.ones_like(Z)  # noqa: E731
    rows = []
    for n in range(case.X.shape[0]):
        one = replace(case, X=case.X[n : n + 1], T=case.T[n : n + 1])
        rows.append(gradients(one, Wrong({top: ones}))[top - 1][1])
    return np.stack(rows)


# --- what people use for h' ---------------------------------------------------------------

# h' in terms of h = h(z), as code often writes it (DESIGN section 2's table)
OUTPUT_FORMS: dict[str, tuple[str, G]] = {
    "sigmoid": ("h(1 - h)", lambda Z, A: A * (1 - A)),
    "tanh": ("1 - h^2", lambda Z, A: 1 - A**2),
    "relu": ("1 where h > 0", lambda Z, A: (np.real(A) > 0) * 1.0),
}
TRUE_FORM = {
    "identity": "1",
    "sigmoid": "h(1 - h)",
    "tanh": "1 - h^2",
    "relu": "1 for z > 0, 0 for z < 0",
    "leaky_relu": f"1 for z > 0, {model.LEAKY_SLOPE:g} for z < 0",
    "softplus": "sigmoid(z)",
}


def true_form(name: str) -> str:
    """The right h' in words: "1 - h^2", "1 for z > 0, 0.2 for z < 0" for leaky_relu:0.2."""
    base, slope = model.split_name(name)
    if slope is not None:
        return f"1 for z > 0, {slope:g} for z < 0"
    return TRUE_FORM.get(base, base)


def right_dh(name: str, Z):
    """The model's h'(Z) of an elementwise activation (not softmax)."""
    dh = model.activation(name).dh
    if dh is None:
        raise ValueError(f"{name} has no elementwise h'")
    return dh(Z)


def _true(name) -> G:
    return lambda Z, A: right_dh(name, Z)


def _at_z(form: G) -> G:
    return lambda Z, A: form(Z, Z)


def candidates(name: str) -> dict[str, tuple[str, G, bool]]:
    """The wrong h' a layer of activation `name` may have been given: key -> (what, g, own),
    `own` when g is relative to the layer's own activation (h' missing, h' at A), so that the
    same mistake fits layers of every activation. Those equal to the right h' on a case are
    left out by the caller."""
    out: dict[str, tuple[str, G, bool]] = {
        "missing": ("h' missing", lambda Z, A: np.ones_like(Z), True),
        "at A": ("h' taken at the activation h(z) instead of z", lambda Z, A: right_dh(name, A), True),
        "h": ("h(z) itself used for h'(z)", lambda Z, A: A, True),
    }
    if name in OUTPUT_FORMS and name != "relu":
        form, fn = OUTPUT_FORMS[name]
        out["form at z"] = (f"the formula {form} (h' in terms of h) given z instead of h", _at_z(fn), True)
    for other in model.HIDDEN_ACTIVATIONS:
        if other != "identity":
            out[f"{other}'"] = (f"{other}'s h'(z) used", _true(other), False)
    for act, (form, fn) in OUTPUT_FORMS.items():
        out[f"{act} form"] = (f"{form} ({act}'s h' in terms of h) used", fn, False)
    return out


# --- families: h' of a shape with free constants (fitted by the diagnosis) -------------------

FAMILIES: dict[str, tuple[str, tuple[G, ...]]] = {
    "in h": ("h", (lambda Z, A: np.ones_like(A), lambda Z, A: A, lambda Z, A: A**2)),
    "in z": ("z", (lambda Z, A: np.ones_like(Z), lambda Z, A: Z, lambda Z, A: Z**2)),
    "step": ("z", (lambda Z, A: (np.real(Z) > 0) * 1.0, lambda Z, A: (np.real(Z) < 0) * 1.0)),
}


def combination(basis, coefs) -> G:
    return lambda Z, A: sum(c * f(Z, A) for c, f in zip(coefs, basis) if c)


def spelled(family: str, coefs) -> str:
    """'1 - h^2', '0.5 + 0.5 z', '1 for z > 0, 0.2 for z < 0'."""
    var, _ = FAMILIES[family]
    num = lambda c: f"{float(c):.4g}"  # noqa: E731
    if family == "step":
        return f"{num(coefs[0])} for z > 0, {num(coefs[1])} for z < 0"
    terms = []
    for c, power in zip(coefs, ("", var, f"{var}^2")):
        if c == 0:
            continue
        mag = abs(float(c))
        body = (num(mag) if not power or mag != 1 else "") + (" " if power and mag != 1 else "") + power
        terms.append(("-" if c < 0 else "+", body))
    if not terms:
        return "0"
    first = ("-" if terms[0][0] == "-" else "") + terms[0][1]
    return " ".join([first] + [f"{s} {b}" for s, b in terms[1:]])


# --- the output delta of a wrong loss derivative, and softmax's diagonal ---------------------


def y_minus_t(case, Z, A):
    """delta = y - t: the half_sse delta of a linear output, whatever the loss and output."""
    return A[-1] - case.T


def other_loss(name):
    """delta as `name`'s derivative would give it: dJ/dy of another loss."""

    def delta(case, Z, A):
        return delta_rule.output_delta(Z, A, case.T, replace(case.spec, loss=name))

    return delta


def softmax_diagonal(case, Z, A):
    """delta_k = dJ/dy_k s_k (1 - s_k): the softmax Jacobian's diagonal only."""
    Y = A[-1]
    return model.d_loss(Y, case.T, case.spec) * Y * (1 - Y)
