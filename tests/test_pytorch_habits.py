"""What a PyTorch user types gives PyTorch's answer: tensors made from numbers, gradients a
user may change in place, devices as torch.device spells them, and the small tensor helpers
GAN scripts call (chunk, split, repeat, contiguous, new_*, randperm, normalize, ...).

The definitions are checked here without PyTorch (its documented rules, NumPy's tile for
repeat); the last tests compare with torch itself when it is installed. Values compared
are either exact (copies, indexing, integer results) or float64 sums of a few terms
(normalize: rtol 1e-12); gradients by finite differences in float64 (tests/gradcheck.py).
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import minigan as mg
import minigan.nn as nn
import minigan.nn.functional as F
from tests.gradcheck import check_gradients
from tests.strategies import random_array

F64 = dict(rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- tensor()


@pytest.mark.parametrize("value, shape, dtype", [
    (2, (), np.int64), (-7, (), np.int64), (2.5, (), np.float32), (True, (), np.bool_),
    (np.int64(3), (), np.int64), (np.float64(2.5), (), np.float64),
    (np.float32(1.5), (), np.float32), ([1, 2], (2,), np.int64), ([[1.0]], (1, 1), np.float32),
])
def test_tensor_of_a_number_is_that_number_as_torch_tensor(value, shape, dtype):
    # torch.tensor(2) is the 0-d integer 2; Tensor(2) (torch.Tensor's size rule) is a
    # 2-element tensor, and tensor() once passed a bare int through to it
    t = mg.tensor(value)
    assert t.shape == shape and t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(value))


def test_tensor_of_a_number_with_a_dtype_and_as_python_int():
    assert mg.tensor(3, dtype=mg.float32).dtype == np.float32
    assert mg.tensor(3, dtype=mg.float32).item() == 3.0
    assert int(mg.tensor(7)) == 7


# ----------------------------------------------------------------------------- leaf gradients


def test_two_leaves_joined_by_an_add_get_gradients_of_their_own():
    # an Add passes one gradient to both inputs; as .grad each must be its own memory, or
    # an in-place change of one (clip_grad_norm_) reaches the other
    a, b = nn.Parameter(mg.ones(2, dtype=mg.float64)), nn.Parameter(mg.ones(2, dtype=mg.float64))
    ((a + b) * 3.0).sum().backward()
    assert not np.shares_memory(a.grad.array, b.grad.array)
    total = nn.utils.clip_grad_norm_([a, b], 1.0)
    # the gradients are 3 everywhere: total norm 6, each scaled once by 1 / (6 + 1e-6)
    # (torch's clip coefficient); scaled twice, they would be 3 / 36
    assert total.item() == pytest.approx(6.0, rel=1e-12)
    once = 3.0 / (6.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [once, once], **F64)
    np.testing.assert_allclose(b.grad.numpy(), [once, once], **F64)


def test_a_leaf_and_its_view_partner_do_not_share_gradient_memory():
    a = mg.ones(2, 2, dtype=mg.float64, requires_grad=True)
    b = mg.ones(4, dtype=mg.float64, requires_grad=True)
    (a.reshape(4) + b).backward(mg.tensor(np.arange(4.0)))
    assert not np.shares_memory(a.grad.array, b.grad.array)
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.numpy(), np.arange(4.0))


def test_gradient_of_a_mean_can_be_changed_in_place():
    # a mean's backward passes a broadcast (read-only) view; PyTorch scripts zero or scale
    # .grad in place (`p.grad.data.zero_()`, `p.grad.mul_(...)`)
    p = mg.ones(3, dtype=mg.float64, requires_grad=True)
    p.mean().backward()
    p.grad.mul_(3.0)
    np.testing.assert_allclose(p.grad.numpy(), [1.0, 1.0, 1.0], **F64)
    p.grad.data.zero_()
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0, 0.0])


def test_zero_grad_without_none_after_a_mean_and_a_second_backward():
    p = nn.Parameter(mg.ones(3, dtype=mg.float64))
    opt = mg.optim.SGD([p], lr=0.1)
    p.mean().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0, 0.0])
    (p * 2.0).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [2.0, 2.0, 2.0])


def test_a_gradient_passed_to_backward_is_not_the_leafs_gradient():
    x = mg.ones(2, dtype=mg.float64, requires_grad=True)
    g = mg.tensor(np.array([1.0, 2.0]))
    x.backward(g)
    g.array[0] = 5.0
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])


def test_grad_without_a_graph_returns_gradients_of_their_own():
    a = mg.ones(2, dtype=mg.float64, requires_grad=True)
    b = mg.ones(2, dtype=mg.float64, requires_grad=True)
    ga, gb = mg.grad((a + b).mean(), [a, b])
    assert not np.shares_memory(ga.array, gb.array)
    ga.mul_(2.0)
    np.testing.assert_allclose(gb.numpy(), [0.5, 0.5], **F64)


def test_accumulated_gradients_stay_apart():
    a = mg.ones(2, dtype=mg.float64, requires_grad=True)
    b = mg.ones(2, dtype=mg.float64, requires_grad=True)
    for _ in range(2):
        ((a + b) * 3.0).sum().backward()
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.numpy(), [6.0, 6.0])


# ----------------------------------------------------------------------------- devices


def test_device_spelled_as_torch_device():
    dev = mg.device("cuda" if mg.cuda.is_available() else "cpu")
    assert dev.type in ("cpu", "cuda") and dev.index is None and dev == dev.type
    assert mg.device("cpu:0").index == 0 and mg.device("cpu", 0) == "cpu"
    assert mg.device(dev) is dev
    x = mg.randn(2, 3, device=dev)
    assert x.device == dev and x.device.type == dev.type and x.is_cuda == (dev == "cuda")
    assert nn.Linear(3, 2).to(dev)(x).device == dev
    assert mg.zeros(2, device="cpu:0").device == "cpu"
    assert pickle.loads(pickle.dumps(mg.device("cpu:0"))).index == 0
    assert copy.deepcopy(x).device == x.device


@pytest.mark.parametrize("spec, error, match", [
    ("cuda:1", ValueError, "device 'cuda:1': minigan drives one device of each kind"),
    ("mps", ValueError, "unknown device 'mps': expected one of numpy, cpu, cuda"),
    ("cpu:x", ValueError, "unknown device 'cpu:x'"),
    (3, TypeError, "expected a device name such as 'cpu' or 'cuda:0', got int 3"),
])
def test_a_device_minigan_does_not_have_is_refused_by_name(spec, error, match):
    with pytest.raises(error, match=match):
        mg.device(spec)
    with pytest.raises(error, match=match):
        mg.zeros(2, device=spec)


def test_dtype_short_names_are_torchs():
    assert mg.zeros(1, dtype=mg.float).dtype == np.float32
    assert mg.zeros(1, dtype=mg.double).dtype == np.float64
    assert mg.zeros(1, dtype=mg.int).dtype == np.int32
    assert mg.zeros(1, dtype=mg.bool).dtype == np.bool_
    assert mg.zeros(1, dtype=mg.uint8).dtype == np.uint8
    assert mg.randn(2).dtype == mg.float


# ----------------------------------------------------------------------------- new tensors


def test_new_tensors_take_dtype_and_device_from_the_tensor():
    x = mg.zeros(2, dtype=mg.float64, device="numpy")
    for made, fill in ((x.new_zeros(2, 3), 0.0), (x.new_ones((2, 3)), 1.0),
                       (x.new_full((2, 3), 7.0), 7.0), (x.new_empty(2, 3), None)):
        assert made.shape == (2, 3) and made.dtype == np.float64 and made.device == "numpy"
        if fill is not None:
            np.testing.assert_array_equal(made.numpy(), np.full((2, 3), fill))
    assert x.new_tensor([1, 2]).dtype == np.float64
    assert x.new_ones(2, dtype=mg.int64).dtype == np.int64
    assert mg.empty(2, 3).shape == (2, 3) and mg.empty((4,), dtype=mg.float64).dtype == np.float64
    np.testing.assert_array_equal(mg.full_like(x, 2.5).numpy(), [2.5, 2.5])
    assert mg.empty_like(x).shape == x.shape and mg.empty_like(x).dtype == x.dtype


def test_randperm_is_a_seeded_permutation():
    p = mg.randperm(10, generator=mg.Generator(3))
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(10))
    assert p.tolist() == mg.randperm(10, generator=mg.Generator(3)).tolist()
    assert mg.randperm(0).shape == (0,)
    with pytest.raises(ValueError, match="randperm: expected a whole number n >= 0, got -1"):
        mg.randperm(-1)


# ----------------------------------------------------------------------------- shape helpers


def test_split_and_chunk_pieces_and_gradients():
    x = random_array(0, (7, 3))
    t = mg.tensor(x)
    assert [p.shape for p in t.split(3)] == [(3, 3), (3, 3), (1, 3)]
    assert [p.shape for p in mg.split(t, [2, 5])] == [(2, 3), (5, 3)]
    assert [p.shape for p in t.chunk(3)] == [(3, 3), (3, 3), (1, 3)]
    assert [p.shape for p in mg.chunk(t, 2, dim=-1)] == [(7, 2), (7, 1)]
    assert [p.shape for p in t.chunk(10)] == [(1, 3)] * 7
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in t.split(3)]), x)
    # each piece's gradient lands in its own rows
    check_gradients(lambda u: u.split([2, 5])[1] * 2.0 + u.chunk(2, dim=1)[0].sum(), x)
    with pytest.raises(RuntimeError, match=r"split: sizes \[2, 2\] do not add up"):
        t.split([2, 2])
    with pytest.raises(IndexError, match="chunk: dim 2 is out of range"):
        t.chunk(2, dim=2)
    with pytest.raises(RuntimeError, match="chunk: chunks must be a whole number >= 1"):
        t.chunk(0)


@pytest.mark.parametrize("shape, sizes", [((2, 3), (2, 1)), ((2, 3), (1, 2)),
                                          ((3,), (2, 2)), ((2, 1, 2), (1, 3, 2))])
def test_repeat_tiles_as_numpy_tile(shape, sizes):
    x = random_array(1, shape)
    np.testing.assert_array_equal(mg.tensor(x).repeat(*sizes).numpy(), np.tile(x, sizes))
    assert mg.tensor(x).repeat(sizes).shape == np.tile(x, sizes).shape
    check_gradients(lambda u: u.repeat(*sizes), x)


def test_repeat_with_fewer_sizes_than_dimensions_is_refused():
    with pytest.raises(RuntimeError, match=r"repeat: expected at least 2 whole numbers"):
        mg.ones(2, 3).repeat(2)


def test_contiguous_copies_only_a_strided_tensor():
    x = mg.tensor(random_array(2, (2, 3, 4)), requires_grad=True)
    assert x.contiguous() is x and x.is_contiguous()
    y = x.permute(0, 2, 1)
    assert not y.is_contiguous()
    z = y.contiguous()
    assert z.is_contiguous() and z.array.flags.c_contiguous
    np.testing.assert_array_equal(z.numpy(), y.numpy())
    check_gradients(lambda u: u.permute(2, 0, 1).contiguous() * 3.0, random_array(2, (2, 3, 4)))


def test_masked_fill_mm_flatten():
    x = random_array(3, (3, 4))
    mask = x > 0
    out = mg.tensor(x).masked_fill(mg.tensor(mask), -1.0)
    np.testing.assert_array_equal(out.numpy(), np.where(mask, -1.0, x))
    check_gradients(lambda u: u.masked_fill(mg.tensor(mask), 0.0) * u, x)
    w = random_array(4, (4, 2))
    np.testing.assert_allclose(mg.mm(mg.tensor(x), mg.tensor(w)).numpy(), x @ w, **F64)
    with pytest.raises(RuntimeError, match=r"mm: expected two 2-D tensors, got shapes \(3, 4\)"):
        mg.tensor(x).mm(mg.ones(4))
    assert mg.flatten(mg.ones(2, 3, 4), 1).shape == (2, 12)


def test_value_tests_allclose_isfinite():
    x = mg.tensor(np.array([1.0, np.inf, np.nan, -2.0]))
    np.testing.assert_array_equal(mg.isfinite(x).numpy(), [True, False, False, True])
    np.testing.assert_array_equal(mg.isnan(x).numpy(), [False, False, True, False])
    np.testing.assert_array_equal(mg.isinf(x).numpy(), [False, True, False, False])
    a = mg.tensor(np.array([1.0, 2.0]))
    assert mg.allclose(a, a + 1e-9) and not mg.allclose(a, a + 1e-3)
    assert mg.allclose(x, x, equal_nan=True) and not mg.allclose(x, x)


def test_normalize_gives_unit_vectors_and_its_gradient():
    x = random_array(5, (4, 3))
    out = F.normalize(mg.tensor(x), dim=1).numpy()
    np.testing.assert_allclose(out, x / np.linalg.norm(x, axis=1, keepdims=True), **F64)
    np.testing.assert_allclose(F.normalize(mg.tensor(x), p=1, dim=0).numpy(),
                               x / np.abs(x).sum(axis=0, keepdims=True), **F64)
    assert np.all(F.normalize(mg.zeros(2, 3, dtype=mg.float64)).numpy() == 0)
    check_gradients(lambda u: F.normalize(u, dim=1), x)


def test_inplace_arguments_are_accepted_and_the_input_kept():
    x = mg.tensor(np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(F.relu(x, inplace=True).numpy(), [0.0, 2.0])
    np.testing.assert_array_equal(F.leaky_relu(x, 0.5, True).numpy(), [-0.5, 2.0])
    np.testing.assert_array_equal(x.numpy(), [-1.0, 2.0])
    # torch's dropout(input, p, training, inplace): a fourth positional argument is inplace
    assert F.dropout(x, 0.5, False, True) is x


# ----------------------------------------------------------------------------- against torch


def test_helpers_match_torch():
    torch = pytest.importorskip("torch", reason="this test compares with PyTorch")
    x = random_array(6, (4, 6))
    t, tt = mg.tensor(x), torch.tensor(x)
    for mine, theirs in ((t.chunk(3, dim=1), tt.chunk(3, dim=1)), (t.split(3), tt.split(3)),
                         (t.split([1, 3], dim=0), tt.split([1, 3], dim=0)),
                         (t.chunk(4, dim=1), tt.chunk(4, dim=1))):
        assert len(mine) == len(theirs)
        for m, r in zip(mine, theirs):
            np.testing.assert_array_equal(m.numpy(), r.numpy())
    np.testing.assert_array_equal(t.repeat(2, 1, 3).numpy(), tt.repeat(2, 1, 3).numpy())
    np.testing.assert_allclose(F.normalize(t, dim=0).numpy(),
                               torch.nn.functional.normalize(tt, dim=0).numpy(), **F64)
    for value in (2, 2.5, True, np.int64(3), np.float64(2.5), [1, 2]):
        assert mg.tensor(value).shape == tuple(torch.tensor(value).shape)
        assert str(mg.tensor(value).dtype) == str(torch.tensor(value).dtype).split(".")[-1]
    assert mg.device(torch.device("cpu")) == "cpu"
    assert mg.device(torch.device("cuda:0")).index == 0


# ----------------------------------------------------------------------------- methods, functions


def test_operator_methods_and_torch_functions():
    x, y = random_array(7, (3, 4)), random_array(8, (3, 4))
    a, b = mg.tensor(x), mg.tensor(y)
    for got, expected in ((a.add(b), x + y), (a.add(b, alpha=2), x + 2 * y), (a.sub(b), x - y),
                          (a.sub(1.5), x - 1.5), (a.mul(b), x * y), (a.div(b), x / y),
                          (a.neg(), -x), (a.reciprocal(), 1 / x), (a.t(), x.T),
                          (a.relu(), np.maximum(x, 0)), (mg.max(a, b), np.maximum(x, y)),
                          (mg.min(a, b), np.minimum(x, y)), (mg.max(a), x.max()),
                          (mg.max(a, 1).values, x.max(1)), (mg.reshape(a, (4, 3)), x.reshape(4, 3)),
                          (mg.transpose(a, 0, 1), x.T), (mg.permute(a, (1, 0)), x.T),
                          (mg.unsqueeze(a, 1), x[:, None]), (mg.squeeze(a[:1]), x[0])):
        np.testing.assert_allclose(got.numpy(), expected, **F64)
    softmax = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    np.testing.assert_allclose(a.softmax(dim=1).numpy(), softmax, **F64)
    np.testing.assert_allclose(a.log_softmax(1).numpy(), np.log(softmax), **F64)
    check_gradients(lambda u, v: u.add(v, alpha=3).mul(u).div(v.abs() + 1.0).neg(), x, y)
    with pytest.raises(ValueError, match="div: rounding_mode='floor' is not supported"):
        a.div(b, rounding_mode="floor")
    with pytest.raises(RuntimeError, match="t: expects a tensor of at most 2 dimensions"):
        mg.ones(2, 2, 2).t()


def test_normal_bernoulli_and_thread_count():
    draws = mg.normal(3.0, 0.5, (4000,), generator=mg.Generator(0)).numpy()
    # 4000 draws: the sample mean's standard error is 0.5 / sqrt(4000) = 0.008
    assert abs(draws.mean() - 3.0) < 0.05 and abs(draws.std() - 0.5) < 0.05
    p = mg.tensor(np.array([0.0, 1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(mg.bernoulli(p).numpy(), [0.0, 1.0, 0.0, 1.0])
    coin = mg.bernoulli(mg.full((4000,), 0.3), generator=mg.Generator(1)).numpy()
    assert set(np.unique(coin)) <= {0.0, 1.0} and abs(coin.mean() - 0.3) < 0.05
    with pytest.raises(TypeError, match="normal: mean and std must be numbers here"):
        mg.normal(mg.zeros(2), 1.0, (2,))
    assert mg.get_num_threads() >= 1
    mg.cuda.manual_seed_all(0)  # accepted: every device's draws come from the host's seed
    mg.manual_seed(5)
    first = mg.randn(3).numpy()
    mg.manual_seed(5)
    mg.cuda.manual_seed(7)
    np.testing.assert_array_equal(mg.randn(3).numpy(), first)


def test_softmax_layers_with_and_without_dim():
    x = random_array(9, (2, 5))
    np.testing.assert_allclose(nn.Softmax(dim=1)(mg.tensor(x)).numpy().sum(1), [1.0, 1.0],
                               **F64)
    with pytest.warns(UserWarning, match="Softmax without dim: taking dim 1 for a 2-d input"):
        implicit = nn.Softmax()(mg.tensor(x))
    np.testing.assert_allclose(implicit.numpy(), nn.Softmax(1)(mg.tensor(x)).numpy(), **F64)
    np.testing.assert_allclose(nn.LogSoftmax(dim=0)(mg.tensor(x)).numpy(),
                               F.log_softmax(mg.tensor(x), 0).numpy(), **F64)


# ----------------------------------------------------------------------------- conv padding


def _padded_reference(x, pads, mode):
    """np.pad of the last two axes by (left, right, top, bottom), torch's mode names."""
    left, right, top, bottom = pads
    width = ((0, 0), (0, 0), (top, bottom), (left, right))
    return np.pad(x, width, mode={"zeros": "constant", "reflect": "reflect",
                                  "replicate": "edge", "circular": "wrap"}[mode])


