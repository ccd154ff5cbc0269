"""``edgesplit edge --edge rtl``: the edge part on the engine in Verilator sends the golden edge's bytes (slow)."""

import json

import pytest

from model.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runtime")]


@pytest.mark.parametrize("codec, qf", [("jpeg", "30"), ("lossless", None)])
def test_rtl_edge_sends_the_golden_bytes_resnet20(capsys, codec, qf):
    argv = ["edge", "--connect", "inline", "--net", "resnet20", "--split", "layer3.0", "--codec", codec,
            "--edge", "rtl", "--frames", "20", "--images", "20", "--trace", "22mbps", "--check-images", "0",
            "--json", "--quiet"]
    if qf:
        argv += ["--qf", qf]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    rtl = doc["rtl"]
    assert rtl["images"] == 20 and rtl["frames_equal"] == 20 and rtl["maps_equal"] == 20
    assert doc["unique_answers"] == 20 and doc["edge"] == "rtl"
    assert doc["agreement_with_uncoded"] == 1.0 or codec == "jpeg"
