"""Position and cash matching of the engine (see recon.engine for the contract). Both files are
small next to trade files (one line per position or movement), so they are matched in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Final

import polars as pl

from recon.canonical import CASH, MONEY, POSITIONS, SETTLEMENT_LINE
from recon.engine_core import (
    BALANCES_SCHEMA,
    MatchResult,
    Tolerance,
    absdiff,
    conform_lazy,
    dec_text,
    differences_json,
    empty_matched,
    finish,
    greedy_pairs,
    nearest,
    no_rows,
    no_strings,
    one,
    rank_within,
    refs_key,
    with_ids,
    with_key_refs,
    zero_money,
)

BALANCE_TYPES: Final = ("opening_balance", "closing_balance")


def _load(frame: pl.DataFrame | pl.LazyFrame, kind: str, *, venue: bool) -> pl.DataFrame:
    schema = POSITIONS if kind == "positions" else CASH
    loaded = with_ids(conform_lazy(frame, schema).collect(), kind, venue=venue)
    if kind == "cash":  # refs need not be unique in cash files (numbered per CASH_IDENTITY)
        loaded = with_key_refs(loaded, CASH_IDENTITY)
    return loaded


# A cash break is of one account, currency and value date: its key says them before its refs,
# since a ref is not unique across them (an import's settlement entries of every account,
# currency and value date share the import's ref; a bank's own refs are its own per account).
CASH_IDENTITY: Final = ("account", "currency", "date")


def _cash_key(internal_refs: pl.Expr, venue_refs: pl.Expr, suffix: str = "") -> pl.Expr:
    """C:<account>|<currency>|<value date>|<internal refs>|<venue refs>."""
    return pl.concat_str(
        [
            pl.lit("C:"),
            pl.col(f"account{suffix}").fill_null(""),
            pl.lit("|"),
            pl.col(f"currency{suffix}").fill_null(""),
            pl.lit("|"),
            pl.col(f"date{suffix}").cast(pl.String).fill_null(""),
            refs_key("|", internal_refs, venue_refs),
        ]
    )


def _suffixed(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
    return frame.rename({c: f"{c}{suffix}" for c in frame.columns})


def _wide(pairs: pl.DataFrame, ints: pl.DataFrame, vens: pl.DataFrame) -> pl.DataFrame:
    return (
        pairs.select("_li", "_ri")
        .join(_suffixed(ints, "_i"), left_on="_li", right_on="_id_i")
        .join(_suffixed(vens, "_v"), left_on="_ri", right_on="_id_v")
    )


def _unpaired(frame: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    return frame.filter(~pl.col("_id").is_in(ids.implode()))


def _pair_matched(wide: pl.DataFrame, group: pl.Expr | None = None) -> pl.DataFrame:
    return wide.select(
        pl.col("ref_i").alias("internal_ref"),
        pl.col("ref_v").alias("venue_ref"),
        pl.col("row_v").alias("venue_row"),
        (group if group is not None else pl.lit(None, pl.String())).alias("group"),
    )


# --- positions -------------------------------------------------------------------------------


def _price_of(symbol: pl.Expr, prices: Mapping[str, Decimal]) -> pl.Expr:
    """The book's valuation price by symbol (None for a symbol it has none of)."""
    return symbol.replace_strict(dict(prices), default=None, return_dtype=MONEY)


