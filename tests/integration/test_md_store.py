"""Market data import, aggregates and last prices on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from oms import book, md_book
from oms.book import Ctx, Instrument
from oms.errors import BadInput, NotFound
from oms.marketdata import Interval
from oms.schema import audit_events, bar_aggregates, imports, market_bar_rejects, market_bars
from tests.conftest import write

HEADER = "time,symbol,open,high,low,close,volume\n"
NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
CTX = Ctx("tester", NOW)
DAY = datetime(2026, 1, 5, tzinfo=UTC)


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hour, minutes=minute)


def row(
    when: datetime,
    close: str,
    symbol: str = "AAPL",
    *,
    o: str | None = None,
    h: str | None = None,
    lo: str | None = None,
    v: str = "100",
) -> str:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp},{symbol},{o or close},{h or close},{lo or close},{close},{v}\n"


@pytest.fixture
def md_store(store: Any) -> Any:
    book.add_instruments(
        store,
        CTX,
        [
            Instrument("AAPL", "24/7", "USD", Decimal("0.01"), Decimal(1), False),
            Instrument("MSFT", "24/7", "USD", Decimal("0.01"), Decimal(1), False),
            Instrument("IDLE", "24/7", "USD", Decimal("0.01"), Decimal(1), False),
        ],
    )
    return store


def count(store: Any, table: Any) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def aggregates(store: Any, interval: Interval, symbol: str = "AAPL") -> list[dict[str, Any]]:
    with store.read() as conn:
        return [a.as_json() for a in md_book.list_aggregates(conn, symbol, interval)]


def test_import_stores_good_rows_and_keeps_rejects(md_store: Any, tmp_path: Path) -> None:
    path = write(
        tmp_path / "bars.csv",
        HEADER
        + row(at(14, 30), "190.250", o="190", h="191", lo="189.5", v="1000")
        + row(at(14, 31), "190.5", o="190.25", h="190.75", lo="190")
        + "2026-01-05T14:32:00,AAPL,1,1,1,1,1\n"
        + row(at(14, 33), "10", "NOPE")
        + row(at(14, 34), "300")
        + row(at(14, 30), "10", "MSFT"),
    )
    events = count(md_store, audit_events)
    result = md_book.import_bars(md_store, CTX, path)
    assert result.as_json() == {
        "file": path,
        "sha256": result.sha256,
        "rows": 6,
        "accepted": 3,
        "rejected": 3,
        "unchanged": 0,
        "import_id": result.import_id,
    }
    assert len(result.sha256) == 64
    assert count(md_store, audit_events) == events + 1
    assert count(md_store, market_bars) == 3
    with md_store.read() as conn:
        imp = conn.execute(select(imports).where(imports.c.import_id == result.import_id)).one()
        assert (imp.kind, imp.rows, imp.accepted, imp.rejected, imp.skipped) == ("md", 6, 3, 3, 0)
        bars = md_book.list_bars(conn, "AAPL")
        assert [b.close for b in bars] == [Decimal("190.250"), Decimal("190.5")]
        assert bars[0].as_json()["close"] == "190.250"  # exact, as written
        assert bars[0].time == at(14, 30)
        raw = conn.execute(select(market_bar_rejects).order_by(market_bar_rejects.c.line)).all()
        rejects = md_book.list_rejects(conn, result.import_id)
        last = conn.execute(select(audit_events).order_by(audit_events.c.seq.desc())).first()
    assert [r.line for r in raw] == [4, 5, 6]
    assert json.loads(raw[0].values)["time"] == "2026-01-05T14:32:00"
    assert "has no time zone" in json.loads(raw[0].reasons)[0]
    assert [r.line for r in rejects] == [4, 5, 6]
    assert "not a known instrument" in rejects[1].reasons[0]
    assert "jumps" in rejects[2].reasons[0]
    assert rejects[2].as_json()["values"]["close"] == "300"
    assert last is not None
    assert (last.action, last.entity_type, last.entity_id) == (
        "md.import",
        "import",
        str(result.import_id),
    )
    assert json.loads(last.payload)["symbols"] == ["AAPL", "MSFT"]


def test_reimport_of_the_same_file_changes_nothing(md_store: Any, tmp_path: Path) -> None:
    path = write(
        tmp_path / "bars.csv",
        HEADER
        + row(at(14, 30), "10")
        + row(at(14, 31), "11")
        + row(at(15, 0), "11.5")
        + "bad,row,1,1,1,1,1\n",
    )
    first = md_book.import_bars(md_store, CTX, path)
    assert (first.accepted, first.rejected, first.unchanged) == (3, 1, 0)
    before = (aggregates(md_store, Interval.HOUR), aggregates(md_store, Interval.DAY))
    second = md_book.import_bars(md_store, CTX, path)
    assert (second.rows, second.accepted, second.rejected, second.unchanged) == (4, 0, 1, 3)
    assert second.import_id != first.import_id
    assert count(md_store, market_bars) == 3
    assert (aggregates(md_store, Interval.HOUR), aggregates(md_store, Interval.DAY)) == before
    with md_store.read() as conn:
        assert len(md_book.list_rejects(conn)) == 2  # the bad row, once per import
        assert len(md_book.list_rejects(conn, second.import_id)) == 1


def test_conflicting_bar_is_rejected_and_the_stored_bar_kept(md_store: Any, tmp_path: Path) -> None:
    md_book.import_bars(md_store, CTX, write(tmp_path / "a.csv", HEADER + row(at(14, 30), "10")))
    result = md_book.import_bars(
        md_store,
        CTX,
        write(tmp_path / "b.csv", HEADER + row(at(14, 30), "10.5") + row(at(14, 30), "10", "MSFT")),
    )
    assert (result.accepted, result.rejected, result.unchanged) == (1, 1, 0)
    (rej,) = result.rejects
    assert "conflicts with the stored bar of AAPL at 2026-01-05T14:30:00.000000Z" in rej.reasons[0]
    with md_store.read() as conn:
        assert md_book.last_price(conn, "AAPL") == (Decimal(10), at(14, 30))


def test_jump_is_checked_against_the_stored_previous_close(md_store: Any, tmp_path: Path) -> None:
    md_book.import_bars(md_store, CTX, write(tmp_path / "a.csv", HEADER + row(at(14), "100")))
    path = write(tmp_path / "b.csv", HEADER + row(at(15), "140") + row(at(16), "120"))
    result = md_book.import_bars(md_store, CTX, path)
    assert (result.accepted, result.rejected) == (1, 1)
    assert "previous close 100" in result.rejects[0].reasons[0]
    # a wider limit, from the settings table, accepts it
    assert md_book.set_max_jump_pct(md_store, CTX, Decimal(50)) == Decimal(50)
    with md_store.read() as conn:
        assert md_book.max_jump_pct(conn) == Decimal(50)
    again = md_book.import_bars(md_store, CTX, path)
    assert (again.accepted, again.rejected, again.unchanged) == (1, 0, 1)


def test_aggregates_are_updated_incrementally(md_store: Any, tmp_path: Path) -> None:
    md_book.import_bars(
        md_store,
        CTX,
        write(
            tmp_path / "a.csv",
            HEADER
            + row(at(14, 30), "10", o="9", h="10.5", lo="8.5", v="1")
            + row(at(14, 40), "11", o="10", h="11", lo="10", v="2")
            + row(at(9, 0, day=-1), "10", v="7"),
        ),
    )
    assert aggregates(md_store, Interval.HOUR) == [
        {
            "symbol": "AAPL",
            "interval": "1h",
            "time": "2026-01-04T09:00:00.000000Z",
            "open": "10",
            "high": "10",
            "low": "10",
            "close": "10",
            "volume": "7",
            "bars": 1,
        },
        {
            "symbol": "AAPL",
            "interval": "1h",
            "time": "2026-01-05T14:00:00.000000Z",
            "open": "9",
            "high": "11",
            "low": "8.5",
            "close": "11",
            "volume": "3",
            "bars": 2,
        },
    ]
    # mark an untouched bucket: a refresh that only touches its own buckets leaves it alone
    with md_store.write() as conn:
        conn.execute(
            update(bar_aggregates)
            .where(bar_aggregates.c.bucket == at(0, day=-1), bar_aggregates.c.interval == "1d")
            .values(bars=99)
        )
    # a second import into the existing 14:00 bucket (before and after its bars) and a new hour
    md_book.import_bars(
        md_store,
        CTX,
        write(
            tmp_path / "b.csv",
            HEADER
            + row(at(14, 5), "9.5", o="9.8", h="9.9", lo="8", v="4")
            + row(at(14, 50), "12", o="11", h="12.5", lo="11", v="5")
            + row(at(15, 10), "12", v="6"),
        ),
    )
    hourly = aggregates(md_store, Interval.HOUR)
    assert [
        (a["time"][11:16], a["open"], a["high"], a["low"], a["close"], a["volume"], a["bars"])
        for a in hourly
    ] == [
        ("09:00", "10", "10", "10", "10", "7", 1),
        ("14:00", "9.8", "12.5", "8", "12", "12", 4),
        ("15:00", "12", "12", "12", "12", "6", 1),
    ]
    daily = aggregates(md_store, Interval.DAY)
    assert [
        (a["time"][:10], a["open"], a["high"], a["low"], a["close"], a["volume"], a["bars"])
        for a in daily
    ] == [
        ("2026-01-04", "10", "10", "10", "10", "7", 99),  # untouched, not recomputed
        ("2026-01-05", "9.8", "12.5", "8", "12", "18", 5),
    ]
    assert count(md_store, bar_aggregates) == 5
    with md_store.read() as conn:
        window = md_book.list_aggregates(conn, "AAPL", Interval.HOUR, start=at(14), end=at(15))
        assert [a.bucket for a in window] == [at(14)]


def test_last_price_and_last_prices(md_store: Any, tmp_path: Path) -> None:
    md_book.import_bars(
        md_store,
        CTX,
        write(
            tmp_path / "a.csv",
            HEADER
            + row(at(14), "100")
            + row(at(15), "101")
            + row(at(16), "102")
            + row(at(14), "50", "MSFT"),
        ),
    )
    with md_store.read() as conn:
        assert md_book.last_price(conn, "AAPL") == (Decimal(102), at(16))
        assert md_book.last_price(conn, "AAPL", at(16)) == (Decimal(101), at(15))
        assert md_book.last_price(conn, "AAPL", at(14)) is None
        assert md_book.last_price(conn, "IDLE") is None
        assert md_book.last_prices(conn, ["AAPL", "MSFT", "IDLE", "NOPE"]) == {
            "AAPL": Decimal(102),
            "MSFT": Decimal(50),
        }
        assert md_book.last_prices(conn, ["AAPL", "MSFT"], at(15)) == {
            "AAPL": Decimal(100),
            "MSFT": Decimal(50),
        }
        assert md_book.last_prices(conn, []) == {}
        assert md_book.last_bar(conn, "AAPL").close == Decimal(102)
        with pytest.raises(NotFound, match="no market data for 'IDLE'"):
            md_book.last_bar(conn, "IDLE")
        with pytest.raises(NotFound, match="instrument 'NOPE' not found"):
            md_book.last_bar(conn, "NOPE")
        with pytest.raises(NotFound):
            md_book.list_rejects(conn, 12345)


def test_bad_file_writes_nothing(md_store: Any, tmp_path: Path) -> None:
    events = count(md_store, audit_events)
    for name, text in [
        ("empty.csv", ""),
        ("cols.csv", "time,symbol,open,high,low,close\n"),
        ("bin.csv", HEADER.encode() + b"\xff\xfe,AAPL,1,1,1,1,1\n"),
    ]:
        with pytest.raises(BadInput):
            md_book.import_bars(md_store, CTX, write(tmp_path / name, text))
    with pytest.raises(BadInput, match="no such file"):
        md_book.import_bars(md_store, CTX, str(tmp_path / "missing.csv"))
    assert count(md_store, imports) == 0
    assert count(md_store, audit_events) == events


def test_refresh_aggregates_recomputes_from_market_bars(md_store: Any, tmp_path: Path) -> None:
    md_book.import_bars(
        md_store,
        CTX,
        write(
            tmp_path / "a.csv", HEADER + row(at(14, 30), "10", v="1") + row(at(14, 40), "11", v="2")
        ),
    )
    expected = aggregates(md_store, Interval.HOUR), aggregates(md_store, Interval.DAY)
    with md_store.write() as conn:
        conn.execute(update(bar_aggregates).values(bars=99, volume=Decimal(0)))
    with md_store.read() as conn:
        (first, _) = md_book.list_bars(conn, "AAPL")
    with md_store.write() as conn:
        assert md_book.refresh_aggregates(conn, [first]) == 2  # one hour, one day
        assert md_book.refresh_aggregates(conn, []) == 0
    assert (aggregates(md_store, Interval.HOUR), aggregates(md_store, Interval.DAY)) == expected
