"""The engine's 2-D DMA: one engine moves DRAM -> feature buffer (LOAD), another feature buffer -> DRAM (STORE).

A command is ``rows`` runs of ``row_len`` elements; run ``r`` goes between DRAM element address
``dram_addr + r * dram_stride`` and buffer address ``fb_addr + r * fb_stride`` (``hw.descriptor``), in DRAM
beats of up to ``lanes`` words (the engine's lane count, 12 by default; at most ``fb_banks``, the buffer's banks:
16, or 32 above 16 lanes).
The sequencer hands a command over with ``start`` and either waits for ``done`` (a foreground LOAD / STORE)
or goes on at once (``bg``: a band's input or output moving while the next compute command runs, see
``sim.program``); an engine takes one command at a time.

LOAD (``store=False``): read requests go out as fast as the port takes them; the responses (in order, tagged
as the LOAD's by the engine) are written into the buffer when the engine grants the write port (``wr_grant``,
the compute units' writes go first). STORE: one buffer read (``fb_banks`` words) per beat in a cycle the engine
grants the read port (``rd_grant``), its data kept while the DRAM port is busy, then a write request.

Ports
-----
start : In(1), p : In(PARAMS)    begin a command (parameters sampled with ``start``)
busy : Out(1)                    a command is running
done : Out(1)                    its last word has moved (combinational, while ``busy``)
req : Out(stream of DRAM_REQ)    DRAM requests (``hw.dram_arbiter.DRAM_REQ``)
rsp_valid, rsp_data, rsp_ready   (LOAD) the responses that are this engine's
wr_en, wr_addr, wr_mask, wr_data, wr_grant   (LOAD) the buffer's write port
rd_req, rd_addr, rd_grant, rd_data           (STORE) the buffer's read port (data a cycle after the grant)
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fixedpoint import ACT_BITS

from .descriptor import DRAM_BEAT_WORDS

PARAMS = data.StructLayout({"dram_addr": 32, "fb_addr": 24, "rows": 16, "row_len": 24, "dram_stride": 32,
                            "fb_stride": 24})


def count_bits(lanes: int) -> int:
    """Bits of a DRAM request's word count (0..``lanes``): 4 at 12 lanes."""
    return lanes.bit_length()


def min_beat(x, lanes: int):
    """min(x, lanes) as an unsigned ``count_bits(lanes)``-bit value (x is never negative here)."""
    return Mux(x > lanes, lanes, x)[:count_bits(lanes)]


