"""Database-enforced immutability of append-only tables, on SQLite and PostgreSQL.

SQLite: BEFORE UPDATE / BEFORE DELETE triggers that RAISE(ABORT). PostgreSQL: a trigger function
that raises, fired before UPDATE or DELETE of each row and before TRUNCATE. Migrations call these
so that every later table that must be append-only gets the same protection.
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
