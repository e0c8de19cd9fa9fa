"""Order lifecycle (oms.orders): FIX 4.4 "Order State Change Matrices" (Volume 4, Appendix D)
as tables, the transition table cell by cell, refusals, and hypothesis properties.

Every number is a Decimal made from a string or an int (hypothesis draws integers and scales
them by a power of ten), never from a float.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oms.orders
from oms.errors import BadInput, Refused, TieoutError
from oms.orders import (
    CONDITIONS,
    EVENTS,
    EXEC_TYPE_COMMANDS,
    STATUS_PRECEDENCE,
    TERMINAL,
    TRANSITIONS,
    AcceptCancel,
    AcceptReplace,
    AcknowledgeOrder,
    ApplyFill,
    BustFill,
    ClientOrderId,
    Command,
    CommandKind,
    ConfirmPendingCancel,
    ConfirmPendingReplace,
    CorrectFill,
    Event,
    ExecType,
    Expire,
    Fill,
    IllegalTransition,
    MarkDoneForDay,
    Order,
    OrderId,
    OrderStatus,
    OrdType,
    RejectCancel,
    RejectOrder,
    RejectReplace,
    RequestCancel,
    RequestKind,
    RequestReplace,
    Restate,
    SubmitOrder,
    Suspend,
    Target,
    TimeInForce,
    TriggerOrder,
    allowed_commands,
    average_price,
    decide,
    fok_fill_ok,
    gtd_expired,
    reported_status,
    same_terms,
    triggered,
)
from oms.values import AccountId, ExecId, Side, Symbol, Venue

D = Decimal
S = OrderStatus
K = CommandKind
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
ACTOR = "ops"


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def submit(
    quantity: str | Decimal = "10000",
    *,
    client_order_id: str = "C1",
    type: OrdType = OrdType.LIMIT,
    limit: str | Decimal | None = "50",
    stop: str | Decimal | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    expire_at: date | None = None,
    account: str = "ACC1",
    venue: str = "XNAS",
) -> SubmitOrder:
    return SubmitOrder(
        order_id=OrderId("O1"),
        client_order_id=ClientOrderId(client_order_id),
        account=AccountId(account),
        symbol=Symbol("XYZ"),
        side=Side.BUY,
        quantity=D(quantity),
        type=type,
        tif=tif,
        limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop),
        expire_at=expire_at,
        venue=Venue(venue),
    )


def fill(exec_id: str, quantity: str, price: str) -> ApplyFill:
    return ApplyFill(ExecId(exec_id), D(quantity), D(price))


def correct(exec_id: str, ref: str, quantity: str, price: str) -> CorrectFill:
    return CorrectFill(ExecId(exec_id), ExecId(ref), D(quantity), D(price))


def bust(exec_id: str, ref: str) -> BustFill:
    return BustFill(ExecId(exec_id), ExecId(ref))


def replace(
    quantity: str | None = None, limit: str | None = None, new_id: str | None = None
) -> RequestReplace:
    return RequestReplace(
        quantity=None if quantity is None else D(quantity),
        limit_price=None if limit is None else D(limit),
        new_client_order_id=None if new_id is None else ClientOrderId(new_id),
    )


def apply(commands: Sequence[Command], order: Order | None = None) -> Order:
    for i, command in enumerate(commands):
        order = decide(order, command, T0 + timedelta(seconds=i), ACTOR).order
    assert order is not None
    return order


def state(order: Order) -> tuple[OrderStatus, Decimal, Decimal, Decimal | None]:
    return (order.status, order.cum_qty, order.leaves_qty, order.avg_px)


# --------------------------------------------------------------------------------------------
# Appendix D scenarios: (command, status, cum_qty, leaves_qty, avg_px) per step
# --------------------------------------------------------------------------------------------

Step = tuple[Command, OrderStatus, str, str, str | None]

SUBMITTED: Step = (submit(), S.PENDING_NEW, "0", "10000", None)
ACKED: Step = (AcknowledgeOrder(), S.NEW, "0", "10000", None)
OPEN: list[Step] = [SUBMITTED, ACKED]

SCENARIOS: dict[str, list[Step]] = {
    # D1: filled order
    "filled order": [
        *OPEN,
        (fill("E1", "2000", "50"), S.PARTIALLY_FILLED, "2000", "8000", "50"),
        (fill("E2", "1000", "51"), S.PARTIALLY_FILLED, "3000", "7000", "50.333333333333"),
        (fill("E3", "7000", "52"), S.FILLED, "10000", "0", "51.5"),
    ],
    "venue rejection": [
        SUBMITTED,
        (RejectOrder("unknown symbol"), S.REJECTED, "0", "0", None),
    ],
    "fill before the acknowledgement (implicit ack)": [
        SUBMITTED,
        (fill("E1", "2000", "50"), S.PARTIALLY_FILLED, "2000", "8000", "50"),
    ],
    # D3: cancel request issued for a zero-filled order
    "zero-filled cancel": [
        *OPEN,
        (RequestCancel(ClientOrderId("C2")), S.PENDING_CANCEL, "0", "10000", None),
        (ConfirmPendingCancel(), S.PENDING_CANCEL, "0", "10000", None),
        (AcceptCancel(), S.CANCELED, "0", "0", None),
    ],
    # D3, rejected branch
    "zero-filled cancel rejected": [
        *OPEN,
        (RequestCancel(ClientOrderId("C2")), S.PENDING_CANCEL, "0", "10000", None),
        (RejectCancel("not allowed now"), S.NEW, "0", "10000", None),
    ],
    # D4: cancel request for a part-filled order, executions while the cancel is active
    "executions while pending cancel, then canceled": [
        *OPEN,
        (fill("E1", "2000", "50"), S.PARTIALLY_FILLED, "2000", "8000", "50"),
        (fill("E2", "3000", "50"), S.PARTIALLY_FILLED, "5000", "5000", "50"),
        (RequestCancel(), S.PENDING_CANCEL, "5000", "5000", "50"),
        (fill("E3", "1000", "51"), S.PENDING_CANCEL, "6000", "4000", "50.166666666667"),
        (AcceptCancel(), S.CANCELED, "6000", "0", "50.166666666667"),
    ],
    "executions while pending cancel, then cancel rejected": [
        *OPEN,
        (fill("E1", "2000", "50"), S.PARTIALLY_FILLED, "2000", "8000", "50"),
        (RequestCancel(), S.PENDING_CANCEL, "2000", "8000", "50"),
        (fill("E2", "1000", "53"), S.PENDING_CANCEL, "3000", "7000", "51"),
        (RejectCancel(), S.PARTIALLY_FILLED, "3000", "7000", "51"),
    ],
    # D5: the order is filled before the cancel can be accepted; too late to cancel
    "filled while pending cancel, cancel rejected too late": [
        *OPEN,
        (fill("E1", "2000", "50"), S.PARTIALLY_FILLED, "2000", "8000", "50"),
        (RequestCancel(), S.PENDING_CANCEL, "2000", "8000", "50"),
        (fill("E2", "8000", "51"), S.PENDING_CANCEL, "10000", "0", "50.8"),
        (RejectCancel("too late to cancel"), S.FILLED, "10000", "0", "50.8"),
    ],
    # D6: zero-filled order, cancel/replace to increase the quantity
    "replace increasing quantity, zero filled": [
        *OPEN,
        (replace("11000", new_id="C2"), S.PENDING_REPLACE, "0", "10000", None),
        (ConfirmPendingReplace(), S.PENDING_REPLACE, "0", "10000", None),
        (AcceptReplace(), S.NEW, "0", "11000", None),
        (fill("E1", "1000", "50"), S.PARTIALLY_FILLED, "1000", "10000", "50"),
    ],
    # D7/D8: part-filled order, replace increasing the quantity, a fill passes the request
    "replace increasing quantity while partially filled": [
        *OPEN,
        (fill("E1", "1000", "50"), S.PARTIALLY_FILLED, "1000", "9000", "50"),
        (replace("12000"), S.PENDING_REPLACE, "1000", "9000", "50"),
        (fill("E2", "1000", "50"), S.PENDING_REPLACE, "2000", "8000", "50"),
        (AcceptReplace(), S.PARTIALLY_FILLED, "2000", "10000", "50"),
    ],
    # D10: part-filled order, replace decreasing the quantity
    "replace decreasing quantity while partially filled": [
        *OPEN,
        (fill("E1", "1000", "50"), S.PARTIALLY_FILLED, "1000", "9000", "50"),
        (replace("8000"), S.PENDING_REPLACE, "1000", "9000", "50"),
        (fill("E2", "500", "51"), S.PENDING_REPLACE, "1500", "8500", "50.333333333333"),
        (AcceptReplace(), S.PARTIALLY_FILLED, "1500", "6500", "50.333333333333"),
    ],
    # replace of the limit price while partially filled, then filled at the new limit
    "replace limit while partially filled": [
        *OPEN,
        (fill("E1", "3000", "50"), S.PARTIALLY_FILLED, "3000", "7000", "50"),
        (replace(limit="49.5"), S.PENDING_REPLACE, "3000", "7000", "50"),
        (AcceptReplace(), S.PARTIALLY_FILLED, "3000", "7000", "50"),
        (fill("E2", "7000", "49.5"), S.FILLED, "10000", "0", "49.65"),
    ],
    # D9: replace (not of the quantity) rejected because a fill has occurred
    "replace rejected as the order filled": [
        *OPEN,
        (fill("E1", "1000", "50"), S.PARTIALLY_FILLED, "1000", "9000", "50"),
        (replace(limit="51"), S.PENDING_REPLACE, "1000", "9000", "50"),
        (fill("E2", "9000", "50"), S.PENDING_REPLACE, "10000", "0", "50"),
        (RejectReplace("too late to cancel"), S.FILLED, "10000", "0", "50"),
    ],
    # D11: replace to a quantity equal to cum_qty while an execution is reported: filled
    "replace to cum_qty": [
        *OPEN,
        (replace("7000"), S.PENDING_REPLACE, "0", "10000", None),
        (fill("E1", "7000", "50"), S.PENDING_REPLACE, "7000", "3000", "50"),
        (AcceptReplace(), S.FILLED, "7000", "0", "50"),
    ],
    # D12: replace to a quantity below cum_qty: the quantity is amended to cum_qty, filled
    "replace below cum_qty": [
        *OPEN,
        (replace("5000"), S.PENDING_REPLACE, "0", "10000", None),
        (fill("E1", "7000", "50"), S.PENDING_REPLACE, "7000", "3000", "50"),
        (AcceptReplace(), S.FILLED, "7000", "0", "50"),
    ],
    # D19: unsolicited cancel of a part-filled order (verbal agreement with the broker)
    "unsolicited cancel": [
        *OPEN,
        (fill("E1", "1000", "50"), S.PARTIALLY_FILLED, "1000", "9000", "50"),
        (AcceptCancel(reason="verbal change"), S.CANCELED, "1000", "0", "50"),
    ],
    "cancel pending reported by the venue alone": [
        *OPEN,
        (ConfirmPendingCancel(), S.PENDING_CANCEL, "0", "10000", None),
        (AcceptCancel(), S.CANCELED, "0", "0", None),
    ],
    # D24/D25-like: a partially filled day order expires at the end of the day
    "expiry of a partially filled day order": [
        *OPEN,
        (fill("E1", "3000", "50"), S.PARTIALLY_FILLED, "3000", "7000", "50"),
        (Expire("end of day"), S.EXPIRED, "3000", "0", "50"),
    ],
    # D26: GTC order partially filled, done for day, restated (renewed), filled the next day
    "done for day, restated, filled the next day": [
        (submit(tif=TimeInForce.GTC), S.PENDING_NEW, "0", "10000", None),
        ACKED,
        (fill("E1", "2000", "50"), S.PARTIALLY_FILLED, "2000", "8000", "50"),
        (MarkDoneForDay(), S.DONE_FOR_DAY, "2000", "8000", "50"),
        (Restate(reason="GT renewal"), S.PARTIALLY_FILLED, "2000", "8000", "50"),
        (fill("E2", "3000", "51"), S.PARTIALLY_FILLED, "5000", "5000", "50.6"),
    ],
    "cancel of a done for day order rejected: back to done for day": [
        *OPEN,
        (fill("E1", "2000", "50"), S.PARTIALLY_FILLED, "2000", "8000", "50"),
        (MarkDoneForDay(), S.DONE_FOR_DAY, "2000", "8000", "50"),
        (RequestCancel(), S.PENDING_CANCEL, "2000", "8000", "50"),
        (RejectCancel(), S.DONE_FOR_DAY, "2000", "8000", "50"),
    ],
    "fill after done for day renews the order": [
        *OPEN,
        (MarkDoneForDay(), S.DONE_FOR_DAY, "0", "10000", None),
        (fill("E1", "1000", "50"), S.PARTIALLY_FILLED, "1000", "9000", "50"),
    ],
    "suspended and restated": [
        *OPEN,
        (fill("E1", "1000", "50"), S.PARTIALLY_FILLED, "1000", "9000", "50"),
        (Suspend(), S.SUSPENDED, "1000", "9000", "50"),
        (Restate(), S.PARTIALLY_FILLED, "1000", "9000", "50"),
    ],
    # D31-D33-like: trade correction and trade cancel (bust) recompute cum, leaves, avg_px
    "trade correction and bust": [
        *OPEN,
        (fill("E1", "1000", "100"), S.PARTIALLY_FILLED, "1000", "9000", "100"),
        (fill("E2", "2000", "101"), S.PARTIALLY_FILLED, "3000", "7000", "100.666666666667"),
        (correct("E3", "E1", "1500", "99"), S.PARTIALLY_FILLED, "3500", "6500", "100.142857142857"),
        (bust("E4", "E2"), S.PARTIALLY_FILLED, "1500", "8500", "99"),
        (correct("E5", "E3", "1000", "98"), S.PARTIALLY_FILLED, "1000", "9000", "98"),
    ],
    "bust of the only fill of a filled order": [
        *OPEN,
        (fill("E1", "10000", "50"), S.FILLED, "10000", "0", "50"),
        (bust("E2", "E1"), S.NEW, "0", "10000", None),
        (fill("E3", "10000", "51"), S.FILLED, "10000", "0", "51"),
    ],
    "bust of one fill of a filled order": [
        *OPEN,
        (fill("E1", "4000", "50"), S.PARTIALLY_FILLED, "4000", "6000", "50"),
        (fill("E2", "6000", "55"), S.FILLED, "10000", "0", "53"),
        (bust("E3", "E2"), S.PARTIALLY_FILLED, "4000", "6000", "50"),
    ],
    "correction of a filled order down": [
        *OPEN,
        (fill("E1", "10000", "50"), S.FILLED, "10000", "0", "50"),
        (correct("E2", "E1", "8000", "50"), S.PARTIALLY_FILLED, "8000", "2000", "50"),
    ],
    # D35: a canceled order followed by a busted execution
    "bust on a canceled order": [
        *OPEN,
        (fill("E1", "5000", "50"), S.PARTIALLY_FILLED, "5000", "5000", "50"),
        (RequestCancel(), S.PENDING_CANCEL, "5000", "5000", "50"),
        (AcceptCancel(), S.CANCELED, "5000", "0", "50"),
        (bust("E2", "E1"), S.CANCELED, "0", "0", None),
    ],
    "bust while pending cancel": [
        *OPEN,
        (fill("E1", "5000", "50"), S.PARTIALLY_FILLED, "5000", "5000", "50"),
        (RequestCancel(), S.PENDING_CANCEL, "5000", "5000", "50"),
        (bust("E2", "E1"), S.PENDING_CANCEL, "0", "10000", None),
        (RejectCancel(), S.NEW, "0", "10000", None),
    ],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_appendix_d_scenario(steps: list[Step]) -> None:
    order: Order | None = None
    for i, (command, status, cum, leaves, avg) in enumerate(steps):
        order = decide(order, command, T0 + timedelta(seconds=i), ACTOR).order
        expected = (status, D(cum), D(leaves), None if avg is None else D(avg))
        assert state(order) == expected, f"step {i}: {command}"
        assert order.history[-1].status == status
        if order.live:
            assert order.cum_qty + order.leaves_qty == order.quantity
    assert order is not None
    assert len(order.history) == len(steps)


def test_replace_below_cum_qty_amends_the_quantity_to_cum_qty() -> None:
    order = apply([submit(), AcknowledgeOrder(), replace("5000"), fill("E1", "7000", "50")])
    done = decide(order, AcceptReplace(), T0, ACTOR).order
    assert done.quantity == D(7000)
    assert "amended to cum_qty" in done.history[-1].reason


def test_client_order_ids_follow_the_accepted_request() -> None:
    order = apply([submit(), AcknowledgeOrder()])
    pending = decide(order, replace("9000", new_id="C2"), T0, ACTOR).order
    assert pending.client_order_id == "C1"
    assert pending.pending is not None
    assert pending.pending.client_order_id == "C2"
    rejected = decide(pending, RejectReplace(), T0, ACTOR).order
    assert (rejected.client_order_id, rejected.quantity, rejected.pending) == ("C1", D(10000), None)
    replaced = decide(pending, AcceptReplace(), T0, ACTOR).order
    assert (replaced.client_order_id, replaced.quantity) == ("C2", D(9000))
    canceled = apply([RequestCancel(ClientOrderId("C3")), AcceptCancel()], replaced)
    assert canceled.client_order_id == "C3"


def test_accept_replace_takes_the_venues_terms_over_the_request() -> None:
    order = apply([submit(), AcknowledgeOrder(), replace("9000", "49", new_id="C2")])
    venue = AcceptReplace(quantity=D(8000), client_order_id=ClientOrderId("C9"))
    replaced = decide(order, venue, T0, ACTOR).order
    assert (replaced.quantity, replaced.limit_price, replaced.client_order_id) == (
        D(8000),
        D(49),
        "C9",
    )


def test_unsolicited_cancel_while_replace_pending_keeps_the_client_order_id() -> None:
    order = apply([submit(), AcknowledgeOrder(), replace("9000", new_id="C2"), AcceptCancel()])
    assert (order.status, order.client_order_id, order.pending) == (S.CANCELED, "C1", None)
    assert "unsolicited" in order.history[-1].reason


def test_history_records_status_time_actor_reason_and_event() -> None:
    order = decide(None, submit(), T0, "alice").order
    order = decide(order, AcknowledgeOrder(), T0 + timedelta(seconds=1), "venue").order
    result = decide(order, Expire("eod"), T0, "x")
    [first, second, third] = result.order.history
    assert first == (S.PENDING_NEW, T0, "alice", "submitted", Event.ORDER_SUBMITTED)
    assert second.status is S.NEW
    assert second.actor == "venue"
    assert second.at == T0 + timedelta(seconds=1)
    assert second.event is Event.ORDER_ACKNOWLEDGED
    assert third.reason == "expired: eod"
    assert result.order.created_at == T0
    assert result.event is Event.ORDER_EXPIRED
    assert result.previous is S.NEW


def test_times_are_converted_to_utc_and_naive_times_refused() -> None:
    from datetime import timezone

    local = T0.astimezone(timezone(timedelta(hours=2)))
    order = decide(None, submit(), local, ACTOR).order
    assert order.created_at.tzinfo is UTC
    assert order.created_at == T0
    with pytest.raises(ValueError, match="naive"):
        decide(order, AcknowledgeOrder(), T0.replace(tzinfo=None), ACTOR)


def test_reject_records_the_reason() -> None:
    order = apply([submit(), RejectOrder("insufficient margin")])
    assert order.reject_reason == "insufficient margin"
    assert order.history[-1].reason == "rejected: insufficient margin"


# --------------------------------------------------------------------------------------------
# Illegal transitions
# --------------------------------------------------------------------------------------------

# One way to reach every status; the orders that can have fills have fill E1 (2000 or 10000).
PATHS: dict[OrderStatus, list[Command]] = {
    S.PENDING_NEW: [submit()],
    S.NEW: [submit(), AcknowledgeOrder()],
    S.PARTIALLY_FILLED: [submit(), AcknowledgeOrder(), fill("E1", "2000", "50")],
    S.FILLED: [submit(), AcknowledgeOrder(), fill("E1", "10000", "50")],
    S.PENDING_CANCEL: [submit(), AcknowledgeOrder(), fill("E1", "2000", "50"), RequestCancel()],
    S.PENDING_REPLACE: [submit(), AcknowledgeOrder(), fill("E1", "2000", "50"), replace("9000")],
    S.CANCELED: [submit(), AcknowledgeOrder(), fill("E1", "2000", "50"), AcceptCancel()],
    S.EXPIRED: [submit(), AcknowledgeOrder(), fill("E1", "2000", "50"), Expire()],
    S.REJECTED: [submit(), RejectOrder("no")],
    S.DONE_FOR_DAY: [submit(), AcknowledgeOrder(), fill("E1", "2000", "50"), MarkDoneForDay()],
    S.SUSPENDED: [submit(), AcknowledgeOrder(), fill("E1", "2000", "50"), Suspend()],
}

SAMPLES: dict[CommandKind, Command] = {
    K.SUBMIT: submit(),
    K.ACKNOWLEDGE: AcknowledgeOrder(),
    K.REJECT: RejectOrder("no"),
    K.REQUEST_CANCEL: RequestCancel(ClientOrderId("C2")),
    K.CONFIRM_PENDING_CANCEL: ConfirmPendingCancel(),
    K.ACCEPT_CANCEL: AcceptCancel(),
    K.REJECT_CANCEL: RejectCancel(),
    K.REQUEST_REPLACE: replace("9000", new_id="C3"),
    K.CONFIRM_PENDING_REPLACE: ConfirmPendingReplace(),
    K.ACCEPT_REPLACE: AcceptReplace(),
    K.REJECT_REPLACE: RejectReplace(),
    K.APPLY_FILL: fill("E9", "100", "50"),
    K.CORRECT_FILL: correct("E10", "E1", "1000", "50"),
    K.BUST_FILL: bust("E11", "E1"),
    K.EXPIRE: Expire(),
    K.MARK_DONE_FOR_DAY: MarkDoneForDay(),
    K.SUSPEND: Suspend(),
    K.RESTATE: Restate(limit_price=D(49)),
    K.TRIGGER: TriggerOrder(),
}

# Only stop and stop-limit orders trigger, and only those that have not (no fill, no trigger):
# the statuses where the table allows a trigger, reached by a stop-limit order without fills.
_STOP = submit(type=OrdType.STOP_LIMIT, stop="51", limit="52")
STOP_PATHS: dict[OrderStatus, list[Command]] = {
    S.NEW: [_STOP, AcknowledgeOrder()],
    S.PENDING_CANCEL: [_STOP, AcknowledgeOrder(), RequestCancel()],
    S.PENDING_REPLACE: [_STOP, AcknowledgeOrder(), replace("9000")],
}

# A reject answers an order the venue has not acknowledged: under an open request too (B.1.d,
# B.1.e), reached by orders the venue has not answered yet.
UNACKED_PATHS: dict[OrderStatus, list[Command]] = {
    S.PENDING_NEW: [submit()],
    S.PENDING_CANCEL: [submit(), RequestCancel()],
    S.PENDING_REPLACE: [submit(), replace("9000")],
}

# A cancel chained behind a replace the venue has not answered: what a replace's answer in
# pending_cancel is for.
CHAINED = apply(
    [submit(), AcknowledgeOrder(), fill("E1", "2000", "50"), replace("9000", new_id="C3"),
     RequestCancel(ClientOrderId("C4"))]
)
_REPLACE_ANSWERS = (K.CONFIRM_PENDING_REPLACE, K.ACCEPT_REPLACE, K.REJECT_REPLACE)

ORDERS = {status: apply(path) for status, path in PATHS.items()}
STOP_ORDERS = {status: apply(path) for status, path in STOP_PATHS.items()}
UNACKED_ORDERS = {status: apply(path) for status, path in UNACKED_PATHS.items()}
CELLS = [(status, kind) for status in OrderStatus for kind in CommandKind]


# The table written out a second time, by hand: the other table tests take what they expect
# from TRANSITIONS itself, so a pair added to it or dropped from it by mistake would pass them.
# A change to the lifecycle changes both, on purpose.
EXPECTED_TRANSITIONS = {
    (None, K.SUBMIT): S.PENDING_NEW,
    (S.PENDING_NEW, K.ACKNOWLEDGE): Target.WORKING,
    (S.PENDING_NEW, K.REJECT): S.REJECTED,
    (S.PENDING_NEW, K.APPLY_FILL): Target.WORKING,
    (S.PENDING_NEW, K.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.PENDING_NEW, K.CONFIRM_PENDING_CANCEL): S.PENDING_CANCEL,
    (S.PENDING_NEW, K.ACCEPT_CANCEL): S.CANCELED,
    (S.PENDING_NEW, K.REQUEST_REPLACE): S.PENDING_REPLACE,
    (S.PENDING_NEW, K.CONFIRM_PENDING_REPLACE): S.PENDING_REPLACE,
    (S.PENDING_NEW, K.EXPIRE): S.EXPIRED,
    (S.NEW, K.APPLY_FILL): Target.WORKING,
    (S.NEW, K.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.NEW, K.CONFIRM_PENDING_CANCEL): S.PENDING_CANCEL,
    (S.NEW, K.ACCEPT_CANCEL): S.CANCELED,
    (S.NEW, K.REQUEST_REPLACE): S.PENDING_REPLACE,
    (S.NEW, K.CONFIRM_PENDING_REPLACE): S.PENDING_REPLACE,
    (S.NEW, K.EXPIRE): S.EXPIRED,
    (S.NEW, K.MARK_DONE_FOR_DAY): S.DONE_FOR_DAY,
    (S.NEW, K.SUSPEND): S.SUSPENDED,
    (S.NEW, K.RESTATE): Target.WORKING,
    (S.NEW, K.TRIGGER): Target.UNCHANGED,
    (S.PARTIALLY_FILLED, K.APPLY_FILL): Target.WORKING,
    (S.PARTIALLY_FILLED, K.CORRECT_FILL): Target.UNCHANGED,
    (S.PARTIALLY_FILLED, K.BUST_FILL): Target.UNCHANGED,
    (S.PARTIALLY_FILLED, K.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, K.CONFIRM_PENDING_CANCEL): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, K.ACCEPT_CANCEL): S.CANCELED,
    (S.PARTIALLY_FILLED, K.REQUEST_REPLACE): S.PENDING_REPLACE,
    (S.PARTIALLY_FILLED, K.CONFIRM_PENDING_REPLACE): S.PENDING_REPLACE,
    (S.PARTIALLY_FILLED, K.EXPIRE): S.EXPIRED,
    (S.PARTIALLY_FILLED, K.MARK_DONE_FOR_DAY): S.DONE_FOR_DAY,
    (S.PARTIALLY_FILLED, K.SUSPEND): S.SUSPENDED,
    (S.PARTIALLY_FILLED, K.RESTATE): Target.WORKING,
    (S.FILLED, K.CORRECT_FILL): Target.UNCHANGED,
    (S.FILLED, K.BUST_FILL): Target.UNCHANGED,
    (S.PENDING_CANCEL, K.ACKNOWLEDGE): Target.UNCHANGED,
    (S.PENDING_CANCEL, K.APPLY_FILL): Target.UNCHANGED,
    (S.PENDING_CANCEL, K.CORRECT_FILL): Target.UNCHANGED,
    (S.PENDING_CANCEL, K.BUST_FILL): Target.UNCHANGED,
    (S.PENDING_CANCEL, K.CONFIRM_PENDING_CANCEL): Target.UNCHANGED,
    (S.PENDING_CANCEL, K.ACCEPT_CANCEL): S.CANCELED,
    (S.PENDING_CANCEL, K.REJECT_CANCEL): Target.RESUMED,
    (S.PENDING_CANCEL, K.EXPIRE): S.EXPIRED,
    (S.PENDING_CANCEL, K.TRIGGER): Target.UNCHANGED,
    (S.PENDING_CANCEL, K.MARK_DONE_FOR_DAY): Target.DONE_UNDER_REQUEST,
    (S.PENDING_CANCEL, K.SUSPEND): Target.SUSPENDED_UNDER_REQUEST,
    (S.PENDING_CANCEL, K.RESTATE): Target.WORKING_UNDER_REQUEST,
    (S.PENDING_CANCEL, K.REJECT): S.REJECTED,
    (S.PENDING_CANCEL, K.CONFIRM_PENDING_REPLACE): Target.UNCHANGED,
    (S.PENDING_CANCEL, K.ACCEPT_REPLACE): Target.RESUMED,
    (S.PENDING_CANCEL, K.REJECT_REPLACE): Target.RESUMED,
    (S.PENDING_REPLACE, K.ACKNOWLEDGE): Target.UNCHANGED,
    (S.PENDING_REPLACE, K.APPLY_FILL): Target.UNCHANGED,
    (S.PENDING_REPLACE, K.CORRECT_FILL): Target.UNCHANGED,
    (S.PENDING_REPLACE, K.BUST_FILL): Target.UNCHANGED,
    (S.PENDING_REPLACE, K.CONFIRM_PENDING_REPLACE): Target.UNCHANGED,
    (S.PENDING_REPLACE, K.ACCEPT_REPLACE): Target.RESUMED,
    (S.PENDING_REPLACE, K.REJECT_REPLACE): Target.RESUMED,
    (S.PENDING_REPLACE, K.ACCEPT_CANCEL): S.CANCELED,
    (S.PENDING_REPLACE, K.EXPIRE): S.EXPIRED,
    (S.PENDING_REPLACE, K.TRIGGER): Target.UNCHANGED,
    (S.PENDING_REPLACE, K.MARK_DONE_FOR_DAY): Target.DONE_UNDER_REQUEST,
    (S.PENDING_REPLACE, K.SUSPEND): Target.SUSPENDED_UNDER_REQUEST,
    (S.PENDING_REPLACE, K.RESTATE): Target.WORKING_UNDER_REQUEST,
    (S.PENDING_REPLACE, K.REJECT): S.REJECTED,
    (S.PENDING_REPLACE, K.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.DONE_FOR_DAY, K.APPLY_FILL): Target.WORKING,
    (S.DONE_FOR_DAY, K.CORRECT_FILL): Target.UNCHANGED,
    (S.DONE_FOR_DAY, K.BUST_FILL): Target.UNCHANGED,
    (S.DONE_FOR_DAY, K.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.DONE_FOR_DAY, K.CONFIRM_PENDING_CANCEL): S.PENDING_CANCEL,
    (S.DONE_FOR_DAY, K.ACCEPT_CANCEL): S.CANCELED,
    (S.DONE_FOR_DAY, K.REQUEST_REPLACE): S.PENDING_REPLACE,
    (S.DONE_FOR_DAY, K.CONFIRM_PENDING_REPLACE): S.PENDING_REPLACE,
    (S.DONE_FOR_DAY, K.EXPIRE): S.EXPIRED,
    (S.DONE_FOR_DAY, K.RESTATE): Target.WORKING,
    (S.SUSPENDED, K.CORRECT_FILL): Target.UNCHANGED,
    (S.SUSPENDED, K.BUST_FILL): Target.UNCHANGED,
    (S.SUSPENDED, K.REQUEST_CANCEL): S.PENDING_CANCEL,
    (S.SUSPENDED, K.CONFIRM_PENDING_CANCEL): S.PENDING_CANCEL,
    (S.SUSPENDED, K.ACCEPT_CANCEL): S.CANCELED,
    (S.SUSPENDED, K.REQUEST_REPLACE): S.PENDING_REPLACE,
    (S.SUSPENDED, K.CONFIRM_PENDING_REPLACE): S.PENDING_REPLACE,
    (S.SUSPENDED, K.EXPIRE): S.EXPIRED,
    (S.SUSPENDED, K.RESTATE): Target.WORKING,
    (S.CANCELED, K.CORRECT_FILL): Target.UNCHANGED,
    (S.CANCELED, K.BUST_FILL): Target.UNCHANGED,
    (S.EXPIRED, K.CORRECT_FILL): Target.UNCHANGED,
    (S.EXPIRED, K.BUST_FILL): Target.UNCHANGED,
}


def test_the_transition_table_is_the_one_written_down() -> None:
    assert dict(TRANSITIONS) == EXPECTED_TRANSITIONS


def test_a_cancel_behind_an_open_replace_needs_an_id_of_its_own() -> None:
    """Without one the venue names the cancel by the order's name, which the replace changes:
    its answer could not be told from a repeat of an older cancel's."""
    order = ORDERS[S.PENDING_REPLACE]
    refused(order, RequestCancel(), "cancel_needs_client_order_id")
    chained = decide(order, RequestCancel(ClientOrderId("C4")), T0, ACTOR).order
    assert chained.status is S.PENDING_CANCEL
    assert chained.pending is not None and chained.pending.under == order.pending


