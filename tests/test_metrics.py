"""Mode coverage on toy mixtures, and the bundled digit classifier's scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minigan.data import MIXTURES, load_dataset, sample_mixture
from minigan.metrics import N_EVAL_SAMPLES, digit_scores, mode_coverage
from minigan.metrics.digits import (
    classify,
    frechet_distance,
    gaussian_stats,
    heldout_split,
    kl_to_uniform,
    load_classifier,
)
from minigan.random import Generator

# ----------------------------------------------------------------------------- mode coverage


@pytest.mark.parametrize("name", ["ring8", "grid25", "8gaussians", "25gaussians"])
def test_exact_samples_capture_every_mode(name):
    mixture = MIXTURES[name]
    samples = sample_mixture(name, N_EVAL_SAMPLES, Generator(3))
    result = mode_coverage(samples, mixture.modes, mixture.std)
    n_modes = len(mixture.modes)
    assert result["modes_captured"] == result["n_modes"] == n_modes
    # The distance to the own mode in std units is chi with 2 degrees of freedom:
    # P(r > 3) = exp(-9/2) = 1.1%; over 2,500 samples the HQ fraction is 0.989 +- 0.002.
    assert result["high_quality_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    # A multinomial histogram of 2,500 over n_modes bins: reverse KL ~ (n_modes - 1) / (2N),
    # at most 0.005 for 25 modes; 0.03 leaves a wide margin.
    assert 0 <= result["reverse_kl"] < 0.03
    assert sum(result["mode_counts"]) == round(result["high_quality_fraction"] * 2500)


def test_half_the_modes():
    mixture = MIXTURES["ring8"]
    rng = np.random.default_rng(0)
    kept = mixture.modes[::2]  # 4 of the 8 modes
    samples = kept[rng.integers(0, 4, 2000)] + mixture.std * rng.standard_normal((2000, 2))
    result = mode_coverage(samples, mixture.modes, mixture.std)
    assert result["modes_captured"] == 4
    assert result["high_quality_fraction"] > 0.97
    assert result["mode_counts"][1] == 0 and result["mode_counts"][0] > 0
    # Evenly spread over half the modes: KL to uniform is log 2 (up to sampling noise).
    assert result["reverse_kl"] == pytest.approx(math.log(2), abs=0.01)


def test_noise_is_low_quality():
    mixture = MIXTURES["grid25"]
    noise = np.random.default_rng(1).uniform(-5, 5, (2500, 2))
    result = mode_coverage(noise, mixture.modes, mixture.std)
    # The 25 discs of radius 3 std = 0.15 cover 25 * pi * 0.15^2 / 100 = 1.8% of the square.
    assert result["high_quality_fraction"] < 0.04
    one_point = mode_coverage(mixture.modes[:1] + 0.01, mixture.modes, mixture.std)
    assert one_point["modes_captured"] == 1
    assert one_point["reverse_kl"] == pytest.approx(math.log(25))
    far = mode_coverage(np.full((5, 2), 100.0), mixture.modes, mixture.std)
    assert far["modes_captured"] == 0 and far["reverse_kl"] == math.inf


def test_mode_coverage_errors():
    with pytest.raises(ValueError, match=r"samples \(4, 3\) and modes \(8, 2\)"):
        mode_coverage(np.zeros((4, 3)), MIXTURES["ring8"].modes, 0.01)
    with pytest.raises(ValueError, match="std must be positive"):
        mode_coverage(np.zeros((4, 2)), MIXTURES["ring8"].modes, 0.0)


# ----------------------------------------------------------------------------- digit scores


@pytest.fixture(scope="module")
def heldout():
    data = load_dataset("mnist5k")
    _, index = heldout_split(data.y)
    return data.x[index], data.y[index]


def test_heldout_split_is_stratified_and_disjoint():
    labels = load_dataset("mnist5k").y
    train, held = heldout_split(labels)
    assert len(held) == 1000 and len(train) == 4000
    assert not set(train) & set(held)
    assert np.array_equal(np.bincount(labels[held]), [100] * 10)
    assert np.array_equal(heldout_split(labels)[1], held)  # the same split every time


def test_classifier_accuracy_on_heldout(heldout):
    x, y = heldout
    _, stats = load_classifier("numpy")
    accuracy = (classify(x, device="numpy") == y).mean()
    assert accuracy > 0.9
    # The stored figure is this same measurement (float32 sums: exact to a sample or two).
    assert accuracy == pytest.approx(float(stats["accuracy"]), abs=0.003)


def test_real_images_score_like_the_floor(heldout):
    x, _ = heldout
    scores = digit_scores(x, device="numpy")
    assert scores["n_samples"] == 1000 and scores["classes_covered"] == 10
    assert sum(scores["class_histogram"]) == pytest.approx(1.0)
    # 100 per class, a few misread: the histogram is close to uniform.
    assert scores["kl_to_uniform"] < 0.01
    # The held-out images are the floor's own sample, so the distance is the floor.
    assert scores["frechet_distance"] == pytest.approx(
        scores["frechet_distance_real_floor"], rel=1e-3
    )
    assert scores["classifier_accuracy"] > 0.95


def test_collapsed_and_noisy_samples_score_badly(heldout):
    x, _ = heldout
    seen = classify(x, device="numpy")
    ones, zeros = x[seen == 1], x[seen == 0]
    collapsed = digit_scores(np.concatenate([ones] * 3)[:200], device="numpy")
    assert collapsed["classes_covered"] == 1
    assert collapsed["kl_to_uniform"] == pytest.approx(math.log(10))
    # The 1% rule: of 200 samples a digit needs 2 to count as covered.
    many_ones = np.concatenate([ones] * 3)
    almost = digit_scores(np.concatenate([many_ones[:199], zeros[:1]]), device="numpy")
    assert almost["classes_covered"] == 1 and almost["class_histogram"][0] == 0.005
    two = digit_scores(np.concatenate([many_ones[:198], zeros[:2]]), device="numpy")
    assert two["classes_covered"] == 2
    noise = np.random.default_rng(0).uniform(-1, 1, (200, 1, 32, 32)).astype(np.float32)
    noisy = digit_scores(noise, device="numpy")  # 32x32 input is resized to 28x28
    real = digit_scores(x[::5], device="numpy")  # 200 images, 20 of each digit
    assert noisy["frechet_distance"] > 10 * real["frechet_distance"]


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    cov = a @ a.T + np.eye(4)
    assert frechet_distance(np.zeros(4), cov, np.zeros(4), cov) == pytest.approx(0, abs=1e-9)
    # Diagonal covariances: the distance is |m1 - m2|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 3.0 + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    assert frechet_distance(np.ones(3), np.diag(d1), np.zeros(3), np.diag(d2)) == pytest.approx(
        expected
    )
    mean, cov = gaussian_stats(rng.standard_normal((50_000, 2)))
    assert np.allclose(mean, 0, atol=0.02) and np.allclose(cov, np.eye(2), atol=0.02)


def test_kl_to_uniform_and_errors():
    assert kl_to_uniform([0.1] * 10) == pytest.approx(0)
    assert kl_to_uniform([1.0] + [0.0] * 9) == pytest.approx(math.log(10))
    with pytest.raises(ValueError, match=r"expected images \(N, 1, H, W\).*got \S+ \(5, 2, 8, 8\)"):
        digit_scores(np.zeros((5, 2, 8, 8)))
