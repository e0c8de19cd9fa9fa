"""Retention at the edge: settings, legal holds, and `apply`, the one path by which rows ever
leave the book's append-only tables.

`apply` is one write transaction (holding the book lock) that:
1. works out what has expired (oms.retention) from the rows as they are under the lock;
2. writes each table's expired rows to Parquet in a new folder under the archive directory, in
   storage form (decimals as their canonical text, times as ISO 8601 UTC, dates as YYYY-MM-DD),
   then `manifest.json` listing every file with its rows and SHA-256 (files and folder are
   fsynced); the archived audit events must verify as a chain from the current anchor first.
   The folder is written as `.archive-NNNNNN-TIME.partial-XXXX` and takes its name
   `archive-NNNNNN-TIME` just before the commit (Ctrl-C held from there to the commit): a run
   killed before it leaves a folder whose name says it is incomplete, not one that looks like
   an archive;
3. posts the ledger's carry-forward entries, appends the `retention.apply` audit event (with the
   manifest's SHA-256) and the `archives` row that anchors the live audit chain;
4. lifts the append-only protection of exactly the tables it deletes from, deletes the planned
   rows (checking the counts), and restores the protection, all inside the same transaction.
If anything fails, the transaction rolls back (the database is as before) and the new folder is
removed. Nothing younger than its class's cut-off and nothing covered by an active legal hold is
planned, so nothing of that kind is deleted.

Lifting the protection (`_unprotected`), the only code in tieout that does it:
- SQLite: the BEFORE DELETE trigger of each table is dropped and re-created from its stored SQL
  inside the BEGIN IMMEDIATE transaction: SQLite's DDL is transactional, so no other connection
  ever sees a table without it (and on a rollback it is simply still there).
- PostgreSQL: `ALTER TABLE ... DISABLE TRIGGER <table>_append_only`, the delete, then `ENABLE
  TRIGGER`, in the one transaction: the ALTER takes an ACCESS EXCLUSIVE lock on the table, so
  nobody else uses it until commit, when the trigger is enabled again. It needs the table's
  owner (the role that ran `tieout init`), not a superuser: the application role that `tieout db
  grants` creates can neither delete from these tables nor alter them, so it cannot run
  retention. (`SET session_replication_role = replica` was not used: it needs a superuser and
  silences every trigger, foreign keys included.)
Both check, before and after, that the protection is in place; a missing trigger is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shutil
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Boolean, Connection, Date, Integer, Table, delete, func, select, tuple_

from oms import audit, executions, ledger
from oms import retention as rt
from oms.book import Ctx, get_account, get_setting, post_entries, put_setting
from oms.errors import (
    BadInput,
    NotFound,
    OutputFailed,
    Refused,
    TieoutError,
    VerificationFailed,
)
from oms.interrupts import interrupts_held
from oms.orders import TERMINAL
from oms.retention_schema import (
    archives,
    legal_hold_releases,
    legal_holds,
    position_carry_forward,
)
from oms.schema import (
    audit_events,
    journal_entries,
    journal_postings,
    metadata,
    order_client_ids,
    order_events,
    order_state_parts,
    orders,
    refused_reports,
    running_sums,
    settings,
)
from oms.schema import executions as executions_table
from oms.store import Store, fsync_path, next_id, schema_revisions
from oms.values import dec_str, utc_iso

_CHUNK = 500
PG_LOCK_TIMEOUT = "30s"
_AUDIT_CHUNK = 50_000

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        journal_postings,
        journal_entries,
        order_client_ids,
        order_events,
        refused_reports,
        order_state_parts,
        orders,
        executions_table,
        audit_events,
    )
}
# children before parents
DELETE_ORDER = (
    "journal_postings",
    "journal_entries",
    "order_client_ids",
    "order_events",
    "refused_reports",
    "order_state_parts",
    "orders",
    "executions",
    "audit_events",
)
# the tables of DELETE_ORDER that carry the append-only triggers (migrations.triggers)
PROTECTED = frozenset(
    {"journal_postings", "journal_entries", "order_events", "executions", "audit_events"}
)


# ---- settings -----------------------------------------------------------------------------------


def all_specs(specs: Sequence[rt.ClassSpec] = ()) -> tuple[rt.ClassSpec, ...]:
    """oms's own declared classes (surveillance) and those the caller passes in (the upper
    layers' ones, from the composition root), each once."""
    out: dict[str, rt.ClassSpec] = {rt.SURVEILLANCE.name: rt.SURVEILLANCE}
    for spec in specs:
        if spec.name in rt.CLASSES:
            raise ValueError(f"retention class {spec.name} is one of oms's own")
        out.setdefault(spec.name, spec)
    return tuple(out.values())


def load_periods(conn: Connection, specs: Sequence[rt.ClassSpec] = ()) -> dict[str, rt.Period]:
    rows = conn.execute(
        select(settings.c.key, settings.c.value).where(settings.c.key.startswith(rt.SETTING_PREFIX))
    )
    stored = {str(k).removeprefix(rt.SETTING_PREFIX): str(v) for k, v in rows}
    return rt.periods_from(stored, all_specs(specs))


def archive_dir(conn: Connection) -> str:
    return get_setting(conn, rt.SETTING_PREFIX + rt.ARCHIVE_DIR_KEY) or rt.DEFAULT_ARCHIVE_DIR


