"""Calibration, the integer-exact network (numpy) vs its fast torch twin, accuracy, and golden export."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from golden import fixedpoint as fp
from golden import nets, splits
from golden import quantize as Q
from golden.data import load_cifar10, load_digits, load_photos
from golden.errors import UserError


def assert_all_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == np.int16 and b[k].dtype == np.int16, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope="module")
def digits_q() -> Q.QNet:
    return Q.default_qnet("digits")


@pytest.fixture(scope="module")
def resnet20_q(shared_data) -> Q.QNet:
    return Q.default_qnet("resnet20")


# ---- the fused float path equals the module ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "resnet20", "resnet56", "alexnet", "resnet50"])
def test_fused_float_layers_equal_module_forward(name):
    torch.manual_seed(0)
    net = nets.build_net(name)
    nets.he_init_(net, seed=2)
    for m in net.modules():  # non-trivial BN statistics so the folding is exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval().double()
    x = torch.randn(
        2 if name in ("digits", "resnet20", "resnet56") else 1,
        *nets.NET_INFO[name].input_shape,
        dtype=torch.float64,
    )
    with torch.no_grad():
        ref = net(x)
        got = Q.run_float(net, x, dtype=torch.float64)
    assert torch.allclose(got, ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))


# ---- calibration results ----------------------------------------------------------------------------------


def test_quantized_layers_are_in_range(digits_q):
    assert digits_q.net == "digits" and digits_q.calibration["images"] == 1347
    for q in digits_q.layers:
        assert 0 <= q.shift <= fp.MAX_SHIFT
        if q.type in ("conv", "linear"):
            assert q.w.dtype == np.int16 and q.bias.dtype == np.int64
            assert q.shift == q.frac_in[0] + q.frac_w - q.frac_out
            assert int(np.abs(q.w.astype(np.int64)).max()) > 16383  # the weight scale uses the int16 range
            fp.check_int(q.bias, fp.BIAS_BITS, "bias")
        if q.type == "maxpool":
            assert q.frac_out == q.frac_in[0] and q.shift == 0
    assert digits_q.split_frac("conv2") == digits_q.layer("features.5").frac_out
    assert digits_q.frac("input") == digits_q.input_frac == 14  # inputs in [-1, 1]


def test_resnet_add_and_pool_parameters(resnet20_q):
    add = resnet20_q.layer("layer2.0.add")
    wa, wb = (int(v) for v in add.w)
    assert (wa, wb, add.shift) == splits_add_params(add)
    pool = resnet20_q.layer("avgpool")
    assert pool.r == 20 and int(pool.w[0]) == 2**20 // 64  # 8x8 = 64 values: R exactly 2**r / 64
    assert pool.shift == pool.frac_in[0] + pool.r - pool.frac_out


def splits_add_params(q: Q.QLayer) -> tuple[int, int, int]:
    from golden.layers import residual_add_params

    return residual_add_params(q.frac_in[0], q.frac_in[1], q.frac_out)


def test_calibration_does_not_saturate_its_own_images(resnet20_q):
    x = Q.calibration_images("resnet20", 100)
    outs = Q.run_fast(resnet20_q, resnet20_q.quantize_input(x), return_all=True)
    for k, v in outs.items():
        assert np.mean(np.abs(v.astype(np.int64)) >= 32767) == 0, k
        assert np.abs(v.astype(np.int64)).max() >= 8192 or k.endswith("shortcut"), k  # scale is not wasted


def test_percentile_option_and_errors():
    net = nets.get_net("digits")
    x, _ = load_digits("train")
    q_max = Q.quantize_net(net, x[:200])
    q_p = Q.quantize_net(net, x[:200], percentile=99.0)
    assert all(a.frac_out <= b.frac_out for a, b in zip(q_max.layers, q_p.layers, strict=True))
    with pytest.raises(UserError):
        Q.quantize_net(net, x[:10], percentile=0)
    with pytest.raises(UserError):
        Q.quantize_net(net, x[:0])


# ---- numpy integer path == fast torch path, bit for bit ----------------------------------------------------


def test_digits_int_equals_fast_every_layer(digits_q):
    x, _ = load_digits("test")
    xi = digits_q.quantize_input(x[:32])
    assert_all_equal(Q.run_int(digits_q, xi, return_all=True), Q.run_fast(digits_q, xi, return_all=True))


@pytest.mark.parametrize("name, n", [("resnet20", 4), ("resnet56", 2)])
def test_cifar_resnet_int_equals_fast_every_layer(shared_data, name, n):
    q = Q.default_qnet(name)
    xi = q.quantize_input(load_cifar10("test", 10)[0][:n])
    assert_all_equal(Q.run_int(q, xi, return_all=True), Q.run_fast(q, xi, return_all=True))


@pytest.mark.parametrize("name, upto", [("alexnet", None), ("resnet50", "res3a"), ("vgg16", "conv2_1")])
def test_imagenet_int_equals_fast(name, upto):
    photos, _ = load_photos(("coffee", "chelsea"))
    q = Q.quantize_net(nets.get_net(name), photos[:1])
    xi = q.quantize_input(photos[1:])
    assert_all_equal(
        Q.run_int(q, xi, upto=upto, return_all=True), Q.run_fast(q, xi, upto=upto, return_all=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_imagenet_int_equals_fast_whole_network(name):
    photos, _ = load_photos(("astronaut", "rocket"))
    q = Q.quantize_net(nets.get_net(name), photos[:1])
    xi = q.quantize_input(photos[1:])
    assert_all_equal(Q.run_int(q, xi, return_all=True), Q.run_fast(q, xi, return_all=True))


def test_fast_batches_give_the_same_values(resnet20_q, monkeypatch):
    """run_fast's batches (golden.quantize.FAST_BATCH_BYTES): 3 images a batch against one batch of 7, every
    tensor (return_all), from the input and from a split; and the size of a batch from the largest tensor."""
    xi = resnet20_q.quantize_input(load_cifar10("test", 10)[0][:7])
    whole = Q.run_fast(resnet20_q, xi, return_all=True)
    mid = Q.run_fast(resnet20_q, xi, upto="layer2.0")
    assert Q.fast_batch(resnet20_q) == Q.FAST_BATCH_BYTES // (8 * 16 * 32 * 32)   # layer1's 16 x 32 x 32 maps
    assert Q.fast_batch(resnet20_q, start="layer3.0") == Q.FAST_BATCH_BYTES // (8 * 64 * 8 * 8)
    monkeypatch.setattr(Q, "FAST_BATCH_BYTES", 3 * 8 * 16 * 32 * 32)
    assert Q.fast_batch(resnet20_q) == 3
    assert_all_equal(whole, Q.run_fast(resnet20_q, xi, return_all=True))
    np.testing.assert_array_equal(Q.run_fast(resnet20_q, mid, start="layer2.0"), whole[resnet20_q.layers[-1].name])
    assert Q.run_fast(resnet20_q, xi[:0]).shape == (0, 10)


def test_allocator_thresholds_are_set():
    from golden import malloc

    assert malloc.tune() is True and malloc.tune() is True   # glibc (this machine, CI); once per process


def test_split_run_composes(digits_q, resnet20_q):
    for q, data in ((digits_q, load_digits("test")[0][:5]), (resnet20_q, load_cifar10("test", 10)[0][:3])):
        xi = q.quantize_input(data)
        full = Q.run_int(q, xi)
        for s in splits.split_names(q.net)[:-1]:
            feat = Q.run_fast(q, xi, upto=s)
            assert feat.shape[1:] == splits.get_split(q.net, s).tensor_shape
            np.testing.assert_array_equal(Q.run_int(q, feat, start=s), full, err_msg=s)
    with pytest.raises(UserError):
        Q.run_int(digits_q, np.zeros((1, 3, 16, 16), np.int16))
    with pytest.raises(UserError):
        Q.run_int(digits_q, np.zeros((1, 1, 16, 16), np.int16), upto="conv9")


# ---- int16 accuracy ---------------------------------------------------------------------------------------


def test_int_close_to_float_resnet20(shared_data, resnet20_q):
    x, y = load_cifar10("test", 1000)
    net = nets.get_net("resnet20")
    with torch.no_grad():
        logits_f = net(torch.from_numpy(x[:100])).numpy()
    logits_q = fp.dequantize(
        Q.run_fast(resnet20_q, resnet20_q.quantize_input(x[:100])), resnet20_q.layers[-1].frac_out
    )
    assert np.abs(logits_q - logits_f).max() < 0.02 * np.abs(logits_f).max()
    pf, pq = nets.predict(net, x), Q.predict_int(resnet20_q, x)
    assert np.mean(pf == pq) >= 0.99
    assert abs(np.mean(pq == y) - np.mean(pf == y)) <= 0.005


def test_digits_int_accuracy(digits_q):
    x, y = load_digits("test")
    acc_f = nets.top1(nets.get_net("digits"), x, y)
    acc_q = Q.top1_int(digits_q, x, y)
    assert abs(acc_q - acc_f) <= 1 / 450 + 1e-9, (acc_f, acc_q)


@pytest.mark.slow
@pytest.mark.parametrize("name, expected", [("resnet20", 0.810), ("resnet56", 0.832)])
def test_float_and_int16_top1_full_test_set(shared_data, name, expected):
    """float32 top-1 on all 10,000 CIFAR-10 test images within 0.003 of the shared data's figure, and the int16
    network's within half a percent of it (one float run serves both checks)."""
    x, y = load_cifar10("test")
    assert len(y) == 10_000
    acc_f = nets.top1(nets.get_net(name), x, y)
    acc_q = Q.top1_int(Q.default_qnet(name), x, y)
    print(f"{name} on 10,000 CIFAR-10 test images: float32 top-1 {acc_f:.4f}, int16 top-1 {acc_q:.4f}")
    assert abs(acc_f - expected) <= 0.003, acc_f
    assert abs(acc_q - acc_f) <= 0.005


