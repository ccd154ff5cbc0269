"""The plain weight fetcher: a linear DRAM read of a layer's weight groups into the two weight banks
(``hw.weight_banks``), the next group prefetched into one bank while the consumer reads the other.

DRAM image (at ``w_addr``, one beat = ``lanes`` words): per group, ``BIAS_BEATS`` = 3 bias beats (word ``t`` of
each lane's 48-bit bias, ``t`` = 0..2) then ``k_rows`` weight rows of ``lanes`` weights, the groups back to back.
A group deeper than a bank (``k_rows > depth``, fully-connected layers) goes through the banks in chunks of
``depth`` rows (the last one shorter); the bias beats go with the first chunk.

Requests: for each chunk, the fetcher waits until the bank it fills next (bank 0 first, then alternating) is
neither full nor being filled, reserves it (``fill_set``, one cycle), then requests the chunk's beats back to
back at consecutive addresses as the port takes them (``req``: ``count`` = a beat); after the chunk's last
beat it goes on with the next chunk in the other bank. Responses (in order; the fetcher always takes them): a
bias beat is written to the bias registers of the bank being filled (``row_bias_we``, word ``row_bias_word``), a
row beat to row ``row_addr`` of that bank (``row_we``, all lanes); the last row of a chunk marks the bank full
(``set_full``) and the next responses go to the other bank.

Coded layers (``w_codec``, ``hw.weight_stream``) fetch nothing here, except with ``w_raw0`` their first group, as
plain weights, before the decoders take over: the fetcher requests that one group, ``req_done`` rises after its
last request and ``raw0_rsp_done`` after its last response.

Ports (``lanes`` = the DRAM beat, ``depth`` = rows per bank)
-----------------------------------------------------------
start : In(1)           one-cycle pulse: a command begins (``p.fetch``, ``p.w_addr`` are sampled); the fetcher
                        neither requests nor resets anything else in that cycle
run : In(1)             the command is executing (held until it ends)
p : In(PARAMS)          ``fetch`` (the command reads weights: CONV, DWCONV), ``w_codec``, ``w_raw0`` (held while
                        ``run``), ``w_addr`` (at ``start``), ``groups`` and ``k_rows`` (rows per group; from the
                        cycle after ``start``)
req : Out(stream)       DRAM read requests (``req_layout``: ``addr``, ``count`` = ``lanes``; not ``write``)
resp : In(stream)       their responses, in order (``resp_layout``); ``ready`` while the fetcher takes them
bank_full, bank_filling : In(2)   the banks' flags (``hw.weight_banks``)
fill_set, set_full : Out(2)       reserve a bank for filling / mark it full (one cycle)
row_we, row_bias_we, row_bank, row_addr, row_data, row_bias_word : Out   the banks' row-side write port
                        (``row_data`` = the response's words, valid with ``row_we`` or ``row_bias_we``)
req_done : Out(1)       every request made: from the cycle after the last request of the last group (plain) or
                        of the raw group (``w_raw0``), from the cycle after ``start`` for a command that fetches
                        nothing (``fetch`` = 0); it stays low for a coded layer without ``w_raw0`` (not fetched here)
raw0_rsp_done : Out(1)  a coded layer's raw first group has come in (cleared at ``start``)
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.arch import MAX_LANES

from .weight_banks import ADDR_BITS, BIAS_BEATS

PARAMS = data.StructLayout({"fetch": 1, "w_codec": 1, "w_raw0": 1, "w_addr": 32, "groups": 16, "k_rows": 24})


class WeightFetcher(wiring.Component):
    """The plain weight fetcher (module docstring). ``req_layout``, ``resp_layout``: the engine's DRAM request and
    response layouts (``hw.engine.dram_req_layout``; a beat of ``lanes`` words, 1..24); ``depth``: rows per weight
    bank, 16..65536."""

    def __init__(self, req_layout, resp_layout, depth: int):
        for name, lay, field in (("req_layout", req_layout, "addr"), ("resp_layout", resp_layout, "rdata")):
            if not isinstance(lay, data.StructLayout) or field not in dict(lay.members):
                raise ValueError(f"WeightFetcher {name} must be a StructLayout with '{field}', got {lay!r}")
        rdata = dict(resp_layout.members)["rdata"]
        if not isinstance(rdata, data.ArrayLayout) or not 1 <= rdata.length <= MAX_LANES:
            raise ValueError(f"WeightFetcher needs DRAM beats of 1..{MAX_LANES} words, got {rdata!r}")
        if not isinstance(depth, int) or isinstance(depth, bool) or not 16 <= depth <= 2**16:
            raise ValueError(f"WeightFetcher depth must be an integer in 16..65536, got {depth!r}")
        self.lanes = rdata.length
        self.depth = depth
        super().__init__({
            "start": In(1), "run": In(1), "p": In(PARAMS),
            "req": Out(stream.Signature(req_layout)), "resp": In(stream.Signature(resp_layout)),
            "bank_full": In(2), "bank_filling": In(2), "fill_set": Out(2), "set_full": Out(2),
            "row_we": Out(1), "row_bias_we": Out(1), "row_bank": Out(1), "row_addr": Out(ADDR_BITS),
            "row_data": Out(data.ArrayLayout(signed(16), self.lanes)), "row_bias_word": Out(2),
            "req_done": Out(1), "raw0_rsp_done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L, W = self.lanes, self.depth
        p, req, resp = self.p, self.req, self.resp
        # request side: group, beat in the group, rows of the chunk requested, next address, bank, in a chunk
        fq_g, fq_beat, fq_chunk_rows, fq_addr = Signal(16), Signal(24), Signal(24), Signal(32)
        fq_bank, fq_in_chunk, fq_done = Signal(), Signal(), Signal()
        # response side: beat in the group, row in the chunk, bank
        fr_beat, fr_row_in_chunk = Signal(24), Signal(24)
        fr_bank = Signal()
        raw0_rsp_done = Signal()
        m.d.comb += [self.req_done.eq(fq_done), self.raw0_rsp_done.eq(raw0_rsp_done)]
        with m.If(self.start):
            m.d.sync += [fq_g.eq(0), fq_beat.eq(0), fq_chunk_rows.eq(0), fq_addr.eq(p.w_addr), fq_bank.eq(0),
                         fq_in_chunk.eq(0), fq_done.eq(~p.fetch),
                         fr_beat.eq(0), fr_row_in_chunk.eq(0), fr_bank.eq(0), raw0_rsp_done.eq(0)]
        group_beats = p.k_rows + BIAS_BEATS

        with m.If(self.run & (~p.w_codec | p.w_raw0) & ~self.start & ~fq_done):
            bank_free = ~self.bank_full.bit_select(fq_bank, 1) & ~self.bank_filling.bit_select(fq_bank, 1)
            with m.If(~fq_in_chunk):
                # start a chunk when its bank is free
                with m.If(bank_free):
                    m.d.sync += fq_in_chunk.eq(1)
                    m.d.comb += self.fill_set.eq(Mux(fq_bank, 0b10, 0b01))
            with m.Else():
                m.d.comb += [req.valid.eq(1), req.payload.addr.eq(fq_addr), req.payload.count.eq(L)]
                with m.If(req.ready):
                    m.d.sync += [fq_addr.eq(fq_addr + L), fq_beat.eq(fq_beat + 1)]
                    is_row = fq_beat >= BIAS_BEATS
                    chunk_end = is_row & (fq_chunk_rows == W - 1)
                    group_end = fq_beat == group_beats - 1
                    with m.If(is_row):
                        m.d.sync += fq_chunk_rows.eq(fq_chunk_rows + 1)
                    with m.If(group_end | chunk_end):
                        m.d.sync += [fq_in_chunk.eq(0), fq_bank.eq(~fq_bank), fq_chunk_rows.eq(0)]
                    with m.If(group_end):
                        m.d.sync += [fq_beat.eq(0), fq_g.eq(fq_g + 1)]
                        with m.If((fq_g == p.groups - 1) | p.w_codec):
                            m.d.sync += fq_done.eq(1)

        m.d.comb += [self.row_bank.eq(fr_bank), self.row_addr.eq(fr_row_in_chunk),
                     self.row_bias_word.eq(fr_beat[:2]), self.row_data.eq(resp.payload.rdata.as_value())]
        with m.If(self.run & (~p.w_codec | (p.w_raw0 & ~raw0_rsp_done))):
            m.d.comb += resp.ready.eq(1)
            with m.If(resp.valid):
                m.d.sync += fr_beat.eq(fr_beat + 1)
                with m.If(fr_beat < BIAS_BEATS):
                    m.d.comb += self.row_bias_we.eq(1)
                with m.Else():
                    m.d.comb += self.row_we.eq(1)
                    r_chunk_end = fr_row_in_chunk == W - 1
                    r_group_end = fr_beat == group_beats - 1
                    m.d.sync += fr_row_in_chunk.eq(fr_row_in_chunk + 1)
                    with m.If(r_chunk_end | r_group_end):
                        m.d.comb += self.set_full.eq(Mux(fr_bank, 0b10, 0b01))
                        m.d.sync += [fr_row_in_chunk.eq(0), fr_bank.eq(~fr_bank)]
                    with m.If(r_group_end):
                        m.d.sync += [fr_beat.eq(0), raw0_rsp_done.eq(p.w_codec)]
        return m
