"""Runs: the claim of an occurrence, its lease and heartbeat, its end, abandonment, history.

One occurrence runs once: the claim is a row of `schedule_runs`, unique per (job, scheduled
time); whichever scheduler inserts it first runs the occurrence, the others find it taken.
While the job runs its owner renews the lease (`lease_expires_at`) from a heartbeat; on
PostgreSQL the owner also holds a session advisory lock named after the run, which the database
releases the moment the owner's connection dies. A run whose lease has expired and whose owner
is gone (PostgreSQL: its advisory lock is free; SQLite, whose schedulers share one machine: the
owner's process no longer exists) is marked abandoned by whoever looks next: a scheduler's
maintenance pass, `schedule trigger` or `schedule history`.

These bookkeeping writes do not take the book lock: a long reconciliation holding it must not
stop the heartbeat of the job that runs it.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.exc import IntegrityError

from oms.store import Store
from oms.values import utc_iso
from schedules.schema import schedule_runs

RUN_LOCK_CLASS = 0x74696573  # first key of the runs' advisory locks ("ties")
OUTPUT_TAIL_CHARS = 4000
STATUSES = ("running", "succeeded", "failed", "abandoned", "skipped")


def make_owner() -> str:
    """host/pid/token: names one scheduler process (or one `schedule trigger`)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def owner_alive_here(owner: str) -> bool:
    """Whether the owner is a live process of this machine (False when it cannot be known)."""
    host, _, rest = owner.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def bookkeeping(store: Store) -> Iterator[Connection]:
    """A short write transaction (BEGIN IMMEDIATE on SQLite) without the book lock."""
    with store.engine.connect() as conn:
        conn.info["write"] = True
        with conn.begin():
            yield conn


def _lock_sql(fn: str) -> Any:
    return text(
        f"SELECT {fn}(:cls, hashtext(current_schema() || '/schedule_run/' || CAST(:run AS text)))"
    )


class RunLock:
    """The owner's PostgreSQL advisory lock of a run (a no-op on SQLite)."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.run_id = run_id
        self.conn: Connection | None = None
        self.held = False
        if store.dialect != "postgresql":
            return
        self.conn = store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.held = bool(
            self.conn.execute(
                _lock_sql("pg_try_advisory_lock"), {"cls": RUN_LOCK_CLASS, "run": run_id}
            ).scalar()
        )

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            if self.held:
                self.conn.execute(
                    _lock_sql("pg_advisory_unlock"), {"cls": RUN_LOCK_CLASS, "run": self.run_id}
                )
        finally:
            # never back into the pool: a session that still held the lock (a failed unlock)
            # would keep the run looking alive; closing the session releases every lock
            self.conn.invalidate()
            self.conn.close()
            self.conn = None


@dataclass(frozen=True, slots=True)
class Claimed:
    run_id: int
    status: str  # running, or skipped (another run of the job still holds its lease)
    reason: str | None = None
    behind: int | None = None  # skipped behind this run of the job, still running


def claim(
    store: Store,
    *,
    job: str,
    scheduled_at: datetime,
    trigger: str,
    owner: str,
    now: datetime,
    lease_s: float,
    skip_reason: str | None = None,
) -> Claimed | None:
    """Take an occurrence: a running row with its lease, or a skipped row when the job's previous
    run still holds a live lease or `skip_reason` is given; None when another has it already."""
    r = schedule_runs.c
    try:
        with bookkeeping(store) as conn:
            reason, behind = skip_reason, None
            if reason is None:
                busy = conn.execute(
                    select(r.run_id)
                    .where(r.job == job, r.status == "running", r.lease_expires_at > now)
                    .order_by(r.run_id.desc())  # the latest, should there be several
                ).first()
                if busy is not None:
                    behind = int(busy.run_id)
                    reason = f"run {behind} of {job} is still running"
            status = "running" if reason is None else "skipped"
            result = conn.execute(
                schedule_runs.insert().values(
                    job=job,
                    scheduled_at=scheduled_at,
                    trigger=trigger,
                    status=status,
                    reason=reason,
                    started_at=now,
                    ended_at=None if status == "running" else now,
                    owner=owner,
                    heartbeat_at=now if status == "running" else None,
                    lease_expires_at=now + timedelta(seconds=lease_s)
                    if status == "running"
                    else None,
                )
            )
            key = result.inserted_primary_key
            if key is None:
                raise RuntimeError("the database returned no run id")
            run_id = int(key[0])
    except IntegrityError:
        return None
    return Claimed(run_id, status, reason, behind)


def skipped_before(store: Store, job: str, claimed: Claimed) -> bool:
    """Whether an earlier occurrence of the job was skipped behind the same run, still
    running (its reason names that run): said once, not at each occurrence."""
    if claimed.behind is None:
        return False
    r = schedule_runs.c
    with store.read() as conn:
        found = conn.execute(
            select(r.run_id)
            .where(
                r.job == job,
                r.status == "skipped",
                r.reason == claimed.reason,
                r.run_id < claimed.run_id,
            )
            .limit(1)
        ).first()
    return found is not None


def claimed_by(store: Store, job: str, scheduled_at: datetime) -> int | None:
    with store.read() as conn:
        value = conn.execute(
            select(schedule_runs.c.run_id).where(
                schedule_runs.c.job == job, schedule_runs.c.scheduled_at == scheduled_at
            )
        ).scalar()
    return None if value is None else int(value)


def started(
    store: Store, run_id: int, owner: str, command: Sequence[str], business_date: date | None
) -> None:
    r = schedule_runs.c
    with bookkeeping(store) as conn:
        conn.execute(
            schedule_runs.update()
            .where(r.run_id == run_id, r.owner == owner, r.status == "running")
            .values(command=json.dumps(list(command)), business_date=business_date)
        )


def renew(store: Store, run_id: int, owner: str, now: datetime, lease_s: float) -> bool:
    """The heartbeat: extend the lease; False when the run is no longer this owner's."""
    r = schedule_runs.c
    with bookkeeping(store) as conn:
        result = conn.execute(
            schedule_runs.update()
            .where(r.run_id == run_id, r.owner == owner, r.status == "running")
            .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_s))
        )
    return result.rowcount == 1


