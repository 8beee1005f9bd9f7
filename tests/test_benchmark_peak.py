"""benchmarks/peak.py, the measured FMA peak that "% FMA peak" divides by: its loop must
run every iteration of every chain (a loop that LLVM shortened or a wrong count would make
the peak, and every percentage, wrong). No timing is asserted: timings belong in
benchmarks/."""

from __future__ import annotations

import numpy as np
import pytest

peak = pytest.importorskip("benchmarks.peak")


@pytest.mark.parametrize("n", [1, 2, 1000])
def test_the_fma_loop_runs_n_steps_of_every_chain(n):
    fn, flops = peak._kernel()
    # a_n = x a_{n-1} + y from a_0 = 0 is y (1 - x^n) / (1 - x) in reals (~1 - x^n); each
    # step rounds once (a fused multiply-add) and shrinks earlier errors by x < 1, so
    # |error| <= u sum x^k <= u / (1 - x) ~ 1000 u per chain; the 12 chains' float32 sum
    # adds 12 u relative. One step fewer would be off by ~1e-3 x^n per chain.
    x, y = float(np.float32(peak.X)), float(np.float32(peak.Y))
    exact = peak.CHAINS * y * (1 - x ** n) / (1 - x)
    u = float(np.finfo(np.float32).eps) / 2
    assert abs(fn(n) - exact) <= peak.CHAINS * (1000 * u + 12 * u)
    assert flops % (2 * peak.CHAINS) == 0 and flops // (2 * peak.CHAINS) in (8, 16)


def test_fma_peak_refuses_no_threads():
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        peak.fma_peak_gflops(0)
