"""GAN objectives: each loss against its closed form, stability at logits of +-1000, the
gradient penalty and R1 against hand computations on critics whose input-gradient is known,
and a finite-difference check of the penalty's gradient with respect to a conv critic's
weights (which runs through the double backward)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
from minigan.gan import objectives as O
from tests.gradcheck import check_gradients
from tests.strategies import arrays, random_array, seeds

DEVICE = "numpy"


def tensor(array, **kwargs):
    return mg.tensor(np.asarray(array, dtype=np.float64), device=DEVICE, **kwargs)


def log_sigmoid(x):
    return np.log(1 / (1 + np.exp(-x)))  # the plain formula: fine for |x| <= 20


def closed_forms(real, fake):
    """name -> (discriminator loss, generator loss), straight from the papers' formulas."""
    d_real, d_fake = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
    value = np.mean(np.log(d_real)) + np.mean(np.log(1 - d_fake))
    return {
        "minimax": (-value, np.mean(np.log(1 - d_fake))),
        "non_saturating": (-value, -np.mean(np.log(d_fake))),
        "wasserstein": (np.mean(fake) - np.mean(real), -np.mean(fake)),
        "hinge": (np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake)),
                  -np.mean(fake)),
        "lsgan": (0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake**2),
                  0.5 * np.mean((fake - 1) ** 2)),
    }


@given(arrays((5, 1), low=-20, high=20), arrays((7, 1), low=-20, high=20))
def test_losses_equal_closed_forms(real, fake):
    expected = closed_forms(real, fake)
    assert set(O.OBJECTIVES) == set(expected)
    for name, objective in O.OBJECTIVES.items():
        d_loss = objective.discriminator_loss(tensor(real), tensor(fake)).item()
        g_loss = objective.generator_loss(tensor(fake)).item()
        # float64; the plain formulas lose ~|x| e^-|x| relative accuracy at |x| = 20 through
        # 1 - sigmoid(x): 1e-7 absolute is far above that and far below any wrong term
        np.testing.assert_allclose(d_loss, expected[name][0], rtol=1e-9, atol=1e-7,
                                   err_msg=name)
        np.testing.assert_allclose(g_loss, expected[name][1], rtol=1e-9, atol=1e-7,
                                   err_msg=name)
    np.testing.assert_allclose(O.minimax_value(tensor(real), tensor(fake)).item(),
                               -expected["minimax"][0], rtol=1e-9, atol=1e-7)


