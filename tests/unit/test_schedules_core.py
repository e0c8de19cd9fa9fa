"""The pure core of scheduled operations: cron, templates and business dates, built-in jobs,
alert thresholds and messages, retry backoff, settings checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from oms.errors import BadInput
from schedules import alerts, config, cron, jobs, templates
from schedules.runs import tail

# ---- cron -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sun,sat"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("MON,wed", "mon,wed"),
        ("1-7", "*"),
        ("mon-sun", "*"),
        ("*/2", "sun,tue,thu,sat"),
        ("1-5/2", "mon,wed,fri"),
    ],
)
def test_day_of_week_follows_crontab_not_apscheduler(field: str, names: str) -> None:
    assert cron.day_of_week_names(field) == names


@pytest.mark.parametrize("field", ["fri-mon", "8", "xyz", "1-"])
def test_bad_day_of_week(field: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        cron.day_of_week_names(field)


def test_weekday_schedule_fires_on_weekdays_only() -> None:
    spec = cron.parse_cron("30 18 * * 1-5")
    friday = datetime(2026, 3, 13, 23, 0, tzinfo=UTC)  # 19:00 New York, after the 18:30 run
    fire = cron.next_fire(spec, "America/New_York", friday)
    assert fire is not None
    assert fire.astimezone(UTC) == datetime(2026, 3, 16, 22, 30, tzinfo=UTC)  # Monday, EDT


NEW_YORK = "America/New_York"
BACK = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 01:00 EDT: then 01:00-02:00 comes twice


def _fires(expr: str, start: datetime, n: int) -> list[str]:
    trigger = cron.make_trigger(cron.parse_cron(expr), NEW_YORK)
    fire, at, out = None, start, []
    for _ in range(n):
        fire = trigger.get_next_fire_time(fire, at)
        out.append(fire.astimezone(UTC).strftime("%m-%d %H:%M"))
        at = fire.astimezone(UTC) + timedelta(seconds=1)
    return out


def test_the_hour_the_clocks_go_back_fires_as_cron_does() -> None:
    """A fixed-time job fired twice in the repeated hour (the daemon ran a daily job twice);
    a job with a wildcard runs through both hours, as cron's do."""
    assert _fires("30 1 * * *", BACK - timedelta(days=1), 3) == [
        "10-31 05:30", "11-01 05:30", "11-02 06:30",
    ]  # fmt: skip
    assert _fires("*/20 * * * *", BACK + timedelta(minutes=50), 4) == [
        "11-01 06:00", "11-01 06:20", "11-01 06:40", "11-01 07:00",
    ]  # fmt: skip


def test_the_latest_occurrence_in_the_repeated_hour_is_found() -> None:
    """`schedule trigger --scheduled` (every crontab line) looped for ever in the repeated hour:
    a second added to a time of the zone fell back into the first hour."""
    every20 = cron.parse_cron("*/20 * * * *")
    now = datetime(2026, 11, 1, 6, 41, tzinfo=UTC)  # 01:41 EST, the second 01:41
    found = cron.latest_fire(every20, NEW_YORK, now, timedelta(minutes=5))
    assert found is not None and found.astimezone(UTC) == datetime(2026, 11, 1, 6, 40, tzinfo=UTC)
    daily = cron.parse_cron("30 1 * * *")
    late = datetime(2026, 11, 1, 6, 31, tzinfo=UTC)  # 01:31 EST: its run was at 01:30 EDT
    assert cron.latest_fire(daily, NEW_YORK, late, timedelta(minutes=5)) is None


def test_macros_and_seconds() -> None:
    assert cron.parse_cron("@daily").crontab_fields == "0 0 * * *"
    spec = cron.parse_cron("*/2 * * * * *")
    assert spec.has_seconds
    assert spec.second == "*/2"
    start = datetime(2026, 3, 11, 12, 0, 0, 500000, tzinfo=UTC)
    assert cron.next_fire(spec, "UTC", start) == datetime(2026, 3, 11, 12, 0, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "expr",
    ["* * *", "61 * * * *", "0 0 1 * mon", "0 0 L * *", "0 0 * * fri-mon", "a b c d e"],
)
def test_bad_cron_is_bad_input(expr: str) -> None:
    with pytest.raises(BadInput):
        cron.parse_cron(expr)


