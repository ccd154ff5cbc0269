"""cocotb testbench of the 12 x 12 MAC array (``hw.mac_array.MacArray``).

Driver -> DUT -> monitor, with a scoreboard fed by the golden model (``golden.fixedpoint.linear_int``).
The Python side (``tests/hw/test_mac_array_cocotb.py``, ``sim/run.py``) chooses cases through
environment variables; nothing here decides what passes except the golden model.

Environment
-----------
EDGESPLIT_SEED        random seed (default 1)
EDGESPLIT_TILES       number of random tiles in ``random_tiles`` (default 200)
EDGESPLIT_GAPS        probability of an input gap / output stall per cycle (default 0.1)
EDGESPLIT_MAX_K       longest K of ``random_tiles`` (default 9216; a reduced run for a slow simulator, e.g. Icarus)
EDGESPLIT_OUTPUTS     where ``random_tiles`` and ``full_rate`` write every output tile the array produced (JSON),
                      so the results of two simulators can be compared exactly
EDGESPLIT_BENCH_BEATS beats streamed by ``speed``
EDGESPLIT_RESULT      where ``speed`` writes its cycles per second (JSON)
"""

from __future__ import annotations

import json
import math
import os
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from golden.fixedpoint import BIAS_BITS, BIAS_MAX, BIAS_MIN, INT16_MAX, INT16_MIN, MAX_SHIFT, linear_int
from hw.mac_array import input_layout, output_layout
from sim.payload import Packer
from sim.streams import StreamDriver, StreamMonitor, reset, run_cycles

ROWS = COLS = 12


class Tile:
    """One output tile: ``a`` [COLS pixels, K], ``w`` [K, ROWS channels], bias [ROWS], shift, relu,
    clamp (ReLU6's upper bound after the ReLU, or None).

    ``expected()`` is [ROWS channels, COLS pixels], the order the array drains its rows in."""

    def __init__(self, a, w, bias, shift, relu, label="", clamp: int | None = None):
        self.a, self.w = np.asarray(a, np.int64), np.asarray(w, np.int64)
        self.bias, self.shift, self.relu, self.label = np.asarray(bias, np.int64), int(shift), bool(relu), label
        self.clamp = None if clamp is None else int(clamp)

    @property
    def k(self) -> int:
        return self.a.shape[1]

    def expected(self) -> np.ndarray:
        return linear_int(self.a, self.w, self.bias, self.shift, self.relu, self.clamp).T


class MacArrayBench:
    """Streams tiles back to back into the array and checks every output row against golden."""

    def __init__(self, dut, gap_prob: float = 0.0, rng: random.Random | None = None):
        self.dut = dut
        self.rng = rng or random.Random(0)
        self.in_packer = Packer(input_layout(ROWS, COLS))
        self.out_packer = Packer(output_layout(ROWS, COLS))
        self.tiles: list[Tile] = []
        self.tile_of_beat: list[int] = []  # tile index at each `last` beat, to set bias/shift/relu
        self.last_beats: dict[int, int] = {}
        self.driver = StreamDriver(dut, "inp", gap_prob=gap_prob, rng=self.rng, on_accept=self._accepted)
        self.monitor = StreamMonitor(dut, "out", stall_prob=gap_prob, rng=random.Random(self.rng.random()))
        self.outputs: list[np.ndarray] = []
        self.errors: list[str] = []
        self._pending: Tile | None = None

    def add(self, tile: Tile) -> None:
        k = tile.k
        last = np.zeros(k, dtype=np.int64)
        last[-1] = 1
        start = len(self.driver.beats)
        self.driver.extend(self.in_packer.pack(k, w=tile.w, a=tile.a.T, last=last))
        self.last_beats[start + k - 1] = len(self.tiles)
        self.tiles.append(tile)

    def _set_params(self, tile: Tile) -> None:
        word = 0
        for j, b in enumerate(tile.bias):
            word |= (int(b) & ((1 << BIAS_BITS) - 1)) << (BIAS_BITS * j)
        self.dut.bias.value = word
        self.dut.shift.value = tile.shift
        self.dut.relu.value = int(tile.relu)
        self.dut.clamp_en.value = int(tile.clamp is not None)
        self.dut.clamp.value = 0 if tile.clamp is None else tile.clamp

    def _accepted(self, index: int) -> None:
        # bias/shift/relu are sampled with the `last` beat: present the next tile's as soon as the
        # current tile's `last` has gone in
        if index in self.last_beats:
            nxt = self.last_beats[index] + 1
            if nxt < len(self.tiles):
                self._pending = self.tiles[nxt]

    # the bench is a part of the cycle loop too: it presents the pending tile parameters
    def drive(self, cycle: int) -> None:
        if self._pending is not None:
            self._set_params(self._pending)
            self._pending = None

    def sample(self, cycle: int) -> None:
        pass

    async def run(self, max_cycles: int | None = None) -> int:
        n_rows = ROWS * len(self.tiles)
        if self.tiles:
            self._pending = self.tiles[0]
        budget = max_cycles or int(4 * len(self.driver.beats) + 40 * n_rows + 1000)
        cycles = await run_cycles(self.dut.clk, [self, self.driver, self.monitor],
                                  until=lambda: len(self.monitor.beats) >= n_rows,
                                  max_cycles=budget, what="mac_array")
        self._score()
        return cycles

    def _score(self) -> None:
        for t, tile in enumerate(self.tiles):
            got = np.zeros((ROWS, COLS), dtype=np.int64)
            for i in range(ROWS):
                beat = self.out_packer.unpack(self.monitor.beats[t * ROWS + i])
                if beat["row"] != i:
                    self.errors.append(f"tile {t} ({tile.label}): beat {i} carries row {beat['row']}")
                got[i] = beat["data"]
            self.outputs.append(got)
            exp = tile.expected()
            if not np.array_equal(got, exp):
                bad = np.argwhere(got != exp)[0]
                self.errors.append(
                    f"tile {t} ({tile.label}, K={tile.k}, shift={tile.shift}, relu={tile.relu}, "
                    f"clamp={tile.clamp}): "
                    f"{int((got != exp).sum())} mismatches, first at {tuple(bad)}: "
                    f"rtl {got[tuple(bad)]} golden {exp[tuple(bad)]}")


