"""The CONV / POOL unit on its own (Amaranth simulator), with the real MAC array behind it: random steps of
random tiles and groups from a model of the window loader (records presented after random delays), weight
groups (and chunks of groups deeper than a bank) from a model of the weight banks and their fetcher (filled
after random delays, released by the unit), random stalls on the array's input. Every tile's outputs equal a
pure-Python reference (CONV: ``requantize(bias + sum(w * a))`` per output channel and pixel; POOL: the maximum of
the tile's beats), nothing else is written, the counters sum to the reference's, and ``done`` comes once at the
end. Extremes: -32768 / 32767 activations, weights and 40-bit biases at their limits. At 4, 12 and 16 lanes."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from golden.fixedpoint import BIAS_MAX, BIAS_MIN, INT16_MAX, INT16_MIN, requantize
from hw.conv_pool import ConvPoolUnit
from hw.mac_array import MacArray

FB_ADDR_BITS = 14


class Harness(Elaboratable):
    """The unit joined to a MAC array as in the engine, with a stall on the array's input (``stall``)."""

    def __init__(self, lanes, depth):
        self.cp = ConvPoolUnit(FB_ADDR_BITS, lanes=lanes, depth=depth)
        self.array = MacArray(lanes, lanes)
        self.stall = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.cp, m.submodules.array = cp, array = self.cp, self.array
        m.d.comb += [array.inp.valid.eq(cp.arr.valid & ~self.stall), array.inp.payload.eq(cp.arr.payload),
                     cp.arr.ready.eq(array.inp.ready & ~self.stall), array.bias.eq(cp.arr_bias),
                     cp.arr_busy.eq(array.busy)]
        wiring.connect(m, array.out, cp.arr_out)
        return m


def _vals(rng, shape, extremes):
    x = rng.integers(INT16_MIN, INT16_MAX + 1, shape)
    if extremes:
        x[rng.random(shape) < 0.25] = INT16_MIN
        x[rng.random(shape) < 0.25] = INT16_MAX
    return x


