"""Arrays made a block of rows at a time where they are judged, never whole unless asked for.

A big layer's tolerance, kink centre and kink radius are each as big as its weights, but each
is a product of two thin matrices (samples by units, stacked), e_W = k u M^T N: held as the
thin factors, rows of it cost a small product where a block is judged (part), and a
check of an 8 M parameter network holds no tolerance-sized array at all.

Anything else done to a lazy array (arithmetic, np.asarray, an attribute of ndarray) makes the
whole array first, so code that was written for arrays still gets the same numbers.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

LAZY_MIN = 1 << 18  # entries from which a tolerance is kept lazy: below it, plain arrays are cheaper


class Lazy(NDArrayOperatorsMixin):
    """Base: `rows(key)` gives rows `key` (a slice) of the array, whose shape is `shape`."""

    shape: tuple
    dtype = np.dtype(np.float64)

    def rows(self, key: slice) -> np.ndarray:
        raise NotImplementedError

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        return self.rows(key) if isinstance(key, slice) else self.rows(slice(None))[key]

    def __array__(self, dtype=None, copy=None):
        out = self.rows(slice(None))
        return out if dtype is None else out.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(np.asarray(x) if isinstance(x, Lazy) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getattr__(self, name):  # ndarray's methods (.ravel(), .max(), .T ...) on the whole array
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)


class Parts(Lazy):
    """A sum of arrays of one shape (a tolerance in two dtypes' terms), added a block at a time."""

    def __init__(self, parts):
        self.parts = tuple(parts)
        self.shape = np.shape(self.parts[0])

    def rows(self, key):
        return sum(part(x, key, self.shape) for x in self.parts)


class LowRank(Lazy):
    """scale * left^T @ right + offset: left is (n, rows), right (n, columns), n small."""

    def __init__(self, left, right, scale=1.0, offset=0.0):
        self.left, self.right, self.scale, self.offset = left, right, scale, offset
        self.shape = (left.shape[1], right.shape[1])

    def rows(self, key):
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            out = self.left[:, key].T @ self.right
            if self.scale != 1.0:
                out *= self.scale
            if self.offset:
                out += self.offset
        return out


class Scaled(Lazy):
    """scale * a, or scale * |a| with `absolute` (the L2 penalty's gradient and its rounding)."""

    def __init__(self, a, scale, absolute=False):
        self.a, self.scale, self.absolute = a, scale, absolute
        self.shape = np.shape(a)

    def rows(self, key):
        with np.errstate(over="ignore", invalid="ignore"):
            block = self.a[key]
            return self.scale * (np.abs(block) if self.absolute else block)


class Combined(Lazy):
    """a + scale * b (a step W - lr dW)."""

    def __init__(self, a, b, scale):
        self.a, self.b, self.scale = a, b, scale
        self.shape = np.shape(a)

    def rows(self, key):
        with np.errstate(over="ignore", invalid="ignore"):
            return self.a[key] + self.scale * self.b[key]


def big(size: int) -> bool:
    """Whether an array of `size` entries is kept lazy (LAZY_MIN or more)."""
    return size >= LAZY_MIN


def product(left, right, scale=1.0, offset=0.0):
    """left^T @ right scaled and offset, lazy when it is big."""
    if big(left.shape[1] * right.shape[1]):
        return LowRank(left, right, scale, offset)
    out = left.T @ right
    out *= scale
    out += offset
    return out


def part(a, rows, shape):
    """Rows `rows` of `a` broadcast to `shape` (None stays None; a lazy array makes just those)."""
    if a is None:
        return None
    if isinstance(a, Lazy):
        return a.rows(rows)
    return np.broadcast_to(a, shape)[rows]
