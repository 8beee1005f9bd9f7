"""2-D convolution kernels for the CPU: Numba builds and scatters the column matrix, BLAS
does the matrix products.

A convolution is one matrix product once the input is unrolled into columns (im2col):

    columns[(c, i, j), (n, p, q)] = x_padded[n, c, p*s + i*d, q*s + j*d]

    conv2d              y^T       = W @ columns              (W = w as (C_out, C_in*kH*kW))
    conv2d_weight_grad  gw        = gy^T @ columns^T
    conv2d_input_grad   columns'  = W^T @ gy^T, then col2im adds each column back to the
                                    input position it was read from

with gy^T the gradient as (C_out, N*H_out*W_out). The products come out as
(C_out, N, H_out*W_out); one parallel pass swaps the leading two axes into NCHW.

Two layouts of the columns, chosen by measurement (benchmarks/RESULTS.md):

* channels-last, (N*H_out*W_out, kH*kW*C_in), from CHANNELS_LAST_MIN_CHANNELS input
  channels on (DCGAN's wide layers): every entry belongs to a run of C_in contiguous
  channels, copied and added as vectors. Each parallel task takes one sample, turns it
  channels-last in a private buffer that stays in cache, and in col2im owns that
  sample's gradient, so the scatter needs no atomics.
* channel-major, (C_in*kH*kW, N*H_out*W_out), for few channels (an image's 1 or 3) and
  for groups (each group is a block of rows): one (n, c) image plane feeds kH*kW rows in
  runs of W_out. Each (n, c) plane is a task; tasks go sample-fastest so that
  consecutive ones touch adjacent stretches of the same rows.

The column matrix lives in a reused workspace (see _util.workspace), built for a bounded
number of samples at a time (COLUMN_CHUNK_BYTES). A convolution whose kernel covers its
whole unpadded input (a 1x1 output, as in DCGAN's first generator layer and last
discriminator layer) is a plain dense layer: it skips the columns altogether.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._util import workspace

__all__ = ["conv2d", "conv2d_input_grad", "conv2d_weight_grad"]


# ----------------------------------------------------------------------------- loops


@njit(cache=True, inline="always", error_model="numpy")
def _valid_outputs(offset: int, stride: int, size: int, n_out: int):
    """The range [lo, hi) of output positions q whose input position q*stride + offset
    lies inside [0, size): the others read the zero padding."""
    lo = max(0, -(offset // stride))  # ceil(-offset / stride), exact for negative offsets
    hi = min(n_out, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


@njit(parallel=True, cache=True, error_model="numpy")
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, columns):
    """columns[(c, i, j), (n, p, q)] = x_padded[n, c, p*sh + i*dh, q*sw + j*dw]."""
    batch, channels, height, width = x.shape
    plane = h_out * w_out
    for task in prange(batch * channels):
        c = task // batch
        n = task - c * batch
        image = x[n, c]
        for i in range(kh):
            row_offset = i * dh - ph
            for j in range(kw):
                col_offset = j * dw - pw
                lo, hi = _valid_outputs(col_offset, sw, width, w_out)
                target = columns[(c * kh + i) * kw + j, n * plane : (n + 1) * plane]
                for p in range(h_out):
                    out = target[p * w_out : (p + 1) * w_out]
                    ih = p * sh + row_offset
                    if ih < 0 or ih >= height:
                        out[:] = 0
                        continue
                    source = image[ih]
                    out[:lo] = 0
                    for q in range(lo, hi):
                        out[q] = source[q * sw + col_offset]
                    out[hi:] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def _col2im(columns, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, gx):
    """The adjoint of _im2col: gx[n, c, ih, iw] = sum of the columns entries read from it.
    Task (n, c) owns the plane gx[n, c], so the parallel scatter has no write conflicts."""
    batch, channels, height, width = gx.shape
    plane = h_out * w_out
    for task in prange(batch * channels):
        c = task // batch
        n = task - c * batch
        image = gx[n, c]
        image[:, :] = 0
        for i in range(kh):
            row_offset = i * dh - ph
            for j in range(kw):
                col_offset = j * dw - pw
                lo, hi = _valid_outputs(col_offset, sw, width, w_out)
                source = columns[(c * kh + i) * kw + j, n * plane : (n + 1) * plane]
                for p in range(h_out):
                    ih = p * sh + row_offset
                    if ih < 0 or ih >= height:
                        continue
                    target = image[ih]
                    start = p * w_out
                    for q in range(lo, hi):
                        target[q * sw + col_offset] += source[start + q]


@njit(parallel=True, cache=True, error_model="numpy")
def _swap_leading_axes(a, out):
    """out[j, i, :] = a[i, j, :]: (C_out, N, HW) products to NCHW, and NCHW to (C, N, HW)."""
    first, second, inner = a.shape
    for task in prange(first * second):
        i = task // second
        j = task - i * second
        for k in range(inner):
            out[j, i, k] = a[i, j, k]


@njit(parallel=True, cache=True, error_model="numpy")
def _im2col_channels_last(x, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, columns):
    """columns[(n, p, q), (i, j, c)] = x_padded[n, c, p*sh + i*dh, q*sw + j*dw].

    Each task turns one sample channels-last in a private buffer (it stays in the L2
    cache), then copies every entry as part of a contiguous run of C channels."""
    batch, channels, height, width = x.shape
    for n in prange(batch):
        image = np.empty((height, width, channels), dtype=x.dtype)
        for c in range(channels):
            for h in range(height):
                for w in range(width):
                    image[h, w, c] = x[n, c, h, w]
        for p in range(h_out):
            for q in range(w_out):
                row = columns[(n * h_out + p) * w_out + q]
                for i in range(kh):
                    ih = p * sh + i * dh - ph
                    for j in range(kw):
                        iw = q * sw + j * dw - pw
                        start = (i * kw + j) * channels
                        if 0 <= ih < height and 0 <= iw < width:
                            source = image[ih, iw]
                            for c in range(channels):
                                row[start + c] = source[c]
                        else:
                            for c in range(channels):
                                row[start + c] = 0


@njit(parallel=True, cache=True, error_model="numpy")
def _col2im_channels_last(columns, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, gx):
    """The adjoint of _im2col_channels_last: each task adds one sample's columns into a
    private channels-last buffer, run by run, then writes it to gx[n] in NCHW."""
    batch, channels, height, width = gx.shape
    for n in prange(batch):
        image = np.zeros((height, width, channels), dtype=gx.dtype)
        for p in range(h_out):
            for q in range(w_out):
                row = columns[(n * h_out + p) * w_out + q]
                for i in range(kh):
                    ih = p * sh + i * dh - ph
                    if ih < 0 or ih >= height:
                        continue
                    for j in range(kw):
                        iw = q * sw + j * dw - pw
                        if iw < 0 or iw >= width:
                            continue
                        target = image[ih, iw]
                        start = (i * kw + j) * channels
                        for c in range(channels):
                            target[c] += row[start + c]
        for c in range(channels):
            for h in range(height):
                for w in range(width):
                    gx[n, c, h, w] = image[h, w, c]


# ----------------------------------------------------------------------------- helpers

# The column matrix is built for as many samples at a time as fit in this many bytes: it
# bounds the workspace (a 64-sample DCGAN-64 layer would need 64 MB at once) and keeps the
# columns near the 32 MB last-level cache between the column build, the product and the
# scatter. Smaller chunks mean more, smaller products and more parallel regions, which
# cost more than they save here (benchmarks/RESULTS.md).
COLUMN_CHUNK_BYTES = 32 << 20


def _output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _is_dense(input_hw, kernel_hw, padding, dilation, groups) -> bool:
    """True when the kernel covers the whole unpadded input once: a 1x1 output that reads
    every input element exactly once, so the convolution is a dense matrix product."""
    return (
        groups == 1
        and tuple(input_hw) == tuple(kernel_hw)
        and tuple(padding) == (0, 0)
        and (dilation[0] == 1 or kernel_hw[0] == 1)
        and (dilation[1] == 1 or kernel_hw[1] == 1)
    )


# From this many input channels on (and without groups) the columns are channels-last:
# runs of C contiguous channels copy as vectors, where channel-major runs are only W_out
# long (7 in DCGAN's middle layers). The col2im of DCGAN-28's 7->14 layer (batch 64) took
# 8.5 ms channel-major against 1.9 ms channels-last (RESULTS.md).
CHANNELS_LAST_MIN_CHANNELS = 8


def _batch_chunks(batch: int, column_entries: int, itemsize: int):
    """(start, stop) ranges of samples whose columns (column_entries per sample) fit in
    COLUMN_CHUNK_BYTES."""
    step = max(1, COLUMN_CHUNK_BYTES // max(1, column_entries * itemsize))
    return [(start, min(batch, start + step)) for start in range(0, batch, step)]


def _matmul_per_group(a, b, out, groups: int, transpose_a=False, transpose_b=False) -> None:
    """For each group g: out_g = a_g @ b_g, where x_g is the g-th of `groups` equal blocks of
    rows of x, transposed first where asked (BLAS reads transposed views in place)."""
    ra, rb, ro = a.shape[0] // groups, b.shape[0] // groups, out.shape[0] // groups
    for g in range(groups):
        a_g, b_g = a[g * ra : (g + 1) * ra], b[g * rb : (g + 1) * rb]
        np.matmul(a_g.T if transpose_a else a_g, b_g.T if transpose_b else b_g,
                  out=out[g * ro : (g + 1) * ro])


class _Geometry:
    """Shapes and loop arguments of one convolution, and which column layout it uses."""

    def __init__(self, x_shape, w_shape, out_hw, stride, padding, dilation, groups):
        self.batch, self.c_in, self.height, self.width = x_shape
        self.c_out, c_group, self.kh, self.kw = w_shape
        self.h_out, self.w_out = out_hw
        self.plane = self.h_out * self.w_out
        self.k = self.c_in * self.kh * self.kw  # column length, all groups
        self.groups = groups
        self.channels_last = groups == 1 and self.c_in >= CHANNELS_LAST_MIN_CHANNELS
        self.loop_args = (self.kh, self.kw, *stride, *padding, *dilation, self.h_out,
                          self.w_out)

    def weight_rows(self, w) -> np.ndarray:
        """w as (C_out, K) with K in the column order: (c, i, j), or (i, j, c) channels-last."""
        if self.channels_last:
            return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(self.c_out, self.k)
        return w.reshape(self.c_out, -1)

    def weight_from_rows(self, rows) -> np.ndarray:
        if self.channels_last:
            blocks = rows.reshape(self.c_out, self.kh, self.kw, self.c_in)
            return np.ascontiguousarray(blocks.transpose(0, 3, 1, 2))
        return rows.reshape(self.c_out, self.c_in // self.groups, self.kh, self.kw)

    def chunks(self, itemsize: int):
        return _batch_chunks(self.batch, self.k * self.plane, itemsize)

    def columns(self, x_chunk) -> np.ndarray:
        """The columns of a chunk of samples: (K, n*P) channel-major or (n*P, K)."""
        count = x_chunk.shape[0]
        if self.channels_last:
            columns = workspace("conv.columns", (count * self.plane, self.k), x_chunk.dtype)
            _im2col_channels_last(x_chunk, *self.loop_args, columns)
        else:
            columns = workspace("conv.columns", (self.k, count * self.plane), x_chunk.dtype)
            _im2col(x_chunk, *self.loop_args, columns)
        return columns

    def gradient_rows(self, gy_chunk) -> np.ndarray:
        """gy (n, C_out, H_out, W_out) as (C_out, n*P), the layout of the products."""
        count = gy_chunk.shape[0]
        rows = workspace("conv.rows", (self.c_out, count * self.plane), gy_chunk.dtype)
        _swap_leading_axes(gy_chunk.reshape(count, self.c_out, self.plane),
                           rows.reshape(self.c_out, count, self.plane))
        return rows


# ----------------------------------------------------------------------------- kernels


def conv2d(x, w, stride, padding, dilation, groups):
    """y[n, o, p, q] = sum over c, i, j of w[o, c, i, j] * x_padded[n, c, p*s + i*d, q*s + j*d]
    (c running over the group of channel o)."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = w.shape
    if _is_dense((height, width), (kh, kw), padding, dilation, groups):
        return (x.reshape(n, -1) @ w.reshape(c_out, -1).T).reshape(n, c_out, 1, 1)
    out_hw = tuple(_output_size(size, k, s, p, d) for size, k, s, p, d in
                   zip((height, width), (kh, kw), stride, padding, dilation))
    geo = _Geometry(x.shape, w.shape, out_hw, stride, padding, dilation, groups)
    weights = geo.weight_rows(w)
    y = np.empty((n, c_out, *out_hw), dtype=x.dtype)
    for start, stop in geo.chunks(x.itemsize):
        count = stop - start
        columns = geo.columns(x[start:stop])
        # y^T = W @ columns, as (C_out, samples, H_out*W_out), then swapped into NCHW
        products = workspace("conv.rows", (c_out, count * geo.plane), x.dtype)
        if geo.channels_last:
            np.matmul(weights, columns.T, out=products)
        else:
            _matmul_per_group(weights, columns, products, groups)
        _swap_leading_axes(products.reshape(c_out, count, geo.plane),
                           y[start:stop].reshape(count, c_out, geo.plane))
    return y


