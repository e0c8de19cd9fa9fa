"""Market data rules: OHLCV bar files, bad-tick checks and hourly/daily aggregation.

Pure: no I/O, no clock, no database. The edge (oms.md_book) reads the file's text and the stored
bars, this module decides which rows are accepted, unchanged or rejected (with every reason),
and computes aggregate bars from plain Bar values.

Rules for one row of `time,symbol,open,high,low,close,volume` (time = bar start):
- time is ISO 8601 with a zone (naive times are rejected); prices are plain decimals > 0,
  volume >= 0; the symbol is a known instrument; low <= high; open and close within [low, high];
- a (symbol, time) seen earlier in the same file is a duplicate;
- a row whose (symbol, time) is stored already is `unchanged` when its values are equal, and a
  conflict otherwise (stored bars are never edited by an import);
- a jump: |close - previous close| / previous close beyond the limit (percent), where the
  previous close is the last accepted bar of the symbol before the row's time, from the file or
  the store. Rejected rows never become the previous close.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from oms.errors import BadInput
from oms.tabular import check_header
from oms.values import FRAC_DIGITS, INT_DIGITS, dec_str, exact_sum, is_decimal_text, utc_iso

COLUMNS = ("time", "symbol", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")
EXTRA_KEY = "_extra"  # raw values beyond the header's columns, kept with a reject
HEADER_LINE = 1

MAX_JUMP_SETTING = "md.max_jump_pct"
DEFAULT_MAX_JUMP_PCT = Decimal(25)

_PCT_SHOWN = Decimal("0.01")


class Interval(StrEnum):
    """Aggregate bar intervals: UTC buckets."""

    HOUR = "1h"
    DAY = "1d"

    @property
    def length(self) -> timedelta:
        return timedelta(hours=1) if self is Interval.HOUR else timedelta(days=1)


# ---- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; `time` is the bar's start, timezone-aware UTC."""

    symbol: str
    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def key(self) -> tuple[str, datetime]:
        return self.symbol, self.time

    def same_values(self, other: Bar) -> bool:
        """Equal as numbers (190.25 == 190.250)."""
        return all(getattr(self, c) == getattr(other, c) for c in VALUE_COLUMNS)

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "time": utc_iso(self.time),
            "open": dec_str(self.open),
            "high": dec_str(self.high),
            "low": dec_str(self.low),
            "close": dec_str(self.close),
            "volume": dec_str(self.volume),
        }


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A bar of bars: open of the first, close of the last, high max, low min, volume sum."""

    interval: Interval
    symbol: str
    bucket: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    bars: int

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "interval": self.interval.value,
            "time": utc_iso(self.bucket),
            "open": dec_str(self.open),
            "high": dec_str(self.high),
            "low": dec_str(self.low),
            "close": dec_str(self.close),
            "volume": dec_str(self.volume),
            "bars": self.bars,
        }


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row of a bar file as written: stripped text, empty cells None."""

    line: int  # physical line of the row's start, header = line 1
    values: Mapping[str, Any]  # column -> str | None; EXTRA_KEY -> list of surplus cells
    problem: str | None = None  # a row-shape problem (wrong number of fields)