# ---- golden export ----------------------------------------------------------------------------------------


def test_export_round_trip(digits_q, tmp_path):
    x, _ = load_digits("test")
    d = Q.export_activations("digits", "conv3", x[:3], qnet=digits_q, out_dir=tmp_path)
    back = Q.load_export(d["path"])
    meta, desc = back["meta"], back["descriptors"]
    edge = splits.layers_between("digits", "input", "conv3")
    assert meta["net"] == "digits" and meta["split"] == "conv3" and meta["images"] == 3
    assert meta["layers"] == [la.name for la in edge] == [dd["name"] for dd in desc]
    assert meta["fixedpoint"]["ACC_BITS"] == fp.ACC_BITS
    outs = Q.run_int(digits_q, digits_q.quantize_input(x[:3]), upto="conv3", return_all=True)
    for i, la in enumerate(edge):
        np.testing.assert_array_equal(back[f"L{i:03d}.out"], outs[la.name])
        assert desc[i]["frac_out"] == digits_q.layer(la.name).frac_out
    np.testing.assert_array_equal(back["feature"], outs["features.6"])
    assert back["input"].dtype == np.int16 and back["L000.w"].shape == (16, 1, 5, 5)
    assert desc[0]["shift"] == digits_q.layers[0].shift and desc[0]["kernel"] == [5, 5]
    assert int(back["feature_frac"]) == digits_q.split_frac("conv3")
    json.dumps(desc)  # plain JSON


