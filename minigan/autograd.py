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
import math
import os
import traceback
import weakref
from collections import namedtuple

import numpy as np

from . import backend as _backend
from . import random as _random

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
            with _GradMode(self.enabled):
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
    """Grad mode on or off at once, as torch's: `set_grad_enabled(False)` alone switches
    recording off until switched on again; `with set_grad_enabled(mode):` restores the
    previous mode on exit; as a decorator it sets the mode only inside the function."""

    def __init__(self, mode: bool):
        global _grad_enabled
        super().__init__(bool(mode))
        self.previous = _grad_enabled
        _grad_enabled = self.enabled

    def __enter__(self):
        global _grad_enabled
        _grad_enabled = self.enabled

    def __call__(self, function):
        global _grad_enabled
        _grad_enabled = self.previous  # decorating changes nothing outside the function
        return super().__call__(function)


# ----------------------------------------------------------------------------- anomaly mode

_anomaly = [False, True]  # [detecting, checking backward results for NaN]


def is_anomaly_enabled() -> bool:
    return _anomaly[0]


class set_detect_anomaly:
    """Anomaly mode, as torch.autograd.set_detect_anomaly: while on, every op records where
    in the program it was called, and a backward that returns NaN stops with an error
    naming the op and showing that call (check_nan=False: only the recording). It slows
    every op; for hunting a NaN, not for training. Set at once (a function call), and as a
    context manager restored on exit."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self.previous = list(_anomaly)
        _anomaly[:] = [bool(mode), bool(check_nan)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _anomaly[:] = self.previous


class detect_anomaly(set_detect_anomaly):
    """`with detect_anomaly():` anomaly mode on inside (torch.autograd.detect_anomaly)."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        self.previous = None

    def __enter__(self):
        self.previous = list(_anomaly)
        _anomaly[:] = [True, bool(self.check_nan)]
        return self


def _check_backward_for_nan(ctx, grads: tuple) -> None:
    """In anomaly mode: refuse a backward result holding NaN, naming the op and where it was
    called in the forward pass."""
    for i, g in enumerate(grads):
        if g is None or g.dtype.kind not in "fc" or not bool(g._backend.xp.isnan(g.array).any()):
            continue
        inside = os.path.dirname(os.path.abspath(__file__)) + os.sep  # minigan's own frames
        stack = [frame for frame in getattr(ctx, "_forward_stack", None) or []
                 if not os.path.abspath(frame.filename).startswith(inside)]
        where = ("\nThe forward call that made this op (innermost last):\n"
                 + "".join(traceback.format_list(stack[-6:]))) if stack else ""
        raise RuntimeError(f"Function '{type(ctx).__name__}' returned nan values in its "
                           f"{i}th output (the gradient of its input {i}).{where}")


class inference_mode(_GradMode):
    """`with inference_mode():` or `@inference_mode()`: as no_grad (PyTorch also marks the
    results as inference tensors, which minigan has no need for)."""

    def __init__(self, mode: bool = True):
        super().__init__(not mode)


# ----------------------------------------------------------------------------- Function


class Function:
    """One differentiable op. Subclasses write `forward(self, *arrays, **params) -> array`
    and `backward(self, grad) -> gradient Tensor (or None) per input`.

    Inside both, `self.xp` is the array module and `self.K` the kernel set of the inputs'
    device. Inside backward, `self.inputs` are the input Tensors, `self.output` the output
    Tensor, and `self.needs_input_grad[i]` says whether input i's gradient is wanted.
    A view op (its output may share the input's storage) sets `is_view = True`.
    """

    is_view = False

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        ctx = cls()
        first = inputs[0]
        backend = ctx.backend = first._backend
        for other in inputs[1:]:
            if other._backend is not backend:
                raise RuntimeError(
                    f"{cls.__name__}: tensors on different devices "
                    f"({first.device} and {other.device}); move one with .to(device)"
                )
        out = Tensor._wrap(ctx.forward(*[t.array for t in inputs], **params), backend)
        if cls.is_view and backend.xp.may_share_memory(out.array, first.array):
            # a view shares its base's storage, so it shares the count of in-place changes
            out._base = first if first._base is None else first._base
            out._version = first._version
        if not _grad_enabled:
            return out
        needs = tuple(t.requires_grad for t in inputs)
        if True in needs:
            out.requires_grad = True
            out._ctx = ctx
            ctx.inputs = inputs
            ctx.needs_input_grad = needs
            ctx._input_versions = tuple(t._version.value for t in inputs)
            ctx._output_ref = weakref.ref(out)
            ctx._output_version = out._version.value
            ctx.freed = False
            if _anomaly[0]:
                ctx._forward_stack = traceback.extract_stack()[:-1]
        return out

    @property
    def xp(self):
        return self.backend.xp

    @property
    def K(self):
        return self.backend.K

    @property
    def output(self) -> Tensor:
        out = self._output_ref()
        if out is not None and out._version.value != self._output_version:
            raise RuntimeError(_modified_message(self, "its output", out, self._output_version))
        return out

    def check_versions(self) -> None:
        """Raise if an input was changed in place after this op recorded it."""
        for i, (t, version) in enumerate(zip(self.inputs, self._input_versions)):
            if t._version.value != version:
                raise RuntimeError(_modified_message(self, f"input {i}", t, version))

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad: Tensor):
        raise NotImplementedError