def set_setting(
    store: Store, ctx: Ctx, key: str, value: str, specs: Sequence[rt.ClassSpec] = ()
) -> dict[str, Any]:
    """Change a class's period (`orders 7y`) or the archive directory (`archive-dir PATH`),
    audited. Returns {"key","value","previous"}."""
    name = key.strip().lower()
    if name == rt.ARCHIVE_DIR_KEY:
        shown = value.strip()
        if not shown:
            raise BadInput("VALUE", "the archive directory is empty")
    else:
        name = rt.parse_class(name, "KEY", all_specs(specs))
        shown = rt.parse_period(value, "VALUE").show()
    with store.write() as conn:
        full = rt.SETTING_PREFIX + name
        previous = get_setting(conn, full)
        if previous != shown:
            put_setting(conn, ctx, full, shown)
    return {"key": full, "value": shown, "previous": previous}


# ---- legal holds --------------------------------------------------------------------------------


def list_holds(conn: Connection, *, include_released: bool = False) -> list[rt.Hold]:
    h, r = legal_holds.c, legal_hold_releases.c
    q = (
        select(
            h.hold_id,
            h.matter,
            h.account,
            h.record_class,
            h.reason,
            h.placed_at,
            h.placed_by,
            r.released_at,
            r.released_by,
            r.reason.label("release_reason"),
        )
        .join_from(legal_holds, legal_hold_releases, r.hold_id == h.hold_id, isouter=True)
        .order_by(h.hold_id)
    )
    if not include_released:
        q = q.where(r.hold_id.is_(None))
    return [
        rt.Hold(
            hold_id=int(row.hold_id),
            matter=row.matter,
            account=row.account,
            record_class=row.record_class,
            reason=row.reason,
            placed_at=row.placed_at,
            placed_by=row.placed_by,
            released_at=row.released_at,
            released_by=row.released_by,
            release_reason=row.release_reason,
        )
        for row in conn.execute(q)
    ]


def get_hold(conn: Connection, hold_id: int) -> rt.Hold:
    for hold in list_holds(conn, include_released=True):
        if hold.hold_id == hold_id:
            return hold
    raise NotFound("legal hold", str(hold_id))


def add_hold(
    store: Store,
    ctx: Ctx,
    *,
    matter: str,
    reason: str,
    account: str | None = None,
    record_class: str | None = None,
    specs: Sequence[rt.ClassSpec] = (),
) -> rt.Hold:
    """Place a legal hold (audited): nothing it covers is archived or removed until it is
    released. An account must exist; no account means every account."""
    if not matter.strip():
        raise BadInput("--matter", "a hold names the matter it serves")
    if not reason.strip():
        raise BadInput("--reason", "a hold gives its reason")
    cls = None if record_class is None else rt.parse_class(record_class, specs=all_specs(specs))
    with store.write() as conn:
        if account is not None:
            get_account(conn, account)
        hold_id = next_id(conn, legal_holds, "hold_id")
        conn.execute(
            legal_holds.insert().values(
                hold_id=hold_id,
                matter=matter.strip(),
                account=account,
                record_class=cls,
                reason=reason.strip(),
                placed_at=ctx.now,
                placed_by=ctx.actor,
            )
        )
        hold = get_hold(conn, hold_id)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="retention.hold.add",
            entity_type="legal_hold",
            entity_id=str(hold_id),
            payload=hold.as_json(),
            reason=hold.reason,
        )
        return hold


def release_hold(store: Store, ctx: Ctx, hold_id: int, reason: str) -> rt.Hold:
    """Release a hold (audited); its record stays. Releasing it twice is refused."""
    if not reason.strip():
        raise BadInput("--reason", "a release gives its reason")
    with store.write() as conn:
        hold = get_hold(conn, hold_id)
        if not hold.active:
            raise Refused(
                f"release legal hold {hold_id}",
                f"it was released already ({utc_iso(hold.released_at)} by {hold.released_by})"
                if hold.released_at
                else "it was released already",
                "released",
            )
        conn.execute(
            legal_hold_releases.insert().values(
                hold_id=hold_id, reason=reason.strip(), released_at=ctx.now, released_by=ctx.actor
            )
        )
        released = get_hold(conn, hold_id)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="retention.hold.release",
            entity_type="legal_hold",
            entity_id=str(hold_id),
            payload=released.as_json(),
            reason=reason.strip(),
        )
        return released


# ---- archives -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    archive_id: int
    created_at: datetime
    actor: str
    location: str
    manifest_sha256: str
    cutoffs: dict[str, str]
    counts: dict[str, int]
    audit_first_seq: int | None
    audit_last_seq: int | None
    audit_last_hash: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "archive_id": self.archive_id,
            "created_at": utc_iso(self.created_at),
            "actor": self.actor,
            "location": self.location,
            "manifest_sha256": self.manifest_sha256,
            "cutoffs": self.cutoffs,
            "archived": self.counts,
            "audit": None
            if self.audit_last_seq is None
            else {
                "first_seq": self.audit_first_seq,
                "last_seq": self.audit_last_seq,
                "last_hash": self.audit_last_hash,
            },
        }


def list_archives(conn: Connection) -> list[ArchiveRecord]:
    a = archives.c
    out = []
    for row in conn.execute(select(archives).order_by(a.archive_id)):
        out.append(
            ArchiveRecord(
                int(row.archive_id),
                row.created_at,
                row.actor,
                row.location,
                row.manifest_sha256,
                json.loads(row.cutoffs),
                json.loads(row.counts),
                None if row.audit_first_seq is None else int(row.audit_first_seq),
                None if row.audit_last_seq is None else int(row.audit_last_seq),
                row.audit_last_hash,
            )
        )
    return out


