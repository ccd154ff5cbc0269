"""The encode unit's colour build (``EncodeUnit(colour=True)``, issue 16 item 6) on its own, in Amaranth's
simulator: a camera image held in a model of the feature buffer as three planes (R, G, B, 8-bit values in
16-bit words) is walked in the colour encoder's MCU order and coded into DRAM; the coded bytes equal
golden's JPEG scan (``golden.jpeg.encode`` through ``hw.jpeg.host.jpeg_job``) byte for byte, and the file
around them decodes with Pillow (libjpeg).

The bench: the feature buffer grants the unit's reads at random (the engine's port is busy in the other
cycles) and answers ``fb_words_per_read`` words a cycle after the grant; DRAM takes the unit's writes with
random back-pressure. Images go back to back through one simulation, some of them in parts (the buffer
holds only some MCU rows at a time)."""

import io
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.sim import Simulator
from PIL import Image

from golden import jpeg
from hw.encode_unit import RECORD_WORDS, EncodeUnit, colour_params_layout, params_layout
from hw.jpeg import host
from hw.jpeg.encoder import SAMPLING_MODES

FB_BITS = 12
FB_WORDS = 1 << FB_BITS
READ_WORDS = 16
RECORD_FIELDS = ("bytes", "bits", "cycles", "stall_in", "stall_out", "samples")


@dataclass
class Job:
    """One image for the unit: its memory images and parameters part by part, and what it must produce."""

    name: str
    tables: np.ndarray
    parts: list            # (memory words [FB_WORDS], params dict)
    out_addr: int
    expected: bytes
    bits: int
    samples: int           # pixels (RGB) or samples (map) the encoder takes
    job: host.EncodeJob
    image: np.ndarray
    record: dict = field(default_factory=dict)
    data: bytes = b""


def _memory(rng) -> np.ndarray:
    """The buffer outside the image: random 16-bit words (a misdirected read changes the bytes)."""
    return rng.integers(-32768, 32768, size=FB_WORDS + READ_WORDS).astype(np.int64)


