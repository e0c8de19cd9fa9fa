"""Operators and access control: the shell that reads and writes operators, sessions, withdrawal
destinations and approval requests (the rules are in oms.operators).

Refusals that must leave a trace (a wrong password or TOTP code, a permission denied, a
withdrawal to a destination that is not whitelisted) are recorded in a transaction that commits,
and only then raised: the audit trail keeps them, without any secret.

TOTP secrets are stored encrypted (oms.secret_key: AES-GCM, the operator's name as associated
data, the key outside the database). A missing or wrong key (exit 3) or a stored secret that does
not decrypt (altered, or copied from another operator's row: exit 7) is refused before anything is
written, and before the password is checked, so that the answer says nothing about the password.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Row, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from oms import audit, book, operators, risk_limits, secret_key, service_access
from oms.book import Ctx
from oms.errors import AlreadyExists, BadInput, NotFound, Refused, VerificationFailed
from oms.operators import Rule, SessionState, TotpCheck
from oms.schema import approval_requests, destinations, op_sessions, settings
from oms.schema import operators as operators_table
from oms.secret_key import Keyring
from oms.store import Store, book_schema, next_id
from oms.values import dec_str, utc_iso

# OWASP's argon2id parameters (19 MiB, 2 passes, 1 lane): about 0.1 s per hash. Hashes made with
# other parameters are re-hashed with these at the next successful login.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class BoundStore(Store):
    """A store whose transactions are the caller's open one: runs store-level commands (which
    open `store.write()` themselves) inside an enclosing transaction, all or nothing."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn.engine)
        self._conn = conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        yield self._conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        yield self._conn


# ---- operators ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: str
    active: bool
    locked_until: datetime | None
    created_at: datetime
    created_by: str

    def as_json(self) -> dict[str, Any]:
        return {
            "user": self.name,
            "role": self.role,
            "active": self.active,
            "locked_until": utc_iso(self.locked_until) if self.locked_until else None,
            "created_at": utc_iso(self.created_at),
            "created_by": self.created_by,
        }


def _operator(row: Any) -> Operator:
    return Operator(
        row.name, row.role, bool(row.active), row.locked_until, row.created_at, row.created_by
    )


def operator_mode(store: Store) -> bool | None:
    """Whether tieout runs with operator accounts; None for a database without tieout's schema
    (missing, or before 0006: the command then refuses it), never creating a missing SQLite
    file. Any other failure is raised, never taken for local mode."""
    if store.dialect == "sqlite":
        db = store.engine.url.database
        if db and db != ":memory:" and not Path(db).exists():
            return None
    try:
        with store.read() as conn:
            return conn.execute(select(operators_table.c.name).limit(1)).first() is not None
    except (OperationalError, ProgrammingError) as exc:
        orig = exc.orig
        if type(orig).__name__ == "UndefinedTable" or "no such table" in str(orig):
            return None
        raise


def operators_exist(store: Store) -> bool:
    return operator_mode(store) is True


def _row(conn: Connection, name: str) -> Row[Any] | None:
    t = operators_table.c
    return conn.execute(select(operators_table).where(t.name == name)).first()


def get_operator(conn: Connection, name: str) -> Operator:
    row = _row(conn, name)
    if row is None:
        raise NotFound("operator", name)
    return _operator(row)


def list_operators(conn: Connection) -> list[Operator]:
    t = operators_table.c
    return [_operator(r) for r in conn.execute(select(operators_table).order_by(t.name))]


def keyring_for(store: Store) -> Keyring:
    """The key of the store's TOTP secrets (exit 3 when there is none)."""
    return secret_key.require(store.engine.url)


def _keyring_to_add(
    conn: Connection, store: Store, now: datetime, first: bool, given: Keyring | None
) -> Keyring:
    """The key a new operator's secret is encrypted with: the first operator creates it when
    there is none; later ones need the very key the other secrets were encrypted with."""
    if given is not None:
        keyring = given
    elif first:
        keyring, _ = secret_key.load_or_create(store.engine.url, now)
    else:
        keyring = secret_key.require(store.engine.url)
    for name, stored in conn.execute(
        select(operators_table.c.name, operators_table.c.totp_secret).order_by(
            operators_table.c.name
        )  # a key that fails names the same operator every time
    ):
        keyring.check(stored, name)
    return keyring


