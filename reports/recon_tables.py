"""The few columns of reconciliation's tables that the exception report reads.

reports and recon are sibling layers (import-linter keeps them independent), so reports does not
import recon.schema: it names the tables and columns it needs here, with the book's column types
(oms.schema) so that decimals and times come back exact on both backends. These are read-only
views of tables that recon owns and migrates; tests check every name here against recon.schema.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Date, Integer, String, Text, column, table

from oms.schema import ExactDecimal, UTCDateTime

recon_runs = table(
    "recon_runs",
    column("run_id", Integer),
    column("kind", String),
    column("profile", String),
    column("venue", String),
    column("business_date", Date),
    column("input_path", Text),
    column("input_sha256", String),
    column("forced", Boolean),
    column("internal_rows", Integer),
    column("venue_rows", Integer),
    column("quarantined_rows", Integer),
    column("matched", Integer),
    column("breaks", Text),
    column("open_breaks", Integer),
    column("closed_breaks", Integer),
    column("started_at", UTCDateTime),
    column("duration_s", ExactDecimal),
    column("actor", String),
)

recon_quarantine = table(
    "recon_quarantine",
    column("run_id", Integer),
    column("row", Integer),
    column("values", Text),
    column("reasons", Text),
)

recon_breaks = table(
    "recon_breaks",
    column("break_id", Integer),
    column("profile", String),
    column("break_key", Text),  # the item's identity across runs
    column("kind", String),
    column("type", String),
    column("status", String),
    column("account", String),
    column("symbol", String),
    column("currency", String),
    column("internal_refs", Text),
    column("venue_refs", Text),
    column("differences", Text),
    column("amount", ExactDecimal),
    column("suggestion", Text),
    column("first_seen", Date),
    column("first_run_id", Integer),
    column("last_run_id", Integer),
    column("owner", String),
    column("resolution", String),
    column("resolution_note", Text),
    column("requested_by", String),
    column("request_hash", String),
    column("resolved_by", String),
    column("resolved_at", UTCDateTime),
    column("resolved_run_id", Integer),
)

break_events = table(
    "break_events",
    column("event_id", Integer),
    column("break_id", Integer),
    column("at", UTCDateTime),
    column("actor", String),
    column("action", String),
    column("run_id", Integer),
    column("payload", Text),
)

TABLES = (recon_runs, recon_quarantine, recon_breaks, break_events)
OPEN = "open"
COMMENTED = "commented"
CHANGED = "changed"  # a run found the break's figures changed (payload: name -> from, to)
ASSIGNED = "assigned"  # payload: from, to
REQUESTED = "resolution_requested"  # a write-off asked for (payload: request, hash)
TOOK_OVER = "took_over"  # a run handed a superseded break's owner and first date on
CALENDAR_SETTING = "recon.calendar"  # the firm's calendar that breaks age by
DEFAULT_CALENDAR = "XNYS"
