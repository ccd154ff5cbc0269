"""The DRAM port arbiter: the engine's three requesters onto one DRAM port, and the read responses back to
their owners.

Requesters, by priority: the foreground (``fg``: the command being executed and the descriptor fetch), the
LOAD engine (``ld``), the STORE engine (``st``; writes only). A request goes out in the cycle it is offered if
no requester above it offers one (a background transfer fills the cycles the foreground leaves). Every read
(foreground or LOAD) takes a one-bit tag, its owner, in a FIFO of ``TAGS`` entries: a read waits while it is
full, a write needs none. The DRAM answers reads in order, so each response goes where the oldest tag says;
it waits while its owner is not ready. A program without background transfers never has two requesters at
once, so its cycles are those of a single requester on the port.

The engine's DRAM port carries :func:`dram_req_layout` requests and :func:`dram_resp_layout` responses (a beat is
``lanes`` words; ``hw.engine`` re-exports them).

Ports
-----
fg_req, ld_req, st_req : In(stream of req_layout)    the requests (:func:`dram_req_layout`)
req : Out(stream of req_layout)                       to the DRAM port
resp : In(stream of resp_layout)                      the port's read responses, in request order
fg_resp, ld_resp : Out(stream of resp_layout)         the responses of the foreground's and the LOAD engine's reads
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .descriptor import DRAM_BEAT_WORDS
from .dma import count_bits

TAGS = 64   # reads in flight


def dram_req_layout(lanes: int = DRAM_BEAT_WORDS) -> data.StructLayout:
    """A DRAM request of an engine of ``lanes`` lanes (a beat is ``lanes`` words)."""
    return data.StructLayout({
        "addr": 32,                  # element (16-bit word) address
        "write": 1,
        "count": count_bits(lanes),  # words in this beat, 1..lanes
        "wdata": data.ArrayLayout(16, lanes),
    })


def dram_resp_layout(lanes: int = DRAM_BEAT_WORDS) -> data.StructLayout:
    """A DRAM read response of an engine of ``lanes`` lanes."""
    return data.StructLayout({"rdata": data.ArrayLayout(16, lanes)})


DRAM_REQ = dram_req_layout(DRAM_BEAT_WORDS)
DRAM_RESP = dram_resp_layout(DRAM_BEAT_WORDS)


class DramArbiter(wiring.Component):
    """Three requesters onto one DRAM port (module docstring). ``req_layout``, ``resp_layout``: the engine's
    DRAM request and response layouts (``hw.engine.dram_req_layout``, ``dram_resp_layout``)."""

    def __init__(self, req_layout, resp_layout):
        for name, lay, fields in (("req_layout", req_layout, ("addr", "write", "count")),
                                  ("resp_layout", resp_layout, ("rdata",))):
            if not isinstance(lay, data.StructLayout) or not all(f in dict(lay.members) for f in fields):
                raise ValueError(f"DramArbiter {name} must be a StructLayout with {', '.join(fields)}, got {lay!r}")
        req, resp = stream.Signature(req_layout), stream.Signature(resp_layout)
        super().__init__({"fg_req": In(req), "ld_req": In(req), "st_req": In(req), "req": Out(req),
                          "resp": In(resp), "fg_resp": Out(resp), "ld_resp": Out(resp)})

    def elaborate(self, platform):
        m = Module()
        fg, ld, st, req, resp = self.fg_req, self.ld_req, self.st_req, self.req, self.resp
        m.submodules.rtags = tags = SyncFIFO(width=1, depth=TAGS)
        sel_fg, sel_ld = Signal(), Signal()
        m.d.comb += [sel_fg.eq(fg.valid), sel_ld.eq(~fg.valid & ld.valid)]
        room = tags.w_rdy        # a read needs a free tag
        ok_fg = room | fg.payload.write
        ok_ld = room
        m.d.comb += [
            req.valid.eq((fg.valid & ok_fg) | (sel_ld & ok_ld) | (~fg.valid & ~ld.valid & st.valid)),
            req.payload.eq(Mux(sel_fg, fg.payload.as_value(),
                               Mux(sel_ld, ld.payload.as_value(), st.payload.as_value()))),
            fg.ready.eq(req.ready & sel_fg & ok_fg),
            ld.ready.eq(req.ready & sel_ld & ok_ld),
            st.ready.eq(req.ready & ~fg.valid & ~ld.valid),
        ]
        accept = req.valid & req.ready
        m.d.comb += [tags.w_en.eq(accept & ~req.payload.write), tags.w_data.eq(sel_ld)]
        head_ld = tags.r_rdy & tags.r_data[0]
        m.d.comb += [
            self.fg_resp.valid.eq(resp.valid & ~head_ld), self.fg_resp.payload.eq(resp.payload),
            self.ld_resp.valid.eq(resp.valid & head_ld), self.ld_resp.payload.eq(resp.payload),
            resp.ready.eq(Mux(head_ld, self.ld_resp.ready, self.fg_resp.ready)),
            tags.r_en.eq(resp.valid & resp.ready),
        ]
        return m
