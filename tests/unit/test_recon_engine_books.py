"""The matching engine for positions and cash."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.audit import canonical_json
from recon.canonical import CASH_BREAK_TYPES, POSITION_BREAK_TYPES, conform, empty
from recon.engine import BREAKS_SCHEMA, MatchResult, match_cash, match_positions

D = Decimal
DAY = date(2024, 3, 1)


def frame(kind: str, records: list[dict[str, Any]], *, venue: bool) -> pl.DataFrame:
    rows = []
    for n, record in enumerate(records, start=2 if venue else 1):
        rec = dict(record)
        rec.setdefault("row", n)
        if rec.get("ref") is None:
            rec["ref"] = f"row:{rec['row']}"
        rows.append(rec)
    if not rows:
        return empty(kind)
    return conform(pl.DataFrame(rows, infer_schema_length=None), kind)


def accounted(result: MatchResult, ints: pl.DataFrame, vens: pl.DataFrame, types: Any) -> None:
    refs = (
        result.matched["internal_ref"].drop_nulls().to_list()
        + result.breaks["internal_refs"].explode().drop_nulls().to_list()
    )
    refs = [r for r in refs if not r.startswith("balance:")]
    assert sorted(refs) == sorted(ints["ref"].to_list())
    rows = (
        result.matched["venue_row"].drop_nulls().to_list()
        + result.breaks["venue_rows"].explode().drop_nulls().to_list()
    )
    assert sorted(rows) == sorted(vens["row"].to_list())
    assert result.breaks.schema == pl.Schema(BREAKS_SCHEMA)
    assert set(result.breaks["type"].to_list()) <= set(types)
    assert result.breaks["break_key"].is_unique().all()
    for text in result.breaks["differences"].to_list():
        assert canonical_json(json.loads(text)) == text


# --- positions -------------------------------------------------------------------------------


def pos(
    account: str = "A1",
    symbol: str = "AAPL",
    quantity: str = "100",
    price: str | None = "10",
    *,
    internal: bool = False,
    **kw: Any,
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "account": account,
        "symbol": symbol,
        "quantity": D(quantity),
        "price": None if price is None else D(price),
        **kw,
    }
    if internal:
        rec["ref"] = f"pos:{account}:{symbol}"
    return rec


def positions(
    internal: list[dict[str, Any]], venue: list[dict[str, Any]], tol: dict[str, str] | None = None
) -> MatchResult:
    ints = frame("positions", internal, venue=False)
    vens = frame("positions", venue, venue=True)
    result = match_positions(ints, vens, tol)
    accounted(result, ints, vens, POSITION_BREAK_TYPES)
    return result


def test_positions_that_agree_match() -> None:
    result = positions(
        [pos(internal=True), pos("A1", "MSFT", "-5", None, internal=True)],
        [pos("A1", "MSFT", "-5", "300"), pos(price="10.004")],
        {"price": "0.005"},
    )
    assert result.breaks.height == 0
    assert result.matched.select("internal_ref", "venue_ref", "stage").rows() == [
        ("pos:A1:AAPL", "row:3", "key"),
        ("pos:A1:MSFT", "row:2", "key"),
    ]


def test_position_quantity_and_price_mismatches() -> None:
    result = positions(
        [pos(internal=True), pos("A1", "MSFT", "10", "5", internal=True)],
        [pos(quantity="90", price="10.5"), pos("A1", "MSFT", "10", "5.25")],
    )
    rows = {r["break_key"]: r for r in result.breaks.iter_rows(named=True)}
    aapl, msft = rows["P:A1|AAPL"], rows["P:A1|MSFT"]
    assert aapl["type"] == "quantity_mismatch"
    assert json.loads(aapl["differences"]) == {
        "price": {"internal": "10", "venue": "10.5"},
        "quantity": {"internal": "100", "venue": "90"},
    }
    assert aapl["amount"] == D("105")  # |dq| * venue price
    assert (aapl["internal_refs"], aapl["venue_refs"], aapl["venue_rows"]) == (
        ["pos:A1:AAPL"],
        ["row:2"],
        [2],
    )
    assert msft["type"] == "price_mismatch"
    assert msft["amount"] == D("2.5")  # |dp| * q


def test_position_quantity_tolerance_boundary() -> None:
    tol = {"quantity": "0.001"}
    assert positions([pos(internal=True)], [pos(quantity="100.001")], tol).breaks.height == 0
    over = positions([pos(internal=True)], [pos(quantity="100.001000000001")], tol)
    assert over.breaks["type"].to_list() == ["quantity_mismatch"]


def test_missing_positions_and_flat_ones() -> None:
    result = positions(
        [pos(quantity="50", internal=True), pos("A2", "IBM", "0", internal=True)],
        [pos("A3", "TSLA", "-20", None), pos("A4", "X", "0", None)],
    )
    assert result.breaks.select("break_key", "type", "amount").rows() == [
        ("P:A1|AAPL", "missing_at_venue", D("500")),
        ("P:A3|TSLA", "missing_internal", D("0")),
    ]
    assert result.matched.select("internal_ref", "venue_ref", "stage").rows() == [
        ("pos:A2:IBM", None, "flat"),
        (None, "row:3", "flat"),
    ]


def test_quantity_breaks_nobody_prices_are_valued_at_the_books_price() -> None:
    """Neither side prices AAPL, MSFT or TSLA: their breaks are valued at `prices` (the book's
    last fill where it has no mark), not 0; a venue price still goes first; `prices` is not
    compared with the venue's (no price_mismatch from it)."""
    result = positions(
        [pos(price=None, internal=True), pos("A1", "MSFT", "7", None, internal=True)],
        [pos(quantity="90", price=None), pos("A3", "TSLA", "-20", None), pos("A4", "IBM", "3")],
    )
    assert result.breaks.select("break_key", "amount").rows() == [
        ("P:A1|AAPL", D("0")),
        ("P:A1|MSFT", D("0")),
        ("P:A3|TSLA", D("0")),
        ("P:A4|IBM", D("30")),
    ]
    ints = frame(
        "positions",
        [pos(price=None, internal=True), pos("A1", "MSFT", "7", None, internal=True)],
        venue=False,
    )
    vens = frame(
        "positions",
        [pos(quantity="100", price="99"), pos("A3", "TSLA", "-20", None), pos("A4", "IBM", "3")],
        venue=True,
    )
    prices = {"AAPL": D("12.5"), "MSFT": D("2"), "TSLA": D("4"), "IBM": D("1000")}
    valued = match_positions(ints, vens, None, prices)
    assert valued.breaks.select("break_key", "type", "amount").rows() == [
        ("P:A1|MSFT", "missing_at_venue", D("14")),
        ("P:A3|TSLA", "missing_internal", D("80")),
        ("P:A4|IBM", "missing_internal", D("30")),  # the venue's price first
    ]
    assert valued.matched["internal_ref"].to_list() == ["pos:A1:AAPL"]  # 99 is not compared


