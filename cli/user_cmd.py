"""Operators and access: user, login, logout, whoami, sessions, approve, approvals, destination,
db grants.

Until the first operator exists tieout runs in single-operator local mode (the actor is --actor,
TIEOUT_ACTOR or the OS user). The first operator must be an admin; from then on every writing
command needs a logged-in session (cli.common.guarded) and only an admin adds operators.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import (
    FOUR_EYES_COMMANDS,
    ActorOpt,
    DbOpt,
    JsonOpt,
    TotpOpt,
    ask_secret,
    authenticate,
    client_name,
    clock,
    current_session,
    emit_json,
    inside,
    make_ctx,
    note,
    open_store,
    read_session_token,
    read_stdin_secret,
    remove_session_file,
    resolve_actor,
    say,
    service_token,
    write_session_file,
    write_token_file,
)
from oms import access, operators, secret_key, service_access
from oms.book import Ctx
from oms.errors import BadInput, Refused
from oms.operators import SessionState
from oms.store import schema_revisions
from oms.values import utc_iso

user_app = typer.Typer(help="Operator accounts: roles, passwords, TOTP.", no_args_is_help=True)
destination_app = typer.Typer(
    help="Whitelisted withdrawal destinations of an account (usable 24 hours after adding).",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)

PasswordStdinOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]

# the schema revision since which operators, their sessions and the audit trail stand as this
# code reads and writes them at login (0009 encrypted the TOTP secrets; 0011 added service
# accounts beside them)
LOGIN_SCHEMA = "0011"


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(destination_app, name="destination")
    app.add_typer(db_app, name="db")
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.command("sessions")(sessions)
    app.command("approve")(approve)
    app.command("approvals")(approvals)


def _password(from_stdin: bool, *, confirm: bool) -> str:
    if from_stdin:
        return read_stdin_secret("password")
    return ask_secret("Password", "--password-stdin", confirm=confirm)


# ---- user -------------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="operator name (lower case)")],
    role: Annotated[str, typer.Option(help="trader, ops, compliance or admin")],
    password_stdin: PasswordStdinOpt = False,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Add an operator and enrol TOTP (the first operator must be an admin; later, admins only).
    The otpauth:// URI goes into an authenticator app; it is shown once. The TOTP secret is
    stored encrypted with a key kept outside the database (TIEOUT_SECRET_KEY, TIEOUT_KEY_FILE,
    else a key file beside a SQLite database or in ~/.config/tieout), created with the first
    operator."""
    store = open_store(db)
    first = not access.operators_exist(store)
    operators.parse_operator_name(name)
    operators.parse_role(role)
    password = _password(password_stdin, confirm=True)
    op, uri = access.add_operator(store, make_ctx(actor), name, role, password)
    if first:
        note(
            f"TOTP secrets are encrypted with the key in {secret_key.where(store.engine.url)}: "
            "it is not in the database nor in its backups; keep a copy of it apart "
            "(docs/operations.md, 'The TOTP key')"
        )
    if json:
        emit_json({"user": op.name, "role": op.role, "totp_uri": uri})
    else:
        say(f"operator {op.name} ({op.role}) added; enrol this in an authenticator app:\n  {uri}")
    if first:
        note(
            "operator mode is on: every writing command now needs a session "
            f"(`tieout login {op.name}`)"
        )


TokenFileOpt = Annotated[
    str | None,
    typer.Option(
        "--token-file",
        help="write the token to this file (mode 0600) instead of printing it",
        show_default=False,
    ),
]


def _token_out(path_text: str | None, *, replace: bool) -> tuple[str, Path | None, Path | None]:
    """A new token, and where it goes: (token, the file, its not-yet-renamed copy)."""
    token = service_access.new_token()
    if path_text is None:
        return token, None, None
    path = Path(path_text).expanduser()
    if path.exists() and not replace:
        raise BadInput("--token-file", f"{path} exists: give a new path (or remove it first)")
    if not path.parent.is_dir():
        raise BadInput("--token-file", f"{path.parent} is not a directory")
    return token, path, write_token_file(path, token)


