"""The one network front end: a built-in name, ``PATH.onnx`` or ``PATH.py:FACTORY`` becomes a :class:`Network`.

Every command resolves its ``--net`` value once, with :func:`load_network`, into a ``Network``: the
architecture (a module factory), its weights, the input shape, and, computed once and cached, the traced
graph, the fused engine layers and the split table (:mod:`golden.graph`). Everything below takes that
object; the built-in names still work wherever a network is expected (they resolve through the same
registry, so a user network, once loaded, is also found by its name).

Sources
-------
* a built-in name (:data:`golden.nets.NET_NAMES`): the registry of :mod:`golden.nets`. The networks that
  existed before the automatic split points keep their split names: their hand-written stage tables
  (``golden.splits.stage_table``) are *aliases* of automatic split points (``conv1`` of AlexNet is the point
  after ``features.2``), checked when the table is built, and their split lists are exactly those aliases, so
  every answer that reads split names is unchanged. The newer built-ins list every automatic point.
* ``PATH.onnx``: imported by :mod:`golden.onnx_import` (checked with ``onnx.checker``). Its weights are the
  initializers in the file; ``--weights`` does not apply.
* ``PATH.py:FACTORY``: the Python file is imported (as a module of its own) and ``FACTORY()`` must return an
  ``nn.Module``; ``--weights FILE`` loads a state_dict into it, as for the built-ins. The input shape comes
  from ``--input-shape`` or a module attribute ``input_shape`` = (C, H, W).

A file network is named after its file's stem (``mynet`` for ``models/mynet.onnx``; ``<stem>_file`` if the
stem is a built-in name): that name labels results, e.g. ``build/sim/<name>.json``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from golden import graph as G
from golden.errors import UserError
from golden.fixedpoint import BIAS_BITS

INPUT = G.INPUT
ACT_BYTES = 2
WEIGHT_BYTES = 2
BIAS_BYTES = (BIAS_BITS + 7) // 8
FILE_HINT = "PATH.onnx, PATH.py:FACTORY"
MAX_INPUT_ELEMENTS = 3 * 4096 * 4096


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
    tensor_shape: G.Shape
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


class _Tables:
    """What is computed once per architecture: trace, layers, split points (shared by weight variants)."""

    def __init__(self, net: Network) -> None:
        self.net = net

    @cached_property
    def traced(self) -> G.Traced:
        net = self.net
        module = net.build(meta=True)
        return G.trace(module, net.input_shape, net.extra_kinds, net.name, net.rename)

    @cached_property
    def fused(self) -> G.Fused:
        return G.fuse(self.traced, self.net.name)

    @cached_property
    def points(self) -> list[G.SplitPoint]:
        return G.find_splits(self.traced, self.fused)

    @cached_property
    def listed(self) -> list[tuple[str, G.SplitPoint]]:
        """(split name, point) of the listed splits: every point, or a built-in's aliases."""
        if not self.net.stage_aliases:
            return [(p.name, p) for p in self.points]
        return [(alias, self._point_after(after)) for alias, after in self.net.stage_aliases(self.fused.layers)]

    def _point_after(self, after: int) -> G.SplitPoint:
        for p in self.points:
            if p.after == after:
                return p
        raise AssertionError(f"{self.net.name}: a hand-written stage ends after layer {after}, which is not a "
                             f"split point")

    @cached_property
    def layers(self) -> tuple[G.Layer, ...]:
        listed = self.listed
        out = []
        for la in self.fused.layers:
            split = next(name for name, p in listed if p.after > la.index)
            out.append(replace(la, split=split))
        return tuple(out)

    @cached_property
    def splits(self) -> tuple[Split, ...]:
        net, lays = self.net, self.layers
        result = []
        for k, (name, p) in enumerate(self.listed):
            edge, host = lays[: p.after], lays[p.after:]
            tshape = net.input_shape if p.output == INPUT else next(la.out_shape for la in lays if la.name == p.output)
            shape3 = tuple(tshape) + (1,) * (3 - len(tshape))
            n = 1
            for s in tshape:
                n *= int(s)
            ew, hw = sum(la.weights for la in edge), sum(la.weights for la in host)
            eb, hb = sum(la.biases for la in edge), sum(la.biases for la in host)
            result.append(Split(
                net=net.name, name=name, index=k, output=p.output, shape=shape3, tensor_shape=tuple(tshape),
                elements=n, feature_bytes=ACT_BYTES * n, edge_macs=sum(la.macs for la in edge),
                host_macs=sum(la.macs for la in host), edge_weights=ew, host_weights=hw,
                edge_weight_bytes=WEIGHT_BYTES * ew, host_weight_bytes=WEIGHT_BYTES * hw, edge_biases=eb,
                host_biases=hb, edge_bias_bytes=BIAS_BYTES * eb, host_bias_bytes=BIAS_BYTES * hb,
                edge_layers=tuple(la.name for la in edge), host_layers=tuple(la.name for la in host)))
        return tuple(result)


