"""Retention, pure part: the classes of records and their periods, legal holds, which rows have
expired (given the clock, the periods and the holds), and the archive's manifest.

Classes (periods from the settings `retention.<class>`, defaults below):
- orders: an order with its client order ids, its events and the drop-copy reports refused
  about it (refused_reports), once the order is final (filled, canceled, rejected, expired)
  and its last change, last event and last refusal are older than the cut-off;
- executions: by trade date, a correction or bust together with the fill it changes; only a
  prefix of an account's fills in a symbol (in the order positions read them) that leaves the
  position flat, so that the open lots and positions that remain are exactly those before;
- ledger: journal entries with their postings, by value date (and time posted); what is taken
  out of the live ledger is carried forward per account and currency by one `carry_forward`
  entry (the sums per ledger account), so that every balance stays what it was;
- audit: the audit trail by time, only as a prefix of the chain (events 1..N): the live chain is
  anchored at the last archived event (oms.audit.chain_anchor);
- confirmations: trade confirmations are documents written to files (`tieout report
  confirmations --out DIR`): the book keeps none, so the period is recorded and shown, and
  deleting the files after it is the document store's job.
- classes declared by a ClassSpec (below): the records of the upper layers (reconciliation,
  schedules), which oms must not import, are described by their layer as plain data (tables, key,
  time columns, what is final, account columns, children, who references them) and passed in by
  the composition root (cli); surveillance alerts, oms's own, are declared here (SURVEILLANCE).
  A group's row (with its children) expires when it is final, every time of it and of its
  children is before the cut-off, nothing that stays references it, it is not the newest row of
  a table whose ids are max + 1, and no hold covers an account it names.

Rows are "expired" when every date and time that places them is before the cut-off (now minus
the period): for a date column, the whole day is before the cut-off's day. A legal hold covers
one account or all, one class or all: anything it covers is kept, however old. A row is never
expired because of something it does not say (a record that cannot be placed is kept).

The newest row of each table whose ids tieout assigns itself (executions, journal entries, order
events) is always kept: ids are max + 1 (oms.store.next_id), and an emptied table would hand out
archived ids again. The audit trail needs no such rule: the anchor carries its head.

Nothing here reads the clock, the settings or a database: oms.retention_book passes them in.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from oms import ledger
from oms.errors import BadInput
from oms.lots import BUST, CORRECT, FILL, ExecRecord, build_positions, effective_fills, fill_order
from oms.orders import TERMINAL
from oms.values import EXACT, Side, dec_str, utc_iso

ORDERS: Final = "orders"
EXECUTIONS: Final = "executions"
LEDGER: Final = "ledger"
AUDIT: Final = "audit"
CONFIRMATIONS: Final = "confirmations"
CLASSES: Final = (ORDERS, EXECUTIONS, LEDGER, AUDIT, CONFIRMATIONS)
RECORD_ONLY: Final = frozenset({CONFIRMATIONS})  # nothing of these is kept in the database

# The live tables of each class, in the order rows are deleted (children first).
CLASS_TABLES: Final[Mapping[str, tuple[str, ...]]] = {
    ORDERS: ("order_client_ids", "order_events", "refused_reports", "order_state_parts", "orders"),
    EXECUTIONS: ("executions",),
    LEDGER: ("journal_postings", "journal_entries"),
    AUDIT: ("audit_events",),
    CONFIRMATIONS: (),
}

SETTING_PREFIX: Final = "retention."
ARCHIVE_DIR_KEY: Final = "archive-dir"  # setting retention.archive-dir
DEFAULT_ARCHIVE_DIR: Final = "tieout-archive"
DEFAULT_PERIODS: Final[Mapping[str, str]] = {
    ORDERS: "6y",
    EXECUTIONS: "6y",
    LEDGER: "6y",
    AUDIT: "6y",
    CONFIRMATIONS: "3y",
}
MIN_DAYS: Final = 365  # a shorter period is refused: a typo must not empty the book

CARRY_FORWARD: Final = "carry_forward"  # journal entry kind
MANIFEST_FORMAT: Final = "tieout-archive/1"
MANIFEST_NAME: Final = "manifest.json"

_TERMINAL: Final = frozenset(s.value for s in TERMINAL)
_PERIOD_RE = re.compile(r"^\s*(\d{1,4})\s*([ymd]?)\s*$", re.IGNORECASE)


# ---- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A retention period: calendar months (years are 12 months) plus days."""

    months: int = 0
    days: int = 0

    def show(self) -> str:
        if self.days:
            return f"{self.days}d" if not self.months else f"{self.months}m{self.days}d"
        return f"{self.months // 12}y" if self.months % 12 == 0 else f"{self.months}m"

    def cutoff(self, now: datetime) -> datetime:
        """now minus the period: months on the calendar (the 29th of February becomes the
        28th when the year has none), then days."""
        total = now.year * 12 + (now.month - 1) - self.months
        year, month = divmod(total, 12)
        month += 1
        day = min(now.day, _month_days(year, month))
        return now.replace(year=year, month=month, day=day) - timedelta(days=self.days)


