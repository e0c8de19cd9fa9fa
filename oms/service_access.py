"""Service accounts: non-interactive identities for unattended work (the scheduler, cron jobs).

- An admin adds one (`tieout user add-service NAME`, a sensitive action: fresh TOTP code). It has
  the `service` role (oms.operators.SERVICE: a short list of routine writing commands), no
  password, no TOTP secret, no sessions: `tieout login` refuses it like an unknown operator.
- It authenticates every command with a token: 256 random bits (secrets.token_urlsafe(32)) with
  a recognisable prefix (secret scanners, log filters). Only the token's SHA-256 is stored: a
  random 256-bit value cannot be guessed from its hash, so a slow password hash (argon2) would
  add nothing but cost on every command, and the plain digest lets the database find the token
  by a unique index (as for session tokens).
- A token does not expire (there is nobody to log in again at 3 a.m.); it is revoked by rotating
  it (`tieout user rotate-token`) or disabling the account (`tieout user disable`).
- A refused token (unknown, rotated out, of a disabled account, or not allowed the command) is
  audited like a failed login (`auth.failed`, `access.denied`), with the reason and never the
  token: an unknown one is named by the first 12 hex digits of its SHA-256 only.
- What a service account does is audited with its name as the actor.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Row, select

from oms import audit, operators
from oms.book import Ctx
from oms.errors import AlreadyExists, NotFound, Refused
from oms.operators import Rule
from oms.schema import operators as operators_table
from oms.service_schema import service_accounts, service_tokens
from oms.store import Store, next_id
from oms.values import utc_iso

TOKEN_PREFIX: Final = "tieout-svc-"  # noqa: S105 (a prefix, not a token)
UNKNOWN_ACTOR: Final = "unknown-service-token"


def new_token() -> str:
    """A new service token: the prefix and 256 random bits (URL-safe base64)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    name: str
    role: str
    active: bool
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    disabled_by: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "user": self.name,
            "role": self.role,
            "kind": "service",
            "active": self.active,
            "created_at": utc_iso(self.created_at),
            "created_by": self.created_by,
            "disabled_at": utc_iso(self.disabled_at) if self.disabled_at else None,
            "disabled_by": self.disabled_by,
        }


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    """Who acts when a command runs with a service token (what a session is for an operator)."""

    operator: str  # the service account's name: the actor of what the command does
    role: str
    token_id: int
    client: str


def _account(row: Any) -> ServiceAccount:
    return ServiceAccount(
        row.name,
        row.role,
        bool(row.active),
        row.created_at,
        row.created_by,
        row.disabled_at,
        row.disabled_by,
    )


def _row(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(service_accounts).where(service_accounts.c.name == name)).first()


def is_service_account(conn: Connection, name: str) -> bool:
    return _row(conn, name) is not None


def get_service_account(conn: Connection, name: str) -> ServiceAccount:
    row = _row(conn, name)
    if row is None:
        raise NotFound("service account", name)
    return _account(row)


def list_service_accounts(conn: Connection) -> list[ServiceAccount]:
    q = select(service_accounts).order_by(service_accounts.c.name)
    return [_account(r) for r in conn.execute(q)]


def _insert_token(conn: Connection, ctx: Ctx, name: str, token: str) -> int:
    token_id = next_id(conn, service_tokens, "token_id")
    conn.execute(
        service_tokens.insert().values(
            token_id=token_id,
            account=name,
            token_sha256=operators.token_hash(token),
            created_at=ctx.now,
            created_by=ctx.actor,
            last_used_at=None,
            revoked_at=None,
            revoked_by=None,
            revoke_reason=None,
        )
    )
    return token_id


def _check_token(token: str) -> None:
    if not token.startswith(TOKEN_PREFIX) or len(token) < len(TOKEN_PREFIX) + 43:
        raise ValueError("not a token made by new_token()")


def add_service_account(
    store: Store, ctx: Ctx, name: str, token: str
) -> tuple[ServiceAccount, int]:
    """Add a service account (role `service`) with its first token (stored hashed); returns it
    and the token's id. Only in operator mode: in local mode every command acts already."""
    name = operators.parse_operator_name(name)
    _check_token(token)
    with store.write() as conn:
        if conn.execute(select(operators_table.c.name).limit(1)).first() is None:
            raise Refused(
                f"add service account {name}",
                "there are no operator accounts: in local mode jobs act as their TIEOUT_ACTOR; "
                "service accounts are for operator mode (`tieout user add NAME --role admin`)",
                "local_mode",
            )
        taken = conn.execute(
            select(operators_table.c.name).where(operators_table.c.name == name)
        ).first()
        if taken is not None or _row(conn, name) is not None:
            raise AlreadyExists("operator or service account", name)
        conn.execute(
            service_accounts.insert().values(
                name=name,
                role=operators.SERVICE,
                active=True,
                created_at=ctx.now,
                created_by=ctx.actor,
                disabled_at=None,
                disabled_by=None,
            )
        )
        token_id = _insert_token(conn, ctx, name, token)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="service_account.add",
            entity_type="service_account",
            entity_id=name,
            payload={"user": name, "role": operators.SERVICE, "token_id": token_id},
        )
        return get_service_account(conn, name), token_id


