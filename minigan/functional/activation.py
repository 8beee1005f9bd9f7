"""Activation ops: relu, leaky_relu, tanh, sigmoid, softplus, log_sigmoid, maxout and the fused
bias + activation (`bias_act`) that linear and conv layers use as their epilogue; elu,
gelu, silu and prelu composed of those and of the primitive ops.

relu, leaky_relu, tanh and sigmoid are one Function parameterised by `kind`. Its backward
needs only the output y (relu: a 0/1 mask from the sign of y; tanh: 1 - y^2; sigmoid:
y (1 - y)), written in Tensor ops on `self.output` so that it can be differentiated again.
When no graph is being recorded it takes the kernel's one-pass `activation_grad` instead.
"""

from __future__ import annotations

import math

from ..autograd import Function, Tensor, is_grad_enabled, where
from ..kernels.reference.activation import ACTIVATION_KINDS

__all__ = [
    "bias_act",
    "elu",
    "gelu",
    "leaky_relu",
    "log_sigmoid",
    "logsigmoid",
    "maxout",
    "prelu",
    "relu",
    "sigmoid",
    "silu",
    "softplus",
    "tanh",
]


def _activation_input_grad(fn: Function, g: Tensor, y: Tensor, kind: str, slope: float):
    """dL/d(pre-activation) from dL/dy and the output y, shared by Activation and BiasAct."""
    if not is_grad_enabled():
        return Tensor._wrap(fn.K.activation_grad(g.array, y.array, kind, slope), fn.backend)
    if kind in ("relu", "leaky_relu"):
        # piecewise linear: the derivative is a constant mask (its own derivative is zero)
        mask = fn.xp.where(y.array > 0, 1.0, slope if kind == "leaky_relu" else 0.0)
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


# `inplace` is accepted for PyTorch's sake and ignored, as by nn.ReLU: the result is a new
# tensor (autograd keeps the input), and the input is left as it was.


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return Activation.apply(input, kind="relu", slope=0.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _check_kind("leaky_relu", negative_slope, "leaky_relu")
    return Activation.apply(input, kind="leaky_relu", slope=float(negative_slope))


def tanh(input: Tensor) -> Tensor:
    return Activation.apply(input, kind="tanh", slope=0.0)


def sigmoid(input: Tensor) -> Tensor:
    return Activation.apply(input, kind="sigmoid", slope=0.0)


class Softplus(Function):
    """log(1 + exp(x)), and x itself where x > threshold (PyTorch's switch: there the two
    differ by less than exp(-threshold)); its derivative is sigmoid(x), or 1 above the
    threshold. The switch costs a graph node only when some x is above it."""

    def forward(self, x, threshold=math.inf):
        y = self.K.softplus(x)
        above = x > threshold
        self.above = above if above.any() else None
        return y if self.above is None else self.xp.where(above, x, y)

    def backward(self, g):
        slope = sigmoid(self.inputs[0])
        if self.above is not None:
            slope = where(Tensor._wrap(self.above, self.backend), 1.0, slope)
        return g * slope


class LogSigmoid(Function):
    """log(sigmoid(x)); its derivative is sigmoid(-x)."""

    def forward(self, x):
        return self.K.log_sigmoid(x)

    def backward(self, g):
        return g * sigmoid(-self.inputs[0])


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, stable for every x; x itself where beta x > threshold,
    as in PyTorch (there the two differ by less than exp(-threshold) / beta)."""
    if beta == 1.0:
        return Softplus.apply(input, threshold=float(threshold))
    return Softplus.apply(input * beta, threshold=float(threshold)) * (1.0 / beta)


def log_sigmoid(input: Tensor) -> Tensor:
    return LogSigmoid.apply(input)


logsigmoid = log_sigmoid  # torch.nn.functional's spelling


class Erf(Function):
    """erf(x); its derivative is 2/sqrt(pi) exp(-x^2)."""

    def forward(self, x):
        return self.K.erf(x)

    def backward(self, g):
        x = self.inputs[0]
        return g * (2.0 / math.sqrt(math.pi)) * (-(x * x)).exp()


def erf(input: Tensor) -> Tensor:
    return Erf.apply(input)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2016). `inplace` is
    accepted for PyTorch compatibility and ignored (autograd keeps the input)."""
    # exp of min(x, 0): the branch not taken must not overflow for large x
    negative = (input.clamp(max=0.0).exp() - 1.0) * alpha
    return where(input > 0, input, negative)


GELU_APPROXIMATIONS = ("none", "tanh")


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel 2016); approximate="tanh"
    takes their tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate == "none":
        return input * (1.0 + erf(input * (1.0 / math.sqrt(2.0)))) * 0.5
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * (1.0 + tanh(inner)) * 0.5
    raise ValueError(f"gelu: approximate must be one of {GELU_APPROXIMATIONS}, "
                     f"got {approximate!r}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x) (SiLU, Elfwing et al. 2018; Swish with beta 1, Ramachandran et al.
    2017). `inplace` is accepted and ignored."""
    return input * sigmoid(input)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight min(0, x) (He et al. 2015), weight a learnable slope: one value
    for all channels, or one per channel (axis 1)."""
    if weight.numel() != 1:
        channels = input.shape[1] if input.ndim >= 2 else None
        if weight.ndim != 1 or weight.shape[0] != channels:
            raise ValueError(
                f"prelu: weight must have 1 element or one per channel (axis 1), got weight "
                f"{weight.shape} for input {input.shape}"
            )
        weight = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    elif weight.ndim > input.ndim:
        weight = weight.reshape(())
    return where(input > 0, input, input * weight)


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


# ----------------------------------------------------------------------------- maxout
#
# maxout picks one piece per group; its gradient puts g back at the chosen piece (a scatter),
# and the scatter's adjoint is the same pick again (a gather). The choice is a constant of
# the forward pass (piecewise linear: its derivative is zero almost everywhere), so the pair
# MaxoutGather / MaxoutScatter differentiate each other to any order.


class MaxoutGather(Function):
    """y[n, c] = x[n, c * pieces + index[n, c]] for a fixed index (N, C)."""

    def forward(self, x, index):
        self.index, self.pieces = index, x.shape[1] // index.shape[1]
        return self.K.maxout_gather(x, index)

    def backward(self, g):
        return MaxoutScatter.apply(g, index=self.index, pieces=self.pieces)


class MaxoutScatter(Function):
    """g (N, C) placed at the pieces a fixed index chose, zeros elsewhere: (N, C * pieces)."""

    def forward(self, g, index, pieces):
        self.index = index
        return self.K.maxout_scatter(g, index, pieces)

    def backward(self, gg):
        return MaxoutGather.apply(gg, index=self.index)


class Maxout(Function):
    """y[n, c] = max over k of x[n, c * pieces + k]; the winning piece gets the gradient."""

    def forward(self, x, pieces):
        y, self.index = self.K.maxout(x, pieces)
        self.pieces = pieces
        return y

    def backward(self, g):
        return MaxoutScatter.apply(g, index=self.index, pieces=self.pieces)


def maxout(input: Tensor, pieces: int) -> Tensor:
    """Maxout over groups of `pieces` consecutive features of a (N, C * pieces) input:
    (N, C), as torch's input.view(N, C, pieces).amax(-1) (Goodfellow et al. 2013)."""
    if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1:
        raise ValueError(f"maxout: pieces must be a positive int, got {pieces!r}")
    if input.ndim != 2 or input.shape[1] % pieces != 0:
        raise ValueError(f"maxout: input must be (N, C * pieces) with pieces={pieces}, got "
                         f"{input.shape}")
    return Maxout.apply(input, pieces=pieces)
