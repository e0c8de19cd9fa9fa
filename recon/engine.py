"""The reconciliation matching engine: pure functions from canonical frames to matches and breaks.

Inputs are canonical frames (recon.canonical) of one kind, as DataFrames or LazyFrames.
Columns beyond the canonical ones are ignored, missing optional ones count as null.
Preconditions: `row` is set and unique on each side; the internal ref is the exec_id and a
venue ref is the exec_id when there is one (recon.canonical). A trade LazyFrame (e.g.
pl.scan_parquet) is read twice: once by the streaming exec_id join, which needs only the
compared columns, and once to fetch the ~1% of records left over by row; so pass scans, not
expensive pipelines (collect those first).

    match_trades(internal, venue, tolerance=None) -> MatchResult
    match_positions(internal, venue, tolerance=None, prices=None) -> MatchResult
    match_cash(internal, venue, tolerance=None, balances=None) -> MatchResult
    match(kind, internal, venue, tolerance=None, balances=None) -> MatchResult

`tolerance`: a Tolerance, or a profile's [tolerance] table {field: Decimal | decimal string}
with fields price, quantity, commission, fees (trades, positions) and amount (cash); absent
means 0 (exact). |difference| <= tolerance is a match, compared exactly in decimals.

MatchResult(matched, breaks, stats):
  matched (MATCHED_SCHEMA): internal_ref str, venue_ref str, venue_row i64, stage str,
    group str. One row per matched pair; an aggregate group has one row per member record
    (the other side's columns null) and `group` = "A:account|symbol|side|trade_date"; a flat
    position (quantity 0) absent on the other side is matched with stage "flat". Stages, in
    this order in the frame: reference, key, aggregate, flat, balance.
  breaks (BREAKS_SCHEMA): break_key str, type str, account str, symbol str (null for cash),
    internal_refs list[str], venue_refs list[str], venue_rows list[i64] (aligned with
    venue_refs), differences str (canonical JSON: {field: {"internal": text, "venue": text}},
    sorted keys, no spaces, decimals as plain strings), amount Decimal(38,12) (absolute, in
    `currency`), currency str (null for positions), suggestion str (null when none). Sorted by
    break_key.
  stats (MatchStats): kind, internal_records, venue_records, matched ((stage, internal
    records, venue records), ...) and breaks ((type, count), ...).
Every input record is in exactly one matched row or one break (venue balance lines included;
internal balances are not records). Output is identical for any row order of the inputs.

Trades, a waterfall:
  1 reference: exec_id present on both sides (one streaming full join; the first venue record
    of a repeated exec_id takes part, later ones are duplicate_venue breaks).
  2 key: account, symbol, side, trade_date, quantity (within tolerance.quantity) and price
    within tolerance.price, one to one: exact pairs first, then the nearest (quantity, then
    price). Every tie-break follows internal records in ref order and venue records in row
    (file) order.
  3 aggregate: per (account, symbol, side, trade_date), the residues of both sides match as one
    group (1:N, N:1, N:M) when their quantities sum equal (exactly) and
    |sum(q*p) internal - sum(q*p) venue| <= tolerance.price * total quantity, computed exactly
    in 128-bit integer limbs (polars rounds Decimal products to 12 places). Then again with
    the exec_id pairs of stage 1 whose quantities differ (same account, symbol, side and
    trade_date) and their venue repeats: the parts of a split or a sum reported under the
    book's exec_id match as a group (one pair and the records that make up its difference;
    group "A:...|EXEC_ID"); two differing pairs are never netted; the groups the first pass
    matched are not touched.
  4 the rest: an unmatched venue record identical (all but row/ref) to a matched venue record
    is duplicate_venue; pairs that agree on all of side, quantity, price and trade_date but one
    and are unique on both sides are one mismatch break; everything else is missing_at_venue /
    missing_internal with a suggestion: the other side's nearest unmatched record of the same
    account and symbol (nearest trade_date, then quantity, then price; ties: lower value, then
    the first record), as "venue REF: SIDE QTY @ PRICE on DATE" (or "internal REF: ...").
  A matched pair or group can still break: fields compared are side, quantity, price,
  trade_date, settle_date (a null venue settle_date is not reported), commission and fees (a
  null venue value is not reported; "fee" in TRADE_FIELD_ORDER); type = first differing field
  in TRADE_FIELD_ORDER, differences = all differing fields. Groups compare the sums of
  commission and fees and the sets of settle dates.
  Amounts: missing/date mismatches/duplicate |q*p|; quantity |dq|*venue price; price |dp|*q;
  side 2*q*p; fee |dcommission|+|dfees| (group: notional for settle_date).
  break_key: "T:" + sorted internal refs + "|" + sorted venue refs (comma-separated); a later
  repeat of a venue exec_id X: "T:|X#n" (n = 2, 3, ... in row order).

Positions: pairs on (account, symbol) (repeats pair in order); quantity beyond tolerance ->
  quantity_mismatch, else prices both present and beyond tolerance -> price_mismatch (the
  differences list both); unpaired -> missing_at_venue / missing_internal, except a quantity 0
  on either side, which is matched ("flat"). Amount |dq| * price (venue, else internal, else
  0), |dp| * |q| for price, |q| * price for missing. break_key "P:account|symbol" ("#n" for
  the n-th repeat).

Cash: venue lines with line_type opening_balance / closing_balance are balances, all others
  movements. Movements pair first on (account, currency, ref) where both carry the same
  non-row ref (amount beyond tolerance.amount -> amount_mismatch; a date difference is listed,
  not a break by itself), then on (account, currency, date, amount within tolerance), exact
  first then nearest amount, then as groups (stage "aggregate", group "C:ACCOUNT|CCY|DATE"):
  one line on one side and the day's several other lines of the account and currency on the
  other summing to it within tolerance, the internal ones trade settlements only (line_type
  "settlement": a bank's net settlement of the day's trades, never a deposit netted with a
  withdrawal); the rest
  are missing_at_venue / missing_internal (suggestion: the
  nearest unmatched movement by date then amount). Balance lines are compared with `balances`
  (BALANCES_SCHEMA: account, currency, date, balance, kind) on account, currency, date and
  kind = line_type: beyond tolerance.amount -> balance_mismatch, no internal balance ->
  missing_internal; matched ones are stage "balance" with internal_ref
  "balance:KIND:ACCOUNT:CURRENCY:DATE". break_key "C:" + refs as for trades (the n-th
  repeat of a ref on one side counts as "REF#n"), balances "C:balance:KIND:ACCOUNT:CURRENCY:DATE"
  ("#n" for the n-th line of the same balance)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import polars as pl

from oms.errors import BadInput
from recon import engine_books, engine_trades
from recon.engine_core import (
    BALANCES_SCHEMA,
    BREAKS_SCHEMA,
    MATCHED_SCHEMA,
    STAGES,
    TOLERANCE_KEYS,
    MatchResult,
    MatchStats,
    Tolerance,
)

__all__ = [
    "BALANCES_SCHEMA",
    "BREAKS_SCHEMA",
    "MATCHED_SCHEMA",
    "STAGES",
    "TOLERANCE_KEYS",
    "MatchResult",
    "MatchStats",
    "Tolerance",
    "match",
    "match_cash",
    "match_positions",
    "match_trades",
]

ToleranceSpec = Tolerance | Mapping[str, Decimal | str] | None
FrameLike = pl.DataFrame | pl.LazyFrame


def match_trades(
    internal: FrameLike, venue: FrameLike, tolerance: ToleranceSpec = None
) -> MatchResult:
    """Match internal executions against a venue's trade records (see the module doc)."""
    return engine_trades.match_trades(internal, venue, Tolerance.of(tolerance))


