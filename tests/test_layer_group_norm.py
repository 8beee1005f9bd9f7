"""LayerNorm and GroupNorm: group_norm against a hand computation, gradients and gradients
of gradients by finite differences, the layers' parameters, state_dict keys, reprs and
outputs against PyTorch on numpy and cpu, and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
import minigan.nn as nn
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array, seeds
from tests.torch_compare import compare_with_torch, devices, torch_or_skip

DEVICE = "numpy"


def t64(array):
    return mg.tensor(array, dtype=np.float64, device=DEVICE)


@st.composite
def group_configs(draw):
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 2))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    shape = (draw(st.integers(1, 2)), channels) + spatial
    if int(np.prod(shape[1:])) // groups < 2:  # at least 2 values per group
        shape = shape[:1] + (channels, 2) + spatial[1:]
    return shape, groups


@given(group_configs(), seeds(), st.sampled_from([1e-5, 0.1]))
def test_group_norm_matches_hand_computation(config, seed, eps):
    shape, groups = config
    x = random_array(seed, shape)
    weight, bias = random_array(seed + 1, shape[1:2]), random_array(seed + 2, shape[1:2])
    grouped = x.reshape(shape[0], groups, -1)
    mean, var = grouped.mean(axis=2, keepdims=True), grouped.var(axis=2, keepdims=True)
    expected = ((grouped - mean) / np.sqrt(var + eps)).reshape(shape)
    per_channel = (1, -1) + (1,) * (len(shape) - 2)
    expected = expected * weight.reshape(per_channel) + bias.reshape(per_channel)
    out = F.group_norm(t64(x), groups, t64(weight), t64(bias), eps).numpy()
    # float64 statistics of a few values: agreement to ~1e-14 relative
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=8)
@given(group_configs(), seeds())
def test_group_norm_gradients(config, seed):
    shape, groups = config
    x = random_array(seed, shape)
    weight, bias = random_array(seed + 1, shape[1:2]), random_array(seed + 2, shape[1:2])
    check_gradients(lambda a, w, b: F.group_norm(a, groups, w, b), x, weight, bias,
                    device=DEVICE)
    check_double_gradients(lambda a, w, b: F.group_norm(a, groups, w, b), x, weight, bias,
                           device=DEVICE)


def test_layer_norm_layer_double_gradients():
    layer = nn.LayerNorm((2, 3), dtype=np.float64, device=DEVICE)
    x = random_array(1, (2, 2, 3))
    weight, bias = random_array(2, (2, 3)), random_array(3, (2, 3))
    check_double_gradients(lambda a, w, b: F.layer_norm(a, layer.normalized_shape, w, b),
                           x, weight, bias, device=DEVICE)


@pytest.mark.parametrize("device", devices())
def test_functional_against_torch(device):
    torch = torch_or_skip()
    tf = torch.nn.functional
    x = random_array(4, (3, 6, 2, 3))
    w, b = random_array(5, (6,)), random_array(6, (6,))
    compare_with_torch(lambda a, w, b: F.group_norm(a, 3, w, b, 1e-3),
                       lambda a, w, b: tf.group_norm(a, 3, w, b, 1e-3), x, w, b, device=device)
    compare_with_torch(lambda a: F.group_norm(a, 2), lambda a: tf.group_norm(a, 2), x,
                       device=device)
    lw, lb = random_array(7, (2, 3)), random_array(8, (2, 3))
    compare_with_torch(lambda a, w, b: F.layer_norm(a, (2, 3), w, b),
                       lambda a, w, b: tf.layer_norm(a, (2, 3), w, b), x, lw, lb, device=device)


def test_layers_match_torch():
    torch = torch_or_skip()
    pairs = [
        (nn.LayerNorm(4), torch.nn.LayerNorm(4)),
        (nn.LayerNorm([2, 4], eps=1e-3, bias=False), torch.nn.LayerNorm([2, 4], eps=1e-3,
                                                                        bias=False)),
        (nn.LayerNorm(4, elementwise_affine=False), torch.nn.LayerNorm(4,
                                                                       elementwise_affine=False)),
        (nn.GroupNorm(2, 2), torch.nn.GroupNorm(2, 2)),
        (nn.GroupNorm(1, 2, affine=False), torch.nn.GroupNorm(1, 2, affine=False)),
        (nn.GroupNorm(2, 2, bias=False), torch.nn.GroupNorm(2, 2, bias=False)),
    ]
    x = random_array(9, (3, 2, 2, 4), np.float32)
    for ours, theirs in pairs:
        ours.to(DEVICE)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        with torch.no_grad():  # not the init values, so that the affine maps are tested
            for p in theirs.parameters():
                p.copy_(torch.randn(p.shape))
        ours.load_state_dict(theirs.state_dict())
        # float32 normalisation of a few values: a few ulps of O(1) results
        np.testing.assert_allclose(ours(mg.tensor(x, device=DEVICE)).numpy(),
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                                   atol=1e-5)
        ours.reset_parameters()
        theirs.reset_parameters()
        for key, value in theirs.state_dict().items():
            np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())


def test_errors():
    x = mg.zeros(2, 6, 3, device=DEVICE)
    with pytest.raises(ValueError, match=r"group_norm: num_groups=4 must divide the 6 channels"):
        F.group_norm(x, 4)
    with pytest.raises(ValueError, match="GroupNorm: num_groups=4 must divide num_channels=6"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"GroupNorm: expected input \(N, 4, \.\.\.\)"):
        nn.GroupNorm(2, 4, device=DEVICE)(x)
    with pytest.raises(ValueError, match=r"group_norm: input has 6 channels, weight has shape"):
        F.group_norm(x, 2, mg.ones(3, device=DEVICE))
    with pytest.raises(ValueError, match=r"layer_norm: input's trailing dimensions must be"):
        nn.LayerNorm(4, device=DEVICE)(x)
