"""The RTL designs the simulators run, by name (one place, so every runner and target agrees)."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from golden.arch import DEFAULT_ARCH, EngineArch
from sim.runner import REPO_ROOT, Design


def _mac_array():
    from hw.mac_array import MacArray

    return MacArray(rows=12, cols=12)


MAC_ARRAY = Design("mac_array", _mac_array, parameters={"rows": 12, "cols": 12})

# The engine's default configuration: a 256 K-word (512 KB) feature buffer and two 4608-row weight-buffer
# banks (4608 = 512 x 3 x 3, the deepest convolution of VGG-16 and ResNet-50).
ENGINE_PARAMS = {"fb_words": DEFAULT_ARCH.fb_words, "wb_depth": DEFAULT_ARCH.wb_depth}


def _engine():
    from hw.engine import Engine

    return Engine(**ENGINE_PARAMS)


def _engine_tb_sources(name: str):
    from sim.engine_tb import engine_tb_sources

    return engine_tb_sources(name)


ENGINE = Design("engine", _engine, parameters=ENGINE_PARAMS, top="engine_tb", wrapper=_engine_tb_sources,
                depends=(Path(__file__).resolve().parent / "hdl" / "dram_model.v",
                         Path(__file__).resolve().parent / "engine_tb.py"))


def _engine_plain():
    from hw.engine import Engine

    return Engine(**ENGINE_PARAMS, encoder=False, weight_decoder=False)


def _engine_tb_sources_registered(name: str):
    from sim.engine_tb import engine_tb_sources

    return engine_tb_sources(name, registered_inputs=True)


# The same engine without the encode unit and the twelve weight decoders: the units a plain run (no ENCODE,
# no coded weights) never uses. Verilator evaluates every unit every cycle, so this build simulates about 3x
# faster; the cycles are the same (the units are idle in such a run: checked in tests/hw/test_engine_cocotb.py).
# Its testbench top registers rst and cmd_addr (sim.engine_tb: Verilator then evaluates the next-state logic
# with the clock only, not on every input change too); the counters are the full build's, command by command.
ENGINE_PLAIN = Design("engine_plain", _engine_plain, parameters={**ENGINE_PARAMS, "encoder": False,
                                                                 "weight_decoder": False},
                      top="engine_tb", wrapper=_engine_tb_sources_registered, depends=ENGINE.depends)


def _engine_colour():
    from hw.engine import Engine

    return Engine(**ENGINE_PARAMS, weight_decoder=False, colour=True)


# The host-only split's edge (issue 16 item 6): the default engine with the encode unit's colour build
# (``hw.engine.Engine(colour=True)``: the camera image JPEG-coded, 4:4:4 / 4:2:0) and without the weight decoders
# (nothing but the image's LOADs and ENCODEs runs on it: ``sim.program.compile_image``); testbench as ENGINE_PLAIN's.
ENGINE_COLOUR = Design("engine_colour", _engine_colour, parameters={**ENGINE_PARAMS, "weight_decoder": False,
                                                                    "colour": True},
                       top="engine_tb", wrapper=_engine_tb_sources_registered, depends=ENGINE.depends)


@dataclass(frozen=True)
class _EngineOf:
    """The factory of the engine of ``arch`` (a callable with a stable repr: the design's source key hashes it)."""

    arch: EngineArch
    plain: bool

    def __call__(self):
        from hw.engine import Engine

        return Engine.from_arch(self.arch, plain=self.plain)


@dataclass(frozen=True)
class _TbOf:
    """The testbench sources of an engine of ``lanes`` lanes (``sim.engine_tb``; a stable repr, as above)."""

    lanes: int
    registered_inputs: bool

    def __call__(self, name: str):
        from sim.engine_tb import engine_tb_sources

        return engine_tb_sources(name, registered_inputs=self.registered_inputs, lanes=self.lanes)


@cache
def engine_design(arch: EngineArch = DEFAULT_ARCH, plain: bool = False) -> Design:
    """The engine build of ``arch`` (``golden.arch``): ``ENGINE`` / ``ENGINE_PLAIN`` for the default, else its
    own design ``engine[_plain]_<arch name>`` (its own Verilog and simulator build, cached like any other).
    Arrays of other than 12 lanes are built plain only (``hw.engine.Engine.from_arch``)."""
    arch = arch.rtl
    if arch == DEFAULT_ARCH:
        return ENGINE_PLAIN if plain else ENGINE
    base = ENGINE_PLAIN if plain else ENGINE
    wrapper = base.wrapper if arch.lanes == DEFAULT_ARCH.lanes else _TbOf(arch.lanes, plain)
    return Design(f"{base.name}_{arch.name.replace('-', '_')}", _EngineOf(arch, plain),
                  parameters={"arch": arch.as_dict(), "plain": plain}, top="engine_tb", wrapper=wrapper,
                  depends=base.depends)


def engine_for(prog, small: bool = False, arch: EngineArch = DEFAULT_ARCH) -> Design:
    """The engine build a program needs: the plain one unless it encodes or has coded weights (of ``arch``)."""
    from hw.descriptor import Op

    if any(c.op == Op.ENCODE and c.enc_mode for c in prog.commands):    # a camera image (compile_image)
        if small or arch.rtl != DEFAULT_ARCH:
            raise ValueError("the camera image's JPEG runs on the default engine's colour build (ENGINE_COLOUR) only")
        return ENGINE_COLOUR
    if small:
        return engine_small_design(arch.lanes)
    needs_units = any(c.op in (Op.ENCODE, Op.ENC_TABLES) or c.w_codec for c in prog.commands)
    return engine_design(arch, plain=not needs_units)

# A small engine for the random-layer tests: maps larger than 4 K words are tiled in bands through
# DRAM, and dot products deeper than 1024 rows (FC heads) stream through the weight banks in chunks.
ENGINE_SMALL_PARAMS = {"fb_words": 4096, "wb_depth": 1024}


def _engine_small():
    from hw.engine import Engine

    return Engine(**ENGINE_SMALL_PARAMS)


ENGINE_SMALL = Design("engine_small", _engine_small, parameters=ENGINE_SMALL_PARAMS, top="engine_tb",
                      wrapper=_engine_tb_sources, depends=ENGINE.depends)


@cache
def engine_small_design(lanes: int = DEFAULT_ARCH.lanes) -> Design:
    """The small engine (``ENGINE_SMALL_PARAMS``) of a ``lanes x lanes`` array: ``ENGINE_SMALL`` at 12 lanes, else
    the plain build ``engine_small_<lanes>x<lanes>`` (other arrays have no encode unit and weight decoders)."""
    if lanes == DEFAULT_ARCH.lanes:
        return ENGINE_SMALL
    arch = EngineArch(rows=lanes, cols=lanes, **ENGINE_SMALL_PARAMS)
    return Design(f"engine_small_{lanes}x{lanes}", _EngineOf(arch, True),
                  parameters={"arch": arch.as_dict(), "plain": True}, top="engine_tb", wrapper=_TbOf(lanes, True),
                  depends=ENGINE.depends)



def _feature_buffer():
    from hw.feature_buffer import FeatureBuffer

    return FeatureBuffer(ENGINE_PARAMS["fb_words"], halves=2)


# the engine's feature buffer on its own (synthesis and lint of the block; the engine instantiates it)
FEATURE_BUFFER = Design("feature_buffer", _feature_buffer,
                        parameters={"words": ENGINE_PARAMS["fb_words"], "banks": 16, "write_lanes": 12, "halves": 2})


def _dw_unit():
    from hw.dw_unit import DwUnit

    return DwUnit(fb_addr_bits=18)


# The depthwise unit alone (12 lanes x 9 taps of 16 x 16-bit multipliers), for its area in `make synth`
DW_UNIT = Design("dw_unit", _dw_unit, parameters={"fb_addr_bits": 18})

DESIGNS = {d.name: d for d in (MAC_ARRAY, ENGINE, ENGINE_SMALL, FEATURE_BUFFER, DW_UNIT)}


def _jpeg_encoder():
    from hw.jpeg.encoder import Encoder

    return Encoder(fifo_depth=64)


# golden/jpeg.py and golden/entropy.py hold constants the encoder's Verilog is built from (DCT matrix,
# zigzag order, reset tables), so a change there must regenerate it
JPEG_ENCODER = Design("jpeg_encoder", _jpeg_encoder, parameters={"fifo_depth": 64},
                      depends=tuple(REPO_ROOT / "golden" / f for f in ("jpeg.py", "entropy.py")))
DESIGNS[JPEG_ENCODER.name] = JPEG_ENCODER


def _jpeg_encoder_w4():
    from hw.jpeg.encoder import Encoder

    return Encoder(fifo_depth=64, out_bytes=4)


# the same encoder with a 32-bit output ({data, count, last} beats): 1 sample per cycle also when the coded
# stream needs more than 8 bits per sample (dense lossless maps, JPEG at high QF on noisy blocks)
JPEG_ENCODER_W4 = Design("jpeg_encoder_w4", _jpeg_encoder_w4, parameters={"fifo_depth": 64, "out_bytes": 4},
                         depends=JPEG_ENCODER.depends)
DESIGNS[JPEG_ENCODER_W4.name] = JPEG_ENCODER_W4


def _jpeg_encoder_colour():
    from hw.jpeg.encoder import Encoder

    return Encoder(fifo_depth=64, colour=True)


# the 3-component build (issue 16, item 6): colour JPEG (YCbCr 4:4:4 / 4:2:0, interleaved MCUs, luminance and
# chrominance table sets, a DC predictor per component); byte stream output like jpeg_encoder
JPEG_ENCODER_COLOUR = Design("jpeg_encoder_colour", _jpeg_encoder_colour,
                             parameters={"fifo_depth": 64, "colour": True}, depends=JPEG_ENCODER.depends)
DESIGNS[JPEG_ENCODER_COLOUR.name] = JPEG_ENCODER_COLOUR


def _jpeg_wdecoder():
    from hw.jpeg.wdecoder import WeightDecoder

    return WeightDecoder()


# the weight decoder (issue 8): its Verilog is built from golden constants (IDCT matrix and shifts, zigzag
# order, sample and int16 limits, SSSS limit), so a change in these golden files must regenerate it
JPEG_WDECODER = Design("jpeg_wdecoder", _jpeg_wdecoder, parameters={},
                       depends=tuple(REPO_ROOT / "golden" / f for f in ("weightcodec.py", "jpeg.py", "entropy.py")))
DESIGNS[JPEG_WDECODER.name] = JPEG_WDECODER