def test_export_default_location_and_cli(digits_q, capsys):
    from golden.data import REPO_ROOT

    d = Q.export_activations("digits", "input", load_digits("test")[0][:1], qnet=digits_q)
    assert d["path"].startswith(str(REPO_ROOT / "build" / "golden"))
    assert Q.main(["digits", "fc6", "-n", "1"]) == 0
    assert capsys.readouterr().out.strip().endswith(".npz")
    assert Q.main(["digits", "conv7"]) == 2
    with pytest.raises(UserError):
        Q.export_activations(
            "digits", "conv3", np.zeros((1, 1, 16, 16), np.float32), qnet=Q.QNet("alexnet", 0, ())
        )


@pytest.mark.parametrize("name, upto", [("mobilenetv2", None), ("squeezenet1_1", None), ("resnet18", "layer2.0")])
def test_new_networks_int_equals_fast(name, upto):
    """Depthwise convs, ReLU6 clamps, concatenations, ceil-mode pools: the numpy reference and the torch twin
    agree bit for bit on every layer."""
    photos, _ = load_photos(("coffee", "chelsea"))
    q = Q.quantize_net(nets.get_net(name), photos[:1])
    xi = q.quantize_input(photos[1:])
    assert_all_equal(Q.run_int(q, xi, upto=upto, return_all=True), Q.run_fast(q, xi, upto=upto, return_all=True))