# ---- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    now: datetime
    periods: dict[str, rt.Period]
    cutoffs: dict[str, datetime]
    holds: tuple[rt.Hold, ...]  # active
    selections: dict[str, rt.Selection]
    carry_forward: tuple[ledger.Entry, ...]
    closed: tuple[dict[str, Any], ...] = ()  # what the archived executions realized
    specs: tuple[rt.ClassSpec, ...] = ()  # the declared classes planned

    @property
    def classes(self) -> dict[str, tuple[str, ...]]:
        """Every class with its live tables (children first)."""
        return {
            **{c: rt.CLASS_TABLES[c] for c in rt.CLASSES},
            **{s.name: s.tables for s in self.specs},
        }

    @property
    def delete_order(self) -> tuple[str, ...]:
        return DELETE_ORDER + tuple(t for s in self.specs for t in s.tables)

    @property
    def protected(self) -> frozenset[str]:
        return PROTECTED.union(*(s.append_only for s in self.specs))

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for cls in self.classes:
            sel = self.selections.get(cls)
            if sel is not None:
                out.update(sel.rows)
        return out

    @property
    def held(self) -> dict[str, int]:
        return {c: s.held for c, s in self.selections.items()}

    @property
    def empty(self) -> bool:
        return all(s.empty for s in self.selections.values())

    def ids(self, table: str) -> Sequence[Any]:
        for sel in self.selections.values():
            if table in sel.ids:
                return sel.ids[table]
        return ()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _max(conn: Connection, column: Any) -> int | None:
    value = conn.execute(select(func.max(column))).scalar()
    return None if value is None else int(value)


def _plan_executions(
    conn: Connection, cutoff: datetime, holds: Sequence[rt.Hold], pins: rt.Pins = rt.Pins()
) -> tuple[rt.Selection, tuple[dict[str, Any], ...]]:
    e = executions_table.c
    day = cutoff.date()
    late = frozenset(
        int(i)
        for i in conn.execute(
            select(e.id).where(e.trade_date < day, e.booked_at >= cutoff)
        ).scalars()
    )
    newest = _max(conn, e.id)
    keep = set() if newest is None else {newest}
    for chunk in _chunks(sorted(pins.exec_ids)):  # named by open work of an upper layer
        found = conn.execute(select(e.id).where(e.exec_id.in_(chunk))).scalars()
        keep.update(int(i) for i in found)
    records = executions.records(conn)
    keep.update(r.seq for r in records if (r.account, r.symbol) in pins.positions)
    selection = rt.plan_executions(records, day, holds, late=late, keep=frozenset(keep))
    chosen = frozenset(selection.ids["executions"])
    return selection, rt.closed_positions([r for r in records if r.seq in chosen])


def _plan_ledger(
    conn: Connection,
    cutoff: datetime,
    holds: Sequence[rt.Hold],
    pinned: Collection[tuple[str, str]] = (),
) -> rt.LedgerPlan:
    e, p = journal_entries.c, journal_postings.c
    rows = conn.execute(
        select(
            e.entry_id,
            e.kind,
            e.account,
            e.currency,
            e.value_date,
            e.posted_at,
            p.posting_id,
            p.ledger_account,
            p.currency.label("posting_currency"),
            p.amount,
        )
        .join_from(journal_entries, journal_postings, p.entry_id == e.entry_id, isouter=True)
        .where(e.value_date < cutoff.date(), e.posted_at < cutoff)
        .order_by(e.entry_id, p.posting_id)
    )
    entries: list[rt.LedgerEntryRow] = []
    current: Any = None
    postings: list[tuple[int, ledger.Posting]] = []

    def flush() -> None:
        if current is not None:
            entries.append(
                rt.LedgerEntryRow(
                    int(current.entry_id),
                    current.kind,
                    current.account,
                    current.currency,
                    current.value_date,
                    current.posted_at,
                    tuple(postings),
                )
            )

    for row in rows:
        if current is None or row.entry_id != current.entry_id:
            flush()
            current, postings = row, []
        if row.posting_id is not None:
            postings.append(
                (
                    int(row.posting_id),
                    ledger.Posting(row.ledger_account, row.posting_currency, row.amount),
                )
            )
    flush()
    keep = frozenset(x.entry_id for x in entries if (x.account, x.currency) in pinned)
    return rt.plan_ledger(entries, cutoff, holds, keep=keep, newest=_max(conn, e.entry_id))


