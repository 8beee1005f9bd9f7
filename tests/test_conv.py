"""linear, conv2d and conv_transpose2d on the reference kernels: gradients and gradients
of gradients against finite differences, the adjoint identity between conv2d and
conv_transpose2d, PyTorch as an outside oracle (when installed), and error messages."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import conv2d_configs, random_array, seeds

DEVICE = "numpy"
TINY = dict(max_batch=1, max_channels=2, max_size=4, max_kernel=2)  # for second derivatives


def conv_output_hw(x_shape, w_shape, stride, padding, dilation):
    return tuple(
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, k, s, p, d in zip(x_shape[2:], w_shape[2:], stride, padding, dilation)
    )


@st.composite
def conv_transpose2d_configs(draw, **limits):
    """(input shape, weight shape, stride, padding, output_padding, dilation, groups) of a
    valid conv_transpose2d: the transpose of a drawn conv2d, so every size is reachable."""
    x_shape, w_shape, stride, padding, dilation, groups = draw(conv2d_configs(**limits))
    h, w = conv_output_hw(x_shape, w_shape, stride, padding, dilation)
    output_padding = []
    for size, k, s, p, d in zip((h, w), w_shape[2:], stride, padding, dilation):
        # the output needs at least one row; the conv2d input size itself is reachable
        # (with output_padding below the stride), so the range is never empty
        smallest = (size - 1) * s - 2 * p + d * (k - 1) + 1
        output_padding.append(draw(st.integers(max(0, 1 - smallest), max(s, d) - 1)))
    input_shape = (x_shape[0], w_shape[0], h, w)
    return input_shape, w_shape, stride, padding, tuple(output_padding), dilation, groups


def tensor(array, **kwargs):
    return mg.tensor(array, device=DEVICE, **kwargs)


# ----------------------------------------------------------------------------- gradients


@given(conv2d_configs(max_batch=2, max_channels=2, max_size=5, groups=True), seeds(),
       st.booleans())
def test_conv2d_gradients(config, seed, with_bias):
    x_shape, w_shape, stride, padding, dilation, groups = config
    arrays = [random_array(seed, x_shape), random_array(seed + 1, w_shape)]
    if with_bias:
        arrays.append(random_array(seed + 2, (w_shape[0],)))

    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride, padding, dilation, groups)

    check_gradients(fn, *arrays, device=DEVICE)


@given(conv_transpose2d_configs(max_batch=2, max_channels=2, max_size=5, groups=True), seeds(),
       st.booleans())
def test_conv_transpose2d_gradients(config, seed, with_bias):
    x_shape, w_shape, stride, padding, output_padding, dilation, groups = config
    arrays = [random_array(seed, x_shape), random_array(seed + 1, w_shape)]
    if with_bias:
        arrays.append(random_array(seed + 2, (w_shape[1] * groups,)))

    def fn(x, w, b=None):
        return F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)

    check_gradients(fn, *arrays, device=DEVICE)


@given(seeds(), st.sampled_from([(3,), (2, 3), (2, 2, 3)]), st.booleans())
def test_linear_gradients_and_double_gradients(seed, input_shape, with_bias):
    arrays = [random_array(seed, input_shape), random_array(seed + 1, (4, 3))]
    if with_bias:
        arrays.append(random_array(seed + 2, (4,)))
    check_gradients(F.linear, *arrays, device=DEVICE)
    # linear is bilinear in (input, weight): the cube makes its second derivative richer
    check_double_gradients(lambda *t: F.linear(*t) ** 3, *arrays, device=DEVICE)


@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "tanh", "sigmoid", "none"])
@given(seeds(), st.sampled_from([(3,), (2, 3), (2, 2, 3)]), st.booleans())
def test_linear_act_gradients_and_double_gradients(kind, seed, input_shape, with_bias):
    """The fused op nn.Sequential uses for Linear + activation. Draws whose pre-activation
    comes within 1e-3 of relu's kink are skipped (a finite-difference step of 1e-6 must
    not cross it); squaring makes the second derivative of relu and leaky relu non-zero."""
    arrays = [random_array(seed, input_shape), random_array(seed + 1, (4, 3))]
    if with_bias:
        arrays.append(random_array(seed + 2, (4,)))
    pre = arrays[0] @ arrays[1].T + (arrays[2] if with_bias else 0)
    assume(np.abs(pre).min() > 1e-3)

    def fn(*t):
        return F.linear_act(t[0], t[1], t[2] if len(t) > 2 else None, kind, 0.2)

    check_gradients(fn, *arrays, device=DEVICE)
    check_double_gradients(lambda *t: fn(*t) ** 2, *arrays, device=DEVICE)


@settings(max_examples=10)
@given(conv2d_configs(**TINY, groups=True), seeds())
def test_conv2d_double_gradients(config, seed):
    x_shape, w_shape, stride, padding, dilation, groups = config
    x, w = random_array(seed, x_shape), random_array(seed + 1, w_shape)
    # squared so the second derivative is not zero: the gradient's graph then goes
    # through ConvInputGrad and ConvWeightGrad, whose own backwards are under test
    check_double_gradients(
        lambda a, b: F.conv2d(a, b, None, stride, padding, dilation, groups) ** 2,
        x, w, device=DEVICE,
    )


@settings(max_examples=10)
@given(conv_transpose2d_configs(**TINY, groups=True), seeds())
def test_conv_transpose2d_double_gradients(config, seed):
    x_shape, w_shape, stride, padding, output_padding, dilation, groups = config
    x, w = random_array(seed, x_shape), random_array(seed + 1, w_shape)
    check_double_gradients(
        lambda a, b: F.conv_transpose2d(
            a, b, None, stride, padding, output_padding, groups, dilation
        ) ** 2,
        x, w, device=DEVICE,
    )


def test_gradient_penalty_through_conv_matches_torch():
    """The WGAN-GP pattern: differentiate the norm of d D(x) / d x once more, with respect
    to the weight and to x. That runs ConvInputGrad's and ConvWeightGrad's backwards."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x, w = random_array(0, (2, 2, 5, 5)), random_array(1, (3, 2, 3, 3))

    def penalty_grads(lib, grad, tensor_fn):
        xt, wt = tensor_fn(x, requires_grad=True), tensor_fn(w, requires_grad=True)
        out = lib.conv2d(xt, wt, None, 2, 1) ** 2
        (gx,) = grad(out.sum(), [xt], create_graph=True)
        return [g.detach().numpy() for g in grad((gx * gx).sum(), [xt, wt])]

    mine = penalty_grads(F, mg.grad, tensor)
    theirs = penalty_grads(torch.nn.functional, torch.autograd.grad, torch.tensor)
    for m, t in zip(mine, theirs):
        # float64, sums of a few hundred O(1) products: 1e-11 is far above rounding
        np.testing.assert_allclose(m, t, atol=1e-11)


