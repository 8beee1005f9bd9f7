"""torch.nn.utils's helpers, under the same names: `nn.utils.spectral_norm`,
`nn.utils.clip_grad_norm_`, ..."""

from .clip_grad import clip_grad_norm_, clip_grad_value_
from .spectral_norm import remove_spectral_norm, spectral_norm

__all__ = ["spectral_norm", "remove_spectral_norm", "clip_grad_norm_", "clip_grad_value_"]
