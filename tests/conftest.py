"""Shared fixtures: a fresh database on each backend, and the real `tieout` command in-process.

PostgreSQL: one database per test process (dropped at the end, by a process of its own: see
`_drop_later`), one schema per test. If PostgreSQL cannot be reached the tests fail, never skip,
unless TIEOUT_TEST_SKIP_PG=1 is set on purpose (never in CI).

An initialised book (`tieout`, `store`) is a copy of one the real `tieout init` made in this
test process (`BookTemplates`): the migrations run once per process and kind of book instead of
once per test (0.3-0.7 s each). Tests of `init` itself and of upgrades start from `db_url`, an
empty database, and run it for real.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
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
    name = f"tieout_test_{_HOST}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for these tests and is not reachable: {exc}")
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _drop_later(name)


def _host_tag() -> str:
    """This machine or container, short (its host name and the kernel's boot id): only the
    databases of test processes here are judged by their process ids."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return hashlib.sha256(f"{socket.gethostname()}/{boot}".encode()).hexdigest()[:8]


_HOST = _host_tag()


# Dropping a test process's database (hundreds of schemas) took 6 s alone and up to 47 s at the
# end of a full run, while the other workers' drops and the run's checkpoint went on: the run
# does not wait for it. A process of its own drops it, and also the databases of earlier test
# processes of this machine that are gone (a run killed before its drops), never those of a live
# process or of another machine or container using the same server.
_DROPPER = """
import os, re, sys
import psycopg
admin, own, host = sys.argv[1], sys.argv[2], sys.argv[3]
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
with psycopg.connect(admin, autocommit=True) as conn:
    names = [r[0] for r in conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE 'tieout_test_%'")]
    for name in names:
        m = re.fullmatch(r"tieout_test_" + host + r"_(\\d+)_[0-9a-f]{6}", name)
        if name == own or (m and not alive(int(m.group(1)))):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
"""


def _drop_later(name: str) -> None:
    subprocess.Popen(
        [sys.executable, "-c", _DROPPER, PG_ADMIN, name, _HOST],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _pg_url(pg_database: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema_url(pg_database, schema)


def schema_url(conninfo: str, schema: str) -> str:
    """tieout's URL of a schema of a PostgreSQL database (libpq URL `conninfo`)."""
    url = conninfo.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}?options=-csearch_path%3D{schema}"


def schema_of(db_url: str) -> tuple[str, str] | None:
    """(libpq URL of the database, schema) of a URL `schema_url` made; None for others."""
    m = re.fullmatch(r"postgresql\+psycopg://(.*)\?options=-csearch_path%3D(\w+)", db_url)
    return None if m is None else (f"postgresql://{m[1]}", m[2])


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, book_templates: BookTemplates
) -> Iterator[str]:
    """An empty database (no schema) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'book.db'}"
        return
    url = _pg_url(request.getfixturevalue("pg_database"))
    yield url
    book_templates.recycle(url)


class BookTemplates:
    """Initialised books to copy, one per kind and backend in this test process, each made by
    the real initialisation of its kind the first time it is asked for: "cli" is `tieout init`
    as the tester, "store" is `Store.init()` (the tests' two ways to a new book). A copy is the
    same book: on SQLite the template's pages by SQLite's backup API; on PostgreSQL pg_dump's
    text of the template's schema (its tables, indexes, triggers, functions, sequences and
    rows), replayed into the test's own schema under its name.

    On PostgreSQL the replay is most of a test's setup (0.25-0.4 s of catalog work for 39
    tables, measured 2026-11-28; 600 tests). So a finished test's schema is used again when it
    is still exactly the replayed book in shape (`_SHAPE`: every table, column, constraint,
    index, trigger, function, sequence and privilege) and nothing else is at work in the
    database: it waits, renamed, as a spare (`recycle`); the next copy takes a spare, renames
    it to its own schema, empties it (`_empty`) and writes the template's rows (`fresh`). A
    schema a test changed in shape (a downgrade, a dropped trigger, a grant) is left as it
    is. (Recycling needs a superuser, as the tests' server gives: without, nothing is kept.)"""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sqlite: dict[str, Path] = {}
        self.pg: dict[tuple[str, str], str] = {}
        self.pg_rows: dict[tuple[str, str], str] = {}  # the template's rows, as INSERTs
        self.pg_shape: dict[str, str] = {}  # conninfo -> the shape of a replayed book
        self.spares: dict[str, list[str]] = {}  # conninfo -> spare books' schemas

    @staticmethod
    def initialise(url: str, kind: str) -> None:
        """kind: "cli", "store", or "store@TIME" (Store.init(now=TIME), TIME in ISO 8601)."""
        if kind == "cli":
            Tieout(url).ok("init")
            return
        from oms.store import Store

        store, _, at = kind.partition("@")
        assert store == "store", kind
        s = Store.open(url, check_schema=False)
        try:
            s.init(now=datetime.fromisoformat(at) if at else None)
        finally:
            s.dispose()

    def fresh(self, db_url: str, kind: str) -> None:
        """Make the empty database at db_url (as the db_url fixture gives it) a new book."""
        if db_url.startswith("sqlite:///"):
            template = self.sqlite.get(kind)
            if template is None:
                template = self.folder / f"{_tag(kind)}.db"
                self.initialise(f"sqlite:///{template}", kind)
                self.sqlite[kind] = template
            source = sqlite3.connect(template)
            target = sqlite3.connect(db_url.removeprefix("sqlite:///"))
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
            return
        parts = schema_of(db_url)
        if parts is None or shutil.which("pg_dump") is None:
            self.initialise(db_url, kind)
            return
        conninfo, schema = parts
        key = (conninfo, kind)
        script = self.pg.get(key)
        if script is None:
            script = self.pg[key] = self._pg_template(conninfo, kind)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            if self._take_spare(conn, conninfo, schema, self.pg_rows[key]):
                return
            conn.execute(script.replace(_TEMPLATE_SCHEMA, schema))
            if conninfo not in self.pg_shape:
                self.pg_shape[conninfo] = _shape(conn, schema)

    def _take_spare(
        self, conn: psycopg.Connection[Any], conninfo: str, schema: str, rows: str
    ) -> bool:
        """Make `schema` (empty, as the db_url fixture made it) a spare book with the
        template's rows; False when there is no spare (or it cannot be taken)."""
        spares = self.spares.get(conninfo)
        if not spares:
            return False
        spare = spares.pop()
        try:
            with conn.transaction():
                conn.execute(f'DROP SCHEMA "{schema}"')  # RESTRICT: refused unless empty
                conn.execute(f'ALTER SCHEMA "{spare}" RENAME TO "{schema}"')
                _empty(conn, schema)
                conn.execute(rows.replace(_TEMPLATE_SCHEMA, schema))
        except psycopg.Error:
            return False
        return True

    def recycle(self, db_url: str) -> None:
        """Keep a finished test's PostgreSQL book as a spare (see the class), if it may be."""
        parts = schema_of(db_url)
        if parts is None:
            return
        conninfo, schema = parts
        shape = self.pg_shape.get(conninfo)
        spares = self.spares.setdefault(conninfo, [])
        if shape is None or len(spares) >= _MAX_SPARES:
            return
        spare = f"spare_{uuid.uuid4().hex[:12]}"
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                busy = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    " AND state <> 'idle'"
                ).fetchone()
                if busy is None or busy[0] or _shape(conn, schema) != shape:
                    return
                conn.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{spare}"')
        except psycopg.Error:
            return
        spares.append(spare)

    def _pg_template(self, conninfo: str, kind: str) -> str:
        name = f"{_TEMPLATE_SCHEMA}_{_tag(kind)}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{name}"')
        self.initialise(schema_url(conninfo, name), kind)
        dumped = subprocess.run(
            ["pg_dump", "--dbname", conninfo, "--schema", name, "--inserts", "--no-owner",
             "--no-privileges"],
            capture_output=True, text=True, check=True,
        ).stdout
        lines = [
            line for line in dumped.splitlines()
            # psql's own commands (\restrict) and the schema, which the test's fixture made
            if not line.startswith("\\") and line != f"CREATE SCHEMA {name};"
        ]
        script = "\n".join(lines).replace(name, _TEMPLATE_SCHEMA)
        assert f"CREATE TABLE {_TEMPLATE_SCHEMA}.orders " in script, "pg_dump gave no book"
        rows = subprocess.run(
            ["pg_dump", "--dbname", conninfo, "--schema", name, "--data-only", "--inserts",
             "--no-owner", "--no-privileges"],
            capture_output=True, text=True, check=True,
        ).stdout
        self.pg_rows[(conninfo, kind)] = "\n".join(
            line for line in rows.splitlines() if not line.startswith("\\")
        ).replace(name, _TEMPLATE_SCHEMA)
        return script


