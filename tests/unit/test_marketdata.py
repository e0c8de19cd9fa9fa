"""The pure market data rules: file splitting, every bad-tick rule, the jump rule, aggregation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from oms import marketdata as md
from oms.errors import BadInput

HEADER = "time,symbol,open,high,low,close,volume\n"
SYMBOLS = {"AAPL", "MSFT"}
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(minutes: int) -> str:
    return t(minutes).strftime("%Y-%m-%dT%H:%M:%SZ")


def bar(
    minutes: int,
    close: str,
    symbol: str = "AAPL",
    *,
    o: str | None = None,
    h: str | None = None,
    lo: str | None = None,
    v: str = "100",
) -> md.Bar:
    c = Decimal(close)
    return md.Bar(
        symbol,
        t(minutes),
        Decimal(o) if o else c,
        Decimal(h) if h else c,
        Decimal(lo) if lo else c,
        c,
        Decimal(v),
    )


def line(
    minutes: int,
    close: str,
    symbol: str = "AAPL",
    *,
    o: str | None = None,
    h: str | None = None,
    lo: str | None = None,
    v: str = "100",
) -> str:
    return f"{iso(minutes)},{symbol},{o or close},{h or close},{lo or close},{close},{v}\n"


def check(text: str, stored: list[md.Bar] | None = None, pct: str = "25") -> md.Checked:
    rows = md.split_csv("f.csv", HEADER + text)
    parsed = md.parse_rows(rows, SYMBOLS)
    return md.check_bars(parsed, stored=stored or [], max_jump_pct=Decimal(pct))


def reasons(checked: md.Checked) -> dict[int, tuple[str, ...]]:
    return {r.line: r.reasons for r in checked.rejected}


# ---- splitting the file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("  \n\n", "empty"),
        (HEADER, "header but no rows"),
        ("time,symbol,open,high,low,close\n" + iso(0) + ",AAPL,1,1,1,1\n", "missing required"),
        (HEADER.strip() + ",note\n" + line(0, "1").strip() + ",x\n", "unknown column"),
        ("time,time,symbol,open,high,low,close,volume\n", "more than once"),
    ],
)
def test_file_level_problems_raise_bad_input(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        md.split_csv("f.csv", text)


def test_lines_count_the_header_and_skip_blank_lines() -> None:
    rows = md.split_csv("f.csv", HEADER + line(0, "1") + "\n" + line(1, "1"))
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].values["symbol"] == "AAPL"
    assert rows[0].problem is None


def test_header_is_case_and_space_tolerant_and_column_order_free() -> None:
    rows = md.split_csv(
        "f.csv", " Symbol ,TIME,open,high,low,close,volume\nAAPL," + iso(0) + ",1,1,1,1,5\n"
    )
    checked = md.check_bars(md.parse_rows(rows, SYMBOLS), stored=[], max_jump_pct=Decimal(25))
    assert checked.accepted == (bar(0, "1", v="5"),)


def test_quoted_newline_keeps_physical_line_numbers() -> None:
    rows = md.split_csv("f.csv", HEADER + f'{iso(0)},"AA\nPL",1,1,1,1,1\n' + line(1, "1"))
    assert [r.line for r in rows] == [2, 4]


def test_wrong_field_count_is_a_row_problem_with_raw_values_kept() -> None:
    c = check(line(0, "1").strip() + ",surplus\n" + f"{iso(1)},AAPL,1,1,1,1\n")
    assert c.accepted == ()
    first, second = c.rejected
    assert first.reasons == ("the row has 8 fields, the header has 7",)
    assert first.values[md.EXTRA_KEY] == ["surplus"]
    assert second.reasons == ("the row has 6 fields, the header has 7", "volume: missing")


# ---- rules on one row -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("2026-01-05T14:30:00,AAPL,1,1,1,1,1", ["has no time zone"]),
        ("2026-01-05,AAPL,1,1,1,1,1", ["has no time zone"]),
        ("yesterday,AAPL,1,1,1,1,1", ["is not an ISO 8601 time"]),
        (",AAPL,1,1,1,1,1", ["time: missing"]),
        ("2026-01-05T14:30:00Z,NOPE,1,1,1,1,1", ["'NOPE' is not a known instrument"]),
        ("2026-01-05T14:30:00Z,,1,1,1,1,1", ["symbol: missing"]),
        ("2026-01-05T14:30:00Z,AAPL,1e3,1,1,1,1", ["open '1e3' is not a decimal number"]),
        ("2026-01-05T14:30:00Z,AAPL,1,1,1,abc,1", ["close 'abc' is not a decimal number"]),
        (
            "2026-01-05T14:30:00Z,AAPL,1,1,1,1,1.0000000000001",
            ["volume '1.0000000000001' is not a decimal number"],
        ),
        ("2026-01-05T14:30:00Z,AAPL,0,1,0.5,1,1", ["open 0 must be greater than zero"]),
        ("2026-01-05T14:30:00Z,AAPL,1,1,-1,1,1", ["low -1 must be greater than zero"]),
        ("2026-01-05T14:30:00Z,AAPL,1,0,1,1,1", ["high 0 must be greater than zero"]),
        ("2026-01-05T14:30:00Z,AAPL,1,1,1,1,-5", ["volume -5 must not be negative"]),
        ("2026-01-05T14:30:00Z,AAPL,1,1,2,1,1", ["high 1 is below low 2"]),
        (
            "2026-01-05T14:30:00Z,AAPL,3,2,1,1.5,1",
            ["open 3 is outside the bar's range [low 1, high 2]"],
        ),
        (
            "2026-01-05T14:30:00Z,AAPL,1.5,2,1,0.5,1",
            ["close 0.5 is outside the bar's range [low 1, high 2]"],
        ),
    ],
)
def test_each_bad_tick_rule(row: str, expected: list[str]) -> None:
    c = check(row + "\n")
    assert c.accepted == ()
    (rej,) = c.rejected
    assert rej.line == 2
    assert len(rej.reasons) == len(expected)
    for got, want in zip(rej.reasons, expected, strict=True):
        assert want in got


def test_a_row_is_rejected_with_all_its_reasons() -> None:
    c = check("2026-01-05T14:30:00,NOPE,x,-1,2,0,-3\n")
    (rej,) = c.rejected
    assert len(rej.reasons) == 6  # time, symbol, open, high, close, volume
    assert rej.values == {
        "time": "2026-01-05T14:30:00",
        "symbol": "NOPE",
        "open": "x",
        "high": "-1",
        "low": "2",
        "close": "0",
        "volume": "-3",
    }


def test_offsets_are_converted_to_utc_and_zero_volume_is_fine() -> None:
    c = check("2026-01-05T15:30:00+01:00,AAPL,1.4,1.6,1.3,1.5,0\n")
    assert c.accepted == (
        md.Bar("AAPL", T0, *(Decimal(v) for v in ("1.4", "1.6", "1.3", "1.5", "0"))),
    )


def test_good_rows_accepted_in_symbol_time_order_and_counts_add_up() -> None:
    c = check(line(1, "10", "MSFT") + line(0, "10", "MSFT") + line(0, "5") + "bad\n")
    assert [(b.symbol, b.time) for b in c.accepted] == [
        ("AAPL", t(0)),
        ("MSFT", t(0)),
        ("MSFT", t(1)),
    ]
    assert c.rows == 4
    assert len(c.rejected) == 1


# ---- rules across rows ----------------------------------------------------------------------


def test_duplicate_in_file_rejects_the_later_row() -> None:
    c = check(line(0, "10") + line(1, "10") + line(0, "11"))
    assert [b.time for b in c.accepted] == [t(0), t(1)]
    assert reasons(c) == {4: ("duplicate of line 2 (same symbol and time)",)}


def test_duplicate_detected_across_time_notations() -> None:
    c = check(line(0, "10") + "2026-01-05T15:30:00+01:00,AAPL,10,10,10,10,100\n")
    assert reasons(c) == {3: ("duplicate of line 2 (same symbol and time)",)}


def test_identical_stored_bar_is_unchanged_and_different_one_conflicts() -> None:
    stored = [bar(0, "10"), bar(1, "10")]
    c = check(line(0, "10.00") + line(1, "10", v="999") + line(2, "10"), stored)
    assert c.unchanged == (2,)
    assert [b.time for b in c.accepted] == [t(2)]
    (why,) = reasons(c)[3]
    assert "conflicts with the stored bar of AAPL at 2026-01-05T14:31:00.000000Z" in why
    assert "volume 999 (stored 100)" in why
    assert c.rows == 3


def test_jump_beyond_limit_is_rejected_and_at_limit_accepted() -> None:
    c = check(line(0, "100") + line(1, "125") + line(2, "160"))
    assert [b.close for b in c.accepted] == [Decimal(100), Decimal(125)]
    (why,) = reasons(c)[4]
    assert why.startswith(
        "open 160 jumps 28.00%, high 160 jumps 28.00%, low 160 jumps 28.00%, close 160 jumps "
        "28.00% from the previous close 125 (2026-01-05T14:31:00.000000Z), beyond the 25% limit"
    )
    assert "md.max_jump_pct" in why


def test_a_wild_open_high_or_low_is_a_bad_tick_with_a_normal_close() -> None:
    """The paper venue fills at a bar's open, high or low: a bad tick in any of them, with a
    close near the last, filled resting orders at 1,000 times the price."""
    c = check(
        line(0, "100")
        + line(1, "100", o="100000", h="100000", lo="99")  # open and high
        + line(2, "100", o="100", h="101", lo="0.01")  # low
        + line(3, "100", o="100", h="125", lo="75")  # at the limit: taken
    )
    assert [b.time.minute for b in c.accepted] == [30, 33]
    (spike,) = reasons(c)[3]
    assert spike.startswith("open 100000 jumps 99900.00%, high 100000 jumps 99900.00% from")
    (dip,) = reasons(c)[4]
    assert dip.startswith("low 0.01 jumps 99.99% from the previous close 100")


def test_jump_down_counts_too_and_limit_is_configurable() -> None:
    assert reasons(check(line(0, "100") + line(1, "70"))) != {}
    assert reasons(check(line(0, "100") + line(1, "70"), pct="30")) == {}


def test_rejected_bar_does_not_become_the_previous_close() -> None:
    # 100 -> 200 rejected (jump); 105 is compared with 100, not 200, and accepted; then 210
    # is compared with 105 and rejected.
    c = check(line(0, "100") + line(1, "200") + line(2, "105") + line(3, "210"))
    assert [b.close for b in c.accepted] == [Decimal(100), Decimal(105)]
    assert set(reasons(c)) == {3, 5}
    assert "previous close 105" in reasons(c)[5][0]


def test_bar_rejected_for_another_reason_does_not_become_previous_close() -> None:
    # 100, then a bad bar closing at 200 (volume negative), then 110: compared with 100
    c = check(line(0, "100") + line(1, "200", v="-1") + line(2, "110"))
    assert [b.close for b in c.accepted] == [Decimal(100), Decimal(110)]
    rej = reasons(c)[3]
    assert any("must not be negative" in r for r in rej)
    assert any("jumps 100.00%" in r for r in rej)  # every reason is listed


def test_jump_uses_time_order_not_file_order() -> None:
    c = check(line(2, "130") + line(0, "100") + line(1, "120"))
    assert [b.close for b in c.accepted] == [Decimal(100), Decimal(120), Decimal(130)]


def test_jump_against_stored_previous_bar_and_backfill_between_stored_bars() -> None:
    # stored: 100 at 13:30 and 300 at 14:40; the file backfills 14:30 and 14:35 and adds 14:50
    stored = [bar(-60, "100"), bar(10, "300")]
    c = check(line(0, "150") + line(5, "110") + line(20, "290"), stored)
    assert [b.close for b in c.accepted] == [Decimal(110), Decimal(290)]
    assert "previous close 100 (2026-01-05T13:30:00.000000Z)" in reasons(c)[2][0]
    # without the stored bars, 150 would be the first close and 110 a jump from it
    c = check(line(0, "150") + line(5, "110") + line(20, "290"))
    assert [b.close for b in c.accepted] == [Decimal(150)]


def test_jump_is_per_symbol() -> None:
    c = check(line(0, "100") + line(0, "10", "MSFT") + line(1, "101") + line(1, "11", "MSFT"))
    assert len(c.accepted) == 4


def test_parse_max_jump_pct() -> None:
    assert md.parse_max_jump_pct(None) == Decimal(25)
    assert md.parse_max_jump_pct("12.5") == Decimal("12.5")
    for bad in ("0", "-1", "ten"):
        with pytest.raises(BadInput, match=r"md\.max_jump_pct"):
            md.parse_max_jump_pct(bad)


def test_jump_pct() -> None:
    assert md.jump_pct(Decimal(100), Decimal(75)) == Decimal(25)


# ---- aggregation ----------------------------------------------------------------------------


def test_aggregate_hourly_and_daily() -> None:
    bars = [
        bar(20, "12", o="11", h="13", lo="10", v="5"),  # 14:50
        bar(0, "10", o="9", h="10.5", lo="8.5", v="1"),  # 14:30
        bar(40, "14", o="12", h="15", lo="11", v="2"),  # 15:10
        bar(0, "50", "MSFT"),
    ]
    hourly = md.aggregate(bars, md.Interval.HOUR)
    assert [(a.symbol, a.bucket.hour, a.bars) for a in hourly] == [
        ("AAPL", 14, 2),
        ("AAPL", 15, 1),
        ("MSFT", 14, 1),
    ]
    h14 = hourly[0]
    assert (h14.open, h14.high, h14.low, h14.close, h14.volume) == (
        Decimal(9),
        Decimal(13),
        Decimal("8.5"),
        Decimal(12),
        Decimal(6),
    )
    daily = md.aggregate(bars, md.Interval.DAY)
    d = daily[0]
    assert d.bucket == datetime(2026, 1, 5, tzinfo=UTC)
    assert (d.open, d.high, d.low, d.close, d.volume, d.bars) == (
        Decimal(9),
        Decimal(15),
        Decimal("8.5"),
        Decimal(14),
        Decimal(8),
        3,
    )
    assert d.as_json()["time"] == "2026-01-05T00:00:00.000000Z"
    assert d.as_json()["volume"] == "8"


def test_buckets_are_utc() -> None:
    local = datetime.fromisoformat("2026-01-06T00:30:00+01:00")
    assert md.bucket_of(local, md.Interval.DAY) == datetime(2026, 1, 5, tzinfo=UTC)
    assert md.bucket_of(local, md.Interval.HOUR) == datetime(2026, 1, 5, 23, tzinfo=UTC)


def test_day_spans_merge_contiguous_days() -> None:
    day = timedelta(days=1)
    bars = [md.Bar("AAPL", T0 + n * day, *(Decimal(1),) * 5) for n in (0, 1, 3)]
    spans = md.day_spans([b.key for b in [*bars, bar(0, "1", "MSFT")]])
    d0 = datetime(2026, 1, 5, tzinfo=UTC)
    assert spans == [
        ("AAPL", d0, d0 + 2 * day),
        ("AAPL", d0 + 3 * day, d0 + 4 * day),
        ("MSFT", d0, d0 + day),
    ]


def test_refreshed_recomputes_only_touched_buckets_from_all_stored_bars() -> None:
    old = [bar(0, "10", v="1"), bar(40, "11", v="1")]  # hours 14 and 15
    new = [bar(10, "12", h="13", v="2")]  # hour 14
    touched, aggs = md.refreshed(new, [*old, *new], md.Interval.HOUR)
    assert touched == {("AAPL", datetime(2026, 1, 5, 14, tzinfo=UTC))}
    (a,) = aggs
    assert (a.open, a.close, a.high, a.volume, a.bars) == (
        Decimal(10),
        Decimal(12),
        Decimal(13),
        Decimal(3),
        2,
    )


def test_a_first_bar_with_a_wild_open_high_or_low_is_a_bad_tick() -> None:
    """The re-review: with no close before it, a symbol's first bar (or a late bar before every
    stored one) was not checked at all; `100000,100000,99,100` filled a resting sell at
    100,000. Its open, high and low are held to the limit from its own close."""
    c = check(line(0, "100", o="100000", h="100000", lo="99"))
    (why,) = reasons(c)[2]
    assert why.startswith("open 100000 is 99900.00%, high 100000 is 99900.00% from the bar's")
    assert "close 100 (no close before it)" in why
    assert [b.close for b in check(line(0, "100", o="90", h="125", lo="75")).accepted] == [100]
