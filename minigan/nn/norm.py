"""Normalisation layers: BatchNorm1d, BatchNorm2d (Ioffe & Szegedy 2015), SyncBatchNorm (batch
statistics over all ranks of a data-parallel run), InstanceNorm2d (Ulyanov et al. 2016),
LayerNorm (Ba et al. 2016) and GroupNorm (Wu & He 2018), with PyTorch's arguments, buffers
and train/eval behaviour (the last two have no running statistics: they normalise each
sample by itself, in training and evaluation alike).

affine=True gives a per-channel weight (ones) and bias (zeros); bias=False (keyword, as in
torch >= 2.13) drops the bias. Buffers, as in PyTorch (so state_dicts match key for key):
running_mean (zeros), running_var (ones) and num_batches_tracked (an int64 scalar), present
only when track_running_stats. In training mode the batch statistics normalise and the running ones
are updated (unbiased variance, weight `momentum`; for BatchNorm momentum=None means a
cumulative average, 1 / num_batches_tracked, and for InstanceNorm no update, both as in
PyTorch); in eval mode the running statistics normalise.
"""

from __future__ import annotations

import numpy as np

from .. import creation
from .. import functional as F
from ..autograd import Tensor
from . import init
from .module import FUSES_ACTIVATION, Module, Parameter


