"""The networks: torchvision-compatible keys, weight loading and its errors, default weights, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden import nets
from golden.data import load_cifar10, load_digits
from golden.errors import UserError
from golden.nets.digits import digits_test_top1_cached, train_digits


def meta_net(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return nets.build_net(name)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---- architecture and keys -------------------------------------------------------------------------------


def test_alexnet_keys_and_size_match_torchvision():
    sd = meta_net("alexnet").state_dict()
    idx = {"features": (0, 3, 6, 8, 10), "classifier": (1, 4, 6)}
    expected = [f"{p}.{i}.{k}" for p, ii in idx.items() for i in ii for k in ("weight", "bias")]
    assert list(sd) == expected
    assert tuple(sd["features.0.weight"].shape) == (64, 3, 11, 11)
    assert tuple(sd["classifier.1.weight"].shape) == (4096, 9216)
    assert n_params(meta_net("alexnet")) == 61_100_840  # torchvision alexnet()


def test_vgg16_keys_and_size_match_torchvision():
    sd = meta_net("vgg16").state_dict()
    convs = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
    expected = [f"features.{i}.{k}" for i in convs for k in ("weight", "bias")]
    expected += [f"classifier.{i}.{k}" for i in (0, 3, 6) for k in ("weight", "bias")]
    assert list(sd) == expected
    assert tuple(sd["classifier.0.weight"].shape) == (4096, 25088)
    assert n_params(meta_net("vgg16")) == 138_357_544  # torchvision vgg16()


def test_resnet50_keys_and_size_match_torchvision():
    sd = meta_net("resnet50").state_dict()
    assert len(sd) == 320  # 53 conv weights, 53 BN x 5 buffers/params, fc weight and bias
    for k in (
        "conv1.weight",
        "bn1.num_batches_tracked",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.running_var",
        "layer3.5.bn3.weight",
        "layer4.2.conv3.weight",
        "fc.bias",
    ):
        assert k in sd
    assert tuple(sd["layer2.0.conv2.weight"].shape) == (128, 128, 3, 3)  # v1.5: stride on the 3x3
    assert nets.build_net("resnet50").layer2[0].conv2.stride == (2, 2)
    assert tuple(sd["fc.weight"].shape) == (1000, 2048)
    assert n_params(meta_net("resnet50")) == 25_557_032  # torchvision resnet50()


@pytest.mark.parametrize("name, blocks", [("resnet20", 3), ("resnet56", 9)])
def test_cifar_resnet_structure(name, blocks):
    net = meta_net(name)
    assert len(net.layer1) == len(net.layer2) == len(net.layer3) == blocks
    assert net.layer2[0].conv1.stride == (2, 2) and net.layer3[0].conv1.stride == (2, 2)
    assert not any(p for p in net.layer2[0].shortcut.parameters())  # option A: no parameters
    assert tuple(net.linear.weight.shape) == (10, 64)


@pytest.mark.parametrize("name", nets.NET_NAMES)
def test_forward_shape(name):
    info = nets.NET_INFO[name]
    y = meta_net(name)(torch.empty(2, *info.input_shape, device="meta"))
    assert tuple(y.shape) == (2, info.num_classes)


def test_option_a_shortcut_matches_reference_lambda():
    from golden.nets.cifar_resnet import ShortcutA

    x = torch.randn(2, 16, 9, 9)
    ref = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 32 // 4, 32 // 4), "constant", 0)
    assert torch.equal(ShortcutA(16, 32)(x), ref)


# ---- registry and weight loading --------------------------------------------------------------------------


def test_unknown_network_names_allowed():
    with pytest.raises(UserError) as e:
        nets.get_net("lenet")
    for n in nets.NET_NAMES:
        assert n in str(e.value)
    assert "lenet" in str(e.value)


def test_he_init_is_deterministic_and_he_scaled():
    a, b = nets.get_net("resnet50"), nets.get_net("resnet50")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    w = a.layer3[2].conv2.weight
    fan_in = w.shape[1] * w.shape[2] * w.shape[3]
    assert abs(float(w.detach().std()) / np.sqrt(2.0 / fan_in) - 1) < 0.02
    assert float(a.bn1.running_var.min()) == 1.0 and float(a.fc.bias.detach().abs().max()) == 0.0


def test_weight_file_round_trip_and_wrappers(tmp_path):
    src = nets.get_net("resnet20", weights=nets.he_init_(nets.build_net("resnet20"), seed=3).state_dict())
    sd = src.state_dict()
    p = tmp_path / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, p)
    loaded = nets.get_net("resnet20", weights=p)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, sd[k]), k
    assert not loaded.training


def test_key_mismatch_names_first_missing_and_unexpected(tmp_path):
    sd = nets.build_net("digits").state_dict()
    sd["features.3.kernel"] = sd.pop("features.3.weight")
    with pytest.raises(UserError) as e:
        nets.get_net("digits", weights=sd)
    assert "'features.3.weight'" in str(e.value) and "'features.3.kernel'" in str(e.value)
    p = tmp_path / "bad.pth"
    torch.save(sd, p)
    with pytest.raises(UserError, match="first missing key 'features.3.weight'"):
        nets.get_net("digits", weights=p)


def test_shape_mismatch_and_bad_files_raise_user_error(tmp_path):
    sd = nets.build_net("digits").state_dict()
    sd["classifier.2.weight"] = torch.zeros(11, 64)
    with pytest.raises(UserError, match="classifier.2.weight"):
        nets.get_net("digits", weights=sd)
    with pytest.raises(UserError, match="not found"):
        nets.get_net("digits", weights=tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="junk.pt"):
        nets.get_net("digits", weights=tmp_path / "junk.pt")


def test_alexnet_loads_torchvision_style_state_dict():
    sd = nets.he_init_(nets.build_net("alexnet"), seed=7).state_dict()
    net = nets.get_net("alexnet", weights=sd)
    assert torch.equal(net.features[10].weight, sd["features.10.weight"])


# ---- pretrained CIFAR ResNets ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet20", "resnet56"])
def test_shared_checkpoint_keys_load_exactly(shared_data, name):
    ck = torch.load(shared_data / "models" / f"{name}-cifar10.th", map_location="cpu", weights_only=False)
    raw = {k.removeprefix("module."): v for k, v in ck["state_dict"].items()}
    net = nets.get_net(name)
    sd = net.state_dict()
    assert set(raw) == {k for k in sd if not k.endswith("num_batches_tracked")}
    for k, v in raw.items():
        assert torch.equal(sd[k], v), k


def test_resnet20_float_top1_on_1000_test_images(shared_data):
    x, y = load_cifar10("test", 1000)
    assert np.bincount(y).tolist() == [100] * 10
    acc = nets.top1(nets.get_net("resnet20"), x, y)
    # 81.0% on all 10,000 (shared data README); this fixed subset (every 10th image) measures 79.5%
    assert abs(acc - 0.795) <= 0.01, acc


# The float32 top-1 of ResNet-20 and ResNet-56 on all 10,000 test images (0.810 and 0.832 +- 0.003) is checked
# by tests/golden/test_quantize.py::test_float_and_int16_top1_full_test_set, which needs that float run too.


# ---- digits -------------------------------------------------------------------------------------------


def test_digits_training_is_deterministic():
    a, acc_a = train_digits(epochs=2)
    b, acc_b = train_digits(epochs=2)
    assert acc_a == acc_b
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_digits_default_net_accuracy():
    net = nets.get_net("digits")
    x, y = load_digits("test")
    assert x.shape == (450, 1, 16, 16) and float(x.min()) >= -1 and float(x.max()) <= 1
    acc = nets.top1(net, x, y)
    assert acc >= 0.96, acc
    assert digits_test_top1_cached() == pytest.approx(acc, abs=1e-6)
