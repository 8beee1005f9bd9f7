"""Reference 2-D convolution kernels: the forward and its two adjoints.

A convolution (cross-correlation, as in PyTorch) is a sum over the kH*kW kernel taps:
tap (i, j) multiplies the weight slice w[:, :, i, j] with a strided window of the padded
input that starts at (i*dilation, j*dilation). So each kernel here is a short loop over
the taps with one matrix product per tap, batched over groups:

    conv2d              y  += w[tap] @ window(x_padded)       (the forward)
    conv2d_input_grad   window(gx_padded) += w[tap]^T @ gy    (its adjoint in x)
    conv2d_weight_grad  gw[tap] = sum over batch of gy @ window(x_padded)^T

Shapes: x (N, C_in, H, W), w (C_out, C_in/groups, kH, kW), y (N, C_out, H_out, W_out),
H_out = (H + 2*pad - dilation*(kH - 1) - 1) // stride + 1 (likewise for W).
stride, padding, dilation are (int, int) pairs and groups an int; the caller
(minigan.functional.conv2d) validates them, so these kernels assume a valid geometry.
"""

from ._util import array_module

__all__ = ["conv2d", "conv2d_input_grad", "conv2d_weight_grad"]


def _tap_window(i: int, j: int, out_hw, stride, dilation) -> tuple:
    """The index of the padded-input window that kernel tap (i, j) sees:
    rows i*d, i*d + s, ..., one per output row (likewise for columns)."""
    rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (out_hw[0] - 1) + 1, stride[0])
    cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (out_hw[1] - 1) + 1, stride[1])
    return (Ellipsis, rows, cols)


def _pad_hw(x, padding):
    xp = array_module(x)
    if padding == (0, 0):
        return x
    ph, pw = padding
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d(x, w, stride, padding, dilation, groups):
    """y[n, o, p, q] = sum over c, i, j of w[o, c, i, j] * x_padded[n, c, p*s + i*d, q*s + j*d]
    (c running over the group of channel o)."""
    xp = array_module(x)
    n = x.shape[0]
    c_out, c_group, kh, kw = w.shape
    x_padded = _pad_hw(x, padding)
    h_out = (x_padded.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (x_padded.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    # group axis split out: x (N, G, C_in/G, H, W), w (G, C_out/G, C_in/G, kH, kW)
    x_groups = x_padded.reshape(n, groups, c_group, *x_padded.shape[2:])
    w_groups = w.reshape(groups, c_out // groups, c_group, kh, kw)
    y = xp.zeros((n, groups, c_out // groups, h_out * w_out), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = x_groups[_tap_window(i, j, (h_out, w_out), stride, dilation)]
            # (G, O, C) @ (N, G, C, P) -> (N, G, O, P), P = H_out * W_out
            y += w_groups[:, :, :, i, j] @ window.reshape(n, groups, c_group, -1)
    return y.reshape(n, c_out, h_out, w_out)


def conv2d_input_grad(gy, w, input_hw, stride, padding, dilation, groups):
    """The adjoint of conv2d in x: every tap sends w[tap]^T @ gy back to the window it
    read from. Rows of x that no window reached (when the stride does not divide the
    padded size) get zero, as they had no effect on y."""
    xp = array_module(gy)
    n, c_out, h_out, w_out = gy.shape
    _, c_group, kh, kw = w.shape
    ph, pw = padding
    padded_hw = (input_hw[0] + 2 * ph, input_hw[1] + 2 * pw)
    gx_groups = xp.zeros((n, groups, c_group, *padded_hw), dtype=gy.dtype)
    gy_groups = gy.reshape(n, groups, c_out // groups, h_out * w_out)
    w_groups = w.reshape(groups, c_out // groups, c_group, kh, kw)
    for i in range(kh):
        for j in range(kw):
            # (G, C, O) @ (N, G, O, P) -> (N, G, C, P)
            contribution = w_groups[:, :, :, i, j].transpose(0, 2, 1) @ gy_groups
            window = _tap_window(i, j, (h_out, w_out), stride, dilation)
            gx_groups[window] += contribution.reshape(n, groups, c_group, h_out, w_out)
    gx = gx_groups.reshape(n, groups * c_group, *padded_hw)
    return xp.ascontiguousarray(gx[:, :, ph : ph + input_hw[0], pw : pw + input_hw[1]])


def conv2d_weight_grad(x, gy, kernel_hw, stride, padding, dilation, groups):
    """The adjoint of conv2d in w: gw[tap] correlates gy with the window tap read."""
    xp = array_module(x)
    n, c_in = x.shape[:2]
    _, c_out, h_out, w_out = gy.shape
    kh, kw = kernel_hw
    c_group = c_in // groups
    x_padded = _pad_hw(x, padding)
    x_groups = x_padded.reshape(n, groups, c_group, *x_padded.shape[2:])
    gy_groups = gy.reshape(n, groups, c_out // groups, h_out * w_out)
    gw = xp.zeros((groups, c_out // groups, c_group, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = x_groups[_tap_window(i, j, (h_out, w_out), stride, dilation)]
            window = window.reshape(n, groups, c_group, -1)
            # (N, G, O, P) @ (N, G, P, C) -> (N, G, O, C), summed over the batch
            gw[:, :, :, i, j] = (gy_groups @ window.transpose(0, 1, 3, 2)).sum(axis=0)
    return gw.reshape(c_out, c_group, kh, kw)