async def start(dut) -> None:
    Clock(dut.clk, 10, unit="ns").start()
    dut.inp__valid.value = 0
    dut.out__ready.value = 0
    dut.clamp_en.value = 0
    dut.clamp.value = 0
    await reset(dut)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _dump_outputs(bench: MacArrayBench, cycles: int) -> None:
    """Every output tile (and the cycle count) to EDGESPLIT_OUTPUTS, when set."""
    path = os.environ.get("EDGESPLIT_OUTPUTS")
    if path:
        with open(path, "w") as f:
            json.dump({"cycles": cycles, "tiles": [o.tolist() for o in bench.outputs],
                       "labels": [t.label for t in bench.tiles]}, f)


def random_operands(rng: np.random.Generator, shape, kind: str) -> np.ndarray:
    if kind == "uniform":
        return rng.integers(INT16_MIN, INT16_MAX + 1, size=shape)
    if kind == "extremes":
        return rng.choice(np.array([INT16_MIN, INT16_MAX, -1, 0, 1]), size=shape)
    if kind == "small":
        return rng.integers(-300, 301, size=shape)
    if kind == "sparse":
        v = rng.integers(INT16_MIN, INT16_MAX + 1, size=shape)
        return np.where(rng.random(shape) < 0.7, 0, v)
    raise ValueError(kind)


def random_tile(rng: np.random.Generator, k: int, label: str) -> Tile:
    kinds = ["uniform", "extremes", "small", "sparse"]
    a = random_operands(rng, (COLS, k), kinds[rng.integers(4)])
    w = random_operands(rng, (k, ROWS), kinds[rng.integers(4)])
    # A shift that brings the typical magnitude near the int16 range, sometimes any shift, so both
    # the rounding and the saturation paths are exercised.
    typical = float(np.abs(a).mean() * np.abs(w).mean() * math.sqrt(k)) + 1
    shift = int(np.clip(round(math.log2(typical)) - 14 + rng.integers(-3, 4), 0, MAX_SHIFT))
    if rng.random() < 0.2:
        shift = int(rng.integers(0, MAX_SHIFT + 1))
    bias_kind = rng.integers(3)
    if bias_kind == 0:
        bias = np.zeros(ROWS, dtype=np.int64)
    elif bias_kind == 1:
        bias = rng.integers(-(2 ** (shift + 15)), 2 ** (shift + 15) + 1, size=ROWS)
    else:
        bias = rng.integers(BIAS_MIN, BIAS_MAX + 1, size=ROWS)
        bias[:2] = [BIAS_MIN, BIAS_MAX]
    relu = bool(rng.integers(2))
    # ReLU6 (clamp after the ReLU) on a quarter of the ReLU tiles, bounds 0 and INT16_MAX included
    clamp = None
    if relu and rng.random() < 0.25:
        clamp = int(rng.choice([0, 1, INT16_MAX, int(rng.integers(0, INT16_MAX + 1))]))
    return Tile(a, w, np.clip(bias, BIAS_MIN, BIAS_MAX), shift, relu, label, clamp)


