"""pytest runner for the cocotb testbench of the MAC array (sim/tb_mac_array.py) on Verilator."""

import os

import pytest

from sim.designs import MAC_ARRAY
from sim.runner import run


@pytest.mark.parametrize("testcase", ["random_tiles", "directed", "full_rate"])
def test_mac_array_verilator(testcase):
    env = {"EDGESPLIT_SEED": os.environ.get("EDGESPLIT_SEED", "1"), "EDGESPLIT_TILES": "200"}
    tests, failed = run(MAC_ARRAY, "sim.tb_mac_array", testcase=testcase, env=env)
    assert (tests, failed) == (1, 0)
