"""Generator and discriminator architectures, each traceable to its paper or official code.

Every builder returns a `minigan.nn.Module`; weights are initialised from the generator it is
given, so one seed fixes a run.
"""

from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..random import Generator
from .recipes import ConfigError


def dcgan_init(module: nn.Module, generator: Generator) -> None:
    """DCGAN (Radford et al. 2016, section 4): all weights from N(0, 0.02); BatchNorm scale
    from N(1, 0.02) and shift 0, as in pytorch/examples dcgan/main.py `weights_init`."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02, generator=generator)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(layer.bias)


# ----------------------------------------------------------------------------- MLPs


def mlp_generator(z_dim: int, out_dim: int, hidden: int, layers: int, image_shape=None,
                  generator: Generator | None = None) -> nn.Module:
    """z -> [Linear + ReLU] x layers -> Linear (-> Tanh and reshape for images)."""
    parts, width = [], z_dim
    for _ in range(layers):
        parts += [nn.Linear(width, hidden, generator=generator), nn.ReLU()]
        width = hidden
    parts.append(nn.Linear(width, out_dim, generator=generator))
    if image_shape is not None:
        parts += [nn.Tanh(), nn.Unflatten(1, tuple(image_shape))]
    return nn.Sequential(*parts)


def mlp_discriminator(in_dim: int, hidden: int, layers: int, slope: float = 0.2,
                      generator: Generator | None = None) -> nn.Module:
    """x -> [Linear + LeakyReLU(slope)] x layers -> Linear -> one logit."""
    parts, width = [nn.Flatten()], in_dim
    for _ in range(layers):
        parts += [nn.Linear(width, hidden, generator=generator), nn.LeakyReLU(slope)]
        width = hidden
    parts.append(nn.Linear(width, 1, generator=generator))
    return nn.Sequential(*parts)


# PacGAN (Lin et al. 2018), released code fjxmlzn/PacGAN, synthetic_data_experiments/
# 2DGrid_GAN&PacGAN/config.py and pacgan_task.py: the 2-D mixtures' networks.
PACGAN_D_HIDDEN = 200  # config.py: disc_hidden_size
PACGAN_D_PIECES = 5  # config.py: disc_maxout_pieces
PACGAN_D_LAYERS = 3  # pacgan_task.py: three LinearMaxout bricks, then a Linear to 1
PACGAN_BN_MOMENTUM = 0.05  # pacgan_task.py: population statistics m * 0.05 + p * 0.95


def pacgan_generator(z_dim: int, out_dim: int, hidden: int = 400, layers: int = 4,
                     generator: Generator | None = None) -> nn.Module:
    """PacGAN's 2-D generator: z -> [Linear (no bias) + BatchNorm + ReLU] x layers ->
    Linear (with bias). Paper: z_dim 2, hidden 400, 4 layers."""
    parts, width = [], z_dim
    for _ in range(layers):
        parts += [nn.Linear(width, hidden, bias=False, generator=generator),
                  nn.BatchNorm1d(hidden, momentum=PACGAN_BN_MOMENTUM), nn.ReLU()]
        width = hidden
    parts.append(nn.Linear(width, out_dim, generator=generator))
    return nn.Sequential(*parts)


def pacgan_discriminator(in_dim: int, hidden: int = PACGAN_D_HIDDEN,
                         pieces: int = PACGAN_D_PIECES, layers: int = PACGAN_D_LAYERS,
                         generator: Generator | None = None) -> nn.Module:
    """PacGAN's 2-D discriminator: x (the m packed samples, in_dim = 2 m) -> [Maxout(hidden,
    pieces)] x layers -> Linear -> one logit. No batch norm, no dropout."""
    parts, width = [], in_dim
    for _ in range(layers):
        parts.append(nn.Maxout(width, hidden, pieces, generator=generator))
        width = hidden
    parts.append(nn.Linear(width, 1, generator=generator))
    return nn.Sequential(*parts)


def pacgan_init(module: nn.Module, generator: Generator) -> None:
    """pacgan_task.py: weights_init IsotropicGaussian(0.02), biases Constant(0); Blocks'
    BatchNormalization starts at scale 1, shift 0 (the layer's own default)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Maxout)):
            nn.init.normal_(layer.weight, 0.0, 0.02, generator=generator)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


# ----------------------------------------------------------------------------- DCGANs


def dcgan28_generator(z_dim: int = 100, channels: int = 1, width: int = 64,
                      generator: Generator | None = None) -> nn.Module:
    """The `dcgan-mnist` generator (width w = 64): z(100) -> ConvT(100,4w,7,1,0)+BN+ReLU
    (7x7) -> ConvT(4w,2w,4,2,1)+BN+ReLU (14x14) -> ConvT(2w,1,4,2,1)+Tanh (28x28).
    Layers followed by BatchNorm carry no bias (BN's shift makes it redundant)."""
    return nn.Sequential(
        nn.Unflatten(1, (z_dim, 1, 1)),
        nn.ConvTranspose2d(z_dim, 4 * width, 7, 1, 0, bias=False, generator=generator),
        nn.BatchNorm2d(4 * width),
        nn.ReLU(),
        nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False, generator=generator),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * width, channels, 4, 2, 1, generator=generator),
        nn.Tanh(),
    )


