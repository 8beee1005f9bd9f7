"""The Numba kernels (kernels/cpu) agree with the reference kernels (kernels/reference)
over drawn shapes, geometries and dtypes, within bounds derived from rounding error.

Notation: u is the unit roundoff of the dtype under test (2^-24 for float32, 2^-53 for
float64), u64 = 2^-53.

Cold cost: the first run on a machine compiles every kernel for float32 and float64
(~30 s on 2 Zen 4 cores, nearly all of this file's time); Numba caches the machine code
next to kernels/cpu, so later runs take ~3 s (1.3 s of tests).
"""

from __future__ import annotations

import contextlib
import importlib
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.strategies import (
    DTYPES,
    LAYOUTS,
    conv2d_configs,
    in_layout,
    random_array,
    seeds,
)

from minigan.kernels import cpu
from minigan.kernels import reference as ref
from minigan.kernels.cpu._util import is_channels_last

U64 = 2.0**-53

# The elementwise loops go parallel from _util.PARALLEL_MIN_ELEMENTS (about a million)
# elements on; tests lower the threshold to this so that small arrays take both copies.
TEST_PARALLEL_MIN_ELEMENTS = 64


@contextlib.contextmanager
def parallel_from(elements: int):
    """A context in which loops over `elements` or more run their parallel copy."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.import_module("minigan.kernels.cpu._util"),
                      "PARALLEL_MIN_ELEMENTS", elements)
        yield
KINDS = ("relu", "leaky_relu", "tanh", "sigmoid", "none")


def unit_roundoff(dtype) -> float:
    return float(np.finfo(dtype).eps) / 2


def assert_within(fast, expected, bound, what: str):
    """|fast - expected| <= bound elementwise, with the worst offender in the message."""
    assert fast.shape == expected.shape, f"{what}: shape {fast.shape} != {expected.shape}"
    error = np.abs(fast.astype(np.float64) - expected.astype(np.float64))
    excess = error - bound
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    assert np.all(excess <= 0), (
        f"{what}: error {error[worst]:.3g} > bound {np.asarray(bound)[worst]:.3g} at {worst}"
    )


# ----------------------------------------------------------------------------- convolution
# A dot product of K terms summed in floating point, in any order, is off from the exact
# sum by at most (K - 1) u sum_i |a_i b_i| (Higham, Accuracy and Stability of Numerical
# Algorithms, 2nd ed., eq. 3.5, to first order). The fast and reference kernels sum in
# different orders, so each is within K u (|a| . |b|) of the exact value and they differ by
# at most 2 K u (|a| . |b|). The sums of |a_i b_i| are the same kernels applied to |x|,
# |w| and |gy|, evaluated in float64. Every output element of conv2d sums
# K = C_in/groups * kH * kW terms, of the input gradient at most C_out/groups * kH * kW, of
# the weight gradient at most N * H_out * W_out.


def _conv_case(config, seed, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = config
    x = random_array(seed, x_shape, dtype)
    w = random_array(seed + 1, w_shape, dtype)
    y = ref.conv2d(x, w, stride, padding, dilation, groups)
    gy = random_array(seed + 2, y.shape, dtype)
    return x, w, gy, (stride, padding, dilation, groups)


def _check_conv(x, w, gy, geometry, dtype, what=""):
    n, c_in = x.shape[:2]
    c_out, c_group, kh, kw = w.shape
    groups = geometry[3]
    u = unit_roundoff(dtype)
    ax, aw, agy = (np.abs(a).astype(np.float64) for a in (x, w, gy))

    y = cpu.conv2d(x, w, *geometry)
    assert y.dtype == dtype
    bound = 2 * c_group * kh * kw * u * ref.conv2d(ax, aw, *geometry)
    assert_within(y, ref.conv2d(x, w, *geometry), bound, f"conv2d{what}")

    gx = cpu.conv2d_input_grad(gy, w, x.shape[2:], *geometry)
    assert gx.dtype == dtype
    terms = c_out // groups * kh * kw
    bound = 2 * terms * u * ref.conv2d_input_grad(agy, aw, x.shape[2:], *geometry)
    assert_within(gx, ref.conv2d_input_grad(gy, w, x.shape[2:], *geometry), bound,
                  f"conv2d_input_grad{what}")

    gw = cpu.conv2d_weight_grad(x, gy, (kh, kw), *geometry)
    assert gw.dtype == dtype
    terms = n * gy.shape[2] * gy.shape[3]
    bound = 2 * terms * u * ref.conv2d_weight_grad(ax, agy, (kh, kw), *geometry)
    assert_within(gw, ref.conv2d_weight_grad(x, gy, (kh, kw), *geometry), bound,
                  f"conv2d_weight_grad{what}")


@given(conv2d_configs(groups=True), seeds(), DTYPES)
def test_conv_kernels_match_reference(config, seed, dtype):
    x, w, gy, geometry = _conv_case(config, seed, dtype)
    _check_conv(x, w, gy, geometry, dtype)


@given(conv2d_configs(), seeds(), DTYPES, st.booleans(), LAYOUTS, LAYOUTS, st.booleans())
@settings(max_examples=30)
def test_conv_kernels_channels_last_match_reference(config, seed, dtype, chunked, x_layout,
                                                    gy_layout, parallel):
    """The channels-last columns (used from CHANNELS_LAST_MIN_CHANNELS input channels on,
    here forced for every ungrouped conv), whole or one sample at a time, with x and gy
    in either memory layout, by the serial or the parallel copies of the loops."""
    x, w, gy, geometry = _conv_case(config, seed, dtype)
    x, gy = in_layout(x, x_layout), in_layout(gy, gy_layout)
    conv = importlib.import_module("minigan.kernels.cpu.conv")
    with pytest.MonkeyPatch.context() as patch, parallel_from(1 if parallel else 1 << 62):
        patch.setattr(conv, "CHANNELS_LAST_MIN_CHANNELS", 1)
        if chunked:
            patch.setattr(conv, "COLUMN_CHUNK_BYTES", 1)
        _check_conv(x, w, gy, geometry, dtype, " (channels-last)")


@given(conv2d_configs(groups=True), seeds(), LAYOUTS, LAYOUTS, st.booleans())
@settings(max_examples=20)
def test_conv_kernels_accept_channels_last_inputs(config, seed, x_layout, gy_layout, parallel):
    """Channel-major columns (few channels, groups) from inputs in either layout, by the
    serial or the parallel copies of the loops."""
    x, w, gy, geometry = _conv_case(config, seed, np.float64)
    with parallel_from(1 if parallel else 1 << 62):
        _check_conv(in_layout(x, x_layout), w, in_layout(gy, gy_layout), geometry,
                    np.float64, f" ({x_layout} x, {gy_layout} gy)")


def test_one_channel_convs_use_the_channels_last_loops():
    """A grey image's NCHW memory is channels-last: its convolutions (DCGAN-28's first
    discriminator layer, and its generator's last, the adjoint) build and scatter
    channels-last columns, so a run on 1-channel images never compiles the channel-major
    loops (a second of a cold start). They must still match the reference."""
    conv = importlib.import_module("minigan.kernels.cpu.conv")

    def refuse(*args):
        raise AssertionError("a channel-major column loop ran for a 1-channel input")

    x = random_array(20, (3, 1, 8, 8), np.float64)
    w = random_array(21, (4, 1, 4, 4), np.float64)
    geometry = ((2, 2), (1, 1), (1, 1), 1)
    gy = random_array(22, (3, 4, 4, 4), np.float64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "_IM2COL", (refuse, refuse))
        patch.setattr(conv, "_COL2IM", (refuse, refuse))
        _check_conv(x, w, gy, geometry, np.float64, " (1 channel)")


@pytest.mark.parametrize("c_in", [1, 8])
def test_conv_results_are_channels_last(c_in):
    """The layout contract the next kernels rely on: conv2d returns channels-last memory,
    and conv2d_input_grad does so whenever its columns are channels-last (C_in >= 8)."""
    x = random_array(10, (2, c_in, 6, 6), np.float32)
    w = random_array(11, (5, c_in, 3, 3), np.float32)
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    y = cpu.conv2d(x, w, *geometry)
    assert is_channels_last(y)
    gx = cpu.conv2d_input_grad(y, w, (6, 6), *geometry)
    assert is_channels_last(gx) == (c_in >= 8)
    np.testing.assert_allclose(gx, ref.conv2d_input_grad(y, w, (6, 6), *geometry),
                               rtol=1e-4, atol=1e-4 * np.abs(y).max() * w.size)
    # the dense shortcut (a kernel covering the input) too, with fewer or more samples
    # than output channels (DCGAN's first generator layer: 100 channels, batch 64)
    dense = ((1, 1), (0, 0), (1, 1), 1)
    for batch in (4, 2):
        gy = random_array(12, (batch, 3, 1, 1), np.float32)
        w = random_array(13, (3, c_in, 6, 6), np.float32)
        gx = cpu.conv2d_input_grad(gy, w, (6, 6), *dense)
        assert is_channels_last(gx) == (c_in >= 8)
        np.testing.assert_allclose(gx, ref.conv2d_input_grad(gy, w, (6, 6), *dense),
                                   rtol=1e-5,
                                   atol=1e-5 * np.abs(gy).max() * np.abs(w).max() * 3)


@given(conv2d_configs(groups=True, max_batch=4), seeds())
@settings(max_examples=10)
def test_conv_kernels_in_batch_chunks_match_reference(config, seed):
    """Channel-major columns built one sample at a time (as for large batches)."""
    x, w, gy, geometry = _conv_case(config, seed, np.float64)
    conv = importlib.import_module("minigan.kernels.cpu.conv")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "COLUMN_CHUNK_BYTES", 1)
        patch.setattr(conv, "CHANNELS_LAST_MIN_CHANNELS", 10**9)
        _check_conv(x, w, gy, geometry, np.float64, " (chunked)")


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_dense_shortcut_matches_reference(dtype, layout):
    """A kernel covering its whole input (DCGAN's 7x7 first and last layers) skips the
    columns; its results must be the same convolution, whatever x's layout."""
    x = in_layout(random_array(1, (3, 5, 7, 7), dtype), layout)
    w = random_array(2, (4, 5, 7, 7), dtype)
    gy = random_array(3, (3, 4, 1, 1), dtype)
    _check_conv(x, w, gy, ((1, 1), (0, 0), (1, 1), 1), dtype, f" (dense, {layout})")


@given(conv2d_configs(groups=True), seeds())
@settings(max_examples=10)
def test_conv_adjoint_kernels_accept_smaller_gradients(config, seed):
    """The adjoints may get a gy with fewer rows than conv2d(x) has (conv_transpose2d with
    output_padding, and its second derivatives): those rows simply take no part."""
    x, w, gy, geometry = _conv_case(config, seed, np.float64)
    if gy.shape[2] < 2:
        return
    gy = np.ascontiguousarray(gy[:, :, :-1])
    u = unit_roundoff(np.float64)
    gx = cpu.conv2d_input_grad(gy, w, x.shape[2:], *geometry)
    expected = ref.conv2d_input_grad(gy, w, x.shape[2:], *geometry)
    bound = 2 * w.shape[0] * w.shape[2] * w.shape[3] * u * ref.conv2d_input_grad(
        np.abs(gy), np.abs(w), x.shape[2:], *geometry)
    assert_within(gx, expected, bound, "conv2d_input_grad")
    gw = cpu.conv2d_weight_grad(x, gy, w.shape[2:], *geometry)
    expected = ref.conv2d_weight_grad(x, gy, w.shape[2:], *geometry)
    bound = 2 * gy[0, 0].size * x.shape[0] * u * ref.conv2d_weight_grad(
        np.abs(x), np.abs(gy), w.shape[2:], *geometry)
    assert_within(gw, expected, bound, "conv2d_weight_grad")


def test_conv_outputs_do_not_share_the_workspace():
    """The column matrix is reused between calls; results must be fresh arrays."""
    x = random_array(4, (2, 3, 6, 6), np.float32)
    w = random_array(5, (4, 3, 3, 3), np.float32)
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    first = cpu.conv2d(x, w, *geometry)
    kept = first.copy()
    cpu.conv2d(2 * x, w, *geometry)
    cpu.conv2d_input_grad(first, w, (6, 6), *geometry)
    np.testing.assert_array_equal(first, kept)


def test_conv_accepts_non_contiguous_inputs():
    x = random_array(6, (2, 6, 5, 4), np.float64).transpose(0, 1, 3, 2)  # (2, 6, 4, 5) view
    w = random_array(7, (3, 6, 2, 2), np.float64)[:, :, ::-1]
    geometry = ((1, 2), (1, 0), (1, 1), 1)
    np.testing.assert_allclose(cpu.conv2d(x, w, *geometry), ref.conv2d(x, w, *geometry),
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- activations
# Each output is one to four correctly rounded operations on the same operands as the
# reference, except tanh, exp and log1p, whose libm results may differ by an ulp or two
# from NumPy's. Allow 8 ulps of the values involved: a wrong formula is off by O(1).


def _activation_shapes():
    return st.sampled_from([(5, 7), (3, 4, 2, 3), (2, 1), (1, 6, 1, 1)])


@given(_activation_shapes(), st.sampled_from(KINDS), st.floats(0.0, 0.5), seeds(), DTYPES,
       LAYOUTS, LAYOUTS)
def test_activation_kernels_match_reference(shape, kind, slope, seed, dtype, x_layout,
                                            gy_layout):
    u = unit_roundoff(dtype)
    x = in_layout(random_array(seed, shape, dtype, scale=3.0), x_layout)
    bias = random_array(seed + 1, shape[1:2], dtype)
    gy = in_layout(random_array(seed + 2, shape, dtype), gy_layout)

    y = cpu.activation(x, kind, slope)
    expected = ref.activation(x, kind, slope)
    assert y.dtype == dtype
    assert_within(y, expected, 16 * u * (np.abs(expected) + 1), f"activation {kind}")

    z = cpu.bias_activation(x, bias, kind, slope)
    expected = ref.bias_activation(x, bias, kind, slope)
    assert z.dtype == dtype
    assert_within(z, expected, 16 * u * (np.abs(expected) + 1), f"bias_activation {kind}")

    g = cpu.activation_grad(gy, in_layout(expected, x_layout), kind, slope)
    want = ref.activation_grad(gy, expected, kind, slope)
    assert g.dtype == dtype
    assert_within(g, want, 16 * u * np.abs(gy), f"activation_grad {kind}")
    # the results keep the input's layout, so that the next kernel reads it in place
    assert is_channels_last(y) == is_channels_last(z) == is_channels_last(x)


@pytest.mark.parametrize("kind", KINDS)
def test_activation_kernels_parallel_copy(kind):
    """Arrays past the parallel threshold take the parallel loops."""
    shape = (5, 8, 2, 4)
    x = random_array(8, shape, np.float32, scale=3.0)
    bias = random_array(9, (8,), np.float32)
    u = unit_roundoff(np.float32)
    expected = ref.bias_activation(x, bias, kind, 0.2)
    with parallel_from(TEST_PARALLEL_MIN_ELEMENTS):
        fused = cpu.bias_activation(x, bias, kind, 0.2)
        plain = cpu.activation(x, kind, 0.2)
        grad = cpu.activation_grad(x, expected, kind, 0.2)
    assert_within(fused, expected, 16 * u * (np.abs(expected) + 1), kind)
    want = ref.activation(x, kind, 0.2)
    assert_within(plain, want, 16 * u * (np.abs(want) + 1), kind)
    assert_within(grad, ref.activation_grad(x, expected, kind, 0.2), 16 * u * np.abs(x), kind)


def _ulps(values, exact):
    """|values - exact| in units of the float32 spacing at exact."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(values.astype(np.float64) - exact) / spacing


def test_float32_exp_tanh_sigmoid_are_accurate():
    """kernels/cpu/_math.py's vectorisable float32 functions, over a dense grid, against
    float64 results: a few ulps (a wrong coefficient or range reduction costs thousands)."""
    from numba import njit

    fast_math = importlib.import_module("minigan.kernels.cpu._math")

    @njit
    def apply_all(x, out):
        for i in range(x.size):
            out[0, i] = fast_math.exp(x[i])
            out[1, i] = fast_math.tanh(x[i])
            out[2, i] = fast_math.sigmoid(x[i])

    x = np.concatenate([np.linspace(-100, 100, 400_001), np.linspace(-1, 1, 200_001)])
    x = x.astype(np.float32)
    out = np.empty((3, x.size), np.float32)
    apply_all(x, out)
    x64 = x.astype(np.float64)
    normal = (x >= np.float32(-87.33)) & (x < np.float32(88.37))  # exp's documented range
    assert _ulps(out[0][normal], np.exp(x64[normal])).max() <= 2
    assert _ulps(out[1], np.tanh(x64)).max() <= 4
    sigmoid = 1 / (1 + np.exp(-x64))
    tiny = sigmoid < 1.2e-38  # flushed to 0 below float32's normal range
    assert _ulps(out[2][~tiny], sigmoid[~tiny]).max() <= 4
    assert np.all(out[2][tiny] < 1.2e-38)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    out = np.empty((3, special.size), np.float32)
    apply_all(special, out)
    assert np.isnan(out[:, 0]).all()
    np.testing.assert_array_equal(out[:, 1:], [[np.inf, 0, 1, 1], [1, -1, 0, -0.0],
                                               [1, 0, 0.5, 0.5]])


def test_activation_rejects_unknown_kind():
    with pytest.raises(ValueError, match="activation: unknown activation kind 'gelu'"):
        cpu.activation(np.zeros(3, np.float32), "gelu", 0.0)


def test_sigmoid_is_finite_at_extreme_logits():
    x = np.array([-1000.0, -90.0, 0.0, 90.0, 1000.0], np.float32)
    y = cpu.activation(x, "sigmoid", 0.0)
    np.testing.assert_array_equal(y[[0, 2, 3, 4]], [0, 0.5, 1, 1])
    assert 0 <= y[1] < 1e-38  # exp(-90) is a float32 subnormal, not a nan from inf / inf


# ----------------------------------------------------------------------------- batch norm
# The fast kernels sum in float64 and round once; every other step is a few float32 (or
# float64) operations. So against the exact result (the reference run in float64 on the
# same inputs) each output is within 16 u of the magnitude of the terms that form it,
# plus the float64 summation error of both sides: at most 4 M u64 of the same magnitude
# for M terms per channel (naive or pairwise sums, first order).


def _bn_case(draw_shape, seed, dtype, affine):
    x = random_array(seed, draw_shape, dtype, scale=2.0) + dtype(0.5)
    c = draw_shape[1]
    weight = random_array(seed + 1, (c,), dtype) if affine else None
    bias = random_array(seed + 2, (c,), dtype) if affine else None
    gy = random_array(seed + 3, draw_shape, dtype)
    return x, weight, bias, gy


def _bn_shapes():
    return st.sampled_from([(4, 3), (3, 5), (2, 3, 3, 4), (3, 2, 1, 5), (2, 4, 2, 2),
                            (70, 3, 1, 2)])


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


@given(_bn_shapes(), seeds(), DTYPES, st.booleans(), LAYOUTS, LAYOUTS, st.booleans())
def test_batch_norm_kernels_match_reference(shape, seed, dtype, affine, x_layout, gy_layout,
                                            parallel):
    with parallel_from(1 if parallel else 1 << 62):
        _check_batch_norm(shape, seed, dtype, affine, x_layout, gy_layout)


def _check_batch_norm(shape, seed, dtype, affine, x_layout, gy_layout):
    eps = 1e-5
    x, weight, bias, gy = _bn_case(shape, seed, dtype, affine)
    x, gy = in_layout(x, x_layout), in_layout(gy, gy_layout)
    count = x.size // x.shape[1]
    tol = 16 * unit_roundoff(dtype) + 4 * count * U64
    axes = (0,) + tuple(range(2, x.ndim))
    channel = (1, -1) + (1,) * (x.ndim - 2)
    w64 = np.ones(x.shape[1]) if weight is None else _f64(weight)
    b64 = np.zeros(x.shape[1]) if bias is None else _f64(bias)

    y, mean, var = cpu.batch_norm_train(x, weight, bias, eps)
    y_exact, mean_exact, var_exact = ref.batch_norm_train(_f64(x), _f64(weight), _f64(bias), eps)
    assert y.dtype == mean.dtype == var.dtype == dtype
    scale = np.abs(x).mean(axis=axes)
    assert_within(mean, mean_exact, tol * scale, "batch_norm_train mean")
    assert_within(var, var_exact, tol * (x.astype(np.float64) ** 2).mean(axis=axes), "var")
    invstd = 1 / np.sqrt(var_exact + eps)
    terms = (np.abs(x - mean_exact.reshape(channel)) + scale.reshape(channel)) * (
        invstd * np.abs(w64)).reshape(channel) + np.abs(b64).reshape(channel)
    assert_within(y, y_exact, tol * terms, "batch_norm_train y")
    assert is_channels_last(y) == is_channels_last(x)

    y = cpu.batch_norm_eval(x, mean, var, weight, bias, eps)
    y_exact = ref.batch_norm_eval(_f64(x), _f64(mean), _f64(var), _f64(weight), _f64(bias), eps)
    assert y.dtype == dtype
    assert_within(y, y_exact, tol * terms, "batch_norm_eval")

    gx, gweight, gbias = cpu.batch_norm_backward(gy, x, weight, mean, var, eps)
    exact = ref.batch_norm_backward(_f64(gy), _f64(x), _f64(weight), _f64(mean), _f64(var), eps)
    assert gx.dtype == dtype
    invstd = (1 / np.sqrt(_f64(var) + eps)).reshape(channel)
    centered = np.abs(x - _f64(mean).reshape(channel))
    sum_gy = np.abs(gy).sum(axis=axes, keepdims=True)
    sum_gy_xc = (np.abs(gy) * centered).sum(axis=axes, keepdims=True)
    terms = np.abs(w64).reshape(channel) * invstd * (
        np.abs(gy) + sum_gy / count + centered * invstd**2 * sum_gy_xc / count)
    assert_within(gx, exact[0], tol * terms, "batch_norm_backward gx")
    if affine:
        assert gweight.dtype == gbias.dtype == dtype
        assert_within(gweight, exact[1], tol * (invstd * sum_gy_xc).reshape(-1), "gweight")
        assert_within(gbias, exact[2], tol * sum_gy.reshape(-1), "gbias")
    else:
        assert gweight is None and gbias is None


def test_batch_norm_float32_stays_accurate_far_from_zero():
    """With |mean| >> std, x * scale + shift would cancel two large terms; the kernels
    center first, so the normalized output keeps float32 accuracy."""
    x = (1000.0 + random_array(10, (64, 3, 4, 4), np.float64)).astype(np.float32)
    y, _, _ = cpu.batch_norm_train(x, None, None, 1e-5)
    y_exact, _, _ = ref.batch_norm_train(x.astype(np.float64), None, None, 1e-5)
    # x itself is exact here; rounding x - mean (|x| ~ 1000, the mean off by u * 1000)
    # and scaling by invstd ~ 1 leaves an error ~ 1000 * 2u = 1.2e-4 of the unit-std output
    assert np.abs(y - y_exact).max() < 3e-4


# ----------------------------------------------------------------------------- loss
# max(x, 0) - x t + log1p(exp(-|x|)): four rounded operations plus libm's exp and log1p;
# 16 ulps of |x| + 1 (the terms' size) is generous for that and far below any formula
# error.


@given(st.sampled_from([(7,), (4, 1), (3, 5)]), seeds(), DTYPES)
def test_bce_with_logits_matches_reference(shape, seed, dtype):
    x = random_array(seed, shape, dtype, scale=5.0)
    target = (random_array(seed + 1, shape, np.float64) > 0).astype(dtype)
    loss = cpu.bce_with_logits(x, target)
    assert loss.dtype == dtype
    bound = 16 * unit_roundoff(dtype) * (np.abs(x) + 1)
    assert_within(loss, ref.bce_with_logits(x, target), bound, "bce_with_logits")
    # a scalar target broadcasts, as it does in the reference
    assert_within(cpu.bce_with_logits(x, 1.0), ref.bce_with_logits(x, 1.0), bound, "scalar")


# g (sigmoid(x) - t): each sigmoid within 4 ulps of the exact value (8 between the two),
# then one rounding each for - and *: 16 ulps of |g| (1 + |t|) bounds the difference.
@given(st.sampled_from([(7,), (4, 1), (3, 5)]), seeds(), DTYPES, st.booleans())
def test_bce_with_logits_grad_matches_reference(shape, seed, dtype, one_g):
    x = random_array(seed, shape, dtype, scale=5.0)
    target = random_array(seed + 1, shape, np.float64, scale=0.5).clip(-1, 1).astype(dtype)
    g = dtype(0.37) if one_g else random_array(seed + 2, shape, dtype)
    grad = cpu.bce_with_logits_grad(x, target, g)
    assert grad.dtype == dtype and grad.shape == shape
    bound = 16 * unit_roundoff(dtype) * np.abs(g) * (1 + np.abs(target))
    assert_within(grad, ref.bce_with_logits_grad(x, target, g), bound, "bce_with_logits_grad")


def test_bce_with_logits_is_exact_at_extreme_logits():
    x = np.array([-1000.0, 1000.0, -1000.0, 1000.0], np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    np.testing.assert_array_equal(cpu.bce_with_logits(x, t), [0, 0, 1000, 1000])


# ----------------------------------------------------------------------------- optimizers
# The fast loops repeat the reference's operations in the same order, on the same dtype,
# with the coefficients rounded the same way; every result is a chain of at most ~8
# correctly rounded operations. Allow 8 ulps of the parameter's and the step's size.


def _optim_state(seed, size, dtype):
    param = random_array(seed, (size,), dtype)
    grad = random_array(seed + 1, (size,), dtype)
    first = random_array(seed + 2, (size,), dtype, scale=0.1)
    second = np.abs(random_array(seed + 3, (size,), dtype, scale=0.1))
    return param, grad, first, second


def _assert_same_state(fast, slow, dtype, what):
    u = unit_roundoff(dtype)
    for i, (a, b) in enumerate(zip(fast, slow)):
        if a is None:
            continue
        assert a.dtype == dtype
        assert_within(a, b, 16 * u * (np.abs(b) + 1), f"{what} array {i}")


def _run_both(update_name, arrays, *hyper):
    fast = [None if a is None else a.copy() for a in arrays]
    slow = [None if a is None else a.copy() for a in arrays]
    with parallel_from(TEST_PARALLEL_MIN_ELEMENTS):
        getattr(cpu, update_name)(*fast, *hyper)
    getattr(ref, update_name)(*slow, *hyper)
    return fast, slow


# 1 and 17 run the serial loops, 100 the parallel ones (see parallel_from)
_SIZES = st.sampled_from([1, 17, 100])


@given(seeds(), _SIZES, DTYPES, st.integers(1, 1000), st.sampled_from([0.0, 0.01]),
       st.booleans())
@settings(max_examples=12)
def test_adam_update_matches_reference(seed, size, dtype, step, weight_decay, decoupled):
    param, grad, exp_avg, exp_avg_sq = _optim_state(seed, size, dtype)
    before = param.copy()
    fast, slow = _run_both("adam_update", [param, grad, exp_avg, exp_avg_sq],
                           step, 2e-4, 0.5, 0.999, 1e-8, weight_decay, decoupled)
    _assert_same_state(fast, slow, dtype, "adam_update")
    assert not np.array_equal(fast[0], before)  # it did update in place


@given(seeds(), _SIZES, DTYPES, st.sampled_from([0.0, 0.9]), st.sampled_from([0.0, 0.01]))
@settings(max_examples=12)
def test_rmsprop_update_matches_reference(seed, size, dtype, momentum, weight_decay):
    param, grad, buffer, square_avg = _optim_state(seed, size, dtype)
    buffer = buffer if momentum else None
    fast, slow = _run_both("rmsprop_update", [param, grad, square_avg, buffer],
                           5e-5, 0.99, 1e-8, weight_decay, momentum)
    _assert_same_state(fast, slow, dtype, "rmsprop_update")


@given(seeds(), _SIZES, DTYPES, st.sampled_from([0.0, 0.9]), st.sampled_from([0.0, 0.01]),
       st.booleans())
@settings(max_examples=12)
def test_sgd_update_matches_reference(seed, size, dtype, momentum, weight_decay, nesterov):
    param, grad, buffer, _ = _optim_state(seed, size, dtype)
    buffer = buffer if momentum else None
    fast, slow = _run_both("sgd_update", [param, grad, buffer],
                           0.01, momentum, weight_decay, nesterov and momentum > 0)
    _assert_same_state(fast, slow, dtype, "sgd_update")


def test_optimizer_updates_fall_back_for_strided_arrays():
    """A strided view cannot be updated through a flat view: the reference does it."""
    param, grad, exp_avg, exp_avg_sq = _optim_state(11, 20, np.float32)
    views = [a[::2] for a in (param, grad, exp_avg, exp_avg_sq)]
    expected = [v.copy() for v in views]
    ref.adam_update(*expected, 3, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    cpu.adam_update(*views, 3, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    np.testing.assert_array_equal(param[::2], expected[0])


def test_malloc_tuning_is_off_unless_asked_for(monkeypatch):
    """glibc's process-wide malloc settings change every library's speed in the process
    (PyTorch's too), so they apply only with MINIGAN_MALLOC_TUNING=1."""
    util = importlib.import_module("minigan.kernels.cpu._util")
    import platform

    monkeypatch.delenv("MINIGAN_MALLOC_TUNING", raising=False)
    assert util.keep_freed_memory() is False
    monkeypatch.setenv("MINIGAN_MALLOC_TUNING", "1")
    assert util.keep_freed_memory() == (platform.libc_ver()[0] == "glibc")


def test_fresh_results_reuse_only_buffers_nothing_references():
    """A kernel result from a kept buffer: never one that an array in use (the result
    itself, a view of it, a reshaped or transposed view) still shares; reused once every
    one of them is gone; small results and results past the cap are plain arrays."""
    util = importlib.import_module("minigan.kernels.cpu._util")
    util.release_workspaces()
    shape = (300, 256)  # 300 KB of float32: recycled
    a = util.fresh(shape, np.float32)
    address = a.ctypes.data
    assert a.flags.c_contiguous and a.flags.writeable and a.shape == shape
    a[...] = 1.0
    views = [a[:, 3], a.T, a.reshape(-1)[::7], a.view(np.int32)]
    del a
    while views:
        b = util.fresh(shape, np.float32)
        assert not np.shares_memory(b, views[-1]), "a buffer still in use was handed out"
        b[...] = 2.0
        del b  # b's buffer is free again: the next call may take it, never views' buffer
        views.pop()
        assert all(np.all(v == 1.0) for v in views if v.dtype == np.float32)
    # every view gone: a's buffer is free; held, the other one is taken, then a's
    other = util.fresh(shape, np.float32)
    c = util.fresh((256, 300), np.float32)  # same bytes, other shape: a kept buffer
    assert c.ctypes.data == address and c.shape == (256, 300)
    assert other.ctypes.data != address
    d = util.fresh(shape, np.float64)  # other size: another buffer
    assert not np.shares_memory(c, d)
    small = util.fresh((10, 10), np.float32)
    assert small.base is None  # a plain array
    cap = util.RECYCLE_MAX_BYTES
    try:
        util.RECYCLE_MAX_BYTES = 0
        util.release_workspaces()
        assert util.fresh(shape, np.float32).base is None
    finally:
        util.RECYCLE_MAX_BYTES = cap
        util.release_workspaces()


def test_fresh_buffers_past_the_cap_drop_the_least_recently_used_free_ones():
    """A new size past RECYCLE_MAX_BYTES drops free buffers, oldest use first, and never one
    in use; when the buffers in use fill the cap, the result is a plain array."""
    util = importlib.import_module("minigan.kernels.cpu._util")
    cap = util.RECYCLE_MAX_BYTES
    kb = util.RECYCLE_MIN_BYTES  # one unit: the smallest kept size
    try:
        util.RECYCLE_MAX_BYTES = 10 * kb
        util.release_workspaces()
        held = util.fresh((4 * kb,), np.uint8)  # in use throughout
        old = util.fresh((2 * kb,), np.uint8)  # freed first
        old_address = old.ctypes.data
        del old
        recent = util.fresh((3 * kb,), np.uint8)  # freed later
        recent_address = recent.ctypes.data
        del recent
        assert util._local.recycled.total == 9 * kb
        big = util.fresh((5 * kb // 2,), np.uint8)  # room only by dropping `old`
        assert big.base is not None and util._local.recycled.total == 19 * kb // 2
        same = util.fresh((3 * kb,), np.uint8)  # `recent` was kept ...
        assert same.ctypes.data == recent_address
        kept = [b.ctypes.data for bs in util._local.recycled.by_size.values() for b in bs]
        assert old_address not in kept
        held[...] = 5  # ... and the held one never dropped
        assert not np.shares_memory(held, big) and not np.shares_memory(held, same)
        assert util.fresh((5 * kb,), np.uint8).base is None  # nothing free: a plain array
    finally:
        util.RECYCLE_MAX_BYTES = cap
        util.release_workspaces()


def test_fresh_buffers_are_per_thread():
    """Two threads never share a kept buffer: each has its own."""
    import threading

    util = importlib.import_module("minigan.kernels.cpu._util")
    held, seen = util.fresh((400, 200), np.float32), []

    def work():
        seen.append(util.fresh((400, 200), np.float32))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert not np.shares_memory(held, seen[0])


@given(_bn_shapes(), seeds(), DTYPES, st.sampled_from(KINDS), LAYOUTS, LAYOUTS)
def test_batch_norm_act_kernels_match_reference(shape, seed, dtype, kind, x_layout, gy_layout):
    """The activation fused into batch norm's passes. The reference runs in float64 on the
    same inputs; bounds: batch norm's own (as in the test above, through an activation
    whose slope is at most 1) plus the activation's rounding, 16 ulps as for activation.
    The backward takes both kernels' gy back through the activation at the same float32
    output y, so relu's mask is the same on both sides."""
    eps = 1e-5
    x, weight, bias, gy = _bn_case(shape, seed, dtype, True)
    x, gy = in_layout(x, x_layout), in_layout(gy, gy_layout)
    u = unit_roundoff(dtype)
    count = x.size // x.shape[1]
    tol = 16 * u + 4 * count * U64
    axes = (0,) + tuple(range(2, x.ndim))
    channel = (1, -1) + (1,) * (x.ndim - 2)

    y, mean, var = cpu.batch_norm_act_train(x, weight, bias, eps, kind, 0.2)
    y_exact, _, var_exact = ref.batch_norm_act_train(_f64(x), _f64(weight), _f64(bias), eps,
                                                     kind, 0.2)
    assert y.dtype == dtype and is_channels_last(y) == is_channels_last(x)
    scale = np.abs(x).mean(axis=axes)
    invstd = 1 / np.sqrt(var_exact + eps)
    centered = np.abs(x - x.astype(np.float64).mean(axis=axes).reshape(channel))
    terms = (centered + scale.reshape(channel)) * (invstd * np.abs(_f64(weight))).reshape(
        channel) + np.abs(_f64(bias)).reshape(channel)
    assert_within(y, y_exact, tol * terms + 16 * u * (np.abs(y_exact) + 1), f"{kind} y")

    gx, gweight, gbias = cpu.batch_norm_act_backward(gy, y, x, weight, mean, var, eps, kind, 0.2)
    exact = ref.batch_norm_act_backward(_f64(gy), _f64(y), _f64(x), _f64(weight), _f64(mean),
                                        _f64(var), eps, kind, 0.2)
    assert gx.dtype == dtype and is_channels_last(gx) == is_channels_last(x)
    invstd = (1 / np.sqrt(_f64(var) + eps)).reshape(channel)
    centered = np.abs(x - _f64(mean).reshape(channel))
    sum_gy = np.abs(gy).sum(axis=axes, keepdims=True)
    sum_gy_xc = (np.abs(gy) * centered).sum(axis=axes, keepdims=True)
    terms = np.abs(_f64(weight)).reshape(channel) * invstd * (
        np.abs(gy) + sum_gy / count + centered * invstd**2 * sum_gy_xc / count)
    # the float32 activation gradient adds up to 4 u |gy| per element, carried linearly
    assert_within(gx, exact[0], (tol + 4 * u) * terms, f"{kind} gx")
    assert_within(gweight, exact[1], (tol + 4 * u) * (invstd * sum_gy_xc).reshape(-1),
                  f"{kind} gweight")
    assert_within(gbias, exact[2], (tol + 4 * u) * sum_gy.reshape(-1), f"{kind} gbias")


def test_thread_count_follows_numba_set_num_threads():
    """The kernels read Numba's thread count through its C function (no locks): it must
    still be the count numba.set_num_threads set, in this thread and in another."""
    util = importlib.import_module("minigan.kernels.cpu._util")
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    try:
        for count in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(count)
            assert util.thread_count() == numba.get_num_threads() == count
    finally:
        numba.set_num_threads(before)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(
        (util.thread_count(), numba.get_num_threads())))
    worker.start()
    worker.join()
    assert seen[0][0] == seen[0][1]


@contextlib.contextmanager
def row_blocks_from(elements: int, threads: int):
    """A context in which (N, C) row loops of `elements` or more run in `threads` blocks."""
    util = importlib.import_module("minigan.kernels.cpu._util")
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(util, "ROWS_PARALLEL_MIN_ELEMENTS", elements)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(before)


@given(st.sampled_from([(5, 7), (64, 3), (17, 2), (3, 4, 2, 3), (1, 6, 1, 1)]),
       st.sampled_from(KINDS), seeds(), DTYPES, LAYOUTS, st.sampled_from([1, 2, 10**9]))
def test_activation_grad_bias_matches_reference(shape, kind, seed, dtype, layout, blocks_from):
    """gx as activation_grad's; the bias gradient sums M = size / C values of gx: within
    M u sum |gx| of the exact sum for either side's summation order (Higham eq. 3.5),
    plus the elementwise bound carried through the sum. The rows of a 2-D gy may go in
    blocks, one per thread, each summing its own rows (blocks_from: from how many
    elements on)."""
    u = unit_roundoff(dtype)
    y = in_layout(np.tanh(random_array(seed, shape, dtype, scale=2.0)), layout)
    gy = in_layout(random_array(seed + 1, shape, dtype), layout)
    with row_blocks_from(blocks_from, threads=2):
        gx, gbias = cpu.activation_grad_bias(gy, y, kind, 0.2)
    want = ref.activation_grad(gy.astype(np.float64), y.astype(np.float64), kind, 0.2)
    assert gx.dtype == gbias.dtype == dtype and gbias.shape == (shape[1],)
    assert_within(gx, want, 16 * u * np.abs(gy), f"{kind} gx")
    axes = (0,) + tuple(range(2, len(shape)))
    count = gy.size // shape[1]
    bound = (2 * count * u + 16 * u) * np.abs(gy).astype(np.float64).sum(axis=axes)
    assert_within(gbias, want.sum(axis=axes), bound, f"{kind} gbias")



# ----------------------------------------------------------------------------- products
# kernels/cpu/blas.py: a @ b on Numba's threads, one OpenBLAS call per block of rows or
# columns. Each element is a K-term dot product, within K u (|a| @ |b|) of the exact value
# (Higham, as for the convolutions above), as is the float64 product it is compared with,
# so the two differ by at most 2 K u (|a| @ |b|); out += a @ b adds one more rounding of
# the sum, u |a @ b + c|.

_OPERAND_LAYOUTS = st.sampled_from(["c", "transposed", "strided", "offset"])


def _operand_in(a: np.ndarray, layout: str) -> np.ndarray:
    """a's values in another memory layout: C order, a transposed (Fortran-order) view,
    every other row and column of a larger array, or a block inside a wider array."""
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    if layout == "strided":
        big = np.zeros((2 * a.shape[0], 2 * a.shape[1]), dtype=a.dtype)
        big[::2, ::2] = a
        return big[::2, ::2]
    if layout == "offset":
        big = np.zeros((a.shape[0] + 2, a.shape[1] + 3), dtype=a.dtype)
        big[1:-1, 2:-1] = a
        return big[1:-1, 2:-1]
    return np.ascontiguousarray(a)


def _blas_threads() -> list:
    """The thread count of each BLAS library NumPy loaded."""
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


@contextlib.contextmanager
def split_products_from(macs: int):
    """A context in which products of `macs` or more multiply-adds run on Numba's threads,
    each thread's block at least macs // 2: small drawn shapes take the threaded path."""
    blas = importlib.import_module("minigan.kernels.cpu.blas")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blas, "OWN_THREADS_MIN_MACS", macs)
        patch.setattr(blas, "MIN_MACS_PER_PART", max(1, macs // 2))
        yield blas


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), seeds(), DTYPES,
       _OPERAND_LAYOUTS, _OPERAND_LAYOUTS, st.booleans(), st.sampled_from([1, 2, 10**9]))
def test_gemm_matches_reference(m, k, n, seed, dtype, a_layout, b_layout, accumulate,
                                split_from):
    a = _operand_in(random_array(seed, (m, k), dtype), a_layout)
    b = _operand_in(random_array(seed + 1, (k, n), dtype), b_layout)
    c = random_array(seed + 2, (m, n), dtype)
    # out is a block of a wider array: the call must write that block and nothing else
    frame = np.full((m + 2, n + 4), 7.0, dtype=dtype)
    out = frame[1:-1, 2:-2]
    out[...] = c
    u = unit_roundoff(dtype)
    exact = a.astype(np.float64) @ b.astype(np.float64) + (c if accumulate else 0)
    with split_products_from(split_from) as blas:
        result = blas.gemm(a, b, out=out, accumulate=accumulate)
        fresh = blas.gemm(a, b)
    assert result is out and fresh.dtype == dtype and fresh.flags.c_contiguous
    bound = 2 * k * u * (np.abs(a).astype(np.float64) @ np.abs(b)) * (1 + u)
    assert_within(fresh, exact - (c if accumulate else 0), bound, "gemm")
    assert_within(out, exact, bound + u * np.abs(exact), "gemm accumulate")
    frame[1:-1, 2:-2] = 7.0
    assert np.all(frame == 7.0), "gemm wrote outside its out block"


def test_gemm_splits_rows_columns_and_depth_at_any_thread_count():
    """Tall products are split by rows, wide ones by columns and long ones (a weight
    gradient's small result over many rows) by their depth, into as many blocks as there
    are threads (block edges on multiples of 8); the result is the product either way, and
    one split, cut the same way, gives the same bits every time."""
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    threads = numba.get_num_threads()
    cases = [((67, 24, 5), "rows"), ((5, 24, 67), "columns"), ((33, 24, 33), "rows"),
             ((9, 24, 1000), "columns"), ((6, 200, 5), "depth"), ((40, 97, 33), "depth")]
    try:
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            for (m, k, n), how in cases:
                a = rng.standard_normal((m, k))
                b = rng.standard_normal((k, n))
                with split_products_from(1) as blas:
                    parts, split = blas.gemm_split(m, n, k)
                    result = blas.gemm(a, b)
                    again = blas.gemm(a, b, out=np.full((m, n), np.nan))
                assert parts == count
                if count > 1:
                    assert split == {"rows": blas._ROWS, "columns": blas._COLUMNS,
                                     "depth": blas._DEPTH}[how], (m, k, n)
                np.testing.assert_allclose(result, a @ b, rtol=1e-12, atol=1e-12)
                np.testing.assert_array_equal(again, result)
    finally:
        numba.set_num_threads(threads)


def test_gemm_leaves_openblas_thread_count_as_it_was():
    """The threaded path runs OpenBLAS single-threaded under Numba's threads and restores
    its thread count afterwards, so NumPy's own products keep theirs."""
    before = _blas_threads()
    a = np.ones((300, 200), dtype=np.float32)
    with split_products_from(1) as blas:
        blas.gemm(a, a.T)
    assert _blas_threads() == before


def test_gemm_falls_back_to_numpy_for_other_dtypes_and_refuses_bad_shapes():
    with split_products_from(1) as blas:
        ints = np.arange(12).reshape(3, 4)
        np.testing.assert_array_equal(blas.gemm(ints, ints.T), ints @ ints.T)
        mixed = blas.gemm(np.ones((3, 4), np.float32), np.ones((4, 2), np.float64))
        assert mixed.dtype == np.float64 and np.all(mixed == 4)
        with pytest.raises(ValueError, match=r"inner dimensions differ, a \(3, 4\) @ b \(3, 4\)"):
            blas.gemm(np.ones((3, 4)), np.ones((3, 4)))
        with pytest.raises(ValueError, match=r"out must be a \(3, 2\) array"):
            blas.gemm(np.ones((3, 4)), np.ones((4, 2)), out=np.empty((2, 3)))
        with pytest.raises(ValueError, match="accumulate needs an out array"):
            blas.gemm(np.ones((3, 4)), np.ones((4, 2)), accumulate=True)


def test_matmul_kernel_is_the_reference_product():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((70, 50)), rng.standard_normal((50, 60))
    with split_products_from(1):
        np.testing.assert_allclose(cpu.matmul(a, b), ref.matmul(a, b), rtol=1e-12,
                                   atol=1e-12)


def test_gemm_without_openblas_entry_points_uses_numpy(monkeypatch):
    """A NumPy built on another BLAS (MKL, Accelerate): no entry points are found, and every
    product, accumulation included, is NumPy's own."""
    with split_products_from(1) as blas:
        monkeypatch.setattr(blas._BLAS, "gemm", {})
        assert not blas.uses_numba_threads()
        rng = np.random.default_rng(2)
        a, b = rng.standard_normal((40, 30)), rng.standard_normal((30, 20))
        out = np.ones((40, 20))
        np.testing.assert_array_equal(blas.gemm(a, b), a @ b)
        blas.gemm(a, b, out=out, accumulate=True)
        np.testing.assert_allclose(out, a @ b + 1, rtol=1e-13, atol=1e-13)


def test_gemm_from_several_python_threads():
    """Products called from two Python threads at once are right, and OpenBLAS's thread
    count is what it was afterwards (each call sets it to 1 and restores it, in turn)."""
    import threading

    before = _blas_threads()
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((90, 70)), rng.standard_normal((70, 80))
    expected = a @ b
    wrong = []

    def work():
        for _ in range(30):
            if not np.allclose(blas.gemm(a, b), expected, rtol=1e-12, atol=1e-12):
                wrong.append(1)

    with split_products_from(1) as blas:
        workers = [threading.Thread(target=work) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert not wrong
    assert _blas_threads() == before


# ----------------------------------------------------------------------------- linear layers
# kernels/cpu/linear.py: a linear layer's forward (product, bias, activation) and backward
# (activation gradient, bias sums, input gradient) per block of rows, one block per thread.
# Bounds as for the products below and the activations above: a K-term dot product is
# within K u (|a| @ |b|) of the exact value (Higham eq. 3.5), the bias add rounds once
# more, and the activations are 1-Lipschitz (sigmoid 1/4) with 16 ulps of their own.
# Beyond the bounds, the fused loops must give the separate kernels' results bit for bit.


@contextlib.contextmanager
def linear_blocks(split: bool, fused: bool = True):
    """Every linear layer, however small, takes the fused loops (or, fused=False, the
    separate kernels under the same thresholds); with split, in blocks of rows on two
    threads. The thresholds are lowered for the products and row loops alike, so both
    routes cut the rows the same way, as they do at the real thresholds."""
    linear = importlib.import_module("minigan.kernels.cpu.linear")
    blas = importlib.import_module("minigan.kernels.cpu.blas")
    util = importlib.import_module("minigan.kernels.cpu._util")
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linear, "FUSED_LINEAR", fused)
        patch.setattr(linear, "FUSED_MIN_WIDTH", 1)
        patch.setattr(blas, "OWN_THREADS_MIN_MACS", 1)
        patch.setattr(blas, "MIN_MACS_PER_PART", 1)
        patch.setattr(util, "ROWS_PARALLEL_MIN_ELEMENTS", 1)
        numba.set_num_threads(min(2 if split else 1, numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(before)


@given(st.integers(1, 40), st.integers(1, 12), st.integers(1, 12), st.sampled_from(KINDS),
       st.booleans(), seeds(), DTYPES, _OPERAND_LAYOUTS, _OPERAND_LAYOUTS,
       st.booleans())
def test_linear_act_matches_reference(rows, ins, outs, kind, with_bias, seed, dtype,
                                      x_layout, w_layout, split):
    u = unit_roundoff(dtype)
    x = _operand_in(random_array(seed, (rows, ins), dtype), x_layout)
    w = _operand_in(random_array(seed + 1, (outs, ins), dtype), w_layout)
    bias = random_array(seed + 2, (outs,), dtype) if with_bias else None
    with linear_blocks(split):
        y = cpu.linear_act(x, w, bias, kind, 0.2)
    wide = [None if a is None else a.astype(np.float64) for a in (x, w, bias)]
    exact = ref.linear_act(*wide, kind, 0.2)
    assert y.dtype == dtype and y.shape == (rows, outs) and y.flags.c_contiguous
    magnitude = np.abs(wide[0]) @ np.abs(wide[1]).T + (0 if bias is None else np.abs(wide[2]))
    bound = 2 * (ins + 1) * u * magnitude + 16 * u * (np.abs(exact) + 1)
    assert_within(y, exact, bound, f"linear_act {kind}")


@given(st.integers(1, 40), st.integers(1, 12), st.integers(1, 12), st.sampled_from(KINDS),
       seeds(), DTYPES, _OPERAND_LAYOUTS, _OPERAND_LAYOUTS,
       st.sampled_from([(True, True), (True, False), (False, True), (False, False)]),
       st.booleans())
def test_linear_grads_match_reference(rows, ins, outs, kind, seed, dtype, x_layout, w_layout,
                                      needs, split):
    u = unit_roundoff(dtype)
    x = _operand_in(random_array(seed, (rows, ins), dtype), x_layout)
    w = _operand_in(random_array(seed + 1, (outs, ins), dtype), w_layout)
    y = np.tanh(random_array(seed + 2, (rows, outs), dtype, scale=2.0))
    g = random_array(seed + 3, (rows, outs), dtype)
    with linear_blocks(split):
        gx, gw, gb = cpu.linear_grads(g, y, x, w, kind, 0.2, *needs)
    wide = [a.astype(np.float64) for a in (g, y, x, w)]
    want_gx, want_gw, want_gb = ref.linear_grads(*wide, kind, 0.2, True, True)
    assert (gx is None) != needs[0] and (gw is None) != needs[1]
    # gz = act'(g) is within 16 ulps of |g| (the derivatives are at most 1 in size)
    gz_error = 16 * u * np.abs(wide[0])
    bound_gb = (2 * rows * u + 16 * u) * np.abs(wide[0]).sum(axis=0) + gz_error.sum(axis=0)
    assert gb.dtype == dtype
    assert_within(gb, want_gb, bound_gb, f"linear_grads {kind} gb")
    if needs[0]:
        bound = (2 * outs * u * (1 + u)) * (np.abs(wide[0]) @ np.abs(wide[3])) \
            + gz_error @ np.abs(wide[3])
        assert gx.dtype == dtype and gx.shape == (rows, ins)
        assert_within(gx, want_gx, bound, f"linear_grads {kind} gx")
    if needs[1]:
        bound = (2 * (rows + 1) * u) * (np.abs(wide[0]).T @ np.abs(wide[2])) \
            + gz_error.T @ np.abs(wide[2])
        assert gw.dtype == dtype and gw.shape == (outs, ins)
        assert_within(gw, want_gw, bound, f"linear_grads {kind} gw")


def _count_fused_calls(patch, calls: list) -> None:
    """Within `patch`, every run of the fused loops (either copy) appends to `calls`."""
    linear = importlib.import_module("minigan.kernels.cpu.linear")
    for name in ("_LINEAR_ACT_BLOCKS", "_LINEAR_GRADS_BLOCKS"):
        patch.setattr(linear, name, tuple(lambda *args, c=c: calls.append(c) or c(*args)
                                          for c in getattr(linear, name)))


def _linear_layer_both_ways(x, w, bias, g, kind, needs, split):
    """(forward, backward) of one layer through the fused loops and through the separate
    kernels, and how many times the fused loops ran."""
    calls = []
    results = []
    for fused in (True, False):
        with linear_blocks(split, fused), pytest.MonkeyPatch.context() as patch:
            _count_fused_calls(patch, calls)
            y = cpu.linear_act(x, w, bias, kind, 0.2)
            results.append((y, cpu.linear_grads(g, y, x, w, kind, 0.2, *needs)))
    return results, len(calls)


@given(st.integers(12, 40), st.integers(2, 12), st.integers(2, 12),
       st.sampled_from(["relu", "leaky_relu", "tanh", "sigmoid"]), seeds(), DTYPES,
       _OPERAND_LAYOUTS, st.sampled_from([(True, True), (True, False), (False, True)]),
       st.booleans())
def test_linear_kernels_give_the_separate_kernels_bits(rows, ins, outs, kind, seed, dtype,
                                                      w_layout, needs, split):
    """The fused loops add the same terms in the same order as activation_grad_bias and
    gemm do, so a run is the same run with them or without (no tolerance: an extra
    partial sum or another cut of the rows changes the last bits)."""
    x = random_array(seed, (rows, ins), dtype)
    w = _operand_in(random_array(seed + 1, (outs, ins), dtype), w_layout)
    bias = random_array(seed + 2, (outs,), dtype)
    g = random_array(seed + 3, (rows, outs), dtype)
    (fused, separate), calls = _linear_layer_both_ways(x, w, bias, g, kind, needs, split)
    # the forward took the fused loop (rows >= outputs: gemm cuts rows); the backward too
    # where gemm cuts gz @ w by rows as well (rows >= inputs)
    assert calls == 1 + (rows >= ins or not needs[0])
    np.testing.assert_array_equal(fused[0], separate[0])
    for mine, theirs in zip(fused[1], separate[1]):
        assert (mine is None) == (theirs is None)
        if mine is not None:
            assert mine.dtype == theirs.dtype
            np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("rows, width", [(512, 128), (520, 128), (512, 256), (300, 100), (64, 64)])
def test_linear_kernels_at_their_real_thresholds_give_the_separate_kernels_bits(rows, width):
    """As above for MLP-sized layers at the library's own thresholds on two threads, where
    OpenBLAS's sums for a row depend on the size of the call (its small-matrix kernels):
    300 x 100 x 100 once differed in gx when the fused loop cut its rows otherwise than
    gemm."""
    linear = importlib.import_module("minigan.kernels.cpu.linear")
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        results = []
        calls = []
        for fused in (True, False):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(linear, "FUSED_LINEAR", fused)
                _count_fused_calls(patch, calls)
                x = random_array(1, (rows, width), np.float32)
                w = random_array(2, (width, width), np.float32, scale=0.1)
                bias = random_array(3, (width,), np.float32)
                y = cpu.linear_act(x, w, bias, "leaky_relu", 0.2)
                g = random_array(4, (rows, width), np.float32)
                results.append([y, *cpu.linear_grads(g, y, x, w, "leaky_relu", 0.2, True,
                                                     True)])
    finally:
        numba.set_num_threads(before)
    # forward and backward fused for MLP-2D's layers; smaller ones' gradient rows are not
    # cut into blocks (activation_grad_bias), so their backward is fused only on one thread
    assert len(calls) == 2 if rows >= 512 else len(calls) >= 1
    for mine, theirs in zip(*results):
        np.testing.assert_array_equal(mine, theirs)


def test_linear_kernels_without_openblas_or_rows_use_the_separate_kernels(monkeypatch):
    """No OpenBLAS entry points (NumPy on MKL or Accelerate), or a layer with no rows: the
    layer goes through the separate kernels, with the same results."""
    linear = importlib.import_module("minigan.kernels.cpu.linear")
    monkeypatch.setattr(linear, "FUSED_LINEAR", True)
    monkeypatch.setattr(linear, "FUSED_MIN_WIDTH", 1)
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((9, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    g, y = rng.standard_normal((9, 3)), np.tanh(rng.standard_normal((9, 3)))
    fused = cpu.linear_act(x, w, b, "tanh"), cpu.linear_grads(g, y, x, w, "tanh", 0, True, True)
    monkeypatch.setattr(importlib.import_module("minigan.kernels.cpu.blas")._BLAS, "gemm", {})
    np.testing.assert_allclose(cpu.linear_act(x, w, b, "tanh"), fused[0], rtol=1e-13,
                               atol=1e-13)
    for mine, theirs in zip(cpu.linear_grads(g, y, x, w, "tanh", 0, True, True), fused[1]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-13)
    monkeypatch.undo()  # OpenBLAS back; layers without rows take the separate kernels
    w = w.astype(np.float32)
    empty = cpu.linear_act(np.zeros((0, 4), np.float32), w, None, "tanh")
    assert empty.shape == (0, 3)
    rows = np.zeros((0, 3), np.float32)
    gx, gw, gb = cpu.linear_grads(rows, rows, np.zeros((0, 4), np.float32), w, "relu", 0.0,
                                  True, True)
    assert gx.shape == (0, 4) and gw.shape == (3, 4) and gb.shape == (3,)
    assert np.all(gw == 0) and np.all(gb == 0)


# ----------------------------------------------------------------------------- maxout


@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 6), seeds(), DTYPES)
def test_maxout_kernels_match_reference(rows, channels, pieces, seed, dtype):
    # maxout selects and scatters, no arithmetic: the kernels must agree exactly, ties (a
    # coarse grid of values makes many) going to the first piece in both
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(rows, channels * pieces)).astype(dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    y, index = cpu.maxout(x, pieces)
    y_ref, index_ref = ref.maxout(x, pieces)
    np.testing.assert_array_equal(index, index_ref)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(cpu.maxout_gather(x, index), ref.maxout_gather(x, index))
    gy = random_array(seed + 1, (rows, channels), dtype)
    np.testing.assert_array_equal(cpu.maxout_scatter(gy, index, pieces),
                                  ref.maxout_scatter(gy, index, pieces))