def add_operator(
    store: Store,
    ctx: Ctx,
    name: str,
    role: str,
    password: str,
    keyring: Keyring | None = None,
) -> tuple[Operator, str]:
    """Add an operator with a new TOTP secret (stored encrypted); returns it and the otpauth://
    URI to enrol. The first operator must be an admin (it ends local mode); adding it creates the
    TOTP key when there is none."""
    name = operators.parse_operator_name(name)
    role = operators.parse_role(role)
    digest = HASHER.hash(operators.check_password(password))
    secret = pyotp.random_base32()
    with store.write() as conn:
        first = conn.execute(select(operators_table.c.name).limit(1)).first() is None
        if first and role != operators.ADMIN:
            raise Refused(
                f"add operator {name}",
                "the first operator must be an admin (--role admin): it administers the others",
                "first_operator_admin",
            )
        if _row(conn, name) is not None or service_access.is_service_account(conn, name):
            raise AlreadyExists("operator or service account", name)
        keys = _keyring_to_add(conn, store, ctx.now, first, keyring)
        conn.execute(
            operators_table.insert().values(
                name=name,
                role=role,
                password_hash=digest,
                totp_secret=keys.encrypt(secret, name),
                last_totp_step=None,
                failed_attempts=0,
                locked_until=None,
                active=True,
                created_at=ctx.now,
                created_by=ctx.actor,
                updated_at=ctx.now,
            )
        )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="operator.add",
            entity_type="operator",
            entity_id=name,
            payload={
                "user": name,
                "role": role,
                "first_operator": first,
                "totp_key_id": keys.current_id,
            },
        )
        return get_operator(conn, name), operators.totp_uri(secret, name)


def rotate_key(store: Store, ctx: Ctx) -> dict[str, Any]:
    """Encrypt every operator's TOTP secret with a new key, in one transaction (audited). The
    key file is first rewritten with the new key and the old ones (so that whatever happens, it
    decrypts every stored secret), and after the commit with the new key alone; the old keys go
    to `<key file>.<old id>.retired` (mode 0600): backups made before need them, keep that file
    with them (or destroy it with them). A key given by TIEOUT_SECRET_KEY is not rotated here."""
    url = store.engine.url
    path = secret_key.key_path(url)
    if path is None:
        raise Refused(
            "rotate the TOTP key",
            f"the key comes from {secret_key.ENV_KEY}: put the new key first in it (NEW,OLD), "
            "run `tieout user rotate-key --reencrypt-only`, then drop OLD",
            "key_in_environment",
        )
    old = secret_key.require(url)
    new = secret_key.new_key()
    new_id = secret_key.key_id(new)
    both = Keyring(((new_id, new), *old.keys), str(path))
    with store.write() as conn:
        rows = conn.execute(
            select(operators_table.c.name, operators_table.c.totp_secret).order_by(
                operators_table.c.name
            )
        ).all()
        clear = [(name, old.decrypt(stored, name)) for name, stored in rows]
        secret_key.save(path, both.keys, ctx.now)
        _reencrypt(conn, ctx, both, clear, old.ids, str(path))
    retired = path.with_name(f"{path.name}.{old.current_id}.retired")
    secret_key.save(retired, old.keys, ctx.now)
    secret_key.save(path, both.keys[:1], ctx.now)
    return {
        "key_id": new_id,
        "previous_key_ids": list(old.ids),
        "operators": len(clear),
        "key_file": str(path),
        "retired_key_file": str(retired),
    }


def reencrypt(store: Store, ctx: Ctx) -> dict[str, Any]:
    """Encrypt every TOTP secret with the keyring's first key (after a key was put first in
    TIEOUT_SECRET_KEY or in the key file by hand), in one transaction (audited)."""
    keys = keyring_for(store)
    with store.write() as conn:
        rows = conn.execute(
            select(operators_table.c.name, operators_table.c.totp_secret).order_by(
                operators_table.c.name
            )
        ).all()
        clear = [(name, keys.decrypt(stored, name)) for name, stored in rows]
        _reencrypt(conn, ctx, keys, clear, keys.ids, keys.source)
    return {
        "key_id": keys.current_id,
        "previous_key_ids": list(keys.ids),
        "operators": len(clear),
        "key_file": keys.source,
        "retired_key_file": None,
    }


def _reencrypt(
    conn: Connection,
    ctx: Ctx,
    keys: Keyring,
    clear: list[tuple[str, str]],
    previous: tuple[str, ...],
    source: str,
) -> None:
    t = operators_table.c
    for name, secret in clear:
        conn.execute(
            operators_table.update()
            .where(t.name == name)
            .values(totp_secret=keys.encrypt(secret, name), updated_at=ctx.now)
        )
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action="secret_key.rotate",
        entity_type="secret_key",
        entity_id=keys.current_id,
        payload={
            "key_id": keys.current_id,
            "previous_key_ids": list(previous),
            "operators": [name for name, _ in clear],
            "key_source": source,
        },
    )


