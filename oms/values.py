"""Value types and exact parsing: identifiers, enumerations, decimals built from strings, UTC times.

Pure: no I/O, no clock. Every number that is money, a price or a quantity is a Decimal built from
its text; every time is timezone-aware UTC.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    FloatOperation,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
)
from enum import StrEnum
from typing import NewType

from oms.errors import BadInput

AccountId = NewType("AccountId", str)
Symbol = NewType("Symbol", str)
Venue = NewType("Venue", str)
ExecId = NewType("ExecId", str)
Currency = NewType("Currency", str)

# Limits of every decimal tieout stores: 18 digits before the point, 12 after.
INT_DIGITS = 18
FRAC_DIGITS = 12
DECIMAL_PATTERN = rf"^-?[0-9]{{1,{INT_DIGITS}}}(\.[0-9]{{1,{FRAC_DIGITS}}})?$"
_DECIMAL_RE = re.compile(DECIMAL_PATTERN)
CURRENCY_PATTERN = r"^[A-Z]{3}$"
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$"
_IDENT_RE = re.compile(IDENT_PATTERN)
ZERO = Decimal(0)
QUANTUM = Decimal(1).scaleb(-FRAC_DIGITS)  # 1E-12: the finest step tieout rounds to


def decimal_context(
    prec: int, rounding: str = ROUND_HALF_EVEN, *, trap_rounding: bool = False
) -> Context:
    """A decimal context built field by field, so that neither the caller's context nor
    decimal.DefaultContext can change a result. Invalid operations, division by zero, overflow
    and mixing in floats always raise; with `trap_rounding`, so does any rounding at all (the
    result is exact or an error). Enter it with localcontext; never modify it."""
    traps: list[type[DecimalException]] = [
        InvalidOperation,
        DivisionByZero,
        Overflow,
        FloatOperation,
    ]
    if trap_rounding:
        traps += [Inexact, Rounded]
    return Context(
        prec=prec,
        rounding=rounding,
        Emin=-999_999,
        Emax=999_999,
        capitals=1,
        clamp=0,
        flags=[],
        traps=traps,
    )


# Sums, products and negations of stored decimals (at most 30 digits each, a product up to
# 60) in 100 digits, every rounding trapped: a result is exact or an error. Its methods
# (EXACT.add, .multiply, .minus) never use the caller's context, which Python's default makes
# 28 digits.
EXACT = decimal_context(100, trap_rounding=True)


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The sum of the values in EXACT (0 for none), whatever the caller's context."""
    add = EXACT.add
    total = Decimal(0)
    for value in values:
        total = add(total, value)
    return total


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrdType(StrEnum):
    """Order type (FIX OrdType, 40)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"

    @property
    def needs_limit(self) -> bool:
        return self in (OrdType.LIMIT, OrdType.STOP_LIMIT)

    @property
    def needs_stop(self) -> bool:
        return self in (OrdType.STOP, OrdType.STOP_LIMIT)


class TimeInForce(StrEnum):
    """Time in force (FIX TimeInForce, 59)."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"

    @property
    def rests(self) -> bool:
        """May be entered while the market is closed (it waits for the next session)."""
        return self in (TimeInForce.GTC, TimeInForce.GTD)


class AccountType(StrEnum):
    CASH = "cash"
    MARGIN = "margin"


class CostMethod(StrEnum):
    FIFO = "fifo"
    LIFO = "lifo"
    AVERAGE = "average"


def parse_decimal(
    text: str, field: str, *, positive: bool = False, non_negative: bool = False
) -> Decimal:
    """Parse a plain decimal string ("190.25", "-3", "0.0001") exactly, or raise BadInput."""
    raw = text.strip()
    if not _DECIMAL_RE.match(raw):
        raise BadInput(
            field,
            f"{text!r} is not a decimal number (digits with an optional point, at most "
            f"{INT_DIGITS} digits before and {FRAC_DIGITS} after it)",
        )
    value = Decimal(raw)
    if positive and value <= 0:
        raise BadInput(field, f"{text!r} must be greater than zero")
    if non_negative and value < 0:
        raise BadInput(field, f"{text!r} must not be negative")
    return value


def is_decimal_text(text: str) -> bool:
    return bool(_DECIMAL_RE.match(text.strip()))


def dec_str(value: Decimal) -> str:
    """The canonical text of a decimal: fixed point, never an exponent ("100", "0.0001")."""
    if not value.is_finite():
        raise InvalidOperation(f"not a finite decimal: {value}")
    if value.is_zero():
        value = abs(value)
    return format(value, "f")


# ISO 4217 minor units that differ from 2.
_MINOR_UNITS = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3,
    "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3,
    "UGX": 0, "UYI": 0, "UYW": 4, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


MINOR_UNIT_CURRENCIES = frozenset(_MINOR_UNITS)  # those whose minor unit is not 2


def minor_units(currency: str) -> int:
    """The currency's minor unit (ISO 4217): how many decimals its money has (2 unless the
    table says otherwise)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def normalize(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to an exponent (Decimal('1.500') -> 1.5), every
    other digit kept: in a context of its own, not the caller's (Python's default rounds to 28
    digits: 100000000000000000.000000000001 came out as 1E+17)."""
    if value == value.to_integral_value():
        return value.quantize(_ONE, context=_NORMALIZE)
    return value.normalize(context=_NORMALIZE)


