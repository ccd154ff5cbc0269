"""A small linear network whose maps go through DRAM on the default engine (2^18 words): the first conv's
output (8 x 192 x 192 words) does not fit the buffer, so it and the pool after it run in bands, and the conv
after the pool reads its input from DRAM: ``sim.run.cut_head`` cuts there (tests/sim/test_sim_pieces.py)."""

from torch import nn


def cut_net() -> nn.Module:
    """3 x 192 x 192 in: conv, pool, conv, pool, conv (the ``.py:factory`` form of ``--net``)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 4, 3, 1, 1)).eval()
