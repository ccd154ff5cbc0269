"""``make sim``'s programs as pieces (sim.cluster.run_pieces): the conv head cut only where no counter changes,
and a run on two local Dask workers writing exactly the serial run's JSON (wall times aside)."""

import json
from pathlib import Path

import numpy as np
import pytest

from sim.designs import ENGINE_SMALL, ENGINE_SMALL_PARAMS
from sim.engine_run import DramSettings, run_program
from sim.program import ConvLayer, EngineConfig, PoolLayer, compile_program, reference_outputs

SMALL = EngineConfig(**ENGINE_SMALL_PARAMS)
REPO = Path(__file__).resolve().parents[2]
WALL = ("wall_s", "sim_wall_s", "sim_cycles_per_s")


def _conv(rng, name, cin, cout, k, s, p):
    wt = rng.integers(-32768, 32768, size=(cout, cin, k, k)).astype(np.int16)
    shift = int(np.clip(round(np.log2(32768.0 * 20000 * np.sqrt(cin * k * k))) - 15, 0, 31))
    return ConvLayer(name, wt, rng.integers(-(2**39), 2**39, size=cout), shift, relu=True, stride=s, pad=p)


def test_cut_head_changes_no_counter_small_engine():
    """A stack whose maps are banded through DRAM on the small engine (4 K words) and then resident: cut after a
    pool that reads its input from DRAM, the pool rerun as the next program's warm-up; each program, run on its
    own from the golden input, gives every layer it reports the whole program's counters, command for command,
    and its outputs bit-exact."""
    from dataclasses import replace

    from sim.run import cut_head

    rng = np.random.default_rng(7)
    x = rng.integers(-32768, 32768, size=(4, 40, 37)).astype(np.int16)
    layers = [_conv(rng, "c1", 4, 9, 3, 1, 1), _conv(rng, "c2", 9, 6, 3, 1, 1), PoolLayer("p1", 3, 2),
              _conv(rng, "c3", 6, 8, 3, 2, 1), PoolLayer("p2", 2, 2), _conv(rng, "c4", 8, 8, 3, 1, 1)]
    refs = reference_outputs(layers, x)
    parts = cut_head(layers, x, refs, SMALL)
    # (p2's output stays resident, so c4 reads it from the buffer: no cut there)
    assert [(w, [ly.name for ly in p]) for w, p in parts] == [(0, ["c1", "c2", "p1"]), (1, ["p1", "c3", "p2", "c4"])]
    dram = DramSettings()  # make sim's DRAM: no random gaps or jitter (their random sequence spans the whole run)
    whole = compile_program(layers, x, SMALL)
    res = run_program(whole, "cut_whole", dram, design=ENGINE_SMALL)
    serial = res.per_layer(whole)
    for warm, part in parts:
        i = layers.index(part[0])
        px = refs[layers[i - 1].name] if i else x
        prog = compile_program([replace(part[0], inputs=None), *part[1:]], px, SMALL)
        got = run_program(prog, f"cut_{part[0].name}", dram, design=ENGINE_SMALL)
        counters = got.per_layer(prog)
        for ly in part[warm:]:
            assert np.array_equal(prog.read_output(got.dram, ly.name), refs[ly.name]), ly.name
            assert counters[ly.name] == serial[ly.name], ly.name


def test_make_sim_cut_after_pools_same_json():
    """make sim with its conv head cut after a pool (the programs a run on several workers gets; here forced,
    serially): the same JSON as the uncut run, every counter of every layer, but for the wall-time fields."""
    from golden.network import load_network
    from sim.cluster import resolve
    from sim.run import cut_head, simulate

    nw = load_network(str(REPO / "tests" / "sim" / "cutnet.py") + ":cut_net", input_shape=(3, 192, 192))
    whole = simulate(nw, None, None, 16.0, cluster=resolve(1), cut=False)
    cut = simulate(nw, None, None, 16.0, cluster=resolve(1), cut=True)
    assert all(r["bit_exact"] for r in cut["layers"]) and len(cut["layers"]) == 5
    for r in (whole, cut):
        for k in WALL:
            r.pop(k)
    assert json.dumps(whole, indent=2) == json.dumps(cut, indent=2)
    # and it did cut: after the first pool, which the second program reruns as its warm-up
    from golden.quantize import calibration_images, quantize_net, sample_images
    from sim.networks import engine_layers

    qnet = quantize_net(nw.module(), calibration_images(nw))
    layers = engine_layers(qnet, None)
    x = qnet.quantize_input(sample_images(nw, 1))[0]
    parts = cut_head(layers, x, reference_outputs(layers, x), EngineConfig())
    assert [(w, len(p)) for w, p in parts] == [(0, 2), (1, 4)]


