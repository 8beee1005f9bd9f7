"""GANs: objectives, model recipes and the trainer.

    config = minigan.gan.recipe("mlp-ring8", steps=500)
    trainer = minigan.gan.Trainer(config, device="cpu", out="runs/ring8")
    trainer.fit()
    points = trainer.sample(1000)
"""

from . import objectives
from .models import build_models
from .recipes import RECIPES, ConfigError, TrainConfig, load_config_file, recipe
from .trainer import Trainer, TrainingDiverged

__all__ = [
    "objectives", "build_models", "RECIPES", "ConfigError", "TrainConfig", "load_config_file",
    "recipe", "Trainer", "TrainingDiverged",
]
