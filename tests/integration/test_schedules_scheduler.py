"""Real schedulers (`tieout schedule run` in processes of their own) on both backends, with
seconds-level triggers: two side by side run each occurrence once; one killed with SIGKILL
mid-job leaves a run that is marked abandoned once its lease expires; SIGTERM lets running jobs
finish or, past the stop timeout, ends them and records them abandoned."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from oms.store import Store
from oms.values import utc_iso
from schedules import runs
from tests.integration.test_schedules_alerts import fake_program, ok

LEASE = "3"


def history(db_url: str, job: str | None = None) -> list[dict[str, Any]]:
    store = Store.open(db_url)
    try:
        with store.read() as conn:
            return runs.history(conn, job=job)
    finally:
        store.dispose()


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Schedulers:
    """Starts `tieout schedule run` processes and stops whatever is left at the end."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.db_url, self.tmp_path = db_url, tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = tmp_path / "ran.jsonl"
        self.program = fake_program(tmp_path)

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        cmd = [
            sys.executable, "-m", "cli.main", "schedule", "run", "--db", self.db_url,
            "--poll", "0.5", "--lease", LEASE, "--heartbeat", "0.5", *extra,
        ]  # fmt: skip
        env = {
            **os.environ,
            "TIEOUT_PROGRAM": self.program,
            "FAKE_LOG": str(self.log),
            "TIEOUT_ACTOR": "scheduler-test",
        }
        err = (self.tmp_path / f"scheduler{n}.log").open("wb")
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env, cwd=self.tmp_path
        )
        self.procs.append(proc)
        return proc

    def output(self, n: int) -> str:
        return (self.tmp_path / f"scheduler{n}.log").read_text()

    def ran(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def wait(self, n: int, timeout: float = 30) -> int:
        """The exit code of scheduler n; its threads' stacks in the failure if it hangs."""
        proc = self.procs[n]
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack
            time.sleep(1)
            raise AssertionError(f"scheduler {n} did not stop:\n{self.output(n)}") from None

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for r in self.ran():  # jobs orphaned by a killed scheduler
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(r["pid"]), signal.SIGKILL)


@pytest.fixture
def schedulers(db_url: str, tmp_path: Path) -> Iterator[Schedulers]:
    ok(db_url, "init")
    s = Schedulers(db_url, tmp_path)
    yield s
    s.stop_all()


def test_two_schedulers_run_each_occurrence_once(db_url: str, schedulers: Schedulers) -> None:
    ok(db_url, "schedule", "add", "tick", "--cron", "* * * * * *", "--", "sleep", "0.3")
    a, b = schedulers.start(), schedulers.start()
    wait_for(
        "both schedulers",
        lambda: "started on" in schedulers.output(0) and "started on" in schedulers.output(1),
    )
    before = len(history(db_url, "tick"))
    wait_for(  # three occurrences while both schedulers are up
        "three more runs",
        lambda: sum(r["status"] == "succeeded" for r in history(db_url, "tick")[before:]) >= 3,
    )
    a.send_signal(signal.SIGTERM)
    b.send_signal(signal.SIGINT)  # Ctrl-C stops a scheduler as cleanly as SIGTERM
    assert schedulers.wait(0) == 0, schedulers.output(0)
    assert schedulers.wait(1) == 0, schedulers.output(1)
    done = history(db_url, "tick")
    ran = schedulers.ran()
    scheduled = [r["scheduled_at"] for r in done]
    assert len(scheduled) == len(set(scheduled))
    started = [r["at"] for r in ran]
    assert len(started) == len(set(started)), "an occurrence ran twice"
    assert sorted(started) == sorted(r["scheduled_at"] for r in done if r["status"] != "skipped")
    assert all(r["status"] in ("succeeded", "skipped") for r in done), done
    assert {r["trigger"] for r in done} == {"scheduler"}
    assert all(r["scheduled_at"][20:26] == "000000" for r in done)  # whole seconds
    assert all(r["exit_code"] == 0 for r in done if r["status"] == "succeeded")
    assert all(x["actor"] == "tester" for x in ran)  # the job runs as the one who added it
    for n, name in ((0, "SIGTERM"), (1, "SIGINT")):
        log = schedulers.output(n)
        assert f"{name}: stopping" in log
        assert "stopped" in log
    joined = schedulers.output(0) + schedulers.output(1)
    for r in done:
        if r["status"] == "succeeded":
            assert f"run {r['run_id']} started" in joined
            assert f"run {r['run_id']} ended: succeeded" in joined
    # the owners: one process per run, each one of the two schedulers
    owners = {r["owner"].split("/")[1] for r in done}
    assert owners <= {str(a.pid), str(b.pid)}


