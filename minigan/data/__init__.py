"""Datasets and a seeded loader: toy 2-D mixtures, a bundled 5,000-image MNIST subset, the
8x8 UCI digits, and readers for IDX files, image folders and .npz arrays."""

from .dataset import BUILTIN, Dataset, images_to_float, load_dataset
from .download import DownloadError, download
from .formats import DataFormatError, read_idx, read_idx_images, read_idx_labels
from .loader import Loader
from .mixtures import MIXTURES, Mixture, sample_mixture

__all__ = [
    "BUILTIN", "Dataset", "images_to_float", "load_dataset", "DownloadError", "download",
    "DataFormatError", "read_idx", "read_idx_images", "read_idx_labels", "Loader",
    "MIXTURES", "Mixture", "sample_mixture",
]
