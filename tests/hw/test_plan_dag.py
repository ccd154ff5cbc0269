"""hw.plan.plan_dag does not depend on Python's string hashing: maps of equal size are placed in a fixed order
(the layer's inputs, then its output), so the compiler's programs are the same in every process (they were not
for MobileNetV2 and ResNet-18 before 7 Dec: a set's order decided the addresses)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASE = """
from hw.plan import PlanLayer, plan_dag
# a and b are made, then evicted by c, which needs the whole buffer; "add" then LOADs a and b back and makes its
# output: three maps of 100 words, placed in the one order
layers = [PlanLayer("a", ("input",), (100,), 100), PlanLayer("b", ("a",), (100,), 100),
          PlanLayer("c", ("b",), (100,), 1000, resident_ok=False),
          PlanLayer("add", ("a", "b"), (100, 100), 100),
          PlanLayer("out", ("add", "c"), (100, 1000), 100, resident_ok=False)]
print([(p.name, p.resident, p.loads, sorted(p.fb.items())) for p in plan_dag(layers, 1000)])
"""


def test_the_plan_is_the_same_under_every_hash_seed():
    plans = set()
    for seed in range(4):
        env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", CASE], capture_output=True, text=True, env=env, cwd=REPO,
                             timeout=60, check=True)
        plans.add(out.stdout.strip())
    assert plans == {str([("a", True, ["input"], [("a", 100), ("input", 0)]),
                          ("b", True, [], [("a", 100), ("b", 900)]),
                          ("c", False, [], []),
                          ("add", True, ["a", "b"], [("a", 0), ("add", 200), ("b", 100)]),
                          ("out", False, [], [])])}
