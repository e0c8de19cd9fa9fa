"""Shared pieces of the matching engine (recon.engine): tolerances, the result types, exact
decimal expressions, canonical JSON built from columns, deterministic one-to-one pairing and the
nearest-candidate search. Pure: polars expressions over frames, no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext
from itertools import pairwise
from typing import Final

import polars as pl

from oms.errors import BadInput
from oms.values import (
    FRAC_DIGITS,
    INT_DIGITS,
    MINOR_UNIT_CURRENCIES,
    QUANTUM,
    ZERO,
    decimal_context,
    minor_units,
    parse_decimal,
)
from recon.canonical import MONEY, SCHEMAS

Frame = pl.DataFrame | pl.LazyFrame

# Stages of `matched`, in the order the waterfall runs them (positions and cash use a subset).
STAGES: Final = ("reference", "key", "aggregate", "flat", "balance")

MATCHED_SCHEMA: Final[dict[str, pl.DataType]] = {
    "internal_ref": pl.String(),
    "venue_ref": pl.String(),
    "venue_row": pl.Int64(),
    "stage": pl.String(),
    "group": pl.String(),
}

BREAKS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "break_key": pl.String(),
    "type": pl.String(),
    "account": pl.String(),
    "symbol": pl.String(),
    "internal_refs": pl.List(pl.String()),
    "venue_refs": pl.List(pl.String()),
    "venue_rows": pl.List(pl.Int64()),
    "differences": pl.String(),
    "amount": MONEY,
    "currency": pl.String(),
    "suggestion": pl.String(),
}

BALANCES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "account": pl.String(),
    "currency": pl.String(),
    "date": pl.Date(),
    "balance": MONEY,
    "kind": pl.String(),  # "opening_balance" | "closing_balance"
}

TOLERANCE_KEYS: Final = ("price", "quantity", "commission", "fees", "amount")
_MAX_TOLERANCE: Final = Decimal(10) ** INT_DIGITS - QUANTUM


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Absolute tolerances per canonical field (all default 0: exact). A difference d is within
    tolerance t when |d| <= t, compared exactly. `amount` is the cash tolerance (movements and
    balances). Values finer than 1E-12 are floored to 1E-12: every difference of two canonical
    values is a multiple of 1E-12, so flooring never changes a comparison."""

    price: Decimal = ZERO
    quantity: Decimal = ZERO
    commission: Decimal = ZERO
    fees: Decimal = ZERO
    amount: Decimal = ZERO

    def __post_init__(self) -> None:
        for key in TOLERANCE_KEYS:
            value = getattr(self, key)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise BadInput(f"tolerance.{key}", f"{value!r} is not a finite decimal")
            if value < 0:
                raise BadInput(f"tolerance.{key}", f"{value} must not be negative")
            if value > _MAX_TOLERANCE:
                raise BadInput(f"tolerance.{key}", f"{value} is larger than any tieout decimal")
            with localcontext(decimal_context(60)):
                floored = value.quantize(QUANTUM, rounding=ROUND_FLOOR)
            object.__setattr__(self, key, floored)

    @classmethod
    def of(cls, spec: Tolerance | Mapping[str, Decimal | str] | None) -> Tolerance:
        """Build from a profile's `[tolerance]` table ({field: Decimal or decimal string});
        an unknown field is refused (a typo would otherwise silently mean "exact")."""
        if spec is None:
            return cls()
        if isinstance(spec, Tolerance):
            return spec
        values: dict[str, Decimal] = {}
        for key, raw in spec.items():
            if key not in TOLERANCE_KEYS:
                raise BadInput(
                    f"tolerance.{key}",
                    f"unknown tolerance field {key!r} (known: {', '.join(TOLERANCE_KEYS)})",
                )
            if isinstance(raw, str):
                values[key] = parse_decimal(raw, f"tolerance.{key}", non_negative=True)
            elif isinstance(raw, Decimal):
                values[key] = raw
            else:
                raise BadInput(f"tolerance.{key}", f"{raw!r} is not a decimal string")
        return cls(**values)

    def lit(self, key: str) -> pl.Expr:
        """The tolerance as a canonical-money literal."""
        value: Decimal = getattr(self, key)
        return pl.lit(value, MONEY)

    def raw(self, key: str) -> int:
        """The tolerance as an integer count of 1E-12."""
        value: Decimal = getattr(self, key)
        return int(value.scaleb(FRAC_DIGITS))


