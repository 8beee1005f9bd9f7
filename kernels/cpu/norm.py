"""Batch-normalization kernels for the CPU: per-channel statistics and the affine map in
Numba loops, two passes over x where the reference makes six or more.

x is (N, C) or (N, C, H, W) (the ops layer folds other ranks into these), in one of two
memory layouts:

* NCHW: viewed as (N, C, L) with L = H*W. The reductions give each parallel task one
  channel (its N runs of L contiguous values); the elementwise maps give each task one
  (sample, channel) run.
* channels-last (what the conv kernels return): viewed as an (M, C) matrix, M = N*H*W,
  whose columns are the channels; the loops run along contiguous channels (_column_*).

Results keep x's layout. (N, C) inputs go to the NumPy reference: a per-channel loop
over a column of stride C read one cache line per element, while NumPy's reductions
along axis 0 sweep whole rows in vector registers (for (64, 1024): 0.09 ms against
0.5 ms, RESULTS.md).

Sums are accumulated in float64, whatever x's dtype: a float32 running sum over
M = N*L terms would carry a relative error ~M * 2^-24, which for M in the tens of
thousands is no longer small against float32 rounding. Statistics are returned in x's
dtype, as the reference does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..reference import norm as reference
from ._util import by_size, fresh_like, is_channels_last, like_layout, serial_and_parallel
from .activation import _NONE, _act, _act_grad, _kind_code

__all__ = ["batch_norm_train", "batch_norm_eval", "batch_norm_backward", "batch_norm_act_train",
           "batch_norm_act_backward"]


# ----------------------------------------------------------------------------- loops


# The reductions may reassociate their float64 sums (fastmath "reassoc"): that lets LLVM
# keep several partial sums in vector registers instead of one serial chain of adds
# (~4x faster here), and changes the result only within the float64 summation error.


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


def _channel_affine(x, center, scale, shift, kind, slope, one, y):
    """y[n, c, k] = act((x[n, c, k] - center[c]) * scale[c] + shift[c]) (activation code
    kind, see activation.py; _NONE for batch norm alone). Centering first keeps float32
    accurate when |mean| >> std (x * scale + shift would cancel two large terms)."""
    batch, channels, inner = x.shape
    for task in prange(batch * channels):
        n = task // channels
        c = task - n * channels
        m = center[c]
        a = scale[c]
        b = shift[c]
        for k in range(inner):
            y[n, c, k] = _act((x[n, c, k] - m) * a + b, kind, slope, one)


def _backward_sums(gy, y, x, mean, kind, slope, one, sum_gy, sum_gy_xc):
    """Per channel: sum of g and sum of g * (x - mean) (float64), where g is gy taken back
    through the activation whose output is y (g = gy for _NONE)."""
    batch, channels, inner = x.shape
    for c in prange(channels):
        mu = mean[c]
        total = 0.0
        total_xc = 0.0
        for n in range(batch):
            for k in range(inner):
                g = _act_grad(gy[n, c, k], y[n, c, k], kind, slope, one)
                total += g
                total_xc += g * (x[n, c, k] - mu)
        sum_gy[c] = total
        sum_gy_xc[c] = total_xc


def _backward_input(gy, y, x, center, a, b, d, kind, slope, one, gx):
    """gx[n, c, k] = a[c] g + b[c] (x[n, c, k] - center[c]) + d[c], g = gy[n, c, k] taken back
    through the activation: the batch-norm input gradient once its per-channel coefficients
    are known (see batch_norm_backward)."""
    batch, channels, inner = x.shape
    for task in prange(batch * channels):
        n = task // channels
        c = task - n * channels
        m = center[c]
        ac = a[c]
        bc = b[c]
        dc = d[c]
        for k in range(inner):
            g = _act_grad(gy[n, c, k], y[n, c, k], kind, slope, one)
            gx[n, c, k] = ac * g + bc * (x[n, c, k] - m) + dc


# Channels-last inputs (the layout the conv kernels return) are (M, C) matrices with
# M = N*H*W: a channel is a column. The reductions split the rows into blocks, one partial
# sum per block and channel, so that the inner loop runs along contiguous channels.

_ROW_BLOCKS = 64


@njit(cache=True, error_model="numpy")
def _sum_blocks(partial, out):
    """out[c] = sum over blocks t of partial[t, c]. A plain loop on purpose: an array
    expression such as partial[:, c].sum() inside a parallel function becomes a parallel
    region of its own, one thread wake-up per channel (6 ms for 128 channels here)."""
    blocks, channels = partial.shape
    for c in range(channels):
        total = 0.0
        for t in range(blocks):
            total += partial[t, c]
        out[c] = total


def _column_moments(x, mean, var):
    """Per column c of x (M, C): mean and biased variance (two passes, float64 sums)."""
    rows, channels = x.shape
    blocks = min(rows, _ROW_BLOCKS)
    partial = np.zeros((blocks, channels))
    for t in prange(blocks):
        acc = partial[t]
        for r in range(t * rows // blocks, (t + 1) * rows // blocks):
            for c in range(channels):
                acc[c] += x[r, c]
    _sum_blocks(partial, mean)
    for c in range(channels):
        mean[c] /= rows
    squares = np.zeros((blocks, channels))
    for t in prange(blocks):
        acc = squares[t]
        for r in range(t * rows // blocks, (t + 1) * rows // blocks):
            for c in range(channels):
                d = x[r, c] - mean[c]
                acc[c] += d * d
    _sum_blocks(squares, var)
    for c in range(channels):
        var[c] /= rows


def _column_affine(x, center, scale, shift, kind, slope, one, y):
    """y[r, c] = act((x[r, c] - center[c]) * scale[c] + shift[c]) for x, y (M, C)."""
    rows, channels = x.shape
    for r in prange(rows):
        for c in range(channels):
            y[r, c] = _act((x[r, c] - center[c]) * scale[c] + shift[c], kind, slope, one)


def _column_backward_sums(gy, y, x, mean, kind, slope, one, sum_gy, sum_gy_xc):
    """Per column: sum of g and sum of g * (x - mean) for (M, C) arrays (float64), g = gy
    taken back through the activation whose output is y."""
    rows, channels = x.shape
    blocks = min(rows, _ROW_BLOCKS)
    partial = np.zeros((blocks, channels))
    partial_xc = np.zeros((blocks, channels))
    for t in prange(blocks):
        totals = partial[t]
        totals_xc = partial_xc[t]
        for r in range(t * rows // blocks, (t + 1) * rows // blocks):
            for c in range(channels):
                g = np.float64(_act_grad(gy[r, c], y[r, c], kind, slope, one))
                totals[c] += g
                totals_xc[c] += g * (x[r, c] - mean[c])
    _sum_blocks(partial, sum_gy)
    _sum_blocks(partial_xc, sum_gy_xc)


def _column_backward_input(gy, y, x, center, a, b, d, kind, slope, one, gx):
    """gx[r, c] = a[c] g + b[c] (x[r, c] - center[c]) + d[c] for (M, C) arrays, g = gy[r, c]
    taken back through the activation."""
    rows, channels = x.shape
    for r in prange(rows):
        for c in range(channels):
            g = _act_grad(gy[r, c], y[r, c], kind, slope, one)
            gx[r, c] = a[c] * g + b[c] * (x[r, c] - center[c]) + d[c]


# ----------------------------------------------------------------------------- helpers


# (moments, affine, backward sums, backward input) for each layout of the kernels' input,
# each a (serial, parallel) pair: below _util.PARALLEL_MIN_ELEMENTS elements one thread.
_REASSOC = {"fastmath": {"reassoc"}}
_ROW_KERNELS = (serial_and_parallel(_channel_moments, **_REASSOC),
                serial_and_parallel(_channel_affine),
                serial_and_parallel(_backward_sums, **_REASSOC),
                serial_and_parallel(_backward_input))
_COLUMN_KERNELS = (serial_and_parallel(_column_moments, **_REASSOC),
                   serial_and_parallel(_column_affine),
                   serial_and_parallel(_column_backward_sums, **_REASSOC),
                   serial_and_parallel(_column_backward_input))


def _kernel_view(x, like=None):
    """(x as the kernels read it, the kernels for that layout): the (M, C) matrix of a
    channels-last x, else x (N, C) or (N, C, H, W) as a contiguous (N, C, L) array.
    With `like`, x is first put in like's layout (a gradient next to its input)."""
    layout = x if like is None else like
    flat = like_layout(x, layout)
    if is_channels_last(layout):
        return flat.reshape(-1, layout.shape[1]), _COLUMN_KERNELS
    return flat.reshape(layout.shape[0], layout.shape[1], -1), _ROW_KERNELS