@dataclass(frozen=True, eq=False)
class Network:
    """A network as every command sees it (module docstring). ``weights``: None (the default weights), a
    state_dict file or a mapping. ``dataset``: the built-in data set (``imagenet``, ``cifar10``, ``digits``)
    or None for a user network (give the data explicitly)."""

    name: str
    source: str
    input_shape: tuple[int, int, int]
    num_classes: int | None
    dataset: str | None
    default_weights: str
    factory: Callable[[], nn.Module]
    weights: Any = None
    default_loader: Callable[[nn.Module, Any], nn.Module] | None = None
    extra_kinds: dict[type, str] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)
    stage_aliases: Callable[[tuple[G.Layer, ...]], list[tuple[str, int]]] | None = None
    meta_ok: bool = False
    tables: _Tables | None = None

    def __post_init__(self) -> None:
        if self.tables is None:
            object.__setattr__(self, "tables", _Tables(self))

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Network({self.name!r}, source={self.source!r})"

    @property
    def is_builtin(self) -> bool:
        return self.source == "builtin"

    def with_weights(self, weights: Any) -> Network:
        """The same architecture (and cached tables) with other weights."""
        return self if weights is None else replace(self, weights=weights, tables=self.tables)

    # ---- modules ----------------------------------------------------------------------------------------

    def build(self, meta: bool = False) -> nn.Module:
        """The architecture (no weights loaded). ``meta``: on the meta device when the factory allows it
        (shape work without memory)."""
        if meta and self.meta_ok:
            with torch.device("meta"):
                return self.factory()
        return self.factory()

    def module(self, data: str | os.PathLike | None = None) -> nn.Module:
        """The network in eval mode with its weights (``weights``, else the default ones)."""
        m = self.factory()
        if self.weights is not None:
            from golden.nets import load_weights

            load_weights(m, self.weights)
        elif self.default_loader is not None:
            m = self.default_loader(m, data)
        m.eval()
        _OWNER[m] = self
        if not isinstance(getattr(m, "net_name", None), str):
            m.net_name = self.name
        return m

    # ---- tables -----------------------------------------------------------------------------------------

    @property
    def layers(self) -> tuple[G.Layer, ...]:
        assert self.tables is not None
        return self.tables.layers

    @property
    def splits(self) -> tuple[Split, ...]:
        assert self.tables is not None
        return self.tables.splits

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.splits)

    def split(self, name: str) -> Split:
        """The split point ``name``; UserError naming the allowed ones when unknown."""
        for s in self.splits:
            if s.name == name:
                return s
        names = self.split_names
        shown = ", ".join(names) if len(names) <= 40 else ", ".join(names[:20]) + ", ..., " + ", ".join(names[-5:])
        raise UserError(f"unknown split {name!r} for network {self.name}; allowed: {shown}")

    def all_points(self) -> list[tuple[str, str | None]]:
        """Every automatic split point as (automatic name, the listed name or None)."""
        assert self.tables is not None
        listed = {p.after: name for name, p in self.tables.listed}
        return [(p.name, listed.get(p.after)) for p in self.tables.points]

    def layers_between(self, start: str = INPUT, upto: str | None = None) -> tuple[G.Layer, ...]:
        """The layers after split ``start`` up to and including split ``upto`` (None: to the end)."""
        a = self.split(start).index
        b = len(self.splits) - 1 if upto is None else self.split(upto).index
        if b < a:
            raise UserError(f"split {upto!r} comes before {start!r} in {self.name}")
        lo, hi = self._after(a), self._after(b)
        return self.layers[lo:hi]

    def _after(self, k: int) -> int:
        assert self.tables is not None
        return self.tables.listed[k][1].after

    # ---- edge and host modules ------------------------------------------------------------------------------

    def _cut_node(self, split: str) -> str | None:
        """The fx node whose value is sent at ``split`` (None: the input)."""
        assert self.tables is not None
        sp = self.split(split)
        if sp.output == INPUT:
            return None
        return self.tables.traced.nodes[self.tables.fused.end_prim[sp.output]]

    def edge_model(self, module: nn.Module, split: str) -> nn.Module:
        """The edge part of ``module`` (this network with weights): input -> the split feature. Shares
        parameters with ``module``; the ``input`` split gives the identity."""
        cut = self._cut_node(split)
        if cut is None:
            return nn.Sequential().eval()  # the identity
        assert self.tables is not None
        src = self.tables.traced.graph
        g = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        for node in src.nodes:
            if node.op == "output":
                continue
            env[node] = g.node_copy(node, lambda n: env[n])
            if node.name == cut:
                g.output(env[node])
                break
        return _graph_module(module, g)

    def host_model(self, module: nn.Module, split: str) -> nn.Module:
        """The host part of ``module``: the split feature -> logits. Shares parameters with ``module``."""
        cut = self._cut_node(split)
        assert self.tables is not None
        src = self.tables.traced.graph
        if cut is None:
            return _graph_module(module, copy.deepcopy(src))
        if self.split(split).index == len(self.splits) - 1:
            return nn.Sequential().eval()  # the logits were sent: the identity
        g = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        started = False
        for node in src.nodes:
            if not started:
                if node.name == cut:
                    env[node] = g.placeholder("feature")
                    started = True
                continue
            env[node] = g.node_copy(node, lambda n: _host_arg(env, n, self.name, split))
        return _graph_module(module, g)


