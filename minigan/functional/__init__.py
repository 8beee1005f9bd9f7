"""The differentiable ops, with torch.nn.functional's names and signatures.

Each op is a Function whose forward calls a kernel of the input's device and whose
backward is written in differentiable ops, so gradients of gradients work.
One file per concept: conv (linear, conv2d, conv_transpose2d), activation, embedding
(embedding, one_hot), norm (batch_norm, instance_norm, layer_norm, group_norm), loss,
pooling (avg, max, adaptive average), shape (padding, upsampling, pixel shuffle, dropout).
"""

from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
