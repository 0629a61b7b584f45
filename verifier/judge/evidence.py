"""How much a set of gradient entries can tell: the number of independent entries among them.

A label needs evidence beyond one entry (DESIGN section 7). Counting entries is not enough:
every entry of layers 1..t is a linear function of the delta of layer t (B x n_t numbers),
so on a network of one unit and one sample, dW = delta x and db = delta are two entries that
carry one number: ANY wrong delta (a missing h', a wrong dJ/dy, a factor) gives both the same
ratio to the right values. The evidence of a set of entries is therefore the rank of their
sensitivity to the delta of the highest layer t they reach, computed by running the delta
rule itself (reference_impls/delta_rule.py) from layer t down on a few random deltas: the
rank of the random projection is the true rank, up to the cap, with probability 1.
"""

from __future__ import annotations

import numpy as np

from reference_impls import delta_rule, model

CAP = 4  # the most evidence any signature asks for: 1 + its free parameters (at most 3)
RANK_RTOL = 1e-8  # singular values below this fraction of the largest count as 0
LIMIT = 4096  # entries of one tensor that enter the rank (a big layer's millions are not needed)


def _some(mask, limit=LIMIT):
    """Flat positions of at most `limit` of the entries `mask` selects, spread evenly over them.
    The rank of fewer rows is never more than that of all: a count from them never overstates
    the evidence, and a big tensor's entries reach the cap many times over."""
    at = np.flatnonzero(mask)
    return at if len(at) <= limit else at[:: -(-len(at) // limit)]


def independent(case, masks, cap: int = CAP) -> int:
    """The number of independent entries (up to `cap`) among those `masks` selects.

    `masks` is [(mask_W, mask_b), ...], one boolean array per gradient tensor."""
    layers = [l for l, (mW, mb) in enumerate(masks, start=1) if np.any(mW) or np.any(mb)]
    if not layers:
        return 0
    t = max(layers)
    params, spec = list(case.params), case.spec
    rng = np.random.default_rng(0)
    chosen = [tuple(_some(m) for m in pair) for pair in masks[:t]]
    with np.errstate(all="ignore"):
        Z, A = model.forward(params, case.X, spec)
        columns = []
        for _ in range(cap + 2):
            D = rng.standard_normal((case.X.shape[0], spec.sizes[t]))
            grads = delta_rule.backward(params[:t], Z[: t + 1], A[: t + 1], D, spec)
            columns.append(np.concatenate([np.ravel(g[p])[chosen[l][p]] for l, g in enumerate(grads) for p in (0, 1)]))
    M = np.stack(columns, axis=1)
    M = M[np.all(np.isfinite(M), axis=1)]
    norms = np.linalg.norm(M, axis=1)
    M = M[norms > 0] / norms[norms > 0, None]
    if not len(M):
        return 0
    s = np.linalg.svd(M, compute_uv=False)
    return int(min(cap, np.sum(s > RANK_RTOL * s[0])))
