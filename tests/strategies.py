"""Hypothesis strategies shared by every test."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = st.sampled_from([np.float32, np.float64])


def arrays(shape, dtype=np.float64, low=-2.0, high=2.0, away_from_zero=0.0):
    """Finite values in [low, high]; with away_from_zero > 0, none within that of 0
    (so a finite-difference step never crosses a kink at 0)."""
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)
    strategy = hnp.arrays(dtype, shape, elements=elements)
    if away_from_zero:
        strategy = strategy.map(
            lambda a: np.where(np.abs(a) < away_from_zero, np.copysign(away_from_zero, a) + a, a)
        )
    return strategy


def seeds():
    return st.integers(0, 2**31 - 1)


def random_array(seed: int, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
    """Normal values from a seed: cheaper than element-wise drawing for big arrays."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@st.composite
def conv2d_configs(draw, max_batch=2, max_channels=3, max_size=7, max_kernel=3, groups=False):
    """(input shape, weight shape, stride, padding, dilation, groups) of a valid conv2d."""
    g = draw(st.sampled_from([1, 2])) if groups else 1
    n = draw(st.integers(1, max_batch))
    c_in = g * draw(st.integers(1, max_channels))
    c_out = g * draw(st.integers(1, max_channels))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    min_h = max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0])
    min_w = max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1])
    h = draw(st.integers(min_h, max(min_h, max_size)))
    w = draw(st.integers(min_w, max(min_w, max_size)))
    return (n, c_in, h, w), (c_out, c_in // g, kh, kw), stride, padding, dilation, g


@st.composite
def channel_shapes(draw, min_per_channel=2, max_batch=3, max_channels=3, max_size=3, ndims=(2, 4)):
    """An (N, C) or (N, C, H, W) shape (ndim drawn from ndims) with at least
    min_per_channel values per channel, as batch statistics need (N is raised to get them)."""
    ndim = draw(st.sampled_from(ndims))
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    spatial = tuple(draw(st.integers(1, max_size)) for _ in range(ndim - 2))
    per_sample = int(np.prod(spatial))
    n = max(n, -(-min_per_channel // per_sample))
    return (n, c) + spatial


LAYOUTS = st.sampled_from(["nchw", "channels_last"])


def in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """a with the same shape and values, its memory in `layout`: "nchw" (C-contiguous) or
    "channels_last" (a 4-D array stored as (N, H, W, C) and viewed as (N, C, H, W), the
    layout the cpu conv kernels return). Arrays that are not 4-D are returned as they are."""
    if layout == "nchw" or a.ndim != 4:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
