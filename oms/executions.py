"""Executions booked elsewhere: the canonical execution file, validated whole before anything
is written, then booked with their cash journal entries in one transaction. Re-importing rows
already booked (same venue and exec_id, same terms) changes nothing and says so."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy.types import NullType

from oms import audit, book, bulk, ledger, lots, tabular
from oms.book import Ctx
from oms.calendars import MAX_SETTLEMENT_SPAN, settlement_date
from oms.errors import BadInput, RowError
from oms.lots import ExecRecord
from oms.orders import PAPER, Event
from oms.schema import (
    CHANGES_WHERE,
    ROUTED_WHERE,
    accounts,
    executions,
    imports,
    instruments,
    order_client_ids,
    order_events,
)
from oms.schema import orders as orders_table
from oms.store import Store, bulk_insert, next_id
from oms.values import DECIMAL_PATTERN, Side, dec_str, utc_iso

if TYPE_CHECKING:
    import pandera.polars as pa

REQUIRED = ("exec_id", "account", "symbol", "side", "quantity", "price", "trade_date", "venue")
OPTIONAL = (
    "currency",
    "settle_date",
    "exec_time",
    "commission",
    "fees",
    "client_order_id",
    "exec_type",
    "ref_exec_id",  # tieout's extension: corrections and busts as new records
)
FILL, CORRECT, BUST = "fill", "correct", "bust"
PAPER_FILL_ID = r"^O[0-9]{8}-[0-9]+$"  # the paper venue's fill ids: O00000001-1
COLUMNS = (
    *REQUIRED[:6],
    "currency",
    "trade_date",
    "settle_date",
    "exec_time",
    "venue",
    "commission",
    "fees",
    "client_order_id",
)  # the contract's column order
TERMS = ("account", "symbol", "side", "quantity", "price", "trade_date")
# what a row may state or leave to a default: a re-import that states one is compared on it
STATED = ("commission", "fees", "settle_date")
# what a row says the record is (a fill, or a correction or bust of which execution): compared,
# where the row states it, with the record booked under that ExecID
KIND = ("exec_type", "ref_exec_id")
FUTURE_SKEW = timedelta(minutes=5)  # how far after now an exec_time may be (a clock's skew)
_DECIMAL_COLUMNS = ("quantity", "price", "commission", "fees")
ANALYZE_AFTER = 10_000  # rows of an import after which PostgreSQL's statistics are refreshed


@dataclass(frozen=True, slots=True)
class ImportResult:
    file: str
    sha256: str
    rows: int
    booked: int
    already_booked: int
    import_id: int | None
    # rows booked already whose trade is no longer in the book (busted since): to be chased
    warnings: tuple[RowError, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "rows": self.rows,
            "booked": self.booked,
            "already_booked": self.already_booked,
            "import_id": self.import_id,
            "warnings": [
                {"line": w.line, "field": w.field, "reason": w.reason} for w in self.warnings
            ],
        }


def _canonical_decimal(col: str) -> pl.Expr:
    return pl.col(col).str.replace(r"^(-?)0+([0-9])", "${1}${2}")


def _unpadded(col: str, keep: int = 0) -> pl.Expr:
    """A quantity's or price's text without the zeros after its point beyond `keep` places, as
    oms.values.unpadded: a quantity keeps none ("10.0000000" -> "10"), a price its cents
    ("100.00000000" -> "100.00", "415.10" stays), as do commission and fees. Before it is
    checked: a venue that pads to 18 places is not refused for the places (at most 12); and
    the cash of quantity x price does not carry the places of both (a balance of
    98998.500000000000000)."""
    digits = "[0-9]*?" if keep == 0 else f"[0-9]{{{keep}}}[0-9]*?"
    given = pl.col(col)
    out = given.str.replace(rf"^([0-9]+\.{digits})0+$", "${1}")
    out = out.str.replace(r"^([0-9]+)\.$", "${1}") if keep == 0 else out
    # a number once trimmed, and not zero: any other value keeps its text, for its error
    # message ("'0.000' must be greater than zero", as the file wrote it)
    readable = out.str.contains(DECIMAL_PATTERN) & out.str.contains("[1-9]")
    return pl.when(readable).then(out).otherwise(given)


def _schema(account_ids: Sequence[str], symbols: Sequence[str]) -> pa.DataFrameSchema:
    import pandera.polars as pa

    t = tabular
    return pa.DataFrameSchema(
        {
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
            "exec_type": t.text_column(t.one_of([FILL, CORRECT, BUST]), required=False),
            "ref_exec_id": t.text_column(t.ident_check, required=False),
        }
    )


def read_file(
    conn: Connection, path: str, latest: date | None = None, now: datetime | None = None
) -> tuple[tabular.TextFile, pl.DataFrame]:
    """Validate a canonical execution file against the schema and the reference data; return
    the frame in storage form, or raise BadFile with every row's error. `latest`: the latest
    trade date there can be (today's date anywhere on Earth); `now`: no exec_time after it
    (by more than a clock's skew). Blank lines are no rows. `paper` in any case is the paper
    venue, as an order names it; another venue the book knows in another case is refused."""
    tf = tabular.without_blank_rows(tabular.read_csv(path, required=REQUIRED, optional=OPTIONAL))
    frame = tf.frame.with_columns(
        pl.when(pl.col("venue").str.to_lowercase() == PAPER)
        .then(pl.lit(PAPER))
        .otherwise(pl.col("venue"))
        .alias("venue"),
        # what the row states, not the defaults: a re-import is compared on what it states
        *(pl.col(c).is_not_null().alias(f"_given_{c}") for c in (*STATED, *KIND)),
        pl.col("side").str.to_lowercase(),
        pl.col("currency").str.to_uppercase(),  # as `--currency usd` is
        pl.col("exec_type").str.to_lowercase().fill_null(FILL),
        _unpadded("quantity"),
        _unpadded("price", keep=2),
        _unpadded("commission", keep=2),
        _unpadded("fees", keep=2),
    )
    account_ids = list(conn.execute(select(accounts.c.account_id)).scalars())
    inst = {
        r.symbol: (r.exchange, r.currency)
        for r in conn.execute(
            select(instruments.c.symbol, instruments.c.exchange, instruments.c.currency)
        )
    }
    errors = tabular.validate(
        dataclasses.replace(tf, frame=frame), _schema(account_ids, list(inst))
    )
    errors += tabular.duplicate_rows(frame, ["venue", "exec_id"], tf.lines)
    errors += _venue_case_errors(conn, frame, tf.lines)
    lines = (
        pl.Series("_line", tf.lines, dtype=pl.UInt32)
        if tf.lines is not None
        else pl.int_range(
            tabular.HEADER_LINE + 1, pl.len() + tabular.HEADER_LINE + 1, dtype=pl.UInt32
        )
    )
    frame = (
        frame.with_columns(lines.alias("_line"))
        .with_columns(
            pl.col("trade_date").str.to_date("%Y-%m-%d", strict=False),
            pl.col("settle_date").str.to_date("%Y-%m-%d", strict=False),
            tabular.utc_time_expr("exec_time").alias("_exec_at"),
            tabular.utc_time_expr("exec_time")
            .dt.strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
            .alias("exec_time"),
            *(_canonical_decimal(c) for c in _DECIMAL_COLUMNS),
        )
        .with_columns(pl.col("commission").fill_null("0"), pl.col("fees").fill_null("0"))
    )
    ref = pl.DataFrame(
        {
            "symbol": list(inst),
            "_exchange": [x for x, _ in inst.values()],
            "_ccy": [c for _, c in inst.values()],
        },
        schema={"symbol": pl.String, "_exchange": pl.String, "_ccy": pl.String},
    )
    frame = frame.join(ref, on="symbol", how="left", maintain_order="left")
    # Checks across fields and against the calendar, on the rows that passed the schema.
    bad_lines = [e.line for e in errors if e.line is not None]
    ok = frame.filter(~pl.col("_line").is_in(bad_lines))
    errors += _frame_errors(
        ok.filter(pl.col("currency").is_not_null() & (pl.col("currency") != pl.col("_ccy"))),
        "currency",
        pl.format("{} trades in {}", "symbol", "_ccy"),
    )
    errors += _frame_errors(
        # (venue, exec_id) is unique: a row on the paper venue with an id of the form the
        # paper venue gives its own fills would take the id of an order's next fill there, and
        # every bar after would fail booking it (a trade the venue had that the book gets late
        # is imported on it under an id of its own)
        ok.filter((pl.col("venue") == PAPER) & pl.col("exec_id").str.contains(PAPER_FILL_ID)),
        "exec_id",
        pl.lit(
            f"has the form of the {PAPER} venue's own fill ids (an order id, a dash, a "
            "number), which it gives the fills it books: import the trade under another id"
        ),
    )
    if now is not None:
        errors += _frame_errors(
            ok.filter(pl.col("_exec_at") > now + FUTURE_SKEW),
            "exec_time",
            pl.lit(f"is after now ({utc_iso(now)}): an execution is not booked before it "
                   "happens"),
        )  # fmt: skip
    if latest is not None:
        errors += _frame_errors(
            ok.filter(pl.col("trade_date") > latest),
            "trade_date",
            pl.lit(f"is after today ({latest.isoformat()} where it is latest): a trade is not "
                   "booked before it happens"),
        )  # fmt: skip
    errors += _frame_errors(
        ok.filter(pl.col("settle_date") < pl.col("trade_date")),
        "settle_date",
        pl.format("is before the trade date {}", pl.col("trade_date").dt.strftime("%Y-%m-%d")),
    )
    errors += _frame_errors(
        ok.filter(
            (pl.col("settle_date") - pl.col("trade_date")).dt.total_days() > MAX_SETTLEMENT_SPAN
        ),
        "settle_date",
        pl.format(
            "is more than a year after the trade date {}: no trade the book takes settles "
            "that late",
            pl.col("trade_date").dt.strftime("%Y-%m-%d"),
        ),
    )
    errors += _frame_errors(
        ok.filter((pl.col("exec_type") != FILL) & pl.col("ref_exec_id").is_null()),
        "ref_exec_id",
        pl.format("a {} names the execution it changes here", "exec_type"),
    )
    errors += _frame_errors(
        ok.filter((pl.col("exec_type") == FILL) & pl.col("ref_exec_id").is_not_null()),
        "ref_exec_id",
        pl.lit("only a correct or bust row names the execution it changes"),
    )
    settle_of: list[tuple[str, date, date | None, str | None]] = []
    for exchange, day in (
        ok.filter(pl.col("settle_date").is_null())
        .select("_exchange", "trade_date")
        .unique()
        .iter_rows()
    ):
        try:
            cycle = book.settlement_days(conn, exchange)
            settle_of.append((exchange, day, settlement_date(exchange, day, cycle), None))
        except BadInput as exc:
            settle_of.append((exchange, day, None, exc.why))
    defaults = pl.DataFrame(
        settle_of,
        orient="row",
        schema={
            "_exchange": pl.String,
            "trade_date": pl.Date,
            "_settle": pl.Date,
            "_why": pl.String,
        },
    )
    frame = frame.join(defaults, on=["_exchange", "trade_date"], how="left", maintain_order="left")
    errors += _frame_errors(
        frame.filter(pl.col("_why").is_not_null() & pl.col("settle_date").is_null()),
        "trade_date",
        pl.col("_why"),
    )
    errors.sort(key=lambda e: (e.line or 0, e.field or ""))
    tabular.refuse_if(path, errors)
    frame = frame.with_columns(
        pl.col("settle_date").fill_null(pl.col("_settle")),
        pl.col("currency").fill_null(pl.col("_ccy")),
    ).drop("_exchange", "_ccy", "_settle", "_why", "_exec_at")
    return tf, frame  # with `_line`: the physical line of each row in the file


# the venues of the executions, one index probe each (a loose scan of uq_executions_venue_exec_id:
# a book of millions of executions has a handful of venues), and of the orders
_VENUES_BOOKED = text(
    "WITH RECURSIVE v(venue) AS (SELECT min(venue) FROM executions UNION ALL "
    "SELECT (SELECT min(e.venue) FROM executions e WHERE e.venue > v.venue) FROM v "
    "WHERE v.venue IS NOT NULL) SELECT venue FROM v"
)
# the same over the orders routed to external venues (the partial index ix_orders_routed_venue)
_VENUES_ROUTED = text(
    f"WITH RECURSIVE v(venue) AS (SELECT min(venue) FROM orders WHERE {ROUTED_WHERE} UNION ALL "
    f"SELECT (SELECT min(o.venue) FROM orders o WHERE {ROUTED_WHERE.replace('venue', 'o.venue')} "
    "AND o.venue > v.venue) FROM v WHERE v.venue IS NOT NULL) SELECT venue FROM v"
)


def venue_spellings(conn: Connection) -> dict[str, set[str]]:
    """The venues the book knows (executions booked, orders routed), by their name in lower
    case: the spellings each is written in. Two loose index scans: a few probes a venue."""
    known: dict[str, set[str]] = {}
    for venue in (*conn.execute(_VENUES_BOOKED).scalars(), *conn.execute(_VENUES_ROUTED).scalars()):
        if venue is not None:
            known.setdefault(venue.lower(), set()).add(venue)
    return known


def another_spelling(venue: str, known: dict[str, set[str]]) -> str | None:
    """Why `venue` is refused when the book knows that venue only in other spellings (ACME, not
    acme): venue names are matched as written, so its executions would be booked again under
    the new spelling. None when the book has this spelling or does not know the venue."""
    spelled = known.get(venue.lower(), set())
    if not spelled or venue in spelled:
        return None
    shown = " or ".join(sorted(spelled))
    return (
        f"the book knows this venue as {shown}: venue names are matched as written, and the "
        f"same venue's executions under another spelling would be booked again; write {shown}"
    )


def _other_spellings(conn: Connection, venues: set[str]) -> dict[str, list[str]]:
    """For each of `venues`, the other spellings (case) the book's executions have it in."""
    booked = [v for v in conn.execute(_VENUES_BOOKED).scalars() if v is not None]
    out: dict[str, list[str]] = {}
    for venue in venues:
        others = [v for v in booked if v.lower() == venue.lower() and v != venue]
        if others:
            out[venue] = others
    return out


def booked_in_another_spelling(conn: Connection, venue: str, exec_id: str) -> str | None:
    """The spelling of `venue` under which `exec_id` is booked already, if another than
    `venue` (a book that came to have a venue in two cases: orders routed to acme and to ACME);
    None if none. One index probe a spelling."""
    others = _other_spellings(conn, {venue}).get(venue)
    return _booked_under(conn, others, exec_id) if others else None


def _booked_under(conn: Connection, spellings: Sequence[str], exec_id: str) -> str | None:
    """The one of `spellings` under which `exec_id` is booked, if any."""
    e = executions.c
    found = conn.execute(
        select(e.venue)
        .where(e.venue.in_(spellings), e.exec_id == exec_id)
        .order_by(e.id)  # the first booked (the same one every time)
        .limit(1)
    ).scalar()
    return None if found is None else str(found)


def _booked_in_other_spellings(conn: Connection, frame: pl.DataFrame, path: str) -> None:
    """Refuse rows whose exec_id is booked already under another spelling of their venue."""
    venues = {v for v in frame["venue"].drop_nulls().unique().to_list() if v != PAPER}
    others = _other_spellings(conn, venues)
    if not others:
        return
    errors = []
    for line, venue, exec_id in frame.select("_line", "venue", "exec_id").rows():
        if venue in others:
            found = _booked_under(conn, others[venue], exec_id)
            if found is not None:
                errors.append(
                    RowError(
                        line,
                        "exec_id",
                        exec_id,
                        f"is booked already at venue {found}, the same venue as {venue} in "
                        "another spelling: venue names are matched as written, and it would "
                        "be booked twice",
                    )
                )
    tabular.refuse_if(path, errors)


def _venue_case_errors(
    conn: Connection, frame: pl.DataFrame, lines: Sequence[int] | None
) -> list[RowError]:
    """Rows naming a venue in a spelling the book does not have while it has the venue in
    another case (ACME as acme), or in another case than other rows of the file: (venue,
    exec_id) is matched as written, so the same venue's execution would be booked a second
    time under the other spelling. A spelling the book has is never refused (a book that came
    to have two is corrected in the spelling each execution has)."""
    venues = frame["venue"].to_list()
    named = {v for v in venues if v is not None and v != PAPER}
    if not named:
        return []
    known = venue_spellings(conn)
    in_file: dict[str, set[str]] = {}
    for venue in named:
        in_file.setdefault(venue.lower(), set()).add(venue)
    why: dict[str, str] = {}
    for venue in named:
        refused = another_spelling(venue, known)
        if refused is not None:
            why[venue] = refused
        elif venue.lower() not in known and len(in_file[venue.lower()]) > 1:
            others = " and ".join(sorted(in_file[venue.lower()]))
            why[venue] = (
                f"the file writes this venue as {others}: venue names are matched as written, "
                "and one venue under two spellings would book the same execution twice; write "
                "it one way"
            )
    return [
        RowError(tabular.line_of(i, lines), "venue", venue, why[venue])
        for i, venue in enumerate(venues)
        if venue in why
    ]


def _frame_errors(rows: pl.DataFrame, field: str, reason: pl.Expr) -> list[RowError]:
    shown = rows.select(
        "_line", pl.col(field).cast(pl.String).alias("_value"), reason.alias("_reason")
    )
    return [RowError(line, field, value, why) for line, value, why in shown.iter_rows()]


def _already_booked(
    conn: Connection, frame: pl.DataFrame, path: str
) -> tuple[set[tuple[str, str]], list[RowError]]:
    """(venue, exec_id) of rows booked before, and warnings for those of them whose trade was
    busted since; a row whose id is booked with other terms is an error that refuses the file.
    The file's keys go to a temporary table and are joined there: one query whatever the size
    of the book or the file."""
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS tieout_import_keys "
        "(venue VARCHAR(32) NOT NULL, exec_id VARCHAR(64) NOT NULL)"
    )
    conn.exec_driver_sql("DELETE FROM tieout_import_keys")
    keys = Table(
        "tieout_import_keys", MetaData(), Column("venue", String), Column("exec_id", String)
    )
    bulk_insert(conn, keys, ("venue", "exec_id"), frame.select("venue", "exec_id"))
    e = executions.c
    found = conn.execute(
        select(
            e.venue, e.exec_id, e.exec_type, e.ref_exec_id, *(e[t] for t in (*TERMS, *STATED))
        ).join_from(executions, keys, and_(keys.c.venue == e.venue, keys.c.exec_id == e.exec_id))
    ).all()
    conn.exec_driver_sql("DELETE FROM tieout_import_keys")
    if not found:
        return set(), []
    booked = {(row.venue, row.exec_id): row for row in found}
    errors: list[RowError] = []
    given = [f"_given_{t}" for t in (*STATED, *KIND)]
    stated = ("_line", "venue", "exec_id", *TERMS, *STATED, *KIND, *given)
    rows = frame.select(*stated).iter_rows(named=True)
    differing = []
    same = []
    for r in rows:
        old = booked.get((r["venue"], r["exec_id"]))
        if old is not None and _differences(r, old):
            differing.append((r, old))
        elif old is not None and old.exec_type == FILL:
            same.append((r, old))
    if differing:
        now = _deciding_records(conn, [old for _, old in differing])
        for r, old in differing:
            decided = now.get((old.venue, old.exec_id))
            if decided is not None and decided.exec_type == CORRECT:
                # the trade as its venue corrected it is what the file must state (and the
                # record what the one of that ExecID is)
                errors += [_booked_error(r, t, old, "") for t in _differences(r, old, terms=False)]
                for t in _differences(r, decided, kind=False):
                    now_t = f", corrected since by {decided.exec_id} to {t} "
                    errors.append(_booked_error(r, t, old, now_t + _shown(getattr(decided, t))))
                continue
            busted = "" if decided is None else f", busted since by {decided.exec_id}"
            errors += [_booked_error(r, t, old, busted) for t in _differences(r, old)]
    tabular.refuse_if(path, errors)
    return set(booked), _busted_since(conn, same)


def _busted_since(conn: Connection, rows: Sequence[tuple[Any, Any]]) -> list[RowError]:
    """Warnings for rows that restate a fill, as booked, whose trade a bust took out of the
    book since: "booked already" would read as if the trade were in the book. (A venue that
    restates a busted trade sends it under an ExecID of its own.) Looked at only when the
    venues have busts at all: a re-import of a large file reads nothing more."""
    if not rows:
        return []
    e = executions.c
    venues = sorted({old.venue for _, old in rows})
    any_bust = select(e.id).where(e.exec_type == BUST, e.venue.in_(venues)).limit(1)
    if conn.execute(any_bust).first() is None:
        return []
    decided = _deciding_records(conn, [old for _, old in rows])
    out = []
    for r, old in rows:
        now = decided.get((old.venue, old.exec_id))
        if now is not None and now.exec_type == BUST:
            out.append(
                RowError(
                    r["_line"],
                    "exec_id",
                    r["exec_id"],
                    f"exec_id {r['exec_id']} at {r['venue']} is booked already and was busted "
                    f"since by {now.exec_id}: the trade is not in the book (a trade the venue "
                    "restates comes under an exec_id of its own)",
                )
            )
    return sorted(out, key=lambda w: w.line or 0)


def _booked_error(row: Mapping[str, Any], term: str, old: Any, since: str) -> RowError:
    return RowError(
        row["_line"],
        term,
        str(row[term]),
        f"exec_id {row['exec_id']} at {row['venue']} is booked already with {term} "
        f"{_shown(getattr(old, term))}{since}; corrections are new records, never edits",
    )


def _differences(
    row: Mapping[str, Any], booked: Any, *, terms: bool = True, kind: bool = True
) -> list[str]:
    """What a file's row states otherwise than a booked record: its terms (the stated costs
    and settlement date only where the row states them) and what record it is (a fill, or a
    correction or bust of which execution: where stated; a venue file restating E1 as the bust
    of another execution was "booked already")."""
    out = []
    compared = (*TERMS, *STATED) if terms else ()
    if kind:
        compared = (*compared, *KIND)
    for t in (t for t in compared if t in TERMS or row[f"_given_{t}"]):
        new_v: Any = Decimal(row[t]) if t in _DECIMAL_COLUMNS else row[t]
        if getattr(booked, t) != new_v:
            out.append(t)
    return out


def _deciding_records(conn: Connection, records: Sequence[Any]) -> dict[tuple[str, str], Any]:
    """(venue, exec_id) of each of these booked records that a correction or bust replaced ->
    the record that decides its trade now (superseded_by), with its terms."""
    replaced = superseded_by(
        conn, ((r.venue, r.exec_id, r.exec_type, r.ref_exec_id) for r in records)
    )
    if not replaced:
        return {}
    e = executions.c
    keys = sorted({(v, x) for (v, _), x in replaced.items()})
    found = {}
    for start in range(0, len(keys), 500):  # (PostgreSQL takes at most 65,535 parameters)
        for row in conn.execute(
            select(e.venue, e.exec_id, e.exec_type, *(e[t] for t in (*TERMS, *STATED))).where(
                tuple_(e.venue, e.exec_id).in_(keys[start : start + 500])
            )
        ):
            found[(row.venue, row.exec_id)] = row
    return {key: found[(key[0], x)] for key, x in replaced.items() if (key[0], x) in found}


def _shown(value: Any) -> str:
    return dec_str(value) if isinstance(value, Decimal) else str(value)


def _refuse_fills_of_orders(conn: Connection, frame: pl.DataFrame, path: str) -> None:
    """Refuse fills whose client_order_id names one of the account's orders, at its venue, in
    its symbol and side: tieout keeps that order, and its fills come from its venue's execution
    reports (`exec apply`; on the paper venue, tieout's own), which move its quantity, status
    and reservation with them.
    Booked here they would be a position the order never hears of (and the venue's report of
    the same fill is then refused as booked already)."""
    fills = frame.filter((pl.col("exec_type") == FILL) & pl.col("client_order_id").is_not_null())
    if fills.height == 0:
        return
    # the file's (account, client_order_id) pairs go to a temporary table and are joined there:
    # one query whatever the size of the file (as _already_booked)
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS tieout_import_clients "
        "(account VARCHAR(64) NOT NULL, client_order_id VARCHAR(64) NOT NULL)"
    )
    conn.exec_driver_sql("DELETE FROM tieout_import_clients")
    keys = Table(
        "tieout_import_clients",
        MetaData(),
        Column("account", String),
        Column("client_order_id", String),
    )
    pairs = fills.select("account", "client_order_id").unique()
    bulk_insert(conn, keys, ("account", "client_order_id"), pairs)
    c, k = order_client_ids.c, keys.c
    o = orders_table.c
    named: dict[tuple[str, str], tuple[str, str, str, str]] = {
        (account, client_id): (order_id, venue, symbol, side)
        for account, client_id, order_id, venue, symbol, side in conn.execute(
            select(c.account, c.client_order_id, c.order_id, o.venue, o.symbol, o.side)
            .join_from(
                order_client_ids,
                keys,
                and_(k.account == c.account, k.client_order_id == c.client_order_id),
            )
            .join(orders_table, orders_table.c.order_id == c.order_id)
        )
    }
    conn.exec_driver_sql("DELETE FROM tieout_import_clients")
    if not named:
        return
    errors = []
    rows = fills.select("_line", "account", "client_order_id", "venue", "symbol", "side").rows()
    for line, account, client_id, venue, symbol, side in rows:
        found = named.get((account, client_id))
        # that order's fill only at its venue, in its symbol and side: another system's id that
        # happens to be the same is no claim on the order
        # (the venue in any case: a book may have come to have it in two spellings)
        if found is not None and (venue.lower(), symbol, side) == (
            found[1].lower(),
            *found[2:],
        ):
            order_id = found[0]
            source = (
                "the paper venue's fills, which tieout books itself"
                if venue == PAPER
                else f"{venue}'s execution reports (tieout exec apply)"
            )
            errors.append(
                RowError(
                    line,
                    "client_order_id",
                    client_id,
                    f"names order {order_id} of {account}, which tieout keeps: its fills come "
                    f"from {source}, so that its quantity, status and reservation follow them",
                )
            )
    tabular.refuse_if(path, errors)


