"""Orders: the lifecycle of one order as one explicit transition table, with FIX 4.4 semantics.

Pure: no I/O, no clock, no database, no environment. Times and actors are passed in; every
quantity and price is a Decimal; an Order is an immutable value and ``decide`` returns a new one.

How it fits together:

- A command (an imperative: ``ApplyFill``, ``RequestCancel``, ...) names a ``CommandKind``.
- ``TRANSITIONS`` maps (current OrdStatus, command kind) to the base status the command moves
  the order to; a pair missing from the table is an ``IllegalTransition`` (exit 4).
- An order's reported status (FIX OrdStatus, 39) is not stored apart from its causes: it is
  ``reported_status`` of three things, by FIX's precedence (``STATUS_PRECEDENCE``):

  * the open request, if any: pending_cancel or pending_replace;
  * the *condition*, a status the order holds whatever its quantities: pending_new,
    done_for_day, suspended, canceled, expired or rejected (None: the order simply works);
  * the quantities: new (cum_qty 0), partially_filled (0 < cum_qty < quantity), filled.

  So a fill while a cancel is pending keeps the order pending_cancel but moves cum/leaves, and
  a cancel reject then shows partially_filled or filled as the quantities say. Likewise a cancel
  (or replace) requested before the venue acknowledged the order (FIX 4.4 Appendix D, B.1.d and
  B.1.e) shows pending_cancel over the pending_new condition; the venue's acknowledgement (or a
  fill, or the replace) ends pending_new underneath, and a cancel reject shows pending_new again
  if it has not.
- Fills are kept (exec_id, quantity, price): cum_qty, leaves_qty and avg_px are recomputed from
  the live fills after every fill, correction (ExecType G) and bust (H).

Quantities: cum_qty = sum of the live fills (exact); leaves_qty = quantity - cum_qty, except 0
once the order is canceled, expired or rejected. While an order is live (not filled, canceled,
rejected or expired), cum_qty + leaves_qty == quantity; cum_qty never exceeds quantity.

avg_px = sum(q * p) / sum(q) over the live fills. It is exact whenever that quotient has at most
``FRAC_DIGITS`` (12) decimal places; otherwise it is rounded to 12 places ROUND_HALF_EVEN. The
rounding is correct (no double rounding): the quotient is first taken to 100 significant digits
with ROUND_05UP (round-to-odd), then quantized. Trailing zeros are dropped (``normalize``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import (
    ROUND_05UP,
    ROUND_HALF_EVEN,
    Decimal,
    localcontext,
)
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, NewType

from oms.errors import BadInput, Refused
from oms.values import (
    EXACT,
    QUANTUM,
    ZERO,
    AccountId,
    ExecId,
    OrdType,
    Side,
    Symbol,
    TimeInForce,
    Venue,
    decimal_context,
    exact_sum,
    normalize,
)

__all__ = [
    "CONDITIONS",
    "EVENTS",
    "EXEC_TYPE_COMMANDS",
    "STATUS_PRECEDENCE",
    "TERMINAL",
    "TRANSITIONS",
    "AcceptCancel",
    "AcceptReplace",
    "AcknowledgeOrder",
    "ApplyFill",
    "BustFill",
    "ClientOrderId",
    "Command",
    "CommandKind",
    "ConfirmPendingCancel",
    "ConfirmPendingReplace",
    "CorrectFill",
    "Event",
    "ExecType",
    "Expire",
    "Fill",
    "HistoryEntry",
    "IllegalTransition",
    "MarkDoneForDay",
    "OrdType",
    "Order",
    "OrderId",
    "OrderStatus",
    "PendingRequest",
    "RejectCancel",
    "RejectOrder",
    "RejectReplace",
    "RequestCancel",
    "RequestKind",
    "RequestReplace",
    "Restate",
    "SubmitOrder",
    "Suspend",
    "Target",
    "TimeInForce",
    "Transition",
    "allowed_commands",
    "average_price",
    "decide",
    "fok_fill_ok",
    "gtd_expired",
    "known_fill",
    "quantity_status",
    "reported_status",
    "same_terms",
    "with_fill",
]

OrderId = NewType("OrderId", str)
ClientOrderId = NewType("ClientOrderId", str)

PAPER = Venue("paper")

# The one division (avg_px): round-to-odd at 100 digits, so the final quantize is exact rounding.
_DIVIDE = decimal_context(100, ROUND_05UP)


# --------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------


class OrderStatus(StrEnum):
    """FIX OrdStatus (39), by the contract's names."""

    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    PENDING_REPLACE = "pending_replace"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DONE_FOR_DAY = "done_for_day"
    SUSPENDED = "suspended"

    @property
    def fix(self) -> str:
        """The FIX 4.4 OrdStatus (39) code."""
        return _ORD_STATUS_FIX[self]

    @property
    def terminal(self) -> bool:
        """Filled, canceled, rejected or expired: no fill is accepted any more."""
        return self in TERMINAL

    @classmethod
    def from_fix(cls, code: str) -> OrderStatus:
        """OrdStatus from its FIX 4.4 code (39); BadInput for any other code."""
        for status, fix in _ORD_STATUS_FIX.items():
            if fix == code.strip():
                return status
        known = ", ".join(f"{v}={k}" for k, v in _ORD_STATUS_FIX.items())
        raise BadInput("OrdStatus (39)", f"{code!r} is not an OrdStatus tieout knows ({known})")


_ORD_STATUS_FIX: Mapping[OrderStatus, str] = MappingProxyType(
    {
        OrderStatus.NEW: "0",
        OrderStatus.PARTIALLY_FILLED: "1",
        OrderStatus.FILLED: "2",
        OrderStatus.DONE_FOR_DAY: "3",
        OrderStatus.CANCELED: "4",
        OrderStatus.PENDING_CANCEL: "6",
        OrderStatus.REJECTED: "8",
        OrderStatus.SUSPENDED: "9",
        OrderStatus.PENDING_NEW: "A",
        OrderStatus.EXPIRED: "C",
        OrderStatus.PENDING_REPLACE: "E",
    }
)

TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)

# Statuses an order holds whatever its quantities (Order.condition); None means "working".
CONDITIONS = frozenset(
    {
        OrderStatus.PENDING_NEW,
        OrderStatus.DONE_FOR_DAY,
        OrderStatus.SUSPENDED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
    }
)
# Conditions that end the order: nothing is left to execute (leaves_qty 0).
_CLOSED = frozenset({OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED})


class ExecType(StrEnum):
    """FIX 4.4 ExecType (150): the values tieout applies."""

    NEW = "new"  # 0
    DONE_FOR_DAY = "done_for_day"  # 3
    CANCELED = "canceled"  # 4
    REPLACED = "replaced"  # 5
    PENDING_CANCEL = "pending_cancel"  # 6
    REJECTED = "rejected"  # 8
    SUSPENDED = "suspended"  # 9
    EXPIRED = "expired"  # C
    RESTATED = "restated"  # D
    PENDING_REPLACE = "pending_replace"  # E
    TRADE = "trade"  # F
    TRADE_CORRECT = "trade_correct"  # G
    TRADE_CANCEL = "trade_cancel"  # H (a bust)
    ORDER_STATUS = "order_status"  # I (the answer to a status request: changes nothing)
    TRIGGERED = "triggered"  # L (triggered or activated by system: a stop's trigger)

    @property
    def fix(self) -> str:
        """The FIX 4.4 ExecType (150) code."""
        return _EXEC_TYPE_FIX[self]

    @classmethod
    def from_fix(cls, code: str) -> ExecType:
        """ExecType from its FIX code (150); BadInput for any other code (FIX 4.2's 1 and 2,
        partial fill and fill, are not accepted: FIX 4.4 reports every trade as F)."""
        for exec_type, fix in _EXEC_TYPE_FIX.items():
            if fix == code.strip():
                return exec_type
        known = ", ".join(_EXEC_TYPE_FIX.values())
        raise BadInput("ExecType (150)", f"{code!r} is not one of {known}")


_EXEC_TYPE_FIX: Mapping[ExecType, str] = MappingProxyType(
    {
        ExecType.NEW: "0",
        ExecType.DONE_FOR_DAY: "3",
        ExecType.CANCELED: "4",
        ExecType.REPLACED: "5",
        ExecType.PENDING_CANCEL: "6",
        ExecType.REJECTED: "8",
        ExecType.SUSPENDED: "9",
        ExecType.EXPIRED: "C",
        ExecType.RESTATED: "D",
        ExecType.PENDING_REPLACE: "E",
        ExecType.TRADE: "F",
        ExecType.TRADE_CORRECT: "G",
        ExecType.TRADE_CANCEL: "H",
        ExecType.ORDER_STATUS: "I",
        ExecType.TRIGGERED: "L",
    }
)


class RequestKind(StrEnum):
    """What an open request (Order.pending) asks for."""

    CANCEL = "cancel"
    REPLACE = "replace"