def test_concat_inputs_share_a_format_and_relu6_clamps():
    photos, _ = load_photos(("coffee",))
    sq = Q.quantize_net(nets.get_net("squeezenet1_1"), photos)
    for lay in sq.network.layers:
        if lay.type == "concat":
            fracs = {sq.frac(i) for i in lay.inputs}
            assert len(fracs) == 1 and sq.layer(lay.name).frac_out == fracs.pop()
    mb = Q.quantize_net(nets.get_net("mobilenetv2"), photos)
    clamped = [q for q in mb.layers if q.layer.relu6]
    assert len(clamped) == 35 and all(q.clamp == fp.relu6_clamp(q.frac_out) for q in clamped)
    out = Q.run_int(mb, mb.quantize_input(photos), upto="features.1", return_all=True)
    for q in clamped:
        if q.name in out:
            assert int(out[q.name].max()) <= q.clamp


# ---- the split float32 convolution of run_fast ------------------------------------------------------------


class _OneConv:
    """The smallest QNet stand-in :func:`golden.quantize._conv_fast` reads: ``layer(name).w / .bias``."""

    def __init__(self, w, bias):
        self._q = SimpleNamespace(w=w, bias=bias)

    def layer(self, name):
        return self._q


@pytest.mark.parametrize("cin, cout, k, stride, pad, groups, split", [
    (113, 4, 3, 1, 1, 1, True),      # K = 1017: the largest K whose all-extreme weights the split still allows
    (16, 16, 3, 2, 1, 16, True),     # depthwise, stride 2
    (8, 6, 1, 1, 0, 2, True),        # grouped 1x1
    (3, 5, 11, 4, 2, 1, True),       # AlexNet conv1's shape
    (256, 3, 3, 1, 1, 1, False),     # K = 2304 of extremes: past float32's 2**24, one float64 convolution
])
def test_conv_fast_equals_the_float64_convolution_on_extremes(cin, cout, k, stride, pad, groups, split):
    rng = np.random.default_rng(cin * 7 + k)
    kin = cin // groups
    w = rng.integers(fp.INT16_MIN, fp.INT16_MAX + 1, (cout, kin, k, k)).astype(np.int16)
    w[0] = fp.INT16_MIN                  # every extreme: the largest |hi| part and |lo| parts of +-32767
    w[-1] = fp.INT16_MAX
    if cout > 2:
        w[1] = rng.choice(np.array([fp.INT16_MIN, -1, 0, 127, 128, -129, fp.INT16_MAX], np.int16), w[1].shape)
    bias = rng.integers(-(2**40), 2**40, cout).astype(np.int64)
    xs = [rng.integers(fp.INT16_MIN, fp.INT16_MAX + 1, (3, cin, 13, 13)),
          np.full((1, cin, 13, 13), fp.INT16_MIN), np.full((1, cin, 13, 13), fp.INT16_MAX),
          np.where(rng.random((2, cin, 13, 13)) < 0.5, fp.INT16_MIN, fp.INT16_MAX)]
    x = torch.from_numpy(np.concatenate(xs).astype(np.float64))
    lay = SimpleNamespace(name="c", stride=(stride, stride), padding=(pad, pad), groups=groups)
    qnet = _OneConv(w, bias)
    got = Q._conv_fast(qnet, lay, x)
    assert (Q._conv_split_weights(qnet, "c") is not None) == split
    ref = F.conv2d(x, torch.from_numpy(w.astype(np.float64)), torch.from_numpy(bias.astype(np.float64)),
                   lay.stride, lay.padding, 1, groups)   # products < 2**30, sums < 2**47: exact in float64
    assert got.dtype == torch.float64
    assert torch.equal(got, ref)