def import_file(store: Store, ctx: Ctx, path: str) -> ImportResult:
    with store.write() as conn:
        # the date somewhere on Earth (UTC+14) may be a day ahead of UTC's
        latest = (ctx.now.astimezone(UTC) + timedelta(hours=14)).date()
        tf, frame = read_file(conn, path, latest, ctx.now)
        _booked_in_other_spellings(conn, frame, path)
        seen, warnings = _already_booked(conn, frame, path)
        if seen:
            keep = [
                (v, x) not in seen
                for v, x in zip(frame["venue"].to_list(), frame["exec_id"].to_list(), strict=True)
            ]
            frame = frame.filter(pl.Series(keep))
        _refuse_fills_of_orders(conn, frame, path)
        if frame.height == 0:
            return ImportResult(path, tf.sha256, tf.rows, 0, len(seen), None, tuple(warnings))
        import_id = conn.execute(
            imports.insert()
            .values(
                kind="executions",
                file_name=path,
                sha256=tf.sha256,
                rows=tf.rows,
                accepted=frame.height,
                rejected=0,
                skipped=len(seen),
                at=ctx.now,
                actor=ctx.actor,
            )
            .returning(imports.c.import_id)
        ).scalar_one()
        first_id = next_id(conn, executions, "id")
        booked_at = utc_iso(ctx.now)
        ordered = frame.select(
            "exec_id",
            "venue",
            "account",
            "symbol",
            "side",
            "quantity",
            "price",
            "currency",
            pl.col("trade_date").dt.strftime("%Y-%m-%d"),
            pl.col("settle_date").dt.strftime("%Y-%m-%d"),
            "exec_time",
            "commission",
            "fees",
            "client_order_id",
            "exec_type",
            "ref_exec_id",
        )
        rows = ordered.with_row_index("id", offset=first_id).with_columns(
            pl.lit("import").alias("source"),
            pl.lit(import_id).alias("import_id"),
            pl.lit(booked_at).alias("booked_at"),
            pl.lit(ctx.actor).alias("actor"),
        )
        adjustments = _adjustment_totals(
            conn, rows, frame["_line"].to_list(), path
        )  # reads the book before the insert
        bulk_insert(conn, executions, rows.columns, rows)
        if conn.dialect.name == "postgresql" and frame.height >= ANALYZE_AFTER:
            # fresh planner statistics for what a bulk load changed (the autovacuum daemon
            # would take its time): an order's position read then takes the primary key's
            # range after its running sum, not the account's whole index (oms.submission)
            conn.exec_driver_sql("ANALYZE executions")
        entries = settlement_entries(
            rows.filter(pl.col("exec_type") == FILL), f"import:{import_id}", adjustments
        )
        entry_ids = book.post_entries(conn, ctx, entries)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="executions.import",
            entity_type="import",
            entity_id=str(import_id),
            payload={
                "file": path,
                "sha256": tf.sha256,
                "rows": tf.rows,
                "booked": frame.height,
                "already_booked": len(seen),
                "first_execution_id": first_id,
                "last_execution_id": first_id + frame.height - 1,
                "journal_entries": entry_ids,
            },
        )
        return ImportResult(
            path, tf.sha256, tf.rows, frame.height, len(seen), import_id, tuple(warnings)
        )


