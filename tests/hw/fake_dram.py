"""A DRAM read port for one requester's unit tests (the weight fetcher, the table loader): in-order responses
from a word array, each at least 2 cycles after its request plus a random latency, requests refused at random."""

from __future__ import annotations


class FakeReadPort:
    def __init__(self, dram, beat: int, rng, extra_latency: int = 6, ready_p: float = 0.7):
        self.dram, self.beat, self.rng = dram, beat, rng
        self.extra_latency, self.ready_p = extra_latency, ready_p
        self.pending: list[tuple[int, object]] = []   # (cycle the response may go, words)
        self.head = None

    def drive(self, ctx, dut, cycle: int) -> None:
        """This cycle's response (the oldest one due) and the request's ready."""
        self.head = self.pending[0] if self.pending and self.pending[0][0] <= cycle else None
        ctx.set(dut.resp.valid, int(self.head is not None))
        if self.head is not None:
            for t in range(self.beat):
                ctx.set(dut.resp.payload.rdata[t], int(self.head[1][t]))
        ctx.set(dut.req.ready, int(self.rng.random() < self.ready_p))

    def accept(self, ctx, dut, cycle: int) -> int | None:
        """The address of a read the unit hands over this cycle (checked: a read of one beat), else None."""
        if not (ctx.get(dut.req.valid) and ctx.get(dut.req.ready)):
            return None
        a = ctx.get(dut.req.payload.addr)
        assert ctx.get(dut.req.payload.count) == self.beat and not ctx.get(dut.req.payload.write)
        due = max([cycle + 2 + int(self.rng.integers(0, self.extra_latency))] + [q[0] for q in self.pending[-1:]])
        self.pending.append((due, self.dram[a:a + self.beat].copy()))
        return a

    def taken(self, ctx, dut):
        """The response the unit takes this cycle (its words), else None."""
        if self.head is not None and ctx.get(dut.resp.ready):
            self.pending.pop(0)
            return self.head[1]
        return None
