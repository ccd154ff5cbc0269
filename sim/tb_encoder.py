"""cocotb testbench of the RTL feature encoder (``hw.jpeg.encoder.Encoder``, design ``jpeg_encoder``).

Driver (sample stream) -> DUT -> monitor (byte stream), with a scoreboard fed by the golden models: every
image is an :class:`hw.jpeg.host.EncodeJob` (the padded block stream, the table-port writes and golden's
scan or payload bytes), and the RTL's bytes must equal golden's byte for byte, and its ``out_bits``
counter golden's bit count. Images run back to back in one simulation (the DC predictor and the packer
restart at each image's ``last``); tables are reloaded between images while the encoder is idle.

The pytest side (``tests/hw/test_encoder_cocotb.py``) picks the test; :func:`run_job` runs one job for the
CLI (``edgesplit encode --rtl``). ``colour_sweep`` and ``colour_cycles`` need the colour build
(``jpeg_encoder_colour``, ``Encoder(colour=True)``): the bench sets its ``sampling`` input from each job.

Environment
-----------
EDGESPLIT_SEED     random seed (default 1)
EDGESPLIT_GAPS     probability of an input gap / output stall per cycle where a test uses them (default 0.2)
EDGESPLIT_JOB      ``.npz`` of an :class:`~hw.jpeg.host.EncodeJob` for the ``job`` test
EDGESPLIT_RESULT   where ``job`` writes the bytes and counters (``.npz``) and ``throughput`` its numbers (JSON)
EDGESPLIT_CASES    run only the first N cases of ``lossless_maps`` and ``edge_cases`` (of each subsampling in
                   ``colour_sweep``) (default all; a reduced run for a slow simulator, e.g. Icarus)
EDGESPLIT_OUTPUTS  where a test writes every job's bytes and counters (JSON), so that the results of two
                   simulators can be compared exactly
EDGESPLIT_SIDE     ``colour_cycles``: the side of its square colour photo (default 224)
"""

from __future__ import annotations

import io
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from golden import featpack, jpeg, lossless
from hw.jpeg import host
from hw.jpeg.bitpacker import OUT_BYTES
from hw.jpeg.encoder import COUNTERS, input_layout, output_layout
from sim.payload import Packer
from sim.streams import StreamDriver, StreamMonitor, env_gaps, env_seed, run_cycles, start_bench

QFS = (1, 10, 30, 50, 75, 90, 100)


# ---- images --------------------------------------------------------------------------------------------


def photo(name: str, y: int, x: int, h: int, w: int) -> np.ndarray:
    """A grayscale crop of a scikit-image photo (colour photos: their JFIF luma)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 3:
        img = jpeg.rgb_to_ycbcr(img[..., :3])[..., 0]
    return np.ascontiguousarray(img[y:y + h, x:x + w]).astype(np.uint8)


def feature_maps(name: str = "camera", size: int = 64, channels: int = 6, seed: int = 0) -> np.ndarray:
    """Real CNN-like feature maps: a seeded 3x3 conv + ReLU of a photo, int16 [C, H, W]
    (``golden.lossless.synthetic_relu_maps``)."""
    return lossless.synthetic_relu_maps(photo(name, 100, 120, size, size), channels, seed)


def feature_mosaic(features: np.ndarray, mode: str = "layer") -> np.ndarray:
    """The 8-bit grayscale mosaic ``golden.featpack`` makes of a feature map (what the JPEG path codes)."""
    mosaic, _ = featpack.pack(features, mode)
    return mosaic


def checkerboard(h: int, w: int) -> np.ndarray:
    return np.where(np.indices((h, w)).sum(0) % 2, 255, 0).astype(np.uint8)


# ---- the bench -----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one job did: the bytes, the DUT's counters and the input span (for samples per cycle)."""

    data: bytes
    counters: dict[str, int]
    first_accept: int
    last_accept: int
    cycles: int                 # bench cycles from the first beat offered to the last byte
    label: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def samples_per_cycle(self) -> float:
        return self.counters["samples"] / (self.last_accept - self.first_accept + 1)


