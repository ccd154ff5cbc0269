"""cocotb testbench of the RTL weight decoder (``hw.jpeg.wdecoder.WeightDecoder``, design ``jpeg_wdecoder``).

Driver (stream words, random gaps = DRAM latency) -> DUT -> monitor (weights, random back-pressure), with a
scoreboard fed by the golden codec: every layer is a :class:`hw.jpeg.whost.DecodeJob` (stream words,
table-port writes, golden's decoded weights in block order), and the RTL's weights must equal golden's bit
for bit, block for block, with ``index``/``block_last``/``last`` in place, no ``error``, and the counters
``bits_in`` = golden's stream bits, ``weights_out``/``blocks_out`` = what was sent.

The pytest side (``tests/hw/test_wdecoder_cocotb.py``) picks the test; real (pretrained) layers are prepared
there (it owns the shared-data check) and handed over as a ``.npz`` of jobs (:func:`save_jobs`).

Environment
-----------
EDGESPLIT_SEED     random seed (default 1)
EDGESPLIT_GAPS     probability of an input gap / output stall per cycle where a test uses them (default 0.2)
EDGESPLIT_JOBS     ``.npz`` of jobs (:func:`save_jobs`) for ``jobs_file`` and ``throughput``
EDGESPLIT_RESULT   where ``throughput`` writes its numbers (JSON)
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from golden import weightcodec as wc
from golden.entropy import HuffmanTable
from hw.jpeg import whost
from hw.jpeg.wdecoder import COUNTERS, input_layout, output_layout
from sim.payload import Packer
from sim.streams import StreamDriver, StreamMonitor, env_gaps, env_seed, run_cycles, start_bench

QFS = (1, 10, 30, 50, 75, 90, 100)


# ---- layers ------------------------------------------------------------------------------------------


def gaussian_layer(rng: np.random.Generator, o: int, k: int, sigma: float) -> np.ndarray:
    """int16 ``[O, K]`` weights, Gaussian with smooth structure along K (like trained filters)."""
    base = rng.normal(0, sigma, size=(o, k))
    smooth = np.cumsum(rng.normal(0, sigma / 8, size=(o, k)), axis=1)
    return np.clip(np.round(0.7 * base + 0.3 * smooth), -32768, 32767).astype(np.int16)


def layer_for_shift(rng: np.random.Generator, o: int, k: int, p: int) -> np.ndarray:
    """A Gaussian layer whose pre-shift is ``p``: clipped to 95 % of what ``p`` allows, one weight at 90 %
    (more than ``p - 1`` allows)."""
    top = 2047 << p
    w = gaussian_layer(rng, o, k, top / 3.5).astype(np.int64)
    w = np.clip(w, -int(0.95 * top), int(0.95 * top))
    w[0, 0] = -int(0.9 * top)
    return w.astype(np.int16)


def layer_from_blocks(zz: np.ndarray, o: int, k: int, qf: int, p: int, tables=None) -> wc.EncodedLayer:
    """An encoded layer from given quantized blocks ``zz[n, 64]`` (zigzag, block order; ``n`` = the
    layer's block count), coded with golden's entropy coder (optimal tables, or the given ``(dc, ac)``):
    for corner cases no weight tensor produces on demand."""
    assert len(zz) == wc.n_groups(o) * wc.blocks_per_group(k), (len(zz), o, k)
    return wc.encode_quantized(zz, p, qf, o, k, tables)


def in_block_order(lane_zz: np.ndarray, o: int, k: int) -> np.ndarray:
    """Blocks given in lane-stream order (lane 0's, then lane 1's, ...) put in block order (g, kb, j): so
    a crafted sequence of DC values follows one another inside each lane stream."""
    out = np.empty_like(lane_zz)
    out[wc.lane_order(o, k)] = lane_zz
    return out


def long_code_table(symbol: int, fillers: list[int]) -> HuffmanTable:
    """A valid canonical table of 16 symbols, one code of each length 2..15 and two of length 16, with
    ``symbol`` on the last 16-bit code: the longest code JPEG allows."""
    bits = (0,) + (1,) * 14 + (2,)
    return HuffmanTable(bits=bits, huffval=tuple(fillers[:15]) + (symbol,))


def edge_zz(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` quantized blocks (zigzag) at the stream's extremes, repeating: all zero (DC + EOB only),
    category-15 DC differences and AC values (+-16384..32767, also all 63 AC at once: 64 symbols, no EOB),
    zero runs of 15, 16, 61 and 62 (ZRL, ZRL x3 + (14, s)), the last position alone."""
    pats = []
    z = np.zeros(64, np.int64)
    pats.append(z.copy())                                              # all zero
    z[0] = 16384
    z[1:] = rng.choice([32767, -32767, 16384, -16384, -1, 1], size=63)
    pats.append(z.copy())                                              # 63 AC, category 15
    z = np.zeros(64, np.int64)
    z[0] = -16383                                                      # DC diff -32767 (after 16384)
    z[63] = -32767                                                     # ZRL x3, (14, 15)
    pats.append(z.copy())
    z = np.zeros(64, np.int64)
    z[0], z[17], z[33], z[62] = 16384, 5, -2, 1                        # ZRL (0,3) / (15,2) / run 28, EOB
    pats.append(z.copy())
    z = np.zeros(64, np.int64)
    z[1:] = rng.integers(1, 4, size=63) * rng.choice([-1, 1], size=63)  # 64 symbols, small values
    pats.append(z.copy())
    z = np.zeros(64, np.int64)
    z[0], z[48] = -16384, 1                                            # ZRL ZRL (15, 1), EOB
    pats.append(z.copy())
    z = np.zeros(64, np.int64)
    z[0], z[1], z[2] = 16383, -32767, 32767
    pats.append(z.copy())
    return np.array([pats[i % len(pats)] for i in range(n)])


# ---- jobs to and from files (the pytest side prepares real layers) ---------------------------------------


def save_jobs(path, jobs: list[whost.DecodeJob]) -> None:
    arrays = {}
    for i, j in enumerate(jobs):
        arrays[f"words{i}"] = j.words
        arrays[f"tables{i}"] = j.tables
        arrays[f"expected{i}"] = j.expected
        arrays[f"meta{i}"] = np.array([j.bits, j.per_group], dtype=np.int64)
        arrays[f"label{i}"] = np.array(j.label)
    np.savez(path, n=len(jobs), **arrays)


def load_jobs(path) -> list[whost.DecodeJob]:
    f = np.load(path)
    return [whost.DecodeJob(words=f[f"words{i}"], tables=f[f"tables{i}"], expected=f[f"expected{i}"],
                            bits=int(f[f"meta{i}"][0]), per_group=int(f[f"meta{i}"][1]), label=str(f[f"label{i}"]))
            for i in range(int(f["n"]))]


# ---- the bench -----------------------------------------------------------------------------------------


class CycleMonitor(StreamMonitor):
    """A monitor that also keeps the cycle of every beat."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cycles: list[int] = []

    def sample(self, cycle: int) -> None:
        before = len(self.beats)
        super().sample(cycle)
        if len(self.beats) > before:
            self.cycles.append(cycle)


@dataclass
class Outcome:
    label: str
    weights: int
    counters: dict[str, int]
    first_out: int
    last_out: int
    errors: list[str] = field(default_factory=list)

    @property
    def sustained(self) -> float:
        """Weights per cycle from the first weight out to the last (the streaming rate)."""
        return self.weights / (self.last_out - self.first_out + 1)

    @property
    def overall(self) -> float:
        """Weights per busy cycle (pipeline fill and drain included)."""
        return self.weights / self.counters["cycles"]


class WDecoderBench:
    def __init__(self, dut, gap: float = 0.0, stall: float = 0.0, seed: int = 1):
        self.dut = dut
        self.gap = gap
        self.stall = stall
        self.rng = random.Random(seed)
        self.inp = Packer(input_layout())
        self.out = Packer(output_layout())
        self.outcomes: list[Outcome] = []

    async def pulse(self, name: str, **values) -> None:
        dut = self.dut
        for k, v in values.items():
            getattr(dut, k).value = v
        getattr(dut, name).value = 1
        await RisingEdge(dut.clk)
        getattr(dut, name).value = 0

    async def load_tables(self, tables: np.ndarray) -> None:
        dut = self.dut
        for addr, value in tables:
            dut.tbl_we.value = 1
            dut.tbl_addr.value = int(addr)
            dut.tbl_data.value = int(value)
            await RisingEdge(dut.clk)
        dut.tbl_we.value = 0

    async def decode(self, job: whost.DecodeJob, gap: float | None = None, stall: float | None = None,
                     starts: list[int] | None = None) -> Outcome:
        """One layer: clear, tables, ``start`` (all blocks, or the counts in ``starts``, each one queued
        while the previous are still decoding), words in, weights out; checked against golden."""
        dut = self.dut
        gap = self.gap if gap is None else gap
        stall = self.stall if stall is None else stall
        assert not int(dut.busy.value), "decoder busy before a layer"
        await self.pulse("clear")
        await self.load_tables(job.tables)
        counts = [job.blocks] if starts is None else list(starts)
        assert sum(counts) == job.blocks
        await self.pulse("start", blocks=counts[0])
        n_words = len(job.words)
        driver = StreamDriver(dut, "inp", self.inp.pack(n_words, data=job.words), gap_prob=gap,
                              rng=random.Random(self.rng.random()))
        monitor = CycleMonitor(dut, "out", stall_prob=stall, rng=random.Random(self.rng.random()))
        n_out = 64 * job.blocks
        pending = counts[1:]
        requested = [counts[0]]

        class Starter:
            """Queues the next ``start`` when the decoder is about halfway through what it has."""

            def drive(self, cycle):
                go = bool(pending) and len(monitor.beats) >= 32 * requested[0]
                dut.start.value = int(go)
                if go:
                    dut.blocks.value = pending[0]
                    requested[0] += pending.pop(0)

            def sample(self, cycle):
                pass

        parts = [driver, monitor, Starter()] if pending else [driver, monitor]
        budget = int(2 * (n_out / (1 - stall) + n_words / (1 - gap))) + 200 * job.blocks + 5000
        await run_cycles(dut.clk, parts, until=lambda: len(monitor.beats) >= n_out, max_cycles=budget,
                         what=f"weight decoder {job.label}")
        dut.inp__valid.value = 0
        dut.out__ready.value = 0
        dut.start.value = 0
        await RisingEdge(dut.clk)
        for _ in range(4):   # nothing more may come out
            await RisingEdge(dut.clk)
            if int(dut.out__valid.value):
                break
        counters = {name: int(getattr(dut, name).value) for name in COUNTERS}
        out = Outcome(label=job.label, weights=n_out, counters=counters, first_out=monitor.cycles[0],
                      last_out=monitor.cycles[-1])
        out.errors += self.score(job, monitor.beats)
        if int(dut.out__valid.value):
            out.errors.append(f"{job.label}: more weights than requested")
        if int(dut.busy.value) or int(dut.error.value):
            out.errors.append(f"{job.label}: busy {int(dut.busy.value)} error {int(dut.error.value)} at the end")
        want = {"bits_in": job.bits, "weights_out": n_out, "blocks_out": job.blocks}
        for name, v in want.items():
            if counters[name] != v:
                out.errors.append(f"{job.label}: counter {name} = {counters[name]}, expected {v}")
        if driver.index != n_words:
            out.errors.append(f"{job.label}: took {driver.index} of {n_words} words")
        self.outcomes.append(out)
        dut._log.info(f"{job.label}: {job.blocks} blocks, {job.bits / n_out:.2f} bits/weight, "
                      f"{out.sustained:.4f} weights/cycle sustained, {out.overall:.4f} overall, "
                      f"stall_in {counters['stall_in']}, stall_out {counters['stall_out']}")
        return out

    def score(self, job: whost.DecodeJob, beats: list[int]) -> list[str]:
        b = np.array(beats, dtype=object)
        f = self.out.fields

        def field_of(name):
            off, width, _, signed = f[name]
            v = np.array([(x >> off) & ((1 << width) - 1) for x in b], dtype=np.int64)
            return np.where(v >= 1 << (width - 1), v - (1 << width), v) if signed else v

        data, index, block_last, last = (field_of(x) for x in ("data", "index", "block_last", "last"))
        errors = []
        n = len(data)
        got = data.reshape(-1, 64)
        want = job.expected.astype(np.int64)
        if got.shape != want.shape or not np.array_equal(got, want):
            bad = np.argwhere(got != want)
            blk, i = (int(bad[0][0]), int(bad[0][1])) if len(bad) else (-1, -1)
            errors.append(f"{job.label}: {len(bad)} weights differ from golden; first: block {blk} i {i}: "
                          f"rtl {got[blk, i] if blk >= 0 else '-'} golden {want[blk, i] if blk >= 0 else '-'}")
        if not np.array_equal(index, np.arange(n) % 64):
            errors.append(f"{job.label}: index is not the raster position")
        if not np.array_equal(block_last, (np.arange(n) % 64 == 63).astype(np.int64)):
            errors.append(f"{job.label}: block_last misplaced")
        if not np.array_equal(np.flatnonzero(last), [n - 1]):
            errors.append(f"{job.label}: last at {np.flatnonzero(last)[:4]}, expected only at {n - 1}")
        return errors

    def check(self) -> None:
        errors = [e for o in self.outcomes for e in o.errors]
        assert not errors, "\n".join(errors[:10])


async def start(dut, gap: float = 0.0, stall: float = 0.0, seed: int | None = None) -> WDecoderBench:
    await start_bench(dut, ("tbl_we", "clear", "start", "blocks"))
    return WDecoderBench(dut, gap, stall, env_seed() if seed is None else seed)


def job_of(enc: wc.EncodedLayer, label: str, lane: int = 0) -> whost.DecodeJob:
    """Lane ``lane``'s stream of ``enc`` (the engine runs one decoder per lane; each decodes its own)."""
    return whost.decode_job(enc, f"{label} ({enc.out_channels}x{enc.k}, QF {enc.qf}, p {enc.p})", lane)


def lanes_of(enc: wc.EncodedLayer) -> tuple[int, ...]:
    """The lanes an edge case decodes: lane 0 and the last real output channel's lane (its stream has
    padding channels after it when O is not a multiple of 12)."""
    return tuple(sorted({0, (enc.out_channels - 1) % wc.LANES}))


# ---- tests ---------------------------------------------------------------------------------------------


@cocotb.test()
async def qf_sweep(dut):
    """Random Gaussian layers at every QF, pre-shifts 0..4, O and K not multiples of 12 / 64; random input
    gaps and output stalls."""
    bench = await start(dut, env_gaps(), env_gaps())
    rng = np.random.default_rng(env_seed())
    shapes = ((13, 70), (24, 64), (7, 150), (12, 27), (30, 9))
    for i, qf in enumerate(QFS):
        o, k = shapes[i % len(shapes)]
        p = i % (wc.MAX_PRE_SHIFT + 1)
        w = layer_for_shift(rng, o, k, p)
        enc = wc.encode_layer(w, qf)
        assert enc.p == p, (enc.p, p)
        await bench.decode(job_of(enc, "gaussian", lane=i % wc.LANES))
    # full-range uniform noise: the densest blocks (every coefficient coded) at QF 100 and 90
    for qf in (100, 90):
        w = rng.integers(-32768, 32768, size=(12, 128)).astype(np.int16)
        await bench.decode(job_of(wc.encode_layer(w, qf), "uniform noise", lane=qf % wc.LANES))
    bench.check()


@cocotb.test()
async def edge_cases(dut):
    """All-zero layer (only DC 0 + EOB), all -32768 / +32767 layers (DC category 15 at QF 100),
    checkerboards (the largest AC), single high frequencies (long runs, ZRL), 1x1 and 1x64 layers,
    O = 1, K = 1, and crafted quantized blocks with category-15 DC and AC and every run-length corner."""
    bench = await start(dut, 0.1, 0.1)
    rng = np.random.default_rng(env_seed() + 1)
    cases = []
    cases.append(("all zero", np.zeros((12, 64), np.int16), 50))
    cases.append(("all zero", np.zeros((5, 100), np.int16), 100))
    cases.append(("all -32768", np.full((12, 64), -32768, np.int16), 100))
    cases.append(("all +32767", np.full((3, 128), 32767, np.int16), 100))
    checker = np.where(np.indices((12, 64)).sum(0) % 2, 32767, -32768).astype(np.int16)
    cases.append(("checkerboard", checker, 100))
    cases.append(("checkerboard", checker, 1))
    i = np.arange(64)
    hi_u = (np.cos((2 * (i % 8) + 1) * 7 * np.pi / 16) * 30000).astype(np.int16)   # one coefficient (0, 7)
    hi_v = (np.cos((2 * (i // 8) + 1) * 7 * np.pi / 16) * 30000).astype(np.int16)  # (7, 0): run 34 (ZRL x2)
    both = (np.cos((2 * (i // 8) + 1) * 7 * np.pi / 16) * np.cos((2 * (i % 8) + 1) * 7 * np.pi / 16)
            * 32000).astype(np.int16)                                              # (7, 7): zigzag 63 alone
    cases.append(("high u", np.tile(hi_u, (12, 1)), 90))
    cases.append(("high v", np.tile(hi_v, (12, 1)), 90))
    cases.append(("(7,7) only", np.tile(both, (12, 1)), 100))
    cases.append(("1x1", np.array([[-12345]], np.int16), 75))
    cases.append(("1x64", rng.integers(-3000, 3000, size=(1, 64)).astype(np.int16), 75))
    cases.append(("O=25 K=1", rng.integers(-900, 900, size=(25, 1)).astype(np.int16), 30))
    cases.append(("sparse", np.where(rng.random((12, 192)) < 0.03, 20000, 0).astype(np.int16), 100))
    for label, w, qf in cases:
        enc = wc.encode_layer(w, qf)
        for lane in lanes_of(enc):
            await bench.decode(job_of(enc, label, lane))
    # crafted quantized blocks (category 15 everywhere it can be, run-length corners), two layer shapes;
    # every lane
    for o, k, qf, p in ((12, 256, 100, 4), (14, 130, 50, 0)):
        n = wc.n_groups(o) * wc.blocks_per_group(k)
        enc = layer_from_blocks(in_block_order(edge_zz(rng, n), o, k), o, k, qf, p)
        for lane in range(wc.LANES):
            await bench.decode(job_of(enc, "crafted blocks", lane))
    bench.check()


@cocotb.test()
async def group_starts(dut):
    """One ``start`` per group (the lane's blocks of 12 channels), queued while the previous group still
    decodes (the stream continues mid-word); layers back to back with ``clear`` between them; heavy
    input gaps and output stalls."""
    bench = await start(dut, 0.4, 0.5)
    rng = np.random.default_rng(env_seed() + 2)
    for qf, (o, k) in ((75, (36, 300)), (10, (30, 64)), (100, (24, 27))):
        w = gaussian_layer(rng, o, k, 3000)
        job = job_of(wc.encode_layer(w, qf), "per group", lane=qf % wc.LANES)
        await bench.decode(job, starts=[job.per_group] * (job.blocks // job.per_group))
    w = gaussian_layer(rng, 48, 256, 5000)
    job = job_of(wc.encode_layer(w, 50), "odd starts", lane=3)
    await bench.decode(job, starts=[1, 2, 9, job.blocks - 12])
    w = gaussian_layer(rng, 13, 64, 8000)
    await bench.decode(job_of(wc.encode_layer(w, 90), "stalls 0.9"), gap=0.0, stall=0.9)
    await bench.decode(job_of(wc.encode_layer(w, 90), "gaps 0.9"), gap=0.9, stall=0.0)
    bench.check()


@cocotb.test()
async def jobs_file(dut):
    """The jobs in EDGESPLIT_JOBS (real pretrained layers, prepared by the pytest side), with random gaps
    and stalls."""
    bench = await start(dut, env_gaps(), env_gaps())
    for job in load_jobs(os.environ["EDGESPLIT_JOBS"]):
        await bench.decode(job)
    bench.check()


@cocotb.test()
async def throughput(dut):
    """Weights per cycle with no input gaps and the output always ready: the jobs in EDGESPLIT_JOBS
    (real layers at several QFs) and worst cases (uniform noise at QF 100, crafted category-15 blocks,
    64 symbols per block). Results (JSON) to EDGESPLIT_RESULT; the pytest side judges them."""
    bench = await start(dut)
    rng = np.random.default_rng(env_seed() + 3)
    jobs = [(j, "real") for j in load_jobs(os.environ["EDGESPLIT_JOBS"])] if os.environ.get("EDGESPLIT_JOBS") else []
    # 144 x 256: 12 groups x 4 K-blocks, so each lane stream (lane 0 decoded here) has 48 blocks
    worst = [
        job_of(wc.encode_layer(gaussian_layer(rng, 144, 192, 6000), 75), "gaussian"),
        job_of(wc.encode_layer(rng.integers(-32768, 32768, size=(144, 128)).astype(np.int16), 100), "uniform noise"),
        job_of(wc.encode_layer(rng.integers(-32768, 32768, size=(144, 128)).astype(np.int16), 50), "uniform noise"),
        job_of(layer_from_blocks(in_block_order(edge_zz(rng, 576), 144, 256), 144, 256, 100, 4),
               "crafted category-15 blocks"),
    ]
    dense = np.zeros((576, 64), np.int64)
    dense[:, 1:] = rng.integers(1, 4, size=(576, 63)) * rng.choice([-1, 1], size=(576, 63))
    worst.append(job_of(layer_from_blocks(dense, 144, 256, 100, 0), "64 symbols every block"))
    # the input-bound extreme: every coefficient of every block in category 15 with a 16-bit code, i.e.
    # 31 stream bits per weight (the longest symbol), twice the port's 16 bits per cycle
    cat15 = rng.integers(16384, 32768, size=(576, 64)) * rng.choice([-1, 1], size=(576, 64))
    cat15[:, 0] = np.tile([16384, -16383], 288)   # in lane order: DC differences alternate +-32767
    longest = (long_code_table(15, list(range(15))), long_code_table(0x0F, [*range(1, 15), 0x11]))
    worst.append(job_of(layer_from_blocks(in_block_order(cat15, 144, 256), 144, 256, 100, 4, longest),
                        "category 15 everywhere, 16-bit codes"))
    jobs += [(j, "synthetic") for j in worst]
    report = []
    for job, kind in jobs:
        out = await bench.decode(job)
        bits = job.bits / out.weights
        report.append({"case": job.label, "kind": kind, "blocks": job.blocks, "bits_per_weight": round(bits, 3),
                       "weights_per_cycle": round(out.sustained, 4), "overall_weights_per_cycle": round(out.overall, 4),
                       "input_bound": round(min(1.0, 16 / bits), 4) if bits else 1.0,
                       "stall_in": out.counters["stall_in"], "stall_out": out.counters["stall_out"],
                       "cycles": out.counters["cycles"]})
    for r in report:
        dut._log.info(f"{r['case']:60} {r['bits_per_weight']:7.3f} bits/weight  {r['weights_per_cycle']:.4f} "
                      f"weights/cycle (input bound {r['input_bound']:.4f})")
    if os.environ.get("EDGESPLIT_RESULT"):
        Path(os.environ["EDGESPLIT_RESULT"]).write_text(json.dumps(report, indent=1))
    bench.check()


# ---- real layers (the pytest side calls these; they need the shared data) --------------------------------


def resnet20_weights(names: tuple[str, ...] | None = None, calibrated: bool = False) -> dict[str, np.ndarray]:
    """Int16 weights of pretrained ResNet-20's conv/linear layers (BatchNorm folded), by layer name.

    ``calibrated``: exactly ``golden.quantize.default_qnet("resnet20")``'s weights (about 20 s of
    calibration); else each layer at the weight format golden.quantize starts from (``frac_bits_for`` of
    the largest folded weight), which differs from the calibrated one only where calibration lowers it."""
    from golden import fixedpoint as fp
    from golden import quantize as Q
    from golden.nets import get_net
    from golden.splits import layers

    if calibrated:
        q = Q.default_qnet("resnet20")
        out = {l.name: l.w for l in q.layers if l.type in ("conv", "linear")}
    else:
        net = get_net("resnet20")
        out = {}
        for lay in layers("resnet20"):
            if lay.type in ("conv", "linear") and (names is None or lay.name in names):
                w, _ = Q.folded_params(net, lay)
                f_w = fp.frac_bits_for(float(w.abs().max()), fp.WEIGHT_BITS)
                out[lay.name] = fp.quantize(w.double().numpy(), f_w, fp.WEIGHT_BITS).astype(np.int16)
    return {k: v for k, v in out.items() if names is None or k in names}


def real_jobs(weights: dict[str, np.ndarray], qfs) -> list[whost.DecodeJob]:
    jobs = []
    for name, w in weights.items():
        prep = wc.Prepared.of(w)
        for qf in qfs:
            jobs.append(job_of(prep.encode(qf), f"resnet20 {name}", lane=qf % wc.LANES))
    return jobs


__all__ = ["QFS", "save_jobs", "load_jobs", "resnet20_weights", "real_jobs", "edge_zz", "layer_from_blocks",
           "in_block_order",
           "gaussian_layer"]
