"""golden.onnx_import: real torch models exported by both torch.onnx exporters, and hand-built bad files.

Each torch model is exported once per module (the torch.export-based exporter takes seconds); the imported
GraphModule must compute what the torch model computes, carry the module names and scopes our split points
use, and every bad file must give one UserError line naming what is wrong.
"""

from __future__ import annotations

import operator
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from golden.errors import UserError
from golden.onnx_import import SUPPORTED_OPS, ImportedModel, load_onnx

# ---- torch models ----


class Block(nn.Module):
    """Depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN, plus the residual."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU6(),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class Branches(nn.Module):
    """Two branches of different channel counts, concatenated."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.left = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU())
        self.right = nn.Sequential(nn.Conv2d(c, 6, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.left(x), self.right(x)], 1)


class MobileNet(nn.Module):
    """Stem, residual depthwise block, concat, max-pool (ceil_mode), 2x2 average pool, GAP, flatten, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.b1 = Block(8)
        self.branches = Branches(8)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)  # 16x16 -> 8x8, the last window hangs over the edge
        self.avg = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(10, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.branches(self.b1(self.stem(x)))
        x = self.gap(self.avg(self.pool(x)))
        return self.fc(torch.flatten(x, 1))


class Fire(nn.Module):
    """SqueezeNet's fire module: squeeze 1x1, expand 1x1 and 3x3, functional ReLUs, concat."""

    def __init__(self, cin: int, s: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, s, 1)
        self.expand1x1 = nn.Conv2d(s, e1, 1)
        self.expand3x3 = nn.Conv2d(s, e3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class FireNet(nn.Module):
    """SqueezeNet-like: a fire module, a BatchNorm no conv precedes, a 1x1-conv head, GAP, two squeezes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 4, 8, 8),
            nn.BatchNorm2d(16),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(16, 5, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(-1).squeeze(-1)


class MeanNet(nn.Module):
    """Conv, ReLU, mean over H and W (ReduceMean keepdims=0), linear: exported with dynamic H and W."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).mean((2, 3)))


def _randomized(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with non-trivial BatchNorm statistics (so folded BN really changes the weights)."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def _export(model: nn.Module, path: Path, dynamo: bool = True, dynamic: bool = False) -> Path:
    x = torch.randn(1, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {"x": {2: torch.export.Dim("h", min=8, max=256), 3: torch.export.Dim("w", min=8, max=256)}}
            torch.onnx.export(model, (x,), path, dynamic_shapes=dims if dynamic else None, verbose=False)
        else:
            axes = {"x": {2: "h", 3: "w"}} if dynamic else None
            torch.onnx.export(model, (x,), path, dynamo=False, input_names=["x"], dynamic_axes=axes)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[nn.Module, Path]]:
    """Every torch model and its ONNX file, exported once for the module."""
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("onnx")
    mobile, fire, mean = _randomized(MobileNet()), _randomized(FireNet()), MeanNet().eval()
    return {
        "mobile": (mobile, _export(mobile, d / "mobile.onnx")),
        "mobile-legacy": (mobile, _export(mobile, d / "mobile_legacy.onnx", dynamo=False)),
        "fire": (fire, _export(fire, d / "fire.onnx")),
        "mean-dynamic": (mean, _export(mean, d / "mean_dynamic.onnx", dynamic=True)),
        "mean-dynamic-legacy": (mean, _export(mean, d / "mean_dynamic_legacy.onnx", dynamo=False, dynamic=True)),
    }


def _by_target(imported: ImportedModel) -> dict[str, torch.fx.Node]:
    return {n.target: n for n in imported.module.graph.nodes if n.op == "call_module"}


def _functions(imported: ImportedModel, target: object) -> list[torch.fx.Node]:
    return [n for n in imported.module.graph.nodes if n.op == "call_function" and n.target is target]


# ---- exported torch models ----


@pytest.mark.parametrize(("name", "classes"), [("mobile", 7), ("mobile-legacy", 7), ("fire", 5)])
def test_imported_model_computes_what_torch_computes(exported, name: str, classes: int) -> None:
    model, path = exported[name]
    imported = load_onnx(path)
    assert imported.input_shape == (3, 32, 32)
    assert imported.num_classes == classes
    opsets = {o.domain: o.version for o in onnx.load(str(path), load_external_data=False).opset_import}
    assert imported.opset == opsets.get("", opsets.get("ai.onnx")) >= 13
    assert imported.path == str(path)
    gm = imported.module
    assert isinstance(gm, torch.fx.GraphModule) and gm.graph_module_source == "onnx" and not gm.training
    assert all(p.dtype == torch.float32 for p in gm.parameters())
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert len(targets) == len(set(targets))
    assert [n.op for n in gm.graph.nodes].count("placeholder") == 1
    torch.manual_seed(1)
    for batch in (1, 3):  # batch 1 as exported, and any other batch
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            want, got = model(x), gm(x)
        assert got.shape == (batch, classes)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["mobile", "mobile-legacy"])
def test_module_names_and_scopes(exported, name: str) -> None:
    imported = load_onnx(exported[name][1])
    mods = _by_target(imported)
    stem = mods["stem.0"]
    assert isinstance(imported.module.get_submodule("stem.0"), nn.Conv2d) and stem.meta["scope"] == ("stem",)
    dw = imported.module.get_submodule("b1.conv.0")
    assert isinstance(dw, nn.Conv2d) and dw.groups == 8 and mods["b1.conv.0"].meta["scope"] == ("b1", "b1.conv")
    assert isinstance(imported.module.get_submodule("b1.conv.2"), nn.ReLU6)
    assert mods["b1.conv.2"].meta["scope"] == ("b1", "b1.conv")
    (add,) = _functions(imported, operator.add)
    assert add.meta["scope"] == ("b1",) and add.meta["onnx_node"]
    (cat,) = _functions(imported, torch.cat)
    assert cat.kwargs == {"dim": 1} and len(cat.args[0]) == 2 and cat.meta["scope"] == ("branches",)
    assert {"branches.left.0", "branches.right.0", "fc"} <= set(mods)
    assert mods["fc"].meta["scope"] == ()
    pool = imported.module.get_submodule("pool")
    assert isinstance(pool, nn.MaxPool2d) and pool.ceil_mode and pool.kernel_size == (3, 3) and pool.stride == (2, 2)
    avg = imported.module.get_submodule("avg")
    assert isinstance(avg, nn.AvgPool2d) and avg.kernel_size == (2, 2) and avg.stride == (2, 2)
    assert isinstance(imported.module.get_submodule("fc"), nn.Linear)
    # every ONNX node name recorded is a node of the file
    names = {n.name for n in onnx.load(str(exported[name][1]), load_external_data=False).graph.node}
    assert all(n.meta["onnx_node"] in names for n in imported.module.graph.nodes if n.op.startswith("call_"))


def test_fire_module_names_and_scopes(exported) -> None:
    imported = load_onnx(exported["fire"][1])
    mods = _by_target(imported)
    fire = ("features", "features.3")
    for conv in ("squeeze", "expand1x1", "expand3x3"):
        assert mods[f"features.3.{conv}"].meta["scope"] == fire
    # the functional ReLUs of the fire module's own forward live under it, so "features.3" stays the container
    gm = imported.module
    relus = [t for t, n in mods.items() if n.meta["scope"] == fire and type(gm.get_submodule(t)) is nn.ReLU]
    assert len(relus) == 3 and all(t.startswith("features.3.") for t in relus)
    (cat,) = _functions(imported, torch.cat)
    assert cat.meta["scope"] == fire
    bn = imported.module.get_submodule("features.4")  # follows a concat: no conv to fold it into
    assert isinstance(bn, nn.BatchNorm2d) and not bn.training
    head = [imported.module.get_submodule(t) for t in mods if t.startswith("classifier.")]
    assert [type(m) for m in head] == [nn.Conv2d, nn.ReLU, nn.AdaptiveAvgPool2d]
    # squeeze(-1).squeeze(-1) is one Flatten(1), the last node before the output
    out = next(n for n in imported.module.graph.nodes if n.op == "output").args[0]
    assert isinstance(imported.module.get_submodule(out.target), nn.Flatten)
    assert sum(isinstance(imported.module.get_submodule(t), nn.Flatten) for t in mods) == 1


@pytest.mark.parametrize("name", ["mean-dynamic", "mean-dynamic-legacy"])
def test_dynamic_height_and_width_need_input_shape(exported, name: str) -> None:
    model, path = exported[name]
    with pytest.raises(UserError, match="--input-shape C,H,W") as e:
        load_onnx(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    imported = load_onnx(path, input_shape=(3, 32, 32))
    assert imported.input_shape == (3, 32, 32) and imported.num_classes == 3
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(imported.module(x), model(x), atol=1e-4, rtol=1e-4)
    kinds = [type(imported.module.get_submodule(t)) for t in _by_target(imported)]
    assert kinds == [nn.Conv2d, nn.ReLU, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]  # ReduceMean keepdims=0
    with pytest.raises(UserError, match=r"--input-shape 4,32,32 contradicts .*use C,H,W = 3,\*,\*") as e:
        load_onnx(path, input_shape=(4, 32, 32))
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="three positive integers"):
        load_onnx(path, input_shape=(3, 0, 32))


def test_missing_external_weights(exported, tmp_path: Path) -> None:
    """The torch.export-based exporter writes the weights to ``<file>.data`` beside the model."""
    src = exported["mobile"][1]
    assert Path(f"{src}.data").is_file()
    lone = tmp_path / src.name
    lone.write_bytes(src.read_bytes())
    with pytest.raises(UserError, match="cannot load its external weights") as e:
        load_onnx(lone)
    assert "\n" not in str(e.value) and str(lone) in str(e.value)


# ---- hand-built graphs (onnx.helper) ----


def _vi(name: str, dims: list, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _save(path: Path, nodes: list, inputs: list, outputs: list, inits: tuple = (), opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_matmul_add_pair_is_one_linear(tmp_path: Path) -> None:
    w, bias, w2 = _rand(12, 5), _rand(5, seed=1), _rand(5, 4, seed=2)
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=1),
        helper.make_node("MatMul", ["f", "w"], ["m"], name="/fc/MatMul"),
        helper.make_node("Add", ["bias", "m"], ["a"], name="/fc/Add"),  # the legacy exporter puts the bias first
        helper.make_node("Relu", ["a"], ["r"], name="/relu/Relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="/head/MatMul"),
    ]
    path = _save(tmp_path / "mm.onnx", nodes, [_vi("x", [1, 3, 2, 2])], [_vi("y", [1, 4])],
                 [_init("w", w), _init("bias", bias), _init("w2", w2)])
    imported = load_onnx(path)
    mods = _by_target(imported)
    assert list(mods) == ["flat", "fc", "relu", "head"]
    assert mods["fc"].meta["scope"] == () and mods["fc"].meta["onnx_node"] == "/fc/MatMul"
    fc, head = imported.module.get_submodule("fc"), imported.module.get_submodule("head")
    assert isinstance(fc, nn.Linear) and fc.bias is not None and head.bias is None
    x = _rand(2, 3, 2, 2, seed=3)
    want = np.maximum(x.reshape(2, -1) @ w + bias, 0) @ w2
    np.testing.assert_allclose(imported.module(torch.from_numpy(x)).detach().numpy(), want, atol=1e-5)
    assert imported.num_classes == 4 and imported.opset == 17


def test_gemm_same_padding_and_fixed_batch(tmp_path: Path) -> None:
    """Gemm with transB=0, Conv with auto_pad SAME_UPPER (symmetric here), a batch dim fixed to 4."""
    wc, wg, c = _rand(2, 3, 3, 3), _rand(2 * 4 * 4, 6, seed=1), _rand(1, 6, seed=2)
    nodes = [
        helper.make_node("Conv", ["x", "wc"], ["c"], name="conv", auto_pad="SAME_UPPER", kernel_shape=[3, 3]),
        helper.make_node("Flatten", ["c"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wg", "cg"], ["y"], name="gemm", transB=0),
    ]
    path = _save(tmp_path / "gemm.onnx", nodes, [_vi("x", [4, 3, 4, 4])], [_vi("y", [4, 6])],
                 [_init("wc", wc), _init("wg", wg), _init("cg", c)])
    imported = load_onnx(path)
    assert imported.module.get_submodule("conv").padding == (1, 1)
    x = torch.randn(1, 3, 4, 4)
    want = F.linear(torch.flatten(F.conv2d(x, torch.from_numpy(wc), padding=1), 1), torch.from_numpy(wg.T),
                    torch.from_numpy(c[0]))
    torch.testing.assert_close(imported.module(x), want, atol=1e-5, rtol=1e-5)


def _scoped(node: onnx.NodeProto, scopes: list[str]) -> onnx.NodeProto:
    """``node`` with the torch.export-based exporter's name_scopes metadata."""
    helper.set_metadata_props(node, {"pkg.torch.onnx.name_scopes": repr(scopes)})
    return node


def test_naming_rules(tmp_path: Path) -> None:
    """Weight names, name_scopes metadata, legacy node paths, plain node names, collisions, reserved names."""
    w, b0, wh = _rand(3, 3, 3, 3), _rand(3, seed=1), _rand(2, 3, 1, 1, seed=2)
    nodes = [
        helper.make_node("Identity", ["b0"], ["bid"], name="/Identity"),  # an Identity of a constant is a constant
        helper.make_node("Conv", ["x", "onnx::Conv_1", "bid"], ["c"], name="/b1/conv/conv.0/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["lo"], name="/b1/conv/conv.1/Constant", value_float=0.0),
        helper.make_node("Constant", [], ["hi"], name="/b1/conv/conv.1/Constant_1", value_float=6.0),
        _scoped(helper.make_node("Clip", ["c", "lo", "hi"], ["r6"], name="n4"),
                ["", "b1", "b1.conv", "b1.conv.1", "hardtanh"]),
        helper.make_node("Relu", ["r6"], ["r1"], name="/b1/Relu"),
        helper.make_node("Relu", ["r1"], ["r2"], name="/b1/Relu_1"),
        helper.make_node("Relu", ["r2"], ["r3"], name="/b1/Relu"),
        _scoped(helper.make_node("Add", ["r3", "x"], ["a"], name="node_add"), ["", "b1", "add"]),
        helper.make_node("Relu", ["a"], ["f"], name="forward"),
        _scoped(helper.make_node("Conv", ["f", "head.weight"], ["y"], name="node_Conv_9"), ["", "bn", "batch_norm"]),
    ]
    path = _save(tmp_path / "names.onnx", nodes, [_vi("x", [1, 3, 8, 8])], [_vi("y", [1, 2, 8, 8])],
                 [_init("onnx::Conv_1", w), _init("b0", b0), _init("head.weight", wh)])
    imported = load_onnx(path)
    gm = imported.module
    got = [(n.target if n.op == "call_module" else n.target.__name__, n.meta["scope"], n.meta["onnx_node"])
           for n in gm.graph.nodes if n.op.startswith("call_")]
    assert got == [
        ("b1.conv.0", ("b1", "b1.conv"), "/b1/conv/conv.0/Conv"),
        ("b1.conv.1", ("b1", "b1.conv"), "n4"),
        ("b1.Relu", ("b1",), "/b1/Relu"),  # b1 encloses other modules: the functional ReLU lives under it
        ("b1.Relu_1", ("b1",), "/b1/Relu_1"),
        ("b1.Relu_2", ("b1",), "/b1/Relu"),  # same name again: a collision suffix
        ("add", ("b1",), "node_add"),
        ("forward_", (), "forward"),  # a name nn.Module already uses
        ("head", (), "node_Conv_9"),  # the weight's name wins over the (folded BN's) scope
    ]
    assert isinstance(gm.get_submodule("b1.conv.1"), nn.ReLU6)
    x = torch.randn(2, 3, 8, 8)
    a = F.relu6(F.conv2d(x, torch.from_numpy(w), torch.from_numpy(b0), padding=1)) + x
    want = F.conv2d(F.relu(a), torch.from_numpy(wh))
    torch.testing.assert_close(gm(x), want, atol=1e-5, rtol=1e-5)
    assert imported.num_classes is None and SUPPORTED_OPS == tuple(sorted(SUPPORTED_OPS))


def _clip(lo: str, hi: str, words: list[str]) -> tuple:
    return [helper.make_node("Clip", ["x", lo, hi], ["y"], name="clip7")], ["x"], ["y"], [lo, hi], 17, words


BAD_GRAPHS = {
    # name: (nodes, inputs, outputs, initializers, opset, words the message must contain)
    "unsupported-op": ([helper.make_node("Sigmoid", ["x"], ["y"], name="sig0")], ["x"], ["y"], [], 17,
                       ["ONNX node 'sig0': operator Sigmoid is not supported; supported: " + ", ".join(SUPPORTED_OPS)]),
    "unsupported-lrn": ([helper.make_node("LRN", ["x"], ["y"], name="norm1", size=5)], ["x"], ["y"], [], 17,
                        ["'norm1'", "operator LRN is not supported"]),
    "opset-12": ([helper.make_node("Relu", ["x"], ["y"], name="r")], ["x"], ["y"], [], 12,
                 ["opset 12; edgesplit needs 13 or newer"]),
    "two-inputs": ([helper.make_node("Add", ["x", "x2"], ["y"], name="add")], ["x", "x2"], ["y"], [], 17,
                   ["2 inputs", "'x'", "'x2'", "exactly one"]),
    "two-outputs": ([helper.make_node("Relu", ["x"], ["y"], name="r"), helper.make_node("Relu", ["x"], ["y2"])],
                    ["x"], ["y", "y2"], [], 17, ["2 outputs", "'y2'"]),
    "clip-max-4": _clip("zero", "four", ["clip7", "Clip bounds [0, 4] are not supported", "[0, 6] (ReLU6)"]),
    "clip-min-1": _clip("minus1", "six", ["clip7", "Clip bounds [-1, 6]"]),
    "asymmetric-pads": ([helper.make_node("Conv", ["x", "w"], ["y"], name="c1", pads=[0, 0, 1, 1])], ["x"], ["y"],
                        ["w"], 17, ["'c1'", "asymmetric pads [0, 0, 1, 1]"]),
    "dilation": ([helper.make_node("Conv", ["x", "w"], ["y"], name="c2", dilations=[2, 2])], ["x"], ["y"], ["w"],
                 17, ["'c2'", "dilations [2, 2]"]),
    "same-asymmetric": ([helper.make_node("MaxPool", ["x"], ["y"], name="p1", kernel_shape=[2, 2],
                                          auto_pad="SAME_UPPER")], ["x"], ["y"], [], 17, ["'p1'", "SAME_UPPER"]),
    "avgpool-exclude-pad": ([helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[3, 3],
                                              pads=[1, 1, 1, 1])], ["x"], ["y"], [], 17,
                            ["'ap'", "count_include_pad=0 with pads [1, 1]"]),
    "add-constant": ([helper.make_node("Add", ["x", "one"], ["y"], name="bias_add")], ["x"], ["y"], ["one"], 17,
                     ["'bias_add'", "constant operand"]),
    "gemm-transA": ([helper.make_node("Flatten", ["x"], ["f"], name="f"),
                     helper.make_node("Gemm", ["f", "g"], ["y"], name="gm", transA=1)], ["x"], ["y"], ["g"], 17,
                    ["'gm'", "transA=1"]),
    "concat-axis-2": ([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=2)], ["x"], ["y"], [], 17,
                      ["'cat'", "Concat axis 2"]),
    "flatten-axis-2": ([helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=2)], ["x"], ["y"], [], 17,
                       ["'fl'", "Flatten axis 2"]),
    "reshape": ([helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")], ["x"], ["y"], ["shape"], 17,
                ["'rs'", "Reshape of [1, 3, 8, 8] to [1, 3, -1]"]),
    "reducemean-axis-1": ([helper.make_node("ReduceMean", ["x"], ["y"], name="rm", axes=[1])], ["x"], ["y"], [], 17,
                          ["'rm'", "axes [1]"]),
    "computed-weight": ([helper.make_node("Relu", ["x"], ["wx"], name="r"),
                         helper.make_node("Conv", ["x", "wx"], ["y"], name="c3")], ["x"], ["y"], [], 17,
                        ["'c3'", "weight 'wx' is computed"]),
    "checker": ([helper.make_node("Relu", ["nowhere"], ["y"], name="r")], ["x"], ["y"], [], 17, ["onnx.checker"]),
}
_BAD_INITS = {
    "w": _rand(4, 3, 3, 3), "one": np.ones((1, 3, 8, 8), np.float32), "g": _rand(1, 5),
    "shape": np.array([1, 3, -1], np.int64), "zero": np.float32(0), "four": np.float32(4),
    "minus1": np.float32(-1), "six": np.float32(6),
}


@pytest.mark.parametrize("case", list(BAD_GRAPHS))
def test_bad_graph_is_one_user_error_line(tmp_path: Path, case: str) -> None:
    nodes, inputs, outputs, inits, opset, words = BAD_GRAPHS[case]
    inits = [_init(i, _BAD_INITS[i]) for i in inits]
    path = _save(tmp_path / f"{case}.onnx", nodes, [_vi(i, [1, 3, 8, 8]) for i in inputs],
                 [_vi(o, ["n", "c", "h", "w"]) for o in outputs], inits, opset)
    with pytest.raises(UserError) as e:
        load_onnx(path)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_bad_inputs(tmp_path: Path) -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    cases = {
        "3-D": ([_vi("x", [1, 8, 8])], "needs a 4-D image [N, C, H, W]"),
        "int": ([_vi("x", [1, 3, 8, 8], TensorProto.INT64)], "is INT64; edgesplit needs a float32 image"),
        "dynamic-c": ([_vi("x", [1, "c", 8, 8])], "dynamic dimensions [1, 'c', 8, 8]; pass --input-shape C,H,W"),
    }
    for name, (inputs, words) in cases.items():
        path = _save(tmp_path / f"{name}.onnx", relu, inputs, [_vi("y", ["n", "c", "h", "w"])])
        with pytest.raises(UserError) as e:
            load_onnx(path)
        assert words in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value), name


def test_missing_and_non_onnx_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist") as e:
        load_onnx(tmp_path / "nothing.onnx")
    assert "nothing.onnx" in str(e.value)
    text = tmp_path / "notes.onnx"
    text.write_text("these are my notes,\nnot a network\n")
    with pytest.raises(UserError, match="is not an ONNX model") as e:
        load_onnx(text)
    assert "notes.onnx" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError, match="is not a file"):
        load_onnx(tmp_path)