def disable_operator(store: Store, ctx: Ctx, name: str) -> Operator:
    """Disable an operator and end their sessions; the last active admin stays."""
    with store.write() as conn:
        op = get_operator(conn, name)
        t = operators_table.c
        if op.role == operators.ADMIN:
            admins = conn.execute(
                select(t.name).where(t.role == operators.ADMIN, t.active.is_(True))
            ).all()
            if len(admins) <= 1:
                raise Refused(
                    f"disable operator {name}", "it is the last active admin", "last_admin"
                )
        conn.execute(
            operators_table.update().where(t.name == name).values(active=False, updated_at=ctx.now)
        )
        s = op_sessions.c
        conn.execute(
            op_sessions.update()
            .where(s.operator == name, s.ended_at.is_(None))
            .values(ended_at=ctx.now, end_reason="disabled", ended_by=ctx.actor)
        )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="operator.disable",
            entity_type="operator",
            entity_id=name,
            payload={"user": name},
        )
        return get_operator(conn, name)


def _record_tampered_secret(store: Store, now: datetime, name: str, client: str) -> None:
    """A stored TOTP secret that does not decrypt with the right key was altered, moved from
    another operator or put back in clear: audit it (a security event; no failure counted, no
    lockout: the operator did nothing wrong), then the login is refused."""
    with store.write() as conn:
        audit.append(
            conn,
            at=now,
            actor=name[:64],
            action="auth.secret_tampered",
            entity_type="operator",
            entity_id=name[:200],
            payload={"command": "login", "client": client},
        )


def _record_failure(
    conn: Connection, now: datetime, name: str, row: Any, reason: str, command: str, client: str
) -> datetime | None:
    """Count a failed password or code against the operator and audit it (no secret)."""
    locked_until = None
    if row is not None and reason != "locked":
        count, locked_until = operators.after_failure(row.failed_attempts, now)
        values: dict[str, Any] = {"failed_attempts": count, "updated_at": now}
        if locked_until is not None:
            values["locked_until"] = locked_until
        conn.execute(
            operators_table.update().where(operators_table.c.name == row.name).values(**values)
        )
    audit.append(
        conn,
        at=now,
        actor=name[:64],
        action="auth.failed",
        entity_type="operator",
        entity_id=name[:200],
        payload={
            "reason": reason,
            "command": command,
            "client": client,
            "locked_until": locked_until,
        },
    )
    return locked_until


def _locked_refusal(action: str, name: str, until: datetime) -> Refused:
    return Refused(
        action,
        f"operator {name} is locked until {utc_iso(until)} after {operators.MAX_FAILURES} failed "
        "attempts",
        "locked",
    )


# ---- sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    session_id: int
    operator: str
    role: str
    client: str
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    end_reason: str | None

    def state(self, now: datetime) -> SessionState:
        return operators.session_state(self.created_at, self.last_seen_at, self.ended_at, now)

    def expires_at(self) -> datetime:
        return operators.session_expires_at(self.created_at, self.last_seen_at)

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "user": self.operator,
            "role": self.role,
            "client": self.client,
            "started_at": utc_iso(self.created_at),
            "last_seen_at": utc_iso(self.last_seen_at),
            "expires_at": utc_iso(self.expires_at()),
            "state": self.state(now).value,
            "ended_at": utc_iso(self.ended_at) if self.ended_at else None,
            "end_reason": self.end_reason,
        }


def _session_query() -> Any:
    s = op_sessions.c
    return select(
        s.session_id,
        s.operator,
        operators_table.c.role,
        s.client,
        s.created_at,
        s.last_seen_at,
        s.ended_at,
        s.end_reason,
    ).join(operators_table, operators_table.c.name == s.operator)


def _session(row: Any) -> Session:
    return Session(*row)


def session_for_token(conn: Connection, token: str) -> Session | None:
    q = _session_query().where(op_sessions.c.token_sha256 == operators.token_hash(token))
    row = conn.execute(q).first()
    return None if row is None else _session(row)


def list_sessions(
    conn: Connection, now: datetime, operator: str | None = None, *, include_ended: bool = False
) -> list[Session]:
    q = _session_query().order_by(op_sessions.c.session_id)
    if operator is not None:
        q = q.where(op_sessions.c.operator == operator)
    found = [_session(r) for r in conn.execute(q)]
    if include_ended:
        return found
    return [x for x in found if x.state(now) is SessionState.ACTIVE]


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    session: Session
    others: list[Session]  # the operator's other live sessions


