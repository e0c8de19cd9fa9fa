"""The trigger of a job's schedule: APScheduler's CronTrigger, firing as cron does in the hour
the clocks go back. In a module of its own so that APScheduler is imported only where a trigger
is made (the daemon, `schedule trigger`), and so that the daemon's job store (which pickles its
triggers) finds the class by its name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from schedules.cron import a_second_after, second_of_repeated


class CronOnceInRepeatedHour(CronTrigger):  # type: ignore[misc]
    """A CronTrigger that, like cron, does not fire a fixed-time job (neither its minute nor its
    hour a wildcard) a second time in the hour the clocks go back: `30 1 * * *` in New York
    runs once on 2026-11-01, not at 01:30 EDT and again at 01:30 EST. A job with a wildcard
    (`*/20 * * * *`) fires through both hours, as cron's do."""

    def get_next_fire_time(self, previous: Any, now: datetime) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous, now)
        while fire is not None and second_of_repeated(fire) and self._fixed_time():
            fire = super().get_next_fire_time(fire, a_second_after(fire))
        return fire

    def _fixed_time(self) -> bool:
        by = {f.name: str(f) for f in self.fields}
        return not (by["minute"].startswith("*") or by["hour"].startswith("*"))