@dataclass(frozen=True, slots=True)
class MatchStats:
    """Counts of one matching run. `matched` holds (stage, internal records, venue records) for
    every stage in STAGES order that matched anything; `breaks` holds (type, count) by type."""

    kind: str
    internal_records: int
    venue_records: int
    matched: tuple[tuple[str, int, int], ...]
    breaks: tuple[tuple[str, int], ...]

    @property
    def matched_internal(self) -> int:
        return sum(n for _, n, _ in self.matched)

    @property
    def matched_venue(self) -> int:
        return sum(n for _, _, n in self.matched)

    @property
    def break_count(self) -> int:
        return sum(n for _, n in self.breaks)

    def break_counts(self) -> dict[str, int]:
        return dict(self.breaks)

    def matched_by_stage(self) -> dict[str, tuple[int, int]]:
        return {stage: (i, v) for stage, i, v in self.matched}


@dataclass(frozen=True, slots=True)
class MatchResult:
    """`matched`: MATCHED_SCHEMA, one row per matched pair (reference/key/balance stages), one
    row per member record of an aggregate group (the other side's columns null) and one row per
    flat position absent on the other side. `breaks`: BREAKS_SCHEMA, one row per break."""

    matched: pl.DataFrame
    breaks: pl.DataFrame
    stats: MatchStats


# --- frames ----------------------------------------------------------------------------------


