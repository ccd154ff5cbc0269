"""The payload of a FRAME: the split feature coded as the engine's encode unit codes it, and its decoding.

Hidden features (int16, kind ``feature``); an N-vector (an FC or global-pool output) is first laid out as
``ceil(N / 64)`` 8 x 8 channels (:func:`model.accuracy.to_maps`, as the cost model counts the encoder's samples):

* ``jpeg``: :func:`sim.encoding.plan_encoding` -- the ``golden.featpack`` mosaic with the encode unit's
  power-of-two code scale, standard tables at the QF. Payload = the side information
  (:class:`golden.featpack.SideInfo`, 19 bytes, CRC-32 included) + the entropy-coded scan, byte for byte what
  the RTL writes (``LayerEncoding.expected``). The host rebuilds the JFIF header from the side information
  (shape, QF, standard tables): the ``scan`` container of the accuracy study, what a bare radio link sends.
* ``lossless``: the ESLL container (``golden.lossless``, default table, signed iff the map has a negative
  value): the RTL's payload wrapped by the host (:func:`golden.lossless.wrap`: header + payload + CRC-32), or
  the raw container (header + the int16 samples + CRC-32) when the coded one would be longer.
* ``none``: the int16 values, little-endian, C order.

The camera image (kind ``image``, the ``input`` split: uint8, sent C x H x W):

* ``jpeg``: colour 4:4:4 (grayscale for one channel) baseline JPEG of ``golden.jpeg``; payload = a 15-byte
  image record (``>BBBHHHH``: version 1, flags bit 0 colour, QF, C, H, W, 0; then its CRC-32) + the scan.
* ``lossless``: the ESLL container of the uint8 C x H x W map; ``none``: the bytes.

:func:`encode_feature` (golden) and :func:`payload_from_rtl` (the RTL's coded bytes) give the same payload
for the same map; :func:`decode` is the host's side. Every decode error is a one-line ``UserError``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from golden import entropy, featpack, jpeg, lossless
from golden.errors import UserError

VECTOR_BLOCK = 64
IMAGE_RECORD = struct.Struct(">BBBHHHH")
IMAGE_RECORD_VERSION = 1


@dataclass(frozen=True)
class Encoded:
    """One coded feature: the payload and what the engine's encode unit saw."""

    payload: bytes
    codec: str
    qf: int
    coded: bytes          # the bytes the encode unit writes (jpeg: the scan; lossless: the ESLL payload, even
                          # when the host sends the raw container instead)
    samples: int          # samples through the encoder