def conv2d_input_grad(gy, w, input_hw, stride, padding, dilation, groups):
    """The adjoint of conv2d in x (conv_transpose2d's forward): each column of W^T @ gy^T
    is added back to the input positions it was read from. Input rows that no window
    reached get zero."""
    gy = np.ascontiguousarray(gy)
    w = np.ascontiguousarray(w, dtype=gy.dtype)
    n, c_out, h_out, w_out = gy.shape
    _, c_group, kh, kw = w.shape
    c_in = c_group * groups
    if (h_out, w_out) == (1, 1) and _is_dense(input_hw, (kh, kw), padding, dilation, groups):
        return (gy.reshape(n, c_out) @ w.reshape(c_out, -1)).reshape(n, c_in, kh, kw)
    geo = _Geometry((n, c_in, *input_hw), w.shape, (h_out, w_out), stride, padding, dilation,
                    groups)
    weights = geo.weight_rows(w)
    gx = np.empty((n, c_in, *input_hw), dtype=gy.dtype)
    for start, stop in geo.chunks(gy.itemsize):
        count = stop - start
        gy_rows = geo.gradient_rows(gy[start:stop])
        if geo.channels_last:
            columns = workspace("conv.columns", (count * geo.plane, geo.k), gy.dtype)
            np.matmul(gy_rows.T, weights, out=columns)
            _col2im_channels_last(columns, *geo.loop_args, gx[start:stop])
        else:
            columns = workspace("conv.columns", (geo.k, count * geo.plane), gy.dtype)
            _matmul_per_group(weights, gy_rows, columns, groups, transpose_a=True)
            _col2im(columns, *geo.loop_args, gx[start:stop])
    return gx


