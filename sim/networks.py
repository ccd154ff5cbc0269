"""From a calibrated golden network (``golden.quantize.QNet``) to the engine's layer list."""

from __future__ import annotations

import numpy as np

from golden.layers import shortcut_a_as_conv
from golden.splits import INPUT, layers_between
from sim.program import AddLayer, ConvLayer, EngineLimitError, GapLayer, PoolLayer


def engine_layers(qnet, upto: str | None = None) -> list:
    """The engine layers of ``qnet`` from the input up to split ``upto`` (default: the whole network).

    Convolutions and fully-connected layers become ``ConvLayer`` (an FC layer after a flatten takes the
    map flattened: ``flatten=True``), max-pools ``PoolLayer``, residual adds ``AddLayer``, global average
    pools ``GapLayer``; flatten needs no command (CHW order is already the flattened order). Each layer
    records its producers (``inputs``), so branchy networks (ResNet) compile too.
    """
    out = []
    alias: dict[str, str] = {}  # flatten layers forward their input
    for layer in layers_between(qnet.net, INPUT, upto):
        q = qnet.layer(layer.name)
        t = layer.type
        inputs = tuple(alias.get(i, i) for i in layer.inputs)
        if t == "conv":
            if layer.groups != 1:
                raise EngineLimitError(f"layer {layer.name}: groups {layer.groups}; the engine runs groups=1")
            if layer.kernel[0] != layer.kernel[1] or layer.stride[0] != layer.stride[1] \
                    or layer.padding[0] != layer.padding[1]:
                raise EngineLimitError(f"layer {layer.name}: non-square kernel/stride/padding {layer.kernel}")
            out.append(ConvLayer(layer.name, q.w.astype(np.int16), q.bias, q.shift, relu=layer.relu,
                                 stride=layer.stride[0], pad=layer.padding[0], inputs=inputs))
        elif t == "linear":
            w = q.w.astype(np.int16)
            out.append(ConvLayer(layer.name, w.reshape(w.shape[0], w.shape[1], 1, 1), q.bias, q.shift,
                                 relu=layer.relu, flatten=True, inputs=inputs))
        elif t == "maxpool":
            if layer.kernel[0] != layer.kernel[1] or layer.stride[0] != layer.stride[1]:
                raise EngineLimitError(f"layer {layer.name}: non-square pooling {layer.kernel}")
            out.append(PoolLayer(layer.name, layer.kernel[0], layer.stride[0], layer.padding[0], inputs=inputs))
        elif t == "add":
            out.append(AddLayer(layer.name, inputs, int(q.w[0]), int(q.w[1]), q.shift, relu=layer.relu))
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
                                   f"(supported: conv, linear, maxpool, add, avgpool, flatten)")
    return out