class CommandKind(StrEnum):
    """The kind of a command: the column of the transition table."""

    SUBMIT = "submit"
    ACKNOWLEDGE = "acknowledge"  # ExecType 0
    REJECT = "reject"  # ExecType 8
    REQUEST_CANCEL = "request_cancel"  # client: OrderCancelRequest (35=F)
    CONFIRM_PENDING_CANCEL = "confirm_pending_cancel"  # ExecType 6
    ACCEPT_CANCEL = "accept_cancel"  # ExecType 4 (solicited or not)
    REJECT_CANCEL = "reject_cancel"  # OrderCancelReject (35=9), CxlRejResponseTo 1
    REQUEST_REPLACE = "request_replace"  # client: OrderCancelReplaceRequest (35=G)
    CONFIRM_PENDING_REPLACE = "confirm_pending_replace"  # ExecType E
    ACCEPT_REPLACE = "accept_replace"  # ExecType 5
    REJECT_REPLACE = "reject_replace"  # OrderCancelReject (35=9), CxlRejResponseTo 2
    APPLY_FILL = "apply_fill"  # ExecType F
    CORRECT_FILL = "correct_fill"  # ExecType G
    BUST_FILL = "bust_fill"  # ExecType H
    EXPIRE = "expire"  # ExecType C
    MARK_DONE_FOR_DAY = "mark_done_for_day"  # ExecType 3
    SUSPEND = "suspend"  # (ExecType 9)
    RESTATE = "restate"  # ExecType D
    TRIGGER = "trigger"  # ExecType L: a stop or stop-limit order's stop price was reached


class Event(StrEnum):
    """What happened: one event per accepted command, in the past tense."""

    ORDER_SUBMITTED = "order_submitted"
    ORDER_ACKNOWLEDGED = "order_acknowledged"
    ORDER_REJECTED = "order_rejected"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_PENDING_CONFIRMED = "cancel_pending_confirmed"
    ORDER_CANCELED = "order_canceled"
    CANCEL_REJECTED = "cancel_rejected"
    REPLACE_REQUESTED = "replace_requested"
    REPLACE_PENDING_CONFIRMED = "replace_pending_confirmed"
    ORDER_REPLACED = "order_replaced"
    REPLACE_REJECTED = "replace_rejected"
    FILL_APPLIED = "fill_applied"
    FILL_CORRECTED = "fill_corrected"
    FILL_BUSTED = "fill_busted"
    ORDER_EXPIRED = "order_expired"
    ORDER_DONE_FOR_DAY = "order_done_for_day"
    ORDER_SUSPENDED = "order_suspended"
    ORDER_RESTATED = "order_restated"
    ORDER_TRIGGERED = "order_triggered"


_K = CommandKind
EVENTS: Mapping[CommandKind, Event] = MappingProxyType(
    {
        _K.SUBMIT: Event.ORDER_SUBMITTED,
        _K.ACKNOWLEDGE: Event.ORDER_ACKNOWLEDGED,
        _K.REJECT: Event.ORDER_REJECTED,
        _K.REQUEST_CANCEL: Event.CANCEL_REQUESTED,
        _K.CONFIRM_PENDING_CANCEL: Event.CANCEL_PENDING_CONFIRMED,
        _K.ACCEPT_CANCEL: Event.ORDER_CANCELED,
        _K.REJECT_CANCEL: Event.CANCEL_REJECTED,
        _K.REQUEST_REPLACE: Event.REPLACE_REQUESTED,
        _K.CONFIRM_PENDING_REPLACE: Event.REPLACE_PENDING_CONFIRMED,
        _K.ACCEPT_REPLACE: Event.ORDER_REPLACED,
        _K.REJECT_REPLACE: Event.REPLACE_REJECTED,
        _K.APPLY_FILL: Event.FILL_APPLIED,
        _K.CORRECT_FILL: Event.FILL_CORRECTED,
        _K.BUST_FILL: Event.FILL_BUSTED,
        _K.EXPIRE: Event.ORDER_EXPIRED,
        _K.MARK_DONE_FOR_DAY: Event.ORDER_DONE_FOR_DAY,
        _K.SUSPEND: Event.ORDER_SUSPENDED,
        _K.RESTATE: Event.ORDER_RESTATED,
        _K.TRIGGER: Event.ORDER_TRIGGERED,
    }
)

# The command an ExecutionReport (35=8) of each ExecType becomes. An OrderCancelReject (35=9)
# is RejectCancel or RejectReplace by its CxlRejResponseTo (434). An order status report (I)
# becomes none: it answers a status request and changes nothing (oms.fix.is_status_report).
EXEC_TYPE_COMMANDS: Mapping[ExecType, CommandKind] = MappingProxyType(
    {
        ExecType.NEW: _K.ACKNOWLEDGE,
        ExecType.DONE_FOR_DAY: _K.MARK_DONE_FOR_DAY,
        ExecType.CANCELED: _K.ACCEPT_CANCEL,
        ExecType.REPLACED: _K.ACCEPT_REPLACE,
        ExecType.PENDING_CANCEL: _K.CONFIRM_PENDING_CANCEL,
        ExecType.REJECTED: _K.REJECT,
        ExecType.SUSPENDED: _K.SUSPEND,
        ExecType.EXPIRED: _K.EXPIRE,
        ExecType.RESTATED: _K.RESTATE,
        ExecType.PENDING_REPLACE: _K.CONFIRM_PENDING_REPLACE,
        ExecType.TRADE: _K.APPLY_FILL,
        ExecType.TRADE_CORRECT: _K.CORRECT_FILL,
        ExecType.TRADE_CANCEL: _K.BUST_FILL,
        ExecType.TRIGGERED: _K.TRIGGER,
    }
)


# --------------------------------------------------------------------------------------------
# Status precedence
# --------------------------------------------------------------------------------------------

# FIX 4.4 OrdStatus precedence, highest first: when several statuses apply, the first one in
# this list is reported: pending_cancel > pending_replace > done_for_day > filled > suspended >
# canceled = expired > partially_filled > new (FIX's levels 11..2). Rejected and pending_new,
# level with new in FIX, come before new: they are conditions of an order without fills.
STATUS_PRECEDENCE: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING_CANCEL,
    OrderStatus.PENDING_REPLACE,
    OrderStatus.DONE_FOR_DAY,
    OrderStatus.FILLED,
    OrderStatus.SUSPENDED,
    OrderStatus.CANCELED,
    OrderStatus.EXPIRED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.REJECTED,
    OrderStatus.PENDING_NEW,
    OrderStatus.NEW,
)


def quantity_status(cum_qty: Decimal, quantity: Decimal) -> OrderStatus:
    """What the quantities alone say: new (nothing filled), partially_filled or filled."""
    if cum_qty >= quantity:
        return OrderStatus.FILLED
    if cum_qty > 0:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.NEW


def reported_status(
    *,
    pending: RequestKind | None,
    condition: OrderStatus | None,
    cum_qty: Decimal,
    quantity: Decimal,
) -> OrderStatus:
    """The OrdStatus to report: of all statuses that apply (the open request's, the condition,
    the quantities'), the one that comes first in ``STATUS_PRECEDENCE``."""
    applicable = {quantity_status(cum_qty, quantity)}
    if pending is RequestKind.CANCEL:
        applicable.add(OrderStatus.PENDING_CANCEL)
    elif pending is RequestKind.REPLACE:
        applicable.add(OrderStatus.PENDING_REPLACE)
    if condition is not None:
        if condition not in CONDITIONS:
            raise ValueError(f"{condition} is not a condition ({sorted(CONDITIONS)})")
        applicable.add(condition)
    return next(status for status in STATUS_PRECEDENCE if status in applicable)


# reported_status for every (open request, condition, quantities' status), computed from it once:
# what the transitions look up (the function above stays the definition)
_REPORTED: Mapping[tuple[RequestKind | None, OrderStatus | None, OrderStatus], OrderStatus] = (
    MappingProxyType(
        {
            (pending, condition, by_qty): reported_status(
                pending=pending,
                condition=condition,
                cum_qty={
                    OrderStatus.NEW: Decimal(0),
                    OrderStatus.PARTIALLY_FILLED: Decimal(1),
                    OrderStatus.FILLED: Decimal(2),
                }[by_qty],
                quantity=Decimal(2),
            )
            for pending in (None, *RequestKind)
            for condition in (None, *sorted(CONDITIONS))
            for by_qty in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)
        }
    )
)


def _status(
    pending: PendingRequest | None,
    condition: OrderStatus | None,
    cum_qty: Decimal,
    quantity: Decimal,
) -> OrderStatus:
    """reported_status by table (KeyError for a condition that is not one)."""
    by_qty = (
        OrderStatus.FILLED
        if cum_qty >= quantity
        else OrderStatus.PARTIALLY_FILLED
        if cum_qty > 0
        else OrderStatus.NEW
    )
    return _REPORTED[(None if pending is None else pending.kind, condition, by_qty)]


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


class Fill(NamedTuple):
    """A live execution of the order, with its current terms."""

    exec_id: ExecId  # the ExecID (17) that booked it
    quantity: Decimal  # > 0
    price: Decimal  # > 0
    at: datetime
    corrected_by: tuple[ExecId, ...] = ()  # ExecIDs of the corrections (G) applied, oldest first

    def known_as(self, exec_id: str) -> bool:
        """Whether an ExecRefID (19) names this fill: its own id or one of its corrections'."""
        return exec_id == self.exec_id or exec_id in self.corrected_by


