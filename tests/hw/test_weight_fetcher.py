"""The plain weight fetcher on its own (Amaranth simulator): random layers (1..4 groups, ``k_rows`` from 1 to
past twice the bank depth: chunked groups as in fully-connected layers), random DRAM words (extremes included)
behind a DRAM model with latency, jitter and refusals, and a consumer that takes each full bank after a random
delay and releases it. Checked: the request addresses (consecutive beats from ``w_addr``, nothing past the
layer), that a bank is written only while reserved, every row and bias word of every chunk against the layer
image, the flags' protocol, ``req_done`` / ``raw0_rsp_done`` (the cycle after the last request / response); coded
layers with ``w_raw0`` (only the first group) and without (nothing), and a command that fetches nothing."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.engine import dram_req_layout, dram_resp_layout
from hw.weight_fetcher import WeightFetcher
from tests.hw.fake_dram import FakeReadPort

BIAS_BEATS = 3
EXTREME_WORDS = (0, 0x7FFF, 0x8000, 0xFFFF)


def _s16(w):
    return int(w) - 0x10000 if w & 0x8000 else int(w)


def expected_chunks(image, groups, k_rows, depth, beat):
    """The chunks in fetch order: (bias words per lane [3] or None, rows [n x beat]) from the layer image."""
    out = []
    gb = BIAS_BEATS + k_rows
    for g in range(groups):
        grp = image[g * gb * beat:(g + 1) * gb * beat].reshape(gb, beat)
        bias = [[int(grp[t, j]) for t in range(BIAS_BEATS)] for j in range(beat)]
        for c0 in range(0, k_rows, depth):
            out.append((bias if c0 == 0 else None, grp[BIAS_BEATS + c0:BIAS_BEATS + min(c0 + depth, k_rows)]))
    return out


def run_fetcher(*, groups, k_rows, depth, beat, seed, fetch=1, w_codec=0, w_raw0=0, w_addr=0x40):
    rng = np.random.default_rng(seed)
    fetched_groups = 0 if not fetch or (w_codec and not w_raw0) else 1 if w_codec else groups
    words = (BIAS_BEATS + k_rows) * groups * beat
    dram = np.full(w_addr + words + 4 * beat, 0xDEAD, np.int64)   # past the layer: never requested
    image = rng.integers(0, 1 << 16, words)
    extreme = rng.random(words) < 0.2
    image[extreme] = rng.choice(EXTREME_WORDS, int(extreme.sum()))
    dram[w_addr:w_addr + words] = image
    chunks = expected_chunks(image, fetched_groups, k_rows, depth, beat)
    dut = WeightFetcher(dram_req_layout(beat), dram_resp_layout(beat), depth)
    res = {"addrs": [], "consumed": 0, "last_req": None, "last_rsp": None, "req_done_at": None,
           "rsp_done_at": None, "cycles": 0}

    async def bench(ctx):
        ctx.set(dut.p.fetch, fetch)
        ctx.set(dut.p.w_codec, w_codec)
        ctx.set(dut.p.w_raw0, w_raw0)
        ctx.set(dut.p.w_addr, w_addr)
        ctx.set(dut.p.groups, groups)
        ctx.set(dut.p.k_rows, k_rows)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.run, 1)
        full = filling = 0
        banks = [{"rows": {}, "bias": [[None] * BIAS_BEATS for _ in range(beat)]} for _ in range(2)]
        port, cycle, wait = FakeReadPort(dram, beat, rng), 0, int(rng.integers(0, 6))
        while True:
            cycle += 1
            assert cycle < 20000
            ctx.set(dut.bank_full, full)
            ctx.set(dut.bank_filling, filling)
            port.drive(ctx, dut, cycle)
            # requests
            a = port.accept(ctx, dut, cycle)
            if a is not None:
                res["addrs"].append(a)
                res["last_req"] = cycle
            if ctx.get(dut.req_done) and res["req_done_at"] is None:
                res["req_done_at"] = cycle
            if ctx.get(dut.raw0_rsp_done) and res["rsp_done_at"] is None:
                res["rsp_done_at"] = cycle
            # responses and bank writes
            row_we, bias_we = ctx.get(dut.row_we), ctx.get(dut.row_bias_we)
            words = port.taken(ctx, dut)
            if words is not None:
                res["last_rsp"] = cycle
                assert row_we + bias_we == 1
                b = ctx.get(dut.row_bank)
                assert filling >> b & 1 and not full >> b & 1, "a write to a bank not reserved"
                data = [ctx.get(dut.row_data[j]) for j in range(beat)]
                assert data == [_s16(w) for w in words]
                if row_we:
                    a = ctx.get(dut.row_addr)
                    assert a not in banks[b]["rows"] and a < depth
                    banks[b]["rows"][a] = [int(w) & 0xFFFF for w in data]
                else:
                    w = ctx.get(dut.row_bias_word)
                    for j in range(beat):
                        assert banks[b]["bias"][j][w] is None
                        banks[b]["bias"][j][w] = data[j] & 0xFFFF
            else:
                assert not row_we and not bias_we
            # flags: the fetcher reserves a free bank, marks a filled one full
            fill_set, set_full = ctx.get(dut.fill_set), ctx.get(dut.set_full)
            for f in (fill_set, set_full):
                assert f in (0, 1, 2)
            if fill_set:
                assert not (full | filling) & fill_set
            if set_full:
                assert filling & set_full
            # the consumer: the chunks in order, banks alternating, each after a random delay
            release = 0
            k = res["consumed"]
            if k < len(chunks) and full >> (k % 2) & 1:
                if wait:
                    wait -= 1
                else:
                    bank = banks[k % 2]
                    bias, rows = chunks[k]
                    assert bank["rows"] == {r: [int(w) for w in rows[r]] for r in range(len(rows))}, k
                    if bias is not None:
                        assert bank["bias"] == bias, k
                    else:
                        assert bank["bias"] == [[None] * BIAS_BEATS for _ in range(beat)], k
                    banks[k % 2] = {"rows": {}, "bias": [[None] * BIAS_BEATS for _ in range(beat)]}
                    release = 1 << (k % 2)
                    res["consumed"] += 1
                    wait = int(rng.integers(0, 6))
            full, filling = (full | set_full) & ~release, (filling | fill_set) & ~set_full
            if res["consumed"] == len(chunks) and not port.pending and cycle > (res["last_rsp"] or 0) + 3 \
                    and (res["req_done_at"] is not None or (w_codec and not w_raw0 and cycle > 30)):
                assert not full and not filling
                break
            await ctx.tick()
        res["cycles"] = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    n_beats = fetched_groups * (BIAS_BEATS + k_rows)
    assert res["addrs"] == [w_addr + beat * i for i in range(n_beats)]
    assert res["consumed"] == len(chunks)
    # (a coded layer without w_raw0 is not the fetcher's: req_done stays low, the weight stream does not ask)
    assert res["req_done_at"] == (None if w_codec and not w_raw0 else res["last_req"] + 1 if n_beats else 1)
    if w_codec and w_raw0:
        assert res["rsp_done_at"] == res["last_rsp"] + 1
    else:
        assert res["rsp_done_at"] is None
    return res


@pytest.mark.parametrize("beat,depth", [(12, 16), (8, 16), (16, 32), (24, 32)])
def test_weight_fetcher_random(beat, depth):
    rng = np.random.default_rng(beat * 100 + depth)
    # k_rows: 1 row, one short of / exactly / one past the bank, over two banks (FC-like chunks)
    cases = [(1, 1), (3, depth - 1), (2, depth), (2, depth + 1), (1, 2 * depth + 5)]
    cases += [(int(rng.integers(1, 5)), int(rng.integers(1, 3 * depth))) for _ in range(3)]
    for i, (groups, k_rows) in enumerate(cases):
        run_fetcher(groups=groups, k_rows=k_rows, depth=depth, beat=beat, seed=i, w_addr=int(rng.integers(0, 500)))


@pytest.mark.parametrize("groups,k_rows", [(3, 9), (2, 40), (1, 16)])
def test_weight_fetcher_raw0(groups, k_rows):
    """A coded layer with w_raw0: only the first group, then raw0_rsp_done."""
    run_fetcher(groups=groups, k_rows=k_rows, depth=16, beat=12, seed=groups, w_codec=1, w_raw0=1)


@pytest.mark.parametrize("kw", [dict(w_codec=1, w_raw0=0), dict(fetch=0)])
def test_weight_fetcher_nothing(kw):
    """A coded layer without w_raw0, or a command that reads no weights (DWPOOL): no request (req_done at once for
    the latter)."""
    res = run_fetcher(groups=2, k_rows=9, depth=16, beat=12, seed=7, **kw)
    assert res["addrs"] == []


@pytest.mark.parametrize("args,match", [((dram_req_layout(12), dram_resp_layout(12), 8), "depth must be"),
                                        ((dram_req_layout(12), dram_resp_layout(12), 2**16 + 1), "depth must be"),
                                        ((dram_resp_layout(12), dram_resp_layout(12), 64), "req_layout must be"),
                                        ((dram_req_layout(12), dram_req_layout(12), 64), "resp_layout must be")])
def test_weight_fetcher_refuses(args, match):
    with pytest.raises(ValueError, match=f"WeightFetcher {match}"):
        WeightFetcher(*args)
