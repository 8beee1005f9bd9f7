"""Files a run writes: checkpoints, image grids, plots. Every file is written atomically."""

from .atomic import atomic_write
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .images import save_image_grid, save_points_plot
from .plots import save_loss_plot

__all__ = [
    "atomic_write", "CheckpointError", "load_checkpoint", "save_checkpoint", "save_image_grid",
    "save_points_plot", "save_loss_plot",
]
