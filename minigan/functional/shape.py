"""Ops that reshape space or mask values: pad, upsampling (interpolate), pixel shuffle,
dropout.

Constant and reflection padding and integer nearest upsampling are linear maps, so each
comes as a pair of Functions, the map and its adjoint (the `_grad` kernel), and each one's
backward is the other: gradients of any order close within the pair. The other linear
maps are composed of primitives whose gradients already close: replicate and circular
padding index the input with repeated positions (GetItem, whose adjoint adds the repeats
back), bilinear and general nearest resizing multiply by constant interpolation matrices
along H and W (MatMul), pixel shuffle is a reshape and a permutation. Dropout multiplies
by a constant random mask, which the primitive Mul already differentiates.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from .. import random as _random
from ..autograd import Function, Tensor

__all__ = ["dropout", "dropout2d", "interpolate", "pad", "pixel_shuffle", "pixel_unshuffle",
           "upsample_bilinear", "upsample_nearest2d"]

PAD_MODES = ("constant", "reflect", "replicate", "circular")
INTERPOLATE_MODES = ("nearest", "nearest-exact", "bilinear")


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


def pad(input: Tensor, pad: tuple, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last two axes as torch.nn.functional.pad: pad = (left, right, top, bottom)
    (or (left, right) for the last axis only). mode "constant" fills with value (0 by
    default); "reflect" mirrors without repeating the edge, so each pad must be smaller
    than its axis; "replicate" repeats the edge; "circular" wraps around (each pad at most
    its axis)."""
    value = 0.0 if value is None else value
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
    if mode != "constant" and value != 0:
        raise ValueError(f"pad: mode {mode!r} takes no value")
    if mode in ("replicate", "circular"):
        return _pad_by_index(input, pads, mode)
    if mode == "reflect":
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


def _pad_by_index(input: Tensor, pads: tuple, mode: str) -> Tensor:
    """Replicate or circular padding as indexing: each output row (column) reads an input
    row (column), the edge one repeatedly ("replicate") or the one a period away
    ("circular"). GetItem's adjoint adds the repeated reads back, so the gradient is exact."""
    left, right, top, bottom = pads
    height, width = input.shape[-2:]
    if mode == "circular" and (max(left, right) > width or max(top, bottom) > height):
        raise ValueError(
            f"pad: circular padding {pads} must not exceed the padded dimensions "
            f"(input {input.shape})"
        )
    if height == 0 or width == 0:
        raise ValueError(f"pad: cannot {mode}-pad an empty dimension (input {input.shape})")
    xp = input._backend.xp

    def sources(before, size, after):
        positions = np.arange(-before, size + after)
        rows = np.clip(positions, 0, size - 1) if mode == "replicate" else positions % size
        return xp.asarray(rows)

    lead = (slice(None),) * (input.ndim - 2)
    out = input[lead + (sources(top, height, bottom), slice(None))]
    return out[lead + (slice(None), sources(left, width, right))]


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


def _pair(value, name: str) -> tuple:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"interpolate: {name} must be one number or two (H, W), got {value!r}")
    return pair


def _output_size_and_scales(input: Tensor, size, scale_factor, recompute_scale_factor):
    """((H_out, W_out), (scale_h, scale_w)), the scales mapping an output coordinate to an
    input one as PyTorch does: input / output size, or 1 / scale_factor when given (unless
    recompute_scale_factor)."""
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    in_size = input.shape[2:]
    if size is not None:
        out_size = _pair(size, "size")
        if not all(isinstance(s, Integral) and s > 0 for s in out_size):
            raise ValueError(f"interpolate: size must be positive ints, got {size!r}")
        scales = tuple(i / o for i, o in zip(in_size, out_size))
    else:
        factors = _pair(scale_factor, "scale_factor")
        if not all(isinstance(f, Real) and f > 0 for f in factors):
            raise ValueError(f"interpolate: scale_factor must be positive, got {scale_factor!r}")
        out_size = tuple(int(np.floor(i * f)) for i, f in zip(in_size, factors))
        if min(out_size) < 1:
            raise ValueError(f"interpolate: scale_factor {scale_factor!r} leaves no output "
                             f"pixels for input {input.shape}")
        scales = (tuple(i / o for i, o in zip(in_size, out_size)) if recompute_scale_factor
                  else tuple(1.0 / f for f in factors))
    return tuple(int(s) for s in out_size), scales


