"""The weight buffer: two banks of ``lanes`` lane memories, their full / filling flags and bias registers.

A bank holds one weight group (or one chunk of a group deeper than the bank: fully-connected layers): ``depth``
rows of ``lanes`` 16-bit weights, weight ``j`` of a row for output channel ``lanes g + j``. Each lane of each bank
is its own memory (one 16-bit weight per row) with its own write port, so two kinds of writers share the banks:

* the plain weight fetcher (``hw.weight_fetcher``) writes a whole row per cycle (every lane, one address) and the
  three 16-bit bias words of a group from the same beats (``row_*``);
* the weight decoders (``hw.weight_stream``, one per lane) write each lane at its own row in the same cycle, and
  their bias words (``lane_*``). A lane's decoder write replaces the row write of that lane in the same cycle,
  and a decoder bias write is applied after a row-side bias write of the same cycle (in the engine the two never
  meet: the decoders' words come back from DRAM after the plain fetcher's raw first group).

A weight group in DRAM is 3 bias beats (word t of each channel's 48-bit bias) then ``K`` rows of ``lanes``
weights (``K`` = in_c k k). A layer whose ``K`` exceeds the weight-buffer depth streams its rows in chunks through
the two banks (fully-connected layers: one tile per group); that is allowed only with one tile per group. The
weight fetcher (``hw.weight_fetcher``) reads the groups (or chunks) into the banks in order, each bank as soon as
the compute side (``hw.conv_pool``) or the depthwise unit (``hw.dw_unit``) has released it.

Each bank has a 48-bit bias per lane (``BIAS_BEATS`` = 3 words, word 0 the least significant), written one word
of every lane at a time; it is not cleared between commands (a group always writes its three words before it is
marked full).

The consumer (the compute side or the depthwise unit) reads one row of its bank per cycle: ``rd_en`` with
``rd_addr`` and ``rd_bank`` reads all lanes of that bank (a synchronous read: ``rd_data[rd_bank]`` holds the row
from the next cycle until the bank's next read; the other bank's read data does not change).

Flags, per bank (bit ``i`` of each): a writer reserves a free bank (``fill_set``: filling), marks it full when the
group or chunk is in (``set_full``: full, no longer filling); the consumer releases it after its last read
(``release``: free). From the next cycle::

    full    <= (full | set_full) & ~release
    filling <= (filling | fill_set) & ~set_full

and ``clear`` (a command begins) empties both banks (over the set inputs of that cycle).

Ports (``lanes`` weights per row, ``depth`` rows per bank)
---------------------------------------------------------
clear : In(1)                   one-cycle pulse: both banks free (flags cleared); the memories keep their contents
row_we : In(1)                  write ``row_data`` (one weight per lane) at row ``row_addr`` of bank ``row_bank``
row_bias_we : In(1)             write ``row_data[j]`` as bias word ``row_bias_word`` (0..2) of lane ``j``, bank
                                ``row_bank``
row_bank, row_addr, row_data, row_bias_word : In
lane_we : In(lanes)             lane ``j`` writes ``lane_data[j]`` at row ``lane_addr[j]`` of bank ``lane_bank``
lane_bank, lane_addr, lane_data : In
lane_bias_we : In(1)            write ``lane_bias_data[j]`` as bias word ``lane_bias_word`` (0..2) of lane ``j``,
                                bank ``lane_bias_bank``
lane_bias_bank, lane_bias_word, lane_bias_data : In
fill_set, set_full, release : In(2)   the flag updates above (one cycle each)
full, filling : Out(2)          the flags (registers)
rd_en, rd_bank, rd_addr : In    read row ``rd_addr`` of bank ``rd_bank`` (all lanes)
rd_data : Out(2 x lanes)        each bank's last read row (signed 16-bit weights)
bias : Out(2 x lanes)           each bank's bias registers (signed ``BIAS_BEATS * 16``-bit)
"""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.arch import MAX_LANES

BIAS_BEATS = 3     # a 48-bit bias per channel in three 16-bit words (the one definition: engine, fetcher, stream)
ADDR_BITS = 16     # row addresses (depth <= 65536)


class WeightBanks(wiring.Component):
    """Two weight banks of ``lanes`` lane memories of ``depth`` rows, their flags and bias registers (module
    docstring). ``lanes``: weights per row, 1..24 (the engine's array width); ``depth``: rows per bank, 16..65536.
    The memories are submodules ``wb{bank}_{lane}`` (``sim.synth`` counts them as the weight buffers)."""

    def __init__(self, lanes: int, depth: int):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= MAX_LANES:
            raise ValueError(f"WeightBanks lanes must be an integer in 1..{MAX_LANES}, got {lanes!r}")
        if not isinstance(depth, int) or isinstance(depth, bool) or not 16 <= depth <= 2**16:
            raise ValueError(f"WeightBanks depth must be an integer in 16..65536, got {depth!r}")
        self.lanes = lanes
        self.depth = depth
        row = data.ArrayLayout(signed(16), lanes)
        super().__init__({
            "clear": In(1),
            "row_we": In(1), "row_bias_we": In(1), "row_bank": In(1), "row_addr": In(ADDR_BITS),
            "row_data": In(row), "row_bias_word": In(2),
            "lane_we": In(lanes), "lane_bank": In(1), "lane_addr": In(data.ArrayLayout(ADDR_BITS, lanes)),
            "lane_data": In(row),
            "lane_bias_we": In(1), "lane_bias_bank": In(1), "lane_bias_word": In(2),
            "lane_bias_data": In(data.ArrayLayout(16, lanes)),
            "fill_set": In(2), "set_full": In(2), "release": In(2),
            "full": Out(2), "filling": Out(2),
            "rd_en": In(1), "rd_bank": In(1), "rd_addr": In(ADDR_BITS),
            "rd_data": Out(data.ArrayLayout(row, 2)),
            "bias": Out(data.ArrayLayout(data.ArrayLayout(signed(BIAS_BEATS * 16), lanes), 2)),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        for i in range(2):
            for j in range(L):
                mem = Memory(shape=signed(16), depth=self.depth, init=[])
                m.submodules[f"wb{i}_{j}"] = mem
                wp, rp = mem.write_port(), mem.read_port()
                lane = self.lane_we[j]
                m.d.comb += [
                    wp.addr.eq(Mux(lane, self.lane_addr[j], self.row_addr)),
                    wp.data.eq(Mux(lane, self.lane_data[j], self.row_data[j])),
                    wp.en.eq(Mux(lane, self.lane_bank == i, self.row_we & (self.row_bank == i))),
                    rp.addr.eq(self.rd_addr),
                    rp.en.eq(self.rd_en & (self.rd_bank == i)),
                    self.rd_data[i][j].eq(rp.data),
                ]
        # bias words: the row side, then the lane side (a later assignment of the same word wins)
        for we, bank, word, words in ((self.row_bias_we, self.row_bank, self.row_bias_word, self.row_data),
                                      (self.lane_bias_we, self.lane_bias_bank, self.lane_bias_word,
                                       self.lane_bias_data)):
            with m.If(we):
                for i in range(2):
                    with m.If(bank == i):
                        for j in range(L):
                            m.d.sync += self.bias[i][j].word_select(word, 16).eq(words[j])
        m.d.sync += [self.full.eq((self.full | self.set_full) & ~self.release),
                     self.filling.eq((self.filling | self.fill_set) & ~self.set_full)]
        with m.If(self.clear):
            m.d.sync += [self.full.eq(0), self.filling.eq(0)]
        return m