class EncoderBench:
    def __init__(self, dut, gap: float = 0.0, stall: float = 0.0, seed: int = 1):
        self.dut = dut
        self.gap = gap
        self.stall = stall
        self.rng = random.Random(seed)
        self.colour = hasattr(dut, "sampling")   # the colour build (Encoder(colour=True))
        self.inp = Packer(input_layout(self.colour))
        width = len(dut.out__payload)
        self.out_bytes = next(w for w in OUT_BYTES if Packer(output_layout(w)).width == width)
        self.out = Packer(output_layout(self.out_bytes))
        self._out_last_bit = self.out.fields["last"][0]
        self.outcomes: list[Outcome] = []
        self.loaded: bytes | None = None

    async def load_tables(self, job: host.EncodeJob) -> None:
        key = job.tables.tobytes()
        if key == self.loaded:
            return
        dut = self.dut
        for addr, value in job.tables:
            dut.tbl_we.value = 1
            dut.tbl_addr.value = int(addr)
            dut.tbl_data.value = int(value)
            await RisingEdge(dut.clk)
        dut.tbl_we.value = 0
        self.loaded = key

    async def encode(self, job: host.EncodeJob, label: str = "", gap: float | None = None,
                     stall: float | None = None) -> Outcome:
        """One image; its bytes and counters are checked against golden."""
        return await self.encode_stream([job], label, gap, stall)

    async def encode_stream(self, jobs: list[host.EncodeJob], label: str = "", gap: float | None = None,
                            stall: float | None = None) -> Outcome:
        """Images back to back in one sample stream (``last`` after each, no waiting in between; same mode
        and tables): each image's bytes must equal its golden bytes and end with a ``last`` beat."""
        dut = self.dut
        job = jobs[0]
        assert all(j.lossless == job.lossless and j.signed == job.signed and np.array_equal(j.tables, job.tables)
                   for j in jobs), "a stream needs one mode and one table set"
        gap = self.gap if gap is None else gap
        stall = self.stall if stall is None else stall
        assert all(j.sampling == job.sampling and j.rgb == job.rgb for j in jobs), "a stream needs one input form"
        assert not int(dut.busy.value), "encoder busy before a job"
        if self.colour:
            dut.sampling.value = int(job.sampling)
            dut.rgb.value = int(job.rgb)
        else:
            assert job.sampling == 0, "a colour job needs the colour build (jpeg_encoder_colour)"
        dut.lossless.value = int(job.lossless)
        dut.lossless_signed.value = int(job.signed)
        await self.load_tables(job)
        dut.clear.value = 1
        await RisingEdge(dut.clk)
        dut.clear.value = 0
        samples = np.concatenate([j.samples for j in jobs])
        n = len(samples)
        last = np.zeros(n, dtype=np.int64)
        last[np.cumsum([len(j.samples) for j in jobs]) - 1] = 1
        expected = [j.expected for j in jobs]
        driver = StreamDriver(dut, "inp", self.inp.pack(n, data=samples, last=last), gap_prob=gap,
                              rng=random.Random(self.rng.random()))
        ends: list[int] = []   # beat index of each `last`
        last_bit = self._out_last_bit
        monitor = StreamMonitor(dut, "out", stall_prob=stall, rng=random.Random(self.rng.random()))
        monitor.on_beat = lambda word: ends.append(len(monitor.beats) - 1) if word >> last_bit & 1 else None
        budget = 40 * n + 4 * sum(map(len, expected)) + 20_000 * len(jobs)
        cycles = await run_cycles(dut.clk, [driver, monitor], until=lambda: len(ends) >= len(jobs),
                                  max_cycles=budget, what=f"encoder {label}")
        dut.inp__valid.value = 0
        await RisingEdge(dut.clk)   # the counters see the last byte's cycle
        data = self.beat_bytes(monitor.beats)
        counters = {name: int(getattr(dut, name).value) for name in COUNTERS}
        out = Outcome(data=data, counters=counters, first_accept=driver.first_accept_cycle,
                      last_accept=driver.last_accept_cycle, cycles=cycles, label=label)
        starts = [0, *[e + 1 for e in ends[:-1]]]
        for k, (a, e) in enumerate(zip(starts, ends, strict=True)):
            got, want = self.beat_bytes(monitor.beats[a:e + 1]), expected[k]
            if got != want:
                what = f"{label}" + (f" image {k}" if len(jobs) > 1 else "")
                diff = next((i for i, (x, y) in enumerate(zip(got, want, strict=False)) if x != y),
                            min(len(got), len(want)))
                out.errors.append(f"{what}: {len(got)} bytes, golden {len(want)}; first difference at byte {diff}: "
                                  f"rtl {got[diff:diff + 8].hex()} golden {want[diff:diff + 8].hex()}")
        bits = sum(j.bits for j in jobs)
        if counters["out_bits"] != bits:
            out.errors.append(f"{label}: out_bits {counters['out_bits']}, golden {bits}")
        blocks = sum(j.blocks for j in jobs)
        if counters["samples"] != n or counters["blocks"] != blocks:
            out.errors.append(f"{label}: counted {counters['samples']} samples / {counters['blocks']} blocks, "
                              f"sent {n} / {blocks}")
        if int(dut.error.value):
            out.errors.append(f"{label}: the Huffman coder flagged a symbol without a code")
        self.outcomes.append(out)
        dut._log.info(f"{label}: {n} samples, {len(data)} bytes, {out.samples_per_cycle:.3f} samples/cycle, "
                      f"stalls {counters['stall_cycles']}, cycles {counters['cycles']}")
        return out

    def beat_bytes(self, beats: list[int]) -> bytes:
        """The bytes of output beats (``out_bytes`` per beat, byte 0 lowest; ``count`` of them if wider)."""
        w = self.out_bytes
        if w == 1:
            return bytes(b & 0xFF for b in beats)
        offset, width, _, _ = self.out.fields["count"]
        mask = (1 << width) - 1
        return b"".join((b & ((1 << 8 * w) - 1)).to_bytes(w, "little")[:(b >> offset) & mask] for b in beats)

    def check(self) -> None:
        path = os.environ.get("EDGESPLIT_OUTPUTS")
        if path:
            Path(path).write_text(json.dumps([{"label": o.label, "data": o.data.hex(), "counters": o.counters,
                                               "cycles": o.cycles} for o in self.outcomes]))
        errors = [e for o in self.outcomes for e in o.errors]
        assert not errors, "\n".join(errors[:10])


