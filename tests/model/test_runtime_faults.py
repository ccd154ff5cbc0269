"""Faults of the split runtime on loopback (issue 14): the host killed and restarted, bad messages, an edge killed.

Every test runs a real host (both servers) and real edges on 127.0.0.1, port 0, with the digits network; every
wait is bounded in count and time.
"""

import asyncio
import dataclasses
import os
import socket
import struct
import threading
import time

import pytest

from model.runtime import wire
from model.runtime.edge import EdgeConfig, Prepared, Session
from model.runtime.host import HostThread
from model.runtime.trace import load_trace

pytestmark = pytest.mark.xdist_group("runtime")
SERVERS = ("asyncio", "threads")


@pytest.fixture(scope="module")
def prep():
    cfg = EdgeConfig(net="digits", policy="static", split="conv2", codec="lossless", frames=40, images=8,
                     reply_timeout=10, reconnect_timeout=20, hello_timeout=60, timeout=60)
    return Prepared(cfg)


class Log:
    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()

    def __call__(self, line):
        with self.lock:
            self.lines.append(line)

    def dropped(self):
        with self.lock:
            return [x for x in self.lines if "dropped" in x]


def _run(prep, port, **kw):
    cfg = dataclasses.replace(prep.cfg, connect=f"127.0.0.1:{port}", **kw)
    return asyncio.run(Session(prep, "static", cfg=cfg).run())


def _wait(cond, seconds=10.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _exactly_once(r, n):
    assert r["frames"] == n and r["answered"] == n and r["unique_answers"] == n
    assert r["agreement_with_uncoded"] == 1.0   # lossless: every answer is the uncoded network's class


@pytest.mark.parametrize("server", SERVERS)
def test_host_killed_and_restarted_every_frame_answered_once(prep, server):
    log = Log()
    first = HostThread(server, log=log).start()
    port = first.port
    hosts = [first]

    def killer():
        _wait(lambda: first.core.stats["frames"] >= 12, 20, "frames before the kill")
        first.stop()
        time.sleep(0.3)
        for _ in range(50):   # the port may take a moment to be free again
            try:
                hosts.append(HostThread(server, port=port, log=log).start())
                return
            except Exception:
                time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        r = _run(prep, port, frames=40, trace=load_trace("0.25mbps"))
    finally:
        t.join(30)
        for h in hosts:
            h.stop()
    assert len(hosts) == 2, "the host was not restarted"
    _exactly_once(r, 40)
    assert r["reconnects"] >= 1 and r["resent"] >= 1
    answered = set(hosts[0].core.answered) | set(hosts[1].core.answered)
    assert answered == set(range(40))
    # replies the edge did not take twice: every extra host answer was a frame whose reply the kill lost
    extra = len(hosts[0].core.answered) + len(hosts[1].core.answered) - 40
    assert r["duplicates_dropped"] <= extra


def _hello_socket(port, digest):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(wire.pack(wire.Hello("digits", digest, "raw")))
    assert isinstance(wire.recv_message(s, 10), wire.Welcome)
    return s


def _closed_by_host(s, seconds=5.0):
    """True when the host closes ``s`` (an ERROR message may come first)."""
    s.settimeout(seconds)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        s.close()


def _good_frame(prep, fid=0):
    return wire.pack(prep.frame(fid, prep.fixed))


def _attacks(prep, port):
    digest = prep.rt.digest
    results = {}
    good = _good_frame(prep, 10_000)
    # a frame with a bad CRC-32
    s = _hello_socket(port, digest)
    s.sendall(good[:-1] + bytes([good[-1] ^ 0xFF]))
    results["bad crc"] = _closed_by_host(s)
    # a truncated frame, then the edge closes its side
    s = _hello_socket(port, digest)
    s.sendall(good[: len(good) // 2])
    s.shutdown(socket.SHUT_WR)
    results["truncated"] = _closed_by_host(s)
    # a wrong version (the first message)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    hello = bytearray(wire.pack(wire.Hello("digits", digest)))
    hello[4] = 9
    s.sendall(bytes(hello))
    results["version"] = _closed_by_host(s)
    # random bytes on the port
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(os.urandom(200))
    results["random"] = _closed_by_host(s)
    return results


@pytest.mark.parametrize("server", SERVERS)
def test_bad_messages_drop_only_their_connection(prep, server):
    log = Log()
    with HostThread(server, log=log) as h:
        got = {}

        def attack():
            _wait(lambda: h.core.stats["frames"] >= 3, 20, "the good edge's first frames")
            got.update(_attacks(prep, h.port))

        t = threading.Thread(target=attack, daemon=True)
        t.start()
        r = _run(prep, h.port, frames=40, trace=load_trace("0.3mbps"))
        t.join(30)
        assert got == {"bad crc": True, "truncated": True, "version": True, "random": True}
        _exactly_once(r, 40)   # the good edge was served throughout
        _wait(lambda: len(log.dropped()) >= 4, 5, "the host's log lines")
        dropped = log.dropped()
        assert len(dropped) == 4 and h.core.stats["dropped"] == 4
        text = " | ".join(dropped)
        for words in ("CRC-32", "truncated", "version 9", "magic"):
            assert words in text
        assert all("\n" not in line for line in dropped)
        _wait(lambda: h.core.stats["open"] == 0, 5, "every connection freed")


@pytest.mark.parametrize("server", SERVERS)
def test_edge_killed_host_frees_its_state_and_serves_a_new_edge(prep, server):
    log = Log()
    with HostThread(server, log=log) as h:
        s = _hello_socket(h.port, prep.rt.digest)
        for fid in range(3):
            s.sendall(_good_frame(prep, fid))
        frame = _good_frame(prep, 3)
        s.sendall(frame[:25])                       # killed in the middle of a frame ...
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()                                   # ... with a reset, as a killed process leaves it
        _wait(lambda: h.core.stats["open"] == 0, 10, "the killed edge's state freed")
        assert h.core.stats["connections"] == 1
        r = _run(prep, h.port, frames=10, trace=load_trace("2mbps"))
        _exactly_once(r, 10)
        _wait(lambda: h.core.stats["open"] == 0, 10, "the second edge's state freed")
        assert h.core.stats["connections"] == 2


def test_host_refuses_a_foreign_int16_network(prep):
    with HostThread("asyncio", log=Log()) as h:
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        s.sendall(wire.pack(wire.Hello("digits", "0" * 40)))
        msg = wire.recv_message(s, 30)
        s.close()
        assert isinstance(msg, wire.ErrorMsg) and "differs" in msg.message


def test_several_edges_at_once(prep):
    with HostThread("asyncio", log=Log()) as h:
        out = []

        def one(i):
            out.append(_run(prep, h.port, frames=15, trace=load_trace("1mbps"), label=f"edge-{i}"))

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(out) == 3
        for r in out:
            _exactly_once(r, 15)
        assert h.core.stats["connections"] == 3


def test_ipv6_loopback(prep):
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with HostThread("threads", host="::1", log=Log()) as h:
        cfg = dataclasses.replace(prep.cfg, connect=f"[::1]:{h.port}", frames=5, trace=load_trace("2mbps"))
        _exactly_once(asyncio.run(Session(prep, "static", cfg=cfg).run()), 5)
