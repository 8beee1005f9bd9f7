"""minigan.nn: Module bookkeeping with PyTorch's names and order, state_dict round trips and
errors, train/eval behaviour, shape errors, init distributions, and finite-difference
gradient checks (float64) of every layer's forward."""

import importlib
import math

import numpy as np
import pytest

import minigan as mg
import minigan.nn as nn
from tests.gradcheck import check_gradients
from tests.strategies import random_array

DEVICE = "numpy"
F64 = dict(device=DEVICE, dtype=np.float64)


def tensor(array, **kwargs):
    return mg.tensor(array, device=DEVICE, **kwargs)


def conv_bn_net(seed=0):
    g = mg.Generator(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1, generator=g, device=DEVICE),
        nn.BatchNorm2d(4, device=DEVICE),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 2, generator=g, device=DEVICE),
    )


# ----------------------------------------------------------------------------- names, order


def test_names_and_order_match_pytorch():
    model = conv_bn_net()
    # the keys torch.nn gives the same Sequential (parameters, then buffers, per module)
    assert list(model.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked", "4.weight", "4.bias",
    ]
    assert [name for name, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias",
    ]
    assert [name for name, _ in model.named_buffers()] == [
        "1.running_mean", "1.running_var", "1.num_batches_tracked",
    ]
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes["0.weight"] == (4, 1, 3, 3) and shapes["4.weight"] == (2, 36)
    assert shapes["1.num_batches_tracked"] == ()
    assert model.state_dict()["1.num_batches_tracked"].dtype == np.int64
    assert len(list(model.parameters())) == 6 and len(list(model.buffers())) == 3


