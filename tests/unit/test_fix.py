from decimal import Decimal

import pytest

from oms import fix, orders
from oms.errors import BadInput, RowError
from tests.cli.test_order_cli import fix_line


def test_soh_and_pipe_separated_messages_parse_alike() -> None:
    fields = ((35, "8"), (11, "C1"), (17, "E1"), (150, "F"), (32, "5"), (31, "10.25"))
    for sep in ("|", "\x01"):
        (rep,) = fix.parse(fix_line(*fields, sep=sep))
        assert isinstance(rep, fix.Report)
        assert fix.command(rep) == orders.ApplyFill(orders.ExecId("E1"), Decimal("5"),
                                                    Decimal("10.25"))


def test_wrong_body_length_and_checksum_are_row_errors() -> None:
    good = fix_line((35, "8"), (11, "C1"), (17, "E1"), (150, "0"))
    bad_sum = good[: good.rindex("10=")] + "10=000|"
    bad_len = good.replace("9=", "9=1", 1)
    results = fix.parse("\n".join([good, "", bad_sum, bad_len]))
    assert isinstance(results[0], fix.Report)
    assert isinstance(results[1], RowError) and results[1].line == 3
    assert "CheckSum" in results[1].reason
    assert isinstance(results[2], RowError) and "BodyLength" in results[2].reason


def test_other_message_types_are_refused() -> None:
    (err,) = fix.parse(fix_line((35, "D"), (11, "C1")))
    assert isinstance(err, RowError) and "only ExecutionReport" in err.reason


@pytest.mark.parametrize(("fields", "expected"), [
    (((150, "4"), (11, "C2")), orders.AcceptCancel(client_order_id=orders.ClientOrderId("C2"))),
    (((150, "8"), (58, "no")), orders.RejectOrder(reason="no")),
    (((150, "C"),), orders.Expire()),
    (((150, "H"), (19, "E0")), orders.BustFill(orders.ExecId("E1"), orders.ExecId("E0"))),
])
def test_exec_types_map_to_commands(fields: tuple, expected: object) -> None:
    (rep,) = fix.parse(fix_line((35, "8"), (17, "E1"), *fields))
    assert isinstance(rep, fix.Report)
    assert fix.command(rep) == expected


def test_cancel_reject_answers_the_request_it_names() -> None:
    (rep,) = fix.parse(fix_line((35, "9"), (11, "C1"), (434, "2")))
    assert isinstance(rep, fix.Report)
    assert fix.command(rep) == orders.RejectReplace()
    (rep,) = fix.parse(fix_line((35, "9"), (11, "C1"), (434, "1")))
    assert isinstance(rep, fix.Report)
    assert fix.command(rep) == orders.RejectCancel()


@pytest.mark.parametrize("fields", [(), ((434, "3"),)])
def test_a_cancel_reject_must_say_which_request_it_refuses(fields: tuple) -> None:
    """CxlRejResponseTo (434) is required in an OrderCancelReject: without it the reject could
    land on the wrong request (it used to be taken for a cancel's)."""
    (rep,) = fix.parse(fix_line((35, "9"), (11, "C1"), *fields))
    assert isinstance(rep, fix.Report)
    with pytest.raises(BadInput, match="CxlRejResponseTo"):
        fix.command(rep)


@pytest.mark.parametrize("fields", [((150, "F"), (32, "5")), ((150, "F"), (32, "-5"), (31, "1")),
                                    ((150, "G"), (32, "5"), (31, "1")), ((150, "Z"),)])
def test_reports_missing_what_they_need_are_bad_input(fields: tuple) -> None:
    (rep,) = fix.parse(fix_line((35, "8"), (17, "E1"), *fields))
    assert isinstance(rep, fix.Report)
    with pytest.raises(BadInput):
        fix.command(rep)


def test_a_leap_second_is_a_time() -> None:
    """FIX UTCTimestamps allow second 60 (a leap second); it was refused as no timestamp."""
    from datetime import UTC, datetime

    (rep,) = fix.parse(fix_line((35, "8"), (11, "C1"), (17, "E1"), (150, "F"), (32, "1"),
                                (31, "1"), (60, "20261231-23:59:60.250")))
    assert isinstance(rep, fix.Report)
    assert fix.trade_times(rep).exec_time == datetime(2026, 12, 31, 23, 59, 59, 999999, UTC)
    (bad,) = fix.parse(fix_line((35, "8"), (11, "C1"), (17, "E1"), (150, "F"), (32, "1"),
                                (31, "1"), (60, "20261231-12:00:60")))
    assert isinstance(bad, fix.Report)
    with pytest.raises(BadInput, match="is not a UTC timestamp"):
        fix.trade_times(bad)  # second 60 only at the end of a UTC day