@pytest.mark.parametrize("status", [S.PENDING_NEW, S.DONE_FOR_DAY, S.SUSPENDED])
def test_an_order_waiting_on_the_venue_or_halted_expires(status: OrderStatus) -> None:
    """The venue's expiry (ExecType C) ends an order it never acknowledged, one done for the
    day (a gtd order at its date) and a suspended one: leaves 0, the fills kept."""
    before = ORDERS[status]
    after = decide(before, Expire(reason="gtd date"), T0, ACTOR).order
    assert (after.status, after.leaves_qty, after.cum_qty) == (S.EXPIRED, D(0), before.cum_qty)


def test_a_suspended_order_takes_a_correction_of_a_fill() -> None:
    order = decide(ORDERS[S.SUSPENDED], correct("C1", "E1", "1500", "51"), T0, ACTOR).order
    assert (order.status, order.cum_qty, order.avg_px) == (S.SUSPENDED, D(1500), D(51))


def test_a_bust_may_name_any_execution_of_a_corrected_fill() -> None:
    """E1 corrected by G1, then by G2: a bust naming G1 (the first correction) takes the fill
    away; G1 stays taken for a new fill while the fill lives."""
    order = apply([submit(), AcknowledgeOrder(), fill("E1", "1000", "50"),
                   correct("G1", "E1", "900", "50"), correct("G2", "G1", "800", "50")])
    refused(order, fill("G1", "10", "50"), "duplicate_execution")
    busted = decide(order, bust("H1", "G1"), T0, ACTOR).order
    assert (busted.cum_qty, busted.fills) == (D(0), ())


