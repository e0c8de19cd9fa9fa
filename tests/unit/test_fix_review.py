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
        (((12, "0.001"), (13, "2")), "0.4"),  # 0.1% (FIX: a fraction) of 4 x 100
        (((13, "1"),), "0"),
        (((12, "0.333"), (13, "1")), "1.33"),  # 1.332: a rate's amount is rounded to cents
        (((12, "0.0012345"), (13, "2")), "0.49"),  # 0.4938
        (((12, "0.123"),), "0.123"),  # an absolute amount is the venue's, as given
    ],
)
def test_commission_by_comm_type(fields: tuple[tuple[int, str], ...], expected: str) -> None:
    got = fix.commission(one(*fields), Decimal(4), Decimal(100), currency="USD")
    assert got == Decimal(expected)


@pytest.mark.parametrize(
    ("currency", "fields", "expected"),
    [
        ("JPY", ((12, "0.0015"), (13, "2")), "49"),  # 33 x 999 x 0.15% = 49.4505 yen
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


def test_a_percent_commission_is_a_fraction_and_100_percent_or_more_is_refused() -> None:
    """FIX 4.4 Commission (12): "if CommType (13) is percentage, Commission of 5% should be
    represented as .05"."""
    five = one((12, "0.05"), (13, "2"))
    assert fix.commission(five, Decimal(100), Decimal(100), currency="USD") == Decimal(500)
    with pytest.raises(BadInput, match=r"is 500% of the fill's value: .*5% is \.05"):
        fix.commission(one((12, "5"), (13, "2")), Decimal(100), Decimal(100), currency="USD")


def test_a_commission_in_another_currency_is_refused_not_converted() -> None:
    yen = one((12, "1000"), (13, "3"), (479, "JPY"))
    with pytest.raises(BadInput, match=r"CommCurrency \(479\).*JPY.*booked in USD"):
        fix.commission(yen, Decimal(1), Decimal(100), currency="USD")
    usd = one((12, "7"), (479, "USD"))
    assert fix.commission(usd, Decimal(1), Decimal(100), currency="USD") == Decimal(7)


def _line(*fields: tuple[int, str], begin: str = "FIX.4.4") -> str:
    return "|".join([f"8={begin}", *(f"{t}={v}" for t, v in fields)])


def test_another_fix_version_or_a_fix_42_exec_trans_type_is_refused() -> None:
    body = ((35, "8"), (11, "C1"), (17, "E1"), (150, "F"), (32, "1"), (31, "100"))
    text = "\n".join(
        [
            _line(*body),
            _line(*body, begin="FIX.4.2"),
            _line(*body, (20, "1")),  # FIX 4.2's bust of the execution
            _line(*body, (20, "0")),  # new: as FIX 4.4 means every ExecutionReport
        ]
    )
    assert all(isinstance(x, fix.Report) for x in fix.parse(text))  # the recon loaders' reading
    out = fix.parse(text, fix44=True)
    assert isinstance(out[0], fix.Report) and isinstance(out[3], fix.Report)
    assert isinstance(out[1], RowError) and out[1].field == "8" and "FIX.4.4" in out[1].reason
    assert isinstance(out[2], RowError) and out[2].field == "20" and "ExecType H" in out[2].reason


def test_a_time_or_date_in_other_digits_than_ascii_is_refused() -> None:
    arabic = "\u0662\u0660\u0662\u0666\u0661\u0661\u0662\u0664"  # 20261124 in Arabic-Indic
    with pytest.raises(BadInput):
        fix.trade_times(one((60, f"{arabic}-15:00:00")))
    with pytest.raises(BadInput):
        fix.trade_times(one((60, "20261124-15:00:00"), (75, arabic)))


def test_a_fix_float_may_leave_out_the_digits_before_the_point() -> None:
    """FIX's own example of a 5% commission is `.05`: it was refused as no decimal."""
    five = one((12, ".05"), (13, "2"))
    assert fix.commission(five, Decimal(100), Decimal(100), currency="USD") == Decimal(500)
    assert fix.commission(one((12, ".5")), Decimal(1), Decimal(100), currency="USD") == Decimal(
        "0.5"
    )
    assert fix.venue_number(".25") == Decimal("0.25")
    assert fix.venue_number("-.25") == Decimal("-0.25")


@pytest.mark.parametrize(
    ("text", "read"),
    [(".5", "0.5"), ("-.5", "-0.5"), (" .5 ", "0.5"), ("5.", "5"), ("100.", "100"),
     ("-23.", "-23"), ("0.", "0"), ("1.50", "1.50"), (".", "."), ("-.", "-."),
     (".5e2", ".5e2"), ("1e3", "1e3")],
)  # fmt: skip
def test_a_fix_float_is_read_as_fix_writes_it(text: str, read: str) -> None:
    """FIX: "23." is 23 and ".5" is 0.5; a lone point or an exponent is left to be refused."""
    assert fix.float_text(text) == read


def test_a_trailing_point_is_a_whole_number() -> None:
    assert fix.commission(one((12, "5.")), Decimal(1), Decimal(100), currency="USD") == Decimal(5)
    with pytest.raises(BadInput):
        fix.commission(one((12, ".")), Decimal(1), Decimal(100), currency="USD")
