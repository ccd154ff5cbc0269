"""The coded-weight stream: twelve weight decoders (``hw.jpeg.wdecoder``), one per weight-buffer lane, between the
DRAM port and the weight banks (CONV with ``w_codec``).

The layer's weights are JPEG-coded in DRAM as twelve lane streams (``golden.weightcodec``); decoder ``j``
restores its lane (output channels 12 g + j) at up to one weight per cycle. The banks are twelve 16-bit lane
memories each, so the decoders write their lanes at different rows in the same cycle (the banks' per-lane write
port; the plain fetcher uses their row port). The engine joins the unit to the DRAM port and the banks
(``Engine._elaborate_wdecoder``).

DRAM image of a layer (``sim.program.compressed_weight_image``): at ``w_addr`` (with ``w_raw0``) the first
group as plain weights (3 bias beats, K rows: fetched by the engine's plain weight fetcher, which says when its
requests and its responses are done: ``raw0_req_done``, ``raw0_rsp_done``), then the table writes (``rows``
entries of three words: address, data low, data high; four per beat), then 3 bias beats per coded group.
Table addresses below ``LANE_TABLE_BASE`` go to every decoder (the same Huffman, Q, ``p`` and
``group_blocks`` for all lanes); ``LANE_TABLE_BASE + j`` gives lane ``j``'s stream start (in 12-word beats
after ``dram_addr``) and ``LANE_TABLE_BASE + 16 + j`` its length in words. Lane ``j``'s stream
(``golden.weightcodec``: blocks ``(g, kb, j)`` in order (g, kb)) has ``row_len`` blocks.

Three phases overlap: (1) at the start the tables go into the decoders and the lane registers; (2) the unit
requests each group's bias beats (at most two groups ahead, first) and stream beats for the lanes whose FIFO
has room (round robin); responses come back in order and a tag FIFO says whose each is; (3) each decoder
writes its lane of the bank being filled: block ``(g, kb)`` of lane ``j`` is rows 64 kb .. 64 kb + 63, so a
bank is full when all twelve lanes have written the group's (or the chunk's: the bank depth is a multiple of
64) block rows. A lane that finishes first waits for the others (its decoder holds its output), so the lanes
stay within one bank of each other and one bank of bias registers serves them all.

Why twelve: one decoder restores at most one weight per cycle; a fully-connected layer (one tile per group,
every weight used once) needs 7.4-7.7 weights per cycle to keep the array busy.

The banks themselves and their full / filling flags stay with the engine (the plain fetcher, the compute
side and the depthwise unit share them): this unit reserves a bank (``fill_set``), writes its lanes and its
bias registers, and marks it full (``set_full``).

Ports (12 lanes: ``CODEC_LANES``)
---------------------------------
start : In(1)             one-cycle pulse: a command begins (``p`` valid from now on; ``k_rows``, ``groups``
                          from the next cycle); with ``p.coded`` it also clears the decoders
run : In(1)               a coded CONV is executing (held until the command ends)
p : In(PARAMS)            ``coded`` (the command is a coded CONV), the descriptor's ``w_raw0``, ``w_addr``,
                          ``rows`` (table entries), ``dram_addr`` (stream base), ``row_len`` (blocks per lane),
                          and the layer's ``k_rows`` (weight rows per group) and ``groups``
raw0_req_done, raw0_rsp_done : In(1)   the plain fetcher has requested / received the raw first group
req : Out(stream)         DRAM read requests (``req_layout``; ``count`` = 12)
resp : In(stream)         their responses, in order (``resp_layout``)
bank_full, bank_filling : In(2)   the engine's flags of the two banks
fill_set : Out(2)         reserve this bank for filling (one cycle)
set_full : Out(2)         this bank is full (one cycle)
bias_we, bias_bank, bias_word, bias_data : Out   write 16-bit word ``bias_word`` (0..2) of the 12 biases of
                          bank ``bias_bank``
wr_en : Out(12)           lane ``j`` writes ``wr_data[j]`` at row ``wr_addr[j]`` of bank ``wr_bank``
wr_bank, wr_addr, wr_data : Out
weights, bits, stall_in, stall_out : Out   this cycle, summed over the lanes: weights written, stream bits
                          decoded, decoders starved of stream words, decoders holding a weight (their bank is
                          not free yet, or they finished their part of it before the other lanes)
active : Out(1)           any decoder is busy
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .jpeg.wdecoder import WeightDecoder
from .weight_banks import BIAS_BEATS

LANES = 12               # one decoder per weight-buffer lane (golden.weightcodec.LANES)
DRAM_BEAT_WORDS = 12     # words per DRAM beat of a 12-lane engine
LANE_TABLE_BASE = 0x300
"""Weight-decoder table entries at 0x300 + j (lane j's stream start, in beats after ``dram_addr``) and
0x310 + j (its length in words) set the unit's lane registers instead of the decoders' tables."""

PARAMS = data.StructLayout({
    "coded": 1, "w_raw0": 1, "w_addr": 30, "rows": 16, "dram_addr": 30, "row_len": 24,
    "k_rows": 24, "groups": 16,
})


class WeightStream(wiring.Component):
    """The coded-weight path of a 12-lane engine (module docstring). ``req_layout``, ``resp_layout``: the
    engine's DRAM request and response layouts (``hw.engine.dram_req_layout(12)``); ``wb_depth``: rows per
    weight-bank lane (a multiple of 64: a decoded block fills 64 rows)."""

    def __init__(self, req_layout, resp_layout, wb_depth: int):
        if not isinstance(wb_depth, int) or isinstance(wb_depth, bool) or not 64 <= wb_depth <= 2**16 \
                or wb_depth % 64:
            raise ValueError(f"WeightStream wb_depth must be a multiple of 64 in 64..65536, got {wb_depth!r}")
        for name, lay, field in (("req_layout", req_layout, "addr"), ("resp_layout", resp_layout, "rdata")):
            if not isinstance(lay, data.StructLayout) or field not in dict(lay.members):
                raise ValueError(f"WeightStream {name} must be a StructLayout with '{field}', got {lay!r}")
        rdata = dict(resp_layout.members)["rdata"]
        if not isinstance(rdata, data.ArrayLayout) or rdata.length != DRAM_BEAT_WORDS:
            raise ValueError(f"WeightStream needs {DRAM_BEAT_WORDS}-word DRAM beats, got {rdata!r}")
        self.wb_depth = wb_depth
        super().__init__({
            "start": In(1), "run": In(1), "p": In(PARAMS),
            "raw0_req_done": In(1), "raw0_rsp_done": In(1),
            "req": Out(stream.Signature(req_layout)), "resp": In(stream.Signature(resp_layout)),
            "bank_full": In(2), "bank_filling": In(2), "fill_set": Out(2), "set_full": Out(2),
            "bias_we": Out(1), "bias_bank": Out(1), "bias_word": Out(2),
            "bias_data": Out(data.ArrayLayout(16, LANES)),
            "wr_en": Out(LANES), "wr_bank": Out(1), "wr_addr": Out(data.ArrayLayout(16, LANES)),
            "wr_data": Out(data.ArrayLayout(signed(16), LANES)),
            "weights": Out(range(LANES + 1)), "bits": Out(16), "stall_in": Out(range(LANES + 1)),
            "stall_out": Out(range(LANES + 1)), "active": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.p
        is_cw = self.run
        req, resp = self.req, self.resp
        decs = []
        for j in range(LANES):
            dec = WeightDecoder()
            m.submodules[f"wdec{j}"] = dec
            decs.append(dec)
        W = self.wb_depth
        LANE_BEATS = 4   # stream beats buffered per lane: 48 words, > 20 cycles of DRAM latency at 1 word/cycle
        lfifo = []
        for j in range(LANES):
            f = SyncFIFOBuffered(width=16 * DRAM_BEAT_WORDS, depth=LANE_BEATS)
            m.submodules[f"cw_lane{j}"] = f
            lfifo.append(f)
        m.submodules.cw_bias = bfifo = SyncFIFOBuffered(width=16 * DRAM_BEAT_WORDS, depth=8)
        # one tag per request in flight: at most LANE_BEATS per lane and 6 bias beats
        m.submodules.cw_tags = tags = SyncFIFOBuffered(width=5, depth=64)

        clear = Signal()
        m.d.comb += clear.eq(self.start & p.coded)
        for dec in decs:
            m.d.comb += dec.clear.eq(clear)
        # -- phase 1: tables -----------------------------------------------------------------------------
        t_req, t_rsp, t_idx = Signal(24), Signal(24), Signal(16)
        t_buf = Signal(data.ArrayLayout(16, DRAM_BEAT_WORDS))
        t_left = Signal(range(5))
        t_sub = Signal(2)
        tables_done = Signal()
        tbl_words = Signal(24)
        m.d.comb += tbl_words.eq(p.rows * 3)
        tbl_base, bias_base = Signal(32), Signal(32)
        raw0 = Signal()
        m.d.comb += raw0.eq(p.w_raw0)
        m.d.comb += tbl_base.eq(p.w_addr + Mux(raw0, (p.k_rows + BIAS_BEATS) * DRAM_BEAT_WORDS, 0))
        m.d.comb += bias_base.eq(tbl_base + ((p.rows + 3) >> 2) * DRAM_BEAT_WORDS)
        # per lane: next stream beat's DRAM address and words still to request; words still to feed
        q_addr = [Signal(32, name=f"cw_q_addr{j}") for j in range(LANES)]
        q_left = [Signal(24, name=f"cw_q_left{j}") for j in range(LANES)]
        f_left = [Signal(24, name=f"cw_f_left{j}") for j in range(LANES)]
        with m.If(self.start):
            m.d.sync += [t_req.eq(0), t_rsp.eq(0), t_idx.eq(0), t_left.eq(0), t_sub.eq(0), tables_done.eq(0)]
            m.d.sync += [x.eq(0) for x in q_left + f_left]
        in_tables = is_cw & ~self.start & ~tables_done
        # after the raw first group: its requests first, its responses first (in order)
        with m.If(in_tables & (~raw0 | self.raw0_req_done)):
            m.d.comb += [req.valid.eq(t_req < tbl_words), req.payload.addr.eq(tbl_base + t_req),
                         req.payload.count.eq(DRAM_BEAT_WORDS)]
            with m.If(req.valid & req.ready):
                m.d.sync += t_req.eq(t_req + DRAM_BEAT_WORDS)
        t_addr, t_data, t_we = Signal(16), Signal(24), Signal()
        with m.If(in_tables & (~raw0 | self.raw0_rsp_done)):
            m.d.comb += resp.ready.eq(t_left == 0)
            with m.If(resp.valid & (t_left == 0)):
                m.d.sync += [t_buf.eq(resp.payload.rdata), t_left.eq(4), t_sub.eq(0),
                             t_rsp.eq(t_rsp + DRAM_BEAT_WORDS)]
            with m.If(t_left != 0):
                with m.Switch(t_sub):
                    for i in range(4):
                        with m.Case(i):
                            m.d.comb += [t_addr.eq(t_buf[3 * i]),
                                         t_data.eq(Cat(t_buf[3 * i + 1], t_buf[3 * i + 2][:8]))]
                m.d.comb += t_we.eq(t_idx < p.rows)
                m.d.sync += [t_idx.eq(t_idx + 1), t_left.eq(t_left - 1), t_sub.eq(t_sub + 1)]
            with m.If((t_rsp >= tbl_words) & (t_left == 0)):
                # each lane's blocks in one go: the decoders restart DC prediction per group themselves
                for dec in decs:
                    m.d.comb += [dec.start.eq(1), dec.blocks.eq(p.row_len)]
                m.d.sync += tables_done.eq(1)
        to_lanes = Signal()
        m.d.comb += to_lanes.eq(t_addr >= LANE_TABLE_BASE)
        for dec in decs:
            m.d.comb += [dec.tbl_we.eq(t_we & ~to_lanes), dec.tbl_addr.eq(t_addr), dec.tbl_data.eq(t_data)]
        for j in range(LANES):
            with m.If(t_we & (t_addr == LANE_TABLE_BASE + j)):
                m.d.sync += q_addr[j].eq(p.dram_addr + t_data * DRAM_BEAT_WORDS)
            with m.If(t_we & (t_addr == LANE_TABLE_BASE + 16 + j)):
                m.d.sync += [q_left[j].eq(t_data), f_left[j].eq(t_data)]

        # -- phase 2: bias and stream requests, responses by tag ----------------------------------------
        q_out = [Signal(range(LANE_BEATS + 1), name=f"cw_q_out{j}") for j in range(LANES)]
        bq_g, bq_beat = Signal(16), Signal(2)
        w_g = Signal(16)
        rr = Signal(range(LANES))     # round-robin start: the lane after the last one served
        with m.If(self.start):
            m.d.sync += [bq_g.eq(p.w_raw0), bq_beat.eq(0), rr.eq(0)] + [x.eq(0) for x in q_out]
        streaming = is_cw & ~self.start & tables_done & tags.w_rdy
        want_bias = streaming & (bq_g < p.groups) & (bq_g <= w_g + 1)
        want = Signal(LANES)
        m.d.comb += want.eq(Cat(*[streaming & (q_left[j] != 0) & (q_out[j] + lfifo[j].level < LANE_BEATS)
                                  for j in range(LANES)]))
        # the first wanting lane at or after rr
        pick, any_want = Signal(range(LANES)), Signal()
        with m.Switch(rr):
            for r in range(LANES):
                with m.Case(r):
                    for off in reversed(range(LANES)):
                        lane = (r + off) % LANES
                        with m.If(want[lane]):
                            m.d.comb += [pick.eq(lane), any_want.eq(1)]
        s_acc, b_acc = Signal(LANES), Signal()
        with m.If(want_bias):
            m.d.comb += [req.valid.eq(1), req.payload.addr.eq(bias_base + (bq_g - raw0) * (3 * DRAM_BEAT_WORDS)
                                                              + bq_beat * DRAM_BEAT_WORDS),
                         req.payload.count.eq(DRAM_BEAT_WORDS), b_acc.eq(req.ready),
                         tags.w_data.eq(0b10000)]
            with m.If(req.ready):
                with m.If(bq_beat == 2):
                    m.d.sync += [bq_beat.eq(0), bq_g.eq(bq_g + 1)]
                with m.Else():
                    m.d.sync += bq_beat.eq(bq_beat + 1)
        with m.Elif(any_want):
            m.d.comb += [req.valid.eq(1), req.payload.count.eq(DRAM_BEAT_WORDS), tags.w_data.eq(pick)]
            for j in range(LANES):
                with m.If(pick == j):
                    m.d.comb += [req.payload.addr.eq(q_addr[j]), s_acc.eq(Mux(req.ready, 1 << j, 0))]
                    with m.If(req.ready):
                        m.d.sync += [q_addr[j].eq(q_addr[j] + DRAM_BEAT_WORDS),
                                     q_left[j].eq(Mux(q_left[j] > DRAM_BEAT_WORDS,
                                                      q_left[j] - DRAM_BEAT_WORDS, 0)),
                                     rr.eq(Mux(pick == LANES - 1, 0, pick + 1))]
        m.d.comb += tags.w_en.eq((s_acc != 0) | b_acc)
        s_rsp, b_rsp = Signal(LANES), Signal()
        rsp = Signal()
        with m.If(is_cw & ~self.start & tables_done):
            m.d.comb += [resp.ready.eq(tags.r_rdy), rsp.eq(resp.valid & tags.r_rdy), tags.r_en.eq(rsp)]
            m.d.comb += [b_rsp.eq(rsp & tags.r_data[4]),
                         s_rsp.eq(Mux(rsp & ~tags.r_data[4], Const(1, LANES) << tags.r_data[:4], 0))]
        m.d.comb += [bfifo.w_data.eq(resp.payload.rdata.as_value()), bfifo.w_en.eq(b_rsp)]
        # (bias beats need no count: at most two p.groups' 6 beats are requested ahead of the writer)
        for j in range(LANES):
            m.d.comb += [lfifo[j].w_data.eq(resp.payload.rdata.as_value()), lfifo[j].w_en.eq(s_rsp[j])]
            m.d.sync += q_out[j].eq(q_out[j] + s_acc[j] - s_rsp[j])

        # lane beats -> 16-bit words into each decoder (a lane's last beat may be partial: the rest is
        # the padding up to the next lane's beat)
        for j in range(LANES):
            s_word = Signal(range(DRAM_BEAT_WORDS), name=f"cw_word{j}")
            f, dec = lfifo[j], decs[j]
            with m.Switch(s_word):
                for i in range(DRAM_BEAT_WORDS):
                    with m.Case(i):
                        m.d.comb += dec.inp.payload.data.eq(f.r_data[16 * i:16 * i + 16])
            m.d.comb += dec.inp.valid.eq(is_cw & f.r_rdy & (f_left[j] != 0))
            with m.If(dec.inp.valid & dec.inp.ready):
                m.d.sync += f_left[j].eq(f_left[j] - 1)
                with m.If((s_word == DRAM_BEAT_WORDS - 1) | (f_left[j] == 1)):
                    m.d.sync += s_word.eq(0)
                    m.d.comb += f.r_en.eq(1)
                with m.Else():
                    m.d.sync += s_word.eq(s_word + 1)
            with m.If(self.start):
                m.d.sync += s_word.eq(0)

        # -- phase 3: decoded weights -> banks, each decoder its own lane -------------------------------
        kblocks = Signal(16)
        m.d.comb += kblocks.eq((p.k_rows + 63) >> 6)
        w_bank, w_kb0, w_need_bias, w_t = Signal(), Signal(16), Signal(), Signal(2)
        w_chunk = Signal(16)                    # block rows of the fill in progress (group or chunk)
        w_kbc = [Signal(16, name=f"cw_kbc{j}") for j in range(LANES)]   # each lane's block row in it
        w_done = Signal(LANES)                  # lanes that have written all of it
        with m.If(self.start):
            # with a raw first group (in bank 0) the decoders' first group is group 1, in bank 1
            m.d.sync += [w_bank.eq(p.w_raw0), w_kb0.eq(0), w_g.eq(p.w_raw0), w_t.eq(0), w_need_bias.eq(1),
                         w_done.eq(0)] + [x.eq(0) for x in w_kbc]
        chunk_rows = Const(W // 64, 16)
        with m.FSM(name="cw_writer"):
            with m.State("RESERVE"):
                with m.If(is_cw & ~self.start & tables_done & ~self.bank_full.bit_select(w_bank, 1)
                          & ~self.bank_filling.bit_select(w_bank, 1) & (w_g < p.groups)):
                    m.d.comb += self.fill_set.eq(Mux(w_bank, 0b10, 0b01))
                    m.d.sync += [w_t.eq(0), w_done.eq(0),
                                 w_chunk.eq(Mux(kblocks - w_kb0 > chunk_rows, chunk_rows, kblocks - w_kb0))]
                    m.next = "BIAS_OR_FILL"
            with m.State("BIAS_OR_FILL"):
                with m.If(~w_need_bias):
                    m.next = "FILL"
                with m.Elif(bfifo.r_rdy):
                    m.d.comb += bfifo.r_en.eq(1)
                    m.d.comb += [self.bias_we.eq(1), self.bias_bank.eq(w_bank), self.bias_word.eq(w_t)]
                    m.d.comb += [self.bias_data[j].eq(bfifo.r_data[16 * j:16 * j + 16]) for j in range(LANES)]
                    m.d.sync += w_t.eq(w_t + 1)
                    with m.If(w_t == BIAS_BEATS - 1):
                        m.next = "FILL"
            with m.State("FILL"):
                for j in range(LANES):
                    out = decs[j].out
                    m.d.comb += out.ready.eq(~w_done[j])
                    with m.If(out.valid & ~w_done[j]):
                        m.d.comb += [self.wr_en[j].eq(1), self.wr_addr[j].eq(Cat(out.payload.index, w_kbc[j])),
                                     self.wr_data[j].eq(out.payload.data)]
                        with m.If(out.payload.block_last):
                            with m.If(w_kbc[j] == w_chunk - 1):
                                m.d.sync += [w_kbc[j].eq(0), w_done[j].eq(1)]
                            with m.Else():
                                m.d.sync += w_kbc[j].eq(w_kbc[j] + 1)
                with m.If(w_done == (1 << LANES) - 1):
                    group_end = w_kb0 + w_chunk == kblocks
                    m.d.comb += self.set_full.eq(Mux(w_bank, 0b10, 0b01))
                    m.d.sync += [w_bank.eq(~w_bank), w_need_bias.eq(group_end), w_done.eq(0)]
                    with m.If(group_end):
                        m.d.sync += [w_kb0.eq(0), w_g.eq(w_g + 1)]
                    with m.Else():
                        m.d.sync += w_kb0.eq(w_kb0 + w_chunk)
                    m.next = "RESERVE"
            # (a layer ends with the writer back in RESERVE: its last fill completes the last group)

        # counters: summed over the lanes (weights, bits, and lane-cycles starved / held)
        def total(bits):
            return sum(bits[1:], bits[0])

        accepted = [decs[j].out.valid & decs[j].out.ready for j in range(LANES)]
        m.d.comb += [
            self.wr_bank.eq(w_bank),
            self.weights.eq(total(accepted)),
            self.active.eq(Cat(*[dec.busy for dec in decs]).any()),
            self.bits.eq(total([dec.bits_step for dec in decs])),
            self.stall_in.eq(total([dec.starved for dec in decs])),
            self.stall_out.eq(total([decs[j].out.valid & ~decs[j].out.ready for j in range(LANES)])),
        ]
        return m
