"""`tieout surveil ...` through the real entry point, on both backends: a book seeded through
real commands (instruments, accounts, market data, imported executions, paper orders and
cancels with a pinned clock) holds ten days of history, a clean day and a day with every
pattern; the clean day stays quiet, each pattern fires its rule with its evidence, a rerun adds
nothing, the alerts and the runs are in the audit trail, and the thresholds are settings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tieout, write

CLEAN, PATTERN = "2026-01-20", "2026-01-21"  # XNYS sessions 14:30-21:00 UTC
AFTER = "2026-01-22T06:00:00Z"  # when surveillance runs
EXEC_HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,exec_time,venue\n"
ACCOUNTS = ("A1", "A2", "W1", "W2", "PF", "MC", "PX")


def _history_rows() -> list[str]:
    """Ten sessions before the clean day for A1 and A2: a buy at 15:00 and a sell at 20:50
    UTC, 90 to 104 shares at 100."""
    rows = []
    day, n = date(2026, 1, 16), 0
    while n < 10:
        if day.weekday() < 5:
            n += 1
            qty = 90 + (n * 7) % 21
            for acct in ("A1", "A2"):
                d = day.isoformat()
                rows.append(f"H{acct}{n}b,{acct},XYZ,buy,{qty},100,{d},{d}T15:00:00Z,EXT")
                rows.append(f"H{acct}{n}s,{acct},XYZ,sell,{qty},100,{d},{d}T20:50:00Z,EXT")
        day -= timedelta(days=1)
    return rows


def _day_rows(d: str, rows: list[tuple[str, str, str, str, str, str, str]]) -> list[str]:
    return [f"{x},{a},{s},{side},{q},{p},{d},{d}T{t}Z,EXT" for x, a, s, side, q, p, t in rows]


CLEAN_ROWS = [  # ordinary trading
    ("C1", "A1", "XYZ", "buy", "100", "100", "15:00:00"),
    ("C2", "A1", "XYZ", "sell", "100", "103", "18:00:00"),
    ("C3", "A2", "XYZ", "buy", "105", "100", "16:00:00"),
    ("C4", "MC", "XYZ", "buy", "500", "100", "20:55:00"),  # 5 % of the close's volume
    ("C5", "W1", "XYZ", "buy", "100", "100", "15:00:00"),
    ("C6", "W2", "XYZ", "sell", "100", "100", "15:30:00"),  # linked, but half an hour apart
]
PATTERN_ROWS = [
    ("P1", "W1", "XYZ", "buy", "100", "100", "15:00:00"),  # wash between linked accounts
    ("P2", "W2", "XYZ", "sell", "100", "100.2", "15:01:00"),
    ("P3", "A1", "XYZ", "buy", "2000", "100", "16:00:00"),  # twenty times its usual size
    ("P4", "A2", "XYZ", "buy", "100", "100", "03:00:00"),  # at night
    ("P5", "PF", "XYZ", "buy", "100", "100", "15:00:00"),  # long
    ("P6", "PF", "XYZ", "sell", "200", "103", "15:02:00"),  # short
    ("P7", "PF", "XYZ", "buy", "200", "106", "15:04:00"),  # long again
    ("P8", "MC", "XYZ", "buy", "3000", "100", "20:55:00"),  # 30 % of the close's volume
]


def _bars() -> str:
    rows = ["time,symbol,open,high,low,close,volume"]
    for d in (CLEAN, PATTERN):
        rows += [f"{d}T20:{m}:00Z,XYZ,100,100,100,100,1000" for m in range(50, 60)]
    rows.append(f"{PATTERN}T14:59:00Z,COIN,100,100,100,100,100000")
    return "\n".join(rows) + "\n"


def _orders(t: Tieout, when: str, *args: str) -> Any:
    return t.at(when).ok("order", "submit", *args, "--json").json()


def _paper_day(t: Tieout, tmp_path: Path) -> None:
    """Paper orders of PX on COIN: an ordinary day; then spoofing at 15:00, layering at 15:10
    and a burst of orders at 15:20 (ten minutes apart: each pattern its own)."""
    coin = ("--account", "PX", "--symbol", "COIN", "--tif", "gtc")
    bid = ("--side", "buy", "--type", "limit", "--limit", "95")
    # the clean day: a resting bid canceled after half an hour
    rests = _orders(t, f"{CLEAN}T15:00:00Z", *coin, *bid, "--qty", "100")
    t.at(f"{CLEAN}T15:30:00Z").ok("order", "cancel", rests["order_id"])
    # spoofing: a large bid, a sell into it two seconds later, the bid pulled after five
    spoof = _orders(t, f"{PATTERN}T15:00:00Z", *coin, *bid, "--qty", "1000")
    sold = _orders(t, f"{PATTERN}T15:00:02Z", *coin, "--side", "sell", "--qty", "100")
    assert sold["status"] == "filled"
    t.at(f"{PATTERN}T15:00:05Z").ok("order", "cancel", spoof["order_id"])
    # layering: four bids at four prices, all pulled twenty seconds later
    layers = write(
        tmp_path / "layers.csv",
        "account,symbol,side,qty,type,limit,tif\n"
        + "".join(f"PX,COIN,buy,500,limit,{p},gtc\n" for p in ("95", "94.5", "94", "93.5")),
    )
    done = t.at(f"{PATTERN}T15:10:00Z").ok("order", "submit", "--file", layers, "--json").json()
    for line in done["results"]:
        t.at(f"{PATTERN}T15:10:20Z").ok("order", "cancel", line["order_id"])
    # nine orders in one go: more than the eight messages a minute allowed here
    burst = write(
        tmp_path / "burst.csv",
        "account,symbol,side,qty,type,limit,tif\n"
        + "".join(f"PX,COIN,buy,{q},limit,91,gtc\n" for q in range(1, 10)),
    )
    submitted = t.at(f"{PATTERN}T15:20:00Z").ok("order", "submit", "--file", burst, "--json")
    assert submitted.json()["accepted"] == 9


@pytest.fixture
def book(tieout: Tieout, tmp_path: Path) -> Tieout:
    t = tieout.at("2026-01-02T12:00:00Z")
    t.ok(
        "instrument",
        "import",
        write(
            tmp_path / "instruments.csv",
            "symbol,exchange,currency,tick_size,lot_size,restricted\n"
            "XYZ,XNYS,USD,0.01,1,false\nCOIN,24/7,USD,0.01,1,false\n",
        ),
    )
    for acct in ACCOUNTS:
        t.ok("account", "open", acct, "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "PX", "1000000")
    t.ok("surveil", "settings", "set", "links", "W2,W1")
    t.ok("surveil", "settings", "set", "rate.max-messages", "8")
    # imported once the bars have happened (a bar from the future is refused)
    t.at(f"{PATTERN}T21:00:00Z").ok("md", "import", write(tmp_path / "bars.csv", _bars()))
    rows = _history_rows() + _day_rows(CLEAN, CLEAN_ROWS) + _day_rows(PATTERN, PATTERN_ROWS)
    # and the trades once they are done (a trade dated after today is refused)
    t.at(f"{PATTERN}T21:00:00Z").ok(
        "exec", "import", write(tmp_path / "execs.csv", EXEC_HEADER + "\n".join(rows) + "\n")
    )
    _paper_day(t, tmp_path)
    return t.at(AFTER)


def _by_rule(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The alerts by rule: one each."""
    out = {a["rule"]: a for a in alerts}
    assert len(out) == len(alerts), [(a["rule"], a["account"]) for a in alerts]
    return out


