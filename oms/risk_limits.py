"""Risk limits and kill switches kept in the database (settings `risk.*`), changed by audited
commands; the pure checks (oms.risk) take them as values. Without settings, the defaults of
oms.risk.DEFAULT_LIMITS apply, so a new user can trade at once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, select

from oms.book import Ctx, get_account, get_setting, put_setting
from oms.errors import BadInput
from oms.risk import DEFAULT_LIMITS, Limits, TierLimits, max_notional_in
from oms.schema import instruments, settings
from oms.store import Store, remembered
from oms.values import dec_str, normalize, parse_currency, parse_decimal, parse_ident

PREFIX = "risk."
KILL_GLOBAL = "risk.kill.global"
ON = "on"


def _positive_decimal(name: str) -> Callable[[str], Decimal]:
    return lambda text: parse_decimal(text, name, positive=True)


def _non_negative_decimal(name: str) -> Callable[[str], Decimal]:
    return lambda text: parse_decimal(text, name, non_negative=True)


MAX_SECONDS = 366 * 86_400  # the longest window or age a limit may have


def _seconds(name: str) -> Callable[[str], timedelta]:
    """Seconds, to the microsecond (a finer value would be cut short unseen, 0.0000001 to no
    time at all: refused)."""

    def parse(text: str) -> timedelta:
        value = parse_decimal(text, name, positive=True)
        if value > MAX_SECONDS:  # a window reaching before year 1 would fail every order
            raise BadInput(
                name, f"{text!r} is more than {MAX_SECONDS:,} seconds (366 days): too long"
            )
        micros = value * 1_000_000
        if micros != micros.to_integral_value():
            raise BadInput(name, f"{text!r}: seconds have at most 6 decimal places")
        return timedelta(microseconds=int(micros))

    return parse


def _count(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_decimal(text, name, positive=True)
        if value != int(value):
            raise BadInput(name, f"{text!r} must be a whole number")
        return int(value)

    return parse


# limit name (as `tieout risk set` takes it) -> (Limits field, parser)
LIMITS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "max-order-quantity": ("max_order_quantity", _positive_decimal("max-order-quantity")),
    "max-notional": ("max_notional", _positive_decimal("max-notional")),
    "price-collar-pct": ("price_collar_pct", _positive_decimal("price-collar-pct")),
    # 0 is allowed: market and stop buys then reserve exactly quantity x price
    "market-buffer-pct": ("market_buffer_pct", _non_negative_decimal("market-buffer-pct")),
    "max-price-age-s": ("max_price_age", _seconds("max-price-age-s")),
    "duplicate-window-s": ("duplicate_window", _seconds("duplicate-window-s")),
    "rate-window-s": ("rate_window", _seconds("rate-window-s")),
    "max-orders-per-window": ("max_orders_per_window", _count("max-orders-per-window")),
}
TIER = "tier."  # tier.<name>.max-position
NOTIONAL = "max-notional."  # max-notional.<CCY>


_STORED = select(settings.c.key, settings.c.value).where(settings.c.key.startswith(PREFIX))


def _stored(conn: Connection) -> dict[str, str]:
    return {k.removeprefix(PREFIX): v for k, v in conn.execute(_STORED)}


def load_limits(conn: Connection) -> Limits:
    """The limits in force, read once in a transaction (tx_memo)."""
    return remembered(conn, "risk_limits", lambda: limits_from(_stored(conn)))


def limits_from(stored: Mapping[str, str]) -> Limits:
    """The limits in force given the `risk.*` settings (keys without the prefix); the same
    settings give the same (shared, immutable) value, parsed once."""
    return _limits_of(tuple(sorted(stored.items())))


@functools.lru_cache(maxsize=64)
def _limits_of(items: tuple[tuple[str, str], ...]) -> Limits:
    stored = dict(items)
    changes: dict[str, Any] = {}
    tiers = dict(DEFAULT_LIMITS.tiers)
    caps = dict(DEFAULT_LIMITS.notional_by_currency)
    for name, text in stored.items():
        if name in LIMITS:
            field, parse = LIMITS[name]
            changes[field] = parse(text)
        elif name.startswith(TIER) and name.endswith(".max-position"):
            tier = name[len(TIER) : -len(".max-position")]
            tiers[tier] = TierLimits(max_position=Decimal(text))
        elif name.startswith(NOTIONAL):
            caps[name[len(NOTIONAL) :]] = Decimal(text)
    return dataclasses.replace(
        DEFAULT_LIMITS,
        **changes,
        tiers=tiers,
        notional_by_currency=MappingProxyType(caps),
        kill_switch=stored.get("kill.global") == ON,
    )


def killed(conn: Connection, account: str) -> bool:
    """Whether the global or the account's kill switch is engaged (one read of the settings)."""
    stored = _stored(conn)
    return stored.get("kill.global") == ON or killed_in(stored, account)


