"""The host side of the RTL encoder (pure Python, no hardware): what a driver computes and sends.

* the table image: the writes to the encoder's table port for a JPEG quality factor or a lossless
  Huffman table (``tbl_addr``, ``tbl_data`` pairs, see :mod:`hw.jpeg.encoder`);
* the sample stream: the image or feature map padded and cut into blocks exactly as the golden models
  do (JPEG: edge replication to multiples of 8; lossless: zero padding), in their block order; colour
  images (for the colour build of the encoder, ``Encoder(colour=True)``): by default the RGB pixels padded
  to whole MCUs in MCU order (``golden.jpeg.mcu_pixels``, :func:`rgb_pixels`) and the encoder's colour stage
  converts and subsamples them; or (``rgb=False``) golden's integer RGB -> YCbCr conversion
  (``golden.jpeg.rgb_to_ycbcr``), 4:2:0 chroma averaging (``downsample_2x2``), edge padding to whole MCUs and
  the interleaved MCU block order (``mcu_order``) done here, on the host, and the YCbCr blocks sent;
* the expected bytes (golden's scan or payload) and the container around them (JFIF header + EOI, or
  the ESLL header and its CRC-32 trailer), so the RTL's bytes become a complete file; for a lossless map
  whose coded container would be longer than its samples, the raw container instead (``golden.lossless``
  raw mode: the RTL still codes the map, the host sends the samples).

The RTL produces the coded bytes only; the ESLL container's CRC-32 is computed here, on the host, over the
header and the RTL's payload (:meth:`EncodeJob.wrap`), so the RTL and the golden payload stay byte-identical
and the checksum covers exactly the bytes that go on the link.

An :class:`EncodeJob` bundles all of it; the testbench (``sim.tb_encoder``) and the CLI
(``model.cli_codec``) both use it, so they feed the RTL identically.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden import entropy, files, jpeg, lossless
from golden.errors import UserError

from .encoder import CHROMA_BASE, QUANT_BASE, SAMPLING_MODES
from .entropy import jpeg_table_image, lossless_table_image

__all__ = ["EncodeJob", "jpeg_job", "lossless_job", "jpeg_table_writes", "lossless_table_writes",
           "jpeg_samples", "rgb_pixels", "lossless_samples"]


def _huffman_writes(image: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(addr, (length << 16) | code) for addr, (code, length) in enumerate(image)]


def jpeg_table_writes(qtable: np.ndarray, dc: entropy.HuffmanTable = entropy.STD_DC_LUMINANCE,
                      ac: entropy.HuffmanTable = entropy.STD_AC_LUMINANCE, base: int = 0) -> np.ndarray:
    """Table-port writes ``[n, 2]`` (address, data) for JPEG mode: Huffman RAM + quantizer reciprocals of one
    table set (``base`` 0: luminance / the only set; ``CHROMA_BASE``: the colour build's chrominance set)."""
    writes = _huffman_writes(jpeg_table_image(dc, ac))
    writes += [(QUANT_BASE + i, int(r)) for i, r in enumerate(jpeg.reciprocal(qtable).reshape(64))]
    return np.array([(base + a, d) for a, d in writes], dtype=np.int64)


def lossless_table_writes(table: entropy.HuffmanTable = lossless.DEFAULT_TABLE) -> np.ndarray:
    """Table-port writes ``[512, 2]`` for lossless mode (the 9-bit symbol alphabet)."""
    return np.array(_huffman_writes(lossless_table_image(table)), dtype=np.int64)


def jpeg_samples(image: np.ndarray, subsampling: str | None = None) -> np.ndarray:
    """A uint8 image -> the RTL's sample stream (uint16 ``[blocks * 64]``), samples in raster order inside
    each block (``golden.jpeg.blockify``).

    Grayscale ``[H, W]``: padded by edge replication to multiples of 8 (``golden.jpeg.pad_plane``), blocks in
    raster order. Colour ``[H, W, 3]`` (RGB; ``subsampling`` "444" or "420", golden's default "444" when
    None): golden's YCbCr planes (``golden.jpeg.component_planes``: integer JFIF conversion, padding to whole
    MCUs, 2x2 chroma averaging) in interleaved MCU order (``golden.jpeg.mcu_order``)."""
    image = jpeg.check_image(image)
    if image.ndim == 2:
        if subsampling is not None:
            raise UserError(f"chroma subsampling {subsampling!r} needs a colour image, got shape {image.shape}")
        planes, _, _, _ = jpeg.component_planes(image)
        return jpeg.blockify(planes[0]).reshape(-1).astype(np.uint16)
    planes, sampling, my, mx = jpeg.component_planes(image, "444" if subsampling is None else subsampling)
    blocks, _ = jpeg.mcu_order([jpeg.blockify(p) for p in planes], sampling, my, mx)
    return blocks.reshape(-1).astype(np.uint16)


def rgb_pixels(image: np.ndarray, subsampling: str = "444") -> np.ndarray:
    """An RGB uint8 image -> the colour build's ``rgb`` input stream (uint32 ``R | G << 8 | B << 16``): the
    pixels padded to whole MCUs in MCU order (``golden.jpeg.mcu_pixels``)."""
    px = jpeg.mcu_pixels(image, subsampling).astype(np.uint32)
    return px[:, 0] | (px[:, 1] << 8) | (px[:, 2] << 16)


def lossless_samples(values: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` integers -> the RTL's 16-bit sample stream (two's complement for negative values),
    zero-padded blocks in ``golden.lossless.to_blocks`` order."""
    return (lossless.to_blocks(np.asarray(values, dtype=np.int64)).reshape(-1) & 0xFFFF).astype(np.uint16)


@dataclass(frozen=True)
class EncodeJob:
    """One image for the RTL encoder and what it must produce.

    ``samples``: uint16 stream (a multiple of 64; ``last`` goes on the final one); ``tables``: ``[n, 2]``
    table-port writes; ``expected``: golden's entropy-coded bytes; ``bits``: golden's bit count before
    padding; ``header``/``trailer``: the container around the coded bytes (see :meth:`wrap`; lossless: the
    trailer is golden's CRC-32, and ``len(header) + len(trailer)`` is the coded container's overhead);
    ``raw``: lossless only, the raw container of the map, which :meth:`wrap` sends when it is shorter;
    ``sampling``: the colour build's ``sampling`` input (``hw.jpeg.encoder.SAMPLING_MODES``; 0 = one
    component, all the one-component encoder can take); ``rgb``: the colour build's ``rgb`` input, the
    samples are RGB pixels (:func:`rgb_pixels`) for the on-chip colour stage.
    """

    lossless: bool
    signed: bool
    samples: np.ndarray
    tables: np.ndarray
    expected: bytes
    bits: int
    header: bytes
    trailer: bytes = b""
    raw: bytes = b""
    sampling: int = 0
    rgb: bool = False

    @property
    def blocks(self) -> int:
        """8x8 blocks the encoder codes (with ``rgb``: 3 per 64 pixels at 4:4:4, 6 per 256 at 4:2:0)."""
        if self.rgb:
            per_pixel = 3 / 64 if self.sampling == SAMPLING_MODES["444"] else 6 / 256
            return round(len(self.samples) * per_pixel)
        return len(self.samples) // 64

    def wrap(self, coded: bytes) -> bytes:
        """A complete file around ``coded`` (the RTL's bytes): JFIF header + scan + EOI, or the ESLL
        container with the payload length of ``coded`` and the CRC-32 of its header and ``coded``, computed
        here (the host side), not by the RTL -- or the raw container when that one is shorter
        (``golden.lossless.choose``), as ``golden.lossless.encode`` does."""
        header = self.header
        if self.lossless:
            header = header[:14] + struct.pack(">I", len(coded)) + header[18:]
            return lossless.choose(lossless.seal(header + bytes(coded)), self.raw)
        return header + bytes(coded) + self.trailer

    def save(self, path) -> None:
        """Write the job as ``.npz`` (what the testbench's ``job`` test reads; ``.npz`` is appended if missing,
        as numpy does), atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        with files.atomic_path(path, "encoder job") as tmp:
            np.savez(tmp, lossless=self.lossless, signed=self.signed, samples=self.samples, tables=self.tables,
                     expected=np.frombuffer(self.expected, dtype=np.uint8), bits=self.bits,
                     sampling=self.sampling, rgb=self.rgb)


def jpeg_job(image: np.ndarray, qf: int, subsampling: str | None = None, rgb: bool = True) -> EncodeJob:
    """An image at quality ``qf`` with the standard (Annex K) tables: grayscale (luminance tables; any
    encoder build), or colour RGB ``[H, W, 3]`` at ``subsampling`` "444" (golden's default, used when None)
    or "420" (luminance and chrominance tables; the colour build, ``Encoder(colour=True)``), sent as RGB
    pixels for the on-chip colour stage (``rgb``, default) or as host-converted YCbCr blocks."""
    qf = jpeg.check_qf(qf)
    image = jpeg.check_image(image)
    if subsampling is not None:
        jpeg.check_subsampling(subsampling)
    if image.ndim == 2 or not rgb:
        samples = jpeg_samples(image, subsampling)
    else:
        samples = rgb_pixels(image, "444" if subsampling is None else subsampling)
    if image.ndim == 2:
        enc = jpeg.encode(image, qf)
        tables = jpeg_table_writes(enc.quantized.qtables[0])
        mode = SAMPLING_MODES["gray"]
    else:
        sub = "444" if subsampling is None else subsampling
        enc = jpeg.encode(image, qf, sub)
        luma, chroma = enc.quantized.qtables
        tables = np.concatenate([
            jpeg_table_writes(luma, enc.scan.dc_tables[0], enc.scan.ac_tables[0]),
            jpeg_table_writes(chroma, enc.scan.dc_tables[1], enc.scan.ac_tables[1], base=CHROMA_BASE)])
        mode = SAMPLING_MODES[sub]
    return EncodeJob(lossless=False, signed=True, samples=samples, tables=tables, expected=enc.scan.data,
                     bits=enc.scan.bits, header=enc.header, trailer=jpeg.EOI, sampling=mode,
                     rgb=bool(rgb and image.ndim == 3))


def lossless_job(values: np.ndarray, table: entropy.HuffmanTable | str = "default",
                 signed: bool | None = None) -> EncodeJob:
    """An integer map (``[C, H, W]`` or ``[H, W]``) in the lossless container; ``table`` as in
    ``golden.lossless.encode`` ("default", "optimal", "auto" or a table)."""
    feats = lossless.check_features(values, signed)
    table = lossless.chosen_table(values, table, signed)     # "auto" as golden decides it (coded sizes)
    data = lossless.encode(values, table, signed, mode="coded")
    blocks = lossless.to_blocks(feats.values)
    payload, bits = lossless.encode_payload(blocks, table, feats.signed)
    header = data[: len(data) - len(payload) - lossless.CRC_BYTES]
    return EncodeJob(lossless=True, signed=feats.signed, samples=lossless_samples(feats.values),
                     tables=lossless_table_writes(table), expected=payload, bits=bits, header=header,
                     trailer=data[len(data) - lossless.CRC_BYTES:],
                     raw=lossless.encode(values, table, signed, mode="raw"))
