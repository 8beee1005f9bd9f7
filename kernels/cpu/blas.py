"""Matrix products for the cpu kernels, run on the same threads as the Numba loops.

NumPy's OpenBLAS has a thread pool of its own beside Numba's (TBB's, or OpenMP's), and
two pools on a small machine get in each other's way: either both put their threads to sleep when
idle, and every product and every parallel loop pays a wake-up (~50 us here), or the
spinning threads of one take the cores the other needs (a DCGAN-28 iteration took 475 ms
instead of 160 when its few mid-sized products ran on OpenBLAS's threads while Numba's
were spinning). So the cpu kernels run OpenBLAS's sgemm/dgemm single-threaded from inside
a Numba parallel loop: the product is cut into one block of rows (or of columns, when it
is wider than tall) per thread, and each of Numba's threads multiplies its block. One pool,
whose threads may then wait for the next loop by spinning briefly
(minigan/_environment.py). Back to back, the blocks run as fast as OpenBLAS's own
threading (182-192 GFLOP/s on DCGAN's conv shapes, 2 threads); in a training step
DCGAN-28 became 8-17% faster (benchmarks/RESULTS.md).

Products of fewer than 2^18 multiply-adds go to np.matmul: OpenBLAS runs those on the
calling thread anyway (its default GEMM_MULTITHREAD_THRESHOLD: M*N*K <= 4 * 65536).

The function pointers come from the OpenBLAS library NumPy loaded (found by threadpoolctl)
and are called through small LLVM intrinsics, so the compiled loop takes them as plain
integers and stays in Numba's on-disk cache. Without such a library (NumPy built on MKL or
Accelerate) or for other dtypes, `gemm` falls back to np.matmul; without OpenBLAS,
Numba's threads then go back to sleeping at once when idle (minigan/_environment.py).
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from ._util import address, block_of, fresh, serial_and_parallel, thread_count, workspace

__all__ = ["matmul"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112  # CBLAS enum values (cblas.h)
_ROWS, _COLUMNS, _DEPTH = 0, 1, 2  # how gemm cuts a product into one block per thread

# Products from this many multiply-adds on run on Numba's threads, in blocks of at least
# MIN_MACS_PER_PART each (so a product just over the threshold takes two threads; with one
# Numba thread, the one block runs on the calling thread without a parallel region).
# Splitting MLP-2D's 512x128x128 products is worth it: an iteration took 3.3-4.3 ms with
# them on two threads, 4.1-5.0 ms with each on one (five alternating processes each).
OWN_THREADS_MIN_MACS = 1 << 18
MIN_MACS_PER_PART = 1 << 17


class _Blas:
    """The OpenBLAS entry points NumPy uses: CBLAS sgemm/dgemm, the width of its integers
    (64-bit in NumPy's ILP64 build) and its thread count getter and setter."""

    def __init__(self):
        self.gemm = {}  # dtype -> function address
        self.blasint_like = None  # np.int32(0) or np.int64(0)
        self.set_threads = self.get_threads = 0  # addresses
        try:
            self._load()
        except (OSError, ImportError, AttributeError, ValueError):
            self.gemm = {}

    def _load(self):
        np.ones(1) @ np.ones(1)  # make sure NumPy's BLAS is loaded
        from threadpoolctl import threadpool_info

        paths = [info["filepath"] for info in threadpool_info()
                 if info.get("internal_api") == "openblas"]
        if not paths:
            return
        lib = ctypes.CDLL(paths[0])
        # NumPy 2's scipy_...64_ names, NumPy 1's ...64_, or a plain build
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("scipy_", ""), ("", "")):
            names = [f"{prefix}{name}{suffix}" for name in (
                "cblas_sgemm", "cblas_dgemm", "openblas_get_num_threads",
                "openblas_set_num_threads", "openblas_get_config")]
            if all(hasattr(lib, name) for name in names):
                break
        else:
            return
        config = getattr(lib, names[4])
        config.restype = ctypes.c_char_p
        # the integers of the interface are 64-bit in an ILP64 build, whatever its names
        self.blasint_like = (np.int64 if b"USE64BITINT" in config() else np.int32)(0)
        sgemm, dgemm, self.get_threads, self.set_threads = (
            ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in names[:4])
        self.gemm = {np.dtype(np.float32): sgemm, np.dtype(np.float64): dgemm}


