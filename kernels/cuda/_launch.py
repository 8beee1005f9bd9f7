"""How the CUDA kernels are launched: grid sizes, argument hand-over, availability. One place.

Every kernel here is written with a grid-stride loop (elementwise work) or one block per
channel (reductions), so its result does not depend on how many threads run it. That lets
the same code run in two very different places:

- on a GPU, 256 threads a block and as many blocks as the work needs (capped: the loop
  covers the rest), arrays are CuPy arrays handed to Numba through
  `__cuda_array_interface__`;
- on Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set before numba.cuda is imported),
  where every thread is a Python thread: a few threads in two blocks walk the same loops
  and block reductions in milliseconds, on NumPy arrays.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

SIMULATED = bool(numba.config.ENABLE_CUDASIM)

# Threads per block. 256 is a multiple of the warp (32) that keeps 8 blocks resident per
# multiprocessor; under the simulator 4 threads still exercise every loop and reduction
# step. Both are powers of two, which the tree reductions in norm.py rely on.
THREADS = 4 if SIMULATED else 256
# The size of a block's shared reduction buffers: a compile-time constant, >= THREADS.
MAX_THREADS = 256
# Beyond this many blocks the grid-stride loops take over: with 8 blocks of 256 threads
# resident per multiprocessor (2048 threads, the Hopper limit), 4096 blocks are ~4 full
# waves over the H200's 132 multiprocessors, enough that the last wave's tail is small.
MAX_BLOCKS = 2 if SIMULATED else 4096

_usable: list[bool] = []


def elementwise_grid(count: int) -> tuple[int, int]:
    """(blocks, threads) for a grid-stride loop over `count` items."""
    blocks = min(MAX_BLOCKS, max(1, -(-count // THREADS)))
    return blocks, THREADS


def per_channel_grid(channels: int) -> tuple[int, int]:
    """(blocks, threads) for one block per channel (the batch-norm reductions)."""
    return channels, THREADS


def check_usable(op: str) -> None:
    """Raise a clear error when Numba sees neither a GPU nor the simulator."""
    if not _usable:
        _usable.append(bool(cuda.is_available()))
    if not _usable[0]:
        raise RuntimeError(
            f"{op}: Numba finds no usable CUDA GPU, and the CUDA simulator is off. Run on a "
            "machine with an NVIDIA GPU, or set NUMBA_ENABLE_CUDASIM=1 before numba.cuda is "
            "first imported to run these kernels (slowly) on the CPU."
        )


def _device_view(value):
    """A Numba view of a CuPy array, without a stream synchronisation.

    Numba and CuPy both launch on the legacy default stream here, which already orders
    their work, so the synchronisation Numba would do per array per launch is only cost.
    Scalars pass through, and so do NumPy arrays (the simulator), except read-only ones:
    the simulator copies every array argument back after a launch, so those get a copy.
    """
    if SIMULATED:
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            return value.copy()
        return value
    if hasattr(value, "__cuda_array_interface__"):
        return cuda.as_cuda_array(value, sync=False)
    return value


def launch(kernel, grid: tuple[int, int], op: str, *args) -> None:
    """kernel[grid](*args), after checking that kernels can run at all. An empty array
    argument means there is nothing to do (and no device memory to hand over)."""
    check_usable(op)
    if any(getattr(a, "size", 1) == 0 for a in args):
        return
    kernel[grid](*[_device_view(a) for a in args])
