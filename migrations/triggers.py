"""Database-enforced immutability of append-only tables, on SQLite and PostgreSQL.

SQLite: BEFORE UPDATE / BEFORE DELETE triggers that RAISE(ABORT), and a BEFORE INSERT trigger
that refuses a row whose key a stored row has (no_replace_triggers: REPLACE would delete the
stored row). PostgreSQL: a trigger function that raises, fired before UPDATE or DELETE of each
row and before TRUNCATE. Migrations call these so that every later table that must be
append-only gets the same protection: a new append-only table calls append_only_triggers and
then no_replace_triggers.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION tieout_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tieout: %% is append-only: %% refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql
"""


def append_only_triggers(bind: Connection, tables: Iterable[str]) -> None:
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(PG_FUNCTION)
        for t in tables:
            bind.exec_driver_sql(
                f'CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON "{t}" '
                "FOR EACH ROW EXECUTE FUNCTION tieout_refuse_change()"
            )
            bind.exec_driver_sql(
                f'CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON "{t}" '
                "FOR EACH STATEMENT EXECUTE FUNCTION tieout_refuse_change()"
            )
        return
    for t in tables:
        for op in ("UPDATE", "DELETE"):
            bind.exec_driver_sql(
                f'CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON "{t}" '
                f"BEGIN SELECT RAISE(ABORT, 'tieout: {t} is append-only: {op} refused'); END"
            )


def drop_append_only_triggers(bind: Connection, tables: Iterable[str]) -> None:
    for t in tables:
        if bind.dialect.name == "postgresql":
            bind.exec_driver_sql(f'DROP TRIGGER IF EXISTS {t}_append_only ON "{t}"')
            bind.exec_driver_sql(f'DROP TRIGGER IF EXISTS {t}_no_truncate ON "{t}"')
        else:
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {t}_no_update")
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {t}_no_delete")


def no_replace_triggers(bind: Connection, tables: Iterable[str]) -> None:
    """SQLite: a BEFORE INSERT trigger on each table that refuses a row whose primary key or
    unique key a stored row has. `INSERT OR REPLACE` (and `REPLACE`) resolves such a conflict
    by deleting the stored row, and SQLite fires no DELETE trigger for it (recursive_triggers
    is off by default): without this, an append-only row could be swapped for another. A plain
    insert that collides fails as before (an IntegrityError), with this message. The keys are
    read from the table as it is (the rowid's INTEGER PRIMARY KEY, and every unique index that
    is neither partial nor on an expression). PostgreSQL has no REPLACE; its upsert fires the
    UPDATE trigger."""
    if bind.dialect.name != "sqlite":
        return
    for t in tables:
        keys = _sqlite_keys(bind, t)
        if not keys:
            continue
        clash = " OR ".join(
            "EXISTS (SELECT 1 FROM \"{t}\" WHERE {cond})".format(
                t=t, cond=" AND ".join(f'"{c}" = NEW."{c}"' for c in cols)
            )
            for cols in keys
        )
        bind.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{t}_no_replace"')
        bind.exec_driver_sql(
            f'CREATE TRIGGER "{t}_no_replace" BEFORE INSERT ON "{t}" WHEN {clash} '
            f"BEGIN SELECT RAISE(ABORT, 'tieout: {t} is append-only: a row with this key "
            "exists (a REPLACE would delete it)'); END"
        )


def drop_no_replace_triggers(bind: Connection, tables: Iterable[str]) -> None:
    if bind.dialect.name != "sqlite":
        return
    for t in tables:
        bind.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{t}_no_replace"')


def sqlite_append_only_tables(bind: Connection) -> list[str]:
    """The tables that carry SQLite's append-only triggers (append_only_triggers)."""
    rows = bind.exec_driver_sql(
        "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = tbl_name || "
        "'_no_update' ORDER BY tbl_name"
    ).all()
    return [str(r[0]) for r in rows]


def _sqlite_keys(bind: Connection, table: str) -> list[tuple[str, ...]]:
    """The column sets a stored row of `table` must not share with a new one."""
    keys: list[tuple[str, ...]] = []
    info = bind.exec_driver_sql(f'PRAGMA table_info("{table}")').all()
    pk = tuple(str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
    if pk:
        keys.append(pk)
    for _, name, unique, _origin, partial in bind.exec_driver_sql(
        f'PRAGMA index_list("{table}")'
    ).all():
        if not unique or partial:
            continue
        cols = bind.exec_driver_sql(f'PRAGMA index_info("{name}")').all()
        if any(c[2] is None for c in cols):  # an expression
            continue
        names = tuple(str(c[2]) for c in sorted(cols, key=lambda c: c[0]))
        if names not in keys:
            keys.append(names)
    return keys
