"""Normalization ops: batch_norm, instance_norm, layer_norm, group_norm (PyTorch semantics).

batch_norm is two Functions. In training it normalizes with the batch's statistics, whose
dependence on x is part of the gradient; its backward is the kernel's one-pass
`batch_norm_backward` when no graph is being recorded, and otherwise the same formula in
Tensor ops (statistics recomputed from the input) so that WGAN-GP and R1 can differentiate
it again. In eval it normalizes with fixed running statistics: an affine map of x.

instance_norm is batch_norm on the input folded to (1, N*C, spatial, 1), so every
(sample, channel) pair gets its own statistics and the same kernels serve both; group_norm
likewise folds each (sample, group of channels) into one, then applies its per-channel
affine map. layer_norm is composed of Tensor ops.
"""

from __future__ import annotations

import math

from ..autograd import Function, Tensor, is_grad_enabled
from .activation import Activation, _activation_input_grad, _check_kind

__all__ = ["batch_norm", "batch_norm_act", "group_norm", "instance_norm", "layer_norm",
           "normalize"]


def _reduce_axes(ndim: int) -> tuple:
    return (0,) + tuple(range(2, ndim))


def _per_channel(t: Tensor, ndim: int) -> Tensor:
    """A (C,) tensor shaped to broadcast along axis 1."""
    return t.reshape((1, -1) + (1,) * (ndim - 2))


def _split_affine(affine: tuple, has_weight: bool, has_bias: bool) -> tuple:
    """(weight, bias) out of the optional trailing inputs; absent ones are None."""
    weight = affine[0] if has_weight else None
    bias = affine[-1] if has_bias else None
    return weight, bias


class BatchNormTrain(Function):
    """Batch norm with batch statistics, optionally followed by an activation (kind, slope
    as in F.bias_act; "none" for batch norm alone), which the kernels fuse into the same
    passes. Inputs: x, then weight and bias if present.

    The batch mean and biased variance are appended to `stats` (a list the caller passes),
    since apply returns only y and the caller needs them for the running averages.
    """

    def forward(self, x, *affine, has_weight, has_bias, eps, stats, kind="none", slope=0.0):
        weight, bias = _split_affine(affine, has_weight, has_bias)
        if kind == "none":
            y, mean, var = self.K.batch_norm_train(x, weight, bias, eps)
        else:
            y, mean, var = self.K.batch_norm_act_train(x, weight, bias, eps, kind, slope)
        self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
        self.kind, self.slope = kind, slope
        self.mean, self.var = mean, var
        stats.extend((mean, var))
        return y

    def backward(self, g):
        x = self.inputs[0]
        weight, _ = _split_affine(self.inputs[1:], self.has_weight, self.has_bias)
        axes = _reduce_axes(x.ndim)
        if not is_grad_enabled():
            w = None if weight is None else weight.array
            if self.kind == "none":
                gx, gweight, gbias = self.K.batch_norm_backward(
                    g.array, x.array, w, self.mean, self.var, self.eps)
            else:
                gx, gweight, gbias = self.K.batch_norm_act_backward(
                    g.array, self.output.array, x.array, w, self.mean, self.var, self.eps,
                    self.kind, self.slope)
            if gbias is None and self.has_bias:  # the kernel leaves it out without weight
                gz = _activation_input_grad(self, g, self.output, self.kind, self.slope)
                gbias = gz.array.sum(axis=axes)
            gx, gweight, gbias = (
                None if a is None else Tensor._wrap(a, self.backend) for a in (gx, gweight, gbias)
            )
        else:
            # the kernel's formula in Tensor ops, statistics recomputed from x so that their
            # dependence on x is in the graph too
            g = _activation_input_grad(self, g, self.output, self.kind, self.slope)
            mean = x.mean(axes, keepdims=True)
            centered = x - mean
            invstd = 1.0 / ((centered * centered).mean(axes, keepdims=True) + self.eps).sqrt()
            xhat = centered * invstd
            gxhat = g if weight is None else g * _per_channel(weight, x.ndim)
            gx = invstd * (
                gxhat
                - gxhat.mean(axes, keepdims=True)
                - xhat * (gxhat * xhat).mean(axes, keepdims=True)
            )
            gweight = (g * xhat).sum(axes) if self.has_weight else None
            gbias = g.sum(axes) if self.has_bias else None
        grads = (gx,)
        if self.has_weight:
            grads += (gweight,)
        if self.has_bias:
            grads += (gbias,)
        return grads


