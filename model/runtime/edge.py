"""The edge process: the network up to the split, the feature coded as the encode unit codes it, sent to the host
through an emulated radio link, one frame after another in the paper's two-stage pipeline.

Preparation (:class:`Prepared`, before the clock starts): the network and its int16 twin (:mod:`model.runtime.nets`),
``images`` labelled test images, the int16 features of every split the run may use (bit-exact golden,
:func:`golden.quantize.run_fast`; ``--edge rtl``: the engine in Verilator, :mod:`model.runtime.rtl`), and their
payloads for every candidate (:mod:`model.runtime.codec`). Frame ``k`` shows image ``k mod images``. The edge's CPU
is not the engine: this work is data, done ahead, and never timed; each frame's edge time and energy come from
the cost model (:mod:`model.runtime.controller`).

The timed run (:class:`Session`, asyncio), per frame ``k``:

1. **inference** (stage 1): the policy picks the candidate (split, codec, QF) at the frame's start; the engine
   "computes" for the modelled ``t_inf`` (the edge waits that long), then hands the feature to stage 2 and
   starts frame ``k+1`` -- frame ``k+1`` computes while frame ``k`` transmits;
2. **encode + transmit** (stage 2): waits until at most ``window`` frames are unanswered (frame ``k - window``
   answered), waits the modelled encode time, then the payload goes through the trace's pacer
   (:meth:`model.runtime.trace.Trace.send`): the link is busy for the airtime, and the FRAME enters the socket
   when its last bit leaves the radio, ``latency`` later;
3. the host answers with the class and its queue / decode / compute times.

Clocks: ``wall`` (default) waits for real, so frames/s include the real socket, the pacing and the real host:
each stage sleeps until its scheduled end (a late wake-up does not move the schedule, so the event loop's timer
granularity does not accumulate); the real world enters through the replies (the window), reconnects and the
host, and frames/s are measured on the replies' arrival. ``simulated`` keeps every stage time on a virtual clock
(no waiting; the host's measured decode + compute time is its virtual service time, one frame at a time per
edge) -- for long traces. The FRAMEs still go to the real host, which still answers each one. ``host_speedup``
(simulated clock only) divides the host's measured time: a server that many times faster than this machine.

Faults: the host gone (closed or reset connection, no reply for ``reply_timeout``) -> reconnect with exponential
backoff (50 ms doubling to 1 s, for at most ``reconnect_timeout`` s), HELLO again, then resend every frame sent and
unanswered (through the pacer again: a retransmission costs airtime and radio energy). The edge accepts exactly one
reply per frame id (a second one, for a frame answered before a reconnect, is counted as a duplicate and dropped),
so every frame gets exactly one answer. An ERROR from the host (it refused the network or a frame) ends the run
with that line.

Results per run (:func:`summarize`): frames, frames/s (steady state: completions after the first over their span),
energy per frame (the cost model's fixed edge energy + the radio energy of every transmission + leakage over the
run), top-1 on the real labels (and agreement with the uncoded int16 network), the splits used, the host's times;
with ``--json`` a per-frame log for ``edgesplit runtime-report``. :func:`run` runs the policy and, with
``baselines``, edge-only, host-only, best-static (:func:`best_static`: the candidates ranked first at the trace's
mean rate, measured there, the best kept) and the oracle, each with the host times the first run measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from golden.errors import UserError
from golden.network import INPUT
from model.runtime import codec, controller, wire
from model.runtime.controller import Candidate, Estimator, PolicyConfig, Predictor
from model.runtime.trace import Trace

CLOCKS = ("wall", "simulated")
EDGES = ("golden", "rtl")
PROBE_BASE = 1 << 63
HEADER_BYTES = wire.PRELUDE_BYTES + wire.CRC_BYTES + 20   # about a FRAME's envelope (counted with count_header)


@dataclass
class EdgeConfig:
    """``edgesplit edge`` options (see ``edgesplit edge --help``)."""

    connect: str = "127.0.0.1:0"
    net: str = "digits"
    data: str | None = None
    weights: str | None = None
    input_shape: str | None = None
    policy: str = "static"
    split: str | None = None
    codec: str = "lossless"
    qf: int | None = None
    budget: float = controller.DEFAULT_BUDGET
    trace: Trace | None = None
    latency_s: float = 0.0
    frames: int = 100
    duration: float | None = None
    images: int | None = None
    clock: str = "wall"
    edge: str = "golden"
    window: int = 4
    policy_config: PolicyConfig = field(default_factory=PolicyConfig)
    baselines: bool = False
    count_header: bool = False
    accuracy_dir: str | None = None
    tech: str | None = None
    counts: str = "auto"
    reconnect_timeout: float = 30.0
    hello_timeout: float = 300.0
    reply_timeout: float = 60.0
    timeout: float = 3600.0
    label: str = "edge"
    probes: int = 3
    check_images: int = 1000
    host_speedup: float = 1.0
    trials: int = 3

    def check(self) -> EdgeConfig:
        from model.runtime.trace import constant

        if self.policy not in controller.POLICIES:
            raise UserError(f"unknown policy {self.policy!r}; allowed: {', '.join(controller.POLICIES)}")
        if self.clock not in CLOCKS:
            raise UserError(f"unknown clock {self.clock!r}; allowed: {', '.join(CLOCKS)}")
        if self.edge not in EDGES:
            raise UserError(f"unknown edge {self.edge!r}; allowed: {', '.join(EDGES)}")
        if self.policy == "static" and self.split is None:
            raise UserError("--policy static needs --split S (and --codec, --qf); or give --policy dynamic")
        if self.policy != "static" and self.split is not None:
            raise UserError(f"--split applies to --policy static, not {self.policy}")
        if self.edge == "rtl" and self.policy != "static":
            raise UserError("--edge rtl runs one static split on the engine in Verilator: give --split (and "
                            "--codec, --qf)")
        for what, v, lo, hi in (("--frames", self.frames, 1, 10_000_000), ("--window", self.window, 1, 4096),
                                ("--latency", self.latency_s, 0.0, 60.0), ("--probes", self.probes, 0, 100),
                                ("--reconnect-timeout", self.reconnect_timeout, 0.01, 86400),
                                ("--reply-timeout", self.reply_timeout, 0.01, 86400),
                                ("--hello-timeout", self.hello_timeout, 0.01, 86400),
                                ("--timeout", self.timeout, 0.01, 10 * 86400),
                                ("--duration", 1.0 if self.duration is None else self.duration, 1e-6, 1e7)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise UserError(f"{what} {v!r} is outside the allowed range {lo:g}..{hi:g}")
        if not 1e-3 <= self.host_speedup <= 1e6:
            raise UserError(f"--host-speedup {self.host_speedup!r} is outside the allowed range 0.001..1e6")
        if self.host_speedup != 1 and self.clock != "simulated":
            raise UserError("--host-speedup applies to --clock simulated (the wall clock measures the real host)")
        if not 0 <= self.trials <= 100:
            raise UserError(f"--trials {self.trials!r} is outside the allowed range 0..100")
        if not 0 <= self.check_images <= 100_000:
            raise UserError(f"--check-images {self.check_images!r} is outside the allowed range 0..100000")
        if self.images is not None and not 1 <= self.images <= 100_000:
            raise UserError(f"--images {self.images!r} is outside the allowed range 1..100000")
        self.policy_config.check()
        wire.parse_address(self.connect, "--connect")
        if self.trace is None:
            self.trace = constant(2.0)
        return self

    @property
    def n_images(self) -> int:
        return self.images if self.images is not None else min(self.frames, 64)


# ---- preparation ----------------------------------------------------------------------------------------------


class Prepared:
    """The network, images, features and payloads of a run (module docstring), shared by its policies."""

    def __init__(self, cfg: EdgeConfig, progress: Callable[[str], None] | None = None,
                 policies: tuple[str, ...] | None = None) -> None:
        from golden.network import load_network
        from model.runtime import nets

        say = progress or (lambda s: None)
        self.cfg = cfg
        net = load_network(cfg.net, weights=cfg.weights, input_shape=cfg.input_shape)   # cheap: checks first
        self.net = net
        policies = policies or (cfg.policy, *(controller.BASELINES if cfg.baselines else ()))
        cands, self.accuracy_note = controller.candidates(net, cfg.budget, cfg.accuracy_dir)
        self.fixed = None
        if cfg.policy == "static":
            self.fixed = controller.static_candidate(net, cfg.split, cfg.codec, cfg.qf, cfg.budget, cfg.accuracy_dir)
        say(f"loading {cfg.net} and its int16 network")
        self.rt = nets.load(cfg.net, cfg.data, cfg.weights, cfg.input_shape)
        study, _ = controller.study_qfs(net, cfg.budget, cfg.accuracy_dir)
        if study and cfg.check_images > 0:
            from model.runtime import qfcheck

            checked = qfcheck.check(self.rt, study, cfg.budget, cfg.data, cfg.check_images, say)
            cands, _ = controller.candidates(net, cfg.budget, cfg.accuracy_dir, checked)
            self.accuracy_note += (f"; QFs checked for the encode unit's codec on {cfg.check_images} training "
                                   f"images (build/runtime/{net.name}_qf.json)")
            if cfg.policy == "static":
                self.fixed = controller.static_candidate(net, cfg.split, cfg.codec, cfg.qf, cfg.budget,
                                                         cfg.accuracy_dir, checked)
        needs_all = any(p != "static" for p in policies)
        self.candidates = cands if needs_all else []
        use = list(self.candidates) + ([self.fixed] if self.fixed and self.fixed not in self.candidates else [])
        self.use = use
        splits = sorted({c.split for c in use}, key=lambda s: net.split(s).index)
        say(f"loading {cfg.n_images} images")
        self.x, self.y = load_images(self.rt, cfg.data, cfg.n_images)
        say("computing the int16 features (golden)")
        self.features, self.reference = features(self.rt, self.x, splits)
        self.rtl: dict[str, Any] | None = None
        if cfg.edge == "rtl":
            from model.runtime import rtl

            assert self.fixed is not None
            say(f"running the edge part up to {self.fixed.split} on the engine in Verilator ({len(self.x)} images)")
            self.rtl = rtl.run_images(self.rt, self.x, self.fixed, progress=say)
        say(f"coding {len(use)} candidate(s) x {len(self.x)} images")
        self.payloads: dict[tuple, list[bytes]] = {}
        for c in use:
            self.payloads[c.key] = [self._encode(c, i) for i in range(len(self.x))]
        from model.runtime.controller import CostTable

        self.costs = CostTable(net, cfg.tech, cfg.counts)
        for c in use:
            self.costs.add(c, float(np.mean([len(p) for p in self.payloads[c.key]])))

    def _encode(self, c: Candidate, i: int) -> bytes:
        if self.rtl is not None and c == self.fixed:
            return self.rtl["payloads"][i]
        v = self.features[c.split][i]
        if c.split == INPUT:
            return codec.encode_image(v, c.codec, c.qf).payload
        return codec.encode_feature(v, c.codec, c.qf).payload

    def frame(self, k: int, c: Candidate, edge_time: float = 0.0, flags: int = 0, frame_id: int | None = None
              ) -> wire.Frame:
        i = k % len(self.x)
        return wire.Frame(k if frame_id is None else frame_id, self.rt.name, c.split, c.codec, c.qf,
                          "image" if c.split == INPUT else "feature", self.rt.frac(c.split),
                          self.rt.sent_shape(c.split), self.payloads[c.key][i], edge_time, flags)


def load_images(rt, data: str | None, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` labelled test images, evenly spaced (the ImageNet networks without ``--data``: the sample photos,
    unlabelled)."""
    from model.accuracy import load_dataset

    net = rt.net
    if net.dataset == "imagenet" and data is None:
        from golden.quantize import sample_images

        x = sample_images(net, n)
        return x, None
    x, y = load_dataset(net, data, "test", n)
    return x, y