def _host_arg(env: dict[fx.Node, fx.Node], n: fx.Node, net: str, split: str) -> fx.Node:
    if n not in env:
        raise UserError(f"{net}: the host part after {split} uses {n.name}, computed before the split")
    return env[n]


def _graph_module(root: nn.Module, g: fx.Graph) -> fx.GraphModule:
    g.lint()
    gm = fx.GraphModule(root, g)
    return gm.eval()


# ---- the registry ----------------------------------------------------------------------------------------

_USER: dict[str, Network] = {}
_OWNER: weakref.WeakKeyDictionary[nn.Module, Network] = weakref.WeakKeyDictionary()
_LOADED: dict[tuple, Network] = {}


def builtin_names() -> tuple[str, ...]:
    from golden.nets import NET_NAMES

    return NET_NAMES


def _builtin(name: str) -> Network:
    from golden import nets

    cached = _LOADED.get(("builtin", name))
    if cached is not None:
        return cached
    info = nets.NET_INFO[name]
    from golden.nets.cifar_resnet import ShortcutA

    def loader(m: nn.Module, data: Any, _name: str = name) -> nn.Module:
        return nets.get_net(_name, data=data)  # the registry's default weights (a fresh module)

    from golden import splits as S  # the hand-written stage tables of the networks that had them

    aliases = S.stage_aliases_for(name)
    net = Network(
        name=name, source="builtin", input_shape=info.input_shape, num_classes=info.num_classes,
        dataset=info.dataset, default_weights=info.default_weights,
        factory=lambda _n=name: nets.build_net(_n), default_loader=loader,
        extra_kinds={ShortcutA: "shortcut_a"}, rename=S.BUILTIN_RENAMES.get(name, {}),
        stage_aliases=aliases, meta_ok=True)
    _LOADED[("builtin", name)] = net
    return net


