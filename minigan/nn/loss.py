"""Loss modules with torch.nn's names and arguments: BCEWithLogitsLoss, BCELoss, MSELoss,
L1Loss, CrossEntropyLoss, NLLLoss. Each calls its functional form (minigan/functional/
loss.py); class and element weights are buffers, as in PyTorch, so they follow `.to()` and
appear in state_dict under the same keys ("weight", "pos_weight")."""

from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor
from ..creation import tensor
from ..functional.loss import REDUCTIONS, legacy_reduction
from .module import Module


def _as_buffer(value, name: str, owner: str) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    try:
        return tensor(value)  # an array keeps its dtype (Tensor() would make it float32)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{owner}: {name} must be a Tensor or an array, got "
                        f"{type(value).__name__}") from error


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = legacy_reduction(size_average, reduce, reduction)
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _as_buffer(weight, "weight", type(self).__name__))


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy on logits, stable for any logit; pos_weight (one per class,
    along the last axis) weighs the positive examples, e.g. #negatives / #positives."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean",
                 pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", _as_buffer(pos_weight, "pos_weight",
                                                      "BCEWithLogitsLoss"))

    def forward(self, input: Tensor, target) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities (logs clamped at -100, as in PyTorch). On the
    output of a Sigmoid, BCEWithLogitsLoss on the logits is the stable choice."""

    def forward(self, input: Tensor, target) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error (the least-squares GAN's loss, Mao et al. 2017)."""

    def forward(self, input: Tensor, target) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (CycleGAN's cycle-consistency loss, Zhu et al. 2017)."""

    def forward(self, input: Tensor, target) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices, from log-probabilities."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target) -> Tensor:
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits against class indices or class probabilities, with optional
    class weights, ignore_index and label_smoothing."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target) -> Tensor:
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)
