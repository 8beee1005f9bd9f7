"""Tensor and reverse-mode automatic differentiation, gradients of gradients included.

How it works, in four sentences.  Every differentiable op is a `Function`: `forward` takes
arrays and returns an array (usually by calling a kernel), `backward` takes the output's
gradient as a Tensor and returns the inputs' gradients, computed with Tensor ops.
`Function.apply` runs forward and, when grad mode is on and an input requires grad, records
itself on the output (`out._ctx`), keeping its input Tensors.  `backward()` / `grad()` walk
the recorded graph from the outputs in reverse topological order, calling each backward.
Because a backward is made of Tensor ops, running it with grad mode on (create_graph=True)
records a graph of the gradient itself, which can be differentiated again (WGAN-GP, R1).
"""

from __future__ import annotations

import functools
import weakref

import numpy as np

from . import backend as _backend

# ----------------------------------------------------------------------------- grad mode

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode, restoring it on exit."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self.previous = _grad_enabled
        _grad_enabled = self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """`with no_grad():` or `@no_grad()`: record no graph inside."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_GradMode):
    def __init__(self):
        super().__init__(True)


class set_grad_enabled(_GradMode):
    pass


# ----------------------------------------------------------------------------- Function


class Function:
    """One differentiable op. Subclasses write `forward(self, *arrays, **params) -> array`
    and `backward(self, grad) -> gradient Tensor (or None) per input`.

    Inside both, `self.xp` is the array module and `self.K` the kernel set of the inputs'
    device. Inside backward, `self.inputs` are the input Tensors, `self.output` the output
    Tensor, and `self.needs_input_grad[i]` says whether input i's gradient is wanted.
    """

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        ctx = cls()
        first = inputs[0]
        ctx.backend = first._backend
        for other in inputs[1:]:
            if other._backend is not ctx.backend:
                raise RuntimeError(
                    f"{cls.__name__}: tensors on different devices "
                    f"({first.device} and {other.device}); move one with .to(device)"
                )
        out = Tensor._wrap(ctx.forward(*[t.array for t in inputs], **params), ctx.backend)
        if _grad_enabled and any(t.requires_grad for t in inputs):
            out.requires_grad = True
            out._ctx = ctx
            ctx.inputs = inputs
            ctx.needs_input_grad = tuple(t.requires_grad for t in inputs)
            ctx._output_ref = weakref.ref(out)
            ctx.freed = False
        return out

    @property
    def xp(self):
        return self.backend.xp

    @property
    def K(self):
        return self.backend.K

    @property
    def output(self) -> Tensor:
        return self._output_ref()

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad: Tensor):
        raise NotImplementedError


# ----------------------------------------------------------------------------- Tensor


class Tensor:
    """An n-dimensional array on a device, with an optional gradient."""

    __slots__ = ("array", "requires_grad", "grad", "_ctx", "_backend", "__weakref__")
    __array_priority__ = 1000  # so numpy_array * tensor calls Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False, device=None, dtype=None):
        self._backend = _backend.get(device)
        if isinstance(data, Tensor):
            data = data.array
        is_array = isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__")
        array = self._backend.asarray(data)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        elif array.dtype.kind == "f" and not (is_array and array.dtype in (np.float32, np.float64)):
            array = array.astype(np.float32)  # Python numbers and lists: float32 by default
        self.array = array
        self.grad = None
        self._ctx = None
        if requires_grad and self.array.dtype.kind != "f":
            raise RuntimeError(
                f"only floating-point tensors can require grad (got dtype {self.array.dtype})"
            )
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array, backend) -> Tensor:
        """A Tensor over an existing backend array, no copy, no checks."""
        t = object.__new__(cls)
        t.array = array
        t.grad = None
        t._ctx = None
        t._backend = backend
        t.requires_grad = False
        return t

    # ---- description
    @property
    def data(self):
        """The raw backend array, same as `.array` (this becomes a detached Tensor sharing
        storage, as in PyTorch; new code writes `.array` for the raw array)."""
        return self.array

    @data.setter
    def data(self, array) -> None:
        self.array = array

    @property
    def shape(self) -> tuple:
        return tuple(self.array.shape)

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def device(self) -> str:
        return self._backend.name

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.array.size)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        device = "" if self.device == "numpy" else f", device={self.device!r}"
        return f"tensor({np.array2string(self.numpy(), precision=4)}{device}{grad})"

    # ---- conversion
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (a copy from the GPU; shared memory on the CPU)."""
        data = self.array
        return data.get() if hasattr(data, "get") and not isinstance(data, np.ndarray) else data

    def __array__(self, dtype=None, copy=None):
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def item(self) -> float:
        return self.numpy().item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        return Tensor._wrap(self.array, self._backend)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require grad (got {self.dtype})")
        self.requires_grad = requires_grad
        return self

    def to(self, device=None, dtype=None) -> Tensor:
        """A copy on another device and/or with another dtype (self when nothing changes)."""
        target = _backend.get(device) if device is not None else self._backend
        if target is self._backend and (dtype is None or np.dtype(dtype) == self.dtype):
            return self
        array = target.asarray(self.array if target is self._backend else self.numpy())
        if dtype is not None:
            array = array.astype(dtype)
        out = Tensor._wrap(array, target)
        out.requires_grad = self.requires_grad and not self._ctx
        return out

    def float(self) -> Tensor:
        return self.to(dtype=np.float32)

    def double(self) -> Tensor:
        return self.to(dtype=np.float64)

    def astype(self, dtype) -> Tensor:
        return self.to(dtype=dtype)

    # ---- autograd entry points
    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad (PyTorch's meaning)."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph "
                "(were its inputs created with requires_grad=True, outside no_grad?)"
            )
        if grad is None:
            if self.numel() != 1:
                raise RuntimeError(
                    "backward: grad can be implicit only for a scalar output, "
                    f"got shape {self.shape}"
                )
            grad = Tensor._wrap(self._backend.xp.ones_like(self.array), self._backend)
        run_backward([self], [as_tensor(grad, self)], None, retain_graph, create_graph)

    def zero_(self) -> Tensor:
        self.array[...] = 0
        return self

    # ---- arithmetic (each a Function below)
    def __add__(self, other):
        return Add.apply(self, as_tensor(other, self))

    def __radd__(self, other):
        return Add.apply(as_tensor(other, self), self)

    def __sub__(self, other):
        return Sub.apply(self, as_tensor(other, self))

    def __rsub__(self, other):
        return Sub.apply(as_tensor(other, self), self)

    def __mul__(self, other):
        return Mul.apply(self, as_tensor(other, self))

    def __rmul__(self, other):
        return Mul.apply(as_tensor(other, self), self)

    def __truediv__(self, other):
        return Div.apply(self, as_tensor(other, self))

    def __rtruediv__(self, other):
        return Div.apply(as_tensor(other, self), self)

    def __neg__(self):
        return Neg.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return exp(exponent * log(self))
        return Pow.apply(self, exponent=float(exponent))

    def __rpow__(self, base):
        return exp(self * float(np.log(base)))

    def __matmul__(self, other):
        return MatMul.apply(self, as_tensor(other, self))

    def __rmatmul__(self, other):
        return MatMul.apply(as_tensor(other, self), self)

    def __abs__(self):
        return Abs.apply(self)

    # comparisons: no gradient, boolean tensors
    def _compare(self, other, op):
        other = other.array if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self.array, other), self._backend)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def eq(self, other):
        return self._compare(other, lambda a, b: a == b)

    def ne(self, other):
        return self._compare(other, lambda a, b: a != b)

    __hash__ = object.__hash__

    # ---- elementwise
    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def sqrt(self):
        return Sqrt.apply(self)

    def abs(self):
        return Abs.apply(self)

    def clip(self, min=None, max=None):
        return Clip.apply(self, low=min, high=max)

    clamp = clip

    # ---- reductions
    def sum(self, axis=None, keepdims: bool = False):
        return Sum.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        axes = _axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return Sum.apply(self, axis=axes, keepdims=keepdims) * (1.0 / max(count, 1))

    def var(self, axis=None, keepdims: bool = False, unbiased: bool = False):
        centered = self - self.mean(axis, keepdims=True)
        axes = _axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes]))
        return (centered * centered).sum(axis, keepdims) * (1.0 / max(count - unbiased, 1))

    def max(self, axis=None, keepdims: bool = False):
        return Max.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False):
        return -Max.apply(-self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def argmax(self, axis=None):
        return Tensor._wrap(self.array.argmax(axis=axis), self._backend)

    # ---- shape
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        shape = self.shape
        end = end_dim % max(len(shape), 1)
        middle = int(np.prod(shape[start_dim : end + 1]))
        return self.reshape(shape[:start_dim] + (middle,) + shape[end + 1 :])

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return Permute.apply(self, axes=tuple(a % self.ndim for a in axes))

    def transpose(self, dim0: int = -2, dim1: int = -1):
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim: int):
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | None = None):
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dim = dim % self.ndim
        if self.shape[dim] != 1:
            return self
        return self.reshape(self.shape[:dim] + self.shape[dim + 1 :])

    def expand(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return broadcast_to(self, tuple(shape))

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.array
        elif isinstance(index, tuple):
            index = tuple(i.array if isinstance(i, Tensor) else i for i in index)
        return GetItem.apply(self, index=index)


def _axes(axis, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


def as_tensor(value, like: Tensor) -> Tensor:
    """`value` as a Tensor on like's device; numbers take like's dtype."""
    if isinstance(value, Tensor):
        return value
    dtype = like.dtype if isinstance(value, (int, float)) else None
    return Tensor._wrap(like._backend.asarray(value, dtype=dtype), like._backend)


# ----------------------------------------------------------------------------- the engine


def _topological_order(roots: list[Tensor]) -> list[Tensor]:
    """Tensors of the graph, every tensor before the inputs of the op that made it."""
    order, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            t, expanded = stack.pop()
            if expanded:
                order.append(t)
                continue
            if id(t) in seen:
                continue
            seen.add(id(t))
            stack.append((t, True))
            ctx = t._ctx
            if ctx is not None:
                if ctx.freed:
                    raise RuntimeError(
                        f"backward through the graph a second time: the {type(ctx).__name__} "
                        "node's saved tensors were freed by the first backward. Pass "
                        "retain_graph=True to the first backward (or grad) call if you need "
                        "to differentiate this graph again."
                    )
                for parent in ctx.inputs:
                    if parent.requires_grad and id(parent) not in seen:
                        stack.append((parent, False))
    order.reverse()
    return order


def run_backward(outputs, grad_outputs, inputs, retain_graph, create_graph):
    """The one engine behind Tensor.backward and grad: returns the inputs' gradients when
    `inputs` is given, else accumulates into the leaves' .grad."""
    if retain_graph is None:
        retain_graph = create_graph
    order = _topological_order(outputs)
    wanted = None
    if inputs is not None:
        # only the part of the graph that leads to an input needs its backward run
        input_ids = {id(t) for t in inputs}
        wanted = set(input_ids)
        for t in reversed(order):
            if t._ctx is not None and any(id(p) in wanted for p in t._ctx.inputs):
                wanted.add(id(t))
    grads: dict[int, Tensor] = {}
    for out, g in zip(outputs, grad_outputs):
        if g.shape != out.shape:
            raise RuntimeError(f"grad_outputs shape {g.shape} does not match output {out.shape}")
        grads[id(out)] = grads[id(out)] + g if id(out) in grads else g
    found: dict[int, Tensor] = {}
    with set_grad_enabled(create_graph):
        for t in order:
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if wanted is not None:
                if id(t) in input_ids:
                    found[id(t)] = g
                if id(t) not in wanted or t._ctx is None:
                    continue
            elif t._ctx is None:
                g = g if create_graph else g.detach()
                t.grad = g if t.grad is None else t.grad + g
                continue
            ctx = t._ctx
            needs = ctx.needs_input_grad
            if wanted is not None:
                # only for this call: a retained graph may later be walked by backward()
                ctx.needs_input_grad = tuple(p.requires_grad and id(p) in wanted
                                             for p in ctx.inputs)
            try:
                input_grads = ctx.backward(g)
            finally:
                needs, ctx.needs_input_grad = ctx.needs_input_grad, needs
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, pg, needed in zip(ctx.inputs, input_grads, needs):
                if pg is None or not needed:
                    continue
                if pg.shape != parent.shape:
                    raise RuntimeError(
                        f"{type(ctx).__name__}.backward returned a gradient of shape "
                        f"{pg.shape} for an input of shape {parent.shape}"
                    )
                key = id(parent)
                grads[key] = grads[key] + pg if key in grads else pg
            if not retain_graph:
                ctx.freed = True
                ctx.inputs = ()
    if inputs is not None:
        return found


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """d(outputs)/d(inputs), with PyTorch's meaning; .grad fields are left alone.

    With create_graph=True the returned gradients carry a graph of their own, so a
    penalty written with them (WGAN-GP, R1) can be differentiated again.
    """
    single = isinstance(inputs, Tensor)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if single else list(inputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"grad: output {i} (shape {out.shape}) does not require grad and has no graph"
            )
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    filled = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"grad: grad_outputs can be implicit only for scalar outputs, got {out.shape}"
                )
            g = Tensor._wrap(out._backend.xp.ones_like(out.array), out._backend)
        filled.append(as_tensor(g, out))
    found = run_backward(outputs, filled, inputs, retain_graph, create_graph)
    result = []
    for i, t in enumerate(inputs):
        g = found.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {t.shape}) was not used to compute the outputs "
                    "(pass allow_unused=True to get None for it)"
                )
        elif not create_graph:
            g = g.detach()
        result.append(g)
    return result[0] if single else tuple(result)


