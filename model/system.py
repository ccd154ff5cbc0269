"""The system model of the seed paper: edge inference, then encode + transmit, as a 2-stage pipeline.

For a network split at ``split`` (every stage up to it on the edge engine, its output sent to the host):

* **Stage 1, inference**: the edge layers' cycles (:mod:`model.counts`: RTL counters where simulated,
  analytical otherwise) at the technology's clock.
* **Stage 2, encode + transmit**: the encoder codes the split feature at 1 sample per clock (the RTL
  encoder's rate, ``hw/jpeg/encoder.py``), then the radio sends ``raw bytes / ratio`` at the link rate.
* Frames overlap (frame *n* is sent while frame *n+1* is inferred): **frame time = the longer stage**,
  ``fps = 1 / frame time``; the ``bottleneck`` is that stage (``inference`` or ``transmit``).
* **Energy per frame** (edge device only; the host is mains-powered) = compute (MACs, accumulator and
  pipeline registers, max-pool compares, requantization) + on-chip memory (feature buffer, weight
  buffer, segment buffers; the encoder's read of a resident feature) + DRAM (weights, spills, the
  encoder's read of a feature or image held in DRAM) + encoder (per sample) + radio (power x airtime)
  + leakage of the blocks in use over the frame time (the engine when any layer runs on the edge, the
  encoder when encoding).

Splits: ``input`` is **host-only** (the camera image, 8 bits per sample, raw or coded, is sent; nothing
runs on the engine); the last split (``fc8`` for AlexNet) is **edge-only** (the logits are sent).

Links: ``1mbps``, ``2mbps``, ``22mbps`` = the paper's 802.11b/g/n ultra-low-power transmitter at 62.7, 99
and 660 mW; or ``RATE_BPS:POWER_W`` (for example ``5e6:0.2``; rate 1e3..1e12 bit/s, power 0..100 W:
:mod:`golden.limits`). A given compression ratio must lie in 0.1..1e5.

Encodings: ``none`` (raw), ``lossless`` (zero-run-length + Huffman), ``jpeg`` (lossy, at the QF that meets
the accuracy budget, or a given QF). Compression ratios come from the accuracy study's JSON
(``build/accuracy/<net>.json``, of that very network: same name, source and input shape) when present, else
from ``model/ratios.yaml`` (seeded with the paper's figures; each entry marked ``paper`` or ``assumed``), else,
for a network without an entry there (a user network, a newer built-in), from its ``default_rule`` (source
``assumed``, the note says which rule and, for a user network, that it has neither an entry nor a study);
every result carries that provenance.

Networks: every function takes a built-in name, a loaded user network's name or a
:class:`golden.network.Network` (``golden.network.load_network``: ``PATH.onnx``, ``PATH.py:FACTORY``); results
name the network by ``Network.name``.

Weights: ``int16`` (default; rows of plain weights from DRAM) or ``jpeg`` (issue #8: JPEG-coded weights in
DRAM, restored on chip by the weight decoder; :mod:`model.counts` gives the edge counts: RTL
``*_wjpeg.json`` runs or the analytical decoder model, per-layer sizes from ``build/weights/<net>.json``).
With ``jpeg`` the breakdown's ``weight_decoder_j`` is the decoder's energy per restored weight (technology
key ``energy.weight_decoder``) and DRAM energy falls with the coded words; the twelve lane decoders feed FC
layers a row per cycle, faster than their int16 rows arrive from DRAM.

Samples through the encoder: JPEG codes a feature map as the ``golden.featpack`` mosaic (each channel a
tile padded to multiples of 8, a near-square grid of tiles), the image as 3 components 4:4:4; lossless
codes ``golden.lossless.to_blocks`` (each channel padded to multiples of 8); an N-vector (FC output) is
coded as ``ceil(N / 64)`` blocks of consecutive values.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from golden import limits
from golden.errors import UserError
from golden.featpack import grid_columns
from golden.network import INPUT, Network, network
from hw.tech import Tech, load_tech
from model.counts import (
    DEFAULT_ENGINE,
    WEIGHT_FORMATS,
    EngineParams,
    NetCounts,
    check_weights,
    net_counts,
    rtl_image_encode,
    same_network,
)

REPO = Path(__file__).resolve().parents[1]
ACCURACY_DIR = REPO / "build" / "accuracy"
RATIOS_FILE = Path(__file__).resolve().parent / "ratios.yaml"

ENCODINGS = ("none", "lossless", "jpeg")
ENCODER_SAMPLES_PER_CYCLE = {"jpeg": 1.0, "lossless": 1.0}
IMAGE_BYTES_PER_SAMPLE = 1
FEATURE_BYTES_PER_VALUE = 2
ACC_BITS = 48
BEAT_OPERAND_BITS = 2 * 12 * 16           # 12 activations + 12 weights registered per beat (of a 12-lane array)
BREAKDOWN_KEYS = ("compute_j", "onchip_memory_j", "dram_j", "encoder_j", "radio_j", "leakage_j", "weight_decoder_j")
STAGES = ("inference", "transmit")


# ---- links -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    name: str
    rate_bps: float
    power_w: float


LINKS: dict[str, Link] = {
    "1mbps": Link("1mbps", 1e6, 62.7e-3),
    "2mbps": Link("2mbps", 2e6, 99e-3),
    "22mbps": Link("22mbps", 22e6, 660e-3),
}
DEFAULT_LINK = "2mbps"


def parse_link(link: str | Link) -> Link:
    """``1mbps``/``2mbps``/``22mbps`` or ``RATE_BPS:POWER_W``; UserError naming the value otherwise."""
    if isinstance(link, Link):
        return _check_link(link)
    text = str(link).strip()
    if text.lower() in LINKS:
        return LINKS[text.lower()]
    allowed = f"allowed: {', '.join(LINKS)} or RATE_BPS:POWER_W (for example 5e6:0.2)"
    parts = text.split(":")
    if len(parts) != 2:
        raise UserError(f"unknown link {text!r}; {allowed}")
    try:
        rate, power = float(parts[0]), float(parts[1])
    except ValueError:
        raise UserError(f"unknown link {text!r}; {allowed}") from None
    return _check_link(Link(text, rate, power))


def _check_link(link: Link) -> Link:
    if not limits.LINK_RATE_BPS.ok(link.rate_bps):
        raise UserError(f"link {link.name!r}: rate {link.rate_bps:g} bit/s must be a positive number in "
                        f"{limits.LINK_RATE_BPS.text()}")
    if not limits.LINK_POWER_W.ok(link.power_w):
        raise UserError(f"link {link.name!r}: power {link.power_w:g} W must be a number >= 0 and <= "
                        f"{limits.LINK_POWER_W.hi:g} W")
    return link


def check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise UserError(f"unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    return encoding


def check_qf(qf: Any) -> int | None:
    if qf is None:
        return None
    if isinstance(qf, bool) or not isinstance(qf, int | float) or int(qf) != qf or not 1 <= qf <= 100:
        raise UserError(f"QF {qf!r} is outside the allowed range 1..100 (an integer)")
    return int(qf)


# ---- compression ratios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compression:
    """How a split's feature is coded: ``ratio`` = raw / transmitted bytes."""

    ratio: float
    qf: int | None
    accuracy_loss: float | None     # absolute top-1 loss at this point (None: unknown)
    source: str                     # accuracy-study | paper | assumed | none | given
    note: str = ""


