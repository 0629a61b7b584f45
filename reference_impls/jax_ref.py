"""The JAX autodiff reference: its own forward in jax.numpy, gradients by jax.grad (reverse mode)
and by JVPs along basis tangents (forward mode).

Independent on purpose (DESIGN section 8): nothing here imports the numpy forward, the delta
rule or the harness; it depends on jax and numpy only. Same call signature as a user
implementation (DESIGN section 3):

    gradients_reverse(params, X, T, spec) -> (J, [(dW1, db1), ..., (dWL, dbL)])
    gradients_forward(params, X, T, spec) -> (J, [(dW1, db1), ..., (dWL, dbL)])
    loss_value(params, X, T, spec)        -> J

Compile cost. jax.jit compiles one program per input shape, and the harness runs thousands of
networks of varied shapes, so every network runs embedded in a padded network of a bucketed
shape, with everything that varies inside a bucket passed as data (reference_impls/jax_pack.py
packs a network into its bucket, with numpy only, so the harness can ask which bucket a network
falls in without importing jax).

Forward mode computes one JVP per real (unpadded) parameter entry, along its basis tangent, in
chunks of tangents (vmap over the chunk), so memory stays bounded; its cost grows with the
number of parameters, as forward mode's does: fine up to a few thousand parameters, slow (but
working) for 100k and more.

Compile time matters more than run time for reverse mode here (a few hundred microseconds a
network), so its programs are compiled with XLA's backend optimisation level 0 (about 40% less
compile time, same arithmetic: no fast-math either way). Forward mode keeps the default level:
its vmapped matrix products run much slower unoptimised.

Set the environment variable BACKPROP_VERIFY_JAX_CACHE to a directory to keep compiled programs
across processes (JAX's persistent compilation cache); it is off by default.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .jax_pack import (
    BCE_PLAIN,
    CE_PLAIN,
    bucket,
    chunk_size,
)
from .jax_pack import (
    pack as _pack,
)
from .jax_pack import (
    unpack as _unpack,
)

__all__ = [
    "gradients_reverse",
    "gradients_forward",
    "loss_value",
    "bucket",
    "chunk_size",
    "compile_counts",
]

jax.config.update("jax_enable_x64", True)

_CACHE_DIR = os.environ.get("BACKPROP_VERIFY_JAX_CACHE")
if _CACHE_DIR:
    jax.config.update("jax_compilation_cache_dir", _CACHE_DIR)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# --- activations: forms whose values and autodiff derivatives stay accurate --------------------
#
# One test, z > 0, picks every piece, so the derivative at z = 0 is the z <= 0 side's:
# relu'(0) = 0, leaky_relu'(0) = 0.01, and the smooth ones come out right at 0. e^{-|z|} <= 1
# never overflows.


def _sigmoid(z):
    """1/(1+e) for z > 0, e/(1+e) otherwise, e = e^{-|z|}: the derivative e/(1+e)^2 stays
    accurate when saturated (no 1 - y cancellation)."""
    pos = z > 0
    e = jnp.exp(jnp.where(pos, -z, z))
    return jnp.where(pos, 1 / (1 + e), e / (1 + e))


def _tanh(z):
    """sign(z) tanh|z|: -expm1(-2|z|)/(2 + expm1(-2|z|)) for |z| < 1/2 (accurate near 0),
    (1 - e)/(1 + e) with e = e^{-2|z|} beyond (its derivative, unlike jnp.tanh's 1 - tanh^2,
    stays accurate when saturated)."""
    pos = z > 0
    a = jnp.where(pos, z, -z)
    u = jnp.expm1(-2 * jnp.minimum(a, 0.5))  # only used where a < 1/2
    e = jnp.exp(-2 * a)
    t = jnp.where(a < 0.5, -u / (2 + u), (1 - e) / (1 + e))
    return jnp.where(pos, t, -t)


def _relu(z, s=None):
    return jnp.where(z > 0, z, 0.0)


def _leaky_relu(z, s):
    """z for z > 0, else s z: s is the layer's slope (leaky_relu:SLOPE), data, not a constant."""
    return jnp.where(z > 0, z, s * z)


def _softplus_tail(z):
    """log(1 + e^{-|z|})."""
    return jnp.log1p(jnp.exp(jnp.where(z > 0, -z, z)))


def _softplus(z):
    """log(1 + e^z) = max(z, 0) + log(1 + e^{-|z|})."""
    return _relu(z) + _softplus_tail(z)


