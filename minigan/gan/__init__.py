"""GANs: objectives, model recipes and the trainer.

    config = minigan.gan.recipe("mlp-ring8", steps=500)
    trainer = minigan.gan.Trainer(config, device="cpu", out="runs/ring8")
    trainer.fit()
    points = trainer.sample(1000)

    # a recipe of kind "cyclegan" is trained by a CycleGANTrainer (two generators, two
    # critics); make_trainer(config) picks the trainer class of any kind
    cyclegan = minigan.gan.make_trainer(minigan.gan.recipe("cyclegan-mnist-inverted"))
    cyclegan.fit()
    inverted = cyclegan.translate(images, "a2b")  # (N, C, H, W) in [-1, 1]
"""

from . import objectives
from .models import build_models
from .recipes import RECIPES, ConfigError, TrainConfig, load_config_file, recipe
from .trainer import Trainer, TrainingDiverged
from .cyclegan import CycleGANTrainer, HistoryPool
from .kinds import load_trainer, make_trainer, resume_trainer, trainer_class

__all__ = [
    "objectives", "build_models", "RECIPES", "ConfigError", "TrainConfig", "load_config_file",
    "recipe", "Trainer", "TrainingDiverged", "CycleGANTrainer", "HistoryPool", "load_trainer",
    "make_trainer", "resume_trainer", "trainer_class",
]
