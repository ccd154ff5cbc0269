"""From a calibrated golden network (``golden.quantize.QNet``) to the engine's layer list."""

from __future__ import annotations

import numpy as np

from golden.layers import avgpool2d_weight, shortcut_a_as_conv
from golden.splits import INPUT
from sim.program import AddLayer, ConcatLayer, ConvLayer, EngineLimitError, GapLayer, PoolLayer

ENGINE_TYPES = "conv (any groups), linear, maxpool, avgpool (global), avgpool2d, add, concat, shortcut_a, flatten"


def _square(layer, what: str) -> None:
    if layer.kernel[0] != layer.kernel[1] or layer.stride[0] != layer.stride[1] \
            or layer.padding[0] != layer.padding[1]:
        raise EngineLimitError(f"layer {layer.name}: non-square {what} kernel {layer.kernel}, stride {layer.stride}, "
                               f"padding {layer.padding}; the engine runs square ones")


def engine_layers(qnet, upto: str | None = None) -> list:
    """The engine layers of ``qnet`` from the input up to split ``upto`` (default: the whole network).

    Convolutions and fully-connected layers become ``ConvLayer`` (an FC layer after a flatten takes the
    map flattened: ``flatten=True``; a grouped or depthwise conv keeps its ``groups``), max-pools
    ``PoolLayer``, residual adds ``AddLayer``, global average pools ``GapLayer``, a k x k average pool a
    depthwise ``ConvLayer`` with one constant weight (``golden.layers.avgpool2d_int``), concatenations
    ``ConcatLayer``; flatten needs no command (CHW order is already the flattened order). Each layer
    records its producers (``inputs``), so branchy networks compile too. ReLU6 is the ``clamp``.
    """
    out = []
    alias: dict[str, str] = {}  # flatten layers forward their input
    for layer in qnet.network.layers_between(INPUT, upto):
        q = qnet.layer(layer.name)
        t = layer.type
        inputs = tuple(alias.get(i, i) for i in layer.inputs)
        if t == "conv":
            _square(layer, "convolution")
            out.append(ConvLayer(layer.name, q.w.astype(np.int16), q.bias, q.shift, relu=layer.relu,
                                 stride=layer.stride[0], pad=layer.padding[0], inputs=inputs, groups=layer.groups,
                                 clamp=q.clamp))
        elif t == "linear":
            w = q.w.astype(np.int16)
            out.append(ConvLayer(layer.name, w.reshape(w.shape[0], w.shape[1], 1, 1), q.bias, q.shift,
                                 relu=layer.relu, flatten=True, inputs=inputs, clamp=q.clamp))
        elif t == "maxpool":
            _square(layer, "pooling")
            out.append(PoolLayer(layer.name, layer.kernel[0], layer.stride[0], layer.padding[0], inputs=inputs,
                                 ceil_mode=layer.ceil_mode))
        elif t == "avgpool2d":
            _square(layer, "pooling")
            c = layer.in_shape[0]
            out.append(ConvLayer(layer.name, avgpool2d_weight(c, layer.kernel, int(q.w[0])), np.zeros(c, np.int64),
                                 q.shift, relu=False, stride=layer.stride[0], pad=layer.padding[0], inputs=inputs,
                                 groups=c))
        elif t == "add":
            out.append(AddLayer(layer.name, inputs, int(q.w[0]), int(q.w[1]), q.shift, relu=layer.relu,
                                clamp=q.clamp))
        elif t == "concat":
            out.append(ConcatLayer(layer.name, inputs))
        elif t == "avgpool":
            out.append(GapLayer(layer.name, int(q.w[0]), q.shift, inputs=inputs))
        elif t == "shortcut_a":
            # the CIFAR option-A shortcut is exactly a 1x1 stride-2 conv with 0/1 weights (golden.layers)
            cin, cout = layer.in_shape[0], layer.out_shape[0]
            w = shortcut_a_as_conv(cin, cout).astype(np.int16).reshape(cout, cin, 1, 1)
            out.append(ConvLayer(layer.name, w, np.zeros(cout, np.int64), 0, relu=False, stride=layer.stride[0],
                                 inputs=inputs))
        elif t == "flatten":
            alias[layer.name] = inputs[0]
            continue
        else:
            raise EngineLimitError(f"layer {layer.name}: type {t!r} is not supported by the engine yet "
                                   f"(supported: {ENGINE_TYPES})")
    return out
