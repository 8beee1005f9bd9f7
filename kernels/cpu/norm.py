"""Batch-normalization kernels for the CPU: per-channel statistics and the affine map in
Numba loops, two passes over x where the reference makes six or more.

x is (N, C) or (N, C, H, W) (the ops layer folds other ranks into these). Inside, both are
viewed as (N, C, L) with L = H*W. The reductions give each parallel task one channel (its
N runs of L contiguous values); the elementwise maps give each task one (sample, channel)
run. (N, C) inputs go to the NumPy reference instead: there a channel is a column of
stride C, which a per-channel loop reads one cache line per element, while NumPy's
reductions along axis 0 sweep whole rows in vector registers (for (64, 1024): 0.09 ms
against 0.5 ms, RESULTS.md).

Sums are accumulated in float64, whatever x's dtype: a float32 running sum over
M = N*L terms would carry a relative error ~M * 2^-24, which for M in the tens of
thousands is no longer small against float32 rounding. Statistics are returned in x's
dtype, as the reference does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..reference import norm as reference

__all__ = ["batch_norm_train", "batch_norm_eval", "batch_norm_backward"]


# ----------------------------------------------------------------------------- loops


# The reductions may reassociate their float64 sums (fastmath "reassoc"): that lets LLVM
# keep several partial sums in vector registers instead of one serial chain of adds
# (~4x faster here), and changes the result only within the float64 summation error.


@njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc"})
def _channel_moments(x, mean, var):
    """Per channel c of x (N, C, L): mean and biased variance (two passes, float64 sums)."""
    batch, channels, inner = x.shape
    count = batch * inner
    for c in prange(channels):
        total = 0.0
        for n in range(batch):
            for k in range(inner):
                total += x[n, c, k]
        mu = total / count
        squares = 0.0
        for n in range(batch):
            for k in range(inner):
                d = x[n, c, k] - mu
                squares += d * d
        mean[c] = mu
        var[c] = squares / count


@njit(parallel=True, cache=True, error_model="numpy")
def _channel_affine(x, center, scale, shift, y):
    """y[n, c, k] = (x[n, c, k] - center[c]) * scale[c] + shift[c]. Centering first keeps
    float32 accurate when |mean| >> std (x * scale + shift would cancel two large terms)."""
    batch, channels, inner = x.shape
    for task in prange(batch * channels):
        n = task // channels
        c = task - n * channels
        m = center[c]
        a = scale[c]
        b = shift[c]
        for k in range(inner):
            y[n, c, k] = (x[n, c, k] - m) * a + b


@njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc"})
def _backward_sums(gy, x, mean, sum_gy, sum_gy_xc):
    """Per channel: sum of gy and sum of gy * (x - mean) (float64)."""
    batch, channels, inner = x.shape
    for c in prange(channels):
        mu = mean[c]
        total = 0.0
        total_xc = 0.0
        for n in range(batch):
            for k in range(inner):
                g = gy[n, c, k]
                total += g
                total_xc += g * (x[n, c, k] - mu)
        sum_gy[c] = total
        sum_gy_xc[c] = total_xc


@njit(parallel=True, cache=True, error_model="numpy")
def _backward_input(gy, x, center, a, b, d, gx):
    """gx[n, c, k] = a[c] gy[n, c, k] + b[c] (x[n, c, k] - center[c]) + d[c]: the batch-norm
    input gradient once its per-channel coefficients are known (see batch_norm_backward)."""
    batch, channels, inner = x.shape
    for task in prange(batch * channels):
        n = task // channels
        c = task - n * channels
        m = center[c]
        ac = a[c]
        bc = b[c]
        dc = d[c]
        for k in range(inner):
            gx[n, c, k] = ac * gy[n, c, k] + bc * (x[n, c, k] - m) + dc


# ----------------------------------------------------------------------------- helpers


def _rows(x) -> np.ndarray:
    """x (N, C) or (N, C, H, W) as a contiguous (N, C, L) array."""
    x = np.ascontiguousarray(x)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _scale_shift(var, weight, bias, eps, dtype):
    """Per-channel (scale, shift) of y = (x - mean) * scale + shift, the batch-norm map
    (x - mean) / sqrt(var + eps) * weight + bias; computed in float64, returned in dtype."""
    scale = 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    if weight is not None:
        scale = scale * weight
    shift = np.zeros_like(scale) if bias is None else np.asarray(bias, dtype=np.float64)
    return scale.astype(dtype), shift.astype(dtype)


# ----------------------------------------------------------------------------- kernels


def batch_norm_train(x, weight, bias, eps: float):
    """(y, mean, var): y = (x - mean) / sqrt(var + eps) * weight + bias with batch statistics
    (over every axis but 1; var is the biased one). weight and bias may be None."""
    if np.ndim(x) == 2:
        return reference.batch_norm_train(x, weight, bias, eps)
    rows = _rows(x)
    channels = rows.shape[1]
    mean = np.empty(channels)
    var = np.empty(channels)
    _channel_moments(rows, mean, var)
    mean, var = mean.astype(rows.dtype), var.astype(rows.dtype)
    scale, shift = _scale_shift(var, weight, bias, eps, rows.dtype)
    y = np.empty_like(rows)
    _channel_affine(rows, mean, scale, shift, y)
    return y.reshape(np.shape(x)), mean, var


def batch_norm_eval(x, mean, var, weight, bias, eps: float):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with given (running) statistics."""
    if np.ndim(x) == 2:
        return reference.batch_norm_eval(x, mean, var, weight, bias, eps)
    rows = _rows(x)
    scale, shift = _scale_shift(var, weight, bias, eps, rows.dtype)
    y = np.empty_like(rows)
    _channel_affine(rows, np.asarray(mean, dtype=rows.dtype), scale, shift, y)
    return y.reshape(np.shape(x))


def batch_norm_backward(gy, x, weight, mean, var, eps: float):
    """(gx, gweight, gbias) of training-mode batch norm; gweight, gbias are None without weight.

    With invstd = 1/sqrt(var + eps), per-channel sums S = sum(gy), T = sum(gy (x - mean))
    and M elements per channel, the reference's
    gx = invstd * weight * (gy - S/M - xhat * invstd T / M),  xhat = (x - mean) invstd,
    is gx = a gy + b (x - mean) + d per channel, with a = invstd weight,
    b = -a invstd^2 T / M and d = -a S / M. Also gbias = S and gweight = invstd T.
    """
    if np.ndim(x) == 2:
        return reference.batch_norm_backward(gy, x, weight, mean, var, eps)
    gy_rows, x_rows = _rows(gy), _rows(x)
    dtype = x_rows.dtype
    channels = x_rows.shape[1]
    count = x_rows.shape[0] * x_rows.shape[2]
    mean = np.asarray(mean, dtype=dtype)
    sum_gy = np.empty(channels)
    sum_gy_xc = np.empty(channels)
    _backward_sums(gy_rows, x_rows, mean, sum_gy, sum_gy_xc)
    invstd = 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    a = invstd if weight is None else invstd * weight
    b = -a * invstd * invstd * sum_gy_xc / count
    d = -a * sum_gy / count
    gx = np.empty_like(x_rows)
    _backward_input(gy_rows, x_rows, mean, a.astype(dtype), b.astype(dtype), d.astype(dtype), gx)
    gx = gx.reshape(np.shape(x))
    if weight is None:
        return gx, None, None
    return gx, (invstd * sum_gy_xc).astype(dtype), sum_gy.astype(dtype)
