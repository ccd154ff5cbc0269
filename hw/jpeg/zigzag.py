"""The block buffer between the quantizer and the entropy coder: reorders to scan order, finds the EOB.

Scan order is zigzag (``golden.jpeg.ZIGZAG``) in JPEG mode and raster (the order of
``golden.lossless.to_blocks``) in lossless mode; the writer may deliver a block's 64 values in any order,
each tagged with its natural position ``index``.

Shape (why):

* **Two banks of 64 words** (one 128-word RAM): one bank fills while the coder reads the other, so the
  coder never waits for a whole block to arrive and the writer never waits for a whole block to leave.
* **End of block known in advance**: while a block is written, the writer tracks
  ``length = 1 + the last scan position holding a nonzero value`` (at least 1). The reader then sends
  only positions ``0 .. length-1``: the trailing zeros are never read, and the entry at ``length-1``
  carries ``last`` plus ``eob = (length < 64)``, i.e. whether an EOB symbol must follow. Knowing that
  every zero sent is followed by a nonzero lets the run-length coder emit ZRL as soon as 16 zeros are
  counted, which is what keeps it at one symbol per cycle. Position 0 is always sent (the JPEG DC; in
  lossless mode the value at 0 of an all-zero block, which the coder turns into just an EOB).
* The read port's output register is the reader's pipeline stage; a bank is released when its last
  read is *issued*, so a block of 64 occupies the reader for exactly 64 cycles.

Ports
-----
inp : In(stream)   ``{data: signed(17), index, block_last, image_last}``; ``block_last`` on the 64th
                   value of the block, ``image_last`` with it if the block ends an image
out : Out(stream)  ``{data: signed(17), first, last, eob, image_last}`` in scan order: ``first`` at
                   position 0, ``last`` on the block's final entry (position ``length-1``), ``eob`` and
                   ``image_last`` valid with ``last``
zigzag : In(1)     1: zigzag scan order (JPEG); 0: raster order (lossless). Change only while idle.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.jpeg import UNZIGZAG, ZIGZAG

from .lut import bank_pulse, const_lut

__all__ = ["ZigzagBuffer", "entry_layout", "VALUE_BITS"]

VALUE_BITS = 17  # lossless values: int16 (signed mode) or uint16 (unsigned mode)


def entry_layout() -> data.StructLayout:
    return data.StructLayout({"data": signed(VALUE_BITS), "first": 1, "last": 1, "eob": 1, "image_last": 1})


def value_layout() -> data.StructLayout:
    return data.StructLayout({"data": signed(VALUE_BITS), "index": unsigned(6), "block_last": 1, "image_last": 1})


def _lut(m: Module, table, sel, name: str) -> Signal:
    # continuous (hw.jpeg.lut): the read position p sits at 0 from reset to the first read, and a Switch's
    # `always @*` block would stay X on Icarus until p changes (X read address -> X DC value)
    return const_lut(m, table, sel, unsigned(6), name)


class ZigzagBuffer(wiring.Component):
    """Double-buffered 8x8 block buffer with scan-order read-out (see the module docstring)."""

    def __init__(self):
        super().__init__({
            "inp": In(stream.Signature(value_layout())),
            "out": Out(stream.Signature(entry_layout())),
            "zigzag": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        mem = Memory(shape=signed(VALUE_BITS), depth=128, init=[])
        m.submodules.mem = mem
        wp = mem.write_port()
        rp = mem.read_port()

        full = Signal(2)
        set_full = Signal(2)
        clr_full = Signal(2)
        length = [Signal(range(65), name=f"length{b}") for b in range(2)]
        image_last = Signal(2)

        # ---- write side ------------------------------------------------------------------------
        wbank = Signal()
        run_length = Signal(range(65), init=1)  # 1 + last nonzero scan position so far
        accept = Signal()
        m.d.comb += self.inp.ready.eq(~full.bit_select(wbank, 1))
        m.d.comb += accept.eq(self.inp.valid & self.inp.ready)
        index = self.inp.payload.index
        m.d.comb += [wp.addr.eq(Cat(index, wbank)), wp.data.eq(self.inp.payload.data), wp.en.eq(accept)]

        pos = Signal(unsigned(6))
        m.d.comb += pos.eq(Mux(self.zigzag, _lut(m, UNZIGZAG, index, "unzigzag_rom"), index))
        new_length = Signal(range(65))
        m.d.comb += new_length.eq(Mux((self.inp.payload.data != 0) & (pos >= run_length), pos + 1, run_length))
        with m.If(accept):
            m.d.sync += run_length.eq(new_length)
            with m.If(self.inp.payload.block_last):
                m.d.sync += [run_length.eq(1), wbank.eq(~wbank)]
                for b in range(2):
                    with m.If(wbank == b):
                        m.d.sync += [length[b].eq(new_length), image_last[b].eq(self.inp.payload.image_last)]

        # ---- read side -------------------------------------------------------------------------
        rbank = Signal()
        p = Signal(range(64))
        o_valid = Signal()
        issue = Signal()
        r_length = Signal(range(65))
        m.d.comb += r_length.eq(Mux(rbank, length[1], length[0]))
        m.d.comb += issue.eq(full.bit_select(rbank, 1) & (~o_valid | self.out.ready))
        m.d.comb += [
            rp.addr.eq(Cat(Mux(self.zigzag, _lut(m, ZIGZAG, p, "zigzag_rom"), p), rbank)),
            rp.en.eq(issue),
        ]
        is_last = Signal()
        m.d.comb += is_last.eq(p == r_length - 1)
        o = Signal(entry_layout())  # the entry's flags, registered with the read (data comes from the RAM)
        with m.If(issue):
            m.d.sync += [
                o_valid.eq(1),
                o.first.eq(p == 0),
                o.last.eq(is_last),
                o.eob.eq(r_length != 64),
                o.image_last.eq(image_last.bit_select(rbank, 1)),
                p.eq(p + 1),
            ]
            with m.If(is_last):
                m.d.sync += [p.eq(0), rbank.eq(~rbank)]
        with m.Elif(self.out.ready):
            m.d.sync += o_valid.eq(0)

        m.d.comb += [set_full.eq(bank_pulse(accept & self.inp.payload.block_last, wbank)),
                     clr_full.eq(bank_pulse(issue & is_last, rbank))]
        m.d.sync += full.eq((full | set_full) & ~clr_full)
        m.d.comb += [
            self.out.valid.eq(o_valid),
            self.out.payload.data.eq(rp.data),
            self.out.payload.first.eq(o.first),
            self.out.payload.last.eq(o.last),
            self.out.payload.eob.eq(o.eob),
            self.out.payload.image_last.eq(o.image_last),
        ]
        return m