# Each layer function takes (z, slope); only leaky_relu reads the slope.
_LAYER_FUNCTIONS = (
    lambda z, s: z,
    lambda z, s: _sigmoid(z),
    lambda z, s: _tanh(z),
    _relu,
    _leaky_relu,
    lambda z, s: _softplus(z),
    lambda z, s: _softplus_tail(z),
)


def _masked_softmax(z, cols):
    """(log softmax, softmax) over the real columns of each row; padded columns get probability
    exactly 0 and log-probability 0 (never used), and every intermediate stays finite. The shift
    is constant for differentiation (softmax does not depend on it)."""
    m = lax.stop_gradient(jnp.max(jnp.where(cols, z, -jnp.inf), axis=-1, keepdims=True))
    zs = jnp.where(cols, z - m, 0.0)
    ez = jnp.where(cols, jnp.exp(zs), 0.0)
    s = jnp.sum(ez, axis=-1, keepdims=True)
    return jnp.where(cols, zs - jnp.log(s), 0.0), ez / s


# --- the padded network ------------------------------------------------------------------------


def _padded_loss(Ws, bs, X, T, codes, slopes, softmax_out, kind, divisor, B, nL, l2c, l2b, real):
    """J of the padded network: Ws (Lp, P, P), bs (Lp, P), X and T (Bp, P), codes (Lp,) layer
    codes, slopes (Lp,) each layer's leaky_relu slope; output rows >= B and columns >= nL are
    padding, masked out of the loss. The data term is the sum of the chosen kind's terms / divisor; the L2 penalty l2c (sum W^2 + l2b
    sum b^2) over the real layers (real: 1 or 0 per padded layer)."""

    def layer(carry, wbc):
        W, b, code, slope = wbc
        z = carry[0] @ W.T + b
        return (lax.switch(code, _LAYER_FUNCTIONS, z, slope), z), None

    (a, z), _ = lax.scan(layer, (X, X), (Ws, bs, codes, slopes))

    Bp, P = z.shape
    cols = jnp.arange(P)[None, :] < nL
    mask = (jnp.arange(Bp)[:, None] < B) & cols

    def total(terms):
        return jnp.sum(jnp.where(mask, terms, 0.0))

    logp, sm = _masked_softmax(z, cols)
    y = jnp.where(softmax_out == 1, sm, a)
    # The plain (unfused) bce and cross-entropy take logs of y: feed them a safe 1/2 wherever
    # they are masked or not the chosen loss.
    yb = jnp.where(mask & (kind == BCE_PLAIN), y, 0.5)
    yc = jnp.where(mask & (kind == CE_PLAIN), y, 0.5)
    # sigmoid + bce from the logits: t softplus(-z) + (1 - t) softplus(z)
    #   = (max(z, 0) - t z) + log(1 + e^{-|z|}), where a is the output layer's softplus tail;
    # grouped so that nothing cancels when the output saturates.
    bce_fused = jnp.where(z > 0, (1 - T) * z, -T * z) + a
    data = lax.select_n(
        kind,
        total((y - T) ** 2) / divisor,
        -total(T * jnp.log(yb) + (1 - T) * jnp.log(1 - yb)) / divisor,
        total(bce_fused) / divisor,
        -total(T * jnp.log(yc)) / divisor,
        -total(T * logp) / divisor,  # softmax + softmax_ce: log_softmax of the logits
    )
    squares = jnp.sum(real[:, None, None] * Ws * Ws) + l2b * jnp.sum(real[:, None] * bs * bs)
    return data + l2c * squares


def _value_and_grad_fn(*args):
    return jax.value_and_grad(_padded_loss, argnums=(0, 1))(*args)


def _jvp_chunk_fn(Ws, bs, *rest):
    """J and the directional derivatives along the basis tangents e_i, i in idx, of the flat
    parameter vector (Ws then bs, C order); an index past the end gives the zero tangent."""
    nW, nb = Ws.size, bs.size
    *data, idx = rest

    def f(Ws, bs):
        return _padded_loss(Ws, bs, *data)

    def along(i):
        t = (jnp.arange(nW + nb) == i).astype(Ws.dtype)
        return jax.jvp(f, (Ws, bs), (t[:nW].reshape(Ws.shape), t[nW:].reshape(bs.shape)))

    return jax.vmap(along, out_axes=(None, 0))(idx)


