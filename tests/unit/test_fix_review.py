"""oms.fix, pure: messages without BodyLength or CheckSum, the fill's dates and commission."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from oms import fix
from oms.errors import BadInput, RowError
from tests.cli.test_order_cli import fix_line

FILL = ((35, "8"), (11, "C1"), (17, "E1"), (150, "F"), (32, "4"), (31, "100"))


def one(*fields: tuple[int, str]) -> fix.Report:
    (rep,) = fix.parse(fix_line(*FILL, *fields))
    assert isinstance(rep, fix.Report)
    return rep


@pytest.mark.parametrize(
    "line",
    [
        "35=8|11=C1|17=E1|150=F|32=4|31=100",  # no 8, 9 or 10
        "8=FIX.4.4|35=8|11=C1|17=E1|150=F|32=4|31=100|",  # no 9 or 10
        "8=FIX.4.4\x0135=8\x0111=C1\x0117=E1\x01150=F\x0132=4\x0131=100",
        fix_line(*FILL)[: fix_line(*FILL).rindex("10=")],  # 8 and 9, no 10
    ],
)
def test_a_message_without_body_length_or_checksum_parses(line: str) -> None:
    (rep,) = fix.parse(line)
    assert isinstance(rep, fix.Report), rep
    assert (rep.msg_type, rep.get(11), rep.get(32)) == ("8", "C1", "4")


def test_body_length_is_checked_without_begin_string() -> None:
    (err,) = fix.parse("9=99|35=8|11=C1|17=E1|150=0|")
    assert isinstance(err, RowError) and "BodyLength" in err.reason


def test_a_pipe_inside_a_value_of_an_soh_line_is_data() -> None:
    (rep,) = fix.parse(fix_line(*FILL, (58, "ref A|B"), sep="\x01"))
    assert isinstance(rep, fix.Report) and rep.get(58) == "ref A|B"


@pytest.mark.parametrize("line", ["hello world", "35=8|abc=1|11=C1", "35=8|11=|17=E1"])
def test_text_that_is_not_tag_value_is_a_row_error(line: str) -> None:
    (err,) = fix.parse(line)
    assert isinstance(err, RowError) and "not a FIX message" in err.reason


def test_trade_times_from_60_75_64() -> None:
    t = fix.trade_times(
        one((60, "20260310-14:30:05.123456789"), (75, "20260310"), (64, "20260312"))
    )
    assert t == fix.TradeTimes(
        datetime(2026, 3, 10, 14, 30, 5, 123456, tzinfo=UTC), date(2026, 3, 10), date(2026, 3, 12)
    )
    assert fix.trade_times(one()) == fix.TradeTimes(None, None, None)


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (((60, "20260310 14:30:00"),), "TransactTime (60)"),
        (((60, "20260230-10:00:00"),), "TransactTime (60)"),
        (((60, "20260310-25:00:00"),), "TransactTime (60)"),
        (((75, "2026-03-10"),), "TradeDate (75)"),
        (((64, "20261301"),), "SettlDate (64)"),
        (((75, "20260310"), (64, "20260309")), "before the trade date"),
        (((60, "20260310-10:00:00"), (64, "20260309")), "before the trade date"),
    ],
)
def test_bad_dates_are_bad_input(fields: tuple[tuple[int, str], ...], text: str) -> None:
    with pytest.raises(BadInput, match=text.replace("(", r"\(").replace(")", r"\)")):
        fix.trade_times(one(*fields))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ((), "0"),
        (((12, "1.5"),), "1.5"),
        (((12, "1.5"), (13, "3")), "1.5"),
        (((12, "0.25"), (13, "1")), "1"),  # per unit: x 4
        (((12, "0.1"), (13, "2")), "0.4"),  # percent of 4 x 100
        (((13, "1"),), "0"),
        (((12, "0.333"), (13, "1")), "1.33"),  # 1.332: a rate's amount is rounded to cents
        (((12, "0.12345"), (13, "2")), "0.49"),  # 0.4938
        (((12, "0.123"),), "0.123"),  # an absolute amount is the venue's, as given
    ],
)
def test_commission_by_comm_type(fields: tuple[tuple[int, str], ...], expected: str) -> None:
    got = fix.commission(one(*fields), Decimal(4), Decimal(100), currency="USD")
    assert got == Decimal(expected)


@pytest.mark.parametrize(
    ("currency", "fields", "expected"),
    [
        ("JPY", ((12, "0.15"), (13, "2")), "49"),  # 33 x 999 x 0.15% = 49.4505 yen
        ("JPY", ((12, "0.5"), (13, "1")), "17"),  # 16.5 rounds half up
        ("KWD", ((12, "0.0001"), (13, "1")), "0.003"),  # 0.0033 dinars: three decimals
    ],
)
def test_a_rate_commission_is_rounded_to_the_minor_unit(
    currency: str, fields: tuple[tuple[int, str], ...], expected: str
) -> None:
    assert fix.commission(one(*fields), Decimal(33), Decimal(999), currency=currency) == Decimal(
        expected
    )


@pytest.mark.parametrize(
    "fields", [((12, "-7"),), ((12, "abc"),), ((12, "1"), (13, "4")), ((12, "1"), (13, "x"))]
)
def test_bad_commission_is_bad_input(fields: tuple[tuple[int, str], ...]) -> None:
    with pytest.raises(BadInput):
        fix.commission(one(*fields), Decimal(4), Decimal(100), currency="USD")


@pytest.mark.parametrize("sep", ["\x01", "|"])
def test_two_messages_run_together_say_so(sep: str) -> None:
    """The reason used to quote the rest of the line as the declared CheckSum ("CheckSum
    031\\x018=FIX.4.4\\x019=50...10=033 is wrong"), raw SOH bytes and all."""
    first = fix_line((35, "8"), (11, "X"), (17, "E1"), (150, "0"), sep=sep)
    second = fix_line((35, "8"), (11, "X"), (17, "E2"), (150, "0"), sep=sep)
    (got,) = fix.parse(first + second)
    assert isinstance(got, RowError) and got.line == 1
    assert "two messages run together" in got.reason
    assert "\x01" not in got.reason and "8=FIX" not in got.reason
    (wrong,) = fix.parse(first.replace("10=", "10=9\x1b"))
    assert isinstance(wrong, RowError), wrong
    assert "\x1b" not in wrong.reason


def test_a_long_venue_text_is_cut_for_the_order_history() -> None:
    """A 5 MB Text (58) was kept whole in the order's history, which is read and written
    again at every change of the order."""
    (rep,) = fix.parse(fix_line(*FILL, (58, "x" * 5_000_000)))
    assert isinstance(rep, fix.Report)
    command = fix.command(rep)
    reason = command.reason
    assert reason is not None and len(reason) < fix.MAX_TEXT + 60
    assert reason.startswith("x" * fix.MAX_TEXT) and "5,000,000 characters" in reason
    (short,) = fix.parse(fix_line(*FILL, (58, "partial fill")))
    assert isinstance(short, fix.Report) and fix.command(short).reason == "partial fill"
