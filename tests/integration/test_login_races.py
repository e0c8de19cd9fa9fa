"""Logins that run at the same time, on SQLite and PostgreSQL: what one decided before its
write transaction is checked again inside it. Failures of other logins that locked the
operator, or a disable, committed in between, refuse the login (it was let in, and its
success cleared the lock: the lockout could be beaten by sending attempts in parallel). A
login name that is not an operator name is refused before anything is written, and an
unknown name costs a password check like a known one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import Connection, select

from oms import access, operators
from oms.book import Ctx
from oms.errors import BadInput, Refused
from oms.schema import audit_events, op_sessions
from oms.store import Store
from tests.integration.test_totp_secrets import key_file

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)
REAL_HASHER = access.HASHER  # before the fixture below makes it cheap
PASSWORD = "correct horse battery staple"


__all__ = ["key_file"]  # the fixture (autouse: a cheap hasher, a key file of the test's own)


class Interleaved(Store):
    """The real store, on the same engine; `between` runs once, just before the next write
    transaction opens: what another process committed while this one was deciding."""

    between: Callable[[], None] | None = None

    @contextmanager
    def write(self, *args: Any, **kwargs: Any) -> Iterator[Connection]:
        hook, self.between = self.between, None
        if hook is not None:
            hook()
        with super().write(*args, **kwargs) as conn:
            yield conn


def _setup(store: Store) -> str:
    access.add_operator(store, Ctx("setup", T0), "root", "admin", PASSWORD)
    _, uri = access.add_operator(store, Ctx("setup", T0), "bob", "ops", PASSWORD)
    return parse_qs(urlparse(uri).query)["secret"][0]


def _sessions(store: Store) -> int:
    with store.read() as conn:
        return len(conn.execute(select(op_sessions.c.session_id)).all())


def test_failures_committed_meanwhile_lock_out_a_login_that_was_deciding(store: Store) -> None:
    secret = _setup(store)
    at = T0 + timedelta(minutes=1)
    racing = Interleaved(store.engine)

    def wrong_codes() -> None:  # the parallel attempts: each a wrong code, the last locks
        for _ in range(operators.MAX_FAILURES):
            with pytest.raises(Refused):
                access.login(store, at, "bob", PASSWORD, "000000", "other")

    racing.between = wrong_codes
    right = pyotp.TOTP(secret).at(at)
    before = _sessions(store)
    with pytest.raises(Refused, match="locked until"):
        access.login(racing, at, "bob", PASSWORD, right, "test")
    assert _sessions(store) == before  # no session, and the lock stays
    with store.read() as conn:
        row = conn.execute(select(access.operators_table).where(
            access.operators_table.c.name == "bob")).one()  # fmt: skip
        last = conn.execute(
            select(audit_events.c.action, audit_events.c.payload).order_by(
                audit_events.c.seq.desc()
            )
        ).first()
    assert operators.locked(row.locked_until, at)
    assert last is not None and last.action == "auth.failed" and '"locked"' in last.payload


def test_a_disable_committed_meanwhile_refuses_the_login(store: Store) -> None:
    secret = _setup(store)
    at = T0 + timedelta(minutes=1)
    racing = Interleaved(store.engine)
    racing.between = lambda: access.disable_operator(store, Ctx("root", at), "bob")
    with pytest.raises(Refused):
        access.login(racing, at, "bob", PASSWORD, pyotp.TOTP(secret).at(at), "test")
    assert _sessions(store) == 0


def test_a_login_name_that_is_not_an_operator_name_writes_nothing(store: Store) -> None:
    _setup(store)
    with store.read() as conn:
        events = len(conn.execute(select(audit_events.c.seq)).all())
    with pytest.raises(BadInput, match="not an operator name"):
        access.login(store, T0, '=HYPERLINK("http://x")', PASSWORD, "123456", "test")
    with store.read() as conn:
        assert len(conn.execute(select(audit_events.c.seq)).all()) == events


def test_an_unknown_name_costs_a_password_check(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(store)
    checked: list[str] = []
    real = access.HASHER

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            checked.append(str(password))
            return real.verify(hash, password)

    monkeypatch.setattr(access, "HASHER", Counting.from_parameters(profiles.CHEAPEST))
    for name in ("bob", "nobody"):
        with pytest.raises(Refused):
            access.login(store, T0, name, "wrong password!!", "123456", "test")
    assert checked == ["wrong password!!", "wrong password!!"]


def test_the_hash_an_unknown_name_is_checked_against_has_the_hasher_s_parameters() -> None:
    from argon2 import extract_parameters

    from oms.access import NOBODY_HASH

    assert extract_parameters(NOBODY_HASH) == extract_parameters(REAL_HASHER.hash("x"))
