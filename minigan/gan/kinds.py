"""Which trainer trains which kind of model: the one place that maps a config's `kind` to
its trainer class.

    make_trainer(config)        a new trainer of config.kind
    load_trainer(checkpoint)    a trainer restored from a checkpoint or run folder, of the
                                kind the checkpoint says
    resume_trainer(run)         the same, continuing to write into the run folder

Trainer (trainer.py) trains kind "gan"; CycleGANTrainer (cyclegan.py) builds on it and
trains kind "cyclegan". Both are plain classes: `Trainer(config)` builds a Trainer and
nothing else, so these functions are how code that handles every kind (the command line)
chooses.
"""

from __future__ import annotations

from .cyclegan import CycleGANTrainer
from .recipes import ConfigError, TrainConfig
from .trainer import Trainer, read_training_state

TRAINERS: dict[str, type[Trainer]] = {"gan": Trainer, "cyclegan": CycleGANTrainer}


def trainer_class(kind: str) -> type[Trainer]:
    """The trainer class of a config kind."""
    if kind not in TRAINERS:
        raise ConfigError(f"kind must be one of {', '.join(TRAINERS)}, got {kind!r}")
    return TRAINERS[kind]


def make_trainer(config: TrainConfig, device: str | None = None, out=None,
                 quiet: bool = False) -> Trainer:
    """A new trainer for `config`, of the class its kind needs."""
    return trainer_class(config.kind)(config, device=device, out=out, quiet=quiet)


def load_trainer(source, device: str | None = None, quiet: bool = True,
                 steps: int | None = None, out=None) -> Trainer:
    """A trainer restored from a checkpoint file or a run folder's newest checkpoint, of
    the checkpoint's kind. Nothing is written unless `out` is given."""
    state = read_training_state(source)
    return trainer_class(state["kind"]).from_state(state, device=device, quiet=quiet,
                                                   steps=steps, out=out)


def resume_trainer(run, device: str | None = None, quiet: bool = False,
                   steps: int | None = None) -> Trainer:
    """Continue the run in folder `run` (or a checkpoint file inside it), of any kind; see
    Trainer.resume."""
    state = read_training_state(run)
    return trainer_class(state["kind"]).resume(run, device=device, quiet=quiet, steps=steps,
                                               state=state)
