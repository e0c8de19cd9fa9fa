"""Commands for reference data and cash: instrument, account, cash."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import (
    ActorOpt,
    DbOpt,
    JsonOpt,
    NumberArgs,
    clock,
    decimal_arg,
    emit_json,
    make_ctx,
    note,
    open_store,
    say,
)
from oms import access, book, refdata, risk_limits
from oms.calendars import DEFAULT_SETTLEMENT_DAYS
from oms.errors import BadInput
from oms.values import AccountType, dec_str, parse_currency

instrument_app = typer.Typer(
    help="Instruments: symbols, their exchange calendar and currency.", no_args_is_help=True
)
account_app = typer.Typer(help="Client accounts.", no_args_is_help=True)
cash_app = typer.Typer(
    help="Cash: deposits, withdrawals, balances (double-entry journal).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(instrument_app, name="instrument")
    app.add_typer(account_app, name="account")
    app.add_typer(cash_app, name="cash")


@instrument_app.command("add")
def instrument_add(
    symbol: str,
    exchange: Annotated[str, typer.Option(help="exchange_calendars name (XNYS, XLON...) or 24/7")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code")],
    tick_size: Annotated[
        str | None,
        typer.Option(help=f"minimum price increment (a new instrument: {refdata.DEFAULT_TICK})"),
    ] = None,
    lot_size: Annotated[
        str | None,
        typer.Option(help=f"minimum quantity increment (a new instrument: {refdata.DEFAULT_LOT})"),
    ] = None,
    restricted: Annotated[
        bool, typer.Option("--restricted", help="on the restricted list")
    ] = False,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Add an instrument (adding the same one again changes nothing; terms left out are not
    compared with the book's, and the restricted flag is compliance's: restrict, unrestrict)."""
    item = refdata.make_instrument(symbol, exchange, currency, tick_size, lot_size, restricted)
    stated = refdata.stated_terms(tick_size, lot_size, restricted)
    store = open_store(db)
    added, _ = book.add_instruments(store, make_ctx(actor), [item], [stated])
    if not added:
        with store.read() as conn:
            item = book.get_instrument(conn, item.symbol)  # the book's, as it stands
    if json:
        emit_json({**item.as_json(), "created": bool(added)})
    else:
        say(f"instrument {item.symbol} {'added' if added else 'exists already, unchanged'}")


