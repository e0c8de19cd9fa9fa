"""Readers of the record formats: FIX drop copy, IB Flex Query XML, MT940, camt.053.

Each reads the file into Records (recon.loaders): per record its raw fields (as written), the
fields a profile's [columns] may name, the format's default canonical text and any problem the
reader found; plus the records left out on purpose, counted by why. recon.loaders turns them into
the canonical text frame; recon.validate parses and checks it. Per-record Python is fine here:
these files are small.

FIX drop copy (trades; [csv] encoding, default UTF-8): one message per line, SOH or `|`
separated, read by oms.fix (simplefix; BodyLength and CheckSum verified when present). Records
are ExecutionReports (35=8) that are fills: ExecType (150) F, or 1/2 (partial fill/fill) in
older drop copies, unless ExecTransType (20) is 1/2 (a FIX 4.2 cancel/correct). Every other
message is skipped and counted ("MsgType D", "ExecType 0", ...). A line oms.fix cannot read
(bad checksum or body length, no MsgType) is a record with that problem, quarantined.
Defaults: exec_id 17, account 1, symbol 55, side 54 (1 buy; 2, 5, 6 sell), quantity 32, price
31, currency 15, trade_date 75 (else the day of TransactTime 60 at the place of trade, as the
  book dates it, given the book's exchanges; else 60's UTC date), settle_date 64, exec_time 60
(%Y%m%d-%H:%M:%S with optional fraction; UTC unless [parse] timezone says otherwise),
commission 12 (per CommType 13: 3 or absent absolute, 1 per unit x LastQty, 2 percent of
LastQty x LastPx; rounded half-even to 12 decimals), client_order_id 11. [columns] names tags
by number ("527"). raw: {"tag": value}.

IB Flex Query XML (any kind): the XML is read with lxml (no entities, no network) and each
element's attributes are converted by ibflex (parser.parse_element_attr) one by one, so an
attribute ibflex refuses (a price "abc") keeps its text and validation quarantines that record
only, naming the field; ibflex's all-or-nothing document parser would refuse the whole file.
raw: the element's attributes; [columns] names ibflex attributes ("tradeID"). Dates come out
ISO; IB's date-times carry no zone and are read in the profile's [parse] timezone (default UTC:
set it to the Flex query's).
- trades: <Trade> (levelOfDetail EXECUTION or none; other levels, <Lot>, <Order>,
  <SymbolSummary> are skipped and counted). exec_id ibExecID (else tradeID), account
  accountId, symbol, side buySell (BUY/SELL), quantity |quantity|, price tradePrice,
  currency, trade_date tradeDate, settle_date settleDateTarget, exec_time dateTime,
  commission -ibCommission (IB reports costs negative), fees -taxes, client_order_id
  orderReference.
- positions: <OpenPosition> (SUMMARY or no levelOfDetail; LOT lines skipped): account,
  symbol, quantity position (signed), price markPrice.
- cash: <CashReportCurrency> gives an opening_balance (startingCash at fromDate) and a
  closing_balance (endingCash at toDate) line per currency (BASE_SUMMARY skipped);
  <CashTransaction> (DETAIL or no levelOfDetail) a movement: amount (signed), date of
  dateTime (else reportDate), ref transactionID.

MT940 (cash; [csv] encoding, default UTF-8): read with the mt940 library, statement by
statement (:20:), with all its opt-in fixes (mt940.Options.all(): RC reversals negative,
lowercase marks, BOM). Records per statement: the opening balance (:60F:/:60M:), every :61:
movement (amount signed by its mark, date the value date, ref the customer reference unless
NONREF, else the bank reference), the closing balance (:62F:/:62M:). account is :25:, mapped
through [values.account]. Balance lines are checked strictly first (the library would read
"12x34,56" as 12); a line the library cannot read refuses the file (exit 3) naming it.

camt.053 (cash): the XML is read with lxml (no entities, no network), element names matched
whatever their namespace prefix. One record per booked entry (Ntry), as the bank booked it: the
entry's own Amt, CdtDbtInd and dates, whatever its transaction details hold (a batch entry with
several details is one movement; an instructed amount or a charges record in a detail is not
the entry's amount). pycamt, used before, took the first Amt and CdtDbtInd anywhere under the
entry, listed a batch once per detail with the whole amount, and found no entry under a
prefixed namespace: reading an entry's own children is a few lines, and exact. Entries whose
status is not BOOK (PDNG, INFO) are skipped and counted. Balances: OPBD -> opening_balance,
CLBD -> closing_balance, other types skipped and counted. account is the statement's IBAN, else
its Othr/Id; amount is signed by CdtDbtInd; date the value date, else the booking date; ref the
AcctSvcrRef, else the EndToEndId of an entry with one transaction detail.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, localcontext
from enum import Enum
from typing import Any, Final
from zoneinfo import ZoneInfo

from oms import fix
from oms.calendars import trade_date
from oms.errors import BadInput, RowError
from oms.values import QUANTUM, dec_str, decimal_context, is_decimal_text
from recon.loaders import Record, Records, decode_text
from recon.profiles import Profile

logging.getLogger("mt940").addHandler(logging.NullHandler())  # its parse errors are ours to say

Fields = dict[str, str | None]


def read(
    profile: Profile, data: bytes, source: str, exchanges: Mapping[str, str] | None = None
) -> Records:
    """`exchanges`: the book's instruments' exchanges by symbol, which date a FIX fill without
    TradeDate (75) on its exchange (fix_trade_date)."""
    if profile.format == "fix":
        return read_fix(profile, data, source, exchanges)
    readers: dict[str, Callable[[Profile, bytes, str], Records]] = {
        "ibflex": read_ibflex,
        "mt940": read_mt940,
        "camt053": read_camt053,
    }
    return readers[profile.format](profile, data, source)


def _text(value: object) -> str | None:
    """A library value as canonical text: plain decimals, ISO dates, enum values."""
    if value is None:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return dec_str(value) if value.is_finite() else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return ";".join(t for t in (_text(v) for v in value) if t is not None)
    return str(value)


def _neg(value: Decimal | None) -> str | None:
    return None if value is None else dec_str(value.copy_negate())  # exact, whatever the context


# ---- FIX --------------------------------------------------------------------------------------

FIX_TAGS: Final = {
    "exec_id": "17",
    "account": "1",
    "symbol": "55",
    "side": "54",
    "quantity": "32",
    "price": "31",
    "currency": "15",
    "trade_date": "75",
    "settle_date": "64",
    "exec_time": "60",
    "commission": "12",
    "client_order_id": "11",
}
FIX_FILLS: Final = ("F", "1", "2")
FIX_CHANGES: Final = ("G", "H")  # a correction, a bust (ExecRefID 19 names the fill)
FIX_SIDES: Final = {"1": "buy", "2": "sell", "5": "sell", "6": "sell"}
FIX_DATES: Final = {
    "trade_date": "%Y%m%d",
    "settle_date": "%Y%m%d",
    "exec_time": "%Y%m%d-%H:%M:%S%.f",
}


def _fix_fields(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in line.strip().replace("|", "\x01").split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and tag.strip():
            out[tag.strip()] = value
    return out


def _fix_commission(f: Mapping[str, str]) -> str | None:
    amount, comm_type = f.get("12"), f.get("13")
    if amount is not None:
        amount = fix.float_text(amount)  # FIX's .05 is 0.05
    if amount is None or comm_type in (None, "3"):
        return amount
    qty, px = (None if v is None else fix.float_text(v) for v in (f.get("32"), f.get("31")))
    texts = [t for t in (amount, qty) + ((px,) if comm_type == "2" else ()) if t is not None]
    if comm_type not in ("1", "2") or len(texts) != (3 if comm_type == "2" else 2) or not all(
        is_decimal_text(t) for t in texts
    ):
        return amount  # left as written: validation says what is wrong with it
    with localcontext(decimal_context(60)):
        value = Decimal(amount) * Decimal(texts[1])
        if comm_type == "2":  # FIX writes a percentage as a fraction: 5% is .05
            value = value * Decimal(texts[2])
        return dec_str(value.quantize(QUANTUM))


def fix_trade_date(transact_time: str, exchange: str | None, timezone: str = "UTC") -> str:
    """The trade date (YYYYMMDD) of a fill whose report has no TradeDate (75): FIX says its
    absence means the day at the place of trade, which is how the book dates it
    (calendars.trade_date: the session's date, else the exchange's local date). TransactTime
    (60) is read in `timezone` (the profile's [parse] timezone, as the loader reads it; FIX's
    own is UTC). The date 60 is written with when the exchange is unknown or the time cannot
    be read."""
    if exchange is not None:
        zone = ZoneInfo(timezone)
        try:
            at = datetime.strptime(transact_time[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=zone)
        except ValueError:
            pass
        else:
            return trade_date(exchange, at.astimezone(UTC)).strftime("%Y%m%d")
    return transact_time[:8]


def _fix_derived(
    f: Mapping[str, str],
    profile: Profile | None = None,
    exchanges: Mapping[str, str] | None = None,
) -> Fields:
    out: Fields = {name: f.get(tag) for name, tag in FIX_TAGS.items()}
    for name in ("quantity", "price"):  # FIX floats: .5 and 5. (as exec apply reads them)
        value = out[name]
        if value is not None:
            out[name] = fix.float_text(value)
    if out["trade_date"] is None and f.get("60"):
        exchange, timezone = None, "UTC"
        if profile is not None:
            timezone = profile.parse.timezone
            # the book's symbol, as the profile maps it ([columns] symbol, [values.symbol])
            raw = f.get(profile.columns.get("symbol", FIX_TAGS["symbol"])) or ""
            symbol = profile.values.get("symbol", {}).get(raw, raw)
            exchange = None if exchanges is None else exchanges.get(symbol)
        out["trade_date"] = fix_trade_date(f["60"], exchange, timezone)
    out["commission"] = _fix_commission(f)
    return out


def read_fix(
    profile: Profile, data: bytes, source: str, exchanges: Mapping[str, str] | None = None
) -> Records:
    text = decode_text(data, profile.csv.encoding, source)
    lines = text.splitlines()
    records: list[Record | None] = []  # None: a fill a later bust or correction replaced
    skipped: Counter[str] = Counter()
    standing: dict[str, int] = {}  # an ExecID of the file -> the record that stands for it
    root: dict[str, str] = {}  # an ExecID of the file -> the first fill's (the trade's name)
    for item in fix.parse(text):
        if isinstance(item, RowError):
            if item.field == "35" and item.value is not None:
                skipped[f"MsgType {item.value}"] += 1
                continue
            line = item.line or 0
            f = _fix_fields(lines[line - 1]) if 0 < line <= len(lines) else {}
            derived = _fix_derived(f, profile, exchanges)
            records.append(Record(line, f, dict(f), derived, item.reason))
            continue
        f = {str(tag): value for tag, value in item.fields.items()}
        if item.msg_type != fix.EXECUTION_REPORT:
            skipped[f"MsgType {item.msg_type}"] += 1
            continue
        exec_type = f.get("150")
        if exec_type in FIX_CHANGES and f.get("20") not in ("1", "2"):
            # a bust (H) takes its fill out of the venue's side; a correction (G) replaces it
            # with its terms, under the trade's name (the first fill's ExecID, as the book
            # names a corrected execution); one of a fill not in this file stands alone
            ref = f.get("19")
            if not ref:
                problem = "a correction or bust without ExecRefID (19): which fill it changes"
                derived = _fix_derived(f, profile, exchanges)
                records.append(Record(item.line, f, dict(f), derived, problem + " is unknown"))
                continue
            replaced = standing.pop(ref, None)
            if replaced is not None:
                records[replaced] = None
                skipped[f"fill replaced by a later ExecType {exec_type} in the file"] += 1
            if exec_type == "H":
                skipped["ExecType H (bust)"] += 1
                continue
            name = root.get(ref, ref)
            g = {**f, "17": name}
            records.append(Record(item.line, f, g, _fix_derived(g, profile, exchanges)))
            standing[f.get("17") or name] = len(records) - 1
            root[f.get("17") or name] = name
            continue
        if exec_type not in FIX_FILLS:
            skipped[f"ExecType {exec_type or 'missing'}"] += 1
            continue
        if f.get("20") in ("1", "2"):
            skipped[f"ExecTransType {f['20']}"] += 1
            continue
        records.append(Record(item.line, f, dict(f), _fix_derived(f, profile, exchanges)))
        if f.get("17"):
            standing[f["17"]] = len(records) - 1
            root[f["17"]] = f["17"]
    kept = [r for r in records if r is not None]
    if kept and not skipped and all(r.problem and "35" not in r.raw for r in kept):
        raise BadInput(
            source,
            "not a FIX drop copy: no line is a FIX message (tag=value fields separated by SOH "
            "or |, with MsgType 35)",
        )
    return Records(kept, dict(skipped), {"side": FIX_SIDES}, FIX_DATES, True)


# ---- IB Flex ----------------------------------------------------------------------------------

IB_SIDES: Final = {"BUY": "buy", "SELL": "sell"}


def _xml_root(data: bytes, source: str, what: str) -> Any:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise BadInput(source, f"not a readable {what} XML file: {exc}") from None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ib_values(elem: Any) -> dict[str, Any]:
    """The element's attributes converted by ibflex one by one (its own element parser does
    the same, all or nothing): an attribute ibflex cannot convert keeps its text, so that
    validation names it with its value; one ibflex does not know is left out."""
    from ibflex import Types
    from ibflex import parser as ibparser

    cls = getattr(Types, _local(elem.tag), None)
    out: dict[str, Any] = {}
    for key, value in elem.attrib.items():
        if cls is None:
            out[str(key)] = str(value)
            continue
        try:
            name, converted = ibparser.parse_element_attr(cls, str(key), str(value))
        except KeyError:
            continue
        except Exception:  # ibflex raises several kinds
            out[str(key)] = str(value)
            continue
        if isinstance(converted, Decimal) and "," in str(value):
            # ibflex drops commas as thousands separators: "190,25" (a decimal comma) became
            # 19025. IB writes plain decimals: a comma is the text validation must see
            out[name] = str(value)
            continue
        out[name] = converted
    return out


def _ib_fields(values: Mapping[str, Any]) -> Fields:
    return {k: _text(v) for k, v in values.items() if v not in (None, ())}


# A value ibflex could not read as a number (_ib_values kept its text) is passed on as the file
# has it, for validation to refuse by that text: its sign is not turned ("abc" is not "-abc")


def _abs(value: object) -> str | None:
    if isinstance(value, Decimal):
        return dec_str(value.copy_abs())  # exact, whatever the context
    return _text(value)


def _negate(value: object) -> str | None:
    if isinstance(value, Decimal):
        return _neg(value)
    return _text(value)


def _day(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    return _text(value)


def _ib_cancel(attrs: Mapping[str, str]) -> bool:
    """An IB cancellation row: buySell "BUY (Ca.)" / "SELL (Ca.)", or the note code Ca."""
    notes = [n.strip() for n in attrs.get("notes", "").split(";")]
    return attrs.get("buySell", "").endswith("(Ca.)") or "Ca" in notes


def read_ibflex(profile: Profile, data: bytes, source: str) -> Records:
    root = _xml_root(data, source, "IB Flex Query")
    if _local(root.tag) != "FlexQueryResponse":
        raise BadInput(
            source, f"not an IB Flex Query response (the root element is {_local(root.tag)!r}, "
                    "not FlexQueryResponse)"
        )
    if not any(_local(e.tag) == "FlexStatement" for e in root.iter()):
        raise BadInput(source, "the Flex Query response has no FlexStatement")
    records: list[Record | None] = []  # None: a trade IB cancelled later in the file
    skipped: Counter[str] = Counter()
    days: dict[int, str | None] = {}  # cash: each record's date (statements_of_day)
    periods = False  # cash: a CashReportCurrency of several days

    def add(
        derived: Fields,
        values: Mapping[str, Any],
        attrs: Mapping[str, str],
        problem: str | None = None,
    ) -> None:
        records.append(
            Record(len(records) + 1, dict(attrs), _ib_fields(values), derived, problem)
        )

    def cancelled(attrs: Mapping[str, str]) -> int | None:
        """The trade a cancellation row (buySell "BUY (Ca.)", notes "Ca") undoes: the one its
        origTradeID names, else the last live one of the same account, symbol, trade date,
        side, quantity and price."""
        side = attrs.get("buySell", "").split("(")[0].strip()
        orig = attrs.get("origTradeID")
        for i in range(len(records) - 1, -1, -1):
            r = records[i]
            if r is None or _ib_cancel(r.raw):
                continue
            if orig:
                if r.raw.get("tradeID") == orig:
                    return i
                continue
            same = ("accountId", "symbol", "tradeDate", "tradePrice")
            if (
                all(r.raw.get(k) == attrs.get(k) for k in same)
                and r.raw.get("buySell") == side
                and r.raw.get("quantity", "").lstrip("-") == attrs.get("quantity", "").lstrip("-")
            ):
                return i
        return None

    for elem in root.iter():
        tag = _local(elem.tag)
        if not tag:
            continue  # a comment or processing instruction
        attrs = {str(k): str(v) for k, v in elem.attrib.items()}
        level = attrs.get("levelOfDetail")
        if profile.kind == "trades":
            if tag in ("Lot", "Order", "SymbolSummary", "AssetSummary"):
                skipped[f"{tag} element"] += 1
                continue
            if tag != "Trade":
                continue
            if level not in (None, "", "EXECUTION"):
                skipped[f"Trade levelOfDetail {level}"] += 1
                continue
            v = _ib_values(elem)
            if _ib_cancel(attrs):
                undone = cancelled(attrs)
                if undone is not None:  # a trade and its cancellation: no trade at the venue
                    records[undone] = None
                    skipped["trade IB cancelled (Ca.)"] += 1
                    skipped["IB cancellation (Ca.)"] += 1
                    continue
                add(
                    {"exec_id": _text(v.get("ibExecID") or v.get("tradeID"))},
                    v,
                    attrs,
                    "an IB cancellation (Ca.) of a trade not in this file (origTradeID "
                    f"{attrs.get('origTradeID') or 'not given'}): see that the book's trade is "
                    "busted",
                )
                continue
            exec_id = v.get("ibExecID") or v.get("tradeID")
            add(
                {
                    "exec_id": _text(exec_id),
                    "account": _text(v.get("accountId")),
                    "symbol": _text(v.get("symbol")),
                    "side": _text(v.get("buySell")),
                    "quantity": _abs(v.get("quantity")),
                    "price": _text(v.get("tradePrice")),
                    "currency": _text(v.get("currency")),
                    "trade_date": _day(v.get("tradeDate")),
                    "settle_date": _day(v.get("settleDateTarget")),
                    "exec_time": _text(v.get("dateTime")),
                    "commission": _negate(v.get("ibCommission")),
                    "fees": _negate(v.get("taxes")),
                    "client_order_id": _text(v.get("orderReference")),
                },
                v,
                attrs,
            )
        elif profile.kind == "positions":
            if tag != "OpenPosition":
                continue
            if level not in (None, "", "SUMMARY"):
                skipped[f"OpenPosition levelOfDetail {level}"] += 1
                continue
            v = _ib_values(elem)
            add(
                {
                    "account": _text(v.get("accountId")),
                    "symbol": _text(v.get("symbol")),
                    "quantity": _text(v.get("position")),
                    "price": _text(v.get("markPrice")),
                },
                v,
                attrs,
            )
        elif tag == "CashReportCurrency":
            if attrs.get("currency") == "BASE_SUMMARY":
                skipped["CashReportCurrency BASE_SUMMARY"] += 1
                continue
            v = _ib_values(elem)
            periods = periods or _day(v.get("fromDate")) != _day(v.get("toDate"))
            for line_type, amount, day in (
                ("opening_balance", "startingCash", "fromDate"),
                ("closing_balance", "endingCash", "toDate"),
            ):
                days[len(records) + 1] = _day(v.get(day))
                add(
                    {
                        "account": _text(v.get("accountId")),
                        "currency": _text(v.get("currency")),
                        "date": _day(v.get(day)),
                        "amount": _text(v.get(amount)),
                        "line_type": line_type,
                        "ref": None,
                    },
                    v,
                    attrs,
                )
        elif tag == "CashTransaction":
            if level not in (None, "", "DETAIL"):
                skipped[f"CashTransaction levelOfDetail {level}"] += 1
                continue
            v = _ib_values(elem)
            when = v.get("dateTime") or v.get("reportDate")
            days[len(records) + 1] = _day(when)
            add(
                {
                    "account": _text(v.get("accountId")),
                    "currency": _text(v.get("currency")),
                    "date": _day(when),
                    "amount": _text(v.get("amount")),
                    "line_type": "movement",
                    "ref": _text(v.get("transactionID")),
                },
                v,
                attrs,
            )
    kept = [r for r in records if r is not None]
    # a period's cash: its records of each date (a daily statement is read whole)
    return Records(kept, dict(skipped), {"side": IB_SIDES}, {}, True, days if periods else {})


# ---- MT940 ------------------------------------------------------------------------------------

_BALANCE_LINE = re.compile(r"^:(60F|60M|62F|62M|64|65|60|62):(.*)$")
_BALANCE_VALUE = re.compile(r"^[CD][0-9]{6}[A-Z]{3}[0-9]{1,15},[0-9]*$")
OPENING: Final = ("final_opening_balance", "intermediate_opening_balance", "opening_balance")
CLOSING: Final = ("final_closing_balance", "intermediate_closing_balance", "closing_balance")


# a movement's date, optional entry date, mark and amount: MT940 always writes the decimal comma
# ("25," at least), so an amount without one is a line cut short
_MOVEMENT_LINE = re.compile(r"^:61:(.*)$")
_MOVEMENT_VALUE = re.compile(r"^[0-9]{6}([0-9]{4})?R?[CD][A-Z]?[0-9]{1,15},[0-9]*")
INTERMEDIATE: Final = ("intermediate_opening_balance", "intermediate_closing_balance")


def _check_mt940_balances(text: str, source: str) -> None:
    """Balance and movement lines checked strictly (the library reads "12x34,56" as 12 and a
    movement cut inside its amount, C25 for C250,00, as 25), and every statement closed by
    a closing balance (:62F: or :62M:): a file cut before it is not a statement."""
    opened = closed = 0
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        m = _BALANCE_LINE.match(stripped)
        if m and not _BALANCE_VALUE.match(m.group(2).strip()):
            raise BadInput(
                source,
                f"line {n}: the MT940 balance :{m.group(1)}: {m.group(2).strip()[:60]!r} is not "
                "a balance (mark C/D, YYMMDD, currency, amount with a decimal comma)",
            )
        if m and (bad := _mt940_bad_date(m.group(2).strip()[1:7])):
            raise BadInput(source, f"line {n}: the MT940 balance :{m.group(1)}: has {bad}")
        mv = _MOVEMENT_LINE.match(stripped)
        if mv and not _MOVEMENT_VALUE.match(mv.group(1).strip()):
            raise BadInput(
                source,
                f"line {n}: the MT940 movement :61:{mv.group(1).strip()[:60]!r} is not a "
                "movement (YYMMDD, mark C/D/RC/RD, amount with a decimal comma): cut short?",
            )
        if mv and (bad := _mt940_bad_date(mv.group(1).strip()[:6], mv.group(1).strip()[6:10])):
            raise BadInput(source, f"line {n}: the MT940 movement :61: has {bad}")
        if stripped.startswith(":20:"):
            opened += 1
        elif m and m.group(1) in ("62F", "62M", "62"):
            closed += 1
    if opened > closed:
        raise BadInput(
            source,
            f"{opened - closed} of its {opened} MT940 statement(s) end without a closing balance "
            "(:62F: or :62M:): the file looks cut short",
        )


def _mt940_bad_date(yymmdd: str, mmdd: str = "") -> str | None:
    """What is wrong with a line's value date (YYMMDD) and a movement's entry date (MMDD, when
    it has one and it is digits), or None (the library raised "month must be in 1..12",
    naming no line)."""
    year = 2000 + int(yymmdd[:2])  # (the lines' patterns hold digits there)
    try:
        date(year, int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return f"a value date {yymmdd!r} that is no date (YYMMDD)"
    if mmdd.isdigit() and len(mmdd) == 4:
        try:  # in the value date's year, as the library reads it first (0229 of 2027 is none)
            date(year, int(mmdd[:2]), int(mmdd[2:]))
        except ValueError:
            return f"an entry date {mmdd!r} that is no date in {year} (MMDD)"
    return None


def _mt940_line_of(text: str, fragment: str) -> str:
    for n, line in enumerate(text.splitlines(), 1):
        if fragment and fragment.splitlines()[0] in line:
            return f"line {n}: "
    return ""


def _mt940_balance(
    records: list[Record],
    skipped: Counter[str],
    head: Mapping[str, Any],
    keys: tuple[str, ...],
    line_type: str,
    common: Fields,
) -> None:
    found = [k for k in keys if head.get(k) is not None]
    for key in [k for k in found if k in INTERMEDIATE]:
        # a page's balance inside the day (:60M:/:62M: of a statement split over pages): not
        # the day's, which the first page opens (:60F:) and the last closes (:62F:)
        skipped[f"intermediate balance ({key})"] += 1
    found = [k for k in found if k not in INTERMEDIATE]
    for key in found[1:]:
        skipped[f"second {line_type} ({key})"] += 1
    if not found:
        return
    bal = head[found[0]]
    amount = getattr(bal.amount, "amount", None)
    currency = getattr(bal.amount, "currency", None)
    f: Fields = {
        **common,
        "balance": found[0],
        "status": _text(bal.status),
        "amount": _text(amount),
        "currency": _text(currency),
        "date": _text(bal.date),
    }
    derived: Fields = {
        "account": common["account_identification"],
        "currency": _text(currency),
        "date": _text(bal.date),
        "amount": _text(amount),
        "line_type": line_type,
        "ref": None,
    }
    raw = {k: v for k, v in f.items() if v is not None}
    records.append(Record(len(records) + 1, raw, f, derived))


def read_mt940(profile: Profile, data: bytes, source: str) -> Records:
    import mt940

    text = decode_text(data, profile.csv.encoding, source)
    _check_mt940_balances(text, source)
    try:
        statements = mt940.parse_statements(text, options=mt940.Options.all())
    except Exception as exc:  # the library raises RuntimeError and others
        args: tuple[object, ...] = exc.args
        value = args[2] if len(args) > 2 and isinstance(args[2], str) else ""
        where = _mt940_line_of(text, value)
        what = f"{value[:60]!r} cannot be read" if value else str(exc)[:200]
        raise BadInput(source, f"{where}not a readable MT940 statement: {what}") from None
    if not statements:
        raise BadInput(source, "no MT940 statement found (no :20: line)")
    records: list[Record] = []
    skipped: Counter[str] = Counter()
    closing: dict[int, str | None] = {}  # row -> its statement's closing balance date
    for st in statements:
        head = st.data
        first = len(records) + 1
        account = _text(head.get("account_identification"))
        common: Fields = {
            "account_identification": account,
            "transaction_reference": _text(head.get("transaction_reference")),
            "statement_number": _text(head.get("statement_number")),
        }

        _mt940_balance(records, skipped, head, OPENING, "opening_balance", common)
        for tx in st:
            d = tx.data
            amt = d.get("amount")
            amount = getattr(amt, "amount", None)
            currency = getattr(amt, "currency", None) or d.get("currency")
            f = {k: _text(v) for k, v in d.items() if k != "amount"}
            f.update(common)
            f["amount"] = _text(amount)
            f["currency"] = _text(currency)
            customer = f.get("customer_reference")
            ref = customer if customer and customer.upper() != "NONREF" else None
            ref = ref or f.get("bank_reference") or None
            derived = {
                "account": account,
                "currency": _text(currency),
                "date": _text(d.get("date")),
                "amount": _text(amount),
                "line_type": "movement",
                "ref": ref,
            }
            raw = {k: v for k, v in f.items() if v not in (None, "")}
            records.append(Record(len(records) + 1, raw, f, derived))
        _mt940_balance(records, skipped, head, CLOSING, "closing_balance", common)
        closes = next((head[k].date for k in CLOSING if head.get(k) is not None), None)
        closing.update(dict.fromkeys(range(first, len(records) + 1), _text(closes)))
    return Records(records, dict(skipped), {}, {}, False, closing)


# ---- camt.053 ---------------------------------------------------------------------------------


def _children(elem: Any, name: str) -> list[Any]:
    return [] if elem is None else [c for c in elem if _local(c.tag) == name]


def _path(elem: Any, *names: str) -> Any:
    for name in names:
        found = _children(elem, name) if elem is not None else []
        elem = found[0] if found else None
    return elem


def _camt_text(elem: Any) -> str | None:
    if elem is None or elem.text is None:
        return None
    return str(elem.text).strip() or None


def _camt_day(value: str | None) -> str | None:
    if value and len(value) > 10 and value[10] == "T":
        return value[:10]
    return value


_CAMT_AMOUNT = re.compile(r"[0-9]+(\.[0-9]*)?")  # ActiveOrHistoricCurrencyAndAmount: unsigned


def _signed(amount: str | None, indicator: str | None) -> tuple[str | None, str | None]:
    """(signed amount text, problem)."""
    if amount is None:
        return None, None
    if amount.startswith(("-", "+")):
        return amount, "the amount is signed: camt.053 amounts are unsigned (CdtDbtInd signs them)"
    if indicator == "CRDT":
        return amount, None
    if indicator == "DBIT":
        if not _CAMT_AMOUNT.fullmatch(amount):  # refused by validation, by the file's text
            return amount, None
        return "-" + amount, None
    said = "missing" if indicator is None else f"{indicator!r}, not CRDT or DBIT"
    return amount, f"CdtDbtInd is {said}: the amount's sign is unknown"


def _camt_entry(entry: Any) -> Fields:
    """One booked entry (Ntry) of a statement as the bank booked it: its own amount, sign,
    dates and reference, whatever its details hold. (pycamt's transactions took the first
    Amt and CdtDbtInd anywhere under the entry, so an instructed amount in another currency
    or a charges record became the entry's amount, and a batch entry with several
    transaction details came out once per detail with the entry's whole amount; with a
    prefixed namespace it found no entry at all. The fields keep its names.)"""
    amt = _path(entry, "Amt")
    details = [t for d in _children(entry, "NtryDtls") for t in _children(d, "TxDtls")]
    sts = _path(entry, "Sts")
    status = _camt_text(_path(sts, "Cd")) or _camt_text(_path(sts, "Prtry")) or _camt_text(sts)
    domain = _path(entry, "BkTxCd", "Domn")

    def day(name: str) -> str | None:
        return _camt_text(_path(entry, name, "Dt")) or _camt_text(_path(entry, name, "DtTm"))

    f: Fields = {
        "TransactionID": _camt_text(_path(entry, "AcctSvcrRef")),
        "EntryReference": _camt_text(_path(entry, "NtryRef")),
        "Amount": _camt_text(amt),
        "Currency": None if amt is None else amt.get("Ccy"),
        "CreditDebitIndicator": _camt_text(_path(entry, "CdtDbtInd")),
        "ReversalIndicator": _camt_text(_path(entry, "RvslInd")),
        "Status": status,
        "BookingDate": day("BookgDt"),
        "ValueDate": day("ValDt"),
        "BankTransactionCode": _camt_text(_path(domain, "Cd")),
        "TransactionFamilyCode": _camt_text(_path(domain, "Fmly", "Cd")),
        "TransactionSubFamilyCode": _camt_text(_path(domain, "Fmly", "SubFmlyCd")),
        "AdditionalEntryInformation": _camt_text(_path(entry, "AddtlNtryInf")),
        "TransactionDetails": str(len(details)) if len(details) > 1 else None,
    }
    if len(details) == 1:  # a batch's details each have their own: none is the entry's
        f["EndToEndId"] = _camt_text(_path(details[0], "Refs", "EndToEndId"))
    texts = [
        t
        for d in details
        for t in (_camt_text(u) for u in _children(_path(d, "RmtInf"), "Ustrd"))
        if t
    ]
    f["RemittanceInformation"] = "; ".join(texts) if texts else None
    return f


def read_camt053(profile: Profile, data: bytes, source: str) -> Records:
    root = _xml_root(data, source, "camt.053")
    statements = [e for e in root.iter() if _local(e.tag) == "Stmt"] or [
        e for e in root.iter() if _local(e.tag) == "Rpt"
    ]
    if not statements:
        raise BadInput(
            source, f"no statement (Stmt) in this XML; is it camt.053? (root {_local(root.tag)!r})"
        )
    records: list[Record] = []
    skipped: Counter[str] = Counter()
    closing: dict[int, str | None] = {}  # row -> its statement's closing balance date
    for stmt in statements:
        acct = _path(stmt, "Acct")
        account = _camt_text(_path(acct, "Id", "IBAN")) or _camt_text(
            _path(acct, "Id", "Othr", "Id")
        )
        acct_ccy = _camt_text(_path(acct, "Ccy"))
        balances: dict[str, list[Record]] = {"opening_balance": [], "closing_balance": []}
        for bal in _children(stmt, "Bal"):
            code = _camt_text(_path(bal, "Tp", "CdOrPrtry", "Cd")) or _camt_text(
                _path(bal, "Tp", "CdOrPrtry", "Prtry")
            )
            line_type = {"OPBD": "opening_balance", "CLBD": "closing_balance"}.get(code or "")
            if line_type is None:
                skipped[f"balance type {code}"] += 1
                continue
            amt = _path(bal, "Amt")
            amount, problem = _signed(_camt_text(amt), _camt_text(_path(bal, "CdtDbtInd")))
            day = _camt_text(_path(bal, "Dt", "Dt")) or _camt_text(_path(bal, "Dt", "DtTm"))
            f: Fields = {
                "Account": account,
                "Type": code,
                "Amount": _camt_text(amt),
                "Currency": None if amt is None else amt.get("Ccy"),
                "CreditDebitIndicator": _camt_text(_path(bal, "CdtDbtInd")),
                "Date": day,
            }
            derived: Fields = {
                "account": account,
                "currency": f["Currency"] or acct_ccy,
                "date": _camt_day(day),
                "amount": amount,
                "line_type": line_type,
                "ref": None,
            }
            raw = {k: v for k, v in f.items() if v is not None}
            balances[line_type].append(Record(0, raw, f, derived, problem))
        movements: list[Record] = []
        for entry in _children(stmt, "Ntry"):
            f = _camt_entry(entry)
            status = f.get("Status")
            if status not in (None, "BOOK"):
                skipped[f"entry status {status}"] += 1
                continue
            f["Account"] = account
            amount, problem = _signed(f.get("Amount"), f.get("CreditDebitIndicator"))
            e2e = f.get("EndToEndId")
            ref = f.get("TransactionID") or (e2e if e2e and e2e != "NOTPROVIDED" else None)
            derived = {
                "account": account,
                "currency": f.get("Currency") or acct_ccy,
                "date": _camt_day(f.get("ValueDate") or f.get("BookingDate")),
                "amount": amount,
                "line_type": "movement",
                "ref": ref,
            }
            raw = {k: v for k, v in f.items() if v is not None}
            movements.append(Record(0, raw, f, derived, problem))
        closes = next((r.derived["date"] for r in balances["closing_balance"]), None)
        for rec in [*balances["opening_balance"], *movements, *balances["closing_balance"]]:
            records.append(
                Record(len(records) + 1, rec.raw, rec.fields, rec.derived, rec.problem)
            )
            closing[len(records)] = closes
    return Records(records, dict(skipped), {}, {}, False, closing)


__all__ = ["read", "read_camt053", "read_fix", "read_ibflex", "read_mt940"]
