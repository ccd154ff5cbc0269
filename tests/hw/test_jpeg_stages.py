"""Each stage of the RTL feature encoder (``hw.jpeg``) against its golden stage, in Amaranth's own simulator
(Glasgow style: ``rtl_x(case) == ref_x(case)``), with random input gaps and output back-pressure. The whole
encoder runs in Verilator (test_encoder_cocotb.py); one small image per mode runs here too.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden import entropy, jpeg, lossless
from golden.errors import UserError
from hw.jpeg import host
from hw.jpeg.bitpacker import BitPacker
from hw.jpeg.dct import Dct2d
from hw.jpeg.encoder import Encoder
from hw.jpeg.entropy import HuffmanCoder, RunLengthCoder, jpeg_table_image, lossless_table_image
from hw.jpeg.quantizer import Quantizer
from hw.jpeg.zigzag import ZigzagBuffer
from sim.amaranth_streams import stream_sim


def count(n):
    return lambda outs: len(outs) >= n


# ---- DCT -------------------------------------------------------------------------------------------


def dct_cases(rng: np.random.Generator) -> np.ndarray:
    checker = np.where(np.indices((8, 8)).sum(0) % 2, 127, -128)
    stripes = np.where(np.arange(8)[None, :] % 2, 127, -128).repeat(8, 0)
    fixed = [np.full((8, 8), -128), np.full((8, 8), 127), checker, -1 - checker, stripes, stripes.T,
             np.zeros((8, 8))]
    rand = rng.integers(-128, 128, size=(8, 8, 8))
    return np.concatenate([np.array(fixed), rand]).astype(np.int64)


def rtl_dct(blocks: np.ndarray, gap=0.0, stall=0.0, seed=0) -> tuple[np.ndarray, list[dict]]:
    inputs = [{"data": int(s), "last": int(b == len(blocks) - 1 and k == 63)}
              for b, blk in enumerate(blocks) for k, s in enumerate(blk.reshape(64))]
    outs, _ = stream_sim(Dct2d(), inputs, count(64 * len(blocks)), gap=gap, stall=stall, seed=seed)
    coeffs = np.zeros((len(blocks), 64), dtype=np.int64)
    for n, o in enumerate(outs):
        coeffs[n // 64, o["index"]] = o["data"]
    return coeffs.reshape(-1, 8, 8), outs


def test_dct_matches_golden():
    blocks = dct_cases(np.random.default_rng(1))
    got, outs = rtl_dct(blocks)
    assert np.array_equal(got, jpeg.dct2_int(blocks))
    # column order: index 8v + u with u the slow counter; block_last on the 64th, image_last on the last block
    assert [o["index"] for o in outs[:16]] == [8 * v + u for u in range(2) for v in range(8)]
    assert [n for n, o in enumerate(outs) if o["block_last"]] == [64 * b + 63 for b in range(len(blocks))]
    assert all(o["image_last"] == (n >= 64 * (len(blocks) - 1)) for n, o in enumerate(outs))


def test_dct_with_gaps_and_backpressure():
    blocks = dct_cases(np.random.default_rng(2))[:9]
    got, _ = rtl_dct(blocks, gap=0.3, stall=0.5, seed=3)
    assert np.array_equal(got, jpeg.dct2_int(blocks))


# ---- quantizer -------------------------------------------------------------------------------------


def rtl_quantize(coeffs: np.ndarray, recip: np.ndarray, stall=0.0) -> np.ndarray:
    dut = Quantizer()

    async def load(ctx):
        for i, r in enumerate(recip):
            ctx.set(dut.r_we, 1)
            ctx.set(dut.r_addr, i)
            ctx.set(dut.r_data, int(r))
            await ctx.tick()
        ctx.set(dut.r_we, 0)

    flat = coeffs.reshape(-1)
    inputs = [{"data": int(c), "index": n % 64, "block_last": 0, "image_last": 0} for n, c in enumerate(flat)]
    outs, _ = stream_sim(dut, inputs, count(len(flat)), setup=load, gap=0.2, stall=stall, seed=4)
    assert [o["index"] for o in outs] == [n % 64 for n in range(len(flat))]
    return np.array([o["data"] for o in outs]).reshape(coeffs.shape)


def test_quantizer_matches_golden():
    rng = np.random.default_rng(5)
    qtable = rng.integers(1, 256, size=(8, 8))
    qtable[0, :4] = [1, 2, 255, 3]
    coeffs = rng.integers(-8192, 8192, size=(4, 8, 8))
    coeffs[0, 0] = [-8192, 8191, 8158, -8190, 0, 1, -1, 4]      # extremes, and ties of Q = 1
    coeffs[1, 0, :4] = [8, -8, 12, -12]                         # exact ties: 8Q/2 multiples
    got = rtl_quantize(coeffs, jpeg.reciprocal(qtable).reshape(64), stall=0.3)
    assert np.array_equal(got, jpeg.quantize_int(coeffs, qtable))


# ---- zigzag buffer ---------------------------------------------------------------------------------


def ref_entries(blocks: np.ndarray, zigzag: bool, image_last_at: set[int]) -> list[dict]:
    """What the buffer must send: positions 0..length-1 in scan order, length = 1 + last nonzero."""
    out = []
    for b, blk in enumerate(blocks.reshape(-1, 64)):
        scan = blk[jpeg.ZIGZAG] if zigzag else blk
        nz = np.flatnonzero(scan)
        length = max(1, int(nz[-1]) + 1 if nz.size else 1)
        for p in range(length):
            out.append({"data": int(scan[p]), "first": int(p == 0), "last": int(p == length - 1),
                        "eob": int(length < 64), "image_last": int(b in image_last_at)})
    return out


def zz_blocks(rng: np.random.Generator) -> np.ndarray:
    blocks = np.where(rng.random((10, 64)) < 0.8, 0, rng.integers(-65536 // 2, 65536 // 2, size=(10, 64)))
    blocks[0] = 0                   # all zero
    blocks[1] = 0
    blocks[1, 63] = 5               # only the last position (zigzag: natural 63 is scan 63 too)
    blocks[2] = rng.integers(1, 100, size=64)   # all nonzero
    blocks[3] = 0
    blocks[3, 0] = -7               # DC only
    blocks[4] = 0
    blocks[4, 62] = 1               # raster 62 / zigzag position of natural 62
    return blocks


@pytest.mark.parametrize("zigzag", [1, 0])
def test_zigzag_buffer(zigzag):
    rng = np.random.default_rng(6 + zigzag)
    blocks = zz_blocks(rng)
    dut = ZigzagBuffer()
    inputs = []
    order = [8 * v + u for u in range(8) for v in range(8)]  # the DCT's column order
    for b, blk in enumerate(blocks):
        for k, n in enumerate(order):
            inputs.append({"data": int(blk[n]), "index": n, "block_last": int(k == 63),
                           "image_last": int(b in (4, 9))})

    async def mode(ctx):
        ctx.set(dut.zigzag, zigzag)

    expected = ref_entries(blocks, bool(zigzag), {4, 9})
    outs, _ = stream_sim(dut, inputs, count(len(expected)), setup=mode, gap=0.2, stall=0.3, seed=8)
    assert outs == expected


def test_zigzag_buffer_full_rate():
    """64-entry blocks back to back, always ready: one entry per cycle, no bubble between blocks."""
    blocks = np.random.default_rng(9).integers(1, 50, size=(4, 64))
    dut = ZigzagBuffer()
    inputs = [{"data": int(v), "index": k, "block_last": int(k == 63), "image_last": 0}
              for blk in blocks for k, v in enumerate(blk)]
    cycles = []

    async def bench(ctx):
        ctx.set(dut.out.ready, 1)
        i = n = 0
        for cycle in range(400):
            ctx.set(dut.inp.valid, i < len(inputs))
            if i < len(inputs):
                ctx.set(dut.inp.payload, inputs[i])
            _, _, rdy, valid = await ctx.tick().sample(dut.inp.ready, dut.out.valid)
            i += int(i < len(inputs) and rdy)
            if valid:
                cycles.append(cycle)
                n += 1
            if n == len(inputs):
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(cycles) == 256 and cycles[-1] - cycles[0] == 255


# ---- run-length coder ------------------------------------------------------------------------------


def ref_symbols(zz: np.ndarray, jpeg_mode: bool, signed: bool, image_ends: list[int]) -> list[dict]:
    """Golden run-length symbols of ``zz[n, 64]`` (scan order) as the coder's output payloads; the DC
    predictor restarts after each block in ``image_ends``."""
    out = []
    start = 0
    for end in image_ends:
        part = zz[start:end + 1]
        dc = jpeg.dc_differences(part[:, 0], np.zeros(len(part), np.int64), 1) if jpeg_mode else None
        rls = entropy.run_length_symbols(part, dc)
        f = 4 if jpeg_mode else 5
        syms = rls.symbols(f)
        bits, lens = entropy.extra_bits(rls.value, rls.size, unsigned=not (jpeg_mode or signed))
        for i in range(len(syms)):
            out.append({"symbol": int(syms[i]), "dc": int(rls.kind[i] == entropy.KIND_DC), "extra": int(bits[i]),
                        "extra_len": int(lens[i]), "last": int(i == len(syms) - 1)})
        start = end + 1
    return out


@pytest.mark.parametrize("mode", ["jpeg", "lossless-signed", "lossless-unsigned"])
def test_run_length_coder(mode):
    rng = np.random.default_rng({"jpeg": 10, "lossless-signed": 11, "lossless-unsigned": 12}[mode])
    jpeg_mode = mode == "jpeg"
    signed = mode != "lossless-unsigned"
    if jpeg_mode:
        lo, hi = -1024, 1025
    elif signed:
        lo, hi = -32768, 32768
    else:
        lo, hi = 0, 65536
    n = 14
    zz = np.where(rng.random((n, 64)) < 0.75, 0, rng.integers(lo, hi, size=(n, 64)))
    zz[0] = 0                                     # all zero: DC (JPEG) + EOB / just EOB
    zz[1] = 0
    zz[1, 63] = hi - 1                            # ZRL x3, then (15, S), no EOB
    zz[2] = rng.integers(1, hi, size=64)          # no zeros at all
    zz[3] = 0
    zz[3, [0, 17, 34, 51]] = [lo, 1, hi - 1, 2]   # runs of 16 zeros and more
    zz[4] = 0
    zz[4, 16] = 3                                 # exactly 16 zeros before (JPEG: 15 after the DC)
    zz[5] = 0
    zz[5, 0] = lo                                 # a nonzero first value and EOB
    image_ends = [6, n - 1]
    entries = ref_entries(zz, False, set())
    # the buffer's entries in scan order (the input here is already scan order); image_last per block
    blk = 0
    for e in entries:
        e["image_last"] = int(blk in image_ends)
        blk += e["last"]
    dut = RunLengthCoder()

    async def config(ctx):
        ctx.set(dut.jpeg, jpeg_mode)
        ctx.set(dut.signed_extra, signed)

    expected = ref_symbols(zz, jpeg_mode, signed, image_ends)
    outs, _ = stream_sim(dut, entries, count(len(expected)), setup=config, gap=0.2, stall=0.3, seed=13)
    assert outs == expected


# ---- Huffman coder ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["jpeg", "lossless"])
def test_huffman_coder(mode):
    rng = np.random.default_rng(14)
    if mode == "jpeg":
        image = jpeg_table_image(entropy.STD_DC_LUMINANCE, entropy.STD_AC_LUMINANCE)
        tables = [entropy.STD_DC_LUMINANCE, entropy.STD_AC_LUMINANCE]
        dc_syms = rng.integers(0, 12, size=60)
        ac_syms = rng.choice(np.array(tables[1].huffval), size=60)
        kinds = rng.integers(0, 2, size=60)
        symbols = np.where(kinds == 0, dc_syms, ac_syms)
    else:
        table = lossless.optimal_table_for(lossless.synthetic_relu_maps(np.eye(16) * 200, 2, 0))
        image = lossless_table_image(lossless.DEFAULT_TABLE)
        tables = [lossless.DEFAULT_TABLE]
        kinds = np.ones(60, dtype=np.int64)
        symbols = rng.choice(lossless.all_symbols(), size=60)
        assert table.huffval  # an optimal table builds; the default one is loaded (all 258 symbols)
    sizes = rng.integers(0, 17, size=60)
    extras = rng.integers(0, 1 << 16, size=60) & ((1 << sizes) - 1)
    dut = HuffmanCoder()

    async def load(ctx):
        for addr, (code, length) in enumerate(image):
            ctx.set(dut.tbl_we, 1)
            ctx.set(dut.tbl_addr, addr)
            ctx.set(dut.tbl_code, code)
            ctx.set(dut.tbl_len, length)
            await ctx.tick()
        ctx.set(dut.tbl_we, 0)

    inputs = [{"symbol": int(s), "dc": int(k == 0), "extra": int(e), "extra_len": int(z), "last": int(i == 59)}
              for i, (s, k, e, z) in enumerate(zip(symbols, kinds, extras, sizes, strict=True))]
    outs, _ = stream_sim(dut, inputs, count(60), setup=load, gap=0.2, stall=0.3, seed=15)
    index = kinds if mode == "jpeg" else np.zeros(60, dtype=np.int64)
    code, length = entropy.huffman_encode(symbols, index, tables)
    expected = [{"bits": int((c << z) | e), "length": int(n + z), "last": int(i == 59)}
                for i, (c, n, e, z) in enumerate(zip(code, length, extras, sizes, strict=True))]
    assert outs == expected


def test_huffman_missing_code_sets_error():
    dut = HuffmanCoder()
    seen = []

    async def bench(ctx):
        ctx.set(dut.out.ready, 1)
        ctx.set(dut.inp.valid, 1)
        ctx.set(dut.inp.payload, {"symbol": 0xFF, "dc": 0, "extra": 0, "extra_len": 0, "last": 0})  # not in K.5
        await ctx.tick()
        ctx.set(dut.inp.valid, 0)
        for _ in range(3):
            await ctx.tick()
        seen.append(ctx.get(dut.error))
        ctx.set(dut.tbl_we, 1)
        await ctx.tick()
        seen.append(ctx.get(dut.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [1, 0]


# ---- bit packer ------------------------------------------------------------------------------------


def ref_pack(words: list[tuple[int, int]], stuffing: bool) -> bytes:
    w = entropy.BitWriter(stuffing=stuffing)
    for bits, length in words:
        w.write(bits, length)
    return w.flush()


def beats(data: bytes, out_bytes: int) -> list[dict]:
    """One image's bytes as output beats: ``out_bytes`` per beat (byte 0 lowest), the final beat flagged."""
    chunks = [data[i:i + out_bytes] for i in range(0, len(data), out_bytes)]
    if out_bytes == 1:
        return [{"data": c[0], "last": int(i == len(chunks) - 1)} for i, c in enumerate(chunks)]
    return [{"data": int.from_bytes(c, "little"), "count": len(c), "last": int(i == len(chunks) - 1)}
            for i, c in enumerate(chunks)]


