"""The tests' initialised books are copies of a template (tests/conftest.py, BookTemplates): a
copy must be the book `tieout init` makes, object for object, and a working one."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import BookTemplates, Tieout, _pg_url, run_tieout, schema_of


def _objects(db_url: str) -> list[str]:
    """Every schema object's definition, with the schema's own name taken out."""
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
            ).fetchall()
            mode = conn.execute("PRAGMA journal_mode").fetchone()
        return [repr(r) for r in rows] + [f"journal_mode={mode[0]}"]
    parts = schema_of(db_url)
    assert parts is not None
    conninfo, schema = parts
    text = subprocess.run(
        ["pg_dump", "--dbname", conninfo, "--schema", schema,
         "--schema-only", "--no-owner", "--no-privileges"],
        capture_output=True, text=True, check=True,
    ).stdout
    return sorted(
        _ANY_ARRAY.sub(_cast_each, line.replace(schema, "<schema>"))
        for line in text.splitlines()
        if line.strip() and not line.startswith(("--", "\\"))
    )


# The one known difference of a replayed pg_dump: PostgreSQL stores a partial index's
# `status IN (...)` as an array cast as a whole, and the same text replayed as each element cast
# (the planner folds both to one constant array). Written here as the replay writes it.
_ANY_ARRAY = re.compile(r"ANY \(\(ARRAY\[([^\]]*)\]\)::text\[\]\)")


def _cast_each(m: re.Match[str]) -> str:
    return "ANY (ARRAY[" + ", ".join(f"({e})::text" for e in m.group(1).split(", ")) + "])"


def _rows(db_url: str) -> list[tuple[str, ...]]:
    """The book's rows that init writes: its schema version and its audit event."""
    from oms.store import Store

    s = Store.open(db_url)
    try:
        with s.read() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
            events = conn.exec_driver_sql(
                "SELECT seq, actor, action, entity_id FROM audit_events ORDER BY seq"
            ).all()
    finally:
        s.dispose()
    return [tuple(map(str, r)) for r in (*version, *events)]


def test_a_copied_book_is_the_book_init_makes(
    db_url: str, book_templates: BookTemplates, request: pytest.FixtureRequest
) -> None:
    made = Tieout(db_url)
    made.ok("init")
    if db_url.startswith("sqlite:///"):
        copy_url = db_url.replace("book.db", "copy.db")
    else:
        copy_url = _pg_url(request.getfixturevalue("pg_database"))
    book_templates.fresh(copy_url, "cli")
    copied = Tieout(copy_url)

    assert _objects(copy_url) == _objects(db_url)
    rows = _rows(copy_url)
    assert rows == _rows(db_url)
    assert [r[1:3] for r in rows[1:]] == [("tester", "schema.upgrade")]
    assert copied.ok("audit", "verify", "--json").json()["ok"] is True
    # and it works as a book: the next audit event chains on, ids start where init left them
    copied.ok("account", "open", "A1", "--currency", "USD")
    copied.ok("cash", "deposit", "A1", "100")
    assert copied.ok("cash", "balance", "A1", "--json").json()["balance"] == "100"
    assert copied.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_copied_store_book_is_current(store: object) -> None:
    from oms.store import Store

    assert isinstance(store, Store)
    with store.read() as conn:  # Store.open checked the schema is current; it reads
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar() == 1


def test_pg_copies_do_not_share_sequences(pg_database: str, book_templates: BookTemplates) -> None:
    a, b = _pg_url(pg_database), _pg_url(pg_database)
    book_templates.fresh(a, "cli")
    book_templates.fresh(b, "cli")
    Tieout(a).ok("account", "open", "A1", "--currency", "USD")
    Tieout(a).ok("cash", "deposit", "A1", "100")
    Tieout(b).ok("account", "open", "B1", "--currency", "USD")
    with psycopg.connect(pg_database, autocommit=True) as conn:
        schemas = [parts[1] for parts in map(schema_of, (a, b)) if parts]
        counts = [
            conn.execute(f'SELECT count(*) FROM "{s}".audit_events').fetchone() for s in schemas
        ]
    assert counts == [(3,), (2,)]


def _paged(db_url: str) -> list[str]:
    """The tables of a PostgreSQL book with pages in their files: a new book's hold its rows."""
    conninfo, schema = schema_of(db_url) or ("", "")
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace"
            " AND relkind IN ('r', 'p') AND pg_relation_size(oid) > 0 ORDER BY relname",
            (schema,),
        ).fetchall()
    return [name for (name,) in rows]


