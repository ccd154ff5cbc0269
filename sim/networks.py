"""From a calibrated golden network (``golden.quantize.QNet``) to the engine's layer list."""

from __future__ import annotations

import numpy as np

from golden.splits import INPUT, layers_between
from sim.program import ConvLayer, EngineLimitError, PoolLayer


def engine_layers(qnet, upto: str | None = None) -> list:
    """The engine layers of ``qnet`` from the input up to split ``upto`` (default: the whole network).

    Convolutions and fully-connected layers become ``ConvLayer`` (an FC layer after a flatten takes the
    map flattened: ``flatten=True``), max-pools ``PoolLayer``; flatten needs no command (CHW order is
    already the flattened order). Residual adds and average pools are refused with a one-line error.
    """
    out = []
    for layer in layers_between(qnet.net, INPUT, upto):
        q = qnet.layer(layer.name)
        t = layer.type
        if t == "conv":
            if layer.groups != 1:
                raise EngineLimitError(f"layer {layer.name}: groups {layer.groups}; the engine runs groups=1")
            if layer.kernel[0] != layer.kernel[1] or layer.stride[0] != layer.stride[1] \
                    or layer.padding[0] != layer.padding[1]:
                raise EngineLimitError(f"layer {layer.name}: non-square kernel/stride/padding {layer.kernel}")
            out.append(ConvLayer(layer.name, q.w.astype(np.int16), q.bias, q.shift, relu=layer.relu,
                                 stride=layer.stride[0], pad=layer.padding[0]))
        elif t == "linear":
            w = q.w.astype(np.int16)
            out.append(ConvLayer(layer.name, w.reshape(w.shape[0], w.shape[1], 1, 1), q.bias, q.shift,
                                 relu=layer.relu, flatten=True))
        elif t == "maxpool":
            if layer.kernel[0] != layer.kernel[1] or layer.stride[0] != layer.stride[1]:
                raise EngineLimitError(f"layer {layer.name}: non-square pooling {layer.kernel}")
            out.append(PoolLayer(layer.name, layer.kernel[0], layer.stride[0], layer.padding[0]))
        elif t == "flatten":
            continue
        else:
            raise EngineLimitError(f"layer {layer.name}: type {t!r} is not supported by the engine yet "
                                   f"(supported: conv, linear, maxpool, flatten)")
    return out
