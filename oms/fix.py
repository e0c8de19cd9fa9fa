"""FIX 4.4 drop copies: ExecutionReport (35=8) and OrderCancelReject (35=9) lines turned into
order commands. Pure: text in, values out.

One message per line, fields separated by SOH or `|`; parsed with simplefix. BodyLength (9) and
CheckSum (10) are verified when present. A line that cannot be understood becomes a RowError
(line, field, reason), never an exception: the caller applies the others in order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

import simplefix

from oms import orders
from oms.errors import BadInput, RowError
from oms.orders import ClientOrderId, ExecType, Order
from oms.values import (
    ExecId,
    Side,
    dec_str,
    is_decimal_text,
    minor_units,
    normalize,
    parse_decimal,
    parse_ident,
    printable,
    unpadded,
)

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"  # BeginString (8): the version a message is read as
EXECUTION_REPORT, CANCEL_REJECT = "8", "9"
FIX_SIDES = {Side.BUY: "1", Side.SELL: "2"}  # Side (54)
# the Side (54) values a report of an order may carry: a sale may be reported as a short sale
# (5 sell short, 6 sell short exempt), as drop copies mark sales that open or add to a short
_SIDES_OF = {Side.BUY: frozenset({"1"}), Side.SELL: frozenset({"2", "5", "6"})}
# CommType (13): how Commission (12) counts; 3 (absolute) when 13 is missing
PER_UNIT, PERCENT, ABSOLUTE = "1", "2", "3"
# ASCII digits only: `\d` would take other scripts' digits (Arabic-Indic) for a date
_UTC_TIMESTAMP = re.compile(r"([0-9]{8})-([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?")
_LOCAL_DATE = re.compile(r"[0-9]{8}")


@dataclass(frozen=True, slots=True)
class Report:
    line: int
    msg_type: str
    fields: Mapping[int, str]

    def get(self, tag: int) -> str | None:
        return self.fields.get(tag)

    @property
    def exec_id(self) -> str | None:
        return self.get(17)


def _verify(raw: bytes) -> str | None:
    """Why BodyLength or CheckSum is wrong, or None. Either may be absent (then not checked)."""
    framed = SOH + raw  # every field, the first one too, starts after an SOH
    check_at = framed.find(SOH + b"10=")
    body_at = framed.find(SOH + b"9=")
    if body_at >= 0:
        start = framed.index(SOH, body_at + 1) + 1
        end = len(framed) if check_at < 0 else check_at + 1
        declared = framed[body_at + 3 : start - 1]
        if not declared.isdigit() or int(declared) != end - start:
            return f"BodyLength {declared.decode(errors='replace')} is wrong ({end - start})"
    if check_at >= 0:
        value_end = framed.find(SOH, check_at + 4)
        declared = framed[check_at + 4 : None if value_end < 0 else value_end]
        if value_end >= 0 and framed[value_end:].strip(SOH):
            return (
                "the line goes on after CheckSum (10), which ends a message: two messages "
                "run together? (one message a line)"
            )
        actual = sum(framed[1 : check_at + 1]) % 256
        if not (len(declared) == 3 and declared.isdigit()) or int(declared) != actual:
            shown = printable(declared.decode(errors="replace")[:20])
            return f"CheckSum {shown} is wrong ({actual:03d})"
    return None


def _pairs(raw: bytes) -> list[tuple[int, bytes]] | str:
    """The line's fields, split by simplefix; or why it cannot be split. The line is the
    message: its end ends it, so a message without BeginString (8), BodyLength (9) or CheckSum
    (10) is complete too (simplefix alone waits for a 10 that never comes)."""
    parser = simplefix.FixParser(
        allow_missing_begin_string=True,
        strip_fields_before_begin_string=False,
        stop_byte=b"\n",
    )
    parser.append_buffer(raw + b"\n")
    try:
        msg = parser.get_message()
    except simplefix.errors.TagNotNumberError:
        return "not a FIX message (a tag is not a number)"
    except simplefix.errors.EmptyValueError:
        return "not a FIX message (a field has an empty value)"
    except simplefix.errors.ParsingError:
        return "not a FIX message (a field is not tag=value)"
    if msg is None:
        return "not a FIX message (no tag=value fields)"
    return [(int(tag), value) for tag, value in msg.pairs]


# characters no FIX message line holds: C0 controls but SOH (the separator) and tab, DEL, C1
# controls and the Unicode line and paragraph separators. A message with one is refused whole:
# it may be two messages run together, or a value cut short (what `str.splitlines` used to do,
# booking the first half of the line and refusing the rest)
_CONTROL = re.compile(r"[\x00\x02-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")

# the tags tieout reads: each may appear once in a message (FIX 4.4 SessionRejectReason 13, "tag
# appears more than once"); other tags (repeating groups tieout does not read) may repeat
READ_TAGS = frozenset(
    {1, 6, 8, 11, 12, 13, 14, 15, 17, 19, 20, 31, 32, 35, 37, 38, 39, 41, 44, 54, 55, 58, 60, 64,
     75, 99, 102, 150, 151, 434, 479}
)  # fmt: skip


_ID_TAGS = {11: "ClOrdID", 41: "OrigClOrdID", 17: "ExecID", 19: "ExecRefID", 1: "Account"}


def _bad_id(fields: Mapping[int, str]) -> BadInput | None:
    """The first identifier of the message that tieout could not keep (as `exec import` and
    `order submit` refuse it: 1-64 letters, digits or ._:/-), or None."""
    for tag, name in _ID_TAGS.items():
        value = fields.get(tag)
        if value is not None:
            try:
                parse_ident(value[:80], f"{name} ({tag})")
            except BadInput as exc:
                return exc
    return None


def lines(text: str) -> list[tuple[int, str]]:
    """The file's physical lines, numbered from 1: split at LF only (a CR before it, a CRLF
    file's, is dropped), not at the other characters `str.splitlines` breaks at."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        out.append((n, line[:-1] if line.endswith("\r") else line))
    return out


