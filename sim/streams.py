"""Stream drivers, monitors and a one-loop cycle scheduler for cocotb testbenches.

Every component here is stepped by one coroutine, ``run_cycles``: each clock cycle it lets every
driver put its outputs on the pins, waits for the combinational logic to settle (``ReadOnly``), lets
every driver and monitor sample the handshake, then waits for the rising edge. One ``ReadOnly`` and
one ``RisingEdge`` per cycle whatever the number of streams: awaiting per stream per cycle would
multiply cocotb's per-await cost (TOOLCHAIN.md: Python testbenches run at tens of kcycles/s).

A stream port ``x`` of an Amaranth component appears in Verilog as ``x__valid``, ``x__ready`` and
``x__payload``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


class StreamDriver:
    """Drives ``beats`` (flat payload ints) into a stream sink of the DUT, in order.

    ``gap_prob``: probability of holding ``valid`` low in a cycle (random input gaps).
    ``on_accept(index)`` is called when beat ``index`` was transferred.
    """

    def __init__(self, dut, port: str, beats: Sequence[int] = (), gap_prob: float = 0.0,
                 rng: random.Random | None = None, on_accept: Callable[[int], None] | None = None):
        self.valid = getattr(dut, f"{port}__valid")
        self.ready = getattr(dut, f"{port}__ready")
        self.payload = getattr(dut, f"{port}__payload")
        self.beats = list(beats)
        self.index = 0
        self.gap_prob = gap_prob
        self.rng = rng or random.Random(0)
        self.on_accept = on_accept
        self.first_accept_cycle: int | None = None
        self.last_accept_cycle: int | None = None
        self._driving = False

    def extend(self, beats: Sequence[int]) -> None:
        self.beats.extend(beats)

    @property
    def done(self) -> bool:
        return self.index >= len(self.beats)

    def drive(self, cycle: int) -> None:
        self._driving = not self.done and not (self.gap_prob and self.rng.random() < self.gap_prob)
        if self._driving:
            self.payload.value = self.beats[self.index]
        self.valid.value = int(self._driving)

    def sample(self, cycle: int) -> None:
        if self._driving and self.ready.value:
            if self.first_accept_cycle is None:
                self.first_accept_cycle = cycle
            self.last_accept_cycle = cycle
            if self.on_accept:
                self.on_accept(self.index)
            self.index += 1


class StreamMonitor:
    """Collects the payloads a stream source of the DUT transfers; drives ``ready``.

    ``stall_prob``: probability of holding ``ready`` low in a cycle (random back-pressure).
    """

    def __init__(self, dut, port: str, stall_prob: float = 0.0, rng: random.Random | None = None,
                 on_beat: Callable[[int], None] | None = None):
        self.valid = getattr(dut, f"{port}__valid")
        self.ready = getattr(dut, f"{port}__ready")
        self.payload = getattr(dut, f"{port}__payload")
        self.stall_prob = stall_prob
        self.rng = rng or random.Random(1)
        self.on_beat = on_beat
        self.beats: list[int] = []
        self._ready = True

    def drive(self, cycle: int) -> None:
        self._ready = not (self.stall_prob and self.rng.random() < self.stall_prob)
        self.ready.value = int(self._ready)

    def sample(self, cycle: int) -> None:
        if self._ready and self.valid.value:
            word = int(self.payload.value)
            self.beats.append(word)
            if self.on_beat:
                self.on_beat(word)


async def run_cycles(clk, parts: Sequence, until: Callable[[], bool], max_cycles: int,
                     what: str = "simulation") -> int:
    """Step every driver/monitor in ``parts`` once per clock cycle until ``until()`` holds.

    Returns the number of cycles run. Raises ``TimeoutError`` after ``max_cycles`` (a hang is a
    failure with a message, not a stuck test).
    """
    cycle = 0
    while not until():
        if cycle >= max_cycles:
            raise TimeoutError(f"{what}: not finished after {max_cycles} cycles")
        for p in parts:
            p.drive(cycle)
        await ReadOnly()
        for p in parts:
            p.sample(cycle)
        await RisingEdge(clk)
        cycle += 1
    return cycle


async def reset(dut, cycles: int = 2) -> None:
    """Synchronous reset of an Amaranth design (``rst`` high for ``cycles`` rising edges)."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def start_bench(dut, idle_inputs) -> None:
    """Start the clock, hold the stream valid/ready and the named control inputs low, reset."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.inp__valid.value = 0
    dut.out__ready.value = 0
    for name in idle_inputs:
        getattr(dut, name).value = 0
    await reset(dut)


def env_seed() -> int:
    """The testbench's random seed (``EDGESPLIT_SEED``, default 1)."""
    return int(os.environ.get("EDGESPLIT_SEED", "1"))


def env_gaps() -> float:
    """The probability of an input gap / output stall per cycle (``EDGESPLIT_GAPS``, default 0.2)."""
    return float(os.environ.get("EDGESPLIT_GAPS", "0.2"))
