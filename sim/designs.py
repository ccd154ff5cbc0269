"""The RTL designs the simulators run, by name (one place, so every runner and target agrees)."""

from sim.runner import Design


def _mac_array():
    from hw.mac_array import MacArray

    return MacArray(rows=12, cols=12)


MAC_ARRAY = Design("mac_array", _mac_array, parameters={"rows": 12, "cols": 12})

DESIGNS = {d.name: d for d in (MAC_ARRAY,)}
