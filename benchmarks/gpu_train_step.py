"""Full GAN training iterations on the GPU: minigan's "cuda" device against PyTorch (cuDNN).

One iteration is what a DCGAN trainer does per batch (pytorch/examples dcgan/main.py):
a D step (G(z) without grad, D on real and fake, BCE with logits, backward, Adam) and a G
step (D(G(z)), BCE against "real", backward, Adam). Models come from minigan.gan.models:

    DCGAN-64  pytorch/examples dcgan (ngf = ndf = 64, nz = 100, 3 x 64 x 64), batch 128
    DCGAN-28  dcgan-mnist (1 x 28 x 28), batch 128

The PyTorch twins are built layer by layer from the minigan models and load their
state_dict, so both sides start from the same weights and run the same layers.

Rows:
    minigan cuda            the cuda device with the kernels of kernels/cuda
    minigan cuda reference  the same device with the reference kernels running on CuPy
                            (what the CUDA kernels buy)
    torch fp32              cuDNN with TF32 off: the same float32 arithmetic as minigan
    torch tf32              PyTorch's default for convolutions (TF32 tensor cores)

Timing: the candidates run round-robin after a warm-up (which also pays Numba's compile
and cuDNN's algorithm search); each iteration is timed by a wall clock with the device
synchronised before and after, and the table shows the median and the quartiles.

    python benchmarks/gpu_train_step.py [--out DIR] [--iterations 20] [--models dcgan64 ...]

With --device numpy (and torch on the CPU) the same code runs on a machine without a GPU,
with small batches: a check of the script itself, not a benchmark.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from types import SimpleNamespace

import numpy as np

import minigan as mg
from minigan import backend, optim
from minigan import functional as F
from minigan.gan import models
from minigan.kernels import reference
from minigan.cli import at_least

# pytorch/examples dcgan/main.py: Adam(lr=0.0002, betas=(0.5, 0.999))
ADAM = dict(lr=2e-4, betas=(0.5, 0.999))
Z_DIM = 100


def build_models(name: str, generator: mg.Generator):
    """(G, D, image shape) of a benchmark model, DCGAN-initialised."""
    if name == "dcgan64":
        g = models.dcgan_generator(64, Z_DIM, channels=3, generator=generator)
        d = models.dcgan_discriminator(64, channels=3, generator=generator)
        shape = (3, 64, 64)
    elif name == "dcgan28":
        g = models.dcgan28_generator(Z_DIM, channels=1, generator=generator)
        d = models.dcgan28_discriminator(channels=1, generator=generator)
        shape = (1, 28, 28)
    else:
        raise ValueError(f"unknown model {name!r}: expected dcgan64 or dcgan28")
    models.dcgan_init(g, generator)
    models.dcgan_init(d, generator)
    return g, d, shape


def conv_gflop(net, input_shape) -> float:
    """Forward GFLOP of the net's convolutions (2 * MACs), counted from its layers."""
    total, shape = 0, input_shape
    for layer in net:
        kind = type(layer).__name__
        if kind == "Unflatten":
            shape = shape[:1] + tuple(layer.unflattened_size)
        elif kind in ("Conv2d", "ConvTranspose2d"):
            (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
            n, c_in, h, w = shape
            if kind == "Conv2d":
                out_h, out_w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
                macs = n * layer.out_channels * out_h * out_w * c_in * kh * kw
            else:
                out_h = (h - 1) * sh - 2 * ph + kh + layer.output_padding[0]
                out_w = (w - 1) * sw - 2 * pw + kw + layer.output_padding[1]
                macs = n * c_in * h * w * layer.out_channels * kh * kw
            total += 2 * macs
            shape = (n, layer.out_channels, out_h, out_w)
    return total / 1e9


def iteration_gflop(g, d, batch: int, image_shape) -> float:
    """Convolution GFLOP of one iteration. Backward costs twice the forward (input and
    weight gradients). G runs forward twice (once without grad) and backward once: 4 F_G.
    D runs forward three times (real, fake, G step) and backward three times: 9 F_D.
    (The first layers' unneeded input gradients are counted too: an upper estimate.)"""
    f_g = conv_gflop(g, (batch, Z_DIM))
    f_d = conv_gflop(d, (batch,) + tuple(image_shape))
    return 4 * f_g + 9 * f_d


# ----------------------------------------------------------------------------- minigan


def minigan_iteration(g, d, device: str, batch: int, image_shape, seed: int):
    g.to(device)
    d.to(device)
    g_opt = optim.Adam(g.parameters(), **ADAM)
    d_opt = optim.Adam(d.parameters(), **ADAM)
    rng = np.random.default_rng(seed)
    real = mg.tensor(rng.uniform(-1, 1, (batch,) + tuple(image_shape)), dtype=np.float32,
                     device=device)
    z = mg.tensor(rng.standard_normal((batch, Z_DIM)), dtype=np.float32, device=device)

    def iteration():
        d_opt.zero_grad()
        with mg.no_grad():
            fake = g(z)
        d_loss = (F.binary_cross_entropy_with_logits(d(real), 1.0)
                  + F.binary_cross_entropy_with_logits(d(fake), 0.0))
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad()
        g_loss = F.binary_cross_entropy_with_logits(d(g(z)), 1.0)
        g_loss.backward()
        g_opt.step()
        return d_loss, g_loss

    return iteration


# ----------------------------------------------------------------------------- torch


def torch_twin(torch, net):
    """The same layers in torch.nn, loaded with the net's state_dict."""
    tnn, layers = torch.nn, []
    for layer in net:
        kind = type(layer).__name__
        if kind == "Conv2d":
            twin = tnn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                              layer.stride, layer.padding, layer.dilation, layer.groups,
                              bias=layer.bias is not None)
        elif kind == "ConvTranspose2d":
            twin = tnn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                       layer.stride, layer.padding, layer.output_padding,
                                       layer.groups, bias=layer.bias is not None,
                                       dilation=layer.dilation)
        elif kind == "BatchNorm2d":
            twin = tnn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum)
        elif kind == "LeakyReLU":
            twin = tnn.LeakyReLU(layer.negative_slope)
        elif kind in ("ReLU", "Tanh", "Sigmoid"):
            twin = getattr(tnn, kind)()
        elif kind == "Flatten":
            twin = tnn.Flatten(layer.start_dim, layer.end_dim)
        elif kind == "Unflatten":
            twin = tnn.Unflatten(layer.dim, layer.unflattened_size)
        else:
            raise ValueError(f"torch_twin: no torch twin for layer {kind}")
        layers.append(twin)
    model = tnn.Sequential(*layers)
    state = {k: torch.from_numpy(np.array(v)) for k, v in net.state_dict().items()}
    model.load_state_dict(state)
    return model


