"""The networks edgesplit splits, with torchvision-compatible state_dict keys, and their registry.

``get_net(name, weights=None)`` for ``alexnet, vgg16, resnet50, resnet20, resnet56, digits, mobilenetv2,
squeezenet1_1, resnet18, mobilenetv2_cifar``. Nothing is downloaded. Default weights:

* ``alexnet``, ``vgg16``, ``resnet50``, ``mobilenetv2``, ``squeezenet1_1``, ``resnet18``: fixed-seed He
  initialisation (:func:`he_init_`): every conv and linear weight ``~ N(0, 2 / fan_in)`` (``kaiming_normal_``,
  fan_in, ReLU gain) drawn from one ``torch.Generator`` seeded with 0 in ``named_modules()`` order; biases 0;
  BatchNorm gamma 1, beta 0, running mean 0, running variance 1. They give meaningful shapes, costs and value
  ranges, not meaningful classes; pass a torchvision weight file for those.
* ``resnet20``, ``resnet56``: the shared pretrained CIFAR-10 checkpoints (``models/resnet{20,56}-cifar10.th``
  in the data folder; see :mod:`golden.data`).
* ``digits``: trained on first use (a few seconds, deterministic) and cached under ``build/models/``.
* ``mobilenetv2_cifar``: the checkpoint shipped in the package, ``golden/nets/checkpoints/mobilenetv2_cifar.pt``
  (trained by ``edgesplit train``; recipe, time and accuracy in ``mobilenetv2_cifar.md`` beside it). Its width
  multiplier is read from the weights' shapes, so checkpoints of other widths load too (``weights=path``).

``weights`` may be a file path (``torch.save``d state_dict, or a dict holding one under ``state_dict``/
``model_state_dict``/``model``; a ``module.`` prefix is stripped) or a state_dict. Keys that do not match
raise :class:`golden.errors.UserError` naming the first missing and the first unexpected key.
``num_batches_tracked`` buffers are optional in both directions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from golden.errors import UserError
from golden.nets.alexnet import AlexNet
from golden.nets.cifar_mobilenetv2 import CifarMobileNetV2, width_of_state_dict
from golden.nets.cifar_resnet import CifarResNet
from golden.nets.digits import DigitsNet, digits_state_dict
from golden.nets.mobilenetv2 import MobileNetV2
from golden.nets.resnet import ResNet18, ResNet50
from golden.nets.squeezenet import SqueezeNet11
from golden.nets.vgg import VGG16

NET_NAMES: tuple[str, ...] = (
    "alexnet",
    "vgg16",
    "resnet50",
    "resnet20",
    "resnet56",
    "digits",
    "mobilenetv2",
    "squeezenet1_1",
    "resnet18",
    "mobilenetv2_cifar",
)
HE_SEED = 0
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


@dataclass(frozen=True)
class NetInfo:
    """What a network takes: input shape (C, H, W), class count, data set, and its default weights."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    dataset: str  # "imagenet" (scikit-image photos), "cifar10" or "digits"
    default_weights: str


NET_INFO: dict[str, NetInfo] = {
    "alexnet": NetInfo("alexnet", (3, 224, 224), 1000, "imagenet", "He init, seed 0"),
    "vgg16": NetInfo("vgg16", (3, 224, 224), 1000, "imagenet", "He init, seed 0"),
    "resnet50": NetInfo("resnet50", (3, 224, 224), 1000, "imagenet", "He init, seed 0"),
    "resnet20": NetInfo("resnet20", (3, 32, 32), 10, "cifar10", "models/resnet20-cifar10.th"),
    "resnet56": NetInfo("resnet56", (3, 32, 32), 10, "cifar10", "models/resnet56-cifar10.th"),
    "digits": NetInfo("digits", (1, 16, 16), 10, "digits", "trained, cached in build/models/"),
    "mobilenetv2": NetInfo("mobilenetv2", (3, 224, 224), 1000, "imagenet", "He init, seed 0"),
    "squeezenet1_1": NetInfo("squeezenet1_1", (3, 224, 224), 1000, "imagenet", "He init, seed 0"),
    "resnet18": NetInfo("resnet18", (3, 224, 224), 1000, "imagenet", "He init, seed 0"),
    "mobilenetv2_cifar": NetInfo(
        "mobilenetv2_cifar", (3, 32, 32), 10, "cifar10", "golden/nets/checkpoints/mobilenetv2_cifar.pt (trained)"
    ),
}


def check_net_name(name: str) -> str:
    """Return ``name`` if it is a known network, else raise UserError naming the allowed ones."""
    if name not in NET_INFO:
        raise UserError(f"unknown network {name!r}; allowed: {', '.join(NET_NAMES)}")
    return name


def build_net(name: str) -> nn.Module:
    """The architecture of network ``name`` with PyTorch's default initialisation (no weights loaded).

    Cheap under ``with torch.device("meta"):`` (shape inference without memory).
    """
    check_net_name(name)
    if name == "alexnet":
        return AlexNet()
    if name == "vgg16":
        return VGG16()
    if name == "resnet50":
        return ResNet50()
    if name == "resnet20":
        return CifarResNet(20)
    if name == "resnet56":
        return CifarResNet(56)
    if name == "mobilenetv2":
        return MobileNetV2()
    if name == "squeezenet1_1":
        return SqueezeNet11()
    if name == "resnet18":
        return ResNet18()
    if name == "mobilenetv2_cifar":
        return CifarMobileNetV2()
    return DigitsNet()