def _month_days(year: int, month: int) -> int:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def parse_period(text: str, what: str = "period") -> Period:
    """'6y', '18m', '400d' or a bare number of years; at least MIN_DAYS long."""
    m = _PERIOD_RE.match(text)
    if not m:
        raise BadInput(what, f"{text!r} is not a period (e.g. 6y, 18m, 400d)")
    n, unit = int(m.group(1)), (m.group(2) or "y").lower()
    if unit == "d":
        period, too_short = Period(days=n), n < MIN_DAYS
    else:
        months = n * 12 if unit == "y" else n
        period, too_short = Period(months=months), months < 12
    if too_short:
        raise BadInput(what, f"{text!r} is shorter than the minimum of one year")
    return period


def class_names(specs: Sequence[ClassSpec] = ()) -> tuple[str, ...]:
    return CLASSES + tuple(s.name for s in specs)


def parse_class(text: str, what: str = "--class", specs: Sequence[ClassSpec] = ()) -> str:
    name = text.strip().lower()
    names = class_names(specs)
    if name not in names:
        raise BadInput(what, f"{text!r} is not a retention class ({', '.join(names)})")
    return name


def periods_from(
    stored: Mapping[str, str], specs: Sequence[ClassSpec] = ()
) -> dict[str, Period]:
    """The period of every class: the stored setting (key without the prefix) or the default."""
    defaults = {**DEFAULT_PERIODS, **{s.name: s.default_period for s in specs}}
    return {
        c: parse_period(stored.get(c, defaults[c]), SETTING_PREFIX + c)
        for c in class_names(specs)
    }


def cutoffs(periods: Mapping[str, Period], now: datetime) -> dict[str, datetime]:
    return {c: p.cutoff(now) for c, p in periods.items()}


# ---- classes declared as data -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """Rows archived and removed with their parent: `parent` is the column holding its key."""

    table: str
    parent: str
    times: tuple[str, ...] = ()  # every one must be before the cut-off too
    accounts: tuple[str, ...] = ()  # columns holding an account
    json_accounts: tuple[str, ...] = ()  # JSON text columns that may name accounts
    # JSON text columns of raw values (a venue's row): any string value may be an account
    raw_values: tuple[str, ...] = ()
    newest_kept: str | None = None  # id column assigned max + 1: its newest row stays


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """One kind of record: a row of `table` (primary key `key`) and its children."""

    table: str
    key: str
    times: tuple[str, ...]  # date or time columns; all before the cut-off (NULL: kept)
    final: tuple[str, tuple[str, ...]] | None = None  # (column, values that mean closed)
    accounts: tuple[str, ...] = ()
    json_accounts: tuple[str, ...] = ()
    raw_values: tuple[str, ...] = ()
    children: tuple[ChildSpec, ...] = ()
    # (table, column) of rows that reference this one: a row referenced by one that stays, stays
    referenced_by: tuple[tuple[str, str], ...] = ()
    newest_kept: bool = True  # the key is assigned max + 1: the newest row stays

    @property
    def tables(self) -> tuple[str, ...]:
        """Children first, then the table itself: the order rows are deleted in."""
        return (*(c.table for c in self.children), self.table)


