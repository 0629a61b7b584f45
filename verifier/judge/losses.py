"""Which loss convention (DESIGN section 2a) a wrong gradient is the gradient of.

A convention's gradient is its data term's, which is the declared one's times the ratio of their
multipliers factor / D (same kind: the same dl/dy), plus its penalty's, 2 c W (and 2 c b with
l2_bias), c = l2 l2_factor [/ B]. So every candidate is a prediction built from the expected
gradient alone, with no call of any reference:

    g(candidate) = s * (expected - P(declared)) + P(candidate),   s = m(candidate) / m(declared)

Candidates: the same kind with factor 1, 1/2 or 2 times the declared one, either reduction over
outputs and over the batch, and a penalty either as declared, missing, or with another
l2_factor, l2_over_batch or l2_bias; and, when no listed penalty fits, one whose strength is
fitted (least squares over the weights, then over the weights and biases) and snapped to three significant digits, so the
`--loss` it names is short and still passes. Simplest first (fewest keys changed).
"""

from __future__ import annotations

from dataclasses import replace
from itertools import product

import numpy as np

from reference_impls import conventions

from .matching import Finding, fits, scaled, skips

__all__ = ["candidates", "prediction", "matching", "finding"]


def candidates(conv: conventions.Convention) -> list[conventions.Convention]:
    """Conventions of the same kind a real implementation may compute instead, simplest first."""
    out = []
    for f, outputs, batch in product((1.0, 0.5, 2.0), ("sum", "mean"), ("sum", "mean")):
        data = replace(conv, factor=conv.factor * f, over_outputs=outputs, over_batch=batch)
        pens = [data]
        if conv.l2:
            pens.append(conventions.without_l2(data))
            for l2f, l2b, bias in product((1.0, 0.5), ("none", "mean"), (False, True)):
                pens.append(replace(data, l2_factor=l2f, l2_over_batch=l2b, l2_bias=bias))
        out += pens
    out = list(dict.fromkeys(c for c in out if c != conv))
    return sorted(out, key=lambda c: sum(getattr(c, k) != getattr(conv, k) for k in conventions.KEYS))


def _penalty_grad(conv, params, B):
    c = 2 * conventions.l2_coef(conv, B)
    return [(c * W, c * b if conv.l2_bias else np.zeros_like(b)) for W, b in params]


def _multiplier(conv, B, n):
    return conventions.scale(conv, B, n)


def prediction(case, expected, declared, other):
    """The gradient of convention `other` on `case`, from the `expected` one of `declared`."""
    B, n = case.X.shape[0], case.T.shape[1]
    s = _multiplier(other, B, n) / _multiplier(declared, B, n)
    Pd, Po = _penalty_grad(declared, case.params, B), _penalty_grad(other, case.params, B)
    return [tuple(s * (e[p] - pd[p]) + po[p] for p in (0, 1)) for e, pd, po in zip(expected, Pd, Po)]


def _fitted(case, got, expected, declared, data, bias=False):
    """`data` with the l2 (l2_factor 1, no batch division, the biases too when `bias`) that fits
    `got` best, snapped to 3 significant digits; None when none is positive."""
    base = prediction(case, expected, declared, conventions.without_l2(data))
    parts = (0, 1) if bias else (0,)
    r = np.concatenate([np.ravel(g[p] - e[p]) for g, e in zip(got, base) for p in parts])
    w = np.concatenate([np.ravel(wb[p]) for wb in case.params for p in parts])
    if not np.dot(w, w):
        return None
    c = float(np.dot(r, w) / np.dot(w, w)) / 2
    if not np.isfinite(c) or c <= 0:
        return None
    return replace(conventions.without_l2(data), l2=float(f"{c:.3g}"), l2_bias=bias)


def _fits(case, got, expected, declared, other, tols):
    want = prediction(case, expected, declared, other)
    B, n = case.X.shape[0], case.T.shape[1]
    k = max(1.0, abs(_multiplier(other, B, n) / _multiplier(declared, B, n)))
    if all(np.array_equal(w[p], e[p]) for w, e in zip(want, expected) for p in (0, 1)):
        return False  # the same gradient here (B = 1: mean and sum over the batch agree)
    return fits(got, want, scaled(tols, k), skips(expected, tols))


def matching(case, got, expected, tols) -> list[conventions.Convention]:
    """The candidate conventions whose gradient `got` is on `case`, simplest first (at most 3)."""
    declared = conventions.parse(case.spec.loss)
    found = [c for c in candidates(declared) if _fits(case, got, expected, declared, c, tols)]
    if not found:
        for bias, f, outputs, batch in product((False, True), (1.0, 0.5, 2.0), ("sum", "mean"), ("sum", "mean")):
            data = replace(declared, factor=declared.factor * f, over_outputs=outputs, over_batch=batch)
            c = _fitted(case, got, expected, declared, data, bias)
            if c is not None and c != declared and _fits(case, got, expected, declared, c, tols):
                found.append(c)
                break
    return found[:3]


def _label(declared, found):
    pen = ("l2", "l2_factor", "l2_over_batch", "l2_bias")
    if any(getattr(c, k) != getattr(declared, k) for c in found for k in pen):
        return "regularization"
    if all(c.factor == declared.factor and c.over_outputs == declared.over_outputs for c in found):
        return "batch_reduction"
    return "scale"


def finding(case, got, expected, tols) -> Finding | None:
    """A Finding naming the convention(s) `got` is the gradient of, with the `--loss` that
    would pass; None when it is no candidate's."""
    declared = conventions.parse(case.spec.loss)
    found = matching(case, got, expected, tols)
    if not found:
        return None
    names = [conventions.name(c) for c in found]
    label = _label(declared, found)
    what = {
        "regularization": "the L2 term's gradient is missing or has another factor",
        "batch_reduction": "mean over the batch where the sum belongs, or the reverse",
        "scale": "off by a constant factor",
    }[label]
    note = f"{what}: it is the gradient of {' or '.join(names)}, not of {case.spec.loss}; --loss {names[0]} would pass"

    def explains(c2, g2, e2, t2):
        d2 = conventions.parse(c2.spec.loss)
        return any(_fits(c2, [tuple(np.asarray(x, float) for x in g) for g in g2], e2, d2, c, t2) for c in found)

    return Finding(label, note, len(found) == 1, explains)
