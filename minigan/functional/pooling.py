"""Pooling ops with torch.nn.functional's names: avg_pool2d, max_pool2d, adaptive_avg_pool2d.

Each is composed of ops whose gradients (of any order) are already exact:
- avg_pool2d is a convolution of each channel with a constant kh x kw box (conv2d on the
  channels folded into the batch), divided by each window's count;
- max_pool2d finds each window's maximum with a kernel (max_pool2d_indices) and then is an
  indexing of the input at those positions, whose gradient adds each output's gradient back
  at its position (the adjoint of indexing);
- adaptive_avg_pool2d is linear and separable: P_h x P_w^T with constant averaging
  matrices, so two matrix products.

Output sizes follow PyTorch: floor((H + 2p - d (k - 1) - 1) / s) + 1, or the ceiling with
ceil_mode, dropping a last window that would start in the right padding.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Tensor
from .conv import _pair, conv2d

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "max_pool2d"]


def _pool_output_size(op, size, kernel, stride, padding, dilation, ceil_mode) -> int:
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # PyTorch: the last window must start inside the input or the left padding
    if out < 1:
        raise ValueError(
            f"{op}: output size {out} is less than 1 (input size {size}, kernel {kernel}, "
            f"padding {padding}, dilation {dilation})"
        )
    return out


def _geometry(op: str, input: Tensor, kernel_size, stride, padding, dilation, ceil_mode):
    """Validated (kernel, stride, padding, dilation, output size), each an (H, W) pair."""
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape "
                         f"{input.shape}")
    kernel = _pair(op, "kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None or stride == () else _pair(op, "stride", stride, 1)
    padding = _pair(op, "padding", padding, minimum=0)
    dilation = _pair(op, "dilation", dilation, minimum=1)
    for k, p, d in zip(kernel, padding, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise ValueError(
                f"{op}: padding {padding} should be at most half of the (dilated) kernel "
                f"size {kernel}"
            )
    out_size = tuple(
        _pool_output_size(op, n, k, s, p, d, ceil_mode)
        for n, k, s, p, d in zip(input.shape[-2:], kernel, stride, padding, dilation)
    )
    return kernel, stride, padding, dilation, out_size


def _refuse_windows_in_padding(op, sizes, kernel, stride, padding, dilation, out_size):
    """A dilated window can skip over the whole input and see only padding. PyTorch then
    returns -inf with an index outside the window; minigan refuses that geometry by name
    rather than return a maximum of nothing."""
    for axis, n, k, s, p, d, out in zip(("height", "width"), sizes, kernel, stride, padding,
                                        dilation, out_size):
        for o in range(out):
            if not any(0 <= o * s - p + i * d < n for i in range(k)):
                raise ValueError(
                    f"{op}: with kernel {kernel}, stride {stride}, padding {padding} and "
                    f"dilation {dilation}, output {axis} position {o} sees only padding of "
                    f"an input of {axis} {n}; use less padding or dilation")


def _as_4d(input: Tensor) -> Tensor:
    return input if input.ndim == 4 else input.unsqueeze(0)


def _window_counts(size, kernel, stride, padding, out, count_include_pad) -> np.ndarray:
    """How many positions each window along one axis averages, PyTorch's rule: windows are
    clipped to the padded input, and with count_include_pad=False to the input itself."""
    start = np.arange(out) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if not count_include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return (end - start).astype(np.float64)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The mean of each kh x kw window of (N, C, H, W) or (C, H, W) input, as
    torch.nn.functional.avg_pool2d (zero padding counts unless count_include_pad=False;
    divisor_override replaces the count)."""
    op = "avg_pool2d"
    kernel, stride, padding, _, out_size = _geometry(op, input, kernel_size, stride, padding,
                                                     1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, int)
                                         or divisor_override <= 0):
        raise ValueError(f"{op}: divisor_override must be a positive int, got "
                         f"{divisor_override!r}")
    x = _as_4d(input)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = out_size
    # ceil_mode's last window may reach past the padding: pad zeros for it too
    extra_h = max(0, (ho - 1) * sh + kh - (h + 2 * ph))
    extra_w = max(0, (wo - 1) * sw + kw - (w + 2 * pw))
    backend = x._backend
    box = Tensor._wrap(backend.xp.ones((1, 1, kh, kw), dtype=x.dtype), backend)
    planes = x.reshape(n * c, 1, h, w)
    if extra_h or extra_w:
        from .shape import pad

        planes = pad(planes, (pw, pw + extra_w, ph, ph + extra_h))
        sums = conv2d(planes, box, stride=stride)
    else:
        sums = conv2d(planes, box, stride=stride, padding=padding)
    if divisor_override is not None:
        divisor = np.full((ho, wo), float(divisor_override))
    else:
        divisor = np.outer(_window_counts(h, kh, sh, ph, ho, count_include_pad),
                           _window_counts(w, kw, sw, pw, wo, count_include_pad))
    inverse = Tensor._wrap(backend.asarray(1.0 / divisor, dtype=x.dtype), backend)
    out = (sums * inverse).reshape(n, c, ho, wo)
    return out if input.ndim == 4 else out.reshape(c, ho, wo)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """The maximum of each (dilated) kh x kw window of (N, C, H, W) or (C, H, W) input, as
    torch.nn.functional.max_pool2d (implicit -inf padding); with return_indices also each
    maximum's flat index in its H*W plane (int64)."""
    op = "max_pool2d"
    kernel, stride, padding, dilation, out_size = _geometry(
        op, input, kernel_size, stride, padding, dilation, ceil_mode)
    _refuse_windows_in_padding(op, input.shape[-2:], kernel, stride, padding, dilation,
                               out_size)
    x = _as_4d(input)
    n, c, h, w = x.shape
    backend = x._backend
    indices = backend.K.max_pool2d_indices(x.array, kernel, stride, padding, dilation,
                                           out_size)
    # the flat position of each maximum in the whole tensor, then one gather
    planes = backend.xp.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * (h * w)
    out = x.reshape(n * c * h * w)[planes + indices]
    if input.ndim == 3:
        out, indices = out.reshape(out.shape[1:]), indices.reshape(indices.shape[1:])
    if return_indices:
        return out, Tensor._wrap(indices, backend)
    return out


def _adaptive_output_size(op: str, input: Tensor, output_size) -> tuple:
    sizes = (output_size, output_size) if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"{op}: output_size must be an int or (H, W), got {output_size!r}")
    sizes = tuple(n if s is None else s for s, n in zip(sizes, input.shape[-2:]))
    if not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise ValueError(f"{op}: output_size must be positive ints or None, got "
                         f"{output_size!r}")
    return sizes


def _averaging_matrix(size: int, out: int) -> np.ndarray:
    """(out, size): row i averages the input positions floor(i size / out) up to
    ceil((i + 1) size / out) (exclusive), PyTorch's adaptive windows."""
    matrix = np.zeros((out, size))
    for i in range(out):
        start, end = (i * size) // out, math.ceil((i + 1) * size / out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average (N, C, H, W) or (C, H, W) input over the windows that give exactly
    output_size (an int, or (H_out, W_out) where None keeps that size)."""
    op = "adaptive_avg_pool2d"
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape "
                         f"{input.shape}")
    out_h, out_w = _adaptive_output_size(op, input, output_size)
    h, w = input.shape[-2:]
    backend = input._backend
    rows, cols = (
        Tensor._wrap(backend.asarray(_averaging_matrix(n, m), dtype=input.dtype), backend)
        for n, m in ((h, out_h), (w, out_w))
    )
    return rows @ input @ cols.T
