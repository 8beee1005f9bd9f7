"""Losses (torch.nn.functional names): binary cross-entropy from logits and from
probabilities, mean squared and absolute error, and cross-entropy over classes with the
log_softmax / softmax / nll_loss it is made of.

The two that need care with large inputs are Functions with stable forms: BCE from logits
(max(x, 0) - x t + log1p(exp(-|x|)), gradient sigmoid(x) - t) and log_softmax (shift by the
max). Both backward passes are Tensor ops when a graph of the gradient is asked for
(create_graph), so GAN penalties can differentiate them again; a plain backward of BCE
from logits, which also takes its mean or sum in its node, is one kernel with the same bits.
The rest (pos_weight, class weights, ignore_index, label smoothing, probability targets)
are compositions of those with Tensor ops.

Signatures are torch.nn.functional's, including the deprecated size_average / reduce
arguments, which map onto `reduction` as in PyTorch.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..autograd import Function, Tensor, is_grad_enabled
from .activation import sigmoid, softplus

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


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's mapping of the deprecated size_average / reduce pair onto reduction: when
    either is given, reduce=False means "none", else size_average=False means "sum",
    else "mean" (each defaults to True)."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce are deprecated, use reduction= instead",
                  DeprecationWarning, stacklevel=3)
    if reduce is not None and not reduce:
        return "none"
    return "sum" if size_average is not None and not size_average else "mean"


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


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _constant_like(value, input: Tensor) -> Tensor:
    """value (a Tensor, array or list) as a Tensor on input's device."""
    if isinstance(value, Tensor):
        return value
    return Tensor._wrap(input._backend.asarray(value, dtype=input.dtype), input._backend)


def _apply_weight(loss: Tensor, weight, op: str) -> Tensor:
    if weight is None:
        return loss
    weight = _constant_like(weight, loss)
    if not _broadcasts_to(weight.shape, loss.shape):
        raise ValueError(f"{op}: weight shape {weight.shape} does not broadcast to {loss.shape}")
    return loss * weight


# ----------------------------------------------------------------------------- binary


class BCEWithLogits(Function):
    """BCE from logits x and targets t: elementwise (reduction "none"), or its mean or sum
    over every element in the same node, as PyTorch's one node. A plain .backward() then
    takes one kernel, bce_with_logits_grad, where the composed graph (the loss, Sum, Mul
    by 1/n) took six ops (reshape, broadcast, sigmoid, -, *), ~65 us on 512 logits; the
    results are the same bits, the same operations in the same order."""

    def forward(self, x, target, reduction: str = "none"):
        self.scale = None  # the mean's 1 / count, which backward multiplies g by
        loss = self.K.bce_with_logits(x, target)
        if reduction == "none":
            return loss
        total = loss.sum(axis=tuple(range(loss.ndim)))  # Tensor.sum's call
        if reduction == "sum":
            return total
        # Tensor.mean's: the sum times 1 / count in x's dtype
        self.scale = self.xp.asarray(1.0 / max(loss.size, 1), dtype=loss.dtype)
        return total * self.scale

    def backward(self, g):
        x, target = self.inputs
        scale = self.scale
        if not is_grad_enabled():  # no graph of the gradient wanted: one kernel
            g = g.array if scale is None else g.array * scale  # mean()'s product
            gx = gt = None
            if self.needs_input_grad[0]:
                gx = Tensor._wrap(self.K.bce_with_logits_grad(x.array, target.array, g),
                                  self.backend)
            if self.needs_input_grad[1]:
                gt = Tensor._wrap(self.xp.broadcast_to(-g, x.shape) * x.array, self.backend)
            return gx, gt
        if scale is not None:
            g = g * Tensor._wrap(scale, self.backend)
        # (a reduced loss's g is one number: it broadcasts, as Sum's backward broadcast it)
        gx = g * (sigmoid(x) - target) if self.needs_input_grad[0] else None
        gt = -g * x if self.needs_input_grad[1] else None
        return gx, gt


