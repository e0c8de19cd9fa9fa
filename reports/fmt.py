"""Display formatting of exact values: what the templates show. Pure.

Money is rounded for display only, half-even, to the currency's minor unit (ISO 4217; two
places unless the table says otherwise), each amount on its own: a total is the exact sum
rounded, so it may differ from the sum of its shown lines by a few minor units (the statement
says so). A confirmation shows its amounts exactly (exact_money), so that they foot. Prices
and quantities are shown exactly as stored, with at least the currency's places for prices.
The JSON of a report never goes through here: it carries the exact values.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from oms.values import decimal_context, minor_units, normalize, utc_iso

_CONTEXT = decimal_context(80)
DASH = "\u2014"


def round_money(value: Decimal, currency: str) -> Decimal:
    """The value as shown: rounded half-even to the currency's minor unit."""
    with localcontext(_CONTEXT):
        return value.quantize(Decimal(1).scaleb(-minor_units(currency)), ROUND_HALF_EVEN)


def _grouped(value: Decimal) -> str:
    text = format(value, ",f")
    return "0" + text[2:] if text.startswith("-0") and value.is_zero() else text


def money(value: Decimal | None, currency: str) -> str:
    """1,234.57 (rounded for display); a dash for None."""
    if value is None:
        return DASH
    shown = round_money(value, currency)
    return _grouped(abs(shown) if shown.is_zero() else shown)


def exact_money(value: Decimal | None, currency: str) -> str:
    """An amount exactly, with at least the currency's places: 300.075, 0.50. For a document
    whose lines must foot to the cash booked (a confirmation: gross less costs is the net, and
    the net is the cash entry, which keeps a price's places below the minor unit)."""
    return price(value, currency)


def price(value: Decimal | None, currency: str = "USD") -> str:
    """A price exactly, with at least the currency's places: 190.5 -> 190.50."""
    if value is None:
        return DASH
    exact = normalize(value)
    places = max(minor_units(currency), -int(exact.as_tuple().exponent))
    with localcontext(_CONTEXT):
        return _grouped(exact.quantize(Decimal(1).scaleb(-places)))


def quantity(value: Decimal | None) -> str:
    """A quantity exactly, without trailing zeros: 1,500 or 0.25."""
    if value is None:
        return DASH
    return _grouped(normalize(value))


def pct(value: Decimal | None, places: int = 2) -> str:
    """A percentage already scaled to 100, rounded half-even for display."""
    if value is None:
        return DASH
    with localcontext(_CONTEXT):
        return _grouped(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)) + "%"


def day(value: date | None) -> str:
    return DASH if value is None else value.isoformat()


def timestamp(value: datetime | None) -> str:
    """2026-11-24 14:31:05 UTC (seconds; the JSON keeps microseconds)."""
    if value is None:
        return DASH
    return utc_iso(value)[:19].replace("T", " ") + " UTC"


def traded(trade_date: date, at: datetime | None, *, zone: bool = True) -> str:
    """A trade's date and time: "2026-11-24 14:31:05 UTC" when it was executed on its trade
    date in UTC, else the trade date and the execution's own UTC date and time ("2026-11-25
    (executed 2026-11-26 00:30:00 UTC)": a New York evening trade, or one booked for the next
    session); the trade date alone without a time. `zone`: " UTC" after a time on the trade
    date (a column headed "(UTC)" leaves it out)."""
    if at is None:
        return day(trade_date)
    shown = timestamp(at)
    if shown[:10] == trade_date.isoformat():
        return shown if zone else shown[:19]
    return f"{day(trade_date)} (executed {shown})"


def short_hash(value: str | None, length: int = 16) -> str:
    return DASH if not value else value[:length]
