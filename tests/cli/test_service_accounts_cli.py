"""Service accounts through the real command, on SQLite and PostgreSQL: an admin adds one (fresh
TOTP code), its token goes to a 0600 file and is stored only hashed; commands run with the token
act as the service account (audited with its name) within the `service` role; a wrong, rotated
or revoked token, a token file others can read, an interactive login and every command the role
forbids are refused (exit 4, or 3 for the file) and audited without the token; scheduled jobs
(`schedule trigger`, `schedule run`) write in operator mode as the service account."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from oms.schema import audit_events
from oms.service_schema import service_tokens
from oms.store import Store
from schedules import alerts, runs
from schedules.runner import Runner, RunnerOptions, default_program
from tests.cli.test_access_cli import PASSWORD, Desk, audit_rows, cheap_hashes  # noqa: F401
from tests.conftest import Result, Tieout, run_tieout
from tests.integration.test_schedules_alerts import FIXTURES
from tests.integration.test_schedules_scheduler import history, wait_for


@pytest.fixture
def desk(tieout: Tieout, tmp_path: Path) -> Desk:
    """An admin `root` logged in, and an ops operator `olga`."""
    d = Desk(tieout, tmp_path)
    d.add("root", "admin")
    assert d.login("root").code == 0
    d.add("olga", "ops", by="root")
    assert d.login("olga").code == 0
    return d


def add_service(d: Desk, name: str = "sched") -> tuple[Path, dict[str, Any]]:
    path = d.tmp / f"{name}.token"
    r = d.ok("root", "user", "add-service", name, "--token-file", str(path), "--json", totp=True)
    return path, r.json()


def as_service(d: Desk, token_file: Path, session: str = "nobody") -> Tieout:
    """The CLI with the service token file and no session of anybody."""
    return d.cli(session).with_env(TIEOUT_SERVICE_TOKEN_FILE=str(token_file))


def all_text(t: Tieout) -> str:
    """Every row of every table, as text: what a copy of the database would give away."""
    store = Store.open(t.db_url)
    try:
        with store.read() as conn:
            parts = []
            for table in sorted(inspect(conn).get_table_names()):
                rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
                parts.append(f"{table}: {rows!r}")
            return "\n".join(parts)
    finally:
        store.dispose()


def add_job(d: Desk, name: str, cron: str, *job: str, extra: tuple[str, ...] = ()) -> None:
    """`schedule add` by the ops operator, --db before the job's own arguments."""
    t = d.cli("olga")
    env = {"TIEOUT_ACTOR": t.actor, "TIEOUT_NOW": t.now or "", **t.env}
    r = run_tieout("schedule", "add", name, "--cron", cron, *extra, "--db", t.db_url, "--", *job,
                   env=env)
    assert r.code == 0, r.err