@dataclass(frozen=True, slots=True)
class Pins:
    """Records of oms's own classes that an upper layer's open work still names, however old:
    they stay in the live book. `exec_ids`: executions by ExecID (an open trade break's
    internal refs: archived, the next run would find them missing and close the break unseen);
    with each, every later execution of its account and symbol stays (retention archives a
    flat prefix of them). `cash`: (account, currency) whose ledger entries all stay (an open
    cash break's movements are read again by each run)."""

    exec_ids: frozenset[str] = frozenset()
    cash: frozenset[tuple[str, str]] = frozenset()
    # (account, symbol) whose executions all stay (an open position break: the position of
    # its date is read from them again)
    positions: frozenset[tuple[str, str]] = frozenset()

    def __or__(self, other: Pins) -> Pins:
        return Pins(
            self.exec_ids | other.exec_ids,
            self.cash | other.cash,
            self.positions | other.positions,
        )


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """A retention class declared by the layer that owns its tables. Groups are planned and
    deleted in their order: a group whose rows another group's rows reference comes after it.
    `pins`: what of oms's classes the layer's records still need, read from the book in the
    plan's transaction (a function of its connection)."""

    name: str
    default_period: str
    groups: tuple[GroupSpec, ...]
    append_only: frozenset[str] = frozenset()  # tables carrying the append-only triggers
    description: str = ""
    pins: Callable[[Any], Pins] | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(t for g in self.groups for t in g.tables)


