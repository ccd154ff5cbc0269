"""hw.encode_stage alone in Amaranth's simulator: the compiler's ENC_TABLES and ENCODE commands for a map in the
feature buffer (``sim.program._Encoder``) run through the stage while other units compete for both ports at
random. Checked against references: the coded bytes and record equal the golden codec's (``sim.encoding``), the
DRAM port carries the unit's write whenever it has one and the other units' request otherwise (every request of
theirs is taken exactly once, unchanged), the buffer's read port is theirs whenever they read, the counters count
what crossed the ports, and ``block`` / ``done`` follow the commands."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.descriptor import Command, Op
from hw.dram_arbiter import dram_req_layout, dram_resp_layout
from hw.encode_stage import EncodeStage
from sim.encoding import EncodeSpec, plan_encoding, read_encoding
from sim.program import _Dram, _Encoder
from tests.hw.fake_dram import FakeReadPort

BANKS, ADDR_BITS, BEAT = 16, 12, 12
MAX_CYCLES = 60_000


def program(x, spec):
    """The ENC_TABLES / ENCODE commands of map ``x`` resident at buffer address 64, the DRAM image (tables), the
    plan (expected bytes, output area)."""
    plan = plan_encoding("m", x, spec)
    dram, cmds, tags = _Dram(BEAT), [], []
    enc = _Encoder({"m": plan}, dram, cmds, tags, 2 ** ADDR_BITS)
    enc.from_buffer("m", 64)
    return cmds, np.asarray(dram.image(4096), dtype=np.int64), plan


def run_stage(x, spec, seed):
    cmds, image, plan = program(x, spec)
    fb = np.zeros(2 ** ADDR_BITS + BANKS, dtype=np.int64)
    fb[64:64 + x.size] = x.reshape(-1)
    dut = EncodeStage(dram_req_layout(BEAT), dram_resp_layout(BEAT), ADDR_BITS, BANKS)
    rng = np.random.default_rng(seed)
    reads = FakeReadPort(image, BEAT, rng)
    dram = image.copy()

    class Port:   # FakeReadPort's view of the stage's foreground streams
        req, resp = dut.fg_req, dut.fg_resp

    seen = {"enc_samples": 0, "enc_out_words": 0, "enc_fb_read_words": 0, "written": 0, "grants": 0, "other_reqs": 0,
            "other_taken": 0, "blocked": 0, "end_blocked": 0}

    async def bench(ctx):
        cycle = 0
        for cmd in [*cmds, Command(Op.END)]:
            ctx.set(dut.desc.as_value(), cmd.to_int())
            state["op"] = cmd.op
            # dispatch: the command waits while the stage blocks it (END: until the unit has written everything)
            while True:
                assert cycle < MAX_CYCLES, "the stage did not finish"
                blocked = await step(ctx, cycle, False)
                cycle += 1
                if not blocked:
                    break
                seen["end_blocked" if cmd.op == Op.END else "blocked"] += 1
            if cmd.op == Op.END:
                break
            # execute: the start pulse in its first cycle, until done
            ctx.set(dut.start, 1)
            ctx.set(dut.exec, 1)
            while True:
                assert cycle < MAX_CYCLES, "the command did not end"
                done = await step(ctx, cycle, True, want="done")
                cycle += 1
                ctx.set(dut.start, 0)
                if done:
                    break
            ctx.set(dut.exec, 0)

    state = {"pending_rd": None, "other": None, "op": None}

    async def step(ctx, cycle, executing, want="block"):
        """One cycle of the other units and the ports around the stage; returns ``block`` (or ``done``) as seen
        this cycle."""
        # the other units: a random feature-buffer read and a random DRAM request, held until taken
        rd = rng.random() < 0.3
        ctx.set(dut.rd_en, int(rd))
        ctx.set(dut.rd_addr, int(rng.integers(0, 2 ** ADDR_BITS)))
        if state["other"] is None and rng.random() < 0.2:
            state["other"] = (int(rng.integers(0, 1 << 20)), int(rng.integers(1, BEAT + 1)))
            seen["other_reqs"] += 1
        ctx.set(dut.req.valid, int(state["other"] is not None))
        if state["other"] is not None:
            ctx.set(dut.req.payload.addr, state["other"][0])
            ctx.set(dut.req.payload.count, state["other"][1])
            ctx.set(dut.req.payload.write, 0)
        port_ready = int(rng.random() < 0.8)
        ctx.set(dut.port.ready, port_ready)
        # the buffer answers last cycle's read
        if state["pending_rd"] is not None:
            a = state["pending_rd"]
            for t in range(BANKS):
                ctx.set(dut.fb_rd_data[t], int(fb[a + t]))
        reads.drive(ctx, Port, cycle)
        await ctx.delay(1e-9)   # settle the combinational outputs
        # the buffer's read port: the other units' read whenever they read, else the unit's
        fb_en, fb_addr = ctx.get(dut.fb_rd_en), ctx.get(dut.fb_rd_addr)
        if rd:
            assert fb_en and fb_addr == ctx.get(dut.rd_addr)
        grant = fb_en and not rd
        seen["grants"] += int(grant)
        state["pending_rd"] = fb_addr if grant else None
        # the DRAM port: the unit's write first, else the other request, unchanged
        pv, pw = ctx.get(dut.port.valid), ctx.get(dut.port.payload.write)
        if pv and pw:
            assert not ctx.get(dut.req.ready)                 # the other units wait
            if port_ready:
                a, n = ctx.get(dut.port.payload.addr), ctx.get(dut.port.payload.count)
                for t in range(n):
                    dram[a + t] = ctx.get(dut.port.payload.wdata[t])
                seen["written"] += n
        elif state["other"] is not None:
            assert pv and ctx.get(dut.port.payload.addr) == state["other"][0]
            assert ctx.get(dut.port.payload.count) == state["other"][1] and not pw
            assert ctx.get(dut.req.ready) == port_ready
            if port_ready:
                state["other"] = None
                seen["other_taken"] += 1
        else:
            assert not pv
        # the foreground streams only in ENC_TABLES cycles
        tables = ctx.get(dut.tables)
        assert tables == int(executing and state["op"] == Op.ENC_TABLES)
        if state["op"] == Op.ENCODE and executing:
            assert ctx.get(dut.done)                       # ENCODE: handed over in its first cycle
        if not tables:
            assert not ctx.get(dut.fg_req.valid) and not ctx.get(dut.fg_resp.ready)
        reads.accept(ctx, Port, cycle)
        reads.taken(ctx, Port)
        seen["enc_out_words"] += ctx.get(dut.inc.enc_out_words)
        seen["enc_fb_read_words"] += ctx.get(dut.inc.enc_fb_read_words)
        seen["enc_samples"] += ctx.get(dut.inc.enc_samples)
        out = ctx.get(dut.done if want == "done" else dut.block)
        await ctx.tick()
        return out

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return read_encoding(dram, plan), plan, seen, cmds


@pytest.mark.parametrize("mode,seed", [("jpeg", 1), ("lossless", 2)])
def test_stage_codes_a_map_beside_competing_units(mode, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3000, 3000, size=(3, 9, 10)).astype(np.int16)
    x[0, 0, :3] = (32767, -32768, 0)                      # extremes
    got, plan, seen, cmds = run_stage(x, EncodeSpec(mode, qf=60), seed)
    assert [c.op for c in cmds][-1] == Op.ENCODE and any(c.op == Op.ENC_TABLES for c in cmds)
    assert got["match"], (len(got["data"]), len(plan.expected))     # byte for byte the golden codec's
    assert got["bytes"] == len(plan.expected) > 0
    # the samples of the padded mosaic (whole 8 x 8 blocks), as the record and the counter say
    assert got["samples"] == seen["enc_samples"] >= x.size and got["samples"] % 64 == 0
    # the counters count what crossed the ports
    assert seen["enc_out_words"] == seen["written"] > 0
    assert seen["enc_fb_read_words"] == BANKS * seen["grants"] > 0
    # the other units' requests were all taken (but the one still offered), one at a time
    assert seen["other_taken"] >= seen["other_reqs"] - 1 > 0
    assert seen["end_blocked"] > 0                     # END waited for the unit to finish writing


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="colour must be True or False"):
        EncodeStage(dram_req_layout(BEAT), dram_resp_layout(BEAT), ADDR_BITS, BANKS, colour=1)
    with pytest.raises(ValueError, match="fb_banks must be an integer in 1..64"):
        EncodeStage(dram_req_layout(BEAT), dram_resp_layout(BEAT), ADDR_BITS, 0)