def _plan_orders(conn: Connection, cutoff: datetime, holds: Sequence[rt.Hold]) -> rt.Selection:
    o, c, ev, rr = orders.c, order_client_ids.c, order_events.c, refused_reports.c
    sp = order_state_parts.c
    final = sorted(s.value for s in TERMINAL)
    found = conn.execute(
        select(o.order_id, o.account, o.status, o.created_at, o.updated_at)
        .where(o.status.in_(final), o.updated_at < cutoff, o.created_at < cutoff)
        .order_by(o.order_id)
    ).all()
    ids = [r.order_id for r in found]
    client: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
    events: dict[str, list[tuple[int, datetime]]] = {i: [] for i in ids}
    refused: dict[str, list[tuple[str, datetime]]] = {i: [] for i in ids}
    parts: dict[str, list[tuple[str, int]]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        for acct, cid, oid in conn.execute(
            select(c.account, c.client_order_id, c.order_id).where(c.order_id.in_(chunk))
        ):
            client[oid].append((acct, cid))
        for event_id, oid, at in conn.execute(
            select(ev.event_id, ev.order_id, ev.at).where(ev.order_id.in_(chunk))
        ):
            events[oid].append((int(event_id), at))
        for oid, exec_id, at in conn.execute(
            select(rr.order_id, rr.exec_id, rr.refused_at).where(rr.order_id.in_(chunk))
        ):
            refused[oid].append((exec_id, at))
        for oid, part, seq in conn.execute(
            select(sp.order_id, sp.part, sp.seq).where(sp.order_id.in_(chunk))
        ):
            parts[oid].append((part, int(seq)))
    rows = [
        rt.OrderRow(
            r.order_id,
            r.account,
            r.status,
            r.created_at,
            r.updated_at,
            tuple(sorted(client[r.order_id])),
            tuple(sorted(events[r.order_id])),
            tuple(sorted(refused[r.order_id])),
            tuple(sorted(parts[r.order_id])),
        )
        for r in found
    ]
    newest = _max(conn, ev.event_id)
    keep = frozenset() if newest is None else frozenset({newest})
    # the highest order id by number (O99999999 < O100000000): the next order is it + 1
    last = conn.execute(
        select(o.order_id).order_by(func.length(o.order_id).desc(), o.order_id.desc()).limit(1)
    ).scalar()
    keep_orders = frozenset() if last is None else frozenset({last})
    return rt.plan_orders(rows, cutoff, holds, keep_events=keep, keep_orders=keep_orders)


def _plan_audit(conn: Connection, cutoff: datetime, holds: Sequence[rt.Hold]) -> rt.Selection:
    a = audit_events.c
    low, high = audit.seq_range(conn)
    if not high:
        return rt.Selection({"audit_events": range(0)})
    first_new = conn.execute(select(func.min(a.seq)).where(a.at >= cutoff)).scalar()
    end = high + 1 if first_new is None else int(first_new)
    if not any(h.active and h.record_class in (None, rt.AUDIT) for h in holds):
        last = end - 1 if end - 1 >= low else None
        held = 0
    else:
        rows = (
            rt.AuditRow(int(seq), at, entity_id, payload)
            for seq, at, entity_id, payload in conn.execute(
                select(a.seq, a.at, a.entity_id, a.payload).where(a.seq < end).order_by(a.seq)
            )
        )
        last, held = rt.plan_audit(rows, cutoff, holds)
    return rt.Selection({"audit_events": range(low, (last or low - 1) + 1)}, held)


def _table(name: str) -> Table:
    """A live table by name, from the book's metadata (the upper layers' tables are on it once
    their schema modules are imported, as the composition root does)."""
    found = TABLES.get(name)
    if found is None:
        found = metadata.tables.get(name)
    if found is None:
        raise RuntimeError(f"retention: no table {name} in the book's metadata")
    return found


def _bound(column: Any, cutoff: datetime) -> Any:
    return cutoff.date() if isinstance(column.type, Date) else cutoff


def _ids_where(table: Table, ids: Sequence[Any]) -> Any:
    pk = list(table.primary_key.columns)
    if len(pk) == 1:
        return pk[0].in_(list(ids))
    return tuple_(*pk).in_(list(ids))


def _row_id(table: Table, row: Any) -> Any:
    pk = list(table.primary_key.columns)
    values = tuple(row._mapping[c.name] for c in pk)
    return values[0] if len(values) == 1 else values


def _newest(conn: Connection, table: Table, column: str) -> Any:
    return conn.execute(select(func.max(table.c[column]))).scalar()


def _plan_group(
    conn: Connection,
    record_class: str,
    group: rt.GroupSpec,
    cutoff: datetime,
    holds: Sequence[rt.Hold],
    chosen: dict[str, Sequence[Any]],
) -> rt.Selection:
    """Read one group's candidates (final, its own times before the cut-off) with their
    children, mark those that must stay (the newest id, referenced by a row that stays), and
    let oms.retention.plan_group choose."""
    t = _table(group.table)
    key = t.c[group.key]
    where = [t.c[c] < _bound(t.c[c], cutoff) for c in group.times]
    if group.final is not None:
        where.append(t.c[group.final[0]].in_(list(group.final[1])))
    own = [
        key,
        *(t.c[c] for c in (*group.times, *group.accounts, *group.json_accounts, *group.raw_values)),
    ]
    found = conn.execute(select(*own).where(*where).order_by(key)).all()
    if not found:
        return rt.Selection(dict.fromkeys(group.tables, ()))
    candidates = [r[0] for r in found]
    pinned: set[Any] = set()
    if group.newest_kept:
        pinned.add(_newest(conn, t, group.key))
    for rtable_name, rcol in group.referenced_by:
        rtable = _table(rtable_name)
        leaving = set(chosen.get(rtable_name, ()))
        pk = list(rtable.primary_key.columns)
        for chunk in _chunks(candidates):
            for row in conn.execute(select(*pk, rtable.c[rcol]).where(rtable.c[rcol].in_(chunk))):
                if _row_id(rtable, row) not in leaving:
                    pinned.add(row._mapping[rcol])
    times: dict[Any, list[Any]] = {r[0]: list(r[1 : 1 + len(group.times)]) for r in found}
    accounts: dict[Any, set[str]] = {r[0]: set() for r in found}
    for r in found:
        m = r._mapping
        accounts[r[0]].update(str(m[c]) for c in group.accounts if m[c] is not None)
        for c in group.json_accounts:
            accounts[r[0]] |= rt.accounts_in_json(m[c])
        for c in group.raw_values:
            accounts[r[0]] |= rt.values_in_json(m[c])
    children: dict[Any, dict[str, list[Any]]] = {k: {} for k in candidates}
    for child in group.children:
        ct = _table(child.table)
        if child.newest_kept is not None:
            newest = _newest(conn, ct, child.newest_kept)
            if newest is not None:
                pinned.update(
                    conn.execute(
                        select(ct.c[child.parent]).where(ct.c[child.newest_kept] == newest)
                    ).scalars()
                )
        pk = list(ct.primary_key.columns)
        cols = [
            *pk,
            ct.c[child.parent],
            *(
                ct.c[c]
                for c in (*child.times, *child.accounts, *child.json_accounts, *child.raw_values)
            ),
        ]
        for chunk in _chunks(candidates):
            for row in conn.execute(select(*cols).where(ct.c[child.parent].in_(chunk))):
                m = row._mapping
                parent = m[child.parent]
                children[parent].setdefault(child.table, []).append(_row_id(ct, row))
                times[parent].extend(m[c] for c in child.times)
                accounts[parent].update(str(m[c]) for c in child.accounts if m[c] is not None)
                for c in child.json_accounts:
                    accounts[parent] |= rt.accounts_in_json(m[c])
                for c in child.raw_values:
                    accounts[parent] |= rt.values_in_json(m[c])
    rows = [
        rt.GroupRow(
            k,
            tuple(times[k]),
            frozenset(accounts[k]),
            {tb: tuple(v) for tb, v in children[k].items()},
            k in pinned,
        )
        for k in candidates
    ]
    return rt.plan_group(record_class, group, rows, cutoff, holds)


def _plan_spec(
    conn: Connection, spec: rt.ClassSpec, cutoff: datetime, holds: Sequence[rt.Hold]
) -> rt.Selection:
    ids: dict[str, Sequence[Any]] = {}
    held = 0
    for group in spec.groups:
        sel = _plan_group(conn, spec.name, group, cutoff, holds, ids)
        ids.update(sel.ids)
        held += sel.held
    return rt.Selection(ids, held)


def make_plan(conn: Connection, now: datetime, specs: Sequence[rt.ClassSpec] = ()) -> Plan:
    """What `apply` would archive and remove now (read inside the caller's transaction).
    `specs`: the upper layers' retention classes (oms's own surveillance class is always in)."""
    declared = all_specs(specs)
    periods = load_periods(conn, declared)
    cut = rt.cutoffs(periods, now)
    holds = tuple(list_holds(conn))
    pins = rt.Pins()
    for spec in declared:
        if spec.pins is not None:
            pins |= spec.pins(conn)
    ledger_plan = _plan_ledger(conn, cut[rt.LEDGER], holds, pins.cash)
    execs, closed = _plan_executions(conn, cut[rt.EXECUTIONS], holds, pins)
    selections = {
        rt.ORDERS: _plan_orders(conn, cut[rt.ORDERS], holds),
        rt.EXECUTIONS: execs,
        rt.LEDGER: ledger_plan.selection,
        rt.AUDIT: _plan_audit(conn, cut[rt.AUDIT], holds),
    }
    for spec in declared:
        selections[spec.name] = _plan_spec(conn, spec, cut[spec.name], holds)
    return Plan(now, periods, cut, holds, selections, ledger_plan.carry_forward, closed, declared)


# ---- writing the archive ------------------------------------------------------------------------


def _where(table: Table, chunk: Sequence[Any]) -> Any:
    c = table.c
    if table.name == "audit_events":
        return c.seq.between(chunk[0], chunk[-1])  # a range of seqs
    if table.name == "order_client_ids":
        return tuple_(c.account, c.client_order_id).in_(list(chunk))
    return _ids_where(table, chunk)


def _batches(table: Table, ids: Sequence[Any]) -> Iterator[Sequence[Any]]:
    return _chunks(ids, _AUDIT_CHUNK if table.name == "audit_events" else _CHUNK)


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return dec_str(value)
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _dtype(column: Any) -> Any:
    if isinstance(column.type, Boolean):
        return pl.Boolean
    if isinstance(column.type, Integer):
        return pl.Int64
    return pl.String


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_table(
    conn: Connection, folder: Path, table: Table, ids: Sequence[Any]
) -> rt.ArchiveFile:
    names = [c.name for c in table.columns]
    data: dict[str, list[Any]] = {n: [] for n in names}
    pk = list(table.primary_key.columns)
    for chunk in _batches(table, ids):
        for row in conn.execute(select(table).where(_where(table, chunk)).order_by(*pk)):
            for n, v in zip(names, row, strict=True):
                data[n].append(_cell(v))
    frame = pl.DataFrame(data, schema={c.name: _dtype(c) for c in table.columns}, strict=False)
    if frame.height != len(ids):
        raise TieoutError(
            f"retention: {table.name} gave {frame.height} rows for {len(ids)} planned; "
            "nothing was archived"
        )
    path = folder / f"{table.name}.parquet"
    try:
        frame.write_parquet(path, compression="zstd", statistics=True)
        fsync_path(path)
    except (OSError, pl.exceptions.ComputeError) as e:  # a full or failing archive disk
        text = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        reason = text.rsplit("IO error: ", 1)[-1]  # (polars: "... underlying IO error: ...")
        raise OutputFailed(
            str(folder.parent),
            f"{table.name}'s archive file: {reason}",
            "nothing was archived or removed from the book",
        ) from None
    return rt.ArchiveFile(
        table.name, path.name, frame.height, _sha256(path), path.stat().st_size, tuple(names)
    )


def _audit_segment(conn: Connection, seqs: Sequence[int]) -> rt.AuditSegment | None:
    """The archived stretch of the chain, checked from the current anchor: a broken chain is
    never archived (it would take the evidence with it)."""
    if not seqs:
        return None
    first, last = seqs[0], seqs[-1]
    anchor = audit.chain_anchor(conn)
    check = audit.check_chain(audit.iter_rows(conn, seqs=(first, last)), anchor=anchor)
    if not check.ok or check.events != last - first + 1 or check.head is None:
        raise VerificationFailed(
            f"retention refused: the audit chain is broken at event {check.first_bad_seq} "
            f"({check.problem or 'events missing'}); run `tieout audit verify`"
        )
    prev = anchor[1] if anchor else audit.GENESIS
    return rt.AuditSegment(first, last, prev, check.head)


# ---- removing: the one place that lifts the append-only protection ------------------------------


def _pg_trigger_enabled(conn: Connection, table: str) -> bool:
    state = conn.exec_driver_sql(
        "SELECT t.tgenabled FROM pg_trigger t WHERE t.tgrelid = to_regclass(%(rel)s) "
        "AND t.tgname = %(name)s",
        {"rel": f'"{table}"', "name": f"{table}_append_only"},
    ).scalar()
    return state == "O"


def _sqlite_trigger_sql(conn: Connection, table: str) -> str | None:
    value = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
        (f"{table}_no_delete",),
    ).scalar()
    return None if value is None else str(value)


