"""Neural-network building blocks with torch.nn's names: Module, Parameter, layers, init.

    module.py      Module, Parameter, Sequential: registration, state_dict, train/eval, to
    linear.py      Linear, Conv2d, ConvTranspose2d (PyTorch's default init)
    norm.py        BatchNorm1d, BatchNorm2d, InstanceNorm2d
    activation.py  ReLU, LeakyReLU, Tanh, Sigmoid, Dropout
    shape.py       Identity, Flatten, Unflatten, Reshape, ReflectionPad2d, ZeroPad2d, Upsample
    init.py        normal_, uniform_, xavier_*, kaiming_*, ... (in place, seeded)
"""

from .. import functional
from . import init
from .activation import Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from .linear import Conv2d, ConvTranspose2d, Linear
from .module import Module, Parameter, Sequential
from .norm import BatchNorm1d, BatchNorm2d, InstanceNorm2d
from .shape import Flatten, Identity, ReflectionPad2d, Reshape, Unflatten, Upsample, ZeroPad2d

__all__ = [
    "functional", "init", "Module", "Parameter", "Sequential", "Linear", "Conv2d",
    "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "InstanceNorm2d", "ReLU", "LeakyReLU",
    "Tanh", "Sigmoid", "Dropout", "Identity", "Flatten", "Unflatten", "Reshape",
    "ReflectionPad2d", "ZeroPad2d", "Upsample",
]
