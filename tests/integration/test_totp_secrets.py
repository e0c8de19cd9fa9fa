"""TOTP secrets at rest, on SQLite and PostgreSQL: never stored in clear, encrypted with a key
kept outside the database and bound to their operator; a missing or wrong key and a ciphertext
moved to another operator's row are refused with nothing written; migration 0009 encrypts the
secrets an older database holds in clear; key rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from alembic import command
from argon2 import PasswordHasher, profiles
from sqlalchemy import func, select, update

from oms import access, secret_key
from oms.book import Ctx
from oms.errors import VerificationFailed
from oms.schema import audit_events, op_sessions, operators
from oms.secret_key import KeyProblem
from oms.store import Store, alembic_config

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(access, "HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))
    monkeypatch.delenv(secret_key.ENV_KEY, raising=False)
    path = tmp_path / "keys" / "totp.key"
    monkeypatch.setenv(secret_key.ENV_KEY_FILE, str(path))
    return path


def add(store: Store, name: str, role: str = "admin", at: datetime = T0) -> str:
    _, uri = access.add_operator(store, Ctx("setup", at), name, role, PASSWORD)
    return parse_qs(urlparse(uri).query)["secret"][0]


def stored(store: Store, name: str) -> str:
    with store.read() as conn:
        value = conn.execute(
            select(operators.c.totp_secret).where(operators.c.name == name)
        ).scalar_one()
    return str(value)


def counts(store: Store) -> tuple[int, int]:
    with store.read() as conn:
        events = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
        sessions = conn.execute(select(func.count()).select_from(op_sessions)).scalar_one()
    return int(events), int(sessions)


def login(store: Store, name: str, secret: str, at: datetime) -> access.LoginResult:
    code = pyotp.TOTP(secret).at(at)
    return access.login(store, at, name, PASSWORD, code, "test")


def test_secrets_are_stored_encrypted_and_login_works(store: Store, key_file: Path) -> None:
    assert not key_file.exists()
    root = add(store, "root")
    assert key_file.exists() and key_file.stat().st_mode & 0o777 == 0o600  # made with root
    bob = add(store, "bob", "ops")
    for name, secret in (("root", root), ("bob", bob)):
        value = stored(store, name)
        assert secret not in value and value.startswith("v1:")
        assert secret not in repr(store_rows(store))  # nor anywhere in the audit trail
    assert stored(store, "root") != stored(store, "bob")
    assert login(store, "root", root, T0 + timedelta(seconds=31)).session.operator == "root"
    assert login(store, "bob", bob, T0 + timedelta(seconds=62)).session.operator == "bob"
    key_text = key_file.read_text()
    assert root not in key_text  # the key file holds the key, not the secrets


def store_rows(store: Store) -> list[tuple[object, ...]]:
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(select(audit_events))]


def test_a_missing_or_wrong_key_is_refused_and_nothing_is_written(
    store: Store, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = add(store, "root")
    before = counts(store)
    at = T0 + timedelta(seconds=31)
    # missing: the file is elsewhere
    monkeypatch.setenv(secret_key.ENV_KEY_FILE, str(tmp_path / "nowhere.key"))
    with pytest.raises(KeyProblem) as missing:
        login(store, "root", root, at)
    assert missing.value.exit_code == 3 and "nowhere.key" in missing.value.message
    assert "nothing was written" in missing.value.message
    with pytest.raises(KeyProblem):  # nor can an operator be added with a new key
        add(store, "carol", "ops")
    # wrong: another key
    other = tmp_path / "other.key"
    secret_key.save(other, [(secret_key.key_id(k), k) for k in [secret_key.new_key()]], T0)
    monkeypatch.setenv(secret_key.ENV_KEY_FILE, str(other))
    with pytest.raises(KeyProblem) as wrong:
        login(store, "root", root, at)
    assert "wrong key" in wrong.value.message
    # wrong password with the wrong key: the same answer (the key is checked first)
    with pytest.raises(KeyProblem):
        access.login(store, at, "root", "not the password at all", "000000", "test")
    # the key given by the environment variable, wrong too
    monkeypatch.setenv(secret_key.ENV_KEY, secret_key.encode_key(secret_key.new_key()))
    with pytest.raises(KeyProblem) as env_wrong:
        login(store, "root", root, at)
    assert secret_key.ENV_KEY in env_wrong.value.message
    for problem in (missing.value, wrong.value, env_wrong.value):
        assert root not in problem.message and stored(store, "root") not in problem.message
    assert counts(store) == before  # no audit event, no session, no failure counted
    # the right key in a file that others can read: refused until `chmod 600`
    monkeypatch.delenv(secret_key.ENV_KEY)
    monkeypatch.setenv(secret_key.ENV_KEY_FILE, str(key_file))
    key_file.chmod(0o644)
    with pytest.raises(KeyProblem) as loose:
        login(store, "root", root, at)
    assert "chmod 600" in loose.value.message and loose.value.exit_code == 3
    assert counts(store) == before
    key_file.chmod(0o640)  # readable by a shared book's group: accepted
    # the right key again: login works
    assert login(store, "root", root, at).session.operator == "root"
    key_file.chmod(0o600)


def test_the_key_from_the_environment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    key = secret_key.encode_key(secret_key.new_key())
    monkeypatch.setenv(secret_key.ENV_KEY, key)
    root = add(store, "root")
    assert root not in stored(store, "root")
    assert login(store, "root", root, T0 + timedelta(seconds=31)).session.operator == "root"


def test_the_key_without_base64_padding(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -c "import secrets; print(secrets.token_urlsafe(32))"` gives 43 characters, no
    `=`: it was refused as "not a base64url key" (exit 3); it is the same key as padded."""
    import secrets

    text = secrets.token_urlsafe(32)
    assert len(text) == 43
    assert secret_key.decode_key(text, "k") == secret_key.decode_key(text + "=", "k")
    monkeypatch.setenv(secret_key.ENV_KEY, text)
    root = add(store, "root")
    monkeypatch.setenv(secret_key.ENV_KEY, text + "=")
    assert login(store, "root", root, T0 + timedelta(seconds=31)).session.operator == "root"
    with pytest.raises(KeyProblem, match=r"not a base64url key|a key has 32 bytes"):
        secret_key.decode_key(text[:-2], "k")