@contextlib.contextmanager
def _unprotected(
    conn: Connection, tables: Iterable[str], allowed: frozenset[str] = PROTECTED
) -> Iterator[None]:
    """Inside the caller's write transaction only: the named append-only tables accept DELETE
    while the block runs; the protection is back (and checked) before the transaction can
    commit. On an exception nothing is restored here: the rollback undoes the DDL too."""
    if not conn.in_transaction():
        raise RuntimeError("the append-only protection is lifted only inside a transaction")
    names = sorted(set(tables))
    unknown = set(names) - allowed
    if unknown:
        raise RuntimeError(f"not an append-only table of retention: {sorted(unknown)}")
    missing = []
    if conn.dialect.name == "postgresql":
        for t in names:
            if not _pg_trigger_enabled(conn, t):
                missing.append(t)
        if missing:
            raise _tampered(missing)
        # fail (and roll back) rather than queue every reader behind a lock that a long
        # query keeps from being granted
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{PG_LOCK_TIMEOUT}'")
        for t in names:
            conn.exec_driver_sql(f'ALTER TABLE "{t}" DISABLE TRIGGER "{t}_append_only"')
        yield
        for t in names:
            conn.exec_driver_sql(f'ALTER TABLE "{t}" ENABLE TRIGGER "{t}_append_only"')
        missing = [t for t in names if not _pg_trigger_enabled(conn, t)]
    else:
        saved = {t: _sqlite_trigger_sql(conn, t) for t in names}
        missing = [t for t, sql in saved.items() if sql is None]
        if missing:
            raise _tampered(missing)
        for t in names:
            conn.exec_driver_sql(f'DROP TRIGGER "{t}_no_delete"')
        yield
        for sql in saved.values():
            conn.exec_driver_sql(str(sql))
        missing = [t for t in names if _sqlite_trigger_sql(conn, t) is None]
    if missing:
        raise RuntimeError(f"append-only protection not restored on {missing}: rolled back")