def test_fixtures_cover_every_status_and_command() -> None:
    assert {order.status for order in ORDERS.values()} == set(OrderStatus)
    assert all(order.status is status for status, order in ORDERS.items())
    assert {command.kind for command in SAMPLES.values()} == set(CommandKind)
    assert all(command.kind is kind for kind, command in SAMPLES.items())


@pytest.mark.parametrize(("status", "kind"), CELLS, ids=[f"{s}-{k}" for s, k in CELLS])
def test_transition_table_cell(status: OrderStatus, kind: CommandKind) -> None:
    command = SAMPLES[kind]
    target = TRANSITIONS.get((status, kind))
    before = (
        STOP_ORDERS[status]
        if kind is K.TRIGGER and target
        else UNACKED_ORDERS[status]
        if kind is K.REJECT and target
        else CHAINED
        if status is S.PENDING_CANCEL and kind in _REPLACE_ANSWERS
        else ORDERS[status]
    )
    if target is None:
        with pytest.raises(IllegalTransition) as caught:
            decide(before, command, T0, ACTOR)
        err = caught.value
        assert isinstance(err, Refused)
        assert err.exit_code == 4
        assert err.code == "illegal_transition"
        assert (err.order_id, err.status, err.command) == ("O1", status, kind)
        assert "O1" in err.message
        assert f"is {status};" in err.message
        assert str(kind) in err.message
        return
    result = decide(before, command, T0, ACTOR)
    after = result.order
    assert result.event is EVENTS[kind]
    assert result.previous is status
    assert after.history[:-1] == before.history
    assert after.history[-1].status is after.status
    assert after.history[-1].event is EVENTS[kind]
    if isinstance(target, OrderStatus):
        assert after.status is target
    elif target is Target.WORKING:
        assert after.condition is None
        assert after.status in (S.NEW, S.PARTIALLY_FILLED, S.FILLED)
    elif target is Target.UNCHANGED:
        assert (after.condition, after.pending) == (before.condition, before.pending)
    elif target is Target.DONE_UNDER_REQUEST:
        assert (after.condition, after.pending) == (S.DONE_FOR_DAY, before.pending)
        assert after.status is status  # the open request shows (precedence)
    elif target is Target.SUSPENDED_UNDER_REQUEST:
        assert (after.condition, after.pending) == (S.SUSPENDED, before.pending)
        assert after.status is status
    elif target is Target.WORKING_UNDER_REQUEST:
        assert (after.condition, after.pending) == (None, before.pending)
        assert after.status is status
    else:
        assert target is Target.RESUMED
        # the request answered ends; one chained with it stays open
        assert before.pending is not None
        left = before.pending.under if kind is K.REJECT_CANCEL else None
        if before is CHAINED:
            left = dataclasses.replace(before.pending, under=None)
        assert after.pending == left
        assert after.condition == before.condition


