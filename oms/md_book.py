"""Market data at the edge: bar files in, bars, rejects and aggregates stored, last prices out.

An import is one business event: one transaction holding the book lock writes the imports row
(kind "md"), the accepted bars, the rejected rows with their reasons, the recomputed hourly and
daily aggregates of the buckets the import touched, and one audit event. The rules themselves
are in oms.marketdata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, or_, select

from oms import audit, tabular
from oms.book import Ctx, exchanges_of, get_instrument, get_setting, put_setting
from oms.calendars import day_end
from oms.errors import NotFound
from oms.marketdata import (
    MAX_JUMP_SETTING,
    Aggregate,
    Bar,
    Interval,
    RawRow,
    Reject,
    check_bars,
    day_spans,
    parse_max_jump_pct,
    parse_rows,
    refreshed,
    split_csv,
    time_ranges,
)
from oms.schema import (
    bar_aggregates,
    imports,
    instruments,
    market_bar_rejects,
    market_bars,
)
from oms.store import Store, bulk_insert
from oms.values import dec_str, utc_iso

IMPORT_KIND = "md"
_CHUNK = 200  # OR-ed conditions per statement
_IN_CHUNK = 1000  # values per IN list


@dataclass(frozen=True, slots=True)
class ImportResult:
    file: str
    sha256: str
    rows: int
    accepted: int
    rejected: int
    unchanged: int
    import_id: int
    rejects: tuple[Reject, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "unchanged": self.unchanged,
            "import_id": self.import_id,
        }


@dataclass(frozen=True, slots=True)
class StoredReject:
    reject_id: int
    import_id: int
    file: str
    line: int
    values: Mapping[str, Any]
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "reject_id": self.reject_id,
            "import_id": self.import_id,
            "file": self.file,
            "line": self.line,
            "values": dict(self.values),
            "reasons": list(self.reasons),
        }


class NoMarketData(NotFound):
    """A known instrument without any stored bar (exit 5)."""

    def __init__(self, symbol: str, at: datetime | None = None) -> None:
        super().__init__("market data", symbol)
        when = f" before {utc_iso(at)}" if at is not None else ""
        self.message = (
            f"no market data for {symbol!r}{when}: no bars are stored "
            "(load some with `tieout md import FILE.csv`)"
        )
        self.args = (self.message,)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _bar(row: Any) -> Bar:
    return Bar(row.symbol, row.time, row.open, row.high, row.low, row.close, row.volume)


def _bar_columns() -> tuple[Any, ...]:
    b = market_bars.c
    return b.symbol, b.time, b.open, b.high, b.low, b.close, b.volume


# ---- settings -------------------------------------------------------------------------------


def max_jump_pct(conn: Connection) -> Decimal:
    """The jump limit in percent (setting md.max_jump_pct, default 25)."""
    return parse_max_jump_pct(get_setting(conn, MAX_JUMP_SETTING))


def set_max_jump_pct(store: Store, ctx: Ctx, value: Decimal) -> Decimal:
    """Set the jump limit (a positive percentage); audited."""
    pct = parse_max_jump_pct(dec_str(value))
    with store.write() as conn:
        put_setting(conn, ctx, MAX_JUMP_SETTING, dec_str(pct))
    return pct


# ---- reading stored bars --------------------------------------------------------------------


def _bars_in_spans(conn: Connection, spans: Sequence[tuple[str, datetime, datetime]]) -> list[Bar]:
    """Stored bars with start <= time < end, for (symbol, start, end) spans."""
    b = market_bars.c
    out: list[Bar] = []
    for chunk in _chunks(spans, _CHUNK):
        cond = or_(
            *(and_(b.symbol == sym, b.time >= start, b.time < end) for sym, start, end in chunk)
        )
        out.extend(_bar(r) for r in conn.execute(select(*_bar_columns()).where(cond)))
    return out


def _latest_bars(conn: Connection, cutoffs: Mapping[str, datetime | None]) -> dict[str, Bar]:
    """Per symbol, the latest stored bar with time < its cutoff (None: the latest of all).
    One query per chunk of symbols, never one per symbol."""
    b = market_bars.c
    items = sorted(cutoffs.items())
    uniform = len({t for _, t in items}) <= 1
    out: dict[str, Bar] = {}
    for chunk in _chunks(items, _IN_CHUNK if uniform else _CHUNK):
        if uniform:
            at = chunk[0][1]
            cond: ColumnElement[bool] = b.symbol.in_([s for s, _ in chunk])
            if at is not None:
                cond = and_(cond, b.time < at)
        else:
            cond = or_(
                *(
                    and_(b.symbol == s, b.time < t) if t is not None else b.symbol == s
                    for s, t in chunk
                )
            )
        latest = (
            select(b.symbol.label("sym"), func.max(b.time).label("t"))
            .where(cond)
            .group_by(b.symbol)
            .subquery()
        )
        q = select(*_bar_columns()).join(
            latest, and_(b.symbol == latest.c.sym, b.time == latest.c.t)
        )
        for row in conn.execute(q):
            out[row.symbol] = _bar(row)
    return out


def last_price(
    conn: Connection, symbol: str, at: datetime | None = None
) -> tuple[Decimal, datetime] | None:
    """The close of the latest bar with time < at (the latest of all when at is None), and
    that bar's time; None when there is none."""
    bar = _latest_bars(conn, {symbol: at}).get(symbol)
    return None if bar is None else (bar.close, bar.time)