def test_timezone_check() -> None:
    assert cron.check_timezone("Europe/London") == "Europe/London"
    with pytest.raises(BadInput):
        cron.check_timezone("Mars/Olympus")


def test_latest_fire_is_the_occurrence_due_now() -> None:
    spec = cron.parse_cron("30 18 * * *")
    now = datetime(2026, 3, 11, 18, 30, 7, tzinfo=UTC)
    window = timedelta(seconds=60)
    assert cron.latest_fire(spec, "UTC", now, window) == datetime(2026, 3, 11, 18, 30, tzinfo=UTC)
    assert cron.latest_fire(spec, "UTC", now + timedelta(minutes=5), window) is None


def test_crontab_text_escapes_percent_and_comments_out_seconds() -> None:
    entries = [
        cron.CrontabEntry(
            "eod",
            cron.parse_cron("0 18 * * 1-5"),
            "America/New_York",
            ["tieout", "schedule", "trigger", "eod", "--db", "postgresql://h/db?x=a%3Db c"],
            "tieout recon run ...",
        ),
        cron.CrontabEntry("tick", cron.parse_cron("* * * * * *"), "UTC", ["tieout"], "x"),
    ]
    text = cron.crontab_text(entries, ["header"])
    lines = text.splitlines()
    assert lines[0] == "# header"
    assert "CRON_TZ=America/New_York" in lines
    line = next(x for x in lines if x.startswith("0 18"))
    assert line == ("0 18 * * 1-5 tieout schedule trigger eod --db 'postgresql://h/db?x=a\\%3Db c'")
    assert not any(x.startswith("* * * * *") for x in lines)  # seconds: a comment only
    assert any(x.startswith("# * * * * * tieout") for x in lines)


# ---- templates and business dates -------------------------------------------------------------


def _weekdays(day: date) -> bool:
    return day.weekday() < 5 and day != date(2026, 3, 13)  # a Friday holiday


def test_render_with_strftime_formats() -> None:
    args = ["--file", "drops/acme/trades_{date:%Y%m%d}.csv", "--date", "{date}", "{{literal}}"]
    needed = templates.template_fields(args)
    assert needed == {"date"}
    values = templates.resolve_dates(date(2026, 3, 11), needed, _weekdays)
    assert templates.render_args(args, values) == [
        "--file",
        "drops/acme/trades_20260311.csv",
        "--date",
        "2026-03-11",
        "{literal}",
    ]


def test_business_dates_skip_weekends_and_holidays() -> None:
    monday = date(2026, 3, 16)
    v = templates.resolve_dates(
        monday, {"prev_business_date", "business_date", "next_business_date"}, _weekdays
    )
    assert v["prev_business_date"] == date(2026, 3, 12)  # Friday 13th is a holiday
    assert v["business_date"] == monday
    assert v["next_business_date"] == date(2026, 3, 17)
    sunday = templates.resolve_dates(date(2026, 3, 15), {"business_date"}, _weekdays)
    assert sunday["business_date"] == date(2026, 3, 12)


def test_month_bounds() -> None:
    v = templates.resolve_dates(date(2026, 3, 1), set(), _weekdays)
    assert (v["prev_month_start"], v["prev_month_end"]) == (date(2026, 2, 1), date(2026, 2, 28))
    assert (v["month_start"], v["month_end"]) == (date(2026, 3, 1), date(2026, 3, 31))
    jan = templates.resolve_dates(date(2026, 1, 15), set(), _weekdays)
    assert jan["prev_month_start"] == date(2025, 12, 1)


def test_calendar_is_not_consulted_unless_needed() -> None:
    def boom(_: date) -> bool:
        raise AssertionError("calendar consulted")

    templates.resolve_dates(date(2026, 3, 11), {"date", "prev_month_end"}, boom)


