"""What every command shares: the options of the contract's conventions, the composition of the
real store and clock, and output helpers."""

from __future__ import annotations

import codecs
import contextlib
import difflib
import functools
import getpass
import hashlib
import inspect
import io
import json
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring, encode_basestring_ascii
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperOption

from oms import access, operators, service_access
from oms.book import Ctx
from oms.errors import BadInput, PartlyDone, Refused
from oms.interrupts import interrupts_held
from oms.store import Store, resolve_url
from oms.values import parse_decimal, parse_utc, printable

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (else TIEOUT_DB, else sqlite:///tieout.db).", show_default=False
    ),
]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who makes the change (else TIEOUT_ACTOR, else the OS user).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TotpOpt = Annotated[
    str | None,
    typer.Option(
        "--totp",
        help="A fresh TOTP code: sensitive actions ask for one (else a prompt on a terminal).",
        show_default=False,
    ),
]

# Who acts while a guarded command runs: the logged-in operator's session, or the service account
# of the service token (None: local mode, or a read).
Identity = access.Session | service_access.ServiceIdentity
_SESSION: ContextVar[Identity | None] = ContextVar("tieout_session", default=None)
# A store bound to an open transaction: an approved request runs its command inside it.
_BOUND: ContextVar[Store | None] = ContextVar("tieout_bound_store", default=None)


def open_store(db: str | None, *, check_schema: bool = True) -> Store:
    bound = _BOUND.get()
    if bound is not None:
        return bound
    store = Store.open(resolve_url(db), check_schema=check_schema)
    _OPENED.append(store.url)
    return store


# the databases this process opened (their URLs without passwords): an error names them
_OPENED: list[str] = []


@contextlib.contextmanager
def partial_json(json_mode: bool) -> Iterator[None]:
    """Around a command of many transactions: when the database fails part way (PartlyDone),
    print what committed as the command's JSON (--json) before the error is reported."""
    try:
        yield
    except PartlyDone as exc:
        if json_mode:
            with interrupts_held():  # a second Ctrl-C does not cut what committed in half
                emit_json(exc.summary)
        raise


# set once the output acknowledging a command's committed work was written whole (see
# acknowledging): an interrupt that came while it was written then ends the command saying so
FINISHED: list[bool] = []


@contextlib.contextmanager
def acknowledging() -> Iterator[None]:
    """Around the output that acknowledges work already committed (an order file's lines, one
    per order): Ctrl-C and SIGTERM are held back until it is written whole, since the reader
    learns from it alone which order ids the rows got; one that came meanwhile ends the command
    after it (130 or 143), which says that its work was done. A second one ends it at once
    (a reader that stopped reading would otherwise hold it until SIGKILL)."""
    came: list[int] = []

    def second(signum: int) -> None:
        came.append(signum)
        if len(came) > 1:
            raise KeyboardInterrupt

    with interrupts_held(second):
        yield
        FINISHED.append(True)


def database_named() -> str | None:
    """The database the command opened last, for an error message."""
    return _OPENED[-1] if _OPENED else None


def clock() -> datetime:
    """Now, in UTC. TIEOUT_NOW (an ISO 8601 time with a zone) pins it: for tests, drills and
    replaying a day; every change still records that time in the audit trail."""
    pinned = os.environ.get("TIEOUT_NOW")
    if pinned:
        return parse_utc(pinned, "TIEOUT_NOW")
    return datetime.now(UTC)


def resolve_actor(actor: str | None) -> str:
    name = actor or os.environ.get("TIEOUT_ACTOR") or getpass.getuser()
    if not name.strip():
        raise BadInput("--actor", "the actor name is empty")
    return name.strip()


def make_ctx(actor: str | None) -> Ctx:
    """Who and when. Inside a guarded command of operator mode, the logged-in operator is the
    actor (the guard has refused an --actor naming someone else)."""
    session = _SESSION.get()
    if session is not None:
        return Ctx(actor=session.operator, now=clock(), clock=clock)
    return Ctx(actor=resolve_actor(actor), now=clock(), clock=clock)


def current_session() -> Identity | None:
    return _SESSION.get()


class _NoSuchOption(typer.BadParameter):
    """A usage error (exit 2) worded as click words an unknown option of the other commands
    ("No such option: --jsn (Possible options: --json)"), without BadParameter's "Invalid
    value:" in front."""

    def format_message(self) -> str:
        return self.message


