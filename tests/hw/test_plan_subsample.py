"""hw.plan's rules for subsampled 1x1 convs and residual-add bands (pure Python; the RTL runs are in
tests/hw/test_engine_band_schedules.py)."""

from hw import plan
from hw.tile_geometry import LOAD_WORDS


def test_read_words_is_the_loaders():
    assert plan.READ_WORDS == LOAD_WORDS


def test_subsampled_conv_only_where_a_strided_tile_needs_two_reads():
    assert plan.subsampled_conv(1, 2, 0, 37, 12)          # 12 outputs at stride 2: 23 words, 2 reads
    assert not plan.subsampled_conv(1, 2, 0, 36, 12)      # three weight groups: the POOL costs what it saves
    assert not plan.subsampled_conv(3, 2, 1, 512, 12)     # a 3x3 conv reads its rows anyway
    assert not plan.subsampled_conv(1, 1, 0, 512, 12)
    assert not plan.subsampled_conv(1, 2, 1, 512, 12)     # padded: the scratch map would need the padding
    assert not plan.subsampled_conv(1, 2, 0, 512, 8)      # 8 outputs at stride 2: 15 words, one read
    assert plan.subsampled_conv(1, 2, 0, 512, 9) and plan.subsampled_conv(1, 3, 0, 512, 8)


def test_band_rows_leave_room_for_the_scratch_map():
    rows = plan.band_rows(28, 56, 2, 1, 256, 56, 512, 28, 2**17)
    sub = plan.band_rows(28, 56, 2, 1, 256, 56, 512, 28, 2**17, scratch_c=256)
    assert sub < rows
    rows_in = (sub - 1) * 2 + 1
    assert 256 * rows_in * 56 + (512 + 256) * sub * 28 <= 2**17 < 256 * (rows_in + 2) * 56 + 768 * (sub + 1) * 28


def test_add_bands():
    # 256 x 56 x 56 in 2^18 words: 3 maps of 256 x 56 = 43,008 words a row; half the buffer holds 3 rows
    assert plan.add_bands(256, 56, 56, 2**18) == plan.BandPlan(3, True)
    assert plan.add_bands(256, 56, 56, 2**18, overlap=False) == plan.BandPlan(6, False)
    assert plan.add_bands(8, 10, 12, 2048) == plan.BandPlan(3, True)
    assert plan.add_bands(8, 4, 12, 2**18) == plan.BandPlan(2, True)     # a map that fits: two bands, overlapped
    assert plan.add_bands(8, 1, 12, 2**18) == plan.BandPlan(1, False)    # one row: nothing to overlap
    assert plan.add_bands(64, 4, 12, 4096) == plan.BandPlan(1, False)    # a row fits the buffer, not its half
    assert plan.add_bands(64, 4, 64, 4096) is None
