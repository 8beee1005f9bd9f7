"""CycleGAN: unpaired image-to-image translation between two domains A and B.

Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks"; the constants follow the official code, junyanz/pytorch-CycleGAN-and-pix2pix
(models/cycle_gan_model.py, util/image_pool.py, options/). Two generators, G_ab: A -> B and
G_ba: B -> A, and two discriminators, D_a (real A or G_ba's output?) and D_b. One training
iteration (`CycleGANTrainer.step`, in the official order: generators first):

    fake_b = G_ab(a), rec_a = G_ba(fake_b), fake_a = G_ba(b), rec_b = G_ab(fake_a)
    loss_G = (D_b(fake_b) - 1)^2 + (D_a(fake_a) - 1)^2                 least squares
             + lambda (|rec_a - a| + |rec_b - b|)                         cycle, lambda = 10
             + 0.5 lambda (|G_ab(b) - b| + |G_ba(a) - a|)                 identity
    loss_D = 1/2 [(D_b(b) - 1)^2 + D_b(pool_b(fake_b))^2] + the same for D_a

(squares and absolute values averaged over pixels and patches). The discriminators see
generated images through a history pool of 50 (Shrivastava et al. 2017), which returns an
older image instead of the newest one half the time.

The Trainer's loop, outputs and checkpoints are reused; this file adds the pool, the step,
the sample picture (input | translated | reconstructed), the checkpoint contents and the
evaluation. The networks are in cyclegan_models.py, the two domains in cyclegan_data.py,
translating image files with a trained run (`minigan translate`) in cyclegan_io.py.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, no_grad
from ..data import Loader
from ..io import CheckpointError, save_image_grid
from ..random import Generator
from . import objectives
from .cyclegan_data import Domain, load_domains
from .cyclegan_models import cyclegan_init, patch_discriminator, resnet_generator
from .recipes import ConfigError, TrainConfig
from .trainer import Trainer, _check_state_matches, check_batch_fits

# ----------------------------------------------------------------------------- history pool


class HistoryPool:
    """The official ImagePool (util/image_pool.py; Shrivastava et al. 2017, section 2.3):
    a buffer of up to `size` generated images. While it fills, each image is stored and
    returned as is; once full, each image is, with probability 1/2, swapped for a random
    stored one (which is returned in its place), else returned as is. Per image, one
    uniform draw, then one index draw when swapping, from `generator`."""

    def __init__(self, size: int, generator: Generator):
        self.size = size
        self.generator = generator
        self.images: list = []

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        chosen = []
        for image in images.array:
            if len(self.images) < self.size:
                self.images.append(image.copy())
                chosen.append(image)
            elif self.generator.uniform((), dtype=np.float64) > 0.5:
                index = int(self.generator.integers(0, self.size))
                chosen.append(self.images[index])
                self.images[index] = image.copy()
            else:
                chosen.append(image)
        return Tensor._wrap(images._backend.xp.stack(chosen), images._backend)

    def state_dict(self) -> dict:
        stored = [a if isinstance(a, np.ndarray) else a.get() for a in self.images]  # cupy.get
        return {"size": self.size, "images": np.stack(stored) if stored else None}

    def load_state_dict(self, state: dict, backend) -> None:
        if state["size"] != self.size:
            raise CheckpointError(f"checkpoint's pool holds {state['size']} images, this run "
                                  f"{self.size}")
        stored = state["images"]
        self.images = [] if stored is None else [backend.asarray(a) for a in stored]


# ----------------------------------------------------------------------------- models


def build_cyclegan(config: TrainConfig, channels: int, generator: Generator) -> dict:
    """{"g_ab", "g_ba", "d_a", "d_b"}: the two ResNet generators and two PatchGANs,
    initialised from N(0, 0.02) (official init_type 'normal', init_gain 0.02)."""
    models = {
        "g_ab": resnet_generator(channels, channels, config.ngf, config.n_blocks,
                                 config.upsample, generator=generator),
        "g_ba": resnet_generator(channels, channels, config.ngf, config.n_blocks,
                                 config.upsample, generator=generator),
        "d_a": patch_discriminator(channels, config.ndf, config.d_layers, generator=generator),
        "d_b": patch_discriminator(channels, config.ndf, config.d_layers, generator=generator),
    }
    for model in models.values():
        cyclegan_init(model, generator)
    return models


def _least_squares_generator_loss(scores: Tensor) -> Tensor:
    """Official GANLoss('lsgan') with target 1: MSE(D(G(x)), 1), without the 1/2 of
    objectives.lsgan_generator_loss, so its weight against the cycle loss is the paper's."""
    return F.mse_loss(scores, 1.0)