def test_nothing_but_submit_without_an_order() -> None:
    order = decide(None, submit(), T0, ACTOR).order
    assert order.status is S.PENDING_NEW
    for kind, command in SAMPLES.items():
        if kind is K.SUBMIT:
            continue
        with pytest.raises(IllegalTransition, match="no such order"):
            decide(None, command, T0, ACTOR)


@pytest.mark.parametrize(
    ("status", "command"),
    [
        (S.FILLED, fill("E9", "1", "50")),
        (S.CANCELED, fill("E9", "1", "50")),
        (S.REJECTED, fill("E9", "1", "50")),
        (S.EXPIRED, fill("E9", "1", "50")),
        (S.FILLED, RequestCancel()),
        (S.CANCELED, AcceptCancel()),
        (S.NEW, AcknowledgeOrder()),
        (S.NEW, AcceptReplace()),
        (S.NEW, RejectCancel()),
        (S.PENDING_REPLACE, RejectCancel()),
        (S.PENDING_CANCEL, RequestCancel()),  # one cancel is open already
        (S.PENDING_CANCEL, RequestReplace(quantity=D(5))),
        (S.CANCELED, MarkDoneForDay()),
        (S.PENDING_NEW, RejectCancel()),  # no request open (a cancel may be requested)
        (S.SUSPENDED, fill("E9", "1", "50")),
        (S.REJECTED, AcknowledgeOrder()),
    ],
)
def test_illegal_transitions_are_refused(status: OrderStatus, command: Command) -> None:
    order = ORDERS[status]
    snapshot = dataclasses.replace(order)
    with pytest.raises(IllegalTransition, match=f"order O1 .* is {status}; {command.kind}"):
        decide(order, command, T0, ACTOR)
    assert order == snapshot


