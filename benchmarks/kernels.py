"""Per-layer convolution timings at the DCGAN-28 shapes: reference (NumPy), cpu (Numba +
BLAS) and PyTorch side by side, forward and backward, with GFLOP/s against the GEMM
ceiling measured in the same run and the FMA peak.

    python -m benchmarks.kernels              # tables for batch 64 and 128
    python -m benchmarks.kernels --batch 64 --repeats 5
    python -m benchmarks.kernels --startup    # cold compile and cached start-up of the cpu kernels

A conv layer's forward is conv2d; its backward is conv2d_input_grad + conv2d_weight_grad.
The cpu kernels get x and gy in channels-last memory, as in a training step (their results
are channels-last and the activations and batch norm keep it); the numpy kernels and
PyTorch get NCHW, their own layout. The images entering D's first layer and the codes
entering G's first have one channel or a 1x1 size, where both layouts are the same.
A transposed conv layer's forward is conv2d_input_grad; its backward is conv2d (gradient
of its input) + conv2d_weight_grad. PyTorch's backward is aten.convolution_backward with
both gradients, which is what its autograd calls.
"""

from __future__ import annotations

from . import common  # first: sets the thread count before NumPy loads BLAS

import argparse  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import NamedTuple  # noqa: E402

import numpy as np  # noqa: E402

from minigan import backend  # noqa: E402
from minigan.cli import at_least  # noqa: E402


class Layer(NamedTuple):
    """One layer of DCGAN-28 (the dcgan-mnist recipe)."""

    name: str
    transposed: bool
    c_in: int
    c_out: int
    kernel: int
    stride: int
    padding: int
    in_size: int

    @property
    def out_size(self) -> int:
        k, s, p, size = self.kernel, self.stride, self.padding, self.in_size
        return (size - 1) * s - 2 * p + k if self.transposed else (size + 2 * p - k) // s + 1

    def flops(self, batch: int) -> float:
        """2 * N * C_out * H_out * W_out * C_in * kH * kW of the equivalent conv2d (for a
        transposed layer, the conv2d whose input gradient it is): one direction."""
        small = self.in_size if self.transposed else self.out_size
        return 2.0 * batch * self.c_in * self.c_out * small * small * self.kernel**2


DCGAN28 = [
    Layer("G ConvT(100,256,7,1,0) 1->7", True, 100, 256, 7, 1, 0, 1),
    Layer("G ConvT(256,128,4,2,1) 7->14", True, 256, 128, 4, 2, 1, 7),
    Layer("G ConvT(128,1,4,2,1) 14->28", True, 128, 1, 4, 2, 1, 14),
    Layer("D Conv(1,64,4,2,1) 28->14", False, 1, 64, 4, 2, 1, 28),
    Layer("D Conv(64,128,4,2,1) 14->7", False, 64, 128, 4, 2, 1, 14),
    Layer("D Conv(128,1,7,1,0) 7->1", False, 128, 1, 7, 1, 0, 7),
]


