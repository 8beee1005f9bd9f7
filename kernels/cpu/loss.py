"""Loss kernels for the CPU: the stable binary cross-entropy from logits and its gradient,
each in one Numba loop (the reference makes five and three NumPy passes)."""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._math import sigmoid
from ._util import by_size, fresh, serial_and_parallel

__all__ = ["bce_with_logits", "bce_with_logits_grad"]


def _bce_loop(x, target, zero, out):
    # zero has x's dtype: a literal 0 would make Numba compute float32 in float64
    for i in prange(x.size):
        z = x[i]
        # max(z, 0) - z t + log1p(exp(-|z|)): exp never overflows
        out[i] = max(z, zero) - z * target[i] + math.log1p(math.exp(-abs(z)))


_bce_loops = serial_and_parallel(_bce_loop)


def _flat(a, shape: tuple, dtype) -> np.ndarray:
    """a as a C-contiguous 1-D array of dtype, broadcast to shape first when it has another
    (np.broadcast_to costs ~5 us even when there is nothing to broadcast)."""
    a = np.asarray(a, dtype=dtype)
    if a.shape != shape:
        a = np.broadcast_to(a, shape)
    return np.ascontiguousarray(a).reshape(-1)


def bce_with_logits(x, target):
    """Elementwise -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] from logits x
    (target broadcast to x's shape)."""
    dtype = np.result_type(x, target)
    shape = np.shape(x)
    out = fresh(shape, dtype)
    by_size(_bce_loops, out.size)(_flat(x, shape, dtype), _flat(target, shape, dtype),
                                  dtype.type(0), out.reshape(-1))
    return out


def _bce_grad_loop(x, target, g, g_step, out):
    # g_step 0: one upstream gradient for every element (a mean's or a sum's)
    for i in prange(x.size):
        out[i] = g[i * g_step] * (sigmoid(x[i]) - target[i])


_bce_grad_loops = serial_and_parallel(_bce_grad_loop)


def bce_with_logits_grad(x, target, g):
    """g (sigmoid(x) - t): the gradient of bce_with_logits from dL/dloss = g (target and g
    broadcast to x's shape). The sigmoid is activation's, and the product is taken in the
    order the graph of the composed ops took it, so the bits are those of
    g * (sigmoid(x) - t) written with Tensor ops."""
    dtype = np.result_type(x, target, g)
    shape = np.shape(x)
    g = np.asarray(g, dtype=dtype)
    single = g.size == 1
    out = fresh(shape, dtype)
    by_size(_bce_grad_loops, out.size)(
        _flat(x, shape, dtype), _flat(target, shape, dtype),
        g.reshape(1) if single else _flat(g, shape, dtype), 0 if single else 1,
        out.reshape(-1))
    return out
