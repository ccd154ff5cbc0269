"""The engine's RTL (Amaranth components) and what describes it.

Importing the package first takes a snapshot of its sources (``hw.sources``), so the hashes that key the
generated Verilog and label the simulator's counts describe the code this process loaded."""

from . import sources as _sources  # noqa: F401  (the snapshot, before any other hw module)
