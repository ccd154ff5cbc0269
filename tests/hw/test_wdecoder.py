"""The RTL weight decoder's stages (``hw.jpeg.huffdec``, ``hw.jpeg.idct``) and a small whole-decoder run
against ``golden.weightcodec``, in Amaranth's own simulator (``rtl_x(case) == ref_x(case)``), with random
input gaps and output back-pressure. Whole layers, real weights and all QFs run in Verilator
(test_wdecoder_cocotb.py).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden import entropy, jpeg
from golden import weightcodec as wc
from hw.jpeg import whost
from hw.jpeg.huffdec import HuffmanDecoder
from hw.jpeg.idct import WeightIdct, idct_bounds
from hw.jpeg.wdecoder import COUNTERS, WeightDecoder
from sim.amaranth_streams import as_dict, stream_sim


def lasts(n):
    return lambda outs: sum(o["block_last"] for o in outs) >= n


async def write_table(ctx, we, addr, data_sig, writes):
    for a, d in writes:
        ctx.set(we, 1)
        ctx.set(addr, int(a))
        ctx.set(data_sig, int(d))
        await ctx.tick()
    ctx.set(we, 0)


# ---- streams for the entropy stage -------------------------------------------------------------------


def code_stream(zz: np.ndarray, per_group: int) -> tuple[bytes, int, entropy.HuffmanTable, entropy.HuffmanTable]:
    """Golden's encoder back end on given quantized blocks ``zz[n, 64]``: ``(stream, bits, dc, ac)``."""
    dc, ac = wc.huffman_tables(zz, per_group)
    stream, bits = wc.entropy_encode(zz, per_group, dc, ac)
    return stream, bits, dc, ac


def edge_blocks(rng: np.random.Generator) -> np.ndarray:
    """Quantized blocks (zigzag order) at the extremes: all zero (DC + EOB), category 15 DC differences
    and AC values (+-16384..32767), long zero runs (ZRL x3 then run 14, a ZRL right before 63),
    all 63 AC nonzero (64 symbols, no EOB), the last position alone, runs of exactly 15 and 16 zeros."""
    z = np.zeros((16, 64), dtype=np.int64)
    z[1, 0] = 16384                       # DC diff +16384 (SSSS 15)
    z[2, 0] = -16383                      # diff -32767 (SSSS 15)
    z[2, 1:] = rng.choice([32767, -32767, 16384, -16384, 1, -1], size=63)   # 63 AC, category 15 and 1
    z[3, 63] = -32767                     # 62 zeros: ZRL ZRL ZRL (14, 15)
    z[4, 0] = 16384
    z[4, 17] = 5                          # 16 zeros: ZRL, then (0, 3)
    z[4, 33] = -2                         # 15 zeros: (15, 2)
    z[5, 48] = 1                          # ZRL ZRL (15, 1) then EOB
    z[6, 1:] = rng.integers(-3, 4, size=63)
    z[6, 1:][z[6, 1:] == 0] = 1           # all 63 AC nonzero, small
    z[7, 0] = -16384                      # diff -32768 would be SSSS 16: 7 follows 6 (DC 0) -> -16384
    z[8, 0] = 16383                       # diff +32767
    z[9, 62] = 7                          # a run of 61 to position 62, then EOB
    z[10, 0] = -1
    z[11, 1] = -32767
    z[11, 2] = 32767
    z[12, 1:] = np.where(np.arange(63) % 17 == 16, 9, 0)   # repeated (0,x) after ZRL patterns
    z[13, 0] = 5
    z[14, 0] = 5                          # diff 0 (SSSS 0)
    z[15, 63] = 1
    z[15, 1] = 1
    return z


def layer_blocks(seed: int, qf: int, o: int = 14, k: int = 75) -> np.ndarray:
    """Quantized blocks of a random weight layer (Gaussian, like trained filters) at ``qf``."""
    rng = np.random.default_rng(seed)
    w = np.clip(rng.normal(0, 3000, size=(o, k)), -32768, 32767).astype(np.int16)
    return wc.Prepared.of(w).quantized(qf), wc.blocks_per_group(k)