class Nested(nn.Module):
    """Own parameter, a submodule, a buffer and a shared layer, in that assignment order."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(mg.ones(1, device=DEVICE))
        self.body = nn.Sequential(nn.Linear(2, 3, device=DEVICE), nn.ReLU())
        self.register_buffer("count", mg.zeros(1, device=DEVICE))
        self.register_buffer("scratch", mg.zeros(1, device=DEVICE), persistent=False)
        self.head = nn.Linear(3, 1, device=DEVICE)
        self.tied = self.head  # the same module twice: its parameters count once

    def forward(self, x):
        return self.tied(self.body(x)) * self.scale


def test_nested_registration_and_traversal():
    model = Nested()
    # state_dict: own parameters, own persistent buffers, then children (PyTorch's order)
    assert list(model.state_dict()) == [
        "scale", "count", "body.0.weight", "body.0.bias", "head.weight", "head.bias",
        "tied.weight", "tied.bias",
    ]
    assert [n for n, _ in model.named_parameters()] == [
        "scale", "body.0.weight", "body.0.bias", "head.weight", "head.bias",
    ]
    assert [n for n, _ in model.named_buffers()] == ["count", "scratch"]
    assert [type(m).__name__ for m in model.children()] == ["Sequential", "Linear"]
    assert [n for n, _ in model.named_modules()] == ["", "body", "body.0", "body.1", "head"]
    assert model(tensor(np.ones((4, 2), np.float32))).shape == (4, 1)
    # assigning a plain value to a registered parameter name is refused
    with pytest.raises(TypeError, match="parameter 'scale'"):
        model.scale = 3.0
    del model.head
    assert "head.weight" not in model.state_dict()


def test_optional_parameters_are_absent_from_state():
    # torch's keys for the same layers (BatchNorm's keyword-only bias is torch >= 2.13's)
    assert list(nn.BatchNorm2d(3, bias=False).state_dict()) == [
        "weight", "running_mean", "running_var", "num_batches_tracked",
    ]
    assert list(nn.BatchNorm2d(3, affine=False).state_dict()) == [
        "running_mean", "running_var", "num_batches_tracked",
    ]
    assert list(nn.Conv2d(1, 2, 3, bias=False).state_dict()) == ["weight"]
    assert nn.Linear(2, 2, bias=False).bias is None


def test_module_needs_init_first():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mg.ones(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_a_layer_called_with_a_numpy_array_asks_for_a_tensor():
    layer = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(TypeError, match=r"Sequential takes a minigan Tensor, got a "
                                        r"numpy.ndarray of shape \(4, 3\).*minigan.tensor"):
        layer(np.zeros((4, 3), dtype=np.float32))
    assert layer(mg.tensor(np.zeros((4, 3), dtype=np.float32))).shape == (4, 2)


def test_repr_matches_pytorch():
    model = nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1, bias=False, device=DEVICE),
        nn.BatchNorm2d(32, device=DEVICE),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(32, 3, 4, 2, 1, output_padding=1, device=DEVICE),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(8, 1, device=DEVICE),
        nn.Upsample(scale_factor=2),
        nn.Tanh(),
    )
    # torch 2.13 prints exactly this for the same layers
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 32, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)\n"
        "  (1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True)\n"
        "  (2): LeakyReLU(negative_slope=0.2)\n"
        "  (3): ConvTranspose2d(32, 3, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), "
        "output_padding=(1, 1))\n"
        "  (4): Dropout(p=0.3, inplace=False)\n"
        "  (5): Flatten(start_dim=1, end_dim=-1)\n"
        "  (6): Linear(in_features=8, out_features=1, bias=True)\n"
        "  (7): Upsample(scale_factor=2.0, mode='nearest')\n"
        "  (8): Tanh()\n"
        ")"
    )


def test_sequential_indexing():
    model = conv_bn_net()
    assert len(model) == 5
    assert isinstance(model[0], nn.Conv2d) and isinstance(model[-1], nn.Linear)
    head = model[3:]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert list(head.state_dict()) == ["4.weight", "4.bias"]  # names kept, like PyTorch
    assert [type(m).__name__ for m in model] == [
        "Conv2d", "BatchNorm2d", "LeakyReLU", "Flatten", "Linear",
    ]
    with pytest.raises(IndexError, match="index 5 out of range for length 5"):
        model[5]


# ----------------------------------------------------------------------------- state_dict


def test_state_dict_round_trip_copies_in_place():
    source, target = conv_bn_net(seed=1), conv_bn_net(seed=2)
    source.train()
    source(tensor(random_array(0, (3, 1, 6, 6), np.float32)))  # move the running stats
    state = source.state_dict()
    arrays_before = [p.array for p in target.parameters()] + [b.array for b in target.buffers()]
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    # the same array objects, now holding the source's values (optimizers keep views)
    after = [p.array for p in target.parameters()] + [b.array for b in target.buffers()]
    assert all(a is b for a, b in zip(arrays_before, after))
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)
    assert int(target[1].num_batches_tracked.item()) == 1
    source.eval(), target.eval()
    x = tensor(random_array(1, (2, 1, 6, 6), np.float32))
    np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())
    # the state_dict is a snapshot: later training does not change it
    snapshot = source.state_dict()["0.weight"].copy()
    source[0].weight.array[...] += 1
    np.testing.assert_array_equal(state["0.weight"], snapshot)


def test_load_state_dict_accepts_tensors_and_casts():
    model = nn.Linear(2, 3, device=DEVICE)
    state = {"weight": tensor(np.ones((3, 2))), "bias": np.arange(3.0)}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32
    np.testing.assert_array_equal(model.bias.numpy(), [0, 1, 2])


def test_load_state_dict_strict_errors():
    model = conv_bn_net()
    state = model.state_dict()
    del state["1.running_var"]
    state["5.weight"] = np.zeros(3)
    state["0.weight"] = np.zeros((4, 2, 3, 3))
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(state)
    text = str(error.value)
    assert text.startswith("Error(s) in loading state_dict for Sequential:")
    assert 'Missing key(s) in state_dict: "1.running_var".' in text
    assert 'Unexpected key(s) in state_dict: "5.weight".' in text
    assert ("size mismatch for 0.weight: copying a value with shape (4, 2, 3, 3) from the "
            "state_dict, the shape in the current model is (4, 1, 3, 3)") in text
    # nothing was copied: the load is all or nothing
    assert not np.any(model[4].weight.numpy() == 0)

    # strict=False tolerates missing and unexpected keys (and reports them) but not shapes
    state["0.weight"] = np.zeros((4, 1, 3, 3))
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["1.running_var"]
    assert result.unexpected_keys == ["5.weight"]
    np.testing.assert_array_equal(model[0].weight.numpy(), 0)
    state["0.weight"] = np.zeros(3)
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        model.load_state_dict(state, strict=False)


# ----------------------------------------------------------------------------- modes


def test_batch_norm_train_and_eval():
    layer = nn.BatchNorm2d(3, momentum=0.5, **F64)
    layer.weight.array[...] = [1.0, 2.0, 3.0]
    layer.bias.array[...] = [0.0, -1.0, 1.0]
    x = random_array(3, (4, 3, 2, 2)) * 2 + 1
    assert layer.training
    y = layer(tensor(x)).numpy()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    expected = expected * np.array([1, 2, 3])[:, None, None] + np.array([0, -1, 1])[:, None, None]
    # float64 throughout: agreement to ~1e-15 relative, 1e-12 leaves room
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    unbiased = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.5 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var.numpy(), 0.5 + 0.5 * unbiased, rtol=1e-12)
    assert int(layer.num_batches_tracked.item()) == 1

    layer.eval()
    running_mean = layer.running_mean.numpy().copy()
    running_var = layer.running_var.numpy().copy()
    z = layer(tensor(x)).numpy()
    expected = (x - running_mean[:, None, None]) / np.sqrt(running_var[:, None, None] + 1e-5)
    expected = expected * np.array([1, 2, 3])[:, None, None] + np.array([0, -1, 1])[:, None, None]
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(layer.running_mean.numpy(), running_mean)
    assert int(layer.num_batches_tracked.item()) == 1


def test_batch_norm_cumulative_average_and_no_tracking():
    layer = nn.BatchNorm1d(2, momentum=None, **F64)
    batches = [random_array(s, (5, 2)) + s for s in range(3)]
    for b in batches:
        layer(tensor(b))
    # momentum=None: the running mean is the plain average of the batch means
    expected = np.mean([b.mean(axis=0) for b in batches], axis=0)
    np.testing.assert_allclose(layer.running_mean.numpy(), expected, rtol=1e-12)

    untracked = nn.BatchNorm1d(2, track_running_stats=False, **F64).eval()
    assert list(untracked.state_dict()) == ["weight", "bias"]
    y = untracked(tensor(batches[0])).numpy()  # batch statistics even in eval mode
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        untracked(tensor(np.ones((1, 2))))


def test_train_eval_switches_dropout_and_whole_tree():
    model = nn.Sequential(nn.Linear(4, 4, device=DEVICE),
                          nn.Dropout(0.5, generator=mg.Generator(0)))
    x = tensor(np.ones((50, 4), np.float32))
    y = model(x).numpy()
    zeros = np.mean(y == 0)
    assert 0.3 < zeros < 0.7  # 200 Bernoulli(0.5) draws: 0.5 +- 5 standard deviations
    model.eval()
    assert not model[0].training and not model[1].training
    expected = model[0](x).numpy()
    np.testing.assert_array_equal(model(x).numpy(), expected)
    model.train()
    assert model[1].training


def test_instance_norm_defaults():
    layer = nn.InstanceNorm2d(2, **F64)
    assert list(layer.state_dict()) == []
    x = random_array(4, (2, 2, 3, 3)) * 3 + 2
    y = layer.eval()(tensor(x)).numpy()  # no running stats: eval normalises per instance too
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, rtol=1e-4)  # eps 1e-5 / var ~ 9
    tracked = nn.InstanceNorm2d(2, affine=True, track_running_stats=True, **F64)
    assert list(tracked.state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked",
    ]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("layer, shape, message", [
    (lambda: nn.Linear(2, 4), (64, 3),
     "Linear: input has 3 features, layer expects 2 (input (64, 3))"),
    (lambda: nn.Conv2d(1, 32, 4), (64, 3, 28, 28),
     "Conv2d: input has 3 channels, layer expects 1 (input (64, 3, 28, 28), "
     "weight (32, 1, 4, 4))"),
    (lambda: nn.Conv2d(1, 2, 3), (2, 1, 8),
     "Conv2d: expected a 4-d input (N, C, H, W), got shape (2, 1, 8)"),
    (lambda: nn.Conv2d(1, 2, 5, padding=1), (2, 1, 2, 9),
     "Conv2d: input (2, 1, 2, 9) is smaller than the kernel: padded size 4 along axis 2, "
     "dilated kernel size 5"),
    (lambda: nn.ConvTranspose2d(3, 2, 4), (1, 2, 5, 5),
     "ConvTranspose2d: input has 2 channels, layer expects 3 (input (1, 2, 5, 5), "
     "weight (3, 2, 4, 4))"),
    (lambda: nn.BatchNorm2d(4), (2, 3, 5, 5),
     "BatchNorm2d: input has 3 channels, layer expects 4 (input (2, 3, 5, 5))"),
    (lambda: nn.BatchNorm1d(4), (2, 4, 5, 5),
     "BatchNorm1d: expected input of shape (N, C) or (N, C, L), got shape (2, 4, 5, 5)"),
    (lambda: nn.Unflatten(1, (2, 5)), (3, 12),
     "Unflatten: dim 1 of input (3, 12) has size 12, which cannot be split into (2, 5)"),
    (lambda: nn.Reshape(4, 4), (3, 12),
     "Reshape: input (3, 12) has 12 values per sample, which cannot be reshaped to (4, 4)"),
    (lambda: nn.ReflectionPad2d(3), (1, 1, 3, 5),
     "ReflectionPad2d: padding (3, 3, 3, 3) must be smaller than the input's width and "
     "height (input (1, 1, 3, 5))"),
])
def test_shape_errors_name_layer_and_shapes(layer, shape, message):
    with pytest.raises(ValueError) as error:
        layer()(tensor(np.zeros(shape, np.float32)))
    assert str(error.value) == message


def test_constructor_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="Dropout: p must be in"):
        nn.Dropout(1.5)


# ----------------------------------------------------------------------------- init


def test_default_init_is_pytorchs():
    g = mg.Generator(0)
    layer = nn.Linear(400, 300, generator=g, device=DEVICE)
    # kaiming_uniform(a=sqrt(5)): gain sqrt(2 / 6), bound = gain * sqrt(3 / fan_in)
    # = 1 / sqrt(fan_in); the bias uses the same bound
    bound = 1 / math.sqrt(400)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(w).max() <= bound and w.max() > 0.99 * bound
    assert np.abs(b).max() <= bound
    # std of U(-a, a) is a / sqrt(3); with 120000 samples the estimate is within ~0.2%
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.02)

    conv = nn.ConvTranspose2d(8, 6, 3, generator=g, device=DEVICE)
    # PyTorch computes fan_in from weight.shape[1] * kh * kw, also for transposed convs
    bound = 1 / math.sqrt(6 * 9)
    assert np.abs(conv.weight.numpy()).max() <= bound
    assert np.abs(conv.bias.numpy()).max() <= bound


def test_init_is_seeded():
    a = nn.Conv2d(3, 4, 3, generator=mg.Generator(5), device=DEVICE)
    b = nn.Conv2d(3, 4, 3, generator=mg.Generator(5), device=DEVICE)
    c = nn.Conv2d(3, 4, 3, generator=mg.Generator(6), device=DEVICE)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    assert not np.array_equal(a.weight.numpy(), c.weight.numpy())
    mg.manual_seed(3)
    first = nn.Linear(3, 3, device=DEVICE).weight.numpy().copy()
    mg.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(3, 3, device=DEVICE).weight.numpy(), first)


@pytest.mark.parametrize("name, kwargs, expected_std", [
    ("normal_", dict(mean=0.5, std=0.02), 0.02),
    ("xavier_normal_", dict(gain=2.0), 2.0 * math.sqrt(2 / (200 + 300))),
    ("xavier_uniform_", dict(), math.sqrt(2 / (200 + 300))),
    ("kaiming_normal_", dict(a=0.2), math.sqrt(2 / (1 + 0.04)) / math.sqrt(300)),
    ("kaiming_uniform_", dict(nonlinearity="relu", mode="fan_out"),
     math.sqrt(2) / math.sqrt(200)),
])
def test_init_distributions(name, kwargs, expected_std):
    t = mg.zeros(200, 300, device=DEVICE)
    getattr(nn.init, name)(t, generator=mg.Generator(1), **kwargs)
    values = t.numpy()
    # 60000 samples: relative error of the std estimate ~ 1/sqrt(2n) = 0.3%; 2% is 7 sigma
    np.testing.assert_allclose(values.std(), expected_std, rtol=0.02)
    np.testing.assert_allclose(values.mean(), kwargs.get("mean", 0.0),
                               atol=5 * expected_std / math.sqrt(values.size))


def test_init_helpers():
    assert nn.init.calculate_gain("relu") == math.sqrt(2)
    assert nn.init.calculate_gain("tanh") == 5 / 3
    assert nn.init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    t = mg.zeros(3, 2, device=DEVICE)
    np.testing.assert_array_equal(nn.init.constant_(t, 0.25).numpy(), 0.25)
    np.testing.assert_array_equal(nn.init.ones_(t).numpy(), 1.0)
    with pytest.raises(ValueError, match="at least 2 dims"):
        nn.init.xavier_uniform_(mg.zeros(3, device=DEVICE))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


# ----------------------------------------------------------------------------- devices, dtypes


def test_double_float_and_grad():
    model = conv_bn_net()
    params = list(model.parameters())
    model.double()
    assert [p is q for p, q in zip(params, model.parameters())] == [True] * len(params)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_var.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64  # integers keep their dtype
    out = model(tensor(random_array(0, (2, 1, 6, 6)))).sum()
    out.backward()
    assert all(p.grad is not None and p.grad.dtype == np.float64 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert isinstance(model[0].weight, nn.Parameter) and model[0].weight.requires_grad


def test_to_other_device_keeps_parameter_objects():
    model = nn.Linear(2, 2, device="numpy")
    weight = model.weight
    other = "cpu" if "cpu" in mg.available_devices() else "numpy"
    model.to(other)
    assert model.weight is weight and weight.device == other


# ----------------------------------------------------------------------------- gradients


def call_with(layer, names, x, *params):
    """layer(x) with its parameters `names` replaced by the given tensors, so a finite-
    difference check can differentiate with respect to them."""
    saved = dict(layer._parameters)
    layer._parameters.update(zip(names, params))
    try:
        return layer(x)
    finally:
        layer._parameters.update(saved)


def away_from_zero(array, margin=0.1):
    """Keep a finite-difference step from crossing the kink of relu-like layers at 0."""
    return np.where(np.abs(array) < margin, np.copysign(margin, array), array)


LAYERS = [
    ("linear", lambda: nn.Linear(3, 2, **F64), (4, 3)),
    ("conv2d", lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, **F64), (2, 2, 5, 5)),
    ("conv2d_groups", lambda: nn.Conv2d(2, 4, 2, groups=2, dilation=2, bias=False, **F64),
     (1, 2, 4, 4)),
    ("conv_transpose2d", lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1,
                                                    output_padding=1, **F64), (1, 2, 3, 3)),
    ("batch_norm2d", lambda: nn.BatchNorm2d(2, **F64), (3, 2, 2, 2)),
    ("batch_norm1d", lambda: nn.BatchNorm1d(3, **F64), (4, 3)),
    ("batch_norm2d_eval", lambda: nn.BatchNorm2d(2, **F64).eval(), (2, 2, 2, 2)),
    ("instance_norm2d", lambda: nn.InstanceNorm2d(2, affine=True, **F64), (2, 2, 3, 3)),
    ("relu", lambda: nn.ReLU(), (3, 4)),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), (3, 4)),
    ("tanh", lambda: nn.Tanh(), (3, 4)),
    ("sigmoid", lambda: nn.Sigmoid(), (3, 4)),
    ("flatten", lambda: nn.Flatten(), (2, 2, 2, 2)),
    ("unflatten", lambda: nn.Unflatten(1, (2, 2)), (3, 4)),
    ("reshape", lambda: nn.Reshape(2, 2), (3, 4)),
    ("reflection_pad", lambda: nn.ReflectionPad2d((1, 2, 0, 1)), (1, 2, 3, 3)),
    ("zero_pad", lambda: nn.ZeroPad2d(1), (1, 1, 2, 3)),
    ("upsample", lambda: nn.Upsample(scale_factor=2), (1, 2, 2, 2)),
    ("identity", lambda: nn.Identity(7, key="ignored"), (2, 3)),
]


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[entry[0] for entry in LAYERS])
def test_layer_gradients(name, make, shape):
    layer = make()
    names = [n for n, _ in layer.named_parameters()]
    for k, p in enumerate(layer.parameters()):  # not the init values: bias 0, scale 1
        p.array[...] = random_array(10 + k, p.shape)
    if name == "batch_norm2d_eval":
        layer.running_mean.array[...] = [0.5, -0.5]
        layer.running_var.array[...] = [2.0, 0.5]
    x = away_from_zero(random_array(1, shape))
    arrays = [x] + [p.numpy().copy() for p in layer.parameters()]
    check_gradients(lambda x, *ps: call_with(layer, names, x, *ps), *arrays, device=DEVICE)


# ----------------------------------------------------------------------------- torch


def test_state_dicts_and_outputs_match_torch():
    """The same layers in torch.nn: identical keys, shapes and reprs; our weights loaded into
    torch (and torch's into ours) give the same outputs and running statistics."""
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1, device=DEVICE),
        nn.BatchNorm2d(4, device=DEVICE),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False, device=DEVICE),
        nn.InstanceNorm2d(3, affine=True, device=DEVICE),
        nn.Flatten(),
        nn.Linear(3 * 6 * 6, 2, device=DEVICE),
        nn.BatchNorm1d(2, momentum=None, device=DEVICE),
        nn.Tanh(),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, stride=2, padding=1), torch.nn.BatchNorm2d(4),
        torch.nn.LeakyReLU(0.2), torch.nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False),
        torch.nn.InstanceNorm2d(3, affine=True), torch.nn.Flatten(),
        torch.nn.Linear(3 * 6 * 6, 2), torch.nn.BatchNorm1d(2, momentum=None),
        torch.nn.Tanh(),
    )
    assert repr(ours) == repr(theirs)
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert state[key].shape == tuple(value.shape), key
    theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()})

    for step in range(2):  # training mode twice: running stats and the cumulative average
        x = random_array(step, (3, 2, 6, 6), np.float32)
        ours_out = ours(tensor(x)).numpy()
        theirs_out = theirs(torch.tensor(x)).detach().numpy()
        # float32 through ~6 layers of values of order 1: a few 1e-7 relative each
        np.testing.assert_allclose(ours_out, theirs_out, rtol=1e-4, atol=1e-5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=key)
    ours.eval(), theirs.eval()
    x = random_array(5, (2, 2, 6, 6), np.float32)
    np.testing.assert_allclose(ours(tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    # and back: torch's state_dict loads into ours as it is
    theirs.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    ours.load_state_dict(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy(), err_msg=key)


# ----------------------------------------------------------------------------- fusion


def _graph_nodes(out: mg.Tensor) -> list:
    """The Functions recorded behind a Tensor (each once)."""
    seen, stack, nodes = set(), [out._ctx], []
    while stack:
        ctx = stack.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        nodes.append(ctx)
        stack.extend(t._ctx for t in ctx.inputs)
    return nodes


def _mlp(device):
    gen = mg.manual_seed(3)
    return nn.Sequential(
        nn.Linear(3, 8, generator=gen), nn.LeakyReLU(0.2), nn.Linear(8, 8, generator=gen),
        nn.ReLU(), nn.Linear(8, 5, generator=gen), nn.Sigmoid(), nn.Linear(5, 2, bias=False,
                                                                           generator=gen),
        nn.Tanh(),
    ).to(device, dtype=np.float64)


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_sequential_fuses_linear_and_activation(device):
    """Each Linear + activation pair runs as one op (one graph node per layer), with the
    values and gradients of applying the modules one by one."""
    net = _mlp(device)
    x = mg.tensor(random_array(4, (6, 3)), device=device, requires_grad=True)

    def run(forward):
        for p in net.parameters():
            p.grad = None
        x.grad = None
        y = forward(x)
        (y * y).sum().backward()
        return y, [y.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in net.parameters()]

    fused, fused_values = run(net)

    def one_by_one(t):
        for module in net:
            t = module(t)
        return t

    plain, plain_values = run(one_by_one)
    assert len(_graph_nodes(net(x))) == 4
    assert len(_graph_nodes(one_by_one(x))) == 4 * 2  # Linear, then the activation
    for a, b in zip(fused_values, plain_values):
        # the same operations; BLAS may order a weight gradient's batch sum differently
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_sequential_does_not_bypass_a_linear_subclass():
    class Scaled(nn.Linear):
        def forward(self, input):
            return super().forward(input) * 2.0

    gen = mg.manual_seed(0)
    layer = Scaled(2, 3, generator=gen)
    net = nn.Sequential(layer, nn.ReLU())
    x = mg.tensor(random_array(5, (4, 2), np.float32))
    expected = np.maximum(2.0 * (x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()), 0)
    np.testing.assert_allclose(net(x).numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_sequential_fuses_batch_norm_and_activation(device):
    """A DCGAN-style block: BatchNorm2d + ReLU and BatchNorm2d + LeakyReLU each run as one
    op, with the values and gradients of the modules one by one (float64)."""
    gen = mg.manual_seed(4)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, 1, 1, bias=False, generator=gen), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 3, 3, 2, 1, bias=False, generator=gen), nn.BatchNorm2d(3),
        nn.LeakyReLU(0.2),
    ).to(device, dtype=np.float64)
    x = mg.tensor(random_array(6, (3, 2, 5, 5)), device=device, requires_grad=True)

    def one_by_one(t):
        for module in net:
            t = module(t)
        return t

    values = []
    for forward in (net, one_by_one):
        for p in net.parameters():
            p.grad = None
        x.grad = None
        y = forward(x)
        (y * y).sum().backward()
        values.append([y.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in net.parameters()])
    assert len(_graph_nodes(net(x))) == 4  # conv, bn+relu, conv, bn+leaky relu
    for fused, plain in zip(*values):
        np.testing.assert_allclose(fused, plain, rtol=1e-10, atol=1e-12)


