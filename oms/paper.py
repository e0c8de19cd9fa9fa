"""The paper venue's terms: slippage, participation and the commission schedule; and its
answers to a live order (`answer_live_order`) and the commission of a fill (`fill_charge`).

Pure functions over values (`PaperTerms`), plus the settings they are kept in (`paper.*`,
changed with `tieout paper set`, audited). Defaults: no slippage, no commission, 10%
participation — a new user sees fills at the last price and adds costs deliberately.

Commission is charged per order, not per fill: each fill pays what the order's cumulative
charge rises by, so a minimum per order is paid once however many bars fill it, and a maximum
(a percentage of notional) caps the order as a whole. Charges are in the currency the order
trades in (its instrument's), rounded half-up to the cent.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Final

from sqlalchemy import Connection, select

from oms import orders, risk
from oms.book import Ctx, put_setting
from oms.errors import BadInput
from oms.schema import settings
from oms.store import Store, remembered
from oms.values import (
    ZERO,
    ExecId,
    OrdType,
    Side,
    TimeInForce,
    dec_str,
    decimal_context,
    minor_units,
    parse_currency,
    parse_decimal,
)

PREFIX: Final = "paper."
_CONTEXT: Final = decimal_context(60)
_BPS: Final = Decimal(10_000)
_PCT: Final = Decimal(100)


@dataclass(frozen=True, slots=True)
class PaperTerms:
    participation_pct: Decimal = Decimal(10)  # share of a bar's volume a resting order may take
    slippage_bps: Decimal = ZERO  # market fills move this far against the order
    commission_per_unit: Decimal = ZERO  # per share / contract / coin
    commission_bps: Decimal = ZERO  # of the notional
    commission_min: Decimal = ZERO  # per order (paid once, with its first fill)
    commission_max_pct: Decimal = ZERO  # per order, % of its notional; 0 = no cap
    # the amounts of a currency of their own (`commission-min.JPY 150`), as (currency, field,
    # value): the schedule's amounts are in each order's currency, so that without them a
    # minimum of 1 meant as a dollar is one yen on a Tokyo order
    in_currencies: tuple[tuple[str, str, Decimal], ...] = ()

    def in_currency(self, currency: str) -> PaperTerms:
        """The terms an order in `currency` pays by: its own amounts where they are set."""
        if not self.in_currencies:
            return self
        return _in_currency(self, currency)


DEFAULT_TERMS: Final = PaperTerms()


@functools.lru_cache(maxsize=256)
def _in_currency(terms: PaperTerms, currency: str) -> PaperTerms:
    own: dict[str, Any] = {f: v for ccy, f, v in terms.in_currencies if ccy == currency}
    return dataclasses.replace(terms, **own) if own else terms


def _non_negative(
    name: str, *, below: Decimal | None = None, at_most: Decimal | None = None
) -> Callable[[str], Decimal]:
    """A value >= 0, and under `below` or at most `at_most` when given (slippage of 10,000 bps
    or more would sell at nothing; a commission cap above 100% caps nothing)."""

    def parse(text: str) -> Decimal:
        value = parse_decimal(text, name)
        if value < 0:
            raise BadInput(name, f"{text!r} must not be negative")
        if below is not None and value >= below:
            raise BadInput(name, f"{text!r} must be less than {dec_str(below)}")
        if at_most is not None and value > at_most:
            raise BadInput(name, f"{text!r} must be at most {dec_str(at_most)}")
        return value

    return parse


def _percentage(name: str) -> Callable[[str], Decimal]:
    def parse(text: str) -> Decimal:
        value = parse_decimal(text, name, positive=True)
        if value > _PCT:
            raise BadInput(name, f"{text!r} must be at most 100")
        return value

    return parse


# name (as `tieout paper set` takes it) -> (PaperTerms field, parser)
TERMS: Final[dict[str, tuple[str, Callable[[str], Decimal]]]] = {
    "participation-pct": ("participation_pct", _percentage("participation-pct")),
    "slippage-bps": ("slippage_bps", _non_negative("slippage-bps", below=Decimal(10_000))),
    "commission-per-unit": ("commission_per_unit", _non_negative("commission-per-unit")),
    "commission-bps": ("commission_bps", _non_negative("commission-bps")),
    "commission-min": ("commission_min", _non_negative("commission-min")),
    "commission-max-pct": (
        "commission_max_pct",
        _non_negative("commission-max-pct", at_most=_PCT),
    ),
}
# the amounts (not the rates) a currency may have of its own: `tieout paper set NAME.CCY V`
AMOUNTS: Final = ("commission-per-unit", "commission-min")


def slipped_price(last: Decimal, side: Side, slippage_bps: Decimal, tick: Decimal) -> Decimal:
    """A market fill's price: the last price moved `slippage_bps` against the order, rounded
    to the tick away from the order's favour (a buy pays up, a sell receives less); with no
    slippage too, since a last price may lie off the instrument's tick."""
    with localcontext(_CONTEXT):
        move = last * slippage_bps / _BPS
        raw = last + move if side is Side.BUY else last - move
        rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
        price = (raw / tick).to_integral_value(rounding=rounding) * tick
    return max(price, tick)


