"""Full mode's oracle: the references' answer for one case, cross-checked before anything is
judged (the rule of agreement.py), and the tolerances for a result in any dtype."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ReferenceDisagreement
from .agreement import HARNESS_BUG, losses_agree, pair_agrees, pair_verdicts
from .lazy import Lazy, Parts
from .references import BY_LAYER, LOSS_PAIR, REFERENCES, SECOND_FORWARD, full_oracles, second_loss
from .shape import FLOAT_KINDS, narrowest
from .tolerance import Judgement, judgement


class Oracle:
    """The references' answer for one case: `loss` and `grads` of the first of `oracles`
    (default: full mode's, `full_oracles(case)`), after every other one has agreed with it."""

    def __init__(self, case, oracles=None):
        oracles = tuple(oracles or full_oracles(case))
        first = REFERENCES[oracles[0]](case)
        self.loss, self.grads = first.loss, first.grads
        self.case, self.jd64, self.names = case, judgement(case), oracles
        where = f"on sizes {list(case.spec.sizes)}: {HARNESS_BUG}"
        losses = {oracles[0]: first.loss} if oracles[0] in LOSS_PAIR else {}
        # One other reference at a time, a layer at a time where it can (BY_LAYER): besides the
        # first reference's gradients and the tolerances, a big network holds one layer's more.
        for name in oracles[1:]:
            out = BY_LAYER.get(name, REFERENCES[name])(case)
            if name in LOSS_PAIR:
                losses[name] = out.loss
            if pair_agrees(out, first, self.jd64):
                continue
            for v in pair_verdicts(out, first, self.jd64):
                if v.failed:
                    raise ReferenceDisagreement(
                        f"references {oracles[0]} and {name} disagree at layer {v.layer} {v.param} {where}"
                    )
        losses[SECOND_FORWARD] = second_loss(case)  # forwards that share no code
        check_losses(oracles[0], self.loss, losses, self.jd64, where)

    def judgement_of(self, kinds) -> Judgement:
        """Tolerances for a result whose tensors came back in `kinds`, [(dW's dtype name, db's),
        ...]: each tensor's from its own dtype, so a float16 tensor loosens no other's; the loss
        value's and the unit roundoff from the narrowest (`for_loss` gives the loss its own)."""
        by = {k: self.judgement(FLOAT_KINDS[k]) for k in {k for pair in kinds for k in pair}}
        jd = by[narrowest(by)]
        if len(by) == 1:
            return jd

        def pick(field):
            return [tuple(getattr(by[k], field)[l][p] for p, k in enumerate(pair)) for l, pair in enumerate(kinds)]

        return jd._replace(tol=pick("tol"), centre=pick("centre"), radius=pick("radius"))

    def judgement(self, dtype) -> Judgement:
        """Tolerances for a result in `dtype`: its own rounding plus the oracle's."""
        jd = self.jd64 if np.dtype(dtype) == np.float64 else judgement(self.case, dtype)
        return jd._replace(tol=Summed(jd.tol, self.jd64.tol), loss_tol=jd.loss_tol + self.jd64.loss_tol)

    def for_loss(self, jd: Judgement, kinds, loss_dtype: str | None) -> Judgement:
        """`jd` (judgement_of(kinds)) with the loss value's tolerance of its own dtype: a float64
        loss beside a float16 tensor is judged to float64. Without a dtype (none reported) the
        loss is judged to the narrowest tensor's, as `jd` has it."""
        if loss_dtype not in FLOAT_KINDS or loss_dtype == narrowest([k for pair in kinds for k in pair]):
            return jd
        return jd._replace(loss_tol=self.judgement(FLOAT_KINDS[loss_dtype]).loss_tol)


class Summed(Sequence):
    """[(tW + oW, tb + ob), ...] of two tolerance lists, one layer at a time when asked for: on a
    big network a whole summed copy would be the largest thing a check holds."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, l):
        if isinstance(l, slice):
            return [self[i] for i in range(*l.indices(len(self)))]
        (tw, tb), (ow, ob) = self.a[l], self.b[l]
        return (Parts((tw, ow)) if isinstance(tw, Lazy) else tw + ow, tb + ob)

    def by_parts(self) -> list:
        """[(Parts(tW, oW), Parts(tb, ob)), ...]: the sums left for lazy.part to add a block
        at a time (a verdict of a big tensor then holds no summed copy at all)."""
        return [(Parts((tw, ow)), Parts((tb, ob))) for (tw, tb), (ow, ob) in zip(self.a, self.b)]


def check_losses(name, loss, others, jd, where) -> None:
    """ReferenceDisagreement unless every forward in `others` ({name: loss}) gives `loss`."""
    for other, value in others.items():
        if other != name and not losses_agree(loss, value, jd):
            raise ReferenceDisagreement(f"loss values differ: {name} {loss!r}, {other} {value!r} {where}")