Batches = dict[tuple[str, str, str], ledger.SettlementTotals]


def settlement_entries(
    fills: pl.DataFrame, ref: str, batches: Batches | None = None
) -> list[ledger.Entry]:
    """The cash journal of an import: one settlement entry per account, currency and settlement
    date (a settlement batch), exact sums of every trade's gross amount and costs (plus the
    changes that corrections and busts make, when given)."""
    batches = dict(batches or {})
    cols = fills.select(
        "account", "currency", "settle_date", "side", "quantity", "price", "commission", "fees"
    )
    buy = Side.BUY
    for account, ccy, settle, side, qty, price, comm, fees in cols.iter_rows():
        key = (account, ccy, settle)
        totals = batches.get(key)
        if totals is None:
            totals = batches[key] = ledger.SettlementTotals()
        totals.add(
            buy if side == "buy" else Side.SELL,
            Decimal(qty),
            Decimal(price),
            Decimal(comm),
            Decimal(fees),
        )
    return [
        ledger.settlement(a, c, date.fromisoformat(d), t, ref)
        for (a, c, d), t in sorted(batches.items())
    ]


def _file_record(r: dict[str, Any]) -> ExecRecord:
    return ExecRecord(
        seq=r["id"],
        venue=r["venue"],
        exec_id=r["exec_id"],
        account=r["account"],
        symbol=r["symbol"],
        side=Side(r["side"]),
        quantity=Decimal(r["quantity"]),
        price=Decimal(r["price"]),
        commission=Decimal(r["commission"]),
        fees=Decimal(r["fees"]),
        trade_date=date.fromisoformat(r["trade_date"]),
        exec_time=None,
        exec_type=r["exec_type"],
        ref_exec_id=r["ref_exec_id"],
        currency=r["currency"],
        settle_date=date.fromisoformat(r["settle_date"]),
    )