@dataclass(frozen=True, slots=True)
class Reject:
    """A row kept for review with every reason it was rejected."""

    line: int
    values: Mapping[str, Any]
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "values": dict(self.values), "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """A row after the checks that need only the row itself (and the instrument list)."""

    raw: RawRow
    symbol: str | None  # None if missing or not a known instrument
    time: datetime | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal | None
    reasons: tuple[str, ...]

    @property
    def line(self) -> int:
        return self.raw.line

    @property
    def key(self) -> tuple[str, datetime] | None:
        if self.symbol is None or self.time is None:
            return None
        return self.symbol, self.time

    @property
    def bar(self) -> Bar | None:
        if (
            self.symbol is None
            or self.time is None
            or self.open is None
            or self.high is None
            or self.low is None
            or self.close is None
            or self.volume is None
        ):
            return None
        return Bar(self.symbol, self.time, self.open, self.high, self.low, self.close, self.volume)


@dataclass(frozen=True, slots=True)
class Checked:
    """The verdict on a whole file: every row is exactly one of accepted, rejected, unchanged."""

    accepted: tuple[Bar, ...]  # ordered by symbol, time
    rejected: tuple[Reject, ...]  # ordered by line
    unchanged: tuple[int, ...] = field(default=())  # lines equal to a stored bar

    @property
    def rows(self) -> int:
        return len(self.accepted) + len(self.rejected) + len(self.unchanged)


# ---- reading the file's text ----------------------------------------------------------------


def split_csv(path: str, text: str) -> list[RawRow]:
    """Split a bar file's text into rows. A problem with the file as a whole (empty, not CSV,
    missing or unknown columns, no rows) raises BadInput; a row with the wrong number of
    fields is kept as a row with a problem. Blank lines are skipped; line numbers are physical
    lines (a quoted cell may span lines), the header is line 1."""
    if not text.strip():
        raise BadInput(path, "the file is empty")
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    rows: list[RawRow] = []
    consumed = 0
    try:
        for record in reader:
            start, consumed = consumed + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = _check_header(path, record)
                continue
            cells = [c.strip() for c in record]
            values: dict[str, Any] = {
                name: (cells[i] or None) if i < len(cells) else None
                for i, name in enumerate(header)
            }
            problem = None
            if len(cells) != len(header):
                problem = f"the row has {len(cells)} fields, the header has {len(header)}"
                if len(cells) > len(header):
                    values[EXTRA_KEY] = cells[len(header) :]
            rows.append(RawRow(start, values, problem))
    except csv.Error as exc:
        raise BadInput(path, f"not a readable CSV file: {exc}", f"line {consumed + 1}") from None
    if header is None:
        raise BadInput(path, "the file is empty")
    if not rows:
        raise BadInput(path, "the file has a header but no rows")
    return rows


def _check_header(path: str, record: Sequence[str]) -> list[str]:
    return check_header(path, [c.strip().lower() for c in record], COLUMNS)


# ---- checks of one row ----------------------------------------------------------------------


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)  # a bar before this is a wrong date


def parse_time(text: str | None) -> tuple[datetime | None, str | None]:
    """(UTC time, None) or (None, reason)."""
    if text is None:
        return None, "time: missing"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None, f"time {text!r} is not an ISO 8601 time (2026-01-05T14:30:00Z)"
    if value.tzinfo is None:
        return None, (
            f"time {text!r} has no time zone; write Z or an offset (2026-01-05T14:30:00Z, +01:00)"
        )
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first time there is
        utc = None
    if utc is None or utc < EARLIEST:
        return None, f"time {text!r} is before {EARLIEST.year}: not market data of a book"
    return utc, None


def parse_number(
    name: str, text: str | None, *, positive: bool
) -> tuple[Decimal | None, str | None]:
    """(value, None) or (None, reason): a plain decimal, > 0 (prices) or >= 0 (volume)."""
    if text is None:
        return None, f"{name}: missing"
    if not is_decimal_text(text):
        return None, (
            f"{name} {text!r} is not a decimal number (digits with an optional point, "
            f"at most {INT_DIGITS} digits before and {FRAC_DIGITS} after it)"
        )
    value = Decimal(text)
    if positive and value <= 0:
        return None, f"{name} {text} must be greater than zero"
    if not positive and value < 0:
        return None, f"{name} {text} must not be negative"
    return value, None


def parse_row(row: RawRow, symbols: Collection[str]) -> ParsedRow:
    """Every check that needs only the row: formats, known symbol, OHLC consistency."""
    reasons: list[str] = [row.problem] if row.problem else []
    t, why = parse_time(row.values.get("time"))
    if why:
        reasons.append(why)
    raw_symbol = row.values.get("symbol")
    symbol: str | None = None
    if raw_symbol is None:
        reasons.append("symbol: missing")
    elif raw_symbol not in symbols:
        reasons.append(f"symbol {raw_symbol!r} is not a known instrument (tieout instrument add)")
    else:
        symbol = raw_symbol
    nums: dict[str, Decimal | None] = {}
    for name in VALUE_COLUMNS:
        nums[name], why = parse_number(name, row.values.get(name), positive=name != "volume")
        if why:
            reasons.append(why)
    o, h, lo, c = (nums[n] for n in PRICE_COLUMNS)
    if h is not None and lo is not None:
        if h < lo:
            reasons.append(f"high {dec_str(h)} is below low {dec_str(lo)}")
        else:
            for name, v in (("open", o), ("close", c)):
                if v is not None and not lo <= v <= h:
                    reasons.append(
                        f"{name} {dec_str(v)} is outside the bar's range "
                        f"[low {dec_str(lo)}, high {dec_str(h)}]"
                    )
    return ParsedRow(row, symbol, t, o, h, lo, c, nums["volume"], tuple(reasons))


def parse_rows(rows: Iterable[RawRow], symbols: Collection[str]) -> list[ParsedRow]:
    known = symbols if isinstance(symbols, set | frozenset) else set(symbols)
    return [parse_row(r, known) for r in rows]


def time_ranges(parsed: Iterable[ParsedRow]) -> dict[str, tuple[datetime, datetime]]:
    """Per symbol, the first and last time in the file: the stored bars that the cross-row
    checks need are those in this range plus the last one before it."""
    out: dict[str, tuple[datetime, datetime]] = {}
    for p in parsed:
        key = p.key
        if key is None:
            continue
        sym, t = key
        lo_hi = out.get(sym)
        out[sym] = (t, t) if lo_hi is None else (min(lo_hi[0], t), max(lo_hi[1], t))
    return out


# ---- checks across rows ---------------------------------------------------------------------


def jump_pct(previous: Decimal, close: Decimal) -> Decimal:
    """|close - previous| / previous, in percent (previous > 0)."""
    return abs(close - previous) * 100 / previous


def _moves(
    row: ParsedRow, names: Sequence[str], base: Decimal, limit: Decimal, verb: str
) -> list[str]:
    """Those of the row's `names` more than `limit` percent away from `base` (> 0), each said
    with its move ("open 0.01 jumps 99.99%"); compared without division."""
    out = []
    for name in names:
        value: Decimal | None = getattr(row, name)
        if value is None or abs(value - base) * 100 <= limit * base:
            continue
        out.append(
            f"{name} {dec_str(value)} {verb} {dec_str(jump_pct(base, value).quantize(_PCT_SHOWN))}%"
        )
    return out


def _jump_reason(prev: Bar, row: ParsedRow, limit: Decimal) -> str | None:
    """Why a row's prices jump too far from the previous close: each of open, high, low and
    close (the paper venue fills at the open, the high or the low of a bar that crosses an
    order: a bad tick in any of them, with a normal close, filled orders at 1,000 times the
    price)."""
    jumps = _moves(row, ("open", "high", "low", "close"), prev.close, limit, "jumps")
    if not jumps:
        return None
    return (
        f"{', '.join(jumps)} from the previous close {dec_str(prev.close)} "
        f"({utc_iso(prev.time)}), beyond the {dec_str(limit)}% limit (setting {MAX_JUMP_SETTING})"
    )


def _spread_reason(row: ParsedRow, limit: Decimal) -> str | None:
    """A bar with no close before it (a symbol's first, or a late bar before every stored
    one): its open, high and low are held to the limit from its own close, so that a wild
    value in them cannot fill a resting order at it."""
    close = row.close
    jumps = [] if close is None else _moves(row, ("open", "high", "low"), close, limit, "is")
    if close is None or not jumps:
        return None
    return (
        f"{', '.join(jumps)} from the bar's close {dec_str(close)} (no close before it), "
        f"beyond the {dec_str(limit)}% limit (setting {MAX_JUMP_SETTING})"
    )


def _conflict_reason(row: ParsedRow, stored: Bar) -> str:
    diffs = []
    for name in VALUE_COLUMNS:
        new = getattr(row, name)
        old: Decimal = getattr(stored, name)
        if new != old:
            shown = "?" if new is None else dec_str(new)
            diffs.append(f"{name} {shown} (stored {dec_str(old)})")
    return (
        f"conflicts with the stored bar of {stored.symbol} at {utc_iso(stored.time)}: "
        f"{', '.join(diffs)}; stored bars are not changed by an import"
    )


# how far after now a bar may start: not at all. A vendor sends a bar once it has ended; one
# that starts later than now has a wrong date or time zone, and the paper venue would fill
# resting orders on it, and price market orders at its close, before its time came.
FUTURE_SKEW = timedelta(0)


def check_bars(
    parsed: Sequence[ParsedRow],
    *,
    stored: Iterable[Bar],
    max_jump_pct: Decimal,
    now: datetime | None = None,
) -> Checked:
    """Decide every row. `stored` holds the stored bars of the file's symbols within
    `time_ranges(parsed)` and, per symbol, the last stored bar before that range. With `now`,
    a bar that starts after it (FUTURE_SKEW) is refused: market data from the future is bad
    data (a wrong date, or local time written as UTC), and the paper venue would fill resting
    orders on it at a time that has not come."""
    reasons: dict[int, list[str]] = {i: list(p.reasons) for i, p in enumerate(parsed)}
    if now is not None:
        for i, p in enumerate(parsed):
            if p.key is not None and p.key[1] > now + FUTURE_SKEW:
                reasons[i].append(
                    f"time {utc_iso(p.key[1])} is after now ({utc_iso(now)}): a bar is sent "
                    "once it has ended"
                )
    stored_at: dict[tuple[str, datetime], Bar] = {b.key: b for b in stored}
    unchanged: set[int] = set()

    # duplicates within the file; equality with or conflict against a stored bar
    first_line: dict[tuple[str, datetime], int] = {}
    duplicates: set[int] = set()
    for i, p in enumerate(parsed):
        key = p.key
        if key is None:
            continue
        if key in first_line:
            reasons[i].append(f"duplicate of line {first_line[key]} (same symbol and time)")
            duplicates.add(i)
            continue
        first_line[key] = p.line
        old = stored_at.get(key)
        if old is None:
            continue
        bar = p.bar
        if bar is not None and bar.same_values(old) and not reasons[i]:
            unchanged.add(i)
        else:
            reasons[i].append(_conflict_reason(p, old))

    # the jump rule, in time order per symbol, over stored bars and the file's rows
    timeline: dict[str, list[tuple[datetime, int, int]]] = defaultdict(list)
    for b in stored_at.values():
        timeline[b.symbol].append((b.time, 0, -1))  # a stored bar comes before a row at its time
    for i, p in enumerate(parsed):
        key = p.key
        if key is not None and i not in unchanged and i not in duplicates:
            timeline[key[0]].append((key[1], 1, i))
    accepted: list[Bar] = []
    for sym in sorted(timeline):
        prev: Bar | None = None
        for t, kind, i in sorted(timeline[sym], key=lambda e: (e[0], e[1], e[2])):
            if kind == 0:
                prev = stored_at[(sym, t)]
                continue
            p = parsed[i]
            if (sym, t) in stored_at:
                continue  # a conflict, reasoned above
            if prev is not None:
                why = _jump_reason(prev, p, max_jump_pct)
            else:  # (a row refused already is not held to it: its values may be anything)
                why = None if reasons[i] else _spread_reason(p, max_jump_pct)
            if why:
                reasons[i].append(why)
            bar = p.bar
            if bar is not None and not reasons[i]:
                accepted.append(bar)
                prev = bar

    rejected = tuple(
        Reject(p.line, p.raw.values, tuple(reasons[i])) for i, p in enumerate(parsed) if reasons[i]
    )
    return Checked(tuple(accepted), rejected, tuple(sorted(parsed[i].line for i in unchanged)))


def parse_max_jump_pct(text: str | None) -> Decimal:
    """The jump limit from its setting's text (None: the default)."""
    if text is None:
        return DEFAULT_MAX_JUMP_PCT
    if not is_decimal_text(text) or Decimal(text) <= 0:
        raise BadInput(
            f"setting {MAX_JUMP_SETTING}",
            f"{text!r} must be a percentage greater than zero, such as 25",
        )
    return Decimal(text.strip())


