"""The one table of named split points per network: shapes, bytes, MACs, weights, and the layer list.

The RTL engine's descriptor compiler, the accuracy study and the cost model all read this table, so they can
never disagree on a layer's shape or MAC count.

Stages and split names
----------------------
A network is a sequence of *stages*; splitting at stage ``s`` runs every stage up to and including ``s`` on
the edge and sends ``s``'s output (the *split feature*) to the host. ``input`` (stage 0) sends the input.

* ``alexnet``: ``input, conv1..conv5, fc6, fc7, fc8``; a conv stage includes its ReLU and a following
  max-pool (``conv5`` sends the pooled 256x6x6 map); ``fc6`` includes the (identity at 224x224) adaptive
  average pool, the flatten, dropout, FC and ReLU.
* ``vgg16``: ``input, conv1_1..conv5_3, fc6, fc7, fc8`` (a conv stage followed by a pool includes it).
* ``resnet50``: ``input, conv1`` (incl. BN, ReLU, max-pool), ``res2a..res2c, res3a..res3d, res4a..res4f,
  res5a..res5c`` (one bottleneck block each), ``pool5`` (global average pool + flatten), ``fc``.
* ``resnet20``/``resnet56``: ``input, stem, layer1.0 ... layer3.<n-1>`` (one basic block each), ``pool``,
  ``fc``.
* ``digits``: ``input, conv1..conv4, fc5, fc6`` (conv stages include ReLU and a following pool).

Layers (the engine's view)
--------------------------
The stages are traced (``torch.fx``) into primitive ops, which are then *fused* into engine layers:
BatchNorm is folded into the conv before it, a ReLU into the conv / FC / residual add before it, dropout
and an adaptive average pool whose output size equals its input size are dropped. Layer types:

``conv``  (kernel, stride, padding, groups; bias after BN folding), ``linear``, ``maxpool``,
``avgpool`` (global average pool, ``[C, H, W] -> [C]``), ``add`` (residual add, two inputs),
``shortcut_a`` (CIFAR option-A shortcut: stride-2 subsample + zero channel padding, a copy),
``flatten`` (``[C, H, W] -> [C*H*W]`` in C, H, W order: no data movement in a CHW layout).

Counting rules (per image): ``macs`` are multiply-accumulates the MAC array runs: conv
``O * OH * OW * (C / groups) * KH * KW``, linear ``I * O``, add ``2 * elements`` (a 2-term dot product per
element, see :mod:`golden.layers`), avgpool ``C * H * W``; maxpool, flatten and shortcut_a have 0 MACs
(maxpool's ``compares`` = ``out elements * KH * KW``). ``weights`` counts int16 weights (2 bytes each),
``biases`` counts biases (``golden.fixedpoint.BIAS_BITS`` = 40 bits, 5 bytes each). Shapes omit the batch.
A split's feature is counted at 16 bits per element; ``shape`` is always (C, H, W), with an FC/flattened
feature of N values given as (N, 1, 1) (``tensor_shape`` holds the true shape).

The table is computed once per network by a forward pass on the ``meta`` device (no memory, no weights) at
the network's nominal input size (:data:`golden.nets.NET_INFO`) and cached.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from golden.errors import UserError
from golden.fixedpoint import BIAS_BITS
from golden.nets import NET_INFO, NET_NAMES, build_net, check_net_name, get_net, net_name_of
from golden.nets.cifar_resnet import ShortcutA
from golden.nets.vgg import VGG16_CFG

FLATTEN = "<flatten>"
INPUT = "input"
ACT_BYTES = 2
WEIGHT_BYTES = 2
BIAS_BYTES = (BIAS_BITS + 7) // 8

Shape = tuple[int, ...]


# ---- the stage table ---------------------------------------------------------------------------------


def _seq(prefix: str, idx: range | list[int]) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}" for i in idx)


def _alexnet_stages() -> list[tuple[str, tuple[str, ...]]]:
    return [
        ("conv1", _seq("features", range(0, 3))),
        ("conv2", _seq("features", range(3, 6))),
        ("conv3", _seq("features", range(6, 8))),
        ("conv4", _seq("features", range(8, 10))),
        ("conv5", _seq("features", range(10, 13))),
        ("fc6", ("avgpool", FLATTEN) + _seq("classifier", range(0, 3))),
        ("fc7", _seq("classifier", range(3, 6))),
        ("fc8", _seq("classifier", [6])),
    ]


def _vgg16_stages() -> list[tuple[str, tuple[str, ...]]]:
    stages: list[tuple[str, tuple[str, ...]]] = []
    block, conv, idx = 1, 0, 0
    for i, v in enumerate(VGG16_CFG):
        if v == "M":
            continue
        conv += 1
        items = [idx, idx + 1]
        idx += 2
        if i + 1 < len(VGG16_CFG) and VGG16_CFG[i + 1] == "M":
            items.append(idx)
            idx += 1
        stages.append((f"conv{block}_{conv}", _seq("features", items)))
        if len(items) == 3:
            block, conv = block + 1, 0
    return stages + [
        ("fc6", ("avgpool", FLATTEN) + _seq("classifier", range(0, 3))),
        ("fc7", _seq("classifier", range(3, 6))),
        ("fc8", _seq("classifier", [6])),
    ]


def _resnet50_stages() -> list[tuple[str, tuple[str, ...]]]:
    stages = [("conv1", ("conv1", "bn1", "relu", "maxpool"))]
    for k, n in zip((2, 3, 4, 5), (3, 4, 6, 3), strict=True):
        stages += [(f"res{k}{'abcdef'[i]}", (f"layer{k - 1}.{i}",)) for i in range(n)]
    return stages + [("pool5", ("avgpool", FLATTEN)), ("fc", ("fc",))]


def _cifar_stages(depth: int) -> list[tuple[str, tuple[str, ...]]]:
    n = (depth - 2) // 6
    stages = [("stem", ("conv1", "bn1", "relu"))]
    stages += [(f"layer{s}.{i}", (f"layer{s}.{i}",)) for s in (1, 2, 3) for i in range(n)]
    return stages + [("pool", ("avgpool", FLATTEN)), ("fc", ("linear",))]


def _digits_stages() -> list[tuple[str, tuple[str, ...]]]:
    return [
        ("conv1", _seq("features", range(0, 3))),
        ("conv2", _seq("features", range(3, 6))),
        ("conv3", _seq("features", range(6, 8))),
        ("conv4", _seq("features", range(8, 11))),
        ("fc5", (FLATTEN,) + _seq("classifier", range(0, 2))),
        ("fc6", _seq("classifier", [2])),
    ]


@cache
def stage_table(net: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``((split name, module qualnames of the stage), ...)`` starting with ``("input", ())``.

    ``FLATTEN`` (``"<flatten>"``) stands for ``torch.flatten(x, 1)`` in a network's forward.
    """
    check_net_name(net)
    stages = {
        "alexnet": _alexnet_stages,
        "vgg16": _vgg16_stages,
        "resnet50": _resnet50_stages,
        "resnet20": lambda: _cifar_stages(20),
        "resnet56": lambda: _cifar_stages(56),
        "digits": _digits_stages,
    }[net]()
    return ((INPUT, ()), *((name, tuple(items)) for name, items in stages))


