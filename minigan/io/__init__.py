"""Files a run writes: checkpoints, image grids, plots, and weights in the safetensors
format (weights.py: save / load). Every file is written atomically."""

from .atomic import atomic_write
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .images import save_image_grid, save_points_plot
from .plots import save_loss_plot
from .weights import load, load_metadata, save

__all__ = [
    "atomic_write", "CheckpointError", "load_checkpoint", "save_checkpoint", "save_image_grid",
    "save_points_plot", "save_loss_plot", "save", "load", "load_metadata",
]
