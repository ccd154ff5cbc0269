"""Where long runs go: the one module that knows about the distributed engine (Dask distributed).

Every long edgesplit run (``make sim``'s programs, the accuracy study's shards, ``edgesplit weights``, sweeps,
``make synth SYNTH=full``'s blocks) is a list of independent pieces. :func:`run_pieces` runs them

* serially in this process, without importing Dask at all, for ``--workers 1`` / ``EDGESPLIT_WORKERS=1``
  (today's path, exactly) or when there is a single piece;
* on a ``distributed.LocalCluster`` started on demand with N single-threaded worker processes, for
  ``--workers N`` / ``EDGESPLIT_WORKERS=N`` (the default: as many workers as this machine has cores);
* on an existing cluster, for ``--scheduler tcp://HOST:PORT`` / ``EDGESPLIT_SCHEDULER`` (see docs/cluster.md).

Results come back in the order of the pieces, whatever order they finish in, so a parallel run merges to the
same result as the serial one. A piece that raises stops the run with one line naming the piece and its error
(:class:`PieceFailed`, a ``UserError``); a worker that dies is replaced by the cluster and its piece rerun
(Dask's own bookkeeping: ``distributed.scheduler.allowed-failures``). A progress bar (tqdm, on stderr) counts
pieces done / total.

What crosses the wire: the piece function by reference (a module-level function of this repository, which the
workers import from their own checkout) and its arguments (paths, names, small arrays), never Verilator
binaries: each worker builds or reuses its own cached model (``sim.runner``'s stamp cache under ``build/``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from golden import malloc
from golden.errors import UserError

WORKERS_ENV = "EDGESPLIT_WORKERS"
SCHEDULER_ENV = "EDGESPLIT_SCHEDULER"
CONNECT_TIMEOUT_S = 20.0   # how long to wait for an existing scheduler to answer


class PieceFailed(UserError):
    """A piece of a distributed run raised: the message names the piece and its own one-line error."""


@dataclass(frozen=True)
class ClusterSpec:
    """Where pieces run: ``workers`` local worker processes (1: serially, here) or an existing ``scheduler``."""

    workers: int = 1
    scheduler: str | None = None

    @property
    def serial(self) -> bool:
        return self.scheduler is None and self.workers == 1

    def describe(self) -> str:
        if self.scheduler:
            return f"the Dask scheduler at {self.scheduler}"
        return "serially (1 worker)" if self.workers == 1 else f"{self.workers} local Dask workers"


def _parse_workers(value: str, what: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"{what} {value!r}: a whole number of workers, 1 or more (1 = serial, no Dask)")
    return n


def _check_scheduler(value: str, what: str) -> str:
    if not value.startswith(("tcp://", "tls://", "inproc://", "ucx://")) or ":" not in value.split("://", 1)[1]:
        raise UserError(f"{what} {value!r}: a Dask scheduler address, tcp://HOST:PORT")
    return value


def resolve(workers: int | str | None = None, scheduler: str | None = None) -> ClusterSpec:
    """The cluster of a run: the command line's ``--workers`` / ``--scheduler`` first, then ``EDGESPLIT_WORKERS``
    / ``EDGESPLIT_SCHEDULER``, then as many local workers as cores."""
    if scheduler is not None:
        return ClusterSpec(workers=0, scheduler=_check_scheduler(scheduler, "--scheduler"))
    if workers is not None:
        return ClusterSpec(workers=_parse_workers(str(workers), "--workers"))
    if os.environ.get(SCHEDULER_ENV):
        return ClusterSpec(workers=0, scheduler=_check_scheduler(os.environ[SCHEDULER_ENV], SCHEDULER_ENV))
    if os.environ.get(WORKERS_ENV):
        return ClusterSpec(workers=_parse_workers(os.environ[WORKERS_ENV], WORKERS_ENV))
    return ClusterSpec(workers=max(1, os.cpu_count() or 1))


def add_arguments(parser) -> None:
    """``--workers N`` and ``--scheduler ADDR`` on an argparse parser (read back with :func:`from_args`)."""
    parser.add_argument("--workers", default=None, metavar="N",
                        help=f"run the pieces on N local Dask worker processes (1: serially, no Dask; default "
                             f"${WORKERS_ENV} or one per core)")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help=f"run the pieces on an existing Dask cluster (default ${SCHEDULER_ENV}; "
                             f"docs/cluster.md)")


def from_args(args) -> ClusterSpec:
    return resolve(getattr(args, "workers", None), getattr(args, "scheduler", None))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="piece", file=sys.stderr, disable=quiet or total <= 1,
                dynamic_ncols=True, leave=False)


# The environment each worker process starts with (Dask's nanny sets it before spawning). Dask's own default,
# MALLOC_TRIM_THRESHOLD_=65536, also turns off glibc's dynamic mmap threshold, so every large numpy temporary is
# mapped, faulted in and unmapped again: the accuracy study's pieces spent 183 s in sys against 9 s serially
# (docs/profile-accuracy.md). One BLAS/OpenMP thread per worker: a worker is one core's worth of pieces.
WORKER_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": "134217728", "MALLOC_MMAP_THRESHOLD_": "33554432",
                  "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                  WORKERS_ENV: "1"}


def _local_cluster(workers: int):
    import dask
    from distributed import LocalCluster

    # one thread per worker process: pieces are CPU-bound Python/Verilator; the repository's own code is
    # imported by each worker from this checkout (the workers inherit cwd, sys.path and the environment)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                            silence_logs=40)


def _worker_env() -> None:
    """Run on each worker as it starts a piece: the pieces themselves must never fan out again."""
    os.environ[WORKERS_ENV] = "1"
    os.environ.pop(SCHEDULER_ENV, None)
    malloc.tune()


def _call(fn, item):
    _worker_env()
    return fn(item)


def run_pieces(fn: Callable[[Any], Any], items: Sequence[Any], spec: ClusterSpec | None = None, *,
               desc: str = "pieces", labels: Sequence[str] | None = None, quiet: bool = False,
               on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``[fn(item) for item in items]``, on ``spec``'s cluster (default :func:`resolve`); results in the order of
    ``items``. ``fn`` must be a module-level function (it crosses the wire by reference). ``labels`` name the
    pieces in errors (default: ``desc`` and the index). ``on_result(i, result)``: called here, in this process,
    as each piece's result comes back (in the order they finish), before the next is awaited."""
    items = list(items)
    spec = spec or resolve()
    labels = list(labels) if labels is not None else [f"{desc} {i + 1}/{len(items)}" for i in range(len(items))]
    if spec.serial or (len(items) <= 1 and spec.scheduler is None):
        out = []
        with _progress(len(items), desc, quiet) as bar:
            for label, item in zip(labels, items, strict=True):
                try:
                    out.append(fn(item))
                except UserError as exc:
                    raise PieceFailed(f"{label}: {exc}") from exc
                if on_result is not None:
                    on_result(len(out) - 1, out[-1])
                bar.update(1)
        return out
    return _run_dask(fn, items, spec, desc=desc, labels=labels, quiet=quiet, on_result=on_result)


