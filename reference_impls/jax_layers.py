"""The JAX twins of reference_impls/layers.py: each layer's forward written again in jax.numpy
and differentiated by jax.vjp, to cross-check the numpy layer references (never used to judge
a user). Independent of the numpy module: it imports neither it nor the numpy model.

    pair_grads(name, x, params, dout) -> [dx, *dparams]     (the vjp of the forward at dout)
    loss_grads(name, x, y) -> (L, dx)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

LEAKY_SLOPE = 0.01
MARGIN = 1.0


def _sigmoid(z):
    """e^{-log(1 + e^{-z})}: its vjp stays accurate when saturated, where jax.nn.sigmoid's
    y (1 - y) loses every digit of 1 - y (x = 30 gives a relative error of 1e-3)."""
    return jnp.exp(-jnp.logaddexp(0.0, -z))


_ACTIVATIONS = {
    "identity": lambda z: z,
    "sigmoid": _sigmoid,
    "tanh": lambda z: 2 * _sigmoid(2 * z) - 1,  # jnp.tanh's vjp is 1 - y^2: the same loss
    "relu": lambda z: jnp.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: jnp.where(z > 0, z, LEAKY_SLOPE * z),
    "softplus": lambda z: jnp.logaddexp(z, 0.0),
}


def _forward(name):
    if name == "affine":
        return lambda x, w, b: x.reshape(x.shape[0], -1) @ w + b
    return _ACTIVATIONS[name]


def pair_grads(name, x, params, dout):
    """[dx, *dparams] as numpy arrays: jax.vjp of the layer's forward, pulled back from dout."""
    args = [jnp.asarray(a, dtype=jnp.float64) for a in (x, *params)]
    _, vjp = jax.vjp(_forward(name), *args)
    return [np.asarray(g) for g in vjp(jnp.asarray(dout, dtype=jnp.float64))]


def _softmax_loss(x, y):
    logp = jax.nn.log_softmax(x, axis=1)
    return -jnp.take_along_axis(logp, y[:, None], axis=1).sum() / x.shape[0]


def _svm_loss(x, y):
    correct = jnp.take_along_axis(x, y[:, None], axis=1)
    m = x - correct + MARGIN
    m = jnp.where(jax.nn.one_hot(y, x.shape[1]) > 0, 0.0, m)
    return jnp.maximum(m, 0.0).sum() / x.shape[0]


_LOSSES = {"softmax_loss": _softmax_loss, "svm_loss": _svm_loss}


def loss_grads(name, x, y):
    """(L, dx) of loss layer `name` by jax.value_and_grad."""
    value, dx = jax.value_and_grad(_LOSSES[name])(jnp.asarray(x, dtype=jnp.float64), jnp.asarray(y))
    return float(value), np.asarray(dx)