def make_case(rng, lanes, pool, depth, extremes=False, chunked=False):
    """A random command: groups of tiles of steps of ``k`` beats, with their lane values (``a[g][t][s][kx]``,
    lanes beyond the tile's ``n`` 0 as the loader shows them) and, for CONV, each group's weights and biases."""
    k = int(rng.integers(1, 4))
    if pool:
        out_c, steps, tiles = int(rng.integers(1, 4)), k, int(rng.integers(1, 4))
        groups = out_c                                  # one channel per group
    else:
        out_c = int(rng.integers(1, 2 * lanes + 1))
        groups = -(-out_c // lanes)
        steps = int(rng.integers(depth // k + 1, 2 * depth // k + 2)) if chunked else int(rng.integers(1, 5))
        tiles = 1 if chunked else int(rng.integers(1, 4))
    case = dict(lanes=lanes, pool=pool, k=k, out_c=out_c, groups=groups, steps=steps, depth=depth,
                out_addr=int(rng.integers(0, 64)), out_ch_stride=int(rng.integers(40, 80)),
                shift=int(rng.choice([0, 1, 16, 31])) if extremes else int(rng.integers(17, 22)),
                relu=bool(rng.integers(0, 2)), clamp=int(rng.choice([1, 6 << 8, INT16_MAX])) if rng.random() < 0.3
                else None, tiles=[], w=[], bias=[])
    for _ in range(groups):
        p0, tl = 0, []
        for _ in range(tiles):
            n = int(rng.integers(1, lanes + 1))
            a = _vals(rng, (steps, k, lanes), extremes)
            a[:, :, n:] = 0
            tl.append(dict(n=n, p0=p0, a=a))
            p0 += n
        case["tiles"].append(tl)
        if not pool:
            case["w"].append(_vals(rng, (steps * k, lanes), extremes))
            # (outside the extremes, of the scale of the sums: most outputs are not saturated)
            b = rng.integers(-2 ** (case["shift"] + 14), 2 ** (case["shift"] + 14), lanes)
            if extremes:
                b[rng.random(lanes) < 0.3] = BIAS_MIN
                b[rng.random(lanes) < 0.3] = BIAS_MAX
            case["bias"].append(b)
    return case


def ref(case):
    """The words the command writes: {address: value}, and the counters (macs, pool_ops, wb_read_words, beats)."""
    L, out, ctr = case["lanes"], {}, dict(macs=0, pool_ops=0, wb_read_words=0, beats=0)
    for g, tiles in enumerate(case["tiles"]):
        for t in tiles:
            n, a = t["n"], t["a"].reshape(-1, L)    # (steps * k, lanes): beat order (step, kx)
            ctr["beats"] += a.shape[0]
            if case["pool"]:
                ctr["pool_ops"] += n * a.shape[0]
                mx = a.max(axis=0)
                for j in range(n):
                    out[case["out_addr"] + g * case["out_ch_stride"] + t["p0"] + j] = int(mx[j])
                continue
            rows = min(case["out_c"] - g * L, L)
            ctr["macs"] += n * rows * a.shape[0]
            ctr["wb_read_words"] += L * a.shape[0]
            acc = case["w"][g].astype(object).T @ a.astype(object)      # (channels, pixels), exact
            for i in range(rows):
                for j in range(n):
                    y = requantize(int(acc[i, j]) + int(case["bias"][g][i]), case["shift"], case["relu"],
                                   case["clamp"])
                    out[case["out_addr"] + (g * L + i) * case["out_ch_stride"] + t["p0"] + j] = int(y)
    return out, ctr


def chunks(case):
    """The bank fills the weight fetcher makes, in order: (rows [depth, lanes], bias) per group, or per chunk of
    ``depth`` rows of a group deeper than a bank."""
    W, fills = case["depth"], []
    for w, b in zip(case["w"], case["bias"], strict=True):
        for r in range(0, w.shape[0], W):
            rows = np.zeros((W, case["lanes"]), np.int64)
            part = w[r:r + W]
            rows[:len(part)] = part
            fills.append((rows, b))
    return fills


def run(case, seed):
    """Run the command on the unit; returns ({address: value} written, counters)."""
    rng = np.random.default_rng(seed)
    L, W, k = case["lanes"], case["depth"], case["k"]
    h = Harness(L, W)
    cp = h.cp
    steps = [(g, ti, s) for g, tiles in enumerate(case["tiles"]) for ti in range(len(tiles))
             for s in range(case["steps"])]
    fills = [] if case["pool"] else chunks(case)
    got, ctr = {}, dict(macs=0, pool_ops=0, wb_read_words=0, beats=0, done=0)

    async def bench(ctx):
        p = cp.p
        for f in ("k", "out_c", "out_addr", "out_ch_stride"):
            ctx.set(getattr(p, f), case[f])
        ctx.set(p.pool, int(case["pool"]))
        ctx.set(p.k_rows, 0 if case["pool"] else case["steps"] * k)
        ctx.set(h.array.shift, case["shift"])
        ctx.set(h.array.relu, int(case["relu"]))
        ctx.set(h.array.clamp_en, int(case["clamp"] is not None))
        ctx.set(h.array.clamp, case["clamp"] or 0)
        ctx.set(cp.start, 1)
        await ctx.tick()
        ctx.set(cp.start, 0)
        ctx.set(cp.run, 1)
        si, wait = 0, int(rng.integers(0, 3))          # the next step and the cycles until it is loaded
        full, mem, bias, nxt_fill = [0, 0], [None, None], [np.zeros(L, np.int64)] * 2, 0
        fill_wait = int(rng.integers(0, 4))
        rd = [np.zeros(L, np.int64), np.zeros(L, np.int64)]
        for _ in range(20_000):
            # the window loader: the step's record once loaded
            ready = si < len(steps) and wait == 0
            ctx.set(cp.rec_ready, int(ready))
            if si < len(steps):
                g, ti, s = steps[si]
                t = case["tiles"][g][ti]
                ctx.set(cp.rec.n, t["n"])
                ctx.set(cp.rec.g, g)
                ctx.set(cp.rec.p0, t["p0"])
                ctx.set(cp.rec.rows_valid, min(case["out_c"] - g * L, L))
                ctx.set(cp.rec.first_step, int(s == 0))
                ctx.set(cp.rec.last_step, int(s == case["steps"] - 1))
                ctx.set(cp.rec.first_tile, int(ti == 0))
                ctx.set(cp.rec.last_tile, int(ti == len(case["tiles"][g]) - 1))
                kx = ctx.get(cp.kx)
                for j in range(L):
                    ctx.set(cp.lane[j], int(t["a"][s, kx, j]) if kx < k else 0)
            ctx.set(cp.loader_done, int(si == len(steps)))
            ctx.set(cp.loader_empty, int(si == len(steps)))
            # the weight banks
            ctx.set(cp.w_full, full[0] | full[1] << 1)
            for b in range(2):
                for j in range(L):
                    ctx.set(cp.w_rd_data[b][j], int(rd[b][j]))
                    ctx.set(cp.w_bias[b][j], int(bias[b][j]))
            ctx.set(h.stall, int(rng.random() < 0.3))
            # outputs of this cycle
            if ctx.get(cp.wr_en):
                addr, mask = ctx.get(cp.wr_addr), ctx.get(cp.wr_mask)
                for j in range(L):
                    if mask >> j & 1:
                        assert addr + j not in got, f"word {addr + j} written twice"
                        got[addr + j] = ctx.get(cp.wr_data[j])
            for name in ("macs", "pool_ops", "wb_read_words"):
                ctr[name] += ctx.get(getattr(cp, name))
            ctr["beats"] += ctx.get(cp.busy)
            done = ctx.get(cp.done)
            ctr["done"] += done
            consume, release = ctx.get(cp.consume), ctx.get(cp.w_release)
            rd_en, rd_bank, rd_addr = ctx.get(cp.w_rd_en), ctx.get(cp.w_bank), ctx.get(cp.w_rd_addr)
            if consume:
                assert ready
                si, wait = si + 1, int(rng.choice([0, 0, 1, 3]))
            elif wait:
                wait -= 1
            if rd_en:
                assert full[rd_bank]
                rd[rd_bank] = mem[rd_bank][rd_addr].copy()
            for b in range(2):
                if release >> b & 1:
                    assert full[b]
                    full[b] = 0
            # the fetcher: the next fill into the next bank once it is free
            b = nxt_fill % 2
            if nxt_fill < len(fills) and not full[b] and not release >> b & 1:
                if fill_wait:
                    fill_wait -= 1
                else:
                    mem[b], bias[b] = fills[nxt_fill]
                    full[b], nxt_fill, fill_wait = 1, nxt_fill + 1, int(rng.choice([0, 2, 7]))
            await ctx.tick()
            if done:
                break
        else:
            raise AssertionError("the unit never finished")
        assert nxt_fill == len(fills) and full == [0, 0]   # every fill taken and released
        ctx.set(cp.run, 0)

    sim = Simulator(h)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert ctr.pop("done") == 1
    return got, ctr


def informative(out):
    """Outputs neither saturated nor 0 (a test whose outputs all saturate would check little)."""
    return sum(INT16_MIN < v < INT16_MAX and v != 0 for v in out.values())


@pytest.mark.parametrize("lanes", [4, 12, 16, 24])
def test_conv_pool_random(lanes):
    rng = np.random.default_rng(lanes)
    for i in range(4):
        case = make_case(rng, lanes, pool=i % 2 == 1, depth=16, extremes=i >= 2)
        want = ref(case)
        assert run(case, seed=i) == want, (lanes, i)
        if i < 2:
            assert informative(want[0]) > len(want[0]) // 3


def test_conv_chunked_groups():
    """A group deeper than a bank (fully-connected layers): chunks of ``depth`` rows through the two banks."""
    rng = np.random.default_rng(7)
    for i in range(2):
        case = make_case(rng, 12, pool=False, depth=16, extremes=i == 1, chunked=True)
        assert case["steps"] * case["k"] > 16
        want = ref(case)
        assert run(case, seed=10 + i) == want
        if i == 0:
            assert informative(want[0]) > len(want[0]) // 3


def test_bad_parameters():
    for kw in (dict(lanes=3), dict(lanes=25), dict(fb_addr_bits=7), dict(depth=8), dict(depth=2**16 + 1)):
        with pytest.raises(ValueError, match="ConvPoolUnit"):
            ConvPoolUnit(**kw)