def _issue(path_text: str | None, replace: bool, commit: Any) -> tuple[Any, str, Path | None]:
    """Run `commit(token)` (which stores the token's hash); the token file takes the token only
    once that has committed, and is left alone when it fails."""
    token, path, tmp = _token_out(path_text, replace=replace)
    try:
        result = commit(token)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    if path is not None and tmp is not None:
        os.replace(tmp, path)
    return result, token, path


def _say_token(doc: dict[str, Any], token: str, path: Path | None, json: bool) -> None:
    doc["token"] = None if path is not None else token
    doc["token_file"] = str(path) if path is not None else None
    if json:
        emit_json(doc)
    elif path is not None:
        say(f"token {doc['token_id']} of {doc['user']} written to {path} (mode 0600)")
    else:
        say(f"token {doc['token_id']} of {doc['user']} (shown once, keep it secret):\n  {token}")
    note(
        f"the scheduler and cron lines run as {doc['user']} with TIEOUT_SERVICE_TOKEN_FILE "
        "naming that file (docs/operations.md, 'Scheduled jobs in operator mode')"
    )


@user_app.command("add-service")
def user_add_service(
    name: Annotated[str, typer.Argument(help="service account name (lower case)")],
    token_file: TokenFileOpt = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Add a service account for unattended work (admins only, fresh TOTP code): role
    `service` (recon run, md/exec import, order expire-due, surveil run, backup create, schedule
    run/trigger), no password, no TOTP, no login. Its token is shown once, or written to
    --token-file (mode 0600); only the token's SHA-256 is stored."""
    store = open_store(db)
    operators.parse_operator_name(name)
    ctx = make_ctx(actor)
    (account, token_id), token, path = _issue(
        token_file, False, lambda tok: service_access.add_service_account(store, ctx, name, tok)
    )
    _say_token({**account.as_json(), "token_id": token_id}, token, path, json)


@user_app.command("rotate-token")
def user_rotate_token(
    name: Annotated[str, typer.Argument(help="service account name")],
    token_file: TokenFileOpt = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Give a service account a new token and revoke the old one at once (admins only, fresh
    TOTP code). --token-file may name the file the old token is in: it is replaced."""
    store = open_store(db)
    ctx = make_ctx(actor)
    (token_id, revoked), token, path = _issue(
        token_file, True, lambda tok: service_access.rotate_token(store, ctx, name, tok)
    )
    _say_token(
        {"user": name, "token_id": token_id, "revoked_token_ids": revoked}, token, path, json
    )


@user_app.command("list")
def user_list(db: DbOpt = None, json: JsonOpt = False) -> None:
    """List operators and service accounts."""
    with open_store(db).read() as conn:
        items = access.list_operators(conn)
        services = service_access.list_service_accounts(conn)
    if json:
        emit_json(
            [{**o.as_json(), "kind": "operator"} for o in items] + [s.as_json() for s in services]
        )
        return
    for o in items:
        state = "active" if o.active else "disabled"
        say(f"{o.name:<20} {o.role:<11} {state}")
    for s in services:
        state = "active" if s.active else "disabled"
        say(f"{s.name:<20} {s.role:<11} {state}")


@user_app.command("disable")
def user_disable(
    name: str, db: DbOpt = None, actor: ActorOpt = None, json: JsonOpt = False
) -> None:
    """Disable an operator and end their sessions (admins only; not the last admin), or disable
    a service account and revoke its tokens."""
    store = open_store(db)
    with store.read() as conn:
        service = service_access.is_service_account(conn, name)
    if service:
        account = service_access.disable_service_account(store, make_ctx(actor), name)
        if json:
            emit_json(account.as_json())
        else:
            say(f"service account {account.name} disabled, its tokens revoked")
        return
    op = access.disable_operator(store, make_ctx(actor), name)
    if json:
        emit_json(op.as_json())
    else:
        say(f"operator {op.name} disabled")


@user_app.command("rotate-key")
def user_rotate_key(
    reencrypt_only: Annotated[
        bool,
        typer.Option(
            "--reencrypt-only",
            help="make no new key: encrypt every secret with the first key given "
            "(TIEOUT_SECRET_KEY=NEW,OLD or a key file with the new key first)",
        ),
    ] = False,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Encrypt every operator's TOTP secret with a new key (admins only, fresh TOTP code). The
    old key is saved beside the key file as KEYFILE.OLDID.retired: backups made before need it."""
    store = open_store(db)
    ctx = make_ctx(actor)
    doc = access.reencrypt(store, ctx) if reencrypt_only else access.rotate_key(store, ctx)
    if json:
        emit_json(doc)
        return
    say(
        f"{doc['operators']} TOTP secret(s) now encrypted with key {doc['key_id']} "
        f"({doc['key_file']})"
    )
    if doc["retired_key_file"]:
        note(
            f"the previous key is in {doc['retired_key_file']}: backups made before this need "
            "it; keep it with them, apart from the database, or destroy it with them"
        )


@user_app.command("roles")
def user_roles(db: DbOpt = None, json: JsonOpt = False) -> None:
    """Which role may run which writing command (reads are open to every operator). The
    same for every book: `--db` is accepted, as on every command, and not read."""
    del db
    matrix = operators.permission_matrix()
    doc = {
        "roles": list(operators.ROLES),
        "service_role": operators.SERVICE,
        "commands": matrix,
        "sensitive": sorted(operators.SENSITIVE),
        "four_eyes": sorted(operators.FOUR_EYES),
    }
    if json:
        emit_json(doc)
        return
    for cmd, roles in matrix.items():
        flags = ("  totp" if cmd in operators.SENSITIVE else "") + (
            "  four-eyes" if cmd in operators.FOUR_EYES else ""
        )
        say(f"{cmd:<24} {', '.join(roles)}{flags}")


# ---- login, logout, whoami, sessions ----------------------------------------------------------


def _require_operator_mode(store: Any, what: str) -> None:
    if not access.operators_exist(store):
        raise Refused(
            what,
            "there are no operator accounts: tieout runs in local mode "
            "(`tieout user add NAME --role admin` starts operator mode)",
            "local_mode",
        )


def login(
    name: Annotated[str, typer.Argument(help="operator name")],
    password_stdin: PasswordStdinOpt = False,
    totp: TotpOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Log in: password and TOTP code (prompts on a terminal; scripts: --password-stdin --totp).
    The session token is saved for this database (TIEOUT_SESSION_FILE, else
    ~/.config/tieout/session-HASH), replacing (and ending) the session saved there before; it
    ends after 30 minutes idle or 12 hours."""
    store = open_store(db, check_schema=False)
    # an older schema will do (its operators and sessions are as this code's), so that an admin
    # can log in to run `tieout init` on a book an upgraded tieout has not migrated yet: `init`
    # needs an admin's session there, and login needed the schema `init` makes
    store.require_schema(at_least=LOGIN_SCHEMA)
    _require_operator_mode(store, f"login {name}")
    password = _password(password_stdin, confirm=False)
    code = totp if totp is not None else ask_secret("TOTP code", "--totp")
    old_token = read_session_token(store.url)
    result = access.login(store, clock(), name.strip(), password, code, client_name())
    replaced = access.logout(store, clock(), old_token) if old_token else None
    others = [o for o in result.others if replaced is None or o.session_id != replaced.session_id]
    path = write_session_file(store.url, result.session, result.token)
    now = result.session.created_at
    with store.read() as conn:
        current, head = schema_revisions(conn)
    if current != head:
        note(
            f"this book is at schema revision {current}, this tieout's is {head}: an admin "
            "runs `tieout init` to upgrade it; other commands refuse it until then"
        )
    for other in others:
        note(
            f"you also have a session from {other.client} started at "
            f"{utc_iso(other.created_at)} (session {other.session_id}; "
            f"`tieout sessions --revoke {other.session_id}` ends it)"
        )
    if json:
        emit_json(
            {
                **result.session.as_json(now),
                "session_file": str(path),
                "other_sessions": [o.as_json(now) for o in others],
                "replaced_session": replaced.session_id if replaced else None,
            }
        )
    else:
        say(
            f"logged in as {result.session.operator} ({result.session.role}), session "
            f"{result.session.session_id}, until {utc_iso(result.session.expires_at())} if idle"
        )


def logout(db: DbOpt = None, json: JsonOpt = False) -> None:
    """End this session and forget its token."""
    store = open_store(db)
    token = read_session_token(store.url)
    ended = access.logout(store, clock(), token) if token is not None else None
    remove_session_file(store.url)
    if json:
        emit_json({"logged_out": ended is not None, "user": ended.operator if ended else None})
    elif ended is not None:
        say(f"logged out {ended.operator} (session {ended.session_id})")
    else:
        say("not logged in", json_mode=True)


def whoami(db: DbOpt = None, json: JsonOpt = False) -> None:
    """Who acts: the logged-in operator, or in local mode the actor (--actor/TIEOUT_ACTOR/OS)."""
    store = open_store(db)
    now = clock()
    token = service_token()
    if not access.operators_exist(store):
        doc: dict[str, Any] = {"user": resolve_actor(None), "role": None, "mode": "local"}
    elif token is not None:
        who = service_access.authenticate(
            store, now, token, operators.rule("whoami", has_actor=False), client_name()
        )
        doc = {"user": who.operator, "role": who.role, "mode": "service", "token_id": who.token_id}
    else:
        token = read_session_token(store.url)
        with store.read() as conn:
            session = access.session_for_token(conn, token) if token else None
        if session is None:
            raise Refused("whoami", "not logged in (`tieout login NAME`)", "not_logged_in")
        state = session.state(now)
        if state is not SessionState.ACTIVE:
            raise Refused("whoami", f"your session is {state.value}: log in again", state.value)
        doc = {**session.as_json(now), "mode": "operators"}
    if json:
        emit_json(doc)
    elif doc["mode"] == "local":
        say(f"{doc['user']} (local mode: no operator accounts)")
    elif doc["mode"] == "service":
        say(f"{doc['user']} (service account, token {doc['token_id']})")
    else:
        say(f"{doc['user']} ({doc['role']}), session {doc['session_id']} until {doc['expires_at']}")


def sessions(
    revoke: Annotated[int | None, typer.Option(help="end this session (yours; any: admin)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="ended and expired ones too")] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """List live sessions (yours; an admin sees everybody's), or revoke one."""
    store = open_store(db)
    _require_operator_mode(store, "sessions")
    me = authenticate(store, operators.rule("sessions", has_actor=False), None)
    if revoke is not None:
        ended = access.revoke(store, Ctx(me.operator, clock()), revoke, me)
        if json:
            emit_json(ended.as_json(clock()))
        else:
            say(f"session {ended.session_id} of {ended.operator} revoked")
        return
    now = clock()
    who = None if me.role == operators.ADMIN else me.operator
    with store.read() as conn:
        found = access.list_sessions(conn, now, who, include_ended=all_)
    docs = [{**s.as_json(now), "current": s.session_id == me.session_id} for s in found]
    if json:
        emit_json(docs)
        return
    for d in docs:
        mark = "*" if d["current"] else " "
        say(
            f"{mark}{d['session_id']:>5} {d['user']:<16} {d['state']:<8} from {d['client']} "
            f"started {d['started_at']} last seen {d['last_seen_at']}"
        )


# ---- four eyes --------------------------------------------------------------------------------


def approve(
    request_id: Annotated[int, typer.Argument(help="the request (`tieout approvals`)")],
    hash_: Annotated[
        str | None, typer.Option("--hash", help="the SHA-256 of what you approve")
    ] = None,
    reject: Annotated[bool, typer.Option("--reject", help="reject it instead")] = False,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Approve (or reject) another operator's request: the command then runs, as you, in the
    same transaction as the approval. Needs a fresh TOTP code."""
    session = current_session()
    if session is None:
        raise Refused(
            f"approve request {request_id}",
            "there are no operator accounts: in local mode commands act at once",
            "local_mode",
        )
    store = open_store(db)
    ctx = make_ctx(actor)
    with store.write() as conn:
        req = access.decide(
            conn, ctx, request_id, approve=not reject, expected_hash=hash_, role=session.role
        )
        if isinstance(req, Refused):
            pass  # its record commits with this transaction; raised below
        elif not reject:
            command = FOUR_EYES_COMMANDS.get(req.action)
            if command is None:
                raise Refused(
                    f"approve request {request_id}",
                    f"this tieout has no command `{req.action}`",
                    "unknown_command",
                )
            params = inspect.signature(command).parameters
            extra = {"db": db, "actor": None, "json": False}
            kwargs = {**req.args, **{k: v for k, v in extra.items() if k in params}}
            with inside(access.BoundStore(conn)), contextlib.redirect_stdout(sys.stderr):
                command(**kwargs)
    if isinstance(req, Refused):
        raise req
    if json:
        emit_json(req.as_json())
    else:
        say(f"request {req.request_id} ({req.action}) {req.status}")


def approvals(
    all_: Annotated[bool, typer.Option("--all", help="decided ones too")] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Requests waiting for a second operator (with their content and hash)."""
    with open_store(db).read() as conn:
        items = access.list_requests(conn, None if all_ else access.PENDING)
    docs = [r.as_json() for r in items]
    if json:
        emit_json(docs)
        return
    for d in docs:
        say(
            f"{d['request_id']:>5} {d['status']:<9} {d['action']:<14} {d['args']} "
            f"by {d['requested_by']} at {d['requested_at']} hash {d['hash']}"
        )


# ---- withdrawal destinations ------------------------------------------------------------------


@destination_app.command("add")
def destination_add(
    account: str,
    dest: Annotated[str, typer.Argument(help="the destination (bank account, IBAN, wallet...)")],
    label: Annotated[str | None, typer.Option(help="a name for it")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Whitelist a withdrawal destination; withdrawals to it are accepted 24 hours later."""
    ctx = make_ctx(actor)
    item, created = access.add_destination(open_store(db), ctx, account, dest, label)
    if json:
        emit_json({**item.as_json(ctx.now), "created": created})
    elif created:
        say(
            f"{item.destination} whitelisted for {account}, usable from {utc_iso(item.usable_from)}"
        )
    else:
        say(f"{item.destination} is whitelisted for {account} already, unchanged")


@destination_app.command("list")
def destination_list(
    account: str,
    all_: Annotated[bool, typer.Option("--all", help="removed ones too")] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """An account's whitelisted withdrawal destinations."""
    now = clock()
    with open_store(db).read() as conn:
        items = access.list_destinations(conn, account, include_removed=all_)
    docs = [d.as_json(now) for d in items]
    if json:
        emit_json(docs)
        return
    for d in docs:
        state = "removed" if d["removed_at"] else ("usable" if d["usable"] else "waiting")
        say(f"{d['destination']:<34} {state:<8} from {d['usable_from']} {d['label'] or ''}")


@destination_app.command("remove")
def destination_remove(
    account: str, dest: str, db: DbOpt = None, actor: ActorOpt = None, json: JsonOpt = False
) -> None:
    """Take a destination off an account's whitelist."""
    ctx = make_ctx(actor)
    item = access.remove_destination(open_store(db), ctx, account, dest)
    if json:
        emit_json(item.as_json(ctx.now))
    else:
        say(f"{item.destination} removed from {account}'s destinations")


# ---- database roles ---------------------------------------------------------------------------


@db_app.command("grants")
def db_grants(
    role: Annotated[str, typer.Option(help="the application's role")] = "tieout_app",
    password_stdin: PasswordStdinOpt = False,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """PostgreSQL: create or update a least-privilege login role for the application (SELECT and
    INSERT everywhere, UPDATE and DELETE except on append-only tables, no TRUNCATE, no DDL)."""
    password = read_stdin_secret("password") if password_stdin else None
    doc = access.grant_app_role(open_store(db), make_ctx(actor), role, password)
    if json:
        emit_json(doc)
        return
    say(f"role {doc['role']} on schema {doc['schema']}: {len(doc['tables'])} tables granted")
    for table, privileges in doc["tables"].items():
        say(f"  {table:<28} {', '.join(privileges)}")
