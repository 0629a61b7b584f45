"""The complex-step derivative dJ/dw = Im J(w + ih) / h, structure-aware and vectorised.

With h = 2^-100 no two values of J are subtracted, so there is no cancellation: the result is
as accurate as the forward values it is built from, wherever J is analytic (a saturated softmax
still costs what it costs every method: ~1e-11 relative on gradients far below |J|). The
model's functions branch on the real part, so at a relu or leaky_relu pre-activation exactly
at 0 the complex step silently takes the z <= 0 side (derivative 0, resp. 0.01, the delta
rule's convention); such entries are flagged.

Structure: perturbing W[l][j, i] by ih adds ih A[l-1][:, i] to Z[l][:, j] only (a bias adds
ih). In float64 arithmetic, with h this small, the complex forward from there on is

    real part      = the clean forward (the O(h^2) corrections are below eps)
    imaginary part = h times a tangent that every layer maps linearly:
        Z -> A:   t_A = s * t_Z,   s = Im h_l(Z + ih) / h, the complex step of the activation
        A -> Z:   t_Z = t_A @ W.T
        Z[L] -> J:  Im J / h = sum(t_Z[L] * G),  G[n, k] = Im J(Z[L] + ih e_nk) / h

So the clean forward runs once; the slopes s are complex steps of the model's activations at
the clean pre-activations, G is the complex step of model.loss_from_output in each output
entry (softmax and the losses evaluated on complex input, one call per entry); and a stack of
tangents is carried from layer l to the output by batched matrix products.

One tangent per unit, not per entry. Rows (samples) never mix before the loss, and every map
above is linear in the tangent, so the step of W[l][j, i] is, row by row, A[l-1][n, i] times
the step of Z[l][n, j] alone; and the step iH in Z[l][:, j] in every row at once gives each
row's step, d[j, n] = sum_k t_Z[L][n, k] G[n, k]. Hence

    Im J(W[l] + iH e_ji) / H = sum_n A[l-1][n, i] d[j, n],    Im J(b[l] + iH e_j) / H = sum_n d[j, n]

which is the per-entry complex step summed in another order (tests compare the two): n_l
tangents per layer instead of n_l (n_{l-1} + 1), about 100 times less work at 256 units wide.
An L2 penalty (DESIGN section 2a) is a sum of one term per entry, so its complex step is taken
entry by entry and added.
No derivative formula of the model is used. Branches are decided on the clean
pre-activations, so an exact zero of the clean forward is seen as exactly zero. Carrying the
imaginary part as a real tangent is what makes this fast: numpy's complex exp and tanh cost
30 to 50 times a real multiply per element of the stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import conventions, model

__all__ = ["CSResult", "carry", "gradients", "gradients_by_layer", "gradients_with_flags", "output_gradient", "slopes"]

H = 2.0**-100  # a power of two: Im/H is exact, and H^2 vanishes against any O(1) value
CHUNK_BYTES = 8 * 2**20  # one stack array; measured fastest (temporaries stay in the heap)


class CSResult(NamedTuple):
    """Loss, gradients and kink flags ([(W-shaped bool, b-shaped bool), ...]): True where a
    relu/leaky_relu pre-activation that the entry moves is exactly 0."""

    loss: float
    grads: list
    kink: list


class _Net(NamedTuple):
    """The clean forward and its complex steps, 1-based: Z[l], slope[l], zero[l]."""

    params: list
    Z: list
    A: list
    slope: list  # Im h_l(Z[l] + iH) / H for hidden layers
    zero: list  # Z[l] == 0 for kinked layers with an exact zero, else None
    G: np.ndarray  # Im J(Z[L] + iH e_nk) / H


def gradients(params, X, T, spec):
    """(J, [(dJ/dW1, dJ/db1), ...]) by the complex step."""
    result = gradients_with_flags(params, X, T, spec)
    return result.loss, result.grads


def gradients_with_flags(params, X, T, spec) -> CSResult:
    """Complex-step gradients and kink flags (see the module docstring)."""
    J, net = _clean(params, X, T, spec)
    grads, kinks = [], []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for l in range(1, len(params) + 1):
            g, k = _layer(net, l)
            grads.append(g)
            kinks.append(k)
    return CSResult(J, _with_penalty_step(grads, params, spec, len(X)), kinks)


def gradients_by_layer(params, X, T, spec) -> tuple[float, Sequence]:
    """(J, grads) with grads a sequence that computes a layer's (dW, db) when it is asked for,
    keeping only the last: what comparing with another reference a layer at a time needs, at
    the memory of one layer's gradients instead of all of them (the same values as
    gradients_with_flags)."""
    J, net = _clean(params, X, T, spec)
    return J, _Layers(net, list(params), spec, len(X))


def _clean(params, X, T, spec):
    """(J, _Net): the clean forward, the slopes and the output gradient every layer uses."""
    if "softmax" in spec.activations[:-1]:
        raise ValueError("softmax is an output-layer activation only")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        Z, A = model.forward(params, X, spec)
        J = float(model.loss_from_output(Z[-1], A[-1], T, spec) + model.penalty(params, spec, len(X)))
        L, acts = len(params), [model.activation(a) for a in spec.activations]
        zero = [None] + [Z[l] == 0 if acts[l - 1].kink and np.any(Z[l] == 0) else None for l in range(1, L + 1)]
        return J, _Net(list(params), Z, A, slopes(Z, spec), zero, output_gradient(Z[L], T, spec))


class _Layers(Sequence):
    """[(dW, db), ...] of gradients_by_layer: layer l computed on access, the last one kept.
    Its dW is a `Product`: rows are computed when asked for, so comparing a layer block by
    block never holds the whole layer's gradient."""

    def __init__(self, net, params, spec, batch):
        self.net, self.params, self.spec, self.batch = net, params, spec, batch
        self._at: int | None = None
        self._value = None

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, l):
        if isinstance(l, slice):
            return [self[i] for i in range(*l.indices(len(self)))]
        if not -len(self) <= l < len(self):
            raise IndexError(l)
        l %= len(self)
        if self._at != l:
            self._value = None  # the previous layer's arrays go before the next are made
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                d, _ = _unit_steps(self.net, l + 1)
                W, b = self.params[l]
                step = _penalty_step(self.spec, self.batch)
                db = d.sum(axis=1)
                if step is not None and model.convention(self.spec).l2_bias:
                    db = db + step(b)
                self._value = (Product(d, self.net.A[l], W, step), db)
            self._at = l
        return self._value