def split_names(net: str) -> tuple[str, ...]:
    """The split names of ``net`` in network order (``input`` first, the logits last)."""
    return tuple(name for name, _ in stage_table(net))


def check_split(net: str, split: str) -> str:
    """Return ``split`` if ``net`` has it, else raise UserError naming the allowed splits."""
    names = split_names(net)
    if split not in names:
        raise UserError(f"unknown split {split!r} for network {net}; allowed: {', '.join(names)}")
    return split


# ---- tracing into primitive ops -------------------------------------------------------------------------


@dataclass
class _Prim:
    name: str
    kind: str
    inputs: list[str]
    module: str
    fn: Callable[..., torch.Tensor]
    stage: str
    mod: nn.Module | None = None


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, ShortcutA) or super().is_leaf_module(m, qualname)


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(x, 1)


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + b


_MODULE_KINDS: tuple[tuple[type, str], ...] = (
    (nn.Conv2d, "conv"),
    (nn.BatchNorm2d, "bn"),
    (nn.ReLU, "relu"),
    (nn.MaxPool2d, "maxpool"),
    (nn.AdaptiveAvgPool2d, "adaptive_avgpool"),
    (nn.Linear, "linear"),
    (nn.Dropout, "identity"),
    (nn.Identity, "identity"),
    (nn.Flatten, "flatten"),
    (ShortcutA, "shortcut_a"),
)


