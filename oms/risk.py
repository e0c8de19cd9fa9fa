"""Pre-trade risk: the checks an order must pass before the OMS accepts it.

Pure: no I/O, no clock, no database, no environment. ``check`` is a function of its five
arguments only: the order, the account's state, the instrument's market state, the limits and
the time ``now``, all passed in as values, so the same arguments always give the same result.
Session open and close times come in as values (the edge asks ``oms.calendars``), so this
module never loads exchange_calendars. Every number is a Decimal and all arithmetic runs in
``oms.lots.CONTEXT`` (60 significant digits, float mixing trapped): every figure is exact,
nothing is rounded, and the messages show the exact figures (``oms.values.dec_str``, trailing
zeros dropped). Money is in the currency the order trades in, its instrument's (no FX): the
buying power is the account's cash in that currency minus what its live buy orders in
instruments of that currency reserve, and the notional cap is compared with the notional in
that currency. A USD account buying a EUR instrument needs EUR cash; its USD cash does not count.

``check`` runs every check and lists every failure (not only the first), in a fixed order, each
as a ``RiskFailure(code, message)``; the codes (``RiskCode``) are stable strings:

- ``kill_switch``: the account's or the global kill switch is engaged; refuses everything.
- ``restricted``: the symbol is on the restricted list.
- ``market_closed``: market orders need an open session, whatever their time in force; limit,
  stop and stop-limit orders with tif day, ioc or fok need an open session too; gtc and gtd
  orders may be entered while the market is closed (they rest). An instrument with
  ``always_open`` (24/7) is always open. The session is open for ``open <= now < close``,
  except in its lunch break (``break_start <= now < break_end``: Tokyo, Hong Kong); no
  session today (``None``: weekend, holiday) is closed.
- ``no_reference_price`` / ``stale_price``: a market order fails closed without a reference
  price, or when the reference is older than ``max_price_age`` (``now - time > max age``;
  exactly at the age passes). A stop order (no limit) fills at the market once triggered, so
  it fails closed without a reference price too (its stop is a trigger level, not a bound on
  what it pays: a buy stop at 0.01 was sized at 0.01); an old reference sizes it (the higher of
  its stop and that price), so that a gtc stop may be entered overnight. Limit and stop-limit
  orders carry their own price and are not refused for a missing or old reference.
- ``tick_size``: limit and stop prices must be whole multiples of the tick size.
- ``lot_size``: the quantity must be a whole multiple of the lot size.
- ``max_quantity`` / ``max_notional`` (fat finger): quantity and quantity x price at most the
  per-order caps (equal passes; the notional cap in the order's currency: its own where one is
  set, ``notional_by_currency``, else ``max_notional``). The price is the order's price basis
  (below); a market order without a reference price skips the notional cap (it fails
  ``no_reference_price``).
- ``price_collar``: the limit price of a limit order must lie within +/- the collar percent
  of the reference price (the bounds included); a stop-limit's, of its stop price (where it
  trades once triggered: a protective stop-limit far from today's market is not refused for
  it). The reference is used however old it is (a gtc order entered overnight is collared
  against the last price); without a reference a limit order's collar is skipped. Stop prices
  are trigger levels, not execution prices, and are not collared.
- ``short_sale_cash_account``: on a cash account a sell may not exceed the position held minus
  the quantity already on open sell orders.
- ``position_limit``: projected = position + sign x (open same-side quantity + order
  quantity) must satisfy ``|projected| <= max_position`` of the account's tier, per symbol. An
  order that only reduces the projection (towards flat, without crossing it) always passes,
  so a position above a lowered limit can still be reduced. An account whose tier has
  no limits configured fails closed.
- ``buying_power``: available = cash - reserved (cash held for open buy orders); a buy needs
  ``reservation(order)`` (below); sells need none. Margin accounts get no leverage here (margin
  financing is not modelled); what they may do that a cash account may not is sell short.
- ``duplicate_order``: an earlier order of the account within the duplicate window (``now -
  at < window``) with the same symbol, side, type, quantity, limit price, stop price, time in
  force and expire date, and a different (or missing) client order id: a day order and a gtc
  order for the same shares are two intentions, not one sent twice. The same client order id
  is not a risk matter: the OMS answers a resubmission with the first order.
- ``order_rate``: the account may send at most ``max_orders_per_window`` orders in any
  ``rate_window``: refused when that many recent order times lie within the window already.
  The OMS counts the orders that were not rejected (by these checks or the venue): the limit
  is on orders that reach a market, and an account whose orders are refused (by this check too)
  is not locked out for longer by retrying.

Price basis (the price an order is sized at): limit and stop-limit orders their limit price;
market orders the reference price; stop orders the higher of the stop price and the reference
price (a buy stop below the market triggers at once and pays the market), the stop price when
there is no reference. Cash reserved for a buy (``reservation``): quantity x limit price for
limit and stop-limit orders; quantity x basis x (1 + market buffer percent) for market and stop
orders, which may fill above the price seen now. Sells reserve nothing. A buy's buying power
check also counts the order's ``charges`` (the paper venue's commission at the price basis);
the OMS keeps what a resting paper buy's leaves will still pay reserved with it
(oms.order_book.charge_held).

Invalid input (a limit order without a limit price, a quantity that is not positive, a float
where a Decimal belongs, a naive time) is not a risk failure: the dataclasses and ``check``
raise BadInput.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from enum import StrEnum
from types import MappingProxyType

from oms.errors import BadInput, Refused
from oms.lots import CONTEXT
from oms.values import ZERO, AccountType, OrdType, Side, TimeInForce, dec_str, normalize, utc_iso

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIER",
    "AccountState",
    "Limits",
    "MarketState",
    "OrdType",
    "OrderRequest",
    "RecentOrder",
    "RiskCode",
    "RiskFailure",
    "RiskResult",
    "TierLimits",
    "TimeInForce",
    "check",
    "price_basis",
    "reservation",
]

_ONE = Decimal(1)
_MICROSECOND = timedelta(microseconds=1)


class RiskCode(StrEnum):
    """Reason codes of failed checks: stable strings, stored and shown as they are."""

    KILL_SWITCH = "kill_switch"
    RESTRICTED = "restricted"
    MARKET_CLOSED = "market_closed"
    NO_REFERENCE_PRICE = "no_reference_price"
    STALE_PRICE = "stale_price"
    TICK_SIZE = "tick_size"
    LOT_SIZE = "lot_size"
    MAX_QUANTITY = "max_quantity"
    MAX_NOTIONAL = "max_notional"
    PRICE_COLLAR = "price_collar"
    SHORT_SALE_CASH_ACCOUNT = "short_sale_cash_account"
    POSITION_LIMIT = "position_limit"
    BUYING_POWER = "buying_power"
    DUPLICATE_ORDER = "duplicate_order"
    ORDER_RATE = "order_rate"


# ---- inputs ---------------------------------------------------------------------------------


def _enum(obj: object, name: str, kind: type[StrEnum], value: object) -> None:
    """Coerce a field to its enum in place (a frozen dataclass), or raise BadInput."""
    if isinstance(value, kind):
        return
    if isinstance(value, str):
        try:
            object.__setattr__(obj, name, kind(value))
        except ValueError:
            pass
        else:
            return
    allowed = ", ".join(m.value for m in kind)
    raise BadInput(name, f"{value!r} is not one of {allowed}")


def _decimal(name: str, value: object, *, positive: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise BadInput(name, f"{value!r} is not a finite Decimal")
    if positive and value <= 0:
        raise BadInput(name, f"{dec_str(value)} must be greater than zero")


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise BadInput(name, f"{value.isoformat()} has no time zone; pass timezone-aware UTC")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """The terms of an order to check. A limit price exactly for limit and stop-limit orders,
    a stop price exactly for stop and stop-limit orders; enum fields accept their strings."""

    account: str
    symbol: str
    side: Side
    quantity: Decimal  # > 0
    order_type: OrdType = OrdType.MARKET
    tif: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None
    expire_at: date | None = None  # a gtd order's expire date (a term the duplicate check compares)
    # what the venue will charge on top of a buy, in the order's currency (the paper venue: its
    # commission schedule at the price basis); the buying power check adds it
    charges: Decimal = ZERO

    def __post_init__(self) -> None:
        _enum(self, "side", Side, self.side)
        _enum(self, "order_type", OrdType, self.order_type)
        _enum(self, "tif", TimeInForce, self.tif)
        _decimal("quantity", self.quantity, positive=True)
        if self.charges:
            _decimal("charges", self.charges)
        _decimal("limit_price", self.limit_price, positive=True, optional=True)
        _decimal("stop_price", self.stop_price, positive=True, optional=True)
        kind = self.order_type
        if kind.needs_limit != (self.limit_price is not None):
            need = "needs a" if kind.needs_limit else "takes no"
            raise BadInput("limit_price", f"a {kind.value} order {need} limit price")
        if kind.needs_stop != (self.stop_price is not None):
            need = "needs a" if kind.needs_stop else "takes no"
            raise BadInput("stop_price", f"a {kind.value} order {need} stop price")


@dataclass(frozen=True, slots=True)
class RecentOrder:
    """An order the account sent earlier: its terms and time, for duplicate detection."""

    at: datetime
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrdType = OrdType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None
    tif: TimeInForce = TimeInForce.DAY
    expire_at: date | None = None

    @classmethod
    def of(cls, order: OrderRequest, at: datetime) -> RecentOrder:
        return cls(
            at,
            order.symbol,
            order.side,
            order.quantity,
            order.order_type,
            order.limit_price,
            order.stop_price,
            order.client_order_id,
            order.tif,
            order.expire_at,
        )


@dataclass(frozen=True, slots=True)
class AccountState:
    """The account as the OMS sees it now, for the order's symbol.

    ``recent_order_times``: when the account's recent orders were sent (every submission the
    OMS counts towards the rate; older ones than the rate window may be left out).
    ``recent_orders``: terms and times of recent orders to compare for duplicates (those older
    than the duplicate window, and those whose symbol, side or type differ from the order's, may
    be left out: the OMS passes only those candidates, so the check stays short however many
    orders the account sent).
    ``orders_in_rate_window``: when given, how many of the account's orders lie within the rate
    window at ``now`` (``now - t < rate_window``), counted by the edge; ``recent_order_times``
    is then not looked at. The OMS counts them with an index; tests may give the times instead.
    """

    account_type: AccountType
    tier: str
    currency: str  # the currency the order trades in (its instrument's): cash and reserved in it
    cash: Decimal  # cash balance in that currency
    reserved: Decimal = ZERO  # cash in it held for the account's open buy orders in it
    position: Decimal = ZERO  # signed quantity held in the symbol (< 0 short)
    open_buy_quantity: Decimal = ZERO  # leaves quantity of open buy orders in the symbol
    open_sell_quantity: Decimal = ZERO  # leaves quantity of open sell orders in the symbol
    recent_order_times: Sequence[datetime] = ()
    recent_orders: Sequence[RecentOrder] = ()
    kill_switch: bool = False
    orders_in_rate_window: int | None = None

    def __post_init__(self) -> None:
        _enum(self, "account_type", AccountType, self.account_type)
        for name in ("cash", "reserved", "position", "open_buy_quantity", "open_sell_quantity"):
            _decimal(name, getattr(self, name))
        if self.open_buy_quantity < 0 or self.open_sell_quantity < 0:
            raise BadInput("open quantity", "open order quantities must not be negative")
        if self.orders_in_rate_window is not None and self.orders_in_rate_window < 0:
            raise BadInput("orders_in_rate_window", "must not be negative")

    @property
    def available(self) -> Decimal:
        """Buying power: cash - reserved."""
        with localcontext(CONTEXT):
            return self.cash - self.reserved


@dataclass(frozen=True, slots=True)
class MarketState:
    """The instrument and its market now: reference (last) price and its time, reference data,
    and today's session (``None`` when there is none: weekend, holiday)."""

    reference_price: Decimal | None
    reference_time: datetime | None
    tick_size: Decimal  # > 0
    lot_size: Decimal  # > 0
    restricted: bool = False
    session_open: datetime | None = None
    session_close: datetime | None = None
    always_open: bool = False  # 24/7 markets
    # the volume of the bar the reference price closes (not a risk input: the paper venue
    # sizes immediate ioc/fok fills by it); None when unknown
    reference_volume: Decimal | None = None
    # the session's lunch break (Tokyo, Hong Kong ...): closed for start <= now < end
    break_start: datetime | None = None
    break_end: datetime | None = None

    def __post_init__(self) -> None:
        _decimal("reference_price", self.reference_price, positive=True, optional=True)
        _decimal("tick_size", self.tick_size, positive=True)
        _decimal("lot_size", self.lot_size, positive=True)
        if (self.reference_price is None) != (self.reference_time is None):
            raise BadInput("reference_time", "give the reference price and its time, or neither")
        if (self.session_open is None) != (self.session_close is None):
            raise BadInput("session_close", "give the session's open and close, or neither")
        _aware("reference_time", self.reference_time)
        _aware("session_open", self.session_open)
        _aware("session_close", self.session_close)
        if (self.break_start is None) != (self.break_end is None):
            raise BadInput("break_end", "give the break's start and end, or neither")
        _aware("break_start", self.break_start)
        _aware("break_end", self.break_end)

    def in_break(self, now: datetime) -> bool:
        """Whether `now` falls in the session's lunch break."""
        start, end = self.break_start, self.break_end
        return start is not None and end is not None and start <= now < end


