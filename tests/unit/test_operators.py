"""The pure rules of access control: permissions, session expiry, TOTP steps and replay,
lockout, the hash of an approval request, the application role's grants."""

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from oms import operators as ops
from oms.errors import BadInput
from oms.operators import SessionState, TotpCheck

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)
SECRET = pyotp.random_base32()


# ---- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "role", "allowed"), [
    ("user add", "trader", False),
    ("user add", "ops", False),
    ("user add", "admin", True),
    ("order submit", "trader", True),
    ("order submit", "ops", False),
    ("order submit", "compliance", False),
    ("risk set", "trader", False),
    ("risk set", "compliance", True),
    ("risk kill", "trader", True),
    ("risk release", "trader", False),
    ("cash withdraw", "trader", False),
    ("cash withdraw", "ops", True),
    ("breaks approve", "trader", False),
    ("breaks approve", "compliance", True),
    ("db grants", "ops", False),
    ("instrument restrict", "ops", True),
    ("instrument restrict", "trader", False),
    ("instrument unrestrict", "ops", False),
    ("instrument unrestrict", "compliance", True),
])
def test_permission_matrix(command: str, role: str, allowed: bool) -> None:
    assert ops.rule(command, has_actor=True).allows(role) is allowed


def test_admin_may_run_every_listed_command() -> None:
    for command in ops.PERMISSIONS:
        assert ops.rule(command, has_actor=True).allows(ops.ADMIN)


def test_an_unlisted_writing_command_is_admin_only_and_reads_are_open() -> None:
    new = ops.rule("frobnicate now", has_actor=True)
    assert new.writes and not new.known
    assert new.allows(ops.ADMIN) and not new.allows(ops.OPS)
    read = ops.rule("cash balance", has_actor=False)
    assert not read.writes and read.known
    assert all(read.allows(r) for r in ops.ROLES)


def test_sensitive_and_four_eyes_commands() -> None:
    for cmd in ("risk release", "risk set", "breaks approve", "destination add"):
        assert ops.rule(cmd, has_actor=True).sensitive
    assert ops.rule("risk set", has_actor=True).four_eyes
    assert ops.rule("risk release", has_actor=True).four_eyes
    assert not ops.rule("risk kill", has_actor=True).four_eyes
    assert set(ops.PERMISSIONS) >= ops.FOUR_EYES
    assert set(ops.PERMISSIONS) >= ops.SENSITIVE


def test_roles_names_and_passwords_are_checked() -> None:
    assert ops.parse_role(" Ops ") == "ops"
    with pytest.raises(BadInput, match="trader, ops, compliance, admin"):
        ops.parse_role("root")
    assert ops.parse_operator_name("alice.b-1") == "alice.b-1"
    for bad in ("", "Alice", "1abc", "a b", "x" * 65):
        with pytest.raises(BadInput):
            ops.parse_operator_name(bad)
    with pytest.raises(BadInput, match="at least 12"):
        ops.check_password("short")
    with pytest.raises(BadInput, match="white space"):
        ops.check_password(" long enough password")


# ---- sessions -------------------------------------------------------------------------------


def test_sessions_expire_idle_and_absolute() -> None:
    state = ops.session_state
    assert state(T0, T0, None, T0 + timedelta(minutes=29, seconds=59)) is SessionState.ACTIVE
    assert state(T0, T0, None, T0 + timedelta(minutes=30)) is SessionState.IDLE
    seen = T0 + timedelta(hours=11, minutes=50)
    assert state(T0, seen, None, T0 + timedelta(hours=11, minutes=59)) is SessionState.ACTIVE
    assert state(T0, seen, None, T0 + timedelta(hours=12)) is SessionState.EXPIRED
    assert state(T0, T0, T0, T0) is SessionState.ENDED
    assert ops.session_expires_at(T0, T0) == T0 + timedelta(minutes=30)
    assert ops.session_expires_at(T0, seen) == T0 + timedelta(hours=12)


