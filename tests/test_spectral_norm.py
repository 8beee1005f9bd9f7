"""nn.utils.spectral_norm / remove_spectral_norm: PyTorch's state-dict layout, outputs,
power-iteration updates and gradients (torch as the oracle), and finite-difference gradients
of first and second order in float64."""

import types

import numpy as np
import pytest

import minigan as mg
import minigan.functional as F
from minigan import nn
from minigan.nn.spectral_norm import SpectralNorm
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array

LAYERS = {
    "linear": (lambda: nn.Linear(5, 4), (3, 5)),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(3, 2, 4, 2, 1), (2, 3, 3, 3)),
}


def _torch_layer(torch, name):
    return {"linear": lambda: torch.nn.Linear(5, 4),
            "conv2d": lambda: torch.nn.Conv2d(2, 3, 3, padding=1),
            "conv_transpose2d": lambda: torch.nn.ConvTranspose2d(3, 2, 4, 2, 1)}[name]()


def test_keys_buffers_and_default_dim():
    layer = nn.utils.spectral_norm(nn.Linear(5, 4, generator=mg.Generator(0)))
    assert list(layer.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert [n for n, _ in layer.named_parameters()] == ["bias", "weight_orig"]
    assert layer.weight_u.shape == (4,) and layer.weight_v.shape == (5,)
    assert not layer.weight_u.requires_grad
    np.testing.assert_allclose(np.linalg.norm(layer.weight_u.numpy()), 1.0, rtol=1e-6)
    # ConvTranspose2d's weight is (in, out, kh, kw): PyTorch normalises along dim 1
    transposed = nn.utils.spectral_norm(nn.ConvTranspose2d(3, 2, 4))
    assert transposed.weight_u.shape == (2,) and transposed.weight_v.shape == (3 * 16,)


def test_errors():
    layer = nn.utils.spectral_norm(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="two spectral_norm hooks"):
        nn.utils.spectral_norm(layer)
    with pytest.raises(ValueError, match="has no parameter 'scale'"):
        nn.utils.spectral_norm(nn.Linear(2, 2), name="scale")
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(nn.Linear(2, 2))


def test_power_iteration_only_in_training_and_sigma_converges():
    layer = nn.utils.spectral_norm(nn.Linear(6, 5, generator=mg.Generator(1)),
                                   generator=mg.Generator(2))
    x = mg.randn(4, 6, generator=mg.Generator(3))
    layer.eval()
    u = layer.weight_u.numpy().copy()
    layer(x)
    np.testing.assert_array_equal(layer.weight_u.numpy(), u)  # eval: u and v untouched
    layer.train()
    for _ in range(50):
        layer(x)
    assert not np.array_equal(layer.weight_u.numpy(), u)
    # after 50 power iterations the normalised weight's largest singular value is 1; the
    # ratio of the two top singular values of this random 5x6 matrix makes the error tiny
    top = np.linalg.svd(layer.weight.numpy().astype(np.float64), compute_uv=False)[0]
    np.testing.assert_allclose(top, 1.0, rtol=1e-4)


def test_hook_runs_inside_a_fused_sequential():
    linear = nn.Linear(3, 4, generator=mg.Generator(0))
    model = nn.Sequential(linear, nn.LeakyReLU(0.2))  # Linear + activation run as one op
    nn.utils.spectral_norm(linear, generator=mg.Generator(1))
    x = mg.randn(2, 3, generator=mg.Generator(2))
    out = model(x).numpy()
    expected = F.leaky_relu(F.linear(x, linear.weight, linear.bias), 0.2).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    sigma = np.linalg.norm(linear.weight_orig.numpy() / linear.weight.numpy(), axis=None)
    assert sigma > 0 and not np.allclose(linear.weight.numpy(), linear.weight_orig.numpy())


def test_remove_keeps_the_normalised_weight():
    layer = nn.utils.spectral_norm(nn.Linear(4, 3, generator=mg.Generator(0)))
    x = mg.randn(2, 4, generator=mg.Generator(1))
    layer(x)
    layer.eval()
    before = layer(x).numpy()
    nn.utils.remove_spectral_norm(layer)
    assert list(layer.state_dict()) == ["bias", "weight"]
    assert isinstance(layer.weight, nn.Parameter)
    np.testing.assert_allclose(layer(x).numpy(), before, rtol=1e-6)


# ----------------------------------------------------------------------------- gradients


def _sn_weight(w, u, v):
    """weight / sigma with fixed u, v, through the hook's own code."""
    holder = types.SimpleNamespace(weight_orig=w, weight_u=u, weight_v=v, training=False)
    return SpectralNorm("weight", 0, 0, 1e-12).compute_weight(holder, False)


def _uv(shape, seed=0):
    t = lambda a: mg.tensor(a, dtype=np.float64, device="numpy")  # noqa: E731
    u = random_array(seed, shape[:1])
    v = random_array(seed + 1, (int(np.prod(shape[1:])),))
    return t(u / np.linalg.norm(u)), t(v / np.linalg.norm(v))


def test_gradients_and_double_gradients():
    w, x = random_array(0, (4, 5)), random_array(1, (3, 5))
    u, v = _uv(w.shape)

    def layer(wt, xt):
        return F.linear(xt, _sn_weight(wt, u, v))

    check_gradients(layer, w, x)
    check_double_gradients(lambda wt, xt: layer(wt, xt) ** 2, w, x)


def test_gradient_of_an_input_gradient_penalty():
    """R1 / WGAN-GP through a normalised layer: d/dw of |d sum(tanh(layer(x))) / dx|^2."""
    w, x = random_array(2, (4, 5)), random_array(3, (3, 5))
    u, v = _uv(w.shape, seed=4)

    def penalty(wt):
        xt = mg.tensor(x, dtype=np.float64, requires_grad=True, device="numpy")
        with mg.enable_grad():
            out = F.tanh(F.linear(xt, _sn_weight(wt, u, v))).sum()
            (gx,) = mg.grad(out, [xt], create_graph=True)
        return (gx * gx).sum(axis=1)

    check_gradients(penalty, w)


# ----------------------------------------------------------------------------- torch


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("iterations", [1, 3])
def test_matches_torch(name, iterations):
    torch = pytest.importorskip("torch", reason="PyTorch is the outside oracle; not installed")
    build, input_shape = LAYERS[name]
    ours = nn.utils.spectral_norm(build().double().to("numpy"), n_power_iterations=iterations,
                                  generator=mg.Generator(0))
    theirs = torch.nn.utils.spectral_norm(_torch_layer(torch, name).double(),
                                          n_power_iterations=iterations)
    assert list(theirs.state_dict()) == list(ours.state_dict())
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = random_array(5, input_shape)
    g = None
    for mode in ("train", "train", "eval"):  # two updates of u and v, then a frozen forward
        getattr(ours, mode)()
        getattr(theirs, mode)()
        xt = mg.tensor(x, dtype=np.float64, requires_grad=True, device="numpy")
        out = ours(xt)
        g = random_array(6, out.shape) if g is None else g
        (out * mg.tensor(g, dtype=np.float64, device="numpy")).sum().backward()
        tx = torch.tensor(x, requires_grad=True)
        theirs_out = theirs(tx)
        (theirs_out * torch.tensor(g)).sum().backward()
        # float64 throughout: only rounding of a few dozen products separates the two
        np.testing.assert_allclose(out.numpy(), theirs_out.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
        for key in ("weight_u", "weight_v"):
            np.testing.assert_allclose(getattr(ours, key).numpy(),
                                       getattr(theirs, key).numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.weight_orig.grad.numpy(),
                                   theirs.weight_orig.grad.numpy(), rtol=1e-9, atol=1e-12)
        ours.zero_grad()
        theirs.zero_grad()
