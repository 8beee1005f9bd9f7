"""Scores for generated digits, from a small classifier that minigan itself trains.

The classifier is a two-layer CNN trained on 4,000 of the 5,000 bundled MNIST images
(minigan.data "mnist5k"); the other 1,000 (100 per class) are held out. Its weights ship as
digit_classifier.npz beside this file, together with the statistics the scores need, and
can be re-made with

    python -m minigan.metrics.digits --train

`digit_scores(images)` reports, for generated images in [-1, 1]:
  class_histogram   the share of samples predicted as each digit;
  classes_covered   digits that receive at least 1% of the samples (a tenth of their fair
                    share of 10%): a looser rule would count a digit seen once in a
                    thousand samples as covered, a tighter one punishes honest variance;
  kl_to_uniform     KL(histogram || uniform), 0 when balanced, log 10 = 2.30 when collapsed
                    to one digit;
  frechet_distance  the Frechet distance (Heusel et al. 2017, the formula of FID) between
                    Gaussians fitted to the classifier's 64 penultimate features of the
                    samples and of the 4,000 real training images;
  frechet_distance_real_floor  the same distance for the 1,000 held-out real images: what
                    perfect samples would score with 1,000 samples (use 1,000 to compare);
  classifier_accuracy  the classifier's accuracy on the held-out images.
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from pathlib import Path

import numpy as np

from .. import backend, nn, no_grad, optim
from .. import functional as F
from ..autograd import Tensor
from ..data import Loader, images_to_float, load_dataset
from ..random import Generator

WEIGHTS_FILE = Path(__file__).resolve().parent / "digit_classifier.npz"
N_CLASSES = 10
HELDOUT_PER_CLASS = 100
COVERED_SHARE = 0.01
SPLIT_SEED = 0


class DigitClassifier(nn.Module):
    """28x28 digit -> 10 logits. Two stride-2 convolutions (28 -> 14 -> 7), a 64-unit
    hidden layer whose activations are the features for the Frechet distance, a linear
    read-out."""

    def __init__(self, device=None, generator: Generator | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, stride=2, padding=1, device=device, generator=generator)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1, device=device, generator=generator)
        self.hidden = nn.Linear(32 * 7 * 7, 64, device=device, generator=generator)
        self.out = nn.Linear(64, N_CLASSES, device=device, generator=generator)

    def features(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return F.relu(self.hidden(x.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))


def heldout_split(labels: np.ndarray, per_class: int = HELDOUT_PER_CLASS,
                  seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): per_class images of every class held out, chosen
    by a seeded permutation so the split is the same everywhere."""
    order = np.random.default_rng(seed).permutation(len(labels))
    heldout = np.concatenate([order[labels[order] == c][:per_class] for c in range(N_CLASSES)])
    heldout.sort()
    train = np.setdiff1d(np.arange(len(labels)), heldout)
    return train, heldout


