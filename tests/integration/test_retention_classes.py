"""Retention of the reconciliation, schedule and surveillance records on both backends: an old
resolved break goes with its events, an old open break stays, a held account's breaks and runs
stay until the hold is released, runs go with their quarantined rows once no break that stays
refers to them; schedule runs (never a running one) and alerts, surveillance alerts likewise;
`audit verify` and the archive's check pass after."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from oms import retention_book
from oms.schema import surveil_alerts
from oms.store import Store
from schedules.schema import schedule_alerts, schedule_runs
from tests.conftest import Tieout, write

OLD = "2018-03-01T22:00:00Z"
YOUNG = "2026-01-05T22:00:00Z"
T_OLD = datetime(2018, 3, 1, 22, 0, tzinfo=UTC)
T_YOUNG = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)

HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission"
BOOK = (
    f"{HEADER}\n"
    "X1,A1,AAPL,buy,100,190.25,2018-03-01,ACME,1\n"
    "X3,A1,AAPL,buy,10,400,2018-03-01,ACME,1\n"
    "X4,A1,AAPL,sell,5,401,2018-03-01,ACME,1\n"
    "X5,A2,AAPL,buy,20,190,2018-03-01,ACME,0\n"
)
PROFILE = """
name = "{name}"
venue = "ACME"
kind = "trades"
format = "csv"
[csv]
delimiter = ";"
[columns]
exec_id = "Ref"
account = "Acct"
symbol = "Sym"
side = "BS"
quantity = "Qty"
price = "Px"
trade_date = "TradeDate"
commission = "Comm"
[values.side]
B = "buy"
S = "sell"
[parse]
trade_date = "%d/%m/%Y"
"""
COLS = "Ref;Acct;Sym;BS;Qty;Px;TradeDate;Comm\n"
# X1 matches; X3 quantity differs (A1, stays open); X4 missing at the venue (A1, resolved);
# V9 only at the venue (A1, stays open); X5 twice (A2, resolved)
DAY1 = (
    COLS + "X1;A1;AAPL;B;100;190.25;01/03/2018;1\n"
    "X3;A1;AAPL;B;12;400;01/03/2018;1\n"
    "V9;A1;AAPL;B;1;190.5;01/03/2018;0\n"
    "X5;A2;AAPL;B;20;190;01/03/2018;0\n"
    "X5;A2;AAPL;B;20;190;01/03/2018;0\n"
)
# another profile on the same day: everything matches, one row quarantined (it names A1)
CLEAN = (
    COLS + "X1;A1;AAPL;B;100;190.25;01/03/2018;1\n"
    "X3;A1;AAPL;B;10;400;01/03/2018;1\n"
    "X4;A1;AAPL;S;5;401;01/03/2018;1\n"
    "X5;A2;AAPL;B;20;190;01/03/2018;0\n"
    "X8;A1;AAPL;B;abc;190;01/03/2018;0\n"
)
YOUNG_DAY = COLS + "V10;A2;AAPL;B;1;190;05/01/2026;0\n"


def recon_run(t: Tieout, tmp: Path, profile: str, name: str, text: str, day: str) -> Any:
    return t.ok("recon", "run", "--profile", str(tmp / f"{profile}.toml"), "--file",
                write(tmp / name, text), "--date", day, "--json").json()


def seed(db_url: str, tmp: Path) -> tuple[Tieout, dict[str, int]]:
    t = Tieout(db_url)
    old = t.at(OLD)
    old.ok("init")
    old.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    for acct in ("A1", "A2"):
        old.ok("account", "open", acct, "--currency", "USD")
    old.ok("exec", "import", write(tmp / "book.csv", BOOK))
    for name in ("acme", "clean"):
        write(tmp / f"{name}.toml", PROFILE.format(name=name))
    first = recon_run(old, tmp, "acme", "d1.csv", DAY1, "2018-03-01")
    assert first["breaks"] == {"quantity_mismatch": 1, "missing_at_venue": 1,
                               "missing_internal": 1, "duplicate_venue": 1}
    clean = recon_run(old, tmp, "clean", "c1.csv", CLEAN, "2018-03-01")
    assert clean["quarantined_rows"] == 1 and not clean["breaks"]
    ids = {b["type"]: b["break_id"] for b in old.ok("breaks", "list", "--json").json()}
    for kind in ("duplicate_venue", "missing_at_venue"):
        old.ok("breaks", "resolve", str(ids[kind]), "--reason", "timing")
    old.ok("breaks", "comment", str(ids["quantity_mismatch"]), "--text", "asked the venue")
    young = recon_run(t.at(YOUNG), tmp, "acme", "d2.csv", YOUNG_DAY, "2026-01-05")
    ids.update(run1=first["run_id"], clean=clean["run_id"], young=young["run_id"])
    store = Store.open(db_url)
    with store.write() as conn:
        runs = [
            ("eod", T_OLD, "succeeded", T_OLD, ["report", "exceptions", "--date", "2018-03-01"]),
            ("stmt", T_OLD, "succeeded", T_OLD, ["report", "statement", "--account", "A1"]),
            ("hung", T_OLD, "running", None, ["recon", "run"]),
            ("eod", T_YOUNG, "succeeded", T_YOUNG, ["report", "exceptions"]),
        ]
        for job, at, status, ended, command in runs:
            conn.execute(schedule_runs.insert().values(
                job=job, scheduled_at=at, trigger="scheduler", status=status,
                command=json.dumps(command),
                started_at=at, ended_at=ended, exit_code=0 if ended else None,
                owner="host/1", business_date=at.date()))
        for at in (T_OLD, T_YOUNG):
            conn.execute(schedule_alerts.insert().values(
                run_id=None, job="eod", channel="log", status="logged", attempts=1,
                subject="eod failed", payload='{"job": "eod"}', created_at=at))
        for alert_id, (at, account) in enumerate(
            [(T_OLD, "A1"), (T_OLD, "A2"), (T_YOUNG, "A2")], 1
        ):
            conn.execute(surveil_alerts.insert().values(
                alert_id=alert_id, alert_key=f"k{alert_id}", business_date=at.date(),
                rule="unusual_size", account=account, symbol="AAPL", score="3.5",
                details="{}", evidence='{"orders": [], "executions": []}', created_at=at,
                actor="surveil"))
    store.dispose()
    return t, ids


def count(store: Store, sql: str) -> int:
    with store.read() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


def test_recon_schedule_and_surveillance_records_expire_with_holds(
    db_url: str, tmp_path: Path
) -> None:
    t, ids = seed(db_url, tmp_path)
    store = Store.open(db_url)
    now = t.at(YOUNG)
    archive = str(tmp_path / "archive")
    shown = now.ok("retention", "show", "--json").json()
    assert shown["periods"]["recon"] == "6y" and shown["periods"]["schedules"] == "3y"
    assert shown["classes"]["recon"] == ["break_events", "recon_breaks", "recon_quarantine",
                                         "recon_runs"]
    # a hold on A1 (every class): A1's resolved break, the clean run (its quarantined row names
    # A1), the schedule run whose command names A1 and A1's surveillance alert stay
    hold = now.ok("retention", "hold", "add", "--account", "A1", "--matter", "M1", "--reason",
                  "inquiry", "--json").json()
    first = now.ok("retention", "apply", "--archive-dir", archive, "--json").json()
    got = first["archived"]
    assert (got["recon_breaks"], got["recon_runs"], got["recon_quarantine"]) == (1, 0, 0)
    assert got["break_events"] == 2  # the duplicate's opened and resolved events
    assert (got["schedule_runs"], got["schedule_alerts"], got["surveil_alerts"]) == (1, 1, 1)
    assert first["held"]["recon"] >= 3 and first["held"]["surveillance"] == 1
    assert first["held"]["schedules"] == 1
    left = {b["break_id"] for b in now.ok("breaks", "list", "--status", "resolved",
                                          "--json").json()}
    assert left == {ids["missing_at_venue"]}
    # released: what it kept goes, and nothing else
    now.ok("retention", "hold", "release", str(hold["hold_id"]), "--reason", "closed")
    second = now.ok("retention", "apply", "--archive-dir", archive, "--json").json()
    got = second["archived"]
    assert (got["recon_breaks"], got["break_events"]) == (1, 2)
    assert (got["recon_runs"], got["recon_quarantine"]) == (1, 1)  # the clean run and its row
    assert (got["schedule_runs"], got["schedule_alerts"], got["surveil_alerts"]) == (1, 0, 1)
    # what stays: the open breaks (old, but open), their run, the young run; the running and
    # the young schedule runs; the young alerts
    open_now = {b["type"] for b in now.ok("breaks", "list", "--json").json()}
    assert {"quantity_mismatch", "missing_internal"} <= open_now
    assert count(store, "SELECT count(*) FROM recon_breaks WHERE status = 'open'") == 3
    assert {r["run_id"] for r in now.ok("recon", "runs", "--json").json()} == {
        ids["run1"], ids["young"]}
    assert now("breaks", "show", str(ids["duplicate_venue"])).code == 5
    assert count(store, "SELECT count(*) FROM schedule_runs WHERE status = 'running'") == 1
    assert count(store, "SELECT count(*) FROM schedule_runs") == 2
    assert count(store, "SELECT count(*) FROM surveil_alerts") == 1
    assert count(store, "SELECT count(*) FROM schedule_alerts") == 1
    # nothing more expires; the audit trail and both archives verify
    third = now.ok("retention", "apply", "--archive-dir", archive, "--json").json()
    mine = [t for c in ("recon", "schedules", "surveillance") for t in third["classes"][c]]
    assert not any(third["archived"][t] for t in mine)
    assert now.ok("audit", "verify", "--json").json()["ok"] is True
    folders = sorted(Path(archive).iterdir())
    for folder in folders:
        check = now.ok("retention", "verify-archive", str(folder), "--db", db_url,
                       "--json").json()
        assert check["ok"] is True
    breaks = pl.read_parquet(folders[0] / "recon_breaks.parquet")
    assert breaks["break_id"].to_list() == [ids["duplicate_venue"]]
    assert breaks["status"].to_list() == ["resolved"]
    quarantine = pl.read_parquet(folders[1] / "recon_quarantine.parquet")
    assert quarantine["run_id"].to_list() == [ids["clean"]]
    # the append-only tables are protected again (those with rows left refuse a DELETE)
    with store.read() as conn:
        for table in ("break_events", "recon_runs", "recon_quarantine", "schedule_alerts",
                      "surveil_alerts"):
            if store.dialect == "postgresql":
                assert retention_book._pg_trigger_enabled(conn, table), table
            else:
                assert retention_book._sqlite_trigger_sql(conn, table) is not None, table
    for table in ("break_events", "recon_runs", "schedule_alerts", "surveil_alerts"):
        try:
            with store.engine.begin() as conn:
                conn.execute(sa.text(f"DELETE FROM {table}"))
        except sa.exc.DBAPIError:
            continue
        raise AssertionError(f"{table} accepted a DELETE")
    store.dispose()


def test_class_holds_and_periods(db_url: str, tmp_path: Path) -> None:
    t, _ = seed(db_url, tmp_path)
    now = t.at(YOUNG)
    archive = str(tmp_path / "archive")
    # a hold on the recon class only (every account) keeps every recon record
    now.ok("retention", "hold", "add", "--class", "recon", "--matter", "M2", "--reason", "r")
    # a longer period keeps the surveillance alerts
    now.ok("retention", "set", "surveillance", "10y")
    assert now("retention", "set", "recon", "6m").code == 3  # under a year: refused
    assert now("retention", "hold", "add", "--class", "nope", "--matter", "m",
               "--reason", "r").code == 3
    done = now.ok("retention", "apply", "--archive-dir", archive, "--json").json()
    got = done["archived"]
    assert sum(got[t] for t in ("recon_breaks", "break_events", "recon_runs",
                                "recon_quarantine")) == 0
    assert done["held"]["recon"] > 0
    assert got["surveil_alerts"] == 0 and done["periods"]["surveillance"] == "10y"
    assert got["schedule_runs"] == 2  # no hold on schedules: both finished old runs go
    assert now.ok("audit", "verify", "--json").json()["ok"] is True
    assert date.fromisoformat(done["cutoffs"]["schedules"][:10]) == date(2023, 1, 5)


def test_an_old_schedule_run_stays_while_an_alert_that_stays_names_it(
    db_url: str, tmp_path: Path
) -> None:
    t, _ = seed(db_url, tmp_path)
    store = Store.open(db_url)
    with store.write() as conn:
        run_id = conn.execute(schedule_runs.insert().values(
            job="late", scheduled_at=T_OLD, trigger="scheduler", status="failed",
            command=json.dumps(["recon", "run"]), started_at=T_OLD, ended_at=T_OLD,
            exit_code=1, owner="host/1", business_date=T_OLD.date(),
        ).returning(schedule_runs.c.run_id)).scalar_one()  # fmt: skip
        conn.execute(schedule_alerts.insert().values(
            run_id=run_id, job="late", channel="log", status="logged", attempts=1,
            subject="late failed", payload='{"job": "late"}', created_at=T_YOUNG))  # fmt: skip
        conn.execute(schedule_runs.insert().values(  # the newest id, which always stays
            job="later", scheduled_at=T_YOUNG, trigger="scheduler", status="succeeded",
            command=json.dumps(["recon", "run"]), started_at=T_YOUNG, ended_at=T_YOUNG,
            exit_code=0, owner="host/1", business_date=T_YOUNG.date()))  # fmt: skip
    now = t.at(YOUNG)
    now.ok("retention", "apply", "--archive-dir", str(tmp_path / "archive"), "--json")
    assert count(store, f"SELECT count(*) FROM schedule_runs WHERE run_id = {run_id}") == 1
    assert count(store, f"SELECT count(*) FROM schedule_alerts WHERE run_id = {run_id}") == 1
    assert count(store, "SELECT count(*) FROM schedule_runs WHERE job = 'stmt'") == 0
    store.dispose()