def ref_events(zz: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The events the entropy stage must send: ``(data, natural index or -1 for EOB, write, block_last)``."""
    out = []
    for row in zz:
        ev = [(int(row[0]), 0, 1, 0)]
        ev += [(int(row[k]), int(jpeg.ZIGZAG[k]), 1, 0) for k in range(1, 64) if row[k]]
        if row[63] == 0:
            ev.append((0, -1, 0, 0))
        ev[-1] = (*ev[-1][:3], 1)
        out += ev
    return out


def ref_huffman(stream: bytes, n: int, per_group: int, dc, ac) -> list[tuple[int, int, int, int]]:
    return ref_events(wc.huffman_decode(stream, n, per_group, dc, ac))


def rtl_huffman(stream: bytes, n: int, per_group: int, dc, ac, gap=0.0, stall=0.0, seed=0, starts=(None,)):
    """Events of the RTL entropy stage and the bits it consumed. ``starts``: block counts of successive
    ``start`` pulses (None: all ``n`` at once), each given once the previous ones are decoded."""
    dut = HuffmanDecoder()
    words = wc.words_of(stream)
    counts = [n] if starts == (None,) else list(starts)
    assert sum(counts) == n
    consumed = [0]

    async def setup(ctx):
        ctx.set(dut.group_blocks, per_group)
        await write_table(ctx, dut.tbl_we, dut.tbl_addr, dut.tbl_data, whost.huffman_writes(dc, ac))
        ctx.set(dut.blocks, counts[0])
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)

    inputs = [{"data": int(w)} for w in words]
    pending = list(counts[1:])
    rng = random.Random(seed)
    outs: list[dict] = []

    async def bench(ctx):
        await setup(ctx)
        i = 0
        idle_for = 0
        nlast = 0
        for _ in range(40 * n * 64 + 2000):
            if nlast >= n:
                return
            drive = i < len(inputs) and rng.random() >= gap
            if drive:
                ctx.set(dut.inp.payload, inputs[i])
            ctx.set(dut.inp.valid, drive)
            ready = rng.random() >= stall
            ctx.set(dut.out.ready, ready)
            # a later start once the previous blocks are all out (idle for a few cycles)
            go = bool(pending) and idle_for > 3
            ctx.set(dut.start, go)
            ctx.set(dut.blocks, pending[0] if go else 0)
            _, _, in_ready, valid, payload, err, used, idle = await ctx.tick().sample(
                dut.inp.ready, dut.out.valid, dut.out.payload, dut.error, dut.consumed, dut.idle)
            assert not err, "the entropy stage flagged a corrupt stream"
            consumed[0] += used
            idle_for = idle_for + 1 if idle else 0
            if go:
                pending.pop(0)
                idle_for = 0
            if drive and in_ready:
                i += 1
            if ready and valid:
                outs.append(as_dict(payload))
                nlast += outs[-1]["block_last"]
        raise TimeoutError(f"entropy stage: {len(outs)} events")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    events = [(o["data"], o["index"] if o["write"] else -1, o["write"], o["block_last"]) for o in outs]
    return events, consumed[0]


@pytest.mark.parametrize("qf", [1, 50, 100])
def test_huffman_stage_random_layer(qf):
    zz, per_group = layer_blocks(qf, qf)
    stream, bits, dc, ac = code_stream(zz, per_group)
    ref = ref_huffman(stream, len(zz), per_group, dc, ac)
    assert ref == ref_events(zz)   # golden round trip
    got, consumed = rtl_huffman(stream, len(zz), per_group, dc, ac, gap=0.3, stall=0.3, seed=qf)
    assert got == ref
    assert consumed == bits


def test_huffman_stage_edge_cases():
    zz = edge_blocks(np.random.default_rng(5))
    for per_group in (16, 4, 1):   # DC predictor restarts every 16, 4 and every block
        stream, bits, dc, ac = code_stream(zz, per_group)
        assert max(dc.huffval) == 15 and any(v & 15 == 15 for v in ac.huffval)   # category 15 is coded
        ref = ref_huffman(stream, len(zz), per_group, dc, ac)
        got, consumed = rtl_huffman(stream, len(zz), per_group, dc, ac, gap=0.2, stall=0.4, seed=per_group)
        assert got == ref, per_group
        assert consumed == bits


def test_huffman_stage_longest_codes():
    """Every symbol on a 16-bit code with 15 extra bits (31 bits, the longest symbol), input-bound."""
    rng = np.random.default_rng(9)
    zz = rng.integers(16384, 32768, size=(6, 64)) * rng.choice([-1, 1], size=(6, 64))
    zz[:, 0] = [16384, -16383, 16384, -16383, 16384, -16383]
    zz[5, 40:] = 0                                    # one EOB, on a 15-bit code
    bits = (0,) + (1,) * 14 + (2,)
    dc = entropy.HuffmanTable(bits=bits, huffval=(*range(15), 15))
    ac = entropy.HuffmanTable(bits=bits, huffval=(*range(1, 14), 0x00, 0x11, 0x0F))
    assert dc.ehufsi[15] == 16 and ac.ehufsi[0x0F] == 16
    stream, nbits = wc.entropy_encode(zz, 6, dc, ac)
    ref = ref_huffman(stream, 6, 6, dc, ac)
    got, consumed = rtl_huffman(stream, 6, 6, dc, ac, gap=0.1, stall=0.1, seed=2)
    assert got == ref
    assert consumed == nbits


def test_huffman_stage_continues_across_starts():
    """Blocks requested one group at a time: the stream continues at the exact bit where it stopped."""
    zz, per_group = layer_blocks(7, 75, o=20, k=64)
    stream, bits, dc, ac = code_stream(zz, per_group)
    ref = ref_huffman(stream, len(zz), per_group, dc, ac)
    got, consumed = rtl_huffman(stream, len(zz), per_group, dc, ac, seed=1, starts=(5, 7, 12))
    assert got == ref
    assert consumed == bits


def test_huffman_stage_flags_corrupt_streams():
    """A 16-bit all-ones prefix is no code: ``error`` rises and nothing is decoded past it."""
    zz = np.zeros((2, 64), dtype=np.int64)
    stream, _, dc, ac = code_stream(zz, 2)
    dut = HuffmanDecoder()
    flags = []

    async def bench(ctx):
        ctx.set(dut.group_blocks, 2)
        await write_table(ctx, dut.tbl_we, dut.tbl_addr, dut.tbl_data, whost.huffman_writes(dc, ac))
        ctx.set(dut.blocks, 2)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.out.ready, 1)
        ctx.set(dut.inp.payload, {"data": 0xFFFF})
        ctx.set(dut.inp.valid, 1)
        for _ in range(10):
            _, _, err, valid = await ctx.tick().sample(dut.error, dut.out.valid)
            flags.append((err, valid))
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        flags.append((ctx.get(dut.error), ctx.get(dut.idle)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert flags[-2][0] == 1 and not any(v for _, v in flags[:-1])
    assert flags[-1] == (0, 1)


# ---- IDCT stage ---------------------------------------------------------------------------------------


def ref_idct(q: np.ndarray, qtable: np.ndarray, p: int) -> np.ndarray:
    """Golden: dequantize, integer IDCT, restore. ``q[n, 8, 8]`` natural order -> int16 ``[n, 64]``."""
    return wc.restore(wc.idct_int(wc.dequantize(q, qtable)), p).reshape(-1, 64).astype(np.int64)


def idct_cases(rng: np.random.Generator) -> np.ndarray:
    """Extreme and random quantized blocks: q = +-32767 / -32768 everywhere, sign patterns that make one
    output ``r[y0][x0]`` (and every pass-1 sum of its column) as large as possible, full-range random,
    small random (real weights) and zeros."""
    fixed = [np.full((8, 8), 32767), np.full((8, 8), -32768), np.zeros((8, 8))]
    for y0, x0 in ((0, 0), (7, 3), (4, 7)):
        fixed += [extreme_q(y0, x0, 1), extreme_q(y0, x0, -1)]
    single = np.zeros((8, 8))
    single[7, 7] = -32768
    fixed.append(single)
    full = rng.integers(-32768, 32768, size=(4, 8, 8))
    small = rng.integers(-6, 7, size=(4, 8, 8)) * (rng.random((4, 8, 8)) < 0.3)
    return np.concatenate([np.array(fixed), full, small]).astype(np.int64)


def rtl_idct(q: np.ndarray, qtable: np.ndarray, p: int, gap=0.0, stall=0.0, seed=0, eob_every=3):
    dut = WeightIdct()
    inputs = []
    for b, blk in enumerate(q):
        flat = blk.reshape(64)
        # events in zigzag order as the entropy stage sends them; DC always; some blocks end with an EOB
        pos = [0] + [int(n) for n in jpeg.ZIGZAG[1:] if flat[n]]
        ev = [{"data": int(flat[n]), "index": n, "write": 1, "block_last": 0} for n in pos]
        if b % eob_every == 0 or flat[jpeg.ZIGZAG[63]] == 0:
            ev.append({"data": 0, "index": 0, "write": 0, "block_last": 0})
        ev[-1]["block_last"] = 1
        inputs += ev

    async def setup(ctx):
        await write_table(ctx, dut.q_we, dut.q_addr, dut.q_data, list(enumerate(qtable.reshape(64))))
        ctx.set(dut.pre_shift, p)

    outs, _ = stream_sim(dut, inputs, lasts(len(q)), setup=setup, gap=gap, stall=stall, seed=seed)
    got = np.zeros((len(q), 64), dtype=np.int64)
    for i, o in enumerate(outs):
        assert o["index"] == i % 64 and o["block_last"] == (i % 64 == 63)
        got[i // 64, o["index"]] = o["data"]
    assert len(outs) == 64 * len(q)
    return got


def extreme_q(y0: int, x0: int, sense: int) -> np.ndarray:
    """The quantized block (int16, with Q = 255) that drives the pass-1 sums of column ``x0`` and then
    the pass-2 sum of ``r[y0][x0]`` as far as they go towards ``sense`` (+1 / -1)."""
    c = wc.IDCT_MATRIX
    want = sense * np.sign(c[:, y0])[:, None] * np.sign(c[:, x0])[None, :]
    return np.where(want > 0, 32767, -32768).astype(np.int64)


def test_idct_widths_are_the_reachable_ranges():
    """The widths of F', the pass-1 sum, t and the pass-2 sum hold golden's values on the extreme blocks,
    and the extremes need every bit of them (so the widths are minimal), per ``idct_bounds``."""
    from hw.jpeg import idct

    c = wc.IDCT_MATRIX
    f_all, s1_all, t_all, s2_all = [], [], [], []
    for y0 in range(8):
        for x0 in range(8):
            for sense in (1, -1):
                f = wc.dequantize(extreme_q(y0, x0, sense), np.full((8, 8), 255))
                t = wc.idct_pass1(f)
                f_all.append(f)
                s1_all.append(f @ c)
                t_all.append(t)
                s2_all.append(c.T @ t)
    b = idct_bounds()
    for name, vals, width in (("f", f_all, idct.F_BITS), ("acc1", s1_all, idct.ACC1_BITS),
                              ("t", t_all, idct.T_BITS), ("acc2", s2_all, idct.ACC2_BITS)):
        lo, hi = int(np.min(vals)), int(np.max(vals))
        assert b[name][0] <= lo and hi <= b[name][1], name
        assert idct._bits(lo, hi) == width, (name, lo, hi, width)
        assert -(1 << (width - 1)) <= b[name][0] and b[name][1] < 1 << (width - 1), name


@pytest.mark.parametrize("p", [0, 2, 4])
def test_idct_stage_extremes_and_random(p):
    rng = np.random.default_rng(10 + p)
    q = idct_cases(rng)
    qt = np.full((8, 8), 255) if p != 2 else rng.integers(1, 256, size=(8, 8))
    assert np.array_equal(rtl_idct(q, qt, p, seed=p), ref_idct(q, qt, p))


def test_idct_stage_qtables_gaps_backpressure():
    rng = np.random.default_rng(3)
    q = np.concatenate([idct_cases(rng)[:6], rng.integers(-40, 41, size=(6, 8, 8))])
    for qf, p in ((1, 3), (50, 1), (100, 0)):
        qt = wc.qtable(qf)
        assert np.array_equal(rtl_idct(q, qt, p, gap=0.3, stall=0.5, seed=qf), ref_idct(q, qt, p)), qf


# ---- the whole decoder, one small layer ----------------------------------------------------------------


def rtl_decode(job: whost.DecodeJob, gap=0.0, stall=0.0, seed=0) -> tuple[np.ndarray, dict, list[dict]]:
    dut = WeightDecoder()

    async def setup(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        await write_table(ctx, dut.tbl_we, dut.tbl_addr, dut.tbl_data, job.tables)
        ctx.set(dut.blocks, job.blocks)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)

    inputs = [{"data": int(w)} for w in job.words]
    watch = {name: getattr(dut, name) for name in (*COUNTERS, "busy", "error")}
    outs, final = stream_sim(dut, inputs, lasts(job.blocks), setup=setup, gap=gap, stall=stall, seed=seed,
                             max_cycles=200 * 64 * job.blocks, watch=watch)
    got = np.array([o["data"] for o in outs], dtype=np.int64).reshape(-1, 64)
    return got, final, outs


def test_decoder_small_layer():
    """O = 13, K = 70 (neither a multiple of 12 nor of 64: 2 groups x 2 K-blocks, padding blocks),
    QF 30, random gaps and back-pressure: weights bit-exact, counters right, ``last`` on the final one."""
    rng = np.random.default_rng(4)
    w = np.clip(rng.normal(0, 6000, size=(13, 70)), -32768, 32767).astype(np.int16)
    enc = wc.encode_layer(w, 30)
    decoded = wc.decode_layer(enc)
    for lane in (0, 1):   # lane 0: channels 0 and 12; lane 1: channel 1 and a padding channel
        job = whost.decode_job(enc, lane=lane)
        assert job.blocks == 4 and job.per_group == 2
        got, final, outs = rtl_decode(job, gap=0.2, stall=0.3, seed=1 + lane)
        assert np.array_equal(got, job.expected)
        # block (g, kb) of the lane is channel 12 g + lane, weights 64 kb ..
        for b in range(job.blocks):
            g, row, j = whost.block_position(b, 70, lane)
            ch = 12 * g + j
            n = min(64, 70 - row)
            want = decoded[ch, row:row + n] if ch < 13 else np.zeros(n)
            assert np.array_equal(got[b, :n], want), (lane, b)
        assert [n for n, o in enumerate(outs) if o["last"]] == [len(outs) - 1]
        assert final["error"] == 0 and final["busy"] == 0
        assert final["bits_in"] == enc.lane_bits[lane]
        assert final["weights_out"] == 64 * job.blocks and final["blocks_out"] == job.blocks
        assert final["stall_out"] > 0 and final["stall_in"] > 0 and final["stall_cycles"] >= final["stall_out"]


def test_whost_tables_and_positions():
    """LIMIT/OFFSET reproduce golden's canonical decode for every code; block positions follow to_blocks."""
    for table in (entropy.STD_DC_LUMINANCE, entropy.STD_AC_LUMINANCE, wc.huffman_tables(edge_blocks(
            np.random.default_rng(0)), 4)[1]):
        entries = whost.length_entries(table)
        for sym in table.huffval:
            code, n = int(table.ehufco[sym]), int(table.ehufsi[sym])
            # the shortest l with prefix < LIMIT is n, and OFFSET + code indexes the symbol
            assert all(code >> (n - l) >= entries[l - 1][0] for l in range(1, n))
            assert code < entries[n - 1][0]
            assert table.huffval[(entries[n - 1][1] + code) & 0xFF] == sym
    k = 150   # 3 K-blocks
    s = np.arange(24 * k).reshape(24, k)
    blocks = wc.to_blocks(s).reshape(-1, 64)
    order = wc.lane_order(24, k)
    for lane in (0, 5, 11):
        for b in range(6):   # lane stream block b = layer block order[6 lane + b]
            g, row, j = whost.block_position(b, k, lane)
            valid = [i for i in range(64) if row + i < k]
            blk = order[6 * lane + b]
            assert [blocks[blk, i] for i in valid] == [s[12 * g + j, row + i] for i in valid]
