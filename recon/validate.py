"""Validation of a loaded venue file: pandera (polars backend) over the canonical cells.

    loaded = recon.loaders.load(profile, path)
    checked = validate(profile, loaded)   # Validated(valid, quarantine)
    # or: loaded, checked = load_and_validate(profile, path)

Every record of the file ends up in exactly one of the two frames, so
valid.height + quarantine.height == loaded.rows, always. A bad record never stops the run and
is never dropped: it is quarantined with its row number, its raw fields and every reason it
fails (all of them, not only the first), including what the reader found (recon.loaders'
problems).

How (cheap at 10 million rows): one lazy plan over the cells parses each field once and runs
every check as a vectorised expression, collected once: for text cells the very expressions
of the pandera schema below, for cells a Parquet loader kept in their type (LoadedFile.typed)
the same checks in that type (no text round trip). Only the rows that fail (and those the
reader found wrong) are validated by the pandera schema, as text, to say why; a disagreement
between the two is refused as a bug. The valid frame's columns and dtypes are validated by
pandera too (schema level, on the lazy frame).

Checks (one pandera schema per kind):
- required fields present: trades account, symbol, side, quantity, price, trade_date;
  positions account, symbol, quantity; cash account, currency, date, amount.
- decimals: written with the profile's decimal separator and, when it sets one, correctly
  grouped thousands ("1,234.50"); at most 18 digits before the point and 12 after; a leading
  "+" is allowed. Trades: quantity > 0, price > 0, commission and fees signed. Positions:
  quantity signed, price >= 0. Cash: amount signed (credits positive, debits negative).
- dates with the field's format (the profile's [parse] or the format's own, else YYYY-MM-DD);
  times with the field's format, else ISO 8601 with a zone or, without one, in the profile's
  [parse] timezone (default UTC); times end up UTC. settle_date not before trade_date.
- side buy/sell after value mapping; cash line_type one of movement, opening_balance,
  closing_balance; exec_id, account, symbol, client_order_id identifiers
  (oms.values.IDENT_PATTERN); currency three letters.

Validated.valid: recon.canonical's frame for the kind (exact Decimal(38,12), Date, UTC
Datetime), `row` from the file, `ref` = exec_id (trades) or the file's ref (cash) when present,
else "row:<n>"; trades get venue = the profile's venue. Optional fields the file does not give
are null (not reported), never defaulted.
Validated.quarantine: row (Int64), values (String: canonical JSON of the record's raw fields,
keys sorted, compact, UTF-8; an empty CSV cell or null Parquet value is "", a field a record
of the other formats does not have is left out), reasons (List(String), each
"field (file column): 'value' what is wrong", the reader's own problems first), ordered by row.
Records the reader skipped on purpose (LoadedFile.skipped) are neither: they are counted there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final

import polars as pl

from oms import tabular
from oms.errors import TieoutError
from oms.values import CURRENCY_PATTERN, DECIMAL_PATTERN, FRAC_DIGITS, IDENT_PATTERN, INT_DIGITS
from recon import loaders
from recon.canonical import MONEY, REQUIRED, SCHEMAS, conform
from recon.loaders import ROW, LoadedFile, load
from recon.profiles import DATE_FIELDS, FIELDS, LINE_TYPES, SIDES, TIME_FIELDS, Profile

if TYPE_CHECKING:
    import pandera.polars as pa

QUARANTINE: Final[dict[str, pl.DataType]] = {
    "row": pl.Int64(),
    "values": pl.String(),
    "reasons": pl.List(pl.String()),
}
_SHOWN: Final = 80  # characters of a value repeated in a reason


@dataclass(frozen=True, slots=True)
class Validated:
    valid: pl.DataFrame
    quarantine: pl.DataFrame

    @property
    def rows(self) -> int:
        return self.valid.height + self.quarantine.height


def load_and_validate(
    profile: Profile, path: str | Path, exchanges: Mapping[str, str] | None = None
) -> tuple[LoadedFile, Validated]:
    loaded = load(profile, path, exchanges)
    return loaded, validate(profile, loaded)


# ---- expressions shared by the checks and the parsing ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Rules:
    loaded: LoadedFile

    def plain(self, name: str) -> bool:
        return name in self.loaded.plain_fields

    def decimal_text(self, name: str, col: pl.Expr) -> pl.Expr:
        """The cell as a plain decimal ("1.234,50" -> "1234.50")."""
        if not self.plain(name):
            thousands = self.loaded.thousands_separator
            if thousands is not None:
                col = col.str.replace_all(thousands, "", literal=True)
            if self.loaded.decimal_separator != ".":
                col = col.str.replace(self.loaded.decimal_separator, ".", literal=True)
        return col.str.strip_prefix("+")

    def decimal_ok(self, name: str, col: pl.Expr) -> pl.Expr:
        ok = self.decimal_text(name, col).str.contains(DECIMAL_PATTERN) & ~col.str.starts_with("+-")
        thousands = self.loaded.thousands_separator
        if thousands is not None and not self.plain(name):
            t, d = re.escape(thousands), re.escape(self.loaded.decimal_separator)
            grouped = col.str.contains(rf"^[+-]?[0-9]{{1,3}}({t}[0-9]{{3}})+({d}[0-9]+)?$")
            ok = ok & (~col.str.contains(thousands, literal=True) | grouped)
        return ok

    def decimal_rule(self, name: str) -> str:
        if self.plain(name):
            return "plain digits with an optional point"
        sep = f"decimal separator {self.loaded.decimal_separator!r}"
        thousands = self.loaded.thousands_separator
        grouping = (
            f", thousands grouped with {thousands!r}"
            if thousands is not None
            else ", no thousands separator"
        )
        return f"{sep}{grouping}"

    def date(self, name: str, col: pl.Expr) -> pl.Expr:
        fmt = self.loaded.date_formats.get(name, "%Y-%m-%d")
        return col.str.to_date(fmt, strict=False)

    def time(self, name: str, col: pl.Expr) -> pl.Expr:
        fmt = self.loaded.date_formats.get(name)
        tz = self.loaded.timezone
        if fmt is None:
            aware = tabular.utc_time_expr(col)
            # only what has no zone goes on to the naive reading (coalesce does not
            # short-circuit: unmasked, every cell would be parsed twice)
            rest = pl.when(aware.is_null()).then(col)
            naive = (
                rest.str.replace(" ", "T")
                .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
                .dt.replace_time_zone(tz, ambiguous="null", non_existent="null")
                .dt.convert_time_zone("UTC")
            )
            return pl.coalesce(aware, naive)
        if any(z in fmt for z in ("%z", "%:z", "%#z")):
            return col.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
        return (
            col.str.to_datetime(fmt, strict=False, time_unit="us")
            .dt.replace_time_zone(tz, ambiguous="null", non_existent="null")
            .dt.convert_time_zone("UTC")
        )

    def time_rule(self, name: str) -> str:
        fmt = self.loaded.date_formats.get(name)
        if fmt is None:
            return (
                "must be an ISO 8601 time (2026-03-11T14:30:00Z, an offset, or no zone for "
                f"{self.loaded.timezone})"
            )
        return f"must be a time written {fmt}"


# ---- the checks ------------------------------------------------------------------------------

_MONEY_NAMES: Final = ("quantity", "price", "commission", "fees", "amount")
_LIMIT: Final = Decimal(10) ** INT_DIGITS  # a canonical decimal has at most 18 integer digits


def _ok(name: str, test: pl.Expr) -> pl.Expr:
    """A row passes a check of one column when the cell is empty (nullable says if allowed) or
    the test holds."""
    return pl.col(name).is_null() | test.fill_null(value=False)


def _text_tests(profile: Profile, rules: _Rules) -> dict[str, list[tuple[pl.Expr, str]]]:
    """Per field, its checks on the text of the cells: (passes, what is wrong). The same
    expressions make the pandera schema and the one-pass screen of validate()."""
    kind = profile.kind
    out: dict[str, list[tuple[pl.Expr, str]]] = {}
    for name in FIELDS[kind]:
        col = pl.col(name)
        checks: list[tuple[pl.Expr, str]] = []
        if name in ("exec_id", "account", "symbol", "client_order_id"):
            checks.append(
                (
                    col.str.contains(IDENT_PATTERN),
                    "must be an identifier (1-64 letters, digits or ._:/-)",
                )
            )
        elif name == "side":
            checks.append(
                (
                    col.is_in(list(SIDES)),
                    "must be buy or sell (map the file's codes in [values.side])",
                )
            )
        elif name == "line_type":
            checks.append((col.is_in(list(LINE_TYPES)), f"must be one of {', '.join(LINE_TYPES)}"))
        elif name == "currency":
            checks.append(
                (col.str.contains(CURRENCY_PATTERN), "must be a three-letter currency code")
            )
        elif name in DATE_FIELDS:
            fmt = rules.loaded.date_formats.get(name, "%Y-%m-%d")
            checks.append((rules.date(name, col).is_not_null(), f"must be a date written {fmt}"))
        elif name in TIME_FIELDS:
            checks.append((rules.time(name, col).is_not_null(), rules.time_rule(name)))
        elif name in _MONEY_NAMES:
            ok = rules.decimal_ok(name, col)
            plain = rules.decimal_text(name, col)
            if _positive(kind, name):
                ok = ok & ~plain.str.starts_with("-") & plain.str.contains("[1-9]")
                what = "must be a decimal number greater than zero"
            elif _non_negative(kind, name):
                ok = ok & (~plain.str.starts_with("-") | ~plain.str.contains("[1-9]"))
                what = "must be a decimal number, not negative"
            else:
                what = "must be a decimal number"
            checks.append(
                (
                    ok,
                    f"{what} ({rules.decimal_rule(name)}; at most {INT_DIGITS} digits before "
                    f"the point and {FRAC_DIGITS} after)",
                )
            )
        out[name] = [(_ok(name, test), error) for test, error in checks]
    return out


def _positive(kind: str, name: str) -> bool:
    return kind == "trades" and name in ("quantity", "price")


def _non_negative(kind: str, name: str) -> bool:
    return kind == "positions" and name == "price"


def _typed_test(kind: str, name: str, parsed: pl.Expr) -> pl.Expr | None:
    """The check of a typed cell in its own type, with the outcome of the text check on
    loaders.typed_text of it: dates always read back; a time fails only where the profile's
    zone has no such local time (or two); a number must have at most 18 integer digits (its
    scale is at most 12, or the loader would not have kept it) and the field's sign."""
    if name in DATE_FIELDS:
        return None
    if name in TIME_FIELDS:
        return parsed.is_not_null()
    limit = pl.lit(_LIMIT, MONEY)
    ok = parsed.is_not_null() & (parsed.abs() < limit)
    if _positive(kind, name):
        ok = ok & (parsed > pl.lit(0, MONEY))
    elif _non_negative(kind, name):
        ok = ok & (parsed >= pl.lit(0, MONEY))
    return ok


