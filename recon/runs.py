"""A reconciliation run, end to end: the imperative shell around the pure engine.

1. Load and validate the venue file (recon.validate): bad rows are quarantined, never dropped.
2. Under the book lock, in one transaction: refuse the very same bytes already reconciled for
   this profile and date (unless forced); record the profile's version; read the internal side
   (recon.book_side) including every item of the profile's open breaks, and carry the venue
   records of those breaks, so that a late booking or a late venue record closes its break;
   match (recon.engine); then record the run, its quarantined rows, new breaks, breaks seen
   again, and breaks the run resolved, with their events and one audit event.

Venue records without an exec_id are named `<business date>/<account>/<currency>/row:<line>`
(cash), `<business date>/<account>/row:<line>` (trades), `<business date>/row:<line>`
(positions), so that a record kept from an earlier file never collides with a line of today's
file for another account or currency; a file delivered again for the same ones replaces it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

import polars as pl
from sqlalchemy import Connection, func, select

from oms import audit, book
from oms.book import Ctx
from oms.errors import BadInput, NotFound
from oms.store import Store, bulk_insert, next_id
from oms.values import dec_str, normalize, utc_iso
from recon import book_side, breaks, engine
from recon.canonical import SCHEMAS, conform, empty
from recon.loaders import load, statements_of_day
from recon.profiles import Profile, load_profile, parse_profile
from recon.schema import break_events, recon_breaks, recon_profiles, recon_quarantine, recon_runs
from recon.validate import Validated, validate

_CARRIED_ROW: Final = 1_000_000_000  # rows of records carried from earlier runs start here


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    kind: str
    profile: str
    profile_version: str
    venue: str
    business_date: date
    internal_rows: int
    venue_rows: int
    quarantined_rows: int
    matched: int  # the file's own valid rows matched (at most its valid rows)
    matched_internal: int
    breaks: dict[str, int]
    new_breaks: int
    open_breaks: int
    closed_breaks: int
    input_sha256: str
    duration_s: Decimal
    forced: bool = False
    by_stage: dict[str, tuple[int, int]] = field(default_factory=dict)
    # records of the file the reader passed over on purpose, by why (a FIX message that is not
    # an execution, a pending bank entry, a fill a later bust replaced): neither rows nor breaks
    skipped: dict[str, int] = field(default_factory=dict)
    # the breaks it closed, by why: matched (settled) or superseded (its items in other breaks)
    closed_by: dict[str, int] = field(default_factory=dict)
    # venue records of earlier runs' open breaks (carried) that matched now: not in `matched`
    matched_carried: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "profile": self.profile,
            "profile_version": self.profile_version,
            "venue": self.venue,
            "business_date": self.business_date.isoformat(),
            "internal_rows": self.internal_rows,
            "venue_rows": self.venue_rows,
            "quarantined_rows": self.quarantined_rows,
            "skipped": self.skipped,
            "matched": self.matched,
            "matched_carried": self.matched_carried,
            "matched_internal": self.matched_internal,
            "matched_by_stage": {
                s: {"internal": i, "venue": v} for s, (i, v) in self.by_stage.items()
            },
            "breaks": self.breaks,
            "new_breaks": self.new_breaks,
            "open_breaks": self.open_breaks,
            "closed_breaks": self.closed_breaks,
            "closed_by": self.closed_by,
            "input_sha256": self.input_sha256,
            "forced": self.forced,
            "duration_s": dec_str(self.duration_s),
        }


# ---- profiles ---------------------------------------------------------------------------------


def resolve_profile(conn: Connection, spec: str) -> Profile:
    """`--profile`: a path to a TOML file, else the latest version of a profile kept in the
    database under that name."""
    from pathlib import Path

    if Path(spec).is_file():
        return load_profile(spec)
    p = recon_profiles.c
    row = conn.execute(
        select(p.text).where(p.name == spec).order_by(p.added_at.desc(), p.version).limit(1)
    ).first()
    if row is None:
        raise NotFound("profile (neither a file nor a profile kept in the database)", spec)
    return parse_profile(row.text, f"profile {spec!r} in the database")


def _keep_profile(conn: Connection, ctx: Ctx, profile: Profile, text: str) -> bool:
    p = recon_profiles.c
    known = conn.execute(
        select(p.version).where(p.name == profile.name, p.version == profile.version)
    ).first()
    if known is not None:
        return False
    conn.execute(
        recon_profiles.insert().values(
            name=profile.name,
            version=profile.version,
            kind=profile.kind,
            venue=profile.venue,
            text=text,
            added_at=ctx.now,
            added_by=ctx.actor,
        )
    )
    return True


def add_profile(store: Store, ctx: Ctx, path: str) -> tuple[Profile, bool]:
    """Keep a profile in the database (a new version if it changed); audited."""
    profile = load_profile(path)
    with store.write() as conn:
        added = _keep_profile(conn, ctx, profile, profile.to_toml())
        if added:
            audit.append(
                conn,
                at=ctx.now,
                actor=ctx.actor,
                action="recon.profile_added",
                entity_type="profile",
                entity_id=profile.name,
                payload={"version": profile.version, "venue": profile.venue, "kind": profile.kind},
            )
    return profile, added


def list_profiles(conn: Connection) -> list[dict[str, Any]]:
    p = recon_profiles.c
    return [
        {
            "name": r.name,
            "version": r.version,
            "kind": r.kind,
            "venue": r.venue,
            "added_at": utc_iso(r.added_at),
            "added_by": r.added_by,
        }
        for r in conn.execute(select(recon_profiles).order_by(p.name, p.added_at, p.version))
    ]


# ---- the run ------------------------------------------------------------------------------------


def _already(conn: Connection, profile: Profile, day: date, sha: str) -> Any:
    r = recon_runs.c
    return conn.execute(
        select(r.run_id, r.started_at)
        .where(r.profile == profile.name, r.business_date == day, r.input_sha256 == sha)
        .order_by(r.run_id)
        .limit(1)
    ).first()


# A duplicate stays a duplicate until an operator resolves it: not re-examined by later runs.
NOT_REEXAMINED: Final = frozenset({"duplicate_venue"})


# what names a file's records without an exec_id besides the business date: the files of one
# date for other accounts (or currencies) are other files, not a re-delivery of this one
ROW_SCOPE: Final[dict[str, tuple[str, ...]]] = {
    "trades": ("account",),
    "positions": (),  # one file holds every account's positions (the book's side is all of them)
    "cash": ("account", "currency"),
}


def _name_rows(valid: pl.DataFrame, day: date, kind: str) -> pl.DataFrame:
    """Venue records without an exec_id get a ref that names the business date's file and
    the record's account (and currency): `<date>/<account>/<currency>/row:<n>` for cash,
    `<date>/<account>/row:<n>` for trades, `<date>/row:<n>` for positions."""
    ref = pl.col("ref")
    parts: list[pl.Expr] = [pl.lit(day.isoformat() + "/")]
    for column in ROW_SCOPE[kind]:
        parts += [pl.col(column).fill_null(""), pl.lit("/")]
    return valid.with_columns(
        pl.when(ref.str.starts_with("row:"))
        .then(pl.concat_str([*parts, ref]))
        .otherwise(ref)
        .alias("ref")
    )


def _file_of(ref: str) -> str:
    """What names the file of a ref-less record's name: `<date>/<account>/` of
    `<date>/<account>/row:<n>` (the name without its line)."""
    return ref[: ref.rfind("row:")]


def _keep_names(valid: pl.DataFrame, open_rows: Sequence[Any], kind: str) -> pl.DataFrame:
    """Ref-less records of a file delivered again keep their names by their content, not their
    lines: each name was its record's line's, so a break stayed on a line whatever record stood
    there, and a file sent again in another order moved the breaks (their owner, comments and
    history) onto other trades. Among today's ref-less records of a file that open breaks name
    records of (same date and scope):

    1. the records with the content of open breaks' records take those records' names: the
       last copies in file order take them, in the order of their lines (of two copies, the
       later one is the duplicate; with fewer copies than names, the first names are taken);
    2. any other keeps its own line's name, replacing the open breaks' record of that name
       (the venue corrected that line, as before), unless a record of (1) took the name: then
       it gets a name of its own, `row:<n>+<k>`, and the record it would have replaced stays
       carried, a break of its own for an operator to resolve.

    Content is the record's canonical fields but its name, as the breaks keep them."""
    if kind == "positions":
        return valid  # a whole snapshot: nothing carried
    held: dict[str, str] = {}  # an open break's ref-less record's name -> its content
    probes: set[str] = set()
    for r in open_rows:
        for rec in json.loads(r.venue_records):
            ref = rec.get("ref")
            if isinstance(ref, str) and breaks.is_row_ref(ref):
                held.setdefault(ref, _content(rec))
                probes.add(_PROBE_SEP.join(str(rec.get(c) or "") for c in _PROBE[kind]))
    if not held:
        return valid
    files = sorted({_file_of(ref) for ref in held})
    ref = pl.col("ref")
    mine = ref.str.contains("row:", literal=True) & ref.str.replace(r"row:[^/]*$", "").is_in(files)
    # only records that could have a held record's content are read whole (a file of a million
    # ref-less rows beside one open break of it)
    probe = pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("") for c in _PROBE[kind]], separator=_PROBE_SEP
    )
    indexed = valid.with_row_index("_at")
    alike = indexed.filter(mine & probe.is_in(sorted(probes)))
    copies: dict[str, list[tuple[int, str]]] = {}  # content -> (row, own name), in file order
    records = _records_json(alike.drop("_at"))
    for at, own, rec in zip(alike["_at"].to_list(), alike["ref"].to_list(), records, strict=True):
        copies.setdefault(_content(rec), []).append((at, own))
    names_of: dict[str, list[str]] = {}  # content -> the open breaks' names for it, by line
    for name, content in sorted(held.items(), key=lambda item: _line_order(item[0])):
        names_of.setdefault(content, []).append(name)
    named: dict[int, str] = {}  # 1: a row -> the name it takes
    for content, found in copies.items():
        given = names_of.get(content, [])
        m = min(len(given), len(found))
        for (at, _), name in zip(found[len(found) - m :], given[:m], strict=True):
            named[at] = name
    taken = set(named.values())
    # 2: a record whose own line's name a record of (1) took gets a name of its own
    bumped = indexed.filter(mine & ref.is_in(sorted(taken)))
    avoid = set(held) | taken
    for at, own in zip(bumped["_at"].to_list(), bumped["ref"].to_list(), strict=True):
        if at in named:
            continue
        k = 1
        while f"{own}+{k}" in avoid:
            k += 1
        named[at] = f"{own}+{k}"
        avoid.add(named[at])
    if not named:
        return valid
    renamed = pl.DataFrame(
        {"_at": list(named), "_name": list(named.values())},
        schema={"_at": pl.UInt32, "_name": pl.String},
    )
    return (
        indexed.join(renamed, on="_at", how="left", maintain_order="left")
        .with_columns(pl.coalesce("_name", "ref").alias("ref"))
        .drop("_at", "_name")
    )