def test_real_exchange_calendar() -> None:
    from oms.calendars import is_session

    v = templates.resolve_dates(
        date(2026, 1, 20), {"prev_business_date"}, lambda d: is_session("XNYS", d)
    )
    assert v["prev_business_date"] == date(2026, 1, 16)  # Monday 19th: Martin Luther King Day


@pytest.mark.parametrize(
    "arg", ["{tomorrow}", "{date.year}", "{date!r}", "{date:{x}}", "{", "}", "{0}"]
)
def test_unknown_or_unsafe_templates_are_refused(arg: str) -> None:
    with pytest.raises(BadInput):
        templates.template_fields([arg])


def test_no_session_for_a_month_is_an_error() -> None:
    with pytest.raises(BadInput, match="no session"):
        templates.resolve_dates(date(2026, 3, 11), {"prev_business_date"}, lambda _: False)


def test_input_paths() -> None:
    args = ["recon", "run", "--file", "a.csv", "--file=b.csv", "--profile", "p", "--file"]
    assert templates.input_paths(args) == ["a.csv", "b.csv"]


# ---- job definitions and built-in kinds -------------------------------------------------------

NY = jobs.CalendarInfo("America/New_York", time(16, 0), "1-5")


def test_check_job_adds_json_to_recon_and_refuses_db_and_schedule() -> None:
    job = jobs.check_job(
        jobs.JobDef("r", "0 18 * * 1-5", "UTC", ("tieout", "recon", "run", "--file", "x"))
    )
    assert job.args == ("recon", "run", "--file", "x", "--json")
    for args in (("risk", "show", "--db", "x"), ("schedule", "run"), (), ("x", "{nope}")):
        with pytest.raises(BadInput):
            jobs.check_job(jobs.JobDef("r", "0 18 * * *", "UTC", args))
    with pytest.raises(BadInput):
        jobs.check_job(jobs.JobDef("bad name", "0 18 * * *", "UTC", ("risk", "show")))
    with pytest.raises(BadInput):
        jobs.check_job(jobs.JobDef("r", "0 18 * * *", "UTC", ("a",), thresholds={"x": "1"}))


def test_fingerprint_follows_trigger_only() -> None:
    a = jobs.JobDef("a", "0 18 * * *", "UTC", ("risk", "show"))
    assert a.fingerprint == jobs.JobDef("a", "0 18 * * *", "UTC", ("other",)).fingerprint
    assert a.fingerprint != jobs.JobDef("a", "0 19 * * *", "UTC", ("risk", "show")).fingerprint


def test_builtin_eod_recon() -> None:
    job = jobs.builtin_job(
        "eod-recon",
        NY,
        profile="profiles/acme.toml",
        file_pattern="drops/acme/trades_{date:%Y%m%d}.csv",
        cron="30 18 * * 1-5",
    )
    assert job.name == "eod-recon-acme"
    assert job.args == (
        "recon",
        "run",
        "--profile",
        "profiles/acme.toml",
        "--file",
        "drops/acme/trades_{date:%Y%m%d}.csv",
        "--date",
        "{date}",
        "--json",
    )
    assert (job.cron, job.timezone, job.sessions_only) == ("30 18 * * 1-5", NY.timezone, True)
    with pytest.raises(BadInput):
        jobs.builtin_job("eod-recon", NY, profile="acme")


def test_builtin_order_expiry_runs_at_the_close() -> None:
    job = jobs.builtin_job("order-expiry", NY)
    assert job.args == ("order", "expire-due", "--json")
    assert (job.cron, job.timezone) == ("15 16 * * 1-5", "America/New_York")


