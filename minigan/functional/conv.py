"""Linear and convolution layers' ops: linear, conv2d, conv_transpose2d.

A convolution is linear in its input and in its weight, so its gradients are again
linear maps of the same family. Three Functions close the family under differentiation:

    Conv2d(x, w)          y  = conv2d(x, w)
    ConvInputGrad(gy, w)  gx = the adjoint of conv2d in x (also conv_transpose2d's forward)
    ConvWeightGrad(x, gy) gw = the adjoint of conv2d in w

Each one's backward is written with the other two, so gradients of gradients of any order
work (WGAN-GP and R1 differentiate a discriminator's input gradient once more).
The kernels (kernels/reference/conv.py, and the cpu/cuda sets) do the array work; this
file checks the arguments and wires the gradients. Bias is added by a broadcast add.
"""

from __future__ import annotations

from numbers import Integral
from typing import NamedTuple

from ..autograd import Function, Tensor, is_grad_enabled
from .activation import _activation_input_grad, _check_kind

__all__ = ["conv2d", "conv_transpose2d", "linear", "linear_act"]


class ConvGeometry(NamedTuple):
    """The arguments every conv kernel takes after its arrays, in the kernels' order."""

    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int


# ----------------------------------------------------------------------------- Functions


class Conv2d(Function):
    """y = conv2d(x, w). Linear in x and in w: each gradient is an adjoint op."""

    def forward(self, x, w, geometry: ConvGeometry):
        self.geometry = geometry
        return self.K.conv2d(x, w, *geometry)

    def backward(self, gy: Tensor):
        x, w = self.inputs
        gx = gw = None
        if self.needs_input_grad[0]:
            gx = ConvInputGrad.apply(gy, w, input_hw=x.shape[2:], geometry=self.geometry)
        if self.needs_input_grad[1]:
            gw = ConvWeightGrad.apply(x, gy, kernel_hw=w.shape[2:], geometry=self.geometry)
        return gx, gw


class ConvInputGrad(Function):
    """gx = conv2d_input_grad(gy, w), defined by <gx, a> = <gy, conv2d(a, w)> for all a.
    So for an upstream gradient g (shaped like gx): d/d gy = conv2d(g, w) and
    d/d w = conv2d_weight_grad(g, gy)."""

    def forward(self, gy, w, input_hw: tuple, geometry: ConvGeometry):
        self.geometry = geometry
        return self.K.conv2d_input_grad(gy, w, tuple(input_hw), *geometry)

    def backward(self, g: Tensor):
        gy, w = self.inputs
        ggy = gw = None
        if self.needs_input_grad[0]:
            ggy = _conv2d_cropped(g, w, self.geometry, gy.shape[2:])
        if self.needs_input_grad[1]:
            gw = ConvWeightGrad.apply(g, gy, kernel_hw=w.shape[2:], geometry=self.geometry)
        return ggy, gw


class ConvWeightGrad(Function):
    """gw = conv2d_weight_grad(x, gy), defined by <gw, b> = <gy, conv2d(x, b)> for all b.
    So for an upstream gradient g (shaped like gw): d/d x = conv2d_input_grad(gy, g) and
    d/d gy = conv2d(x, g)."""

    def forward(self, x, gy, kernel_hw: tuple, geometry: ConvGeometry):
        self.geometry = geometry
        return self.K.conv2d_weight_grad(x, gy, tuple(kernel_hw), *geometry)

    def backward(self, g: Tensor):
        x, gy = self.inputs
        gx = ggy = None
        if self.needs_input_grad[0]:
            gx = ConvInputGrad.apply(gy, g, input_hw=x.shape[2:], geometry=self.geometry)
        if self.needs_input_grad[1]:
            ggy = _conv2d_cropped(x, g, self.geometry, gy.shape[2:])
        return gx, ggy