class _NormBase(Module):
    """Arguments, parameters and buffers shared by batch and instance normalisation."""

    expected_ndims: tuple[int, ...] = (4,)
    shape_text = "(N, C, H, W)"

    def __init__(self, num_features: int, eps: float, momentum: float | None, affine: bool,
                 track_running_stats: bool, device, dtype, bias: bool):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = dtype or np.float32
        if affine:
            self.weight = Parameter(creation.ones(num_features, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
        if affine and bias:
            self.bias = Parameter(creation.zeros(num_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean",
                                 creation.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var",
                                 creation.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked",
                                 creation.zeros((), dtype=np.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check_input(self, input: Tensor) -> None:
        name = type(self).__name__
        if input.ndim not in self.expected_ndims:
            raise ValueError(f"{name}: expected input of shape {self.shape_text}, got shape "
                             f"{input.shape}")
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"{name}: input has {input.shape[1]} channels, layer expects "
                f"{self.num_features} (input {input.shape})"
            )

    def extra_repr(self) -> str:
        # torch >= 2.13 prints bias too (its keyword-only `bias` argument)
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias)

    def forward(self, input: Tensor) -> Tensor:
        return self.forward_act(input, "none", 0.0)

    def forward_act(self, input: Tensor, kind: str, slope: float) -> Tensor:
        """act(self(input)) in one op (see F.batch_norm_act); nn.Sequential calls it for a
        BatchNorm followed by an activation."""
        self._check_input(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        # without running statistics, batch statistics are used in eval mode too
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            per_channel = input.numel() // max(input.shape[1], 1)
            if per_channel <= 1:
                raise ValueError(
                    f"{type(self).__name__}: expected more than 1 value per channel when "
                    f"training, got input {input.shape}"
                )
        return F.batch_norm_act(input, self.running_mean, self.running_var, self.weight,
                                self.bias, use_batch_stats, factor, self.eps, kind, slope)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L): statistics per feature C."""

    expected_ndims = (2, 3)
    shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W): statistics per channel over N, H, W."""


FUSES_ACTIVATION.update((BatchNorm1d, BatchNorm2d))


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over (N, C, ...) with the statistics of the whole batch of a
    data-parallel run (distributed.py), as PyTorch's nn.SyncBatchNorm: in training each rank
    sums x and x^2 per channel over its rows, one all-reduce adds those sums (and the row
    counts) over the ranks, and every rank normalises with the mean and the biased variance
    they give. The all-reduce is a differentiable op whose adjoint is itself, so backward
    all-reduces the gradients of the sums: each rank gets the gradient of every rank's loss
    with respect to its own rows. With one process, or in eval mode, it is BatchNorm,
    kernels and all; `convert_sync_batchnorm` swaps it into a built model.

    The variance as E[x^2] - mean^2 is what one collective allows; in float32 it loses
    about u * mean^2 / var relative precision (u = 2^-24) against the two-pass formula of
    BatchNorm, harmless for normalised activations whose mean is near their spread.
    """

    expected_ndims = (2, 3, 4, 5)
    shape_text = "(N, C, ...)"

    def forward(self, input: Tensor) -> Tensor:
        from .. import distributed  # here: nn sits below distributed in the layers

        if not self.training or distributed.get_world_size() == 1:
            return super().forward(input)
        self._check_input(input)
        axes = (0,) + tuple(range(2, input.ndim))
        count = creation.ones(self.num_features, dtype=input.dtype, device=input.device)
        count = count * float(input.numel() // self.num_features)
        sums = distributed.all_reduce_sum(input.sum(axis=axes), (input * input).sum(axis=axes),
                                          count)
        n = float(sums[2].numpy()[0])
        if n <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel when "
                             f"training, got {n:.0f} over all ranks (input {input.shape})")
        mean = sums[0] * (1.0 / n)
        var = sums[1] * (1.0 / n) - mean * mean
        self._update_running_stats(mean, var, n)
        shape = (1, -1) + (1,) * (input.ndim - 2)
        out = (input - mean.reshape(shape)) / (var + self.eps).sqrt().reshape(shape)
        if self.weight is not None:
            out = out * self.weight.reshape(shape)
        if self.bias is not None:
            out = out + self.bias.reshape(shape)
        return out

    def _update_running_stats(self, mean: Tensor, var: Tensor, n: float) -> None:
        """The same update as BatchNorm's, from the whole batch's statistics (so the same on
        every rank): unbiased variance, weight `momentum` (None: cumulative average)."""
        if not self.track_running_stats:
            return
        self.num_batches_tracked.array += 1
        factor = self.momentum
        if factor is None:
            factor = 1.0 / float(self.num_batches_tracked.item())
        running_mean, running_var = self.running_mean.array, self.running_var.array
        running_mean[...] = (1 - factor) * running_mean + factor * mean.array
        running_var[...] = (1 - factor) * running_var + factor * var.array * (n / (n - 1))

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """`module` with every BatchNorm1d/2d in it replaced by a SyncBatchNorm that holds
        the same parameters and buffers (PyTorch's function; process_group is accepted for
        its signature, the run's one group is always used). Convert before creating the
        optimizers, which pack the parameters they are given."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d)):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, bias=module.bias is not None)
            for registry in ("_parameters", "_buffers"):  # same objects, same key order
                getattr(converted, registry).update(getattr(module, registry))
            converted.train(module.training)
            return converted
        for name, child in list(module._modules.items()):
            if child is not None:  # assigned in place to keep the children's order
                module._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return module


class InstanceNorm2d(_NormBase):
    """Normalise each sample's each channel over H, W. PyTorch's defaults: no affine
    parameters and no running statistics (so eval mode normalises the same way).
    momentum=None leaves the running statistics where they are, as PyTorch's InstanceNorm
    does (it passes momentum 0; unlike BatchNorm, no cumulative average)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        return F.instance_norm(
            input, self.running_mean, self.running_var, self.weight, self.bias,
            use_input_stats=self.training or not self.track_running_stats,
            momentum=self.momentum if self.momentum is not None else 0.0, eps=self.eps,
        )


def _affine_parameters(module: Module, shape: tuple, weight: bool, bias: bool, dtype,
                       device) -> None:
    """LayerNorm's and GroupNorm's weight (ones) and bias (zeros) of `shape`, each registered
    as None when turned off, as PyTorch does."""
    if weight:
        module.weight = Parameter(creation.ones(shape, dtype=dtype, device=device))
    else:
        module.register_parameter("weight", None)
    if bias:
        module.bias = Parameter(creation.zeros(shape, dtype=dtype, device=device))
    else:
        module.register_parameter("bias", None)


def _reset_affine_parameters(module: Module) -> None:
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class LayerNorm(Module):
    """Normalise over the trailing dims normalized_shape (an int or a tuple), then apply an
    elementwise weight (ones) and bias (zeros) of that shape when elementwise_affine."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.normalized_shape, self.eps = tuple(int(s) for s in shape), eps
        self.elementwise_affine = elementwise_affine
        dtype = dtype or np.float32
        _affine_parameters(self, self.normalized_shape, elementwise_affine,
                           elementwise_affine and bias, dtype, device)

    def reset_parameters(self) -> None:
        _reset_affine_parameters(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalise each sample over groups of num_channels / num_groups channels; weight
    (ones) and bias (zeros) per channel when affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide "
                             f"num_channels={num_channels}")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        dtype = dtype or np.float32
        _affine_parameters(self, (num_channels,), affine, affine and bias, dtype, device)

    def reset_parameters(self) -> None:
        _reset_affine_parameters(self)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input (N, {self.num_channels}, ...), got "
                             f"shape {input.shape}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")
