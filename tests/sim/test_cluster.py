"""sim.cluster: serial and distributed runs give the same ordered results; a failing piece is named; a worker
that dies is replaced and its piece rerun; a scheduler and two workers started as separate processes on
127.0.0.1 (the way docs/cluster.md starts them) run the pieces."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from golden.errors import UserError
from sim.cluster import ClusterSpec, PieceFailed, resolve, run_pieces
from tests.sim import cluster_pieces as pieces

REPO = Path(__file__).resolve().parents[2]


def test_resolve_order_and_errors(monkeypatch):
    monkeypatch.delenv("EDGESPLIT_SCHEDULER", raising=False)
    monkeypatch.setenv("EDGESPLIT_WORKERS", "3")
    assert resolve() == ClusterSpec(workers=3)
    assert resolve(workers="2") == ClusterSpec(workers=2)          # the command line wins
    assert resolve(workers=1).serial
    monkeypatch.delenv("EDGESPLIT_WORKERS")
    assert resolve().workers == max(1, os.cpu_count() or 1)       # default: one per core
    monkeypatch.setenv("EDGESPLIT_SCHEDULER", "tcp://127.0.0.1:8786")
    assert resolve() == ClusterSpec(workers=0, scheduler="tcp://127.0.0.1:8786")
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(UserError, match=f"--workers '{bad}'"):
            resolve(workers=bad)
    with pytest.raises(UserError, match="--scheduler 'localhost'.*tcp://HOST:PORT"):
        resolve(scheduler="localhost")
    monkeypatch.setenv("EDGESPLIT_SCHEDULER", "")
    monkeypatch.setenv("EDGESPLIT_WORKERS", "many")
    with pytest.raises(UserError, match="EDGESPLIT_WORKERS 'many'"):
        resolve()


def test_serial_and_local_cluster_agree():
    """Same values in the order of the pieces; ``on_result`` sees every piece once, here, as it comes back."""
    items = list(range(12))
    seen: dict[int, list] = {1: [], 2: []}
    serial = run_pieces(pieces.square_with_pid, items, ClusterSpec(workers=1), quiet=True,
                        on_result=lambda i, r: seen[1].append((i, r, os.getpid())))
    assert [v for v, _ in serial] == [x * x for x in items]
    assert {pid for _, pid in serial} == {os.getpid()}            # serial: here, no Dask
    local = run_pieces(pieces.square_with_pid, items, ClusterSpec(workers=2), quiet=True,
                       on_result=lambda i, r: seen[2].append((i, r, os.getpid())))
    assert [v for v, _ in local] == [x * x for x in items]         # same values, same order
    assert os.getpid() not in {pid for _, pid in local}
    assert seen[1] == [(i, serial[i], os.getpid()) for i in range(12)]
    assert sorted(seen[2]) == [(i, local[i], os.getpid()) for i in range(12)]


def test_a_second_run_reuses_the_workers():
    """The study's two steps (reference shards, then splits) run on the same workers: they start once and keep
    what their pieces loaded; close() ends them, and the next run starts new ones."""
    from sim.cluster import close

    spec = ClusterSpec(workers=2)
    first = {pid for _, pid in run_pieces(pieces.square_with_pid, list(range(8)), spec, quiet=True)}
    second = {pid for _, pid in run_pieces(pieces.square_with_pid, list(range(8)), spec, quiet=True)}
    assert second <= first and len(first) == 2
    close()
    third = {pid for _, pid in run_pieces(pieces.square_with_pid, list(range(8)), spec, quiet=True)}
    assert not third & first
    close()


def test_warm_starts_the_workers_and_runs_the_warm_up_on_each(tmp_path):
    """sim.cluster.warm: the cluster starts in the background and each worker runs the warm-up once; the next
    run_pieces uses those workers; a serial spec starts nothing."""
    from sim.cluster import _SESSION, close, warm

    close()
    warm(ClusterSpec(workers=1), pieces.mark_pid, str(tmp_path))
    assert "client" not in _SESSION
    spec = ClusterSpec(workers=2)
    warm(spec, pieces.mark_pid, str(tmp_path))
    pids = {pid for _, pid in run_pieces(pieces.square_with_pid, list(range(8)), spec, quiet=True)}
    warmed = {int(f.name.split("-")[1]) for f in tmp_path.glob("warm-*")}
    assert len(warmed) == 2 and pids <= warmed and os.getpid() not in warmed
    close()


def test_local_workers_get_their_environment():
    from sim.cluster import WORKER_ENVIRON

    got = run_pieces(pieces.environ, [0, 1], ClusterSpec(workers=2), quiet=True)
    assert got == [{k: WORKER_ENVIRON[k] for k in got[0]}] * 2     # not Dask's MALLOC_TRIM_THRESHOLD_=65536


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_piece_is_named(workers):
    labels = [f"shard {i}" for i in range(4)]
    with pytest.raises(PieceFailed, match=r"^shard 1: piece value 1: odd values are not allowed here$"):
        run_pieces(pieces.refuse_odd, [0, 1, 2, 4], ClusterSpec(workers=workers), labels=labels, quiet=True)


def test_a_dead_worker_is_replaced_and_its_piece_rerun(tmp_path):
    out = run_pieces(pieces.die_once, [(str(tmp_path), k) for k in range(4)], ClusterSpec(workers=2), quiet=True)
    assert out == [0, 10, 20, 30]
    assert (tmp_path / "attempt-0").read_text() == "2"              # killed once, rerun once
    assert all((tmp_path / f"attempt-{k}").read_text() == "1" for k in (1, 2, 3))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def separate_cluster(tmp_path):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, as docs/cluster.md starts them."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDGESPLIT_WORKERS": "1"}
    bindir = Path(sys.executable).parent
    procs = [subprocess.Popen([bindir / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([bindir / "dask", "worker", address, "--nthreads", "1", "--name",
                                           f"edgesplit-test-{i}", "--no-dashboard", "--no-nanny", "--host", "127.0.0.1",
                                           "--local-directory", str(tmp_path / f"w{i}")],
                                          cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.monotonic() + 60
        with Client(address, timeout=30) as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, "the two workers did not join in 60 s"
                time.sleep(0.2)
        yield address
    finally:
        for p in reversed(procs):  # no nannies: each worker is the process itself
            p.kill()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_separate_scheduler_and_workers(separate_cluster):
    items = list(range(10))
    out = run_pieces(pieces.square_with_pid, items, ClusterSpec(workers=0, scheduler=separate_cluster),
                     quiet=True)
    assert [v for v, _ in out] == [x * x for x in items]
    assert len({pid for _, pid in out}) == 2                         # both worker processes took pieces


def test_no_scheduler_there_is_one_line(monkeypatch):
    monkeypatch.setattr("sim.cluster.CONNECT_TIMEOUT_S", 2.0)
    with pytest.raises(UserError, match=r"--scheduler 'tcp://127.0.0.1:\d+': no Dask scheduler answers"):
        run_pieces(pieces.refuse_odd, [0, 2], ClusterSpec(workers=0, scheduler=f"tcp://127.0.0.1:{_free_port()}"),
                   quiet=True)
