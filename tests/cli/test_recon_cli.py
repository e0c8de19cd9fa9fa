"""Reconciliation through the real command on both backends: a trade recon with every kind of
outcome, quarantine, refusing the same bytes twice, breaks that live across runs and close when
a late booking or a late venue record arrives, and the break workflow with four eyes."""

from pathlib import Path

import pytest

from tests.conftest import Tieout, write

HEADER = "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission"
BOOK = (
    f"{HEADER}\n"
    "X1,A1,AAPL,buy,100,190.25,2026-11-24,ACME,1\n"
    "X2,A1,AAPL,sell,50,191.00,2026-11-24,ACME,1\n"
    "X3,A1,MSFT,buy,10,400,2026-11-24,ACME,1\n"
    "X4,A1,MSFT,sell,5,401,2026-11-24,ACME,1\n"
    "X5,A2,AAPL,buy,20,190,2026-11-24,ACME,0\n"
    "Z1,A2,AAPL,buy,20,190,2026-11-24,OTHER,0\n"  # another venue: not in this recon
)
PROFILE = """
name = "acme"
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
thousands_separator = ","
[tolerance]
price = "0.0001"
commission = "0.01"
"""
# X1 exact; X2 price within tolerance; X3 quantity differs; X4 missing at the venue; V9 only at
# the venue; X5 sent twice; one row with a bad quantity.
VENUE = (
    "Ref;Acct;Sym;BS;Qty;Px;TradeDate;Comm\n"
    "X1;A1;AAPL;B;100;190.25;24/11/2026;1.00\n"
    "X2;A1;AAPL;S;50;191.00005;24/11/2026;1\n"
    "X3;A1;MSFT;B;12;400;24/11/2026;1\n"
    "V9;A1;AAPL;B;1,000;190.5;24/11/2026;0\n"
    "X5;A2;AAPL;B;20;190;24/11/2026;0\n"
    "X5;A2;AAPL;B;20;190;24/11/2026;0\n"
    "X7;A1;AAPL;B;abc;190;24/11/2026;0\n"
)


@pytest.fixture
def recon(tieout: Tieout, tmp_path: Path) -> Tieout:
    tieout.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    tieout.ok("instrument", "add", "MSFT", "--exchange", "XNYS", "--currency", "USD")
    tieout.ok("account", "open", "A1", "--currency", "USD")
    tieout.ok("account", "open", "A2", "--currency", "USD")
    tieout.ok("exec", "import", write(tmp_path / "book.csv", BOOK))
    write(tmp_path / "acme.toml", PROFILE)
    return tieout.at("2026-11-24T22:00:00Z")


def run(t: Tieout, tmp_path: Path, name: str, text: str, day: str, *more: str) -> dict:
    f = write(tmp_path / name, text)
    return t.ok(
        "recon",
        "run",
        "--profile",
        str(tmp_path / "acme.toml"),
        "--file",
        f,
        "--date",
        day,
        *more,
        "--json",
    ).json()


def test_a_trade_recon_finds_every_kind_of_break(recon: Tieout, tmp_path: Path) -> None:
    doc = run(recon, tmp_path, "d1.csv", VENUE, "2026-11-24")
    assert (doc["kind"], doc["profile"], doc["venue"], doc["business_date"]) == (
        "trades",
        "acme",
        "ACME",
        "2026-11-24",
    )
    assert (doc["venue_rows"], doc["quarantined_rows"], doc["internal_rows"]) == (7, 1, 5)
    assert doc["breaks"] == {
        "quantity_mismatch": 1,
        "missing_at_venue": 1,
        "missing_internal": 1,
        "duplicate_venue": 1,
    }
    assert doc["matched"] == 3  # X1, X2 (within tolerance), X5
    assert len(doc["input_sha256"]) == 64
    (q,) = recon.ok("recon", "quarantine", "--run", str(doc["run_id"]), "--json").json()
    assert q["row"] == 8 and q["values"]["Qty"] == "abc"
    # a run that does not exist is not found (exit 5), for breaks as for its quarantine (the
    # breaks of run 999 were an empty list, exit 0)
    assert recon("breaks", "list", "--run", "999", "--json").code == 5
    assert recon("recon", "quarantine", "--run", "999", "--json").code == 5
    assert any("quantity" in r for r in q["reasons"])
    found = {b["type"]: b for b in recon.ok("breaks", "list", "--json").json()}
    qty = found["quantity_mismatch"]
    assert (qty["internal_refs"], qty["venue_refs"]) == (["X3"], ["X3"])
    assert qty["differences"]["quantity"] == {"internal": "10", "venue": "12"}
    assert qty["amount"] == "800"  # 2 x 400
    assert (qty["age_days"], qty["first_seen"], qty["status"]) == (0, "2026-11-24", "open")
    assert found["missing_at_venue"]["internal_refs"] == ["X4"]
    assert found["missing_internal"]["venue_refs"] == ["V9"]
    assert found["missing_internal"]["amount"] == "190500"


