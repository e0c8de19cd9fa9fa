"""The account statement's pure builder (reports.statement): a hand-worked example, and the
NAV identity proved over generated deposits, withdrawals, trades and marks (hypothesis).

Every number is a Decimal made from an int or a string, never a float."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.errors import BadInput
from oms.lots import ExecRecord, build_positions, cash_flow
from oms.values import ZERO, CostMethod, Side
from reports.firm import firm_from_settings
from reports.lot_trace import trace
from reports.statement import (
    AccountInfo,
    CashEntry,
    Mark,
    StatementInput,
    build_statement,
    reconciles,
)

D = Decimal
DAY0 = date(2026, 3, 2)
NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)
FIRM = firm_from_settings({})
ACCOUNT = AccountInfo("A1", "Alpha Fund", "USD", "margin")


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def fill(
    seq: int,
    side: Side,
    qty: str | Decimal,
    price: str | Decimal,
    comm: str | Decimal = "0",
    fees: str | Decimal = "0",
    *,
    on: int = 0,
    symbol: str = "X",
    currency: str = "USD",
) -> ExecRecord:
    return ExecRecord(
        seq=seq,
        venue="V",
        exec_id=f"E{seq}",
        account="A1",
        symbol=symbol,
        side=side,
        quantity=D(qty),
        price=D(price),
        commission=D(comm),
        fees=D(fees),
        trade_date=day(on),
        exec_time=datetime(2026, 3, 2, 15, tzinfo=UTC) + timedelta(days=on, seconds=seq),
        currency=currency,
        settle_date=day(on + 1),
    )


def make_input(
    fills: Sequence[ExecRecord],
    entries: Sequence[CashEntry],
    marks: Sequence[Mark],
    start: int,
    end: int,
    method: CostMethod = CostMethod.FIFO,
    account: AccountInfo = ACCOUNT,
    settled: Decimal = ZERO,
) -> StatementInput:
    return StatementInput(
        account=account,
        period_from=day(start),
        period_to=day(end),
        fills=tuple(fills),
        cash_entries=tuple(entries),
        marks=tuple(marks),
        settled_cash=settled,
        firm=FIRM,
        generated_at=NOW,
        audit_head="ab" * 32,
        method=method,
    )


def example_input() -> StatementInput:
    fills = [
        fill(1, Side.BUY, "10", "100", "1", on=1),
        fill(2, Side.SELL, "4", "105", "1", "0.5", on=3),
    ]
    entries = [
        CashEntry(1, "deposit", day(0), D("10000"), "wire-1"),
        CashEntry(2, "withdrawal", day(4), D("-500"), None, "bank-1"),
    ]
    marks = [Mark("X", day(2), D("101")), Mark("X", day(5), D("110"))]
    return make_input(fills, entries, marks, start=3, end=5, settled=D("9000"))


def test_a_hand_worked_statement() -> None:
    s = build_statement(example_input())
    assert (s.opening_cash, s.opening_nav) == (D("8999"), D("10009"))
    assert (s.closing_cash, s.market_value, s.closing_nav) == (D("8917.5"), D("660"), D("9577.5"))
    assert (s.deposits, s.withdrawals, s.other_cash) == (ZERO, D("500"), ZERO)
    assert (s.realized_pnl, s.realized_pnl_net) == (D("20"), D("18.1"))
    assert (s.opening_unrealized_pnl, s.unrealized_pnl) == (D("10"), D("60"))
    assert s.unrealized_pnl_net == D("59.4")
    assert (s.commissions, s.fees) == (D("1"), D("0.5"))
    assert s.change_in_nav == D("-431.5")
    assert reconciles(s) == 0
    (pos,) = s.positions
    assert (pos.quantity, pos.cost_basis, pos.market_price, pos.market_value) == (
        D("6"), D("600.6"), D("110"), D("660"),
    )  # fmt: skip
    assert (pos.unrealized_pnl, pos.unrealized_pnl_before_costs, pos.pct_of_nav) == (
        D("59.4"), D("60"), D("6.89"),
    )  # fmt: skip
    (trade,) = s.trades
    assert (trade.proceeds, trade.net_amount, trade.basis, trade.realized_pnl) == (
        D("420"), D("418.5"), D("400.4"), D("18.1"),
    )  # fmt: skip
    assert [(c.day, c.kind, c.amount, c.balance) for c in s.cash] == [
        (day(3), "trade", D("418.5"), D("9417.5")),
        (day(4), "withdrawal", D("-500"), D("8917.5")),
    ]
    assert s.cash[1].description == "Withdrawal to bank-1"
    assert [p.nav for p in s.daily_nav] == [D("10009"), D("10023.5"), D("9523.5"), D("9577.5")]
    assert s.pending_settlement == D("-82.5")
    doc = s.as_json()
    for key in ("account", "from", "to", "currency", "opening_nav", "closing_nav", "deposits",
                "withdrawals", "realized_pnl", "unrealized_pnl", "commissions", "fees",
                "positions", "trades", "cash", "audit_head"):  # fmt: skip
        assert key in doc
    assert (doc["from"], doc["to"], doc["closing_nav"], doc["withdrawals"]) == (
        "2026-03-05", "2026-03-07", "9577.5", "500",
    )  # fmt: skip
    assert doc["positions"][0]["pct_of_nav"] == "6.89"
    assert D(doc["trades"][0]["basis"]) == D("400.4")  # exact; the scale is the lot relief's


def test_an_unpriced_position_is_valued_at_cost_and_said_so() -> None:
    inp = make_input([fill(1, Side.BUY, "3", "50", "2", on=0)], [], [], start=1, end=2)
    s = build_statement(inp)
    (pos,) = s.positions
    assert (pos.market_price, pos.market_value, pos.unrealized_pnl_before_costs) == (
        None, D("150"), ZERO,
    )  # fmt: skip
    assert pos.unrealized_pnl == D("-2")
    assert any("no market price" in n for n in s.notes)
    assert reconciles(s) == 0


def test_fills_in_another_currency_are_left_out_with_a_note() -> None:
    inp = make_input(
        [fill(1, Side.BUY, "1", "10", on=2), fill(2, Side.BUY, "1", "10", on=2, currency="EUR",
                                                   symbol="Y")],
        [], [Mark("X", day(2), D("10"))], start=2, end=2,
    )  # fmt: skip
    s = build_statement(inp)
    assert [t.exec_id for t in s.trades] == ["E1"]
    assert any("EUR" in n for n in s.notes)
    assert reconciles(s) == 0


def test_a_period_that_ends_before_it_starts_is_bad_input() -> None:
    with pytest.raises(BadInput, match="after --to"):
        build_statement(make_input([], [], [], start=3, end=2))


def test_an_empty_account_has_a_flat_zero_statement() -> None:
    s = build_statement(make_input([], [], [], start=0, end=0))
    assert (s.opening_nav, s.closing_nav, s.positions, s.trades, s.cash) == (ZERO, ZERO, (), (), ())
    assert not s.chart.empty  # two points: the day before and the day


# ---- generated activity ------------------------------------------------------------------------

SYMBOLS = ("X", "Y")
cents = st.integers(1, 50_000).map(lambda n: D(n).scaleb(-2))
small_costs = st.integers(0, 999).map(lambda n: D(n).scaleb(-2))
odd_costs = st.integers(0, 99_999).map(lambda n: D(n).scaleb(-5))  # beyond cents


@st.composite
def activities(draw: st.DrawFn) -> StatementInput:
    n = draw(st.integers(0, 25))
    fills = []
    for seq in range(1, n + 1):
        fills.append(
            fill(
                seq,
                draw(st.sampled_from(list(Side))),
                D(draw(st.integers(1, 40))).scaleb(-draw(st.integers(0, 2))),
                draw(cents),
                draw(st.one_of(small_costs, odd_costs)),
                draw(small_costs),
                on=draw(st.integers(0, 12)),
                symbol=draw(st.sampled_from(SYMBOLS)),
            )
        )
    entries = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["deposit", "withdrawal", "interest"]))
        amount = draw(cents) * (-1 if kind == "withdrawal" else 1)
        entries.append(CashEntry(i + 1, kind, day(draw(st.integers(0, 12))), amount, f"r{i}"))
    marks = [
        Mark(sym, day(d), draw(cents))
        for sym in SYMBOLS
        for d in draw(st.lists(st.integers(0, 12), max_size=8, unique=True))
    ]
    start = draw(st.integers(0, 10))
    end = draw(st.integers(start, 12))
    method = draw(st.sampled_from(list(CostMethod)))
    return make_input(fills, entries, marks, start, end, method)


@settings(max_examples=150, deadline=None)
@given(inp=activities())
def test_the_statement_reconciles_exactly(inp: StatementInput) -> None:
    s = build_statement(inp)
    # opening NAV + deposits - withdrawals + realized + change in unrealized - costs = closing NAV
    assert (
        s.opening_nav + s.deposits - s.withdrawals + s.other_cash + s.realized_pnl
        + (s.unrealized_pnl - s.opening_unrealized_pnl) - s.commissions - s.fees
        == s.closing_nav
    )  # fmt: skip
    assert reconciles(s) == 0
    # closing NAV is cash plus the market value of the positions, and the chart's last point
    assert s.closing_nav == s.closing_cash + s.market_value
    assert s.market_value == sum((p.market_value for p in s.positions), ZERO)
    assert (s.daily_nav[0].nav, s.daily_nav[-1].nav) == (s.opening_nav, s.closing_nav)
    assert len(s.daily_nav) == (inp.period_to - inp.period_from).days + 2
    # trade-date cash, computed independently
    upto = [f for f in inp.fills if f.trade_date <= inp.period_to]
    expected_cash = sum((e.amount for e in inp.cash_entries if e.value_date <= inp.period_to), ZERO)
    expected_cash += sum((cash_flow(f) for f in upto), ZERO)
    assert s.closing_cash == expected_cash
    if s.cash:
        assert s.cash[-1].balance == s.closing_cash
    # trade lines add up to the realized P&L of the book's own lot relief
    before = [f for f in upto if f.trade_date < inp.period_from]
    realized = sum((p.realized_pnl for p in build_positions(upto, inp.method).values()), ZERO)
    realized -= sum((p.realized_pnl for p in build_positions(before, inp.method).values()), ZERO)
    assert s.realized_pnl_net == realized
    assert sum((t.realized_pnl for t in s.trades), ZERO) == realized
    assert sum((p.unrealized_pnl for p in s.positions), ZERO) == s.unrealized_pnl_net
    # costs: what the summary lists apart is what the tax-lot figures hold inside, so the
    # identity holds in that convention too
    assert s.commissions + s.fees == sum((f.commission + f.fees for f in upto
                                          if f.trade_date >= inp.period_from), ZERO)  # fmt: skip
    assert (s.realized_pnl + s.unrealized_pnl - s.opening_unrealized_pnl - s.commissions - s.fees
            == s.realized_pnl_net + s.unrealized_pnl_net - _net_unrealized(inp))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(inp=activities())
def test_each_days_market_value_is_the_positions_rebuilt_through_that_day(
    inp: StatementInput,
) -> None:
    """The daily NAV walks forward through one lot relief (it rebuilt every position from
    every fill on each traded day: a year's statement cost 18 times a quarter's); each day's
    market value is still that of the positions built from the fills through that day, each
    at its mark of that day or before, unpriced at cost (costs left out, as the walk has
    them)."""
    s = build_statement(inp)
    gross = [f._replace(commission=ZERO, fees=ZERO) for f in inp.fills if f.currency == "USD"]
    for point in s.daily_nav:
        held = build_positions([f for f in gross if f.trade_date <= point.day], inp.method)
        expected = ZERO
        for (_, symbol), position in held.items():
            if not position.quantity:
                continue
            marks = [m for m in inp.marks if m.symbol == symbol and m.day <= point.day]
            mark = max(marks, key=lambda m: m.day).price if marks else None
            expected += position.cost_basis if mark is None else position.quantity * mark
        # to the digit, and written as the positions write it (the sum of all bases opened
        # less all relieved is the same number, with 12 places: "20.000000000000")
        assert str(point.market_value) == str(expected), point


def _net_unrealized(inp: StatementInput) -> Decimal:
    """The opening unrealized P&L in the tax-lot convention: the statement as of the day before."""
    prior = inp.period_from - timedelta(days=1)
    earlier = StatementInput(
        inp.account, prior, prior, inp.fills, inp.cash_entries, inp.marks, inp.settled_cash,
        inp.firm, inp.generated_at, inp.audit_head, inp.method,
    )  # fmt: skip
    return build_statement(earlier).unrealized_pnl_net


@settings(max_examples=100, deadline=None)
@given(inp=activities())
def test_the_per_trade_trace_matches_the_books_lot_relief(inp: StatementInput) -> None:
    effects = trace(inp.fills, inp.method)
    assert set(effects) == {f.seq for f in inp.fills}
    built = build_positions(inp.fills, inp.method)
    for (_, symbol), position in built.items():
        mine = [effects[f.seq] for f in inp.fills if f.symbol == symbol]
        assert sum((e.realized_pnl for e in mine), ZERO) == position.realized_pnl
        opened = sum((e.opened_basis for e in mine), ZERO)
        relieved = sum((e.relieved_basis for e in mine), ZERO)
        assert opened - relieved == position.cost_basis
