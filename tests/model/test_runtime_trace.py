"""Bandwidth traces, the radio's power per rate and the pacer (model.runtime.trace)."""

import math

import pytest

from golden.errors import UserError
from model.runtime import trace as T


def test_shipped_traces_are_the_generators_output():
    gen = T.generated_traces()
    assert set(T.builtin_traces()) == set(gen) == {"const_1mbps", "const_2mbps", "const_22mbps", "step",
                                                  "random_walk", "walk_wifi"}
    for name, tr in gen.items():
        assert (T.TRACE_DIR / f"{name}.csv").read_text() == tr.to_csv(), name
        loaded = T.load_trace(name)
        assert loaded.times == tr.times and loaded.mbps == tr.mbps and math.isclose(loaded.period, tr.period)


def test_link_power_hits_the_cost_model_points():
    from model.system import LINKS

    for link in LINKS.values():
        assert math.isclose(T.link_power_w(link.rate_bps / 1e6), link.power_w)
    assert T.link_power_w(0.5) == T.link_power_w(1.0)
    assert T.link_power_w(1.5) == pytest.approx((0.0627 + 0.099) / 2)
    per_bit = [T.link_power_w(r) / r for r in (1, 2, 5.5, 11, 22)]
    assert per_bit == sorted(per_bit, reverse=True)   # energy per bit falls with the rate


def test_step_trace_rates_period_and_mean():
    tr = T.load_trace("step")
    assert [tr.rate_mbps(t) for t in (0, 9.99, 10, 25, 35, 40, 50)] == [22, 22, 2, 1, 22, 22, 2]
    assert tr.period == 40 and tr.mean_mbps() == pytest.approx((22 + 2 + 1 + 22) / 4)
    assert tr.mean_between(5, 15) == pytest.approx(12)


def test_send_integrates_the_rate_and_the_power():
    tr = T.load_trace("step")
    t1, e = tr.send(0.0, 22e6 / 8)            # 1 s at 22 Mbit/s
    assert t1 == pytest.approx(1.0) and e == pytest.approx(0.660)
    t1, e = tr.send(9.5, 22e6 / 8 * 0.5 + 2e6 / 8 * 1.0)   # 0.5 s at 22, then 1 s at 2
    assert t1 == pytest.approx(11.0) and e == pytest.approx(0.5 * 0.660 + 1.0 * 0.099)
    const = T.load_trace("2mbps")
    assert const.send(3.0, 250) == pytest.approx((3.001, 0.099 * 0.001))


def test_csv_forms_and_errors(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("# my trace\nt_seconds,mbps,power_mw\n0,5,100\n1.5,0.5,20\n")
    tr = T.load_trace(p)
    assert tr.mbps == (5, 0.5) and tr.power_w == (0.1, 0.02) and tr.period == 3.0
    for text, words in [("0,1\n0,2\n", "increase"), ("1,1\n", "start at 0"), ("0,0\n", "outside"),
                        ("0,1,2,3\n", "columns"), ("", "no rows"), ("0,1\nx,y\n", "not t_seconds"),
                        ("0,1,-5\n", "power")]:
        p.write_text(text)
        with pytest.raises(UserError, match=words):
            T.load_trace(p)
    with pytest.raises(UserError, match="unknown trace"):
        T.load_trace("no_such_trace")
    with pytest.raises(UserError, match="cannot be read"):
        T.load_trace(tmp_path / "missing.csv")
    assert T.load_trace("5.5mbps").mbps == (5.5,)
