"""Validation of a loaded venue file: pandera (polars backend) over the canonical text frame.

    loaded = recon.loaders.load(profile, path)
    checked = validate(profile, loaded)   # Validated(valid, quarantine)
    # or: loaded, checked = load_and_validate(profile, path)

Every record of the file ends up in exactly one of the two frames, so
valid.height + quarantine.height == loaded.rows, always. A bad record never stops the run and
is never dropped: it is quarantined with its row number, its raw fields and every reason it
fails (all of them, not only the first), including what the reader found (recon.loaders'
problems).

Checks (one pandera schema per kind, all run at once, lazily):
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import polars as pl

from oms import tabular
from oms.errors import TieoutError
from oms.values import CURRENCY_PATTERN, DECIMAL_PATTERN, FRAC_DIGITS, IDENT_PATTERN, INT_DIGITS
from recon.canonical import MONEY, REQUIRED, conform
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


def load_and_validate(profile: Profile, path: str | Path) -> tuple[LoadedFile, Validated]:
    loaded = load(profile, path)
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


# ---- the schema -------------------------------------------------------------------------------


def _check(test: pl.Expr, error: str, key: str) -> pa.Check:
    """An element-wise check of one text column; empty cells pass (nullable says if allowed)."""
    import pandera.polars as pa

    def run(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(key).is_null() | test.fill_null(value=False))

    return pa.Check(run, error=error, ignore_na=False)


def _schema(profile: Profile, rules: _Rules) -> pa.DataFrameSchema:
    import pandera.polars as pa

    kind = profile.kind
    required = REQUIRED[kind]
    columns: dict[str, pa.Column] = {}
    for name in FIELDS[kind]:
        col = pl.col(name)
        checks: list[pa.Check] = []
        if name in ("exec_id", "account", "symbol", "client_order_id"):
            checks.append(
                _check(
                    col.str.contains(IDENT_PATTERN),
                    "must be an identifier (1-64 letters, digits or ._:/-)",
                    name,
                )
            )
        elif name == "side":
            checks.append(
                _check(
                    col.is_in(list(SIDES)),
                    "must be buy or sell (map the file's codes in [values.side])",
                    name,
                )
            )
        elif name == "line_type":
            checks.append(
                _check(col.is_in(list(LINE_TYPES)), f"must be one of {', '.join(LINE_TYPES)}", name)
            )
        elif name == "currency":
            checks.append(
                _check(
                    col.str.contains(CURRENCY_PATTERN), "must be a three-letter currency code", name
                )
            )
        elif name in DATE_FIELDS:
            fmt = rules.loaded.date_formats.get(name, "%Y-%m-%d")
            checks.append(
                _check(rules.date(name, col).is_not_null(), f"must be a date written {fmt}", name)
            )
        elif name in TIME_FIELDS:
            checks.append(_check(rules.time(name, col).is_not_null(), rules.time_rule(name), name))
        elif name in ("quantity", "price", "commission", "fees", "amount"):
            positive = kind == "trades" and name in ("quantity", "price")
            non_negative = kind == "positions" and name == "price"
            ok = rules.decimal_ok(name, col)
            plain = rules.decimal_text(name, col)
            if positive:
                ok = ok & ~plain.str.starts_with("-") & plain.str.contains("[1-9]")
                what = "must be a decimal number greater than zero"
            elif non_negative:
                ok = ok & (~plain.str.starts_with("-") | ~plain.str.contains("[1-9]"))
                what = "must be a decimal number, not negative"
            else:
                what = "must be a decimal number"
            checks.append(
                _check(
                    ok,
                    f"{what} ({rules.decimal_rule(name)}; at most {INT_DIGITS} digits before "
                    f"the point and {FRAC_DIGITS} after)",
                    name,
                )
            )
        columns[name] = pa.Column(str, checks, nullable=name not in required, required=True)
    frame_checks: list[pa.Check] = []
    if kind == "trades":
        settle = rules.date("settle_date", pl.col("settle_date"))
        trade = rules.date("trade_date", pl.col("trade_date"))

        def settles_after_trade(data: pa.PolarsData) -> pl.LazyFrame:
            return data.lazyframe.select((settle >= trade).fill_null(value=True))

        frame_checks.append(
            pa.Check(settles_after_trade, error="settle_date: is before trade_date")
        )
    return pa.DataFrameSchema(columns, checks=frame_checks)


# ---- validation -------------------------------------------------------------------------------


def _labels(profile: Profile) -> dict[str, str]:
    return {
        name: (f"{name} ({profile.columns[name]})" if name in profile.columns else name)
        for name in FIELDS[profile.kind]
    }


def _reasons(profile: Profile, loaded: LoadedFile, rules: _Rules) -> pl.DataFrame:
    """(index, reasons): every failure of every bad record, in field order."""
    import pandera.polars as pa

    text = loaded.text
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
    if loaded.problems.height:
        index = text.select(ROW).with_row_index("index")
        frames.append(
            loaded.problems.join(index, on=ROW, how="inner").select(
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


def validate(profile: Profile, loaded: LoadedFile) -> Validated:
    """Split a loaded file into valid canonical rows and quarantined ones (see the module
    docstring)."""
    if loaded.kind != profile.kind:
        raise ValueError(f"file loaded as {loaded.kind}, profile is for {profile.kind}")
    rules = _Rules(loaded)
    bad = _reasons(profile, loaded, rules)
    text = loaded.text
    flagged = pl.select(
        pl.int_range(0, text.height, dtype=pl.Int64).is_in(bad.get_column("index").implode())
    ).to_series()
    quarantine = (
        text.select(ROW)
        .with_row_index("_i")
        .filter(flagged)
        .with_columns(
            _values_json(_raw_rows(loaded.raw, flagged), null_is_empty=loaded.null_is_empty),
            pl.col("_i").cast(pl.Int64),
        )
        .join(bad, left_on="_i", right_on="index", how="left", maintain_order="left")
        .select(pl.col(ROW).cast(pl.Int64), "values", "reasons")
        .sort(ROW, maintain_order=True)
    )
    typed = _parse(profile, rules, text)
    if bad.height:
        typed = typed.filter(~flagged)
    if typed.get_column(_LOST).any():  # the checks and the parsing disagree: a bug, say so
        raise TieoutError(f"{loaded.source}: a row passed validation but did not parse (a bug)")
    valid = conform(typed, profile.kind)
    return Validated(valid, quarantine.select(list(QUARANTINE)).cast(pl.Schema(QUARANTINE)))


_LOST: Final = "_lost"


def _parse(profile: Profile, rules: _Rules, text: pl.DataFrame) -> pl.DataFrame:
    """Every row parsed (bad rows' unparseable cells become null; the caller drops those
    rows). `_lost` flags a row where a non-empty cell did not parse: never a valid row."""
    exprs: list[pl.Expr] = [pl.col(ROW)]
    lost: list[pl.Expr] = []
    row_ref = pl.concat_str([pl.lit("row:"), pl.col(ROW).cast(pl.String)])
    for name in FIELDS[profile.kind]:
        col = pl.col(name)
        if name in DATE_FIELDS:
            parsed = rules.date(name, col)
        elif name in TIME_FIELDS:
            parsed = rules.time(name, col)
        elif name in ("quantity", "price", "commission", "fees", "amount"):
            parsed = rules.decimal_text(name, col).cast(MONEY, strict=False)
        else:
            if name != "ref":
                exprs.append(col)
            continue
        exprs.append(parsed.alias(name))
        lost.append(col.is_not_null() & parsed.is_null())
    if profile.kind == "trades":
        exprs += [
            pl.coalesce(pl.col("exec_id"), row_ref).alias("ref"),
            pl.lit(profile.venue, pl.String).alias("venue"),
        ]
    elif profile.kind == "cash":
        exprs.append(pl.coalesce(pl.col("ref"), row_ref).alias("ref"))
    else:
        exprs.append(row_ref.alias("ref"))
    exprs.append(pl.any_horizontal(lost).alias(_LOST) if lost else pl.lit(value=False).alias(_LOST))
    # lazily: common subexpression elimination parses each column once, not once more for
    # `_lost` (an eager select evaluates every parse twice)
    return text.lazy().select(exprs).collect()
