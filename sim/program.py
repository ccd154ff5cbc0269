"""The engine's driver: validates layers, plans the feature buffer, lowers a network to commands.

``compile_program(layers, x, config)`` turns a list of quantized layers (``ConvLayer``, ``PoolLayer``)
and an int16 input map into a ``Program``: a DRAM image (descriptors, weights, the input) and, for
every command, the layer it belongs to. Nothing here simulates; ``sim.engine_run`` runs a program.

Feature-buffer plan, per layer, in order:

* If the layer's input is resident in the buffer and input + output fit, the output is placed next to
  the input and stays resident (no DRAM traffic).
* Otherwise the layer runs in bands of output rows: each band's input rows are LOADed from DRAM, the
  band is computed, and its output rows are STOREd to DRAM (the spill and refill traffic the counters
  count). A resident input is first STOREd to DRAM.

For verification, every layer's output must be readable afterwards: a resident output is copied to a
DRAM area by a ``nocount`` STORE (the counters do not see it); a banded output is in DRAM already.

Networks with branches, grouped convolutions or concatenations run every layer from DRAM to DRAM
(``_compile_dag``):

* A 3x3 depthwise convolution (stride 1 or 2, padding 0 or 1) runs on the depthwise unit (``hw.dw_unit``,
  one DWCONV per band of output rows: one channel at a time, 12 output pixels per cycle; :func:`on_dw_unit`),
  and so does a 3x3 max-pool of that geometry, in the unit's max-pool mode (DWPOOL, :func:`pool_on_dw_unit`).
* Any other grouped convolution runs as *packs*: each pack is a dense convolution
  over a few consecutive groups whose weights are block-diagonal (zero between groups), reading its input
  channels from a slice of the input map and writing its output channels into a slice of the output map
  (:func:`conv_packs`). A pack holds as many groups as fill the 12 rows of the MAC array (12 for a
  depthwise layer), so a depthwise layer uses 1/12 of the array's MACs: its utilization bound is 1/12 of a
  dense layer's.
* A channel concatenation is free: its inputs are stored into adjacent channel ranges of its output in DRAM
  (the concatenation's output is allocated first and its producers write into it). An input that cannot
  be placed so (the network input, or a tensor already placed in another concatenation) is copied.

Validation (``EngineLimitError``, one line naming the layer, the value and the limit) rejects what the
engine cannot run: kernel outside 1..11, stride outside 1..4, a shift outside 0..31, channel counts or
sizes beyond the descriptor fields, a dot product deeper than the weight buffer when a group has more
than one tile, and a layer whose single output row does not fit the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from golden.arch import DEFAULT_ARCH, EngineArch
from golden.errors import UserError
from golden.fixedpoint import BIAS_MAX, BIAS_MIN, MAX_SHIFT
from golden.layers import add_int, concat_int, conv2d_int, conv_out_size, global_avgpool_int, maxpool2d_int
from hw.descriptor import FIELDS, Command, Op, desc_words_padded
from hw.limits import CODEC_LANES, arch_refusal
from hw.plan import (
    BandShape,
    ChainLayer,
    PlanLayer,
    add_bands,
    band_work,
    concat_slots,
    plan_bands,
    plan_chain,
    plan_dag,
    subsampled_conv,
)
from hw.plan import conv_packs as plan_conv_packs
from sim import encoding

LANES = DEFAULT_ARCH.lanes   # the default lane count (EngineConfig.lanes: the engine's)
BIAS_BEATS = 3


class EngineLimitError(UserError):
    """A layer the engine cannot run (the message names the layer, the value and the limit)."""


@dataclass
class EngineConfig:
    """What the compiler needs to know of the engine (its size from ``golden.arch``: :meth:`from_arch`)."""

    fb_words: int = DEFAULT_ARCH.fb_words
    wb_depth: int = DEFAULT_ARCH.wb_depth
    dw_unit: bool = DEFAULT_ARCH.dw_unit  # the depthwise unit (hw.dw_unit): 3x3 depthwise layers run there
    overlap_dma: bool = True  # banded layers: double-buffered bands where the plan favours them (``_dag_bands``)
    resident: bool = True     # branchy networks: maps stay in the buffer where they fit (``hw.plan.plan_dag``)
    subsample: bool = True    # banded 1x1 convs at stride >= 2: POOL-subsampled bands (``hw.plan.subsampled_conv``)
    # the array's rows = columns = words per DRAM beat: groups of ``lanes`` output channels, tiles of ``lanes``
    # pixels (``golden.arch.EngineArch.lanes``)
    lanes: int = DEFAULT_ARCH.lanes

    @classmethod
    def from_arch(cls, arch: EngineArch, *, encode: bool = False, coded: bool = False, **options) -> EngineConfig:
        """The compiler's view of ``arch``; ``encode`` / ``coded``: the run encodes maps / reads coded weights
        (12-lane units: refused on other arrays)."""
        refusal = arch_refusal(arch, plain=True)
        if refusal:
            raise UserError(f"architecture {refusal}")
        if arch.lanes != CODEC_LANES and (encode or coded):
            raise UserError(f"architecture {arch.array}: "
                            f"{'ENCODE' if encode else 'coded weights (WEIGHTS_CODEC)'} needs the {CODEC_LANES}-lane "
                            f"encode unit and weight decoders; allowed on {arch.array}: plain runs only")
        return cls(fb_words=arch.fb_words, wb_depth=arch.wb_depth, dw_unit=arch.dw_unit, lanes=arch.lanes, **options)


@dataclass
class ConvLayer:
    """A convolution (or a fully-connected layer: ``k = 1`` on a 1x1 map, ``flatten=True``); ``groups`` > 1: a
    grouped convolution (depthwise when it equals the channels), run in packs (:func:`conv_packs`)."""

    name: str
    weight: np.ndarray            # int16 [O, C / groups, k, k]
    bias: np.ndarray              # int [O], accumulator scale
    shift: int
    relu: bool = True
    stride: int = 1
    pad: int = 0
    flatten: bool = False         # the input map is flattened to C*H*W channels of 1x1 first
    inputs: tuple[str, ...] | None = None  # the producing layer (None: the previous one)
    # compressed weights in DRAM (golden.weightcodec.EncodedLayer); ``weight`` must then be its decoded
    # weights (golden.weightcodec.decode_layer), which is what the engine computes with
    wcodec: object = None
    groups: int = 1
    clamp: int | None = None      # ReLU6: the upper clamp after the ReLU (golden.fixedpoint.relu6_clamp)

    def out_shape(self, in_shape):
        c, h, w = (int(np.prod(in_shape)), 1, 1) if self.flatten else in_shape
        k = self.weight.shape[2]
        return (self.weight.shape[0], conv_out_size(h, k, self.stride, self.pad),
                conv_out_size(w, k, self.stride, self.pad))

    def reference(self, x: np.ndarray) -> np.ndarray:
        if self.flatten:
            x = x.reshape(-1, 1, 1)
        return conv2d_int(x[None], self.weight, self.bias, self.shift, self.stride, self.pad, groups=self.groups,
                          relu=self.relu, clamp=self.clamp)[0]


def _clamp_fields(clamp: int | None) -> dict:
    return {"clamp_en": 1, "clamp": int(clamp)} if clamp is not None else {}


def on_dw_unit(layer, config: EngineConfig) -> bool:
    """Whether ``layer`` runs on the depthwise unit: a 3x3 depthwise conv, stride 1 or 2, padding 0 or 1, plain
    weights, on an engine that has the unit."""
    return (config.dw_unit and isinstance(layer, ConvLayer) and layer.groups > 1 and not layer.flatten
            and layer.wcodec is None and layer.weight.shape[0] == layer.groups and layer.weight.shape[1] == 1
            and layer.weight.shape[2:] == (3, 3) and layer.stride in (1, 2) and layer.pad in (0, 1))


def pool_on_dw_unit(layer, config: EngineConfig) -> bool:
    """Whether a max-pool runs on the depthwise unit's max-pool mode (DWPOOL): 3x3, stride 1 or 2, padding 0
    or 1 (ceil mode too), on an engine that has the unit."""
    return (config.dw_unit and isinstance(layer, PoolLayer) and layer.k == 3 and layer.stride in (1, 2)
            and layer.pad in (0, 1))


def conv_packs(layer: ConvLayer, lanes: int = LANES) -> list[tuple[int, int, ConvLayer]]:
    """The dense convolutions a (grouped) conv runs as: ``(first input channel, first output channel, dense
    layer)``, one per pack of ``hw.plan.conv_packs`` (consecutive groups with block-diagonal weights, so that a
    pack's output channels fill the MAC array's ``lanes`` rows; a plain conv is one pack)."""
    g = layer.groups
    if g == 1:
        return [(0, 0, layer)]
    o, cg, k, k2 = layer.weight.shape
    og = o // g
    bias = np.asarray(layer.bias, dtype=np.int64)
    out = []
    for g0, n in plan_conv_packs(g, og, lanes):
        w = np.zeros((n * og, n * cg, k, k2), dtype=np.int16)
        for j in range(n):
            w[j * og:(j + 1) * og, j * cg:(j + 1) * cg] = layer.weight[(g0 + j) * og:(g0 + j + 1) * og]
        out.append((g0 * cg, g0 * og, replace(layer, weight=w, bias=bias[g0 * og:(g0 + n) * og], groups=1)))
    return out


@dataclass
class PoolLayer:
    name: str
    k: int
    stride: int
    pad: int = 0
    inputs: tuple[str, ...] | None = None
    ceil_mode: bool = False

    def out_shape(self, in_shape):
        c, h, w = in_shape
        return (c, conv_out_size(h, self.k, self.stride, self.pad, self.ceil_mode),
                conv_out_size(w, self.k, self.stride, self.pad, self.ceil_mode))

    def reference(self, x: np.ndarray) -> np.ndarray:
        return maxpool2d_int(x[None], self.k, self.stride, self.pad, self.ceil_mode)[0]


@dataclass
class ConcatLayer:
    """Channel concatenation of earlier outputs (one format): free on the engine (module docstring)."""

    name: str
    inputs: tuple[str, ...]

    def out_shape(self, in_shapes):
        return (sum(s[0] for s in in_shapes), *in_shapes[0][1:])

    def reference(self, *xs: np.ndarray) -> np.ndarray:
        return concat_int([x[None] for x in xs])[0]


@dataclass
class AddLayer:
    """Residual add ``requantize(a * wa + b * wb, shift, relu)`` of two earlier outputs."""

    name: str
    inputs: tuple[str, str]
    wa: int
    wb: int
    shift: int
    relu: bool = False
    clamp: int | None = None

    def out_shape(self, in_shape):
        return in_shape

    def reference(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return add_int(a, b, self.wa, self.wb, self.shift, self.relu, self.clamp)


@dataclass
class GapLayer:
    """Global average pool: ``out[c] = requantize(sum(x[c]) * weight, shift)``, output (C, 1, 1)."""

    name: str
    weight: int
    shift: int
    inputs: tuple[str, ...] | None = None

    def out_shape(self, in_shape):
        return (in_shape[0], 1, 1)

    def reference(self, x: np.ndarray) -> np.ndarray:
        return global_avgpool_int(x[None], self.weight, self.shift)[0].reshape(-1, 1, 1)


@dataclass
class Program:
    dram: np.ndarray                       # uint16 words
    commands: list[Command]
    command_layer: list[str]               # layer name of each command (before END)
    layer_names: list[str]
    out_shapes: dict[str, tuple[int, int, int]]
    out_dram: dict[str, int]               # DRAM address of each layer's output (CHW contiguous)
    macs: dict[str, int] = field(default_factory=dict)
    banded: dict[str, int] = field(default_factory=dict)   # layer -> number of bands (1: resident)
    # MACs the array runs per layer: ``macs`` plus the zero weights of grouped convolutions' packs
    array_macs: dict[str, int] = field(default_factory=dict)
    encodings: dict = field(default_factory=dict)          # layer -> sim.encoding.LayerEncoding

    def read_output(self, dram: np.ndarray, name: str) -> np.ndarray:
        c, h, w = self.out_shapes[name]
        a = self.out_dram[name]
        return dram[a:a + c * h * w].astype(np.uint16).view(np.int16).reshape(c, h, w)


class _Dram:
    def __init__(self, lanes: int = LANES):
        self.chunks: list[tuple[int, np.ndarray]] = []
        self.top = 0
        self.beat = lanes     # words per DRAM beat

    def alloc(self, words: int, data: np.ndarray | None = None) -> int:
        addr = self.top
        self.top += -(-words // self.beat) * self.beat  # keep beats tidy
        if data is not None:
            self.chunks.append((addr, np.asarray(data).astype(np.int64).astype(np.uint16).ravel()))
        return addr

    def image(self, extra: int = 0) -> np.ndarray:
        img = np.zeros(self.top + extra + self.beat, dtype=np.uint16)
        for addr, d in self.chunks:
            img[addr:addr + d.size] = d
        return img


def _check(layer: str, field_name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise EngineLimitError(f"layer {layer}: {field_name} {value} is outside the engine's range {lo}..{hi}")


def weight_image(layer: ConvLayer, lanes: int = LANES) -> np.ndarray:
    """A conv layer's weights in DRAM order: per group of ``lanes`` (12) output channels, 3 bias beats (word t
    of each channel's 48-bit two's-complement bias) then K rows of ``lanes`` weights (K = C*k*k in im2col
    order; channels beyond O are zero)."""
    o = layer.weight.shape[0]
    wmat = layer.weight.reshape(o, -1).astype(np.int64)          # [O, K]
    k_rows = wmat.shape[1]
    groups = -(-o // lanes)
    out = []
    bias = np.asarray(layer.bias, dtype=np.int64)
    for g in range(groups):
        chans = range(g * lanes, min(o, (g + 1) * lanes))
        b = np.zeros(lanes, dtype=np.int64)
        b[:len(chans)] = bias[list(chans)]
        b48 = b & ((1 << 48) - 1)
        for t in range(BIAS_BEATS):
            out.append((b48 >> (16 * t)) & 0xFFFF)
        rows = np.zeros((k_rows, lanes), dtype=np.int64)
        rows[:, :len(chans)] = wmat[list(chans)].T
        out.append((rows & 0xFFFF).ravel())
    return np.concatenate([np.ravel(x) for x in out]).astype(np.uint16)


def without_first_group(enc):
    """The coded layer minus its first group of 12 output channels: the same blocks (so the same decoded
    weights), re-entropy-coded with the layer's tables (each lane's DC prediction restarts per group)."""
    from golden import weightcodec as wc

    zz = wc.decode_zz(enc)[wc.blocks_per_group(enc.k):]
    return wc.encode_quantized(zz, enc.p, enc.qf, enc.out_channels - CODEC_LANES, enc.k, (enc.dc_table, enc.ac_table))


def raw_first_group(layer: ConvLayer, out_pixels: int) -> bool:
    """Whether a compressed layer keeps its first group plain: when the group computes over several
    tiles, the array would otherwise wait while the decoders restore the whole first group (K / 64
    blocks per lane, about K cycles plus the tables); the plain fetch delivers a row per beat and the
    tables load behind it. Fully-connected layers (one tile per group) keep every group coded."""
    return out_pixels > 1 and layer.weight.shape[0] > CODEC_LANES


LANE_WORDS_MAX = (1 << 24) - 1   # a lane stream's length in words: a 24-bit table entry


def lane_layout(enc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the lane streams of a coded layer go in the stream area: ``(start beat per lane, length in
    words per lane, the area's words)``. Each lane starts on a 12-word beat (the engine fetches whole
    beats per lane); the gap after a lane's last word is zero."""
    lens = np.array([len(lane) // 2 for lane in enc.lanes], dtype=np.int64)
    if lens.max() > LANE_WORDS_MAX:
        raise EngineLimitError(f"a lane stream of {int(lens.max())} words exceeds the engine's "
                               f"{LANE_WORDS_MAX} (24-bit lane length)")
    beats = -(-lens // CODEC_LANES)
    starts = np.concatenate([[0], np.cumsum(beats)[:-1]])
    area = np.zeros(int(beats.sum()) * CODEC_LANES, dtype=np.uint16)
    for j in range(CODEC_LANES):
        w0 = int(starts[j]) * CODEC_LANES
        area[w0:w0 + lens[j]] = enc.lane_words(j)
    return starts, lens, area


def compressed_weight_image(layer: ConvLayer, raw0: bool = False) -> tuple[np.ndarray, int, np.ndarray, object]:
    """A layer with compressed weights in DRAM: ``(image at w_addr, table entries, stream area words,
    coded layer)``.

    The image is (with ``raw0``) the first group as plain :func:`weight_image` beats, then the table
    writes: the weight decoders' (``hw.jpeg.whost.table_writes``) and the lane registers' (lane ``j``'s
    start beat in the stream area at ``hw.engine.LANE_TABLE_BASE + j``, its length in words at ``+ 16 +
    j``), three words per entry (address, data low, data high), four entries per beat, then per coded
    group of 12 output channels the 3 bias beats of :func:`weight_image`. The stream area holds the
    twelve lane streams (:func:`lane_layout`)."""
    from dataclasses import replace

    from hw.engine import LANE_TABLE_BASE
    from hw.jpeg import whost

    enc = layer.wcodec
    head = np.zeros(0, dtype=np.int64)
    bias_all = np.asarray(layer.bias, dtype=np.int64)
    if raw0:
        head = weight_image(replace(layer, weight=layer.weight[:CODEC_LANES], bias=bias_all[:CODEC_LANES], wcodec=None))
        enc = without_first_group(enc)
        bias_all = bias_all[CODEC_LANES:]
    starts, lens, area = lane_layout(enc)
    tables = whost.table_writes(enc.dc_table, enc.ac_table, enc.qtable, enc.p, enc.lane_group_blocks)
    lanes = [(LANE_TABLE_BASE + j, int(starts[j])) for j in range(CODEC_LANES)]
    lanes += [(LANE_TABLE_BASE + 16 + j, int(lens[j])) for j in range(CODEC_LANES)]
    tables = np.concatenate([tables, np.array(lanes, dtype=np.int64)])
    n = len(tables)
    entries = np.zeros((-(-n // 4) * 4, 3), dtype=np.int64)
    entries[:n, 0] = tables[:, 0]
    entries[:n, 1] = tables[:, 1] & 0xFFFF
    entries[:n, 2] = tables[:, 1] >> 16
    o = enc.out_channels
    bias = np.zeros(-(-o // CODEC_LANES) * CODEC_LANES, dtype=np.int64)
    bias[:o] = bias_all
    b48 = bias.reshape(-1, CODEC_LANES) & ((1 << 48) - 1)
    bias_beats = np.stack([(b48 >> (16 * t)) & 0xFFFF for t in range(BIAS_BEATS)], axis=1)  # [g, 3, 12]
    image = np.concatenate([head, entries.ravel(), bias_beats.ravel()]).astype(np.int64).astype(np.uint16)
    return image, n, area, enc


def alloc_weights(dram: _Dram, layer: ConvLayer, out_pixels: int) -> dict:
    """Place a conv layer's weights in DRAM (groups of ``dram.beat`` lanes); returns the CONV descriptor fields
    that point at them."""
    if layer.wcodec is None:
        img = weight_image(layer, dram.beat)
        return {"w_addr": dram.alloc(img.size, img)}
    if dram.beat != CODEC_LANES:
        raise EngineLimitError(f"layer {layer.name}: coded weights need the {CODEC_LANES}-lane weight decoders; "
                               f"this engine has {dram.beat} lanes")
    raw0 = raw_first_group(layer, out_pixels)
    image, entries, area, enc = compressed_weight_image(layer, raw0)
    return {"w_codec": 1, "w_raw0": int(raw0), "w_addr": dram.alloc(image.size, image), "rows": entries,
            "dram_addr": dram.alloc(area.size, area), "dram_stride": int(area.size),
            "row_len": int(enc.lane_blocks)}


def validate_layer(layer, in_shape, config: EngineConfig) -> tuple[int, int, int]:
    """Check that the engine can run ``layer`` on an input of ``in_shape``; return its output shape."""
    c, h, w = in_shape
    name = layer.name
    if isinstance(layer, ConvLayer):
        o, ci, k, k2 = layer.weight.shape
        cin = c * h * w if layer.flatten else c
        if layer.groups != 1 and (layer.flatten or layer.wcodec is not None or cin % layer.groups
                                  or o % layer.groups):
            raise EngineLimitError(f"layer {name}: groups {layer.groups} with {cin} input and {o} output channels"
                                   f"{', flattened' if layer.flatten else ''}"
                                   f"{', compressed weights' if layer.wcodec is not None else ''}; grouped "
                                   f"convolutions need channel counts divisible by the groups and plain weights")
        if layer.clamp is not None:
            _check(name, "clamp", layer.clamp, 0, 2**FIELDS["clamp"] - 1)
        if ci * layer.groups != cin or k != k2:
            raise EngineLimitError(f"layer {name}: weight shape {layer.weight.shape} does not match input "
                                   f"{in_shape}{' flattened' if layer.flatten else ''}")
        _check(name, "kernel", k, 1, 11)
        _check(name, "stride", layer.stride, 1, 4)
        _check(name, "padding", layer.pad, 0, min(15, k - 1))
        _check(name, "shift", layer.shift, 0, MAX_SHIFT)
        _check(name, "input channels", cin, 1, 2 ** FIELDS["in_c"] - 1)
        _check(name, "output channels", o, 1, 2 ** FIELDS["out_c"] - 1)
        if layer.weight.dtype != np.int16:
            raise EngineLimitError(f"layer {name}: weights must be int16, got {layer.weight.dtype}")
        b = np.asarray(layer.bias, dtype=np.int64)
        if b.size and (b.min() < BIAS_MIN or b.max() > BIAS_MAX):
            raise EngineLimitError(f"layer {name}: bias {int(b.min())}..{int(b.max())} outside {BIAS_MIN}..{BIAS_MAX}")
        out = layer.out_shape(in_shape)
        if out[1] < 1 or out[2] < 1:
            raise EngineLimitError(f"layer {name}: kernel {k} does not fit input {h}x{w} with padding {layer.pad}")
        k_rows = max(p.weight[0].size for _, _, p in conv_packs(layer, config.lanes))
        if layer.wcodec is not None:
            enc = layer.wcodec
            if (enc.out_channels, enc.k) != (o, k_rows):
                raise EngineLimitError(f"layer {name}: compressed weights are for {enc.out_channels} x {enc.k}, "
                                       f"the layer has {o} x {k_rows}")
            if config.wb_depth % 64:
                raise EngineLimitError(f"layer {name}: compressed weights need a weight-buffer depth that is a "
                                       f"multiple of 64, got {config.wb_depth}")
        tiles_per_group = out[1] * out[2]  # an upper bound; a single tile iff one output pixel
        if k_rows > config.wb_depth and tiles_per_group > 1:
            raise EngineLimitError(f"layer {name}: dot product length {k_rows} exceeds the weight buffer depth "
                                   f"{config.wb_depth} on a layer with more than one output pixel")
        return out
    if isinstance(layer, PoolLayer):
        _check(name, "kernel", layer.k, 1, 11)
        _check(name, "stride", layer.stride, 1, 4)
        _check(name, "padding", layer.pad, 0, layer.k // 2)
        out = layer.out_shape(in_shape)
        if out[1] < 1 or out[2] < 1:
            raise EngineLimitError(f"layer {name}: pool {layer.k} does not fit input {h}x{w}")
        return out
    if isinstance(layer, AddLayer):
        _check(name, "shift", layer.shift, 0, MAX_SHIFT)
        if layer.clamp is not None:
            _check(name, "clamp", layer.clamp, 0, 2**FIELDS["clamp"] - 1)
        for wn in ("wa", "wb"):
            _check(name, wn, getattr(layer, wn), -(2**15), 2**15 - 1)
        return in_shape
    if isinstance(layer, GapLayer):
        _check(name, "shift", layer.shift, 0, MAX_SHIFT)
        _check(name, "weight", layer.weight, -(2**15), 2**15 - 1)
        _check(name, "pool size", h * w, 1, 2**16)
        return (c, 1, 1)
    raise EngineLimitError(f"layer {getattr(layer, 'name', layer)!r}: unsupported layer type {type(layer).__name__}")


def _geometry(layer, in_shape):
    """(k, stride, pad, in_c, in_h, in_w, in_ch_stride_full) of a layer as the engine sees it."""
    c, h, w = in_shape
    if isinstance(layer, ConvLayer):
        if layer.flatten:
            return layer.weight.shape[2], 1, 0, c * h * w, 1, 1
        return layer.weight.shape[2], layer.stride, layer.pad, c, h, w
    return layer.k, layer.stride, layer.pad, c, h, w


def is_linear(layers: list) -> bool:
    """True when every layer reads only the previous layer's output (AlexNet, VGG) and none is grouped or a
    concatenation."""
    prev = "input"
    for layer in layers:
        if isinstance(layer, (AddLayer, ConcatLayer)) or getattr(layer, "groups", 1) != 1 \
                or (layer.inputs is not None and tuple(layer.inputs) != (prev,)):
            return False
        prev = layer.name
    return True


def reference_outputs(layers: list, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's golden output (``golden.layers``), following each layer's inputs."""
    out = {"input": x}
    prev = "input"
    for layer in layers:
        ins = layer.inputs or (prev,)
        out[layer.name] = layer.reference(*(out[i] for i in ins))
        prev = layer.name
    del out["input"]
    return out


class _Encoder:
    """Emits the encode unit's commands for the layers in ``plans`` (``sim.encoding``): ENC_TABLES when
    the tables change, then ENCODE from the buffer (a resident map) or LOAD + ENCODE parts (a map in
    DRAM). The wait flags are added afterwards by :func:`add_encode_sync`."""

    def __init__(self, plans, dram: _Dram, cmds: list, tags: list, fb_words: int):
        self.plans = plans or {}
        self.dram, self.cmds, self.tags, self.fbw = dram, cmds, tags, fb_words
        self.loaded = None   # (enc_mode, tables bytes) in the unit
        for plan in self.plans.values():
            plan.out_addr = dram.alloc(plan.area_words)

    def _tables(self, plan, name):
        key = (plan.enc_mode, plan.tables.tobytes())
        if key != self.loaded:
            # one command per run of consecutive table addresses, from its base (fb_addr; the colour build's
            # chrominance set at CHROMA_BASE)
            for base, run in encoding.table_runs(plan.tables):
                words = encoding.table_words(run, base)
                addr = self.dram.alloc(words.size, words)
                self.cmds.append(Command(Op.ENC_TABLES, dram_addr=addr, rows=len(run), enc_mode=plan.enc_mode,
                                         fb_addr=base))
                self.tags.append(name)
            self.loaded = key

    def _encode(self, plan, part, in_addr, ch_stride, first, last, name):
        c, h, w = plan.shape
        self.cmds.append(Command(Op.ENCODE, in_addr=in_addr, in_c=part.c1 - part.c0, in_h=h, in_w=w,
                                 in_ch_stride=ch_stride, in_y0=part.y0, shift=plan.shift, enc_offset=plan.offset,
                                 grid_cols=plan.grid_cols, grid_rows=part.tile_rows, enc_yb0=part.yb0,
                                 enc_ybn=part.ybn, enc_first=int(first), enc_last=int(last),
                                 dram_addr=plan.out_addr, enc_mode=plan.sampling))
        self.tags.append(name)

    def image_from_dram(self, name: str, dram_addr: int) -> None:
        """A camera image (``sim.encoding.ImageEncoding``) held in DRAM as three planes R, G, B of H x W words:
        parts of whole MCU rows (``encoding.image_parts``) LOADed into the two halves of the buffer in turn, so
        the next part loads while the encode unit reads this one; one ENCODE each (``enc_mode``: sampling)."""
        plan = self.plans[name]
        self._tables(plan, name)
        _, h, w = plan.shape
        half = self.fbw // 2
        pieces = encoding.image_parts(h, w, plan.subsampling, half)
        for i, part in enumerate(pieces):
            rows = part.y1 - part.y0
            base = (i % 2) * half
            self.cmds.append(Command(Op.LOAD, dram_addr=dram_addr + part.y0 * w, fb_addr=base, rows=3,
                                     row_len=rows * w, dram_stride=h * w, fb_stride=rows * w))
            self.tags.append(name)
            self.cmds.append(Command(Op.ENCODE, in_addr=base, in_c=3, in_h=h, in_w=w, in_ch_stride=rows * w,
                                     in_y0=part.y0, grid_cols=1, grid_rows=1, enc_yb0=part.yb0, enc_ybn=part.ybn,
                                     enc_first=int(i == 0), enc_last=int(i == len(pieces) - 1),
                                     dram_addr=plan.out_addr, enc_mode=plan.sampling))
            self.tags.append(name)

    def from_buffer(self, name: str, fb_addr: int) -> None:
        plan = self.plans.get(name)
        if plan is None:
            return
        self._tables(plan, name)
        c, h, w = plan.shape
        whole = encoding.parts(plan.shape, plan.grid_cols, 2**62)
        assert len(whole) == 1
        self._encode(plan, whole[0], fb_addr, h * w, True, True, name)

    def from_dram(self, name: str, dram_addr: int) -> None:
        plan = self.plans.get(name)
        if plan is None:
            return
        self._tables(plan, name)
        c, h, w = plan.shape
        pieces = encoding.parts(plan.shape, plan.grid_cols, self.fbw)
        for i, part in enumerate(pieces):
            rows = part.y1 - part.y0
            self.cmds.append(Command(Op.LOAD, dram_addr=dram_addr + part.c0 * h * w + part.y0 * w, fb_addr=0,
                                     rows=part.c1 - part.c0, row_len=rows * w, dram_stride=h * w,
                                     fb_stride=rows * w))
            self.tags.append(name)
            self._encode(plan, part, 0, rows * w, i == 0, i == len(pieces) - 1, name)


def compile_image(plan, image: np.ndarray, config: EngineConfig | None = None) -> Program:
    """The host-only split's edge program: the camera image (uint8 ``[H, W, 3]``, planned by
    ``sim.encoding.plan_image``) JPEG-coded by the engine's colour build (``hw.engine.Engine(colour=True)``).
    DRAM holds the image as three planes R, G, B of 0..255 values in 16-bit words; the program loads them in
    parts (``_Encoder.image_from_dram``), codes them into the area at ``plan.out_addr``
    (``sim.encoding.read_encoding``), and ends. No layer runs: ``layer_names`` is ``[plan.name]`` with no output."""
    config = config or EngineConfig()
    if config.lanes != CODEC_LANES:
        raise EngineLimitError(f"cannot encode on a {config.lanes}-lane engine: the encode unit is built for "
                               f"{CODEC_LANES} lanes")
    image = np.asarray(image)
    if image.shape != (plan.shape[1], plan.shape[2], 3) or image.dtype != np.uint8:
        raise UserError(f"the camera image must be uint8 {plan.shape[1]} x {plan.shape[2]} x 3 (its plan's), got "
                        f"{image.dtype} {image.shape}")
    _check(plan.name, "image height", plan.shape[1], 1, 2**FIELDS["in_h"] - 1)
    _check(plan.name, "image width", plan.shape[2], 1, 2**FIELDS["in_w"] - 1)
    dram = _Dram(config.lanes)
    cmds: list[Command] = []
    tags: list[str] = []
    enc = _Encoder({plan.name: plan}, dram, cmds, tags, config.fb_words)
    planes = np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.uint16)
    src = dram.alloc(planes.size, planes)
    enc.image_from_dram(plan.name, src)
    add_encode_sync(cmds)
    cmds.append(Command(Op.END))
    words = np.concatenate([np.array(c.to_words(config.lanes), dtype=np.uint16) for c in cmds])
    cmd_addr = dram.alloc(words.size, words)
    prog = Program(dram=dram.image(), commands=cmds, command_layer=tags, layer_names=[plan.name], out_shapes={},
                   out_dram={}, macs={plan.name: 0}, banded={plan.name: 0}, encodings={plan.name: plan},
                   array_macs={plan.name: 0})
    prog.cmd_addr = cmd_addr
    return prog


def _fb_write_range(cmd: Command) -> tuple[int, int] | None:
    """The feature-buffer words a command may write (a conservative interval)."""
    if cmd.op == Op.LOAD:
        return cmd.fb_addr, cmd.fb_addr + max(cmd.rows - 1, 0) * cmd.fb_stride + cmd.row_len
    if cmd.op in (Op.CONV, Op.POOL):
        return cmd.out_addr, cmd.out_addr + cmd.out_c * max(cmd.out_ch_stride, cmd.out_h * cmd.out_w)
    if cmd.op == Op.ADD:
        return cmd.out_addr, cmd.out_addr + cmd.row_len
    if cmd.op == Op.GAP:
        return cmd.out_addr, cmd.out_addr + cmd.in_c
    return None


def add_encode_sync(cmds: list[Command]) -> int:
    """Set ``enc_sync`` on every command that writes where an ENCODE may still be reading; returns how
    many commands wait."""
    reading = None
    waits = 0
    for cmd in cmds:
        if cmd.op == Op.ENCODE:
            # (its 16-word reads may run past the map; those words are never used)
            reading = (cmd.in_addr, cmd.in_addr + cmd.in_c * cmd.in_ch_stride)
            continue
        span = _fb_write_range(cmd)
        if reading is not None and span is not None and span[0] < reading[1] and reading[0] < span[1]:
            cmd.enc_sync = 1
            waits += 1
            reading = None
    return waits


def compile_program(layers: list, x: np.ndarray, config: EngineConfig | None = None,
                    verify: bool = True, encode: dict | None = None) -> Program:
    """Lower ``layers`` applied to the int16 map ``x`` [C, H, W] to an engine program.

    Linear networks keep maps resident in the feature buffer when they fit; networks with branches
    (residual adds) run every layer from DRAM to DRAM in bands (``_compile_dag``). ``encode``: layer name
    -> ``sim.encoding.LayerEncoding``; those layers' outputs also go through the encode unit."""
    config = config or EngineConfig()
    x = np.asarray(x)
    if x.ndim != 3:
        raise EngineLimitError(f"input must be a C x H x W map, got shape {x.shape}")
    if encode:
        unknown = sorted(set(encode) - {ly.name for ly in layers})
        if unknown:
            raise EngineLimitError(f"cannot encode {unknown[0]!r}: not a layer of this program "
                                   f"(layers: {', '.join(ly.name for ly in layers)})")
    if config.lanes != CODEC_LANES and encode:
        raise EngineLimitError(f"cannot encode on a {config.lanes}-lane engine: the encode unit is built for "
                               f"{CODEC_LANES} lanes only")
    if not is_linear(layers):
        return _compile_dag(layers, x, config, encode, verify)
    dram = _Dram(config.lanes)
    cmds: list[Command] = []
    tags: list[str] = []
    enc = _Encoder(encode, dram, cmds, tags, config.fb_words)
    shapes = {}
    out_dram = {}
    macs = {}
    banded = {}
    # reserve the command list at address 0 later: build commands first, then place them
    weights_at = {}
    shape = tuple(int(s) for s in x.shape)
    for layer in layers:
        out = validate_layer(layer, shape, config)
        shapes[layer.name] = out
        if isinstance(layer, ConvLayer):
            weights_at[layer.name] = alloc_weights(dram, layer, out[1] * out[2])
            k_rows = layer.weight[0].size
            macs[layer.name] = int(out[0] * out[1] * out[2] * k_rows)
        else:
            macs[layer.name] = 0
        shape = out

    input_addr = dram.alloc(x.size, x.astype(np.int64))
    fbw = config.fb_words
    # the one plan of a linear network (hw.plan.chain): which maps stay in the buffer, how each layer runs
    shape = tuple(int(s) for s in x.shape)
    chain = []
    for layer in layers:
        k, s, _, cin, ih, iw = _geometry(layer, shape)
        out = shapes[layer.name]
        chain.append(ChainLayer(layer.name, cin, ih, iw, k, s, *out,
                                fc=isinstance(layer, ConvLayer) and layer.flatten))
        shape = out
    load_input, steps = plan_chain(chain, x.size, fbw)

    resident: int | None = None     # the buffer address of the current map (None: it is in DRAM, at cur_dram)
    cur_dram = input_addr
    shape = tuple(int(s) for s in x.shape)
    if load_input:
        cmds.append(Command(Op.LOAD, dram_addr=cur_dram, fb_addr=0, rows=1, row_len=x.size,
                            dram_stride=0, fb_stride=0))
        tags.append(layers[0].name if layers else "input")
        resident = 0

    for layer, step in zip(layers, steps, strict=True):
        out = shapes[layer.name]
        k, s, pad, cin, ih, iw = _geometry(layer, shape)
        in_words = cin * ih * iw
        out_words = out[0] * out[1] * out[2]
        is_conv = isinstance(layer, ConvLayer)
        base = dict(op=Op.CONV if is_conv else Op.POOL, k=k, stride=s, pad=pad,
                    relu=int(is_conv and layer.relu), shift=layer.shift if is_conv else 0,
                    in_c=cin, in_w=iw, in_h_total=ih, out_c=out[0], out_w=out[2],
                    **weights_at.get(layer.name, {}), **(_clamp_fields(layer.clamp) if is_conv else {}))
        ch_stride_in = 1 if (is_conv and layer.flatten) else None
        if step.spill_addr is not None:     # the input is in the buffer: store it for a layer from DRAM
            cur_dram = dram.alloc(in_words)
            cmds.append(Command(Op.STORE, dram_addr=cur_dram, fb_addr=step.spill_addr, rows=1, row_len=in_words))
            tags.append(layer.name)
        if step.how in ("bands", "rows"):
            if step.rows is None:
                raise EngineLimitError(f"layer {layer.name}: one output row needs "
                                       f"{cin * min(ih, k) * iw + out[0] * out[2]} buffer words; the buffer has {fbw}")
            if is_conv and layer.flatten and step.rows != out[1]:
                raise EngineLimitError(f"layer {layer.name}: a flattened input of {in_words} words plus "
                                       f"{out_words} output words does not fit the buffer ({fbw} words)")
        if step.how == "whole":             # load the input once; the output stays in the buffer
            cmds.append(Command(Op.LOAD, dram_addr=cur_dram, fb_addr=0, rows=1, row_len=in_words))
            tags.append(layer.name)
        if step.how in ("resident", "whole"):
            cmds.append(Command(in_addr=step.in_addr, in_h=ih, in_ch_stride=ch_stride_in or ih * iw, in_y0=0,
                                out_addr=step.out_addr, out_h=out[1], out_ch_stride=out[1] * out[2], out_y0=0,
                                **base))
            tags.append(layer.name)
            resident = step.out_addr
            banded[layer.name] = 1
        elif step.how == "bands":
            # bands from DRAM to DRAM as the one planner lays them out (hw.plan.plan_bands: double-buffered where
            # that is faster), lowered as in branchy networks
            resident = None
            o_dram = dram.alloc(out_words)

            def emit(cmd: Command, tag: str) -> None:
                cmds.append(cmd)
                tags.append(tag)

            banded[layer.name] = _dag_bands(layer, layer.name, shape, out, cur_dram, o_dram, 0, 0,
                                            weights_at.get(layer.name, {}), fbw, emit, config.overlap_dma,
                                            config.lanes, config.subsample)
            cur_dram = o_dram
            out_dram[layer.name] = o_dram
        else:   # "rows": an FC layer from DRAM, LOAD / compute / STORE per band of rows
            resident = None
            rb = step.rows
            o_dram = dram.alloc(out_words)
            nb = 0
            for oy_a in range(0, out[1], rb):
                oy_b = min(out[1], oy_a + rb)
                y_a = max(0, oy_a * s - pad)
                y_b = min(ih, (oy_b - 1) * s - pad + k)
                rows_in = y_b - y_a
                band_in = cin * rows_in * iw
                cmds.append(Command(Op.LOAD, dram_addr=cur_dram + y_a * iw, fb_addr=0, rows=cin,
                                    row_len=rows_in * iw, dram_stride=ih * iw, fb_stride=rows_in * iw))
                tags.append(layer.name)
                cmds.append(Command(in_addr=0, in_h=rows_in, in_ch_stride=rows_in * iw, in_y0=y_a,
                                    out_addr=band_in, out_h=oy_b - oy_a, out_ch_stride=(oy_b - oy_a) * out[2],
                                    out_y0=oy_a, **base))
                tags.append(layer.name)
                cmds.append(Command(Op.STORE, dram_addr=o_dram + oy_a * out[2], fb_addr=band_in, rows=out[0],
                                    row_len=(oy_b - oy_a) * out[2], dram_stride=out[1] * out[2],
                                    fb_stride=(oy_b - oy_a) * out[2]))
                tags.append(layer.name)
                nb += 1
            banded[layer.name] = nb
            cur_dram = o_dram
            out_dram[layer.name] = o_dram
        if resident is not None:
            if verify:
                v = dram.alloc(out_words)
                cmds.append(Command(Op.STORE, nocount=1, dram_addr=v, fb_addr=resident, rows=1,
                                    row_len=out_words))
                tags.append(layer.name)
                out_dram[layer.name] = v
            enc.from_buffer(layer.name, resident)
        else:
            enc.from_dram(layer.name, cur_dram)
        shape = out

    add_encode_sync(cmds)
    cmds.append(Command(Op.END))
    # place the command list at the top of DRAM (its address goes to the engine's cmd_addr port)
    words = np.concatenate([np.array(c.to_words(config.lanes), dtype=np.uint16) for c in cmds])
    cmd_addr = dram.alloc(words.size, words)
    prog = Program(dram=dram.image(), commands=cmds, command_layer=tags, layer_names=[ly.name for ly in layers],
                   out_shapes=shapes, out_dram=out_dram, macs=macs, banded=banded, encodings=dict(encode or {}),
                   array_macs=dict(macs))
    prog.cmd_addr = cmd_addr
    assert len(words) == len(cmds) * desc_words_padded(config.lanes)
    return prog


def _band_rows(fbw: int, words_per_row: int, fixed: int, total: int, name: str) -> int:
    """The most rows of ``words_per_row`` buffer words (plus ``fixed``) that fit ``fbw``."""
    rows = (fbw - fixed) // words_per_row if words_per_row else total
    if rows < 1:
        raise EngineLimitError(f"layer {name}: one band row needs {words_per_row + fixed} buffer words; "
                               f"the buffer has {fbw}")
    return min(rows, total)


def _compile_dag(layers: list, x: np.ndarray, config: EngineConfig, encode: dict | None = None,
                 verify: bool = True) -> Program:
    """Networks with branches: the maps stay in the buffer where ``hw.plan.plan_dag`` says so (whole-map
    commands, STOREs and LOADs of whole maps to make room); the other layers go DRAM -> bands -> DRAM (with
    ``config.resident`` off, every layer does).

    1x1 stride-1 unpadded convolutions see a band (or a whole map) as one long row (pixels in raster order
    are contiguous in CHW), so the window loader fetches 12 consecutive pixels per read. Grouped convolutions
    run pack by pack (:func:`conv_packs`), each on its slice of the input and output channels; a
    concatenation's inputs are stored straight into its output (module docstring)."""
    fbw = config.fb_words
    dram = _Dram(config.lanes)
    cmds: list[Command] = []
    tags: list[str] = []
    shapes: dict[str, tuple] = {"input": tuple(int(v) for v in x.shape)}
    macs: dict[str, int] = {}
    array_macs: dict[str, int] = {}
    weights_at: dict[tuple[str, int], dict] = {}
    prev = "input"
    ins_of: dict[str, tuple[str, ...]] = {}
    for layer in layers:
        ins = tuple(layer.inputs or (prev,))
        ins_of[layer.name] = ins
        for i in ins:
            if i not in shapes:
                raise EngineLimitError(f"layer {layer.name}: input {i!r} is not an earlier layer")
        in_shape = shapes[ins[0]]
        if isinstance(layer, AddLayer) and shapes[ins[1]] != in_shape:
            raise EngineLimitError(f"layer {layer.name}: adds shapes {in_shape} and {shapes[ins[1]]}")
        if isinstance(layer, ConcatLayer):
            if len({shapes[i][1:] for i in ins}) != 1:
                raise EngineLimitError(f"layer {layer.name}: concatenates maps of different sizes "
                                       f"{[shapes[i] for i in ins]}")
            shapes[layer.name] = layer.out_shape([shapes[i] for i in ins])
            _check(layer.name, "output channels", shapes[layer.name][0], 1, 2 ** FIELDS["out_c"] - 1)
            macs[layer.name] = 0
            prev = layer.name
            continue
        shapes[layer.name] = validate_layer(layer, in_shape, config)
        c, h, w = shapes[layer.name]
        if on_dw_unit(layer, config):
            img = weight_image(layer, config.lanes)
            weights_at[(layer.name, 0)] = {"w_addr": dram.alloc(img.size, img)}
            macs[layer.name] = array_macs[layer.name] = int(c * h * w * 9)
        elif isinstance(layer, ConvLayer):
            for j, (_, _, pack) in enumerate(conv_packs(layer, config.lanes)):
                weights_at[(layer.name, j)] = alloc_weights(dram, pack, h * w)
            macs[layer.name] = int(c * h * w * layer.weight[0].size)
            array_macs[layer.name] = sum(h * w * pk.weight.shape[0] * pk.weight[0].size for _, _, pk in
                                         conv_packs(layer, config.lanes))
        elif isinstance(layer, AddLayer):
            macs[layer.name] = 2 * c * h * w
        elif isinstance(layer, GapLayer):
            macs[layer.name] = int(np.prod(in_shape))
        else:
            macs[layer.name] = 0
        prev = layer.name
    input_addr = dram.alloc(x.size, x.astype(np.int64))
    enc = _Encoder(encode, dram, cmds, tags, fbw)
    addr = _dag_addresses(layers, ins_of, shapes, dram, input_addr)

    def emit(cmd: Command, tag: str) -> None:
        cmds.append(cmd)
        tags.append(tag)

    slots = dag_slots(layers, ins_of, shapes)
    plans = plan_dag([plan_layer(la, ins_of[la.name], shapes, config, slots) for la in layers], fbw) \
        if config.resident else [None] * len(layers)
    banded: dict[str, int] = {}
    for layer, lp in zip(layers, plans, strict=True):
        ins = ins_of[layer.name]
        name = layer.name
        ci, ih, iw = shapes[ins[0]]
        oc, oh, ow = shapes[name]
        out = addr[name]
        src = addr[ins[0]]
        nb = 0
        if lp is not None:
            for t, a in lp.spills:
                emit(Command(Op.STORE, dram_addr=addr[t], fb_addr=a, rows=1, row_len=int(np.prod(shapes[t]))), name)
            for t in lp.loads:
                emit(Command(Op.LOAD, dram_addr=addr[t], fb_addr=lp.fb[t], rows=1, row_len=int(np.prod(shapes[t]))),
                     name)
            for t, a in lp.copies:
                emit(Command(Op.LOAD, dram_addr=addr[t], fb_addr=a, rows=1, row_len=int(np.prod(shapes[t]))), name)
        if lp is not None and lp.resident:
            _resident_cmds(layer, ins, shapes, lp.fb, weights_at, config, emit)
            # every output readable afterwards: a dump the counters do not see (a concatenation's inputs are in
            # its DRAM region already, from their own dumps, unless one was copied)
            if verify and (not isinstance(layer, ConcatLayer) or lp.copies):
                emit(Command(Op.STORE, nocount=1, dram_addr=out, fb_addr=lp.fb[name], rows=1,
                             row_len=oc * oh * ow), name)
            banded[name] = 1
            enc.from_buffer(name, lp.fb[name])
            continue
        if isinstance(layer, ConcatLayer):
            off = 0
            for t in ins:
                n = int(np.prod(shapes[t]))
                dst = out + off * oh * ow
                if addr[t] != dst:  # not placed in this concatenation: copy it
                    for a in range(0, n, fbw):
                        m = min(fbw, n - a)
                        emit(Command(Op.LOAD, dram_addr=addr[t] + a, fb_addr=0, rows=1, row_len=m), name)
                        emit(Command(Op.STORE, dram_addr=dst + a, fb_addr=0, rows=1, row_len=m), name)
                        nb += 1
                off += shapes[t][0]
        elif isinstance(layer, AddLayer):
            nb = _dag_add_bands(layer, name, [addr[t] for t in ins], out, (ci, ih, iw), fbw, emit,
                                config.overlap_dma)
        elif isinstance(layer, GapLayer):
            hw = ih * iw
            cb = _band_rows(fbw, hw + 1, 0, ci, name)
            for c0 in range(0, ci, cb):
                c1 = min(ci, c0 + cb)
                emit(Command(Op.LOAD, dram_addr=src + c0 * hw, fb_addr=0, rows=1, row_len=(c1 - c0) * hw), name)
                emit(Command(Op.GAP, in_addr=0, in_c=c1 - c0, row_len=hw, in_ch_stride=hw, out_addr=(c1 - c0) * hw,
                             wa=layer.weight, shift=layer.shift), name)
                emit(Command(Op.STORE, dram_addr=out + c0, fb_addr=(c1 - c0) * hw, rows=1, row_len=c1 - c0), name)
                nb += 1
        elif isinstance(layer, ConvLayer) and layer.flatten:
            k, s, pad, cin, gh, gw = _geometry(layer, (ci, ih, iw))
            n_in = cin
            if n_in + oc > fbw:
                raise EngineLimitError(f"layer {name}: a flattened input of {n_in} words plus {oc} output "
                                       f"words does not fit the buffer ({fbw} words)")
            base = dict(op=Op.CONV, k=k, stride=s, pad=pad, relu=int(layer.relu), shift=layer.shift, in_c=cin,
                        out_c=oc, **weights_at[(name, 0)], **_clamp_fields(layer.clamp))
            emit(Command(Op.LOAD, dram_addr=src, fb_addr=0, rows=1, row_len=n_in), name)
            emit(Command(in_addr=0, in_h=1, in_w=1, in_h_total=1, in_ch_stride=1, out_addr=n_in, out_h=1,
                         out_w=1, out_ch_stride=1, **base), name)
            emit(Command(Op.STORE, dram_addr=out, fb_addr=n_in, rows=1, row_len=oc), name)
            nb = 1
        else:
            if on_dw_unit(layer, config):
                parts = [(0, 0, layer, {**weights_at[(name, 0)], "op": Op.DWCONV})]
            elif isinstance(layer, ConvLayer):
                parts = [(c0, o0, pk, weights_at[(name, j)])
                         for j, (c0, o0, pk) in enumerate(conv_packs(layer, config.lanes))]
            else:
                parts = [(0, 0, layer, {"op": Op.DWPOOL} if pool_on_dw_unit(layer, config) else {})]
            for c0, o0, part, wfields in parts:
                nb += _dag_bands(part, name, (ci, ih, iw), (oc, oh, ow), src, out, c0, o0, wfields, fbw, emit,
                                 config.overlap_dma, config.lanes, config.subsample)
        banded[name] = nb
        enc.from_dram(name, out)

    add_encode_sync(cmds)
    cmds.append(Command(Op.END))
    words = np.concatenate([np.array(c.to_words(config.lanes), dtype=np.uint16) for c in cmds])
    cmd_addr = dram.alloc(words.size, words)
    del shapes["input"]
    prog = Program(dram=dram.image(), commands=cmds, command_layer=tags, layer_names=[ly.name for ly in layers],
                   out_shapes=shapes, out_dram={n: addr[n] for n in shapes}, macs=macs, banded=banded,
                   encodings=dict(encode or {}), array_macs={n: array_macs.get(n, macs[n]) for n in macs})
    prog.cmd_addr = cmd_addr
    return prog


def dag_slots(layers: list, ins_of: dict, shapes: dict) -> dict[str, tuple[str, int]]:
    """``hw.plan.concat_slots`` of the concatenations among ``layers`` (word offsets)."""
    return concat_slots([(la.name, ins_of[la.name], tuple(int(np.prod(shapes[t])) for t in ins_of[la.name]))
                         for la in layers if isinstance(la, ConcatLayer)])


def plan_layer(layer, ins: tuple[str, ...], shapes: dict, config: EngineConfig, slots: dict | None = None
               ) -> PlanLayer:
    """``layer`` as ``hw.plan.plan_dag`` sees it (the cost model builds the same from the golden layers)."""
    words = {t: int(np.prod(shapes[t])) for t in (*ins, layer.name)}
    offsets: tuple[int, ...] = ()
    if isinstance(layer, ConcatLayer):
        acc, offs = 0, []
        for t in ins:
            offs.append(acc)
            acc += words[t]
        offsets = tuple(offs)
    return PlanLayer(layer.name, ins, tuple(words[t] for t in ins), words[layer.name], offsets=offsets,
                     band=band_shape(layer, shapes[ins[0]], shapes[layer.name], config),
                     **({"slot": slots[layer.name][0], "offset": slots[layer.name][1]}
                        if slots and layer.name in slots else {}))


def band_shape(layer, in_shape: tuple, out_shape: tuple, config: EngineConfig) -> BandShape | None:
    """``layer`` as its bands see it (``_dag_bands``) when it runs from DRAM as one command per band: a conv, a
    pool or a depthwise conv (not a grouped conv's packs, a flattened conv, an add or a global pool)."""
    if not isinstance(layer, (ConvLayer, PoolLayer)) or (isinstance(layer, ConvLayer) and layer.flatten):
        return None
    oc, oh, ow = out_shape
    k, s, pad, cin, gh, gw = _geometry(layer, in_shape)
    if on_dw_unit(layer, config):
        kind, cin = "dw", oc
    elif isinstance(layer, ConvLayer):
        if layer.groups != 1:
            return None
        kind, cin, oc = "conv", layer.weight.shape[1], layer.weight.shape[0]
    else:
        kind = "dwpool" if pool_on_dw_unit(layer, config) else "pool"
    return BandShape(kind, oh, gh, s, k, pad, cin, gw, oc, ow, lanes=config.lanes)


def _resident_cmds(layer, ins: tuple[str, ...], shapes: dict, fb: dict, weights_at: dict, config: EngineConfig,
                   emit) -> None:
    """The whole-map command(s) of a layer whose maps are in the buffer at ``fb``."""
    if isinstance(layer, ConcatLayer):   # its inputs are in place (or were loaded there)
        return
    name = layer.name
    ci, ih, iw = shapes[ins[0]]
    oc, oh, ow = shapes[name]
    src, out = fb[ins[0]], fb[name]
    if isinstance(layer, AddLayer):
        emit(Command(Op.ADD, in_addr=fb[ins[0]], in2_addr=fb[ins[1]], out_addr=out, row_len=oc * oh * ow,
                     wa=layer.wa, wb=layer.wb, shift=layer.shift, relu=int(layer.relu), **_clamp_fields(layer.clamp)),
             name)
        return
    if isinstance(layer, GapLayer):
        emit(Command(Op.GAP, in_addr=src, in_c=ci, row_len=ih * iw, in_ch_stride=ih * iw, out_addr=out,
                     wa=layer.weight, shift=layer.shift), name)
        return
    k, s, pad, cin, gh, gw = _geometry(layer, (ci, ih, iw))
    if isinstance(layer, ConvLayer) and layer.flatten:
        emit(Command(Op.CONV, k=k, stride=s, pad=pad, relu=int(layer.relu), shift=layer.shift, in_c=cin, out_c=oc,
                     in_addr=src, in_h=1, in_w=1, in_h_total=1, in_ch_stride=1, out_addr=out, out_h=1, out_w=1,
                     out_ch_stride=1, **weights_at[(name, 0)], **_clamp_fields(layer.clamp)), name)
        return
    if on_dw_unit(layer, config):
        parts = [(0, 0, layer, {**weights_at[(name, 0)], "op": Op.DWCONV})]
    elif isinstance(layer, ConvLayer):
        parts = [(c0, o0, pk, weights_at[(name, j)])
                 for j, (c0, o0, pk) in enumerate(conv_packs(layer, config.lanes))]
    else:
        parts = [(0, 0, layer, {"op": Op.DWPOOL} if pool_on_dw_unit(layer, config) else {})]
    for c0, o0, part, wfields in parts:
        is_conv = isinstance(part, ConvLayer)
        if wfields.get("op") == Op.DWCONV:
            p_in, p_out = part.weight.shape[0], part.weight.shape[0]
        elif is_conv:
            p_in, p_out = part.weight.shape[1], part.weight.shape[0]
        else:
            p_in = p_out = ci
        cmd = dict(op=Op.CONV if is_conv else Op.POOL, k=k, stride=s, pad=pad, relu=int(is_conv and part.relu),
                   shift=part.shift if is_conv else 0, in_c=p_in, out_c=p_out,
                   **(_clamp_fields(part.clamp) if is_conv else {}))
        cmd.update(wfields)
        if is_conv and k == 1 and s == 1 and pad == 0 and ih * iw < 2 ** FIELDS["in_w"] \
                and wfields.get("op") != Op.DWCONV:   # the map as one long row
            geo = dict(in_h=1, in_w=ih * iw, in_h_total=1, out_h=1, out_w=oh * ow)
        else:
            geo = dict(in_h=ih, in_w=iw, in_h_total=ih, out_h=oh, out_w=ow)
        emit(Command(in_addr=src + c0 * ih * iw, in_ch_stride=ih * iw, in_y0=0, out_addr=out + o0 * oh * ow,
                     out_ch_stride=oh * ow, out_y0=0, **geo, **cmd), name)


def _dag_addresses(layers: list, ins_of: dict, shapes: dict, dram: _Dram, input_addr: int) -> dict[str, int]:
    """DRAM addresses of every tensor. A concatenation's output is allocated as a whole and each of its
    inputs placed at its channel offset, unless it is the network input or already placed in a later
    concatenation (that one is copied, see ``_compile_dag``)."""
    addr = {"input": input_addr}
    slot = {t: (c, off // (shapes[c][1] * shapes[c][2])) for t, (c, off) in dag_slots(layers, ins_of, shapes).items()}

    def place(t: str) -> int:
        if t not in addr:
            if t in slot:
                base, off = slot[t]
                _, h, w = shapes[base]
                addr[t] = place(base) + off * h * w
            else:
                addr[t] = dram.alloc(int(np.prod(shapes[t])))
        return addr[t]

    for layer in layers:
        place(layer.name)
    return addr


def _dag_add_bands(layer, name: str, srcs: list[int], out: int, shape: tuple, fbw: int, emit, overlap: bool = True
                   ) -> int:
    """The bands of a residual ADD from DRAM to DRAM (``hw.plan.add_bands``). Sequential: LOAD A, LOAD B, ADD,
    STORE per band. Double-buffered (each band in its half of the buffer): the first band's inputs in the
    foreground, then per band the next band's A handed over to the LOAD engine (it starts when this band's B is
    in), this band's ADD, its STORE handed over (the last one in the foreground), the next band's B handed over
    (when the next A is in); the last ADD waits for its B (``wait_ld``). Returns the bands."""
    ci, ih, iw = shape
    plan = add_bands(ci, ih, iw, fbw, overlap)
    if plan is None:
        raise EngineLimitError(f"layer {name}: one band row needs {3 * ci * iw} buffer words; the buffer has {fbw}")
    rb, double = plan.rows, plan.double
    bands = [(ya, min(ih, ya + rb)) for ya in range(0, ih, rb)]
    region = fbw // 2 if double else 0

    def load(i: int, j: int, **kw) -> Command:   # A, B and the output follow each other in the band's half
        ya, yb = bands[i]
        return Command(Op.LOAD, dram_addr=srcs[j] + ya * iw, fb_addr=(i % 2) * region + j * ci * (yb - ya) * iw,
                       rows=ci,
                       row_len=(yb - ya) * iw, dram_stride=ih * iw, fb_stride=(yb - ya) * iw, **kw)

    if double:
        emit(load(0, 0), name)
        emit(load(0, 1), name)
    for i, (ya, yb) in enumerate(bands):
        last = i == len(bands) - 1
        at = (i % 2) * region
        if not double:
            emit(load(i, 0), name)
            emit(load(i, 1), name)
        elif not last:
            emit(load(i + 1, 0, bg=1), name)
        n = ci * (yb - ya) * iw
        emit(Command(Op.ADD, in_addr=at, in2_addr=at + n, out_addr=at + 2 * n, row_len=n, wa=layer.wa,
                     wb=layer.wb, shift=layer.shift, relu=int(layer.relu), wait_ld=int(double and last),
                     **_clamp_fields(layer.clamp)), name)
        emit(Command(Op.STORE, dram_addr=out + ya * iw, fb_addr=at + 2 * n, rows=ci, row_len=(yb - ya) * iw,
                     dram_stride=ih * iw, fb_stride=(yb - ya) * iw, bg=int(double and not last)), name)
        if double and not last:
            emit(load(i + 1, 1, bg=1), name)
    return len(bands)


def _dag_bands(layer, name: str, in_shape: tuple, out_shape: tuple, src: int, out: int, c0: int, o0: int,
               wfields: dict, fbw: int, emit, overlap: bool = True, lanes: int = LANES, subsample: bool = True) -> int:
    """The bands of a conv (pack), depthwise conv or pool from DRAM to DRAM: its input channels start at channel
    ``c0`` of the map at ``src``, its output channels at channel ``o0`` of the map at ``out``. Returns the bands.

    The bands follow ``hw.plan.plan_bands``. Double-buffered bands (``overlap``, when the plan favours them): two
    input and two output regions, band ``i + 1``'s LOAD and band ``i - 1``'s STORE run in the background
    (``bg``) while band ``i`` computes (hw.dma: an engine takes one transfer at a time, so handing over the next
    LOAD waits for band ``i``'s, and a STORE for the one before; the last band's compute waits for its LOAD,
    ``wait_ld``, and its STORE runs in the foreground). Otherwise LOAD, compute and STORE follow each other.

    A 1x1 conv at stride 2 or more (``hw.plan.subsampled_conv``) computes each band in two commands: a POOL of
    kernel 1 at its stride copies the band's subsampled input into a scratch region after the band's input, then
    the conv at stride 1 reads it as one long row (one buffer read per beat instead of two)."""
    ci, ih, iw = in_shape
    oc_all, oh, ow = out_shape
    is_conv = isinstance(layer, ConvLayer)
    k, s, pad, cin, gh, gw = _geometry(layer, (ci, ih, iw))
    if wfields.get("op") == Op.DWCONV:    # the depthwise unit: every channel in and out
        cin = oc = layer.weight.shape[0]
    elif is_conv:
        cin, oc = layer.weight.shape[1], layer.weight.shape[0]
    else:
        oc = oc_all
    base = dict(op=Op.CONV if is_conv else Op.POOL, k=k, stride=s, pad=pad, relu=int(is_conv and layer.relu),
                shift=layer.shift if is_conv else 0, in_c=cin, out_c=oc,
                **(_clamp_fields(layer.clamp) if is_conv else {}))
    base.update(wfields)
    pointwise = is_conv and k == 1 and s == 1 and pad == 0
    kind = {Op.DWCONV: "dw", Op.DWPOOL: "dwpool", Op.POOL: "pool"}.get(base["op"], "conv")
    row_cycles, weight_beats = band_work(kind, cin, oc, ow, k, s, lanes)
    sub = subsample and kind == "conv" and subsampled_conv(k, s, pad, oc, lanes)
    plan = plan_bands(oh, gh, s, k, pad, cin, gw, oc, ow, fbw, row_cycles, weight_beats, overlap,
                      scratch_c=cin if sub else 0)
    if plan is None and sub:   # (the scratch map does not fit: the conv at its stride)
        sub, plan = False, plan_bands(oh, gh, s, k, pad, cin, gw, oc, ow, fbw, row_cycles, weight_beats, overlap)
    if plan is None:
        raise EngineLimitError(f"layer {name}: one output row needs {cin * min(gh, k) * gw + oc * ow} buffer words; "
                               f"the buffer has {fbw}")
    rb, double = plan.rows, plan.double
    bands = [(oy_a, min(oh, oy_a + rb)) for oy_a in range(0, oh, rb)]
    region = fbw // 2 if double else 0    # the second input + output region

    def rows_in_of(oy_a: int, oy_b: int) -> int:
        return min(gh, (oy_b - 1) * s - pad + k) - max(0, oy_a * s - pad)

    # (double-buffered: the output region at a fixed place after the largest band input, so that a band's LOAD
    # never reaches the output the band before last may still be storing)
    out_at = cin * max(rows_in_of(a, b) for a, b in bands) * gw if double else None

    def load(i: int, **kw) -> Command:
        oy_a, oy_b = bands[i]
        y_a = max(0, oy_a * s - pad)
        y_b = min(gh, (oy_b - 1) * s - pad + k)
        return Command(Op.LOAD, dram_addr=src + c0 * gh * gw + y_a * gw, fb_addr=(i % 2) * region, rows=cin,
                       row_len=(y_b - y_a) * gw, dram_stride=gh * gw, fb_stride=(y_b - y_a) * gw, **kw)

    if double:
        emit(load(0), name)
    for i, (oy_a, oy_b) in enumerate(bands):
        y_a = max(0, oy_a * s - pad)
        y_b = min(gh, (oy_b - 1) * s - pad + k)
        rows_in = y_b - y_a
        at = (i % 2) * region
        band_in = cin * rows_in * gw if out_at is None else out_at
        last = i == len(bands) - 1
        if not double:
            emit(load(i), name)
        elif not last:
            emit(load(i + 1, bg=1), name)
        out_fb = at + band_in
        if sub:
            # the band's input subsampled into the scratch region (rb rows: its place is the same in every band)
            rows_out = oy_b - oy_a
            scratch = at + band_in
            out_fb = scratch + cin * (rb if double else rows_out) * ow
            emit(Command(Op.POOL, k=1, stride=s, pad=0, in_c=cin, out_c=cin, in_addr=at, in_ch_stride=rows_in * gw,
                         in_h=rows_in, in_w=gw, in_h_total=gh, in_y0=y_a, out_addr=scratch,
                         out_ch_stride=rows_out * ow, out_h=rows_out, out_w=ow, out_y0=oy_a,
                         wait_ld=int(double and last)), name)
            m = rows_out * ow
            geo = (dict(in_h=1, in_w=m, in_h_total=1, out_h=1, out_w=m) if m < 2 ** FIELDS["in_w"]
                   else dict(in_h=rows_out, in_w=ow, in_h_total=rows_out, out_h=rows_out, out_w=ow))
            emit(Command(in_addr=scratch, in_ch_stride=m, in_y0=0, out_addr=out_fb, out_ch_stride=m, out_y0=0,
                         **geo, **{**base, "stride": 1}), name)
        else:
            if pointwise:  # the band as one row of (rows x width) pixels
                geo = dict(in_h=1, in_w=rows_in * gw, in_h_total=1, in_y0=0, out_h=1, out_w=(oy_b - oy_a) * ow,
                           out_y0=0)
            else:
                geo = dict(in_h=rows_in, in_w=gw, in_h_total=gh, in_y0=y_a, out_h=oy_b - oy_a, out_w=ow,
                           out_y0=oy_a)
            emit(Command(in_addr=at, in_ch_stride=rows_in * gw, out_addr=out_fb, out_ch_stride=(oy_b - oy_a) * ow,
                         wait_ld=int(double and last), **geo, **base), name)
        emit(Command(Op.STORE, dram_addr=out + o0 * oh * ow + oy_a * ow, fb_addr=out_fb, rows=oc,
                     row_len=(oy_b - oy_a) * ow, dram_stride=oh * ow, fb_stride=(oy_b - oy_a) * ow,
                     bg=int(double and not last)), name)
    return len(bands)


# ---- FC batching (issue 16 item 4: ``make sim BATCH=n``) -----------------------------------------------------


def check_batch(batch, lanes: int = LANES) -> int:
    """``batch`` frames per FC pass, checked: an integer in 1..``lanes`` (the n frames are the n pixels of one
    tile, so one tile per weight group, which a layer deeper than a weight bank needs); else a one-line
    UserError naming the value and the range."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 1 <= batch <= lanes:
        raise UserError(f"batch {batch!r} is outside 1..{lanes} (the frames of one FC pass are the pixels of one "
                        f"{lanes}-pixel tile); allowed: an integer in 1..{lanes}")
    return int(batch)


def compile_fc_batch(layer: ConvLayer, xs: list, config: EngineConfig | None = None, packed: bool = False,
                     verify: bool = True) -> Program:
    """One fully-connected layer (``flatten=True``) run once for the ``n = len(xs)`` frames ``xs`` (each frame's
    input map, any shape, flattened): a 1x1 CONV over a 1 x n map, so the layer's weights stream through the
    weight banks once and n of the array's columns work (n in 1..lanes: one tile per group).

    The input is laid out as (in_c, 1, n) in the feature buffer (word ``c * n + f``). ``packed=False``: each
    frame's vector is contiguous in DRAM (what a layer of that frame wrote) and is gathered by one LOAD per frame
    (``rows`` = in_c runs of one word, ``fb_stride`` n); ``packed=True``: the frames are already interleaved in
    DRAM (the (oc, 1, n) output of a batched FC layer before), one contiguous LOAD. The output (oc, 1, n) stays
    resident (``verify``: dumped by a ``nocount`` STORE, as :func:`compile_program` does); ``read_output`` gives
    it as [oc, 1, n], frame f at ``[:, :, f]``. At n = 1 and ``packed=False`` the commands are those of a
    single-FC-layer :func:`compile_program` (a LOAD of the vector, the CONV, the dump)."""
    config = config or EngineConfig()
    if not (isinstance(layer, ConvLayer) and layer.flatten):
        raise EngineLimitError(f"layer {getattr(layer, 'name', layer)!r}: only fully-connected (flattened) layers "
                               f"run batched")
    n = check_batch(len(xs), config.lanes)
    xs = [np.asarray(x) for x in xs]
    shape = tuple(int(s) for s in xs[0].shape)
    if any(tuple(x.shape) != shape for x in xs):
        raise EngineLimitError(f"layer {layer.name}: the frames' inputs differ in shape "
                               f"({sorted({tuple(x.shape) for x in xs})})")
    out = validate_layer(layer, shape, config)
    name = layer.name
    cin, oc = int(np.prod(shape)), out[0]
    in_words, out_words = cin * n, oc * n
    if in_words + out_words > config.fb_words:
        raise EngineLimitError(f"layer {name}: {n} frames of {cin} input plus {oc} output words "
                               f"({in_words + out_words}) do not fit the buffer ({config.fb_words} words)")
    _check(name, "batched map width", n, 1, 2 ** FIELDS["in_w"] - 1)
    dram = _Dram(config.lanes)
    wfields = alloc_weights(dram, layer, n)
    cmds: list[Command] = []
    if packed:
        src = dram.alloc(in_words, np.stack([x.reshape(-1) for x in xs], axis=1).astype(np.int64))
        cmds.append(Command(Op.LOAD, dram_addr=src, fb_addr=0, rows=1, row_len=in_words))
    elif n == 1:
        src = dram.alloc(cin, xs[0].astype(np.int64))
        cmds.append(Command(Op.LOAD, dram_addr=src, fb_addr=0, rows=1, row_len=cin))
    else:
        for f, x in enumerate(xs):
            src = dram.alloc(cin, x.astype(np.int64))
            cmds.append(Command(Op.LOAD, dram_addr=src, fb_addr=f, rows=cin, row_len=1, dram_stride=1, fb_stride=n))
    cmds.append(Command(Op.CONV, k=1, stride=1, pad=0, relu=int(layer.relu), shift=layer.shift, in_c=cin,
                        in_w=n, in_h_total=1, out_c=oc, out_w=n, in_addr=0, in_h=1, in_ch_stride=n, in_y0=0,
                        out_addr=in_words, out_h=1, out_ch_stride=n, out_y0=0, **wfields,
                        **_clamp_fields(layer.clamp)))
    out_dram = {}
    if verify:
        v = dram.alloc(out_words)
        cmds.append(Command(Op.STORE, nocount=1, dram_addr=v, fb_addr=in_words, rows=1, row_len=out_words))
        out_dram[name] = v
    tags = [name] * len(cmds)
    cmds.append(Command(Op.END))
    words = np.concatenate([np.array(c.to_words(config.lanes), dtype=np.uint16) for c in cmds])
    cmd_addr = dram.alloc(words.size, words)
    macs = {name: int(oc * cin * n)}
    prog = Program(dram=dram.image(), commands=cmds, command_layer=tags, layer_names=[name],
                   out_shapes={name: (oc, 1, n)}, out_dram=out_dram, macs=macs, banded={name: 1},
                   array_macs=dict(macs))
    prog.cmd_addr = cmd_addr
    return prog
