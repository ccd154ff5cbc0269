"""``python -m model.bench --cluster``'s own option: ``--sim-net NET`` picks the network ``make sim`` runs."""

import subprocess
import sys
from pathlib import Path

import pytest

from model import bench

ROOT = Path(__file__).resolve().parents[2]


def test_sim_net_default_and_named():
    assert bench._sim_net([]) == []
    assert bench._sim_net(["--sim-net", "vgg16"]) == ["vgg16"]


@pytest.mark.parametrize("argv, says", [
    (["--cluster", "--sim-net", "vgg17"], "--sim-net 'vgg17': a built-in network (alexnet, vgg16"),
    (["--cluster", "--sim-net"], "the only option is --sim-net NET"),
    (["--cluster", "--fast"], "'--fast': the only option is --sim-net NET"),
])
def test_bad_cluster_option_is_one_line_exit_2(argv, says):
    p = subprocess.run([sys.executable, "-m", "model.bench", *argv], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
