"""The two image domains of a CycleGAN run: built-in ones and any data source.

A domain is split once, by a fixed seed, into training images (what CycleGAN sees) and
held-out images (what the evaluation sees). The built-in translation tasks:

    mnist5k-half-a / mnist5k-inverted-half-b   MNIST and 1 - MNIST (the bundled 5,000-image
        subset), trained on two disjoint halves of the 4,000 images the bundled digit
        classifier learnt from, so no training image of A has its inverse in B (unpaired);
        both held out on the classifier's 1,000 held-out images.
    mnist5k                                    all 4,000 / the 1,000 held out.
    digits8x8                                  the UCI optical digits (8x8, resized to
        image_size), 30 per class held out.

Any other name or path is read by load_dataset (image folders, IDX, .npz) and a seeded
tenth of it (at most MAX_HELDOUT images) is held out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import Dataset, load_dataset
from ..metrics.digits import heldout_split
from .recipes import ConfigError, TrainConfig

MAX_HELDOUT = 500  # held-out images of a domain the user brings (at most a tenth of it)
SPLIT_SEED = 0  # fixes which images are held out, and the halves of the built-in tasks
DIGITS8X8_HELDOUT_PER_CLASS = 30  # of about 180 per class in the UCI set: 300 held out


@dataclass
class Domain:
    """One side of a translation task. `train` feeds CycleGAN; `test` is held out for
    evaluation. `labelled_x/y` are labelled images of this domain that a classifier may
    learn from (never the held-out ones). `mnist_like`: the bundled digit classifier (trained
    on plain MNIST) is a classifier of this domain."""

    name: str
    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    labelled_x: np.ndarray | None = None
    labelled_y: np.ndarray | None = None
    classes: list | None = None
    mnist_like: bool = False


def _mnist5k_domain(name: str, config: TrainConfig, half: int | None, inverted: bool) -> Domain:
    """The bundled MNIST subset, split as the bundled digit classifier was: its 1,000
    held-out images are the test set. half 0 or 1 keeps one of two disjoint halves of the
    other 4,000 for training, so two domains made from them share no image (unpaired).
    inverted: 1 - MNIST (in [-1, 1], -x), white background and black strokes. A classifier
    of the domain may learn from all 4,000 (in the domain's colours), as the bundled one
    did: it measures the translations and never takes part in training them."""
    data = load_dataset("mnist5k", config.image_size or None, config.channels or None)
    train, test = heldout_split(data.y)
    x = -data.x if inverted else data.x
    labelled = train
    if half is not None:
        shuffled = np.random.default_rng(SPLIT_SEED).permutation(train)
        train = np.sort(shuffled[: len(shuffled) // 2] if half == 0
                        else shuffled[len(shuffled) // 2:])
    return Domain(name, x[train], x[test], data.y[train], data.y[test], x[labelled],
                  data.y[labelled], data.classes, mnist_like=not inverted)


def _digits8x8_domain(name: str, config: TrainConfig) -> Domain:
    """The UCI optical digits (8x8, spread to 0..255), resized to image_size; 30 per class
    held out."""
    data = load_dataset("digits8x8", config.image_size or None, config.channels or None)
    train, test = heldout_split(data.y, per_class=DIGITS8X8_HELDOUT_PER_CLASS, seed=SPLIT_SEED)
    return Domain(name, data.x[train], data.x[test], data.y[train], data.y[test],
                  data.x[train], data.y[train], data.classes)


# Built-in domains, beside every source load_dataset reads (image folders, IDX, .npz, ...)
BUILTIN_DOMAINS = {
    "mnist5k": lambda c: _mnist5k_domain("mnist5k", c, None, False),
    "mnist5k-half-a": lambda c: _mnist5k_domain("mnist5k-half-a", c, 0, False),
    "mnist5k-inverted-half-b": lambda c: _mnist5k_domain("mnist5k-inverted-half-b", c, 1, True),
    "digits8x8": lambda c: _digits8x8_domain("digits8x8", c),
}


def _user_domain(source: str, config: TrainConfig) -> Domain:
    """Any data source load_dataset reads; a seeded tenth (at most MAX_HELDOUT) held out."""
    data: Dataset = load_dataset(source, config.image_size or None, config.channels or None)
    if data.kind != "images":
        raise ConfigError(f"cyclegan: domain {source!r} holds {data.kind}, not images")
    if len(data) < 2:
        raise ConfigError(f"cyclegan: domain {source!r} needs at least 2 images, has {len(data)}")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(data))
    n_test = max(1, min(MAX_HELDOUT, len(data) // 10))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    y = data.y
    return Domain(source, data.x[train], data.x[test], None if y is None else y[train],
                  None if y is None else y[test], data.x[train], None if y is None else y[train],
                  data.classes)


def load_domain(source: str, config: TrainConfig) -> Domain:
    """A built-in domain (BUILTIN_DOMAINS) or any data source, resized and converted as
    the config says."""
    if source in BUILTIN_DOMAINS:
        return BUILTIN_DOMAINS[source](config)
    return _user_domain(source, config)


def load_domains(config: TrainConfig) -> tuple[Domain, Domain]:
    """Domains A and B of a config, checked to be images of one shape CycleGAN can take."""
    a, b = load_domain(config.data_a, config), load_domain(config.data_b, config)
    (ca, ha, wa), (cb, hb, wb) = a.train.shape[1:], b.train.shape[1:]
    if ca != cb:
        raise ConfigError(
            f"cyclegan: domain A ({config.data_a!r}) has {ca} channel(s) and domain B "
            f"({config.data_b!r}) has {cb}; set channels = 1 or 3 (--set channels=3) to "
            "convert both"
        )
    if (ha, wa) != (hb, wb):
        raise ConfigError(
            f"cyclegan: domain A ({config.data_a!r}) has {ha}x{wa} images and domain B "
            f"({config.data_b!r}) {hb}x{wb}; set image_size (--set image_size=N) to resize both"
        )
    if ha != wa or ha % 4:
        raise ConfigError(
            f"cyclegan: images must be square with a side that is a multiple of 4 (the "
            f"generator halves it twice), got {ha}x{wa}; set image_size (--set image_size=N)"
        )
    if a.classes != b.classes:  # labels mean the same thing only with the same classes
        for domain in (a, b):
            domain.train_labels = domain.test_labels = domain.labelled_y = None
    return a, b
