"""Optimizers and learning-rate schedules with torch.optim's names.

    optimizer.py     Adam, AdamW (amsgrad too), RMSprop, SGD over flat parameter buffers
    lr_scheduler.py  LambdaLR, StepLR, LinearLR, CosineAnnealingLR, ExponentialLR
"""

from . import lr_scheduler
from .optimizer import SGD, Adam, AdamW, Optimizer, RMSprop

__all__ = ["lr_scheduler", "Optimizer", "Adam", "AdamW", "RMSprop", "SGD"]
