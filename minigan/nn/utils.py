"""torch.nn.utils's helpers, under the same names: `nn.utils.spectral_norm`, ..."""

from .spectral_norm import remove_spectral_norm, spectral_norm

__all__ = ["spectral_norm", "remove_spectral_norm"]