@dataclass(frozen=True, slots=True)
class TierLimits:
    """Limits that depend on the account's tier."""

    max_position: Decimal  # max |position| per symbol, in units, open orders included


@dataclass(frozen=True, slots=True)
class Limits:
    """The firm's risk limits: per tier, and global (per order or per account)."""

    tiers: Mapping[str, TierLimits] = field(hash=False)
    max_order_quantity: Decimal  # units per order
    max_notional: Decimal  # quantity x price per order, in the order's currency (no FX)
    price_collar_pct: Decimal  # limit price within +/- this percent of the reference
    market_buffer_pct: Decimal  # added to market and stop buys' reserved cash
    max_price_age: timedelta  # older references refuse market orders
    duplicate_window: timedelta
    max_orders_per_window: int  # per account
    rate_window: timedelta
    kill_switch: bool = False  # global: refuses every order of every account
    # the notional cap in a currency whose units are far from the base cap's (yen, won):
    # currency -> cap; max_notional in every other currency
    notional_by_currency: Mapping[str, Decimal] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        for name in ("max_order_quantity", "max_notional"):
            _decimal(name, getattr(self, name), positive=True)
        for currency, cap in self.notional_by_currency.items():
            _decimal(f"notional_by_currency[{currency}]", cap, positive=True)
        for name in ("price_collar_pct", "market_buffer_pct"):
            _decimal(name, getattr(self, name))
            if getattr(self, name) < 0:
                raise BadInput(name, "must not be negative")
        for tier, limits in self.tiers.items():
            _decimal(f"tiers[{tier}].max_position", limits.max_position)
        if self.max_orders_per_window < 1:
            raise BadInput("max_orders_per_window", "must be at least 1")