class NumberArgs(TyperCommand):
    """A command with a number as an argument: "-5" (any word with one dash: these commands
    have no short options) is taken as that argument, whose checks then say why it is refused
    (exit 3), not as an unknown option (exit 2: "No such option: -5"). A word with two dashes
    that is not one of the command's options is still a usage error, wherever it stands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = dict(kwargs.pop("context_settings", None) or {})
        settings["ignore_unknown_options"] = True
        super().__init__(*args, context_settings=settings, **kwargs)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click.Context
        takes_value = {
            name: not (p.is_flag or p.count)
            for p in self.get_params(ctx)
            if isinstance(p, TyperOption)
            for name in (*p.opts, *p.secondary_opts)
        }
        skip = False
        for word in args:
            if skip:  # an option's value, whatever it looks like
                skip = False
                continue
            if word == "--":
                break
            name = word.split("=", 1)[0]
            if name in takes_value:
                skip = takes_value[name] and "=" not in word
                continue
            if word.startswith("--"):
                close = difflib.get_close_matches(name, list(takes_value))
                hint = f" (Possible options: {', '.join(sorted(close))})" if close else ""
                raise _NoSuchOption(f"No such option: {name}{hint}", ctx=ctx)
        return super().parse_args(ctx, args)




def decimal_arg(text: str, name: str, **kw: bool) -> Decimal:
    return parse_decimal(text, name, **kw)


def progress_bar() -> Any:
    """A rich progress bar on stderr for a long command (a batch of documents, an order file):
    nothing when stderr is not a terminal (cron, scripts, tests reading the output)."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


class ProgressTask:
    """A task of a progress_bar (nothing without one): started with its total, moved on as
    the command goes."""

    def __init__(self, bar: Any, label: str) -> None:
        self.bar, self.label, self.task = bar, label, None

    def start(self, total: int) -> None:
        if self.bar is not None and self.task is None:
            self.task = self.bar.add_task(self.label, total=total)

    def advance(self, n: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, n)

    def update(self, done: int, total: int) -> None:
        self.start(total)
        if self.bar is not None:
            self.bar.update(self.task, completed=done)


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=_json_ascii()) + "\n")


def _json_ascii() -> bool:
    """Whether JSON escapes what is not ASCII (\\u00e9): when stdout cannot carry every
    character (a locale or PYTHONIOENCODING that is not UTF-8), so that a name or reason in
    another script never stops the output half way; the reader gets the same JSON values."""
    return not _carries_unicode(sys.stdout)


def _carries_unicode(stream: Any) -> bool:
    """Whether a text stream can encode every character (a StringIO has no encoding: it can)."""
    encoding = getattr(stream, "encoding", None)
    return encoding is None or codecs.lookup(encoding).name in _UNICODE


_UNICODE = frozenset({"utf-8", "utf-8-sig", "utf-16", "utf-32"})  # as codecs names them


