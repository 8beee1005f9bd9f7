"""CUDA loss kernels: binary cross-entropy from logits, elementwise.

Same name, signature and semantics as kernels/reference/loss.py: the stable form
max(x, 0) - x*t + log1p(exp(-|x|)), finite at x = +-1000, in one pass.
"""

from __future__ import annotations

import math

from numba import cuda

from ..reference._util import array_module
from ._launch import elementwise_grid, launch

__all__ = ["bce_with_logits"]


@cuda.jit(cache=True)
def _bce_with_logits_kernel(x, target, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        v = float(x[i])
        out[i] = max(v, 0.0) - v * target[i] + math.log1p(math.exp(-abs(v)))


def bce_with_logits(x, target):
    """Elementwise -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] from logits x; target
    may be anything that broadcasts to x's shape (a number too)."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    target = xp.asarray(target, dtype=x.dtype)
    if target.shape != x.shape:
        target = xp.broadcast_to(target, x.shape)
    target = xp.ascontiguousarray(target)  # a broadcast view becomes a copy
    out = xp.empty_like(x)
    launch(
        _bce_with_logits_kernel, elementwise_grid(x.size), "bce_with_logits",
        x.reshape(-1), target.reshape(-1), out.reshape(-1),
    )
    return out
