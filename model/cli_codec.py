"""``edgesplit encode`` and ``edgesplit decode``: the feature codecs on files, in software or on the RTL.

``edgesplit encode INPUT -o OUT [--qf Q | --lossless] [--subsampling 444|420] [--rtl]``

INPUT is an image (``.png``, ``.jpg``, ``.jpeg``) or a feature map (``.npy``, ``C x H x W``).

* lossy (default, ``--qf`` 1..100, default 75): OUT is a baseline JFIF ``.jpg`` any viewer opens.
  Grayscale images are one component; colour images are 3-component YCbCr, ``--subsampling`` 444 (default,
  golden's) or 420 (chroma averaged over 2x2, 16x16 MCUs); the option is for colour JPEGs only. A feature map is
  scaled to 8 bits and tiled into one grayscale mosaic (``golden.featpack``, layer scaling); the side
  information needed to undo the packing rides in an APP9 segment (``EDGESPLIT\\0`` + the side-info
  record of ``docs/bitstream.md``), which viewers ignore and ``edgesplit decode`` reads.
* ``--lossless``: OUT is an ESLL container (``.esll``, ``golden.lossless``, default table; the raw container,
  the samples themselves, when the coded one would be longer: lossless never expands beyond the 22-byte
  header and CRC-32). Images go in as 8-bit maps (``[H, W]``, or ``[3, H, W]`` for colour); feature maps must
  be integers (int8, uint8, int16, uint16, or wider with int16 values).
* ``--rtl``: the entropy-coded bytes come from the Verilator model of ``hw.jpeg.encoder.Encoder``
  (``sim.tb_encoder.run_job`` through ``sim.runner``) instead of the software reference: grayscale images,
  feature mosaics and integer maps on the one-component build (``jpeg_encoder``), colour images on the
  3-component build (``jpeg_encoder_colour``: the host pads the RGB image to whole MCUs and sends its pixels in
  MCU order, ``hw.jpeg.host.rgb_pixels``; the RTL converts them to YCbCr, subsamples 4:2:0 chroma, and codes each
  block with its component's tables and DC predictor). The RTL's bytes must
  equal the software reference's; otherwise nothing is written and the command fails (exit 1). With
  ``--lossless`` the host wraps the RTL's payload (``golden.lossless.wrap``): the coded container, or the raw
  one when the payload would make it longer, so the file equals the software reference's byte for byte.

Prints the size, the ratio to the raw size (8 bits per image sample, 16 bits per feature value) and with
``--rtl`` the encoder's cycle count.

``edgesplit decode INPUT -o OUT``: a ``.jpg``/``.jpeg`` to ``.png`` (or ``.npy``) pixels, or, if it carries
edgesplit side information, to the feature map (``.npy``); an ``.esll`` container to ``.npy`` (or ``.png``
for 8-bit maps of 1 or 3 channels).

Bad input (QF outside 1..100, a missing file, an unknown extension, a wrong array rank or dtype, an array
or image larger than :mod:`golden.limits` allows, read from its header before the data, a damaged file)
raises ``UserError`` (one line, exit 2). OUT is checked before any work: its folder must exist and be
writable, it must not be a folder, its extension must fit, and it must not be INPUT (refused: the input
always survives). Files are written to a temporary name and renamed, so OUT is either complete or untouched.

Integrity: an ``.esll`` container carries a CRC-32 (version 2, ``golden.lossless``), and so does the side
information of a feature JPEG (``golden.featpack``); both are checked, with every length and dimension,
before anything is allocated. Version 1 files (no checksum) are refused with a one-line error: re-encode
them. A JPEG whose APP9 segment looks like damaged edgesplit side information is refused rather than
decoded as a plain image.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden import featpack, files, jpeg, limits, lossless
from golden.errors import UserError

DEFAULT_QF = 75
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
FEATURE_EXTS = (".npy",)
JPEG_EXTS = (".jpg", ".jpeg")
LOSSLESS_EXTS = (".esll",)
SIDE_INFO_MARKER = 0xE9      # APP9
SIDE_INFO_ID = b"EDGESPLIT\x00"


# ---- parser -------------------------------------------------------------------------------------------


def register(subparsers) -> None:
    enc = subparsers.add_parser(
        "encode", help="compress an image or a feature map (JPEG or lossless), in software or on the RTL",
        description="Compress an image (.png/.jpg) or a feature map (.npy, C x H x W) to a JPEG (.jpg) or an "
                    "edgesplit lossless file (.esll).")
    enc.add_argument("input", help=f"image (.png, .jpg, .jpeg; at most {limits.MAX_IMAGE_PIXELS:,} pixels) or "
                                   f"feature map (.npy, C x H x W, at most {limits.MAX_ARRAY_VALUES:,} values)")
    enc.add_argument("-o", "--output", required=True, help="output file: .jpg (lossy) or .esll (--lossless); "
                                                           "not the input")
    mode = enc.add_mutually_exclusive_group()
    mode.add_argument("--qf", type=int, default=None, help=f"JPEG quality factor 1..100 (default {DEFAULT_QF})")
    mode.add_argument("--lossless", action="store_true", help="lossless zero-run-length + Huffman coding")
    enc.add_argument("--subsampling", default=None, metavar="444|420",
                     help=f"chroma subsampling of a colour JPEG: {' or '.join(jpeg.SUBSAMPLINGS)} (default "
                          f"{jpeg.SUBSAMPLINGS[0]}); colour images in JPEG mode only")
    enc.add_argument("--rtl", action="store_true",
                     help="encode on the Verilator model of the RTL encoder (same bytes, checked): images "
                          "(grayscale or colour) and feature maps")
    enc.set_defaults(func=cmd_encode)

    dec = subparsers.add_parser(
        "decode", help="decompress a .jpg or .esll file",
        description="Decode a JPEG (.jpg) to pixels (.png/.npy) or, with edgesplit side information, to the "
                    "feature map (.npy); decode an edgesplit lossless file (.esll) to .npy (or .png).")
    dec.add_argument("input", help=f".jpg, .jpeg or .esll file (at most {limits.MAX_CODED_BYTES:,} bytes)")
    dec.add_argument("-o", "--output", required=True, help="output file: .npy or .png; not the input")
    dec.set_defaults(func=cmd_decode)


# ---- inputs -------------------------------------------------------------------------------------------


def _existing(path: str, allowed: tuple[str, ...], what: str) -> Path:
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in allowed:
        raise UserError(f"{what} extension {ext or '(none)'!r} of {path} is not supported: use {', '.join(allowed)}")
    if not p.is_file():
        raise UserError(f"{what} {path} does not exist (or is not a file)")
    limits.check_file_size(p.stat().st_size, f"{what} {path}")
    return p


def _output(path: str, allowed: tuple[str, ...], why: str, src: Path | None = None) -> Path:
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in allowed:
        raise UserError(f"output extension {ext or '(none)'!r} of {path} is not allowed {why}: "
                        f"use {', '.join(allowed)}")
    return files.check_output_file(p, "output file", inputs=[("file", src)])


def read_image(path: Path) -> np.ndarray:
    """uint8 ``[H, W]`` (grayscale) or ``[H, W, 3]`` (colour); the size is checked from the header first."""
    from golden.data import load_image

    img = load_image(path, f"image {path}")
    mode = img.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise UserError(f"image {path} has {mode} samples: only 8-bit images are allowed (use a .npy "
                        "feature map for 16-bit data)")
    if mode in ("1", "L", "LA", "P") and (mode != "P" or _palette_is_gray(img)):
        img = img.convert("L")
    else:
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def _palette_is_gray(img) -> bool:
    rgb = np.asarray(img.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from a ``.npy`` header, read without the data; checked against the file's size and
    :data:`golden.limits.MAX_ARRAY_VALUES` (an empty file, a foreign one, a huge shape: UserError)."""
    what = f"feature file {path}"
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise UserError(f"{what} is .npy version {version[0]}.{version[1]}; allowed 1.0 .. 3.0")
            start = f.tell()
    except UserError:
        raise
    except OSError as e:
        raise UserError(f"{what} cannot be read: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - numpy's header parser on untrusted bytes raises many types
        raise UserError(f"{what} is not a readable .npy array ({type(e).__name__}: {one_line(e)})") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise UserError(f"{what} holds {dtype} values: need an integer or float array")
    limits.check_array_size(shape, what)
    need = start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < need:
        raise UserError(f"{what} is {size} bytes; its header ({shape} {dtype}) needs {need}: truncated")
    return tuple(shape), dtype


def one_line(e: object) -> str:
    return " ".join(str(e).split())


def read_features(path: Path) -> np.ndarray:
    shape, _ = npy_header(path)
    if len(shape) != 3:
        raise UserError(f"feature map {path} has rank {len(shape)} (shape {shape}): need C x H x W (rank 3)")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"feature file {path} is not a readable .npy array ({one_line(e)})") from None
    if not isinstance(x, np.ndarray):
        raise UserError(f"feature file {path} holds no array")
    return x