def text_streams_never_fail() -> None:
    """Text that stdout or stderr cannot encode is written as its escape (\\u20ac), not
    raised: the command's work is done by the time it reports it."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not _carries_unicode(stream):
            stream.reconfigure(errors="backslashreplace")


def emit_json_list(items: Iterable[Any]) -> None:
    """A JSON list written as its items come, byte for byte what emit_json(list(items)) writes,
    without holding the list or its text: the listings of a large book stream. The first item
    is asked for before anything is written, so that a refusal at the start (an unknown
    account) leaves stdout empty."""
    it = iter(items)
    first = next(it, _NOTHING)
    if first is _NOTHING:
        sys.stdout.write("[]\n")
        return
    ascii_only = _json_ascii()
    write = sys.stdout.write
    write("[\n  ")
    write(_indented(first, 1, ascii_only))
    for item in it:
        write(",\n  ")
        write(_indented(item, 1, ascii_only))
    write("\n]\n")


_NOTHING = object()


def emit_json_with_list(head: dict[str, Any], key: str, items: Iterable[Any]) -> None:
    """What emit_json({**head, key: list(items)}) writes, byte for byte, with the list last and
    its items written as they come (as emit_json_list does): a large batch's summary is not
    built as one text."""
    it = iter(items)
    first = next(it, _NOTHING)
    if first is _NOTHING or key in head or type(key) is not str:
        emit_json({**head, key: [] if first is _NOTHING else [first, *it]})
        return
    ascii_only = _json_ascii()
    write = sys.stdout.write
    opening = (
        json.dumps(head, indent=2, ensure_ascii=ascii_only)[:-2] + ",\n  " if head else "{\n  "
    )
    quoted = _QUOTE[ascii_only](key)
    write(f"{opening}{quoted}: [\n    {_indented(first, 2, ascii_only)}")
    for item in it:
        write(",\n    ")
        write(_indented(item, 2, ascii_only))
    write("\n  ]\n}\n")


# json's own C string encoders, as json.dumps uses them with ensure_ascii False and True
_QUOTE = {False: encode_basestring, True: encode_basestring_ascii}


def _indented(item: Any, depth: int, ascii_only: bool) -> str:
    """An item as json.dumps(indent=2, ensure_ascii=ascii_only) writes it `depth` levels down
    (inside a list at the top, or inside a list that is a value of the top object). A listing's
    objects are flat (texts, nulls, whole numbers, booleans, lists of texts): written here with
    the C string encoder json uses, since json.dumps with an indent encodes in Python (half of a
    large listing's time); anything else goes through json.dumps."""
    quote = _QUOTE[ascii_only]
    inner = "\n" + "  " * (depth + 1)
    if type(item) is dict and item:
        parts = []
        for key, value in item.items():
            kind = type(value)
            if kind is str:
                text = quote(value)
            elif value is None:
                text = "null"
            elif kind is bool:
                text = "true" if value else "false"
            elif kind is int:
                text = int.__repr__(value)
            elif kind is list and all(type(v) is str for v in value):
                text = (
                    "[" + ",".join(f"{inner}  {quote(v)}" for v in value) + f"{inner}]"
                    if value
                    else "[]"
                )
            else:
                break
            if type(key) is not str:
                break
            parts.append(f"{quote(key)}: {text}")
        else:
            return "{" + inner + ("," + inner).join(parts) + "\n" + "  " * depth + "}"
    return json.dumps(item, indent=2, ensure_ascii=ascii_only).replace("\n", "\n" + "  " * depth)


def say(text: str, *, json_mode: bool = False) -> None:
    """Human output: stdout normally, stderr when stdout carries JSON."""
    (sys.stderr if json_mode else sys.stdout).write(printable(text) + "\n")


def say_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()
) -> None:
    """A table for the terminal: each column as wide as its widest cell, columns two spaces
    apart (a figure never runs into the next, however many places it has), the columns at
    the indexes `right` aligned right (figures)."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            f"{c:>{w}}" if i in right else f"{c:<{w}}"
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    say(line(headers))
    for row in rows:
        say(line(row))


def note(text: str) -> None:
    """A remark for the person at the terminal: always on stderr."""
    sys.stderr.write(f"tieout: note: {printable(text)}\n")


def warn(text: str) -> None:
    """Something done that needs a person's attention: always on stderr."""
    sys.stderr.write(f"tieout: warning: {printable(text)}\n")


# ---- sessions on the client side ----------------------------------------------------------------


def session_path(store_url: str) -> Path:
    """Where the session token lives: TIEOUT_SESSION_FILE, else one file per database under
    $XDG_CONFIG_HOME/tieout (default ~/.config/tieout), named by a hash of the database URL."""
    explicit = os.environ.get("TIEOUT_SESSION_FILE")
    if explicit:
        return Path(explicit)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    return Path(config) / "tieout" / f"session-{digest}"


def read_session_token(store_url: str) -> str | None:
    """The token saved by `tieout login` for this database, if any."""
    path = session_path(store_url)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("db") != store_url:
        return None
    token = doc.get("token")
    return token if isinstance(token, str) else None


def write_session_file(store_url: str, session: access.Session, token: str) -> Path:
    path = session_path(store_url)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = {"db": store_url, "user": session.operator, "session_id": session.session_id}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps({**doc, "token": token}) + "\n")
    path.chmod(0o600)
    return path


def remove_session_file(store_url: str) -> None:
    path = session_path(store_url)
    if read_session_token(store_url) is not None:
        path.unlink(missing_ok=True)