def _schema(db_url: str) -> str:
    parts = schema_of(db_url)
    assert parts is not None
    return parts[1]


def test_a_recycled_pg_book_is_a_fresh_copy(
    pg_database: str, book_templates: BookTemplates, tmp_path: Path
) -> None:
    """A finished test's schema, used again (BookTemplates.recycle), is the copied book: the
    same objects, only the template's rows, and its sequences from their start."""
    fresh_url = _pg_url(pg_database)
    book_templates.fresh(fresh_url, "cli")
    used = _pg_url(pg_database)
    book_templates.fresh(used, "cli")
    t = Tieout(used)
    t.ok("account", "open", "A1", "--currency", "USD")
    t.ok("cash", "deposit", "A1", "100")
    t.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    bars = tmp_path / "bars.csv"
    bars.write_text(
        "time,symbol,open,high,low,close,volume\n2026-11-27T15:00:00Z,AAPL,10,10,10,10,100\n"
    )
    t.ok("md", "import", str(bars))  # an import: its sequence moves on
    # a job added and removed: a table with no rows left, but with pages, which a new book's
    # empty tables do not have (only tables with pages are truncated)
    added = run_tieout(
        *("schedule", "add", "eod", "--cron", "0 19 * * 1-5", "--db", used, "--"),
        *("risk", "show"),
        env={"TIEOUT_ACTOR": "tester"},
    )
    assert added.code == 0, added.err
    t.ok("schedule", "remove", "eod")
    conninfo, used_schema = schema_of(used) or ("", "")
    with psycopg.connect(conninfo) as conn:
        moved = conn.execute(f'SELECT is_called FROM "{used_schema}".imports_import_id_seq')
        assert moved.fetchone() == (True,)
        left = conn.execute(
            f'SELECT count(*), pg_relation_size(\'"{used_schema}".schedule_jobs\')'
            f' FROM "{used_schema}".schedule_jobs'
        ).fetchone()
        assert left is not None and left[0] == 0 and left[1] > 0, left
        used_oid = conn.execute("SELECT %s::regnamespace::oid", (used_schema,)).fetchone()
    spares = book_templates.spares.setdefault(conninfo, [])
    before = list(spares)
    book_templates.recycle(used)
    assert len(spares) == len(before) + 1, "the used book was not kept as a spare"
    again = _pg_url(pg_database)
    book_templates.fresh(again, "cli")
    assert spares == before, "the spare was not taken"

    assert _objects(again) == _objects(fresh_url)
    assert _rows(again) == _rows(fresh_url)
    assert _paged(again) == _paged(fresh_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        gone = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (used_schema,)
        ).fetchone()
        seqs = [
            conn.execute(f'SELECT last_value, is_called FROM "{schema}".imports_import_id_seq')
            .fetchall()
            for schema in (_schema(again), _schema(fresh_url))
        ]
        again_oid = conn.execute("SELECT %s::regnamespace::oid", (_schema(again),)).fetchone()
    assert gone == (0,)
    assert again_oid == used_oid, "the new book is not the recycled schema"
    assert seqs[0] == seqs[1] == [(1, False)]
    copied = Tieout(again)
    assert copied.ok("account", "list", "--json").json() == []
    assert copied.ok("audit", "verify", "--json").json()["ok"] is True
    copied.ok("account", "open", "B1", "--currency", "USD")
    copied.ok("cash", "deposit", "B1", "5")
    assert copied.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_pg_book_changed_in_shape_is_not_recycled(
    pg_database: str, book_templates: BookTemplates
) -> None:
    first = _pg_url(pg_database)
    book_templates.fresh(first, "cli")  # the shape of a copy is known from here on
    used = _pg_url(pg_database)
    book_templates.fresh(used, "cli")
    conninfo, schema = schema_of(used) or ("", "")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        trigger = conn.execute(
            "SELECT tgname, tgrelid::regclass::text FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relnamespace = %s::regnamespace AND NOT tgisinternal LIMIT 1",
            (schema,),
        ).fetchone()
        assert trigger is not None
        conn.execute(f'ALTER TABLE {trigger[1]} DISABLE TRIGGER "{trigger[0]}"')
    spares = list(book_templates.spares.get(conninfo, []))
    book_templates.recycle(used)
    assert book_templates.spares.get(conninfo, []) == spares
    with psycopg.connect(conninfo, autocommit=True) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
    assert kept == (1,)