# ---- outputs ------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it: ``path`` is complete or untouched."""
    files.write_bytes(path, data)


def add_side_info(jfif: bytes, side: bytes) -> bytes:
    """Insert an APP9 ``EDGESPLIT\\0`` segment with the side information after the JFIF APP0 segment."""
    if jfif[:4] != b"\xff\xd8\xff\xe0":
        raise ValueError("not a JFIF file (SOI + APP0 expected)")
    app0_end = 4 + struct.unpack(">H", jfif[4:6])[0]
    payload = SIDE_INFO_ID + side
    segment = struct.pack(">BBH", 0xFF, SIDE_INFO_MARKER, len(payload) + 2) + payload
    return jfif[:app0_end] + segment + jfif[app0_end:]


def find_side_info(data: bytes) -> bytes | None:
    """The side information of an APPn ``EDGESPLIT\\0`` segment before the scan (APP9 as written; any APPn is
    accepted, so a damaged marker byte is not mistaken for a plain image), or None. A segment whose identifier
    is one or two bytes away from ``EDGESPLIT\\0`` is damaged side information: UserError."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        body = data[pos + 4:pos + 2 + length]
        if 0xE0 <= marker <= 0xEF and body.startswith(SIDE_INFO_ID):
            return body[len(SIDE_INFO_ID):]
        if marker == 0xDA or length < 2:  # SOS: the scan follows
            break
        pos += 2 + length
    _check_no_damaged_id(data[:pos + 4 + len(SIDE_INFO_ID)])
    return None


def _check_no_damaged_id(head: bytes) -> None:
    n = len(SIDE_INFO_ID)
    if len(head) < n:
        return
    windows = np.lib.stride_tricks.sliding_window_view(np.frombuffer(head, dtype=np.uint8), n)
    distance = (windows != np.frombuffer(SIDE_INFO_ID, dtype=np.uint8)).sum(axis=1)
    near = np.flatnonzero(distance <= 2)
    if len(near):
        raise UserError(f"the JPEG holds damaged edgesplit side information (its identifier at byte {near[0]} is "
                        "not EDGESPLIT\\0, or its segment header is broken)")


# ---- encode -------------------------------------------------------------------------------------------


@dataclass
class Encoded:
    data: bytes          # the whole file
    raw_bytes: int       # the input at 8 bits per image sample / 16 bits per feature value
    raw_what: str
    rtl: dict | None = None   # the RTL's counters
    subsampling: str | None = None   # colour JPEG: "444" or "420"


def _rtl(job, what: str) -> tuple[bytes, dict]:
    """Run ``job`` on the Verilator model; the RTL's coded bytes and its counters. Mismatch -> RtlMismatch."""
    from sim.tb_encoder import run_job

    with tempfile.TemporaryDirectory(prefix="edgesplit-rtl-") as tmp:
        result = run_job(job, Path(tmp))
    if result.data != job.expected or result.counters["out_bits"] != job.bits:
        n = len(result.data)
        diff = next((i for i, (a, b) in enumerate(zip(result.data, job.expected, strict=False)) if a != b),
                    min(n, len(job.expected)))
        raise RtlMismatch(f"the RTL encoder's output for {what} differs from the software reference: {n} bytes vs "
                          f"{len(job.expected)}, {result.counters['out_bits']} bits vs {job.bits}, first difference "
                          f"at byte {diff}")
    return result.data, result.counters


