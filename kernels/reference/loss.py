"""Reference loss kernels."""

from __future__ import annotations

from ._util import array_module

__all__ = ["bce_with_logits"]


def bce_with_logits(x, target):
    """Elementwise -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] from logits x.

    Written as max(x, 0) - x t + log1p(exp(-|x|)): exp never overflows, so x = +-1000 gives
    the exact limits (0, or |x| for the wrong label) instead of inf or nan.
    """
    xp = array_module(x)
    return xp.maximum(x, 0) - x * target + xp.log1p(xp.exp(-xp.abs(x)))
