"""The exception report's pure builder, its ageing, and the recon columns it reads by name."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Date, Table

from oms.calendars import get_calendar
from oms.schema import ExactDecimal, UTCDateTime
from recon import schema as recon_schema
from recon.breaks import business_days as recon_business_days
from reports import recon_tables
from reports.exceptions import AGE_BUCKETS, ExceptionInput, age_bucket, build_exceptions
from reports.firm import firm_from_settings
from reports.sources import business_days
from tests.unit.test_reports_render import NOW, _break, _run

D = Decimal


@pytest.mark.parametrize(
    ("age", "bucket"),
    [(0, "0-1"), (1, "0-1"), (2, "2-5"), (5, "2-5"), (6, "6-10"), (10, "6-10"), (11, ">10"),
     (400, ">10")],
)  # fmt: skip
def test_age_buckets(age: int, bucket: str) -> None:
    assert age_bucket(age) == bucket
    assert [label for label, _, _ in AGE_BUCKETS] == ["0-1", "2-5", "6-10", ">10"]


def test_open_breaks_by_type_and_age_oldest_first() -> None:
    breaks = (
        _break(break_id=1, age_days=0, amount=D("1.50")),
        _break(break_id=2, age_days=12, type="quantity_mismatch", amount=D("-100")),
        _break(break_id=3, age_days=3, amount=D("2.25")),
        _break(break_id=4, age_days=3, kind="cash", type="amount_mismatch", currency="EUR",
               amount=D("7")),
        _break(break_id=5, age_days=8, currency=None, amount=D("0")),
    )  # fmt: skip
    r = build_exceptions(
        ExceptionInput(date(2026, 11, 25), (_run(4), _run(3)), breaks, (), (),
                       firm_from_settings({}), NOW, None)
    )  # fmt: skip
    assert [b.break_id for b in r.open_breaks] == [2, 5, 3, 4, 1]
    assert r.by_age == (("0-1", 1), ("2-5", 2), ("6-10", 1), (">10", 1))
    by_type = {(t.kind, t.type): (t.count, dict(t.amounts)) for t in r.by_type}
    assert by_type == {
        ("cash", "amount_mismatch"): (1, {"EUR": D("7")}),
        ("trades", "price_mismatch"): (3, {"": D("0"), "USD": D("3.75")}),
        ("trades", "quantity_mismatch"): (1, {"USD": D("-100")}),
    }
    assert [run.run_id for run in r.runs] == [3, 4]
    doc = r.as_json()
    assert set(doc) >= {"date", "runs", "open_breaks", "quarantined", "resolved", "by_age"}
    b = doc["open_breaks"][0]
    for key in ("break_id", "run_id", "kind", "type", "status", "account", "symbol",
                "internal_refs", "venue_refs", "differences", "first_seen", "age_days", "amount",
                "suggestion"):  # fmt: skip
        assert key in b
    assert b["differences"] == {"price": {"internal": "190.25", "venue": "190.26"}}
    assert (b["amount"], b["age_bucket"]) == ("-100", ">10")
    assert r.chart.bars[3].value == 1


def test_match_rate_is_of_valid_venue_rows() -> None:
    assert _run(matched=9, venue_rows=12, quarantined_rows=2).match_rate_pct == D("90.00")
    assert _run(matched=2, venue_rows=3, quarantined_rows=0).match_rate_pct == D("66.67")
    assert _run(matched=0, venue_rows=2, quarantined_rows=2).match_rate_pct is None
    assert _run(matched=2, venue_rows=3, quarantined_rows=0).as_json()["match_rate_pct"] == "66.67"


@pytest.mark.parametrize("calendar", ["XNYS", "24/7"])
def test_ageing_counts_business_days_as_breaks_list_does(calendar: str) -> None:
    # the report and `breaks list` age by the same function (oms.calendars.business_days),
    # which counts the calendar's sessions after the day the break was found
    assert business_days is recon_business_days
    first = date(2026, 11, 20)  # a Friday
    for n in range(0, 40, 3):
        as_of = date.fromordinal(first.toordinal() + n)
        if calendar == "24/7":
            expected = n
        else:
            after = date.fromordinal(first.toordinal() + 1)
            expected = len(get_calendar("XNYS").sessions_in_range(after, as_of)) if n else 0
        assert business_days(first, as_of, calendar) == expected, as_of
    assert business_days(first, date(2026, 11, 23), "XNYS") == 1  # the weekend does not count
    assert business_days(first, date(2026, 11, 27), "XNYS") == 4  # nor Thanksgiving (26th)


def test_the_recon_columns_reports_reads_exist_with_these_names() -> None:
    for view in recon_tables.TABLES:
        real = getattr(recon_schema, view.name)
        assert isinstance(real, Table)
        for col in view.columns:
            assert col.name in real.c, f"{view.name}.{col.name}"
            kind = type(real.c[col.name].type)
            if kind in (ExactDecimal, UTCDateTime, Date):  # exact values need the same type
                assert type(col.type) is kind, f"{view.name}.{col.name}"
