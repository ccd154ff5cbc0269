"""Import a small ONNX CNN as a ``torch.fx.GraphModule`` (``--net PATH.onnx``).

Why our own importer and not onnx2torch: onnx2torch pulls in torchvision, whose install can replace our pinned
CPU torch, and it was last released in 2024; our supported operator set is small, and every unsupported
operator must give a clear one-line error anyway. So this module walks the ``onnx`` graph itself: one
converter function per ONNX operator kind (the table ``_CONVERTERS``), each adding ``torch.nn`` modules or
``call_function`` nodes to one ``torch.fx.Graph`` in ONNX topological order.

Steps of :func:`load_onnx`: read and parse the file, ``onnx.checker.check_model``, require default-domain
opset >= 13, one float32 image input ``[N, C, H, W]`` (dynamic C/H/W need ``input_shape``) and one output,
reject the first unsupported operator, fix the input dims and run ``onnx.shape_inference.infer_shapes``
(every tensor's shape is then known), then convert node by node. Initializers and ``Constant`` nodes (and
``Identity`` of a constant) are constants, never graph nodes; weights must be such constants.

Module names (our split points come from them), in this order: (1) the prefix of a ``<prefix>.weight``
initializer the node reads as its weight (``torch.onnx.export`` keeps parameter names); (2) the innermost
module of the torch.export-based exporter's ``pkg.torch.onnx.name_scopes`` metadata; (3) the module path of
a legacy-exporter node name ``/b1/conv/conv.0/Conv`` (``b1.conv.0``); (4) the node name as an identifier.
A functional op called in a container's own ``forward`` (``F.relu`` in a residual block ``b1``, whose
innermost scope ``b1`` also encloses other modules) is named ``b1.<op>`` (``b1.relu_1``) so that ``b1``
stays the container. Collisions get ``_1``, ``_2``... Each node's ``meta["scope"]`` holds the enclosing
module qualnames (outermost first, without the node's own module), ``meta["onnx_node"]`` the ONNX node name.

Every problem the user can cause raises :class:`golden.errors.UserError` with one line naming the file,
node or value and what is allowed.
"""

from __future__ import annotations

import ast
import keyword
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.fx
from onnx import external_data_helper, numpy_helper
from torch import nn

from golden.errors import UserError

MIN_OPSET = 13
_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


@dataclass(frozen=True)
class ImportedModel:
    """An imported ONNX model: the GraphModule (eval mode, float32 parameters) and what we read about it."""

    module: torch.fx.GraphModule
    input_shape: tuple[int, int, int]  # (C, H, W) of the single image input, batch dim excluded
    num_classes: int | None  # K of a 2-D output [N, K], else None
    opset: int
    path: str


def _one_line(text: object) -> str:
    """The first non-empty line of ``text`` (exception messages can span many lines)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _ident(name: str) -> str:
    """``name`` made into an identifier: runs of other characters become ``_``; never empty."""
    s = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_")
    return "n_" + s if s[:1].isdigit() else s or "node"


# attribute names a submodule must not take (``forward``, ``training``, ``graph``...), and Python keywords
_RESERVED = {*dir(torch.fx.GraphModule(nn.Module(), torch.fx.Graph())), *keyword.kwlist, "graph_module_source"}


def _clean_qual(qual: str) -> str:
    """A dotted module qualname with every component made safe for ``setattr`` and fx's generated code."""
    parts = [re.sub(r"[^0-9A-Za-z_]+", "_", p) for p in qual.split(".")]
    return ".".join(p + "_" if p in _RESERVED else p for p in parts if p)


def _legacy_quals(components: list[str]) -> list[str]:
    """Module qualnames from a legacy node-name path: ``b1, conv, conv.0`` -> ``b1, b1.conv, b1.conv.0``."""
    quals: list[str] = []
    prev = ""
    for comp in components:
        child = comp[len(prev) + 1 :] if prev and comp.startswith(prev + ".") else comp
        quals.append(f"{quals[-1]}.{child}" if quals else child)
        prev = comp
    return quals


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    """A value's dims: ints where fixed, the dim_param (or ``?``) where dynamic."""
    return [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
        for d in value.type.tensor_type.shape.dim
    ]


