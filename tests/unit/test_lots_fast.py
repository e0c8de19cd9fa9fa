"""The columnar fast path (build_positions_frame), the one lot relief behind build_positions
and the per-trade relief (relief_trace), against the reference Decimal path: build_positions
and reports.lot_trace as they were before the fast path (tests/unit/lots_reference.py, kept
verbatim as an oracle).

Positions are compared through str() of every Decimal, so a result that is numerically equal
but carries another exponent ("5.00" against "5.0") fails: the JSON shows exponents.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.errors import BadInput
from oms.lots import (
    CONTEXT,
    ExecRecord,
    Position,
    build_positions,
    build_positions_frame,
    effective_fills,
    fill_frame,
    relief_trace,
)
from oms.values import ZERO, CostMethod, Side
from tests.unit.lots_reference import reference_build_positions, reference_trace
from tests.unit.test_lots import METHODS, fill_lists, prices, quantities, rec, sides

PROPS = settings(max_examples=300, deadline=None)


def exact(positions: dict[tuple[str, str], Position] | None) -> Any:
    """Every figure as its exact text (value and exponent), lots included."""
    assert positions is not None
    return {
        key: (
            str(p.quantity),
            str(p.cost_basis),
            str(p.realized_pnl),
            str(p.commissions),
            str(p.fees),
            str(p.avg_cost),
            [
                (lot.opened, str(lot.quantity), str(lot.price), str(lot.cost_basis))
                for lot in p.lots
            ],
        )
        for key, p in positions.items()
    }


@st.composite
def books(draw: st.DrawFn) -> list[ExecRecord]:
    """Fills, then corrections and busts naming random earlier records (fills or changes),
    some with new terms on another trade date or symbol."""
    records = draw(fill_lists(max_size=25))
    changes = draw(
        st.lists(
            st.tuples(
                st.integers(0, 40),
                st.booleans(),
                sides,
                quantities,
                prices,
                st.integers(0, 4),
                st.sampled_from(["S1", "S2"]),
            ),
            max_size=8,
        )
    )
    for n, (pick, is_bust, side, q, p, on, symbol) in enumerate(changes):
        if not records:
            break
        target = records[pick % len(records)]
        records.append(
            rec(
                100 + n,
                side,
                q,
                p,
                on=on,
                account=target.account,
                symbol=symbol,
                exec_id=f"X{n}",
                exec_type="bust" if is_bust else "correct",
                ref=target.exec_id,
            )
        )
    return records


@PROPS
@given(books(), st.sampled_from(METHODS))
def test_build_positions_is_the_reference_relief(
    records: list[ExecRecord], method: CostMethod
) -> None:
    fills = effective_fills(records)
    assert exact(build_positions(fills, method)) == exact(reference_build_positions(fills, method))


@PROPS
@given(books(), st.sampled_from(METHODS), st.randoms(use_true_random=False))
def test_the_fast_path_equals_the_reference_decimal_path(
    records: list[ExecRecord], method: CostMethod, rnd: random.Random
) -> None:
    """Random fills with corrections and busts, FIFO, LIFO and average: the columns, in any
    order, give exactly the reference's positions."""
    fills = effective_fills(records)
    shuffled = list(fills)
    rnd.shuffle(shuffled)
    fast = build_positions_frame(fill_frame(shuffled), method)
    assert exact(fast) == exact(reference_build_positions(fills, method))