def unbeat(outs: list[dict]) -> bytes:
    return b"".join(o["data"].to_bytes(8, "little")[:o.get("count", 1)] for o in outs)


@pytest.mark.parametrize("out_bytes", [1, 2, 4])
@pytest.mark.parametrize("stuffing", [True, False])
def test_bit_packer(stuffing, out_bytes):
    rng = np.random.default_rng(16 + stuffing)
    images = []
    for n in (40, 1, 25, 3):
        lengths = rng.integers(0, 33, size=n)
        bits = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.int64) & ((1 << lengths) - 1)
        ones = rng.random(n) < 0.4   # many all-ones words: 0xFF bytes to stuff
        bits = np.where(ones, (1 << lengths) - 1, bits)
        lengths[-1] = max(lengths[-1], 1)
        images.append(list(zip(bits.tolist(), lengths.tolist(), strict=True)))
    images.append([(0b1111111, 7)])     # pads to 0xFF: the stuffed 0x00 is the image's last byte
    images.append([(0xFFFF, 16)])       # ends on a byte boundary with 0xFF
    expected = []
    for words in images:
        data = ref_pack(words, stuffing)
        expected += beats(data, out_bytes)
    inputs = [{"bits": b, "length": n, "last": int(i == len(words) - 1)}
              for words in images for i, (b, n) in enumerate(words)]
    dut = BitPacker(out_bytes)

    async def config(ctx):
        ctx.set(dut.stuffing, stuffing)

    outs, _ = stream_sim(dut, inputs, count(len(expected)), setup=config, gap=0.3, stall=0.3, seed=18)
    assert outs == expected