def _module_kind(m: nn.Module, where: str) -> str:
    for t, kind in _MODULE_KINDS:
        if isinstance(m, t):
            return kind
    raise NotImplementedError(f"{where}: module type {type(m).__name__} is not supported by the engine table")


def _primitives(net: nn.Module, table: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[list[_Prim], dict]:
    """Primitive ops of all stages in order, and ``{stage: output tensor name}``."""
    prims: list[_Prim] = []
    used: set[str] = set()
    stage_out: dict[str, str] = {INPUT: INPUT}
    cur = INPUT

    def unique(name: str) -> str:
        base, k = name, 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        return name

    for stage, items in table[1:]:
        for item in items:
            if item == FLATTEN:
                p = _Prim(unique(f"{stage}.flatten"), "flatten", [cur], "", _flatten, stage)
                prims.append(p)
                cur = p.name
                continue
            mod = net.get_submodule(item)
            if any(isinstance(mod, t) for t, _ in _MODULE_KINDS):
                p = _Prim(unique(item), _module_kind(mod, item), [cur], item, mod, stage, mod)
                prims.append(p)
                cur = p.name
                continue
            graph = _Tracer().trace(mod)
            env: dict[fx.Node, str] = {}
            for node in graph.nodes:
                if node.op == "placeholder":
                    env[node] = cur
                elif node.op == "output":
                    cur = env[node.args[0]]
                elif node.op == "call_module":
                    sub = mod.get_submodule(node.target)
                    qual = f"{item}.{node.target}"
                    p = _Prim(
                        unique(qual),
                        _module_kind(sub, qual),
                        [env[a] for a in node.args],
                        qual,
                        sub,
                        stage,
                        sub,
                    )
                    prims.append(p)
                    env[node] = p.name
                elif node.op == "call_function" and node.target in (operator.add, torch.add, operator.iadd):
                    p = _Prim(unique(f"{item}.add"), "add", [env[a] for a in node.args], "", _add, stage)
                    prims.append(p)
                    env[node] = p.name
                elif node.op == "call_function" and node.target in (F.relu, torch.relu):
                    p = _Prim(unique(f"{item}.relu"), "relu", [env[node.args[0]]], "", F.relu, stage)
                    prims.append(p)
                    env[node] = p.name
                elif node.op == "call_function" and node.target is torch.flatten and node.args[1:] == (1,):
                    p = _Prim(unique(f"{item}.flatten"), "flatten", [env[node.args[0]]], "", _flatten, stage)
                    prims.append(p)
                    env[node] = p.name
                else:
                    raise NotImplementedError(f"{item}: traced op {node.op} {node.target} is not supported")
        stage_out[stage] = cur
    return prims, stage_out


# ---- the fused layer list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One engine layer (fused), with its shapes and costs per image. Shapes omit the batch dimension.

    ``inputs`` name the producing layers (``"input"`` = the network input); ``modules`` are the torch module
    qualnames fused into it (``module`` the conv/linear one, ``bn`` a folded BatchNorm or ``""``).
    """

    index: int
    name: str
    type: str
    split: str
    inputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    relu: bool = False
    macs: int = 0
    compares: int = 0
    weights: int = 0
    biases: int = 0
    channel_offset: int = 0
    module: str = ""
    bn: str = ""
    modules: tuple[str, ...] = field(default=())

    @property
    def in_shape(self) -> Shape:
        return self.in_shapes[0]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready descriptor (tuples become lists)."""
        return asdict(self)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _numel(shape: Shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _fuse(
    prims: list[_Prim], shapes: dict[str, Shape], stage_out: dict[str, str]
) -> tuple[list[Layer], dict]:
    consumers: dict[str, int] = {}
    for p in prims:
        for i in p.inputs:
            consumers[i] = consumers.get(i, 0) + 1
    alias: dict[str, str] = {INPUT: INPUT}
    out: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}

    def fusable(p: _Prim, types: tuple[str, ...]) -> dict[str, Any] | None:
        src = by_name.get(alias[p.inputs[0]])
        if src is None or src["type"] not in types or src["relu"] or consumers[p.inputs[0]] != 1:
            return None
        if src["split"] != p.stage:
            raise NotImplementedError(
                f"{p.name}: would fuse across the stage boundary {src['split']}|{p.stage}"
            )
        return src

    for p in prims:
        ins = [alias[i] for i in p.inputs]
        in_shapes = tuple(shapes[i] for i in p.inputs)
        oshape = shapes[p.name]
        m = p.mod
        if p.kind == "identity" or (p.kind == "adaptive_avgpool" and oshape == in_shapes[0]):
            alias[p.name] = ins[0]
            continue
        if p.kind == "bn":
            src = fusable(p, ("conv",))
            if src is None or src["bn"]:
                raise NotImplementedError(f"{p.name}: BatchNorm not directly after a conv")
            src["bn"] = p.module
            src["modules"].append(p.module)
            src["biases"] = src["out_shape"][0]
            alias[p.name] = src["name"]
            continue
        if p.kind == "relu":
            src = fusable(p, ("conv", "linear", "add"))
            if src is None:
                raise NotImplementedError(f"{p.name}: ReLU not directly after a conv, linear or add")
            src["relu"] = True
            if p.module:
                src["modules"].append(p.module)
            alias[p.name] = src["name"]
            continue
        d: dict[str, Any] = dict(
            name=p.name,
            type=p.kind,
            split=p.stage,
            inputs=tuple(ins),
            in_shapes=in_shapes,
            out_shape=oshape,
            kernel=(1, 1),
            stride=(1, 1),
            padding=(0, 0),
            groups=1,
            relu=False,
            macs=0,
            compares=0,
            weights=0,
            biases=0,
            channel_offset=0,
            module=p.module,
            bn="",
            modules=[p.module] if p.module else [],
        )
        if p.kind == "conv":
            assert isinstance(m, nn.Conv2d)
            if m.padding_mode != "zeros" or _pair(m.dilation) != (1, 1) or isinstance(m.padding, str):
                raise NotImplementedError(f"{p.name}: only zero padding, dilation 1 and numeric padding")
            d.update(
                kernel=_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding), groups=m.groups
            )
            kh, kw = d["kernel"]
            cin_g = in_shapes[0][0] // m.groups
            d["weights"] = oshape[0] * cin_g * kh * kw
            d["macs"] = _numel(oshape) * cin_g * kh * kw
            d["biases"] = oshape[0] if m.bias is not None else 0
        elif p.kind == "linear":
            assert isinstance(m, nn.Linear)
            d["weights"] = d["macs"] = m.in_features * m.out_features
            d["biases"] = m.out_features if m.bias is not None else 0
        elif p.kind == "maxpool":
            assert isinstance(m, nn.MaxPool2d)
            if m.ceil_mode or _pair(m.dilation) != (1, 1):
                raise NotImplementedError(f"{p.name}: only max-pool with ceil_mode=False, dilation 1")
            stride = m.stride if m.stride is not None else m.kernel_size
            d.update(kernel=_pair(m.kernel_size), stride=_pair(stride), padding=_pair(m.padding))
            d["compares"] = _numel(oshape) * d["kernel"][0] * d["kernel"][1]
        elif p.kind == "adaptive_avgpool":
            if tuple(oshape[1:]) != (1, 1):
                raise NotImplementedError(
                    f"{p.name}: adaptive average pool {in_shapes[0]}->{oshape} is not global"
                )
            d["type"] = "avgpool"
            d["out_shape"] = oshape = (oshape[0],)
            d["kernel"] = (in_shapes[0][1], in_shapes[0][2])
            d["macs"] = _numel(in_shapes[0])
        elif p.kind == "add":
            if len(set(in_shapes)) != 1:
                raise NotImplementedError(f"{p.name}: add of different shapes {in_shapes}")
            d["macs"] = 2 * _numel(oshape)
        elif p.kind == "shortcut_a":
            assert isinstance(m, ShortcutA)
            d.update(stride=(m.stride, m.stride), channel_offset=m.offset)
        elif p.kind == "flatten":
            src = by_name.get(ins[0])
            if src is not None and src["type"] == "avgpool":  # the global pool already gives a vector
                alias[p.name] = ins[0]
                continue
        out.append(d)
        by_name[p.name] = d
        alias[p.name] = p.name
    layers = []
    for i, d in enumerate(out):
        d["modules"] = tuple(d["modules"])
        layers.append(Layer(index=i, **d))
    return layers, {s: alias[t] for s, t in stage_out.items()}


