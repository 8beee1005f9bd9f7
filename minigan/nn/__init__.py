"""Neural-network building blocks with torch.nn's names: Module, Parameter, layers, init.

    module.py      Module, Parameter, Sequential: registration, state_dict, train/eval, to
    container.py   ModuleList, ModuleDict
    linear.py      Linear, Conv2d, ConvTranspose2d, Maxout (PyTorch's default init)
    embedding.py   Embedding (a learned vector per label)
    norm.py        BatchNorm1d, BatchNorm2d, SyncBatchNorm, InstanceNorm2d, LayerNorm,
                   GroupNorm
    activation.py  ReLU, LeakyReLU, Tanh, Sigmoid, ELU, GELU, SiLU, Softplus, PReLU, Softmax,
                   LogSoftmax, Dropout, Dropout2d
    pooling.py     AvgPool2d, MaxPool2d, AdaptiveAvgPool2d
    shape.py       Identity, Flatten, Unflatten, Reshape, ReflectionPad2d, ReplicationPad2d,
                   ZeroPad2d, Upsample, UpsamplingNearest2d, UpsamplingBilinear2d,
                   PixelShuffle, PixelUnshuffle
    loss.py        BCEWithLogitsLoss, BCELoss, MSELoss, L1Loss, CrossEntropyLoss, NLLLoss
    init.py        normal_, uniform_, xavier_*, kaiming_*, ... (in place, seeded)
    utils.py       spectral_norm, remove_spectral_norm (spectral_norm.py), clip_grad_norm_,
                   clip_grad_value_ (clip_grad.py)
"""

import sys

from .. import functional
from . import init, utils
from .activation import Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from .embedding import Embedding
from .linear import Conv2d, ConvTranspose2d, Linear, Maxout
from .module import Module, Parameter, Sequential
from .norm import BatchNorm1d, BatchNorm2d, InstanceNorm2d, SyncBatchNorm
from .shape import Flatten, Identity, ReflectionPad2d, Reshape, Unflatten, Upsample, ZeroPad2d
from .activation import ELU, GELU, Dropout2d, LogSoftmax, PReLU, SiLU, Softmax, Softplus
from .container import ModuleDict, ModuleList
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .norm import GroupNorm, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .shape import (PixelShuffle, PixelUnshuffle, ReplicationPad2d, UpsamplingBilinear2d,
                    UpsamplingNearest2d)

# `import minigan.nn.functional as F` (torch's spelling) names the same module
sys.modules[__name__ + ".functional"] = functional

__all__ = [
    "functional", "init", "utils", "Module", "Parameter", "Sequential", "Linear", "Conv2d",
    "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "InstanceNorm2d", "ReLU", "LeakyReLU",
    "Tanh", "Sigmoid", "Dropout", "Identity", "Flatten", "Unflatten", "Reshape",
    "ReflectionPad2d", "ZeroPad2d", "Upsample",
    "ModuleList", "ModuleDict",
    "ELU", "GELU", "SiLU", "Softplus", "PReLU", "Dropout2d", "Softmax", "LogSoftmax",
    "LayerNorm", "GroupNorm",
    "AvgPool2d", "MaxPool2d", "AdaptiveAvgPool2d",
    "ReplicationPad2d", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle",
    "PixelUnshuffle",
    "BCEWithLogitsLoss", "BCELoss", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss",
    "Maxout",
    "SyncBatchNorm",
    "Embedding",
]
