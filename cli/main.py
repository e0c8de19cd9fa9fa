"""The `tieout` program: sub-commands are registered here, and tieout's errors become the
contract's exit codes here and nowhere else."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import (
    FINISHED,
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
    text_streams_never_fail,
    warn,
)
from oms.errors import PartlyDone, TieoutError
from oms.interrupts import DIE_WITH_ENV, caused_by_interrupt, die_with
from oms.store import Store, commit_unknown, database_errors, database_reason
from oms.values import printable

# the first word of a command line (a group, or a top-level command a module registers) -> the
# module that registers it: that command imports and builds that module's commands alone.
# Not here (the whole tree): init and demo (this module's), `approve` (it runs whichever
# four-eyes command was requested, so every module's commands must be guarded), --help, a
# mistyped name. tests/cli/test_command_tree.py checks this table against the whole tree.
OWNERS: dict[str, str] = {
    "instrument": "refdata_cmd",
    "account": "refdata_cmd",
    "cash": "refdata_cmd",
    "exec": "book_cmd",
    "positions": "book_cmd",
    "lots": "book_cmd",
    "md": "md_cmd",
    "audit": "audit_cmd",
    "order": "order_cmd",
    "risk": "risk_cmd",
    "paper": "paper_cmd",
    "report": "report_cmd",
    "export": "export_cmd",
    "recon": "recon_cmd",
    "breaks": "recon_cmd",
    "schedule": "schedule_cmd",
    "surveil": "surveil_cmd",
    "user": "user_cmd",
    "destination": "user_cmd",
    "db": "user_cmd",
    "login": "user_cmd",
    "logout": "user_cmd",
    "whoami": "user_cmd",
    "sessions": "user_cmd",
    "approvals": "user_cmd",
    "retention": "retention_cmd",
    "backup": "backup_cmd",
}
# the modules that register tieout's commands, in the order the whole tree lists them
MODULES = tuple(dict.fromkeys(OWNERS.values()))


def _program() -> typer.Typer:
    return typer.Typer(
        name="tieout",
        help="Operations toolkit for trading back offices: book of record, OMS, reconciliation.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


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
    _warn_venue_spellings(store)


def _warn_venue_spellings(store: Store) -> None:
    """A book from before `order submit` refused a venue in another case may know one venue in
    several spellings: executions are matched in their own, so say which, at each init."""
    from oms import executions

    with store.read() as conn:
        known = executions.venue_spellings(conn)
    for spellings in sorted(known.values(), key=sorted):
        if len(spellings) > 1:
            shown = " and ".join(sorted(spellings))
            warn(
                f"this book writes one venue as {shown}: an execution is matched in the "
                "spelling it was booked in; route new orders and write files in one of them "
                "(tieout refuses another)"
            )


def demo(
    out: Annotated[
        str, typer.Option(help="folder for the demo database and files")
    ] = "tieout-demo",
    seed: Annotated[int, typer.Option(help="same seed, same results")] = 7,
    db: Annotated[
        str | None,
        typer.Option(
            help="an empty database for the demo's book (default: a fresh SQLite file in the "
            "--out folder; TIEOUT_DB is not read: a demo never writes into a book)"
        ),
    ] = None,
    actor: ActorOpt = None,
) -> None:
    """A simulated trading day on a fresh embedded database, end to end."""
    from cli.demo import run_demo

    run_demo(Path(out), seed, resolve_actor(actor), clock, say, db)


@cache
def whole_app() -> typer.Typer:
    """The program with every command (built once per process): each module's registered, then
    init and demo, and every writing command put behind its permission (oms.operators
    .PERMISSIONS, cli.common.guard_commands)."""
    app = _program()
    for name in MODULES:
        import_module(f"cli.{name}").register(app)
    app.command("init")(init)
    app.command("demo")(demo)
    guard_commands(app)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole program, built when first asked for
        return whole_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_commands: dict[str | None, Any] = {}


def command(args: Sequence[str] = ()) -> Any:
    """The click command tree that runs `args`: when their first word is a command of one
    module (OWNERS: `order`, `cash`, `positions`, ...), the tree of that module's commands
    alone, with only that module imported; else (init, demo, approve, --help, a mistyped name)
    the whole tree. Importing every command module costs about 0.15 s of a command's start-up
    on a fast day (0.4 s on a slow one), and building the whole tree about 0.1 s (0.3 s); one
    module's takes a few ms. A module's commands are guarded as in the whole tree (guarding
    twice changes nothing). Each tree is built once per process (the tests run many commands
    in one)."""
    first = args[0] if args else None
    owner = OWNERS.get(first) if first is not None else None
    found = _commands.get(owner)
    if found is None:
        if owner is None:
            found = typer.main.get_command(whole_app())
        else:
            alone = _program()
            import_module(f"cli.{owner}").register(alone)
            guard_commands(alone)
            found = typer.main.get_command(alone)
        _commands[owner] = found
    return found


INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C (128 + SIGINT), as typer's
TERMINATED = 143  # ... and by SIGTERM (128 + 15: `timeout`, systemd, kill)
_ctrl_c: list[int] = []  # the SIGINTs and SIGTERMs this command received (see _note_ctrl_c)


def _note_ctrl_c(signum: int, frame: Any) -> None:
    """SIGINT's handler while a command runs, and SIGTERM's: Python's own for SIGINT
    (KeyboardInterrupt), noting that it came, so that an exit code of 130 is told from a job's
    own (`schedule trigger` exits with its failed job's code). SIGTERM takes the same way out as
    Ctrl-C rather than ending the process where it stands: its transaction rolls back either
    way, but only this way are its temporary files (a backup's, an archive's `.partial`) removed
    and its workers told to end; oms.interrupts.interrupts_held holds both back alike."""
    _ctrl_c.append(signum)
    signal.default_int_handler(signum, frame)


def _interrupted() -> None:
    """Ctrl-C (exit 130) or SIGTERM (exit 143), saying what it means for the book."""
    terminated = signal.SIGTERM in _ctrl_c
    how = "terminated (SIGTERM)" if terminated else "interrupted"
    if FINISHED:  # it came while the command wrote what it had done (acknowledging)
        sys.stderr.write(
            f"\ntieout: {how} after the command had done its work: all of it committed, and its "
            "output above is whole\n"
        )
    else:
        sys.stderr.write(
            f"\ntieout: {how}: what the command committed before stays, what it was in the "
            "middle of was rolled back (nothing is half-written)\n"
        )
    sys.exit(TERMINATED if terminated else INTERRUPTED)


def _catch(signum: signal.Signals, default: Any) -> None:
    """`_note_ctrl_c` for `signum` if its handler is `default` (not one set to ignore it: a
    background job may start with SIGINT ignored, and keeps it so)."""
    if signal.getsignal(signum) is default:
        signal.signal(signum, _note_ctrl_c)


def run() -> None:
    """Console entry point: the one place that maps errors to exit codes."""
    # psycopg logs what it could not clean up after a lost connection ("error ignored
    # terminating <psycopg.Copy ...>"): the error that follows says it for the user
    # SQLAlchemy's pool logs a rollback that failed as it returns a connection ("Exception
    # during reset or similar", with a traceback: after Ctrl-C on PostgreSQL), likewise
    for name in ("psycopg", "sqlalchemy.pool"):
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False
    text_streams_never_fail()
    _ctrl_c.clear()
    FINISHED.clear()
    parent = os.environ.pop(DIE_WITH_ENV, "")
    if parent.isdigit() and os.getppid() == int(parent):
        # a scheduled job's command: it ends (SIGTERM) if its scheduler dies. Started through a
        # program of its own (TIEOUT_PROGRAM `timeout 600 tieout`, a script that forks), its
        # parent is that program: it is not tied then (it ended at once, taken for orphaned)
        die_with(int(parent), signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        _catch(signal.SIGINT, signal.default_int_handler)
        _catch(signal.SIGTERM, signal.SIG_DFL)
    try:
        # without standalone mode, click returns a typer.Exit's code instead of raising it
        args = sys.argv[1:]
        code = command(args).main(args=args, prog_name="tieout", standalone_mode=False)
    except TieoutError as exc:
        message = exc.message
        if isinstance(exc, PartlyDone) and database_named():
            message += f" (database {database_named()})"
        sys.stderr.write(f"tieout: {printable(message)}\n")
        if isinstance(exc, PartlyDone) and exc.interrupted:
            _interrupted()  # 130 or 143, as any interrupted command
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # before typer ran the command (while starting up), or SIGTERM
        _interrupted()
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
    except database_errors() as exc:  # the database failed mid-command: its transaction rolled back
        if _ctrl_c and caused_by_interrupt(exc):  # psycopg's query canceled by Ctrl-C
            _interrupted()
        reason = database_reason(exc)
        if "database is locked" in reason:
            reason += " (another process holds the write lock; try again once it is done)"
        named = database_named()
        where = f" ({named})" if named else ""
        if commit_unknown(exc):  # the server may have committed: a retry could do it twice
            sys.stderr.write(
                f"tieout: database error{printable(where)}: {printable(reason)}\n"
                "tieout: the change may or may not have been made: check the book (order "
                "list, cash balance, audit export) before running the command again\n"
            )
            sys.exit(1)
        sys.stderr.write(
            f"tieout: database error{printable(where)}, nothing was changed: {printable(reason)}\n"
        )
        sys.exit(1)
    except UnicodeDecodeError as exc:
        sys.stderr.write(f"tieout: input is not valid UTF-8: {exc.reason} at byte {exc.start}\n")
        sys.exit(3)
    if code == INTERRUPTED and _ctrl_c:  # typer's answer to Ctrl-C (returned, not raised,
        _interrupted()  # without standalone mode); a job's own exit 130 is not one
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