class HistoryEntry(NamedTuple):
    status: OrderStatus  # the status after the change
    at: datetime
    actor: str
    reason: str
    event: Event


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """An open cancel or cancel/replace request, waiting for the venue's answer."""

    kind: RequestKind
    requested_at: datetime
    client_order_id: ClientOrderId | None = None  # the new ClOrdID (11) that names the order after
    quantity: Decimal | None = None  # replace: new terms (None = unchanged)
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    # a cancel chained behind a replace the venue has not answered (FIX 4.4 lets a client
    # send one): that replace, still open underneath; the order shows pending_cancel over it
    under: PendingRequest | None = None

    @property
    def replace(self) -> PendingRequest | None:
        """The open replace request: this one, or the one under this cancel."""
        return self if self.kind is RequestKind.REPLACE else self.under

    @property
    def since(self) -> datetime:
        """When the venue was first asked and has not answered since (the oldest request)."""
        return self.requested_at if self.under is None else self.under.requested_at


def _confirmed(
    order: Order,
    kind: RequestKind,
    at: datetime,
    client_id: ClientOrderId | None,
    open_request: PendingRequest | None = None,
) -> PendingRequest:
    """The request a venue's pending report (6, E) confirms: the open one (`open_request`,
    else the order's), which takes the
    ClOrdID the venue names when it has none of its own (a cancel sent without a new id); or,
    when none is open, one the venue took by other means (a phone call). The ClOrdID it names
    is the request's unless it is the order's own."""
    named = None if client_id == order.client_order_id else client_id
    pending = order.pending if open_request is None else open_request
    if pending is None:
        return PendingRequest(kind, at, named)
    if pending.client_order_id is None and named is not None:
        return dataclasses.replace(pending, client_order_id=named)
    return pending


def _check_fill_numbers(quantity: Decimal, price: Decimal, what: str) -> None:
    if not (quantity.is_finite() and quantity > 0):
        raise BadInput(what, f"quantity {quantity} must be greater than zero")
    if not (price.is_finite() and price > 0):
        raise BadInput(what, f"price {price} must be greater than zero")


def _check_terms(
    order_type: OrdType,
    quantity: Decimal | None,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    what: str,
) -> None:
    """Quantity > 0; a limit price exactly for limit and stop_limit orders, a stop price
    exactly for stop and stop_limit orders; prices > 0."""
    if quantity is not None and not (quantity.is_finite() and quantity > 0):
        raise BadInput(what, f"quantity {quantity} must be greater than zero")
    for name, price, needed in (
        ("limit price", limit_price, order_type.needs_limit),
        ("stop price", stop_price, order_type.needs_stop),
    ):
        if price is None:
            if needed:
                raise BadInput(what, f"a {order_type} order needs a {name}")
        elif not needed:
            raise BadInput(what, f"a {order_type} order takes no {name}")
        elif not (price.is_finite() and price > 0):
            raise BadInput(what, f"{name} {price} must be greater than zero")


# An order with thousands of fills (a drop copy of an algorithm's day) takes one more with
# each report: summing its fills and looking for the report's ExecID among them at each report
# made a report's cost grow with the fills before it (about 17 ms a report at 5,000 fills). The
# sums and the ExecIDs of a long fills tuple are kept beside it (by the tuple's identity, the
# tuple held, so the identity stays its own), and a tuple one fill longer (`with_fill`) takes
# them over with that fill added: the same values as a pass over every fill would give (the
# sums are exact, added in the same order), in constant time. Fewer than _LONG fills are simply
# summed. A memo of pure functions of immutable values: nothing observable depends on it.
_LONG = 64
_KEEP_SUMS = 16

# by id(fills): (fills, quantity, notional), and (fills, ExecID -> position) for the ExecIDs of
# the fills and of their corrections. The tuple is held, so its id stays its own; a tuple's
# ExecIDs are taken (dict.pop: by one caller, whichever thread) by the tuple one fill longer,
# which adds that fill's: each index belongs to one tuple at a time. A reader still holding
# the taken index sees positions past its tuple's end, which known_fill ignores.
_SUMS: dict[int, tuple[tuple[Fill, ...], Decimal, Decimal]] = {}
_IDS: dict[int, tuple[tuple[Fill, ...], dict[str, int]]] = {}


