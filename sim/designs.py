"""The RTL designs the simulators run, by name (one place, so every runner and target agrees)."""

from pathlib import Path

from sim.runner import Design


def _mac_array():
    from hw.mac_array import MacArray

    return MacArray(rows=12, cols=12)


MAC_ARRAY = Design("mac_array", _mac_array, parameters={"rows": 12, "cols": 12})

# The engine's default configuration: a 256 K-word (512 KB) feature buffer and two 4608-row weight-buffer
# banks (4608 = 512 x 3 x 3, the deepest convolution of VGG-16 and ResNet-50).
ENGINE_PARAMS = {"fb_words": 2**18, "wb_depth": 4608}


def _engine():
    from hw.engine import Engine

    return Engine(**ENGINE_PARAMS)


def _engine_tb_sources():
    from sim.engine_tb import engine_tb_sources

    return engine_tb_sources()


ENGINE = Design("engine", _engine, parameters=ENGINE_PARAMS, top="engine_tb", wrapper=_engine_tb_sources,
                depends=(Path(__file__).resolve().parent / "hdl" / "dram_model.v",
                         Path(__file__).resolve().parent / "engine_tb.py"))

DESIGNS = {d.name: d for d in (MAC_ARRAY, ENGINE)}
