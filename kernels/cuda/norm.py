"""CUDA batch normalization: statistics, normalization and backward, each one launch.

Same names, signatures and semantics as kernels/reference/norm.py. x is viewed as
(N, C, S) with S = H*W (or 1 for (N, C) input); one block owns one channel and walks its
N*S values with all its threads (consecutive threads read consecutive addresses).

Training forward, in one kernel per block:
  1. each thread sums (x - shift) and (x - shift)^2 over its share of the channel, where
     shift is the channel's first value: with it the one-pass variance
     E[d^2] - E[d]^2 does not cancel catastrophically when |mean| >> std (the "shifted
     data" algorithm; Chan, Golub & LeVeque 1983). Sums are float64;
  2. a tree reduction in shared memory combines the threads' sums;
  3. every thread normalizes its share: y = x * scale + offset, one multiply-add.
The backward is the same shape: reduce sum(gy) and sum(gy * xhat), then
  gx = weight * invstd * (gy - sum(gy)/M - xhat * sum(gy * xhat)/M),  M = N*S,
the formula of kernels/reference/norm.py with gweight = sum(gy * xhat), gbias = sum(gy).
"""

from __future__ import annotations

import math

from numba import cuda, float64

from ..reference._util import array_module
from ._launch import MAX_THREADS, elementwise_grid, launch, per_channel_grid
from .activation import activation, activation_grad

__all__ = ["batch_norm_train", "batch_norm_eval", "batch_norm_backward", "batch_norm_act_train",
           "batch_norm_act_backward"]


@cuda.jit(device=True)
def _block_sum_pair(first, second):
    """Tree-reduce two shared buffers of blockDim.x (a power of two) partial sums in place;
    afterwards first[0] and second[0] hold the block's totals, visible to every thread."""
    t = cuda.threadIdx.x
    half = cuda.blockDim.x // 2
    cuda.syncthreads()
    while half > 0:
        if t < half:
            first[t] += first[t + half]
            second[t] += second[t + half]
        cuda.syncthreads()
        half //= 2


