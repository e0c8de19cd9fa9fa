"""A date run again after its data changed: a correction of evidence already alerted, or late
executions that add to an alert's evidence, make a new alert that names the alerts it
supersedes (`details.supersedes`); those stay as they were raised, and show what superseded
them (`superseded_by`). An alert kept its first figures after a correction (a stale washed
quantity), and late data alerted the first pair again inside a second alert."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from oms import surveil
from tests.cli.test_order_cli import report
from tests.conftest import Tieout, write

DAY = "2026-03-02"
HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,exec_time,venue"


def _run(t: Tieout, at: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = t.at(at).ok("surveil", "run", "--date", DAY, "--json").json()
    # (`new`: whether this run stored it)
    return [{k: v for k, v in a.items() if k != "new"} for a in alerts if a["rule"] == "wash_trade"]


def _listed(t: Tieout) -> list[tuple[int, str, Any, Any]]:
    return [
        (a["alert_id"], a["details"]["washed_quantity"], a["details"].get("supersedes"),
         a["superseded_by"])
        for a in t.ok("surveil", "list", "--rule", "wash_trade", "--json").json()
    ]  # fmt: skip


def _wash_pair(tieout: Tieout, tmp_path: Path) -> None:
    """W1 buys and sells 100 XYZ a minute apart on DAY (a wash trade)."""
    t = tieout.at("2026-01-02T12:00:00Z")
    t.ok("instrument", "add", "XYZ", "--exchange", "XNYS", "--currency", "USD")
    t.ok("account", "open", "W1", "--currency", "USD", "--type", "margin")
    rows = (
        f"{HEADER}\na1,W1,XYZ,buy,100,100,{DAY},{DAY}T15:00:00Z,EXT\n"
        f"a2,W1,XYZ,sell,100,100,{DAY},{DAY}T15:01:00Z,EXT\n"
    )
    tieout.at(f"{DAY}T22:00:00Z").ok("exec", "import", write(tmp_path / "a.csv", rows))


def test_a_changed_date_supersedes_its_alerts(tieout: Tieout, tmp_path: Path) -> None:
    _wash_pair(tieout, tmp_path)
    (one,) = _run(tieout, f"{DAY}T23:00:00Z")
    assert one["details"]["washed_quantity"] == "100" and one["superseded_by"] is None
    assert _run(tieout, f"{DAY}T23:01:00Z") == [one]  # the same data: the same alert

    # the venue corrects the sell to 40: the alert's figures are no longer the book's
    fix = (
        f"{HEADER},exec_type,ref_exec_id\n"
        f"c2,W1,XYZ,sell,40,100,{DAY},{DAY}T15:01:00Z,EXT,correct,a2\n"
    )
    tieout.at(f"{DAY}T23:10:00Z").ok("exec", "import", write(tmp_path / "c.csv", fix))
    (two,) = _run(tieout, f"{DAY}T23:20:00Z")
    assert two["alert_id"] != one["alert_id"]
    assert two["details"]["washed_quantity"] == "40"
    assert two["details"]["supersedes"] == [one["alert_id"]]

    # late executions of the date add a pair: one alert holds both, superseding the last one
    late = (
        f"{HEADER}\na3,W1,XYZ,buy,50,100,{DAY},{DAY}T18:00:00Z,EXT\n"
        f"a4,W1,XYZ,sell,50,100,{DAY},{DAY}T18:01:00Z,EXT\n"
    )
    tieout.at(f"{DAY}T23:30:00Z").ok("exec", "import", write(tmp_path / "l.csv", late))
    (three,) = _run(tieout, f"{DAY}T23:40:00Z")
    assert three["details"]["supersedes"] == [one["alert_id"], two["alert_id"]]
    assert _listed(tieout) == [
        (one["alert_id"], "100", None, two["alert_id"]),
        (two["alert_id"], "40", [one["alert_id"]], three["alert_id"]),
        (three["alert_id"], three["details"]["washed_quantity"], [1, 2], None),
    ]
    assert _run(tieout, f"{DAY}T23:50:00Z") == [three]  # nothing new: nothing added
    shown = tieout.ok("surveil", "show", str(one["alert_id"])).json()
    assert shown["superseded_by"] == two["alert_id"]
    # the exception report of the date says so beside the stale figures
    out = tmp_path / "x.json"
    tieout.at(f"{DAY}T23:55:00Z").ok(
        "report", "exceptions", "--date", DAY, "--format", "json", "--out", str(out)
    )
    report = json.loads(out.read_text())
    washes = {
        a["alert_id"]: a["details"]
        for a in report["surveillance_alerts"]
        if a["rule"] == "wash_trade"
    }
    assert [d.get("superseded_by") for d in washes.values()] == [
        str(two["alert_id"]),
        str(three["alert_id"]),
        None,
    ]


def test_an_alert_stored_under_a_key_of_before_is_not_raised_again(
    tieout: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alerts stored before the key took the evidence's terms (a digest of its ids only) are
    found by their evidence: a rerun of their date on the same data adds nothing."""
    _wash_pair(tieout, tmp_path)

    def key_of_before(self: surveil.Alert) -> str:
        ids = sorted(o.order_id for o in self.orders) + sorted(t.ref for t in self.trades)
        digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]
        who = f"{self.account or '-'}|{self.symbol or '-'}"
        return f"{self.day.isoformat()}|{self.rule}|{who}|{digest}"

    with monkeypatch.context() as m:
        m.setattr(surveil.Alert, "key", property(key_of_before))
        (old,) = _run(tieout, f"{DAY}T23:00:00Z")
    assert _run(tieout, f"{DAY}T23:30:00Z") == [old]
    assert len(tieout.ok("surveil", "list", "--json").json()) == 1


