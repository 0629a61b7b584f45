"""The delta rule of the notes, batched over the samples of X.

    output units:  delta_k = dJ/dy_k * h'(a_k)
    hidden units:  delta_j = h'(a_j) * sum_k w_kj delta_k
    weights:       dJ/dw_ji = sum_n delta_j z_i,   dJ/db_j = sum_n delta_j

    L2 penalty:    dJ/dW += 2 l2 c W [/ B]   (and on b when the convention puts b in it)

The notes' a_j is Z[l] here and their z_i is A[l-1]. Rows of delta are samples, so the sum over
the batch of per-sample gradients (E = sum_n E_n) is the matrix product delta.T @ A[l-1].
"""

from __future__ import annotations

import numpy as np

from . import model


def output_delta(Z, A, T, spec):
    """delta at the output layer, dJ/dZ[L]."""
    out = spec.activations[-1]
    if model.fused(spec):
        return model.fused_delta(A[-1], T, spec)
    dJdY = model.d_loss(A[-1], T, spec)
    if out == "softmax":
        return model.softmax_vjp(A[-1], dJdY)
    return dJdY * model.activation(out).dh(Z[-1])


def h_prime(spec, l, Zl):
    """h'_l(Z[l]), the model's derivative of layer l's activation (l is 1-based)."""
    return model.activation(spec.activations[l - 1]).dh(Zl)


def backward(params, Z, A, delta, spec, dh=None):
    """Propagate delta = dJ/dZ[L] back through the layers; return [(dW1, db1), ...].

    `dh(spec, l, Z[l])` is the hidden layers' h' (default `h_prime`): the diagnosis simulates a
    known bug (h' missing, h' taken at A) by passing another one, never by a copy of this loop."""
    dh = dh or h_prime
    grads = [None] * len(params)
    for l in range(len(params), 0, -1):
        W, _ = params[l - 1]
        grads[l - 1] = (delta.T @ A[l - 1], delta.sum(axis=0))
        if l > 1:
            delta = (delta @ W) * dh(spec, l - 1, Z[l - 1])
    return grads


def gradients(params, X, T, spec):
    """(J, [(dJ/dW1, dJ/db1), ...]) by the delta rule."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        Z, A = model.forward(params, X, spec)
        J = model.loss_from_output(Z[-1], A[-1], T, spec) + model.penalty(params, spec, len(X))
        grads = backward(params, Z, A, output_delta(Z, A, T, spec), spec)
        return J, model.with_penalty(grads, params, spec, len(X))
