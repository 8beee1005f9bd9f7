"""torch.utils's shape: `minigan.utils.data` holds Dataset, TensorDataset and DataLoader."""

from . import data

__all__ = ["data"]