@cuda.jit(cache=True)
def _batch_norm_train_kernel(x, weight, bias, has_weight, has_bias, eps, y, mean, var):
    c = cuda.blockIdx.x
    t, threads = cuda.threadIdx.x, cuda.blockDim.x
    batch, size = x.shape[0], x.shape[2]
    count = batch * size
    shift = float(x[0, c, 0])
    sums = cuda.shared.array(MAX_THREADS, float64)
    squares = cuda.shared.array(MAX_THREADS, float64)
    total, total_sq = 0.0, 0.0
    for j in range(t, count, threads):
        d = float(x[j // size, c, j % size]) - shift
        total += d
        total_sq += d * d
    sums[t] = total
    squares[t] = total_sq
    _block_sum_pair(sums, squares)
    mean_shifted = sums[0] / count
    variance = max(squares[0] / count - mean_shifted * mean_shifted, 0.0)
    mean_c = shift + mean_shifted
    scale = 1.0 / math.sqrt(variance + eps)
    if has_weight:
        scale *= weight[c]
    offset = -mean_c * scale
    if has_bias:
        offset += bias[c]
    for j in range(t, count, threads):
        n, s = j // size, j % size
        y[n, c, s] = x[n, c, s] * scale + offset
    if t == 0:
        mean[c] = mean_c
        var[c] = variance


@cuda.jit(cache=True)
def _batch_norm_eval_kernel(x, mean, var, weight, bias, has_weight, has_bias, eps, y):
    channels, size = x.shape[1], x.shape[2]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, stride):
        s = i % size
        c = (i // size) % channels
        n = i // (size * channels)
        value = (x[n, c, s] - float(mean[c])) / math.sqrt(float(var[c]) + eps)
        if has_weight:
            value *= weight[c]
        if has_bias:
            value += bias[c]
        y[n, c, s] = value


@cuda.jit(cache=True)
def _batch_norm_backward_kernel(gy, x, weight, has_weight, mean, var, eps, gx, gweight, gbias):
    c = cuda.blockIdx.x
    t, threads = cuda.threadIdx.x, cuda.blockDim.x
    batch, size = x.shape[0], x.shape[2]
    count = batch * size
    mean_c = float(mean[c])
    invstd = 1.0 / math.sqrt(float(var[c]) + eps)
    sum_gy = cuda.shared.array(MAX_THREADS, float64)
    sum_gy_xhat = cuda.shared.array(MAX_THREADS, float64)
    total, total_xhat = 0.0, 0.0
    for j in range(t, count, threads):
        n, s = j // size, j % size
        g = float(gy[n, c, s])
        total += g
        total_xhat += g * (x[n, c, s] - mean_c) * invstd
    sum_gy[t] = total
    sum_gy_xhat[t] = total_xhat
    _block_sum_pair(sum_gy, sum_gy_xhat)
    mean_gy = sum_gy[0] / count
    mean_gy_xhat = sum_gy_xhat[0] / count
    scale = invstd
    if has_weight:
        scale *= weight[c]
    for j in range(t, count, threads):
        n, s = j // size, j % size
        xhat = (x[n, c, s] - mean_c) * invstd
        gx[n, c, s] = scale * (gy[n, c, s] - mean_gy - xhat * mean_gy_xhat)
    if t == 0 and has_weight:
        gweight[c] = sum_gy_xhat[0]
        gbias[c] = sum_gy[0]


def _as_ncs(x):
    """x (N, C) or (N, C, H, W) as a contiguous (N, C, S) array."""
    xp = array_module(x)
    return xp.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def _vector_or_placeholder(values, like):
    """A per-channel vector as a contiguous array, or a 1-element stand-in for None (a
    kernel argument needs a type; the has_* flag says whether it is read)."""
    xp = array_module(like)
    if values is None:
        return xp.zeros(1, dtype=like.dtype)
    return xp.ascontiguousarray(values)


def batch_norm_train(x, weight, bias, eps: float):
    """(y, mean, var): y = (x - mean) / sqrt(var + eps) * weight + bias, batch statistics,
    biased variance; weight and bias may be None."""
    xp = array_module(x)
    x3 = _as_ncs(x)
    channels = x3.shape[1]
    y = xp.empty_like(x3)
    mean = xp.empty(channels, dtype=x.dtype)
    var = xp.empty(channels, dtype=x.dtype)
    launch(
        _batch_norm_train_kernel, per_channel_grid(channels), "batch_norm_train",
        x3, _vector_or_placeholder(weight, x), _vector_or_placeholder(bias, x),
        weight is not None, bias is not None, float(eps), y, mean, var,
    )
    return y.reshape(x.shape), mean, var


def batch_norm_eval(x, mean, var, weight, bias, eps: float):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with given (running) statistics."""
    xp = array_module(x)
    x3 = _as_ncs(x)
    y = xp.empty_like(x3)
    launch(
        _batch_norm_eval_kernel, elementwise_grid(x3.size), "batch_norm_eval",
        x3, xp.ascontiguousarray(mean), xp.ascontiguousarray(var),
        _vector_or_placeholder(weight, x), _vector_or_placeholder(bias, x),
        weight is not None, bias is not None, float(eps), y,
    )
    return y.reshape(x.shape)


def batch_norm_backward(gy, x, weight, mean, var, eps: float):
    """(gx, gweight, gbias) of training-mode batch norm; gweight, gbias are None without
    weight (as in the reference)."""
    xp = array_module(x)
    x3 = _as_ncs(x)
    channels = x3.shape[1]
    gx = xp.empty_like(x3)
    gweight = xp.empty(channels if weight is not None else 1, dtype=x.dtype)
    gbias = xp.empty_like(gweight)
    launch(
        _batch_norm_backward_kernel, per_channel_grid(channels), "batch_norm_backward",
        _as_ncs(gy), x3, _vector_or_placeholder(weight, x), weight is not None,
        xp.ascontiguousarray(mean), xp.ascontiguousarray(var), float(eps), gx, gweight, gbias,
    )
    if weight is None:
        return gx.reshape(x.shape), None, None
    return gx.reshape(x.shape), gweight, gbias


# Batch norm + activation: this device's own two kernels in turn (not fused yet), so that
# the op runs on them rather than on the reference's composition of NumPy-style calls.


def batch_norm_act_train(x, weight, bias, eps: float, kind: str, slope: float = 0.0):
    """(act(y), mean, var) for (y, mean, var) = batch_norm_train(x, ...)."""
    y, mean, var = batch_norm_train(x, weight, bias, eps)
    return activation(y, kind, slope), mean, var


def batch_norm_act_backward(gy, y, x, weight, mean, var, eps: float, kind: str,
                            slope: float = 0.0):
    """(gx, gweight, gbias) of act(batch_norm(x)) given its output y."""
    return batch_norm_backward(activation_grad(gy, y, kind, slope), x, weight, mean, var, eps)
