"""CUDA 2-D convolution: im2col / col2im kernels around cuBLAS matrix products.

Same names, signatures and semantics as kernels/reference/conv.py. A convolution is one
matrix product once the input windows are laid out as columns:

    cols[g, k, n, l]   k = (c, i, j): channel c of group g, kernel tap (i, j)
                       l = (p, q):    output position
                     = x_padded[n, g*C/G + c, p*s + i*d, q*s + j*d]

    conv2d              y_g   = w_g (C_out/G, K)  @ cols_g (K, N*L)       then to NCHW
    conv2d_input_grad   dcols = w_g^T (K, C_out/G) @ gy_g (C_out/G, N*L), then col2im
    conv2d_weight_grad  gw_g  = gy_g (C_out/G, N*L) @ cols_g^T (N*L, K)

with K = C_in/G * kH * kW and L = H_out * W_out. The matrix products are the array
module's matmul (cuBLAS on CuPy); the kernels below only move data. Putting (n, l) last
makes one GEMM per group cover the whole batch, at the price of a transpose of y / gy
between (G, C_out/G, N, L) and NCHW, which is small next to the GEMM.

col2im is written as a gather: each thread owns one input pixel and sums the column
entries that read it, so no two threads write the same address and no atomics are needed
(the result is deterministic).
"""

from __future__ import annotations

from numba import cuda

from ..reference._util import array_module
from ._launch import elementwise_grid, launch

__all__ = ["conv2d", "conv2d_input_grad", "conv2d_weight_grad"]