def test_mlp_hidden_layers_on_the_fused_cpu_loops_match_the_numpy_device(monkeypatch):
    """A GAN-sized MLP in float32 on the cpu device, its 64-wide hidden layers on the fused
    loops in two blocks of rows (kernels/cpu/linear.py): the loss and every parameter's
    gradient against the numpy device, and bit for bit against the same net on the
    separate cpu kernels (a run must be the same run with or without the fused loops).
    Each value is a few products of 2-128 terms deep, so float32 rounding (u = 6e-8)
    moves it by ~1e-5 of the largest entry; a wrong block, partial sum or bias would move
    it by O(1)."""
    numba = pytest.importorskip("numba")
    linear = importlib.import_module("minigan.kernels.cpu.linear")
    calls = []

    def counted(pair):
        def wrap(compiled):
            def run(*args):
                calls.append(compiled)
                return compiled(*args)
            return run
        return tuple(wrap(c) for c in pair)

    monkeypatch.setattr(linear, "_LINEAR_ACT_BLOCKS", counted(linear._LINEAR_ACT_BLOCKS))
    monkeypatch.setattr(linear, "_LINEAR_GRADS_BLOCKS", counted(linear._LINEAR_GRADS_BLOCKS))
    # 128 x 64 gradient rows in two blocks, as 512-row batches are at the real threshold
    monkeypatch.setattr(importlib.import_module("minigan.kernels.cpu._util"),
                        "ROWS_PARALLEL_MIN_ELEMENTS", 1)
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    results = {}
    try:
        for device, fused in (("numpy", False), ("cpu", True), ("cpu", False)):
            monkeypatch.setattr(linear, "FUSED_LINEAR", fused)
            gen = mg.manual_seed(11)
            net = nn.Sequential(
                nn.Linear(2, 64, generator=gen), nn.LeakyReLU(0.2),
                nn.Linear(64, 64, generator=gen), nn.LeakyReLU(0.2),
                nn.Linear(64, 64, generator=gen), nn.ReLU(), nn.Linear(64, 1, generator=gen),
            ).to(device)
            x = mg.tensor(random_array(12, (128, 2), np.float32), device=device)
            loss = (net(x) ** 2).mean()
            loss.backward()
            results[device, fused] = [loss.numpy()] + [p.grad.numpy() for p in net.parameters()]
    finally:
        numba.set_num_threads(before)
    assert len(calls) == 4  # two hidden layers, forward and backward, once (fused on)
    for got, want in zip(results["cpu", True], results["numpy", False]):
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * scale)
    for got, want in zip(results["cpu", True], results["cpu", False]):
        np.testing.assert_array_equal(got, want)