# ---- aggregation ----------------------------------------------------------------------------


def bucket_of(t: datetime, interval: Interval) -> datetime:
    """The start of the UTC bucket holding t."""
    t = t.astimezone(UTC)
    if interval is Interval.HOUR:
        return t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _bucketed(
    keys: Iterable[tuple[str, datetime]], interval: Interval
) -> Iterator[tuple[str, datetime]]:
    """(symbol, bucket) of each key, in (symbol, time) order: a bucket is computed only when a
    key leaves the current one."""
    length = interval.length
    sym: str | None = None
    bucket = end = datetime.min.replace(tzinfo=UTC)
    for s, t in sorted(keys):
        if s != sym or not bucket <= t < end:
            sym, bucket = s, bucket_of(t, interval)
            end = bucket + length
        yield s, bucket


def touched_buckets(
    keys: Iterable[tuple[str, datetime]], interval: Interval
) -> set[tuple[str, datetime]]:
    """The (symbol, bucket) pairs that (symbol, time) keys fall in."""
    return set(_bucketed(keys, interval))


def day_spans(keys: Iterable[tuple[str, datetime]]) -> list[tuple[str, datetime, datetime]]:
    """Per symbol, the UTC days of (symbol, time) keys merged into [start, end) spans: the
    stored bars of these spans are all the bars of every hourly and daily bucket the keys
    fall in."""
    days: dict[str, set[datetime]] = defaultdict(set)
    for sym, day in touched_buckets(keys, Interval.DAY):
        days[sym].add(day)
    one = Interval.DAY.length
    spans: list[tuple[str, datetime, datetime]] = []
    for sym in sorted(days):
        ordered = sorted(days[sym])
        start = end = ordered[0]
        for d in ordered:
            if d != end:
                spans.append((sym, start, end))
                start = d
            end = d + one
        spans.append((sym, start, end))
    return spans