def _exec_ids(alert: dict[str, Any]) -> list[str]:
    return sorted(e["exec_id"] for e in alert["evidence"]["executions"])


def test_clean_day_quiet_pattern_day_fires_every_rule(book: Tieout, tmp_path: Path) -> None:
    assert book.ok("surveil", "run", "--date", CLEAN, "--json").json() == []

    alerts = book.ok("surveil", "run", "--date", PATTERN, "--json").json()
    assert all(
        set(a) >= {"alert_id", "rule", "account", "symbol", "score", "details"} for a in alerts
    )
    assert all(a["new"] and isinstance(a["score"], str) for a in alerts)
    got = _by_rule(alerts)
    assert sorted(got) == sorted(
        [
            "wash_trade",
            "spoofing",
            "layering",
            "unusual_size",
            "unusual_hours",
            "position_flip",
            "marking_close",
            "order_rate",
        ]
    )
    who = {r: (a["account"], a["symbol"]) for r, a in got.items()}
    assert who == {
        "wash_trade": ("W1", "XYZ"),
        "spoofing": ("PX", "COIN"),
        "layering": ("PX", "COIN"),
        "unusual_size": ("A1", "XYZ"),
        "unusual_hours": ("A2", "XYZ"),
        "position_flip": ("PF", "XYZ"),
        "marking_close": ("MC", "XYZ"),
        "order_rate": ("PX", "COIN"),
    }

    wash = got["wash_trade"]
    assert (wash["score"], wash["details"]["accounts"]) == ("100", ["W1", "W2"])
    assert _exec_ids(wash) == ["P1", "P2"]

    spoof = got["spoofing"]
    assert spoof["score"] == "10"
    (bid,) = spoof["evidence"]["orders"]
    assert (bid["quantity"], bid["limit_price"], bid["status"]) == ("1000", "95", "canceled")
    assert bid["canceled_at"] == f"{PATTERN}T15:00:05.000000Z"
    (sell,) = spoof["evidence"]["executions"]
    assert (sell["side"], sell["quantity"], sell["exec_time"]) == (
        "sell",
        "100",
        f"{PATTERN}T15:00:02.000000Z",
    )
    assert sell["order_id"] is not None  # the paper fill of the sell order

    layering = got["layering"]
    assert (layering["score"], len(layering["evidence"]["orders"])) == ("100", 4)
    assert layering["details"]["price_levels"] == ["93.5", "94", "94.5", "95"]

    size = got["unusual_size"]
    assert Decimal(size["score"]) > 3 and _exec_ids(size) == ["P3"]
    assert size["details"]["history_items"] == 22  # ten days and the clean day

    hours = got["unusual_hours"]
    (night,) = hours["details"]["executions"]
    assert night["outside"] == ["session", "usual_window"] and hours["score"] == "690"

    flip = got["position_flip"]
    assert (flip["score"], _exec_ids(flip)) == ("2", ["P6", "P7"])

    close = got["marking_close"]
    assert (close["score"], close["details"]["market_volume"], _exec_ids(close)) == (
        "30",
        "10000",
        ["P8"],
    )
    rate = got["order_rate"]
    assert (rate["score"], len(rate["evidence"]["orders"])) == ("9", 9)
    assert rate["details"]["window_start"] == f"{PATTERN}T15:20:00.000000Z"

    # rerun: the same alerts, nothing new; the list holds each once
    again = book.ok("surveil", "run", "--date", PATTERN, "--json").json()
    assert [a["alert_id"] for a in again] == [a["alert_id"] for a in alerts]
    assert not any(a["new"] for a in again)
    listed = book.ok("surveil", "list", "--date", PATTERN, "--evidence", "--json").json()
    assert [a["alert_id"] for a in listed] == sorted(a["alert_id"] for a in alerts)
    assert {a["alert_key"] for a in listed} == {a["alert_key"] for a in alerts}
    shown = book.ok("surveil", "show", str(spoof["alert_id"]), "--json").json()
    assert shown["evidence"] == spoof["evidence"] and shown["details"] == spoof["details"]
    assert book.ok("surveil", "list", "--date", CLEAN, "--json").json() == []
    # the exception report of the day lists them for compliance
    report = book.ok("report", "exceptions", "--date", PATTERN, "--format", "json").json()
    assert sorted(a["rule"] for a in report["surveillance_alerts"]) == sorted(
        a["rule"] for a in alerts
    )
    html = book.ok("report", "exceptions", "--date", PATTERN, "--format", "html").out
    assert "Surveillance alerts" in html and "wash_trade" in html

    # a threshold raised: the rule stays quiet on a new run; stored alerts stay as they were
    book.ok("surveil", "settings", "set", "close.min-share-pct", "50")
    third = book.ok("surveil", "run", "--date", PATTERN, "--json").json()
    assert "marking_close" not in {a["rule"] for a in third} and len(third) == 7
    assert len(book.ok("surveil", "list", "--date", PATTERN, "--json").json()) == 8

    # every run is audited with the settings it used; the chain is intact
    assert book.ok("audit", "verify", "--json").json()["ok"] is True
    out = tmp_path / "audit.jsonl"
    book.ok("audit", "export", "--from", AFTER[:10], "--to", AFTER[:10], "--out", str(out))
    events = [json.loads(line) for line in out.read_text().splitlines()]
    runs = [e for e in events if e["action"] == "surveil.run"]
    assert [(e["entity_id"], len(e["payload"]["new_alert_ids"])) for e in runs] == [
        (CLEAN, 0),
        (PATTERN, 8),
        (PATTERN, 0),
        (PATTERN, 0),
    ]
    assert runs[1]["payload"]["settings"]["links"] == "W1,W2"
    assert runs[3]["payload"]["settings"]["close.min-share-pct"] == "50"