class Product:
    """A layer's dW = d @ inputs (plus the L2 penalty's complex step of W, when there is one),
    computed a block of rows at a time: `p[rows]` for a slice of rows; anything else, and
    np.asarray(p), computes the whole array."""

    def __init__(self, d, inputs, W, step=None):
        self.d, self.inputs, self.W, self.step = d, inputs, W, step
        self.shape = (d.shape[0], inputs.shape[1])
        self.ndim, self.dtype = 2, np.result_type(d, inputs)

    def __getitem__(self, key):
        if not isinstance(key, slice):
            return self.whole()[key]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            out = self.d[key] @ self.inputs
            if self.step is not None:
                out += self.step(self.W[key])
        return out

    def whole(self):
        return self[:]

    def __array__(self, dtype=None, copy=None):
        out = self.whole()
        return out if dtype is None else out.astype(dtype)


def _with_penalty_step(grads, params, spec, batch):
    """grads plus the complex step of the L2 penalty, entry by entry (see _penalty_step)."""
    step = _penalty_step(spec, batch)
    if step is None:
        return grads
    bias = model.convention(spec).l2_bias
    return [(dW + step(W), db + (step(b) if bias else 0.0)) for (dW, db), (W, b) in zip(grads, params)]


def _penalty_step(spec, batch):
    """The complex step of the L2 penalty as a function of a weight array, or None without
    one: the penalty is a sum of one term per entry, c w^2, so Im c (w + iH)^2 / H is that
    entry's derivative (2 c w, exact)."""
    conv = model.convention(spec)
    if not conv.l2:
        return None
    c = conventions.l2_coef(conv, batch)

    def step(v):
        return np.imag(c * (v + 1j * H) ** 2) / H

    return step


def slopes(Z, spec):
    """[None, s_1, ..., s_{L-1}]: s_l = Im h_l(Z[l] + iH) / H, the complex step of each hidden
    activation at the clean pre-activations (Z[0] and Z[L] need none)."""
    return [None] + [
        np.imag(model.activation(spec.activations[l - 1]).h(Z[l] + 1j * H)) / H for l in range(1, len(spec.activations))
    ]


