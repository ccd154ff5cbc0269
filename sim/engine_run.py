"""Run an engine program cycle-accurately in Verilator and collect outputs and counters."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.engine import COUNTERS
from sim.designs import ENGINE_PARAMS
from sim.program import EngineConfig, Program
from sim.runner import BUILD_DIR, Design, run

DEFAULT_CONFIG = EngineConfig(**ENGINE_PARAMS)


@dataclass
class DramSettings:
    bytes_per_cycle: float = 16.0
    latency: int = 20
    gap_prob: float = 0.0
    jitter: int = 0
    seed: int = 1

    def plusargs(self) -> list[str]:
        return [f"+DRAM_BPC16={round(self.bytes_per_cycle * 16)}", f"+DRAM_LATENCY={self.latency}",
                f"+DRAM_GAP={round(self.gap_prob * 65536)}", f"+DRAM_JITTER={self.jitter}",
                f"+DRAM_SEED={self.seed}"]


@dataclass
class EngineResult:
    dram: np.ndarray
    snapshots: list[dict]      # counters after each command (the last after END)
    wall_s: float

    def per_layer(self, prog: Program) -> dict[str, dict]:
        """Counter deltas summed per layer (commands are tagged with their layer; a layer without commands, a
        placed concatenation, counts zero)."""
        out: dict[str, dict] = {name: {n: 0 for n in COUNTERS} for name in prog.layer_names}
        prev = {n: 0 for n in COUNTERS}
        for tag, snap in zip(prog.command_layer, self.snapshots, strict=False):
            acc = out.setdefault(tag, {n: 0 for n in COUNTERS})
            for n in COUNTERS:
                acc[n] += snap[n] - prev[n]
            prev = snap
        return out


def write_hex(path: Path, words: np.ndarray) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(f"{w:04x}" for w in words.astype(np.uint16).tolist()))
        f.write("\n")
    tmp.replace(path)


def read_hex(path: Path, n: int) -> np.ndarray:
    text = path.read_text().split()
    words = [t for t in text if not t.startswith("//")]
    return np.array([int(t, 16) for t in words[:n]], dtype=np.uint16)


def run_program(prog: Program, name: str, dram: DramSettings | None = None, quiet: bool = True,
                design: Design | None = None) -> EngineResult:
    """Simulate ``prog`` in Verilator on ``design`` (``prog`` must be compiled for its configuration; default:
    the default engine, in the build without the encode unit and weight decoders unless ``prog`` uses them,
    ``sim.designs.engine_for``)."""
    if design is None:
        from sim.designs import engine_for

        design = engine_for(prog)
    dram = dram or DramSettings()
    work = BUILD_DIR / "sim" / "work" / name
    work.mkdir(parents=True, exist_ok=True)
    image, dump, result = work / "dram.hex", work / "dump.hex", work / "result.json"
    write_hex(image, prog.dram)
    dump.unlink(missing_ok=True)
    result.unlink(missing_ok=True)
    plusargs = [f"+DRAM_IMAGE={image}", f"+DRAM_DUMP={dump}", f"+DRAM_DUMP_WORDS={prog.dram.size}",
                *dram.plusargs()]
    env = {"EDGESPLIT_CMD_ADDR": str(prog.cmd_addr), "EDGESPLIT_RESULT": str(result)}
    # a hang is a failure with a message, not a stuck run: allow 40x a generous estimate of the work
    estimate = sum(prog.macs.values()) // 144 + 4 * prog.dram.size + 100_000
    env["EDGESPLIT_MAX_CYCLES"] = os.environ.get("EDGESPLIT_MAX_CYCLES", str(40 * estimate))
    run(design, "sim.tb_engine", testcase="run_program", env=env, plusargs=plusargs, quiet=quiet)
    res = json.loads(result.read_text())
    return EngineResult(dram=read_hex(dump, prog.dram.size), snapshots=res["snapshots"], wall_s=res["wall_s"])