def _revoke_tokens(conn: Connection, ctx: Ctx, name: str, reason: str) -> list[int]:
    t = service_tokens.c
    live = [
        int(i)
        for i in conn.execute(
            select(t.token_id)
            .where(t.account == name, t.revoked_at.is_(None))
            .order_by(t.token_id)  # audited as a list: the same order every time
        ).scalars()
    ]
    if live:
        conn.execute(
            service_tokens.update()
            .where(t.token_id.in_(live))
            .values(revoked_at=ctx.now, revoked_by=ctx.actor, revoke_reason=reason)
        )
    return live


def rotate_token(store: Store, ctx: Ctx, name: str, token: str) -> tuple[int, list[int]]:
    """Give a service account a new token and revoke its previous ones, in one transaction
    (audited); returns the new token's id and the revoked ones'. A disabled account stays so."""
    _check_token(token)
    with store.write() as conn:
        account = get_service_account(conn, name)
        if not account.active:
            raise Refused(
                f"rotate the token of {name}",
                f"service account {name} is disabled; add a new one",
                "disabled",
            )
        revoked = _revoke_tokens(conn, ctx, name, "rotated")
        token_id = _insert_token(conn, ctx, name, token)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="service_account.rotate_token",
            entity_type="service_account",
            entity_id=name,
            payload={"user": name, "token_id": token_id, "revoked_token_ids": revoked},
        )
        return token_id, revoked


def disable_service_account(store: Store, ctx: Ctx, name: str) -> ServiceAccount:
    """Disable a service account and revoke its tokens (audited): its next command is refused."""
    with store.write() as conn:
        account = get_service_account(conn, name)
        revoked = _revoke_tokens(conn, ctx, name, "disabled")
        if account.active:
            conn.execute(
                service_accounts.update()
                .where(service_accounts.c.name == name)
                .values(active=False, disabled_at=ctx.now, disabled_by=ctx.actor)
            )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="service_account.disable",
            entity_type="service_account",
            entity_id=name,
            payload={"user": name, "revoked_token_ids": revoked},
        )
        return get_service_account(conn, name)


def authenticate(
    store: Store, now: datetime, token: str, rule: Rule, client: str
) -> ServiceIdentity:
    """The service account behind a token, allowed to run `rule`'s command. Every refusal is
    recorded (committed) before it is raised; the token itself is never recorded."""
    action = rule.command
    digest = operators.token_hash(token.strip())
    refusal: Refused | None = None
    identity: ServiceIdentity | None = None
    with store.write() as conn:
        t = service_tokens.c
        found = conn.execute(
            select(service_tokens, service_accounts.c.role, service_accounts.c.active)
            .join_from(service_tokens, service_accounts, service_accounts.c.name == t.account)
            .where(t.token_sha256 == digest)
        ).first()
        reason: str | None = None
        if found is None:
            reason = "unknown_token"
        elif not found.active:
            reason = "disabled"
        elif found.revoked_at is not None:
            reason = f"token_{found.revoke_reason or 'revoked'}"
        if found is None or reason is not None:
            name = UNKNOWN_ACTOR if found is None else str(found.account)
            audit.append(
                conn,
                at=now,
                actor=name,
                action="auth.failed",
                entity_type="service_account",
                entity_id=name,
                payload={
                    "reason": reason,
                    "command": action,
                    "client": client,
                    "token_id": None if found is None else int(found.token_id),
                    "token_sha256_prefix": digest[:12] if found is None else None,
                },
            )
            refusal = Refused(
                action,
                "the service token is unknown, revoked or of a disabled service account "
                "(an admin issues a new one: `tieout user rotate-token NAME`)",
                "auth_failed",
            )
        elif rule.writes and (rule.sensitive or not rule.allows(found.role)):
            # sensitive commands take a fresh TOTP code, which a service account has not
            audit.append(
                conn,
                at=now,
                actor=found.account,
                action="access.denied",
                entity_type="service_account",
                entity_id=found.account,
                payload={"command": action, "role": found.role, "token_id": int(found.token_id)},
            )
            allowed = ", ".join(sorted(rule.roles | {operators.ADMIN}))
            refusal = Refused(
                action,
                f"{found.account} is a service account ({found.role}); this command needs "
                f"{allowed}" + (" and a fresh TOTP code" if rule.sensitive else ""),
                "permission",
            )
        else:
            conn.execute(
                service_tokens.update().where(t.token_id == found.token_id).values(last_used_at=now)
            )
            identity = ServiceIdentity(found.account, found.role, int(found.token_id), client)
    if refusal is not None:
        raise refusal
    assert identity is not None
    return identity
