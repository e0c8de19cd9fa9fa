"""The canonical frames every loader yields and the matching engine consumes.

One definition, shared by the loaders (recon.loaders), the validation (recon.validate), the
matching engine (recon.engine) and the store side (recon.runs). Money and quantity columns are
exact polars Decimals with tieout's finest step (12 fractional digits, oms.values.FRAC_DIGITS);
dates are polars Date; times are UTC-aware Datetime.

Every frame carries `row`: for a venue file, the physical line (or record number for non-line
formats, header = line 1 for CSV) of the record in the file; for the internal side, a 1-based
ordinal in a deterministic order (exec_id). `ref` is the identity of the record on its side:
the venue's exec_id when it has one, else `row:<n>`; the internal side's ref is its exec_id.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from oms.values import FRAC_DIGITS

MONEY: Final = pl.Decimal(38, FRAC_DIGITS)
UTC_TIME: Final = pl.Datetime("us", "UTC")

KINDS: Final = ("trades", "positions", "cash")
SETTLEMENT_LINE: Final = "settlement"

# kind -> ordered (column, dtype); `row` and `ref` first.
TRADES: Final[dict[str, pl.DataType]] = {
    "row": pl.Int64(),
    "ref": pl.String(),
    "exec_id": pl.String(),
    "account": pl.String(),
    "symbol": pl.String(),
    "side": pl.String(),  # "buy" | "sell"
    "quantity": MONEY,
    "price": MONEY,
    "currency": pl.String(),
    "trade_date": pl.Date(),
    "settle_date": pl.Date(),
    "exec_time": UTC_TIME,
    "venue": pl.String(),
    "commission": MONEY,
    "fees": MONEY,
    "client_order_id": pl.String(),
}
TRADES_REQUIRED: Final = ("account", "symbol", "side", "quantity", "price", "trade_date")

POSITIONS: Final[dict[str, pl.DataType]] = {
    "row": pl.Int64(),
    "ref": pl.String(),
    "account": pl.String(),
    "symbol": pl.String(),
    "quantity": MONEY,  # signed: short positions negative
    "price": MONEY,  # optional mark/average price the venue reports
}
POSITIONS_REQUIRED: Final = ("account", "symbol", "quantity")

CASH: Final[dict[str, pl.DataType]] = {
    "row": pl.Int64(),
    "ref": pl.String(),
    "account": pl.String(),
    "currency": pl.String(),
    "date": pl.Date(),
    "amount": MONEY,  # signed: credits positive, debits negative
    # "movement" | "opening_balance" | "closing_balance"; the book's side marks the movements
    # that settle trades SETTLEMENT_LINE (the aggregate stage nets only those)
    "line_type": pl.String(),
}
CASH_REQUIRED: Final = ("account", "currency", "date", "amount")

SCHEMAS: Final[dict[str, dict[str, pl.DataType]]] = {
    "trades": TRADES,
    "positions": POSITIONS,
    "cash": CASH,
}
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "trades": TRADES_REQUIRED,
    "positions": POSITIONS_REQUIRED,
    "cash": CASH_REQUIRED,
}

# Break types per kind, in the contract's words. For trades, when several fields differ the
# break's type is the first of TRADE_FIELD_ORDER that differs; `differences` lists all.
TRADE_BREAK_TYPES: Final = (
    "missing_at_venue",
    "missing_internal",
    "quantity_mismatch",
    "price_mismatch",
    "side_mismatch",
    "trade_date_mismatch",
    "settle_date_mismatch",
    "fee_mismatch",
    "duplicate_venue",
)
TRADE_FIELD_ORDER: Final = ("side", "quantity", "price", "trade_date", "settle_date", "fee")
POSITION_BREAK_TYPES: Final = (
    "missing_at_venue",
    "missing_internal",
    "quantity_mismatch",
    "price_mismatch",
)
CASH_BREAK_TYPES: Final = (
    "missing_at_venue",
    "missing_internal",
    "amount_mismatch",
    "balance_mismatch",
)
BREAK_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "trades": TRADE_BREAK_TYPES,
    "positions": POSITION_BREAK_TYPES,
    "cash": CASH_BREAK_TYPES,
}


def empty(kind: str) -> pl.DataFrame:
    """An empty canonical frame of `kind`, with every column and its dtype."""
    return pl.DataFrame(schema=SCHEMAS[kind])


def conform(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Select the canonical columns of `kind` in their order; absent optional ones as nulls."""
    schema = SCHEMAS[kind]
    cols = [
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
    ]
    return frame.select(cols)
