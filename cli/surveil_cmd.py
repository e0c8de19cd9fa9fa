"""Transaction monitoring: run the surveillance rules on a business date, list and show the
alerts with their evidence, show and change the rules' thresholds (audited)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import ActorOpt, DbOpt, JsonOpt, NumberArgs, emit_json, make_ctx, open_store, say
from oms import surveil, surveil_book
from oms.errors import BadInput
from oms.values import parse_date

surveil_app = typer.Typer(
    help="Transaction monitoring: wash trades, spoofing, layering, unusual size and hours, "
    "position flips, marking the close, order rate.",
    no_args_is_help=True,
)
settings_app = typer.Typer(help="The rules' thresholds (settings surveil.*).", no_args_is_help=True)
surveil_app.add_typer(settings_app, name="settings")

DateOpt = Annotated[str, typer.Option("--date", help="business date (UTC), YYYY-MM-DD")]


def register(app: typer.Typer) -> None:
    app.add_typer(surveil_app, name="surveil")


def _table(alerts: list[dict[str, Any]], *, json_mode: bool) -> None:
    if not alerts:
        say("no alerts", json_mode=json_mode)
        return
    say(
        f"{'id':>6}  {'rule':<14} {'account':<12} {'symbol':<10} {'score':>12}", json_mode=json_mode
    )
    for a in alerts:
        mark = " (new)" if a.get("new") else ""
        say(
            f"{a['alert_id']:>6}  {a['rule']:<14} {a['account'] or '-':<12} "
            f"{a['symbol'] or '-':<10} {a['score']:>12}{mark}",
            json_mode=json_mode,
        )


@surveil_app.command("run")
def run(
    date: DateOpt,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Run the rules on a business date; store new alerts with their evidence (audited).
    Rerunning a date on the same data adds nothing."""
    day = parse_date(date, "--date")
    result = surveil_book.run(open_store(db), make_ctx(actor), day)
    doc = result.as_json()
    if json:
        emit_json(doc)
        return
    _table(doc, json_mode=False)
    say(f"{len(doc)} alert(s) for {day.isoformat()}, {len(result.new_ids)} new")


@surveil_app.command("list")
def list_(
    date: Annotated[
        str | None, typer.Option("--date", help="business date, YYYY-MM-DD (else all)")
    ] = None,
    rule: Annotated[str | None, typer.Option(help="one rule")] = None,
    evidence: Annotated[bool, typer.Option(help="include each alert's evidence")] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Stored alerts, from every run."""
    day = parse_date(date, "--date") if date else None
    if rule is not None and rule not in surveil.RULES:
        raise BadInput("--rule", f"{rule!r} is not a rule ({', '.join(surveil.RULES)})")
    with open_store(db).read() as conn:
        alerts = surveil_book.list_alerts(conn, day, rule)
    doc = [a.as_json(evidence=evidence) for a in alerts]
    if json:
        emit_json(doc)
    else:
        _table(doc, json_mode=False)


@surveil_app.command("show")
def show(alert_id: int, db: DbOpt = None, json: JsonOpt = False) -> None:
    """One alert with its details and evidence."""
    del json  # the alert is shown as JSON either way: its evidence is nested
    with open_store(db).read() as conn:
        emit_json(surveil_book.get_alert(conn, alert_id).as_json())


@settings_app.command("show")
def settings_show(db: DbOpt = None, json: JsonOpt = False) -> None:
    """The thresholds in force (defaults unless changed with `tieout surveil settings set`)."""
    with open_store(db).read() as conn:
        current = surveil_book.load_settings(conn).as_json()
    if json:
        emit_json(current)
        return
    for p in surveil.PARAMS:
        say(f"{p.name:<26} {current[p.name]:<12} {p.help} (default {p.default})")


@settings_app.command("set", cls=NumberArgs)
def settings_set(
    name: Annotated[str, typer.Argument(help="e.g. wash.window-s, links, rules")],
    value: Annotated[str, typer.Argument(help='e.g. 120, "A1,A2;B1,B2", all')],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Change one threshold (validated, audited)."""
    current = surveil_book.set_setting(open_store(db), make_ctx(actor), name, value).as_json()
    if json:
        emit_json(current)
    else:
        shown = name.removeprefix(surveil.PREFIX)
        say(f"{shown} = {current[shown]}")
