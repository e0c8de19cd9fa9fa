"""FIX 4.4 drop copies: ExecutionReport (35=8) and OrderCancelReject (35=9) lines turned into
order commands. Pure: text in, values out.

One message per line, fields separated by SOH or `|`; parsed with simplefix. BodyLength (9) and
CheckSum (10) are verified when present. A line that cannot be understood becomes a RowError
(line, field, reason), never an exception: the caller applies the others in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import simplefix

from oms import orders
from oms.errors import BadInput, RowError
from oms.orders import ClientOrderId, ExecType
from oms.values import ExecId, is_decimal_text

SOH = b"\x01"
EXECUTION_REPORT, CANCEL_REJECT = "8", "9"


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
    """Why BodyLength or CheckSum is wrong, or None."""
    body_at = raw.find(SOH + b"9=")
    if body_at >= 0:
        start = raw.index(SOH, body_at + 1) + 1
        end = raw.find(SOH + b"10=")
        end = len(raw) if end < 0 else end + 1
        declared = raw[body_at + 3 : start - 1]
        if not declared.isdigit() or int(declared) != end - start:
            return f"BodyLength {declared.decode(errors='replace')} is wrong ({end - start})"
    check_at = raw.find(SOH + b"10=")
    if check_at >= 0:
        declared = raw[check_at + 4 :].rstrip(SOH)
        actual = sum(raw[: check_at + 1]) % 256
        if not declared.isdigit() or int(declared) != actual:
            return f"CheckSum {declared.decode(errors='replace')} is wrong ({actual:03d})"
    return None


def parse(text: str) -> list[Report | RowError]:
    out: list[Report | RowError] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        raw = line.strip().replace("|", "\x01").encode()
        if not raw.endswith(SOH):
            raw += SOH
        problem = _verify(raw)
        if problem:
            out.append(RowError(n, None, None, problem))
            continue
        parser = simplefix.FixParser()
        parser.append_buffer(raw)
        msg = parser.get_message()
        if msg is None or msg.get(35) is None:
            out.append(RowError(n, "35", None, "not a FIX message (no MsgType 35)"))
            continue
        fields = {int(tag): value.decode() for tag, value in msg.pairs}
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
    if not is_decimal_text(value) or Decimal(value) <= 0:
        raise BadInput(f"{name} ({tag})", f"{value!r} is not a positive decimal")
    return Decimal(value)


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


def command(report: Report) -> orders.Command:
    """The order command a report asks for; BadInput when it lacks what that needs."""
    reason = report.get(58)
    if report.msg_type == CANCEL_REJECT:
        to = report.get(434)
        if to == "2":
            return orders.RejectReplace(reason=reason)
        return orders.RejectCancel(reason=reason)
    exec_type = ExecType.from_fix(_need(report, 150, "ExecType"))
    new_id = report.get(11)
    if exec_type is ExecType.NEW:
        return orders.AcknowledgeOrder(reason=reason)
    if exec_type is ExecType.REJECTED:
        return orders.RejectOrder(reason=reason or "rejected by the venue")
    if exec_type is ExecType.CANCELED:
        return orders.AcceptCancel(
            client_order_id=ClientOrderId(new_id) if new_id else None, reason=reason
        )
    if exec_type is ExecType.PENDING_CANCEL:
        return orders.ConfirmPendingCancel(reason=reason)
    if exec_type is ExecType.PENDING_REPLACE:
        return orders.ConfirmPendingReplace(reason=reason)
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
    if exec_type is ExecType.RESTATED:
        return orders.Restate(
            quantity=_dec(report, 38, "OrderQty", required=False),
            limit_price=_dec(report, 44, "Price", required=False),
            reason=reason,
        )
    exec_id = ExecId(_need(report, 17, "ExecID"))
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
