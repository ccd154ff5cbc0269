"""FC batching (issue 16 item 4, ``make sim BATCH=n``): a fully-connected layer run once for n frames as a 1x1
CONV over a 1 x n map (``sim.program.compile_fc_batch``), bit-exact per frame on the engine RTL in Verilator, its
per-frame cycles well below one frame's, and the cost model's batched FC (``model.counts.fc_batch_counts``)
against the RTL."""

import json

import numpy as np
import pytest

from golden.errors import UserError
from sim.program import EngineConfig, check_batch, compile_fc_batch, compile_program

NET = "digits"
BATCH = 4


def _fc_layers():
    """The digits net's engine layers, its sample image and the golden outputs (no simulation)."""
    from golden.network import network
    from golden.quantize import calibration_images, quantize_net, sample_images
    from sim.networks import engine_layers
    from sim.program import reference_outputs

    nw = network(NET)
    qnet = quantize_net(nw.module(), calibration_images(nw))
    layers = engine_layers(qnet, None)
    x = qnet.quantize_input(sample_images(nw, 1))[0]
    return layers, x, reference_outputs(layers, x)


def test_batch_argument_is_checked(capsys):
    """``--batch`` outside 1..lanes or not an integer: one line naming the value and the range, exit 2, no
    traceback (before any work); the compiler and the cost model refuse the same values."""
    from model.cli import main as edgesplit
    from model.counts import net_counts
    from sim.run import main

    for bad, says in (("13", "batch 13 is outside 1..12"), ("0", "batch 0 is outside 1..12"),
                      ("x", "batch 'x' is not an integer")):
        assert main(["--net", NET, "--batch", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"make sim: error: {says}") and "\n" not in err and "allowed: an integer in 1..12" in err
    assert main(["--net", NET, "--batch", "17", "--arch", "16x16"]) == 2
    assert "batch 17 is outside 1..16" in capsys.readouterr().err
    assert main(["--net", NET, "--batch", "4", "--encode", "jpeg"]) == 2
    assert "ENCODE, WEIGHTS_CODEC" in capsys.readouterr().err
    assert edgesplit(["query", "--net", NET, "--split", "fc6", "--batch", "13"]) == 2
    assert "batch 13 is outside 1..12" in capsys.readouterr().err
    for bad in (0, 13, True, 2.0):
        with pytest.raises(UserError, match="outside 1..12"):
            check_batch(bad, 12)
        with pytest.raises(UserError, match="outside 1..12"):
            net_counts(NET, batch=bad)
    assert check_batch(12, 12) == 12


def test_batch_of_one_is_the_unbatched_program():
    """At n = 1 the batched FC program is the single-FC-layer program ``make sim`` always ran: the same commands
    and the same DRAM image; at n = 4 one gather LOAD per frame (in_c runs of one word, fb_stride 4), then one
    CONV over the 1 x 4 map, the weights placed once."""
    from dataclasses import replace

    layers, _, refs = _fc_layers()
    fc = next(ly for ly in layers if getattr(ly, "flatten", False))
    prev = layers[layers.index(fc) - 1].name
    one = compile_fc_batch(replace(fc, inputs=None), [refs[prev]])
    ref = compile_program([replace(fc, inputs=None)], refs[prev], EngineConfig())
    assert one.commands == ref.commands and one.command_layer == ref.command_layer
    assert np.array_equal(one.dram, ref.dram) and one.out_shapes == {fc.name: (64, 1, 1)}
    rng = np.random.default_rng(3)
    xs = [refs[prev]] + [rng.integers(-2000, 2000, size=refs[prev].shape).astype(np.int16) for _ in range(3)]
    four = compile_fc_batch(fc, xs)
    ops = [c.op.name for c in four.commands]
    assert ops == ["LOAD"] * 4 + ["CONV", "STORE", "END"]
    cin = int(np.prod(refs[prev].shape))
    gathers = [(c.fb_addr, c.rows, c.row_len, c.fb_stride) for c in four.commands[:4]]
    assert gathers == [(f, cin, 1, 4) for f in range(4)]
    conv = four.commands[4]
    assert (conv.in_w, conv.out_w, conv.in_ch_stride, conv.in_c, conv.out_c) == (4, 4, 4, cin, 64)
    assert four.macs[fc.name] == 4 * 64 * cin and four.out_shapes[fc.name] == (64, 1, 4)
    packed = compile_fc_batch(fc, xs, packed=True)
    assert [c.op.name for c in packed.commands] == ["LOAD", "CONV", "STORE", "END"]
    assert packed.commands[0].row_len == 4 * cin
    with pytest.raises(UserError, match="batch 13 is outside 1..12"):
        compile_fc_batch(fc, xs * 3 + [xs[0]])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The digits net at BATCH=4 (conv head for frame 1, each FC layer batched) and its FC layers alone at
    batch 1, on the engine in Verilator; each result also written as make sim writes it."""
    from sim.run import simulate

    out = {}
    d = tmp_path_factory.mktemp("batch")
    for key, kw, stem in (("b4", {"batch": BATCH}, f"_batch{BATCH}"), ("b1", {"batch": 1, "fc_only": True}, "_fconly")):
        res = simulate(NET, None, **kw)
        path = d / f"{NET}{stem}.json"
        path.write_text(json.dumps(res))
        out[key] = (res, path)
    return out


def test_batched_fc_bit_exact_per_frame_and_cheaper(runs):
    """Every FC output of every frame equals the golden model's for that frame (four different test images);
    per frame a batched FC layer costs well under half of one frame's pass (measured: fc5 523.5 vs 1,455 cycles,
    0.36x; fc6 82.5 vs 306, 0.27x), while its DRAM weight words are read once for the four frames."""
    b4, _ = runs["b4"]
    b1, _ = runs["b1"]
    assert b4["batch"] == BATCH
    one = {r["name"]: r for r in b1["layers"]}
    fcs = [r for r in b4["layers"] if r["run"] == "batched"]
    assert [r["name"] for r in fcs] == ["fc5", "fc6"]
    for r in b4["layers"]:
        assert r["bit_exact"], r["name"]
        assert r["utilization_per_frame"] == pytest.approx(r["macs_per_frame"] / (144 * r["cycles_per_frame"]))
    for i, r in enumerate(fcs):
        assert r["frames_bit_exact"] == [True] * BATCH
        assert r["macs"] == BATCH * one[r["name"]]["macs"]
        assert r["cycles_per_frame"] == r["cycles"] / BATCH
        assert r["cycles_per_frame"] < 0.5 * one[r["name"]]["cycles"], r["name"]
        assert r["utilization_per_frame"] > 2 * one[r["name"]]["utilization"]
        # one weight stream for the batch: DRAM reads grow only by the other frames' inputs (fc5: gathered by a
        # LOAD per frame, 3 more descriptors of 3 beats; fc6: fc5's batched output, one LOAD as for one frame)
        cin = r["macs_per_frame"] // r["shape"][0]
        extra = r["counters"]["dram_read_words"] - one[r["name"]]["counters"]["dram_read_words"]
        assert extra == (BATCH - 1) * cin + (3 * 3 * 12 if i == 0 else 0)
    head = [r for r in b4["layers"] if r["run"] != "batched"]
    assert head and all(r["counters_per_frame"]["cycles"] * BATCH == r["counters"]["cycles"] for r in head)
    t = b4["total_per_frame"]
    assert t["cycles_per_frame"] == b4["total"]["cycles"] / BATCH


def test_cost_model_of_batched_fc(runs):
    """The cost model's batched run (``model.counts.rtl_error`` of the batched JSON): the FC layers' cycles within
    3% of the RTL and their DRAM words (and every other compared counter but cycles) exactly equal; the head
    layers (frame 1's program counted per frame) as at batch 1. Batched runs never feed the ordinary counts."""
    from model.counts import net_counts, rtl_error, rtl_json_paths, rtl_layer_counts

    for key in ("b4", "b1"):
        _, path = runs[key]
        errs = rtl_error(NET, path)
        assert [e.name for e in errs][-2:] == ["fc5", "fc6"]
        for e in errs:
            assert abs(e.cycle_error) < 0.03, (key, e.name, e.cycle_error)
            if e.name.startswith("fc"):
                for f, (rtl, model) in e.counters.items():
                    assert f == "cycles" or rtl == model, (key, e.name, f, rtl, model)
        assert rtl_layer_counts(NET, path) == {}
    assert rtl_json_paths(NET, runs["b4"][1].parent) == []
    per = {lc.name: lc for lc in net_counts(NET, source="analytical", batch=BATCH).layers}
    base = {lc.name: lc for lc in net_counts(NET, source="analytical").layers}
    b4, _ = runs["b4"]
    for r in b4["layers"]:
        m = per[r["module"]]
        if r["run"] == "batched":
            assert m.cycles < 0.5 * base[r["module"]].cycles
            # (the RTL's run also fetched the descriptor of its verification dump: 3 beats)
            assert m.dram_read_words * BATCH + 3 * 12 == r["counters"]["dram_read_words"]
        else:
            assert m == base[r["module"]]


def test_batched_fc_deeper_than_a_weight_bank_small_engine():
    """A layer deeper than a weight bank (K = 1,200 rows on the small engine's 1,024-row banks: each group streams
    in two chunks, allowed with one tile per group) batched over 3 frames of random extreme-ish inputs: every
    frame bit-exact, per frame under half of one frame's pass (measured 3,912.3 vs 8,191 cycles, 0.48x: the
    gathers of 1,200 words per frame are 31% of the batch), and the cost model within 3% with every compared counter
    but cycles equal."""
    from golden.graph import Layer
    from model.counts import EngineParams, fc_batch_counts
    from sim.designs import ENGINE_SMALL, ENGINE_SMALL_PARAMS
    from sim.engine_run import DramSettings, run_program
    from sim.program import ConvLayer

    cfg = EngineConfig(**ENGINE_SMALL_PARAMS)
    eng = EngineParams(**ENGINE_SMALL_PARAMS)
    rng = np.random.default_rng(11)
    k, oc, n = 1200, 30, 3
    fc = ConvLayer("fc", rng.integers(-32768, 32768, size=(oc, k, 1, 1)).astype(np.int16),
                   rng.integers(-(2**39), 2**39, size=oc), 26, relu=False, flatten=True)
    xs = [rng.integers(-32768, 32768, size=(k // 15, 3, 5)).astype(np.int16) for _ in range(n)]
    xs[1][:] = -32768   # an extreme frame
    la = Layer(0, "fc", "linear", "fc", ("input",), ((k // 15, 3, 5),), (oc,), macs=oc * k)
    cycles = {}
    for m in (1, n):
        prog = compile_fc_batch(fc, xs[:m], cfg)
        res = run_program(prog, f"fc_batch_small_{m}", DramSettings(), design=ENGINE_SMALL)
        got = prog.read_output(res.dram, "fc")
        for f in range(m):
            assert np.array_equal(got[:, :, f:f + 1], fc.reference(xs[f])), (m, f)
        rtl = res.per_layer(prog)["fc"]
        model = fc_batch_counts(la, m, eng)
        assert model.macs == rtl["macs"] == m * oc * k
        assert abs(model.cycles + eng.command_cycles - rtl["cycles"]) / rtl["cycles"] < 0.03, (m, model.cycles, rtl)
        for f in ("dram_write_words", "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words", "busy"):
            assert getattr(model, f) == rtl[f], (m, f, getattr(model, f), rtl[f])
        assert model.dram_read_words + 3 * 12 == rtl["dram_read_words"]   # + the dump's descriptor
        cycles[m] = rtl["cycles"] / m
    assert cycles[n] < 0.5 * cycles[1], cycles


def test_query_per_frame_at_batch():
    """``edgesplit query --batch n`` / ``api.query(batch=n)``: every value per frame, the FC layer's cycles those of
    its batched pass / n (the rest of the network as at batch 1); batch 1 is the default's answer exactly."""
    from golden.network import network
    from model import api
    from model.counts import DEFAULT_ENGINE, fc_batch_counts, net_counts

    kw = {"link": "2mbps", "counts_source": "analytical"}
    base = api.query("mobilenetv2", "classifier", **kw)
    assert api.query("mobilenetv2", "classifier", batch=1, **kw) == base
    b12 = api.query("mobilenetv2", "classifier", batch=12, **kw)
    fc = next(la for la in net_counts("mobilenetv2", source="analytical").layers if la.type == "linear")
    la = next(x for x in network("mobilenetv2").layers if x.name == fc.layer)
    saved = fc.cycles - fc_batch_counts(la, 12, DEFAULT_ENGINE).cycles / 12
    assert saved > 0.85 * fc.cycles
    assert base.inference_time_s - b12.inference_time_s == pytest.approx(saved / DEFAULT_ENGINE.clock_hz, rel=1e-9)
    assert b12.energy_per_frame_j < base.energy_per_frame_j
