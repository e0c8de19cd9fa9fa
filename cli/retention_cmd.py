"""Retention: periods per class, legal holds, and `retention apply`, which archives what has
expired to Parquet (with a manifest of SHA-256 digests) before removing it from the book.

The composition root of retention: oms knows its own classes (orders, executions, ledger, audit,
confirmations, surveillance); reconciliation and schedules declare theirs (recon.retention,
schedules.retention) and this module passes them in (SPECS), since oms must not import them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import (
    ActorOpt,
    DbOpt,
    JsonOpt,
    NumberArgs,
    clock,
    emit_json,
    make_ctx,
    open_store,
    say,
)
from oms import retention as rt
from oms import retention_book
from oms.errors import VerificationFailed
from recon.retention import RECON
from schedules.retention import SCHEDULES

SPECS: tuple[rt.ClassSpec, ...] = (RECON, SCHEDULES)

retention_app = typer.Typer(
    help="Retention periods, legal holds, and archiving what has expired.", no_args_is_help=True
)
hold_app = typer.Typer(
    help="Legal holds: what they cover is never archived or removed.", no_args_is_help=True
)
retention_app.add_typer(hold_app, name="hold")


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")


def _summary(doc: dict[str, Any], *, json_mode: bool) -> None:
    verb = "would archive" if doc["dry_run"] else "archived"
    for cls, tables in doc["classes"].items():
        rows = ", ".join(f"{t} {doc['archived'].get(t, 0)}" for t in tables) or "record only"
        held = doc["held"].get(cls, 0)
        say(
            f"{cls:<14} {doc['periods'][cls]:>4}  before {doc['cutoffs'][cls]}  {verb}: {rows}"
            + (f"  (kept on hold: {held})" if held else ""),
            json_mode=json_mode,
        )
    if doc["location"]:
        say(f"archive {doc['archive_id']}: {doc['location']}", json_mode=json_mode)
        say(f"manifest SHA-256 {doc['manifest_sha256']}", json_mode=json_mode)
    elif not doc["dry_run"]:
        say("nothing has expired: nothing archived", json_mode=json_mode)


@retention_app.command("apply")
def apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be archived; change nothing")
    ] = False,
    archive_dir: Annotated[
        str | None,
        typer.Option(
            "--archive-dir",
            help="where archives go (else the setting retention.archive-dir, else "
            "./tieout-archive)",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Archive what is older than its class's period (and on no legal hold) to Parquet with a
    manifest of SHA-256 digests, then remove it from the live tables, in one transaction
    (audited). The audit chain stays verifiable: it is anchored at the archive boundary."""
    result = retention_book.apply(
        open_store(db), make_ctx(actor), archive_root=archive_dir, dry_run=dry_run, specs=SPECS
    )
    doc = result.as_json()
    if json:
        emit_json(doc)
    else:
        _summary(doc, json_mode=False)


@retention_app.command("show")
def show(db: DbOpt = None, json: JsonOpt = False) -> None:
    """Periods, cut-offs, what would be archived now, active holds and past archives."""
    with open_store(db).read() as conn:
        plan = retention_book.make_plan(conn, clock(), SPECS)
        root = retention_book.archive_dir(conn)
        archives = retention_book.list_archives(conn)
    doc = retention_book.ApplyResult(plan, True, root).as_json()
    doc["active_holds"] = [h.as_json() for h in plan.holds]
    doc["archives"] = [a.as_json() for a in archives]
    doc["notes"] = {
        rt.CONFIRMATIONS: "confirmations are files written by `tieout report confirmations`; "
        "the book keeps none: delete files older than the period from the document store",
        **{s.name: s.description for s in retention_book.all_specs(SPECS)},
    }
    if json:
        emit_json(doc)
        return
    _summary(doc, json_mode=False)
    say(f"archive directory: {root}")
    say(f"{len(plan.holds)} active legal hold(s), {len(archives)} archive(s)")


@retention_app.command("set", cls=NumberArgs)
def set_(
    key: Annotated[str, typer.Argument(help="a class (orders, executions, ledger, audit, "
                                            "confirmations, surveillance, recon, schedules) "
                                            "or archive-dir")],
    value: Annotated[str, typer.Argument(help="a period (6y, 84m, 2200d) or a directory")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Change a class's retention period (at least one year) or the archive directory
    (audited)."""
    doc = retention_book.set_setting(open_store(db), make_ctx(actor), key, value, SPECS)
    if json:
        emit_json(doc)
    else:
        say(f"{doc['key']} = {doc['value']} (was {doc['previous'] or 'the default'})")


@retention_app.command("verify-archive")
def verify_archive(
    folder: Annotated[str, typer.Argument(help="an archive's folder (with manifest.json)")],
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="also check the archive against this book's records (offline without it)",
            show_default=False,
        ),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Check an archive: every file against the manifest's SHA-256 and rows, the archived audit
    events as a chain ending at the recorded anchor. Exit 7 when anything does not match."""
    recorded: list[retention_book.ArchiveRecord] | None = None  # offline
    if db is not None:
        with open_store(db).read() as conn:
            recorded = retention_book.list_archives(conn)
    check = retention_book.verify_archive(Path(folder), recorded)
    if json:
        emit_json(check.as_json())
    elif check.ok:
        say(f"archive {check.archive_id} intact: {check.files} files, rows {check.rows}")
    if not check.ok:
        raise VerificationFailed(f"archive {folder} does not verify: " + "; ".join(check.problems))


HoldIdArg = Annotated[int, typer.Argument(help="the hold's id")]


@hold_app.command("add")
def hold_add(
    matter: Annotated[str, typer.Option(help="the case or request the hold serves")],
    reason: Annotated[str, typer.Option(help="why")],
    account: Annotated[
        str | None, typer.Option(help="one account (else every account)", show_default=False)
    ] = None,
    class_: Annotated[
        str | None,
        typer.Option("--class", help="one retention class (else all)", show_default=False),
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Place a legal hold: nothing it covers is archived or removed until it is released."""
    hold = retention_book.add_hold(
        open_store(db),
        make_ctx(actor),
        matter=matter,
        reason=reason,
        account=account,
        record_class=class_,
        specs=SPECS,
    )
    if json:
        emit_json(hold.as_json())
    else:
        say(
            f"legal hold {hold.hold_id} placed: {hold.account or 'every account'}, "
            f"{hold.record_class or 'every class'} ({hold.matter})"
        )


@hold_app.command("release")
def hold_release(
    hold_id: HoldIdArg,
    reason: Annotated[str, typer.Option(help="why the hold ends")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Release a legal hold (its record stays)."""
    hold = retention_book.release_hold(open_store(db), make_ctx(actor), hold_id, reason)
    if json:
        emit_json(hold.as_json())
    else:
        say(f"legal hold {hold.hold_id} released")


@hold_app.command("list")
def hold_list(
    all_: Annotated[bool, typer.Option("--all", help="released holds too")] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Legal holds (active ones unless --all)."""
    with open_store(db).read() as conn:
        holds = retention_book.list_holds(conn, include_released=all_)
    if json:
        emit_json([h.as_json() for h in holds])
        return
    if not holds:
        say("no legal holds")
    for h in holds:
        state = "active" if h.active else "released"
        say(
            f"{h.hold_id:>4}  {state:<8} {h.account or '*':<12} {h.record_class or '*':<13} "
            f"{h.matter}: {h.reason}"
        )
