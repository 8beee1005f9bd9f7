"""Reference batch-normalization kernels: training forward, eval forward, first-order backward.

x is (N, C) or (N, C, H, W); statistics are per channel, over every axis but 1. The
variance is the biased one (divide by the count), as the normalization itself uses it.
weight and bias, each of shape (C,), may be None (no affine transform).
"""

from __future__ import annotations

from ._util import array_module
from .activation import activation, activation_grad

__all__ = ["batch_norm_act_backward", "batch_norm_act_train", "batch_norm_backward",
           "batch_norm_eval", "batch_norm_train"]


def _reduce_axes(x) -> tuple:
    """Every axis but the channel axis 1."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(values, ndim: int):
    """A (C,) vector shaped to broadcast along axis 1 of an ndim-dimensional array."""
    return values.reshape((1, -1) + (1,) * (ndim - 2))


def _affine(xhat, weight, bias):
    y = xhat if weight is None else xhat * _per_channel(weight, xhat.ndim)
    return y if bias is None else y + _per_channel(bias, xhat.ndim)


def batch_norm_train(x, weight, bias, eps: float):
    """(y, mean, var): y = (x - mean) / sqrt(var + eps) * weight + bias with batch statistics."""
    xp = array_module(x)
    axes = _reduce_axes(x)
    mean = x.mean(axis=axes)
    centered = x - _per_channel(mean, x.ndim)
    var = (centered * centered).mean(axis=axes)
    xhat = centered / xp.sqrt(_per_channel(var, x.ndim) + eps)
    return _affine(xhat, weight, bias), mean, var


def batch_norm_eval(x, mean, var, weight, bias, eps: float):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with given (running) statistics."""
    xp = array_module(x)
    invstd = 1 / xp.sqrt(var + eps)
    xhat = (x - _per_channel(mean, x.ndim)) * _per_channel(invstd, x.ndim)
    return _affine(xhat, weight, bias)


def batch_norm_backward(gy, x, weight, mean, var, eps: float):
    """(gx, gweight, gbias) of training-mode batch norm; gweight, gbias are None without weight.

    With xhat = (x - mean) * invstd and g = gy * weight, the statistics' own dependence on x
    gives gx = invstd * (g - mean(g) - xhat * mean(g * xhat)), means over the reduced axes.
    """
    xp = array_module(x)
    axes = _reduce_axes(x)
    invstd = _per_channel(1 / xp.sqrt(var + eps), x.ndim)
    xhat = (x - _per_channel(mean, x.ndim)) * invstd
    g = gy if weight is None else gy * _per_channel(weight, x.ndim)
    gx = invstd * (
        g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)
    )
    if weight is None:
        return gx, None, None
    return gx, (gy * xhat).sum(axis=axes), gy.sum(axis=axes)


def batch_norm_act_train(x, weight, bias, eps: float, kind: str, slope: float = 0.0):
    """(act(y), mean, var) for (y, mean, var) = batch_norm_train(x, ...): batch norm followed
    by an activation (kind as in activation), one op so that fast kernels can fuse them."""
    y, mean, var = batch_norm_train(x, weight, bias, eps)
    return activation(y, kind, slope), mean, var


def batch_norm_act_backward(gy, y, x, weight, mean, var, eps: float, kind: str,
                            slope: float = 0.0):
    """(gx, gweight, gbias) of act(batch_norm(x)) given its output y: batch_norm_backward of
    gy taken back through the activation."""
    return batch_norm_backward(activation_grad(gy, y, kind, slope), x, weight, mean, var, eps)
