"""Backups: create one (SQLite online backup, PostgreSQL pg_dump), check one, restore one into
an empty database followed by a verification (schema version, rows per table, audit chain)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

import migrations
from cli.common import ActorOpt, DbOpt, JsonOpt, emit_json, make_ctx, open_store, say
from oms import backup
from oms.errors import BadInput, VerificationFailed
from oms.store import resolve_url

backup_app = typer.Typer(help="Back the book up and restore it.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")


@backup_app.command("create")
def create(
    out: Annotated[str, typer.Option("--out", help="the backup file to write")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Back the book up into one file: the database (a consistent snapshot, taken while
    others go on writing) and a manifest of its schema version, rows per table, audit head and
    SHA-256. Recorded in the audit trail."""
    info = backup.create(open_store(db), make_ctx(actor), Path(out))
    doc = info.as_json()
    if json:
        emit_json(doc)
        return
    total = sum(doc["tables"].values())
    say(
        f"{out}: {doc['backend']} backup, schema {doc['schema_revision']}, "
        f"{len(doc['tables'])} tables, {total} rows, audit head {doc['audit']['head']}"
    )
    if not doc["audit"]["ok"]:
        say("warning: the audit chain of the book did not verify when it was backed up")


@backup_app.command("verify")
def verify(
    file: Annotated[str, typer.Argument(help="a backup file")],
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Check a backup file offline (manifest, SHA-256 of the database it holds); exit 7 when
    it is damaged. (--db is accepted and not used: the check needs no database.)"""
    del db
    manifest = backup.verify_file(Path(file))
    if json:
        emit_json(
            {
                "file": file,
                "ok": True,
                "backend": manifest["backend"],
                "created_at": manifest["created_at"],
                "schema_revision": manifest["schema_revision"],
                "tables": manifest["tables"],
                "audit": manifest["audit"],
                "sha256": manifest["payload"]["sha256"],
            }
        )
    else:
        say(f"{file}: intact ({manifest['backend']}, taken {manifest['created_at']})")


@backup_app.command("restore")
def restore(
    file: Annotated[str, typer.Argument(help="a backup file")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Restore a backup into an empty database (a new SQLite file, an empty PostgreSQL database
    or dropped schema), then verify schema version, rows per table and the audit chain against
    the backup's manifest: exit 7 when they differ or the file is damaged."""
    if db is None and not os.environ.get("TIEOUT_DB"):
        raise BadInput("--db", "name the database to restore into (--db URL)")
    report = backup.restore(Path(file), resolve_url(db), make_ctx(actor))
    if json:
        emit_json(report.as_json())
    elif report.ok:
        doc = report.as_json()
        say(
            f"restored {file} into {report.database}: schema {doc['schema_revision']}, "
            f"{sum(doc['tables'].values())} rows, audit chain intact "
            f"({doc['audit']['events']} events, head {doc['audit']['head']})"
        )
        revision = str(doc["schema_revision"])
        if not doc["schema_current"] and migrations.known(revision):
            say(f"the schema is behind this tieout: run `tieout init --db {report.database}`")
        elif not doc["schema_current"]:
            say(
                f"the schema (revision {revision}) is not one this tieout (schema "
                f"{migrations.HEAD}) knows"
                + (
                    ": a newer tieout made the backup; use that version or a later one with "
                    "this database"
                    if migrations.newer(revision)
                    else ""
                )
            )
    if not report.ok:
        raise VerificationFailed(backup.describe_failure(report))
