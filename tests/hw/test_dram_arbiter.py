"""The DRAM port arbiter on its own (Amaranth simulator): three requesters offering random requests (the LOAD
engine reads only, the STORE engine writes only) against a DRAM model that refuses requests at random and
answers reads in order after a random latency, owners that refuse responses at random; every cycle the granted
requester is the one a Python model of the priorities and the tag FIFO picks, every read's data goes to its
owner in order, and no read is lost or duplicated. A long burst fills the 64 tags."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.dram_arbiter import TAGS, DramArbiter
from hw.engine import dram_req_layout, dram_resp_layout

BEAT = 12


def run_arbiter(cycles, seed, latency=(1, 6), burst=False):
    rng = np.random.default_rng(seed)
    dut = DramArbiter(dram_req_layout(BEAT), dram_resp_layout(BEAT))
    srcs = {"fg": dut.fg_req, "ld": dut.ld_req, "st": dut.st_req}
    stats = {"fg": 0, "ld": 0, "st": 0, "fg_rsp": 0, "ld_rsp": 0, "max_tags": 0}

    async def bench(ctx):
        offer = {s: None for s in srcs}            # the request each source holds until it is taken
        expect = {"fg": [], "ld": []}              # read addresses in flight per owner, in order
        tags = []                                  # the model's tag FIFO: owner per read in flight
        pending = []                               # DRAM: (ready cycle, addr)
        n = 0
        for cycle in range(cycles):
            for s, sig in srcs.items():
                if offer[s] is None and rng.random() < (0.9 if burst and s == "ld" else 0.35):
                    n += 1
                    # (the LOAD engine only reads, the STORE engine only writes)
                    write = {"st": True, "ld": False}.get(s, bool(rng.random() < 0.3))
                    offer[s] = (1000 * n + {"fg": 1, "ld": 2, "st": 3}[s], write)
                ctx.set(sig.valid, int(offer[s] is not None))
                if offer[s] is not None:
                    ctx.set(sig.payload.addr, offer[s][0])
                    ctx.set(sig.payload.write, int(offer[s][1]))
                    ctx.set(sig.payload.count, BEAT)
            dram_ready = bool(rng.random() < 0.8)
            ctx.set(dut.req.ready, int(dram_ready))
            head = pending[0] if pending and pending[0][0] <= cycle else None
            ctx.set(dut.resp.valid, int(head is not None))
            if head is not None:
                for t in range(BEAT):
                    ctx.set(dut.resp.payload.rdata[t], (head[1] + t) & 0xFFFF)
            own_ready = {"fg": bool(rng.random() < 0.7), "ld": bool(rng.random() < 0.7)}
            ctx.set(dut.fg_resp.ready, int(own_ready["fg"]))
            ctx.set(dut.ld_resp.ready, int(own_ready["ld"]))
            # the model: the first offering source in priority order, reads only with a free tag
            want = next((s for s in srcs if offer[s] is not None), None)
            fits = want is not None and (offer[want][1] or len(tags) < TAGS)
            grant = want if fits and dram_ready else None
            assert ctx.get(dut.req.valid) == int(fits), (cycle, want, offer, len(tags), ctx.get(dut.resp.ready))
            for s, sig in srcs.items():
                # (the STORE engine's ready does not wait for its valid: the port is its when no one above offers)
                idle_above = s == "st" and dram_ready and offer["fg"] is None and offer["ld"] is None
                assert ctx.get(sig.ready) == int(grant == s or idle_above), (cycle, s, grant)
            if grant is not None:
                addr, write = offer[grant]
                assert ctx.get(dut.req.payload.addr) == addr and ctx.get(dut.req.payload.write) == int(write)
                stats[grant] += 1
                if not write:
                    tags.append(grant)
                    expect[grant].append(addr)
                    t0 = max([cycle + int(rng.integers(*latency))] + [q[0] for q in pending[-1:]])
                    pending.append((t0, addr))
                offer[grant] = None
            stats["max_tags"] = max(stats["max_tags"], len(tags))
            # responses: to the oldest tag's owner, when it is ready
            if head is not None:
                owner = tags[0]
                for o in ("fg", "ld"):
                    sig = dut.fg_resp if o == "fg" else dut.ld_resp
                    assert ctx.get(sig.valid) == int(o == owner)
                taken = own_ready[owner]
                assert ctx.get(dut.resp.ready) == int(taken)
                if taken:
                    sig = dut.fg_resp if owner == "fg" else dut.ld_resp
                    assert [ctx.get(sig.payload.rdata[t]) for t in range(BEAT)] == \
                        [(expect[owner][0] + t) & 0xFFFF for t in range(BEAT)]
                    expect[owner].pop(0)
                    tags.pop(0)
                    pending.pop(0)
                    stats[f"{owner}_rsp"] += 1
            else:
                assert not ctx.get(dut.fg_resp.valid) and not ctx.get(dut.ld_resp.valid)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_arbiter_random(seed):
    s = run_arbiter(1500, seed)
    assert min(s["fg"], s["ld"], s["st"], s["fg_rsp"], s["ld_rsp"]) > 20


def test_arbiter_fills_the_tags():
    s = run_arbiter(600, 7, latency=(150, 160), burst=True)
    assert s["max_tags"] == TAGS


def test_refuses():
    with pytest.raises(ValueError, match="DramArbiter req_layout"):
        DramArbiter(dram_resp_layout(BEAT), dram_resp_layout(BEAT))