@pytest.mark.parametrize("kernel, padding, dilation, mode, pads", [
    (3, "same", 1, "zeros", (1, 1, 1, 1)), (4, "same", 1, "zeros", (1, 2, 1, 2)),
    ((2, 3), "same", 2, "zeros", (2, 2, 1, 1)), (3, "valid", 1, "zeros", (0, 0, 0, 0)),
    (3, 1, 1, "reflect", (1, 1, 1, 1)), (3, (2, 1), 1, "replicate", (1, 1, 2, 2)),
    (4, 1, 1, "circular", (1, 1, 1, 1)), (4, "same", 1, "reflect", (1, 2, 1, 2)),
])
def test_conv2d_padding_strings_and_modes_pad_as_torch(kernel, padding, dilation, mode, pads):
    # the definition: pad by `pads` in the mode, then convolve without padding (torch's
    # rule for 'same': an odd total puts the extra row/column at the bottom/right)
    x = random_array(10, (2, 3, 5, 6))
    conv = nn.Conv2d(3, 4, kernel, padding=padding, dilation=dilation, padding_mode=mode,
                     dtype=mg.float64, device="numpy")
    plain = nn.Conv2d(3, 4, kernel, dilation=dilation, dtype=mg.float64, device="numpy")
    plain.load_state_dict(conv.state_dict())
    expected = plain(mg.tensor(_padded_reference(x, pads, mode), device="numpy")).numpy()
    np.testing.assert_allclose(conv(mg.tensor(x, device="numpy")).numpy(), expected, **F64)
    if padding == "same":
        assert expected.shape[2:] == x.shape[2:]
    check_gradients(lambda u: conv(u), x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(padding="full"), "Conv2d: padding 'full' is not supported: expected an int, a pair"),
    (dict(padding="same", stride=2), "padding='same' is not supported for strided"),
    (dict(padding_mode="mirror"), "Conv2d: padding_mode 'mirror' is not supported"),
    (dict(padding=1.5), r"Conv2d: padding must be an int or a pair of ints, got 1.5"),
])
def test_conv2d_padding_it_cannot_do_is_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(3, 4, 3, **kwargs)