@dataclass(frozen=True)
class RatioTable:
    budget: float
    curve: tuple[tuple[float, float], ...]
    nets: dict[str, dict[str, dict[str, Any]]]
    rule: dict[str, dict[str, float]]
    path: str

    def size_at(self, qf: float) -> float:
        pts = self.curve
        if qf <= pts[0][0]:
            return pts[0][1]
        for (q0, s0), (q1, s1) in zip(pts, pts[1:], strict=False):
            if qf <= q1:
                return s0 + (s1 - s0) * (qf - q0) / (q1 - q0)
        return pts[-1][1]


def _ratio_error(path: str, key: str, msg: str) -> UserError:
    return UserError(f"ratio table {path}: {key}: {msg}")


def _check_entry(path: str, key: str, e: Any, need_source: bool) -> dict[str, Any]:
    if not isinstance(e, dict):
        raise _ratio_error(path, key, "expected a mapping with lossless, lossy, qf")
    out = dict(e)
    for f in ("lossless", "lossy"):
        v = e.get(f)
        if isinstance(v, bool) or not isinstance(v, int | float) or not 1.0 <= v <= limits.COMPRESSION_RATIO.hi:
            raise _ratio_error(path, f"{key}.{f}", f"{v!r} must be a number >= 1 and <= "
                                                   f"{limits.COMPRESSION_RATIO.hi:g}")
    q = e.get("qf")
    if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 100:
        raise _ratio_error(path, f"{key}.qf", f"{q!r} must be an integer 1..100")
    if need_source and e.get("source") not in ("paper", "assumed"):
        raise _ratio_error(path, f"{key}.source", f"{e.get('source')!r}; allowed: paper, assumed")
    return out


