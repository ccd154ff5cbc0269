"""The coded-weight stream on its own (Amaranth simulator): a coded layer's DRAM image
(``sim.program.compressed_weight_image``) behind a DRAM model with latency, jitter and refusals, two weight
banks whose consumer releases them after random delays; every bank fill holds exactly golden's decoded weights
(``golden.weightcodec.decode_layer``) and each group's biases, in group / chunk order, and the counters sum
to the weights written. Layers deeper than a bank (chunks), a raw first group (``w_raw0``), extremes."""

from dataclasses import replace

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden import weightcodec as wc
from hw.engine import dram_req_layout, dram_resp_layout
from hw.weight_stream import LANES, WeightStream
from sim.program import ConvLayer, compressed_weight_image

W_ADDR = 0x40


def coded_layer(rng, out_c, in_c, k, qf):
    w = np.clip(rng.normal(0, 3000, size=(out_c, in_c, k, k)), -32768, 32767).astype(np.int16)
    w.flat[0], w.flat[1] = -32768, 32767
    bias = rng.integers(-2**40, 2**40, out_c)
    bias[0], bias[-1] = -2**47, 2**47 - 1
    layer = ConvLayer("c", w, bias, 10)
    return replace(layer, wcodec=wc.encode_layer(w, qf))


def run_stream(layer, wb_depth, raw0, seed):
    """Run one coded layer; returns the list of bank fills as (bank, rows [wb_depth, 12], bias [12] or None)
    in the order they were released, and the counters' sums."""
    rng = np.random.default_rng(seed)
    image, entries, area, enc = compressed_weight_image(layer, raw0)
    dram = np.zeros(1 << 16, np.int64)
    dram[W_ADDR:W_ADDR + image.size] = image
    dram_addr = -(-(W_ADDR + image.size + 40) // 12) * 12
    dram[dram_addr:dram_addr + area.size] = area
    out_c, k_rows = layer.weight.shape[0], layer.weight[0].size
    groups = -(-out_c // LANES)
    kblocks = -(-k_rows // 64)
    fills_per_group = -(-kblocks // (wb_depth // 64))
    coded_groups = groups - int(raw0)
    dut = WeightStream(dram_req_layout(12), dram_resp_layout(12), wb_depth)
    out = {"fills": [], "weights": 0, "active": 0}

    async def bench(ctx):
        p = dut.p
        for name, v in dict(coded=1, w_raw0=int(raw0), w_addr=W_ADDR, rows=entries, dram_addr=dram_addr,
                            row_len=enc.lane_blocks,
                            k_rows=k_rows, groups=groups).items():
            ctx.set(getattr(p, name), int(v))
        # (with raw0 the plain fetcher has already brought group 0: its flags say so from the start)
        ctx.set(dut.raw0_req_done, int(raw0))
        ctx.set(dut.raw0_rsp_done, int(raw0))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.run, 1)
        banks = np.zeros((2, wb_depth, LANES), np.int64)
        bias = np.zeros((2, LANES, 3), np.int64)
        bias_fresh = [False, False]
        full, filling = 0, 0
        pending = []            # DRAM responses in flight: (ready cycle, words)
        consume, wait = int(raw0), int(rng.integers(0, 8))
        cycle = 0
        while len(out["fills"]) < coded_groups * fills_per_group:
            cycle += 1
            assert cycle < 5_000, "the weight stream stalled"
            head = pending[0] if pending and pending[0][0] <= cycle else None
            ctx.set(dut.resp.valid, int(head is not None))
            if head is not None:
                for t in range(12):
                    ctx.set(dut.resp.payload.rdata[t], int(head[1][t]))
            ctx.set(dut.req.ready, int(rng.random() < 0.8))
            ctx.set(dut.bank_full, full)
            ctx.set(dut.bank_filling, filling)
            if ctx.get(dut.req.valid) and ctx.get(dut.req.ready):
                addr, count = ctx.get(dut.req.payload.addr), ctx.get(dut.req.payload.count)
                assert count == 12 and not ctx.get(dut.req.payload.write)
                t0 = max([cycle + 3 + int(rng.integers(0, 4))] + [q[0] for q in pending[-1:]])
                pending.append((t0, dram[addr:addr + 12].copy()))
            if head is not None and ctx.get(dut.resp.ready):
                pending.pop(0)
            if ctx.get(dut.bias_we):
                b, t = ctx.get(dut.bias_bank), ctx.get(dut.bias_word)
                bias[b, :, t] = [ctx.get(dut.bias_data[j]) for j in range(LANES)]
                bias_fresh[b] = True
            wr_en, wr_bank = ctx.get(dut.wr_en), ctx.get(dut.wr_bank)
            n = 0
            for j in range(LANES):
                if wr_en >> j & 1:
                    banks[wr_bank, ctx.get(dut.wr_addr[j]), j] = ctx.get(dut.wr_data[j])
                    n += 1
            assert ctx.get(dut.weights) == n
            out["weights"] += n
            out["active"] += ctx.get(dut.active)
            fill_set, set_full = ctx.get(dut.fill_set), ctx.get(dut.set_full)
            assert not fill_set & (full | filling), "a bank reserved while in use"
            release = 0
            if full >> consume & 1:
                if wait == 0:
                    b48 = bias[consume, :, 0] | bias[consume, :, 1] << 16 | bias[consume, :, 2] << 32
                    b = np.where(b48 >= 2**47, b48 - 2**48, b48)
                    out["fills"].append((consume, banks[consume].copy(), b if bias_fresh[consume] else None))
                    bias_fresh[consume] = False
                    release = 1 << consume
                    consume ^= 1
                    wait = int(rng.integers(0, 30))
                else:
                    wait -= 1
            full = (full | set_full) & ~release
            filling = (filling | fill_set) & ~set_full
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("case", [
    dict(out_c=14, in_c=3, k=3, wb_depth=64, raw0=False, qf=90),     # two groups, one block row each
    dict(out_c=13, in_c=2, k=9, wb_depth=64, raw0=False, qf=20),     # K = 162: three chunks per group
    dict(out_c=26, in_c=5, k=3, wb_depth=128, raw0=True, qf=50),     # raw first group, then two coded
])
def test_weight_stream_fills_banks_with_decoded_weights(case):
    rng = np.random.default_rng(case["out_c"] * 7 + case["k"])
    layer = coded_layer(rng, case["out_c"], case["in_c"], case["k"], case["qf"])
    wb_depth, raw0 = case["wb_depth"], case["raw0"]
    out = run_stream(layer, wb_depth, raw0, seed=case["k"])
    out_c, k_rows = layer.weight.shape[0], layer.weight[0].size
    dec = np.asarray(wc.decode_layer(layer.wcodec)).reshape(out_c, -1)
    kblocks = -(-k_rows // 64)
    chunk_blocks = wb_depth // 64
    fills = iter(out["fills"])
    bank = int(raw0)
    for g in range(int(raw0), -(-out_c // LANES)):
        ch = range(g * LANES, min(out_c, (g + 1) * LANES))
        for kb0 in range(0, kblocks, chunk_blocks):
            got_bank, rows, bias = next(fills)
            assert got_bank == bank
            bank ^= 1
            r0, r1 = kb0 * 64, min(k_rows, (kb0 + chunk_blocks) * 64)
            np.testing.assert_array_equal(rows[:r1 - r0, :len(ch)], dec[ch.start:ch.stop, r0:r1].T)
            if kb0 == 0:
                assert bias is not None
                np.testing.assert_array_equal(bias[:len(ch)], np.asarray(layer.bias)[ch.start:ch.stop])
            else:
                assert bias is None      # a chunk after the first keeps the group's biases where they are
    coded = -(-out_c // LANES) - int(raw0)
    assert out["weights"] == coded * LANES * kblocks * 64
    assert out["active"] > 0


def test_refuses():
    with pytest.raises(ValueError, match="WeightStream wb_depth"):
        WeightStream(dram_req_layout(12), dram_resp_layout(12), 100)
    with pytest.raises(ValueError, match="WeightStream needs 12-word DRAM beats"):
        WeightStream(dram_req_layout(8), dram_resp_layout(8), 64)
