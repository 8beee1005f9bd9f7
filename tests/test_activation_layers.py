"""ELU, GELU (exact and tanh), SiLU, Softplus (beta, threshold), PReLU and Dropout2d: the erf
kernel, values against textbook formulas, gradients and gradients of gradients by finite
differences, PyTorch as an outside oracle (functional forms and layers), errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan as mg
import minigan.functional as F
import minigan.nn as nn
from minigan.kernels import reference as K
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import DTYPES, LAYOUTS, arrays, in_layout, random_array, seeds
from tests.torch_compare import compare_with_torch, devices, torch_or_skip

try:
    from tests.test_cpu_kernels import parallel_from
except ImportError:  # no Numba: the cpu kernel test below is skipped
    parallel_from = None

DEVICE = "numpy"
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=3)


def t64(array, requires_grad=False):
    return mg.tensor(array, dtype=np.float64, requires_grad=requires_grad, device=DEVICE)


def normal_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))


OPS = {
    # name: (op, textbook formula in float64)
    "elu": (lambda t: F.elu(t, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    "gelu": (F.gelu, lambda x: x * normal_cdf(x)),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    "silu": (F.silu, lambda x: x / (1 + np.exp(-x))),
    "softplus_beta": (lambda t: F.softplus(t, beta=2.0, threshold=3.0),
                      lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2)),
    "prelu": (lambda t: F.prelu(t, t64([0.25])), lambda x: np.where(x > 0, x, 0.25 * x)),
}


# ----------------------------------------------------------------------------- values


def test_erf_kernel_is_math_erf():
    x = np.linspace(-6, 6, 101)
    np.testing.assert_array_equal(K.erf(x), [math.erf(v) for v in x])
    assert K.erf(x.astype(np.float32)).dtype == np.float32
    assert K.erf(np.float64(0.5)).shape == ()


@pytest.mark.skipif("cpu" not in mg.available_devices(), reason="Numba is not installed")
@given(st.sampled_from([(5, 7), (2, 3, 2, 3), (), (0, 2)]), seeds(), DTYPES, LAYOUTS,
       st.booleans())
def test_erf_cpu_kernel_matches_reference(shape, seed, dtype, layout, parallel):
    from minigan.kernels import cpu

    x = in_layout(random_array(seed, shape, dtype, scale=2.0), layout)
    with parallel_from(1 if parallel else 1 << 62):
        y = cpu.erf(x)
    assert y.dtype == dtype and y.shape == x.shape
    # libm's erf (float64) is within an ulp of correctly rounded and erff (float32) within
    # two; the reference rounds math.erf's float64 result: allow 2 ulps of the result
    spacing = np.spacing(np.abs(K.erf(x))).astype(np.float64)
    assert np.all(np.abs(y.astype(np.float64) - K.erf(x)) <= 2 * spacing)


@pytest.mark.parametrize("name", list(OPS))
@given(shape=SHAPES, seed=seeds())
def test_values_match_formulas(name, shape, seed):
    op, formula = OPS[name]
    x = random_array(seed, shape, scale=2.0)
    # float64 compositions of a few ops: agreement to ~1e-15 relative
    np.testing.assert_allclose(op(t64(x)).numpy(), formula(x), rtol=1e-12, atol=1e-14)


def test_large_inputs_stay_finite():
    x = t64(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
    with np.errstate(over="raise", invalid="raise"):
        np.testing.assert_array_equal(F.elu(x).numpy()[[0, 2, 4]], [-1.0, 0.0, 1000.0])
        np.testing.assert_array_equal(F.gelu(x).numpy()[[0, 2, 4]], [0.0, 0.0, 1000.0])
        np.testing.assert_array_equal(F.softplus(x).numpy()[[0, 4]], [0.0, 1000.0])
        np.testing.assert_array_equal(F.silu(x).numpy()[[0, 4]], [0.0, 1000.0])


def test_softplus_threshold_switches_to_identity():
    x = t64(np.array([4.9, 5.1]))
    out = F.softplus(x, beta=1.0, threshold=5.0).numpy()
    assert out[0] == np.log1p(np.exp(4.9)) and out[1] == 5.1


def test_prelu_per_channel():
    x = random_array(1, (2, 3, 2, 2))
    slopes = np.array([0.1, 0.2, 0.3])
    expected = np.where(x > 0, x, x * slopes.reshape(1, 3, 1, 1))
    np.testing.assert_allclose(F.prelu(t64(x), t64(slopes)).numpy(), expected, rtol=1e-15)


def test_dropout2d_zeroes_whole_channels():
    p, n, c = 0.3, 400, 50
    x = mg.ones(n, c, 2, 3, device=DEVICE)
    out = F.dropout2d(x, p, generator=mg.Generator(3)).numpy()
    per_channel = out.reshape(n, c, -1)
    # each channel of each sample is all zero or all 1/(1-p)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))
    np.testing.assert_allclose(per_channel[per_channel != 0], 1 / (1 - p), rtol=1e-6)
    dropped = (per_channel[:, :, 0] == 0).mean()
    # Binomial(n c, p) / (n c): std sqrt(p (1 - p) / 20000) = 0.0032; allow 5 std
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / (n * c))
    assert F.dropout2d(x, p, training=False) is x
    layer = nn.Dropout2d(p, generator=mg.Generator(3)).eval()
    assert layer(x) is x


# ----------------------------------------------------------------------------- gradients


def away_from_threshold(name, x):
    """softplus_beta jumps (by softplus(3)/2 - 1.5 = 0.024) where beta x = threshold, at
    x = 1.5: keep a finite-difference step from crossing it."""
    if name != "softplus_beta":
        return x
    return np.where(np.abs(x - 1.5) < 0.01, 1.6, x)



@pytest.mark.parametrize("name", list(OPS))
@given(data=st.data())
def test_gradients(name, data):
    x = data.draw(arrays(data.draw(SHAPES), away_from_zero=0.01))  # elu, prelu: kink at 0
    check_gradients(OPS[name][0], away_from_threshold(name, x), device=DEVICE)


@settings(max_examples=6)
@pytest.mark.parametrize("name", list(OPS))
@given(data=st.data())
def test_double_gradients(name, data):
    x = away_from_threshold(name, data.draw(arrays(data.draw(SHAPES), away_from_zero=0.01)))
    op = OPS[name][0]
    # squared, so that piecewise-linear parts (prelu) have a second derivative too
    check_double_gradients(lambda t: op(t) * op(t), x, device=DEVICE)


@given(seed=seeds())
@settings(max_examples=10)
def test_prelu_weight_gradients(seed):
    x = np.where(np.abs(r := random_array(seed, (2, 3, 2))) < 0.01, 0.5, r)
    slopes = random_array(seed + 1, (3,))
    check_gradients(F.prelu, x, slopes, device=DEVICE)
    check_double_gradients(lambda a, w: F.prelu(a, w) ** 2, x, slopes, device=DEVICE)


def test_dropout2d_gradient_with_a_fixed_mask():
    x = random_array(2, (2, 3, 2, 2))
    check_gradients(lambda t: F.dropout2d(t, 0.5, generator=mg.Generator(7)), x, device=DEVICE)


# ----------------------------------------------------------------------------- PyTorch


def _torch_ops(torch):
    tf = torch.nn.functional
    return {
        "elu": lambda t: tf.elu(t, 0.7),
        "gelu": tf.gelu,
        "gelu_tanh": lambda t: tf.gelu(t, approximate="tanh"),
        "silu": tf.silu,
        "softplus_beta": lambda t: tf.softplus(t, beta=2.0, threshold=3.0),
        "prelu": lambda t: tf.prelu(t, torch.tensor([0.25], dtype=torch.float64)),
    }


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", list(OPS))
def test_against_torch(name, device):
    torch = torch_or_skip()
    x = random_array(3, (2, 3, 4), scale=3.0)
    ours = OPS[name][0]
    if name == "prelu":  # the slope on the input's device
        def ours(t):
            return F.prelu(t, mg.tensor([0.25], dtype=np.float64, device=device))
    compare_with_torch(ours, _torch_ops(torch)[name], x, device=device)


def test_prelu_weight_gradient_against_torch():
    torch = torch_or_skip()
    compare_with_torch(F.prelu, torch.nn.functional.prelu, random_array(4, (2, 3, 2, 2)),
                       random_array(5, (3,)))


def test_layers_match_torch():
    torch = torch_or_skip()
    pairs = [
        (nn.ELU(), torch.nn.ELU()), (nn.ELU(0.5, inplace=True), torch.nn.ELU(0.5, inplace=True)),
        (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.SiLU(), torch.nn.SiLU()), (nn.Softplus(2.0, 10.0), torch.nn.Softplus(2.0, 10.0)),
        (nn.PReLU(), torch.nn.PReLU()), (nn.PReLU(3, 0.1), torch.nn.PReLU(3, 0.1)),
        (nn.Dropout2d(0.25), torch.nn.Dropout2d(0.25)),
    ]
    x = random_array(6, (2, 3, 2, 2), np.float32, scale=2.0)
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        ours.to(DEVICE).eval(), theirs.eval()
        state = theirs.state_dict()
        assert list(ours.state_dict()) == list(state)
        for key, value in state.items():
            np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())
        # float32 of a few ops on O(1) values: a few ulps
        np.testing.assert_allclose(ours(mg.tensor(x, device=DEVICE)).numpy(),
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_errors():
    x = mg.zeros(2, 3, 4, 4, device=DEVICE)
    with pytest.raises(ValueError, match="gelu: approximate must be one of"):
        F.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match="GELU: approximate must be one of"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match=r"prelu: weight must have 1 element or one per "
                                         r"channel.*\(2,\).*\(2, 3, 4, 4\)"):
        F.prelu(x, mg.ones(2, device=DEVICE))
    with pytest.raises(ValueError, match=r"dropout2d: expected a 4-D input .* \(3, 4\)"):
        F.dropout2d(mg.zeros(3, 4, device=DEVICE))
    with pytest.raises(ValueError, match=r"Dropout2d: p must be in \[0, 1\)"):
        nn.Dropout2d(1.0)