@cocotb.test()
async def random_tiles(dut):
    """EDGESPLIT_TILES random tiles, K log-uniform in 1..9216, random gaps and back-pressure."""
    seed = _env_int("EDGESPLIT_SEED", 1)
    n = _env_int("EDGESPLIT_TILES", 200)
    max_k = _env_int("EDGESPLIT_MAX_K", 9216)
    gaps = float(os.environ.get("EDGESPLIT_GAPS", "0.1"))
    rng = np.random.default_rng(seed)
    await start(dut)
    bench = MacArrayBench(dut, gap_prob=gaps, rng=random.Random(seed))
    ks = np.exp(rng.uniform(0, math.log(9216), size=n)).astype(int).clip(1, 9216)
    ks[: min(n, 8)] = [1, 2, 11, 12, 13, 9216, 1, 3][: min(n, 8)]  # the shortest/longest always run
    ks = ks.clip(1, max_k)
    for t, k in enumerate(ks):
        bench.add(random_tile(rng, int(k), f"random#{t}"))
    t0 = time.monotonic()
    cycles = await bench.run()
    dut._log.info(f"{n} tiles, {sum(ks)} beats, {cycles} cycles, {cycles / (time.monotonic() - t0):.0f} cycles/s")
    _dump_outputs(bench, cycles)
    assert not bench.errors, "\n".join(bench.errors[:10])


@cocotb.test()
async def directed(dut):
    """All zeros; -32768 x -32768 accumulated 25088 times (VGG-16 fc6); saturation both ways; ReLU."""
    await start(dut)
    bench = MacArrayBench(dut)
    z = np.zeros
    bench.add(Tile(z((ROWS, 100)), z((100, COLS)), z(COLS), 0, False, "all zeros"))
    bench.add(Tile(z((COLS, 5)), z((5, ROWS)), np.arange(-6, 6), 0, True, "zeros, bias only, relu"))
    k = 25088
    neg = np.full((ROWS, k), INT16_MIN)
    negw = np.full((k, COLS), INT16_MIN)
    # 25088 * 2**30 = 2**44.6: exact in the accumulator; shift 31 brings it to 12544
    bench.add(Tile(neg, negw, z(COLS), 31, False, "vgg16 fc6 worst case, shift 31"))
    bench.add(Tile(neg, negw, z(COLS), 0, False, "vgg16 fc6 worst case, saturate +"))
    bench.add(Tile(neg, np.full((k, COLS), INT16_MAX), z(COLS), 10, False, "saturate -"))
    bench.add(Tile(neg, np.full((k, COLS), INT16_MAX), z(COLS), 10, True, "saturate -, relu"))
    # Rounding ties: x = 3 * 2**(s-1) rounds up to 2 (half up), x = -3 * 2**(s-1) rounds to -1.
    a = np.ones((COLS, 1))
    w = np.zeros((1, ROWS))
    bias = np.array([3 * 2**4, -3 * 2**4, 2**4, -(2**4), 2**4 - 1, -(2**4) - 1, 0, 1, -1, 32767 * 2**5,
                     (32767 * 2**5) + 2**4, -32768 * 2**5 - 2**4 - 1])
    bench.add(Tile(a, w, bias, 5, False, "rounding ties at shift 5"))
    cycles = await bench.run()
    assert not bench.errors, "\n".join(bench.errors)
    exp = bench.tiles[2].expected()
    assert (exp == 12544).all() and (bench.tiles[3].expected() == INT16_MAX).all()
    assert (bench.tiles[4].expected() == INT16_MIN).all() and (bench.tiles[5].expected() == 0).all()
    assert list(bench.outputs[6][:, 0]) == [2, -1, 1, 0, 0, -1, 0, 0, 0, 32767, 32767, -32768]
    dut._log.info(f"directed: {cycles} cycles")


@cocotb.test()
async def full_rate(dut):
    """Fed every cycle with tiles of K >= 13 (ROWS + 1: one capture cycle plus twelve row drains) and
    the output always ready, the array accepts a beat on every cycle: 144 MACs busy every cycle."""
    rng = np.random.default_rng(7)
    await start(dut)
    bench = MacArrayBench(dut)
    ks = [13, 13, 50, 13, 300, 17]
    for t, k in enumerate(ks):
        bench.add(random_tile(rng, k, f"full-rate#{t}"))
    cycles = await bench.run()
    _dump_outputs(bench, cycles)
    assert not bench.errors, "\n".join(bench.errors)
    span = bench.driver.last_accept_cycle - bench.driver.first_accept_cycle + 1
    assert span == sum(ks), f"{sum(ks)} beats took {span} cycles: the array stalled"


@cocotb.test()
async def speed(dut):
    """Simulation speed: EDGESPLIT_BENCH_BEATS beats of K=1000 tiles, cycles per wall second to
    EDGESPLIT_RESULT (JSON). Outputs are still checked against golden."""
    beats = _env_int("EDGESPLIT_BENCH_BEATS", 100_000)
    rng = np.random.default_rng(11)
    await start(dut)
    bench = MacArrayBench(dut)
    for t in range(max(1, beats // 1000)):
        bench.add(random_tile(rng, 1000, f"speed#{t}"))
    t0 = time.monotonic()
    cycles = await bench.run()
    wall = time.monotonic() - t0
    assert not bench.errors, "\n".join(bench.errors[:10])
    with open(os.environ["EDGESPLIT_RESULT"], "w") as f:
        json.dump({"cycles": cycles, "wall_s": wall, "cycles_per_s": cycles / wall}, f)