def login(
    store: Store,
    now: datetime,
    name: str,
    password: str,
    code: str,
    client: str,
    keyring: Keyring | None = None,
) -> LoginResult:
    """Check the password and a TOTP code (not used before), open a session. Every refusal is
    counted, audited and worded the same, whatever was wrong. A missing or wrong TOTP key, or a
    stored secret that does not decrypt, is refused first, with nothing written."""
    keys = keyring if keyring is not None else keyring_for(store)
    name = operators.parse_operator_name(name)  # no other text reaches the audit trail
    with store.read() as conn:
        row = _row(conn, name)
    if row is not None:
        try:
            keys.decrypt(row.totp_secret, row.name)
        except VerificationFailed:
            _record_tampered_secret(store, now, row.name, client)
            raise
    reason: str | None = None
    if row is None:
        with store.read() as conn:
            service = service_access.is_service_account(conn, name)
        reason = "service_account" if service else "unknown_operator"
        _verify_nothing(password)  # as long as a known name's check: the time tells nothing
    elif not row.active:
        reason = "disabled"
        _verify_nothing(password)
    elif operators.locked(row.locked_until, now):
        reason = "locked"
        _verify_nothing(password)
    else:
        try:
            HASHER.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            reason = "password"
    locked_until: datetime | None = None
    result: LoginResult | None = None
    checked = None if row is None else row.password_hash
    with store.write() as conn:
        # again, under the book lock: the TOTP step may have moved, and logins running at the
        # same time may have locked the operator (each counted its failure) or it was disabled
        row = _row(conn, name)
        if reason is None and row is not None:
            if not row.active:
                reason = "disabled"
            elif operators.locked(row.locked_until, now):
                reason = "locked"
            elif row.password_hash != checked:
                reason = "password"  # changed since it was checked: check the new one next time
        if reason is None and row is not None:
            secret = keys.decrypt(row.totp_secret, row.name)
            check = operators.check_totp(secret, code, now, row.last_totp_step)
            if check.check is TotpCheck.OK:
                result = _open_session(conn, now, row, password, check.step, client)
            else:
                reason = "totp_replayed" if check.check is TotpCheck.REPLAYED else "totp"
        if reason is not None:
            locked_until = _record_failure(conn, now, name, row, reason, "login", client)
    if result is not None:
        return result
    if reason == "locked" and row is not None:
        raise _locked_refusal(f"login {name}", name, row.locked_until)
    if locked_until is not None:
        raise _locked_refusal(f"login {name}", name, locked_until)
    raise Refused(
        f"login {name}",
        "wrong name, password or TOTP code (a code can be used only once: wait for the next one)",
        "auth_failed",
    )


# the hash of a random password nobody knows, made with HASHER's parameters (a test holds them
# equal): checking a password against it costs what checking a real one does, and making it
# each run would cost a hash more than a known name's check
NOBODY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$0x3MozU4aOEcTzPhmVBIjw$SxJWescHwz3z5fNNjtzTU0GofQvVhcX6F2mI8+MrpOw"  # noqa: E501  # fmt: skip


def _verify_nothing(password: str) -> None:
    with contextlib.suppress(VerificationError, InvalidHashError):
        HASHER.verify(NOBODY_HASH, password)


def _open_session(
    conn: Connection, now: datetime, row: Any, password: str, step: int | None, client: str
) -> LoginResult:
    values: dict[str, Any] = {
        "last_totp_step": step,
        "failed_attempts": 0,
        "locked_until": None,
        "updated_at": now,
    }
    if HASHER.check_needs_rehash(row.password_hash):
        values["password_hash"] = HASHER.hash(password)
    conn.execute(
        operators_table.update().where(operators_table.c.name == row.name).values(**values)
    )
    others = list_sessions(conn, now, row.name)
    token = secrets.token_urlsafe(32)
    session_id = next_id(conn, op_sessions, "session_id")
    conn.execute(
        op_sessions.insert().values(
            session_id=session_id,
            token_sha256=operators.token_hash(token),
            operator=row.name,
            client=client[:200],
            created_at=now,
            last_seen_at=now,
            ended_at=None,
            end_reason=None,
            ended_by=None,
        )
    )
    audit.append(
        conn,
        at=now,
        actor=row.name,
        action="session.login",
        entity_type="session",
        entity_id=str(session_id),
        payload={
            "user": row.name,
            "client": client,
            "other_sessions": [o.session_id for o in others],
        },
    )
    q = _session_query().where(op_sessions.c.session_id == session_id)
    return LoginResult(token, _session(conn.execute(q).one()), others)


def _end_session(conn: Connection, now: datetime, session: Session, reason: str, by: str) -> None:
    conn.execute(
        op_sessions.update()
        .where(op_sessions.c.session_id == session.session_id, op_sessions.c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason, ended_by=by)
    )
    audit.append(
        conn,
        at=now,
        actor=by,
        action=f"session.{reason}",
        entity_type="session",
        entity_id=str(session.session_id),
        payload={"user": session.operator, "client": session.client},
    )


_ENDED_WHY = {
    SessionState.IDLE: (
        "idle",
        f"it expired after {int(operators.IDLE_TIMEOUT.total_seconds() // 60)} minutes idle",
    ),
    SessionState.EXPIRED: (
        "expired",
        f"it expired {int(operators.ABSOLUTE_TIMEOUT.total_seconds() // 3600)} hours after login",
    ),
}