@pytest.fixture(scope="module")
def two_workers():
    """One local Dask cluster of two worker processes for this module's tests, reached as an existing scheduler
    (``--scheduler``'s path)."""
    from distributed import LocalCluster

    from sim.cluster import resolve

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster:
        yield resolve(scheduler=cluster.scheduler_address)


@pytest.mark.xdist_group("dask_two_workers")
def test_make_sim_two_workers_same_json(two_workers):
    """The digits net (a conv head and two FC programs) serially and on two Dask workers: the same JSON,
    every layer bit-exact, but for the wall-time fields."""
    from sim.cluster import resolve
    from sim.run import simulate

    serial = simulate("digits", None, None, 16.0, cluster=resolve(1))
    two = simulate("digits", None, None, 16.0, cluster=two_workers)
    assert len({r["module"] for r in serial["layers"]}) == len(serial["layers"]) > 3
    assert all(r["bit_exact"] for r in two["layers"])
    for r in (serial, two):
        for k in WALL:
            r.pop(k)
    assert json.dumps(serial, indent=2) == json.dumps(two, indent=2)


@pytest.mark.xdist_group("dask_two_workers")
def test_sweep_chunks_same_table(two_workers, monkeypatch):
    """A sweep in chunks of points on two Dask workers: the serial table, row for row, in the same order."""
    from model import api
    from sim.cluster import resolve

    monkeypatch.setattr(api, "SWEEP_CHUNK", 7)
    kw = {"nets": ["alexnet", "digits"], "links": ["2mbps", "22mbps"], "quiet": True}
    serial = api.sweep(cluster=resolve(1), **kw)
    two = api.sweep(cluster=two_workers, **kw)
    assert len(serial) > 2 * api.SWEEP_CHUNK
    assert json.dumps(serial.to_json()) == json.dumps(two.to_json())
    assert [(n.name, a, b) for n, a, b in serial.blocks] == [(n.name, a, b) for n, a, b in two.blocks]


@pytest.mark.parametrize("qf", [1, 50, 100])
def test_coded_weights_equal_the_stream_decoder(qf):
    """make sim WEIGHTS_CODEC=jpeg takes a coded layer's weights from the blocks its streams code, not by decoding
    the streams in Python again: the same int16 weights as the golden stream decoder, and an FC slice re-coded
    from those blocks is the slice of the decoded stream."""
    from golden import weightcodec as wc
    from sim.fc_slice import slice_encoded
    from sim.run import compress_weights

    rng = np.random.default_rng(qf)
    conv = ConvLayer("conv", rng.integers(-32768, 32768, size=(26, 5, 3, 3)).astype(np.int16),
                     np.zeros(26, np.int64), 8, pad=1)
    fc_w = rng.normal(0, 3000, size=(40, 130)).clip(-32768, 32767).astype(np.int16)
    fc_w[0], fc_w[-1] = -32768, 32767
    fc = ConvLayer("fc", fc_w, np.zeros(40, np.int64), 8, relu=False, flatten=True)
    layers, blocks = compress_weights([conv, fc], {"conv": qf, "fc": qf})
    for new, old in zip(layers, (conv, fc), strict=True):
        stream_decoded = wc.decode_layer(new.wcodec).reshape(old.weight.shape)
        assert np.array_equal(new.weight, stream_decoded)
        assert np.array_equal(blocks[new.name], wc.decode_zz(new.wcodec))
    part = slice_encoded(layers[1].wcodec, 24, blocks["fc"])
    assert np.array_equal(wc.decode_layer(part), wc.decode_layer(layers[1].wcodec)[:24])
    # a slice whose last group is partial (sim.fc_slice: as wide as the whole layer's last group, 40 = 3 x 12 + 4):
    # its first channels decode as the layer's, the lanes past them as the zero padding channels
    part = slice_encoded(layers[1].wcodec, 16, blocks["fc"])
    assert np.array_equal(wc.decode_layer(part), wc.decode_layer(layers[1].wcodec)[:16])
    assert not wc.decode_zz(part)[-wc.blocks_per_group(130):].reshape(3, 12, 64)[:, 4:].any()
