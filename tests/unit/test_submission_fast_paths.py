"""The fast paths of order submission give exactly what their reference gives:

- `orders.decide` builds the Orders it returns without re-running the Order constructor's
  consistency check (their derived fields are computed by the functions the check uses): every
  order of random command sequences passes that check when rebuilt, and is equal to the rebuild;
- the transitions look the reported status up in a table made from `reported_status`: equal
  for every (open request, condition, quantities) there is;
- `audit.canonical_text` (the audit chain's encoder) is `audit.canonical_json`, the hash's
  definition, for any payload; `values.utc_iso_fast` is `utc_iso` for any aware time;
- `order_book.command_payload` and `order_state` (with the submitted text given or not) are
  canonical_json of the order event payload and of the order.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms import audit, order_book, orders
from oms.errors import TieoutError
from oms.orders import (
    CONDITIONS,
    Order,
    OrderStatus,
    RequestKind,
    decide,
    reported_status,
)
from oms.values import AccountId, ExecId, OrdType, Side, Symbol, TimeInForce, utc_iso, utc_iso_fast
from tests.unit.test_orders import ACTOR, SAMPLES, T0, draw_command, submit

D = Decimal


def _event_payload(command: Any) -> str:
    return audit.canonical_json({"command": type(command).__name__, "terms": command})


def _same_as_reference(order: Order) -> None:
    rebuilt = dataclasses.replace(order)  # the constructor's full consistency check
    assert rebuilt == order
    assert order_book.order_state(order) == audit.canonical_json(order)
    sub = order_book.submitted_text(order.submitted)
    assert sub == audit.canonical_json(order.submitted)
    assert order_book.order_state(order, sub) == audit.canonical_json(order)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    units=st.integers(1, 5000),
    scale=st.integers(0, 4),
    steps=st.integers(1, 40),
    reason=st.none() | st.text(max_size=20),
)
def test_decided_orders_pass_the_full_check_and_encode_as_the_reference(
    data: st.DataObject, units: int, scale: int, steps: int, reason: str | None
) -> None:
    ids = itertools.count(1)
    first = dataclasses.replace(submit(D(units).scaleb(-scale)), reason=reason)
    order = decide(None, first, T0, ACTOR).order
    _same_as_reference(order)
    assert order_book.command_payload(first) == _event_payload(first)
    for step in range(steps):
        command = draw_command(data, order, scale, ids)
        if data.draw(st.booleans()) and "reason" in {f.name for f in dataclasses.fields(command)}:
            command = dataclasses.replace(command, reason=reason)  # type: ignore[arg-type]
        assert order_book.command_payload(command) == _event_payload(command)
        try:
            order = decide(order, command, T0 + timedelta(seconds=step), ACTOR).order
        except TieoutError:
            continue
        _same_as_reference(order)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_command_payloads_of_every_command(kind: orders.CommandKind) -> None:
    command = SAMPLES[kind]
    assert order_book.command_payload(command) == _event_payload(command)
    again = order_book.command_payload(command)  # the memo of reason-only commands
    assert again == _event_payload(command)


def test_submit_payload_with_odd_terms() -> None:
    command = orders.SubmitOrder(
        order_id=orders.OrderId("O1"),
        client_order_id=orders.ClientOrderId('c"\\\u00e9\n'),
        account=AccountId("A"),
        symbol=Symbol("S"),
        side=Side.SELL,
        quantity=D("10.500"),
        type=OrdType.STOP_LIMIT,
        tif=TimeInForce.GTD,
        limit_price=D("1E+2"),
        stop_price=D("0.000000000001"),
        expire_at=date(2031, 2, 3),
        reason="\u2028 odd \x00",
    )
    text = order_book.submitted_text(command)
    assert text == audit.canonical_json(command)
    assert order_book.command_payload(command) == _event_payload(command)
    assert order_book.command_payload(command, text) == _event_payload(command)


_PRICE = st.builds(
    lambda digits, scale: D(digits).scaleb(-scale),
    st.integers(1, 10**30 - 1),
    st.integers(0, 16),  # beyond 12 places: rounded half-even
)


@settings(max_examples=300, deadline=None)
@given(quantity=_PRICE, price=_PRICE, other=_PRICE)
def test_average_price_of_one_fill_is_the_general_formula(
    quantity: Decimal, price: Decimal, other: Decimal
) -> None:
    one = orders.average_price((orders.Fill(ExecId("E1"), quantity, price, T0),))
    # the general case, from two fills with the same price: the same quotient
    two = orders.average_price(
        (
            orders.Fill(ExecId("E1"), quantity, price, T0),
            orders.Fill(ExecId("E2"), other, price, T0),
        )
    )
    exact = Fraction(price)
    want = Decimal(round(exact * 10**12)).scaleb(-12)
    assert one is not None and two is not None
    assert one == want == two
    assert str(one) == str(two)


def test_reported_status_table_is_the_function() -> None:
    for pending in (None, *RequestKind):
        request = None if pending is None else orders.PendingRequest(pending, T0)
        for condition in (None, *CONDITIONS):
            for cum in (D(0), D("0.5"), D(1), D(3)):
                want = reported_status(
                    pending=pending, condition=condition, cum_qty=cum, quantity=D(1)
                )
                assert orders._status(request, condition, cum, D(1)) is want
    with pytest.raises(KeyError):
        orders._status(None, OrderStatus.FILLED, D(0), D(1))


_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=_ZONES))
def test_utc_iso_fast_is_utc_iso(value: datetime) -> None:
    try:
        want = utc_iso(value)
    except OverflowError:
        return  # a time near year 1 or 9999 that UTC cannot hold: both fail
    assert utc_iso_fast(value) == want
    assert utc_iso_fast(value) == want  # from the memo


def test_utc_iso_fast_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc_iso_fast(datetime(2026, 1, 1))


@dataclasses.dataclass(frozen=True, slots=True)
class _Terms:
    a: Decimal
    b: datetime | None = None
    c: tuple[str, ...] = ()


_LEAF = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.datetimes(timezones=st.just(UTC), min_value=datetime(1000, 1, 1))
    | st.dates()
    | st.sampled_from(list(OrderStatus) + list(Side))
    | st.builds(_Terms, st.decimals(allow_nan=False, allow_infinity=False))
)
_PAYLOAD = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _PAYLOAD, max_size=6))
def test_canonical_text_is_canonical_json(payload: dict[str, Any]) -> None:
    assert audit.canonical_text(payload) == audit.canonical_json(payload)


def test_chain_hashes_as_append_would() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    items = [
        audit.NewEvent(at, "ops", "order.submit", "order", f"O{i}", {"q": D("1.50"), "i": i})
        for i in range(3)
    ]
    made = audit.chain((7, "f" * 64), items)
    prev = "f" * 64
    for seq, (event, item) in enumerate(zip(made, items, strict=True), start=8):
        body = audit.canonical_json(item.payload)
        want = audit.event_hash(
            prev, seq, utc_iso(at), "ops", "order.submit", "order", item.entity_id, None, body
        )
        assert (event.seq, event.payload, event.prev_hash, event.hash) == (seq, body, prev, want)
        prev = want