# ----------------------------------------------------------------------------- adjoint


@given(conv2d_configs(max_batch=2, max_channels=3, max_size=7, groups=True), seeds())
def test_conv2d_and_conv_transpose2d_are_adjoint(config, seed):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> with output_padding chosen so the
    transpose maps back to x's size (the rows the stride skips at the end)."""
    x_shape, w_shape, stride, padding, dilation, groups = config
    x, w = random_array(seed, x_shape), random_array(seed + 1, w_shape)
    out_hw = conv_output_hw(x_shape, w_shape, stride, padding, dilation)
    y = random_array(seed + 2, (x_shape[0], w_shape[0], *out_hw))
    output_padding = tuple(
        (size + 2 * p - d * (k - 1) - 1) % s
        for size, k, s, p, d in zip(x_shape[2:], w_shape[2:], stride, padding, dilation)
    )
    forward = F.conv2d(tensor(x), tensor(w), None, stride, padding, dilation, groups).numpy()
    back = F.conv_transpose2d(
        tensor(y), tensor(w), None, stride, padding, output_padding, groups, dilation
    ).numpy()
    assert back.shape == x.shape
    lhs, rhs = np.sum(forward * y), np.sum(x * back)
    # Both sides are the same sum of products x*w*y in a different order. Summing n terms
    # in float64 errs by at most n*u times the sum of |terms| (Higham, Accuracy and
    # Stability, 2002, sec. 3.1), and that sum is <conv2d(|x|, |w|), |y|>.
    magnitude = np.sum(
        F.conv2d(tensor(np.abs(x)), tensor(np.abs(w)), None, stride, padding, dilation,
                 groups).numpy() * np.abs(y)
    )
    n_terms = x.size + w.size + y.size  # bounds the length of every chain of additions
    assert abs(lhs - rhs) <= 2 * n_terms * np.finfo(np.float64).eps * magnitude


def test_float32_stays_float32_and_matches_float64():
    x, w = random_array(0, (2, 3, 6, 6)), random_array(1, (4, 3, 3, 3))
    y64 = F.conv2d(tensor(x), tensor(w), padding=1).numpy()
    y32 = F.conv2d(tensor(x, dtype=np.float32), tensor(w, dtype=np.float32), padding=1)
    assert y32.dtype == np.float32
    # each output sums 27 products of O(1) values: float32 rounding (u = 6e-8) of inputs
    # and sums stays far below 1e-4 absolute
    np.testing.assert_allclose(y32.numpy(), y64, atol=1e-4)


# ----------------------------------------------------------------------------- PyTorch