def authenticate(
    store: Store,
    now: datetime,
    token: str | None,
    rule: Rule,
    totp: str | None = None,
    keyring: Keyring | None = None,
) -> Session:
    """The session behind a token, allowed to run `rule`'s command: alive (touched now), its
    operator active and holding a role the command allows, and for a sensitive command a fresh
    TOTP code. A refusal that matters (expiry, permission, wrong code) is recorded first."""
    action = rule.command
    if token is None:
        raise Refused(
            action, "operator accounts exist: log in first (`tieout login NAME`)", "not_logged_in"
        )
    refusal: Refused | None = None
    with store.write() as conn:
        session = session_for_token(conn, token)
        if session is None:
            raise Refused(action, "your session is unknown here: log in again", "not_logged_in")
        state = session.state(now)
        row = _row(conn, session.operator)
        if state is SessionState.ENDED:
            refusal = Refused(
                action,
                f"your session was ended ({session.end_reason}): log in again",
                "session_ended",
            )
        elif state is not SessionState.ACTIVE:
            reason, why = _ENDED_WHY[state]
            _end_session(conn, now, session, reason, session.operator)
            refusal = Refused(action, f"your session ended: {why}; log in again", "session_expired")
        elif row is None or not row.active:
            refusal = Refused(action, f"operator {session.operator} is disabled", "disabled")
        elif not rule.allows(session.role):
            audit.append(
                conn,
                at=now,
                actor=session.operator,
                action="access.denied",
                entity_type="operator",
                entity_id=session.operator,
                payload={"command": rule.command, "role": session.role},
            )
            allowed = ", ".join(sorted(rule.roles | {operators.ADMIN}))
            refusal = Refused(
                action,
                f"{session.operator} is {session.role}; this command needs {allowed}",
                "permission",
            )
        elif rule.sensitive:
            refusal = _fresh_totp(conn, now, session, row, totp, rule.command, store, keyring)
        if refusal is None:
            conn.execute(
                op_sessions.update()
                .where(op_sessions.c.session_id == session.session_id)
                .values(last_seen_at=now)
            )
    if refusal is not None:
        raise refusal
    return Session(
        session.session_id,
        session.operator,
        session.role,
        session.client,
        session.created_at,
        now,
        None,
        None,
    )


def _fresh_totp(
    conn: Connection,
    now: datetime,
    session: Session,
    row: Any,
    code: str | None,
    command: str,
    store: Store,
    keyring: Keyring | None,
) -> Refused | None:
    action = command
    if operators.locked(row.locked_until, now):
        return _locked_refusal(action, row.name, row.locked_until)
    if code is None:
        return Refused(
            action, "a sensitive action: give a fresh TOTP code (--totp CODE)", "totp_required"
        )
    keys = keyring if keyring is not None else keyring_for(store)
    secret = keys.decrypt(row.totp_secret, row.name)  # refused (rolled back) before any write
    check = operators.check_totp(secret, code, now, row.last_totp_step)
    if check.check is TotpCheck.OK:
        conn.execute(
            operators_table.update()
            .where(operators_table.c.name == row.name)
            .values(last_totp_step=check.step, failed_attempts=0, updated_at=now)
        )
        return None
    reason = "totp_replayed" if check.check is TotpCheck.REPLAYED else "totp"
    locked_until = _record_failure(conn, now, row.name, row, reason, command, session.client)
    if locked_until is not None:
        return _locked_refusal(action, row.name, locked_until)
    if check.check is TotpCheck.REPLAYED:
        return Refused(
            action, "this TOTP code was used already: wait for the next one", "totp_replayed"
        )
    return Refused(action, "wrong TOTP code", "totp")


def logout(store: Store, now: datetime, token: str) -> Session | None:
    """End the token's session; None when there was no live one."""
    with store.write() as conn:
        session = session_for_token(conn, token)
        if session is None or session.ended_at is not None:
            return None
        _end_session(conn, now, session, "logout", session.operator)
        return session


def revoke(store: Store, ctx: Ctx, session_id: int, by: Session) -> Session:
    """End a session: one's own, or anybody's for an admin."""
    with store.write() as conn:
        q = _session_query().where(op_sessions.c.session_id == session_id)
        row = conn.execute(q).first()
        if row is None:
            raise NotFound("session", str(session_id))
        target = _session(row)
        if target.operator != by.operator and by.role != operators.ADMIN:
            raise Refused(
                f"revoke session {session_id}",
                f"it is {target.operator}'s; only an admin revokes another operator's session",
                "permission",
            )
        if target.ended_at is not None:
            raise Refused(
                f"revoke session {session_id}", f"it ended already ({target.end_reason})", "ended"
            )
        _end_session(conn, ctx.now, target, "revoked", ctx.actor)
        return _session(conn.execute(q).one())