def lazy(frame: Frame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def conform_lazy(frame: Frame, schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """Select `schema`'s columns in order, cast to its dtypes; absent columns as nulls."""
    lf = lazy(frame)
    names = set(lf.collect_schema().names())
    return lf.select(
        [
            pl.col(name).cast(dtype) if name in names else pl.lit(None, dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )


def height(frame: Frame) -> int:
    if isinstance(frame, pl.DataFrame):
        return frame.height
    return int(frame.select(pl.len()).collect().item())


def with_ids(frame: pl.DataFrame, kind: str, *, venue: bool) -> pl.DataFrame:
    """Sort records into a total order independent of their input order and number them `_id`
    0..n-1: the order every tie-break follows. Internal records by ref (then row), venue
    records by row (their order in the file; then ref); then by every canonical column."""
    cols = list(SCHEMAS[kind])
    first = ["row", "ref"] if venue else ["ref", "row"]
    order = [*first, *(c for c in cols if c not in ("ref", "row"))]
    return (
        frame.sort(order, nulls_last=True)
        .with_row_index("_id")
        .with_columns(pl.col("_id").cast(pl.Int64))
    )


def with_key_refs(frame: pl.DataFrame, within: Sequence[str] = ()) -> pl.DataFrame:
    """Add `_kref`, the ref as break keys use it: the n-th record (in `_id` order) carrying
    the same ref (and the same `within` columns) on one side is "REF#n" (n >= 2), so that keys
    stay unique."""
    nth = rank_within([*within, "ref"]) + 1
    return frame.with_columns(
        pl.when(nth > 1)
        .then(pl.concat_str([pl.col("ref"), pl.lit("#"), nth.cast(pl.String)]))
        .otherwise(pl.col("ref"))
        .alias("_kref")
    )


def empty_matched() -> pl.DataFrame:
    return pl.DataFrame(schema=MATCHED_SCHEMA)


def empty_breaks() -> pl.DataFrame:
    return pl.DataFrame(schema=BREAKS_SCHEMA)


# --- text ------------------------------------------------------------------------------------


def dec_text(expr: pl.Expr) -> pl.Expr:
    """Canonical decimal text of a scale-12 decimal: no trailing zeros ("10.5", "100")."""
    return expr.cast(pl.String).str.replace(r"\.?0+$", "")


def json_value(expr: pl.Expr) -> pl.Expr:
    """The JSON literal of a string expression (escaped, quoted; null -> null)."""
    return (
        pl.struct(expr.alias("v"))
        .struct.json_encode()
        .str.strip_prefix('{"v":')
        .str.strip_suffix("}")
    )


def differences_json(segments: Sequence[tuple[str, pl.Expr, pl.Expr, pl.Expr]]) -> pl.Expr:
    """Canonical JSON (sorted keys, no spaces) {field: {"internal": text, "venue": text}} of the
    fields whose flag is true. `segments`: (field, flag, internal text, venue text)."""
    parts = [
        pl.when(flag.fill_null(False)).then(
            pl.concat_str(
                [
                    pl.lit(f'"{field}":{{"internal":'),
                    json_value(internal),
                    pl.lit(',"venue":'),
                    json_value(venue),
                    pl.lit("}"),
                ]
            )
        )
        for field, flag, internal, venue in sorted(segments, key=lambda s: s[0])
    ]
    if not parts:
        return pl.lit("{}")
    body = pl.concat_list(parts).list.drop_nulls().list.join(",")
    return pl.concat_str([pl.lit("{"), body, pl.lit("}")])


def refs_key(prefix: str, internal_refs: pl.Expr, venue_refs: pl.Expr) -> pl.Expr:
    """break_key: prefix + sorted internal refs + "|" + sorted venue refs (comma-separated)."""
    return pl.concat_str(
        [
            pl.lit(prefix),
            internal_refs.list.sort().list.join(","),
            pl.lit("|"),
            venue_refs.list.sort().list.join(","),
        ]
    )


def one(expr: pl.Expr) -> pl.Expr:
    """A one-element list of a column (an empty list when the value is null)."""
    return pl.concat_list([expr]).list.drop_nulls()


def no_strings() -> pl.Expr:
    return pl.lit([], dtype=pl.List(pl.String()))


def no_rows() -> pl.Expr:
    return pl.lit([], dtype=pl.List(pl.Int64()))


def zero_money() -> pl.Expr:
    return pl.lit(ZERO, MONEY)


def absdiff(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return (a - b).abs()


# half the smallest amount of each currency whose minor unit is not 2 (ISO 4217)
_HALF_UNITS: Final = {
    code: Decimal(5).scaleb(-minor_units(code) - 1) for code in MINOR_UNIT_CURRENCIES
}


def money_tolerance(tol: pl.Expr, currency: pl.Expr, fills: pl.Expr | None = None) -> pl.Expr:
    """A charge's tolerance: the profile's, but at least half the currency's smallest amount
    per booked fill (a commission counted from a rate is booked rounded to cents, or whole yen,
    fill by fill; the venue's unrounded figure is the same money)."""
    half = currency.replace_strict(
        _HALF_UNITS, default=Decimal("0.005"), return_dtype=MONEY
    ).fill_null(pl.lit(Decimal("0.005"), MONEY))
    if fills is not None:
        half = (half * fills.cast(pl.Int64)).cast(MONEY)
    return pl.when(tol > half).then(tol).otherwise(half)


# --- exact integer arithmetic on scale-12 decimals -------------------------------------------
#
# polars multiplies Decimal(38,12) by Decimal(38,12) into scale 12, rounding the 24-digit
# product; sums of products then drift. For the aggregate (VWAP) test the products are computed
# exactly instead: each value becomes its integer count of 1E-12 (Int128), split into three
# base-1E13 limbs; products and sums run limb-wise in Int128 (no limb sum can overflow below
# ~5E11 rows) and signs are read after carrying.

LIMB: Final = 10**13
SCALE: Final = 10**FRAC_DIGITS


def raw_int(expr: pl.Expr) -> pl.Expr:
    """A Decimal(38,12) value as its exact integer count of 1E-12 (Int128)."""
    whole = expr.cast(pl.Int128)
    frac = ((expr - whole.cast(MONEY)) * pl.lit(SCALE, MONEY)).cast(pl.Int128)
    out: pl.Expr = whole * SCALE + frac
    return out


def limbs(expr: pl.Expr) -> list[pl.Expr]:
    """Three base-1E13 limbs of raw_int(expr): l0 + l1*B + l2*B^2, 0 <= l0,l1 < B."""
    raw = raw_int(expr)
    return [raw % LIMB, (raw // LIMB) % LIMB, raw // (LIMB * LIMB)]


def int_limbs(value: int) -> list[int]:
    return [value % LIMB, (value // LIMB) % LIMB, value // (LIMB * LIMB)]


def product_limbs(a: Sequence[pl.Expr], b: Sequence[pl.Expr | int]) -> list[pl.Expr]:
    """Limbs (5, uncarried) of the exact product of two limb numbers."""
    out: list[pl.Expr] = []
    for k in range(len(a) + len(b) - 1):
        terms = [a[i] * b[k - i] for i in range(len(a)) if 0 <= k - i < len(b)]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        out.append(total)
    return out


def carry(frame: pl.DataFrame, cols: Sequence[str]) -> pl.DataFrame:
    """Carry the limb columns `cols` (low to high) so that every limb but the top one lies in
    [0, B); the top one then carries the sign of the whole number."""
    for low, high in pairwise(cols):
        frame = frame.with_columns(
            (pl.col(high) + pl.col(low) // LIMB).alias(high), (pl.col(low) % LIMB).alias(low)
        )
    return frame


# --- pairing ---------------------------------------------------------------------------------


def rank_within(keys: Sequence[str]) -> pl.Expr:
    """0-based rank of a record among those sharing `keys`, by `_id` (a total order)."""
    return (pl.col("_id").rank("ordinal").over(list(keys)) - 1).cast(pl.Int64)


def greedy_pairs(candidates: pl.DataFrame, order: Sequence[str]) -> pl.DataFrame:
    """One-to-one pairing of candidate pairs (columns `_li`, `_ri`): the greedy choice in the
    total order `order` (which must end with `_li`, `_ri`), i.e. the best remaining candidate
    first. Computed in rounds of mutual best candidates, which picks exactly the same pairs."""
    rest = candidates.sort(list(order), nulls_last=True)
    chosen: list[pl.DataFrame] = []
    while rest.height:
        pick = rest.filter(pl.col("_li").is_first_distinct() & pl.col("_ri").is_first_distinct())
        chosen.append(pick)
        rest = rest.filter(
            ~pl.col("_li").is_in(pick["_li"].implode())
            & ~pl.col("_ri").is_in(pick["_ri"].implode())
        )
    if not chosen:
        return candidates.clear()
    return pl.concat(chosen)


def nearest(
    left: pl.DataFrame,
    right: pl.DataFrame,
    by: Sequence[str],
    chain: Sequence[str],
    tiebreak: Sequence[str],
) -> pl.DataFrame:
    """For each `left` record (`_id`), the `right` record with the same `by` values nearest on
    chain[0], then (among those at that value) chain[1], and so on; equal distances prefer the
    lower value, then the first right record in `tiebreak` order. Returns `_id` plus the right
    record's columns prefixed with `n_`; left records without any candidate are absent."""
    if left.height == 0 or right.height == 0:
        return pl.DataFrame(
            schema={"_id": pl.Int64(), **{f"n_{c}": t for c, t in right.schema.items()}}
        )
    cur = left.select("_id", *by, *chain)
    fixed: list[str] = []
    for key in chain:
        values = right.select(*by, *fixed, key).unique().rename({key: "_k"}).sort("_k")
        probe = cur.sort(key)
        picks = []
        for strategy in ("backward", "forward"):
            picks.append(
                probe.join_asof(
                    values,
                    left_on=key,
                    right_on="_k",
                    by_left=[*by, *(f"_c_{f}" for f in fixed)],
                    by_right=[*by, *fixed],
                    strategy=strategy,
                    check_sortedness=False,
                    coalesce=False,
                ).select("_id", pl.col("_k").alias(f"_{strategy}"))
            )
        both = picks[0].join(picks[1], on="_id")
        down = pl.col(key) - pl.col("_backward")
        up = pl.col("_forward") - pl.col(key)
        choice = (
            pl.when(pl.col("_forward").is_null() | (down <= up))
            .then(pl.col("_backward"))
            .otherwise(pl.col("_forward"))
        )
        cur = (
            cur.join(both, on="_id")
            .with_columns(choice.alias(f"_c_{key}"))
            .drop("_backward", "_forward")
            .filter(pl.col(f"_c_{key}").is_not_null())
        )
        fixed.append(key)
    firsts = right.sort(list(tiebreak), nulls_last=True).unique(
        subset=[*by, *chain], keep="first", maintain_order=True
    )
    found = cur.select("_id", *by, *(pl.col(f"_c_{k}").alias(k) for k in chain)).join(
        firsts, on=[*by, *chain]
    )
    return found.select("_id", *(pl.col(c).alias(f"n_{c}") for c in right.columns)).select(
        "_id", *(f"n_{c}" for c in right.columns)
    )


# --- assembling ------------------------------------------------------------------------------


def finish(
    kind: str,
    matched_parts: Sequence[tuple[str, pl.DataFrame]],
    break_parts: Sequence[pl.DataFrame],
    internal_records: int,
    venue_records: int,
) -> MatchResult:
    """Concatenate, order deterministically and count. `matched_parts`: (stage, frame) with
    MATCHED_SCHEMA columns (`stage` filled here)."""
    by_stage: dict[str, list[pl.DataFrame]] = {}
    for stage, part in matched_parts:
        if part.height:
            frame = part.with_columns(pl.lit(stage, pl.String()).alias("stage"))
            frame = frame.select(list(MATCHED_SCHEMA)).cast(MATCHED_SCHEMA)  # type: ignore[arg-type]
            by_stage.setdefault(stage, []).append(frame)
    ordered: list[pl.DataFrame] = []
    counts: list[tuple[str, int, int]] = []
    for stage in STAGES:
        if stage not in by_stage:
            continue
        frames = by_stage[stage]
        frame = frames[0] if len(frames) == 1 else pl.concat(frames)
        if stage == "reference" and kind == "trades":
            # millions of pairs, each venue row at most once: one integer key orders them
            if not frame["venue_row"].is_sorted():
                frame = frame.sort("venue_row", nulls_last=True)
        else:
            frame = frame.sort(["group", "internal_ref", "venue_ref", "venue_row"], nulls_last=True)
        ordered.append(frame)
        counts.append((stage, frame["internal_ref"].count(), frame["venue_ref"].count()))
    matched = pl.concat(ordered) if ordered else empty_matched()
    parts = [
        p.select(list(BREAKS_SCHEMA)).cast(BREAKS_SCHEMA)  # type: ignore[arg-type]
        for p in break_parts
        if p.height
    ]
    breaks = pl.concat(parts) if parts else empty_breaks()
    breaks = breaks.sort(
        ["break_key", "type", "differences", "amount", "suggestion"], nulls_last=True
    ).rechunk()
    types = breaks.group_by("type").len().sort("type")
    stats = MatchStats(
        kind=kind,
        internal_records=internal_records,
        venue_records=venue_records,
        matched=tuple(counts),
        breaks=tuple((str(t), int(n)) for t, n in types.iter_rows()),
    )
    return MatchResult(matched=matched, breaks=breaks, stats=stats)
