"""The runtime's wire format (model.runtime.wire): round trips, and every kind of bad message refused in one line."""

import asyncio
import socket
import struct
import zlib

import pytest

from golden.errors import UserError
from model.runtime import wire

FRAME = wire.Frame(7, "resnet20", "layer2.0", "jpeg", 35, "feature", 11, (32, 16, 16), b"\x01\x02payload",
                   1.25, wire.FLAG_RESENT)


def _all_messages():
    return [wire.Hello("digits", "ab" * 20, "edge-1"), wire.Welcome("host", "float"), FRAME,
            wire.Frame(2**64 - 1, "n", "input", "none", 0, "image", 0, (3, 4, 5), b"x" * 60),
            wire.Reply(7, 3, 0.001, 0.002, 0.003), wire.Reply(8, -1, 0.0, 0.0, 0.0), wire.ErrorMsg("bad\nthing")]


@pytest.mark.parametrize("msg", _all_messages(), ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    data = wire.pack(msg)
    assert data[:4] == wire.MAGIC and data[4] == wire.VERSION
    got = wire.unpack(data)
    if isinstance(msg, wire.ErrorMsg):
        assert got == wire.ErrorMsg("bad thing")   # one line
    else:
        assert got == msg


def test_layout_is_the_documented_one():
    data = wire.pack(FRAME)
    magic, version, kind, flags, length = struct.unpack(">4sBBHI", data[:12])
    assert (magic, version, kind, flags, length) == (b"ESRT", 1, wire.FRAME, wire.FLAG_RESENT, len(data) - 16)
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4]) & 0xFFFFFFFF
    fid, t, codec, qf, kind_, frac, ndim = struct.unpack(">QdBBBbB", data[12:12 + 21])
    assert (fid, t, codec, qf, kind_, frac, ndim) == (7, 1.25, 2, 35, 0, 11, 3)


def _reseal(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


@pytest.mark.parametrize("damage, words", [
    (lambda d: b"XXXX" + d[4:], "bad magic"),
    (lambda d: d[:4] + b"\x09" + d[5:], "version 9"),
    (lambda d: d[:5] + b"\x63" + d[6:], "type 99"),
    (lambda d: d[:8] + struct.pack(">I", wire.MAX_BODY + 1) + d[12:], "exceeds"),
    (lambda d: d[:-5] + bytes([d[-5] ^ 1]) + d[-4:], "bad CRC-32"),
    (lambda d: d[:-10], "truncated"),
    (lambda d: d + b"\x00", "truncated"),
    (lambda d: b"\x00" * 5, "truncated"),
])
def test_bad_messages_are_one_line_errors(damage, words):
    with pytest.raises(wire.WireError, match=words) as e:
        wire.unpack(damage(wire.pack(FRAME)))
    assert "\n" not in str(e.value)
    assert isinstance(e.value, UserError)


@pytest.mark.parametrize("field, value, words", [
    ("codec", "zip", "codec"), ("qf", 0, "QF 0"), ("qf", 101, "QF 101"), ("shape", (), "shape"),
    ("shape", (0, 1), "shape"), ("frac", 200, "frac"), ("flags", 8, "flags"), ("kind", "audio", "kind"),
])
def test_frame_fields_checked(field, value, words):
    import dataclasses

    bad = dataclasses.replace(FRAME, **{field: value})
    with pytest.raises(wire.WireError, match=words):
        wire.pack(bad)


def test_body_fields_checked_after_the_crc():
    data = bytearray(wire.pack(FRAME))
    data[12 + 18] = 9   # kind byte: unknown
    with pytest.raises(wire.WireError, match="kind"):
        wire.unpack(_reseal(bytes(data)))
    reply = bytearray(wire.pack(wire.Reply(1, 2, 0, 0, 0)))
    reply[6:8] = b"\x00\x01"   # flags on a REPLY
    with pytest.raises(wire.WireError, match="flags"):
        wire.unpack(_reseal(bytes(reply)))
    long_body = wire.pack(wire.Welcome("h", "float"))
    head = bytearray(long_body[:12])
    head[8:12] = struct.pack(">I", len(long_body) - 16 + 1)
    with pytest.raises(wire.WireError, match="after its last field"):
        wire.unpack(_reseal(bytes(head) + long_body[12:-4] + b"\x00" + b"\x00" * 4))


def test_names_are_bounded():
    with pytest.raises(wire.WireError, match="at most 255"):
        wire.pack(wire.Hello("n" * 300, "d"))


def test_stream_readers():
    a, b = socket.socketpair()
    try:
        a.sendall(wire.pack(FRAME) + wire.pack(wire.Reply(1, 2, 0.1, 0.2, 0.3)) + wire.pack(FRAME)[:20])
        a.shutdown(socket.SHUT_WR)
        assert wire.recv_message(b, 2.0) == FRAME
        assert wire.recv_message(b, 2.0) == wire.Reply(1, 2, 0.1, 0.2, 0.3)
        with pytest.raises(wire.Closed) as e:
            wire.recv_message(b, 2.0)
        assert e.value.got == 20
    finally:
        a.close()
        b.close()

    async def go():
        r = asyncio.StreamReader()
        r.feed_data(wire.pack(FRAME) + b"ESRT\x01")
        r.feed_eof()
        assert await wire.read_message(r, 1.0) == FRAME
        with pytest.raises(wire.Closed):
            await wire.read_message(r, 1.0)
        stalled = asyncio.StreamReader()
        stalled.feed_data(wire.pack(FRAME)[:30])
        with pytest.raises(TimeoutError):
            await wire.read_message(stalled, 0.05)

    asyncio.run(go())


@pytest.mark.parametrize("text, want", [("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:5000", ("::1", 5000)),
                                        ("localhost:80", ("localhost", 80))])
def test_addresses(text, want):
    assert wire.parse_address(text) == want


@pytest.mark.parametrize("text", ["127.0.0.1", ":80", "host:99999", "host:x", ""])
def test_bad_addresses(text):
    with pytest.raises(UserError, match="HOST:PORT"):
        wire.parse_address(text)