SURVEILLANCE: Final = ClassSpec(
    name="surveillance",
    default_period="6y",
    groups=(
        GroupSpec(
            table="surveil_alerts",
            key="alert_id",
            times=("business_date", "created_at"),
            accounts=("account",),
            json_accounts=("evidence", "details"),
        ),
    ),
    append_only=frozenset({"surveil_alerts"}),
    description="surveillance alerts with their evidence, by business date",
)


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A candidate record: its key, every date and time that places it (its own and its
    children's), the accounts it names, its children's ids per table, and whether something
    that stays needs it (`pinned`)."""

    key: Any
    times: tuple[date | datetime | None, ...]
    accounts: frozenset[str]
    children: Mapping[str, tuple[Any, ...]]
    pinned: bool = False


def _before(value: date | datetime | None, cutoff: datetime) -> bool:
    if value is None:
        return False
    if isinstance(value, datetime):
        return value < cutoff
    return value < cutoff.date()


def plan_group(
    record_class: str,
    group: GroupSpec,
    rows: Iterable[GroupRow],
    cutoff: datetime,
    holds: Sequence[Hold],
) -> Selection:
    """The records of one group to archive, with their children; held: rows a hold kept."""
    keys: list[Any] = []
    children: dict[str, list[Any]] = {c.table: [] for c in group.children}
    held = 0
    for row in rows:
        if row.pinned or not all(_before(t, cutoff) for t in row.times):
            continue
        if covered(holds, record_class, row.accounts):
            held += 1 + sum(len(v) for v in row.children.values())
            continue
        keys.append(row.key)
        for table, child_ids in row.children.items():
            children[table].extend(child_ids)
    chosen: dict[str, Sequence[Any]] = {t: tuple(sorted(v)) for t, v in children.items()}
    chosen[group.table] = tuple(sorted(keys))
    return Selection(chosen, held)


def values_in_json(text: str | None) -> set[str]:
    """Every string value at any depth of a JSON text (raw rows whose account column is the
    venue's own name): a hold covers the row if any of them is a held account."""
    if not text:
        return set()
    try:
        value = json.loads(text)
    except ValueError:
        return set()
    found: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            found.add(v.strip())
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return found


def accounts_in_json(text: str | None) -> set[str]:
    """The accounts a JSON text names (see _accounts_named); unreadable text names none."""
    if not text:
        return set()
    try:
        return set(_accounts_named(json.loads(text)))
    except ValueError:
        return set()


# ---- legal holds --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hold:
    hold_id: int
    matter: str
    account: str | None  # None: every account
    record_class: str | None  # None: every class
    reason: str
    placed_at: datetime
    placed_by: str
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def covers(self, record_class: str, accounts: Iterable[str]) -> bool:
        if not self.active or self.record_class not in (None, record_class):
            return False
        return self.account is None or self.account in set(accounts)

    def as_json(self) -> dict[str, Any]:
        return {
            "hold_id": self.hold_id,
            "matter": self.matter,
            "account": self.account,
            "class": self.record_class,
            "reason": self.reason,
            "placed_at": utc_iso(self.placed_at),
            "placed_by": self.placed_by,
            "active": self.active,
            "released_at": None if self.released_at is None else utc_iso(self.released_at),
            "released_by": self.released_by,
            "release_reason": self.release_reason,
        }


def covered(holds: Iterable[Hold], record_class: str, accounts: Iterable[str]) -> bool:
    names = set(accounts)
    return any(h.covers(record_class, names) for h in holds)


# ---- what has expired ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """Rows of one class to archive (their ids per table), and how many rows older than the
    cut-off a hold kept."""

    ids: Mapping[str, Sequence[Any]]  # a range of seqs for audit_events
    held: int = 0

    @property
    def rows(self) -> dict[str, int]:
        return {t: len(v) for t, v in self.ids.items()}

    @property
    def empty(self) -> bool:
        return not any(self.ids.values())


def _chains(
    records: Sequence[ExecRecord],
) -> tuple[list[list[ExecRecord]], list[ExecRecord | None]]:
    """Each fill with the corrections and busts that change it (as oms.lots.effective_fills
    resolves them), and its effective terms (None: busted). Records naming no booked fill
    belong to no chain (and are never archived)."""
    chains: list[list[ExecRecord]] = []
    terms: list[ExecRecord | None] = []
    root: dict[tuple[str, str], int] = {}
    for rec in sorted(records, key=lambda r: r.seq):
        if rec.exec_type == FILL:
            root[(rec.venue, rec.exec_id)] = len(chains)
            chains.append([rec])
            terms.append(rec)
        elif rec.exec_type in (CORRECT, BUST) and rec.ref_exec_id is not None:
            index = root.get((rec.venue, rec.ref_exec_id))
            if index is None:
                continue
            root.setdefault((rec.venue, rec.exec_id), index)
            chains[index].append(rec)
            terms[index] = rec if rec.exec_type == CORRECT else None
    return chains, terms


def plan_executions(
    records: Sequence[ExecRecord],
    cutoff_day: date,
    holds: Sequence[Hold],
    *,
    late: frozenset[int] = frozenset(),
    keep: frozenset[int] = frozenset(),
) -> Selection:
    """Executions (row ids) to archive: per account and symbol, the longest prefix of effective
    fills in fill order that is flat at its end and whose every record (fill, corrections,
    busts) is dated before `cutoff_day`, booked before the cut-off (`late`: ids booked after it)
    and not on hold; plus busted fills whose whole chain is that old. `keep`: ids never taken."""
    chains, terms = _chains(records)

    def old(chain: list[ExecRecord]) -> bool:
        return all(
            r.trade_date < cutoff_day and r.seq not in late and r.seq not in keep for r in chain
        )

    def on_hold(chain: list[ExecRecord]) -> bool:
        return covered(holds, EXECUTIONS, (r.account for r in chain))

    chosen: list[int] = []
    held = 0
    by_key: dict[tuple[str, str], list[tuple[tuple[date, bool, datetime, int], int]]] = (
        defaultdict(list)
    )
    for index, (chain, effective) in enumerate(zip(chains, terms, strict=True)):
        if old(chain) and on_hold(chain):
            held += len(chain)
        if effective is None:
            if old(chain) and not on_hold(chain):
                chosen.extend(r.seq for r in chain)
            continue
        key = fill_order(effective._replace(seq=chain[0].seq))
        by_key[(effective.account, effective.symbol)].append((key, index))
    for entries in by_key.values():
        entries.sort()
        position = Decimal(0)
        cut = 0
        for n, (_, index) in enumerate(entries, 1):
            chain, effective = chains[index], terms[index]
            if effective is None or not old(chain) or on_hold(chain):
                break
            # exactly (the caller's context may round): a position with a last lot left is
            # not flat, and its executions stay
            q = effective.quantity
            signed = q if effective.side == Side.BUY else EXACT.minus(q)
            position = EXACT.add(position, signed)
            if position == 0:
                cut = n
        for _, index in entries[:cut]:
            chosen.extend(r.seq for r in chains[index])
    return Selection({"executions": tuple(sorted(chosen))}, held)


def closed_positions(records: Sequence[ExecRecord]) -> tuple[dict[str, Any], ...]:
    """What archived executions (flat episodes: every lot closed, so whatever the cost method)
    realized per account and symbol, with their commissions, fees, effective fills and trade
    dates: recorded in the manifest and carried forward in the book (position_carry_forward),
    since positions read from the live executions no longer show it."""
    fills = effective_fills(records)
    built = build_positions(fills)
    days: dict[tuple[str, str], list[date]] = defaultdict(list)
    for f in fills:
        days[(f.account, f.symbol)].append(f.trade_date)
    return tuple(
        {
            "account": account,
            "symbol": symbol,
            "realized_pnl": dec_str(p.realized_pnl),
            "commissions": dec_str(p.commissions),
            "fees": dec_str(p.fees),
            "fills": len(days[(account, symbol)]),
            "first_trade_date": min(days[(account, symbol)]).isoformat(),
            "last_trade_date": max(days[(account, symbol)]).isoformat(),
        }
        for (account, symbol), p in sorted(built.items())
    )


@dataclass(frozen=True, slots=True)
class LedgerEntryRow:
    """A journal entry older than the cut-off, with its postings (posting_id, posting)."""

    entry_id: int
    kind: str
    account: str
    currency: str
    value_date: date
    posted_at: datetime
    postings: tuple[tuple[int, ledger.Posting], ...]


@dataclass(frozen=True, slots=True)
class LedgerPlan:
    selection: Selection
    carry_forward: tuple[ledger.Entry, ...]


def plan_ledger(
    entries: Iterable[LedgerEntryRow],
    cutoff: datetime,
    holds: Sequence[Hold],
    *,
    keep: frozenset[int] = frozenset(),
    newest: int | None = None,
    ref: str = "retention",
) -> LedgerPlan:
    """Entries (and their postings) to archive, and the carry-forward entries that keep every
    ledger account's balance: one per account and currency, dated the last value date it
    carries, posting the archived sums per ledger account (none when they all net to zero).

    Idempotent: a second run with the same clock archives nothing.
    - A carry_forward entry moves only together with other entries of its account and currency
      (alone, it would be archived only to be written again, the same sums under a new id).
    - `newest`, the journal's highest entry id (ids are max + 1), is archived only when the plan
      writes a carry-forward entry, which takes a higher id before anything is removed. When
      nothing is carried forward, its whole account and currency stay (archiving the rest of
      them would carry them forward, and the next run would then archive the newest alone).
    - `keep`: entries that stay whatever happens."""
    candidates: list[LedgerEntryRow] = []
    held = 0
    for e in entries:
        if not (e.value_date < cutoff.date() and e.posted_at < cutoff) or e.entry_id in keep:
            continue
        if covered(holds, LEDGER, [e.account]):
            held += 1 + len(e.postings)
            continue
        candidates.append(e)
    moving = {(e.account, e.currency) for e in candidates if e.kind != CARRY_FORWARD}
    chosen = [e for e in candidates if (e.account, e.currency) in moving]
    plan = _ledger_plan(chosen, held, ref)
    last = next((e for e in chosen if e.entry_id == newest), None)
    if last is None or plan.carry_forward:
        return plan
    group = (last.account, last.currency)
    return _ledger_plan([e for e in chosen if (e.account, e.currency) != group], held, ref)


def _ledger_plan(chosen: Sequence[LedgerEntryRow], held: int, ref: str) -> LedgerPlan:
    entry_ids: list[int] = []
    posting_ids: list[int] = []
    sums: dict[tuple[str, str], dict[tuple[str, str], Decimal]] = defaultdict(
        lambda: defaultdict(Decimal)
    )
    last_day: dict[tuple[str, str], date] = {}
    counted: dict[tuple[str, str], int] = defaultdict(int)
    for e in chosen:
        entry_ids.append(e.entry_id)
        group = (e.account, e.currency)
        counted[group] += 1
        last_day[group] = max(last_day.get(group, e.value_date), e.value_date)
        for posting_id, p in e.postings:
            posting_ids.append(posting_id)
            key = (p.ledger_account, p.currency)
            sums[group][key] = EXACT.add(sums[group][key], p.amount)  # not 28 digits
    carried = []
    for (account, currency), totals in sorted(sums.items()):
        postings = tuple(
            ledger.Posting(acct, ccy, amount)
            for (acct, ccy), amount in sorted(totals.items())
            if amount != 0
        ) or (  # all of it nets to zero: an entry of nothing still dates what was archived
            ledger.Posting(ledger.cash_account(account), currency, Decimal(0)),
        )
        if postings:
            carried.append(
                ledger.Entry(
                    CARRY_FORWARD,
                    account,
                    currency,
                    last_day[(account, currency)],
                    postings,
                    ref=f"{ref}: {counted[(account, currency)]} entries carried forward"[:200],
                )
            )
    selection = Selection(
        {
            "journal_postings": tuple(sorted(posting_ids)),
            "journal_entries": tuple(sorted(entry_ids)),
        },
        held,
    )
    return LedgerPlan(selection, tuple(carried))


@dataclass(frozen=True, slots=True)
class OrderRow:
    """A final order last changed before the cut-off, with its client ids, its events and the
    reports refused about it."""

    order_id: str
    account: str
    status: str
    created_at: datetime
    updated_at: datetime
    client_ids: tuple[tuple[str, str], ...]  # (account, client_order_id)
    events: tuple[tuple[int, datetime], ...]  # (event_id, at)
    refused: tuple[tuple[str, datetime], ...] = ()  # (exec_id, refused_at)
    parts: tuple[tuple[str, int], ...] = ()  # (part, seq): the chunks of a long order's state


def plan_orders(
    rows: Iterable[OrderRow],
    cutoff: datetime,
    holds: Sequence[Hold],
    *,
    keep_events: frozenset[int] = frozenset(),
    keep_orders: frozenset[str] = frozenset(),
) -> Selection:
    """Final orders whose creation, last change, every event and every refused report are
    before the cut-off; never
    one in `keep_orders` or with an event in `keep_events` (the newest order id and event id
    stay: new ids are the highest + 1, and an archived id must never be handed out again)."""
    order_ids: list[str] = []
    client_ids: list[tuple[str, str]] = []
    event_ids: list[int] = []
    refused: list[tuple[str, str]] = []
    parts: list[tuple[str, str, int]] = []
    held = 0
    for o in rows:
        times = [o.created_at, o.updated_at, *(at for _, at in (*o.events, *o.refused))]
        if o.status not in _TERMINAL or not all(t < cutoff for t in times):
            continue
        if o.order_id in keep_orders or any(event_id in keep_events for event_id, _ in o.events):
            continue
        if covered(holds, ORDERS, [o.account]):
            held += 1 + len(o.client_ids) + len(o.events) + len(o.refused) + len(o.parts)
            continue
        order_ids.append(o.order_id)
        client_ids.extend(o.client_ids)
        event_ids.extend(event_id for event_id, _ in o.events)
        refused.extend((o.order_id, exec_id) for exec_id, _ in o.refused)
        parts.extend((o.order_id, part, seq) for part, seq in o.parts)
    return Selection(
        {
            "order_client_ids": tuple(sorted(client_ids)),
            "order_events": tuple(sorted(event_ids)),
            "refused_reports": tuple(sorted(refused)),
            "order_state_parts": tuple(sorted(parts)),
            "orders": tuple(sorted(order_ids)),
        },
        held,
    )


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    at: datetime
    entity_id: str
    payload: str  # canonical JSON


def _accounts_named(value: Any) -> Iterator[str]:
    """Every string under an "account" or "account_id" key, at any depth of a payload, and in a
    list of command arguments every value after "--account"."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("account", "account_id") and isinstance(v, str):
                yield v
            else:
                yield from _accounts_named(v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if v == "--account" and i + 1 < len(value) and isinstance(value[i + 1], str):
                yield value[i + 1]
            elif isinstance(v, str) and v.startswith("--account="):
                yield v.removeprefix("--account=")
            yield from _accounts_named(v)


def audit_accounts(row: AuditRow) -> set[str]:
    """The accounts an event is about: its entity id and every account its payload names."""
    try:
        payload = json.loads(row.payload)
    except ValueError:
        payload = None
    return {row.entity_id, *_accounts_named(payload)}


def plan_audit(
    rows: Iterable[AuditRow], cutoff: datetime, holds: Sequence[Hold]
) -> tuple[int | None, int]:
    """The last seq of the archivable prefix of the chain (rows in seq order from the first
    live event), None for none; and how many old events a hold kept. The prefix ends before
    the first event at or after the cut-off, or on hold."""
    last: int | None = None
    held = 0
    stopped = False
    audit_holds = [h for h in holds if h.active and h.record_class in (None, AUDIT)]
    for row in rows:
        if row.at >= cutoff:
            break
        if not stopped and audit_holds and covered(audit_holds, AUDIT, audit_accounts(row)):
            stopped = True
        if stopped:
            held += 1
        else:
            last = row.seq
    return last, held


# ---- the archive's manifest ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    table: str
    file: str  # a plain file name inside the archive's folder
    rows: int
    sha256: str
    bytes: int
    columns: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "file": self.file,
            "rows": self.rows,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "columns": list(self.columns),
        }


@dataclass(frozen=True, slots=True)
class AuditSegment:
    """The archived stretch of the chain: events first..last, linked to `prev_hash` before
    the first (GENESIS for event 1) and ending at `last_hash`, the live chain's anchor."""

    first_seq: int
    last_seq: int
    prev_hash: str
    last_hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "prev_hash": self.prev_hash,
            "last_hash": self.last_hash,
        }


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    archive_id: int
    created_at: datetime
    actor: str
    database: str
    schema_revision: str | None
    periods: Mapping[str, Period]
    cutoffs: Mapping[str, datetime]
    holds: Sequence[Hold]
    held: Mapping[str, int]
    carry_forward: Sequence[ledger.Entry] = field(default_factory=tuple)
    closed: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


def build_manifest(
    info: ManifestInfo, files: Sequence[ArchiveFile], audit: AuditSegment | None
) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "archive_id": info.archive_id,
        "created_at": utc_iso(info.created_at),
        "actor": info.actor,
        "database": info.database,
        "schema_revision": info.schema_revision,
        "periods": {c: p.show() for c, p in info.periods.items()},
        "cutoffs": {c: utc_iso(t) for c, t in info.cutoffs.items()},
        "holds": [h.as_json() for h in info.holds if h.active],
        "held": dict(info.held),
        "files": [f.as_json() for f in files],
        "audit": None if audit is None else audit.as_json(),
        "carry_forward": [
            {
                "account": e.account,
                "currency": e.currency,
                "value_date": e.value_date.isoformat(),
                "postings": [
                    {"ledger_account": p.ledger_account, "currency": p.currency,
                     "amount": dec_str(p.amount)}
                    for p in e.postings
                ],
            }
            for e in info.carry_forward
        ],
        "positions_closed": [dict(c) for c in info.closed],
    }


