"""GAN objectives: what the discriminator (critic) and the generator minimise.

Every loss takes the discriminator's raw outputs ("logits", before any sigmoid) and is
written with softplus / log-sigmoid, so it stays finite and accurate at logits of +-1000
where log(sigmoid(x)) would give log(0). Useful identities:

    log D = log sigmoid(l) = -softplus(-l)       log(1 - D) = log sigmoid(-l) = -softplus(l)

The registry OBJECTIVES maps a name to an Objective(discriminator_loss(real_logits,
fake_logits), generator_loss(fake_logits)); the penalties (gradient_penalty, r1_penalty)
are added to the discriminator loss by the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

from .. import functional as F
from ..autograd import Tensor, grad
from ..random import Generator, resolve

# ----------------------------------------------------------------------------- minimax
# Goodfellow et al. 2014, "Generative Adversarial Nets", eq. 1:
#   min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]


def minimax_value(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """V(D, G), estimated on a batch: mean log D(x) + mean log(1 - D(G(z)))."""
    return F.log_sigmoid(real_logits).mean() + F.log_sigmoid(-fake_logits).mean()


def minimax_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-V(D, G): D ascends V, so it minimises -V (binary cross-entropy, real = 1, fake = 0)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """mean log(1 - D(G(z))), minimised by G: the minimax game itself. Its gradient vanishes
    when D confidently rejects the fakes, early in training (Goodfellow et al. 2014, sec. 3)."""
    return F.log_sigmoid(-fake_logits).mean()


def non_saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """-mean log D(G(z)): the heuristic of Goodfellow et al. 2014 (sec. 3), same fixed point,
    strong gradients early on."""
    return F.softplus(-fake_logits).mean()


# ----------------------------------------------------------------------------- Wasserstein
# Arjovsky et al. 2017, "Wasserstein GAN", Algorithm 1: the critic f maximises
# E[f(x)] - E[f(G(z))], and G maximises E[f(G(z))]. The Lipschitz constraint comes from
# weight clipping (trainer) or the gradient penalty below.


def wasserstein_critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """mean f(G(z)) - mean f(x): minus the critic's estimate of the Wasserstein-1 distance."""
    return fake_logits.mean() - real_logits.mean()


def wasserstein_generator_loss(fake_logits: Tensor) -> Tensor:
    """-mean f(G(z))."""
    return -fake_logits.mean()


# ----------------------------------------------------------------------------- hinge
# Lim & Ye 2017, "Geometric GAN", and Miyato et al. 2018, "Spectral Normalization for GANs",
# eq. 16-17: D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], G minimises -E[D(G(z))].


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


# ----------------------------------------------------------------------------- least squares
# Mao et al. 2017, "Least Squares Generative Adversarial Networks", eq. 2:
#   min_D 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2],   min_G 1/2 E[(D(G(z)) - c)^2]
# on the discriminator's linear output. Defaults: the 0-1 binary coding a = 0, b = c = 1
# (their eq. 9 alternative is a = -1, b = 1, c = 0).


def lsgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor, a: float = 0.0,
                             b: float = 1.0) -> Tensor:
    return 0.5 * ((real_logits - b) ** 2).mean() + 0.5 * ((fake_logits - a) ** 2).mean()


def lsgan_generator_loss(fake_logits: Tensor, c: float = 1.0) -> Tensor:
    return 0.5 * ((fake_logits - c) ** 2).mean()


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Objective:
    """The pair of losses that defines a GAN game."""

    name: str
    discriminator_loss: Callable[[Tensor, Tensor], Tensor]
    generator_loss: Callable[[Tensor], Tensor]


OBJECTIVES: dict[str, Objective] = {
    "minimax": Objective("minimax", minimax_discriminator_loss, saturating_generator_loss),
    "non_saturating": Objective(
        "non_saturating", minimax_discriminator_loss, non_saturating_generator_loss
    ),
    "wasserstein": Objective("wasserstein", wasserstein_critic_loss, wasserstein_generator_loss),
    "hinge": Objective("hinge", hinge_discriminator_loss, hinge_generator_loss),
    "lsgan": Objective("lsgan", lsgan_discriminator_loss, lsgan_generator_loss),
}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}: expected one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


# ----------------------------------------------------------------------------- penalties

# Added under the square root of the gradient norm: sqrt has an infinite derivative at 0,
# which would turn a zero input-gradient (a saturated critic) into NaN in the double
# backward. It moves a norm n by about 5e-13 / n: nothing for the norms near 1 that the
# penalty drives toward, and 1e-6 at most (at n = 0).
_NORM_FLOOR = 1e-12


def _input_gradient(critic, x: Tensor) -> Tensor:
    """d sum(critic(x)) / dx, keeping the graph so a penalty on it can be differentiated
    with respect to the critic's weights (double backward)."""
    x = x.detach().requires_grad_()
    return grad(critic(x).sum(), x, create_graph=True)[0]


def gradient_penalty(critic, real: Tensor, fake: Tensor, generator: Generator | None = None,
                     weight: float = 10.0) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1, lambda = 10):
    weight * mean_i (||grad_x critic(x_hat_i)||_2 - 1)^2 with x_hat = e x + (1 - e) x~,
    e ~ U[0, 1] per sample; the norm is per sample over all non-batch axes."""
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {real.shape} and fake {fake.shape} must have "
                         "the same shape")
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    mix = Tensor(resolve(generator).uniform(shape, real.dtype), device=real.device,
                 dtype=real.dtype)
    interpolates = mix * real.detach() + (1.0 - mix) * fake.detach()
    g = _input_gradient(critic, interpolates)
    squared = (g * g).reshape(g.shape[0], -1).sum(axis=1)
    norm = (squared + _NORM_FLOOR).sqrt()
    return weight * ((norm - 1.0) ** 2).mean()


def r1_penalty(critic, real: Tensor, gamma: float = 10.0) -> Tensor:
    """R1 (Mescheder et al. 2018, eq. 9): gamma / 2 * mean_i ||grad_x critic(x_i)||^2 on real
    data, the norm per sample over all non-batch axes."""
    g = _input_gradient(critic, real)
    squared = (g * g).reshape(g.shape[0], -1).sum(axis=1)
    return 0.5 * gamma * squared.mean()
