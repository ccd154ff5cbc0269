"""Stage 2 of the engine's pipeline: the encode unit (``hw.encode_unit``) and its table loader
(``hw.table_loader``), the hand-over of the ``ENC_TABLES`` and ``ENCODE`` commands, and the two ports the stage
shares with the engine's other units.

* ``ENCODE`` hands a map (one part of it) to the unit and is done at once: the unit reads the map from the feature
  buffer, encodes it and writes the coded words to DRAM in the background while the sequencer goes on.
* ``ENC_TABLES`` reads ``rows`` two-word table entries from DRAM (``dram_addr``) on the foreground streams into the
  unit's table port; ``enc_mode`` bit 0 selects the lossless coder, bit 1 its signed mode (the colour build: the
  table addresses start at ``fb_addr``, 0 luminance and 1024 chrominance; ``ENCODE``'s ``enc_mode`` is its
  sampling, 0 map, 1 RGB 4:4:4, 2 RGB 4:2:0).
* ``block``: the decoded command must wait: ``END`` and ``ENC_TABLES`` for an idle unit, ``ENCODE`` for the previous
  part to be read (a new image, ``enc_first``: for the previous one to be written), a command with ``enc_sync`` for
  the reads to end.
* The DRAM port: the unit's writes go first. They are rare (12 words per 24 coded bytes, a few per thousand
  cycles) and cost the other units one cycle of back-pressure each, which they all handle (the DRAM refuses
  requests too); the other way round, a weight stream that holds the port for thousands of cycles would stall
  the encoder.
* The feature buffer's read port: every other unit uses its read data the cycle after its read, so the unit takes
  any cycle they leave idle.

Signature (``req_layout`` / ``resp_layout``: the engine's DRAM port, ``hw.dram_arbiter``)::

    desc : In(descriptor.layout)  the command being dispatched or executed (the sequencer's ``desc``)
    start : In(1)                 one-cycle pulse: the sequencer starts ``desc``
    exec : In(1)                  the sequencer executes ``desc`` (its ``exec_state``)
    block : Out(1)                ``desc`` must wait for the unit (the sequencer's ``enc_block``)
    done : Out(1)                 ``exec`` and this cycle ends an ``ENCODE`` or ``ENC_TABLES`` command
    tables : Out(1)               ``exec`` of an ``ENC_TABLES`` command (its cycles wait for DRAM)
    fg_req : Out(stream)          the table loader's reads (valid in ``tables`` cycles only)
    fg_resp : In(stream)          their responses (ready in ``tables`` cycles only)
    req : In(stream)              the other units' DRAM requests
    port : Out(stream)            to the DRAM port: the unit's write, else ``req``
    rd_en, rd_addr : In           the other units' feature-buffer read this cycle
    fb_rd_en, fb_rd_addr : Out    the buffer's read port: their read, else the unit's
    fb_rd_data : In               the buffer's read data (the cycle after the read)
    inc : Out(StructLayout)       this cycle's increment of each counter of ``COUNTERS`` (``hw.perf_counters``)
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .descriptor import Op
from .descriptor import layout as desc_layout
from .encode_unit import EncodeUnit
from .table_loader import TableLoader

COUNTERS = ("enc_active", "enc_overlap", "enc_samples", "enc_bits", "enc_out_words", "enc_fb_read_words",
            "enc_stall_in", "enc_stall_out")
"""The stage's counters (``enc_wait``, the sequencer held for the unit, is the sequencer's)."""
COUNTER_INC_BITS = 32


class EncodeStage(wiring.Component):
    """The encode unit with its table loader and port sharing (module docstring). ``fb_addr_bits``, ``fb_banks``:
    the feature buffer's address width and words per read; ``colour``: the unit's colour build."""

    def __init__(self, req_layout, resp_layout, fb_addr_bits: int, fb_banks: int, colour: bool = False):
        if not isinstance(colour, bool):
            raise ValueError(f"EncodeStage colour must be True or False, got {colour!r}")
        if not isinstance(fb_banks, int) or isinstance(fb_banks, bool) or not 1 <= fb_banks <= 64:
            raise ValueError(f"EncodeStage fb_banks must be an integer in 1..64, got {fb_banks!r}")
        self.req_layout, self.resp_layout = req_layout, resp_layout
        self.fb_addr_bits, self.fb_banks, self.colour = fb_addr_bits, fb_banks, colour
        # (EncodeUnit checks fb_addr_bits and the read width)
        self._unit = EncodeUnit(fb_addr_bits, fb_banks, colour=colour)
        super().__init__({
            "desc": In(desc_layout), "start": In(1), "exec": In(1),
            "block": Out(1), "done": Out(1), "tables": Out(1),
            "fg_req": Out(stream.Signature(req_layout)), "fg_resp": In(stream.Signature(resp_layout)),
            "req": In(stream.Signature(req_layout)), "port": Out(stream.Signature(req_layout)),
            "rd_en": In(1), "rd_addr": In(fb_addr_bits),
            "fb_rd_en": Out(1), "fb_rd_addr": Out(fb_addr_bits), "fb_rd_data": In(self._unit.rd_data.shape()),
            "inc": Out(data.StructLayout({n: COUNTER_INC_BITS for n in COUNTERS})),
        })

    def elaborate(self, platform):
        m = Module()
        d, inc, req, port = self.desc, self.inc, self.req, self.port
        m.submodules.unit = unit = self._unit

        # the DRAM port: the unit's writes first
        wr = unit.wr
        enc_req = Signal(self.req_layout)
        m.d.comb += [enc_req.addr.eq(wr.payload.addr), enc_req.write.eq(1), enc_req.count.eq(wr.payload.count),
                     enc_req.wdata.eq(wr.payload.wdata),
                     port.valid.eq(req.valid | wr.valid),
                     port.payload.eq(Mux(wr.valid, enc_req.as_value(), req.payload.as_value())),
                     req.ready.eq(port.ready & ~wr.valid), wr.ready.eq(port.ready)]
        with m.If(wr.valid & wr.ready):
            m.d.comb += inc.enc_out_words.eq(wr.payload.count)
        # the feature buffer's read port: in the cycles the other units leave idle
        grant = Signal()
        m.d.comb += [grant.eq(unit.rd_req & ~self.rd_en), self.fb_rd_en.eq(self.rd_en | grant),
                     self.fb_rd_addr.eq(Mux(self.rd_en, self.rd_addr, unit.rd_addr)),
                     unit.rd_grant.eq(grant), unit.rd_data.eq(self.fb_rd_data)]
        with m.If(grant):
            m.d.comb += inc.enc_fb_read_words.eq(self.fb_banks)

        m.d.comb += self.block.eq((d.enc_sync & unit.reading)
                                  | (((d.op == Op.END) | (d.op == Op.ENC_TABLES)) & unit.busy)
                                  | ((d.op == Op.ENCODE) & Mux(d.enc_first, unit.busy, unit.reading)))
        # ENCODE: hand the map over and finish
        u = unit.params
        m.d.comb += [unit.start.eq(self.start & (d.op == Op.ENCODE)),
                     u.in_addr.eq(d.in_addr), u.grid_cols.eq(d.grid_cols), u.grid_rows.eq(d.grid_rows),
                     u.shift.eq(d.shift), u.ch_stride.eq(d.in_ch_stride), u.channels.eq(d.in_c), u.h.eq(d.in_h),
                     u.w.eq(d.in_w), u.yb0.eq(d.enc_yb0), u.ybn.eq(d.enc_ybn), u.y_base.eq(d.in_y0),
                     u.offset.eq(d.enc_offset), u.first.eq(d.enc_first), u.last.eq(d.enc_last),
                     u.out_addr.eq(d.dram_addr)]
        if self.colour:
            m.d.comb += u.sampling.eq(d.enc_mode)
        with m.If(self.exec & (d.op == Op.ENCODE)):
            m.d.comb += self.done.eq(1)

        # ENC_TABLES: the table loader reads `rows` entries into the unit's table port
        lossless, signed_ = Signal(), Signal()
        m.submodules.tables = tl = TableLoader(self.req_layout, self.resp_layout)
        m.d.comb += self.tables.eq(self.exec & (d.op == Op.ENC_TABLES))
        with m.If(self.start & (d.op == Op.ENC_TABLES)):
            m.d.sync += [lossless.eq(d.enc_mode[0]), signed_.eq(d.enc_mode[1])]
        m.d.comb += [unit.lossless.eq(lossless), unit.lossless_signed.eq(signed_),
                     tl.start.eq(self.start & (d.op == Op.ENC_TABLES)), tl.run.eq(self.tables),
                     tl.p.dram_addr.eq(d.dram_addr), tl.p.rows.eq(d.rows),
                     tl.req.ready.eq(self.fg_req.ready), tl.resp.valid.eq(self.fg_resp.valid),
                     tl.resp.payload.eq(self.fg_resp.payload), unit.tbl_we.eq(tl.tbl_we),
                     unit.tbl_addr.eq(tl.tbl_addr + d.fb_addr if self.colour else tl.tbl_addr),
                     unit.tbl_data.eq(tl.tbl_data)]
        with m.If(self.tables):
            m.d.comb += [self.fg_req.valid.eq(tl.req.valid), self.fg_req.payload.eq(tl.req.payload),
                         self.fg_resp.ready.eq(tl.resp.ready), self.done.eq(tl.done)]
        # the counters of stage 2
        m.d.comb += [inc.enc_active.eq(unit.busy), inc.enc_samples.eq(unit.inc_samples),
                     inc.enc_overlap.eq(unit.busy & self.exec & ~((d.op == Op.ENCODE) | (d.op == Op.ENC_TABLES))),
                     inc.enc_bits.eq(unit.inc_bits), inc.enc_stall_in.eq(unit.stall_in),
                     inc.enc_stall_out.eq(unit.stall_out)]
        return m