def _settles_after_trade(settle: pl.Expr, trade: pl.Expr) -> pl.Expr:
    return (settle >= trade).fill_null(value=True)


def _schema(profile: Profile, rules: _Rules) -> pa.DataFrameSchema:
    """The pandera schema of the canonical text frame: every field String, required ones not
    empty, each field's checks, and settle_date not before trade_date."""
    import pandera.polars as pa

    kind = profile.kind
    required = REQUIRED[kind]

    def check(ok: pl.Expr, error: str) -> pa.Check:
        def run(data: pa.PolarsData) -> pl.LazyFrame:
            return data.lazyframe.select(ok)

        return pa.Check(run, error=error, ignore_na=False)

    columns = {
        name: pa.Column(
            str,
            [check(ok, error) for ok, error in tests],
            nullable=name not in required,
            required=True,
        )
        for name, tests in _text_tests(profile, rules).items()
    }
    frame_checks: list[pa.Check] = []
    if kind == "trades":
        ok = _settles_after_trade(
            rules.date("settle_date", pl.col("settle_date")),
            rules.date("trade_date", pl.col("trade_date")),
        )
        frame_checks.append(check(ok, "settle_date: is before trade_date"))
    return pa.DataFrameSchema(columns, checks=frame_checks)


def _canonical_schema(kind: str) -> pa.DataFrameSchema:
    """pandera's schema of the valid frame: recon.canonical's columns, in order, and dtypes."""
    import pandera.polars as pa

    return pa.DataFrameSchema(
        {name: pa.Column(dtype, nullable=True) for name, dtype in SCHEMAS[kind].items()},
        strict=True,
        ordered=True,
    )