def _tampered(tables: Sequence[str]) -> VerificationFailed:
    return VerificationFailed(
        f"retention refused: the append-only protection of {', '.join(tables)} is missing or "
        "disabled; the database is not as tieout made it"
    )


def _remove(conn: Connection, plan: Plan) -> dict[str, int]:
    counts = plan.counts
    todo = [t for t in plan.delete_order if counts.get(t)]
    removed: dict[str, int] = {}
    with _unprotected(conn, [t for t in todo if t in plan.protected], plan.protected):
        for name in todo:
            table = _table(name)
            n = 0
            for chunk in _batches(table, plan.ids(name)):
                n += conn.execute(delete(table).where(_where(table, chunk))).rowcount
            removed[name] = n
    if removed != {t: counts[t] for t in todo}:
        raise TieoutError(f"retention: removed {removed}, planned {counts}; rolled back")
    if {"executions", "journal_postings"} & set(removed):
        # the running sums covered rows that are gone (and ids may be used again): forgotten,
        # in the same transaction; the next submissions sum the rows afresh
        conn.execute(delete(running_sums))
    return removed


def _carry_positions(
    conn: Connection, archive_id: int, closed: Sequence[dict[str, Any]], now: datetime
) -> None:
    """What the archived executions realized, per account and symbol, kept in the live book
    (position_carry_forward: insert-only), so that positions still show it."""
    for c in closed:
        conn.execute(
            position_carry_forward.insert().values(
                carry_id=next_id(conn, position_carry_forward, "carry_id"),
                archive_id=archive_id,
                account=c["account"],
                symbol=c["symbol"],
                realized_pnl=Decimal(c["realized_pnl"]),
                commissions=Decimal(c["commissions"]),
                fees=Decimal(c["fees"]),
                fills=int(c["fills"]),
                first_trade_date=date.fromisoformat(c["first_trade_date"]),
                last_trade_date=date.fromisoformat(c["last_trade_date"]),
                created_at=now,
            )
        )


