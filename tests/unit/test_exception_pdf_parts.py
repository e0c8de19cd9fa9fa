"""Long documents' PDFs rendered in parts (memory bounded by a part, not by the day's breaks or
the account's trades): every item once and in order, the running header on every page, each
total and closing line once, and "Page i of N" over the whole document."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from oms.values import Side
from reports import documents, render
from reports.exceptions import (
    AlertRow,
    ExceptionInput,
    ExceptionReport,
    QuarantineRow,
    build_exceptions,
)
from reports.firm import firm_from_settings
from reports.statement import CashEntry, Mark, build_statement
from tests.pdftext import read_pdf
from tests.unit.test_reports_render import RUN, _break
from tests.unit.test_reports_statement import fill, make_input

NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)
DAY = date(2026, 11, 25)


def report(breaks: int, quarantined: int, alerts: int, resolved: int) -> ExceptionReport:
    return build_exceptions(
        ExceptionInput(
            DAY,
            (RUN,),
            tuple(_break(break_id=i + 1, first_seen=DAY, age_days=0) for i in range(breaks)),
            tuple(
                _break(break_id=1000 + i, status="resolved", resolution="booked late",
                       resolved_by="ops", resolved_at=NOW, resolved_run_id=3)
                for i in range(resolved)
            ),
            tuple(QuarantineRow(3, "acme", 100 + i, (("qty", f"q{i}"),), ("bad qty",))
                  for i in range(quarantined)),
            firm_from_settings({"firm.name": "Parts & Co"}),
            NOW,
            "c" * 64,
            tuple(AlertRow(500 + i, "wash_trade", "A1", "AAPL", Decimal("1"), ())
                  for i in range(alerts)),
        )
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=4, max_size=4),
    st.integers(1, 12),
)
def test_every_item_is_in_exactly_one_part_in_order(lengths: list[int], size: int) -> None:
    r = report(*lengths)
    parts = documents.exception_parts(r, size)
    assert [p.head for p in parts] == [True] + [False] * (len(parts) - 1)
    assert [p.tail for p in parts] == [False] * (len(parts) - 1) + [True]
    for name, items in (
        ("breaks", r.open_breaks),
        ("quarantined", r.quarantined),
        ("alerts", r.alerts),
        ("resolved", r.resolved),
    ):
        sections = [s for p in parts if (s := p[name]) is not None]
        assert tuple(x for s in sections for x in s.items) == items
        assert [s.first for s in sections] == [True] + [False] * (len(sections) - 1)
        assert [s.last for s in sections] == [False] * (len(sections) - 1) + [True]
        assert all(s.items for s in sections) or (not items and len(sections) == 1)
    for p in parts:
        shown = p.sections.values()
        assert sum(len(s.items) for s in shown if s is not None) <= size
    total = sum(lengths)
    assert len(parts) == max(1, -(-total // size))


def test_the_whole_document_is_one_part() -> None:
    r = report(3, 2, 1, 1)
    (whole,) = documents.exception_parts(r, None)
    assert whole.head and whole.tail
    assert (breaks := whole["breaks"]) is not None and breaks.items == r.open_breaks


def test_a_pdf_in_parts_lists_everything_once_with_its_pages_numbered(tmp_path: Path) -> None:
    r = report(9, 4, 2, 3)
    data, pages = documents.encode_exceptions(r, "pdf", part_items=4)  # 5 parts
    doc = read_pdf(data, tmp_path)
    assert pages == len(doc.pages) > 5
    for i, page in enumerate(doc.pages, 1):
        assert re.findall(r"Page \d+ of \d+", page) == [f"Page {i} of {pages}"], i
        head = page.strip().splitlines()[0]
        assert "Parts & Co" in head and "Exception report" in head, (i, head)
        assert "audit trail head cccccccccccccccc" in page, i  # the running meta line
    text = doc.words()
    for b in r.open_breaks:
        assert len(re.findall(rf"Break {b.break_id} ·", text)) == 1, b.break_id
    for q in r.quarantined:
        assert text.count(f"qty=q{q.row - 100} ") == 1, q.row
    assert sorted(re.findall(r"\b(5\d\d) wash_trade", text)) == ["500", "501"]
    assert sorted(set(re.findall(r"\b(10\d\d) price_mismatch", text))) == [
        "1000", "1001", "1002"
    ]  # fmt: skip
    assert text.count("Reconciliation runs") == 1
    assert text.count("Generated 2026-11-25 09:00:00 UTC by tieout") == 1  # the closing footer
    assert "Open breaks at the end of 2026-11-25: 9 (continued)" in text
    assert "Quarantined rows (continued)" in text
    assert text.count("tieout surveil show ALERT_ID") == 1


@pytest.mark.parametrize("part_items", [3, 1000])  # 3: the report's 3 items fill one part
def test_a_report_of_one_part_is_rendered_whole(tmp_path: Path, part_items: int) -> None:
    r = report(2, 1, 0, 0)
    assert len(documents.exception_parts(r, part_items)) == 1
    data, pages = documents.encode_exceptions(r, "pdf", part_items=part_items)
    doc = read_pdf(data, tmp_path)
    whole = render.render_pdf(documents.exceptions_html(r, pdf=True))
    assert read_pdf(whole.data, tmp_path).pages == doc.pages  # as one document, as before
    assert pages == len(doc.pages)
    assert doc.pages[-1].count(f"Page {pages} of {pages}") == 1
    assert "(continued)" not in doc.text


def test_a_statement_in_parts_shows_each_trade_cash_line_and_total_once(tmp_path: Path) -> None:
    # 6 symbols bought (6 open positions), 3 of them sold (3 more trades), 9 cash lines
    buys = [fill(i + 1, Side.BUY, "10", "5", "1", symbol=f"S{i}", on=1) for i in range(6)]
    sells = [fill(7 + i, Side.SELL, "4", "6", symbol=f"S{i}", on=2) for i in range(3)]
    marks = [Mark(f"S{i}", date(2026, 3, 4), Decimal("7")) for i in range(6)]
    deposit = CashEntry(1, "deposit", date(2026, 3, 2), Decimal("1000"), "wire 1")
    s = build_statement(make_input(buys + sells, [deposit], marks, start=0, end=3))
    assert (len(s.positions), len(s.trades), len(s.cash)) == (6, 9, 10)
    whole = read_pdf(documents.encode_statement(s, "pdf")[0], tmp_path).words()
    data, pages = documents.encode_statement(s, "pdf", part_items=4)  # 7 parts
    assert len(documents.statement_parts(s, 4)) == 7
    doc = read_pdf(data, tmp_path)
    assert pages == len(doc.pages) >= 7
    for i, page in enumerate(doc.pages, 1):
        assert re.findall(r"Page \d+ of \d+", page) == [f"Page {i} of {pages}"], i
        assert "Account statement" in page.strip().splitlines()[0], i
    text = doc.words()
    for phrase in (
        "Opening balance",
        "Closing balance",
        "Change in net asset value",
        "Report discrepancies promptly",
        "Cost basis includes the opening",
    ):
        assert text.count(phrase) == whole.count(phrase) == 1, phrase
    assert text.count(" Total ") == whole.count(" Total ") == 2  # positions and trades
    for t in s.trades:
        assert text.count(t.exec_time.strftime("%H:%M:%S")) == whole.count(
            t.exec_time.strftime("%H:%M:%S")
        ), t
    assert "Trades (continued)" in text and "Cash activity (trade date) (continued)" in text


def _outline(data: bytes) -> list[tuple[int, str, int]]:
    """A PDF's bookmarks as (depth, title, page from 1), in order."""
    reader = PdfReader(io.BytesIO(data))
    out: list[tuple[int, str, int]] = []

    def walk(items: list[Any], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                out.append((depth, str(item.title), reader.get_destination_page_number(item) + 1))

    walk(reader.outline, 0)
    return out


def test_a_pdf_in_parts_keeps_the_whole_document_s_bookmarks_and_language() -> None:
    r = report(9, 4, 2, 3)
    whole = documents.encode_exceptions(r, "pdf", part_items=1000)[0]
    in_parts = documents.encode_exceptions(r, "pdf", part_items=4)[0]
    expected, found = _outline(whole), _outline(in_parts)
    assert [(depth, title) for depth, title, _ in found] == [(d, t) for d, t, _ in expected]
    assert expected[0][:2] == (0, "Exception report")
    assert sum(1 for d, t, _ in found if t.startswith("Break ") and d == 2) == 9  # under h2
    pages = PdfReader(io.BytesIO(in_parts)).pages
    for _, title, page in found:  # each bookmark on the page that shows its heading
        assert title.split(" ·")[0] in " ".join(pages[page - 1].extract_text().split()), title
    catalog = PdfReader(io.BytesIO(in_parts)).root_object
    assert catalog.get("/Lang") == "en"
    assert PdfReader(io.BytesIO(in_parts)).metadata.title == "Exception report 2026-11-25"


def test_a_part_of_no_items_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        documents.exception_parts(report(1, 0, 0, 0), 0)
