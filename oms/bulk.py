"""Reading many rows at once: a select's rows as a polars frame of text, without a Python object
per row or per value. Shared by the readers of the book that take a million rows (positions,
the book's side of a reconciliation).

- PostgreSQL: ``COPY (select) TO STDOUT`` as CSV, read by polars.
- SQLite: the rows are written as CSV lines inside SQLite (``group_concat``, one string per
  chunk of rows), read by polars. The DB-API cursor would make a tuple and an object per value.
- anything else: the DB-API cursor's tuples.

Both CSV paths follow PostgreSQL's COPY conventions: a NULL is an empty unquoted field, every
other value is quoted on SQLite (a quote doubled), so a text can hold commas, quotes and
newlines. Rows come back in no particular order: callers sort.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

import polars as pl
from sqlalchemy import Connection, String, cast, exc, func, literal, literal_column, select

# rows per string when one string of all rows would pass SQLite's limit (1e9 bytes by default)
SQLITE_CHUNK_ROWS: Final = 200_000


def text_frame(
    conn: Connection,
    query: Any,
    columns: Sequence[str],
    *,
    plain: Collection[str] = (),
) -> pl.DataFrame:
    """The rows of `query` (a select whose columns are, or are cast to, text; named by
    `columns`, in the select's order) as a frame of String columns, in no particular order.

    `plain` names columns whose text never holds a comma, a quote or a line break and is never
    empty (numbers, dates, times): SQLite leaves them unquoted, which is cheaper."""
    schema = dict.fromkeys(columns, pl.String())
    raw = conn.connection.driver_connection
    if raw is None:
        raise RuntimeError("no DBAPI connection")
    if conn.dialect.name == "postgresql":
        sql = _literal_sql(conn, query)
        buf = io.BytesIO()
        with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                buf.write(block)
        return _read_csv([buf.getvalue()], schema)
    if conn.dialect.name == "sqlite":
        return _read_csv(_sqlite_csv(conn, query, columns, plain), schema)
    cur = raw.cursor()
    try:
        cur.execute(_literal_sql(conn, query))
        rows = cur.fetchall()
    finally:
        cur.close()
    return pl.DataFrame(rows, schema=schema, orient="row")


def _literal_sql(conn: Connection, query: Any) -> str:
    return str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


def _sqlite_csv(
    conn: Connection, query: Any, columns: Sequence[str], plain: Collection[str]
) -> list[bytes]:
    """The query's rows as CSV text made by SQLite: one string, or, past SQLite's limit on a
    string's length, one string per SQLITE_CHUNK_ROWS rows (slower: SQLite sorts by chunk)."""
    rows = query.subquery()
    cells: list[Any] = [
        func.coalesce(cast(col, String), "")
        if name in plain
        else func.coalesce(
            literal('"') + func.replace(cast(col, String), '"', '""') + literal('"'), ""
        )
        for name, col in zip(columns, rows.c, strict=True)
    ]
    line: Any = cells[0]
    for cell in cells[1:]:
        line = line + literal(",") + cell
    whole = select(func.group_concat(line, literal("\n")))
    try:
        text = conn.execute(whole).scalar()
    except (exc.DataError, exc.OperationalError) as err:  # "string or blob too big"
        if "too big" not in str(err):
            raise
    else:
        return [text.encode()] if text else []
    numbered = select(
        line.label("line"),
        # integer division in SQLite: rows 0..CHUNK-1 make chunk 0, and so on
        literal_column(f"(row_number() OVER () - 1) / {SQLITE_CHUNK_ROWS}").label("chunk"),
    ).subquery()
    chunks = select(func.group_concat(numbered.c.line, literal("\n"))).group_by(numbered.c.chunk)
    return [text.encode() for (text,) in conn.execute(chunks) if text]


def _read_csv(parts: Sequence[bytes], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    frames = [
        pl.read_csv(part, has_header=False, new_columns=list(schema), schema=schema)
        for part in parts
        if part
    ]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def utc_text(col: pl.Expr) -> pl.Expr:
    """Times as text, stored by SQLite ('...Z') or cast by PostgreSQL ('... +00', '... +05:30',
    in the session's zone): any offset is read, the result is UTC with microseconds."""
    text = (
        col.str.replace(" ", "T", literal=True)
        .str.replace(r"Z$", "+00:00")
        .str.replace(r"([+-][0-9]{2})$", "${1}:00")
    )
    return text.str.to_datetime(format="%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", time_zone="UTC")