@cache
def _ratio_table(path: str, mtime: int) -> RatioTable:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise UserError(f"ratio table {path}: cannot be read ({e.strerror or e})") from None
    except yaml.YAMLError:
        raise UserError(f"ratio table {path}: not valid YAML") from None
    if not isinstance(doc, dict):
        raise _ratio_error(path, "top level", "expected a mapping")
    budget = doc.get("budget_accuracy_loss")
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 <= budget < 1:
        raise _ratio_error(path, "budget_accuracy_loss", f"{budget!r} must be a number in [0, 1)")
    curve = (doc.get("qf_size_curve") or {}).get("points")
    if not isinstance(curve, dict) or len(curve) < 2:
        raise _ratio_error(path, "qf_size_curve.points", "expected a mapping QF -> relative size (2+ points)")
    pts = tuple(sorted((float(k), float(v)) for k, v in curve.items()))
    if any(v <= 0 for _, v in pts):
        raise _ratio_error(path, "qf_size_curve.points", "sizes must be > 0")
    nets = doc.get("nets") or {}
    if not isinstance(nets, dict):
        raise _ratio_error(path, "nets", "expected a mapping net -> split -> entry")
    checked = {n: {s: _check_entry(path, f"nets.{n}.{s}", e, True) for s, e in (splits or {}).items()}
               for n, splits in nets.items()}
    rule = doc.get("default_rule")
    if not isinstance(rule, dict):
        raise _ratio_error(path, "default_rule", "expected a mapping")
    rule_c = {k: _check_entry(path, f"default_rule.{k}", rule.get(k), False)
              for k in ("input", "hidden_first", "hidden_last", "logits")}
    return RatioTable(float(budget), pts, checked, rule_c, path)


def ratio_table(path: str | Path | None = None) -> RatioTable:
    p = Path(path) if path is not None else RATIOS_FILE
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise UserError(f"ratio table {p}: not found") from None
    return _ratio_table(str(p), mtime)


@cache
def _accuracy_json(path: str, mtime: int) -> dict[str, Any] | None:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("splits"), list):
        return None
    base = doc.get("int16_top1", doc.get("float_top1"))
    budget = doc.get("budget", doc.get("accuracy_budget", 0.01))
    rows = {}
    for s in doc["splits"]:
        if isinstance(s, dict) and "name" in s:
            rows[s["name"]] = s
    ident = {k: doc[k] for k in ("net", "source", "input_shape") if k in doc}
    return {"base_top1": base, "budget": budget, "splits": rows, "path": path,
            "doc": {"net": Path(path).stem, **ident}}