def as_map(values: np.ndarray, pad: str) -> np.ndarray:
    """A feature as the encoder's C x H x W map (a vector as ``ceil(N/64)`` 8 x 8 channels)."""
    v = np.asarray(values)
    if v.ndim == 3:
        return v
    if v.ndim != 1:
        raise UserError(f"a feature of shape {v.shape} is neither a C x H x W map nor a vector")
    n = v.shape[0]
    nb = -(-n // VECTOR_BLOCK)
    out = np.empty(nb * VECTOR_BLOCK, dtype=v.dtype)
    out[:n] = v
    out[n:] = 0 if pad == "zero" else v[n - 1]
    return out.reshape(nb, 8, 8)


def side_info(plan) -> featpack.SideInfo:
    """The side information of a JPEG ``sim.encoding.LayerEncoding`` (as ``plan_encoding`` builds it)."""
    return featpack.SideInfo(shape=plan.shape, mode="layer", optimal_tables=False, dtype=np.dtype(np.int16),
                             qf=plan.qf, grid_cols=plan.grid_cols,
                             offsets=np.array([-128.0 * 2 ** plan.shift if plan.offset else 0.0], dtype=np.float16),
                             scales=np.array([2.0 ** plan.shift], dtype=np.float16))


def plan(values: np.ndarray, codec: str, qf: int, name: str = "feature"):
    """The encode unit's plan (``sim.encoding.plan_encoding``) of a feature, for ``jpeg`` / ``lossless``."""
    from sim.encoding import EncodeSpec, plan_encoding

    m = as_map(np.asarray(values, dtype=np.int16), "edge" if codec == "jpeg" else "zero")
    return plan_encoding(name, m, EncodeSpec(codec, qf if codec == "jpeg" else 75))


def payload_from_rtl(p, coded: bytes, values_map: np.ndarray) -> bytes:
    """The FRAME payload around the encode unit's coded bytes ``coded`` for plan ``p`` of the int16 feature
    ``values_map`` (C x H x W, or a vector, laid out by :func:`as_map` as :func:`plan` does; the lossless
    container's header names its shape and sign mode, and it is the raw container when that is shorter)."""
    if p.mode == "jpeg":
        return side_info(p).to_bytes() + bytes(coded)
    m = as_map(np.asarray(values_map, dtype=np.int16), "zero")
    return lossless.wrap(m, coded, lossless.DEFAULT_TABLE, p.signed)


def encode_feature(values: np.ndarray, codec: str, qf: int = 0) -> Encoded:
    """A hidden int16 feature coded as the engine's encode unit codes it (module docstring)."""
    x = np.asarray(values)
    if x.dtype != np.int16:
        raise UserError(f"features are int16, got {x.dtype}")
    if codec == "none":
        return Encoded(x.astype("<i2").tobytes(), "none", 0, b"", 0)
    if codec == "jpeg":
        p = plan(x, "jpeg", qf)
        return Encoded(side_info(p).to_bytes() + p.expected, "jpeg", qf, p.expected, _samples(p.shape, p.grid_cols))
    if codec == "lossless":
        from hw.jpeg.host import lossless_job

        m = as_map(x, "zero")
        signed = bool(m.min() < 0)
        job = lossless_job(m, "default", signed)
        return Encoded(lossless.wrap(m, job.expected, lossless.DEFAULT_TABLE, signed), "lossless", 0, job.expected,
                       len(job.samples))
    raise UserError(f"unknown codec {codec!r}; allowed: none, lossless, jpeg")


def _samples(shape: tuple[int, int, int], cols: int) -> int:
    c, h, w = shape
    return -(-c // cols) * cols * (-(-h // 8) * 8) * (-(-w // 8) * 8)


def encode_image(image: np.ndarray, codec: str, qf: int = 0) -> Encoded:
    """The camera image (uint8 ``[H, W, C]``) coded for the ``input`` split (module docstring)."""
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    h, w, c = img.shape
    chw = np.ascontiguousarray(img.transpose(2, 0, 1))
    if codec == "none":
        return Encoded(chw.tobytes(), "none", 0, b"", 0)
    if codec == "lossless":
        data = lossless.encode(chw, "default")
        return Encoded(data, "lossless", 0, data, c * (-(-h // 8) * 8) * (-(-w // 8) * 8))
    if codec == "jpeg":
        enc = jpeg.encode(img[:, :, 0] if c == 1 else img, qf, "444")
        rec = IMAGE_RECORD.pack(IMAGE_RECORD_VERSION, 1 if c == 3 else 0, qf, c, h, w, 0)
        rec += struct.pack(">I", zlib.crc32(rec) & 0xFFFFFFFF)
        return Encoded(rec + enc.scan.data, "jpeg", qf, enc.scan.data, c * (-(-h // 8) * 8) * (-(-w // 8) * 8))
    raise UserError(f"unknown codec {codec!r}; allowed: none, lossless, jpeg")


class JpegTrial:
    """One feature (or camera image) at many QFs, decoded as the host decodes it, without entropy coding: the
    encode unit's mosaic and its DCT once, then per QF the quantized coefficients through the decoder's
    dequantisation and float IDCT (:func:`golden.jpeg.reconstruct`, which :func:`golden.jpeg.decode_jpeg` equals).
    For the QF check (:mod:`model.runtime.qfcheck`)."""

    def __init__(self, values: np.ndarray, image: bool = False) -> None:
        from sim.encoding import jpeg_codes, jpeg_shift

        self.image = image
        v = np.asarray(values)
        self.shape = v.shape
        if image:
            self.dct = jpeg.forward_dct(v[:, :, 0] if v.shape[2] == 1 else v, "444")
            self.side = None
            return
        m = as_map(v.astype(np.int16), "edge")
        shift, offset = jpeg_shift(m)
        cols = featpack.grid_columns(m.shape[0])
        self.dct = jpeg.forward_dct(featpack.tile_mosaic(jpeg_codes(m, shift, offset), cols))
        self.side = featpack.SideInfo(shape=m.shape, mode="layer", optimal_tables=False, dtype=np.dtype(np.int16),
                                      qf=75, grid_cols=cols,
                                      offsets=np.array([-128.0 * 2 ** shift if offset else 0.0], dtype=np.float16),
                                      scales=np.array([2.0 ** shift], dtype=np.float16))

    def decoded(self, qf: int) -> tuple[np.ndarray, float]:
        """(what the host decodes at ``qf``, the scan's bits / 8)."""
        q = jpeg.quantize_image(self.dct, qf)
        pix = jpeg.reconstruct(q)
        nbytes = jpeg.scan_bits(q) / 8
        if self.image:
            return pix.reshape(self.shape), nbytes
        assert self.side is not None
        return _from_map(featpack.unpack(pix, self.side), self.shape), nbytes


# ---- the host's side ------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def jfif_header(height: int, width: int, qf: int, colour: bool) -> bytes:
    """The JFIF header the encoder would write before the scan: standard (Annex K) tables at ``qf``."""
    luma, chroma = jpeg.quant_tables(qf)
    if colour:
        return jpeg.jfif_header(height, width, ((1, 1),) * 3, (luma, chroma),
                                [entropy.STD_DC_LUMINANCE, entropy.STD_DC_CHROMINANCE],
                                [entropy.STD_AC_LUMINANCE, entropy.STD_AC_CHROMINANCE])
    return jpeg.jfif_header(height, width, ((1, 1),), (luma,), [entropy.STD_DC_LUMINANCE],
                            [entropy.STD_AC_LUMINANCE])


DECODERS = ("fast", "golden")


def _jpeg_pixels(jfif: bytes, decoder: str) -> np.ndarray:
    """A JFIF file's pixels: ``golden`` (:func:`golden.jpeg.decode_jpeg`, the reference, pure Python) or ``fast``
    (libjpeg through Pillow, as a production host decodes: its integer IDCT differs from the golden float IDCT by
    at most a code step or two in a few pixels)."""
    if decoder == "fast":
        try:
            import io

            from PIL import Image, UnidentifiedImageError
        except ImportError:  # pragma: no cover - Pillow is a dependency
            return jpeg.decode_jpeg(jfif)
        try:
            with Image.open(io.BytesIO(jfif)) as im:
                return np.asarray(im)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
            raise UserError(f"the JPEG scan does not decode: {' '.join(str(e).split())}") from None
    return jpeg.decode_jpeg(jfif)


def decode(codec: str, kind: str, qf: int, shape: tuple[int, ...], payload: bytes,
           decoder: str = "golden") -> np.ndarray:
    """The host's decoding of a payload: an int16 feature of ``shape`` (kind ``feature``) or a uint8
    ``[H, W, C]`` image (kind ``image``, ``shape`` = C, H, W). ``decoder``: the JPEG decoder (:data:`DECODERS`,
    :func:`_jpeg_pixels`). UserError (one line) when the payload does not decode to exactly that."""
    if decoder not in DECODERS:
        raise UserError(f"unknown JPEG decoder {decoder!r}; allowed: {', '.join(DECODERS)}")
    shape = tuple(int(s) for s in shape)
    payload = bytes(payload)
    if kind == "image":
        return _decode_image(codec, qf, shape, payload, decoder)
    n = int(np.prod(shape))
    if codec == "none":
        if len(payload) != 2 * n:
            raise UserError(f"raw int16 payload is {len(payload)} bytes; shape {shape} needs {2 * n}")
        return np.frombuffer(payload, dtype="<i2").astype(np.int16).reshape(shape)
    if codec == "lossless":
        m = lossless.decode(payload, max_values=max(n, 64) + 64 * 64)
    elif codec == "jpeg":
        m = _decode_feature_jpeg(payload, qf, decoder)
    else:
        raise UserError(f"unknown codec {codec!r}")
    return _from_map(m, shape)


def _from_map(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if m.dtype != np.int16:
        raise UserError(f"decoded feature is {m.dtype}, not int16")
    if len(shape) == 3:
        if m.shape != shape:
            raise UserError(f"decoded feature has shape {m.shape}, the frame says {shape}")
        return m
    n = int(np.prod(shape))
    if m.ndim != 3 or m.shape[1:] != (8, 8) or m.shape[0] != -(-n // VECTOR_BLOCK):
        raise UserError(f"decoded feature has shape {m.shape}, not the 8x8 blocks of a {shape} vector")
    return m.reshape(-1)[:n].reshape(shape)


def _side_length(payload: bytes) -> int:
    if len(payload) < featpack.SIDE_INFO_FIXED_BYTES:
        raise UserError(f"JPEG payload of {len(payload)} bytes is shorter than its side information")
    flags = payload[1]
    c = struct.unpack(">H", payload[3:5])[0]
    n = c if flags & featpack.FLAG_PER_CHANNEL else 1
    return featpack.SIDE_INFO_FIXED_BYTES + featpack.PAIR_BYTES * n + featpack.CRC_BYTES


def _decode_feature_jpeg(payload: bytes, qf: int, decoder: str = "golden") -> np.ndarray:
    k = _side_length(payload)
    side = featpack.SideInfo.from_bytes(payload[:k])
    if side.qf != qf:
        raise UserError(f"side information says QF {side.qf}, the frame says {qf}")
    h, w = side.mosaic_shape
    jfif = jfif_header(h, w, side.qf, False) + payload[k:] + jpeg.EOI
    if decoder == "golden":
        return featpack.decode_jpeg(payload[:k], jfif)
    mosaic = _jpeg_pixels(jfif, decoder)
    if mosaic.shape != side.mosaic_shape:
        raise UserError(f"the JPEG decodes to {mosaic.shape}, not the {side.mosaic_shape} mosaic of the side "
                        "information")
    return featpack.unpack(mosaic, side)


def _decode_image(codec: str, qf: int, shape: tuple[int, ...], payload: bytes, decoder: str = "golden"
                  ) -> np.ndarray:
    if len(shape) != 3:
        raise UserError(f"an image frame needs shape C,H,W, got {shape}")
    c, h, w = shape
    if codec == "none":
        if len(payload) != c * h * w:
            raise UserError(f"raw image payload is {len(payload)} bytes; {c}x{h}x{w} needs {c * h * w}")
        chw = np.frombuffer(payload, dtype=np.uint8).reshape(c, h, w)
    elif codec == "lossless":
        chw = lossless.decode(payload, max_values=c * h * w)
        if chw.dtype != np.uint8 or chw.shape != (c, h, w):
            raise UserError(f"decoded image is {chw.dtype} {chw.shape}, the frame says uint8 {shape}")
    elif codec == "jpeg":
        n = IMAGE_RECORD.size
        if len(payload) < n + 4:
            raise UserError(f"JPEG image payload of {len(payload)} bytes is shorter than its {n + 4}-byte record")
        rec = payload[:n]
        if struct.unpack(">I", payload[n:n + 4])[0] != zlib.crc32(rec) & 0xFFFFFFFF:
            raise UserError("JPEG image record is damaged (CRC-32)")
        version, flags, q, rc, rh, rw, _ = IMAGE_RECORD.unpack(rec)
        if version != IMAGE_RECORD_VERSION or (rc, rh, rw) != (c, h, w) or q != qf or flags != (1 if c == 3 else 0):
            raise UserError(f"JPEG image record (version {version}, QF {q}, {rc}x{rh}x{rw}) does not match the "
                            f"frame (QF {qf}, {c}x{h}x{w})")
        pix = _jpeg_pixels(jfif_header(h, w, qf, c == 3) + payload[n + 4:] + jpeg.EOI, decoder)
        if pix.size != h * w * c:
            raise UserError(f"the JPEG image decodes to {pix.shape}, the frame says {c}x{h}x{w}")
        pix = pix.reshape(h, w, -1)
        if pix.shape[2] != c:
            raise UserError(f"decoded image has {pix.shape[2]} channels, the frame says {c}")
        return pix
    else:
        raise UserError(f"unknown codec {codec!r}")
    return np.ascontiguousarray(chw.transpose(1, 2, 0))


__all__ = ["DECODERS", "Encoded", "JpegTrial", "as_map", "decode", "encode_feature", "encode_image", "jfif_header",
           "payload_from_rtl", "plan", "side_info"]