class Linear(Function):
    """y = act(x @ w^T + b) for x (N, in), w (out, in) and an optional b (out,): the kernel
    linear_act, a product and a bias + activation pass (kind "none": the plain layer).

    Backward, with gz = dL/d(pre-activation): gx = gz @ w, gw = gz^T @ x, gb = the column
    sums of gz, written in Tensor ops so they can be differentiated again (WGAN-GP, R1).
    A plain .backward() records no graph, so `_backward_arrays` hands the same formulas
    to one kernel, linear_grads (the cpu one runs them in one parallel region)."""

    def forward(self, x, w, *bias, kind: str, slope: float):
        self.kind, self.slope = kind, slope
        return self.K.linear_act(x, w, bias[0] if bias else None, kind, slope)

    def backward(self, g: Tensor):
        if not is_grad_enabled():
            return self._backward_arrays(g)
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        gz = _activation_input_grad(self, g, self.output, self.kind, self.slope)
        grads = [gz @ w if need[0] else None, gz.T @ x if need[1] else None]
        if len(need) == 3:
            grads.append(gz.sum(axis=0) if need[2] else None)
        return tuple(grads)

    def _backward_arrays(self, g: Tensor):
        """backward's formulas on raw arrays, for when no graph of the gradient is wanted:
        no Tensor bookkeeping, one kernel call."""
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        gx, gw, gbias = self.K.linear_grads(g.array, self.output.array, x.array, w.array,
                                            self.kind, self.slope, need[0], need[1],
                                            len(need) == 3 and need[2])
        arrays = [gx, gw] + ([gbias] if len(need) == 3 else [])
        return tuple(None if a is None else Tensor._wrap(a, self.backend) for a in arrays)


def _conv2d_cropped(x: Tensor, w: Tensor, geometry: ConvGeometry, out_hw) -> Tensor:
    """conv2d(x, w) cut to out_hw. A conv_transpose2d whose output_padding reaches the
    stride (allowed when the dilation is larger) makes trailing rows that no input
    position feeds; conv2d over them yields extra rows that the adjoint must drop."""
    y = Conv2d.apply(x, w, geometry=geometry)
    if y.shape[2:] != tuple(out_hw):
        y = y[:, :, : out_hw[0], : out_hw[1]]
    return y


