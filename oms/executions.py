"""Executions booked elsewhere: the canonical execution file, validated whole before anything
is written, then booked with their cash journal entries in one transaction. Re-importing rows
already booked (same venue and exec_id, same terms) changes nothing and says so."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pandera.polars as pa
import polars as pl
from sqlalchemy import Connection, select

from oms import audit, book, ledger, tabular
from oms.book import Ctx
from oms.calendars import settlement_date
from oms.errors import BadInput, RowError
from oms.lots import ExecRecord
from oms.schema import accounts, executions, imports, instruments
from oms.store import Store, bulk_insert, next_id
from oms.values import Side, dec_str, utc_iso

REQUIRED = ("exec_id", "account", "symbol", "side", "quantity", "price", "trade_date", "venue")
OPTIONAL = ("currency", "settle_date", "exec_time", "commission", "fees", "client_order_id")
COLUMNS = (*REQUIRED[:6], "currency", "trade_date", "settle_date", "exec_time", "venue",
           "commission", "fees", "client_order_id")  # the contract's column order
TERMS = ("account", "symbol", "side", "quantity", "price", "trade_date")
_DECIMAL_COLUMNS = ("quantity", "price", "commission", "fees")


@dataclass(frozen=True, slots=True)
class ImportResult:
    file: str
    sha256: str
    rows: int
    booked: int
    already_booked: int
    import_id: int | None

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "rows": self.rows,
                "booked": self.booked, "already_booked": self.already_booked,
                "import_id": self.import_id}


def _canonical_decimal(col: str) -> pl.Expr:
    return pl.col(col).str.replace(r"^(-?)0+([0-9])", "${1}${2}")


def _schema(account_ids: Sequence[str], symbols: Sequence[str]) -> pa.DataFrameSchema:
    t = tabular
    return pa.DataFrameSchema({
        "exec_id": t.text_column(t.ident_check),
        "account": t.text_column(t.known(account_ids, "account")),
        "symbol": t.text_column(t.known(symbols, "symbol")),
        "side": t.text_column(t.one_of(["buy", "sell"])),
        "quantity": t.text_column(t.decimal_check(positive=True)),
        "price": t.text_column(t.decimal_check(positive=True)),
        "trade_date": t.text_column(t.date_check()),
        "venue": t.text_column(t.ident_check),
        "currency": t.text_column(t.currency_check, required=False),
        "settle_date": t.text_column(t.date_check(), required=False),
        "exec_time": t.text_column(t.utc_time_check(), required=False),
        "commission": t.text_column(t.decimal_check(non_negative=True), required=False),
        "fees": t.text_column(t.decimal_check(non_negative=True), required=False),
        "client_order_id": t.text_column(t.ident_check, required=False),
    })


def _line(i: int) -> int:
    return i + tabular.HEADER_LINE + 1


def read_file(conn: Connection, path: str) -> tuple[tabular.TextFile, pl.DataFrame]:
    """Validate a canonical execution file against the schema and the reference data; return
    the frame in storage form, or raise BadFile with every row's error."""
    tf = tabular.read_csv(path, required=REQUIRED, optional=OPTIONAL)
    frame = tf.frame.with_columns(pl.col("side").str.to_lowercase())
    account_ids = list(conn.execute(select(accounts.c.account_id)).scalars())
    inst = {r.symbol: (r.exchange, r.currency) for r in conn.execute(
        select(instruments.c.symbol, instruments.c.exchange, instruments.c.currency))}
    errors = tabular.validate(tabular.TextFile(path, tf.sha256, frame), _schema(account_ids, list(inst)))
    errors += tabular.duplicate_rows(frame, ["venue", "exec_id"])
    bad_lines = {e.line for e in errors}
    frame = frame.with_columns(
        pl.col("trade_date").str.to_date("%Y-%m-%d", strict=False),
        pl.col("settle_date").str.to_date("%Y-%m-%d", strict=False),
        tabular.utc_time_expr("exec_time").dt.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").alias("exec_time"),
        *(_canonical_decimal(c) for c in _DECIMAL_COLUMNS),
    ).with_columns(pl.col("commission").fill_null("0"), pl.col("fees").fill_null("0"))
    # Checks across fields and against the calendar, on rows that passed the schema.
    settle_cache: dict[tuple[str, date], date | str] = {}
    settles: list[date | None] = []
    for i, r in enumerate(frame.iter_rows(named=True)):
        line = _line(i)
        if line in bad_lines:
            settles.append(None)
            continue
        exchange, currency = inst[r["symbol"]]
        if r["currency"] is not None and r["currency"] != currency:
            errors.append(RowError(line, "currency", r["currency"],
                                   f"{r['symbol']} trades in {currency}"))
        settle = r["settle_date"]
        if settle is None:
            key = (exchange, r["trade_date"])
            if key not in settle_cache:
                try:
                    settle_cache[key] = settlement_date(exchange, r["trade_date"])
                except BadInput as exc:
                    settle_cache[key] = exc.why
            found = settle_cache[key]
            if isinstance(found, str):
                errors.append(RowError(line, "trade_date", str(r["trade_date"]), found))
                settles.append(None)
                continue
            settle = found
        elif settle < r["trade_date"]:
            errors.append(RowError(line, "settle_date", str(settle),
                                   f"is before the trade date {r['trade_date']}"))
        settles.append(settle)
    errors.sort(key=lambda e: (e.line or 0, e.field or ""))
    tabular.refuse_if(path, errors)
    currency_of = pl.DataFrame({"symbol": list(inst), "_ccy": [c for _, c in inst.values()]})
    frame = (
        frame.with_columns(pl.Series("settle_date", settles, dtype=pl.Date))
        .join(currency_of, on="symbol", how="left", maintain_order="left")
        .with_columns(pl.col("currency").fill_null(pl.col("_ccy")))
        .drop("_ccy")
    )
    return tf, frame


