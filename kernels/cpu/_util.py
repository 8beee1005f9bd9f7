"""Helpers shared by the Numba kernels: reusable workspaces and the parallel threshold."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import types

import numba
import numpy as np
from numba import njit

# Below this many elements an elementwise loop runs on one thread. When OpenMP's threads
# slept at once after a loop, waking the second cost ~55 us, more than these loops take on
# one core: at 64K float32 elements a fused bias+relu took 6.8 us serial against 72 us
# parallel, bias+tanh 52 against 98 us; at 1M, relu 133 against 326 us (memory-bound) and
# tanh 923 against 708 us. An MLP-2D iteration went from 5.6 to 3.9 ms when its 64K-element
# passes stopped going parallel. Now that the threads spin briefly between loops
# (minigan/_environment.py) a parallel region is cheap to start, but the memory-bound
# loops still gain nothing from a second thread (relu over 1M elements: 118 us serial,
# 226 us parallel) and DCGAN-28 got slower with the threshold at 2^18 (198-203 against
# 175-180 ms), so it stays (benchmarks/RESULTS.md).
PARALLEL_MIN_ELEMENTS = 1 << 20

# The gradient rows of a linear layer ((N, C) arrays, as a product leaves them) go
# parallel from this many elements on, in the blocks the product wrote on each thread
# (block_of): each thread then reads its own core's cache. MLP-2D's 512 x 128 layers (64K
# elements) took their fused activation gradient + bias sums in 42-46 us on one thread
# inside a training step against 17 us alone (half their rows sat in the other core's
# cache), 31-35 us in blocks. The bias + activation pass gained nothing from the same
# split and keeps PARALLEL_MIN_ELEMENTS (benchmarks/RESULTS.md).
ROWS_PARALLEL_MIN_ELEMENTS = 1 << 15

_local = threading.local()


def workspace(slot: str, shape: tuple, dtype) -> np.ndarray:
    """A scratch array of `shape`, reused from call to call (one per slot, dtype and thread).

    Column matrices reach tens of MB; a fresh np.empty of that size is a fresh mmap whose
    pages are faulted in on first write every call (~2-4 ms per 50 MB here). Reusing one
    buffer keeps them mapped. Never return a workspace to a caller: its contents change at
    the next call that uses the same slot.
    """
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    dtype = np.dtype(dtype)
    size = 1
    for extent in shape:
        size *= int(extent)
    key = (slot, dtype)
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = buffers[key] = np.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def release_workspaces() -> None:
    """Free this thread's scratch arrays and recycled buffers (they are rebuilt on demand)."""
    _local.buffers = {}
    _local.recycled = None  # rebuilt by the next fresh()


# ----------------------------------------------------------------------------- results

# Results from this size on come from buffers that minigan keeps and reuses (`fresh`).
# Every op's result is a new array, and a training step frees and allocates the same sizes
# over and over; glibc's malloc maps such large blocks afresh and gives them back when
# they are freed, so each new activation-sized array is page-faulted and zeroed by the
# kernel before the op writes it: a 3.2 MB activation gradient took 315 us instead of
# 120 us. Asking malloc to keep freed memory (mallopt) would do it too, but for the whole
# process: PyTorch in the same process ran DCGAN-28 29% faster with it, so the two were
# no longer compared at PyTorch's own settings (benchmarks/RESULTS.md).
RECYCLE_MIN_BYTES = 1 << 18
# At most this many bytes of buffers are kept per thread. A new size past it first drops
# free buffers, least recently used first (the one-off sizes of an evaluation, say); if
# the buffers in use fill it, results are plain arrays. A training step of the benchmarks'
# models keeps 2 MB (MLP-2D), 67 MB (DCGAN-28, batch 64), 121 MB (batch 128) and 223 MB
# (DCGAN-64); `minigan train` peaked at 550 MB resident before the kept buffers, 761 MB
# with a 1 GB cap (benchmarks/RESULTS.md).
RECYCLE_MAX_BYTES = 1 << 28


def _unreferenced_count() -> int:
    """What sys.getrefcount(kept[k]) reads for a buffer that only the list holds: measured
    on the same expression, so that an interpreter counting its argument otherwise (a
    borrowed reference) is measured, not assumed."""
    kept = [np.empty(1, dtype=np.uint8)]
    return sys.getrefcount(kept[0])