def client_name() -> str:
    """Where a session comes from, as other sessions of the same operator are told."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "?"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def ask_secret(prompt: str, option: str, *, confirm: bool = False) -> str:
    """A hidden prompt on a terminal; without one, refuse rather than wait."""
    if not sys.stdin.isatty():
        raise BadInput(option, f"no terminal to ask for the {prompt.lower()}: give {option}")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def read_stdin_secret(what: str) -> str:
    line = sys.stdin.readline()
    value = line.rstrip("\r\n")
    if not value:
        raise BadInput("--password-stdin", f"no {what} on standard input")
    return value


# ---- service tokens (unattended work) ------------------------------------------------------------

SERVICE_TOKEN_ENV = "TIEOUT_SERVICE_TOKEN"  # noqa: S105 (a variable name)
SERVICE_TOKEN_FILE_ENV = "TIEOUT_SERVICE_TOKEN_FILE"  # noqa: S105


def service_token() -> str | None:
    """The service token this process runs with: the file named by TIEOUT_SERVICE_TOKEN_FILE
    (readable by its owner only, like an ssh key), else TIEOUT_SERVICE_TOKEN; None without
    either. Never both (which one would act?)."""
    path_text = os.environ.get(SERVICE_TOKEN_FILE_ENV, "").strip()
    inline = os.environ.get(SERVICE_TOKEN_ENV, "").strip()
    if path_text and inline:
        raise BadInput(
            SERVICE_TOKEN_ENV,
            f"give the service token by {SERVICE_TOKEN_FILE_ENV} or here, not both",
        )
    if inline:
        return inline
    if not path_text:
        return None
    path = Path(path_text)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(SERVICE_TOKEN_FILE_ENV, f"cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise BadInput(
            SERVICE_TOKEN_FILE_ENV,
            f"{path} can be read by others (mode {mode & 0o777:04o}): `chmod 600 {path}`, and "
            "rotate the token if others may have read it",
        )
    token = text.strip()
    if not token:
        raise BadInput(SERVICE_TOKEN_FILE_ENV, f"{path} is empty")
    return token


def write_token_file(path: Path, token: str) -> Path:
    """Write a token to a new file beside `path` (mode 0600, synced): the caller moves it into
    place with os.replace once the token is committed, or removes it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


# ---- the guard: who may run which writing command -----------------------------------------------

# The commands that wait for a second operator, as they were before the guard: `tieout approve`
# runs them once approved.
FOUR_EYES_COMMANDS: dict[str, Callable[..., Any]] = {}
_NOT_ARGS = frozenset({"db", "actor", "json", "totp"})


def authenticate_any(store: Store, rule: operators.Rule, totp: str | None) -> Identity:
    """Who runs `rule` (operator mode only): the service account of the service token when one
    is given (TIEOUT_SERVICE_TOKEN_FILE, TIEOUT_SERVICE_TOKEN), else the logged-in operator."""
    token = service_token()
    if token is not None:
        return service_access.authenticate(store, clock(), token, rule, client_name())
    return authenticate(store, rule, totp)


def authenticate(store: Store, rule: operators.Rule, totp: str | None) -> access.Session:
    """The logged-in operator, allowed to run `rule` (operator mode only)."""
    if rule.sensitive and totp is None and sys.stdin.isatty():
        totp = ask_secret("TOTP code", "--totp")
    return access.authenticate(store, clock(), read_session_token(store.url), rule, totp)


@contextlib.contextmanager
def acting_as(session: Identity) -> Iterator[None]:
    token = _SESSION.set(session)
    try:
        yield
    finally:
        _SESSION.reset(token)


@contextlib.contextmanager
def inside(conn_store: Store) -> Iterator[None]:
    """open_store() returns this store (bound to an open transaction) while the block runs."""
    token = _BOUND.set(conn_store)
    try:
        yield
    finally:
        _BOUND.reset(token)


def _run_guarded(
    rule: operators.Rule, callback: Callable[..., Any], kwargs: dict[str, Any], totp: str | None
) -> Any:
    store = Store.open(resolve_url(kwargs.get("db")), check_schema=False)
    _OPENED.append(store.url)
    try:
        return _in_mode(store, rule, callback, kwargs, totp)
    finally:
        store.dispose()