def test_settings_show_set_and_refuse(tieout: Tieout) -> None:
    shown = tieout.ok("surveil", "settings", "show", "--json").json()
    assert (shown["wash.window-s"], shown["links"], shown["rules"]) == ("300", "none", "all")
    done = tieout.ok("surveil", "settings", "set", "surveil.wash.window-s", "120.0", "--json")
    assert done.json()["wash.window-s"] == "120"
    assert tieout("surveil", "settings", "set", "links", "B1,NOPE").code == 5  # no such account
    bad = tieout("surveil", "settings", "set", "wash.window-s", "0")
    assert bad.code == 3 and "greater than zero" in bad.err
    assert tieout("surveil", "settings", "set", "nonsense", "1").code == 3
    assert tieout("surveil", "run", "--date", "2026-13-01").code == 3
    assert tieout("surveil", "list", "--rule", "nonsense").code == 3
    assert tieout("surveil", "show", "99").code == 5
    assert "0 alert(s) for 2026-01-21" in tieout.ok("surveil", "run", "--date", "2026-01-21").out


def test_settings_beyond_their_range_are_refused_and_runs_go_on(tieout: Tieout) -> None:
    """A history of 1,000,000 days was stored, and every `surveil run` after it failed on a
    date out of range (exit 1); a window of 10^14 s was a traceback. Refused now (exit 3),
    with the most the setting takes; the runs go on."""
    before = tieout.ok("surveil", "settings", "show", "--json").json()
    for name, value, most in (
        ("history-days", "1000000", "3,660"),
        ("wash.window-s", "100000000000000", "a year"),
        ("flip.window-s", "31622401", "a year"),
        ("rate.max-messages", "1000000001", "1,000,000,000"),
    ):
        r = tieout("surveil", "settings", "set", name, value)
        assert r.code == 3, (name, r.err)
        assert "Traceback" not in r.err and most in r.err, r.err
    assert tieout.ok("surveil", "settings", "show", "--json").json() == before
    tieout.ok("surveil", "settings", "set", "history-days", "3660")
    tieout.ok("surveil", "settings", "set", "wash.window-s", "31622400")
    assert "0 alert(s) for 2026-01-21" in tieout.ok("surveil", "run", "--date", "2026-01-21").out
    # a value stored before the bounds existed still reads (bounds are checked when set)
    from oms import book
    from oms.store import Store

    store = Store.open(tieout.db_url)
    try:
        with store.write() as conn:
            ctx = book.Ctx("tester", datetime.now(UTC))
            book.put_setting(conn, ctx, "surveil.rate.max-messages", "2000000000")
    finally:
        store.dispose()
    shown = tieout.ok("surveil", "settings", "show", "--json").json()
    assert shown["rate.max-messages"] == "2000000000"
    assert "0 alert(s) for 2026-01-21" in tieout.ok("surveil", "run", "--date", "2026-01-21").out