# ---- the whole encoder, one small image per mode -------------------------------------------------


def rtl_encode(job: host.EncodeJob, stall=0.2, out_bytes=1) -> bytes:
    dut = Encoder(fifo_depth=4, out_bytes=out_bytes)

    async def load(ctx):
        ctx.set(dut.lossless, job.lossless)
        ctx.set(dut.lossless_signed, job.signed)
        for addr, value in job.tables:
            ctx.set(dut.tbl_we, 1)
            ctx.set(dut.tbl_addr, int(addr))
            ctx.set(dut.tbl_data, int(value))
            await ctx.tick()
        ctx.set(dut.tbl_we, 0)

    n = len(job.samples)
    inputs = [{"data": int(s), "last": int(i == n - 1)} for i, s in enumerate(job.samples)]
    outs, _ = stream_sim(dut, inputs, lambda o: bool(o) and o[-1]["last"], setup=load, gap=0.2, stall=stall, seed=19)
    return unbeat(outs)


@pytest.mark.parametrize("out_bytes", [1, 4])
def test_encoder_jpeg_small_image(out_bytes):
    rng = np.random.default_rng(20)
    image = rng.integers(0, 256, size=(12, 20)).astype(np.uint8)   # not a multiple of 8: padded stream
    job = host.jpeg_job(image, 90)
    assert rtl_encode(job, out_bytes=out_bytes) == job.expected