async def start(dut, gap: float = 0.0, stall: float = 0.0, seed: int | None = None) -> EncoderBench:
    colour = ("sampling", "rgb") if hasattr(dut, "sampling") else ()
    await start_bench(dut, ("tbl_we", "clear", "lossless", "lossless_signed", *colour))
    return EncoderBench(dut, gap, stall, env_seed() if seed is None else seed)


def _limit(cases: list) -> list:
    """The first EDGESPLIT_CASES cases (all when unset)."""
    n = os.environ.get("EDGESPLIT_CASES")
    return cases if not n else cases[:int(n)]


def pillow_check(job: host.EncodeJob, coded: bytes, reference: np.ndarray) -> list[str]:
    """The RTL's scan wrapped in golden's JFIF header opens in Pillow and decodes close to golden's
    reconstruction (Pillow's integer IDCT vs golden's float IDCT: within a few levels)."""
    from PIL import Image

    img = Image.open(io.BytesIO(job.wrap(coded)))
    img.load()
    pixels = np.asarray(img, dtype=np.int64)
    if pixels.shape != reference.shape:
        return [f"Pillow decoded shape {pixels.shape}, expected {reference.shape}"]
    err = np.abs(pixels - reference.astype(np.int64))
    if err.max() > 3 or err.mean() > 0.6:
        return [f"Pillow decode differs from golden reconstruction: max {err.max()}, mean {err.mean():.2f}"]
    return []


# ---- tests ---------------------------------------------------------------------------------------------


@cocotb.test()
async def jpeg_sweep(dut):
    """QF 1..100 on a random image, real photo crops and a real feature-map mosaic; every scan equals
    golden's and opens in Pillow. Random input gaps and output stalls."""
    bench = await start(dut, env_gaps(), env_gaps())
    rng = np.random.default_rng(env_seed())
    images = {
        "random": rng.integers(0, 256, size=(24, 32)).astype(np.uint8),
        "camera": photo("camera", 180, 200, 40, 48),
        "astronaut": photo("astronaut", 40, 180, 29, 35),          # not a multiple of 8: padded stream
        "features": feature_mosaic(feature_maps("coffee", 24, 4, 1), "channel"),
    }
    for qf in QFS:
        for name, image in images.items():
            job = host.jpeg_job(image, qf)
            out = await bench.encode(job, f"{name} {image.shape} QF {qf}")
            if not out.errors:
                ref = jpeg.reconstruct(jpeg.quantize_image(jpeg.forward_dct(image), qf))
                out.errors += [f"{out.label}: {e}" for e in pillow_check(job, out.data, ref)]
    bench.check()


