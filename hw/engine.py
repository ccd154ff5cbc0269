"""The edge inference engine: the top that joins its components, and the beat issue, write-back and max unit.

Block diagram (the components' modules in brackets; ``docs/architecture.md`` draws the whole engine)::

    DRAM port [dram_arbiter] <-> [sequencer | dma (LOAD/STORE) | weight_fetcher | weight_stream | table_loader]
                                  |                        |
                                  v                        v
    feature buffer [feature_buffer] -> [window_loader]: segment buffers   weight banks [weight_banks]
           ^                                        |  lane select (12 lanes)              |
           |                                        v                                      v
           +---------- write-back <------ MAC array 12x12 [mac_array] <--- beat = 12 w + 12 a (here)
           +---------- write-back <------ max unit (12 lanes, max-pooling; here)
           +---------- [vector_unit] (ADD, GAP), [dw_unit] (DWCONV, DWPOOL), [encode_unit] (ENCODE)

The engine fetches command descriptors (``hw.descriptor``) from DRAM and executes them in order: the sequencer
(``hw.sequencer``) fetches and decodes each, starts the units on it and waits for them.

Array size (``lanes``, ``golden.arch.EngineArch.lanes``; 12 below and by default): the MAC array is
``lanes x lanes``, a weight group ``lanes`` output channels, a tile ``lanes`` pixels, a DRAM beat ``lanes`` words
(a descriptor ``desc_beats(lanes)`` beats), the segment buffers ``seg_width(lanes)`` words per row. The RTL takes
4..16 lanes (``MAX_RTL_LANES``: the ADD unit, the STORE engine and the write-back use one 16-word buffer access
for a tile); the encode unit and the weight decoders are 12-lane units (``CODEC_LANES``), so an engine of another
lane count is built without them. At 12 lanes the cycles are those of the engine before it took ``lanes``.

CONV: for each group of 12 output channels ``g`` (weights in one weight-buffer bank, the next group
prefetched into the other bank while this one computes), for each tile of up to 12 consecutive output
pixels (``hw.tile_geometry``), for each input channel ``c`` and kernel row ``ky`` (a *step*): the window
loader copies the tile's input row segments from the feature buffer into a free segment buffer (one
16-word read per cycle; two buffers, so loading the next step overlaps computing this one); the compute
side then issues ``k`` beats (``kx = 0..k-1``) to the MAC array, lane ``j`` taking the segment word at
``base[j] + kx`` and the weight row at the running weight index. The beat order (c, ky, kx) is the
order of ``weight.reshape(out, -1)``, so the array sums exactly the im2col dot products of the golden
model. Drained rows (one output channel, 12 pixels: contiguous in CHW) are written back in one cycle.

POOL: the same loader and lanes with one channel per tile, the max unit instead of the array, padding
read as -32768.

ADD and GAP: the vector unit (``hw.vector_unit``) on the feature buffer's ports.

A weight group in DRAM is 3 bias beats (word t of each channel's 48-bit bias) then ``K`` rows of 12
weights. A layer whose ``K`` exceeds the weight-buffer depth streams its rows in chunks through the two
banks (fully-connected layers: one tile per group); that is allowed only with one tile per group. The weight
buffer (``hw.weight_banks``): the two banks of lane memories, their full / filling flags and bias registers;
the weight fetcher (``hw.weight_fetcher``) reads the groups (or chunks) into them in order, each bank as soon as
the compute side (or the depthwise unit) has released it.

Compressed weights (CONV with ``w_codec``): the layer's weights are JPEG-coded in DRAM as twelve lane
streams (``golden.weightcodec``); twelve weight decoders (``hw.jpeg.wdecoder``), one per weight-buffer
lane, sit between the DRAM port and the weight banks, each restoring its lane (output channels 12 g + j)
at up to one weight per cycle: the weight stream (``hw.weight_stream``), joined to the port and the banks
by :meth:`Engine._elaborate_wdecoder`. The banks are twelve 16-bit lane
memories each, so the decoders write their lanes at different rows in the same cycle (the banks' per-lane write
port; the plain fetcher uses their row port).

Encode unit (``hw.encode_unit``, ``ENC_TABLES`` / ``ENCODE``): the second pipeline stage. It encodes a
map from the feature buffer into DRAM in the background while the sequencer goes on; it uses the
feature buffer's read port in cycles nothing else does and takes the DRAM port first for its (rare)
writes. A command with ``enc_sync`` (and ``END``) waits for it.

Performance counters (``hw.perf_counters``; 48 bits, never reset; ``nocount`` commands freeze them, except the ``enc_*``
counters: the encode unit works through verification dumps). Every running cycle is
exactly one of: ``busy`` (a beat entered the MAC array or the max unit), ``stall_dram`` (waiting for
weights, or a LOAD/STORE moving data), ``stall_fetch`` (the window loader is behind: feature-buffer read
bandwidth; the banking itself never conflicts), ``stall_drain`` (the array's output stage is full or
being emptied at the end of a layer), ``stall_control`` (descriptor fetch and decode, setup, waiting for
the encode unit). Beside the classes: ``enc_active`` (encode unit busy), ``enc_overlap`` (busy while the
sequencer executes another command: the two stages overlapping), ``enc_wait`` (the sequencer held for
the unit), ``enc_samples``, ``enc_bits`` (coded bits), ``enc_out_words`` (DRAM words it wrote; not in
``dram_write_words``, which the cost model charges as DRAM traffic: these go to the radio),
``enc_fb_read_words``, ``enc_stall_in`` / ``enc_stall_out`` (starved of buffer reads / waiting for the
DRAM port); ``wdec_active`` (cycles any weight decoder is busy), ``wdec_weights`` (weights restored, all
lanes), ``wdec_bits`` (stream bits decoded, all lanes), ``wdec_stall_in`` / ``wdec_stall_out`` (lane-cycles:
summed over the twelve decoders, cycles each was starved of stream words / held with a weight ready
because its bank is not free yet or it finished its part of the bank before the other lanes).
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.arch import DEFAULT_ARCH, MIN_LANES, EngineArch
from golden.fixedpoint import ACT_BITS, BIAS_BITS

from .descriptor import DRAM_BEAT_WORDS, Op
from .dma import Dma, count_bits
from .dram_arbiter import DramArbiter
from .dw_unit import DwUnit
from .encode_unit import EncodeUnit
from .feature_buffer import FeatureBuffer
from .mac_array import MacArray
from .perf_counters import PerfCounters
from .sequencer import Sequencer
from .table_loader import TableLoader
from .vector_unit import VectorUnit
from .weight_banks import BIAS_BEATS, WeightBanks
from .weight_fetcher import WeightFetcher
from .weight_stream import LANE_TABLE_BASE as LANE_TABLE_BASE  # re-exported: sim.program writes the lane entries
from .weight_stream import WeightStream
from .window_loader import WindowLoader

COUNTERS = (
    "cycles", "busy", "macs", "pool_ops",
    "stall_dram", "stall_fetch", "stall_drain", "stall_control",
    "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words",
    "dram_read_words", "dram_write_words",
    # the encode unit (stage 2 of the pipeline; not cycle classes: it runs beside the sequencer)
    "enc_active", "enc_overlap", "enc_wait", "enc_samples", "enc_bits", "enc_out_words", "enc_fb_read_words",
    "enc_stall_in", "enc_stall_out",
    # the weight decoder (compressed weights, CONV with w_codec)
    "wdec_active", "wdec_weights", "wdec_bits", "wdec_stall_in", "wdec_stall_out",
)
COUNTER_BITS = 48
MAX_RTL_LANES = 16
"""The widest array the RTL takes today: the engine reads ``lanes`` words of the feature buffer in one 16-word
read (16 banks; the ADD unit, the STORE engine, a DRAM beat's write), so 17..24 lanes (``golden.arch`` allows
them) would need two reads there."""
CODEC_LANES = 12
"""The weight decoders and the encode unit are built for 12 lanes (``golden.weightcodec.LANES``): an engine of
another lane count is built without them."""


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


def arch_refusal(arch: EngineArch, *, plain: bool = False, coded: bool = False) -> str | None:
    """Why the RTL cannot build ``arch`` (one line), or None. ``plain``: without the encode unit and the weight
    decoders; ``coded``: the program also encodes or reads coded weights (needs them)."""
    lanes = arch.lanes
    if lanes > MAX_RTL_LANES:
        return (f"array {arch.array} is not built yet: the RTL takes {MIN_LANES}..{MAX_RTL_LANES} lanes today "
                f"(more than 16 lanes need two feature-buffer reads per cycle)")
    if lanes != CODEC_LANES and (coded or (not plain and (arch.encoder or arch.weight_decoders))):
        return (f"array {arch.array}: ENCODE and coded weights need the {CODEC_LANES}-lane encode unit and weight "
                f"decoders; on {arch.array} only plain programs run (no --encode, no coded weights)")
    return None


class Engine(wiring.Component):
    """The engine top. ``fb_words``: feature buffer size in 16-bit words; ``wb_depth``: rows of ``lanes``
    weights per weight-buffer bank (two banks); ``lanes``: the array's rows = columns = words per DRAM beat
    (``golden.arch.EngineArch.lanes``; 4..16 today, the encode unit and the weight decoders at 12 only)."""

    def __init__(self, fb_words: int = DEFAULT_ARCH.fb_words, wb_depth: int = DEFAULT_ARCH.wb_depth,
                 encoder: bool = DEFAULT_ARCH.encoder, weight_decoder: bool = DEFAULT_ARCH.weight_decoders,
                 dw_unit: bool = DEFAULT_ARCH.dw_unit, lanes: int = DEFAULT_ARCH.lanes, colour: bool = False):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not MIN_LANES <= lanes <= MAX_RTL_LANES:
            raise ValueError(f"Engine lanes must be an integer in {MIN_LANES}..{MAX_RTL_LANES}, got {lanes!r}")
        if not isinstance(fb_words, int) or fb_words < 256 or fb_words % 32 or fb_words > 2**24:
            raise ValueError(f"Engine fb_words must be a multiple of 32 in 256..2**24, got {fb_words!r}")
        if not isinstance(wb_depth, int) or not 16 <= wb_depth <= 2**16:
            raise ValueError(f"Engine wb_depth must be in 16..65536, got {wb_depth!r}")
        if not isinstance(encoder, bool):
            raise ValueError(f"Engine encoder must be True or False, got {encoder!r}")
        if not isinstance(weight_decoder, bool):
            raise ValueError(f"Engine weight_decoder must be True or False, got {weight_decoder!r}")
        if not isinstance(dw_unit, bool):
            raise ValueError(f"Engine dw_unit must be True or False, got {dw_unit!r}")
        self.dw_unit = dw_unit
        if lanes != CODEC_LANES and (encoder or weight_decoder):
            raise ValueError(f"Engine: the encode unit and the weight decoders are built for {CODEC_LANES} lanes "
                             f"only, got lanes={lanes} with encoder={encoder}, weight_decoder={weight_decoder}")
        self.lanes = lanes
        self.req_layout = dram_req_layout(lanes)
        self.resp_layout = dram_resp_layout(lanes)
        if weight_decoder and wb_depth % 64:
            raise ValueError(f"Engine wb_depth must be a multiple of 64 with the weight decoder (its blocks "
                             f"fill 64 rows), got {wb_depth!r}")
        self.weight_decoder = weight_decoder
        self.fb_words = fb_words
        self.wb_depth = wb_depth
        self.encoder = encoder
        # colour: the encode unit's colour build (EncodeUnit(colour=True)): ENCODE's enc_mode is its `sampling`
        # (0 map, 1 RGB 4:4:4, 2 RGB 4:2:0), ENC_TABLES writes table addresses fb_addr.. (11-bit table port)
        if not isinstance(colour, bool) or (colour and not encoder):
            raise ValueError(f"Engine colour must be True (with encoder=True) or False, got {colour!r}")
        self.colour = colour
        sig = {
            "start": In(1),
            "cmd_addr": In(32),
            "done": Out(1),
            "running": Out(1),
            "cmd_done": Out(1),
            "cmd_index": Out(16),
            "dram_req": Out(stream.Signature(self.req_layout)),
            "dram_resp": In(stream.Signature(self.resp_layout)),
        }
        sig.update({f"ctr_{n}": Out(COUNTER_BITS) for n in COUNTERS})
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
                   weight_decoder=arch.weight_decoders and not plain, dw_unit=arch.dw_unit, lanes=arch.lanes)

    def elaborate(self, platform):
        m = Module()
        W = self.wb_depth
        L = self.lanes
        DRAM_REQ, DRAM_RESP = self.req_layout, self.resp_layout
        # two halves: the DMA engines (port B) move a band in one half while the compute units (port A) work
        # in the other (hw.feature_buffer)
        m.submodules.fb = fb = FeatureBuffer(self.fb_words, halves=2, write_lanes=L)
        m.submodules.array = array = MacArray(L, L)

        # the sequencer (hw.sequencer): fetches, decodes and dispatches the commands; joined below
        m.submodules.seq = seq = Sequencer(DRAM_REQ, DRAM_RESP)
        d = seq.desc                                 # the command being executed

        # The units below that work for the command being executed (and the descriptor fetch) drive `fgreq` and
        # see the responses to their reads on `fresp`; the two DMA engines (LOAD, STORE) may also run in the
        # background beside them. `req` merges the three (foreground first), the encode unit's writes take the
        # port in cycles they leave it idle; responses are routed by a tag per read (``_elaborate_ports``).
        req = stream.Signature(DRAM_REQ).create(path=("mreq",))
        fgreq = stream.Signature(DRAM_REQ).create(path=("fgreq",))
        fresp = stream.Signature(DRAM_RESP).create(path=("fresp",))
        req_accept = Signal()
        m.d.comb += req_accept.eq(req.valid & req.ready)
        fg_accept = Signal()
        m.d.comb += fg_accept.eq(fgreq.valid & fgreq.ready)
        # feature-buffer reads of the foreground units; the STORE engine, then the encode unit, read in cycles
        # they leave idle
        rd_en_main = Signal()
        rd_addr_main = Signal(fb.addr_bits)
        # feature-buffer writes of the foreground units; the LOAD engine writes in cycles they leave idle
        fgw_en, fgw_addr, fgw_mask = Signal(), Signal(fb.addr_bits), Signal(fb.write_lanes)
        fgw_data = Signal(data.ArrayLayout(signed(ACT_BITS), fb.write_lanes))

        # ---- counters (hw.perf_counters) -------------------------------------------------------
        # the encode unit works through `nocount` commands (verification dumps): its counters run on `running`
        m.submodules.counters = ctrs = PerfCounters(COUNTERS, COUNTER_BITS,
                                                    free=[n for n in COUNTERS if n.startswith("enc_")])
        inc = ctrs.inc   # this cycle's increment of each counter (the class counters: from the classes)
        m.d.comb += [getattr(self, f"ctr_{n}").eq(ctrs.ctr[n]) for n in COUNTERS]
        # cycle classes, one of them per running cycle (see module docstring)
        cls_busy, cls_dram, cls_fetch, cls_drain = ctrs.cls_busy, ctrs.cls_dram, ctrs.cls_fetch, ctrs.cls_drain
        with m.If(req_accept):
            with m.If(req.payload.write):
                m.d.comb += inc["dram_write_words"].eq(req.payload.count)
            with m.Else():
                m.d.comb += inc["dram_read_words"].eq(req.payload.count)
        b_read = Signal()   # the STORE engine reads on port B
        with m.If(rd_en_main | b_read):
            m.d.comb += inc["fb_read_words"].eq(Mux(rd_en_main & b_read, 2 * fb.banks, fb.banks))
        m.d.comb += inc["fb_write_words"].eq(
            Mux(fb.wr_en, sum(fb.wr_mask[t] for t in range(fb.write_lanes)), 0)
            + Mux(fb.b_wr_en & fb.b_wr_ok, sum(fb.b_wr_mask[t] for t in range(fb.write_lanes)), 0))

        # ---- sequencer (hw.sequencer) ----------------------------------------------------------------
        unit_start = seq.unit_start   # one-cycle pulse: initialise the units for the decoded command
        unit_done = seq.unit_done
        exec_state = seq.exec_state
        enc_block = seq.enc_block     # the decoded command waits for the encode unit
        dma_block = seq.dma_block     # the decoded command waits for a DMA engine
        m.d.comb += [seq.start.eq(self.start), seq.cmd_addr.eq(self.cmd_addr), self.running.eq(seq.running),
                     self.done.eq(seq.done), self.cmd_done.eq(seq.cmd_done), self.cmd_index.eq(seq.cmd_index),
                     ctrs.en.eq(seq.count_en), ctrs.en_free.eq(seq.running), inc["enc_wait"].eq(seq.wait_enc)]
        with m.If(seq.wait_dma):
            m.d.comb += cls_dram.eq(1)   # waiting for a transfer (a DMA engine still busy)
        # the descriptor fetch on the foreground streams (the other foreground units use them in EXEC only)
        with m.If(seq.fetching):
            m.d.comb += [fgreq.valid.eq(seq.req.valid), fgreq.payload.eq(seq.req.payload),
                         fresp.ready.eq(seq.resp.ready)]
        m.d.comb += [seq.req.ready.eq(fgreq.ready), seq.resp.valid.eq(fresp.valid),
                     seq.resp.payload.eq(fresp.payload)]

        is_load = exec_state & (d.op == Op.LOAD)
        is_store = exec_state & (d.op == Op.STORE)
        is_conv = exec_state & (d.op == Op.CONV)
        is_pool = exec_state & (d.op == Op.POOL)
        is_dw = exec_state & ((d.op == Op.DWCONV) | (d.op == Op.DWPOOL))
        is_wconv = Signal()     # a command whose weights the weight fetcher streams into the banks
        m.d.comb += is_wconv.eq(is_conv | is_dw)

        # ---- DMA: LOAD (DRAM -> feature buffer) and STORE (feature buffer -> DRAM) engines ------------------
        m.submodules.ld = ld = Dma(DRAM_REQ, store=False, fb_addr_bits=fb.addr_bits, fb_banks=fb.banks, lanes=L)
        m.submodules.st = st = Dma(DRAM_REQ, store=True, fb_addr_bits=fb.addr_bits, fb_banks=fb.banks, lanes=L)
        for eng_, op in ((ld, Op.LOAD), (st, Op.STORE)):
            m.d.comb += [eng_.start.eq(unit_start & (d.op == op)), eng_.p.dram_addr.eq(d.dram_addr),
                         eng_.p.fb_addr.eq(d.fb_addr), eng_.p.rows.eq(d.rows), eng_.p.row_len.eq(d.row_len),
                         eng_.p.dram_stride.eq(d.dram_stride), eng_.p.fb_stride.eq(d.fb_stride)]
        # a foreground LOAD / STORE ends with its transfer; a background one (`bg`) as soon as it is handed over
        with m.If(is_load):
            m.d.comb += cls_dram.eq(~d.bg)
            with m.If(d.bg | ld.done):
                m.d.comb += unit_done.eq(1)
        with m.If(is_store):
            m.d.comb += cls_dram.eq(~d.bg)
            with m.If(d.bg | st.done):
                m.d.comb += unit_done.eq(1)
        # a command waits while the engine it needs, or one it names (wait_ld / wait_st), is busy; END waits for both
        m.d.comb += dma_block.eq(((d.op == Op.LOAD) & ld.busy) | ((d.op == Op.STORE) & st.busy)
                                 | (d.wait_ld & ld.busy) | (d.wait_st & st.busy)
                                 | ((d.op == Op.END) & (ld.busy | st.busy)))
        self._elaborate_ports(m, req=req, fgreq=fgreq, fresp=fresp, ld=ld, st=st, fb=fb, inc=inc,
                              fgw=(fgw_en, fgw_addr, fgw_mask, fgw_data))
        # the STORE engine reads on the buffer's port B, granted when it wants no memory port A uses
        m.d.comb += [fb.b_rd_en.eq(st.rd_req), fb.b_rd_addr.eq(st.rd_addr), st.rd_grant.eq(fb.b_rd_ok),
                     st.rd_data.eq(fb.b_rd_data), b_read.eq(st.rd_req & fb.b_rd_ok)]

        # ---- CONV / POOL -----------------------------------------------------------------------------
        conv_or_pool = Signal()
        m.d.comb += conv_or_pool.eq(is_conv | is_pool)
        pool_mode = d.op == Op.POOL
        groups = Signal(16)          # conv: ceil(out_c / 12); pool: channels
        with m.If(unit_start):
            m.d.sync += groups.eq(Mux(pool_mode, d.out_c, (d.out_c + L - 1) // L))

        # -- window loader (hw.window_loader): iterates (g, tile, c, ky) and fills the segment buffers -----
        m.submodules.loader = wl = WindowLoader(fb.addr_bits, lanes=L)
        m.d.comb += [wl.start.eq(unit_start), wl.run.eq(conv_or_pool), wl.p.pool.eq(pool_mode),
                     wl.rd_data.eq(fb.rd_data)]
        m.d.comb += [getattr(wl.p, f).eq(getattr(d, f)) for f in ("out_c", "in_c", "k", "stride", "pad", "out_h",
                                                                  "out_w", "out_y0", "in_y0", "in_h_total",
                                                                  "in_addr", "in_ch_stride", "in_w")]
        with m.If(wl.rd_en):
            m.d.comb += [rd_en_main.eq(1), rd_addr_main.eq(wl.rd_addr)]

        # -- weight fetcher (CONV): linear read of the layer's weight groups into the two banks -----
        # The banks (hw.weight_banks): 2 x lanes lane memories with their flags and bias registers; the plain
        # fetcher (hw.weight_fetcher) writes whole rows, the weight decoders each lane at its own address; the
        # compute side and the depthwise unit read all lanes of their bank at one address.
        m.submodules.wbuf = wb = WeightBanks(L, W)
        m.submodules.wfetch = wf = WeightFetcher(DRAM_REQ, DRAM_RESP, W)
        k_rows = Signal(24)   # rows per group: in_c * k * k (DWCONV: k * k, one tap per row)
        with m.If(unit_start):
            m.d.sync += k_rows.eq(Mux(d.op == Op.DWCONV, d.k * d.k, d.in_c * d.k * d.k))
        # compressed layers with w_raw0 fetch their first group raw through the plain fetcher (so the array does
        # not wait for the decoder to restore a whole group before the layer starts); then the weight stream takes
        # over (the fetcher's req_done / raw0_rsp_done say when)
        m.d.comb += [wf.start.eq(unit_start), wf.run.eq(is_wconv),
                     wf.p.fetch.eq((d.op == Op.CONV) | (d.op == Op.DWCONV)), wf.p.w_codec.eq(d.w_codec),
                     wf.p.w_raw0.eq(d.w_raw0), wf.p.w_addr.eq(d.w_addr), wf.p.groups.eq(groups),
                     wf.p.k_rows.eq(k_rows), wf.bank_full.eq(wb.full), wf.bank_filling.eq(wb.filling),
                     wf.req.ready.eq(fgreq.ready), wf.resp.valid.eq(fresp.valid),
                     wf.resp.payload.eq(fresp.payload)]
        with m.If(wf.req.valid):
            m.d.comb += [fgreq.valid.eq(1), fgreq.payload.eq(wf.req.payload)]
        with m.If(wf.resp.ready):
            m.d.comb += fresp.ready.eq(1)
        m.d.comb += [wb.clear.eq(unit_start), wb.fill_set.eq(wf.fill_set), wb.set_full.eq(wf.set_full),
                     wb.row_we.eq(wf.row_we), wb.row_bias_we.eq(wf.row_bias_we), wb.row_bank.eq(wf.row_bank),
                     wb.row_addr.eq(wf.row_addr), wb.row_data.eq(wf.row_data), wb.row_bias_word.eq(wf.row_bias_word)]
        with m.If(wf.row_we):
            m.d.comb += inc["wb_write_words"].eq(L)
        # compressed weights (CONV with w_codec): DRAM -> weight decoder -> the same banks
        self._elaborate_wdecoder(m, d, fgreq, fresp, inc=inc, is_conv=is_conv, unit_start=unit_start, wb=wb,
                                 groups=groups, k_rows=k_rows, raw0_req_done=wf.req_done,
                                 raw0_rsp_done=wf.raw0_rsp_done)

        # -- compute: consumes segment records, issues beats ---------------------------------------------
        c_kx = Signal(4)
        c_row = Signal(24)         # weight row within the current chunk
        c_bank = Signal()          # weight bank in use
        g_bias = Signal(data.ArrayLayout(signed(BIAS_BEATS * 16), L))
        with m.If(unit_start):
            m.d.sync += [c_kx.eq(0), c_row.eq(0), c_bank.eq(0)]
        cur = wl.rec               # the step being consumed (the loader's segment buffer in use)
        rec_ready = wl.rec_ready
        w_ready = pool_mode | wb.full.bit_select(c_bank, 1)

        # pipeline stage B: the beat presented to the array / max unit
        b_valid = Signal()
        b_a = Signal(data.ArrayLayout(signed(ACT_BITS), L))
        b_last, b_first, b_n, b_rows, b_g, b_p0 = (Signal(), Signal(), Signal(range(L + 1)),
                                                   Signal(range(L + 1)), Signal(16), Signal(32))
        b_take = Signal()  # stage B is consumed this cycle
        a_go = Signal()    # stage A issues a beat this cycle
        m.d.comb += a_go.eq(conv_or_pool & ~unit_start & rec_ready & w_ready & (~b_valid | b_take))

        # lane select: word base[j] + kx of the current segment buffer (lanes beyond n read zero)
        m.d.comb += wl.kx.eq(c_kx)
        dw = self._elaborate_dw(m, d, fb, fgw=(fgw_en, fgw_addr, fgw_mask, fgw_data), inc=inc, is_dw=is_dw,
                                unit_start=unit_start, unit_done=unit_done,
                                wb=wb, c_bank=c_bank,
                                cls=(cls_busy, cls_dram, cls_fetch), rd_en_main=rd_en_main, rd_addr_main=rd_addr_main)
        m.d.comb += [wb.rd_addr.eq(Mux(is_dw, dw.w_addr, c_row)), wb.rd_bank.eq(c_bank),
                     wb.rd_en.eq(Mux(is_dw, dw.w_en, a_go & ~pool_mode))]
        with m.If(a_go & ~pool_mode):
            m.d.comb += inc["wb_read_words"].eq(L)

        step_last_beat = c_kx == d.k - 1
        with m.If(a_go):
            m.d.sync += [
                b_valid.eq(1),
                b_first.eq(cur.first_step & (c_kx == 0)),
                b_last.eq(cur.last_step & step_last_beat),
                b_n.eq(cur.n), b_rows.eq(cur.rows_valid), b_g.eq(cur.g), b_p0.eq(cur.p0),
            ]
            for j in range(L):
                m.d.sync += b_a[j].eq(wl.lane[j])
            with m.If(cur.first_step & cur.first_tile & (c_kx == 0) & ~pool_mode):
                m.d.sync += g_bias.eq(Mux(c_bank, wb.bias[1].as_value(), wb.bias[0].as_value()))
            # weights: next row; chunk switch for layers deeper than a bank
            with m.If(~pool_mode):
                last_row_of_tile = cur.last_step & step_last_beat
                with m.If(last_row_of_tile):
                    m.d.sync += c_row.eq(0)
                    with m.If(cur.last_tile | (k_rows > W)):
                        m.d.comb += wb.release.eq(Mux(c_bank, 0b10, 0b01))
                        m.d.sync += c_bank.eq(~c_bank)
                with m.Elif(c_row == W - 1):
                    m.d.comb += wb.release.eq(Mux(c_bank, 0b10, 0b01))
                    m.d.sync += [c_row.eq(0), c_bank.eq(~c_bank)]
                with m.Else():
                    m.d.sync += c_row.eq(c_row + 1)
            with m.If(step_last_beat):
                m.d.sync += c_kx.eq(0)
                m.d.comb += wl.consume.eq(1)
            with m.Else():
                m.d.sync += c_kx.eq(c_kx + 1)
        with m.Elif(b_take):
            m.d.sync += b_valid.eq(0)
        with m.If(unit_start):
            m.d.sync += b_valid.eq(0)

        # MAC array input
        w_data = Signal(data.ArrayLayout(signed(16), L))
        c_bank_d = Signal()  # the bank the weight row in stage B was read from
        m.d.comb += w_data.eq(Mux(c_bank_d, wb.rd_data[1].as_value(), wb.rd_data[0].as_value()))
        with m.If(a_go):
            m.d.sync += c_bank_d.eq(c_bank)
        m.d.comb += [
            array.inp.valid.eq(b_valid & ~pool_mode & is_conv),
            array.inp.payload.w.eq(w_data),
            array.inp.payload.a.eq(b_a),
            array.inp.payload.last.eq(b_last),
            array.shift.eq(d.shift),
            array.relu.eq(d.relu),
            array.clamp_en.eq(d.clamp_en),
            array.clamp.eq(d.clamp),
        ]
        for j in range(L):
            m.d.comb += array.bias[j].eq(g_bias[j][:BIAS_BITS])
        with m.If(is_conv):
            m.d.comb += b_take.eq(b_valid & array.inp.ready)
        with m.If(is_pool):
            m.d.comb += b_take.eq(b_valid)
        with m.If(array.inp.valid & array.inp.ready):
            m.d.comb += inc["macs"].eq(b_n * b_rows)

        # tile info for the write-back of drained rows: pushed with the last beat
        info_layout = data.StructLayout({"g": 16, "p0": 32, "n": range(L + 1)})
        m.submodules.info = info = SyncFIFOBuffered(width=info_layout.size, depth=4)
        info_w = data.View(info_layout, info.w_data)
        info_r = data.View(info_layout, info.r_data)
        m.d.comb += [
            info.w_en.eq(array.inp.valid & array.inp.ready & b_last),
            info_w.g.eq(b_g), info_w.p0.eq(b_p0), info_w.n.eq(b_n),
        ]
        m.d.comb += array.out.ready.eq(1)
        with m.If(array.out.valid & is_conv):
            chan = info_r.g * L + array.out.payload.row
            m.d.comb += [
                fgw_en.eq(chan < d.out_c),
                fgw_addr.eq(d.out_addr + chan * d.out_ch_stride + info_r.p0),
                fgw_mask.eq((Const(1, L + 1) << info_r.n) - 1),
            ]
            m.d.comb += [fgw_data[j].eq(array.out.payload.data[j]) for j in range(L)]
            with m.If(array.out.payload.row == L - 1):
                m.d.comb += info.r_en.eq(1)

        # max unit (POOL)
        mx = Signal(data.ArrayLayout(signed(ACT_BITS), L))
        new_mx = Signal(data.ArrayLayout(signed(ACT_BITS), L))
        for j in range(L):
            m.d.comb += new_mx[j].eq(Mux(b_first | (b_a[j] > mx[j]), b_a[j], mx[j]))
        with m.If(is_pool & b_take):
            m.d.sync += mx.eq(new_mx)
            m.d.comb += inc["pool_ops"].eq(b_n)
            with m.If(b_last):
                m.d.comb += [
                    fgw_en.eq(1),
                    fgw_addr.eq(d.out_addr + b_g * d.out_ch_stride + b_p0),
                    fgw_mask.eq((Const(1, L + 1) << b_n) - 1),
                ]
                m.d.comb += [fgw_data[j].eq(new_mx[j]) for j in range(L)]

        # ---- vector unit: ADD and GAP (hw.vector_unit) --------------------------------------------------------
        is_vec = exec_state & ((d.op == Op.ADD) | (d.op == Op.GAP))
        m.submodules.vector = vu = VectorUnit(fb.addr_bits, lanes=L)
        m.d.comb += [vu.start.eq(unit_start), vu.run.eq(is_vec), vu.p.gap.eq(d.op == Op.GAP), vu.rd_data.eq(fb.rd_data)]
        m.d.comb += [getattr(vu.p, f).eq(getattr(d, f)) for f in ("in_addr", "in2_addr", "in_ch_stride", "in_c",
                                                                  "row_len", "out_addr", "wa", "wb", "shift",
                                                                  "relu", "clamp_en", "clamp")]
        with m.If(is_vec & ~unit_start):
            m.d.comb += [cls_busy.eq(1), rd_en_main.eq(vu.rd_en), rd_addr_main.eq(vu.rd_addr),
                         fgw_en.eq(vu.wr_en), fgw_addr.eq(vu.wr_addr), fgw_mask.eq(vu.wr_mask),
                         inc["macs"].eq(vu.macs), unit_done.eq(vu.done)]
            m.d.comb += [fgw_data[t].eq(vu.wr_data[t]) for t in range(L)]

        # ---- encode unit (stage 2: encode + transmit) -----------------------------------------------------
        self._elaborate_encoder(m, d, fb, req, fgreq, fresp, port=self.dram_req, inc=inc, exec_state=exec_state,
                                unit_start=unit_start, unit_done=unit_done, enc_block=enc_block,
                                cls_dram=cls_dram, rd_en_main=rd_en_main, rd_addr_main=rd_addr_main)

        # cycle classes and completion of CONV / POOL
        with m.If(conv_or_pool):
            m.d.comb += [
                cls_busy.eq(b_take),
                cls_dram.eq(rec_ready & ~w_ready),
                cls_fetch.eq(~rec_ready & ~wl.done),
                cls_drain.eq(b_valid | wl.done),
            ]
            finished = ~unit_start & wl.done & wl.empty & ~b_valid & ~array.busy & ~info.r_rdy
            with m.If(finished):
                m.d.comb += unit_done.eq(1)
        return m

    def _elaborate_ports(self, m, *, req, fgreq, fresp, ld, st, fb, inc, fgw):
        """The DRAM port and the feature buffer's write port, shared by the foreground units and the two DMA
        engines.

        Requests: the arbiter (``hw.dram_arbiter``): the foreground first (the command being executed, the
        descriptor fetch), then the LOAD engine, then the STORE engine; a tag per read routes the responses.
        The buffer: the foreground writes on port A, the LOAD engine on port B (its
        response waits while port B is refused)."""
        fgw_en, fgw_addr, fgw_mask, fgw_data = fgw
        resp = self.dram_resp
        m.submodules.arbiter = arb = DramArbiter(self.req_layout, self.resp_layout)
        m.d.comb += [
            arb.fg_req.valid.eq(fgreq.valid), arb.fg_req.payload.eq(fgreq.payload), fgreq.ready.eq(arb.fg_req.ready),
            arb.ld_req.valid.eq(ld.req.valid), arb.ld_req.payload.eq(ld.req.payload), ld.req.ready.eq(arb.ld_req.ready),
            arb.st_req.valid.eq(st.req.valid), arb.st_req.payload.eq(st.req.payload), st.req.ready.eq(arb.st_req.ready),
            req.valid.eq(arb.req.valid), req.payload.eq(arb.req.payload), arb.req.ready.eq(req.ready),
            arb.resp.valid.eq(resp.valid), arb.resp.payload.eq(resp.payload), resp.ready.eq(arb.resp.ready),
            fresp.valid.eq(arb.fg_resp.valid), fresp.payload.eq(arb.fg_resp.payload),
            arb.fg_resp.ready.eq(fresp.ready),
            ld.rsp_valid.eq(arb.ld_resp.valid), ld.rsp_data.eq(arb.ld_resp.payload.rdata),
            arb.ld_resp.ready.eq(ld.rsp_ready),
        ]
        # the feature buffer's write ports: A for the foreground units, B for the LOAD engine (granted when it
        # wants no memory port A uses)
        m.d.comb += [fb.wr_en.eq(fgw_en), fb.wr_addr.eq(fgw_addr), fb.wr_mask.eq(fgw_mask),
                     fb.b_wr_en.eq(ld.wr_en), fb.b_wr_addr.eq(ld.wr_addr), fb.b_wr_mask.eq(ld.wr_mask),
                     ld.wr_grant.eq(fb.b_wr_ok)]
        m.d.comb += [fb.wr_data[t].eq(fgw_data[t]) for t in range(fb.write_lanes)]
        m.d.comb += [fb.b_wr_data[t].eq(ld.wr_data[t]) for t in range(fb.write_lanes)]

    def _elaborate_dw(self, m, d, fb, *, fgw, inc, is_dw, unit_start, unit_done, wb, c_bank, cls, rd_en_main,
                      rd_addr_main):
        """The depthwise unit (``hw.dw_unit``, DWCONV and DWPOOL): it takes the weight bank of each group of 12 channels
        from the weight fetcher (9 rows, then releases it), the feature buffer's read and write ports while it
        runs. Cycle classes: busy = an output row issued, DRAM = waiting for a weight bank, fetch = the rest
        (input rows loading, channel and group changes, the pipeline draining)."""
        if not self.dw_unit:
            with m.If(is_dw):
                m.d.comb += unit_done.eq(1)
            return None
        L = self.lanes
        m.submodules.dw = dw = DwUnit(fb.addr_bits, lanes=L)
        cls_busy, cls_dram, cls_fetch = cls
        fgw_en, fgw_addr, fgw_mask, fgw_data = fgw
        m.d.comb += [
            dw.start.eq(unit_start & ((d.op == Op.DWCONV) | (d.op == Op.DWPOOL))),
            dw.p.maxpool.eq(d.op == Op.DWPOOL),
            dw.p.in_addr.eq(d.in_addr), dw.p.in_ch_stride.eq(d.in_ch_stride), dw.p.in_w.eq(d.in_w),
            dw.p.in_y0.eq(d.in_y0), dw.p.in_h_total.eq(d.in_h_total), dw.p.out_addr.eq(d.out_addr),
            dw.p.out_ch_stride.eq(d.out_ch_stride), dw.p.out_w.eq(d.out_w), dw.p.out_h.eq(d.out_h),
            dw.p.out_y0.eq(d.out_y0), dw.p.channels.eq(d.in_c), dw.p.stride2.eq(d.stride == 2),
            dw.p.pad.eq(d.pad != 0), dw.p.shift.eq(d.shift), dw.p.relu.eq(d.relu), dw.p.clamp_en.eq(d.clamp_en),
            dw.p.clamp.eq(d.clamp),
            dw.grp_ready.eq(wb.full.bit_select(c_bank, 1)),
            dw.w_data.eq(Mux(c_bank, wb.rd_data[1].as_value(), wb.rd_data[0].as_value())),
            dw.rd_data.eq(fb.rd_data),
        ]
        # (the banks hold 48-bit bias words, as fetched; the unit takes BIAS_BITS)
        m.d.comb += [dw.bias[j].eq(Mux(c_bank, wb.bias[1][j], wb.bias[0][j])[:BIAS_BITS]) for j in range(L)]
        with m.If(is_dw):
            m.d.comb += [rd_en_main.eq(dw.rd_en), rd_addr_main.eq(dw.rd_addr),
                         fgw_en.eq(dw.wr_en), fgw_addr.eq(dw.wr_addr), fgw_mask.eq(dw.wr_mask),
                         inc["macs"].eq(Mux(dw.p.maxpool, 0, dw.macs)),
                         inc["pool_ops"].eq(Mux(dw.p.maxpool, dw.macs, 0)),
                         inc["wb_read_words"].eq(Mux(dw.w_en, L, 0)),
                         cls_busy.eq(dw.beat), cls_dram.eq(dw.wait_w), cls_fetch.eq(~dw.beat & ~dw.wait_w)]
            m.d.comb += [fgw_data[j].eq(dw.wr_data[j]) for j in range(L)]
            with m.If(dw.grp_release):
                m.d.comb += wb.release.eq(Mux(c_bank, 0b10, 0b01))
                m.d.sync += c_bank.eq(~c_bank)
            with m.If(dw.done):
                m.d.comb += unit_done.eq(1)
        return dw

    def _elaborate_wdecoder(self, m, d, req, resp, *, inc, is_conv, unit_start, wb, groups, k_rows, raw0_req_done,
                            raw0_rsp_done):
        """The compressed-weight path (``hw.weight_stream``: twelve weight decoders, one per lane) joined to the
        DRAM port (after the plain fetcher: it takes the port once the raw first group is requested), the
        weight banks (``wb``, ``hw.weight_banks``: their lane-side write port and bias words, their flags), and
        the counters."""
        if not self.weight_decoder:
            return
        # (named wdec: its decoders are engine.wdec.wdec<j>, the area breakdown's weight-decoder part)
        m.submodules.wdec = ws = WeightStream(self.req_layout, self.resp_layout, self.wb_depth)
        m.d.comb += [ws.start.eq(unit_start), ws.run.eq(is_conv & d.w_codec),
                     ws.p.coded.eq((d.op == Op.CONV) & d.w_codec), ws.p.w_raw0.eq(d.w_raw0),
                     ws.p.w_addr.eq(d.w_addr), ws.p.rows.eq(d.rows), ws.p.dram_addr.eq(d.dram_addr),
                     ws.p.row_len.eq(d.row_len), ws.p.k_rows.eq(k_rows), ws.p.groups.eq(groups),
                     ws.raw0_req_done.eq(raw0_req_done), ws.raw0_rsp_done.eq(raw0_rsp_done),
                     ws.bank_full.eq(wb.full), ws.bank_filling.eq(wb.filling)]
        # the DRAM port: the unit's requests and responses never overlap the plain fetcher's
        with m.If(ws.req.valid):
            m.d.comb += [req.valid.eq(1), req.payload.eq(ws.req.payload)]
        m.d.comb += [ws.req.ready.eq(req.ready), ws.resp.valid.eq(resp.valid), ws.resp.payload.eq(resp.payload)]
        with m.If(ws.resp.ready):
            m.d.comb += resp.ready.eq(1)
        # the banks: flags (over the plain fetcher's), bias words, one write per lane
        with m.If(ws.fill_set != 0):
            m.d.comb += wb.fill_set.eq(ws.fill_set)
        with m.If(ws.set_full != 0):
            m.d.comb += wb.set_full.eq(ws.set_full)
        m.d.comb += [wb.lane_bias_we.eq(ws.bias_we), wb.lane_bias_bank.eq(ws.bias_bank),
                     wb.lane_bias_word.eq(ws.bias_word), wb.lane_bias_data.eq(ws.bias_data),
                     wb.lane_we.eq(ws.wr_en), wb.lane_bank.eq(ws.wr_bank), wb.lane_addr.eq(ws.wr_addr),
                     wb.lane_data.eq(ws.wr_data)]
        # counters: summed over the lanes (weights, bits, and lane-cycles starved / held)
        with m.If(ws.weights != 0):    # (the plain path writes rows at other times)
            m.d.comb += inc["wb_write_words"].eq(ws.weights)
        m.d.comb += [inc["wdec_active"].eq(ws.active), inc["wdec_weights"].eq(ws.weights),
                     inc["wdec_bits"].eq(ws.bits), inc["wdec_stall_in"].eq(ws.stall_in),
                     inc["wdec_stall_out"].eq(ws.stall_out)]

    def _elaborate_encoder(self, m, d, fb, req, fgreq, fresp, *, port, inc, exec_state, unit_start, unit_done,
                           enc_block, cls_dram, rd_en_main, rd_addr_main):
        """The encode unit, its table loader (ENC_TABLES), the ENCODE hand-over and the port sharing."""
        if not self.encoder:
            # no encode unit: the units own both ports; ENC_TABLES / ENCODE finish at once
            m.d.comb += [port.valid.eq(req.valid), port.payload.eq(req.payload), req.ready.eq(port.ready),
                         fb.rd_en.eq(rd_en_main), fb.rd_addr.eq(rd_addr_main)]
            with m.If(exec_state & ((d.op == Op.ENC_TABLES) | (d.op == Op.ENCODE))):
                m.d.comb += unit_done.eq(1)
            return
        m.submodules.encode = unit = EncodeUnit(fb.addr_bits, fb.banks, colour=self.colour)

        # port sharing: the unit's writes go first. They are rare (12 words per 24 coded bytes, a few per
        # thousand cycles) and cost the engine one cycle of back-pressure each, which every unit above
        # already handles (the DRAM refuses requests too); the other way round, a weight stream that
        # holds the port for thousands of cycles would stall the encoder.
        enc_req = Signal(self.req_layout)
        m.d.comb += [enc_req.addr.eq(unit.wr.payload.addr), enc_req.write.eq(1),
                     enc_req.count.eq(unit.wr.payload.count), enc_req.wdata.eq(unit.wr.payload.wdata)]
        m.d.comb += [port.valid.eq(req.valid | unit.wr.valid),
                     port.payload.eq(Mux(unit.wr.valid, enc_req.as_value(), req.payload.as_value())),
                     req.ready.eq(port.ready & ~unit.wr.valid),
                     unit.wr.ready.eq(port.ready)]
        with m.If(unit.wr.valid & unit.wr.ready):
            m.d.comb += inc["enc_out_words"].eq(unit.wr.payload.count)
        # feature-buffer reads: every unit above uses its read data the cycle after the read, so the
        # encode unit can take any cycle they leave idle
        grant = Signal()
        m.d.comb += [grant.eq(unit.rd_req & ~rd_en_main),
                     fb.rd_en.eq(rd_en_main | grant),
                     fb.rd_addr.eq(Mux(rd_en_main, rd_addr_main, unit.rd_addr)),
                     unit.rd_grant.eq(grant), unit.rd_data.eq(fb.rd_data)]
        with m.If(grant):
            m.d.comb += inc["enc_fb_read_words"].eq(fb.banks)

        # when a command must wait: END and ENC_TABLES for an idle unit, ENCODE for the previous part
        # to be read (a new image: for the previous one to be written), enc_sync for the reads to end
        is_encode_op = (d.op == Op.ENCODE) | (d.op == Op.ENC_TABLES)
        m.d.comb += enc_block.eq(
            (d.enc_sync & unit.reading)
            | (((d.op == Op.END) | (d.op == Op.ENC_TABLES)) & unit.busy)
            | ((d.op == Op.ENCODE) & Mux(d.enc_first, unit.busy, unit.reading)))

        # ENCODE: hand the map over and finish; the unit goes on in the background
        m.d.comb += [
            unit.start.eq(unit_start & (d.op == Op.ENCODE)),
            unit.params.in_addr.eq(d.in_addr), unit.params.ch_stride.eq(d.in_ch_stride),
            unit.params.channels.eq(d.in_c), unit.params.h.eq(d.in_h), unit.params.w.eq(d.in_w),
            unit.params.grid_cols.eq(d.grid_cols), unit.params.grid_rows.eq(d.grid_rows),
            unit.params.yb0.eq(d.enc_yb0), unit.params.ybn.eq(d.enc_ybn), unit.params.y_base.eq(d.in_y0),
            unit.params.shift.eq(d.shift), unit.params.offset.eq(d.enc_offset),
            unit.params.first.eq(d.enc_first), unit.params.last.eq(d.enc_last),
            unit.params.out_addr.eq(d.dram_addr),
        ]
        if self.colour:
            m.d.comb += unit.params.sampling.eq(d.enc_mode)
        with m.If(exec_state & (d.op == Op.ENCODE)):
            m.d.comb += unit_done.eq(1)

        # ENC_TABLES: the table loader (hw.table_loader) reads `rows` two-word entries into the unit's table port
        lossless, signed_ = Signal(), Signal()
        m.d.comb += [unit.lossless.eq(lossless), unit.lossless_signed.eq(signed_)]
        m.submodules.enc_tables = tl = TableLoader(self.req_layout, self.resp_layout)
        is_tables = exec_state & (d.op == Op.ENC_TABLES)
        with m.If(unit_start & (d.op == Op.ENC_TABLES)):
            m.d.sync += [lossless.eq(d.enc_mode[0]), signed_.eq(d.enc_mode[1])]
        m.d.comb += [tl.start.eq(unit_start & (d.op == Op.ENC_TABLES)), tl.run.eq(is_tables),
                     tl.p.dram_addr.eq(d.dram_addr), tl.p.rows.eq(d.rows),
                     tl.req.ready.eq(fgreq.ready), tl.resp.valid.eq(fresp.valid), tl.resp.payload.eq(fresp.payload),
                     unit.tbl_we.eq(tl.tbl_we),
                     # the colour build's tables sit at 0 (luminance) and 1024 (chrominance): a base per command
                     unit.tbl_addr.eq(tl.tbl_addr + d.fb_addr if self.colour else tl.tbl_addr),
                     unit.tbl_data.eq(tl.tbl_data)]
        with m.If(is_tables):
            m.d.comb += [cls_dram.eq(1), fgreq.valid.eq(tl.req.valid), fgreq.payload.eq(tl.req.payload),
                         fresp.ready.eq(tl.resp.ready), unit_done.eq(tl.done)]

        # counters of stage 2
        m.d.comb += [
            inc["enc_active"].eq(unit.busy),
            inc["enc_overlap"].eq(unit.busy & exec_state & ~is_encode_op),
            inc["enc_samples"].eq(unit.inc_samples),
            inc["enc_bits"].eq(unit.inc_bits),
            inc["enc_stall_in"].eq(unit.stall_in),
            inc["enc_stall_out"].eq(unit.stall_out),
        ]
