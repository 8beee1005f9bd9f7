"""The machine's float32 FMA peak, measured: what "% FMA peak" in the benchmarks divides by.

Each thread runs one loop of CHAINS independent vector fused multiply-adds (a <- a * x + y),
compiled for this CPU by llvmlite (the LLVM that Numba uses) at the widest float vector it
has: 16 lanes with AVX-512, else 8. The chains are independent, so the loop is bound by
the FMA units' throughput, not by one FMA's latency (12 chains cover 2 units of 4-5 cycles
each). The threads start together; the best of a few runs counts. A C loop of the same
kind gave 231 GFLOP/s on 2 Zen 4 cores (shared/PERFORMANCE.md); this one gives 522 on 2
Zen 5 cores, whose AVX-512 units are 512 bits wide (benchmarks/RESULTS.md).

    python -m benchmarks.peak [--threads 2]
"""

from __future__ import annotations

import argparse
import ctypes
import struct
import threading
import time

CHAINS = 12
X, Y = 0.999, 0.001  # a <- a x + y stays in (0, 1): no overflow, no denormals

_compiled: dict = {}


def _float_literal(value: float) -> str:
    """An LLVM float constant: the hex of the double that the float32 value is."""
    import numpy as np

    return "0x" + struct.pack(">d", float(np.float32(value))).hex().upper()


def _kernel():
    """(fn(n) -> float, flops per iteration): the loop, compiled once per process. fn
    returns the first lane of the chains' sum, (1 - x^n) * CHAINS from a = 0."""
    if "fn" in _compiled:
        return _compiled["fn"], _compiled["flops"]
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    features = llvm.get_host_cpu_features()
    width = 16 if features.get("avx512f", False) else 8
    vec = f"<{width} x float>"

    def splat(value):
        return "<" + ", ".join([f"float {_float_literal(value)}"] * width) + ">"

    fma = f"@llvm.fma.v{width}f32"
    ir = [f"declare {vec} {fma}({vec}, {vec}, {vec})",
          "define float @fma_chains(i64 %n) {",
          "entry:", "  br label %loop", "loop:",
          "  %i = phi i64 [0, %entry], [%next, %loop]"]
    ir += [f"  %a{c} = phi {vec} [zeroinitializer, %entry], [%b{c}, %loop]"
           for c in range(CHAINS)]
    ir += [f"  %b{c} = call {vec} {fma}({vec} %a{c}, {vec} {splat(X)}, {vec} {splat(Y)})"
           for c in range(CHAINS)]
    ir += ["  %next = add i64 %i, 1", "  %done = icmp sge i64 %next, %n",
           "  br i1 %done, label %exit, label %loop", "exit:", "  %s0 = fadd "
           f"{vec} %b0, zeroinitializer"]
    ir += [f"  %s{c} = fadd {vec} %s{c - 1}, %b{c}" for c in range(1, CHAINS)]
    ir += [f"  %r = extractelement {vec} %s{CHAINS - 1}, i32 0", "  ret float %r", "}"]
    module = llvm.parse_assembly("\n".join(ir))
    module.verify()
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features.flatten(), opt=2)
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    # ctypes releases the GIL for the call, so Python threads run it on separate cores
    fn = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(
        engine.get_function_address("fma_chains"))
    _compiled.update(fn=fn, flops=2 * width * CHAINS, engine=engine)
    return fn, _compiled["flops"]


def _after(barrier, fn, n):
    barrier.wait()
    fn(n)


def fma_peak_gflops(threads: int, seconds: float = 0.2, runs: int = 3) -> float:
    """GFLOP/s of `threads` threads each running the FMA loop for ~`seconds`; the best of
    `runs` runs."""
    if threads < 1:
        raise ValueError(f"fma_peak_gflops: threads must be at least 1, got {threads}")
    fn, flops = _kernel()
    start = time.perf_counter()
    fn(1 << 20)
    n = max(1 << 20, int((1 << 20) * seconds / max(time.perf_counter() - start, 1e-6)))
    best = 0.0
    for _ in range(runs):
        ready = threading.Barrier(threads + 1)
        workers = [threading.Thread(target=_after, args=(ready, fn, n))
                   for _ in range(threads)]
        for worker in workers:
            worker.start()
        ready.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        best = max(best, threads * n * flops / (time.perf_counter() - start) / 1e9)
    return best


def main() -> None:
    from minigan.cli import at_least

    from . import common

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=at_least(1), default=common.THREADS)
    args = parser.parse_args()
    one = fma_peak_gflops(1)
    print(f"float32 FMA peak: {one:.1f} GFLOP/s on 1 thread", end="")
    if args.threads > 1:
        print(f", {fma_peak_gflops(args.threads):.1f} on {args.threads}", end="")
    print()


if __name__ == "__main__":
    main()