def _not_fix44(n: int, fields: Mapping[int, str]) -> RowError | None:
    """Why a message is not one `exec apply` reads as FIX 4.4 means it, or None."""
    version = fields.get(8)
    if version is not None and version != BEGIN_STRING:
        return RowError(
            n,
            "8",
            printable(version[:20]),
            f"BeginString is not {BEGIN_STRING}: tieout applies FIX 4.4 messages, and other "
            "versions say some things otherwise (FIX 4.2 busts with ExecTransType 20, and "
            "fills with ExecType 1 and 2)",
        )
    trans_type = fields.get(20)
    if trans_type is not None and trans_type != "0":
        return RowError(
            n,
            "20",
            printable(trans_type[:20]),
            "ExecTransType other than 0 (new) is FIX 4.2's way to cancel or correct an "
            "execution; FIX 4.4 does it with ExecType H (bust) or G (correction) and ExecRefID "
            "(19)",
        )
    return None


def parse(text: str, *, fix44: bool = False) -> list[Report | RowError]:
    """The file's messages, each a Report or the RowError of its line. `fix44`: only FIX 4.4
    messages (`exec apply`, which applies them as FIX 4.4 means them); the reconciliation's
    loaders read older drop copies too, and skip what FIX 4.2 says otherwise."""
    out: list[Report | RowError] = []
    for n, line in lines(text):
        if not line.strip(" \t"):
            continue
        bad = _CONTROL.search(line)
        if bad:
            out.append(
                RowError(
                    n,
                    None,
                    None,
                    f"control character U+{ord(bad.group()):04X} at column {bad.start() + 1}: "
                    "one message a line, its values without control characters",
                )
            )
            continue
        raw = line.strip(" \t").encode()
        if SOH not in raw:  # `|` separates fields only in a file without SOH
            raw = raw.replace(b"|", SOH)
        if not raw.endswith(SOH):
            raw += SOH
        problem = _verify(raw)
        if problem:
            out.append(RowError(n, None, None, problem))
            continue
        pairs = _pairs(raw)
        if isinstance(pairs, str):
            out.append(RowError(n, None, None, pairs))
            continue
        fields = {tag: value.decode() for tag, value in pairs}
        if len(fields) < len(pairs):
            counts = Counter(t for t, _ in pairs if t in READ_TAGS)
            twice = sorted(t for t, k in counts.items() if k > 1)
            if twice:
                out.append(
                    RowError(
                        n,
                        str(twice[0]),
                        None,
                        "tag " + ", ".join(map(str, twice)) + " appears more than once "
                        "(FIX: a field outside a repeating group is sent once)",
                    )
                )
                continue
        if not fields.get(35):
            out.append(RowError(n, "35", None, "not a FIX message (no MsgType 35)"))
            continue
        other_version = _not_fix44(n, fields) if fix44 else None
        if other_version is not None:
            out.append(other_version)
            continue
        bad_id = _bad_id(fields)
        if bad_id is not None:
            out.append(RowError(n, bad_id.what.rsplit("(", 1)[-1].rstrip(")"), None, bad_id.why))
            continue
        msg_type = fields[35]
        if msg_type not in (EXECUTION_REPORT, CANCEL_REJECT):
            out.append(
                RowError(
                    n,
                    "35",
                    msg_type,
                    "only ExecutionReport (8) and OrderCancelReject (9) are applied",
                )
            )
            continue
        out.append(Report(n, msg_type, fields))
    return out


