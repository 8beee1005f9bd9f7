"""The "cuda" device end to end, on a real GPU (CuPy arrays): every test is marked `gpu`
and skipped, with the reason, where CuPy sees no GPU (tests/conftest.py).

- the device uses the kernels of kernels/cuda;
- those kernels at realistic (DCGAN-64, batch 32) shapes against the reference kernels
  run in float64 on the same GPU, with the error bounds of tests/test_cuda_kernels.py;
- a few GAN training steps of a small DCGAN on "cuda" and on "numpy" from one seed agree
  (losses, first gradients, final weights).

`gan_training_steps` is shared with tests/test_cuda_kernels.py, which runs the same
comparison on the CUDA simulator, on tiny shapes.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigan as mg
from minigan import functional as F
from minigan import optim
from minigan.gan import models
from minigan.kernels import reference as R

gpu = pytest.mark.gpu


def gan_training_steps(device: str, dtype, steps: int = 3, image_size: int = 16,
                       width: int = 8, batch: int = 8, z_dim: int = 16, seed: int = 0) -> dict:
    """`steps` iterations of a DCGAN (one D step, one G step, Adam, BCE with logits) on
    `device`. Returns NumPy arrays: "losses" (steps, 2), "gradients" of the first
    iteration and the final "state", both keyed "G.<name>" / "D.<name>".
    The same seed gives the same initial weights, data and noise on every device."""
    generator = mg.Generator(seed)
    nets = {
        "G": models.dcgan_generator(image_size, z_dim, channels=1, width=width,
                                    generator=generator),
        "D": models.dcgan_discriminator(image_size, channels=1, width=width,
                                        generator=generator),
    }
    for net in nets.values():
        models.dcgan_init(net, generator)
        net.to(device, dtype)
    g_net, d_net = nets["G"], nets["D"]
    # pytorch/examples dcgan: Adam, lr 2e-4, betas (0.5, 0.999)
    g_opt = optim.Adam(g_net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = optim.Adam(d_net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(seed)
    losses, gradients = [], {}
    for step in range(steps):
        real = mg.tensor(rng.uniform(-1, 1, (batch, 1, image_size, image_size)), dtype=dtype,
                         device=device)
        z = mg.tensor(rng.standard_normal((batch, z_dim)), dtype=dtype, device=device)
        d_opt.zero_grad()
        with mg.no_grad():
            fake = g_net(z)
        d_loss = (F.binary_cross_entropy_with_logits(d_net(real), 1.0)
                  + F.binary_cross_entropy_with_logits(d_net(fake), 0.0))
        d_loss.backward()
        if step == 0:
            gradients.update(_gradients("D", d_net))
        d_opt.step()
        g_opt.zero_grad()
        g_loss = F.binary_cross_entropy_with_logits(d_net(g_net(z)), 1.0)
        g_loss.backward()
        if step == 0:
            gradients.update(_gradients("G", g_net))
        g_opt.step()
        losses.append((d_loss.item(), g_loss.item()))
    state = {f"{prefix}.{key}": np.asarray(value, dtype=np.float64)
             for prefix, net in nets.items() for key, value in net.state_dict().items()}
    return {"losses": np.array(losses), "gradients": gradients, "state": state}


def _gradients(prefix: str, net) -> dict:
    return {f"{prefix}.{name}": p.grad.numpy().astype(np.float64)
            for name, p in net.named_parameters()}


def assert_arrays_close(result: dict, expected: dict, what: str, rtol: float, atol: float):
    assert list(result) == list(expected), what
    for key in expected:
        np.testing.assert_allclose(result[key], expected[key], rtol=rtol, atol=atol,
                                   err_msg=f"{what} {key}")


def assert_gradients_close(result: dict, expected: dict, relative: float) -> None:
    """Each parameter's gradient within `relative` of the expected one, in 2-norm."""
    assert list(result) == list(expected)
    for key in expected:
        error = np.linalg.norm(result[key] - expected[key])
        assert error <= relative * np.linalg.norm(expected[key]), (key, error)


# ----------------------------------------------------------------------------- the device


@gpu
def test_cuda_device_runs_the_cuda_kernels():
    from minigan import backend
    from minigan.kernels import cuda as K

    device = backend.get("cuda")
    for name in K.__all__:
        assert getattr(device.K, name) is getattr(K, name), name
    assert device.xp.__name__ == "cupy"


@gpu
def test_training_steps_on_cuda_match_the_numpy_device():
    """float64 on both devices: differences come from summation order only (~1e-13 relative
    in the gradients). Adam's step lr * m / (sqrt(v) + eps) turns a gradient error into a
    step error of at most ~lr * (relative gradient error), so after 3 steps at lr 2e-4 the
    parameters agree to far better than 1e-9, while a wrong kernel moves them by ~lr."""
    config = dict(image_size=32, width=16, batch=32)
    on_gpu = gan_training_steps("cuda", np.float64, **config)
    on_cpu = gan_training_steps("numpy", np.float64, **config)
    np.testing.assert_allclose(on_gpu["losses"], on_cpu["losses"], rtol=1e-10)
    assert_gradients_close(on_gpu["gradients"], on_cpu["gradients"], relative=1e-10)
    assert_arrays_close(on_gpu["state"], on_cpu["state"], "state", rtol=0, atol=1e-9)