def features(rt, x: np.ndarray, splits: list[str], batch: int = 16) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The int16 feature of every split in ``splits`` per image (uint8 ``[N, H, W, C]`` at ``input``) and the
    uncoded int16 network's class per image."""
    from golden.quantize import run_fast

    qnet, net = rt.qnet, rt.net
    want = {s: net.split(s).output for s in splits if s != INPUT}
    out: dict[str, list[np.ndarray]] = {s: [] for s in want}
    ref = []
    for i in range(0, len(x), batch):
        env = run_fast(qnet, qnet.quantize_input(x[i:i + batch]), return_all=True)
        assert isinstance(env, dict)
        for s, name in want.items():
            out[s].append(env[name])
        ref.append(np.asarray(env[net.layers[-1].name]).reshape(len(x[i:i + batch]), -1).argmax(1))
    feats = {s: np.concatenate(v) for s, v in out.items()}
    if INPUT in splits:
        feats[INPUT] = rt.norm.to_u8(x)
    return feats, np.concatenate(ref)


# ---- clocks ----------------------------------------------------------------------------------------------------


class WallClock:
    def __init__(self) -> None:
        self.base = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.base

    def at_least(self, t: float) -> float:
        return max(t, self.now())

    async def sleep_until(self, t: float) -> None:
        d = t - self.now()
        if d > 0:
            await asyncio.sleep(d)