@instrument_app.command("import")
def instrument_import(
    file: Annotated[
        str, typer.Argument(help="CSV: symbol,exchange,currency,tick_size,lot_size,restricted")
    ],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Import instruments from a CSV file: all rows or none."""
    store = open_store(db)
    items, stated = refdata.read_instruments(file)
    added, unchanged = book.add_instruments(store, make_ctx(actor), items, stated)
    if json:
        emit_json({"file": file, "rows": len(items), "added": added, "unchanged": unchanged})
    else:
        say(f"{file}: {len(items)} rows, {added} instruments added, {unchanged} unchanged")


@instrument_app.command("list")
def instrument_list(db: DbOpt = None, json: JsonOpt = False) -> None:
    """List instruments."""
    with open_store(db).read() as conn:
        items = book.list_instruments(conn)
    if json:
        emit_json([i.as_json() for i in items])
        return
    for i in items:
        flag = "  restricted" if i.restricted else ""
        say(
            f"{i.symbol:<12} {i.exchange:<6} {i.currency} tick {dec_str(i.tick_size)} "
            f"lot {dec_str(i.lot_size)}{flag}"
        )


@instrument_app.command("show")
def instrument_show(symbol: str, db: DbOpt = None, json: JsonOpt = False) -> None:
    """Show one instrument."""
    with open_store(db).read() as conn:
        item = book.get_instrument(conn, symbol)
    if json:
        emit_json(item.as_json())
    else:
        for k, v in item.as_json().items():
            say(f"{k:<11} {v}")


def _restrict(
    symbol: str, on: bool, reason: str | None, db: str | None, actor: str | None, json: bool
) -> None:
    item = book.set_restricted(open_store(db), make_ctx(actor), symbol, on, reason)
    if json:
        emit_json(item.as_json())
    else:
        say(f"{item.symbol}: {'restricted' if item.restricted else 'not restricted'}")


@instrument_app.command("restrict")
def instrument_restrict(
    symbol: str,
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit trail)")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Put an instrument on the restricted list: every new order in it is refused."""
    _restrict(symbol, True, reason, db, actor, json)


@instrument_app.command("unrestrict")
def instrument_unrestrict(
    symbol: str,
    reason: Annotated[str | None, typer.Option(help="why (kept in the audit trail)")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Take an instrument off the restricted list."""
    _restrict(symbol, False, reason, db, actor, json)


settlement_app = typer.Typer(
    help="Settlement cycles per exchange (sessions from trade date to settlement; default T+1).",
    no_args_is_help=True,
)
instrument_app.add_typer(settlement_app, name="settlement")


@settlement_app.command("set", cls=NumberArgs)
def settlement_set(
    exchange: Annotated[str, typer.Argument(help="exchange_calendars name (XLON, XTKS...)")],
    days: Annotated[str, typer.Argument(help="sessions after the trade date: 2 for T+2")],
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Set an exchange's settlement cycle (audited): the settlement date of the trades booked
    from now on whose file or report gives none (paper fills, drop copies, `exec import`)."""
    exchange, cycle = book.set_settlement_days(open_store(db), make_ctx(actor), exchange, days)
    if json:
        emit_json({"exchange": exchange, "settlement_days": cycle})
    else:
        say(f"{exchange} settles T+{cycle}")


@settlement_app.command("show")
def settlement_show(db: DbOpt = None, json: JsonOpt = False) -> None:
    """The settlement cycles set per exchange, and the default for the others."""
    with open_store(db).read() as conn:
        cycles = book.settlement_cycles(conn)
    if json:
        emit_json({"default": DEFAULT_SETTLEMENT_DAYS, "exchanges": cycles})
        return
    say(f"default: T+{DEFAULT_SETTLEMENT_DAYS}")
    for exchange, cycle in cycles.items():
        say(f"{exchange}: T+{cycle}")


@account_app.command("open")
def account_open(
    account: str,
    currency: Annotated[str, typer.Option(help="ISO 4217 code of the account's cash")],
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="cash or margin (a new account: cash)")
    ] = None,
    tier: Annotated[
        str | None, typer.Option(help="risk tier name (a new account: standard)")
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Open a client account. Its risk tier must have limits (`tieout risk show`): an account
    of a tier without them could place no order (a misspelt tier is caught here, not at its
    first order)."""
    item = refdata.make_account(account, currency, name, type_ or "cash", tier)
    given = (("name", name), ("type", type_), ("tier", tier))
    stated = {"currency"} | {term for term, value in given if value is not None}
    store = open_store(db)
    with store.read() as conn:
        tiers = risk_limits.load_limits(conn).tiers
    if item.tier not in tiers:
        raise BadInput(
            f"--tier {item.tier}",
            f"tier {item.tier!r} has no risk limits, so the account could place no order; set "
            f"them first (`tieout risk set tier.{item.tier}.max-position N`) or use a tier that "
            f"has them: {', '.join(sorted(tiers))}",
        )
    acct, created = book.open_account(store, make_ctx(actor), item, stated)
    if json:
        emit_json({**acct.as_json(), "created": created})
    else:
        say(f"account {acct.account} {'opened' if created else 'exists already, unchanged'}")


@account_app.command("list")
def account_list(db: DbOpt = None, json: JsonOpt = False) -> None:
    """List accounts."""
    with open_store(db).read() as conn:
        items = book.list_accounts(conn)
    if json:
        emit_json([a.as_json() for a in items])
        return
    for a in items:
        say(f"{a.account:<16} {a.currency} {a.type.value:<6} {a.tier:<10} {a.name}")


@account_app.command("show")
def account_show(account: str, db: DbOpt = None, json: JsonOpt = False) -> None:
    """Show one account."""
    with open_store(db).read() as conn:
        item = book.get_account(conn, account)
    if json:
        emit_json(item.as_json())
    else:
        for k, v in item.as_json().items():
            say(f"{k:<9} {v}")


def _print_balance(bal: book.CashBalance, json: bool, moved: book.CashMoved | None = None) -> None:
    if json:
        doc = bal.as_json()
        if moved is not None:
            doc["entry_id"] = moved.entry_id
            doc["duplicate"] = moved.duplicate
        emit_json(doc)
    else:
        if moved is not None and moved.duplicate:
            note(
                f"booked already (entry {moved.entry_id}, the same reference and terms): "
                "nothing was booked again"
            )
        say(
            f"{bal.account} {bal.currency}: balance {dec_str(bal.balance)}, available "
            f"{dec_str(bal.available)}, reserved {dec_str(bal.reserved)}"
        )


@cash_app.command("deposit", cls=NumberArgs)
def cash_deposit(
    account: str,
    amount: str,
    ref: Annotated[
        str | None,
        typer.Option(help="reference (bank transfer id...): the same deposit again is booked once"),
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Record cash paid into an account."""
    value = decimal_arg(amount, "AMOUNT", positive=True)
    moved = book.deposit(open_store(db), make_ctx(actor), account, value, ref)
    _print_balance(moved.balance, json, moved)


@cash_app.command("withdraw", cls=NumberArgs)
def cash_withdraw(
    account: str,
    amount: str,
    to: Annotated[str, typer.Option("--to", help="destination of the money")],
    ref: Annotated[
        str | None, typer.Option(help="reference: the same withdrawal again is paid once")
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Record cash paid out of an account (refused beyond the available cash, and unless the
    destination was whitelisted for the account 24 hours ago: `tieout destination add`)."""
    value = decimal_arg(amount, "AMOUNT", positive=True)
    moved = access.withdraw(open_store(db), make_ctx(actor), account, value, to, ref)
    _print_balance(moved.balance, json, moved)


@cash_app.command("balance")
def cash_balance(
    account: str,
    currency: Annotated[
        str | None, typer.Option(help="another currency than the account's")
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show an account's cash balance, derived from the journal (on trade date); a cash
    account's also what it can pay out today (`withdrawable`: the proceeds of sales not
    settled yet are not)."""
    with open_store(db).read() as conn:
        ccy = parse_currency(currency, "--currency") if currency else None  # ISO 4217 codes
        bal = book.cash_balance(conn, account, ccy)
        free = None
        if book.get_account(conn, account).type is AccountType.CASH:
            today = book.settled_through(clock())
            free = book.withdrawable_cash(conn, account, bal.currency, today, bal.available)
    if json:
        emit_json(
            {**bal.as_json(), **({"withdrawable": dec_str(free)} if free is not None else {})}
        )
        return
    _print_balance(bal, False)
    if free is not None and free != bal.available:
        say(
            f"  withdrawable today {dec_str(free)} (sales not settled yet, or cash held for "
            "purchases settling first)"
        )
