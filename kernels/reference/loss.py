"""Reference loss kernels."""

from __future__ import annotations

from ._util import array_module
from .activation import _sigmoid

__all__ = ["bce_with_logits", "bce_with_logits_grad"]


def bce_with_logits(x, target):
    """Elementwise -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] from logits x.

    Written as max(x, 0) - x t + log1p(exp(-|x|)): exp never overflows, so x = +-1000 gives
    the exact limits (0, or |x| for the wrong label) instead of inf or nan.
    """
    xp = array_module(x)
    return xp.maximum(x, 0) - x * target + xp.log1p(xp.exp(-xp.abs(x)))


def bce_with_logits_grad(x, target, g):
    """dL/dx of L = g-weighted bce_with_logits: g (sigmoid(x) - t), with target and g
    broadcast to x's shape (a reduced loss's gradient arrives as one number)."""
    return g * (_sigmoid(x) - target)