class VirtualClock:
    def now(self) -> float:
        return -math.inf

    def at_least(self, t: float) -> float:
        return t

    async def sleep_until(self, t: float) -> None:
        await asyncio.sleep(0)


# ---- one run ------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FrameRec:
    """One frame's life (module docstring); times on the run's clock (s)."""

    id: int
    image: int
    cand: Candidate
    est_mbps: float
    t_start: float
    t_inf_end: float = 0.0
    t_tx0: float = 0.0
    t_tx1: float = 0.0
    deliver: float = 0.0
    t_reply: float = 0.0
    nbytes: int = 0
    radio_j: float = 0.0
    sent: bool = False
    sent_gen: int | None = None
    sends: int = 0
    reply: wire.Reply | None = None
    taken: asyncio.Future | None = None
    done: asyncio.Future | None = None


class Fatal(Exception):
    pass


class Session:
    """One policy's run over the trace (module docstring)."""

    def __init__(self, prep: Prepared, policy_name: str, progress: Callable[[str], None] | None = None,
                 cfg: EdgeConfig | None = None, fixed: Candidate | None = None,
                 host_times: dict[tuple, float] | None = None) -> None:
        """``cfg``: this run's settings (default the preparation's; the network, images and candidates are
        the preparation's). ``fixed``: the candidate of a static policy (default the preparation's);
        ``host_times``: the host's time per candidate already measured (else the probes measure it)."""
        cfg = (cfg or prep.cfg).check()
        self.prep, self.cfg, self.policy_name = prep, cfg, policy_name
        self.progress = progress
        assert cfg.trace is not None
        self.trace = cfg.trace
        self.predictor = Predictor(prep.costs, HEADER_BYTES if cfg.count_header else 0)
        self.known_host = dict(host_times or {})
        self.predictor.host.update(self.known_host)
        fixed = fixed or prep.fixed
        cands = prep.candidates if policy_name != "static" else [fixed]
        self.policy = controller.make_policy(policy_name, self.predictor, cands, self.trace, cfg.policy_config,
                                             fixed)
        self.est = Estimator(cfg.policy_config.history, cfg.policy_config.initial_mbps)
        self.frames: list[FrameRec] = []
        self.resend: deque[FrameRec] = deque()
        self.resend_ids: set[int] = set()
        self.slot: FrameRec | None = None
        self.gen = 0
        self.connected = False
        self.reconnects = 0
        self.duplicates = 0
        self.resent = 0
        self.host_free = 0.0
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task | None = None
        self.probe_waiters: dict[int, asyncio.Future] = {}
        self.readers: set[asyncio.Task] = set()
        self.host_label = ""
        self.log: list[str] = []
        self._last_progress = 0.0

    # -- connection -------------------------------------------------------------------------------------------

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = wire.parse_address(self.cfg.connect, "--connect")
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5.0)
        try:
            writer.write(wire.pack(wire.Hello(self.prep.rt.name, self.prep.rt.digest, self.cfg.label)))
            await writer.drain()
            msg = await wire.read_message(reader, self.cfg.hello_timeout)
        except BaseException:
            writer.close()
            raise
        if isinstance(msg, wire.ErrorMsg):
            writer.close()
            raise Fatal(f"the host refused the edge: {msg.message}")
        if not isinstance(msg, wire.Welcome):
            writer.close()
            raise Fatal(f"the host answered HELLO with {type(msg).__name__.upper()}, not WELCOME")
        self.host_label = f"{msg.label} ({msg.precision})"
        return reader, writer

    async def connect(self, first: bool) -> None:
        """Connect (and HELLO) with exponential backoff for at most ``reconnect_timeout`` s."""
        deadline = time.monotonic() + self.cfg.reconnect_timeout
        delay, attempts, last = 0.05, 0, ""
        while True:
            attempts += 1
            try:
                reader, writer = await self._open()
                break
            except Fatal:
                raise
            except (OSError, TimeoutError, wire.Closed, wire.WireError, asyncio.IncompleteReadError) as e:
                last = " ".join(str(e).split()) or type(e).__name__
            if time.monotonic() + delay > deadline:
                raise Fatal(f"cannot reach the host at {self.cfg.connect} after {attempts} attempt(s) in "
                            f"{self.cfg.reconnect_timeout:g} s: {last}")
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)
        self.gen += 1
        self.writer = writer
        self.connected = True
        self.reader_task = asyncio.create_task(self._read_replies(reader, self.gen))
        self.readers.add(self.reader_task)
        if not first:
            self.reconnects += 1
            self._note(f"reconnected to the host after {attempts} attempt(s)")
            pending = [r for r in self.frames if r.sent and not r.done.done() and r.sent_gen != self.gen
                       and r.id not in self.resend_ids]
            for r in sorted(pending, key=lambda r: r.id):
                self.resend.append(r)
                self.resend_ids.add(r.id)
            self.wake.set()

    def _note(self, line: str) -> None:
        self.log.append(line)
        if self.progress is not None:
            self.progress(line)

    async def _read_replies(self, reader: asyncio.StreamReader, gen: int) -> None:
        try:
            while True:
                try:
                    msg = await wire.read_message(reader, self.cfg.reply_timeout, idle=self.cfg.reply_timeout)
                except wire.Idle:
                    if self._waiting():
                        raise
                    continue   # nothing unanswered: an idle host is fine
                if isinstance(msg, wire.Reply):
                    self._on_reply(msg)
                elif isinstance(msg, wire.ErrorMsg):
                    self._fail(Fatal(f"the host dropped the edge: {msg.message}"))
                    return
                else:
                    self._fail(Fatal(f"the host sent {type(msg).__name__.upper()} instead of REPLY"))
                    return
        except (wire.Closed, OSError, TimeoutError, wire.WireError, asyncio.IncompleteReadError) as e:
            if gen == self.gen:
                self._note(f"lost the host ({_why(e)}); reconnecting")
                await self._down()
        except asyncio.CancelledError:
            pass

    def _waiting(self) -> bool:
        return any(r.sent and not r.done.done() for r in self.frames[-self.cfg.window - 2:]) or bool(self.probe_waiters)

    async def _down(self) -> None:
        self.connected = False
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        self.writer = None
        try:
            await self.connect(first=False)
        except Fatal as e:
            self._fail(e)

    def _fail(self, e: BaseException) -> None:
        if not self.fatal.done():
            self.fatal.set_exception(e)

    def _write(self, data: bytes) -> int | None:
        if not self.connected or self.writer is None:
            return None
        try:
            self.writer.write(data)
        except (OSError, RuntimeError):
            return None
        return self.gen

    # -- replies ----------------------------------------------------------------------------------------------

    def _on_reply(self, r: wire.Reply) -> None:
        if r.frame_id >= PROBE_BASE:
            fut = self.probe_waiters.pop(r.frame_id, None)
            if fut is not None and not fut.done():
                fut.set_result(r)
            return
        if r.frame_id >= len(self.frames):
            self._fail(Fatal(f"the host answered frame {r.frame_id}, which was never sent"))
            return
        rec = self.frames[r.frame_id]
        if rec.done.done():
            self.duplicates += 1
            return
        if isinstance(self.clock, WallClock):
            t = self.clock.now()
        else:
            start = max(rec.deliver, self.host_free)
            self.host_free = start + (r.decode_s + r.compute_s) / self.cfg.host_speedup
            t = self.host_free + self.cfg.latency_s
        rec.reply, rec.t_reply = r, t
        rec.done.set_result(t)
        self.predictor.observe_host(rec.cand, (r.decode_s + r.compute_s) / self.cfg.host_speedup)
        self.answered += 1
        self._show(rec)
        if self.answered == self.total:
            self.finished.set()

    def _show(self, rec: FrameRec, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < 0.25:
            return
        self._last_progress = now
        span = rec.t_reply - self.frames[0].t_reply if self.answered > 1 else 0.0
        fps = (self.answered - 1) / span if span > 0 else 0.0
        self.progress(f"[{self.policy_name}] frame {self.answered}/{self.total or self.cfg.frames}  {rec.cand.label}  "
                      f"trace {self.trace.rate_mbps(rec.t_tx0):.3g} Mb/s est {rec.est_mbps:.3g}  {fps:.1f} fps")

    # -- probes -----------------------------------------------------------------------------------------------------

    async def probe(self) -> None:
        """Probe frames (not counted) to measure the host's time per candidate before the run."""
        seen: set[tuple] = set()
        cands = self.policy.cands if self.policy_name != "static" else [self.policy.fixed]
        n = 0
        for c in cands:
            if c.key in seen or self.cfg.probes == 0 or c.key in self.known_host:
                continue
            seen.add(c.key)
            times = []
            for i in range(self.cfg.probes + 1):    # the first one warms the host's path up: not counted
                fid = PROBE_BASE + n
                n += 1
                fut = asyncio.get_running_loop().create_future()
                self.probe_waiters[fid] = fut
                if self._write(wire.pack(self.prep.frame(i, c, 0.0, wire.FLAG_PROBE, fid))) is None:
                    raise Fatal("lost the host while probing it")
                r = await asyncio.wait_for(fut, self.cfg.reply_timeout)
                times.append((r.decode_s + r.compute_s) / self.cfg.host_speedup)
            self.predictor.host[c.key] = float(np.median(times[1:]))

    # -- the pipeline ----------------------------------------------------------------------------------------------

    async def _engine(self) -> None:
        t = 0.0
        loop = asyncio.get_running_loop()
        for k in range(self.cfg.frames):
            if self.cfg.duration is not None and t >= self.cfg.duration and k > 0:
                break
            cand, est = self.policy.decide(k, t, self.est)
            rec = FrameRec(k, k % len(self.prep.x), cand, est, t)
            rec.taken, rec.done = loop.create_future(), loop.create_future()
            self.frames.append(rec)
            t_end = t + self.prep.costs[cand].t_inf
            await self.clock.sleep_until(t_end)
            rec.t_inf_end = t_end
            self.slot = rec
            self.wake.set()
            t = await rec.taken
        self.total = len(self.frames)
        if self.answered == self.total:
            self.finished.set()
        self.wake.set()

    async def _wait_for(self, fut: asyncio.Future) -> None:
        """Until ``fut`` is done, waking for resends (which may be what ``fut`` waits for)."""
        while not fut.done():
            if self.resend and self.connected:
                await self._resend_one()
                continue
            self.wake.clear()
            w = asyncio.ensure_future(self.wake.wait())
            try:
                await asyncio.wait({fut, w}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            finally:
                w.cancel()

    async def _resend_one(self) -> None:
        rec = self.resend.popleft()
        self.resend_ids.discard(rec.id)
        if rec.done.done():
            return
        self.resent += 1
        self.t_link = await self._transmit(rec, self.clock.at_least(self.t_link), resend=True)

    async def _transmitter(self) -> None:
        self.t_link = 0.0
        sent_new = 0
        while self.total is None or sent_new < self.total:
            if self.resend and self.connected:
                await self._resend_one()
                continue
            if self.slot is None:
                self.wake.clear()
                if self.slot is None and not (self.resend and self.connected):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), 1.0)
                continue
            rec, self.slot = self.slot, None
            j = rec.id - self.cfg.window
            t = max(self.t_link, rec.t_inf_end)
            if j >= 0:
                await self._wait_for(self.frames[j].done)
                t = max(t, self.frames[j].done.result())
            t = max(t, self.t_link)
            rec.taken.set_result(t)
            self.t_link = await self._transmit(rec, t)
            sent_new += 1
        while not self.finished.is_set():   # resends after the last new frame
            await self._wait_for(asyncio.ensure_future(self.finished.wait()))

    async def _transmit(self, rec: FrameRec, t: float, resend: bool = False) -> float:
        cost = self.prep.costs[rec.cand]
        t0 = t if resend else t + cost.t_enc
        await self.clock.sleep_until(t0)
        payload = self.prep.payloads[rec.cand.key][rec.image]
        n = len(payload) + (HEADER_BYTES if self.cfg.count_header else 0)
        t1, energy = self.trace.send(t0, n)
        await self.clock.sleep_until(t1)
        rec.radio_j += energy
        rec.sends += 1
        self.est.add(t1, n, t1 - t0)
        if not resend:
            rec.t_tx0, rec.t_tx1, rec.nbytes = t0, t1, len(payload)
            self.prep.costs.observe_bytes(rec.cand, len(payload))
        deliver = t1 + self.cfg.latency_s
        data = wire.pack(self.prep.frame(rec.id, rec.cand, t1, wire.FLAG_RESENT if resend else 0))
        if self.cfg.latency_s > 0 and isinstance(self.clock, WallClock):
            rec.sent = False
            self.delay_line.put_nowait((deliver, rec, data))
        else:
            self._deliver(rec, data, deliver)
        return t1

    def _deliver(self, rec: FrameRec, data: bytes, deliver: float) -> None:
        rec.deliver = deliver
        rec.sent_gen = self._write(data)
        rec.sent = True

    async def _delay(self) -> None:
        while True:
            deliver, rec, data = await self.delay_line.get()
            await self.clock.sleep_until(deliver)
            self._deliver(rec, data, deliver)

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        self.fatal: asyncio.Future = loop.create_future()
        self.finished = asyncio.Event()
        self.wake = asyncio.Event()
        self.delay_line: asyncio.Queue = asyncio.Queue()
        self.answered = 0
        self.total: int | None = None
        self.clock: WallClock | VirtualClock = VirtualClock()
        tasks: list[asyncio.Task] = []
        wall0 = time.perf_counter()
        try:
            await self.connect(first=True)
            await self.probe()
            self.clock = WallClock() if cfg.clock == "wall" else VirtualClock()
            tasks = [asyncio.create_task(self._engine()), asyncio.create_task(self._transmitter()),
                     asyncio.create_task(self._delay())]
            fin = asyncio.ensure_future(self.finished.wait())
            pending = {fin, self.fatal, *tasks}
            deadline = loop.time() + cfg.timeout
            while not fin.done():
                done, pending = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()),
                                                   return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    raise Fatal(f"the run did not finish within --timeout {cfg.timeout:g} s "
                                f"({self.answered} of {self.total or cfg.frames} frames answered)")
                for d in done:
                    if d is not fin and d.done() and d.exception() is not None:
                        raise d.exception()
        except Fatal as e:
            raise UserError(str(e)) from None
        finally:
            for t in [*tasks, *self.readers]:
                t.cancel()
            for t in [*tasks, *self.readers]:
                with contextlib.suppress(BaseException):
                    await t
            if self.writer is not None:
                with contextlib.suppress(Exception):
                    self.writer.close()
        if self.frames:
            self._show(self.frames[-1], force=True)
        return summarize(self, time.perf_counter() - wall0)


