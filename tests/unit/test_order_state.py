"""The stored form of an Order: `order_book.order_state` builds, field by field, exactly the text
the generic `audit.canonical_json` gives, and `load_state` reads it back to the same Order, for
an order in every status and after every command each status allows (pending requests with new
terms, fills, corrections, busts, restatements, rejections)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from oms import audit, order_book
from oms.errors import TieoutError
from oms.orders import Order, decide
from tests.unit.test_orders import ACTOR, ORDERS, SAMPLES, T0


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
    assert order_book.load_state(text) == order


def test_a_gtd_order_with_odd_decimals() -> None:
    base = ORDERS[next(iter(ORDERS))]
    from datetime import date
    from decimal import Decimal

    submitted = dataclasses.replace(
        base.submitted, expire_at=date(2030, 1, 2), quantity=Decimal("10000.000")
    )
    order = dataclasses.replace(base, submitted=submitted, expire_at=date(2030, 1, 2))
    assert order_book.order_state(order) == audit.canonical_json(order)
