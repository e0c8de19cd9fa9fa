"""Shared fixtures: a fresh database on each backend, and the real `tieout` command in-process.

PostgreSQL: one database per test session (dropped at the end), one schema per test. If
PostgreSQL cannot be reached the tests fail, never skip, unless TIEOUT_TEST_SKIP_PG=1 is set on
purpose (never in CI).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

PG_ADMIN = os.environ.get("TIEOUT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    if os.environ.get("TIEOUT_TEST_SKIP_PG") == "1" and not os.environ.get("CI"):
        pytest.skip("PostgreSQL tests skipped on purpose (TIEOUT_TEST_SKIP_PG=1)")
    name = f"tieout_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for these tests and is not reachable: {exc}")
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(pg_database: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = pg_database.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no schema) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'book.db'}"
    return _pg_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def store(db_url: str) -> Iterator[Any]:
    """An initialised store on each backend."""
    from oms.store import Store

    s = Store.open(db_url, check_schema=False)
    s.init()
    yield s
    s.dispose()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_tieout(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the real `tieout` entry point in this process and capture what it prints."""
    from cli.main import run

    out, err = io.StringIO(), io.StringIO()
    old_argv, old_stdin = sys.argv, sys.stdin
    old_env = {k: os.environ.get(k) for k in (env or {})}
    sys.argv = ["tieout", *args]
    sys.stdin = io.StringIO(stdin or "")
    os.environ.update(env or {})
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, sys.stdin = old_argv, old_stdin
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Result(code, out.getvalue(), err.getvalue())


class Tieout:
    """`tieout` bound to one database and actor: t("cash", "balance", "A1", "--json")."""

    def __init__(
        self,
        db_url: str,
        actor: str = "tester",
        now: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db_url, self.actor, self.now = db_url, actor, now
        self.env = dict(env or {})

    def at(self, now: str) -> Tieout:
        """The same CLI with its clock pinned (TIEOUT_NOW)."""
        return Tieout(self.db_url, self.actor, now, self.env)

    def as_actor(self, actor: str) -> Tieout:
        """The same CLI acting as another operator."""
        return Tieout(self.db_url, actor, self.now, self.env)

    def with_env(self, **env: str) -> Tieout:
        """The same CLI with more environment (e.g. TIEOUT_SESSION_FILE)."""
        return Tieout(self.db_url, self.actor, self.now, {**self.env, **env})

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        env = {
            "TIEOUT_ACTOR": self.actor,
            **({"TIEOUT_NOW": self.now} if self.now else {}),
            **self.env,
        }
        return run_tieout(*args, "--db", self.db_url, stdin=stdin, env=env)

    def ok(self, *args: str) -> Result:
        r = self(*args)
        assert r.code == 0, f"tieout {' '.join(args)} exited {r.code}: {r.err}{r.out}"
        return r


@pytest.fixture
def tieout(db_url: str) -> Tieout:
    """The CLI on an initialised database of each backend."""
    t = Tieout(db_url)
    t.ok("init")
    return t


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)
