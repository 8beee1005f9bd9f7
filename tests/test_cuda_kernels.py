"""The CUDA kernels (kernels/cuda) against the NumPy reference, over drawn shapes.

Without a GPU they run on Numba's CUDA simulator (tests/conftest.py turns it on) on NumPy
arrays, so shapes are tiny: every simulated thread is a Python thread. On a machine with a
GPU and CuPy (no simulator) the same tests run on the device with CuPy arrays, on larger
shapes (benchmarks/gpu_check.sh does that).

How results are compared. The reference runs in float64 on the same inputs and stands for
the exact result. Each test bounds the kernel's own rounding error with u, the unit
roundoff of the tested dtype (2^-24 for float32, 2^-53 for float64), and the size of the
terms involved:
- a sum of K products in floating point is off by at most ~K * u * sum |a_i b_i|
  (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., section 3.1); for conv
  the sums of |terms| are the reference conv of |x| and |w|, computed in float64;
- elementwise kernels compute in float64 and round once when storing: error u * |result|,
  plus, for float64 inputs, a few roundings of the inputs' scale;
- batch norm and the optimizers: see their tests.
The bounds are a few times these estimates; a wrong index, kind or formula gives errors of
the order of the values themselves, far above them.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import cuda_problem
from minigan.kernels import cuda as K
from minigan.kernels import reference as R
from minigan.kernels.cuda import _launch
from tests.strategies import DTYPES, channel_shapes, conv2d_configs, random_array, seeds

SIMULATED = bool(numba.config.ENABLE_CUDASIM)
GPU_PROBLEM = None if SIMULATED else cuda_problem()

pytestmark = pytest.mark.skipif(
    GPU_PROBLEM is not None,
    reason=f"no CUDA simulator and no usable GPU ({GPU_PROBLEM}); set NUMBA_ENABLE_CUDASIM=1",
)

# On a real GPU the shapes can grow: more blocks, longer grid-stride loops.
SCALE = 1 if SIMULATED else 4
KINDS = st.sampled_from(["relu", "leaky_relu", "tanh", "sigmoid", "none"])
U64 = 2.0**-53  # the kernels' internal (float64) unit roundoff


def device(array: np.ndarray | None):
    """The array where the kernels take it: NumPy under the simulator, CuPy on a GPU."""
    if array is None:
        return None
    if SIMULATED:
        return array.copy()
    import cupy

    return cupy.asarray(array)


def host(array) -> np.ndarray:
    return array if isinstance(array, np.ndarray) else array.get()


def as64(array: np.ndarray | None) -> np.ndarray | None:
    return None if array is None else array.astype(np.float64)


def unit_roundoff(dtype) -> float:
    return float(np.finfo(dtype).eps) / 2


def assert_within(actual, exact: np.ndarray, bound: np.ndarray, what: str) -> None:
    actual = host(actual)
    assert actual.shape == exact.shape, f"{what}: shape {actual.shape}, expected {exact.shape}"
    error = np.abs(actual.astype(np.float64) - exact)
    worst = np.unravel_index(np.argmax(error - bound), error.shape) if error.size else ()
    assert np.all(error <= bound), (
        f"{what}: error {error[worst]:.3g} > bound {bound[worst]:.3g} at {worst} "
        f"(got {actual[worst]}, expected {exact[worst]})"
    )


# ----------------------------------------------------------------------------- conv


@given(config=conv2d_configs(groups=True, max_size=7 * SCALE, max_channels=3 * SCALE),
       dtype=DTYPES, seed=seeds())
def test_conv2d_and_its_adjoints_match_reference(config, dtype, seed):
    x_shape, w_shape, stride, padding, dilation, groups = config
    geometry = (stride, padding, dilation, groups)
    u = unit_roundoff(dtype)
    x, w = random_array(seed, x_shape, dtype), random_array(seed + 1, w_shape, dtype)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    c_out, c_group, kh, kw = w_shape

    y = K.conv2d(device(x), device(w), *geometry)
    assert host(y).dtype == dtype and host(y).flags.c_contiguous
    # each output sums K = C_in/G * kH * kW products; bound 2 (K + 1) u sum|x w|
    terms = c_group * kh * kw
    bound = 2 * (terms + 1) * u * R.conv2d(np.abs(x64), np.abs(w64), *geometry)
    assert_within(y, R.conv2d(x64, w64, *geometry), bound, "conv2d")

    gy = random_array(seed + 2, host(y).shape, dtype)
    gy64 = gy.astype(np.float64)
    n, _, out_h, out_w = gy.shape

    gx = K.conv2d_input_grad(device(gy), device(w), x_shape[2:], *geometry)
    terms = c_out // groups * kh * kw
    bound = 2 * (terms + 1) * u * R.conv2d_input_grad(
        np.abs(gy64), np.abs(w64), x_shape[2:], *geometry
    )
    exact = R.conv2d_input_grad(gy64, w64, x_shape[2:], *geometry)
    assert_within(gx, exact, bound, "conv2d_input_grad")

    gw = K.conv2d_weight_grad(device(x), device(gy), (kh, kw), *geometry)
    terms = n * out_h * out_w
    bound = 2 * (terms + 1) * u * R.conv2d_weight_grad(
        np.abs(x64), np.abs(gy64), (kh, kw), *geometry
    )
    exact = R.conv2d_weight_grad(x64, gy64, (kh, kw), *geometry)
    assert_within(gw, exact, bound, "conv2d_weight_grad")


def test_conv2d_accepts_a_non_contiguous_input():
    x = random_array(0, (2, 5, 6, 3), np.float32).transpose(0, 3, 1, 2)  # (2, 3, 5, 6) view
    w = random_array(1, (4, 3, 3, 3), np.float32)
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    y = host(K.conv2d(device(x), device(w), *geometry))
    # sums of 27 products of N(0,1) values: 1e-5 is ~100 u * 27 * typical sum|x w| (~3)
    np.testing.assert_allclose(y, R.conv2d(x, w, *geometry), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- activations


@given(shape=channel_shapes(min_per_channel=1, max_size=3 * SCALE), kind=KINDS,
       slope=st.floats(0.0, 1.0), dtype=DTYPES, seed=seeds())
def test_bias_activation_and_gradient_match_reference(shape, kind, slope, dtype, seed):
    u = unit_roundoff(dtype)
    x = random_array(seed, shape, dtype, scale=2.0)
    bias = random_array(seed + 1, shape[1:2], dtype)
    x64, bias64 = x.astype(np.float64), bias.astype(np.float64)
    lipschitz = max(1.0, slope)  # of every kind: |act'| <= max(1, slope)

    exact = R.bias_activation(x64, bias64, kind, slope)
    y = K.bias_activation(device(x), device(bias), kind, slope)
    # one rounding of the result; for float64 inputs also of x + bias, moved by act'
    per_channel = np.abs(bias64).reshape((1, -1) + (1,) * (x.ndim - 2))
    bound = 4 * u * (np.abs(exact) + lipschitz * (np.abs(x64) + per_channel))
    assert_within(y, exact, bound, f"bias_activation {kind}")

    exact = R.activation(x64, kind, slope)
    bound = 4 * u * (np.abs(exact) + lipschitz * np.abs(x64))
    assert_within(K.activation(device(x), kind, slope), exact, bound, f"activation {kind}")

    # the gradient from the output y (taken in the tested dtype, as a layer would keep it)
    y_kept = R.activation(x, kind, slope)
    gy = random_array(seed + 2, shape, dtype)
    exact = R.activation_grad(gy.astype(np.float64), y_kept.astype(np.float64), kind, slope)
    gx = K.activation_grad(device(gy), device(y_kept), kind, slope)
    bound = 4 * u * (np.abs(exact) + np.abs(gy) * (1 + np.abs(y_kept)) ** 2)
    assert_within(gx, exact, bound, f"activation_grad {kind}")

    # with the bias gradient (its sum over all axes but 1), as a linear layer's backward
    gx, gbias = K.activation_grad_bias(device(gy), device(y_kept), kind, slope)
    assert_within(gx, exact, bound, f"activation_grad_bias {kind}")
    axes = (0,) + tuple(range(2, x.ndim))
    count = gy.size // shape[1]
    sum_bound = (2 * count * u) * np.abs(exact).sum(axis=axes) + bound.sum(axis=axes)
    assert_within(gbias, exact.sum(axis=axes), sum_bound, f"activation_grad_bias sum {kind}")



@given(rows=st.integers(1, 6 * SCALE), ins=st.integers(1, 5 * SCALE),
       outs=st.integers(1, 5 * SCALE), kind=KINDS, with_bias=st.booleans(), dtype=DTYPES,
       seed=seeds())
def test_linear_kernels_match_reference(rows, ins, outs, kind, with_bias, dtype, seed):
    """linear_act and linear_grads: the products (K-term sums, bound 2 (K + 1) u sum|terms|)
    around the activation kernels above, whose errors the products carry (derivatives and
    |w|, |x| sums bound them)."""
    u = unit_roundoff(dtype)
    x, w = random_array(seed, (rows, ins), dtype), random_array(seed + 1, (outs, ins), dtype)
    bias = random_array(seed + 2, (outs,), dtype) if with_bias else None
    x64, w64, b64 = as64(x), as64(w), as64(bias)
    y = K.linear_act(device(x), device(w), device(bias), kind, 0.2)
    exact = R.linear_act(x64, w64, b64, kind, 0.2)
    magnitude = np.abs(x64) @ np.abs(w64).T + (0 if bias is None else np.abs(b64))
    bound = 2 * (ins + 2) * u * magnitude + 4 * u * (np.abs(exact) + 1)
    assert host(y).dtype == dtype
    assert_within(y, exact, bound, f"linear_act {kind}")

    y_kept = np.tanh(random_array(seed + 3, (rows, outs), dtype))
    g = random_array(seed + 4, (rows, outs), dtype)
    g64 = as64(g)
    gx, gw, gb = K.linear_grads(device(g), device(y_kept), device(x), device(w), kind, 0.2,
                                True, True)
    want_gx, want_gw, want_gb = R.linear_grads(g64, as64(y_kept), x64, w64, kind, 0.2, True,
                                               True)
    gz_bound = 4 * u * np.abs(g64) * 4  # the derivative's rounding, |act'| <= 1
    assert_within(gb, want_gb, 2 * rows * u * np.abs(g64).sum(axis=0) + gz_bound.sum(axis=0),
                  f"linear_grads {kind} gb")
    assert_within(gx, want_gx, 2 * (outs + 1) * u * (np.abs(g64) @ np.abs(w64))
                  + gz_bound @ np.abs(w64), f"linear_grads {kind} gx")
    assert_within(gw, want_gw, 2 * (rows + 1) * u * (np.abs(g64).T @ np.abs(x64))
                  + gz_bound.T @ np.abs(x64), f"linear_grads {kind} gw")
    none = K.linear_grads(device(g), device(y_kept), device(x), device(w), kind, 0.2, False,
                          False)
    assert none[0] is None and none[1] is None

def test_activation_rejects_an_unknown_kind():
    x = device(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="activation: unknown activation kind 'gelu'"):
        K.activation(x, "gelu", 0.0)
    with pytest.raises(ValueError, match="activation_grad: unknown activation kind 'elu'"):
        K.activation_grad(x, x, "elu", 0.0)


def test_bias_activation_rejects_a_bias_of_the_wrong_length():
    x, bias = device(np.zeros((2, 3, 4, 4), np.float32)), device(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"bias has shape \(4,\), expected \(3,\)"):
        K.bias_activation(x, bias, "relu", 0.0)


# ----------------------------------------------------------------------------- loss


@given(shape=channel_shapes(min_per_channel=1, max_size=3 * SCALE), dtype=DTYPES,
       seed=seeds())
def test_bce_with_logits_matches_reference(shape, dtype, seed):
    u = unit_roundoff(dtype)
    x = random_array(seed, shape, dtype, scale=5.0)
    target = np.random.default_rng(seed).uniform(0, 1, shape).astype(dtype)
    x64, t64 = x.astype(np.float64), target.astype(np.float64)
    exact = R.bce_with_logits(x64, t64)
    # terms max(x, 0), x t and log1p(exp(-|x|)) <= log 2 may cancel: bound by their size
    bound = 4 * u * (np.abs(x64) + np.abs(x64 * t64) + 1)
    assert_within(K.bce_with_logits(device(x), device(target)), exact, bound, "bce_with_logits")


def test_bce_with_logits_is_exact_at_extreme_logits():
    x = device(np.array([1000.0, 1000.0, -1000.0, -1000.0], np.float32))
    target = device(np.array([1.0, 0.0, 0.0, 1.0], np.float32))
    loss = host(K.bce_with_logits(x, target))
    np.testing.assert_array_equal(loss, [0.0, 1000.0, 0.0, 1000.0])
    # a number as target broadcasts
    np.testing.assert_array_equal(host(K.bce_with_logits(x, 1.0)), [0.0, 0.0, 1000.0, 1000.0])


# ----------------------------------------------------------------------------- batch norm


def _per_channel(values, ndim):
    return values.reshape((1, -1) + (1,) * (ndim - 2))


def _channel_reduce(values, fn):
    return fn(values, axis=(0,) + tuple(range(2, values.ndim)))


@given(shape=channel_shapes(min_per_channel=1, max_size=3 * SCALE), dtype=DTYPES,
       seed=seeds(), affine=st.sampled_from(["both", "weight", "bias", "none"]),
       offset=st.sampled_from([0.0, 100.0]), eps=st.sampled_from([1e-5, 1e-3]))
def test_batch_norm_train_matches_reference(shape, dtype, seed, affine, offset, eps):
    """Error analysis. The kernel sums d = x - shift (shift: the channel's first value) and
    d^2 in float64: mean and var are off by ~M u64 D^2 at most, D = max |x - mean| over the
    channel (|d| <= 2D), M values per channel. D^2 <= M var, so the var's relative error
    moves y = (x - mean) invstd w + b by <= M^2 u64 D invstd |w|. Then one rounding to the
    tested dtype: u |result|. An offset of 100 (|mean| >> std) is where a one-pass variance
    without the shift would lose every digit in float32."""
    u = unit_roundoff(dtype)
    x = random_array(seed, shape, dtype) + dtype(offset)
    weight = random_array(seed + 1, shape[1:2], dtype) if affine in ("both", "weight") else None
    bias = random_array(seed + 2, shape[1:2], dtype) if affine in ("both", "bias") else None
    x64, w64, b64 = as64(x), as64(weight), as64(bias)
    count = x.size // shape[1]
    y_exact, mean_exact, var_exact = R.batch_norm_train(x64, w64, b64, eps)

    y, mean, var = K.batch_norm_train(device(x), device(weight), device(bias), eps)
    spread = _channel_reduce(np.abs(x64 - _per_channel(mean_exact, x.ndim)), np.max)
    internal = 16 * count * U64
    assert_within(mean, mean_exact, 2 * u * np.abs(mean_exact) + internal * (spread + np.abs(
        mean_exact)), "batch_norm_train mean")
    assert_within(var, var_exact, 2 * u * var_exact + internal * spread**2,
                  "batch_norm_train var")

    invstd = 1 / np.sqrt(var_exact + eps)
    scale = invstd * (1.0 if w64 is None else np.abs(w64))
    shift_term = 0.0 if b64 is None else _per_channel(np.abs(b64), x.ndim)
    bound = 4 * u * (
        np.abs(y_exact) + shift_term
        + _per_channel(scale, x.ndim) * (np.abs(x64) + _per_channel(np.abs(mean_exact), x.ndim))
    ) + _per_channel(internal * count * spread * scale, x.ndim)
    assert_within(y, y_exact, bound, "batch_norm_train y")


@given(shape=channel_shapes(min_per_channel=1, max_size=3 * SCALE), dtype=DTYPES,
       seed=seeds(), with_weight=st.booleans())
def test_batch_norm_eval_and_backward_match_reference(shape, dtype, seed, with_weight):
    """Error analysis of the backward, gx = w invstd (gy - mean(gy) - xhat mean(gy xhat)):
    float64 sums of M terms are off by M u64 times their absolute sums, and the bracket may
    cancel, so the bound scales with |gy| + mean|gy| + A mean(|gy| A), A = (|x| + |mean|)
    invstd >= |xhat|; then one rounding: u |result|."""
    u = unit_roundoff(dtype)
    eps = 1e-5
    x = random_array(seed, shape, dtype)
    gy = random_array(seed + 1, shape, dtype)
    mean = _channel_reduce(x, np.mean).astype(dtype)
    var = _channel_reduce(x, np.var).astype(dtype)
    weight = random_array(seed + 2, shape[1:2], dtype) if with_weight else None
    bias = random_array(seed + 3, shape[1:2], dtype)
    x64, gy64, mean64, var64, w64, b64 = map(as64, (x, gy, mean, var, weight, bias))
    count = x.size // shape[1]
    invstd = 1 / np.sqrt(var64 + eps)
    wscale = invstd * (1.0 if w64 is None else np.abs(w64))
    a_bound = (np.abs(x64) + _per_channel(np.abs(mean64), x.ndim)) * _per_channel(invstd, x.ndim)

    exact = R.batch_norm_eval(x64, mean64, var64, w64, b64, eps)
    y = K.batch_norm_eval(device(x), device(mean), device(var), device(weight), device(bias),
                          eps)
    # float64 arithmetic, one rounding; for float64 inputs a few roundings of each term
    bound = 4 * u * (np.abs(exact) + _per_channel(np.abs(b64), x.ndim)
                     + a_bound * _per_channel(wscale / invstd, x.ndim))
    assert_within(y, exact, bound, "batch_norm_eval")

    gx_exact, gw_exact, gb_exact = R.batch_norm_backward(gy64, x64, w64, mean64, var64, eps)
    gx, gw, gb = K.batch_norm_backward(device(gy), device(x), device(weight), device(mean),
                                       device(var), eps)
    mean_abs_gy = _channel_reduce(np.abs(gy64), np.mean)
    mean_gy_a = _channel_reduce(np.abs(gy64) * a_bound, np.mean)
    internal = 8 * count * U64
    bracket = np.abs(gy64) + _per_channel(mean_abs_gy, x.ndim) + a_bound * _per_channel(
        mean_gy_a, x.ndim)
    bound = 2 * u * np.abs(gx_exact) + (internal + 4 * u) * _per_channel(wscale, x.ndim) * bracket
    assert_within(gx, gx_exact, bound, "batch_norm_backward gx")
    if weight is None:
        assert gw is None and gb is None
        return
    assert_within(gw, gw_exact, 2 * u * np.abs(gw_exact) + (internal + 4 * u) * count
                  * mean_gy_a, "batch_norm_backward gweight")
    assert_within(gb, gb_exact, 2 * u * np.abs(gb_exact) + (internal + 4 * u) * count
                  * mean_abs_gy, "batch_norm_backward gbias")


# ----------------------------------------------------------------------------- optimizers

STEPS = 3


def _run_updates(kernel, arrays: dict, grads: list, hyper: dict):
    """Call the update kernel once per gradient on copies of `arrays` (its keyword arguments
    param and state, None for an unused buffer) and return their values after every step."""
    arrays = {k: device(v) for k, v in arrays.items()}
    adam = kernel in (K.adam_update, R.adam_update)
    history = []
    for step, grad in enumerate(grads, start=1):
        extra = {"step": step} if adam else {}
        kernel(grad=device(grad), **arrays, **extra, **hyper)
        history.append({k: None if v is None else host(v).copy() for k, v in arrays.items()})
    return history


def _assert_updates_match(kernel, reference, arrays, grads, hyper, dtype, what):
    """Run the kernel in `dtype` and the reference in float64 from the same values.

    Error analysis: each step stores param and state rounded (u times their size) and uses
    them in the next step; a stored moment's relative error moves the update by as much
    relative error, and earlier errors carry over. So after t steps the error is bounded by
    ~ (t + 1) u times the sum over steps of |value| + |change| (the float64 run's)."""
    u = unit_roundoff(dtype)
    start = {k: None if v is None else v.astype(dtype) for k, v in arrays.items()}
    grads = [g.astype(dtype) for g in grads]
    got = _run_updates(kernel, start, grads, hyper)
    exact = _run_updates(reference, {k: as64(v) for k, v in start.items()},
                         [as64(g) for g in grads], hyper)
    for name, initial in start.items():
        if initial is None:
            continue
        scale = np.zeros(initial.shape)
        previous = as64(initial)
        for step, (mine, truth) in enumerate(zip(got, exact), start=1):
            scale += np.abs(truth[name]) + np.abs(truth[name] - previous)
            previous = truth[name]
            bound = 8 * (step + 1) * u * scale
            assert_within(mine[name], truth[name], bound, f"{what} {name} after step {step}")


@given(size=st.integers(1, 40 * SCALE), dtype=DTYPES, seed=seeds(),
       lr=st.floats(1e-4, 0.1), beta1=st.floats(0.0, 0.99), beta2=st.floats(0.5, 0.9999),
       eps=st.sampled_from([1e-8, 1e-6]), weight_decay=st.sampled_from([0.0, 0.01, 0.1]),
       decoupled=st.booleans())
def test_adam_update_matches_reference(size, dtype, seed, lr, beta1, beta2, eps,
                                       weight_decay, decoupled):
    rng = np.random.default_rng(seed)
    arrays = {"param": rng.standard_normal(size), "exp_avg": np.zeros(size),
              "exp_avg_sq": np.zeros(size)}
    grads = [_gradient(rng, size) for _ in range(STEPS)]
    hyper = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                 decoupled=decoupled)
    _assert_updates_match(K.adam_update, R.adam_update, arrays, grads, hyper, dtype, "adam")


@given(size=st.integers(1, 40 * SCALE), dtype=DTYPES, seed=seeds(),
       lr=st.floats(1e-4, 0.1), alpha=st.floats(0.5, 0.999),
       weight_decay=st.sampled_from([0.0, 0.1]), momentum=st.sampled_from([0.0, 0.9]))
def test_rmsprop_update_matches_reference(size, dtype, seed, lr, alpha, weight_decay,
                                          momentum):
    rng = np.random.default_rng(seed)
    arrays = {"param": rng.standard_normal(size), "square_avg": np.zeros(size),
              "momentum_buffer": np.zeros(size) if momentum else None}
    grads = [_gradient(rng, size) for _ in range(STEPS)]
    hyper = dict(lr=lr, alpha=alpha, eps=1e-8, weight_decay=weight_decay, momentum=momentum)
    _assert_updates_match(K.rmsprop_update, R.rmsprop_update, arrays, grads, hyper, dtype,
                          "rmsprop")


@given(size=st.integers(1, 40 * SCALE), dtype=DTYPES, seed=seeds(),
       lr=st.floats(1e-4, 0.5), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       weight_decay=st.sampled_from([0.0, 0.1]), nesterov=st.booleans())
def test_sgd_update_matches_reference(size, dtype, seed, lr, momentum, weight_decay, nesterov):
    rng = np.random.default_rng(seed)
    arrays = {"param": rng.standard_normal(size),
              "momentum_buffer": np.zeros(size) if momentum else None}
    grads = [_gradient(rng, size) for _ in range(STEPS)]
    hyper = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    _assert_updates_match(K.sgd_update, R.sgd_update, arrays, grads, hyper, dtype, "sgd")


def _gradient(rng, size):
    """Gradients of size ~1, none within 1e-3 of zero (so g^2 never underflows in float32
    and RMSprop's sqrt(v) stays far above eps, where its error analysis holds)."""
    g = rng.standard_normal(size)
    return np.where(np.abs(g) < 1e-3, 1e-3, g)


def test_updates_work_in_place_on_a_slice_of_a_flat_buffer():
    """The optimizer falls back to per-parameter calls on slices of its flat arrays."""
    flat = device(np.ones(10, np.float32))
    grad = device(np.full(4, 2.0, np.float32))
    K.sgd_update(flat[3:7], grad, None, lr=0.5, momentum=0.0, weight_decay=0.0,
                 nesterov=False)
    np.testing.assert_array_equal(host(flat), [1, 1, 1, 0, 0, 0, 0, 1, 1, 1])


def test_updates_reject_arrays_that_are_not_flat():
    param = device(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"adam_update: every array must be flat.*param"):
        K.adam_update(param, param, param, param, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match="sgd_update: momentum != 0 needs a momentum_buffer"):
        K.sgd_update(param.reshape(-1), param.reshape(-1), None, 0.1, 0.9, 0.0, False)


# ----------------------------------------------------------------------------- launching


def test_grids_cover_the_work_and_respect_the_caps():
    assert _launch.elementwise_grid(0) == (1, _launch.THREADS)
    assert _launch.elementwise_grid(_launch.THREADS + 1) == (2, _launch.THREADS)
    assert _launch.elementwise_grid(10**12) == (_launch.MAX_BLOCKS, _launch.THREADS)
    assert _launch.per_channel_grid(7) == (7, _launch.THREADS)
    # the tree reductions need a power of two that fits the shared buffers
    assert _launch.THREADS & (_launch.THREADS - 1) == 0 and _launch.THREADS <= _launch.MAX_THREADS


def test_empty_arrays_launch_nothing():
    x = device(np.zeros((0, 3), np.float32))
    assert host(K.activation(x, "tanh", 0.0)).shape == (0, 3)
    assert host(K.bias_activation(x, device(np.zeros(3, np.float32)), "relu")).shape == (0, 3)


def test_kernels_say_clearly_when_no_gpu_and_no_simulator(monkeypatch):
    monkeypatch.setattr(_launch, "_usable", [False])
    x = device(np.zeros(3, np.float32))
    with pytest.raises(RuntimeError, match="bce_with_logits: Numba finds no usable CUDA GPU.*"
                                           "NUMBA_ENABLE_CUDASIM=1"):
        K.bce_with_logits(x, x)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture
def simulated_cuda_device(monkeypatch):
    """The device "cuda" as it is on a GPU, but with NumPy arrays and the kernels running on
    the simulator: the reference kernel set, overridden name by name by kernels/cuda."""
    if not SIMULATED:
        pytest.skip("on a real GPU tests/test_cuda_device.py runs the real cuda device")
    from types import SimpleNamespace

    from minigan import backend

    kernels = {name: getattr(R, name) for name in R.__all__}
    kernels.update({name: getattr(K, name) for name in K.__all__})
    device = backend.Backend("cuda", np, SimpleNamespace(**kernels))
    monkeypatch.setitem(backend._cache, "cuda", device)
    return device


def test_gan_training_steps_on_simulated_cuda_match_the_numpy_device(simulated_cuda_device):
    """Every kernel of the cuda set inside real training: a DCGAN's D and G steps with batch
    norm, leaky relu, tanh, BCE and Adam. Tolerances as in tests/test_cuda_device.py."""
    from tests.test_cuda_device import (
        assert_arrays_close,
        assert_gradients_close,
        gan_training_steps,
    )

    config = dict(image_size=16, width=4, batch=4, z_dim=8, steps=2)
    on_cuda = gan_training_steps("cuda", np.float64, **config)
    on_numpy = gan_training_steps("numpy", np.float64, **config)
    np.testing.assert_allclose(on_cuda["losses"], on_numpy["losses"], rtol=1e-10)
    assert_gradients_close(on_cuda["gradients"], on_numpy["gradients"], relative=1e-10)
    assert_arrays_close(on_cuda["state"], on_numpy["state"], "state", rtol=0, atol=1e-9)

    on_cuda = gan_training_steps("cuda", np.float32, **dict(config, steps=1))
    on_numpy = gan_training_steps("numpy", np.float32, **dict(config, steps=1))
    np.testing.assert_allclose(on_cuda["losses"], on_numpy["losses"], rtol=1e-5)
    assert_gradients_close(on_cuda["gradients"], on_numpy["gradients"], relative=1e-4)
