"""The tables reconciliation owns, on the book's metadata (one schema, one Alembic history).

- `recon_profiles`: venue profiles kept in the database, each version kept (append-only).
- `recon_runs`: one row per run (append-only): profile and version, input digest, counts.
- `recon_quarantine`: the venue rows a run refused, with their raw values and every reason
  (append-only).
- `recon_breaks`: the current state of each break; a break keeps its identity (profile + key)
  across runs until it is resolved. Its every change is a row of `break_events` (append-only),
  and an audit event.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from oms.schema import ExactDecimal, UTCDateTime, metadata

_ID = BigInteger().with_variant(Integer, "sqlite")

recon_profiles = Table(
    "recon_profiles",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),  # sha256 of the canonical profile text
    Column("kind", String(16), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("text", Text, nullable=False),  # the TOML as given
    Column("added_at", UTCDateTime, nullable=False),
    Column("added_by", String(64), nullable=False),
)

recon_runs = Table(
    "recon_runs",
    metadata,
    Column("run_id", _ID, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("profile", String(64), nullable=False),
    Column("profile_version", String(64), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("input_path", Text, nullable=False),
    Column("input_sha256", String(64), nullable=False),
    Column("forced", Boolean, nullable=False),
    Column("internal_rows", Integer, nullable=False),
    Column("venue_rows", Integer, nullable=False),
    Column("quarantined_rows", Integer, nullable=False),
    Column("matched", Integer, nullable=False),
    Column("breaks", Text, nullable=False),  # canonical JSON {type: count} of the run's breaks
    Column("open_breaks", Integer, nullable=False),  # open after the run, of this profile
    Column("closed_breaks", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_s", ExactDecimal, nullable=False),
    Column("actor", String(64), nullable=False),
    Index("ix_recon_runs_profile_date", "profile", "business_date"),
)

recon_quarantine = Table(
    "recon_quarantine",
    metadata,
    Column("run_id", _ID, ForeignKey("recon_runs.run_id"), primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("values", Text, nullable=False),  # canonical JSON of the raw fields
    Column("reasons", Text, nullable=False),  # JSON list of every reason
)

recon_breaks = Table(
    "recon_breaks",
    metadata,
    Column("break_id", _ID, primary_key=True, autoincrement=False),
    Column("profile", String(64), nullable=False),
    Column("break_key", Text, nullable=False),  # identity across runs (recon.engine)
    Column("kind", String(16), nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # open | resolved
    Column("account", String(64), nullable=True),
    Column("symbol", String(64), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("internal_refs", Text, nullable=False),  # JSON list
    Column("venue_refs", Text, nullable=False),  # JSON list
    Column("venue_records", Text, nullable=False),  # JSON list of canonical venue rows
    Column("differences", Text, nullable=False),  # canonical JSON
    Column("amount", ExactDecimal, nullable=False),
    Column("suggestion", Text, nullable=True),
    Column("first_seen", Date, nullable=False),  # business date of the run that found it
    Column("first_run_id", _ID, ForeignKey("recon_runs.run_id"), nullable=False),
    Column("last_run_id", _ID, ForeignKey("recon_runs.run_id"), nullable=False),
    Column("owner", String(64), nullable=True),
    Column("resolution", String(32), nullable=True),  # reason code once resolved / requested
    Column("resolution_note", Text, nullable=True),
    Column("requested_by", String(64), nullable=True),  # who asked for a write-off
    Column("request_hash", String(64), nullable=True),  # what exactly they asked (four eyes)
    Column("resolved_by", String(64), nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolved_run_id", _ID, ForeignKey("recon_runs.run_id"), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_recon_breaks_profile_status", "profile", "status"),
    Index("ix_recon_breaks_profile_key", "profile", "break_key"),
)

break_events = Table(
    "break_events",
    metadata,
    Column("event_id", _ID, primary_key=True, autoincrement=False),
    Column("break_id", _ID, ForeignKey("recon_breaks.break_id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("run_id", _ID, nullable=True),
    Column("payload", Text, nullable=False),  # canonical JSON
    Index("ix_break_events_break_id", "break_id"),
)

APPEND_ONLY_TABLES = ("recon_profiles", "recon_runs", "recon_quarantine", "break_events")
