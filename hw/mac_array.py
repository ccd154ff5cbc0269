"""The 12 x 12 array of 16-bit MACs with its requantize / ReLU output stage.

Dataflow: output-stationary outer product
-----------------------------------------
Each accepted input beat carries ``ROWS`` weights ``w[i]`` (one per output channel) and ``COLS``
activations ``a[j]`` (one per output pixel); PE (i, j) accumulates ``w[i] * a[j]``. With ``w`` = the
weights of 12 output channels at one im2col index and ``a`` = the activations of 12 output pixels at
the same index, ``K`` beats compute a 12 x 12 tile of outputs, where ``K`` is the dot-product length
(C_in x k x k for a convolution). All 144 MACs work on every accepted beat.

Rows are output channels and columns output pixels so that a drained row is one channel's values for
12 consecutive pixels: contiguous in a CHW feature map, written in one cycle without bank conflicts.

Drain while the next tile computes
----------------------------------
The beat flagged ``last`` closes a tile. One cycle later the 144 accumulators are copied into a shadow
bank, in the same cycle in which the PEs start the next tile (``fresh``), so computing never waits for
the drain. The shadow bank leaves as ``ROWS`` output beats of ``COLS`` int16 values, one row per cycle:
``requantize(acc + bias[i], shift, relu)`` (bias per row, i.e. per output channel) exactly as
``golden.fixedpoint.requantize``.
A tile therefore costs ``K`` cycles of the array, and the array is never idle as long as
``K >= ROWS + 1`` (the capture cycle plus one cycle per row) and the output is ready; for shorter tiles
(or output back-pressure) ``inp.ready`` drops on a ``last`` beat until the shadow bank is free again.
Every convolution and FC layer of the target networks has ``K >= 27``; only the element-wise
operations mapped onto the array (residual add, K = 2) are drain-bound, at 12 outputs per cycle.

``bias``, ``shift`` and ``relu`` are sampled together with the accepted ``last`` beat of a tile.
``inp.ready`` depends on ``inp.payload.last`` (never on anything downstream combinationally): it is
low only for a ``last`` beat that would find the shadow bank still occupied.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fixedpoint import ACC_BITS, ACT_BITS, BIAS_BITS, SHIFT_BITS, WEIGHT_BITS

from .pe import MacPE
from .requant import requantize, round_const

__all__ = ["MacArray", "input_layout", "output_layout"]


def input_layout(rows: int, cols: int) -> data.StructLayout:
    return data.StructLayout({
        "w": data.ArrayLayout(signed(WEIGHT_BITS), rows),
        "a": data.ArrayLayout(signed(ACT_BITS), cols),
        "last": 1,
    })


def output_layout(rows: int, cols: int) -> data.StructLayout:
    return data.StructLayout({
        "data": data.ArrayLayout(signed(ACT_BITS), cols),
        "row": range(rows),
    })


class MacArray(wiring.Component):
    """``rows`` x ``cols`` output-stationary MAC array (12 x 12 = 144 MACs by default).

    Ports
    -----
    inp : In(stream)     payload ``{w: rows x int16, a: cols x int16, last}``
    bias : In(rows x signed(BIAS_BITS))   per-row bias in accumulator scale, sampled with ``last``
    shift : In(SHIFT_BITS)                requantization shift, sampled with ``last``
    relu : In(1)                          apply ReLU, sampled with ``last``
    clamp_en, clamp : In(1), In(15)       ReLU6: at most ``clamp`` after the ReLU, sampled with ``last``
    out : Out(stream)    payload ``{data: cols x int16, row}``: one output row per beat, rows 0..rows-1
    busy : Out(1)        a tile is being accumulated or drained
    """

    def __init__(self, rows: int = 12, cols: int = 12):
        for name, value in (("rows", rows), ("cols", cols)):
            if not isinstance(value, int) or not 1 <= value <= 64:
                raise ValueError(f"MacArray {name} must be an integer in 1..64, got {value!r}")
        self.rows = rows
        self.cols = cols
        super().__init__({
            "inp": In(stream.Signature(input_layout(rows, cols))),
            "bias": In(data.ArrayLayout(signed(BIAS_BITS), rows)),
            "shift": In(unsigned(SHIFT_BITS)),
            "relu": In(1),
            "clamp_en": In(1),
            "clamp": In(ACT_BITS - 1),
            "out": Out(stream.Signature(output_layout(rows, cols))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.rows, self.cols

        accept = Signal()
        m.d.comb += accept.eq(self.inp.valid & self.inp.ready)

        # --- the PEs -------------------------------------------------------------------------
        # `fresh` is high for the first beat after a `last` (and after reset): the PEs restart their
        # accumulators instead of a separate clear cycle.
        fresh = Signal(init=1)
        with m.If(accept):
            m.d.sync += fresh.eq(self.inp.payload.last)
        pes = [[MacPE() for _ in range(cols)] for _ in range(rows)]
        for i in range(rows):
            for j in range(cols):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.w.eq(self.inp.payload.w[i]),
                    pe.a.eq(self.inp.payload.a[j]),
                    pe.en.eq(accept),
                    pe.fresh.eq(fresh),
                ]

        # --- capture into the shadow bank, one cycle after the accepted `last` ----------------
        # In that cycle the accumulators still hold the finished tile (a `fresh` beat overwrites them
        # only at the end of the cycle), so the copy needs no extra stall.
        capture = Signal()
        m.d.sync += capture.eq(accept & self.inp.payload.last)

        pend_bias = Signal.like(self.bias)
        pend_shift = Signal.like(self.shift)
        pend_relu = Signal()
        pend_clamp_en, pend_clamp = Signal(), Signal.like(self.clamp)
        with m.If(accept & self.inp.payload.last):
            m.d.sync += [pend_bias.eq(self.bias), pend_shift.eq(self.shift), pend_relu.eq(self.relu),
                         pend_clamp_en.eq(self.clamp_en), pend_clamp.eq(self.clamp)]

        shadow = [[Signal(signed(ACC_BITS), name=f"shadow_{i}_{j}") for j in range(cols)]
                  for i in range(rows)]
        drain_bias = Signal.like(self.bias)
        drain_shift = Signal.like(self.shift)
        drain_relu = Signal()
        drain_clamp_en, drain_clamp = Signal(), Signal.like(self.clamp)

        # rows of the shadow bank still to be sent; `row` is the next one
        rows_left = Signal(range(rows + 1))
        row = Signal(range(rows))

        # --- output register ----------------------------------------------------------------
        # One row per cycle leaves through a registered stage: row select, bias add, rounding shift,
        # saturation and ReLU, with out.valid/payload driven from flip-flops only.
        load_out = Signal()
        m.d.comb += load_out.eq((rows_left != 0) & (~self.out.valid | self.out.ready))

        with m.If(self.out.ready & self.out.valid):
            m.d.sync += self.out.valid.eq(0)

        row_values = Signal(data.ArrayLayout(signed(ACC_BITS), cols))
        row_bias = Signal(signed(BIAS_BITS))
        with m.Switch(row):
            for i in range(rows):
                with m.Case(i):
                    m.d.comb += [row_values[j].eq(shadow[i][j]) for j in range(cols)]
                    m.d.comb += row_bias.eq(drain_bias[i])

        rnd = round_const(m, drain_shift)
        for j in range(cols):
            q = requantize(m, row_values[j] + row_bias, rnd, drain_shift, drain_relu,
                           max(ACC_BITS, BIAS_BITS) + 1, name=f"rq{j}", clamp_en=drain_clamp_en, clamp=drain_clamp)
            with m.If(load_out):
                m.d.sync += self.out.payload.data[j].eq(q)

        with m.If(load_out):
            m.d.sync += [
                self.out.valid.eq(1),
                self.out.payload.row.eq(row),
                row.eq(Mux(row == rows - 1, 0, row + 1)),
            ]

        # --- shadow bookkeeping -------------------------------------------------------------
        with m.If(capture):
            # ready logic below guarantees the bank is free (or frees in this very cycle)
            m.d.sync += [shadow[i][j].eq(pes[i][j].acc) for i in range(rows) for j in range(cols)]
            m.d.sync += [
                drain_bias.eq(pend_bias), drain_shift.eq(pend_shift), drain_relu.eq(pend_relu),
                drain_clamp_en.eq(pend_clamp_en), drain_clamp.eq(pend_clamp),
                rows_left.eq(rows), row.eq(0),
            ]
        with m.Elif(load_out):
            m.d.sync += rows_left.eq(rows_left - 1)

        # The shadow bank is free for a capture in the next cycle if nothing is pending and at most
        # the last row is leaving now.
        free_next = Signal()
        m.d.comb += free_next.eq(~capture & ((rows_left == 0) | ((rows_left == 1) & load_out)))
        m.d.comb += self.inp.ready.eq(~self.inp.payload.last | free_next)

        m.d.comb += self.busy.eq(~fresh | capture | (rows_left != 0) | self.out.valid)
        return m
