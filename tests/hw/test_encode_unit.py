"""The engine's encode unit (``hw.encode_unit``) inside the engine, in Amaranth's simulator: a layer's
output streams from the feature buffer through the encoder into DRAM while the next layer computes,
and the bytes equal the golden codecs' byte for byte (``sim.encoding`` computes them with
``golden.featpack`` / ``golden.jpeg`` / ``golden.lossless``). The Verilator runs are in
``tests/hw/test_engine_cocotb.py`` and ``make sim ENCODE=...``."""

import numpy as np
import pytest

from golden.errors import UserError
from hw.encode_unit import RECORD_WORDS, EncodeUnit
from sim.amaranth_engine import run_engine_amaranth
from sim.encoding import EncodeSpec, jpeg_codes, jpeg_shift, parts, plan_encoding, read_encoding
from sim.program import ConvLayer, EngineConfig, PoolLayer, compile_program, reference_outputs


def ref_encode(layers, x, spec):
    """Golden: every layer's output, and each one's encoding (settings + expected bytes)."""
    refs = reference_outputs(layers, x)
    return refs, {n: plan_encoding(n, v, spec) for n, v in refs.items()}


def rtl_encode(layers, x, plans, config, **kw):
    prog = compile_program(layers, x, config, encode=plans)
    dram, snaps = run_engine_amaranth(prog, config, **kw)
    outs = {n: prog.read_output(dram, n) for n in prog.layer_names}
    return outs, {n: read_encoding(dram, p) for n, p in plans.items()}, snaps, prog


def conv(rng, name, cin, cout, k, relu, pad=1, big=False):
    lim = 32767 if big else 400
    w = rng.integers(-lim, lim + 1, size=(cout, cin, k, k)).astype(np.int16)
    shift = 15 if big else 9
    return ConvLayer(name, w, rng.integers(-3000, 3000, size=cout), shift, relu=relu, pad=pad)


CASES = {
    # name: (input shape, layers builder, feature-buffer words)
    "relu_resident": ((3, 13, 11), lambda r: [conv(r, "c1", 3, 5, 3, True), PoolLayer("p1", 2, 2)], 4096),
    "signed_parts": ((2, 17, 9), lambda r: [conv(r, "c1", 2, 7, 3, False), PoolLayer("p1", 3, 2)], 512),
    "saturating": ((4, 8, 8), lambda r: [conv(r, "c1", 4, 3, 3, False, big=True)], 4096),
    "one_row_parts": ((1, 22, 26), lambda r: [conv(r, "c1", 1, 3, 3, True)], 512),
}


