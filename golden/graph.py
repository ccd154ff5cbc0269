"""Any ``nn.Module`` (or an imported ONNX graph) as the engine's layer list and its split points.

Three steps, each a function:

1. :func:`trace` turns the module into *primitive ops* (:class:`Prim`) in execution order with ``torch.fx``
   (the whole network at once; an ONNX import is already an fx graph), and runs it once on a ``meta`` (or
   zero) input for every tensor's shape. A primitive is a supported ``nn`` module or function (see
   :data:`SUPPORTED_OPS`); anything else is a :class:`~golden.errors.UserError` naming the node, the operator
   and the supported list.
2. :func:`fuse` folds them into engine layers (:class:`Layer`): BatchNorm into the conv before it, ReLU /
   ReLU6 into the conv, linear or residual add before it, dropout and identities dropped, a flatten after a
   global average pool absorbed.
3. :func:`find_splits` finds the *split points*: every position in the layer order after which exactly one
   tensor is still needed (between the blocks of a residual network, after each layer of a chain; a flatten,
   which only reshapes, is not one). A split point is named after the module that produces its tensor,
   lifted to the outermost enclosing module whose output it is (``features.3`` for an inverted-residual
   block, ``layer1`` after the last block of that stage, ``classifier`` for the logits); a tensor produced by a
   function outside any module is named after that function's node (``add_3``).

Layer names are the primitive names: a module's qualified name (``features.0``), or for a function the
innermost enclosing module plus the operation (``layer1.0.add``), made unique with ``_1``, ``_2``.
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from golden.errors import UserError

INPUT = "input"
Shape = tuple[int, ...]

#: What the front end accepts (names as a user would look for them; the error messages list these).
SUPPORTED_OPS = (
    "Conv2d (any groups: depthwise and grouped)", "BatchNorm2d (after a conv)", "ReLU", "ReLU6 / Hardtanh(0, 6)",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d (global, or identity)", "Linear", "Flatten", "residual add",
    "channel concat (torch.cat dim 1)", "Dropout / Identity",
)


def supported_text() -> str:
    return ", ".join(SUPPORTED_OPS)


# ---- primitives --------------------------------------------------------------------------------------------


@dataclass
class Prim:
    """One primitive op. ``inputs`` are tensor names (other prims or ``"input"``); ``module`` the qualified
    name of its ``nn.Module`` ("" for a function); ``scope`` the enclosing modules, outermost first (not the op's
    own module); ``args`` the geometry of functional ops; ``node`` the fx node it came from."""

    name: str
    kind: str
    inputs: list[str]
    module: str
    scope: tuple[str, ...]
    node: str
    mod: nn.Module | None = None
    args: dict[str, Any] = field(default_factory=dict)


class _Tracer(fx.Tracer):
    """torch.fx with our leaf modules (standard ``nn`` modules are leaves already)."""

    leaves: tuple[type, ...] = ()

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, self.leaves) or super().is_leaf_module(m, qualname)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _module_kind(m: nn.Module, extra: dict[type, str]) -> str | None:
    for t, kind in extra.items():
        if isinstance(m, t):
            return kind
    if isinstance(m, nn.Conv2d):
        return "conv"
    if isinstance(m, nn.BatchNorm2d):
        return "bn"
    if isinstance(m, nn.ReLU6):
        return "relu6"
    if isinstance(m, nn.Hardtanh):
        return "relu6" if (m.min_val, m.max_val) == (0.0, 6.0) else None
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.MaxPool2d):
        return "maxpool"
    if isinstance(m, nn.AvgPool2d):
        return "avgpool2d"
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return "adaptive_avgpool"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
        return "identity"
    if isinstance(m, nn.Flatten):
        return "flatten" if (m.start_dim, m.end_dim) == (1, -1) else None
    return None


def _module_args(kind: str, m: nn.Module, where: str) -> dict[str, Any]:
    if kind == "conv":
        assert isinstance(m, nn.Conv2d)
        if m.padding_mode != "zeros" or _pair(m.dilation) != (1, 1) or isinstance(m.padding, str):
            raise UserError(f"node {where}: Conv2d with padding_mode={m.padding_mode!r}, dilation={m.dilation}, "
                            f"padding={m.padding!r}; supported: zero padding given as numbers, dilation 1")
        return dict(kernel=_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding), groups=m.groups)
    if kind in ("maxpool", "avgpool2d"):
        if kind == "maxpool" and _pair(m.dilation) != (1, 1):
            raise UserError(f"node {where}: MaxPool2d with dilation {m.dilation}; supported: dilation 1")
        stride = m.stride if m.stride is not None else m.kernel_size
        a = dict(kernel=_pair(m.kernel_size), stride=_pair(stride), padding=_pair(m.padding),
                 ceil_mode=bool(m.ceil_mode))
        if kind == "avgpool2d":
            a["count_include_pad"] = bool(m.count_include_pad)
            if m.divisor_override is not None:
                raise UserError(f"node {where}: AvgPool2d with divisor_override; supported: none")
        return a
    if kind == "adaptive_avgpool":
        return dict(output_size=m.output_size)
    return {}


def _fn_kind(node: fx.Node) -> tuple[str, dict[str, Any]] | None:
    """The primitive a call_function / call_method node stands for, or None if unsupported."""
    t, args, kw = node.target, node.args, node.kwargs
    method = node.op == "call_method"

    def arg(i: int, name: str, default: Any = None) -> Any:
        return args[i] if len(args) > i else kw.get(name, default)

    if t in (operator.add, operator.iadd, torch.add) or (method and t in ("add", "add_")):
        tensors = [a for a in args[:2] if isinstance(a, fx.Node)]
        if len(tensors) == 2 and kw.get("alpha", 1) == 1:
            return "add", {}
        return None
    if t in (F.relu, torch.relu, torch.relu_) or (method and t in ("relu", "relu_")):
        return "relu", {}
    if t is F.relu6:
        return "relu6", {}
    if t is F.hardtanh:
        return ("relu6", {}) if (arg(1, "min_val", -1.0), arg(2, "max_val", 1.0)) == (0.0, 6.0) else None
    if t in (torch.clamp, torch.clip) or (method and t in ("clamp", "clamp_", "clip", "clip_")):
        lo, hi = arg(1, "min"), arg(2, "max")
        if (lo, hi) == (0, 6) or (lo, hi) == (0.0, 6.0):
            return "relu6", {}
        if lo in (0, 0.0) and hi is None:
            return "relu", {}
        return None
    if t is torch.flatten or (method and t == "flatten"):
        return ("flatten", {}) if (arg(1, "start_dim", 0), arg(2, "end_dim", -1)) == (1, -1) else None
    if method and t in ("view", "reshape") or t is torch.reshape:
        return "reshape", {}
    if t in (torch.cat, torch.concat, torch.concatenate):
        dim = arg(1, "dim", 0)
        return ("concat", {}) if dim in (1, -3) else None
    if t is F.adaptive_avg_pool2d:
        return "adaptive_avgpool", dict(output_size=arg(1, "output_size"))
    if t is torch.mean or (method and t == "mean"):
        dims = arg(1, "dim")
        dims = tuple(sorted(int(d) % 4 for d in dims)) if isinstance(dims, (list, tuple)) else None
        return ("gap_mean", dict(keepdim=bool(arg(2, "keepdim", False)))) if dims == (2, 3) else None
    if t is F.max_pool2d:
        k = arg(1, "kernel_size")
        s = arg(2, "stride") or k
        if _pair(arg(4, "dilation", 1)) != (1, 1) or arg(5, "ceil_mode", False) not in (True, False):
            return None
        return "maxpool", dict(kernel=_pair(k), stride=_pair(s), padding=_pair(arg(3, "padding", 0)),
                               ceil_mode=bool(arg(5, "ceil_mode", False)))
    if t is F.avg_pool2d:
        k = arg(1, "kernel_size")
        s = arg(2, "stride") or k
        if arg(6, "divisor_override") is not None:
            return None
        return "avgpool2d", dict(kernel=_pair(k), stride=_pair(s), padding=_pair(arg(3, "padding", 0)),
                                 ceil_mode=bool(arg(4, "ceil_mode", False)),
                                 count_include_pad=bool(arg(5, "count_include_pad", True)))
    if t in (F.dropout, F.dropout2d) or (method and t in ("contiguous", "clone")):
        return "identity", {}
    if (method and t == "size") or t is getattr or t is operator.getitem:
        return "meta", {}
    return None


def _node_scope(node: fx.Node, own_module: bool) -> tuple[str, ...]:
    if "scope" in node.meta:  # an ONNX import (golden.onnx_import) says it directly
        return tuple(node.meta["scope"])
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ()
    names = [v[0] if isinstance(v, tuple) else str(v) for v in stack.values()]
    return tuple(names[:-1] if own_module else names)


@dataclass
class Traced:
    """The primitives of a network, its output tensor and every tensor's shape (batch omitted); ``nodes``
    maps a tensor name to its fx node, ``graph`` is the fx graph (for the edge and host modules)."""

    prims: list[Prim]
    output: str
    shapes: dict[str, Shape]
    graph: fx.Graph
    nodes: dict[str, str]


def _out_len(n: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """torch's output length of a convolution or pooling window (``ceil_mode``: the last window may start in
    the right padding only if it starts inside the input or its left padding)."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