@cocotb.test()
async def lossless_maps(dut):
    """The lossless mode on real ReLU feature maps (unsigned extra bits), signed and full-range random
    maps, sparse maps with long zero runs, the optimal-table container and a 2-D map not a multiple of 8."""
    bench = await start(dut, env_gaps(), env_gaps())
    rng = np.random.default_rng(env_seed() + 1)
    feats = feature_maps("camera", 32, 4, 2)
    signed = rng.integers(-32768, 32768, size=(2, 16, 16)).astype(np.int16)
    sparse = np.where(rng.random((3, 16, 24)) < 0.97, 0, rng.integers(1, 65536, size=(3, 16, 24))).astype(np.uint16)
    cases = [
        ("relu features", feats, "default"),
        ("relu features >> 6, optimal table", (feats >> 6).astype(np.int16), "optimal"),
        ("signed int16", signed, "default"),
        ("uint16 sparse (ZRL)", sparse, "default"),
        ("int8 2-D 13x21", rng.integers(-128, 128, size=(13, 21)).astype(np.int8), "default"),
        ("uint8 auto table", rng.integers(0, 4, size=(1, 16, 16)).astype(np.uint8), "auto"),
    ]
    for label, values, table in _limit(cases):
        job = host.lossless_job(values, table)
        out = await bench.encode(job, label)
        if not out.errors:   # the RTL payload in its container round-trips through golden's decoder
            decoded = lossless.decode(job.wrap(out.data))
            if decoded.dtype != values.dtype or not np.array_equal(decoded, values):
                out.errors.append(f"{label}: the container does not decode to the map")
    bench.check()


@cocotb.test()
async def edge_cases(dut):
    """All-zero blocks, maximum-amplitude checkerboards, ZRL runs, 0xFF stuffing, odd sizes, a 1x1 image,
    images back to back (the DC predictor restarts), lossless all-zero and last-position-only blocks."""
    bench = await start(dut, 0.1, 0.1)
    rng = np.random.default_rng(env_seed() + 2)
    flat = np.full((16, 16), 128, dtype=np.uint8)            # level shift to 0: every coefficient is 0
    # a pure horizontal frequency u = 7: coefficient (0, 7) sits at zigzag position 28, 27 zeros before
    # it: ZRL; the vertical u = 0, v = 7 one at position 35 gives a longer run
    x = np.arange(16)
    cos7 = np.clip(128 + 100 * np.cos((2 * (x % 8) + 1) * 7 * np.pi / 16), 0, 255).astype(np.uint8)
    zrl_h = np.tile(cos7, (16, 1))
    cases = [
        ("all-zero blocks QF 50", flat, 50),
        ("all-zero blocks QF 100", flat, 100),
        ("checkerboard QF 100", checkerboard(16, 24), 100),
        ("checkerboard QF 1", checkerboard(16, 24), 1),
        ("inverse checkerboard QF 75", 255 - checkerboard(16, 16), 75),
        ("ZRL horizontal u=7 QF 100", zrl_h, 100),
        ("ZRL vertical v=7 QF 90", np.ascontiguousarray(zrl_h.T), 90),
        ("black QF 100", np.zeros((8, 8), np.uint8), 100),
        ("white QF 100", np.full((8, 8), 255, np.uint8), 100),
        ("1x1", np.array([[77]], np.uint8), 75),
        ("13x21 random QF 30", rng.integers(0, 256, size=(13, 21)).astype(np.uint8), 30),
        ("noise QF 100 (stuffing)", rng.integers(0, 256, size=(16, 16)).astype(np.uint8), 100),
    ]
    stuffed = 0
    for label, image, qf in _limit(cases):
        job = host.jpeg_job(image, qf)
        await bench.encode(job, label)
        stuffed += job.expected.count(b"\xff\x00")
    if len(_limit(cases)) < len(cases):   # a reduced run: the single images only
        bench.check()
        return
    assert stuffed > 0, "no 0xFF byte needed stuffing: the stuffing path went untested"
    # images back to back in one stream, no waiting: the DC predictor and the packer restart at each `last`
    tiny = [np.array([[200]], np.uint8), rng.integers(0, 256, size=(8, 16)).astype(np.uint8),
            np.full((8, 8), 30, np.uint8), checkerboard(8, 8), rng.integers(0, 256, size=(3, 5)).astype(np.uint8)]
    await bench.encode_stream([host.jpeg_job(img, 95) for img in tiny * 4], "20 JPEG images back to back")
    maps = [rng.integers(-5, 6, size=(1, 8, 8)).astype(np.int16) for _ in range(6)] + [np.zeros((2, 8, 8), np.int16)]
    await bench.encode_stream([host.lossless_job(x, signed=True) for x in maps], "7 lossless maps back to back")
    # lossless corner blocks
    zeros = np.zeros((1, 16, 16), np.int16)
    only_last = np.zeros((1, 8, 8), np.uint16)
    only_last[0, 7, 7] = 65535                     # 63 zeros: ZRL x3, (15, 16), no EOB
    first_only = np.zeros((1, 8, 8), np.int16)
    first_only[0, 0, 0] = -32768
    for label, values in (("lossless zeros", zeros), ("lossless last only", only_last),
                          ("lossless -32768 first", first_only)):
        await bench.encode(host.lossless_job(values), label)
    bench.check()


