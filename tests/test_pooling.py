"""Pooling: max_pool2d_indices (reference kernel) and avg_pool2d against window-by-window
loops written from PyTorch's documented rules, gradients and gradients of gradients by
finite differences, PyTorch as an outside oracle on numpy and cpu, layers and errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
import minigan.nn as nn
from minigan.kernels import reference as K
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array, seeds
from tests.torch_compare import compare_with_torch, devices, torch_or_skip

DEVICE = "numpy"


@st.composite
def pool_configs(draw, max_size=5, dilation=True):
    """(shape, kernel, stride, padding, dilation, ceil_mode) of a valid 2-D pooling."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    # PyTorch: padding at most half of the (dilated) kernel
    padding = tuple(draw(st.integers(0, (d * (k - 1) + 1) // 2)) for k, d in zip(kernel, dil))
    sizes = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), max_size + d * (k - 1)))
                  for k, p, d in zip(kernel, padding, dil))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + sizes
    return shape, kernel, stride, padding, dil, draw(st.booleans())


def output_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size, from its documentation."""
    rounding = math.ceil if ceil_mode else math.floor
    out = rounding((size + 2 * p - d * (k - 1) - 1) / s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def windows(shape, kernel, stride, padding, dilation, ceil_mode):
    """For each output (oh, ow): the in-bounds input positions of its window, row-major."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    h, w = shape[-2:]
    ho = output_size(h, kh, sh, ph, dh, ceil_mode)
    wo = output_size(w, kw, sw, pw, dw, ceil_mode)
    for oh in range(ho):
        for ow in range(wo):
            cells = [(oh * sh - ph + i * dh, ow * sw - pw + j * dw)
                     for i in range(kh) for j in range(kw)]
            yield oh, ow, [(r, c) for r, c in cells if 0 <= r < h and 0 <= c < w], (ho, wo)


def loop_max_pool(x, *geometry):
    out = idx = None
    for oh, ow, cells, size in windows(x.shape, *geometry):
        if out is None:
            out = np.zeros(x.shape[:2] + size)
            idx = np.zeros(x.shape[:2] + size, dtype=np.int64)
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                values = [x[n, c, r, col] for r, col in cells]
                best = int(np.argmax(values))  # the first of equal maxima
                out[n, c, oh, ow] = values[best]
                idx[n, c, oh, ow] = cells[best][0] * x.shape[3] + cells[best][1]
    return out, idx