class RtlMismatch(RuntimeError):
    """The RTL's bytes differ from the software reference (a hardware bug, not a user error)."""


def _no_subsampling(subsampling: str | None, what: str) -> None:
    if subsampling is not None:
        raise UserError(f"--subsampling {subsampling} applies to colour images in JPEG mode only; {what}")


def encode_file(src: Path, lossless_mode: bool, qf: int, rtl: bool, subsampling: str | None = None) -> Encoded:
    from hw.jpeg import host

    is_features = src.suffix.lower() in FEATURE_EXTS
    counters = None
    sub = None           # a colour JPEG's subsampling
    if lossless_mode:
        _no_subsampling(subsampling, "not with --lossless")
    if is_features:
        _no_subsampling(subsampling, f"{src} is a feature map")
        x = read_features(src)
        raw, raw_what = 2 * x.size, "16-bit feature values"
        if lossless_mode:
            data = lossless.encode(x)
            if rtl:
                coded, counters = _rtl(host.lossless_job(x), str(src))
                data = _same(lossless.wrap(x, coded), data, src)
        else:
            mosaic, side = featpack.pack(x, "layer", qf)
            enc = jpeg.encode(mosaic, qf)
            data = enc.data
            if rtl:
                job = host.jpeg_job(mosaic, qf)
                coded, counters = _rtl(job, str(src))
                data = _same(job.wrap(coded), data, src)
            data = add_side_info(data, side.to_bytes())
    else:
        img = read_image(src)
        raw, raw_what = img.size, "8-bit samples"
        if lossless_mode:
            values = img if img.ndim == 2 else np.ascontiguousarray(img.transpose(2, 0, 1))
            data = lossless.encode(values)
            if rtl:
                coded, counters = _rtl(host.lossless_job(values), str(src))
                data = _same(lossless.wrap(values, coded), data, src)
        else:
            if img.ndim == 2:
                _no_subsampling(subsampling, f"{src} is a grayscale image")
                data = jpeg.encode(img, qf).data
            else:
                sub = jpeg.SUBSAMPLINGS[0] if subsampling is None else subsampling
                data = jpeg.encode(img, qf, sub).data
            if rtl:
                job = host.jpeg_job(img, qf, sub)
                coded, counters = _rtl(job, str(src))
                data = _same(job.wrap(coded), data, src)
    return Encoded(data=data, raw_bytes=raw, raw_what=raw_what, rtl=counters, subsampling=sub)