_SESSION: dict[str, Any] = {}
"""This process's local cluster: ``{"spec": ClusterSpec, "client": Client, "cluster": LocalCluster}``. A run of
several steps (the accuracy study's reference shards then its splits; ``edgesplit weights``' evaluations per QF
candidate) reuses it: the workers start once and keep what their pieces loaded (the study's network and images).
Closed when another cluster is asked for, by :func:`close`, or when the process exits. (An existing cluster's
workers live on their own: a run connects to its scheduler and disconnects at the end.)"""


_WARMING: dict[str, Any] = {}
"""A local cluster being started in the background by :func:`warm`: ``{"thread": Thread}``."""


def warm(spec: ClusterSpec, fn: Callable[[Any], Any] | None = None, item: Any = None) -> None:
    """Start ``spec``'s local cluster in a background thread, and run ``fn(item)`` once on each of its workers
    (loading what the pieces will need), while this process goes on with work of its own: the next
    :func:`run_pieces` on ``spec`` finds the workers up and ready (it waits for them if they are not yet).
    Nothing for a serial run or an existing scheduler. A failure here is not reported: the run's own
    :func:`run_pieces` then starts the cluster and reports what goes wrong, as without this call."""
    import threading

    if spec.serial or spec.scheduler is not None or _WARMING.get("thread") is not None:
        return

    def start() -> None:
        try:
            client = _connect(spec, wait=False)
            if fn is not None:
                client.run(_call, fn, item)
        except Exception:  # noqa: BLE001 - see the docstring: run_pieces reports it
            pass

    t = threading.Thread(target=start, name="edgesplit-cluster-warm", daemon=True)
    _WARMING["thread"] = t
    t.start()


