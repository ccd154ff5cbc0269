"""The table loader: a DRAM read of ``rows`` two-word table entries into a unit's table port (``ENC_TABLES``: the
encode unit's quantiser reciprocals and Huffman codes, ``hw.encode_unit``).

The entries lie at ``dram_addr`` as ``rows`` pairs of 16-bit words (low, high) ``beat / 2`` per DRAM beat. The
loader requests the ``ceil(2 rows / beat)`` beats back to back, as the port takes them, and writes one entry per
cycle: entry ``i`` at table address ``i``, the pairs of a beat in the ``beat / 2`` cycles after it arrives (a
response waits while the previous beat is being written). ``done`` comes in the cycle after the last beat's
pairs have been gone through (its entries past ``rows`` take their cycles but are not written).

Ports
-----
start : In(1)         one-cycle pulse: reset for a new command (before ``run``)
run : In(1)           the command is executing (held until ``done``); ``p`` is held meanwhile
p : In(PARAMS)        ``dram_addr`` (words), ``rows`` (entries)
req : Out(stream)     DRAM read requests (``req_layout``: ``count`` = a beat)
resp : In(stream)     their responses, in order (``resp_layout``)
tbl_we, tbl_addr, tbl_data : Out   the table write port: entry ``tbl_addr``, 32 bits (high word, low word)
done : Out(1)         every entry written (combinational, in the last ``run`` cycle)
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

PARAMS = data.StructLayout({"dram_addr": 30, "rows": 16})


class TableLoader(wiring.Component):
    """Two-word table entries from DRAM into a table port (module docstring). ``req_layout``, ``resp_layout``:
    the engine's DRAM request and response layouts (``hw.engine.dram_req_layout``); a beat of an even number of
    words, 2..16."""

    def __init__(self, req_layout, resp_layout):
        for name, lay, field in (("req_layout", req_layout, "addr"), ("resp_layout", resp_layout, "rdata")):
            if not isinstance(lay, data.StructLayout) or field not in dict(lay.members):
                raise ValueError(f"TableLoader {name} must be a StructLayout with '{field}', got {lay!r}")
        rdata = dict(resp_layout.members)["rdata"]
        if not isinstance(rdata, data.ArrayLayout) or rdata.length % 2 or not 2 <= rdata.length <= 16:
            raise ValueError(f"TableLoader needs DRAM beats of an even number of words in 2..16, got {rdata!r}")
        self.beat = rdata.length
        super().__init__({
            "start": In(1), "run": In(1), "p": In(PARAMS),
            "req": Out(stream.Signature(req_layout)), "resp": In(stream.Signature(resp_layout)),
            "tbl_we": Out(1), "tbl_addr": Out(16), "tbl_data": Out(32), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B = self.beat
        p, req, resp = self.p, self.req, self.resp
        t_req_words, t_rsp_words, t_idx = Signal(24), Signal(24), Signal(16)
        t_buf = Signal(data.ArrayLayout(16, B))
        t_left = Signal(range(B // 2 + 1))
        t_sub = Signal(range(B // 2))
        with m.If(self.start):
            m.d.sync += [t_req_words.eq(0), t_rsp_words.eq(0), t_idx.eq(0), t_left.eq(0), t_sub.eq(0)]
        with m.If(self.run):
            m.d.comb += [req.valid.eq(t_req_words < 2 * p.rows),
                         req.payload.addr.eq(p.dram_addr + t_req_words),
                         req.payload.count.eq(B),
                         resp.ready.eq(t_left == 0)]
            with m.If(req.valid & req.ready):
                m.d.sync += t_req_words.eq(t_req_words + B)
            with m.If(resp.valid & (t_left == 0)):
                m.d.sync += [t_buf.eq(resp.payload.rdata), t_left.eq(B // 2), t_sub.eq(0),
                             t_rsp_words.eq(t_rsp_words + B)]
            with m.If(t_left != 0):
                entry = Signal(32)
                with m.Switch(t_sub):
                    for i in range(B // 2):
                        with m.Case(i):
                            m.d.comb += entry.eq(Cat(t_buf[2 * i], t_buf[2 * i + 1]))
                m.d.comb += [self.tbl_we.eq(t_idx < p.rows), self.tbl_addr.eq(t_idx), self.tbl_data.eq(entry)]
                m.d.sync += [t_idx.eq(t_idx + 1), t_left.eq(t_left - 1), t_sub.eq(t_sub + 1)]
            with m.If((t_rsp_words >= 2 * p.rows) & (t_left == 0)):
                m.d.comb += self.done.eq(1)
        return m