def _in_mode(
    store: Store,
    rule: operators.Rule,
    callback: Callable[..., Any],
    kwargs: dict[str, Any],
    totp: str | None,
) -> Any:
    mode = access.operator_mode(store)
    if mode is None:  # no tieout schema (yet): the command refuses, or `init` creates it
        return callback(**kwargs)
    if not mode:
        who = resolve_actor(kwargs.get("actor"))
        note(
            f"local mode (no operator accounts yet): acting as {who}; "
            "`tieout user add NAME --role admin` starts operator mode"
        )
        return callback(**kwargs)
    session = authenticate_any(store, rule, totp)
    service = isinstance(session, service_access.ServiceIdentity)
    who = f"service account {session.operator}" if service else "the logged-in operator"
    actor = kwargs.get("actor")
    if actor is not None and actor.strip() != session.operator:
        raise Refused(
            f"{rule.command} --actor {actor}",
            f"service account {session.operator} acts: --actor cannot name someone else"
            if service
            else f"you are logged in as {session.operator}: the logged-in operator is the actor",
            "actor_mismatch",
        )
    env_actor = os.environ.get("TIEOUT_ACTOR")
    if actor is None and env_actor and env_actor.strip() != session.operator:
        note(f"TIEOUT_ACTOR={env_actor} ignored: {who} {session.operator} acts")
    if not rule.known:
        note(f"`tieout {rule.command}` has no permission entry: admin only")
    with acting_as(session):
        if rule.four_eyes:
            return _hold_for_approval(store, session, rule, callback, kwargs)
        return callback(**kwargs)


class _DryRun(Exception):
    """Rolls back a command that ran only to see whether it would succeed."""


def _hold_for_approval(
    store: Store,
    session: Identity,
    rule: operators.Rule,
    callback: Callable[..., Any],
    kwargs: dict[str, Any],
) -> None:
    """Record a request instead of running the command, after running it in a transaction that
    is rolled back: a request that could not be carried out now is refused at once."""
    args = {k: v for k, v in kwargs.items() if k not in _NOT_ARGS}
    try:
        with (
            store.write() as conn,
            inside(access.BoundStore(conn)),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            callback(**{**kwargs, "json": False} if "json" in kwargs else kwargs)
            raise _DryRun
    except _DryRun:
        pass
    req = access.request_approval(store, Ctx(session.operator, clock()), rule.command, args)
    if kwargs.get("json"):
        emit_json(req.as_json())
        return
    say(
        f"`tieout {rule.command}` needs a second operator: request {req.request_id} recorded "
        f"(hash {req.content_sha256}); another operator runs\n"
        f"  tieout approve {req.request_id} --hash {req.content_sha256} --totp CODE"
    )


def guarded(command: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command's callback with its rule: writing commands need, in operator mode, a live
    session of an operator whose role the command allows; sensitive ones a fresh TOTP code (the
    wrapper adds --totp unless the command has it); four-eyes ones only record a request. Read
    commands and self-managed ones are returned as they are."""
    sig = inspect.signature(callback, eval_str=True)
    params = sig.parameters
    rule = operators.rule(command, has_actor="actor" in params)
    if getattr(callback, "__tieout_guarded__", False):
        return callback
    if command in operators.SELF_MANAGED or not rule.writes or "db" not in params:
        return callback
    inject = rule.sensitive and "totp" not in params
    if rule.four_eyes:
        FOUR_EYES_COMMANDS[command] = callback

    @functools.wraps(callback)
    def wrapper(**kwargs: Any) -> Any:
        totp: str | None = kwargs.pop("totp", None) if inject else kwargs.get("totp")
        if kwargs.get("dry_run") is True:  # `--dry-run` changes nothing: a read
            return callback(**kwargs)
        return _run_guarded(rule, callback, kwargs, totp)

    if inject:
        extra = inspect.Parameter(
            "totp", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TotpOpt
        )
        wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[*params.values(), extra]
        )
        wrapper.__annotations__ = {**callback.__annotations__, "totp": TotpOpt}
    wrapper.__tieout_guarded__ = True  # type: ignore[attr-defined]
    return wrapper


def guard_commands(app: typer.Typer, prefix: str = "") -> None:
    """Put every registered command of `app` (and of its sub-apps) behind `guarded`, by the
    command's path (`risk set`). Call once, after every register() and before running."""
    for info in app.registered_commands:
        if info.callback is None:
            continue
        name = info.name or info.callback.__name__.replace("_", "-")
        info.callback = guarded(f"{prefix}{name}", info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None and group.name:
            guard_commands(group.typer_instance, f"{prefix}{group.name} ")