def test_builtin_jobs_of_a_24_7_calendar_follow_midnight_and_pass_the_day_it_closed() -> None:
    always = jobs.CalendarInfo("UTC", None, "*")
    expiry = jobs.builtin_job("order-expiry", always)
    # 15 minutes after the day's close, as on an exchange: the day's last bars land first
    assert (expiry.cron, expiry.timezone) == ("15 0 * * *", "UTC")
    recon = jobs.builtin_job("eod-recon", always, profile="p", file_pattern="t_{date:%Y%m%d}.csv")
    assert recon.cron == "0 2 * * *"
    # run after midnight, the job reconciles the day that closed, not the one just begun
    assert recon.args[-3:] == ("--date", "{prev_business_date}", "--json")
    report = jobs.builtin_job("exceptions-report", always, fmt="html")
    assert report.args[-1] == "reports/exceptions_{prev_business_date:%Y%m%d}.html"
    # an exchange's job runs on the session's own date, unless asked otherwise
    assert jobs.builtin_job("exceptions-report", NY).args[3] == "{date}"
    assert jobs.builtin_job("exceptions-report", always, date_field="date").args[3] == "{date}"


def test_expiry_gaps_name_the_calendars_no_expiry_job_follows() -> None:
    canonical = {"NASDAQ": "XNYS", "XNYS": "XNYS", "LSE": "XLON", "24/7": "24/7"}.__getitem__
    book = {"AAPL": "NASDAQ", "IBM": "XNYS", "VOD": "LSE", "BTC-USD": "24/7", "ETH-USD": "24/7"}
    assert jobs.expiry_gaps(book, ["XNYS"], canonical) == {
        "24/7": ["BTC-USD", "ETH-USD"],
        "XLON": ["VOD"],
    }
    assert jobs.expiry_gaps(book, ["NASDAQ", "LSE", "24/7"], canonical) == {}
    assert jobs.expiry_gaps({}, ["XNYS"], canonical) == {}


def test_builtin_reports_and_retention() -> None:
    ex = jobs.builtin_job("exceptions-report", NY, date_field="prev_business_date", fmt="html")
    assert ex.args == (
        "report",
        "exceptions",
        "--date",
        "{prev_business_date}",
        "--format",
        "html",
        "--out",
        "reports/exceptions_{prev_business_date:%Y%m%d}.html",
    )
    st = jobs.builtin_job("monthly-statements", NY)
    assert st.args[:7] == (
        "report",
        "statement",
        "--all",
        "--from",
        "{prev_month_start}",
        "--to",
        "{prev_month_end}",
    )
    assert st.cron == "0 6 1 * *"
    ret = jobs.builtin_job("retention", NY)
    assert (ret.args, ret.timezone) == (("retention", "apply", "--json"), "UTC")
    for job in (ex, st, ret):
        jobs.check_job(job)
    with pytest.raises(BadInput):
        jobs.builtin_job("coffee", NY)
    with pytest.raises(BadInput):
        jobs.builtin_job("exceptions-report", NY, date_field="tomorrow")


def test_calendar_defaults() -> None:
    assert jobs.weekdays_field("1111100") == "1-5"
    assert jobs.weekdays_field("0111110") == "2-6"
    assert jobs.weekdays_field("1111111") == "*"
    assert jobs.weekdays_field("1010000") == "1,3"
    late = jobs.CalendarInfo("Asia/Tokyo", time(23, 0), "1-5")
    assert jobs.close_cron(late, 120) == "59 23 * * 1-5"
    # a 24/7 day closes at midnight UTC: its jobs run their offset after it, every day
    assert jobs.close_cron(jobs.CalendarInfo("UTC", None, "*"), 1) == "1 0 * * *"
    assert jobs.close_cron(jobs.CalendarInfo("UTC", None, "*"), 180) == "0 3 * * *"
    info = jobs.calendar_info("XNYS")
    assert (info.timezone, info.close, info.weekdays) == ("America/New_York", time(16), "1-5")


# ---- alerts -----------------------------------------------------------------------------------

RECON = alerts.ReconSummary(
    run_id=7,
    profile="acme",
    business_date=date(2026, 3, 11),
    breaks={"missing_internal": 3, "price_mismatch": 1},
    open_breaks=4,
    quarantined_rows=2,
)
OK = alerts.RunFacts("eod", "succeeded", 0, None)


