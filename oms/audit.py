"""The hash-chained audit trail.

Each event's hash is SHA-256 over its predecessor's hash and its own canonical content, so that
editing, removing or reordering any event breaks every hash after it. The hashing and the chain
check are pure; `append` and `verify_store` are the thin edge that reads and writes the table.

Retention (oms.retention_book) may move the oldest events to an archive. It records the archive
boundary, the last archived event's seq and hash, in the `archives` table; the live chain is then
checked from that anchor (`chain_anchor`) instead of from GENESIS, and an event missing at the
start of the live chain without such a record is still a break. The archived segment itself is
checked offline against the same boundary (`tieout retention verify-archive`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Connection, String, cast, func, inspect, literal_column, select, type_coerce

from oms.interrupts import die_with
from oms.schema import audit_events
from oms.values import dec_str, utc_iso, utc_iso_fast

# an event's row, in the table's own column order (bulk writers and archives use it)
AUDIT_COLUMNS: tuple[str, ...] = tuple(audit_events.c.keys())

GENESIS = "0" * 64


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return dec_str(value)
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot put {type(value).__name__} into an audit payload")


def canonical_json(payload: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, decimals as strings, UTC times with Z,
    dataclasses as objects of their fields."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


# canonical_json's text, faster: one encoder built once, and its hook dispatching on the exact
# type (dataclass field names kept per class); anything else goes to _json_default itself.
# tests/unit/test_submission_fast_paths.py checks it gives canonical_json's text.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _dataclass_json(value: Any) -> dict[str, Any]:
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    return {name: getattr(value, name) for name in names}


def _fast_default(value: object) -> object:
    kind = type(value)
    if kind is Decimal:
        return dec_str(value)  # type: ignore[arg-type]
    if kind is datetime:
        return utc_iso_fast(value)  # type: ignore[arg-type]
    if kind is date:
        return value.isoformat()  # type: ignore[attr-defined]
    if kind in _FIELD_NAMES or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return _dataclass_json(value)
    return _json_default(value)


canonical_text = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_fast_default
).encode


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    at: str  # ISO 8601 UTC with Z and microseconds
    actor: str
    action: str
    entity_type: str
    entity_id: str
    reason: str | None
    payload: str  # canonical JSON text, hashed as stored
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "reason": self.reason,
            "payload": json.loads(self.payload),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


_CONTENT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def event_hash(
    prev_hash: str,
    seq: int,
    at: str,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    reason: str | None,
    payload: str,
) -> str:
    content = _CONTENT([seq, at, actor, action, entity_type, entity_id, reason, payload])
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    events: int
    head: str | None
    first_bad_seq: int | None
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "first_bad_seq": self.first_bad_seq,
        }


def check_chain(
    rows: Iterable[tuple[int, str, str, str, str, str, str | None, str, str, str]],
    *,
    anchor: tuple[int, str] | None = None,
) -> ChainCheck:
    """Recompute a chain from (seq, at, actor, action, entity_type, entity_id, reason, payload,
    prev_hash, hash) rows in seq order. `anchor` (seq before the first row, its hash) lets a
    chain start after an archived segment; without it the chain starts at seq 1 from GENESIS."""
    expected_seq, prev = (anchor[0] + 1, anchor[1]) if anchor else (1, GENESIS)
    count = 0
    sha = hashlib.sha256
    content = _CONTENT
    for seq, at, actor, action, etype, eid, reason, payload, prev_hash, h in rows:
        count += 1
        if seq != expected_seq:
            why = f"sequence gap: expected {expected_seq}, found {seq}"
            return ChainCheck(False, count, prev, min(seq, expected_seq), why)
        if prev_hash != prev:
            return ChainCheck(False, count, prev, seq, "prev_hash does not match its predecessor")
        body = content([seq, at, actor, action, etype, eid, reason, payload])
        if sha((prev + body).encode()).hexdigest() != h:
            return ChainCheck(False, count, prev, seq, "content does not match its hash")
        prev = h
        expected_seq += 1
    return ChainCheck(True, count, prev if count else None, None)


def chain_anchor(conn: Connection) -> tuple[int, str] | None:
    """Where the live chain starts: (seq, hash) of the last archived event, recorded by
    retention in `archives`; None when no event was ever archived (or the database predates the
    table), and the chain then starts at seq 1 from GENESIS."""
    from oms.retention_schema import archives

    if not inspect(conn).has_table(archives.name):
        return None
    a = archives.c
    row = conn.execute(
        select(a.audit_last_seq, a.audit_last_hash)
        .where(a.audit_last_seq.is_not(None))
        .order_by(a.audit_last_seq.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


_HEAD = select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)


def head(conn: Connection) -> tuple[int, str]:
    """(seq, hash) of the last event; for an empty trail the archive anchor, else
    (0, GENESIS)."""
    row = conn.execute(_HEAD).first()
    if row is None:
        return chain_anchor(conn) or (0, GENESIS)
    return int(row[0]), str(row[1])


def head_hash(conn: Connection) -> str | None:
    seq, h = head(conn)
    return h if seq else None


def append(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    payload: Mapping[str, Any],
    reason: str | None = None,
) -> AuditEvent:
    """Append one event inside the caller's write transaction (which holds the book lock)."""
    seq, prev = head(conn)
    seq += 1
    at_text = utc_iso(at)
    body = canonical_json(payload)
    h = event_hash(prev, seq, at_text, actor, action, entity_type, entity_id, reason, body)
    conn.execute(  # parameters, not .values(): one cached statement for every event
        audit_events.insert(),
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "reason": reason,
            "payload": body,
            "prev_hash": prev,
            "hash": h,
        },
    )
    return AuditEvent(seq, at_text, actor, action, entity_type, entity_id, reason, body, prev, h)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append (`chain`): what `append` takes, as a value."""

    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    payload: Mapping[str, Any]
    reason: str | None = None


def chain(start: tuple[int, str], items: Iterable[NewEvent]) -> list[AuditEvent]:
    """The events that continue a chain whose last event is `start` (seq, hash), numbered and
    hashed exactly as `append` would append them one by one. Pure: the caller stores them."""
    seq, prev = start
    out = []
    for item in items:
        seq += 1
        fields = (
            utc_iso_fast(item.at),
            item.actor,
            item.action,
            item.entity_type,
            item.entity_id,
            item.reason,
            canonical_text(item.payload),
        )
        h = event_hash(prev, seq, *fields)
        out.append(AuditEvent(seq, *fields, prev, h))
        prev = h
    return out


def _at_text(conn: Connection) -> Any:
    """The stored time as the canonical ISO text, computed by the database (no per-row parsing)."""
    if conn.dialect.name == "postgresql":
        return func.to_char(
            literal_column("audit_events.at AT TIME ZONE 'UTC'"),
            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"',
        )
    return type_coerce(audit_events.c.at, String)


def iter_rows(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    seqs: tuple[int, int] | None = None,
) -> Iterator[tuple[Any, ...]]:
    a = audit_events.c
    q = select(
        a.seq,
        _at_text(conn),
        a.actor,
        a.action,
        a.entity_type,
        a.entity_id,
        a.reason,
        cast(a.payload, String),
        a.prev_hash,
        a.hash,
    ).order_by(a.seq)
    if since is not None:
        q = q.where(a.at >= since)
    if until is not None:
        q = q.where(a.at < until)
    if seqs is not None:
        q = q.where(a.seq.between(*seqs))
    if conn.dialect.name == "postgresql":  # a server-side cursor, read in large batches
        # per statement: Connection.execution_options would change the caller's connection
        result = conn.execute(q, execution_options={"stream_results": True, "yield_per": 50_000})
        for partition in result.partitions():
            yield from partition
    else:  # SQLite's own cursor is lazy: read its rows as they are, no per-row work on top
        cursor: Any = conn.execute(q).cursor
        yield from cursor


def verify_store(conn: Connection) -> ChainCheck:
    return check_chain(iter_rows(conn), anchor=chain_anchor(conn))


@dataclass(frozen=True, slots=True)
class SegmentCheck:
    """A stretch of the chain checked on its own; its ends are linked by the caller."""

    first_seq: int
    first_prev_hash: str | None
    check: ChainCheck


def check_segment(conn: Connection, first: int, last: int) -> SegmentCheck:
    """Check events first..last, anchored on the prev_hash the first one carries (the link
    to the segment before is checked by `join_segments`). Segment 1 starts from GENESIS."""
    rows = iter_rows(conn, seqs=(first, last))
    head_row = next(rows, None)
    if head_row is None:
        return SegmentCheck(first, None, ChainCheck(False, 0, None, first, "events missing"))
    anchor = None if first == 1 else (first - 1, str(head_row[8]))
    check = check_chain(itertools.chain([head_row], rows), anchor=anchor)
    if check.ok and check.events != last - first + 1:
        check = ChainCheck(
            False,
            check.events,
            check.head,
            first + check.events,
            "events missing at the end of a segment",
        )
    return SegmentCheck(first, str(head_row[8]), check)


def join_segments(
    parts: Sequence[SegmentCheck], anchor: tuple[int, str] | None = None
) -> ChainCheck:
    """One verdict from consecutive segments: each must be intact and begin where the one
    before it ended (the first one where `anchor`, the archive boundary, ended). The first
    problem in sequence order is the one reported."""
    events, head = 0, (anchor[1] if anchor else None)
    for part in parts:
        if head is not None and part.first_prev_hash != head:
            return ChainCheck(
                False, events + 1, head, part.first_seq, "prev_hash does not match its predecessor"
            )
        if not part.check.ok:
            return ChainCheck(
                False,
                events + part.check.events,
                part.check.head,
                part.check.first_bad_seq,
                part.check.problem,
            )
        events += part.check.events
        head = part.check.head
    return ChainCheck(True, events, head, None)


def seq_range(conn: Connection) -> tuple[int, int]:
    low, high = conn.execute(
        select(func.min(audit_events.c.seq), func.max(audit_events.c.seq))
    ).one()
    return int(low or 0), int(high or 0)


def events(conn: Connection, **kw: Any) -> Iterator[AuditEvent]:
    for row in iter_rows(conn, **kw):
        yield AuditEvent(*row)


def events_of_days(conn: Connection, since: datetime, until: datetime) -> Iterator[AuditEvent]:
    """The events of a time range, for an export: every event from the first whose time is in
    it to the last (by seq), so the chain the export carries has no gap. An event's time is
    its writer's clock, which may lag another writer's: one that falls just outside the range
    between two inside it is exported too (a neighbouring range's export may hold it again)."""
    a = audit_events.c
    low, high = conn.execute(
        select(func.min(a.seq), func.max(a.seq)).where(a.at >= since, a.at < until)
    ).one()
    if low is None:
        return
    yield from events(conn, seqs=(int(low), int(high)))


PARALLEL_THRESHOLD = 200_000  # below this, one process is faster than starting others


def _segment_worker(url: str, first: int, last: int) -> SegmentCheck:
    from oms.store import Store

    store = Store.open(url, check_schema=False)
    try:
        with store.read() as conn:
            return check_segment(conn, first, last)
    finally:
        store.dispose()


_RECHECKS = 3  # how many times a parallel check starts again after retention moved the anchor


def verify_url(url: str, workers: int | None = None) -> ChainCheck:
    """Verify the whole chain of the database at `url`, on several cores when it is long: the
    chain is cut into consecutive segments, each checked in its own process (its own snapshot),
    and the links between them checked here. Events appended meanwhile (higher seqs) are left
    for next time. A retention run that archives the chain's head meanwhile removes events a
    segment was to check and moves the anchor: a check that failed while the anchor moved is
    made again from the new anchor, so that an intact book is never reported broken."""
    found: ChainCheck | None = None
    for _ in range(_RECHECKS):
        # (the book is closed while the segments' processes are forked: they open their own)
        with _snapshot(url) as conn:
            low, high = seq_range(conn)
            anchor = chain_anchor(conn)
            if high - low < PARALLEL_THRESHOLD or (workers or os.cpu_count() or 1) < 2:
                return check_chain(
                    iter_rows(conn, seqs=(1, high)) if high else iter([]), anchor=anchor
                )
        found = _verify_segments(url, workers, low, high, anchor)
        if found.ok:
            return found
        with _snapshot(url) as conn:
            if chain_anchor(conn) == anchor:  # nothing archived meanwhile: as found
                return found
    assert found is not None
    return found


@contextmanager
def _snapshot(url: str) -> Iterator[Connection]:
    """A read of the book at `url`, its connections closed after it."""
    from oms.store import Store

    store = Store.open(url, check_schema=False)
    try:
        with store.read() as conn:
            yield conn
    finally:
        store.dispose()


def _verify_segments(
    url: str, workers: int | None, low: int, high: int, anchor: tuple[int, str] | None
) -> ChainCheck:
    start = anchor[0] + 1 if anchor else 1
    if low != start:
        return ChainCheck(False, 0, None, min(low, start), f"the chain does not start at {start}")
    n = max(2, workers or os.cpu_count() or 2)
    bounds = [start + ((high - start + 1) * i) // n for i in range(n)] + [high + 1]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=n, mp_context=ctx, initializer=die_with, initargs=(os.getpid(),)
    ) as pool:
        parts = list(pool.map(_segment_worker, [url] * n, bounds[:-1], [b - 1 for b in bounds[1:]]))
    return join_segments(parts, anchor)