_UNREFERENCED = _unreferenced_count()


def fresh(shape, dtype) -> np.ndarray:
    """np.empty(shape, dtype), C-contiguous, for a kernel's result: from RECYCLE_MIN_BYTES
    on, a view of a kept buffer of the same size that nothing else references any more.

    A result, and every view of it, holds a reference to its buffer (its `base` chain),
    so a buffer whose only references are the pool's is no longer part of any array in
    use and can be handed out again. Buffers are per thread (like workspaces): another
    thread's arrays keep their references, so it never takes a buffer they use."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for extent in shape:
        nbytes *= int(extent)
    if nbytes < RECYCLE_MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    pool = getattr(_local, "recycled", None)
    if pool is None:
        pool = _local.recycled = _Pool()
    pool.tick += 1
    kept = pool.by_size.setdefault(nbytes, [])
    # the most recently handed out first: a short-lived result just freed is still in cache
    for k in range(len(kept) - 1, -1, -1):
        if sys.getrefcount(kept[k]) == _UNREFERENCED:
            buffer = kept.pop(k)
            kept.append(buffer)
            pool.last_use[id(buffer)] = pool.tick
            return buffer.view(dtype).reshape(shape)
    if pool.total + nbytes > RECYCLE_MAX_BYTES and not pool.make_room(nbytes):
        return np.empty(shape, dtype=dtype)
    buffer = np.empty(nbytes, dtype=np.uint8)
    kept.append(buffer)
    pool.last_use[id(buffer)] = pool.tick
    pool.total += nbytes
    return buffer.view(dtype).reshape(shape)


class _Pool:
    """One thread's kept buffers: by size in bytes, when each was last handed out (a count
    of fresh() calls), and their total size."""

    def __init__(self):
        self.by_size: dict[int, list] = {}
        self.last_use: dict[int, int] = {}  # id(buffer) -> tick
        self.tick = 0
        self.total = 0

    def make_room(self, nbytes: int) -> bool:
        """Drop free buffers, least recently used first, until nbytes more fit under
        RECYCLE_MAX_BYTES; whether they do."""
        free = []  # (last use, size, id): no references, so the counts stay as they are
        for size, kept in self.by_size.items():
            for k in range(len(kept)):
                if sys.getrefcount(kept[k]) == _UNREFERENCED:
                    free.append((self.last_use[id(kept[k])], size, id(kept[k])))
        for _, size, ident in sorted(free):
            if self.total + nbytes <= RECYCLE_MAX_BYTES:
                break
            kept = self.by_size[size]
            k = next(k for k in range(len(kept)) if id(kept[k]) == ident)
            del kept[k]
            del self.last_use[ident]
            self.total -= size
        return self.total + nbytes <= RECYCLE_MAX_BYTES


def fresh_like(a) -> np.ndarray:
    """fresh(a.shape, a.dtype): C-contiguous whatever a's layout."""
    return fresh(a.shape, a.dtype)


def serial_and_parallel(loop, **options):
    """Two compiled copies of a loop written with prange: (serial, parallel); `options` are
    further njit options for both (fastmath for the reductions).

    The parallel copy gets its own qualified name because Numba's on-disk cache is keyed
    by a function's name and bytecode, not by its compile options: two njit copies of the
    same function would otherwise overwrite, or load, each other's cached machine code.
    """
    serial = njit(cache=True, error_model="numpy", **options)(loop)
    twin = types.FunctionType(
        loop.__code__, loop.__globals__, loop.__name__, loop.__defaults__, loop.__closure__
    )
    twin.__qualname__ = loop.__qualname__ + "_parallel"
    return serial, njit(cache=True, parallel=True, error_model="numpy", **options)(twin)


def by_size(pair, size: int):
    """The serial copy of a (serial, parallel) pair for small arrays, else the parallel one."""
    return pair[size >= PARALLEL_MIN_ELEMENTS]


def _thread_count_reader():
    """The threading layer's own get_num_threads (a C function), once Numba's threads are
    up: numba.get_num_threads() takes two locks, one a process-wide semaphore, before
    calling it (~1.2 us against ~0.15 us), and the kernels ask several times per op.
    Numba's public function when that name is not there (another Numba version)."""
    numba.get_num_threads()  # starts the threads, after which the reader is set
    reader = getattr(numba.np.ufunc.parallel, "_get_num_threads", None)
    if not callable(reader) or reader() != numba.get_num_threads():
        reader = numba.get_num_threads
    return reader


