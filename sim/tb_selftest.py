"""cocotb tests of the runner itself: one that passes, one that must fail (run only by tests/sim)."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles


@cocotb.test()
async def passes(dut):
    Clock(dut.clk, 10, unit="ns").start()
    await ClockCycles(dut.clk, 3)
    assert dut.busy.value == 0 or dut.busy.value == 1


@cocotb.test()
async def must_fail(dut):
    Clock(dut.clk, 10, unit="ns").start()
    await ClockCycles(dut.clk, 3)
    raise AssertionError("deliberate failure: the runner must report it")