def test_conv_transpose_takes_only_zero_padding_mode():
    with pytest.raises(ValueError, match="ConvTranspose2d: only padding_mode 'zeros'"):
        nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect")


def test_conv2d_padding_matches_torch():
    torch = pytest.importorskip("torch", reason="this test compares with PyTorch")
    x = random_array(11, (2, 3, 6, 5))
    for kwargs in (dict(padding="same"), dict(padding=1, padding_mode="reflect"),
                   dict(padding="same", padding_mode="circular")):
        ours = nn.Conv2d(3, 2, 4, dtype=mg.float64, **kwargs)
        theirs = torch.nn.Conv2d(3, 2, 4, dtype=torch.float64, **kwargs)
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
            theirs.bias.copy_(torch.tensor(ours.bias.numpy()))
        xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, expected = ours(xm), theirs(xt)
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **F64)
        out.sum().backward()
        expected.sum().backward()
        np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), **F64)


# ------------------------------------------------------------------------- grad and anomaly modes


def test_set_grad_enabled_as_a_call_a_context_and_a_decorator():
    # torch.set_grad_enabled(False) on its own switches recording off (scripts do it at
    # the top of an evaluation); it once did nothing here outside a with statement
    x = mg.ones(2, requires_grad=True)
    try:
        mg.set_grad_enabled(False)
        assert not mg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        mg.set_grad_enabled(True)
    assert (x * 2).requires_grad
    with mg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert mg.is_grad_enabled()

    @mg.set_grad_enabled(False)
    def recorded():
        return (x * 2).requires_grad

    assert mg.is_grad_enabled() and recorded() is False and mg.is_grad_enabled()


