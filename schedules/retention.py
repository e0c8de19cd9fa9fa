"""Schedules' retention class, declared as data for oms's retention machinery (oms must not
import schedules: the composition root, cli, passes this in).

Class `schedules` (setting retention.schedules, default 3 years: the run history is operational
evidence - what ran, when, with which exit code - not a book of record; what the jobs did is in
the book and its audit trail, under their own classes):
- a run of the history once it is over (succeeded, failed, abandoned, skipped: never a running
  one) and it started and ended before the cut-off; an account hold keeps the runs whose
  command names the account (`--account A`);
- an alert sent (or that failed to go out) once it was made before the cut-off; a hold keeps
  those whose payload names a held account.
The newest run and alert stay (their ids come from the table's sequence, on SQLite max + 1).
Job definitions are configuration, kept whole.
"""

from __future__ import annotations

from typing import Final

from oms.retention import ClassSpec, GroupSpec
from schedules import runs

RUN_FINAL: Final = tuple(s for s in runs.STATUSES if s != "running")

SCHEDULES: Final = ClassSpec(
    name="schedules",
    default_period="3y",
    groups=(
        GroupSpec(
            table="schedule_alerts",
            key="alert_id",
            times=("created_at",),
            json_accounts=("payload",),
        ),
        GroupSpec(
            table="schedule_runs",
            key="run_id",
            times=("started_at", "ended_at"),
            final=("status", RUN_FINAL),
            json_accounts=("command",),
            referenced_by=(("schedule_alerts", "run_id"),),  # an alert that stays keeps its run
        ),
    ),
    append_only=frozenset({"schedule_alerts"}),
    description="the scheduler's run history and the alerts it sent",
)
