"""The split points of a network and its engine layers: the public API over :mod:`golden.network`.

The RTL engine's descriptor compiler, the accuracy study and the cost model all read these tables, so they
can never disagree on a layer's shape or MAC count. Every function takes a network as a built-in name, a
loaded user network's name, or a :class:`golden.network.Network` (``golden.network.load_network``).

Split points
------------
Found automatically (:mod:`golden.graph`): every place in the graph where exactly one tensor crosses from
the edge side to the host side; splitting there runs every layer before it on the edge and sends that tensor
(the *split feature*). ``input`` (point 0) sends the input. The networks that had hand-written stage tables
keep their names as aliases of automatic points (:func:`stage_table`, checked when the table is built):

* ``alexnet``: ``input, conv1..conv5, fc6, fc7, fc8``; a conv stage includes its ReLU and a following
  max-pool (``conv5`` sends the pooled 256x6x6 map); ``fc6`` includes the (identity at 224x224) adaptive
  average pool, the flatten, dropout, FC and ReLU.
* ``vgg16``: ``input, conv1_1..conv5_3, fc6, fc7, fc8`` (a conv stage followed by a pool includes it).
* ``resnet50``: ``input, conv1`` (incl. BN, ReLU, max-pool), ``res2a..res2c, res3a..res3d, res4a..res4f,
  res5a..res5c`` (one bottleneck block each), ``pool5`` (global average pool + flatten), ``fc``.
* ``resnet20``/``resnet56``: ``input, stem, layer1.0 ... layer3.<n-1>`` (one basic block each), ``pool``,
  ``fc``.
* ``digits``: ``input, conv1..conv4, fc5, fc6`` (conv stages include ReLU and a following pool).

The other networks (the newer built-ins and every user network) list every automatic point, named after
the module producing the tensor (``features.3``, ``layer2``, ``classifier``).

Layers (the engine's view)
--------------------------
The network is traced (``torch.fx``) into primitive ops, which are then *fused* into engine layers:
BatchNorm is folded into the conv before it, a ReLU or ReLU6 into the conv / FC / residual add before it,
dropout and an adaptive average pool whose output size equals its input size are dropped. Layer types:

``conv``  (kernel, stride, padding, groups: depthwise and grouped too; bias after BN folding), ``linear``,
``maxpool`` (``ceil_mode`` allowed), ``avgpool`` (global average pool, ``[C, H, W] -> [C]``), ``avgpool2d``
(a k x k average pool), ``add`` (residual add, two inputs), ``concat`` (channel concatenation),
``shortcut_a`` (CIFAR option-A shortcut: stride-2 subsample + zero channel padding, a copy), ``flatten``
(``[C, H, W] -> [C*H*W]`` in C, H, W order: no data movement in a CHW layout).

Counting rules (per image): ``macs`` are multiply-accumulates the MAC array runs: conv
``O * OH * OW * (C / groups) * KH * KW``, linear ``I * O``, add ``2 * elements`` (a 2-term dot product per
element, see :mod:`golden.layers`), avgpool ``C * H * W``, avgpool2d ``out elements * KH * KW``; maxpool,
concat, flatten and shortcut_a have 0 MACs (maxpool's ``compares`` = ``out elements * KH * KW``).
``weights`` counts int16 weights (2 bytes each), ``biases`` counts biases (``golden.fixedpoint.BIAS_BITS``
= 40 bits, 5 bytes each). Shapes omit the batch. A split's feature is counted at 16 bits per element;
``shape`` is always (C, H, W), with an FC/flattened feature of N values given as (N, 1, 1)
(``tensor_shape`` holds the true shape).

The tables are computed once per network by a forward pass on the ``meta`` device (no memory, no weights)
at the network's nominal input size and cached on its :class:`~golden.network.Network`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from golden.graph import INPUT, Layer
from golden.nets import NET_NAMES
from golden.nets.vgg import VGG16_CFG
from golden.network import ACT_BYTES, BIAS_BYTES, WEIGHT_BYTES, Network, Split, network, network_of

FLATTEN = "<flatten>"

Net = str | Network


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



#: Hand-written stage tables (the split names of the networks that had them): name -> stage builder.
_STAGES: dict[str, Callable[[], list[tuple[str, tuple[str, ...]]]]] = {
    "alexnet": _alexnet_stages,
    "vgg16": _vgg16_stages,
    "resnet50": _resnet50_stages,
    "resnet20": lambda: _cifar_stages(20),
    "resnet56": lambda: _cifar_stages(56),
    "digits": _digits_stages,
}

#: The flatten of these networks' forward is named after its stage, as in their stage tables.
BUILTIN_RENAMES: dict[str, dict[str, str]] = {
    "alexnet": {"flatten": "fc6.flatten"},
    "vgg16": {"flatten": "fc6.flatten"},
    "digits": {"flatten": "fc5.flatten"},
}


def stage_table(net: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``((split name, module qualnames of the stage), ...)`` starting with ``("input", ())``, for the networks
    with a hand-written table (the others: ``()``). ``FLATTEN`` stands for ``torch.flatten(x, 1)``."""
    if net not in _STAGES:
        return ()
    return ((INPUT, ()), *((name, tuple(items)) for name, items in _STAGES[net]()))


