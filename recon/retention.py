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
"""

from __future__ import annotations

from typing import Final

from oms.retention import ChildSpec, ClassSpec, GroupSpec
from recon import breaks

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
)
