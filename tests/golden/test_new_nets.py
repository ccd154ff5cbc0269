"""MobileNetV2, SqueezeNet 1.1, ResNet-18 and the CIFAR-10 MobileNetV2: torchvision keys and sizes, shapes,
tracing with torch.fx, He initialisation, weight loading."""

from __future__ import annotations

import operator

import pytest
import torch
from torch import nn

from golden import nets
from golden.errors import UserError
from golden.nets.cifar_mobilenetv2 import DEFAULT_WIDTH, CifarMobileNetV2, width_of_state_dict

IMAGENET_NEW = ("mobilenetv2", "squeezenet1_1", "resnet18")
NEW = (*IMAGENET_NEW, "mobilenetv2_cifar")

# the building blocks edgesplit's tracer handles
ALLOWED_MODULES = (
    nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Linear, nn.Dropout,
    nn.Flatten,
)
ALLOWED_FUNCTIONS = (torch.flatten, operator.add, torch.cat, nn.functional.adaptive_avg_pool2d)


def meta_net(name: str) -> nn.Module:
    with torch.device("meta"):
        return nets.build_net(name)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def shapes(name: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in meta_net(name).state_dict().items()}


# ---- parameter counts and keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, count",
    [("mobilenetv2", 3_504_872), ("squeezenet1_1", 1_235_496), ("resnet18", 11_689_512), ("resnet50", 25_557_032)],
)
def test_parameter_counts_match_torchvision(name, count):
    assert n_params(meta_net(name)) == count


def test_cifar_mobilenetv2_parameter_count():
    assert DEFAULT_WIDTH == 0.5
    assert n_params(meta_net("mobilenetv2_cifar")) == 700_490
    assert n_params(CifarMobileNetV2(1.0)) == 2_236_682  # width 1: 3,504,872 less the 1000-class head plus 10


