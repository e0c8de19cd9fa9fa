"""Breaks after a run: listing, ageing, and the workflow (assign, comment, resolve, approve).

A break is open until a later run finds its items matched (resolved by that run, reason
`matched`) or an operator resolves it with a reason code. Resolutions that write money off need
a second, different operator's approval (four eyes): the request is stored with the SHA-256 of
exactly what was asked (break, type, amount, differences, reason, note), and an approval is
refused when the break has changed since or when the approver is the requester. Every step is
a `break_events` row and an audit event, in one transaction.

Breaks age by business day of the firm's calendar (setting `recon.calendar`, default XNYS): a
break first seen on the business date D is 0 days old on D and n days old n sessions later.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import Connection, Row, select

from oms import audit, book
from oms.book import Ctx
from oms.calendars import business_days, canonical_exchange, check_exchange
from oms.errors import BadInput, NotFound, Refused
from oms.store import Store, next_id
from oms.values import dec_str, parse_ident, utc_iso
from recon.schema import break_events, recon_breaks, recon_runs


def is_row_ref(ref: str) -> bool:
    """A venue record named by its place in its file (it had no ref of its own)."""
    return "/row:" in ref or ref.startswith("row:")


OPEN: Final = "open"
RESOLVED: Final = "resolved"
STATUSES: Final = (OPEN, RESOLVED)
MATCHED: Final = "matched"  # resolved by a run that found the items matched
SUPERSEDED: Final = "superseded"  # its items now belong to another break
# Reason codes an operator can resolve with; those in WRITE_OFFS need a second operator.
REASONS: Final = (
    "timing",
    "booking_error",
    "venue_error",
    "duplicate",
    "written_off",
    "other",
)
WRITE_OFFS: Final = frozenset({"written_off"})
CALENDAR_SETTING: Final = "recon.calendar"
DEFAULT_CALENDAR: Final = "XNYS"


def firm_calendar(conn: Connection) -> str:
    return book.get_setting(conn, CALENDAR_SETTING) or DEFAULT_CALENDAR


def set_calendar(store: Store, ctx: Ctx, name: str) -> str:
    """Set the firm's calendar that breaks age by (an exchange calendar's code, an alias such
    as LSE, or 24/7), kept under the calendar's own code; audited (setting.set)."""
    code = canonical_exchange(check_exchange(name.strip()))
    with store.write() as conn:
        book.put_setting(conn, ctx, CALENDAR_SETTING, code, default=DEFAULT_CALENDAR)
    return code


@dataclass(frozen=True, slots=True)
class BreakView:
    """A break as `breaks list` shows it (contract fields first)."""

    row: Any
    age_days: int

    def as_json(self) -> dict[str, Any]:
        r = self.row
        return {
            "break_id": r.break_id,
            "run_id": r.last_run_id,
            "first_run_id": r.first_run_id,
            "profile": r.profile,
            "kind": r.kind,
            "type": r.type,
            "status": r.status,
            "account": r.account,
            "symbol": r.symbol,
            "currency": r.currency,
            "internal_refs": json.loads(r.internal_refs),
            "venue_refs": json.loads(r.venue_refs),
            "differences": json.loads(r.differences),
            "first_seen": r.first_seen.isoformat(),
            "age_days": self.age_days,
            "amount": dec_str(r.amount),
            "suggestion": r.suggestion,
            "owner": r.owner,
            "resolution": r.resolution,
            "resolution_note": r.resolution_note,
            "pending_approval": r.status == OPEN and r.request_hash is not None,
            "requested_by": r.requested_by,
            # what an approver passes to `breaks approve --hash`: the request they reviewed
            "request_hash": r.request_hash if r.status == OPEN else None,
            "resolved_by": r.resolved_by,
            "resolved_at": utc_iso(r.resolved_at) if r.resolved_at else None,
            "resolved_run_id": r.resolved_run_id,
        }


