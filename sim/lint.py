"""``make lint`` (Verilog part): ``verilator --lint-only -Wall`` on every generated Verilog file.

Amaranth's Verilog trips a few warning classes by construction. Each is waived per rule and per file
through a generated Verilator control file, with the reason below, and the count of each class is
printed before and after the waivers. Anything not waived (and every %Error) fails the target.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

from sim.designs import DESIGNS
from sim.runner import BUILD_DIR, generate_verilog, setup_verilator

# rule: why it is safe to waive in Amaranth output
WAIVERS = {
    "UNUSEDSIGNAL": "Amaranth emits a wire per struct/array field view (e.g. `inp__payload.a[3]`) and keeps the "
                    "top bits of widened temporaries; unread by design, removed by synthesis.",
    "WIDTHEXPAND": "Amaranth sizes `a + b` to the wider operand plus one and relies on Verilog's implicit "
                   "zero/sign extension of the narrower one; the arithmetic is what the Python describes.",
    "WIDTHTRUNC": "Assignments of a wider expression to a narrower signal truncate exactly as Amaranth's "
                  "`.eq()` semantics define (and `!vec` on a multi-bit signal is a reduction, as intended).",
    "PROCASSINIT": "Amaranth initialises registers at declaration (`reg x = init;`) and also assigns them in "
                   "processes: this is how it expresses reset values; both agree.",
    "CASEINCOMPLETE": "Amaranth's `casez` on a Switch without a default leaves the previous value in place, "
                      "which is the intended 'no change' semantics.",
    "DECLFILENAME": "One file holds the whole hierarchy (every submodule), so module and file names differ.",
    "CMPCONST": "Generated per-bank logic compares a bank index with a constant that cannot be reached for the "
                "last bank (`rot > 15` on a 4-bit rotation); constant-folded, as intended.",
    "ALWNEVER": "Amaranth emits `always @*` blocks that assign only constants (unused upper lanes of a wide "
                "port); they hold their value, which is what the description says.",
    "UNUSEDPARAM": "Parameters of the hand-written simulation DRAM model that a build does not override.",
}

# (rule, Verilator -match pattern on the message): a waiver for named signals only, and why it is safe
SIGNAL_WAIVERS = {
    ("UNDRIVEN", "*req__payload'[228:37,32]*"):
        "The read-only DRAM requesters (descriptor and weight fetch `fgreq`, the LOAD engine's `req`) never drive "
        "the write flag (bit 32) and write data (bits 37..228) of the shared request layout: in Amaranth they are "
        "0 (a signal's init), which the Verilog leaves undriven or sets in an `always @*` of constants that "
        "Verilator reads as never run (cf. ALWNEVER). The port mux only takes them from the STORE engine.",
}

WARN_RE = re.compile(r"^%(Warning|Error)-?([A-Z_]*)?:", re.M)


def lint(path, vlt=None) -> tuple[Counter, int, str]:
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", path.stem]
    if vlt:
        cmd.append(str(vlt))
    cmd.append(str(path))
    p = subprocess.run(cmd, capture_output=True, text=True)
    counts = Counter()
    text = "\n".join(line for line in p.stderr.splitlines() if "Exiting due to" not in line)
    for kind, rule in WARN_RE.findall(text):
        if kind == "Error" and rule in ("", None):
            rule = "ERROR"
        counts[rule or kind.upper()] += 1
    return counts, p.returncode, p.stderr


def main() -> int:
    setup_verilator()
    ok = True
    rules = sorted(WAIVERS)
    print("Waived warning classes (per rule and per generated file):")
    for r in rules:
        print(f"  {r:15} {WAIVERS[r]}")
    for (r, match), why in SIGNAL_WAIVERS.items():
        print(f"  {r:15} only {match}: {why}")
    print()
    head = f"{'file':22} " + " ".join(f"{r[:12]:>12}" for r in rules) + f" {'other':>7} {'after':>6}"
    print(head)
    print("-" * len(head))
    for design in DESIGNS.values():
        path = generate_verilog(design)
        before, _, _ = lint(path)
        vlt = BUILD_DIR / "lint" / f"{path.stem}.vlt"
        vlt.parent.mkdir(parents=True, exist_ok=True)
        vlt.write_text("`verilator_config\n" + "".join(
            f'lint_off -rule {r} -file "*/{path.name}"\n' for r in rules) + "".join(
            f'lint_off -rule {r} -file "*/{path.name}" -match "{match}"\n' for r, match in SIGNAL_WAIVERS))
        after, rc, text = lint(path, vlt)
        other = sum(n for r, n in before.items() if r not in WAIVERS)
        print(f"{path.name:22} " + " ".join(f"{before.get(r, 0):>12}" for r in rules)
              + f" {other:>7} {sum(after.values()):>6}")
        if rc != 0 or after:
            ok = False
            print(text[:3000], file=sys.stderr)
    print()
    print("lint: clean after waivers" if ok else "lint: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
