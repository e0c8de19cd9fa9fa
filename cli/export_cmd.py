"""Export commands: trades, orders or the audit trail of a date range, as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import DbOpt, JsonOpt, emit_json, open_store, say
from oms.errors import BadInput
from oms.values import parse_date
from reports import exports

export_app = typer.Typer(
    help="Export trades, orders or the audit trail (exact decimals) as CSV or Parquet.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")


def _export(
    kind: str, from_: str, to: str, format_: str, out: str, db: str | None, json: bool
) -> None:
    start, end = parse_date(from_, "--from"), parse_date(to, "--to")
    exports.check_range(start, end)
    fmt = format_.strip().lower()
    if fmt not in exports.FORMATS:
        raise BadInput("--format", f"{format_!r} is not one of {', '.join(exports.FORMATS)}")
    with open_store(db).read() as conn:
        data = exports.read(conn, kind, start, end)
    rows = exports.write(data, fmt, Path(out))
    if json:
        emit_json(
            {
                "kind": kind,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "format": fmt,
                "file": out,
                "rows": rows,
            }
        )
    else:
        say(f"{out}: {rows} {kind} rows ({fmt}) from {start} to {end}")


FromOpt = Annotated[str, typer.Option("--from", help="first date (YYYY-MM-DD)")]
ToOpt = Annotated[str, typer.Option("--to", help="last date (YYYY-MM-DD)")]
FormatOpt = Annotated[str, typer.Option("--format", help="csv or parquet")]
OutOpt = Annotated[str, typer.Option("--out", help="file to write")]


@export_app.command("trades")
def trades(
    from_: FromOpt, to: ToOpt, out: OutOpt, format_: FormatOpt = "csv", db: DbOpt = None,
    json: JsonOpt = False,
) -> None:  # fmt: skip
    """Executions (fills, corrections, busts) by trade date."""
    _export("trades", from_, to, format_, out, db, json)


@export_app.command("orders")
def orders(
    from_: FromOpt, to: ToOpt, out: OutOpt, format_: FormatOpt = "csv", db: DbOpt = None,
    json: JsonOpt = False,
) -> None:  # fmt: skip
    """Orders by the UTC date they were created."""
    _export("orders", from_, to, format_, out, db, json)


@export_app.command("audit")
def audit(
    from_: FromOpt, to: ToOpt, out: OutOpt, format_: FormatOpt = "csv", db: DbOpt = None,
    json: JsonOpt = False,
) -> None:  # fmt: skip
    """Audit events by their UTC date (payloads as hashed)."""
    _export("audit", from_, to, format_, out, db, json)
