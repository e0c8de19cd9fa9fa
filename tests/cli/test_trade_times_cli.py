"""Through the real command on both backends: the date and time of a trade in statements and
confirmations (an audit of the documents, 2026-11-28).

A trade's date is its exchange's (a New York evening fill at 00:30 UTC trades on the day
before), but the documents printed the trade date beside the UTC clock time of the execution:
"2026-11-25 00:30:00 UTC", a day off. A correction's or bust's confirmation showed the time the
change was booked, not when the trade it changes was executed.
"""

import csv
import html
import re
from pathlib import Path

from tests.cli.test_exec_apply_review import apply
from tests.cli.test_order_cli import report
from tests.conftest import Tieout


def _text(path: Path) -> str:
    page = re.sub(r"<style.*?</style>", "", path.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _confirmed(t: Tieout, day: str, out: Path) -> dict[str, str]:
    doc = t.ok("report", "confirmations", "--date", day, "--out", str(out), "--format", "html",
               "--json").json()  # fmt: skip
    shown = {}
    for c in doc["confirmations"]:
        page = _text(next(out.glob(f"*-{c['exec_id']}.html")))
        shown[c["exec_id"]] = re.search(r"Trade date and time (.+?) Security", page).group(1)
    return shown


def _routed(t: Tieout, symbol: str, exchange: str, client_order_id: str) -> None:
    """A margin account A with 10,000 USD and a gtc buy of 10 `symbol` routed to ACME."""
    t.ok("instrument", "add", symbol, "--exchange", exchange, "--currency", "USD")
    t.ok("account", "open", "A", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "A", "10000")
    t.ok("order", "submit", "--account", "A", "--symbol", symbol, "--side", "buy", "--qty", "10",
         "--type", "limit", "--limit", "101", "--tif", "gtc", "--venue", "ACME",
         "--client-order-id", client_order_id)  # fmt: skip


def test_a_trade_after_midnight_utc_shows_its_own_date_and_time(
    tieout: Tieout, tmp_path: Path
) -> None:
    _routed(tieout.at("2026-11-25T14:00:00Z"), "NYX", "XNYS", "N1")
    later = tieout.at("2026-11-26T16:00:00Z")
    r = apply(later, tmp_path, "d.fix", report("N1", "E0", "0"),
              report("N1", "F1", "F", (32, "1"), (31, "100"), (60, "20261126-00:30:00")),
              report("N1", "F2", "F", (32, "1"), (31, "100"), (60, "20261125-15:08:00")),
              report("N1", "H2", "H", (19, "F2")))  # fmt: skip
    assert r.code == 0, r.err
    # the bust (booked at 16:00 the next day, without a TransactTime) states when the busted
    # trade was executed
    assert _confirmed(later, "2026-11-25", tmp_path / "c25") == {
        "F1": "2026-11-25 (executed 2026-11-26 00:30:00 UTC)",
        "F2": "2026-11-25 15:08:00 UTC",
        "H2": "2026-11-25 15:08:00 UTC",
    }
    bust = _text(next((tmp_path / "c25").glob("*-H2.html")))
    assert "Cancelled: bought for your account" in bust and "due from you" not in bust
    assert "Net amount of the cancelled trade (no longer due) 100.00 USD" in bust
    statement = tmp_path / "st.html"
    later.ok("report", "statement", "--account", "A", "--from", "2026-11-25", "--to",
             "2026-11-25", "--format", "html", "--out", str(statement))  # fmt: skip
    assert "2026-11-25 (executed 2026-11-26 00:30:00 UTC) NYX buy" in _text(statement)


def test_a_replaced_execution_says_what_decides_its_trade_now(
    tieout: Tieout, tmp_path: Path
) -> None:
    """The audit: a fill whose correction moved it to the next trade date was listed by `exec
    list --date` and `export trades` of its old date as a live fill, and nothing in that range
    said otherwise (the statement and positions of that day showed no trade)."""
    _routed(tieout.at("2026-11-26T10:00:00Z"), "COIN", "24/7", "X1")
    later = tieout.at("2026-11-27T12:00:00Z")
    r = apply(later, tmp_path, "d.fix", report("X1", "E0", "0"),
              report("X1", "F1", "F", (32, "4"), (31, "100"), (60, "20261126-11:00:00")),
              report("X1", "F2", "F", (32, "1"), (31, "100"), (60, "20261126-11:05:00")),
              report("X1", "G1", "G", (19, "F1"), (32, "4"), (31, "99"), (75, "20261127")),
              report("X1", "G2", "G", (19, "F1"), (32, "4"), (31, "98"), (75, "20261127")),
              report("X1", "H2", "H", (19, "F2")))  # fmt: skip
    assert r.code == 0, r.err
    listed = later.ok("exec", "list", "--date", "2026-11-26", "--json").json()
    assert {e["exec_id"]: e["superseded_by"] for e in listed} == {
        "F1": "G2", "F2": "H2", "H2": None,
    }  # fmt: skip
    text = later.ok("exec", "list", "--date", "2026-11-26").out
    assert "ACME:F1" in text and "[replaced: see ACME:G2]" in text
    assert "(busts ACME:F2)" in text and "[replaced: see ACME:H2]" in text
    out = tmp_path / "t.csv"
    later.ok("export", "trades", "--from", "2026-11-26", "--to", "2026-11-27", "--out", str(out))
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    exported = {row["exec_id"]: row["superseded_by"] for row in rows}
    assert exported == {"F1": "G2", "F2": "H2", "H2": "", "G1": "G2", "G2": ""}
    # the rows to sum: the trade as it stands (a bust's row, positive, replaces nothing itself)
    assert [row["exec_id"] for row in rows if row["effective"] == "true"] == ["G2"]