class BatchNormEval(Function):
    """Batch norm with fixed statistics (arrays, not inputs): y = (x - mean) * invstd * w + b."""

    def forward(self, x, *affine, has_weight, has_bias, mean, var, eps):
        weight, bias = _split_affine(affine, has_weight, has_bias)
        self.has_weight, self.has_bias = has_weight, has_bias
        self.mean, self.invstd = mean, 1 / self.xp.sqrt(var + eps)
        return self.K.batch_norm_eval(x, mean, var, weight, bias, eps)

    def backward(self, g):
        x = self.inputs[0]
        weight, _ = _split_affine(self.inputs[1:], self.has_weight, self.has_bias)
        axes = _reduce_axes(x.ndim)
        invstd = _per_channel(Tensor._wrap(self.invstd.astype(x.dtype), self.backend), x.ndim)
        grads = (g * invstd if weight is None else g * (invstd * _per_channel(weight, x.ndim)),)
        if self.has_weight:
            mean = _per_channel(Tensor._wrap(self.mean.astype(x.dtype), self.backend), x.ndim)
            grads += ((g * ((x - mean) * invstd)).sum(axes),)
        if self.has_bias:
            grads += (g.sum(axes),)
        return grads


def _as_kernel_layout(x: Tensor) -> Tensor:
    """(N, C) and (N, C, H, W) go to the kernels as they are; (N, C, L) and (N, C, D, H, W)
    become (N, C, L, 1) and (N, C, D*H*W, 1), so fast kernels need only the two layouts."""
    if x.ndim in (2, 4):
        return x
    return x.reshape(x.shape[:2] + (math.prod(x.shape[2:]), 1))


def _check_channel_vector(name: str, t: Tensor | None, x: Tensor, op: str) -> None:
    if t is not None and t.shape != (x.shape[1],):
        raise ValueError(
            f"{op}: input has {x.shape[1]} channels, {name} has shape {t.shape} "
            f"(input {x.shape}, {name} {t.shape})"
        )


def _normalize(x, weight, bias, training, mean=None, var=None, eps=1e-5, kind="none",
               slope=0.0):
    """Apply the train or eval Function to x (any ndim >= 2), then the activation `kind`
    (fused into the training Function); returns (y, stats)."""
    folded = _as_kernel_layout(x)
    affine = tuple(t for t in (weight, bias) if t is not None)
    flags = {"has_weight": weight is not None, "has_bias": bias is not None, "eps": float(eps)}
    stats: list = []
    if training:
        y = BatchNormTrain.apply(folded, *affine, stats=stats, kind=kind, slope=slope, **flags)
    else:
        y = BatchNormEval.apply(folded, *affine, mean=mean, var=var, **flags)
        if kind != "none":
            y = Activation.apply(y, kind=kind, slope=slope)
    return (y if y.shape == x.shape else y.reshape(x.shape)), stats


def _update_running(running: Tensor | None, batch_value, momentum: float) -> None:
    """running <- (1 - momentum) running + momentum batch_value, in place (no graph)."""
    if running is not None:
        running.array[...] = (1 - momentum) * running.array + momentum * batch_value


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each channel (axis 1) of (N, C, ...) input, as torch.nn.functional.batch_norm.

    training: batch statistics, and the running buffers (if given) are updated in place,
    running_var with the unbiased batch variance. Otherwise the running statistics are used.
    """
    return batch_norm_act(input, running_mean, running_var, weight, bias, training, momentum,
                          eps, "none", 0.0)


def batch_norm_act(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    kind: str,
    slope: float = 0.0,
) -> Tensor:
    """act(batch_norm(...)) as one op (kind: relu, leaky_relu with slope, tanh, sigmoid or
    none). nn.Sequential uses it for a BatchNorm followed by one of those activations; in
    training the kernels apply the activation in the normalization's own passes."""
    _check_kind(kind, slope, "batch_norm")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got {input.shape}")
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channel_vector(name, t, input, "batch_norm")
    if training:
        count = input.numel() // input.shape[1]
        if count < 2:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training "
                f"(input {input.shape})"
            )
        y, (mean, var) = _normalize(input, weight, bias, True, eps=eps, kind=kind,
                                    slope=float(slope))
        _update_running(running_mean, mean, momentum)
        _update_running(running_var, var * (count / (count - 1)), momentum)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when not training")
    y, _ = _normalize(input, weight, bias, False, running_mean.array, running_var.array, eps,
                      kind=kind, slope=float(slope))
    return y


