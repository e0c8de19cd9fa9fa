"""Transaction monitoring: the surveillance rules, pure functions over plain values.

No I/O, no clock, no database: the edge (oms.surveil_book) reads one business date's orders with
their events, the effective executions (corrections and busts applied), the accounts' history,
the opening positions, the market bars and the sessions, and stores the alerts these rules
return. Every number is a Decimal, every time timezone-aware UTC; the business date is the
date on each instrument's exchange: an execution's trade date, and for an order event the
local day of its exchange (Market.day_from to day_to: Sydney's session of a date opens the UTC
evening before); the UTC day for 24/7 instruments and where no market is given.

Thresholds are settings `surveil.<name>` (see PARAMS; `tieout surveil settings set NAME VALUE`).
"Owner": accounts linked in the setting `links` ("A1,A2;B1,B2": groups of accounts with one
beneficial owner; overlapping groups merge) are one owner for the rules that look at both sides
of the market (wash trades, spoofing, layering, marking the close); the other rules look at each
account on its own.

The rules and their scores (each alert's `score` is the rule's own measure; higher is worse):

- wash_trade: a buy and a sell of one symbol by one owner, at most `wash.window-s` apart, the
  later price within `wash.price-band-pct` of the earlier one (quantities matched greedily,
  earliest first). Score: the matched quantity, both sides, as a percentage of the owner's
  quantity traded in the symbol that day (0-100]. Executions without an exec time are not timed
  and never match.
- spoofing: orders canceled (at the trader's request) at most `spoofing.cancel-within-s` after
  their submission, while executions of the same owner on the other side of the same symbol
  happened during their life (submission to cancel request); fires when the canceled open
  quantity is at least `spoofing.size-ratio` times that executed quantity. One alert per owner,
  symbol and side of the canceled orders. Score: canceled quantity / executed quantity.
- layering: an owner's orders in one symbol submitted within `layering.window-s` of the first
  of them, at least `layering.min-orders` of them, of which at least `layering.min-cancel-pct`
  percent were canceled at the trader's request within `layering.window-s` of their own
  submission. The worst window is reported. Score: the cancel percentage of that window.
- unusual_size: an order's notional (its executions that day, quantity x price summed; an
  execution without an order stands alone) against the account's own history over
  `history-days` days before the date (at least `size.min-history` items): fires when the
  z-score (sample standard deviation) reaches `size.z-score`. Only large sizes fire. A history
  of equal sizes has no spread: 1% of its mean stands in for it. Notionals are in the
  instruments' currencies, not converted. Score: the largest z-score, per account and symbol.
- unusual_hours: executions outside the instrument's session that day (24/7 instruments never
  are; on a day without a session every execution is), or outside the account's usual window:
  the shortest span of the clock (each execution's exchange's local time, UTC for 24/7
  instruments; across midnight if need be) holding every execution time of its history
  (`history-days`, at least `hours.min-history` executions), widened by `hours.margin-min` on
  both sides. Score: the largest distance outside, in minutes (a day
  without a session counts as 1440).
- position_flip: the account's position in a symbol changing sign (long to short or back,
  through flat or not) at least `flip.min-flips` times within `flip.window-s`. The opening
  position is that of the executions before the date. Score: the flips in the worst window.
- marking_close: an owner's executed quantity in the last `close.window-min` minutes before
  the close (the session close; midnight UTC for 24/7 instruments) as a share of the market's
  volume in those minutes (the bars starting in them) reaching `close.min-share-pct`. Without
  bars in the window the rule cannot judge and stays quiet. Score: that share, in percent.
- order_rate: an account's order messages (submissions, cancel and replace requests) within
  any `rate.window-s` exceeding `rate.max-messages`. Score: the messages in the worst window.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, localcontext
from typing import Any

from oms.errors import BadInput
from oms.marketdata import Bar
from oms.values import (
    EXACT,
    Side,
    day_start,
    dec_str,
    decimal_context,
    exact_sum,
    normalize,
    parse_decimal,
    parse_ident,
    utc_iso,
)

PREFIX = "surveil."

WASH_TRADE = "wash_trade"
SPOOFING = "spoofing"
LAYERING = "layering"
UNUSUAL_SIZE = "unusual_size"
UNUSUAL_HOURS = "unusual_hours"
POSITION_FLIP = "position_flip"
MARKING_CLOSE = "marking_close"
ORDER_RATE = "order_rate"
RULES = (
    WASH_TRADE,
    SPOOFING,
    LAYERING,
    UNUSUAL_SIZE,
    UNUSUAL_HOURS,
    POSITION_FLIP,
    MARKING_CLOSE,
    ORDER_RATE,
)

# order event names (oms.orders.Event values) the rules read
SUBMITTED = "order_submitted"
CANCEL_REQUESTED = "cancel_requested"
REPLACE_REQUESTED = "replace_requested"
CANCELED_STATUS = "canceled"
MESSAGES = frozenset({SUBMITTED, CANCEL_REQUESTED, REPLACE_REQUESTED})

CTX = decimal_context(34)
_SCORE = Decimal("0.0001")
_SHOWN = Decimal("0.01")
_HUNDRED = Decimal(100)
_DAY_SECONDS = 86_400
_NO_SESSION_MINUTES = Decimal(1440)
_SPREAD_FLOOR = Decimal("0.01")  # of the mean, when the history has no spread
_MICRO = timedelta(microseconds=1)


# ---- settings --------------------------------------------------------------------------------


def _seconds(td: timedelta) -> Decimal:
    """A timedelta as exact decimal seconds."""
    return Decimal(td // _MICRO) / 1_000_000


# the most a setting may be: a window of a year, ten years of history, a billion of a count
# (beyond them a value is a typo, and dates or times computed from it leave the calendar: a
# history of 1,000,000 days was stored, and every run after it failed on a date out of range)
_MOST_SECONDS = 366 * 86_400
_MOST_DAYS = 3_660
_MOST_COUNT = 1_000_000_000


def _duration(name: str, unit: int, bounded: bool = True) -> Callable[[str], timedelta]:
    def parse(text: str) -> timedelta:
        value = parse_decimal(text, name, positive=True) * unit
        if bounded and value > _MOST_SECONDS:
            raise BadInput(name, f"{text!r} is more than a year ({_MOST_SECONDS // unit})")
        micros = value * 1_000_000
        if micros != micros.to_integral_value():
            raise BadInput(name, f"{text!r} is finer than a microsecond")
        return timedelta(microseconds=int(micros))

    return parse


def _show_duration(unit: int) -> Callable[[Any], str]:
    return lambda td: dec_str(normalize(_seconds(td) / unit))


def _count(name: str, most: int | None = _MOST_COUNT) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_decimal(text, name, positive=True)
        if value != value.to_integral_value():
            raise BadInput(name, f"{text!r} must be a whole number")
        if most is not None and value > most:
            raise BadInput(name, f"{text!r} is more than {most:,}")
        return int(value)

    return parse


def _positive(name: str) -> Callable[[str], Decimal]:
    return lambda text: normalize(parse_decimal(text, name, positive=True))


def _percent(name: str) -> Callable[[str], Decimal]:
    def parse(text: str) -> Decimal:
        value = normalize(parse_decimal(text, name, positive=True))
        if value > _HUNDRED:
            raise BadInput(name, f"{text!r} is a percentage: at most 100")
        return value

    return parse


def parse_rules(text: str) -> frozenset[str]:
    """The rules to run: all, or rule names separated by commas."""
    raw = text.strip()
    if raw.lower() == "all":
        return frozenset(RULES)
    names = {n.strip() for n in raw.split(",") if n.strip()}
    unknown = sorted(names - set(RULES))
    if unknown or not names:
        raise BadInput(
            "rules",
            f"{text!r}: name rules from {', '.join(RULES)} separated by commas, or all",
        )
    return frozenset(names)


def _show_rules(rules: frozenset[str]) -> str:
    return "all" if rules == frozenset(RULES) else ",".join(r for r in RULES if r in rules)


def parse_links(text: str) -> tuple[frozenset[str], ...]:
    """Groups of linked accounts, "A1,A2;B1,B2" ("" or none: no links); a group that shares an
    account with another merges with it."""
    raw = text.strip()
    if raw.lower() in ("", "none"):
        return ()
    groups: list[set[str]] = []
    for part in raw.split(";"):
        if not part.strip():
            continue
        members = {parse_ident(a, "links") for a in part.split(",") if a.strip()}
        if len(members) < 2:
            raise BadInput("links", f"{part.strip()!r}: a group links two accounts or more")
        groups.append(members)
    merged: list[set[str]] = []
    for group in groups:
        joined = set(group)
        for m in [m for m in merged if m & joined]:
            merged.remove(m)
            joined |= m
        merged.append(joined)
    return tuple(sorted((frozenset(g) for g in merged), key=sorted))


def _show_links(groups: tuple[frozenset[str], ...]) -> str:
    return ";".join(",".join(sorted(g)) for g in groups) or "none"


def _show_decimal(value: Any) -> str:
    return dec_str(value)


@dataclass(frozen=True, slots=True)
class Param:
    """One setting: its name (`surveil.<name>` in the settings table), the Settings field it
    fills, its parser, how its value is shown, the default and what it means."""

    name: str
    field: str
    parse: Callable[[str], Any]
    show: Callable[[Any], str]
    default: str
    help: str
    # how a stored value is read: as `parse`, without the upper bounds a value is checked
    # against when it is set (a value stored before a bound existed still reads)
    read: Callable[[str], Any] | None = None


def _param(name: str, field: str, kind: str, default: str, help_: str) -> Param:
    """A numeric setting; kind: s or min (a duration), count, days (a count of at most ten
    years), decimal, pct (0-100]."""
    parse: Callable[[str], Any]
    show: Callable[[Any], str]
    read: Callable[[str], Any] | None = None
    if kind in ("s", "min"):
        unit = 1 if kind == "s" else 60
        parse, show = _duration(name, unit), _show_duration(unit)
        read = _duration(name, unit, bounded=False)
    elif kind in ("count", "days"):
        parse, show = _count(name, _MOST_DAYS if kind == "days" else _MOST_COUNT), str
        read = _count(name, None)
    elif kind == "pct":
        parse, show = _percent(name), _show_decimal
    else:
        parse, show = _positive(name), _show_decimal
    return Param(name, field, parse, show, default, help_, read)


PARAMS: tuple[Param, ...] = (
    Param("rules", "rules", parse_rules, _show_rules, "all", "rules that run: all, or a list"),
    Param("links", "links", parse_links, _show_links, "none", "linked accounts: A1,A2;B1,B2"),
    _param("history-days", "history_days", "days", "30", "days of history (size, hours)"),
    _param("wash.window-s", "wash_window", "s", "300", "most seconds from buy to sell"),
    _param("wash.price-band-pct", "wash_price_band_pct", "pct", "0.5", "most price difference, %"),
    _param(
        "spoofing.cancel-within-s", "spoof_cancel_within", "s", "10", "canceled this soon: spoof?"
    ),
    _param(
        "spoofing.size-ratio", "spoof_size_ratio", "decimal", "3", "canceled / other side's qty"
    ),
    _param("layering.window-s", "layering_window", "s", "60", "window of submits and cancels"),
    _param("layering.min-orders", "layering_min_orders", "count", "4", "fewest orders in it"),
    _param("layering.min-cancel-pct", "layering_min_cancel_pct", "pct", "80", "canceled in it, %"),
    _param("size.z-score", "size_z", "decimal", "3", "z-score against the history that fires"),
    _param("size.min-history", "size_min_history", "count", "10", "fewest history items"),
    _param("hours.margin-min", "hours_margin", "min", "30", "minutes around the usual window"),
    _param("hours.min-history", "hours_min_history", "count", "10", "fewest history executions"),
    _param("flip.window-s", "flip_window", "s", "900", "window of position flips"),
    _param("flip.min-flips", "flip_min_flips", "count", "2", "flips in the window that fire"),
    _param("close.window-min", "close_window", "min", "10", "last minutes before the close"),
    _param("close.min-share-pct", "close_min_share_pct", "pct", "20", "share of their volume, %"),
    _param("rate.window-s", "rate_window", "s", "60", "window of order messages"),
    _param("rate.max-messages", "rate_max_messages", "count", "30", "messages allowed in it"),
)
PARAM_BY_NAME = {p.name: p for p in PARAMS}


@dataclass(frozen=True, slots=True)
class Settings:
    rules: frozenset[str]
    links: tuple[frozenset[str], ...]
    history_days: int
    wash_window: timedelta
    wash_price_band_pct: Decimal
    spoof_cancel_within: timedelta
    spoof_size_ratio: Decimal
    layering_window: timedelta
    layering_min_orders: int
    layering_min_cancel_pct: Decimal
    size_z: Decimal
    size_min_history: int
    hours_margin: timedelta
    hours_min_history: int
    flip_window: timedelta
    flip_min_flips: int
    close_window: timedelta
    close_min_share_pct: Decimal
    rate_window: timedelta
    rate_max_messages: int

    def owner(self, account: str) -> str:
        """The owner key of an account: its linked group's first account, else itself."""
        for group in self.links:
            if account in group:
                return min(group)
        return account

    def as_json(self) -> dict[str, str]:
        return {p.name: p.show(getattr(self, p.field)) for p in PARAMS}


