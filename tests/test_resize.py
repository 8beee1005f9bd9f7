"""Bilinear and general nearest resizing (interpolate, Upsample), pixel shuffle and
unshuffle, replicate and circular padding: values against pixel-by-pixel formulas from
PyTorch's documentation, gradients and gradients of gradients, PyTorch as an outside
oracle on numpy and cpu, layers and errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
import minigan.nn as nn
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array, seeds
from tests.torch_compare import compare_with_torch, devices, torch_or_skip

DEVICE = "numpy"


def tensor(array):
    return mg.tensor(array, dtype=np.float64, device=DEVICE)


def bilinear_pixel(x, oh, ow, out_size, align_corners):
    """One output pixel of bilinear resizing, computed as the documentation describes:
    the source position, its four neighbours, their weights."""
    position = []
    for o, n_in, n_out in zip((oh, ow), x.shape[-2:], out_size):
        if align_corners:
            position.append(o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            position.append(max((o + 0.5) * n_in / n_out - 0.5, 0.0))
    (r, c), (h, w) = position, x.shape[-2:]
    r0, c0 = min(int(math.floor(r)), h - 1), min(int(math.floor(c)), w - 1)
    r1, c1 = min(r0 + 1, h - 1), min(c0 + 1, w - 1)
    fr, fc = r - r0, c - c0
    return ((1 - fr) * (1 - fc) * x[..., r0, c0] + (1 - fr) * fc * x[..., r0, c1]
            + fr * (1 - fc) * x[..., r1, c0] + fr * fc * x[..., r1, c1])


@given(seeds(), st.integers(1, 4), st.integers(1, 4), st.integers(1, 7), st.integers(1, 7),
       st.booleans())
def test_bilinear_matches_pixel_formula(seed, h, w, out_h, out_w, align_corners):
    x = random_array(seed, (2, 1, h, w))
    out = F.interpolate(tensor(x), size=(out_h, out_w), mode="bilinear",
                        align_corners=align_corners).numpy()
    expected = np.stack([np.stack([bilinear_pixel(x, i, j, (out_h, out_w), align_corners)
                                   for j in range(out_w)], -1) for i in range(out_h)], -2)
    # float64 blends of 4 values: a few ulps
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)


@given(seeds(), st.integers(1, 4), st.integers(1, 7))
def test_nearest_any_size_picks_floor_of_scaled_index(seed, h, out_h):
    x = random_array(seed, (1, 1, h, 3))
    out = F.interpolate(tensor(x), size=(out_h, 3)).numpy()
    rows = [min(int(math.floor(i * h / out_h)), h - 1) for i in range(out_h)]
    np.testing.assert_array_equal(out, x[:, :, rows])


def test_pixel_shuffle_moves_channels_into_blocks():
    x = np.arange(2 * 8 * 2 * 3, dtype=np.float64).reshape(2, 8, 2, 3)
    out = F.pixel_shuffle(tensor(x), 2).numpy()
    assert out.shape == (2, 2, 4, 6)
    # channel c r^2 + i r + j lands at offset (i, j) of each 2 x 2 block
    for c in range(2):
        for i in range(2):
            for j in range(2):
                np.testing.assert_array_equal(out[:, c, i::2, j::2], x[:, c * 4 + i * 2 + j])
    np.testing.assert_array_equal(F.pixel_unshuffle(tensor(out), 2).numpy(), x)


@pytest.mark.parametrize("mode", ["replicate", "circular"])
def test_index_padding_values(mode):
    row = tensor(np.arange(4.0).reshape(1, 1, 1, 4))
    out = F.pad(row, (2, 3, 0, 0), mode=mode).numpy()[0, 0, 0]
    expected = [0, 0, 0, 1, 2, 3, 3, 3, 3] if mode == "replicate" else [2, 3, 0, 1, 2, 3, 0, 1, 2]
    np.testing.assert_array_equal(out, expected)


# ----------------------------------------------------------------------------- gradients

RESIZES = [
    ("bilinear", {"scale_factor": 2, "mode": "bilinear"}),
    ("bilinear_corners", {"size": (3, 5), "mode": "bilinear", "align_corners": True}),
    ("bilinear_down", {"scale_factor": 0.6, "mode": "bilinear"}),
    ("nearest_fraction", {"scale_factor": 1.5}),
    ("nearest_exact", {"size": (5, 2), "mode": "nearest-exact"}),
]


@pytest.mark.parametrize("name, kwargs", RESIZES, ids=[r[0] for r in RESIZES])
def test_resize_gradients(name, kwargs):
    x = random_array(1, (1, 2, 3, 4))
    check_gradients(lambda t: F.interpolate(t, **kwargs), x, device=DEVICE)
    check_double_gradients(lambda t: F.interpolate(t, **kwargs) ** 3, x, device=DEVICE)


@settings(max_examples=10)
@given(seeds(), st.integers(1, 3), st.sampled_from(["replicate", "circular"]),
       st.sampled_from(["shuffle", "unshuffle"]))
def test_pad_and_shuffle_gradients(seed, r, mode, shuffle):
    x = random_array(seed, (1, r * r, 2 * r, r))
    pads = (r, 0, r - 1, 1)
    check_gradients(lambda t: F.pad(t, pads, mode), x, device=DEVICE)
    check_double_gradients(lambda t: F.pad(t, pads, mode) ** 3, x, device=DEVICE)
    op = F.pixel_shuffle if shuffle == "shuffle" else F.pixel_unshuffle
    check_gradients(lambda t: op(t, r), x, device=DEVICE)
    check_double_gradients(lambda t: op(t, r) ** 3, x, device=DEVICE)


# ----------------------------------------------------------------------------- PyTorch

TORCH_CASES = RESIZES + [
    ("bilinear_fraction", {"scale_factor": 1.7, "mode": "bilinear"}),
    ("bilinear_recompute", {"scale_factor": 1.7, "mode": "bilinear",
                            "recompute_scale_factor": True}),
    ("nearest_size", {"size": (7, 9)}),
    ("nearest_two_scales", {"scale_factor": (2, 3)}),
    ("bilinear_one_pixel", {"size": 1, "mode": "bilinear", "align_corners": True}),
]


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name, kwargs", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_interpolate_against_torch(name, kwargs, device):
    torch = torch_or_skip()
    x = random_array(2, (2, 3, 4, 5))
    compare_with_torch(lambda t: F.interpolate(t, **kwargs),
                       lambda t: torch.nn.functional.interpolate(t, **kwargs), x, device=device)


@pytest.mark.parametrize("device", devices())
def test_pad_and_shuffle_against_torch(device):
    torch = torch_or_skip()
    tf = torch.nn.functional
    x = random_array(3, (2, 4, 4, 6))
    for mode in ("replicate", "circular"):
        compare_with_torch(lambda t, mode=mode: F.pad(t, (1, 2, 3, 1), mode),
                           lambda t, mode=mode: tf.pad(t, (1, 2, 3, 1), mode), x, device=device)
    compare_with_torch(lambda t: F.pixel_shuffle(t, 2), lambda t: tf.pixel_shuffle(t, 2), x,
                       device=device)
    compare_with_torch(lambda t: F.pixel_unshuffle(t, 2), lambda t: tf.pixel_unshuffle(t, 2),
                       x, device=device)


def test_layers_match_torch():
    torch = torch_or_skip()
    pairs = [
        (nn.Upsample(scale_factor=2, mode="bilinear"),
         torch.nn.Upsample(scale_factor=2, mode="bilinear")),
        (nn.Upsample(size=(3, 7), mode="bilinear", align_corners=True),
         torch.nn.Upsample(size=(3, 7), mode="bilinear", align_corners=True)),
        (nn.UpsamplingBilinear2d(scale_factor=2), torch.nn.UpsamplingBilinear2d(scale_factor=2)),
        (nn.UpsamplingNearest2d(size=5), torch.nn.UpsamplingNearest2d(size=5)),
        (nn.PixelShuffle(2), torch.nn.PixelShuffle(2)),
        (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2)),
        (nn.ReplicationPad2d((1, 0, 2, 1)), torch.nn.ReplicationPad2d((1, 0, 2, 1))),
    ]
    x = random_array(4, (2, 4, 4, 4), np.float32)
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        # float32 blends of up to 4 values: a few ulps
        np.testing.assert_allclose(ours(mg.tensor(x, device=DEVICE)).numpy(),
                                   theirs(torch.tensor(x)).numpy(), rtol=1e-6, atol=1e-6)


def test_errors():
    x = mg.zeros(1, 1, 3, 3, device=DEVICE)
    with pytest.raises(ValueError, match="interpolate: mode 'bicubic' is not supported"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="align_corners can only be set with mode 'bilinear'"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="Upsample: align_corners can only be set"):
        nn.Upsample(scale_factor=2, align_corners=False)
    with pytest.raises(ValueError, match="interpolate: give exactly one of size and"):
        F.interpolate(x)
    with pytest.raises(ValueError, match=r"pixel_shuffle: input must be \(\*, C \* 2\^2, H, W\)"):
        F.pixel_shuffle(x, 2)
    with pytest.raises(ValueError, match="pixel_unshuffle: height and width must be divisible"):
        F.pixel_unshuffle(x, 2)
    with pytest.raises(ValueError, match="pad: circular padding .* must not exceed"):
        F.pad(x, (4, 0, 0, 0), mode="circular")
    with pytest.raises(ValueError, match="pad: mode 'replicate' takes no value"):
        F.pad(x, (1, 1), mode="replicate", value=1.0)
