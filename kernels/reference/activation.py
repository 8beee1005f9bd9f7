"""Reference activation kernels: relu, leaky relu, tanh, sigmoid, softplus, log-sigmoid,
erf, and maxout (with the gather and scatter of its gradients).

`activation` and `activation_grad` share one `kind` switch so a layer can fuse its bias and
activation into one pass (`bias_activation`). The gradient is computed from the OUTPUT y:
for relu and leaky relu with slope >= 0 the sign of y is the sign of x, and for tanh and
sigmoid the derivative is a function of y, so a layer need not keep its input alive.
"""

from __future__ import annotations

import math

import numpy as np

from ._util import array_module

__all__ = [
    "activation",
    "activation_grad",
    "activation_grad_bias",
    "bias_activation",
    "erf",
    "log_sigmoid",
    "maxout",
    "maxout_gather",
    "maxout_scatter",
    "softplus",
]

# Not a kernel, so not in __all__: the ops layer imports it to validate `kind` up front.
ACTIVATION_KINDS = ("relu", "leaky_relu", "tanh", "sigmoid", "none")


def _check_kind(kind: str, op: str) -> None:
    if kind not in ACTIVATION_KINDS:
        raise ValueError(
            f"{op}: unknown activation kind {kind!r}; expected one of {ACTIVATION_KINDS}"
        )


def _sigmoid(x):
    # exp(-|x|) never overflows; for x >= 0 sigmoid = 1 / (1 + e), for x < 0 it is e / (1 + e)
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def activation(x, kind: str, slope: float = 0.0):
    """y = act(x) for kind in ACTIVATION_KINDS; slope is leaky relu's negative slope."""
    _check_kind(kind, "activation")
    xp = array_module(x)
    if kind == "relu":
        return xp.maximum(x, 0)
    if kind == "leaky_relu":
        return xp.where(x > 0, x, x * slope)
    if kind == "tanh":
        return xp.tanh(x)
    if kind == "sigmoid":
        return _sigmoid(x)
    return x.copy()


def activation_grad(gy, y, kind: str, slope: float = 0.0):
    """dL/dx from dL/dy and the output y = act(x) (slope >= 0 for leaky relu)."""
    _check_kind(kind, "activation_grad")
    xp = array_module(gy)
    if kind == "relu":
        return gy * (y > 0)
    if kind == "leaky_relu":
        return xp.where(y > 0, gy, gy * slope)
    if kind == "tanh":
        return gy * (1 - y * y)
    if kind == "sigmoid":
        return gy * y * (1 - y)
    return gy.copy()


def activation_grad_bias(gy, y, kind: str, slope: float = 0.0):
    """(gx, gbias): activation_grad, and its sum over every axis but 1 (the gradient of the
    bias of bias_activation), so that fast kernels can sum while they write gx."""
    gx = activation_grad(gy, y, kind, slope)
    return gx, gx.sum(axis=(0,) + tuple(range(2, gx.ndim)))


def bias_activation(x, bias, kind: str, slope: float = 0.0):
    """act(x + bias), bias of shape (C,) added along axis 1 of x ((N, C) or (N, C, H, W))."""
    per_channel = bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    return activation(x + per_channel, kind, slope)


def softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exp never overflows, and for large
    |x| the correction term vanishes smoothly instead of rounding 1 + exp(x) to inf."""
    xp = array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|))."""
    xp = array_module(x)
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


def erf(x):
    """The error function 2/sqrt(pi) * integral of exp(-t^2) from 0 to x, elementwise
    (exact GELU needs it). NumPy has no vectorised erf, so each element goes through the
    standard library's math.erf: correctly rounded in float64, slow for large arrays; CuPy
    arrays use cupyx's erf."""
    xp = array_module(x)
    if xp is not np:
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=x.dtype)


def maxout(x, pieces: int):
    """Maxout (Goodfellow et al. 2013): x (N, C * pieces) is read as (N, C, pieces), the
    layout of torch's x.view(N, C, pieces) and of Blocks' Maxout brick; returns
    (y, index): y[n, c] = max_k x[n, c, k] and the piece that won (the first on ties)."""
    xp = array_module(x)
    n, width = x.shape
    grouped = x.reshape(n, width // pieces, pieces)
    # a loop over the few pieces, each step on whole (N, C) slices: argmax along a short
    # last axis walks it element by element and is several times slower
    best, index = grouped[:, :, 0].copy(), xp.zeros((n, width // pieces), dtype=xp.int64)
    for k in range(1, pieces):
        better = grouped[:, :, k] > best
        best[better] = grouped[:, :, k][better]
        index[better] = k
    return best, index


def maxout_gather(x, index):
    """y[n, c] = x[n, c * pieces + index[n, c]]: the piece `index` chose, of each group."""
    xp = array_module(x)
    n, channels = index.shape
    pieces = x.shape[1] // channels
    grouped = x.reshape(n, channels, pieces)
    out = xp.zeros((n, channels), dtype=x.dtype)
    for k in range(pieces):
        xp.copyto(out, grouped[:, :, k], where=index == k)
    return out


def maxout_scatter(gy, index, pieces: int):
    """The adjoint of maxout_gather: gy[n, c] placed at piece index[n, c] of group c, zeros
    elsewhere; shape (N, C * pieces)."""
    xp = array_module(gy)
    n, channels = gy.shape
    out = xp.zeros((n, channels, pieces), dtype=gy.dtype)
    for k in range(pieces):
        out[:, :, k] = xp.where(index == k, gy, 0)
    return out.reshape(n, channels * pieces)