def _in_item(layer: Layer, stage: str, item: str) -> bool:
    if item == FLATTEN:
        return layer.type == "flatten" and layer.name == f"{stage}.flatten"
    keys = layer.modules or (layer.name,)
    return any(k == item or k.startswith(item + ".") for k in keys) or layer.name.startswith(item + ".")


def stage_aliases_for(net: str) -> Callable[[tuple[Layer, ...]], list[tuple[str, int]]] | None:
    """For a network with a stage table: a function from its fused layers to ``[(split name, layers on the
    edge)]``; the network checks that each is an automatic split point."""
    table = stage_table(net)
    if not table:
        return None

    def aliases(lays: tuple[Layer, ...]) -> list[tuple[str, int]]:
        stage_of = []
        for la in lays:
            k = next((k for k, (name, items) in enumerate(table) if any(_in_item(la, name, it) for it in items)),
                     None)
            if k is None:
                raise AssertionError(f"{net}: layer {la.name} is in no stage of the stage table")
            stage_of.append(k)
        out = [(INPUT, 0)]
        for k, (name, _) in enumerate(table[1:], start=1):
            after = sum(1 for s in stage_of if s <= k)
            if any(s > k for s in stage_of[:after]):
                raise AssertionError(f"{net}: stage {name} is not a prefix of the layer order")
            out.append((name, after))
        return out

    return aliases


def split_names(net: Net) -> tuple[str, ...]:
    """The split names of ``net`` in network order (``input`` first, the logits last)."""
    return network(net).split_names


def check_split(net: Net, split: str) -> str:
    """Return ``split`` if ``net`` has it, else raise UserError naming the allowed splits."""
    network(net).split(split)
    return split


def layers(net: Net) -> tuple[Layer, ...]:
    """The fused engine layers of ``net`` in execution (topological) order."""
    return network(net).layers


def layer(net: Net, name: str) -> Layer:
    """The layer called ``name`` in ``net`` (KeyError if absent)."""
    for lay in layers(net):
        if lay.name == name:
            return lay
    raise KeyError(f"{network(net).name} has no layer {name!r}")


def splits(net: Net) -> tuple[Split, ...]:
    """Every split point of ``net`` in network order."""
    return network(net).splits


def get_split(net: Net, split: str) -> Split:
    """The split point ``split`` of ``net``; UserError naming the allowed ones when unknown."""
    return network(net).split(split)


def layers_between(net: Net, start: str = INPUT, upto: str | None = None) -> tuple[Layer, ...]:
    """The layers after split ``start`` up to and including split ``upto`` (None: to the end)."""
    return network(net).layers_between(start, upto)


def total_macs(net: Net, types: tuple[str, ...] | None = None) -> int:
    """Sum of ``macs`` over the layers of ``net`` (only the given layer types when ``types`` is set)."""
    return sum(la.macs for la in layers(net) if types is None or la.type in types)


def input_shape(net: Net) -> tuple[int, int, int]:
    """The nominal input shape (C, H, W) of ``net`` (the one the table is computed at)."""
    return network(net).input_shape


# ---- edge and host modules ------------------------------------------------------------------------------


def _resolve(net: Net | nn.Module) -> tuple[Network, nn.Module]:
    if isinstance(net, nn.Module):
        return network_of(net), net
    n = network(net)
    return n, n.module()


def edge_model(net: Net | nn.Module, split: str) -> nn.Module:
    """The edge part of ``net``: every layer up to and including ``split`` (input -> split feature).

    ``net`` is a network (default weights) or a module from :func:`golden.nets.get_net` /
    ``Network.module``; the returned module (a ``torch.fx.GraphModule``) shares its submodules (and so its
    parameters) with it; ``copy.deepcopy`` it to decouple. The ``input`` split gives the identity.
    """
    n, module = _resolve(net)
    return n.edge_model(module, split)


def host_model(net: Net | nn.Module, split: str) -> nn.Module:
    """The host part of ``net``: every layer after ``split`` (split feature -> logits); shares parameters."""
    n, module = _resolve(net)
    return n.host_model(module, split)


__all__ = [
    "ACT_BYTES",
    "BIAS_BYTES",
    "FLATTEN",
    "INPUT",
    "NET_NAMES",
    "WEIGHT_BYTES",
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