def _repeat_over_batch(t: Tensor | None, n: int) -> Tensor | None:
    """(C,) -> (n*C,): the per-channel vector for each of n samples, differentiably."""
    if t is None:
        return None
    return t.unsqueeze(0).expand(n, t.shape[0]).reshape(n * t.shape[0])


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each (sample, channel) of (N, C, ...) input over its spatial positions.

    With use_input_stats the running buffers (if given) move toward the batch average of the
    per-instance means and unbiased variances, as in PyTorch; otherwise they are used.
    """
    if input.ndim < 3:
        raise ValueError(
            f"instance_norm: expected input of shape (N, C, ...) with spatial dimensions, "
            f"got {input.shape}"
        )
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channel_vector(name, t, input, "instance_norm")
    n, c = input.shape[:2]
    spatial = input.numel() // (n * c)
    folded = input.reshape(1, n * c, spatial, 1)
    weight, bias = _repeat_over_batch(weight, n), _repeat_over_batch(bias, n)
    if use_input_stats:
        if spatial < 2:
            raise ValueError(
                f"instance_norm: expected more than 1 spatial element when training "
                f"(input {input.shape})"
            )
        y, (mean, var) = _normalize(folded, weight, bias, True, eps=eps)
        _update_running(running_mean, mean.reshape(n, c).mean(axis=0), momentum)
        unbiased = var.reshape(n, c).mean(axis=0) * (spatial / (spatial - 1))
        _update_running(running_var, unbiased, momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(
                "instance_norm: running_mean and running_var are needed when use_input_stats "
                "is False"
            )
        xp = input._backend.xp
        mean, var = xp.tile(running_mean.array, n), xp.tile(running_var.array, n)
        y, _ = _normalize(folded, weight, bias, False, mean, var, eps)
    return y.reshape(input.shape)


def layer_norm(
    input: Tensor,
    normalized_shape: int | tuple,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the trailing normalized_shape dimensions (a composition of Tensor ops)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if input.shape[input.ndim - len(shape):] != shape:
        raise ValueError(
            f"layer_norm: input's trailing dimensions must be {shape} (input {input.shape})"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {t.shape}, expected {shape}")
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    centered = input - input.mean(axes, keepdims=True)
    y = centered / ((centered * centered).mean(axes, keepdims=True) + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize (N, C, ...) input over each sample's groups of C / num_groups channels
    (and all their positions), then scale and shift per channel (Wu & He 2018)."""
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected input of shape (N, C, ...), got {input.shape}")
    n, c = input.shape[:2]
    if not isinstance(num_groups, int) or num_groups < 1 or c % num_groups:
        raise ValueError(
            f"group_norm: num_groups={num_groups!r} must divide the {c} channels "
            f"(input {input.shape})"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        _check_channel_vector(name, t, input, "group_norm")
    folded = input.reshape(1, n * num_groups, input.numel() // (n * num_groups), 1)
    y, _ = _normalize(folded, None, None, True, eps=eps)
    y = y.reshape(input.shape)
    if weight is not None:
        y = y * _per_channel(weight, input.ndim)
    if bias is not None:
        y = y + _per_channel(bias, input.ndim)
    return y


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p along dim, eps): unit vectors along dim, as
    torch.nn.functional.normalize (where the norm is below eps, its gradient is 0 there)."""
    return input / input.norm(p, dim=dim, keepdim=True).clamp(min=eps)