def dcgan28_discriminator(channels: int = 1, batch_norm: bool = True, width: int = 64,
                          generator: Generator | None = None) -> nn.Module:
    """The `dcgan-mnist` discriminator (width w = 64): Conv(1,w,4,2,1)+LReLU(0.2) (14x14) ->
    Conv(w,2w,4,2,1)+BN+LReLU(0.2) (7x7) -> Conv(2w,1,7,1,0): one logit.
    batch_norm=False gives the WGAN-GP critic (Gulrajani et al. 2017, section 4: no BN in
    the critic, since the penalty is per sample)."""
    parts = [
        nn.Conv2d(channels, width, 4, 2, 1, generator=generator),
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=not batch_norm, generator=generator),
    ]
    if batch_norm:
        parts.append(nn.BatchNorm2d(2 * width))
    parts += [nn.LeakyReLU(0.2), nn.Conv2d(2 * width, 1, 7, 1, 0, generator=generator),
              nn.Flatten()]
    return nn.Sequential(*parts)


def dcgan_generator(image_size: int, z_dim: int = 100, channels: int = 3, width: int = 64,
                    generator: Generator | None = None) -> nn.Module:
    """DCGAN for 32x32 or 64x64, after pytorch/examples dcgan/main.py (ngf=64): a 4x4
    ConvT from z, then stride-2 ConvT+BN+ReLU doubling the size, halving the channels,
    a last ConvT+Tanh. No biases, as in that script."""
    doublings = int(math.log2(image_size // 4))
    if 4 * 2**doublings != image_size or doublings < 2:
        raise ValueError(f"dcgan_generator: image_size must be 16, 32, 64, ...; got {image_size}")
    top = width * 2 ** (doublings - 1)
    parts = [
        nn.Unflatten(1, (z_dim, 1, 1)),
        nn.ConvTranspose2d(z_dim, top, 4, 1, 0, bias=False, generator=generator),
        nn.BatchNorm2d(top),
        nn.ReLU(),
    ]
    current = top
    for _ in range(doublings - 1):
        parts += [
            nn.ConvTranspose2d(current, current // 2, 4, 2, 1, bias=False, generator=generator),
            nn.BatchNorm2d(current // 2),
            nn.ReLU(),
        ]
        current //= 2
    parts += [
        nn.ConvTranspose2d(current, channels, 4, 2, 1, bias=False, generator=generator),
        nn.Tanh(),
    ]
    return nn.Sequential(*parts)


def dcgan_discriminator(image_size: int, channels: int = 3, width: int = 64,
                        batch_norm: bool = True, generator: Generator | None = None) -> nn.Module:
    """DCGAN discriminator for 32x32 or 64x64 (pytorch/examples, ndf=64): stride-2
    Conv+BN+LReLU(0.2) halving the size until 4x4, then Conv(4x4) to one logit."""
    doublings = int(math.log2(image_size // 4))
    if 4 * 2**doublings != image_size or doublings < 2:
        raise ValueError(
            f"dcgan_discriminator: image_size must be 16, 32, 64, ...; got {image_size}"
        )
    parts = [nn.Conv2d(channels, width, 4, 2, 1, bias=False, generator=generator),
             nn.LeakyReLU(0.2)]
    current = width
    for _ in range(doublings - 1):
        parts.append(nn.Conv2d(current, current * 2, 4, 2, 1, bias=False, generator=generator))
        if batch_norm:
            parts.append(nn.BatchNorm2d(current * 2))
        parts.append(nn.LeakyReLU(0.2))
        current *= 2
    parts += [nn.Conv2d(current, 1, 4, 1, 0, bias=False, generator=generator), nn.Flatten()]
    return nn.Sequential(*parts)


# ----------------------------------------------------------------------------- from a config


def _what(config) -> str:
    return f"recipe {config.name!r} (model {config.model!r})"


def build_models(config, sample_shape: tuple, generator: Generator):
    """(generator, discriminator) for a config and the shape of one data sample
    ((2,) for points, (C, H, W) for images). The discriminator sees `pack` samples at once
    (PacGAN, Lin et al. 2018): their features (or channels) concatenated; with
    config.spectral_norm each of its weight layers is spectrally normalised."""
    g, d = _build_models(config, sample_shape, generator)
    if config.spectral_norm:
        for layer in list(d.modules()):
            if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Maxout)):
                nn.utils.spectral_norm(layer, generator=generator)
    return g, d


def _build_models(config, sample_shape: tuple, generator: Generator):
    pack = config.pack
    kind = config.model
    if kind == "mlp":
        out_dim = int(np.prod(sample_shape))
        image_shape = sample_shape if len(sample_shape) == 3 else None
        g = mlp_generator(config.z_dim, out_dim, config.hidden, config.layers, image_shape,
                          generator=generator)
        d = mlp_discriminator(out_dim * pack, config.hidden, config.layers, generator=generator)
        return g, d
    if kind == "pacgan":
        if len(sample_shape) != 1:
            raise ConfigError(f"model 'pacgan' needs points (N, D), got samples of shape "
                             f"{sample_shape}")
        g = pacgan_generator(config.z_dim, sample_shape[0], config.hidden, config.layers,
                             generator=generator)
        d = pacgan_discriminator(sample_shape[0] * pack, generator=generator)
        pacgan_init(g, generator)
        pacgan_init(d, generator)
        return g, d
    if len(sample_shape) != 3:
        raise ConfigError(
            f"{_what(config)} generates images, but the data {config.data!r} holds samples of "
            f"shape {tuple(sample_shape)}; for 2-D points use an mlp recipe (mlp-ring8, "
            "mlp-grid25, wgan-gp-ring8, ...)"
        )
    channels, height, width = sample_shape
    found = f"the data {config.data!r} holds {channels}x{height}x{width} images"
    if kind == "dcgan28":
        if (height, width) != (28, 28):
            raise ConfigError(
                f"{_what(config)} needs 28x28 images and {found}: resize them with --set "
                "image_size=28, or use --recipe dcgan-64 (model 'dcgan', square images of "
                "side 16, 32, 64, ...; --set image_size=32 for 32x32)"
            )
        g = dcgan28_generator(config.z_dim, channels, config.ngf, generator=generator)
        d = dcgan28_discriminator(channels * pack, config.batch_norm_d, config.ndf,
                                  generator=generator)
    elif kind == "dcgan":
        side = 4 * 2 ** int(math.log2(max(height, 4) // 4))
        if height != width or side != height or height < 16:
            raise ConfigError(
                f"{_what(config)} needs square images of side 16, 32, 64, ... and {found}: "
                f"resize them with --set image_size={max(16, side)}"
            )
        g = dcgan_generator(height, config.z_dim, channels, generator=generator)
        d = dcgan_discriminator(height, channels * pack, batch_norm=config.batch_norm_d,
                                generator=generator)
    else:
        raise ConfigError(f"unknown model {kind!r}: expected mlp, pacgan, dcgan28 or dcgan")
    dcgan_init(g, generator)
    dcgan_init(d, generator)
    if config.sync_batch_norm:  # batch statistics over all ranks of a data-parallel run
        g = nn.SyncBatchNorm.convert_sync_batchnorm(g)
        d = nn.SyncBatchNorm.convert_sync_batchnorm(d)
    return g, d
