"""Training configurations: one dataclass, and named recipes that cite their sources.

`recipe(name, **overrides)` returns a TrainConfig; a TOML or JSON file can override any
field (`minigan train --config FILE`, layout in `load_config_file`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

OBJECTIVE_NAMES = ("minimax", "non_saturating", "wasserstein", "hinge", "lsgan")
KINDS = ("gan", "cyclegan")


class ConfigError(ValueError):
    """A configuration value or file is wrong; the message says which and why."""


@dataclass
class TrainConfig:
    name: str = "dcgan-mnist"
    data: str = "mnist5k"
    model: str = "dcgan28"  # mlp | pacgan | dcgan28 | dcgan
    z_dim: int = 100
    hidden: int = 128  # mlp width
    layers: int = 2  # mlp hidden layers
    batch_norm_d: bool = True
    objective: str = "non_saturating"
    n_critic: int = 1
    steps: int = 1000
    batch_size: int = 64
    optimizer: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.5, 0.999)
    lr_schedule: str = "constant"  # constant | linear (to 0 over the second half)
    weight_clip: float = 0.0  # WGAN's clipping of critic weights; 0 = off
    gp_weight: float = 0.0  # WGAN-GP's lambda; 0 = off
    r1_gamma: float = 0.0  # R1 penalty; 0 = off
    ema: float = 0.0  # decay of an EMA copy of the generator; 0 = off
    pack: int = 1  # PacGAN packing degree
    spectral_norm: bool = False  # on every weight layer of D (Miyato et al. 2018)
    sync_batch_norm: bool = False  # data-parallel runs: BatchNorm over all ranks' rows
    # ---- class-conditional GANs (conditional.py): G and D are told the label
    n_classes: int = 0  # 0 = unconditional; else the labels 0..n_classes-1 of the data
    embed_dim: int = 10  # size of the label embedding joined to z
    conditioning: str = "projection"  # how D sees the label: projection | concat
    # ---- kind "cyclegan" (unpaired translation between two image domains, cyclegan.py)
    kind: str = "gan"  # gan | cyclegan
    data_a: str = ""  # the two domains: any data source, or a built-in domain of cyclegan.py
    data_b: str = ""
    image_size: int = 0  # resize the images (both domains) to this square size; 0 = as stored
    channels: int = 0  # convert the images (both domains) to 1 or 3 channels; 0 = as stored
    ngf: int = 64  # generator width (its first convolution's channels; dcgan28: a quarter)
    n_blocks: int = 9  # residual blocks of the generator
    upsample: str = "transpose"  # transpose (ConvTranspose2d) | resize (Upsample + Conv2d)
    ndf: int = 64  # discriminator width (also of dcgan28)
    d_layers: int = 3  # PatchGAN stride-2 layers: 3 = 70x70 patches, 2 = 34x34
    cycle_weight: float = 10.0  # lambda of the cycle-consistency L1 loss
    identity_weight: float = 0.5  # identity-mapping L1 weight, as a fraction of lambda
    pool_size: int = 50  # history of generated images the discriminators see; 0 = none
    seed: int = 0
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    n_samples: int = 64
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        config = cls()
        return config.replace(**values)

    def replace(self, **overrides) -> TrainConfig:
        known = {f.name: f for f in dataclasses.fields(self)}
        values = dataclasses.asdict(self)
        for key, value in overrides.items():
            if key not in known:
                raise ConfigError(
                    f"unknown config field {key!r}; known fields: {', '.join(sorted(known))}"
                )
            values[key] = _coerce(key, value, type(getattr(self, key)))
        config = TrainConfig(**values)
        config.validate()
        return config

    def validate(self) -> None:
        checks = [
            (self.objective in OBJECTIVE_NAMES,
             f"objective must be one of {', '.join(OBJECTIVE_NAMES)}, got {self.objective!r}"),
            (self.model in ("mlp", "pacgan", "dcgan28", "dcgan"),
             f"model must be mlp, pacgan, dcgan28 or dcgan, got {self.model!r}"),
            (self.optimizer in ("adam", "rmsprop"),
             f"optimizer must be adam or rmsprop, got {self.optimizer!r}"),
            (self.lr_schedule in ("constant", "linear"),
             f"lr_schedule must be constant or linear, got {self.lr_schedule!r}"),
            (self.steps >= 0, f"steps must be >= 0, got {self.steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.n_critic >= 1, f"n_critic must be >= 1, got {self.n_critic}"),
            (self.pack >= 1, f"pack must be >= 1, got {self.pack}"),
            (self.batch_size % self.pack == 0,
             f"batch_size ({self.batch_size}) must be a multiple of pack ({self.pack})"),
            (0.0 <= self.ema < 1.0, f"ema must be in [0, 1), got {self.ema}"),
            (len(self.betas) == 2, f"betas must be two numbers, got {self.betas}"),
            (min(self.log_every, self.sample_every, self.checkpoint_every) >= 1,
             "log_every, sample_every and checkpoint_every must be >= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.kind in KINDS, f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}"),
            (self.image_size >= 0, f"image_size must be 0 (as stored) or a side in pixels, got "
                                   f"{self.image_size}"),
            (self.channels in (0, 1, 3), f"channels must be 0, 1 or 3, got {self.channels}"),
            (self.n_classes >= 0 and self.embed_dim >= 1,
             f"n_classes must be >= 0 and embed_dim >= 1, got {self.n_classes} and "
             f"{self.embed_dim}"),
            (self.conditioning in ("projection", "concat"),
             f"conditioning must be projection or concat, got {self.conditioning!r}"),
            (self.n_classes == 0 or self.pack == 1,
             f"a conditional GAN (n_classes {self.n_classes}) packs no samples: pack must be 1"),
        ]
        if self.kind == "cyclegan":
            checks += self._cyclegan_checks()
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def _cyclegan_checks(self) -> list:
        unused = [name for name, off in (("n_critic", 1), ("pack", 1), ("gp_weight", 0.0),
                                         ("r1_gamma", 0.0), ("weight_clip", 0.0), ("ema", 0.0))
                  if getattr(self, name) != off]
        return [
            (bool(self.data_a and self.data_b),
             "kind 'cyclegan' needs both domains: set data_a and data_b (--data-a, --data-b)"),
            (self.objective == "lsgan",
             f"kind 'cyclegan' trains with the least-squares objective (objective = 'lsgan'), "
             f"got {self.objective!r}"),
            (not unused, f"kind 'cyclegan' does not use {', '.join(unused)}: leave "
                         f"{'it' if len(unused) == 1 else 'them'} at the default"),
            (self.upsample in ("transpose", "resize"),
             f"upsample must be transpose or resize, got {self.upsample!r}"),
            (self.image_size == 0 or (self.image_size >= 8 and self.image_size % 4 == 0),
             f"image_size must be 0 (as stored) or a multiple of 4 (>= 8), got "
             f"{self.image_size}"),
            (min(self.ngf, self.ndf, self.d_layers) >= 1 and self.n_blocks >= 0,
             "ngf, ndf and d_layers must be >= 1, n_blocks >= 0"),
            (min(self.cycle_weight, self.identity_weight) >= 0 and self.pool_size >= 0,
             "cycle_weight, identity_weight and pool_size must be >= 0"),
        ]


def _coerce(key, value, kind):
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind is tuple:
            return tuple(float(v) for v in value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        if kind is list:
            return list(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"config field {key!r} must be {kind.__name__}, got {value!r}"
        ) from None


def _mlp_2d(**extra) -> dict:
    # PacGAN (Lin et al. 2018), appendix: G and D MLPs of 4 hidden layers of 400 units on
    # the 2-D mixtures; we keep a smaller 3x128 MLP so a CPU run takes seconds, and say so.
    base = dict(model="mlp", z_dim=2, hidden=128, layers=3, batch_size=256, lr_g=1e-3,
                lr_d=1e-3, betas=(0.5, 0.999), steps=2000, log_every=20, sample_every=500,
                checkpoint_every=1000, n_samples=2500)
    base.update(extra)
    return base


def _cyclegan_28(**extra) -> dict:
    # Official CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix, options/ and
    # models/cycle_gan_model.py): least-squares GAN loss, cycle lambda 10, identity 0.5 x
    # lambda, pool of 50, Adam 2e-4 betas (0.5, 0.999), lr constant for the first half then
    # linearly to 0 ("linear" policy, n_epochs = n_epochs_decay = 100), batch 1, ngf = ndf =
    # 64, 9 residual blocks and a 70x70 PatchGAN for 256x256 images. For 28x28 digits on a
    # CPU we keep the losses and the optimizer, and shrink the networks so a run takes
    # minutes: ngf 8, 3 residual blocks (the official 6-block variant is for 128x128), a
    # 2-layer PatchGAN (34x34 patches, a 5x5 grid on 28x28) with ndf 16, batch 16, and 800
    # iterations (6.4 passes over 2,000 images per domain; benchmarks/RESULTS.md has the
    # scores and times).
    base = dict(kind="cyclegan", objective="lsgan", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                lr_schedule="linear", ngf=8, n_blocks=3, ndf=16, d_layers=2, batch_size=16,
                cycle_weight=10.0, identity_weight=0.5, pool_size=50, steps=800, log_every=10,
                sample_every=200, checkpoint_every=400)
    base.update(extra)
    return base


def _pacgan_paper(**extra) -> dict:
    # PacGAN (Lin et al. 2018), released code fjxmlzn/PacGAN, synthetic_data_experiments/
    # 2DGrid_GAN&PacGAN/config.py (2DRing_GAN&PacGAN/config.py the same but for the data):
    # G 2-d N(0, 1) noise -> 4 x 400 Linear (no bias) + BatchNorm + ReLU -> 2; D 3 maxout
    # layers of 200 units, 5 pieces -> 1 (models.py, "pacgan"); N(0, 0.02) weights, zero
    # biases; Adam lr 1e-4, beta1 0.8; 100 discriminator inputs per batch (each packs m
    # samples, so G draws 100 m: see PACKED_BATCH); 100,000 training points; 400 epochs of
    # 1,000 iterations = 400k iterations; D loss softplus(-D(x)) + softplus(D(G(z))), G loss
    # softplus(-D(G(z))) (pacgan/bricks.py), i.e. the non-saturating objective.
    base = dict(model="pacgan", z_dim=2, hidden=400, layers=4, objective="non_saturating",
                batch_size=100, lr_g=1e-4, lr_d=1e-4, betas=(0.8, 0.999), steps=400_000,
                log_every=100, sample_every=10_000, checkpoint_every=5_000, n_samples=2500)
    base.update(extra)
    return base


def _dcgan_mnist(**extra) -> dict:
    base = dict(model="dcgan28", ngf=32, lr_g=4e-4, lr_d=2e-4, batch_size=64, sample_every=250,
                checkpoint_every=500)
    base.update(extra)
    return base


RECIPES: dict[str, dict] = {
    # Goodfellow et al. 2014 GAN with the non-saturating generator loss on 8 Gaussians,
    # tuned to beat PacGAN's Table 1 in about a CPU minute (benchmarks/RESULTS.md, 2-D
    # mixtures: 8/8 modes, 96.7% high quality over seeds 0-2): batch 512, the learning rate
    # held for half the run then taken linearly to 0, and a generator rate half the
    # discriminator's (two time-scale updates, Heusel et al. 2017).
    "mlp-ring8": _mlp_2d(name="mlp-ring8", data="ring8", batch_size=512, steps=6000,
                         lr_g=5e-4, lr_d=1e-3, lr_schedule="linear"),
    # On the grid (benchmarks/RESULTS.md, 2-D mixtures): batch 512, the linear decay and
    # 256-wide layers for 8,000 iterations give 24.7 / 25 modes and 90.9% high quality over
    # seeds 0-2 (3.7 CPU minutes of one thread). At width 128, 6,000 iterations kept the
    # modes (23.7) but not the precision (88%), 8,000 the precision but not the modes
    # (22.3); two D steps, a slower G, an EMA of G or spectral norm did worse.
    "mlp-grid25": _mlp_2d(name="mlp-grid25", data="grid25", batch_size=512, steps=8000,
                          hidden=256, lr_schedule="linear"),
    # WGAN-GP (Gulrajani et al. 2017), Algorithm 1: lambda 10, n_critic 5, Adam 1e-4,
    # betas (0, 0.9).
    # On the ring, lambda 0.1 as in the authors' toy script (gan_toy.py of
    # igul222/improved_wgan_training: "smaller lambda seems to help for toy tasks"), where
    # lambda 10 had 1 mode and 1.6% high quality at 3,000 iterations. It needs 25,000
    # iterations (about 11 minutes of one core): 8 / 8 modes and 95.4 +- 0.9% high quality
    # over seeds 0-2 (49% at 3,000, 91% at 20,000; benchmarks/RESULTS.md).
    "wgan-gp-ring8": _mlp_2d(name="wgan-gp-ring8", data="ring8", objective="wasserstein",
                             gp_weight=0.1, n_critic=5, lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9),
                             steps=25000),
    "wgan-gp-grid25": _mlp_2d(name="wgan-gp-grid25", data="grid25", objective="wasserstein",
                              gp_weight=10.0, n_critic=5, lr_g=1e-4, lr_d=1e-4,
                              betas=(0.0, 0.9), steps=4000),
    # PacGAN (Lin et al. 2018): the GAN above with the discriminator seeing 2 packed samples.
    # With this small D, packing keeps the modes (24 / 25) but not the precision (17% high
    # quality, benchmarks/RESULTS.md); the batch and schedule are mlp-grid25's.
    "pacgan-grid25": _mlp_2d(name="pacgan-grid25", data="grid25", pack=2, batch_size=512,
                             steps=6000, lr_schedule="linear"),
    # PacGAN's Table 1 rows under the paper's own protocol (hours of CPU: see
    # benchmarks/RESULTS.md); `--set pack=M` gives the PacGAN-M row, pack 1 the GAN row.
    "pacgan-paper-ring8": _pacgan_paper(name="pacgan-paper-ring8", data="ring8-100k"),
    "pacgan-paper-grid25": _pacgan_paper(name="pacgan-paper-grid25", data="grid25-100k"),
    # DCGAN (Radford et al. 2016): Adam 2e-4, beta1 0.5, batch 64 (the paper used 128),
    # N(0, 0.02) init; logits and a stable BCE instead of Sigmoid + BCELoss. Changed for
    # quality per CPU second on 28x28 digits (benchmarks/RESULTS.md, "The default run's
    # digits"): a generator half as wide (ngf 32: 128 and 64 channels, 0.59x the time per
    # step), G's learning rate twice D's, and 1,800 steps instead of 1,200. An EMA of G
    # (ema=0.999) scored worse than the live generator at these lengths, so it stays off.
    "dcgan-mnist": _dcgan_mnist(name="dcgan-mnist", data="mnist5k", steps=1800),
    # The same on the whole MNIST training set (60,000 images; `minigan download mnist
    # data/mnist` first), trained longer.
    "dcgan-mnist-full": _dcgan_mnist(name="dcgan-mnist-full", data="data/mnist", steps=6000,
                                     sample_every=500, checkpoint_every=1000),
    # Conditional DCGAN (Mirza & Osindero 2014) with a projection discriminator (Miyato &
    # Koyama 2018) on dcgan-mnist's settings (ngf 32, G's learning rate twice D's, 1,800
    # steps); a 10 x 10 sample grid, one digit per row. The classifier reads 98-99% of the
    # requested labels, every digit at least 94% (benchmarks/RESULTS.md, seeds 0-2).
    "cdcgan-mnist": _dcgan_mnist(name="cdcgan-mnist", data="mnist5k", n_classes=10,
                                 steps=1800, n_samples=100),
    # WGAN (Arjovsky et al. 2017), Algorithm 1: RMSprop 5e-5, clipping 0.01, n_critic 5.
    "wgan-mnist": dict(name="wgan-mnist", data="mnist5k", model="dcgan28", batch_norm_d=True,
                       objective="wasserstein", optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5,
                       weight_clip=0.01, n_critic=5, steps=2000, batch_size=64,
                       sample_every=250, checkpoint_every=500),
    # WGAN-GP on MNIST: the critic without BatchNorm; Adam 1e-4 betas (0, 0.9) as in
    # Algorithm 1 (the official gan_mnist.py used (0.5, 0.9): override betas to select it).
    "wgan-gp-mnist": dict(name="wgan-gp-mnist", data="mnist5k", model="dcgan28",
                          batch_norm_d=False, objective="wasserstein", gp_weight=10.0,
                          n_critic=5, lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), steps=2000,
                          batch_size=64, sample_every=250, checkpoint_every=500),
    # DCGAN 64x64, pytorch/examples dcgan/main.py defaults (for image folders a user brings):
    # images resized and center-cropped to 64x64 (its --imageSize 64), MNIST by default.
    "dcgan-64": dict(name="dcgan-64", data="mnist5k", model="dcgan", image_size=64,
                     steps=5000, batch_size=64, sample_every=250, checkpoint_every=500),
    # CycleGAN (Zhu et al. 2017) on unpaired 28x28 digit domains; see _cyclegan_28.
    "cyclegan-mnist-inverted": _cyclegan_28(name="cyclegan-mnist-inverted",
                                            data_a="mnist5k-half-a",
                                            data_b="mnist5k-inverted-half-b"),
    # MNIST <-> the UCI 8x8 optical digits scaled up to 28x28: two renderings of digits, a
    # digit-domain pair like those of CoGAN (Liu & Tuzel 2016) and CyCADA (Hoffman et al. 2018).
    "cyclegan-mnist-digits": _cyclegan_28(name="cyclegan-mnist-digits", data_a="mnist5k",
                                          data_b="digits8x8", image_size=28),
}


# Recipes whose batch counts discriminator inputs, as PacGAN's code does: with pack m the
# batch holds PACKED_BATCH[name] * m samples unless batch_size is set explicitly.
PACKED_BATCH = {"pacgan-paper-ring8": 100, "pacgan-paper-grid25": 100}


def recipe(name: str = "dcgan-mnist", **overrides) -> TrainConfig:
    """The named recipe's config, with any field overridden."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; recipes: {', '.join(sorted(RECIPES))}")
    values = dict(RECIPES[name])
    values.update(overrides)
    if name in PACKED_BATCH and "batch_size" not in overrides:
        values["batch_size"] = PACKED_BATCH[name] * int(values.get("pack", 1))
    return TrainConfig().replace(**values)


def load_config_file(path) -> dict:
    """The fields set in a TOML or JSON config file.

    One layout is accepted: a flat table of TrainConfig fields, plus optionally
    `recipe = "NAME"` to start from that recipe, e.g.

        recipe = "mlp-ring8"
        steps = 500
        batch_size = 32

    A sub-table (such as [train]) or a key that is not a field is refused by name, so no
    setting is ever dropped quietly.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            values = json.loads(text)
        else:
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            values = tomllib.loads(text)
    except Exception as error:  # the parsers raise their own error types
        raise ConfigError(f"config file {path} could not be parsed: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a table of fields")
    tables = [key for key, value in values.items() if isinstance(value, dict)]
    if tables:
        raise ConfigError(
            f"config file {path}: tables are not read ({', '.join(f'[{t}]' for t in tables)}); "
            "write every field at the top level (recipe = \"NAME\", steps = N, ...)"
        )
    known = {f.name for f in dataclasses.fields(TrainConfig)} | {"recipe"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}; keys are 'recipe' and the config fields: "
            f"{', '.join(sorted(known - {'recipe'}))}"
        )
    return values