def parse_param(name: str, text: str) -> tuple[Param, Any]:
    """A setting's value checked by its parser; BadInput naming the known settings otherwise."""
    param = PARAM_BY_NAME.get(name.removeprefix(PREFIX))
    if param is None:
        raise BadInput(
            "setting", f"{name!r} is not a surveillance setting ({', '.join(PARAM_BY_NAME)})"
        )
    return param, param.parse(text)


def settings_from(stored: Mapping[str, str]) -> Settings:
    """Settings from stored texts (names without the prefix); defaults for the others."""
    values = {p.field: (p.read or p.parse)(stored.get(p.name, p.default)) for p in PARAMS}
    return Settings(**values)


DEFAULT_SETTINGS = settings_from({})


# ---- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One row of an order's history."""

    event: str  # oms.orders.Event value
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderFact:
    """An order as the rules see it: its terms now, and its events."""

    order_id: str
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    limit_price: Decimal | None
    status: str
    cum_qty: Decimal
    submitted_at: datetime
    events: tuple[OrderEvent, ...] = ()

    @property
    def canceled_at(self) -> datetime | None:
        """When the trader asked to cancel it, if it ended canceled (an ioc order the venue
        canceled, never asked to, has no such time)."""
        if self.status != CANCELED_STATUS:
            return None
        return next((e.at for e in self.events if e.event == CANCEL_REQUESTED), None)

    @property
    def open_quantity(self) -> Decimal:
        return self.quantity - self.cum_qty

    def messages(self) -> list[datetime]:
        """Times of the messages the account sent about it: submission, cancel and replace
        requests."""
        times = [e.at for e in self.events if e.event in MESSAGES]
        if not any(e.event == SUBMITTED for e in self.events):
            times.append(self.submitted_at)
        return sorted(times)

    def as_json(self) -> dict[str, Any]:
        canceled = self.canceled_at
        return {
            "order_id": self.order_id,
            "account": self.account,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": dec_str(self.quantity),
            "limit_price": None if self.limit_price is None else dec_str(self.limit_price),
            "status": self.status,
            "cum_qty": dec_str(self.cum_qty),
            "submitted_at": utc_iso(self.submitted_at),
            "canceled_at": None if canceled is None else utc_iso(canceled),
        }


