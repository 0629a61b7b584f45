"""Constant factors named in the loss conventions' terms (DESIGN section 2a): 2, 1/B, B*n_L ...

A factor is named by a form k * B^p * n_L^q (k in 1, 2, 1/2; p, q in -1, 0, 1), where B is the
batch size and n_L the number of outputs of the case it was seen on. A case can tell two forms
apart only when their values differ there (B = 1 cannot tell B from n_L in 1/(B*n_L) and 1/n_L;
n_L = 1 cannot tell B from B*n_L; B = 2 cannot tell B from 2): every form that fits is named,
joined by "or", and `ambiguous` says whether a larger case could settle it.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from itertools import product
from typing import NamedTuple

import numpy as np

from reference_impls import conventions as loss_conventions

RTOL = 1e-9  # a fitted factor is exact to about the tolerance over the entries it came from


class Form(NamedTuple):
    k: Fraction
    p: int  # power of B
    q: int  # power of n_L

    def value(self, batch: int, n_out: int) -> float:
        return float(self.k) * float(batch) ** self.p * float(n_out) ** self.q

    @property
    def complexity(self) -> int:
        return (self.k != 1) + abs(self.p) + abs(self.q)

    @property
    def name(self) -> str:
        num = [str(self.k.numerator)] if self.k.numerator != 1 else []
        den = [str(self.k.denominator)] if self.k.denominator != 1 else []
        for sym, power in (("B", self.p), ("n_L", self.q)):
            (num if power > 0 else den if power < 0 else []).append(sym)
        top = num[0] + "*".join(num[1:]) if num and num[0].isdigit() else "*".join(num)
        top = top or "1"
        if not den:
            return top
        bottom = den[0] + "*".join(den[1:]) if den[0].isdigit() else "*".join(den)
        return f"{top}/({bottom})" if len(den) > 1 else f"{top}/{bottom}"


FORMS = tuple(
    sorted(
        (
            Form(k, p, q)
            for k, p, q in product((Fraction(1), Fraction(2), Fraction(1, 2)), (-1, 0, 1), (-1, 0, 1))
            if (k, p, q) != (1, 0, 0) and p * q >= 0  # B/n_L and the like: no convention gives them
        ),
        key=lambda f: (f.complexity, f.q != 0, f.p != 0),
    )
)


class Named(NamedTuple):
    """The forms (or plain number) a factor c fits on one case."""

    value: float
    forms: tuple[Form, ...]  # every form of FORMS whose value on the case is c
    text: str  # "2", "1/B or 1/n_L", "0.37"
    ambiguous: bool  # more than one form fits: a case with other B, n_L could tell them apart
    simple: bool = True  # a form, or a fraction with a small denominator (not 1.0271...)

    @property
    def batch_only(self) -> bool:
        """Whether every form that fits is a pure batch reduction (1/B, B, 1/(B*n_L) ...)."""
        return bool(self.forms) and all(f.k == 1 and f.p != 0 for f in self.forms)


def name(c: float, batch: int, n_out: int, sign: int = 1) -> Named:
    """The forms a factor c fits for this batch size and output count, simplest first."""
    fits = tuple(f for f in FORMS if np.isclose(sign * c, f.value(batch, n_out), rtol=RTOL, atol=0))
    if fits:
        simplest = min(f.complexity for f in fits)
        unit = lambda f: (f.p != 0 and batch == 1) or (f.q != 0 and n_out == 1)  # noqa: E731
        # a literal times a symbol that is 1 here says nothing: 1/(2B) at B = 1 is just 1/2
        shown = [f for f in fits if f.complexity <= simplest + 1 and not (f.k != 1 and unit(f))][:3]
        text = " or ".join(("-" if sign < 0 else "") + f.name for f in shown)
        return Named(c, fits, text, len(shown) > 1)
    frac = Fraction(float(c)).limit_denominator(16)
    simple = bool(np.isclose(float(frac), c, rtol=RTOL, atol=0)) and abs(frac.numerator) <= 64
    return Named(c, (), str(frac) if simple else f"{c:.6g}", False, simple)


def named(c: float, batch: int, n_out: int) -> Named:
    """`name`, negative factors written with their sign: -2, -1/B."""
    return name(c, batch, n_out, sign=-1 if c < 0 else 1)


# --- the loss conventions a scaled gradient belongs to -------------------------------------


def conventions(c: float, loss: str, batch: int, n_out: int) -> list[str]:
    """The loss conventions of the same kind and penalty (DESIGN section 2a) whose data term's
    gradient is c times that of `loss` on a case with this batch size and output count, by
    canonical name (verifier/judge/losses.py names any convention a whole gradient matches)."""
    mine = loss_conventions.parse(loss)
    want = c * loss_conventions.scale(mine, batch, n_out)
    out = []
    for factor, outputs, over_batch in product((1.0, 0.5, 2.0), ("sum", "mean"), ("sum", "mean")):
        conv = replace(mine, factor=mine.factor * factor, over_outputs=outputs, over_batch=over_batch)
        if conv != mine and np.isclose(loss_conventions.scale(conv, batch, n_out), want, rtol=RTOL, atol=0):
            out.append(loss_conventions.name(conv))
    return out


def separates(batch: int, n_out: int) -> bool:
    """Whether a case of this batch size and output count gives every form its own value (and
    none the value 1): one that can tell a factor B from n_L, 2 and B*n_L."""
    values = [f.value(batch, n_out) for f in FORMS] + [1.0]
    return len({round(v, 9) for v in values}) == len(values)


def separating_batch(n_out: int, candidates=(5, 7, 3, 6, 4, 9)) -> int:
    """The first batch size of `candidates` that `separates` for n_L = n_out (the first of
    them when none can, as with n_L = 1)."""
    return next((b for b in candidates if separates(b, n_out)), candidates[0])
