"""The hash-chained audit trail.

Each event's hash is SHA-256 over its predecessor's hash and its own canonical content, so that
editing, removing or reordering any event breaks every hash after it. The hashing and the chain
check are pure; `append` and `verify_store` are the thin edge that reads and writes the table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Connection, String, cast, func, literal_column, select, type_coerce

from oms.schema import audit_events
from oms.values import dec_str, utc_iso

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
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot put {type(value).__name__} into an audit payload")


def canonical_json(payload: Mapping[str, Any]) -> str:
    """Deterministic JSON: sorted keys, no spaces, decimals as strings, UTC times with Z."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


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


def _head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(
        select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def head_hash(conn: Connection) -> str | None:
    seq, h = _head(conn)
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
    seq, prev = _head(conn)
    seq += 1
    at_text = utc_iso(at)
    body = canonical_json(payload)
    h = event_hash(prev, seq, at_text, actor, action, entity_type, entity_id, reason, body)
    conn.execute(
        audit_events.insert().values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            reason=reason,
            payload=body,
            prev_hash=prev,
            hash=h,
        )
    )
    return AuditEvent(seq, at_text, actor, action, entity_type, entity_id, reason, body, prev, h)


def _at_text(conn: Connection) -> Any:
    """The stored time as the canonical ISO text, computed by the database (no per-row parsing)."""
    if conn.dialect.name == "postgresql":
        return func.to_char(
            literal_column("audit_events.at AT TIME ZONE 'UTC'"),
            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"',
        )
    return type_coerce(audit_events.c.at, String)


def iter_rows(
    conn: Connection, *, since: datetime | None = None, until: datetime | None = None
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
    result = conn.execution_options(stream_results=True, yield_per=50_000).execute(q)
    for row in result:
        yield tuple(row)


def verify_store(conn: Connection) -> ChainCheck:
    return check_chain(iter_rows(conn))


def events(conn: Connection, **kw: Any) -> Iterator[AuditEvent]:
    for row in iter_rows(conn, **kw):
        yield AuditEvent(*row)
