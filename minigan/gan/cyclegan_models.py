"""CycleGAN's networks: the ResNet generator and the PatchGAN discriminator.

After Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", appendix 7.2, and the official code (junyanz/pytorch-CycleGAN-and-
pix2pix, models/networks.py: ResnetGenerator, ResnetBlock, NLayerDiscriminator, init_weights).
The architecture follows that file layer for layer; the defaults there are sized for
256x256 photographs (ngf = ndf = 64, 9 residual blocks, a 3-layer 70x70 PatchGAN), and the
`cyclegan-*` recipes pick smaller ones for 28x28 digits on a CPU.

Normalisation is InstanceNorm2d without affine parameters or running statistics (the
official `get_norm_layer('instance')`), so a convolution followed by it keeps a bias, as
the official code does (`use_bias = norm_layer == InstanceNorm2d`): the norm subtracts it
again, but the weights then match the official state_dict key for key.
"""

from __future__ import annotations

from .. import nn
from ..autograd import Tensor
from ..random import Generator

UPSAMPLE_MODES = ("transpose", "resize")


def cyclegan_init(module: nn.Module, generator: Generator) -> None:
    """Official init_weights(init_type='normal', init_gain=0.02): every convolution's weight
    from N(0, 0.02), biases 0 (the instance norms have no weights)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02, generator=generator)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class ResidualBlock(nn.Module):
    """x + [reflect-pad 1, conv 3x3, IN, ReLU, reflect-pad 1, conv 3x3, IN](x).

    The pad is 1 because the 3x3 kernel reaches 1 pixel past each side: this keeps H and W.
    (Some ports pass the channel count as the pad width, a known bug that crops or crashes.)
    """

    def __init__(self, channels: int, generator: Generator | None = None):
        super().__init__()
        self.channels = channels
        half_width = 3 // 2
        self.body = nn.Sequential(
            nn.ReflectionPad2d(half_width),
            nn.Conv2d(channels, channels, 3, generator=generator),
            nn.InstanceNorm2d(channels),
            nn.ReLU(),
            nn.ReflectionPad2d(half_width),
            nn.Conv2d(channels, channels, 3, generator=generator),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)

    def extra_repr(self) -> str:
        return str(self.channels)


def _upsample(in_channels: int, out_channels: int, mode: str, generator) -> list:
    """Double H and W. "transpose": the official ConvTranspose2d(3, stride 2, padding 1,
    output_padding 1). "resize": nearest-neighbour x2, then reflect-pad 1 and a 3x3 conv,
    which avoids the checkerboard pattern of strided transposed convolutions (Odena et al.
    2016, "Deconvolution and Checkerboard Artifacts", Distill)."""
    if mode == "transpose":
        return [nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1,
                                   output_padding=1, generator=generator)]
    if mode == "resize":
        return [nn.Upsample(scale_factor=2), nn.ReflectionPad2d(1),
                nn.Conv2d(in_channels, out_channels, 3, generator=generator)]
    raise ValueError(f"upsample mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")


def resnet_generator(in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9,
                     upsample: str = "transpose", generator: Generator | None = None
                     ) -> nn.Sequential:
    """The official ResnetGenerator (Johnson et al. 2016's transformation network):

        reflect-pad 3, conv 7x7 (ngf), IN, ReLU                       H x W
        conv 3x3 stride 2 (2 ngf), IN, ReLU; again (4 ngf)            H/4 x W/4
        n_blocks ResidualBlock(4 ngf)
        upsample (2 ngf), IN, ReLU; again (ngf)                       H x W
        reflect-pad 3, conv 7x7 (out_channels), tanh

    H and W must be multiples of 4 (28 -> 14 -> 7 -> 14 -> 28)."""
    parts = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, generator=generator),
             nn.InstanceNorm2d(ngf), nn.ReLU()]
    width = ngf
    for _ in range(2):
        parts += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, generator=generator),
                  nn.InstanceNorm2d(2 * width), nn.ReLU()]
        width *= 2
    parts += [ResidualBlock(width, generator=generator) for _ in range(n_blocks)]
    for _ in range(2):
        parts += _upsample(width, width // 2, upsample, generator)
        parts += [nn.InstanceNorm2d(width // 2), nn.ReLU()]
        width //= 2
    parts += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7, generator=generator),
              nn.Tanh()]
    return nn.Sequential(*parts)


def patch_discriminator(in_channels: int, ndf: int = 64, n_layers: int = 3,
                        generator: Generator | None = None) -> nn.Sequential:
    """The official NLayerDiscriminator (PatchGAN, Isola et al. 2017): one real/fake score
    per overlapping patch, no sigmoid (the least-squares loss takes the raw score).

        conv 4x4 stride 2 (ndf), LeakyReLU 0.2
        (n_layers - 1) x [conv 4x4 stride 2 (ndf * 2^k, at most 8 ndf), IN, LeakyReLU 0.2]
        conv 4x4 stride 1 (ndf * 2^n_layers, at most 8 ndf), IN, LeakyReLU 0.2
        conv 4x4 stride 1 (1)

    The patch (receptive field) is 70x70 for n_layers=3, 34x34 for 2, 16x16 for 1. On a
    28x28 image n_layers=2 gives a 5x5 grid of scores."""
    if n_layers < 1:
        raise ValueError(f"patch_discriminator: n_layers must be >= 1, got {n_layers}")
    parts = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1, generator=generator),
             nn.LeakyReLU(0.2)]
    width = ndf
    for k in range(1, n_layers + 1):
        stride = 2 if k < n_layers else 1
        out = ndf * min(2**k, 8)
        parts += [nn.Conv2d(width, out, 4, stride=stride, padding=1, generator=generator),
                  nn.InstanceNorm2d(out), nn.LeakyReLU(0.2)]
        width = out
    parts.append(nn.Conv2d(width, 1, 4, stride=1, padding=1, generator=generator))
    return nn.Sequential(*parts)
