"""hw.plan.plan_chain: the buffer plan of a linear network (pure Python; sim.program lowers it, model.counts
counts it, and tests/model/test_cost_counts.py compares both with the RTL)."""

from hw.plan import ChainLayer, ChainStep, plan_chain


def conv(name: str, cin: int, hw: int, oc: int, k: int = 3) -> ChainLayer:
    """A 'same' conv at stride 1: ``cin`` x ``hw`` x ``hw`` in, ``oc`` x ``hw`` x ``hw`` out."""
    return ChainLayer(name, cin, hw, hw, k, 1, oc, hw, hw)


def fc(name: str, n_in: int, n_out: int) -> ChainLayer:
    return ChainLayer(name, n_in, 1, 1, 1, 1, n_out, 1, 1, fc=True)


def test_maps_stay_in_the_buffer_while_they_fit():
    # 1000-word buffer, 100-word input: loaded at 0; a's output after it (100..300), b's below it (0..50), c's
    # after b's input (50..250)
    layers = [conv("a", 1, 10, 2), conv("b", 2, 5, 2), conv("c", 2, 5, 8)]
    load, steps = plan_chain(layers, 100, 1000)
    assert load
    assert steps == [ChainStep("a", "resident", in_addr=0, out_addr=100),
                     ChainStep("b", "resident", in_addr=100, out_addr=0),
                     ChainStep("c", "resident", in_addr=0, out_addr=50)]
    assert all(s.output_resident for s in steps)


def test_a_layer_that_does_not_fit_beside_its_input_spills_it():
    # 400 words in at 0 -> 600 out just fits after it; the next layer's 100 words fit below its input
    layers = [conv("big", 4, 10, 6), conv("next", 6, 10, 1)]
    load, steps = plan_chain(layers, 400, 1000)
    assert load
    assert steps[0] == ChainStep("big", "resident", in_addr=0, out_addr=400)
    assert steps[1] == ChainStep("next", "resident", in_addr=400, out_addr=0)
    # 500 words in at 0 -> 600 out fits neither after it (1100) nor below it: the input is stored, and the layer
    # runs from DRAM (input + output > buffer: in bands)
    load, steps = plan_chain([conv("big", 5, 10, 6)], 500, 1000)
    assert load
    assert steps[0].how == "bands" and steps[0].spill_addr == 0 and not steps[0].output_resident
    # the most rows per band: 5 x 10 x 10 input rows + 6 x 8 x 10 output rows = 980 <= 1000 (9 rows: 500 + 540)
    assert steps[0].rows == 8
    load, steps = plan_chain([conv("big", 6, 10, 6)], 600, 1000)
    assert not load         # 600 > half the buffer: the input stays in DRAM
    assert steps[0].how == "bands" and steps[0].spill_addr is None
    assert steps[0].rows == 7   # 6 x 9 x 10 + 6 x 7 x 10 = 960 <= 1000; 8 rows: 600 + 480


def test_spill_then_whole_then_rows():
    # input 300 words at 0; "up" makes 800 words: not after it (1100 > 1000) nor below it -> spill, and with its
    # input it does not fit (1100) -> bands; "down" from DRAM: 800 + 200 fits -> one LOAD and a whole-map command;
    # "fc" reads 200 at 800: its output (50) fits below -> resident
    layers = [conv("up", 3, 10, 8), conv("down", 8, 10, 2), fc("fc", 200, 50)]
    load, steps = plan_chain(layers, 300, 1000)
    assert load
    assert steps[0].how == "bands" and steps[0].spill_addr == 0
    assert steps[1] == ChainStep("down", "whole", in_addr=0, out_addr=800)
    assert steps[2] == ChainStep("fc", "resident", in_addr=800, out_addr=0)


def test_an_fc_layer_from_dram_runs_in_sequential_rows_and_a_row_too_big_has_none():
    load, steps = plan_chain([fc("fc6", 900, 200)], 900, 1000)
    assert not load
    assert steps == [ChainStep("fc6", "rows", rows=None)]    # 900 + 200 words: the compiler refuses it
    load, steps = plan_chain([fc("fc6", 700, 200)], 700, 1000)
    assert steps == [ChainStep("fc6", "whole", in_addr=0, out_addr=700)]