def match_positions(
    internal: FrameLike,
    venue: FrameLike,
    tolerance: ToleranceSpec = None,
    prices: Mapping[str, Decimal] | None = None,
) -> MatchResult:
    """Compare internal positions with a venue's position lines (see the module doc);
    `prices` (symbol -> the book's price where it has no mark) values quantity breaks that
    neither side prices. The breaks carry no currency (recon.runs gives them their
    instrument's)."""
    return engine_books.match_positions(internal, venue, Tolerance.of(tolerance), prices)


def match_cash(
    internal: FrameLike,
    venue: FrameLike,
    tolerance: ToleranceSpec = None,
    balances: FrameLike | None = None,
) -> MatchResult:
    """Match internal cash movements against a venue's cash lines and compare the venue's
    balance lines with `balances` (see the module doc)."""
    return engine_books.match_cash(internal, venue, Tolerance.of(tolerance), balances)


def match(
    kind: str,
    internal: FrameLike,
    venue: FrameLike,
    tolerance: ToleranceSpec = None,
    balances: FrameLike | None = None,
) -> MatchResult:
    """Dispatch on `kind` ("trades" | "positions" | "cash")."""
    if kind == "trades":
        return match_trades(internal, venue, tolerance)
    if kind == "positions":
        return match_positions(internal, venue, tolerance)
    if kind == "cash":
        return match_cash(internal, venue, tolerance, balances)
    raise BadInput("kind", f"{kind!r} is not one of trades, positions, cash")