def latest_bar(conn: Connection, symbol: str) -> Bar | None:
    """The latest stored bar of an instrument, or None."""
    return _latest_bars(conn, {symbol: None}).get(symbol)


def last_prices(
    conn: Connection, symbols: Iterable[str], at: datetime | None = None
) -> dict[str, Decimal]:
    """last_price for many symbols in one query; symbols without a bar are left out."""
    bars = _latest_bars(conn, dict.fromkeys(symbols, at))
    return {sym: bar.close for sym, bar in bars.items()}


def last_prices_on(conn: Connection, symbols: Iterable[str], day: date) -> dict[str, Decimal]:
    """The marks as of a date: each symbol's last price before the end of that date on its
    exchange (calendars.day_end: local midnight; 24/7 instruments, UTC midnight), not before
    UTC midnight, which is already in Sydney's next session. Symbols without a bar, or not
    listed, are left out."""
    listed = exchanges_of(conn, symbols)
    if not listed:
        return {}
    cutoffs = {sym: day_end(exchange, day) for sym, exchange in listed.items()}
    return {sym: bar.close for sym, bar in _latest_bars(conn, cutoffs).items()}


def last_bar(conn: Connection, symbol: str) -> Bar:
    """The latest stored bar of an instrument; NotFound if the symbol or its bars are unknown."""
    get_instrument(conn, symbol)
    bar = _latest_bars(conn, {symbol: None}).get(symbol)
    if bar is None:
        raise NoMarketData(symbol)
    return bar


def list_bars(
    conn: Connection, symbol: str, *, start: datetime | None = None, end: datetime | None = None
) -> list[Bar]:
    """Stored bars of an instrument with start <= time < end, in time order."""
    get_instrument(conn, symbol)
    b = market_bars.c
    q = select(*_bar_columns()).where(b.symbol == symbol)
    if start is not None:
        q = q.where(b.time >= start)
    if end is not None:
        q = q.where(b.time < end)
    return [_bar(r) for r in conn.execute(q.order_by(b.time))]


def list_aggregates(
    conn: Connection,
    symbol: str,
    interval: Interval,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Aggregate]:
    """Hourly or daily bars of an instrument with start <= bucket < end, in time order."""
    get_instrument(conn, symbol)
    a = bar_aggregates.c
    q = select(bar_aggregates).where(a.interval == interval.value, a.symbol == symbol)
    if start is not None:
        q = q.where(a.bucket >= start)
    if end is not None:
        q = q.where(a.bucket < end)
    return [
        Aggregate(
            interval, r.symbol, r.bucket, r.open, r.high, r.low, r.close, r.volume, int(r.bars)
        )
        for r in conn.execute(q.order_by(a.bucket))
    ]


def list_rejects(conn: Connection, import_id: int | None = None) -> list[StoredReject]:
    """Rejected rows kept for review, of one md import or of all, by import and line."""
    r, i = market_bar_rejects.c, imports.c
    if import_id is not None:
        kind = conn.execute(select(i.kind).where(i.import_id == import_id)).scalar()
        if kind != IMPORT_KIND:
            raise NotFound("market data import", str(import_id))
    q = (
        select(r.id, r.import_id, i.file_name, r.line, r["values"].label("raw"), r.reasons)
        .join(imports, i.import_id == r.import_id)
        .order_by(r.import_id, r.line, r.id)
    )
    if import_id is not None:
        q = q.where(r.import_id == import_id)
    return [
        StoredReject(
            int(row.id),
            int(row.import_id),
            str(row.file_name),
            int(row.line),
            json.loads(row.raw),
            tuple(json.loads(row.reasons)),
        )
        for row in conn.execute(q)
    ]


# ---- import ---------------------------------------------------------------------------------


def read_file(path: str) -> tuple[str, list[RawRow]]:
    """(sha256, rows) of a bar file; BadInput for a missing, empty, non-UTF-8 or malformed
    file (nothing is written then)."""
    data = tabular.read_bytes(path)
    text = tabular.decode_utf8(path, data)
    return hashlib.sha256(data).hexdigest(), split_csv(path, text)


