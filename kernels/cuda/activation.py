"""CUDA activation kernels: bias + activation fused in one pass, and the gradient from y.

Same names, signatures and semantics as kernels/reference/activation.py. A layer's epilogue
`act(x + bias)` is one read and one write of x instead of three passes; its gradient reads
only the output y and gy (see the reference module for why y suffices).

The kind is passed to the kernel as a small integer; every thread of a launch takes the same
branch, so the switch costs nothing on the GPU. Arithmetic is done in float64 inside the
kernel (scalars promote), and rounded once when stored.
"""

from __future__ import annotations

import math

from numba import cuda

from ..reference._util import array_module
from ..reference.activation import ACTIVATION_KINDS
from ..reference.linalg import compose_linear_act, compose_linear_grads, matmul
from ._launch import elementwise_grid, launch

__all__ = [
    "activation", "activation_grad", "activation_grad_bias", "bias_activation", "linear_act",
    "linear_grads",
]

NONE, RELU, LEAKY_RELU, TANH, SIGMOID = 0, 1, 2, 3, 4
_CODES = {"none": NONE, "relu": RELU, "leaky_relu": LEAKY_RELU, "tanh": TANH, "sigmoid": SIGMOID}


def _code(kind: str, op: str) -> int:
    if kind not in _CODES:
        raise ValueError(
            f"{op}: unknown activation kind {kind!r}; expected one of {ACTIVATION_KINDS}"
        )
    return _CODES[kind]


@cuda.jit(device=True)
def _activate(v, kind, slope):
    if kind == RELU:
        return v if v > 0 else 0.0
    if kind == LEAKY_RELU:
        return v if v > 0 else v * slope
    if kind == TANH:
        return math.tanh(v)
    if kind == SIGMOID:
        # exp of a non-positive number never overflows
        if v >= 0:
            return 1.0 / (1.0 + math.exp(-v))
        e = math.exp(v)
        return e / (1.0 + e)
    return v


@cuda.jit(cache=True)
def _bias_activation_kernel(x, bias, channels, inner, kind, slope, out):
    """out = act(x + bias[channel]) on flat arrays; channel = (i // inner) % channels.
    channels == 0 means no bias."""
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        v = float(x[i])  # float64 from here on
        if channels > 0:
            v += bias[(i // inner) % channels]
        out[i] = _activate(v, kind, slope)


@cuda.jit(cache=True)
def _activation_grad_kernel(gy, y, kind, slope, gx):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, gy.size, stride):
        g = float(gy[i])
        v = float(y[i])
        if kind == RELU:
            g = g if v > 0 else 0.0
        elif kind == LEAKY_RELU:
            g = g if v > 0 else g * slope
        elif kind == TANH:
            g = g * (1.0 - v * v)
        elif kind == SIGMOID:
            g = g * v * (1.0 - v)
        gx[i] = g


def _run_bias_activation(x, bias, kind: str, slope: float, op: str):
    xp = array_module(x)
    code = _code(kind, op)
    x = xp.ascontiguousarray(x)
    out = xp.empty_like(x)
    if bias is None:
        channels, inner, bias_flat = 0, 1, xp.zeros(1, dtype=x.dtype)
    else:
        channels = x.shape[1]
        inner = x.size // (x.shape[0] * channels) if x.size else 1
        bias_flat = xp.ascontiguousarray(bias).reshape(-1)
    launch(
        _bias_activation_kernel, elementwise_grid(x.size), op,
        x.reshape(-1), bias_flat, channels, inner, code, float(slope), out.reshape(-1),
    )
    return out


def activation(x, kind: str, slope: float = 0.0):
    """y = act(x) for kind in relu, leaky_relu, tanh, sigmoid, none."""
    return _run_bias_activation(x, None, kind, slope, "activation")


def bias_activation(x, bias, kind: str, slope: float = 0.0):
    """act(x + bias), bias of shape (C,) along axis 1 of x ((N, C) or (N, C, H, W))."""
    if bias.shape != (x.shape[1],):
        raise ValueError(
            f"bias_activation: bias has shape {tuple(bias.shape)}, expected ({x.shape[1]},) "
            f"for input {tuple(x.shape)}"
        )
    return _run_bias_activation(x, bias, kind, slope, "bias_activation")


def activation_grad(gy, y, kind: str, slope: float = 0.0):
    """dL/dx from dL/dy and the output y = act(x) (slope >= 0 for leaky relu)."""
    xp = array_module(gy)
    code = _code(kind, "activation_grad")
    gy, y = xp.ascontiguousarray(gy), xp.ascontiguousarray(y)
    gx = xp.empty_like(gy)
    launch(
        _activation_grad_kernel, elementwise_grid(gy.size), "activation_grad",
        gy.reshape(-1), y.reshape(-1), code, float(slope), gx.reshape(-1),
    )
    return gx


def activation_grad_bias(gy, y, kind: str, slope: float = 0.0):
    """(gx, gbias): this device's activation_grad, then its sum over every axis but 1."""
    gx = activation_grad(gy, y, kind, slope)
    return gx, gx.sum(axis=(0,) + tuple(range(2, gx.ndim)))



def linear_grads(g, y, x, w, kind: str, slope: float, need_input: bool, need_weight: bool,
                 need_bias: bool = True):
    """(gx, gw, gb) of y = act(x @ w.T + b): this device's activation gradient, then the
    two products on cuBLAS (kernels/reference/linalg.py has the definition)."""
    return compose_linear_grads(g, y, x, w, kind, slope, need_input, need_weight, need_bias,
                                matmul, activation_grad, activation_grad_bias)


def linear_act(x, w, bias, kind: str, slope: float = 0.0):
    """act(x @ w.T + bias), bias (out,) or None: the product on cuBLAS, then this device's
    fused bias + activation (kernels/reference/linalg.py has the definition)."""
    return compose_linear_act(x, w, bias, kind, slope, matmul, bias_activation, activation)