def _modified_message(ctx: Function, which: str, t: Tensor, version: int) -> str:
    return (
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: the tensor of shape {t.shape} ({which} of "
        f"{type(ctx).__name__}) is at version {t._version.value}; expected version "
        f"{version}. Compute it out of place (y = y * 2 instead of y *= 2), or use a "
        ".clone() of it in the graph"
    )


# ----------------------------------------------------------------------------- Tensor


class _Version:
    """How many times a storage was changed in place; shared by a tensor, its .data,
    its detach() and its views, so a change through any of them is seen by all."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0):
        self.value = value



class Tensor:
    """An n-dimensional array on a device, with an optional gradient.

    `Tensor(data)` converts data to the default dtype float32, as torch.Tensor does
    (`minigan.tensor(data)` keeps an array's dtype); `Tensor(2, 3)` is the legacy shape
    constructor (zeros). The raw backend array is `.array`.
    """

    __slots__ = ("array", "requires_grad", "grad", "_ctx", "_backend", "_version", "_base",
                 "__weakref__")
    __array_priority__ = 1000  # so numpy_array * tensor calls Tensor.__rmul__

    def __init__(self, *data, requires_grad: bool = False, device=None, dtype=None):
        self._backend = _backend.get(device)
        dtype = np.float32 if dtype is None else dtype
        if not data:
            array = self._backend.xp.zeros((0,), dtype=dtype)  # Tensor(): empty, as torch's
        elif all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in data):
            array = self._backend.xp.zeros(tuple(int(d) for d in data), dtype=dtype)
        elif len(data) == 1:
            value = data[0].array if isinstance(data[0], Tensor) else data[0]
            array = self._backend.asarray(value).astype(dtype, copy=False)
        else:
            raise TypeError(f"Tensor: expected data or whole-number sizes, got {data!r}")
        self.array = array
        self.grad = None
        self._ctx = None
        self._version = _Version()
        self._base = None
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
        t._version = _Version()
        t._base = None
        return t

    # ---- description
    @property
    def data(self) -> Tensor:
        """A Tensor over the same storage and version counter, without a graph and not
        requiring grad, as in PyTorch: `p.data.clamp_(-c, c)` changes p's values
        unrecorded. (The raw backend array is `.array`.)"""
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__} (the raw "
                            "backend array is .array)")
        self.array, self._backend = value.array, value._backend

    @property
    def shape(self) -> tuple:
        return self.array.shape  # a tuple already, in NumPy and CuPy

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    @property
    def device(self) -> str:
        return self._backend.name

    @property
    def is_cuda(self) -> bool:
        return self._backend.name == "cuda"

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.array.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        """As torch prints a tensor: commas between values, the device (but the
        reference's), a dtype other than float32 / int64 / bool, the op that made it or
        requires_grad for a leaf."""
        array = self.numpy()
        whole = array.dtype.kind != "f" or not array.size or bool(
            np.all(np.mod(array[np.isfinite(array)], 1) == 0))
        values = np.array2string(array, precision=4, separator=", ", prefix="tensor(",
                                 floatmode="maxprec" if whole else "fixed")
        device = "" if self.device == "numpy" else f", device={str(self.device)!r}"
        dtype = "" if self.dtype.name in ("float32", "int64", "bool") else \
            f", dtype=minigan.{self.dtype.name}"
        if self._ctx is not None and self.requires_grad:
            grad = f", grad_fn=<{type(self._ctx).__name__}>"
        else:
            grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({values}{device}{dtype}{grad})"

    def __format__(self, spec: str) -> str:
        if self.numel() == 1:
            return format(self.item(), spec)
        return format(str(self), spec)

    # ---- conversion
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (a copy from the GPU; shared memory on the CPU)."""
        data = self.array
        return data.get() if hasattr(data, "get") and not isinstance(data, np.ndarray) else data

    def __array__(self, dtype=None, copy=None):
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(
                f"item: a tensor with {self.numel()} elements cannot be converted to a "
                "Python number (expected one element)"
            )
        return self.numpy().item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.numel()} elements is ambiguous "
                "(use .any() or .all())"
            )
        return bool(self.item())

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same storage without a graph (it shares the version counter)."""
        out = Tensor._wrap(self.array, self._backend)
        out._version = self._version
        return out

    def clone(self) -> Tensor:
        """A copy with its own storage; differentiable (the gradient passes unchanged)."""
        return Clone.apply(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require grad (got {self.dtype})")
        self.requires_grad = requires_grad
        return self

    def to(self, device=None, dtype=None) -> Tensor:
        """A copy on another device and/or with another dtype (self when nothing changes).
        As in PyTorch, a dtype may come first: `t.to(minigan.float64)`."""
        if device is not None and _is_dtype(device):
            device, dtype = None, device
        target = _backend.get(device) if device is not None else self._backend
        if target is self._backend and (dtype is None or np.dtype(dtype) == self.dtype):
            return self
        out = Convert.apply(self, target=target, dtype=dtype)
        out._backend = target  # apply wraps with the input's device; the copy lives here
        return out

    def cpu(self) -> Tensor:
        """This tensor on the host: itself when it already is (devices numpy and cpu)."""
        return self if self.device != "cuda" else self.to(_backend.host_device())

    def cuda(self) -> Tensor:
        """This tensor on the GPU (a clear error when there is no usable one)."""
        return self.to("cuda")

    def float(self) -> Tensor:
        return self.to(dtype=np.float32)

    def double(self) -> Tensor:
        return self.to(dtype=np.float64)

    def long(self) -> Tensor:
        return self.to(dtype=np.int64)

    def int(self) -> Tensor:
        return self.to(dtype=np.int32)

    def bool(self) -> Tensor:
        return self.to(dtype=np.bool_)

    def astype(self, dtype) -> Tensor:
        return self.to(dtype=dtype)

    def type(self, dtype=None):
        """With no argument, the type's name ("minigan.FloatTensor"); with a tensor type
        (minigan.FloatTensor, ...), a dtype or a type name, this tensor converted to it."""
        if dtype is None:
            return "minigan." + _TYPE_NAMES.get(np.dtype(self.dtype), f"Tensor[{self.dtype}]")
        if isinstance(dtype, str) and dtype.split(".")[-1] in _TYPE_NAMES.values():
            name = dtype.split(".")[-1]
            dtype = next(d for d, n in _TYPE_NAMES.items() if n == name)
        # minigan.cuda.FloatTensor also names a device (the GPU), as torch.cuda's types do
        return self.to(getattr(dtype, "device", None), dtype=getattr(dtype, "dtype", dtype))

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

    # ---- in place (PyTorch's rules; docs/internals.md, "In-place ops and version counters")
    def _inplace(self, op: str, compute) -> Tensor:
        """self <- compute(self), written into self's storage, so `.data`, views and an
        optimizer's flat buffer all see the change; compute maps a Tensor to new values.

        Outside no_grad a leaf that requires grad may not change (its gradient would
        describe values it no longer holds). When a graph is recorded (grad mode on, and
        self or an operand requires grad), the op joins the graph: the new node takes a
        copy of the old values as its input and self becomes the node's output. Each
        change bumps the version counter, so a backward that needs the overwritten values
        stops with a clear error instead of returning a wrong gradient.
        """
        if _grad_enabled and self.requires_grad and self._ctx is None:
            raise RuntimeError(
                f"{op}: a leaf tensor that requires grad cannot be changed in place outside "
                "no_grad (update it under `with minigan.no_grad():`, or through .data)"
            )
        old = self.detach()
        old.requires_grad, old._ctx = self.requires_grad, self._ctx
        result = compute(old if _grad_enabled else self)
        if not (_grad_enabled and result.requires_grad):
            self._write(op, result)
            return self
        if self._base is not None:
            raise RuntimeError(
                f"{op}: this tensor is a view of another tensor, and changing a view in place "
                "while a graph is recorded is not supported; compute it out of place "
                "(y = y + x instead of y += x)"
            )
        # the new node must keep the old values: it gets a private copy of them
        old.array, old._version = self.array.copy(), _Version(self._version.value)
        if self._ctx is not None:
            self._ctx._output_ref = weakref.ref(old)
        self._write(op, result)
        ctx = result._ctx
        self.requires_grad, self._ctx = True, ctx
        ctx._output_ref = weakref.ref(self)
        ctx._output_version = self._version.value
        return self

    def _write(self, op: str, values: Tensor) -> None:
        """Copy values (broadcast to self's shape, cast to its dtype) into self's storage."""
        if values._backend is not self._backend:
            raise RuntimeError(
                f"{op}: tensors on different devices ({self.device} and {values.device})"
            )
        if np.broadcast_shapes(values.shape, self.shape) != self.shape:
            raise RuntimeError(
                f"{op}: a result of shape {values.shape} does not fit in place into a tensor "
                f"of shape {self.shape}"
            )
        if not np.can_cast(values.dtype, self.dtype, "same_kind"):
            raise RuntimeError(
                f"{op}: a result of dtype {values.dtype} cannot be stored in place in a "
                f"tensor of dtype {self.dtype}"
            )
        if values.array is not self.array:
            self.array[...] = values.array
        self._version.value += 1

    def add_(self, other, *, alpha=1) -> Tensor:
        return self._inplace("add_", lambda t: t + (other if alpha == 1 else alpha * other))

    def sub_(self, other, *, alpha=1) -> Tensor:
        return self._inplace("sub_", lambda t: t - (other if alpha == 1 else alpha * other))

    def mul_(self, other) -> Tensor:
        return self._inplace("mul_", lambda t: t * other)

    def div_(self, other) -> Tensor:
        return self._inplace("div_", lambda t: t / other)

    def clamp_(self, min=None, max=None) -> Tensor:
        return self._inplace("clamp_", lambda t: t.clamp(min, max))

    clip_ = clamp_

    def lerp_(self, end, weight) -> Tensor:
        return self._inplace("lerp_", lambda t: t + weight * (end - t))

    def copy_(self, src) -> Tensor:
        """Copy src's values (broadcast, cast, moved to this device) into this tensor;
        the gradient flows to src."""
        src = src if isinstance(src, Tensor) else as_tensor(src, self)
        if src._backend is not self._backend:
            src = src.to(self._backend)
        return self._inplace("copy_", lambda t: where(True, src, t))

    def fill_(self, value) -> Tensor:
        return self.copy_(value)

    def zero_(self) -> Tensor:
        return self.copy_(0)

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
        """Fill with samples of N(mean, std^2) from the generator (the default one if None)."""
        values = _random.resolve(generator).normal(self.shape, self.dtype, mean, std)
        return self.copy_(Tensor._wrap(self._backend.asarray(values), self._backend))

    def uniform_(self, *bounds: float, generator=None, **named: float) -> Tensor:
        """Fill with samples of U[from, to) (PyTorch's argument names `from` and `to`,
        default 0 and 1) from the generator (the default one if None)."""
        low = bounds[0] if len(bounds) > 0 else named.pop("from", 0.0)
        high = bounds[1] if len(bounds) > 1 else named.pop("to", 1.0)
        if named:
            raise TypeError(f"uniform_: unexpected arguments {sorted(named)}")
        values = _random.resolve(generator).uniform(self.shape, self.dtype, low, high)
        return self.copy_(Tensor._wrap(self._backend.asarray(values), self._backend))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __setitem__(self, index, value) -> None:
        index = _raw_index(index)
        recording = _grad_enabled and (
            self.requires_grad or (isinstance(value, Tensor) and value.requires_grad))
        if not recording:  # the common case: write the selected elements only
            value = value.array if isinstance(value, Tensor) else value
            self.array[index] = value
            self._version.value += 1
            return
        self._inplace("setitem", lambda t: SetItem.apply(t, as_tensor(value, t), index=index))

    # ---- arithmetic (each a Function below)
    def __add__(self, other):
        return Add.apply(*_operands(self, other))

    def __radd__(self, other):
        a, b = _operands(self, other)
        return Add.apply(b, a)

    def __sub__(self, other):
        return Sub.apply(*_operands(self, other))

    def __rsub__(self, other):
        a, b = _operands(self, other)
        return Sub.apply(b, a)

    def __mul__(self, other):
        return Mul.apply(*_operands(self, other))

    def __rmul__(self, other):
        a, b = _operands(self, other)
        return Mul.apply(b, a)

    def __truediv__(self, other):
        return Div.apply(*_operands(self, other, floating=True))

    def __rtruediv__(self, other):
        a, b = _operands(self, other, floating=True)
        return Div.apply(b, a)

    def __neg__(self):
        return Neg.apply(self)

    # torch's method spellings of the operators
    def add(self, other, alpha=1):
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1):
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other):
        return self * other

    def div(self, other, rounding_mode=None):
        if rounding_mode is not None:
            raise ValueError(f"div: rounding_mode={rounding_mode!r} is not supported (true "
                             "division only); use (a / b).floor() on the values instead")
        return self / other

    def neg(self):
        return -self

    def reciprocal(self):
        return 1.0 / self

    multiply, divide, subtract, negative = mul, div, sub, neg

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return PowTensor.apply(*_operands(self, exponent))
        if self.array.dtype.kind in "biu":  # no gradient: torch's dtype rule, on the values
            base, exponent = _operands(self, exponent)
            return Tensor._wrap(base.array ** exponent.array, self._backend)
        return Pow.apply(self, exponent=float(exponent))

    def __rpow__(self, base):
        a, b = _operands(self, base)
        return PowTensor.apply(b, a)

    def pow(self, exponent):
        return self**exponent

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(as_tensor(other, self), self)

    def __abs__(self):
        return Abs.apply(self)

    # comparisons: no gradient, boolean tensors (hashing stays by identity)
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

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def __and__(self, other):
        return self._compare(other, lambda a, b: a & b)

    def __or__(self, other):
        return self._compare(other, lambda a, b: a | b)

    def __xor__(self, other):
        return self._compare(other, lambda a, b: a ^ b)

    def __invert__(self):
        return Tensor._wrap(~self.array, self._backend)

    __hash__ = object.__hash__

    def any(self) -> Tensor:
        return Tensor._wrap(self._backend.xp.asarray(self.array.any()), self._backend)

    def all(self) -> Tensor:
        return Tensor._wrap(self._backend.xp.asarray(self.array.all()), self._backend)

    # ---- elementwise
    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def sqrt(self):
        return Sqrt.apply(self)

    def abs(self):
        return Abs.apply(self)

    def tanh(self):
        from .functional import tanh

        return tanh(self)

    def sigmoid(self):
        from .functional import sigmoid

        return sigmoid(self)

    def relu(self):
        from .functional import relu

        return relu(self)

    def softmax(self, dim: int):
        from .functional import softmax

        return softmax(self, dim)

    def log_softmax(self, dim: int):
        from .functional import log_softmax

        return log_softmax(self, dim)

    def clip(self, min=None, max=None):
        return Clip.apply(self, low=min, high=max)

    clamp = clip

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def lerp(self, end, weight):
        return lerp(self, end, weight)

    # ---- reductions: PyTorch's dim/keepdim, NumPy's axis/keepdims accepted as aliases
    def sum(self, dim=None, keepdim: bool = False, **aliases):
        dim, keepdim = _dim_args("sum", dim, keepdim, aliases)
        return Sum.apply(self, axis=_axes(dim, self.ndim), keepdims=keepdim)

    def mean(self, dim=None, keepdim: bool = False, **aliases):
        dim, keepdim = _dim_args("mean", dim, keepdim, aliases)
        axes = _axes(dim, self.ndim)
        count = math.prod(self.shape[a] for a in axes) if axes else 1
        return Sum.apply(self, axis=axes, keepdims=keepdim) * (1.0 / max(count, 1))

    def var(self, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None, **aliases):
        """Variance over dim: sum of squared deviations / (N - correction); correction 1
        (unbiased=True, the default, as in PyTorch) or 0 (unbiased=False)."""
        dim, keepdim = _dim_args("var", dim, keepdim, aliases)
        if unbiased is not None and correction is not None:
            raise TypeError("var: pass unbiased= or correction=, not both")
        correction = (1 if unbiased is None or unbiased else 0) if correction is None \
            else correction
        axes = _axes(dim, self.ndim)
        centered = self - self.mean(axes, keepdim=True)
        count = math.prod(self.shape[a] for a in axes) if axes else 1
        # N <= correction: no estimate, NaN as in PyTorch
        scale = 1.0 / (count - correction) if count > correction else float("nan")
        return (centered * centered).sum(axes, keepdim) * scale

    def std(self, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None, **aliases):
        return self.var(dim, unbiased, keepdim, correction=correction, **aliases).sqrt()

    def norm(self, p="fro", dim=None, keepdim: bool = False, **aliases):
        """The p-norm over dim (all elements if None): p = 2 or "fro", 1, inf, or any
        p > 0. At a zero vector the 2-norm's gradient is 0, as in PyTorch."""
        dim, keepdim = _dim_args("norm", dim, keepdim, aliases)
        axes = _axes(dim, self.ndim)
        if p in ("fro", 2, 2.0):
            squares = (self * self).sum(axes, keepdim)
            positive = squares > 0
            zero = squares * 0.0
            return where(positive, where(positive, squares, zero + 1.0).sqrt(), zero)
        if p == 1:
            return self.abs().sum(axes, keepdim)
        if p == float("inf"):
            return self.abs().amax(axes, keepdim)
        if isinstance(p, (int, float)) and p > 0:
            return (self.abs() ** p).sum(axes, keepdim) ** (1.0 / p)
        raise ValueError(f"norm: p must be 'fro', inf or a number > 0, got {p!r}")

    def amax(self, dim=None, keepdim: bool = False, **aliases):
        """The largest value over dim; ties share the gradient equally (torch.amax)."""
        dim, keepdim = _dim_args("amax", dim, keepdim, aliases)
        return Max.apply(self, axis=_axes(dim, self.ndim), keepdims=keepdim)

    def amin(self, dim=None, keepdim: bool = False, **aliases):
        return -(-self).amax(dim, keepdim, **aliases)

    def max(self, dim=None, keepdim: bool = False, **aliases):
        """max(): the largest element; max(dim): (values, indices) along dim, the
        gradient going to the chosen index; max(other): the elementwise maximum."""
        if isinstance(dim, Tensor):
            return maximum(self, dim)
        dim, keepdim = _dim_args("max", dim, keepdim, aliases)
        if dim is None:
            return self.amax()
        return self._select_along("max", dim, keepdim)

    def min(self, dim=None, keepdim: bool = False, **aliases):
        if isinstance(dim, Tensor):
            return minimum(self, dim)
        dim, keepdim = _dim_args("min", dim, keepdim, aliases)
        if dim is None:
            return self.amin()
        return self._select_along("min", dim, keepdim)

    def _select_along(self, op: str, dim: int, keepdim: bool):
        if not isinstance(dim, (int, np.integer)):
            raise TypeError(f"{op}: dim must be one whole number, got {dim!r}")
        xp, dim = self._backend.xp, int(dim) % max(self.ndim, 1)
        indices = (xp.argmax if op == "max" else xp.argmin)(self.array, axis=dim)
        # index every other axis by its own position: out[i, k] = self[i, indices[i, k], k]
        grid = [xp.arange(s).reshape([-1 if j == i else 1 for j in range(indices.ndim)])
                for i, s in enumerate(indices.shape)]
        values = self[tuple(grid[:dim]) + (indices,) + tuple(grid[dim:])]
        indices = Tensor._wrap(indices, self._backend)
        if keepdim:
            values, indices = values.unsqueeze(dim), indices.unsqueeze(dim)
        return (MaxResult if op == "max" else MinResult)(values, indices)

    def argmax(self, dim=None, keepdim: bool = False, **aliases):
        dim, keepdim = _dim_args("argmax", dim, keepdim, aliases)
        out = self._backend.xp.argmax(self.array, axis=dim)
        if keepdim:
            out = self._backend.xp.expand_dims(out, dim) if dim is not None \
                else out.reshape((1,) * self.ndim)
        return Tensor._wrap(self._backend.xp.asarray(out), self._backend)

    def argmin(self, dim=None, keepdim: bool = False, **aliases):
        return (-self).argmax(dim, keepdim, **aliases)

    # ---- shape
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        shape = self.shape
        end = end_dim % max(len(shape), 1)
        middle = math.prod(shape[start_dim : end + 1])
        flat = shape[:start_dim] + (middle,) + shape[end + 1 :]
        # nothing to merge (an (N, D) batch through nn.Flatten()): the tensor itself, as
        # torch.flatten returns its input then, and no graph node
        return self if flat == shape else self.reshape(flat)

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return Permute.apply(self, axes=tuple(a % self.ndim for a in axes))

    def transpose(self, dim0: int = -2, dim1: int = -1):
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    def t(self):
        """The transpose of a tensor of at most 2 dimensions (torch's t())."""
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor of at most 2 dimensions, got shape "
                               f"{self.shape} (use transpose(dim0, dim1) or permute)")
        return self.T if self.ndim == 2 else self

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
        """A broadcast view with the given shape; -1 keeps a dimension's size."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        lead = len(shape) - self.ndim
        if lead < 0 or any(s == -1 for s in shape[:lead]):
            raise RuntimeError(f"expand: cannot expand shape {self.shape} to {tuple(shape)}")
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s
                      for i, s in enumerate(shape))
        return broadcast_to(self, shape)

    def expand_as(self, other: Tensor):
        return self.expand(other.shape)

    def repeat(self, *sizes):
        """The tensor tiled sizes[k] times along dimension k (torch's repeat; numpy's tile):
        a broadcast of each dimension d to (r, d), merged to r * d."""
        sizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
        lead = len(sizes) - self.ndim
        if lead < 0 or any(not isinstance(r, (int, np.integer)) or r < 0 for r in sizes):
            raise RuntimeError(f"repeat: expected at least {self.ndim} whole numbers >= 0 (one "
                               f"per dimension of shape {self.shape}), got {tuple(sizes)}")
        dims = (1,) * lead + self.shape
        paired = self.reshape(tuple(x for d in dims for x in (1, d)))
        tiled = paired.expand(tuple(x for r, d in zip(sizes, dims) for x in (r, d)))
        return tiled.reshape(tuple(r * d for r, d in zip(sizes, dims)))

    def split(self, split_size_or_sections, dim: int = 0) -> tuple:
        """Pieces along dim, as torch.split: of split_size each (the last may be shorter),
        or of the listed sizes (which must add up to the dimension)."""
        dim = _dim_index("split", dim, self.ndim)
        length = self.shape[dim]
        if isinstance(split_size_or_sections, (int, np.integer)):
            step = int(split_size_or_sections)
            if step <= 0 and length:
                raise RuntimeError(f"split: split_size must be positive, got {step}")
            sizes = [min(step, length - start) for start in range(0, length, max(step, 1))]
        else:
            sizes = [int(n) for n in split_size_or_sections]
            if sum(sizes) != length or any(n < 0 for n in sizes):
                raise RuntimeError(f"split: sizes {sizes} do not add up to dimension {dim}'s "
                                   f"length {length}")
        lead, pieces, start = (slice(None),) * dim, [], 0
        for n in sizes:
            pieces.append(self[lead + (slice(start, start + n),)])
            start += n
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        """At most `chunks` pieces along dim, each ceil(length / chunks) long but the last
        (torch.chunk)."""
        if not isinstance(chunks, (int, np.integer)) or chunks < 1:
            raise RuntimeError(f"chunk: chunks must be a whole number >= 1, got {chunks!r}")
        length = self.shape[_dim_index("chunk", dim, self.ndim)]
        return self.split(max(-(-length // int(chunks)), 1), dim)

    def contiguous(self) -> Tensor:
        """Itself when its array is C-contiguous, else a C-contiguous copy (differentiable)."""
        return self if self.array.flags.c_contiguous else self.clone()

    def is_contiguous(self) -> bool:
        return bool(self.array.flags.c_contiguous)

    def masked_fill(self, mask, value) -> Tensor:
        """value where mask is true, this tensor elsewhere; the gradient reaches this tensor
        where mask is false."""
        return where(mask, value, self)

    def mm(self, other: Tensor) -> Tensor:
        if self.ndim != 2 or getattr(other, "ndim", None) != 2:
            raise RuntimeError(f"mm: expected two 2-D tensors, got shapes {self.shape} and "
                               f"{getattr(other, 'shape', type(other).__name__)}")
        return self @ other

    # ---- new tensors like this one (dtype and device from it unless given)
    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False):
        from .creation import tensor

        return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=requires_grad)

    def _new_filled(self, fill, size, dtype, device, requires_grad):
        from .creation import full

        size = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        return full(tuple(size), fill, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False):
        return self._new_filled(0, size, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False):
        return self._new_filled(1, size, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False):
        return self._new_filled(0, size, dtype, device, requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False):
        return self._new_filled(fill_value, (size,), dtype, device, requires_grad)

    def __getitem__(self, index):
        return GetItem.apply(self, index=_raw_index(index))


def _dim_index(op: str, dim, ndim: int) -> int:
    """dim as an index in range(ndim), negative ones counted from the end."""
    if not isinstance(dim, (int, np.integer)) or not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim!r} is out of range for a tensor of {ndim} "
                         f"dimensions (expected a whole number in [{-ndim}, {ndim - 1}])")
    return int(dim) % max(ndim, 1)


def _raw_index(index):
    """An index with its Tensors replaced by their arrays."""
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, tuple):
        return tuple(i.array if isinstance(i, Tensor) else i for i in index)
    return index


def _dim_args(op: str, dim, keepdim: bool, aliases: dict):
    """(dim, keepdim) from PyTorch's names or NumPy's aliases axis= and keepdims=."""
    axis = aliases.pop("axis", None)
    keepdims = aliases.pop("keepdims", None)
    if aliases:
        raise TypeError(f"{op}: unexpected argument(s) {', '.join(sorted(aliases))}")
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: pass dim= or its alias axis=, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return (tuple(dim) if isinstance(dim, list) else dim), bool(keepdim)


def _is_dtype(value) -> bool:
    """Whether value names a dtype rather than a device (Tensor.to accepts either first)."""
    if isinstance(value, _backend.Backend) or value in _backend.DEVICES:
        return False
    try:
        np.dtype(getattr(value, "dtype", value))
    except TypeError:
        return False
    return True


# the legacy tensor type names (t.type(), minigan.FloatTensor, ...)
_TYPE_NAMES = {np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
               np.dtype(np.float16): "HalfTensor", np.dtype(np.int64): "LongTensor",
               np.dtype(np.int32): "IntTensor", np.dtype(np.int16): "ShortTensor",
               np.dtype(np.int8): "CharTensor", np.dtype(np.uint8): "ByteTensor",
               np.dtype(np.bool_): "BoolTensor"}

MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _axes(axis, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


# PyTorch's type promotion (torch.result_type) for the arithmetic operators: kinds rank
# bool < integer < floating < complex; a number, or a 0-d tensor beside a tensor with
# dimensions, raises the result's kind only when its own kind is higher (a float times an
# int64 tensor is float32, the default float; a float64 0-d tensor times a float32 tensor
# is float32); otherwise the wider of the two dtypes of the higher kind. NumPy's own rules
# differ (int64 tensor * 0.5 took the tensor's dtype through as_tensor: 0).
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_DEFAULT_OF_RANK = {1: np.dtype(np.int64), 2: np.dtype(np.float32), 3: np.dtype(np.complex64)}


def _number_rank(value):
    """The kind rank of a Python or NumPy number; None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    if isinstance(value, (float, np.floating)):
        return 2
    if isinstance(value, (complex, np.complexfloating)):
        return 3
    return None


def _result_dtype(a: Tensor, b: Tensor):
    da, db = a.array.dtype, b.array.dtype
    ra, rb = _KIND_RANK[da.kind], _KIND_RANK[db.kind]
    if (a.ndim == 0) != (b.ndim == 0):  # a 0-d tensor counts only with a higher kind
        (dims, rd), (zero, rz) = ((b, rb), (a, ra)) if a.ndim == 0 else ((a, ra), (b, rb))
        return zero.array.dtype if rz > rd else dims.array.dtype
    if ra != rb:
        return da if ra > rb else db
    return np.promote_types(da, db)


def _operands(t: Tensor, other, floating: bool = False) -> tuple:
    """(t, other) as two tensors of one dtype on t's device, by PyTorch's promotion rules
    (above); floating: a true division, whose integer operands become float32 first."""
    dtype = t.array.dtype
    if isinstance(other, Tensor):
        if other.array.dtype != dtype:
            dtype = _result_dtype(t, other)
    else:
        rank = _number_rank(other)
        if rank is None:  # an array or a list: a tensor of its own dtype
            return _operands(t, Tensor._wrap(t._backend.asarray(other), t._backend), floating)
        if rank > _KIND_RANK[dtype.kind]:
            dtype = _DEFAULT_OF_RANK[rank]
        other = Tensor._wrap(t._backend.asarray(other, dtype=dtype), t._backend)
    if floating and dtype.kind in "biu":
        dtype = _DEFAULT_OF_RANK[2]
    return _as_dtype(t, dtype), _as_dtype(other, dtype)


def _as_dtype(t: Tensor, dtype) -> Tensor:
    return t if t.array.dtype == dtype else t.to(dtype=dtype)


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


def _sum_of(a: Tensor, b: Tensor, create_graph: bool) -> Tensor:
    """a + b for two gradients of one tensor. Without a graph of the gradients, on the
    arrays (the same sum, without an Add op's bookkeeping: 13 of an MLP-2D iteration's 31
    ops were these); with one, or across devices (an error there), the Tensor op."""
    if create_graph or a._backend is not b._backend:
        return a + b
    return Tensor._wrap(a.array + b.array, a._backend)


def _memory_id(array) -> int:
    """The id of the array that owns array's memory (itself, or the base of a view)."""
    return id(array if array.base is None else array.base)


def _own_gradient(g: Tensor, given: set) -> Tensor:
    """g detached, over an array that is the caller's alone: a gradient handed out as a
    leaf's .grad (or by grad() without a graph) may be changed in place (clip_grad_norm_,
    `p.grad.zero_()`), so it is copied when it cannot be written (the broadcast view a
    mean's backward passes on) or when its memory went to another tensor in this backward
    (an Add passes one gradient to both inputs, a view's gradient is a view of it, a
    grad_outputs array is the caller's). `given` holds the ids of the memory handed out."""
    array = g.array
    memory = _memory_id(array)
    if memory not in given and getattr(array.flags, "writeable", True):
        given.add(memory)  # the owners stay referenced, so their ids stay theirs
        return Tensor._wrap(array, g._backend)
    return Tensor._wrap(g._backend.xp.array(array, copy=True), g._backend)


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
    given = set()  # the memory of gradients handed out (_own_gradient)
    for out, g in zip(outputs, grad_outputs):
        given.add(_memory_id(g.array))
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
                    found[id(t)] = g if create_graph else _own_gradient(g, given)
                if id(t) not in wanted or t._ctx is None:
                    continue
            elif t._ctx is None:
                if t.grad is not None:
                    t.grad = _sum_of(t.grad, g, create_graph)
                else:
                    t.grad = g if create_graph else _own_gradient(g, given)
                continue
            ctx = t._ctx
            needs = ctx.needs_input_grad
            if wanted is not None:
                # only for this call: a retained graph may later be walked by backward()
                ctx.needs_input_grad = tuple(p.requires_grad and id(p) in wanted
                                             for p in ctx.inputs)
            try:
                ctx.check_versions()
                input_grads = ctx.backward(g)
            finally:
                needs, ctx.needs_input_grad = ctx.needs_input_grad, needs
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if _anomaly[0] and _anomaly[1]:
                _check_backward_for_nan(ctx, input_grads)
            for parent, pg, needed in zip(ctx.inputs, input_grads, needs):
                if pg is None or not needed:
                    continue
                if pg.shape != parent.shape:
                    raise RuntimeError(
                        f"{type(ctx).__name__}.backward returned a gradient of shape "
                        f"{pg.shape} for an input of shape {parent.shape}"
                    )
                key = id(parent)
                grads[key] = _sum_of(grads[key], pg, create_graph) if key in grads else pg
            if not retain_graph:
                ctx.freed = True
                ctx.inputs = ()
    if inputs is not None:
        return found


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs: bool = True, allow_unused=False) -> tuple:
    """d(outputs)/d(inputs), with PyTorch's meaning; .grad fields are left alone.

    Returns a tuple with one gradient per input, also for a single input Tensor, as
    torch.autograd.grad does: `grad(loss, x)[0]`. With create_graph=True the returned
    gradients carry a graph of their own, so a penalty written with them (WGAN-GP, R1) can
    be differentiated again. only_inputs is accepted for PyTorch's sake and has no effect
    (as in PyTorch 2).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
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
    return tuple(result)


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
    is_view = True

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


class PowTensor(Function):
    """a ** b elementwise for tensors a and b. d/da = b a^(b-1) (0 where b = 0), d/db =
    a^b log a (0 where a = 0 and b >= 0): PyTorch's conventions, so a negative or zero base
    gives the right value and a finite gradient for the base."""

    def forward(self, a, b):
        return self.xp.power(a, b)

    def backward(self, g):
        a, b = self.inputs
        ga = gb = None
        zero = g * 0.0
        if self.needs_input_grad[0]:
            # where b = 0 the exponent b - 1 is replaced by 1, so 0 * 0^-1 never appears
            ga = sum_to(g * b * a ** where(b == 0, zero + 1.0, b - 1.0), a.shape)
        if self.needs_input_grad[1]:
            # log of a where it is used; 1 elsewhere, so no inf/NaN enters the graph
            masked = (a == 0) & (b >= 0)
            safe_a = where(masked, zero + 1.0, a + zero)
            gb = sum_to(where(masked, zero, g * self.output * log(safe_a)), b.shape)
        return ga, gb


class Convert(Function):
    """The input copied to another device and/or dtype (Tensor.to); the gradient goes
    back to the input's device and dtype, so a graph survives .to() and .float()."""

    def forward(self, x, target, dtype):
        array = target.asarray(x if target is self.backend else Tensor._wrap(x, self.backend)
                               .numpy())
        return array if dtype is None else array.astype(dtype)

    def backward(self, g):
        x = self.inputs[0]
        return g.to(x._backend, dtype=x.dtype)


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