def carry(params, slope, l, tZ, zero=None):
    """Tangents of Z[l], a stack (E, B, n_l), carried to Z[L]: t_Z[m+1] = (s_m * t_Z[m]) W[m+1]^T.

    With `zero` (per layer, Z[m] == 0 at kinked units, or None), also (E, B) flags: whether the
    tangent moves a kinked pre-activation sitting exactly at 0 in Z[l..L]. The stack `tZ` is
    scaled in place (it is the caller's scratch: no stack-sized array is made per layer)."""
    L = len(params)
    touch = None if zero is None else np.zeros(tZ.shape[:2], bool)
    for m in range(l, L):
        if zero is not None and zero[m] is not None:
            touch |= _touches(zero[m], tZ)
        W = params[m][0]
        np.multiply(tZ, slope[m], out=tZ)
        tZ = (tZ.reshape(-1, W.shape[1]) @ W.T).reshape(tZ.shape[0], -1, W.shape[0])
    if zero is not None and zero[L] is not None:
        touch |= _touches(zero[L], tZ)
    return tZ, touch


def output_gradient(ZL, T, spec):
    """G = dJ/dZ[L]: one complex step of model.loss_from_output per output entry."""
    h_out = model.activation(spec.activations[-1]).h
    Zc, G = ZL.astype(complex), np.empty_like(ZL)
    for n, k in np.ndindex(ZL.shape):
        Zc[n, k] += 1j * H
        G[n, k] = np.imag(model.loss_from_output(Zc, h_out(Zc), T, spec)) / H
        Zc[n, k] = ZL[n, k]
    return G


def _layer(net, l):
    """((dW, db), (kink_W, kink_b)) for layer l, from one tangent per unit (see _units):
    Im J(W[l] + iH e_ji) / H = sum_n A[l-1][n, i] d[j, n], the step of Z[l][n, j] alone."""
    d, touch = _unit_steps(net, l)
    inputs = net.A[l - 1]
    if touch.any():
        moved = (touch.astype(float) @ (inputs != 0)) > 0  # a row where a_i moves a zero it reaches
    else:  # no zero of a kink reached: the (n_l, n_{l-1}) product would be all False
        moved = np.zeros((d.shape[0], inputs.shape[1]), bool)
    return (d @ inputs, d.sum(axis=1)), (moved, touch.any(axis=1))


def _unit_steps(net, l):
    """(d, touch) of every unit of layer l, each (n_l, B): see _units."""
    W, _ = net.params[l - 1]
    n_out, B = W.shape[0], len(net.A[0])
    d, touch = np.empty((n_out, B)), np.empty((n_out, B), bool)
    width = max(Wm.shape[0] for Wm, _ in net.params[l - 1 :])
    size = max(1, CHUNK_BYTES // (8 * B * width))
    # one scratch stack for every chunk: fresh 8 MB arrays cost a page fault per 4 KB each time
    scratch = np.empty((min(size, n_out), B, net.params[l][0].shape[0])) if l < len(net.params) else None
    for s in range(0, n_out, size):
        j = slice(s, min(s + size, n_out))
        d[j], touch[j] = _units(net, l, j, scratch)
    return d, touch


def _units(net, l, j, scratch=None):
    """(d, touch) for the units j of layer l, each (E, B): d[e, n] = Im J / H for the step iH
    of Z[l][n, j_e] alone, and whether that step moves a kinked pre-activation sitting at 0.
    Rows never mix before the loss, so one tangent per unit (Z[l][:, j_e] + iH in every row)
    gives every row's step at once; the tangent t = Im / H is carried forward and each row
    contracted with G. `j` is a slice of units; `scratch`, when given, holds the stack."""
    zero = net.zero[l]
    E = len(range(*j.indices(net.Z[l].shape[1])))
    touch = zero[:, j].T.copy() if zero is not None else np.zeros((E, len(net.A[0])), bool)
    if l == len(net.params):
        return net.G[:, j].T, touch
    # the step of Z[l][:, j] is e_j in every row; its tangent at Z[l+1] is s_l[:, j] W[l+1][:, j]
    out = scratch[:E] if scratch is not None else None
    tZ = np.multiply(net.slope[l][:, j].T[:, :, None], net.params[l][0][:, j].T[:, None, :], out=out)
    tZ, moved = carry(net.params, net.slope, l + 1, tZ, net.zero)
    return np.einsum("ebk,bk->eb", tZ, net.G), touch | moved


def _touches(zero, tZ):
    """Per unit and row: a pre-activation exactly at 0 that the tangent moves."""
    return (zero & (tZ != 0)).any(axis=2)
