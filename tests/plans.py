"""The plan a database makes for a query, as text: to show that a lookup uses its index (on
PostgreSQL with sequential and bitmap scans off, so that a small test table does not hide it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.sql import ClauseElement

from oms.store import Store


def query_plan(store: Store, query: ClauseElement, **values: Any) -> str:
    """`query`'s plan, with `values` for its bound parameters."""
    with store.read() as conn:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params(values or None)
        if store.dialect == "sqlite":
            assert compiled.positiontup is not None
            args: Any = tuple(
                v.isoformat() if isinstance(v, datetime) else v
                for v in (params[k] for k in compiled.positiontup)
            )
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args).all()
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            plan = conn.exec_driver_sql(f"EXPLAIN {compiled}", params).all()
    return " ".join(str(row) for row in plan)
