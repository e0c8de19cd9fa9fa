"""Reference data from values and files: instruments and accounts, validated before storing."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from oms import tabular
from oms.book import Account, Instrument
from oms.calendars import ALWAYS_OPEN, calendar_names, check_exchange
from oms.errors import BadInput, RowError
from oms.values import AccountType, parse_currency, parse_decimal, parse_ident

TRUE = {"true", "yes", "y", "1"}
FALSE = {"false", "no", "n", "0", ""}
INSTRUMENT_COLUMNS = ("symbol", "exchange", "currency")
INSTRUMENT_OPTIONAL = ("tick_size", "lot_size", "restricted")
DEFAULT_TICK = "0.01"
DEFAULT_LOT = "1"


def make_instrument(
    symbol: str,
    exchange: str,
    currency: str,
    tick_size: str | None = None,
    lot_size: str | None = None,
    restricted: bool = False,
) -> Instrument:
    return Instrument(
        symbol=parse_ident(symbol, "symbol"),
        exchange=check_exchange(exchange.strip()),
        currency=parse_currency(currency),
        tick_size=parse_decimal(tick_size or DEFAULT_TICK, "tick_size", positive=True),
        lot_size=parse_decimal(lot_size or DEFAULT_LOT, "lot_size", positive=True),
        restricted=restricted,
    )


def make_account(
    account: str, currency: str, name: str | None, type_: str, tier: str | None
) -> Account:
    try:
        kind = AccountType(type_.strip().lower())
    except ValueError:
        raise BadInput("--type", f"{type_!r} must be cash or margin") from None
    acct = parse_ident(account, "account")
    return Account(
        acct,
        (name or acct).strip(),
        parse_currency(currency),
        kind,
        parse_ident(tier or "standard", "tier"),
    )


def stated_terms(tick_size: object, lot_size: object, restricted: bool) -> frozenset[str]:
    """The terms an `instrument add` or a file's row states, given what it gave for the
    optional ones: exchange and currency always, a tick or lot size when given, restricted
    only when set (lifting a restriction is compliance's `unrestrict`, not an input's
    "false"). The others take their defaults and are not compared with the book's."""
    given = (("tick_size", tick_size), ("lot_size", lot_size), ("restricted", restricted))
    return frozenset(("exchange", "currency")) | {name for name, value in given if value}


def read_instruments(path: str) -> tuple[list[Instrument], list[frozenset[str]]]:
    """Validate an instrument file whole; refuse it with every row's error. Returns the
    instruments and, for each, the terms its row states (an optional column absent or left
    empty takes its default, which is not compared with an instrument the book holds)."""
    import pandera.polars as pa

    tf = tabular.read_csv(path, required=INSTRUMENT_COLUMNS, optional=INSTRUMENT_OPTIONAL)
    schema = pa.DataFrameSchema(
        {
            "symbol": tabular.text_column(tabular.ident_check),
            "exchange": tabular.text_column(
                tabular.known(calendar_names() | {ALWAYS_OPEN}, "exchange calendar")
            ),
            "currency": tabular.text_column(tabular.currency_check),
            "tick_size": tabular.text_column(tabular.decimal_check(positive=True), required=False),
            "lot_size": tabular.text_column(tabular.decimal_check(positive=True), required=False),
            "restricted": tabular.text_column(tabular.one_of(TRUE | FALSE - {""}), required=False),
        }
    )
    frame = tf.frame.with_columns(
        tf.frame["restricted"].str.to_lowercase(),
        tf.frame["currency"].str.to_uppercase(),  # as `instrument add --currency usd` is
    )
    errors = tabular.validate(dataclasses.replace(tf, frame=frame), schema)
    errors += tabular.duplicate_rows(frame, ["symbol"], tf.lines)
    tabular.refuse_if(path, errors)
    out = []
    stated = []
    for r in frame.iter_rows(named=True):
        stated.append(
            stated_terms(r.get("tick_size"), r.get("lot_size"), (r.get("restricted") or "") in TRUE)
        )
        out.append(
            Instrument(
                r["symbol"],
                r["exchange"],
                r["currency"],
                Decimal(r["tick_size"] or DEFAULT_TICK),
                Decimal(r["lot_size"] or DEFAULT_LOT),
                (r["restricted"] or "") in TRUE,
            )
        )
    return out, stated


__all__ = ["RowError", "make_account", "make_instrument", "read_instruments", "stated_terms"]