_TEMPLATE_SCHEMA = "tieout_book_template"


def _tag(kind: str) -> str:
    """A kind of book as a name for a file or a schema ("store@2026-03-04T14:50:00+0000")."""
    return re.sub(r"\W", "_", kind).lower()

_MAX_SPARES = 4

# The shape of a schema: every object's definition in it, the schema's name taken out.
_SHAPE_SQL = """
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)
SELECT md5(coalesce(string_agg(replace(x, %(schema)s, '@'), E'\\n' ORDER BY x), ''))
FROM (
  SELECT concat_ws(':', 'c', c.relname, c.relkind, c.relpersistence, c.relacl::text,
                   c.reloptions::text, c.relrowsecurity, c.relforcerowsecurity) AS x
    FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(':', 'a', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, a.attidentity, a.attgenerated, a.attcollation,
                   pg_get_expr(d.adbin, d.adrelid), a.attacl::text)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = (SELECT oid FROM ns) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT concat_ws(':', 'k', k.conname, k.conrelid::regclass::text,
                   pg_get_constraintdef(k.oid), k.convalidated, k.condeferrable)
    FROM pg_constraint k WHERE k.connamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(':', 'i', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(':', 't', pg_get_triggerdef(t.oid), t.tgenabled)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = (SELECT oid FROM ns) AND NOT t.tgisinternal
  UNION ALL
  SELECT concat_ws(':', 'p', p.oid::regprocedure::text, md5(p.prosrc), p.proacl::text,
                   p.prosecdef, p.proconfig::text)
    FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(':', 'r', r.rulename, pg_get_ruledef(r.oid))
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
    WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(':', 'o', p.polname, p.polrelid::regclass::text,
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(':', 's', s.seqrelid::regclass::text, s.seqtypid, s.seqstart,
                   s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle)
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
    WHERE c.relnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(':', 'd', d.defaclrole, d.defaclobjtype, d.defaclacl::text)
    FROM pg_default_acl d WHERE d.defaclnamespace = (SELECT oid FROM ns)
  UNION ALL
  SELECT concat_ws(':', 'n', n.nspacl::text) FROM pg_namespace n
    WHERE n.oid = (SELECT oid FROM ns)
) parts
"""


