"""Self mode's judgement of one network case (DESIGN 3, `--against self`): the user's gradients
against numerical derivatives of the user's own `loss(params, X, T, spec)`
(verifier/judge/selfdiff.py), worded as model mode's rows: layer, W or b, worst entries, and a
diagnosis (`scale` with its factor, `sign`, `zero`, `transposed`) read off the per-entry values.
`forward_rows` compares the user's loss value with the declared convention's (`--against both`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from reference_impls import model

from ..records import Failure
from . import selfdiff
from .factors import named
from .layers import diagnose
from .rows import row, verdict_row
from .shape import structure

U = np.finfo(np.float64).eps / 2


def judge_self(case, evaluate, grads, layout, seed: int):
    """(failures, verdicts, dtype, self result) of one call's gradients against the user's loss.

    `evaluate(points, directions)` evaluates loss at perturbed parameters, in the user's layout,
    in the sandbox (rows of one value), or returns the text of why it could not."""
    shaped = structure(case, grads, layout)
    if isinstance(shaped, Failure):
        return [shaped], [], None, None
    mine, dtype = shaped
    user = [(dW.T if layout == "in_out" else dW, db) for dW, db in mine]
    base = [a for W, b in case.params for a in ((W.T if layout == "in_out" else W), b)] + [case.X, case.T]
    flat = [np.asarray(a, dtype=np.float64) for pair in user for a in pair]
    names = [f"{l}{p}" for l in range(1, len(user) + 1) for p in "Wb"]
    res = selfdiff.check(
        evaluate,
        base,
        flat + [np.zeros(0), np.zeros(0)],
        names + ["X", "T"],
        lambda r: r[:, 0],
        seed=seed,
        judged=range(len(flat)),
    )
    if res.error:
        return [row("exception", f"loss could not be evaluated near the case: {res.error}", case)], [], dtype, res
    failures, verdicts = [], []
    B, n_out = case.X.shape[0], case.spec.sizes[-1]
    for v in res.verdicts:
        k = names.index(v.param)
        layer, param = k // 2 + 1, "Wb"[k % 2]
        v = replace(v, layer=layer, param=param)
        verdicts.append(v)
        if v.failed:
            label, note = diagnose(flat[k], res.expected[k], res.tolerance[k], B, n_out)
            how = res.how.get(k, "")
            detail = (
                f"{v.failed} of {v.compared} entries of layer {layer} d{param} are wrong "
                f"(against its own loss, {res.method}; entries judged {how})"
            )
            failures.append(verdict_row("mismatch", detail + (f"; {note}" if note else ""), case, v, diagnosis=label))
    return failures, verdicts, dtype, res


def model_loss(case) -> float:
    return float(model.loss(case.params, case.X, case.T, case.spec))


def forward_rows(case, user_loss: float | None, noise: float) -> list[Failure]:
    """A forward_mismatch row when the user's loss differs from the declared convention's,
    with the factor relating them when the ratio is a named one."""
    if user_loss is None:
        return []
    want = model_loss(case)
    tol = 64 * U * (abs(want) + abs(user_loss)) + 8 * noise + 1e-300
    if abs(user_loss - want) <= tol:
        return []
    ratio = user_loss / want if want else float("inf")
    name = named(ratio, case.X.shape[0], case.spec.sizes[-1]) if np.isfinite(ratio) and ratio else None
    factor = f"; the user's loss is {name.text} times the declared one" if name is not None and name.simple else ""
    return [
        row(
            "forward_mismatch",
            f"loss() gives {user_loss:.10g}, the declared loss {case.spec.loss} gives {want:.10g}{factor}: "
            "the forward is wrong, or the file declares the wrong convention",
            case,
            got=user_loss,
            expected=want,
            abs_error=abs(user_loss - want),
            tolerance=tol,
            diagnosis="scale" if factor else None,
        )
    ]
