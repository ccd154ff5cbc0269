"""The network as both ends of the runtime see it: the float module, its int16 twin, a digest, the host's part.

Edge and host resolve the same ``--net`` value the same way (:func:`model.accuracy.network`: the built-ins'
default weights and :func:`golden.quantize.default_qnet`, or a calibration from ``--data``), so the int16
network is the same on both; :func:`digest` (SHA-1 over every layer's formats, shift, weights and biases) is
sent in HELLO, and a host whose int16 network differs refuses the edge with one line instead of answering
with silently wrong classes.

The host finishes the network from a split (:meth:`NetRuntime.predict`):

* ``float`` (default, as the accuracy study's host): the float host part (:meth:`golden.network.Network.host_model`)
  on ``int16 * 2**-frac`` -- a host is a general-purpose machine; the camera image is normalised and the whole
  float network runs;
* ``int16``: the bit-exact int16 network from the split (:func:`golden.quantize.run_fast`).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from golden.errors import UserError
from golden.network import INPUT, Network

PRECISIONS = ("float", "int16")


@dataclass
class NetRuntime:
    """A loaded network (module docstring)."""

    net: Network
    module: Any
    qnet: Any
    digest: str
    norm: Any
    _hosts: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.net.name

    def frac(self, split: str) -> int:
        """Frac bits of the int16 feature sent at ``split`` (0 for the camera image)."""
        return 0 if split == INPUT else int(self.qnet.split_frac(split))

    def sent_shape(self, split: str) -> tuple[int, ...]:
        """The tensor a FRAME at ``split`` carries: C, H, W of the camera image, or the feature's shape."""
        sp = self.net.split(split)
        return tuple(int(s) for s in (self.net.input_shape if split == INPUT else sp.tensor_shape))

    def _host(self, split: str):
        with self._lock:
            if split not in self._hosts:
                self._hosts[split] = self.module if split == INPUT else self.net.host_model(self.module, split)
            return self._hosts[split]

    def predict(self, split: str, value: np.ndarray, precision: str = "float") -> int:
        """The class the host gives a decoded value (int16 feature, or uint8 ``[H, W, C]`` image at ``input``)."""
        if precision not in PRECISIONS:
            raise UserError(f"host precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if split == INPUT:
            x = self.norm.from_u8(np.asarray(value)[None])
            if precision == "int16":
                return _argmax(self._run_fast(self.qnet.quantize_input(x), INPUT))
            with torch.no_grad():
                return _argmax(self._host(INPUT)(torch.from_numpy(x)).numpy())
        v = np.asarray(value)[None]
        if precision == "int16":
            return _argmax(self._run_fast(v, split))
        x = torch.from_numpy(v.astype(np.float32) * np.float32(2.0 ** -self.frac(split)))
        with torch.no_grad():
            return _argmax(self._host(split)(x).numpy())

    def _run_fast(self, x: np.ndarray, start: str) -> np.ndarray:
        from golden.quantize import run_fast

        return run_fast(self.qnet, x, start=start)


def _argmax(logits: np.ndarray) -> int:
    a = np.asarray(logits).reshape(-1)
    return int(np.argmax(a))


def digest(qnet) -> str:
    """SHA-1 (hex) of the int16 network: input format, and per layer name, formats, shift, weights, biases."""
    h = hashlib.sha1()
    h.update(f"{qnet.net}|{qnet.input_frac}".encode())
    for q in qnet.layers:
        h.update(f"|{q.name}|{q.frac_in}|{q.frac_out}|{q.shift}|{q.frac_w}|{q.r}|{q.clamp}".encode())
        for a in (q.w, q.bias):
            if a is not None:
                h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


_CACHE: dict[tuple, NetRuntime] = {}
_CACHE_LOCK = threading.Lock()
_LOAD_LOCKS: dict[tuple, threading.Lock] = {}


def load(spec: str | Network, data: str | None = None, weights: str | None = None,
         input_shape: str | None = None) -> NetRuntime:
    """The runtime view of ``--net`` (cached per process: the host loads a network once for all its edges)."""
    from golden.network import load_network

    net = load_network(spec, weights=weights, input_shape=input_shape)
    key = (net.name, net.source, str(weights), str(data))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        lock = _LOAD_LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
        from model import accuracy

        module, qnet = accuracy.network(net, None, data)
        module.eval()
        rt = NetRuntime(net=net, module=module, qnet=qnet, digest=digest(qnet), norm=accuracy.input_norm(net))
        with _CACHE_LOCK:
            _CACHE[key] = rt
        return rt


__all__ = ["PRECISIONS", "NetRuntime", "digest", "load"]
