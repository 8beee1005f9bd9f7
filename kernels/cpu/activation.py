"""Activation kernels for the CPU: one fused Numba loop per call.

The reference writes relu or sigmoid as two to four NumPy passes (a temporary per
operation); here each kernel reads its inputs once and writes its output once. That
matters most for small models, where these elementwise passes, not the matrix products,
are most of a step (shared/PERFORMANCE.md: the hand-written NumPy MLP step is 1.7x
PyTorch for that reason). `bias_activation` fuses the layer's bias add too.

The kind is passed to Numba as a small integer (one compiled loop serves every kind), and
each loop exists twice: parallel for large arrays, serial below
_util.PARALLEL_MIN_ELEMENTS, where waking a second thread costs more than it saves. The
gradient of a linear layer's rows goes parallel sooner (_util.ROWS_PARALLEL_MIN_ELEMENTS),
in the blocks of rows that the product before it wrote on each thread.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..reference.activation import ACTIVATION_KINDS
from . import _util
from ._math import sigmoid, tanh
from .blas import add_partials
from ._util import (
    as_layout_of,
    block_of,
    by_size,
    fresh_like,
    is_channels_last,
    like_layout,
    memory_order,
    row_blocks,
    serial_and_parallel,
)

__all__ = [
    "activation", "activation_grad", "activation_grad_bias", "bias_activation", "erf", "maxout",
    "maxout_gather", "maxout_scatter",
]

_RELU, _LEAKY_RELU, _TANH, _SIGMOID, _NONE = range(5)


def _kind_code(kind: str, op: str) -> int:
    try:
        return ACTIVATION_KINDS.index(kind)
    except ValueError:
        raise ValueError(
            f"{op}: unknown activation kind {kind!r}; expected one of {ACTIVATION_KINDS}"
        ) from None


# ----------------------------------------------------------------------------- one element


# `slope` and `one` arrive with the array's dtype: a Python literal such as 1 or 0 would
# make Numba compute a float32 expression in float64 (slower, and rounded differently
# from the reference).


@njit(cache=True, inline="always", error_model="numpy")
def _act(z, kind, slope, one):
    """act(z) for one element."""
    if kind == _RELU:
        return z if z > 0 else one - one
    if kind == _LEAKY_RELU:
        return z if z > 0 else z * slope
    if kind == _TANH:
        return tanh(z)
    if kind == _SIGMOID:
        return sigmoid(z)
    return z


@njit(cache=True, inline="always", error_model="numpy")
def _act_grad(g, y, kind, slope, one):
    """dL/dz from dL/dy = g and the output y = act(z)."""
    if kind == _RELU:
        return g if y > 0 else one - one
    if kind == _LEAKY_RELU:
        return g if y > 0 else g * slope
    if kind == _TANH:
        return g * (one - y * y)
    if kind == _SIGMOID:
        return g * y * (one - y)
    return g


# ----------------------------------------------------------------------------- loops
# Each loop is compiled twice, serial and parallel (prange is range in the serial copy).


def _activation_grad_loop(gy, y, kind, slope, one, gx):
    for i in prange(gy.size):
        gx[i] = _act_grad(gy[i], y[i], kind, slope, one)


@njit(cache=True, error_model="numpy")
def act_grad_block(gy, y, start, stop, kind, slope, one, gx, sums):
    """gx[r] = act'(gy[r], y[r]) for rows start..stop-1, and their column sums into sums
    (float64): one block of _activation_grad_rows, and of linear.py's fused backward, which
    must add in the same order."""
    for c in range(gy.shape[1]):
        sums[c] = 0.0
    for r in range(start, stop):
        for c in range(gy.shape[1]):
            g = _act_grad(gy[r, c], y[r, c], kind, slope, one)
            gx[r, c] = g
            sums[c] += g


def _activation_grad_rows(gy, y, kind, slope, one, gx, partial_sums):
    """gx = activation_grad(gy, y) for (N, C) rows, and the column sums of gx, in one pass:
    block p of the rows (_util.block_of) adds its column sums into partial_sums[p]
    (float64), so each thread reads the rows that the product before it wrote."""
    parts = partial_sums.shape[0]
    for p in prange(parts):
        start, stop = block_of(gy.shape[0], p, parts)
        act_grad_block(gy, y, start, stop, kind, slope, one, gx, partial_sums[p])


def column_sums(partial_sums, dtype):
    """The bias gradient from the blocks' float64 column sums, in dtype: added in block
    order, as np.sum(axis=0) adds rows, without its ~3 us of call for a few rows."""
    total = partial_sums[0].copy()
    add_partials(total, partial_sums[1:])
    return total.astype(dtype)


def _bias_activation_loop(x, bias, kind, slope, one, y):
    """y[a, b, l] = act(x[a, b, l] + bias[b, l]) for x, y (A, B, L) and bias (B, L): the
    loop of activation (bias all zeros, B = 1) and of bias_activation alike, so a run
    compiles one of them, not two (each ~0.5-0.8 s of a cold start). Tasks are the A
    blocks; the inner loop runs along L, contiguous in x, y and bias, so it vectorises."""
    outer, middle, inner = x.shape
    for a in prange(outer):
        for b in range(middle):
            for k in range(inner):
                y[a, b, k] = _act(x[a, b, k] + bias[b, k], kind, slope, one)


_activation_grad_loops = serial_and_parallel(_activation_grad_loop)
_bias_activation_loops = serial_and_parallel(_bias_activation_loop)
_activation_grad_rows_loops = serial_and_parallel(_activation_grad_rows)


# ----------------------------------------------------------------------------- kernels


def activation(x, kind: str, slope: float = 0.0):
    """y = act(x) for kind in relu, leaky_relu, tanh, sigmoid, none (slope: leaky relu's).
    y has x's layout (channels-last stays channels-last)."""
    code = _kind_code(kind, "activation")
    flat = memory_order(x)
    y = fresh_like(flat)
    # (A, 1, L): one task per sample (or one in all for 1-D x), a zero bias along L
    outer = flat.shape[0] if flat.ndim > 1 else 1
    rows = flat.reshape(outer, 1, flat.size // outer if outer else 0)
    bias = np.zeros((1, rows.shape[2]), dtype=flat.dtype)
    by_size(_bias_activation_loops, x.size)(
        rows, bias, code, x.dtype.type(slope), x.dtype.type(1), y.reshape(rows.shape)
    )
    return as_layout_of(y, x).reshape(x.shape)  # memory_order makes a 0-d array 1-d


def activation_grad(gy, y, kind: str, slope: float = 0.0):
    """dL/dx from dL/dy and the output y = act(x) (slope >= 0 for leaky relu), in y's layout."""
    code = _kind_code(kind, "activation_grad")
    y_flat = memory_order(y)
    gy_flat = like_layout(gy, y)
    y_flat = y_flat.astype(gy_flat.dtype, copy=False)
    gx = fresh_like(gy_flat)
    by_size(_activation_grad_loops, gy.size)(
        gy_flat.reshape(-1), y_flat.reshape(-1), code, gy_flat.dtype.type(slope),
        gy_flat.dtype.type(1), gx.reshape(-1),
    )
    return as_layout_of(gx, y)


def activation_grad_bias(gy, y, kind: str, slope: float = 0.0):
    """(gx, gbias): activation_grad and its sum over every axis but 1 (the bias gradient of
    bias_activation). (N, C) inputs below the parallel threshold, the rows of a linear
    layer, take one fused pass; others activation_grad and a NumPy sum."""
    code = _kind_code(kind, "activation_grad_bias")
    if (gy.ndim == 2 and gy.size < _util.PARALLEL_MIN_ELEMENTS and gy.flags.c_contiguous
            and y.flags.c_contiguous and y.dtype == gy.dtype):
        gx = fresh_like(gy)
        parts = row_blocks(gy.size)
        sums = np.empty((parts, gy.shape[1]))
        _activation_grad_rows_loops[parts > 1](gy, y, code, gy.dtype.type(slope),
                                               gy.dtype.type(1), gx, sums)
        return gx, column_sums(sums, gy.dtype)
    gx = activation_grad(gy, y, kind, slope)
    return gx, gx.sum(axis=(0,) + tuple(range(2, gx.ndim)))


def bias_activation(x, bias, kind: str, slope: float = 0.0):
    """act(x + bias), bias of shape (C,) added along axis 1 of x ((N, C) or (N, C, H, W)),
    in x's layout."""
    code = _kind_code(kind, "bias_activation")
    flat = memory_order(x)
    bias = np.ascontiguousarray(bias, dtype=x.dtype)
    y = fresh_like(flat)
    channels = x.shape[1]
    if x.ndim == 2 or is_channels_last(x):
        # (N*H*W, 1, C): the channels are inner
        rows = flat.reshape(flat.size // channels if channels else 0, 1, channels)
        bias = bias.reshape(1, channels)
    else:  # NCHW: each sample's (C, H*W) block, the bias repeated along H*W
        rows = flat.reshape(x.shape[0], channels, x[0, 0].size)
        bias = np.ascontiguousarray(np.broadcast_to(bias[:, None], rows.shape[1:]))
    by_size(_bias_activation_loops, x.size)(
        rows, bias, code, x.dtype.type(slope), x.dtype.type(1), y.reshape(rows.shape)
    )
    return as_layout_of(y, x)


def _erf_loop(x, y):
    for i in prange(x.size):
        y[i] = math.erf(x[i])


_erf_loops = serial_and_parallel(_erf_loop)


def erf(x):
    """The error function elementwise, math.erf in one compiled loop (the reference calls
    it from Python once per element, about a microsecond each); y has x's layout."""
    flat = memory_order(x)
    y = fresh_like(flat)
    by_size(_erf_loops, x.size)(flat.reshape(-1), y.reshape(-1))
    return as_layout_of(y, x).reshape(x.shape)  # memory_order makes a 0-d array 1-d


# ----------------------------------------------------------------------------- maxout
# The reference walks the pieces with whole-slice NumPy passes and boolean masks (a
# temporary per piece); these loops read each group once. PacGAN's discriminator has three
# maxout layers of 200 x 5 pieces: in the reference they were a fifth of its step.


@njit(cache=True, error_model="numpy")
def _maxout_loop(x, pieces, y, index):
    rows, channels = y.shape
    for r in range(rows):
        for c in range(channels):
            start = c * pieces
            best, chosen = x[r, start], 0
            for k in range(1, pieces):
                if x[r, start + k] > best:  # first winner on ties; a NaN stays, as in NumPy
                    best, chosen = x[r, start + k], k
            y[r, c] = best
            index[r, c] = chosen


@njit(cache=True, error_model="numpy")
def _maxout_gather_loop(x, index, y):
    rows, channels = y.shape
    pieces = x.shape[1] // channels
    for r in range(rows):
        for c in range(channels):
            y[r, c] = x[r, c * pieces + index[r, c]]


@njit(cache=True, error_model="numpy")
def _maxout_scatter_loop(gy, index, pieces, gx):
    rows, channels = gy.shape
    for r in range(rows):
        for c in range(channels):
            for k in range(pieces):
                gx[r, c * pieces + k] = gy[r, c] if index[r, c] == k else 0


def maxout(x, pieces: int):
    """(y, index): y[n, c] = max over k of x[n, c * pieces + k], index the winning k (the
    first on ties), as kernels/reference."""
    x = np.ascontiguousarray(x)
    rows, width = x.shape
    y = np.empty((rows, width // pieces), dtype=x.dtype)
    index = np.empty(y.shape, dtype=np.int64)
    _maxout_loop(x, pieces, y, index)
    return y, index


def maxout_gather(x, index):
    """y[n, c] = x[n, c * pieces + index[n, c]]."""
    x = np.ascontiguousarray(x)
    y = np.empty(index.shape, dtype=x.dtype)
    _maxout_gather_loop(x, np.ascontiguousarray(index, dtype=np.int64), y)
    return y


def maxout_scatter(gy, index, pieces: int):
    """The adjoint of maxout_gather: gy at piece index[n, c] of group c, zeros elsewhere."""
    gy = np.ascontiguousarray(gy)
    gx = np.empty((gy.shape[0], gy.shape[1] * pieces), dtype=gy.dtype)
    _maxout_scatter_loop(gy, np.ascontiguousarray(index, dtype=np.int64), pieces, gx)
    return gx
