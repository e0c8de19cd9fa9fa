"""Reconciliation commands: runs, quarantined rows, profiles, and the break workflow."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import ActorOpt, DbOpt, JsonOpt, emit_json, make_ctx, open_store, say
from oms.calendars import business_days
from oms.values import parse_date
from recon import breaks as breaks_mod
from recon import runs

recon_app = typer.Typer(
    help="Reconcile the book against venue, broker, custodian and bank files.",
    no_args_is_help=True,
)
profile_app = typer.Typer(help="Venue profiles kept in the database.", no_args_is_help=True)
breaks_app = typer.Typer(
    help="Breaks: list, assign, comment, resolve, approve (four eyes for write-offs).",
    no_args_is_help=True,
)
recon_app.add_typer(profile_app, name="profile")
calendar_app = typer.Typer(
    help="The firm's calendar that breaks age by (business days; default XNYS).",
    no_args_is_help=True,
)
recon_app.add_typer(calendar_app, name="calendar")

# exit code when --fail-on-breaks finds open breaks (contract)
OPEN_BREAKS_EXIT = 6


def register(app: typer.Typer) -> None:
    app.add_typer(recon_app, name="recon")
    app.add_typer(breaks_app, name="breaks")


@recon_app.command("run")
def run_cmd(
    profile: Annotated[str, typer.Option(help="a profile TOML file, or a profile's name")],
    file: Annotated[str, typer.Option(help="the venue's file for the business date")],
    date: Annotated[str, typer.Option(help="business date (YYYY-MM-DD)")],
    fail_on_breaks: Annotated[
        bool, typer.Option("--fail-on-breaks", help="exit 6 when open breaks remain")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="reconcile the very same file bytes again")
    ] = False,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Reconcile one venue file against the book for a business date."""
    day = parse_date(date, "--date")
    result = runs.run(open_store(db), make_ctx(actor), profile, file, day, force=force)
    if json:
        emit_json(result.as_json())
    else:
        found = ", ".join(f"{t} {n}" for t, n in sorted(result.breaks.items())) or "none"
        say(
            f"run {result.run_id} {result.profile} ({result.kind}) {day.isoformat()}: "
            f"{result.venue_rows} venue rows ({result.quarantined_rows} quarantined), "
            f"{result.internal_rows} internal, {result.matched} matched; breaks: {found}; "
            f"{result.new_breaks} new, {result.closed_breaks} closed, "
            f"{result.open_breaks} open"
        )
        if result.skipped:
            passed = ", ".join(f"{why} {n}" for why, n in result.skipped.items())
            say(f"  passed over in the file (not rows, not breaks): {passed}")
    if fail_on_breaks and result.open_breaks:
        raise typer.Exit(OPEN_BREAKS_EXIT)