def conv2d_weight_grad(x, gy, kernel_hw, stride, padding, dilation, groups):
    """The adjoint of conv2d in w: gw = gy^T @ columns(x)^T, summed over batch chunks."""
    x = np.ascontiguousarray(x)
    gy = np.ascontiguousarray(gy, dtype=x.dtype)
    n, c_in, height, width = x.shape
    _, c_out, h_out, w_out = gy.shape
    kh, kw = kernel_hw
    if (h_out, w_out) == (1, 1) and _is_dense((height, width), kernel_hw, padding, dilation,
                                              groups):
        gw = gy.reshape(n, c_out).T @ x.reshape(n, -1)
        return gw.reshape(c_out, c_in, kh, kw)
    # the windows are those of gy's size: an adjoint's gy may be smaller than conv2d(x)
    geo = _Geometry(x.shape, (c_out, c_in // groups, kh, kw), (h_out, w_out), stride, padding,
                    dilation, groups)
    rows = np.empty((c_out, geo.k // groups), dtype=x.dtype)
    for start, stop in geo.chunks(x.itemsize):
        columns = geo.columns(x[start:stop])
        gy_rows = geo.gradient_rows(gy[start:stop])
        target = rows if start == 0 else workspace("conv.partial", rows.shape, x.dtype)
        if geo.channels_last:
            np.matmul(gy_rows, columns, out=target)
        else:
            _matmul_per_group(gy_rows, columns, target, groups, transpose_b=True)
        if start > 0:
            rows += target
    return geo.weight_from_rows(rows)
