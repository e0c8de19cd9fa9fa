"""The trade waterfall of the matching engine (see recon.engine for the contract).

Stage 1 is one streaming full join on exec_id that carries only the compared columns and yields
a narrow frame (exec_id, internal row, venue row, class); everything that is not a clean pair
(about 1% of the records) is fetched back by row and goes through stages 2-4 in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Literal

import polars as pl

from recon.canonical import MONEY, TRADE_FIELD_ORDER, TRADES
from recon.engine_core import (
    MatchResult,
    Tolerance,
    absdiff,
    carry,
    conform_lazy,
    dec_text,
    differences_json,
    finish,
    greedy_pairs,
    height,
    int_limbs,
    lazy,
    limbs,
    money_tolerance,
    nearest,
    no_rows,
    no_strings,
    one,
    product_limbs,
    rank_within,
    refs_key,
    with_ids,
    with_key_refs,
    zero_money,
)

KEY: Final = ("account", "symbol", "side", "trade_date")
COMPARED: Final = ("side", "quantity", "price", "trade_date", "settle_date", "commission", "fees")
TWIN_FIELDS: Final = tuple(c for c in TRADES if c not in ("row", "ref"))
NEAR_FIELDS: Final = ("side", "quantity", "price", "trade_date")
TYPE_OF: Final = {field: f"{field}_mismatch" for field in TRADE_FIELD_ORDER}

# stage-1 classes
_CLEAN, _DIFFERS, _INTERNAL_ONLY, _VENUE_ONLY, _RETIRED = 0, 1, 2, 3, 4


# --- field comparison ------------------------------------------------------------------------


def _c(name: str, suffix: str) -> pl.Expr:
    return pl.col(f"{name}{suffix}")


def field_flags(tol: Tolerance, i: str = "_i", v: str = "_v") -> dict[str, pl.Expr]:
    """Per compared field, whether the internal (suffix i) and venue (suffix v) values differ
    beyond tolerance. Venue nulls in settle_date, commission and fees mean "not reported"."""

    def beyond(name: str, key: str) -> pl.Expr:
        return (absdiff(_c(name, i), _c(name, v)) > tol.lit(key)).fill_null(True)

    def reported(name: str, key: str) -> pl.Expr:
        diff = absdiff(_c(name, i).fill_null(zero_money()), _c(name, v))
        return _c(name, v).is_not_null() & (diff > money_tolerance(tol.lit(key), _c("currency", i)))

    return {
        "side": _c("side", i).ne_missing(_c("side", v)),
        "quantity": beyond("quantity", "quantity"),
        "price": beyond("price", "price"),
        "trade_date": _c("trade_date", i).ne_missing(_c("trade_date", v)),
        "settle_date": _c("settle_date", v).is_not_null()
        & _c("settle_date", i).ne_missing(_c("settle_date", v)),
        "commission": reported("commission", "commission"),
        "fees": reported("fees", "fees"),
    }


def _field_groups(flags: dict[str, pl.Expr]) -> dict[str, pl.Expr]:
    """TRADE_FIELD_ORDER fields -> flag ("fee" is commission or fees)."""
    return {
        field: (flags["commission"] | flags["fees"]) if field == "fee" else flags[field]
        for field in TRADE_FIELD_ORDER
    }


def _any(flags: dict[str, pl.Expr]) -> pl.Expr:
    out = pl.lit(False)
    for flag in flags.values():
        out = out | flag
    return out


def _first_type(flags: dict[str, pl.Expr]) -> pl.Expr:
    groups = _field_groups(flags)
    expr: pl.Expr = pl.lit(None, pl.String())
    for field in reversed(TRADE_FIELD_ORDER):
        expr = pl.when(groups[field]).then(pl.lit(TYPE_OF[field])).otherwise(expr)
    return expr


def _pair_amount(kind: pl.Expr) -> pl.Expr:
    q_i, p_i, q_v, p_v = (
        _c("quantity", "_i"),
        _c("price", "_i"),
        _c("quantity", "_v"),
        _c("price", "_v"),
    )
    notional = (q_i * p_i).abs()
    fee = absdiff(
        _c("commission", "_i").fill_null(zero_money()),
        _c("commission", "_v").fill_null(_c("commission", "_i")).fill_null(zero_money()),
    )
    fee = fee + absdiff(
        _c("fees", "_i").fill_null(zero_money()),
        _c("fees", "_v").fill_null(_c("fees", "_i")).fill_null(zero_money()),
    )
    return (
        pl.when(kind == "side_mismatch")
        .then(pl.lit(2, MONEY) * notional)
        .when(kind == "quantity_mismatch")
        .then((absdiff(q_i, q_v) * p_v.fill_null(p_i)).abs())
        .when(kind == "price_mismatch")
        .then((absdiff(p_i, p_v) * q_i).abs())
        .when(kind == "fee_mismatch")
        .then(fee)
        .otherwise(notional)
        .cast(MONEY)
    )


def _text(name: str, suffix: str) -> pl.Expr:
    col = _c(name, suffix)
    if TRADES[name] == MONEY:
        return dec_text(col)
    return col.cast(pl.String)


def _pair_differences(flags: dict[str, pl.Expr]) -> pl.Expr:
    return differences_json(
        [(name, flags[name], _text(name, "_i"), _text(name, "_v")) for name in COMPARED]
    )


# --- stage 1: reference ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stage1:
    matched: pl.DataFrame  # internal_ref, venue_ref, venue_row, group
    differ: pl.DataFrame  # row_i, row_v: exec_id pairs with differences
    internal_rest: pl.Series  # internal rows to stages 2-4
    venue_rest: pl.Series  # venue rows to stages 2-4
    duplicates: pl.DataFrame  # row_v, first_row, occurrence: later repeats of an exec_id


def _repeated(rows: pl.Series) -> pl.Series:
    """The values occurring more than once (an integer sort: cheaper than hashing 10M rows)."""
    ordered = rows.drop_nulls().sort()
    return ordered.filter(ordered.diff() == 0).unique()


JOIN_ROWS: Final = 4_000_000  # records per side held by one pass of the exec_id join


def _cuts(venue: pl.LazyFrame, n_v: int, parts: int) -> list[str]:
    """parts - 1 exec_ids cutting the venue's (a sample of about 4,096 of its n_v records)
    into about equal ranges; fewer when they repeat."""
    if parts <= 1:
        return []
    sample = (
        venue.select("exec_id")
        .gather_every(max(1, n_v // 4096))
        .drop_nulls()
        .sort("exec_id")
        .collect()["exec_id"]
    )
    if sample.len() == 0:
        return []
    picked = (sample[sample.len() * k // parts] for k in range(1, parts))
    return sorted(set(picked))


def _ranges(cuts: list[str]) -> list[pl.Expr]:
    """Filters splitting every record (a null exec_id in the last) by the cuts."""
    if not cuts:
        return [pl.lit(value=True)]
    e = pl.col("exec_id")
    bounds: list[str | None] = [None, *cuts, None]
    out = []
    for lo, hi in pairwise(bounds):
        if lo is None:
            out.append(e < hi)
        elif hi is None:
            out.append((e >= lo) | e.is_null())
        else:
            out.append((e >= lo) & (e < hi))
    return out


def _reference_stage(
    internal: pl.LazyFrame, venue: pl.LazyFrame, tol: Tolerance, n_i: int, n_v: int
) -> _Stage1:
    left = internal.select(
        "exec_id",
        pl.col("row").alias("row_i"),
        *(pl.col(c).alias(f"{c}_i") for c in COMPARED),
        pl.col("currency").alias("currency_i"),  # a charge's rounding (money_tolerance)
    )
    right = venue.select(
        "exec_id", pl.col("row").alias("row_v"), *(pl.col(c).alias(f"{c}_v") for c in COMPARED)
    )
    cls = (
        pl.when(pl.col("row_v").is_null())
        .then(pl.lit(_INTERNAL_ONLY))
        .when(pl.col("row_i").is_null())
        .then(pl.lit(_VENUE_ONLY))
        .when(_any(field_flags(tol)))
        .then(pl.lit(_DIFFERS))
        .otherwise(pl.lit(_CLEAN))
        .cast(pl.UInt8)
        .alias("cls")
    )
    # The streaming join holds its build side (the smaller one) as a hash table with the
    # compared columns: past JOIN_ROWS records it runs once per range of exec_ids, so that
    # only a part is held at a time. The ranges are cut at quantiles of a sample of venue
    # exec_ids (any cut is correct; a sorted Parquet scan then reads only its row groups).
    build: Literal["force_left", "force_right"] = "force_left" if n_i <= n_v else "force_right"
    cuts = _cuts(venue, n_v, -(-max(n_i, n_v) // JOIN_ROWS))
    parts = []
    for keep in _ranges(cuts):
        parts.append(
            left.filter(keep)
            .join(right.filter(keep), on="exec_id", how="full", coalesce=True, build_side=build)
            .select("exec_id", "row_i", "row_v", cls)
            .collect(engine="streaming")
        )
    joined = parts[0] if len(parts) == 1 else pl.concat(parts)
    lost_i: list[pl.Series] = []
    dups: list[pl.DataFrame] = []
    repeated_i = joined["row_i"].count() != n_i
    repeated_v = joined["row_v"].count() != n_v
    if repeated_i or repeated_v:
        # an exec_id repeated on a side: every record appears once per counterpart (and never
        # unpaired). Keep the pair of first occurrences (by row); later venue repeats are
        # duplicates, later internal repeats go on to the key stages.
        twice = pl.lit(False)
        if repeated_i:
            twice = twice | pl.col("row_i").is_in(_repeated(joined["row_i"]).implode())
        if repeated_v:
            twice = twice | pl.col("row_v").is_in(_repeated(joined["row_v"]).implode())
        multi = joined.filter(twice.fill_null(False)).with_columns(
            pl.col("row_i").min().over("exec_id").alias("first_i"),
            pl.col("row_v").min().over("exec_id").alias("first_v"),
        )
        later_i = multi.filter(pl.col("row_i") != pl.col("first_i"))["row_i"].unique()
        later_v = multi.filter(pl.col("row_v") != pl.col("first_v"))
        lost_i.append(later_i.alias("row"))
        dups.append(
            later_v.select("exec_id", "row_v", pl.col("first_v").alias("first_row")).unique()
        )
        # retire every pair but the first occurrences' (a new class, in place: no copy)
        retired = (
            pl.col("row_i").is_in(later_i.implode())
            | pl.col("row_v").is_in(later_v["row_v"].implode())
        ).fill_null(False)
        joined = joined.with_columns(
            pl.when(retired).then(pl.lit(_RETIRED, pl.UInt8)).otherwise(pl.col("cls")).alias("cls")
        )
    venue_only = joined.filter(pl.col("cls") == _VENUE_ONLY).select("exec_id", "row_v")
    venue_only = venue_only.with_columns(
        pl.when(pl.col("exec_id").is_not_null())
        .then(pl.col("row_v").min().over("exec_id"))
        .otherwise(pl.col("row_v"))
        .alias("first_row")
    )
    dups.append(
        venue_only.filter(pl.col("row_v") != pl.col("first_row")).select(
            "exec_id", "row_v", "first_row"
        )
    )
    duplicates = pl.concat(dups).with_columns(
        (pl.col("row_v").rank("ordinal").over("exec_id") + 1).cast(pl.Int64).alias("occurrence")
    )
    # sorted here, on two columns, so that the many clean pairs are gathered only once
    clean = joined.filter(pl.col("cls") == _CLEAN).select("exec_id", "row_v").sort("row_v")
    matched = clean.select(
        pl.col("exec_id").alias("internal_ref"),
        pl.col("exec_id").alias("venue_ref"),
        pl.col("row_v").alias("venue_row"),
        pl.lit(None, pl.String()).alias("group"),
    )
    return _Stage1(
        matched=matched,
        differ=joined.filter(pl.col("cls") == _DIFFERS).select("row_i", "row_v"),
        internal_rest=pl.concat(
            [joined.filter(pl.col("cls") == _INTERNAL_ONLY)["row_i"].alias("row"), *lost_i]
        ),
        venue_rest=venue_only.filter(pl.col("row_v") == pl.col("first_row"))["row_v"].alias("row"),
        duplicates=duplicates.select("row_v", "first_row", "occurrence"),
    )


# --- pairs -----------------------------------------------------------------------------------


def _suffixed(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
    return frame.rename({c: f"{c}{suffix}" for c in frame.columns})


def _pair_frame(pairs: pl.DataFrame, ints: pl.DataFrame, vens: pl.DataFrame) -> pl.DataFrame:
    """pairs (_li, _ri) with both records' columns (suffixes _i, _v)."""
    return (
        pairs.select("_li", "_ri")
        .join(_suffixed(ints, "_i"), left_on="_li", right_on="_id_i")
        .join(_suffixed(vens, "_v"), left_on="_ri", right_on="_id_v")
    )