def _already_booked(conn: Connection, frame: pl.DataFrame, path: str) -> set[tuple[str, str]]:
    """(venue, exec_id) of rows booked before; a row whose id is booked with other terms is an
    error that refuses the file."""
    e = executions.c
    keys = list(zip(frame["venue"].to_list(), frame["exec_id"].to_list(), strict=True))
    booked: dict[tuple[str, str], Any] = {}
    for venue in set(frame["venue"].to_list()):
        ids = [k[1] for k in keys if k[0] == venue]
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            for row in conn.execute(select(e.venue, e.exec_id, *(e[t] for t in TERMS))
                                    .where(e.venue == venue, e.exec_id.in_(chunk))):
                booked[(row.venue, row.exec_id)] = row
    if not booked:
        return set()
    errors = []
    for i, r in enumerate(frame.select("venue", "exec_id", *TERMS).iter_rows(named=True)):
        old = booked.get((r["venue"], r["exec_id"]))
        if old is None:
            continue
        for t in TERMS:
            new_v: Any = Decimal(r[t]) if t in ("quantity", "price") else r[t]
            if getattr(old, t) != new_v:
                errors.append(RowError(
                    _line(i), t, str(r[t]),
                    f"exec_id {r['exec_id']} at {r['venue']} is booked already with "
                    f"{t} {getattr(old, t)}; corrections are new records, never edits"))
    tabular.refuse_if(path, errors)
    return set(booked)