# ---- withdrawal destinations --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    destination_id: int
    account: str
    destination: str
    label: str | None
    added_at: datetime
    added_by: str
    removed_at: datetime | None
    removed_by: str | None

    @property
    def usable_from(self) -> datetime:
        return operators.destination_usable_at(self.added_at)

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "account": self.account,
            "destination": self.destination,
            "label": self.label,
            "added_at": utc_iso(self.added_at),
            "added_by": self.added_by,
            "usable_from": utc_iso(self.usable_from),
            "usable": self.removed_at is None and now >= self.usable_from,
            "removed_at": utc_iso(self.removed_at) if self.removed_at else None,
            "removed_by": self.removed_by,
        }


def _destination(row: Any) -> Destination:
    return Destination(*row)


def _active_destination(conn: Connection, account: str, dest: str) -> Destination | None:
    d = destinations.c
    row = conn.execute(
        select(destinations).where(
            d.account == account, d.destination == dest, d.removed_at.is_(None)
        )
    ).first()
    return None if row is None else _destination(row)


def list_destinations(
    conn: Connection, account: str, *, include_removed: bool = False
) -> list[Destination]:
    book.get_account(conn, account)
    d = destinations.c
    q = select(destinations).where(d.account == account).order_by(d.destination_id)
    if not include_removed:
        q = q.where(d.removed_at.is_(None))
    return [_destination(r) for r in conn.execute(q)]


def add_destination(
    store: Store, ctx: Ctx, account: str, dest: str, label: str | None
) -> tuple[Destination, bool]:
    """Whitelist a destination for an account's withdrawals, usable after the waiting period.
    Adding one that is whitelisted already changes nothing (created False)."""
    dest = operators.parse_destination(dest)
    with store.write() as conn:
        book.get_account(conn, account)
        existing = _active_destination(conn, account, dest)
        if existing is not None:
            return existing, False
        did = next_id(conn, destinations, "destination_id")
        conn.execute(
            destinations.insert().values(
                destination_id=did,
                account=account,
                destination=dest,
                label=label,
                added_at=ctx.now,
                added_by=ctx.actor,
                removed_at=None,
                removed_by=None,
            )
        )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="destination.add",
            entity_type="account",
            entity_id=account,
            payload={
                "destination": dest,
                "label": label,
                "usable_from": operators.destination_usable_at(ctx.now),
            },
        )
        found = _active_destination(conn, account, dest)
        assert found is not None
        return found, True


def remove_destination(store: Store, ctx: Ctx, account: str, dest: str) -> Destination:
    with store.write() as conn:
        book.get_account(conn, account)
        existing = _active_destination(conn, account, dest.strip())
        if existing is None:
            raise NotFound(f"withdrawal destination of {account}", dest)
        conn.execute(
            destinations.update()
            .where(destinations.c.destination_id == existing.destination_id)
            .values(removed_at=ctx.now, removed_by=ctx.actor)
        )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="destination.remove",
            entity_type="account",
            entity_id=account,
            payload={"destination": existing.destination, "added_at": existing.added_at},
        )
        row = conn.execute(
            select(destinations).where(destinations.c.destination_id == existing.destination_id)
        ).one()
        return _destination(row)


def withdraw(
    store: Store, ctx: Ctx, account: str, amount: Decimal, dest: str, ref: str | None = None
) -> book.CashMoved:
    """book.withdraw, only to a destination whitelisted for the account at least the waiting
    period ago, in the same transaction. A refused destination is audited."""
    dest = dest.strip()
    refusal: Refused | None = None
    with store.write() as conn:
        ctx = ctx.granted()  # (dated when the lock is held, as book.withdraw dates it)
        book.get_account(conn, account)
        found = _active_destination(conn, account, dest)
        if found is None:
            refusal = Refused(
                f"withdrawal to {dest!r} from {account}",
                f"{dest!r} is not a whitelisted destination of {account} "
                f"(`tieout destination add {account} DEST` first)",
                "destination_not_whitelisted",
            )
        elif ctx.now < found.usable_from:
            refusal = Refused(
                f"withdrawal to {dest!r} from {account}",
                f"{dest!r} was added at {utc_iso(found.added_at)}; it can be used from "
                f"{utc_iso(found.usable_from)}",
                "destination_too_new",
            )
        if refusal is None:
            return book.withdraw(BoundStore(conn), ctx, account, amount, dest, ref)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="cash.withdraw_refused",
            entity_type="account",
            entity_id=account,
            payload={"amount": dec_str(amount), "destination": dest, "reason": refusal.code},
        )
    raise refusal


# ---- approval requests (four eyes) --------------------------------------------------------------

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


def _setting_state(conn: Connection, key: str) -> dict[str, Any]:
    """The setting as it stands, with when and by whom it was last written: a release asked
    for one engagement of a kill switch is stale once the switch was released and engaged
    again (the same value, a later write)."""
    s = settings.c
    row = conn.execute(select(s.value, s.updated_at, s.updated_by).where(s.key == key)).first()
    if row is None:
        return {"setting": key, "value": None}
    return {
        "setting": key,
        "value": str(row.value),
        "updated_at": utc_iso(row.updated_at),
        "updated_by": row.updated_by,
    }


