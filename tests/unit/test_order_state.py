"""The stored form of an Order: `order_book.order_state` builds, field by field, exactly the text
the generic `audit.canonical_json` gives, and `load_state` reads it back to the same Order, for
an order in every status and after every command each status allows (pending requests with new
terms, fills, corrections, busts, restatements, rejections)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal as D

import pytest

from oms import audit, order_book
from oms.errors import TieoutError
from oms.orders import Order, decide
from tests.unit.test_orders import ACTOR, ORDERS, SAMPLES, T0, apply, submit


def _reachable() -> list[Order]:
    found = list(ORDERS.values())
    for order in ORDERS.values():
        for command in SAMPLES.values():
            try:
                found.append(decide(order, command, T0 + timedelta(hours=1), ACTOR).order)
            except TieoutError:
                continue  # not allowed in that status
    return found


REACHABLE = _reachable()


def test_the_fixtures_reach_many_shapes() -> None:
    assert len(REACHABLE) > 60
    assert any(o.pending is not None and o.pending.quantity is not None for o in REACHABLE)
    assert any(o.fills and o.fills[0].corrected_by for o in REACHABLE)


@pytest.mark.parametrize(
    "order", REACHABLE, ids=[f"{o.status}-{i}" for i, o in enumerate(REACHABLE)]
)
def test_order_state_is_the_canonical_json(order: Order) -> None:
    text = order_book.order_state(order)
    assert text == audit.canonical_json(order)
    assert order_book.load_state(text, None) == order


def test_a_remembered_state_is_what_its_text_reads_as() -> None:
    """load_state keeps the last states read or stored by their text (an order with thousands
    of fills is not rebuilt from its text for each report): what it hands out for a text is
    what reading the text gives, field for field, and only the last few are kept."""
    for order in REACHABLE:
        text = order_book.order_state(order)
        parsed = order_book._load_state(text, None)
        order_book.remember_state(text, order)
        assert order_book.load_state(text, None) is order
        # field for field, as their reprs: Decimal('1E+2') and Decimal('100'), -0 and 0, an
        # enum and its text, or two UTC tzinfo objects compare equal but print apart
        assert repr(parsed) == repr(order)
        assert order_book.order_state(parsed) == text
    assert len(order_book._KEPT_STATES) == order_book._KEEP_STATES
    oldest = REACHABLE[-order_book._KEEP_STATES - 1]
    again = order_book.load_state(order_book.order_state(oldest), None)
    assert again == oldest and again is not oldest  # dropped: read from its text again


def test_a_long_order_is_written_as_canonical_json_after_every_change() -> None:
    """An order with many fills keeps its fills' and history's text between writes and writes
    only what was added (order_state's kept lists): after fills, a correction and a bust in
    the middle, the same order read back from its text (other objects, equal values), and
    another order of the same id, the text is still canonical_json's."""
    from oms.orders import AcknowledgeOrder, ApplyFill, BustFill, CorrectFill, ExecId

    order = apply([submit("100000"), AcknowledgeOrder()])
    at = T0 + timedelta(minutes=1)

    def step(o: Order, command: object) -> Order:
        after = decide(o, command, at, ACTOR).order  # type: ignore[arg-type]
        assert order_book.order_state(after) == audit.canonical_json(after)
        return after

    for i in range(150):
        order = step(order, ApplyFill(ExecId(f"E{i}"), D("1.5"), D("49.25")))
    order = step(order, CorrectFill(ExecId("C1"), ExecId("E70"), D("2"), D("49")))
    order = step(order, ApplyFill(ExecId("E150"), D("1"), D("50")))
    order = step(order, BustFill(ExecId("B1"), ExecId("E3")))
    reread = order_book._load_state(order_book.order_state(order), None)
    reread = step(reread, ApplyFill(ExecId("E151"), D("1.50"), D("49.10")))
    other = apply([submit("100000"), AcknowledgeOrder()])
    for i in range(70):
        other = step(other, ApplyFill(ExecId(f"X{i}"), D("3"), D("48")))
    step(order, ApplyFill(ExecId("E152"), D("1"), D("50")))


def test_a_gtd_order_with_odd_decimals() -> None:
    base = ORDERS[next(iter(ORDERS))]
    from datetime import date
    from decimal import Decimal

    submitted = dataclasses.replace(
        base.submitted, expire_at=date(2030, 1, 2), quantity=Decimal("10000.000")
    )
    order = dataclasses.replace(base, submitted=submitted, expire_at=date(2030, 1, 2))
    assert order_book.order_state(order) == audit.canonical_json(order)
