"""The weight decoder's entropy stage, bit-exact with ``golden.weightcodec.huffman_decode``.

16-bit DRAM words in, *coefficient events* out: one event per DC coefficient, per nonzero AC coefficient
and per EOB, at most one per cycle. An event carries the quantized value (DC already summed with its
predictor), its **natural** position ``8 u + v`` in the 8x8 block and ``block_last`` on the final event of
a block; an EOB is an event that writes nothing (``write = 0``). Zero coefficients are not sent: the IDCT
stage (:mod:`hw.jpeg.idct`) starts every block from zeros.

Stream (``golden.weightcodec``): one continuous MSB-first bit stream per layer, no byte stuffing, padded
with 1-bits to 16 bits, as little-endian 16-bit words (word ``i`` = byte ``2i`` | byte ``2i+1`` << 8, so
the stream's next 16 bits are the word with its bytes swapped). Per block: DC symbol SSSS (DC table),
SSSS extra bits; AC symbols ``RRRR << 4 | SSSS`` (AC table) with EOB (0x00) and ZRL (0xF0), SSSS
1..15; extra bits by T.81 EXTEND. The DC predictor restarts at 0 at the first block of every group of
``group_blocks`` blocks.

Shape (why):

* **Bit buffer**: 64 bits, left-aligned (bit 63 is the next stream bit), ``count`` of them valid, the
  bits below zero. A symbol with its extra bits is at most 16 + 15 = 31 bits, so 32 bits of lookahead
  decode any symbol in one go. A word is taken whenever ``count <= 48`` (a registered condition, so
  ``inp.ready`` does not wait on the decode logic), which keeps the buffer topped up at the DRAM's
  16 bits per cycle; a symbol is decoded as soon as all of its bits are in the buffer
  (``code length + SSSS <= count``), so the stream's tail decodes without more words.
* **One symbol per cycle**: the next bit position depends on the code length and on SSSS, which is
  part of the looked-up symbol, so the loop ``position -> code -> symbol -> SSSS -> position`` closes
  in one cycle. Canonical decoding (T.81 F.2.2.3) makes that short: 16 comparators test every prefix
  length at once (``code_l <= MAXCODE[l]``, stored as ``LIMIT[l] = MAXCODE[l] + 1``, 0 where a length
  has no codes) and a priority encoder picks the shortest; the HUFFVAL index ``VALPTR[l] + code -
  MINCODE[l]`` is one 8-bit add of a per-length ``OFFSET[l] = VALPTR[l] - MINCODE[l]`` (mod 256) that
  the host precomputes (:mod:`hw.jpeg.whost`). The two per-length tables (DC and AC, 16 x (16 + 8)
  bits each) are registers because all 16 entries are read every cycle; HUFFVAL (256 AC + 16 DC
  symbols, 8 bits) is a memory with an asynchronous read port (LUT RAM), the one lookup on the loop.
* **Event register**: everything off the loop (the extra bits' value, the DC sum, the natural
  position from the zigzag ROM) is registered after the symbol and finished in the next cycle, so the
  loop carries only the symbol's length and its effect on the block position ``k``.

Throughput: one Huffman symbol per cycle when the buffer holds the symbol's bits and the event
register is free: a block of ``n`` symbols (DC, ACs, ZRLs, EOB) takes ``n`` cycles, at most 64 for a
block without ZRL (64 coefficients, no EOB), so the 64-cycle IDCT is the rate-limiting stage for every
block of up to 64 symbols. The input limit is 16 stream bits per cycle.

A corrupt stream (a 16-bit prefix that is no code, a DC SSSS > 15, an AC symbol with SSSS = 0 other
than EOB and ZRL, a run past coefficient 63) sets the sticky ``error`` and stops decoding until
``clear``, where golden raises ``ValueError``. DC values are kept in 16 bits (two's complement): exact
for every DC that fits int16, which covers every stream golden's encoder makes (``|DC| <= 16384``).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import entropy
from golden.jpeg import ZIGZAG
from golden.weightcodec import MAX_SSSS

from .lut import const_lut

__all__ = ["HuffmanDecoder", "word_layout", "event_layout", "VALUE_BITS", "BLOCKS_BITS", "GROUP_BITS",
           "HUFFVAL_DEPTH", "DC_HUFFVAL_BASE", "LENGTH_BASE", "TABLE_ADDR_BITS", "TABLE_DATA_BITS",
           "CODE_BITS"]

WORD_BITS = 16
BUFFER_BITS = 64            # 48 + 16: a word fits whenever count <= 48, and >= 32 bits of lookahead
CODE_BITS = entropy.MAX_CODE_LENGTH   # 16
EXTRA_MAX = MAX_SSSS                  # 15 extra bits at most
VALUE_BITS = 16             # |q| <= 32767 for SSSS <= 15; DC sums kept in int16
BLOCKS_BITS = 24            # blocks per start: VGG-16 fc6 has 342 groups x 392 = 134 k blocks per lane
GROUP_BITS = 16             # group_blocks = ceil(K / 64) per lane stream (12 * that for one stream)

# Table port (local to this stage; hw.jpeg.wdecoder maps it into the decoder's address space)
HUFFVAL_DEPTH = 256 + 16
DC_HUFFVAL_BASE = 256       # HUFFVAL of the AC table at 0..255, of the DC table at 256 + index
LENGTH_BASE = 0x200         # per-length entries: DC at 0x200 + (l - 1), AC at 0x210 + (l - 1)
TABLE_ADDR_BITS = 10
TABLE_DATA_BITS = 24        # length entry: LIMIT in [0:16], OFFSET in [16:24]; HUFFVAL entry: [0:8]

assert CODE_BITS + EXTRA_MAX <= 32   # a whole symbol fits the 32-bit lookahead window


def word_layout() -> data.StructLayout:
    return data.StructLayout({"data": unsigned(WORD_BITS)})


def event_layout() -> data.StructLayout:
    """A coefficient event: ``data`` (quantized value), ``index`` (natural position ``8 u + v``), ``write``
    (0 for a bare EOB), ``block_last`` (the block's final event)."""
    return data.StructLayout({"data": signed(VALUE_BITS), "index": unsigned(6), "write": 1, "block_last": 1})


class HuffmanDecoder(wiring.Component):
    """Stream words -> coefficient events, one Huffman symbol per cycle (see the module docstring).

    Ports
    -----
    inp : In(stream)     ``{data: 16}`` little-endian stream words
    out : Out(stream)    :func:`event_layout`
    tbl_we, tbl_addr, tbl_data : table port: HUFFVAL at 0..255 (AC) and 256..271 (DC), data[0:8];
                         per-length entries at 0x200 + (l - 1) (DC) and 0x210 + (l - 1) (AC),
                         ``LIMIT | OFFSET << 16``. Write only while idle.
    group_blocks : In    blocks per group (the DC predictor restarts at each group's first block); >= 1
    start, blocks : In   ``start`` adds ``blocks`` to the blocks still to decode (any time)
    clear : In           empties the bit buffer, restarts the block position, the group and the DC
                         predictor, clears ``error`` and the blocks to decode (only while idle)
    idle : Out           no block left to decode and no event waiting
    error : Out          sticky: corrupt stream (see the module docstring)
    consumed : Out       stream bits taken this cycle (code + extra bits of the decoded symbol)
    starved : Out        a symbol is due but its bits are not all in the buffer yet
    """

    def __init__(self):
        super().__init__({
            "inp": In(stream.Signature(word_layout())),
            "out": Out(stream.Signature(event_layout())),
            "tbl_we": In(1),
            "tbl_addr": In(unsigned(TABLE_ADDR_BITS)),
            "tbl_data": In(unsigned(TABLE_DATA_BITS)),
            "group_blocks": In(unsigned(GROUP_BITS)),
            "start": In(1),
            "blocks": In(unsigned(BLOCKS_BITS)),
            "clear": In(1),
            "idle": Out(1),
            "error": Out(1),
            "consumed": Out(unsigned(6)),
            "starved": Out(1),
        })

    def elaborate(self, platform):
        m = Module()

        # ---- tables -----------------------------------------------------------------------------
        m.submodules.huffval = huffval = Memory(shape=unsigned(8), depth=HUFFVAL_DEPTH, init=[])
        hv_w = huffval.write_port()
        hv_r = huffval.read_port(domain="comb")   # on the one-cycle loop: asynchronous (LUT RAM)
        m.d.comb += [hv_w.addr.eq(self.tbl_addr[:9]), hv_w.data.eq(self.tbl_data[:8]),
                     hv_w.en.eq(self.tbl_we & (self.tbl_addr < HUFFVAL_DEPTH))]
        # limit[c][l - 1], offset[c][l - 1]; c = 0 DC, 1 AC. Reset 0: no length matches, so decoding
        # without loaded tables flags an error instead of inventing symbols.
        limit = [[Signal(CODE_BITS, name=f"limit_{c}_{l}") for l in range(1, 17)] for c in ("dc", "ac")]
        offset = [[Signal(8, name=f"offset_{c}_{l}") for l in range(1, 17)] for c in ("dc", "ac")]
        with m.If(self.tbl_we):
            for c in range(2):
                for i in range(16):
                    with m.If(self.tbl_addr == LENGTH_BASE + 16 * c + i):
                        m.d.sync += [limit[c][i].eq(self.tbl_data[:16]), offset[c][i].eq(self.tbl_data[16:24])]

        # ---- state ------------------------------------------------------------------------------
        buf = Signal(BUFFER_BITS)
        count = Signal(range(BUFFER_BITS + 1))
        k = Signal(range(65))            # zigzag position of the next coefficient; 0: a DC symbol is due
        blocks_left = Signal(BLOCKS_BITS)
        group_pos = Signal(GROUP_BITS)   # block index inside its group
        error = Signal()
        m.d.comb += self.error.eq(error)

        # event register (stage 2)
        ev_valid = Signal()
        ev_dc = Signal()
        ev_first = Signal()              # DC of a group's first block: predictor 0
        ev_size = Signal(4)
        ev_after = Signal(EXTRA_MAX)     # the 15 stream bits after the code (extra bits left-aligned)
        ev_index = Signal(6)
        ev_write = Signal()
        ev_last = Signal()
        pred = Signal(signed(VALUE_BITS))

        advance = Signal()
        m.d.comb += advance.eq(~ev_valid | self.out.ready)

        # ---- stage 1: one symbol per cycle ------------------------------------------------------
        win = buf[BUFFER_BITS - 32:]                # the 32-bit lookahead, bit 31 next
        peek = buf[BUFFER_BITS - CODE_BITS:]        # 16 bits: the longest code
        is_dc = Signal()
        m.d.comb += is_dc.eq(k == 0)
        length = Signal(range(CODE_BITS + 1))
        code = Signal(CODE_BITS)
        offs = Signal(8)
        found = Signal()
        # shortest matching length wins: assignments for shorter l come later and override
        for l in range(CODE_BITS, 0, -1):
            lim = Mux(is_dc, limit[0][l - 1], limit[1][l - 1])
            prefix = peek[CODE_BITS - l:]
            with m.If(prefix < lim):
                m.d.comb += [length.eq(l), code.eq(prefix), found.eq(1),
                             offs.eq(Mux(is_dc, offset[0][l - 1], offset[1][l - 1]))]
        idx = Signal(8)
        m.d.comb += idx.eq(offs + code)
        m.d.comb += hv_r.addr.eq(Mux(is_dc, DC_HUFFVAL_BASE + idx[:4], idx))
        sym = hv_r.data
        size = sym[:4]
        run = sym[4:]
        total = Signal(range(CODE_BITS + EXTRA_MAX + 1))
        m.d.comb += total.eq(length + size)
        enough = Signal()
        m.d.comb += enough.eq(found & (total <= count))

        eob = Signal()
        zrl = Signal()
        coef = Signal()
        m.d.comb += [eob.eq(sym == 0), zrl.eq(sym == (entropy.ZRL_RUN << 4)), coef.eq(size != 0)]
        kr = Signal(range(64 + 16))     # k + RRRR: position of this AC coefficient
        m.d.comb += kr.eq(k + run)
        bad = Signal()
        with m.If(is_dc):
            m.d.comb += bad.eq(run != 0)                            # DC SSSS > 15
        with m.Else():
            m.d.comb += bad.eq((~coef & ~eob & ~zrl)                 # (RRRR, 0) other than EOB / ZRL
                               | (coef & (kr > 63))                  # AC run past 63
                               | (zrl & (k + 16 > 63)))              # ZRL runs past 63 (golden: k > 63)

        active = Signal()
        m.d.comb += active.eq((blocks_left != 0) & ~error)
        fire = Signal()     # the symbol is decoded and its bits consumed this cycle
        m.d.comb += fire.eq(active & advance & enough & ~bad)
        block_end = Signal()
        m.d.comb += block_end.eq(~is_dc & (eob | (coef & (kr == 63))))
        m.d.comb += [self.consumed.eq(Mux(fire, total, 0)),
                     self.starved.eq(active & advance & ~enough),
                     self.idle.eq((blocks_left == 0) & ~ev_valid)]

        # natural position: the zigzag ROM, off the loop (registered into the event)
        zz_pos = Signal(6)
        m.d.comb += zz_pos.eq(Mux(is_dc, 0, kr[:6]))
        # continuous (hw.jpeg.lut), not a Switch: zz_pos sits at 0 from reset to the first DC symbol, and a
        # Switch's `always @*` block stays X on Icarus until zz_pos changes (X index of the first DC event)
        natural = const_lut(m, ZIGZAG, zz_pos, unsigned(6), "natural")

        with m.If(active & found & (length <= count) & bad):
            m.d.sync += error.eq(1)
        # 16 bits that are no code's prefix: the all-ones region of a canonical table (T.81)
        with m.If(active & ~found & (count >= CODE_BITS)):
            m.d.sync += error.eq(1)

        with m.If(advance):
            m.d.sync += [
                ev_valid.eq(fire & (is_dc | coef | eob)),   # a ZRL only moves k
                ev_dc.eq(is_dc),
                ev_first.eq(group_pos == 0),
                ev_size.eq(size),
                ev_after.eq((win << length)[32 - EXTRA_MAX:32]),
                ev_index.eq(natural),
                ev_write.eq(is_dc | coef),
                ev_last.eq(block_end),
            ]
        with m.If(fire):
            with m.If(is_dc):
                m.d.sync += k.eq(1)
            with m.Elif(zrl):
                m.d.sync += k.eq(k + 16)
            with m.Elif(block_end):
                m.d.sync += k.eq(0)
            with m.Else():
                m.d.sync += k.eq(kr + 1)
            with m.If(block_end):
                m.d.sync += group_pos.eq(Mux(group_pos + 1 == self.group_blocks, 0, group_pos + 1))
        m.d.sync += blocks_left.eq(blocks_left + Mux(self.start, self.blocks, 0) - (fire & block_end))

        # ---- bit buffer -------------------------------------------------------------------------
        take = Signal(range(CODE_BITS + EXTRA_MAX + 1))
        m.d.comb += take.eq(Mux(fire, total, 0))
        rest = Signal(range(BUFFER_BITS + 1))
        m.d.comb += rest.eq(count - take)
        m.d.comb += self.inp.ready.eq((count <= BUFFER_BITS - WORD_BITS) & ~self.clear)
        accept = Signal()
        m.d.comb += accept.eq(self.inp.valid & self.inp.ready)
        w = self.inp.payload.data
        word_be = Cat(w[8:], w[:8])      # byte 2i (the low byte) comes first in the stream
        shifted = Signal(BUFFER_BITS)
        m.d.comb += shifted.eq(buf << take)
        room = Signal(range(BUFFER_BITS - WORD_BITS + 1))   # the word goes right below the valid bits
        m.d.comb += room.eq(BUFFER_BITS - WORD_BITS - rest)   # rest <= count <= 48 whenever a word is taken
        placed = Signal(BUFFER_BITS)
        m.d.comb += placed.eq(Mux(accept, word_be << room, 0))
        m.d.sync += [buf.eq(shifted | placed), count.eq(rest + Mux(accept, WORD_BITS, 0))]

        # ---- stage 2: the event -----------------------------------------------------------------
        drop = Signal(4)   # 15 - SSSS: the bits after the extra bits
        m.d.comb += drop.eq(EXTRA_MAX - ev_size)
        extra = Signal(EXTRA_MAX)
        m.d.comb += extra.eq(ev_after >> drop)
        # EXTEND (T.81 F.2.2.1): a leading 0 extra bit means negative, v = bits - (2**SSSS - 1)
        value = Signal(signed(VALUE_BITS))
        m.d.comb += value.eq(Mux(ev_after[EXTRA_MAX - 1], extra,
                                 extra - ((Const(1, VALUE_BITS + 1) << ev_size) - 1)))
        dc_value = Signal(signed(VALUE_BITS))
        m.d.comb += dc_value.eq(Mux(ev_first, 0, pred) + value)
        m.d.comb += [
            self.out.valid.eq(ev_valid),
            self.out.payload.data.eq(Mux(ev_dc, dc_value, Mux(ev_write, value, 0))),
            self.out.payload.index.eq(ev_index),
            self.out.payload.write.eq(ev_write),
            self.out.payload.block_last.eq(ev_last),
        ]
        with m.If(self.out.valid & self.out.ready & ev_dc):
            m.d.sync += pred.eq(dc_value)

        with m.If(self.clear):
            m.d.sync += [buf.eq(0), count.eq(0), k.eq(0), group_pos.eq(0), error.eq(0), pred.eq(0),
                         blocks_left.eq(0), ev_valid.eq(0)]
        return m