@cache
def _table(net: str) -> tuple[tuple[Layer, ...], dict[str, str]]:
    table = stage_table(net)
    with torch.device("meta"):
        module = build_net(net)
    prims, stage_out = _primitives(module, table)
    shapes: dict[str, Shape] = {}
    with torch.no_grad():
        env = {INPUT: torch.empty((1, *NET_INFO[net].input_shape), device="meta")}
        shapes[INPUT] = NET_INFO[net].input_shape
        for p in prims:
            env[p.name] = p.fn(*[env[i] for i in p.inputs])
            shapes[p.name] = tuple(int(s) for s in env[p.name].shape[1:])
    layers, outs = _fuse(prims, shapes, stage_out)
    covered = {m for layer in layers for m in layer.modules}
    with_params = {n for n, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))}
    if with_params - covered:
        raise AssertionError(
            f"{net}: modules with parameters outside the stage table: {sorted(with_params - covered)}"
        )
    return tuple(layers), outs


def layers(net: str) -> tuple[Layer, ...]:
    """The fused engine layers of ``net`` in execution (topological) order."""
    return _table(check_net_name(net))[0]


def layer(net: str, name: str) -> Layer:
    """The layer called ``name`` in ``net`` (KeyError if absent)."""
    for lay in layers(net):
        if lay.name == name:
            return lay
    raise KeyError(f"{net} has no layer {name!r}")