_BLAS = _Blas()
_ONE = {np.dtype(t): t(1) for t in (np.float32, np.float64)}
# Products from several Python threads take turns: each sets OpenBLAS's process-wide
# thread count to 1 and restores what it read, which must not interleave (and they would
# share the same cores anyway).
_ONE_AT_A_TIME = threading.Lock()
_ZERO = {np.dtype(t): t(0) for t in (np.float32, np.float64)}


# ----------------------------------------------------------------------------- the call


@intrinsic
def _cblas_gemm(typingctx, fn, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc, blasint_like):
    """fn(RowMajor, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) for fn
    the address of a CBLAS ?gemm; a, b, c are addresses, the integers are passed at the
    width of `blasint_like` and alpha, beta at their own float type."""
    sig = types.void(fn, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                     blasint_like)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        blasint = context.get_value_type(blasint_like)
        real = context.get_value_type(alpha)
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, blasint, blasint, blasint,
                                               real, ptr, blasint, ptr, blasint, real, ptr,
                                               blasint])
        argtypes = signature.args

        def integer(i, to):
            return context.cast(builder, args[i], argtypes[i], to)

        blas_type = blasint_like
        values = [ir.Constant(i32, _ROW_MAJOR), integer(1, types.int32), integer(2, types.int32),
                  integer(3, blas_type), integer(4, blas_type), integer(5, blas_type),
                  context.cast(builder, args[6], argtypes[6], alpha),
                  builder.inttoptr(args[7], ptr), integer(8, blas_type),
                  builder.inttoptr(args[9], ptr), integer(10, blas_type),
                  context.cast(builder, args[11], argtypes[11], alpha),
                  builder.inttoptr(args[12], ptr), integer(13, blas_type)]
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), values)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _swap_threads(typingctx, get_fn, set_fn, count):
    """get_fn() then set_fn(count), for the addresses of openblas_get_num_threads and
    openblas_set_num_threads: sets OpenBLAS's thread count, returns the one it had."""
    sig = types.int32(get_fn, set_fn, count)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        getter = builder.inttoptr(args[0], ir.FunctionType(i32, []).as_pointer())
        setter = builder.inttoptr(args[1], ir.FunctionType(ir.VoidType(), [i32]).as_pointer())
        previous = builder.call(getter, [])
        builder.call(setter, [context.cast(builder, args[2], signature.args[2], types.int32)])
        return previous

    return sig, codegen


def _gemm_blocks(fn, get_threads, set_threads, a, trans_a, lda, b, trans_b, ldb, m, n, k,
                 item, alpha, beta, c, ldc, parts, split, partials, blasint_like):
    """c = alpha a @ b + beta c (m x k times k x n, entries of `item` bytes) as one ?gemm
    per thread: each takes a block of rows of c, of its columns, or of the depth k (see
    gemm_split), with block edges on multiples of 8. A depth block p > 0 writes its partial
    product to partials + (p - 1) m n entries (m x n, rows of n) for the caller to add to c.
    a, b, c and partials are addresses, not arrays: one compiled loop then serves every
    layout of the operands (as arrays, each combination of C, F and strided layouts was a
    compilation of its own, ~1 s each on a cold start)."""
    parts = max(1, parts)
    total = m if split == _ROWS else (n if split == _COLUMNS else k)
    # OpenBLAS must not start threads of its own under ours: two threads calling a
    # 2-thread OpenBLAS at once ran a 512x128x128 product 50x slower. Its thread count is
    # process-wide (openblas_set_num_threads_local too, in pthreads builds), so it is 1
    # while the parts run.
    previous = _swap_threads(get_threads, set_threads, 1)
    for p in prange(parts):
        start, stop = block_of(total, p, parts)
        if stop > start:
            if split == _ROWS:
                a_part = a + start * (lda * item if trans_a == _NO_TRANS else item)
                _cblas_gemm(fn, trans_a, trans_b, stop - start, n, k, alpha, a_part, lda,
                            b, ldb, beta, c + start * ldc * item, ldc, blasint_like)
            elif split == _COLUMNS:
                b_part = b + start * (item if trans_b == _NO_TRANS else ldb * item)
                _cblas_gemm(fn, trans_a, trans_b, m, stop - start, k, alpha, a, lda, b_part,
                            ldb, beta, c + start * item, ldc, blasint_like)
            else:  # depth: columns start..stop of a times rows start..stop of b
                a_part = a + start * (item if trans_a == _NO_TRANS else lda * item)
                b_part = b + start * (ldb * item if trans_b == _NO_TRANS else item)
                if p == 0:
                    _cblas_gemm(fn, trans_a, trans_b, m, n, stop - start, alpha, a_part, lda,
                                b_part, ldb, beta, c, ldc, blasint_like)
                else:
                    _cblas_gemm(fn, trans_a, trans_b, m, n, stop - start, alpha, a_part, lda,
                                b_part, ldb, alpha - alpha, partials + (p - 1) * m * n * item,
                                n, blasint_like)
    _swap_threads(get_threads, set_threads, previous)