@settings(max_examples=10)
@given(conv_transpose2d_configs(max_batch=2, max_channels=3, max_size=6, groups=True), seeds())
def test_matches_torch(config, seed):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x_shape, w_shape, stride, padding, output_padding, dilation, groups = config
    # the conv2d direction: the transposed op's output size is a conv2d input size
    conv_x_shape = (x_shape[0], w_shape[1] * groups) + tuple(
        (size - 1) * s - 2 * p + d * (k - 1) + e + 1
        for size, k, s, p, d, e in zip(x_shape[2:], w_shape[2:], stride, padding, dilation,
                                       output_padding)
    )
    w = random_array(seed + 1, w_shape)
    bias_t = random_array(seed + 3, (w_shape[1] * groups,))
    bias_c = random_array(seed + 4, (w_shape[0],))
    cases = [
        (F.conv2d, torch.nn.functional.conv2d, random_array(seed, conv_x_shape), bias_c,
         dict(stride=stride, padding=padding, dilation=dilation, groups=groups)),
        (F.conv_transpose2d, torch.nn.functional.conv_transpose2d, random_array(seed, x_shape),
         bias_t, dict(stride=stride, padding=padding, output_padding=output_padding,
                      dilation=dilation, groups=groups)),
    ]
    for ours, theirs, x, b, params in cases:
        mine = [tensor(a, requires_grad=True) for a in (x, w, b)]
        ref = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
        out, expected = ours(*mine, **params), theirs(*ref, **params)
        weights = random_array(seed + 5, tuple(expected.shape))
        (out * tensor(weights)).sum().backward()
        (expected * torch.tensor(weights)).sum().backward()
        # float64 sums of at most a few hundred O(1) products: 1e-12 is ~ 100x their error
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), atol=1e-12)
        for m, r in zip(mine, ref):
            np.testing.assert_allclose(m.grad.numpy(), r.grad.numpy(), atol=1e-12)


# ----------------------------------------------------------------------------- errors


def test_channel_mismatch_names_op_and_shapes():
    x, w = mg.zeros(64, 3, 28, 28, device=DEVICE), mg.zeros(32, 1, 4, 4, device=DEVICE)
    expected = (
        "conv2d: input has 3 channels, weight expects 1 "
        "(input (64, 3, 28, 28), weight (32, 1, 4, 4))"
    )
    with pytest.raises(ValueError) as error:
        F.conv2d(x, w)
    assert str(error.value) == expected
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels, weight "
                                         r"expects 32 \(input \(64, 3, 28, 28\), weight"):
        F.conv_transpose2d(x, w)
    with pytest.raises(ValueError, match=r"linear: input has 5 features, weight expects 4 "
                                         r"\(input \(2, 5\), weight \(3, 4\)\)"):
        F.linear(mg.zeros(2, 5, device=DEVICE), mg.zeros(3, 4, device=DEVICE))


@pytest.mark.parametrize("call, message", [
    (lambda z: F.conv2d(z(3, 8, 8), z(2, 3, 3, 3)), r"conv2d: input must be 4-D .* \(3, 8, 8\)"),
    (lambda z: F.conv2d(z(1, 3, 8, 8), z(2, 3, 3)), r"conv2d: weight must be 4-D .* \(2, 3, 3\)"),
    (lambda z: F.conv2d(z(1, 3, 2, 2), z(2, 3, 3, 3)), r"conv2d: output size \(0, 0\) is less"),
    (lambda z: F.conv2d(z(1, 4, 5, 5), z(3, 2, 1, 1), groups=2),
     r"conv2d: groups=2 does not divide the weight's output channels \(3\)"),
    (lambda z: F.conv2d(z(1, 3, 5, 5), z(4, 1, 1, 1), groups=2),
     r"conv2d: groups=2 does not divide the input channels \(3\)"),
    (lambda z: F.conv2d(z(1, 3, 5, 5), z(4, 3, 1, 1), stride=0), r"conv2d: stride must be at"),
    (lambda z: F.conv2d(z(1, 3, 5, 5), z(4, 3, 1, 1), z(3)), r"conv2d: bias must have shape"),
    (lambda z: F.conv_transpose2d(z(1, 2, 3, 3), z(2, 2, 3, 3), stride=2, output_padding=2),
     r"conv_transpose2d: output_padding \(2, 2\) must be smaller than the stride \(2, 2\)"),
    (lambda z: F.conv2d(z(1, 3, 5, 5), z(4, 3, 1, 1).double()), r"conv2d: .* share one dtype"),
])
def test_bad_arguments_are_named(call, message):
    def zeros(*shape):
        return mg.zeros(*shape, device=DEVICE)

    with pytest.raises(ValueError, match=message):
        call(zeros)
