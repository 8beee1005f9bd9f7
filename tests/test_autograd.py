"""The autograd engine and the primitive Tensor ops: gradients, gradients of gradients,
broadcasting, graph freeing, grad mode."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigan as mg
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import arrays, random_array, seeds

SHAPES = st.sampled_from([(3,), (2, 3), (2, 1, 3), (1, 4)])


@given(seeds(), SHAPES, SHAPES)
def test_broadcasting_binary_ops_gradients(seed, shape_a, shape_b):
    try:
        np.broadcast_shapes(shape_a, shape_b)
    except ValueError:
        return
    a = random_array(seed, shape_a)
    b = random_array(seed + 1, shape_b) + np.where(random_array(seed + 2, shape_b) > 0, 2.0, -2.0)
    check_gradients(lambda x, y: x + y, a, b)
    check_gradients(lambda x, y: x - y, a, b)
    check_gradients(lambda x, y: x * y, a, b)
    check_gradients(lambda x, y: x / y, a, b)


@given(arrays((2, 3), low=0.5, high=2.0))
def test_unary_ops_gradients(x):
    check_gradients(lambda t: t.exp(), x)
    check_gradients(lambda t: t.log(), x)
    check_gradients(lambda t: t.sqrt(), x)
    check_gradients(lambda t: t**3, x)
    check_gradients(lambda t: t**-1.5, x)
    check_gradients(lambda t: -t, x)
    check_gradients(lambda t: 2.0**t, x)


@given(arrays((2, 3), away_from_zero=1e-3))
def test_abs_and_clip_gradients(x):
    check_gradients(lambda t: abs(t), x)
    # clip bounds kept away from the drawn values by construction of the check points
    check_gradients(lambda t: t.clip(-0.5005, 0.5005), x + 0.0)


@given(seeds(), st.sampled_from([None, 0, 1, (0, 1)]), st.booleans())
def test_reductions_gradients(seed, axis, keepdims):
    x = random_array(seed, (3, 4))
    check_gradients(lambda t: t.sum(axis, keepdims), x)
    check_gradients(lambda t: t.mean(axis, keepdims), x)
    check_gradients(lambda t: t.amax(axis, keepdims), x)  # ties have probability zero
    check_gradients(lambda t: t.amin(axis, keepdims), x)
    if isinstance(axis, int):  # max/min along one dim: (values, indices), as in PyTorch
        check_gradients(lambda t: t.max(axis, keepdims).values, x)
        check_gradients(lambda t: t.min(axis, keepdims).values, x)
    check_gradients(lambda t: t.var(axis, keepdim=keepdims), x)
    check_gradients(lambda t: t.var(axis, unbiased=False, keepdim=keepdims), x)


@given(seeds())
def test_matmul_gradients(seed):
    check_gradients(lambda a, b: a @ b, random_array(seed, (2, 3)), random_array(seed + 1, (3, 4)))
    check_gradients(lambda a, b: a @ b, random_array(seed, (2, 2, 3)), random_array(seed, (3, 2)))
    check_gradients(lambda a, b: a @ b, random_array(seed, (3,)), random_array(seed + 2, (3, 2)))
    check_gradients(lambda a, b: a @ b, random_array(seed, (2, 3)), random_array(seed + 3, (3,)))


@given(seeds())
def test_shape_ops_gradients(seed):
    x = random_array(seed, (2, 3, 4))
    check_gradients(lambda t: t.reshape(4, 6), x)
    check_gradients(lambda t: t.permute(2, 0, 1), x)
    check_gradients(lambda t: t.transpose(0, 2), x)
    check_gradients(lambda t: t.flatten(1), x)
    check_gradients(lambda t: t[1, :, ::2], x)
    check_gradients(lambda t: t[np.array([0, 0, 1])], x)  # repeated index: gradients add up
    check_gradients(lambda t: t.unsqueeze(1).expand(2, 5, 3, 4), x)
    check_gradients(lambda a, b: mg.cat([a, b], dim=1), x, random_array(seed + 1, (2, 2, 4)))
    check_gradients(lambda a, b: mg.stack([a, b], dim=0), x, random_array(seed + 1, (2, 3, 4)))
    cond = random_array(seed + 2, (3, 4)) > 0
    check_gradients(lambda a, b: mg.where(cond, a, b), x, random_array(seed + 3, (1, 4)))


@given(arrays((2, 3), low=0.5, high=2.0))
def test_double_backward_of_primitives(x):
    check_double_gradients(lambda t: (t * t).sum(axis=1), x)
    check_double_gradients(lambda t: t.mean(axis=0) * t.sum(), x)
    check_double_gradients(lambda t: t**3, x)
    check_double_gradients(lambda t: t.sqrt(), x)
    check_double_gradients(lambda t: t.exp() / t, x)
    check_double_gradients(lambda t: t.log(), x)


@given(seeds())
def test_double_backward_of_matmul(seed):
    check_double_gradients(
        lambda a, b: ((a @ b) ** 2), random_array(seed, (2, 3)), random_array(seed + 1, (3, 2))
    )


def test_known_second_derivative():
    x = mg.tensor([1.0, 2.0, -3.0], requires_grad=True)
    (first,) = (mg.grad((x**3).sum(), [x], create_graph=True),)
    first = first[0]
    np.testing.assert_allclose(first.numpy(), 3 * x.numpy() ** 2)
    (second,) = mg.grad(first.sum(), x)
    np.testing.assert_allclose(second.numpy(), 6 * x.numpy())


def test_gradients_accumulate_into_leaves():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0 + 2.0, 3.0 + 4.0])


def test_shared_subexpression_gradient_counts_every_path():
    x = mg.tensor([2.0], requires_grad=True)
    y = x * x
    z = y * y + y  # x^4 + x^2
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4 * 8.0 + 2 * 2.0])


def test_second_backward_through_freed_graph_is_a_clear_error():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_grad_does_not_touch_dot_grad_and_reaches_non_leaves():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    y = (h * h).sum()
    gh, gx = mg.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    np.testing.assert_allclose(gx.numpy(), 8 * x.numpy())
    assert x.grad is None


def test_grad_unused_input_is_an_error_unless_allowed():
    x = mg.tensor([1.0], requires_grad=True)
    unused = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        mg.grad((x * 2).sum(), [x, unused], retain_graph=True)
    gx, gu = mg.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_no_grad_records_nothing_and_works_as_decorator():
    x = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf

    @mg.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert mg.is_grad_enabled()
    assert (x * 2).requires_grad


def test_without_create_graph_gradients_carry_no_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (g,) = mg.grad((x**3).sum(), x)
    assert not g.requires_grad


def test_backward_of_non_scalar_needs_a_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(mg.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_backward_without_graph_is_a_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()


def test_default_dtype_is_float32_and_float64_is_kept():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor(np.zeros(2)).dtype == np.float64
    assert mg.randn(2, 3).dtype == np.float32
    assert (mg.tensor([1.0]) * 2).dtype == np.float32  # Python numbers take the tensor's dtype
    assert mg.tensor([1, 2]).dtype.kind == "i"


def test_flatten_with_nothing_to_merge_returns_the_tensor_itself():
    """As torch.flatten: an (N, D) batch through flatten(1) (nn.Flatten()) is its input,
    with no graph node; a merge is a reshape node, and gradients flow either way."""
    x = mg.tensor(random_array(3, (4, 2)), requires_grad=True)
    assert x.flatten(1) is x and x.flatten(1, -1) is x and x.flatten(0, 0) is x
    y = mg.tensor(random_array(4, (4, 2, 3)), requires_grad=True)
    flat = y.flatten(1)
    assert flat.shape == (4, 6) and flat._ctx is not None
    assert mg.tensor(np.float32(2.0)).flatten().shape == (1,)  # a 0-d tensor becomes 1-D
    (nn_flat := mg.nn.Flatten()(x)).sum().backward()
    assert nn_flat is x
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((4, 2)))


def test_torch_flatten_returns_its_input_when_nothing_merges():
    """The PyTorch behaviour the test above follows."""
    torch = pytest.importorskip("torch")
    t = torch.zeros(4, 2)
    assert t.flatten(1) is t and torch.zeros(()).flatten().shape == (1,)


def test_manual_seed_makes_randn_repeatable():
    mg.manual_seed(7)
    a = mg.randn(3, 2).numpy()
    mg.manual_seed(7)
    b = mg.randn(3, 2).numpy()
    c = mg.randn(3, 2, generator=mg.Generator(8)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_randn_draws_numpys_normal_stream():
    """randn takes NumPy's standard_normal for N(0, 1): the same draws as normal(0, 1),
    so checkpoints and seeds from before that shortcut give the same runs; other means
    and deviations still come from normal()."""
    draws = mg.randn(50, 3, generator=mg.Generator(11)).numpy()
    expected = np.random.Generator(np.random.PCG64(11)).normal(0.0, 1.0, size=(50, 3))
    np.testing.assert_array_equal(draws, expected.astype(np.float32))
    scaled = mg.Generator(11).normal((50, 3), mean=2.0, std=0.5)
    expected = np.random.Generator(np.random.PCG64(11)).normal(2.0, 0.5, size=(50, 3))
    np.testing.assert_array_equal(scaled, expected.astype(np.float32))


def test_devices_numpy_and_cpu_interoperate_only_explicitly():
    a = mg.tensor([1.0], device="numpy")
    b = mg.tensor([1.0], device="cpu")
    with pytest.raises(RuntimeError, match="different devices"):
        a + b
    assert (a.to("cpu") + b).device == "cpu"


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.tensor([1.0], device="tpu")


def test_comparisons_give_boolean_tensors_without_grad():
    x = mg.tensor([1.0, -1.0], requires_grad=True)
    mask = x > 0
    assert mask.dtype == np.bool_ and not mask.requires_grad


def test_grad_with_create_graph_then_backward_reaches_all_weights():
    # WGAN-GP's pattern: grad() w.r.t. the input only, then backward() over the retained
    # graph must still reach the weights. Loss = sum((2 x w^2)^2) = 4 sum x^2 w^4.
    x = mg.tensor([1.5, -0.5], dtype=np.float64, requires_grad=True)
    w = mg.tensor([0.7, 2.0], dtype=np.float64, requires_grad=True)
    (gx,) = mg.grad(((x * w) ** 2).sum(), [x], create_graph=True)
    (gx * gx).sum().backward()
    xv, wv = x.numpy(), w.numpy()
    np.testing.assert_allclose(w.grad.numpy(), 16 * xv**2 * wv**3, rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), 8 * xv * wv**4, rtol=1e-12)