def test_encoder_lossless_small_map():
    rng = np.random.default_rng(21)
    values = np.where(rng.random((2, 9, 8)) < 0.6, 0, rng.integers(-300, 300, size=(2, 9, 8))).astype(np.int16)
    job = host.lossless_job(values)
    assert rtl_encode(job) == job.expected


def test_encoder_parameters_checked():
    with pytest.raises(ValueError, match="fifo_depth.*3"):
        Encoder(fifo_depth=3)
    with pytest.raises(ValueError, match="out_bytes.*3"):
        Encoder(out_bytes=3)


# ---- no combinational process that a 4-state simulator leaves X at power-up (hw/jpeg/lut.py) ----------------


def test_const_lut_and_bank_pulse():
    from amaranth.hdl import Module, Signal, signed

    from hw.jpeg.lut import bank_pulse, const_lut

    m = Module()
    sel = Signal(3)
    cond = Signal()
    bank = Signal()
    table = [-4017, 0, 1, -1, 2047, -2048, 3, 4017]
    k = const_lut(m, table, sel, signed(14), "k")
    pulse = Signal(2)
    m.d.comb += pulse.eq(bank_pulse(cond, bank))
    sim = Simulator(m)

    async def bench(ctx):
        for i, want in enumerate(table):
            ctx.set(sel, i)
            assert ctx.get(k) == want
        for c in (0, 1):
            for b in (0, 1):
                ctx.set(cond, c)
                ctx.set(bank, b)
                assert ctx.get(pulse) == (c << b)

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("stage,names", [
    ("dct", [f"row_k{u}" for u in range(8)] + [f"col_k{v}" for v in range(8)] + ["set_full", "clr_full"]),
    ("zigzag", ["zigzag_rom", "unzigzag_rom", "set_full", "clr_full"]),
    ("idct", [f"c1_{x}" for x in range(8)] + ["c2", "cset", "cclr", "tset", "tclr"]),
    ("huffdec", ["natural"]),
])
def test_idle_selects_are_continuous(stage, names):
    """Regression for the Icarus hang: these signals are functions of registers that idle at their reset values
    from power-up to their first use. Built as `Switch`/`If` comb assignments they became `always @*` blocks,
    which Icarus (`-g2012`, as cocotb runs it) does not evaluate until an input changes, so they were X at
    their first use (the DCT's first block, the zigzag buffer's first read address, the IDCT's bank flags).
    They must be continuous assignments."""
    import re

    from amaranth.back import verilog

    from hw.jpeg.huffdec import HuffmanDecoder
    from hw.jpeg.idct import WeightIdct

    dut = {"dct": Dct2d, "zigzag": ZigzagBuffer, "idct": WeightIdct, "huffdec": HuffmanDecoder}[stage]()
    text = verilog.convert(dut, name=stage, emit_src=False)
    for name in names:
        assert re.search(rf"^\s*assign {re.escape(name)} = ", text, re.M), f"{stage}.{name} is not a continuous assign"
        assert not re.search(rf"^\s*{re.escape(name)}(\[\d+\])? = ", text, re.M), f"{stage}.{name} set in a process"