# ---- validation -------------------------------------------------------------------------------


def _labels(profile: Profile) -> dict[str, str]:
    return {
        name: (f"{name} ({profile.columns[name]})" if name in profile.columns else name)
        for name in FIELDS[profile.kind]
    }


def _reasons(
    profile: Profile, text: pl.DataFrame, problems: pl.DataFrame, rules: _Rules
) -> pl.DataFrame:
    """(index into `text`, reasons): every failure of every bad record of the text frame
    `text` (pandera's failure cases), with the reader's `problems` first, in field order."""
    import pandera.polars as pa

    frames: list[pl.DataFrame] = []
    if text.height:
        try:
            _schema(profile, rules).validate(text, lazy=True)
        except pa.errors.SchemaErrors as exc:
            cases = exc.failure_cases.filter(pl.col("index").is_not_null())
            order = {name: i for i, name in enumerate(FIELDS[profile.kind])}
            value = pl.col("failure_case")
            shown = (
                pl.when(value.str.len_chars() > _SHOWN)
                .then(value.str.slice(0, _SHOWN) + "...")
                .otherwise(value)
            )
            label = pl.col("column").replace_strict(_labels(profile), default=pl.col("column"))
            reason = (
                pl.when(pl.col("schema_context") == "DataFrameSchema")
                .then(pl.col("check"))
                .when(pl.col("check") == "not_nullable")
                .then(pl.concat_str([label, pl.lit(": is required and empty")]))
                .otherwise(
                    pl.concat_str(
                        [label, pl.lit(": '"), shown.fill_null(""), pl.lit("' "), pl.col("check")]
                    )
                )
            )
            frames.append(
                cases.select(
                    pl.col("index").cast(pl.Int64),
                    (
                        pl.col("column").replace_strict(
                            order, default=len(order), return_dtype=pl.Int64
                        )
                        * 1000
                        + pl.col("check_number").fill_null(0).cast(pl.Int64)
                    ).alias("order"),
                    reason.alias("reason"),
                )
            )
    if problems.height:
        index = text.select(ROW).with_row_index("index")
        frames.append(
            problems.join(index, on=ROW, how="inner").select(
                pl.col("index").cast(pl.Int64),
                pl.lit(-1, pl.Int64).alias("order"),
                pl.col("reason"),
            )
        )
    if not frames:
        return pl.DataFrame(schema={"index": pl.Int64, "reasons": pl.List(pl.String)})
    return (
        pl.concat(frames)
        .unique(maintain_order=True)
        .sort("index", "order", maintain_order=True)
        .group_by("index", maintain_order=True)
        .agg(pl.col("reason").alias("reasons"))
    )


