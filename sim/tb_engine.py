"""cocotb testbench of the engine with the simulation DRAM model (``engine_tb``).

The Python side (``sim.engine_run``) compiles a program, writes the DRAM image (``+DRAM_IMAGE``) and
reads the result back from the dump (``+DRAM_DUMP``). The engine runs autonomously: this test only
starts it and wakes up at each command boundary to snapshot the performance counters, so the
simulation runs at Verilator speed, not at Python speed.

Environment: EDGESPLIT_CMD_ADDR (the command list's DRAM address), EDGESPLIT_MAX_CYCLES,
EDGESPLIT_RESULT (JSON: counters after each command, cycles, wall time).
"""

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer

from hw.engine import COUNTERS


def counters(dut) -> dict:
    return {n: int(getattr(dut, f"ctr_{n}").value) for n in COUNTERS}


@cocotb.test()
async def run_program(dut):
    Clock(dut.clk, 10, unit="ns").start()
    dut.start.value = 0
    dut.dump.value = 0
    dut.cmd_addr.value = int(os.environ["EDGESPLIT_CMD_ADDR"])
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    max_cycles = int(os.environ.get("EDGESPLIT_MAX_CYCLES", "2000000000"))
    t0 = time.monotonic()
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    snaps = []
    timeout = Timer(10 * max_cycles, unit="ns")
    while True:
        trig = await First(RisingEdge(dut.cmd_done), RisingEdge(dut.done), timeout)
        if trig is timeout:
            raise TimeoutError(f"engine not done after {max_cycles} cycles (at command {int(dut.cmd_index.value)})")
        snaps.append(counters(dut))
        if trig is not timeout and dut.done.value:
            break
    wall = time.monotonic() - t0
    dut.dump.value = 1
    await ClockCycles(dut.clk, 2)
    with open(os.environ["EDGESPLIT_RESULT"], "w") as f:
        json.dump({"snapshots": snaps, "wall_s": wall, "commands": int(dut.cmd_index.value)}, f)
    dut._log.info(f"engine: {snaps[-1]['cycles']} cycles in {wall:.1f} s "
                  f"({snaps[-1]['cycles'] / max(wall, 1e-9):,.0f} cycles/s)")