class Dma(wiring.Component):
    def __init__(self, req_layout, store: bool, fb_addr_bits: int = 18, fb_banks: int = 16,
                 lanes: int = DRAM_BEAT_WORDS):
        if not isinstance(store, bool):
            raise ValueError(f"Dma store must be True or False, got {store!r}")
        if not isinstance(fb_addr_bits, int) or not 4 <= fb_addr_bits <= 24:
            raise ValueError(f"Dma fb_addr_bits must be in 4..24, got {fb_addr_bits!r}")
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= fb_banks:
            raise ValueError(f"Dma lanes (words per DRAM beat) must be in 1..{fb_banks}, got {lanes!r}")
        self.store = store
        self.fb_addr_bits = fb_addr_bits
        self.lanes = lanes
        words = data.ArrayLayout(signed(ACT_BITS), lanes)
        sig = {"start": In(1), "p": In(PARAMS), "busy": Out(1), "done": Out(1),
               "req": Out(stream.Signature(req_layout))}
        if store:
            sig.update({"rd_req": Out(1), "rd_addr": Out(fb_addr_bits), "rd_grant": In(1),
                        "rd_data": In(data.ArrayLayout(signed(ACT_BITS), fb_banks))})
        else:
            sig.update({"rsp_valid": In(1), "rsp_data": In(words), "rsp_ready": Out(1),
                        "wr_en": Out(1), "wr_addr": Out(fb_addr_bits), "wr_mask": Out(lanes),
                        "wr_data": Out(words), "wr_grant": In(1)})
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        q = Signal(PARAMS)            # the command being run
        with m.If(self.start):
            m.d.sync += [q.eq(self.p), self.busy.eq(1)]
        accept = Signal()
        m.d.comb += accept.eq(self.req.valid & self.req.ready)
        if self.store:
            self._store(m, q, accept)
        else:
            self._load(m, q, accept)
        with m.If(self.done):
            m.d.sync += self.busy.eq(0)
        return m

    def _load(self, m, q, accept):
        B = self.lanes
        r_req, off_req, base_req = Signal(16), Signal(24), Signal(32)
        r_rsp, off_rsp, base_rsp = Signal(16), Signal(24), Signal(24)
        with m.If(self.start):
            m.d.sync += [r_req.eq(0), off_req.eq(0), base_req.eq(self.p.dram_addr),
                         r_rsp.eq(0), off_rsp.eq(0), base_rsp.eq(self.p.fb_addr)]
        with m.If(self.busy):
            m.d.comb += [
                self.req.valid.eq(r_req < q.rows),
                self.req.payload.addr.eq(base_req + off_req),
                self.req.payload.count.eq(min_beat(q.row_len - off_req, B)),
                self.rsp_ready.eq(self.wr_grant),
            ]
            with m.If(accept):
                with m.If(off_req + B >= q.row_len):
                    m.d.sync += [off_req.eq(0), r_req.eq(r_req + 1), base_req.eq(base_req + q.dram_stride)]
                with m.Else():
                    m.d.sync += off_req.eq(off_req + B)
            cnt = min_beat(q.row_len - off_rsp, B)
            m.d.comb += [
                self.wr_en.eq(self.rsp_valid),
                self.wr_addr.eq(base_rsp + off_rsp),
                self.wr_mask.eq((Const(1, B + 1) << cnt) - 1),
                self.wr_data.eq(self.rsp_data),
            ]
            with m.If(self.rsp_valid & self.wr_grant):
                with m.If(off_rsp + B >= q.row_len):
                    m.d.sync += [off_rsp.eq(0), r_rsp.eq(r_rsp + 1), base_rsp.eq(base_rsp + q.fb_stride)]
                with m.Else():
                    m.d.sync += off_rsp.eq(off_rsp + B)
            m.d.comb += self.done.eq(r_rsp == q.rows)

    def _store(self, m, q, accept):
        B = self.lanes
        r, off, fb_base, dram_base = Signal(16), Signal(24), Signal(24), Signal(32)
        pending, addr, cnt = Signal(), Signal(32), Signal(count_bits(B))
        fresh = Signal()
        held = Signal(data.ArrayLayout(signed(ACT_BITS), B))
        with m.If(self.start):
            m.d.sync += [r.eq(0), off.eq(0), fb_base.eq(self.p.fb_addr), dram_base.eq(self.p.dram_addr),
                         pending.eq(0), fresh.eq(0)]
        with m.If(self.busy):
            m.d.comb += [self.req.valid.eq(pending), self.req.payload.write.eq(1),
                         self.req.payload.addr.eq(addr), self.req.payload.count.eq(cnt)]
            # the read lands a cycle after its grant and is kept while the DRAM port is busy (the buffer's read
            # port is free for the other readers meanwhile)
            m.d.comb += [self.req.payload.wdata[t].eq(Mux(fresh, self.rd_data[t], held[t]))
                         for t in range(B)]
            with m.If(fresh):
                m.d.sync += held.eq(Cat(*(self.rd_data[t] for t in range(B))))
            want = Signal()
            m.d.comb += want.eq((r < q.rows) & (~pending | accept))
            m.d.comb += [self.rd_req.eq(want), self.rd_addr.eq((fb_base + off)[:self.fb_addr_bits])]
            issue = want & self.rd_grant
            with m.If(issue):
                m.d.sync += [fresh.eq(1), pending.eq(1), addr.eq(dram_base + off),
                             cnt.eq(min_beat(q.row_len - off, B))]
                with m.If(off + B >= q.row_len):
                    m.d.sync += [off.eq(0), r.eq(r + 1), fb_base.eq(fb_base + q.fb_stride),
                                 dram_base.eq(dram_base + q.dram_stride)]
                with m.Else():
                    m.d.sync += off.eq(off + B)
            with m.Elif(accept):
                m.d.sync += pending.eq(0)
            with m.If(~issue):
                m.d.sync += fresh.eq(0)
            m.d.comb += self.done.eq((r == q.rows) & ~pending)
