"""What the RTL builds, in pure Python (no Amaranth): the one place the engine (``hw.engine``) and the compiler
(``sim.program``) read the engine's limits from, and the one-line refusal of an architecture it does not build.

    MAX_RTL_LANES   the widest array: ``golden.arch.MAX_LANES`` (24)
    RTL_FB_BANKS    the feature buffer's bank counts (16 or 32; at least ``lanes``: the engine writes a row of
                    ``lanes`` words, a drained array row, a DRAM beat or an ADD result, in one access of its banks,
                    and the ADD unit and the STORE engine read ``lanes`` words in one read)
    STREAM_WORDS    the words of each read that the window loader, the depthwise unit and GAP take (the first 16
                    at any bank count, so their schedules do not depend on it)
    CODEC_LANES     the encode unit and the weight decoders are 12-lane units: an engine of another lane count
                    is built without them (plain programs only)
"""

from __future__ import annotations

from golden.arch import MAX_LANES, MIN_LANES, EngineArch

MAX_RTL_LANES = MAX_LANES
RTL_FB_BANKS = (16, 32)
STREAM_WORDS = 16
CODEC_LANES = 12


def arch_refusal(arch: EngineArch, *, plain: bool = False, coded: bool = False) -> str | None:
    """Why the RTL cannot build ``arch`` (one line naming the value and what is allowed), or None. ``plain``:
    without the encode unit and the weight decoders; ``coded``: the program also encodes or reads coded weights
    (needs them)."""
    lanes = arch.lanes
    if lanes > MAX_RTL_LANES:
        return f"array {arch.array} is not built: the RTL takes {MIN_LANES}..{MAX_RTL_LANES} lanes"
    if arch.fb_banks not in RTL_FB_BANKS or arch.fb_banks < lanes:
        allowed = " or ".join(str(b) for b in RTL_FB_BANKS if b >= lanes)
        return (f"fb_banks {arch.fb_banks} is not built at {arch.array}: the engine writes a row of {lanes} words "
                f"in one access of the buffer's banks; allowed: {allowed}")
    if lanes != CODEC_LANES and (coded or (not plain and (arch.encoder or arch.weight_decoders))):
        return (f"array {arch.array}: ENCODE and coded weights need the {CODEC_LANES}-lane encode unit and weight "
                f"decoders; on {arch.array} only plain programs run (no --encode, no coded weights)")
    return None
