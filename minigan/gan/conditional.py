"""Class-conditional GAN models: the generator draws the digit it is asked for.

Generator (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets", section 3.2):
the label enters with the noise. Here a learned embedding of the label (nn.Embedding, as
PyTorch-GAN's cgan.py does) is concatenated to z, and the DCGAN generator takes both.

Discriminator, two ways (config field `conditioning`):
  "projection"  Miyato & Koyama 2018, "cGANs with Projection Discriminator", eq. (3):
                D(x, y) = psi(phi(x)) + embed(y) . phi(x), where phi(x) are the
                discriminator's last features and psi a linear read-out. The label only
                scores the features, so D's feature extractor is shared by all classes.
  "concat"      Mirza & Osindero 2014: the label enters at the input, as 10 constant
                one-hot image planes stacked onto the image's channels.
benchmarks/RESULTS.md compares the two (the classifier's reading of the requested label).
"""

from __future__ import annotations

from .. import functional as F
from .. import nn
from ..autograd import Tensor, cat
from ..random import Generator
from .models import dcgan28_discriminator, dcgan28_generator, dcgan_init

CONDITIONINGS = ("projection", "concat")


class ConditionalGenerator(nn.Module):
    """(z, labels) -> images: body(cat(z, embed(labels))). body takes z_dim + embed_dim."""

    def __init__(self, body: nn.Module, n_classes: int, embed_dim: int,
                 generator: Generator | None = None):
        super().__init__()
        self.embed = nn.Embedding(n_classes, embed_dim, generator=generator)
        self.body = body

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.body(cat([z, self.embed(labels)], 1))


class ProjectionDiscriminator(nn.Module):
    """(x, labels) -> one logit per sample: linear(phi(x)) + <embed(labels), phi(x)>."""

    def __init__(self, features: nn.Module, feature_dim: int, n_classes: int,
                 generator: Generator | None = None):
        super().__init__()
        self.features = features
        self.linear = nn.Linear(feature_dim, 1, generator=generator)
        self.embed = nn.Embedding(n_classes, feature_dim, generator=generator)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.features(x)
        projection = (self.embed(labels) * h).sum(1).reshape(-1, 1)
        return self.linear(h) + projection


class ConcatDiscriminator(nn.Module):
    """(x, labels) -> body(cat(x, one-hot label planes)). body takes C + n_classes channels."""

    def __init__(self, body: nn.Module, n_classes: int):
        super().__init__()
        self.n_classes = n_classes
        self.body = body

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        n, _, height, width = x.shape
        planes = F.one_hot(labels, self.n_classes).to(dtype=x.dtype)
        planes = planes.reshape(n, self.n_classes, 1, 1).expand(n, self.n_classes, height, width)
        return self.body(cat([x, planes], 1))


def build_conditional_models(config, sample_shape: tuple, generator: Generator):
    """(generator, discriminator) of a conditional config: the dcgan28 pair of models.py
    with the label joined as the module docstring says."""
    if config.model != "dcgan28" or tuple(sample_shape[1:]) != (28, 28):
        raise ValueError(f"conditional models (n_classes > 0) are built on model 'dcgan28' "
                         f"with 28x28 images; got model {config.model!r}, samples "
                         f"{tuple(sample_shape)}")
    channels, n_classes, embed_dim = sample_shape[0], config.n_classes, config.embed_dim
    g = ConditionalGenerator(
        dcgan28_generator(config.z_dim + embed_dim, channels, config.ngf, generator=generator),
        n_classes, embed_dim, generator=generator)
    if config.conditioning == "concat":
        d = ConcatDiscriminator(dcgan28_discriminator(channels + n_classes, config.batch_norm_d,
                                                      config.ndf, generator=generator),
                                n_classes)
    else:
        # dcgan28's discriminator up to its last convolution: phi(x), 2 ndf x 7 x 7 features
        # (that convolution covers the whole 7x7 map, so it is the linear read-out psi)
        body = dcgan28_discriminator(channels, config.batch_norm_d, config.ndf,
                                     generator=generator)
        d = ProjectionDiscriminator(nn.Sequential(*list(body)[:-2], nn.Flatten()),
                                    2 * config.ndf * 7 * 7, n_classes, generator=generator)
        # DCGAN's N(0, 0.02) for the projection too: with N(0, 1) rows, embed . phi over
        # 6,272 features would start orders of magnitude above the read-out's logits
        nn.init.normal_(d.embed.weight, 0.0, 0.02, generator=generator)
    dcgan_init(g, generator)
    dcgan_init(d, generator)
    return g, d
