"""Optimizers with torch.optim's names and update rules: Adam, AdamW, RMSprop, SGD.

The update math lives in kernels (kernels/reference/optim.py and its fast versions); this
file does the bookkeeping around it, built for one kernel call per step:

* At construction each param group's parameters are packed, per device and dtype, into one
  contiguous flat array, and each Parameter's `.array` is rebound to a view of its slice.
  The optimizer's state (Adam's moments, momentum buffers) is flat in the same layout.
* Each step copies the gradients into one flat gradient array and updates everything with a
  single kernel call per pack.
* A parameter whose .grad is None is skipped, as in PyTorch: its values, state and step
  count stay as they are. When that happens (or when step counts differ, after such a skip)
  the pack is updated parameter by parameter, on the same flat arrays' slices.

Rule: create the optimizer after `model.to(device)` / `.double()`. Moving the parameters
afterwards replaces their arrays, which breaks the link to the flat buffer; step() then
stops with an error that says so. (Replacing a parameter's array by one of the same shape,
dtype and device, e.g. `p.array = p.array.clip(-c, c)`, is fine: the optimizer copies it back
into its slot.)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..autograd import Tensor, enable_grad


class _Pack:
    """Parameters of one group on one device with one dtype, packed in one flat array."""

    def __init__(self, params: list[Tensor]):
        self.params = params
        self.backend = params[0]._backend
        xp = self.backend.xp
        self.slices, start = [], 0
        for p in params:
            self.slices.append(slice(start, start + p.numel()))
            start += p.numel()
        self.flat = xp.empty(start, dtype=params[0].dtype)
        self.views = []
        for p, where in zip(params, self.slices):
            self.flat[where] = p.array.reshape(-1)
            p.array = self.flat[where].reshape(p.shape)
            self.views.append(p.array)
        self.grad = xp.zeros(start, dtype=self.flat.dtype)
        self.state: dict[str, object] = {}  # name -> flat array, created on first use
        self.steps = [0] * len(params)

    def buffer(self, name: str):
        """The flat state array `name`, zeros when first asked for."""
        if name not in self.state:
            self.state[name] = self.backend.xp.zeros_like(self.flat)
        return self.state[name]

    def relink(self, optimizer_name: str, index_of) -> None:
        """Make sure every parameter still views its slot (see the module docstring)."""
        for k, p in enumerate(self.params):
            if p.array is self.views[k]:
                continue
            if (p._backend is not self.backend or p.array.dtype != self.flat.dtype
                    or tuple(p.array.shape) != tuple(self.views[k].shape)):
                raise RuntimeError(
                    f"{optimizer_name}: parameter {index_of(p)} (shape {p.shape}) now lives "
                    f"on device {p.device} with dtype {p.dtype}, not on {self.backend.name} "
                    f"with {self.flat.dtype} as when the optimizer was created. Create the "
                    "optimizer after model.to(device) / model.double()."
                )
            self.views[k][...] = p.array
            p.array = self.views[k]


class Optimizer:
    """Base class: param groups, packing, the step loop and state_dict. A subclass names its
    state arrays (`_state_names`) and calls its kernel in `_update`."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        params = list(params) if not isinstance(params, Tensor) else [params]
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict] = []
        self._packs: list[list[_Pack]] = []
        self._step_calls = 0  # lets a learning-rate scheduler see whether step() ran
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: expected Tensors as parameters, got "
                                f"{type(p).__name__}")
            if not p.is_leaf:  # a frozen leaf (requires_grad False) is kept, as in torch:
                # it has no .grad, so steps skip it until it requires grad again
                raise ValueError(f"{type(self).__name__}: a parameter (shape {p.shape}) must "
                                 "be a leaf tensor (one no op made): pass the model's "
                                 "parameters, not a result computed from them")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter (shape {p.shape}) "
                                 "appears more than once")
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"] = params
        by_kind: dict = {}
        for p in params:
            by_kind.setdefault((p.device, str(p.dtype)), []).append(p)
        self.param_groups.append(group)
        self._packs.append([_Pack(ps) for ps in by_kind.values()])

    # ---- the step
    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.array[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a .grad; closure, if given, recomputes the loss
        (under grad mode) first and its value is returned."""
        self._step_calls += 1
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group, packs in zip(self.param_groups, self._packs):
            for pack in packs:
                self._step_pack(group, pack)
        return loss

    def flat_grads(self) -> list:
        """Each pack's flat gradient array, filled from the parameters' .grad (zeros where a
        parameter has none), with every .grad rebound to a view of its slot. What a
        data-parallel all-reduce works on (distributed.py): one collective for all the
        parameters, whose result step() then reads through the views."""
        flats = []
        for packs in self._packs:
            for pack in packs:
                for p, where in zip(pack.params, pack.slices):
                    if p.grad is None or p.grad.shape != p.shape:  # step() reports a bad shape
                        pack.grad[where] = 0
                        continue
                    pack.grad[where] = p.grad.array.reshape(-1)
                    p.grad = Tensor._wrap(pack.grad[where].reshape(p.shape), pack.backend)
                flats.append(pack.grad)
        return flats

    def _step_pack(self, group: dict, pack: _Pack) -> None:
        pack.relink(type(self).__name__, self._index_of)
        has_grad = [p.grad is not None for p in pack.params]
        if not any(has_grad):
            return
        for p, has in zip(pack.params, has_grad):
            if has:  # an in-place change, as in torch: a graph recorded before sees it
                p._version.value += 1
        for p, where, has in zip(pack.params, pack.slices, has_grad):
            if has:
                if p.grad.shape != p.shape:
                    raise RuntimeError(f"{type(self).__name__}: gradient of shape "
                                       f"{p.grad.shape} for a parameter of shape {p.shape}")
                pack.grad[where] = p.grad.array.reshape(-1)
        state = {name: pack.buffer(name) for name in self._state_names(group)}
        if all(has_grad) and len(set(pack.steps)) == 1:
            pack.steps = [pack.steps[0] + 1] * len(pack.steps)
            self._update(pack.backend.K, group, pack.flat, pack.grad, state, pack.steps[0])
            return
        for k, where in enumerate(pack.slices):  # the rare case: one call per parameter
            if has_grad[k]:
                pack.steps[k] += 1
                sliced = {name: array[where] for name, array in state.items()}
                self._update(pack.backend.K, group, pack.flat[where], pack.grad[where],
                             sliced, pack.steps[k])

    def _state_names(self, group: dict) -> tuple[str, ...]:
        raise NotImplementedError

    def _update(self, K, group: dict, param, grad, state: dict, step: int) -> None:
        raise NotImplementedError

    # ---- state
    def _ordered_slots(self) -> list:
        """(pack, k) for every parameter, in param_groups order (the state_dict indices)."""
        slots = []
        for group, packs in zip(self.param_groups, self._packs):
            by_param = {id(p): (pack, k) for pack in packs for k, p in enumerate(pack.params)}
            slots.extend(by_param[id(p)] for p in group["params"])
        return slots

    def _index_of(self, param: Tensor) -> int:
        for i, (pack, k) in enumerate(self._ordered_slots()):
            if pack.params[k] is param:
                return i
        return -1

    def state_dict(self) -> dict:
        """{"state": {index: {"step": int, name: array}}, "param_groups": [...]}: PyTorch's
        layout, with plain NumPy arrays (copies) and numbers. Parameters are numbered in
        param_groups order; those never updated have no entry, as in PyTorch."""
        state = {}
        for index, (pack, k) in enumerate(self._ordered_slots()):
            if pack.steps[k] == 0:
                continue
            entry = {"step": pack.steps[k]}
            shape = pack.params[k].shape
            for name, flat in pack.state.items():
                values = flat[pack.slices[k]].reshape(shape)
                entry[name] = np.array(Tensor._wrap(values, pack.backend).numpy(), copy=True)
            state[index] = entry
        groups, start = [], 0
        for group in self.param_groups:
            saved = {key: value for key, value in group.items() if key != "params"}
            saved["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters, step counts and state arrays (copied into the flat
        buffers); the parameters must be laid out in groups as when it was saved."""
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: {len(groups)} param groups in the "
                             f"state_dict, the optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: param group {i} has {len(saved['params'])} "
                    f"parameters in the state_dict, {len(group['params'])} in the optimizer"
                )
        slots = self._ordered_slots()
        state = {int(key): value for key, value in state_dict["state"].items()}
        for index, entry in state.items():
            pack, k = slots[index]
            shape = pack.params[k].shape
            for key, value in entry.items():
                if key != "step" and tuple(np.shape(value)) != shape:
                    raise ValueError(
                        f"{name}.load_state_dict: state {key!r} of parameter {index} has shape "
                        f"{tuple(np.shape(value))}, the parameter has shape {shape}"
                    )
        for saved, group in zip(groups, self.param_groups):
            group.update({key: value for key, value in saved.items() if key != "params"})
        for index, (pack, k) in enumerate(slots):
            entry = state.get(index, {})
            pack.steps[k] = int(entry.get("step", 0))
            for array in pack.state.values():
                array[pack.slices[k]] = 0
            for key, value in entry.items():
                if key != "step" and value is not None:
                    flat_values = pack.backend.asarray(np.asarray(value)).reshape(-1)
                    pack.buffer(key)[pack.slices[k]] = flat_values

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