def _adjustment_totals(
    conn: Connection, rows: pl.DataFrame, lines: Sequence[int], path: str
) -> Batches:
    """What the file's corrections and busts change in the cash journal: for every execution
    they touch, its effective terms before the file are taken back and its terms after it are
    booked (none for a bust). A reference must name an execution of the same venue, account and
    symbol booked before it (earlier in the book or in the file); else the file is refused."""
    adjust = rows.filter(pl.col("exec_type") != FILL)
    if adjust.height == 0:
        return {}
    pairs = adjust.select("account", "symbol").unique().rows()
    stored = [
        rec for account, symbol in pairs for rec in records(conn, account=account, symbol=symbol)
    ]
    new = [
        _file_record(r)
        for r in rows.filter(
            pl.struct("account", "symbol").is_in([{"account": a, "symbol": s} for a, s in pairs])
        ).iter_rows(named=True)
    ]
    known = {(r.venue, r.exec_id): r for r in stored}
    of_orders = _order_fills(conn, {r.ref_exec_id for r in new if r.ref_exec_id})
    errors = []
    for rec in sorted(new, key=lambda r: r.seq):
        key = (rec.venue, rec.ref_exec_id or "")
        target = known.get(key)
        line = lines[rec.seq - rows["id"][0]]
        if rec.exec_type != FILL and (
            target is None or (target.account, target.symbol) != (rec.account, rec.symbol)
        ):
            errors.append(
                RowError(
                    line,
                    "ref_exec_id",
                    rec.ref_exec_id,
                    f"names no execution of {rec.account} in {rec.symbol} at {rec.venue} "
                    "booked before it",
                )
            )
        elif rec.exec_type != FILL and key in of_orders:
            order_id, client_id = of_orders[key]
            how = (
                "the paper venue's fills are final"
                if rec.venue == "paper"
                else f"correct or bust it with {rec.venue}'s execution report (tieout exec "
                "apply), which recomputes the order with its position and cash"
            )
            errors.append(
                RowError(
                    line,
                    "ref_exec_id",
                    rec.ref_exec_id,
                    f"is a fill of order {order_id} ({client_id}): {how}",
                )
            )
        known[(rec.venue, rec.exec_id)] = rec
    tabular.refuse_if(path, errors)
    before = {
        (f.venue, f.exec_id): f
        for f in lots.effective_fills([*stored, *(r for r in new if r.exec_type == FILL)])
    }
    after = {(f.venue, f.exec_id): f for f in lots.effective_fills([*stored, *new])}
    batches: Batches = {}
    for key in before.keys() | after.keys():
        old, now = before.get(key), after.get(key)
        if old == now:
            continue
        for version, sign in ((old, -1), (now, 1)):
            if version is None:
                continue
            if version.currency is None or version.settle_date is None:
                raise RuntimeError(f"execution {key} lacks currency or settlement date")
            batch = (version.account, version.currency, version.settle_date.isoformat())
            batches.setdefault(batch, ledger.SettlementTotals()).add(
                version.side,
                version.quantity,
                version.price,
                version.commission,
                version.fees,
                sign,
            )
    return batches


