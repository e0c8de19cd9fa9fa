"""Commands for executions and positions: exec import, exec list, positions, lots."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import (
    ActorOpt,
    DbOpt,
    JsonOpt,
    ProgressTask,
    emit_json,
    emit_json_list,
    make_ctx,
    open_store,
    partial_json,
    progress_bar,
    say,
    say_table,
    warn,
)
from oms import executions, order_book, positions
from oms.errors import BadFile, BadInput
from oms.values import CostMethod, parse_date

exec_app = typer.Typer(help="Executions: import booked trades, list them.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(exec_app, name="exec")
    app.command("positions")(positions_cmd)
    app.command("lots")(lots_cmd)


@exec_app.command("import")
def exec_import(
    file: Annotated[str, typer.Argument(help="canonical execution CSV (see CONTRACT.md)")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Book executions from a canonical CSV: validated whole, all rows or none."""
    result = executions.import_file(open_store(db), make_ctx(actor), file)
    if json:
        emit_json(result.as_json())
    else:
        say(
            f"{file}: {result.rows} rows, {result.booked} executions booked, "
            f"{result.already_booked} already booked (unchanged)"
            + (f", {len(result.warnings)} warning(s)" if result.warnings else "")
        )
    for w in result.warnings:
        warn(f"line {w.line}: {w.reason}")


@exec_app.command("apply")
def exec_apply(
    file: Annotated[str, typer.Argument(help="FIX 4.4 ExecutionReports / OrderCancelRejects")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Apply a venue's execution reports in order; messages that cannot be applied are refused
    with their line and reason (exit 3), the others are applied. An applied message whose own
    figures disagree with the book (CumQty, LeavesQty, AvgPx, a price beyond the limit or off
    the tick) is reported as a warning, and audited, to be chased with the venue."""
    with partial_json(json), progress_bar() as bar:
        task = ProgressTask(bar, f"{Path(file).name}: applied")
        result = order_book.apply_reports(open_store(db), make_ctx(actor), file, task.update)
    if json:
        emit_json(result.as_json())
    else:
        say(
            f"{file}: {result.messages} messages, {result.applied} applied, "
            f"{result.duplicates} duplicates skipped, {len(result.refused)} refused"
            + (f", {len(result.warnings)} warning(s)" if result.warnings else "")
        )
    for w in result.warnings:
        warn(f"line {w.line}: {w.reason}")
    if result.refused:
        raise BadFile(
            file, result.refused, verdict="these messages were refused, the others applied"
        )


@exec_app.command("list")
def exec_list(
    account: Annotated[str | None, typer.Option(help="only this account")] = None,
    date: Annotated[str | None, typer.Option(help="only this trade date (YYYY-MM-DD)")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """List booked executions."""
    day = parse_date(date, "--date") if date else None
    with open_store(db).read() as conn:  # written as read, from one snapshot
        rows = executions.execution_listing(conn, account=account, trade_date=day)
        if json:
            emit_json_list(rows)
            return
        for r in rows:
            say(
                f"{r['trade_date']} {r['venue']}:{r['exec_id']:<14} {r['account']:<10} "
                f"{r['side']:<4} {r['quantity']:>12} {r['symbol']:<8} @ {r['price']}"
                + _changes(r)
            )


# how a line of `exec list` names a record that changes an earlier execution (a correction
# replaces its quantity and price, a bust takes it back): never read as one more trade
_CHANGES = {"correct": "corrects", "bust": "busts"}


def _changes(r: Mapping[str, Any]) -> str:
    verb = _CHANGES.get(str(r.get("exec_type") or "fill"))
    said = "" if verb is None else f"  ({verb} {r['venue']}:{r['ref_exec_id']})"
    if r.get("superseded_by"):  # a replaced record is not the trade's present terms
        said += f"  [replaced: see {r['venue']}:{r['superseded_by']}]"
    return said


def _method(text: str) -> CostMethod:
    try:
        return CostMethod(text.lower())
    except ValueError:
        raise BadInput("--method", f"{text!r} must be fifo, lifo or average") from None


def positions_cmd(
    account: Annotated[str, typer.Option(help="account")],
    as_of: Annotated[str | None, typer.Option(help="as of this trade date (YYYY-MM-DD)")] = None,
    method: Annotated[str, typer.Option(help="fifo, lifo or average")] = "fifo",
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Positions and P&L of an account, derived from its executions."""
    day = parse_date(as_of, "--as-of") if as_of else None
    with open_store(db).read() as conn:
        lines = positions.positions(conn, account, as_of=day, method=_method(method))
    docs = [line.as_json() for line in lines]
    if json:
        emit_json(docs)
        return
    say_table(
        ("symbol", "ccy", "quantity", "avg_cost", "market", "unrealized", "realized"),
        [
            (
                d["symbol"],
                d["currency"] or "-",
                d["quantity"],
                d["avg_cost"] or "-",
                d["market_price"] or "-",
                d["unrealized_pnl"] or "-",
                d["realized_pnl"],
            )
            for d in docs
        ],
        right=(2, 3, 4, 5, 6),
    )


def lots_cmd(
    account: Annotated[str, typer.Option(help="account")],
    symbol: Annotated[str, typer.Option(help="symbol")],
    method: Annotated[str, typer.Option(help="fifo, lifo or average (one pooled lot)")] = "fifo",
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Open tax lots of a position, oldest first."""
    with open_store(db).read() as conn:
        items = positions.open_lots(conn, account, symbol, _method(method))
    docs = [positions.lot_json(lot) for lot in items]
    if json:
        emit_json(docs)
        return
    say_table(
        ("opened", "quantity", "price", "cost_basis"),
        [(d["opened"], d["quantity"], d["price"], d["cost_basis"]) for d in docs],
        right=(1, 2, 3),
    )
