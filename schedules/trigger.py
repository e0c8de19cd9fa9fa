"""The trigger of a job's schedule: APScheduler's CronTrigger, firing as cron does in the hour
the clocks go back. In a module of its own so that APScheduler is imported only where a trigger
is made (the daemon, `schedule trigger`), and so that the daemon's job store (which pickles its
triggers) finds the class by its name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from schedules.cron import a_second_after, second_of_repeated


class CronOnceInRepeatedHour(CronTrigger):  # type: ignore[misc]
    """A CronTrigger that fires a fixed-time job (neither its minute nor its hour a wildcard) as
    cron does when the clocks change:

    - not a second time in the hour the clocks go back: `30 1 * * *` in New York runs once on
      2026-11-01, not at 01:30 EDT and again at 01:30 EST;
    - at the moment the clocks go forward when its time is in the hour skipped: `30 2 * * *`
      runs at 03:00 EDT on 2026-03-08 (07:00Z), as cron runs it, where APScheduler fired at
      03:30 EDT; the crontab lines (`schedule trigger --scheduled` at 03:00) found no
      occurrence then, and the job did not run that day on that path.

    A job with a wildcard (`*/20 * * * *`) fires through both hours of the fall, and skips the
    hour that does not exist, as cron's do. Not handled: zones whose clocks skip midnight
    (Africa/Cairo, America/Santiago, America/Havana: 00:00 to 01:00), where APScheduler passes
    over the whole day, so a job in that hour does not run that day."""

    def get_next_fire_time(self, previous: Any, now: datetime) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous, now)
        if fire is None or not self._fixed_time():
            return fire
        while fire is not None and second_of_repeated(fire):
            fire = super().get_next_fire_time(fire, a_second_after(fire))
        if fire is not None and _skipped(fire):
            fire = _clocks_changed(fire)  # cron runs it when the clocks change
        return fire

    def _fixed_time(self) -> bool:
        by = {f.name: str(f) for f in self.fields}
        return not (by["minute"].startswith("*") or by["hour"].startswith("*"))


def _skipped(fire: datetime) -> bool:
    """Whether a time of a zone is a wall-clock time its clocks skipped (02:30 in New York on
    2026-03-08): APScheduler gives it as it is, which is the instant an hour after it."""
    back = fire.astimezone(UTC).astimezone(fire.tzinfo)
    return back.replace(tzinfo=None) != fire.replace(tzinfo=None)


def _clocks_changed(fire: datetime) -> datetime:
    """The moment the clocks went forward before a skipped time, in its zone: the first minute
    back from the instant it stands for whose offset is the one before."""
    at = fire.astimezone(UTC)
    zone = fire.tzinfo
    after = at.astimezone(zone).utcoffset()
    for minutes in range(1, 24 * 60):
        if (at - timedelta(minutes=minutes)).astimezone(zone).utcoffset() != after:
            return (at - timedelta(minutes=minutes - 1)).astimezone(zone)
    return at.astimezone(zone)