def _why(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "no reply within --reply-timeout"
    return " ".join(str(e).split()) or type(e).__name__


# ---- results ------------------------------------------------------------------------------------------------------


def summarize(s: Session, wall_s: float) -> dict[str, Any]:
    """The run's summary and per-frame log (module docstring)."""
    prep, cfg = s.prep, s.cfg
    recs = s.frames
    costs = prep.costs
    ends = sorted(r.t_reply for r in recs)
    span = ends[-1] - ends[0] if len(ends) > 1 else 0.0
    fps = (len(ends) - 1) / span if span > 0 else math.nan
    fixed = radio = leak = 0.0
    prev = None
    for r in recs:
        c = costs[r.cand]
        period = r.t_tx1 - (prev if prev is not None else r.t_start)
        prev = r.t_tx1
        fixed += c.e_fixed
        radio += r.radio_j
        leak += c.leak_w * period
    n = len(recs)
    labels = prep.y
    got = np.array([r.reply.label for r in recs])
    imgs = np.array([r.image for r in recs])
    top1 = float(np.mean(got == labels[imgs])) if labels is not None else None
    agree = float(np.mean(got == prep.reference[imgs]))
    ref_top1 = float(np.mean(prep.reference[imgs] == labels[imgs])) if labels is not None else None
    used = Counter(r.cand.label for r in recs)
    host = np.array([r.reply.decode_s + r.reply.compute_s for r in recs])
    queue = np.array([r.reply.queue_s for r in recs])
    lat = np.array([r.t_reply - r.t_start for r in recs])
    out: dict[str, Any] = {
        "policy": s.policy_name, "net": prep.rt.name, "trace": s.trace.name, "trace_mean_mbps": s.trace.mean_mbps(),
        "clock": cfg.clock, "edge": cfg.edge, "window": cfg.window, "latency_s": cfg.latency_s,
        "frames": n, "answered": sum(1 for r in recs if r.reply is not None),
        "unique_answers": len({r.id for r in recs if r.reply is not None}), "duplicates_dropped": s.duplicates,
        "resent": s.resent, "reconnects": s.reconnects, "switches": s.policy.switches,
        "duration_s": ends[-1] - recs[0].t_start if recs else 0.0, "wall_s": wall_s,
        "fps": fps, "energy_per_frame_j": (fixed + radio + leak) / n,
        "energy_breakdown_j": {"edge_fixed": fixed / n, "radio": radio / n, "leakage": leak / n},
        "top1": top1, "top1_uncoded_int16": ref_top1, "agreement_with_uncoded": agree,
        "budget": cfg.budget, "accuracy_note": prep.accuracy_note,
        "splits_used": dict(used.most_common()),
        "bytes_mean": float(np.mean([r.nbytes for r in recs])),
        "host": {"label": s.host_label, "compute_s_mean": float(host.mean()), "compute_s_p95": float(
            np.percentile(host, 95)), "queue_s_mean": float(queue.mean())},
        "reply_latency_s": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))},
        "log": s.log,
    }
    if prep.rtl is not None:
        out["rtl"] = {k: v for k, v in prep.rtl.items() if k != "payloads"}
    if s.policy_name != "dynamic" and s.policy_name != "oracle" and len(used) == 1 and s.trace.constant:
        out["model"] = model_comparison(prep, recs[0].cand, s.trace.mbps[0], s.trace.power_w[0], out)
    out["per_frame"] = {
        "t_start": [r.t_start for r in recs], "t_tx0": [r.t_tx0 for r in recs], "t_tx1": [r.t_tx1 for r in recs],
        "t_reply": [r.t_reply for r in recs], "split_index": [r.cand.index for r in recs],
        "candidate": [r.cand.label for r in recs], "qf": [r.cand.qf for r in recs], "bytes": [r.nbytes for r in recs],
        "est_mbps": [r.est_mbps for r in recs], "trace_mbps": [s.trace.rate_mbps(r.t_tx0) for r in recs],
        "radio_j": [r.radio_j for r in recs], "sends": [r.sends for r in recs],
        "label": [int(r.reply.label) for r in recs], "image": [r.image for r in recs],
        "host_s": host.tolist(),
    }
    out["splits"] = list(prep.net.split_names)
    return out