@cocotb.test()
async def backpressure(dut):
    """Heavy random input gaps and output stalls: the same bytes, nothing lost or duplicated."""
    bench = await start(dut, 0.4, 0.6)
    rng = np.random.default_rng(env_seed() + 3)
    image = photo("camera", 300, 300, 24, 24)
    await bench.encode(host.jpeg_job(image, 90), "camera QF 90, gaps 0.4, stalls 0.6")
    await bench.encode(host.jpeg_job(rng.integers(0, 256, size=(16, 16)).astype(np.uint8), 100),
                       "noise QF 100, gaps 0.4, stalls 0.6")
    await bench.encode(host.lossless_job(feature_maps("chelsea", 16, 2, 3)), "lossless features")
    await bench.encode(host.jpeg_job(image, 10), "camera QF 10, stalls 0.9", gap=0.0, stall=0.9)
    await bench.encode(host.lossless_job(rng.integers(0, 65536, size=(1, 8, 16)).astype(np.uint16)),
                       "lossless full range, gaps 0.8", gap=0.8, stall=0.0)
    bench.check()


@cocotb.test()
async def large_sweep(dut):
    """The slow sweep: bigger photos and feature maps at every QF, lossless maps at several scales and
    sparsities, three seeds of random images; light gaps and stalls."""
    bench = await start(dut, 0.05, 0.05)
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        feats = feature_maps(("camera", "astronaut", "coffee")[seed], 48, 16, seed)
        images = {
            "camera": photo("camera", 64 * seed, 100, 128, 120),
            "chelsea": photo("chelsea", 50, 40 + 30 * seed, 96, 136),
            "mosaic layer": feature_mosaic(feats, "layer"),
            "mosaic channel": feature_mosaic(feats, "channel"),
            "random": rng.integers(0, 256, size=(40, 56)).astype(np.uint8),
        }
        for qf in (*QFS, int(rng.integers(2, 100))):
            for name, image in images.items():
                await bench.encode(host.jpeg_job(image, qf), f"seed {seed} {name} {image.shape} QF {qf}")
        positive = feats[feats > 0]
        for keep in (1.0, 0.2):
            threshold = np.quantile(positive, 1 - keep) if keep < 1 else 0
            kept = np.where(feats > threshold, feats, 0)
            for shift in (0, 3, 9):
                values = (kept >> shift).astype(np.int16)
                for table in ("default", "optimal"):
                    await bench.encode(host.lossless_job(values, table),
                                       f"seed {seed} lossless keep {keep} >> {shift} {table}")
    bench.check()


# ---- colour (the 3-component build, jpeg_encoder_colour) ------------------------------------------------


def colour_photo(name: str, y: int, x: int, h: int, w: int) -> np.ndarray:
    """An RGB crop of a scikit-image colour photo, uint8 [h, w, 3]."""
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[y:y + h, x:x + w, :3]).astype(np.uint8)


PRIMARIES = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 255, 255], [255, 0, 255], [255, 255, 0],
                      [0, 0, 0], [255, 255, 255]], dtype=np.uint8)