def torch_iteration(torch, g, d, device: str, batch: int, image_shape, seed: int):
    g, d = torch_twin(torch, g).to(device), torch_twin(torch, d).to(device)
    g_opt = torch.optim.Adam(g.parameters(), **ADAM)
    d_opt = torch.optim.Adam(d.parameters(), **ADAM)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    rng = np.random.default_rng(seed)
    real = torch.from_numpy(rng.uniform(-1, 1, (batch,) + tuple(image_shape))).float()
    z = torch.from_numpy(rng.standard_normal((batch, Z_DIM))).float()
    real, z = real.to(device), z.to(device)
    ones = torch.ones(batch, 1, device=device)
    zeros = torch.zeros(batch, 1, device=device)

    def iteration():
        d_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = g(z)
        d_loss = bce(d(real), ones) + bce(d(fake), zeros)
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        g_loss = bce(d(g(z)), ones)
        g_loss.backward()
        g_opt.step()
        return d_loss, g_loss

    return iteration


# ----------------------------------------------------------------------------- timing


def timed(iteration, synchronize, setup=None):
    """Seconds of one synchronised iteration; `setup` runs first, outside the clock."""
    if setup is not None:
        setup()
    synchronize()
    start = time.perf_counter()
    iteration()
    synchronize()
    return time.perf_counter() - start


