"""The network front end (golden.graph, golden.network): tracing, fusion, automatic split points and their
names, the built-in networks' tables unchanged, edge/host modules, and one-line errors for what the engine
cannot take."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from golden import splits
from golden.errors import UserError
from golden.network import load_network, network, parse_input_shape

SNAPSHOT = Path(__file__).parent / "data" / "builtin_tables.json.gz"
OLD_NETS = ("alexnet", "vgg16", "resnet50", "resnet20", "resnet56", "digits")


def test_builtin_tables_equal_the_hand_written_ones():
    """The layer and split tables of the six networks that had hand-written stage tables, as computed by the
    code before the automatic split points (the snapshot), field for field."""
    old = json.loads(gzip.decompress(SNAPSHOT.read_bytes()))
    for name in OLD_NETS:
        layers = [json.loads(json.dumps(la.as_dict())) for la in splits.layers(name)]
        table = [json.loads(json.dumps(s.as_dict())) for s in splits.splits(name)]
        assert layers == old[name]["layers"], name
        assert table == old[name]["splits"], name


def test_stage_aliases_are_automatic_points():
    pts = dict(network("alexnet").all_points())
    assert pts["features.2"] == "conv1" and pts["features"] == "conv5" and pts["classifier"] == "fc8"
    assert pts["features.1"] is None  # conv1 + ReLU before its pool: a point, not listed for AlexNet
    r20 = dict(network("resnet20").all_points())
    assert r20["layer1.0"] == "layer1.0" and r20["layer1"] == "layer1.2" and r20["avgpool"] == "pool"
    # every listed name of the old networks is some automatic point
    for name in OLD_NETS:
        listed = {b for _, b in network(name).all_points() if b is not None}
        assert listed == set(splits.split_names(name))


class Block(nn.Module):
    """An inverted-residual-like block: pointwise, depthwise, pointwise, residual add when it fits."""

    def __init__(self, c: int, hidden: int, out: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out))
        self.res = stride == 1 and c == out

    def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)


class Fire(nn.Module):
    def __init__(self, c: int, s: int, e: int) -> None:
        super().__init__()
        self.squeeze, self.act = nn.Conv2d(c, s, 1), nn.ReLU()
        self.e1, self.e3 = nn.Conv2d(s, e, 1), nn.Conv2d(s, e + 3, 3, padding=1)

    def forward(self, x):
        x = self.act(self.squeeze(x))
        return torch.cat([F.relu(self.e1(x)), F.relu(self.e3(x))], 1)


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.b1 = Block(8, 16, 8, 1)
        self.b2 = Block(8, 24, 12, 2)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fire = Fire(12, 4, 6)
        self.avg = nn.AvgPool2d(2)
        self.head = nn.Linear(15 * 1 * 1, 10)

    def forward(self, x):
        x = self.fire(self.pool(self.b2(self.b1(self.stem(x)))))
        x = F.adaptive_avg_pool2d(self.avg(x), 1)
        return self.head(torch.flatten(x, 1))


def _user_net(tmp_path: Path, body: str, factory: str = "make"):
    f = tmp_path / "mynet.py"
    f.write_text("import torch\nfrom torch import nn\nimport torch.nn.functional as F\n" + body)
    return f"{f}:{factory}"


def _small_spec(tmp_path: Path) -> str:
    src = Path(__file__).read_text()
    start = src.index("class Block(")
    end = src.index("def _user_net(")
    return _user_net(tmp_path, src[start:end] + "\ndef make():\n    torch.manual_seed(0)\n    return Small()\n")


def test_automatic_split_points_and_names(tmp_path):
    nw = load_network(_small_spec(tmp_path), input_shape="3,32,32")
    names = nw.split_names
    # after the stem; inside b1 the block input stays live (residual): no point; b2 has no residual, so its
    # expand and depthwise outputs are points; the pool, inside the fire module after the squeeze, the fire
    # module, the average pools, the logits. The flatten is not a point (the same data as the pool).
    assert names == ("input", "stem", "b1", "b2.conv.2", "b2.conv.5", "b2", "pool", "fire.act", "fire", "avg",
                     "avgpool", "head")
    types = [la.type for la in nw.layers]
    assert types.count("concat") == 1 and "avgpool2d" in types
    assert "flatten" not in types  # absorbed by the global average pool before it
    dw = next(la for la in nw.layers if la.name == "b1.conv.3")
    assert dw.groups == 16 and dw.relu and dw.relu6 and dw.macs == 16 * 16 * 16 * 9
    assert next(la for la in nw.layers if la.name == "pool").ceil_mode
    assert nw.split("fire").shape == (15, 4, 4) and nw.split("head").tensor_shape == (10,)
    assert nw.num_classes == 10


def test_edge_then_host_is_the_network(tmp_path):
    nw = load_network(_small_spec(tmp_path), input_shape=(3, 32, 32))
    m = nw.module()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = m(x)
        for s in nw.split_names:
            feat = nw.edge_model(m, s)(x)
            assert tuple(feat.shape[1:]) == nw.split(s).tensor_shape, s
            assert torch.allclose(nw.host_model(m, s)(feat), ref, atol=1e-5), s


@pytest.mark.parametrize("name", ["mobilenetv2", "squeezenet1_1", "resnet18"])
def test_new_builtin_tables(name):
    nw = network(name)
    if name == "mobilenetv2":
        conv_linear = sum(la.macs for la in nw.layers if la.type in ("conv", "linear"))
        assert conv_linear == 300_774_272
        dw = sum(la.macs for la in nw.layers if la.type == "conv" and la.groups > 1)
        assert dw / conv_linear == pytest.approx(0.0689, abs=5e-4)
        assert "features.3" in nw.split_names and "features.2" in nw.split_names
        assert sum(la.relu6 for la in nw.layers) == 35
    if name == "squeezenet1_1":
        assert sum(la.type == "concat" for la in nw.layers) == 8
        assert all(la.ceil_mode for la in nw.layers if la.type == "maxpool")
    if name == "resnet18":
        assert nw.split_names == ("input", "relu", "maxpool", "layer1.0", "layer1", "layer2.0", "layer2", "layer3.0",
                                  "layer3", "layer4.0", "layer4", "avgpool", "fc")
    assert nw.splits[-1].edge_macs == sum(la.macs for la in nw.layers)


@pytest.mark.parametrize("body, what", [
    ("class M(nn.Module):\n    def __init__(s):\n        super().__init__(); s.c = nn.Conv2d(3, 4, 3)\n"
     "        s.a = nn.Sigmoid()\n    def forward(s, x):\n        return s.a(s.c(x))\ndef make():\n    return M()\n",
     "module Sigmoid"),
    ("class M(nn.Module):\n    def __init__(s):\n        super().__init__(); s.c = nn.Conv2d(3, 4, 3)\n"
     "    def forward(s, x):\n        return torch.sigmoid(s.c(x))\ndef make():\n    return M()\n", "operator sigmoid"),
    ("class M(nn.Module):\n    def __init__(s):\n        super().__init__(); s.c = nn.Conv2d(3, 4, 3)\n"
     "    def forward(s, x):\n        return s.c(x)[:, 1:]\ndef make():\n    return M()\n", "indexing or slicing"),
    ("class M(nn.Module):\n    def __init__(s):\n        super().__init__(); s.c = nn.Conv2d(3, 3, 3, padding=1); "
     "s.b = nn.BatchNorm2d(3)\n    def forward(s, x):\n        return s.b(x + s.c(x))\ndef make():\n    return M()\n",
     "BatchNorm2d not directly after a conv"),
    ("class M(nn.Module):\n    def __init__(s):\n        super().__init__(); s.c = nn.Conv2d(3, 3, 3, dilation=2)\n"
     "    def forward(s, x):\n        return s.c(x)\ndef make():\n    return M()\n", "dilation"),
    ("class M(nn.Module):\n    def __init__(s):\n        super().__init__(); s.c = nn.Conv2d(3, 3, 3)\n"
     "    def forward(s, x, y):\n        return s.c(x)\ndef make():\n    return M()\n", "takes 2 inputs (x, y)"),
    ("class M(nn.Module):\n    def __init__(s):\n        super().__init__(); s.c = nn.Conv2d(3, 3, 3)\n"
     "    def forward(s, x):\n        if x.sum() > 0:\n            return s.c(x)\n        return x\n"
     "def make():\n    return M()\n", "torch.fx cannot trace"),
])
def test_unsupported_models_are_one_line_errors(tmp_path, body, what):
    with pytest.raises(UserError) as e:
        load_network(_user_net(tmp_path, body), input_shape="3,16,16")
    msg = str(e.value)
    assert what in msg and "\n" not in msg
    if "supported" in msg:
        assert "Conv2d" in msg or "supported:" in msg


@pytest.mark.parametrize("spec, what", [
    ("nosuchnet", "unknown network 'nosuchnet'"),
    ("model.py", "name the factory function"),
    ("missing.onnx", "not found"),
])
def test_bad_specs(spec, what):
    with pytest.raises(UserError, match=what):
        load_network(spec)


def test_bad_py_files(tmp_path):
    with pytest.raises(UserError, match="SyntaxError"):
        load_network(_user_net(tmp_path, "def make(:\n"))
    with pytest.raises(UserError, match="has no function 'other'; defined there: make"):
        load_network(_user_net(tmp_path, "def make():\n    return nn.Conv2d(3, 3, 1)\n", "other"))
    with pytest.raises(UserError, match=r"make\(\) raised RuntimeError: boom"):
        load_network(_user_net(tmp_path, "def make():\n    raise RuntimeError('boom')\n"), input_shape="3,8,8")
    with pytest.raises(UserError, match="not a torch nn.Module"):
        load_network(_user_net(tmp_path, "def make():\n    return 3\n"), input_shape="3,8,8")
    with pytest.raises(UserError, match="does not fix its input shape; give --input-shape"):
        load_network(_user_net(tmp_path, "def make():\n    return nn.Sequential(nn.Conv2d(3, 3, 1))\n"))
    with pytest.raises(UserError, match="does not match"):
        load_network("alexnet", input_shape="3,32,32")


@pytest.mark.parametrize("text", ["3,x,32", "3,32", "0,32,32", "3,-1,2", "4097,1,1"])
def test_bad_input_shapes(text):
    with pytest.raises(UserError, match="is not C,H,W"):
        parse_input_shape(text)


def test_input_shape_attribute_and_weights(tmp_path):
    body = ("class M(nn.Sequential):\n    input_shape = (1, 8, 8)\ndef make():\n    torch.manual_seed(1)\n"
            "    return M(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3))\n")
    nw = load_network(_user_net(tmp_path, body))
    assert nw.input_shape == (1, 8, 8) and nw.num_classes == 3 and nw.dataset is None
    sd = {k: torch.zeros_like(v) for k, v in nw.module().state_dict().items()}
    torch.save(sd, tmp_path / "w.pt")
    m = load_network(_user_net(tmp_path, body), weights=str(tmp_path / "w.pt")).module()
    with torch.no_grad():
        assert float(m(torch.ones(1, 1, 8, 8)).abs().sum()) == 0.0
    with pytest.raises(UserError, match="weights do not match"):
        load_network(_user_net(tmp_path, body), weights={"x": torch.zeros(1)}).module()
