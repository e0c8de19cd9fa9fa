"""The edge of the reports: read what a document needs from the store, as plain values, inside
the caller's read transaction (one snapshot: the audit head a document quotes is the head of
the data it shows). Builders do the rest."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, func, select

from oms import audit, book, executions, ledger, lots, md_book
from oms.calendars import business_days, exchange_zone, session_on_or_after
from oms.errors import BadInput
from oms.positions import end_of
from oms.retention import CARRY_FORWARD
from oms.retention_schema import position_carry_forward
from oms.schema import (
    bar_aggregates,
    journal_entries,
    journal_postings,
    surveil_alerts,
)
from oms.schema import executions as executions_table
from oms.surveil import superseded
from oms.values import EXACT, CostMethod, Side, day_start
from reports import recon_tables as rt
from reports.confirmations import ConfirmationInput, ExecutionFacts
from reports.exceptions import (
    AlertRow,
    BreakRow,
    Comment,
    Difference,
    ExceptionInput,
    QuarantineRow,
    RunRow,
)
from reports.firm import Firm, load_firm
from reports.statement import AccountInfo, CashEntry, Mark, StatementInput

# Journal kinds that carry trade cash (the statement takes trade cash from the fills instead).
TRADE_KINDS = frozenset({"trade", "settlement", "bust", "correction"})


def check_period(period_from: date, period_to: date) -> None:
    if period_from > period_to:
        raise BadInput("--from", f"{period_from.isoformat()} is after --to {period_to.isoformat()}")


def account_info(conn: Connection, account: str) -> AccountInfo:
    acct = book.get_account(conn, account)  # NotFound (exit 5) for an unknown account
    return AccountInfo(acct.account, acct.name, acct.currency, acct.type.value)


# ---- statements --------------------------------------------------------------------------------


def _cash_entries(
    conn: Connection, account: str, currency: str, until: date
) -> tuple[list[CashEntry], Decimal]:
    """The account's non-trade cash postings up to a value date, and settled cash (every cash
    posting with value date up to it)."""
    e, p = journal_entries.c, journal_postings.c
    rows = conn.execute(
        select(e.entry_id, e.kind, e.value_date, e.ref, e.destination, p.amount)
        .join_from(journal_entries, journal_postings, p.entry_id == e.entry_id)
        .where(
            e.account == account,
            p.ledger_account == ledger.cash_account(account),
            p.currency == currency,
            e.value_date <= until,
        )
        .order_by(e.value_date, e.entry_id)
    ).all()
    settled = Decimal(0)
    entries = []
    for r in rows:
        settled = EXACT.add(settled, r.amount)  # not Python's default 28 digits
        if r.kind not in TRADE_KINDS:
            entries.append(
                CashEntry(int(r.entry_id), r.kind, r.value_date, r.amount, r.ref, r.destination)
            )
    return entries, settled


ARCHIVED_TRADES = "archived_trades"  # the kind of a statement's line for archived trade cash


def _archived_through(conn: Connection, account: str) -> date | None:
    """The last date retention archived records of the account up to: its ledger's
    carry-forward entries (dated the last value date they carry; what they carry may be of any
    date before) and its archived executions (position_carry_forward: their last trade date).
    None when nothing of it is archived."""
    e, pc = journal_entries.c, position_carry_forward.c
    days = [
        conn.execute(
            select(func.max(e.value_date)).where(e.account == account, e.kind == CARRY_FORWARD)
        ).scalar(),
        conn.execute(select(func.max(pc.last_trade_date)).where(pc.account == account)).scalar(),
    ]
    found = [d for d in days if d is not None]
    return max(found) if found else None


def _archived_trade_cash(
    conn: Connection, account: str, currency: str, live: Sequence[lots.ExecRecord]
) -> list[CashEntry]:
    """A statement takes trade cash from the live executions (at their trade dates) and the
    rest of the cash from the journal. Retention breaks the match between the two: it archives
    old journal entries into a carry-forward entry, the settlements of executions that stay
    live included (their cash then counted twice), and archives flat runs of executions whose
    settlement entries may stay in the journal (a longer ledger period: their cash then counted
    nowhere). On each value date, the journal's trade cash less the cash of the live executions
    settling then is what neither side counts once: a line of its own (zero, and none, where
    no retention touched the account)."""
    e, p = journal_entries.c, journal_postings.c
    booked = conn.execute(
        select(e.value_date, p.amount)
        .join_from(journal_entries, journal_postings, p.entry_id == e.entry_id)
        .where(
            e.account == account,
            e.kind.in_(sorted(TRADE_KINDS)),
            p.ledger_account == ledger.cash_account(account),
            p.currency == currency,
        )
    ).all()
    left: dict[date, Decimal] = defaultdict(Decimal)
    for day, amount in booked:
        left[day] = EXACT.add(left[day], amount)
    for f in live:
        if (f.currency or currency) == currency:
            day = f.settle_date or f.trade_date
            left[day] = EXACT.subtract(left[day], lots.cash_flow(f))
    return [
        CashEntry(-(n + 1), ARCHIVED_TRADES, day, amount)
        for n, (day, amount) in enumerate(sorted(left.items()))
        if amount
    ]


def _marks(
    conn: Connection, symbols: Sequence[str], period_from: date, period_to: date
) -> list[Mark]:
    """Last prices as of the day before the period, then each day's close in the period: the
    last price of each date on the instrument's exchange (its local day, as `positions
    --as-of` marks it: Sydney's session of a date opens the UTC evening before), from the
    hourly bars that every market data import keeps up to date, each hour on its exchange's
    local date. Exchanges are closed around their local midnight, so an hour holds bars of one
    of their dates; at a half-hour offset from UTC (Mumbai) the hour around local midnight
    could hold two, which only bars stamped outside trading hours reach (then the later of
    them marks the earlier date)."""
    if not symbols:
        return []
    before = period_from - timedelta(days=1)
    marks = [
        Mark(sym, before, px)
        for sym, px in md_book.last_prices_on(conn, symbols, before).items()
    ]
    zones = {sym: exchange_zone(x) for sym, x in book.exchanges_of(conn, symbols).items()}
    a = bar_aggregates.c
    closes: dict[tuple[str, date], Decimal] = {}
    lo, hi = day_start(period_from - timedelta(days=1)), end_of(period_to + timedelta(days=1))
    for n in range(0, len(symbols), 500):
        rows = conn.execute(
            select(a.symbol, a.bucket, a.close)
            .where(
                a.interval == "1h",
                a.symbol.in_(list(symbols[n : n + 500])),
                a.bucket >= lo,
                a.bucket < hi,
            )
            .order_by(a.bucket)
        )
        for r in rows:
            local = r.bucket.astimezone(zones.get(r.symbol, UTC)).date()
            if period_from <= local <= period_to:
                closes[(r.symbol, local)] = r.close  # the day's last hour wins
    marks.extend(Mark(sym, day, px) for (sym, day), px in closes.items())
    return marks


def statement_input(
    conn: Connection,
    account: str,
    period_from: date,
    period_to: date,
    now: datetime,
    *,
    method: CostMethod = CostMethod.FIFO,
    firm: Firm | None = None,
) -> StatementInput:
    check_period(period_from, period_to)
    info = account_info(conn, account)
    live = lots.effective_fills(executions.records(conn, account=account))
    fills = tuple(f for f in live if f.trade_date <= period_to)
    entries, settled = _cash_entries(conn, account, info.currency, period_to)
    archived = _archived_through(conn, account)
    if archived is not None:
        extra = _archived_trade_cash(conn, account, info.currency, live)
        if extra:  # archived trades' settlements after their last trade date (a lag) count
            archived = max(archived, *(x.value_date for x in extra))
        if period_from <= archived:
            raise BadInput(
                "--from",
                f"account {account}: its records up to {archived.isoformat()} are archived "
                "(retention apply): a statement cannot be built for a period that reaches "
                f"into them; start it on {(archived + timedelta(days=1)).isoformat()} or "
                "later (the archive holds the earlier records)",
            )
        entries += [x for x in extra if x.value_date <= period_to]
    symbols = sorted({f.symbol for f in fills})
    return StatementInput(
        account=info,
        period_from=period_from,
        period_to=period_to,
        fills=fills,
        cash_entries=tuple(entries),
        marks=tuple(_marks(conn, symbols, period_from, period_to)),
        settled_cash=settled,
        firm=firm or load_firm(conn),
        generated_at=now,
        audit_head=audit.head_hash(conn),
        method=method,
    )


def account_ids(conn: Connection) -> list[str]:
    return [a.account for a in book.list_accounts(conn)]


# ---- the exception report ----------------------------------------------------------------------


def _run_row(r: Any) -> RunRow:
    counts = json.loads(r.breaks) if r.breaks else {}
    return RunRow(
        run_id=int(r.run_id),
        kind=r.kind,
        profile=r.profile,
        venue=r.venue,
        business_date=r.business_date,
        input_path=r.input_path,
        input_sha256=r.input_sha256,
        forced=bool(r.forced),
        internal_rows=int(r.internal_rows),
        venue_rows=int(r.venue_rows),
        quarantined_rows=int(r.quarantined_rows),
        matched=int(r.matched),
        breaks=tuple(sorted((str(k), int(v)) for k, v in counts.items())),
        open_breaks=int(r.open_breaks),
        closed_breaks=int(r.closed_breaks),
        started_at=r.started_at,
        duration_s=r.duration_s,
        actor=r.actor,
    )


def _break_row(
    r: Any, age: int, comments: Sequence[Comment], pending: bool | None = None
) -> BreakRow:
    """A break's row; `pending`: whether a write-off waited for approval (else: it waits now)."""
    diffs = json.loads(r.differences) if r.differences else {}
    return BreakRow(
        break_id=int(r.break_id),
        run_id=int(r.last_run_id),
        first_run_id=int(r.first_run_id),
        profile=r.profile,
        kind=r.kind,
        type=r.type,
        status=r.status,
        account=r.account,
        symbol=r.symbol,
        currency=r.currency,
        internal_refs=tuple(str(x) for x in json.loads(r.internal_refs or "[]")),
        venue_refs=tuple(str(x) for x in json.loads(r.venue_refs or "[]")),
        differences=tuple(
            Difference(
                str(name),
                d.get("internal") if isinstance(d, dict) else d,
                d.get("venue") if isinstance(d, dict) else None,
            )
            for name, d in diffs.items()
        ),
        first_seen=r.first_seen,
        age_days=age,
        amount=r.amount,
        suggestion=r.suggestion,
        owner=r.owner,
        resolution=r.resolution,
        resolution_note=r.resolution_note,
        pending_approval=(
            pending if pending is not None else r.status == rt.OPEN and r.request_hash is not None
        ),
        requested_by=r.requested_by,
        resolved_by=r.resolved_by,
        resolved_at=r.resolved_at,
        resolved_run_id=None if r.resolved_run_id is None else int(r.resolved_run_id),
        comments=tuple(comments),
    )


def _comments(
    conn: Connection, break_ids: Sequence[int], until: datetime
) -> dict[int, list[Comment]]:
    out: dict[int, list[Comment]] = defaultdict(list)
    ev = rt.break_events.c
    for i in range(0, len(break_ids), 500):
        rows = conn.execute(
            select(ev.break_id, ev.at, ev.actor, ev.payload)
            .where(
                ev.action == rt.COMMENTED,
                ev.break_id.in_(list(break_ids[i : i + 500])),
                ev.at < until,
            )
            .order_by(ev.event_id)
        )
        for r in rows:
            text = json.loads(r.payload).get("text", "")
            out[int(r.break_id)].append(Comment(r.at, r.actor, str(text)))
    return out


_NO_SESSION = timedelta(days=14)  # as calendars.session_on_or_after looks ahead
_UNDONE = (rt.CHANGED, rt.ASSIGNED, rt.REQUESTED, rt.TOOK_OVER)
_OWNERS = (rt.ASSIGNED, rt.TOOK_OVER)


def _as_it_stood(
    conn: Connection, rows: Sequence[Any], day: date, until: datetime
) -> dict[int, tuple[Any, bool]]:
    """Breaks as they stood at the end of `day`, for those a later day changed: its report
    showed each break's figures and owner as they are now (an amount a later run restated, an
    owner assigned since, a write-off requested since). A run's change is undone when the run
    is of a later business date (a late run of `day` itself counts, as its closes do); an
    operator's, when made after the day's end. Returns break id -> (the row as it stood,
    whether a write-off had been requested by then) for every row. The status and a resolution
    since stay as they are now: the report marks a break resolved since ("now resolved")."""
    ids = [int(x.break_id) for x in rows]
    ev = rt.break_events.c
    by_run = rt.recon_runs.alias("by_run")
    later: dict[int, list[Any]] = defaultdict(list)
    before: dict[int, list[Any]] = defaultdict(list)  # owners and first dates handed on
    requests: dict[int, Any] = {}  # each break's last write-off request made by `day`
    for i in range(0, len(ids), 500):
        for e in conn.execute(
            select(ev.break_id, ev.action, ev.actor, ev.payload, ev.at, by_run.c.business_date)
            .select_from(rt.break_events.outerjoin(by_run, by_run.c.run_id == ev.run_id))
            .where(ev.break_id.in_(ids[i : i + 500]), ev.action.in_(_UNDONE))
            .order_by(ev.event_id)
        ):
            after = e.business_date > day if e.business_date is not None else e.at >= until
            if after:
                later[int(e.break_id)].append(e)
            elif e.action == rt.REQUESTED:
                requests[int(e.break_id)] = e
            elif e.action in _OWNERS:
                before[int(e.break_id)].append(e)
    out: dict[int, tuple[Any, bool]] = {}
    for x in rows:
        request = requests.get(int(x.break_id))
        events = later.get(int(x.break_id))
        if not events:
            out[int(x.break_id)] = (x, request is not None)
            continue
        values = dict(x._mapping)
        for e in reversed(events):  # newest first
            payload = json.loads(e.payload)
            if e.action == rt.CHANGED:
                for name, change in payload.items():
                    values[name] = Decimal(change["from"]) if name == "amount" else change["from"]
        if any(e.action in _OWNERS for e in events):
            # the owner (and, handed on by a superseded break, the first date) as the day's
            # steps left them: a hand-over records the owner it gave, not the one it kept
            owner, first = None, x.found_day
            for e in before.get(int(x.break_id), []):
                payload = json.loads(e.payload)
                if e.action == rt.ASSIGNED:
                    owner = payload.get("to")
                else:
                    owner = owner or payload.get("owner")
                    first = min(first, date.fromisoformat(payload["first_seen"]))
            values["owner"] = owner
            if any(e.action == rt.TOOK_OVER for e in events):
                values["first_seen"] = first
        if x.status == rt.OPEN and any(e.action == rt.REQUESTED for e in events):
            asked = json.loads(request.payload) if request is not None else None
            values.update(
                request_hash=asked["hash"] if asked else None,
                requested_by=request.actor if request is not None else None,
                resolution=asked["request"]["reason"] if asked else None,
                resolution_note=asked["request"]["note"] if asked else None,
            )
        out[int(x.break_id)] = (SimpleNamespace(**values), request is not None)
    return out


def exception_input(conn: Connection, day: date, now: datetime) -> ExceptionInput:
    calendar = book.get_setting(conn, rt.CALENDAR_SETTING) or rt.DEFAULT_CALENDAR
    # an operator's step (a comment, an assignment, a request) is of the date it was made on
    # in the firm calendar's time zone, as an operator's resolution is: a New York evening's
    # comment is that day's, not the next UTC date's
    zone = exchange_zone(calendar)
    until = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    r = rt.recon_runs.c
    runs = [
        _run_row(x)
        for x in conn.execute(
            select(rt.recon_runs).where(r.business_date == day).order_by(r.run_id)
        )
    ]
    b = rt.recon_breaks.c
    # open at the end of the day: found by then, and not resolved by then. A break a run
    # resolved is resolved on that run's business date, whenever the run ran (a run for the
    # 24th at 01:30 UTC on the 25th closed a break the 24th's report still showed open, beside
    # that very run's count of it as closed); one an operator resolved, on the day they did
    settled_by = rt.recon_runs.alias("settled_by")
    resolved_day = settled_by.c.business_date
    # found by a run of the day or before (a break that took over an older one's items keeps
    # that one's first date for its age, but did not exist before its own run)
    found_by = rt.recon_runs.alias("found_by")
    candidates = conn.execute(
        select(
            rt.recon_breaks,
            resolved_day.label("resolved_day"),
            found_by.c.business_date.label("found_day"),
        )
        .outerjoin(settled_by, settled_by.c.run_id == b.resolved_run_id)
        .join(found_by, found_by.c.run_id == b.first_run_id)
        .where(
            b.first_seen <= day,
            found_by.c.business_date <= day,
            (b.status == rt.OPEN)
            | (resolved_day >= day)
            | (found_by.c.business_date == day)
            # (an operator's resolution on the days before `day` that are no business day)
            | (b.resolved_run_id.is_(None) & (b.resolved_at >= day_start(day - _NO_SESSION))),
        )
        .order_by(b.break_id)
    ).all()

    def resolved_on(x: Any) -> date | None:
        """The business date a break counts as resolved on: the resolving run's, or the next
        business day from the date an operator resolved it, in the firm calendar's time zone
        (a resolution on a Saturday or a holiday was in no business day's report); never
        before the date of the run that found it (a later run of an earlier date that settled
        it left it in no report: found on the 25th, it was not in the 24th's, and resolved on
        the 24th, not in the 25th's)."""
        if x.status == rt.OPEN or x.resolved_at is None:
            return None
        by_run: date | None = x.resolved_day
        # an operator's date is the firm's calendar's (a New York evening is that day's, not
        # the next UTC date's)
        local = x.resolved_at.astimezone(exchange_zone(calendar)).date()
        on = by_run if by_run is not None else session_on_or_after(calendar, local)
        found: date = x.found_day
        return max(on, found)

    # one break per item: a re-run of an earlier date after an operator resolved that date's
    # break opens a new one for the same item (same key), and both were open at the end of
    # the day as the report reads them (the item counted twice); the one that stood then shows
    open_rows = []
    shown: set[tuple[str, str]] = set()
    for x in candidates:
        if (resolved_on(x) or date.max) > day and (x.profile, x.break_key) not in shown:
            shown.add((x.profile, x.break_key))
            open_rows.append(x)
    resolved_rows = [x for x in candidates if resolved_on(x) == day]
    comments = _comments(conn, [int(x.break_id) for x in candidates], until)

    stood = _as_it_stood(conn, candidates, day, until)

    def row(x: Any, as_of: date, *, still_open: bool) -> BreakRow:
        """A break as it stood at the end of the day; one open then shows the write-off that
        waited for approval then (one approved since: it still waited)."""
        then, requested = stood[int(x.break_id)]
        age = business_days(then.first_seen, as_of, calendar)
        pending = requested if still_open else None
        return _break_row(then, age, comments.get(int(x.break_id), []), pending)

    q = rt.recon_quarantine.c
    # the rows a file's last run of the day quarantined: a --force re-run of the same bytes
    # quarantines the same rows again (listed twice before); another file's runs, a corrected
    # one's included, are each listed (each row names its run)
    last_of_input = {(run.profile, run.input_sha256): run.run_id for run in runs}
    profiles = {run_id: profile for (profile, _), run_id in last_of_input.items()}
    quarantined = []
    if runs:
        for x in conn.execute(
            select(rt.recon_quarantine)
            .where(q.run_id.in_(list(profiles)))
            .order_by(q.run_id, q.row)
        ):
            values = json.loads(x.values) if x.values else {}
            quarantined.append(
                QuarantineRow(
                    int(x.run_id),
                    profiles[int(x.run_id)],
                    int(x.row),
                    tuple((str(k), v) for k, v in values.items()),
                    tuple(str(reason) for reason in json.loads(x.reasons or "[]")),
                )
            )
    return ExceptionInput(
        day=day,
        runs=tuple(runs),
        open_breaks=tuple(row(x, day, still_open=True) for x in open_rows),
        resolved=tuple(row(x, day, still_open=False) for x in resolved_rows),
        quarantined=tuple(quarantined),
        firm=load_firm(conn),
        generated_at=now,
        audit_head=audit.head_hash(conn),
        alerts=_alerts(conn, day),
    )


def _alerts(conn: Connection, day: date) -> tuple[AlertRow, ...]:
    """The day's surveillance alerts (tieout surveil run), for the compliance section."""
    a = surveil_alerts.c
    rows = conn.execute(
        select(surveil_alerts).where(a.business_date == day).order_by(a.alert_id)
    ).all()
    out = []
    parsed = [(x, json.loads(x.details) if x.details else {}) for x in rows]
    later = superseded((int(x.alert_id), details) for x, details in parsed)
    for x, details in parsed:
        shown = tuple(
            (str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True))
            for k, v in sorted(details.items())
        )
        if int(x.alert_id) in later:  # its figures are no longer the book's
            shown = (("superseded_by", str(later[int(x.alert_id)])), *shown)
        out.append(AlertRow(int(x.alert_id), x.rule, x.account, x.symbol, x.score, shown))
    return tuple(out)


# ---- confirmations -----------------------------------------------------------------------------


def _traded_at(conn: Connection, rows: Sequence[Any]) -> dict[tuple[str, str], datetime | None]:
    """(venue, exec_id) of each correction and bust among `rows` -> when the trade it changes
    was executed: the exec_time of the fill its chain of ExecRefIDs ends at."""
    changes = [
        (r.venue, r.exec_id, r.exec_type, r.ref_exec_id)
        for r in rows
        if r.exec_type != "fill" and r.ref_exec_id
    ]
    return executions.fill_times_of_chains(conn, changes) if changes else {}


def confirmation_inputs(
    conn: Connection, trade_date: date, now: datetime, *, account: str | None = None
) -> list[ConfirmationInput]:
    """One per execution row with this trade date (fills, corrections and busts), book order."""
    e = executions_table.c
    q = select(executions_table).where(e.trade_date == trade_date).order_by(e.id)
    if account is not None:
        account_info(conn, account)
        q = q.where(e.account == account)
    rows = conn.execute(q).all()
    # a fill `exec import` booked that its drop copy counted on an order afterwards: that order
    counted = executions.counted_on(
        conn, (r.exec_id for r in rows if r.order_id is None and r.exec_type == "fill")
    )
    traded = _traded_at(conn, rows)
    firm = load_firm(conn)
    accounts = {a.account: a for a in book.list_accounts(conn)}
    symbols = sorted({r.symbol for r in rows})
    exchanges = book.exchanges_of(conn, symbols)
    out = []
    for r in rows:
        acct = accounts[r.account]
        counted_id, counted_client = counted.get((r.venue, r.exec_id), (None, None))
        out.append(
            ConfirmationInput(
                ExecutionFacts(
                    id=int(r.id),
                    exec_id=r.exec_id,
                    venue=r.venue,
                    account=r.account,
                    symbol=r.symbol,
                    side=Side(r.side),
                    quantity=r.quantity,
                    price=r.price,
                    currency=r.currency,
                    trade_date=r.trade_date,
                    settle_date=r.settle_date,
                    exec_time=r.exec_time,
                    commission=r.commission,
                    fees=r.fees,
                    order_id=r.order_id or counted_id,
                    client_order_id=r.client_order_id or counted_client,
                    exec_type=r.exec_type,
                    ref_exec_id=r.ref_exec_id,
                ),
                AccountInfo(acct.account, acct.name, acct.currency, acct.type.value),
                str(exchanges.get(r.symbol, "")),
                firm,
                now,
                traded.get((r.venue, r.exec_id)),
            )
        )
    return out


__all__ = [
    "TRADE_KINDS",
    "account_ids",
    "account_info",
    "business_days",
    "check_period",
    "confirmation_inputs",
    "exception_input",
    "statement_input",
]