def loop_avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad):
    """PyTorch's divisor: the window clipped to the padded input (count_include_pad), or to
    the input itself."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    h, w = x.shape[-2:]
    out = None
    for oh, ow, cells, size in windows(x.shape, kernel, stride, padding, (1, 1), ceil_mode):
        if out is None:
            out = np.zeros(x.shape[:2] + size)
        if count_include_pad:
            rows = min(oh * sh - ph + kh, h + ph) - (oh * sh - ph)
            cols = min(ow * sw - pw + kw, w + pw) - (ow * sw - pw)
            count = rows * cols
        else:
            count = len(cells)
        total = sum(x[:, :, r, c] for r, c in cells)
        out[:, :, oh, ow] = total / count
    return out


# ----------------------------------------------------------------------------- values


@given(pool_configs(), seeds())
def test_max_pool_kernel_and_op_match_loops(config, seed):
    shape, kernel, stride, padding, dilation, ceil_mode = config
    x = random_array(seed, shape)
    geometry = (kernel, stride, padding, dilation, ceil_mode)
    if any(not cells for *_, cells, _ in windows(shape, *geometry)):
        # a dilated window that sees only padding: refused (PyTorch returns -inf there)
        with pytest.raises(ValueError, match="sees only padding"):
            F.max_pool2d(mg.tensor(x, device=DEVICE), kernel, stride, padding, dilation,
                         ceil_mode)
        return
    expected, expected_idx = loop_max_pool(x, *geometry)
    out_size = expected.shape[2:]
    idx = K.max_pool2d_indices(x, kernel, stride, padding, dilation, out_size)
    np.testing.assert_array_equal(idx, expected_idx)
    out, indices = F.max_pool2d(mg.tensor(x, device=DEVICE), kernel, stride, padding, dilation,
                                ceil_mode, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), expected)  # a copy of input values
    np.testing.assert_array_equal(indices.numpy(), expected_idx)


@given(pool_configs(dilation=False), seeds(), st.booleans())
def test_avg_pool_matches_loops(config, seed, count_include_pad):
    shape, kernel, stride, padding, _, ceil_mode = config
    x = random_array(seed, shape)
    expected = loop_avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad)
    out = F.avg_pool2d(mg.tensor(x, device=DEVICE), kernel, stride, padding, ceil_mode,
                       count_include_pad)
    # float64 sums of at most 9 values of O(1): a few ulps apart
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_avg_pool_divisor_override_and_unbatched_input():
    x = random_array(1, (3, 4, 4))
    out = F.avg_pool2d(mg.tensor(x, device=DEVICE), 2, divisor_override=3)
    expected = x.reshape(3, 2, 2, 2, 2).sum(axis=(2, 4)) / 3
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


def test_adaptive_avg_pool_windows():
    x = random_array(2, (2, 3, 5, 7))
    out = F.adaptive_avg_pool2d(mg.tensor(x, device=DEVICE), (3, None)).numpy()
    # PyTorch's windows for 5 -> 3: [0, 2), [1, 4), [3, 5)
    expected = np.stack([x[:, :, 0:2].mean(2), x[:, :, 1:4].mean(2), x[:, :, 3:5].mean(2)], 2)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    global_mean = F.adaptive_avg_pool2d(mg.tensor(x, device=DEVICE), 1).numpy()
    np.testing.assert_allclose(global_mean[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-12)


# ----------------------------------------------------------------------------- gradients


@settings(max_examples=10)
@given(pool_configs(max_size=4, dilation=False), seeds(), st.booleans())
def test_avg_pool_gradients(config, seed, count_include_pad):
    shape, kernel, stride, padding, _, ceil_mode = config
    x = random_array(seed, shape)

    def pool(t):
        return F.avg_pool2d(t, kernel, stride, padding, ceil_mode, count_include_pad)

    check_gradients(pool, x, device=DEVICE)
    # cubed, so the second derivative runs through conv2d's gradient and its gradient
    check_double_gradients(lambda t: pool(t) ** 3, x, device=DEVICE)


@settings(max_examples=10)
@given(pool_configs(max_size=4), seeds())
def test_max_pool_gradients(config, seed):
    shape, kernel, stride, padding, dilation, ceil_mode = config
    # distinct values at least 0.05 apart: a finite-difference step (1e-6) never changes
    # which value is a window's maximum
    count = int(np.prod(shape))
    x = np.random.default_rng(seed).permutation(count).reshape(shape) * 0.05 - 1.0

    def pool(t):
        return F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode)

    check_gradients(pool, x, device=DEVICE)
    check_double_gradients(lambda t: pool(t) ** 3, x, device=DEVICE)


@pytest.mark.parametrize("output_size", [1, (2, 3), (3, None)])
def test_adaptive_avg_pool_gradients(output_size):
    x = random_array(3, (1, 2, 4, 5))
    check_gradients(lambda t: F.adaptive_avg_pool2d(t, output_size), x, device=DEVICE)
    check_double_gradients(lambda t: F.adaptive_avg_pool2d(t, output_size) ** 3, x,
                           device=DEVICE)


# ----------------------------------------------------------------------------- PyTorch

TORCH_CASES = [
    ("avg", {"kernel_size": 2}),
    ("avg", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ("avg", {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ("avg", {"kernel_size": (2, 3), "stride": (1, 2), "divisor_override": 5}),
    ("max", {"kernel_size": 2}),
    ("max", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ("max", {"kernel_size": 2, "dilation": 2, "padding": 1}),
    ("adaptive", {"output_size": (3, 2)}),
    ("adaptive", {"output_size": 1}),
]


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("kind, kwargs", TORCH_CASES)
def test_against_torch(kind, kwargs, device):
    torch = torch_or_skip()
    ours = {"avg": F.avg_pool2d, "max": F.max_pool2d, "adaptive": F.adaptive_avg_pool2d}[kind]
    theirs = {"avg": torch.nn.functional.avg_pool2d, "max": torch.nn.functional.max_pool2d,
              "adaptive": torch.nn.functional.adaptive_avg_pool2d}[kind]
    x = random_array(4, (2, 3, 7, 6))
    compare_with_torch(lambda t: ours(t, **kwargs), lambda t: theirs(t, **kwargs), x,
                       device=device)


def test_layers_match_torch():
    torch = torch_or_skip()
    pairs = [
        (nn.AvgPool2d(3, 2, 1), torch.nn.AvgPool2d(3, 2, 1)),
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.MaxPool2d(3, stride=1, padding=1, dilation=1, ceil_mode=True),
         torch.nn.MaxPool2d(3, stride=1, padding=1, dilation=1, ceil_mode=True)),
        (nn.AdaptiveAvgPool2d((1, None)), torch.nn.AdaptiveAvgPool2d((1, None))),
    ]
    x = random_array(5, (2, 2, 5, 5), np.float32)
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        # float32 means of a few values: a few ulps
        np.testing.assert_allclose(ours(mg.tensor(x, device=DEVICE)).numpy(),
                                   theirs(torch.tensor(x)).numpy(), rtol=1e-6, atol=1e-7)
    values, indices = nn.MaxPool2d(2, return_indices=True)(mg.tensor(x, device=DEVICE))
    expected_values, expected_indices = torch.nn.MaxPool2d(2, return_indices=True)(
        torch.tensor(x))
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    assert indices.dtype == np.int64


def test_errors_name_op_and_shapes():
    x = mg.zeros(1, 1, 4, 4, device=DEVICE)
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) should be at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: input must be 3-D .* got shape \(4, 4\)"):
        F.avg_pool2d(mg.zeros(4, 4, device=DEVICE), 2)
    with pytest.raises(ValueError, match="avg_pool2d: output size 0 is less than 1"):
        F.avg_pool2d(x, 5)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output_size must be positive"):
        F.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(ValueError, match="max_pool2d: kernel_size must be an int or a pair"):
        F.max_pool2d(x, 1.5)


NEW_LAYERS = [
    lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True),
    lambda: nn.MaxPool2d(2, dilation=2, padding=1),
    lambda: nn.AdaptiveAvgPool2d((3, 2)),
    lambda: nn.GroupNorm(2, 4),
    lambda: nn.LayerNorm((5, 6)),
    lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"),
    lambda: nn.PixelShuffle(2),
    lambda: nn.ReplicationPad2d((1, 2, 0, 1)),
    lambda: nn.GELU(),
    lambda: nn.ELU(),
    lambda: nn.SiLU(),
    lambda: nn.PReLU(4),
]


@pytest.mark.skipif("cpu" not in mg.available_devices(), reason="Numba is not installed")
@pytest.mark.parametrize("make", NEW_LAYERS)
def test_layers_float32_on_cpu_match_the_numpy_device(make):
    """The cpu device runs its own kernels where it has them (conv2d under avg_pool2d, batch
    norm under group_norm): float32 results and gradients agree with the reference."""
    x = random_array(6, (2, 4, 5, 6), np.float32)
    results = []
    for device in ("numpy", "cpu"):
        layer = make().to(device)
        t = mg.tensor(x, device=device, requires_grad=True)
        out = layer(t)
        (out * out).sum().backward()
        results.append((out.numpy(), t.grad.numpy()))
    # float32 sums of at most ~60 values of O(1), in different orders: ~1e-6 relative
    for mine, reference in zip(*results):
        np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-5)
