"""Ops that reshape space or mask values: pad, nearest upsampling (interpolate), dropout.

Padding and upsampling are linear maps, so each comes as a pair of Functions, the map and
its adjoint (the `_grad` kernel), and each one's backward is the other: gradients of any
order close within the pair. Dropout multiplies by a constant random mask, which the
primitive Mul already differentiates.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from .. import random as _random
from ..autograd import Function, Tensor

__all__ = ["dropout", "interpolate", "pad", "upsample_nearest2d"]

PAD_MODES = ("constant", "reflect")


# ----------------------------------------------------------------------------- Functions


class Pad2d(Function):
    def forward(self, x, pad: tuple, mode: str):
        self.pad, self.mode = pad, mode
        return self.K.pad2d(x, pad, mode)

    def backward(self, g: Tensor):
        return Pad2dGrad.apply(g, pad=self.pad, mode=self.mode)


class Pad2dGrad(Function):
    """The adjoint of Pad2d (crop, and for "reflect" fold the mirrored borders back)."""

    def forward(self, g, pad: tuple, mode: str):
        self.pad, self.mode = pad, mode
        return self.K.pad2d_grad(g, pad, mode)

    def backward(self, gg: Tensor):
        return Pad2d.apply(gg, pad=self.pad, mode=self.mode)


class UpsampleNearest2d(Function):
    def forward(self, x, scale: int):
        self.scale = scale
        return self.K.upsample_nearest2d(x, scale)

    def backward(self, g: Tensor):
        return UpsampleNearest2dGrad.apply(g, scale=self.scale)


class UpsampleNearest2dGrad(Function):
    """The adjoint of UpsampleNearest2d: sums each scale x scale block."""

    def forward(self, g, scale: int):
        self.scale = scale
        return self.K.upsample_nearest2d_grad(g, scale)

    def backward(self, gg: Tensor):
        return UpsampleNearest2d.apply(gg, scale=self.scale)


# ----------------------------------------------------------------------------- public ops


def pad(input: Tensor, pad: tuple, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last two axes as torch.nn.functional.pad: pad = (left, right, top, bottom)
    (or (left, right) for the last axis only). mode "constant" fills with value; "reflect"
    mirrors without repeating the edge, so each pad must be smaller than its axis."""
    pads = tuple(pad)
    if len(pads) not in (2, 4) or not all(isinstance(p, Integral) for p in pads):
        raise ValueError(f"pad: pad must be 2 or 4 ints (left, right, top, bottom), got {pad!r}")
    pads = tuple(int(p) for p in pads) + (0,) * (4 - len(pads))
    if min(pads) < 0:
        raise ValueError(f"pad: negative padding (cropping) is not supported, got {pad!r}")
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode {mode!r} is not supported (use one of {PAD_MODES})")
    if input.ndim < 2:
        raise ValueError(f"pad: input must have at least 2 dimensions, got shape {input.shape}")
    height, width = input.shape[-2:]
    if mode == "reflect":
        if value != 0:
            raise ValueError("pad: mode 'reflect' takes no value")
        if max(pads[:2]) >= width or max(pads[2:]) >= height:
            raise ValueError(
                f"pad: reflect padding {tuple(pad)} must be smaller than the padded "
                f"dimensions (input {input.shape})"
            )
    # the kernels see (N, C, H, W), the layout the fast kernel sets are written for
    lead = input.shape[:-2]
    x = input if input.ndim == 4 else input.reshape(1, int(np.prod(lead)), height, width)
    out = Pad2d.apply(x, pad=pads, mode=mode)
    if mode == "constant" and value != 0:
        # the border is a constant: pad a block of ones to find it, then fill it with value
        ones = input._backend.xp.ones((1, 1, height, width), dtype=input.dtype)
        inside = input._backend.K.pad2d(ones, pads, mode)
        out = out + Tensor._wrap((1 - inside) * value, input._backend)
    return out if input.ndim == 4 else out.reshape(*lead, *out.shape[-2:])


def upsample_nearest2d(input: Tensor, scale_factor: int) -> Tensor:
    """(N, C, H, W) -> (N, C, H*s, W*s), each pixel repeated into an s x s block."""
    if input.ndim != 4:
        raise ValueError(
            f"upsample_nearest2d: input must be 4-D (N, C, H, W), got shape {input.shape}"
        )
    if not isinstance(scale_factor, Integral) or scale_factor < 1:
        raise ValueError(
            f"upsample_nearest2d: scale_factor must be a positive int, got {scale_factor!r}"
        )
    return UpsampleNearest2d.apply(input, scale=int(scale_factor))


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest") -> Tensor:
    """torch.nn.functional.interpolate for what GANs use: mode "nearest" on (N, C, H, W)
    with one integer scale for both axes, given as scale_factor or as the output size."""
    if mode != "nearest":
        raise ValueError(f"interpolate: mode {mode!r} is not supported (only 'nearest')")
    if input.ndim != 4:
        raise ValueError(f"interpolate: input must be 4-D (N, C, H, W), got shape {input.shape}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        size = (size, size) if isinstance(size, Integral) else tuple(size)
        scales = [s / n for s, n in zip(size, input.shape[2:])] if len(size) == 2 else []
    elif isinstance(scale_factor, (tuple, list)):
        scales = list(scale_factor)
    else:
        scales = [scale_factor, scale_factor]
    scale = scales[0] if len(scales) == 2 and scales[0] == scales[1] else None
    if not isinstance(scale, Real) or scale < 1 or scale != int(scale):
        raise ValueError(
            "interpolate: only one integer scale >= 1 for both axes is supported, got "
            f"size={size!r}, scale_factor={scale_factor!r} for input {input.shape}"
        )
    return upsample_nearest2d(input, int(scale))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Inverted dropout: zero each value with probability p and scale the rest by
    1/(1-p), so the expected value is unchanged and evaluation needs no rescaling.
    The mask comes from `generator` (default: minigan's), so a seed fixes it."""
    if not isinstance(p, Real) or not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p!r}")
    if not training or p == 0:
        return input
    # drawn on the host, like all of minigan's random numbers: a seed gives the same mask
    # on every device
    uniform = _random.resolve(generator).uniform(input.shape, dtype=input.dtype)
    mask = (uniform >= p).astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p))
    return input * Tensor._wrap(input._backend.asarray(mask), input._backend)