# ---- colour: the 3-component build (issue 16, item 6) ------------------------------------------------


@pytest.mark.parametrize("sampling", ["gray", "444", "420"])
def test_mcu_counter_matches_golden_mcu_order(sampling):
    """The block -> component map of :class:`McuCounter` equals golden's ``mcu_order`` component array, over two
    images (the slot restarts with each image's last block) of 5 and 3 MCUs."""
    from hw.jpeg.encoder import SAMPLING_MODES, McuCounter

    factors = {"gray": ((1, 1),), "444": ((1, 1),) * 3, "420": ((2, 2), (1, 1), (1, 1))}[sampling]
    want = []
    for mcus in (5, 3):
        grids = [np.zeros((v, mcus * h)) for h, v in factors]
        want += list(jpeg.mcu_order(grids, factors, 1, mcus)[1])
    ends = {len(want) - 1, len(want) - 1 - 3 * sum(h * v for h, v in factors)}
    dut = McuCounter()
    got = []

    async def bench(ctx):
        ctx.set(dut.sampling, SAMPLING_MODES[sampling])
        for k in range(len(want)):
            got.append((ctx.get(dut.comp), ctx.get(dut.tset)))
            ctx.set(dut.step, 1)
            ctx.set(dut.restart, k in ends)
            await ctx.tick()
            ctx.set(dut.step, 0)
            await ctx.tick()        # a cycle without a block end: nothing moves

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [(int(c), int(c != 0)) for c in want]


