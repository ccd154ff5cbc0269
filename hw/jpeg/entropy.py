"""Entropy coding, bit-exact with ``golden.entropy``: the run-length coder and the Huffman coder.

:class:`RunLengthCoder` (``golden.entropy.run_length_symbols`` + ``extra_bits``) turns the scan-order
entries of :class:`hw.jpeg.zigzag.ZigzagBuffer` into symbols, at most one per cycle:

* JPEG mode, position 0: the DC difference ``d = DC - previous DC`` (the predictor restarts at 0 after
  each image's last block) -> symbol ``SSSS(d)`` for the DC table plus ``SSSS`` signed extra bits.
* a nonzero value after ``r`` zeros -> ``(r << F) | SSSS`` plus its extra bits (``F`` = 4 in JPEG mode,
  5 in lossless mode); signed extra bits (negative values as the low bits of ``v - 1``), or in lossless
  unsigned mode ``SSSS - 1`` bits without the implied leading 1.
* the 16th zero of a run -> ZRL (``15 << F``) at once: the buffer sends nothing after the block's last
  nonzero value, so every zero it sends is followed by a nonzero one and the ZRL is always due.
* after the block's final entry, if ``eob`` -> EOB (symbol 0). That is the only case of two symbols for
  one entry, so it costs one extra cycle, and only when the block ends before position 63: a block
  takes ``length + 1 <= 64`` cycles, or 64 when its last position is nonzero.

:class:`HuffmanCoder` (``golden.entropy.huffman_encode``) looks each symbol up in a loadable 512-entry
table of ``(code, length)`` (T.81's EHUFCO/EHUFSI) and emits one word ``(code << extra_len) | extra``
of ``length + extra_len <= 32`` bits per cycle. Table addresses: JPEG mode AC symbols ``0..255``, DC
symbols ``256 + SSSS``; lossless mode the 9-bit symbol ``(RRRR << 5) | SSSS`` (``0..511``). One table
RAM serves both classes because the coder sends one symbol per cycle of either class. A looked-up
length of 0 (symbol missing from the table) sets the sticky ``error`` output, as golden raises an error.

Colour images (``components = 3`` / ``tables = 2``, T.81 A.2.3 interleaved scans): the run-length coder keeps
one DC predictor per component (``golden.jpeg.dc_differences``), the component of each entry given by its
``comp`` input, and tags each symbol with its table set ``tset`` (0 for component 0, the luminance; 1 for
Cb and Cr); the Huffman coder then holds two 512-entry tables (1024 words) and looks the symbol up in table
set ``tset`` (``golden.entropy.huffman_encode`` with ``index`` = table set).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import entropy

from .zigzag import VALUE_BITS, entry_layout

__all__ = ["RunLengthCoder", "HuffmanCoder", "symbol_layout", "word_layout", "table_entry_layout",
           "HUFFMAN_DEPTH", "DC_BASE", "EXTRA_BITS", "WORD_BITS"]

EXTRA_BITS = 16        # lossless SSSS <= 16; JPEG DC <= 11, AC <= 10
SIZE_BITS = 5
SYMBOL_BITS = 9
CODE_BITS = entropy.MAX_CODE_LENGTH
WORD_BITS = CODE_BITS + EXTRA_BITS   # 32
HUFFMAN_DEPTH = 512
DC_BASE = 256          # JPEG mode: DC symbol s lives at table address DC_BASE + s


def symbol_layout(tables: int = 1) -> data.StructLayout:
    """``{symbol, dc, extra, extra_len, last}``, plus ``tset`` (the Huffman table set) when ``tables = 2``."""
    fields = {"symbol": unsigned(SYMBOL_BITS), "dc": 1, "extra": unsigned(EXTRA_BITS),
              "extra_len": unsigned(SIZE_BITS), "last": 1}
    if tables == 2:
        fields["tset"] = 1
    return data.StructLayout(fields)


def word_layout() -> data.StructLayout:
    return data.StructLayout({"bits": unsigned(WORD_BITS), "length": unsigned(6), "last": 1})


def table_entry_layout() -> data.StructLayout:
    return data.StructLayout({"code": unsigned(CODE_BITS), "length": unsigned(SIZE_BITS)})


def magnitude_category(m: Module, mag, name: str) -> Signal:
    """SSSS: the bit length of the unsigned ``mag`` (a priority encoder)."""
    size = Signal(unsigned(SIZE_BITS), name=name)
    for i in range(len(mag)):
        with m.If(mag[i]):
            m.d.comb += size.eq(i + 1)  # later (higher) bits win
    return size


class RunLengthCoder(wiring.Component):
    """Scan-order entries -> (symbol, extra bits), one symbol per cycle (see the module docstring).

    Ports
    -----
    inp : In(stream)   ``hw.jpeg.zigzag.entry_layout``
    out : Out(stream)  ``{symbol: 9, dc, extra: 16, extra_len: 5, last}``: ``dc`` selects the DC table;
                       ``last`` on the final symbol of an image
    jpeg : In(1)       1: JPEG (DC difference, F = 4, signed extra bits); 0: lossless (F = 5)
    signed_extra : In(1)  lossless mode: signed extra bits (else unsigned). Change both only while idle.
    comp : In(2)       only with ``components = 3``: the component (0, 1, 2) of the entry offered on ``inp``;
                       it picks the DC predictor and the output's ``tset`` (``comp != 0``)

    ``components``: 1 (one DC predictor) or 3 (one per component, and ``tset`` on the output symbols).
    """

    def __init__(self, components: int = 1):
        if components not in (1, 3):
            raise ValueError(f"RunLengthCoder components must be 1 or 3, got {components!r}")
        self.components = components
        ports = {
            "inp": In(stream.Signature(entry_layout())),
            "out": Out(stream.Signature(symbol_layout(1 if components == 1 else 2))),
            "jpeg": In(1),
            "signed_extra": In(1),
        }
        if components == 3:
            ports["comp"] = In(2)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += advance.eq(~self.out.valid | self.out.ready)
        eob_pending = Signal()
        eob_image_last = Signal()
        m.d.comb += self.inp.ready.eq(advance & ~eob_pending)
        consume = Signal()
        m.d.comb += consume.eq(self.inp.valid & self.inp.ready)

        entry = self.inp.payload
        v = entry.data
        preds = [Signal(signed(VALUE_BITS), name=f"pred{c}") for c in range(self.components)]
        if self.components == 1:
            pred = preds[0]
        else:   # the predictor of this entry's component (a continuous select: see hw.jpeg.lut)
            pred = Signal(signed(VALUE_BITS))
            m.d.comb += pred.eq(Mux(self.comp == 2, preds[2], Mux(self.comp == 1, preds[1], preds[0])))
        run = Signal(4)
        is_dc = Signal()
        m.d.comb += is_dc.eq(self.jpeg & entry.first)
        val = Signal(signed(VALUE_BITS + 1))
        m.d.comb += val.eq(Mux(is_dc, v - pred, v))
        mag = Signal(unsigned(VALUE_BITS))
        m.d.comb += mag.eq(Mux(val < 0, -val, val))
        size = magnitude_category(m, mag, "size")

        # extra bits: signed rule sends the low SSSS bits of v (v > 0) or v - 1 (v < 0); the unsigned
        # rule drops the leading 1 (SSSS - 1 bits). Masked here so the Huffman stage can just OR them in.
        signed_rule = Signal()
        m.d.comb += signed_rule.eq(self.jpeg | self.signed_extra)
        extra_len = Signal(unsigned(SIZE_BITS))
        m.d.comb += extra_len.eq(Mux(signed_rule | (size == 0), size, size - 1))
        src = Signal(signed(VALUE_BITS + 2))
        m.d.comb += src.eq(Mux(signed_rule & (val < 0), val - 1, val))
        mask = Signal(unsigned(EXTRA_BITS + 1))
        m.d.comb += mask.eq((Const(1, EXTRA_BITS + 1) << extra_len) - 1)
        extra = Signal(unsigned(EXTRA_BITS))
        m.d.comb += extra.eq(src[:EXTRA_BITS] & mask[:EXTRA_BITS])

        ac_symbol = Signal(unsigned(SYMBOL_BITS))
        zrl = Signal(unsigned(SYMBOL_BITS))
        m.d.comb += [
            ac_symbol.eq(Mux(self.jpeg, Cat(size[:4], run), Cat(size, run))),
            zrl.eq(Mux(self.jpeg, entropy.ZRL_RUN << 4, entropy.ZRL_RUN << 5)),
        ]

        layout = self.out.payload.shape()
        sym = Signal(layout)
        if self.components == 3:
            m.d.comb += sym.tset.eq(self.comp != 0)
            eob_tset = Signal()
        emit = Signal()   # this entry produces a symbol of its own (DC, nonzero value or ZRL)
        m.d.comb += emit.eq(is_dc | (v != 0) | (run == 15))
        with m.If(is_dc):
            m.d.comb += [sym.symbol.eq(size), sym.dc.eq(1), sym.extra.eq(extra), sym.extra_len.eq(extra_len)]
        with m.Elif(v != 0):
            m.d.comb += [sym.symbol.eq(ac_symbol), sym.extra.eq(extra), sym.extra_len.eq(extra_len)]
        with m.Elif(run == 15):
            m.d.comb += sym.symbol.eq(zrl)
        # else: no symbol of its own; the EOB below (symbol 0, no extra bits) is what sym holds
        block_end = Signal()
        m.d.comb += block_end.eq(entry.last & ~(emit & entry.eob))
        m.d.comb += sym.last.eq(block_end & entry.image_last)

        with m.If(consume):
            # one symbol leaves now: the entry's own, or (for a silent final entry) the EOB; an EOB that
            # follows a symbol of this entry waits one cycle
            m.d.sync += [self.out.valid.eq(emit | (entry.last & entry.eob)), self.out.payload.eq(sym)]
            with m.If(emit & entry.last & entry.eob):
                m.d.sync += [eob_pending.eq(1), eob_image_last.eq(entry.image_last)]
                if self.components == 3:
                    m.d.sync += eob_tset.eq(sym.tset)
            with m.If(is_dc):
                if self.components == 1:
                    m.d.sync += pred.eq(v)
                else:
                    for c in range(3):
                        with m.If(self.comp == c):
                            m.d.sync += preds[c].eq(v)
            with m.If((v != 0) | (run == 15) | is_dc):
                m.d.sync += run.eq(0)
            with m.Else():
                m.d.sync += run.eq(run + 1)
            with m.If(entry.last):
                m.d.sync += run.eq(0)
                with m.If(entry.image_last):
                    m.d.sync += [p.eq(0) for p in preds]
        with m.Elif(advance & eob_pending):
            # EOB: symbol 0, no extra bits
            m.d.sync += [self.out.valid.eq(1), self.out.payload.eq(0), self.out.payload.last.eq(eob_image_last),
                         eob_pending.eq(0)]
            if self.components == 3:
                m.d.sync += self.out.payload.tset.eq(eob_tset)
        with m.Elif(advance):
            m.d.sync += self.out.valid.eq(0)
        return m


def jpeg_table_image(dc: entropy.HuffmanTable, ac: entropy.HuffmanTable) -> list[tuple[int, int]]:
    """The 512 (code, length) entries of the JPEG-mode table RAM: AC at 0..255, DC at 256 + SSSS."""
    out = [(0, 0)] * HUFFMAN_DEPTH
    for base, table, n in ((0, ac, 256), (DC_BASE, dc, 16)):
        lengths = table.lengths(n)
        for s in range(n):
            if lengths[s]:
                out[base + s] = (int(table.ehufco[s]), int(lengths[s]))
    return out


def lossless_table_image(table: entropy.HuffmanTable) -> list[tuple[int, int]]:
    """The 512 (code, length) entries of the lossless-mode table RAM, addressed by the 9-bit symbol."""
    lengths = table.lengths(HUFFMAN_DEPTH)
    return [(int(table.ehufco[s]) if lengths[s] else 0, int(lengths[s])) for s in range(HUFFMAN_DEPTH)]


class HuffmanCoder(wiring.Component):
    """Symbols -> packed words with a loadable code table (initialised to the T.81 K.3 luminance tables,
    and with ``tables = 2`` the chrominance ones as table set 1).

    Ports
    -----
    inp : In(stream)    ``symbol_layout(tables)``
    out : Out(stream)   ``{bits: 32, length: 6, last}``: ``bits`` right-aligned, ``length`` of them
    tbl_we, tbl_addr, tbl_code, tbl_len : table write port (address 0..511; length 0 = no code).
                        Write only while no symbol is in flight. With ``tables = 2`` the address has 10
                        bits, ``tbl_addr[9]`` the table set.
    error : Out(1)      sticky: a symbol without a code was looked up (cleared by a table write)

    ``tables``: 1 (512 words) or 2 (two table sets, 1024 words, picked per symbol by its ``tset``).
    """

    def __init__(self, tables: int = 1):
        if tables not in (1, 2):
            raise ValueError(f"HuffmanCoder tables must be 1 or 2, got {tables!r}")
        self.tables = tables
        super().__init__({
            "inp": In(stream.Signature(symbol_layout(tables))),
            "out": Out(stream.Signature(word_layout())),
            "tbl_we": In(1),
            "tbl_addr": In(unsigned(SYMBOL_BITS + tables - 1)),
            "tbl_code": In(unsigned(CODE_BITS)),
            "tbl_len": In(unsigned(SIZE_BITS)),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        layout = table_entry_layout()
        std = [(entropy.STD_DC_LUMINANCE, entropy.STD_AC_LUMINANCE),
               (entropy.STD_DC_CHROMINANCE, entropy.STD_AC_CHROMINANCE)][:self.tables]
        init = [c | (n << CODE_BITS) for dc, ac in std for c, n in jpeg_table_image(dc, ac)]
        table = Memory(shape=unsigned(CODE_BITS + SIZE_BITS), depth=HUFFMAN_DEPTH * self.tables, init=init)
        m.submodules.table = table
        wp = table.write_port()
        rp = table.read_port()
        m.d.comb += [wp.en.eq(self.tbl_we), wp.addr.eq(self.tbl_addr),
                     wp.data.eq(Cat(self.tbl_code, self.tbl_len))]

        advance = Signal()
        m.d.comb += advance.eq(~self.out.valid | self.out.ready)
        m.d.comb += self.inp.ready.eq(advance)

        # stage 1: the extra bits wait while the RAM reads (code, length)
        s1_valid = Signal()
        s1 = Signal(symbol_layout(self.tables))
        sym = self.inp.payload
        addr = Mux(sym.dc, Cat(sym.symbol[:8], 1), sym.symbol)
        m.d.comb += [rp.addr.eq(addr if self.tables == 1 else Cat(addr, sym.tset)), rp.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(self.inp.valid), s1.eq(sym)]

        # stage 2: code, then the extra bits, right-aligned in one word
        entry = Signal(layout)
        m.d.comb += entry.eq(rp.data)
        with m.If(advance):
            m.d.sync += [
                self.out.valid.eq(s1_valid),
                self.out.payload.bits.eq((entry.code << s1.extra_len) | s1.extra),
                self.out.payload.length.eq(entry.length + s1.extra_len),
                self.out.payload.last.eq(s1.last),
            ]
        with m.If(self.tbl_we):
            m.d.sync += self.error.eq(0)
        with m.Elif(advance & s1_valid & (entry.length == 0)):
            m.d.sync += self.error.eq(1)
        return m