def list_breaks(
    conn: Connection,
    as_of: date,
    *,
    run_id: int | None = None,
    status: str = OPEN,
    profile: str | None = None,
    resolved_on: date | None = None,
) -> list[BreakView]:
    """Breaks by id; status open|resolved|all. `run_id` keeps those the run found, saw again
    or closed: the breaks of its profile open through it (found by it or before, and not
    closed before it); a break that later runs saw again was lost from the list of the run
    that found it."""
    if status not in (*STATUSES, "all"):
        raise BadInput("--status", f"{status!r} is not one of open, resolved, all")
    b = recon_breaks.c
    q = select(recon_breaks).order_by(b.break_id)
    if status != "all":
        q = q.where(b.status == status)
    if run_id is not None:
        require_run(conn, run_id)  # (not an empty list: exit 5)
        # the breaks of its profile open through the run (what its open_breaks counts, with
        # those it closed): found by it or before, and not closed before it, by a run or by
        # an operator (the breaks it keeps without a look, duplicates, count too)
        run = recon_runs.c
        of = select(run.profile).where(run.run_id == run_id).scalar_subquery()
        began = select(run.started_at).where(run.run_id == run_id).scalar_subquery()
        q = q.where(
            b.profile == of,
            b.first_run_id <= run_id,
            (b.status == OPEN)
            | (b.resolved_run_id >= run_id)
            | (b.resolved_run_id.is_(None) & (b.resolved_at >= began)),
        )
    if profile is not None:
        q = q.where(b.profile == profile)
    rows = conn.execute(q).all()
    if resolved_on is not None:
        rows = [
            r for r in rows if r.resolved_at is not None and r.resolved_at.date() == resolved_on
        ]
    calendar = firm_calendar(conn)
    return [
        BreakView(
            r,
            business_days(r.first_seen, r.resolved_at.date() if r.resolved_at else as_of, calendar),
        )
        for r in rows
    ]


def require_run(conn: Connection, run_id: int) -> None:
    """NotFound (exit 5) for a run the book does not have."""
    r = recon_runs.c
    if conn.execute(select(r.run_id).where(r.run_id == run_id)).first() is None:
        raise NotFound("recon run", str(run_id))


def get(conn: Connection, break_id: int) -> Row[Any]:
    row = conn.execute(select(recon_breaks).where(recon_breaks.c.break_id == break_id)).first()
    if row is None:
        raise NotFound("break", str(break_id))
    return row


def add_event(
    conn: Connection,
    ctx: Ctx,
    break_id: int,
    action: str,
    payload: dict[str, Any],
    *,
    run_id: int | None = None,
    audit_it: bool = True,
) -> None:
    """One step of a break's history, and (unless the caller audits in bulk) its audit event."""
    conn.execute(
        break_events.insert().values(
            event_id=next_id(conn, break_events, "event_id"),
            break_id=break_id,
            at=ctx.now,
            actor=ctx.actor,
            action=action,
            run_id=run_id,
            payload=audit.canonical_json(payload),
        )
    )
    if audit_it:
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="break." + action,
            entity_type="break",
            entity_id=str(break_id),
            payload=payload,
        )


def add_events(
    conn: Connection,
    ctx: Ctx,
    events: list[tuple[int, str, dict[str, Any]]],
    *,
    run_id: int | None = None,
) -> None:
    """Many steps at once, (break_id, action, payload) each, in one statement; the caller
    audits them in bulk (a run's own audit event)."""
    if not events:
        return
    first = next_id(conn, break_events, "event_id")
    conn.execute(
        break_events.insert(),
        [
            {
                "event_id": first + i,
                "break_id": break_id,
                "at": ctx.now,
                "actor": ctx.actor,
                "action": action,
                "run_id": run_id,
                "payload": audit.canonical_json(payload),
            }
            for i, (break_id, action, payload) in enumerate(events)
        ],
    )


def history(conn: Connection, break_id: int) -> list[dict[str, Any]]:
    get(conn, break_id)
    e = break_events.c
    return [
        {
            "at": utc_iso(r.at),
            "actor": r.actor,
            "action": r.action,
            "run_id": r.run_id,
            **json.loads(r.payload),
        }
        for r in conn.execute(
            select(break_events).where(e.break_id == break_id).order_by(e.event_id)
        )
    ]


