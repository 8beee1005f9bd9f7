"""2-D convolution kernels for the CPU: Numba builds and scatters the column matrix, BLAS
does the matrix products (on Numba's threads, see blas.py).

A convolution is one matrix product once the input is unrolled into columns (im2col):

    columns[(n, p, q), (c, i, j)] = x_padded[n, c, p*s + i*d, q*s + j*d]

    conv2d              y         = columns @ W^T       (W = w as (C_out, C_in*kH*kW))
    conv2d_weight_grad  gw        = gy^T @ columns
    conv2d_input_grad   columns'  = gy @ W, then col2im adds each column back to the
                                    input position it was read from

with y and gy as (N*H_out*W_out, C_out) matrices: the memory of a channels-last
(N, H_out, W_out, C_out) array. So the outputs are returned channels-last (an NCHW-shaped
view of NHWC memory, see _util.is_channels_last) and a gradient arriving in that layout is
used in place: no transposition pass between a product and its NCHW result.

Two layouts of the columns, chosen by measurement (benchmarks/RESULTS.md):

* channels-last, (N*H_out*W_out, kH*kW*C_in) with (i, j, c) order, from
  CHANNELS_LAST_MIN_CHANNELS input channels on (DCGAN's wide layers): every entry belongs
  to a run of C_in contiguous channels of the channels-last input, copied and added as
  vectors. Also for one channel (a grey image), whose NCHW memory is channels-last. In
  col2im each parallel task owns one sample's gradient: no atomics.
* channel-major, (C_in*kH*kW, N*H_out*W_out), for few channels (an image's 3) and
  for groups (each group is a block of rows): one (n, c) plane of an NCHW input feeds
  kH*kW rows in runs of W_out. Each (n, c) plane is a task; tasks go sample-fastest so
  that consecutive ones touch adjacent stretches of the same rows. BLAS reads these
  columns transposed, in place.

The column matrix lives in a reused workspace (see _util.workspace), built for a bounded
number of samples at a time (COLUMN_CHUNK_BYTES). A convolution whose kernel covers its
whole unpadded input (a 1x1 output, as in DCGAN's first generator layer and last
discriminator layer) is a plain dense layer: it skips the columns altogether.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .blas import gemm
from ._util import (by_size, channels_last, fresh, is_channels_last, serial_and_parallel,
                    workspace)

__all__ = ["conv2d", "conv2d_input_grad", "conv2d_weight_grad"]


# ----------------------------------------------------------------------------- loops


@njit(cache=True, inline="always", error_model="numpy")
def _valid_outputs(offset: int, stride: int, size: int, n_out: int):
    """The range [lo, hi) of output positions q whose input position q*stride + offset
    lies inside [0, size): the others read the zero padding."""
    lo = max(0, -(offset // stride))  # ceil(-offset / stride), exact for negative offsets
    hi = min(n_out, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


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


def _im2col_channels_last(x, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, columns):
    """columns[(n, p, q), (i, j, c)] = x_padded[n, p*sh + i*dh, q*sw + j*dw, c] for a
    channels-last x (N, H, W, C): each entry is part of a contiguous run of C channels.
    One task per output row (n, p)."""
    batch, height, width, channels = x.shape
    for task in prange(batch * h_out):
        n = task // h_out
        p = task - n * h_out
        if channels == 1:  # a grey image: one entry per tap, no run to loop over (3x faster)
            image = x[n]
            for q in range(w_out):
                row = columns[task * w_out + q]
                for i in range(kh):
                    ih = p * sh + i * dh - ph
                    inside = 0 <= ih < height
                    for j in range(kw):
                        iw = q * sw + j * dw - pw
                        row[i * kw + j] = image[ih, iw, 0] if inside and 0 <= iw < width else 0
            continue
        for q in range(w_out):
            row = columns[task * w_out + q]
            for i in range(kh):
                ih = p * sh + i * dh - ph
                for j in range(kw):
                    iw = q * sw + j * dw - pw
                    start = (i * kw + j) * channels
                    if 0 <= ih < height and 0 <= iw < width:
                        source = x[n, ih, iw]
                        for c in range(channels):
                            row[start + c] = source[c]
                    else:
                        for c in range(channels):
                            row[start + c] = 0


def _col2im_channels_last(columns, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, gx):
    """The adjoint of _im2col_channels_last into a channels-last gx (N, H, W, C): each task
    owns one sample, zeroes it and adds its columns back run by run."""
    batch, height, width, channels = gx.shape
    for n in prange(batch):
        image = gx[n]
        image[:, :, :] = 0
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
                        start = (i * kw + j) * channels
                        if channels == 1:  # see _im2col_channels_last
                            image[ih, iw, 0] += row[start]
                            continue
                        target = image[ih, iw]
                        for c in range(channels):
                            target[c] += row[start + c]


def _swap_inner_axes(a, out):
    """out[o, j, i] = a[o, i, j]: a weight (C_out, C, kH*kW) into the channels-last column
    order (C_out, kH*kW, C), or back. One task per output channel, whose block sits in L1
    while it is read across; NumPy's transposing copy of DCGAN-64's 512 x 256 x 4 x 4
    weight took 0.54 ms, this 0.20 ms, and back 0.72 against 0.24 ms (2 threads;
    benchmarks/RESULTS.md). One function both ways: one compilation on a cold start."""
    outs, rows, cols = a.shape
    for o in prange(outs):
        for j in range(cols):
            for i in range(rows):
                out[o, j, i] = a[o, i, j]


_SWAP_INNER_AXES = njit(cache=True, parallel=True, error_model="numpy")(_swap_inner_axes)


# Each loop in a serial and a parallel copy: columns below _util.PARALLEL_MIN_ELEMENTS
# entries are built and scattered on one thread, where waking the second costs more than
# it saves (a CycleGAN step at batch 16 is all such small convolutions).
_IM2COL = serial_and_parallel(_im2col)
_COL2IM = serial_and_parallel(_col2im)
_IM2COL_CHANNELS_LAST = serial_and_parallel(_im2col_channels_last)
_COL2IM_CHANNELS_LAST = serial_and_parallel(_col2im_channels_last)


# ----------------------------------------------------------------------------- helpers

# The column matrix is built for as many samples at a time as fit in this many bytes: it
# bounds the workspace (a 64-sample DCGAN-64 layer would need 64 MB at once) and keeps the
# columns in the 32 MB last-level cache between the column build, the product and the
# scatter. With channels-last columns, forward + both gradients of DCGAN-28's two big
# layers at batch 128 took 29.3 and 101.5 ms with 8 MB chunks against 31.5 and 107.9 ms
# with 32 MB (4 MB: 28.9 and 105.7; batch 64 the same within 2% for every size).
COLUMN_CHUNK_BYTES = 8 << 20


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


# A 1-channel convolution's columns go parallel from this many entries on, below the
# general threshold: DCGAN-28's 1-channel layers at batch 64 (200K entries each) then run
# the parallel copies that its wide layers compile anyway, instead of compiling the serial
# ones too (two functions, about a second of a cold start); at that size the parallel
# copy is no slower (benchmarks/RESULTS.md).
ONE_CHANNEL_PARALLEL_MIN_ENTRIES = 1 << 17


def _batch_chunks(batch: int, column_entries: int, itemsize: int):
    """(start, stop) ranges of samples whose columns (column_entries per sample) fit in
    COLUMN_CHUNK_BYTES, as equal in size as possible: a short last chunk makes a product
    with few rows, which BLAS runs at a lower rate (4 of 64 samples of DCGAN-28's 7->14
    layer: 155-164 GFLOP/s against 181-194 for the 20-sample chunks before it)."""
    per_chunk = max(1, COLUMN_CHUNK_BYTES // max(1, column_entries * itemsize))
    count = -(-batch // per_chunk)
    bounds = [batch * k // count for k in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


class _Geometry:
    """Shapes and loop arguments of one convolution, and which column layout it uses."""

    def __init__(self, x_shape, w_shape, out_hw, stride, padding, dilation, groups):
        self.batch, self.c_in, self.height, self.width = x_shape
        self.c_out, c_group, self.kh, self.kw = w_shape
        self.h_out, self.w_out = out_hw
        self.plane = self.h_out * self.w_out
        self.k = self.c_in * self.kh * self.kw  # column length, all groups
        self.groups = groups
        # one input channel: the NCHW memory is channels-last already, and the two column
        # layouts are each other's transpose; the channels-last loops then serve 1-channel
        # images too, and a run on 1-channel images compiles no channel-major loop
        # (2 functions, ~1.1 s of a cold start; benchmarks/RESULTS.md).
        self.channels_last = groups == 1 and (self.c_in >= CHANNELS_LAST_MIN_CHANNELS
                                              or self.c_in == 1)
        self.loop_args = (self.kh, self.kw, *stride, *padding, *dilation, self.h_out,
                          self.w_out)

    def weight_rows(self, w) -> np.ndarray:
        """w as (C_out, K) with K in the column order: (c, i, j), or (i, j, c) channels-last."""
        return _weight_rows(w, self.channels_last)

    def weight_from_rows(self, rows) -> np.ndarray:
        shape = (self.c_out, self.c_in // self.groups, self.kh, self.kw)
        return _weight_from_rows(rows, shape, self.channels_last)

    def source(self, x) -> np.ndarray:
        """x as the column builder reads it: (N, H, W, C) channels-last, or NCHW."""
        return channels_last(x) if self.channels_last else np.ascontiguousarray(x)

    def chunks(self, itemsize: int):
        return _batch_chunks(self.batch, self.k * self.plane, itemsize)

    def groups_of(self):
        """(rows of the channel-major columns, output channels) of each group, as slices."""
        k, o = self.k // self.groups, self.c_out // self.groups
        return [(slice(g * k, (g + 1) * k), slice(g * o, (g + 1) * o))
                for g in range(self.groups)]

    def loop(self, pair, entries: int):
        """The serial or parallel copy of a channels-last column loop for `entries`."""
        if self.c_in == 1 and entries >= ONE_CHANNEL_PARALLEL_MIN_ENTRIES:
            return pair[1]
        return by_size(pair, entries)

    def columns(self, source_chunk) -> np.ndarray:
        """The columns of a chunk of samples: (n*P, K) channels-last or (K, n*P)."""
        count = source_chunk.shape[0]
        if self.channels_last:
            columns = workspace("conv.columns", (count * self.plane, self.k), source_chunk.dtype)
            self.loop(_IM2COL_CHANNELS_LAST, columns.size)(source_chunk, *self.loop_args, columns)
        else:
            columns = workspace("conv.columns", (self.k, count * self.plane), source_chunk.dtype)
            by_size(_IM2COL, columns.size)(source_chunk, *self.loop_args, columns)
        return columns


def _gradient_rows(gy) -> np.ndarray:
    """gy (N, C_out, H_out, W_out) as the (N*H_out*W_out, C_out) matrix of its channels-last
    memory (a view when gy is channels-last already)."""
    return channels_last(gy).reshape(-1, gy.shape[1])


def _weight_rows(w, channels_last_order: bool) -> np.ndarray:
    """w (C_out, C, kH, kW) as (C_out, K): K in (i, j, c) order (a copy) or (c, i, j)."""
    c_out, c, kh, kw = w.shape
    if not channels_last_order:
        return w.reshape(c_out, -1)
    if c == 1 or kh * kw == 1:  # the two orders are the same
        return np.ascontiguousarray(w).reshape(c_out, -1)
    rows = fresh((c_out, kh * kw, c), w.dtype)
    _SWAP_INNER_AXES(np.ascontiguousarray(w).reshape(c_out, c, kh * kw), rows)
    return rows.reshape(c_out, -1)


def _weight_from_rows(rows, shape, channels_last_order: bool) -> np.ndarray:
    """The inverse of _weight_rows: (C_out, K) rows back to a contiguous w of `shape`."""
    c_out, c, kh, kw = shape
    if not channels_last_order or c == 1 or kh * kw == 1:
        return np.ascontiguousarray(rows).reshape(shape)
    w = fresh(shape, rows.dtype)
    _SWAP_INNER_AXES(np.ascontiguousarray(rows).reshape(c_out, kh * kw, c),
                     w.reshape(c_out, c, kh * kw))
    return w


def _dense_rows(x, c_out: int):
    """x (N, C, kH, kW) of a dense conv as (N, K), and whether K runs in channels-last
    (i, j, c) order rather than (c, i, j). A channels-last x is used in place when putting
    the weight in its order (a copy of C_out * K entries) is cheaper than transposing x
    (N * K entries); see _weight_rows."""
    n = x.shape[0]
    if is_channels_last(x) and c_out <= n:
        return x.transpose(0, 2, 3, 1).reshape(n, -1), True
    return np.ascontiguousarray(x).reshape(n, -1), False


# ----------------------------------------------------------------------------- kernels


def conv2d(x, w, stride, padding, dilation, groups):
    """y[n, o, p, q] = sum over c, i, j of w[o, c, i, j] * x_padded[n, c, p*s + i*d, q*s + j*d]
    (c running over the group of channel o). y is returned channels-last."""
    w = np.ascontiguousarray(w, dtype=x.dtype)
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = w.shape
    if _is_dense((height, width), (kh, kw), padding, dilation, groups):
        x_rows, order = _dense_rows(x, c_out)
        return gemm(x_rows, _weight_rows(w, order).T).reshape(n, c_out, 1, 1)
    out_hw = tuple(_output_size(size, k, s, p, d) for size, k, s, p, d in
                   zip((height, width), (kh, kw), stride, padding, dilation))
    geo = _Geometry(x.shape, w.shape, out_hw, stride, padding, dilation, groups)
    weights = geo.weight_rows(w)
    source = geo.source(x)
    y = fresh((n, *out_hw, c_out), x.dtype)
    y_rows = y.reshape(n * geo.plane, c_out)
    for start, stop in geo.chunks(x.itemsize):
        columns = geo.columns(source[start:stop])
        out = y_rows[start * geo.plane : stop * geo.plane]
        if geo.channels_last:
            gemm(columns, weights.T, out=out)
        elif groups == 1:
            gemm(columns.T, weights.T, out=out)
        else:  # each group's output channels are a block of columns of y
            for rows, channels in geo.groups_of():
                gemm(columns[rows].T, weights[channels].T, out=out[:, channels])
    return y.transpose(0, 3, 1, 2)


def conv2d_input_grad(gy, w, input_hw, stride, padding, dilation, groups):
    """The adjoint of conv2d in x (conv_transpose2d's forward): each column of gy @ W is
    added back to the input positions it was read from. Input rows that no window reached
    get zero. gx is channels-last when the columns are."""
    w = np.ascontiguousarray(w, dtype=gy.dtype)
    n, c_out, h_out, w_out = gy.shape
    _, c_group, kh, kw = w.shape
    c_in = c_group * groups
    if (h_out, w_out) == (1, 1) and _is_dense(input_hw, (kh, kw), padding, dilation, groups):
        gy_rows = np.ascontiguousarray(gy).reshape(n, c_out)
        # channels-last like the other conv results, so that the batch norm, activation
        # and conv downstream read it in place: it takes the weight rows in (i, j, c)
        # order, a copy of C_out * K entries, even where that is more than the N * K of
        # one transposition of gx, since an NCHW gx is transposed by several of the ops
        # downstream. DCGAN-28 at batch 64 (C_out = 100 > N): 157 against 162 ms an
        # iteration (benchmarks.ab, 8 processes each; benchmarks/RESULTS.md).
        if c_in >= CHANNELS_LAST_MIN_CHANNELS:
            gx = gemm(gy_rows, _weight_rows(w, True))
            return gx.reshape(n, kh, kw, c_in).transpose(0, 3, 1, 2)
        return gemm(gy_rows, w.reshape(c_out, -1)).reshape(n, c_in, kh, kw)
    geo = _Geometry((n, c_in, *input_hw), w.shape, (h_out, w_out), stride, padding, dilation,
                    groups)
    weights = geo.weight_rows(w)
    gy_rows = _gradient_rows(gy)
    if geo.channels_last:
        gx = fresh((n, *input_hw, c_in), gy.dtype)
    else:
        gx = fresh((n, c_in, *input_hw), gy.dtype)
    for start, stop in geo.chunks(gy.itemsize):
        count = stop - start
        gy_chunk = gy_rows[start * geo.plane : stop * geo.plane]
        if geo.channels_last:
            columns = workspace("conv.columns", (count * geo.plane, geo.k), gy.dtype)
            gemm(gy_chunk, weights, out=columns)
            geo.loop(_COL2IM_CHANNELS_LAST, columns.size)(columns, *geo.loop_args,
                                                         gx[start:stop])
        else:
            columns = workspace("conv.columns", (geo.k, count * geo.plane), gy.dtype)
            for rows, channels in geo.groups_of():
                gemm(weights[channels].T, gy_chunk[:, channels].T, out=columns[rows])
            by_size(_COL2IM, columns.size)(columns, *geo.loop_args, gx[start:stop])
    return gx.transpose(0, 3, 1, 2) if geo.channels_last else gx


def conv2d_weight_grad(x, gy, kernel_hw, stride, padding, dilation, groups):
    """The adjoint of conv2d in w: gw = gy^T @ columns(x), summed over batch chunks."""
    n, c_in, height, width = x.shape
    _, c_out, h_out, w_out = gy.shape
    kh, kw = kernel_hw
    gy = gy.astype(x.dtype, copy=False)
    if (h_out, w_out) == (1, 1) and _is_dense((height, width), kernel_hw, padding, dilation,
                                              groups):
        x_rows, order = _dense_rows(x, c_out)
        gw = gemm(np.ascontiguousarray(gy).reshape(n, c_out).T, x_rows)
        return _weight_from_rows(gw, (c_out, c_in, kh, kw), order)
    # the windows are those of gy's size: an adjoint's gy may be smaller than conv2d(x)
    geo = _Geometry(x.shape, (c_out, c_in // groups, kh, kw), (h_out, w_out), stride, padding,
                    dilation, groups)
    source = geo.source(x)
    gy_rows = _gradient_rows(gy)
    rows = fresh((c_out, geo.k // groups), x.dtype)
    for start, stop in geo.chunks(x.itemsize):
        columns = geo.columns(source[start:stop])
        gy_chunk = gy_rows[start * geo.plane : stop * geo.plane]
        later = start > 0  # the chunks after the first add their product to rows
        if geo.channels_last:
            gemm(gy_chunk.T, columns, out=rows, accumulate=later)
        else:
            for k_rows, channels in geo.groups_of():
                gemm(gy_chunk[:, channels].T, columns[k_rows].T, out=rows[channels],
                     accumulate=later)
    return geo.weight_from_rows(rows)
