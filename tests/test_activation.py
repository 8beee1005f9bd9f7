"""Activation kernels (reference) and ops: values, stability at +-1000, gradients of first
and second order, the kernel fast path against the composed backward, and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan as mg
import minigan.functional as F
from minigan.kernels import reference as K
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import arrays, channel_shapes, random_array, seeds

SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=3)
SLOPES = st.floats(0.0, 0.5)
KINDS = ["relu", "leaky_relu", "tanh", "sigmoid", "none"]


def expected_activation(x, kind, slope):
    """The textbook formulas, in float64 (|x| <= 2 here, so the naive sigmoid is fine)."""
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "leaky_relu":
        return np.where(x > 0, x, slope * x)
    if kind == "tanh":
        return np.tanh(x)
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-x))
    return x


def expected_derivative(x, kind, slope):
    if kind == "relu":
        return (x > 0).astype(x.dtype)
    if kind == "leaky_relu":
        return np.where(x > 0, 1.0, slope)
    if kind == "tanh":
        return 1 - np.tanh(x) ** 2
    if kind == "sigmoid":
        s = 1 / (1 + np.exp(-x))
        return s * (1 - s)
    return np.ones_like(x)


def t64(array, requires_grad=False):
    return mg.tensor(array, dtype=np.float64, requires_grad=requires_grad, device="numpy")


# ----------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("kind", KINDS)
@given(shape=SHAPES, seed=seeds(), slope=SLOPES)
def test_activation_kernel_matches_formula(kind, shape, seed, slope):
    x = random_array(seed, shape)
    y = K.activation(x, kind, slope)
    # float64 formulas of a few operations: agreement to a few ulps of O(1) values
    np.testing.assert_allclose(y, expected_activation(x, kind, slope), rtol=1e-12, atol=1e-15)
    gy = random_array(seed + 1, shape)
    gx = K.activation_grad(gy, y, kind, slope)
    np.testing.assert_allclose(gx, gy * expected_derivative(x, kind, slope), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_kernels_keep_float32(kind):
    x = random_array(0, (2, 3, 2, 2), np.float32)
    bias = random_array(1, (3,), np.float32)
    y = K.activation(x, kind, 0.2)
    assert y.dtype == np.float32
    assert K.activation_grad(x, y, kind, 0.2).dtype == np.float32
    assert K.bias_activation(x, bias, kind, 0.2).dtype == np.float32
    assert K.softplus(x).dtype == np.float32 and K.log_sigmoid(x).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_forms_at_plus_minus_1000(dtype):
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        sigmoid = K.activation(x, "sigmoid", 0.0)
        softplus = K.softplus(x)
        log_sigmoid = K.log_sigmoid(x)
    # the exact limits: exp(-1000) underflows to 0, so these hold exactly in any precision
    assert sigmoid[0] == 0 and sigmoid[-1] == 1 and sigmoid[2] == 0.5
    assert softplus[0] == 0 and softplus[-1] == 1000
    assert log_sigmoid[0] == -1000 and log_sigmoid[-1] == 0
    # at +-30, log1p(exp(-30)) = 9.4e-14 is below float32 resolution of 30 but visible in
    # float64: compare with the series log1p(e) = e - e^2/2 to relative 1e-6 (float32 eps)
    e = np.exp(-30.0)
    np.testing.assert_allclose(softplus[[1, 3]], [e - e * e / 2, 30 + e - e * e / 2], rtol=1e-6)
    np.testing.assert_allclose(log_sigmoid[[1, 3]], [-30 - e, -e], rtol=1e-6)


@given(shape=channel_shapes(min_per_channel=1), seed=seeds(), slope=SLOPES,
       kind=st.sampled_from(KINDS))
def test_bias_activation_kernel(shape, seed, slope, kind):
    x, bias = random_array(seed, shape), random_array(seed + 1, shape[1:2])
    per_channel = bias.reshape((1, -1) + (1,) * (len(shape) - 2))
    np.testing.assert_allclose(
        K.bias_activation(x, bias, kind, slope), K.activation(x + per_channel, kind, slope),
        rtol=0, atol=0,
    )


# ----------------------------------------------------------------------------- ops: values


@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
def test_softplus_and_log_sigmoid_values(beta):
    x = random_array(3, (4, 5))
    np.testing.assert_allclose(F.softplus(t64(x), beta=beta).numpy(),
                               np.log1p(np.exp(beta * x)) / beta, rtol=1e-12)
    np.testing.assert_allclose(F.log_sigmoid(t64(x)).numpy(), -np.log1p(np.exp(-x)), rtol=1e-12)
    assert F.logsigmoid is F.log_sigmoid


def test_ops_keep_float32():
    x = mg.tensor(random_array(0, (2, 3), np.float32), requires_grad=True, device="numpy")
    for op in (F.relu, F.leaky_relu, F.tanh, F.sigmoid, F.softplus, F.log_sigmoid):
        y = op(x)
        assert y.dtype == np.float32
        assert mg.grad(y.sum(), x)[0].dtype == np.float32


# ----------------------------------------------------------------------------- gradients

OPS = {
    "relu": F.relu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "softplus": F.softplus,
    "log_sigmoid": F.log_sigmoid,
}


@pytest.mark.parametrize("name", list(OPS))
@given(data=st.data())
def test_gradients(name, data):
    shape = data.draw(SHAPES)
    x = data.draw(arrays(shape, away_from_zero=0.01))  # no finite-difference step over a kink
    check_gradients(OPS[name], x)


@given(shape=SHAPES, slope=SLOPES, data=st.data())
def test_leaky_relu_gradient(shape, slope, data):
    x = data.draw(arrays(shape, away_from_zero=0.01))
    check_gradients(lambda t: F.leaky_relu(t, slope), x)


def _bias_act_inputs(data, shape):
    """x and bias with x + bias at least 0.01 away from 0 (relu's kink)."""
    pre = data.draw(arrays(shape, away_from_zero=0.01))
    bias = data.draw(arrays(shape[1:2]))
    return pre - bias.reshape((1, -1) + (1,) * (len(shape) - 2)), bias


@pytest.mark.parametrize("kind", KINDS)
@given(shape=channel_shapes(min_per_channel=1), slope=SLOPES, data=st.data())
def test_bias_act_gradient(kind, shape, slope, data):
    x, bias = _bias_act_inputs(data, shape)
    check_gradients(lambda t, b: F.bias_act(t, b, kind, slope), x, bias)


@settings(max_examples=8)
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid", "softplus",
                                  "log_sigmoid"])
