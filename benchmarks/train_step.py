"""Whole GAN iterations side by side: minigan on the numpy device (reference kernels), on
the cpu device (Numba kernels) and PyTorch, same architecture, same initial weights.

    python -m benchmarks.train_step                    # every model
    python -m benchmarks.train_step --models mlp-2d dcgan28 --repeats 15
    python -m benchmarks.train_step --profile dcgan28 --device cpu   # where the time goes
    python -m benchmarks.train_step --products dcgan28-nn            # its matrix products

One iteration = one discriminator step and one generator step, both Adam(2e-4, (0.5,
0.999)), the BCE-with-logits (non-saturating) GAN loss:

    fake = G(z) under no_grad;  loss_D = bce(D(real), 1) + bce(D(fake), 0);  backward; step
    loss_G = bce(D(G(z')), 1);  backward;  step

As in pytorch/examples dcgan, D's parameters keep requires_grad during the G step (their
gradients are computed and then zeroed by the next D step) on both sides.

FLOPs are counted analytically from the matrix products and convolutions, per sample:
with G_f (D_f) the multiply-adds of one generator (discriminator) forward and G_1 (D_1)
those of its first layer, one iteration costs 2 * batch * (4 G_f - G_1 + 9 D_f - 2 D_1):
D step: G forward; D forward, weight and input gradients on real and fake (no input
gradient for the first layer, whose input needs none); G step: G forward, weight and input
gradients (none for the first layer); D forward, weight and input gradients.
"""

from __future__ import annotations

from . import common  # first: sets the thread count before NumPy loads BLAS

import argparse  # noqa: E402
import cProfile  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import NamedTuple  # noqa: E402

import numpy as np  # noqa: E402

import minigan as mg  # noqa: E402
import minigan.functional as F  # noqa: E402
from minigan import nn, optim  # noqa: E402
from minigan.gan import models  # noqa: E402
from minigan.cli import at_least  # noqa: E402

ADAM = dict(lr=2e-4, betas=(0.5, 0.999))  # DCGAN (Radford et al. 2016, section 4)


class Model(NamedTuple):
    name: str
    batch: int
    z_dim: int
    sample_shape: tuple
    build: Callable  # (Generator) -> (G, D) minigan modules
    build_torch: Callable  # (torch) -> (G, D) torch modules, same layers in the same order
    macs: tuple  # (G_f, G_1, D_f, D_1) multiply-adds per sample, see the module docstring

    def gflop(self) -> float:
        g_f, g_1, d_f, d_1 = self.macs
        return 2 * self.batch * (4 * g_f - g_1 + 9 * d_f - 2 * d_1) / 1e9


# ----------------------------------------------------------------------------- models


def _mlp2d(gen):
    # G 2 -> 128 -> 128 -> 2 (ReLU), D 2 -> 128 -> 128 -> 1 (LeakyReLU 0.2)
    return (models.mlp_generator(2, 2, 128, 2, generator=gen),
            models.mlp_discriminator(2, 128, 2, 0.2, generator=gen))


def _mlp2d_torch(torch):
    tnn = torch.nn
    g = tnn.Sequential(tnn.Linear(2, 128), tnn.ReLU(), tnn.Linear(128, 128), tnn.ReLU(),
                       tnn.Linear(128, 2))
    d = tnn.Sequential(tnn.Flatten(), tnn.Linear(2, 128), tnn.LeakyReLU(0.2),
                       tnn.Linear(128, 128), tnn.LeakyReLU(0.2), tnn.Linear(128, 1))
    return g, d


_MNIST_G_WIDTHS = (100, 128, 256, 512, 1024)


def _mnist_mlp(gen):
    """PyTorch-GAN implementations/gan/gan.py: G 100 -> 128 -> 256 -> 512 -> 1024 -> 784
    (LeakyReLU 0.2, BatchNorm1d after all but the first hidden layer, Tanh), D 784 -> 512 ->
    256 -> 1 (LeakyReLU 0.2; its Sigmoid is folded into the logits loss). That script's
    BatchNorm1d(n, 0.8) passes 0.8 as eps (a known bug); the default eps is used here."""
    parts = []
    for i, (width_in, width_out) in enumerate(zip(_MNIST_G_WIDTHS, _MNIST_G_WIDTHS[1:])):
        parts.append(nn.Linear(width_in, width_out, generator=gen))
        if i > 0:
            parts.append(nn.BatchNorm1d(width_out))
        parts.append(nn.LeakyReLU(0.2))
    parts += [nn.Linear(1024, 784, generator=gen), nn.Tanh(), nn.Unflatten(1, (1, 28, 28))]
    d = nn.Sequential(nn.Flatten(), nn.Linear(784, 512, generator=gen), nn.LeakyReLU(0.2),
                      nn.Linear(512, 256, generator=gen), nn.LeakyReLU(0.2),
                      nn.Linear(256, 1, generator=gen))
    return nn.Sequential(*parts), d


