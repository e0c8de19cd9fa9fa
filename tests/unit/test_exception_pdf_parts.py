"""The exception report's PDF rendered in parts (memory bounded by a part, not by the day's
breaks): every item once and in order, the running header on every page, one closing footer,
and "Page i of N" over the whole document."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import documents
from reports.exceptions import (
    AlertRow,
    ExceptionInput,
    ExceptionReport,
    QuarantineRow,
    build_exceptions,
)
from reports.firm import firm_from_settings
from tests.pdftext import read_pdf
from tests.unit.test_reports_render import RUN, _break

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
        sections = [s for p in parts if (s := getattr(p, name)) is not None]
        assert tuple(x for s in sections for x in s.items) == items
        assert [s.first for s in sections] == [True] + [False] * (len(sections) - 1)
        assert [s.last for s in sections] == [False] * (len(sections) - 1) + [True]
        assert all(s.items for s in sections) or (not items and len(sections) == 1)
    for p in parts:
        shown = (p.breaks, p.quarantined, p.alerts, p.resolved)
        assert sum(len(s.items) for s in shown if s is not None) <= size
    total = sum(lengths)
    assert len(parts) == max(1, -(-total // size))


def test_the_whole_document_is_one_part() -> None:
    r = report(3, 2, 1, 1)
    (whole,) = documents.exception_parts(r, None)
    assert whole.head and whole.tail
    assert whole.breaks is not None and whole.breaks.items == r.open_breaks


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
    assert "Open breaks at the end of 2026-11-25 (continued)" in text
    assert "Quarantined rows (continued)" in text
    assert text.count("tieout surveil show ALERT_ID") == 1


@pytest.mark.parametrize("part_items", [None, 1000])
def test_a_report_of_one_part_is_rendered_whole(tmp_path: Path, part_items: int | None) -> None:
    r = report(2, 1, 0, 0)
    data, pages = documents.encode_exceptions(r, "pdf", part_items=part_items or 2)
    doc = read_pdf(data, tmp_path)
    assert pages == len(doc.pages)
    assert doc.pages[-1].count(f"Page {pages} of {pages}") == 1
    assert "(continued)" not in doc.text