def run_model(name: str, args, torch, synchronize) -> list[dict]:
    g, d, image_shape = build_models(name, mg.Generator(args.seed))
    gflop = iteration_gflop(g, d, args.batch, image_shape)
    data = (args.batch, image_shape, args.seed)
    candidates = {}  # label -> (iteration, setup run before each timed iteration)
    if torch is not None:  # twins first: they copy the weights before minigan trains them
        torch_device = "cuda" if args.device == "cuda" else "cpu"
        for precision in ("fp32", "tf32") if torch_device == "cuda" else ("fp32",):
            tf32 = precision == "tf32"

            def set_precision(tf32=tf32):
                torch.backends.cudnn.allow_tf32 = tf32
                torch.backends.cuda.matmul.allow_tf32 = tf32

            candidates[f"torch {precision}"] = (
                torch_iteration(torch, g, d, torch_device, *data), set_precision)

    device_backend = backend.get(args.device)
    fast_kernels = device_backend.K
    reference_kernels = SimpleNamespace(**{n: getattr(reference, n) for n in reference.__all__})

    def use(kernels):
        return lambda: setattr(device_backend, "K", kernels)

    label = f"minigan {args.device}"
    candidates[label] = (minigan_iteration(g, d, args.device, *data), use(fast_kernels))
    if args.device == "cuda" and not args.skip_reference:
        g2, d2, _ = build_models(name, mg.Generator(args.seed))
        candidates[label + " reference"] = (minigan_iteration(g2, d2, args.device, *data),
                                            use(reference_kernels))

    times = {label: [] for label in candidates}
    warmup_seconds, first_losses = {}, {}
    for label, (iteration, setup) in candidates.items():
        start = time.perf_counter()
        setup()
        # every candidate starts from the same weights and data: equal first losses show
        # that the twins are the same model
        first_losses[label] = [float(loss.item()) for loss in iteration()]
        for _ in range(args.warmup - 1):
            timed(iteration, synchronize, setup)
        warmup_seconds[label] = time.perf_counter() - start
    for _ in range(args.iterations):
        for label, (iteration, setup) in candidates.items():
            times[label].append(timed(iteration, synchronize, setup))
    device_backend.K = fast_kernels

    rows = []
    torch_fp32 = statistics.median(times["torch fp32"]) if "torch fp32" in times else None
    for label, seconds in times.items():
        median = statistics.median(seconds)
        q1, _, q3 = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else (median,) * 3
        rows.append({
            "model": name, "batch": args.batch, "impl": label, "ms": 1e3 * median,
            "q1_ms": 1e3 * q1, "q3_ms": 1e3 * q3,
            "x_torch_fp32": median / torch_fp32 if torch_fp32 else None,
            "gflop": gflop, "tflops": gflop / median / 1e3,
            "warmup_s": warmup_seconds[label], "first_losses": first_losses[label],
        })
        print(f"{name:8} {label:26} {1e3 * median:9.2f} ms   first (D, G) losses "
              f"{first_losses[label][0]:.6f} {first_losses[label][1]:.6f}", flush=True)
    return rows


def describe(torch, device: str) -> dict:
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(), "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None),
    }
    import numba

    info["numba"] = numba.__version__
    if device == "cuda":
        import cupy

        info["cupy"] = cupy.__version__
        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    return info


def markdown(rows: list[dict], info: dict, args) -> str:
    lines = [
        "# GAN training iterations on the GPU: minigan vs PyTorch",
        "",
        f"Command: `python benchmarks/gpu_train_step.py --iterations {args.iterations} "
        f"--warmup {args.warmup} --batch {args.batch}`",
        "",
        ", ".join(f"{k}: {v}" for k, v in info.items()),
        "",
        "One iteration = D step + G step (Adam, BCE with logits); median of "
        f"{args.iterations} synchronised iterations run round-robin; q1-q3 the quartiles; "
        "GFLOP counts the convolutions only (4 G forwards + 9 D forwards).",
        "",
        "| model | batch | impl | ms/iter | q1-q3 ms | x torch fp32 | GFLOP/iter | TFLOP/s "
        "| warm-up s | first D, G loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['x_torch_fp32']:.2f}" if r["x_torch_fp32"] else ""
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['impl']} | {r['ms']:.2f} | "
            f"{r['q1_ms']:.2f}-{r['q3_ms']:.2f} | {ratio} | {r['gflop']:.1f} | "
            f"{r['tflops']:.2f} | {r['warmup_s']:.1f} | "
            f"{r['first_losses'][0]:.5f}, {r['first_losses'][1]:.5f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "numpy", "cpu"])
    parser.add_argument("--models", nargs="+", default=["dcgan64", "dcgan28"])
    parser.add_argument("--batch", type=at_least(1), default=128)
    parser.add_argument("--iterations", type=at_least(1), default=20)
    parser.add_argument("--warmup", type=at_least(1), default=3, help="at least 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-reference", action="store_true",
                        help="leave out the reference-kernels row")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_results")
    args = parser.parse_args(argv)

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("torch is not installed: minigan rows only", file=sys.stderr)
    if args.device == "cuda":
        import cupy

        def synchronize():
            cupy.cuda.Device().synchronize()
            if torch is not None:
                torch.cuda.synchronize()

        if torch is not None:
            torch.backends.cudnn.benchmark = True  # as pytorch/examples dcgan does
    else:
        def synchronize():
            pass

    info = describe(torch, args.device)
    rows = []
    for name in args.models:
        rows += run_model(name, args, torch, synchronize)
    os.makedirs(args.out, exist_ok=True)
    table = markdown(rows, info, args)
    with open(os.path.join(args.out, "gpu_train_step.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "gpu_train_step.json"), "w") as f:
        json.dump({"info": info, "rows": rows}, f, indent=1)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
