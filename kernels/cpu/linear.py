"""A linear layer in one parallel region each way: forward, the product and the bias +
activation; backward, the activation gradient, bias gradient, input gradient and weight
gradient.

Done as three kernels (activation_grad_bias, then two products), each starts its own
parallel region, and TBB hands a region's blocks to whichever thread is free: a thread
then often reads rows the other core just wrote. MLP-2D's 512 x 128 gradient rows took
their activation-gradient pass in 75-147 us inside a training step against 30 us alone.
Here each thread takes one block of rows and keeps it: it writes gz = act'(g) for its
rows (and their column sums), multiplies those rows by w for its rows of gx, and
multiplies their transpose by its rows of x for a partial weight gradient; the partials
are added at the end (one (out, in) sum per extra thread). The block's gz never leaves
its core's cache. Products run through OpenBLAS single-threaded, as in blas.py.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .activation import (
    _NONE,
    _act,
    _act_grad,
    _kind_code,
    activation,
    activation_grad,
    activation_grad_bias,
    bias_activation,
)
from .blas import (
    _BLAS,
    _NO_TRANS,
    _ONE,
    _ONE_AT_A_TIME,
    _TRANS,
    OWN_THREADS_MIN_MACS,
    _cblas_gemm,
    _operand,
    _swap_threads,
    matmul,
)
from ..reference.linalg import compose_linear_act, compose_linear_grads
from ._util import block_of, serial_and_parallel

__all__ = ["linear_act", "linear_grads"]

# Fewer rows than this per thread and the layer stays on one thread.
MIN_ROWS_PER_PART = 32

# Which layers take the fused loops: the hidden layers of an MLP, both widths at least
# FUSED_MIN_WIDTH and products of at most FUSED_MAX_MACS multiply-adds. Others take the
# separate kernels: a larger product dwarfs the elementwise pass and the start of a
# parallel region (512 x 512 x 512 ran at parity, alone), and a layer with 1-15 inputs
# or outputs (an MLP's first or last, a critic's read-out) has one product too thin to
# gain from the gradient rows staying in cache. The convolutional recipes' linear layers
# are all of those kinds, so their cold start compiles none of these loops (~1-2 s each).
FUSED_MIN_WIDTH = 16
FUSED_MAX_MACS = 1 << 26

# Off for now: with the fused loops on, `python -m benchmarks.mode_coverage --recipes
# mlp-grid25 --first-seed 3 --seeds 1 --threads 2` ended at 22 modes where the separate
# kernels, and other ways of starting the same run, end at 25 (benchmarks/RESULTS.md),
# and the cause is not yet found; a seed must give the same run whatever the speed-ups.
# The loops are tested against the reference either way (tests force them on).
FUSED_LINEAR = False


def _fused(rows: int, ins: int, outs: int) -> bool:
    return (FUSED_LINEAR and min(ins, outs) >= FUSED_MIN_WIDTH and rows > 0
            and rows * ins * outs <= FUSED_MAX_MACS)


# The elementwise parts of a block, called from both copies (serial, parallel) of the loops.


@njit(cache=True, error_model="numpy")
def _bias_act_rows(y, start, stop, bias, kind, slope, one):
    """y[r] = act(y[r] + bias) for rows start..stop-1."""
    for r in range(start, stop):
        for c in range(y.shape[1]):
            y[r, c] = _act(y[r, c] + bias[c], kind, slope, one)


@njit(cache=True, error_model="numpy")
def _act_grad_rows(g, y, start, stop, kind, slope, one, gz, sums):
    """gz[r] = act'(g[r], y[r]) for rows start..stop-1 and the column sums of gz into sums
    (gz is g itself for kind "none": sums only)."""
    for c in range(g.shape[1]):
        sums[c] = 0.0
    if kind == _NONE:
        for r in range(start, stop):
            for c in range(g.shape[1]):
                sums[c] += g[r, c]
        return
    for r in range(start, stop):
        for c in range(g.shape[1]):
            value = _act_grad(g[r, c], y[r, c], kind, slope, one)
            gz[r, c] = value
            sums[c] += value


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
                         w, trans_w, ldw, x, trans_x, ldx, gx, partials, need_input,
                         need_weight, blasint_like):
    """Block p of g's rows, on one thread: gz = act'(g, y) and its column sums into
    sums[p] (float64); gx[rows] = gz[rows] @ w; partials[p] = gz[rows].T @ x[rows]. w, x,
    gx are addresses with CBLAS transpose flags and leading dimensions (see blas.py);
    with kind "none" gz is g itself and only the sums are written."""
    rows, outs = g.shape
    ins = partials.shape[2]
    parts = partials.shape[0]
    item = g.itemsize
    gz_address = g.ctypes.data if kind == _NONE else gz.ctypes.data
    previous = _swap_threads(get_threads, set_threads, 1)
    for p in prange(parts):
        start, stop = block_of(rows, p, parts)
        _act_grad_rows(g, y, start, stop, kind, slope, one, gz, sums[p])
        if stop == start:
            partials[p] = 0
            continue
        gz_rows = gz_address + start * outs * item
        if need_input:
            _cblas_gemm(fn, _NO_TRANS, trans_w, stop - start, ins, outs, one, gz_rows, outs,
                        w, ldw, one - one, gx + start * ins * item, ins, blasint_like)
        if need_weight:
            x_rows = x + start * (ldx * item if trans_x == _NO_TRANS else item)
            _cblas_gemm(fn, _TRANS, trans_x, outs, ins, stop - start, one, gz_rows, outs,
                        x_rows, ldx, one - one, partials[p].ctypes.data, ins, blasint_like)
    _swap_threads(get_threads, set_threads, previous)


_LINEAR_GRADS_BLOCKS = serial_and_parallel(_linear_grads_blocks)


def _parts(rows: int, macs: int) -> int:
    """Blocks of rows (threads) for a layer of `macs` multiply-adds per product."""
    if macs < OWN_THREADS_MIN_MACS:
        return 1
    return max(1, min(numba.get_num_threads(), rows // MIN_ROWS_PER_PART))


def linear_act(x, w, bias, kind: str, slope: float = 0.0):
    """act(x @ w.T + bias), bias (out,) or None: kernels/reference/linalg.py."""
    code = _kind_code(kind, "linear_act")
    dtype = x.dtype
    fn = _BLAS.gemm.get(dtype)
    if (fn is None or x.ndim != 2 or w.ndim != 2 or w.dtype != dtype or w.shape[1] != x.shape[1]
            or (bias is not None and (bias.dtype != dtype or bias.shape != (w.shape[0],)))
            or not _fused(x.shape[0], x.shape[1], w.shape[0])):
        return compose_linear_act(x, w, bias, kind, slope, matmul, bias_activation,
                                  activation)
    rows, ins = x.shape
    outs = w.shape[0]
    parts = _parts(rows, rows * outs * ins)
    y = np.empty((rows, outs), dtype=dtype)
    epilogue = bias is not None or code != _NONE
    bias = np.zeros(outs, dtype=dtype) if bias is None else np.ascontiguousarray(bias)
    x, trans_x, ldx = _operand(x)
    w, trans_w, ldw = _operand(w)
    blas = _BLAS
    with _ONE_AT_A_TIME:
        _LINEAR_ACT_BLOCKS[parts > 1](
            fn, blas.get_threads, blas.set_threads, x.ctypes.data, trans_x, ldx, w.ctypes.data,
            trans_w, ldw, ins, bias, code, dtype.type(slope), _ONE[dtype], epilogue, y, parts,
            blas.blasint_like)
    return y


def linear_grads(g, y, x, w, kind: str, slope: float, need_input: bool, need_weight: bool,
                 need_bias: bool = True):
    """(gx, gw, gb) of y = act(x @ w.T + b) from g = dL/dy: kernels/reference/linalg.py."""
    code = _kind_code(kind, "linear_grads")
    dtype = g.dtype
    fn = _BLAS.gemm.get(dtype)
    if (fn is None or g.ndim != 2 or x.ndim != 2 or any(a.dtype != dtype for a in (y, x, w))
            or g.shape != y.shape or x.shape[0] != g.shape[0]
            or w.shape != (g.shape[1], x.shape[1])
            or not _fused(x.shape[0], x.shape[1], g.shape[1])):
        # the layers _fused leaves out, other dtypes, or no OpenBLAS found
        return compose_linear_grads(g, y, x, w, kind, slope, need_input, need_weight,
                                    need_bias, matmul, activation_grad, activation_grad_bias)
    rows, outs = g.shape
    ins = x.shape[1]
    g = np.ascontiguousarray(g)
    y = np.ascontiguousarray(y)
    parts = _parts(rows, rows * outs * ins)
    gz = g if code == _NONE else np.empty_like(g)
    sums = np.empty((parts, outs))
    partials = np.empty((parts, outs, ins), dtype=dtype)
    gx = np.empty((rows, ins), dtype=dtype) if need_input else None
    w, trans_w, ldw = _operand(w)
    x, trans_x, ldx = _operand(x)
    blas = _BLAS
    with _ONE_AT_A_TIME:
        # the arrays stay referenced here while the compiled loop uses their addresses
        _LINEAR_GRADS_BLOCKS[parts > 1](
            fn, blas.get_threads, blas.set_threads, g, y, code, dtype.type(slope),
            _ONE[dtype], gz, sums, w.ctypes.data, trans_w, ldw, x.ctypes.data, trans_x, ldx,
            0 if gx is None else gx.ctypes.data, partials, need_input, need_weight,
            blas.blasint_like)
    gw = None
    if need_weight:
        gw = partials[0] if parts == 1 else partials.sum(axis=0)
    gb = None
    if need_bias:
        gb = (sums[0] if parts == 1 else sums.sum(axis=0)).astype(dtype)
    return gx, gw, gb