def _raw_rows(raw: pl.DataFrame | pl.LazyFrame, flagged: pl.Series) -> pl.DataFrame:
    """The raw records of the flagged rows (a lazy raw frame is rendered for those only)."""
    if isinstance(raw, pl.DataFrame):
        return raw.filter(flagged)
    index = flagged.arg_true()
    if index.len() == 0:
        return raw.clear().collect()
    return raw.with_row_index("_r").filter(pl.col("_r").is_in(index.implode())).drop("_r").collect()


def _values_json(raw: pl.DataFrame, *, null_is_empty: bool) -> pl.Series:
    """Canonical JSON of each raw record: keys sorted, compact, absent (null) fields left out
    (or, for CSV and Parquet, written as the empty cells they are)."""
    if raw.width == 0:
        return pl.Series("values", ["{}"] * raw.height, dtype=pl.String)
    keys = sorted(raw.columns)
    if null_is_empty:
        raw = raw.with_columns(pl.all().fill_null(""))
    if raw.null_count().sum_horizontal().item() == 0:
        return raw.select(pl.struct(keys).struct.json_encode().alias("values")).to_series()
    return pl.Series(
        "values",
        [
            json.dumps(
                {k: v for k, v in r.items() if v is not None},
                sort_keys=True,
                ensure_ascii=False,
                separators=(",", ":"),
            )
            for r in raw.select(keys).iter_rows(named=True)
        ],
        dtype=pl.String,
    )


_BAD: Final = "_bad"
_LOST: Final = "_lost"


