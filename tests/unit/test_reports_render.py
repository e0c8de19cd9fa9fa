"""Rendering report data: autoescaped templates (markup in any text is shown, never run),
StrictUndefined, self-contained HTML, display rounding, chart geometry and a PDF smoke test."""

from __future__ import annotations

import dataclasses
import re
import zlib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest

from oms.values import Side
from reports import charts, documents, fmt, render
from reports.confirmations import ConfirmationInput, ExecutionFacts, build_confirmation
from reports.exceptions import (
    BreakRow,
    Comment,
    Difference,
    ExceptionInput,
    QuarantineRow,
    RunRow,
    build_exceptions,
)
from reports.firm import firm_from_settings
from reports.statement import AccountInfo, CashEntry, Mark, build_statement
from tests.htmltext import parse_html
from tests.pdftext import read_pdf
from tests.unit.test_reports_statement import fill, make_input

D = Decimal
HOSTILE = "<script>alert(1)</script>"
NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)


def pdf_pages(data: bytes) -> int:
    """Pages of a PDF: its page objects, in plain or deflated (object) streams."""
    found = len(re.findall(rb"/Type\s*/Page(?![a-z])", data))
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            found += len(re.findall(rb"/Type\s*/Page(?![a-z])", zlib.decompress(stream)))
        except zlib.error:
            continue
    return found


def hostile_statement(trades: int = 2) -> object:
    account = AccountInfo("A1", HOSTILE + " & Co", "USD", "margin")
    fills = [fill(i + 1, Side.BUY, "1", "10", "1", on=1, symbol="<b>X</b>") for i in range(trades)]
    entries = [
        CashEntry(1, "deposit", date(2026, 3, 3), D("1000"), "<img src=x onerror=alert(2)>"),
        CashEntry(2, "withdrawal", date(2026, 3, 3), D("-10"), None, "<iframe>"),
    ]
    marks = [Mark("<b>X</b>", date(2026, 3, 3), D("11"))]
    inp = make_input(fills, entries, marks, start=1, end=3, account=account)
    firm = firm_from_settings({"firm.name": "<i>Firm</i>", "firm.address": "1 <u>Main</u> St"})
    return build_statement(dataclasses.replace(inp, firm=firm))


def assert_escaped(html: str, *raw: str) -> None:
    for text in raw:
        assert text not in html, text
    assert "<script" not in html.replace("&lt;script", "")


def test_statement_markup_in_names_and_refs_is_text() -> None:
    html = documents.statement_html(hostile_statement())  # type: ignore[arg-type]
    assert_escaped(html, HOSTILE, "<b>X</b>", "<img src=x", "<iframe>", "<i>Firm</i>", "<u>Main")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "&lt;b&gt;X&lt;/b&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html


BREAK = BreakRow(
    break_id=7, run_id=3, first_run_id=2, profile="acme", kind="trades", type="price_mismatch",
    status="open", account="A1", symbol="AAPL", currency="USD", internal_refs=("V:E1",),
    venue_refs=("row:4",), differences=(Difference("price", "190.25", "190.26"),),
    first_seen=date(2026, 11, 20), age_days=3, amount=D("1.00"), suggestion=None, owner=None,
    resolution=None, resolution_note=None, pending_approval=False, requested_by=None,
    resolved_by=None, resolved_at=None, resolved_run_id=None,
)  # fmt: skip
RUN = RunRow(
    run_id=3, kind="trades", profile="acme", venue="ACME", business_date=date(2026, 11, 25),
    input_path="/x.csv", input_sha256="f" * 64, forced=False, internal_rows=10, venue_rows=12,
    quarantined_rows=2, matched=9, breaks=(("price_mismatch", 1),), open_breaks=1,
    closed_breaks=0, started_at=NOW, duration_s=D("0.125"), actor="ops",
)  # fmt: skip


def _break(**kw: Any) -> BreakRow:
    return dataclasses.replace(BREAK, **kw)


def _run(run_id: int = 3, **kw: Any) -> RunRow:
    return dataclasses.replace(RUN, run_id=run_id, **kw)


def hostile_exceptions() -> object:
    b = _break(
        suggestion=HOSTILE,
        symbol="<b>SYM</b>",
        differences=(Difference("<i>price</i>", "<u>1</u>", None),),
        comments=(Comment(NOW, "ops", "<img src=y onerror=alert(3)>"),),
        owner="<svg onload=alert(4)>",
    )
    q = QuarantineRow(3, "acme", 5, (("qty", "<a href=javascript:x>1</a>"),), (HOSTILE,))
    inp = ExceptionInput(
        date(2026, 11, 25), (_run(),), (b,), (), (q,), firm_from_settings({}), NOW, "c" * 64
    )
    return build_exceptions(inp)


