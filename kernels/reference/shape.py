"""Reference kernels that change the spatial size: 2-D padding and nearest upsampling,
each with its adjoint (the `_grad` kernel), on the last two axes (H, W) of any array.

pad = (left, right, top, bottom), torch.nn.functional.pad's order (last axis first).
mode "constant" pads with zeros; "reflect" mirrors the input around its edge without
repeating the edge (PyTorch's and NumPy's "reflect": [a b c d] padded by 2 on the left
is [c b | a b c d]), which needs every pad smaller than the size it mirrors. The caller
(minigan.functional.pad) validates pads and mode, and passes (N, C, H, W) arrays, the
layout a fast kernel set may rely on; these reference kernels take any (..., H, W).
"""

from ._util import array_module

__all__ = ["index_add", "pad2d", "pad2d_grad", "upsample_nearest2d", "upsample_nearest2d_grad"]


def _along(axis: int, index) -> tuple:
    """An index that applies `index` on axis -1 or -2 and takes everything elsewhere."""
    return (Ellipsis, index) if axis == -1 else (Ellipsis, index, slice(None))


def _reflect(x, before: int, after: int, axis: int):
    """x with `before` mirrored entries prepended and `after` appended along axis."""
    xp = array_module(x)
    size = x.shape[axis]
    head = xp.flip(x[_along(axis, slice(1, before + 1))], axis=axis)
    tail = xp.flip(x[_along(axis, slice(size - 1 - after, size - 1))], axis=axis)
    return xp.concatenate([head, x, tail], axis=axis)


def _reflect_grad(g, before: int, after: int, axis: int):
    """The adjoint of _reflect: each mirrored entry's gradient goes back to its source."""
    xp = array_module(g)
    size = g.shape[axis] - before - after
    gx = g[_along(axis, slice(before, before + size))].copy()
    gx[_along(axis, slice(1, before + 1))] += xp.flip(
        g[_along(axis, slice(0, before))], axis=axis
    )
    gx[_along(axis, slice(size - 1 - after, size - 1))] += xp.flip(
        g[_along(axis, slice(before + size, None))], axis=axis
    )
    return gx


def pad2d(x, pad, mode):
    """x (..., H, W) -> (..., top + H + bottom, left + W + right)."""
    xp = array_module(x)
    left, right, top, bottom = pad
    if mode == "constant":
        widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        return xp.pad(x, widths)
    return _reflect(_reflect(x, left, right, axis=-1), top, bottom, axis=-2)


def pad2d_grad(gy, pad, mode):
    """The adjoint of pad2d: gy (..., H_padded, W_padded) -> (..., H, W)."""
    xp = array_module(gy)
    left, right, top, bottom = pad
    if mode == "constant":
        height, width = gy.shape[-2] - top - bottom, gy.shape[-1] - left - right
        return xp.ascontiguousarray(gy[..., top : top + height, left : left + width])
    # undo pad2d's two steps in reverse order: rows first, then columns
    return _reflect_grad(_reflect_grad(gy, top, bottom, axis=-2), left, right, axis=-1)


def upsample_nearest2d(x, scale: int):
    """Each pixel becomes a scale x scale block: (..., H, W) -> (..., H*scale, W*scale)."""
    xp = array_module(x)
    *lead, h, w = x.shape
    blocks = xp.broadcast_to(x[..., :, None, :, None], (*lead, h, scale, w, scale))
    return blocks.reshape(*lead, h * scale, w * scale)


def upsample_nearest2d_grad(gy, scale: int):
    """The adjoint of upsample_nearest2d: each block's gradients summed onto its pixel."""
    *lead, hs, ws = gy.shape
    return gy.reshape(*lead, hs // scale, scale, ws // scale, scale).sum(axis=(-3, -1))


def index_add(values, shape: tuple, index):
    """zeros(shape) with `values` added at `index`; repeated positions add up (the adjoint
    of indexing, so the gradient of x[[0, 0]] reaches x[0] twice)."""
    xp = array_module(values)
    out = xp.zeros(shape, dtype=values.dtype)
    if xp.__name__ == "cupy":
        import cupyx

        cupyx.scatter_add(out, index, values)
    else:
        xp.add.at(out, index, values)
    return out
