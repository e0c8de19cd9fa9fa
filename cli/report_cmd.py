"""Report commands: account statements (one account, or every account on every core), the
daily exception report and trade confirmations, as HTML, PDF or JSON."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import DbOpt, JsonOpt, clock, emit_json, open_store, progress_bar, say
from oms.errors import BadInput, TieoutError
from oms.values import CostMethod, parse_date
from reports import batch, documents, sources
from reports.batch import Outcome
from reports.confirmations import build_confirmation
from reports.exceptions import build_exceptions
from reports.statement import build_statement

report_app = typer.Typer(
    help="Documents: account statements, the exception report, trade confirmations.",
    no_args_is_help=True,
)

FromOpt = Annotated[str, typer.Option("--from", help="first day of the period (YYYY-MM-DD)")]
ToOpt = Annotated[str, typer.Option("--to", help="last day of the period (YYYY-MM-DD)")]
FormatOpt = Annotated[str, typer.Option("--format", help="html, pdf or json")]
OutOpt = Annotated[
    str | None,
    typer.Option("--out", help="file to write (a folder with --all); html/json: else stdout"),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="processes to use (default: every core)")
]


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


def _period(from_: str, to: str) -> tuple[date, date]:
    start, end = parse_date(from_, "--from"), parse_date(to, "--to")
    sources.check_period(start, end)
    return start, end


def _method(text: str) -> CostMethod:
    try:
        return CostMethod(text.lower())
    except ValueError:
        raise BadInput("--method", f"{text!r} must be fifo, lifo or average") from None


def _deliver(
    fmt: str,
    out: str | None,
    encode: Callable[[str], tuple[bytes, int | None]],
    summary: dict[str, Any],
    json: bool,
) -> None:
    """Write one document to --out (or stdout for html/json) and say what was written."""
    if out is None and fmt == "pdf":
        raise BadInput("--out", "a PDF needs a file to go to: give --out PATH")
    if out is None and json and fmt == "html":
        raise BadInput("--out", "--json prints a summary on stdout: give --out for the HTML")
    content, pages = encode(fmt)
    if out is None:
        sys.stdout.write(content.decode("utf-8"))
        return
    written = documents.save(Path(out), fmt, content, pages)
    if json:
        emit_json({**summary, **written.as_json()})
    else:
        extra = f", {pages} page(s)" if pages is not None else ""
        say(f"{written.path}: {fmt}{extra}")


def _run_pool(pool: batch.Pool, total: int, label: str) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with pool, progress_bar() as progress:
        task = progress.add_task(label, total=total) if progress is not None else None
        for outcome in pool:
            outcomes.append(outcome)
            if progress is not None and task is not None:
                progress.advance(task)
    return outcomes, time.perf_counter() - started


def _report_batch(
    outcomes: list[Outcome], seconds: float, out: str, fmt: str, what: str, json: bool,
    extra: dict[str, Any],
) -> None:  # fmt: skip
    ok = sorted((o for o in outcomes if o.written is not None), key=lambda o: o.key)
    failed = sorted((o for o in outcomes if o.written is None), key=lambda o: o.key)
    pages = sum(o.written.pages or 0 for o in ok if o.written is not None)
    if json:
        emit_json(
            {
                **extra,
                "dir": out,
                "format": fmt,
                "count": len(ok),
                "pages": pages if fmt == "pdf" else None,
                "seconds": f"{seconds:.3f}",  # a decimal: a string in JSON
                "documents": [{"key": o.key, **o.written.as_json()} for o in ok if o.written],
                "failed": [{"key": o.key, "error": o.error} for o in failed],
            }
        )
    else:
        shown = f", {pages} pages" if fmt == "pdf" else ""
        say(f"{len(ok)} {what} written to {out} ({fmt}{shown}) in {seconds:.1f} s")
        for o in failed:
            say(f"  {o.key}: FAILED: {o.error}")
    if failed:
        raise TieoutError(f"{len(failed)} of {len(outcomes)} {what} could not be written")


@report_app.command("statement")
def statement(
    from_: FromOpt,
    to: ToOpt,
    account: Annotated[str | None, typer.Option(help="the account")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="every account, into the --out folder")
    ] = False,
    format_: FormatOpt = "html",
    out: OutOpt = None,
    method: Annotated[str, typer.Option(help="fifo, lifo or average")] = "fifo",
    workers: WorkersOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """An account statement for a period: NAV, P&L, positions, trades and cash."""
    start, end = _period(from_, to)
    fmt = documents.check_format(format_)
    cost = _method(method)
    if all_ == (account is not None):
        raise BadInput("--account", "give either --account ACCOUNT or --all")
    store = open_store(db)
    now = clock()
    if account is not None:
        with store.read() as conn:
            s = build_statement(
                sources.statement_input(conn, account, start, end, now, method=cost)
            )
        _deliver(
            fmt,
            out,
            partial(documents.encode_statement, s),
            {"account": s.account.account, "closing_nav": s.as_json()["closing_nav"]},
            json,
        )
        return
    if out is None:
        raise BadInput("--out", "--all writes one file per account: give --out DIR")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise BadInput("--out", f"{out} is a file; --all writes into a folder")
    folder.mkdir(parents=True, exist_ok=True)
    with store.read() as conn:
        accounts = sources.account_ids(conn)
    url = store.engine.url.render_as_string(hide_password=False)
    store.dispose()
    n = workers or batch.default_workers()
    tasks = [
        (url, part, start, end, fmt, str(folder), now, cost.value)
        for part in batch.chunks(accounts, n)
    ]
    pool = batch.Pool(
        batch.statements_chunk, tasks, n, batch.warm_pdf if fmt == "pdf" else batch.warm_html
    )
    outcomes, seconds = _run_pool(pool, len(accounts), "statements")
    _report_batch(
        outcomes, seconds, out, fmt, "statements", json,
        {"from": start.isoformat(), "to": end.isoformat()},
    )  # fmt: skip


@report_app.command("exceptions")
def exceptions(
    date_: Annotated[str, typer.Option("--date", help="business date (YYYY-MM-DD)")],
    format_: FormatOpt = "html",
    out: OutOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """The exception report of a business date: runs, open breaks by type and age,
    quarantined rows and what was resolved."""
    day = parse_date(date_, "--date")
    fmt = documents.check_format(format_)
    with open_store(db).read() as conn:
        r = build_exceptions(sources.exception_input(conn, day, clock()))
    _deliver(
        fmt,
        out,
        partial(documents.encode_exceptions, r),
        {"date": day.isoformat(), "open_breaks": len(r.open_breaks), "runs": len(r.runs)},
        json,
    )


@report_app.command("confirmations")
def confirmations(
    date_: Annotated[str, typer.Option("--date", help="trade date (YYYY-MM-DD)")],
    out: Annotated[str, typer.Option("--out", help="folder for the confirmations")],
    account: Annotated[str | None, typer.Option(help="only this account")] = None,
    format_: Annotated[str, typer.Option("--format", help="pdf (default), html or json")] = "pdf",
    workers: WorkersOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """One trade confirmation (SEC Rule 10b-10) per execution of a trade date."""
    day = parse_date(date_, "--date")
    fmt = documents.check_format(format_)
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise BadInput("--out", f"{out} is a file; confirmations go into a folder")
    store = open_store(db)
    now = clock()
    with store.read() as conn:
        inputs = sources.confirmation_inputs(conn, day, now, account=account)
    folder.mkdir(parents=True, exist_ok=True)
    n = workers or batch.default_workers()
    if len(inputs) <= 4:
        n = 1  # a few documents: not worth starting processes
    url = store.engine.url.render_as_string(hide_password=False)
    store.dispose()
    ids = [i.execution.id for i in inputs]
    tasks = [(url, day, part, fmt, str(folder), now) for part in batch.chunks(ids, n)]
    pool = batch.Pool(batch.confirmations_chunk, tasks, n, batch.warm_pdf if fmt == "pdf" else None)
    outcomes, seconds = _run_pool(pool, len(ids), "confirmations")
    confirmed = (build_confirmation(i) for i in inputs)
    facts = {c.number: c.as_json() for c in confirmed} if json else {}
    if json:
        ok = [o for o in outcomes if o.written is not None]
        emit_json(
            {
                "date": day.isoformat(),
                "dir": out,
                "format": fmt,
                "count": len(ok),
                "seconds": f"{seconds:.3f}",  # a decimal: a string in JSON
                "confirmations": [
                    {**facts[o.key], **o.written.as_json()}
                    for o in sorted(ok, key=lambda o: o.key)
                    if o.written is not None
                ],
                "failed": [{"key": o.key, "error": o.error} for o in outcomes if o.written is None],
            }
        )
        if len(ok) < len(outcomes):
            raise TieoutError(f"{len(outcomes) - len(ok)} confirmations could not be written")
        return
    _report_batch(outcomes, seconds, out, fmt, "confirmations", False, {})