@cuda.jit(cache=True)
def _im2col_kernel(x, cols, kh, kw, out_w, sh, sw, ph, pw, dh, dw):
    """cols[g, k, n, l] = the padded-input value that weight row k meets at position l.

    One thread per (input channel, n, l) writes that window's kH*kW rows: the index
    arithmetic (integer divisions are slow on a GPU) is paid once per window, and
    consecutive threads still write consecutive positions l (coalesced)."""
    batch, positions = cols.shape[2], cols.shape[3]
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    c_group = channels // cols.shape[0]
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for index in range(start, channels * batch * positions, stride):
        l = index % positions
        rest = index // positions
        n = rest % batch
        channel = rest // batch
        g, row = channel // c_group, (channel % c_group) * kh * kw
        top = (l // out_w) * sh - ph
        left = (l % out_w) * sw - pw
        for i in range(kh):
            h = top + i * dh
            for j in range(kw):
                w = left + j * dw
                if 0 <= h < height and 0 <= w < width:
                    cols[g, row, n, l] = x[n, channel, h, w]
                else:
                    cols[g, row, n, l] = 0
                row += 1


@cuda.jit(cache=True)
def _col2im_kernel(cols, gx, kh, kw, out_h, out_w, sh, sw, ph, pw, dh, dw):
    """gx[n, c, h, w] = sum of the column entries im2col copied from (n, c, h, w)."""
    batch, channels, height, width = gx.shape
    c_group = cols.shape[1] // (kh * kw)
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for index in range(start, gx.size, stride):
        w = index % width
        rest = index // width
        h = rest % height
        rest //= height
        c = rest % channels
        n = rest // channels
        g, c_in_group = c // c_group, c % c_group
        total = 0.0
        for i in range(kh):
            # tap i reads row h from output row p when p*s - pad + i*d == h
            t = h + ph - i * dh
            if t < 0 or t % sh != 0 or t // sh >= out_h:
                continue
            p = t // sh
            for j in range(kw):
                u = w + pw - j * dw
                if u < 0 or u % sw != 0 or u // sw >= out_w:
                    continue
                total += cols[g, (c_in_group * kh + i) * kw + j, n, p * out_w + u // sw]
        gx[n, c, h, w] = total


def _output_hw(input_hw, kernel_hw, stride, padding, dilation) -> tuple[int, int]:
    return tuple(
        (size + 2 * pad - dil * (k - 1) - 1) // s + 1
        for size, k, s, pad, dil in zip(input_hw, kernel_hw, stride, padding, dilation)
    )


def _im2col(x, kernel_hw, out_hw, stride, padding, dilation, groups):
    """The (G, K, N, L) column matrix of x."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    n, c_in = x.shape[:2]
    kh, kw = kernel_hw
    rows = c_in // groups * kh * kw
    cols = xp.empty((groups, rows, n, out_hw[0] * out_hw[1]), dtype=x.dtype)
    launch(
        _im2col_kernel, elementwise_grid(c_in * n * cols.shape[3]), "conv2d (im2col)",
        x, cols, kh, kw, out_hw[1], *stride, *padding, *dilation,
    )
    return cols


def _grouped_matmul(a, b, out):
    """out[g] = a[g] @ b[g] for each group: plain 2-D GEMMs, which cuBLAS takes with
    transposed operands (a .T view) and no copy."""
    xp = array_module(out)
    for g in range(out.shape[0]):
        xp.matmul(a[g], b[g], out=out[g])
    return out


def _channel_major(gy, groups):
    """gy (N, C_out, H', W') as (G, C_out/G, N*L), contiguous: the GEMMs' layout."""
    xp = array_module(gy)
    n, c_out, out_h, out_w = gy.shape
    grouped = gy.reshape(n, groups, c_out // groups, out_h * out_w).transpose(1, 2, 0, 3)
    return xp.ascontiguousarray(grouped).reshape(groups, c_out // groups, n * out_h * out_w)


def conv2d(x, w, stride, padding, dilation, groups):
    """y (N, C_out, H_out, W_out): the cross-correlation of x with w, as in PyTorch."""
    xp = array_module(x)
    n = x.shape[0]
    c_out, c_group, kh, kw = w.shape
    out_h, out_w = _output_hw(x.shape[2:], (kh, kw), stride, padding, dilation)
    cols = _im2col(x, (kh, kw), (out_h, out_w), stride, padding, dilation, groups)
    rows = cols.shape[1]
    w_groups = xp.ascontiguousarray(w).reshape(groups, c_out // groups, rows)
    y = xp.empty((groups, c_out // groups, n * out_h * out_w), dtype=x.dtype)
    _grouped_matmul(w_groups, cols.reshape(groups, rows, -1), y)
    y = y.reshape(c_out, n, out_h, out_w).transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(y)


def conv2d_input_grad(gy, w, input_hw, stride, padding, dilation, groups):
    """gx (N, C_in, H, W) with (H, W) = input_hw: the adjoint of conv2d in x."""
    xp = array_module(gy)
    n, c_out, out_h, out_w = gy.shape
    _, c_group, kh, kw = w.shape
    rows = c_group * kh * kw
    w_groups = xp.ascontiguousarray(w).reshape(groups, c_out // groups, rows)
    dcols = xp.empty((groups, rows, n * out_h * out_w), dtype=gy.dtype)
    _grouped_matmul(w_groups.transpose(0, 2, 1), _channel_major(gy, groups), dcols)
    gx = xp.empty((n, c_group * groups, *input_hw), dtype=gy.dtype)
    launch(
        _col2im_kernel, elementwise_grid(gx.size), "conv2d_input_grad (col2im)",
        dcols.reshape(groups, rows, n, out_h * out_w), gx, kh, kw, out_h, out_w,
        *stride, *padding, *dilation,
    )
    return gx


def conv2d_weight_grad(x, gy, kernel_hw, stride, padding, dilation, groups):
    """gw (C_out, C_in/G, kH, kW): the adjoint of conv2d in w."""
    xp = array_module(x)
    c_out, out_h, out_w = gy.shape[1:]
    kh, kw = kernel_hw
    cols = _im2col(x, kernel_hw, (out_h, out_w), stride, padding, dilation, groups)
    rows = cols.shape[1]
    gw = xp.empty((groups, c_out // groups, rows), dtype=x.dtype)
    cols_t = cols.reshape(groups, rows, -1).transpose(0, 2, 1)  # a view: cuBLAS transposes
    _grouped_matmul(_channel_major(gy, groups), cols_t, gw)
    return gw.reshape(c_out, rows // (kh * kw), kh, kw)
