"""A linear layer in one parallel region each way: forward, the product and the bias +
activation; backward, the activation gradient, its column sums (the bias gradient) and the
input gradient.

Done as separate kernels (activation_grad_bias, then the products), each starts its own
parallel region, and TBB hands a region's blocks to whichever thread is free: a thread
then often reads rows the other core just wrote. MLP-2D's 512 x 128 gradient rows took
their activation-gradient pass in 75-147 us inside a training step against 30 us alone.
Here each thread takes one block of rows and keeps it: it writes gz = act'(g) for its
rows (and their column sums), then multiplies those rows by w for its rows of gx, so the
block's gz is still in its core's cache. The weight gradient gz^T @ x sums over every row:
where blas.gemm cuts that product along its depth (the rows) into the same blocks, each
thread also multiplies its block, and the partial products are added after the loop as
gemm adds them; otherwise it runs afterwards as the separate kernels run it.

Every value is computed by the same operations in the same order as the separate kernels
compute it, so the results are the same to the last bit (tests/test_cpu_kernels.py): the
same OpenBLAS calls for each row of a product, the same per-block float64 column sums. A
run is then the same run with or without these loops. Products run through OpenBLAS
single-threaded, as in blas.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .activation import (
    _NONE,
    _act,
    _kind_code,
    act_grad_block,
    activation,
    activation_grad,
    activation_grad_bias,
    bias_activation,
    column_sums,
)
from .blas import (
    _BLAS,
    _NO_TRANS,
    _ONE,
    _ONE_AT_A_TIME,
    _TRANS,
    _cblas_gemm,
    _operand,
    _swap_threads,
    add_partials,
    depth_partials,
    gemm_depth_blocks,
    gemm_row_blocks,
    matmul,
)
from ..reference.linalg import compose_linear_act, compose_linear_grads
from ._util import (PARALLEL_MIN_ELEMENTS, address, block_of, fresh, fresh_like, row_blocks,
                    serial_and_parallel)

__all__ = ["linear_act", "linear_grads"]

# Which layers take the fused loops: the hidden layers of an MLP, both widths at least
# FUSED_MIN_WIDTH and products of at most FUSED_MAX_MACS multiply-adds, cut into blocks of
# rows as blas.gemm cuts them (then each row's sums are the same OpenBLAS call's). Others
# take the separate kernels: a larger product dwarfs the elementwise pass and the start of
# a parallel region (512 x 512 x 512 ran at parity, alone), and a layer with 1-15 inputs
# or outputs (an MLP's first or last, a critic's read-out) has one product too thin to
# gain from the gradient rows staying in cache. The convolutional recipes' linear layers
# are all of those kinds, so their cold start compiles none of these loops (~1-2 s each).
FUSED_MIN_WIDTH = 16
FUSED_MAX_MACS = 1 << 26
FUSED_LINEAR = True  # False: every layer takes the separate kernels (the same results)


def _fused(rows: int, ins: int, outs: int) -> bool:
    return (FUSED_LINEAR and min(ins, outs) >= FUSED_MIN_WIDTH
            and rows * ins * outs <= FUSED_MAX_MACS)


# The elementwise part of a forward block, called from both copies (serial, parallel) of the
# loop; the backward's is activation.py's act_grad_block.


@njit(cache=True, error_model="numpy")
def _bias_act_rows(y, start, stop, bias, kind, slope, one):
    """y[r] = act(y[r] + bias) for rows start..stop-1."""
    for r in range(start, stop):
        for c in range(y.shape[1]):
            y[r, c] = _act(y[r, c] + bias[c], kind, slope, one)


def _linear_act_blocks(fn, get_threads, set_threads, x, trans_x, ldx, w, trans_w, ldw, ins,
                       bias, kind, slope, one, epilogue, y, parts, blasint_like):
    """Block p of the rows, on one thread: y[rows] = x[rows] @ w.T, then (with epilogue)
    y[rows] = act(y[rows] + bias). x and w are addresses with CBLAS transpose flags and
    leading dimensions (see blas.py), w (out, in) as stored: its transpose is the flag
    flipped."""
    rows, outs = y.shape
    item = y.itemsize
    trans_wt = _TRANS if trans_w == _NO_TRANS else _NO_TRANS
    previous = _swap_threads(get_threads, set_threads, 1)
    for p in prange(parts):
        start, stop = block_of(rows, p, parts)
        if stop == start:
            continue
        x_rows = x + start * (ldx * item if trans_x == _NO_TRANS else item)
        _cblas_gemm(fn, trans_x, trans_wt, stop - start, outs, ins, one, x_rows, ldx, w, ldw,
                    one - one, y.ctypes.data + start * outs * item, outs, blasint_like)
        if epilogue:
            _bias_act_rows(y, start, stop, bias, kind, slope, one)
    _swap_threads(get_threads, set_threads, previous)


_LINEAR_ACT_BLOCKS = serial_and_parallel(_linear_act_blocks)


def _linear_grads_blocks(fn, get_threads, set_threads, g, y, kind, slope, one, gz, sums,
                         w, trans_w, ldw, ins, gx, need_input, x, trans_x, ldx, gw, partials,
                         need_weight, blasint_like):
    """Block p of g's rows, on one thread: gz = act'(g, y) and its column sums into
    sums[p] (float64), then gx[rows] = gz[rows] @ w and, with need_weight, the block's
    part of gz^T @ x: into gw for p = 0, else into partials + (p - 1) * outs * ins entries,
    as blas.gemm's depth blocks. w, gx, x, gw and partials are addresses, w and x with a
    CBLAS transpose flag and leading dimension (see blas.py)."""
    rows, outs = g.shape
    parts = sums.shape[0]
    item = g.itemsize
    previous = _swap_threads(get_threads, set_threads, 1)
    for p in prange(parts):
        start, stop = block_of(rows, p, parts)
        act_grad_block(g, y, start, stop, kind, slope, one, gz, sums[p])
        if need_input and stop > start:
            _cblas_gemm(fn, _NO_TRANS, trans_w, stop - start, ins, outs, one,
                        gz.ctypes.data + start * outs * item, outs, w, ldw, one - one,
                        gx + start * ins * item, ins, blasint_like)
        if need_weight:
            x_rows = x + start * (ldx * item if trans_x == _NO_TRANS else item)
            into = gw if p == 0 else partials + (p - 1) * outs * ins * item
            _cblas_gemm(fn, _TRANS, trans_x, outs, ins, stop - start, one,
                        gz.ctypes.data + start * outs * item, outs, x_rows, ldx, one - one,
                        into, ins, blasint_like)
    _swap_threads(get_threads, set_threads, previous)


_LINEAR_GRADS_BLOCKS = serial_and_parallel(_linear_grads_blocks)


def linear_act(x, w, bias, kind: str, slope: float = 0.0):
    """act(x @ w.T + bias), bias (out,) or None: kernels/reference/linalg.py."""
    code = _kind_code(kind, "linear_act")
    dtype = x.dtype
    fn = _BLAS.gemm.get(dtype)
    parts = 0
    if (fn is not None and x.ndim == 2 and w.ndim == 2 and w.dtype == dtype
            and w.shape[1] == x.shape[1] and _fused(x.shape[0], x.shape[1], w.shape[0])
            and (bias is None or (bias.dtype == dtype and bias.shape == (w.shape[0],)))):
        parts = gemm_row_blocks(x.shape[0], w.shape[0], x.shape[1])  # matmul(x, w.T)'s
    if not parts:  # the layers _fused leaves out, other dtypes, or no OpenBLAS found
        return compose_linear_act(x, w, bias, kind, slope, matmul, bias_activation,
                                  activation)
    rows, ins = x.shape
    outs = w.shape[0]
    y = fresh((rows, outs), dtype)
    epilogue = bias is not None or code != _NONE
    bias = np.zeros(outs, dtype=dtype) if bias is None else np.ascontiguousarray(bias)
    x, trans_x, ldx = _operand(x)
    w, trans_w, ldw = _operand(w)
    blas = _BLAS
    with _ONE_AT_A_TIME:
        _LINEAR_ACT_BLOCKS[parts > 1](
            fn, blas.get_threads, blas.set_threads, address(x), trans_x, ldx, address(w),
            trans_w, ldw, ins, bias, code, dtype.type(slope), _ONE[dtype], epilogue, y, parts,
            blas.blasint_like)
    return y


def linear_grads(g, y, x, w, kind: str, slope: float, need_input: bool, need_weight: bool,
                 need_bias: bool = True):
    """(gx, gw, gb) of y = act(x @ w.T + b) from g = dL/dy: kernels/reference/linalg.py."""
    code = _kind_code(kind, "linear_grads")
    dtype = g.dtype
    fn = _BLAS.gemm.get(dtype)
    parts = 0
    if (fn is not None and code != _NONE and g.ndim == 2 and x.ndim == 2
            and all(a.dtype == dtype for a in (y, x, w)) and g.shape == y.shape
            and x.shape[0] == g.shape[0] and w.shape == (g.shape[1], x.shape[1])
            and g.flags.c_contiguous and y.flags.c_contiguous
            and g.size < PARALLEL_MIN_ELEMENTS and _fused(*x.shape, g.shape[1])):
        parts = row_blocks(g.size)  # activation_grad_bias's blocks, so its sums
        if need_input and gemm_row_blocks(x.shape[0], x.shape[1], g.shape[1]) != parts:
            parts = 0  # matmul(gz, w) cuts its rows otherwise
    if not parts:
        # the layers _fused leaves out, no activation (no pass to fuse), gradient rows that
        # activation_grad_bias does not sum block by block, or no OpenBLAS found
        return compose_linear_grads(g, y, x, w, kind, slope, need_input, need_weight,
                                    need_bias, matmul, activation_grad, activation_grad_bias)
    rows, outs = g.shape
    ins = x.shape[1]
    gz = fresh_like(g)
    sums = np.empty((parts, outs))
    gx = fresh((rows, ins), dtype) if need_input else None
    # the weight gradient in the loop where gemm cuts gz^T @ x into the same depth blocks
    in_loop = need_weight and parts > 1 and gemm_depth_blocks(outs, ins, rows) == parts
    gw = fresh((outs, ins), dtype) if in_loop else None
    partials = depth_partials(parts, outs, ins, dtype) if in_loop else gz
    w_kept, trans_w, ldw = _operand(w)
    x_kept, trans_x, ldx = _operand(x)
    blas = _BLAS
    with _ONE_AT_A_TIME:
        # the arrays stay referenced here while the compiled loop uses their addresses
        _LINEAR_GRADS_BLOCKS[parts > 1](
            fn, blas.get_threads, blas.set_threads, g, y, code, dtype.type(slope),
            _ONE[dtype], gz, sums, address(w_kept), trans_w, ldw, ins,
            0 if gx is None else address(gx), need_input, address(x_kept), trans_x,
            ldx, 0 if gw is None else address(gw), address(partials), in_loop,
            blas.blasint_like)
    gb = column_sums(sums, dtype) if need_bias else None
    if in_loop:
        add_partials(gw, partials)
    elif need_weight:  # after the loop, as the separate kernels run it
        gw = matmul(gz.T, x)
    return gx, gw, gb