def test_a_repeated_venue_position_is_missing_internal() -> None:
    result = positions([pos(internal=True)], [pos(row=10), pos(row=9)])  # file order
    assert result.matched.select("venue_row").to_series().to_list() == [9]
    assert result.breaks.select("break_key", "type", "venue_rows").rows() == [
        ("P:A1|AAPL#2", "missing_internal", [10])
    ]


position_records = st.builds(
    pos,
    st.sampled_from(("A1", "A2")),
    st.sampled_from(("AAPL", "MSFT", "IBM")),
    st.sampled_from(("0", "5", "-5", "100")),
    st.sampled_from((None, "10", "10.01")),
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(position_records, max_size=6),
    st.lists(position_records, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_positions_account_for_every_record_in_any_order(
    internal: list[dict[str, Any]], venue: list[dict[str, Any]], seed: int
) -> None:
    seen: set[tuple[str, str]] = set()
    unique = []
    for rec in internal:
        if (rec["account"], rec["symbol"]) not in seen:
            seen.add((rec["account"], rec["symbol"]))
            unique.append({**rec, "ref": f"pos:{rec['account']}:{rec['symbol']}"})
    result = positions(unique, venue, {"price": "0.01"})
    ints = frame("positions", unique, venue=False).sample(fraction=1, shuffle=True, seed=seed)
    vens = frame("positions", venue, venue=True).sample(fraction=1, shuffle=True, seed=seed)
    again = match_positions(ints, vens, {"price": "0.01"})
    assert again.breaks.equals(result.breaks) and again.matched.equals(result.matched)


# --- cash ------------------------------------------------------------------------------------


def move(
    amount: str,
    ref: str | None = None,
    day: date = DAY,
    account: str = "A1",
    currency: str = "USD",
    line_type: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    return {
        "account": account,
        "currency": currency,
        "date": day,
        "amount": D(amount),
        "ref": ref,
        "line_type": line_type,
        **kw,
    }


def balances(*rows: tuple[str, str, date, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"account": a, "currency": c, "date": d, "balance": D(b), "kind": k}
            for a, c, d, b, k in rows
        ]
    )


def cash(
    internal: list[dict[str, Any]],
    venue: list[dict[str, Any]],
    tol: dict[str, str] | None = None,
    books: pl.DataFrame | None = None,
) -> MatchResult:
    ints = frame("cash", internal, venue=False)
    vens = frame("cash", venue, venue=True)
    result = match_cash(ints, vens, tol, books)
    accounted(result, ints, vens, CASH_BREAK_TYPES)
    return result


def test_cash_matches_by_ref_then_by_key() -> None:
    result = cash(
        [move("100", "M1"), move("-40", "M2"), move("7.5", "M3")],
        [
            move("-40", line_type="movement"),
            move("100", "M1", day=DAY + timedelta(days=1)),
            move("7.49", "BANKREF"),
        ],
        {"amount": "0.01"},
    )
    assert result.breaks.height == 0
    assert result.matched.select("internal_ref", "venue_ref", "stage").rows() == [
        ("M1", "M1", "reference"),
        ("M2", "row:2", "key"),
        ("M3", "BANKREF", "key"),
    ]


def test_same_ref_different_amount_is_an_amount_mismatch() -> None:
    result = cash([move("100", "M1")], [move("90", "M1", day=DAY + timedelta(days=1))])
    brk = result.breaks.row(0, named=True)
    assert (brk["type"], brk["break_key"], brk["amount"], brk["currency"]) == (
        "amount_mismatch",
        "C:A1|USD|2024-03-01|M1|M1",
        D("10"),
        "USD",
    )
    assert json.loads(brk["differences"]) == {
        "amount": {"internal": "100", "venue": "90"},
        "date": {"internal": "2024-03-01", "venue": "2024-03-02"},
    }
    assert brk["symbol"] is None


def test_cash_amount_tolerance_boundary() -> None:
    tol = {"amount": "0.01"}
    assert cash([move("100", "M1")], [move("100.01", "M1")], tol).breaks.height == 0
    over = cash([move("100", "M1")], [move("100.010000000001", "M1")], tol)
    assert over.breaks["type"].to_list() == ["amount_mismatch"]
    assert cash([move("100", "M1")], [move("99.99")], tol).breaks.height == 0
    assert cash([move("100", "M1")], [move("99.989999999999")], tol).breaks.height == 2


def test_key_match_prefers_the_nearest_amount() -> None:
    result = cash(
        [move("10", "M1"), move("10.04", "M2")], [move("10.05"), move("10.01")], {"amount": "0.05"}
    )
    assert result.matched.select("internal_ref", "venue_ref").rows() == [
        ("M1", "row:3"),
        ("M2", "row:2"),
    ]


def test_missing_cash_movements_with_suggestions() -> None:
    result = cash(
        [move("100", "M1"), move("5", "M2", currency="EUR")],
        [move("250", day=DAY + timedelta(days=2)), move("-3")],
    )
    assert result.breaks.select("break_key", "type", "amount", "suggestion").rows() == [
        ("C:A1|EUR|2024-03-01|M2|", "missing_at_venue", D("5"), None),
        ("C:A1|USD|2024-03-01|M1|", "missing_at_venue", D("100"), "venue row:3: -3 on 2024-03-01"),
        (
            "C:A1|USD|2024-03-01||row:3",
            "missing_internal",
            D("3"),
            "internal M1: 100 on 2024-03-01",
        ),
        (
            "C:A1|USD|2024-03-03||row:2",
            "missing_internal",
            D("250"),
            "internal M1: 100 on 2024-03-01",
        ),
    ]


def test_balance_lines_are_compared_with_internal_balances() -> None:
    books = balances(
        ("A1", "USD", DAY, "1000", "opening_balance"),
        ("A1", "USD", DAY, "1100", "closing_balance"),
    )
    venue = [
        move("1000", line_type="opening_balance"),
        move("1090", line_type="closing_balance"),
        move("50", line_type="closing_balance", currency="EUR"),
        move("100", "M1"),
    ]
    result = cash([move("100", "M1")], venue, None, books)
    assert result.matched.select("internal_ref", "venue_ref", "stage").rows() == [
        ("M1", "M1", "reference"),
        ("balance:opening_balance:A1:USD:2024-03-01", "row:2", "balance"),
    ]
    assert result.breaks.select("break_key", "type", "amount", "internal_refs").rows() == [
        ("C:balance:closing_balance:A1:EUR:2024-03-01", "missing_internal", D("50"), []),
        (
            "C:balance:closing_balance:A1:USD:2024-03-01",
            "balance_mismatch",
            D("10"),
            ["balance:closing_balance:A1:USD:2024-03-01"],
        ),
    ]
    assert json.loads(result.breaks["differences"][1]) == {
        "amount": {"internal": "1100", "venue": "1090"}
    }


def test_repeated_cash_refs_get_distinct_break_keys() -> None:
    result = cash(
        [move("5", "R1"), move("6", "R1")], [move("7", "B1", row=10), move("8", "B1", row=9)]
    )
    assert result.breaks.select("break_key", "venue_rows").rows() == [
        ("C:A1|USD|2024-03-01|R1#2|", []),
        ("C:A1|USD|2024-03-01|R1|", []),
        ("C:A1|USD|2024-03-01||B1", [9]),
        ("C:A1|USD|2024-03-01||B1#2", [10]),
    ]


cash_records = st.builds(
    move,
    st.sampled_from(("100", "-40", "7.5", "7.51")),
    st.sampled_from((None, "R1", "R2")),
    st.sampled_from((DAY, DAY + timedelta(days=1))),
    st.sampled_from(("A1", "A2")),
    st.just("USD"),
    st.sampled_from((None, "movement", "closing_balance")),
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(cash_records, max_size=6),
    st.lists(cash_records, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_cash_accounts_for_every_record_in_any_order(
    internal: list[dict[str, Any]], venue: list[dict[str, Any]], seed: int
) -> None:
    internal = [{**r, "ref": f"M{n}", "line_type": None} for n, r in enumerate(internal)]
    books = balances(("A1", "USD", DAY, "100", "closing_balance"))
    result = cash(internal, venue, {"amount": "0.01"}, books)
    ints = frame("cash", internal, venue=False).sample(fraction=1, shuffle=True, seed=seed)
    vens = frame("cash", venue, venue=True).sample(fraction=1, shuffle=True, seed=seed)
    again = match_cash(ints, vens, {"amount": "0.01"}, books)
    assert again.breaks.equals(result.breaks) and again.matched.equals(result.matched)
