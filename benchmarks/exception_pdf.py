"""The exception report's PDF on a bad day: time and peak memory by the number of open breaks,
rendered in parts (what `tieout report exceptions --format pdf` does) and, for comparison, as
one WeasyPrint document (what it did before, still what a report of one part is).

    python -m benchmarks.exception_pdf [--breaks N,N,...] [--whole-up-to N]

Each rendering runs in a process of its own, so that its peak RSS (VmHWM) is its own. The
report's data are synthetic (reports.exceptions.build_exceptions over N breaks of two
differences each, one run); the database is not involved. Rendered whole only up to
--whole-up-to breaks (default 2,000: about 0.6 MB a break). Prints one JSON document."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal

from benchmarks.common import peak_rss_mb, report


def arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def render_once(breaks: int, part_items: int) -> dict[str, object]:
    """In this process: the PDF of a report of `breaks` open breaks."""
    from reports import documents
    from reports.exceptions import BreakRow, Difference, ExceptionInput, RunRow, build_exceptions
    from reports.firm import firm_from_settings

    differences = (Difference("price", "190.25", "190.26"), Difference("quantity", "100", "90"))
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    day = date(2026, 11, 25)
    rows = tuple(
        BreakRow(
            break_id=i + 1, run_id=3, first_run_id=3, profile="acme", kind="trades",
            type="price_mismatch", status="open", account=f"A{i % 50}", symbol=f"S{i % 300}",
            currency="USD", internal_refs=(f"V:E{i}",), venue_refs=(f"row:{i + 2}",),
            differences=differences,
            first_seen=day, age_days=0, amount=Decimal("1.00"), suggestion=None, owner=None,
            resolution=None, resolution_note=None, pending_approval=False, requested_by=None,
            resolved_by=None, resolved_at=None, resolved_run_id=None,
        )
        for i in range(breaks)
    )  # fmt: skip
    run = RunRow(
        run_id=3, kind="trades", profile="acme", venue="ACME", business_date=day,
        input_path="/x.csv", input_sha256="f" * 64, forced=False, internal_rows=breaks,
        venue_rows=breaks, quarantined_rows=0, matched=0, breaks=(("price_mismatch", breaks),),
        open_breaks=breaks, closed_breaks=0, started_at=now, duration_s=Decimal("1"), actor="ops",
    )  # fmt: skip
    r = build_exceptions(
        ExceptionInput(day, (run,), rows, (), (), firm_from_settings({}), now, "c" * 64)
    )
    started = time.perf_counter()
    data, pages = documents.encode_exceptions(r, "pdf", part_items=part_items)
    return {
        "breaks": breaks,
        "parts": len(documents.exception_parts(r, part_items)),
        "seconds": round(time.perf_counter() - started, 2),
        "ms_per_break": round((time.perf_counter() - started) / max(1, breaks) * 1e3, 1),
        "pages": pages,
        "bytes": len(data),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def measured(breaks: int, part_items: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.exception_pdf", "--one", str(breaks), str(part_items)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def main() -> None:
    if "--one" in sys.argv:
        at = sys.argv.index("--one")
        print(json.dumps(render_once(int(sys.argv[at + 1]), int(sys.argv[at + 2]))))
        return
    from reports.documents import PDF_PART_ITEMS

    sizes = [int(n) for n in arg("--breaks", "200,2000,10000").split(",")]
    whole_up_to = int(arg("--whole-up-to", "2000"))
    runs = []
    for n in sizes:
        print(f"[exception_pdf] {n} breaks in parts of {PDF_PART_ITEMS}", file=sys.stderr)
        runs.append({"rendered": "in parts", **measured(n, PDF_PART_ITEMS)})
        if n <= whole_up_to:
            print(f"[exception_pdf] {n} breaks whole", file=sys.stderr)
            runs.append({"rendered": "whole", **measured(n, max(1, n))})
    report({"benchmark": "exception_pdf", "part_items": PDF_PART_ITEMS, "runs": runs})


if __name__ == "__main__":
    main()
