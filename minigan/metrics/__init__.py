"""Scores for generated samples: mode coverage on toy mixtures (coverage.py) and
digit-classifier scores on MNIST-like images (digits.py)."""

from .coverage import HIGH_QUALITY_STDS, N_EVAL_SAMPLES, mode_coverage
from .digits import classify, digit_scores

__all__ = ["HIGH_QUALITY_STDS", "N_EVAL_SAMPLES", "mode_coverage", "digit_scores", "classify"]