def match_positions(
    internal: pl.DataFrame | pl.LazyFrame,
    venue: pl.DataFrame | pl.LazyFrame,
    tolerance: Tolerance,
    prices: Mapping[str, Decimal] | None = None,
) -> MatchResult:
    """A quantity break's amount is the difference at the venue's price, else the book's mark
    (the internal record's price), else `prices` (the book's price of the symbol where it has
    no mark: its last fill's); it is 0 only when none of them is known. `prices` only values
    breaks: the internal record's price alone is compared with the venue's."""
    tol = tolerance
    priced = {s: p for s, p in (prices or {}).items() if p is not None}
    ints = _load(internal, "positions", venue=False)
    vens = _load(venue, "positions", venue=True)
    key = ["account", "symbol"]
    left = ints.with_columns(rank_within(key).alias("_rk"))
    right = vens.with_columns(rank_within(key).alias("_rk"))
    pairs = left.select(*key, "_rk", pl.col("_id").alias("_li")).join(
        right.select(*key, "_rk", pl.col("_id").alias("_ri")), on=[*key, "_rk"]
    )
    wide = _wide(pairs, ints, vens).join(pairs.select("_li", "_rk"), on="_li")
    q_i, q_v, p_i, p_v = (pl.col(c) for c in ("quantity_i", "quantity_v", "price_i", "price_v"))
    quantity = (absdiff(q_i, q_v) > tol.lit("quantity")).fill_null(True)
    price = (absdiff(p_i, p_v) > tol.lit("price")).fill_null(False)
    wide = wide.with_columns(quantity.alias("_fq"), price.alias("_fp"))
    clean = wide.filter(~pl.col("_fq") & ~pl.col("_fp"))
    mark = p_v.fill_null(p_i).fill_null(_price_of(pl.col("symbol_i"), priced)).fill_null(
        zero_money()
    )
    break_key = pl.concat_str(
        [
            pl.lit("P:"),
            pl.col("account_i"),
            pl.lit("|"),
            pl.col("symbol_i"),
            pl.when(pl.col("_rk") > 0)
            .then(pl.concat_str([pl.lit("#"), (pl.col("_rk") + 1).cast(pl.String)]))
            .otherwise(pl.lit("")),
        ]
    )
    pair_breaks = (
        wide.filter(pl.col("_fq") | pl.col("_fp"))
        .with_columns(
            pl.when(pl.col("_fq"))
            .then(pl.lit("quantity_mismatch"))
            .otherwise(pl.lit("price_mismatch"))
            .alias("type")
        )
        .select(
            break_key.alias("break_key"),
            "type",
            pl.col("account_i").alias("account"),
            pl.col("symbol_i").alias("symbol"),
            one(pl.col("ref_i")).alias("internal_refs"),
            one(pl.col("ref_v")).alias("venue_refs"),
            one(pl.col("row_v")).alias("venue_rows"),
            differences_json(
                [
                    ("quantity", pl.col("_fq"), dec_text(q_i), dec_text(q_v)),
                    ("price", pl.col("_fp"), dec_text(p_i), dec_text(p_v)),
                ]
            ).alias("differences"),
            pl.when(pl.col("type") == "quantity_mismatch")
            .then(absdiff(q_i, q_v) * mark)
            .otherwise(absdiff(p_i, p_v) * q_i)
            .abs()
            .cast(MONEY)
            .alias("amount"),
            pl.lit(None, pl.String()).alias("currency"),
            pl.lit(None, pl.String()).alias("suggestion"),
        )
    )
    matched: list[tuple[str, pl.DataFrame]] = [("key", _pair_matched(clean))]
    breaks = [pair_breaks]
    for frame, internal_side in (
        (_unpaired(left, pairs["_li"]), True),
        (_unpaired(right, pairs["_ri"]), False),
    ):
        is_flat = (pl.col("quantity") == 0).fill_null(False)
        flat = frame.filter(is_flat)
        matched.append(
            (
                "flat",
                flat.select(
                    (pl.col("ref") if internal_side else pl.lit(None, pl.String())).alias(
                        "internal_ref"
                    ),
                    (pl.lit(None, pl.String()) if internal_side else pl.col("ref")).alias(
                        "venue_ref"
                    ),
                    (pl.lit(None, pl.Int64()) if internal_side else pl.col("row")).alias(
                        "venue_row"
                    ),
                    pl.lit(None, pl.String()).alias("group"),
                ),
            )
        )
        ref = one(pl.col("ref"))
        breaks.append(
            frame.filter(~is_flat).select(
                pl.concat_str(
                    [
                        pl.lit("P:"),
                        pl.col("account").fill_null(""),
                        pl.lit("|"),
                        pl.col("symbol").fill_null(""),
                        pl.when(pl.col("_rk") > 0)
                        .then(pl.concat_str([pl.lit("#"), (pl.col("_rk") + 1).cast(pl.String)]))
                        .otherwise(pl.lit("")),
                    ]
                ).alias("break_key"),
                pl.lit("missing_at_venue" if internal_side else "missing_internal").alias("type"),
                "account",
                "symbol",
                (ref if internal_side else no_strings()).alias("internal_refs"),
                (no_strings() if internal_side else ref).alias("venue_refs"),
                (no_rows() if internal_side else one(pl.col("row"))).alias("venue_rows"),
                pl.lit("{}").alias("differences"),
                (
                    pl.col("quantity")
                    * pl.col("price")
                    .fill_null(_price_of(pl.col("symbol"), priced))
                    .fill_null(zero_money())
                )
                .abs()
                .cast(MONEY)
                .alias("amount"),
                pl.lit(None, pl.String()).alias("currency"),
                pl.lit(None, pl.String()).alias("suggestion"),
            )
        )
    return finish("positions", matched, breaks, ints.height, vens.height)


