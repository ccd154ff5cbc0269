"""pytest runner for the cocotb testbench of the RTL weight decoder (sim/tb_wdecoder.py) on Verilator.

Real weights: pretrained ResNet-20 layers from the shared data (``shared_data`` fixture: skipped when the
data is missing, a failure in CI), prepared here as golden jobs and handed to the bench in a ``.npz``.
"""

import json
import os

import pytest

from sim.designs import JPEG_WDECODER
from sim.runner import BUILD_DIR, run

# the decoder's tests share one Verilator build: keep them on one xdist worker
pytestmark = pytest.mark.xdist_group("jpeg_wdecoder")

QFS = (1, 10, 30, 50, 75, 90, 100)
# a few ResNet-20 layers of every shape class (stem 16x27, 16x144, 32x144, 32x288, 64x576, FC 10x64)
REAL_LAYERS = ("conv1", "layer1.0.conv1", "layer2.0.conv1", "layer2.2.conv2", "layer3.0.conv2", "linear")


def _env(**extra):
    return {"EDGESPLIT_SEED": os.environ.get("EDGESPLIT_SEED", "1"), **extra}


@pytest.mark.parametrize("testcase", ["qf_sweep", "edge_cases", "group_starts"])
def test_wdecoder_verilator(testcase):
    assert run(JPEG_WDECODER, "sim.tb_wdecoder", testcase=testcase, env=_env()) == (1, 0)


def _jobs_file(name, layers, qfs, calibrated=False):
    from sim.tb_wdecoder import real_jobs, resnet20_weights, save_jobs

    path = BUILD_DIR / "sim" / f"jpeg_wdecoder_{name}.{os.getpid()}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = resnet20_weights(layers, calibrated=calibrated)
    assert sorted(weights) == sorted(layers or weights)
    save_jobs(path, real_jobs(weights, qfs))
    return path


def test_wdecoder_real_weights(shared_data):
    """Pretrained ResNet-20 layers: small ones at every QF, the 64x576 one at QF 50 and 90; random gaps
    and back-pressure; bit-exact with golden."""
    small = _jobs_file("real_small", REAL_LAYERS[:2] + REAL_LAYERS[-1:], QFS)
    big = _jobs_file("real_big", REAL_LAYERS[2:5], (50, 90))
    try:
        for path in (small, big):
            assert run(JPEG_WDECODER, "sim.tb_wdecoder", testcase="jobs_file",
                       env=_env(EDGESPLIT_JOBS=str(path))) == (1, 0)
    finally:
        small.unlink(missing_ok=True)
        big.unlink(missing_ok=True)


def test_wdecoder_throughput(shared_data):
    """Weights per cycle, no input gaps, output always ready (build/bench/jpeg_wdecoder_throughput.json).

    Real layers (ResNet-20 64x576 and 32x288 at QF 10..100) and Gaussian layers: 1 weight per cycle while
    streaming (every block has at most 64 Huffman symbols, so the 64-cycle IDCT sets the pace) and no
    input starvation after the first cycle (``start`` comes one cycle before the first word). Every case:
    at least 0.99 of the input bound min(1, 16 / bits per weight) (the DRAM port brings 16 stream bits
    per cycle); category 15 everywhere is the input-bound extreme."""
    jobs = _jobs_file("throughput", ("layer2.2.conv2", "layer3.0.conv2"), (10, 50, 90, 100))
    result = BUILD_DIR / "bench" / "jpeg_wdecoder_throughput.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    try:
        assert run(JPEG_WDECODER, "sim.tb_wdecoder", testcase="throughput",
                   env=_env(EDGESPLIT_JOBS=str(jobs), EDGESPLIT_RESULT=str(result))) == (1, 0)
    finally:
        jobs.unlink(missing_ok=True)
    report = json.loads(result.read_text())
    assert len(report) >= 8
    for r in report:
        if r["kind"] == "real" or r["case"].startswith(("gaussian", "64 symbols")):
            assert r["bits_per_weight"] < 16, r
            assert r["weights_per_cycle"] == 1.0 and r["stall_in"] <= 1, r
        assert r["weights_per_cycle"] >= 0.99 * r["input_bound"], r
    worst = [r for r in report if r["case"].startswith("category 15")]
    assert len(worst) == 1 and worst[0]["bits_per_weight"] > 16 and worst[0]["input_bound"] < 1, worst


@pytest.mark.slow
def test_wdecoder_all_resnet20_layers(shared_data):
    """Every conv/linear layer of the calibrated ResNet-20 (``golden.quantize.default_qnet``) at every QF."""
    path = _jobs_file("resnet20_all", None, QFS, calibrated=True)
    try:
        assert run(JPEG_WDECODER, "sim.tb_wdecoder", testcase="jobs_file",
                   env=_env(EDGESPLIT_JOBS=str(path), EDGESPLIT_GAPS="0.1")) == (1, 0)
    finally:
        path.unlink(missing_ok=True)