def binary_cross_entropy_with_logits(
    input: Tensor, target, weight=None, size_average=None, reduce=None,
    reduction: str = "mean", pos_weight=None,
) -> Tensor:
    """-[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], stable for any logit x.

    pos_weight (broadcast along the last axis, one per class) multiplies the positive term:
    -[pw t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]. With log sigmoid(x) = -softplus(-x)
    and log(1 - sigmoid(x)) = -x - softplus(-x) that is (1 - t) x + (1 + (pw - 1) t)
    softplus(-x), which stays finite for any x.
    """
    op = "binary_cross_entropy_with_logits"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    target = _target_like(target, input, op)
    if pos_weight is None and weight is None:
        return BCEWithLogits.apply(input, target, reduction=reduction)
    if pos_weight is None:
        loss = BCEWithLogits.apply(input, target)
    else:
        pos_weight = _constant_like(pos_weight, input)
        if not _broadcasts_to(pos_weight.shape, input.shape):
            raise ValueError(f"{op}: pos_weight shape {pos_weight.shape} does not broadcast to "
                             f"input shape {input.shape}")
        loss = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * softplus(-input)
    return _reduce(_apply_weight(loss, weight, op), reduction)


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
            if bool(((p.array > 0) & (p.array < 1)).all()):
                gt = g * ((1.0 - p).log() - p.log())
            else:
                gt = g * Tensor._wrap(self.log_q - self.log_p, self.backend)
        return gp, gt


