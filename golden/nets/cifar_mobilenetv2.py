"""MobileNetV2 for CIFAR-10 (32x32 input, 10 classes): the classes of :mod:`golden.nets.mobilenetv2` with
strides adapted to the small input.

The one change from the ImageNet network is the stem: ``features.0`` has stride 1 instead of 2, so the
maps are 32x32 through the stem and the 16-channel block, then 16x16 (24 channels), 8x8 (32), 4x4 (64,
96) and 2x2 (160, 320, and ``features.18``): a total downsampling of 16 instead of 32. Keeping the
24-channel stage at stride 1 as well (downsampling 8, another common CIFAR variant) triples the cost per
image (28.0 M instead of 7.8 M multiply-accumulates at width 0.5) and measured 3x slower to train on this
project's 2-core machines, too slow for the training budget of ``edgesplit train``. Everything else (module
structure, state_dict keys, ``classifier.{0,1}``) is as in ``mobilenetv2``, so the same code paths serve
both. A width multiplier scales the channels; ``features.18`` keeps 1280 channels below width 1.

Width 0.5 (:data:`DEFAULT_WIDTH`, the shipped checkpoint's) has 700,490 parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from golden.errors import UserError
from golden.nets.mobilenetv2 import IMAGENET_SETTING, MobileNetV2, make_divisible

CIFAR_SETTING: tuple[tuple[int, int, int, int], ...] = IMAGENET_SETTING
STEM_STRIDE = 1
LAST_CHANNEL = 1280

# the width of the shipped checkpoint (golden/nets/checkpoints/mobilenetv2_cifar.pt) and of build_net
DEFAULT_WIDTH = 0.5


class CifarMobileNetV2(MobileNetV2):
    """MobileNetV2 for 32x32 input: stem stride 1, ``width_mult`` channels, ``num_classes`` outputs.

    ``dropout`` is ``classifier.0``'s rate.
    """

    net_name = "mobilenetv2_cifar"

    def __init__(self, width_mult: float = DEFAULT_WIDTH, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__(
            num_classes=num_classes,
            width_mult=width_mult,
            setting=CIFAR_SETTING,
            stem_stride=STEM_STRIDE,
            last_channel=LAST_CHANNEL,
            dropout=dropout,
        )


def channel_signature(width_mult: float) -> tuple[int, ...]:
    """Output channels of the stem, of each of the 17 blocks and of ``features.18`` at ``width_mult``."""
    sig = [make_divisible(32 * width_mult)]
    for _, c, n, _ in CIFAR_SETTING:
        sig += [make_divisible(c * width_mult)] * n
    return (*sig, make_divisible(LAST_CHANNEL * max(1.0, width_mult)))


def width_of_state_dict(sd: Mapping[str, torch.Tensor]) -> float:
    """A width multiplier whose network has the channel counts of the state_dict ``sd``.

    Looks at the stem, the 17 projection convs and ``features.18``; widths that round to the same channels
    give the same network: the first match among the multiples of 1/4, then of 1/20, then of 1/80 (between
    0.05 and 4) is returned. UserError when ``sd`` is not a CIFAR MobileNetV2 of any width.
    """
    keys = ["features.0.0.weight"]
    i = 1
    for t, _, n, _ in CIFAR_SETTING:
        for _ in range(n):
            keys.append(f"features.{i}.conv.{1 if t == 1 else 2}.weight")
            i += 1
    keys.append(f"features.{i}.0.weight")
    missing = [k for k in keys if k not in sd]
    if missing:
        raise UserError(f"weights are not a mobilenetv2_cifar state_dict: no key {missing[0]!r}")
    sig = tuple(int(sd[k].shape[0]) for k in keys)
    for step in (4, 20, 80):
        for k in range(1, 4 * step + 1):
            if k / step >= 0.05 and channel_signature(k / step) == sig:
                return k / step
    raise UserError(f"weights are not a mobilenetv2_cifar state_dict of any width (channels {sig[:4]}...)")