def current_state(conn: Connection, action: str, args: Mapping[str, Any]) -> Any:
    """The state a request changes, as it is now: an approval is refused once it moved."""
    if action == "risk set":
        # the setting as stored: a request for max-notional.usd changes max-notional.USD
        name = risk_limits.canonical_name(str(args.get("name")))
        return _setting_state(conn, risk_limits.PREFIX + name)
    if action == "risk release":
        account = args.get("account")
        if account is None:
            return _setting_state(conn, risk_limits.KILL_GLOBAL)
        return _setting_state(conn, f"{risk_limits.PREFIX}kill.account.{account}")
    return None


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    request_id: int
    action: str
    content: dict[str, Any]
    content_sha256: str
    status: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.content["args"])

    def as_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "action": self.action,
            "args": self.content["args"],
            "before": self.content["before"],
            "hash": self.content_sha256,
            "status": self.status,
            "requested_by": self.requested_by,
            "requested_at": utc_iso(self.requested_at),
            "expires_at": utc_iso(self.expires_at),
            "decided_by": self.decided_by,
            "decided_at": utc_iso(self.decided_at) if self.decided_at else None,
        }


def _request(row: Any) -> ApprovalRequest:
    return ApprovalRequest(
        row.request_id,
        row.action,
        json.loads(row.content),
        row.content_sha256,
        row.status,
        row.requested_by,
        row.requested_at,
        row.expires_at,
        row.decided_by,
        row.decided_at,
    )


def get_request(conn: Connection, request_id: int) -> ApprovalRequest:
    row = conn.execute(
        select(approval_requests).where(approval_requests.c.request_id == request_id)
    ).first()
    if row is None:
        raise NotFound("approval request", str(request_id))
    return _request(row)


def list_requests(conn: Connection, status: str | None = PENDING) -> list[ApprovalRequest]:
    a = approval_requests.c
    q = select(approval_requests).order_by(a.request_id)
    if status is not None:
        q = q.where(a.status == status)
    return [_request(r) for r in conn.execute(q)]


def request_approval(
    store: Store, ctx: Ctx, action: str, args: Mapping[str, Any]
) -> ApprovalRequest:
    """Record what `action` with `args` would do, for a second operator to approve."""
    with store.write() as conn:
        content = operators.request_content(
            action, args, current_state(conn, action, args), ctx.actor, ctx.now
        )
        canonical = json.loads(audit.canonical_json(content))
        digest = operators.content_hash(canonical)
        rid = next_id(conn, approval_requests, "request_id")
        conn.execute(
            approval_requests.insert().values(
                request_id=rid,
                action=action,
                content=audit.canonical_json(canonical),
                content_sha256=digest,
                status=PENDING,
                requested_by=ctx.actor,
                requested_at=ctx.now,
                expires_at=ctx.now + operators.REQUEST_TTL,
                decided_by=None,
                decided_at=None,
            )
        )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="approval.request",
            entity_type="approval_request",
            entity_id=str(rid),
            payload={"request": canonical, "hash": digest},
        )
        return get_request(conn, rid)


def _decision_refused(
    conn: Connection,
    ctx: Ctx,
    req: ApprovalRequest,
    approve: bool,
    expected_hash: str | None,
    role: str,
) -> Refused | None:
    """Why this operator may not approve (or reject) the request now; None if they may."""
    request_id = req.request_id
    verb = "approve" if approve else "reject"
    what = f"{verb} request {request_id}"
    if req.status != PENDING:
        return Refused(what, f"it was {req.status} by {req.decided_by}", "not_pending")
    if ctx.now >= req.expires_at:
        expired = f"it expired at {utc_iso(req.expires_at)}; request it again"
        return Refused(what, expired, "expired")
    if approve and req.requested_by == ctx.actor:
        return Refused(
            what, f"{ctx.actor} asked for it; another operator must approve it", "four_eyes"
        )
    if approve:
        requester = _row(conn, req.requested_by)
        if requester is not None and not requester.active:  # (disabled since they asked)
            return Refused(
                what,
                f"{req.requested_by}, who asked for it, is disabled: what a disabled operator "
                "asked for is not carried out; request it again yourself if it is still wanted",
                "requester_disabled",
            )
    if not operators.rule(req.action, has_actor=True).allows(role):
        return Refused(what, f"a {role} cannot run `tieout {req.action}`", "permission")
    if operators.content_hash(req.content) != req.content_sha256:
        return Refused(what, "its stored content does not match its hash", "request_tampered")
    if expected_hash is not None and expected_hash.strip().lower() != req.content_sha256:
        return Refused(
            what,
            f"the request's hash is {req.content_sha256}, not {expected_hash.strip()}: this "
            "approval is for something else",
            "hash_mismatch",
        )
    if approve and _moved(current_state(conn, req.action, req.args), req.content["before"]):
        return Refused(
            what,
            "what it changes has changed since it was requested; request it again",
            "request_changed",
        )
    return None