DEFAULT_TIER = "standard"  # the tier `tieout account open` gives when none is named

DEFAULT_LIMITS = Limits(
    # 100,000 units per symbol (long or short, open orders included) for the standard tier.
    tiers=MappingProxyType({DEFAULT_TIER: TierLimits(max_position=Decimal(100_000))}),
    # Fat finger: at most 50,000 units and 1,000,000 (in the order's currency) per order.
    max_order_quantity=Decimal(50_000),
    max_notional=Decimal(1_000_000),
    # Limit prices within 10% of the last price: far enough for any normal day, close enough
    # to stop a price typed with a misplaced decimal point.
    price_collar_pct=Decimal(10),
    # Market and stop buys reserve 5% more than quantity x price: room for the price to move
    # between the check and the fill.
    market_buffer_pct=Decimal(5),
    # A market order needs a reference price at most 15 minutes old.
    max_price_age=timedelta(minutes=15),
    # The same order again within 10 seconds is taken for an accidental double submission.
    duplicate_window=timedelta(seconds=10),
    # At most 1,000 orders per account per minute: stops a runaway script, lets a batch file
    # of a few hundred orders through.
    max_orders_per_window=1_000,
    rate_window=timedelta(minutes=1),
    kill_switch=False,
    # The fat-finger notional in currencies of many units to the dollar, about the same
    # 1,000,000 dollars (a yen order of 1,000,000 is some 6,500 dollars); `risk set
    # max-notional.<CCY>` sets any currency's.
    notional_by_currency=MappingProxyType(
        {"JPY": Decimal(150_000_000), "KRW": Decimal(1_400_000_000), "INR": Decimal(85_000_000)}
    ),
)