def mobilenetv2_keys(blocks_t: list[int]) -> list[str]:
    """torchvision's mobilenet_v2 state_dict keys, written out from its structure (independent of our code)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    cbr = lambda p: [f"{p}.0.weight"] + [f"{p}.1.{b}" for b in bn]  # noqa: E731
    keys = cbr("features.0")
    for i, t in enumerate(blocks_t, start=1):
        j = 0
        if t != 1:
            keys += cbr(f"features.{i}.conv.0")
            j = 1
        keys += cbr(f"features.{i}.conv.{j}")
        keys += [f"features.{i}.conv.{j + 1}.weight"] + [f"features.{i}.conv.{j + 2}.{b}" for b in bn]
    keys += cbr(f"features.{len(blocks_t) + 1}")
    return keys + ["classifier.1.weight", "classifier.1.bias"]


@pytest.mark.parametrize("name", ["mobilenetv2", "mobilenetv2_cifar"])
def test_mobilenetv2_keys_match_torchvision(name):
    sd = meta_net(name).state_dict()
    assert list(sd) == mobilenetv2_keys([1] + [6] * 16)
    assert len(sd) == 314


def test_mobilenetv2_shapes():
    s = shapes("mobilenetv2")
    expected = {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.0.1.running_mean": (32,),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),  # depthwise, no expansion in the first block
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.1.conv.2.running_var": (16,),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),
        "features.2.conv.1.0.weight": (96, 1, 3, 3),
        "features.2.conv.2.weight": (24, 96, 1, 1),
        "features.14.conv.1.0.weight": (576, 1, 3, 3),
        "features.17.conv.0.0.weight": (960, 160, 1, 1),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.17.conv.3.bias": (320,),
        "features.18.0.weight": (1280, 320, 1, 1),
        "features.18.1.running_var": (1280,),
        "classifier.1.weight": (1000, 1280),
        "classifier.1.bias": (1000,),
    }
    assert {k: s[k] for k in expected} == expected
    net = meta_net("mobilenetv2")
    assert isinstance(net.classifier[0], nn.Dropout) and net.classifier[0].p == 0.2
    assert isinstance(net.features[3].conv[0][2], nn.ReLU6)
    assert [m.use_res_connect for m in net.features[1:18]] == [
        False, False, True, False, True, True, False, True, True, True, False, True, True, False, True, True, False
    ]


def test_cifar_mobilenetv2_shapes():
    s = shapes("mobilenetv2_cifar")
    expected = {
        "features.0.0.weight": (16, 3, 3, 3),
        "features.1.conv.1.weight": (8, 16, 1, 1),
        "features.2.conv.0.0.weight": (48, 8, 1, 1),
        "features.17.conv.2.weight": (160, 480, 1, 1),
        "features.18.0.weight": (1280, 160, 1, 1),
        "classifier.1.weight": (10, 1280),
    }
    assert {k: s[k] for k in expected} == expected
    net = meta_net("mobilenetv2_cifar")
    assert net.features[0][0].stride == (1, 1)
    assert [b.stride for b in net.features[1:18]].count(2) == 4  # 32 -> 16 -> 8 -> 4 -> 2


def test_squeezenet_keys_and_shapes_match_torchvision():
    s = shapes("squeezenet1_1")
    fires = (3, 4, 6, 7, 9, 10, 11, 12)
    expected_keys = ["features.0.weight", "features.0.bias"]
    expected_keys += [f"features.{i}.{c}.{w}" for i in fires for c in ("squeeze", "expand1x1", "expand3x3")
                      for w in ("weight", "bias")]
    expected_keys += ["classifier.1.weight", "classifier.1.bias"]
    assert list(s) == expected_keys
    expected = {
        "features.0.weight": (64, 3, 3, 3),
        "features.3.squeeze.weight": (16, 64, 1, 1),
        "features.3.expand1x1.weight": (64, 16, 1, 1),
        "features.3.expand3x3.weight": (64, 16, 3, 3),
        "features.4.squeeze.weight": (16, 128, 1, 1),
        "features.6.squeeze.weight": (32, 128, 1, 1),
        "features.7.expand1x1.bias": (128,),
        "features.9.squeeze.weight": (48, 256, 1, 1),
        "features.11.expand3x3.weight": (256, 64, 3, 3),
        "features.12.squeeze.weight": (64, 512, 1, 1),
        "features.12.expand3x3.bias": (256,),
        "classifier.1.weight": (1000, 512, 1, 1),
    }
    assert {k: s[k] for k in expected} == expected
    net = meta_net("squeezenet1_1")
    pools = [net.features[i] for i in (2, 5, 8)]
    assert all(isinstance(p, nn.MaxPool2d) and p.ceil_mode and p.kernel_size == 3 and p.stride == 2 for p in pools)
    fire = net.features[3]
    for a in ("squeeze_activation", "expand1x1_activation", "expand3x3_activation"):
        assert isinstance(getattr(fire, a), nn.ReLU)


def test_resnet18_keys_and_shapes_match_torchvision():
    s = shapes("resnet18")
    assert len(s) == 122  # 20 convs, 20 BN x 5, fc weight and bias
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.num_batches_tracked": (),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer1.1.bn2.running_mean": (64,),
        "layer2.0.conv1.weight": (128, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_var": (128,),
        "layer3.1.conv2.weight": (256, 256, 3, 3),
        "layer4.0.downsample.0.weight": (512, 256, 1, 1),
        "layer4.1.bn2.running_var": (512,),
        "fc.weight": (1000, 512),
        "fc.bias": (1000,),
    }
    assert {k: s[k] for k in expected} == expected
    assert not any(k.startswith("layer1.0.downsample") for k in s)
    assert not any(".conv3." in k for k in s)


def test_resnet50_unchanged():
    s = shapes("resnet50")
    assert len(s) == 320
    assert s["layer2.0.conv2.weight"] == (128, 128, 3, 3)
    assert s["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert s["fc.weight"] == (1000, 2048)


# ---- forward, tracing, registry -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NEW)
def test_registry_info_and_output_shape(name):
    info = nets.NET_INFO[name]
    assert name in nets.NET_NAMES and info.name == name
    if name in IMAGENET_NEW:
        assert (info.input_shape, info.num_classes, info.dataset) == ((3, 224, 224), 1000, "imagenet")
        assert info.default_weights == "He init, seed 0"
    else:
        assert (info.input_shape, info.num_classes, info.dataset) == ((3, 32, 32), 10, "cifar10")
    net = nets.build_net(name).eval()
    assert nets.net_name_of(net) == name
    with torch.no_grad():
        y = net(torch.randn(2, *info.input_shape))
    assert tuple(y.shape) == (2, info.num_classes)


@pytest.mark.parametrize("name", NEW)
def test_fx_traceable_with_allowed_blocks_only(name):
    net = nets.build_net(name).eval()
    gm = torch.fx.symbolic_trace(net)
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            assert isinstance(modules[node.target], ALLOWED_MODULES), (node.target, type(modules[node.target]))
        elif node.op == "call_function":
            assert node.target in ALLOWED_FUNCTIONS, node.target
        else:
            assert node.op in ("placeholder", "output"), node.op
    x = torch.randn(1, *nets.NET_INFO[name].input_shape)
    with torch.no_grad():
        assert torch.equal(gm(x), net(x))


@pytest.mark.parametrize("name", IMAGENET_NEW)
def test_he_init_is_deterministic(name):
    a, b = nets.get_net(name).state_dict(), nets.get_net(name).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    first_conv = next(k for k in a if a[k].ndim == 4)
    w = a[first_conv]
    assert abs(float(w.std()) - (2.0 / w[0].numel()) ** 0.5) < 0.2 * (2.0 / w[0].numel()) ** 0.5
    c = nets.he_init_(nets.build_net(name), seed=1).state_dict()
    assert not torch.equal(c[first_conv], w)


# ---- weight loading -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NEW)
def test_torchvision_format_state_dict_round_trips(name, tmp_path):
    """A file as torchvision/DataParallel writes it (``module.`` prefix, in a dict) loads exactly."""
    g = torch.Generator().manual_seed(3)
    sd = {
        k: (torch.randn(v.shape, generator=g).abs() if v.is_floating_point() else v.clone())
        for k, v in nets.build_net(name).state_dict().items()
    }
    p = tmp_path / "w.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, p)
    got = nets.get_net(name, weights=p).state_dict()
    assert set(got) == set(sd)
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    # the same from the mapping, without the num_batches_tracked buffers
    got2 = nets.get_net(name, weights={k: v for k, v in sd.items() if "num_batches" not in k}).state_dict()
    assert all(torch.equal(got2[k], sd[k]) for k in sd if "num_batches" not in k)


@pytest.mark.parametrize("name", IMAGENET_NEW)
def test_mismatched_weights_name_the_key(name):
    sd = nets.build_net(name).state_dict()
    first = next(iter(sd))
    with pytest.raises(UserError, match="first missing key"):
        nets.get_net(name, weights={k: v for k, v in sd.items() if k != first})
    bad = dict(sd)
    bad[first] = torch.zeros(1)
    with pytest.raises(UserError, match="has shape"):
        nets.get_net(name, weights=bad)


def test_cifar_mobilenetv2_width_comes_from_the_weights():
    for w in (0.25, 0.35, 0.75, 1.0):
        sd = CifarMobileNetV2(w).state_dict()
        assert width_of_state_dict(sd) == w
        net = nets.get_net("mobilenetv2_cifar", weights={k: v.half() for k, v in sd.items()})
        assert n_params(net) == n_params(CifarMobileNetV2(w))
        assert next(net.parameters()).dtype == torch.float32
    with pytest.raises(UserError, match="not a mobilenetv2_cifar"):
        nets.get_net("mobilenetv2_cifar", weights=nets.build_net("resnet20").state_dict())
    with pytest.raises(UserError, match="'classifier.1.weight' has shape"):  # same channels, 1000 classes
        nets.get_net("mobilenetv2_cifar", weights=nets.build_net("mobilenetv2").state_dict())


def test_shipped_cifar_mobilenetv2_checkpoint():
    p = nets.cifar_mobilenetv2_checkpoint()
    assert p.stat().st_size <= 2_000_000
    net = nets.get_net("mobilenetv2_cifar")
    assert n_params(net) == 700_490
    assert not net.training
    meta = torch.load(p, map_location="cpu", weights_only=True)
    assert meta["net"] == "mobilenetv2_cifar" and meta["width_mult"] == DEFAULT_WIDTH
    assert meta["top1"] >= 0.75 and meta["test_images"] == 10_000
