"""Market data commands: md import, md last, md bars, md rejects, md settings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer

from cli.common import (
    ActorOpt,
    DbOpt,
    JsonOpt,
    decimal_arg,
    emit_json,
    make_ctx,
    open_store,
    partial_json,
    say,
    warn,
)
from oms import md_book, order_book
from oms.errors import BadInput
from oms.marketdata import COLUMNS, Interval
from oms.values import day_start, dec_str, parse_date, utc_iso

md_app = typer.Typer(
    help="Market data: OHLCV bars, bad-tick rejects, last prices.", no_args_is_help=True
)

SHOWN_REJECTS = 20


def register(app: typer.Typer) -> None:
    app.add_typer(md_app, name="md")


def _window(from_: str | None, to: str | None) -> tuple[datetime | None, datetime | None]:
    """--from/--to dates (inclusive, UTC days) as [start, end)."""
    start = day_start(parse_date(from_, "--from")) if from_ else None
    end = day_start(parse_date(to, "--to") + timedelta(days=1)) if to else None
    return start, end


def _interval(text: str) -> Interval:
    try:
        return Interval(text.strip().lower())
    except ValueError:
        choices = " or ".join(i.value for i in Interval)
        raise BadInput("--interval", f"{text!r} must be {choices}") from None


@md_app.command("import")
def md_import(
    file: Annotated[str, typer.Argument(help=f"CSV: {','.join(COLUMNS)} (time = bar start)")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Import OHLCV bars. Bad rows are rejected with their reasons and kept for review
    (`tieout md rejects`); the good rows are stored; rows equal to stored bars are unchanged."""
    store = open_store(db)
    ctx = make_ctx(actor)
    result = md_book.import_bars(store, ctx, file)
    # the paper venue works its resting orders against the new bars, and against any an
    # earlier import left unworked (a crash between its import and its fills)
    late: list[order_book.LateBar] = []
    with partial_json(json):  # the bars are in: a failure from here on says what committed
        filled = order_book.fill_pending(
            store,
            ctx,
            before=f"the bars of import {result.import_id} ({result.accepted} accepted)",
            summary=result.as_json(),
            late=late,
        )
    # bars that reached a paper order too late to fill it: said, never passed over in silence
    late += order_book.late_for_expired(store, result.import_id)
    for x in late[:SHOWN_REJECTS]:  # on stderr, with --json too (a cron job's log keeps it)
        warn(x.message())
    if len(late) > SHOWN_REJECTS:
        warn(f"... and {len(late) - SHOWN_REJECTS} more such orders (--json lists them)")
    if json:
        emit_json(
            {
                **result.as_json(),
                "paper_orders_filled": len(filled),
                "late_bars": [x.as_json() for x in late],
            }
        )
        return
    if filled:
        say(f"{len(filled)} resting paper order(s) filled against the new bars")
    say(
        f"{file}: {result.rows} rows, {result.accepted} accepted, {result.rejected} rejected, "
        f"{result.unchanged} unchanged (import {result.import_id})"
    )
    for rej in result.rejects[:SHOWN_REJECTS]:
        say(f"  line {rej.line}: {'; '.join(rej.reasons)}")
    if result.rejected > SHOWN_REJECTS:
        say(
            f"  ... and {result.rejected - SHOWN_REJECTS} more: "
            f"tieout md rejects --import {result.import_id}"
        )


@md_app.command("last")
def md_last(symbol: str, db: DbOpt = None, json: JsonOpt = False) -> None:
    """The last price of an instrument: the close of its latest stored bar."""
    with open_store(db).read() as conn:
        bar = md_book.last_bar(conn, symbol)
    doc = {"symbol": bar.symbol, "price": dec_str(bar.close), "time": utc_iso(bar.time)}
    if json:
        emit_json(doc)
    else:
        say(f"{doc['symbol']} {doc['price']} at {doc['time']}")


@md_app.command("bars")
def md_bars(
    symbol: str,
    *,
    interval: Annotated[
        str | None,
        typer.Option(help="1h or 1d: aggregated UTC buckets; without it, the stored bars"),
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="first date (UTC), YYYY-MM-DD")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="last date (UTC), YYYY-MM-DD")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """List an instrument's bars, raw or aggregated hourly/daily."""
    start, end = _window(from_, to)
    every = _interval(interval) if interval is not None else None
    with open_store(db).read() as conn:
        if every is None:
            docs = [b.as_json() for b in md_book.list_bars(conn, symbol, start=start, end=end)]
        else:
            docs = [
                a.as_json()
                for a in md_book.list_aggregates(conn, symbol, every, start=start, end=end)
            ]
    if json:
        emit_json(docs)
        return
    for d in docs:
        count = f" {d['bars']:>5} bars" if "bars" in d else ""
        say(
            f"{d['time']}  O {d['open']}  H {d['high']}  L {d['low']}  C {d['close']}  "
            f"V {d['volume']}{count}"
        )
    if not docs:
        say(f"no bars for {symbol}")


@md_app.command("rejects")
def md_rejects(
    import_id: Annotated[int | None, typer.Option("--import", help="one md import's id")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """List rejected bar rows kept for review, with their reasons."""
    with open_store(db).read() as conn:
        items = md_book.list_rejects(conn, import_id)
    if json:
        emit_json([r.as_json() for r in items])
        return
    for r in items:
        values = ",".join("" if r.values.get(c) is None else str(r.values[c]) for c in COLUMNS)
        say(f"import {r.import_id} {r.file} line {r.line}: {values}")
        for why in r.reasons:
            say(f"    {why}")
    if not items:
        say("no rejected rows")


@md_app.command("settings")
def md_settings(
    max_jump_pct: Annotated[
        str | None,
        typer.Option(
            help="reject a bar whose close moves more than this percentage from the previous close"
        ),
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show or change the market data settings."""
    store = open_store(db)
    if max_jump_pct is not None:
        value = decimal_arg(max_jump_pct, "--max-jump-pct", positive=True)
        pct = md_book.set_max_jump_pct(store, make_ctx(actor), value)
    else:
        with store.read() as conn:
            pct = md_book.max_jump_pct(conn)
    if json:
        emit_json({"max_jump_pct": dec_str(pct)})
    else:
        say(f"max_jump_pct {dec_str(pct)}")