def _from_kernel_view(y, like) -> np.ndarray:
    """The inverse of _kernel_view: y shaped (and laid out) like `like`."""
    if is_channels_last(like):
        n, c, h, w = like.shape
        return y.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return y.reshape(like.shape)


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
    return batch_norm_act_train(x, weight, bias, eps, "none", 0.0)


def batch_norm_act_train(x, weight, bias, eps: float, kind: str, slope: float = 0.0):
    """(act(y), mean, var) with y as batch_norm_train's: the activation applied in the same
    pass as the normalization (one write of the output instead of two passes)."""
    code = _kind_code(kind, "batch_norm_act_train")
    if np.ndim(x) == 2:
        return reference.batch_norm_act_train(x, weight, bias, eps, kind, slope)
    view, (moments, affine, _, _) = _kernel_view(x)
    channels = x.shape[1]
    mean = np.empty(channels)
    var = np.empty(channels)
    by_size(moments, x.size)(view, mean, var)
    mean, var = mean.astype(x.dtype), var.astype(x.dtype)
    scale, shift = _scale_shift(var, weight, bias, eps, x.dtype)
    y = fresh_like(view)
    by_size(affine, x.size)(view, mean, scale, shift, code, x.dtype.type(slope),
                            x.dtype.type(1), y)
    return _from_kernel_view(y, x), mean, var


