"""FC layers too large to simulate whole (``make sim``: more than ``sim.run.FC_SLICE_WORDS`` weights): the layer's
counts extrapolated from two slices of its output channels, per weight group.

A fully-connected CONV streams its weights one group of ``lanes`` output channels at a time (3 bias beats, then
the K rows of the group; a last group of fewer channels is padded to ``lanes``), so every counter of the
layer's program is a part fixed per layer (the LOAD of the input vector, the descriptor fetches, the weight
pipeline's fill and drain, the resident output) plus one group's worth per group, in a steady state of two
groups (the two weight banks alternate). :func:`slice_channels` gives two slices that end in a last group of the
same width as the whole layer's (``r = O - lanes (G - 1)`` channels): slice A of ``SLICE_GROUPS`` groups (or one
more, so that the whole layer has an even number of groups more) and slice B of ``STEP_GROUPS`` fewer, so their
difference is exactly three periods of full groups, and :func:`extrapolate` adds ``(G - gA) / 2`` more periods to
slice A. Per-channel counters (MACs, the output words written to the feature buffer) come out exact too, as the
partial last group is in both slices.

DRAM read words are not extrapolated but accounted: slice A's words less the words its CONV reads for weights
(:func:`weight_words`: what the command's own fields make the weight fetcher read) is the fixed part, checked
equal to slice B's (the RTL's counter agreeing with the commands), plus the whole layer's weight words. With
int16 weights this is the same as the per-group extrapolation; with coded weights (``WEIGHTS_CODEC=jpeg``) the
groups' streams differ in length, and the whole layer's own lane streams (its stream area, on whole 12-word
beats per lane) are what it reads. The decoders' ``wdec_bits`` are accounted the same way (the streams' bits).
What stays an extrapolation with coded weights: the cycles and stalls where the decoders' pace depends on the
groups' content.

Measured (7 Dec): AlexNet's fc6, fc7 and fc8 with int16 weights, and fc8 coded at QF 50, simulated whole count
every counter exactly as extrapolated here (``tests/sim/test_fc_slice.py`` checks a small layer both ways).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from golden import weightcodec as wc

SLICE_GROUPS = 10   # slice A: ten weight groups (120 output channels at 12 lanes, 112 when O % 12 == 4, ...) or 11
STEP_GROUPS = 6     # slice B: six fewer


def groups(out_c: int, lanes: int) -> int:
    return -(-out_c // lanes)


def slice_groups(whole_groups: int) -> tuple[int, int]:
    """Weight groups of slices A and B of a layer of ``whole_groups`` groups (more than ``SLICE_GROUPS + 1``):
    ``SLICE_GROUPS`` or one more, the whole layer an even number of groups more; B ``STEP_GROUPS`` fewer."""
    ga = SLICE_GROUPS + (whole_groups - SLICE_GROUPS) % 2
    return ga, ga - STEP_GROUPS


def slice_channels(out_c: int, lanes: int) -> tuple[int, int]:
    """Output channels of slices A and B (:func:`slice_groups`) of a layer of ``out_c`` channels, their last group
    as wide as the whole layer's."""
    g = groups(out_c, lanes)
    r = out_c - lanes * (g - 1)
    return tuple(lanes * (n - 1) + r for n in slice_groups(g))


def slice_layer(layer, channels: int, zz: np.ndarray | None = None):
    """``layer`` (a ``sim.program.ConvLayer``) on its first ``channels`` output channels; a coded layer's
    streams re-coded from its quantized blocks ``zz`` (``sim.run.compress_weights``; :func:`slice_encoded`)."""
    enc = slice_encoded(layer.wcodec, channels, zz) if layer.wcodec is not None else None
    return replace(layer, weight=layer.weight[:channels], bias=layer.bias[:channels], wcodec=enc)


def slice_encoded(enc, channels: int, zz: np.ndarray):
    """The first ``channels`` output channels of a compressed layer whose quantized blocks are ``zz``: the same
    blocks (so the same decoded weights), re-entropy-coded with the layer's tables; the lanes past ``channels``
    in the last group are zero blocks, as the whole layer's padding channels are."""
    g, kb = groups(channels, wc.LANES), wc.k_blocks(enc.k)
    part = np.array(zz[:g * wc.blocks_per_group(enc.k)])
    r = channels - wc.LANES * (g - 1)
    part.reshape(g, kb, wc.LANES, -1)[-1, :, r:] = 0
    return wc.encode_quantized(part, enc.p, enc.qf, channels, enc.k, (enc.dc_table, enc.ac_table))