def on_tick(price: Decimal, side: Side, tick: Decimal, low: Decimal, high: Decimal) -> Decimal:
    """A bar's fill price on the instrument's tick: rounded away from the order's favour (a buy
    up, a sell down), kept inside the bar's range (the tick inside it nearest the other way);
    as it was when no tick lies inside the range."""
    with localcontext(_CONTEXT):
        up = (price / tick).to_integral_value(rounding=ROUND_CEILING) * tick
        down = (price / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
        first = up if side is Side.BUY else down
        second = down if side is Side.BUY else up
        for candidate in (first, second):
            if low <= candidate <= high:
                return candidate
    return price


def charges(terms: PaperTerms) -> bool:
    """Whether the schedule charges anything at all."""
    return bool(
        terms.commission_per_unit
        or terms.commission_bps
        or terms.commission_min
        or any(value for _, _, value in terms.in_currencies)
    )


def order_commission(
    terms: PaperTerms, quantity: Decimal, notional: Decimal, *, currency: str
) -> Decimal:
    """The whole order's commission once `quantity` of it has filled for `notional`, in the
    instrument's `currency`, rounded half up to its minor unit (cents; whole yen), and never
    above the cap (commission-max-pct of the notional) rounded down to that unit: a cap of
    1.503 yen charges 1 yen, not 2."""
    if quantity <= 0:
        return ZERO
    terms = terms.in_currency(currency)
    unit = _unit(currency)
    with localcontext(_CONTEXT):
        charge = terms.commission_per_unit * quantity + notional * terms.commission_bps / _BPS
        charge = max(charge, terms.commission_min).quantize(unit, rounding=ROUND_HALF_UP)
        if terms.commission_max_pct > 0:
            cap = notional * terms.commission_max_pct / _PCT
            charge = min(charge, cap.quantize(unit, rounding=ROUND_DOWN))
    return charge if charge else ZERO  # no "0.00" creeping into the basis of free trades


@functools.cache
def _unit(currency: str) -> Decimal:
    """The currency's smallest amount: 0.01 for dollars, 1 for yen (ISO 4217 minor units).
    Kept per currency: every paper order and fill asks for it."""
    return Decimal(1).scaleb(-minor_units(currency))


def fill_commission(
    terms: PaperTerms,
    filled_quantity: Decimal,
    filled_notional: Decimal,
    quantity: Decimal,
    price: Decimal,
    *,
    currency: str,
) -> Decimal:
    """What one fill of `quantity` at `price` pays, after the order already filled
    `filled_quantity` for `filled_notional`: the rise of the order's cumulative charge."""
    with localcontext(_CONTEXT):
        before = order_commission(terms, filled_quantity, filled_notional, currency=currency)
        after = order_commission(
            terms,
            filled_quantity + quantity,
            filled_notional + quantity * price,
            currency=currency,
        )
        fee = after - before
    return fee if fee > 0 else ZERO


# ---- the venue's answers (pure) ---------------------------------------------------------------


def in_session(market: risk.MarketState, now: datetime) -> bool:
    """Whether the instrument's market trades at `now`: 24/7 markets always; others inside
    today's session, ``open <= now < close`` (the bounds risk's market-hours check uses); no
    session today (a weekend, a holiday) is closed."""
    if market.always_open:
        return True
    start, end = market.session_open, market.session_close
    return start is not None and end is not None and start <= now < end and not market.in_break(now)


def answer_live_order(
    order: orders.Order,
    market: risk.MarketState,
    terms: PaperTerms,
    now: datetime | None = None,
    max_price_age: timedelta | None = None,
    taken: Decimal = ZERO,
) -> list[orders.ApplyFill | orders.AcceptCancel]:
    """The paper venue's answer to a live order at `now` (default: the order's last change,
    which is when the venue acknowledged or replaced it): in session, a market order (or a
    marketable limit) fills its leaves at once at the last price moved by the slippage (a limit
    never beyond its limit); an ioc/fok order that cannot is canceled; others rest (no answer).
    An ioc/fok order takes only what is there now (immediate_quantity: the participation rate
    of the last bar's volume, in whole lots, less what the venue has `taken` of that bar
    already for other orders): a fok order that needs more is canceled whole, an ioc order
    fills what is there and the rest is canceled. Market and other limit orders fill
    their leaves whatever the volume (the paper venue's simplification).

    Outside the session (`market`'s session, as risk sees it) nothing fills: the venue does not
    trade while its exchange is closed. Risk lets only gtc and gtd orders in then (they rest,
    and fill later when market data crosses them); an ioc/fok order is canceled, and any other
    order rests.

    A limit order is marketable only against a last price no older than `max_price_age` (the
    risk limit that refuses market orders on a stale price): an old close says nothing of where
    the market trades now, so the order rests until market data crosses it (an ioc/fok order
    is canceled)."""
    at = order.updated_at if now is None else now
    if not in_session(market, at):
        if order.tif in (TimeInForce.IOC, TimeInForce.FOK):
            return [orders.AcceptCancel(reason=f"{order.tif.value} order: market closed")]
        return []
    last = market.reference_price
    buy = order.side is Side.BUY
    limit = order.limit_price
    fresh = (
        max_price_age is None
        or market.reference_time is None
        or at - market.reference_time <= max_price_age
    )
    # a stop that has triggered works as a market order, a stop-limit as a limit order
    fired = orders.triggered(order)
    as_limit = order.type is OrdType.LIMIT or (order.type is OrdType.STOP_LIMIT and fired)
    marketable = (
        order.type is OrdType.MARKET
        or (order.type is OrdType.STOP and fired)
        or (
            as_limit
            and fresh
            and last is not None
            and limit is not None
            and (last <= limit if buy else last >= limit)
        )
    )
    if marketable and last is not None:
        price = slipped_price(last, order.side, terms.slippage_bps, market.tick_size)
        if limit is not None:
            price = min(price, limit) if buy else max(price, limit)
        exec_id = ExecId(f"{order.order_id}-{len(order.fills) + 1}")
        quantity = order.leaves_qty
        if order.tif in (TimeInForce.IOC, TimeInForce.FOK) and market.reference_volume is not None:
            # what is there now: the participation rate of the last bar's volume, in whole
            # lots, less what other orders have taken of it
            there = max(immediate_quantity(market, terms) - taken, ZERO)
            if order.tif is TimeInForce.FOK and there < quantity:
                return [orders.AcceptCancel(reason=f"fok order: only {there} available now")]
            if there <= 0:
                return [orders.AcceptCancel(reason="ioc order: nothing available now")]
            if there < quantity:  # ioc: what can fill now, the rest canceled
                return [
                    orders.ApplyFill(exec_id, there, price),
                    orders.AcceptCancel(reason=f"ioc order: {there} available now"),
                ]
        return [orders.ApplyFill(exec_id, quantity, price)]
    if order.tif in (TimeInForce.IOC, TimeInForce.FOK):
        return [orders.AcceptCancel(reason=f"{order.tif.value} order not marketable")]
    return []


def affordable_quantity(
    available: Decimal,
    price: Decimal,
    lot_size: Decimal,
    wanted: Decimal,
    fee: Callable[[Decimal], Decimal],
) -> Decimal:
    """The most of `wanted`, in whole lots, that `available` cash pays at `price` with the
    commission `fee(quantity)` (which grows with the quantity): what a cash account's buy may
    fill, so that its cash never goes below zero however the fill price moved from the price
    the buying power check sized it at (slippage, a stop's gap)."""
    with localcontext(_CONTEXT):

        def pays(quantity: Decimal) -> bool:
            return quantity * price + fee(quantity) <= available

        if pays(wanted):
            return wanted
        low, high = 0, int(wanted / lot_size)  # low lots are paid for; high + 1 are not
        while low < high:
            mid = (low + high + 1) // 2
            if pays(mid * lot_size):
                low = mid
            else:
                high = mid - 1
        return low * lot_size


def _trial_charge(
    terms: PaperTerms,
    order: orders.Order,
    fill: orders.ApplyFill,
    currency: str,
    quantity: Decimal,
) -> Decimal:
    """The commission `fill` would pay for `quantity` instead of its own."""
    trial = orders.ApplyFill(fill.exec_id, quantity, fill.price)
    return fill_charge(terms, order, trial, currency=currency)


def within_cash(
    answers: list[orders.ApplyFill | orders.AcceptCancel],
    order: orders.Order,
    available: Decimal,
    lot_size: Decimal,
    terms: PaperTerms,
    currency: str,
) -> list[orders.ApplyFill | orders.AcceptCancel]:
    """The venue's answers to a cash account's order, so that its cash never goes below zero
    at the fill price: a buy's fill cut to what `available` cash pays with its commission
    (affordable_quantity), the rest of the order canceled with the figures (a fok canceled
    whole); a sale whose proceeds and the available cash do not pay its commission (a minimum
    on a small or partial fill, slippage) fills nothing and is canceled. Unchanged when the
    cash suffices (as the checks at entry made sure at the price they sized the order at)."""
    for n, answer in enumerate(answers):
        if not isinstance(answer, orders.ApplyFill):
            continue
        fill = answer
        fee = functools.partial(_trial_charge, terms, order, fill, currency)
        shown = dec_str(available.quantize(_unit(currency), rounding=ROUND_FLOOR))
        kept: list[orders.ApplyFill | orders.AcceptCancel] = list(answers[:n])
        if order.side is Side.SELL:
            with localcontext(_CONTEXT):
                proceeds = fill.quantity * fill.price
                charge = fee(fill.quantity)
                if available + proceeds - charge >= 0:
                    return answers
            why = (
                f"cash account: the sale's commission {dec_str(charge)} {currency} exceeds its "
                f"proceeds {dec_str(proceeds)} ({dec_str(fill.quantity)} at "
                f"{dec_str(fill.price)}) plus {shown} {currency} available; canceled"
            )
            return [*kept, orders.AcceptCancel(reason=why)]
        cap = affordable_quantity(available, fill.price, lot_size, fill.quantity, fee)
        if cap >= fill.quantity:
            return answers
        why = (
            f"cash account: {shown} {currency} available pays for "
            f"{dec_str(cap)} of {dec_str(fill.quantity)} at {dec_str(fill.price)} with "
            "commission; "
            + (
                "a fok order fills whole or not at all"
                if order.tif is TimeInForce.FOK
                else "the rest canceled"
            )
        )
        if cap > 0 and order.tif is not TimeInForce.FOK:
            kept.append(orders.ApplyFill(fill.exec_id, cap, fill.price, fill.reason))
        kept.append(orders.AcceptCancel(reason=why))
        return kept
    return answers


def participation_quantity(
    volume: Decimal, participation_pct: Decimal, lot_size: Decimal, leaves: Decimal | None = None
) -> Decimal:
    """The venue's share of a bar: at most the participation rate of its volume (and at most
    `leaves`), in whole lots. What a resting order fills from a bar, and what an ioc/fok order
    finds at once in the last one."""
    with localcontext(_CONTEXT):  # the caller's context may round a large volume up
        cap = volume * participation_pct / 100
        if leaves is not None:
            cap = min(cap, leaves)
        return (cap / lot_size).to_integral_value(rounding="ROUND_FLOOR") * lot_size


def immediate_quantity(market: risk.MarketState, terms: PaperTerms) -> Decimal:
    """The participation share of the last bar: what ioc/fok orders can fill at once, all
    together."""
    volume = market.reference_volume or ZERO
    return participation_quantity(volume, terms.participation_pct, market.lot_size)


def fill_charge(
    terms: PaperTerms, before: orders.Order, fill: orders.ApplyFill, *, currency: str
) -> Decimal:
    """The commission the paper venue charges for `fill` of the order as it was `before`, in
    the instrument's `currency`."""
    filled = orders.filled_notional(before.fills)
    return fill_commission(
        terms, before.cum_qty, filled, fill.quantity, fill.price, currency=currency
    )


# ---- settings ---------------------------------------------------------------------------------


def load_terms(conn: Connection) -> PaperTerms:
    """The terms in force, read once in a transaction (tx_memo)."""
    return remembered(
        conn,
        "paper_terms",
        lambda: terms_from({str(key): str(value) for key, value in conn.execute(_TERMS_QUERY)}),
    )


def terms_from(rows: Mapping[str, str]) -> PaperTerms:
    """The terms given the settings (full keys: `paper.*`; other keys are ignored)."""
    return _terms_of(tuple(sorted((k, v) for k, v in rows.items() if k.startswith(PREFIX))))


_TERMS_QUERY = select(settings.c.key, settings.c.value).where(settings.c.key.startswith(PREFIX))


@functools.lru_cache(maxsize=64)
def _terms_of(items: tuple[tuple[str, str], ...]) -> PaperTerms:
    rows = dict(items)
    changes: dict[str, Any] = {
        field: parse(rows[PREFIX + name])
        for name, (field, parse) in TERMS.items()
        if PREFIX + name in rows
    }
    own = []
    for key, value in sorted(rows.items()):
        name, _, currency = key.removeprefix(PREFIX).partition(".")
        if currency and name in AMOUNTS:
            field, parse = TERMS[name]
            own.append((currency, field, parse(value)))
    return dataclasses.replace(
        dataclasses.replace(DEFAULT_TERMS, **changes), in_currencies=tuple(own)
    )


def set_term(
    store: Store,
    ctx: Ctx,
    name: str,
    text: str,
    *,
    then: Callable[[Connection], None],
) -> PaperTerms:
    """Change one of the paper venue's terms (audited); returns the terms now in force. `then`
    runs in the same transaction when the term changed: what live paper buys hold is computed
    with the terms (oms.order_book.set_paper_term makes the order totals again)."""
    base, _, currency = name.partition(".")
    if currency:
        if base not in AMOUNTS:
            raise BadInput(
                "paper term",
                f"{name!r}: only {' and '.join(AMOUNTS)} take a currency of their own "
                "(the others are rates)",
            )
        currency = parse_currency(currency, "paper term")
        name = f"{base}.{currency}"
    elif name not in TERMS:
        known = ", ".join([*sorted(TERMS), *(f"{a}.CCY" for a in AMOUNTS)])
        raise BadInput("paper term", f"{name!r} is not one of {known}")
    value = TERMS[base][1](text.strip())
    with store.write() as conn:
        terms = load_terms(conn)
        in_force = terms.in_currency(currency) if currency else terms
        before = dec_str(getattr(in_force, TERMS[base][0]))
        put_setting(conn, ctx, PREFIX + name, dec_str(value), default=before)
        if dec_str(value) != before:
            then(conn)
        return load_terms(conn)


def terms_json(terms: PaperTerms) -> dict[str, str]:
    names = {field: name for name, (field, _) in TERMS.items()}
    doc = {name: dec_str(getattr(terms, field)) for name, (field, _) in TERMS.items()}
    for currency, field, value in terms.in_currencies:
        doc[f"{names[field]}.{currency}"] = dec_str(value)
    return doc
