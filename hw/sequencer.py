"""The sequencer: it fetches the engine's command descriptors (``hw.descriptor``) from DRAM one after the other,
decodes each, starts the units on it and waits for them, until ``END``.

States: ``IDLE`` (``start`` takes the list's address ``cmd_addr``) -> ``FETCH`` (the descriptor's ``desc_beats``
beats, requested back to back at ``cmd_ptr``, ``cmd_ptr + beat``, ... as the port takes them; their responses
land in a raw register) -> ``DECODE`` (one cycle: the raw beats become ``desc``) -> ``DISPATCH`` (waits while
``enc_block``, then while ``dma_block``; then pulses ``unit_start``, or on ``END`` raises ``done`` and goes back to
``IDLE``) -> ``EXEC`` (until ``unit_done``: the next descriptor, ``desc_words_padded`` words on, is fetched).

Timing: ``FETCH`` lasts until the cycle after the last response (``desc_beats + 1`` cycles at the least: a
response in every cycle from the first), ``DECODE`` one cycle, so ``unit_start`` comes ``desc_beats + 2`` cycles
after the fetch begins at the earliest. ``wait_enc``, ``wait_dma``, ``unit_start`` and ``exec_state`` are
combinational (of the state, ``desc`` and ``enc_block`` / ``dma_block``).
``running``, ``done``, ``cmd_done`` and ``cmd_index`` are registers: ``start`` seen in ``IDLE`` clears ``done`` and
``cmd_index`` and sets ``running`` the cycle after; ``unit_done`` in ``EXEC`` raises ``cmd_done`` for one cycle and
steps ``cmd_index`` the cycle after; ``END`` dispatched sets ``done`` and clears ``running`` the cycle after.

Ports
-----
start : In(1)           seen in ``IDLE``: run the command list at ``cmd_addr``
cmd_addr : In(32)       the list's DRAM word address (taken with ``start``)
running : Out(1)        from the cycle after ``start`` to the cycle ``done`` rises
done : Out(1)           the list ended (held until the next ``start``)
cmd_done : Out(1)       one-cycle pulse the cycle after a command's ``unit_done``
cmd_index : Out(16)     commands finished since ``start``
fetching : Out(1)       in ``FETCH``: the sequencer owns the foreground DRAM streams ``req`` / ``resp``
req : Out(stream)       the descriptor reads (``req_layout``: ``count`` = a beat, ``write`` = 0); valid in
                        ``FETCH`` until every beat is requested
resp : In(stream)       their responses, in order (``resp_layout``); ready throughout ``FETCH``
desc : Out(layout)      the decoded descriptor (``hw.descriptor.layout``), from ``DISPATCH`` until the next
                        ``DECODE``
unit_start : Out(1)     one-cycle pulse in the last ``DISPATCH`` cycle of a command other than ``END``
exec_state : Out(1)     in ``EXEC``: the units run the command ``desc``
unit_done : In(1)       seen in ``EXEC``: the command has finished
enc_block : In(1)       seen in ``DISPATCH``: ``desc`` must wait for the encode unit
dma_block : In(1)       seen in ``DISPATCH``: ``desc`` must wait for a DMA engine
wait_enc : Out(1)       ``DISPATCH`` held by ``enc_block``
wait_dma : Out(1)       ``DISPATCH`` held by ``dma_block`` alone
count_en : Out(1)       the performance counters count this cycle: ``running``, and not executing a ``nocount``
                        command
"""

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .descriptor import DESC_BITS, Op, desc_beats, desc_words_padded
from .descriptor import layout as desc_layout


class Sequencer(wiring.Component):
    """The command sequencer (module docstring). ``req_layout``, ``resp_layout``: the engine's DRAM request and
    response layouts (``hw.engine.dram_req_layout``, ``dram_resp_layout``); a beat is the response's ``rdata``
    words (the engine's lanes)."""

    def __init__(self, req_layout, resp_layout):
        for name, lay, fields in (("req_layout", req_layout, ("addr", "write", "count")),
                                  ("resp_layout", resp_layout, ("rdata",))):
            if not isinstance(lay, data.StructLayout) or not all(f in dict(lay.members) for f in fields):
                raise ValueError(f"Sequencer {name} must be a StructLayout with {', '.join(fields)}, got {lay!r}")
        rdata = dict(resp_layout.members)["rdata"]
        if (not isinstance(rdata, data.ArrayLayout) or Shape.cast(rdata.elem_shape).width != 16 or rdata.length < 1
                or rdata.length >= 2 ** Shape.cast(dict(req_layout.members)["count"]).width):
            raise ValueError(f"Sequencer needs a response beat of 16-bit words whose count fits the request's "
                             f"count field, got rdata {rdata!r}")
        self.beat = rdata.length
        super().__init__({
            "start": In(1), "cmd_addr": In(32),
            "running": Out(1), "done": Out(1), "cmd_done": Out(1), "cmd_index": Out(16), "fetching": Out(1),
            "req": Out(stream.Signature(req_layout)), "resp": In(stream.Signature(resp_layout)),
            "desc": Out(desc_layout), "unit_start": Out(1), "exec_state": Out(1),
            "unit_done": In(1), "enc_block": In(1), "dma_block": In(1),
            "wait_enc": Out(1), "wait_dma": Out(1), "count_en": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.beat
        beats = desc_beats(L)
        d, req, resp = self.desc, self.req, self.resp
        raw = Signal(beats * L * 16)
        cmd_ptr = Signal(32)
        fetch_req = Signal(range(beats + 1))
        fetch_rsp = Signal(range(beats + 1))

        m.d.sync += self.cmd_done.eq(0)
        m.d.comb += self.count_en.eq(self.running & ~(self.exec_state & d.nocount))

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [cmd_ptr.eq(self.cmd_addr), self.cmd_index.eq(0), self.done.eq(0),
                                 self.running.eq(1), fetch_req.eq(0), fetch_rsp.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [
                    self.fetching.eq(1),
                    req.valid.eq(fetch_req < beats),
                    req.payload.addr.eq(cmd_ptr + fetch_req * L),
                    req.payload.count.eq(L),
                    resp.ready.eq(1),
                ]
                with m.If(req.valid & req.ready):
                    m.d.sync += fetch_req.eq(fetch_req + 1)
                with m.If(resp.valid):
                    m.d.sync += fetch_rsp.eq(fetch_rsp + 1)
                    for b in range(beats):
                        with m.If(fetch_rsp == b):
                            m.d.sync += raw.word_select(b, 16 * L).eq(resp.payload.rdata.as_value())
                with m.If(fetch_rsp == beats):
                    m.next = "DECODE"
            with m.State("DECODE"):
                m.d.sync += d.as_value().eq(raw[:DESC_BITS])
                m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.If(self.enc_block):
                    m.d.comb += self.wait_enc.eq(1)
                with m.Elif(self.dma_block):
                    m.d.comb += self.wait_dma.eq(1)
                with m.Else():
                    m.d.comb += self.unit_start.eq(d.op != Op.END)
                    with m.If(d.op == Op.END):
                        m.d.sync += [self.done.eq(1), self.running.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "EXEC"
            with m.State("EXEC"):
                m.d.comb += self.exec_state.eq(1)
                with m.If(self.unit_done):
                    m.d.sync += [self.cmd_done.eq(1), self.cmd_index.eq(self.cmd_index + 1),
                                 cmd_ptr.eq(cmd_ptr + desc_words_padded(L)), fetch_req.eq(0), fetch_rsp.eq(0)]
                    m.next = "FETCH"
        return m