def _not_open(row: Any, what: str) -> Refused | None:
    if row.status == OPEN:
        return None
    return Refused(
        f"{what} break {row.break_id}",
        f"it was resolved ({row.resolution}) by {row.resolved_by} at {utc_iso(row.resolved_at)}",
        "break_resolved",
    )


def _record_refusal(
    conn: Connection, ctx: Ctx, break_id: int, action: str, refusal: Refused, **payload: Any
) -> None:
    """A refused step on a break goes to the audit trail, committed before the refusal is
    raised (who tried what on which break, and why it was refused), as a refused order
    transition does."""
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action=action,
        entity_type="break",
        entity_id=str(break_id),
        payload={"reason": refusal.code, **payload},
    )


def assign(store: Store, ctx: Ctx, break_id: int, owner: str) -> dict[str, Any]:
    owner = parse_ident(owner, "--to")
    with store.write() as conn:
        row = get(conn, break_id)
        refusal = _not_open(row, "assign")
        if refusal is None:
            conn.execute(
                recon_breaks.update()
                .where(recon_breaks.c.break_id == break_id)
                .values(owner=owner, updated_at=ctx.now)
            )
            add_event(conn, ctx, break_id, "assigned", {"from": row.owner, "to": owner})
            return _view(conn, break_id, ctx)
        _record_refusal(conn, ctx, break_id, "break.assign_refused", refusal, to=owner)
    raise refusal