def validate(profile: Profile, loaded: LoadedFile) -> Validated:
    """Split a loaded file into valid canonical rows and quarantined ones (see the module
    docstring).

    One lazy plan over the cells parses every field once and evaluates every check as a
    vectorised expression (text fields: the very expressions of the pandera schema; fields
    the loader kept typed: their checks in their own types), collected once. Only the rows it
    flags (and those the reader found wrong) go through the pandera schema, as text, for the
    reasons. A flagged row pandera finds nothing wrong with, or a valid row that did not
    parse, is a bug and refused as such."""
    if loaded.kind != profile.kind:
        raise ValueError(f"file loaded as {loaded.kind}, profile is for {profile.kind}")
    rules = _Rules(loaded)
    cells = loaded.cells
    screened = _screen(profile, rules, loaded)
    flagged = screened.get_column(_BAD)
    if loaded.problems.height:
        problem_rows = loaded.problems.get_column(ROW).implode()
        flagged = flagged | screened.get_column(ROW).is_in(problem_rows)
    n_flagged = int(flagged.sum())
    if n_flagged:
        text = cells.filter(flagged).with_columns(
            loaders.typed_text(name, cells.schema[name]).alias(name) for name in loaded.typed
        )
        bad = _reasons(profile, text, loaded.problems, rules)
        if bad.height != n_flagged:
            raise TieoutError(
                f"{loaded.source}: {n_flagged - bad.height} row(s) failed a check but pandera "
                "found no reason (a bug)"
            )
        quarantine = (
            text.select(ROW)
            .with_row_index("_i")
            .with_columns(
                _values_json(_raw_rows(loaded.raw, flagged), null_is_empty=loaded.null_is_empty),
                pl.col("_i").cast(pl.Int64),
            )
            .join(bad, left_on="_i", right_on="index", how="left", maintain_order="left")
            .select(pl.col(ROW).cast(pl.Int64), "values", "reasons")
            .sort(ROW, maintain_order=True)
        )
        screened = screened.filter(~flagged)
    else:
        quarantine = pl.DataFrame(schema=QUARANTINE)
    if screened.get_column(_LOST).any():  # the checks and the parsing disagree: a bug, say so
        raise TieoutError(f"{loaded.source}: a row passed validation but did not parse (a bug)")
    valid = conform(screened.drop(_BAD, _LOST), profile.kind)
    # pandera, schema level (lazy: columns and dtypes, no pass over the data)
    _canonical_schema(profile.kind).validate(valid.lazy())
    return Validated(valid, quarantine.select(list(QUARANTINE)).cast(pl.Schema(QUARANTINE)))


def _screen(profile: Profile, rules: _Rules, loaded: LoadedFile) -> pl.DataFrame:
    """Every row parsed (a bad row's unparseable cells become null), with `_bad` (the row
    fails a check) and `_lost` (a non-empty cell did not parse: never so for a row that is
    not bad), in one lazy plan collected once: common subexpression elimination parses each
    column once for the checks, the values and `_lost`."""
    kind = profile.kind
    cells = loaded.cells
    tests = _text_tests(profile, rules)
    exprs: list[pl.Expr] = [pl.col(ROW)]
    bad: list[pl.Expr] = []
    lost: list[pl.Expr] = []
    parsed_of: dict[str, pl.Expr] = {}
    row_ref = pl.concat_str([pl.lit("row:"), pl.col(ROW).cast(pl.String)])
    for name in FIELDS[kind]:
        col = pl.col(name)
        if name in REQUIRED[kind]:
            bad.append(col.is_null())
        typed = name in loaded.typed
        parsed: pl.Expr | None = None
        if name in DATE_FIELDS:
            parsed = col if typed else rules.date(name, col)
        elif name in TIME_FIELDS:
            dtype = cells.schema[name]
            parsed = _typed_time(rules, name, dtype) if typed else rules.time(name, col)
        elif name in _MONEY_NAMES:
            source = col if typed else rules.decimal_text(name, col)
            parsed = source.cast(MONEY, strict=False)
        if typed:
            assert parsed is not None  # only dates, times and numbers are kept typed
            test = _typed_test(kind, name, parsed)
            if test is not None:
                bad.append(~_ok(name, test))
        else:
            bad.extend(~ok for ok, _ in tests[name])
        if parsed is None:
            if name != "ref":
                exprs.append(col)
            continue
        parsed_of[name] = parsed
        exprs.append(parsed.alias(name))
        lost.append(col.is_not_null() & parsed.is_null())
    if kind == "trades":
        bad.append(~_settles_after_trade(parsed_of["settle_date"], parsed_of["trade_date"]))
        exprs += [
            pl.coalesce(pl.col("exec_id"), row_ref).alias("ref"),
            pl.lit(profile.venue, pl.String).alias("venue"),
        ]
    elif kind == "cash":
        exprs.append(pl.coalesce(pl.col("ref"), row_ref).alias("ref"))
    else:
        exprs.append(row_ref.alias("ref"))
    exprs.append(pl.any_horizontal(bad).alias(_BAD) if bad else pl.lit(value=False).alias(_BAD))
    exprs.append(pl.any_horizontal(lost).alias(_LOST) if lost else pl.lit(value=False).alias(_LOST))
    return loaders.aligned(cells.lazy().select(exprs).collect())


def _typed_time(rules: _Rules, name: str, dtype: pl.DataType) -> pl.Expr:
    """A typed time cell in UTC microseconds: zoned as it is, naive in the file's zone (null
    where that zone has no such local time, or two)."""
    col = pl.col(name).dt.cast_time_unit("us")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return col.dt.convert_time_zone("UTC")
    return col.dt.replace_time_zone(
        rules.loaded.timezone, ambiguous="null", non_existent="null"
    ).dt.convert_time_zone("UTC")
