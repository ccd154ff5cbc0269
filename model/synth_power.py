"""``make synth``'s power table: the cost model's step after ``python -m sim.synth``.

``sim.synth`` (the simulation floor) synthesises the blocks and writes their area facts to
``build/synth/synth.json`` (``chip_area``: area and leakage per block) and ``synth.md``. This module adds the
average power per block over ``make sim``'s AlexNet run (``build/sim/alexnet.json``): dynamic energy per block
from the engine's counters and the per-action energies that ``model.system`` uses for the cost model (nothing
re-derived here), divided by the run time at the engine architecture's clock (``EngineParams.clock_hz``, from
:class:`golden.arch.EngineArch`); leakage from the synthesised areas (``area.leakage_per_ge_w``,
``area.leakage_per_sram_bit_w``, already in ``chip_area``). It writes the result into ``synth.json``
(``power``) and appends its table to ``synth.md``.

    python -m model.synth_power [--out build/synth] [--sim-json build/sim/alexnet.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from golden.errors import UserError
from hw.tech import load_tech
from model.counts import DEFAULT_ENGINE, EngineParams, rtl_layer_counts, rtl_result
from model.system import _energies, encoder_samples
from sim.runner import BUILD_DIR
from sim.synth import ENCODER, SYNTH_DIR, SynthError

COUNT_FIELDS = ("cycles", "busy", "macs", "pool_ops", "outputs", "fb_read_words", "fb_write_words",
                "wb_read_words", "wb_write_words", "seg_read_words", "seg_write_words", "dram_read_words",
                "dram_write_words")


def power(rows: list[dict], tech, sim_json: Path, eng: EngineParams = DEFAULT_ENGINE) -> dict:
    """Average power per block (``rows``: ``sim.synth.breakdown``'s area rows) over ``make sim``'s run: dynamic
    (counters x the cost model's per-action energies, ``model.system``) + leakage (from the synthesised areas)."""
    data = rtl_result("alexnet", sim_json)
    if data is None:
        raise SynthError(f"no activity counts at {sim_json}: run `make sim` first")
    net = data["net"]
    layers = rtl_layer_counts(net, sim_json)
    if not layers:
        raise SynthError(f"{sim_json}: no layer matches the engine and the golden network (stale run? `make sim`)")
    c = Counter()
    for lc in layers.values():
        for f in COUNT_FIELDS:
            c[f] += getattr(lc, f)
    en = _energies(tech, eng)
    seconds = c["cycles"] / eng.clock_hz
    samples = encoder_samples(net, data["split"], "jpeg")
    dyn = {
        "MAC array": c["macs"] * (en.mac + en.acc) + c["busy"] * en.beat + c["outputs"] * en.requant,
        "feature buffer": c["fb_read_words"] * en.fb_r + c["fb_write_words"] * en.fb_w,
        "weight buffers": c["wb_read_words"] * en.wb_r + c["wb_write_words"] * en.wb_w,
        "control (sequencer, DMA, window loader, pool/vector unit)":
            c["pool_ops"] * en.cmp + c["seg_read_words"] * en.rf_r + c["seg_write_words"] * en.rf_w,
        ENCODER: samples * en.enc["jpeg"],
    }
    out = []
    for r in rows:
        e = dyn.get(r["block"])   # None: no activity model for the block (leakage only)
        out.append({"block": r["block"], "dynamic_j": e, "dynamic_w": None if e is None else e / seconds,
                    "leakage_w": r["leakage_w"], "total_w": (e or 0.0) / seconds + r["leakage_w"]})
    dram_w = (c["dram_read_words"] + c["dram_write_words"]) * en.dram_word / seconds
    return {"source": str(sim_json), "net": net, "split": data["split"], "cycles": c["cycles"],
            "seconds": seconds, "clock_hz": eng.clock_hz, "encoder_samples": samples,
            "encoder_note": f"The encoder codes the {data['split']} feature once per frame (JPEG)",
            "blocks": out, "on_chip_w": sum(r["total_w"] for r in out), "dram_w": dram_w, "counts": dict(c)}


POWER_HEADING = "\n## Power over `make sim`"


def table(pw: dict) -> str:
    """The power section of ``synth.md``."""
    lines = [f"{POWER_HEADING} ({pw['net']} input..{pw['split']}, {pw['cycles']:,.0f} cycles = "
             f"{pw['seconds'] * 1e3:.2f} ms at {pw['clock_hz'] / 1e6:.0f} MHz)\n",
             "| block | dynamic mW | leakage mW | total mW | share |",
             "|---|---|---|---|---|"]
    for r in pw["blocks"]:
        dw = "- (no activity model)" if r["dynamic_w"] is None else f"{r['dynamic_w'] * 1e3:.2f}"
        lines.append(f"| {r['block']} | {dw} | {r['leakage_w'] * 1e3:.3f} | "
                     f"{r['total_w'] * 1e3:.2f} | {r['total_w'] / pw['on_chip_w']:.1%} |")
    lines.append(f"| **on chip** | | | **{pw['on_chip_w'] * 1e3:.2f}** | 100% |")
    lines.append(f"\nOff chip: DRAM traffic {pw['dram_w'] * 1e3:.2f} mW. {pw['encoder_note']}; "
                 "leakage from the synthesised areas, dynamic energy from the counters and `model.system`'s "
                 "per-action energies.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.synth_power", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(SYNTH_DIR), help="the folder of `python -m sim.synth`'s synth.json")
    ap.add_argument("--sim-json", default=str(BUILD_DIR / "sim" / "alexnet.json"),
                    help="make sim's counters for the power breakdown")
    args = ap.parse_args(argv)
    out = Path(args.out)
    doc_path, md_path = out / "synth.json", out / "synth.md"
    try:
        doc = json.loads(doc_path.read_text())
    except (OSError, ValueError) as e:
        print(f"synth: cannot read {doc_path} ({e}): run `python -m sim.synth` first", file=sys.stderr)
        return 1
    chip = doc.get("chip_area")
    if not chip:
        print("synth: no engine in the synthesised blocks: power breakdown skipped", file=sys.stderr)
        return 0
    sim_json = Path(args.sim_json)
    if not sim_json.exists():
        print(f"synth: no {sim_json}: power breakdown skipped (run `make sim` first)", file=sys.stderr)
        return 0
    try:
        pw = power(chip, load_tech(doc.get("tech")), sim_json)
    except (SynthError, UserError) as e:
        print(f"synth: {e}", file=sys.stderr)
        return 1
    md = table(pw)
    doc["power"] = pw
    doc_path.write_text(json.dumps(doc, indent=1))
    old = md_path.read_text() if md_path.exists() else ""
    cut = old.find(POWER_HEADING)     # a second run replaces its own section
    md_path.write_text((old if cut < 0 else old[:cut]) + md)
    print(md)
    print(f"added the power breakdown to {doc_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