@gpu
def test_float32_gradients_on_cuda_match_the_numpy_device():
    """float32: u = 6e-8 per operation; sums of up to ~1e4 terms (the weight gradients of
    the first layers) grow rounding like sqrt(terms) u ~ 1e-5 relative, and ~10 layers
    deep it compounds to at most ~1e-4 of each gradient's norm. A wrong kernel gives O(1)."""
    config = dict(image_size=32, width=16, batch=32, steps=1)
    on_gpu = gan_training_steps("cuda", np.float32, **config)
    on_cpu = gan_training_steps("numpy", np.float32, **config)
    np.testing.assert_allclose(on_gpu["losses"], on_cpu["losses"], rtol=1e-5)
    assert_gradients_close(on_gpu["gradients"], on_cpu["gradients"], relative=1e-4)


# ----------------------------------------------------------------------------- kernels at size

# pytorch/examples dcgan (ndf = ngf = 64) at 64x64: (input shape, weight shape) of the
# discriminator's stride-2 convolutions; the generator's transposed convolutions are the
# input gradients of these.
DCGAN64_CONVS = [
    ((32, 3, 64, 64), (64, 3, 4, 4)),
    ((32, 64, 32, 32), (128, 64, 4, 4)),
    ((32, 128, 16, 16), (256, 128, 4, 4)),
    ((32, 256, 8, 8), (512, 256, 4, 4)),
]
STRIDE_2 = ((2, 2), (1, 1), (1, 1), 1)
U32 = 2.0**-24


@gpu
@pytest.mark.parametrize("x_shape, w_shape", DCGAN64_CONVS)
def test_conv_kernels_at_dcgan_shapes_match_reference(x_shape, w_shape):
    """Bound: a float32 sum of K products is off by <= ~K u sum |terms| (see
    tests/test_cuda_kernels.py); the reference runs in float64 on the GPU."""
    import cupy

    from minigan.kernels import cuda as K

    rng = cupy.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=cupy.float32)
    w = rng.standard_normal(w_shape, dtype=cupy.float32)
    x64, w64 = x.astype(cupy.float64), w.astype(cupy.float64)
    c_out, c_in, kh, kw = w_shape

    y = K.conv2d(x, w, *STRIDE_2)
    exact = R.conv2d(x64, w64, *STRIDE_2)
    bound = 2 * (c_in * kh * kw + 1) * U32 * R.conv2d(abs(x64), abs(w64), *STRIDE_2)
    assert bool((abs(y - exact) <= bound).all()), "conv2d"

    gy = rng.standard_normal(y.shape, dtype=cupy.float32)
    gy64 = gy.astype(cupy.float64)
    gx = K.conv2d_input_grad(gy, w, x_shape[2:], *STRIDE_2)
    exact = R.conv2d_input_grad(gy64, w64, x_shape[2:], *STRIDE_2)
    bound = 2 * (c_out * kh * kw + 1) * U32 * R.conv2d_input_grad(
        abs(gy64), abs(w64), x_shape[2:], *STRIDE_2)
    assert bool((abs(gx - exact) <= bound).all()), "conv2d_input_grad"

    gw = K.conv2d_weight_grad(x, gy, (kh, kw), *STRIDE_2)
    exact = R.conv2d_weight_grad(x64, gy64, (kh, kw), *STRIDE_2)
    terms = gy.size // c_out
    bound = 2 * (terms + 1) * U32 * R.conv2d_weight_grad(abs(x64), abs(gy64), (kh, kw),
                                                         *STRIDE_2)
    assert bool((abs(gw - exact) <= bound).all()), "conv2d_weight_grad"


@gpu
def test_batch_norm_and_adam_at_size_match_reference():
    """Batch norm over 32*32*32 values per channel with |mean| = 10 std; one Adam step over
    3.5 million parameters (DCGAN-64's generator). Bounds as in test_cuda_kernels.py: the
    kernels' float64 sums leave only the final float32 rounding, a few u relative."""
    import cupy

    from minigan.kernels import cuda as K

    rng = cupy.random.default_rng(1)
    x = rng.standard_normal((32, 128, 32, 32), dtype=cupy.float32) + 10
    weight = rng.standard_normal(128, dtype=cupy.float32)
    bias = rng.standard_normal(128, dtype=cupy.float32)
    y, mean, var = K.batch_norm_train(x, weight, bias, 1e-5)
    y64, mean64, var64 = R.batch_norm_train(x.astype(cupy.float64), weight.astype(cupy.float64),
                                            bias.astype(cupy.float64), 1e-5)
    assert bool((abs(mean - mean64) <= 4 * U32 * abs(mean64)).all())
    assert bool((abs(var - var64) <= 4 * U32 * var64).all())
    # |y - b| <= |w| * (a few std): bound by 4 u (|y| + |b| + |w| (|x| + |mean|) invstd)
    invstd = (1 / cupy.sqrt(var64 + 1e-5)).reshape(1, -1, 1, 1)
    scale = abs(weight.astype(cupy.float64)).reshape(1, -1, 1, 1) * invstd
    bound = 4 * U32 * (abs(y64) + abs(bias).reshape(1, -1, 1, 1) + scale * (abs(x) + 10))
    assert bool((abs(y - y64) <= bound).all())

    size = 3_576_704
    param = rng.standard_normal(size, dtype=cupy.float32)
    grad = rng.standard_normal(size, dtype=cupy.float32)
    moments = [cupy.zeros(size, cupy.float32) for _ in range(2)]
    expected = [a.astype(cupy.float64) for a in (param, grad, *moments)]
    K.adam_update(param, grad, *moments, 1, 2e-4, 0.5, 0.999, 1e-8, 0.0, False)
    R.adam_update(*expected, 1, 2e-4, 0.5, 0.999, 1e-8, 0.0, False)
    # the step changes each weight by ~lr: u (|p| + 4 lr) covers its rounding
    assert bool((abs(param - expected[0]) <= 4 * U32 * (abs(expected[0]) + 8e-4)).all())