def _empty(conn: psycopg.Connection[Any], schema: str) -> None:
    """Empty a used book's schema as a new one is, in the caller's transaction, when it is
    taken (not when it is put aside: autovacuum could analyze a waiting spare): TRUNCATE, not
    DELETE (new, empty files and no size estimate: rows come back in the order a new table
    gives them, and a query without ORDER BY must not read another order in a used schema than
    in a new one), no column statistics, sequences from their start.

    Only the tables with pages are truncated: a table no row was ever written to (nor rolled
    back from) since it was made or last truncated has none, and is as a new one is. TRUNCATE
    makes new files for a table and each of its indexes, 0.19 s for the book's 40 tables
    (measured 2026-11-29), most of them untouched by a test."""
    conn.execute("SET LOCAL lock_timeout = '1s'")
    # the append-only tables' triggers refuse TRUNCATE: not for this
    conn.execute("SET LOCAL session_replication_role = replica")
    tables = conn.execute(
        "SELECT quote_ident(relname) FROM pg_class WHERE relnamespace = %s::regnamespace"
        " AND relkind IN ('r', 'p') AND pg_relation_size(oid) > 0",
        (schema,),
    ).fetchall()
    if tables:
        listed = ", ".join(f'"{schema}".{table}' for (table,) in tables)
        # CASCADE: the empty tables that refer to one of them by a foreign key too
        conn.execute(f"TRUNCATE {listed} RESTART IDENTITY CASCADE")
    conn.execute(
        "DELETE FROM pg_catalog.pg_statistic WHERE starelid IN"
        " (SELECT oid FROM pg_class WHERE relnamespace = %s::regnamespace)",
        (schema,),
    )
    conn.execute(
        "SELECT setval(c.oid, s.seqstart, false) FROM pg_sequence s"
        " JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = %s::regnamespace",
        (schema,),
    )
    conn.execute("SET LOCAL session_replication_role = origin")


def _shape(conn: psycopg.Connection[Any], schema: str) -> str:
    """The shape of `schema` (`_SHAPE_SQL`), names read with no schema on the search path."""
    with conn.transaction():
        conn.execute("SET LOCAL search_path = pg_catalog")
        row = conn.execute(_SHAPE_SQL, {"schema": schema}).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="session")
def book_templates(tmp_path_factory: pytest.TempPathFactory) -> BookTemplates:
    return BookTemplates(tmp_path_factory.mktemp("book-templates"))


@pytest.fixture
def store(db_url: str, book_templates: BookTemplates) -> Iterator[Any]:
    """An initialised store on each backend."""
    from oms.store import Store

    book_templates.fresh(db_url, "store")
    s = Store.open(db_url)
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
def tieout(db_url: str, book_templates: BookTemplates) -> Tieout:
    """The CLI on an initialised database of each backend."""
    book_templates.fresh(db_url, "cli")
    return Tieout(db_url)


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)
