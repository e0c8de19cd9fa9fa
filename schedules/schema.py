"""The tables scheduled operations own, on the book's metadata (one schema, one Alembic history).

- `schedule_jobs`: the definition of each job (name, cron, timezone, tieout arguments, options).
  Adding, replacing and removing a job are audited.
- `schedule_runs`: every occurrence a scheduler (or `schedule trigger`) took on, one row per
  (job, scheduled time): the unique constraint is the claim, so that an occurrence runs once
  however many schedulers share the database. A running row carries its lease (owner,
  heartbeat, expiry), renewed while the job runs; on PostgreSQL the owner also holds a session
  advisory lock for the run. A run whose lease expired and whose owner is gone is abandoned.
- `schedule_alerts`: each alert sent (or that failed to go out) per channel (append-only).
- `apscheduler_jobs`: APScheduler 3's SQLAlchemyJobStore table (trigger state: next run time and
  the pickled job), created here so that the schema has one owner; APScheduler finds it present.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)

from oms.schema import UTCDateTime, metadata

_ID = BigInteger().with_variant(Integer, "sqlite")

APSCHEDULER_TABLE = "apscheduler_jobs"

schedule_jobs = Table(
    "schedule_jobs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),  # "command" or the built-in kind that made it
    Column("cron", String(128), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("calendar", String(32), nullable=True),  # None: setting schedule.calendar, else XNYS
    Column("args", Text, nullable=False),  # JSON list of tieout arguments (templates unresolved)
    Column("sessions_only", Boolean, nullable=False),
    Column("misfire_grace_s", Integer, nullable=False),
    Column("thresholds", Text, nullable=False),  # JSON object: per-job alert thresholds
    Column("run_as", String(64), nullable=False),  # actor of the changes the job makes
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
)

schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("run_id", _ID, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("scheduled_at", UTCDateTime, nullable=False),
    Column("trigger", String(16), nullable=False),  # scheduler | cron | manual
    Column("status", String(16), nullable=False),  # running|succeeded|failed|abandoned|skipped
    Column("reason", Text, nullable=True),
    Column("business_date", Date, nullable=True),
    Column("command", Text, nullable=True),  # JSON list: the resolved tieout arguments
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("output_tail", Text, nullable=True),
    Column("owner", String(160), nullable=False),  # host/pid/token of the scheduler
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    UniqueConstraint("job", "scheduled_at"),  # the claim: one occurrence, one run
    Index("ix_schedule_runs_status", "status"),
)

schedule_alerts = Table(
    "schedule_alerts",
    metadata,
    Column("alert_id", _ID, primary_key=True, autoincrement=True),
    Column("run_id", _ID, nullable=True),
    Column("job", String(64), nullable=True),
    Column("channel", String(16), nullable=False),  # email | webhook | log
    Column("status", String(16), nullable=False),  # sent | failed | logged
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("subject", Text, nullable=False),
    Column("payload", Text, nullable=False),  # the JSON document sent
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_schedule_alerts_run_id", "run_id"),
)

# APScheduler 3.x SQLAlchemyJobStore's table, column for column.
apscheduler_jobs = Table(
    APSCHEDULER_TABLE,
    metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)

APPEND_ONLY_TABLES = ("schedule_alerts",)
