"""Helpers shared by the Numba kernels: reusable workspaces and the parallel threshold."""

from __future__ import annotations

import threading
import types

import numpy as np
from numba import njit

# Below this many elements an elementwise loop runs on one thread. At 32768 float32
# elements (benchmarks/RESULTS.md) a relu pass took 3.4 us serial against 4.0 us on two
# threads, tanh 23 against 15 us, the Adam update 14.5 against 9.9 us: about where waking
# the second thread starts to pay.
PARALLEL_MIN_ELEMENTS = 1 << 15

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
    """Free this thread's scratch arrays (they are rebuilt on demand)."""
    _local.buffers = {}


def serial_and_parallel(loop):
    """Two compiled copies of a loop written with prange: (serial, parallel).

    The parallel copy gets its own qualified name because Numba's on-disk cache is keyed
    by a function's name and bytecode, not by its compile options: two njit copies of the
    same function would otherwise overwrite, or load, each other's cached machine code.
    """
    serial = njit(cache=True, error_model="numpy")(loop)
    twin = types.FunctionType(
        loop.__code__, loop.__globals__, loop.__name__, loop.__defaults__, loop.__closure__
    )
    twin.__qualname__ = loop.__qualname__ + "_parallel"
    return serial, njit(cache=True, parallel=True, error_model="numpy")(twin)


def by_size(pair, size: int):
    """The serial copy of a (serial, parallel) pair for small arrays, else the parallel one."""
    return pair[size >= PARALLEL_MIN_ELEMENTS]