@dataclass(frozen=True, slots=True)
class Trade:
    """An effective execution (corrections and busts applied)."""

    id: int
    venue: str
    exec_id: str
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    trade_date: date
    exec_time: datetime | None
    order_id: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.venue}:{self.exec_id}"

    @property
    def signed(self) -> Decimal:
        return self.quantity * self.side.sign

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "venue": self.venue,
            "exec_id": self.exec_id,
            "account": self.account,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": dec_str(self.quantity),
            "price": dec_str(self.price),
            "trade_date": self.trade_date.isoformat(),
            "exec_time": None if self.exec_time is None else utc_iso(self.exec_time),
            "order_id": self.order_id,
        }


@dataclass(frozen=True, slots=True)
class Market:
    """An instrument's trading hours on the date: 24/7, a session, or none (a holiday)."""

    symbol: str
    always_open: bool = False
    session_open: datetime | None = None
    session_close: datetime | None = None
    # the date on the exchange: from its local midnight to the next (None: the UTC day)
    day_from: datetime | None = None
    day_to: datetime | None = None

    def __post_init__(self) -> None:
        if (self.session_open is None) != (self.session_close is None):
            raise ValueError("give a session's open and close, or neither")
        if (self.day_from is None) != (self.day_to is None):
            raise ValueError("give the date's start and end on the exchange, or neither")