def aggregate(bars: Iterable[Bar], interval: Interval) -> list[Aggregate]:
    """Aggregate bars into UTC buckets, ordered by symbol and bucket."""
    ordered = sorted(bars, key=lambda b: (b.symbol, b.time))
    out: list[Aggregate] = []
    first = 0
    buckets = list(_bucketed((b.key for b in ordered), interval))
    for i in range(1, len(ordered) + 1):
        if i < len(ordered) and buckets[i] == buckets[first]:
            continue
        members = ordered[first:i]
        sym, bucket = buckets[first]
        out.append(
            Aggregate(
                interval=interval,
                symbol=sym,
                bucket=bucket,
                open=members[0].open,
                high=max(b.high for b in members),
                low=min(b.low for b in members),
                close=members[-1].close,
                volume=exact_sum(b.volume for b in members),
                bars=len(members),
            )
        )
        first = i
    return out


def refreshed(
    new_bars: Sequence[Bar], stored_in_spans: Iterable[Bar], interval: Interval
) -> tuple[set[tuple[str, datetime]], list[Aggregate]]:
    """The buckets an import touched and their aggregates, recomputed from the stored bars
    (which include the new ones) of the touched days."""
    touched = touched_buckets((b.key for b in new_bars), interval)
    aggs = [a for a in aggregate(stored_in_spans, interval) if (a.symbol, a.bucket) in touched]
    return touched, aggs


__all__ = [
    "COLUMNS",
    "DEFAULT_MAX_JUMP_PCT",
    "MAX_JUMP_SETTING",
    "Aggregate",
    "Bar",
    "Checked",
    "Interval",
    "ParsedRow",
    "RawRow",
    "Reject",
    "aggregate",
    "bucket_of",
    "check_bars",
    "day_spans",
    "jump_pct",
    "parse_max_jump_pct",
    "parse_row",
    "parse_rows",
    "refreshed",
    "split_csv",
    "time_ranges",
    "touched_buckets",
]