_SHAPE_KEEPING_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Dropout, nn.Dropout2d, nn.Identity)
_SHAPE_KEEPING_FUNCTIONS = (F.relu, F.relu6, F.hardtanh, F.dropout, F.dropout2d, torch.relu)


def _meta_shape(mod: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    """The output shape of ``mod`` on ``x`` for the common modules whose meta kernels cost the most to load
    (their first call imports torch's symbolic-shape and dynamo machinery, about 2 s), from torch's own
    formulas; None where the module is another one, or its input is not what it takes (running it then
    raises torch's own error)."""
    t = type(mod)
    if t in _SHAPE_KEEPING_MODULES:
        return tuple(x.shape)
    if t is nn.BatchNorm2d:
        return tuple(x.shape) if x.dim() == 4 and x.shape[1] == mod.num_features else None
    if t is nn.Linear:
        return (*x.shape[:-1], mod.out_features) if x.dim() >= 1 and x.shape[-1] == mod.in_features else None
    if x.dim() != 4:
        return None
    n, c, h, w = (int(v) for v in x.shape)
    if t is nn.Conv2d:
        if c != mod.in_channels or not isinstance(mod.padding, tuple):   # "same" / "valid": torch's own path
            return None
        hw = [_out_len(v, mod.kernel_size[i], mod.stride[i], mod.padding[i], mod.dilation[i])
              for i, v in enumerate((h, w))]
        return (n, mod.out_channels, *hw) if min(hw) >= 1 else None
    if t in (nn.MaxPool2d, nn.AvgPool2d):
        k, s, p = (_pair(getattr(mod, a)) for a in ("kernel_size", "stride", "padding"))
        d = _pair(mod.dilation) if t is nn.MaxPool2d else (1, 1)
        hw = [_out_len(v, k[i], s[i], p[i], d[i], mod.ceil_mode) for i, v in enumerate((h, w))]
        return (n, c, *hw) if min(hw) >= 1 and max(p) * 2 <= min(k) else None
    if t is nn.AdaptiveAvgPool2d:
        o = mod.output_size
        o = (o, o) if isinstance(o, int) else tuple(o)
        return (n, c, h if o[0] is None else o[0], w if o[1] is None else o[1])
    return None


class _ShapeRecorder(fx.Interpreter):
    """Runs the graph once and keeps every node's value. On the meta device, the common modules' (and
    activations') outputs are made from their shapes (:func:`_meta_shape`) instead of running their meta
    kernels: the same shapes, without the ~2 s of imports their first run costs (``edgesplit dse``)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.out: dict[str, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        v = self._meta_shortcut(n)
        if v is None:
            v = super().run_node(n)
        self.out[n.name] = v
        return v

    def _meta_shortcut(self, n: fx.Node) -> torch.Tensor | None:
        if n.op not in ("call_module", "call_function") or not n.args or not isinstance(n.args[0], fx.Node):
            return None
        x = self.env.get(n.args[0])
        if not isinstance(x, torch.Tensor) or x.device.type != "meta":
            return None
        if n.op == "call_function":
            return x if n.target in _SHAPE_KEEPING_FUNCTIONS and len(n.args) == 1 else None
        shape = _meta_shape(self.fetch_attr(str(n.target)), x)
        return None if shape is None else torch.empty(shape, dtype=x.dtype, device="meta")


def fx_graph(module: nn.Module, leaves: tuple[type, ...] = (), name: str = "network") -> fx.Graph:
    """The fx graph of ``module`` (an ONNX import's own graph as it is)."""
    if isinstance(module, fx.GraphModule) and getattr(module, "graph_module_source", None) == "onnx":
        return module.graph
    tracer = type("_T", (_Tracer,), {"leaves": leaves})()
    try:
        return tracer.trace(module)
    except UserError:
        raise
    except Exception as e:  # torch.fx raises many types for code it cannot trace
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{name}: torch.fx cannot trace the model's forward ({type(e).__name__}: {first}); "
                        f"edgesplit needs a forward made of supported operators: {supported_text()}") from None


def trace(module: nn.Module, input_shape: tuple[int, int, int], extra_kinds: dict[type, str] | None = None,
          name: str = "network", rename: dict[str, str] | None = None) -> Traced:
    """The primitives of ``module`` for one image of ``input_shape`` (C, H, W). ``extra_kinds`` adds module
    types that are primitives of their own (the CIFAR option-A shortcut); ``rename`` renames primitives."""
    extra = dict(extra_kinds or {})
    graph = fx_graph(module, tuple(extra), name)
    inputs = [n.name for n in graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise UserError(f"{name}: the model takes {len(inputs)} inputs ({', '.join(inputs)}); edgesplit needs one "
                        f"image input [N, C, H, W]" if inputs else f"{name}: the model takes no input")
    gm = fx.GraphModule(module, graph)
    try:
        dev = next(iter(module.parameters())).device
    except StopIteration:
        dev = torch.device("cpu")
    rec = _ShapeRecorder(gm)
    try:
        with torch.no_grad():
            rec.run(torch.zeros((1, *input_shape), device=dev))
    except UserError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{name}: running the model on one input of shape {tuple(input_shape)} failed "
                        f"({type(e).__name__}: {first}); check --input-shape") from None
    prims: list[Prim] = []
    used: set[str] = set()
    env: dict[str, str | None] = {}     # fx node name -> tensor name (None: not a tensor)
    shapes: dict[str, Shape] = {INPUT: tuple(int(s) for s in input_shape)}
    nodes: dict[str, str] = {}
    output = None
    rename = rename or {}

    def unique(base: str) -> str:
        base = rename.get(base, base)
        nm, k = base, 1
        while nm in used:
            nm, k = f"{base}_{k}", k + 1
        used.add(nm)
        return nm

    def tensor_inputs(node: fx.Node) -> list[str]:
        out: list[str] = []

        def walk(a: Any) -> None:
            if isinstance(a, fx.Node):
                t = env.get(a.name)
                if t is not None:
                    out.append(t)
            elif isinstance(a, (list, tuple)):
                for b in a:
                    walk(b)
            elif isinstance(a, dict):
                for b in a.values():
                    walk(b)

        walk(node.args)
        walk(node.kwargs)
        return out

    for node in graph.nodes:
        if node.op == "placeholder":
            env[node.name] = INPUT
            nodes[INPUT] = node.name
            continue
        if node.op == "output":
            outs = node.args[0]
            if not isinstance(outs, fx.Node) or env.get(outs.name) is None:
                raise UserError(f"{name}: the model must return one tensor (the logits)")
            output = env[outs.name]
            continue
        if node.op == "get_attr":
            raise UserError(f"{name}: node {node.name} reads the parameter {node.target!r} inside forward; "
                            f"supported: parameters only inside modules ({supported_text()})")
        if node.op == "call_module":
            mod = gm.get_submodule(str(node.target))
            kind = _module_kind(mod, extra)
            if kind is None:
                raise UserError(f"{name}: node {node.target}: module {type(mod).__name__} is not supported; "
                                f"supported: {supported_text()}")
            args = _module_args(kind, mod, str(node.target))
            pname = unique(str(node.target))
            module_name, scope = str(node.target), _node_scope(node, True)
        else:
            fk = _fn_kind(node)
            what = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
            if fk is None:
                raise UserError(f"{name}: node {node.name}: operator {what} is not supported (with these "
                                f"arguments); supported: {supported_text()}")
            kind, args = fk
            scope = _node_scope(node, False)
            if kind == "meta":
                if isinstance(rec.out[node.name], torch.Tensor):
                    raise UserError(f"{name}: node {node.name}: operator {what} on a tensor (indexing or slicing) "
                                    f"is not supported; supported: {supported_text()}")
                env[node.name] = None
                continue
            op = {"gap_mean": "mean", "adaptive_avgpool": "avgpool"}.get(kind, kind)
            pname = unique(f"{scope[-1]}.{op}" if scope else op)
            module_name, mod = "", None
        ins = tensor_inputs(node)
        if not ins:
            raise UserError(f"{name}: node {node.name} has no tensor input")
        value = rec.out[node.name]
        if not isinstance(value, torch.Tensor):
            raise UserError(f"{name}: node {node.name} does not produce a single tensor")
        oshape = tuple(int(s) for s in value.shape[1:])
        if kind == "reshape":
            src = shapes[ins[0]]
            n_in = 1
            for s in src:
                n_in *= s
            if oshape != (n_in,):
                raise UserError(f"{name}: node {node.name}: reshape {src} -> {oshape} is not a flatten to "
                                f"[N, {n_in}]; supported: flatten only")
            kind = "flatten"
        if kind == "identity":
            env[node.name] = ins[0]
            continue
        if kind != "add" and kind != "concat" and len(ins) != 1:
            raise UserError(f"{name}: node {node.name}: {kind} of {len(ins)} tensors; supported: one input")
        prims.append(Prim(pname, kind, ins, module_name, scope, node.name, mod, args))
        shapes[pname] = oshape
        env[node.name] = pname
        nodes[pname] = node.name
    if output is None:
        raise UserError(f"{name}: the model has no output")
    return Traced(prims, output, shapes, graph, nodes)


# ---- the fused layer list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One engine layer (fused), with its shapes and costs per image. Shapes omit the batch dimension.

    ``inputs`` name the producing layers (``"input"`` = the network input); ``modules`` are the torch module
    qualnames fused into it (``module`` the conv/linear one, ``bn`` a folded BatchNorm or ``""``). ``split`` is
    the split point the layer belongs to (the first one at or after it). ``relu6``: the activation is clamped
    to [0, 6] (``relu`` is then True too). ``ceil_mode``: a pool's output size rounds up.
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
    relu6: bool = False
    ceil_mode: bool = False

    @property
    def in_shape(self) -> Shape:
        return self.in_shapes[0]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready descriptor (tuples become lists); the fields added with issue #9 only when set, so the
        descriptors of the networks that have none of them are unchanged."""
        d = asdict(self)
        for k in ("relu6", "ceil_mode"):
            if not d[k]:
                del d[k]
        return d


def _numel(shape: Shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


@dataclass
class Fused:
    """The fused layers, each layer's last primitive (whose fx node ends it) and every primitive's layer."""

    layers: list[Layer]
    last_prim: dict[str, str]      # layer -> the primitive whose output is the layer's output tensor
    end_prim: dict[str, str]       # layer -> the last primitive aliased to that output (identity, flatten)
    of_prim: dict[str, str]        # primitive -> the layer it belongs to


def fuse(tr: Traced, name: str = "network") -> Fused:
    """Fold the primitives of ``tr`` into engine layers (module docstring); ``split`` is left empty."""
    prims, shapes = tr.prims, tr.shapes
    consumers: dict[str, int] = {}
    for p in prims:
        for i in p.inputs:
            consumers[i] = consumers.get(i, 0) + 1
    consumers[tr.output] = consumers.get(tr.output, 0) + 1
    alias: dict[str, str] = {INPUT: INPUT}
    out: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}
    last_prim: dict[str, str] = {}
    end_prim: dict[str, str] = {}
    of_prim: dict[str, str] = {}

    def fusable(p: Prim, types: tuple[str, ...]) -> dict[str, Any] | None:
        src = by_name.get(alias[p.inputs[0]])
        if src is None or src["type"] not in types or src["relu"] or consumers[p.inputs[0]] != 1:
            return None
        return src

    def absorb(p: Prim, layer: str, ends: bool) -> None:
        alias[p.name] = layer
        of_prim[p.name] = layer
        end_prim[layer] = p.name
        if ends:
            last_prim[layer] = p.name

    for p in prims:
        ins = [alias[i] for i in p.inputs]
        in_shapes = tuple(shapes[i] for i in p.inputs)
        oshape = shapes[p.name]
        m = p.mod
        where = p.module or p.name
        if p.kind == "identity" or (p.kind == "adaptive_avgpool" and oshape == in_shapes[0]):
            if ins[0] != INPUT:
                absorb(p, ins[0], False)
            else:
                alias[p.name] = INPUT
            continue
        if p.kind == "bn":
            src = fusable(p, ("conv",))
            if src is None or src["bn"]:
                raise UserError(f"{name}: node {where}: BatchNorm2d not directly after a conv (with no other use "
                                f"of the conv's output); supported: {supported_text()}")
            src["bn"] = p.module
            src["modules"].append(p.module)
            src["biases"] = src["out_shape"][0]
            absorb(p, src["name"], True)
            continue
        if p.kind in ("relu", "relu6"):
            src = fusable(p, ("conv", "linear", "add"))
            if src is None:
                raise UserError(f"{name}: node {where}: {'ReLU6' if p.kind == 'relu6' else 'ReLU'} not directly "
                                f"after a conv, linear or residual add (with no other use of its output); "
                                f"supported: {supported_text()}")
            src["relu"] = True
            src["relu6"] = p.kind == "relu6"
            if p.module:
                src["modules"].append(p.module)
            absorb(p, src["name"], True)
            continue
        d: dict[str, Any] = dict(
            name=p.name, type=p.kind, split="", inputs=tuple(ins), in_shapes=in_shapes, out_shape=oshape,
            kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups=1, relu=False, macs=0, compares=0, weights=0,
            biases=0, channel_offset=0, module=p.module, bn="", modules=[p.module] if p.module else [],
            relu6=False, ceil_mode=False,
        )
        if p.kind == "conv":
            assert isinstance(m, nn.Conv2d)
            d.update(kernel=p.args["kernel"], stride=p.args["stride"], padding=p.args["padding"],
                     groups=p.args["groups"])
            kh, kw = d["kernel"]
            cin_g = in_shapes[0][0] // m.groups
            d["weights"] = oshape[0] * cin_g * kh * kw
            d["macs"] = _numel(oshape) * cin_g * kh * kw
            d["biases"] = oshape[0] if m.bias is not None else 0
        elif p.kind == "linear":
            assert isinstance(m, nn.Linear)
            if len(in_shapes[0]) != 1:
                raise UserError(f"{name}: node {where}: Linear on a {len(in_shapes[0]) + 1}-D tensor; supported: "
                                f"Linear on a flattened [N, features] input")
            d["weights"] = d["macs"] = m.in_features * m.out_features
            d["biases"] = m.out_features if m.bias is not None else 0
        elif p.kind in ("maxpool", "avgpool2d"):
            kh, kw = p.args["kernel"]
            ph, pw = p.args["padding"]
            if 2 * ph > kh or 2 * pw > kw:
                raise UserError(f"{name}: node {where}: pool padding {p.args['padding']} exceeds half the kernel "
                                f"{p.args['kernel']}")
            if p.kind == "avgpool2d" and not p.args["count_include_pad"] and (ph or pw):
                raise UserError(f"{name}: node {where}: AvgPool2d(count_include_pad=False) with padding; "
                                f"supported: count_include_pad=True or no padding")
            if p.kind == "avgpool2d" and p.args["ceil_mode"]:
                h, w = in_shapes[0][1:]
                sh, sw = p.args["stride"]
                if tuple(oshape[1:]) != ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1):
                    raise UserError(f"{name}: node {where}: AvgPool2d(ceil_mode=True) whose last windows reach "
                                    f"past the map (torch divides those by fewer cells); supported: windows "
                                    f"inside the padded map")
                p.args["ceil_mode"] = False
            d.update(kernel=p.args["kernel"], stride=p.args["stride"], padding=p.args["padding"],
                     ceil_mode=p.args["ceil_mode"])
            if p.kind == "maxpool":
                d["compares"] = _numel(oshape) * kh * kw
            else:
                d["macs"] = _numel(oshape) * kh * kw  # a depthwise conv with one constant weight (engine)
        elif p.kind in ("adaptive_avgpool", "gap_mean"):
            if len(in_shapes[0]) != 3 or (p.kind == "adaptive_avgpool" and tuple(oshape[1:]) != (1, 1)):
                raise UserError(f"{name}: node {where}: adaptive average pool {in_shapes[0]} -> {oshape} is neither "
                                f"global (output 1x1) nor the identity; supported: those two")
            d["type"] = "avgpool"
            d["out_shape"] = oshape = (oshape[0],)
            d["kernel"] = (in_shapes[0][1], in_shapes[0][2])
            d["macs"] = _numel(in_shapes[0])
        elif p.kind == "add":
            if len(set(in_shapes)) != 1:
                raise UserError(f"{name}: node {where}: add of different shapes {in_shapes}; supported: the "
                                f"residual add of two equal shapes")
            d["macs"] = 2 * _numel(oshape)
        elif p.kind == "concat":
            if any(len(s) != 3 for s in in_shapes) or len({s[1:] for s in in_shapes}) != 1:
                raise UserError(f"{name}: node {where}: concat of {in_shapes}; supported: maps of equal height "
                                f"and width joined along channels")
        elif p.kind == "shortcut_a":
            d.update(stride=(m.stride, m.stride), channel_offset=m.offset)
        elif p.kind == "flatten":
            src = by_name.get(ins[0])
            if src is not None and src["type"] == "avgpool":  # the global pool already gives a vector
                absorb(p, ins[0], False)
                continue
            if ins[0] == INPUT:
                raise UserError(f"{name}: node {where}: the input is flattened first; supported: a CNN whose "
                                f"first layer is a conv")
        out.append(d)
        by_name[p.name] = d
        alias[p.name] = p.name
        of_prim[p.name] = p.name
        last_prim[p.name] = p.name
        end_prim[p.name] = p.name
    layers = []
    for i, d in enumerate(out):
        d["modules"] = tuple(d["modules"])
        layers.append(Layer(index=i, **d))
    if alias.get(tr.output, tr.output) == INPUT:
        raise UserError(f"{name}: the model computes nothing")
    return Fused(layers, last_prim, end_prim, of_prim)


# ---- split points ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitPoint:
    """A position in the layer order after which one tensor crosses: ``after`` layers run on the edge;
    ``output`` is the layer producing the crossing tensor (``"input"`` at position 0); ``name`` its auto
    name."""

    name: str
    after: int
    output: str


def find_splits(tr: Traced, fused: Fused) -> list[SplitPoint]:
    """Every split point of the network (module docstring), ``input`` first and the logits last."""
    lays = fused.layers
    last_use: dict[str, int] = {INPUT: -1}
    for i, la in enumerate(lays):
        for t in la.inputs:
            last_use[t] = max(last_use.get(t, -1), i)
    final = fused.of_prim.get(tr.output, tr.output)
    last_use[final] = len(lays)
    points = [SplitPoint(INPUT, 0, INPUT)]
    for i, la in enumerate(lays):
        live = [t for t in ([INPUT] + [x.name for x in lays[: i + 1]]) if last_use.get(t, -1) > i]
        if len(live) == 1 and live[0] == la.name and la.type != "flatten":
            points.append(SplitPoint(_auto_name(tr, fused, la.name), i + 1, la.name))
    names = [p.name for p in points]
    if len(set(names)) != len(names):  # (a module called twice: keep the producing primitives' names)
        points = [SplitPoint(fused.last_prim.get(p.output, p.name), p.after, p.output) if names.count(p.name) > 1
                  else p for p in points]
    return points


def _auto_name(tr: Traced, fused: Fused, layer: str) -> str:
    """The outermost module whose output is ``layer``'s tensor, else the producing primitive's name.

    A module *outputs* the tensor when the primitive producing it is the module's last one and no other
    tensor made inside the module is used outside it."""
    prims = tr.prims
    idx = {p.name: i for i, p in enumerate(prims)}
    p_last = prims[idx[fused.last_prim[layer]]]
    consumers: dict[str, set[int]] = {}
    for i, p in enumerate(prims):
        for t in p.inputs:
            consumers.setdefault(t, set()).add(i)
    for t in (tr.output,):
        consumers.setdefault(t, set()).add(len(prims))  # the network output is used "outside"
    best = None
    for s in reversed(list(p_last.scope) + ([p_last.module] if p_last.module else [])):
        inside = [i for i, p in enumerate(prims) if s == p.module or s in p.scope]
        if inside[-1] != idx[p_last.name]:
            break  # something inside runs later: no enclosing module can output it either
        members = set(inside)
        if all(consumers.get(prims[i].name, set()) <= members for i in inside
               if fused.of_prim.get(prims[i].name) != layer):
            best = s
    return best or p_last.name


__all__ = ["INPUT", "SUPPORTED_OPS", "Fused", "Layer", "Prim", "SplitPoint", "Traced", "find_splits", "fuse",
           "fx_graph", "supported_text", "trace"]