class Maximum(Function):
    """max(a, b) elementwise; where a == b each gets half the gradient, as in PyTorch."""

    def forward(self, a, b):
        out = self.xp.maximum(a, b)
        self.share_a = ((a > b) + 0.5 * (a == b)).astype(out.dtype)
        return out

    def backward(self, g):
        a, b = self.inputs
        share = Tensor._wrap(self.share_a, self.backend)
        ga = sum_to(g * share, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * (1.0 - share), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class SetItem(Function):
    """x with x[index] = v (v broadcast): item assignment while a graph is recorded."""

    def forward(self, x, v, index):
        self.index = index
        out = x.copy()
        out[index] = v
        return out

    def backward(self, g):
        x, v = self.inputs
        gx = gv = None
        if self.needs_input_grad[0]:
            gx = SetItem.apply(g, as_tensor(0.0, g), index=self.index)
        if self.needs_input_grad[1]:
            gv = sum_to(g[self.index], v.shape)
        return gx, gv


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
    """a @ b with NumPy's (and PyTorch's) rules: a 1-D operand is a vector, more than two
    dimensions are batches. The gradient of each case follows from out[..., i, j] =
    sum_k a[..., i, k] b[..., k, j], with a vector's missing axis left out."""

    def forward(self, a, b):
        return self.K.matmul(a, b) if a.ndim == b.ndim == 2 else a @ b

    def backward(self, g):
        a, b = self.inputs
        ga = gb = None
        if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
            ga = g * b if self.needs_input_grad[0] else None
            gb = g * a if self.needs_input_grad[1] else None
            return ga, gb
        if self.needs_input_grad[0]:
            if a.ndim == 1:  # g (..., n), b (..., k, n)
                ga = (b * g.unsqueeze(-2)).sum(-1)
            elif b.ndim == 1:  # g (..., m), b (k,)
                ga = g.unsqueeze(-1) * b
            else:
                ga = g @ b.transpose(-1, -2)
            ga = sum_to(ga, a.shape)
        if self.needs_input_grad[1]:
            if a.ndim == 1:  # a (k,), g (..., n)
                gb = a.unsqueeze(-1) * g.unsqueeze(-2)
            elif b.ndim == 1:  # a (..., m, k), g (..., m)
                gb = (a * g.unsqueeze(-1)).sum(-2)
            else:
                gb = a.transpose(-1, -2) @ g
            gb = sum_to(gb, b.shape)
        return ga, gb


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
    is_view = True

    def forward(self, x, shape):
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.inputs[0].shape)


