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

Port B (``b_rd_*``, ``b_wr_*``): a second read and a second write port, for the DMA engines. With ``halves=2``
every bank is two memories, the lower and the upper half of its rows, each with its own ports: port B's access
goes ahead in the same cycle as port A's when no memory is wanted by both (``b_rd_ok``, ``b_wr_ok``), in
particular whenever the two touch different halves of the buffer, as the double-buffered bands of
``sim.program`` do (a band computes in one half while its neighbours move in the other). Port A always goes
first. With ``halves=1`` port B goes only in cycles port A leaves idle.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.fixedpoint import ACT_BITS


class FeatureBuffer(wiring.Component):
    def __init__(self, words: int, banks: int = 16, write_lanes: int = 12, halves: int = 1):
        if banks & (banks - 1) or banks < 2:
            raise ValueError(f"FeatureBuffer banks must be a power of two >= 2, got {banks!r}")
        if not isinstance(write_lanes, int) or not 1 <= write_lanes <= banks:
            raise ValueError(f"FeatureBuffer write_lanes must be in 1..{banks}, got {write_lanes!r}")
        self.write_lanes = write_lanes
        if halves not in (1, 2):
            raise ValueError(f"FeatureBuffer halves must be 1 or 2, got {halves!r}")
        if not isinstance(words, int) or words < banks * halves or words % (banks * halves):
            raise ValueError(f"FeatureBuffer words must be a positive multiple of banks x halves = "
                             f"{banks * halves}, got {words!r}")
        self.words = words
        self.banks = banks
        self.halves = halves
        self.addr_bits = (words - 1).bit_length()
        a = unsigned(self.addr_bits)
        wdata = data.ArrayLayout(signed(ACT_BITS), write_lanes)
        rdata = data.ArrayLayout(signed(ACT_BITS), banks)
        super().__init__({
            "rd_addr": In(a), "rd_en": In(1), "rd_data": Out(rdata),
            "wr_addr": In(a), "wr_en": In(1), "wr_data": In(wdata), "wr_mask": In(write_lanes),
            "b_rd_addr": In(a), "b_rd_en": In(1), "b_rd_ok": Out(1), "b_rd_data": Out(rdata),
            "b_wr_addr": In(a), "b_wr_en": In(1), "b_wr_ok": Out(1), "b_wr_data": In(wdata),
            "b_wr_mask": In(write_lanes),
        })

    def elaborate(self, platform):
        m = Module()
        nb, nh = self.banks, self.halves
        lb = nb.bit_length() - 1
        depth = self.words // nb                      # rows per bank
        hdepth = depth // nh                          # rows per memory
        row_bits = max(1, (depth - 1).bit_length())
        mem_bits = max(1, (hdepth - 1).bit_length())

        def rows_of(addr, name):
            """Per bank: (the row it holds of this access, its half)."""
            rot, row = addr[:lb], addr[lb:]
            out = []
            for b in range(nb):
                r = Signal(row_bits, name=f"{name}_row{b}")
                m.d.comb += r.eq((row + (b < rot))[:row_bits])
                out.append((r, r[mem_bits:] if nh == 2 else 0))
            return rot, out

        ra_rot, ra = rows_of(self.rd_addr, "ra")
        rb_rot, rb = rows_of(self.b_rd_addr, "rb")
        wa_rot, wa = rows_of(self.wr_addr, "wa")
        wb_rot, wb = rows_of(self.b_wr_addr, "wb")
        # port B goes when it wants no memory port A uses this cycle
        m.d.comb += [
            self.b_rd_ok.eq(~self.rd_en | ~sum((ra[b][1] == rb[b][1]) for b in range(nb)).bool()
                            if nh == 2 else ~self.rd_en),
            self.b_wr_ok.eq(~self.wr_en | ~sum((wa[b][1] == wb[b][1]) for b in range(nb)).bool()
                            if nh == 2 else ~self.wr_en),
        ]
        b_rd = self.b_rd_en & self.b_rd_ok
        b_wr = self.b_wr_en & self.b_wr_ok

        # each port's rotation and, per bank, the half it read: kept while its read enable is low
        a_rot_d, b_rot_d = Signal(range(nb)), Signal(range(nb))
        a_half_d = [Signal(name=f"a_half{b}") for b in range(nb)]
        b_half_d = [Signal(name=f"b_half{b}") for b in range(nb)]
        with m.If(self.rd_en):
            m.d.sync += [a_rot_d.eq(ra_rot)] + [a_half_d[b].eq(ra[b][1]) for b in range(nb)]
        with m.If(b_rd):
            m.d.sync += [b_rot_d.eq(rb_rot)] + [b_half_d[b].eq(rb[b][1]) for b in range(nb)]

        a_bank = [Signal(signed(ACT_BITS), name=f"a_bank{b}") for b in range(nb)]
        b_bank = [Signal(signed(ACT_BITS), name=f"b_bank{b}") for b in range(nb)]
        for b in range(nb):
            outs = []
            for h in range(nh):
                mem = Memory(shape=signed(ACT_BITS), depth=hdepth, init=[])
                m.submodules[f"bank{b}" if nh == 1 else f"bank{b}_{h}"] = mem
                rp, wp = mem.read_port(), mem.write_port()
                use_a = self.rd_en & (ra[b][1] == h)
                use_b = b_rd & (rb[b][1] == h)
                m.d.comb += [rp.addr.eq(Mux(use_a, ra[b][0], rb[b][0])[:mem_bits]), rp.en.eq(use_a | use_b)]
                # element t of a wide write goes to bank (rot + t) % nb: bank b takes t = (b - rot) % nb
                wuse_a = self.wr_en & (wa[b][1] == h)
                wuse_b = b_wr & (wb[b][1] == h)
                m.d.comb += wp.addr.eq(Mux(wuse_a, wa[b][0], wb[b][0])[:mem_bits])
                for port, (rot, use, wdata, mask) in enumerate(((wa_rot, wuse_a, self.wr_data, self.wr_mask),
                                                                (wb_rot, wuse_b, self.b_wr_data, self.b_wr_mask))):
                    t = Signal(range(nb), name=f"w{'ab'[port]}_t{b}_{h}")
                    m.d.comb += t.eq((b - rot)[:lb])
                    with m.If(use if port == 0 else (use & ~wuse_a)):
                        with m.Switch(t):
                            for lane in range(self.write_lanes):
                                with m.Case(lane):
                                    m.d.comb += [wp.data.eq(wdata[lane]), wp.en.eq(mask[lane])]
                outs.append(rp.data)
            if nh == 1:
                m.d.comb += [a_bank[b].eq(outs[0]), b_bank[b].eq(outs[0])]
            else:
                m.d.comb += [a_bank[b].eq(Mux(a_half_d[b], outs[1], outs[0])),
                             b_bank[b].eq(Mux(b_half_d[b], outs[1], outs[0]))]

        # element t of a wide read comes from bank (rot + t) % nb
        for port, (rot, banks_, dst) in enumerate(((a_rot_d, a_bank, self.rd_data), (b_rot_d, b_bank, self.b_rd_data))):
            for t in range(nb):
                sel = Signal(range(nb), name=f"r{'ab'[port]}_sel{t}")
                m.d.comb += sel.eq((rot + t)[:lb])
                with m.Switch(sel):
                    for b in range(nb):
                        with m.Case(b):
                            m.d.comb += dst[t].eq(banks_[b])
        return m
