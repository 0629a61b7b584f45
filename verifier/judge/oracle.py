"""Full mode's oracle: the references' answer for one case, cross-checked before anything is
judged (the rule of agreement.py), and the tolerances for a result in any dtype."""

from __future__ import annotations

import numpy as np

from ..errors import ReferenceDisagreement
from .agreement import HARNESS_BUG, losses_agree, pair_verdicts
from .references import LOSS_PAIR, REFERENCES, full_oracles
from .shape import FLOAT_KINDS, narrowest
from .tolerance import Judgement, judgement


class Oracle:
    """The references' answer for one case: `loss` and `grads` of the first of `oracles`
    (default: full mode's, `full_oracles(case)`), after every other one has agreed with it."""

    def __init__(self, case, oracles=None):
        oracles = tuple(oracles or full_oracles(case))
        outs = {n: REFERENCES[n](case) for n in oracles}
        self.loss, self.grads = outs[oracles[0]].loss, outs[oracles[0]].grads
        self.case, self.jd64, self.names = case, judgement(case), oracles
        where = f"on sizes {list(case.spec.sizes)}: {HARNESS_BUG}"
        for name in oracles[1:]:
            for v in pair_verdicts(outs[name], outs[oracles[0]], self.jd64):
                if v.failed:
                    raise ReferenceDisagreement(
                        f"references {oracles[0]} and {name} disagree at layer {v.layer} {v.param} {where}"
                    )
        a, b = LOSS_PAIR  # the two forwards that share no code
        if a in outs and b in outs and not losses_agree(outs[a].loss, outs[b].loss, self.jd64):
            raise ReferenceDisagreement(f"loss values differ: {a} {outs[a].loss!r}, {b} {outs[b].loss!r} {where}")

    def judgement_of(self, kinds) -> Judgement:
        """Tolerances for a result whose tensors came back in `kinds`, [(dW's dtype name, db's),
        ...]: each tensor's from its own dtype, so a float16 tensor loosens no other's; the loss
        value's and the unit roundoff from the narrowest (the loss carries no dtype of its own)."""
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
        tol = [(tw + ow, tb + ob) for (tw, tb), (ow, ob) in zip(jd.tol, self.jd64.tol)]
        return jd._replace(tol=tol, loss_tol=jd.loss_tol + self.jd64.loss_tol)
