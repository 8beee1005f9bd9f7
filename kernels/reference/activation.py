"""Reference activation kernels: relu, leaky relu, tanh, sigmoid, softplus, log-sigmoid, erf.

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