def finish(
    store: Store,
    run_id: int,
    owner: str,
    *,
    status: str,
    now: datetime,
    exit_code: int | None = None,
    reason: str | None = None,
    output_tail: str | None = None,
    command: Sequence[str] | None = None,
    business_date: date | None = None,
) -> bool:
    """Record the end of a run; False when it was no longer this owner's (abandoned meanwhile)."""
    r = schedule_runs.c
    values: dict[str, Any] = {
        "status": status,
        "ended_at": now,
        "exit_code": exit_code,
        "reason": reason,
        "output_tail": output_tail,
        "lease_expires_at": None,
    }
    if command is not None:
        values["command"] = json.dumps(list(command))
    if business_date is not None:
        values["business_date"] = business_date
    with bookkeeping(store) as conn:
        result = conn.execute(
            schedule_runs.update()
            .where(r.run_id == run_id, r.owner == owner, r.status == "running")
            .values(**values)
        )
    return result.rowcount == 1


def _owner_alive(store: Store, conn: Connection | None, run_id: int, owner: str) -> bool:
    if store.dialect == "postgresql" and conn is not None:
        got = bool(
            conn.execute(
                _lock_sql("pg_try_advisory_lock"), {"cls": RUN_LOCK_CLASS, "run": run_id}
            ).scalar()
        )
        if got:
            conn.execute(_lock_sql("pg_advisory_unlock"), {"cls": RUN_LOCK_CLASS, "run": run_id})
        return not got
    return owner_alive_here(owner)


def reap(store: Store, now: datetime) -> list[dict[str, Any]]:
    """Mark abandoned every run whose lease has expired and whose owner is gone; returns them."""
    r = schedule_runs.c
    with store.read() as conn:
        candidates = conn.execute(
            select(r.run_id, r.owner, r.lease_expires_at).where(
                r.status == "running", r.lease_expires_at < now
            )
        ).all()
    if not candidates:
        return []
    abandoned: list[int] = []
    lock_conn = (
        store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if store.dialect == "postgresql"
        else None
    )
    try:
        for c in candidates:
            if _owner_alive(store, lock_conn, int(c.run_id), str(c.owner)):
                continue
            reason = (
                f"lease expired at {utc_iso(c.lease_expires_at)}: "
                f"its scheduler {c.owner} stopped renewing it"
            )
            with bookkeeping(store) as conn:
                result = conn.execute(
                    schedule_runs.update()
                    .where(r.run_id == c.run_id, r.status == "running", r.lease_expires_at < now)
                    .values(status="abandoned", ended_at=now, reason=reason, lease_expires_at=None)
                )
            if result.rowcount == 1:
                abandoned.append(int(c.run_id))
    finally:
        if lock_conn is not None:
            lock_conn.close()
    if not abandoned:
        return []
    with store.read() as conn:
        rows = conn.execute(
            select(schedule_runs).where(r.run_id.in_(abandoned)).order_by(r.run_id)
        ).all()
    return [run_json(row) for row in rows]


def _duration(row: Any) -> str | None:
    if row.ended_at is None or row.started_at is None:
        return None
    return f"{(row.ended_at - row.started_at).total_seconds():.3f}"


def run_json(row: Any) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "job": row.job,
        "trigger": row.trigger,
        "scheduled_at": utc_iso(row.scheduled_at),
        "status": row.status,
        "reason": row.reason,
        "business_date": row.business_date.isoformat() if row.business_date else None,
        "command": json.loads(row.command) if row.command else None,
        "started_at": utc_iso(row.started_at),
        "ended_at": utc_iso(row.ended_at) if row.ended_at else None,
        "duration_s": _duration(row),
        "exit_code": row.exit_code,
        "output_tail": row.output_tail,
        "owner": row.owner,
        "lease_expires_at": utc_iso(row.lease_expires_at) if row.lease_expires_at else None,
    }


def get_run(conn: Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(schedule_runs).where(schedule_runs.c.run_id == run_id)).first()
    return None if row is None else run_json(row)


def history(
    conn: Connection,
    *,
    job: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Runs, oldest first (the latest `limit` of them)."""
    r = schedule_runs.c
    q = select(schedule_runs).order_by(r.run_id.desc())
    if job is not None:
        q = q.where(r.job == job)
    if status is not None:
        q = q.where(r.status == status)
    if limit is not None:
        q = q.limit(limit)
    return [run_json(row) for row in reversed(conn.execute(q).all())]


def tail(text_out: str, chars: int = OUTPUT_TAIL_CHARS) -> str:
    """The end of a job's output (pure)."""
    return text_out if len(text_out) <= chars else "..." + text_out[-(chars - 3) :]
