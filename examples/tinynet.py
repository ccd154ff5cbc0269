"""A small user network (13 layers: a MobileNet-style stem, an inverted-residual block with a depthwise conv
and ReLU6, a fire module with a channel concat, pools and a linear head) to bring to edgesplit as your own.

As a Python factory::

    edgesplit splits --net examples/tinynet.py:tinynet --input-shape 3,32,32
    make sim NET=examples/tinynet.py:tinynet INPUT_SHAPE=3,32,32

As ONNX (``torch.onnx.export``; the exporter keeps the module names, so the split table is the same)::

    .venv/bin/python examples/tinynet.py build/examples/tinynet.onnx
    edgesplit best --net build/examples/tinynet.onnx --link 2mbps
    make sim NET=build/examples/tinynet.onnx

The weights are a fixed-seed initialisation (the point is the engine and the costs, not the classes); pass a
state_dict with ``--weights`` for trained ones.
"""

from __future__ import annotations

import sys

import torch
from torch import nn


class InvertedResidual(nn.Module):
    def __init__(self, c: int, expand: int) -> None:
        super().__init__()
        h = c * expand
        self.conv = nn.Sequential(
            nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.conv(x)


class Fire(nn.Module):
    def __init__(self, c: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(c, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.e1(x), self.e3(x)], 1)


class TinyNet(nn.Module):
    input_shape = (3, 32, 32)

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.block = InvertedResidual(16, 4)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fire = Fire(16, 8, 16)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.fire(self.pool(self.block(self.stem(x))))
        return self.fc(torch.flatten(self.avg(x), 1))


def tinynet() -> nn.Module:
    """The factory edgesplit calls (``--net examples/tinynet.py:tinynet``)."""
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the folding is exercised
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def export(path: str) -> None:
    """Write the network as ONNX (opset of torch's exporter) to ``path``."""
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(tinynet(), (torch.zeros(1, *TinyNet.input_shape),), path, verbose=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/tinynet.py OUT.onnx")
    export(sys.argv[1])