def _mnist_mlp_torch(torch):
    tnn = torch.nn
    parts = []
    for i, (width_in, width_out) in enumerate(zip(_MNIST_G_WIDTHS, _MNIST_G_WIDTHS[1:])):
        parts.append(tnn.Linear(width_in, width_out))
        if i > 0:
            parts.append(tnn.BatchNorm1d(width_out))
        parts.append(tnn.LeakyReLU(0.2))
    parts += [tnn.Linear(1024, 784), tnn.Tanh(), tnn.Unflatten(1, (1, 28, 28))]
    d = tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 512), tnn.LeakyReLU(0.2),
                       tnn.Linear(512, 256), tnn.LeakyReLU(0.2), tnn.Linear(256, 1))
    return tnn.Sequential(*parts), d


def _dcgan28(gen):
    g = models.dcgan28_generator(100, 1, generator=gen)
    d = models.dcgan28_discriminator(1, generator=gen)
    models.dcgan_init(g, gen)
    models.dcgan_init(d, gen)
    return g, d


def _dcgan28_torch(torch):
    tnn = torch.nn
    g = tnn.Sequential(
        tnn.Unflatten(1, (100, 1, 1)),
        tnn.ConvTranspose2d(100, 256, 7, 1, 0, bias=False), tnn.BatchNorm2d(256), tnn.ReLU(),
        tnn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), tnn.BatchNorm2d(128), tnn.ReLU(),
        tnn.ConvTranspose2d(128, 1, 4, 2, 1), tnn.Tanh())
    d = tnn.Sequential(
        tnn.Conv2d(1, 64, 4, 2, 1), tnn.LeakyReLU(0.2),
        tnn.Conv2d(64, 128, 4, 2, 1, bias=False), tnn.BatchNorm2d(128), tnn.LeakyReLU(0.2),
        tnn.Conv2d(128, 1, 7, 1, 0), tnn.Flatten())
    return g, d


def _dcgan28_plain(tnn):
    """DCGAN-28 as a user writes it from the public API (#17's model): nn.Sequential of
    PyTorch's layer names, no biases, the default initialisation. The same function builds
    the minigan and the PyTorch copy: pass minigan.nn or torch.nn."""
    g = tnn.Sequential(
        tnn.Unflatten(1, (100, 1, 1)),
        tnn.ConvTranspose2d(100, 256, 7, 1, 0, bias=False), tnn.BatchNorm2d(256), tnn.ReLU(),
        tnn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), tnn.BatchNorm2d(128), tnn.ReLU(),
        tnn.ConvTranspose2d(128, 1, 4, 2, 1, bias=False), tnn.Tanh())
    d = tnn.Sequential(
        tnn.Conv2d(1, 64, 4, 2, 1, bias=False), tnn.LeakyReLU(0.2),
        tnn.Conv2d(64, 128, 4, 2, 1, bias=False), tnn.BatchNorm2d(128), tnn.LeakyReLU(0.2),
        tnn.Conv2d(128, 1, 7, bias=False), tnn.Flatten())
    return g, d


def _dcgan64(gen):
    g = models.dcgan_generator(64, 100, 3, 64, generator=gen)
    d = models.dcgan_discriminator(64, 3, 64, generator=gen)
    models.dcgan_init(g, gen)
    models.dcgan_init(d, gen)
    return g, d