@pytest.mark.parametrize("mode", ["jpeg", "lossless"])
@pytest.mark.parametrize("case", list(CASES))
def test_encode_bytes_equal_golden(case, mode):
    rng = np.random.default_rng(abs(hash((case, mode))) % 2**32)
    shape, build, fbw = CASES[case]
    x = rng.integers(-4000, 4000, size=shape).astype(np.int16)
    layers = build(rng)
    spec = EncodeSpec(mode, qf=int(rng.choice([10, 50, 90])))
    refs, plans = ref_encode(layers, x, spec)
    config = EngineConfig(fb_words=fbw, wb_depth=256)
    outs, got, snaps, prog = rtl_encode(layers, x, plans, config, latency=int(rng.integers(1, 9)),
                                        jitter=int(rng.integers(0, 5)), gap_prob=0.2, seed=int(rng.integers(99)))
    for n in refs:
        assert np.array_equal(outs[n], refs[n]), f"layer {n} output"
        g, p = got[n], plans[n]
        assert g["data"] == p.expected, f"layer {n}: coded bytes differ ({len(g['data'])} vs {len(p.expected)})"
        assert g["bytes"] == len(p.expected) and g["bits"] == p.bits
        c, h, w = p.shape
        th, tw = -(-h // 8) * 8, -(-w // 8) * 8
        rows = -(-c // p.grid_cols)
        assert g["samples"] == rows * p.grid_cols * th * tw
        assert g["cycles"] >= g["samples"]
    last = snaps[-1]
    assert last["enc_samples"] == sum(g["samples"] for g in got.values())
    assert last["enc_bits"] == sum(p.bits for p in plans.values())
    assert last["enc_out_words"] == sum(RECORD_WORDS + -(-g["bytes"] // 2) for g in got.values())
    assert last["enc_fb_read_words"] > 0 and last["enc_active"] > 0
    if case.endswith("parts"):
        from hw.descriptor import Op
        assert sum(c.op == Op.ENCODE for c in prog.commands) > len(layers)   # maps went in several parts
        assert any(c.enc_sync for c in prog.commands)


def test_encoding_overlaps_next_layer():
    """Stage 2 runs beside stage 1: the first layer's encoding proceeds while the second computes."""
    rng = np.random.default_rng(5)
    x = rng.integers(-4000, 4000, size=(3, 12, 12)).astype(np.int16)
    layers = [conv(rng, "c1", 3, 4, 3, True), conv(rng, "c2", 4, 48, 3, True)]   # c2 outlasts c1's encoding
    refs, plans = ref_encode(layers, x, EncodeSpec("jpeg", 50))
    plans = {"c1": plans["c1"]}
    config = EngineConfig(fb_words=8192, wb_depth=256)   # both maps stay resident: no wait for the unit
    outs, got, snaps, _ = rtl_encode(layers, x, plans, config)
    assert got["c1"]["data"] == plans["c1"].expected
    assert snaps[-1]["enc_overlap"] > 0.5 * got["c1"]["samples"]
    assert snaps[-1]["enc_wait"] == 0   # nothing waited for the unit
    assert np.array_equal(outs["c2"], refs["c2"])


def test_jpeg_codes_match_featpack_scaling():
    rng = np.random.default_rng(0)
    for lo, hi in [(0, 255), (0, 256), (-128, 127), (-32768, 32767), (0, 32767), (-5, 3), (0, 0)]:
        x = rng.integers(lo, hi + 1, size=(2, 5, 7)).astype(np.int16)
        x.flat[0], x.flat[1] = lo, hi
        s, off = jpeg_shift(x)
        codes = jpeg_codes(x, s, off).astype(np.int64)
        r = (1 << (s - 1)) if s else 0
        hw = np.clip(((x.astype(np.int64) + r) >> s) + 128 * off, 0, 255)
        assert np.array_equal(codes, hw), (lo, hi)
        assert codes.max() <= 255 and codes.min() >= 0
        if s > 0 and lo > -32768 and hi < 32767:  # the smallest shift that fits
            r1 = 1 << (s - 2) if s > 1 else 0
            fits = ((hi + r1) >> (s - 1)) + 128 * off <= 255 and ((lo + r1) >> (s - 1)) + 128 * off >= 0
            assert not fits


@pytest.mark.parametrize("shape,cols,words", [((5, 13, 11), 3, 10_000), ((5, 13, 11), 3, 3 * 13 * 11),
                                              ((5, 13, 11), 3, 3 * 8 * 11), ((64, 55, 55), 8, 2**18 // 4),
                                              ((1, 30, 40), 1, 700)])
def test_parts_cover_the_mosaic_once(shape, cols, words):
    c, h, w = shape
    th8 = -(-h // 8)
    seen = []
    for p in parts(shape, cols, words):
        assert (p.c1 - p.c0) * (p.y1 - p.y0) * w <= words
        for tr in range(p.tr0, p.tr0 + p.tile_rows):
            for yb in range(p.yb0, p.yb0 + p.ybn):
                seen.append((tr, yb))
    rows = -(-c // cols)
    assert seen == [(tr, yb) for tr in range(rows) for yb in range(th8)]


def test_bad_input_is_one_line():
    with pytest.raises(UserError, match="encoding 'png' is not one of jpeg, lossless"):
        EncodeSpec("png")
    with pytest.raises(UserError, match="101"):
        EncodeSpec("jpeg", 101)
    with pytest.raises(ValueError, match="fb_addr_bits must be in 8..24, got 4"):
        EncodeUnit(4)
    with pytest.raises(UserError, match="int16"):
        plan_encoding("x", np.zeros((2, 3, 3), np.float32), EncodeSpec("lossless"))
    with pytest.raises(UserError, match="does not fit the buffer"):
        parts((64, 100, 100), 8, 1000)


def test_make_sim_rejects_bad_encoding(capsys):
    from sim.run import main

    assert main(["--net", "digits", "--encode", "gif"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["make sim: error: encoding 'gif' is not one of jpeg, lossless"]
    assert main(["--net", "digits", "--encode", "jpeg", "--qf", "0"]) == 2
    assert "0" in capsys.readouterr().err
    assert main(["--net", "digits", "--qf", "30"]) == 2
    assert "needs ENCODE=jpeg" in capsys.readouterr().err
