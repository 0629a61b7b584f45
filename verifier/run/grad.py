"""`grad`: every reference's loss and gradients on one case, as a GradResult."""

from __future__ import annotations

from ..errors import VerifierError
from ..judge.agreement import run_references
from ..judge.references import REFERENCES
from ..records import Case, GradResult


def run_grad(case: Case, source: str = "") -> GradResult:
    """Every reference on `case` (read from `source`); VerifierError if one of them raised."""
    outputs, failures = run_references(case, REFERENCES)
    if failures:
        raise VerifierError("; ".join(f.detail for f in failures))
    return GradResult(
        case=source,
        loss={n: float(o.loss) for n, o in outputs.items()},
        grads={n: [(dW, db) for dW, db in o.grads] for n, o in outputs.items()},
    )