def comment(store: Store, ctx: Ctx, break_id: int, text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        raise BadInput("--text", "a comment needs some text")
    with store.write() as conn:
        refusal = _not_open(get(conn, break_id), "comment on")
        if refusal is None:
            add_event(conn, ctx, break_id, "commented", {"text": text})
            return _view(conn, break_id, ctx)
        _record_refusal(conn, ctx, break_id, "break.comment_refused", refusal, text=text)
    raise refusal


def request_content(row: Any, reason: str, note: str | None) -> dict[str, Any]:
    """Exactly what a resolution asks for: what the approver approves, by its hash. Not the
    run that saw the break last: a run that finds it unchanged changes nothing asked for (a
    write-off requested today could not be approved after tonight's run)."""
    return {
        "break_id": row.break_id,
        "break_key": row.break_key,
        "type": row.type,
        "amount": dec_str(row.amount),
        "currency": row.currency,
        "differences": json.loads(row.differences),
        "reason": reason,
        "note": note,
    }


def _request_hashes(row: Any) -> set[str]:
    """The hashes the pending request may carry for the break as it is now: its content's,
    and (a request made before the run was left out of it) with the run that saw it last,
    which holds only while no run has seen the break since."""
    content = request_content(row, row.resolution, row.resolution_note)
    return {content_hash(content), content_hash({**content, "last_run_id": row.last_run_id})}


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(audit.canonical_json(content).encode()).hexdigest()


def resolve(
    store: Store, ctx: Ctx, break_id: int, reason: str, note: str | None = None
) -> dict[str, Any]:
    """Resolve with a reason code; a write-off is only requested, for a second operator."""
    if reason not in REASONS:
        raise BadInput("--reason", f"{reason!r} is not one of {', '.join(REASONS)}")
    with store.write() as conn:
        row = get(conn, break_id)
        refusal = _not_open(row, "resolve")
        if refusal is None and row.request_hash is not None and row.requested_by == ctx.actor:
            # closing it another way oneself would get round the second pair of eyes asked for
            refusal = Refused(
                f"resolve break {break_id}",
                f"{ctx.actor} asked for a {row.resolution} resolution, which waits for another "
                "operator's approval; another operator may approve it or resolve it otherwise",
                "four_eyes",
            )
        if refusal is None:
            _resolve_open(conn, ctx, row, reason, note)
            return _view(conn, break_id, ctx)
        _record_refusal(
            conn, ctx, break_id, "break.resolution_refused", refusal, resolution=reason, note=note
        )
    raise refusal


def _resolve_open(conn: Connection, ctx: Ctx, row: Any, reason: str, note: str | None) -> None:
    if reason in WRITE_OFFS:
        content = request_content(row, reason, note)
        digest = content_hash(content)
        conn.execute(
            recon_breaks.update()
            .where(recon_breaks.c.break_id == row.break_id)
            .values(
                resolution=reason,
                resolution_note=note,
                requested_by=ctx.actor,
                request_hash=digest,
                updated_at=ctx.now,
            )
        )
        add_event(
            conn, ctx, row.break_id, "resolution_requested", {"request": content, "hash": digest}
        )
    else:
        _close(conn, ctx, row.break_id, reason, note)


def approve(
    store: Store, ctx: Ctx, break_id: int, expected_hash: str | None = None
) -> dict[str, Any]:
    """The second pair of eyes on a write-off: another operator, the very same request. A
    refused approval (one's own request, a changed break, another hash) is committed to the
    audit trail (break.approval_refused) before it is raised, as `tieout approve` does."""
    with store.write() as conn:
        row = get(conn, break_id)
        refusal = _not_open(row, "approve") or _approval_refused(row, ctx, expected_hash)
        if refusal is None:
            add_event(conn, ctx, break_id, "approved", {"hash": row.request_hash})
            _close(conn, ctx, break_id, row.resolution, row.resolution_note)
            return _view(conn, break_id, ctx)
        _record_refusal(
            conn,
            ctx,
            break_id,
            "break.approval_refused",
            refusal,
            hash=row.request_hash,
            expected_hash=expected_hash,
            requested_by=row.requested_by,
        )
    raise refusal


def _approval_refused(row: Any, ctx: Ctx, expected_hash: str | None) -> Refused | None:
    what = f"approve break {row.break_id}"
    if row.request_hash is None:
        return Refused(what, "no resolution waits for approval", "no_request")
    if row.requested_by == ctx.actor:
        return Refused(
            what,
            f"{ctx.actor} asked for this resolution; another operator must approve it",
            "four_eyes",
        )
    if row.request_hash not in _request_hashes(row):
        return Refused(
            what,
            "the break changed after the resolution was requested; request it again",
            "request_changed",
        )
    if expected_hash is not None and expected_hash != row.request_hash:
        return Refused(
            what,
            f"the request's hash is {row.request_hash}, not {expected_hash}: this approval "
            "is for something else",
            "hash_mismatch",
        )
    return None


def _close(
    conn: Connection,
    ctx: Ctx,
    break_id: int,
    reason: str,
    note: str | None,
    *,
    run_id: int | None = None,
    audit_it: bool = True,
) -> None:
    conn.execute(
        recon_breaks.update()
        .where(recon_breaks.c.break_id == break_id)
        .values(
            status=RESOLVED,
            resolution=reason,
            resolution_note=note,
            resolved_by=ctx.actor,
            resolved_at=ctx.now,
            resolved_run_id=run_id,
            updated_at=ctx.now,
        )
    )
    add_event(
        conn,
        ctx,
        break_id,
        "resolved",
        {"reason": reason, "note": note},
        run_id=run_id,
        audit_it=audit_it,
    )


def close_by_run(conn: Connection, ctx: Ctx, break_id: int, reason: str, run_id: int) -> None:
    """A run found the break's items matched (or now part of another break): it closes it.
    The run's own audit event covers it."""
    _close(
        conn, ctx, break_id, reason, f"closed by recon run {run_id}", run_id=run_id, audit_it=False
    )


def _view(conn: Connection, break_id: int, ctx: Ctx) -> dict[str, Any]:
    row = get(conn, break_id)
    calendar = firm_calendar(conn)
    as_of = row.resolved_at.date() if row.resolved_at else ctx.now.date()
    return BreakView(row, business_days(row.first_seen, as_of, calendar)).as_json()


def parse_break_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise BadInput("BREAK_ID", f"{text!r} is not a break id (a positive whole number)")
    return value