@given(data=st.data())
def test_double_gradients(name, data):
    x = data.draw(arrays(data.draw(SHAPES), away_from_zero=0.01))
    if name in ("relu", "leaky_relu"):
        # act(x)^2 so that the second derivative (2 act'^2) is not zero: it tests that the
        # mask built in backward carries the gradient of the incoming gradient
        op = F.relu if name == "relu" else (lambda t: F.leaky_relu(t, 0.2))
        check_double_gradients(lambda t: op(t) * op(t), x)
    else:
        check_double_gradients(OPS[name], x)


@settings(max_examples=8)
@pytest.mark.parametrize("kind", ["leaky_relu", "tanh", "sigmoid"])
@given(shape=channel_shapes(min_per_channel=1, max_size=2), data=st.data())
def test_bias_act_double_gradients(kind, shape, data):
    x, bias = _bias_act_inputs(data, shape)
    check_double_gradients(lambda t, b: F.bias_act(t, b, kind, 0.2) ** 2, x, bias)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_equals_composed_backward(kind):
    """First-order backward (no graph) calls K.activation_grad; with create_graph it is the
    Tensor-op composition. The same formula both ways: equal to rounding (float64)."""
    x = t64(random_array(5, (3, 4, 2, 2)), requires_grad=True)
    bias = t64(random_array(6, (4,)), requires_grad=True)
    weights = t64(random_array(7, (3, 4, 2, 2)))
    for fn in (lambda: F.bias_act(x, None, kind, 0.1), lambda: F.bias_act(x, bias, kind, 0.1)):
        fast = mg.grad((fn() * weights).sum(), [x, bias], allow_unused=True)
        composed = mg.grad((fn() * weights).sum(), [x, bias], create_graph=True, allow_unused=True)
        for a, b in zip(fast, composed):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-14, atol=1e-15)


# ----------------------------------------------------------------------------- errors


def test_errors_name_op_and_shapes():
    x = mg.zeros(2, 3, 4, 4, device="numpy")
    with pytest.raises(ValueError, match=r"bias_act: input has 3 channels.*\(2, 3, 4, 4\).*\(5,\)"):
        F.bias_act(x, mg.zeros(5, device="numpy"), "relu")
    with pytest.raises(ValueError, match="bias_act: unknown activation kind 'gelu'"):
        F.bias_act(x, None, "gelu")
    with pytest.raises(ValueError, match="leaky_relu: negative_slope must be >= 0"):
        F.leaky_relu(x, -0.1)
    with pytest.raises(ValueError, match="activation: unknown activation kind"):
        K.activation(x.array, "swish", 0.0)
