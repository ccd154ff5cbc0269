"""FRAME payloads (model.runtime.codec): the encode unit's bytes, and the host's decoding of them."""

import numpy as np
import pytest

from golden import featpack, jpeg, lossless
from golden.errors import UserError
from model.runtime import codec


def _relu_map(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 600, shape)
    x[x < 200] = 0
    return x.astype(np.int16)


@pytest.mark.parametrize("shape", [(16, 8, 8), (24, 5, 7), (64,), (10,)])
def test_lossless_and_raw_are_exact(shape):
    x = _relu_map(shape)
    x.flat[3] = -7   # a negative value: signed mode
    for c in ("none", "lossless"):
        e = codec.encode_feature(x, c)
        assert np.array_equal(codec.decode(c, "feature", 0, shape, e.payload), x)


@pytest.mark.parametrize("shape, raw", [((16, 8, 8), True), ((64,), True), ((10,), False)])
def test_lossless_payload_never_expands(shape, raw):
    """Dense features go as the raw container (the 10-vector's 54 zero pads code short: it stays coded); the host's
    wrapper around the encode unit's payload gives the same bytes."""
    x = np.random.default_rng(8).integers(-32768, 32768, shape).astype(np.int16)
    m = codec.as_map(x, "zero")
    e = codec.encode_feature(x, "lossless")
    assert e.payload == lossless.encode(m) and bool(e.payload[5] & lossless.FLAG_RAW) == raw
    assert len(e.payload) <= lossless.RAW_OVERHEAD_BYTES + m.nbytes
    p = codec.plan(x, "lossless", 0)
    assert e.coded == p.expected and codec.payload_from_rtl(p, p.expected, x) == e.payload
    assert np.array_equal(codec.decode("lossless", "feature", 0, shape, e.payload), x)


def test_jpeg_payload_is_the_encode_units_bytes():
    from sim.encoding import EncodeSpec, plan_encoding

    x = _relu_map((16, 12, 12), 1)
    e = codec.encode_feature(x, "jpeg", 40)
    plan = plan_encoding("f", x, EncodeSpec("jpeg", 40))
    side = codec.side_info(plan)
    assert e.payload == side.to_bytes() + plan.expected       # side information + the RTL's scan
    assert len(e.payload) == plan.transmitted_bytes - plan.container_bytes + side.nbytes
    got = codec.decode("jpeg", "feature", 40, x.shape, e.payload)
    # the host's decoding equals the golden decoder on the complete JFIF file
    mosaic_jfif = codec.jfif_header(*side.mosaic_shape, 40, False) + plan.expected + jpeg.EOI
    assert np.array_equal(got, featpack.decode_jpeg(side.to_bytes(), mosaic_jfif))
    assert got.shape == x.shape and got.dtype == np.int16


def test_rebuilt_headers_equal_the_encoders():
    rng = np.random.default_rng(2)
    for shape, colour in (((24, 40), False), ((32, 32, 3), True)):
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        assert codec.jfif_header(shape[0], shape[1], 67, colour) == jpeg.encode(img, 67).header


@pytest.mark.parametrize("c", ["none", "lossless", "jpeg"])
def test_images(c):
    img = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    e = codec.encode_image(img, c, 80 if c == "jpeg" else 0)
    got = codec.decode(c, "image", e.qf, (3, 32, 32), e.payload)
    if c == "jpeg":
        assert np.array_equal(got, jpeg.decode_jpeg(jpeg.encode_jpeg(img, 80)))
    else:
        assert np.array_equal(got, img)


def test_damaged_payloads_are_one_line_errors():
    x = _relu_map((8, 8, 8))
    jp = codec.encode_feature(x, "jpeg", 50).payload
    ll = codec.encode_feature(x, "lossless").payload
    cases = [("none", b"\x00" * 10, (8, 8, 8), "raw int16"), ("lossless", ll[:-3], (8, 8, 8), "truncated"),
             ("lossless", ll, (8, 8, 9), "shape"), ("jpeg", jp[:5], (8, 8, 8), "shorter"),
             ("jpeg", bytes([jp[0], jp[1] ^ 4]) + jp[2:], (8, 8, 8), "damaged|flags")]
    for c, payload, shape, words in cases:
        with pytest.raises(UserError, match=words) as e:
            codec.decode(c, "feature", 50 if c == "jpeg" else 0, shape, payload)
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="QF"):
        codec.decode("jpeg", "feature", 51, (8, 8, 8), jp)


@pytest.mark.parametrize("shape, image", [((16, 12, 12), False), ((64,), False), ((32, 32, 3), True)])
def test_jpeg_trial_equals_the_hosts_decoding(shape, image):
    rng = np.random.default_rng(4)
    v = rng.integers(0, 256, shape, dtype=np.uint8) if image else _relu_map(shape, 5)
    trial = codec.JpegTrial(v, image)
    for qf in (10, 60):
        e = codec.encode_image(v, "jpeg", qf) if image else codec.encode_feature(v, "jpeg", qf)
        sent = (shape[2], shape[0], shape[1]) if image else shape
        got = codec.decode("jpeg", "image" if image else "feature", qf, sent, e.payload)
        assert np.array_equal(trial.decoded(qf)[0], got)


@pytest.mark.parametrize("image", [False, True])
def test_fast_decoder_is_within_a_code_step_of_the_golden_one(image):
    rng = np.random.default_rng(6)
    v = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) if image else _relu_map((16, 12, 12), 7)
    e = codec.encode_image(v, "jpeg", 50) if image else codec.encode_feature(v, "jpeg", 50)
    shape = (3, 24, 24) if image else v.shape
    kind = "image" if image else "feature"
    golden = codec.decode("jpeg", kind, 50, shape, e.payload, "golden").astype(int)
    fast = codec.decode("jpeg", kind, 50, shape, e.payload, "fast").astype(int)
    step = 1 if image else 2 ** codec.plan(v, "jpeg", 50).shift
    assert np.abs(fast - golden).max() <= 3 * step
    assert np.mean(fast != golden) < 0.2
    with pytest.raises(UserError, match="decoder"):
        codec.decode("jpeg", kind, 50, shape, e.payload, "turbo")


def test_engine_run_counts_the_bytes_the_host_sends():
    """make sim ENCODE=lossless reports the container the host sends: raw for a dense map, coded for a sparse one."""
    from sim.encoding import EncodeSpec, plan_encoding

    rng = np.random.default_rng(5)
    dense = rng.integers(-32768, 32768, size=(4, 8, 8)).astype(np.int16)
    sparse = _relu_map((16, 12, 12), 1)
    for x in (dense, sparse):
        plan = plan_encoding("f", x, EncodeSpec("lossless", 0))
        assert plan.transmitted_bytes == len(lossless.encode(x)) == lossless.encoded_size(x)
    assert plan_encoding("d", dense, EncodeSpec("lossless", 0)).transmitted_bytes == \
        lossless.RAW_OVERHEAD_BYTES + dense.nbytes
