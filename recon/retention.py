"""Reconciliation's retention class, declared as data for oms's retention machinery (oms must
not import recon: the composition root, cli, passes this in).

Class `recon` (setting retention.recon, default 6 years like the book of record):
- a break with its events, once it is resolved and its first business date, its last change,
  its resolution and every one of its events are before the cut-off (an open break is never
  archived, however old); an account hold keeps the breaks of that account (the break's account,
  and any account its venue records or events name);
- a run with its quarantined rows, once it started (and its business date is) before the
  cut-off and no break or break event that stays refers to it (first, last or resolving run);
  a hold keeps a run whose quarantined rows (raw venue rows, in the venue's own column names)
  hold a held account's name among their values.
The newest break, event and run always stay (their ids are max + 1). Profiles are configuration,
kept whole. Break changes are also in the audit trail, which keeps its own chain and class.

An open break also pins what it names in the book of record (`open_break_pins`), whatever the
book's own retention periods: a trade break's executions (its internal refs, by ExecID) and a
cash break's account and currency in the ledger stay live until the break is resolved. Archived,
they would be missing from the next run, which would close the break as if it had been dealt
with and open a false one in its place.
"""

from __future__ import annotations

import json
from typing import Final

from sqlalchemy import Connection, select

from oms.retention import ChildSpec, ClassSpec, GroupSpec, Pins
from recon import breaks
from recon.schema import recon_breaks


def open_break_pins(conn: Connection) -> Pins:
    """What the open breaks name in the book of record: a trade break's executions (its
    internal refs, and the venue refs that are ExecIDs: a duplicate_venue break names the
    booked execution only there), a cash break's account and currency, a position break's
    account and symbol."""
    b = recon_breaks.c
    exec_ids: set[str] = set()
    cash: set[tuple[str, str]] = set()
    positions: set[tuple[str, str]] = set()
    rows = conn.execute(
        select(b.kind, b.account, b.currency, b.symbol, b.internal_refs, b.venue_refs).where(
            b.status == breaks.OPEN
        )
    )
    for kind, account, currency, symbol, internal, venue in rows:
        if kind == "trades":
            exec_ids.update(json.loads(internal))
            exec_ids.update(r for r in json.loads(venue) if not breaks.is_row_ref(r))
        elif kind == "cash" and account and currency:
            cash.add((account, currency))
        elif kind == "positions" and account and symbol:
            positions.add((account, symbol))
    return Pins(frozenset(exec_ids), frozenset(cash), frozenset(positions))


RECON: Final = ClassSpec(
    name="recon",
    default_period="6y",
    groups=(
        GroupSpec(
            table="recon_breaks",
            key="break_id",
            times=("first_seen", "updated_at", "resolved_at"),
            final=("status", (breaks.RESOLVED,)),
            accounts=("account",),
            json_accounts=("venue_records",),
            children=(
                ChildSpec(
                    table="break_events",
                    parent="break_id",
                    times=("at",),
                    json_accounts=("payload",),
                    newest_kept="event_id",
                ),
            ),
        ),
        GroupSpec(
            table="recon_runs",
            key="run_id",
            times=("started_at", "business_date"),
            children=(
                ChildSpec(table="recon_quarantine", parent="run_id", raw_values=("values",)),
            ),
            referenced_by=(
                ("recon_breaks", "first_run_id"),
                ("recon_breaks", "last_run_id"),
                ("recon_breaks", "resolved_run_id"),
                ("break_events", "run_id"),
            ),
        ),
    ),
    append_only=frozenset({"recon_runs", "recon_quarantine", "break_events"}),
    description="reconciliation runs, quarantined rows, resolved breaks and their events",
    pins=open_break_pins,
)