def test_killed_scheduler_leaves_an_abandoned_run(db_url: str, schedulers: Schedulers) -> None:
    ok(db_url, "schedule", "add", "slow", "--cron", "* * * * * *", "--", "sleep", "30")
    victim = schedulers.start()
    first = wait_for(
        "a running job",
        lambda: next((r for r in history(db_url, "slow") if r["status"] == "running"), None),
    )
    wait_for("the job's process", schedulers.ran)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    again = {r["run_id"]: r for r in history(db_url, "slow")}[first["run_id"]]
    assert again["status"] == "running"  # its lease has not expired yet
    # `schedule history` looks for runs whose lease expired and whose scheduler is gone
    ended = wait_for(
        "the run to be abandoned",
        lambda: next(
            (
                r
                for r in ok(db_url, "schedule", "history", "--json").json()
                if r["run_id"] == first["run_id"] and r["status"] == "abandoned"
            ),
            None,
        ),
        timeout=30,
    )
    assert time.monotonic() - killed_at >= float(LEASE) - 1.0
    assert ended["reason"].startswith("lease expired")
    assert ended["ended_at"] is not None
    assert all(r["status"] != "running" for r in history(db_url, "slow"))
    # the runs the killed scheduler skipped meanwhile (the job was still running)
    skipped = [r for r in history(db_url, "slow") if r["status"] == "skipped"]
    assert all("still running" in str(r["reason"]) for r in skipped)


def test_sigterm_ends_a_long_job_after_the_stop_timeout(
    db_url: str, schedulers: Schedulers
) -> None:
    ok(db_url, "schedule", "add", "long", "--cron", "* * * * * *", "--", "sleep", "30")
    proc = schedulers.start("--stop-timeout", "0.5")
    run = wait_for(
        "a running job",
        lambda: next((r for r in history(db_url, "long") if r["status"] == "running"), None),
    )
    child = wait_for("the job's process", schedulers.ran)[0]
    proc.send_signal(signal.SIGTERM)
    assert schedulers.wait(0) == 0, schedulers.output(0)
    [ended] = [r for r in history(db_url, "long") if r["run_id"] == run["run_id"]]
    assert ended["status"] == "abandoned"
    assert ended["reason"] == "the scheduler was stopped before the job ended"
    assert ended["exit_code"] == -signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(int(child["pid"]), 0)
    assert all(r["status"] != "running" for r in history(db_url))
    alerts = ok(db_url, "schedule", "alerts", "--json").json()
    assert any(
        a["run_id"] == run["run_id"] and a["findings"][0]["kind"] == "abandoned" for a in alerts
    )


def test_a_standby_scheduler_recovers_a_killed_ones_run(
    db_url: str, schedulers: Schedulers
) -> None:
    """The issue's drill: two schedulers on one database, the one running a job is SIGKILLed;
    the standby marks its run abandoned once the lease expires (read here without any
    maintenance of our own) and goes on running the job's later occurrences."""
    ok(db_url, "schedule", "add", "slow", "--cron", "* * * * * *", "--", "sleep", "30")
    victim = schedulers.start()
    first = wait_for(
        "a running job",
        lambda: next((r for r in history(db_url, "slow") if r["status"] == "running"), None),
    )
    wait_for("the job's process", schedulers.ran)
    schedulers.start()  # the standby
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    ended = wait_for(
        "the standby to mark the run abandoned",
        lambda: next(
            (
                r
                for r in history(db_url, "slow")
                if r["run_id"] == first["run_id"] and r["status"] == "abandoned"
            ),
            None,
        ),
        timeout=40,
    )
    assert ended["reason"].startswith("lease expired")
    later = wait_for(
        "the standby to run a later occurrence",
        lambda: [
            r
            for r in history(db_url, "slow")
            if r["run_id"] != first["run_id"] and r["status"] in ("running", "succeeded")
        ],
        timeout=40,
    )
    assert all(r["scheduled_at"] > first["scheduled_at"] for r in later)