# ----------------------------------------------------------------------------- primitive ops
# Each backward is written in Tensor ops, so it is differentiable in turn.


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum a broadcast gradient back down to an operand's shape."""
    return g if g.shape == tuple(shape) else SumTo.apply(g, shape=tuple(shape))


def broadcast_to(t: Tensor, shape: tuple) -> Tensor:
    return t if t.shape == tuple(shape) else BroadcastTo.apply(t, shape=tuple(shape))


class SumTo(Function):
    def forward(self, x, shape):
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
        )
        return x.sum(axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)

    def backward(self, g):
        return broadcast_to(g, self.inputs[0].shape)


class BroadcastTo(Function):
    def forward(self, x, shape):
        return self.xp.broadcast_to(x, shape)

    def backward(self, g):
        return sum_to(g, self.inputs[0].shape)


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        a, b = self.inputs
        return sum_to(g, a.shape), sum_to(g, b.shape)


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        a, b = self.inputs
        return sum_to(g, a.shape), sum_to(-g, b.shape)


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-g * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Pow(Function):
    """x ** p for a constant p."""

    def forward(self, x, exponent):
        self.exponent = exponent
        return x**exponent

    def backward(self, g):
        (x,) = self.inputs
        p = self.exponent
        if p == 0:
            return g * 0.0
        if p == 1:
            return g
        return g * p * (x ** (p - 1))


