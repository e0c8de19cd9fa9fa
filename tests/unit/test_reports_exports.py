"""Exports: exact decimals in CSV (the stored text) and in Parquet (DECIMAL columns), and the
firm settings' defaults."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest

from oms.errors import BadInput
from reports import exports
from reports.firm import DEFAULTS, firm_from_settings

D = Decimal


def sample() -> exports.Export:
    cols = (("id", exports.INT), ("qty", exports.DECIMAL), ("px", exports.DECIMAL),
            ("day", exports.DATE), ("at", exports.TIME), ("note", exports.TEXT))  # fmt: skip
    rows = [
        (1, D("100"), D("190.25"), date(2026, 11, 24), datetime(2026, 11, 24, 15, tzinfo=UTC),
         "a,b \"q\""),
        (2, D("0.000000000001"), D("123456789012345678.123456789012"), date(2026, 11, 25), None,
         None),
        (3, D("-5"), None, date(2026, 11, 25), datetime(2026, 11, 25, 1, 2, 3, 4, tzinfo=UTC), ""),
    ]  # fmt: skip
    return exports.Export("trades", cols, rows)


def test_csv_holds_the_stored_text() -> None:
    text = exports.to_csv(sample()).decode()
    assert text.splitlines() == [
        "id,qty,px,day,at,note",
        '1,100,190.25,2026-11-24,2026-11-24T15:00:00.000000Z,"a,b ""q"""',
        "2,0.000000000001,123456789012345678.123456789012,2026-11-25,,",
        "3,-5,,2026-11-25,2026-11-25T01:02:03.000004Z,",
    ]


def test_parquet_decimals_are_exact() -> None:
    frame = pl.read_parquet(io.BytesIO(exports.to_parquet(sample())))
    assert frame.schema["qty"] == pl.Decimal(38, 12)
    assert frame.schema["px"] == pl.Decimal(38, 12)
    assert frame.schema["at"] == pl.Datetime("us", "UTC")
    assert frame["px"].to_list()[:2] == [D("190.25"), D("123456789012345678.123456789012")]
    assert frame["qty"].to_list() == [D("100"), D("1E-12"), D("-5")]
    assert frame["day"].to_list()[0] == date(2026, 11, 24)


def test_an_empty_range_is_refused_when_backwards() -> None:
    with pytest.raises(BadInput, match="after --to"):
        exports.check_range(date(2026, 11, 2), date(2026, 11, 1))


def test_firm_settings_have_defaults_and_a_checked_capacity() -> None:
    firm = firm_from_settings({})
    assert firm.name == DEFAULTS["firm.name"] and firm.capacity == "agent"
    assert firm.address == ()
    firm = firm_from_settings(
        {"firm.name": " Acme ", "firm.address": "1 Main St | NY", "firm.contact": "ops@acme",
         "firm.capacity": "Principal"}
    )  # fmt: skip
    assert (firm.name, firm.address, firm.capacity) == ("Acme", ("1 Main St", "NY"), "principal")
    assert "ops@acme" in firm.notice and "ops@acme" in firm.confirm_disclosure
    with pytest.raises(BadInput, match=r"firm\.capacity"):
        firm_from_settings({"firm.capacity": "dealer"})
