"""Networks shared by the finite-difference and complex-step tests: random valid cases, the
worked example, a network built to sit on relu kinks, and a flag comparison."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus")


LOSSES = ("sse", "half_sse", "mse", "bce", "softmax_ce")


class Spec(NamedTuple):
    sizes: tuple
    activations: tuple
    loss: str


def random_case(rng):
    """A network of depth 1..5, widths 1..9, batch 1..9, with a valid output/loss pair."""
    loss = str(rng.choice(LOSSES))
    depth = int(rng.integers(1, 6))
    sizes = tuple(int(n) for n in rng.integers(1, 10, size=depth + 1))
    acts = [str(rng.choice(HIDDEN)) for _ in range(depth)]
    if loss == "bce":
        acts[-1] = "sigmoid"
    elif loss == "softmax_ce" or rng.random() < 0.2:
        acts[-1] = "softmax"
    gain = rng.choice([0.5, 1.0, 2.0, 3.0])
    params = [(rng.normal(size=(m, n)) * gain / np.sqrt(n), 0.5 * rng.normal(size=m)) for n, m in zip(sizes, sizes[1:])]
    B = int(rng.integers(1, 10))
    X = rng.normal(size=(B, sizes[0]))
    if loss == "bce":
        T = rng.random((B, sizes[-1]))
    elif loss == "softmax_ce":
        T = rng.random((B, sizes[-1]))
        T /= T.sum(axis=1, keepdims=True)
    else:
        T = rng.normal(size=(B, sizes[-1]))
    return params, X, T, Spec(sizes, tuple(acts), loss)


WORKED = (
    [(np.ones((2, 2)), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))],
    np.array([[-2.0, -1.0]]),
    np.array([[1.0]]),
    Spec((2, 2, 1), ("sigmoid", "sigmoid"), "mse"),
)


KINKED = (
    [
        (np.array([[1.0, 1, 1], [1, -1, 0], [1, 1, 1], [2, 0, 1]]), np.zeros(4)),
        (np.array([[1.0, 0, -1, 0], [1, 1, 1, 1]]), np.zeros(2)),
        (np.array([[1.0, 1]]), np.zeros(1)),
    ],
    np.array([[0.0, 0, 1], [1, 2, 0]]),
    np.array([[1.0], [2.0]]),
    Spec((3, 4, 2, 1), ("relu", "relu", "identity"), "half_sse"),
)


KINKED_FLAGS = [  # the entries that move a pre-activation sitting at 0
    (np.array([[1, 1, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]], bool), np.array([1, 1, 1, 0], bool)),
    (np.array([[1, 0, 1, 1], [0, 0, 0, 0]], bool), np.array([1, 0], bool)),
    (np.zeros((1, 2), bool), np.zeros(1, bool)),
]


def integer_case(rng):
    """A relu/leaky_relu network with small integer weights, inputs and biases, many of them 0,
    so that many pre-activations are exactly 0 and all arithmetic is exact."""
    depth = int(rng.integers(1, 5))
    sizes = tuple(int(n) for n in rng.integers(1, 6, size=depth + 1))
    acts = tuple(str(rng.choice(["relu", "leaky_relu"])) for _ in range(depth - 1))
    acts += (str(rng.choice(["identity", "relu", "leaky_relu"])),)
    params = [
        (rng.integers(-2, 3, size=(m, n)).astype(float), rng.integers(-1, 2, size=m).astype(float))
        for n, m in zip(sizes, sizes[1:])
    ]
    B = int(rng.integers(1, 5))
    X = rng.integers(-1, 3, size=(B, sizes[0])).astype(float)
    T = rng.integers(-2, 3, size=(B, sizes[-1])).astype(float)
    return params, X, T, Spec(sizes, acts, str(rng.choice(["sse", "half_sse", "mse"])))


def assert_flags(got, want):
    for (gw, gb), (ww, wb) in zip(got, want):
        np.testing.assert_array_equal(gw, ww)
        np.testing.assert_array_equal(gb, wb)