def binary_cross_entropy(input: Tensor, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """BCE on probabilities in [0, 1]; prefer binary_cross_entropy_with_logits on logits."""
    op = "binary_cross_entropy"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    target = _target_like(target, input, op)
    if bool(((input.array < 0) | (input.array > 1)).any()):
        raise ValueError(f"{op}: input values must be probabilities in [0, 1]")
    loss = BinaryCrossEntropy.apply(input, target)
    return _reduce(_apply_weight(loss, weight, op), reduction)


# ----------------------------------------------------------------------------- regression


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """(input - target)^2, times weight (elementwise, broadcast) when given."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "mse_loss")
    diff = input - _target_like(target, input, "mse_loss")
    return _reduce(_apply_weight(diff * diff, weight, "mse_loss"), reduction)


def l1_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    """|input - target|, times weight (elementwise, broadcast) when given."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "l1_loss")
    loss = (input - _target_like(target, input, "l1_loss")).abs()
    return _reduce(_apply_weight(loss, weight, "l1_loss"), reduction)


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


def _class_indices(target, input: Tensor, op: str, ignore_index: int = -100):
    """target as an integer index array of shape (N, d1, ...) for input (N, C, d1, ...);
    entries equal to ignore_index may lie outside [0, C)."""
    backend = input._backend
    indices = target.array if isinstance(target, Tensor) else backend.asarray(target)
    expected = input.shape[:1] + input.shape[2:]
    if indices.dtype.kind not in "iu":
        raise ValueError(f"{op}: target must hold integer class indices, got dtype {indices.dtype}")
    if tuple(indices.shape) != expected:
        raise ValueError(
            f"{op}: target shape {tuple(indices.shape)} does not match input {input.shape} "
            f"(expected {expected})"
        )
    classes = input.shape[1]
    used = indices[indices != ignore_index]
    if used.size and (int(used.min()) < 0 or int(used.max()) >= classes):
        raise ValueError(
            f"{op}: target class indices must be in [0, {classes}), got range "
            f"[{int(used.min())}, {int(used.max())}]"
        )
    return indices


def _class_weight(weight, input: Tensor, op: str):
    """The (C,) class weights as an array of input's dtype (ones when None)."""
    xp, classes = input._backend.xp, input.shape[1]
    if weight is None:
        return xp.ones(classes, dtype=input.dtype)
    array = weight.array if isinstance(weight, Tensor) else input._backend.asarray(weight)
    if tuple(array.shape) != (classes,):
        raise ValueError(f"{op}: weight must have one value per class, shape ({classes},), "
                         f"got {tuple(array.shape)}")
    return array.astype(input.dtype)


def _classes_last(input: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C): one row per (sample, position)."""
    if input.ndim == 2:
        return input
    axes = (0,) + tuple(range(2, input.ndim)) + (1,)
    return input.permute(axes).reshape(-1, input.shape[1])


def _inverse(total) -> float:
    """1 / total for a "mean" over kept targets; NaN when every target is ignored, as in
    PyTorch (0 / 0), instead of a ZeroDivisionError."""
    total = float(total)
    return 1.0 / total if total else float("nan")


def nll_loss(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
    """-weight[t] input[n, t]: negative log-likelihood from log-probabilities (N, C, d1, ...)
    and class indices t (N, d1, ...). Targets equal to ignore_index contribute nothing;
    "mean" divides by the summed weights of the other targets, as in PyTorch."""
    op = "nll_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    indices = _class_indices(target, input, op, ignore_index)
    class_weight = _class_weight(weight, input, op)
    xp, backend = input._backend.xp, input._backend
    flat = indices.reshape(-1)
    kept = flat != ignore_index
    safe = xp.where(kept, flat, 0)  # any valid class; its weight is zeroed just below
    target_weight = class_weight[safe] * kept
    rows = xp.arange(flat.shape[0])
    picked = _classes_last(input)[rows, safe]
    if weight is None and bool(kept.all()):
        loss = -picked  # the common case: no weights to multiply
    else:
        loss = -picked * Tensor._wrap(target_weight, backend)
    if reduction == "mean":
        return loss.sum() * _inverse(target_weight.sum())
    return _reduce(loss.reshape(indices.shape), reduction)


def cross_entropy(input: Tensor, target, weight=None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits (N, C, d1, ...) against class indices (N, d1, ...), or against
    class probabilities of input's shape (a float target).

    label_smoothing e mixes the target with the uniform distribution: (1 - e) of the loss is
    against the target, e against every class equally (Szegedy et al. 2016), each weighted
    and reduced as PyTorch does.
    """
    op = "cross_entropy"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    log_p = log_softmax(input, 1)
    classes = input.shape[1]
    class_weight = _class_weight(weight, input, op)
    per_class = Tensor._wrap(class_weight.reshape((1, -1) + (1,) * (input.ndim - 2)),
                             input._backend)
    target_array = target.array if isinstance(target, Tensor) else None
    if target_array is None:
        target_array = input._backend.asarray(target)
    if target_array.dtype.kind == "f":  # class probabilities
        if tuple(target_array.shape) != input.shape:
            raise ValueError(
                f"{op}: a float target holds class probabilities and must have the input's "
                f"shape {input.shape}, got {tuple(target_array.shape)} (class indices must "
                f"be integers)"
            )
        probabilities = _target_like(target, input, op)
        if label_smoothing:
            probabilities = probabilities * (1.0 - label_smoothing) + label_smoothing / classes
        loss = -(log_p * probabilities * per_class).sum(1)
        return _reduce(loss, reduction)
    loss = nll_loss(log_p, target, weight, ignore_index=ignore_index, reduction=reduction)
    if not label_smoothing:
        return loss
    # the uniform part: -sum_c weight_c log p_c per position, ignored positions zeroed
    indices = _class_indices(target, input, op, ignore_index)
    kept = indices != ignore_index
    smooth = -(log_p * per_class).sum(1) * Tensor._wrap(kept.astype(input.dtype),
                                                        input._backend)
    if reduction == "mean":
        safe = input._backend.xp.where(kept, indices, 0)
        smooth = smooth.sum() * _inverse((class_weight[safe] * kept).sum())
    else:
        smooth = _reduce(smooth, reduction)
    return loss * (1.0 - label_smoothing) + smooth * (label_smoothing / classes)