def _dcgan64_torch(torch):
    """pytorch/examples dcgan/main.py, ngf = ndf = 64, nc = 3, nz = 100 (its final Sigmoid
    folded into the logits loss)."""
    tnn = torch.nn
    g = tnn.Sequential(tnn.Unflatten(1, (100, 1, 1)),
                       tnn.ConvTranspose2d(100, 512, 4, 1, 0, bias=False), tnn.BatchNorm2d(512),
                       tnn.ReLU())
    width = 512
    for _ in range(3):
        g.extend([tnn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                  tnn.BatchNorm2d(width // 2), tnn.ReLU()])
        width //= 2
    g.extend([tnn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), tnn.Tanh()])
    d = tnn.Sequential(tnn.Conv2d(3, 64, 4, 2, 1, bias=False), tnn.LeakyReLU(0.2))
    width = 64
    for _ in range(3):
        d.extend([tnn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                  tnn.BatchNorm2d(width * 2), tnn.LeakyReLU(0.2)])
        width *= 2
    d.extend([tnn.Conv2d(512, 1, 4, 1, 0, bias=False), tnn.Flatten()])
    return g, d


def _conv_macs(c_in, c_out, kernel, small_size):
    """Multiply-adds of a conv (or transposed conv) per sample; small_size is the side of
    the smaller of its input and output."""
    return c_in * c_out * kernel * kernel * small_size * small_size


_MNIST_G = [a * b for a, b in zip(_MNIST_G_WIDTHS + (784,), _MNIST_G_WIDTHS[1:] + (784,))][:5]
_DCGAN64_G = [_conv_macs(100, 512, 4, 1)] + [
    _conv_macs(c, c // 2, 4, s) for c, s in ((512, 4), (256, 8), (128, 16))] + [
    _conv_macs(64, 3, 4, 32)]
_DCGAN64_D = [_conv_macs(3, 64, 4, 32)] + [
    _conv_macs(c, 2 * c, 4, s) for c, s in ((64, 16), (128, 8), (256, 4))] + [
    _conv_macs(512, 1, 4, 1)]
_DCGAN28_G = [_conv_macs(100, 256, 7, 1), _conv_macs(256, 128, 4, 7), _conv_macs(128, 1, 4, 14)]
_DCGAN28_D = [_conv_macs(1, 64, 4, 14), _conv_macs(64, 128, 4, 7), _conv_macs(128, 1, 7, 1)]

MODELS = {
    "mlp-2d": Model("MLP-2D", 512, 2, (2,), _mlp2d, _mlp2d_torch,
                    (2 * 128 + 128 * 128 + 128 * 2, 2 * 128, 2 * 128 + 128 * 128 + 128,
                     2 * 128)),
    "mnist-mlp": Model("MNIST-MLP", 64, 100, (1, 28, 28), _mnist_mlp, _mnist_mlp_torch,
                       (sum(_MNIST_G), _MNIST_G[0], 784 * 512 + 512 * 256 + 256, 784 * 512)),
    "dcgan28": Model("DCGAN-28", 64, 100, (1, 28, 28), _dcgan28, _dcgan28_torch,
                     (sum(_DCGAN28_G), _DCGAN28_G[0], sum(_DCGAN28_D), _DCGAN28_D[0])),
    "dcgan28-nn": Model("DCGAN-28 nn API", 64, 100, (1, 28, 28),
                        lambda gen: _dcgan28_plain(nn), lambda torch: _dcgan28_plain(torch.nn),
                        (sum(_DCGAN28_G), _DCGAN28_G[0], sum(_DCGAN28_D), _DCGAN28_D[0])),
    "dcgan28-b128": Model("DCGAN-28", 128, 100, (1, 28, 28), _dcgan28, _dcgan28_torch,
                          (sum(_DCGAN28_G), _DCGAN28_G[0], sum(_DCGAN28_D), _DCGAN28_D[0])),
    "dcgan64": Model("DCGAN-64", 64, 100, (3, 64, 64), _dcgan64, _dcgan64_torch,
                     (sum(_DCGAN64_G), _DCGAN64_G[0], sum(_DCGAN64_D), _DCGAN64_D[0])),
}


# ----------------------------------------------------------------------------- one step


def minigan_iteration(model: Model, device: str, seed: int = 0) -> Callable[[], None]:
    """A closure running one training iteration of `model` on a minigan device."""
    gen = mg.manual_seed(seed)
    g, d = model.build(gen)
    g.to(device)
    d.to(device)
    opt_g = optim.Adam(g.parameters(), **ADAM)
    opt_d = optim.Adam(d.parameters(), **ADAM)
    real = mg.tensor(np.random.default_rng(seed).uniform(
        -1, 1, (model.batch, *model.sample_shape)).astype(np.float32), device=device)

    def iteration():
        z = mg.randn(model.batch, model.z_dim, generator=gen, device=device)
        with mg.no_grad():
            fake = g(z)
        opt_d.zero_grad()
        loss_d = (F.binary_cross_entropy_with_logits(d(real), 1.0)
                  + F.binary_cross_entropy_with_logits(d(fake), 0.0))
        loss_d.backward()
        opt_d.step()
        z = mg.randn(model.batch, model.z_dim, generator=gen, device=device)
        opt_g.zero_grad()
        loss_g = F.binary_cross_entropy_with_logits(d(g(z)), 1.0)
        loss_g.backward()
        opt_g.step()

    iteration.modules = (g, d)
    return iteration


def torch_iteration(torch, model: Model, like=None, seed: int = 0) -> Callable[[], None]:
    """The same iteration in PyTorch; `like` (minigan (G, D)) supplies the initial weights."""
    torch.manual_seed(seed)
    g, d = model.build_torch(torch)
    if like is not None:
        for mine, theirs in zip(like, (g, d)):
            params = list(mine.parameters())
            torch_params = list(theirs.parameters())
            assert [tuple(p.shape) for p in params] == [tuple(p.shape) for p in torch_params]
            with torch.no_grad():
                for p, q in zip(params, torch_params):
                    q.copy_(torch.from_numpy(np.array(p.numpy())))
    opt_g = torch.optim.Adam(g.parameters(), **ADAM)
    opt_d = torch.optim.Adam(d.parameters(), **ADAM)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    real = torch.from_numpy(np.random.default_rng(seed).uniform(
        -1, 1, (model.batch, *model.sample_shape)).astype(np.float32))
    ones = torch.ones(model.batch, 1)
    zeros = torch.zeros(model.batch, 1)

    def iteration():
        z = torch.randn(model.batch, model.z_dim)
        with torch.no_grad():
            fake = g(z)
        opt_d.zero_grad()
        loss_d = bce(d(real), ones) + bce(d(fake), zeros)
        loss_d.backward()
        opt_d.step()
        z = torch.randn(model.batch, model.z_dim)
        opt_g.zero_grad()
        loss_g = bce(d(g(z)), ones)
        loss_g.backward()
        opt_g.step()

    return iteration


def torch_worker_calls(torch, key: str) -> dict:
    """The factory benchmarks/torch_worker.py calls: one iteration of MODELS[key]."""
    return {"iteration": torch_iteration(torch, MODELS[key])}


# ----------------------------------------------------------------------------- reports

def benchmark(names: list[str], devices: list[str], repeats: int, ceiling: float,
              interleave: bool = True, torch_in_process: bool = False,
              calls_per_turn: int = 1) -> str:
    torch = common.load_torch()
    rows = []
    for key in names:
        model = MODELS[key]
        candidates = {}
        for device in devices:
            candidates[device] = minigan_iteration(model, device)
        worker = None
        if torch is not None and torch_in_process:
            like = candidates[devices[0]].modules
            candidates["torch"] = torch_iteration(torch, model, like)
        elif torch is not None:
            worker = common.TorchProcess("benchmarks.train_step", "torch_worker_calls", key)
            candidates["torch"] = worker.candidate("iteration")
        try:
            seconds = common.time_candidates(candidates, repeats, interleave, calls_per_turn)
        finally:
            if worker is not None:
                worker.close()
        gflop = model.gflop()
        for impl, value in seconds.items():
            rate = gflop / value
            ratio = f"{value / seconds['torch']:.2f}" if "torch" in seconds else ""
            rows.append([f"{model.name} b{model.batch}", impl, f"{value * 1e3:.1f}", ratio,
                         f"{gflop:.2f}", f"{rate:.0f}", f"{rate / ceiling:.0%}",
                         f"{rate / common.fma_peak():.0%}"])
    headers = ["model", "impl", "ms/iter", "x torch", "GFLOP/iter", "GFLOP/s",
               "% GEMM ceiling", "% FMA peak"]
    table = common.markdown_table(headers, rows)
    if torch is not None and torch_in_process:
        # minigan must leave PyTorch's settings alone (minigan/_environment.py)
        table += (f"\n\n- PyTorch's thread count after the run: {torch.get_num_threads()} "
                  f"(set to {common.THREADS} before it)")
    return table


def profile(key: str, device: str, iterations: int, top: int) -> None:
    """cProfile of `iterations` iterations, by total time per function."""
    model = MODELS[key]
    if device == "torch":
        step = torch_iteration(common.load_torch(), model)
    else:
        step = minigan_iteration(model, device)
    for _ in range(2):
        step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler).sort_stats("tottime")
    print(f"cProfile: {iterations} iterations of {model.name} b{model.batch} on {device}, "
          f"sorted by time inside each function")
    stats.print_stats(top)


def products(key: str, iterations: int, top: int) -> None:
    """Every matrix product of `iterations` cpu iterations, timed and grouped by shape:
    how much of an iteration the products are, and the rate of each shape."""
    from minigan.kernels.cpu import blas  # the cpu kernels load with the cpu device
    step = minigan_iteration(MODELS[key], "cpu")
    step()  # loads the cpu kernels (and compiles them) before gemm is wrapped
    original = blas.gemm
    totals: dict = {}

    def timed(a, b, out=None, accumulate=False):
        start = time.perf_counter()
        result = original(a, b, out, accumulate)
        shape = (a.shape[0], b.shape[1], a.shape[1])
        calls, seconds = totals.get(shape, (0, 0.0))
        totals[shape] = (calls + 1, seconds + time.perf_counter() - start)
        return result

    users = [m for m in list(sys.modules.values())
             if m is not None and m is not blas and getattr(m, "gemm", None) is original]
    for module in users:
        module.gemm = timed
    try:
        for _ in range(2):
            step()
        totals.clear()
        start = time.perf_counter()
        for _ in range(iterations):
            step()
        total = (time.perf_counter() - start) / iterations
    finally:
        for module in users:
            module.gemm = original
    in_products = sum(seconds for _, seconds in totals.values()) / iterations
    print(f"{MODELS[key].name} b{MODELS[key].batch} on cpu: {total * 1e3:.1f} ms an iteration, "
          f"{in_products * 1e3:.1f} ms of it in matrix products ({in_products / total:.0%})\n")
    rows = [[f"{m} x {n} x {k}", f"{calls / iterations:.0f}",
             f"{seconds / iterations * 1e3:.2f}", f"{2 * m * n * k * calls / seconds / 1e9:.0f}"]
            for (m, n, k), (calls, seconds) in sorted(totals.items(), key=lambda t: -t[1][1])]
    print(common.markdown_table(["product m x n x k", "calls / it.", "ms / it.", "GFLOP/s"],
                                rows[:top]))


def _print_load_at_end() -> None:
    if hasattr(os, "getloadavg"):
        print(f"\n- load average (1 min) at end: {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--devices", nargs="+", default=["numpy", "cpu"],
                        choices=["numpy", "cpu", "cuda"],
                        help="minigan's devices (PyTorch runs beside them when installed)")
    parser.add_argument("--repeats", type=at_least(1), default=9)
    parser.add_argument("--blocks", action="store_true",
                        help="time each implementation in a block of its own instead of "
                             "round-robin (no cross-talk between thread pools)")
    parser.add_argument("--per-turn", type=at_least(1), default=3,
                        help="iterations timed back to back in each round-robin turn "
                             "(after one untimed iteration that wakes the threads)")
    parser.add_argument("--torch-in-process", action="store_true",
                        help="run PyTorch in this process, as in a notebook comparing the "
                             "two (one OpenMP runtime for both), instead of a child "
                             "process of its own")
    parser.add_argument("--profile", choices=list(MODELS),
                        help="profile this model instead of timing (with --device)")
    parser.add_argument("--products", choices=list(MODELS),
                        help="time every matrix product of this model's cpu iterations, by "
                             "shape, instead of timing the iterations")
    parser.add_argument("--device", default="cpu", help="the device to profile (or torch)")
    parser.add_argument("--iterations", type=at_least(1), default=10)
    parser.add_argument("--top", type=at_least(1), default=25)
    args = parser.parse_args(argv)
    common.pin_threads()
    if args.profile:
        profile(args.profile, args.device, args.iterations, args.top)
        return
    if args.products:
        products(args.products, args.iterations, args.top)
        return
    ceiling = common.gemm_ceiling()
    common.print_header("GAN training iterations (D step + G step, Adam), float32", ceiling)
    timing = ("blocks per implementation" if args.blocks else
              f"round-robin, {args.repeats} turns of 1 untimed + {args.per_turn} timed iterations")
    print(f"- timing: {timing}, median\n")
    where = "this process" if args.torch_in_process else "a child process, its own settings"
    print(f"- PyTorch runs in {where}\n")
    print(benchmark(args.models, args.devices, args.repeats, ceiling, not args.blocks,
                    args.torch_in_process, args.per_turn))
    _print_load_at_end()


if __name__ == "__main__":
    main()