class _Builder:
    """State of one import: the constants, shapes, the fx graph under construction and the module names."""

    def __init__(self, model: onnx.ModelProto) -> None:
        g = model.graph
        self.inits = {t.name for t in g.initializer}
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.shapes: dict[str, tuple[int | None, ...]] = {}  # every tensor's shape: set by load_onnx
        self.nodes = list(g.node)  # one Python object per node, held: ids below stay valid
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)
        self.outputs = {o.name for o in g.output}
        self.index = {id(n): i for i, n in enumerate(self.nodes)}
        self.fused: set[int] = set()  # ids of nodes already converted together with an earlier one
        self.graph = torch.fx.Graph()
        self.root = nn.Module()
        self.env: dict[str, torch.fx.Node] = {}
        self.taken: set[str] = set()  # module qualnames used, with all their prefixes
        self.containers = {q for n in self.nodes for q in self.scopes(n)[0][:-1]}

    # ---- errors, constants, shapes, attributes ----

    def err(self, node: onnx.NodeProto, msg: str) -> UserError:
        name = node.name or f"#{self.index[id(node)]} ({node.op_type})"
        return UserError(_one_line(f"ONNX node '{name}': {msg}"))

    def const(self, node: onnx.NodeProto, i: int, role: str, floating: bool = True) -> np.ndarray:
        """Input ``i`` of ``node``, which must be a constant (initializer or Constant node)."""
        name = node.input[i] if i < len(node.input) else ""
        if not name:
            raise self.err(node, f"{node.op_type} needs its {role} input")
        if name not in self.consts:
            raise self.err(node, f"{role} '{name}' is computed in the graph; only constant initializers or "
                                 "Constant nodes are supported")
        a = self.consts[name]
        if floating:
            if not np.issubdtype(a.dtype, np.floating):
                raise self.err(node, f"{role} '{name}' has type {a.dtype}; only float weights are supported")
            return a.astype(np.float32)
        return a

    def opt_input(self, node: onnx.NodeProto, i: int) -> bool:
        return i < len(node.input) and bool(node.input[i])

    def tensor(self, node: onnx.NodeProto, i: int) -> torch.fx.Node:
        """Input ``i`` of ``node`` as a graph value (not a constant)."""
        name = node.input[i]
        if name in self.consts:
            raise self.err(node, f"input '{name}' of {node.op_type} is a constant; only computed tensors "
                                 "are supported there")
        return self.env[name]

    def shape(self, node: onnx.NodeProto, name: str, rank: int | None = None) -> tuple[int | None, ...]:
        if name not in self.shapes:
            raise self.err(node, f"shape of '{name}' is unknown after shape inference")
        s = self.shapes[name]
        if rank is not None and len(s) != rank:
            raise self.err(node, f"{node.op_type} input '{name}' has shape {list(s)}; only {rank}-D is supported")
        return s

    def attr(self, node: onnx.NodeProto, name: str, default: object = None) -> object:
        for a in node.attribute:
            if a.name == name:
                v = onnx.helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    def axes(self, node: onnx.NodeProto, rank: int) -> list[int] | None:
        """Sorted non-negative axes of Squeeze/ReduceMean: the ``axes`` attribute or the axes input."""
        axes = self.attr(node, "axes")
        if axes is None and self.opt_input(node, 1):
            axes = self.const(node, 1, "axes", floating=False).reshape(-1).tolist()
        return None if axes is None else sorted(int(a) % rank for a in axes)

    def only_output(self, node: onnx.NodeProto) -> None:
        """Optional outputs after the first (Dropout mask, MaxPool indices, BN statistics) must be unused."""
        for name in node.output[1:]:
            if name and (name in self.consumers or name in self.outputs):
                raise self.err(node, f"output '{name}' of {node.op_type} is used; only its first output is supported")

    def window(self, node: onnx.NodeProto, kernel: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """``(strides, symmetric pads)`` of a Conv/pool node; rejects dilations and asymmetric padding."""
        strides = tuple(self.attr(node, "strides", [1, 1]))
        dil = list(self.attr(node, "dilations", [1, 1]))
        if len(strides) != 2 or len(kernel) != 2:
            raise self.err(node, f"kernel {list(kernel)}: only 2-D {node.op_type} is supported")
        if any(d != 1 for d in dil):
            raise self.err(node, f"dilations {dil} are not supported; only 1")
        auto_pad = self.attr(node, "auto_pad", "NOTSET")
        if auto_pad == "NOTSET":
            p = list(self.attr(node, "pads", [0, 0, 0, 0]))
            if len(p) != 4 or p[0] != p[2] or p[1] != p[3]:
                raise self.err(node, f"asymmetric pads {p} are not supported; only [t, l, b, r] with t == b, l == r")
            return strides, (p[0], p[1])
        if auto_pad == "VALID":
            return strides, (0, 0)
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            hw = self.shape(node, node.input[0], 4)[2:]
            pads = []
            for n, k, s in zip(hw, kernel, strides, strict=True):
                total = max((-(-n // s) - 1) * s + k - n, 0)
                if total % 2:
                    raise self.err(node, f"auto_pad {auto_pad} needs asymmetric padding here; only symmetric pads "
                                         "are supported")
                pads.append(total // 2)
            return strides, (pads[0], pads[1])
        raise self.err(node, f"auto_pad {auto_pad} is not supported; only NOTSET, VALID, SAME_UPPER, SAME_LOWER")

    # ---- names and nodes ----

    def scopes(self, node: onnx.NodeProto) -> tuple[list[str], str]:
        """``(module qualnames outermost first, op entry)`` from name_scopes metadata or a legacy node path."""
        raw = next((p.value for p in node.metadata_props if p.key == _SCOPES_KEY), None)
        if raw:
            try:
                entries = ast.literal_eval(raw)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                entries = None
            if isinstance(entries, list) and entries and all(isinstance(e, str) for e in entries):
                return [q for q in (_clean_qual(e) for e in entries[:-1] if e) if q], entries[-1]
        if node.name.startswith("/"):
            comps = [c for c in node.name.split("/") if c]
            if comps:
                return [q for q in (_clean_qual(q) for q in _legacy_quals(comps[:-1])) if q], comps[-1]
        return [], node.name

    def qualname(self, node: onnx.NodeProto, weight: str | None) -> tuple[str, str]:
        """``(qualname, base)``: a new unique module qualname for ``node`` (rules (1)-(4) of the module
        docstring) and the name it was derived from (``qualname`` less any ``_k`` collision suffix)."""
        base = ""
        if weight and weight in self.inits and weight.endswith(".weight"):
            base = _clean_qual(weight[: -len(".weight")])
        if not base:
            mods, op = self.scopes(node)
            if mods:
                base = f"{mods[-1]}.{_ident(op)}" if mods[-1] in self.containers else mods[-1]
            else:
                base = _ident(node.name or node.op_type.lower())
            base = _clean_qual(base) or _ident(node.op_type.lower())
        qual, k = base, 0
        while qual in self.taken:
            k += 1
            qual = f"{base}_{k}"
        parts = qual.split(".")
        self.taken.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        return qual, base

    def call_module(self, node: onnx.NodeProto, module: nn.Module, args: tuple, weight: str | None = None,
                    out: str | None = None) -> torch.fx.Node:
        """Install ``module`` under a new qualname and add a call_module node computing ``out``."""
        qual, base = self.qualname(node, weight)
        parent = self.root
        *path, leaf = qual.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(leaf, module.eval())
        fx_node = self.graph.call_module(qual, args)
        mods = self.scopes(node)[0]
        fx_node.meta["scope"] = tuple(m for m in mods if base.startswith(m + "."))  # its enclosing modules
        fx_node.meta["onnx_node"] = node.name
        self.env[out or node.output[0]] = fx_node
        return fx_node

    def call_function(self, node: onnx.NodeProto, target: Callable, args: tuple, kwargs: dict | None = None) -> None:
        fx_node = self.graph.call_function(target, args, kwargs or {})
        fx_node.meta["scope"] = tuple(self.scopes(node)[0])
        fx_node.meta["onnx_node"] = node.name
        self.env[node.output[0]] = fx_node


# ---- one converter per ONNX operator kind ----


def _param(a: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.tensor(a, dtype=torch.float32))


def _conv(b: _Builder, node: onnx.NodeProto) -> None:
    x = b.tensor(node, 0)
    w = b.const(node, 1, "weight")
    if w.ndim != 4:
        raise b.err(node, f"weight '{node.input[1]}' has shape {list(w.shape)}; only 2-D convolutions are supported")
    bias = b.const(node, 2, "bias") if b.opt_input(node, 2) else None
    group = int(b.attr(node, "group", 1))
    kernel = tuple(b.attr(node, "kernel_shape", w.shape[2:]))
    if kernel != tuple(w.shape[2:]):
        raise b.err(node, f"kernel_shape {list(kernel)} differs from the weight's {list(w.shape[2:])}")
    if w.shape[0] % group:
        raise b.err(node, f"{w.shape[0]} output channels are not divisible by group {group}")
    strides, pads = b.window(node, kernel)
    conv = nn.Conv2d(w.shape[1] * group, w.shape[0], kernel, stride=strides, padding=pads, groups=group,
                     bias=bias is not None, device="meta")  # no random init: the parameters are set below
    conv.weight = _param(w)
    if bias is not None:
        conv.bias = _param(bias.reshape(-1))
    b.call_module(node, conv, (x,), weight=node.input[1])


def _batchnorm(b: _Builder, node: onnx.NodeProto) -> None:
    x = b.tensor(node, 0)
    b.shape(node, node.input[0], 4)
    if b.attr(node, "training_mode", 0):
        raise b.err(node, "training_mode=1 is not supported; only inference BatchNormalization")
    b.only_output(node)
    scale, shift, mean, var = (b.const(node, i, r).reshape(-1) for i, r in enumerate(("scale", "B", "mean", "var"), 1))
    bn = nn.BatchNorm2d(scale.size, eps=float(b.attr(node, "epsilon", 1e-5)))
    bn.weight, bn.bias = _param(scale), _param(shift)
    bn.running_mean.copy_(torch.tensor(mean))
    bn.running_var.copy_(torch.tensor(var))
    b.call_module(node, bn, (x,), weight=node.input[1])


def _relu(b: _Builder, node: onnx.NodeProto) -> None:
    b.call_module(node, nn.ReLU(), (b.tensor(node, 0),))


def _clip(b: _Builder, node: onnx.NodeProto) -> None:
    x = b.tensor(node, 0)
    lo = float(b.const(node, 1, "min").reshape(-1)[0]) if b.opt_input(node, 1) else -math.inf
    hi = float(b.const(node, 2, "max").reshape(-1)[0]) if b.opt_input(node, 2) else math.inf
    if lo != 0 or hi not in (6.0, math.inf):
        raise b.err(node, f"Clip bounds [{lo:g}, {hi:g}] are not supported; supported: [0, 6] (ReLU6) or "
                          "[0, inf) (ReLU)")
    b.call_module(node, nn.ReLU6() if hi == 6 else nn.ReLU(), (x,))


def _pool_params(b: _Builder, node: onnx.NodeProto) -> tuple[tuple[int, int], tuple, tuple, bool]:
    """``(kernel, strides, pads, ceil_mode)`` of a MaxPool/AveragePool, checked against PyTorch's limits."""
    b.shape(node, node.input[0], 4)
    kernel = tuple(b.attr(node, "kernel_shape", []))
    strides, pads = b.window(node, kernel)
    if any(p > k // 2 for p, k in zip(pads, kernel, strict=True)):
        raise b.err(node, f"pads {list(pads)} exceed half the kernel {list(kernel)}; PyTorch pools allow at most half")
    ceil = bool(b.attr(node, "ceil_mode", 0))
    want = b.shapes.get(node.output[0], ())[2:]
    for n, k, s, p, o in zip(b.shape(node, node.input[0])[2:], kernel, strides, pads, want, strict=False):
        num = n + 2 * p - k
        got = (-(-num // s) if ceil else num // s) + 1
        if ceil and (got - 1) * s >= n + p:
            got -= 1  # PyTorch drops a last window that would start in the right padding
        if o is not None and got != o:
            raise b.err(node, f"output size {o} (ONNX) differs from PyTorch's {got} for ceil_mode={int(ceil)}")
    return kernel, strides, pads, ceil


def _maxpool(b: _Builder, node: onnx.NodeProto) -> None:
    b.only_output(node)
    kernel, strides, pads, ceil = _pool_params(b, node)
    b.call_module(node, nn.MaxPool2d(kernel, strides, pads, ceil_mode=ceil), (b.tensor(node, 0),))


def _avgpool(b: _Builder, node: onnx.NodeProto) -> None:
    kernel, strides, pads, ceil = _pool_params(b, node)
    include = bool(b.attr(node, "count_include_pad", 0))
    if not include and any(pads):
        raise b.err(node, f"count_include_pad=0 with pads {list(pads)} is not supported; only pads 0 or "
                          "count_include_pad=1")
    pool = nn.AvgPool2d(kernel, strides, pads, ceil_mode=ceil, count_include_pad=include)
    b.call_module(node, pool, (b.tensor(node, 0),))


def _global_avgpool(b: _Builder, node: onnx.NodeProto) -> None:
    b.shape(node, node.input[0], 4)
    b.call_module(node, nn.AdaptiveAvgPool2d(1), (b.tensor(node, 0),))


def _reducemean(b: _Builder, node: onnx.NodeProto) -> None:
    rank = len(b.shape(node, node.input[0]))
    axes = b.axes(node, rank)
    if rank != 4 or axes != [2, 3]:
        raise b.err(node, f"ReduceMean over axes {axes or 'all'} of a {rank}-D tensor is not supported; only "
                          "axes [2, 3] of [N, C, H, W]")
    pooled = b.call_module(node, nn.AdaptiveAvgPool2d(1), (b.tensor(node, 0),))
    if not b.attr(node, "keepdims", 1):
        b.call_module(node, nn.Flatten(1), (pooled,))


def _flatten(b: _Builder, node: onnx.NodeProto) -> None:
    rank = len(b.shape(node, node.input[0]))
    axis = int(b.attr(node, "axis", 1))
    if rank < 2 or axis % rank != 1:
        raise b.err(node, f"Flatten axis {axis} of a {rank}-D tensor is not supported; only axis 1")
    b.call_module(node, nn.Flatten(1), (b.tensor(node, 0),))


def _reshape(b: _Builder, node: onnx.NodeProto) -> None:
    src = b.shape(node, node.input[0])
    target = b.const(node, 1, "shape", floating=False).reshape(-1).tolist()
    zero_copies = not b.attr(node, "allowzero", 0)
    size = math.prod(src[1:]) if len(src) >= 2 and None not in src[1:] else None
    ok = (
        len(target) == 2
        and (target[0] in (-1, 1 if src[0] in (1, None) else src[0]) or (target[0] == 0 and zero_copies))
        and (target[1] == -1 or target[1] == size)
        and target != [-1, -1]
    )
    if not ok:
        raise b.err(node, f"Reshape of {list(src)} to {target} is not supported; only a flatten to [N, -1] or "
                          f"[N, {size if size is not None else 'C*H*W'}]")
    b.call_module(node, nn.Flatten(1), (b.tensor(node, 0),))


def _squeeze(b: _Builder, node: onnx.NodeProto) -> None:
    src = b.shape(node, node.input[0])
    axes = b.axes(node, len(src))
    trailing = axes is not None and axes and axes[0] >= 2 and axes == list(range(axes[0], len(src)))
    if not trailing or any(src[a] != 1 for a in axes):
        raise b.err(node, f"Squeeze of axes {axes or 'all'} of {list(src)} is not supported; only the trailing "
                          "unit axes of [N, C, 1, 1] (axes [2, 3])")
    if len(src) - len(axes) == 2:
        b.call_module(node, nn.Flatten(1), (b.tensor(node, 0),))
        return
    users = b.consumers.get(node.output[0], [])
    if len(users) == 1 and users[0].op_type == "Squeeze" and node.output[0] not in b.outputs:
        b.env[node.output[0]] = b.tensor(node, 0)  # a chain squeeze(-1).squeeze(-1): the last one flattens
        return
    raise b.err(node, f"Squeeze of axes {axes} of {list(src)} leaves a {len(src) - len(axes)}-D tensor; only "
                      "squeezing [N, C, 1, 1] to [N, C] is supported")


def _linear(b: _Builder, node: onnx.NodeProto, w: np.ndarray, bias: np.ndarray | None, out: str | None = None) -> None:
    """An ``nn.Linear`` with weight ``w`` [O, I] and optional bias [O] on input 0 of ``node``."""
    lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None, device="meta")
    lin.weight = _param(w)
    if bias is not None:
        lin.bias = _param(bias)
    b.call_module(node, lin, (b.tensor(node, 0),), weight=node.input[1], out=out)


def _gemm(b: _Builder, node: onnx.NodeProto) -> None:
    if b.attr(node, "transA", 0) or b.attr(node, "alpha", 1.0) != 1 or b.attr(node, "beta", 1.0) != 1:
        raise b.err(node, "Gemm with transA=1 or alpha/beta != 1 is not supported; only Y = A @ B(^T) + C")
    w = b.const(node, 1, "weight")
    if w.ndim != 2:
        raise b.err(node, f"Gemm weight '{node.input[1]}' has shape {list(w.shape)}; only 2-D")
    if not b.attr(node, "transB", 0):
        w = w.T
    bias = None
    if b.opt_input(node, 2):
        c = b.const(node, 2, "bias")
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            raise b.err(node, f"Gemm bias '{node.input[2]}' has shape {list(c.shape)}; only [{w.shape[0]}] or "
                              f"[1, {w.shape[0]}]")
        bias = np.broadcast_to(c.reshape(-1), (w.shape[0],))
    _linear(b, node, np.ascontiguousarray(w), bias)


def _matmul(b: _Builder, node: onnx.NodeProto) -> None:
    w = b.const(node, 1, "weight")
    if w.ndim != 2 or len(b.shape(node, node.input[0])) < 2:
        raise b.err(node, f"MatMul weight '{node.input[1]}' has shape {list(w.shape)}; only x @ W with a 2-D "
                          "constant W [in, out] is supported")
    users = b.consumers.get(node.output[0], [])
    add = users[0] if len(users) == 1 and node.output[0] not in b.outputs else None
    if add is not None and add.op_type == "Add" and add.domain in ("", "ai.onnx"):
        other = [n for n in add.input if n != node.output[0]]
        if len(other) == 1 and other[0] in b.consts:
            c = b.consts[other[0]]
            if c.size == w.shape[1] and c.shape[-1:] == (w.shape[1],) and np.issubdtype(c.dtype, np.floating):
                b.fused.add(id(add))
                _linear(b, node, np.ascontiguousarray(w.T), c.reshape(-1).astype(np.float32), out=add.output[0])
                return
    _linear(b, node, np.ascontiguousarray(w.T), None)


def _add(b: _Builder, node: onnx.NodeProto) -> None:
    if any(n in b.consts for n in node.input):
        raise b.err(node, "Add with a constant operand is not supported; only tensor + tensor (the residual add)")
    b.call_function(node, operator.add, (b.tensor(node, 0), b.tensor(node, 1)))


def _concat(b: _Builder, node: onnx.NodeProto) -> None:
    rank = len(b.shape(node, node.input[0]))
    axis = int(b.attr(node, "axis"))
    if axis % rank != 1:
        raise b.err(node, f"Concat axis {axis} is not supported; only axis 1 (channels)")
    b.call_function(node, torch.cat, ([b.tensor(node, i) for i in range(len(node.input))],), {"dim": 1})


def _forward(b: _Builder, node: onnx.NodeProto) -> None:
    """Dropout (inference) and Identity: no node, the output is the input (a constant stays a constant)."""
    b.only_output(node)
    if node.op_type == "Dropout" and b.opt_input(node, 2) and b.const(node, 2, "training_mode", False).any():
        raise b.err(node, "Dropout with training_mode=true is not supported; only inference (an identity)")
    if node.input[0] in b.consts:
        b.consts[node.output[0]] = b.consts[node.input[0]]
    else:
        b.env[node.output[0]] = b.tensor(node, 0)


def _constant(b: _Builder, node: onnx.NodeProto) -> None:
    attr = node.attribute[0]
    if attr.name not in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        raise b.err(node, f"Constant {attr.name} is not supported; only numeric tensors")
    v = onnx.helper.get_attribute_value(attr)
    b.consts[node.output[0]] = numpy_helper.to_array(v) if attr.name == "value" else np.array(v)


_CONVERTERS: dict[str, Callable[[_Builder, onnx.NodeProto], None]] = {
    "Add": _add,
    "AveragePool": _avgpool,
    "BatchNormalization": _batchnorm,
    "Clip": _clip,
    "Concat": _concat,
    "Constant": _constant,
    "Conv": _conv,
    "Dropout": _forward,
    "Flatten": _flatten,
    "Gemm": _gemm,
    "GlobalAveragePool": _global_avgpool,
    "Identity": _forward,
    "MatMul": _matmul,
    "MaxPool": _maxpool,
    "ReduceMean": _reducemean,
    "Relu": _relu,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
}

#: The ONNX operators accepted (default domain), for error messages and docs.
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(_CONVERTERS))


# ---- the file, the checker, the input ----


def _read(path: Path) -> onnx.ModelProto:
    """Parse ``path`` (and its external weight file, as torch.onnx.export writes ``<file>.data``), then check it."""
    if not path.is_file():
        raise UserError(f"ONNX file {path} {'is not a file' if path.exists() else 'does not exist'}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError as e:
        raise UserError(_one_line(f"cannot read ONNX file {path}: {e.strerror or e}")) from None
    except Exception as e:  # the protobuf parser raises DecodeError, RuntimeError, ...
        raise UserError(_one_line(f"{path} is not an ONNX model (parse error: {_one_line(e)})")) from None
    if not model.HasField("graph") or not model.ir_version:
        raise UserError(f"{path} is not an ONNX model (no graph or IR version)")
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as e:  # a missing or short <file>.data: OSError, ValidationError, ...
        raise UserError(_one_line(f"ONNX file {path}: cannot load its external weights: {_one_line(e)}")) from None
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # ValidationError and the C++ checker's other errors
        raise UserError(_one_line(f"ONNX file {path} fails onnx.checker: {_one_line(e)}")) from None
    return model


def _fix_input(model: onnx.ModelProto, where: str, input_shape: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """Check the single image input and set its C/H/W; returns them."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    inputs = [v for v in g.input if v.name not in inits]
    if len(inputs) != 1:
        names = ", ".join(repr(v.name) for v in inputs) or "none"
        raise UserError(f"{where}: the graph has {len(inputs)} inputs ({names}); edgesplit needs exactly one image")
    if len(g.output) != 1:
        names = ", ".join(repr(v.name) for v in g.output)
        raise UserError(f"{where}: the graph has {len(g.output)} outputs ({names}); edgesplit needs exactly one")
    inp = inputs[0]
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type != onnx.TensorProto.FLOAT:
        kind = onnx.TensorProto.DataType.Name(tt.elem_type) if inp.type.HasField("tensor_type") else "not a tensor"
        raise UserError(f"{where}: input '{inp.name}' is {kind}; edgesplit needs a float32 image [N, C, H, W]")
    dims = _dims(inp)
    if len(dims) != 4:
        raise UserError(f"{where}: input '{inp.name}' has shape {dims}; edgesplit needs a 4-D image [N, C, H, W]")
    fixed = [d if isinstance(d, int) else None for d in dims[1:]]
    if input_shape is None:
        if None in fixed:
            raise UserError(f"{where}: input '{inp.name}' has dynamic dimensions {dims}; pass --input-shape C,H,W")
        chw = tuple(fixed)
    else:
        chw = tuple(input_shape)
        if len(chw) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in chw):
            raise UserError(f"input shape {input_shape!r} must be three positive integers C,H,W")
        if any(f is not None and f != v for f, v in zip(fixed, chw, strict=True)):
            want = ",".join(str(f) if f is not None else "*" for f in fixed)
            raise UserError(f"{where}: --input-shape {','.join(map(str, chw))} contradicts input '{inp.name}' "
                            f"{dims}; use C,H,W = {want}")
    for d, v in zip(tt.shape.dim[1:], chw, strict=True):
        d.dim_value = v
    return chw


def _infer_shapes(model: onnx.ModelProto, failure: str) -> dict[str, tuple[int | None, ...]]:
    """Every tensor's shape (``None`` for an unknown dim) by ``onnx.shape_inference`` in strict mode.

    It runs on a skeleton of the model whose big initializers are declared as typed graph inputs instead, so
    hundreds of MB of weights are not serialized for it; small ones (shapes, axes, Clip bounds) stay values.
    """
    g = model.graph
    skel = onnx.helper.make_model(
        onnx.helper.make_graph(list(g.node), g.name, list(g.input), [], []),
        opset_imports=list(model.opset_import), ir_version=model.ir_version,
    )
    sg, inputs = skel.graph, {v.name for v in g.input}
    for out in g.output:  # without the exporter's (possibly symbolic) shapes: inferred again
        sg.output.add(name=out.name).type.tensor_type.elem_type = out.type.tensor_type.elem_type
    for t in g.initializer:
        if math.prod(t.dims) <= 64:
            sg.initializer.append(t)
        elif t.name not in inputs:
            sg.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    try:
        skel = onnx.shape_inference.infer_shapes(skel, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:  # InferenceError and friends
        raise UserError(_one_line(f"{failure}: {_one_line(e)}")) from None
    sg = skel.graph
    return {
        v.name: tuple(d if isinstance(d, int) else None for d in _dims(v))
        for v in [*sg.input, *sg.value_info, *sg.output]
        if v.type.tensor_type.HasField("shape")
    }


def load_onnx(path: str | Path, input_shape: tuple[int, int, int] | None = None) -> ImportedModel:
    """Import the ONNX CNN at ``path`` as a GraphModule (see the module docstring); ``UserError`` on bad input.

    ``input_shape`` (C, H, W) fixes dynamic image dims; where the model fixes them it must agree.
    """
    path = Path(path)
    model = _read(path)
    where = f"ONNX file {path}"
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise UserError(f"{where}: opset {opset}; edgesplit needs {MIN_OPSET} or newer")
    chw = _fix_input(model, where, input_shape)
    b = _Builder(model)
    for node in b.nodes:
        if node.domain not in ("", "ai.onnx") or node.op_type not in _CONVERTERS:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            raise b.err(node, f"operator {op} is not supported; supported: {', '.join(SUPPORTED_OPS)}")
    b.shapes = _infer_shapes(model, f"{where}: shape inference failed for input shape {chw}")

    x = b.graph.placeholder("x")
    b.env[next(v.name for v in model.graph.input if v.name not in b.inits)] = x
    for node in b.nodes:
        if id(node) not in b.fused:
            _CONVERTERS[node.op_type](b, node)
    out_name = model.graph.output[0].name
    if out_name not in b.env:
        raise UserError(f"{where}: output '{out_name}' is a constant, not computed from the input")
    b.graph.output(b.env[out_name])

    gm = torch.fx.GraphModule(b.root, b.graph)
    gm.eval()
    gm.graph_module_source = "onnx"
    out_shape = b.shapes.get(out_name, ())
    num_classes = out_shape[1] if len(out_shape) == 2 else None
    return ImportedModel(module=gm, input_shape=chw, num_classes=num_classes, opset=opset, path=str(path))

