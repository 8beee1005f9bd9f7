"""The layers with weights that mix features: Linear, Conv2d, ConvTranspose2d.

Constructor arguments, weight shapes and the default initialisation are PyTorch's
(torch.nn.Linear / _ConvNd.reset_parameters): weight ~ kaiming_uniform(a=sqrt(5)), which is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
The forward checks the input's shape first, so a mistake is reported with the layer's name
and both shapes instead of surfacing as a matmul or im2col error.
"""

from __future__ import annotations

import math

import numpy as np

from .. import creation
from .. import functional as F
from ..autograd import Tensor
from ..functional.conv import _pair
from ..random import Generator
from . import init
from .module import FUSES_ACTIVATION, Module, Parameter


def _empty_parameter(shape, device, dtype) -> Parameter:
    return Parameter(creation.zeros(shape, dtype=dtype or np.float32, device=device))


def _weight_and_bias(module, weight_shape: tuple, bias_size: int, bias: bool, device,
                     dtype) -> None:
    """A layer's weight, and its bias or None registered in its place, as PyTorch does;
    the values come from the layer's reset_parameters."""
    module.weight = _empty_parameter(weight_shape, device, dtype)
    if bias:
        module.bias = _empty_parameter((bias_size,), device, dtype)
    else:
        module.register_parameter("bias", None)


def _reset_affine(weight: Parameter, bias: Parameter | None, generator) -> None:
    """PyTorch's default init of Linear and convolution layers."""
    init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound, generator=generator)


