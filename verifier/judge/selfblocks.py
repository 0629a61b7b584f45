"""Self mode's fallback, made cheap where the wrong entries are few: which entries of a failing
tensor need per-entry evaluation (verifier/judge/selfdiff.py).

A tensor no hypothesis explained is cut into BLOCKS blocks of entries, and each block is put to
the same test a whole tensor passes (selfdir.judge: a random unit direction inside the block,
zero outside, the same tolerance; complex step and Richardson must agree when the code is
complex-safe). A block that passes has all its entries right at the confidence a passing tensor
has; a block that fails is cut again, in the next round (one batch of points for every tensor),
until blocks hold at most BLOCKS entries: those are evaluated entry by entry. One wrong entry
among n costs about BLOCKS * 5 * log_BLOCKS(n) evaluations instead of n.

Where the test cannot localize, the entries go to per-entry evaluation at once: when more than
half of the blocks of a round fail (a bug in most entries: cutting further costs more than it
saves), and when a block failed but none of its parts does (an error spread thinly over many
entries, each part's share within tolerance).
"""

from __future__ import annotations

import numpy as np

from . import selfdir

BLOCKS = 16  # parts a failing block is cut into; blocks of at most this many entries are evaluated


def _direction(size: int, idx: np.ndarray, shape, rng) -> np.ndarray:
    v = np.zeros(size)
    v[idx] = rng.normal(size=idx.size)
    return (v / max(float(np.linalg.norm(v)), 1e-300)).reshape(shape)


def localize(evaluate, base, grads, scalar, failing, safe: bool, sigmas: dict, f0: float, seed: int):
    """(entries to evaluate per tensor {k: flat indices}, evaluations, error or None)."""
    rng = np.random.default_rng([abs(int(seed)), 2])
    todo = {k: [np.arange(np.size(base[k]))] for k in failing}  # failing blocks still to cut
    suspects: dict[int, list[np.ndarray]] = {k: [] for k in failing}
    count = 0
    while any(todo.values()):
        parts, dirs, pts = [], [], []
        for k, blocks in todo.items():
            for blk in blocks:
                if blk.size <= BLOCKS:
                    suspects[k].append(blk)
                    continue
                for part in np.array_split(blk, BLOCKS):
                    parts.append((k, blk, part))
                    dirs.append(_direction(np.size(base[k]), part, np.shape(base[k]), rng))
                    pts += selfdir.points(k, len(dirs) - 1, base[k], ladder=False)
        todo = {k: [] for k in failing}
        if not parts:
            break
        rows = evaluate(pts, dirs)
        count += len(pts)
        if isinstance(rows, str):
            return {}, count, rows
        f = scalar(rows)
        failed = []
        for i, (k, blk, part) in enumerate(parts):
            n = selfdir.STEPS
            est = selfdir.estimate(f[n * i : n * (i + 1)], base[k], f0, sigmas[k])
            j = selfdir.judge(grads[k], dirs[i], est, base[k], safe)
            if not j.ok or (safe and not est.agrees):
                failed.append((k, blk, part))
        _next_round(parts, failed, todo, suspects)
    return {k: np.unique(np.concatenate(s)) if s else np.zeros(0, int) for k, s in suspects.items()}, count, None


def _next_round(parts, failed, todo, suspects) -> None:
    """Failing parts are cut again, or go to per-entry evaluation (the module's two rules)."""
    by_parent: dict[tuple[int, int], list] = {}
    for k, blk, _ in parts:
        by_parent.setdefault((k, id(blk)), [blk, 0, 0])[1] += 1
    for k, blk, _ in failed:
        by_parent[(k, id(blk))][2] += 1
    for (k, _), (blk, n_parts, n_failed) in by_parent.items():
        if n_failed == 0:
            suspects[k].append(blk)  # the error is spread thinly: no part shows it alone
        elif 2 * n_failed > n_parts:
            suspects[k] += [part for kk, b, part in failed if kk == k and b is blk]
        else:
            todo[k] += [part for kk, b, part in failed if kk == k and b is blk]