def test_a_venue_line_cut_short_is_quarantined_not_matched(recon: Tieout, tmp_path: Path) -> None:
    # X4's line lost its commission in transfer: read blank ("not reported"), it matched
    cut = "Ref;Acct;Sym;BS;Qty;Px;TradeDate;Comm\nX1;A1;AAPL;B;100;190.25;24/11/2026;1\n"
    doc = run(recon, tmp_path, "cut.csv", cut + "X4;A1;MSFT;S;5;401;24/11/2026", "2026-11-24")
    assert (doc["venue_rows"], doc["quarantined_rows"], doc["matched"]) == (2, 1, 1)
    assert doc["breaks"] == {"missing_at_venue": 4}  # X2 to X5, X4 among them
    (q,) = recon.ok("recon", "quarantine", "--run", str(doc["run_id"]), "--json").json()
    assert q["row"] == 3 and q["values"]["Ref"] == "X4" and q["values"]["Comm"] == ""
    assert q["reasons"] == ["the line has fewer fields than the header's 8 (it has 7)"]
    found = recon.ok("breaks", "list", "--json").json()
    assert sorted(r for b in found for r in b["internal_refs"]) == ["X2", "X3", "X4", "X5"]


def test_the_same_bytes_are_refused_unless_forced(recon: Tieout, tmp_path: Path) -> None:
    first = run(recon, tmp_path, "d1.csv", VENUE, "2026-11-24")
    r = recon(
        "recon",
        "run",
        "--profile",
        str(tmp_path / "acme.toml"),
        "--file",
        str(tmp_path / "d1.csv"),
        "--date",
        "2026-11-24",
    )
    assert r.code == 3 and "--force" in r.err and f"run {first['run_id']}" in r.err
    again = run(recon, tmp_path, "d1.csv", VENUE, "2026-11-24", "--force")
    assert again["forced"] is True
    assert again["new_breaks"] == 0 and again["closed_breaks"] == 0  # the same breaks
    assert len(recon.ok("breaks", "list", "--json").json()) == 4
    assert [r["run_id"] for r in recon.ok("recon", "runs", "--json").json()] == [1, 2]


def test_breaks_live_across_runs_until_late_items_match(recon: Tieout, tmp_path: Path) -> None:
    run(recon, tmp_path, "d1.csv", VENUE, "2026-11-24")
    # the late booking of V9, and the venue's late record of X4 in the next day's file
    recon.ok(
        "exec",
        "import",
        write(
            tmp_path / "late.csv",
            f"{HEADER}\nV9,A1,AAPL,buy,1000,190.5,2026-11-24,ACME,0\n"
            "Y1,A1,AAPL,buy,1,191,2026-11-25,ACME,0\n",
        ),
    )
    day2 = (
        "Ref;Acct;Sym;BS;Qty;Px;TradeDate;Comm\n"
        "Y1;A1;AAPL;B;1;191;25/11/2026;0\n"
        "X4;A1;MSFT;S;5;401;24/11/2026;1\n"
    )
    later = recon.at("2026-11-27T22:00:00Z")  # Thanksgiving 11-26 is not a business day
    doc = run(later, tmp_path, "d2.csv", day2, "2026-11-25")
    assert doc["closed_breaks"] == 2 and doc["new_breaks"] == 0
    assert doc["open_breaks"] == 2  # X3 quantity, X5 duplicate
    still = later.ok("breaks", "list", "--json").json()
    assert sorted(b["type"] for b in still) == ["duplicate_venue", "quantity_mismatch"]
    assert {b["age_days"] for b in still} == {2}  # 11-25 and 11-27
    closed = later.ok("breaks", "list", "--status", "resolved", "--json").json()
    assert {(b["type"], b["resolution"], b["resolved_run_id"]) for b in closed} == {
        ("missing_at_venue", "matched", 2),
        ("missing_internal", "matched", 2),
    }


