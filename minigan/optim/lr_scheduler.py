"""Learning-rate schedules with torch.optim.lr_scheduler's names, arguments and stepping
rules, so a PyTorch training loop runs unchanged:

    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(100):
        train(...)              # optimizer.step() inside
        scheduler.step()        # after the optimizer's step, once per epoch (or iteration)

The rules, as PyTorch's:
* Constructing a scheduler with last_epoch=-1 stores each param group's lr as its
  `initial_lr` (the base_lrs) and takes a first step, to last_epoch 0, which sets the lr of
  epoch 0. With last_epoch >= 0 (continuing a schedule) every group must already hold an
  `initial_lr`, and that first step keeps the lr found in the groups (LambdaLR computes
  its closed form, StepLR drops at a multiple of step_size), as PyTorch 2.x does.
* Each step() adds 1 to last_epoch and writes the new lr into every param group.
  get_last_lr() is the list written last.
* Most schedules are recursive, like PyTorch's: each lr is computed from the group's current
  lr, so a change made to the lr by hand carries on (and the float results agree with
  PyTorch's step by step). LambdaLR is closed-form: base_lr * lr_lambda(last_epoch).
* state_dict() holds everything but the optimizer (a LambdaLR saves its lr_lambdas only
  when they are objects with attributes; plain functions are saved as None and must be
  given again, as in PyTorch); load_state_dict() restores it.
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Callable

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "LinearLR", "CosineAnnealingLR",
           "ExponentialLR"]


class LRScheduler:
    """Base class: base_lrs, last_epoch, step(), get_last_lr(), state_dict(). A subclass
    writes get_lr(), the lrs of epoch `last_epoch`."""

    def __init__(self, optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        name = type(self).__name__
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{name}: expected an optimizer, got {type(optimizer).__name__}")
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{name}: param 'initial_lr' is not specified in "
                                   f"param_groups[{i}] when resuming a schedule (last_epoch "
                                   f"{last_epoch})")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._optimizer_steps_at_start = optimizer._step_calls
        # the constructor's step: ExponentialLR, LinearLR and CosineAnnealingLR then keep the
        # lr they find, so a schedule resumed with last_epoch >= 0 does not run a step ahead
        self._initial = True
        try:
            self.step()
        finally:
            self._initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates the last step() wrote, one per param group."""
        return self._last_lr

    def step(self) -> None:
        """Move to the next epoch and write its learning rates into the optimizer."""
        self._step_count += 1
        if (self._step_count == 2 and self.optimizer._step_calls
                == self._optimizer_steps_at_start):
            warnings.warn(f"{type(self).__name__}.step() was called before optimizer.step(): "
                          "the first value of the schedule is skipped. Call scheduler.step() "
                          "after optimizer.step(), as in PyTorch 1.1 and later.",
                          UserWarning, stacklevel=2)
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Every attribute but the optimizer: plain numbers and lists."""
        return {key: value for key, value in self.__dict__.items()
                if key not in ("optimizer", "_initial")}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(last_epoch); one function for all groups or one per group."""

    def __init__(self, optimizer, lr_lambda: Callable[[int], float] | list,
                 last_epoch: int = -1):
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per param "
                                 f"group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas,
                                                                     self.base_lrs)]

    def state_dict(self) -> dict:
        state = {key: value for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_initial", "lr_lambdas")}
        # a function cannot be saved without pickle; an object's attributes can
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType)
                               or not hasattr(fn, "__dict__") else dict(vars(fn))
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        self.__dict__.update(state)
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                fn.__dict__.update(attributes)


class StepLR(LRScheduler):
    """Multiply the lr by gamma every step_size epochs."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every epoch."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self._initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class LinearLR(LRScheduler):
    """The lr's factor moves linearly from start_factor (epoch 0) to end_factor (epoch
    total_iters), then stays there."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        if not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be a positive int, got "
                             f"{total_iters!r}")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        # the ratio of this epoch's factor to the previous one's
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor
                                + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    """The cosine half-wave of SGDR (Loshchilov & Hutter 2017, eq. 5) without restarts:
    lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2, computed recursively
    from the current lr as PyTorch does; past T_max the cosine continues (rising again)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, period, low = self.last_epoch, self.T_max, self.eta_min
        current = self._current_lrs()
        if t == 0 or self._initial:
            return current
        if (t - 1 - period) % (2 * period) == 0:  # leaving the trough: the step up
            return [lr + (base - low) * (1 - math.cos(math.pi / period)) / 2
                    for lr, base in zip(current, self.base_lrs)]
        return [(1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
                * (lr - low) + low for lr in current]