def test_huffman_coder_two_table_sets():
    """``tables = 2``: each symbol is coded with the table set its ``tset`` names (luminance / chrominance)."""
    rng = np.random.default_rng(30)
    sets = [(entropy.STD_DC_LUMINANCE, entropy.STD_AC_LUMINANCE),
            (entropy.STD_DC_CHROMINANCE, entropy.STD_AC_CHROMINANCE)]
    image = [e for dc, ac in sets for e in jpeg_table_image(dc, ac)]
    n = 80
    tset = rng.integers(0, 2, size=n)
    kinds = rng.integers(0, 2, size=n)
    ac_syms = np.array([rng.choice(np.array(sets[t][1].huffval)) for t in tset])
    symbols = np.where(kinds == 0, rng.integers(0, 12, size=n), ac_syms)
    sizes = rng.integers(0, 12, size=n)
    extras = rng.integers(0, 1 << 16, size=n) & ((1 << sizes) - 1)
    dut = HuffmanCoder(tables=2)

    async def load(ctx):
        for addr, (code, length) in enumerate(image):
            ctx.set(dut.tbl_we, 1)
            ctx.set(dut.tbl_addr, addr)
            ctx.set(dut.tbl_code, code)
            ctx.set(dut.tbl_len, length)
            await ctx.tick()
        ctx.set(dut.tbl_we, 0)

    inputs = [{"symbol": int(s), "dc": int(k == 0), "extra": int(e), "extra_len": int(z), "last": int(i == n - 1),
               "tset": int(t)}
              for i, (s, k, e, z, t) in enumerate(zip(symbols, kinds, extras, sizes, tset, strict=True))]
    outs, _ = stream_sim(dut, inputs, count(n), setup=load, gap=0.2, stall=0.3, seed=31)
    tables = [sets[0][0], sets[0][1], sets[1][0], sets[1][1]]    # index: 2 * set + (AC)
    code, length = entropy.huffman_encode(symbols, 2 * tset + (kinds != 0), tables)
    expected = [{"bits": int((c << z) | e), "length": int(ln + z), "last": int(i == n - 1)}
                for i, (c, ln, e, z) in enumerate(zip(code, length, extras, sizes, strict=True))]
    assert outs == expected