def test_tokens_are_stored_as_sha256() -> None:
    assert ops.token_hash("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


# ---- TOTP -----------------------------------------------------------------------------------


def test_totp_matches_rfc6238_codes_of_pyotp() -> None:
    code = pyotp.TOTP(SECRET).at(T0)
    assert ops.totp_code(SECRET, ops.totp_step(T0)) == code
    result = ops.check_totp(SECRET, code, T0, None)
    assert result.check is TotpCheck.OK
    assert result.step == ops.totp_step(T0)


def test_totp_accepts_one_step_of_drift_and_no_more() -> None:
    step = ops.totp_step(T0)
    for drift, ok in ((-2, False), (-1, True), (0, True), (1, True), (2, False)):
        code = ops.totp_code(SECRET, step + drift)
        assert (ops.check_totp(SECRET, code, T0, None).check is TotpCheck.OK) is ok, drift


def test_a_used_step_is_refused_again() -> None:
    step = ops.totp_step(T0)
    code = ops.totp_code(SECRET, step)
    assert ops.check_totp(SECRET, code, T0, step).check is TotpCheck.REPLAYED
    # an older code still in the window is refused once a later step was used
    older = ops.totp_code(SECRET, step - 1)
    assert ops.check_totp(SECRET, older, T0, step).check is TotpCheck.REPLAYED
    later = ops.totp_code(SECRET, step + 1)
    assert ops.check_totp(SECRET, later, T0 + timedelta(seconds=30), step).check is TotpCheck.OK


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_wrong(code: str) -> None:
    assert ops.check_totp(SECRET, code, T0, None).check is TotpCheck.WRONG


def test_the_provisioning_uri_carries_the_secret_and_issuer() -> None:
    uri = ops.totp_uri(SECRET, "alice")
    assert uri.startswith("otpauth://totp/tieout:alice?")
    assert f"secret={SECRET}" in uri and "issuer=tieout" in uri


# ---- lockout --------------------------------------------------------------------------------


def test_lockout_after_max_failures() -> None:
    count, until = 0, None
    for _ in range(ops.MAX_FAILURES - 1):
        count, until = ops.after_failure(count, T0)
        assert until is None
    count, until = ops.after_failure(count, T0)
    assert count == 0
    assert until == T0 + ops.LOCKOUT
    assert ops.locked(until, T0 + ops.LOCKOUT - timedelta(seconds=1))
    assert not ops.locked(until, T0 + ops.LOCKOUT)
    assert not ops.locked(None, T0)


# ---- approval requests and destinations -----------------------------------------------------


def test_request_hash_binds_the_exact_content() -> None:
    content = ops.request_content("risk set", {"name": "max-notional", "value": "5000"},
                                  {"setting": "risk.max-notional", "value": None}, "carol", T0)
    same = ops.request_content("risk set", {"value": "5000", "name": "max-notional"},
                               {"setting": "risk.max-notional", "value": None}, "carol", T0)
    other = ops.request_content("risk set", {"name": "max-notional", "value": "50000"},
                                {"setting": "risk.max-notional", "value": None}, "carol", T0)
    assert ops.content_hash(content) == ops.content_hash(same)
    assert ops.content_hash(content) != ops.content_hash(other)
    assert len(ops.content_hash(content)) == 64


def test_destinations_wait_a_day() -> None:
    assert ops.destination_usable_at(T0) == T0 + timedelta(hours=24)
    assert ops.parse_destination(" DE89 3704 ") == "DE89 3704"
    for bad in ("", "  ", "a\nb", "x" * 201):
        with pytest.raises(BadInput):
            ops.parse_destination(bad)


# ---- the application role -------------------------------------------------------------------


def test_grant_plan_keeps_append_only_tables_append_only() -> None:
    plan = ops.grant_plan(
        ["executions", "accounts", "audit_events", "alembic_version"],
        ["executions", "audit_events", "not_here"],
    )
    assert plan == {
        "accounts": ("SELECT", "INSERT", "UPDATE", "DELETE"),
        "alembic_version": ("SELECT",),
        "audit_events": ("SELECT", "INSERT"),
        "executions": ("SELECT", "INSERT"),
    }
    assert all("TRUNCATE" not in p for p in plan.values())