def max_notional_in(limits: Limits, currency: str) -> Decimal:
    """The per-order notional cap in a currency: its own, else the base cap."""
    return limits.notional_by_currency.get(currency, limits.max_notional)


# ---- result ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiskFailure:
    code: RiskCode
    message: str  # starts with the check's name and carries the figures that failed


@dataclass(frozen=True, slots=True)
class RiskResult:
    failures: tuple[RiskFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def codes(self) -> tuple[RiskCode, ...]:
        return tuple(f.code for f in self.failures)

    def summary(self) -> str:
        """One line: "passed" or "refused (2): buying_power, price_collar"."""
        if not self.failures:
            return "passed"
        return f"refused ({len(self.failures)}): " + ", ".join(self.codes)


# ---- the checks -----------------------------------------------------------------------------


def _num(value: Decimal) -> str:
    return dec_str(normalize(value))


def _secs(value: timedelta) -> str:
    return _num(Decimal(value // _MICROSECOND).scaleb(-6)) + "s"


def _pct(value: Decimal) -> str:
    return _num(value) + "%"


def unit_basis(
    limit: Decimal | None, stop: Decimal | None, reference: Decimal | None
) -> Decimal | None:
    """The price basis from an order's terms (see the module docstring): its limit (limit and
    stop-limit orders), else the higher of its stop and the reference (stop), else the
    reference (market); None for a market order without a reference."""
    if limit is not None:
        return limit
    if stop is None:
        return reference
    return stop if reference is None or stop >= reference else reference


def buffered(basis: Decimal, limited: bool, buffer_pct: Decimal) -> Decimal:
    """What one unit needs at `basis`: the basis for an order with a limit, else the basis plus
    the market buffer (market and stop orders may fill above the price seen now)."""
    return basis if limited else basis * (_ONE + buffer_pct.scaleb(-2))


def price_basis(order: OrderRequest, market: MarketState) -> Decimal | None:
    """The price an order is sized at (see the module docstring); None for a market order
    without a reference price."""
    return unit_basis(order.limit_price, order.stop_price, market.reference_price)


def _needed(order: OrderRequest, basis: Decimal, limits: Limits) -> Decimal:
    unit = buffered(basis, order.order_type.needs_limit, limits.market_buffer_pct)
    return order.quantity * unit + order.charges


def reservation(order: OrderRequest, market: MarketState, limits: Limits) -> Decimal:
    """Cash to reserve for an accepted order: what the buying power check asked of it (zero
    for a sell). Raises Refused for a market buy without a reference price (check refuses it)."""
    if order.side is Side.SELL:
        return ZERO
    with localcontext(CONTEXT):
        basis = price_basis(order, market)
        if basis is None:
            raise Refused(
                f"reserve cash for {order.symbol}",
                "a market order needs a reference price and there is none",
                RiskCode.NO_REFERENCE_PRICE.value,
            )
        return _needed(order, basis, limits)


def check(
    order: OrderRequest,
    account: AccountState,
    market: MarketState,
    limits: Limits,
    now: datetime,
) -> RiskResult:
    """Run every pre-trade check; the result lists every failure, in a fixed order."""
    if now.tzinfo is None:
        raise BadInput("now", f"{now.isoformat()} has no time zone; pass timezone-aware UTC")
    failures: list[RiskFailure] = []
    add = failures.append
    kind = order.order_type
    qty = order.quantity
    sym = order.symbol
    ref = market.reference_price
    with localcontext(CONTEXT):
        if account.kill_switch or limits.kill_switch:
            add(_kill_switch(order, account, limits))
        if market.restricted:
            add(RiskFailure(RiskCode.RESTRICTED, f"restricted: {sym} is on the restricted list"))
        if not _open(market, now) and (kind is OrdType.MARKET or not order.tif.rests):
            add(_market_closed(order, market, now))
        if ref is None and kind is OrdType.STOP:
            add(
                RiskFailure(
                    RiskCode.NO_REFERENCE_PRICE,
                    "no reference price: a stop order fills at the market once triggered and "
                    f"needs a reference price for {sym} to be sized at; there is none",
                )
            )
        if kind is OrdType.MARKET:
            if ref is None:
                add(
                    RiskFailure(
                        RiskCode.NO_REFERENCE_PRICE,
                        f"no reference price: a market order needs a reference price for {sym}"
                        " and there is none",
                    )
                )
            else:
                assert market.reference_time is not None  # MarketState checked it
                age = now - market.reference_time
                if age > limits.max_price_age:
                    add(_stale(ref, market.reference_time, age, limits))
        tick = market.tick_size
        for label, price in (("limit price", order.limit_price), ("stop price", order.stop_price)):
            if price is not None and price % tick:
                add(_not_multiple(RiskCode.TICK_SIZE, label, price, "tick size", tick))
        if qty % market.lot_size:
            add(_not_multiple(RiskCode.LOT_SIZE, "quantity", qty, "lot size", market.lot_size))
        if qty > limits.max_order_quantity:
            add(
                RiskFailure(
                    RiskCode.MAX_QUANTITY,
                    f"max quantity: {_num(qty)} {sym} exceeds the per-order maximum of "
                    f"{_num(limits.max_order_quantity)}",
                )
            )
        basis = price_basis(order, market)
        # a marketable sell limit fills at the market, above its limit: its notional is at the
        # higher of the two (a buy fills at its limit or below)
        size_at = (
            max(basis, ref)
            if basis is not None and ref is not None and order.side is Side.SELL
            else basis
        )
        if size_at is not None and qty * size_at > max_notional_in(limits, account.currency):
            add(_max_notional(order, size_at, account.currency, limits))
        limit_price = order.limit_price
        # a stop-limit's limit is where it trades once its stop is reached: collared around
        # the stop (a protective sell stop at 80, limit 79, with the market at 100, was
        # refused as 21% off the market, while a plain stop at 80 passed)
        stop_limit = order.order_type is OrdType.STOP_LIMIT and order.stop_price is not None
        anchor = order.stop_price if stop_limit else ref
        if limit_price is not None and anchor is not None:
            band = anchor * limits.price_collar_pct.scaleb(-2)
            if not anchor - band <= limit_price <= anchor + band:
                add(_collar(limit_price, anchor, band, limits, stop=stop_limit))
        if order.side is Side.SELL and account.account_type is AccountType.CASH:
            can_sell = account.position - account.open_sell_quantity
            if qty > can_sell:
                add(_short_sale(order, account, can_sell))
        position_failure = _position_limit(order, account, limits)
        if position_failure is not None:
            add(position_failure)
        if order.side is Side.BUY and basis is not None:
            needed = _needed(order, basis, limits)
            if needed > account.available:
                add(_buying_power(order, account, basis, needed, limits))
        elif (
            order.charges
            and basis is not None
            and account.account_type is AccountType.CASH
            and order.charges > qty * basis + account.available
        ):  # a cash account's sale must at least pay its own commission
            add(_commission_unpaid(order, account, basis))
        if account.recent_orders:
            duplicate = _duplicate(order, account.recent_orders, limits.duplicate_window, now)
            if duplicate is not None:
                add(duplicate)
        window = limits.rate_window
        recent = account.orders_in_rate_window
        if recent is None:
            recent = sum(1 for t in account.recent_order_times if now - t < window)
        if recent >= limits.max_orders_per_window:
            add(
                RiskFailure(
                    RiskCode.ORDER_RATE,
                    f"order rate: {recent} orders in the last {_secs(window)} already; "
                    f"the limit is {limits.max_orders_per_window} per {_secs(window)}",
                )
            )
    return RiskResult(tuple(failures))


# What a cancel/replace is checked for on its new leaves (the part not yet filled); the rest of
# the checks look at the order's new terms as a whole. Duplicate and rate checks do not apply:
# a replace is not a new order.
_EXPOSURE: frozenset[RiskCode] = frozenset(
    {RiskCode.BUYING_POWER, RiskCode.POSITION_LIMIT, RiskCode.SHORT_SALE_CASH_ACCOUNT}
)
_NOT_FOR_REPLACE: frozenset[RiskCode] = frozenset({RiskCode.DUPLICATE_ORDER, RiskCode.ORDER_RATE})
_FOR_REDUCING: frozenset[RiskCode] = frozenset(
    {RiskCode.KILL_SWITCH, RiskCode.TICK_SIZE, RiskCode.LOT_SIZE}
)


def check_replace(
    order: OrderRequest,
    filled: Decimal,
    account: AccountState,
    market: MarketState,
    limits: Limits,
    now: datetime,
    *,
    reduces: bool = False,
) -> RiskResult:
    """Check a cancel/replace: `order` carries the order's new terms (quantity = the new total),
    `filled` what it has filled so far, `account` the account without this order's own
    reservation and leaves. Fat-finger, price, tick, lot, restriction and kill-switch checks
    see the new terms; buying power, position limit and short-sale checks see only the new
    leaves, since the filled part is already in the position and the cash. A replace that
    `reduces` the order (a smaller or the same quantity, the same prices: less, or a rename)
    adds nothing to what it can do: it
    is checked for the kill switch, tick and lot only (a restricted symbol, a short sale, a
    closed market or a moved price must not keep a client from asking for less)."""
    with localcontext(CONTEXT):
        leaves = order.quantity - filled
    if leaves <= 0:
        raise BadInput(
            "quantity",
            f"the new quantity {_num(order.quantity)} must exceed the {_num(filled)} "
            "already filled; to stop what is left, cancel the order instead",
        )
    quiet = AccountState(
        account.account_type,
        account.tier,
        account.currency,
        account.cash,
        account.reserved,
        account.position,
        account.open_buy_quantity,
        account.open_sell_quantity,
        kill_switch=account.kill_switch,
    )
    whole = check(order, quiet, market, limits, now).failures
    rest = check(replace(order, quantity=leaves), quiet, market, limits, now).failures
    failures = [f for f in whole if f.code not in _EXPOSURE | _NOT_FOR_REPLACE]
    failures += [f for f in rest if f.code in _EXPOSURE]
    if reduces:
        failures = [f for f in failures if f.code in _FOR_REDUCING]
    order_of = {code: i for i, code in enumerate(RiskCode)}
    return RiskResult(tuple(sorted(failures, key=lambda f: order_of[f.code])))


def _open(market: MarketState, now: datetime) -> bool:
    if market.always_open:
        return True
    start, end = market.session_open, market.session_close
    return start is not None and end is not None and start <= now < end and not market.in_break(now)


def _kill_switch(order: OrderRequest, account: AccountState, limits: Limits) -> RiskFailure:
    where: list[str] = []
    if account.kill_switch:
        where.append(f"for account {order.account}")
    if limits.kill_switch:
        where.append("globally")
    return RiskFailure(
        RiskCode.KILL_SWITCH,
        f"kill switch: engaged {' and '.join(where)}; every order is refused",
    )


def _market_closed(order: OrderRequest, market: MarketState, now: datetime) -> RiskFailure:
    kind = order.order_type
    if kind is OrdType.MARKET:
        what = "a market order needs an open session"
    else:
        what = (
            f"a {kind.value} order with tif {order.tif.value} needs an open session "
            "(gtc and gtd orders may be entered while closed)"
        )
    if market.session_open is None or market.session_close is None:
        when = f"there is no session for {order.symbol} today"
    elif market.in_break(now) and market.break_start and market.break_end:
        when = (
            f"now {utc_iso(now)} is in the lunch break of {order.symbol}'s session, "
            f"{utc_iso(market.break_start)} to {utc_iso(market.break_end)}"
        )
    elif now < market.session_open:
        when = (
            f"now {utc_iso(now)} is before {order.symbol}'s next session, "
            f"{utc_iso(market.session_open)} to {utc_iso(market.session_close)}"
        )
    else:
        when = (
            f"now {utc_iso(now)} is outside today's session for {order.symbol}, "
            f"{utc_iso(market.session_open)} to {utc_iso(market.session_close)}"
        )
    return RiskFailure(RiskCode.MARKET_CLOSED, f"market closed: {when}; {what}")


def _stale(ref: Decimal, at: datetime, age: timedelta, limits: Limits) -> RiskFailure:
    return RiskFailure(
        RiskCode.STALE_PRICE,
        f"stale price: the reference price {_num(ref)} is from {utc_iso(at)}, {_secs(age)} old;"
        f" a market order needs one at most {_secs(limits.max_price_age)} old",
    )


def _not_multiple(
    code: RiskCode, label: str, value: Decimal, unit_label: str, unit: Decimal
) -> RiskFailure:
    below = value - value % unit
    return RiskFailure(
        code,
        f"{unit_label}: {label} {_num(value)} is not a multiple of the {unit_label} "
        f"{_num(unit)} (nearest: {_num(below)} or {_num(below + unit)})",
    )


def _basis_text(order: OrderRequest, basis: Decimal) -> str:
    kind = order.order_type
    if kind.needs_limit:
        return f"{_num(basis)} limit" if basis == order.limit_price else f"{_num(basis)} reference"
    if kind is OrdType.MARKET or basis != order.stop_price:
        return f"{_num(basis)} reference"
    return f"{_num(basis)} stop"


def _max_notional(
    order: OrderRequest, basis: Decimal, currency: str, limits: Limits
) -> RiskFailure:
    return RiskFailure(
        RiskCode.MAX_NOTIONAL,
        f"max notional: {_num(order.quantity)} x {_basis_text(order, basis)} = "
        f"{_num(order.quantity * basis)} {currency} exceeds the per-order maximum of "
        f"{_num(max_notional_in(limits, currency))} {currency}",
    )


def _collar(
    price: Decimal, ref: Decimal, band: Decimal, limits: Limits, *, stop: bool = False
) -> RiskFailure:
    of = "the stop price" if stop else "the reference price"
    return RiskFailure(
        RiskCode.PRICE_COLLAR,
        f"price collar: limit price {_num(price)} is outside {_pct(limits.price_collar_pct)} "
        f"of {of} {_num(ref)} (allowed {_num(ref - band)} to {_num(ref + band)})",
    )


def _short_sale(order: OrderRequest, account: AccountState, can_sell: Decimal) -> RiskFailure:
    return RiskFailure(
        RiskCode.SHORT_SALE_CASH_ACCOUNT,
        f"short sale on a cash account: selling {_num(order.quantity)} {order.symbol}, but the "
        f"account holds {_num(account.position)} with {_num(account.open_sell_quantity)} on "
        f"open sell orders ({_num(max(can_sell, ZERO))} available to sell)",
    )


def _position_limit(
    order: OrderRequest, account: AccountState, limits: Limits
) -> RiskFailure | None:
    tier = limits.tiers.get(account.tier)
    if tier is None:
        known = ", ".join(sorted(limits.tiers)) or "none"
        return RiskFailure(
            RiskCode.POSITION_LIMIT,
            f"position limit: account tier {account.tier!r} has no limits configured "
            f"(tiers: {known})",
        )
    buy = order.side is Side.BUY
    pending = account.open_buy_quantity if buy else account.open_sell_quantity
    before = account.position + pending if buy else account.position - pending
    after = before + order.quantity if buy else before - order.quantity
    if abs(after) <= tier.max_position:
        return None
    if ZERO <= after < before or before < after <= ZERO:
        return None  # only reduces the exposure, without crossing flat
    op, side = ("+", "buys") if buy else ("-", "sells")
    return RiskFailure(
        RiskCode.POSITION_LIMIT,
        f"position limit: position {_num(account.position)} {op} open {side} {_num(pending)} "
        f"{op} order {_num(order.quantity)} = {_num(after)} {order.symbol}, beyond the "
        f"{account.tier} tier's limit of {_num(tier.max_position)} per symbol (long or short)",
    )


def _buying_power(
    order: OrderRequest,
    account: AccountState,
    basis: Decimal,
    needed: Decimal,
    limits: Limits,
) -> RiskFailure:
    how = f"{_num(order.quantity)} x {_basis_text(order, basis)}"
    if not order.order_type.needs_limit:
        how += f" + {_pct(limits.market_buffer_pct)} buffer"
    if order.charges:
        how += f" + commission {_num(order.charges)}"
    ccy = account.currency
    return RiskFailure(
        RiskCode.BUYING_POWER,
        f"buying power: order needs {_num(needed)} {ccy} ({how}), available "
        f"{_num(account.available)} {ccy} (cash {_num(account.cash)} - reserved "
        f"{_num(account.reserved)})",
    )


def _commission_unpaid(order: OrderRequest, account: AccountState, basis: Decimal) -> RiskFailure:
    ccy = account.currency
    return RiskFailure(
        RiskCode.BUYING_POWER,
        f"buying power: the sale's commission {_num(order.charges)} {ccy} exceeds its proceeds "
        f"{_num(order.quantity * basis)} {ccy} ({_num(order.quantity)} x "
        f"{_basis_text(order, basis)}) plus available {_num(account.available)} {ccy}: a cash "
        "account would go below zero",
    )


def _duplicate(
    order: OrderRequest, recent: Sequence[RecentOrder], window: timedelta, now: datetime
) -> RiskFailure | None:
    for r in recent:
        if (
            r.symbol == order.symbol
            and r.side == order.side
            and r.quantity == order.quantity
            and r.order_type == order.order_type
            and r.limit_price == order.limit_price
            and r.stop_price == order.stop_price
            and r.tif == order.tif
            and r.expire_at == order.expire_at
            and (r.client_order_id is None or r.client_order_id != order.client_order_id)
            and now - r.at < window
        ):
            terms = f"{order.side.value} {_num(order.quantity)} {order.symbol}"
            if order.order_type is OrdType.MARKET:
                terms += " market"
            if order.stop_price is not None:
                terms += f" stop {_num(order.stop_price)}"
            if order.limit_price is not None:
                terms += f" limit {_num(order.limit_price)}"
            terms += f" {order.tif.value}"
            if order.expire_at is not None:
                terms += f" until {order.expire_at.isoformat()}"
            ident = f" {r.client_order_id!r}" if r.client_order_id else ""
            age = (
                f"{_secs(now - r.at)} ago"
                if r.at <= now
                else f"{_secs(r.at - now)} after now (the clock went back)"
            )
            return RiskFailure(
                RiskCode.DUPLICATE_ORDER,
                f"duplicate order: same terms ({terms}) as order{ident} sent at {utc_iso(r.at)},"
                f" {age}; the duplicate window is {_secs(window)}",
            )
    return None