def test_table_shape() -> None:
    # Every target is a status or a Target; only submit applies without an order; rejected is
    # final without exception; filled, canceled and expired accept only corrections and busts.
    assert all(isinstance(t, OrderStatus | Target) for t in TRANSITIONS.values())
    assert [key for key in TRANSITIONS if key[0] is None] == [(None, K.SUBMIT)]
    assert allowed_commands(S.REJECTED) == ()
    for status in (S.FILLED, S.CANCELED, S.EXPIRED):
        assert allowed_commands(status) == (K.CORRECT_FILL, K.BUST_FILL)
    # Fills never apply to a terminal order.
    assert not any((status, K.APPLY_FILL) in TRANSITIONS for status in TERMINAL)
    # A status target that is not pending_* is a condition.
    for target in TRANSITIONS.values():
        if isinstance(target, OrderStatus) and target not in (S.PENDING_CANCEL, S.PENDING_REPLACE):
            assert target in CONDITIONS


# --------------------------------------------------------------------------------------------
# Other refusals
# --------------------------------------------------------------------------------------------


def refused(order: Order, command: Command, code: str) -> Refused:
    with pytest.raises(Refused) as caught:
        decide(order, command, T0, ACTOR)
    assert caught.value.code == code
    assert caught.value.exit_code == 4
    assert not isinstance(caught.value, IllegalTransition)
    return caught.value


def test_overfill_is_refused() -> None:
    err = refused(ORDERS[S.PARTIALLY_FILLED], fill("E9", "8001", "50"), "overfill")
    assert "leaves_qty 8000" in err.message
    refused(ORDERS[S.PENDING_CANCEL], fill("E9", "8000.5", "50"), "overfill")
    refused(ORDERS[S.PENDING_NEW], fill("E9", "10001", "50"), "overfill")
    # exactly the leaves is fine
    done = decide(ORDERS[S.PARTIALLY_FILLED], fill("E9", "8000", "50"), T0, ACTOR).order
    assert done.status is S.FILLED


def test_correction_beyond_the_quantity_is_refused() -> None:
    order = apply([fill("E2", "5000", "50")], ORDERS[S.PARTIALLY_FILLED])
    refused(order, correct("E3", "E1", "5001", "50"), "overfill")
    refused(ORDERS[S.CANCELED], correct("E3", "E1", "10001", "50"), "overfill")
    assert decide(order, correct("E3", "E1", "5000", "50"), T0, ACTOR).order.status is S.FILLED


def test_unknown_and_duplicate_executions_are_refused() -> None:
    order = ORDERS[S.PARTIALLY_FILLED]
    refused(order, bust("E9", "NOPE"), "unknown_execution")
    refused(order, correct("E9", "NOPE", "1", "1"), "unknown_execution")
    refused(order, fill("E1", "1", "50"), "duplicate_execution")
    busted = apply([fill("E2", "100", "50"), bust("E3", "E1")], order)
    refused(busted, bust("E4", "E1"), "unknown_execution")  # busted already
    refused(busted, correct("E4", "E1", "1", "50"), "unknown_execution")
    # once every fill is busted the order is new: a bust is then an illegal transition
    with pytest.raises(IllegalTransition):
        decide(apply([bust("E4", "E2")], busted), bust("E5", "E2"), T0, ACTOR)


def test_cancel_or_expire_with_nothing_left_is_refused() -> None:
    order = apply([fill("E2", "8000", "50")], ORDERS[S.PENDING_CANCEL])
    assert (order.status, order.leaves_qty) == (S.PENDING_CANCEL, D(0))
    refused(order, AcceptCancel(), "nothing_left")
    refused(order, Expire(), "nothing_left")


@pytest.mark.parametrize(
    ("command", "match"),
    [
        (submit("0"), "greater than zero"),
        (submit("-5"), "greater than zero"),
        (submit(limit=None), "needs a limit price"),
        (submit(type=OrdType.MARKET), "takes no limit price"),
        (submit(type=OrdType.STOP, limit=None), "needs a stop price"),
        (submit(type=OrdType.STOP_LIMIT, stop="0"), "stop price 0 must be greater"),
        (submit(limit="0"), "limit price 0 must be greater"),
        (submit(stop="45"), "takes no stop price"),
        (submit(tif=TimeInForce.GTD), "expiry date"),
        (submit(expire_at=date(2024, 3, 5)), "expiry date"),
    ],
)
def test_submit_with_bad_terms_is_bad_input(command: SubmitOrder, match: str) -> None:
    with pytest.raises(BadInput, match=match) as caught:
        decide(None, command, T0, ACTOR)
    assert caught.value.exit_code == 3