def model_comparison(prep: Prepared, c: Candidate, mbps: float, power_w: float, run: dict[str, Any]) -> dict:
    """The cost model's frames/s and energy per frame for this split, codec, QF and constant rate: with its own
    compression ratio, and with the bytes this run sent; and the run's ratio to each."""
    out = {}
    for key, mean in (("model", None), ("model_at_measured_bytes", run["bytes_mean"])):
        r = prep.costs.model_query(c, mbps, power_w, mean)
        out[key] = {"fps": r.fps, "energy_per_frame_j": r.energy_per_frame_j, "transmitted_bytes": r.transmitted_bytes,
                    "bottleneck": r.bottleneck, "ratio_source": r.ratio_source, "counts_source": r.counts_source}
        out[key]["measured_over_model_fps"] = run["fps"] / r.fps
        out[key]["measured_over_model_energy"] = run["energy_per_frame_j"] / r.energy_per_frame_j
    return out


def reach(address: str, seconds: float) -> None:
    """Wait until a TCP connection to ``address`` succeeds (backoff as for reconnects, at most ``seconds``), so an
    unreachable host is reported before the preparation's work; UserError otherwise."""
    import socket

    host, port = wire.parse_address(address, "--connect")
    deadline = time.monotonic() + seconds
    delay, attempts = 0.05, 0
    while True:
        attempts += 1
        try:
            socket.create_connection((host, port), timeout=min(5.0, max(0.1, seconds))).close()
            return
        except OSError as e:
            last = e.strerror or str(e)
        if time.monotonic() + delay > deadline:
            raise UserError(f"cannot reach the host at {address} after {attempts} attempt(s) in {seconds:g} s: {last}")
        time.sleep(delay)
        delay = min(2 * delay, 1.0)