def payload(row: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(row.payload)
    return doc


def failed(r: Result, code: int = 4) -> Result:
    assert r.code == code, f"exit {r.code}: {r.err}{r.out}"
    return r


def test_a_service_account_is_added_once_with_a_hashed_token(desk: Desk) -> None:
    d = desk
    # only an admin, only with a fresh TOTP code
    failed(d.run("root", "user", "add-service", "sched", "--token-file", str(d.tmp / "x")))
    assert not (d.tmp / "x").exists()
    failed(d.run("olga", "user", "add-service", "sched", totp=True))
    path, doc = add_service(d)
    assert doc["user"] == "sched" and doc["role"] == "service" and doc["kind"] == "service"
    assert doc["token"] is None and doc["token_file"] == str(path)
    assert path.stat().st_mode & 0o777 == 0o600
    token = path.read_text().strip()
    assert token.startswith("tieout-svc-") and len(token) >= len("tieout-svc-") + 43
    # the token is nowhere in the database: only its SHA-256
    dump = all_text(d.t)
    assert token not in dump and token[len("tieout-svc-") :] not in dump
    store = Store.open(d.t.db_url)
    with store.read() as conn:
        [stored] = conn.execute(select(service_tokens.c.token_sha256)).scalars().all()
    store.dispose()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    # the name is taken, by operators and service accounts alike; the file is never overwritten
    again = failed(d.run("root", "user", "add-service", "sched", totp=True))
    assert "exists" in again.err
    failed(d.run("root", "user", "add-service", "root", totp=True))
    clash = d.run("root", "user", "add", "sched", "--role", "ops", "--password-stdin",
                  totp=True, stdin=PASSWORD + "\n")
    assert clash.code == 4 and "exists" in clash.err
    taken = d.run("root", "user", "add-service", "other", "--token-file", str(path), totp=True)
    assert taken.code == 3 and path.read_text().strip() == token
    # without --token-file the token is shown once
    shown = d.ok("root", "user", "add-service", "cron2", "--json", totp=True).json()
    assert shown["token"].startswith("tieout-svc-") and shown["token_file"] is None
    listed = {u["user"]: u for u in d.ok("root", "user", "list", "--json").json()}
    assert (listed["sched"]["kind"], listed["sched"]["role"]) == ("service", "service")
    assert listed["root"]["kind"] == "operator"
    assert [r.actor for r in audit_rows(d.t, "service_account.add")] == ["root", "root"]
    # a service account cannot log in, with any password or code
    login = failed(d.cli("sched")("login", "sched", "--password-stdin", "--totp", "123456",
                                  stdin=PASSWORD + "\n"))
    assert "wrong name, password or TOTP code" in login.err
    assert payload(audit_rows(d.t, "auth.failed")[-1])["reason"] == "service_account"


def test_in_local_mode_there_are_no_service_accounts(tieout: Tieout) -> None:
    r = failed(tieout("user", "add-service", "sched"))
    assert "local mode" in r.err


def test_the_token_acts_as_the_service_account_within_its_role(desk: Desk) -> None:
    d = desk
    path, _ = add_service(d)
    token = path.read_text().strip()
    svc = as_service(d, path)
    assert svc.ok("whoami", "--json").json() == {
        "user": "sched", "role": "service", "mode": "service", "token_id": 1}
    # what the role allows: routine writes, audited with the service account's name
    d.ok("root", "instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    bars = d.tmp / "bars.csv"
    bars.write_text("time,symbol,open,high,low,close,volume\n"
                    "2026-03-02T13:59:00Z,COIN,100,101,99,100,5000\n")
    svc.ok("md", "import", str(bars))
    svc.ok("surveil", "run", "--date", "2026-03-02", "--json")
    assert [r.actor for r in audit_rows(d.t, "md.import")] == ["sched"]
    assert [r.actor for r in audit_rows(d.t, "surveil.run")] == ["sched"]
    # --actor cannot name someone else; TIEOUT_ACTOR is ignored
    failed(svc("surveil", "run", "--date", "2026-03-02", "--actor", "root"))
    # what it forbids: user admin, risk limits and kill switches, approvals, cash, retention...
    d.ok("root", "account", "open", "A1", "--currency", "USD")
    forbidden = [
        ("risk", "kill", "--reason", "test"),
        ("risk", "release"),
        ("risk", "set", "max-notional", "1"),
        ("user", "add", "eve", "--role", "admin", "--password-stdin"),
        ("user", "add-service", "more"),
        ("user", "disable", "root"),
        ("approve", "1"),
        ("cash", "withdraw", "A1", "1", "--to", "X"),
        ("account", "open", "B1", "--currency", "USD"),
        ("retention", "apply", "--json"),
        ("breaks", "resolve", "1", "--reason", "timing"),
        ("schedule", "remove", "j"),
        ("exec", "apply", str(bars)),
    ]
    for args in forbidden:
        r = failed(svc(*args, stdin=PASSWORD + "\n"))
        assert "sched is a service account (service)" in r.err, args
        assert token not in r.err + r.out
    denied = audit_rows(d.t, "access.denied")
    assert [r.actor for r in denied] == ["sched"] * len(forbidden)
    assert [payload(r)["command"] for r in denied] == [" ".join(a[:2]) if a[0] not in (
        "approve",) else "approve" for a in forbidden]
    assert d.ok("root", "risk", "show", "--json").json()  # nothing changed behind it
    assert audit_rows(d.t, "risk.kill") == []
    assert token not in all_text(d.t)


def test_wrong_rotated_and_revoked_tokens_are_refused_and_audited(desk: Desk) -> None:
    d = desk
    path, _ = add_service(d)
    old = path.read_text().strip()
    svc = as_service(d, path)
    svc.ok("surveil", "run", "--date", "2026-03-02")
    # a wrong token
    guess = "tieout-svc-" + "A" * 43
    wrong = failed(d.cli("x").with_env(TIEOUT_SERVICE_TOKEN=guess)("surveil", "run", "--date",
                                                                   "2026-03-02"))
    assert "unknown, revoked" in wrong.err and guess not in wrong.err
    last = audit_rows(d.t, "auth.failed")[-1]
    assert (last.actor, payload(last)["reason"]) == ("unknown-service-token", "unknown_token")
    assert payload(last)["token_sha256_prefix"] == hashlib.sha256(guess.encode()).hexdigest()[:12]
    # a token file others can read is refused before it is used (exit 3)
    loose = d.tmp / "loose.token"
    shutil.copy(path, loose)
    loose.chmod(0o644)
    r = failed(as_service(d, loose)("surveil", "run", "--date", "2026-03-02"), 3)
    assert "chmod 600" in r.err and old not in r.err
    failed(d.cli("x").with_env(TIEOUT_SERVICE_TOKEN_FILE=str(path), TIEOUT_SERVICE_TOKEN=old)(
        "surveil", "run", "--date", "2026-03-02"), 3)
    # rotation: the file gets the new token, the old one is refused from then on
    rotated = d.ok("root", "user", "rotate-token", "sched", "--token-file", str(path), "--json",
                   totp=True).json()
    assert rotated["revoked_token_ids"] == [1] and rotated["token_id"] == 2
    new = path.read_text().strip()
    assert new != old and path.stat().st_mode & 0o777 == 0o600
    stale = failed(d.cli("x").with_env(TIEOUT_SERVICE_TOKEN=old)("surveil", "run", "--date",
                                                                 "2026-03-02"))
    assert old not in stale.err
    last = audit_rows(d.t, "auth.failed")[-1]
    assert (last.actor, payload(last)["reason"], payload(last)["token_id"]) == (
        "sched", "token_rotated", 1)
    svc.ok("surveil", "run", "--date", "2026-03-02")
    # disabling revokes it
    d.ok("root", "user", "disable", "sched", totp=True)
    off = failed(svc("surveil", "run", "--date", "2026-03-02"))
    assert "unknown, revoked" in off.err
    last = audit_rows(d.t, "auth.failed")[-1]
    assert (last.actor, payload(last)["reason"]) == ("sched", "disabled")
    failed(d.run("root", "user", "rotate-token", "sched", totp=True))  # stays disabled
    assert [r.actor for r in audit_rows(d.t, "surveil.run")] == ["sched", "sched"]
    # no token in any audit event
    store = Store.open(d.t.db_url)
    with store.read() as conn:
        payloads = " ".join(str(r.payload) for r in conn.execute(select(audit_events)))
    store.dispose()
    assert old not in payloads and new not in payloads and guess not in payloads


def _eod_job(d: Desk) -> None:
    drops = d.tmp / "drops"
    drops.mkdir()
    shutil.copy(FIXTURES / "acme_trades.csv", drops / "acme_20260311.csv")
    d.ok("olga", "schedule", "add-builtin", "eod-recon", "--name", "acme-eod",
         "--profile", str(FIXTURES / "acme_trades.toml"),
         "--file-pattern", str(drops / "acme_{date:%Y%m%d}.csv"), "--cron", "0 19 * * 1-5",
         "--max-quarantined", "none")
    d.ok("olga", "schedule", "add-builtin", "exceptions-report", "--name", "exceptions",
         "--format", "json", "--out", str(d.tmp / "reports" / "exceptions_{date}.json"))


def test_scheduled_jobs_write_as_the_service_account(desk: Desk) -> None:
    d = desk
    _eod_job(d)
    path, _ = add_service(d)
    svc = as_service(d, path, session="scheduler")
    r = svc("schedule", "trigger", "acme-eod", "--date", "2026-03-11", "--json")
    assert r.code == 0, r.err + r.out
    run = r.json()
    assert (run["status"], run["exit_code"]) == ("succeeded", 0)
    assert '"missing_internal": 4' in run["output_tail"]
    assert [x.actor for x in audit_rows(d.t, "recon.run")] == ["sched"]
    report = svc("schedule", "trigger", "exceptions", "--date", "2026-03-11", "--json")
    assert report.code == 0 and report.json()["status"] == "succeeded", report.err + report.out
    assert (d.tmp / "reports" / "exceptions_2026-03-11.json").is_file()
    # a revoked token: the trigger is refused (exit 4, audited) and nothing runs
    d.ok("root", "user", "disable", "sched", totp=True)
    refused = failed(svc("schedule", "trigger", "acme-eod", "--date", "2026-03-12"))
    assert "unknown, revoked" in refused.err
    assert payload(audit_rows(d.t, "auth.failed")[-1])["command"] == "schedule trigger"
    assert len(history(d.t.db_url, "acme-eod")) == 1


def test_a_job_whose_service_account_was_disabled_fails_and_alerts(desk: Desk) -> None:
    """A scheduler may outlive its account: each job authenticates on its own, so a job that
    starts after the account was disabled fails (exit 4), is recorded and alerted."""
    d = desk
    add_job(d, "surv", "0 6 * * *", "surveil", "run", "--date", "{date}")
    path, _ = add_service(d)
    d.ok("root", "user", "disable", "sched", totp=True)
    store = Store.open(d.t.db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIEOUT_")}
    env["TIEOUT_SERVICE_TOKEN_FILE"] = str(path)
    runner = Runner(store, d.t.db_url, owner=runs.make_owner(), options=RunnerOptions(),
                    program=default_program({}), sender=alerts.Sender(env={}), env=env)
    try:
        doc = runner.run("surv", datetime.now(UTC), "manual", business_day=date(2026, 3, 11))
        assert doc is not None
        assert (doc["status"], doc["exit_code"]) == ("failed", 4)
        assert "unknown, revoked" in doc["output_tail"]
        assert path.read_text().strip() not in doc["output_tail"]
        with store.read() as conn:
            sent = alerts.list_alerts(conn, run_id=int(doc["run_id"]))
        assert [a["job"] for a in sent] == ["surv"]
    finally:
        store.dispose()
    assert payload(audit_rows(d.t, "auth.failed")[-1])["reason"] == "disabled"
    assert audit_rows(d.t, "surveil.run") == []


def test_crontab_lines_carry_the_token_file(desk: Desk) -> None:
    d = desk
    add_job(d, "surv", "0 6 * * *", "surveil", "run", "--date", "{date}")
    path, _ = add_service(d)
    plain = d.cli("olga")("schedule", "crontab")
    assert "service account's token" in plain.err  # operator mode without a token: said so
    lines = d.cli("olga")("schedule", "crontab", "--token-file", str(path)).out.splitlines()
    assert f"TIEOUT_SERVICE_TOKEN_FILE={path}" in lines
    assert lines.index(f"TIEOUT_SERVICE_TOKEN_FILE={path}") < next(
        i for i, x in enumerate(lines) if "schedule trigger surv" in x)
    env_lines = as_service(d, path)("schedule", "crontab").out.splitlines()
    assert f"TIEOUT_SERVICE_TOKEN_FILE={path}" in env_lines


def test_the_scheduler_runs_writing_jobs_as_the_service_account(desk: Desk) -> None:
    """A real `tieout schedule run` in operator mode with no session at all, only the token."""
    d = desk
    add_job(d, "surv", "* * * * * *", "surveil", "run", "--date", "2026-03-02",
            extra=("--misfire-grace", "5"))
    path, _ = add_service(d)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIEOUT_")}
    env.update({"TIEOUT_SERVICE_TOKEN_FILE": str(path), "TIEOUT_KEY_FILE": str(d.tmp / "nokey"),
                "TIEOUT_SESSION_FILE": str(d.tmp / "none.session"), "TIEOUT_ACTOR": "olga"})
    log = (d.tmp / "scheduler.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "schedule", "run", "--db", d.t.db_url, "--poll",
         "0.5", "--lease", "5", "--heartbeat", "1"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
    )
    try:
        wait_for("a succeeded run", lambda: any(
            r["status"] == "succeeded" for r in history(d.t.db_url, "surv")), timeout=90)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (d.tmp / "scheduler.log").read_text()
    runs = history(d.t.db_url, "surv")
    assert not [r for r in runs if r["status"] == "failed"], output
    actors = {r.actor for r in audit_rows(d.t, "surveil.run")}
    assert actors == {"sched"}, output
    assert path.read_text().strip() not in output