_GEMM_BLOCKS = serial_and_parallel(_gemm_blocks)  # (one block on the calling thread, parallel)


# ----------------------------------------------------------------------------- wrappers


def _operand(x):
    """(x or a contiguous copy, CBLAS transpose flag, leading dimension) for a 2-D array."""
    if x.flags.c_contiguous:
        return x, _NO_TRANS, max(1, x.shape[1])
    item = x.itemsize
    rows, cols = x.shape
    s0, s1 = x.strides
    if (cols <= 1 or s1 == item) and (rows <= 1 or (s0 % item == 0 and s0 // item >= cols)):
        return x, _NO_TRANS, max(1, cols if rows <= 1 else s0 // item)
    if (rows <= 1 or s0 == item) and (cols <= 1 or (s1 % item == 0 and s1 // item >= rows)):
        return x, _TRANS, max(1, rows if cols <= 1 else s1 // item)
    x = np.ascontiguousarray(x)
    return x, _NO_TRANS, max(1, cols)


def _gemm_parts(m: int, n: int, k: int) -> int:
    """How many blocks (threads) gemm cuts a product of m * n * k multiply-adds into, from
    OWN_THREADS_MIN_MACS up (below it, one np.matmul call)."""
    return max(1, min(thread_count(), (m * n * k) // MIN_MACS_PER_PART))


# A product whose depth k is this many times its larger side or more (a weight gradient:
# a small m x n result summed over a batch of rows) is cut along k, one partial product
# per thread, added up after: cut along m or n, every thread would pack the whole of the
# other operand, k long. The gradient of a 128 x 128 linear layer over 512 rows (128 x 128
# x 512) took 63 us cut by rows, 42 us for one half of its depth on one thread; DCGAN-64's
# first weight gradient (64 x 48 x 32768) 906 us against 600 (benchmarks/RESULTS.md).
DEPTH_SPLIT_MIN_RATIO = 2


def gemm_split(m: int, n: int, k: int) -> tuple[int, int]:
    """(blocks, how) for an (m, k) @ (k, n) product from OWN_THREADS_MIN_MACS up: blocks of
    rows of the result when m >= n, else of columns, or of the depth k when it is
    DEPTH_SPLIT_MIN_RATIO times the larger side (and long enough for a multiple of 8 on
    every thread)."""
    parts = _gemm_parts(m, n, k)
    if parts > 1 and k >= DEPTH_SPLIT_MIN_RATIO * max(m, n) and k >= 16 * parts:
        return parts, _DEPTH
    return parts, (_ROWS if m >= n else _COLUMNS)


def _blocks_if(m: int, n: int, k: int, how: int) -> int:
    """The blocks gemm cuts an (m, k) @ (k, n) product into when it cuts it `how`, else 0
    (also for np.matmul's small products and outer products)."""
    if m * n * k < OWN_THREADS_MIN_MACS or k == 1:
        return 0
    parts, split = gemm_split(m, n, k)
    return parts if split == how else 0


def gemm_row_blocks(m: int, n: int, k: int) -> int:
    """The blocks of rows gemm cuts an (m, k) @ (k, n) product into, or 0 when it takes
    another route (np.matmul for a small product, blocks of columns or of the depth).
    OpenBLAS's sums for one row depend on the size of the call (its small-matrix kernels),
    so code that must give gemm's bits calls it on the same blocks (linear.py)."""
    return _blocks_if(m, n, k, _ROWS)


def gemm_depth_blocks(m: int, n: int, k: int) -> int:
    """The blocks of the depth k gemm cuts an (m, k) @ (k, n) product into, or 0 when it
    cuts it otherwise (see gemm_row_blocks)."""
    return _blocks_if(m, n, k, _DEPTH)


def depth_partials(parts: int, m: int, n: int, dtype) -> np.ndarray:
    """Scratch for the partial products of depth blocks 1..parts-1 (block 0 writes the
    result itself), reused from call to call."""
    return workspace("gemm.partials", (parts - 1, m, n), dtype)


def add_partials(out, partials) -> None:
    """out += each of the blocks' partial results, in block order: gemm's sum of its depth
    blocks, which code that must give gemm's bits repeats (linear.py), and the bias
    gradient's sum of its row blocks (activation.column_sums)."""
    for partial in partials:
        out += partial


def gemm(a, b, out=None, accumulate: bool = False) -> np.ndarray:
    """out = a @ b (out += a @ b with accumulate) for 2-D arrays of any strides, split
    across Numba's threads when it is large enough; `out`, when given, must have unit
    stride along its rows."""
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k:
        raise ValueError(f"gemm: inner dimensions differ, a {a.shape} @ b {b.shape}")
    if accumulate and out is None:
        raise ValueError("gemm: accumulate needs an out array to add to")
    dtype = a.dtype
    fn = _BLAS.gemm.get(dtype)
    # one thread's worth of work (or no OpenBLAS, or another dtype): NumPy's own call,
    # which OpenBLAS runs single-threaded below 2^18 multiply-adds. Except an outer
    # product (k = 1), which np.matmul does not hand to BLAS: 73 us for 512x1 @ 1x128
    # (the input gradient of a layer with one output, as a GAN critic's last) against
    # 7 us through sgemm here.
    if (fn is None or b.dtype != dtype or (out is not None and out.dtype != dtype)
            or (m * n * k < OWN_THREADS_MIN_MACS and k != 1)):
        if accumulate:
            out += np.matmul(a, b)
            return out
        return np.matmul(a, b, out=out)
    item = dtype.itemsize
    if out is None:  # C-contiguous
        out = fresh((m, n), dtype)
        ldc = max(1, n)
    else:
        if out.shape != (m, n) or (out.strides[1] != item and n > 1) or (
                m > 1 and out.strides[0] < n * item):
            raise ValueError(f"gemm: out must be a ({m}, {n}) array with unit stride along "
                             f"its rows, got shape {out.shape} and strides {out.strides}")
        ldc = max(1, n if m == 1 else out.strides[0] // item)
    a, trans_a, lda = _operand(a)
    b, trans_b, ldb = _operand(b)
    blas = _BLAS
    threads, split = gemm_split(m, n, k)
    partials = (depth_partials(threads, m, n, dtype) if split == _DEPTH
                else out)  # (any address when there are none)
    with _ONE_AT_A_TIME:
        # the arrays stay referenced here while the compiled loop uses their addresses
        _GEMM_BLOCKS[threads > 1](fn, blas.get_threads, blas.set_threads, address(a),
                                  trans_a, lda, address(b), trans_b, ldb, m, n, k, item,
                                  _ONE[dtype], _ONE[dtype] if accumulate else _ZERO[dtype],
                                  address(out), ldc, threads, split, address(partials),
                                  blas.blasint_like)
        if split == _DEPTH:
            add_partials(out, partials)
    return out


def uses_numba_threads() -> bool:
    """Whether the products run on Numba's threads: the OpenBLAS entry points were found."""
    return bool(_BLAS.gemm)


def matmul(a, b):
    """a @ b for 2-D arrays (the products of Linear and of MatMul on matrices)."""
    return gemm(a, b)