def _channels_last(a: np.ndarray) -> np.ndarray:
    """a's values in channels-last memory, the layout the cpu kernels pass between layers."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _minigan_calls(kernels, layer: Layer, batch: int, rng, channels_last: bool = False):
    """(forward, backward) closures over float32 arrays for one layer on one kernel set;
    with channels_last, x and gy are in the memory layout a training step hands them."""
    stride, padding, dilation = (layer.stride,) * 2, (layer.padding,) * 2, (1, 1)
    x = rng.standard_normal((batch, layer.c_in, layer.in_size, layer.in_size), np.float32)
    gy = rng.standard_normal((batch, layer.c_out, layer.out_size, layer.out_size), np.float32)
    if channels_last:
        x, gy = _channels_last(x), _channels_last(gy)
    kernel_hw = (layer.kernel, layer.kernel)
    geometry = (stride, padding, dilation, 1)
    if layer.transposed:
        # conv weight layout of the equivalent conv2d: (C_out of conv = c_in, C_in = c_out)
        w = rng.standard_normal((layer.c_in, layer.c_out, *kernel_hw), np.float32) * 0.02
        out_hw = (layer.out_size, layer.out_size)

        def forward():
            return kernels.conv2d_input_grad(x, w, out_hw, *geometry)

        def backward():
            return kernels.conv2d(gy, w, *geometry), kernels.conv2d_weight_grad(
                gy, x, kernel_hw, *geometry)
    else:
        w = rng.standard_normal((layer.c_out, layer.c_in, *kernel_hw), np.float32) * 0.02
        in_hw = (layer.in_size, layer.in_size)

        def forward():
            return kernels.conv2d(x, w, *geometry)

        def backward():
            return kernels.conv2d_input_grad(gy, w, in_hw, *geometry), kernels.conv2d_weight_grad(
                x, gy, kernel_hw, *geometry)
    return forward, backward


def _torch_calls(torch, layer: Layer, batch: int, rng):
    stride, padding = (layer.stride,) * 2, (layer.padding,) * 2
    x = torch.from_numpy(
        rng.standard_normal((batch, layer.c_in, layer.in_size, layer.in_size), np.float32))
    gy = torch.from_numpy(
        rng.standard_normal((batch, layer.c_out, layer.out_size, layer.out_size), np.float32))
    kernel_hw = (layer.kernel, layer.kernel)
    shape = (layer.c_in, layer.c_out) if layer.transposed else (layer.c_out, layer.c_in)
    w = torch.from_numpy(rng.standard_normal((*shape, *kernel_hw), np.float32) * 0.02)
    conv = torch.nn.functional.conv_transpose2d if layer.transposed else torch.nn.functional.conv2d
    mask = [True, True, False]

    def forward():
        with torch.no_grad():
            return conv(x, w, None, stride, padding)

    def backward():
        return torch.ops.aten.convolution_backward(
            gy, x, w, None, stride, padding, (1, 1), layer.transposed, (0, 0), 1, mask)

    return forward, backward


def torch_worker_calls(torch, layer_index: int, batch: int) -> dict:
    """The factory benchmarks/torch_worker.py calls: forward and backward of one layer."""
    forward, backward = _torch_calls(torch, DCGAN28[layer_index], batch,
                                     np.random.default_rng(layer_index))
    return {"fwd": forward, "bwd": backward}


def benchmark_layers(batch: int, repeats: int, ceiling: float,
                     torch_in_process: bool = False) -> str:
    torch = common.load_torch()
    rng = np.random.default_rng(0)
    implementations = {"numpy": backend.get("numpy").K, "cpu": backend.get("cpu").K}
    rows = []
    totals: dict[str, float] = {}
    for index, layer in enumerate(DCGAN28):
        candidates = {}
        for name, kernels in implementations.items():
            forward, backward = _minigan_calls(kernels, layer, batch, rng, name == "cpu")
            candidates[f"{name} fwd"], candidates[f"{name} bwd"] = forward, backward
        worker = None
        if torch is not None and torch_in_process:
            forward, backward = _torch_calls(torch, layer, batch, rng)
            candidates["torch fwd"], candidates["torch bwd"] = forward, backward
        elif torch is not None:
            worker = common.TorchProcess("benchmarks.kernels", "torch_worker_calls", index,
                                         batch)
            candidates["torch fwd"] = worker.candidate("fwd")
            candidates["torch bwd"] = worker.candidate("bwd")
        try:
            seconds = common.time_candidates(candidates, repeats, calls_per_turn=3)
        finally:
            if worker is not None:
                worker.close()
        flops = layer.flops(batch)
        for impl in ["numpy", "cpu"] + (["torch"] if torch is not None else []):
            fwd, bwd = seconds[f"{impl} fwd"], seconds[f"{impl} bwd"]
            totals[impl] = totals.get(impl, 0.0) + fwd + bwd
            rate = 3 * flops / (fwd + bwd) / 1e9
            ratio = ""
            if torch is not None:
                ratio = f"{(fwd + bwd) / (seconds['torch fwd'] + seconds['torch bwd']):.2f}"
            rows.append([
                layer.name, impl, f"{fwd * 1e3:.2f}", f"{bwd * 1e3:.2f}",
                f"{(fwd + bwd) * 1e3:.2f}", f"{flops / fwd / 1e9:.0f}",
                f"{2 * flops / bwd / 1e9:.0f}", f"{rate:.0f}", ratio,
                f"{rate / ceiling:.0%}", f"{rate / common.fma_peak():.0%}",
            ])
    all_flops = 3 * sum(layer.flops(batch) for layer in DCGAN28)
    for impl, total in totals.items():
        rate = all_flops / total / 1e9
        ratio = f"{total / totals['torch']:.2f}" if "torch" in totals else ""
        rows.append(["**all six layers**", impl, "", "", f"{total * 1e3:.2f}", "", "",
                     f"{rate:.0f}", ratio, f"{rate / ceiling:.0%}",
                     f"{rate / common.fma_peak():.0%}"])
    headers = ["layer", "impl", "fwd ms", "bwd ms", "fwd+bwd ms", "fwd GFLOP/s",
               "bwd GFLOP/s", "fwd+bwd GFLOP/s", "x torch", "% GEMM ceiling", "% FMA peak"]
    return f"### batch {batch}\n\n" + common.markdown_table(headers, rows)


# ----------------------------------------------------------------------------- start-up

_WARM_ALL = """
import time
start = time.perf_counter()
import numpy as np
from minigan.kernels import cpu
x = np.ones((2, 3, 6, 6), np.float32); w = np.ones((4, 3, 3, 3), np.float32)
g = ((2, 2), (1, 1), (1, 1), 1)
y = cpu.conv2d(x, w, *g)
cpu.conv2d_input_grad(y, w, (6, 6), *g); cpu.conv2d_weight_grad(x, y, (3, 3), *g)
for n in (8, 40000):
    a = np.ones(n, np.float32)
    cpu.activation(a, "relu", 0.0); cpu.activation_grad(a, a, "relu", 0.0)
    cpu.bias_activation(a.reshape(n // 4, 4), np.ones(4, np.float32), "relu", 0.0)
    cpu.bce_with_logits(a, a)
    cpu.adam_update(a, a, a.copy(), a.copy(), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    cpu.rmsprop_update(a, a, a.copy(), a.copy(), 1e-3, 0.99, 1e-8, 0.0, 0.9)
    cpu.sgd_update(a, a, a.copy(), 1e-3, 0.9, 0.0, False)
for shape in ((8, 4), (2, 4, 3, 3)):
    a = np.ones(shape, np.float32); c = np.ones(4, np.float32)
    y, m, v = cpu.batch_norm_train(a, c, c, 1e-5)
    cpu.batch_norm_eval(a, m, v, c, c, 1e-5); cpu.batch_norm_backward(a, a, c, m, v, 1e-5)
print(time.perf_counter() - start)
"""


def startup_times() -> str:
    """Seconds to import and run every cpu kernel once (float32, serial and parallel
    copies) with an empty Numba cache (cold: everything compiles) and then again with the
    cache that run filled (warm: a new process loads the machine code)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _WARM_ALL], env=env, check=True,
                                  capture_output=True, text=True)
            total = time.perf_counter() - start
            times.append((float(done.stdout.strip()), total))
    return common.markdown_table(
        ["start", "kernels imported and called once (s)", "whole process (s)"],
        [["cold (empty cache)", f"{times[0][0]:.1f}", f"{times[0][1]:.1f}"],
         ["warm (cached)", f"{times[1][0]:.2f}", f"{times[1][1]:.2f}"]])


def _print_load_at_end() -> None:
    if hasattr(os, "getloadavg"):
        print(f"\n- load average (1 min) at end: {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=at_least(1), nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=at_least(1), default=7)
    parser.add_argument("--startup", action="store_true",
                        help="measure the cold and cached start-up of the cpu kernels only")
    parser.add_argument("--torch-in-process", action="store_true",
                        help="run PyTorch in this process (it then inherits minigan's "
                             "OpenMP settings) instead of a child process of its own")
    args = parser.parse_args(argv)
    common.pin_threads()
    if args.startup:
        print("### cpu kernels: start-up\n")
        print(startup_times())
        return
    ceiling = common.gemm_ceiling()
    common.print_header("Conv layers of DCGAN-28, float32", ceiling)
    where = "this process" if args.torch_in_process else "a child process, its own settings"
    print(f"- PyTorch runs in {where}; round-robin turns of 1 untimed + 3 timed calls\n")
    for batch in args.batch:
        print(benchmark_layers(batch, args.repeats, ceiling, args.torch_in_process))
        print()
    _print_load_at_end()


if __name__ == "__main__":
    main()