def run(cfg: EdgeConfig, progress: Callable[[str], None] | None = None,
        prepared: Prepared | None = None) -> dict[str, Any]:
    """``edgesplit edge``: prepare, run the policy (and the baselines with ``cfg.baselines``) against the host."""
    cfg.check()
    if prepared is None:
        from golden.network import load_network

        net = load_network(cfg.net, weights=cfg.weights, input_shape=cfg.input_shape)   # cheap checks first
        if cfg.policy == "static":
            controller.static_candidate(net, cfg.split, cfg.codec, cfg.qf, cfg.budget, cfg.accuracy_dir)
        reach(cfg.connect, cfg.reconnect_timeout)
    prep = prepared or Prepared(cfg, progress)
    names = [cfg.policy, *(b for b in controller.BASELINES if cfg.baselines and b != cfg.policy)]
    first = Session(prep, names[0], progress, cfg=cfg)
    runs = [asyncio.run(first.run())]
    host = first.predictor.host_times()
    for name in names[1:]:
        fixed, note = None, None
        if name == "best-static":
            fixed, note = best_static(prep, cfg, host, progress)
        s = Session(prep, name, progress, cfg=cfg, fixed=fixed, host_times=host)
        runs.append(asyncio.run(s.run()))
        if note:
            runs[-1]["best_static_trials"] = note
    main = runs[0]
    main["baselines"] = runs[1:]
    main["candidates"] = [c.label for c in prep.use]
    main["host_speedup"] = cfg.host_speedup
    main["host_times_s"] = {c.label: host[c.key] for c in prep.use if c.key in host}
    main["policy_config"] = {k: getattr(cfg.policy_config, k) for k in ("objective", "mix", "hysteresis", "dwell",
                                                                        "history", "tie")}
    return main


