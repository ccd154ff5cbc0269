"""The performance counters: one ``bits``-wide accumulator per name, never reset by a command (the sync domain's
reset clears them), and the cycle classes.

Each cycle, counter ``n`` adds its increment ``inc[n]`` (modulo ``2 ** bits``) when its enable is high: ``en``
for most counters, ``en_free`` for the ``free`` ones (the engine's ``enc_*`` counters, which run through
``nocount`` commands). The six class counters (``CLASS_COUNTERS``) take no increment input: ``cycles`` adds 1 and
exactly one of the other five adds 1, by priority of the class inputs: ``busy`` if ``cls_busy``, else
``stall_dram`` if ``cls_dram``, else ``stall_fetch`` if ``cls_fetch``, else ``stall_drain`` if ``cls_drain``, else
``stall_control``. A counter's output is its register: an increment shows in the cycle after it is counted.

The engine's counters (``hw.engine.COUNTERS``; 48 bits, never reset; ``nocount`` commands freeze them, except the
``enc_*`` counters: the encode unit works through verification dumps). Every running cycle is exactly one of:
``busy`` (a beat entered the MAC array or the max unit), ``stall_dram`` (waiting for weights, or a LOAD/STORE
moving data), ``stall_fetch`` (the window loader is behind: feature-buffer read bandwidth; the banking itself
never conflicts), ``stall_drain`` (the array's output stage is full or being emptied at the end of a layer),
``stall_control`` (descriptor fetch and decode, setup, waiting for the encode unit). Beside the classes:
``enc_active`` (encode unit busy), ``enc_overlap`` (busy while the sequencer executes another command: the two
stages overlapping), ``enc_wait`` (the sequencer held for the unit), ``enc_samples``, ``enc_bits`` (coded bits),
``enc_out_words`` (DRAM words it wrote; not in ``dram_write_words``, which the cost model charges as DRAM
traffic: these go to the radio), ``enc_fb_read_words``, ``enc_stall_in`` / ``enc_stall_out`` (starved of buffer
reads / waiting for the DRAM port); ``wdec_active`` (cycles any weight decoder is busy), ``wdec_weights``
(weights restored, all lanes), ``wdec_bits`` (stream bits decoded, all lanes), ``wdec_stall_in`` /
``wdec_stall_out`` (lane-cycles: summed over the twelve decoders, cycles each was starved of stream words / held
with a weight ready because its bank is not free yet or it finished its part of the bank before the other
lanes).

Ports
-----
en : In(1)                   count this cycle (the counters not in ``free``, the class counters included)
en_free : In(1)              count this cycle (the ``free`` counters)
cls_busy, cls_dram, cls_fetch, cls_drain : In(1)   the cycle's classes (several may be high: priority above)
inc : In(StructLayout)       ``inc[n]``: this cycle's increment of each counter ``n`` that is not a class
                             counter (``bits`` wide)
ctr : Out(StructLayout)      ``ctr[n]``: every counter's value (``bits`` wide)
"""

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

CLASS_COUNTERS = ("cycles", "busy", "stall_dram", "stall_fetch", "stall_drain", "stall_control")
"""The counters the class inputs drive (``cycles``: every counted cycle; the others: one per cycle)."""


# the engine's counters (module docstring)
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


class PerfCounters(wiring.Component):
    """The performance counters (module docstring). ``names``: the counters (distinct Python identifiers, all of
    ``CLASS_COUNTERS`` among them); ``bits``: their width, 1..64; ``free``: the names counted on ``en_free``
    (none of the class counters)."""

    def __init__(self, names, bits: int = 48, free=()):
        names, free = tuple(names), tuple(free)
        if not all(isinstance(n, str) and n.isidentifier() for n in names) or len(set(names)) != len(names):
            raise ValueError(f"PerfCounters names must be distinct identifiers, got {names!r}")
        missing = [n for n in CLASS_COUNTERS if n not in names]
        if missing:
            raise ValueError(f"PerfCounters names must include the class counters {CLASS_COUNTERS}, "
                             f"missing {missing!r}")
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 64:
            raise ValueError(f"PerfCounters bits must be an integer in 1..64, got {bits!r}")
        bad = [n for n in free if n not in names or n in CLASS_COUNTERS]
        if bad or len(set(free)) != len(free):
            raise ValueError(f"PerfCounters free must be distinct names among {names!r} other than the class "
                             f"counters, got {free!r}")
        self.names, self.bits, self.free = names, bits, free
        self.inc_names = tuple(n for n in names if n not in CLASS_COUNTERS)
        super().__init__({
            "en": In(1), "en_free": In(1),
            "cls_busy": In(1), "cls_dram": In(1), "cls_fetch": In(1), "cls_drain": In(1),
            "inc": In(data.StructLayout({n: bits for n in self.inc_names})),
            "ctr": Out(data.StructLayout({n: bits for n in names})),
        })

    def elaborate(self, platform):
        m = Module()
        busy, dram, fetch, drain = self.cls_busy, self.cls_dram, self.cls_fetch, self.cls_drain
        inc = {n: self.inc[n] for n in self.inc_names}
        inc.update({
            "cycles": 1,
            "busy": busy,
            "stall_dram": ~busy & dram,
            "stall_fetch": ~busy & ~dram & fetch,
            "stall_drain": ~busy & ~dram & ~fetch & drain,
            "stall_control": ~busy & ~dram & ~fetch & ~drain,
        })
        for n in self.names:
            with m.If(self.en_free if n in self.free else self.en):
                m.d.sync += self.ctr[n].eq(self.ctr[n] + inc[n])
        return m