# ---- split points ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """A named split point: the feature sent over the radio and the edge/host costs per image.

    ``output`` is the layer producing the feature (``"input"`` for the input split). ``shape`` is (C, H, W)
    (an N-vector as (N, 1, 1)); ``tensor_shape`` is the true tensor shape without batch. Edge counts cover
    every layer up to and including the split, host counts every later layer.
    """

    net: str
    name: str
    index: int
    output: str
    shape: tuple[int, int, int]
    tensor_shape: Shape
    elements: int
    feature_bytes: int
    edge_macs: int
    host_macs: int
    edge_weights: int
    host_weights: int
    edge_weight_bytes: int
    host_weight_bytes: int
    edge_biases: int
    host_biases: int
    edge_bias_bytes: int
    host_bias_bytes: int
    edge_layers: tuple[str, ...]
    host_layers: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def _splits(net: str) -> tuple[Split, ...]:
    lays, outs = _table(net)
    names = split_names(net)
    result = []
    for k, name in enumerate(names):
        edge = [lay for lay in lays if names.index(lay.split) <= k]
        host = [lay for lay in lays if names.index(lay.split) > k]
        out = outs[name]
        tshape = (
            NET_INFO[net].input_shape if out == INPUT else next(la.out_shape for la in lays if la.name == out)
        )
        shape3 = tuple(tshape) + (1,) * (3 - len(tshape))
        ew, hw = sum(la.weights for la in edge), sum(la.weights for la in host)
        eb, hb = sum(la.biases for la in edge), sum(la.biases for la in host)
        result.append(
            Split(
                net=net,
                name=name,
                index=k,
                output=out,
                shape=shape3,
                tensor_shape=tuple(tshape),
                elements=_numel(tshape),
                feature_bytes=ACT_BYTES * _numel(tshape),
                edge_macs=sum(la.macs for la in edge),
                host_macs=sum(la.macs for la in host),
                edge_weights=ew,
                host_weights=hw,
                edge_weight_bytes=WEIGHT_BYTES * ew,
                host_weight_bytes=WEIGHT_BYTES * hw,
                edge_biases=eb,
                host_biases=hb,
                edge_bias_bytes=BIAS_BYTES * eb,
                host_bias_bytes=BIAS_BYTES * hb,
                edge_layers=tuple(la.name for la in edge),
                host_layers=tuple(la.name for la in host),
            )
        )
    return tuple(result)


def splits(net: str) -> tuple[Split, ...]:
    """Every split point of ``net`` in network order."""
    return _splits(check_net_name(net))


def get_split(net: str, split: str) -> Split:
    """The split point ``split`` of ``net``; UserError naming the allowed ones when unknown."""
    check_split(check_net_name(net), split)
    return splits(net)[split_names(net).index(split)]


def layers_between(net: str, start: str = INPUT, upto: str | None = None) -> tuple[Layer, ...]:
    """The layers after split ``start`` up to and including split ``upto`` (None: to the end)."""
    names = split_names(check_net_name(net))
    a = names.index(check_split(net, start))
    b = len(names) - 1 if upto is None else names.index(check_split(net, upto))
    if b < a:
        raise UserError(f"split {upto!r} comes before {start!r} in {net}")
    return tuple(la for la in layers(net) if a < names.index(la.split) <= b)


def total_macs(net: str, types: tuple[str, ...] | None = None) -> int:
    """Sum of ``macs`` over the layers of ``net`` (only the given layer types when ``types`` is set)."""
    return sum(la.macs for la in layers(net) if types is None or la.type in types)


def input_shape(net: str) -> tuple[int, int, int]:
    """The nominal input shape (C, H, W) of ``net`` (the one the table is computed at)."""
    return NET_INFO[check_net_name(net)].input_shape


# ---- edge and host modules ------------------------------------------------------------------------------


def _resolve(net: str | nn.Module) -> tuple[str, nn.Module]:
    if isinstance(net, str):
        return check_net_name(net), get_net(net)
    return net_name_of(net), net


def _stage_module(module: nn.Module, stages: tuple[tuple[str, tuple[str, ...]], ...]) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    for _, items in stages:
        for item in items:
            key = item.replace(".", "_") if item != FLATTEN else f"flatten{len(parts)}"
            parts[key] = nn.Flatten(1) if item == FLATTEN else module.get_submodule(item)
    return nn.Sequential(parts)


def edge_model(net: str | nn.Module, split: str) -> nn.Sequential:
    """The edge part of ``net``: every stage up to and including ``split`` (input -> split feature).

    ``net`` is a registry name (default weights) or a module from :func:`golden.nets.get_net`; the returned
    module shares its submodules (and so its parameters) with ``net``; ``copy.deepcopy`` it to decouple.
    The ``input`` split gives an empty ``nn.Sequential`` (identity).
    """
    name, module = _resolve(net)
    k = split_names(name).index(check_split(name, split))
    return _stage_module(module, stage_table(name)[1 : k + 1]).eval()


def host_model(net: str | nn.Module, split: str) -> nn.Sequential:
    """The host part of ``net``: every stage after ``split`` (split feature -> logits); shares parameters."""
    name, module = _resolve(net)
    k = split_names(name).index(check_split(name, split))
    return _stage_module(module, stage_table(name)[k + 1 :]).eval()


__all__ = [
    "FLATTEN",
    "INPUT",
    "NET_NAMES",
    "Layer",
    "Split",
    "check_split",
    "edge_model",
    "get_split",
    "host_model",
    "input_shape",
    "layer",
    "layers",
    "layers_between",
    "split_names",
    "splits",
    "stage_table",
    "total_macs",
]