@recon_app.command("runs")
def runs_cmd(
    date: Annotated[str | None, typer.Option(help="only this business date")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Recorded runs, oldest first."""
    day = parse_date(date, "--date") if date else None
    with open_store(db).read() as conn:
        docs = runs.list_runs(conn, business_date=day)
    if json:
        emit_json(docs)
        return
    for r in docs:
        say(
            f"{r['run_id']:>5} {r['business_date']} {r['profile']:<16} {r['kind']:<9} "
            f"rows {r['venue_rows']:>8} quarantined {r['quarantined_rows']:>6} "
            f"matched {r['matched']:>8} open {r['open_breaks']:>5}"
        )


@recon_app.command("quarantine")
def quarantine_cmd(
    run: Annotated[int, typer.Option("--run", help="run id")],
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """The venue rows a run refused, with their values and every reason."""
    with open_store(db).read() as conn:
        docs = runs.quarantine(conn, run)
    if json:
        emit_json(docs)
        return
    for q in docs:
        say(f"row {q['row']}: {'; '.join(q['reasons'])}")


@profile_app.command("add")
def profile_add(
    file: Annotated[str, typer.Argument(help="profile TOML")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Keep a profile in the database (validated; a changed profile is a new version)."""
    profile, added = runs.add_profile(open_store(db), make_ctx(actor), file)
    doc = {"name": profile.name, "version": profile.version, "added": added}
    if json:
        emit_json(doc)
    else:
        say(f"profile {profile.name} {'added' if added else 'unchanged'} ({profile.version[:12]})")


@calendar_app.command("show")
def calendar_show(db: DbOpt = None, json: JsonOpt = False) -> None:
    """The calendar breaks age by."""
    with open_store(db).read() as conn:
        code = breaks_mod.firm_calendar(conn)
    if json:
        emit_json({"calendar": code})
    else:
        say(code)


@calendar_app.command("set")
def calendar_set(
    name: Annotated[str, typer.Argument(help="an exchange calendar (XNYS, XLON, LSE) or 24/7")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Set the calendar breaks age by (audited); the exception report and `breaks list` count
    a break's age in its sessions."""
    code = breaks_mod.set_calendar(open_store(db), make_ctx(actor), name)
    if json:
        emit_json({"calendar": code})
    else:
        say(f"breaks age by {code}")


@profile_app.command("list")
def profile_list(db: DbOpt = None, json: JsonOpt = False) -> None:
    """Profiles kept in the database, every version."""
    with open_store(db).read() as conn:
        docs = runs.list_profiles(conn)
    if json:
        emit_json(docs)
        return
    for p in docs:
        say(f"{p['name']:<16} {p['kind']:<9} {p['venue']:<8} {p['version'][:12]} {p['added_at']}")


# ---- breaks -----------------------------------------------------------------------------------


def _say_break(b: dict[str, Any]) -> None:
    refs = ",".join(b["internal_refs"] + b["venue_refs"])
    say(
        f"{b['break_id']:>6} {b['status']:<8} {b['type']:<22} {b['account'] or '':<10} "
        f"{b['symbol'] or '':<8} {b['amount']:>14} {b['currency'] or '':<3} "
        f"age {b['age_days']:>3} {refs}"
    )


@breaks_app.command("list")
def breaks_list(
    run: Annotated[int | None, typer.Option("--run", help="breaks a run found or saw")] = None,
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    profile: Annotated[str | None, typer.Option(help="only this profile")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Breaks, with their differences, amount at stake, age and suggestion."""
    ctx = make_ctx(None)
    with open_store(db).read() as conn:
        views = breaks_mod.list_breaks(
            conn, ctx.now.date(), run_id=run, status=status, profile=profile
        )
    docs = [v.as_json() for v in views]
    if json:
        emit_json(docs)
        return
    for b in docs:
        _say_break(b)


@breaks_app.command("show")
def breaks_show(
    break_id: Annotated[str, typer.Argument(metavar="BREAK_ID")],
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """One break with its history."""
    bid = breaks_mod.parse_break_id(break_id)
    ctx = make_ctx(None)
    with open_store(db).read() as conn:
        row = breaks_mod.get(conn, bid)
        calendar = breaks_mod.firm_calendar(conn)
        as_of = row.resolved_at.date() if row.resolved_at else ctx.now.date()
        doc = breaks_mod.BreakView(
            row, business_days(row.first_seen, as_of, calendar)
        ).as_json()
        doc["history"] = breaks_mod.history(conn, bid)
    if json:
        emit_json(doc)
        return
    _say_break(doc)
    if doc["pending_approval"]:
        say(
            f"  write-off ({doc['resolution']}) requested by {doc['requested_by']}: another "
            f"operator approves it with `tieout breaks approve {doc['break_id']} --hash "
            f"{doc['request_hash']}`"
        )
    for h in doc["history"]:
        say(f"  {h['at']} {h['actor']:<12} {h['action']}")


def _done(doc: dict[str, Any], json: bool, what: str) -> None:
    if json:
        emit_json(doc)
    else:
        say(f"break {doc['break_id']}: {what}")


@breaks_app.command("assign")
def breaks_assign(
    break_id: Annotated[str, typer.Argument(metavar="BREAK_ID")],
    to: Annotated[str, typer.Option("--to", help="the operator who owns it now")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Give a break an owner."""
    bid = breaks_mod.parse_break_id(break_id)
    _done(breaks_mod.assign(open_store(db), make_ctx(actor), bid, to), json, f"assigned to {to}")


@breaks_app.command("comment")
def breaks_comment(
    break_id: Annotated[str, typer.Argument(metavar="BREAK_ID")],
    text: Annotated[str, typer.Option("--text", help="the comment")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Add a comment to a break's history."""
    bid = breaks_mod.parse_break_id(break_id)
    _done(breaks_mod.comment(open_store(db), make_ctx(actor), bid, text), json, "commented")


@breaks_app.command("resolve")
def breaks_resolve(
    break_id: Annotated[str, typer.Argument(metavar="BREAK_ID")],
    reason: Annotated[str, typer.Option(help=", ".join(breaks_mod.REASONS))],
    note: Annotated[str | None, typer.Option(help="why, in words")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Resolve a break with a reason code; written_off waits for a second operator."""
    bid = breaks_mod.parse_break_id(break_id)
    doc = breaks_mod.resolve(open_store(db), make_ctx(actor), bid, reason, note)
    pending = doc["pending_approval"]
    waits = f"waits for approval by another operator (request hash {doc['request_hash']})"
    _done(doc, json, waits if pending else "resolved")


@breaks_app.command("approve")
def breaks_approve(
    break_id: Annotated[str, typer.Argument(metavar="BREAK_ID")],
    request_hash: Annotated[
        str | None, typer.Option("--hash", help="the request hash you reviewed")
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Approve a requested write-off (a different operator than the one who asked)."""
    bid = breaks_mod.parse_break_id(break_id)
    doc = breaks_mod.approve(open_store(db), make_ctx(actor), bid, request_hash)
    _done(doc, json, "approved and resolved")
