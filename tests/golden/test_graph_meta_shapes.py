"""golden.graph's shape shortcut on the meta device (``_meta_shape``) gives torch's own output shapes."""

import random

import pytest
import torch
from torch import nn

from golden import graph as G
from golden import network as N


def _cases(rng: random.Random, n: int):
    for _ in range(n):
        h, w = rng.randint(1, 40), rng.randint(1, 40)
        c = rng.choice((1, 3, 8))
        k = (rng.randint(1, 7), rng.randint(1, 7))
        s = (rng.randint(1, 4), rng.randint(1, 4))
        kind = rng.choice(("conv", "maxpool", "avgpool", "adaptive", "bn", "linear"))
        if kind == "conv":
            d = (rng.randint(1, 3), rng.randint(1, 2))
            p = (rng.randint(0, 4), rng.randint(0, 4))
            groups = rng.choice((1, c))
            yield nn.Conv2d(c, c * rng.randint(1, 3), k, s, p, d, groups=groups), (1, c, h, w)
        elif kind in ("maxpool", "avgpool"):
            p = (rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2))
            ceil = rng.random() < 0.5
            if kind == "maxpool":
                yield nn.MaxPool2d(k, s, p, dilation=rng.randint(1, 2), ceil_mode=ceil), (1, c, h, w)
            else:
                yield nn.AvgPool2d(k, s, p, ceil_mode=ceil), (1, c, h, w)
        elif kind == "adaptive":
            yield nn.AdaptiveAvgPool2d(rng.choice((1, (2, 3), (None, 4), 7))), (1, c, h, w)
        elif kind == "bn":
            yield nn.BatchNorm2d(c), (1, c, h, w)
        else:
            yield nn.Linear(c * 4, rng.randint(1, 20)), (2, c * 4)


def test_meta_shape_equals_torch_on_random_modules_and_edges():
    rng = random.Random(0)
    checked = 0
    with torch.device("meta"):
        cases = list(_cases(rng, 600))
        # edges: ceil_mode where the last window would start in the padding, 1x1 inputs, a kernel the input
        # just fits, 'same' padding (torch's own path), a channel mismatch (torch's own error)
        cases += [(nn.MaxPool2d(3, 2, 1, ceil_mode=True), (1, 1, 8, 8)),
                  (nn.MaxPool2d(2, 2, ceil_mode=True), (1, 1, 1, 1)),
                  (nn.AvgPool2d(3, 3, 1, ceil_mode=True), (1, 2, 7, 5)), (nn.Conv2d(2, 4, 5), (1, 2, 5, 5)),
                  (nn.Conv2d(2, 4, 3, padding="same"), (1, 2, 9, 9)), (nn.Conv2d(3, 4, 3), (1, 2, 9, 9)),
                  (nn.MaxPool2d(3, 2, ceil_mode=True), (1, 4, 13, 13)), (nn.ReLU(), (1, 3, 2, 2))]
    for mod, shape in cases:
        x = torch.empty(shape, device="meta")
        try:
            want = tuple(mod(x).shape)
        except (RuntimeError, ValueError):
            want = None
        got = G._meta_shape(mod, x)
        if got is not None:
            checked += 1
            assert got == want, (mod, shape)
    assert checked > 500


@pytest.mark.parametrize("net", ["digits", "resnet20", "alexnet", "mobilenetv2", "squeezenet1_1"])
def test_trace_shapes_equal_a_run_on_real_tensors(net):
    """The whole trace on meta (the shortcut) against the same module on the CPU (no shortcut)."""
    nw = N.network(net)
    meta = G.trace(nw.build(meta=True), nw.input_shape, nw.extra_kinds, nw.name, nw.rename)
    with torch.device("meta"):
        cpu = nw.factory()
    cpu = cpu.to_empty(device="cpu")
    real = G.trace(cpu, nw.input_shape, nw.extra_kinds, nw.name, nw.rename)
    assert meta.shapes == real.shapes
    assert [(p.name, p.kind, p.inputs) for p in meta.prims] == [(p.name, p.kind, p.inputs) for p in real.prims]