def test_spoofing_in_the_first_hour_of_a_sydney_session_is_seen(
    tieout: Tieout, tmp_path: Path
) -> None:
    """AEDT (UTC+11): Monday's ASX session opens at 23:00 UTC on Sunday. Orders placed and
    canceled at 10:05 Monday Sydney time carry Sunday's UTC date while their trades carry
    Monday's trade date: `surveil run` read orders by UTC day and trades by trade date, so a
    spoof in that first hour was seen on neither date. Orders are now read by the trade date
    of their events on their exchange."""
    t = tieout.at("2026-03-01T23:04:00Z")
    t.ok("instrument", "add", "BHP", "--exchange", "XASX", "--currency", "AUD")
    t.ok("account", "open", "ACC", "--currency", "AUD")
    t.ok("cash", "deposit", "ACC", "100000000")
    t.ok("md", "import", write(tmp_path / "b.csv", "time,symbol,open,high,low,close,volume\n"
                               "2026-03-01T23:03:00Z,BHP,50,50,50,50,1000000\n"))

    def order(at: str, *args: str) -> None:
        tieout.at(at).ok("order", "submit", "--account", "ACC", "--symbol", "BHP", *args)

    order("2026-03-01T23:04:00Z", "--side", "buy", "--qty", "1000")
    order("2026-03-01T23:05:00Z", "--side", "buy", "--qty", "10000", "--type", "limit",
          "--limit", "46", "--tif", "gtc", "--client-order-id", "S1")  # fmt: skip
    order("2026-03-01T23:05:03Z", "--side", "sell", "--qty", "100")
    tieout.at("2026-03-01T23:05:06Z").ok("order", "cancel", "--client-order-id", "S1")
    later = tieout.at("2026-03-03T12:00:00Z")
    monday = later.ok("surveil", "run", "--date", "2026-03-02", "--json").json()
    assert "spoofing" in {a["rule"] for a in monday}, monday
    assert later.ok("surveil", "run", "--date", "2026-03-01", "--json").json() == []


