"""Operators and access control: the pure rules.

- Roles and the permission of each command: who may run which writing command (PERMISSIONS),
  which commands need a fresh TOTP code (SENSITIVE) and which need a second operator (FOUR_EYES).
  Read commands need no session and are open to every operator.
- Sessions: expired after 30 minutes idle or 12 hours after login, whichever comes first.
- TOTP (RFC 6238, 30-second steps, six digits): a code is accepted for the current step or one
  step either side, and only for a step after the last one the operator used (no replay).
- Failed logins and codes: after MAX_FAILURES in a row the operator is locked for LOCKOUT.
- Content hashing of approval requests, withdrawal destinations' waiting period.

Choices where the contract is silent:
- Local mode lasts until the first operator exists; that first operator must be an admin (added
  without a session, by whoever runs tieout on the database), every later one by an admin's
  session with a fresh TOTP code.
- The admin may run every command (four eyes still take two different operators).
- Once operators exist, an --actor naming someone other than the logged-in operator is refused;
  TIEOUT_ACTOR is ignored with a note.
- Approval requests expire after REQUEST_TTL; an approval is refused once what the request
  changes has changed since (its `before` state is part of the hashed content).
- Passwords: at least MIN_PASSWORD characters, argon2id.

Nothing here reads the clock, the environment or a database: the shell (oms.access) passes
`now` and the stored values in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

import pyotp

from oms.audit import canonical_json
from oms.errors import BadInput

TRADER: Final = "trader"
OPS: Final = "ops"
COMPLIANCE: Final = "compliance"
ADMIN: Final = "admin"
ROLES: Final = (TRADER, OPS, COMPLIANCE, ADMIN)
# The role of service accounts (unattended work: schedulers, cron). Not one of ROLES: no human
# operator has it, and a service account has no other.
SERVICE: Final = "service"

_T, _O, _C, _A, _S = TRADER, OPS, COMPLIANCE, ADMIN, SERVICE


def _roles(*names: str) -> frozenset[str]:
    return frozenset(names)


# Writing commands (their path as typed: "risk set") -> roles allowed to run them. The admin may
# run every command. A writing command that is missing here is admin-only (fail closed): add its
# row when adding the command. Read commands are not listed: every operator may read.
PERMISSIONS: Final[Mapping[str, frozenset[str]]] = {
    "init": _roles(_A),
    # operators and access
    "user add": _roles(_A),
    "user add-service": _roles(_A),
    "user rotate-token": _roles(_A),
    "user disable": _roles(_A),
    "user rotate-key": _roles(_A),
    "db grants": _roles(_A),
    "sessions": _roles(*ROLES),  # one's own sessions; an admin revokes anybody's
    "approve": _roles(_O, _C, _A),  # and the approver must hold the approved command's role
    "destination add": _roles(_O, _A),
    "destination remove": _roles(_O, _A),
    # reference data and cash
    "instrument add": _roles(_O, _A),
    "instrument import": _roles(_O, _A),
    "instrument restrict": _roles(_O, _C, _A),  # putting a symbol on the list: ops or compliance
    "instrument unrestrict": _roles(_C, _A),  # taking it off: compliance
    "instrument settlement set": _roles(_O, _A),
    "account open": _roles(_O, _A),
    "cash deposit": _roles(_O, _A),
    "cash withdraw": _roles(_O, _A),
    # executions and market data
    "exec import": _roles(_O, _A, _S),
    "exec apply": _roles(_O, _A),
    "md import": _roles(_O, _A, _S),
    "md settings": _roles(_O, _A),
    # orders and risk
    "order submit": _roles(_T, _A),
    "order amend": _roles(_T, _A),
    "order cancel": _roles(_T, _O, _A),
    "order expire-due": _roles(_O, _A, _S),
    "risk set": _roles(_C, _A),
    "risk kill": _roles(_T, _O, _C, _A),  # anyone may pull the emergency brake
    "risk release": _roles(_C, _A),
    "paper set": _roles(_O, _A),
    # reconciliation
    "recon run": _roles(_O, _A, _S),
    "recon profile add": _roles(_O, _A),
    "recon calendar set": _roles(_O, _A),
    "breaks assign": _roles(_O, _C, _A),
    "breaks comment": _roles(_O, _C, _A),
    "breaks resolve": _roles(_O, _C, _A),
    "breaks approve": _roles(_O, _C, _A),
    # schedules
    "schedule add": _roles(_O, _A),
    "schedule add-builtin": _roles(_O, _A),
    "schedule remove": _roles(_O, _A),
    "schedule trigger": _roles(_O, _A, _S),
    "schedule run": _roles(_O, _A, _S),
    "schedule config set": _roles(_O, _A),
    # compliance and operations (commands of the contract written elsewhere)
    "surveil run": _roles(_O, _C, _A, _S),
    "surveil settings set": _roles(_C, _A),
    "retention apply": _roles(_C, _A),
    "retention set": _roles(_C, _A),
    "retention hold add": _roles(_C, _A),
    "retention hold release": _roles(_C, _A),
    "backup create": _roles(_O, _A, _S),
    "backup restore": _roles(_A),
}

# Commands that ask for a fresh TOTP code (`--totp CODE`) even inside a session.
SENSITIVE: Final = frozenset(
    {
        "risk set",
        "risk release",
        "breaks approve",
        "destination add",
        "user add",
        "user add-service",  # a new identity that never expires
        "user rotate-token",
        "user disable",
        "user rotate-key",  # re-encrypts every operator's TOTP secret
        "approve",
        "retention apply",  # deletes data past its retention period
        "retention hold release",  # lets held data be deleted
    }
)

# Commands that, once operators exist, only record a request: a second, different operator
# approves it (`tieout approve REQUEST_ID`) and only then it takes effect.
FOUR_EYES: Final = frozenset({"risk set", "risk release"})

# Commands that look after the session themselves (or make a database of their own).
SELF_MANAGED: Final = frozenset({"login", "logout", "whoami", "sessions", "demo"})

IDLE_TIMEOUT: Final = timedelta(minutes=30)
ABSOLUTE_TIMEOUT: Final = timedelta(hours=12)
MAX_FAILURES: Final = 5
LOCKOUT: Final = timedelta(minutes=15)
REQUEST_TTL: Final = timedelta(hours=24)
DESTINATION_WAIT: Final = timedelta(hours=24)
MIN_PASSWORD: Final = 12
TOTP_STEP_S: Final = 30
TOTP_DIGITS: Final = 6
TOTP_ISSUER: Final = "tieout"


# ---- roles and permissions ----------------------------------------------------------------------


def parse_role(text: str) -> str:
    role = text.strip().lower()
    if role not in ROLES:
        raise BadInput("--role", f"{text!r} is not one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True, slots=True)
class Rule:
    """What running one command takes."""

    command: str
    writes: bool
    roles: frozenset[str]
    sensitive: bool
    four_eyes: bool
    known: bool  # False: a writing command nobody listed: admin-only until it is

    def allows(self, role: str) -> bool:
        return role == ADMIN or role in self.roles


def rule(command: str, *, has_actor: bool) -> Rule:
    """The rule of a command by its path; `has_actor`: it takes --actor, so it writes."""
    listed = command in PERMISSIONS
    writes = listed or has_actor
    roles = PERMISSIONS.get(command, _roles(_A) if writes else frozenset(ROLES))
    return Rule(
        command,
        writes,
        roles,
        command in SENSITIVE,
        command in FOUR_EYES,
        listed or not writes,
    )


def permission_matrix() -> dict[str, list[str]]:
    """command -> roles, for documentation and `tieout user roles`."""
    return {cmd: sorted(roles | {ADMIN}) for cmd, roles in sorted(PERMISSIONS.items())}


# ---- names and passwords ------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")


def parse_operator_name(text: str) -> str:
    name = text.strip()
    if not _NAME_RE.match(name):
        raise BadInput(
            "NAME",
            f"{text!r} is not an operator name (1-64 lower-case letters, digits or ._- , "
            "starting with a letter)",
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadInput("password", f"must have at least {MIN_PASSWORD} characters")
    if password.strip() != password:
        raise BadInput("password", "must not start or end with white space")
    return password


# ---- sessions -----------------------------------------------------------------------------------


class SessionState(Enum):
    ACTIVE = "active"
    IDLE = "idle"  # more than IDLE_TIMEOUT since it was last used
    EXPIRED = "expired"  # more than ABSOLUTE_TIMEOUT since login
    ENDED = "ended"  # logged out or revoked


def session_state(
    created_at: datetime, last_seen_at: datetime, ended_at: datetime | None, now: datetime
) -> SessionState:
    if ended_at is not None:
        return SessionState.ENDED
    if now - created_at >= ABSOLUTE_TIMEOUT:
        return SessionState.EXPIRED
    if now - last_seen_at >= IDLE_TIMEOUT:
        return SessionState.IDLE
    return SessionState.ACTIVE


def session_expires_at(created_at: datetime, last_seen_at: datetime) -> datetime:
    """When an unused session ends: idle timeout or absolute limit, the earlier."""
    return min(last_seen_at + IDLE_TIMEOUT, created_at + ABSOLUTE_TIMEOUT)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- TOTP ---------------------------------------------------------------------------------------


def totp_step(now: datetime) -> int:
    return int(now.timestamp()) // TOTP_STEP_S


def totp_uri(secret: str, name: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S).provisioning_uri(
        name=name, issuer_name=TOTP_ISSUER
    )


def totp_code(secret: str, step: int) -> str:
    return str(pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S).generate_otp(step))


class TotpCheck(Enum):
    OK = "ok"
    WRONG = "wrong"
    REPLAYED = "replayed"  # right code, but its step (or a later one) was used already


@dataclass(frozen=True, slots=True)
class TotpResult:
    check: TotpCheck
    step: int | None = None  # the step the code belongs to (OK and REPLAYED)


def check_totp(
    secret: str, code: str, now: datetime, last_step: int | None, window: int = 1
) -> TotpResult:
    """Match a code against the steps around `now`; refuse a step not after `last_step`."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == TOTP_DIGITS):
        return TotpResult(TotpCheck.WRONG)
    current = totp_step(now)
    matched = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(totp_code(secret, step), code):
            matched = step
    if matched is None:
        return TotpResult(TotpCheck.WRONG)
    if last_step is not None and matched <= last_step:
        return TotpResult(TotpCheck.REPLAYED, matched)
    return TotpResult(TotpCheck.OK, matched)