def network(net: str | Network) -> Network:
    """``net`` as a Network: itself, a built-in name, the name of a loaded user network, or a file spec."""
    if isinstance(net, Network):
        return net
    if not isinstance(net, str):
        raise UserError(f"a network must be a name or a model file, got {type(net).__name__}")
    if net in builtin_names():
        return _builtin(net)
    if net in _USER:
        return _USER[net]
    return load_network(net)


def check_spec(spec: str) -> str:
    """``spec`` if it names a built-in network or has the form of a model file, else UserError."""
    if spec in builtin_names() or spec in _USER or spec.endswith(".onnx") or ".py:" in spec:
        return spec
    if spec.endswith(".py"):
        raise UserError(f"network {spec!r}: name the factory function too, as {spec}:FUNCTION")
    raise UserError(f"unknown network {spec!r}; allowed: {', '.join(builtin_names())}, {FILE_HINT}")


def parse_input_shape(text: str | None) -> tuple[int, int, int] | None:
    """``"C,H,W"`` as a tuple (None passes through); UserError naming the value otherwise."""
    if text is None:
        return None
    parts = str(text).replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or shape[0] > 4096 or shape[0] * shape[1] * shape[2] > MAX_INPUT_ELEMENTS:
        raise UserError(f"input shape {text!r} is not C,H,W with positive integers (C <= 4096, C*H*W <= "
                        f"{MAX_INPUT_ELEMENTS})")
    return shape  # type: ignore[return-value]


def load_network(spec: str | Network, weights: str | os.PathLike | Mapping | None = None,
                 input_shape: tuple[int, int, int] | str | None = None) -> Network:
    """Resolve a ``--net`` value once (module docstring). ``weights``: a state_dict file or mapping for a
    built-in or ``.py`` network; ``input_shape``: (C, H, W) or ``"C,H,W"`` where the model does not fix it."""
    shape = parse_input_shape(input_shape) if isinstance(input_shape, str) else input_shape
    if isinstance(spec, Network):
        return spec.with_weights(weights)
    check_spec(spec)
    if spec in builtin_names():
        net = _builtin(spec)
        if shape is not None and tuple(shape) != net.input_shape:
            raise UserError(f"--input-shape {','.join(map(str, shape))} does not match {spec}'s input "
                            f"{','.join(map(str, net.input_shape))}")
        return net.with_weights(weights)
    if spec in _USER and shape is None:
        return _USER[spec].with_weights(weights)
    if spec.endswith(".onnx"):
        if weights is not None:
            raise UserError(f"{spec}: an ONNX model carries its weights; --weights applies to built-in and "
                            f".py networks")
        net = _load_onnx(Path(spec), shape)
    else:
        path, _, factory = spec.rpartition(":")
        net = _load_py(Path(path), factory, shape)
    _USER[net.name] = net
    return net.with_weights(weights)


def load_args(nw: Network) -> tuple[str, str | None, tuple[int, int, int] | None] | None:
    """``(spec, weights, input_shape)`` for :func:`load_network` to rebuild ``nw`` in another process (a cluster
    worker, ``sim.cluster``), or None where it cannot: weights given as an in-memory state_dict, a network
    registered in this process only."""
    if nw.weights is not None and not isinstance(nw.weights, (str, os.PathLike)):
        return None
    weights = None if nw.weights is None else str(nw.weights)
    if nw.is_builtin:
        return nw.name, weights, None
    if nw.source.endswith(".onnx") or ".py:" in nw.source:
        return nw.source, weights, tuple(int(v) for v in nw.input_shape)
    return None


def _file_key(p: Path) -> tuple:
    try:
        st = p.stat()
    except OSError as e:
        raise UserError(f"model file {p} cannot be read: {e.strerror or e}") from None
    if not p.is_file():
        raise UserError(f"model file {p} is not a file")
    return (str(p.resolve()), st.st_mtime_ns, st.st_size)


def _stem_name(p: Path) -> str:
    stem = p.stem.replace(" ", "_")
    return f"{stem}_file" if stem in builtin_names() else stem


