"""Packing stream payloads (Amaranth ``data`` layouts) to and from the flat integers cocotb drives.

Amaranth flattens a ``StructLayout`` payload into one Verilog port; each field sits at the offset the
layout gives it (``layout[name].offset``), arrays element after element. ``Packer`` does that
arithmetic with numpy for many beats at once, so a testbench pays one Python int per beat.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data


class Packer:
    """Pack/unpack beats of a flat (struct of scalars and 1-D arrays of scalars) layout."""

    def __init__(self, layout: data.StructLayout):
        self.layout = layout
        self.width = Shape.cast(layout).width
        self.nbytes = (self.width + 7) // 8
        self.fields: dict[str, tuple[int, int, int, bool]] = {}  # name: (offset, elem width, count, signed)
        for name, field in layout:
            shape = field.shape
            if isinstance(shape, data.ArrayLayout):
                elem = Shape.cast(shape.elem_shape)
                self.fields[name] = (field.offset, elem.width, shape.length, elem.signed)
            else:
                s = Shape.cast(shape)
                self.fields[name] = (field.offset, s.width, 0, s.signed)

    def pack(self, n: int, **values) -> list[int]:
        """``n`` beats; each field is a scalar, an array [n] (scalar field) or [n, count] (array field).
        Missing fields are zero."""
        bits = np.zeros((n, self.nbytes * 8), dtype=np.uint8)
        for name, value in values.items():
            offset, width, count, _ = self.fields[name]
            v = np.asarray(value, dtype=np.int64)
            v = np.broadcast_to(v, (n, count) if count else (n,)).reshape(n, max(count, 1))
            u = (v & ((1 << width) - 1)).astype(np.uint64)
            # [n, count, width] bits, little-endian within each element
            b = ((u[:, :, None] >> np.arange(width, dtype=np.uint64)) & 1).astype(np.uint8)
            bits[:, offset:offset + width * max(count, 1)] = b.reshape(n, -1)
        packed = np.packbits(bits, axis=1, bitorder="little")
        return [int.from_bytes(row.tobytes(), "little") for row in packed]

    def unpack(self, word: int) -> dict[str, int | np.ndarray]:
        """One beat back into its fields (arrays as int64 numpy arrays)."""
        out: dict[str, int | np.ndarray] = {}
        for name, (offset, width, count, signed) in self.fields.items():
            mask = (1 << width) - 1
            vals = [(word >> (offset + width * i)) & mask for i in range(max(count, 1))]
            if signed:
                vals = [v - (1 << width) if v >> (width - 1) else v for v in vals]
            out[name] = np.array(vals, dtype=np.int64) if count else vals[0]
        return out