def colour_job(rng, name, image, subsampling, qf, out_addr, mcu_rows_per_part=None) -> Job:
    """An RGB image as three planes; ``mcu_rows_per_part``: the buffer holds that many MCU rows at a time."""
    h, w, _ = image.shape
    m = jpeg.mcu_size(subsampling)
    my, mx = -(-h // m), -(-w // m)
    per = mcu_rows_per_part or my
    job = host.jpeg_job(image, qf, subsampling)
    parts = []
    for k, yb0 in enumerate(range(0, my, per)):
        ybn = min(per, my - yb0)
        y0, y1 = yb0 * m, min(h, (yb0 + ybn) * m)
        in_addr = int(rng.integers(0, 40))                  # any alignment
        stride = (y1 - y0) * w + int(rng.integers(0, 9))
        mem = _memory(rng)
        for c in range(3):
            base = in_addr + c * stride
            mem[base:base + (y1 - y0) * w] = image[y0:y1, :, c].reshape(-1)
        params = {"in_addr": in_addr, "ch_stride": stride, "channels": 3, "h": h, "w": w, "grid_cols": 1,
                  "grid_rows": 1, "yb0": yb0, "ybn": ybn, "y_base": y0, "shift": 0, "offset": 0, "first": int(k == 0),
                  "last": int(yb0 + ybn == my), "out_addr": out_addr, "sampling": SAMPLING_MODES[subsampling]}
        parts.append((mem, params))
    return Job(name, job.tables, parts, out_addr, job.expected, job.bits, my * mx * m * m, job, image)


def gray_job(rng, name, image, qf, out_addr) -> Job:
    """A one-channel 8-bit map (shift 0, offset 0: the codes are the values) through the colour build's
    one-component path: golden's grayscale JPEG."""
    h, w = image.shape
    job = host.jpeg_job(image, qf)
    mem = _memory(rng)
    in_addr = int(rng.integers(0, 40))
    mem[in_addr:in_addr + h * w] = image.reshape(-1)
    params = {"in_addr": in_addr, "ch_stride": h * w, "channels": 1, "h": h, "w": w, "grid_cols": 1, "grid_rows": 1,
              "yb0": 0, "ybn": -(-h // 8), "y_base": 0, "shift": 0, "offset": 0, "first": 1, "last": 1,
              "out_addr": out_addr, "sampling": SAMPLING_MODES["gray"]}
    return Job(name, job.tables, [(mem, params)], out_addr, job.expected, job.bits, len(job.samples), job, image)


def run_unit(jobs: list[Job], *, grant=0.7, stall=0.2, seed=0, colour=True, max_cycles=400_000) -> dict:
    """Run ``jobs`` back to back through ``EncodeUnit(FB_BITS, colour=colour)``; fill each job's ``record`` and
    ``data`` from the DRAM model (as ``sim.encoding.read_encoding`` reads them). Returns the bench's totals."""
    dut = EncodeUnit(FB_BITS, READ_WORDS, colour=colour)
    layout = colour_params_layout if colour else params_layout
    rng = np.random.default_rng(seed)
    dram: dict[int, int] = {}
    totals = {"cycles": 0, "reads": 0}
    state = {"mem": _memory(rng), "landing": None}

    async def cycle(ctx):
        if state["landing"] is not None:
            words = state["landing"]
            ctx.set(dut.rd_data.as_value(), sum((int(v) & 0xFFFF) << (16 * i) for i, v in enumerate(words)))
        state["landing"] = None
        if ctx.get(dut.rd_req) and rng.random() < grant:
            a = ctx.get(dut.rd_addr)
            state["landing"] = state["mem"][a:a + READ_WORDS].copy()     # the read happens at the grant
            totals["reads"] += 1
            ctx.set(dut.rd_grant, 1)
        else:
            ctx.set(dut.rd_grant, 0)
        ready = rng.random() >= stall
        ctx.set(dut.wr.ready, ready)
        if ready and ctx.get(dut.wr.valid):
            addr, count = ctx.get(dut.wr.payload.addr), ctx.get(dut.wr.payload.count)
            wdata = ctx.get(dut.wr.payload.wdata.as_value())
            for i in range(count):
                dram[addr + i] = (wdata >> (16 * i)) & 0xFFFF
        await ctx.tick()
        totals["cycles"] += 1
        if totals["cycles"] > max_cycles:
            raise TimeoutError(f"encode unit: still busy after {max_cycles} cycles")

    async def bench(ctx):
        for job in jobs:
            while ctx.get(dut.busy):
                await cycle(ctx)
            for addr, value in job.tables:                       # the table port, while the unit is idle
                ctx.set(dut.tbl_we, 1)
                ctx.set(dut.tbl_addr, int(addr))
                ctx.set(dut.tbl_data, int(value))
                await cycle(ctx)
            ctx.set(dut.tbl_we, 0)
            for mem, params in job.parts:
                while ctx.get(dut.reading):                      # the previous part is still being read
                    await cycle(ctx)
                state["mem"] = mem
                ctx.set(dut.params.as_value(), layout.const(params).as_value())
                ctx.set(dut.start, 1)
                await cycle(ctx)
                ctx.set(dut.start, 0)
        while ctx.get(dut.busy):
            await cycle(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for job in jobs:
        rec = [dram.get(job.out_addr + i, 0) for i in range(RECORD_WORDS)]
        job.record = {f: rec[2 * i] | (rec[2 * i + 1] << 16) for i, f in enumerate(RECORD_FIELDS)}
        n = job.record["bytes"]
        words = [dram[job.out_addr + RECORD_WORDS + i] for i in range(-(-n // 2))]
        job.data = np.array(words, dtype="<u2").tobytes()[:n]
    return totals


def bench_images(rng):
    """Random (odd sizes), extremes (all 0, all 255, alternating 0/255 pixels and planes), 1x1, a smooth
    gradient; sizes not multiples of 8 or 16."""
    yy, xx = np.mgrid[0:19, 0:27]
    smooth = np.stack([4 * yy + 3 * xx, 255 - 5 * yy, 128 + 3 * xx - 2 * yy], axis=-1).clip(0, 255).astype(np.uint8)
    checker = ((np.arange(11)[:, None] + np.arange(13)[None, :]) % 2 * 255).astype(np.uint8)
    return {
        "random_21x13": rng.integers(0, 256, size=(21, 13, 3)).astype(np.uint8),
        "zeros_9x17": np.zeros((9, 17, 3), np.uint8),
        "full_16x8": np.full((16, 8, 3), 255, np.uint8),
        "checker_11x13": np.stack([checker, 255 - checker, checker], axis=-1),
        "one_pixel": np.array([[[250, 3, 100]]], np.uint8),
        "smooth_19x27": smooth,
    }


def decoded(job: Job, data: bytes) -> np.ndarray:
    """The file the host makes around the unit's bytes (JFIF header + scan + EOI), decoded by libjpeg."""
    with Image.open(io.BytesIO(job.job.wrap(data))) as im:
        assert im.format == "JPEG"
        return np.asarray(im.convert("RGB") if im.mode != "L" else im)


@pytest.mark.parametrize("subsampling", ["444", "420"])
def test_colour_bytes_equal_golden(subsampling):
    """Each image's coded bytes, bit count and pixel count equal golden's; the file decodes with libjpeg
    (uniform images to their value, the smooth one above 30 dB). The random image goes in parts of one MCU
    row (the buffer holds 8 or 16 rows of it at a time); the read port is granted 70% of the cycles, DRAM
    refuses 20%."""
    rng = np.random.default_rng(61 if subsampling == "444" else 62)
    jobs = []
    for i, (name, image) in enumerate(bench_images(rng).items()):
        qf = int(rng.choice([10, 50, 90, 100]))
        jobs.append(colour_job(rng, name, image, subsampling, qf, out_addr=10_000 * (i + 1),
                               mcu_rows_per_part=1 if name.startswith("random") else None))
    assert sum(len(j.parts) for j in jobs) > len(jobs)
    run_unit(jobs, grant=0.7, stall=0.2, seed=int(rng.integers(1 << 30)))
    for job in jobs:
        assert job.data == job.expected, f"{job.name}: coded bytes differ ({len(job.data)} vs {len(job.expected)})"
        assert job.record["bytes"] == len(job.expected) and job.record["bits"] == job.bits, job.name
        assert job.record["samples"] == job.samples, job.name
        assert job.record["cycles"] >= job.samples * (3 if subsampling == "444" else 1.5), job.name
        image = job.image
        got = decoded(job, job.data).astype(np.int64)
        assert got.shape == image.shape, job.name
        if job.name.startswith(("zeros", "full")):
            assert np.abs(got - image).max() <= 1, job.name
        if job.name.startswith("smooth"):
            assert jpeg.psnr(image, got) > 30, job.name


def test_colour_unit_also_codes_maps():
    """The colour build's one-component path (``sampling`` gray) is the feature-map walk: a grayscale map
    (shift 0: codes = values) gives golden's grayscale JPEG; then an RGB image right behind it."""
    rng = np.random.default_rng(63)
    gray = rng.integers(0, 256, size=(11, 20)).astype(np.uint8)
    rgb = rng.integers(0, 256, size=(10, 18, 3)).astype(np.uint8)
    jobs = [gray_job(rng, "gray", gray, 75, 1000), colour_job(rng, "rgb", rgb, "420", 75, 20_000)]
    run_unit(jobs, grant=0.5, stall=0.3, seed=64)
    for job in jobs:
        assert job.data == job.expected and job.record["bits"] == job.bits, job.name
        assert job.record["samples"] == job.samples, job.name
    assert np.array_equal(decoded(jobs[0], jobs[0].data).shape, gray.shape)


@pytest.mark.parametrize("subsampling", ["444", "420"])
def test_colour_throughput(subsampling):
    """Three reads per MCU pixel row (R, G, B; 16 words each) keep the encoder at one sample per cycle: an
    image takes 3 (4:4:4) or 1.5 (4:2:0) cycles per pixel, plus one MCU's pixels (the colour stage fills an MCU
    before its blocks go on) and the pipeline's latency, with the read port free or granted only one cycle
    in four: the unit needs 3 reads per 24 encoder cycles in both modes (measured, 32 x 32 image, cycles over
    3 H W resp. 1.5 H W: 4:4:4 +221 free, +283 at 1/4, +578 at 1/8; 4:2:0 +382, +402, +693)."""
    rng = np.random.default_rng(65)
    image = rng.integers(0, 256, size=(16, 48, 3)).astype(np.uint8)
    m = jpeg.mcu_size(subsampling)
    enc_samples = 16 * 48 * 3 if m == 8 else 16 * 48 * 3 // 2      # Y, Cb, Cr samples the encoder codes
    for grant in (1.0, 0.25):
        job = colour_job(rng, "t", image, subsampling, 50, 100)
        totals = run_unit([job], grant=grant, stall=0.0, seed=66)
        assert job.data == job.expected
        assert totals["reads"] == 3 * 16 * 48 // m                      # one read per plane and MCU pixel row
        assert job.record["samples"] == 16 * 48
        assert enc_samples < job.record["cycles"] <= enc_samples + m * m + 250, (grant, job.record)
        if grant == 1.0:
            assert job.record["stall_in"] <= 8, job.record


def test_colour_parameters_checked():
    with pytest.raises(ValueError, match="colour must be True or False, got 1"):
        EncodeUnit(12, colour=1)
    with pytest.raises(ValueError, match="at least 16 words, got 8"):
        EncodeUnit(12, 8, colour=True)
    assert len(EncodeUnit(12, colour=True).tbl_addr) == 11 and len(EncodeUnit(12).tbl_addr) == 10
    assert "sampling" not in dict(params_layout) and len(EncodeUnit(12, colour=True).params.sampling) == 2