@dataclass(frozen=True, slots=True)
class DayData:
    """Everything the rules read about one business date."""

    day: date
    orders: Sequence[OrderFact] = ()  # orders with an event near the date (the UTC day
    # before to the one after: the rules take those of the date, on each exchange's day)
    trades: Sequence[Trade] = ()  # effective executions with that trade date
    history: Sequence[Trade] = ()  # the same accounts' executions of the history days before
    opening: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)  # (acct, sym)
    bars: Sequence[Bar] = ()  # the day's bars of the symbols traded
    markets: Mapping[str, Market] = field(default_factory=dict)
    # each symbol's exchange's time zone (24/7: UTC), for the clock of its trades; UTC if absent
    zones: Mapping[str, tzinfo] = field(default_factory=dict)

    @property
    def start(self) -> datetime:
        return day_start(self.day)

    @property
    def end(self) -> datetime:
        return day_start(self.day + timedelta(days=1))


# ---- output ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    day: date
    rule: str
    account: str | None
    symbol: str | None
    score: Decimal
    details: Mapping[str, Any]  # JSON-ready: decimals and times as strings
    orders: tuple[OrderFact, ...] = ()
    trades: tuple[Trade, ...] = ()

    @property
    def key(self) -> str:
        """Stable over reruns on the same data: the rule, date, account, symbol and a digest of
        the evidence (evidence_digest). New evidence, or executions whose terms changed since
        (a correction), make a new alert (which names the alerts it supersedes); the same
        evidence never twice."""
        who = f"{self.account or '-'}|{self.symbol or '-'}"
        return f"{self.day.isoformat()}|{self.rule}|{who}|{evidence_digest(self.evidence())}"

    def evidence_ids(self) -> frozenset[str]:
        """The orders' and executions' ids of the evidence (an execution by its ref, which a
        correction keeps)."""
        return frozenset(
            [f"order:{o.order_id}" for o in self.orders] + [f"exec:{t.ref}" for t in self.trades]
        )

    def evidence(self) -> dict[str, Any]:
        return {
            "orders": [o.as_json() for o in sorted(self.orders, key=lambda o: o.order_id)],
            "executions": [t.as_json() for t in sorted(self.trades, key=_trade_order)],
        }


def superseded(alerts: Iterable[tuple[int, Mapping[str, Any]]]) -> dict[int, int]:
    """(alert id, details) in id order -> each alert that a later one names in its
    `supersedes`, and the first such later alert."""
    later: dict[int, int] = {}
    for alert_id, details in alerts:
        for old in details.get("supersedes", []):
            later.setdefault(int(old), alert_id)
    return later


