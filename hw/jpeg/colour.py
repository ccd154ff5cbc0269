"""The colour stage, bit-exact with ``golden.jpeg.colour_stage``: RGB pixels of an MCU -> its Y, Cb, Cr blocks.

Input: the pixels of an image padded to whole MCUs by edge replication, MCU after MCU in raster order,
pixels in raster order inside each MCU (8 x 8 for 4:4:4, 16 x 16 for 4:2:0): ``golden.jpeg.mcu_pixels``.
Output: the MCU's blocks in interleaved scan order, samples in raster order inside each block: 4:4:4
``Y Cb Cr`` (192 samples per 64 pixels), 4:2:0 ``Y0 Y1 Y2 Y3 Cb Cr`` (384 samples per 256 pixels), which is
the encoder's YCbCr sample stream (``golden.jpeg.mcu_order`` of ``golden.jpeg.component_planes``).

Arithmetic (``golden.jpeg.rgb_to_ycbcr``, libjpeg's ``rgb_ycc_convert``): ``Y = (19595 R + 38470 G + 7471 B
+ 2**15) >> 16``, ``Cb = (-11059 R - 21709 G + 32768 B + 128 * 2**16 + 2**15 - 1) >> 16``, ``Cr = (32768 R -
27439 G - 5329 B + 128 * 2**16 + 2**15 - 1) >> 16`` (:data:`golden.jpeg.RGB_TO_YCC`,
:data:`golden.jpeg.YCC_OFFSETS`; every result is 0..255, no clamp). 4:2:0 chroma:
``(a + b + c + d + 2) >> 2`` over each 2 x 2 cell of the converted Cb and Cr (``golden.jpeg.downsample_2x2``).

Shape (why):

* **Conversion**, one pixel per cycle: nine constant multiplies and three sums, registered once
  (stage 1); then the three results are written to the MCU buffer (stage 2). The stage-1 register never
  stalls: a pixel is only accepted when its bank has room.
* **4:2:0 averaging without a chroma frame buffer**: pixels arrive 16 to a row, so the two of a cell's row
  are adjacent: the even one waits in a register, the odd one completes a pair sum (9 bits). An even row
  keeps its 8 pair sums of Cb and of Cr in a line of registers; the odd row below adds its own pair sum
  and writes the rounded average. 16 pair-sum registers instead of a 64-entry accumulator.
* **MCU buffer**, ping-pong: Y 2 x 256 samples, Cb and Cr 2 x 64 each (three RAMs, each with one write
  and one read port: the three results of a pixel are written in one cycle). One bank fills while the
  reader sends the other, so the output runs at one sample per cycle without a bubble between MCUs and
  the input takes 1 pixel per 3 cycles (4:4:4) or 2 per 3 (4:2:0) on average, exactly what the
  one-sample-per-cycle encoder behind it consumes. A bank is full from its MCU's last write until its
  last read is issued.

Ports
-----
inp : In(stream)   ``{data: 24, last}``: ``R = data[0:8]``, ``G = data[8:16]``, ``B = data[16:24]``; ``last`` on
                   the image's final pixel (the last pixel of its last MCU)
out : Out(stream)  ``{data: 8, last}``: samples, ``last`` on the image's final sample
sampling : In(2)   ``hw.jpeg.encoder.SAMPLING_444`` (1) or ``SAMPLING_420`` (2). Change only while idle.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.jpeg import RGB_TO_YCC, YCC_OFFSETS, YCC_SHIFT

from .lut import bank_pulse

__all__ = ["ColourConverter", "rgb_layout", "sample_layout"]

SAMPLING_444, SAMPLING_420 = 1, 2   # hw.jpeg.encoder.SAMPLING_MODES (not imported: the encoder imports this)


def rgb_layout() -> data.StructLayout:
    return data.StructLayout({"data": unsigned(24), "last": 1})


def sample_layout() -> data.StructLayout:
    return data.StructLayout({"data": unsigned(8), "last": 1})


class ColourConverter(wiring.Component):
    """RGB MCU pixels -> interleaved Y/Cb/Cr blocks (see the module docstring). No parameters: the
    arithmetic is golden's."""

    def __init__(self):
        super().__init__({
            "inp": In(stream.Signature(rgb_layout())),
            "out": Out(stream.Signature(sample_layout())),
            "sampling": In(2),
        })

    def elaborate(self, platform):
        m = Module()
        is420 = Signal()
        m.d.comb += is420.eq(self.sampling == SAMPLING_420)

        ymem = Memory(shape=unsigned(8), depth=512, init=[])
        cbmem = Memory(shape=unsigned(8), depth=128, init=[])
        crmem = Memory(shape=unsigned(8), depth=128, init=[])
        m.submodules.ymem, m.submodules.cbmem, m.submodules.crmem = ymem, cbmem, crmem
        ywp, cbwp, crwp = ymem.write_port(), cbmem.write_port(), crmem.write_port()
        yrp, cbrp, crrp = ymem.read_port(), cbmem.read_port(), crmem.read_port()

        full = Signal(2)
        set_full = Signal(2)
        clr_full = Signal(2)
        image_last = Signal(2)

        # ---- stage 0: accept, convert ------------------------------------------------------------------
        wbank = Signal()
        k = Signal(8)                       # pixel position in the MCU
        k_end = Signal()
        m.d.comb += k_end.eq(Mux(is420, k == 255, k == 63))
        accept = Signal()
        m.d.comb += [self.inp.ready.eq(~full.bit_select(wbank, 1)), accept.eq(self.inp.valid & self.inp.ready)]
        px = self.inp.payload.data
        rgb = [px[0:8], px[8:16], px[16:24]]
        ycc = []
        for c in range(3):
            total = Signal(signed(26), name=f"sum{c}")
            m.d.comb += total.eq(sum(Const(int(RGB_TO_YCC[c][i]), signed(18)) * rgb[i] for i in range(3))
                                 + YCC_OFFSETS[c])
            value = Signal(unsigned(8), name=f"ycc{c}")
            m.d.comb += value.eq(total[YCC_SHIFT:YCC_SHIFT + 8])    # 0..255 by construction
            ycc.append(value)
        with m.If(accept):
            m.d.sync += [k.eq(Mux(k_end, 0, k + 1))]
            with m.If(k_end):
                m.d.sync += wbank.eq(~wbank)

        # ---- stage 1: the converted pixel and where it goes -------------------------------------------
        s_valid = Signal()
        s_y, s_cb, s_cr = Signal(8), Signal(8), Signal(8)
        s_k = Signal(8)
        s_bank = Signal()
        s_end = Signal()
        s_last = Signal()
        m.d.sync += s_valid.eq(accept)
        with m.If(accept):
            m.d.sync += [s_y.eq(ycc[0]), s_cb.eq(ycc[1]), s_cr.eq(ycc[2]), s_k.eq(k), s_bank.eq(wbank),
                         s_end.eq(k_end), s_last.eq(self.inp.payload.last)]

        # Y: 4:4:4 position k; 4:2:0 pixel (py, px) = (k[4:8], k[0:4]) -> block 2 (py >> 3) + (px >> 3),
        # offset 64 * block + 8 (py & 7) + (px & 7)
        y_off = Signal(8)
        m.d.comb += y_off.eq(Mux(is420, Cat(s_k[0:3], s_k[4:7], s_k[3], s_k[7]), s_k))
        m.d.comb += [ywp.en.eq(s_valid), ywp.addr.eq(Cat(y_off, s_bank)), ywp.data.eq(s_y)]

        # chroma: 4:4:4 written as is; 4:2:0 averaged over 2 x 2 (pair sums, a line of 8 per component)
        even_cb, even_cr = Signal(8), Signal(8)
        line_cb = [Signal(9, name=f"line_cb{i}") for i in range(8)]
        line_cr = [Signal(9, name=f"line_cr{i}") for i in range(8)]
        pair_cb, pair_cr = Signal(9), Signal(9)
        m.d.comb += [pair_cb.eq(even_cb + s_cb), pair_cr.eq(even_cr + s_cr)]
        cell = Signal(3)                    # px >> 1
        m.d.comb += cell.eq(s_k[1:4])
        above_cb, above_cr = Signal(9), Signal(9)
        m.d.comb += [above_cb.eq(Cat(*line_cb).word_select(cell, 9)),
                     above_cr.eq(Cat(*line_cr).word_select(cell, 9))]
        avg_cb, avg_cr = Signal(8), Signal(8)
        m.d.comb += [avg_cb.eq((above_cb + pair_cb + 2) >> 2), avg_cr.eq((above_cr + pair_cr + 2) >> 2)]
        odd_x, odd_y = s_k[0], s_k[4]
        with m.If(s_valid & is420):
            with m.If(~odd_x):
                m.d.sync += [even_cb.eq(s_cb), even_cr.eq(s_cr)]
            with m.Elif(~odd_y):
                for i in range(8):
                    with m.If(cell == i):
                        m.d.sync += [line_cb[i].eq(pair_cb), line_cr[i].eq(pair_cr)]
        c_off = Signal(6)                   # 4:2:0: chroma row py >> 1 = k[5:8], column px >> 1 = k[1:4]
        m.d.comb += c_off.eq(Mux(is420, Cat(s_k[1:4], s_k[5:8]), s_k[0:6]))
        c_we = Signal()
        m.d.comb += c_we.eq(s_valid & (~is420 | (odd_x & odd_y)))
        m.d.comb += [
            cbwp.en.eq(c_we), cbwp.addr.eq(Cat(c_off, s_bank)), cbwp.data.eq(Mux(is420, avg_cb, s_cb)),
            crwp.en.eq(c_we), crwp.addr.eq(Cat(c_off, s_bank)), crwp.data.eq(Mux(is420, avg_cr, s_cr)),
        ]
        with m.If(s_valid & s_end):
            for b in range(2):
                with m.If(s_bank == b):
                    m.d.sync += image_last[b].eq(s_last)

        # ---- read side: Y blocks, then Cb, then Cr ----------------------------------------------------
        rbank = Signal()
        j = Signal(9)                       # sample position in the MCU's output
        y_count = Signal(9)
        m.d.comb += y_count.eq(Mux(is420, 256, 64))
        j_end = Signal()
        m.d.comb += j_end.eq(j == Mux(is420, 383, 191))
        o_valid = Signal()
        issue = Signal()
        m.d.comb += issue.eq(full.bit_select(rbank, 1) & (~o_valid | self.out.ready))
        seg = Signal(2)                     # 0: Y, 1: Cb, 2: Cr
        m.d.comb += seg.eq(Mux(j < y_count, 0, Mux(j < y_count + 64, 1, 2)))
        c_j = Signal(6)
        m.d.comb += c_j.eq(Mux(seg == 1, j - y_count, j - y_count - 64))
        m.d.comb += [
            yrp.addr.eq(Cat(j[0:8], rbank)), yrp.en.eq(issue),
            cbrp.addr.eq(Cat(c_j, rbank)), cbrp.en.eq(issue),
            crrp.addr.eq(Cat(c_j, rbank)), crrp.en.eq(issue),
        ]
        o_seg = Signal(2)
        o_last = Signal()
        with m.If(issue):
            m.d.sync += [o_valid.eq(1), o_seg.eq(seg), o_last.eq(j_end & image_last.bit_select(rbank, 1)),
                         j.eq(Mux(j_end, 0, j + 1))]
            with m.If(j_end):
                m.d.sync += rbank.eq(~rbank)
        with m.Elif(self.out.ready):
            m.d.sync += o_valid.eq(0)

        m.d.comb += [set_full.eq(bank_pulse(s_valid & s_end, s_bank)), clr_full.eq(bank_pulse(issue & j_end, rbank))]
        m.d.sync += full.eq((full | set_full) & ~clr_full)
        m.d.comb += [
            self.out.valid.eq(o_valid),
            self.out.payload.data.eq(Mux(o_seg == 0, yrp.data, Mux(o_seg == 1, cbrp.data, crrp.data))),
            self.out.payload.last.eq(o_last),
        ]
        return m
