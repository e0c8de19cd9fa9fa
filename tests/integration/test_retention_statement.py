"""A statement after `retention apply` says what it said before: retention archives old journal
entries into a carry-forward entry, trade settlements included, while the executions of
positions still open stay in the book, and the statement takes trade cash from those
executions (it counted their cash twice: closing cash and NAV short by every live fill's cash
settled before the cut-off)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Tieout, write

OLD = "2018-01-10T12:00:00Z"
NOW = "2026-03-20T15:00:00Z"
HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees"
KEYS = ("opening_cash", "closing_cash", "settled_cash", "opening_nav", "closing_nav")


def _book(t: Tieout, tmp_path: Path, between: Callable[[], None] | None = None) -> None:
    """2018: R trades FLAT flat (archived by retention), keeps OPEN and HALF open (a buy, a
    partial sell, a corrected fill and a busted one), deposits and withdraws; 2026: a bar for
    each open symbol and a deposit."""
    o = t.at(OLD)
    o.ok("init")
    for symbol in ("FLAT", "OPEN", "HALF"):
        o.ok("instrument", "add", symbol, "--exchange", "XNYS", "--currency", "USD")
    o.ok("account", "open", "R", "--currency", "USD", "--type", "margin")
    o.ok("cash", "deposit", "R", "10000")
    two_days_ago = "2018-01-07T12:00:00Z"
    t.at(two_days_ago).ok("destination", "add", "R", "bank-1")
    rows = [
        "F1,R,FLAT,buy,10,10,2018-01-02,X,1,0.05",
        "F2,R,FLAT,sell,10,12.5,2018-01-03,X,1,0.05",
        "O1,R,OPEN,buy,7,20.125,2018-01-02,X,1.5,0",
        "O2,R,OPEN,buy,3,21,2018-01-03,X,0.75,0.01",
        "H1,R,HALF,buy,8,30,2018-01-02,X,2,0.1",
        "H2,R,HALF,sell,3,31.5,2018-01-04,X,1,0.02",
    ]
    o.ok("exec", "import", write(tmp_path / "a.csv", HEADER + "\n" + "\n".join(rows) + "\n"))
    changes = (
        HEADER + ",exec_type,ref_exec_id\n"
        "O3,R,OPEN,buy,4,19,2018-01-05,X,1,0,fill,\n"
        "O4,R,OPEN,buy,4,19.5,2018-01-05,X,1,0,correct,O3\n"
        "H3,R,HALF,buy,2,29,2018-01-05,X,0.5,0,fill,\n"
        "H4,R,HALF,buy,2,29,2018-01-05,X,0.5,0,bust,H3\n"
    )
    o.ok("exec", "import", write(tmp_path / "b.csv", changes))
    o.ok("cash", "withdraw", "R", "250.5", "--to", "bank-1")
    if between is not None:  # what a test books between 2018 and 2026, in the clock's order
        between()
    bars = "time,symbol,open,high,low,close,volume\n" + "".join(
        f"2026-03-10T15:00:00Z,{s},{px},{px},{px},{px},100\n"
        for s, px in (("OPEN", 22), ("HALF", 33))
    )
    t.at("2026-03-10T15:01:00Z").ok("md", "import", write(tmp_path / "bars.csv", bars))
    t.at("2026-03-11T15:00:00Z").ok("cash", "deposit", "R", "5")


def _statement(t: Tieout, tmp_path: Path, name: str, start: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    t.at(NOW).ok(
        "report", "statement", "--account", "R", "--from", start, "--to", "2026-03-19",
        "--format", "json", "--out", str(out),
    )  # fmt: skip
    doc: dict[str, Any] = json.loads(out.read_text())
    return {k: doc[k] for k in KEYS}


def test_a_statement_says_the_same_after_retention(db_url: str, tmp_path: Path) -> None:
    t = Tieout(db_url)
    _book(t, tmp_path)
    balance = t.at(NOW).ok("cash", "balance", "R", "--json").json()["balance"]
    positions = t.at(NOW).ok("positions", "--account", "R", "--json").json()
    before = {start: _statement(t, tmp_path, f"b{start}", start)
              for start in ("2026-03-01", "2026-03-11")}  # fmt: skip
    assert before["2026-03-01"]["closing_cash"] == balance  # the book's cash, to the digit

    done = t.at(NOW).ok("retention", "apply", "--archive-dir", str(tmp_path / "arch"), "--json")
    archived = done.json()["archived"]
    assert archived["executions"] == 2  # FLAT's: OPEN's and HALF's stay (positions open)
    assert archived["journal_entries"] > 0 and done.json()["carry_forward_entries"]

    after = {start: _statement(t, tmp_path, f"a{start}", start)
             for start in ("2026-03-01", "2026-03-11")}  # fmt: skip
    assert after == before
    assert t.at(NOW).ok("cash", "balance", "R", "--json").json()["balance"] == balance
    assert t.at(NOW).ok("positions", "--account", "R", "--json").json() == positions
    # FLAT's fills are all archived: flat, listed by positions, and no open lots (was exit 5)
    assert t.at(NOW).ok("lots", "--account", "R", "--symbol", "FLAT", "--json").json() == []


def test_statements_across_two_retention_runs(db_url: str, tmp_path: Path) -> None:
    """Runs more often than the retention period leave several carry-forward entries: a
    statement after the latest is what it was (each run's cash is counted once); one of a
    period before it is refused, since what it would show is in the archive (a carry-forward
    may hold entries of any earlier date: it is dated the last one it carries)."""
    t = Tieout(db_url)

    def in_2021() -> None:
        later = t.at("2021-01-12T12:00:00Z")
        later.ok("cash", "deposit", "R", "700")
        rows = "N1,R,OPEN,buy,2,25,2021-01-11,X,0.5,0\nN2,R,HALF,sell,1,35,2021-01-11,X,0.25,0\n"
        later.ok("exec", "import", write(tmp_path / "n.csv", HEADER + "\n" + rows))

    _book(t, tmp_path, in_2021)  # 2018: R's trades and cash; 2021: more
    periods = (
        ("2019-06-01", "2019-06-30"),  # between the two carry-forwards' dates
        ("2020-06-01", "2021-06-30"),  # holding the second's
        ("2027-05-01", "2027-05-31"),  # after both
    )
    end = "2027-06-01T12:00:00Z"

    def statement(name: str, start: str, stop: str) -> Any:
        path = tmp_path / f"{name}-{start}.json"
        r = t.at(end)(
            "report", "statement", "--account", "R", "--from", start, "--to", stop,
            "--format", "json", "--out", str(path),
        )  # fmt: skip
        if r.code:
            return r
        doc = json.loads(path.read_text())
        return {k: doc[k] for k in ("opening_cash", "closing_cash", "closing_nav")}

    before = [statement("before", *p) for p in periods]
    for at in ("2026-03-20T15:00:00Z", end):  # each 6 years back: two carry-forwards
        done = t.at(at).ok("retention", "apply", "--archive-dir", str(tmp_path / at), "--json")
        assert done.json()["carry_forward_entries"], at
    after = [statement("after", *p) for p in periods]
    assert after[2] == before[2]
    for refused in after[:2]:
        assert refused.code == 3, refused
        assert "records up to 2021-01-12 are archived" in refused.err
        assert "start it on 2021-01-13 or later" in refused.err
    balance = t.at(end).ok("cash", "balance", "R", "--json").json()["balance"]
    assert before[-1]["closing_cash"] == balance


def test_a_ledger_kept_longer_than_its_executions(db_url: str, tmp_path: Path) -> None:
    """The ledger's retention period longer than the executions': the flat trades are archived
    while their settlement entries stay in the journal, and a statement (which takes trade
    cash from the executions) lost their cash: closing cash and NAV short by FLAT's net cash
    (22.90), its settled cash right."""
    t = Tieout(db_url)
    _book(t, tmp_path)
    before = _statement(t, tmp_path, "before", "2026-03-01")
    t.at(NOW).ok("retention", "set", "ledger", "10y")
    done = t.at(NOW).ok("retention", "apply", "--archive-dir", str(tmp_path / "arch"), "--json")
    archived = done.json()["archived"]
    assert archived["executions"] == 2 and archived["journal_entries"] == 0
    assert _statement(t, tmp_path, "after", "2026-03-01") == before


def test_a_statement_of_an_archived_period_is_refused(db_url: str, tmp_path: Path) -> None:
    """Retention archived R's deposit and trades of January 2018 into a carry-forward dated the
    last of them: a statement of 2018-01-01..2018-01-02 showed no deposit and a closing cash
    of -5,001 (the trade's cash without the deposit before it)."""
    t = Tieout(db_url)
    _book(t, tmp_path)
    t.at(NOW).ok("retention", "apply", "--archive-dir", str(tmp_path / "arch"))
    r = t.at(NOW)("report", "statement", "--account", "R", "--from", "2018-01-01", "--to",
                  "2018-01-02", "--format", "json", "--out", str(tmp_path / "s.json"))  # fmt: skip
    assert r.code == 3 and "are archived" in r.err, r.err
    assert not (tmp_path / "s.json").exists()


def test_archived_settlements_after_the_last_archived_trade_refuse_the_period(
    db_url: str, tmp_path: Path
) -> None:
    """The ledger kept longer than the executions: FLAT's sale of 2018-01-03 is archived, its
    settlement (value 2018-01-05) stays in the journal. A statement from 2018-01-04 (after the
    last archived trade) showed that settlement as a line of its own and another opening cash
    than before: refused, as the archived dates are."""
    t = Tieout(db_url)
    _book(t, tmp_path)
    t.at(NOW).ok("retention", "set", "ledger", "10y")
    t.at(NOW).ok("retention", "apply", "--archive-dir", str(tmp_path / "arch"))
    r = t.at(NOW)("report", "statement", "--account", "R", "--from", "2018-01-04", "--to",
                  "2018-01-31", "--format", "json", "--out", str(tmp_path / "s.json"))  # fmt: skip
    assert r.code == 3 and "are archived" in r.err, r.err


def test_an_archived_account_that_nets_to_zero_still_refuses_its_period(
    db_url: str, tmp_path: Path
) -> None:
    """Z deposits 100 and withdraws it in 2018: its archived entries net to zero, no
    carry-forward was written, and the statement of 2018 said neither (exit 0)."""
    t = Tieout(db_url)
    o = t.at(OLD)
    o.ok("init")
    o.ok("account", "open", "Z", "--currency", "USD")
    o.ok("cash", "deposit", "Z", "100")
    t.at("2018-01-09T12:00:00Z").ok("destination", "add", "Z", "bank-z")
    o.ok("cash", "withdraw", "Z", "100", "--to", "bank-z")
    t.at("2026-03-11T15:00:00Z").ok("account", "open", "Y", "--currency", "USD")
    t.at("2026-03-11T15:00:00Z").ok("cash", "deposit", "Y", "5")  # the newest entry: not Z's
    t.at(NOW).ok("retention", "apply", "--archive-dir", str(tmp_path / "arch"))
    r = t.at(NOW)("report", "statement", "--account", "Z", "--from", "2018-01-01", "--to",
                  "2018-12-31", "--format", "json", "--out", str(tmp_path / "z.json"))  # fmt: skip
    assert r.code == 3 and "are archived" in r.err, r.err
    assert t.at(NOW).ok("cash", "balance", "Z", "--json").json()["balance"] in ("0", "0.00")