def test_a_ciphertext_copied_to_another_operator_does_not_decrypt(store: Store) -> None:
    root = add(store, "root")
    add(store, "mallory", "trader")
    with store.write() as conn:  # an attacker with write access to the table
        conn.execute(
            update(operators)
            .where(operators.c.name == "mallory")
            .values(totp_secret=stored(store, "root"))
        )
    before = counts(store)
    with pytest.raises(VerificationFailed) as moved:
        login(store, "mallory", root, T0 + timedelta(seconds=31))
    assert moved.value.exit_code == 7
    assert "copied from another operator" in moved.value.message
    # audited as a security event (one event, no session), no failure counted against mallory
    assert counts(store) == (before[0] + 1, before[1])
    with store.read() as conn:
        last = conn.execute(
            select(audit_events.c.action, audit_events.c.entity_id, audit_events.c.payload)
            .order_by(audit_events.c.seq.desc())
            .limit(1)
        ).one()
        attempts = conn.execute(
            select(operators.c.failed_attempts).where(operators.c.name == "mallory")
        ).scalar_one()
    assert (last.action, last.entity_id, attempts) == ("auth.secret_tampered", "mallory", 0)
    assert root not in str(last.payload)
    # an altered ciphertext, too
    value = stored(store, "root")
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    with store.write() as conn:
        conn.execute(
            update(operators).where(operators.c.name == "root").values(totp_secret=flipped)
        )
    with pytest.raises(VerificationFailed):
        login(store, "root", root, T0 + timedelta(seconds=62))
    # and a secret put back in clear is refused as well
    with store.write() as conn:
        conn.execute(update(operators).where(operators.c.name == "root").values(totp_secret=root))
    with pytest.raises(VerificationFailed) as in_clear:
        login(store, "root", root, T0 + timedelta(seconds=93))
    assert "in clear" in in_clear.value.message
    assert counts(store) == (before[0] + 3, before[1])  # each refusal audited, no session


def test_migration_0009_encrypts_clear_secrets(db_url: str, key_file: Path) -> None:
    store = Store.open(db_url, check_schema=False)
    try:
        with store.engine.connect() as conn, conn.begin():
            command.upgrade(alembic_config(conn), "0008")
            secret = pyotp.random_base32()
            conn.execute(
                operators.insert().values(
                    name="root", role="admin", password_hash=access.HASHER.hash(PASSWORD),
                    totp_secret=secret, last_totp_step=None, failed_attempts=0,
                    locked_until=None, active=True, created_at=T0, created_by="setup",
                    updated_at=T0,
                )
            )
        assert not key_file.exists()
        before, _ = store.init()
        assert before == "0008"
        assert key_file.exists()  # made by the migration: there was a secret to encrypt
        value = stored(store, "root")
        assert value.startswith("v1:") and secret not in value
        assert login(store, "root", secret, T0 + timedelta(seconds=31)).session.operator == "root"
    finally:
        store.dispose()


def test_rotating_the_key(store: Store, key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = add(store, "root")
    bob = add(store, "bob", "ops")
    old_id = secret_key.require(store.engine.url).current_id
    old_values = {n: stored(store, n) for n in ("root", "bob")}
    doc = access.rotate_key(store, Ctx("root", T0 + timedelta(minutes=1)))
    assert doc["previous_key_ids"] == [old_id] and doc["key_id"] != old_id
    assert doc["operators"] == 2
    assert secret_key.require(store.engine.url).ids == (doc["key_id"],)  # the old key is gone
    retired = Path(doc["retired_key_file"])
    assert retired.stat().st_mode & 0o777 == 0o600
    for n in ("root", "bob"):
        assert stored(store, n) != old_values[n] and f":{doc['key_id']}:" in stored(store, n)
    assert login(store, "root", root, T0 + timedelta(minutes=2)).session.operator == "root"
    assert login(store, "bob", bob, T0 + timedelta(minutes=3)).session.operator == "bob"
    # the retired key alone no longer opens the book
    monkeypatch.setenv(secret_key.ENV_KEY_FILE, str(retired))
    with pytest.raises(KeyProblem):
        login(store, "root", root, T0 + timedelta(minutes=4))
    with store.read() as conn:
        event = conn.execute(
            select(audit_events.c.payload).where(audit_events.c.action == "secret_key.rotate")
        ).scalar_one()
    assert root not in event and bob not in event