def best_static(prep: Prepared, cfg: EdgeConfig, host: dict[tuple, float],
                progress: Callable[[str], None] | None = None) -> tuple[Candidate, list[dict]]:
    """The best static candidate for the trace's mean rate: the ``trials`` candidates the cost model (with the
    host's measured times) ranks first at that rate, each run for a short while on a constant link at the mean
    rate (same clock, same host), and the one with the most measured frames/s (least energy within 2%)."""
    import dataclasses

    from model.runtime.trace import constant

    assert cfg.trace is not None
    mean = cfg.trace.mean_mbps()
    pred = Predictor(prep.costs, HEADER_BYTES if cfg.count_header else 0)
    pred.host.update(host)
    ranked = sorted(prep.candidates, key=lambda c: (-pred.predict(c, mean).fps, pred.predict(c, mean).energy))
    if cfg.trials == 0 or len(ranked) == 1:
        return ranked[0], []
    trial_cfg = dataclasses.replace(cfg, trace=constant(mean), frames=min(cfg.frames, 300), duration=None,
                                    policy="static", split=None)
    trials = []
    for c in ranked[:cfg.trials]:
        r = asyncio.run(Session(prep, "static", progress, cfg=dataclasses.replace(trial_cfg, split=c.split),
                                fixed=c, host_times=host).run())
        trials.append({"candidate": c.label, "fps": r["fps"], "energy_per_frame_j": r["energy_per_frame_j"],
                       "predicted_fps": pred.predict(c, mean).fps})
    top = max(t["fps"] for t in trials)
    near = [t for t in trials if t["fps"] >= 0.98 * top]
    pick = min(near, key=lambda t: t["energy_per_frame_j"])["candidate"]
    return next(c for c in ranked if c.label == pick), trials


__all__ = ["CLOCKS", "EDGES", "EdgeConfig", "Prepared", "Session", "run"]