def _load_onnx(p: Path, shape: tuple[int, int, int] | None) -> Network:
    if not p.exists():
        raise UserError(f"model file {p} not found")
    key = ("onnx", *_file_key(p), shape)
    if key in _LOADED:
        return _LOADED[key]
    from golden.onnx_import import load_onnx

    imported = load_onnx(p, shape)
    gm = imported.module

    def factory() -> nn.Module:
        m = copy.deepcopy(gm)
        m.graph_module_source = "onnx"  # (deepcopy drops plain attributes; golden.graph keeps the import's scopes)
        return m

    net = Network(name=_stem_name(p), source=str(p), input_shape=tuple(imported.input_shape),
                  num_classes=imported.num_classes, dataset=None, default_weights="the ONNX file's initializers",
                  factory=factory)
    _LOADED[key] = net
    _check_traces(net)
    return net


def _load_py(p: Path, factory_name: str, shape: tuple[int, int, int] | None) -> Network:
    if not p.exists():
        raise UserError(f"model file {p} not found")
    if not factory_name.isidentifier():
        raise UserError(f"network {p}:{factory_name}: {factory_name!r} is not a Python function name")
    key = ("py", *_file_key(p), factory_name, shape)
    if key in _LOADED:
        return _LOADED[key]
    mod_name = "edgesplit_user_" + hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise UserError(f"model file {p} cannot be imported as Python")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # the user's file: any error there is an error in the input
        line = getattr(e, "lineno", None)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"cannot import {p}: {type(e).__name__}{f' at line {line}' if line else ''}: {msg}") from None
    fn = getattr(mod, factory_name, None)
    if not callable(fn):
        funcs = sorted(k for k, v in vars(mod).items() if callable(v) and getattr(v, "__module__", "") == mod_name)
        raise UserError(f"{p} has no function {factory_name!r}; defined there: {', '.join(funcs) or 'none'}")

    def make() -> nn.Module:
        try:
            m = fn()
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise UserError(f"{p}:{factory_name}() raised {type(e).__name__}: {msg}") from None
        if not isinstance(m, nn.Module):
            raise UserError(f"{p}:{factory_name}() returned a {type(m).__name__}, not a torch nn.Module")
        return m

    probe = make()
    own = getattr(probe, "input_shape", None)
    made = [probe]

    def factory() -> nn.Module:  # the probe serves the first call (tracing)
        return made.pop() if made else make()

    if shape is None and own is not None:
        try:
            shape = tuple(int(v) for v in own)  # type: ignore[assignment]
        except (TypeError, ValueError):
            shape = None
    if shape is None:
        raise UserError(f"{p}:{factory_name}: the model does not fix its input shape; give --input-shape C,H,W")
    if len(shape) != 3:
        raise UserError(f"{p}:{factory_name}: input shape {shape} is not C,H,W")
    net = Network(name=_stem_name(p), source=f"{p}:{factory_name}", input_shape=tuple(shape), num_classes=None,
                  dataset=None, default_weights=f"{factory_name}()'s own initialisation", factory=factory)
    _check_traces(net)
    assert net.tables is not None
    out = net.tables.traced.shapes[net.tables.traced.output]
    if len(out) == 1:
        object.__setattr__(net, "num_classes", int(out[0]))
    _LOADED[key] = net
    return net


def _check_traces(net: Network) -> None:
    """Build the tables now, so a model the engine cannot take is refused at the command's entry."""
    assert net.tables is not None
    net.tables.splits  # noqa: B018 (computes trace, fusion and split points)


def network_of(module: nn.Module) -> Network:
    """The Network a module was built for (``Network.module`` or a built-in made by ``golden.nets``)."""
    net = _OWNER.get(module)
    if net is not None:
        return net
    name = getattr(module, "net_name", None)
    if isinstance(name, str) and (name in builtin_names() or name in _USER):
        return network(name)
    raise UserError(f"module {type(module).__name__} is not a network edgesplit knows; load it with "
                    f"golden.network.load_network")


__all__ = ["ACT_BYTES", "BIAS_BYTES", "INPUT", "Network", "Split", "WEIGHT_BYTES", "builtin_names", "check_spec",
           "load_network", "network", "network_of", "parse_input_shape"]