def accuracy_study(net: str | Network, directory: str | Path | None = None) -> dict[str, Any] | None:
    """The accuracy study's JSON for ``net`` (``build/accuracy/<net>.json``), or None. Given a Network, a
    study written for another network of the same name (another model file, another input shape) is None."""
    name = net.name if isinstance(net, Network) else net
    p = Path(directory or ACCURACY_DIR) / f"{name}.json"
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        return None
    study = _accuracy_json(str(p), mtime)
    if study is not None and isinstance(net, Network) and not same_network(study["doc"], net):
        return None
    return study


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def _ratio(v: Any) -> float | None:
    """A ratio from an accuracy study's JSON, if within :data:`golden.limits.COMPRESSION_RATIO` (a damaged or
    hand-edited study falls back to the table)."""
    return float(v) if limits.COMPRESSION_RATIO.ok(v) else None


def _table_entry(table: RatioTable, net: str | Network, split: str) -> tuple[dict[str, Any], str, str]:
    """(entry, source, note) for a split, from the per-net table or the default rule."""
    nw = network(net)
    e = table.nets.get(nw.name, {}).get(split)
    if e is not None:
        return e, e["source"], e.get("note", "")
    names = nw.split_names
    i = names.index(split)
    why = "" if nw.is_builtin else f" ({nw.name} has no entry in {Path(table.path).name} and no accuracy study)"
    if split == INPUT:
        return table.rule["input"], "assumed", "default rule: input image" + why
    if i == len(names) - 1:
        return table.rule["logits"], "assumed", "default rule: logits" + why
    last_hidden = len(names) - 2
    d = i / last_hidden
    a, b = table.rule["hidden_first"], table.rule["hidden_last"]
    e = {f: a[f] * (b[f] / a[f]) ** d for f in ("lossless", "lossy")}
    e["qf"] = a["qf"]
    return e, "assumed", f"default rule: hidden feature at relative depth {d:.2f}" + why


def compression(net: str | Network, split: str, encoding: str, qf: int | None = None, ratio: float | None = None,
                ratios: RatioTable | None = None, accuracy_dir: str | Path | None = None) -> Compression:
    """The compression of ``split``'s feature under ``encoding`` (``ratio`` overrides everything)."""
    net = network(net)
    check_encoding(encoding)
    qf = check_qf(qf)
    if ratio is not None:
        if not limits.COMPRESSION_RATIO.ok(ratio):
            raise UserError(f"compression ratio {ratio!r} is outside the allowed range "
                            f"{limits.COMPRESSION_RATIO.text()} (raw bytes / sent bytes)")
        return Compression(float(ratio), qf if encoding == "jpeg" else None, None, "given")
    if encoding == "none":
        if qf is not None:
            raise UserError(f"QF {qf} applies only to --encoding jpeg (got encoding none)")
        return Compression(1.0, None, 0.0, "none")
    if encoding == "lossless" and qf is not None:
        raise UserError(f"QF {qf} applies only to --encoding jpeg (got encoding lossless)")
    table = ratios or ratio_table()
    study = accuracy_study(net, accuracy_dir)
    row = study["splits"].get(split) if study else None
    entry, source, note = _table_entry(table, net, split)
    if encoding == "lossless":
        v = _ratio(row.get("lossless_ratio")) if row else None
        if v is not None:
            return Compression(v, None, 0.0, "accuracy-study", study["path"])
        return Compression(float(entry["lossless"]), None, 0.0, source, note)
    # jpeg
    base_ratio, base_qf, loss, src, nt = float(entry["lossy"]), int(entry["qf"]), table.budget, source, note
    if row:
        r, q = _ratio(row.get("lossy_ratio_at_budget")), _num(row.get("qf_at_budget"))
        if r is not None and q is not None and 1 <= q <= 100:
            top1, base = _num(row.get("top1_at_budget")), _num(study.get("base_top1"))
            loss = max(0.0, base - top1) if top1 is not None and base is not None else _num(study.get("budget"))
            base_ratio, base_qf, src, nt = r, int(q), "accuracy-study", study["path"]
    if qf is None or qf == base_qf:
        return Compression(base_ratio, base_qf, loss, src, nt)
    scaled = base_ratio * table.size_at(base_qf) / table.size_at(qf)
    return Compression(scaled, qf, None, f"{src}, scaled to QF {qf}",
                       f"{nt}; ratio moved from QF {base_qf} by the assumed QF size curve, accuracy unknown")