class Linear(Module):
    """y = x W^T + b, over the last axis of x. weight: (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None, generator: Generator | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        _weight_and_bias(self, (out_features, in_features), out_features, bias, device, dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        _reset_affine(self.weight, self.bias, generator)

    def forward(self, input: Tensor) -> Tensor:
        return self.forward_act(input, "none", 0.0)

    def forward_act(self, input: Tensor, kind: str, slope: float) -> Tensor:
        """act(self(input)) in one op (see F.linear_act); nn.Sequential calls it for a
        Linear followed by an activation."""
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            features = input.shape[-1] if input.ndim else "no"
            raise ValueError(
                f"Linear: input has {features} features, layer expects {self.in_features} "
                f"(input {input.shape})"
            )
        return F.linear_act(input, self.weight, self.bias, kind, slope)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


FUSES_ACTIVATION.add(Linear)


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: arguments, weight, init, repr, input check."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, output_padding, weight_shape_of, device, dtype, generator):
        super().__init__()
        name = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must both be divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(name, "kernel_size", kernel_size, minimum=1)
        self.stride = _pair(name, "stride", stride, minimum=1)
        self.padding = _pair(name, "padding", padding, minimum=0)
        self.dilation = _pair(name, "dilation", dilation, minimum=1)
        self.output_padding = _pair(name, "output_padding", output_padding, minimum=0)
        self.padding_mode = "zeros"
        _weight_and_bias(self, weight_shape_of(self), out_channels, bias, device, dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        _reset_affine(self.weight, self.bias, generator)

    def _check_input(self, input: Tensor) -> None:
        name = type(self).__name__
        if input.ndim != 4:
            raise ValueError(f"{name}: expected a 4-d input (N, C, H, W), got shape "
                             f"{input.shape}")
        if input.shape[1] != self.in_channels:
            raise ValueError(
                f"{name}: input has {input.shape[1]} channels, layer expects "
                f"{self.in_channels} (input {input.shape}, weight {self.weight.shape})"
            )

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv2d(_ConvNd):
    """2-d cross-correlation over (N, C, H, W). weight: (out, in // groups, kh, kw).

    As torch's: padding is an int, a pair, "valid" (none) or "same" (stride 1 only; an odd
    total goes to the right and bottom), and padding_mode "zeros", "reflect", "replicate"
    or "circular" pads with F.pad before a convolution without padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, generator: Generator | None = None):
        named = isinstance(padding, str)
        if named and padding not in ("same", "valid"):
            raise ValueError(f"Conv2d: padding {padding!r} is not supported: expected an int, "
                             "a pair of ints, 'same' or 'valid'")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode {padding_mode!r} is not supported: "
                             f"expected one of {', '.join(PADDING_MODES)}")
        super().__init__(
            in_channels, out_channels, kernel_size, stride, 0 if named else padding, dilation,
            groups, bias, 0, lambda m: (out_channels, in_channels // groups) + m.kernel_size,
            device, dtype, generator,
        )
        self.padding_mode = padding_mode
        if padding == "same":
            if self.stride != (1, 1):
                raise ValueError(f"Conv2d: padding='same' is not supported for strided "
                                 f"convolutions (stride {self.stride}), as in PyTorch")
            tall, wide = (d * (k - 1) for d, k in zip(self.dilation, self.kernel_size))
            sides = (wide // 2, wide - wide // 2, tall // 2, tall - tall // 2)
        else:
            sides = (self.padding[1], self.padding[1], self.padding[0], self.padding[0])
        if named:
            self.padding = padding
        # (left, right, top, bottom) for F.pad first, where conv2d's own padding (zeros,
        # the same on both sides) cannot do it; else conv2d pads
        uneven = sides[0] != sides[1] or sides[2] != sides[3]
        self._pads = sides if padding_mode != "zeros" or uneven else None
        self._conv_padding = (0, 0) if self._pads else (sides[2], sides[0])

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        if self._pads is not None:
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            input = F.pad(input, self._pads, mode=mode)
        for axis in (0, 1):
            padded = input.shape[2 + axis] + 2 * self._conv_padding[axis]
            reach = self.dilation[axis] * (self.kernel_size[axis] - 1) + 1
            if padded < reach:
                raise ValueError(
                    f"Conv2d: input {input.shape} is smaller than the kernel: padded size "
                    f"{padded} along axis {2 + axis}, dilated kernel size {reach}"
                )
        return F.conv2d(input, self.weight, self.bias, stride=self.stride,
                        padding=self._conv_padding, dilation=self.dilation, groups=self.groups)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.padding_mode == "zeros" else \
            f"{text}, padding_mode={self.padding_mode}"


class ConvTranspose2d(_ConvNd):
    """The adjoint (gradient) of Conv2d, used to upsample. weight: (in, out // groups, kh, kw).

    Output size per axis: (H - 1) * stride - 2 * padding + dilation * (k - 1)
    + output_padding + 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None,
                 generator: Generator | None = None):
        if padding_mode != "zeros":  # torch's rule
            raise ValueError(f"ConvTranspose2d: only padding_mode 'zeros' is supported, got "
                             f"{padding_mode!r}")
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            output_padding, lambda m: (in_channels, out_channels // groups) + m.kernel_size,
            device, dtype, generator,
        )
        for axis in (0, 1):
            if self.output_padding[axis] >= max(self.stride[axis], self.dilation[axis]):
                raise ValueError(
                    f"ConvTranspose2d: output_padding {self.output_padding} must be smaller "
                    f"than stride {self.stride} or dilation {self.dilation}"
                )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        return F.conv_transpose2d(input, self.weight, self.bias, stride=self.stride,
                                  padding=self.padding, output_padding=self.output_padding,
                                  groups=self.groups, dilation=self.dilation)


class Maxout(Module):
    """Maxout layer (Goodfellow et al. 2013): a Linear to out_features * pieces units, then
    the max over each group of `pieces` consecutive units; y (N, out_features).
    weight: (out_features * pieces, in_features), row c * pieces + k is piece k of unit c,
    the layout of torch's nn.Linear(in, out * pieces) followed by .view(N, out, pieces)
    .amax(-1), and of Blocks' LinearMaxout (used by PacGAN's discriminators)."""

    def __init__(self, in_features: int, out_features: int, pieces: int, bias: bool = True,
                 device=None, dtype=None, generator: Generator | None = None):
        super().__init__()
        if min(in_features, out_features, pieces) < 1:
            raise ValueError(f"Maxout: in_features, out_features and pieces must be >= 1, got "
                             f"{in_features}, {out_features}, {pieces}")
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        _weight_and_bias(self, (out_features * pieces, in_features), out_features * pieces,
                         bias, device, dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        _reset_affine(self.weight, self.bias, generator)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim != 2 or input.shape[1] != self.in_features:
            raise ValueError(f"Maxout: input must be (N, {self.in_features}), got {input.shape}")
        return F.maxout(F.linear(input, self.weight, self.bias), self.pieces)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"pieces={self.pieces}, bias={self.bias is not None}")