def _moved(now: Any, before: Any) -> bool:
    """Whether the state a request changes moved since it was requested. A request made
    before tieout recorded when and by whom a setting was written holds its value only: that
    is compared (its approval was refused for ever as "changed since")."""
    if isinstance(now, dict) and isinstance(before, dict):
        return any(now.get(k) != v for k, v in before.items())
    return bool(now != before)


def decide(
    conn: Connection,
    ctx: Ctx,
    request_id: int,
    *,
    approve: bool,
    expected_hash: str | None,
    role: str,
) -> ApprovalRequest | Refused:
    """Approve or reject a pending request inside the caller's transaction (which then carries
    out an approved one). Approving takes another operator than the requester, with a role the
    requested command allows, the very content requested (its hash) and an unchanged state.
    A refusal is recorded (approval.refused, with its reason code) and returned, not raised:
    the caller commits it, then raises it, so that an attempt to approve one's own request,
    or a stale or tampered one, stays in the audit trail."""
    req = get_request(conn, request_id)
    refusal = _decision_refused(conn, ctx, req, approve, expected_hash, role)
    if refusal is not None:
        decision = {"decision": "approve" if approve else "reject", "reason": refusal.code}
        _audit_decision(conn, ctx, req, "refused", decision)
        return refusal
    status = APPROVED if approve else REJECTED
    conn.execute(
        approval_requests.update()
        .where(approval_requests.c.request_id == request_id)
        .values(status=status, decided_by=ctx.actor, decided_at=ctx.now)
    )
    _audit_decision(conn, ctx, req, status)
    return get_request(conn, request_id)


def _audit_decision(
    conn: Connection,
    ctx: Ctx,
    req: ApprovalRequest,
    outcome: str,
    more: Mapping[str, str] | None = None,
) -> None:
    """approval.approved, .rejected or .refused: who decided which request, and how."""
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action=f"approval.{outcome}",
        entity_type="approval_request",
        entity_id=str(req.request_id),
        payload={
            "action": req.action,
            "hash": req.content_sha256,
            "requested_by": req.requested_by,
            **(more or {}),
        },
    )


# ---- the database's application role (PostgreSQL) -----------------------------------------------

_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_app_role(store: Store, ctx: Ctx, role: str, password: str | None) -> dict[str, Any]:
    """Create (or update) a least-privilege role for the application on the current schema:
    SELECT and INSERT on every table, UPDATE and DELETE only where the table is not append-only,
    no TRUNCATE, no DDL. Append-only tables are those that carry tieout's append-only trigger."""
    if store.dialect != "postgresql":
        raise BadInput(
            "--db",
            "database roles and grants are a PostgreSQL feature; a SQLite database is protected "
            "by its file's permissions",
        )
    if not _ROLE_RE.match(role):
        raise BadInput("--role", f"{role!r} is not a role name (lower-case letters, digits, _)")
    from psycopg import sql

    with store.write() as conn:
        schema = book_schema(conn)
        tables = [
            str(t)
            for t in conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %(s)s "
                "AND table_type = 'BASE TABLE' ORDER BY table_name",
                {"s": schema},
            ).scalars()
        ]
        append_only = {
            str(t)
            for t in conn.exec_driver_sql(
                "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE p.proname = 'tieout_refuse_change' AND n.nspname = %(s)s",
                {"s": schema},
            ).scalars()
        }
        plan = operators.grant_plan(tables, append_only)
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": role}
        ).first()
        raw = conn.connection.driver_connection
        if raw is None:
            raise RuntimeError("no DBAPI connection")
        ident, sch = sql.Identifier(role), sql.Identifier(schema)
        statements: list[sql.Composable] = [
            sql.SQL("ALTER ROLE {} LOGIN" if exists else "CREATE ROLE {} LOGIN").format(ident)
        ]
        if password is not None:
            statements.append(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password))
            )
        statements += [
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(sch, ident),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sch, ident),
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sch, ident),
        ]
        for table, privileges in plan.items():
            statements.append(
                sql.SQL("GRANT {} ON {}.{} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges),
                    sch,
                    sql.Identifier(table),
                    ident,
                )
            )
        with raw.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        doc = {
            "role": role,
            "schema": schema,
            "created": exists is None,
            "password_set": password is not None,
            "tables": {t: list(p) for t, p in plan.items()},
            "append_only": sorted(append_only & set(tables)),
        }
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="db.grants",
            entity_type="database_role",
            entity_id=role,
            payload=doc,
        )
        return doc