def _ids_of(fills: tuple[Fill, ...]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for index, fill in enumerate(fills):
        ids[fill.exec_id] = index
        for corrected in fill.corrected_by:
            ids[corrected] = index
    return ids


def _keep(memo: dict[int, Any], fills: tuple[Fill, ...], value: Any) -> None:
    while len(memo) >= _KEEP_SUMS:  # the oldest out (another thread may be at it too)
        try:
            memo.pop(next(iter(memo)), None)
        except (RuntimeError, StopIteration):
            break
    memo[id(fills)] = value


def _sums(fills: tuple[Fill, ...]) -> tuple[Decimal, Decimal]:
    """(quantity, notional) of the fills, exactly."""
    found = _SUMS.get(id(fills))
    if found is not None and found[0] is fills:
        return found[1], found[2]
    with localcontext(EXACT):
        quantity = ZERO
        notional = ZERO
        for fill in fills:
            quantity += fill.quantity
            notional += fill.quantity * fill.price
    _keep(_SUMS, fills, (fills, quantity, notional))
    return quantity, notional


def _known_ids(fills: tuple[Fill, ...]) -> dict[str, int]:
    found = _IDS.get(id(fills))
    if found is not None and found[0] is fills:
        return found[1]
    ids = _ids_of(fills)
    _keep(_IDS, fills, (fills, ids))
    return ids


def with_fill(fills: tuple[Fill, ...], fill: Fill) -> tuple[Fill, ...]:
    """`fills` and then `fill` (an ExecID `fills` does not know): a new tuple."""
    longer = (*fills, fill)
    if len(longer) < _LONG:
        return longer
    before = _SUMS.get(id(fills))
    if before is None or before[0] is not fills:
        return longer  # summed when first asked
    with localcontext(EXACT):
        quantity = before[1] + fill.quantity
        notional = before[2] + fill.quantity * fill.price
    _keep(_SUMS, longer, (longer, quantity, notional))
    taken = _IDS.pop(id(fills), None)
    if taken is not None and taken[0] is fills:
        ids = taken[1]
        ids[fill.exec_id] = len(fills)
        for corrected in fill.corrected_by:
            ids[corrected] = len(fills)
        _keep(_IDS, longer, (longer, ids))
    return longer


def known_fill(fills: tuple[Fill, ...], exec_id: str) -> int | None:
    """The position of the fill an ExecID names (its own or a correction's), or None."""
    if len(fills) < _LONG:
        return next((i for i, f in enumerate(fills) if f.known_as(exec_id)), None)
    index = _known_ids(fills).get(exec_id)
    if index is not None and index < len(fills) and fills[index].known_as(exec_id):
        return index
    # (the index is one tuple's, complete for it: a miss is an ExecID it does not know)
    return None


def _sum_quantity(fills: tuple[Fill, ...]) -> Decimal:
    if not fills:
        return ZERO
    if len(fills) >= _LONG:
        return _sums(fills)[0]
    with localcontext(EXACT):
        total = ZERO
        for fill in fills:
            total += fill.quantity
        return total


def filled_notional(fills: tuple[Fill, ...] | list[Fill]) -> Decimal:
    """sum(quantity x price) of the fills, exactly (the caller's context may round)."""
    if isinstance(fills, tuple) and len(fills) >= _LONG:
        return _sums(fills)[1]
    return exact_sum(EXACT.multiply(f.quantity, f.price) for f in fills)


def average_price(fills: tuple[Fill, ...] | list[Fill]) -> Decimal | None:
    """Volume-weighted price of the fills, sum(q*p)/sum(q); None without fills. Exact when the
    quotient has at most 12 decimals, else rounded to 12 places ROUND_HALF_EVEN (correctly
    rounded); trailing zeros dropped."""
    if not fills:
        return None
    if len(fills) == 1 and fills[0].quantity.is_finite() and fills[0].quantity > 0:
        # one fill: q*p/q is p exactly (a price has at most 30 digits, far inside the 100 of
        # the contexts below), so the result is p rounded as the general case rounds it
        with localcontext(_DIVIDE):
            return normalize(fills[0].price.quantize(QUANTUM, rounding=ROUND_HALF_EVEN))
    if isinstance(fills, tuple) and len(fills) >= _LONG:
        quantity, notional = _sums(fills)
    else:
        with localcontext(EXACT):
            notional = ZERO
            quantity = ZERO
            for fill in fills:
                notional += fill.quantity * fill.price
                quantity += fill.quantity
    with localcontext(_DIVIDE) as ctx:
        quotient = ctx.divide(notional, quantity)
        return normalize(quotient.quantize(QUANTUM, rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """A new order (the store assigns order_id). Its terms are checked when it is decided."""

    kind: ClassVar[CommandKind] = CommandKind.SUBMIT
    order_id: OrderId
    client_order_id: ClientOrderId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Decimal
    type: OrdType = OrdType.MARKET
    tif: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    expire_at: date | None = None  # GTD only
    venue: Venue = PAPER
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """One order, as of its last change. Never changed: ``decide`` returns a new Order.

    ``status`` is always ``reported_status(pending, condition, cum_qty, quantity)``;
    ``cum_qty``, ``leaves_qty`` and ``avg_px`` always follow from ``fills``. The constructor
    checks this (ValueError), so an Order rebuilt from storage is consistent or refused.
    """

    order_id: OrderId
    client_order_id: ClientOrderId  # the current ClOrdID: a cancel or replace may rename it
    account: AccountId
    symbol: Symbol
    side: Side
    type: OrdType
    tif: TimeInForce
    quantity: Decimal  # current OrderQty (38): a replace or restatement may change it
    limit_price: Decimal | None
    stop_price: Decimal | None
    expire_at: date | None
    venue: Venue
    status: OrderStatus
    condition: OrderStatus | None  # one of CONDITIONS, or None while the order simply works
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal | None
    pending: PendingRequest | None
    fills: tuple[Fill, ...]
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    history: tuple[HistoryEntry, ...]
    submitted: SubmitOrder  # the terms as first submitted (for duplicate detection)

    def __post_init__(self) -> None:
        problems = _inconsistencies(self)
        if problems:
            raise ValueError(f"inconsistent order {self.order_id}: " + "; ".join(problems))

    @property
    def live(self) -> bool:
        """Not filled, canceled, rejected or expired."""
        return self.status not in TERMINAL


def _leaves(quantity: Decimal, cum_qty: Decimal, condition: OrderStatus | None) -> Decimal:
    if condition in _CLOSED:
        return ZERO
    with localcontext(EXACT):
        left = quantity - cum_qty
    return left if left else ZERO  # nothing left is "0", however many places the fills had


def _inconsistencies(order: Order) -> list[str]:
    problems: list[str] = []
    if order.condition is not None and order.condition not in CONDITIONS:
        problems.append(f"condition {order.condition} is not one of {sorted(CONDITIONS)}")
        return problems
    cum = _sum_quantity(order.fills)
    if order.cum_qty != cum:
        problems.append(f"cum_qty {order.cum_qty} is not the sum of the fills ({cum})")
    if not order.quantity > 0:
        problems.append(f"quantity {order.quantity} is not positive")
    elif cum > order.quantity:
        problems.append(f"cum_qty {cum} exceeds quantity {order.quantity}")
    leaves = _leaves(order.quantity, cum, order.condition)
    if order.leaves_qty != leaves:
        problems.append(f"leaves_qty {order.leaves_qty} should be {leaves}")
    avg = average_price(order.fills)
    if order.avg_px != avg:
        problems.append(f"avg_px {order.avg_px} should be {avg}")
    status = reported_status(
        pending=None if order.pending is None else order.pending.kind,
        condition=order.condition,
        cum_qty=cum,
        quantity=order.quantity,
    )
    if order.status != status:
        problems.append(f"status {order.status} should be {status}")
    return problems


_ORDER_SETTERS: tuple[tuple[str, Any], ...] = tuple(
    (f.name, getattr(Order, f.name).__set__) for f in dataclasses.fields(Order)
)


def _derived(fields: dict[str, Any]) -> Order:
    """An Order whose derived fields (status, cum_qty, leaves_qty, avg_px) the caller computed
    from its fills, condition and request with the very functions `_inconsistencies` checks
    them with: built without running those checks again (the Order constructor's check is the
    definition; tests/unit/test_orders.py rebuilds every order `decide` makes through it). What
    the derivation does not prove is still checked here: a condition that is one, quantity > 0
    and cum_qty <= quantity."""
    condition = fields["condition"]
    quantity: Decimal = fields["quantity"]
    if (
        (condition is not None and condition not in CONDITIONS)
        or not quantity > 0
        or fields["cum_qty"] > quantity
    ):
        return Order(**fields)  # the full check, with its message
    order = object.__new__(Order)
    for name, put in _ORDER_SETTERS:
        put(order, fields[name])  # KeyError for a field left out
    return order


# --------------------------------------------------------------------------------------------
# Commands (imperatives). Each names its kind; ``reason`` is free text for the history.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcknowledgeOrder:
    """The venue accepted the order (ExecType 0 New)."""

    kind: ClassVar[CommandKind] = CommandKind.ACKNOWLEDGE
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RejectOrder:
    """The venue (or the pre-trade check) rejected the order (ExecType 8). `codes`: the reason
    codes of the pre-trade checks that failed (oms.risk.RiskCode values; none from a venue),
    kept in the order's event."""

    kind: ClassVar[CommandKind] = CommandKind.REJECT
    reason: str
    codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestCancel:
    """The client asks to cancel (35=F): pending_cancel until the venue answers."""

    kind: ClassVar[CommandKind] = CommandKind.REQUEST_CANCEL
    new_client_order_id: ClientOrderId | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmPendingCancel:
    """The venue reports the cancel pending (ExecType 6): confirms our request, or opens one
    requested by other means (a phone call to the venue), named by the ClOrdID (11) the venue
    gives it when that is not the order's own."""

    kind: ClassVar[CommandKind] = CommandKind.CONFIRM_PENDING_CANCEL
    reason: str | None = None
    client_order_id: ClientOrderId | None = None


@dataclass(frozen=True, slots=True)
class AcceptCancel:
    """The order is canceled (ExecType 4): the answer to a cancel request, or unsolicited."""

    kind: ClassVar[CommandKind] = CommandKind.ACCEPT_CANCEL
    client_order_id: ClientOrderId | None = None  # the ClOrdID the venue reports, if any
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RejectCancel:
    """The venue refused the cancel (OrderCancelReject 35=9, CxlRejResponseTo 1)."""

    kind: ClassVar[CommandKind] = CommandKind.REJECT_CANCEL
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RequestReplace:
    """The client asks to amend (35=G): pending_replace until the venue answers."""

    kind: ClassVar[CommandKind] = CommandKind.REQUEST_REPLACE
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    new_client_order_id: ClientOrderId | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmPendingReplace:
    """The venue reports the replace pending (ExecType E): as ConfirmPendingCancel."""

    kind: ClassVar[CommandKind] = CommandKind.CONFIRM_PENDING_REPLACE
    reason: str | None = None
    client_order_id: ClientOrderId | None = None


@dataclass(frozen=True, slots=True)
class AcceptReplace:
    """The venue replaced the order (ExecType 5). Terms given here are the venue's and win;
    terms left None come from the pending request, else stay as they are."""

    kind: ClassVar[CommandKind] = CommandKind.ACCEPT_REPLACE
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: ClientOrderId | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RejectReplace:
    """The venue refused the replace (OrderCancelReject 35=9, CxlRejResponseTo 2)."""

    kind: ClassVar[CommandKind] = CommandKind.REJECT_REPLACE
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyFill:
    """An execution (ExecType F): LastQty (32) at LastPx (31)."""

    kind: ClassVar[CommandKind] = CommandKind.APPLY_FILL
    exec_id: ExecId
    quantity: Decimal
    price: Decimal
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CorrectFill:
    """A trade correction (ExecType G): the fill named by exec_ref_id gets new terms."""

    kind: ClassVar[CommandKind] = CommandKind.CORRECT_FILL
    exec_id: ExecId
    exec_ref_id: ExecId
    quantity: Decimal
    price: Decimal
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BustFill:
    """A trade cancel, a bust (ExecType H): the fill named by exec_ref_id never happened."""

    kind: ClassVar[CommandKind] = CommandKind.BUST_FILL
    exec_id: ExecId
    exec_ref_id: ExecId
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Expire:
    """The order expired (ExecType C): end of a day order, a GTD date passed, IOC/FOK rest."""

    kind: ClassVar[CommandKind] = CommandKind.EXPIRE
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class MarkDoneForDay:
    """No more executions today (ExecType 3); a GT order may work again after a restatement."""

    kind: ClassVar[CommandKind] = CommandKind.MARK_DONE_FOR_DAY
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Suspend:
    """The order is suspended: it stays on the books but does not execute."""

    kind: ClassVar[CommandKind] = CommandKind.SUSPEND
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Restate:
    """The venue restates the order (ExecType D): GT renewal, an unsolicited change of terms;
    a done-for-day or suspended order works again."""

    kind: ClassVar[CommandKind] = CommandKind.RESTATE
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerOrder:
    """A stop or stop-limit order's stop price was reached (ExecType L): from now on it works
    as a market (stop) or limit (stop-limit) order, whatever the price does next. Its status
    does not change; the trigger is an event of its history (``triggered``)."""

    kind: ClassVar[CommandKind] = CommandKind.TRIGGER
    reason: str | None = None


Command = (
    SubmitOrder
    | AcknowledgeOrder
    | RejectOrder
    | RequestCancel
    | ConfirmPendingCancel
    | AcceptCancel
    | RejectCancel
    | RequestReplace
    | ConfirmPendingReplace
    | AcceptReplace
    | RejectReplace
    | ApplyFill
    | CorrectFill
    | BustFill
    | Expire
    | MarkDoneForDay
    | Suspend
    | Restate
    | TriggerOrder
)


# --------------------------------------------------------------------------------------------
# The transition table
# --------------------------------------------------------------------------------------------


class Target(StrEnum):
    """Table results that are not a single status (the others are OrderStatus values).

    A status in CONDITIONS becomes the order's condition and ends any open request;
    pending_cancel / pending_replace open a request (the condition stays underneath).
    """

    WORKING = "working"  # condition cleared: new, partially_filled or filled by the quantities
    UNCHANGED = "unchanged"  # condition and open request stay; the quantities may change
    # (whatever the target, an acknowledgement, a fill or a replace ends pending_new: _ACKED)
    RESUMED = "resumed"  # the open request ends; the condition from before it shows again
    # done_for_day underneath the open request, which stays open: the status shows the request
    # (precedence), and done_for_day once the venue refuses it
    DONE_UNDER_REQUEST = "done_under_request"
    # suspended underneath the open request, likewise (suspended once the venue refuses it)
    SUSPENDED_UNDER_REQUEST = "suspended_under_request"
    # the condition cleared (a restatement resumes a suspended or done-for-day order) underneath
    # the open request, which stays open
    WORKING_UNDER_REQUEST = "working_under_request"


_S = OrderStatus
WORKING, UNCHANGED, RESUMED = Target.WORKING, Target.UNCHANGED, Target.RESUMED
DONE_UNDER_REQUEST = Target.DONE_UNDER_REQUEST
SUSPENDED_UNDER_REQUEST = Target.SUSPENDED_UNDER_REQUEST
WORKING_UNDER_REQUEST = Target.WORKING_UNDER_REQUEST

# Events that show the venue holds the order: they end a pending_new condition whatever the
# table's target (an acknowledgement, a fill, a replace), also under an open request.
_ACKED = frozenset({Event.ORDER_ACKNOWLEDGED, Event.FILL_APPLIED, Event.ORDER_REPLACED})

# (current status, command) -> what the order becomes, before precedence is applied. A pair
# that is not here is refused as an IllegalTransition. Rejected has no row: nothing applies.
TRANSITIONS: Mapping[tuple[OrderStatus | None, CommandKind], OrderStatus | Target] = (
    MappingProxyType(
        {
            # no order yet
            (None, _K.SUBMIT): _S.PENDING_NEW,
            # pending_new: waiting for the venue. The client may ask to cancel or replace an
            # order the venue has not acknowledged yet (FIX 4.4 Appendix D, B.1.d/B.1.e): the
            # request opens over the pending_new condition, which the venue's acknowledgement
            # (or a fill, or the replace) ends later; a cancel or replace reject goes back to it.
            (_S.PENDING_NEW, _K.ACKNOWLEDGE): WORKING,
            (_S.PENDING_NEW, _K.REJECT): _S.REJECTED,
            (_S.PENDING_NEW, _K.APPLY_FILL): WORKING,  # a fill is an implicit acknowledgement
            (_S.PENDING_NEW, _K.REQUEST_CANCEL): _S.PENDING_CANCEL,
            (_S.PENDING_NEW, _K.CONFIRM_PENDING_CANCEL): _S.PENDING_CANCEL,
            (_S.PENDING_NEW, _K.ACCEPT_CANCEL): _S.CANCELED,
            (_S.PENDING_NEW, _K.REQUEST_REPLACE): _S.PENDING_REPLACE,
            (_S.PENDING_NEW, _K.CONFIRM_PENDING_REPLACE): _S.PENDING_REPLACE,
            (_S.PENDING_NEW, _K.EXPIRE): _S.EXPIRED,
            # new
            (_S.NEW, _K.APPLY_FILL): WORKING,
            (_S.NEW, _K.REQUEST_CANCEL): _S.PENDING_CANCEL,
            (_S.NEW, _K.CONFIRM_PENDING_CANCEL): _S.PENDING_CANCEL,
            (_S.NEW, _K.ACCEPT_CANCEL): _S.CANCELED,
            (_S.NEW, _K.REQUEST_REPLACE): _S.PENDING_REPLACE,
            (_S.NEW, _K.CONFIRM_PENDING_REPLACE): _S.PENDING_REPLACE,
            (_S.NEW, _K.EXPIRE): _S.EXPIRED,
            (_S.NEW, _K.MARK_DONE_FOR_DAY): _S.DONE_FOR_DAY,
            (_S.NEW, _K.SUSPEND): _S.SUSPENDED,
            (_S.NEW, _K.RESTATE): WORKING,
            (_S.NEW, _K.TRIGGER): UNCHANGED,  # a stop's trigger; one with fills triggered
            # partially_filled
            (_S.PARTIALLY_FILLED, _K.APPLY_FILL): WORKING,
            (_S.PARTIALLY_FILLED, _K.CORRECT_FILL): UNCHANGED,
            (_S.PARTIALLY_FILLED, _K.BUST_FILL): UNCHANGED,
            (_S.PARTIALLY_FILLED, _K.REQUEST_CANCEL): _S.PENDING_CANCEL,
            (_S.PARTIALLY_FILLED, _K.CONFIRM_PENDING_CANCEL): _S.PENDING_CANCEL,
            (_S.PARTIALLY_FILLED, _K.ACCEPT_CANCEL): _S.CANCELED,
            (_S.PARTIALLY_FILLED, _K.REQUEST_REPLACE): _S.PENDING_REPLACE,
            (_S.PARTIALLY_FILLED, _K.CONFIRM_PENDING_REPLACE): _S.PENDING_REPLACE,
            (_S.PARTIALLY_FILLED, _K.EXPIRE): _S.EXPIRED,
            (_S.PARTIALLY_FILLED, _K.MARK_DONE_FOR_DAY): _S.DONE_FOR_DAY,
            (_S.PARTIALLY_FILLED, _K.SUSPEND): _S.SUSPENDED,
            (_S.PARTIALLY_FILLED, _K.RESTATE): WORKING,
            # filled: only a correction or a bust can change it (and make it live again)
            (_S.FILLED, _K.CORRECT_FILL): UNCHANGED,
            (_S.FILLED, _K.BUST_FILL): UNCHANGED,
            # pending_cancel: fills still count; the venue answers the request. An
            # acknowledgement is the venue's answer to the order itself, crossing the request
            # (B.1.e): it ends pending_new underneath (and changes nothing on an acknowledged
            # order: the same report again)
            (_S.PENDING_CANCEL, _K.ACKNOWLEDGE): UNCHANGED,
            (_S.PENDING_CANCEL, _K.APPLY_FILL): UNCHANGED,
            (_S.PENDING_CANCEL, _K.CORRECT_FILL): UNCHANGED,
            (_S.PENDING_CANCEL, _K.BUST_FILL): UNCHANGED,
            (_S.PENDING_CANCEL, _K.CONFIRM_PENDING_CANCEL): UNCHANGED,
            (_S.PENDING_CANCEL, _K.ACCEPT_CANCEL): _S.CANCELED,
            (_S.PENDING_CANCEL, _K.REJECT_CANCEL): RESUMED,
            (_S.PENDING_CANCEL, _K.EXPIRE): _S.EXPIRED,
            (_S.PENDING_CANCEL, _K.TRIGGER): UNCHANGED,  # it still works until canceled
            # the venue's day ends before it answers the request (the precedence
            # pending_cancel > pending_replace > done_for_day says both hold at once)
            (_S.PENDING_CANCEL, _K.MARK_DONE_FOR_DAY): DONE_UNDER_REQUEST,
            # likewise a suspension, and a restatement that ends one (or a day's end) before
            # the venue answers (the request stays open)
            (_S.PENDING_CANCEL, _K.SUSPEND): SUSPENDED_UNDER_REQUEST,
            (_S.PENDING_CANCEL, _K.RESTATE): WORKING_UNDER_REQUEST,
            # the venue rejects an order it never acknowledged, crossing the client's request
            # (B.1.d): the order is rejected and the request ends with it
            (_S.PENDING_CANCEL, _K.REJECT): _S.REJECTED,
            # a cancel chained behind a replace the venue has not answered (the replace
            # stays open underneath): the venue answers the replace first, or the cancel
            # (accepted: canceled; rejected: the replace shows again). Refused when no
            # replace is under the cancel.
            (_S.PENDING_CANCEL, _K.CONFIRM_PENDING_REPLACE): UNCHANGED,
            (_S.PENDING_CANCEL, _K.ACCEPT_REPLACE): RESUMED,
            (_S.PENDING_CANCEL, _K.REJECT_REPLACE): RESUMED,
            # pending_replace: fills still count against the old terms
            (_S.PENDING_REPLACE, _K.ACKNOWLEDGE): UNCHANGED,  # as in pending_cancel
            (_S.PENDING_REPLACE, _K.APPLY_FILL): UNCHANGED,
            (_S.PENDING_REPLACE, _K.CORRECT_FILL): UNCHANGED,
            (_S.PENDING_REPLACE, _K.BUST_FILL): UNCHANGED,
            (_S.PENDING_REPLACE, _K.CONFIRM_PENDING_REPLACE): UNCHANGED,
            (_S.PENDING_REPLACE, _K.ACCEPT_REPLACE): RESUMED,
            (_S.PENDING_REPLACE, _K.REJECT_REPLACE): RESUMED,
            (_S.PENDING_REPLACE, _K.ACCEPT_CANCEL): _S.CANCELED,  # unsolicited
            (_S.PENDING_REPLACE, _K.EXPIRE): _S.EXPIRED,
            (_S.PENDING_REPLACE, _K.TRIGGER): UNCHANGED,
            (_S.PENDING_REPLACE, _K.MARK_DONE_FOR_DAY): DONE_UNDER_REQUEST,  # as in pending_cancel
            (_S.PENDING_REPLACE, _K.SUSPEND): SUSPENDED_UNDER_REQUEST,
            (_S.PENDING_REPLACE, _K.RESTATE): WORKING_UNDER_REQUEST,
            (_S.PENDING_REPLACE, _K.REJECT): _S.REJECTED,  # as in pending_cancel (B.1.e)
            # the client may pull the order while a replace waits: the cancel is chained
            # behind the replace, which stays open under it (pending_cancel > pending_replace)
            (_S.PENDING_REPLACE, _K.REQUEST_CANCEL): _S.PENDING_CANCEL,
            # done_for_day: a GT order rests until the venue restates it (or it fills again)
            (_S.DONE_FOR_DAY, _K.APPLY_FILL): WORKING,  # an implicit renewal
            (_S.DONE_FOR_DAY, _K.CORRECT_FILL): UNCHANGED,
            (_S.DONE_FOR_DAY, _K.BUST_FILL): UNCHANGED,
            (_S.DONE_FOR_DAY, _K.REQUEST_CANCEL): _S.PENDING_CANCEL,
            (_S.DONE_FOR_DAY, _K.CONFIRM_PENDING_CANCEL): _S.PENDING_CANCEL,
            (_S.DONE_FOR_DAY, _K.ACCEPT_CANCEL): _S.CANCELED,
            (_S.DONE_FOR_DAY, _K.REQUEST_REPLACE): _S.PENDING_REPLACE,
            (_S.DONE_FOR_DAY, _K.CONFIRM_PENDING_REPLACE): _S.PENDING_REPLACE,
            (_S.DONE_FOR_DAY, _K.EXPIRE): _S.EXPIRED,
            (_S.DONE_FOR_DAY, _K.RESTATE): WORKING,
            # suspended: on the books, not executing
            (_S.SUSPENDED, _K.CORRECT_FILL): UNCHANGED,
            (_S.SUSPENDED, _K.BUST_FILL): UNCHANGED,
            (_S.SUSPENDED, _K.REQUEST_CANCEL): _S.PENDING_CANCEL,
            (_S.SUSPENDED, _K.CONFIRM_PENDING_CANCEL): _S.PENDING_CANCEL,
            (_S.SUSPENDED, _K.ACCEPT_CANCEL): _S.CANCELED,
            (_S.SUSPENDED, _K.REQUEST_REPLACE): _S.PENDING_REPLACE,
            (_S.SUSPENDED, _K.CONFIRM_PENDING_REPLACE): _S.PENDING_REPLACE,
            (_S.SUSPENDED, _K.EXPIRE): _S.EXPIRED,
            (_S.SUSPENDED, _K.RESTATE): WORKING,
            # canceled, expired: final, but the venue may still correct or bust a fill
            (_S.CANCELED, _K.CORRECT_FILL): UNCHANGED,
            (_S.CANCELED, _K.BUST_FILL): UNCHANGED,
            (_S.EXPIRED, _K.CORRECT_FILL): UNCHANGED,
            (_S.EXPIRED, _K.BUST_FILL): UNCHANGED,
        }
    )
)


# every status the table moves an order to is a condition, a pending request or a Target
assert all(
    isinstance(t, Target)
    or t in CONDITIONS
    or t in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)
    for t in TRANSITIONS.values()
)


def allowed_commands(status: OrderStatus | None) -> tuple[CommandKind, ...]:
    """The commands the table allows in a status (None: no order yet), in CommandKind order."""
    return tuple(kind for kind in CommandKind if (status, kind) in TRANSITIONS)


class IllegalTransition(Refused):
    """A command the transition table does not allow in the order's status (exit 4)."""

    def __init__(self, order: Order | None, command: CommandKind) -> None:
        self.order_id = None if order is None else order.order_id
        self.status = None if order is None else order.status
        self.command = command
        if order is None:
            action = f"{command}"
            reason = "there is no such order; only submit creates one"
        else:
            action = f"{command} on order {order.order_id}"
            reason = (
                f"order {order.order_id} (client order id {order.client_order_id}) is "
                f"{order.status}; {command} is not allowed in that status "
            )
            if command in (CommandKind.REQUEST_CANCEL, CommandKind.REQUEST_REPLACE):
                # the client's own requests: say why in its words, not the venue's commands
                if order.pending is not None:
                    reason += (
                        f"(a {order.pending.kind.value} request is pending: wait for the "
                        "venue's answer to it)"
                    )
                else:
                    reason += "(it is finished: nothing is left to cancel or replace)"
            else:
                allowed = ", ".join(allowed_commands(order.status)) or "nothing"
                reason += f"(allowed: {allowed})"
        super().__init__(action, reason, "illegal_transition")


class Transition(NamedTuple):
    """The result of an accepted command."""

    order: Order  # the order after the command
    event: Event
    previous: OrderStatus | None  # the status before (None for a submit)


# --------------------------------------------------------------------------------------------
# decide
# --------------------------------------------------------------------------------------------


class _Effect(NamedTuple):
    """What a command changes besides condition and request (None: unchanged). An immutable
    tuple: made for every transition, cheaper to build than a frozen dataclass."""

    reason: str
    fills: tuple[Fill, ...] | None = None
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: ClientOrderId | None = None
    pending: PendingRequest | None = None  # the request a pending_* target opens
    reject_reason: str | None = None


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}: pass a timezone-aware time")
    return at.astimezone(UTC)


def _refused(order: Order, command: CommandKind, why: str, code: str) -> Refused:
    return Refused(f"{command} on order {order.order_id}", why, code)


def _with_reason(text: str, reason: str | None) -> str:
    return f"{text}: {reason}" if reason else text


def decide(order: Order | None, command: Command, at: datetime, actor: str) -> Transition:
    """Apply one command to an order (None for a SubmitOrder) at time ``at`` by ``actor``.

    Looks the pair (status, command kind) up in ``TRANSITIONS``; refuses a missing pair with
    IllegalTransition (exit 4), a fill beyond leaves_qty, a duplicate or unknown execution and
    a cancel or expiry with nothing left with Refused (exit 4, ``code`` says which), malformed
    terms with BadInput (exit 3). Otherwise returns the new Order with one history entry
    appended; the input order is immutable and never changes. ``at`` must be timezone-aware.
    """
    at = _utc(at)
    kind = command.kind
    previous = None if order is None else order.status
    target = TRANSITIONS.get((previous, kind))
    if target is None:
        raise IllegalTransition(order, kind)
    event = EVENTS[kind]
    if isinstance(command, SubmitOrder):
        return Transition(_open(command, at, actor, event), event, None)
    assert order is not None  # only submit is allowed without an order
    effect = _effect(order, command, at)
    return Transition(_next(order, effect, target, at, actor, event), event, previous)


def _open(command: SubmitOrder, at: datetime, actor: str, event: Event) -> Order:
    # named by the client's id; without one (it defaults to the order id) by no id: a refused
    # submission makes no order, and the id it would have had goes to the next one
    cid = command.client_order_id
    what = "order submit" if str(cid) == str(command.order_id) else f"order {cid}"
    _check_terms(command.type, command.quantity, command.limit_price, command.stop_price, what)
    if (command.tif is TimeInForce.GTD) != (command.expire_at is not None):
        raise BadInput(what, "an expiry date is needed for tif gtd, and only for it")
    if command.expire_at is not None and command.expire_at < at.date():
        # the expire date is the last day the order may trade: one already past never can
        raise BadInput(
            what, f"expire date {command.expire_at} is before today ({at.date()}, UTC)"
        )
    status = OrderStatus.PENDING_NEW
    fields: dict[str, Any] = {
        "order_id": command.order_id,
        "client_order_id": command.client_order_id,
        "account": command.account,
        "symbol": command.symbol,
        "side": command.side,
        "type": command.type,
        "tif": command.tif,
        "quantity": command.quantity,
        "limit_price": command.limit_price,
        "stop_price": command.stop_price,
        "expire_at": command.expire_at,
        "venue": command.venue,
        "status": status,
        "condition": status,
        "cum_qty": ZERO,
        "leaves_qty": command.quantity,
        "avg_px": None,
        "pending": None,
        "fills": (),
        "reject_reason": None,
        "created_at": at,
        "updated_at": at,
        "history": (
            HistoryEntry(status, at, actor, _with_reason("submitted", command.reason), event),
        ),
        "submitted": command,
    }
    return _derived(fields)


def _next(
    order: Order,
    effect: _Effect,
    target: OrderStatus | Target,
    at: datetime,
    actor: str,
    event: Event,
) -> Order:
    condition, pending = order.condition, order.pending
    if condition is OrderStatus.PENDING_NEW and event in _ACKED:
        condition = None  # the venue has the order: no longer pending_new underneath a request
    if condition is OrderStatus.DONE_FOR_DAY and event is Event.FILL_APPLIED:
        condition = None  # a fill renews the order, underneath a request as without one
    if target in (Target.WORKING, Target.WORKING_UNDER_REQUEST):
        condition = None  # (an open request stays open: WORKING_UNDER_REQUEST)
    elif target is Target.RESUMED:
        pending = effect.pending  # the request left open when one of two is answered, or None
    elif target in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
        pending = effect.pending
        assert pending is not None
    elif target is Target.UNCHANGED:
        if effect.pending is not None:  # a pending report names the open request's ClOrdID
            pending = effect.pending
    elif target is Target.DONE_UNDER_REQUEST:
        condition = OrderStatus.DONE_FOR_DAY
    elif target is Target.SUSPENDED_UNDER_REQUEST:
        condition = OrderStatus.SUSPENDED
    else:
        condition = OrderStatus(target)
        pending = None
    fills = order.fills if effect.fills is None else effect.fills
    quantity = order.quantity if effect.quantity is None else effect.quantity
    cum_qty = _sum_quantity(fills)
    if condition in (OrderStatus.DONE_FOR_DAY, OrderStatus.SUSPENDED) and cum_qty >= quantity:
        # nothing left to work (a correction up to the whole, a replace or restatement down
        # to what filled): filled, not done for the day, so that nothing is asked to cancel
        condition = None
    status = _status(pending, condition, cum_qty, quantity)
    return _derived(
        {
            "order_id": order.order_id,
            "client_order_id": effect.client_order_id or order.client_order_id,
            "account": order.account,
            "symbol": order.symbol,
            "side": order.side,
            "type": order.type,
            "tif": order.tif,
            "quantity": quantity,
            "limit_price": order.limit_price if effect.limit_price is None else effect.limit_price,
            "stop_price": order.stop_price if effect.stop_price is None else effect.stop_price,
            "expire_at": order.expire_at,
            "venue": order.venue,
            "status": status,
            "condition": condition,
            "cum_qty": cum_qty,
            "leaves_qty": _leaves(quantity, cum_qty, condition),
            "avg_px": average_price(fills),
            "pending": pending,
            "fills": fills,
            "reject_reason": effect.reject_reason or order.reject_reason,
            "created_at": order.created_at,
            "updated_at": at,
            "history": (*order.history, HistoryEntry(status, at, actor, effect.reason, event)),
            "submitted": order.submitted,
        }
    )


def _find_fill(order: Order, kind: CommandKind, exec_ref_id: ExecId) -> int:
    index = known_fill(order.fills, exec_ref_id)
    if index is not None:
        return index
    raise _refused(
        order,
        kind,
        f"execution {exec_ref_id} is not a live fill of order {order.order_id}",
        "unknown_execution",
    )


def _check_new_exec_id(order: Order, kind: CommandKind, exec_id: ExecId) -> None:
    if known_fill(order.fills, exec_id) is not None:
        raise _refused(
            order,
            kind,
            f"execution {exec_id} is booked on order {order.order_id} already",
            "duplicate_execution",
        )


def _check_not_overfilled(order: Order, kind: CommandKind, cum_qty: Decimal, what: str) -> None:
    if cum_qty > order.quantity:
        raise _refused(
            order,
            kind,
            f"{what} would fill {cum_qty} of order {order.order_id}'s quantity {order.quantity} "
            f"(cum_qty {order.cum_qty}, leaves_qty {order.leaves_qty})",
            "overfill",
        )


def _check_something_left(order: Order, kind: CommandKind) -> None:
    if not order.leaves_qty > 0:
        raise _refused(
            order,
            kind,
            f"order {order.order_id} has nothing left (cum_qty {order.cum_qty} of "
            f"{order.quantity}); a venue answers this with a cancel reject, too late to cancel",
            "nothing_left",
        )


def _new_terms(
    order: Order,
    quantity: Decimal | None,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
) -> tuple[Decimal, str]:
    """The quantity a replace or restatement leaves (never below cum_qty: FIX amends the
    order quantity to cum_qty) and a description of the change (of the terms that change: a
    venue's replace repeats the ones it keeps)."""
    parts: list[str] = []
    new_quantity = order.quantity
    if quantity is not None:
        new_quantity = max(quantity, order.cum_qty)
        part = f"quantity {order.quantity} -> {new_quantity}"
        if quantity < order.cum_qty:
            part += f" (requested {quantity} is below cum_qty: amended to cum_qty)"
        if new_quantity != order.quantity or quantity < order.cum_qty:
            parts.append(part)
    if limit_price is not None and limit_price != order.limit_price:
        parts.append(f"limit {order.limit_price} -> {limit_price}")
    if stop_price is not None and stop_price != order.stop_price:
        parts.append(f"stop {order.stop_price} -> {stop_price}")
    return new_quantity, ", ".join(parts) or "terms unchanged"


def _effect(order: Order, command: Command, at: datetime) -> _Effect:
    kind = command.kind
    what = f"{kind} on order {order.order_id}"
    match command:
        case AcknowledgeOrder(reason=reason):
            return _Effect(_with_reason(f"acknowledged by {order.venue}", reason))
        case ApplyFill(exec_id=exec_id, quantity=quantity, price=price, reason=reason):
            if order.condition is OrderStatus.SUSPENDED:  # under an open request (the table
                raise _refused(  # refuses a fill of a suspended order without one)
                    order,
                    kind,
                    f"order {order.order_id} is suspended (under its open {order.status.value} "
                    "request): a suspended order takes no fill until the venue restates it",
                    "suspended",
                )
            _check_fill_numbers(quantity, price, f"execution {exec_id}")
            _check_new_exec_id(order, kind, exec_id)
            if quantity > order.leaves_qty:
                raise _refused(
                    order,
                    kind,
                    f"fill {exec_id} of {quantity} exceeds leaves_qty {order.leaves_qty} "
                    f"(quantity {order.quantity}, cum_qty {order.cum_qty})",
                    "overfill",
                )
            fills = with_fill(order.fills, Fill(exec_id, quantity, price, at))
            return _Effect(_with_reason(f"fill {exec_id}: {quantity} @ {price}", reason), fills)
        case RejectOrder(reason=reason):
            if order.condition is not OrderStatus.PENDING_NEW:  # under an open request
                raise _refused(
                    order,
                    kind,
                    f"order {order.order_id} was acknowledged by the venue already: a reject "
                    "(ExecType 8) answers an order the venue has not taken; a cancel ends it",
                    "already_acknowledged",
                )
            return _Effect(_with_reason("rejected", reason), reject_reason=reason)
        case RequestCancel(new_client_order_id=new_id, reason=reason):
            # behind an open replace (the table allows no other open request): chained, with
            # an id of its own; without one the venue names it by the order's name, which the
            # replace changes, and its answers could not be told from a repeat of an older
            # cancel's answer
            under = order.pending
            if under is not None and new_id is None:
                raise _refused(
                    order,
                    kind,
                    f"order {order.order_id} has a replace request open: a cancel behind it "
                    "needs a client order id of its own (--new-client-order-id), so that the "
                    "venue's answers to the two requests can be told apart",
                    "cancel_needs_client_order_id",
                )
            pending = PendingRequest(RequestKind.CANCEL, at, new_id, under=under)
            text = "cancel requested" if under is None else "cancel requested behind the replace"
            return _Effect(_with_reason(text + _as_id(new_id), reason), pending=pending)
        case ConfirmPendingCancel(reason=reason, client_order_id=client_id):
            pending = _confirmed(order, RequestKind.CANCEL, at, client_id)
            return _Effect(
                _with_reason("venue reports the cancel pending", reason), pending=pending
            )
        case AcceptCancel(client_order_id=client_id, reason=reason):
            _check_something_left(order, kind)
            request = order.pending
            solicited = request is not None and request.kind is RequestKind.CANCEL
            if client_id is None and request is not None and solicited:
                client_id = request.client_order_id
            text = "canceled" if solicited else "canceled (unsolicited)"
            text += _renamed(order, client_id)
            return _Effect(_with_reason(text, reason), client_order_id=client_id)
        case RejectCancel(reason=reason):
            # a replace the cancel was chained behind is still open: it shows again
            under = None if order.pending is None else order.pending.under
            return _Effect(_with_reason("cancel rejected", reason), pending=under)
        case RequestReplace(
            quantity=quantity,
            limit_price=limit,
            stop_price=stop,
            new_client_order_id=new_id,
            reason=reason,
        ):
            if quantity is None and limit is None and stop is None:
                raise BadInput(what, "a replace needs a new quantity, limit or stop price")
            if (
                new_id is None
                and quantity in (None, order.quantity)
                and limit in (None, order.limit_price)
                and stop in (None, order.stop_price)
            ):  # nothing for the venue to do: not recorded as a replace
                change = ", ".join(
                    f"{name} {before} -> {after}"
                    for name, before, after in (
                        ("quantity", order.quantity, quantity),
                        ("limit", order.limit_price, limit),
                        ("stop", order.stop_price, stop),
                    )
                    if after is not None
                )
                raise BadInput(what, f"the replace changes nothing ({change})")
            _check_terms(
                order.type,
                quantity,
                limit if limit is not None else order.limit_price,
                stop if stop is not None else order.stop_price,
                what,
            )
            pending = PendingRequest(RequestKind.REPLACE, at, new_id, quantity, limit, stop)
            _, change = _new_terms(order, quantity, limit, stop)
            text = f"replace requested: {change}{_as_id(new_id)}"
            return _Effect(_with_reason(text, reason), pending=pending)
        case ConfirmPendingReplace(reason=reason, client_order_id=client_id):
            text = "venue reports the replace pending"
            chained = _chained(order, kind)
            if chained is not None:  # the replace under the cancel
                cancel, under = chained
                confirmed = _confirmed(order, RequestKind.REPLACE, at, client_id, under)
                return _Effect(
                    _with_reason(text, reason), pending=dataclasses.replace(cancel, under=confirmed)
                )
            pending = _confirmed(order, RequestKind.REPLACE, at, client_id)
            return _Effect(_with_reason(text, reason), pending=pending)
        case AcceptReplace(
            quantity=quantity, limit_price=limit, stop_price=stop, client_order_id=client_id
        ):
            chained = _chained(order, kind)
            request = order.pending if chained is None else chained[1]
            assert request is not None  # the table allows accept_replace only when pending
            assert request.kind is RequestKind.REPLACE
            quantity = quantity if quantity is not None else request.quantity
            limit = limit if limit is not None else request.limit_price
            stop = stop if stop is not None else request.stop_price
            client_id = client_id or request.client_order_id
            done = _replaced(order, what, "replaced", quantity, limit, stop, client_id, command)
            if chained is None:
                return done
            # the cancel chained behind it stays open, now over the replaced order
            stays = dataclasses.replace(chained[0], under=None)
            text = f"{done.reason} (the cancel behind it stays open)"
            return done._replace(reason=text, pending=stays)
        case RejectReplace(reason=reason):
            chained = _chained(order, kind)
            if chained is None:
                return _Effect(_with_reason("replace rejected", reason))
            stays = dataclasses.replace(chained[0], under=None)
            text = "replace rejected (the cancel behind it stays open)"
            return _Effect(_with_reason(text, reason), pending=stays)
        case CorrectFill(
            exec_id=exec_id, exec_ref_id=ref, quantity=quantity, price=price, reason=reason
        ):
            _check_fill_numbers(quantity, price, f"execution {exec_id}")
            _check_new_exec_id(order, kind, exec_id)
            index = _find_fill(order, kind, ref)
            old = order.fills[index]
            with localcontext(EXACT):
                cum_qty = order.cum_qty - old.quantity + quantity
            _check_not_overfilled(order, kind, cum_qty, f"correction {exec_id}")
            new = old._replace(
                quantity=quantity, price=price, corrected_by=(*old.corrected_by, exec_id)
            )
            fills = (*order.fills[:index], new, *order.fills[index + 1 :])
            text = (
                f"fill {old.exec_id} corrected by {exec_id}: {old.quantity} @ {old.price} -> "
                f"{quantity} @ {price}"
            )
            return _Effect(_with_reason(text, reason), fills)
        case BustFill(exec_id=exec_id, exec_ref_id=ref, reason=reason):
            index = _find_fill(order, kind, ref)
            old = order.fills[index]
            fills = (*order.fills[:index], *order.fills[index + 1 :])
            text = f"fill {old.exec_id} busted by {exec_id}: {old.quantity} @ {old.price}"
            return _Effect(_with_reason(text, reason), fills)
        case Expire(reason=reason):
            _check_something_left(order, kind)
            return _Effect(_with_reason("expired", reason))
        case MarkDoneForDay(reason=reason):
            _check_worked(order, kind, "done for day (ExecType 3)", OrderStatus.SUSPENDED)
            return _Effect(_with_reason("done for day", reason))
        case Suspend(reason=reason):
            _check_worked(order, kind, "a suspension (ExecType 9)", OrderStatus.DONE_FOR_DAY)
            return _Effect(_with_reason("suspended", reason))
        case TriggerOrder(reason=reason):
            if order.type not in (OrdType.STOP, OrdType.STOP_LIMIT):
                raise _refused(
                    order,
                    kind,
                    f"order {order.order_id} is a {order.type.value} order: only stop and "
                    "stop-limit orders trigger",
                    "not_a_stop",
                )
            if triggered(order):
                raise _refused(
                    order, kind, f"order {order.order_id} has triggered already", "triggered"
                )
            return _Effect(_with_reason(f"triggered at stop {order.stop_price}", reason))
        case Restate(quantity=quantity, limit_price=limit, stop_price=stop):
            _check_acknowledged(order, kind, "a restatement (ExecType D)")
            return _replaced(order, what, "restated", quantity, limit, stop, None, command)
        case SubmitOrder():  # pragma: no cover - decide handles submit before
            raise AssertionError("submit is not an effect")


def _check_worked(order: Order, kind: CommandKind, what: str, other: OrderStatus) -> None:
    """Done for day and a suspension are of an order the venue works, with quantity to work;
    under an open request too (the table lets them through there), and neither replaces the
    `other` condition."""
    _not_under(order, kind, other)
    _check_acknowledged(order, kind, what)
    if not order.leaves_qty > 0:  # filled under an open request
        raise _refused(
            order,
            kind,
            f"order {order.order_id} has nothing left (cum_qty {order.cum_qty} of "
            f"{order.quantity}): {what} is for an order with quantity to work",
            "nothing_left",
        )


def _chained(
    order: Order, kind: CommandKind
) -> tuple[PendingRequest, PendingRequest] | None:
    """(the cancel, the replace under it) when the order's open cancel is chained behind a
    replace; None when the open request is a replace. A replace's answer (E, 5, a replace
    reject) while a cancel is open with no replace under it answers no request: refused."""
    pending = order.pending
    if pending is None or pending.kind is RequestKind.REPLACE:
        return None
    if pending.under is None:
        raise _refused(
            order,
            kind,
            f"order {order.order_id} has a cancel request open and no replace: {kind} "
            "answers a replace request",
            "illegal_transition",
        )
    return pending, pending.under


def _check_acknowledged(order: Order, kind: CommandKind, what: str) -> None:
    """`what` is for an order the venue works: refused for one still pending_new underneath an
    open request (the table refuses it without one)."""
    if order.condition is OrderStatus.PENDING_NEW:
        raise _refused(
            order,
            kind,
            f"order {order.order_id} was never acknowledged by the venue: {what} is for an "
            "order the venue works",
            "not_acknowledged",
        )


def _not_under(order: Order, kind: CommandKind, condition: OrderStatus) -> None:
    """Under an open request, refuse what the table refuses of an order in `condition` without
    one (a suspension of an order done for the day, and the other way round): the request does
    not change what the condition underneath allows."""
    if order.condition is condition and order.pending is not None:
        raise _refused(
            order,
            kind,
            f"order {order.order_id} is {condition.value} under its open {order.status.value} "
            f"request: {kind} is not allowed in {condition.value}, with a request as without",
            "illegal_transition",
        )


def _as_id(new_id: ClientOrderId | None) -> str:
    """A request's own client order id, in its history entry (which id the venue's answers
    name, and the order's name once the request is accepted)."""
    return "" if new_id is None else f" as {new_id}"


def _renamed(order: Order, client_id: ClientOrderId | None) -> str:
    """An accepted request's new client order id, in its history entry: the order's name
    changes (FIX 11), and `order show` lists every name the order had."""
    if client_id is None or client_id == order.client_order_id:
        return ""
    return f"; client order id {order.client_order_id} -> {client_id}"


def _replaced(
    order: Order,
    what: str,
    verb: str,
    quantity: Decimal | None,
    limit: Decimal | None,
    stop: Decimal | None,
    client_id: ClientOrderId | None,
    command: AcceptReplace | Restate,
) -> _Effect:
    _check_terms(
        order.type,
        quantity,
        limit if limit is not None else order.limit_price,
        stop if stop is not None else order.stop_price,
        what,
    )
    new_quantity, change = _new_terms(order, quantity, limit, stop)
    return _Effect(
        _with_reason(f"{verb}: {change}{_renamed(order, client_id)}", command.reason),
        quantity=new_quantity,
        limit_price=limit,
        stop_price=stop,
        client_order_id=client_id,
    )


# --------------------------------------------------------------------------------------------
# Helpers for the store and the venues
# --------------------------------------------------------------------------------------------


def _terms(command: SubmitOrder) -> tuple[object, ...]:
    return (
        command.client_order_id,
        command.account,
        command.symbol,
        command.side,
        command.type,
        command.tif,
        command.quantity,
        command.limit_price,
        command.stop_price,
        command.expire_at,
        command.venue,
    )


def same_terms(order: Order, command: SubmitOrder) -> bool:
    """Whether a submit repeats the order's submission exactly (every term but the order id,
    decimals compared by value: 100 == 100.00). The store answers a repeat with the first order
    ("duplicate") and refuses the same client order id with other terms. The comparison is with
    the order as first submitted, whatever replaces happened since."""
    return _terms(order.submitted) == _terms(command)


def triggered(order: Order) -> bool:
    """Whether a stop or stop-limit order has triggered: its trigger is in its history, or it
    has filled (a stop fills only once triggered). False for any other type."""
    if order.type not in (OrdType.STOP, OrdType.STOP_LIMIT):
        return False
    return order.cum_qty > 0 or any(h.event is Event.ORDER_TRIGGERED for h in order.history)


def gtd_expired(order: Order, today: date) -> bool:
    """A live GTD order whose expiry date lies before ``today``: the venue should expire it."""
    return (
        order.live
        and order.tif is TimeInForce.GTD
        and order.expire_at is not None
        and order.expire_at < today
    )


def fok_fill_ok(order: Order, quantity: Decimal) -> bool:
    """Whether a venue may fill ``quantity`` of an order with regard to its time in force:
    fill-or-kill only in one fill of the whole quantity; the others up to leaves_qty."""
    if order.tif is TimeInForce.FOK:
        return order.cum_qty == 0 and quantity == order.quantity
    return 0 < quantity <= order.leaves_qty