# ---- failures and lockout -----------------------------------------------------------------------


def locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until


def after_failure(failed_attempts: int, now: datetime) -> tuple[int, datetime | None]:
    """(failed attempts, locked until) after one more failure: locked at MAX_FAILURES in a row,
    and the count starts again."""
    count = failed_attempts + 1
    if count >= MAX_FAILURES:
        return 0, now + LOCKOUT
    return count, None


# ---- approval requests --------------------------------------------------------------------------


def request_content(
    action: str, args: Mapping[str, Any], before: Any, requested_by: str, requested_at: datetime
) -> dict[str, Any]:
    """Exactly what an approver approves: the command, its arguments, the state it changes."""
    return {
        "action": action,
        "args": dict(args),
        "before": before,
        "requested_by": requested_by,
        "requested_at": requested_at,
    }


def content_hash(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


# ---- withdrawal destinations --------------------------------------------------------------------


def destination_usable_at(added_at: datetime) -> datetime:
    return added_at + DESTINATION_WAIT


def parse_destination(text: str) -> str:
    dest = text.strip()
    if not dest or len(dest) > 200 or any(ord(c) < 32 for c in dest):
        raise BadInput("DEST", f"{text!r} is not a destination (1-200 printable characters)")
    return dest


# ---- the application's database role ------------------------------------------------------------

READ_ONLY_TABLES: Final = frozenset({"alembic_version"})  # only `tieout init` changes these


def grant_plan(tables: Iterable[str], append_only: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Privileges of the application role per table: everything is read and appended to;
    only tables that are not append-only may be updated and deleted from; never TRUNCATE."""
    frozen = set(append_only)
    plan: dict[str, tuple[str, ...]] = {}
    for table in sorted(set(tables)):
        if table in READ_ONLY_TABLES:
            plan[table] = ("SELECT",)
        elif table in frozen:
            plan[table] = ("SELECT", "INSERT")
        else:
            plan[table] = ("SELECT", "INSERT", "UPDATE", "DELETE")
    return plan