def test_an_evening_burst_in_new_york_is_alerted_on_one_date(tieout: Tieout) -> None:
    """Nine orders at 19:10 New York time on 6 January (00:10 UTC on the 7th): one order-rate
    alert, on New York's date; counting messages by either the exchange's or the UTC date
    alerted the same burst on both dates (a re-review)."""
    t = tieout.at("2026-01-06T15:00:00Z")
    t.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    t.ok("account", "open", "U1", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "U1", "1000000")
    t.ok("surveil", "settings", "set", "rate.max-messages", "3")
    for n in range(1, 10):
        tieout.at(f"2026-01-07T00:10:0{n}Z").ok(
            "order", "submit", "--account", "U1", "--symbol", "AAPL", "--side", "buy",
            "--qty", str(n), "--type", "limit", "--limit", "100", "--tif", "gtc",
            "--venue", "ACME")  # fmt: skip
    later = tieout.at("2026-01-08T12:00:00Z")
    alerts = {day: [a["rule"] for a in later.ok("surveil", "run", "--date", day, "--json").json()]
              for day in ("2026-01-06", "2026-01-07")}  # fmt: skip
    assert alerts == {"2026-01-06": ["order_rate"], "2026-01-07": []}


def test_the_usual_hours_are_the_exchanges_clock_across_a_dst_change(
    tieout: Tieout, tmp_path: Path
) -> None:
    """Ten sessions at 09:35 New York time (14:35 UTC in February), then 09:35 on the first
    Monday of daylight saving time (13:35 UTC): the trader kept the same hours. The window was
    measured in UTC, and every DST change raised unusual_hours (30 minutes outside 14:05-15:05
    UTC); it is measured on the exchange's clock now. 07:35 New York time still fires."""
    t = tieout.at("2026-03-11T00:00:00Z")
    t.ok("instrument", "add", "XYZ", "--exchange", "XNYS", "--currency", "USD")
    t.ok("account", "open", "DS", "--currency", "USD")
    rows = ["exec_id,account,symbol,side,quantity,price,trade_date,exec_time,venue"]
    for d in (16, 17, 18, 19, 20, 23, 24, 25, 26, 27):
        rows.append(f"h{d},DS,XYZ,buy,100,100,2026-02-{d},2026-02-{d}T14:35:00Z,EXT")
    rows.append("t1,DS,XYZ,buy,100,100,2026-03-09,2026-03-09T13:35:00Z,EXT")
    rows.append("t2,DS,XYZ,buy,100,100,2026-03-10,2026-03-10T11:35:00Z,EXT")
    t.ok("exec", "import", write(tmp_path / "e.csv", "\n".join(rows) + "\n"))
    assert t.ok("surveil", "run", "--date", "2026-03-09", "--json").json() == []
    (alert,) = t.ok("surveil", "run", "--date", "2026-03-10", "--json").json()
    assert alert["rule"] == "unusual_hours"
    window = alert["details"]["usual_window"]
    assert (window["from"], window["to"], window["clock"]) == (
        "09:05:00", "10:05:00", "America/New_York"
    )  # fmt: skip