# --- cash ------------------------------------------------------------------------------------


def _cash_key_pairs(ints: pl.DataFrame, vens: pl.DataFrame, tol: Tolerance) -> pl.DataFrame:
    exact_on = ["account", "currency", "date", "amount"]
    left = ints.with_columns(rank_within(exact_on).alias("_rk"))
    right = vens.with_columns(rank_within(exact_on).alias("_rk"))
    pairs = (
        left.select(*exact_on, "_rk", pl.col("_id").alias("_li"))
        .join(right.select(*exact_on, "_rk", pl.col("_id").alias("_ri")), on=[*exact_on, "_rk"])
        .select("_li", "_ri")
    )
    if tol.amount == 0:
        return pairs
    on = ["account", "currency", "date"]
    candidates = (
        _unpaired(ints, pairs["_li"])
        .select(*on, pl.col("amount").alias("_ai"), pl.col("_id").alias("_li"))
        .join(
            _unpaired(vens, pairs["_ri"]).select(
                *on, pl.col("amount").alias("_av"), pl.col("_id").alias("_ri")
            ),
            on=on,
        )
        .with_columns(absdiff(pl.col("_ai"), pl.col("_av")).alias("_da"))
        .filter(pl.col("_da") <= tol.lit("amount"))
    )
    chosen = greedy_pairs(candidates, ["_da", "_li", "_ri"]).select("_li", "_ri")
    return pl.concat([pairs, chosen])