def _same(rtl_file: bytes, software_file: bytes, src: Path) -> bytes:
    if rtl_file != software_file:
        raise RtlMismatch(f"the RTL file for {src} differs from the software reference's "
                          f"({len(rtl_file)} vs {len(software_file)} bytes)")
    return rtl_file


def cmd_encode(args: argparse.Namespace) -> int:
    qf = jpeg.check_qf(DEFAULT_QF if args.qf is None else args.qf)
    if args.subsampling is not None:
        jpeg.check_subsampling(args.subsampling)
    src = _existing(args.input, IMAGE_EXTS + FEATURE_EXTS, "input file")
    if args.lossless:
        out = _output(args.output, LOSSLESS_EXTS, "for --lossless", src)
    else:
        out = _output(args.output, JPEG_EXTS, "for JPEG (lossy) output", src)
    try:
        enc = encode_file(src, args.lossless, qf, args.rtl, args.subsampling)
    except RtlMismatch as e:
        print(f"edgesplit encode: RTL MISMATCH: {e}; nothing written", file=sys.stderr)
        return 1
    write_atomic(out, enc.data)
    mode = "lossless" if args.lossless else f"JPEG QF {qf}"
    if enc.subsampling:
        mode += f", YCbCr {enc.subsampling[0]}:{enc.subsampling[1]}:{enc.subsampling[2]}"
    line = (f"{out}: {len(enc.data)} bytes ({mode}), raw {enc.raw_bytes} bytes ({enc.raw_what}), "
            f"ratio {enc.raw_bytes / len(enc.data):.2f}:1")
    if enc.rtl is not None:
        c = enc.rtl
        unit = "RGB pixels" if enc.subsampling else "samples"   # colour: pixels into the on-chip colour stage
        line += (f"; RTL: {c['cycles']} cycles for {c['samples']} {unit} "
                 f"({c['samples'] / max(c['cycles'], 1):.3f} {unit.split()[-1]}/cycle), {c['blocks']} blocks, "
                 f"bytes identical to the software reference")
    print(line)
    return 0