def test_exception_report_markup_in_comments_and_suggestions_is_text() -> None:
    html = documents.exceptions_html(hostile_exceptions())  # type: ignore[arg-type]
    assert_escaped(
        html, HOSTILE, "<b>SYM</b>", "<i>price</i>", "<u>1</u>", "<img src=y", "<svg onload",
        "<a href=javascript",
    )  # fmt: skip
    assert "&lt;img src=y onerror=alert(3)&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_confirmation_markup_is_text() -> None:
    facts = ExecutionFacts(
        1, "<b>E1</b>", "V", "A1", "AAPL", Side.BUY, D("10"), D("190.25"), "USD",
        date(2026, 11, 24), date(2026, 11, 25), NOW, D("1"), D("0.02"), None, HOSTILE, "fill",
        None,
    )  # fmt: skip
    c = build_confirmation(
        ConfirmationInput(facts, AccountInfo("A1", HOSTILE, "USD", "cash"), "XNYS",
                          firm_from_settings({}), NOW)
    )  # fmt: skip
    html = documents.confirmation_html(c)
    assert_escaped(html, HOSTILE, "<b>E1</b>")
    assert (c.gross, c.net, c.capacity) == (D("1902.50"), D("1903.52"), "agent")
    assert c.file_name == "confirm-2026-11-24-A1-V-_b_E1__b_"


def test_a_correction_is_confirmed_at_the_time_of_the_trade_it_changes() -> None:
    """The re-review: a correction of a fill without a time showed the correction's own time
    as when the trade was executed; the trade date alone is right then."""
    booked = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
    facts = ExecutionFacts(
        2, "G1", "V", "A1", "AAPL", Side.BUY, D("10"), D("190"), "USD", date(2026, 11, 25),
        date(2026, 11, 26), booked, D("0"), D("0"), None, None, "correct", "E1",
    )  # fmt: skip
    account = AccountInfo("A1", "A", "USD", "cash")
    untimed = build_confirmation(
        ConfirmationInput(facts, account, "XNYS", firm_from_settings({}), NOW, None)
    )
    assert untimed.traded_time is None
    assert "Trade date and time</td><td>2026-11-25</td>" in documents.confirmation_html(untimed)
    traded = datetime(2026, 11, 25, 15, 8, tzinfo=UTC)
    timed = build_confirmation(
        ConfirmationInput(facts, account, "XNYS", firm_from_settings({}), NOW, traded)
    )
    assert "2026-11-25 15:08:00 UTC" in documents.confirmation_html(timed)


def test_a_missing_field_fails_the_rendering() -> None:
    s = hostile_statement()
    fields = {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}  # type: ignore[arg-type]
    del fields["notes"]
    stand_in = SimpleNamespace(**fields, currency="USD", change_in_nav=D(0),
                               unrealized_pnl_change=D(0), pending_settlement=D(0))  # fmt: skip
    with pytest.raises(jinja2.UndefinedError, match="notes"):
        documents.statement_html(stand_in)  # type: ignore[arg-type]
    with pytest.raises(jinja2.UndefinedError, match="audit_head"):
        render.render_html("statement.html", s=s, firm=s.firm, generated_at=NOW)  # type: ignore[attr-defined]


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "div", "h1", "h2", "h3", "p",
    "table", "thead", "tbody", "tr", "th", "td", "span", "strong", "br", "ul", "li", "footer",
    "svg", "line", "text", "polyline", "rect",
}  # fmt: skip


def test_html_is_self_contained() -> None:
    for html in (
        documents.statement_html(hostile_statement()),  # type: ignore[arg-type]
        documents.exceptions_html(hostile_exceptions()),  # type: ignore[arg-type]
    ):
        assert "<style>" in html and "<svg" in html
        tags = re.findall(r"<[a-zA-Z][^<>]*>", html)  # real tags: escaped text has no "<"
        assert {t.split()[0].strip("<>") for t in tags} <= ALLOWED_TAGS
        assert not [t for t in tags if re.search(r"\s(src|href|on[a-z]+)\s*=", t)]
        assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg\")", html)


def test_pdf_html_uses_only_the_packaged_fonts() -> None:
    html = documents.statement_html(hostile_statement(), pdf=True)  # type: ignore[arg-type]
    urls = re.findall(r'url\("([^"]+)"\)', html)
    assert urls and all(u.startswith(render.TEMPLATES.as_uri()) for u in urls)


def test_display_rounding_is_half_even_per_currency() -> None:
    assert fmt.money(D("2.345"), "USD") == "2.34"
    assert fmt.money(D("2.355"), "USD") == "2.36"
    assert fmt.money(D("-1234567.005"), "USD") == "-1,234,567.00"
    assert fmt.money(D("-0.001"), "USD") == "0.00"
    assert fmt.money(D("1500.5"), "JPY") == "1,500"
    assert fmt.money(D("1.2345"), "KWD") == "1.234"
    assert fmt.money(None, "USD") == fmt.DASH
    assert fmt.price(D("190.5")) == "190.50"
    assert fmt.price(D("0.123456")) == "0.123456"
    assert fmt.quantity(D("1500.000")) == "1,500"
    assert fmt.pct(D("12.345")) == "12.34%"