def _nan_at_zero(x):
    return (x.sqrt() * 0.0).sum()  # d sqrt(x) / dx at 0 is inf; inf * 0 is NaN


def test_anomaly_mode_names_the_op_whose_backward_made_nan_and_where_it_was_called():
    x = mg.zeros(3, dtype=mg.float64, requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        _nan_at_zero(x).backward()  # without anomaly mode: NaN, no error (as torch)
        assert np.isnan(x.grad.numpy()).all()
        x.grad = None
        with mg.autograd.detect_anomaly():
            assert mg.is_anomaly_enabled()
            loss = _nan_at_zero(x)
            with pytest.raises(RuntimeError) as caught:
                loss.backward()
        assert not mg.is_anomaly_enabled()
        message = str(caught.value)
        assert message.startswith("Function 'Sqrt' returned nan values in its 0th output")
        assert "in _nan_at_zero" in message and "autograd.py" not in message
        with mg.autograd.set_detect_anomaly(True, check_nan=False):
            _nan_at_zero(x).backward()  # the forward calls recorded, no check
        assert not mg.is_anomaly_enabled()


def test_anomaly_mode_matches_torch_on_the_same_nan():
    torch = pytest.importorskip("torch", reason="this test compares with PyTorch")
    import warnings

    tx = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that the mode is slow, and where
        with torch.autograd.detect_anomaly(), pytest.raises(
                RuntimeError, match="'SqrtBackward0' returned nan values in its 0th"):
            (tx.sqrt() * 0.0).sum().backward()


# ----------------------------------------------------------------------------- type promotion

# (expression, expected dtype, expected values) by torch.result_type's rules: a number or a
# 0-d tensor raises the kind (bool < int < float) only when its kind is higher, to the
# default dtype of that kind (int64, float32); true division of integers is float32.
PROMOTIONS = [
    ("int64 * 0.5", lambda m: m.tensor([1, 3]) * 0.5, "float32", [0.5, 1.5]),
    ("int64 - 0.5", lambda m: m.tensor([3]) - 0.5, "float32", [2.5]),
    ("0.5 - int64", lambda m: 0.5 - m.tensor([1, 2]), "float32", [-0.5, -1.5]),
    ("int64 / int", lambda m: m.tensor([1, 2]) / 2, "float32", [0.5, 1.0]),
    ("3 / int64", lambda m: 3 / m.tensor([1, 2]), "float32", [3.0, 1.5]),
    ("bool * 1.5", lambda m: (m.ones(2) > 0) * 1.5, "float32", [1.5, 1.5]),
    ("bool + 1", lambda m: (m.ones(2) > 0) + 1, "int64", [2, 2]),
    ("uint8 * 2", lambda m: m.ones(2, dtype=m.uint8) * 2, "uint8", [2, 2]),
    ("float32 * int64 tensor", lambda m: m.ones(2) * m.tensor([1, 2]), "float32", [1.0, 2.0]),
    ("float32 + float64 0-d", lambda m: m.ones(2) + m.tensor(2.0, dtype=m.float64), "float32",
     [3.0, 3.0]),
    ("int64 + float64 0-d", lambda m: m.tensor([1]) + m.tensor(2.5, dtype=m.float64),
     "float64", [3.5]),
    ("float32 + float64", lambda m: m.ones(1) + m.ones(1, dtype=m.float64), "float64", [2.0]),
    ("int32 + int64", lambda m: m.ones(1, dtype=m.int32) + m.ones(1, dtype=m.int64), "int64",
     [2]),
    ("int64 ** 2", lambda m: m.tensor([1, 3]) ** 2, "int64", [1, 9]),
    ("int64 ** 0.5", lambda m: m.tensor([4]) ** 0.5, "float32", [2.0]),
    ("where(int64, 0.5)", lambda m: m.where(m.tensor([True, False]), m.tensor([1, 2]), 0.5),
     "float32", [1.0, 0.5]),
    ("maximum(int64, 0.5)", lambda m: m.maximum(m.tensor([0, 2]), m.tensor(0.5)), "float32",
     [0.5, 2.0]),
    ("where(number, number)", lambda m: m.where(m.tensor([True, False]), 1.0, -1.0),
     "float32", [1.0, -1.0]),
    ("where(int, float)", lambda m: m.where(m.tensor([True, False]), 1, 0.5), "float32",
     [1.0, 0.5]),
    ("full(int)", lambda m: m.full((2,), 7), "int64", [7, 7]),
    ("full(bool)", lambda m: m.full((1,), True), "bool", [True]),
]


@pytest.mark.parametrize("name, expression, dtype, values", PROMOTIONS,
                         ids=[p[0] for p in PROMOTIONS])
def test_arithmetic_promotes_types_as_torch(name, expression, dtype, values):
    # int64 * 0.5 took the tensor's dtype for the 0.5: [0, 0]
    out = expression(mg)
    assert str(out.dtype) == dtype
    np.testing.assert_array_equal(out.numpy(), values)


def test_promotion_table_is_torchs():
    torch = pytest.importorskip("torch", reason="this test compares with PyTorch")
    for name, expression, dtype, values in PROMOTIONS:
        theirs = expression(torch)
        assert str(theirs.dtype) == f"torch.{dtype}", name
        np.testing.assert_array_equal(theirs.numpy(), values, err_msg=name)


def test_gradients_flow_through_promotion_and_in_place_refuses_a_wider_kind():
    x = mg.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x * mg.tensor(np.array([2.0, 3.0]))  # float64 dims: the result is float64
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 3.0])
    counts = mg.tensor([1, 2])
    with pytest.raises(RuntimeError, match="a result of dtype float32 cannot be stored in place "
                                           "in a tensor of dtype int64"):
        counts.add_(0.5)
    np.testing.assert_array_equal(counts.numpy(), [1, 2])