def _dec(report: Report, tag: int, name: str, *, required: bool = True) -> Decimal | None:
    value = report.get(tag)
    if value is None:
        if required:
            raise BadInput(f"{name} ({tag})", "is missing")
        return None
    # what is wrong, said as for any decimal tieout reads (the digits allowed; not > 0), once
    # the zeros a venue pads a value with are gone (oms.values.unpadded)
    return parse_decimal(unpadded(float_text(value), _PRICE_PLACES.get(tag, 0)),
                         f"{name} ({tag})", positive=True)  # fmt: skip


def float_text(text: str) -> str:
    """A FIX float as tieout's decimals are written: FIX lets the digits before the point be
    left out (.05, its own example of a 5% commission) and a point end the digits ("23." is
    23); a 0 is put before the point, a point with nothing after it is dropped. Anything else
    (a lone point, an exponent) is left for the reader to refuse."""
    value = text.strip()
    short = _FLOAT_SHORT.match(value)
    if short is None or not (short[2] or short[3]):
        return value
    sign, whole, places = short[1], short[2] or "0", short[3]
    return f"{sign}{whole}.{places}" if places else f"{sign}{whole}"


_FLOAT_SHORT = re.compile(r"^(-?)([0-9]*)\.([0-9]*)$")


# the places a price keeps when a venue pads it (cents: 100.00000000 is booked 100.00)
_PRICE_PLACES = {31: 2, 44: 2}


def _amount(report: Report, tag: int, name: str) -> Decimal:
    value = _dec(report, tag, name)
    if value is None:  # _dec raises for a missing required field
        raise BadInput(f"{name} ({tag})", "is missing")
    return value


def _need(report: Report, tag: int, name: str) -> str:
    value = report.get(tag)
    if not value:
        raise BadInput(f"{name} ({tag})", "is missing")
    return value


# the most of a venue's Text (58) an order's history keeps: the order's state holds its whole
# history and is read and written again at each change (the drop copy keeps the whole text)
MAX_TEXT = 1_000


def venue_text(report: Report) -> str | None:
    """The report's Text (58), cut to MAX_TEXT characters with a note of how long it was."""
    text = report.get(58)
    if text is None or len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]}... (Text (58) cut: {len(text):,} characters)"


def venue_number(text: str | None) -> Decimal | None:
    """A figure a report states only to be compared with the book (CumQty, LeavesQty, AvgPx):
    any plain decimal, however many places (an average may have 20), or None when it is absent
    or no number."""
    if text is None:
        return None
    raw = float_text(text)
    return Decimal(raw) if _VENUE_NUMBER.match(raw) else None


_VENUE_NUMBER = re.compile(r"^-?[0-9]{1,30}(\.[0-9]{1,40})?$")


def is_status_report(report: Report) -> bool:
    """Whether the report is an order status report (35=8, 150=I): the venue's answer to a
    status request, which states the order as the venue has it and changes nothing."""
    return report.msg_type == EXECUTION_REPORT and (report.get(150) or "").strip() == "I"


