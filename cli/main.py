"""The `tieout` program: sub-commands are registered here, and tieout's errors become the
contract's exit codes here and nowhere else."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import (
    audit_cmd,
    backup_cmd,
    book_cmd,
    export_cmd,
    md_cmd,
    order_cmd,
    paper_cmd,
    recon_cmd,
    refdata_cmd,
    report_cmd,
    retention_cmd,
    risk_cmd,
    schedule_cmd,
    surveil_cmd,
    user_cmd,
)
from cli.common import (
    ActorOpt,
    DbOpt,
    JsonOpt,
    clock,
    database_named,
    emit_json,
    guard_commands,
    make_ctx,
    open_store,
    resolve_actor,
    say,
)
from oms.errors import PartlyDone, TieoutError
from oms.store import DATABASE_ERRORS, database_reason
from oms.values import printable

app = typer.Typer(
    name="tieout",
    help="Operations toolkit for trading back offices: book of record, OMS, reconciliation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
refdata_cmd.register(app)
book_cmd.register(app)
md_cmd.register(app)
audit_cmd.register(app)
order_cmd.register(app)
risk_cmd.register(app)
paper_cmd.register(app)
report_cmd.register(app)
export_cmd.register(app)
recon_cmd.register(app)
schedule_cmd.register(app)
surveil_cmd.register(app)
user_cmd.register(app)
retention_cmd.register(app)
backup_cmd.register(app)


@app.command("init")
def init(db: DbOpt = None, actor: ActorOpt = None, json: JsonOpt = False) -> None:
    """Create the tieout schema in a database, or upgrade it to this version."""
    store = open_store(db, check_schema=False)
    ctx = make_ctx(actor)
    before, after = store.init(ctx.actor, ctx.now)
    if json:
        emit_json({"database": store.url, "from": before, "to": after, "upgraded": before != after})
    elif before != after:
        say(f"database {store.url}: schema {before or 'none'} -> {after}")
    else:
        say(f"database {store.url}: schema is up to date ({after})")


@app.command("demo")
def demo(
    out: Annotated[
        str, typer.Option(help="folder for the demo database and files")
    ] = "tieout-demo",
    seed: Annotated[int, typer.Option(help="same seed, same results")] = 7,
    actor: ActorOpt = None,
) -> None:
    """A simulated trading day on a fresh embedded database, end to end."""
    from cli.demo import run_demo

    run_demo(Path(out), seed, resolve_actor(actor), clock, say)


# every writing command behind its permission (oms.operators.PERMISSIONS): keep this after the
# last command is registered
guard_commands(app)

_commands: dict[str | None, Any] = {}


def command(args: Sequence[str] = ()) -> Any:
    """The click command tree that runs `args`: when their first word names a group of `app`
    (`order`, `cash`, ...), a tree of that group alone; else (a top-level command, --help, a
    mistyped name) the tree of all of `app`. Building the whole tree costs about 0.1 s on a
    fast day and 0.3 s on a slow one, most of a command's start-up after the imports; one
    group's takes a few ms. Each tree is built once per process (the tests run many commands
    in one)."""
    first = args[0] if args else None
    group = next((g for g in app.registered_groups if first and g.name == first), None)
    key = None if group is None else group.name
    found = _commands.get(key)
    if found is None:
        if group is None:
            found = typer.main.get_command(app)
        else:  # the same group (its commands guarded already) under the same program
            alone = typer.Typer(
                name=app.info.name,
                help=app.info.help,
                no_args_is_help=True,
                add_completion=False,
                pretty_exceptions_enable=False,
            )
            alone.registered_groups.append(group)
            found = typer.main.get_command(alone)
        _commands[key] = found
    return found


def run() -> None:
    """Console entry point: the one place that maps errors to exit codes."""
    # psycopg logs what it could not clean up after a lost connection ("error ignored
    # terminating <psycopg.Copy ...>"): the error that follows says it for the user
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    logging.getLogger("psycopg").propagate = False
    try:
        # without standalone mode, click returns a typer.Exit's code instead of raising it
        args = sys.argv[1:]
        code = command(args).main(args=args, prog_name="tieout", standalone_mode=False)
    except TieoutError as exc:
        message = exc.message
        if isinstance(exc, PartlyDone) and database_named():
            message += f" (database {database_named()})"
        sys.stderr.write(f"tieout: {printable(message)}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: exit 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"tieout: {printable(str(exc))}\n")
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except typer.Abort:
        sys.stderr.write("tieout: aborted\n")
        sys.exit(1)
    except DATABASE_ERRORS as exc:  # the database failed mid-command: its transaction rolled back
        reason = database_reason(exc)
        if "database is locked" in reason:
            reason += " (another process holds the write lock; try again once it is done)"
        named = database_named()
        where = f" ({named})" if named else ""
        sys.stderr.write(
            f"tieout: database error{printable(where)}, nothing was changed: {printable(reason)}\n"
        )
        sys.exit(1)
    except UnicodeDecodeError as exc:
        sys.stderr.write(f"tieout: input is not valid UTF-8: {exc.reason} at byte {exc.start}\n")
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
