"""Module and Parameter: the bookkeeping that turns functions with weights into layers.

PyTorch's names and semantics, so habits and checkpoints carry over: a Module registers the
Parameters, buffers and submodules assigned to it as attributes, in assignment order, and
`named_parameters()` / `state_dict()` walk them with dotted names ("0.weight",
"1.running_mean"), own entries first, then each child's. A state_dict with the same keys and
shapes as PyTorch's loads one-to-one in either direction.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Iterator

import numpy as np

from .. import backend as _backend
from ..autograd import Tensor, _is_dtype


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module (requires grad by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, device=None, dtype=None):
        if isinstance(data, Tensor) and device is None:
            device = data.device  # keep the tensor where it is, not on the default device
        if dtype is None and hasattr(data, "dtype"):
            dtype = data.dtype  # a parameter keeps its tensor's (or array's) dtype
        super().__init__(data, requires_grad=requires_grad, device=device, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """What register_forward_pre_hook returns: `remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict):
        self.hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)


class Module:
    """Base class of every layer and model. Subclasses set Parameters, buffers and
    submodules as attributes in __init__ and write `forward`."""

    def __init__(self):
        # object.__setattr__ because our __setattr__ reads these dicts
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, *args, **kwargs):
        for arg in args:  # a raw array would fail deep inside an op, far from the mistake
            if isinstance(arg, np.ndarray) or hasattr(arg, "__cuda_array_interface__"):
                raise TypeError(
                    f"{type(self).__name__} takes a minigan Tensor, got a "
                    f"{type(arg).__module__}.{type(arg).__name__} of shape {arg.shape}; "
                    "wrap it first: minigan.tensor(x)"
                )
        if self._forward_pre_hooks:
            args = self._run_forward_pre_hooks(args)
        return self.forward(*args, **kwargs)

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """hook(module, args) runs before every forward; a result other than None replaces
        the positional args (a tuple, or one value). PyTorch's semantics; spectral_norm
        (nn.utils) recomputes its weight this way."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def _run_forward_pre_hooks(self, args: tuple) -> tuple:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        return args

    # ---- registration
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() (call super().__init__() "
                f"first in {type(self).__name__}.__init__)"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        # a name reassigned in the same registry keeps its place (PyTorch's state_dict order)
        if isinstance(value, Parameter):
            if name not in params:
                self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            if name not in modules:
                self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter {name!r} of "
                    f"{type(self).__name__} (expected a Parameter or None)"
                )
            params[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} to buffer {name!r} of "
                    f"{type(self).__name__} (expected a Tensor or None)"
                )
            buffers[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to submodule {name!r} of "
                    f"{type(self).__name__} (expected a Module or None)"
                )
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: the registered entries live in the dicts
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if not self._forget(name):
            object.__delattr__(self, name)

    def _forget(self, name: str) -> bool:
        found = False
        for entries in (self._parameters, self._buffers, self._modules):
            if name in entries:
                del entries[name]
                found = True
        self._non_persistent.discard(name)
        if name in self.__dict__:
            object.__delattr__(self, name)
            found = True
        return found

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A Tensor that is state but not learnable (BatchNorm's running statistics).
        Persistent buffers are saved in state_dict."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None")
        if name not in self._modules:
            self._forget(name)
        self._modules[name] = module

    # ---- walking the tree
    def named_modules(self, prefix: str = "", memo: set | None = None):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_entries(self, registry: str, prefix: str, recurse: bool):
        """(dotted name, tensor) for one registry, each tensor once (shared weights)."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{module_prefix}.{name}" if module_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        yield from self._named_entries("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        yield from self._named_entries("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn) -> Module:
        """Call fn on every submodule (children first) and on self, like PyTorch."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients
    def train(self, mode: bool = True) -> Module:
        """Training mode (BatchNorm uses batch statistics, Dropout drops) or, with
        mode=False, evaluation mode; for this module and every submodule."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor._wrap(p._backend.xp.zeros_like(p.array), p._backend)

    # ---- state
    def _state_entries(self, prefix: str = ""):
        """(key, tensor) in state_dict order: each module's parameters, then its persistent
        buffers, then its children's entries, recursively (PyTorch's order)."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, b
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_entries(f"{prefix}{name}.")

    def state_dict(self) -> OrderedDict:
        """Dotted name -> NumPy array, a copy of every parameter and persistent buffer."""
        return OrderedDict((key, np.array(t.numpy(), copy=True)) for key, t in
                           self._state_entries())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the existing arrays, in place (an optimizer holds views of them).

        Values may be NumPy arrays, Tensors, or anything np.asarray accepts (a CPU
        torch.Tensor too). Shape mismatches are always errors; missing and unexpected keys
        are errors when strict, and are returned either way.
        """
        own = OrderedDict(self._state_entries())
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        errors, values = [], {}
        for key, t in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            if tuple(value.shape) != t.shape:
                errors.append(
                    f"size mismatch for {key}: copying a value with shape "
                    f"{tuple(value.shape)} from the state_dict, the shape in the current "
                    f"model is {t.shape}"
                )
            values[key] = value
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        for key, value in values.items():
            t = own[key]
            t.array[...] = t._backend.asarray(value)
        return IncompatibleKeys(missing, unexpected)

    # ---- devices and dtypes
    def to(self, device=None, dtype=None) -> Module:
        """Move every parameter and buffer, in place (the Parameter objects stay the same).
        dtype applies to floating-point tensors only, as in PyTorch.

        Create optimizers after this call: an optimizer packs the parameters' arrays into
        its own flat buffer, and moving them afterwards breaks that link.
        """
        if device is not None and _is_dtype(device):  # model.to(minigan.float64), as torch
            device, dtype = None, device
        target = _backend.get(device) if device is not None else None
        for t in list(self.parameters()) + list(self.buffers()):
            b = target or t._backend
            array = t.array
            if b is not t._backend:
                array = b.asarray(t.numpy())
            if dtype is not None and array.dtype.kind == "f" and array.dtype != np.dtype(dtype):
                array = array.astype(dtype)
            if array is not t.array or b is not t._backend:
                t.array, t._backend = array, b
                if t.grad is not None:
                    t.grad = t.grad.to(b, dtype=array.dtype)
        return self

    def float(self) -> Module:
        return self.to(dtype=np.float32)

    def double(self) -> Module:
        return self.to(dtype=np.float64)

    def cuda(self) -> Module:
        """Move everything to the GPU (a clear error when there is no usable one)."""
        return self.to("cuda")

    def cpu(self) -> Module:
        """Move what is on the GPU to the host; tensors already there stay on their device."""
        host = _backend.host_device()
        if any(t.device == "cuda" for t in list(self.parameters()) + list(self.buffers())):
            return self.to(host)
        return self

    # ---- printing
    def extra_repr(self) -> str:
        """The constructor arguments shown between the parentheses of repr."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"

    def __dir__(self):
        return list(super().__dir__()) + list(self._parameters) + list(self._buffers) + list(
            self._modules
        )


# Sequential's fusion tables, filled in by the modules that take part (nn/linear.py,
# nn/norm.py and nn/activation.py): a Linear or BatchNorm directly followed by an
# activation runs as one op (F.linear_act, F.batch_norm_act). Exact types only, so a
# subclass with its own forward is never bypassed.
FUSES_ACTIVATION: set[type] = set()  # modules with forward_act(input, kind, slope)
ACTIVATION_KIND: dict[type, object] = {}  # activation module type -> module -> (kind, slope)


class Sequential(Module):
    """Modules applied one after the other; indexable, sliceable, iterable, has len.

    A Linear or BatchNorm1d/2d followed directly by ReLU, LeakyReLU, Tanh or Sigmoid runs as
    one fused op (F.linear_act: one product, then bias and activation in one pass;
    F.batch_norm_act: the activation inside batch norm's passes; backwards likewise): the
    same values as the two modules in turn, fewer graph nodes and passes over memory. That
    is what keeps small MLPs from being bound by per-op overhead (benchmarks/RESULTS.md).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            module = modules[i]
            following = modules[i + 1] if i + 1 < len(modules) else None
            kind = ACTIVATION_KIND.get(type(following))
            if kind is not None and type(module) in FUSES_ACTIVATION:
                if module._forward_pre_hooks:  # what module(x) would run first
                    (x,) = module._run_forward_pre_hooks((x,))
                x = module.forward_act(x, *kind(following))
                i += 2
            else:
                x = module(x)
                i += 1
        return x

    def __getitem__(self, index):
        modules = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(modules[index]))
        try:
            return modules[index][1]
        except IndexError:
            raise IndexError(
                f"Sequential index {index} out of range for length {len(self)}"
            ) from None

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self
