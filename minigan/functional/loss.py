"""Losses (torch.nn.functional names): binary cross-entropy from logits and from
probabilities, mean squared and absolute error, and cross-entropy over classes with the
log_softmax / softmax / nll_loss it is made of.

The two that need care with large inputs are Functions with stable forms: BCE from logits
(max(x, 0) - x t + log1p(exp(-|x|)), gradient sigmoid(x) - t) and log_softmax (shift by the
max). Both backward passes are Tensor ops, so GAN penalties can differentiate them again.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, Tensor
from .activation import sigmoid

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "softmax",
]

REDUCTIONS = ("mean", "sum", "none")

# PyTorch clamps log(p) at -100 in binary_cross_entropy so that p = 0 or 1 gives a finite
# loss, and bounds the gradient's denominator p (1 - p) below by 1e-12
# (aten/src/ATen/native/Loss.cpp: binary_cross_entropy_out_cpu, EPSILON).
LOG_CLAMP = -100.0
BCE_EPSILON = 1e-12


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _target_like(target, input: Tensor, op: str) -> Tensor:
    """target as a Tensor of input's shape: a number fills that shape, an array or Tensor
    must already have it (silent broadcasting of a (N,) target against (N, 1) scores is a
    classic bug, so it is an error here)."""
    backend = input._backend
    if isinstance(target, (int, float)):
        return Tensor._wrap(backend.xp.full(input.shape, target, dtype=input.dtype), backend)
    if not isinstance(target, Tensor):
        target = Tensor._wrap(backend.asarray(target, dtype=input.dtype), backend)
    if target.shape != input.shape:
        raise ValueError(
            f"{op}: target shape {target.shape} does not match input shape {input.shape}"
        )
    return target


def _apply_weight(loss: Tensor, weight, op: str) -> Tensor:
    if weight is None:
        return loss
    if not isinstance(weight, Tensor):
        weight = Tensor._wrap(loss._backend.asarray(weight, dtype=loss.dtype), loss._backend)
    if np.broadcast_shapes(weight.shape, loss.shape) != loss.shape:
        raise ValueError(f"{op}: weight shape {weight.shape} does not broadcast to {loss.shape}")
    return loss * weight


# ----------------------------------------------------------------------------- binary


class BCEWithLogits(Function):
    """Elementwise BCE from logits x and targets t."""

    def forward(self, x, target):
        return self.K.bce_with_logits(x, target)

    def backward(self, g):
        x, target = self.inputs
        gx = g * (sigmoid(x) - target) if self.needs_input_grad[0] else None
        gt = -g * x if self.needs_input_grad[1] else None
        return gx, gt


def binary_cross_entropy_with_logits(
    input: Tensor, target, weight=None, reduction: str = "mean"
) -> Tensor:
    """-[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], stable for any logit x."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target = _target_like(target, input, "binary_cross_entropy_with_logits")
    loss = BCEWithLogits.apply(input, target)
    return _reduce(_apply_weight(loss, weight, "binary_cross_entropy_with_logits"), reduction)


class BinaryCrossEntropy(Function):
    """Elementwise BCE from probabilities p, logs clamped at -100 as in PyTorch."""

    def forward(self, p, target):
        xp = self.xp
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
            log_p = xp.maximum(xp.log(p), LOG_CLAMP)
            log_q = xp.maximum(xp.log1p(-p), LOG_CLAMP)
        self.log_p, self.log_q = log_p, log_q
        return -(target * log_p + (1 - target) * log_q)

    def backward(self, g):
        p, target = self.inputs
        gp = gt = None
        if self.needs_input_grad[0]:
            gp = g * (p - target) / ((1.0 - p) * p).clip(min=BCE_EPSILON)
        if self.needs_input_grad[1]:
            # d/dt = log(1 - p) - log(p); as Tensor ops only where they are finite
            if bool(((p.data > 0) & (p.data < 1)).all()):
                gt = g * ((1.0 - p).log() - p.log())
            else:
                gt = g * Tensor._wrap(self.log_q - self.log_p, self.backend)
        return gp, gt


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """BCE on probabilities in [0, 1]; prefer binary_cross_entropy_with_logits on logits."""
    op = "binary_cross_entropy"
    _check_reduction(reduction, op)
    target = _target_like(target, input, op)
    if bool(((input.data < 0) | (input.data > 1)).any()):
        raise ValueError(f"{op}: input values must be probabilities in [0, 1]")
    loss = BinaryCrossEntropy.apply(input, target)
    return _reduce(_apply_weight(loss, weight, op), reduction)


# ----------------------------------------------------------------------------- regression


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    _check_reduction(reduction, "mse_loss")
    diff = input - _target_like(target, input, "mse_loss")
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    _check_reduction(reduction, "l1_loss")
    return _reduce((input - _target_like(target, input, "l1_loss")).abs(), reduction)


# ----------------------------------------------------------------------------- classes


class LogSoftmax(Function):
    """x - logsumexp(x) along an axis; the max is subtracted first so exp cannot overflow."""

    def forward(self, x, axis):
        self.axis = axis
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - self.xp.log(self.xp.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(self, g):
        probabilities = self.output.exp()
        return g - probabilities * g.sum(self.axis, keepdims=True)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    return LogSoftmax.apply(input, axis=dim % input.ndim)


def softmax(input: Tensor, dim: int) -> Tensor:
    return log_softmax(input, dim).exp()


def _class_indices(target, input: Tensor, op: str):
    """target as an integer index array of shape (N, d1, ...) for input (N, C, d1, ...)."""
    backend = input._backend
    indices = target.data if isinstance(target, Tensor) else backend.asarray(target)
    expected = input.shape[:1] + input.shape[2:]
    if indices.dtype.kind not in "iu":
        raise ValueError(f"{op}: target must hold integer class indices, got dtype {indices.dtype}")
    if tuple(indices.shape) != expected:
        raise ValueError(
            f"{op}: target shape {tuple(indices.shape)} does not match input {input.shape} "
            f"(expected {expected})"
        )
    classes = input.shape[1]
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= classes):
        raise ValueError(
            f"{op}: target class indices must be in [0, {classes}), got range "
            f"[{int(indices.min())}, {int(indices.max())}]"
        )
    return indices


def nll_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]]: negative log-likelihood from log-probabilities (N, C, d1, ...)."""
    _check_reduction(reduction, "nll_loss")
    if input.ndim < 2:
        raise ValueError(f"nll_loss: expected input of shape (N, C, ...), got {input.shape}")
    indices = _class_indices(target, input, "nll_loss")
    if input.ndim > 2:  # classes last, then one row per (sample, position)
        classes = input.shape[1]
        input = input.permute((0,) + tuple(range(2, input.ndim)) + (1,)).reshape(-1, classes)
    rows = input._backend.xp.arange(input.shape[0])
    picked = input[rows, indices.reshape(-1)].reshape(indices.shape)
    return _reduce(-picked, reduction)


def cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Cross-entropy of logits (N, C, d1, ...) against class indices (N, d1, ...)."""
    return nll_loss(log_softmax(input, 1), target, reduction)