def test_an_order_of_the_evidence_changing_later_is_the_same_evidence(
    tieout: Tieout, tmp_path: Path
) -> None:
    """A wash pair through external orders; the buy order fills further the next day: its
    state in the evidence (cum_qty, status) is not the evidence's identity, and a rerun of the
    date keeps the alert."""
    t = tieout.at(f"{DAY}T14:00:00Z")
    t.ok("instrument", "add", "XYZ", "--exchange", "XNYS", "--currency", "USD")
    t.ok("account", "open", "W1", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "W1", "1000000")
    bars = f"time,symbol,open,high,low,close,volume\n{DAY}T13:59:00Z,XYZ,100,100,100,100,1000\n"
    t.ok("md", "import", write(tmp_path / "b.csv", bars))
    for side, cl in (("buy", "CB"), ("sell", "CS")):
        t.ok("order", "submit", "--account", "W1", "--symbol", "XYZ", "--side", side, "--qty",
             "100", "--type", "limit", "--limit", "100", "--tif", "gtc", "--venue", "ACME",
             "--client-order-id", cl)  # fmt: skip
    day = DAY.replace("-", "")
    first = [
        report("CB", "N1", "0"),
        report("CS", "N2", "0"),
        report("CB", "F1", "F", (32, "50"), (31, "100"), (60, f"{day}-15:00:10")),
        report("CS", "F2", "F", (32, "50"), (31, "100"), (60, f"{day}-15:00:20")),
    ]
    tieout.at(f"{DAY}T16:00:00Z").ok(
        "exec", "apply", write(tmp_path / "a.fix", "\n".join(first) + "\n")
    )
    (one,) = _run(tieout, f"{DAY}T23:00:00Z")
    later = report("CB", "F3", "F", (32, "50"), (31, "100"), (60, "20260303-15:00:10"))
    tieout.at("2026-03-03T16:00:00Z").ok("exec", "apply", write(tmp_path / "b.fix", later + "\n"))
    assert _run(tieout, "2026-03-03T23:00:00Z") == [one]
    assert len(tieout.ok("surveil", "list", "--rule", "wash_trade", "--json").json()) == 1


def test_a_correction_undone_raises_the_first_evidence_again(
    tieout: Tieout, tmp_path: Path
) -> None:
    """The venue corrects the sell to 40, then back to 100: the book's figures are the first
    alert's again, but that alert was superseded, and the run found it stored and added
    nothing: the 40 alert stayed the current one. A new alert on the first evidence supersedes
    it; running again adds nothing."""
    _wash_pair(tieout, tmp_path)
    (one,) = _run(tieout, f"{DAY}T23:00:00Z")
    head = f"{HEADER},exec_type,ref_exec_id\n"
    to40 = head + f"c2,W1,XYZ,sell,40,100,{DAY},{DAY}T15:01:00Z,EXT,correct,a2\n"
    tieout.at(f"{DAY}T23:10:00Z").ok("exec", "import", write(tmp_path / "c.csv", to40))
    (two,) = _run(tieout, f"{DAY}T23:20:00Z")
    back = head + f"c3,W1,XYZ,sell,100,100,{DAY},{DAY}T15:01:00Z,EXT,correct,c2\n"
    tieout.at(f"{DAY}T23:30:00Z").ok("exec", "import", write(tmp_path / "d.csv", back))
    (three,) = _run(tieout, f"{DAY}T23:40:00Z")
    assert three["alert_id"] not in (one["alert_id"], two["alert_id"])
    assert three["details"]["washed_quantity"] == "100" and three["superseded_by"] is None
    assert three["details"]["supersedes"] == [one["alert_id"], two["alert_id"]]
    assert _listed(tieout)[1][3] == three["alert_id"]  # the 40 alert: superseded now
    assert _run(tieout, f"{DAY}T23:50:00Z") == [three]