def _check(name: str, condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"{name}: {message}")


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015). weight_decay is L2: added to the gradient (as in
    torch.optim.Adam), so it is rescaled by the adaptive step; AdamW decouples it.
    amsgrad=True: AMSGrad (Reddi et al. 2018), dividing by the running maximum of the
    second moment (state "max_exp_avg_sq", as in PyTorch)."""

    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        name = type(self).__name__
        _check(name, lr >= 0, f"invalid learning rate {lr}")
        _check(name, eps >= 0, f"invalid eps {eps}")
        _check(name, 0 <= betas[0] < 1 and 0 <= betas[1] < 1, f"invalid betas {betas}")
        _check(name, weight_decay >= 0, f"invalid weight_decay {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=bool(amsgrad)))

    def _state_names(self, group):
        if group["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")

    def _update(self, K, group, param, grad, state, step):
        beta1, beta2 = group["betas"]
        K.adam_update(param, grad, state["exp_avg"], state["exp_avg_sq"], step, group["lr"],
                      beta1, beta2, group["eps"], group["weight_decay"], self._decoupled,
                      state.get("max_exp_avg_sq"))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): each step multiplies the
    parameters by (1 - lr * weight_decay) besides the Adam update."""

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012) in PyTorch's form: v <- alpha v + (1 - alpha) g^2,
    step g / (sqrt(v) + eps), with optional momentum on that step. WGAN's optimizer
    (Arjovsky et al. 2017, Algorithm 1: lr 5e-5)."""

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0):
        _check("RMSprop", lr >= 0, f"invalid learning rate {lr}")
        _check("RMSprop", eps >= 0, f"invalid eps {eps}")
        _check("RMSprop", 0 <= alpha, f"invalid alpha {alpha}")
        _check("RMSprop", momentum >= 0, f"invalid momentum {momentum}")
        _check("RMSprop", weight_decay >= 0, f"invalid weight_decay {weight_decay}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum))

    def _state_names(self, group):
        return ("square_avg", "momentum_buffer") if group["momentum"] > 0 else ("square_avg",)

    def _update(self, K, group, param, grad, state, step):
        K.rmsprop_update(param, grad, state["square_avg"], state.get("momentum_buffer"),
                         group["lr"], group["alpha"], group["eps"], group["weight_decay"],
                         group["momentum"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and Nesterov momentum, in
    PyTorch's form (buf <- momentum buf + g; step lr * buf, or lr * (g + momentum buf))."""

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        # dampening has torch's place among the arguments, so that SGD(p, lr, m, 0, wd)
        # means what it means there; only its default (no dampening) is implemented
        _check("SGD", dampening == 0, f"dampening {dampening} is not supported (only 0, "
               "PyTorch's default); the momentum buffer adds the whole gradient")
        _check("SGD", lr >= 0, f"invalid learning rate {lr}")
        _check("SGD", momentum >= 0, f"invalid momentum {momentum}")
        _check("SGD", weight_decay >= 0, f"invalid weight_decay {weight_decay}")
        _check("SGD", not nesterov or momentum > 0, "Nesterov momentum needs momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _state_names(self, group):
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _update(self, K, group, param, grad, state, step):
        K.sgd_update(param, grad, state.get("momentum_buffer"), group["lr"], group["momentum"],
                     group["weight_decay"], group["nesterov"])