# ----------------------------------------------------------------------------- statistics


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as FID's np.cov) of features (N, D), in float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
    """||m1 - m2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)) between two Gaussians.

    tr((C1 C2)^(1/2)) is the sum of square roots of the eigenvalues of C1 C2, which are
    those of the symmetric PSD matrix C1^(1/2) C2 C1^(1/2): eigvalsh on it is stable and
    needs no scipy.
    """
    values, vectors = np.linalg.eigh(cov1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ cov2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    gap = np.asarray(mean1) - np.asarray(mean2)
    return float(gap @ gap + np.trace(cov1) + np.trace(cov2) - 2 * cross)


def kl_to_uniform(histogram: np.ndarray) -> float:
    """KL(p || uniform) of a histogram of shares; empty bins contribute 0."""
    p = np.asarray(histogram, dtype=np.float64)
    p = p[p > 0]
    return float(np.sum(p * np.log(p * N_CLASSES)))


# ----------------------------------------------------------------------------- the classifier


def _as_digits(images) -> np.ndarray:
    """Images in [-1, 1] as float32 (N, 1, 28, 28): resized and made grayscale if needed."""
    x = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"digit_scores: expected images (N, 1, H, W), (N, 3, H, W) or (N, H, W) in "
            f"[-1, 1], got shape {x.shape}"
        )
    if x.shape[1:] == (1, 28, 28):
        return x.astype(np.float32, copy=False)
    pixels = np.clip(np.rint((x.transpose(0, 2, 3, 1) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return images_to_float(pixels, image_size=28, channels=1)


def _run(model: DigitClassifier, x: np.ndarray, device, batch_size: int = 500):
    """(logits, features) as NumPy arrays, in chunks, without recording a graph."""
    logits, features = [], []
    with no_grad():
        for start in range(0, len(x), batch_size):
            batch = Tensor(x[start : start + batch_size], device=device)
            h = model.features(batch)
            logits.append(model.out(h).numpy())
            features.append(h.numpy())
    return np.concatenate(logits), np.concatenate(features)


@functools.lru_cache(maxsize=4)
def _load(device: str) -> tuple[DigitClassifier, dict]:
    if not WEIGHTS_FILE.exists():
        raise FileNotFoundError(
            f"digit classifier weights {WEIGHTS_FILE} are missing; make them with "
            "python -m minigan.metrics.digits --train"
        )
    model = DigitClassifier(device=device)
    with np.load(WEIGHTS_FILE) as archive:
        weights = {k[len("param/"):]: archive[k] for k in archive.files if k.startswith("param/")}
        stats = {k: archive[k] for k in archive.files if not k.startswith("param/")}
    model.load_state_dict(weights)
    model.eval()
    return model, stats


def load_classifier(device=None) -> tuple[DigitClassifier, dict]:
    """The bundled classifier on device, and its stored statistics (real_mean, real_cov,
    floor, accuracy)."""
    return _load(backend.get(device).name)


def classify(images, device=None) -> np.ndarray:
    """The digit (0..9) the bundled classifier sees in each image (same inputs as
    digit_scores)."""
    model, _ = load_classifier(device)
    logits, _ = _run(model, _as_digits(images), backend.get(device).name)
    return logits.argmax(axis=1)


def digit_scores(images, device=None) -> dict:
    """Class coverage and Frechet distance of generated digits (see the module docstring).

    images: (N, 1, H, W), (N, 3, H, W) or (N, H, W), values in [-1, 1], array or Tensor;
    other sizes than 28x28 are resized. Pass 1,000 samples to compare the Frechet distance
    with the real-data floor (its value depends on the sample count).
    """
    x = _as_digits(images)
    if len(x) < 2:
        raise ValueError(f"digit_scores: need at least 2 images for a covariance, got {len(x)}")
    model, stats = load_classifier(device)
    logits, features = _run(model, x, backend.get(device).name)
    counts = np.bincount(logits.argmax(axis=1), minlength=N_CLASSES)
    histogram = counts / len(x)
    mean, cov = gaussian_stats(features)
    return {
        "n_samples": len(x),
        "class_histogram": histogram.tolist(),
        "classes_covered": int((counts >= max(1, math.ceil(COVERED_SHARE * len(x)))).sum()),
        "kl_to_uniform": kl_to_uniform(histogram),
        "frechet_distance": frechet_distance(mean, cov, stats["real_mean"], stats["real_cov"]),
        "frechet_distance_real_floor": float(stats["floor"]),
        "classifier_accuracy": float(stats["accuracy"]),
    }


# Digit scores mean something only for digits: a labelled dataset counts as digits when the
# classifier (96.6% on held-out MNIST) agrees with this share of its labels; on Fashion-MNIST
# it agrees with about a tenth, chance for ten classes.
DIGIT_DATA_AGREEMENT = 0.9
DIGIT_DATA_CHECKED = 1000


def digit_data_check(data, device=None) -> tuple[bool, str]:
    """(whether the digit scores apply to a Dataset's generated samples, why or why not)."""
    shape = tuple(data.x.shape[1:])
    if data.kind != "images" or shape != (1, 28, 28):
        return False, (f"the digit scores need 28x28 grayscale digits; the data "
                       f"{data.name!r} holds {data.kind} of shape {shape}")
    if data.name == "mnist5k":
        return True, "the data is the bundled MNIST subset the classifier learnt from"
    if data.y is None:
        return False, (f"the data {data.name!r} has no labels, so whether it shows digits "
                       "cannot be checked (give labels: an IDX labels file beside the "
                       "images, or one subfolder per digit named 0 to 9)")
    n = min(len(data.y), DIGIT_DATA_CHECKED)
    agreement = float((classify(data.x[:n], device=device) == data.y[:n]).mean())
    if agreement < DIGIT_DATA_AGREEMENT:
        return False, (f"the data {data.name!r} is not digits as MNIST draws them: the "
                       f"classifier agrees with {agreement:.0%} of {n} of its labels (at least "
                       f"{DIGIT_DATA_AGREEMENT:.0%} needed)")
    return True, f"the classifier agrees with {agreement:.0%} of {n} of the data's labels"


# ----------------------------------------------------------------------------- training


def _shift(batch: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Each image moved by up to max_shift pixels (background fill): more varied digits
    from only 400 per class."""
    n, _, h, w = batch.shape
    padded = np.pad(batch, ((0, 0), (0, 0), (max_shift,) * 2, (max_shift,) * 2),
                    constant_values=-1.0)
    dy, dx = rng.integers(0, 2 * max_shift + 1, (2, n))
    return np.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def train_classifier(epochs: int = 20, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                     device=None, out: Path | None = WEIGHTS_FILE, log=print) -> dict:
    """Train the classifier on the bundled MNIST subset, save weights and statistics to
    out (skipped when None), and return the report (held-out accuracy, floor)."""
    device = backend.get(device).name
    data = load_dataset("mnist5k")
    train, heldout = heldout_split(data.y)
    model = DigitClassifier(device=device, generator=Generator(seed))
    optimizer = optim.Adam(model.parameters(), lr=lr)
    loader = Loader((data.x[train], data.y[train]), batch_size, seed=seed)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        if epoch == epochs - epochs // 4:  # a 10x smaller step for the last quarter, to settle
            for group in optimizer.param_groups:
                group["lr"] = lr / 10
        model.train()
        total = 0.0
        for _ in range(len(loader)):
            images, labels = loader.next_batch()
            x = Tensor(_shift(images, rng), device=device)
            loss = F.cross_entropy(model(x), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        model.eval()
        logits, _ = _run(model, data.x[heldout], device)
        accuracy = float((logits.argmax(1) == data.y[heldout]).mean())
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(loader):.4f}, held-out accuracy "
            f"{accuracy:.4f} ({time.perf_counter() - started:.0f} s)")
    _, train_features = _run(model, data.x[train], device)
    _, heldout_features = _run(model, data.x[heldout], device)
    real_mean, real_cov = gaussian_stats(train_features)
    floor = frechet_distance(*gaussian_stats(heldout_features), real_mean, real_cov)
    report = {"accuracy": accuracy, "floor": floor, "epochs": epochs, "seed": seed}
    log(f"held-out accuracy {accuracy:.4f}, real-data Frechet floor {floor:.4f}")
    if out is not None:
        arrays = {f"param/{k}": v.astype(np.float32) for k, v in model.state_dict().items()}
        np.savez_compressed(out, **arrays, real_mean=real_mean, real_cov=real_cov,
                            floor=floor, accuracy=accuracy, epochs=epochs, seed=seed)
        _load.cache_clear()
        log(f"wrote {out}")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The bundled digit classifier.")
    parser.add_argument("--train", action="store_true", help="train it and write the weights")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    args = parser.parse_args(argv)
    if args.train:
        train_classifier(args.epochs, seed=args.seed, device=args.device, out=args.out)
    else:
        _, stats = load_classifier(args.device)
        print(f"{WEIGHTS_FILE}: held-out accuracy {float(stats['accuracy']):.4f}, "
              f"real-data Frechet floor {float(stats['floor']):.4f}")


if __name__ == "__main__":
    main()