def import_file(store: Store, ctx: Ctx, path: str) -> ImportResult:
    with store.write() as conn:
        tf, frame = read_file(conn, path)
        seen = _already_booked(conn, frame, path)
        if seen:
            keep = [(v, x) not in seen for v, x in
                    zip(frame["venue"].to_list(), frame["exec_id"].to_list(), strict=True)]
            frame = frame.filter(pl.Series(keep))
        if frame.height == 0:
            return ImportResult(path, tf.sha256, tf.rows, 0, len(seen), None)
        import_id = conn.execute(imports.insert().values(
            kind="executions", file_name=path, sha256=tf.sha256, rows=tf.rows,
            accepted=frame.height, rejected=0, skipped=len(seen), at=ctx.now, actor=ctx.actor,
        ).returning(imports.c.import_id)).scalar_one()
        first_id = next_id(conn, executions, "id")
        booked_at = utc_iso(ctx.now)
        cols = ("id", "exec_id", "venue", "account", "symbol", "side", "quantity", "price",
                "currency", "trade_date", "settle_date", "exec_time", "commission", "fees",
                "client_order_id", "exec_type", "source", "import_id", "booked_at", "actor")
        ordered = frame.select(
            "exec_id", "venue", "account", "symbol", "side", "quantity", "price", "currency",
            pl.col("trade_date").dt.strftime("%Y-%m-%d"), pl.col("settle_date").dt.strftime("%Y-%m-%d"),
            "exec_time", "commission", "fees", "client_order_id",
        )
        extra = ("fill", "import", import_id, booked_at, ctx.actor)
        bulk_insert(conn, executions, cols,
                    ((first_id + i, *row, *extra) for i, row in enumerate(ordered.iter_rows())))
        entries = _trade_entries(ordered)
        book.post_entries(conn, ctx, entries,
                          execution_ids=range(first_id, first_id + frame.height))
        audit.append(conn, at=ctx.now, actor=ctx.actor, action="executions.import",
                     entity_type="import", entity_id=str(import_id),
                     payload={"file": path, "sha256": tf.sha256, "rows": tf.rows,
                              "booked": frame.height, "already_booked": len(seen),
                              "first_execution_id": first_id,
                              "last_execution_id": first_id + frame.height - 1})
        return ImportResult(path, tf.sha256, tf.rows, frame.height, len(seen), import_id)


def _trade_entries(ordered: pl.DataFrame) -> Iterator[ledger.Entry]:
    for (exec_id, venue, account, _sym, side, qty, price, ccy, _td, settle, _t, comm, fees,
         _cl) in ordered.iter_rows():
        yield ledger.trade(account, ccy, Side(side), Decimal(qty), Decimal(price), Decimal(comm),
                           Decimal(fees), date.fromisoformat(settle), f"{venue}:{exec_id}")


# ---- reading the book -----------------------------------------------------------------------

def _record(r: Any) -> ExecRecord:
    return ExecRecord(
        seq=r.id, venue=r.venue, exec_id=r.exec_id, account=r.account, symbol=r.symbol,
        side=Side(r.side), quantity=r.quantity, price=r.price, commission=r.commission,
        fees=r.fees, trade_date=r.trade_date, exec_time=r.exec_time, exec_type=r.exec_type,
        ref_exec_id=r.ref_exec_id,
    )


def records(
    conn: Connection, *, account: str | None = None, as_of: date | None = None,
    trade_date: date | None = None, symbol: str | None = None,
) -> list[ExecRecord]:
    e = executions.c
    q = select(executions).order_by(e.id)
    if account is not None:
        q = q.where(e.account == account)
    if symbol is not None:
        q = q.where(e.symbol == symbol)
    if as_of is not None:
        q = q.where(e.trade_date <= as_of)
    if trade_date is not None:
        q = q.where(e.trade_date == trade_date)
    return [_record(r) for r in conn.execute(q)]


def execution_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id, "exec_id": r.exec_id, "account": r.account, "symbol": r.symbol,
        "side": r.side, "quantity": dec_str(r.quantity), "price": dec_str(r.price),
        "currency": r.currency, "trade_date": r.trade_date.isoformat(),
        "settle_date": r.settle_date.isoformat(),
        "exec_time": utc_iso(r.exec_time) if r.exec_time else None, "venue": r.venue,
        "commission": dec_str(r.commission), "fees": dec_str(r.fees),
        "client_order_id": r.client_order_id, "order_id": r.order_id,
        "exec_type": r.exec_type, "ref_exec_id": r.ref_exec_id, "source": r.source,
        "booked_at": utc_iso(r.booked_at), "booked_by": r.actor,
    }


def list_executions(
    conn: Connection, *, account: str | None = None, trade_date: date | None = None
) -> list[dict[str, Any]]:
    e = executions.c
    q = select(executions).order_by(e.trade_date, e.id)
    if account is not None:
        book.get_account(conn, account)
        q = q.where(e.account == account)
    if trade_date is not None:
        q = q.where(e.trade_date == trade_date)
    return [execution_json(r) for r in conn.execute(q)]


__all__ = ["COLUMNS", "ImportResult", "import_file", "list_executions", "records"]