def evidence_digest(evidence: Mapping[str, Any]) -> str:
    """What names an alert's evidence (Alert.evidence() or the stored JSON of it): its orders'
    ids and its executions' terms. Not the orders' state now: an order of the evidence that
    fills, expires or is replaced after the date is the same evidence."""
    orders = sorted(str(o["order_id"]) for o in evidence.get("orders", []))
    trades = sorted(
        [str(t[k] or "") for k in ("venue", "exec_id", "side", "quantity", "price", "trade_date",
                                   "exec_time")]
        for t in evidence.get("executions", [])
    )  # fmt: skip
    text = json.dumps([orders, trades], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- helpers ---------------------------------------------------------------------------------


def _trade_order(t: Trade) -> tuple[datetime, int]:
    """Time order; an execution without a time at the start of its trade date."""
    return (t.exec_time or day_start(t.trade_date), t.id)


def _timed(trades: Iterable[Trade]) -> list[Trade]:
    """Trades with an exec time, in time order."""
    out = [t for t in trades if t.exec_time is not None]
    out.sort(key=lambda t: (t.exec_time, t.id))
    return out


def _time(t: Trade) -> datetime:
    assert t.exec_time is not None
    return t.exec_time


def _score(value: Decimal) -> Decimal:
    with localcontext(CTX):
        return normalize(value.quantize(_SCORE))


def _shown(value: Decimal) -> str:
    with localcontext(CTX):
        return dec_str(normalize(value.quantize(_SHOWN)))


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    with localcontext(CTX):
        return part * _HUNDRED / whole


def _orders_of(trades: Iterable[Trade], data: DayData) -> tuple[OrderFact, ...]:
    ids = {t.order_id for t in trades if t.order_id is not None}
    return tuple(o for o in data.orders if o.order_id in ids)


def _on_day(at: datetime, data: DayData, symbol: str) -> bool:
    """Whether a time falls on the date on the symbol's exchange (its local day: Sydney's
    session of a date opens the UTC evening before), else on the UTC day."""
    market = data.markets.get(symbol)
    if market is not None and market.day_from is not None and market.day_to is not None:
        return market.day_from <= at < market.day_to
    return data.start <= at < data.end


def _owner_alert_account(accounts: Iterable[str]) -> tuple[str, list[str]]:
    involved = sorted(set(accounts))
    return involved[0], involved


# ---- wash trades -----------------------------------------------------------------------------


def wash_trades(data: DayData, s: Settings) -> list[Alert]:
    by_owner: dict[tuple[str, str], list[Trade]] = defaultdict(list)
    for t in data.trades:
        by_owner[(s.owner(t.account), t.symbol)].append(t)
    alerts = []
    for (_, symbol), trades in sorted(by_owner.items()):
        timed = _timed(trades)
        left = {t.id: t.quantity for t in timed}
        pairs: list[tuple[Trade, Trade, Decimal]] = []
        for i, first in enumerate(timed):
            for later in timed[i + 1 :]:
                if left[first.id] <= 0 or _time(later) - _time(first) > s.wash_window:
                    break
                if later.side is first.side or left[later.id] <= 0:
                    continue
                with localcontext(CTX):
                    band = first.price * s.wash_price_band_pct / _HUNDRED
                if abs(later.price - first.price) > band:
                    continue
                matched = min(left[first.id], left[later.id])
                left[first.id] -= matched
                left[later.id] -= matched
                pairs.append((first, later, matched))
        if not pairs:
            continue
        washed = sum((q for _, _, q in pairs), Decimal(0))
        traded = sum((t.quantity for t in trades), Decimal(0))
        evidence = {t.id: t for a, b, _ in pairs for t in (a, b)}
        account, accounts = _owner_alert_account(t.account for t in evidence.values())
        details = {
            "accounts": accounts,
            "pairs": [
                {
                    "buy": (a if a.side is Side.BUY else b).ref,
                    "sell": (b if a.side is Side.BUY else a).ref,
                    "quantity": dec_str(q),
                    "seconds_apart": dec_str(normalize(_seconds(_time(b) - _time(a)))),
                    "price_diff_pct": _shown(_pct(abs(b.price - a.price), a.price)),
                }
                for a, b, q in pairs
            ],
            "washed_quantity": dec_str(washed),
            "traded_quantity": dec_str(traded),
            "window_s": _show_duration(1)(s.wash_window),
            "price_band_pct": dec_str(s.wash_price_band_pct),
        }
        trades_ = tuple(evidence.values())
        alerts.append(
            Alert(
                data.day,
                WASH_TRADE,
                account,
                symbol,
                _score(_pct(washed * 2, traded)),
                details,
                _orders_of(trades_, data),
                trades_,
            )
        )
    return alerts


# ---- spoofing and layering -------------------------------------------------------------------


def _submitted_today(data: DayData) -> list[OrderFact]:
    return sorted(
        (o for o in data.orders if _on_day(o.submitted_at, data, o.symbol)),
        key=lambda o: (o.submitted_at, o.order_id),
    )


def spoofing(data: DayData, s: Settings) -> list[Alert]:
    timed: dict[tuple[str, str], list[Trade]] = defaultdict(list)
    for t in _timed(data.trades):
        timed[(s.owner(t.account), t.symbol)].append(t)
    found: dict[tuple[str, str, Side], list[tuple[OrderFact, list[Trade]]]] = defaultdict(list)
    for o in _submitted_today(data):
        canceled = o.canceled_at
        if canceled is None or canceled - o.submitted_at > s.spoof_cancel_within:
            continue
        if o.open_quantity <= 0:
            continue
        owner = s.owner(o.account)
        other = [
            t
            for t in timed.get((owner, o.symbol), [])
            if t.side is not o.side and o.submitted_at <= _time(t) <= canceled
        ]
        if other:
            found[(owner, o.symbol, o.side)].append((o, other))
    alerts = []
    for (_, symbol, side), items in sorted(found.items()):
        orders = tuple(o for o, _ in items)
        trades = {t.id: t for _, ts in items for t in ts}
        canceled_qty = sum((o.open_quantity for o in orders), Decimal(0))
        executed = sum((t.quantity for t in trades.values()), Decimal(0))
        with localcontext(CTX):
            ratio = canceled_qty / executed
        if ratio < s.spoof_size_ratio:
            continue
        account, accounts = _owner_alert_account(
            [o.account for o in orders] + [t.account for t in trades.values()]
        )
        details = {
            "accounts": accounts,
            "side": side.value,
            "canceled_orders": len(orders),
            "canceled_quantity": dec_str(canceled_qty),
            "other_side_quantity": dec_str(executed),
            "ratio": _shown(ratio),
            "seconds_to_cancel": [
                dec_str(normalize(_seconds(o.canceled_at - o.submitted_at)))
                for o in orders
                if o.canceled_at is not None
            ],
            "cancel_within_s": _show_duration(1)(s.spoof_cancel_within),
            "size_ratio": dec_str(s.spoof_size_ratio),
        }
        alerts.append(
            Alert(
                data.day,
                SPOOFING,
                account,
                symbol,
                _score(ratio),
                details,
                orders,
                tuple(trades.values()),
            )
        )
    return alerts


def layering(data: DayData, s: Settings) -> list[Alert]:
    by_owner: dict[tuple[str, str], list[OrderFact]] = defaultdict(list)
    for o in _submitted_today(data):
        by_owner[(s.owner(o.account), o.symbol)].append(o)
    alerts = []
    for (_, symbol), orders in sorted(by_owner.items()):
        best: tuple[Decimal, int, list[OrderFact], list[OrderFact]] | None = None
        for i, first in enumerate(orders):
            window = [
                o for o in orders[i:] if o.submitted_at - first.submitted_at <= s.layering_window
            ]
            if len(window) < s.layering_min_orders:
                continue
            canceled = [
                o
                for o in window
                if o.canceled_at is not None and o.canceled_at - o.submitted_at <= s.layering_window
            ]
            pct = _pct(Decimal(len(canceled)), Decimal(len(window)))
            if pct < s.layering_min_cancel_pct:
                continue
            if best is None or (pct, len(window)) > (best[0], best[1]):
                best = (pct, len(window), window, canceled)
        if best is None:
            continue
        pct, _, window, canceled = best
        account, accounts = _owner_alert_account(o.account for o in window)
        prices = sorted({o.limit_price for o in canceled if o.limit_price is not None})
        details = {
            "accounts": accounts,
            "window_start": utc_iso(window[0].submitted_at),
            "window_s": _show_duration(1)(s.layering_window),
            "submitted": len(window),
            "canceled": len(canceled),
            "cancel_pct": _shown(pct),
            "sides": sorted({o.side.value for o in canceled}),
            "price_levels": [dec_str(p) for p in prices],
            "min_orders": s.layering_min_orders,
            "min_cancel_pct": dec_str(s.layering_min_cancel_pct),
        }
        alerts.append(
            Alert(data.day, LAYERING, account, symbol, _score(pct), details, tuple(window), ())
        )
    return alerts


# ---- unusual size ----------------------------------------------------------------------------


def _size_items(trades: Iterable[Trade]) -> dict[tuple[str, str, str], list[Trade]]:
    """Trades grouped into sizes: an order's executions, or an execution on its own; keyed by
    (account, symbol, order or execution)."""
    items: dict[tuple[str, str, str], list[Trade]] = defaultdict(list)
    for t in trades:
        ref = f"order:{t.order_id}" if t.order_id is not None else f"exec:{t.ref}"
        items[(t.account, t.symbol, ref)].append(t)
    return items


def _notional(trades: Iterable[Trade]) -> Decimal:
    """Quantity x price summed, exactly (the alert shows it); the statistics on it run in CTX."""
    times = EXACT.multiply
    return exact_sum(times(t.quantity, t.price) for t in trades)


def mean_stdev(values: Sequence[Decimal]) -> tuple[Decimal, Decimal]:
    """Mean and sample standard deviation (n - 1), exact decimals to 34 digits; at least two
    values."""
    if len(values) < 2:
        raise ValueError("a standard deviation needs two values or more")
    with localcontext(CTX):
        n = Decimal(len(values))
        mean = sum(values, Decimal(0)) / n
        var = sum(((v - mean) ** 2 for v in values), Decimal(0)) / (n - 1)
        return mean, var.sqrt()


def unusual_size(data: DayData, s: Settings) -> list[Alert]:
    history: dict[str, list[Decimal]] = defaultdict(list)
    for (account, _, _), trades in _size_items(data.history).items():
        history[account].append(_notional(trades))
    worst: dict[tuple[str, str], list[tuple[Decimal, Decimal, list[Trade]]]] = defaultdict(list)
    stats: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    for (account, symbol, _), trades in sorted(_size_items(data.trades).items()):
        past = history.get(account, [])
        if len(past) < max(s.size_min_history, 2):
            continue
        if account not in stats:
            mean, sd = mean_stdev(past)
            with localcontext(CTX):
                used = sd if sd > 0 else abs(mean) * _SPREAD_FLOOR
            stats[account] = (mean, sd, used)
        mean, sd, used = stats[account]
        if used <= 0:
            continue
        size = _notional(trades)
        with localcontext(CTX):
            z = (size - mean) / used
        if z >= s.size_z:
            worst[(account, symbol)].append((z, size, trades))
    alerts = []
    for (account, symbol), hits in sorted(worst.items()):
        mean, sd, _ = stats[account]
        z = max(h[0] for h in hits)
        trades_ = tuple(t for h in hits for t in h[2])
        details = {
            "items": [
                {
                    "notional": dec_str(size),
                    "z_score": _shown(hz),
                    "executions": [t.ref for t in ts],
                    "order_id": ts[0].order_id,
                }
                for hz, size, ts in hits
            ],
            "history_mean": _shown(mean),
            "history_stdev": _shown(sd),
            "history_items": len(history[account]),
            "history_days": s.history_days,
            "z_threshold": dec_str(s.size_z),
        }
        alerts.append(
            Alert(
                data.day,
                UNUSUAL_SIZE,
                account,
                symbol,
                _score(z),
                details,
                _orders_of(trades_, data),
                trades_,
            )
        )
    return alerts


# ---- unusual hours ---------------------------------------------------------------------------


def _second_of_day(at: datetime) -> int:
    return at.hour * 3600 + at.minute * 60 + at.second


def usual_window(times: Iterable[datetime], margin: timedelta) -> tuple[int, int] | None:
    """(start, length) in seconds of the day (UTC): the shortest arc of the clock holding every
    time, widened by the margin on both sides; None when that covers the whole day."""
    secs = sorted({_second_of_day(t) for t in times})
    if not secs:
        return None
    # the largest gap between neighbours (around the clock) is where the account never trades
    gaps = [(secs[0] + _DAY_SECONDS - secs[-1], secs[-1])]
    gaps += [(b - a, a) for a, b in itertools.pairwise(secs)]
    gap, gap_start = max(gaps, key=lambda g: (g[0], -g[1]))
    start = (gap_start + gap) % _DAY_SECONDS
    length = _DAY_SECONDS - gap
    pad = margin // timedelta(seconds=1)
    length += 2 * pad
    if length >= _DAY_SECONDS:
        return None
    return (start - pad) % _DAY_SECONDS, length


def _outside_window(at: datetime, window: tuple[int, int]) -> Decimal:
    """Minutes outside the window (0 inside)."""
    start, length = window
    offset = (_second_of_day(at) - start) % _DAY_SECONDS
    if offset <= length:
        return Decimal(0)
    before_start = _DAY_SECONDS - offset
    after_end = offset - length
    return Decimal(min(before_start, after_end)) / 60


def _clock(seconds: int) -> str:
    seconds %= _DAY_SECONDS
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _outside_session(at: datetime, market: Market | None) -> Decimal:
    if market is None or market.always_open:
        return Decimal(0)
    if market.session_open is None or market.session_close is None:
        return _NO_SESSION_MINUTES
    if at < market.session_open:
        return _seconds(market.session_open - at) / 60
    if at > market.session_close:
        return _seconds(at - market.session_close) / 60
    return Decimal(0)


def unusual_hours(data: DayData, s: Settings) -> list[Alert]:
    # the usual window is on the clock of each trade's exchange: a trader who keeps New York's
    # hours trades an hour earlier in UTC from the day daylight saving time starts
    def local(t: Trade) -> datetime:
        return _time(t).astimezone(data.zones.get(t.symbol, UTC))

    past: dict[str, list[datetime]] = defaultdict(list)
    clocks: dict[str, set[str]] = defaultdict(set)
    for t in _timed(data.history):
        past[t.account].append(local(t))
        clocks[t.account].add(str(data.zones.get(t.symbol, UTC)))
    windows = {
        a: usual_window(times, s.hours_margin)
        for a, times in past.items()
        if len(times) >= s.hours_min_history
    }
    hits: dict[tuple[str, str], list[tuple[Trade, Decimal, list[str]]]] = defaultdict(list)
    for t in _timed(data.trades):
        market = data.markets.get(t.symbol)
        session = _outside_session(_time(t), market)
        window = windows.get(t.account)
        usual = Decimal(0) if window is None else _outside_window(local(t), window)
        why = [w for w, d in (("session", session), ("usual_window", usual)) if d > 0]
        if why:
            hits[(t.account, t.symbol)].append((t, max(session, usual), why))
    alerts = []
    for (account, symbol), items in sorted(hits.items()):
        market = data.markets.get(symbol)
        window = windows.get(account)
        bounds: dict[str, str] | None = None
        if market is not None and market.session_open and market.session_close:
            bounds = {
                "open": utc_iso(market.session_open),
                "close": utc_iso(market.session_close),
            }
        details = {
            "executions": [
                {
                    "exec": t.ref,
                    "time": utc_iso(_time(t)),
                    "outside": why,
                    "minutes_outside": _shown(d),
                }
                for t, d, why in items
            ],
            "session": bounds,
            "always_open": bool(market and market.always_open),
            "usual_window": None
            if window is None
            else {
                "from": _clock(window[0]),
                "to": _clock(window[0] + window[1]),
                "clock": next(iter(clocks[account]))
                if len(clocks[account]) == 1
                else "each execution's exchange",
            },
            "margin_min": _show_duration(60)(s.hours_margin),
        }
        trades_ = tuple(t for t, _, _ in items)
        alerts.append(
            Alert(
                data.day,
                UNUSUAL_HOURS,
                account,
                symbol,
                _score(max(d for _, d, _ in items)),
                details,
                _orders_of(trades_, data),
                trades_,
            )
        )
    return alerts


# ---- position flips --------------------------------------------------------------------------


def _sign(q: Decimal) -> int:
    return (q > 0) - (q < 0)


def position_flips(data: DayData, s: Settings) -> list[Alert]:
    by_pair: dict[tuple[str, str], list[Trade]] = defaultdict(list)
    for t in data.trades:
        by_pair[(t.account, t.symbol)].append(t)
    alerts = []
    for (account, symbol), trades in sorted(by_pair.items()):
        opening = data.opening.get((account, symbol), Decimal(0))
        untimed = [t for t in trades if t.exec_time is None]  # counted first, never timed
        position = opening + sum((t.signed for t in untimed), Decimal(0))
        last_sign = _sign(position)
        flips: list[tuple[Trade, Decimal, Decimal]] = []  # (trade, before, after)
        for t in _timed(trades):
            before, position = position, position + t.signed
            sign = _sign(position)
            if sign != 0 and last_sign not in (0, sign):
                flips.append((t, before, position))
            if sign != 0:
                last_sign = sign
        best: list[tuple[Trade, Decimal, Decimal]] = []
        for i, first in enumerate(flips):
            window = [f for f in flips[i:] if _time(f[0]) - _time(first[0]) <= s.flip_window]
            if len(window) > len(best):
                best = window
        if len(best) < s.flip_min_flips:
            continue
        lo, hi = _time(best[0][0]), _time(best[-1][0])
        trades_ = tuple(t for t in _timed(trades) if lo <= _time(t) <= hi)
        details = {
            "opening_position": dec_str(opening),
            "flips": [
                {
                    "exec": t.ref,
                    "time": utc_iso(_time(t)),
                    "from": dec_str(before),
                    "to": dec_str(after),
                }
                for t, before, after in best
            ],
            "window_s": _show_duration(1)(s.flip_window),
            "min_flips": s.flip_min_flips,
        }
        alerts.append(
            Alert(
                data.day,
                POSITION_FLIP,
                account,
                symbol,
                Decimal(len(best)),
                details,
                _orders_of(trades_, data),
                trades_,
            )
        )
    return alerts


# ---- marking the close -----------------------------------------------------------------------


def close_of(market: Market | None, data: DayData) -> datetime | None:
    """The close a marking-the-close check looks at: the session close, or the end of the UTC
    day for 24/7 instruments; None without a session."""
    if market is None:
        return None
    if market.always_open:
        return data.end
    return market.session_close


def marking_close(data: DayData, s: Settings) -> list[Alert]:
    by_owner: dict[tuple[str, str], list[Trade]] = defaultdict(list)
    for t in _timed(data.trades):
        by_owner[(t.symbol, s.owner(t.account))].append(t)
    alerts = []
    for (symbol, _), trades in sorted(by_owner.items()):
        close = close_of(data.markets.get(symbol), data)
        if close is None:
            continue
        start = close - s.close_window
        late = [t for t in trades if start <= _time(t) <= close]
        if not late:
            continue
        bars = [b for b in data.bars if b.symbol == symbol and start <= b.time < close]
        volume = sum((b.volume for b in bars), Decimal(0))
        if volume <= 0:
            continue
        quantity = sum((t.quantity for t in late), Decimal(0))
        share = _pct(quantity, volume)
        if share < s.close_min_share_pct:
            continue
        account, accounts = _owner_alert_account(t.account for t in late)
        last = max(bars, key=lambda b: b.time)
        details = {
            "accounts": accounts,
            "close": utc_iso(close),
            "window_min": _show_duration(60)(s.close_window),
            "quantity": dec_str(quantity),
            "bought": dec_str(sum((t.quantity for t in late if t.side is Side.BUY), Decimal(0))),
            "sold": dec_str(sum((t.quantity for t in late if t.side is Side.SELL), Decimal(0))),
            "market_volume": dec_str(volume),
            "share_pct": _shown(share),
            "closing_price": dec_str(last.close),
            "min_share_pct": dec_str(s.close_min_share_pct),
        }
        trades_ = tuple(late)
        alerts.append(
            Alert(
                data.day,
                MARKING_CLOSE,
                account,
                symbol,
                _score(share),
                details,
                _orders_of(trades_, data),
                trades_,
            )
        )
    return alerts


# ---- order rate ------------------------------------------------------------------------------


def order_rate(data: DayData, s: Settings) -> list[Alert]:
    """An account's busiest window of order messages, across its exchanges: every message
    the data holds counts (a burst over New York's evening and Sydney's morning is one burst),
    and a window belongs to the date its first message is on, on that message's exchange, so
    that a burst is alerted on one date only."""
    by_account: dict[str, list[tuple[datetime, OrderFact]]] = defaultdict(list)
    for o in data.orders:
        for at in o.messages():
            by_account[o.account].append((at, o))
    alerts = []
    for account, messages in sorted(by_account.items()):
        messages.sort(key=lambda m: (m[0], m[1].order_id))
        best: list[tuple[datetime, OrderFact]] = []
        j = 0
        for i in range(len(messages)):
            j = max(j, i)
            while j + 1 < len(messages) and messages[j + 1][0] - messages[i][0] <= s.rate_window:
                j += 1
            first_at, first = messages[i]
            if j - i + 1 > len(best) and _on_day(first_at, data, first.symbol):
                best = messages[i : j + 1]
        if len(best) <= s.rate_max_messages:
            continue
        orders = tuple({o.order_id: o for _, o in best}.values())
        symbols = sorted({o.symbol for o in orders})
        details = {
            "messages": len(best),
            "orders": len(orders),
            "window_start": utc_iso(best[0][0]),
            "window_end": utc_iso(best[-1][0]),
            "symbols": symbols,
            "window_s": _show_duration(1)(s.rate_window),
            "max_messages": s.rate_max_messages,
        }
        alerts.append(
            Alert(
                data.day,
                ORDER_RATE,
                account,
                symbols[0] if len(symbols) == 1 else None,
                Decimal(len(best)),
                details,
                orders,
                (),
            )
        )
    return alerts


# ---- all of them -----------------------------------------------------------------------------

RULE_FUNCTIONS: Mapping[str, Callable[[DayData, Settings], list[Alert]]] = {
    WASH_TRADE: wash_trades,
    SPOOFING: spoofing,
    LAYERING: layering,
    UNUSUAL_SIZE: unusual_size,
    UNUSUAL_HOURS: unusual_hours,
    POSITION_FLIP: position_flips,
    MARKING_CLOSE: marking_close,
    ORDER_RATE: order_rate,
}


def run_rules(data: DayData, s: Settings = DEFAULT_SETTINGS) -> list[Alert]:
    """The alerts of every rule that runs, in rule order, then account and symbol."""
    alerts: list[Alert] = []
    for rule in RULES:
        if rule in s.rules:
            found = RULE_FUNCTIONS[rule](data, s)
            found.sort(key=lambda a: (a.account or "", a.symbol or "", a.key))
            alerts += found
    return alerts