class Permute(Function):
    is_view = True

    def forward(self, x, axes):
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):
        return g.permute(tuple(np.argsort(self.axes)))


class GetItem(Function):
    is_view = True

    def forward(self, x, index):
        self.index = index
        return self.xp.asarray(x[index])  # an array also when one element is picked

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


class _VariableType(type):
    """isinstance(t, Variable) holds for every Tensor, as in PyTorch since 0.4."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableType):
    """PyTorch's old wrapper, kept because much published code still calls it.

    Since PyTorch 0.4 a Variable is a Tensor, and `Variable(t, requires_grad=...)` gives t
    detached from its graph: the same storage and version counter, a leaf that requires
    grad only if asked. `volatile` no longer means anything (use no_grad) and is ignored.
    """

    def __new__(cls, data: Tensor, requires_grad: bool = False, volatile: bool = False):
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable: data has to be a Tensor, got {type(data).__name__}")
        return data.detach().requires_grad_(requires_grad)


# ----------------------------------------------------------------------------- functions


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def cat(tensors, dim: int = 0, **aliases) -> Tensor:
    """Join tensors along an existing dimension (NumPy's axis= is an alias of dim=)."""
    dim, _ = _dim_args("cat", None if "axis" in aliases else dim, False, aliases)
    tensors = list(tensors)
    return Concat.apply(*tensors, axis=dim % tensors[0].ndim)


concat = cat


def stack(tensors, dim: int = 0, **aliases) -> Tensor:
    """Join tensors along a new dimension (NumPy's axis= is an alias of dim=)."""
    dim, _ = _dim_args("stack", None if "axis" in aliases else dim, False, aliases)
    tensors = list(tensors)
    dim = dim % (tensors[0].ndim + 1)
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """input @ other (torch.matmul): vectors, matrices and batches of matrices."""
    other = as_tensor(other, input)
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                           f"{input.shape} and {other.shape}")
    inner = other.shape[0] if other.ndim == 1 else other.shape[-2]
    if input.shape[-1] != inner:
        raise RuntimeError(f"matmul: shapes {input.shape} and {other.shape} cannot be "
                           f"multiplied ({input.shape[-1]} != {inner})")
    if input.dtype != other.dtype:
        raise RuntimeError(f"matmul: both arguments must have the same dtype, got "
                           f"{input.dtype} and {other.dtype}")
    return MatMul.apply(input, other)