_FAST_COMPILE = {"xla_backend_optimization_level": 0}
_value_and_grad_default = jax.jit(_value_and_grad_fn)
try:
    _value_and_grad = jax.jit(_value_and_grad_fn, compiler_options=_FAST_COMPILE)
    _fast_compile_ok = True
except TypeError:  # a jax whose jit takes no compiler options
    _value_and_grad = _value_and_grad_default
    _fast_compile_ok = False
_jvp_chunk = jax.jit(_jvp_chunk_fn)
_signatures: set = set()  # (mode, input shapes) run so far: what jit compiles once each


def _reverse(args):
    """Run the reverse-mode program, falling back to default compilation for good if this XLA
    does not know the fast-compile option."""
    global _fast_compile_ok
    if _fast_compile_ok:
        try:
            return _value_and_grad(*args)
        except Exception as exc:
            if "xla_backend_optimization_level" not in str(exc):
                raise
            _fast_compile_ok = False
    return _value_and_grad_default(*args)


# --- public API -------------------------------------------------------------------------------
#
# The keyword arguments min_width, min_batch and min_depth raise the bucket (tests use them to
# show that padding changes nothing); callers leave them alone.


def gradients_reverse(params, X, T, spec, **bucket_args):
    """(J, [(dJ/dW1, dJ/db1), ...]) by jax.value_and_grad (reverse mode)."""
    args, sizes, off = _pack(params, X, T, spec, **bucket_args)
    _signatures.add(("reverse", (args[0].shape, args[2].shape)))
    J, (gWs, gbs) = _reverse(args)
    return float(J), _unpack(np.asarray(gWs), np.asarray(gbs), sizes, off)


def gradients_forward(params, X, T, spec, **bucket_args):
    """(J, [(dJ/dW1, dJ/db1), ...]) by forward mode: one JVP per real parameter entry along its
    basis tangent, a chunk of tangents per call; padded entries are never differentiated."""
    args, sizes, off = _pack(params, X, T, spec, **bucket_args)
    Ws = args[0]
    Lp, P, _ = Ws.shape
    n_total = Ws.size + Lp * P
    flat = []  # flat indices of the real entries: Ws in C order, then bs
    for l in range(len(sizes) - 1):
        slot, n_out, n_in = off + l, sizes[l + 1], sizes[l]
        flat.append((slot * P * P + np.arange(n_out)[:, None] * P + np.arange(n_in)).ravel())
        flat.append(Ws.size + slot * P + np.arange(n_out))
    flat = np.concatenate(flat)
    C = chunk_size(P, Lp)
    _signatures.add(("forward", (Ws.shape, args[2].shape, C)))
    idx = np.full(-(-len(flat) // C) * C, n_total, dtype=np.int64)  # past the end: zero tangent
    idx[: len(flat)] = flat
    derivs = np.empty(len(idx))
    J = None
    for start in range(0, len(idx), C):
        J, d = _jvp_chunk(*args, idx[start : start + C])
        derivs[start : start + C] = np.asarray(d)
    full = np.zeros(n_total)
    full[flat] = derivs[: len(flat)]
    gWs, gbs = full[: Ws.size].reshape(Ws.shape), full[Ws.size :].reshape(Lp, P)
    return float(J), _unpack(gWs, gbs, sizes, off)


def loss_value(params, X, T, spec, **bucket_args):
    """J on the batch X with targets T by the JAX forward (it shares the reverse-mode program,
    so asking for the loss costs no extra compile)."""
    return gradients_reverse(params, X, T, spec, **bucket_args)[0]


def compile_counts():
    """Programs compiled so far by this module, per mode: one per bucket and mode. Read from
    jax's per-function cache when this jax has it, else counted here by input signature."""
    reverse = {_value_and_grad, _value_and_grad_default}
    if all(hasattr(f, "_cache_size") for f in reverse | {_jvp_chunk}):
        return {
            "reverse": sum(f._cache_size() for f in reverse),
            "forward": _jvp_chunk._cache_size(),
        }
    return {mode: sum(1 for m, _ in _signatures if m == mode) for mode in ("reverse", "forward")}


def clear_compiled():
    """Forget the compiled programs (tests that count compilations start from here)."""
    _signatures.clear()
    for f in (_value_and_grad, _value_and_grad_default, _jvp_chunk):
        f.clear_cache()