_ONE = Decimal(1)
_NORMALIZE = decimal_context(100)


def unpadded(text: str, keep: int = 0) -> str:
    """A decimal's text without the zeros after its point beyond `keep` places ("10.0000000" ->
    "10"; with keep 2, "100.00000000" -> "100.00", "415.10" stays): the same value, as a venue
    that pads its figures wrote it. A quantity keeps none (a cash amount of quantity x price
    then carries the price's places, not both); a price keeps cents. Other text as it is."""
    point = text.find(".")
    if point < 0 or not text.endswith("0") or not _PADDED_RE.match(text):
        return text
    end = len(text.rstrip("0"))
    end = max(end, point + 1 + keep) if keep else end
    out = text[:end]
    return out[:-1] if out.endswith(".") and out != "." else out


_PADDED_RE = re.compile(r"^-?[0-9]+\.[0-9]+$")


def parse_ident(text: str, field: str) -> str:
    raw = text.strip()
    if not _IDENT_RE.match(raw):
        raise BadInput(
            field,
            f"{text!r} is not a valid identifier (1-64 letters, digits or ._:/- , "
            "starting with a letter or digit)",
        )
    return raw


def parse_currency(text: str, field: str = "currency") -> Currency:
    raw = text.strip().upper()
    if not re.match(CURRENCY_PATTERN, raw):
        raise BadInput(field, f"{text!r} is not an ISO 4217 currency code (three letters)")
    if raw not in currency_codes():
        raise BadInput(field, f"{text!r} is not an ISO 4217 currency code (no currency has it)")
    return Currency(raw)


@functools.cache
def currency_codes() -> frozenset[str]:
    """The currency codes tieout takes: ISO 4217's (the list pycountry keeps; read on first
    use, not at every command's start), and CNH, the offshore renminbi: not in ISO 4217, but
    the code every venue and bank quotes it by. A mistyped code ("USS") would otherwise open
    an account, list an instrument or set a limit in a currency that does not exist."""
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies) | {"CNH"}


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


# the dates a command takes: a day either side stays a date (a period's end is the start of the
# day after it), the exchange calendars (pandas timestamps: 1677-09-22 to 2262-04-11) can place
# them, and nothing of a trading book is dated outside them
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2261, 12, 31)


def parse_date(text: str, field: str, *, bounded: bool = True) -> date:
    """A date written YYYY-MM-DD (only: Python also reads 20261201 and 2026-W48-2), from
    FIRST_DATE to LAST_DATE; `bounded=False`: any date (a gtd order's expiry may be the last
    date there is, 9999-12-31, as some order files write "never")."""
    raw = text.strip()
    try:
        if not _DATE_RE.fullmatch(raw):
            raise ValueError
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadInput(field, f"{text!r} is not a date (YYYY-MM-DD)") from None
    if bounded and not FIRST_DATE <= value <= LAST_DATE:
        raise BadInput(
            field, f"{text!r} is out of range: dates run from {FIRST_DATE} to {LAST_DATE}"
        )
    return value


def parse_utc(text: str, field: str) -> datetime:
    """Parse an ISO 8601 time with a zone (Z or an offset) into UTC; refuse naive times."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(field, f"{text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise BadInput(field, f"{text!r} has no time zone; write Z or an offset (+00:00)")
    return value.astimezone(UTC)


def utc_iso(value: datetime) -> str:
    """ISO 8601 UTC with Z and microseconds, as the contract's JSON wants it."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    # isoformat, not strftime: strftime's %Y writes year 999 as "999", a text that neither
    # reads back nor sorts with the others (a bar of 0999 stored on SQLite broke its symbol)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def utc_iso_fast(value: datetime) -> str:
    """utc_iso's text, kept for the last times formatted in UTC already (the hot paths format
    a few times per order); the same text for any other time."""
    if value.tzinfo is not UTC:
        return utc_iso(value)
    text = _ISO_TEXT.get(value)
    if text is None:
        text = value.isoformat(timespec="microseconds")[:-6] + "Z"
        if len(_ISO_TEXT) >= 1024:
            _ISO_TEXT.clear()
        _ISO_TEXT[value] = text
    return text


# the last UTC times formatted: a group of orders formats its one `now` many times over. Only
# UTC times are kept: two local times that differ only in `fold` (the repeated hour when the
# clocks go back) compare and hash equal although they are different instants
_ISO_TEXT: dict[datetime, str] = {}


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of a date."""
    return datetime.combine(day, time(0), tzinfo=UTC)


# what a terminal or a document would act on rather than show: C0 controls but newline and tab,
# DEL, C1 controls (ESC, CSI, OSC, BEL: a venue's text or a file's value could move the cursor,
# retitle the window or hide a line), the Unicode line and paragraph separators, and the
# bidirectional controls (U+202E and its kin reorder the text around them as it is shown)
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)


def printable(text: str) -> str:
    """Text for a terminal or a report: each control character shown as its escape (ESC as
    \\x1b, U+202E as \\u202e), so that text from files and venues is read, never run. JSON
    output escapes the C0 ones itself."""
    return _CONTROL.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
