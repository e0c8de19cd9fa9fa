"""`tieout schedule ...` on both backends: jobs, built-in kinds, trigger and its exit codes,
history JSON, crontab lines (whose commands are run here), settings."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oms import audit
from oms.store import Store
from tests.conftest import Tieout, run_tieout
from tests.integration.test_schedules_alerts import cli, fake_program, ok, tieout_env


@pytest.fixture
def db(db_url: str) -> str:
    Tieout(db_url).ok("init")
    return db_url


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """For what does not depend on the backend."""
    url = f"sqlite:///{tmp_path / 'book.db'}"
    Tieout(url).ok("init")
    return url


def test_add_list_replace_remove(db: str) -> None:
    r = ok(
        db,
        *("schedule", "add", "eod", "--cron", "30 18 * * 1-5", "--timezone", "America/New_York"),
        *("--json", "--", "recon", "run", "--profile", "acme", "--file", "d/{date:%Y%m%d}.csv"),
        *("--date", "{prev_business_date}"),
    )
    job = r.json()
    assert job["result"] == "added"
    assert job["args"] == [
        *("recon", "run", "--profile", "acme", "--file", "d/{date:%Y%m%d}.csv"),
        *("--date", "{prev_business_date}", "--json"),
    ]
    assert (job["cron"], job["timezone"], job["kind"]) == (
        "30 18 * * 1-5",
        "America/New_York",
        "command",
    )
    assert job["run_as"] == "tester"
    next_run = datetime.fromisoformat(job["next_run_at"])
    assert next_run.weekday() < 5
    assert next_run.astimezone(UTC).minute == 30
    same = ok(
        db,
        *("schedule", "add", "eod", "--cron", "30 18 * * 1-5", "--timezone", "America/New_York"),
        *("--json", "--", "recon", "run", "--profile", "acme", "--file", "d/{date:%Y%m%d}.csv"),
        *("--date", "{prev_business_date}"),
    )
    assert same.json()["result"] == "unchanged"
    other = cli(db, "schedule", "add", "eod", "--cron", "0 19 * * 1-5", "--", "risk", "show")
    assert other.code == 4
    assert "exists already" in other.err
    replaced = ok(
        db,
        *("schedule", "add", "eod", "--cron", "0 19 * * 1-5", "--replace", "--json"),
        *("--", "risk", "show"),
    )
    assert replaced.json()["result"] == "replaced"
    [listed] = ok(db, "schedule", "list", "--json").json()
    assert (listed["name"], listed["cron"], listed["args"]) == (
        "eod",
        "0 19 * * 1-5",
        ["risk", "show"],
    )
    assert "next_run_at" in listed
    human = ok(db, "schedule", "list").out
    assert "eod" in human
    assert "tieout risk show" in human
    assert ok(db, "schedule", "remove", "eod").out.strip() == "job eod removed"
    assert ok(db, "schedule", "list", "--json").json() == []
    assert cli(db, "schedule", "remove", "eod").code == 5
    store = Store.open(db)
    with store.read() as conn:
        events = list(audit.events(conn))
    actions = [(e.action, e.entity_id) for e in events if e.action.startswith("schedule.")]
    store.dispose()
    assert actions == [
        ("schedule.add", "eod"),
        ("schedule.replace", "eod"),
        ("schedule.remove", "eod"),
    ]


BAD_JOBS = [
    (("--cron", "61 * * * *", "--", "risk", "show"), "--cron"),
    (("--cron", "0 6 1 * mon", "--", "risk", "show"), "day of month"),
    (("--cron", "0 6 * * *", "--timezone", "Nowhere/City", "--", "risk", "show"), "IANA"),
    (("--cron", "0 6 * * *", "--", "recon", "run", "--date", "{tomorrow}"), "unknown"),
    (("--cron", "0 6 * * *", "--", "schedule", "run"), "cannot run"),
    (("--cron", "0 6 * * *", "--", "risk", "show", "--db", "sqlite:///x.db"), "--db"),
    (("--", "risk", "show"), "--cron"),
    # a command tieout cannot run (it was stored, and failed with exit 2 at each run)
    (("--cron", "0 6 * * *", "--", "nosuchcmd"), "No such command 'nosuchcmd'"),
    (("--cron", "0 6 * * *", "--", "md", "last", "--bogus"), "No such option: --bogus"),
    (("--cron", "0 6 * * *", "--", "recon", "run", "--date", "{date}"), "Missing option"),
    (("--cron", "0 6 * * *", "--", "risk"), "names no command"),
]


def test_bad_jobs_are_refused(sqlite_db: str) -> None:
    db = sqlite_db
    for args, message in BAD_JOBS:
        r = cli(db, "schedule", "add", "j", *args)
        assert r.code == 3, (args, r.err)
        assert message in r.err
    usage = cli(db, "schedule", "add", "j", "--cron", "0 6 * * *")
    assert usage.code == 2
    assert "Missing argument" in usage.err
    assert ok(db, "schedule", "list", "--json").json() == []


def test_a_job_is_checked_as_the_command_it_runs(sqlite_db: str) -> None:
    """Its templates filled, its options and arguments as tieout parses them; where
    TIEOUT_PROGRAM names the program jobs run as, a command this tieout has not is stored with
    a note (another build may have it)."""
    db = sqlite_db
    ok(db, "schedule", "add", "eod", "--cron", "0 6 * * *", "--", "recon", "run", "--profile",
       "acme", "--file", "d/{date:%Y%m%d}.csv", "--date", "{prev_business_date}")  # fmt: skip
    other = run_tieout(
        *("schedule", "add", "later", "--cron", "0 6 * * *", "--db", db, "--"),
        *("nosuchcmd", "--x"),
        env={**tieout_env(), "TIEOUT_PROGRAM": "/opt/tieout-next/bin/tieout"},
    )
    assert other.code == 0, other.err
    assert "warning: `tieout nosuchcmd --x` is not a command this tieout can run" in other.err
    group = run_tieout(
        *("schedule", "add", "group", "--cron", "0 6 * * *", "--db", db, "--", "risk"),
        env={**tieout_env(), "TIEOUT_PROGRAM": "/opt/tieout-next/bin/tieout"},
    )
    assert group.code == 0 and "it names no command" in group.err, group.err
    assert [j["name"] for j in ok(db, "schedule", "list", "--json").json()] == [
        "eod",
        "group",
        "later",
    ]


def test_an_expiry_job_names_the_calendars_it_does_not_follow(db: str) -> None:
    """A book trading 24/7 and London instruments under the default New York expiry job: their
    day orders would stay live (cash reserved) until New York's close, over a weekend until
    Monday's. Adding the job, and listing the jobs, say which calendars need a job of their own
    and how to add it; once added, the warning is gone."""
    for symbol, exchange, ccy in (("AAPL", "XNYS", "USD"), ("BTC-USD", "24/7", "USD")):
        ok(db, "instrument", "add", symbol, "--exchange", exchange, "--currency", ccy)
    ok(db, "instrument", "add", "VOD", "--exchange", "LSE", "--currency", "GBP")
    added = ok(db, "schedule", "add-builtin", "order-expiry", "--json")
    assert added.json()["name"] == "order-expiry"
    warned = [line for line in added.err.splitlines() if "no order-expiry job" in line]
    assert len(warned) == 2, added.err
    assert "close of 24/7: day and gtd orders of BTC-USD stay live" in warned[0]
    assert "tieout schedule add-builtin order-expiry --calendar 24/7" in warned[0]
    assert "close of XLON: day and gtd orders of VOD" in warned[1]  # LSE is London's XLON
    assert "no order-expiry job runs after the close of 24/7" in ok(db, "schedule", "list").err
    always = ok(
        db,
        *("schedule", "add-builtin", "order-expiry", "--calendar", "24/7"),
        *("--name", "order-expiry-24-7", "--json"),
    )
    assert (always.json()["cron"], always.json()["timezone"]) == ("15 0 * * *", "UTC")
    ok(db, "schedule", "add-builtin", "order-expiry", "--calendar", "XLON", "--name", "x-lon")
    assert "no order-expiry job" not in ok(db, "schedule", "list", "--json").err


def test_builtin_kinds(sqlite_db: str) -> None:
    db = sqlite_db
    eod = ok(
        db,
        *("schedule", "add-builtin", "eod-recon", "--profile", "acme", "--json"),
        *("--file-pattern", "drops/acme/trades_{date:%Y%m%d}.csv", "--cron", "30 18 * * 1-5"),
        *("--max-breaks", "3", "--max-break-amount", "1000"),
    ).json()
    assert eod["name"] == "eod-recon-acme"
    assert eod["args"] == [
        *("recon", "run", "--profile", "acme"),
        *("--file", "drops/acme/trades_{date:%Y%m%d}.csv", "--date", "{date}", "--json"),
    ]
    assert eod["sessions_only"] is True
    assert eod["timezone"] == "America/New_York"
    assert eod["thresholds"] == {"max_break_amount": "1000", "max_breaks": "3"}
    expiry = ok(db, "schedule", "add-builtin", "order-expiry", "--json").json()
    assert (expiry["args"], expiry["cron"], expiry["timezone"]) == (
        ["order", "expire-due", "--json"],
        "15 16 * * 1-5",
        "America/New_York",
    )
    london = ok(
        db,
        *("schedule", "add-builtin", "order-expiry", "--name", "expiry-lse"),
        *("--calendar", "XLON", "--json"),
    ).json()
    assert (london["cron"], london["timezone"], london["calendar"]) == (
        "45 16 * * 1-5",
        "Europe/London",
        "XLON",
    )
    report = ok(db, "schedule", "add-builtin", "exceptions-report", "--json").json()
    assert report["args"][:4] == ["report", "exceptions", "--date", "{date}"]
    statements = ok(db, "schedule", "add-builtin", "monthly-statements", "--json").json()
    assert statements["args"][:3] == ["report", "statement", "--all"]
    assert statements["cron"] == "0 6 1 * *"
    retention = ok(db, "schedule", "add-builtin", "retention", "--json").json()
    assert retention["args"] == ["retention", "apply", "--json"]
    names = [j["name"] for j in ok(db, "schedule", "list", "--json").json()]
    assert names == [
        "eod-recon-acme",
        "exceptions-report",
        "expiry-lse",
        "monthly-statements",
        "order-expiry",
        "retention",
    ]
    assert cli(db, "schedule", "add-builtin", "eod-recon", "--cron", "0 6 * * *").code == 3
    assert cli(db, "schedule", "add-builtin", "lunch").code == 3


def test_trigger_records_runs_and_passes_exit_codes_on(db: str, tmp_path: Path) -> None:
    env = tieout_env(fake_program(tmp_path))
    ok(db, "schedule", "add", "good", "--cron", "0 6 * * *", "--", "print", "{date:%d.%m.%Y}")
    ok(db, "schedule", "add", "bad", "--cron", "0 6 * * *", "--", "exit", "6")
    good = cli(db, "schedule", "trigger", "good", "--date", "2026-03-11", "--json", env=env)
    assert good.code == 0, good.err
    run = good.json()
    assert run["status"] == "succeeded"
    assert run["output_tail"] == "11.03.2026"
    assert run["command"] == ["print", "11.03.2026"]
    bad = cli(db, "schedule", "trigger", "bad", env=env)
    assert bad.code == 6
    assert " failed " in bad.out.splitlines()[0]
    assert " exit 6 " in bad.out.splitlines()[0]
    assert "failing on purpose" in bad.out
    assert cli(db, "schedule", "trigger", "nope", env=env).code == 5
    # a job that exits 130 (its command stopped by Ctrl-C) is passed on as it is: the trigger
    # itself was not interrupted, and does not say it was
    ok(db, "schedule", "add", "stopped", "--cron", "0 6 * * *", "--", "exit", "130")
    stopped = cli(db, "schedule", "trigger", "stopped", env=env)
    assert stopped.code == 130 and "interrupted" not in stopped.err, stopped.err
    runs = ok(db, "schedule", "history", "--json").json()
    assert [(r["job"], r["status"], r["exit_code"], r["trigger"]) for r in runs] == [
        ("good", "succeeded", 0, "manual"),
        ("bad", "failed", 6, "manual"),
        ("stopped", "failed", 130, "manual"),
    ]
    keys = {
        "run_id", "job", "trigger", "scheduled_at", "status", "reason", "business_date",
        "command", "started_at", "ended_at", "duration_s", "exit_code", "output_tail", "owner",
        "lease_expires_at",
    }  # fmt: skip
    assert all(set(r) == keys for r in runs)
    first = runs[0]
    assert first["started_at"] <= first["ended_at"]
    assert first["scheduled_at"].endswith("Z")
    only_bad = ok(db, "schedule", "history", "--job", "bad", "--json").json()
    assert [r["job"] for r in only_bad] == ["bad"]
    failed = ok(db, "schedule", "history", "--status", "failed", "--json").json()
    assert [r["job"] for r in failed] == ["bad", "stopped"]
    assert len(ok(db, "schedule", "history", "--limit", "1", "--json").json()) == 1
    assert cli(db, "schedule", "history", "--status", "lost").code == 3
    assert "bad" in ok(db, "schedule", "history").out
    alerts = ok(db, "schedule", "alerts", "--json").json()
    assert [(a["job"], a["channel"], a["status"]) for a in alerts] == [
        ("bad", "log", "logged"), ("stopped", "log", "logged")]  # fmt: skip


def test_crontab_lines_run_the_same_jobs_once(db: str, tmp_path: Path) -> None:
    env = tieout_env(fake_program(tmp_path))
    ok(db, "schedule", "add", "every-minute", "--cron", "* * * * *", "--", "print", "{date}")
    ok(
        db,
        *("schedule", "add", "eod", "--cron", "30 18 * * 1-5", "--timezone", "America/New_York"),
        *("--", "recon", "run", "--profile", "acme", "--file", "d/{date:%Y%m%d}.csv"),
        *("--date", "{date}"),
    )
    ok(db, "schedule", "add", "tick", "--cron", "*/5 * * * * *", "--", "print", "x")
    text = cli(db, "schedule", "crontab", "--program", "/opt/tieout/bin/tieout").out
    lines = text.splitlines()
    assert lines[0].startswith("# tieout schedule crontab: 3 job(s)")
    active = [x for x in lines if x and not x.startswith("#") and not x.startswith("CRON_TZ")]
    assert len(active) == 2  # the seconds-level job is a comment
    assert "CRON_TZ=America/New_York" in lines
    assert "# tick fires every few seconds (*/5 * * * * *); cron has minutes only: run it" in text
    eod = next(x for x in active if " eod " in x)
    assert eod.startswith("30 18 * * 1-5 /opt/tieout/bin/tieout schedule trigger eod --scheduled")
    assert (
        "# eod: tieout recon run --profile acme --file d/{date:%Y%m%d}.csv --date {date} --json"
        in lines
    )
    minute = next(x for x in active if "every-minute" in x)
    fields = minute.split(" ", 5)
    assert fields[:5] == ["*", "*", "*", "*", "*"]
    argv = shlex.split(fields[5].replace("\\%", "%"))  # what cron hands the shell
    assert argv == [
        *("/opt/tieout/bin/tieout", "schedule", "trigger", "every-minute", "--scheduled"),
        *("--db", db),
    ]
    # --json: the same text, and each job's schedule and command as data
    doc = ok(db, "schedule", "crontab", "--program", "/opt/tieout/bin/tieout", "--json").json()
    assert doc["crontab"] == text
    by_name = {j["name"]: j for j in doc["jobs"]}
    assert sorted(by_name) == ["eod", "every-minute", "tick"]
    assert by_name["every-minute"]["command"] == argv
    assert (by_name["eod"]["cron"], by_name["eod"]["timezone"]) == (
        "30 18 * * 1-5",
        "America/New_York",
    )
    # run the line's command twice, as two crons (or cron beside `schedule run`) would
    first = cli(db, *argv[1:-2], "--json", env=env)
    second = cli(db, *argv[1:-2], "--json", env=env)
    assert first.code == 0, first.err
    run = first.json()
    assert (run["status"], run["trigger"], run["output_tail"]) == (
        "succeeded",
        "cron",
        run["business_date"],
    )
    assert run["scheduled_at"].endswith(":00.000000Z")
    assert second.code == 0
    again = second.json()
    if "claimed_by" in again:
        assert again == {
            "job": "every-minute",
            "scheduled_at": run["scheduled_at"],
            "claimed_by": run["run_id"],
            "claimed_run_status": "succeeded",
        }

    else:  # the minute turned between the two: the second ran the next occurrence
        assert again["scheduled_at"] > run["scheduled_at"]
    ran = [r for r in ok(db, "schedule", "history", "--json").json() if r["status"] != "skipped"]
    assert len(ran) == len({r["scheduled_at"] for r in ran})
    ok(db, "schedule", "add", "leap", "--cron", "0 0 29 2 *", "--", "print", "x")
    not_due = cli(db, "schedule", "trigger", "leap", "--scheduled", env=env)
    assert not_due.code == 3
    assert "no occurrence of leap" in not_due.err


def test_an_occurrence_that_ran_already_is_said_to_have_run(db: str, tmp_path: Path) -> None:
    """A second `trigger --scheduled` of an occurrence that ended said it "is run by another";
    it ran already, and the text says how it ended and how to run the job again."""
    env = {**tieout_env(fake_program(tmp_path)), "TIEOUT_NOW": "2026-11-25T15:00:30Z"}
    ok(db, "schedule", "add", "every-minute", "--cron", "* * * * *", "--", "print", "{date}")
    first = cli(db, "schedule", "trigger", "every-minute", "--scheduled", "--json", env=env)
    assert first.code == 0, first.err
    run_id = first.json()["run_id"]
    again = cli(db, "schedule", "trigger", "every-minute", "--scheduled", env=env)
    assert again.code == 0, again.err
    assert f"ran already (run {run_id}, succeeded)" in again.out
    assert "without --scheduled runs the job again" in again.out
    doc = cli(db, "schedule", "trigger", "every-minute", "--scheduled", "--json", env=env).json()
    assert (doc["claimed_by"], doc["claimed_run_status"]) == (run_id, "succeeded")


def test_config_settings_and_alert_test(db: str) -> None:
    shown = ok(db, "schedule", "config", "show", "--json").json()
    assert shown["channels"] == []
    assert shown["settings"]["alert.max_breaks"] is None
    assert set(shown["environment"]) == {"TIEOUT_SMTP_PASSWORD", "TIEOUT_WEBHOOK_TOKEN"}
    r = ok(db, "schedule", "config", "set", "alert.max_break_amount", "2500.00", "--json")
    assert r.json() == {"key": "alert.max_break_amount", "value": "2500.00"}
    ok(db, "schedule", "config", "set", "schedule.calendar", "XLON")
    assert cli(db, "schedule", "config", "set", "alert.webhook.token", "abc").code == 3
    assert cli(db, "schedule", "config", "set", "alert.nope", "1").code == 3
    after = ok(db, "schedule", "config", "show", "--json").json()["settings"]
    assert (after["alert.max_break_amount"], after["schedule.calendar"]) == ("2500.00", "XLON")
    test = ok(db, "schedule", "alert-test", "--json").json()
    assert test == [{"channel": "log", "status": "logged", "attempts": 1, "error": None}]
    [alert] = ok(db, "schedule", "alerts", "--json").json()
    assert alert["findings"][0]["kind"] == "test"
    assert alert["run_id"] is None


def test_run_refuses_bad_options(sqlite_db: str) -> None:
    db = sqlite_db
    r: Any = cli(db, "schedule", "run", "--lease", "5", "--heartbeat", "10")
    assert r.code == 3
    assert "lease" in r.err


def test_a_pinned_clock_is_the_clock_of_trigger_list_and_alert_test(
    db: str, tmp_path: Path
) -> None:
    """TIEOUT_NOW (a drill, a replayed day) pins every command's clock. `schedule trigger
    --scheduled` took the occurrence due, and so the business date its job ran for, from the
    real clock (the job's own commands then ran with the pinned one); a manual trigger's run
    was dated by the real clock; `schedule list` and `add` gave the next run after the real
    time; `alert-test` recorded its alert at the real time with the pinned time inside."""
    pinned = "2026-11-25T23:30:20Z"
    env = tieout_env(fake_program(tmp_path), TIEOUT_NOW=pinned)
    added = ok(db, "schedule", "add", "every-minute", "--cron", "* * * * *", "--json", "--",
               "print", "{date}", env=env).json()  # fmt: skip
    assert added["next_run_at"] == "2026-11-25T23:31:00.000000Z"
    (listed,) = ok(db, "schedule", "list", "--json", env=env).json()
    assert listed["next_run_at"] == "2026-11-25T23:31:00.000000Z"
    run = ok(db, "schedule", "trigger", "every-minute", "--scheduled", "--json", env=env).json()
    assert (run["scheduled_at"], run["business_date"], run["output_tail"]) == (
        "2026-11-25T23:30:00.000000Z", "2026-11-25", "2026-11-25")  # fmt: skip
    manual = ok(db, "schedule", "trigger", "every-minute", "--json", env=env).json()
    assert (manual["scheduled_at"], manual["business_date"]) == (
        "2026-11-25T23:30:20.000000Z", "2026-11-25")  # fmt: skip
    ok(db, "schedule", "alert-test", env=env)
    alerts = ok(db, "schedule", "alerts", "--json", env=env).json()
    (alert,) = [a for a in alerts if "alert-test" in a["subject"]]
    assert alert["created_at"] == "2026-11-25T23:30:20.000000Z"


# ---- the scheduler audit of 2026-11-29 ------------------------------------------------------


def test_a_trigger_that_did_not_run_its_job_says_so_in_its_exit_code(
    db: str, tmp_path: Path
) -> None:
    """A manual trigger skipped behind the job's run still going exited 0, so `trigger eod &&
    next` went on as if the job had run: it exits 4 (refused). A skip on a date that is no
    session stays 0: nothing is wrong on a holiday."""
    from schedules import runs

    env = tieout_env(fake_program(tmp_path))
    ok(db, "schedule", "add", "eod", "--cron", "0 6 * * *", "--", "print", "x")
    store = Store.open(db)
    try:
        now = datetime.now(UTC)
        runs.claim(store, job="eod", scheduled_at=now.replace(microsecond=0), trigger="manual",
                   owner=runs.make_owner(), now=now, lease_s=600)  # fmt: skip
    finally:
        store.dispose()
    skipped = cli(db, "schedule", "trigger", "eod", "--json", env=env)
    assert skipped.code == 4, skipped.err
    assert skipped.json()["status"] == "skipped"
    assert "is still running" in skipped.json()["reason"]
    holiday = tieout_env(fake_program(tmp_path), TIEOUT_NOW="2026-11-26T11:00:30Z")  # Thanksgiving
    ok(db, "schedule", "add", "daily", "--cron", "0 11 * * *", "--sessions-only", "--",
       "print", "x", env=holiday)  # fmt: skip
    off = cli(db, "schedule", "trigger", "daily", "--scheduled", "--json", env=holiday)
    assert off.code == 0, off.err
    assert off.json()["status"] == "skipped" and "is not a session of" in off.json()["reason"]


def test_a_pinned_clock_runs_each_manual_trigger(db: str, tmp_path: Path) -> None:
    """With TIEOUT_NOW pinned (a drill), a second manual trigger collided with the first run's
    time, did nothing and exited 0, telling the user to run it "without --scheduled", which
    they had. Each manual trigger runs."""
    env = tieout_env(fake_program(tmp_path), TIEOUT_NOW="2026-11-25T15:00:30Z")
    ok(db, "schedule", "add", "eod", "--cron", "0 6 * * *", "--", "print", "{date}", env=env)
    first = cli(db, "schedule", "trigger", "eod", "--json", env=env)
    second = cli(db, "schedule", "trigger", "eod", "--date", "2026-11-24", "--json", env=env)
    assert (first.code, second.code) == (0, 0), second.err + second.out
    assert (first.json()["output_tail"], second.json()["output_tail"]) == (
        "2026-11-25",
        "2026-11-24",
    )
    assert second.json()["scheduled_at"] == "2026-11-25T15:00:30.000001Z"


def test_crontab_lines_name_the_database_by_its_whole_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--db sqlite:///tieout.db` (the default) went into the lines as it was; cron starts
    them in $HOME, where the job then failed (exit 1) and was not recorded."""
    monkeypatch.chdir(tmp_path)
    relative = "sqlite:///rel.db"
    Tieout(relative).ok("init")
    ok(relative, "schedule", "add", "eod", "--cron", "0 6 * * *", "--", "order", "list")
    text = cli(relative, "schedule", "crontab", "--program", "/opt/tieout").out
    line = next(x for x in text.splitlines() if x.startswith("0 6 "))
    assert line.endswith(f"--db sqlite:///{tmp_path / 'rel.db'}"), line
    # /etc/cron.d's lines name the user they run as (README said to redirect there, without)
    system = cli(relative, "schedule", "crontab", "--program", "/opt/tieout", "--user", "tieout")
    assert any(x.startswith("0 6 * * * tieout /opt/tieout ") for x in system.out.splitlines())
    assert cli(relative, "schedule", "crontab", "--user", "a b").code == 3


def test_alert_test_fails_when_e_mail_is_set_up_without_recipients(sqlite_db: str) -> None:
    """SMTP host and port set, recipients forgotten (or ' , '): no e-mail channel, and
    `alert-test` said `log: logged` and exited 0."""
    db = sqlite_db
    assert cli(db, "schedule", "config", "set", "alert.smtp.to", " , ").code == 3
    ok(db, "schedule", "config", "set", "alert.smtp.host", "127.0.0.1")
    test = cli(db, "schedule", "alert-test")
    assert test.code == 1
    assert "alert.smtp.to names no recipient: no e-mail goes out" in test.err


def test_history_refuses_a_limit_below_one(sqlite_db: str) -> None:
    """`--limit -1` failed as a database error on PostgreSQL and listed everything on SQLite."""
    assert cli(sqlite_db, "schedule", "history", "--limit", "-1").code == 2
    assert cli(sqlite_db, "schedule", "history", "--limit", "0").code == 2


def test_adding_a_job_again_unchanged_keeps_its_missed_occurrence(db: str) -> None:
    """A deploy applying the job definitions again while no scheduler ran (`schedule add`,
    "unchanged") wrote the trigger again from now: the occurrence missed meanwhile never ran
    and was never recorded. An unchanged trigger keeps its next run time; one stored before
    missed occurrences were recorded one by one (coalesced) is stored again to hand them all
    on, its next run time kept."""
    import sqlalchemy as sa

    ok(db, "schedule", "add", "eod", "--cron", "* * * * *", "--", "order", "list")
    store = Store.open(db)
    try:
        for coalesced in (False, True):
            # as if no scheduler had run for ten minutes (an older version's job: coalesced)
            _stored_job(store, earlier=timedelta(minutes=10), coalesce=coalesced)
            with store.read() as conn:
                before = conn.execute(
                    sa.text("SELECT next_run_time FROM apscheduler_jobs")
                ).scalar()
            again = ok(db, "schedule", "add", "eod", "--cron", "* * * * *", "--json", "--",
                       "order", "list").json()  # fmt: skip
            assert again["result"] == "unchanged"
            with store.read() as conn:
                after = conn.execute(sa.text("SELECT next_run_time FROM apscheduler_jobs")).scalar()
            assert after == before, coalesced
            assert _stored_job(store) is False  # it hands every missed occurrence on
    finally:
        store.dispose()


def _stored_job(
    store: Store, *, earlier: timedelta | None = None, coalesce: bool | None = None
) -> bool:
    """The stored APScheduler job's coalesce flag; first, when given, its next run time moved
    `earlier` and its coalesce flag set (in its pickled state and its column alike)."""
    from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]

    from schedules.scheduler import JOBSTORE, _jobstore

    aps = BackgroundScheduler(timezone=UTC, jobstores={JOBSTORE: _jobstore(store)})
    aps.start(paused=True)
    try:
        job = aps.get_job("eod", jobstore=JOBSTORE)
        if earlier is not None:
            moved = job.next_run_time - earlier
            aps.add_job(job.func, trigger=job.trigger, id=job.id, name=job.name, args=job.args,
                        kwargs=job.kwargs, misfire_grace_time=job.misfire_grace_time,
                        coalesce=coalesce, max_instances=job.max_instances, jobstore=JOBSTORE,
                        replace_existing=True, next_run_time=moved)  # fmt: skip
            job = aps.get_job("eod", jobstore=JOBSTORE)
        return bool(job.coalesce)
    finally:
        aps.shutdown(wait=False)


def test_a_job_started_through_a_wrapper_program_runs(db: str, tmp_path: Path) -> None:
    """The re-review: a job's command tied itself to the scheduler's death (TIEOUT_DIE_WITH)
    and ended at once when its parent was not the scheduler: TIEOUT_PROGRAM `timeout 600
    tieout`, or a script that forks, failed every job with exit 1 and no output."""
    import sys

    wrapper = shlex.join(
        ["sh", "-c", f'{shlex.quote(sys.executable)} -m cli.main "$@"; exit $?', "sh"]
    )
    env = tieout_env(wrapper, PYTHONPATH=str(Path(__file__).parents[2]))
    ok(db, "schedule", "add", "limits", "--cron", "0 6 * * *", "--", "risk", "show", "--json")
    run = cli(db, "schedule", "trigger", "limits", "--json", env=env)
    assert run.code == 0, run.err + run.out
    assert run.json()["status"] == "succeeded"


def test_crontab_lines_name_the_tieout_program_by_its_whole_path(sqlite_db: str) -> None:
    """Run as /opt/tieout/.venv/bin/tieout (not on cron's PATH), `schedule crontab` wrote
    `tieout schedule trigger ...`, which cron could not find (exit 127): the lines now name
    the program that printed them; a tieout run otherwise (python -c) names this Python and
    tieout's entry point."""
    import os
    import subprocess
    import sys

    ok(sqlite_db, "schedule", "add", "eod", "--cron", "0 6 * * *", "--", "order", "list")
    script = Path(sys.executable).parent / "tieout"  # the console script the install made
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # cron's
    env.pop("TIEOUT_PROGRAM", None)
    done = subprocess.run(
        [str(script), "schedule", "crontab", "--db", sqlite_db],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("0 6 "))
    assert line.startswith(f"0 6 * * * {script} schedule trigger eod --scheduled"), line
    probe = "import sys; sys.argv = ['x', *sys.argv[1:]]; from cli.main import run; run()"
    done = subprocess.run(
        [sys.executable, "-c", probe, "schedule", "crontab", "--db", sqlite_db],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("0 6 "))
    assert shlex.split(line)[5:9] == [sys.executable, "-m", "cli.main", "schedule"], line