@given(arrays((4,), low=-3, high=3), st.floats(-2, 2), st.floats(-2, 2), st.floats(-2, 2))
def test_lsgan_codings(fake, a, b, c):
    real = fake[::-1].copy()
    d_loss = O.lsgan_discriminator_loss(tensor(real), tensor(fake), a=a, b=b).item()
    g_loss = O.lsgan_generator_loss(tensor(fake), c=c).item()
    np.testing.assert_allclose(
        d_loss, 0.5 * np.mean((real - b) ** 2) + 0.5 * np.mean((fake - a) ** 2), rtol=1e-12)
    np.testing.assert_allclose(g_loss, 0.5 * np.mean((fake - c) ** 2), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_large_logits(dtype):
    big = 1000.0
    for name, objective in O.OBJECTIVES.items():
        for sign in (1.0, -1.0):
            real = mg.tensor(np.full((3, 1), sign * big), dtype=dtype, requires_grad=True,
                             device=DEVICE)
            fake = mg.tensor(np.full((3, 1), -sign * big), dtype=dtype, requires_grad=True,
                             device=DEVICE)
            loss = objective.discriminator_loss(real, fake) + objective.generator_loss(fake)
            loss.backward()
            assert np.isfinite(loss.item()), (name, sign)
            assert np.all(np.isfinite(real.grad.numpy())), (name, sign)
            assert np.all(np.isfinite(fake.grad.numpy())), (name, sign)
    # the exact values far out: softplus(x) = x for large x, 0 for very negative x
    right = O.minimax_discriminator_loss(tensor([[big]]), tensor([[-big]])).item()
    wrong = O.minimax_discriminator_loss(tensor([[-big]]), tensor([[big]])).item()
    assert right == 0.0 and wrong == 2 * big
    assert O.non_saturating_generator_loss(tensor([[-big]])).item() == big
    assert O.saturating_generator_loss(tensor([[-big]])).item() == 0.0


def test_saturating_loss_saturates():
    """The reason for the non-saturating loss (Goodfellow et al. 2014, sec. 3): when D rejects
    the fakes confidently, log(1 - D(G(z))) has a vanishing gradient, -log D(G(z)) does not."""
    for loss_fn, expected in ((O.saturating_generator_loss, 0.0),
                              (O.non_saturating_generator_loss, -1.0)):
        fake = tensor([[-30.0]], requires_grad=True)
        loss_fn(fake).backward()
        np.testing.assert_allclose(fake.grad.item(), expected, atol=1e-12)


def test_get_objective():
    assert O.get_objective("hinge") is O.OBJECTIVES["hinge"]
    with pytest.raises(ValueError, match="unknown objective 'wgan'"):
        O.get_objective("wgan")


# ----------------------------------------------------------------------------- penalties


class LinearCritic:
    """critic(x) = <w, x> + b per sample: its input-gradient is w wherever x is."""

    def __init__(self, w):
        self.w = w

    def __call__(self, x):
        return (x * self.w).reshape(x.shape[0], -1).sum(axis=1) + 0.5


class QuadraticCritic:
    """critic(x) = sum(a * x^2) per sample: its input-gradient is 2 a x."""

    def __init__(self, a):
        self.a = a

    def __call__(self, x):
        return (self.a * x * x).reshape(x.shape[0], -1).sum(axis=1)


@given(seeds(), st.floats(0.1, 3.0))
def test_gradient_penalty_on_linear_critic(seed, scale):
    w = tensor(random_array(seed, (2, 3, 3), scale=scale), requires_grad=True)
    real, fake = tensor(random_array(seed + 1, (4, 2, 3, 3))), tensor(random_array(seed + 2,
                                                                                  (4, 2, 3, 3)))
    penalty = O.gradient_penalty(LinearCritic(w), real, fake, mg.Generator(seed), weight=10.0)
    norm = np.linalg.norm(w.numpy())
    np.testing.assert_allclose(penalty.item(), 10.0 * (norm - 1) ** 2, rtol=1e-9)
    # its gradient with respect to the critic's weights needs the double backward:
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    penalty.backward()
    np.testing.assert_allclose(w.grad.numpy(), 20 * (norm - 1) * w.numpy() / norm, rtol=1e-9,
                               atol=1e-12)


def test_gradient_penalty_interpolates_per_sample():
    a = tensor(random_array(0, (1, 3)))
    real, fake = tensor(random_array(1, (5, 3))), tensor(random_array(2, (5, 3)))
    penalty = O.gradient_penalty(QuadraticCritic(a), real, fake, mg.Generator(9), weight=2.0)
    mix = mg.Generator(9).uniform((5, 1), np.float64)  # the same draws, one per sample
    x_hat = mix * real.numpy() + (1 - mix) * fake.numpy()
    norms = np.linalg.norm(2 * a.numpy() * x_hat, axis=1)
    np.testing.assert_allclose(penalty.item(), 2.0 * np.mean((norms - 1) ** 2), rtol=1e-9)
    # the same generator state gives the same penalty, another gives a different one
    again = O.gradient_penalty(QuadraticCritic(a), real, fake, mg.Generator(9), weight=2.0)
    other = O.gradient_penalty(QuadraticCritic(a), real, fake, mg.Generator(8), weight=2.0)
    assert again.item() == penalty.item() and other.item() != penalty.item()
    with pytest.raises(ValueError, match=r"real \(5, 3\) and fake \(4, 3\)"):
        O.gradient_penalty(QuadraticCritic(a), real, fake[:4])


def test_gradient_penalty_with_a_dead_critic_is_finite():
    w = tensor(np.zeros((1, 3)), requires_grad=True)  # input-gradient exactly 0
    penalty = O.gradient_penalty(LinearCritic(w), tensor(np.ones((2, 3))),
                                 tensor(np.zeros((2, 3))), mg.Generator(0))
    penalty.backward()
    # the norm is sqrt(0 + 1e-12) = 1e-6 here, not 0: the penalty is 10 (1 - 1e-6)^2
    np.testing.assert_allclose(penalty.item(), 10.0 * (1 - 1e-6) ** 2, rtol=1e-12)
    assert np.all(np.isfinite(w.grad.numpy()))


def r1_case():
    a = tensor(random_array(3, (2, 2, 2)), requires_grad=True)
    real = tensor(random_array(4, (3, 2, 2, 2)))
    # d/da gamma/2 mean_i sum (2 a x_i)^2 = gamma/2 * mean_i 8 a x_i^2
    expected_grad = 2.0 * np.mean(8 * a.numpy() * real.numpy() ** 2, axis=0)
    return a, real, O.r1_penalty(QuadraticCritic(a), real, gamma=4.0), expected_grad


def test_r1_penalty_on_quadratic_critic():
    a, real, penalty, expected_grad = r1_case()
    grads = 2 * a.numpy() * real.numpy()
    squared = (grads**2).reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(penalty.item(), 2.0 * squared.mean(), rtol=1e-12)
    np.testing.assert_allclose(mg.grad(penalty, a)[0].numpy(), expected_grad, rtol=1e-12)


def test_r1_penalty_backward_reaches_weights_through_forward_nodes():
    """What the trainer does: loss.backward() after the penalty's grad(create_graph=True).
    Here half of d/da runs through the forward node a * x, whose weight input the
    penalty's grad(..., x) did not need."""
    a, real, penalty, expected_grad = r1_case()
    penalty.backward()
    np.testing.assert_allclose(a.grad.numpy(), expected_grad, rtol=1e-12)
    assert real.grad is None  # the penalty differentiates a detached copy of the data


def test_gradient_penalty_double_backward_through_conv_critic():
    """End to end: conv2d + leaky_relu + linear critic; the gradient of the penalty with
    respect to the critic's weights (autograd through grad(..., create_graph=True)) against
    central differences of the penalty itself."""
    real = random_array(20, (2, 1, 4, 4))
    fake = random_array(21, (2, 1, 4, 4))
    conv_w, conv_b = random_array(22, (2, 1, 3, 3)), random_array(23, (2,), scale=0.1)
    lin_w = random_array(24, (1, 2 * 2 * 2))

    def penalty(conv_w, conv_b, lin_w):
        def critic(x):
            h = F.leaky_relu(F.conv2d(x, conv_w, conv_b, stride=1), 0.2)
            return F.linear(h.reshape(h.shape[0], -1), lin_w)

        return O.gradient_penalty(critic, tensor(real), tensor(fake), mg.Generator(5))

    check_gradients(penalty, conv_w, conv_b, lin_w, device=DEVICE)

    def r1(conv_w, lin_w):
        def critic(x):
            h = F.leaky_relu(F.conv2d(x, conv_w, None, stride=2), 0.2)
            return F.linear(h.reshape(h.shape[0], -1), lin_w)

        return O.r1_penalty(critic, tensor(real), gamma=1.0)

    check_gradients(r1, conv_w, random_array(25, (1, 2)), device=DEVICE)


def test_critic_penalties_on_the_cpu_device_match_the_reference():
    """WGAN-GP's and R1's second derivatives through a DCGAN critic on the cpu device (its
    channels-last conv kernels, fused activations) against the numpy device, float64. The
    two sum in different orders, so they agree to rounding: relative 1e-10 leaves 10^5
    ulps of float64 for the few hundred terms per sum, far below an O(1) error."""
    from minigan.gan import models
    from minigan.gan.objectives import gradient_penalty, r1_penalty

    results = {}
    for device in ("numpy", "cpu"):
        critic = models.dcgan28_discriminator(batch_norm=False, generator=mg.manual_seed(0))
        critic.to(device, dtype=np.float64)
        rng = np.random.default_rng(1)
        real = mg.tensor(rng.standard_normal((3, 1, 28, 28)), device=device)
        fake = mg.tensor(rng.standard_normal((3, 1, 28, 28)), device=device)
        loss = (gradient_penalty(critic, real, fake, generator=mg.manual_seed(5))
                + r1_penalty(critic, real))
        loss.backward()
        results[device] = [loss.numpy()] + [
            None if p.grad is None else p.grad.numpy() for p in critic.parameters()]
    assert sum(g is not None for g in results["cpu"][1:]) >= 3  # the conv weights at least
    for reference, fast in zip(results["numpy"], results["cpu"]):
        assert (reference is None) == (fast is None)
        if reference is not None:
            np.testing.assert_allclose(fast, reference, rtol=1e-10,
                                       atol=1e-12 * np.abs(reference).max())