def killed_accounts(conn: Connection) -> list[str]:
    """The accounts whose own kill switch is engaged, sorted."""
    prefix = "kill.account."
    return sorted(
        k.removeprefix(prefix)
        for k, v in _stored(conn).items()
        if k.startswith(prefix) and v == ON
    )


def killed_in(stored: Mapping[str, str], account: str) -> bool:
    """Whether the `risk.*` settings (keys without the prefix) engage the account's switch."""
    return stored.get(f"kill.account.{account}") == ON


def set_limit(store: Store, ctx: Ctx, name: str, text: str) -> Limits:
    """Change one limit (validated, audited); returns the limits now in force. The value is
    kept as its canonical text (`canonical_setting`), so setting the value a stored setting
    has already changes nothing and is not audited as a change."""
    name, value = canonical_setting(name, text)
    with store.write() as conn:
        if get_setting(conn, PREFIX + name) != value:
            default = _in_force(load_limits(conn), name)
            put_setting(conn, ctx, PREFIX + name, value, default=default)
        return load_limits(conn)


def untraded_currency(store: Store, name: str) -> tuple[str, list[str]] | None:
    """For a per-currency notional cap (`max-notional.<CCY>`) in a currency no instrument of
    the book trades in: (that currency, the currencies instruments trade in), so that a typo
    (YEN for JPY) is pointed out rather than left a cap that never applies; else None."""
    if not name.startswith(NOTIONAL):
        return None
    currency = parse_currency(name[len(NOTIONAL) :], "limit")
    with store.read() as conn:
        traded = sorted(set(conn.execute(select(instruments.c.currency)).scalars()))
    return None if currency in traded else (currency, traded)


def canonical_setting(name: str, text: str) -> tuple[str, str]:
    """A limit's name and value as stored ("max-notional.jpy", "100.0" -> "max-notional.JPY",
    "100"), validated (BadInput: why not)."""
    name = canonical_name(name)
    if name in LIMITS:
        parsed = LIMITS[name][1](text)
        if name == "price-collar-pct" and parsed >= 100:
            # checked when set, not when read: a book that stored one before still opens
            raise BadInput(
                name,
                f"{text!r} is not below 100: a collar of 100% or more lets every price through "
                "below the reference price",
            )
        return name, _canonical(parsed)
    return name, _canonical(parse_decimal(text, name, positive=True))


def canonical_name(name: str) -> str:
    """A limit's name as stored ("max-notional.jpy" -> "max-notional.JPY"), validated
    (BadInput: not a risk limit): also what an approval request of `risk set` changes."""
    if name in LIMITS:
        return name
    if name.startswith(TIER) and name.endswith(".max-position"):
        parse_ident(name[len(TIER) : -len(".max-position")], "tier")
        return name
    if name.startswith(NOTIONAL):
        return NOTIONAL + parse_currency(name[len(NOTIONAL) :], "limit")  # "jpy" -> "JPY"
    known = ", ".join([*LIMITS, "tier.<name>.max-position", "max-notional.<CCY>"])
    raise BadInput("limit", f"{name!r} is not a risk limit ({known})")


def _canonical(value: Decimal | timedelta | int) -> str:
    """A limit's value as stored: what `risk show` prints for it, every digit kept (trailing
    zeros dropped from the text, not by arithmetic, which would round past 28 digits)."""
    if isinstance(value, timedelta):
        return seconds_text(value)
    if isinstance(value, Decimal):
        text = dec_str(value)
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def seconds_text(span: timedelta) -> str:
    """A duration as exact decimal seconds ("900", "0.5"), never a float's text ("900.0")."""
    return dec_str(normalize(Decimal(span // timedelta(microseconds=1)).scaleb(-6)))


def _in_force(limits: Limits, name: str) -> str | None:
    """A limit's value as `risk show` gives it (None: a tier without limits)."""
    if name in LIMITS:
        value = getattr(limits, LIMITS[name][0])
        if isinstance(value, timedelta):
            return seconds_text(value)
        return dec_str(value) if isinstance(value, Decimal) else str(value)
    if name.startswith(NOTIONAL):
        return dec_str(max_notional_in(limits, name[len(NOTIONAL) :]))
    tier = limits.tiers.get(name[len(TIER) : -len(".max-position")])
    return None if tier is None else dec_str(tier.max_position)


def set_kill_flag(
    conn: Connection, ctx: Ctx, account: str | None, on: bool, reason: str | None = None
) -> bool:
    """Engage or release a kill switch (an account's, or the global one with None), audited,
    inside the caller's transaction. Whether it changed: engaging an engaged switch or
    releasing one that is not engaged writes nothing (and is not audited as a change)."""
    if account is not None:
        get_account(conn, account)
    key = KILL_GLOBAL if account is None else f"{PREFIX}kill.account.{account}"
    if (get_setting(conn, key) == ON) == on:
        return False
    put_setting(conn, ctx, key, ON if on else "off", reason)
    return True