class Exp(Function):
    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, g):
        return g * self.output


class Log(Function):
    def forward(self, x):
        return self.xp.log(x)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    def forward(self, x):
        return self.xp.sqrt(x)

    def backward(self, g):
        return g / (2.0 * self.output)


class Abs(Function):
    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, g):
        sign = self.xp.sign(self.inputs[0].array)
        return g * Tensor._wrap(sign, self.backend)


class Clip(Function):
    """clip(x, low, high); the gradient passes where x is inside [low, high]."""

    def forward(self, x, low, high):
        self.low, self.high = low, high
        return self.xp.clip(x, low, high)

    def backward(self, g):
        x = self.inputs[0].array
        inside = self.xp.ones(x.shape, dtype=x.dtype)
        if self.low is not None:
            inside *= x >= self.low
        if self.high is not None:
            inside *= x <= self.high
        return g * Tensor._wrap(inside, self.backend)


class MatMul(Function):
    def forward(self, a, b):
        return self.K.matmul(a, b) if a.ndim == b.ndim == 2 else a @ b

    def backward(self, g):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g @ b.transpose(-1, -2) if b.ndim > 1 else _outer_last(g, b)
            ga = sum_to(ga, a.shape)
        if self.needs_input_grad[1]:
            gb = a.transpose(-1, -2) @ g if a.ndim > 1 else _outer_first(a, g)
            gb = sum_to(gb, b.shape)
        return ga, gb


