"""Scores for image-to-image translation (CycleGAN), from classifiers that minigan trains.

`translation_scores(a2b, b2a, test_a, test_b, ...)` reports, on held-out images of both
domains:

  label_preservation_a2b   the share of translations G_ab(a) that a digit classifier of
                           domain B assigns a's label (and b2a the other way): a translation
                           that keeps the content keeps the digit;
  classifier_accuracy_b    that classifier's accuracy on real held-out B images: the ceiling
                           of label_preservation_a2b (and _a the ceiling of _b2a);
  cycle_l1_a               mean |G_ba(G_ab(a)) - a| (pixels in [-1, 1]), and _b;
  identity_baseline_l1_a   mean |G_ab(a) - a|: the reconstruction error if the way back
                           were the identity. A cycle L1 far below it shows G_ba undoes
                           what G_ab changed, rather than G_ab changing little;
  domain_score_a2b         the share of G_ab(a) that a domain classifier (real A vs real B)
                           puts in domain B (and b2a: in domain A);
  domain_classifier_accuracy  its accuracy on the real held-out images of both domains.

The digit classifier of a domain is the bundled one (metrics/digits.py) for plain MNIST;
for another labelled domain (inverted MNIST, the 8x8 UCI digits scaled up, a labelled folder)
`label_classifier` trains the same network, with the same recipe, on that domain's labelled
training images, so the ceiling is measured, not assumed. Trained classifiers are cached
under $MINIGAN_CACHE (default ~/.cache/minigan), keyed by a hash of their data and recipe.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import backend, nn, no_grad, optim
from .. import functional as F
from ..autograd import Tensor
from ..data import Loader
from ..random import Generator
from .digits import DigitClassifier, _as_digits, _run, _shift

Translate = Callable[[np.ndarray], np.ndarray]

# The bundled classifier's recipe (digits.train_classifier): Adam 1e-3, batch 64, shifts
# of up to 2 pixels, 20 epochs, the step 10x smaller for the last quarter.
LABEL_EPOCHS = 20
DOMAIN_STEPS = 300  # real A vs real B is an easy task: a few hundred steps separate them


def cache_dir() -> Path:
    return Path(os.environ.get("MINIGAN_CACHE") or Path.home() / ".cache" / "minigan")


def _cache_key(kind: str, *arrays, **recipe) -> str:
    digest = hashlib.sha256(f"{kind} {sorted(recipe.items())}".encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype} {array.shape}".encode())
        digest.update(array.tobytes())
    return f"{kind}-{digest.hexdigest()[:20]}"


def _cached(model: nn.Module, key: str, train: Callable[[], None]) -> nn.Module:
    """Load model's weights from the cache, or train it and store them (best effort:
    an unwritable cache only costs the training next time)."""
    path = cache_dir() / f"{key}.npz"
    if path.exists():
        with np.load(path) as archive:
            model.load_state_dict({k: archive[k] for k in archive.files})
        return model
    train()
    try:
        from ..io import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, **model.state_dict()))
    except OSError:
        pass
    return model


# ----------------------------------------------------------------------------- classifiers


def label_classifier(x: np.ndarray, y: np.ndarray, device=None, epochs: int | None = None,
                     seed: int = 0) -> Translate:
    """A DigitClassifier trained on labelled images x (N, C, H, W) in [-1, 1] of one domain
    (resized to 28x28 grayscale as the bundled one sees them) for `epochs` (LABEL_EPOCHS);
    returns images -> labels."""
    device = backend.get(device).name
    epochs = LABEL_EPOCHS if epochs is None else epochs
    digits = _as_digits(x)
    labels = np.asarray(y, dtype=np.int64)
    model = DigitClassifier(device=device, generator=Generator(seed))

    def train():
        lr = 1e-3
        optimizer = optim.Adam(model.parameters(), lr=lr)
        loader = Loader((digits, labels), min(64, len(digits)), seed=seed)
        rng = np.random.default_rng(seed)
        model.train()
        for epoch in range(epochs):
            if epoch == epochs - epochs // 4:
                for group in optimizer.param_groups:
                    group["lr"] = lr / 10
            for _ in range(len(loader)):
                images, targets = loader.next_batch()
                loss = F.cross_entropy(model(Tensor(_shift(images, rng), device=device)),
                                       targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    _cached(model, _cache_key("labels", digits, labels, epochs=epochs, seed=seed), train)
    model.eval()

    def classify(images) -> np.ndarray:
        logits, _ = _run(model, _as_digits(images), device)
        return logits.argmax(axis=1)

    return classify


class DomainClassifier(nn.Module):
    """(N, C, H, W) -> one logit, > 0 for domain B: two stride-2 4x4 convolutions with
    LeakyReLU(0.2) and a linear read-out. H and W must be multiples of 4."""

    def __init__(self, image_shape: tuple, device=None, generator: Generator | None = None):
        super().__init__()
        channels, height, width = image_shape
        self.conv1 = nn.Conv2d(channels, 8, 4, stride=2, padding=1, device=device,
                               generator=generator)
        self.conv2 = nn.Conv2d(8, 16, 4, stride=2, padding=1, device=device, generator=generator)
        self.out = nn.Linear(16 * (height // 4) * (width // 4), 1, device=device,
                             generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return self.out(x.flatten(1))


def domain_classifier(x_a: np.ndarray, x_b: np.ndarray, device=None, steps: int | None = None,
                      seed: int = 0) -> Translate:
    """A DomainClassifier trained on real images of A (label 0) and B (label 1) for `steps`
    (DOMAIN_STEPS) of balanced batches of 32 + 32, BCE with logits, Adam 1e-3; returns
    images -> 0 (A) or 1 (B)."""
    device = backend.get(device).name
    steps = DOMAIN_STEPS if steps is None else steps
    model = DomainClassifier(tuple(x_a.shape[1:]), device=device, generator=Generator(seed))

    def train():
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        half = min(32, len(x_a), len(x_b))
        loader_a = Loader(x_a, half, seed=seed)
        loader_b = Loader(x_b, half, seed=seed + 1)
        targets = np.concatenate([np.zeros((half, 1)), np.ones((half, 1))]).astype(np.float32)
        for _ in range(steps):
            batch = np.concatenate([loader_a.next_batch(), loader_b.next_batch()])
            logits = model(Tensor(batch, device=device))
            loss = F.binary_cross_entropy_with_logits(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    _cached(model, _cache_key("domains", x_a, x_b, steps=steps, seed=seed), train)

    def which(images) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32)
        with no_grad():
            logits = np.concatenate([model(Tensor(x[i : i + 500], device=device)).numpy()
                                     for i in range(0, len(x), 500)])
        return (logits[:, 0] > 0).astype(np.int64)

    return which


# ----------------------------------------------------------------------------- scores


def _l1(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.abs(x.astype(np.float64) - y).mean())


def translation_scores(a2b: Translate, b2a: Translate, test_a: np.ndarray, test_b: np.ndarray,
                       labels_a: np.ndarray | None = None, labels_b: np.ndarray | None = None,
                       classify_a: Translate | None = None, classify_b: Translate | None = None,
                       which_domain: Translate | None = None) -> dict:
    """The scores of the module docstring for translations a2b, b2a (images -> images) on
    held-out images test_a, test_b. Label scores need the labels and the classifier of the
    target domain; the domain score needs which_domain (images -> 0 for A, 1 for B)."""
    fake_b, fake_a = a2b(test_a), b2a(test_b)
    scores = {
        "n_a": len(test_a),
        "n_b": len(test_b),
        "cycle_l1_a": _l1(b2a(fake_b), test_a),
        "cycle_l1_b": _l1(a2b(fake_a), test_b),
        "identity_baseline_l1_a": _l1(fake_b, test_a),
        "identity_baseline_l1_b": _l1(fake_a, test_b),
    }
    if labels_a is not None and classify_b is not None:
        scores["label_preservation_a2b"] = float((classify_b(fake_b) == labels_a).mean())
    if labels_b is not None and classify_b is not None:
        scores["classifier_accuracy_b"] = float((classify_b(test_b) == labels_b).mean())
    if labels_b is not None and classify_a is not None:
        scores["label_preservation_b2a"] = float((classify_a(fake_a) == labels_b).mean())
    if labels_a is not None and classify_a is not None:
        scores["classifier_accuracy_a"] = float((classify_a(test_a) == labels_a).mean())
    if which_domain is not None:
        scores["domain_score_a2b"] = float((which_domain(fake_b) == 1).mean())
        scores["domain_score_b2a"] = float((which_domain(fake_a) == 0).mean())
        real = np.concatenate([which_domain(test_a) == 0, which_domain(test_b) == 1])
        scores["domain_classifier_accuracy"] = float(real.mean())
    return scores