def manifest_text(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as written (and hashed): sorted keys, indented, UTF-8, newline at the end."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def manifest_problems(
    manifest: Mapping[str, Any], found: Mapping[str, tuple[str, int] | None]
) -> list[str]:
    """What does not match between a manifest and the files found (name -> (sha256, rows),
    None when missing or unreadable)."""
    problems = []
    if manifest.get("format") != MANIFEST_FORMAT:
        problems.append(f"unknown manifest format {manifest.get('format')!r}")
    files = manifest.get("files")
    if not isinstance(files, list):
        return [*problems, "the manifest lists no files"]
    for f in files:
        name = str(f.get("file", ""))
        if not _SAFE_NAME.match(name) or name in (".", ".."):
            problems.append(f"file name {name!r} is not a plain file name")
            continue
        got = found.get(name)
        if got is None:
            problems.append(f"{name}: missing or unreadable")
            continue
        sha, rows = got
        if sha != f.get("sha256"):
            problems.append(f"{name}: SHA-256 {sha} is not the manifest's {f.get('sha256')}")
        if rows != f.get("rows"):
            problems.append(f"{name}: {rows} rows, the manifest says {f.get('rows')}")
    return problems


def safe_file_name(name: str) -> bool:
    return bool(_SAFE_NAME.match(name)) and name not in (".", "..")
