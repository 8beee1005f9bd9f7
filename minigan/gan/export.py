"""A trained run's generator as a .safetensors file that PyTorch loads (`minigan export`).

The file holds the generator's state_dict with PyTorch's names and shapes, so the same
architecture written in PyTorch takes it with load_state_dict(strict=True) and draws the
same images. When the run keeps an EMA of the generator, the averaged weights are written,
with the batch-norm statistics that belong to them (what `minigan sample` draws from).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io import save
from .trainer import Trainer


def generator_state(trainer: Trainer) -> dict:
    """name -> array: the weights the trainer samples with (EMA ones when kept)."""
    G = trainer.generator
    if trainer.ema is None:
        return G.state_dict()
    was_training = G.training
    try:
        with trainer.ema.applied(G, trainer._ema_inputs) as averaged:
            return averaged.state_dict()
    finally:
        G.train(was_training)


def export_generator(trainer: Trainer, path) -> Path:
    """Write the generator to `path` (.safetensors); the header's metadata records the
    run's config, its step, and which weights these are."""
    if trainer.kind != "gan":
        raise ValueError(f"export: a {trainer.kind!r} run has more than one generator; "
                         "export writes the generator of a 'gan' run")
    metadata = {
        "format": "pt",  # what safetensors.torch writes: the arrays are PyTorch's tensors
        "minigan_config": json.dumps(trainer.config.to_dict()),
        "minigan_step": str(trainer.step_count),
        "minigan_weights": "ema" if trainer.ema is not None else "live",
    }
    save(generator_state(trainer), path, metadata=metadata)
    return Path(path)
