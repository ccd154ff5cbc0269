"""The edge inference engine: the top that joins its components.

Block diagram (the components' modules in brackets; ``docs/architecture.md`` draws the whole engine)::

    DRAM port [dram_arbiter] <-> [sequencer | dma (LOAD/STORE) | weight_fetcher | weight_stream | table_loader]
                                  |                        |
                                  v                        v
    feature buffer [feature_buffer] -> [window_loader]: segment buffers   weight banks [weight_banks]
           ^                                        |  lane select (12 lanes)              |
           |                                        v                                      v
           +---------- write-back <------ [conv_pool]: beat = 12 w + 12 a -> MAC array 12x12 [mac_array]
           +---------- write-back <------ [conv_pool]: max unit (12 lanes, max-pooling)
           +---------- [vector_unit] (ADD, GAP), [dw_unit] (DWCONV, DWPOOL), [encode_unit] (ENCODE)

The engine fetches command descriptors (``hw.descriptor``) from DRAM and executes them in order: the sequencer
(``hw.sequencer``) fetches and decodes each, starts the units on it and waits for them. CONV and POOL: the window
loader (``hw.window_loader``) and the CONV / POOL unit (``hw.conv_pool``: beat issue, max unit, write-back) with
the MAC array; the weights come through the weight buffer (``hw.weight_banks``: group layout, chunks) from the
plain fetcher (``hw.weight_fetcher``) or the weight decoders (``hw.weight_stream``: compressed weights). ADD and
GAP: the vector unit (``hw.vector_unit``); DWCONV and DWPOOL: the depthwise unit (``hw.dw_unit``); LOAD and
STORE: the two DMA engines (``hw.dma``), in the background too; ENC_TABLES and ENCODE: the encode unit
(``hw.encode_unit``), the second pipeline stage: it encodes a map from the feature buffer into DRAM in the
background while the sequencer goes on (it uses the buffer's read port in cycles nothing else does and takes the
DRAM port first for its rare writes); a command with ``enc_sync`` (and ``END``) waits for it. The performance
counters (``hw.perf_counters``; ``COUNTERS``, their definitions and the cycle classes there) count every
running cycle as exactly one class.

Array size (``lanes``, ``golden.arch.EngineArch.lanes``; 12 below and by default): the MAC array is
``lanes x lanes``, a weight group ``lanes`` output channels, a tile ``lanes`` pixels, a DRAM beat ``lanes`` words
(a descriptor ``desc_beats(lanes)`` beats), the segment buffers ``seg_width(lanes)`` words per row. The RTL takes
4..24 lanes (``MAX_RTL_LANES``). The feature buffer has ``fb_banks`` banks (16, or 32 above 16 lanes,
``golden.arch.default_fb_banks``): one read gives ``fb_banks`` words, which the ADD unit and the STORE engine need
for a row of ``lanes`` words, and one write takes a row of ``lanes`` words (a drained array row, a DRAM beat, an
ADD result). The window loader, the depthwise unit and GAP use the first ``STREAM_WORDS`` (16) words of each read
at any bank count, so their schedules do not depend on it. The encode unit and the weight decoders are 12-lane
units (``CODEC_LANES``), so an engine of another lane count is built without them. At 12 lanes the cycles are
those of the engine before it took ``lanes``.
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.arch import DEFAULT_ARCH, MIN_LANES, EngineArch, default_fb_banks
from golden.fixedpoint import ACT_BITS, BIAS_BITS

from .conv_pool import ConvPoolUnit
from .descriptor import Op
from .dma import Dma
from .dram_arbiter import DramArbiter, dram_req_layout, dram_resp_layout
from .dw_unit import DwUnit
from .encode_stage import COUNTERS as ENC_COUNTERS
from .encode_stage import EncodeStage
from .feature_buffer import FeatureBuffer
from .limits import CODEC_LANES, MAX_RTL_LANES, RTL_FB_BANKS, STREAM_WORDS, arch_refusal  # (re-exported too)
from .mac_array import MacArray
from .perf_counters import COUNTER_BITS, COUNTERS, PerfCounters  # (COUNTERS: re-exported)
from .sequencer import Sequencer
from .vector_unit import VectorUnit
from .weight_banks import WeightBanks
from .weight_fetcher import WeightFetcher
from .weight_stream import LANE_TABLE_BASE as LANE_TABLE_BASE  # re-exported: sim.program writes the lane entries
from .weight_stream import WeightStream
from .window_loader import WindowLoader


class Engine(wiring.Component):
    """The engine top. ``fb_words``: feature buffer size in 16-bit words; ``wb_depth``: rows of ``lanes``
    weights per weight-buffer bank (two banks); ``lanes``: the array's rows = columns = words per DRAM beat
    (``golden.arch.EngineArch.lanes``; 4..24, the encode unit and the weight decoders at 12 only); ``fb_banks``:
    the feature buffer's banks (16 or 32, at least ``lanes``; None: ``golden.arch.default_fb_banks``)."""

    def __init__(self, fb_words: int = DEFAULT_ARCH.fb_words, wb_depth: int = DEFAULT_ARCH.wb_depth,
                 encoder: bool = DEFAULT_ARCH.encoder, weight_decoder: bool = DEFAULT_ARCH.weight_decoders,
                 dw_unit: bool = DEFAULT_ARCH.dw_unit, lanes: int = DEFAULT_ARCH.lanes, colour: bool = False,
                 fb_banks: int | None = None):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not MIN_LANES <= lanes <= MAX_RTL_LANES:
            raise ValueError(f"Engine lanes must be an integer in {MIN_LANES}..{MAX_RTL_LANES}, got {lanes!r}")
        fb_banks = default_fb_banks(lanes) if fb_banks is None else fb_banks
        if fb_banks not in RTL_FB_BANKS or fb_banks < lanes:
            raise ValueError(f"Engine fb_banks must be 16 or 32 and at least lanes ({lanes}), got {fb_banks!r}")
        if not isinstance(fb_words, int) or fb_words < 256 or fb_words % 32 or fb_words > 2**24:
            raise ValueError(f"Engine fb_words must be a multiple of 32 in 256..2**24, got {fb_words!r}")
        if not isinstance(wb_depth, int) or not 16 <= wb_depth <= 2**16:
            raise ValueError(f"Engine wb_depth must be in 16..65536, got {wb_depth!r}")
        for name, flag in (("encoder", encoder), ("weight_decoder", weight_decoder), ("dw_unit", dw_unit)):
            if not isinstance(flag, bool):
                raise ValueError(f"Engine {name} must be True or False, got {flag!r}")
        if lanes != CODEC_LANES and (encoder or weight_decoder):
            raise ValueError(f"Engine: the encode unit and the weight decoders are built for {CODEC_LANES} lanes "
                             f"only, got lanes={lanes} with encoder={encoder}, weight_decoder={weight_decoder}")
        if weight_decoder and wb_depth % 64:
            raise ValueError(f"Engine wb_depth must be a multiple of 64 with the weight decoder (its blocks "
                             f"fill 64 rows), got {wb_depth!r}")
        # colour: the encode unit's colour build (EncodeUnit(colour=True)): ENCODE's enc_mode is its `sampling`
        # (0 map, 1 RGB 4:4:4, 2 RGB 4:2:0), ENC_TABLES writes table addresses fb_addr.. (11-bit table port)
        if not isinstance(colour, bool) or (colour and not encoder):
            raise ValueError(f"Engine colour must be True (with encoder=True) or False, got {colour!r}")
        self.fb_words, self.wb_depth, self.lanes, self.colour = fb_words, wb_depth, lanes, colour
        self.fb_banks = fb_banks
        self.encoder, self.weight_decoder, self.dw_unit = encoder, weight_decoder, dw_unit
        self.req_layout, self.resp_layout = dram_req_layout(lanes), dram_resp_layout(lanes)
        sig = {"start": In(1), "cmd_addr": In(32), "done": Out(1), "running": Out(1), "cmd_done": Out(1),
               "cmd_index": Out(16), "dram_req": Out(stream.Signature(self.req_layout)),
               "dram_resp": In(stream.Signature(self.resp_layout)),
               **{f"ctr_{n}": Out(COUNTER_BITS) for n in COUNTERS}}
        super().__init__(sig)

    @classmethod
    def from_arch(cls, arch: EngineArch, *, plain: bool = False) -> "Engine":
        """The engine ``arch`` describes (``golden.arch``); ``plain``: without the encode unit and the weight
        decoders (the build a run that neither encodes nor reads coded weights needs). An array of other than
        12 lanes is built plain only (the encode unit and the weight decoders are 12-lane units)."""
        refusal = arch_refusal(arch, plain=plain)
        if refusal:
            raise ValueError(f"Engine: {refusal}")
        return cls(fb_words=arch.fb_words, wb_depth=arch.wb_depth, encoder=arch.encoder and not plain,
                   weight_decoder=arch.weight_decoders and not plain, dw_unit=arch.dw_unit, lanes=arch.lanes,
                   fb_banks=arch.fb_banks)

    def elaborate(self, platform):
        m = Module()
        W, L = self.wb_depth, self.lanes
        DRAM_REQ, DRAM_RESP = self.req_layout, self.resp_layout
        # two halves: the DMA engines (port B) move a band in one half while the compute units (port A) work
        # in the other (hw.feature_buffer)
        m.submodules.fb = fb = FeatureBuffer(self.fb_words, banks=self.fb_banks, halves=2, write_lanes=L)
        m.submodules.array = array = MacArray(L, L)
        # the sequencer (hw.sequencer): fetches, decodes and dispatches the commands
        m.submodules.seq = seq = Sequencer(DRAM_REQ, DRAM_RESP)
        d = seq.desc                                 # the command being executed
        # the performance counters (hw.perf_counters); the encode unit works through `nocount` commands
        # (verification dumps): its counters run on `running`
        m.submodules.counters = ctrs = PerfCounters(COUNTERS, COUNTER_BITS,
                                                    free=[n for n in COUNTERS if n.startswith("enc_")])

        # The nets the units share (`n`). The units that work for the command being executed (and the descriptor
        # fetch) drive `fgreq` and see the responses to their reads on `fresp`; the two DMA engines (LOAD, STORE)
        # may also run in the background beside them. `req` merges the three (foreground first), the encode
        # unit's writes take the port in cycles they leave it idle; responses are routed by a tag per read
        # (``_elaborate_ports``). `rd_en` / `rd_addr`: the feature buffer's reads of the foreground units (the
        # STORE engine, then the encode unit, read in cycles they leave idle); `wr_*`: their writes (the LOAD
        # engine writes in cycles they leave idle). `inc`: this cycle's increment of each counter, `cls_*` the
        # cycle classes (one per running cycle: hw.perf_counters).
        n = SimpleNamespace(
            d=d, fb=fb, inc=ctrs.inc, unit_start=seq.unit_start, unit_done=seq.unit_done, exec_state=seq.exec_state,
            req=stream.Signature(DRAM_REQ).create(path=("mreq",)),
            fgreq=stream.Signature(DRAM_REQ).create(path=("fgreq",)),
            fresp=stream.Signature(DRAM_RESP).create(path=("fresp",)),
            rd_en=Signal(name="rd_en_main"), rd_addr=Signal(fb.addr_bits, name="rd_addr_main"),
            wr_en=Signal(name="fgw_en"), wr_addr=Signal(fb.addr_bits, name="fgw_addr"),
            wr_mask=Signal(fb.write_lanes, name="fgw_mask"),
            wr_data=Signal(data.ArrayLayout(signed(ACT_BITS), fb.write_lanes), name="fgw_data"),
            cls_busy=ctrs.cls_busy, cls_dram=ctrs.cls_dram, cls_fetch=ctrs.cls_fetch, cls_drain=ctrs.cls_drain)
        inc, req, fgreq, fresp = n.inc, n.req, n.fgreq, n.fresp
        unit_start, unit_done, exec_state = n.unit_start, n.unit_done, n.exec_state

        # ---- counters of the ports -------------------------------------------------------------------------
        m.d.comb += [getattr(self, f"ctr_{c}").eq(ctrs.ctr[c]) for c in COUNTERS]
        with m.If(req.valid & req.ready):
            with m.If(req.payload.write):
                m.d.comb += inc["dram_write_words"].eq(req.payload.count)
            with m.Else():
                m.d.comb += inc["dram_read_words"].eq(req.payload.count)
        b_read = Signal()   # the STORE engine reads on port B
        with m.If(n.rd_en | b_read):
            m.d.comb += inc["fb_read_words"].eq(Mux(n.rd_en & b_read, 2 * fb.banks, fb.banks))
        m.d.comb += inc["fb_write_words"].eq(
            Mux(fb.wr_en, sum(fb.wr_mask[t] for t in range(fb.write_lanes)), 0)
            + Mux(fb.b_wr_en & fb.b_wr_ok, sum(fb.b_wr_mask[t] for t in range(fb.write_lanes)), 0))

        # ---- sequencer -------------------------------------------------------------------------------------
        m.d.comb += [seq.start.eq(self.start), seq.cmd_addr.eq(self.cmd_addr), self.running.eq(seq.running),
                     self.done.eq(seq.done), self.cmd_done.eq(seq.cmd_done), self.cmd_index.eq(seq.cmd_index),
                     ctrs.en.eq(seq.count_en), ctrs.en_free.eq(seq.running), inc["enc_wait"].eq(seq.wait_enc)]
        with m.If(seq.wait_dma):
            m.d.comb += n.cls_dram.eq(1)   # waiting for a transfer (a DMA engine still busy)
        # the descriptor fetch on the foreground streams (the other foreground units use them in EXEC only)
        with m.If(seq.fetching):
            m.d.comb += [fgreq.valid.eq(seq.req.valid), fgreq.payload.eq(seq.req.payload),
                         fresp.ready.eq(seq.resp.ready)]
        m.d.comb += [seq.req.ready.eq(fgreq.ready), seq.resp.valid.eq(fresp.valid), seq.resp.payload.eq(fresp.payload)]
        is_conv = exec_state & (d.op == Op.CONV)
        is_dw = exec_state & ((d.op == Op.DWCONV) | (d.op == Op.DWPOOL))

        # ---- DMA: LOAD (DRAM -> feature buffer) and STORE (feature buffer -> DRAM) engines ------------------
        m.submodules.ld = ld = Dma(DRAM_REQ, store=False, fb_addr_bits=fb.addr_bits, fb_banks=fb.banks, lanes=L)
        m.submodules.st = st = Dma(DRAM_REQ, store=True, fb_addr_bits=fb.addr_bits, fb_banks=fb.banks, lanes=L)
        for eng, op in ((ld, Op.LOAD), (st, Op.STORE)):
            m.d.comb += [eng.start.eq(unit_start & (d.op == op)),
                         *_fields(eng.p, d, "dram_addr fb_addr rows row_len dram_stride fb_stride")]
            # a foreground transfer ends with its transfer; a background one (`bg`) as soon as it is handed over
            with m.If(exec_state & (d.op == op)):
                m.d.comb += n.cls_dram.eq(~d.bg)
                with m.If(d.bg | eng.done):
                    m.d.comb += unit_done.eq(1)
        # a command waits while the engine it needs, or one it names (wait_ld / wait_st), is busy; END waits for both
        m.d.comb += seq.dma_block.eq(((d.op == Op.LOAD) & ld.busy) | ((d.op == Op.STORE) & st.busy)
                                     | (d.wait_ld & ld.busy) | (d.wait_st & st.busy)
                                     | ((d.op == Op.END) & (ld.busy | st.busy)))
        self._elaborate_ports(m, n, ld, st)
        # the STORE engine reads on the buffer's port B, granted when it wants no memory port A uses
        m.d.comb += [fb.b_rd_en.eq(st.rd_req), fb.b_rd_addr.eq(st.rd_addr), st.rd_grant.eq(fb.b_rd_ok),
                     st.rd_data.eq(fb.b_rd_data), b_read.eq(st.rd_req & fb.b_rd_ok)]

        # ---- CONV / POOL -----------------------------------------------------------------------------------
        conv_or_pool = Signal()
        m.d.comb += conv_or_pool.eq(is_conv | (exec_state & (d.op == Op.POOL)))
        pool_mode = d.op == Op.POOL
        groups = Signal(16)   # conv: ceil(out_c / lanes); pool: channels
        k_rows = Signal(24)   # weight rows per group: in_c * k * k (DWCONV: k * k, one tap per row)
        with m.If(unit_start):
            m.d.sync += [groups.eq(Mux(pool_mode, d.out_c, (d.out_c + L - 1) // L)),
                         k_rows.eq(Mux(d.op == Op.DWCONV, d.k * d.k, d.in_c * d.k * d.k))]
        # the window loader (hw.window_loader): iterates (g, tile, c, ky) and fills the segment buffers
        m.submodules.loader = wl = WindowLoader(fb.addr_bits, lanes=L)
        m.d.comb += [wl.start.eq(unit_start), wl.run.eq(conv_or_pool), wl.p.pool.eq(pool_mode),
                     wl.rd_data.eq(_stream_words(fb.rd_data)),
                     *_fields(wl.p, d, "out_c in_c k stride pad out_h out_w out_y0 in_y0 in_h_total in_addr "
                                       "in_ch_stride in_w")]
        with m.If(wl.rd_en):
            m.d.comb += [n.rd_en.eq(1), n.rd_addr.eq(wl.rd_addr)]

        # the weight buffer (hw.weight_banks) and the plain weight fetcher (hw.weight_fetcher): the fetcher writes
        # whole rows, the weight decoders each lane at its own address; the CONV / POOL unit and the depthwise
        # unit read all lanes of their bank at one address. Compressed layers with w_raw0 fetch their first group
        # raw through the plain fetcher (the array need not wait for the decoders to restore a whole group before
        # the layer starts); then the weight stream takes over (the fetcher's req_done / raw0_rsp_done say when).
        m.submodules.wbuf = wb = WeightBanks(L, W)
        m.submodules.wfetch = wf = WeightFetcher(DRAM_REQ, DRAM_RESP, W)
        m.d.comb += [wf.start.eq(unit_start), wf.run.eq(is_conv | is_dw),
                     wf.p.fetch.eq((d.op == Op.CONV) | (d.op == Op.DWCONV)), wf.p.groups.eq(groups),
                     wf.p.k_rows.eq(k_rows), *_fields(wf.p, d, "w_codec w_raw0 w_addr"),
                     wf.bank_full.eq(wb.full), wf.bank_filling.eq(wb.filling),
                     wf.req.ready.eq(fgreq.ready), wf.resp.valid.eq(fresp.valid), wf.resp.payload.eq(fresp.payload)]
        with m.If(wf.req.valid):
            m.d.comb += [fgreq.valid.eq(1), fgreq.payload.eq(wf.req.payload)]
        with m.If(wf.resp.ready):
            m.d.comb += fresp.ready.eq(1)
        m.d.comb += [wb.clear.eq(unit_start),
                     *_fields(wb, wf, "fill_set set_full row_we row_bias_we row_bank row_addr row_data row_bias_word")]
        with m.If(wf.row_we):
            m.d.comb += inc["wb_write_words"].eq(L)
        # compressed weights (CONV with w_codec): DRAM -> weight decoders -> the same banks
        self._elaborate_wdecoder(m, n, wb, run=is_conv & d.w_codec, groups=groups, k_rows=k_rows,
                                 raw0_req_done=wf.req_done, raw0_rsp_done=wf.raw0_rsp_done)

        # the beat issue, the max unit and the write-back (hw.conv_pool) around the MAC array
        m.submodules.convpool = cp = ConvPoolUnit(fb.addr_bits, lanes=L, depth=W)
        m.d.comb += [cp.start.eq(unit_start), cp.run.eq(conv_or_pool), cp.p.pool.eq(pool_mode),
                     cp.p.k_rows.eq(k_rows), *_fields(cp.p, d, "k out_c out_addr out_ch_stride"),
                     cp.rec.eq(wl.rec), cp.rec_ready.eq(wl.rec_ready), cp.lane.eq(wl.lane), wl.kx.eq(cp.kx),
                     wl.consume.eq(cp.consume), cp.loader_done.eq(wl.done), cp.loader_empty.eq(wl.empty),
                     cp.w_full.eq(wb.full), cp.w_rd_data.eq(wb.rd_data), cp.w_bias.eq(wb.bias),
                     wb.release.eq(cp.w_release), cp.arr_busy.eq(array.busy), array.bias.eq(cp.arr_bias),
                     *_fields(array, d, "shift relu clamp_en clamp")]
        wiring.connect(m, cp.arr, array.inp)
        wiring.connect(m, array.out, cp.arr_out)
        with m.If(conv_or_pool):
            m.d.comb += [*_fields(n, cp, "wr_en wr_addr wr_mask wr_data"), inc["macs"].eq(cp.macs),
                         inc["pool_ops"].eq(cp.pool_ops), inc["wb_read_words"].eq(cp.wb_read_words)]

        # ---- the depthwise unit (hw.dw_unit) on the same banks; the banks' read port: its or the CONV unit's -----
        dw_row, dw_bank, dw_rd = self._elaborate_dw(m, n, wb, is_dw)
        m.d.comb += [wb.rd_addr.eq(Mux(is_dw, dw_row, cp.w_rd_addr)), wb.rd_bank.eq(Mux(is_dw, dw_bank, cp.w_bank)),
                     wb.rd_en.eq(Mux(is_dw, dw_rd, cp.w_rd_en))]

        # ---- vector unit: ADD and GAP (hw.vector_unit) ---------------------------------------------------------
        is_vec = exec_state & ((d.op == Op.ADD) | (d.op == Op.GAP))
        m.submodules.vector = vu = VectorUnit(fb.addr_bits, lanes=L, read_words=fb.banks)
        m.d.comb += [vu.start.eq(unit_start), vu.run.eq(is_vec), vu.p.gap.eq(d.op == Op.GAP), vu.rd_data.eq(fb.rd_data),
                     *_fields(vu.p, d, "in_addr in2_addr in_ch_stride in_c row_len out_addr wa wb shift relu clamp_en "
                                       "clamp")]
        with m.If(is_vec & ~unit_start):
            m.d.comb += [n.cls_busy.eq(1), *_fields(n, vu, "rd_en rd_addr wr_en wr_addr wr_mask wr_data"),
                         inc["macs"].eq(vu.macs), unit_done.eq(vu.done)]

        # ---- encode unit (stage 2: encode + transmit) ---------------------------------------------------------
        self._elaborate_encoder(m, n, seq.enc_block)

        # cycle classes and completion of CONV / POOL (after the other units': a CONV's classes are the unit's)
        with m.If(conv_or_pool):
            m.d.comb += [n.cls_busy.eq(cp.busy), n.cls_dram.eq(cp.wait_w), n.cls_fetch.eq(cp.wait_fetch),
                         n.cls_drain.eq(cp.drain)]
            with m.If(cp.done):
                m.d.comb += unit_done.eq(1)
        return m

    def _elaborate_ports(self, m, n, ld, st):
        """The DRAM port and the feature buffer's write port, shared by the foreground units and the two DMA
        engines ``ld``, ``st``. Requests: the arbiter (``hw.dram_arbiter``): the foreground first (the command
        being executed, the descriptor fetch), then the LOAD engine, then the STORE engine; a tag per read routes
        the responses. The buffer: the foreground writes on port A, the LOAD engine on port B (granted when it
        wants no memory port A uses; its response waits while port B is refused)."""
        fb = n.fb
        m.submodules.arbiter = arb = DramArbiter(self.req_layout, self.resp_layout)
        for src, dst in ((n.fgreq, arb.fg_req), (ld.req, arb.ld_req), (st.req, arb.st_req), (arb.req, n.req),
                         (self.dram_resp, arb.resp), (arb.fg_resp, n.fresp)):
            m.d.comb += [dst.valid.eq(src.valid), dst.payload.eq(src.payload), src.ready.eq(dst.ready)]
        m.d.comb += [ld.rsp_valid.eq(arb.ld_resp.valid), ld.rsp_data.eq(arb.ld_resp.payload.rdata),
                     arb.ld_resp.ready.eq(ld.rsp_ready),
                     fb.wr_en.eq(n.wr_en), fb.wr_addr.eq(n.wr_addr), fb.wr_mask.eq(n.wr_mask), fb.wr_data.eq(n.wr_data),
                     fb.b_wr_en.eq(ld.wr_en), fb.b_wr_addr.eq(ld.wr_addr), fb.b_wr_mask.eq(ld.wr_mask),
                     fb.b_wr_data.eq(ld.wr_data), ld.wr_grant.eq(fb.b_wr_ok)]

    def _elaborate_dw(self, m, n, wb, is_dw):
        """The depthwise unit (``hw.dw_unit``, DWCONV and DWPOOL): it takes the weight bank of each group of
        ``lanes`` channels from the weight fetcher (9 rows, then releases it; ``bank``: the one in use, 0 at each
        command), the feature buffer's read and write ports while it runs. Cycle classes: busy = an output row
        issued, DRAM = waiting for a weight bank, fetch = the rest (input rows loading, channel and group changes,
        the pipeline draining). Returns its read of the banks: (row, bank, enable)."""
        d = n.d
        if not self.dw_unit:
            with m.If(is_dw):
                m.d.comb += n.unit_done.eq(1)
            return 0, 0, 0
        m.submodules.dw = dw = DwUnit(n.fb.addr_bits, lanes=self.lanes)
        bank = Signal()
        with m.If(n.unit_start):
            m.d.sync += bank.eq(0)
        m.d.comb += [
            dw.start.eq(n.unit_start & ((d.op == Op.DWCONV) | (d.op == Op.DWPOOL))),
            dw.p.maxpool.eq(d.op == Op.DWPOOL), dw.p.channels.eq(d.in_c), dw.p.stride2.eq(d.stride == 2),
            dw.p.pad.eq(d.pad != 0),
            *_fields(dw.p, d, "in_addr in_ch_stride in_w in_y0 in_h_total out_addr out_ch_stride out_w out_h out_y0 "
                              "shift relu clamp_en clamp"),
            dw.grp_ready.eq(wb.full.bit_select(bank, 1)),
            dw.w_data.eq(Mux(bank, wb.rd_data[1].as_value(), wb.rd_data[0].as_value())),
            dw.rd_data.eq(_stream_words(n.fb.rd_data)),
            # (the banks hold 48-bit bias words, as fetched; the unit takes BIAS_BITS)
            *(dw.bias[j].eq(Mux(bank, wb.bias[1][j], wb.bias[0][j])[:BIAS_BITS]) for j in range(self.lanes)),
        ]
        with m.If(is_dw):
            m.d.comb += [*_fields(n, dw, "rd_en rd_addr wr_en wr_addr wr_mask wr_data"),
                         n.inc["macs"].eq(Mux(dw.p.maxpool, 0, dw.macs)),
                         n.inc["pool_ops"].eq(Mux(dw.p.maxpool, dw.macs, 0)),
                         n.inc["wb_read_words"].eq(Mux(dw.w_en, self.lanes, 0)),
                         n.cls_busy.eq(dw.beat), n.cls_dram.eq(dw.wait_w), n.cls_fetch.eq(~dw.beat & ~dw.wait_w)]
            with m.If(dw.grp_release):
                m.d.comb += wb.release.eq(Mux(bank, 0b10, 0b01))
                m.d.sync += bank.eq(~bank)
            with m.If(dw.done):
                m.d.comb += n.unit_done.eq(1)
        return dw.w_addr, bank, dw.w_en

    def _elaborate_wdecoder(self, m, n, wb, *, run, groups, k_rows, raw0_req_done, raw0_rsp_done):
        """The compressed-weight path (``hw.weight_stream``: twelve weight decoders, one per lane) joined to the
        foreground DRAM streams (after the plain fetcher: it takes the port once the raw first group is
        requested; the two never overlap), the weight banks (``wb``: their lane-side write port and bias words,
        their flags over the plain fetcher's), and the counters (summed over the lanes)."""
        if not self.weight_decoder:
            return
        d, inc, req, resp = n.d, n.inc, n.fgreq, n.fresp
        # (named wdec: its decoders are engine.wdec.wdec<j>, the area breakdown's weight-decoder part)
        m.submodules.wdec = ws = WeightStream(self.req_layout, self.resp_layout, self.wb_depth)
        m.d.comb += [ws.start.eq(n.unit_start), ws.run.eq(run), ws.p.coded.eq((d.op == Op.CONV) & d.w_codec),
                     *_fields(ws.p, d, "w_raw0 w_addr rows dram_addr row_len"), ws.p.k_rows.eq(k_rows),
                     ws.p.groups.eq(groups), ws.raw0_req_done.eq(raw0_req_done), ws.raw0_rsp_done.eq(raw0_rsp_done),
                     ws.bank_full.eq(wb.full), ws.bank_filling.eq(wb.filling),
                     ws.req.ready.eq(req.ready), ws.resp.valid.eq(resp.valid), ws.resp.payload.eq(resp.payload)]
        with m.If(ws.req.valid):
            m.d.comb += [req.valid.eq(1), req.payload.eq(ws.req.payload)]
        with m.If(ws.resp.ready):
            m.d.comb += resp.ready.eq(1)
        with m.If(ws.fill_set != 0):
            m.d.comb += wb.fill_set.eq(ws.fill_set)
        with m.If(ws.set_full != 0):
            m.d.comb += wb.set_full.eq(ws.set_full)
        m.d.comb += [wb.lane_bias_we.eq(ws.bias_we), wb.lane_bias_bank.eq(ws.bias_bank),
                     wb.lane_bias_word.eq(ws.bias_word), wb.lane_bias_data.eq(ws.bias_data),
                     wb.lane_we.eq(ws.wr_en), wb.lane_bank.eq(ws.wr_bank), wb.lane_addr.eq(ws.wr_addr),
                     wb.lane_data.eq(ws.wr_data)]
        with m.If(ws.weights != 0):    # (the plain path writes rows at other times)
            m.d.comb += inc["wb_write_words"].eq(ws.weights)
        m.d.comb += [inc["wdec_active"].eq(ws.active), inc["wdec_weights"].eq(ws.weights), inc["wdec_bits"].eq(ws.bits),
                     inc["wdec_stall_in"].eq(ws.stall_in), inc["wdec_stall_out"].eq(ws.stall_out)]

    def _elaborate_encoder(self, m, n, enc_block):
        """Stage 2 (``hw.encode_stage``: the encode unit, its table loader, the ENCODE hand-over, the unit's share
        of the DRAM port and the buffer's read port); ``enc_block``: the decoded command waits for the unit."""
        d, fb, req, port = n.d, n.fb, n.req, self.dram_req
        if not self.encoder:
            # no encode unit: the units own both ports; ENC_TABLES / ENCODE finish at once
            m.d.comb += [port.valid.eq(req.valid), port.payload.eq(req.payload), req.ready.eq(port.ready),
                         fb.rd_en.eq(n.rd_en), fb.rd_addr.eq(n.rd_addr)]
            with m.If(n.exec_state & ((d.op == Op.ENC_TABLES) | (d.op == Op.ENCODE))):
                m.d.comb += n.unit_done.eq(1)
            return
        m.submodules.encode = es = EncodeStage(self.req_layout, self.resp_layout, fb.addr_bits, fb.banks,
                                               colour=self.colour)
        m.d.comb += [es.desc.eq(d), es.start.eq(n.unit_start), es.exec.eq(n.exec_state), enc_block.eq(es.block),
                     es.req.valid.eq(req.valid), es.req.payload.eq(req.payload), req.ready.eq(es.req.ready),
                     port.valid.eq(es.port.valid), port.payload.eq(es.port.payload), es.port.ready.eq(port.ready),
                     es.rd_en.eq(n.rd_en), es.rd_addr.eq(n.rd_addr), fb.rd_en.eq(es.fb_rd_en),
                     fb.rd_addr.eq(es.fb_rd_addr), es.fb_rd_data.eq(fb.rd_data),
                     es.fg_req.ready.eq(n.fgreq.ready), es.fg_resp.valid.eq(n.fresp.valid),
                     es.fg_resp.payload.eq(n.fresp.payload),
                     *[n.inc[c].eq(es.inc[c]) for c in ENC_COUNTERS]]
        with m.If(es.tables):
            m.d.comb += [n.cls_dram.eq(1), n.fgreq.valid.eq(es.fg_req.valid), n.fgreq.payload.eq(es.fg_req.payload),
                         n.fresp.ready.eq(es.fg_resp.ready)]
        with m.If(es.done):
            m.d.comb += n.unit_done.eq(1)


def _stream_words(rd_data):
    """The first ``STREAM_WORDS`` words of a feature-buffer read (all of it at 16 banks)."""
    return rd_data.as_value()[:STREAM_WORDS * ACT_BITS]


def _fields(dst, src, names: str) -> list:
    """``dst.f.eq(src.f)`` for each field ``f`` of ``names`` (space-separated)."""
    return [getattr(dst, f).eq(getattr(src, f)) for f in names.split()]
