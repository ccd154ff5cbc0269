"""Every test runs its pieces serially unless it asks for a cluster itself (sim.cluster): pytest-xdist already
spreads the tests over the cores, and a LocalCluster per test would only compete with them."""

import os

os.environ.setdefault("EDGESPLIT_WORKERS", "1")
