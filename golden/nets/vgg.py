"""VGG-16 (configuration D, no batch norm) in torchvision's layout: ``features.N``, ``classifier.0/3/6``."""

from __future__ import annotations

import torch
from torch import nn

#: torchvision's configuration "D": conv output channels, "M" = 2x2 max-pool stride 2.
VGG16_CFG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG16(nn.Module):
    """torchvision's ``vgg16()``: 13 conv3x3 (pad 1) + ReLU, 5 max-pools, 3 FC layers; 224x224 input."""

    net_name = "vgg16"

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))