def test_good_submits() -> None:
    for command in (
        submit(type=OrdType.MARKET, limit=None),
        submit(type=OrdType.STOP, limit=None, stop="45"),
        submit(type=OrdType.STOP_LIMIT, stop="45"),
        submit(tif=TimeInForce.GTD, expire_at=date(2024, 3, 8)),
        submit("0.000000000001"),
    ):
        assert decide(None, command, T0, ACTOR).order.status is S.PENDING_NEW


@pytest.mark.parametrize(
    ("status", "command", "match"),
    [
        (S.NEW, RequestReplace(), "needs a new quantity"),
        (S.NEW, replace("0"), "greater than zero"),
        (S.NEW, replace(limit="-1"), "greater than zero"),
        (S.NEW, RequestReplace(stop_price=D(40)), "takes no stop price"),
        (S.NEW, fill("E9", "0", "50"), "quantity 0"),
        (S.NEW, fill("E9", "1", "0"), "price 0"),
        (S.PARTIALLY_FILLED, correct("E9", "E1", "0", "50"), "quantity 0"),
        (S.DONE_FOR_DAY, Restate(quantity=D(-1)), "greater than zero"),
    ],
)
def test_malformed_commands_are_bad_input(
    status: OrderStatus, command: Command, match: str
) -> None:
    with pytest.raises(BadInput, match=match):
        decide(ORDERS[status], command, T0, ACTOR)


# --------------------------------------------------------------------------------------------
# Values, precedence, enumerations, helpers
# --------------------------------------------------------------------------------------------


def test_orders_are_immutable_and_checked() -> None:
    order = ORDERS[S.PARTIALLY_FILLED]
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.status = S.FILLED  # type: ignore[misc]
    with pytest.raises(ValueError, match="status partially_filled should be new"):
        dataclasses.replace(order, fills=(), cum_qty=D(0), leaves_qty=D(10000), avg_px=None)
    with pytest.raises(ValueError, match="cum_qty 1 is not the sum"):
        dataclasses.replace(order, cum_qty=D(1))
    with pytest.raises(ValueError, match="leaves_qty"):
        dataclasses.replace(order, leaves_qty=D(1))
    with pytest.raises(ValueError, match="avg_px"):
        dataclasses.replace(order, avg_px=D(1))
    with pytest.raises(ValueError, match="condition filled"):
        dataclasses.replace(order, condition=S.FILLED)
    with pytest.raises(ValueError, match="exceeds quantity"):
        dataclasses.replace(order, quantity=D(1000), leaves_qty=D(-1000))


@pytest.mark.parametrize(
    ("pending", "condition", "cum", "expected"),
    [
        (RequestKind.CANCEL, None, "10000", S.PENDING_CANCEL),  # over filled
        (RequestKind.CANCEL, None, "5000", S.PENDING_CANCEL),  # over partially filled
        (RequestKind.REPLACE, S.DONE_FOR_DAY, "0", S.PENDING_REPLACE),
        (None, S.DONE_FOR_DAY, "10000", S.DONE_FOR_DAY),  # over filled
        (None, S.CANCELED, "10000", S.FILLED),  # filled over canceled
        (None, S.CANCELED, "5000", S.CANCELED),  # canceled over partially filled
        (None, S.EXPIRED, "5000", S.EXPIRED),
        (None, S.SUSPENDED, "5000", S.SUSPENDED),
        (None, S.SUSPENDED, "10000", S.FILLED),
        (None, S.REJECTED, "0", S.REJECTED),
        (None, S.PENDING_NEW, "0", S.PENDING_NEW),
        (None, None, "0", S.NEW),
        (None, None, "1", S.PARTIALLY_FILLED),
        (None, None, "10000", S.FILLED),
    ],
)
def test_reported_status_precedence(
    pending: RequestKind | None, condition: OrderStatus | None, cum: str, expected: OrderStatus
) -> None:
    got = reported_status(pending=pending, condition=condition, cum_qty=D(cum), quantity=D(10000))
    assert got is expected


def test_precedence_list_keeps_the_fix_order() -> None:
    fix_order = [
        S.PENDING_CANCEL,
        S.PENDING_REPLACE,
        S.DONE_FOR_DAY,
        S.FILLED,
        S.CANCELED,
        S.PARTIALLY_FILLED,
        S.NEW,
    ]
    assert [s for s in STATUS_PRECEDENCE if s in fix_order] == fix_order
    assert sorted(STATUS_PRECEDENCE) == sorted(OrderStatus)
    with pytest.raises(ValueError, match="not a condition"):
        reported_status(pending=None, condition=S.FILLED, cum_qty=D(0), quantity=D(1))


def test_exec_type_codes() -> None:
    codes = {"0", "3", "4", "5", "6", "8", "9", "C", "D", "E", "F", "G", "H", "I", "L"}
    assert {e.fix for e in ExecType} == codes
    for exec_type in ExecType:
        assert ExecType.from_fix(exec_type.fix) is exec_type
    assert ExecType.from_fix(" F ") is ExecType.TRADE
    assert ExecType.from_fix("H") is ExecType.TRADE_CANCEL
    for bad in ("1", "2", "Z", ""):
        with pytest.raises(BadInput, match="ExecType"):
            ExecType.from_fix(bad)
    # an order status report (I) changes nothing: no command
    assert set(EXEC_TYPE_COMMANDS) == set(ExecType) - {ExecType.ORDER_STATUS}
    assert EXEC_TYPE_COMMANDS[ExecType.SUSPENDED] is K.SUSPEND
    assert EXEC_TYPE_COMMANDS[ExecType.TRADE_CORRECT] is K.CORRECT_FILL


def test_ord_status_codes() -> None:
    for status in OrderStatus:
        assert OrderStatus.from_fix(status.fix) is status
    assert OrderStatus.from_fix("2") is S.FILLED
    assert OrderStatus.from_fix("A") is S.PENDING_NEW
    with pytest.raises(BadInput, match="OrdStatus"):
        OrderStatus.from_fix("7")
    assert {s for s in OrderStatus if s.terminal} == TERMINAL


def test_events_are_past_tense_and_one_per_command() -> None:
    assert set(EVENTS) == set(CommandKind)
    assert len(set(EVENTS.values())) == len(CommandKind) == len(Event)
    for event in Event:
        words = event.value.split("_")
        assert any(w.endswith("ed") or w == "done" for w in words), event


def test_same_terms() -> None:
    order = apply(
        [submit(), AcknowledgeOrder(), replace("9000", "49", new_id="C2"), AcceptReplace()]
    )
    assert same_terms(order, submit())
    assert same_terms(order, submit("10000.00", limit="50.0"))
    assert not same_terms(order, submit("10001"))
    assert not same_terms(order, submit(limit="50.01"))
    assert not same_terms(order, submit(account="ACC2"))
    assert not same_terms(order, submit(venue="paper"))
    assert not same_terms(order, submit(tif=TimeInForce.GTC))
    # a duplicate with another order id (the store assigns ids) is still a duplicate
    assert same_terms(order, dataclasses.replace(submit(), order_id=OrderId("O2")))


def test_average_price_rounding() -> None:
    def f(q: str, p: str) -> Fill:
        return Fill(ExecId("E"), D(q), D(p), T0)

    assert average_price([]) is None
    assert average_price([f("1", "1"), f("2", "1.5")]) == D("1.333333333333")
    assert average_price([f("1", "2"), f("2", "1.5")]) == D("1.666666666667")
    # an exact tie at the 13th decimal rounds half-even
    assert average_price([f("1", "0.000000000001"), f("1", "0.000000000002")]) == D(
        "0.000000000002"
    )
    assert average_price([f("1", "0.000000000003"), f("1", "0.000000000002")]) == D(
        "0.000000000002"
    )
    # exact quotients keep their value; trailing zeros are dropped
    avg = average_price([f("3", "10.10"), f("1", "10.50")])
    assert avg == D("10.2")
    assert str(avg) == "10.2"
    assert str(average_price([f("4", "50.000")])) == "50"


def test_gtd_and_fok_helpers() -> None:
    gtd = apply([submit(tif=TimeInForce.GTD, expire_at=date(2024, 3, 8)), AcknowledgeOrder()])
    assert not gtd_expired(gtd, date(2024, 3, 8))
    assert gtd_expired(gtd, date(2024, 3, 9))
    assert not gtd_expired(decide(gtd, Expire(), T0, ACTOR).order, date(2024, 3, 9))
    assert not gtd_expired(ORDERS[S.NEW], date(2030, 1, 1))
    fok = apply([submit(tif=TimeInForce.FOK), AcknowledgeOrder()])
    assert fok_fill_ok(fok, D(10000))
    assert not fok_fill_ok(fok, D(9999))
    new = ORDERS[S.PARTIALLY_FILLED]
    assert fok_fill_ok(new, D(8000))
    assert not fok_fill_ok(new, D(8001))
    assert not fok_fill_ok(new, D(0))


