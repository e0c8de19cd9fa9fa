"""Cancel and replace requests for an order the venue has not acknowledged yet (pending_new):
FIX 4.4 Volume 4, Appendix D, B.1.d ("cancel request issued for an order that has not yet been
acknowledged") and B.1.e (the acknowledgement and the cancel request "cross"), with the venue's
reject of the request and executions while it is pending; and the same for cancel/replace.

The request opens over the pending_new condition (OrdStatus pending_cancel or pending_replace,
which take precedence); the venue's acknowledgement (150=0), a fill (implicit acknowledgement)
or the replace (150=5) ends pending_new underneath; a reject of the request (35=9) shows the
order as it is underneath: pending_new again if the venue has not acknowledged it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from oms.orders import (
    TRANSITIONS,
    AcceptCancel,
    AcceptReplace,
    AcknowledgeOrder,
    ClientOrderId,
    Command,
    CommandKind,
    ConfirmPendingCancel,
    ConfirmPendingReplace,
    Expire,
    IllegalTransition,
    Order,
    OrderStatus,
    RejectCancel,
    RejectOrder,
    RejectReplace,
    RequestCancel,
    RequestKind,
    decide,
)
from tests.unit.test_orders import ACTOR, T0, Step, check_invariants, fill, replace, state, submit

D = Decimal
S = OrderStatus
K = CommandKind

SUBMITTED: Step = (submit(), S.PENDING_NEW, "0", "10000", None)
CANCEL_Y: Step = (RequestCancel(ClientOrderId("Y")), S.PENDING_CANCEL, "0", "10000", None)

# (command, status, cum_qty, leaves_qty, avg_px, condition underneath) per step
Row = tuple[Command, OrderStatus, str, str, str | None, OrderStatus | None]


def rows(steps: list[Step], conditions: list[OrderStatus | None]) -> list[Row]:
    assert len(steps) == len(conditions)
    return [(*step, cond) for step, cond in zip(steps, conditions, strict=True)]


PN, NONE = S.PENDING_NEW, None

SCENARIOS: dict[str, list[Row]] = {
    # B.1.d: the cancel request reaches the venue before its acknowledgement goes out
    "cancel before the acknowledgement, confirmed, acknowledged, canceled": rows(
        [
            SUBMITTED,
            CANCEL_Y,
            (ConfirmPendingCancel(), S.PENDING_CANCEL, "0", "10000", None),
            (AcknowledgeOrder(), S.PENDING_CANCEL, "0", "10000", None),
            (AcceptCancel(), S.CANCELED, "0", "0", None),
        ],
        [PN, PN, PN, NONE, S.CANCELED],
    ),
    # B.1.e: the acknowledgement crosses the cancel request on the connection
    "acknowledgement crosses the cancel request": rows(
        [
            SUBMITTED,
            CANCEL_Y,
            (AcknowledgeOrder(), S.PENDING_CANCEL, "0", "10000", None),
            (ConfirmPendingCancel(), S.PENDING_CANCEL, "0", "10000", None),
            (AcceptCancel(), S.CANCELED, "0", "0", None),
        ],
        [PN, PN, NONE, NONE, S.CANCELED],
    ),
    "canceled without an acknowledgement": rows(
        [SUBMITTED, CANCEL_Y, (AcceptCancel(), S.CANCELED, "0", "0", None)],
        [PN, PN, S.CANCELED],
    ),
    # the venue rejects the cancel before it acknowledged the order: pending_new again
    "cancel rejected before the acknowledgement": rows(
        [
            SUBMITTED,
            CANCEL_Y,
            (RejectCancel("unknown order"), S.PENDING_NEW, "0", "10000", None),
            (AcknowledgeOrder(), S.NEW, "0", "10000", None),
            (fill("E1", "1000", "50"), S.PARTIALLY_FILLED, "1000", "9000", "50"),
        ],
        [PN, PN, PN, NONE, NONE],
    ),
    "acknowledged, then the cancel rejected": rows(
        [
            SUBMITTED,
            CANCEL_Y,
            (AcknowledgeOrder(), S.PENDING_CANCEL, "0", "10000", None),
            (RejectCancel("broker option"), S.NEW, "0", "10000", None),
        ],
        [PN, PN, NONE, NONE],
    ),
    # executions while the cancel is pending: a fill is an implicit acknowledgement
    "fill while pending cancel, then canceled": rows(
        [
            SUBMITTED,
            CANCEL_Y,
            (fill("E1", "2000", "50"), S.PENDING_CANCEL, "2000", "8000", "50"),
            (fill("E2", "1000", "53"), S.PENDING_CANCEL, "3000", "7000", "51"),
            (AcceptCancel(), S.CANCELED, "3000", "0", "51"),
        ],
        [PN, PN, NONE, NONE, S.CANCELED],
    ),
    "fill while pending cancel, then the cancel rejected": rows(
        [
            SUBMITTED,
            CANCEL_Y,
            (fill("E1", "2000", "50"), S.PENDING_CANCEL, "2000", "8000", "50"),
            (RejectCancel(), S.PARTIALLY_FILLED, "2000", "8000", "50"),
        ],
        [PN, PN, NONE, NONE],
    ),
    "filled before the cancel could be accepted: too late to cancel": rows(
        [
            SUBMITTED,
            CANCEL_Y,
            (fill("E1", "10000", "50"), S.PENDING_CANCEL, "10000", "0", "50"),
            (RejectCancel("too late to cancel"), S.FILLED, "10000", "0", "50"),
        ],
        [PN, PN, NONE, NONE],
    ),
    "expired while the cancel is pending": rows(
        [SUBMITTED, CANCEL_Y, (Expire("end of day"), S.EXPIRED, "0", "0", None)],
        [PN, PN, S.EXPIRED],
    ),
    # cancel/replace of an unacknowledged order (FIX does not forbid it: the ClOrdID is known)
    "replace before the acknowledgement, acknowledged, replaced": rows(
        [
            SUBMITTED,
            (replace("12000", new_id="C2"), S.PENDING_REPLACE, "0", "10000", None),
            (ConfirmPendingReplace(), S.PENDING_REPLACE, "0", "10000", None),
            (AcknowledgeOrder(), S.PENDING_REPLACE, "0", "10000", None),
            (AcceptReplace(), S.NEW, "0", "12000", None),
        ],
        [PN, PN, PN, NONE, NONE],
    ),
    "replaced without an acknowledgement: the replace acknowledges": rows(
        [
            SUBMITTED,
            (replace(limit="49", new_id="C2"), S.PENDING_REPLACE, "0", "10000", None),
            (AcceptReplace(), S.NEW, "0", "10000", None),
            (fill("E1", "10000", "49"), S.FILLED, "10000", "0", "49"),
        ],
        [PN, PN, NONE, NONE],
    ),
    "replace rejected before the acknowledgement": rows(
        [
            SUBMITTED,
            (replace("8000"), S.PENDING_REPLACE, "0", "10000", None),
            (RejectReplace("unknown order"), S.PENDING_NEW, "0", "10000", None),
            (RejectOrder("venue closed"), S.REJECTED, "0", "0", None),
        ],
        [PN, PN, PN, S.REJECTED],
    ),
    "fill while a replace of an unacknowledged order is pending": rows(
        [
            SUBMITTED,
            (replace("8000"), S.PENDING_REPLACE, "0", "10000", None),
            (fill("E1", "3000", "50"), S.PENDING_REPLACE, "3000", "7000", "50"),
            (AcceptReplace(), S.PARTIALLY_FILLED, "3000", "5000", "50"),
        ],
        [PN, PN, NONE, NONE],
    ),
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_request_before_the_acknowledgement(steps: list[Row]) -> None:
    order: Order | None = None
    for i, (command, status, cum, leaves, avg, condition) in enumerate(steps):
        order = decide(order, command, T0 + timedelta(seconds=i), ACTOR).order
        expected = (status, D(cum), D(leaves), None if avg is None else D(avg))
        assert state(order) == expected, f"step {i}: {command}"
        assert order.condition is condition, f"step {i}: {command}"
        assert order.history[-1].status is status
        check_invariants(order)


def test_the_cancel_request_names_the_order_after_it_is_canceled() -> None:
    order = decide(None, submit(), T0, ACTOR).order
    for command in (RequestCancel(ClientOrderId("Y")), AcknowledgeOrder(), AcceptCancel()):
        order = decide(order, command, T0, ACTOR).order
    assert (order.status, order.client_order_id) == (S.CANCELED, "Y")


def test_pending_new_stays_underneath_the_request() -> None:
    order = decide(None, submit(), T0, ACTOR).order
    order = decide(order, RequestCancel(), T0, ACTOR).order
    assert order.pending is not None and order.pending.kind is RequestKind.CANCEL
    assert (order.status, order.condition, order.leaves_qty) == (S.PENDING_CANCEL, PN, D(10000))


def test_an_acknowledgement_of_an_acknowledged_order_changes_nothing_but_history() -> None:
    order = decide(None, submit(), T0, ACTOR).order
    for command in (AcknowledgeOrder(), fill("E1", "2000", "50"), RequestCancel()):
        order = decide(order, command, T0, ACTOR).order
    again = decide(order, AcknowledgeOrder(), T0, ACTOR).order
    assert (again.status, again.condition, again.pending) == (
        order.status,
        order.condition,
        order.pending,
    )
    assert state(again) == state(order)
    assert len(again.history) == len(order.history) + 1


@pytest.mark.parametrize(
    "command",
    [RequestCancel(), replace("9000")],
    ids=["second cancel", "replace"],
)
def test_still_refused_while_the_cancel_of_an_unacknowledged_order_is_pending(
    command: Command,
) -> None:
    """One request at a time (as for an acknowledged order)."""
    order = decide(None, submit(), T0, ACTOR).order
    order = decide(order, RequestCancel(), T0, ACTOR).order
    with pytest.raises(IllegalTransition):
        decide(order, command, T0, ACTOR)


def test_the_table_rows_for_requests_on_pending_new() -> None:
    assert TRANSITIONS[(S.PENDING_NEW, K.REQUEST_CANCEL)] is S.PENDING_CANCEL
    assert TRANSITIONS[(S.PENDING_NEW, K.CONFIRM_PENDING_CANCEL)] is S.PENDING_CANCEL
    assert TRANSITIONS[(S.PENDING_NEW, K.REQUEST_REPLACE)] is S.PENDING_REPLACE
    assert TRANSITIONS[(S.PENDING_NEW, K.CONFIRM_PENDING_REPLACE)] is S.PENDING_REPLACE


@pytest.mark.parametrize("request_", [RequestCancel(), replace("9000")], ids=["cancel", "replace"])
def test_the_venue_rejects_an_order_whose_request_is_pending(request_: Command) -> None:
    """B.1.d/B.1.e: the venue rejects the order it never took while the client's cancel or
    replace is on its way: the order is rejected, the request ends with it, nothing is left
    (it used to be refused, leaving the order pending with its cash reserved)."""
    order = decide(None, submit(), T0, ACTOR).order
    order = decide(order, request_, T0, ACTOR).order
    done = decide(order, RejectOrder("unknown symbol"), T0, ACTOR).order
    assert (done.status, done.pending, done.leaves_qty, done.live) == (
        S.REJECTED, None, D(0), False)