def test_parse_recon_json() -> None:
    text = (
        '{"run_id": 7, "profile": "acme", "business_date": "2026-03-11", '
        '"breaks": {"missing_internal": 3, "price_mismatch": 1}, "open_breaks": 4, '
        '"quarantined_rows": 2}'
    )
    assert alerts.parse_recon_json(text) == RECON
    assert alerts.parse_recon_json("not json") is None
    assert alerts.parse_recon_json('{"max_notional": "1"}') is None
    assert alerts.parse_recon_json("[1, 2]") is None


def test_thresholds_count_quarantine() -> None:
    found = alerts.evaluate(OK, RECON, None, config.Thresholds())
    assert [f.kind for f in found] == ["breaks", "quarantined"]
    assert "missing_internal 3" in found[0].message
    quiet = config.Thresholds(max_breaks=4, max_quarantined=None)
    assert alerts.evaluate(OK, RECON, None, quiet) == []


def test_thresholds_amount_and_age() -> None:
    stats = alerts.BreakStats(4, Decimal("2500.50"), 11, 9, 3)
    limits = config.Thresholds(
        max_breaks=None,
        max_break_amount=Decimal(1000),
        max_break_age_days=5,
        max_quarantined=None,
    )
    found = alerts.evaluate(OK, RECON, stats, limits)
    assert [f.kind for f in found] == ["break_amount", "break_age"]
    assert "2500.50" in found[0].message and "in each break's currency" in found[0].message
    assert "9 business day(s)" in found[1].message
    in_euros = alerts.evaluate(OK, RECON, dataclasses.replace(stats, max_amount_currency="EUR"),
                               limits)  # fmt: skip
    assert "amounts to 2500.50 EUR (threshold 1000" in in_euros[0].message
    relaxed = config.Thresholds(None, Decimal(5000), 10, None)
    assert alerts.evaluate(OK, RECON, stats, relaxed) == []


def test_failures_missing_inputs_and_abandoned_runs() -> None:
    missing = alerts.RunFacts("eod", "failed", None, "input missing", ("a.csv", "b.csv"))
    found = alerts.evaluate(missing, None, None, config.Thresholds())
    assert [f.kind for f in found] == ["input_missing", "input_missing"]
    failed = alerts.RunFacts("eod", "failed", 3, None)
    assert alerts.evaluate(failed, None, None, config.Thresholds())[0].message.endswith(
        "exit code 3"
    )
    gone = alerts.RunFacts("eod", "abandoned", None, "lease expired")
    assert [f.kind for f in alerts.evaluate(gone, None, None, config.Thresholds())] == ["abandoned"]


def test_thresholds_precedence() -> None:
    settings = {"alert.max_breaks": "5", "alert.max_break_amount": "100"}
    t = config.thresholds(settings, {"max_breaks": "none", "max_quarantined": "3"})
    assert t == config.Thresholds(None, Decimal(100), None, 3)


def test_alert_document_and_text() -> None:
    findings = alerts.evaluate(OK, RECON, None, config.Thresholds())
    doc = alerts.alert_document(
        "eod", {"run_id": 5, "status": "succeeded", "command": ["recon", "run"]}, findings
    )
    assert doc["subject"].startswith("[tieout] eod: 4 open break(s)")
    assert doc["subject"].endswith("(+1 more)")
    assert doc["findings"][1]["kind"] == "quarantined"
    text = alerts.alert_text(doc)
    assert "run_id: 5" in text
    assert "command: tieout recon run" in text


def test_backoff() -> None:
    assert alerts.backoff_delays(4, 2.0) == [2.0, 4.0, 8.0]
    assert alerts.backoff_delays(1, 2.0) == []
    assert alerts.backoff_delays(10, 10.0, cap_s=60)[-1] == 60