def test_module_is_pure() -> None:
    tree = ast.parse(Path(oms.orders.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.module is not None
            imported.add(node.module)
    allowed = {
        "__future__",
        "collections.abc",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "types",
        "typing",
        "oms.errors",
        "oms.values",
    }
    assert imported <= allowed
    source = Path(oms.orders.__file__).read_text()
    assert ".now(" not in source
    assert "today()" not in source


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


def exact_average(fills: Sequence[Fill]) -> Decimal | None:
    """The oracle: sum(q*p)/sum(q) in fractions, rounded half-even to 12 places."""
    if not fills:
        return None
    notional = sum((Fraction(f.quantity) * Fraction(f.price) for f in fills), Fraction(0))
    quantity = sum((Fraction(f.quantity) for f in fills), Fraction(0))
    return Decimal(round(notional / quantity * 10**12)).scaleb(-12)


def check_invariants(order: Order) -> None:
    assert order.cum_qty <= order.quantity
    assert order.cum_qty == sum((f.quantity for f in order.fills), D(0))
    assert all(f.quantity > 0 for f in order.fills)
    if order.live:
        assert order.cum_qty + order.leaves_qty == order.quantity
    else:
        assert order.leaves_qty == 0
    assert order.avg_px == exact_average(order.fills)
    pending = None if order.pending is None else order.pending.kind
    assert order.status is reported_status(
        pending=pending, condition=order.condition, cum_qty=order.cum_qty, quantity=order.quantity
    )
    assert order.live is (order.status not in TERMINAL)


KINDS = list(CommandKind)


def draw_command(
    data: st.DataObject,
    order: Order,
    scale: int,
    ids: itertools.count[int],
    refs: Sequence[str] = (),
) -> Command:
    units = int(order.quantity.scaleb(scale))

    def qty(upto: int) -> Decimal:
        return D(data.draw(st.integers(1, max(1, upto)))).scaleb(-scale)

    def price() -> Decimal:
        return D(data.draw(st.integers(1, 10**6))).scaleb(-4)

    def new_id() -> ExecId:
        return ExecId(f"E{next(ids)}")

    def ref() -> ExecId:
        # every ExecID the test's own model has seen applied (FillModel.ever), live or busted,
        # not what the order under test says it keeps
        return ExecId(data.draw(st.sampled_from([*refs, "NOPE"])))

    # Mostly a command the table allows (so that sequences get deep), fills and, when there
    # are fills, corrections and busts more often than the others; sometimes any command.
    weights = {K.REJECT: 1, K.ACCEPT_CANCEL: 1, K.EXPIRE: 1, K.APPLY_FILL: 8}
    weights |= {K.REQUEST_REPLACE: 3, K.ACCEPT_REPLACE: 4, K.RESTATE: 3}  # quantity up or down
    if order.fills:
        weights |= {K.CORRECT_FILL: 4, K.BUST_FILL: 4}
    weighted = [k for k in allowed_commands(order.status) for _ in range(weights.get(k, 2))]
    any_kind = not weighted or data.draw(st.integers(0, 9)) == 9
    kind = data.draw(st.sampled_from(KINDS if any_kind else weighted))
    commands: dict[CommandKind, Command] = {
        K.SUBMIT: submit(),
        K.ACKNOWLEDGE: AcknowledgeOrder(),
        K.REJECT: RejectOrder("no"),
        # (with an id of its own or not: behind an open replace only one with an id is taken)
        K.REQUEST_CANCEL: RequestCancel(data.draw(st.sampled_from([None, ClientOrderId("CX")]))),
        K.CONFIRM_PENDING_CANCEL: ConfirmPendingCancel(),
        K.ACCEPT_CANCEL: AcceptCancel(),
        K.REJECT_CANCEL: RejectCancel(),
        K.CONFIRM_PENDING_REPLACE: ConfirmPendingReplace(),
        K.ACCEPT_REPLACE: AcceptReplace(),
        K.REJECT_REPLACE: RejectReplace(),
        K.EXPIRE: Expire(),
        K.MARK_DONE_FOR_DAY: MarkDoneForDay(),
        K.SUSPEND: Suspend(),
        K.TRIGGER: TriggerOrder(),
    }
    if kind in commands:
        return commands[kind]
    if kind is K.REQUEST_REPLACE:
        with_qty, with_limit = data.draw(
            st.sampled_from([(True, False), (False, True), (True,) * 2])
        )
        return RequestReplace(
            quantity=qty(units * 3 // 2) if with_qty else None,
            limit_price=price() if with_limit else None,
        )
    if kind is K.RESTATE:
        return Restate(quantity=data.draw(st.none() | st.just(qty(units * 3 // 2))))
    if kind is K.APPLY_FILL:
        # mostly within leaves_qty, sometimes anything up to the quantity (overfills)
        leaves = int(order.leaves_qty.scaleb(scale))
        return ApplyFill(new_id(), qty(data.draw(st.sampled_from([leaves, units]))), price())
    if kind is K.CORRECT_FILL:
        return CorrectFill(new_id(), ref(), qty(units), price())
    assert kind is K.BUST_FILL
    return BustFill(new_id(), ref())


class FillModel:
    """The test's own account of an order's fills, kept apart from the code under test: each
    live fill under the ExecID it was booked with (its key), the ExecIDs that name it (its own
    and its corrections'), and every ExecID ever applied. A correction or a bust names a live
    fill by any of its ExecIDs; a fill or a correction may not take an ExecID that names a live
    fill; a bust takes the fill and its names away."""

    def __init__(self) -> None:
        self.live: dict[str, tuple[Decimal, Decimal]] = {}  # key -> (quantity, price)
        self.names: dict[str, str] = {}  # ExecID -> key, for the live fills
        self.ever: list[str] = []

    def cum_qty(self) -> Decimal:
        return sum((q for q, _ in self.live.values()), D(0))

    def valid(self, order: Order, command: Command) -> bool | None:
        """Whether the command must be accepted (True) or refused (False) as far as its fills
        go; None: not a fill command, or one whose other checks the model does not keep."""
        match command:
            case ApplyFill(exec_id=e):
                return False if e in self.names else None
            case CorrectFill(exec_id=e, exec_ref_id=ref, quantity=q):
                if ref not in self.names or e in self.names:
                    return False
                return self.cum_qty() - self.live[self.names[ref]][0] + q <= order.quantity
            case BustFill(exec_ref_id=ref):
                return ref in self.names
        return None

    def apply(self, command: Command) -> None:
        match command:
            case ApplyFill(exec_id=e, quantity=q, price=p):
                self.live[e] = (q, p)
                self.names[e] = e
            case CorrectFill(exec_id=e, exec_ref_id=ref, quantity=q, price=p):
                key = self.names[ref]
                self.live[key] = (q, p)
                self.names[e] = key
            case BustFill(exec_ref_id=ref):
                key = self.names[ref]
                del self.live[key]
                self.names = {n: k for n, k in self.names.items() if k != key}
            case _:
                return
        self.ever.append(command.exec_id)

    def check(self, order: Order) -> None:
        assert order.cum_qty == self.cum_qty()
        assert sorted((f.quantity, f.price) for f in order.fills) == sorted(self.live.values())
        assert order.avg_px == exact_average(
            [Fill(ExecId(k), q, p, T0) for k, (q, p) in self.live.items()]
        )


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    units=st.integers(1, 5000),
    scale=st.integers(0, 4),
    steps=st.integers(1, 60),
)
def test_random_command_sequences_keep_the_invariants(
    data: st.DataObject, units: int, scale: int, steps: int
) -> None:
    ids = itertools.count(1)
    stop = data.draw(st.booleans())  # a stop-limit order can also trigger
    terms = {"type": OrdType.STOP_LIMIT, "stop": "51", "limit": "52"} if stop else {}
    order = decide(None, submit(D(units).scaleb(-scale), **terms), T0, ACTOR).order
    check_invariants(order)
    model = FillModel()
    accepted = 1
    for step in range(steps):
        command = draw_command(data, order, scale, ids, model.ever)
        allowed = (order.status, command.kind) in TRANSITIONS
        valid = model.valid(order, command)
        try:
            result = decide(order, command, T0 + timedelta(seconds=step), ACTOR)
        except IllegalTransition:
            assert not allowed
            continue
        except TieoutError:  # overfill, unknown execution, nothing left, bad terms
            assert allowed
            assert valid is not True, f"{command} refused, the model's fills allow it"
            continue
        assert allowed
        assert valid is not False, f"{command} applied, the model's fills refuse it"
        assert result.previous is order.status
        # an order that ended without a fill accepts nothing any more
        assert order.live or order.fills
        order = result.order
        model.apply(command)
        accepted += 1
        check_invariants(order)
        model.check(order)
        if not order.live and not order.fills:
            break
    assert len(order.history) == accepted


def test_a_stop_triggers_once_and_other_orders_never() -> None:
    order = STOP_ORDERS[S.NEW]
    assert not triggered(order)
    after = decide(order, TriggerOrder(reason="bar"), T0, ACTOR).order
    assert triggered(after) and after.status is S.NEW and after.leaves_qty == order.leaves_qty
    assert after.history[-1].reason == "triggered at stop 51: bar"
    refused(after, TriggerOrder(), "triggered")
    refused(ORDERS[S.NEW], TriggerOrder(), "not_a_stop")  # a limit order
    filled_part = decide(order, fill("E1", "10", "52"), T0, ACTOR).order
    assert triggered(filled_part)  # a stop-limit fills only once triggered
    with pytest.raises(IllegalTransition):
        decide(filled_part, TriggerOrder(), T0, ACTOR)


def test_nothing_left_reads_as_zero_whatever_the_places() -> None:
    """0.500 filled by 0.250 and 0.25: leaves are "0", not "0.000" (the JSON showed "0.000"
    beside a cum_qty without trailing zeros)."""
    order = apply([submit("0.500"), AcknowledgeOrder(), fill("E1", "0.250", "50"),
                   fill("E2", "0.25", "50")])
    assert order.status is S.FILLED
    assert str(order.leaves_qty) == "0"
    part = apply([submit("0.500"), AcknowledgeOrder(), fill("E1", "0.250", "50")])
    assert str(part.leaves_qty) == "0.250"


@pytest.mark.parametrize("path", [
    [submit(), AcknowledgeOrder(), RequestCancel()],
    [submit(), AcknowledgeOrder(), replace("9000")],
    [submit(), fill("E1", "100", "50"), RequestCancel()],
], ids=["acknowledged, cancel pending", "acknowledged, replace pending", "filled in part"])
def test_an_acknowledged_order_cannot_be_rejected_under_a_request(path: list[Command]) -> None:
    order = apply(path)
    with pytest.raises(Refused, match="was acknowledged by the venue already") as caught:
        decide(order, RejectOrder("late"), T0, ACTOR)
    assert caught.value.code == "already_acknowledged"


def test_a_request_the_venue_reports_first_takes_the_clordid_it_names() -> None:
    """A pending cancel the book did not request opens a request named by the venue's ClOrdID
    (11), unless that is the order's own id; a pending report for an open request keeps it."""
    acked = apply([submit(), AcknowledgeOrder()])
    named = decide(acked, ConfirmPendingCancel(client_order_id=ClientOrderId("V1")), T0, ACTOR)
    assert named.order.pending is not None
    assert named.order.pending.client_order_id == "V1"
    own = decide(acked, ConfirmPendingCancel(client_order_id=ClientOrderId("C1")), T0, ACTOR)
    assert own.order.pending is not None and own.order.pending.client_order_id is None
    again = decide(named.order, ConfirmPendingCancel(client_order_id=ClientOrderId("V2")), T0,
                   ACTOR)
    assert again.order.pending == named.order.pending


def test_a_pending_report_names_an_open_request_that_had_no_clordid() -> None:
    """A cancel sent without a new id: the venue's pending report names it (ClOrdID 11), and
    the open request takes that name; one that has a name keeps it."""
    requested = apply([submit(), AcknowledgeOrder(), RequestCancel()])
    assert requested.pending is not None and requested.pending.client_order_id is None
    named = decide(requested, ConfirmPendingCancel(client_order_id=ClientOrderId("V1")), T0,
                   ACTOR).order
    assert named.pending is not None and named.pending.client_order_id == "V1"
    assert named.status is OrderStatus.PENDING_CANCEL
    assert named.pending.requested_at == requested.pending.requested_at
    kept = decide(named, ConfirmPendingCancel(client_order_id=ClientOrderId("V2")), T0,
                  ACTOR).order
    assert kept.pending == named.pending


def test_done_for_day_while_a_cancel_or_replace_is_pending() -> None:
    """The venue's day ends before it answers a cancel or replace (ExecType 3 while 39=6/E): FIX
    4.4's precedence (pending_cancel > pending_replace > done_for_day) exists because both hold
    at once. It was refused as an illegal transition (an audit of exec apply). The request
    shows; refused, done_for_day shows; accepted, the cancel ends the order."""
    working = apply([submit("10"), AcknowledgeOrder(), fill("E1", "4", "50")])
    for request, refuse in ((RequestCancel(), RejectCancel()), (replace("8"), RejectReplace())):
        asked = apply([request], working)
        done = apply([MarkDoneForDay()], asked)
        assert (done.status, done.condition, done.pending) == (
            asked.status,
            S.DONE_FOR_DAY,
            asked.pending,
        )
        assert apply([refuse], done).status is S.DONE_FOR_DAY
    done = apply([RequestCancel(), MarkDoneForDay()], working)
    assert state(apply([AcceptCancel()], done)) == (S.CANCELED, D(4), D(0), D(50))
    # a fill renews it, underneath the request as without one (a re-review: the order stayed
    # done_for_day once filled, and nothing could end it)
    for qty, status in (("6", S.FILLED), ("2", S.PARTIALLY_FILLED)):
        renewed = apply([fill("E2", qty, "50"), RejectCancel()], done)
        assert (renewed.status, renewed.condition) == (status, None)
    # a correction up to the whole order leaves nothing to work: filled, with or without a
    # request open (it stayed done_for_day, and a cancel was then asked of a filled order)
    for before in (done, apply([MarkDoneForDay()], working)):
        corrected = apply([correct("E9", "E1", "10", "50")], before)
        assert (corrected.condition, corrected.cum_qty, corrected.leaves_qty) == (None, D(10), D(0))
        assert corrected.status is (S.PENDING_CANCEL if before is done else S.FILLED)
    # an order the venue never acknowledged, or one with nothing left, is not done for the day
    unacked = apply([submit("10"), RequestCancel()])
    with pytest.raises(Refused, match="never acknowledged"):
        decide(unacked, MarkDoneForDay(), T0, ACTOR)
    filled = apply([RequestCancel(), fill("E2", "6", "50")], working)
    assert filled.status is S.PENDING_CANCEL
    with pytest.raises(Refused, match="nothing left"):
        decide(filled, MarkDoneForDay(), T0, ACTOR)


def test_a_suspension_under_an_open_request_shows_once_the_venue_refuses_it() -> None:
    """A venue may suspend an order while a cancel is on its way (FIX precedence: pending_cancel
    > ... > suspended): the request shows, suspended underneath; a reject of the request shows
    the suspension; a fill is refused while suspended, under the request too; a restatement
    under the request ends the suspension and leaves the request open."""
    base = apply([submit(), AcknowledgeOrder(), fill("E1", "2000", "50")])
    asked = apply([RequestCancel(), Suspend(reason="halted")], base)
    assert (asked.status, asked.condition) == (S.PENDING_CANCEL, S.SUSPENDED)
    with pytest.raises(Refused, match="is suspended") as caught:
        decide(asked, fill("E2", "1", "50"), T0, ACTOR)
    assert caught.value.code == "suspended"
    refused = apply([RejectCancel()], asked)
    assert (refused.status, refused.pending) == (S.SUSPENDED, None)
    resumed = apply([Restate()], asked)
    assert (resumed.status, resumed.condition) == (S.PENDING_CANCEL, None)
    assert apply([fill("E3", "1", "50")], resumed).cum_qty == D(2001)
    # never acknowledged, or nothing left: no suspension
    unacked = apply([submit(), RequestCancel()])
    with pytest.raises(Refused, match="never acknowledged"):
        decide(unacked, Suspend(), T0, ACTOR)
    done = apply([RequestCancel(), fill("E4", "8000", "50")], base)
    with pytest.raises(Refused, match="nothing left"):
        decide(done, Suspend(), T0, ACTOR)


def test_under_an_open_request_the_condition_underneath_allows_what_it_allows_without() -> None:
    """A re-review: under a cancel request a restatement acknowledged an order the venue never
    acknowledged, a suspension replaced done for day, and done for day replaced a suspension;
    each is refused without the request."""
    unacked = apply([submit(), RequestCancel()])
    with pytest.raises(Refused, match="never acknowledged") as caught:
        decide(unacked, Restate(quantity=D(5)), T0, ACTOR)
    assert caught.value.code == "not_acknowledged"
    acked = apply([submit(), AcknowledgeOrder()])
    done = apply([MarkDoneForDay(), RequestCancel()], acked)
    with pytest.raises(Refused, match="done_for_day under its open pending_cancel") as caught:
        decide(done, Suspend(), T0, ACTOR)
    assert caught.value.code == "illegal_transition"
    halted = apply([Suspend(), RequestCancel()], acked)
    with pytest.raises(Refused, match="suspended under its open pending_cancel"):
        decide(halted, MarkDoneForDay(), T0, ACTOR)