# the fields that pick out the records worth reading whole when looking for a held record's
# content (they are in every record of the kind, as text)
_PROBE: Final[dict[str, tuple[str, ...]]] = {
    "trades": ("account", "symbol", "side"),
    "cash": ("account", "currency"),
}
_PROBE_SEP: Final = "\x1f"


def _line_order(name: str) -> tuple[int, int]:
    """`.../row:12+1` -> (12, 1): names in the order of the lines they came from."""
    line, _, k = name.rpartition("row:")[2].partition("+")
    return (int(line) if line.isdigit() else 0, int(k) if k.isdigit() else 0)


def _content(rec: dict[str, Any]) -> str:
    return audit.canonical_json({k: v for k, v in rec.items() if k != "ref"})


def _records_json(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Canonical rows as JSON-able dicts: decimals, dates and times as strings."""
    out = []
    for rec in frame.drop("row").to_dicts():
        out.append({k: _jsonable(v) for k, v in rec.items()})
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return dec_str(normalize(v))
    if isinstance(v, datetime):
        return utc_iso(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def record_identity(kind: str, rec: Any) -> tuple[Any, ...]:
    """What names one venue record across files: its ref; a cash record's ref with its account,
    currency and date (a bank's refs are its own per account: two accounts' lines may both be
    FEE)."""
    if kind == "cash":
        day = rec.get("date")
        day = day.isoformat() if isinstance(day, date) else day
        return (rec.get("ref"), rec.get("account"), rec.get("currency"), day)
    return (rec.get("ref"),)


def _carried(rows: Sequence[Any], kind: str, valid: pl.DataFrame) -> pl.DataFrame:
    """The venue records of earlier open breaks, back as a canonical frame (those the venue
    sent again today, in `valid`, are left to today's file). A positions file is a whole
    snapshot of its date: yesterday's records are not carried beside today's (the book's side
    is re-read)."""
    if kind == "positions":
        return empty(kind)
    kept = [rec for r in rows for rec in json.loads(r.venue_records)]
    # only today's records whose ref is one of theirs are looked at closer
    refs = {rec.get("ref") for rec in kept} & set(valid["ref"].to_list())
    again = valid.filter(pl.col("ref").is_in(sorted(refs)))
    in_file = {record_identity(kind, rec) for rec in again.iter_rows(named=True)}
    records = [rec for rec in kept if record_identity(kind, rec) not in in_file]
    schema = SCHEMAS[kind]
    if not records:
        return empty(kind)
    unique = {record_identity(kind, rec): rec for rec in records}
    text = pl.DataFrame(
        [[rec.get(c) for c in schema if c != "row"] for _, rec in sorted(unique.items())],
        schema={c: pl.String() for c in schema if c != "row"},
        orient="row",
    )
    exprs = []
    for name, dtype in schema.items():
        if name == "row":
            continue
        col = pl.col(name)
        if dtype == pl.Date():
            exprs.append(col.str.to_date("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            exprs.append(col.str.to_datetime(time_unit="us", time_zone="UTC"))
        else:
            exprs.append(col.cast(dtype))
    frame = text.with_columns(exprs).with_columns(
        (pl.int_range(0, pl.len(), dtype=pl.Int64) + _CARRIED_ROW).alias("row")
    )
    return conform(frame, kind)


def _instrument_currency(conn: Connection, result: engine.MatchResult) -> engine.MatchResult:
    """A break without a currency is in its instrument's (the book's instruments by symbol):
    a position break's amount is at the instrument's price, and a trade break neither side
    gave a currency (a venue record without one that the book does not have) is in it as a
    venue trade's currency defaults to it (the contract's execution files). Such amounts were
    totalled apart, as of no currency (a USD and a EUR position break into one 70.00)."""
    found = result.breaks
    unknown = found.filter(pl.col("currency").is_null())["symbol"].drop_nulls().unique()
    if unknown.is_empty():
        return result
    currencies = book.currencies_of(conn, unknown.sort().to_list())
    if not currencies:
        return result
    by_symbol = pl.col("symbol").replace_strict(currencies, default=None, return_dtype=pl.String)
    filled = found.with_columns(pl.col("currency").fill_null(by_symbol))
    return dataclasses.replace(result, breaks=filled)


def _match(
    conn: Connection,
    profile: Profile,
    day: date,
    valid: pl.DataFrame,
    open_rows: Sequence[Any],
) -> tuple[pl.DataFrame, pl.DataFrame, engine.MatchResult]:
    kind = profile.kind
    tolerance = engine.Tolerance.of(profile.tolerance)
    venue = pl.concat([valid, _carried(open_rows, kind, valid)], how="vertical")
    if kind == "trades":
        extra = {ref for r in open_rows for ref in json.loads(r.internal_refs)}
        # a late booking of a venue record that carried its exec_id
        extra |= {
            ref for r in open_rows for ref in json.loads(r.venue_refs) if not breaks.is_row_ref(ref)
        }
        internal = book_side.internal_trades(conn, profile.venue, day, extra, venue["exec_id"])
        result = engine.match_trades(internal, venue, tolerance)
        return internal, venue, _instrument_currency(conn, result)
    if kind == "positions":
        internal, prices = book_side.positions_and_prices(
            conn, profile.venue, day, basis=profile.basis or "trade"
        )
        result = engine.match_positions(internal, venue, tolerance, prices)
        return internal, venue, _instrument_currency(conn, result)
    # A statement's opening balance is the balance before the business date, whatever date it
    # carries (MT940 :60F: and camt.053 OPBD are usually dated the previous business day).
    # (today's file's: a balance line carried from an earlier run has its business date already)
    today = pl.col("row") < _CARRIED_ROW
    venue = venue.with_columns(
        pl.when((pl.col("line_type") == "opening_balance") & today)
        .then(pl.lit(day))
        .otherwise(pl.col("date"))
        .alias("date")
    )
    # the book's side of what today's file is about: its accounts in its currencies (a bank's
    # statement is of one account and currency; another's carried record brings only the
    # movements its break names, below)
    scope = valid.select("account", "currency").unique().drop_nulls()
    accounts = sorted(set(scope["account"].to_list()))
    movements, balances = book_side.internal_cash(conn, accounts, day)
    movements = movements.join(scope, on=["account", "currency"], how="semi")
    balances = balances.join(scope, on=["account", "currency"], how="semi")
    # a balance line carried from an earlier run is compared with the book's balance of its
    # account and currency on its date (read here when today's file is not about them)
    carried = venue.filter(
        ~today & pl.col("line_type").is_in(["opening_balance", "closing_balance"])
    ).select("account", "currency", "date")
    in_scope = scope.with_columns(pl.lit(day).alias("date"))
    others = (
        carried.unique().drop_nulls().join(in_scope, on=["account", "currency", "date"], how="anti")
    )
    for (other_day,), lines in sorted(others.group_by(["date"]), key=lambda g: g[0]):
        _, then = book_side.internal_cash(conn, sorted(set(lines["account"])), other_day)
        then = then.join(
            lines.select("account", "currency").unique(), on=["account", "currency"], how="semi"
        )
        balances = pl.concat([balances, then], how="vertical")
    named = _named_movements(conn, open_rows, day, set(scope.iter_rows()))
    if named.height:
        movements = pl.concat([movements, named], how="vertical")
    return movements, venue, engine.match_cash(movements, venue, tolerance, balances)


def _value_date(r: Any) -> date:
    """A cash movement break's value date, as its key states it (C:<account>|<currency>|<value
    date>|...); the business date it was first seen on for a key that does not."""
    head = f"C:{r.account or ''}|{r.currency or ''}|"
    key = r.break_key
    if key.startswith(head):
        try:
            return date.fromisoformat(key[len(head) : len(head) + 10])
        except ValueError:
            pass
    first: date = r.first_seen
    return first


def _named_movements(
    conn: Connection, open_rows: Sequence[Any], day: date, read: set[tuple[Any, ...]]
) -> pl.DataFrame:
    """The book's movements that open cash breaks name and the run does not read already
    (their internal refs, on the break's value date: a cash run reads one value date's
    movements of the accounts in its file), so that a run re-examines them as it
    re-examines the venue records it carries: a break of yesterday's settlement, or of an
    account this file is not about, is neither closed unseen nor taken over by another
    movement of the same ref; a late venue line with its ref still matches it."""
    wanted: dict[date, set[tuple[str, str, str]]] = {}
    for r in open_rows:
        if not r.account or r.break_key.startswith("C:balance:"):
            continue
        value_date = _value_date(r)
        if value_date == day and (r.account, r.currency) in read:
            continue
        for ref in json.loads(r.internal_refs):
            wanted.setdefault(value_date, set()).add((r.account, r.currency, ref))
    frames = []
    for value_date, pairs in sorted(wanted.items()):
        moves, _ = book_side.internal_cash(conn, sorted({a for a, _, _ in pairs}), value_date)
        named = pl.DataFrame(
            sorted(pairs),
            schema={"account": pl.String(), "currency": pl.String(), "ref": pl.String()},
            orient="row",
        )
        frames.append(moves.join(named, on=["account", "currency", "ref"], how="semi"))
    return pl.concat(frames, how="vertical") if frames else empty("cash")


def run(
    store: Store,
    ctx: Ctx,
    profile_spec: str,
    path: str,
    day: date,
    *,
    force: bool = False,
) -> RunResult:
    started = time.perf_counter()
    with store.read() as conn:
        profile = resolve_profile(conn, profile_spec)
        # a FIX fill without TradeDate is dated on its exchange
        exchanges = book.exchanges_of(conn) if profile.format == "fix" else None
    # a bank file of several days: the statements of `day` (statements_of_day)
    loaded = statements_of_day(load(profile, path, exchanges), day)
    checked = validate(profile, loaded)
    # the file's raw and text frames (GBs at 10M rows) are not needed past validation
    sha256, file_rows = loaded.sha256, loaded.rows
    skipped = dict(sorted(loaded.skipped.items()))  # records the reader passed over, by why
    del loaded
    valid = _name_rows(checked.valid, day, profile.kind)
    with store.write() as conn:
        earlier = _already(conn, profile, day, sha256)
        if earlier is not None and not force:
            raise BadInput(
                path,
                f"these very bytes (sha256 {sha256[:16]}...) were already reconciled for "
                f"profile {profile.name} and {day.isoformat()} in run {earlier.run_id} at "
                f"{utc_iso(earlier.started_at)}; pass --force to reconcile them again",
            )
        _keep_profile(conn, ctx, profile, profile.to_toml())
        b = recon_breaks.c
        open_rows = conn.execute(
            select(recon_breaks, recon_runs.c.business_date.label("last_seen"))
            .join(recon_runs, recon_runs.c.run_id == b.last_run_id)
            .where(b.profile == profile.name, b.status == breaks.OPEN)
            .order_by(b.break_id)
        ).all()
        # a positions file of an earlier date (sent again) neither settles nor rewrites a break
        # a later date's run saw: the 24th's snapshot, agreeing with the book's 24th, closed the
        # 25th's mismatch as matched, and the break was lost. (Trades and cash are matched
        # record by record, carried from run to run: an earlier date's file that brings the
        # missing record does settle a later run's break.)
        snapshot = profile.kind == "positions"
        later = {r.break_key for r in open_rows if snapshot and r.last_seen > day}
        again = [r for r in open_rows if r.type not in NOT_REEXAMINED and r.break_key not in later]
        # the names of ref-less records stay with every open break's records, duplicates too
        valid = _keep_names(valid, open_rows, profile.kind)
        internal, venue, result = _match(conn, profile, day, valid, again)
        run_id = next_id(conn, recon_runs, "run_id")
        outcome = _record_breaks(
            conn, ctx, profile, day, run_id, venue, result, open_rows, again, later
        )
        stats = result.stats
        # the file's own rows matched: a carried record matched (a late venue record closing
        # its break) is counted apart, so that the match rate stays a share of the file's rows
        rows = result.matched["venue_row"].drop_nulls()
        carried = int((rows >= _CARRIED_ROW).sum())
        own = int(rows.len()) - carried
        duration = Decimal(f"{time.perf_counter() - started:.3f}")
        counts = stats.break_counts()
        conn.execute(
            recon_runs.insert().values(
                run_id=run_id,
                kind=profile.kind,
                profile=profile.name,
                profile_version=profile.version,
                venue=profile.venue,
                business_date=day,
                input_path=str(path),
                input_sha256=sha256,
                forced=earlier is not None,
                internal_rows=internal.height,
                venue_rows=file_rows,
                quarantined_rows=checked.quarantine.height,
                matched=own,
                breaks=audit.canonical_json(counts),
                open_breaks=outcome.open_after,
                closed_breaks=outcome.closed,
                started_at=ctx.now,
                duration_s=duration,
                actor=ctx.actor,
            )
        )
        outcome.write(conn)
        _quarantine(conn, run_id, checked)
        result_json = RunResult(
            run_id=run_id,
            kind=profile.kind,
            profile=profile.name,
            profile_version=profile.version,
            venue=profile.venue,
            business_date=day,
            internal_rows=internal.height,
            venue_rows=file_rows,
            quarantined_rows=checked.quarantine.height,
            matched=own,
            matched_internal=stats.matched_internal,
            breaks=counts,
            new_breaks=outcome.new,
            open_breaks=outcome.open_after,
            closed_breaks=outcome.closed,
            input_sha256=sha256,
            duration_s=duration,
            forced=earlier is not None,
            by_stage=stats.matched_by_stage(),
            skipped=skipped,
            closed_by=dict(sorted(Counter(reason for _, reason in outcome.closes).items())),
            matched_carried=carried,
        )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="recon.run",
            entity_type="recon_run",
            entity_id=str(run_id),
            payload={k: v for k, v in result_json.as_json().items() if k != "duration_s"},
        )
    return result_json


def _quarantine(conn: Connection, run_id: int, checked: Validated) -> None:
    q = checked.quarantine
    if q.is_empty():
        return
    rows = [
        (run_id, int(r["row"]), r["values"], json.dumps(list(r["reasons"]), ensure_ascii=False))
        for r in q.iter_rows(named=True)
    ]
    bulk_insert(conn, recon_quarantine, ("run_id", "row", "values", "reasons"), rows)


@dataclass(slots=True)
class _Outcome:
    ctx: Ctx
    run_id: int
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[tuple[int, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    closes: list[tuple[int, str]] = field(default_factory=list)
    # (a superseded break's row, the keys of the breaks that took over its items)
    handovers: list[tuple[Any, list[str]]] = field(default_factory=list)
    open_after: int = 0

    @property
    def new(self) -> int:
        return len(self.inserts)

    @property
    def closed(self) -> int:
        return len(self.closes)

    def write(self, conn: Connection) -> None:
        """After the run row exists (breaks name it): insert, update, close, with events."""
        ctx, run_id = self.ctx, self.run_id
        if self.inserts:
            first = next_id(conn, recon_breaks, "break_id")
            for i, values in enumerate(self.inserts):
                values["break_id"] = first + i
            conn.execute(recon_breaks.insert(), self.inserts)
            breaks.add_events(
                conn,
                ctx,
                [
                    (
                        values["break_id"],
                        "opened",
                        {"type": values["type"], "amount": dec_str(values["amount"])},
                    )
                    for values in self.inserts
                ],
                run_id=run_id,
            )
        for break_id, values, change in self.updates:
            conn.execute(
                recon_breaks.update().where(recon_breaks.c.break_id == break_id).values(**values)
            )
            if change:
                breaks.add_event(
                    conn, ctx, break_id, "changed", change, run_id=run_id, audit_it=False
                )
        for break_id, reason in self.closes:
            breaks.close_by_run(conn, ctx, break_id, reason, run_id)
        self._link_handovers(conn)

    def _link_handovers(self, conn: Connection) -> None:
        """Each superseded break and the breaks that took over its items name each other."""
        if not self.handovers:
            return
        ids = {v["break_key"]: v["break_id"] for v in self.inserts}
        ids.update({v["break_key"]: i for i, v, _ in self.updates})
        e = break_events.c
        olds = sorted({int(old.break_id) for old, _ in self.handovers})
        comments: dict[int, int] = dict(
            conn.execute(
                select(e.break_id, func.count())
                .where(e.break_id.in_(olds), e.action == "commented")
                .group_by(e.break_id)
            ).all()
        )
        for old, keys in self.handovers:
            heirs = [ids[k] for k in keys if k in ids]
            if not heirs:
                continue
            lapsed = (
                {"resolution": old.resolution, "requested_by": old.requested_by}
                if old.request_hash is not None
                else None
            )
            gone = {
                "by": heirs,
                "comments": int(comments.get(old.break_id, 0)),
                **({"lapsed_request": lapsed} if lapsed else {}),
            }
            breaks.add_event(conn, self.ctx, old.break_id, "superseded", gone, run_id=self.run_id)
            for heir in heirs:
                took = {
                    "from": old.break_id,
                    "owner": old.owner,
                    "first_seen": old.first_seen.isoformat(),
                }
                breaks.add_event(conn, self.ctx, heir, "took_over", took, run_id=self.run_id)


def _record_breaks(
    conn: Connection,
    ctx: Ctx,
    profile: Profile,
    day: date,
    run_id: int,
    venue: pl.DataFrame,
    result: engine.MatchResult,
    open_rows: Sequence[Any],
    reexamined: Sequence[Any],
    later: set[str],
) -> _Outcome:
    """What the run does to the breaks: new ones, open ones seen again (updated), and the
    re-examined ones it no longer finds (closed: matched, or superseded by another break).
    `later`: keys of open breaks a run of a later date saw, which this one leaves as they are
    (one it finds again is neither updated nor opened twice)."""
    outcome = _Outcome(ctx, run_id)
    by_key = {r.break_key: r for r in open_rows}
    # only the venue records that a break names are kept with it (not the whole file: a
    # million rows turned into dicts cost more than the match)
    wanted = result.breaks["venue_refs"].explode().drop_nulls().unique()
    named_rows = venue.filter(pl.col("ref").is_in(wanted.implode()))
    named = _records_json(named_rows)
    # by row where the break gives them (two records may carry one ref: a bank line dated late
    # beside today's of the same ref), else by ref
    venue_by_row = dict(zip(named_rows["row"].to_list(), named, strict=True))
    venue_by_ref = {rec["ref"]: rec for rec in named}
    found = set()
    for b in result.breaks.iter_rows(named=True):
        key = b["break_key"]
        found.add(key)
        if key in later:
            continue
        rows = b["venue_rows"] or []
        if len(rows) == len(b["venue_refs"]):
            records = [venue_by_row[row] for row in rows if row in venue_by_row]
        else:
            records = [venue_by_ref[ref] for ref in b["venue_refs"] if ref in venue_by_ref]
        values = {
            "type": b["type"],
            "account": b["account"],
            "symbol": b["symbol"],
            "currency": b["currency"],
            "internal_refs": json.dumps(list(b["internal_refs"])),
            "venue_refs": json.dumps(list(b["venue_refs"])),
            "venue_records": audit.canonical_json(records),
            "differences": b["differences"],
            "amount": normalize(b["amount"] if b["amount"] is not None else Decimal(0)),
            "suggestion": b["suggestion"],
            "last_run_id": run_id,
            "updated_at": ctx.now,
        }
        old = by_key.get(key)
        if old is None:
            outcome.inserts.append(
                {
                    **values,
                    "profile": profile.name,
                    "break_key": key,
                    "kind": profile.kind,
                    "status": breaks.OPEN,
                    "first_seen": day,
                    "first_run_id": run_id,
                    "owner": None,  # (every row names it: one insert of many rows)
                }
            )
            continue
        change = {
            name: {"from": str(getattr(old, name)), "to": str(values[name])}
            for name in ("type", "amount", "differences")
            if str(getattr(old, name)) != str(values[name])
        }
        outcome.updates.append((old.break_id, {**values, "break_key": key}, change))
    matched = set(result.matched["internal_ref"].drop_nulls().to_list()) | set(
        result.matched["venue_ref"].drop_nulls().to_list()
    )
    # a ref may name records of several dates (an import's settlements of one account): a
    # closed break is "matched" only when none of its refs is in a break of its account and
    # currency still
    in_breaks = {
        (b["account"], b["currency"], ref)
        for b in result.breaks.iter_rows(named=True)
        for ref in (*b["internal_refs"], *b["venue_refs"])
    }
    # an item -> the breaks now holding it (a cash ref is its account's and currency's; a
    # trade's currency may be known on one side only)
    cash = profile.kind == "cash"
    written = {v["break_key"]: v for v in outcome.inserts}  # what the run writes, by key
    written.update({v["break_key"]: v for _, v, _ in outcome.updates})
    heirs_by: dict[tuple[Any, Any, Any], set[str]] = {}
    for b in result.breaks.iter_rows(named=True):
        for ref in (*b["internal_refs"], *b["venue_refs"]):
            item = (b["account"], b["currency"] if cash else None, ref)
            heirs_by.setdefault(item, set()).add(b["break_key"])
    for r in reexamined:
        if r.break_key in found:
            continue
        internal = set(json.loads(r.internal_refs))
        refs = internal | set(json.loads(r.venue_refs))
        if profile.kind == "positions" and internal:
            # a position is the book's (account|symbol): an earlier file's row is not carried
            # beside today's snapshot, so the position's match today settles it
            refs = internal
        mine = {(r.account, r.currency, ref) for ref in refs}
        settled = refs <= matched and not mine & in_breaks
        reason = breaks.MATCHED if settled else breaks.SUPERSEDED
        outcome.closes.append((r.break_id, reason))
        if not settled:
            items = {(r.account, r.currency if cash else None, ref) for ref in refs}
            heirs = sorted({k for item in items for k in heirs_by.get(item, ())} - later)
            _hand_over(outcome, r, heirs, written, by_key)
    kept = {r.break_key for r in open_rows if r.type in NOT_REEXAMINED} | later
    outcome.open_after = len(found | kept)
    return outcome


def _hand_over(
    outcome: _Outcome,
    old: Any,
    heirs: Sequence[str],
    written: dict[str, dict[str, Any]],
    open_by_key: dict[str, Any],
) -> None:
    """A break superseded by others (its items now in breaks of other keys: the booking came
    with another quantity, the venue's record with another price) hands them what the desk
    has on it: its owner (unless they have one), its first date (the age runs on from it, for
    escalation), and in both histories which break took over from which, with its comments'
    count and a pending write-off that lapses (it was asked for the old break). Before, the
    new breaks started unowned at age 0, and nothing linked the two."""
    if not heirs:
        return
    for key in heirs:
        values = written.get(key)
        if values is None:
            continue
        was = open_by_key.get(key)  # an open break that took over: its own first, if any
        owner = values.get("owner") or (was.owner if was is not None else None)
        first = values.get("first_seen") or (was.first_seen if was is not None else None)
        if old.owner and not owner:
            values["owner"] = old.owner
        if first is not None and old.first_seen < first:
            values["first_seen"] = old.first_seen
    outcome.handovers.append((old, list(heirs)))


def list_runs(conn: Connection, *, business_date: date | None = None) -> list[dict[str, Any]]:
    r = recon_runs.c
    q = select(recon_runs).order_by(r.run_id)
    if business_date is not None:
        q = q.where(r.business_date == business_date)
    return [
        {
            "run_id": x.run_id,
            "kind": x.kind,
            "profile": x.profile,
            "profile_version": x.profile_version,
            "venue": x.venue,
            "business_date": x.business_date.isoformat(),
            "input_path": x.input_path,
            "input_sha256": x.input_sha256,
            "forced": x.forced,
            "internal_rows": x.internal_rows,
            "venue_rows": x.venue_rows,
            "quarantined_rows": x.quarantined_rows,
            "matched": x.matched,
            "breaks": json.loads(x.breaks),
            "open_breaks": x.open_breaks,
            "closed_breaks": x.closed_breaks,
            "started_at": utc_iso(x.started_at),
            "duration_s": dec_str(x.duration_s),
            "actor": x.actor,
        }
        for x in conn.execute(q)
    ]


def quarantine(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    breaks.require_run(conn, run_id)
    q = recon_quarantine.c
    return [
        {"row": x.row, "values": json.loads(x.values), "reasons": json.loads(x.reasons)}
        for x in conn.execute(select(recon_quarantine).where(q.run_id == run_id).order_by(q.row))
    ]
