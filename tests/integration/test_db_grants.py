"""`tieout db grants` on PostgreSQL: the application's role reads and appends everywhere, updates
and deletes only where the table is not append-only, never truncates; checked by connecting as
that role. On SQLite the command is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from tests.conftest import Tieout

APPEND_ONLY = {
    "executions", "journal_entries", "journal_postings", "audit_events", "order_events",
    "recon_profiles", "recon_runs", "recon_quarantine", "break_events", "schedule_alerts",
    "surveil_alerts",
}


def _conninfo(db_url: str, user: str) -> str:
    url = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}@{rest.split('@', 1)[1]}"


@pytest.fixture
def app_role(tieout: Tieout) -> Iterator[str]:
    if not tieout.db_url.startswith("postgresql"):
        pytest.skip("database roles are a PostgreSQL feature")
    role = f"tieout_app_{uuid.uuid4().hex[:8]}"
    yield role
    with psycopg.connect(_conninfo(tieout.db_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_the_application_role_cannot_rewrite_history(tieout: Tieout, app_role: str) -> None:
    tieout.ok("account", "open", "A1", "--currency", "USD")
    tieout.ok("cash", "deposit", "A1", "100")
    r = tieout("db", "grants", "--role", app_role, "--password-stdin", "--json",
               stdin="app's pass%word\n")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["role"] == app_role and doc["created"] is True and doc["password_set"] is True
    assert set(doc["append_only"]) >= APPEND_ONLY
    assert doc["tables"]["executions"] == ["SELECT", "INSERT"]
    assert doc["tables"]["accounts"] == ["SELECT", "INSERT", "UPDATE", "DELETE"]
    assert doc["tables"]["alembic_version"] == ["SELECT"]
    assert all("TRUNCATE" not in p for p in doc["tables"].values())

    with psycopg.connect(_conninfo(tieout.db_url, app_role), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (1,)
        conn.execute("UPDATE accounts SET name = 'Alpha' WHERE account_id = 'A1'")
        for sql in (
            "UPDATE executions SET price = 1",
            "DELETE FROM audit_events",
            "UPDATE journal_postings SET amount = 0",
            "TRUNCATE accounts",
            "UPDATE alembic_version SET version_num = '0001'",
            "CREATE TABLE evil (x int)",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql)

    # the role can run tieout itself: reads and appends
    as_app = Tieout(tieout.db_url.replace("postgres@", f"{app_role}@", 1))
    assert as_app.ok("cash", "deposit", "A1", "5", "--json").json()["balance"] == "105"
    again = tieout.ok("db", "grants", "--role", app_role, "--json").json()
    assert again["created"] is False and again["password_set"] is False  # grants refreshed


def test_db_grants_refuses_a_bad_role_name(tieout: Tieout, app_role: str) -> None:
    r = tieout("db", "grants", "--role", "Robert'); DROP TABLE accounts;--")
    assert r.code == 3 and "not a role name" in r.err
