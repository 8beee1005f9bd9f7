"""Toy 2-D distributions from the mode-collapse literature, with their published constants.

Each mixture keeps its mode centers and per-mode standard deviation next to its sampler, so
the metrics (minigan.metrics.mode_coverage) score generated points against the very same
constants the points were drawn from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..random import Generator, resolve


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic Gaussians in 2-D (or, with modes None, a
    continuous toy distribution that has no modes to count)."""

    name: str
    modes: np.ndarray | None  # (n_modes, 2) float64 centers
    std: float | None  # one standard deviation per coordinate, the same for every mode
    source: str
    sampler: Callable[[int, np.random.Generator], np.ndarray] | None = None


def _circle(count: int, radius: float) -> np.ndarray:
    angles = 2.0 * np.pi * np.arange(count) / count
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _grid(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    xs, ys = np.meshgrid(values, values, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _swiss_roll(n: int, rng: np.random.Generator) -> np.ndarray:
    # The improved-WGAN gan_toy.py draws sklearn.datasets.make_swiss_roll(noise=0.25), keeps
    # coordinates 0 and 2 and divides by 7.5 ("stdev plus a little"). make_swiss_roll draws
    # t = 1.5*pi*(1 + 2u), u ~ U(0, 1), places the point at (t cos t, t sin t) and adds
    # 0.25 * N(0, 1) noise to each coordinate; written out here so sklearn is not needed.
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=n))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    points += 0.25 * rng.standard_normal((n, 2))
    return points / 7.5


# The improved-WGAN toy sets (Gulrajani et al. 2017, gan_toy.py of igul222/improved_wgan_training)
# scale their points after adding the noise, so both the centers and the std are divided.
_WGAN_8_SCALE = 2.0 / 1.414  # gan_toy.py: scale = 2., then dataset /= 1.414
_WGAN_25_SCALE = 1.0 / 2.828  # gan_toy.py: means 2*{-2..2}, then dataset /= 2.828

MIXTURES: dict[str, Mixture] = {
    # PacGAN (Lin et al. 2018), synthetic_data_experiments/2DRing_GAN&PacGAN/config.py:
    # MEANS = (cos(2 pi i / 8), sin(2 pi i / 8)), VARIANCES = 0.01 ** 2 * I, equal priors.
    "ring8": Mixture(
        "ring8", _circle(8, 1.0), 0.01, "PacGAN (Lin et al. 2018) 2D-ring: radius 1, std 0.01"
    ),
    # PacGAN 2DGrid config.py (after VEEGAN, Srivastava et al. 2017): MEANS over
    # range(-4, 5, 2) squared, VARIANCES = 0.05 ** 2 * I.
    "grid25": Mixture(
        "grid25",
        _grid([-4, -2, 0, 2, 4]),
        0.05,
        "PacGAN / VEEGAN 2D-grid: means {-4,-2,0,2,4}^2, std 0.05",
    ),
    # gan_toy.py '8gaussians': 8 unit directions at 45 degrees, scale 2, noise std 0.02,
    # everything divided by 1.414.
    "8gaussians": Mixture(
        "8gaussians",
        _circle(8, 1.0) * _WGAN_8_SCALE,
        0.02 / 1.414,
        "WGAN-GP gan_toy.py (Gulrajani et al. 2017): scale 2, std 0.02, divided by 1.414",
    ),
    # gan_toy.py '25gaussians': means 2*x, 2*y for x, y in -2..2, noise std 0.05,
    # everything divided by 2.828.
    "25gaussians": Mixture(
        "25gaussians",
        _grid([-4, -2, 0, 2, 4]) * _WGAN_25_SCALE,
        0.05 / 2.828,
        "WGAN-GP gan_toy.py (Gulrajani et al. 2017): means 2*{-2..2}^2, std 0.05, / 2.828",
    ),
    "swissroll": Mixture(
        "swissroll",
        None,
        None,
        "WGAN-GP gan_toy.py: sklearn make_swiss_roll(noise=0.25), coordinates (0, 2), / 7.5",
        _swiss_roll,
    ),
}


def sample_mixture(name: str, n: int, generator: Generator | None = None) -> np.ndarray:
    """n points from the named toy distribution, float32 of shape (n, 2).

    Every mode has the same weight; the generator (the default one if None) makes the draw
    reproducible.
    """
    if name not in MIXTURES:
        raise ValueError(
            f"sample_mixture: unknown mixture {name!r}; expected one of {', '.join(MIXTURES)}"
        )
    if n < 0:
        raise ValueError(f"sample_mixture: n must be >= 0, got {n}")
    mixture = MIXTURES[name]
    rng = resolve(generator).numpy
    if mixture.sampler is not None:
        return mixture.sampler(n, rng).astype(np.float32)
    which = rng.integers(0, len(mixture.modes), size=n)
    points = mixture.modes[which] + mixture.std * rng.standard_normal((n, 2))
    return points.astype(np.float32)
