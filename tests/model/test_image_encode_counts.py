"""The host-only split's cost from the engine's JPEG of the camera image (``make sim SPLIT=input ENCODE=jpeg``,
issue 16 item 6): ``model.counts.rtl_image_encode`` finds the run, ``model.system.evaluate`` uses its cycles and
DRAM reads."""

import json
import os
import warnings

import pytest

from golden.arch import DEFAULT_ARCH
from hw.sources import rtl_sources_hash
from model import counts as C
from model import system as S


def image_run(path, *, qf=75, subsampling="444", cycles=154_886, dram_read_words=153_444, encoder_cycles=150_686,
              net="alexnet", rtl_hash=None, bit_exact=True, mtime=None):
    """A result document in the shape ``python -m sim.run --split input --encode jpeg`` writes."""
    doc = {
        "net": net, "source": "builtin", "split": "input", "dram_bytes_per_cycle": 16.0,
        "arch": DEFAULT_ARCH.as_dict(),
        "rtl_hash": rtl_hash or rtl_sources_hash(), "design": "engine_colour",
        "encode": {"mode": "jpeg", "qf": qf, "subsampling": subsampling},
        "layers": [{"name": "input", "module": "input", "type": "image", "macs": 0, "cycles": cycles,
                    "bit_exact": bit_exact, "counters": {"cycles": cycles, "dram_read_words": dram_read_words},
                    "encoding": {"mode": "jpeg", "qf": qf, "subsampling": subsampling, "bit_exact": bit_exact,
                                 "encoder_cycles": encoder_cycles}}],
    }
    path.write_text(json.dumps(doc))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def sim_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "SIM_DIR", tmp_path)
    return tmp_path


def test_the_run_at_the_qf_else_the_newest(sim_dir):
    assert C.rtl_image_encode("alexnet", qf=75) is None
    image_run(sim_dir / "alexnet_input_jpeg75.json", qf=75, cycles=154_886, mtime=1_000)
    image_run(sim_dir / "alexnet_input_jpeg30.json", qf=30, cycles=154_870, mtime=2_000)
    image_run(sim_dir / "alexnet_input_jpeg75_420.json", qf=75, subsampling="420", cycles=79_815,
              encoder_cycles=75_615, mtime=3_000)
    assert C.rtl_image_encode("alexnet", qf=75)["cycles"] == 154_886
    assert C.rtl_image_encode("alexnet", qf=30)["cycles"] == 154_870
    assert C.rtl_image_encode("alexnet", qf=50)["cycles"] == 154_870            # the newest 4:4:4 run
    r = C.rtl_image_encode("alexnet", qf=75, subsampling="420")
    assert (r["cycles"], r["encoder_cycles"], r["qf"]) == (79_815, 75_615, 75)
    assert C.rtl_image_encode("vgg16", qf=75) is None


def test_unusable_runs_are_ignored(sim_dir):
    image_run(sim_dir / "alexnet_input_jpeg75.json", bit_exact=False)
    image_run(sim_dir / "alexnet_input_jpeg50.json", qf=50, rtl_hash="0123456789abcdef")
    image_run(sim_dir / "alexnet_input_jpeg40.json", qf=40, net="resnet18")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the older RTL's refusal is warned about once
        assert C.rtl_image_encode("alexnet", qf=75) is None
        assert C.rtl_image_encode("alexnet", qf=75, eng=C.EngineParams(dram_bytes_per_cycle=8.0)) is None


def test_host_only_cost_uses_the_engine_run(sim_dir):
    analytical = S.evaluate("alexnet", "input", "jpeg", "2mbps", qf=75)
    assert analytical.counts_source == "none"
    assert analytical.encode_time_s == pytest.approx(3 * 224 * 224 / DEFAULT_ARCH.clock_hz)
    image_run(sim_dir / "alexnet_input_jpeg75.json", cycles=200_000, dram_read_words=160_000)
    rtl = S.evaluate("alexnet", "input", "jpeg", "2mbps", qf=75)
    assert rtl.counts_source == "rtl (alexnet_input_jpeg75.json, QF 75)"
    assert rtl.encode_time_s == pytest.approx(200_000 / DEFAULT_ARCH.clock_hz)
    # the coder's read of the image: 160,000 words from DRAM instead of the model's word per 8-bit sample
    dram_word_j = analytical.breakdown["dram_j"] / (224 * 224 * 3)
    assert rtl.breakdown["dram_j"] == pytest.approx(160_000 * dram_word_j)
    assert rtl.transmitted_bytes == analytical.transmitted_bytes       # the ratio is the codec's, not the run's
    # the analytical source ignores the run; feature splits never read it
    assert S.evaluate("alexnet", "input", "jpeg", "2mbps", qf=75, counts_source="analytical").encode_time_s == \
        analytical.encode_time_s
    assert S.evaluate("alexnet", "conv5", "jpeg", "2mbps", qf=75).counts_source != rtl.counts_source
