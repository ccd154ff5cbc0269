"""``make verilog``: write the Verilog of every block under ``build/verilog/`` with a manifest.

The manifest (``build/verilog/manifest.json``) lists, for each file, the top module, its parameters,
its ports with widths and directions, the Amaranth version and the command that made it.
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version

from sim.designs import DESIGNS
from sim.runner import VERILOG_DIR, generate_verilog

NOTES = ("The sequencer (descriptor fetch and dispatch), the DMA, the window loader, the pool and vector units "
         "are logic of the `engine` module itself, not separate modules; the MAC array (`mac_array`), the feature "
         "buffer (`feature_buffer`), the encode unit's encoder (`jpeg_encoder_w4`) and the weight decoder "
         "(`jpeg_wdecoder`) are also written on their own.")
PORT_RE = re.compile(r"^\s*(input|output|inout)\s+(?:(?:wire|reg)\s+)?(?:\[(\d+):0\]\s+)?\\?([\w$.]+)\s*;", re.M)


def ports_of(text: str, top: str) -> list[dict]:
    body = text.split(f"module {top}(", 1)[1].split("endmodule", 1)[0]
    return [{"name": name, "direction": d, "width": int(msb) + 1 if msb else 1}
            for d, msb, name in PORT_RE.findall(body)]


def main() -> int:
    manifest = {"generator": f"amaranth {version('amaranth')}", "command": "make verilog (python -m sim.verilog)",
                "notes": NOTES, "files": []}
    for design in DESIGNS.values():
        path = generate_verilog(design)
        text = path.read_text()
        ports = ports_of(text, design.name)
        manifest["files"].append({
            "file": path.name, "top": design.name, "parameters": design.parameters,
            "modules": len(re.findall(r"^module ", text, re.M)), "lines": text.count("\n"), "ports": ports,
        })
        print(f"{path}: top {design.name}, {len(ports)} ports, {manifest['files'][-1]['modules']} modules")
    (VERILOG_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"wrote {VERILOG_DIR / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