def coded_fields(enc, lanes: int) -> dict:
    """The CONV descriptor fields that size a coded layer's weight reads, as ``sim.program.alloc_weights`` sets them
    (every group coded, as for a fully-connected layer): ``rows`` (table entries: the decoders' table writes and
    the lane registers) and ``dram_stride`` (the lane-stream area: each lane on whole ``lanes``-word beats)."""
    from hw.jpeg import whost

    tables = whost.table_writes(enc.dc_table, enc.ac_table, enc.qtable, enc.p, enc.lane_group_blocks)
    beats = sum(-(-(len(lane) // 2) // lanes) for lane in enc.lanes)
    return {"rows": len(tables) + 2 * wc.LANES, "dram_stride": beats * lanes}


def weight_words(cmd, lanes: int) -> int:
    """DRAM words a fully-connected CONV command ``cmd`` reads for its weights: per group of ``lanes`` output
    channels 3 bias beats and K = in_c rows of ``lanes`` words (int16); coded (``w_codec``): the table entries,
    4 per beat, the lane-stream area (``dram_stride`` words) and per group the 3 bias beats."""
    from sim.program import BIAS_BEATS

    g = groups(cmd.out_c, lanes)
    if not cmd.w_codec:
        return g * (BIAS_BEATS + cmd.in_c * cmd.k * cmd.k) * lanes
    if cmd.w_raw0:
        raise ValueError("weight_words: a CONV whose first group is plain (w_raw0) is not a fully-connected layer's")
    return lanes * (-(-cmd.rows // 4) + g * BIAS_BEATS) + cmd.dram_stride


def extrapolate(a: dict, b: dict, whole_groups: int, accounted: dict[str, tuple[int, int, int]] | None = None
                ) -> dict:
    """The whole layer's counters from slice A's (``a``) and slice B's (``b``), of :func:`slice_groups`
    ``(gA, gB)``: ``A + (G - gA) (A - B) / (gA - gB)``, rounded to the nearest integer (an integer when the
    groups' counts repeat every two groups). ``accounted``: ``{counter: (slice A's, slice B's, the whole layer's
    amount)}`` of counters the commands account for (``dram_read_words``: :func:`weight_words`; ``wdec_bits``: the
    coded streams' bits): such a counter is slice A's less A's amount (the fixed part; ValueError unless slice B's is
    the same) plus the whole layer's."""
    ga, gb = slice_groups(whole_groups)
    d, n = ga - gb, whole_groups - ga
    out = {k: int(a[k]) + round(n * (int(a[k]) - int(b[k])) / d) for k in a}
    for k, (wa, wb, whole) in (accounted or {}).items():
        fixed = int(a[k]) - wa
        if int(b[k]) - wb != fixed:
            raise ValueError(f"the slices' {k} less the commands' amounts differ: A {a[k]} - {wa} = {fixed}, "
                             f"B {b[k]} - {wb} = {int(b[k]) - wb}")
        out[k] = fixed + whole
    return out


def record(chans: tuple[int, int], whole_groups: int, lanes: int, accounted: dict[str, tuple[int, int, int]],
           counters: tuple[dict, dict]) -> dict:
    """The JSON record of an extrapolated layer (``sim.run``'s row ``extrapolated_from_slices``)."""
    return {
        "simulated_output_channels": list(chans), "weight_groups": list(slice_groups(whole_groups)),
        "whole_weight_groups": whole_groups, "lanes": lanes,
        "counters": f"per weight group: A + (G - gA) x (A - B) / {STEP_GROUPS}, rounded (the slices' last groups as "
                    "wide as the whole layer's, G - gA even)",
        "accounted": {k: "A's less A's amount (equal to B's: checked) + the whole layer's amount" for k in accounted},
        "weight_words": dict(zip(("A", "B", "whole"), accounted["dram_read_words"], strict=True)),
        **({"stream_bits": dict(zip(("A", "B", "whole"), accounted["wdec_bits"], strict=True))}
           if "wdec_bits" in accounted else {}),
        "slice_counters": dict(zip(("A", "B"), counters, strict=True)),
    }