def test_an_optimizer_keeps_frozen_parameters_and_skips_them():
    # fine-tuning scripts freeze part of a model, then pass all of model.parameters()
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    for p in model[0].parameters():
        p.requires_grad_(False)
    frozen = [p.numpy().copy() for p in model[0].parameters()]
    trained = [p.numpy().copy() for p in model[1].parameters()]
    opt = mg.optim.Adam(model.parameters(), lr=0.1)
    model(mg.ones(4, 2)).sum().backward()
    opt.step()
    for p, before in zip(model[0].parameters(), frozen):
        assert p.grad is None
        np.testing.assert_array_equal(p.numpy(), before)
    assert all(not np.array_equal(p.numpy(), b) for p, b in zip(model[1].parameters(), trained))
    model[0].weight.requires_grad_(True)  # unfrozen: the same optimizer now moves it
    opt.zero_grad()
    model(mg.ones(4, 2)).sum().backward()
    opt.step()
    assert not np.array_equal(model[0].weight.numpy(), frozen[0])
    with pytest.raises(ValueError, match="must be a leaf tensor .one no op made."):
        mg.optim.SGD([model[1].weight * 2.0], lr=0.1)


def test_a_tensor_prints_as_torch_prints_it():
    x = mg.tensor(np.arange(6.0).reshape(2, 3) / 7, dtype=mg.float32, device="numpy",
                  requires_grad=True)
    assert repr(x) == ("tensor([[0.0000, 0.1429, 0.2857],\n"
                       "        [0.4286, 0.5714, 0.7143]], requires_grad=True)")
    assert repr(x * 2).endswith("grad_fn=<Mul>)")
    assert repr(mg.tensor([1.0, 2.0], device="numpy")) == "tensor([1., 2.])"
    assert repr(mg.tensor([1, 2], device="numpy")) == "tensor([1, 2])"
    assert repr(mg.tensor([0.5], dtype=mg.float64, device="cpu")) == \
        "tensor([0.5000], device='cpu', dtype=minigan.float64)"


def test_a_module_moves_to_a_dtype_given_first():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert model.to(mg.float64) is model
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64  # integers stay, as in torch
    model.to("cpu", mg.float32)
    assert all(p.dtype == np.float32 and p.device == "cpu" for p in model.parameters())


def test_sgd_takes_its_arguments_in_torchs_order():
    # torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov): a weight
    # decay given fifth must not land in another slot
    def trained(make):
        p = nn.Parameter(mg.tensor(np.array([1.0, -2.0])))
        opt = make([p])
        for _ in range(3):
            p.grad = mg.tensor(np.array([0.5, 0.25]))
            opt.step()
        return p.numpy()

    np.testing.assert_array_equal(
        trained(lambda ps: mg.optim.SGD(ps, 0.1, 0.9, 0.0, 0.01)),
        trained(lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)))
    with pytest.raises(ValueError, match="SGD: dampening 0.5 is not supported"):
        mg.optim.SGD([nn.Parameter(mg.ones(1))], lr=0.1, momentum=0.9, dampening=0.5)
