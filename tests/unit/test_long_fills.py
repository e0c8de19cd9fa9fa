"""An order with many fills (an algorithm's day): the sums and ExecIDs kept beside a long fills
tuple (oms.orders.with_fill) give what a pass over every fill gives, and a report's work does
not grow with the fills before it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oms.orders
from oms.errors import Refused
from oms.orders import AcknowledgeOrder, Fill, Order, average_price, decide, filled_notional
from oms.values import ExecId
from tests.unit.test_orders import ACTOR, T0, apply, bust, correct, fill, submit

D = Decimal
LONG = oms.orders._LONG


def long_order(n: int, quantity: str = "1000000") -> Order:
    return apply(
        [
            submit(quantity),
            AcknowledgeOrder(),
            *(fill(f"F{i}", str(i % 7 + 1), f"{50 + i % 13}.{i % 100:02d}") for i in range(n)),
        ]
    )


def from_scratch(order: Order) -> Order:
    """The same order rebuilt through its constructor from a new fills tuple (nothing kept for
    it): the constructor recomputes cum_qty, leaves_qty and avg_px from the fills."""
    fills = tuple(Fill(*f) for f in order.fills)
    return Order(
        **{**{f.name: getattr(order, f.name) for f in dataclasses.fields(Order)}, "fills": fills}
    )


def test_a_long_order_has_the_sums_of_its_fills() -> None:
    order = long_order(3 * LONG)
    again = from_scratch(order)
    assert (order.cum_qty, order.leaves_qty, order.avg_px) == (
        again.cum_qty,
        again.leaves_qty,
        again.avg_px,
    )
    copy = tuple(Fill(*f) for f in order.fills)
    assert filled_notional(order.fills) == filled_notional(list(copy))
    assert average_price(order.fills) == average_price(list(copy))


def test_a_long_order_refuses_an_execid_it_has_and_takes_one_it_has_not() -> None:
    order = long_order(2 * LONG)
    at = T0 + timedelta(hours=1)
    for known in ("F0", f"F{LONG}", f"F{2 * LONG - 1}"):
        with pytest.raises(Refused, match="booked on order O1 already"):
            decide(order, fill(known, "1", "50"), at, ACTOR)
    corrected = decide(order, correct("G1", "F3", "2", "51"), at, ACTOR).order
    with pytest.raises(Refused, match="booked on order O1 already"):
        decide(corrected, fill("G1", "1", "50"), at, ACTOR)  # a correction's ExecID is known too
    busted = decide(corrected, bust("H1", "G1"), at, ACTOR).order  # named by its correction
    assert busted.cum_qty == from_scratch(busted).cum_qty
    assert decide(order, fill("NEW", "1", "50"), at, ACTOR).order.cum_qty == order.cum_qty + 1


def test_two_orders_grown_from_one_keep_their_own_execids() -> None:
    """A tuple's kept ExecIDs pass to the tuple one fill longer: another fill added to the same
    tuple afterwards must not see the first one's fill, nor miss its own."""
    base = long_order(LONG + 5)
    at = T0 + timedelta(hours=1)
    one = decide(base, fill("X", "1", "50"), at, ACTOR).order
    other = decide(base, fill("Y", "2", "60"), at, ACTOR).order
    for order, has, lacks in ((one, "X", "Y"), (other, "Y", "X"), (base, None, "X")):
        if has is not None:
            with pytest.raises(Refused, match="already"):
                decide(order, fill(has, "1", "50"), at, ACTOR)
        assert decide(order, fill(lacks, "1", "50"), at, ACTOR).order.cum_qty == order.cum_qty + 1
        assert (order.cum_qty, order.avg_px) == (
            from_scratch(order).cum_qty,
            from_scratch(order).avg_px,
        )
    assert (one.cum_qty, other.cum_qty) == (base.cum_qty + 1, base.cum_qty + 2)


def test_a_report_on_a_long_order_does_not_look_at_every_fill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The work of a fill to an order of thousands of fills is the same as to one of a hundred:
    counted as the fills looked at (Fill.known_as) and the passes over every fill (a fresh
    order's once, then none)."""
    order = long_order(3000)
    looked = 0
    passes = 0
    known_as = Fill.known_as
    ids_of = oms.orders._ids_of

    def counting_known_as(self: Fill, exec_id: str) -> bool:
        nonlocal looked
        looked += 1
        return known_as(self, exec_id)

    def counting_ids_of(fills: tuple[Fill, ...]) -> dict[str, int]:
        nonlocal passes
        passes += 1
        return ids_of(fills)

    monkeypatch.setattr(Fill, "known_as", counting_known_as)
    monkeypatch.setattr(oms.orders, "_ids_of", counting_ids_of)
    at = T0 + timedelta(hours=1)
    for i in range(200):
        order = decide(order, fill(f"N{i}", "1", "50"), at, ACTOR).order
    assert looked <= 200  # one candidate checked a report at most (none when the id is new)
    assert passes <= 1
    assert order.cum_qty == from_scratch(order).cum_qty


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=D("0.001"), max_value=D(500), places=3),
            st.decimals(min_value=D("0.0001"), max_value=D(9999), places=4),
        ),
        min_size=LONG - 2,
        max_size=LONG + 40,
    ),
    st.data(),
)
def test_fills_applied_one_by_one_give_what_one_pass_gives(
    terms: list[tuple[Decimal, Decimal]], data: st.DataObject
) -> None:
    """Across the length where the kept sums take over, with a correction and a bust now and
    then: each step's cum_qty, leaves_qty and avg_px are those of the constructor's pass over a
    fresh copy of the fills."""
    order = apply([submit("1000000"), AcknowledgeOrder()])
    at = T0 + timedelta(minutes=1)
    for i, (quantity, price) in enumerate(terms):
        order = decide(
            order, oms.orders.ApplyFill(ExecId(f"F{i}"), quantity, price), at, ACTOR
        ).order
        action = data.draw(st.sampled_from(["none"] * 8 + ["correct", "bust"]))
        if action != "none" and order.fills:
            target = data.draw(st.sampled_from(order.fills)).exec_id
            if action == "correct":
                command: oms.orders.Command = correct(f"G{i}", target, "1", "10")
            else:
                command = bust(f"H{i}", target)
            order = decide(order, command, at, ACTOR).order
        again = from_scratch(order)
        assert (order.cum_qty, order.leaves_qty, order.avg_px) == (
            again.cum_qty,
            again.leaves_qty,
            again.avg_px,
        )
