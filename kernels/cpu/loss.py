"""Loss kernels for the CPU: the stable binary cross-entropy from logits in one Numba loop
(the reference makes five NumPy passes)."""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._util import by_size, fresh_like, serial_and_parallel

__all__ = ["bce_with_logits"]


def _bce_loop(x, target, zero, out):
    # zero has x's dtype: a literal 0 would make Numba compute float32 in float64
    for i in prange(x.size):
        z = x[i]
        # max(z, 0) - z t + log1p(exp(-|z|)): exp never overflows
        out[i] = max(z, zero) - z * target[i] + math.log1p(math.exp(-abs(z)))


_bce_loops = serial_and_parallel(_bce_loop)


def bce_with_logits(x, target):
    """Elementwise -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] from logits x
    (target broadcast to x's shape)."""
    dtype = np.result_type(x, target)
    x = np.ascontiguousarray(x, dtype=dtype)
    target = np.ascontiguousarray(np.broadcast_to(np.asarray(target, dtype=dtype), x.shape))
    out = fresh_like(x)
    by_size(_bce_loops, x.size)(x.reshape(-1), target.reshape(-1), dtype.type(0), out.reshape(-1))
    return out
