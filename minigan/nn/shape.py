"""Layers that move values around without weights: Identity, Flatten, Unflatten, Reshape,
ReflectionPad2d, ReplicationPad2d, ZeroPad2d, Upsample (UpsamplingNearest2d,
UpsamplingBilinear2d), PixelShuffle, PixelUnshuffle."""

from __future__ import annotations

import math

from .. import functional as F
from ..functional.shape import INTERPOLATE_MODES
from ..autograd import Tensor
from .module import Module


class Identity(Module):
    """Returns its input; accepts and ignores any constructor arguments, like PyTorch's."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Flatten(Module):
    """Merge dims start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim `dim` into unflattened_size: Unflatten(1, (1, 28, 28)) takes (N, 784) to
    (N, 1, 28, 28)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        dim = self.dim % input.ndim
        if math.prod(self.unflattened_size) != input.shape[dim]:
            raise ValueError(
                f"Unflatten: dim {self.dim} of input {input.shape} has size "
                f"{input.shape[dim]}, which cannot be split into {self.unflattened_size}"
            )
        shape = input.shape[:dim] + self.unflattened_size + input.shape[dim + 1:]
        return input.reshape(shape)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Reshape(Module):
    """Reshape every sample, keeping the batch dim: Reshape(128, 7, 7) takes (N, 6272) to
    (N, 128, 7, 7). (Not in torch.nn; the usual bridge from a Linear to convolutions.)"""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) \
            else tuple(shape)

    def forward(self, input: Tensor) -> Tensor:
        per_sample = math.prod(input.shape[1:])
        if -1 not in self.shape and math.prod(self.shape) != per_sample:
            raise ValueError(
                f"Reshape: input {input.shape} has {per_sample} values per sample, "
                f"which cannot be reshaped to {self.shape}"
            )
        return input.reshape((input.shape[0],) + self.shape)

    def extra_repr(self) -> str:
        return ", ".join(str(s) for s in self.shape)


def _quadruple(padding) -> tuple[int, int, int, int]:
    """(left, right, top, bottom), PyTorch's order for 2-d padding."""
    if isinstance(padding, int):
        return (padding,) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) != 4:
        raise ValueError(f"padding must be an int or (left, right, top, bottom), got {padding}")
    return padding


class ReflectionPad2d(Module):
    """Pad H and W by mirroring the border (the edge itself is not repeated)."""

    def __init__(self, padding):
        super().__init__()
        self.padding = _quadruple(padding)

    def forward(self, input: Tensor) -> Tensor:
        left, right, top, bottom = self.padding
        if input.ndim != 4:
            raise ValueError(f"ReflectionPad2d: expected a 4-d input (N, C, H, W), got shape "
                             f"{input.shape}")
        if max(left, right) >= input.shape[3] or max(top, bottom) >= input.shape[2]:
            raise ValueError(
                f"ReflectionPad2d: padding {self.padding} must be smaller than the input's "
                f"width and height (input {input.shape})"
            )
        return F.pad(input, self.padding, mode="reflect")

    def extra_repr(self) -> str:
        return str(self.padding)


class ZeroPad2d(Module):
    """Pad H and W with zeros."""

    def __init__(self, padding):
        super().__init__()
        self.padding = _quadruple(padding)

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding, mode="constant")

    def extra_repr(self) -> str:
        return str(self.padding)


class ReplicationPad2d(Module):
    """Pad H and W by repeating the edge pixels."""

    def __init__(self, padding):
        super().__init__()
        self.padding = _quadruple(padding)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (3, 4):
            raise ValueError(f"ReplicationPad2d: expected a 3-d or 4-d input ((N,) C, H, W), "
                             f"got shape {input.shape}")
        return F.pad(input, self.padding, mode="replicate")

    def extra_repr(self) -> str:
        return str(self.padding)


class Upsample(Module):
    """Resize H and W to `size` or by `scale_factor` (F.interpolate): mode "nearest"
    (default), "nearest-exact" or "bilinear" (align_corners as in PyTorch)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of size and scale_factor")
        if mode not in INTERPOLATE_MODES:
            raise ValueError(f"{type(self).__name__}: mode {mode!r} is not supported (use one "
                             f"of {INTERPOLATE_MODES})")
        if align_corners is not None and mode != "bilinear":
            raise ValueError(f"{type(self).__name__}: align_corners can only be set with "
                             "mode 'bilinear'")
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.interpolate(input, size=self.size, scale_factor=self.scale_factor,
                             mode=self.mode, align_corners=self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        if self.size is not None:
            return f"size={self.size}, mode={self.mode!r}"
        scale = self.scale_factor
        scale = float(scale) if isinstance(scale, (int, float)) else tuple(map(float, scale))
        return f"scale_factor={scale}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Upsample with mode "nearest"."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Upsample with mode "bilinear" and align_corners=True (PyTorch's choice for it)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """(N, C r^2, H, W) -> (N, C, H r, W r), r = upscale_factor (Shi et al. 2016)."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(N, C, H r, W r) -> (N, C r^2, H, W), the inverse of PixelShuffle."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
