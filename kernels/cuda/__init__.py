"""CUDA kernels: same names, signatures and semantics as kernels/reference.

Numba CUDA kernels (they also run on Numba's CUDA simulator, on NumPy arrays) for the work
that is not a matrix product: the im2col / col2im around cuBLAS GEMMs, fused bias +
activation and its gradient, batch norm with fused statistics, BCE with logits, and the
optimizer updates in one launch. The device "cuda" merges these with the reference kernels
(which run on CuPy arrays) name by name. docs/cuda.md says how it all fits together.

Importing this package needs Numba, not a GPU: without a GPU or the simulator the kernels
raise a clear error when called. Set NUMBA_ENABLE_CUDASIM=1 before this package (or
numba.cuda) is first imported to use the simulator.
"""

from .activation import (
    activation,
    activation_grad,
    activation_grad_bias,
    bias_activation,
    linear_act,
    linear_grads,
)
from .conv import conv2d, conv2d_input_grad, conv2d_weight_grad
from .loss import bce_with_logits
from .norm import (
    batch_norm_act_backward,
    batch_norm_act_train,
    batch_norm_backward,
    batch_norm_eval,
    batch_norm_train,
)
from .optim import adam_update, rmsprop_update, sgd_update

__all__ = [
    "activation", "activation_grad", "activation_grad_bias", "bias_activation", "linear_act",
    "linear_grads",
    "conv2d", "conv2d_input_grad", "conv2d_weight_grad",
    "bce_with_logits",
    "batch_norm_train", "batch_norm_eval", "batch_norm_backward",
    "batch_norm_act_train", "batch_norm_act_backward",
    "adam_update", "rmsprop_update", "sgd_update",
]
