"""PyTorch habits: tensor and autograd behaviour compared with PyTorch itself (when torch is
installed) or with the definition. Tolerances: float64 comparisons with torch allow 1e-12
relative (the same formulas in a possibly different summation order); float32 ones 1e-6.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import minigan as mg
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array

torch = pytest.importorskip("torch", reason="these tests compare with PyTorch")

F64 = dict(rtol=1e-12, atol=1e-12)


def both(array, requires_grad=True):
    """The same float64 values as a minigan tensor and a torch tensor."""
    array = np.asarray(array, dtype=np.float64)
    return (mg.tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


# ----------------------------------------------------------------------------- wrong results


def test_grad_returns_a_tuple_for_a_single_input_as_torch():
    x, tx = both(random_array(0, (4, 3)))
    out, tout = (x * x).sum(), (tx * tx).sum()
    result = mg.grad(out, x, create_graph=True, only_inputs=True)
    expected = torch.autograd.grad(tout, tx, create_graph=True, only_inputs=True)
    assert isinstance(result, tuple) and len(result) == len(expected) == 1
    # WGAN-GP code written for torch indexes [0]: the whole gradient, not sample 0's
    np.testing.assert_allclose(result[0].numpy(), expected[0].detach().numpy(), **F64)


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)),
                                    ((4, 2, 3), (3,)), ((3,), (4, 3, 2)), ((4, 2, 3), (3, 2))])
def test_matmul_gradients_match_torch_for_vectors_and_batches(shapes):
    (a, ta), (b, tb) = both(random_array(1, shapes[0])), both(random_array(2, shapes[1]))
    out, tout = a @ b, ta @ tb
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), **F64)
    weights = random_array(3, tout.shape)
    (out * mg.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), **F64)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), **F64)
    check_gradients(lambda u, v: u @ v, random_array(1, shapes[0]), random_array(2, shapes[1]))
    check_double_gradients(lambda u, v: (u @ v) * (u @ v), random_array(1, shapes[0]),
                           random_array(2, shapes[1]))


def test_dot_product_gradient_from_the_issue():
    a = mg.tensor([1.0, 2.0, 3.0])
    b = mg.tensor([4.0, 5.0, 6.0], requires_grad=True)
    (a @ b).backward()
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("base, exponent", [([-2.0, 0.0, 3.0], [2.0, 2.0, 2.0]),
                                            ([0.0, 1.0, -1.5], [0.0, 0.0, 3.0]),
                                            ([0.5, 2.0, 4.0], [-1.0, 0.5, 1.5])])
def test_tensor_power_matches_torch_for_negative_and_zero_bases(base, exponent):
    (a, ta), (e, te) = both(base), both(exponent)
    out, tout = a**e, ta**te
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), **F64)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), **F64)
    # d/d exponent is a^e log a: NaN for a negative base in both, 0 at a = 0
    np.testing.assert_allclose(e.grad.numpy(), te.grad.numpy(), equal_nan=True, **F64)


def test_tensor_power_gradients_of_both_operands():
    base, exponent = np.array([0.5, 1.5, 2.0]), np.array([-1.2, 0.7, 2.5])
    check_gradients(lambda a, e: a**e, base, exponent)
    check_double_gradients(lambda a, e: a**e, base, exponent)
    check_gradients(lambda e: 2.0**e, exponent)


def test_expand_minus_one_keeps_a_size():
    x, tx = both(random_array(4, (2, 1)))
    np.testing.assert_array_equal(x.expand(2, -1).numpy(), tx.expand(2, -1).detach().numpy())
    assert x.expand(3, -1, 4).shape == tuple(tx.expand(3, -1, 4).shape)
    with pytest.raises(RuntimeError, match="expand"):
        x.expand(-1, 2, 1)


def _copy_norm_layer(layer, torch_layer):
    torch_layer.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})


@pytest.mark.parametrize("make", ["BatchNorm1d", "BatchNorm2d", "InstanceNorm2d"])
def test_norm_momentum_none_matches_torch(make):
    layer = getattr(mg.nn, make)(3, momentum=None, track_running_stats=True)
    reference = getattr(torch.nn, make)(3, momentum=None, track_running_stats=True)
    _copy_norm_layer(layer, reference)
    for step in range(3):
        shape = (4, 3, 5) if make == "BatchNorm1d" else (4, 3, 5, 5)
        x = random_array(10 + step, shape).astype(np.float32) * (step + 1) + step
        layer(mg.tensor(x))
        reference(torch.tensor(x))
    for key, value in reference.state_dict().items():
        # float32 running averages of 3 batches: a few ulps
        np.testing.assert_allclose(layer.state_dict()[key], value.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=key)


def test_errors_name_the_op_the_user_called():
    with pytest.raises(RuntimeError, match=r"^matmul: shapes \(2, 3\) and \(4, 5\)"):
        mg.randn(2, 3, device="cpu") @ mg.randn(4, 5, device="cpu")
    model = mg.nn.Sequential(mg.nn.Linear(3, 2), mg.nn.ReLU())  # fused into one op
    with pytest.raises(ValueError, match=r"^linear: ") as error:
        model(mg.randn(4, 3, dtype=np.float64))
    assert "linear_act" not in str(error.value)


# ----------------------------------------------------------------------------- surprises


def test_subpackages_are_reachable_after_import_minigan():
    code = ("import sys; import minigan as mg; "
            "assert 'minigan.nn' not in sys.modules  # loaded on first use: a quick import\n"
            "import minigan.nn.functional as F; "
            "assert mg.nn.Linear and mg.optim.Adam and mg.functional.relu and F.relu; "
            "assert mg.autograd.grad is mg.grad and F is mg.functional")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_equality_is_elementwise_and_hashing_by_identity():
    a, b = mg.tensor([1.0, 2.0, 3.0]), mg.tensor([1.0, 0.0, 3.0])
    assert (a == b).tolist() == [True, False, True]
    assert (a != b).tolist() == [False, True, False]
    assert (a == 2.0).tolist() == [False, True, False]
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b"
    assert a in [a] and len({a, b}) == 2
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(a == b)


def test_in_place_update_of_a_leaf_needs_no_grad():
    p = mg.nn.Parameter(mg.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p -= 1.0
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p[0] = 5.0
    (p * p).sum().backward()
    array = p.array
    with mg.no_grad():
        p -= 0.25 * p.grad
    assert p.array is array  # changed in place: an optimizer's view would see it
    np.testing.assert_array_equal(p.numpy(), [0.5, 1.0])
    assert p.requires_grad and p.is_leaf


def test_backward_after_changing_a_saved_tensor_is_a_clear_error():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    y = (h * h).sum()  # saves h
    with mg.no_grad():
        h.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*version 1; "
                                           r"expected version 0"):
        y.backward()


def test_in_place_ops_in_a_graph_give_torch_gradients():
    x, tx = both([0.5, -1.0, 2.0])
    w, tw = both([1.5, 0.25, -0.5])
    results = []
    for a, b in ((x, w), (tx, tw)):
        h = a * 2.0
        h *= b
        h += a
        h.sub_(b, alpha=0.5)
        h.clamp_(-1.0, 2.0)
        g = h.clone()
        g[1] = b[0] * 3.0
        g.lerp_(b, 0.25)
        (g * g).sum().backward()
        results.append((g.detach().numpy(), a.grad.numpy(), b.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, **F64)


def test_trailing_underscore_methods_match_torch():
    values = random_array(5, (3, 4))
    ours, theirs = mg.tensor(values), torch.tensor(values)
    other = random_array(6, (4,))
    for name, args in [("add_", (other,)), ("sub_", (other,)), ("mul_", (other,)),
                       ("div_", (other + 3.0,)), ("clamp_", (-0.5, 0.5)),
                       ("lerp_", (other, 0.3)), ("copy_", (other,)), ("fill_", (2.5,)),
                       ("zero_", ())]:
        t_args = [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        m_args = [mg.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        assert getattr(ours, name)(*m_args) is ours
        getattr(theirs, name)(*t_args)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), err_msg=name, **F64)
    assert ours._version.value == 9  # one change each


def test_random_fills_have_the_asked_distribution():
    # 20000 samples: the sample mean's standard error is std / 141; 5 of them is the bound
    t = mg.zeros(20000).normal_(2.0, 3.0)
    assert abs(float(t.mean()) - 2.0) < 5 * 3.0 / 141
    assert abs(float(t.std()) - 3.0) < 0.1
    u = mg.zeros(20000).uniform_(-1.0, 3.0)
    assert float(u.min()) >= -1.0 and float(u.max()) < 3.0
    assert abs(float(u.mean()) - 1.0) < 5 * (4.0 / np.sqrt(12)) / 141
    assert float(mg.zeros(10).uniform_(**{"from": 5.0, "to": 6.0}).min()) >= 5.0


def test_changing_a_view_of_a_leaf_in_place_is_refused_while_recording():
    w = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    row = w[:2]
    with pytest.raises(RuntimeError, match="view"):
        row.mul_(2.0)
    with mg.no_grad():
        row.mul_(2.0)  # allowed, and seen through the base, as in torch
    np.testing.assert_array_equal(w.numpy(), [2.0, 4.0, 3.0])


def test_reductions_take_dim_and_keepdim_and_numpy_aliases():
    values = random_array(7, (3, 4, 5))
    x, tx = both(values)
    for dim, keepdim in [(0, False), (1, True), ((0, 2), False), (None, False)]:
        kwargs = {} if dim is None else {"dim": dim, "keepdim": keepdim}
        for name in ("sum", "mean", "var", "std"):
            np.testing.assert_allclose(getattr(x, name)(**kwargs).detach().numpy(),
                                       getattr(tx, name)(**kwargs).detach().numpy(),
                                       err_msg=f"{name} {kwargs}", **F64)
    np.testing.assert_array_equal(x.sum(axis=1, keepdims=True).numpy(),
                                  x.sum(dim=1, keepdim=True).numpy())
    with pytest.raises(TypeError, match="not both"):
        x.sum(dim=0, axis=0)
    np.testing.assert_allclose(x.var(1, unbiased=False).detach().numpy(),
                               tx.var(1, unbiased=False).detach().numpy(), **F64)
    np.testing.assert_allclose(x.std(dim=2, correction=0).detach().numpy(),
                               tx.std(dim=2, correction=0).detach().numpy(), **F64)


def test_max_along_a_dim_returns_values_and_indices_as_torch():
    values = random_array(8, (3, 4))
    x, tx = both(values)
    result, expected = x.max(dim=1), tx.max(dim=1)
    np.testing.assert_array_equal(result.values.detach().numpy(),
                                  expected.values.detach().numpy())
    np.testing.assert_array_equal(result.indices.numpy(), expected.indices.numpy())
    smallest, where_smallest = x.min(0, keepdim=True)
    np.testing.assert_array_equal(smallest.detach().numpy(),
                                  tx.min(0, keepdim=True).values.detach().numpy())
    np.testing.assert_array_equal(where_smallest.numpy(), tx.min(0, keepdim=True).indices)
    (result.values * mg.tensor([1.0, 2.0, 3.0])).sum().backward()
    (expected.values * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(x.argmax(dim=1).numpy(), tx.argmax(dim=1).numpy())
    assert float(x.max()) == float(tx.max())


def test_cat_and_stack_take_dim_or_axis():
    a, b = mg.ones(2, 3), mg.zeros(2, 3)
    assert mg.cat([a, b], dim=1).shape == mg.cat([a, b], axis=1).shape == (2, 6)
    assert mg.stack([a, b], dim=2).shape == mg.stack([a, b], axis=-1).shape == (2, 3, 2)


def test_legacy_constructors_types_and_conversions():
    t = mg.Tensor(4, 1).fill_(1.0)
    assert t.shape == (4, 1) and t.dtype == np.float32 and float(t.sum()) == 4.0
    assert mg.Tensor(np.zeros(3)).dtype == np.float32  # torch.Tensor: the default dtype
    assert mg.tensor(np.zeros(3)).dtype == np.float64  # torch.tensor keeps it
    assert mg.tensor([1, 2]).dtype == np.int64 and mg.tensor([1.0]).dtype == np.float32
    x = mg.tensor([1.7, -2.2])
    assert x.type() == "minigan.FloatTensor"
    assert x.type(mg.LongTensor).dtype == np.int64 and x.type(mg.DoubleTensor).dtype == np.float64
    assert x.long().tolist() == [1, -2] and x.int().dtype == np.int32
    assert x.bool().dtype == np.bool_ and isinstance(x, mg.FloatTensor)
    assert mg.LongTensor([3, 4]).dtype == np.int64 and not isinstance(x, mg.LongTensor)
    assert x.to(mg.float64).dtype == np.float64


def test_norm_matches_torch_with_its_gradient_also_at_zero():
    values = random_array(9, (3, 4))
    values[1] = 0.0
    x, tx = both(values)
    for p, dim in [(2, 1), ("fro", None), (1, 0), (float("inf"), 1), (3, 1)]:
        out, tout = x.norm(p, dim=dim), tx.norm(p, dim=dim)
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), **F64)
    x.norm(2, dim=1).sum().backward()
    tx.norm(2, dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **F64)  # row 1: zeros


def test_python_conversions_and_small_methods():
    x = mg.tensor([[2.5]])
    assert float(x) == 2.5 and int(x) == 2 and f"{x:.3f}" == "2.500"
    array = np.arange(3.0)
    shared = mg.from_numpy(array)
    array[0] = 7.0
    assert shared.dtype == np.float64 and float(shared[0]) == 7.0
    assert mg.is_tensor(shared) and not mg.is_tensor(array)
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    copy = w.clone()
    assert copy.array is not w.array and copy.dim() == 1
    (copy * 3.0).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(w.pow(2).detach().numpy(), [1.0, 4.0])
    assert w.cpu() is w
    model = mg.nn.Linear(2, 2)
    assert model.cpu() is model
    if mg.backend.cuda_problem():
        with pytest.raises(mg.DeviceUnavailable, match="cuda"):
            w.cuda()
        with pytest.raises(mg.DeviceUnavailable, match="cuda"):
            model.cuda()
    with mg.inference_mode():
        assert not (w * 2.0).requires_grad
    assert (w * 2.0).requires_grad


def test_top_level_functions_match_torch():
    a_values, b_values = random_array(10, (3, 4)), random_array(11, (3, 4))
    b_values[0, 0] = a_values[0, 0]  # a tie: maximum and minimum split its gradient
    (a, ta), (b, tb) = both(a_values), both(b_values)
    pairs = [
        (mg.tanh(a), torch.tanh(ta)), (mg.sigmoid(a), torch.sigmoid(ta)),
        (mg.matmul(a, b.T), torch.matmul(ta, tb.T)), (mg.mean(a, dim=1), torch.mean(ta, dim=1)),
        (mg.sum(a, 0, keepdim=True), torch.sum(ta, 0, keepdim=True)),
        (mg.maximum(a, b), torch.maximum(ta, tb)), (mg.minimum(a, b), torch.minimum(ta, tb)),
        (mg.lerp(a, b, 0.3), torch.lerp(ta, tb, 0.3)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **F64)
    sum(ours.sum() for ours, _ in pairs).backward()
    sum(theirs.sum() for _, theirs in pairs).backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), **F64)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), **F64)
    np.testing.assert_allclose(mg.linspace(-1, 2, 7).numpy(), torch.linspace(-1, 2, 7).numpy())
    np.testing.assert_array_equal(mg.eye(2, 3).numpy(), torch.eye(2, 3).numpy())
    like = mg.randn_like(a)
    assert like.shape == a.shape and like.dtype == a.dtype
    assert mg.rand_like(a).shape == a.shape and float(mg.rand_like(a).min()) >= 0.0
    drawn = mg.randint(3, 7, (1000,))
    assert drawn.dtype == np.int64 and set(drawn.tolist()) == {3, 4, 5, 6}
    assert mg.randint(2, (5,)).shape == (5,)


# ----------------------------------------------------------------------------- .data


def test_data_is_a_detached_tensor_sharing_storage_and_version():
    p = mg.nn.Parameter(mg.tensor([0.5, -2.0, 3.0]))
    d = p.data
    assert isinstance(d, mg.Tensor) and not d.requires_grad and d.is_leaf
    assert d.array is p.array and d.size(0) == 3
    p.data.clamp_(-1.0, 1.0)  # WGAN's weight clipping, outside no_grad: allowed on .data
    np.testing.assert_array_equal(p.numpy(), [0.5, -1.0, 1.0])
    assert p._version.value == 1
    p.grad = mg.tensor([1.0, 1.0, 1.0])
    p.data -= 0.5 * p.grad  # the hand-written SGD step of old PyTorch code
    np.testing.assert_array_equal(p.numpy(), [0.0, -1.5, 0.5])
    p.data = mg.tensor([7.0, 8.0, 9.0])
    np.testing.assert_array_equal(p.numpy(), [7.0, 8.0, 9.0])
    assert p.requires_grad and isinstance(p, mg.nn.Parameter)
    with pytest.raises(TypeError, match=r"\.array"):
        p.data = np.zeros(3)


def test_changing_data_of_a_saved_tensor_is_caught():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    w.data.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_init_works_on_parameters_and_on_their_data():
    layer, reference = mg.nn.Linear(30, 40), torch.nn.Linear(30, 40)
    mg.nn.init.normal_(layer.weight.data, 0.0, 0.02)
    mg.nn.init.constant_(layer.bias.data, 0.5)
    # 1200 samples of N(0, 0.02^2): the sample std is within 10% with a wide margin
    assert abs(float(layer.weight.std()) - 0.02) < 0.002
    np.testing.assert_array_equal(layer.bias.numpy(), np.full(40, 0.5, np.float32))
    mg.nn.init.xavier_uniform_(layer.weight)
    torch.nn.init.xavier_uniform_(reference.weight)
    bound = np.sqrt(6.0 / 70)  # the same bound as torch's
    assert float(layer.weight.abs().max()) <= bound
    assert float(reference.weight.abs().max()) <= bound
    mg.nn.init.zeros_(layer.weight)
    assert float(layer.weight.abs().sum()) == 0.0


def test_to_and_float_keep_the_graph_as_torch():
    x, tx = both([0.5, -1.5, 2.0])
    for ours, theirs in ((x.float(), tx.float()), (x.to(mg.float32).double(),
                                                   tx.to(torch.float32).double())):
        (ours * ours).sum().backward()
        (theirs * theirs).sum().backward()
    assert x.float().dtype == np.float32 and x.float().requires_grad
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)  # float32 steps
    moved = x.to("numpy") if x.device != "numpy" else x.to("cpu")
    (moved * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy() + 3.0, rtol=1e-6)