def test_sender_retries_with_backoff_and_records_failures() -> None:
    calls: list[str] = []
    slept: list[float] = []

    def flaky(channel: object, doc: object, token: str | None, timeout: float) -> None:
        calls.append(str(token))
        if len(calls) < 3:
            raise ConnectionRefusedError("refused")

    def dead(*_: object) -> None:
        raise TimeoutError("timed out")

    cfg = config.alert_config(
        {
            "alert.webhook.url": "http://127.0.0.1:9/hook",
            "alert.smtp.host": "127.0.0.1",
            "alert.smtp.to": "ops@example.com",
            "alert.attempts": "3",
            "alert.backoff_s": "0.5",
        }
    )
    sender = alerts.Sender(
        env={"TIEOUT_WEBHOOK_TOKEN": "t0k"}, sleep=slept.append, email_fn=dead, webhook_fn=flaky
    )
    doc = alerts.alert_document("j", {}, [alerts.Finding("job_failed", "boom")])
    out = sender.deliver(cfg, doc)
    assert [d.as_json() for d in out] == [
        {"channel": "email", "status": "failed", "attempts": 3, "error": "TimeoutError: timed out"},
        {"channel": "webhook", "status": "sent", "attempts": 3, "error": None},
    ]
    assert slept == [0.5, 1.0, 0.5, 1.0]
    assert calls == ["t0k"] * 3
    nothing = alerts.Sender(env={}).deliver(config.alert_config({}), doc)
    assert [d.status for d in nothing] == ["logged"]


# ---- settings ---------------------------------------------------------------------------------


def test_settings_are_checked_and_secrets_refused() -> None:
    assert config.check_setting("alert.max_break_amount", "1000.50") == "1000.50"
    assert config.check_setting("alert.max_breaks", "none") == "none"
    assert config.check_setting("alert.smtp.to", " a@x.com, b@x.com ,") == "a@x.com,b@x.com"
    assert config.check_setting("schedule.calendar", "XLON") == "XLON"
    for key, value in [
        ("alert.smtp.password", "hunter2"),
        ("alert.webhook.token", "x"),
        ("alert.colour", "red"),
        ("alert.smtp.port", "70000"),
        ("alert.smtp.security", "maybe"),
        ("alert.webhook.url", "ftp://x"),
        ("alert.max_breaks", "-1"),
        ("schedule.calendar", "NOPE"),
    ]:
        with pytest.raises(BadInput):
            config.check_setting(key, value)


def test_alert_config_channels() -> None:
    cfg = config.alert_config(
        {
            "alert.smtp.host": "mail",
            "alert.smtp.to": "ops@x.com",
            "alert.smtp.security": "starttls",
        }
    )
    assert cfg.channels() == ["email"]
    assert cfg.email is not None
    assert (cfg.email.port, cfg.email.sender) == (587, "tieout@localhost")
    assert config.alert_config({"alert.smtp.host": "mail"}).channels() == []


def test_output_tail() -> None:
    assert tail("short") == "short"
    long = "x" * 5000 + "END"
    cut = tail(long, 100)
    assert len(cut) == 100
    assert cut.startswith("...")
    assert cut.endswith("END")


# ---- the scheduler audit of 2026-11-29 ------------------------------------------------------


def test_a_line_break_in_a_job_cannot_reach_the_crontab() -> None:
    """An ops user's job argument with a line break printed a live crontab line into the
    comment above the job (`* * * * * touch /tmp/PWNED #`); a name ending in a line break was
    taken (`$` matches before it). Both are refused; a job stored before is printed as comments
    only."""
    for args in (("order", "list", "x\n* * * * * touch /tmp/PWNED #"), ("a\tb",), ("a\rb",)):
        with pytest.raises(BadInput, match="control character"):
            jobs.check_job(jobs.JobDef("j", "0 18 * * *", "UTC", args))
    with pytest.raises(BadInput, match="letters, digits"):
        jobs.check_job(jobs.JobDef("eod\n", "0 18 * * *", "UTC", ("order", "list")))
    hostile = "x\n* * * * * touch /tmp/PWNED #"
    entries = [
        cron.CrontabEntry(
            "eod\n",
            cron.parse_cron("0 18 * * *"),
            "UTC",
            ["tieout", "schedule", "trigger", "eod\n", "--scheduled"],
            f"tieout order list {hostile}",
        )
    ]
    lines = cron.crontab_text(entries).splitlines()
    assert all(line.startswith("#") or not line for line in lines), lines
    assert "touch /tmp/PWNED" in lines[1] and "\\n" in lines[1]