# ---- encoder work ----------------------------------------------------------------------------------------


def encoder_samples(net: str | Network, split: str, encoding: str) -> int:
    """Samples the encoder takes for ``split``'s feature (0 for ``none``)."""
    if encoding == "none":
        return 0
    sp = network(net).split(split)
    c, h, w = sp.shape
    if split == INPUT:
        return c * (-(-h // 8) * 8) * (-(-w // 8) * 8)
    if h == 1 and w == 1:
        return -(-c // 64) * 64
    th, tw = -(-h // 8) * 8, -(-w // 8) * 8
    if encoding == "lossless":
        return c * th * tw
    cols = grid_columns(c)
    return -(-c // cols) * cols * th * tw


def raw_bytes(net: str | Network, split: str) -> int:
    """Bytes of the split's output sent raw: 8-bit image for ``input``, 16-bit values otherwise."""
    sp = network(net).split(split)
    return sp.elements * (IMAGE_BYTES_PER_SAMPLE if split == INPUT else FEATURE_BYTES_PER_VALUE)


# ---- the result ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryResult:
    """One operating point: a network split at ``split``, coded with ``encoding``, sent over ``link``."""

    net: str
    split: str
    encoding: str
    qf: int | None
    link: str
    rate_bps: float
    power_w: float
    fps: float
    frame_time_s: float
    energy_per_frame_j: float
    breakdown: dict[str, float]
    bottleneck: str
    inference_time_s: float
    encode_time_s: float
    transmit_time_s: float
    feature_bytes: int
    transmitted_bytes: float
    compression_ratio: float
    accuracy_loss: float | None
    edge_cycles: float
    edge_macs: float
    counts_source: str
    ratio_source: str
    ratio_note: str
    tech: str
    role: str = "split"                     # host_only | edge_only | split
    weights: str = "int16"                  # int16 | jpeg (weights coded in DRAM, restored by the weight decoder)
    weight_qfs: dict[str, int] | None = None   # jpeg: QF per edge layer whose weights are coded

    @property
    def frames_per_joule(self) -> float:
        return 1.0 / self.energy_per_frame_j if self.energy_per_frame_j > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["provenance"] = {"counts": self.counts_source, "ratio": self.ratio_source, "ratio_note": self.ratio_note,
                           "tech": self.tech, "weights": self.weights}
        return d


def _role(net: Network, split: str) -> str:
    names = net.split_names
    return "host_only" if split == names[0] else ("edge_only" if split == names[-1] else "split")


@dataclass(frozen=True)
class _Energies:
    """Per-action energies resolved once per technology file (J)."""

    mac: float
    acc: float
    beat: float
    cmp: float
    requant: float
    fb_r: float
    fb_w: float
    wb_r: float
    wb_w: float
    rf_r: float
    rf_w: float
    dram_word: float
    enc: dict[str, float]
    leak_engine_w: float
    leak_encoder_w: float
    clock_hz: float
    wdec: float | None = None       # per restored weight (None: the technology file has no weight_decoder)


@cache
def _energies(tech: Tech, eng: EngineParams) -> _Energies:
    reg = tech.e("register_bit")
    fb_bank_bytes = eng.fb_words * 2 / eng.fb_banks
    wb_bank_bytes = eng.wb_depth * eng.lanes * 2
    lk = tech.leakage_w
    # the technology file's leakage is of the default engine (golden.arch.DEFAULT_ARCH); another architecture's
    # scales with what leaks: the MAC array with its MACs, each buffer with its bits; a beat registers
    # ``lanes`` activations and weights
    base = DEFAULT_ENGINE
    leak_engine_w = (lk["feature_buffer_w"] * eng.fb_words / base.fb_words
                     + lk["weight_buffer_w"] * eng.wb_depth * eng.lanes / (base.wb_depth * base.lanes)
                     + lk["mac_array_w"] * eng.lanes ** 2 / base.lanes ** 2 + lk["control_w"])
    return _Energies(
        mac=tech.e("mac_16b"), acc=ACC_BITS * reg, beat=BEAT_OPERAND_BITS * eng.lanes / base.lanes * reg,
        cmp=tech.e("compare_16b") + 16 * reg, requant=tech.e("requantize") + ACC_BITS * reg,
        fb_r=tech.sram_word_energy_j(fb_bank_bytes, 16), fb_w=tech.sram_word_energy_j(fb_bank_bytes, 16, True),
        wb_r=tech.sram_word_energy_j(wb_bank_bytes, 16 * eng.lanes),
        wb_w=tech.sram_word_energy_j(wb_bank_bytes, 16 * eng.lanes, True),
        rf_r=tech.e("rf_read_word"), rf_w=tech.e("rf_write_word"), dram_word=16 * tech.e("dram_bit"),
        enc={"jpeg": tech.e("encoder_jpeg_sample"), "lossless": tech.e("encoder_lossless_sample"), "none": 0.0},
        leak_engine_w=leak_engine_w,
        leak_encoder_w=lk["encoder_w"], clock_hz=eng.clock_hz,
        wdec=tech.energy["weight_decoder"].value if "weight_decoder" in tech.energy else None,
    )


def edge_energy_j(counts: dict[str, float], en: _Energies) -> tuple[float, float, float]:
    """(compute, on-chip memory, DRAM) energy of summed edge counts."""
    compute = (counts["macs"] * (en.mac + en.acc) + counts["busy"] * en.beat + counts["pool_ops"] * en.cmp
               + counts["outputs"] * en.requant)
    onchip = (counts["fb_read_words"] * en.fb_r + counts["fb_write_words"] * en.fb_w
              + counts["wb_read_words"] * en.wb_r + counts["wb_write_words"] * en.wb_w
              + counts["seg_read_words"] * en.rf_r + counts["seg_write_words"] * en.rf_w)
    dram = (counts["dram_read_words"] + counts["dram_write_words"]) * en.dram_word
    return compute, onchip, dram


def weight_decoder_energy(counts: dict[str, float], en: _Energies, tech_name: str = "") -> float:
    """Energy of the weights the decoder restored (0 with int16 weights)."""
    n = counts.get("wdec_weights", 0.0)
    if not n:
        return 0.0
    if en.wdec is None:
        raise UserError(f"technology file {tech_name}: energy.weight_decoder: missing (required for weights=jpeg)")
    return n * en.wdec


def evaluate(net: str | Network, split: str, encoding: str, link: str | Link = DEFAULT_LINK, qf: int | None = None,
             tech: Tech | str | Path | None = None, ratio: float | None = None,
             eng: EngineParams = DEFAULT_ENGINE, counts: NetCounts | None = None, counts_source: str = "auto",
             ratios: RatioTable | None = None, accuracy_dir: str | Path | None = None, weights: str = "int16",
             weights_qf: int | None = None, weights_dir: str | Path | None = None, batch: int = 1) -> QueryResult:
    """The cost of one operating point (see the module docstring for the model). ``weights``: ``int16`` or
    ``jpeg`` (``weights_qf``: one weight QF for every layer; ``weights_dir``: another weight-table folder).
    ``batch`` n: the fully-connected layers run once for n frames (``make sim BATCH=n``); everything per frame."""
    net = network(net)
    lk = parse_link(link)
    sp = net.split(split)   # validates the split
    check_encoding(encoding)
    check_weights(weights)
    t = load_tech(tech)
    comp = compression(net, split, encoding, qf, ratio, ratios, accuracy_dir)
    nc = counts or net_counts(net, eng, counts_source, weights=weights, weights_qf=weights_qf, weights_dir=weights_dir,
                              batch=batch)
    en = _energies(t, eng)
    c = nc.edge[split]
    f = en.clock_hz
    raw = raw_bytes(net, split)
    samples = encoder_samples(net, split, encoding)
    t_inf = c["cycles"] / f
    t_enc = samples / (ENCODER_SAMPLES_PER_CYCLE.get(encoding, 1.0) * f) if samples else 0.0
    # the coder (or the radio interface, raw) reads the feature once: from the buffer if resident, else DRAM. The
    # engine's colour build JPEG-codes the camera image from planes of one 8-bit sample per 16-bit word
    # (sim.program.compile_image), so it reads a word per sample: measured 153,444 words for AlexNet's 150,528
    # samples (the rest: the tables and descriptors)
    read_words = raw if split == INPUT and encoding == "jpeg" else raw / 2
    counts_from = nc.provenance[split]
    image = rtl_image_encode(net, eng, comp.qf) if split == INPUT and encoding == "jpeg" and \
        counts_source != "analytical" else None
    if image is not None:
        # the camera image JPEG-coded on the engine's colour build: its cycles (tables, plane loads, encoding)
        # and DRAM reads (a 16-bit word per 8-bit pixel, plus the tables) as measured
        t_enc, read_words = image["cycles"] / f, image["dram_read_words"]
        counts_from = f"rtl ({Path(image['path']).name}, QF {image['qf']})"
    tx_bytes = raw / comp.ratio
    t_tx = tx_bytes * 8 / lk.rate_bps
    stage2 = t_enc + t_tx
    frame = max(t_inf, stage2)
    compute, onchip, dram = edge_energy_j(c, en)
    if split != INPUT and nc.resident[split]:
        onchip += read_words * en.fb_r
    else:
        dram += read_words * en.dram_word
    enc = samples * en.enc[encoding]
    radio = lk.power_w * t_tx
    leak_w = (en.leak_engine_w if split != INPUT else 0.0) + (en.leak_encoder_w if encoding != "none" else 0.0)
    leak = leak_w * frame
    wdec = weight_decoder_energy(c, en, t.path)
    breakdown = dict(zip(BREAKDOWN_KEYS, (compute, onchip, dram, enc, radio, leak, wdec), strict=True))
    total = compute + onchip + dram + enc + radio + leak + wdec
    return QueryResult(
        net=net.name, split=split, encoding=encoding, qf=comp.qf, link=lk.name, rate_bps=lk.rate_bps,
        power_w=lk.power_w,
        fps=1.0 / frame if frame > 0 else math.inf, frame_time_s=frame, energy_per_frame_j=total,
        breakdown=breakdown, bottleneck="inference" if t_inf >= stage2 else "transmit",
        inference_time_s=t_inf, encode_time_s=t_enc, transmit_time_s=t_tx, feature_bytes=raw,
        transmitted_bytes=tx_bytes, compression_ratio=comp.ratio, accuracy_loss=comp.accuracy_loss,
        edge_cycles=c["cycles"], edge_macs=float(sp.edge_macs), counts_source=counts_from,
        ratio_source=comp.source, ratio_note=comp.note, tech=t.name, role=_role(net, split),
        weights=nc.weights, weight_qfs=_edge_qfs(net, split, nc) if nc.weights != "int16" else None,
    )


def _edge_qfs(net: Network, split: str, nc: NetCounts) -> dict[str, int]:
    """The weight QF of every coded layer on the edge side of ``split``."""
    names = net.split_names
    edge = set(names[1:names.index(split) + 1])
    return {lc.layer: nc.weight_qfs[lc.layer] for lc in nc.layers if lc.split in edge and lc.layer in nc.weight_qfs}


__all__ = [
    "BREAKDOWN_KEYS", "DEFAULT_LINK", "ENCODINGS", "LINKS", "WEIGHT_FORMATS", "Compression", "Link", "QueryResult",
    "RatioTable",
    "accuracy_study", "check_encoding", "check_qf", "compression", "encoder_samples", "evaluate", "parse_link",
    "ratio_table", "raw_bytes",
]