def import_bars(store: Store, ctx: Ctx, path: str) -> ImportResult:
    """Import a bar file: good rows stored, bad rows kept with their reasons, equal rows
    unchanged; aggregates of the touched buckets recomputed. One transaction, one audit event."""
    sha256, raw = read_file(path)
    with store.write() as conn:
        symbols = set(conn.execute(select(instruments.c.symbol)).scalars())
        parsed = parse_rows(raw, symbols)
        # the stored bars of the file's days (for equality, conflicts, jumps and, with the
        # accepted bars, the touched aggregates) and the last stored bar before each symbol's
        # first time (for the jump rule)
        keys = [p.key for p in parsed if p.key is not None]
        in_days = _bars_in_spans(conn, day_spans(keys))
        before = _latest_bars(conn, {s: lo for s, (lo, _) in time_ranges(parsed).items()})
        checked = check_bars(
            parsed,
            stored=[*before.values(), *in_days],
            max_jump_pct=max_jump_pct(conn),
            now=ctx.now,
        )

        import_id = int(
            conn.execute(
                imports.insert()
                .values(
                    kind=IMPORT_KIND,
                    file_name=path,
                    sha256=sha256,
                    rows=checked.rows,
                    accepted=len(checked.accepted),
                    rejected=len(checked.rejected),
                    skipped=len(checked.unchanged),
                    at=ctx.now,
                    actor=ctx.actor,
                )
                .returning(imports.c.import_id)
            ).scalar_one()
        )
        bulk_insert(
            conn,
            market_bars,
            ("symbol", "time", "open", "high", "low", "close", "volume", "import_id"),
            (
                (
                    b.symbol,
                    utc_iso(b.time),
                    dec_str(b.open),
                    dec_str(b.high),
                    dec_str(b.low),
                    dec_str(b.close),
                    dec_str(b.volume),
                    import_id,
                )
                for b in checked.accepted
            ),
        )
        bulk_insert(
            conn,
            market_bar_rejects,
            ("import_id", "line", "values", "reasons"),
            (
                (
                    import_id,
                    rej.line,
                    json.dumps(dict(rej.values), ensure_ascii=False),
                    json.dumps(list(rej.reasons), ensure_ascii=False),
                )
                for rej in checked.rejected
            ),
        )
        refresh_aggregates(conn, checked.accepted, [*in_days, *checked.accepted])
        result = ImportResult(
            path,
            sha256,
            checked.rows,
            len(checked.accepted),
            len(checked.rejected),
            len(checked.unchanged),
            import_id,
            checked.rejected,
        )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="md.import",
            entity_type="import",
            entity_id=str(import_id),
            payload={**result.as_json(), "symbols": sorted({b.symbol for b in checked.accepted})},
        )
    return result


def refresh_aggregates(
    conn: Connection, new_bars: Sequence[Bar], day_bars: Iterable[Bar] | None = None
) -> int:
    """Recompute the hourly and daily buckets that new bars fall in from the stored bars of
    their days, and replace them (inside the caller's transaction, after the new bars are
    stored). `day_bars` are those stored bars when the caller has read them under the same
    lock already (with the new bars); else they are read from market_bars. Returns the number
    of buckets written."""
    if not new_bars:
        return 0
    stored = (
        list(day_bars)
        if day_bars is not None
        else _bars_in_spans(conn, day_spans(b.key for b in new_bars))
    )
    a = bar_aggregates.c
    written = 0
    for interval in Interval:
        touched, aggs = refreshed(new_bars, stored, interval)
        by_symbol: dict[str, list[datetime]] = {}
        for sym, bucket in sorted(touched):
            by_symbol.setdefault(sym, []).append(bucket)
        conds = [
            and_(a.symbol == sym, a.bucket.in_(list(part)))
            for sym, buckets in by_symbol.items()
            for part in _chunks(buckets, _IN_CHUNK)
        ]
        for part in _chunks(conds, _CHUNK):
            conn.execute(delete(bar_aggregates).where(a.interval == interval.value, or_(*part)))
        bulk_insert(
            conn,
            bar_aggregates,
            ("interval", "symbol", "bucket", "open", "high", "low", "close", "volume", "bars"),
            (
                (
                    g.interval.value,
                    g.symbol,
                    utc_iso(g.bucket),
                    dec_str(g.open),
                    dec_str(g.high),
                    dec_str(g.low),
                    dec_str(g.close),
                    dec_str(g.volume),
                    g.bars,
                )
                for g in aggs
            ),
        )
        written += len(aggs)
    return written


__all__ = [
    "ImportResult",
    "NoMarketData",
    "StoredReject",
    "import_bars",
    "last_bar",
    "last_price",
    "last_prices",
    "list_aggregates",
    "list_bars",
    "list_rejects",
    "max_jump_pct",
    "refresh_aggregates",
    "set_max_jump_pct",
]