@PROPS
@given(books(), st.sampled_from(METHODS))
def test_the_per_trade_relief_is_the_reference_trace(
    records: list[ExecRecord], method: CostMethod
) -> None:
    fills = effective_fills(records)
    mine = relief_trace(fills, method)
    theirs = reference_trace(fills, method)
    assert set(mine) == set(theirs) == {f.seq for f in fills}
    by_seq = {f.seq: f for f in fills}
    with localcontext(CONTEXT):
        for seq, effect in mine.items():
            old = theirs[seq]
            figures = (effect.closed, effect.relieved_basis, effect.realized_pnl)
            assert [str(x) for x in (*figures, effect.opened_basis)] == [
                str(x) for x in (old.closed, old.relieved_basis, old.realized_pnl, old.opened_basis)
            ]
            # the lots it relieved: what it closed, lot by lot, from fills before it
            assert sum((r.quantity for r in effect.relieved), ZERO) == effect.closed
            assert sum((r.cost_basis for r in effect.relieved), ZERO) == effect.relieved_basis
            for part in effect.relieved:
                opener = by_seq[part.opened_by]
                assert part.opened == opener.trade_date
                assert (opener.account, opener.symbol) == (by_seq[seq].account, by_seq[seq].symbol)
                assert opener.side != by_seq[seq].side
                assert part.quantity > 0


def test_the_per_trade_relief_names_the_lots() -> None:
    fills = [
        rec(1, Side.BUY, "10", "100", "1", on=0),
        rec(2, Side.BUY, "10", "110", on=1),
        rec(3, Side.SELL, "15", "120", "3", on=2),
    ]
    fifo = relief_trace(fills, CostMethod.FIFO)[3]
    assert [(r.opened_by, r.opened, r.quantity, r.cost_basis) for r in fifo.relieved] == [
        (1, date(2024, 3, 4), Decimal("10"), Decimal("1001")),
        (2, date(2024, 3, 5), Decimal("5"), Decimal("550.000000000000")),
    ]
    assert fifo.realized_pnl == Decimal("1800") - Decimal("3") - Decimal("1551")
    lifo = relief_trace(fills, CostMethod.LIFO)[3]
    assert [(r.opened_by, r.quantity) for r in lifo.relieved] == [
        (2, Decimal("10")),
        (1, Decimal("5")),
    ]
    assert relief_trace(fills)[1].relieved == ()


def test_fill_frame_keeps_exponents() -> None:
    fill = rec(1, Side.BUY, "1.50", "2.000", "0.10", "0")._replace(quantity=Decimal("1E+2"))
    frame = fill_frame([fill])
    assert frame.row(0)[3:8] == ("buy", "1E+2", "2.000", "0.10", "0")
    assert exact(build_positions_frame(frame)) == exact(reference_build_positions([fill]))


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": "0"},
        {"quantity": "-1"},
        {"price": "0"},
        {"commission": "-0.01"},
        {"fees": "-0.01"},
        {"quantity": "NaN"},
        {"quantity": "x"},
        {"side": "short"},
        {"side": None},
        {"price": None},
    ],
)
def test_the_fast_path_declines_what_build_positions_refuses(change: dict[str, Any]) -> None:
    frame = fill_frame([rec(1, Side.BUY, "1", "10"), rec(2, Side.SELL, "1", "10")])
    bad = frame.with_columns(
        *(
            pl.when(pl.col("seq") == 2).then(pl.lit(v, pl.String())).otherwise(pl.col(c)).alias(c)
            for c, v in change.items()
        )
    )
    assert build_positions_frame(bad) is None
    assert build_positions_frame(frame) is not None


def test_beyond_the_digits_of_exact_arithmetic_is_declined_and_refused() -> None:
    """A pro rata share whose quantized value needs more than the context's 60 digits."""
    big = "9" * 50
    fills = [
        rec(1, Side.BUY, "3", big, "1", on=0),
        rec(2, Side.SELL, "1", "1", on=1),
        rec(3, Side.BUY, "1", "1", on=2, symbol="OK"),
    ]
    assert build_positions_frame(fill_frame(fills)) is None
    with pytest.raises(BadInput, match="digits") as err:
        build_positions(fills)
    assert "E2" in str(err.value)
    with pytest.raises(BadInput, match="digits"):
        reference_build_positions(fills)


def test_empty() -> None:
    assert build_positions_frame(fill_frame([])) == {}
    assert relief_trace([]) == {}
