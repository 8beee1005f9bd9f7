"""pad, nearest upsampling (interpolate) and dropout on the reference kernels: gradients
and gradients of gradients against finite differences, PyTorch as an outside oracle
(when installed), dropout's mask statistics, and error messages."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array, seeds

DEVICE = "numpy"


@st.composite
def pad_configs(draw, max_size=4):
    """(input shape, pad, mode): 2-D to 4-D input, 4 or 2 pads; reflect pads stay below
    the size they mirror."""
    lead = tuple(draw(st.lists(st.integers(1, 2), min_size=0, max_size=2)))
    shape = lead + (draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))
    mode = draw(st.sampled_from(["constant", "reflect"]))
    limit_h = shape[-2] - 1 if mode == "reflect" else 3
    limit_w = shape[-1] - 1 if mode == "reflect" else 3
    pads = (draw(st.integers(0, limit_w)), draw(st.integers(0, limit_w)),
            draw(st.integers(0, limit_h)), draw(st.integers(0, limit_h)))
    return shape, pads[: draw(st.sampled_from([2, 4]))], mode


def tensor(array, **kwargs):
    return mg.tensor(array, device=DEVICE, **kwargs)


# ----------------------------------------------------------------------------- pad


@given(pad_configs(), seeds(), st.sampled_from([0.0, -1.5]))
def test_pad_gradients_and_double_gradients(config, seed, value):
    shape, pads, mode = config
    value = value if mode == "constant" else 0.0
    x = random_array(seed, shape)
    check_gradients(lambda t: F.pad(t, pads, mode, value), x, device=DEVICE)
    # cubed, so the gradient's graph runs through Pad2dGrad and its backward (Pad2d)
    check_double_gradients(lambda t: F.pad(t, pads, mode, value) ** 3, x, device=DEVICE)


@settings(max_examples=10)
@given(pad_configs(max_size=5), seeds())
def test_pad_matches_torch(config, seed):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    shape, pads, mode = config
    # PyTorch reflects 2 pads only on 2-D or 3-D input, 4 pads only on 3-D or 4-D input
    assume(mode == "constant" or len(shape) in ((2, 3) if len(pads) == 2 else (3, 4)))
    x = random_array(seed, shape)
    mine, theirs = tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = F.pad(mine, pads, mode), torch.nn.functional.pad(theirs, pads, mode)
    weights = random_array(seed + 1, tuple(expected.shape))
    (out * tensor(weights)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())  # copies only
    # each input gradient sums at most 4 weights (itself and up to 3 mirror images)
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), atol=1e-14)


def test_reflect_pad_mirrors_without_repeating_the_edge():
    row = tensor(np.arange(4.0).reshape(1, 1, 1, 4))
    out = F.pad(row, (2, 3, 0, 0), mode="reflect")
    np.testing.assert_array_equal(out.numpy()[0, 0, 0], [2, 1, 0, 1, 2, 3, 2, 1, 0])
    out = F.pad(row, (1, 0), value=7.0)
    np.testing.assert_array_equal(out.numpy()[0, 0, 0], [7, 0, 1, 2, 3])


# ----------------------------------------------------------------------------- upsample


@given(seeds(), st.integers(1, 3), st.sampled_from([(1, 1, 2, 3), (2, 2, 1, 2)]))
def test_upsample_gradients_and_double_gradients(seed, scale, shape):
    x = random_array(seed, shape)
    check_gradients(lambda t: F.upsample_nearest2d(t, scale), x, device=DEVICE)
    check_double_gradients(lambda t: F.upsample_nearest2d(t, scale) ** 3, x, device=DEVICE)


def test_interpolate_matches_torch_and_accepts_size():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x = random_array(0, (2, 3, 3, 4))
    expected = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=2).numpy()
    np.testing.assert_array_equal(F.interpolate(tensor(x), scale_factor=2).numpy(), expected)
    np.testing.assert_array_equal(F.interpolate(tensor(x), size=(6, 8)).numpy(), expected)
    np.testing.assert_array_equal(F.interpolate(tensor(x), scale_factor=2.0).numpy(), expected)


def test_upsample_pixels_become_blocks():
    x = tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.kron(x.numpy()[0, 0], np.ones((3, 3)))
    np.testing.assert_array_equal(F.upsample_nearest2d(x, 3).numpy()[0, 0], expected)


# ----------------------------------------------------------------------------- dropout


@given(seeds(), st.sampled_from([0.2, 0.5, 0.9]))
def test_dropout_gradients_with_a_fixed_mask(seed, p):
    x = random_array(seed, (3, 4))
    # a new generator with the same seed on every call: every evaluation uses one mask
    check_gradients(lambda t: F.dropout(t, p, generator=mg.Generator(seed)), x, device=DEVICE)


def test_dropout_mask_statistics():
    p, n = 0.3, 40_000
    out = F.dropout(mg.ones(n, device=DEVICE), p, generator=mg.Generator(1)).numpy()
    kept = out != 0
    # survivors are scaled by 1/(1-p), so the expectation is unchanged
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)  # float32 rounding
    # the dropped fraction is Binomial(n, p)/n: std sqrt(p(1-p)/n) = 0.0023; allow 5 std
    assert abs((~kept).mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert out.dtype == np.float32


def test_dropout_is_the_identity_in_eval_mode_or_at_p_zero():
    x = tensor(random_array(0, (2, 3)))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_same_seed_same_mask():
    x = mg.ones(50, device=DEVICE)
    first = F.dropout(x, 0.5, generator=mg.Generator(3)).numpy()
    second = F.dropout(x, 0.5, generator=mg.Generator(3)).numpy()
    third = F.dropout(x, 0.5, generator=mg.Generator(4)).numpy()
    np.testing.assert_array_equal(first, second)
    assert (first != third).any()


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, message", [
    (lambda x: F.pad(x, (3, 0, 0, 0), "reflect"),
     r"pad: reflect padding \(3, 0, 0, 0\) must be smaller .* \(input \(1, 1, 3, 3\)\)"),
    (lambda x: F.pad(x, (1, 1, 1, 1), "wrap"), r"pad: mode 'wrap' is not supported"),
    (lambda x: F.pad(x, (1, 1, 1)), r"pad: pad must be 2 or 4 ints"),
    (lambda x: F.pad(x, (-1, 0)), r"pad: negative padding"),
    (lambda x: F.interpolate(x, scale_factor=0), r"interpolate: scale_factor must be positive"),
    (lambda x: F.interpolate(x, size=(0, 9)), r"interpolate: size must be positive ints"),
    (lambda x: F.interpolate(x, scale_factor=0.2), r"interpolate: scale_factor 0.2 leaves no"),
    (lambda x: F.interpolate(x, scale_factor=2, mode="area"), r"interpolate: mode 'area'"),
    (lambda x: F.upsample_nearest2d(x[0], 2), r"upsample_nearest2d: input must be 4-D"),
    (lambda x: F.dropout(x, 1.0), r"dropout: p must be in \[0, 1\), got 1.0"),
    (lambda x: F.dropout(x, -0.1), r"dropout: p must be in \[0, 1\)"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(mg.zeros(1, 1, 3, 3, device=DEVICE))
