"""Activation ops: relu, leaky_relu, tanh, sigmoid, softplus, log_sigmoid and the fused
bias + activation (`bias_act`) that linear and conv layers use as their epilogue.

relu, leaky_relu, tanh and sigmoid are one Function parameterised by `kind`. Its backward
needs only the output y (relu: a 0/1 mask from the sign of y; tanh: 1 - y^2; sigmoid:
y (1 - y)), written in Tensor ops on `self.output` so that it can be differentiated again.
When no graph is being recorded it takes the kernel's one-pass `activation_grad` instead.
"""

from __future__ import annotations

from ..autograd import Function, Tensor, is_grad_enabled
from ..kernels.reference.activation import ACTIVATION_KINDS

__all__ = [
    "bias_act",
    "leaky_relu",
    "log_sigmoid",
    "logsigmoid",
    "relu",
    "sigmoid",
    "softplus",
    "tanh",
]


def _activation_input_grad(fn: Function, g: Tensor, y: Tensor, kind: str, slope: float):
    """dL/d(pre-activation) from dL/dy and the output y, shared by Activation and BiasAct."""
    if not is_grad_enabled():
        return Tensor._wrap(fn.K.activation_grad(g.data, y.data, kind, slope), fn.backend)
    if kind in ("relu", "leaky_relu"):
        # piecewise linear: the derivative is a constant mask (its own derivative is zero)
        mask = fn.xp.where(y.data > 0, 1.0, slope if kind == "leaky_relu" else 0.0)
        return g * Tensor._wrap(mask.astype(y.dtype), fn.backend)
    if kind == "tanh":
        return g * (1.0 - y * y)
    if kind == "sigmoid":
        return g * y * (1.0 - y)
    return g


class Activation(Function):
    """y = act(x) for kind in relu, leaky_relu, tanh, sigmoid, none."""

    def forward(self, x, kind, slope):
        self.kind, self.slope = kind, slope
        return self.K.activation(x, kind, slope)

    def backward(self, g):
        return _activation_input_grad(self, g, self.output, self.kind, self.slope)


class BiasAct(Function):
    """y = act(x + bias), bias (C,) along axis 1: the fused epilogue of linear and conv."""

    def forward(self, x, bias, kind, slope):
        self.kind, self.slope = kind, slope
        return self.K.bias_activation(x, bias, kind, slope)

    def backward(self, g):
        x, _ = self.inputs
        gz = _activation_input_grad(self, g, self.output, self.kind, self.slope)
        gbias = None
        if self.needs_input_grad[1]:
            gbias = gz.sum(axis=(0,) + tuple(range(2, x.ndim)))
        return (gz if self.needs_input_grad[0] else None), gbias


def _check_kind(kind: str, slope: float, op: str) -> None:
    if kind not in ACTIVATION_KINDS:
        raise ValueError(
            f"{op}: unknown activation kind {kind!r}; expected one of {ACTIVATION_KINDS}"
        )
    if kind == "leaky_relu" and slope < 0:
        # the backward reads the sign of x from the output, which needs slope >= 0
        raise ValueError(f"{op}: negative_slope must be >= 0, got {slope}")


def relu(input: Tensor) -> Tensor:
    return Activation.apply(input, kind="relu", slope=0.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    _check_kind("leaky_relu", negative_slope, "leaky_relu")
    return Activation.apply(input, kind="leaky_relu", slope=float(negative_slope))


def tanh(input: Tensor) -> Tensor:
    return Activation.apply(input, kind="tanh", slope=0.0)


def sigmoid(input: Tensor) -> Tensor:
    return Activation.apply(input, kind="sigmoid", slope=0.0)


class Softplus(Function):
    """log(1 + exp(x)); its derivative is sigmoid(x)."""

    def forward(self, x):
        return self.K.softplus(x)

    def backward(self, g):
        return g * sigmoid(self.inputs[0])


class LogSigmoid(Function):
    """log(sigmoid(x)); its derivative is sigmoid(-x)."""

    def forward(self, x):
        return self.K.log_sigmoid(x)

    def backward(self, g):
        return g * sigmoid(-self.inputs[0])


def softplus(input: Tensor, beta: float = 1.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, stable for every x."""
    if beta == 1.0:
        return Softplus.apply(input)
    return Softplus.apply(input * beta) * (1.0 / beta)


def log_sigmoid(input: Tensor) -> Tensor:
    return LogSigmoid.apply(input)


logsigmoid = log_sigmoid  # torch.nn.functional's spelling


def bias_act(input: Tensor, bias: Tensor | None, kind: str, slope: float = 0.0) -> Tensor:
    """act(input + bias) in one pass; bias (C,) is added along axis 1 of (N, C) or (N, C, H, W).

    kind is one of relu, leaky_relu (slope = negative slope), tanh, sigmoid, none.
    With bias None it is the activation alone.
    """
    _check_kind(kind, slope, "bias_act")
    if bias is None:
        return Activation.apply(input, kind=kind, slope=float(slope))
    if input.ndim < 2 or bias.shape != (input.shape[1],):
        channels = input.shape[1] if input.ndim >= 2 else "no"
        raise ValueError(
            f"bias_act: input has {channels} channels, bias must have shape (C,) "
            f"(input {input.shape}, bias {bias.shape})"
        )
    return BiasAct.apply(input, bias, kind=kind, slope=float(slope))