def _connect(spec: ClusterSpec, wait: bool = True):
    """A client of ``spec``'s cluster: this process's local cluster when it is ``spec``'s (else a new one), or a
    new connection to the existing scheduler. ``wait``: first wait for a cluster that :func:`warm` starts."""
    import atexit

    from distributed import Client

    if wait and _WARMING.get("thread") is not None:
        _WARMING.pop("thread").join()

    if spec.scheduler is not None:
        try:
            return Client(spec.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"--scheduler {spec.scheduler!r}: no Dask scheduler answers there "
                            f"({_one_line(exc)}); start one with `dask scheduler` (docs/cluster.md)") from None
    if _SESSION.get("spec") == spec and _SESSION["client"].status == "running":
        return _SESSION["client"]
    close()
    cluster = _local_cluster(spec.workers)
    client = Client(cluster)
    if not _SESSION.get("atexit"):
        atexit.register(close)
    _SESSION.update(spec=spec, client=client, cluster=cluster, atexit=True)
    return client


def close() -> None:
    """Close this process's local cluster (its client and workers): nothing if none is open."""
    import threading

    t = _WARMING.get("thread")
    if t is not None and t is not threading.current_thread():     # (warm's own thread closes an older cluster)
        _WARMING.pop("thread").join()
    client, cluster = _SESSION.pop("client", None), _SESSION.pop("cluster", None)
    _SESSION.pop("spec", None)
    for thing in (client, cluster):
        if thing is not None:
            try:
                thing.close()
            except Exception:  # noqa: BLE001 - best effort: a cluster already going down
                pass


def _run_dask(fn, items, spec: ClusterSpec, *, desc: str, labels: list[str], quiet: bool,
              on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    import logging


    for name in ("distributed", "distributed.worker", "distributed.nanny", "distributed.scheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)
    t0 = time.monotonic()
    client = _connect(spec)
    try:
        return _gather(client, fn, items, spec, desc=desc, labels=labels, quiet=quiet, t0=t0, on_result=on_result)
    finally:
        if spec.scheduler is not None:
            client.close()


def _gather(client, fn, items, spec: ClusterSpec, *, desc: str, labels: list[str], quiet: bool, t0: float,
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    from distributed import as_completed

    # pure=False: every piece runs, even two equal items; the key names the piece for the dashboard
    futures = [client.submit(_call, fn, item, pure=False, key=f"edgesplit-{desc}-{i}-{time.time_ns()}")
               for i, item in enumerate(items)]
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * len(items)
    with _progress(len(items), desc, quiet) as bar:
        for fut in as_completed(futures):
            i = index[fut.key]
            try:
                out[i] = fut.result()
            except UserError as exc:
                _cancel(client, futures)
                raise PieceFailed(f"{labels[i]}: {exc}") from exc
            except Exception as exc:  # the piece's own error, or a piece that killed its workers
                _cancel(client, futures)
                raise PieceFailed(f"{labels[i]}: {_one_line(exc)}") from exc
            if on_result is not None:
                try:
                    on_result(i, out[i])
                except BaseException:
                    _cancel(client, futures)
                    raise
            bar.update(1)
    if not quiet:
        print(f"{desc}: {len(items)} pieces on {spec.describe()} in {time.monotonic() - t0:.1f} s",
              file=sys.stderr, flush=True)
    return out


def _cancel(client, futures) -> None:
    try:
        client.cancel(futures)
    except Exception:  # noqa: BLE001 - best effort while already failing
        pass