def _pair_outcomes(wide: pl.DataFrame, tol: Tolerance) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split pairs into clean matches (MATCHED columns) and breaks (one per pair)."""
    flags = field_flags(tol)
    wide = wide.with_columns(_any(flags).alias("_differs"))
    matched = wide.filter(~pl.col("_differs")).select(
        pl.col("ref_i").alias("internal_ref"),
        pl.col("ref_v").alias("venue_ref"),
        pl.col("row_v").alias("venue_row"),
        pl.lit(None, pl.String()).alias("group"),
    )
    kind = _first_type(flags)
    breaks = (
        wide.filter(pl.col("_differs"))
        .with_columns(kind.alias("type"))
        .select(
            refs_key("T:", one(pl.col("_kref_i")), one(pl.col("_kref_v"))).alias("break_key"),
            "type",
            pl.col("account_i").fill_null(pl.col("account_v")).alias("account"),
            pl.col("symbol_i").fill_null(pl.col("symbol_v")).alias("symbol"),
            one(pl.col("ref_i")).alias("internal_refs"),
            one(pl.col("ref_v")).alias("venue_refs"),
            one(pl.col("row_v")).alias("venue_rows"),
            _pair_differences(flags).alias("differences"),
            _pair_amount(pl.col("type")).alias("amount"),
            pl.col("currency_i").fill_null(pl.col("currency_v")).alias("currency"),
            pl.lit(None, pl.String()).alias("suggestion"),
        )
    )
    return matched, breaks


# --- stage 2: key ----------------------------------------------------------------------------


def _key_pairs(ints: pl.DataFrame, vens: pl.DataFrame, tol: Tolerance) -> pl.DataFrame:
    """One-to-one pairs (_li, _ri) agreeing on KEY, quantity and price within tolerance:
    the nearest (quantity, then price) first, ties by internal then venue ref."""
    exact_on = [*KEY, "quantity", "price"]
    left = ints.with_columns(rank_within(exact_on).alias("_rk"))
    right = vens.with_columns(rank_within(exact_on).alias("_rk"))
    pairs = (
        left.select(*exact_on, "_rk", pl.col("_id").alias("_li"))
        .join(right.select(*exact_on, "_rk", pl.col("_id").alias("_ri")), on=[*exact_on, "_rk"])
        .select("_li", "_ri")
    )
    if tol.price == 0 and tol.quantity == 0:
        return pairs
    on = [*KEY, "quantity"] if tol.quantity == 0 else list(KEY)
    rest_i = ints.filter(~pl.col("_id").is_in(pairs["_li"].implode()))
    rest_v = vens.filter(~pl.col("_id").is_in(pairs["_ri"].implode()))
    candidates = (
        rest_i.select(
            *on,
            pl.col("quantity").alias("_qi"),
            pl.col("price").alias("_pi"),
            pl.col("_id").alias("_li"),
        )
        .join(
            rest_v.select(
                *on,
                pl.col("quantity").alias("_qv"),
                pl.col("price").alias("_pv"),
                pl.col("_id").alias("_ri"),
            ),
            on=on,
        )
        .with_columns(
            absdiff(pl.col("_qi"), pl.col("_qv")).alias("_dq"),
            absdiff(pl.col("_pi"), pl.col("_pv")).alias("_dp"),
        )
        .filter((pl.col("_dq") <= tol.lit("quantity")) & (pl.col("_dp") <= tol.lit("price")))
    )
    chosen = greedy_pairs(candidates, ["_dq", "_dp", "_li", "_ri"]).select("_li", "_ri")
    return pl.concat([pairs, chosen])


# --- stage 3: aggregate ----------------------------------------------------------------------


def _group_sums(frame: pl.DataFrame, suffix: str, by: tuple[str, ...] = KEY) -> pl.DataFrame:
    q = limbs(pl.col("quantity"))
    notional = product_limbs(q, limbs(pl.col("price")))
    order = ["ref", "row"]
    return (
        frame.with_columns(
            *(e.alias(f"_q{k}") for k, e in enumerate(q)),
            *(e.alias(f"_s{k}") for k, e in enumerate(notional)),
        )
        .group_by(list(by))
        .agg(
            pl.col("_id").alias("_ids"),
            pl.col("ref").sort_by(order).alias("_refs"),
            pl.col("_kref").sort_by(order).alias("_krefs"),
            pl.col("row").sort_by(order).alias("_rows"),
            *(pl.col(f"_q{k}").sum() for k in range(3)),
            *(pl.col(f"_s{k}").sum() for k in range(5)),
            (pl.col("quantity") * pl.col("price")).abs().sum().alias("_notional"),
            pl.col("commission").fill_null(zero_money()).sum().alias("_comm"),
            pl.col("commission").is_not_null().any().alias("_comm_rep"),
            pl.col("fees").fill_null(zero_money()).sum().alias("_fees"),
            pl.col("fees").is_not_null().any().alias("_fees_rep"),
            pl.col("settle_date")
            .drop_nulls()
            .unique()
            .sort()
            .cast(pl.String)
            .str.join(",")
            .alias("_settle"),
            pl.col("currency").min().alias("_currency"),
        )
        .rename(lambda c: c if c in by else f"{c}{suffix}")
    )


def _aggregate_groups(
    ints: pl.DataFrame, vens: pl.DataFrame, tol: Tolerance, by: tuple[str, ...] = KEY
) -> pl.DataFrame:
    """Groups (KEY) whose total quantities are equal and whose notionals differ by at most
    tol.price * quantity, i.e. volume-weighted prices within tolerance, compared exactly."""
    if ints.height == 0 or vens.height == 0:
        return pl.DataFrame()
    groups = _group_sums(ints, "_i", by).join(_group_sums(vens, "_v", by), on=list(by))
    if groups.height == 0:
        return groups
    groups = groups.with_columns(
        *((pl.col(f"_q{k}_i") - pl.col(f"_q{k}_v")).alias(f"_dq{k}") for k in range(3)),
        *((pl.col(f"_s{k}_i") - pl.col(f"_s{k}_v")).alias(f"_d{k}") for k in range(5)),
    )
    allowed = product_limbs([pl.col(f"_q{k}_i") for k in range(3)], int_limbs(tol.raw("price")))
    groups = groups.with_columns(
        *((allowed[k] - pl.col(f"_d{k}")).alias(f"_x{k}") for k in range(5)),
        *((allowed[k] + pl.col(f"_d{k}")).alias(f"_y{k}") for k in range(5)),
    )
    groups = carry(groups, [f"_dq{k}" for k in range(3)])
    groups = carry(groups, [f"_x{k}" for k in range(5)])
    groups = carry(groups, [f"_y{k}" for k in range(5)])
    same_quantity = (pl.col("_dq0") == 0) & (pl.col("_dq1") == 0) & (pl.col("_dq2") == 0)
    return groups.filter(same_quantity & (pl.col("_x4") >= 0) & (pl.col("_y4") >= 0))


def _aggregate_outcomes(groups: pl.DataFrame, tol: Tolerance) -> tuple[pl.DataFrame, pl.DataFrame]:
    settle = (pl.col("_settle_v") != "") & (pl.col("_settle_i") != pl.col("_settle_v"))
    fills = pl.col("_ids_i").list.len()  # the book rounded each fill's charges on its own
    comm = pl.col("_comm_rep_v") & (
        absdiff(pl.col("_comm_i"), pl.col("_comm_v"))
        > money_tolerance(tol.lit("commission"), pl.col("_currency_i"), fills)
    )
    fees = pl.col("_fees_rep_v") & (
        absdiff(pl.col("_fees_i"), pl.col("_fees_v"))
        > money_tolerance(tol.lit("fees"), pl.col("_currency_i"), fills)
    )
    groups = groups.with_columns(
        pl.concat_str(
            [
                pl.lit("A:"),
                pl.col("account"),
                pl.lit("|"),
                pl.col("symbol"),
                pl.lit("|"),
                pl.col("side"),
                pl.lit("|"),
                pl.col("trade_date").cast(pl.String),
                # (a group of one exec_id's records: named by it too)
                *([pl.lit("|"), pl.col("_xref")] if "_xref" in groups.columns else []),
            ]
        ).alias("group"),
        settle.alias("_fs"),
        comm.alias("_fc"),
        fees.alias("_ff"),
    ).with_columns((pl.col("_fs") | pl.col("_fc") | pl.col("_ff")).alias("_differs"))
    clean = groups.filter(~pl.col("_differs"))
    matched = pl.concat(
        [
            clean.select("group", pl.col("_refs_i").alias("internal_ref")).explode("internal_ref"),
            clean.select(
                "group", pl.col("_refs_v").alias("venue_ref"), pl.col("_rows_v").alias("venue_row")
            ).explode("venue_ref", "venue_row"),
        ],
        how="diagonal",
    )
    kind = (
        pl.when(pl.col("_fs"))
        .then(pl.lit("settle_date_mismatch"))
        .otherwise(pl.lit("fee_mismatch"))
    )
    fee_amount = pl.when(pl.col("_comm_rep_v")).then(
        absdiff(pl.col("_comm_i"), pl.col("_comm_v"))
    ).otherwise(zero_money()) + pl.when(pl.col("_fees_rep_v")).then(
        absdiff(pl.col("_fees_i"), pl.col("_fees_v"))
    ).otherwise(zero_money())
    breaks = (
        groups.filter(pl.col("_differs"))
        .with_columns(kind.alias("type"))
        .select(
            refs_key("T:", pl.col("_krefs_i"), pl.col("_krefs_v")).alias("break_key"),
            "type",
            "account",
            "symbol",
            pl.col("_refs_i").alias("internal_refs"),
            pl.col("_refs_v").alias("venue_refs"),
            pl.col("_rows_v").alias("venue_rows"),
            differences_json(
                [
                    ("settle_date", pl.col("_fs"), pl.col("_settle_i"), pl.col("_settle_v")),
                    (
                        "commission",
                        pl.col("_fc"),
                        dec_text(pl.col("_comm_i")),
                        dec_text(pl.col("_comm_v")),
                    ),
                    (
                        "fees",
                        pl.col("_ff"),
                        dec_text(pl.col("_fees_i")),
                        dec_text(pl.col("_fees_v")),
                    ),
                ]
            ).alias("differences"),
            pl.when(pl.col("type") == "fee_mismatch")
            .then(fee_amount)
            .otherwise(pl.col("_notional_i"))
            .cast(MONEY)
            .alias("amount"),
            pl.col("_currency_i").fill_null(pl.col("_currency_v")).alias("currency"),
            pl.lit(None, pl.String()).alias("suggestion"),
        )
    )
    return matched, breaks


def _split_candidates(wide: pl.DataFrame, tol: Tolerance) -> pl.DataFrame:
    """The exec_id pairs (wide, _pair_frame) that may be one part of a split or an
    aggregate: their quantities differ, and they share the group's key (account, symbol,
    side, trade date), so that both records fall in one group of stage 3."""
    flags = field_flags(tol)
    same_key = (
        (pl.col("account_i") == pl.col("account_v"))
        & (pl.col("symbol_i") == pl.col("symbol_v"))
        & ~flags["side"]
        & ~flags["trade_date"]
    )
    return wide.filter(flags["quantity"] & same_key.fill_null(False))


def _with_repeats(split: pl.DataFrame, dups: pl.DataFrame) -> pl.Series:
    """The venue records of the split candidates: each pair's own and its exec_id's repeats."""
    repeats = dups.filter(pl.col("ref").is_in(split["ref_v"].implode()))["_id"]
    return pl.concat([split["_ri"], repeats])


def _take_groups(
    groups: pl.DataFrame,
    tol: Tolerance,
    matched: list[tuple[str, pl.DataFrame]],
    breaks: list[pl.DataFrame],
    paired_v: list[pl.Series],
    labels: Mapping[str, str] | None = None,
) -> tuple[pl.Series, pl.Series]:
    """Record the outcomes of aggregate groups (matches, or a break per group); returns the
    internal and venue record ids they took. `labels` renames groups (the exec_id appended)."""
    agg_matched, agg_breaks = _aggregate_outcomes(groups, tol)
    if labels:
        agg_matched = agg_matched.with_columns(pl.col("group").replace(dict(labels)))
    matched.append(("aggregate", agg_matched))
    breaks.append(agg_breaks)
    used_v = groups["_ids_v"].explode()
    paired_v.append(used_v)
    return groups["_ids_i"].explode(), used_v


def _one_pair_groups(
    groups: pl.DataFrame, split: pl.DataFrame, refs: pl.DataFrame, repeats: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, str]]:
    """The second pass's groups that are one exec_id pair with the records that make up its
    difference (the pair's repeats at the venue, or records left unmatched): two pairs that
    each differ (E1 100 vs 90, E2 50 vs 60) are two breaks, never netted into one group.
    A venue repeat of another pair's exec_id is no part of this pair's difference (E2's
    repeat on E1's day does not make up E1's shortfall): such a group is not taken.
    Returns them and a group label per group (its exec_id appended)."""
    if groups.height == 0:
        return groups, {}
    pair_i = set(split["_li"].to_list())
    pair_v = set(split["_ri"].to_list())
    ref_of = dict(zip(refs["_id"].to_list(), refs["ref"].to_list(), strict=True))
    repeat_of = dict(zip(repeats["_id"].to_list(), repeats["ref"].to_list(), strict=True))
    keep: list[bool] = []
    labels: dict[str, str] = {}
    for row in groups.select("account", "symbol", "side", "trade_date", "_ids_i", "_ids_v").rows():
        account, symbol, side, trade_date, ids_i, ids_v = row
        ours_i = [i for i in ids_i if i in pair_i]
        ours_v = [i for i in ids_v if i in pair_v]
        one = len(ours_i) == 1 and len(ours_v) == 1 and len(ids_i) + len(ids_v) > 2
        if one:
            own = ref_of[ours_i[0]]
            one = all(repeat_of.get(i, own) == own for i in ids_v)
        keep.append(one)
        if one:
            label = f"A:{account}|{symbol}|{side}|{trade_date}"
            labels[label] = f"{label}|{ref_of[ours_i[0]]}"
    return groups.filter(pl.Series(keep)), labels


# --- stage 4: what is left -------------------------------------------------------------------


def _twins(rest_v: pl.DataFrame, all_v: pl.DataFrame, matched_ids: pl.Series) -> pl.DataFrame:
    """Unmatched venue records identical (all but row/ref) to a matched venue record:
    `_id` and the first such matched record's row as `first_row`."""
    found = all_v.filter(pl.col("_id").is_in(matched_ids.implode()))
    if found.height == 0 or rest_v.height == 0:
        return pl.DataFrame(schema={"_id": pl.Int64(), "first_row": pl.Int64()})
    firsts = found.group_by(list(TWIN_FIELDS)).agg(pl.col("row").min().alias("first_row"))
    return rest_v.join(firsts, on=list(TWIN_FIELDS), nulls_equal=True).select("_id", "first_row")


def _near_pairs(ints: pl.DataFrame, vens: pl.DataFrame, tol: Tolerance) -> pl.DataFrame:
    """Pairs (_li, _ri) agreeing on account, symbol and all of side, quantity, price (within
    tolerance) and trade_date but exactly one, where the pairing is unique on both sides."""
    cols = ["account", "symbol", *NEAR_FIELDS]
    left = ints.select(*cols, pl.col("_id").alias("_li"))
    right = vens.select(*cols, pl.col("_id").alias("_ri"))
    found: list[pl.DataFrame] = []
    for field in NEAR_FIELDS:
        on = ["account", "symbol", *(f for f in ("side", "trade_date") if f != field)]
        if tol.quantity == 0 and field != "quantity":
            on.append("quantity")
        joined = left.join(right, on=on, suffix="_v", coalesce=False)
        agree = {
            "side": pl.col("side") == pl.col("side_v"),
            "trade_date": pl.col("trade_date") == pl.col("trade_date_v"),
            "quantity": absdiff(pl.col("quantity"), pl.col("quantity_v")) <= tol.lit("quantity"),
            "price": absdiff(pl.col("price"), pl.col("price_v")) <= tol.lit("price"),
        }
        keep = ~agree[field]
        for other in NEAR_FIELDS:
            if other != field:
                keep = keep & agree[other]
        found.append(joined.filter(keep).select("_li", "_ri"))
    candidates = pl.concat(found).unique()
    return candidates.filter((pl.len().over("_li") == 1) & (pl.len().over("_ri") == 1)).select(
        "_li", "_ri"
    )


def _suggestion_text(side_name: str) -> pl.Expr:
    return pl.concat_str(
        [
            pl.lit(f"{side_name} "),
            pl.col("n_ref"),
            pl.lit(": "),
            pl.col("n_side"),
            pl.lit(" "),
            dec_text(pl.col("n_quantity")),
            pl.lit(" @ "),
            dec_text(pl.col("n_price")),
            pl.lit(" on "),
            pl.col("n_trade_date").cast(pl.String),
        ]
    )


def _missing(rest: pl.DataFrame, other: pl.DataFrame, internal_side: bool) -> pl.DataFrame:
    near = nearest(
        rest,
        other,
        by=["account", "symbol"],
        chain=["trade_date", "quantity", "price"],
        tiebreak=["_id"],
    )
    text = _suggestion_text("venue" if internal_side else "internal")
    with_text = rest.join(near.select("_id", text.alias("suggestion")), on="_id", how="left")
    ref = one(pl.col("ref"))
    return with_text.select(
        (
            refs_key("T:", one(pl.col("_kref")), no_strings())
            if internal_side
            else refs_key("T:", no_strings(), one(pl.col("_kref")))
        ).alias("break_key"),
        pl.lit("missing_at_venue" if internal_side else "missing_internal").alias("type"),
        "account",
        "symbol",
        (ref if internal_side else no_strings()).alias("internal_refs"),
        (no_strings() if internal_side else ref).alias("venue_refs"),
        (no_rows() if internal_side else one(pl.col("row"))).alias("venue_rows"),
        pl.lit("{}").alias("differences"),
        (pl.col("quantity") * pl.col("price")).abs().cast(MONEY).alias("amount"),
        "currency",
        "suggestion",
    )


def _duplicate_breaks(dups: pl.DataFrame, key: pl.Expr) -> pl.DataFrame:
    """dups: venue records plus `first_row` (and whatever `key` needs)."""
    return dups.select(
        key.alias("break_key"),
        pl.lit("duplicate_venue").alias("type"),
        "account",
        "symbol",
        no_strings().alias("internal_refs"),
        one(pl.col("ref")).alias("venue_refs"),
        one(pl.col("row")).alias("venue_rows"),
        pl.lit("{}").alias("differences"),
        (pl.col("quantity") * pl.col("price")).abs().cast(MONEY).alias("amount"),
        "currency",
        pl.concat_str(
            [pl.lit("duplicate of venue row "), pl.col("first_row").cast(pl.String)]
        ).alias("suggestion"),
    )


# --- the waterfall ---------------------------------------------------------------------------


def match_trades(
    internal: pl.DataFrame | pl.LazyFrame,
    venue: pl.DataFrame | pl.LazyFrame,
    tolerance: Tolerance,
) -> MatchResult:
    tol = tolerance
    internal_lf = conform_lazy(lazy(internal), TRADES)
    venue_lf = conform_lazy(lazy(venue), TRADES)
    n_i, n_v = height(internal), height(venue)
    s1 = _reference_stage(internal_lf, venue_lf, tol, n_i, n_v)

    want_i = pl.concat([s1.differ["row_i"].alias("row"), s1.internal_rest])
    want_v = pl.concat(
        [s1.differ["row_v"].alias("row"), s1.venue_rest, s1.duplicates["row_v"].alias("row")]
    )
    fetched_i, fetched_v = pl.collect_all(
        [
            internal_lf.filter(pl.col("row").is_in(want_i.implode())),
            venue_lf.filter(pl.col("row").is_in(want_v.implode())),
        ],
        engine="streaming",
    )
    ints = with_key_refs(with_ids(fetched_i, "trades", venue=False))
    vens = with_key_refs(with_ids(fetched_v, "trades", venue=True))

    matched: list[tuple[str, pl.DataFrame]] = [("reference", s1.matched)]
    breaks: list[pl.DataFrame] = []

    # stage 1 pairs with differences, and exec_id repeats at the venue (their outcomes after
    # stage 3: a pair whose quantities differ may be part of a split the venue reported under
    # the book's exec_id)
    differ = s1.differ.join(
        ints.select(pl.col("row").alias("row_i"), pl.col("_id").alias("_li")), on="row_i"
    ).join(vens.select(pl.col("row").alias("row_v"), pl.col("_id").alias("_ri")), on="row_v")
    dups = vens.join(s1.duplicates, left_on="row", right_on="row_v")

    rest_i = ints.filter(pl.col("row").is_in(s1.internal_rest.implode()))
    rest_v = vens.filter(pl.col("row").is_in(s1.venue_rest.implode()))
    all_v = rest_v

    # stage 2: key
    pairs = _key_pairs(rest_i, rest_v, tol)
    key_matched, key_breaks = _pair_outcomes(_pair_frame(pairs, rest_i, rest_v), tol)
    matched.append(("key", key_matched))
    breaks.append(key_breaks)
    paired_v = [pairs["_ri"]]
    rest_i = rest_i.filter(~pl.col("_id").is_in(pairs["_li"].implode()))
    rest_v = rest_v.filter(~pl.col("_id").is_in(pairs["_ri"].implode()))

    # stage 3: aggregate
    groups = _aggregate_groups(rest_i, rest_v, tol)
    if groups.height:
        agg_matched, agg_breaks = _aggregate_outcomes(groups, tol)
        matched.append(("aggregate", agg_matched))
        breaks.append(agg_breaks)
        used_i = groups["_ids_i"].explode()
        used_v = groups["_ids_v"].explode()
        paired_v.append(used_v)
        rest_i = rest_i.filter(~pl.col("_id").is_in(used_i.implode()))
        rest_v = rest_v.filter(~pl.col("_id").is_in(used_v.implode()))

    # stage 3 again, with the exec_id pairs whose quantities differ: a venue that splits a
    # trade (X1 20 reported as X1 12 and X1 8) or aggregates two (T5 7 and T6 3 as T5 10)
    # under the book's exec_id matches as a group, as with new exec_ids (a pair and its
    # repeats were a quantity_mismatch and a duplicate_venue). Only groups the first pass
    # left unmatched are looked at, so this pass can only add matches.
    differ = _pair_frame(differ, ints, vens)
    split = _split_candidates(differ, tol)
    if split.height:
        # (a) each pair with its own repeats at the venue (E1 100 reported as E1 60 + E1 40):
        # grouped by exec_id as well, so two splits of one day match each on its own
        own_i = ints.filter(pl.col("_id").is_in(split["_li"].implode()))
        own_v = vens.filter(pl.col("_id").is_in(_with_repeats(split, dups).implode()))
        by_ref = (*KEY, "_xref")
        groups = _aggregate_groups(
            own_i.with_columns(pl.col("ref").alias("_xref")),
            own_v.with_columns(pl.col("ref").alias("_xref")),
            tol,
            by_ref,
        )
        if groups.height:
            used_i, used_v = _take_groups(groups, tol, matched, breaks, paired_v)
            split = split.filter(~pl.col("_li").is_in(used_i.implode()))
            differ = differ.filter(~pl.col("_li").is_in(used_i.implode()))
            dups = dups.filter(~pl.col("_id").is_in(used_v.implode()))
    if split.height:
        # (b) a pair with the records left unmatched in its group (E1 60 and E2 40 reported
        # as E1 100): one pair a group, never two differing pairs netted
        with_v = _with_repeats(split, dups)
        pool_i = pl.concat([rest_i, ints.filter(pl.col("_id").is_in(split["_li"].implode()))])
        pool_v = pl.concat([rest_v, vens.filter(pl.col("_id").is_in(with_v.implode()))])
        groups, labels = _one_pair_groups(
            _aggregate_groups(pool_i, pool_v, tol),
            split,
            ints.select("_id", "ref"),
            dups.filter(pl.col("_id").is_in(with_v.implode())).select("_id", "ref"),
        )
        if groups.height:
            used_i, used_v = _take_groups(groups, tol, matched, breaks, paired_v, labels)
            rest_i = rest_i.filter(~pl.col("_id").is_in(used_i.implode()))
            rest_v = rest_v.filter(~pl.col("_id").is_in(used_v.implode()))
            differ = differ.filter(~pl.col("_li").is_in(used_i.implode()))
            dups = dups.filter(~pl.col("_id").is_in(used_v.implode()))

    ref_matched, ref_breaks = _pair_outcomes(differ, tol)
    matched.append(("reference", ref_matched))
    breaks.append(ref_breaks)
    breaks.append(
        _duplicate_breaks(
            dups,
            pl.concat_str(
                [pl.lit("T:|"), pl.col("ref"), pl.lit("#"), pl.col("occurrence").cast(pl.String)]
            ),
        )
    )

    # stage 4: identical repeats of a matched venue record, near matches, missing records
    twins = _twins(rest_v, all_v, pl.concat(paired_v))
    if twins.height:
        twin_records = rest_v.join(twins, on="_id")
        breaks.append(
            _duplicate_breaks(twin_records, refs_key("T:", no_strings(), one(pl.col("_kref"))))
        )
        rest_v = rest_v.filter(~pl.col("_id").is_in(twins["_id"].implode()))

    near = _near_pairs(rest_i, rest_v, tol)
    if near.height:
        _, near_breaks = _pair_outcomes(_pair_frame(near, rest_i, rest_v), tol)
        breaks.append(near_breaks)
        rest_i = rest_i.filter(~pl.col("_id").is_in(near["_li"].implode()))
        rest_v = rest_v.filter(~pl.col("_id").is_in(near["_ri"].implode()))

    breaks.append(_missing(rest_i, rest_v, internal_side=True))
    breaks.append(_missing(rest_v, rest_i, internal_side=False))
    return finish("trades", matched, breaks, n_i, n_v)