def maximum(input: Tensor, other) -> Tensor:
    """The elementwise maximum (torch.maximum); ties split the gradient."""
    return Maximum.apply(*_operands(input, other))


def minimum(input: Tensor, other) -> Tensor:
    """The elementwise minimum (torch.minimum); ties split the gradient."""
    input, other = _operands(input, other)
    return -Maximum.apply(-input, -other)


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    """input + weight * (end - input) (torch.lerp)."""
    return input + weight * (end - input)


def where(condition, a, b) -> Tensor:
    """a where condition holds, else b (torch.where); numbers promote as in arithmetic, and
    two numbers give a tensor of their kind's default dtype on condition's device."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        rank = _number_rank(a)
        if rank is None:
            raise TypeError(f"where: expected tensors or numbers, got {type(a).__name__} and "
                            f"{type(b).__name__}")
        device = condition._backend if isinstance(condition, Tensor) else _backend.get(None)
        a = Tensor._wrap(device.asarray(a, dtype=_DEFAULT_OF_RANK.get(rank, np.bool_)), device)
    if isinstance(a, Tensor):
        a, b = _operands(a, b)
    else:
        b, a = _operands(b, a)
    condition = condition.array if isinstance(condition, Tensor) else condition
    return Where.apply(a, b, condition=condition)
