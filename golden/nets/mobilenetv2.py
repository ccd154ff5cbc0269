"""MobileNetV2 (Sandler et al. 2018) in torchvision's layout, and the building blocks the CIFAR variant reuses.

Keys (torchvision ``mobilenet_v2()``): ``features.0.{0,1}`` the stem (conv 3x3 stride 2 + BN + ReLU6),
``features.1..17`` the inverted residual blocks, each with its body in ``.conv``: an optional 1x1 expansion
``conv.0.{0,1}`` (absent in ``features.1``, whose expansion factor is 1), the depthwise 3x3
``conv.<i>.{0,1}``, and the linear 1x1 projection ``conv.<i+1>`` (``nn.Conv2d``) and ``conv.<i+2>``
(``nn.BatchNorm2d``); ``features.18.{0,1}`` the 1x1 conv to 1280 channels; ``classifier.0`` Dropout(0.2),
``classifier.1`` Linear. Width 1.0 with 1000 classes has 3,504,872 parameters.

Only the layer types edgesplit's tracer handles appear in ``forward``: Conv2d (depthwise through
``groups``), BatchNorm2d, ReLU6, the residual ``+``, ``adaptive_avg_pool2d(x, (1, 1))``, ``torch.flatten``,
Dropout and Linear.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# (expansion t, output channels c, repeats n, stride of the first block s), as in the paper's Table 2
IMAGENET_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (at least ``min_value``), never more than 10% down.

    The rounding rule of the reference implementation, so that width multipliers give the usual channel counts.
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU6(nn.Sequential):
    """``Conv2d(bias=False)``, ``BatchNorm2d``, ``ReLU6`` as a Sequential (keys ``.0``, ``.1``); 'same' padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(),
        )


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped for ``expand_ratio`` 1), 3x3 depthwise (the stride), linear 1x1 projection.

    The input is added to the body's output when the stride is 1 and the channel count does not change.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        self.stride = stride
        hidden = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, kernel_size=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's ``mobilenet_v2()`` (224x224 ImageNet input by default), parameterised for other inputs.

    ``width_mult`` scales every channel count (rounded by :func:`make_divisible`; the last conv keeps at least
    ``last_channel``); ``stem_stride`` is the stride of ``features.0``; ``setting`` is the table of
    (t, c, n, s) rows (default :data:`IMAGENET_SETTING`); ``dropout`` is ``classifier.0``'s rate.
    """

    net_name = "mobilenetv2"

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        setting: Sequence[Sequence[int]] = IMAGENET_SETTING,
        stem_stride: int = 2,
        last_channel: int = 1280,
        dropout: float = 0.2,
        round_nearest: int = 8,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width multiplier must be positive, got {width_mult}")
        self.width_mult = width_mult
        in_ch = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvBNReLU6(3, in_ch, kernel_size=3, stride=stem_stride)]
        for t, c, n, s in setting:
            out_ch = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        features.append(ConvBNReLU6(in_ch, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def reference_init_(net: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """The reference implementation's training initialisation, in place: conv weights ``kaiming_normal_``
    (fan_out), Linear ``N(0, 0.01)``, biases 0, BatchNorm gamma 1 / beta 0. Returns ``net``."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01, generator=generator)
                m.bias.zero_()
    return net