def _cash_aggregate(
    ints: pl.DataFrame, vens: pl.DataFrame, tol: Tolerance
) -> tuple[pl.DataFrame, pl.Series, pl.Series]:
    """The (account, currency, date) groups where one side has one line and the other several
    whose sum is within tolerance of it: their matched rows, and the ids used on each side.
    Only the book's trade settlements (line_type SETTLEMENT_LINE) take part: a bank nets a
    day's trades into one line, never a client's deposit against a withdrawal."""
    none = pl.Series("_id", [], dtype=pl.Int64)
    ints = ints.filter(pl.col("line_type") == SETTLEMENT_LINE)  # trades: never a deposit
    if ints.height == 0 or vens.height == 0:
        return empty_matched(), none, none
    on = ["account", "currency", "date"]

    def sums(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        return (
            frame.group_by(on)
            .agg(
                pl.col("_id").sort().alias("_ids"),
                pl.col("ref").sort_by("_id").alias("_refs"),
                pl.col("row").sort_by("_id").alias("_rows"),
                pl.col("amount").sum().alias("_sum"),
                pl.len().alias("_n"),
            )
            .rename(lambda c: c if c in on else f"{c}{suffix}")
        )

    groups = sums(ints, "_i").join(sums(vens, "_v"), on=on)
    one_side = ((pl.col("_n_i") == 1) & (pl.col("_n_v") > 1)) | (
        (pl.col("_n_v") == 1) & (pl.col("_n_i") > 1)
    )
    within = absdiff(pl.col("_sum_i"), pl.col("_sum_v")) <= tol.lit("amount")
    groups = groups.filter(one_side & within.fill_null(False))
    if groups.height == 0:
        return empty_matched(), none, none
    groups = groups.with_columns(
        pl.concat_str(
            [
                pl.lit("C:"),
                pl.col("account"),
                pl.lit("|"),
                pl.col("currency"),
                pl.lit("|"),
                pl.col("date").cast(pl.String),
            ]
        ).alias("group")
    )
    matched = pl.concat(
        [
            groups.select("group", pl.col("_refs_i").alias("internal_ref")).explode(
                "internal_ref"
            ),
            groups.select(
                "group", pl.col("_refs_v").alias("venue_ref"), pl.col("_rows_v").alias("venue_row")
            ).explode("venue_ref", "venue_row"),
        ],
        how="diagonal",
    )
    used_i = groups.select(pl.col("_ids_i").alias("_id")).explode("_id")["_id"]
    used_v = groups.select(pl.col("_ids_v").alias("_id")).explode("_id")["_id"]
    return matched, used_i, used_v


def _cash_pair_breaks(wide: pl.DataFrame, tol: Tolerance) -> pl.DataFrame:
    amount = (absdiff(pl.col("amount_i"), pl.col("amount_v")) > tol.lit("amount")).fill_null(True)
    date = pl.col("date_i").ne_missing(pl.col("date_v"))
    return wide.filter(amount).select(
        _cash_key(one(pl.col("_kref_i")), one(pl.col("_kref_v")), "_i").alias("break_key"),
        pl.lit("amount_mismatch").alias("type"),
        pl.col("account_i").alias("account"),
        pl.lit(None, pl.String()).alias("symbol"),
        one(pl.col("ref_i")).alias("internal_refs"),
        one(pl.col("ref_v")).alias("venue_refs"),
        one(pl.col("row_v")).alias("venue_rows"),
        differences_json(
            [
                (
                    "amount",
                    pl.lit(True),
                    dec_text(pl.col("amount_i")),
                    dec_text(pl.col("amount_v")),
                ),
                ("date", date, pl.col("date_i").cast(pl.String), pl.col("date_v").cast(pl.String)),
            ]
        ).alias("differences"),
        absdiff(pl.col("amount_i"), pl.col("amount_v")).cast(MONEY).alias("amount"),
        pl.col("currency_i").alias("currency"),
        pl.lit(None, pl.String()).alias("suggestion"),
    )


def _cash_missing(rest: pl.DataFrame, other: pl.DataFrame, internal_side: bool) -> pl.DataFrame:
    near = nearest(
        rest,
        other,
        by=["account", "currency"],
        chain=["date", "amount"],
        tiebreak=["_id"],
    )
    text = pl.concat_str(
        [
            pl.lit("internal " if not internal_side else "venue "),
            pl.col("n_ref"),
            pl.lit(": "),
            dec_text(pl.col("n_amount")),
            pl.lit(" on "),
            pl.col("n_date").cast(pl.String),
        ]
    )
    ref = one(pl.col("ref"))
    return rest.join(near.select("_id", text.alias("suggestion")), on="_id", how="left").select(
        (
            _cash_key(one(pl.col("_kref")), no_strings())
            if internal_side
            else _cash_key(no_strings(), one(pl.col("_kref")))
        ).alias("break_key"),
        pl.lit("missing_at_venue" if internal_side else "missing_internal").alias("type"),
        "account",
        pl.lit(None, pl.String()).alias("symbol"),
        (ref if internal_side else no_strings()).alias("internal_refs"),
        (no_strings() if internal_side else ref).alias("venue_refs"),
        (no_rows() if internal_side else one(pl.col("row"))).alias("venue_rows"),
        pl.lit("{}").alias("differences"),
        pl.col("amount").abs().cast(MONEY).alias("amount"),
        "currency",
        "suggestion",
    )


def _balances(
    lines: pl.DataFrame, balances: pl.DataFrame | pl.LazyFrame | None, tol: Tolerance
) -> tuple[pl.DataFrame, pl.DataFrame]:
    key = ["account", "currency", "date", "kind"]
    book = (
        conform_lazy(balances, BALANCES_SCHEMA).collect()
        if balances is not None
        else pl.DataFrame(schema=BALANCES_SCHEMA)
    )
    book = book.sort([*key, "balance"], nulls_last=True).unique(
        subset=key, keep="first", maintain_order=True
    )
    ident = pl.concat_str(
        [
            pl.lit("balance:"),
            pl.col("kind"),
            pl.lit(":"),
            pl.col("account"),
            pl.lit(":"),
            pl.col("currency"),
            pl.lit(":"),
            pl.col("date").cast(pl.String),
        ]
    )
    joined = (
        lines.with_columns(pl.col("line_type").alias("kind"))
        .with_columns(rank_within(key).alias("_rk"))
        .join(book, on=key, how="left")
        .with_columns(
            ident.alias("_ident"),
            (absdiff(pl.col("balance"), pl.col("amount")) > tol.lit("amount"))
            .fill_null(True)
            .alias("_differs"),
        )
    )
    matched = joined.filter(~pl.col("_differs")).select(
        pl.col("_ident").alias("internal_ref"),
        pl.col("ref").alias("venue_ref"),
        pl.col("row").alias("venue_row"),
        pl.lit(None, pl.String()).alias("group"),
    )
    has_book = pl.col("balance").is_not_null()
    breaks = joined.filter(pl.col("_differs")).select(
        pl.concat_str(
            [
                pl.lit("C:"),
                pl.col("_ident"),
                pl.when(pl.col("_rk") > 0)
                .then(pl.concat_str([pl.lit("#"), (pl.col("_rk") + 1).cast(pl.String)]))
                .otherwise(pl.lit("")),
            ]
        ).alias("break_key"),
        pl.when(has_book)
        .then(pl.lit("balance_mismatch"))
        .otherwise(pl.lit("missing_internal"))
        .alias("type"),
        "account",
        pl.lit(None, pl.String()).alias("symbol"),
        pl.when(has_book)
        .then(one(pl.col("_ident")))
        .otherwise(no_strings())
        .alias("internal_refs"),
        one(pl.col("ref")).alias("venue_refs"),
        one(pl.col("row")).alias("venue_rows"),
        pl.when(has_book)
        .then(
            differences_json(
                [("amount", pl.lit(True), dec_text(pl.col("balance")), dec_text(pl.col("amount")))]
            )
        )
        .otherwise(pl.lit("{}"))
        .alias("differences"),
        absdiff(pl.col("balance").fill_null(zero_money()), pl.col("amount"))
        .cast(MONEY)
        .alias("amount"),
        "currency",
        pl.lit(None, pl.String()).alias("suggestion"),
    )
    return matched, breaks


def match_cash(
    internal: pl.DataFrame | pl.LazyFrame,
    venue: pl.DataFrame | pl.LazyFrame,
    tolerance: Tolerance,
    balances: pl.DataFrame | pl.LazyFrame | None = None,
) -> MatchResult:
    tol = tolerance
    ints = _load(internal, "cash", venue=False)
    vens = _load(venue, "cash", venue=True)
    is_balance = pl.col("line_type").is_in(list(BALANCE_TYPES)).fill_null(False)
    lines, moves = vens.filter(is_balance), vens.filter(~is_balance)

    # reference: the same non-row ref on both sides (and the same account and currency), those
    # of the same value date first (a ref may be on movements of several dates: an import's
    # settlements, a break's movement of an earlier date re-read beside today's)
    has_ref = pl.col("ref").is_not_null() & ~pl.col("ref").str.starts_with("row:")
    left_all, right_all = ints.filter(has_ref), moves.filter(has_ref)
    found: list[pl.DataFrame] = []
    for by_ref in (["account", "currency", "ref", "date"], ["account", "currency", "ref"]):
        left = left_all.with_columns(rank_within(by_ref).alias("_rk"))
        right = right_all.with_columns(rank_within(by_ref).alias("_rk"))
        pairs = left.select(*by_ref, "_rk", pl.col("_id").alias("_li")).join(
            right.select(*by_ref, "_rk", pl.col("_id").alias("_ri")), on=[*by_ref, "_rk"]
        )
        found.append(pairs.select("_li", "_ri"))
        left_all = _unpaired(left_all, pairs["_li"])
        right_all = _unpaired(right_all, pairs["_ri"])
    ref_pairs = pl.concat(found, how="vertical")
    wide = _wide(ref_pairs, ints, moves)
    within = (absdiff(pl.col("amount_i"), pl.col("amount_v")) <= tol.lit("amount")).fill_null(False)
    matched: list[tuple[str, pl.DataFrame]] = [("reference", _pair_matched(wide.filter(within)))]
    breaks = [_cash_pair_breaks(wide, tol)]
    rest_i, rest_v = _unpaired(ints, ref_pairs["_li"]), _unpaired(moves, ref_pairs["_ri"])

    # key: account, currency, date and amount within tolerance
    pairs = _cash_key_pairs(rest_i, rest_v, tol)
    matched.append(("key", _pair_matched(_wide(pairs, rest_i, rest_v))))
    rest_i, rest_v = _unpaired(rest_i, pairs["_li"]), _unpaired(rest_v, pairs["_ri"])

    # aggregate: one line on one side, the day's other lines of the account and currency on
    # the other summing to it within tolerance (a bank's one net settlement of the day's
    # trades; a movement the venue split in parts)
    agg, agg_i, agg_v = _cash_aggregate(rest_i, rest_v, tol)
    matched.append(("aggregate", agg))
    rest_i, rest_v = _unpaired(rest_i, agg_i), _unpaired(rest_v, agg_v)

    breaks.append(_cash_missing(rest_i, rest_v, internal_side=True))
    breaks.append(_cash_missing(rest_v, rest_i, internal_side=False))

    bal_matched, bal_breaks = _balances(lines, balances, tol)
    matched.append(("balance", bal_matched))
    breaks.append(bal_breaks)
    return finish("cash", matched, breaks, ints.height, vens.height)