def colour_stage_images(rng: np.random.Generator) -> list[np.ndarray]:
    """Random (odd size), saturated primaries and black/white cells, all-255 and a 1x1 pixel."""
    cells = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 255, 255], [255, 0, 255], [255, 255, 0],
                      [0, 0, 0], [255, 255, 255]], dtype=np.uint8)
    prim = cells[(np.arange(20)[None, :] + np.arange(13)[:, None]) % 8]
    return [rng.integers(0, 256, size=(17, 9, 3)).astype(np.uint8), prim, np.full((16, 16, 3), 255, np.uint8),
            np.array([[[250, 3, 100]]], np.uint8)]


@pytest.mark.parametrize("subsampling", ["444", "420"])
def test_colour_stage_matches_golden(subsampling):
    """:class:`ColourConverter` on images back to back (RGB pixels in MCU order, ``golden.jpeg.mcu_pixels``)
    against ``golden.jpeg.colour_stage``, sample for sample, with the image ends; random gaps and stalls."""
    from hw.jpeg.colour import ColourConverter
    from hw.jpeg.encoder import SAMPLING_MODES

    inputs, want = [], []
    for image in colour_stage_images(np.random.default_rng(35)):
        px = jpeg.mcu_pixels(image, subsampling).astype(np.int64)
        inputs += [{"data": int(r | g << 8 | b << 16), "last": int(i == len(px) - 1)}
                   for i, (r, g, b) in enumerate(px)]
        samples = jpeg.colour_stage(px, subsampling)
        want += [{"data": int(v), "last": int(i == len(samples) - 1)} for i, v in enumerate(samples)]
    dut = ColourConverter()

    async def setup(ctx):
        ctx.set(dut.sampling, SAMPLING_MODES[subsampling])

    outs, _ = stream_sim(dut, inputs, count(len(want)), setup=setup, gap=0.2, stall=0.3, seed=36)
    assert outs == want


