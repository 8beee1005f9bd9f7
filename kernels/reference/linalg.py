"""Matrix products: NumPy's (or CuPy's) own. The cpu kernels run the same product on their
own thread pool (kernels/cpu/blas.py)."""

from __future__ import annotations

from .activation import activation, activation_grad, activation_grad_bias, bias_activation

__all__ = ["linear_act", "linear_grads", "matmul"]


def matmul(a, b):
    """a @ b for 2-D arrays a (m, k) and b (k, n)."""
    return a @ b


def linear_act(x, w, bias, kind: str, slope: float = 0.0):
    """act(x @ w.T + bias) for x (N, in), w (out, in), bias (out,) or None: a linear
    layer and its activation (kind as in activation; "none" for the plain layer)."""
    return compose_linear_act(x, w, bias, kind, slope, matmul, bias_activation, activation)


def linear_grads(g, y, x, w, kind: str, slope: float, need_input: bool, need_weight: bool,
                 need_bias: bool = True):
    """The gradients of a linear layer y = act(x @ w.T + b), x (N, in), w (out, in), from
    g = dL/dy (N, out) and its output y: (gx, gw, gb), each None unless its need_ flag.
    With gz = dL/d(pre-activation) = activation_grad(g, y): gx = gz @ w, gw = gz.T @ x,
    gb = the column sums of gz (kind "none": gz = g)."""
    return compose_linear_grads(g, y, x, w, kind, slope, need_input, need_weight, need_bias,
                                matmul, activation_grad, activation_grad_bias)


# The two compositions, written once: each kernel set passes its own kernels (the cpu set
# for the layers its fused loops leave out, the cuda set always).


def compose_linear_act(x, w, bias, kind, slope, matmul, bias_activation, activation):
    z = matmul(x, w.T)
    if bias is not None:
        return bias_activation(z, bias, kind, slope)
    return z if kind == "none" else activation(z, kind, slope)


def compose_linear_grads(g, y, x, w, kind, slope, need_input, need_weight, need_bias, matmul,
                         activation_grad, activation_grad_bias):
    if kind == "none":  # gz is g: no pass over it but the sums, and those only if asked
        gz, gb = g, (g.sum(axis=0) if need_bias else None)
    elif need_bias:
        gz, gb = activation_grad_bias(g, y, kind, slope)
    else:
        gz, gb = activation_grad(g, y, kind, slope), None
    return (matmul(gz, w) if need_input else None, matmul(gz.T, x) if need_weight else None,
            gb)