def test_chart_points_stay_inside_the_plot() -> None:
    series = [(date(2026, 3, d), D(v)) for d, v in ((1, "100"), (2, "-50.5"), (3, "1e6"))]
    c = charts.line_chart(series, "USD")
    points = [tuple(D(x) for x in p.split(",")) for p in c.points.split()]
    assert len(points) == 3
    for x, y in points:
        assert c.left <= x <= c.right and c.top <= y <= c.bottom
    assert [g.text for g in c.grid] == ["1,000,000.00", "499,974.75", "-50.50"]
    flat = charts.line_chart([(date(2026, 3, 1), D(5))], "USD")
    assert flat.points.count(",") == 1 and not flat.empty
    bars = charts.bar_chart([("0-1", 0), ("2-5", 4), (">10", 2)])
    assert bars.bars[0].height == "0.0"


def test_statement_pdf_has_page_numbers_of_its_pages(tmp_path: Path) -> None:
    s = hostile_statement(trades=90)  # long enough for several pages
    pdf = render.render_pdf(documents.statement_html(s, pdf=True))  # type: ignore[arg-type]
    assert pdf.data.startswith(b"%PDF-")
    assert pdf.pages >= 3
    assert pdf_pages(pdf.data) == pdf.pages
    read = read_pdf(pdf.data, tmp_path)
    assert len(read.pages) == pdf.pages
    for i, page in enumerate(read.pages, start=1):
        assert f"Page {i} of {pdf.pages}" in page
        assert "Account statement" in page  # the running header on every page
    assert "<b>X</b>" in read.text and "<i>Firm</i>" in read.text  # markup printed as text


def test_documents_are_well_formed_html() -> None:
    statement = parse_html(documents.statement_html(hostile_statement()))  # type: ignore[arg-type]
    assert HOSTILE + " & Co" in statement and "<b>X</b>" in statement
    exceptions = parse_html(documents.exceptions_html(hostile_exceptions()))  # type: ignore[arg-type]
    for raw in (HOSTILE, "<b>SYM</b>", "<svg onload=alert(4)>", "<img src=y onerror=alert(3)>",
                "<a href=javascript:x>1</a>"):
        assert raw in exceptions, raw  # shown as the characters it is made of
    with pytest.raises(AssertionError, match="closes inside"):  # the checker can fail
        parse_html("<!DOCTYPE html><html><body><table><tr><td>1</tr></table></body></html>")


def test_a_confirmation_s_amounts_foot_to_the_cash_booked() -> None:
    """An audit: sell 30 @ 10.0025 with 0.50 commission and 0.01 fees showed gross 300.08 and
    net 299.56 (each rounded on its own), so gross less costs was 299.57 on the page; the
    book's cash entry is 299.565. A confirmation shows its amounts exactly."""
    facts = ExecutionFacts(
        1, "E1", "V", "A1", "ODD", Side.SELL, D("30"), D("10.0025"), "USD",
        date(2026, 11, 24), date(2026, 11, 25), NOW, D("0.5"), D("0.01"), None, None, "fill",
        None,
    )  # fmt: skip
    c = build_confirmation(
        ConfirmationInput(facts, AccountInfo("A1", "A", "USD", "cash"), "XNYS",
                          firm_from_settings({}), NOW)
    )  # fmt: skip
    text = parse_html(documents.confirmation_html(c))
    shown = {
        label: D(re.search(rf"{label}\s+([0-9.,]+) USD", text)[1].replace(",", ""))  # type: ignore[index]
        for label in ("Gross amount", "Commission", "Fees", "Net amount due to you")
    }
    assert shown == {
        "Gross amount": D("300.075"),
        "Commission": D("0.50"),
        "Fees": D("0.01"),
        "Net amount due to you": D("299.565"),
    }
    assert shown["Gross amount"] - shown["Commission"] - shown["Fees"] == c.net
    assert "Commission 0.50 USD" in text  # at least the currency's places


def test_a_trade_that_turns_a_position_over_says_what_it_closed() -> None:
    """An audit: short 20 @ 10, then buy 50 @ 9.90: the buy's row showed proceeds -495.00 and
    costs of the whole fill beside the basis and realized P&L of the 20 it closed, with nothing
    to say so. The row says how much it closed, and the JSON gives closed_quantity."""
    fills = [fill(1, Side.SELL, "20", "10", "0.40"), fill(2, Side.BUY, "50", "9.90", "1", on=1)]
    s = build_statement(make_input(fills, [], [], 0, 1))
    rows = [(t.quantity, t.closed_quantity, t.basis, t.realized_pnl) for t in s.trades]
    assert rows == [(D(20), None, None, D(0)), (D(50), D(20), D("-199.60"), D("1.20"))]
    assert [t.as_json()["closed_quantity"] for t in s.trades] == [None, "20"]
    text = parse_html(documents.statement_html(s))
    assert "* closed 20 of 50 and opened the rest the other way" in text
    assert text.count("opened the rest the other way") == 1
    # and how amounts are rounded, for a reader who adds up a column
    assert "half to even, to the currency's minor unit, each on its own" in text
    assert "a total may differ from the sum of the lines shown above it" in text