def command(report: Report) -> orders.Command:
    """The order command a report asks for; BadInput when it lacks what that needs."""
    reason = venue_text(report)
    if report.msg_type == CANCEL_REJECT:
        # CxlRejResponseTo (434) is required: which request the venue refuses
        to = _need(report, 434, "CxlRejResponseTo")
        if to == "2":
            return orders.RejectReplace(reason=reason)
        if to == "1":
            return orders.RejectCancel(reason=reason)
        raise BadInput("CxlRejResponseTo (434)", f"{to!r} must be 1 (cancel) or 2 (cancel/replace)")
    exec_type = ExecType.from_fix(_need(report, 150, "ExecType"))
    if not report.get(17):
        # FIX 4.4 requires it on every ExecutionReport: it is what tells a report applied
        # already (a file applied again) from a new one, which would otherwise apply again
        raise BadInput(
            "ExecID (17)",
            "is missing (FIX 4.4 requires it on every ExecutionReport: without it a report "
            "applied already cannot be told from a new one)",
        )
    new_id = report.get(11)
    if exec_type is ExecType.NEW:
        return orders.AcknowledgeOrder(reason=reason)
    if exec_type is ExecType.REJECTED:
        return orders.RejectOrder(reason=reason or "rejected by the venue")
    if exec_type is ExecType.CANCELED:
        return orders.AcceptCancel(
            client_order_id=ClientOrderId(new_id) if new_id else None, reason=reason
        )
    named = ClientOrderId(new_id) if new_id else None
    if exec_type is ExecType.PENDING_CANCEL:
        return orders.ConfirmPendingCancel(reason=reason, client_order_id=named)
    if exec_type is ExecType.PENDING_REPLACE:
        return orders.ConfirmPendingReplace(reason=reason, client_order_id=named)
    if exec_type is ExecType.REPLACED:
        return orders.AcceptReplace(
            quantity=_dec(report, 38, "OrderQty", required=False),
            limit_price=_dec(report, 44, "Price", required=False),
            client_order_id=ClientOrderId(new_id) if new_id else None,
            reason=reason,
        )
    if exec_type is ExecType.EXPIRED:
        return orders.Expire(reason=reason)
    if exec_type is ExecType.DONE_FOR_DAY:
        return orders.MarkDoneForDay(reason=reason)
    if exec_type is ExecType.SUSPENDED:
        return orders.Suspend(reason=reason)
    if exec_type is ExecType.ORDER_STATUS:
        raise BadInput(
            "ExecType (150)",
            "I is an order status report, which asks nothing of the order (is_status_report)",
        )
    if exec_type is ExecType.TRIGGERED:
        return orders.TriggerOrder(reason=reason)
    if exec_type is ExecType.RESTATED:
        return orders.Restate(
            quantity=_dec(report, 38, "OrderQty", required=False),
            limit_price=_dec(report, 44, "Price", required=False),
            reason=reason,
        )
    exec_id = ExecId(report.get(17) or "")  # (present: checked above)
    if exec_type is ExecType.TRADE:
        return orders.ApplyFill(
            exec_id, _amount(report, 32, "LastQty"), _amount(report, 31, "LastPx"), reason=reason
        )
    ref = ExecId(_need(report, 19, "ExecRefID"))
    if exec_type is ExecType.TRADE_CORRECT:
        return orders.CorrectFill(
            exec_id,
            ref,
            _amount(report, 32, "LastQty"),
            _amount(report, 31, "LastPx"),
            reason=reason,
        )
    return orders.BustFill(exec_id, ref, reason=reason)


# ---- what a fill books besides its quantity and price ------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeTimes:
    """TransactTime (60), TradeDate (75) and SettlDate (64) as the report states them (None
    when absent: the caller's defaults apply)."""

    exec_time: datetime | None
    trade_date: date | None
    settle_date: date | None


