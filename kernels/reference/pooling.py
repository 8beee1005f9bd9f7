"""Reference pooling kernel: where each max-pooling window's maximum is.

Max pooling's value is x at those positions, and its gradient sends each output's
gradient back to its position, so the op itself (minigan.functional.max_pool2d) is an
indexing of x once the positions are known; only finding them needs a kernel.

Window (oh, ow) covers the input rows oh*sh - ph + i*dh for i in 0..kh-1 and the columns
likewise (s stride, p padding, d dilation); positions in the padding never win.
"""

from __future__ import annotations

from ._util import array_module

__all__ = ["max_pool2d_indices"]


def max_pool2d_indices(x, kernel, stride, padding, dilation, out_size):
    """x (N, C, H, W) -> int64 (N, C, H_out, W_out): for each window, the flat index
    row * W + column of its maximum in its (H, W) plane (PyTorch's return_indices). Of
    equal maxima the first in row-major window order wins; a NaN wins, as in PyTorch."""
    xp = array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo) = kernel, stride, padding, dilation, out_size
    # -inf padding, enough of it at the end for the last window (ceil_mode may need more)
    rows = max(ph + h, (ho - 1) * sh + (kh - 1) * dh + 1)
    cols = max(pw + w, (wo - 1) * sw + (kw - 1) * dw + 1)
    padded = xp.full((n, c, rows, cols), -xp.inf, dtype=x.dtype)
    padded[:, :, ph : ph + h, pw : pw + w] = x
    best = best_index = None
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i * dh : i * dh + (ho - 1) * sh + 1 : sh,
                            j * dw : j * dw + (wo - 1) * sw + 1 : sw]
            row = xp.arange(ho) * sh - ph + i * dh
            col = xp.arange(wo) * sw - pw + j * dw
            index = row[:, None] * w + col[None, :]
            if best is None:
                best, best_index = window, xp.broadcast_to(index, window.shape)
                continue
            better = (window > best) | (xp.isnan(window) & ~xp.isnan(best))
            best = xp.where(better, window, best)
            best_index = xp.where(better, index, best_index)
    return xp.ascontiguousarray(best_index.astype(xp.int64))