def test_the_break_workflow_and_four_eyes(recon: Tieout, tmp_path: Path) -> None:
    run(recon, tmp_path, "d1.csv", VENUE, "2026-11-24")
    by_type = {b["type"]: b["break_id"] for b in recon.ok("breaks", "list", "--json").json()}
    qty = str(by_type["quantity_mismatch"])
    alice, bob = recon.as_actor("alice"), recon.as_actor("bob")
    assert alice.ok("breaks", "assign", qty, "--to", "carol", "--json").json()["owner"] == "carol"
    alice.ok("breaks", "comment", qty, "--text", "<b>venue</b> says 12; checking")
    asked = alice.ok(
        "breaks", "resolve", qty, "--reason", "written_off", "--note", "small", "--json"
    ).json()
    assert asked["status"] == "open" and asked["pending_approval"] is True
    r = alice("breaks", "approve", qty)
    assert r.code == 4 and "another operator" in r.err
    # nor may the requester close it another way, round the approval asked for (an audit)
    r = alice("breaks", "resolve", qty, "--reason", "other")
    assert r.code == 4 and "waits for another operator's approval" in r.err
    r = bob("breaks", "approve", qty, "--hash", "0" * 64)
    assert r.code == 4 and "something else" in r.err
    # the approver finds the request's hash where they review the break (it was in the
    # requester's answer alone)
    listed = {str(b["break_id"]): b for b in bob.ok("breaks", "list", "--json").json()}
    assert listed[qty]["request_hash"] == asked["request_hash"]
    shown_text = bob.ok("breaks", "show", qty).out
    assert f"tieout breaks approve {qty} --hash {asked['request_hash']}" in shown_text
    done = bob.ok("breaks", "approve", qty, "--hash", asked["request_hash"], "--json").json()
    assert (done["status"], done["resolution"], done["resolved_by"]) == (
        "resolved",
        "written_off",
        "bob",
    )
    assert bob("breaks", "comment", qty, "--text", "late").code == 4
    shown = bob.ok("breaks", "show", qty, "--json").json()
    assert [h["action"] for h in shown["history"]] == [
        "opened",
        "assigned",
        "commented",
        "resolution_requested",
        "approved",
        "resolved",
    ]
    assert shown["history"][2]["text"] == "<b>venue</b> says 12; checking"
    miss = str(by_type["missing_at_venue"])
    timing = alice.ok("breaks", "resolve", miss, "--reason", "timing", "--json").json()
    assert timing["status"] == "resolved"  # not a write-off: no second operator needed
    assert alice("breaks", "resolve", miss, "--reason", "whatever").code == 3
    assert alice("breaks", "assign", "999", "--to", "x").code == 5
    assert alice.ok("audit", "verify", "--json").json()["ok"] is True


def test_fail_on_breaks_exits_6(recon: Tieout, tmp_path: Path) -> None:
    f = write(tmp_path / "d1.csv", VENUE)
    r = recon(
        "recon",
        "run",
        "--profile",
        str(tmp_path / "acme.toml"),
        "--file",
        f,
        "--date",
        "2026-11-24",
        "--fail-on-breaks",
        "--json",
    )
    assert r.code == 6 and r.json()["open_breaks"] == 4


def test_profiles_kept_in_the_database(recon: Tieout, tmp_path: Path) -> None:
    added = recon.ok("recon", "profile", "add", str(tmp_path / "acme.toml"), "--json").json()
    assert added["added"] is True and added["name"] == "acme"
    assert (
        recon.ok("recon", "profile", "add", str(tmp_path / "acme.toml"), "--json").json()["added"]
        is False
    )
    f = write(tmp_path / "d1.csv", VENUE)
    doc = recon.ok(
        "recon", "run", "--profile", "acme", "--file", f, "--date", "2026-11-24", "--json"
    ).json()
    assert doc["profile_version"] == added["version"]
    assert recon("recon", "run", "--profile", "nope", "--file", f, "--date", "2026-11-24").code == 5
    bad = write(tmp_path / "bad.toml", PROFILE.replace('kind = "trades"', 'kind = "bonds"'))
    r = recon("recon", "profile", "add", bad)
    assert r.code == 3 and "kind" in r.err
