"""The on-chip feature buffer: ``banks`` single-word SRAM banks read and written ``banks`` words wide.

Element address ``A`` lives in bank ``A % banks`` at row ``A // banks``. A wide access touches the
``banks`` consecutive elements ``A .. A + banks - 1`` for any ``A``: each bank is used exactly once
(bank ``b`` at row ``A // banks + (b < A % banks)``), so an unaligned contiguous access never has a
bank conflict. The engine only ever makes contiguous accesses (window segments of one input row,
12 consecutive output pixels of one channel, DMA runs), which is why the banking is conflict-free for
every stride: the strided gather happens afterwards, in registers (see ``hw.window``).

Ports (element 0 of the data arrays is the element at the address):
    rd_addr, rd_en -> rd_data (``banks`` words, one cycle later; holds while rd_en is low)
    wr_addr, wr_en, wr_data, wr_mask (``write_lanes`` words; element t is written when wr_mask[t])

The write port is ``write_lanes`` (default 12) words wide: every writer of the engine (MAC array rows,
DMA beats, pooling and vector results) produces at most 12 words per cycle.
"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.fixedpoint import ACT_BITS


class FeatureBuffer(wiring.Component):
    def __init__(self, words: int, banks: int = 16, write_lanes: int = 12):
        if banks & (banks - 1) or banks < 2:
            raise ValueError(f"FeatureBuffer banks must be a power of two >= 2, got {banks!r}")
        if not isinstance(write_lanes, int) or not 1 <= write_lanes <= banks:
            raise ValueError(f"FeatureBuffer write_lanes must be in 1..{banks}, got {write_lanes!r}")
        self.write_lanes = write_lanes
        if not isinstance(words, int) or words < banks or words % banks:
            raise ValueError(f"FeatureBuffer words must be a positive multiple of banks={banks}, got {words!r}")
        self.words = words
        self.banks = banks
        self.addr_bits = (words - 1).bit_length()
        super().__init__({
            "rd_addr": In(unsigned(self.addr_bits)),
            "rd_en": In(1),
            "rd_data": Out(data.ArrayLayout(signed(ACT_BITS), banks)),
            "wr_addr": In(unsigned(self.addr_bits)),
            "wr_en": In(1),
            "wr_data": In(data.ArrayLayout(signed(ACT_BITS), write_lanes)),
            "wr_mask": In(write_lanes),
        })

    def elaborate(self, platform):
        m = Module()
        nb = self.banks
        lb = nb.bit_length() - 1
        depth = self.words // nb
        row_bits = max(1, (depth - 1).bit_length())

        rd_rot = Signal(range(nb))
        with m.If(self.rd_en):
            m.d.sync += rd_rot.eq(self.rd_addr[:lb])
        rd_row = self.rd_addr[lb:]
        wr_rot = self.wr_addr[:lb]
        wr_row = self.wr_addr[lb:]

        bank_data = []
        for b in range(nb):
            mem = Memory(shape=signed(ACT_BITS), depth=depth, init=[])
            m.submodules[f"bank{b}"] = mem
            rp = mem.read_port()
            wp = mem.write_port()
            # bank b holds element (row, b); a wide access starting at rotation r uses the next row
            # for the banks below r
            m.d.comb += [
                rp.addr.eq((rd_row + (b < self.rd_addr[:lb]))[:row_bits]),
                rp.en.eq(self.rd_en),
                wp.addr.eq((wr_row + (b < wr_rot))[:row_bits]),
            ]
            # element t of the wide write goes to bank (rot + t) % nb, i.e. bank b takes t = (b - rot) % nb;
            # banks with t >= write_lanes are not written
            t = Signal(range(nb), name=f"wr_t{b}")
            m.d.comb += t.eq((b - wr_rot)[:lb])
            with m.Switch(t):
                for lane in range(self.write_lanes):
                    with m.Case(lane):
                        m.d.comb += [wp.data.eq(self.wr_data[lane]), wp.en.eq(self.wr_en & self.wr_mask[lane])]
            bank_data.append(rp.data)

        # element t of the wide read comes from bank (rot + t) % nb
        for t in range(nb):
            sel = Signal(range(nb), name=f"rd_sel{t}")
            m.d.comb += sel.eq((rd_rot + t)[:lb])
            with m.Switch(sel):
                for b in range(nb):
                    with m.Case(b):
                        m.d.comb += self.rd_data[t].eq(bank_data[b])
        return m
