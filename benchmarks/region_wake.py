"""What a parallel loop costs to start after the caller has been busy in Python for a while.

    python -m benchmarks.region_wake [--gaps 0 20 50 100 1000] [--calls 400]

A training step of a small model (MLP-2D) runs its parallel kernels between stretches of
Python (the autograd engine, the wrappers) of tens of microseconds. Numba's worker threads
wait for work by spinning for a short while, then sleep; a loop that starts after they
fell asleep waits for the operating system to wake them. This times one parallel loop
with an empty body (prange(2)) after the calling thread spent `gap` microseconds in a busy
Python loop, against the same loop compiled serially; medians and 90th percentiles of
`calls` calls per gap. The threading layer is the one minigan starts (TBB by default;
NUMBA_THREADING_LAYER=omp with GOMP_SPINCOUNT=N, or workqueue, to compare).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from minigan.cli import at_least


def _microseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected microseconds >= 0, got {text!r}")
    return value


def _busy(microseconds: float) -> None:
    end = time.perf_counter() + microseconds * 1e-6
    while time.perf_counter() < end:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaps", type=_microseconds, nargs="+",
                        default=[0, 5, 20, 50, 100, 300, 1000],
                        help="microseconds of Python work before each call")
    parser.add_argument("--calls", type=at_least(1), default=400, help="calls timed per gap")
    args = parser.parse_args()

    import numba
    from numba import njit, prange

    from minigan._environment import start_numba_threads

    start_numba_threads()

    def touch(a):
        for p in prange(2):
            a[p] += 1.0

    parallel, serial = njit(parallel=True)(touch), njit(touch)
    data = np.zeros(2)
    parallel(data)
    serial(data)
    print(f"threading layer {numba.threading_layer()}, {numba.get_num_threads()} threads; "
          "microseconds per call (median, 90th percentile)\n")
    print("| gap (us) | parallel loop | serial loop |")
    print("|---|---|---|")
    for gap in args.gaps:
        row = []
        for loop in (parallel, serial):
            times = []
            for _ in range(args.calls):
                _busy(gap)
                start = time.perf_counter()
                loop(data)
                times.append((time.perf_counter() - start) * 1e6)
            row.append(f"{np.median(times):.1f} ({np.percentile(times, 90):.1f})")
        print(f"| {gap:g} | {row[0]} | {row[1]} |")


if __name__ == "__main__":
    main()