# ----------------------------------------------------------------------------- public ops


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias, with weight (out_features, in_features), input (..., in)."""
    _check_linear("linear", input, weight, bias)
    return _linear(input, weight, bias, "none", 0.0)


def linear_act(input: Tensor, weight: Tensor, bias: Tensor | None, kind: str,
               slope: float = 0.0) -> Tensor:
    """act(linear(input, weight, bias)) as one op: kind is relu, leaky_relu (slope = its
    negative slope), tanh, sigmoid or none. nn.Sequential uses it for a Linear followed by
    one of those activations; the results are those of the two ops applied in turn."""
    _check_kind(kind, slope, "linear_act")
    _check_linear("linear", input, weight, bias)  # errors name the op the user called
    return _linear(input, weight, bias, kind, float(slope))


def _check_linear(op: str, input: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (out, in), got shape {weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        features = input.shape[-1] if input.ndim else "no"
        raise ValueError(
            f"{op}: input has {features} features, weight expects {weight.shape[1]} "
            f"(input {input.shape}, weight {weight.shape})"
        )
    _check_dtypes(op, input, weight, bias)
    _check_bias(op, bias, weight.shape[0])


def _linear(input: Tensor, weight: Tensor, bias: Tensor | None, kind: str, slope: float):
    """The Linear op over the last axis of an input of any rank (folded into 2-D)."""
    x = input if input.ndim == 2 else input.reshape(-1, input.shape[-1])
    y = Linear.apply(*((x, weight) if bias is None else (x, weight, bias)), kind=kind,
                     slope=slope)
    return y if input.ndim == 2 else y.reshape(*input.shape[:-1], weight.shape[0])


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation as torch.nn.functional.conv2d: input (N, C_in, H, W),
    weight (C_out, C_in/groups, kH, kW) -> (N, C_out, H_out, W_out)."""
    geometry = _geometry("conv2d", stride, padding, dilation, groups)
    _check_4d("conv2d", input, weight, "(C_out, C_in/groups, kH, kW)")
    c_in, c_out = input.shape[1], weight.shape[0]
    _check_groups("conv2d", groups, c_in, "input", weight)
    _check_groups("conv2d", groups, c_out, "weight's output", weight)
    if c_in != weight.shape[1] * groups:
        raise ValueError(
            f"conv2d: input has {c_in} channels, weight expects {weight.shape[1] * groups} "
            f"(input {input.shape}, weight {weight.shape}{_groups_note(groups)})"
        )
    _check_dtypes("conv2d", input, weight, bias)
    _check_bias("conv2d", bias, c_out)
    out_hw = [
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, k, s, p, d in zip(input.shape[2:], weight.shape[2:], *geometry[:3])
    ]
    if min(out_hw) < 1:
        raise ValueError(
            f"conv2d: output size {tuple(out_hw)} is less than 1: the input padded by "
            f"{geometry.padding} is smaller than the kernel dilated by {geometry.dilation} "
            f"(input {input.shape}, weight {weight.shape})"
        )
    out = Conv2d.apply(input, weight, geometry=geometry)
    return _add_channel_bias(out, bias)


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """The adjoint of conv2d in its input, as torch.nn.functional.conv_transpose2d:
    input (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW) -> (N, C_out, H_out, W_out),
    H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1."""
    geometry = _geometry("conv_transpose2d", stride, padding, dilation, groups)
    extra = _pair("conv_transpose2d", "output_padding", output_padding, minimum=0)
    _check_4d("conv_transpose2d", input, weight, "(C_in, C_out/groups, kH, kW)")
    c_in, c_out = input.shape[1], weight.shape[1] * groups
    _check_groups("conv_transpose2d", groups, c_in, "input", weight)
    if c_in != weight.shape[0]:
        raise ValueError(
            f"conv_transpose2d: input has {c_in} channels, weight expects {weight.shape[0]} "
            f"(input {input.shape}, weight {weight.shape})"
        )
    # PyTorch's rule: output_padding picks one of the sizes that conv2d maps back to H,
    # so it must stay below the stride (or the dilation) in each dimension
    if any(e >= max(s, d) for e, s, d in zip(extra, geometry.stride, geometry.dilation)):
        raise ValueError(
            f"conv_transpose2d: output_padding {extra} must be smaller than the stride "
            f"{geometry.stride} or the dilation {geometry.dilation} in each dimension"
        )
    _check_dtypes("conv_transpose2d", input, weight, bias)
    _check_bias("conv_transpose2d", bias, c_out)
    out_hw = tuple(
        (size - 1) * s - 2 * p + d * (k - 1) + e + 1
        for size, k, s, p, d, e in zip(input.shape[2:], weight.shape[2:], *geometry[:3], extra)
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"conv_transpose2d: output size {out_hw} is less than 1 "
            f"(input {input.shape}, weight {weight.shape}, padding {geometry.padding})"
        )
    out = ConvInputGrad.apply(input, weight, input_hw=out_hw, geometry=geometry)
    return _add_channel_bias(out, bias)


# ----------------------------------------------------------------------------- checks


def _pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, as (int, int), each at least `minimum`."""
    if isinstance(value, Integral):
        pair = (value, value)
    else:  # anything else but a sequence (a float) fails the check below, with the message
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, Integral) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    pair = (int(pair[0]), int(pair[1]))
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return pair


def _geometry(op: str, stride, padding, dilation, groups) -> ConvGeometry:
    if not isinstance(groups, Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    return ConvGeometry(
        _pair(op, "stride", stride, minimum=1),
        _pair(op, "padding", padding, minimum=0),
        _pair(op, "dilation", dilation, minimum=1),
        int(groups),
    )


def _check_4d(op: str, input: Tensor, weight: Tensor, weight_layout: str) -> None:
    if input.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {input.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D {weight_layout}, got shape {weight.shape}")


def _check_groups(op: str, groups: int, channels: int, what: str, weight: Tensor) -> None:
    if channels % groups:
        raise ValueError(
            f"{op}: groups={groups} does not divide the {what} channels ({channels}) "
            f"(weight {weight.shape})"
        )


def _groups_note(groups: int) -> str:
    return f", groups={groups}" if groups > 1 else ""


def _check_dtypes(op: str, *tensors) -> None:
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) > 1:
        names = ", ".join(sorted(str(d) for d in dtypes))
        raise ValueError(f"{op}: input, weight and bias must share one dtype, got {names}")


def _check_bias(op: str, bias: Tensor | None, channels: int) -> None:
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},), got {bias.shape}")


def _add_channel_bias(out: Tensor, bias: Tensor | None) -> Tensor:
    # one bias per output channel, broadcast over batch and space (its gradient is summed)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)
