"""The window loader on its own (Amaranth simulator): random CONV and POOL geometries (k 1..11, stride 1..4,
padding, odd sizes, bands with ``out_y0`` / ``in_y0`` offsets, several channels and groups, values at the int16
extremes) over a model of the feature buffer (16-word reads landing a cycle later, the data holding while no
read is issued), consumed by a model of the compute side that takes beats with random stalls. Every step's
record and every lane word of every beat equal a pure-Python model of the im2col window (``ref_steps``), and
so does the number of feature-buffer reads; commands run back to back on one loader (``start`` resets it).
At 12 lanes and at 4 and 16."""

import random

import pytest
from amaranth.sim import Simulator

from golden.fixedpoint import INT16_MAX, INT16_MIN
from hw.tile_geometry import LOAD_WORDS, SEG_ROWS
from hw.window_loader import WindowLoader

FB_ADDR_BITS = 12
FB_WORDS = 1 << FB_ADDR_BITS
REC_FIELDS = ("n", "first_step", "last_step", "first_tile", "last_tile", "g", "p0", "rows_valid")


def ref_steps(fb, p, lanes):
    """What a command presents: (steps, reads) with steps in order, each (record fields REC_FIELDS, lane
    words per kx), and reads the 16-word feature-buffer reads it needs; from the im2col window directly."""
    pool, k, s, pad, out_w = p["pool"], p["k"], p["stride"], p["pad"], p["out_w"]
    m_pixels = p["out_h"] * out_w
    groups = p["out_c"] if pool else -(-p["out_c"] // lanes)
    steps_c = 1 if pool else p["in_c"]
    pad_value = INT16_MIN if pool else 0
    steps, reads = [], 0
    for g in range(groups):
        rows_valid = min(p["out_c"] - g * lanes, lanes) & ((1 << lanes.bit_length()) - 1)  # (POOL: unused)
        p0 = 0
        while True:
            ox0 = p0 % out_w
            # a tile: consecutive pixels of the band on at most SEG_ROWS output rows
            n = 0
            while n < lanes and p0 + n < m_pixels and (ox0 + n) // out_w < SEG_ROWS:
                n += 1
            last_tile = p0 + n >= m_pixels
            tile_rows = {}
            for j in range(n):
                oy, ox = divmod(p0 + j, out_w)
                tile_rows.setdefault(oy, []).append(ox)
            for c in range(steps_c):
                ch = g if pool else c
                for ky in range(k):
                    rec = dict(n=n, first_step=int(c == 0 and ky == 0),
                               last_step=int(c == steps_c - 1 and ky == k - 1), first_tile=int(p0 == 0),
                               last_tile=int(last_tile), g=g, p0=p0, rows_valid=rows_valid)
                    for oy, oxs in tile_rows.items():    # one segment per output row: 16-word reads
                        y = (p["out_y0"] + oy) * s + ky - pad
                        if 0 <= y < p["in_h_total"]:
                            reads += -(-((oxs[-1] - oxs[0]) * s + k) // LOAD_WORDS)
                    beats = []
                    for kx in range(k):
                        words = []
                        for j in range(lanes):
                            if j >= n:
                                words.append(0)
                                continue
                            oy, ox = divmod(p0 + j, out_w)
                            y = (p["out_y0"] + oy) * s + ky - pad
                            x = ox * s + kx - pad
                            if 0 <= y < p["in_h_total"] and 0 <= x < p["in_w"]:
                                a = p["in_addr"] + ch * p["in_ch_stride"] + (y - p["in_y0"]) * p["in_w"] + x
                                assert p["in_y0"] <= y and 0 <= a < FB_WORDS
                                words.append(int(fb[a]))
                            else:
                                words.append(pad_value)
                        beats.append(words)
                    steps.append((rec, beats))
            if last_tile:
                break
            p0 += n
    return steps, reads


def run_loader(fb, cmds, lanes, rng, take_prob):
    """Run the commands ``cmds`` (parameter dicts) one after the other on one loader over the buffer ``fb``;
    returns per command (the steps the consumer saw, as in ``ref_steps``; reads issued)."""
    dut = WindowLoader(FB_ADDR_BITS, lanes=lanes)
    results = []

    async def bench(ctx):
        rd = [0] * LOAD_WORDS
        for p in cmds:
            for name, v in p.items():
                ctx.set(getattr(dut.p, name), v)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.run, 1)
            steps, reads, kx, rec, beats = [], 0, 0, None, []
            for _ in range(100_000):
                for t in range(LOAD_WORDS):
                    ctx.set(dut.rd_data[t], rd[t])
                take = ctx.get(dut.rec_ready) and rng.random() < take_prob
                ctx.set(dut.kx, kx)
                ctx.set(dut.consume, int(take and kx == p["k"] - 1))
                if take:
                    now = {f: ctx.get(getattr(dut.rec, f)) for f in REC_FIELDS}
                    if kx == 0:
                        rec, beats = now, []
                    assert now == rec      # the record holds over the step's beats
                    beats.append([ctx.get(dut.lane[j]) for j in range(lanes)])
                    kx += 1
                    if kx == p["k"]:
                        steps.append((rec, beats))
                        kx = 0
                if ctx.get(dut.rd_en):
                    a = ctx.get(dut.rd_addr)
                    reads += 1
                    rd = [int(fb[(a + t) % FB_WORDS]) for t in range(LOAD_WORDS)]
                finished = ctx.get(dut.done) and ctx.get(dut.empty)
                await ctx.tick()
                if finished:
                    break
            else:
                raise AssertionError("the loader did not finish")
            ctx.set(dut.run, 0)
            ctx.set(dut.consume, 0)
            await ctx.tick()
            results.append((steps, reads))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def random_command(rng, lanes, pool):
    """A CONV / POOL of a random geometry (one band of its map) whose input fits the 4096-word buffer."""
    while True:
        k = rng.randint(1, 11)
        s = rng.randint(1, 4)
        pad = rng.randint(0, min(k - 1, 5))
        in_w = rng.randint(max(1, k - 2 * pad), k + 3 * lanes // 2)
        in_h_total = rng.randint(max(1, k - 2 * pad), k + 8)
        out_w = (in_w + 2 * pad - k) // s + 1
        out_h_total = (in_h_total + 2 * pad - k) // s + 1
        if out_w < 1 or out_h_total < 1:
            continue
        out_y0 = rng.randint(0, out_h_total - 1)
        out_h = rng.randint(1, min(out_h_total - out_y0, max(1, 3 * lanes // out_w)))
        y_lo = max(0, out_y0 * s - pad)
        y_hi = min(in_h_total - 1, (out_y0 + out_h - 1) * s + k - 1 - pad)
        in_y0 = rng.randint(max(0, y_lo - 2), y_lo)
        rows = max(1, y_hi - in_y0 + 1)
        if pool:
            in_c = out_c = rng.randint(1, 3)
        else:
            in_c = rng.randint(1, 3 if k < 7 else 2)
            out_c = rng.choice([1, lanes - 1, lanes, lanes + 1, 2 * lanes + 3])
        in_ch_stride = rows * in_w + rng.randint(0, 20)
        size = in_c * in_ch_stride
        if size + 40 > FB_WORDS:
            continue
        in_addr = rng.randint(20, FB_WORDS - size - 20)
        return dict(pool=int(pool), out_c=out_c, in_c=in_c, k=k, stride=s, pad=pad, out_h=out_h, out_w=out_w,
                    out_y0=out_y0, in_y0=in_y0, in_h_total=in_h_total, in_addr=in_addr,
                    in_ch_stride=in_ch_stride, in_w=in_w)


def _buffer(rng, extremes):
    if extremes:
        return [rng.choice([INT16_MIN, INT16_MAX, INT16_MIN + 1, INT16_MAX - 1, 0, -1, 1])
                for _ in range(FB_WORDS)]
    return [rng.randint(INT16_MIN, INT16_MAX) for _ in range(FB_WORDS)]


def check(seed, lanes, n_cmds, take_prob, extremes=False, fixed=None):
    rng = random.Random(seed)
    fb = _buffer(rng, extremes)
    cmds = fixed or [random_command(rng, lanes, pool=bool(rng.randint(0, 1))) for _ in range(n_cmds)]
    got = run_loader(fb, cmds, lanes, rng, take_prob)
    for p, (steps, reads) in zip(cmds, got, strict=True):
        want_steps, want_reads = ref_steps(fb, p, lanes)
        assert len(steps) == len(want_steps), p
        for i, (s_got, s_want) in enumerate(zip(steps, want_steps, strict=True)):
            assert s_got == s_want, (p, i)
        assert reads == want_reads, p


@pytest.mark.parametrize("seed", range(4))
def test_random_geometries(seed):
    check(seed, 12, 3, take_prob=[1.0, 0.5, 0.2, 0.8][seed], extremes=seed % 2 == 1)


@pytest.mark.parametrize("lanes", [4, 16, 24])
def test_other_lane_counts(lanes):
    check(100 + lanes, lanes, 2, take_prob=0.6, extremes=True)


def test_edges_and_extremes():
    """Fixed corner cases: a 1x1 conv at full speed (a step per cycle), an 11x11 stride-4 conv whose tiles
    run over three output rows, a pool with padding at every map edge (reads -32768 there), a band in the
    middle of its map, a map one pixel wide."""
    base = dict(pool=0, out_c=13, in_c=2, k=1, stride=1, pad=0, out_h=3, out_w=7, out_y0=0, in_y0=0,
                in_h_total=3, in_addr=100, in_ch_stride=21, in_w=7)
    cmds = [
        base,
        dict(base, k=11, stride=4, pad=2, in_c=1, out_c=12, in_w=23, in_h_total=15, out_w=4, out_h=2,
             out_y0=1, in_y0=2, in_ch_stride=23 * 13),
        dict(base, pool=1, k=3, stride=2, pad=1, in_c=2, out_c=2, in_w=5, in_h_total=5, out_w=3, out_h=3,
             in_ch_stride=25),
        dict(base, pool=1, k=3, stride=1, pad=1, in_c=1, out_c=1, in_w=1, in_h_total=6, out_w=1, out_h=3,
             out_y0=2, in_y0=1, in_ch_stride=6),
        # a 1x1 pool whose steps take three reads: `done` rises while the last one is still landing (`empty`
        # must stay low until it has)
        dict(base, pool=1, k=1, stride=1, in_c=2, out_c=2, in_w=2, in_h_total=3, out_w=2, out_h=3,
             in_ch_stride=6),
    ]
    check(7, 12, 0, take_prob=1.0, extremes=True, fixed=cmds)


@pytest.mark.parametrize("kw", [dict(lanes=3), dict(lanes=25), dict(lanes=True), dict(fb_addr_bits=7),
                                dict(fb_addr_bits=25), dict(fb_addr_bits=12.0)])
def test_parameters_checked(kw):
    with pytest.raises(ValueError):
        WindowLoader(**kw)
