"""SqueezeNet 1.1 (Iandola et al. 2016) in torchvision's layout.

Keys (torchvision ``squeezenet1_1()``): ``features.0`` the 3x3 stride-2 stem conv (3->64), Fire modules at
``features.{3,4,6,7,9,10,11,12}`` with ``squeeze``, ``expand1x1``, ``expand3x3`` (all with biases) and the
parameter-free ReLUs ``squeeze_activation``, ``expand1x1_activation``, ``expand3x3_activation``;
``classifier.1`` the final 1x1 conv (512->classes). 1,235,496 parameters with 1000 classes.

The max-pools use ``ceil_mode=True`` (224 -> 111 -> 55 -> 27 -> 13).
"""

from __future__ import annotations

import torch
from torch import nn


class Fire(nn.Module):
    """1x1 squeeze + ReLU, then 1x1 and 3x3 expands (each + ReLU) concatenated along the channels."""

    def __init__(self, in_ch: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.in_channels = in_ch
        self.squeeze = nn.Conv2d(in_ch, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        e1 = self.expand1x1_activation(self.expand1x1(x))
        e3 = self.expand3x3_activation(self.expand3x3(x))
        return torch.cat([e1, e3], 1)


class SqueezeNet11(nn.Module):
    """torchvision's ``squeezenet1_1()``: 224x224 input, ``num_classes`` outputs, classifier dropout 0.5."""

    net_name = "squeezenet1_1"

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Conv2d(512, num_classes, kernel_size=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.classifier(x)
        return torch.flatten(x, 1)