def _interpolation_matrix(in_size: int, out_size: int, scale: float, mode: str,
                          align_corners: bool) -> np.ndarray:
    """The (out_size, in_size) matrix A with output = A @ input along one axis, PyTorch's
    sampling positions: output pixel j reads input position src(j):
      nearest        floor(j * scale)
      nearest-exact  floor((j + 0.5) * scale)
      bilinear       (j + 0.5) * scale - 0.5, at least 0 (pixel centres), or
                     j * (in - 1) / (out - 1) with align_corners (corner pixels aligned),
                     blended from its two neighbours floor(src) and floor(src) + 1."""
    out = np.arange(out_size, dtype=np.float64)
    matrix = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    if mode != "bilinear":
        offset = 0.5 if mode == "nearest-exact" else 0.0
        source = np.minimum(np.floor((out + offset) * scale).astype(np.int64), in_size - 1)
        matrix[rows, source] = 1.0
        return matrix
    if align_corners:
        source = out * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    else:
        source = np.maximum((out + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    weight_high = source - low
    np.add.at(matrix, (rows, low), 1.0 - weight_high)
    np.add.at(matrix, (rows, high), weight_high)
    return matrix


def _resize(input: Tensor, out_size: tuple, scales: tuple, mode: str,
            align_corners: bool) -> Tensor:
    """Resize H and W by the separable map A_h x A_w^T (two products with constants)."""
    backend = input._backend
    mats = [
        Tensor._wrap(backend.asarray(
            _interpolation_matrix(n, m, s, mode, align_corners), dtype=input.dtype), backend)
        for n, m, s in zip(input.shape[2:], out_size, scales)
    ]
    return mats[0] @ input @ mats[1].T


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """torch.nn.functional.interpolate on (N, C, H, W): mode "nearest", "nearest-exact" or
    "bilinear" (align_corners False by default, as in PyTorch), to an output size or by a
    scale_factor (one number or (H, W)). An integer nearest scale takes the
    upsample_nearest2d kernel; any other size multiplies by interpolation matrices."""
    if mode not in INTERPOLATE_MODES:
        raise ValueError(f"interpolate: mode {mode!r} is not supported (use one of "
                         f"{INTERPOLATE_MODES})")
    if align_corners is not None and mode != "bilinear":
        raise ValueError("interpolate: align_corners can only be set with mode 'bilinear'")
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported")
    if input.ndim != 4:
        raise ValueError(f"interpolate: input must be 4-D (N, C, H, W), got shape {input.shape}")
    out_size, scales = _output_size_and_scales(input, size, scale_factor,
                                               recompute_scale_factor)
    if mode == "nearest":
        ratio = out_size[0] / input.shape[2]
        if (ratio == int(ratio) >= 1 and out_size[1] == input.shape[3] * ratio
                and scales[0] == scales[1] == 1 / ratio):
            return upsample_nearest2d(input, int(ratio))
    return _resize(input, out_size, scales, mode, bool(align_corners))


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Bilinear resizing with align_corners=True (PyTorch's F.upsample_bilinear)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): channel c r^2 + i r + j becomes the pixel
    offset (i, j) of each r x r block (sub-pixel convolution, Shi et al. 2016)."""
    r = int(upscale_factor)
    if input.ndim < 3 or input.shape[-3] % (r * r) or r < 1:
        raise ValueError(
            f"pixel_shuffle: input must be (*, C * {r}^2, H, W) with upscale_factor {r} >= 1, "
            f"got shape {input.shape}"
        )
    *lead, c, h, w = input.shape
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """The inverse of pixel_shuffle: (*, C, H r, W r) -> (*, C r^2, H, W)."""
    r = int(downscale_factor)
    if input.ndim < 3 or r < 1 or input.shape[-2] % r or input.shape[-1] % r:
        raise ValueError(
            f"pixel_unshuffle: height and width must be divisible by downscale_factor {r}, "
            f"got shape {input.shape}"
        )
    *lead, c, hr, wr = input.shape
    n = len(lead)
    x = input.reshape(*lead, c, hr // r, r, wr // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, hr // r, wr // r)


def _keep_mask(input: Tensor, shape: tuple, p: float, generator) -> Tensor:
    """A constant Tensor of `shape`: 0 with probability p, else 1/(1-p)."""
    # drawn on the host, like all of minigan's random numbers: a seed gives the same mask
    # on every device
    uniform = _random.resolve(generator).uniform(shape, dtype=input.dtype)
    mask = (uniform >= p).astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p))
    return Tensor._wrap(input._backend.asarray(mask), input._backend)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator=None) -> Tensor:
    """Inverted dropout: zero each value with probability p and scale the rest by
    1/(1-p), so the expected value is unchanged and evaluation needs no rescaling.
    The mask comes from `generator` (default: minigan's), so a seed fixes it. `inplace`
    (torch's fourth argument) is accepted and ignored: the result is a new tensor."""
    if not isinstance(p, Real) or not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p!r}")
    if not training or p == 0:
        return input
    return input * _keep_mask(input, input.shape, p, generator)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator=None) -> Tensor:
    """Channel dropout on (N, C, H, W): zero each whole channel of each sample with
    probability p and scale the rest by 1/(1-p). `inplace` is accepted and ignored."""
    if not isinstance(p, Real) or not 0 <= p < 1:
        raise ValueError(f"dropout2d: p must be in [0, 1), got {p!r}")
    if input.ndim != 4:
        raise ValueError(f"dropout2d: expected a 4-D input (N, C, H, W), got shape "
                         f"{input.shape}")
    if not training or p == 0:
        return input
    return input * _keep_mask(input, input.shape[:2] + (1, 1), p, generator)
