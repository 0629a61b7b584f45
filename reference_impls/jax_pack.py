"""Packing a network into the padded shape bucket the JAX reference runs it in; numpy only.

jax.jit compiles one program per input shape, and the harness runs thousands of
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
  among a few cheap terms with select_n, divided by the convention's divisor D / factor
  (DESIGN section 2a: D = n_L for a mean over outputs times B for a mean over the batch), all
  data, so every convention shares one program; the L2 penalty's coefficient, whether it
  counts the biases, and which padded layers are real (a pass-through's W = I is not) too; the terms not chosen get finite safe inputs (the
  double-where guard), so no log(0) in an unused term can turn a gradient into NaN. Softmax
  gives padded output units probability exactly 0.

One difference from an unpadded computation, in degenerate cases only: an intermediate value
that overflows to inf meets the padding's exact zeros (0 * inf) and comes out NaN where the
unpadded network might give inf.

A bucket (P, Lp, Bp) costs one compile for reverse mode and one for forward mode (the forward
chunk size is a function of the bucket). Every small network (widths up to 16, batch up to 16,
depth up to 6) shares one bucket. Results match an unpadded computation to rounding.
"""

from __future__ import annotations

import numpy as np

from . import conventions, model

__all__ = ["bucket", "chunk_size", "is_smallest", "pack", "unpack", "ACTIVATION_CODES", "LOSSES"]

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
LOSSES = model.LOSS_NAMES

# Layer code 6 inside the network: log(1 + e^{-|z|}), the tail of softplus, which the output
# layer computes for sigmoid + bce so the loss can be formed from the logits.
_IDENTITY, _SOFTPLUS_TAIL = 0, 6

# Loss kinds (data): the loss plus whether it is computed from the logits (fused). sse,
# half_sse and mse share one kind, squared error, with its divisor (1, 2, B n_L) as data.
SQUARED, BCE_PLAIN, BCE_FUSED, CE_PLAIN, CE_FUSED = range(5)


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
    kind = conventions.parse(loss).kind  # ValueError saying the fix for an unknown loss
    if kind == "bce":
        return BCE_FUSED if out == "sigmoid" else BCE_PLAIN
    if kind == "ce":
        return CE_FUSED if out == "softmax" else CE_PLAIN
    return SQUARED


def _validate(params, X, T, spec):
    """sizes, activations, loss kind, X and T as float64, or ValueError saying what is wrong."""
    sizes = tuple(int(n) for n in spec.sizes)
    acts = tuple(spec.activations)
    if len(sizes) < 2 or len(acts) != len(sizes) - 1 or len(params) != len(acts):
        raise ValueError(
            f"spec has {len(sizes)} sizes and {len(acts)} activations, params {len(params)} "
            "layers: need L + 1 sizes, L activations and L (W, b) pairs"
        )
    unknown = [a for a in acts if model.base_name(a) not in ACTIVATION_CODES]
    for a in acts:
        model.split_name(a)  # ValueError saying the fix for a bad parameter
    if unknown:
        raise ValueError(f"unknown activation {unknown[0]!r}; expected one of {tuple(ACTIVATION_CODES)}")
    if "softmax" in acts[:-1]:
        raise ValueError("softmax is supported at the output layer only")
    X = np.asarray(X, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != sizes[0] or T.shape != (X.shape[0], sizes[-1]):
        raise ValueError(f"X {X.shape} and T {T.shape} do not fit sizes {sizes}: need (B, n_0) and (B, n_L)")
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
    codes[Lp - len(acts) :] = [ACTIVATION_CODES[model.base_name(a)] for a in acts]
    if acts[-1] == "softmax":
        codes[-1] = _IDENTITY
    if kind == BCE_FUSED:
        codes[-1] = _SOFTPLUS_TAIL
    return codes


def _slopes(acts, Lp):
    """One leaky_relu slope per padded layer (the parameter of leaky_relu:SLOPE, else 0.01);
    only a leaky_relu layer reads its slope."""
    slopes = np.full(Lp, model.LEAKY_SLOPE)
    for i, a in enumerate(acts):
        s = model.split_name(a)[1]
        slopes[Lp - len(acts) + i] = model.LEAKY_SLOPE if s is None else s
    return slopes


def _pad_rows(M, Bp, P):
    out = np.zeros((Bp, P))
    out[: M.shape[0], : M.shape[1]] = M
    return out


def pack(params, X, T, spec, **bucket_args):
    """The arguments of the compiled programs for this network, its sizes, and the slot of its
    first layer among the padded ones."""
    sizes, acts, kind, X, T = _validate(params, X, T, spec)
    B = X.shape[0]
    P, Lp, Bp = bucket(sizes, B, **bucket_args)
    Ws, bs = _pad_params(params, sizes, P, Lp)
    conv = conventions.parse(spec.loss)
    D = (sizes[-1] if conv.over_outputs == "mean" else 1) * (B if conv.over_batch == "mean" else 1)
    real = np.zeros(Lp)
    real[Lp - len(acts) :] = 1.0  # the pass-through layers (W = I) stay out of the penalty
    args = (
        Ws,
        bs,
        _pad_rows(X, Bp, P),
        _pad_rows(T, Bp, P),
        _layer_codes(acts, kind, Lp),
        _slopes(acts, Lp),
        np.int32(acts[-1] == "softmax"),
        np.int32(kind),
        np.float64(D / conv.factor),
        np.int32(B),
        np.int32(sizes[-1]),
        np.float64(conventions.l2_coef(conv, B)),
        np.float64(conv.l2_bias),
        real,
    )
    return args, sizes, Lp - len(acts)


def unpack(gWs, gbs, sizes, off):
    return [
        (
            np.array(gWs[off + l, : sizes[l + 1], : sizes[l]], dtype=np.float64),
            np.array(gbs[off + l, : sizes[l + 1]], dtype=np.float64),
        )
        for l in range(len(sizes) - 1)
    ]


def is_smallest(sizes, batch):
    """Whether a network runs in the smallest bucket, the one every small network shares (and
    so the one compiled program that serves a whole run of generated cases)."""
    return bucket(sizes, batch) == bucket((1, 1), 1)
