"""The runtime's wire format: one versioned binary message format for edge <-> host, with a CRC-32.

Every message is a 12-byte prelude, a body, and a CRC-32 (big-endian, like every multi-byte field)::

    offset  bytes  field
    0       4      magic b"ESRT"
    4       1      version (1)
    5       1      type: 1 HELLO, 2 WELCOME, 3 FRAME, 4 REPLY, 5 ERROR
    6       2      flags (FRAME: bit 0 resent after a reconnect, bit 1 probe: a warm-up frame, not counted)
    8       4      body length L (at most MAX_BODY)
    12      L      body (per type, below)
    12+L    4      CRC-32 (zlib's, ISO-HDLC) of the prelude and the body

Bodies (``str8``: 1 length byte + UTF-8; ``str16``: 2 length bytes + UTF-8)::

    HELLO    str8 network, str8 network digest (hex of the int16 network, :func:`model.runtime.nets.digest`),
             str8 edge label
    WELCOME  str8 host label, str8 host precision (float | int16)
    FRAME    u64 frame id, f64 edge time (s, when its last bit left the radio), u8 codec (0 none, 1 lossless,
             2 jpeg), u8 QF (1..100 for jpeg, else 0), u8 kind (0 int16 feature, 1 uint8 camera image),
             i8 frac bits of the feature (0 for an image), u8 ndim (1..4), ndim x u32 shape (the tensor sent,
             no batch), str8 network, str8 split, u32 payload length P, P bytes payload
    REPLY    u64 frame id, i32 class (argmax of the logits), f64 host queue s, f64 decode s, f64 compute s
    ERROR    str16 message (one line)

A reply carries the frame id it answers; frames of one connection are answered in the order they arrive.
The payload is exactly what the edge's encode unit writes (:mod:`model.runtime.codec`). Readers check, in
this order, before they allocate or wait for a body: the magic, the version, the type and the length bound;
then the CRC-32; then every body field (``WireError``, one line). A connection that sends a bad message is
dropped (``docs/runtime.md``).
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
import zlib
from dataclasses import dataclass, field

from golden.errors import UserError

MAGIC = b"ESRT"
VERSION = 1
PRELUDE = struct.Struct(">4sBBHI")
PRELUDE_BYTES = PRELUDE.size  # 12
CRC_BYTES = 4
MAX_BODY = 64 << 20
"""Largest body accepted (64 MiB: AlexNet's raw input is 150 KB, VGG's biggest raw map 6.4 MB)."""
MAX_NAME = 255
MAX_NDIM = 4
MAX_ELEMENTS = 1 << 26

HELLO, WELCOME, FRAME, REPLY, ERROR = 1, 2, 3, 4, 5
TYPE_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", FRAME: "FRAME", REPLY: "REPLY", ERROR: "ERROR"}
FLAG_RESENT = 1
FLAG_PROBE = 2
FRAME_FLAGS = FLAG_RESENT | FLAG_PROBE

CODECS = ("none", "lossless", "jpeg")
KINDS = ("feature", "image")
_FRAME_FIXED = struct.Struct(">QdBBBbB")
_REPLY = struct.Struct(">Qiddd")


class WireError(UserError):
    """A message that breaks the format: bad magic, version, type, length, CRC-32 or field (one line)."""


class Closed(Exception):
    """The peer closed the connection; ``got`` bytes of a message had arrived (0: between messages)."""

    def __init__(self, got: int = 0, wanted: int = 0) -> None:
        super().__init__(f"connection closed after {got} of {wanted} bytes of a message" if got else
                         "connection closed")
        self.got = got
        self.wanted = wanted


# ---- messages ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    net: str
    digest: str
    label: str = "edge"


@dataclass(frozen=True)
class Welcome:
    label: str
    precision: str


@dataclass(frozen=True)
class Frame:
    """One split feature (or camera image) on its way to the host."""

    frame_id: int
    net: str
    split: str
    codec: str
    qf: int
    kind: str
    frac: int
    shape: tuple[int, ...]
    payload: bytes = field(repr=False)
    edge_time: float = 0.0
    flags: int = 0


@dataclass(frozen=True)
class Reply:
    frame_id: int
    label: int
    queue_s: float
    decode_s: float
    compute_s: float


@dataclass(frozen=True)
class ErrorMsg:
    message: str


Message = Hello | Welcome | Frame | Reply | ErrorMsg


# ---- packing ----------------------------------------------------------------------------------------------


def _str8(text: str, what: str) -> bytes:
    b = text.encode()
    if len(b) > MAX_NAME:
        raise WireError(f"{what} {text[:40]!r}... is {len(b)} bytes; at most {MAX_NAME}")
    return bytes([len(b)]) + b


def _seal(kind: int, body: bytes, flags: int = 0) -> bytes:
    if len(body) > MAX_BODY:
        raise WireError(f"message body of {len(body):,} bytes exceeds {MAX_BODY:,}")
    head = PRELUDE.pack(MAGIC, VERSION, kind, flags, len(body))
    return head + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(head)) & 0xFFFFFFFF)


def pack(msg: Message) -> bytes:
    """The bytes of one message (module docstring)."""
    if isinstance(msg, Hello):
        return _seal(HELLO, _str8(msg.net, "network") + _str8(msg.digest, "digest") + _str8(msg.label, "label"))
    if isinstance(msg, Welcome):
        return _seal(WELCOME, _str8(msg.label, "label") + _str8(msg.precision, "precision"))
    if isinstance(msg, Frame):
        check_frame_fields(msg)
        body = _FRAME_FIXED.pack(msg.frame_id, msg.edge_time, CODECS.index(msg.codec), msg.qf,
                                 KINDS.index(msg.kind), msg.frac, len(msg.shape))
        body += b"".join(struct.pack(">I", s) for s in msg.shape)
        body += _str8(msg.net, "network") + _str8(msg.split, "split")
        body += struct.pack(">I", len(msg.payload)) + bytes(msg.payload)
        return _seal(FRAME, body, msg.flags)
    if isinstance(msg, Reply):
        return _seal(REPLY, _REPLY.pack(msg.frame_id, msg.label, msg.queue_s, msg.decode_s, msg.compute_s))
    if isinstance(msg, ErrorMsg):
        b = " ".join(msg.message.split())[:4000].encode()
        return _seal(ERROR, struct.pack(">H", len(b)) + b)
    raise TypeError(f"not a message: {type(msg).__name__}")


def check_frame_fields(f: Frame) -> None:
    """Every FRAME field within its range (WireError naming the field)."""
    if not 0 <= f.frame_id < 1 << 64:
        raise WireError(f"frame id {f.frame_id} is outside 0..2^64-1")
    if f.codec not in CODECS:
        raise WireError(f"codec {f.codec!r} is not one of {', '.join(CODECS)}")
    if f.kind not in KINDS:
        raise WireError(f"kind {f.kind!r} is not one of {', '.join(KINDS)}")
    if (f.codec == "jpeg") != (1 <= f.qf <= 100) or (f.codec != "jpeg" and f.qf != 0):
        raise WireError(f"QF {f.qf} does not fit codec {f.codec} (1..100 for jpeg, 0 otherwise)")
    if not -128 <= f.frac <= 127:
        raise WireError(f"frac bits {f.frac} are outside -128..127")
    if not 1 <= len(f.shape) <= MAX_NDIM or min(f.shape) < 1 or math.prod(f.shape) > MAX_ELEMENTS:
        raise WireError(f"shape {tuple(f.shape)} is not allowed (1..{MAX_NDIM} sides >= 1, at most "
                        f"{MAX_ELEMENTS:,} values)")
    if f.flags & ~FRAME_FLAGS:
        raise WireError(f"frame flags {f.flags:#x} are not allowed (bits 0..1)")
    if not math.isfinite(f.edge_time):
        raise WireError("edge time is not a finite number")


# ---- parsing ------------------------------------------------------------------------------------------------


def parse_prelude(head: bytes) -> tuple[int, int, int]:
    """``(type, flags, body length)`` of a 12-byte prelude, or WireError."""
    magic, version, kind, flags, length = PRELUDE.unpack(head)
    if magic != MAGIC:
        raise WireError(f"bad magic {magic!r} (expected {MAGIC!r}): not an edgesplit runtime message")
    if version != VERSION:
        raise WireError(f"message version {version} is not supported (this host speaks version {VERSION})")
    if kind not in TYPE_NAMES:
        raise WireError(f"message type {kind} is unknown (1..{len(TYPE_NAMES)})")
    if length > MAX_BODY:
        raise WireError(f"message body length {length:,} exceeds {MAX_BODY:,}")
    return kind, flags, length


class _Reader:
    def __init__(self, body: bytes) -> None:
        self.b = body
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.b):
            raise WireError(f"message body ends inside its {what} field (byte {self.pos} of {len(self.b)})")
        out = self.b[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, st: struct.Struct, what: str) -> tuple:
        return st.unpack(self.take(st.size, what))

    def str8(self, what: str) -> str:
        n = self.take(1, what)[0]
        try:
            return self.take(n, what).decode()
        except UnicodeDecodeError:
            raise WireError(f"{what} is not UTF-8") from None

    def end(self, kind: int) -> None:
        if self.pos != len(self.b):
            raise WireError(f"{TYPE_NAMES[kind]} body has {len(self.b) - self.pos} bytes after its last field")


_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


def parse_body(kind: int, flags: int, body: bytes) -> Message:
    """The message of a checked prelude and body (CRC already verified)."""
    r = _Reader(body)
    msg: Message
    if kind == HELLO:
        msg = Hello(r.str8("network"), r.str8("digest"), r.str8("label"))
    elif kind == WELCOME:
        msg = Welcome(r.str8("label"), r.str8("precision"))
    elif kind == FRAME:
        fid, t, codec, qf, k, frac, ndim = r.unpack(_FRAME_FIXED, "frame header")
        if codec >= len(CODECS) or k >= len(KINDS):
            raise WireError(f"codec {codec} / kind {k} is unknown (codec 0..{len(CODECS) - 1}, kind 0..1)")
        if not 1 <= ndim <= MAX_NDIM:
            raise WireError(f"ndim {ndim} is outside 1..{MAX_NDIM}")
        shape = tuple(r.unpack(_U32, "shape")[0] for _ in range(ndim))
        net, split = r.str8("network"), r.str8("split")
        (n,) = r.unpack(_U32, "payload length")
        payload = r.take(n, "payload")
        msg = Frame(fid, net, split, CODECS[codec], qf, KINDS[k], frac, shape, payload, t, flags)
        check_frame_fields(msg)
    elif kind == REPLY:
        msg = Reply(*r.unpack(_REPLY, "reply"))
    else:
        (n,) = r.unpack(_U16, "message length")
        try:
            msg = ErrorMsg(r.take(n, "message").decode(errors="replace"))
        except UnicodeDecodeError:  # pragma: no cover - errors="replace"
            raise WireError("error message is not UTF-8") from None
    r.end(kind)
    if kind != FRAME and flags:
        raise WireError(f"{TYPE_NAMES[kind]} carries flags {flags:#x}; only FRAME has flags")
    return msg


def check_crc(head: bytes, body: bytes, crc: bytes) -> None:
    stored = struct.unpack(">I", crc)[0]
    computed = zlib.crc32(body, zlib.crc32(head)) & 0xFFFFFFFF
    if stored != computed:
        raise WireError(f"bad CRC-32: {computed:08x} computed over the message, {stored:08x} stored")


def unpack(data: bytes) -> Message:
    """One whole message from bytes (WireError if it is not exactly one well-formed message)."""
    data = bytes(data)
    if len(data) < PRELUDE_BYTES + CRC_BYTES:
        raise WireError(f"truncated message: {len(data)} bytes, fewer than the {PRELUDE_BYTES + CRC_BYTES} of an "
                        "empty one")
    kind, flags, length = parse_prelude(data[:PRELUDE_BYTES])
    want = PRELUDE_BYTES + length + CRC_BYTES
    if len(data) != want:
        raise WireError(f"truncated message: {len(data)} bytes, its prelude announces {want}")
    body = data[PRELUDE_BYTES:PRELUDE_BYTES + length]
    check_crc(data[:PRELUDE_BYTES], body, data[-CRC_BYTES:])
    return parse_body(kind, flags, body)


# ---- reading from a stream (asyncio) or a socket (threads) -----------------------------------------------------


class Idle(TimeoutError):
    """No message started within the idle timeout (nothing was consumed: the stream can be read again)."""


async def read_message(reader: asyncio.StreamReader, timeout: float | None = None,
                       idle: float | None = None) -> Message:
    """The next message from an asyncio stream. ``Closed`` at a clean end between messages or mid-message
    (``got`` > 0: a truncated message); ``WireError`` for a bad one; ``TimeoutError`` after ``timeout`` s
    without a whole message. With ``idle``: :class:`Idle` when no message has begun within ``idle`` s (the
    prelude's read consumes nothing until it is whole), then ``timeout`` for the rest."""
    if idle is not None:
        try:
            head = await asyncio.wait_for(_read_exactly(reader, PRELUDE_BYTES, 0, PRELUDE_BYTES), idle)
        except TimeoutError:
            raise Idle(f"no message within {idle:g} s") from None
        async with asyncio.timeout(timeout):
            return await _finish(reader, head)
    async with asyncio.timeout(timeout):
        head = await _read_exactly(reader, PRELUDE_BYTES, 0, PRELUDE_BYTES)
        return await _finish(reader, head)


async def _finish(reader: asyncio.StreamReader, head: bytes) -> Message:
    kind, flags, length = parse_prelude(head)
    rest = await _read_exactly(reader, length + CRC_BYTES, PRELUDE_BYTES, PRELUDE_BYTES + length + CRC_BYTES)
    body = rest[:length]
    check_crc(head, body, rest[length:])
    return parse_body(kind, flags, body)


async def _read_exactly(reader: asyncio.StreamReader, n: int, before: int, total: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as e:
        raise Closed(before + len(e.partial), total) from None


def recv_message(sock: socket.socket, timeout: float | None = None) -> Message:
    """The next message from a blocking socket (same contract as :func:`read_message`; ``timeout`` is per
    read)."""
    sock.settimeout(timeout)
    head = _recv_exactly(sock, PRELUDE_BYTES, 0, PRELUDE_BYTES)
    kind, flags, length = parse_prelude(head)
    rest = _recv_exactly(sock, length + CRC_BYTES, PRELUDE_BYTES, PRELUDE_BYTES + length + CRC_BYTES)
    body = rest[:length]
    check_crc(head, body, rest[length:])
    return parse_body(kind, flags, body)


def _recv_exactly(sock: socket.socket, n: int, before: int, total: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except TimeoutError:
            raise
        except OSError:
            raise Closed(before + len(buf), total) from None
        if not chunk:
            raise Closed(before + len(buf), total)
        buf += chunk
    return bytes(buf)


def parse_address(text: str, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); UserError naming the value otherwise."""
    text = str(text).strip()
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        p = int(port)
    except ValueError:
        p = -1
    if not sep or not host or not 0 <= p <= 65535:
        raise UserError(f"{what} {text!r} is not HOST:PORT (port 0..65535; [::1]:PORT for IPv6)")
    return host, p


__all__ = ["CODECS", "ERROR", "FRAME", "FLAG_PROBE", "FLAG_RESENT", "HELLO", "KINDS", "MAGIC", "MAX_BODY", "REPLY",
           "VERSION", "WELCOME", "Closed", "ErrorMsg", "Frame", "Hello", "Idle", "Message", "Reply", "Welcome",
           "WireError", "pack", "parse_address", "read_message", "recv_message", "unpack"]
