"""golden.arch: the one description of the engine's size (issue 16 item 1)."""

import json
from dataclasses import replace

import pytest

from golden.arch import DEFAULT_ARCH, EngineArch, default_fb_banks, from_dict, parse_arch
from golden.errors import UserError


def test_default_is_todays_engine():
    a = DEFAULT_ARCH
    assert (a.rows, a.cols, a.lanes, a.macs) == (12, 12, 12, 144)
    assert (a.fb_words, a.fb_banks, a.wb_depth) == (2**18, 16, 4608)
    assert (a.dram_bytes_per_cycle, a.dram_latency_cycles, a.clock_hz) == (16.0, 20, 200e6)
    assert a.name == "12x12" and a.suffix == ""
    assert parse_arch(None) is DEFAULT_ARCH and parse_arch("") is DEFAULT_ARCH and parse_arch("12x12") == DEFAULT_ARCH


@pytest.mark.parametrize("text, lanes", [("8x8", 8), ("16X16", 16), (" 24 x 24 ", 24), ("4x4", 4)])
def test_array_sizes(text, lanes):
    a = parse_arch(text)
    assert a.lanes == lanes and a.macs == lanes * lanes
    assert a.name == f"{lanes}x{lanes}" and a.suffix == f"_{lanes}x{lanes}"
    # every other field at its default; the banks' default follows the array (32 above 16 lanes)
    assert a.fb_banks == default_fb_banks(lanes) == (32 if lanes > 16 else 16)
    assert replace(a, rows=12, cols=12, fb_banks=16) == DEFAULT_ARCH


def test_banks_default_follows_the_array():
    a24 = parse_arch("24x24")
    assert a24 == EngineArch(rows=24, cols=24, fb_banks=32) and a24.name == "24x24"
    assert from_dict(a24.as_dict()) == a24 and a24.as_dict()["fb_banks"] == 32
    # banks set away from the array's default: a name of its own, not the default's
    b16 = replace(a24, fb_banks=16)
    assert b16.name.startswith("24x24-") and b16.name != replace(a24, fb_banks=8).name
    assert EngineArch(rows=17, cols=17).fb_banks == 32 and EngineArch(rows=16, cols=16).fb_banks == 16
    assert replace(DEFAULT_ARCH, fb_banks=8).name.startswith("12x12-")


def test_other_fields_get_a_hashed_name(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("fb_words: 131072\nwb_depth: 2304\n")
    a = parse_arch(str(f))
    assert (a.fb_words, a.wb_depth, a.lanes) == (131072, 2304, 12)
    assert a.name.startswith("12x12-") and len(a.name) == len("12x12-") + 8 and a.suffix == "_" + a.name
    j = tmp_path / "a.json"
    j.write_text(json.dumps(a.as_dict()))
    assert parse_arch(str(j)) == a and from_dict(a.as_dict()) == a
    # the RTL build ignores the DRAM timing and the clock
    assert replace(a, dram_bytes_per_cycle=4.0, clock_hz=1e8).rtl == a


@pytest.mark.parametrize("text, words", [
    ("16x8", "square arrays"), ("3x3", "rows 3"), ("25x25", "4..24"), ("abc", "ROWSxCOLS"), ("x.txt", "ROWSxCOLS"),
])
def test_bad_text_is_one_line(text, words):
    with pytest.raises(UserError) as e:
        parse_arch(text)
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("body, words", [
    ("fb_words: 1000\n", "fb_words 1000"), ("fb_banks: 3\n", "fb_banks 3"), ("wb_depth: 8\n", "wb_depth 8"),
    ("clock_hz: 0\n", "clock_hz 0"), ("encoder: 1\n", "encoder 1"), ("rows: true\n", "rows True"),
    ("lanes: 12\n", "unknown field 'lanes'"), ("- 1\n", "expected a mapping"), ("a: [\n", "not valid YAML"),
    ("dram_bytes_per_cycle: 2000\n", "dram_bytes_per_cycle 2000"),
])
def test_bad_file_is_one_line(tmp_path, body, words):
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(UserError) as e:
        parse_arch(str(f))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_missing_file():
    with pytest.raises(UserError, match="does not exist"):
        parse_arch("/nonexistent/arch.yaml")


def test_frozen():
    with pytest.raises(AttributeError):
        DEFAULT_ARCH.rows = 16   # type: ignore[misc]
    assert isinstance(DEFAULT_ARCH, EngineArch)
