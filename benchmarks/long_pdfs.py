"""Long PDFs: time and peak memory of the exception report's PDF on a bad day, by the number of
open breaks, and of a statement's PDF of an active account, by its fills; rendered in parts
(what `tieout report exceptions|statement --format pdf` do) and, for comparison, as one
WeasyPrint document (what they did before, still what a document of one part is).

    python -m benchmarks.long_pdfs [--breaks N,N,...] [--fills N,N,...] [--whole-up-to N]

Each rendering runs in a process of its own, so that its peak RSS (VmHWM) is its own. The data
are synthetic, the database is not involved: reports.exceptions.build_exceptions over N breaks
of two differences each and one run; reports.statement.build_statement over a month of N fills
in 20 symbols (benchmarks.statement_history's). Rendered whole only up to --whole-up-to items
(default 2,000 breaks or 3,000 fills: about 0.6 MB a break, 0.3 MB a fill). Prints one JSON
document."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial

from benchmarks.common import peak_rss_mb, report


def arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def _timed_pdf(
    encode: Callable[..., tuple[bytes, int | None]], parts: int, what: str, n: int
) -> dict[str, object]:
    """Time `encode("pdf")` of a document of `n` items (`what`: breaks, fills) in `parts` parts."""
    started = time.perf_counter()
    data, pages = encode("pdf")
    seconds = time.perf_counter() - started
    return {
        what: n,
        "parts": parts,
        "seconds": round(seconds, 2),
        f"ms_per_{what[:-1]}": round(seconds / max(1, n) * 1e3, 1),
        "pages": pages,
        "bytes": len(data),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def statement_once(fills: int, part_items: int) -> dict[str, object]:
    """In this process: the PDF of a month's statement of `fills` fills."""
    from datetime import timedelta

    from benchmarks.statement_history import DAY0, history, statement_input
    from reports import documents
    from reports.statement import build_statement

    executions, marks = history(fills, 30, 20)
    s = build_statement(statement_input(executions, marks, DAY0, DAY0 + timedelta(days=29)))
    parts = len(documents.statement_parts(s, part_items))
    encode = partial(documents.encode_statement, s, part_items=part_items)
    return _timed_pdf(encode, parts, "fills", fills)


def exceptions_once(breaks: int, part_items: int) -> dict[str, object]:
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
    parts = len(documents.exception_parts(r, part_items))
    encode = partial(documents.encode_exceptions, r, part_items=part_items)
    return _timed_pdf(encode, parts, "breaks", breaks)


def measured(what: str, items: int, part_items: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.long_pdfs", "--one", what, str(items), str(part_items)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def main() -> None:
    if "--one" in sys.argv:
        at = sys.argv.index("--one")
        once = statement_once if sys.argv[at + 1] == "statement" else exceptions_once
        print(json.dumps(once(int(sys.argv[at + 2]), int(sys.argv[at + 3]))))
        return
    from reports.documents import PDF_PART_ITEMS, STATEMENT_PART_ITEMS

    whole_up_to = int(arg("--whole-up-to", "3000"))
    runs = []
    for what, option, default, part_items in (
        ("exceptions", "--breaks", "200,2000,10000", PDF_PART_ITEMS),
        ("statement", "--fills", "500,3000,20000", STATEMENT_PART_ITEMS),
    ):
        for n in (int(x) for x in arg(option, default).split(",") if x):
            print(f"[long_pdfs] {what} of {n} in parts of {part_items}", file=sys.stderr)
            runs.append({"document": what, "rendered": "in parts", **measured(what, n, part_items)})
            if n <= whole_up_to:
                print(f"[long_pdfs] {what} of {n} whole", file=sys.stderr)
                runs.append({"document": what, "rendered": "whole", **measured(what, n, 10**9)})
    report(
        {
            "benchmark": "long_pdfs",
            "part_items": {"exceptions": PDF_PART_ITEMS, "statement": STATEMENT_PART_ITEMS},
            "runs": runs,
        }
    )


if __name__ == "__main__":
    main()