_read_thread_count = None


def thread_count() -> int:
    """numba.get_num_threads(): this thread's setting (numba.set_num_threads)."""
    global _read_thread_count
    if _read_thread_count is None:
        _read_thread_count = _thread_count_reader()
    return _read_thread_count()


@njit(cache=True)
def address(a) -> int:
    """a.ctypes.data, read in compiled code: ~0.3 us a call where the Python attribute
    takes ~1 us (it builds a ctypes helper object each time), and a product passes its
    operands' addresses (blas.py), three or four per call."""
    return a.ctypes.data


def row_blocks(size: int) -> int:
    """How many blocks (threads) a loop over the rows of an (N, C) array of `size`
    elements takes: one below ROWS_PARALLEL_MIN_ELEMENTS, else one per Numba thread."""
    return 1 if size < ROWS_PARALLEL_MIN_ELEMENTS else thread_count()


@njit(cache=True, inline="always")
def block_of(total: int, part: int, parts: int):
    """[start, stop) of block `part` of `parts` blocks of range(total), edges on multiples
    of 8. The products (blas.py) cut their rows this way, one block per thread, and so do
    the loops that read what a product just wrote (activation.py): each thread then reads
    the rows it wrote itself, from its own core's cache."""
    start = min(total, (total * part // parts + 4) // 8 * 8)
    stop = total if part == parts - 1 else min(total, (total * (part + 1) // parts + 4) // 8 * 8)
    return start, max(start, stop)


# ----------------------------------------------------------------------------- layouts
# The conv kernels return 4-D (N, C, H, W) results whose memory is channels-last: a
# transposed view of an (N, H, W, C) array. Shapes and values are NCHW as everywhere else;
# only the strides differ, so NumPy code downstream is unaffected, while the next conv
# reads runs of C contiguous channels without a transposition pass and its gradient comes
# back in the same layout (benchmarks/RESULTS.md: the NCHW<->columns transpositions were
# a fifth of a DCGAN-28 iteration). Every cpu kernel accepts either layout.


def is_channels_last(a) -> bool:
    """True for a 4-D array whose memory is channels-last (and not also C-contiguous)."""
    return (a.ndim == 4 and not a.flags.c_contiguous
            and a.transpose(0, 2, 3, 1).flags.c_contiguous)


def channels_last(a) -> np.ndarray:
    """The (N, H, W, C) C-contiguous array of a 4-D (N, C, H, W) array: a view when a's
    memory is channels-last already, else a transposing copy."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def memory_order(a) -> np.ndarray:
    """a's elements as a C-contiguous array in memory order: the (N, H, W, C) view of a
    channels-last array, else a itself (copied if it is not contiguous)."""
    return a.transpose(0, 2, 3, 1) if is_channels_last(a) else np.ascontiguousarray(a)


def like_layout(b, a) -> np.ndarray:
    """b (shaped like a) in a's layout, C-contiguous in memory order (see memory_order)."""
    return channels_last(b) if is_channels_last(a) else np.ascontiguousarray(b)


def as_layout_of(result, a) -> np.ndarray:
    """The inverse of memory_order: result (computed in a's memory order) shaped like a."""
    return result.transpose(0, 3, 1, 2) if is_channels_last(a) else result


# ----------------------------------------------------------------------------- memory

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """With MINIGAN_MALLOC_TUNING=1: ask glibc's malloc to serve arrays up to 32 MB from
    its heap and to keep freed heap memory (up to 1 GB) instead of returning it to the
    system. Off by default: it is process-wide, so it changes the speed of every library
    in the process (PyTorch's DCGAN-28 ran 29% faster beside minigan with it), and the cpu
    kernels' own results no longer need it (`fresh`). What it still speeds up is NumPy's
    temporaries in Python-level code. Returns whether the settings were applied (glibc
    only)."""
    if os.environ.get("MINIGAN_MALLOC_TUNING", "0") != "1" or not sys.platform.startswith(
            "linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
                    and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):  # not glibc
        return False
