"""Maxout (kernels, op, layer): values against the formula, the gather/scatter adjoint pair,
gradients of first and second order in float64, and PyTorch's formulation as an oracle."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan as mg
import minigan.functional as F
from minigan import nn
from minigan.kernels import reference as K
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array, seeds


@st.composite
def maxout_inputs(draw, max_batch=3, max_channels=3, max_pieces=4):
    """(x, pieces): x (N, C * pieces) of distinct multiples of 0.01, so every group has one
    winner that a finite-difference step (1e-6) cannot change."""
    n = draw(st.integers(1, max_batch))
    channels = draw(st.integers(1, max_channels))
    pieces = draw(st.integers(1, max_pieces))
    steps = hnp.arrays(np.int64, (n, channels * pieces), elements=st.integers(-200, 200),
                       unique=True)
    return draw(steps) * 0.01, pieces


def _expected(x, pieces):
    grouped = x.reshape(x.shape[0], -1, pieces)
    return grouped.max(axis=2), grouped.argmax(axis=2)


# ----------------------------------------------------------------------------- kernels


@settings(max_examples=30)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5)), seed=seeds(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_maxout_kernel_matches_formula(shape, seed, dtype):
    n, channels, pieces = shape
    x = random_array(seed, (n, channels * pieces), dtype)
    y, index = K.maxout(x, pieces)
    expected_y, expected_index = _expected(x, pieces)
    assert y.dtype == dtype and y.shape == (n, channels)
    np.testing.assert_array_equal(y, expected_y)  # a selection: exact
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_array_equal(K.maxout_gather(x, index), y)


def test_maxout_ties_go_to_the_first_piece():
    x = np.array([[1.0, 3.0, 3.0, 0.0, 0.0, 0.0]])
    y, index = K.maxout(x, 3)
    np.testing.assert_array_equal(y, [[3.0, 0.0]])
    np.testing.assert_array_equal(index, [[1, 0]])  # numpy's argmax and torch's max agree


@settings(max_examples=30)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5)), seed=seeds())
def test_scatter_is_the_adjoint_of_gather(shape, seed):
    n, channels, pieces = shape
    x = random_array(seed, (n, channels * pieces))
    g = random_array(seed + 1, (n, channels))
    _, index = K.maxout(random_array(seed + 2, (n, channels * pieces)), pieces)
    scattered = K.maxout_scatter(g, index, pieces)
    # <gather(x), g> = <x, scatter(g)>: the same products summed in another order, so equal
    # to float64 rounding of a sum of n * channels terms of size ~1
    np.testing.assert_allclose((K.maxout_gather(x, index) * g).sum(), (x * scattered).sum(),
                               rtol=1e-12, atol=1e-12)
    # each group holds its g at one place and zeros elsewhere
    np.testing.assert_array_equal(scattered.reshape(n, channels, pieces).sum(axis=2), g)
    assert ((scattered != 0).reshape(n, channels, pieces).sum(axis=2) <= 1).all()


# ----------------------------------------------------------------------------- op gradients


@settings(max_examples=25)
@given(inputs=maxout_inputs())
def test_maxout_gradient(inputs):
    x, pieces = inputs
    check_gradients(lambda t: F.maxout(t, pieces), x)


@settings(max_examples=10)
@given(inputs=maxout_inputs())
def test_maxout_double_gradient(inputs):
    x, pieces = inputs
    # maxout(x)^2: its second derivative 2 [winner] is not zero, so the scatter built in
    # backward must carry the gradient of the incoming gradient
    check_double_gradients(lambda t: F.maxout(t, pieces) ** 2, x)


def _separated_layer_inputs(pieces=3):
    """x, weight, bias of a small Maxout layer whose pre-activations have a gap of at least
    1e-3 between each group's top two pieces (a finite-difference step moves them ~1e-6)."""
    for seed in range(100):
        x = random_array(seed, (3, 4))
        w = random_array(seed + 1, (2 * pieces, 4))
        b = random_array(seed + 2, (2 * pieces,))
        top2 = np.sort((x @ w.T + b).reshape(3, 2, pieces), axis=2)[:, :, -2:]
        if (top2[:, :, 1] - top2[:, :, 0]).min() > 1e-3:
            return x, w, b
    raise AssertionError("no separated inputs among 100 seeds")


def test_layer_gradients_and_double_gradients():
    x, w, b = _separated_layer_inputs()

    def layer(xt, wt, bt):
        return F.maxout(F.linear(xt, wt, bt), 3)

    check_gradients(layer, x, w, b)
    check_double_gradients(lambda xt, wt, bt: layer(xt, wt, bt) ** 2, x, w, b)


def test_gradient_penalty_through_maxout():
    """What WGAN-GP and R1 do with a maxout critic: d/dw of |d D(x) / dx|^2."""
    x, w, b = _separated_layer_inputs()

    def penalty(wt, bt):
        xt = mg.tensor(x, dtype=np.float64, requires_grad=True, device="numpy")
        with mg.enable_grad():
            out = F.maxout(F.linear(xt, wt, bt), 3)
            (gx,) = mg.grad(out.sum(), [xt], create_graph=True)
        return (gx * gx).sum(axis=1)

    check_gradients(penalty, w, b)


def test_maxout_op_errors():
    x = mg.tensor(np.zeros((2, 6), np.float32), device="numpy")
    with pytest.raises(ValueError, match="maxout: input must be"):
        F.maxout(x, 4)
    with pytest.raises(ValueError, match="pieces must be a positive int"):
        F.maxout(x, 0)


# ----------------------------------------------------------------------------- layer


def test_maxout_layer_shapes_state_and_errors():
    layer = nn.Maxout(3, 4, 5, generator=mg.Generator(0))
    assert layer.weight.shape == (20, 3) and layer.bias.shape == (20,)
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert repr(layer) == "Maxout(in_features=3, out_features=4, pieces=5, bias=True)"
    out = layer(mg.randn(7, 3, generator=mg.Generator(1)))
    assert out.shape == (7, 4) and out.dtype == np.float32
    assert nn.Maxout(3, 4, 2, bias=False).bias is None
    with pytest.raises(ValueError, match=r"Maxout: input must be \(N, 3\)"):
        layer(mg.randn(7, 2))
    with pytest.raises(ValueError, match="must be >= 1"):
        nn.Maxout(3, 4, 0)


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_maxout_layer_matches_torch(device):
    torch = pytest.importorskip("torch", reason="PyTorch is the outside oracle; not installed")
    ours = nn.Maxout(6, 4, 5, generator=mg.Generator(0)).to(device)
    weight, bias = ours.weight.numpy().copy(), ours.bias.numpy().copy()
    x = random_array(3, (8, 6), np.float32)
    g = random_array(4, (8, 4), np.float32)

    xt = mg.tensor(x, requires_grad=True, device=device)
    out = ours(xt)
    (out * mg.tensor(g, device=device)).sum().backward()

    tw = torch.tensor(weight, requires_grad=True)
    tb = torch.tensor(bias, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.linear(tx, tw, tb).view(8, 4, 5).amax(dim=-1)
    (theirs * torch.tensor(g)).sum().backward()
    # float32 products of 6 terms: rounding ~1e-7 relative; the selection itself is exact
    # unless two pieces tie within rounding, which these random weights do not
    np.testing.assert_allclose(out.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.weight.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.bias.grad.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-6)