def rtl_encode_colour(jobs: list[host.EncodeJob], stall=0.2) -> list[bytes]:
    """Images back to back through ``Encoder(colour=True)`` (one mode, input form and table set)."""
    dut = Encoder(fifo_depth=4, colour=True)
    job = jobs[0]

    async def load(ctx):
        ctx.set(dut.sampling, job.sampling)
        ctx.set(dut.rgb, job.rgb)
        for addr, value in job.tables:
            ctx.set(dut.tbl_we, 1)
            ctx.set(dut.tbl_addr, int(addr))
            ctx.set(dut.tbl_data, int(value))
            await ctx.tick()
        ctx.set(dut.tbl_we, 0)

    inputs = [{"data": int(s), "last": int(i == len(j.samples) - 1)} for j in jobs for i, s in enumerate(j.samples)]
    outs, _ = stream_sim(dut, inputs, lambda o: sum(x["last"] for x in o) == len(jobs), setup=load, gap=0.2,
                         stall=stall, seed=32)
    images, cur = [], []
    for o in outs:
        cur.append(o["data"])
        if o["last"]:
            images.append(bytes(cur))
            cur = []
    return images


@pytest.mark.parametrize("subsampling, rgb", [("444", True), ("420", True), ("420", False)],
                         ids=["444-rgb", "420-rgb", "420-host-ycbcr"])
def test_encoder_colour_small_images(subsampling, rgb):
    """The colour build on two images back to back (odd sizes: padded to the MCU; each component's DC
    predictor and the MCU slot restart between them), as RGB pixels through the colour stage or as
    host-converted YCbCr: golden's scans byte for byte. Luminance and chrominance tables at QF 85 differ from
    the reset (QF 50) ones, so the table port is exercised too."""
    rng = np.random.default_rng(33)
    images = [rng.integers(0, 256, size=(9, 19, 3)).astype(np.uint8),
              np.clip(rng.normal(128, 40, size=(3, 10, 3)), 0, 255).astype(np.uint8)]
    jobs = [host.jpeg_job(img, 85, subsampling, rgb=rgb) for img in images]
    assert jobs[0].sampling == (1 if subsampling == "444" else 2) and jobs[0].rgb == rgb
    assert rtl_encode_colour(jobs) == [j.expected for j in jobs]


def test_colour_host_samples_are_golden_mcu_order():
    """The host's colour stream is golden's MCU order of golden's YCbCr planes: the blocks golden's DCT takes."""
    rng = np.random.default_rng(34)
    image = rng.integers(0, 256, size=(21, 35, 3)).astype(np.uint8)
    for sub in ("444", "420"):
        samples = host.jpeg_samples(image, sub).astype(np.int64).reshape(-1, 8, 8)
        d = jpeg.forward_dct(image, sub)
        assert np.array_equal(jpeg.dct2_int(jpeg.level_shift(samples)), d.coeffs)
        per_mcu = 3 if sub == "444" else 6
        assert len(samples) == d.mcu_rows * d.mcu_cols * per_mcu
    assert np.array_equal(host.jpeg_samples(image), host.jpeg_samples(image, "444"))   # golden's default
    with pytest.raises(UserError, match="'422'"):
        host.jpeg_job(image, 50, "422")
    with pytest.raises(UserError, match="colour image"):
        host.jpeg_samples(image[..., 0], "420")


def test_colour_parameters_checked():
    with pytest.raises(ValueError, match="colour.*1"):
        Encoder(colour=1)
    with pytest.raises(ValueError, match="tables.*3"):
        Quantizer(tables=3)
    with pytest.raises(ValueError, match="tables.*0"):
        HuffmanCoder(tables=0)
    with pytest.raises(ValueError, match="components.*2"):
        RunLengthCoder(components=2)
    assert len(Encoder(colour=True).tbl_addr) == 11 and len(Encoder().tbl_addr) == 10
    assert len(Encoder(colour=True).inp.payload.data) == 24 and len(Encoder().inp.payload.data) == 16
