"""The host process: accepts edges, decodes each FRAME, finishes the network, answers with the class and timings.

One conversation per connection (``docs/runtime.md``): the edge's first message is HELLO (network, digest); the
host loads the network (once per process, shared by all edges), checks the digest and answers WELCOME, or ERROR
and closes. Then FRAMEs: a reader stamps each one's arrival and queues it (at most ``queue_frames``; the socket
buffers the rest), a worker decodes and computes them in arrival order in a thread pool and writes one REPLY per
FRAME (frame id, class, queue / decode / compute seconds). Frames of one connection are answered in order; several
connections are served at once.

Any bad message (bad magic, version, type, length, CRC-32, field; a frame for another network; a payload that
does not decode to the announced shape), a truncated message, a connection silent for ``idle_timeout`` seconds:
the host logs one line naming the peer and the reason, sends ERROR when it can, closes that connection, frees its
state and keeps serving the others. An edge that disappears frees its state the same way.

Two servers with the same behaviour (:data:`SERVERS`): ``asyncio`` (one event loop; decode and compute in a
thread pool of ``workers``) and ``threads`` (an accept thread; per connection a reader thread and a worker
thread). ``model.runtime.bench`` measures both (``docs/runtime.md`` has the numbers). Each frame is computed by one
thread: the host sets torch to ``torch_threads`` (1) intra-op threads, since per-frame work is small and intra-op
threads only fight over the cores.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from golden.errors import UserError
from golden.network import INPUT
from model.runtime import codec, wire
from model.runtime.nets import PRECISIONS, NetRuntime

SERVERS = ("asyncio", "threads")


@dataclass(frozen=True)
class HostConfig:
    """How the host serves (``edgesplit host`` options)."""

    precision: str = "float"
    data: str | None = None
    idle_timeout: float = 120.0
    hello_timeout: float = 30.0
    max_connections: int = 64
    queue_frames: int = 64
    workers: int = 4
    label: str = "edgesplit-host"
    torch_threads: int = 1
    decoder: str = "fast"

    def check(self) -> HostConfig:
        if self.decoder not in codec.DECODERS:
            raise UserError(f"unknown JPEG decoder {self.decoder!r}; allowed: {', '.join(codec.DECODERS)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"host precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        for name, v, lo, hi in (("idle timeout", self.idle_timeout, 0.01, 86400),
                                ("hello timeout", self.hello_timeout, 0.01, 86400),
                                ("max connections", self.max_connections, 1, 4096),
                                ("queue frames", self.queue_frames, 1, 1 << 16), ("workers", self.workers, 1, 256),
                                ("torch threads", self.torch_threads, 0, 256)):
            if not lo <= v <= hi:
                raise UserError(f"host {name} {v} is outside {lo:g}..{hi:g}")
        return self


def stderr_log(line: str) -> None:
    print(f"edgesplit host: {line}", file=sys.stderr, flush=True)


class HostCore:
    """What both servers share: networks, the HELLO check, the processing of one FRAME, counters."""

    def __init__(self, config: HostConfig | None = None, log: Callable[[str], None] = stderr_log) -> None:
        self.config = (config or HostConfig()).check()
        if self.config.torch_threads:
            # one frame per worker thread: torch's intra-op threads only fight over the cores (ResNet-20 from the
            # stem took 550 ms with 2 threads on this loaded 2-core machine, 2.7 ms with 1)
            import torch

            torch.set_num_threads(self.config.torch_threads)
        self.log = log
        self.nets: dict[str, NetRuntime] = {}
        self._lock = threading.Lock()
        self.stats = {"connections": 0, "open": 0, "frames": 0, "dropped": 0, "refused": 0}
        self.answered: deque[int] = deque(maxlen=1 << 20)   # frame ids answered (probes excluded), in order

    def count(self, key: str, delta: int = 1) -> None:
        with self._lock:
            self.stats[key] += delta

    def preload(self, spec: str, weights: str | None = None, input_shape: str | None = None) -> NetRuntime:
        """Load a network before serving (needed for a model file; a built-in loads on its first HELLO)."""
        from model.runtime import nets

        rt = nets.load(spec, self.config.data, weights, input_shape)
        with self._lock:
            self.nets[rt.name] = rt
        return rt

    def hello(self, h: wire.Hello) -> NetRuntime:
        """The network an edge asks for, loaded and checked; UserError (sent as ERROR) otherwise."""
        with self._lock:
            rt = self.nets.get(h.net)
        if rt is None:
            from golden.network import builtin_names

            if h.net not in builtin_names():
                raise UserError(f"this host does not know network {h.net!r}; start it with --preload SPEC "
                                f"(built-ins load by themselves)")
            from model.runtime import nets

            rt = nets.load(h.net, self.config.data)
            with self._lock:
                self.nets[rt.name] = rt
        if h.digest != rt.digest:
            raise UserError(f"network {h.net}: the edge's int16 network (digest {h.digest[:12]}) differs from the "
                            f"host's ({rt.digest[:12]}): give both the same weights and calibration data")
        return rt

    def process(self, rt: NetRuntime, f: wire.Frame, t_arrived: float) -> wire.Reply:
        """Decode and finish one frame (UserError when it does not fit the network: the connection is dropped)."""
        t0 = time.perf_counter()
        if f.net != rt.name:
            raise UserError(f"frame {f.frame_id} is for network {f.net!r}; this connection said HELLO for {rt.name!r}")
        rt.net.split(f.split)
        want_kind = "image" if f.split == INPUT else "feature"
        if f.kind != want_kind:
            raise UserError(f"frame {f.frame_id} at split {f.split} carries a {f.kind}; expected a {want_kind}")
        if tuple(f.shape) != rt.sent_shape(f.split):
            raise UserError(f"frame {f.frame_id} has shape {tuple(f.shape)}; split {f.split} of {rt.name} sends "
                            f"{rt.sent_shape(f.split)}")
        if f.frac != rt.frac(f.split):
            raise UserError(f"frame {f.frame_id} says {f.frac} frac bits; split {f.split} has {rt.frac(f.split)}")
        value = codec.decode(f.codec, f.kind, f.qf, f.shape, f.payload, self.config.decoder)
        t1 = time.perf_counter()
        label = rt.predict(f.split, value, self.config.precision)
        t2 = time.perf_counter()
        self.count("frames")
        if not f.flags & wire.FLAG_PROBE:
            with self._lock:
                self.answered.append(f.frame_id)
        return wire.Reply(f.frame_id, label, max(0.0, t0 - t_arrived), t1 - t0, t2 - t1)

    def welcome(self) -> wire.Welcome:
        return wire.Welcome(self.config.label, self.config.precision)

    def drop(self, peer: str, reason: BaseException | str) -> None:
        self.count("dropped")
        self.log(f"{peer}: dropped: {_reason(reason)}")


def _reason(e: BaseException | str) -> str:
    if isinstance(e, str):
        return e
    if isinstance(e, wire.Closed):
        return f"truncated message ({e.got} of {e.wanted} bytes, then the connection closed)"
    if isinstance(e, TimeoutError):
        return "no complete message within the idle timeout"
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if not isinstance(e, UserError) else text


def _peer(addr) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"[{addr[0]}]:{addr[1]}" if ":" in str(addr[0]) else f"{addr[0]}:{addr[1]}"
    return str(addr)


# ---- asyncio --------------------------------------------------------------------------------------------------


class AsyncioHost:
    """The asyncio server (module docstring). ``start`` binds (port 0: any free port), ``serve`` runs until
    ``stop`` is called (from any thread)."""

    def __init__(self, core: HostCore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.core, self.host, self.port = core, host, port
        self.pool = concurrent.futures.ThreadPoolExecutor(core.config.workers, thread_name_prefix="host-worker")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.base_events.Server | None = None
        self._stopped: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            self.server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        except OSError as e:
            raise UserError(f"cannot listen on {_peer((self.host, self.port))}: {e.strerror or e}") from None
        addr = self.server.sockets[0].getsockname()
        self.port = addr[1]
        return self.host, self.port

    async def serve(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """Stop serving and drop every connection (thread-safe)."""
        if self.loop is not None and self._stopped is not None:
            with contextlib.suppress(RuntimeError):   # the loop has ended already
                self.loop.call_soon_threadsafe(self._stopped.set)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        core, cfg = self.core, self.core.config
        peer = _peer(writer.get_extra_info("peername"))
        loop = asyncio.get_running_loop()
        if core.stats["open"] >= cfg.max_connections:
            core.count("refused")
            core.log(f"{peer}: refused: {cfg.max_connections} connections already open")
            writer.write(wire.pack(wire.ErrorMsg(f"host is full ({cfg.max_connections} connections)")))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.drain(), 1.0)
            writer.close()
            return
        core.count("connections")
        core.count("open")
        self._writers.add(writer)
        reader_task: asyncio.Task | None = None
        try:
            msg = await wire.read_message(reader, cfg.hello_timeout)
            if not isinstance(msg, wire.Hello):
                raise wire.WireError(f"the first message must be HELLO, got {type(msg).__name__.upper()}")
            rt = await loop.run_in_executor(self.pool, core.hello, msg)
            writer.write(wire.pack(core.welcome()))
            await writer.drain()
            core.log(f"{peer}: edge {msg.label!r} connected for {rt.name}")
            frames: asyncio.Queue = asyncio.Queue(cfg.queue_frames)

            async def read_frames() -> None:
                while True:
                    try:
                        m = await wire.read_message(reader, cfg.idle_timeout)
                    except BaseException as e:  # handed to the worker, which ends the conversation
                        await frames.put(e)
                        return
                    await frames.put((m, time.perf_counter()))

            reader_task = asyncio.create_task(read_frames())
            while True:
                item = await frames.get()
                if isinstance(item, BaseException):
                    raise item
                m, t_arrived = item
                if not isinstance(m, wire.Frame):
                    raise wire.WireError(f"expected FRAME, got {type(m).__name__.upper()}")
                reply = await loop.run_in_executor(self.pool, core.process, rt, m, t_arrived)
                writer.write(wire.pack(reply))
                await writer.drain()
        except wire.Closed as e:
            if e.got:
                core.drop(peer, e)
            else:
                core.log(f"{peer}: closed by the edge")
        except (UserError, TimeoutError) as e:
            core.drop(peer, e)
            with contextlib.suppress(Exception):
                writer.write(wire.pack(wire.ErrorMsg(_reason(e))))
                await asyncio.wait_for(writer.drain(), 1.0)
        except (ConnectionError, OSError) as e:
            core.drop(peer, f"connection lost ({type(e).__name__})")
        except asyncio.CancelledError:
            pass
        except Exception as e:  # a bug in the host's processing: log it, keep serving the others
            core.drop(peer, f"internal error {type(e).__name__}: {' '.join(str(e).split())}")
        finally:
            if reader_task is not None:
                reader_task.cancel()
                with contextlib.suppress(BaseException):
                    await reader_task
            self._writers.discard(writer)
            core.count("open", -1)
            with contextlib.suppress(Exception):
                writer.close()


# ---- threads --------------------------------------------------------------------------------------------------


class ThreadedHost:
    """The thread-per-connection server (module docstring), same behaviour as :class:`AsyncioHost`."""

    POLL_S = 0.2

    def __init__(self, core: HostCore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.core, self.host, self.port = core, host, port
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.host, self.port))
        except OSError as e:
            s.close()
            raise UserError(f"cannot listen on {_peer((self.host, self.port))}: {e.strerror or e}") from None
        s.listen(128)
        s.settimeout(self.POLL_S)
        self._sock = s
        self.port = s.getsockname()[1]
        return self.host, self.port

    def serve(self) -> None:
        """Accept until :meth:`stop` (bounded waits of ``POLL_S``)."""
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            t = threading.Thread(target=self._conversation, args=(conn, addr), daemon=True, name="host-conn")
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()
        self._close_all()

    def stop(self) -> None:
        self._stop.set()
        self._close_all()

    def _close_all(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()

    def _conversation(self, conn: socket.socket, addr) -> None:
        core, cfg = self.core, self.core.config
        peer = _peer(addr)
        if core.stats["open"] >= cfg.max_connections:
            core.count("refused")
            core.log(f"{peer}: refused: {cfg.max_connections} connections already open")
            with contextlib.suppress(OSError):
                conn.sendall(wire.pack(wire.ErrorMsg(f"host is full ({cfg.max_connections} connections)")))
            conn.close()
            return
        core.count("connections")
        core.count("open")
        with self._lock:
            self._conns.add(conn)
        frames: queue.Queue = queue.Queue(cfg.queue_frames)
        done = threading.Event()
        try:
            msg = wire.recv_message(conn, cfg.hello_timeout)
            if not isinstance(msg, wire.Hello):
                raise wire.WireError(f"the first message must be HELLO, got {type(msg).__name__.upper()}")
            rt = core.hello(msg)
            conn.sendall(wire.pack(core.welcome()))
            core.log(f"{peer}: edge {msg.label!r} connected for {rt.name}")

            def read_frames() -> None:
                while not done.is_set():
                    try:
                        item = (wire.recv_message(conn, cfg.idle_timeout), time.perf_counter())
                    except BaseException as e:
                        item = e
                    while not done.is_set():
                        try:
                            frames.put(item, timeout=self.POLL_S)
                            break
                        except queue.Full:
                            continue
                    if isinstance(item, BaseException):
                        return

            reader = threading.Thread(target=read_frames, daemon=True, name="host-reader")
            reader.start()
            while not self._stop.is_set():
                try:
                    item = frames.get(timeout=self.POLL_S)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    raise item
                m, t_arrived = item
                if not isinstance(m, wire.Frame):
                    raise wire.WireError(f"expected FRAME, got {type(m).__name__.upper()}")
                conn.sendall(wire.pack(core.process(rt, m, t_arrived)))
        except wire.Closed as e:
            if e.got:
                core.drop(peer, e)
            elif not self._stop.is_set():
                core.log(f"{peer}: closed by the edge")
        except (UserError, TimeoutError) as e:
            core.drop(peer, e)
            with contextlib.suppress(OSError):
                conn.settimeout(1.0)
                conn.sendall(wire.pack(wire.ErrorMsg(_reason(e))))
        except OSError as e:
            if not self._stop.is_set():
                core.drop(peer, f"connection lost ({type(e).__name__})")
        except Exception as e:  # a bug in processing: log it, keep serving the others
            core.drop(peer, f"internal error {type(e).__name__}: {' '.join(str(e).split())}")
        finally:
            done.set()
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()
            core.count("open", -1)


# ---- running one -----------------------------------------------------------------------------------------------


class HostThread:
    """A host serving from a background thread (tests, benchmarks, ``edgesplit edge --host-inline``).

    ::

        with HostThread(server="asyncio") as h:   # h.port: the port it listens on
            ...
    """

    def __init__(self, server: str = "asyncio", host: str = "127.0.0.1", port: int = 0,
                 config: HostConfig | None = None, log: Callable[[str], None] = stderr_log,
                 core: HostCore | None = None) -> None:
        if server not in SERVERS:
            raise UserError(f"host server {server!r} is not one of {', '.join(SERVERS)}")
        self.server_kind = server
        self.core = core or HostCore(config, log)
        self.host, self.port = host, port
        self._impl: AsyncioHost | ThreadedHost | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> HostThread:
        self._thread = threading.Thread(target=self._run, daemon=True, name="host-main")
        self._thread.start()
        if not self._ready.wait(timeout):
            raise UserError(f"the host did not start within {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            if self.server_kind == "asyncio":
                asyncio.run(self._run_asyncio())
            else:
                impl = ThreadedHost(self.core, self.host, self.port)
                self._impl = impl
                self.host, self.port = impl.start()
                self._ready.set()
                impl.serve()
        except BaseException as e:  # reported by start()
            self._error = e
            self._ready.set()

    async def _run_asyncio(self) -> None:
        impl = AsyncioHost(self.core, self.host, self.port)
        self._impl = impl
        self.host, self.port = await impl.start()
        self._ready.set()
        await impl.serve()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and drop every connection (as if the host were killed)."""
        if self._impl is not None:
            self._impl.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> HostThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(listen: str, server: str = "asyncio", config: HostConfig | None = None,
                  preload: tuple[str, ...] = (), duration: float | None = None,
                  announce: Callable[[str, int], None] | None = None, log: Callable[[str], None] = stderr_log,
                  input_shape: str | None = None, weights: str | None = None) -> HostCore:
    """``edgesplit host``: listen on ``listen`` (HOST:PORT), preload networks, serve until Ctrl-C or ``duration``
    seconds. ``announce(host, port)`` is called once listening."""
    host, port = wire.parse_address(listen, "--listen")
    core = HostCore(config, log)
    for spec in preload:
        rt = core.preload(spec, weights, input_shape)
        log(f"loaded {rt.name} (int16 digest {rt.digest[:12]})")
    h = HostThread(server, host, port, core=core).start()
    if announce is not None:
        announce(h.host, h.port)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while h._thread is not None and h._thread.is_alive():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            h._thread.join(0.5 if left is None else min(0.5, left))
    finally:
        h.stop()
    return core


__all__ = ["SERVERS", "AsyncioHost", "HostConfig", "HostCore", "HostThread", "ThreadedHost", "serve_forever"]