def _order_fills(conn: Connection, exec_ids: set[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """Which of these executions (by venue and ExecID) an order booked (a fill from a FIX drop
    copy or the paper venue, or a venue's correction of one): their order and client order ids.
    Only `exec apply` may change those: it recomputes the order with the fill."""
    e = executions.c
    found: dict[tuple[str, str], tuple[str, str]] = {}
    listed = sorted(exec_ids)
    for start in range(0, len(listed), 500):
        part = listed[start : start + 500]
        for venue, exec_id, order_id, client_id in conn.execute(
            select(e.venue, e.exec_id, e.order_id, e.client_order_id).where(
                e.exec_id.in_(part), e.order_id.is_not(None)
            )
        ):
            found[(venue, exec_id)] = (order_id, client_id or "")
    # a fill `exec import` booked that a drop copy then counted on its order
    for key, (order_id, client_id) in counted_on(conn, exec_ids).items():
        found.setdefault(key, (order_id, client_id or ""))
    return found


def counted_on(conn: Connection, exec_ids: Iterable[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(venue, ExecID) -> (order id, its client order id) of the orders that counted these
    ExecIDs as fills (their fill_applied events; ix_order_events_exec_id): not an order whose
    other report (an acknowledgement) carried the same id."""
    ev, o = order_events.c, orders_table.c
    found: dict[tuple[str, str], tuple[str, str]] = {}
    listed = sorted(set(exec_ids))
    for start in range(0, len(listed), 500):
        for venue, exec_id, order_id, client_id in conn.execute(
            select(o.venue, ev.exec_id, o.order_id, o.client_order_id)
            .select_from(order_events)
            .join(orders_table, o.order_id == ev.order_id)
            .where(
                ev.exec_id.is_not(None),
                ev.exec_id.in_(listed[start : start + 500]),
                ev.event == Event.FILL_APPLIED.value,
            )
        ):
            found.setdefault((venue, exec_id), (order_id, client_id))
    return found


def with_counting_orders(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Executions as `execution_json` gives them, with the order a fill booked by `exec
    import` was counted on afterwards (its drop copy came second: the row, append-only, names
    no order): order_id, and client_order_id where the row has none; and superseded_by, the
    correction or bust that decides a replaced execution's trade now. Changed in place."""
    replaced = superseded_by(
        conn, ((r["venue"], r["exec_id"], r["exec_type"], r["ref_exec_id"]) for r in rows)
    )
    for r in rows:
        r["superseded_by"] = replaced.get((r["venue"], r["exec_id"]))
    orphans = [r for r in rows if r["order_id"] is None and r["exec_type"] == FILL]
    if orphans:
        counted = counted_on(conn, (r["exec_id"] for r in orphans))
        for r in orphans:
            found = counted.get((r["venue"], r["exec_id"]))
            if found is not None:
                r["order_id"] = found[0]
                if r["client_order_id"] is None:
                    r["client_order_id"] = found[1]
    return rows


_ANY_CHANGE = text(f"SELECT 1 FROM executions WHERE {CHANGES_WHERE} LIMIT 1")  # (its index)


def superseded_by(
    conn: Connection, rows: Iterable[tuple[str, str, str, str | None]]
) -> dict[tuple[str, str], str]:
    """Of these executions ((venue, exec_id, exec_type, ref_exec_id) each), those a later
    correction or bust replaced -> the ExecID of the record that decides their trade now: the
    latest of its chain (oms.lots.effective_fills: a chain of corrections and busts resolves
    to the original fill, and its latest record decides). A listing by date shows a fill whose
    correction moved it to another date; this says it is not the trade's present terms."""
    e = executions.c
    if conn.execute(_ANY_CHANGE).first() is None:  # a book without corrections or busts
        return {}
    listed, parent = _chains_up(conn, rows)

    def root(key: tuple[str, str]) -> tuple[str, str]:
        return _root(parent, key)

    # down: every change of those originals, of their changes, ...: the latest decides
    roots = {root(k) for k in listed}
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    frontier = set(roots)
    known: set[tuple[str, str]] = set(frontier)
    while frontier:
        found_ids = _changes_named(conn, e.ref_exec_id, frontier, ref=True)
        frontier = set()
        for row_id, venue, exec_id, ref in found_ids:
            parent.setdefault((venue, exec_id), (venue, ref))
            top = root((venue, exec_id))
            if top not in latest or row_id > latest[top][0]:
                latest[top] = (row_id, exec_id)
            if (venue, exec_id) not in known:
                known.add((venue, exec_id))
                frontier.add((venue, exec_id))
    out = {}
    for key in listed:
        decided = latest.get(root(key))
        if decided is not None and decided[1] != key[1]:
            out[key] = decided[1]
    return out


Key = tuple[str, str]  # (venue, exec_id)


def _chains_up(
    conn: Connection, rows: Iterable[tuple[str, str, str, str | None]]
) -> tuple[list[Key], dict[Key, Key]]:
    """The keys of `rows` ((venue, exec_id, exec_type, ref_exec_id) each), and what each
    change among them, and each change its chain reaches back through, names."""
    e = executions.c
    parent: dict[Key, Key] = {}  # a change -> what it names
    listed = []
    for venue, exec_id, kind, ref in rows:
        listed.append((venue, exec_id))
        if kind != FILL and ref:
            parent[(venue, exec_id)] = (venue, ref)
    frontier = {ref for ref in parent.values() if ref not in parent}
    while frontier:
        found = _changes_named(conn, e.exec_id, frontier, ref=False)
        for venue, exec_id, ref in found:
            parent[(venue, exec_id)] = (venue, ref)
        frontier = {(v, r) for v, _, r in found} - set(parent)
    return listed, parent


def _root(parent: Mapping[Key, Key], key: Key) -> Key:
    """Where `key`'s chain of ExecRefIDs ends: the original fill (or the last record found)."""
    seen = set()
    while key in parent and key not in seen:
        seen.add(key)
        key = parent[key]
    return key


def fill_times_of_chains(
    conn: Connection, rows: Iterable[tuple[str, str, str, str | None]]
) -> dict[Key, datetime | None]:
    """Of these executions ((venue, exec_id, exec_type, ref_exec_id) each), when the fill their
    chain of ExecRefIDs ends at was executed (None: no time, or the fill is no longer held)."""
    listed, parent = _chains_up(conn, rows)
    roots = {key: _root(parent, key) for key in listed}
    e = executions.c
    keys = sorted(set(roots.values()))
    at: dict[Key, datetime | None] = {}
    for start in range(0, len(keys), 500):  # (PostgreSQL: at most 65,535 parameters)
        for venue, exec_id, when in conn.execute(
            select(e.venue, e.exec_id, e.exec_time).where(
                e.exec_type == FILL, tuple_(e.venue, e.exec_id).in_(keys[start : start + 500])
            )
        ):
            at[(venue, exec_id)] = when
    return {key: at.get(top) for key, top in roots.items()}


def _changes_named(
    conn: Connection, column: Any, keys: set[tuple[str, str]], *, ref: bool
) -> list[Any]:
    """ref=False: (venue, exec_id, ref_exec_id) of the changes among `keys`; ref=True: (id,
    venue, exec_id, ref_exec_id) of the changes that name one of `keys`. 500 keys a query."""
    e = executions.c
    listed = sorted(keys)
    out: list[Any] = []
    for start in range(0, len(listed), 500):
        part = listed[start : start + 500]
        cols = (
            (e.id, e.venue, e.exec_id, e.ref_exec_id)
            if ref
            else (e.venue, e.exec_id, e.ref_exec_id)
        )
        out.extend(
            conn.execute(
                # the predicate as ix_executions_changes states it, so that the index serves
                select(*cols).where(text(CHANGES_WHERE), tuple_(e.venue, column).in_(part))
            ).all()
        )
    return out


# ---- reading the book -----------------------------------------------------------------------


_RECORD_COLUMNS = (
    "id",
    "venue",
    "exec_id",
    "account",
    "symbol",
    "side",
    "quantity",
    "price",
    "commission",
    "fees",
    "trade_date",
    "exec_time",
    "exec_type",
    "ref_exec_id",
    "currency",
    "settle_date",
)


def records(
    conn: Connection,
    *,
    account: str | None = None,
    as_of: date | None = None,
    trade_date: date | None = None,
    symbol: str | None = None,
    through_id: int | None = None,
) -> list[ExecRecord]:
    """Executions as the pure core takes them, in book order (`through_id`: those booked up to
    that row id). The hot path of positions: the columns come back as the driver gives them
    (no per-value type processing) and are turned into Decimals, dates and UTC times here,
    once per value."""
    e = executions.c
    q = select(*(type_coerce(e[c], NullType()) for c in _RECORD_COLUMNS)).order_by(e.id)
    if through_id is not None:
        q = q.where(e.id <= through_id)
    if account is not None:
        q = q.where(e.account == account)
    if symbol is not None:
        q = q.where(e.symbol == symbol)
    if as_of is not None:
        q = q.where(e.trade_date <= as_of)
    if trade_date is not None:
        q = q.where(e.trade_date == trade_date)
    return _read_records(conn, q)


def _read_records(conn: Connection, q: Any) -> list[ExecRecord]:
    """The ExecRecords of a select of _RECORD_COLUMNS (as the driver gives them)."""
    text_store = conn.dialect.name == "sqlite"  # decimals, dates and times come back as text
    dec: Any = Decimal if text_store else _same
    day: Any = date.fromisoformat if text_store else _same
    sides = {s.value: s for s in Side}
    out = []
    # the DBAPI cursor's rows: the driver's own values, without SQLAlchemy's per-row work
    rows: Any = conn.execute(q).cursor  # iterated: the raw rows are never all held at once
    for (
        seq,
        venue,
        exec_id,
        acct,
        sym,
        side,
        qty,
        price,
        comm,
        fees,
        td,
        t,
        kind,
        ref,
        ccy,
        settle,
    ) in rows:
        out.append(
            ExecRecord(
                seq,
                venue,
                exec_id,
                acct,
                sym,
                sides[side],
                dec(qty),
                dec(price),
                dec(comm),
                dec(fees),
                day(td),
                None if t is None else _utc(t),
                kind,
                ref,
                ccy,
                day(settle),
            )
        )
    return out


# the columns of fill_columns' bulk read, as text
_FILL_COLUMNS = (
    "seq",
    "symbol",
    "side",
    "quantity",
    "price",
    "commission",
    "fees",
    "trade_date",
    "exec_time",
    "exec_type",
)
# never empty and free of commas, quotes and line breaks (read unquoted on SQLite)
_PLAIN = frozenset(_FILL_COLUMNS) - {"symbol"}


def fill_columns(conn: Connection, account: str) -> tuple[pl.DataFrame, list[ExecRecord]]:
    """What records(conn, account=account) holds, read in bulk for positions: the fills that
    no correction or bust names, as columns (lots.fill_columns(); no Python object per row; a
    side other than buy or sell reads "?", which lots.build_positions_frame declines), and,
    as records, every correction and bust of the account with the executions they name (for
    lots.effective_fills: a chain resolves within them exactly as within all records)."""
    e = executions.c
    utc: Any
    day: Any
    if conn.dialect.name == "postgresql":  # fixed-width UTC text, as SQLite stores it
        utc = func.to_char(func.timezone("UTC", e.exec_time), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        day = func.to_char(e.trade_date, "YYYY-MM-DD")  # whatever the session's DateStyle
    else:
        utc = cast(e.exec_time, String)
        day = cast(e.trade_date, String)
    query = select(
        cast(e.id, String),
        e.symbol,
        case((e.side == "buy", "buy"), (e.side == "sell", "sell"), else_="?"),
        *(cast(e[c], String) for c in ("quantity", "price", "commission", "fees")),
        day,
        utc,
        case((e.exec_type == FILL, "f"), else_="c"),
    ).where(e.account == account)
    raw = bulk.text_frame(conn, query, _FILL_COLUMNS, plain=_PLAIN)
    frame = raw.select(
        pl.col("seq").cast(pl.Int64),
        pl.lit(account, pl.String()).alias("account"),
        *(pl.col(c) for c in ("symbol", "side", "quantity", "price", "commission", "fees")),
        pl.col("trade_date").str.to_date("%Y-%m-%d"),
        pl.col("exec_time").str.to_datetime(
            "%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC"
        ),
    )
    if raw["exec_type"].eq("f").all():
        return frame, []
    changes = select(e.venue, e.ref_exec_id).where(e.account == account, e.exec_type != FILL)
    named = or_(e.exec_type != FILL, tuple_(e.venue, e.exec_id).in_(changes))
    q = select(*(type_coerce(e[c], NullType()) for c in _RECORD_COLUMNS))
    changed = _read_records(conn, q.where(e.account == account, named).order_by(e.id))
    seqs = [r.seq for r in changed]
    return frame.filter(~pl.col("seq").is_in(seqs)), changed


def _same(value: Any) -> Any:
    return value


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value)


def execution_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "exec_id": r.exec_id,
        "account": r.account,
        "symbol": r.symbol,
        "side": r.side,
        "quantity": dec_str(r.quantity),
        "price": dec_str(r.price),
        "currency": r.currency,
        "trade_date": r.trade_date.isoformat(),
        "settle_date": r.settle_date.isoformat(),
        "exec_time": utc_iso(r.exec_time) if r.exec_time else None,
        "venue": r.venue,
        "commission": dec_str(r.commission),
        "fees": dec_str(r.fees),
        "client_order_id": r.client_order_id,
        "order_id": r.order_id,
        "exec_type": r.exec_type,
        "ref_exec_id": r.ref_exec_id,
        "source": r.source,
        "booked_at": utc_iso(r.booked_at),
        "booked_by": r.actor,
    }


LISTING_BATCH = 1_000  # rows fetched at a time by execution_listing (PostgreSQL: a server cursor)


def list_executions(
    conn: Connection, *, account: str | None = None, trade_date: date | None = None
) -> list[dict[str, Any]]:
    return list(execution_listing(conn, account=account, trade_date=trade_date))


def execution_listing(
    conn: Connection, *, account: str | None = None, trade_date: date | None = None
) -> Iterator[dict[str, Any]]:
    """`exec list`'s objects, by trade date and booking order, read LISTING_BATCH rows at a
    time (the memory does not grow with the book). An unknown account is refused (NotFound)
    when the first object is asked for, before any is given."""
    e = executions.c
    q = select(executions).order_by(e.trade_date, e.id)
    if account is not None:
        book.get_account(conn, account)
        q = q.where(e.account == account)
    if trade_date is not None:
        q = q.where(e.trade_date == trade_date)
    batch: list[dict[str, Any]] = []
    for r in conn.execution_options(yield_per=LISTING_BATCH).execute(q):
        batch.append(execution_json(r))
        if len(batch) == LISTING_BATCH:
            yield from with_counting_orders(conn, batch)
            batch = []
    yield from with_counting_orders(conn, batch)


__all__ = [
    "COLUMNS",
    "ImportResult",
    "execution_listing",
    "import_file",
    "list_executions",
    "records",
]
