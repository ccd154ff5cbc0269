"""Every test runs its pieces serially unless it asks for a cluster itself (sim.cluster): pytest-xdist already
spreads the tests over the cores, and a LocalCluster per test would only compete with them."""

import os

os.environ.setdefault("EDGESPLIT_WORKERS", "1")

from golden import malloc  # noqa: E402

malloc.tune()   # as the entry points do (golden.malloc): tests that run networks on many images are faster


# Longest first: pytest-xdist hands the first tests out round-robin and the rest as workers free up, so a long
# test collected last becomes one worker's tail while the other idles. These are the tests over about a minute
# in CI's last run (seconds of one core, `--durations` of `make test` / `make test-slow`, 7 Dec 2026); the
# order only schedules, it changes nothing a test checks. Tests not listed keep their collection order.
LONG_TESTS_S = {
    "tests/model/test_runtime_rtl.py": 236,           # one xdist group: its two tests run on one worker
    "tests/golden/test_quantize.py::test_float_and_int16_top1_full_test_set[resnet56": 202,
    "tests/hw/test_encoder_cocotb.py": 138,           # one xdist group (the large sweeps of test-slow)
    "tests/hw/test_engine_arch.py::test_linear_layers[24": 127,
    "tests/hw/test_engine_cocotb.py::test_stacks_small_engine": 96,
    "tests/hw/test_engine_arch.py::test_linear_layers": 80,
    "tests/hw/test_engine_ops.py::test_double_buffered_bands": 80,
    "tests/model/test_weightqf.py::test_resnet20_selection": 68,
    "tests/golden/test_quantize.py::test_float_and_int16_top1_full_test_set[resnet20": 65,
    "tests/hw/test_engine_band_schedules.py": 61,
    "tests/hw/test_engine_wcodec.py": 30,
    "tests/model/test_finetune.py::test_cifar_resnet20_finetune_short": 30,
    "tests/model/test_accuracy.py::test_cifar_resnet20_study_reduced": 24,
}


def _expected_s(item) -> float:
    return max((s for prefix, s in LONG_TESTS_S.items() if item.nodeid.startswith(prefix)), default=0.0)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_expected_s, reverse=True)   # stable: equal estimates keep their order


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _close_local_cluster():
    """A test module that ran pieces on a local Dask cluster (sim.cluster keeps one per process for the next run)
    closes it when done, so its workers do not outlive the module."""
    yield
    import sys

    cluster = sys.modules.get("sim.cluster")
    if cluster is not None:
        cluster.close()