# ---- apply --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyResult:
    plan: Plan
    dry_run: bool
    archive_dir: str
    archive_id: int | None = None
    location: str | None = None
    manifest_sha256: str | None = None
    anchor: tuple[int, str] | None = None
    carry_forward_ids: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        p = self.plan
        return {
            "dry_run": self.dry_run,
            "now": utc_iso(p.now),
            "periods": {c: period.show() for c, period in p.periods.items()},
            "cutoffs": {c: utc_iso(t) for c, t in p.cutoffs.items()},
            "classes": {c: list(tables) for c, tables in p.classes.items()},
            "record_only": sorted(rt.RECORD_ONLY),
            "archived": p.counts,
            "held": p.held,
            "holds": [h.hold_id for h in p.holds],
            "carry_forward": len(p.carry_forward),
            "positions_carried": [
                {k: c[k] for k in ("account", "symbol", "realized_pnl")} for c in p.closed
            ],
            "carry_forward_entries": list(self.carry_forward_ids),
            "archive_dir": self.archive_dir,
            "archive_id": self.archive_id,
            "location": self.location,
            "manifest_sha256": self.manifest_sha256,
            "audit_anchor": None
            if self.anchor is None
            else {"seq": self.anchor[0], "hash": self.anchor[1]},
        }


def plan_now(store: Store, now: datetime, specs: Sequence[rt.ClassSpec] = ()) -> Plan:
    with store.read() as conn:
        return make_plan(conn, now, specs)


def apply(
    store: Store,
    ctx: Ctx,
    *,
    archive_root: str | None = None,
    dry_run: bool = False,
    specs: Sequence[rt.ClassSpec] = (),
) -> ApplyResult:
    """Archive what has expired and remove it from the live tables (see the module's doc).
    `archive_root`: the archive directory (else the setting retention.archive-dir, else
    ./tieout-archive). A dry run reports the plan and changes nothing."""
    if dry_run:
        with store.read() as conn:
            plan = make_plan(conn, ctx.now, specs)
            return ApplyResult(plan, True, archive_root or archive_dir(conn))
    created: Path | None = None  # the folder this run made (first its partial one)
    committed = False
    held = contextlib.ExitStack()  # Ctrl-C held from the folder's rename to the commit
    try:
        with store.write() as conn:
            plan = make_plan(conn, ctx.now, specs)
            root = archive_root or archive_dir(conn)
            if plan.empty:
                return ApplyResult(plan, False, root)
            archive_id = next_id(conn, archives, "archive_id")
            name = f"archive-{archive_id:06d}-{ctx.now:%Y%m%dT%H%M%SZ}"
            final = Path(root) / name
            if final.exists():
                raise BadInput(
                    str(final),
                    f"cannot create the archive folder: it exists, and the book has no archive "
                    f"{archive_id}: a run that did not commit left it (its rows are still in "
                    "the book); move it away and run again",
                )
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                # written under a partial name, renamed just before the commit: a run killed
                # meanwhile leaves a folder that says it is incomplete, not an archive
                folder = final.parent / f".{name}.partial-{secrets.token_hex(6)}"
                folder.mkdir()
            except OSError as exc:
                raise BadInput(str(final), f"cannot create the archive folder: {exc}") from None
            created = folder
            segment = _audit_segment(conn, plan.ids("audit_events"))
            files = [
                _write_table(conn, folder, _table(t), plan.ids(t))
                for tables in plan.classes.values()
                for t in tables
                if plan.ids(t)
            ]
            info = rt.ManifestInfo(
                archive_id,
                ctx.now,
                ctx.actor,
                store.url,
                schema_revisions(conn)[0],
                plan.periods,
                plan.cutoffs,
                plan.holds,
                plan.held,
                plan.carry_forward,
                plan.closed,
            )
            manifest = rt.build_manifest(info, files, segment)
            text = rt.manifest_text(manifest)
            manifest_path = folder / rt.MANIFEST_NAME
            try:
                manifest_path.write_bytes(text)
                fsync_path(manifest_path)
                fsync_path(folder)
            except OSError as e:  # a full or failing archive disk
                raise OutputFailed(
                    str(folder.parent),
                    f"the archive's manifest: {e.strerror or e}",
                    "nothing was archived or removed from the book",
                ) from None
            digest = hashlib.sha256(text).hexdigest()
            location = str(final.resolve())
            # the book: carried balances, the audit event, the anchor; then the removal
            entry_ids = tuple(post_entries(conn, ctx, plan.carry_forward))
            counts = plan.counts
            audit.append(
                conn,
                at=ctx.now,
                actor=ctx.actor,
                action="retention.apply",
                entity_type="archive",
                entity_id=str(archive_id),
                payload={
                    "archive_id": archive_id,
                    "location": location,
                    "manifest_sha256": digest,
                    "cutoffs": manifest["cutoffs"],
                    "archived": counts,
                    "held": plan.held,
                    "holds": [h.hold_id for h in plan.holds],
                    "audit": manifest["audit"],
                    "carry_forward_entries": list(entry_ids),
                },
            )
            conn.execute(
                archives.insert().values(
                    archive_id=archive_id,
                    created_at=ctx.now,
                    actor=ctx.actor,
                    location=location,
                    manifest_sha256=digest,
                    cutoffs=audit.canonical_json(manifest["cutoffs"]),
                    counts=audit.canonical_json(counts),
                    audit_first_seq=None if segment is None else segment.first_seq,
                    audit_last_seq=None if segment is None else segment.last_seq,
                    audit_last_hash=None if segment is None else segment.last_hash,
                )
            )
            _carry_positions(conn, archive_id, plan.closed, ctx.now)
            _remove(conn, plan)
            anchor = audit.chain_anchor(conn)
            # the folder takes its name, then the transaction commits (only a kill in between
            # leaves an archive the book does not record: verify-archive --db says so)
            held.enter_context(interrupts_held())
            try:
                folder.rename(final)
            except OSError as exc:
                raise BadInput(str(final), f"cannot name the archive folder: {exc}") from None
            created = final
            fsync_path(final.parent)
        committed = True
        held.close()  # a Ctrl-C held since the rename is raised now, the archive committed
        return ApplyResult(plan, False, root, archive_id, location, digest, anchor, entry_ids)
    except BaseException:
        if created is not None and not committed:
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        held.close()


