from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.errors import BadInput
from oms.values import dec_str, is_decimal_text, parse_decimal, parse_utc, utc_iso

decimal_texts = st.builds(
    lambda sign, i, f: f"{sign}{i}" + (f".{f}" if f else ""),
    st.sampled_from(["", "-"]),
    st.integers(0, 10**18 - 1),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,12}", fullmatch=True)),
)


@given(decimal_texts)
def test_decimal_text_round_trips_exactly(text: str) -> None:
    value = parse_decimal(text, "x")
    assert Decimal(dec_str(value)) == value
    assert dec_str(parse_decimal(dec_str(value), "x")) == dec_str(value)


@pytest.mark.parametrize("text", ["1e3", "1,000", "", " ", "NaN", "inf", "0x10", "1.", ".5",
                                  "1" * 19, "0." + "1" * 13, "--1", "1.2.3"])
def test_refuses_what_is_not_a_plain_decimal(text: str) -> None:
    assert not is_decimal_text(text)
    with pytest.raises(BadInput, match="not a decimal number"):
        parse_decimal(text, "amount")


def test_positive_and_non_negative() -> None:
    with pytest.raises(BadInput, match="greater than zero"):
        parse_decimal("0", "qty", positive=True)
    with pytest.raises(BadInput, match="not be negative"):
        parse_decimal("-0.01", "fee", non_negative=True)
    assert parse_decimal("0", "fee", non_negative=True) == 0


def test_dec_str_never_uses_an_exponent() -> None:
    assert dec_str(Decimal("1E+3")) == "1000"
    assert dec_str(Decimal("1E-7")) == "0.0000001"
    assert dec_str(Decimal("-0.00")) == "0.00"
    assert dec_str(Decimal("190.250")) == "190.250"


def test_times_are_utc_and_naive_is_refused() -> None:
    assert parse_utc("2026-11-25T15:30:00+01:00", "t") == datetime(2026, 11, 25, 14, 30,
                                                                    tzinfo=UTC)
    with pytest.raises(BadInput, match="no time zone"):
        parse_utc("2026-11-25T15:30:00", "t")
    t = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))
    assert utc_iso(t) == "2026-01-02T08:04:05.000006Z"


def test_utc_text_writes_the_year_in_four_digits() -> None:
    """strftime's %Y wrote year 999 as "999": a stored time no read took back (a bar of 0999
    on SQLite broke its symbol)."""
    from datetime import UTC, datetime

    from oms.values import utc_iso, utc_iso_fast

    early = datetime(999, 3, 2, 14, 30, tzinfo=UTC)
    assert utc_iso(early) == utc_iso_fast(early) == "0999-03-02T14:30:00.000000Z"
    assert datetime.fromisoformat(utc_iso(early)) == early


def test_the_whitespace_sql_trims_is_every_character_str_strip_takes() -> None:
    from oms.book import WHITESPACE

    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == WHITESPACE
