"""The sequencer on its own (Amaranth simulator) against a cycle-by-cycle Python model of the same FSM, at 12, 4 and
16 lanes (3, 9 and 3 descriptor beats): command lists of random descriptors (every bit random, ops outside
``Op`` included, END last) at random addresses (one list wraps past 2**32) behind a DRAM model with random latency
and refusals; random ``start``, ``unit_done``, ``enc_block`` and ``dma_block`` in every state. Every output is
compared every cycle; each list's descriptors come out decoded, in order, one ``unit_start`` each."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.descriptor import DESC_BITS, desc_beats, desc_words_padded
from hw.descriptor import layout as desc_layout
from hw.engine import dram_req_layout, dram_resp_layout
from hw.sequencer import Sequencer

OP = desc_layout["op"].offset
NOCOUNT = desc_layout["nocount"].offset
M32 = (1 << 32) - 1


class SeqModel:
    """The sequencer's registers and, from them and a cycle's inputs, its outputs and next registers."""

    def __init__(self, lanes):
        self.lanes, self.beats, self.stride = lanes, desc_beats(lanes), desc_words_padded(lanes)
        self.state, self.cmd_ptr, self.fetch_req, self.fetch_rsp = "IDLE", 0, 0, 0
        self.raw = [0] * self.beats
        self.desc = self.running = self.done = self.cmd_done = self.cmd_index = 0

    def outputs(self, i):
        st, op = self.state, (self.desc >> OP) & 0xF
        disp, exe = st == "DISPATCH", st == "EXEC"
        return {
            "running": self.running, "done": self.done, "cmd_done": self.cmd_done, "cmd_index": self.cmd_index,
            "desc": self.desc, "fetching": int(st == "FETCH"),
            "req_valid": int(st == "FETCH" and self.fetch_req < self.beats), "resp_ready": int(st == "FETCH"),
            "exec_state": int(exe),
            "wait_enc": int(disp and i["enc_block"]),
            "wait_dma": int(disp and not i["enc_block"] and i["dma_block"]),
            "unit_start": int(disp and not i["enc_block"] and not i["dma_block"] and op != 0),
            "count_en": int(self.running and not (exe and (self.desc >> NOCOUNT) & 1)),
            "req_addr": (self.cmd_ptr + self.fetch_req * self.lanes) & M32,
        }

    def step(self, i, o):
        st = self.state
        self.cmd_done = 0
        if st == "IDLE" and i["start"]:
            self.cmd_ptr, self.cmd_index, self.done, self.running = i["cmd_addr"], 0, 0, 1
            self.fetch_req = self.fetch_rsp = 0
            self.state = "FETCH"
        elif st == "FETCH":
            if self.fetch_rsp == self.beats:      # (the registered count: the cycle after the last response)
                self.state = "DECODE"
            if o["req_valid"] and i["req_ready"]:
                self.fetch_req += 1
            if i["resp_valid"]:
                self.raw[self.fetch_rsp] = i["resp_beat"]
                self.fetch_rsp += 1
        elif st == "DECODE":
            v = sum(w << (16 * self.lanes * b) for b, w in enumerate(self.raw))
            self.desc = v & ((1 << DESC_BITS) - 1)
            self.state = "DISPATCH"
        elif st == "DISPATCH" and not i["enc_block"] and not i["dma_block"]:
            if (self.desc >> OP) & 0xF:
                self.state = "EXEC"
            else:
                self.done, self.running, self.state = 1, 0, "IDLE"
        elif st == "EXEC" and i["unit_done"]:
            self.cmd_done, self.cmd_index = 1, (self.cmd_index + 1) & 0xFFFF
            self.cmd_ptr = (self.cmd_ptr + self.stride) & M32
            self.fetch_req = self.fetch_rsp = 0
            self.state = "FETCH"


def make_lists(rng, lanes):
    """Command lists {base: [descriptor word lists]} (random bits, END last) and the DRAM holding them."""
    stride = desc_words_padded(lanes)
    dram, lists = {}, {}
    for base in (0x4000, 0x0012_3457, (1 << 32) - 2 * stride - 5):    # the last one wraps past 2**32 (to < 0x4000)
        n = int(rng.integers(2 if base > M32 // 2 else 0, 6))    # (the wrapping list: 3 commands or more)
        cmds = []
        for k in range(n + 1):
            words = [int(w) for w in rng.integers(0, 1 << 16, stride)]
            op = int(rng.integers(1, 16)) if k < n else 0              # 11..15: no Op, still not END
            words[OP // 16] = (words[OP // 16] & ~(0xF << (OP % 16))) | (op << (OP % 16))
            for j, w in enumerate(words):
                dram[(base + k * stride + j) & M32] = w
            cmds.append(sum(w << (16 * j) for j, w in enumerate(words)) & ((1 << DESC_BITS) - 1))
        lists[base] = cmds
    return lists, dram


def run_sequencer(lanes, seed, cycles):
    rng = np.random.default_rng(seed)
    lists, dram = make_lists(rng, lanes)
    bases = list(lists)
    dut = Sequencer(dram_req_layout(lanes), dram_resp_layout(lanes))
    model = SeqModel(lanes)
    log = {"starts": [], "runs": []}          # (list base, descriptors dispatched, cmd_index at done)

    async def bench(ctx):
        pending, run = [], None
        p_done, p_block = rng.uniform(0.05, 0.6), rng.uniform(0.0, 0.6)
        for cycle in range(cycles):
            head = pending[0] if pending and pending[0][0] <= cycle and rng.random() < 0.8 else None
            i = {"start": int(rng.random() < 0.2), "cmd_addr": bases[int(rng.integers(0, len(bases)))],
                 "unit_done": int(rng.random() < p_done), "enc_block": int(rng.random() < p_block),
                 "dma_block": int(rng.random() < p_block), "req_ready": int(rng.random() < 0.7),
                 "resp_valid": int(head is not None), "resp_beat": head[1] if head is not None else 0}
            for k in ("start", "cmd_addr", "unit_done", "enc_block", "dma_block"):
                ctx.set(getattr(dut, k), i[k])
            ctx.set(dut.req.ready, i["req_ready"])
            ctx.set(dut.resp.valid, i["resp_valid"])
            ctx.set(dut.resp.payload.rdata.as_value(), i["resp_beat"])
            o = model.outputs(i)
            got = {k: ctx.get(getattr(dut, k)) for k in ("running", "done", "cmd_done", "cmd_index", "fetching",
                                                          "exec_state", "wait_enc", "wait_dma", "unit_start",
                                                          "count_en")}
            got.update(desc=ctx.get(dut.desc.as_value()), req_valid=ctx.get(dut.req.valid),
                       resp_ready=ctx.get(dut.resp.ready))
            exp = {k: int(o[k]) for k in got}
            assert got == exp, f"cycle {cycle}: {got} != {exp}"
            if got["fetching"]:
                assert ctx.get(dut.req.payload.addr) == o["req_addr"]
                assert ctx.get(dut.req.payload.count) == lanes and ctx.get(dut.req.payload.write) == 0
            if got["req_valid"] and i["req_ready"]:       # the DRAM: in order, 1..6 cycles, refusals
                a = o["req_addr"]
                beat = sum(dram.get((a + t) & M32, 0) << (16 * t) for t in range(lanes))
                t0 = max([cycle + 1 + int(rng.integers(0, 6))] + [q[0] for q in pending[-1:]])
                pending.append((t0, beat))
            if head is not None:
                assert got["resp_ready"]
                pending.pop(0)
            # the high-level view: which list runs, what it dispatches, where it ends
            if model.state == "IDLE" and i["start"]:
                run = [i["cmd_addr"], [], None]
            if got["unit_start"]:
                run[1].append(got["desc"])
            if model.state == "DISPATCH" and exp["wait_enc"] + exp["wait_dma"] + exp["unit_start"] == 0:
                run[2] = model.cmd_index                  # END dispatched
                log["runs"].append(tuple(run))
            model.step(i, o)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return lists, log


@pytest.mark.parametrize("lanes", [12, 4, 16])
def test_sequencer_random(lanes):
    lists, log = run_sequencer(lanes, seed=lanes, cycles=4000)
    assert len(log["runs"]) >= 8
    for base, dispatched, index in log["runs"]:
        cmds = lists[base]
        assert dispatched == cmds[:-1]            # every command but END, decoded, once, in order
        assert index == len(cmds) - 1
    assert {r[0] for r in log["runs"]} == set(lists)


def test_refuses():
    with pytest.raises(ValueError, match="Sequencer needs a response beat"):
        Sequencer(dram_req_layout(4), dram_resp_layout(12))
    with pytest.raises(ValueError, match="Sequencer req_layout"):
        Sequencer(dram_resp_layout(12), dram_resp_layout(12))