# ---- decode -------------------------------------------------------------------------------------------


def _npy_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    return buf.getvalue()


def _png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


DECODE_ERRORS = (ValueError, IndexError, KeyError, struct.error, ZeroDivisionError, OverflowError)
"""What the golden JPEG decoder can raise on a damaged file that its own checks do not catch."""


def cmd_decode(args: argparse.Namespace) -> int:
    src = _existing(args.input, JPEG_EXTS + LOSSLESS_EXTS, "input file")
    _output(args.output, (".npy", ".png"), "for decoded output", src)   # before any work
    try:
        data = src.read_bytes()
    except OSError as e:
        raise UserError(f"input file {src} cannot be read: {e.strerror or e}") from None
    out, payload, what = decode_data(data, src, args.output)
    write_atomic(out, payload)
    print(f"{out}: {what} from {len(data)} bytes")
    return 0


def decode_data(data: bytes, src: Path, output: str) -> tuple[Path, bytes, str]:
    """The bytes of a ``.jpg``/``.esll`` file (named ``src``) decoded for ``output``: ``(output path, the
    output file's bytes, what it holds)``. Whatever a damaged file makes the decoders raise is a UserError."""
    try:
        return _decode(data, src, output)
    except UserError:
        raise
    except DECODE_ERRORS as e:
        # the golden decoders check the containers, not every way a JPEG can be cut short or corrupted
        raise UserError(f"{src} is corrupt or truncated ({type(e).__name__}: {one_line(e)})") from None


def _decode(data: bytes, src: Path, output: str) -> tuple[Path, bytes, str]:
    if src.suffix.lower() in JPEG_EXTS:
        side = find_side_info(data)
        if side is not None:
            out = _output(output, (".npy",), "for a feature map (the JPEG carries edgesplit side information)", src)
            result = featpack.decode_jpeg(side, data)
            payload, what = _npy_bytes(result), f"feature map {result.shape} {result.dtype}"
        else:
            out = _output(output, (".png", ".npy"), "for an image", src)
            _check_frame(data, src)
            result = jpeg.decode_jpeg(data)
            what = f"image {result.shape}"
            payload = _png_bytes(result) if out.suffix.lower() == ".png" else _npy_bytes(result)
    else:
        out = _output(output, (".npy", ".png"), "for a lossless map", src)
        result = lossless.decode(data)
        what = f"map {result.shape} {result.dtype}"
        if out.suffix.lower() == ".png":
            payload = _png_bytes(_as_image(result, src))
        else:
            payload = _npy_bytes(result)
    return out, payload, what


def _check_frame(data: bytes, src: Path) -> None:
    """A plain JPEG's frame size, before decoding: within the image limit, and no more 8x8 blocks than its
    bytes can code (every block costs at least 2 bits: a DC and an end-of-block code)."""
    h, w = featpack.jpeg_frame_size(data)
    limits.check_image_size(w, h, f"JPEG image {src}")
    blocks = -(-h // 8) * -(-w // 8)
    if blocks > 4 * len(data):
        raise UserError(f"{src} is corrupt or truncated: its {h} x {w} frame needs {blocks:,} blocks, more than "
                        f"its {len(data):,} bytes can code")


def _as_image(x: np.ndarray, src: Path) -> np.ndarray:
    if x.dtype != np.uint8 or not (x.ndim == 2 or (x.ndim == 3 and x.shape[0] in (1, 3))):
        raise UserError(f"the map in {src} ({x.shape} {x.dtype}) is not an 8-bit image of 1 or 3 channels: "
                        "decode it to .npy")
    if x.ndim == 2:
        return x
    return x[0] if x.shape[0] == 1 else np.ascontiguousarray(x.transpose(1, 2, 0))