def test_missed_occurrences_are_coalesced_into_one_run(db_url: str, schedulers: Schedulers) -> None:
    """While no scheduler runs, an every-second job misses several occurrences; the next
    scheduler runs them as one (within the misfire grace), not one per missed second. The
    others are recorded as missed, with one alert for them all: APScheduler dropped them
    without a trace (a daily recon down Thursday and Friday: only Friday was mentioned)."""
    ok(db_url, "schedule", "add", "tick", "--cron", "* * * * * *", "--misfire-grace", "60",
       "--", "sleep", "0.1")  # fmt: skip
    first = schedulers.start()
    wait_for("a first run", lambda: any(r["status"] == "succeeded" for r in history(db_url)))
    first.send_signal(signal.SIGTERM)
    assert schedulers.wait(0) == 0, schedulers.output(0)
    stopped = max(r["scheduled_at"] for r in history(db_url, "tick"))
    time.sleep(4)  # four or five occurrences go by with nobody to run them
    restarted = utc_iso(datetime.now(UTC))
    second = schedulers.start()
    wait_for(
        "two runs after the restart",
        lambda: sum(r["scheduled_at"] > restarted for r in history(db_url, "tick")) >= 2,
    )
    second.send_signal(signal.SIGTERM)
    assert schedulers.wait(1) == 0, schedulers.output(1)
    in_gap = [
        r for r in history(db_url, "tick") if stopped < r["scheduled_at"] < restarted
    ]  # fmt: skip
    # coalesced: one run, scheduled at the latest missed second (after `restarted` when the
    # process took past the next second to start, else the last second before it, in the
    # gap); every other second of the gap is recorded as missed, in its own place
    ran = [r for r in in_gap if r["status"] != "skipped"]
    missed = [r for r in in_gap if r["status"] == "skipped"]
    shown = [(r["scheduled_at"], r["status"], r["reason"]) for r in in_gap]
    assert len(ran) <= 1, shown
    assert len(missed) >= 3, shown
    assert all(r["reason"].startswith("missed: the scheduler was not running") for r in missed), (
        shown
    )
    seconds = sorted(r["scheduled_at"] for r in in_gap)
    gaps = {
        (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
        for a, b in itertools.pairwise(seconds)
    }
    assert gaps <= {1.0}, seconds  # not one second of the gap without its record
    alerted = [
        a for a in ok(db_url, "schedule", "alerts", "--json").json()
        if a["run_id"] in {r["run_id"] for r in missed}
    ]  # fmt: skip
    assert len(alerted) == 1, alerted  # one alert for them all, with the count
    assert "occurrence(s) missed from" in alerted[0]["findings"][0]["message"]
    after = sorted(
        r["scheduled_at"] for r in history(db_url, "tick") if r["scheduled_at"] > stopped
    )
    assert len(after) == len(set(after)) >= 2


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_schedule_trigger_with_its_exit_code(
    db_url: str, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """`schedule trigger` stopped by SIGTERM or Ctrl-C records its job abandoned and exits
    128 + the signal, as every command does: it exited 1, an unexpected failure (a re-review
    of the change that gave SIGTERM Ctrl-C's way out)."""
    ok(db_url, "init")
    ok(db_url, "schedule", "add", "long", "--cron", "0 3 * * *", "--", "sleep", "30")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "schedule", "trigger", "long", "--db", db_url,
         "--json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "TIEOUT_ACTOR": "ops", "TIEOUT_PROGRAM": fake_program(tmp_path),
             "FAKE_LOG": str(tmp_path / "ran.jsonl")},
        cwd=tmp_path,
    )  # fmt: skip
    try:  # (the fake program logs its start, then sleeps: the job runs until the signal)
        wait_for("the job's process", (tmp_path / "ran.jsonl").exists)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    doc = json.loads(out)
    assert (doc["status"], doc["interrupted_by"]) == ("abandoned", sig.name)
    assert doc["reason"] == f"interrupted by {sig.name}"


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": the name may hold spaces; the parent follows ")"
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"  # ended, not yet waited for


# a tieout command that starts as every command does, then works for a minute
_SLOW_COMMAND = (
    "import time\n"
    "import cli.main as m\n"
    "class Slow:\n"
    "    def main(self, **_):\n"
    "        time.sleep(60)\n"
    "m.command = lambda args: Slow()\n"
    "m.run()\n"
)


def test_a_job_ends_with_the_scheduler_that_started_it(tieout: Any, tmp_path: Path) -> None:
    """The scheduler audit: a job's command runs in a session of its own, so that ending it
    ends its children; when its scheduler (or `schedule trigger`) was killed outright, the
    command ran on, its run was marked abandoned once the lease ran out, and the next
    occurrence started a second copy beside it. It now ends with its scheduler (SIGTERM)."""
    ok(tieout.db_url, "schedule", "add", "slow", "--cron", "0 6 * * *", "--", "risk", "show")
    env = {
        **os.environ,
        "TIEOUT_ACTOR": "ops",
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "TIEOUT_PROGRAM": shlex.join([sys.executable, "-c", _SLOW_COMMAND]),
    }
    env.pop("TIEOUT_DB", None)
    trigger = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import run; run()", "schedule", "trigger",
         "slow", "--db", tieout.db_url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        job = wait_for("the job's process", lambda: _children(trigger.pid), timeout=30)[0]
        time.sleep(2)  # started
        assert not _gone(job)
    finally:
        trigger.kill()  # SIGKILL: no way out of its own
        trigger.wait()
    deadline = time.monotonic() + 20
    while not _gone(job) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = not _gone(job)
    if alive:
        os.kill(job, signal.SIGKILL)
    assert not alive, "the job's command ran on after its trigger was killed"