# ----------------------------------------------------------------------------- the trainer


class CycleGANTrainer(Trainer):
    """Trains G_ab, G_ba, D_a, D_b on domains config.data_a and config.data_b."""

    kind = "cyclegan"
    loss_plot_keys = ("loss_d", "loss_g", "loss_cycle")
    MODEL_NAMES = ("g_ab", "g_ba", "d_a", "d_b")

    def _build(self) -> None:
        c = self.config
        self.domain_a, self.domain_b = load_domains(c)
        self.image_shape = tuple(self.domain_a.train.shape[1:])
        models = build_cyclegan(c, self.image_shape[0], self.random)
        for model in models.values():
            model.to(self.device)
        self.g_ab, self.g_ba, self.d_a, self.d_b = (models[k] for k in self.MODEL_NAMES)
        for domain in (self.domain_a, self.domain_b):
            check_batch_fits(c.batch_size, len(domain.train),
                             f"domain {domain.name!r}'s training images")
        self.loader_a = Loader(self.domain_a.train, c.batch_size, seed=c.seed)
        self.loader_b = Loader(self.domain_b.train, c.batch_size, seed=c.seed + 1)
        # One Adam for both generators and one for both discriminators, as the official
        # code (Adam keeps per-parameter state, so this equals one Adam per network).
        self.optimizer_g = self._optimizer(
            list(self.g_ab.parameters()) + list(self.g_ba.parameters()), c.lr_g)
        self.optimizer_d = self._optimizer(
            list(self.d_a.parameters()) + list(self.d_b.parameters()), c.lr_d)
        self.pool_a = HistoryPool(c.pool_size, self.random)  # G_ba's images, for D_a
        self.pool_b = HistoryPool(c.pool_size, self.random)  # G_ab's images, for D_b
        # the same held-out images in every sample picture, spread over the held-out set
        # (which may be sorted by class)
        self.fixed_a, self.fixed_b = (
            domain.test[np.linspace(0, len(domain.test) - 1, min(8, c.n_samples)).astype(int)]
            for domain in (self.domain_a, self.domain_b))

    def _batch(self, loader: Loader) -> Tensor:
        return Tensor(loader.next_batch(), device=self.device)

    def step(self) -> dict:
        """One iteration: the generators' step, then the discriminators' step."""
        c = self.config
        for model in (self.g_ab, self.g_ba, self.d_a, self.d_b):
            model.train()
        real_a, real_b = self._batch(self.loader_a), self._batch(self.loader_b)

        # Generators. The discriminators' weights are frozen: backward skips gradients
        # the generators' step would throw away and only flows through D to the images.
        frozen = [p for d in (self.d_a, self.d_b) for p in d.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad = False
        try:
            fake_b = self.g_ab(real_a)
            fake_a = self.g_ba(real_b)
            loss_gan_ab = _least_squares_generator_loss(self.d_b(fake_b))
            loss_gan_ba = _least_squares_generator_loss(self.d_a(fake_a))
            loss_cycle_a = F.l1_loss(self.g_ba(fake_b), real_a) * c.cycle_weight
            loss_cycle_b = F.l1_loss(self.g_ab(fake_a), real_b) * c.cycle_weight
            loss_g = loss_gan_ab + loss_gan_ba + loss_cycle_a + loss_cycle_b
            identity_weight = c.identity_weight * c.cycle_weight
            if identity_weight > 0:
                # a generator given an image of its target domain should leave it alone
                loss_identity_b = F.l1_loss(self.g_ab(real_b), real_b) * identity_weight
                loss_identity_a = F.l1_loss(self.g_ba(real_a), real_a) * identity_weight
                loss_g = loss_g + loss_identity_a + loss_identity_b
            self.optimizer_g.zero_grad()
            self._check_finite(loss_g, "generator loss")
            loss_g.backward()
        finally:
            for p in frozen:
                p.requires_grad = True
        grad_norm_g = self._grad_norm(self.optimizer_parameters(self.optimizer_g), "generators")
        self.optimizer_g.step()

        # Discriminators, on real images and on generated ones from the history pools
        pooled_b = self.pool_b.query(fake_b.detach())
        pooled_a = self.pool_a.query(fake_a.detach())
        loss_d_b = objectives.lsgan_discriminator_loss(self.d_b(real_b), self.d_b(pooled_b))
        loss_d_a = objectives.lsgan_discriminator_loss(self.d_a(real_a), self.d_a(pooled_a))
        loss_d = loss_d_a + loss_d_b
        self.optimizer_d.zero_grad()
        self._check_finite(loss_d, "discriminator loss")
        loss_d.backward()
        grad_norm_d = self._grad_norm(self.optimizer_parameters(self.optimizer_d),
                                      "discriminators")
        self.optimizer_d.step()
        self.step_count += 1
        self._schedule_learning_rate()

        record = {
            "step": self.step_count,
            "loss_d": float(loss_d.item()),
            "loss_g": float(loss_g.item()),
            "loss_d_a": float(loss_d_a.item()),
            "loss_d_b": float(loss_d_b.item()),
            "loss_gan_ab": float(loss_gan_ab.item()),
            "loss_gan_ba": float(loss_gan_ba.item()),
            "loss_cycle_a": float(loss_cycle_a.item()),
            "loss_cycle_b": float(loss_cycle_b.item()),
            "loss_cycle": float(loss_cycle_a.item() + loss_cycle_b.item()),
            "grad_norm_g": grad_norm_g,
            "grad_norm_d": grad_norm_d,
        }
        if identity_weight > 0:
            record["loss_identity_a"] = float(loss_identity_a.item())
            record["loss_identity_b"] = float(loss_identity_b.item())
        return record

    @staticmethod
    def optimizer_parameters(optimizer) -> list:
        return [p for group in optimizer.param_groups for p in group["params"]]

    # ------------------------------------------------------------------ translating

    @no_grad()
    def translate(self, images, direction: str = "a2b", batch_size: int = 100) -> np.ndarray:
        """Images (N, C, H, W) in [-1, 1] of domain A (a2b) or B (b2a), translated."""
        return translate_images(self.generator_for(direction), images, self.device, batch_size)

    def generator_for(self, direction: str):
        if direction not in ("a2b", "b2a"):
            raise ValueError(f"direction must be a2b or b2a, got {direction!r}")
        return self.g_ab if direction == "a2b" else self.g_ba

    def save_samples(self, path) -> None:
        """Rows of input | translated | reconstructed: A -> B -> A on the left, B -> A -> B
        on the right, for the same held-out images every time."""
        fake_b = self.translate(self.fixed_a, "a2b")
        fake_a = self.translate(self.fixed_b, "b2a")
        columns = [self.fixed_a, fake_b, self.translate(fake_b, "b2a"),
                   self.fixed_b, fake_a, self.translate(fake_a, "a2b")]
        rows = min(len(c) for c in columns)
        picture = np.stack([c[:rows] for c in columns], axis=1)  # (rows, 6, C, H, W)
        # enlarged so that each column is at least 56 pixels wide: room for its name
        scale = max(2, -(-56 // picture.shape[-1]))
        save_image_grid(picture.reshape(-1, *picture.shape[2:]), path, nrow=len(columns),
                        scale=scale, column_labels=["input A", "A to B", "back to A", "input B",
                                                    "B to A", "back to B"])

    def sample(self, *args, **kwargs):
        raise ConfigError("a CycleGAN run translates images rather than sampling them: use "
                          "`minigan translate` (or CycleGANTrainer.translate)")

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        state = {
            "kind": self.kind,
            "step": self.step_count,
            "config": self.config.to_dict(),
            "image_shape": list(self.image_shape),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "schedulers": [scheduler.state_dict() for scheduler in self.schedulers],
            "random": self.random.get_state(),
            "loader_a": self.loader_a.state_dict(),
            "loader_b": self.loader_b.state_dict(),
            "pool_a": self.pool_a.state_dict(),
            "pool_b": self.pool_b.state_dict(),
        }
        for name in self.MODEL_NAMES:
            state[name] = getattr(self, name).state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Load a whole state; the models are checked before anything is changed."""
        if state.get("kind") != self.kind:
            raise CheckpointError(f"not a CycleGAN training checkpoint (kind "
                                  f"{state.get('kind')!r})")
        for name in self.MODEL_NAMES:
            _check_state_matches(name, getattr(self, name).state_dict(), state[name])
        for name in self.MODEL_NAMES:
            getattr(self, name).load_state_dict(state[name])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self._load_schedulers(state)
        self.random.set_state(state["random"])
        self.loader_a.load_state_dict(state["loader_a"])
        self.loader_b.load_state_dict(state["loader_b"])
        self.pool_a.load_state_dict(state["pool_a"], backend.get(self.device))
        self.pool_b.load_state_dict(state["pool_b"], backend.get(self.device))
        self.step_count = int(state["step"])

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, n: int | None = None, seed: int = 0) -> dict:
        """Label preservation, cycle reconstruction and domain scores on up to n held-out
        images of each domain (all of them by default); see metrics/translation.py."""
        from ..metrics import translation

        a, b = self.domain_a, self.domain_b
        test_a, test_b = a.test[:n], b.test[:n]
        labels_a = None if a.test_labels is None else a.test_labels[:n]
        labels_b = None if b.test_labels is None else b.test_labels[:n]
        scores = translation.translation_scores(
            lambda x: self.translate(x, "a2b"), lambda x: self.translate(x, "b2a"),
            test_a, test_b, labels_a, labels_b,
            classify_a=_label_classifier(a, self.device),
            classify_b=_label_classifier(b, self.device),
            which_domain=translation.domain_classifier(a.train, b.train, device=self.device,
                                                       seed=seed),
        )
        metric = ("translation of the held-out images of both domains: cycle L1 against the "
                  "input, domain scores by a classifier of A against B")
        if "label_preservation_a2b" in scores and "label_preservation_b2a" in scores:
            metric += ", label preservation by a classifier of each target domain"
        else:
            metric += ("; label preservation is not scored: it needs labels in both domains, "
                       "with the same classes")
        return {"metric": metric, **scores}


def _label_classifier(domain: Domain, device):
    """A digit classifier of the domain: the bundled one for plain MNIST, else one trained
    on the domain's own labelled images (cached); None when the domain has no labels."""
    from ..metrics import translation
    from ..metrics.digits import classify

    if domain.test_labels is None:
        return None
    if domain.mnist_like:
        return lambda x: classify(x, device=device)
    if domain.labelled_y is None:
        return None
    return translation.label_classifier(domain.labelled_x, domain.labelled_y, device=device)


# ----------------------------------------------------------------------------- translate


def translate_images(generator, images, device, batch_size: int = 100) -> np.ndarray:
    """generator (in eval mode: instance norm has no running statistics, so this only
    matters for layers that would) applied to images in chunks, as a NumPy array."""
    x = images.numpy() if isinstance(images, Tensor) else np.asarray(images, dtype=np.float32)
    was_training = generator.training
    generator.eval()
    try:
        with no_grad():
            out = [generator(Tensor(x[i : i + batch_size], device=device)).numpy()
                   for i in range(0, len(x), batch_size)]
    finally:
        generator.train(was_training)
    return np.concatenate(out) if out else np.zeros_like(x)