def _outer_last(g, b):
    return g.unsqueeze(-1) * b


def _outer_first(a, g):
    return a.unsqueeze(-1) * g.unsqueeze(-2)


class Sum(Function):
    def forward(self, x, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape = self.inputs[0].shape
        if not self.keepdims:
            kept = tuple(1 if i in self.axis else s for i, s in enumerate(shape))
            g = g.reshape(kept)
        return broadcast_to(g, shape)


class Max(Function):
    """Max over axes; ties share the gradient equally."""

    def forward(self, x, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims
        return x.max(axis=axis, keepdims=keepdims)

    def backward(self, g):
        x = self.inputs[0].array
        top = x.max(axis=self.axis, keepdims=True)
        mask = (x == top).astype(x.dtype)
        mask /= mask.sum(axis=self.axis, keepdims=True)
        if not self.keepdims:
            g = g.reshape(top.shape)
        return g * Tensor._wrap(mask, self.backend)


class Reshape(Function):
    def forward(self, x, shape):
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.inputs[0].shape)


class Permute(Function):
    def forward(self, x, axes):
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):
        return g.permute(tuple(np.argsort(self.axes)))


class GetItem(Function):
    def forward(self, x, index):
        self.index = index
        return x[index]

    def backward(self, g):
        return IndexAdd.apply(g, shape=self.inputs[0].shape, index=self.index)


