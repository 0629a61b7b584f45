"""The JAX autodiff reference: its own forward in jax.numpy, gradients by jax.grad (reverse mode)
and by JVPs along basis tangents (forward mode).

Independent on purpose (DESIGN section 8): nothing here imports the numpy forward, the delta
rule or the harness; it depends on jax and numpy only. Same call signature as a user
implementation (DESIGN section 3):

    gradients_reverse(params, X, T, spec) -> (J, [(dW1, db1), ..., (dWL, dbL)])
    gradients_forward(params, X, T, spec) -> (J, [(dW1, db1), ..., (dWL, dbL)])
    loss_value(params, X, T, spec)        -> J

Compile cost. jax.jit compiles one program per input shape, and the harness runs thousands of
networks of varied shapes. So every network is embedded in a padded network of a bucketed shape,
and everything that varies inside a bucket is passed as data, never as a static argument:

- width: every layer becomes P x P, P the next power of two of the widest layer (at least
  MIN_WIDTH). Padded units have zero weights and bias in and zero weights out, so whatever
  their activation value is, it reaches the next layer multiplied by exact zeros.
- depth: Lp layers: MIN_DEPTH (SMALL_DEPTH for narrow buckets, where a layer costs next to
  nothing) if L is no more, else the next power of two of L. The Lp - L extra layers sit at
  the input side and are exact pass-throughs: W = I, b = 0, identity activation
  (x * 1 + 0 + ... + 0 is x).
- batch: Bp rows, the next power of two of B (at least MIN_BATCH). Padded rows and padded
  output units are masked out of the loss; means divide by the real counts (B n_L, B), which
  are data.
- activations: one integer code per layer (data), chosen by lax.switch inside a lax.scan over
  the layers, so only the chosen activation runs. The loss: one integer kind (data) choosing
  among a few cheap terms with select_n; the terms not chosen get finite safe inputs (the
  double-where guard), so no log(0) in an unused term can turn a gradient into NaN. Softmax
  gives padded output units probability exactly 0.

One difference from an unpadded computation, in degenerate cases only: an intermediate value
that overflows to inf meets the padding's exact zeros (0 * inf) and comes out NaN where the
unpadded network might give inf.

A bucket (P, Lp, Bp) costs one compile for reverse mode and one for forward mode (the forward
chunk size is a function of the bucket). Every small network (widths up to 16, batch up to 16,
depth up to 6) shares one bucket. Results match an unpadded computation to rounding.

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

LEAKY_SLOPE = 0.01

# Bucket minimums.
MIN_WIDTH = 16
MIN_BATCH = 16
MIN_DEPTH = 4
SMALL_WIDTH = 16  # buckets this narrow pad depth to at least SMALL_DEPTH
SMALL_DEPTH = 6

# Forward mode: basis tangents per call, and the memory one chunk of tangents may take.
MAX_CHUNK = 64
TANGENT_BUDGET_BYTES = 64 * 2**20

ACTIVATION_CODES = {
    "identity": 0,
    "sigmoid": 1,
    "tanh": 2,
    "relu": 3,
    "leaky_relu": 4,
    "softplus": 5,
    "softmax": 6,  # output layer only; runs as identity, the loss applies the softmax
}
LOSSES = ("sse", "half_sse", "mse", "bce", "softmax_ce")

# Layer code 6 inside the network: log(1 + e^{-|z|}), the tail of softplus, which the output
# layer computes for sigmoid + bce so the loss can be formed from the logits.
_IDENTITY, _SOFTPLUS_TAIL = 0, 6

# Loss kinds (data): the loss plus whether it is computed from the logits (fused). sse,
# half_sse and mse share one kind, squared error, with its divisor (1, 2, B n_L) as data.
_SQUARED, _BCE_PLAIN, _BCE_FUSED, _CE_PLAIN, _CE_FUSED = range(5)


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


def _relu(z):
    return jnp.where(z > 0, z, 0.0)


def _leaky_relu(z):
    return jnp.where(z > 0, z, LEAKY_SLOPE * z)


def _softplus_tail(z):
    """log(1 + e^{-|z|})."""
    return jnp.log1p(jnp.exp(jnp.where(z > 0, -z, z)))


def _softplus(z):
    """log(1 + e^z) = max(z, 0) + log(1 + e^{-|z|})."""
    return _relu(z) + _softplus_tail(z)


_LAYER_FUNCTIONS = (
    lambda z: z,
    _sigmoid,
    _tanh,
    _relu,
    _leaky_relu,
    _softplus,
    _softplus_tail,
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


def _padded_loss(Ws, bs, X, T, codes, softmax_out, kind, divisor, B, nL):
    """J of the padded network: Ws (Lp, P, P), bs (Lp, P), X and T (Bp, P), codes (Lp,) layer
    codes; output rows >= B and columns >= nL are padding, masked out of the loss."""

    def layer(carry, wbc):
        W, b, code = wbc
        z = carry[0] @ W.T + b
        return (lax.switch(code, _LAYER_FUNCTIONS, z), z), None

    (a, z), _ = lax.scan(layer, (X, X), (Ws, bs, codes))

    Bp, P = z.shape
    cols = jnp.arange(P)[None, :] < nL
    mask = (jnp.arange(Bp)[:, None] < B) & cols
    n_rows = B.astype(z.dtype)
    n_elem = (B * nL).astype(z.dtype)

    def total(terms):
        return jnp.sum(jnp.where(mask, terms, 0.0))

    logp, sm = _masked_softmax(z, cols)
    y = jnp.where(softmax_out == 1, sm, a)
    # The plain (unfused) bce and cross-entropy take logs of y: feed them a safe 1/2 wherever
    # they are masked or not the chosen loss.
    yb = jnp.where(mask & (kind == _BCE_PLAIN), y, 0.5)
    yc = jnp.where(mask & (kind == _CE_PLAIN), y, 0.5)
    # sigmoid + bce from the logits: t softplus(-z) + (1 - t) softplus(z)
    #   = (max(z, 0) - t z) + log(1 + e^{-|z|}), where a is the output layer's softplus tail;
    # grouped so that nothing cancels when the output saturates.
    bce_fused = jnp.where(z > 0, (1 - T) * z, -T * z) + a
    return lax.select_n(
        kind,
        total((y - T) ** 2) / divisor,
        -total(T * jnp.log(yb) + (1 - T) * jnp.log(1 - yb)) / n_elem,
        total(bce_fused) / n_elem,
        -total(T * jnp.log(yc)) / n_rows,
        -total(T * logp) / n_rows,  # softmax + softmax_ce: log_softmax of the logits
    )


def _value_and_grad_fn(Ws, bs, X, T, codes, softmax_out, kind, divisor, B, nL):
    return jax.value_and_grad(_padded_loss, argnums=(0, 1))(
        Ws, bs, X, T, codes, softmax_out, kind, divisor, B, nL
    )


def _jvp_chunk_fn(Ws, bs, X, T, codes, softmax_out, kind, divisor, B, nL, idx):
    """J and the directional derivatives along the basis tangents e_i, i in idx, of the flat
    parameter vector (Ws then bs, C order); an index past the end gives the zero tangent."""
    nW, nb = Ws.size, bs.size

    def f(Ws, bs):
        return _padded_loss(Ws, bs, X, T, codes, softmax_out, kind, divisor, B, nL)

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
_signatures = set()  # (mode, input shapes) run so far: what jit compiles once each


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


# --- packing a network into its bucket ----------------------------------------------------------


def _pow2(n):
    return 1 << (max(int(n), 1) - 1).bit_length()


def bucket(sizes, batch, *, min_width=None, min_batch=None, min_depth=None):
    """(P, Lp, Bp): the padded width, depth and batch a network with these sizes runs at."""
    P = max(_pow2(max(sizes)), MIN_WIDTH if min_width is None else min_width)
    if min_depth is None:
        min_depth = SMALL_DEPTH if P <= SMALL_WIDTH else MIN_DEPTH
    L = len(sizes) - 1
    Lp = min_depth if L <= min_depth else _pow2(L)
    Bp = max(_pow2(batch), MIN_BATCH if min_batch is None else min_batch)
    return P, Lp, Bp


def chunk_size(P, Lp):
    """Basis tangents per forward-mode call for a bucket: at most MAX_CHUNK, and few enough
    that their dense one-hot tangents fit TANGENT_BUDGET_BYTES (a power of two)."""
    c = max(1, min(MAX_CHUNK, TANGENT_BUDGET_BYTES // (8 * Lp * P * (P + 1))))
    return 1 << (c.bit_length() - 1)


def _loss_kind(out, loss):
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    if loss == "bce":
        return _BCE_FUSED if out == "sigmoid" else _BCE_PLAIN
    if loss == "softmax_ce":
        return _CE_FUSED if out == "softmax" else _CE_PLAIN
    return _SQUARED


def _validate(params, X, T, spec):
    """sizes, activations, loss kind, X and T as float64, or ValueError saying what is wrong."""
    sizes = tuple(int(n) for n in spec.sizes)
    acts = tuple(spec.activations)
    if len(sizes) < 2 or len(acts) != len(sizes) - 1 or len(params) != len(acts):
        raise ValueError(
            f"spec has {len(sizes)} sizes and {len(acts)} activations, params {len(params)} "
            "layers: need L + 1 sizes, L activations and L (W, b) pairs"
        )
    unknown = [a for a in acts if a not in ACTIVATION_CODES]
    if unknown:
        raise ValueError(
            f"unknown activation {unknown[0]!r}; expected one of {tuple(ACTIVATION_CODES)}"
        )
    if "softmax" in acts[:-1]:
        raise ValueError("softmax is supported at the output layer only")
    X = np.asarray(X, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != sizes[0] or T.shape != (X.shape[0], sizes[-1]):
        raise ValueError(
            f"X {X.shape} and T {T.shape} do not fit sizes {sizes}: need (B, n_0) and (B, n_L)"
        )
    return sizes, acts, _loss_kind(acts[-1], spec.loss), X, T


def _pad_params(params, sizes, P, Lp):
    """Ws (Lp, P, P), bs (Lp, P): pass-through layers (W = I, b = 0) first, then the network's
    layers in the top-left corners, zeros elsewhere."""
    off = Lp - (len(sizes) - 1)
    Ws = np.zeros((Lp, P, P))
    bs = np.zeros((Lp, P))
    Ws[:off] = np.eye(P)
    for l, (W, b) in enumerate(params):
        W = np.asarray(W, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if W.shape != (sizes[l + 1], sizes[l]) or b.shape != (sizes[l + 1],):
            raise ValueError(f"layer {l + 1}: W {W.shape}, b {b.shape} do not fit sizes {sizes}")
        Ws[off + l, : sizes[l + 1], : sizes[l]] = W
        bs[off + l, : sizes[l + 1]] = b
    return Ws, bs


def _layer_codes(acts, kind, Lp):
    """One code per padded layer: identity for the pass-throughs, then the network's; a softmax
    output runs as identity (the loss applies it), a sigmoid + bce output as the softplus tail."""
    codes = np.zeros(Lp, dtype=np.int32)
    codes[Lp - len(acts) :] = [ACTIVATION_CODES[a] for a in acts]
    if acts[-1] == "softmax":
        codes[-1] = _IDENTITY
    if kind == _BCE_FUSED:
        codes[-1] = _SOFTPLUS_TAIL
    return codes


def _pad_rows(M, Bp, P):
    out = np.zeros((Bp, P))
    out[: M.shape[0], : M.shape[1]] = M
    return out


def _pack(params, X, T, spec, **bucket_args):
    """The arguments of the compiled programs for this network, its sizes, and the slot of its
    first layer among the padded ones."""
    sizes, acts, kind, X, T = _validate(params, X, T, spec)
    B = X.shape[0]
    P, Lp, Bp = bucket(sizes, B, **bucket_args)
    Ws, bs = _pad_params(params, sizes, P, Lp)
    divisor = {"half_sse": 2.0, "mse": float(B * sizes[-1])}.get(spec.loss, 1.0)
    args = (
        Ws,
        bs,
        _pad_rows(X, Bp, P),
        _pad_rows(T, Bp, P),
        _layer_codes(acts, kind, Lp),
        np.int32(acts[-1] == "softmax"),
        np.int32(kind),
        np.float64(divisor),
        np.int32(B),
        np.int32(sizes[-1]),
    )
    return args, sizes, Lp - len(acts)


def _unpack(gWs, gbs, sizes, off):
    return [
        (
            np.array(gWs[off + l, : sizes[l + 1], : sizes[l]], dtype=np.float64),
            np.array(gbs[off + l, : sizes[l + 1]], dtype=np.float64),
        )
        for l in range(len(sizes) - 1)
    ]


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