def test_a_schedule_that_names_no_real_day_is_refused() -> None:
    """30 February and 31 April were taken: the job never ran and said nothing."""
    for expr in ("0 18 30 2 *", "0 9 31 4 *", "0 9 31 2,4,6,9,11 *"):
        with pytest.raises(BadInput, match="names no day that exists"):
            jobs.check_job(jobs.JobDef("j", expr, "UTC", ("risk", "show")))
        # a job stored before the check is read as it is (it broke `schedule list`, `crontab`
        # and the scheduler's upkeep for every job): it never fires
        stored = jobs.JobDef("j", expr, "UTC", ("risk", "show"))
        assert stored.fingerprint and stored.as_json(datetime(2026, 1, 1, tzinfo=UTC))[
            "next_run_at"
        ] is None
    leap = jobs.check_job(jobs.JobDef("j", "0 0 29 2 *", "UTC", ("risk", "show")))
    assert leap.spec.crontab_fields == "0 0 29 2 *"  # leap years have it


def test_a_misfire_grace_past_a_year_is_refused() -> None:
    """99999999999 s was taken, and `trigger --scheduled` then failed with an OverflowError."""
    with pytest.raises(BadInput, match="366 days"):
        jobs.check_job(jobs.JobDef("j", "0 18 * * *", "UTC", ("risk", "show"),
                                   misfire_grace_s=99999999999))  # fmt: skip
    ok = jobs.JobDef("j", "0 18 * * *", "UTC", ("risk", "show"), misfire_grace_s=366 * 86400)
    assert jobs.check_job(ok).misfire_grace_s == 366 * 86400


def test_the_hour_the_clocks_go_forward_fires_as_cron_does() -> None:
    """`30 2 * * *` in New York on 2026-03-08 (02:30 does not exist): the daemon fired at 03:30
    EDT, cron runs it when the clocks change (03:00 EDT), and the crontab lines' `trigger
    --scheduled` found no occurrence at either time: the job did not run that day. Both now
    take 03:00 EDT."""
    spring = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, when the clocks went forward
    assert _fires("30 2 * * *", spring - timedelta(days=1, hours=1), 3) == [
        "03-07 07:30", "03-08 07:00", "03-09 06:30",
    ]  # fmt: skip
    assert _fires("59 2 * * *", spring - timedelta(hours=1), 1) == ["03-08 07:00"]
    assert _fires("*/30 * * * *", spring - timedelta(minutes=31), 3) == [
        "03-08 06:30", "03-08 07:00", "03-08 07:30",
    ]  # fmt: skip  # a wildcard skips the hour that does not exist
    daily = cron.parse_cron("30 2 * * *")
    window = timedelta(minutes=5)
    found = cron.latest_fire(daily, NEW_YORK, spring + timedelta(seconds=30), window)
    assert found is not None and found.astimezone(UTC) == spring
    assert cron.latest_fire(daily, NEW_YORK, spring + timedelta(minutes=30), window) is None


def test_recipients_must_be_addresses() -> None:
    """`alert.smtp.to ' , '` was taken: with the host set, no e-mail went out and nothing said
    so (alert-test said `log: logged`)."""
    for value in (" , ", "ops", "ops @x.com"):
        with pytest.raises(BadInput):
            config.check_setting("alert.smtp.to", value)
    assert config.check_setting("alert.smtp.to", "") == ""
    named = "Ops Desk <ops@example.com>, b@x.com"  # a display name, as before
    assert config.check_setting("alert.smtp.to", named) == "Ops Desk <ops@example.com>,b@x.com"
    missing = config.email_missing({"alert.smtp.host": "mail"})
    assert missing is not None and "no recipient" in missing
    assert config.email_missing({"alert.smtp.host": "mail", "alert.smtp.to": "a@x.com"}) is None
    assert config.email_missing({}) is None