class IndexAdd(Function):
    """zeros(shape) with g added at index: the adjoint of indexing."""

    def forward(self, g, shape, index):
        self.index = index
        return self.K.index_add(g, shape, index)

    def backward(self, gg):
        return gg[self.index]


class Concat(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return self.xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        grads, start = [], 0
        for size in self.sizes:
            index = [slice(None)] * g.ndim
            index[self.axis] = slice(start, start + size)
            grads.append(g[tuple(index)])
            start += size
        return tuple(grads)


class Where(Function):
    """where(condition, a, b); the condition is a constant array."""

    def forward(self, a, b, condition):
        self.condition = condition
        return self.xp.where(condition, a, b)

    def backward(self, g):
        a, b = self.inputs
        zero = g * 0.0
        cond = Tensor._wrap(self.xp.asarray(self.condition), self.backend)
        ga = sum_to(where(cond, g, zero), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(where(cond, zero, g), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


# ----------------------------------------------------------------------------- functions


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    return Concat.apply(*tensors, axis=dim % tensors[0].ndim)


concat = cat


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    dim = dim % (tensors[0].ndim + 1)
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def where(condition, a, b) -> Tensor:
    like = a if isinstance(a, Tensor) else b
    a, b = as_tensor(a, like), as_tensor(b, like)
    condition = condition.array if isinstance(condition, Tensor) else condition
    return Where.apply(a, b, condition=condition)