# ---- checking an archive ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveCheck:
    ok: bool
    location: str
    archive_id: int | None
    manifest_sha256: str | None
    files: int
    rows: dict[str, int]
    audit: dict[str, Any] | None
    problems: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "location": self.location,
            "archive_id": self.archive_id,
            "manifest_sha256": self.manifest_sha256,
            "files": self.files,
            "rows": self.rows,
            "audit": self.audit,
            "problems": list(self.problems),
        }


_AUDIT_COLUMNS = audit.AUDIT_COLUMNS


def _check_audit_file(path: Path, segment: dict[str, Any]) -> list[str]:
    frame = pl.read_parquet(path, columns=list(_AUDIT_COLUMNS))
    first, last = int(segment["first_seq"]), int(segment["last_seq"])
    anchor = None if first == 1 else (first - 1, str(segment["prev_hash"]))
    check = audit.check_chain(frame.iter_rows(), anchor=anchor)
    if not check.ok:
        return [f"archived audit chain broken at event {check.first_bad_seq}: {check.problem}"]
    problems = []
    if check.events != last - first + 1:
        problems.append(f"archived audit events: {check.events}, expected {last - first + 1}")
    if check.head != segment["last_hash"]:
        problems.append("the archived audit chain does not end at the recorded anchor")
    return problems


def verify_archive(folder: Path, recorded: Sequence[ArchiveRecord] | None = None) -> ArchiveCheck:
    """Check an archive folder offline: the manifest's files (SHA-256, rows), and the archived
    audit events as a chain from the boundary before them to the anchor after them. With the
    book's archive records (`recorded`, None: offline), also that the book recorded this
    archive, with this manifest, and that its chain begins where the previous archive's ended
    (a book with no archive recorded has no record of this one either)."""
    problems: list[str] = []
    manifest_path = folder / rt.MANIFEST_NAME
    try:
        text = manifest_path.read_bytes()
        manifest = json.loads(text)
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        return ArchiveCheck(
            False, str(folder), None, None, 0, {}, None, (f"{manifest_path}: {exc}",)
        )
    digest = hashlib.sha256(text).hexdigest()
    listed = manifest.get("files")
    files: list[Any] = listed if isinstance(listed, list) else []
    found: dict[str, tuple[str, int] | None] = {}
    rows: dict[str, int] = {}
    for f in files:
        name = str(f.get("file", ""))
        path = folder / name
        if not rt.safe_file_name(name) or not path.is_file():
            found[name] = None
            continue
        try:
            height = pl.scan_parquet(path).select(pl.len()).collect().item()
        except Exception:  # a damaged file is a finding, not a crash
            height = -1
        found[name] = (_sha256(path), int(height))
        rows[str(f.get("table"))] = int(height)
    problems += rt.manifest_problems(manifest, found)
    segment = manifest.get("audit")
    if isinstance(segment, dict) and not problems:
        problems += _check_audit_file(folder / "audit_events.parquet", segment)
    archive_id = manifest.get("archive_id")
    for rec in recorded or ():
        if rec.archive_id == archive_id and rec.manifest_sha256 != digest:
            problems.append(
                f"the manifest's SHA-256 {digest} is not the one archive {archive_id} recorded "
                f"({rec.manifest_sha256})"
            )
        if (
            isinstance(segment, dict)
            and rec.audit_last_seq is not None
            and rec.audit_last_seq == int(segment["first_seq"]) - 1
            and rec.audit_last_hash != segment["prev_hash"]
        ):
            problems.append(
                f"the archived chain does not begin where archive {rec.archive_id} ended"
            )
    if recorded is not None and archive_id not in {r.archive_id for r in recorded}:
        problems.append(
            f"the book has no record of archive {archive_id} (a run that did not commit may "
            "have left this folder: its rows are then still in the book)"
        )
    return ArchiveCheck(
        not problems,
        str(folder),
        archive_id if isinstance(archive_id, int) else None,
        digest,
        len(files),
        rows,
        segment if isinstance(segment, dict) else None,
        tuple(problems),
    )
