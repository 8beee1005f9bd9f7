"""An exponential moving average (EMA) of the generator, to sample from instead of the live one.

After k updates with decay d the average is the bias-corrected

    average_k = shadow_k / (1 - d^k),   shadow_k = d shadow_{k-1} + (1 - d) w_k,  shadow_0 = 0,

that is sum_i (1 - d) d^(k-i) w_i / (1 - d^k): a weighted mean of the k weights seen so far,
whose weights sum to 1 from the first step on. This is Adam's correction of its moment
estimates (Kingma & Ba 2015, section 3). Without it (an average started at the initial
weights) a short run samples from a generator still pulled towards its random
initialisation: with d = 0.999, 1,200 steps leave e^-1.2 = 30% of the average on it.

Batch normalisation: the averaged weights need running statistics of their own. The live
generator's statistics describe the live weights' activations, not the average's, and an
average of them (`batch_norm="average"`) is only an approximation of the average's. The
default, `batch_norm="recompute"`, puts the averaged weights in and measures their batch-norm
statistics afresh with a few forward passes in training mode over fixed inputs (noise, and
for a conditional generator labels too), as a cumulative average over the batches
("precise BN", Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", section 3).
benchmarks/RESULTS.md compares the two on dcgan-mnist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from .. import nn
from ..autograd import Tensor, no_grad
from ..random import Generator

BATCH_NORM_MODES = ("recompute", "average")
# The recomputed statistics: 8 batches of 256 fixed noise vectors (2,048 samples) give a
# standard error of the mean of about 2% of a channel's std; a fixed seed makes sampling
# repeatable and leaves the training's random stream untouched.
RECOMPUTE_BATCHES = 8
RECOMPUTE_BATCH_SIZE = 256
RECOMPUTE_SEED = 20260

# make_input(generator, n): n inputs drawn from generator, as the module takes them: a Tensor
# (noise), or a tuple of Tensors passed as positional arguments (noise and labels)
MakeInput = Callable[[Generator, int], "Tensor | tuple"]


def _batch_norms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules()
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.track_running_stats]


def _averaged_entries(module: nn.Module, batch_norm: str) -> dict:
    """name -> Tensor of what is averaged: the parameters, and with batch_norm="average"
    the floating-point buffers too (running means and variances, not the batch counts)."""
    out = dict(module.named_parameters())
    if batch_norm == "average":
        out.update((name, b) for name, b in module.named_buffers()
                   if b is not None and np.issubdtype(b.array.dtype, np.floating))
    return out


class GeneratorEMA:
    """The bias-corrected EMA of a module's parameters (and, if asked, its BN statistics).

    `update(module)` after each optimizer step; `applied(module, make_input)` is a context in
    which the module holds the averaged weights (with batch-norm statistics that belong to
    them) and after which it holds its live state again, bit for bit.
    """

    def __init__(self, module: nn.Module, decay: float, batch_norm: str = "recompute"):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"GeneratorEMA: decay must be in (0, 1), got {decay}")
        if batch_norm not in BATCH_NORM_MODES:
            raise ValueError(f"GeneratorEMA: batch_norm must be one of "
                             f"{', '.join(BATCH_NORM_MODES)}, got {batch_norm!r}")
        self.decay = float(decay)
        self.batch_norm = batch_norm
        self.steps = 0
        self.shadow = {name: t.array * 0
                       for name, t in _averaged_entries(module, batch_norm).items()}

    def update(self, module: nn.Module) -> None:
        entries = _averaged_entries(module, self.batch_norm)
        for name, shadow in self.shadow.items():
            shadow *= self.decay
            shadow += (1.0 - self.decay) * entries[name].array
        self.steps += 1

    def averaged(self) -> dict:
        """The bias-corrected averages, name -> array; {} before the first update."""
        if self.steps == 0:
            return {}
        correction = 1.0 - self.decay ** self.steps  # float64: no underflow for any k
        return {name: (shadow / correction).astype(shadow.dtype)
                for name, shadow in self.shadow.items()}

    @contextmanager
    def applied(self, module: nn.Module, make_input: MakeInput) -> Iterator[nn.Module]:
        """The module with the averaged weights, restored to its live state on exit.
        make_input(generator, n) draws n inputs (noise; noise and labels for a conditional
        generator) for recomputing batch-norm statistics.
        Before the first update the live module is used as it is."""
        averaged = self.averaged()
        if not averaged:
            yield module
            return
        entries = _tensors(module)
        live = {name: t.array.copy() for name, t in entries.items()}
        was_training = module.training
        try:
            for name, value in averaged.items():
                entries[name].array[...] = value
            if self.batch_norm == "recompute":
                recompute_batch_norm_stats(module, make_input)
            yield module
        finally:
            for name, value in live.items():
                entries[name].array[...] = value
            module.train(was_training)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "steps": self.steps, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict, asarray=np.asarray) -> None:
        """Load a state_dict. The plain {name: weights} average that older checkpoints hold
        (parameters only, no bias correction) is taken as the average itself."""
        if "shadow" not in state:  # older checkpoints: shadow * 1 / (1 - d^1) == the average
            state = {"decay": self.decay, "steps": 1,
                     "shadow": {k: asarray(v) * (1.0 - self.decay) for k, v in state.items()}}
        if set(state["shadow"]) != set(self.shadow):
            missing = sorted(set(self.shadow) - set(state["shadow"]))
            unexpected = sorted(set(state["shadow"]) - set(self.shadow))
            raise ValueError(f"GeneratorEMA: the state does not match the model: missing "
                             f"{missing[:5]}, unexpected {unexpected[:5]}")
        self.decay = float(state["decay"])
        self.steps = int(state["steps"])
        self.shadow = {name: asarray(value).copy() for name, value in state["shadow"].items()}


@no_grad()
def recompute_batch_norm_stats(module: nn.Module,
                               make_input: MakeInput,
                               batches: int | None = None,
                               batch_size: int | None = None) -> None:
    """Replace every BatchNorm's running statistics by the cumulative average of its batch
    statistics over `batches` forward passes in training mode on fixed inputs
    (RECOMPUTE_BATCHES of RECOMPUTE_BATCH_SIZE by default)."""
    batches = RECOMPUTE_BATCHES if batches is None else batches
    batch_size = RECOMPUTE_BATCH_SIZE if batch_size is None else batch_size
    norms = _batch_norms(module)
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    was_training = module.training
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: every batch counts the same
        module.train()
        generator = Generator(RECOMPUTE_SEED)
        for _ in range(batches):
            inputs = make_input(generator, batch_size)
            module(*inputs) if isinstance(inputs, tuple) else module(inputs)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        module.train(was_training)


def _tensors(module: nn.Module) -> dict:
    """name -> the Tensor itself, for every parameter and buffer (what sampling may change)."""
    out = dict(module.named_parameters())
    out.update((name, b) for name, b in module.named_buffers() if b is not None)
    return out
