"""The split-point table: names, shapes, MACs, bytes, the layer list, and the edge/host modules."""

from __future__ import annotations

import pytest
import torch

from golden import nets, splits
from golden.errors import UserError
from golden.fixedpoint import BIAS_BITS


def meta_net(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return nets.build_net(name)


def test_split_names():
    assert splits.split_names("alexnet") == (
        "input",
        "conv1",
        "conv2",
        "conv3",
        "conv4",
        "conv5",
        "fc6",
        "fc7",
        "fc8",
    )
    vgg = [f"conv{b}_{i}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3), strict=True) for i in range(1, n + 1)]
    assert splits.split_names("vgg16") == ("input", *vgg, "fc6", "fc7", "fc8")
    res = [f"res{k}{c}" for k, n in zip((2, 3, 4, 5), (3, 4, 6, 3), strict=True) for c in "abcdef"[:n]]
    assert splits.split_names("resnet50") == ("input", "conv1", *res, "pool5", "fc")
    r20 = [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(3)]
    assert splits.split_names("resnet20") == ("input", "stem", *r20, "pool", "fc")
    assert len(splits.split_names("resnet56")) == 1 + 1 + 27 + 2
    assert splits.split_names("digits") == ("input", "conv1", "conv2", "conv3", "conv4", "fc5", "fc6")


def test_unknown_split_and_net_raise_user_error_naming_allowed():
    with pytest.raises(UserError) as e:
        splits.get_split("alexnet", "conv6")
    assert "conv6" in str(e.value) and "conv5" in str(e.value) and "fc8" in str(e.value)
    with pytest.raises(UserError, match="allowed: .*res2a"):
        splits.edge_model("resnet50", "layer1.0")
    with pytest.raises(UserError, match="alexnet, vgg16"):
        splits.splits("googlenet")


def test_alexnet_well_known_numbers():
    conv = splits.total_macs("alexnet", ("conv",))
    assert conv == 655_566_528  # 70.3M + 223.9M + 112.1M + 149.5M + 99.7M
    assert splits.total_macs("alexnet") == 714_188_480  # + FC 58.6M
    sp = splits.get_split("alexnet", "conv5")
    assert sp.shape == (256, 6, 6) and sp.feature_bytes == 256 * 6 * 6 * 2
    assert sp.edge_macs == conv and sp.host_macs == 58_621_952
    assert splits.get_split("alexnet", "conv1").shape == (64, 27, 27)
    assert splits.get_split("alexnet", "input").shape == (3, 224, 224)
    fc6 = splits.get_split("alexnet", "fc6")
    assert fc6.shape == (4096, 1, 1) and fc6.tensor_shape == (4096,)
    # every parameter is a weight or a bias (no BN in AlexNet)
    last = splits.get_split("alexnet", "fc8")
    assert last.edge_weights + last.edge_biases == 61_100_840
    assert last.edge_weight_bytes == 2 * last.edge_weights and last.host_macs == 0


def test_vgg16_well_known_numbers():
    assert splits.total_macs("vgg16", ("conv",)) == 15_346_630_656  # "15.3 G"
    assert splits.total_macs("vgg16") == 15_470_264_320
    assert splits.get_split("vgg16", "conv5_3").shape == (512, 7, 7)
    assert splits.get_split("vgg16", "conv1_1").shape == (64, 224, 224)
    assert splits.get_split("vgg16", "conv1_2").shape == (64, 112, 112)  # includes the pool
    assert (
        splits.get_split("vgg16", "fc8").edge_weights + splits.get_split("vgg16", "fc8").edge_biases
        == 138_357_544
    )


def test_resnet50_well_known_numbers():
    assert splits.total_macs("resnet50", ("conv", "linear")) == 4_089_184_256  # "4.1 G"
    assert abs(splits.total_macs("resnet50") / 4.1e9 - 1) < 0.01  # adds and pool included
    assert splits.get_split("resnet50", "conv1").shape == (64, 56, 56)
    assert splits.get_split("resnet50", "res2c").shape == (256, 56, 56)
    assert splits.get_split("resnet50", "res3a").shape == (512, 28, 28)
    assert splits.get_split("resnet50", "res5c").shape == (2048, 7, 7)
    assert splits.get_split("resnet50", "pool5").shape == (2048, 1, 1)
    types = [la.type for la in splits.layers("resnet50")]
    assert types.count("conv") == 53 and types.count("add") == 16 and types.count("avgpool") == 1
    ws = splits.get_split("resnet50", "fc")
    assert ws.edge_weights == 25_557_032 - 2 * 26_560 - 1000  # minus BN gamma/beta, fc bias
    assert ws.edge_bias_bytes == ws.edge_biases * (BIAS_BITS // 8)


def test_cifar_resnet_layers():
    lays = splits.layers("resnet20")
    types = [la.type for la in lays]
    assert types.count("conv") == 19 and types.count("add") == 9 and types.count("shortcut_a") == 2
    assert len(lays) == 32
    sc = splits.layer("resnet20", "layer2.0.shortcut")
    assert sc.in_shapes == ((16, 32, 32),) and sc.out_shape == (32, 16, 16) and sc.channel_offset == 8
    add = splits.layer("resnet20", "layer2.0.add")
    assert add.inputs == ("layer2.0.conv2", "layer2.0.shortcut") and add.relu and add.macs == 2 * 32 * 16 * 16
    stem = splits.layer("resnet20", "conv1")
    assert stem.modules == ("conv1", "bn1", "relu") and stem.bn == "bn1" and stem.biases == 16
    assert splits.get_split("resnet20", "layer3.2").shape == (64, 8, 8)
    assert splits.get_split("resnet20", "pool").shape == (64, 1, 1)
    pool = splits.layer("resnet20", "avgpool")
    assert pool.type == "avgpool" and pool.macs == 64 * 8 * 8 and pool.kernel == (8, 8)
    assert 40e6 < splits.total_macs("resnet20") < 41e6
    assert 125e6 < splits.total_macs("resnet56") < 127e6


@pytest.mark.parametrize("name", nets.NET_NAMES)
def test_table_is_consistent(name):
    lays = splits.layers(name)
    out_shape = {"input": nets.NET_INFO[name].input_shape} | {la.name: la.out_shape for la in lays}
    total = sum(la.macs for la in lays)
    for i, la in enumerate(lays):
        assert la.index == i
        assert la.in_shapes == tuple(out_shape[n] for n in la.inputs), la.name
        if la.type == "conv":
            c, (o, oh, ow) = la.in_shape[0], la.out_shape
            kh, kw = la.kernel
            assert oh == (la.in_shape[1] + 2 * la.padding[0] - kh) // la.stride[0] + 1
            assert la.macs == o * oh * ow * (c // la.groups) * kh * kw
            assert la.weights == o * (c // la.groups) * kh * kw
        if la.type == "linear":
            assert la.macs == la.weights == la.in_shape[0] * la.out_shape[0]
    sps = splits.splits(name)
    assert [s.name for s in sps] == list(splits.split_names(name))
    for sp in sps:
        assert sp.edge_macs + sp.host_macs == total
        assert sp.edge_layers + sp.host_layers == tuple(la.name for la in lays)
        assert sp.feature_bytes == 2 * sp.elements
        assert sp.edge_weight_bytes == 2 * sp.edge_weights and sp.host_weight_bytes == 2 * sp.host_weights
        # the host never needs an edge tensor other than the split feature
        edge = set(sp.edge_layers)
        for la in lays:
            if la.name not in edge:
                assert all(n == sp.output or n not in edge | {"input"} for n in la.inputs), (sp.name, la.name)
    assert sps[0].edge_macs == 0 and sps[-1].host_macs == 0


@pytest.mark.parametrize("name", nets.NET_NAMES)
def test_edge_model_output_shape_is_the_split_shape(name):
    net = meta_net(name)
    x = torch.empty(1, *nets.NET_INFO[name].input_shape, device="meta")
    for sp in splits.splits(name):
        feat = splits.edge_model(net, sp.name)(x)
        assert tuple(feat.shape[1:]) == sp.tensor_shape, sp.name
        assert tuple(splits.host_model(net, sp.name)(feat).shape) == (1, nets.NET_INFO[name].num_classes)


@pytest.mark.parametrize("name", ["digits", "resnet20"])
def test_edge_then_host_equals_the_network(name):
    net = nets.get_net(name, weights=nets.he_init_(nets.build_net(name), seed=1).state_dict())
    x = torch.randn(3, *nets.NET_INFO[name].input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = net(x)
        for s in splits.split_names(name):
            got = splits.host_model(net, s)(splits.edge_model(net, s)(x))
            assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5), s


def test_edge_then_host_equals_the_network_imagenet():
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for name, cuts in (("alexnet", ("conv2", "conv5", "fc7")), ("resnet50", ("conv1", "res3d", "pool5"))):
        net = nets.get_net(name)
        with torch.no_grad():
            ref = net(x)
            for s in cuts:
                got = splits.host_model(net, s)(splits.edge_model(net, s)(x))
                assert torch.allclose(got, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max())), (name, s)


def test_edge_model_shares_parameters_and_layer_dicts():
    net = nets.get_net("digits")
    edge = splits.edge_model(net, "conv2")
    assert edge.get_submodule("features.3").weight is net.features[3].weight
    assert len(splits.edge_model(net, "input")) == 0 and len(splits.host_model(net, "fc6")) == 0
    d = splits.layer("digits", "features.3").as_dict()
    assert d["kernel"] == (3, 3) and d["out_shape"] == (24, 8, 8) and d["relu"] is True
    assert splits.get_split("digits", "conv4").as_dict()["shape"] == (32, 2, 2)