def batch_norm_eval(x, mean, var, weight, bias, eps: float):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with given (running) statistics."""
    if np.ndim(x) == 2:
        return reference.batch_norm_eval(x, mean, var, weight, bias, eps)
    view, (_, affine, _, _) = _kernel_view(x)
    scale, shift = _scale_shift(var, weight, bias, eps, x.dtype)
    y = fresh_like(view)
    by_size(affine, x.size)(view, np.asarray(mean, dtype=x.dtype), scale, shift, _NONE,
                            x.dtype.type(0), x.dtype.type(1), y)
    return _from_kernel_view(y, x)


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
    return _backward(gy, None, x, weight, mean, var, eps, _NONE, 0.0)


def batch_norm_act_backward(gy, y, x, weight, mean, var, eps: float, kind: str,
                            slope: float = 0.0):
    """The gradients (gx, gweight, gbias) of act(batch_norm(x)) whose output is y: gy is
    taken back through the activation inside both passes of batch_norm_backward, instead
    of in a pass of its own."""
    code = _kind_code(kind, "batch_norm_act_backward")
    if np.ndim(x) == 2:
        return reference.batch_norm_act_backward(gy, y, x, weight, mean, var, eps, kind, slope)
    return _backward(gy, y, x, weight, mean, var, eps, code, slope)


def _backward(gy, y, x, weight, mean, var, eps, code, slope):
    """batch_norm_backward of gy taken back through the activation `code` at output y."""
    x_view, (_, _, backward_sums, backward_input) = _kernel_view(x)
    gy_view, _ = _kernel_view(np.asarray(gy, dtype=x.dtype), like=x)
    y_view = gy_view if y is None else _kernel_view(np.asarray(y, dtype=x.dtype), like=x)[0]
    dtype = x.dtype
    act = (code, dtype.type(slope), dtype.type(1))
    channels = x.shape[1]
    count = x.size // channels
    mean = np.asarray(mean, dtype=dtype)
    sum_gy = np.empty(channels)
    sum_gy_xc = np.empty(channels)
    by_size(backward_sums, x.size)(gy_view, y_view, x_view, mean, *act, sum_gy, sum_gy_xc)
    invstd = 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    a = invstd if weight is None else invstd * weight
    b = -a * invstd * invstd * sum_gy_xc / count
    d = -a * sum_gy / count
    gx = fresh_like(x_view)
    by_size(backward_input, x.size)(gy_view, y_view, x_view, mean, a.astype(dtype),
                                    b.astype(dtype), d.astype(dtype), *act, gx)
    gx = _from_kernel_view(gx, x)
    if weight is None:
        return gx, None, None
    return gx, (invstd * sum_gy_xc).astype(dtype), sum_gy.astype(dtype)
