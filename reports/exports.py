"""Exports of the book for a date range: trades (executions by trade date), orders (by the UTC
date they were created) and the audit trail (events by their UTC date), as CSV or Parquet.

Exact either way: CSV holds every decimal as the text tieout stores (canonical fixed point,
never an exponent or a float), Parquet a DECIMAL(38, s) column whose scale s is the largest
any value of the column has (tieout's decimals have at most 18 + 12 digits, so every value
fits exactly). Times are ISO 8601 UTC with Z in CSV and UTC timestamps (microseconds) in
Parquet; dates are dates. An audit event's payload is its canonical JSON text, exactly as
hashed, so an exported range can be checked against the chain.

A CSV text cell of trades and orders that a spreadsheet would run as a formula (it starts with
=, +, -, @, a tab or a carriage return: a venue's free text, an actor's name) or that starts
with an apostrophe is written with a leading apostrophe (one off gives the text back); the
audit trail's CSV is written as hashed, so that it can be checked against the chain (open it
as text, not in a spreadsheet); Parquet holds every text as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from oms import audit
from oms import executions as executions_book
from oms.errors import BadInput
from oms.lots import BUST
from oms.schema import executions, orders
from oms.values import day_start, dec_str, utc_iso
from reports.documents import write_file

KINDS = ("trades", "orders", "audit")
FORMATS = ("csv", "parquet")
TEXT, INT, DECIMAL, DATE, TIME, BOOL = "text", "int", "decimal", "date", "time", "bool"

_TRADES = (
    ("id", INT), ("exec_id", TEXT), ("venue", TEXT), ("account", TEXT), ("symbol", TEXT),
    ("side", TEXT), ("quantity", DECIMAL), ("price", DECIMAL), ("currency", TEXT),
    ("trade_date", DATE), ("settle_date", DATE), ("exec_time", TIME), ("commission", DECIMAL),
    ("fees", DECIMAL), ("client_order_id", TEXT), ("order_id", TEXT), ("exec_type", TEXT),
    ("ref_exec_id", TEXT), ("source", TEXT), ("booked_at", TIME), ("actor", TEXT),
    ("superseded_by", TEXT),  # not stored: the correction or bust that decides the trade now
    # not stored: the row is part of the trade as it stands (a fill or correction that nothing
    # replaced; never a bust): the rows to sum for positions and cash
    ("effective", BOOL),
)  # fmt: skip
_STORED_TRADES = _TRADES[:-2]
_ORDERS = (
    ("order_id", TEXT), ("client_order_id", TEXT), ("account", TEXT), ("symbol", TEXT),
    ("side", TEXT), ("type", TEXT), ("tif", TEXT), ("quantity", DECIMAL),
    ("limit_price", DECIMAL), ("stop_price", DECIMAL), ("expire_at", DATE), ("venue", TEXT),
    ("status", TEXT), ("cum_qty", DECIMAL), ("leaves_qty", DECIMAL), ("avg_px", DECIMAL),
    ("reject_reason", TEXT), ("created_at", TIME), ("updated_at", TIME), ("created_by", TEXT),
)  # fmt: skip
_AUDIT = (
    ("seq", INT), ("at", TIME), ("actor", TEXT), ("action", TEXT), ("entity_type", TEXT),
    ("entity_id", TEXT), ("reason", TEXT), ("payload", TEXT), ("prev_hash", TEXT),
    ("hash", TEXT),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Export:
    kind: str
    columns: tuple[tuple[str, str], ...]  # (name, type)
    rows: list[tuple[Any, ...]]


def check_range(period_from: date, period_to: date) -> None:
    if period_from > period_to:
        raise BadInput("--from", f"{period_from.isoformat()} is after --to {period_to.isoformat()}")


def read(conn: Connection, kind: str, period_from: date, period_to: date) -> Export:
    check_range(period_from, period_to)
    since, until = day_start(period_from), day_start(period_to + timedelta(days=1))
    if kind == "trades":
        e = executions.c
        q = (
            select(*(e[name] for name, _ in _STORED_TRADES))
            .where(e.trade_date >= period_from, e.trade_date <= period_to)
            .order_by(e.trade_date, e.id)
        )
        return Export(kind, _TRADES, _with_counting_orders(conn, conn.execute(q)))
    if kind == "orders":
        o = orders.c
        q = (
            select(*(o[name] for name, _ in _ORDERS))
            .where(o.created_at >= since, o.created_at < until)
            .order_by(o.created_at, o.order_id)
        )
        return Export(kind, _ORDERS, [tuple(r) for r in conn.execute(q)])
    if kind == "audit":
        rows = [
            (r[0], datetime.fromisoformat(r[1]), *r[2:])
            for r in audit.iter_rows(conn, since=since, until=until)
        ]
        return Export(kind, _AUDIT, rows)
    raise BadInput("export", f"{kind!r} is not one of {', '.join(KINDS)}")


def _with_counting_orders(conn: Connection, rows: Iterable[Any]) -> list[tuple[Any, ...]]:
    """The trades, a fill `exec import` booked showing the order its drop copy counted it on
    afterwards (the row, append-only, names none), and each replaced execution the correction
    or bust that decides its trade now (executions.with_counting_orders)."""
    stored = [name for name, _ in _STORED_TRADES]
    docs = executions_book.with_counting_orders(
        conn, [dict(zip(stored, r, strict=True)) for r in rows]
    )
    for d in docs:
        d["effective"] = d["exec_type"] != BUST and d["superseded_by"] is None
    return [tuple(d[name] for name, _ in _TRADES) for d in docs]


# a text cell a spreadsheet would read as a formula (=, +, -, @; a tab or carriage return
# before one): a venue's reject text, an actor's name; written with a leading apostrophe,
# which a spreadsheet shows as text and does not run. A text that starts with an apostrophe
# gets one more, so that one leading apostrophe off gives every text back.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _csv_cell(value: Any, typ: str, *, verbatim: bool = False) -> str:
    if value is None:
        return ""
    if typ == TEXT:
        text = str(value)
        return "'" + text if not verbatim and text.startswith(_FORMULA_START) else text
    if typ == DECIMAL:
        return dec_str(value if isinstance(value, Decimal) else Decimal(str(value)))
    if typ == TIME:
        return utc_iso(value)
    if typ == DATE:
        return value.isoformat()  # type: ignore[no-any-return]
    if typ == BOOL:
        return "true" if value else "false"
    return str(value)


def to_csv(export: Export) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([name for name, _ in export.columns])
    types = [t for _, t in export.columns]
    verbatim = export.kind == "audit"  # as hashed: checked against the chain (see above)
    for row in export.rows:
        writer.writerow(
            [_csv_cell(v, t, verbatim=verbatim) for v, t in zip(row, types, strict=True)]
        )
    return buf.getvalue().encode("utf-8")


def _scale(values: Sequence[Decimal | None]) -> int:
    scale = 0
    for v in values:
        if v is not None:
            exponent = v.as_tuple().exponent
            if isinstance(exponent, int):
                scale = max(scale, -exponent)
    return scale


def to_parquet(export: Export) -> bytes:
    import polars as pl

    columns = []
    for i, (name, typ) in enumerate(export.columns):
        values = [row[i] for row in export.rows]
        dtype: Any
        if typ == DECIMAL:
            dtype = pl.Decimal(38, _scale(values))
        elif typ == INT:
            dtype = pl.Int64
        elif typ == DATE:
            dtype = pl.Date
        elif typ == TIME:
            dtype = pl.Datetime("us", "UTC")
        elif typ == BOOL:
            dtype = pl.Boolean
        else:
            dtype = pl.String
        columns.append(pl.Series(name, values, dtype=dtype))
    buf = io.BytesIO()
    pl.DataFrame(columns).write_parquet(buf)
    return buf.getvalue()


def write(export: Export, fmt: str, path: Path) -> int:
    """Write the export (whole, or nothing); returns the number of rows."""
    if fmt not in FORMATS:
        raise BadInput("--format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    write_file(path, to_csv(export) if fmt == "csv" else to_parquet(export))
    return len(export.rows)