def _ymd(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _timestamp(report: Report, tag: int, name: str) -> datetime | None:
    """A UTCTimestamp: YYYYMMDD-HH:MM:SS with optional fractions (digits past microseconds are
    dropped). Second 60, a leap second FIX allows, is read as the last microsecond of the
    minute before it (Python's times have no 61st second; the order of events is kept)."""
    value = report.get(tag)
    if value is None:
        return None
    m = _UTC_TIMESTAMP.fullmatch(value)
    try:
        if m is None:
            raise ValueError
        day, frac = _ymd(m[1]), (m[5] or "").ljust(6, "0")[:6]
        hour, minute, second = int(m[2]), int(m[3]), int(m[4])
        if second == 60 and hour == 23 and minute == 59:  # leap seconds end a UTC day
            second, frac = 59, "999999"
        return datetime(day.year, day.month, day.day, hour, minute, second, int(frac), tzinfo=UTC)
    except ValueError:
        raise BadInput(
            f"{name} ({tag})", f"{value!r} is not a UTC timestamp (YYYYMMDD-HH:MM:SS[.sss])"
        ) from None


def _local_date(report: Report, tag: int, name: str) -> date | None:
    value = report.get(tag)
    if value is None:
        return None
    try:
        if not _LOCAL_DATE.fullmatch(value):
            raise ValueError
        return _ymd(value)
    except ValueError:
        raise BadInput(f"{name} ({tag})", f"{value!r} is not a date (YYYYMMDD)") from None


def trade_times(report: Report, *, of_a_fill: bool = True) -> TradeTimes:
    """The report's TransactTime, TradeDate and SettlDate; BadInput when one is malformed or (a
    fill's: `of_a_fill`) the settlement date comes before the trade date, its TradeDate or else
    its TransactTime's date. A correction's or bust's TransactTime is when the venue changed the
    execution, not when it traded: its SettlDate is checked against the execution's trade date
    by the caller."""
    times = TradeTimes(
        _timestamp(report, 60, "TransactTime"),
        _local_date(report, 75, "TradeDate"),
        _local_date(report, 64, "SettlDate"),
    )
    trade = times.trade_date or (times.exec_time.date() if times.exec_time else None)
    if of_a_fill and times.settle_date and trade and times.settle_date < trade:
        raise BadInput(
            "SettlDate (64)",
            f"{times.settle_date.isoformat()} is before the trade date {trade.isoformat()}",
        )
    return times


def commission(report: Report, quantity: Decimal, price: Decimal, *, currency: str) -> Decimal:
    """Commission (12) of a fill of `quantity` at `price`, counted as CommType (13) says: 1 per
    unit, 2 percent of the fill's value (a fraction, as FIX writes it: .05 is 5%), 3 (the
    default) absolute, in CommCurrency (479) if given: the instrument's. An amount counted from a
    rate is money charged: rounded half up to the `currency`'s minor unit (cents, whole yen), as
    the paper venue rounds its own; an absolute one is booked as the venue gave it. BadInput
    for a negative or non-numeric amount or another CommType."""
    given, kind = report.get(12), report.get(13)
    if given is None:
        return Decimal(0)
    charged_in = report.get(479)
    if charged_in is not None and charged_in != currency:
        raise BadInput(
            "CommCurrency (479)",
            f"{printable(charged_in[:20])}: the commission is booked in {currency}, the "
            "instrument's currency, and nothing is converted",
        )
    amount = unpadded(float_text(given), 2)  # money keeps its cents (1.2500 -> 1.25)
    if not is_decimal_text(amount) or Decimal(amount) < 0:
        raise BadInput("Commission (12)", f"{given!r} is not a decimal >= 0")
    with localcontext(prec=100):
        if kind is None or kind == ABSOLUTE:
            return Decimal(amount)
        unit = Decimal(1).scaleb(-minor_units(currency))
        if kind == PER_UNIT:
            return normalize((Decimal(amount) * quantity).quantize(unit, ROUND_HALF_UP))
        if kind == PERCENT:  # FIX: "Commission of 5% should be represented as .05"
            if Decimal(amount) >= 1:
                raise BadInput(
                    "Commission (12)",
                    f"{given!r} with CommType 2 is {dec_str(Decimal(amount).scaleb(2))}% of the "
                    "fill's value: FIX writes a percentage as a fraction (5% is .05)",
                )
            charge = Decimal(amount) * quantity * price
            return normalize(charge.quantize(unit, ROUND_HALF_UP))
    raise BadInput("CommType (13)", f"{kind!r} is not applied (1 per unit, 2 percent, 3 absolute)")


def check_order(report: Report, order: Order) -> None:
    """Symbol (55) and Side (54), when the report has them, are the order's (a sale's may say
    sell short, 5 or 6); BadInput if not."""
    symbol = report.get(55)
    if symbol is not None and symbol != order.symbol:
        raise BadInput(
            "Symbol (55)", f"{symbol} does not match order {order.order_id} ({order.symbol})"
        )
    side = report.get(54)
    if side is not None and side not in _SIDES_OF[order.side]:
        raise BadInput(
            "Side (54)",
            f"{side} does not match order {order.order_id} "
            f"({order.side.value}, {FIX_SIDES[order.side]})",
        )