def primaries(h: int, w: int) -> np.ndarray:
    """Saturated primaries and secondaries, black and white in 4-pixel stripes (the lower half mirrored):
    the extremes of Cb and Cr (0..255) and sharp chroma edges inside blocks and across MCUs."""
    img = PRIMARIES[(np.arange(w) // 4) % 8][None].repeat(h, 0)
    img[h // 2:] = img[h // 2:, ::-1]
    return np.ascontiguousarray(img)


def colour_images(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "random": rng.integers(0, 256, size=(19, 29, 3)).astype(np.uint8),     # odd: padded to the MCU
        "astronaut": colour_photo("astronaut", 100, 180, 37, 45),
        "black": np.zeros((16, 16, 3), np.uint8),
        "white": np.full((16, 24, 3), 255, np.uint8),
        "primaries": primaries(17, 33),
        "1x1": np.array([[[250, 3, 100]]], np.uint8),
    }


COLOUR_QFS = (1, 50, 100)
SAMPLING_OF_PILLOW = {"444": 0, "420": 2}   # PIL.JpegImagePlugin.get_sampling


def pillow_colour_check(job: host.EncodeJob, coded: bytes, image: np.ndarray, subsampling: str,
                        qf: int, smooth: bool) -> list[str]:
    """The RTL's scan in golden's JFIF header opens in Pillow (libjpeg) as a 3-component image of the input's
    size with the right subsampling, mode RGB (libjpeg converts from YCbCr), and decodes close to golden's
    decoder: 4:4:4 within 45 dB PSNR of it (IDCT and colour-conversion rounding only). 4:2:0: libjpeg
    upsamples chroma with a triangle filter where golden replicates, so on smooth content (photos, flat
    images) within 38 dB, elsewhere the same PSNR against the input within 1.5 dB. Photos at QF >= 75: at
    least 30 dB against the input."""
    from PIL import Image, JpegImagePlugin

    img = Image.open(io.BytesIO(job.wrap(coded)))
    img.load()
    errors = []
    if img.mode != "RGB" or img.layers != 3 or img.format != "JPEG":
        errors.append(f"Pillow opened {img.format} mode {img.mode} with {img.layers} layers, not JPEG RGB 3")
    if JpegImagePlugin.get_sampling(img) != SAMPLING_OF_PILLOW[subsampling]:
        errors.append(f"Pillow reports subsampling {JpegImagePlugin.get_sampling(img)}, "
                      f"expected {SAMPLING_OF_PILLOW[subsampling]} ({subsampling})")
    pixels = np.asarray(img)
    if pixels.shape != image.shape:
        return errors + [f"Pillow decoded shape {pixels.shape}, expected {image.shape}"]
    ours = jpeg.decode_jpeg(job.wrap(coded))
    to_golden = jpeg.psnr(ours, pixels)
    if subsampling == "444" or smooth:
        bound = 45.0 if subsampling == "444" else 38.0
        if to_golden < bound:
            errors.append(f"Pillow's decode is {to_golden:.1f} dB from golden's (bound {bound})")
    else:
        a, b = jpeg.psnr(image, pixels), jpeg.psnr(image, ours)
        if abs(a - b) > 1.5:
            errors.append(f"PSNR to the input: Pillow {a:.1f} dB, golden {b:.1f} dB (bound: within 1.5 dB)")
    if smooth and qf >= 75 and jpeg.psnr(image, pixels) < 30:
        errors.append(f"PSNR to the input {jpeg.psnr(image, pixels):.1f} dB at QF {qf} (bound 30)")
    return errors


@cocotb.test()
async def colour_sweep(dut):
    """Colour images on the 3-component build: random (odd size), a photo crop, all-0, all-255, saturated
    primaries, a 1x1 pixel; 4:4:4 and 4:2:0; QF 1, 50, 100 (and 10, 75, 90 on the random image and the photo);
    RGB pixels through the on-chip colour stage (``rgb``). Every scan equals golden's byte for byte and opens in
    Pillow (``pillow_colour_check``). Then the host-converted YCbCr input (``rgb`` = 0) on some of them, images
    back to back in one stream (each component's DC predictor, the MCU slot and the colour stage restart at
    each image), and a grayscale image (``sampling`` 0) on the same build. Random input gaps and output
    stalls."""
    bench = await start(dut, env_gaps(), env_gaps())
    rng = np.random.default_rng(env_seed() + 10)
    images = colour_images(rng)
    smooth = {"astronaut", "black", "white", "1x1"}
    cases = [(sub, name, qf) for sub in jpeg.SUBSAMPLINGS for name in images
             for qf in ((*COLOUR_QFS, 10, 75, 90) if name in ("random", "astronaut") else COLOUR_QFS)]
    # a reduced run (EDGESPLIT_CASES, e.g. Icarus): the first cases of each subsampling, nothing else
    reduced = len(_limit(cases)) < len(cases)
    if reduced:
        cases = [c for sub in jpeg.SUBSAMPLINGS for c in _limit([c for c in cases if c[0] == sub])]
    for sub, name, qf in cases:
        image = images[name]
        job = host.jpeg_job(image, qf, sub)
        out = await bench.encode(job, f"{name} {image.shape[:2]} {sub} QF {qf}")
        if not out.errors:
            out.errors += [f"{out.label}: {e}"
                           for e in pillow_colour_check(job, out.data, image, sub, qf, name in smooth)]
    if reduced:
        bench.check()
        return
    for sub in jpeg.SUBSAMPLINGS:
        for name in ("random", "primaries", "astronaut"):
            await bench.encode(host.jpeg_job(images[name], 70, sub, rgb=False), f"{name} {sub} QF 70 host YCbCr")
        tiny = [images["1x1"], images["primaries"], rng.integers(0, 256, size=(9, 17, 3)).astype(np.uint8),
                images["white"]]
        await bench.encode_stream([host.jpeg_job(img, 80, sub) for img in tiny * 2],
                                  f"8 colour images back to back {sub}")
    await bench.encode(host.jpeg_job(photo("camera", 10, 20, 21, 27), 60), "grayscale on the colour build")
    bench.check()


COLOUR_THROUGHPUT_QFS = (90,)


@cocotb.test()
async def colour_cycles(dut):
    """A 224 x 224 (``EDGESPLIT_SIDE``) colour crop of the astronaut photo at 4:4:4 and 4:2:0, QF 90, no input gaps,
    output always ready, as RGB pixels (on-chip colour stage) and as host-converted YCbCr samples: cycles per
    image (the ``cycles`` counter) and input beats per cycle; bytes checked. Numbers to EDGESPLIT_RESULT (JSON)."""
    bench = await start(dut)
    side = int(os.environ.get("EDGESPLIT_SIDE", "224"))
    image = colour_photo("astronaut", 100, 150, side, side)
    report = []
    for sub in jpeg.SUBSAMPLINGS:
        for qf in COLOUR_THROUGHPUT_QFS:
            for rgb in (True, False):
                job = host.jpeg_job(image, qf, sub, rgb=rgb)
                form = "RGB pixels" if rgb else "host YCbCr"
                out = await bench.encode(job, f"astronaut {side}x{side} {sub} QF {qf} {form}")
                report.append({"case": f"astronaut {side}x{side} {sub} QF {qf}, {form}", "subsampling": sub,
                               "qf": qf, "side": side, "rgb": rgb, "beats": len(job.samples), "blocks": job.blocks,
                               "bytes": len(job.expected),
                               "cycles": out.counters["cycles"], "stall_cycles": out.counters["stall_cycles"],
                               "beats_per_cycle": round(out.samples_per_cycle, 4)})
                dut._log.info(f"{report[-1]}")
    if os.environ.get("EDGESPLIT_RESULT"):
        Path(os.environ["EDGESPLIT_RESULT"]).write_text(json.dumps(report, indent=1))
    bench.check()


THROUGHPUT_CASES = ("real", "worst")


def throughput_jobs(kind: str, seed: int) -> list[tuple[str, host.EncodeJob]]:
    rng = np.random.default_rng(seed)
    if kind == "real":
        feats = feature_maps("camera", 64, 8, 0)
        mosaic = feature_mosaic(feats, "layer")
        mosaic_ch = feature_mosaic(feats, "channel")
        return [
            ("JPEG QF 75, feature mosaic (layer scaling)", host.jpeg_job(mosaic, 75)),
            ("JPEG QF 90, feature mosaic (channel scaling)", host.jpeg_job(mosaic_ch, 90)),
            ("JPEG QF 100, feature mosaic (channel scaling)", host.jpeg_job(mosaic_ch, 100)),
            ("JPEG QF 75, camera 64x64", host.jpeg_job(photo("camera", 100, 200, 64, 64), 75)),
            ("lossless, ReLU features int16", host.lossless_job(feats)),
        ]
    return [
        ("JPEG QF 100, uniform noise", host.jpeg_job(rng.integers(0, 256, size=(32, 32)).astype(np.uint8), 100)),
        ("JPEG QF 100, checkerboard", host.jpeg_job(checkerboard(32, 32), 100)),
        ("JPEG QF 50, uniform noise", host.jpeg_job(rng.integers(0, 256, size=(32, 32)).astype(np.uint8), 50)),
        ("lossless, full-range uint16 noise",
         host.lossless_job(rng.integers(0, 65536, size=(1, 32, 32)).astype(np.uint16))),
        ("lossless, full-range int16 noise, optimal table",
         host.lossless_job(rng.integers(-32768, 32768, size=(1, 32, 32)).astype(np.int16), "optimal")),
    ]


@cocotb.test()
async def throughput(dut):
    """Samples per cycle with no input gaps and the output always ready, on real feature maps (JPEG
    mosaics, lossless int16 maps) and worst cases. Only the bytes are checked here; the numbers go to
    EDGESPLIT_RESULT (JSON) and the pytest side judges them (they depend on the output width)."""
    bench = await start(dut)
    report = []
    for kind in THROUGHPUT_CASES:
        for label, job in throughput_jobs(kind, env_seed()):
            out = await bench.encode(job, label)
            bits = 8 * len(job.expected) / len(job.samples)
            report.append({"case": label, "kind": kind, "out_bytes": bench.out_bytes, "samples": len(job.samples),
                           "coded_bits_per_sample": round(bits, 3),
                           "samples_per_cycle": round(out.samples_per_cycle, 4),
                           "output_bound": round(min(1.0, 8 * bench.out_bytes / bits), 4),
                           "stall_cycles": out.counters["stall_cycles"], "cycles": out.counters["cycles"]})
    for r in report:
        dut._log.info(f"{r['case']:50} {r['coded_bits_per_sample']:7.3f} bits/sample  "
                      f"{r['samples_per_cycle']:.4f} samples/cycle (byte bound {r['output_bound']:.4f})")
    if os.environ.get("EDGESPLIT_RESULT"):
        Path(os.environ["EDGESPLIT_RESULT"]).write_text(json.dumps(report, indent=1))
    bench.check()


@cocotb.test()
async def encode_job(dut):
    """One job from EDGESPLIT_JOB (``EncodeJob.save``); the bytes and counters go to EDGESPLIT_RESULT (npz).
    Does not compare: the caller does (``run_job``)."""
    spec = np.load(os.environ["EDGESPLIT_JOB"])
    j = host.EncodeJob(lossless=bool(spec["lossless"]), signed=bool(spec["signed"]), samples=spec["samples"],
                       tables=spec["tables"], expected=spec["expected"].tobytes(), bits=int(spec["bits"]), header=b"",
                       sampling=int(spec["sampling"]) if "sampling" in spec else 0,
                       rgb=bool(spec["rgb"]) if "rgb" in spec else False)
    bench = await start(dut)
    t0 = time.monotonic()
    out = await bench.encode(j, "job")  # compared by the caller (run_job), not here
    np.savez(os.environ["EDGESPLIT_RESULT"], data=np.frombuffer(out.data, dtype=np.uint8),
             wall_s=time.monotonic() - t0, **out.counters)


# ---- running a job from Python (the CLI) ---------------------------------------------------------------


@dataclass(frozen=True)
class RtlResult:
    data: bytes
    counters: dict[str, int]


def run_job(job: host.EncodeJob, workdir: Path) -> RtlResult:
    """Encode ``job`` on the Verilator model (cached build, via ``sim.runner.run``) and return its bytes
    and counters; ``workdir`` holds the job and result files."""
    from sim.designs import JPEG_ENCODER, JPEG_ENCODER_COLOUR
    from sim.runner import run

    design = JPEG_ENCODER_COLOUR if job.sampling else JPEG_ENCODER   # colour images: the 3-component build
    workdir = Path(workdir)
    job_path = workdir / "job.npz"
    result_path = workdir / "result.npz"
    job.save(job_path)
    run(design, "sim.tb_encoder", testcase="encode_job",
        env={"EDGESPLIT_JOB": str(job_path), "EDGESPLIT_RESULT": str(result_path)})
    res = np.load(result_path)
    return RtlResult(data=res["data"].tobytes(), counters={name: int(res[name]) for name in COUNTERS})
