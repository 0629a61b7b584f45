"""JAX compile cost across varied shapes: the bucketed reference against a naive per-shape jit.

    python benchmarks/jax_compile.py [--cases 200] [--seed 0]     # prints one JSON object

Both compute (J, dJ/dparams) by reverse mode on the same Hypothesis-drawn cases (the project's
`strategies.cases()`: depth 1-4, widths 1-6, batch 1-5, every activation and loss), each in a
fresh process (benchmarks/run.py runs this script as a subprocess):

- bucketed: reference_impls.jax_ref.gradients_reverse, one program per (width, depth, batch)
  bucket, activations and loss passed as data;
- naive: jax.jit(jax.value_and_grad(loss)) with the activation and loss names static, so every
  new combination of shapes and names is traced and compiled again.

Reports, per method: programs compiled, total seconds for all the cases (compiles included),
and on how many cases the two agree to 1e-6 of each tensor's largest entry (the naive forward
has no stable forms: on saturated sigmoid outputs it loses digits the bucketed one keeps).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from reference_impls import jax_ref  # noqa: E402  (turns on float64)
from verifier import strategies  # noqa: E402

ACTS = {
    "identity": lambda z: z,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": lambda z: jnp.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: jnp.where(z > 0, z, 0.01 * z),
    "softplus": jax.nn.softplus,
    "softmax": lambda z: jax.nn.softmax(z, axis=-1),
}


def _loss(params, X, T, activations, loss):
    A = X
    for (W, b), name in zip(params, activations):
        A = ACTS[name](A @ W.T + b)
    if loss in ("sse", "half_sse", "mse"):
        return jnp.sum((A - T) ** 2) / {"sse": 1.0, "half_sse": 2.0, "mse": A.size}[loss]
    if loss == "bce":
        return -jnp.sum(T * jnp.log(A) + (1 - T) * jnp.log(1 - A)) / A.size
    return -jnp.sum(T * jnp.log(A)) / A.shape[0]


naive = jax.jit(jax.value_and_grad(_loss), static_argnums=(3, 4))


def draw(count, seed):
    found = []
    strategies.explore(strategies.cases(), found.append, examples=count, seed=seed, shrink=False)
    return found


def run(cases, method):
    out, start = [], time.perf_counter()
    for c in cases:
        params = [(W, b) for W, b in c.params]
        if method == "bucketed":
            out.append(jax_ref.gradients_reverse(params, c.X, c.T, c.spec)[1])
        else:
            _, g = naive(params, c.X, c.T, tuple(c.spec.activations), c.spec.loss)
            out.append([(np.asarray(dW), np.asarray(db)) for dW, db in g])
    return time.perf_counter() - start, out


def _close(a, b, rtol=1e-6):
    """Every tensor within rtol of the bucketed one's largest entry."""
    for x, y in zip(a, b):
        for p, q in zip(x, y):
            scale = float(np.max(np.abs(q), initial=0.0))
            if not float(np.max(np.abs(p - q), initial=0.0)) <= rtol * scale:
                return False
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    cases = draw(args.cases, args.seed)
    shapes = {(c.spec.sizes, len(c.X), c.spec.activations, c.spec.loss) for c in cases}
    buckets = {jax_ref.bucket(c.spec.sizes, len(c.X)) for c in cases}
    t_naive, g_naive = run(cases, "naive")
    t_bucket, g_bucket = run(cases, "bucketed")
    agree = sum(_close(a, b) for a, b in zip(g_naive, g_bucket))
    print(
        json.dumps(
            {
                "cases": len(cases),
                "distinct_signatures": len(shapes),
                "buckets": len(buckets),
                "naive": {"compiles": naive._cache_size(), "seconds": t_naive},
                "bucketed": {"compiles": jax_ref.compile_counts()["reverse"], "seconds": t_bucket},
                "agree": agree,
            }
        )
    )


if __name__ == "__main__":
    main()