def net_name_of(net: nn.Module) -> str:
    """The registry name of a network built here (its ``net_name`` attribute)."""
    name = getattr(net, "net_name", None)
    if name not in NET_INFO:
        raise UserError(f"module {type(net).__name__} is not one of the networks {', '.join(NET_NAMES)}")
    return str(name)


def he_init_(net: nn.Module, seed: int = HE_SEED) -> nn.Module:
    """Fixed-seed He initialisation in place (see the module docstring); returns ``net``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in net.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return net


def read_state_dict(weights: str | os.PathLike | Mapping) -> dict[str, torch.Tensor]:
    """A state_dict from a file or a mapping: unwraps ``state_dict``/``model_state_dict``/``model``,
    strips a ``module.`` prefix; UserError for an unreadable file or non-tensor values."""
    if isinstance(weights, (str, os.PathLike)):
        p = Path(weights)
        if not p.is_file():
            raise UserError(f"weight file {p} not found")
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UserError(f"cannot read weight file {p} as a torch state_dict: {e}") from e
        what = str(p)
    elif isinstance(weights, Mapping):
        obj, what = weights, "the given state_dict"
    else:
        raise UserError(f"weights must be a file path or a state_dict, got {type(weights).__name__}")
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise UserError(f"{what} does not hold a state_dict")
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise UserError(f"{what}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k[len("module.") :] if k.startswith("module.") else k] = v
    return out


def _optional(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def load_weights(net: nn.Module, weights: str | os.PathLike | Mapping) -> nn.Module:
    """Load ``weights`` into ``net`` (in place, returns it); UserError on key or shape mismatch."""
    sd = read_state_dict(weights)
    expected = net.state_dict()
    missing = [k for k in expected if k not in sd and not _optional(k)]
    unexpected = [k for k in sd if k not in expected and not _optional(k)]
    name = getattr(net, "net_name", type(net).__name__)
    if missing or unexpected:
        raise UserError(
            f"weights do not match network {name}: first missing key "
            f"{missing[0] if missing else None!r}, first unexpected key "
            f"{unexpected[0] if unexpected else None!r} "
            f"({len(missing)} missing, {len(unexpected)} unexpected)"
        )
    for k, v in sd.items():
        if k in expected and tuple(v.shape) != tuple(expected[k].shape):
            raise UserError(
                f"weights do not match network {name}: {k!r} has shape {tuple(v.shape)}, "
                f"expected {tuple(expected[k].shape)}"
            )
    net.load_state_dict({k: v for k, v in sd.items() if k in expected}, strict=False)
    return net


def get_net(
    name: str, weights: str | os.PathLike | Mapping | None = None, data: str | None = None
) -> nn.Module:
    """Network ``name`` in eval mode with ``weights`` (default: see the module docstring).

    ``data`` is the shared data folder for the CIFAR checkpoints (else env ``EDGESPLIT_DATA``, else
    ``../shared/data``).
    """
    check_net_name(name)
    if name == "mobilenetv2_cifar":
        return _get_cifar_mobilenetv2(weights)
    net = build_net(name)
    if weights is None:
        if name in ("resnet20", "resnet56"):
            from golden.data import checkpoint_path

            weights = checkpoint_path(f"{name}-cifar10.th", data)
        elif name == "digits":
            weights = digits_state_dict()
        else:
            he_init_(net)
    if weights is not None:
        load_weights(net, weights)
    return net.eval()


def cifar_mobilenetv2_checkpoint() -> Path:
    """The shipped ``mobilenetv2_cifar`` checkpoint; UserError if it is missing from the installation."""
    p = CHECKPOINT_DIR / "mobilenetv2_cifar.pt"
    if not p.is_file():
        raise UserError(f"the mobilenetv2_cifar checkpoint {p} is missing; reinstall, or pass weights")
    return p


def _get_cifar_mobilenetv2(weights: str | os.PathLike | Mapping | None) -> nn.Module:
    """``mobilenetv2_cifar`` with ``weights`` (default: the shipped checkpoint), at the weights' width."""
    sd = read_state_dict(cifar_mobilenetv2_checkpoint() if weights is None else weights)
    net = CifarMobileNetV2(width_of_state_dict(sd))
    return load_weights(net, sd).eval()


def predict(net: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Float32 class predictions (argmax of the logits) for ``x`` [N, C, H, W], in batches."""
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[i : i + batch_size]), dtype=torch.float32)
            out.append(net(xb).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def top1(net: nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray, batch_size: int = 500) -> float:
    """Float32 top-1 accuracy of ``net`` on (``x``, ``y``)."""
    return float(np.mean(predict(net, x, batch_size) == np.asarray(y)))


__all__ = [
    "NET_NAMES",
    "NET_INFO",
    "NetInfo",
    "AlexNet",
    "VGG16",
    "ResNet50",
    "ResNet18",
    "MobileNetV2",
    "SqueezeNet11",
    "CifarMobileNetV2",
    "CifarResNet",
    "DigitsNet",
    "build_net",
    "check_net_name",
    "get_net",
    "he_init_",
    "load_weights",
    "net_name_of",
    "predict",
    "read_state_dict",
    "top1",
]
