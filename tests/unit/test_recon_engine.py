"""The trade matching engine: the waterfall, break types, tolerances, determinism."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.audit import canonical_json
from oms.errors import BadInput
from recon import engine_trades
from recon.canonical import TRADE_BREAK_TYPES, conform, empty
from recon.engine import (
    BREAKS_SCHEMA,
    MATCHED_SCHEMA,
    MatchResult,
    Tolerance,
    match,
    match_trades,
)

D = Decimal
DAY = date(2024, 3, 1)
SETTLE = date(2024, 3, 5)
TOL = {"price": "0.0001", "commission": "0.01", "fees": "0.01"}


def trade(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "exec_id": None,
        "account": "A1",
        "symbol": "AAPL",
        "side": "buy",
        "quantity": D("100"),
        "price": D("10"),
        "currency": "USD",
        "trade_date": DAY,
        "settle_date": SETTLE,
        "commission": D("1"),
        "fees": D("0.1"),
    }
    base.update(kw)
    return base


def frame(records: list[dict[str, Any]], *, venue: bool = False) -> pl.DataFrame:
    rows = []
    for n, record in enumerate(records, start=2 if venue else 1):
        rec = dict(record)
        rec.setdefault("row", n)
        exec_id = rec.get("exec_id")
        rec["ref"] = exec_id if exec_id is not None else f"row:{rec['row']}"
        rows.append(rec)
    if not rows:
        return empty("trades")
    return conform(pl.DataFrame(rows, infer_schema_length=None), "trades")


def run(
    internal: list[dict[str, Any]],
    venue: list[dict[str, Any]],
    tol: dict[str, str] | None = None,
) -> MatchResult:
    ints, vens = frame(internal), frame(venue, venue=True)
    result = match_trades(ints, vens, TOL if tol is None else tol)
    assert_accounted(result, ints, vens)
    return result


def assert_accounted(result: MatchResult, ints: pl.DataFrame, vens: pl.DataFrame) -> None:
    """Every internal record and every venue record is in exactly one matched row or break."""
    refs = (
        result.matched["internal_ref"].drop_nulls().to_list()
        + result.breaks["internal_refs"].explode().drop_nulls().to_list()
    )
    assert sorted(refs) == sorted(ints["ref"].to_list())
    rows = (
        result.matched["venue_row"].drop_nulls().to_list()
        + result.breaks["venue_rows"].explode().drop_nulls().to_list()
    )
    assert sorted(rows) == sorted(vens["row"].to_list())
    assert result.matched.schema == pl.Schema(MATCHED_SCHEMA)
    assert result.breaks.schema == pl.Schema(BREAKS_SCHEMA)
    assert set(result.breaks["type"].to_list()) <= set(TRADE_BREAK_TYPES)
    assert result.breaks["break_key"].is_unique().all()
    stats = result.stats
    assert stats.internal_records == ints.height and stats.venue_records == vens.height
    assert stats.matched_internal == result.matched["internal_ref"].count()
    assert stats.matched_venue == result.matched["venue_ref"].count()
    assert stats.break_count == result.breaks.height
    for text in result.breaks["differences"].to_list():
        assert canonical_json(json.loads(text)) == text


def only_break(result: MatchResult) -> dict[str, Any]:
    assert result.breaks.height == 1, result.breaks
    return result.breaks.row(0, named=True)


def diffs(brk: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(brk["differences"])
    return out


# --- stage 1: reference ----------------------------------------------------------------------


def test_same_exec_id_and_fields_match_by_reference() -> None:
    result = run(
        [trade(exec_id="E1"), trade(exec_id="E2", quantity=D("5"))],
        [trade(exec_id="E2", quantity=D("5")), trade(exec_id="E1")],
    )
    assert result.breaks.height == 0
    assert result.matched.select("internal_ref", "venue_ref", "venue_row", "stage").rows() == [
        ("E2", "E2", 2, "reference"),
        ("E1", "E1", 3, "reference"),
    ]
    assert result.stats.matched == (("reference", 2, 2),)


@pytest.mark.parametrize(
    ("change", "kind", "differences", "amount"),
    [
        ({"side": "sell"}, "side_mismatch", {"side": ("buy", "sell")}, "2000"),
        ({"quantity": D("90")}, "quantity_mismatch", {"quantity": ("100", "90")}, "100"),
        ({"price": D("10.5")}, "price_mismatch", {"price": ("10", "10.5")}, "50"),
        (
            {"trade_date": DAY + timedelta(days=1)},
            "trade_date_mismatch",
            {"trade_date": ("2024-03-01", "2024-03-02")},
            "1000",
        ),
        (
            {"settle_date": date(2024, 3, 6)},
            "settle_date_mismatch",
            {"settle_date": ("2024-03-05", "2024-03-06")},
            "1000",
        ),
        ({"commission": D("1.5")}, "fee_mismatch", {"commission": ("1", "1.5")}, "0.5"),
        ({"fees": D("0.13")}, "fee_mismatch", {"fees": ("0.1", "0.13")}, "0.03"),
        (
            {"quantity": D("90"), "commission": D("2"), "settle_date": date(2024, 3, 7)},
            "quantity_mismatch",
            {
                "quantity": ("100", "90"),
                "commission": ("1", "2"),
                "settle_date": ("2024-03-05", "2024-03-07"),
            },
            "100",
        ),
        (
            {"side": "sell", "price": D("11"), "trade_date": DAY - timedelta(days=3)},
            "side_mismatch",
            {
                "side": ("buy", "sell"),
                "price": ("10", "11"),
                "trade_date": ("2024-03-01", "2024-02-27"),
            },
            "2000",
        ),
    ],
)
def test_exec_id_pair_with_differences_is_one_break(
    change: dict[str, Any], kind: str, differences: dict[str, tuple[str, str]], amount: str
) -> None:
    brk = only_break(run([trade(exec_id="E1")], [trade(exec_id="E1", **change)]))
    assert brk["type"] == kind
    assert diffs(brk) == {f: {"internal": i, "venue": v} for f, (i, v) in differences.items()}
    assert brk["amount"] == D(amount)
    assert brk["break_key"] == "T:E1|E1"
    assert (brk["internal_refs"], brk["venue_refs"], brk["venue_rows"]) == (["E1"], ["E1"], [2])
    assert (brk["account"], brk["symbol"], brk["currency"]) == ("A1", "AAPL", "USD")


def test_quantity_mismatch_amount_uses_the_venue_price() -> None:
    brk = only_break(
        run([trade(exec_id="E1")], [trade(exec_id="E1", quantity=D("97"), price=D("10.5"))])
    )
    assert brk["type"] == "quantity_mismatch"
    assert brk["amount"] == D("31.5")  # |100 - 97| * 10.5


def test_fields_the_venue_does_not_report_are_not_differences() -> None:
    result = run(
        [trade(exec_id="E1")],
        [trade(exec_id="E1", settle_date=None, commission=None, fees=None)],
    )
    assert result.breaks.height == 0
    assert result.stats.matched == (("reference", 1, 1),)


def test_differences_within_tolerance_are_not_breaks() -> None:
    result = run(
        [trade(exec_id="E1")],
        [trade(exec_id="E1", price=D("10.0001"), commission=D("0.99"), fees=D("0.11"))],
    )
    assert result.breaks.height == 0


@pytest.mark.parametrize("with_exec_id", [True, False])
@pytest.mark.parametrize(
    ("field", "tolerance", "internal", "on_boundary", "beyond"),
    [
        ("price", "0.0001", "10", "10.0001", "10.000100000001"),
        ("price", "0.0001", "10", "9.9999", "9.999899999999"),
        ("quantity", "0.5", "100", "100.5", "100.500000000001"),
        ("commission", "0.01", "1", "1.01", "1.010000000001"),
        ("fees", "0.01", "0.1", "0.09", "0.089999999999"),
    ],
)
def test_tolerance_is_exact_at_the_boundary(
    field: str, tolerance: str, internal: str, on_boundary: str, beyond: str, with_exec_id: bool
) -> None:
    tol = {field: tolerance}
    exec_id = "E1" if with_exec_id else None
    base = trade(exec_id="E1", **{field: D(internal)})
    same = run([base], [trade(exec_id=exec_id, **{field: D(on_boundary)})], tol)
    assert same.breaks.height == 0
    assert same.stats.matched == (("reference" if with_exec_id else "key", 1, 1),)
    brk = only_break(run([base], [trade(exec_id=exec_id, **{field: D(beyond)})], tol))
    kind = "fee_mismatch" if field in ("commission", "fees") else f"{field}_mismatch"
    assert brk["type"] == kind
    assert diffs(brk) == {field: {"internal": internal, "venue": beyond}}


def test_tolerance_values() -> None:
    assert Tolerance.of(None) == Tolerance()
    tol = Tolerance.of({"price": "0.0001", "fees": D("0.01")})
    assert (tol.price, tol.fees, tol.quantity) == (D("0.0001"), D("0.01"), D(0))
    assert Tolerance(price=D("0.0000000000019")).price == D("0.000000000001")
    with pytest.raises(BadInput, match="unknown tolerance field"):
        Tolerance.of({"prise": "0.1"})
    with pytest.raises(BadInput, match="not be negative"):
        Tolerance.of({"price": "-0.1"})
    with pytest.raises(BadInput, match="not a decimal"):
        Tolerance.of({"price": "1e-3"})


def test_a_repeated_venue_exec_id_is_a_duplicate_and_the_first_row_matches() -> None:
    internal = [trade(exec_id="E1")]
    venue = [trade(exec_id="E1", row=9), trade(exec_id="E1", row=4), trade(exec_id="E1", row=6)]
    result = run(internal, venue)
    assert result.matched.select("internal_ref", "venue_row", "stage").rows() == [
        ("E1", 4, "reference")
    ]
    assert result.breaks.select("break_key", "type", "venue_rows", "suggestion").rows() == [
        ("T:|E1#2", "duplicate_venue", [6], "duplicate of venue row 4"),
        ("T:|E1#3", "duplicate_venue", [9], "duplicate of venue row 4"),
    ]
    assert result.breaks["amount"].to_list() == [D("1000"), D("1000")]


def test_a_repeated_venue_exec_id_without_internal_counterpart() -> None:
    result = run([], [trade(exec_id="X", row=5), trade(exec_id="X", row=3)])
    assert result.breaks.select("break_key", "type", "venue_rows").rows() == [
        ("T:|X", "missing_internal", [3]),
        ("T:|X#2", "duplicate_venue", [5]),
    ]


def test_a_repeated_venue_exec_id_whose_first_occurrence_differs() -> None:
    result = run([trade(exec_id="E1")], [trade(exec_id="E1", quantity=D("1")), trade(exec_id="E1")])
    assert result.breaks.select("break_key", "type", "venue_rows").rows() == [
        ("T:E1|E1", "quantity_mismatch", [2]),
        ("T:|E1#2", "duplicate_venue", [3]),
    ]


def test_a_repeated_internal_exec_id_goes_on_to_the_key_stage() -> None:
    ints = frame([trade(exec_id="E1"), trade(exec_id="E1", quantity=D("7"))])
    vens = frame([trade(exec_id="E1"), trade(quantity=D("7"))], venue=True)
    result = match_trades(ints, vens, TOL)
    assert result.breaks.height == 0
    assert result.matched.select("internal_ref", "venue_ref", "stage").rows() == [
        ("E1", "E1", "reference"),
        ("E1", "row:3", "key"),
    ]


def test_an_exec_id_repeated_on_both_sides() -> None:
    ints = frame([trade(exec_id="E1"), trade(exec_id="E1", quantity=D("7"))])
    vens = frame([trade(exec_id="E1", row=3), trade(exec_id="E1", row=2)], venue=True)
    result = match_trades(ints, vens, TOL)
    assert result.matched.select("internal_ref", "venue_row", "stage").rows() == [
        ("E1", 2, "reference")
    ]
    assert result.breaks.select("type", "internal_refs", "venue_rows").rows() == [
        ("missing_at_venue", ["E1"], []),
        ("duplicate_venue", [], [3]),
    ]


# --- stage 2: key ----------------------------------------------------------------------------


def test_key_match_without_exec_ids_pairs_the_nearest_price() -> None:
    internal = [trade(exec_id="E2", price=D("10.02")), trade(exec_id="E1", price=D("10.00"))]
    venue = [trade(price=D("10.03")), trade(price=D("10.01"))]
    result = run(internal, venue, {"price": "0.05"})
    assert result.breaks.height == 0
    assert result.matched.select("internal_ref", "venue_ref", "stage").rows() == [
        ("E1", "row:3", "key"),
        ("E2", "row:2", "key"),
    ]


def test_key_match_ties_break_by_ref() -> None:
    internal = [trade(exec_id=f"E{n}") for n in (3, 1, 2)]
    venue = [trade(row=7), trade(row=5), trade(row=6)]
    result = run(internal, venue)
    assert result.matched.select("internal_ref", "venue_ref").rows() == [
        ("E1", "row:5"),
        ("E2", "row:6"),
        ("E3", "row:7"),
    ]


def test_key_matched_pair_can_carry_a_settle_date_break() -> None:
    brk = only_break(run([trade(exec_id="E1")], [trade(settle_date=date(2024, 3, 4))]))
    assert brk["type"] == "settle_date_mismatch"
    assert brk["break_key"] == "T:E1|row:2"


def test_an_exec_id_the_book_does_not_know_still_matches_by_key() -> None:
    result = run([trade(exec_id="E1")], [trade(exec_id="V-77")])
    assert result.breaks.height == 0
    assert result.matched.select("internal_ref", "venue_ref", "stage").rows() == [
        ("E1", "V-77", "key")
    ]


# --- stage 3: aggregate ----------------------------------------------------------------------


def fill(**kw: Any) -> dict[str, Any]:
    """A venue record that reports no fees (so split fills compare on quantity and price)."""
    return trade(commission=None, fees=None, **kw)


def _group(result: MatchResult) -> list[tuple[Any, ...]]:
    return result.matched.select("internal_ref", "venue_ref", "venue_row", "group").rows()


def test_aggregate_one_internal_to_many_venue() -> None:
    result = run([trade(exec_id="E1")], [fill(quantity=D("60")), fill(quantity=D("40"))])
    assert result.breaks.height == 0
    group = "A:A1|AAPL|buy|2024-03-01"
    assert _group(result) == [
        ("E1", None, None, group),
        (None, "row:2", 2, group),
        (None, "row:3", 3, group),
    ]
    assert result.stats.matched == (("aggregate", 1, 2),)


def test_aggregate_many_internal_to_one_venue_by_vwap() -> None:
    internal = [
        trade(exec_id="E1", quantity=D("60"), price=D("10"), commission=D("0.6"), fees=D("0.06")),
        trade(exec_id="E2", quantity=D("40"), price=D("10.5"), commission=D("0.4"), fees=D("0.04")),
    ]
    result = run(internal, [trade(price=D("10.2"))])  # (600 + 420) / 100
    assert result.breaks.height == 0
    assert result.stats.matched == (("aggregate", 2, 1),)


def test_aggregate_many_to_many() -> None:
    internal = [
        trade(exec_id="E1", quantity=D("30"), price=D("10"), commission=None, fees=None),
        trade(exec_id="E2", quantity=D("70"), price=D("11"), commission=None, fees=None),
    ]
    venue = [
        trade(quantity=D("50"), price=D("10.6"), commission=None, fees=None),
        trade(quantity=D("50"), price=D("10.8"), commission=None, fees=None),
    ]
    result = run(internal, venue)
    assert result.breaks.height == 0
    assert result.stats.matched == (("aggregate", 2, 2),)


def test_a_split_or_an_aggregate_under_the_books_exec_id_matches_as_a_group() -> None:
    """A venue that keeps the book's exec_id on the parts of a split (E1 100 as E1 60 and E1
    40), or on the sum of two fills (E1 60 and E2 40 as E1 100): the exec_id pair differed in
    quantity and was final (a quantity_mismatch, with a duplicate_venue or a
    missing_at_venue beside it); with new exec_ids the same records matched as a group."""
    one_to_many = run(
        [trade(exec_id="E1")],
        [fill(exec_id="E1", quantity=D("60")), fill(exec_id="E1", quantity=D("40"))],
    )
    assert one_to_many.breaks.height == 0
    assert one_to_many.stats.matched == (("aggregate", 1, 2),)
    internal = [
        fill(exec_id="E1", quantity=D("60"), price=D("10")),
        fill(exec_id="E2", quantity=D("40"), price=D("10.5")),
    ]
    many_to_one = run(internal, [fill(exec_id="E1", price=D("10.2"))])
    assert many_to_one.breaks.height == 0
    assert many_to_one.stats.matched == (("aggregate", 2, 1),)
    # a group the first pass matched is matched as before beside a pair that stays a break
    rest = [trade(exec_id="E7", quantity=D("5")), trade(exec_id="E8", quantity=D("5"))]
    mixed = run(
        [*rest, trade(exec_id="E1")],
        [
            trade(exec_id="V9", quantity=D("10"), commission=D("2"), fees=D("0.2")),
            trade(exec_id="E1", quantity=D("90")),
        ],
    )
    assert mixed.stats.matched == (("aggregate", 2, 1),)
    assert only_break(mixed)["type"] == "quantity_mismatch"
    # beside a group the first pass matched, this pass's group is named apart (by its exec_id)
    both = run(
        [*rest, trade(exec_id="E1")],
        [
            trade(exec_id="V9", quantity=D("10"), commission=D("2"), fees=D("0.2")),
            fill(exec_id="E1", quantity=D("60")),
            fill(exec_id="E1", quantity=D("40")),
        ],
    )
    assert both.breaks.height == 0
    assert sorted(set(both.matched["group"].to_list())) == [
        "A:A1|AAPL|buy|2024-03-01",
        "A:A1|AAPL|buy|2024-03-01|E1",
    ]


def test_another_exec_ids_repeat_makes_up_no_pairs_difference() -> None:
    """E1 100 reported as 60, E2 50 reported as 30 on its own day and repeated as 40 on E1's:
    E2's repeat made up E1's shortfall (E1 100 = E1 60 + E2 40) and two breaks were lost."""
    result = run(
        [trade(exec_id="E1"), trade(exec_id="E2", quantity=D("50"), trade_date=date(2024, 3, 4))],
        [
            fill(exec_id="E1", quantity=D("60")),
            fill(exec_id="E2", quantity=D("30"), trade_date=date(2024, 3, 4)),
            fill(exec_id="E2", quantity=D("40")),
        ],
    )
    assert result.matched.height == 0
    assert result.breaks.select("break_key", "type").rows() == [
        ("T:E1|E1", "quantity_mismatch"),
        ("T:E2|E2", "quantity_mismatch"),
        ("T:|E2#2", "duplicate_venue"),
    ]


def test_parts_that_do_not_add_up_under_one_exec_id_stay_breaks() -> None:
    result = run(
        [trade(exec_id="E1")],
        [fill(exec_id="E1", quantity=D("60")), fill(exec_id="E1", quantity=D("30"))],
    )
    assert result.breaks.select("break_key", "type").rows() == [
        ("T:E1|E1", "quantity_mismatch"),
        ("T:|E1#2", "duplicate_venue"),
    ]
    # two splits of one day (E1 100 as 60 + 40, E2 50 as 30 + 20) match each on its own
    two_splits = run(
        [trade(exec_id="E1"), trade(exec_id="E2", quantity=D("50"))],
        [
            fill(exec_id="E1", quantity=D("60")),
            fill(exec_id="E1", quantity=D("40")),
            fill(exec_id="E2", quantity=D("30")),
            fill(exec_id="E2", quantity=D("20")),
        ],
    )
    assert two_splits.breaks.height == 0
    assert sorted(set(two_splits.matched["group"].to_list())) == [
        "A:A1|AAPL|buy|2024-03-01|E1",
        "A:A1|AAPL|buy|2024-03-01|E2",
    ]
    # two pairs that each differ are two breaks: never netted into one group (E1 100 vs 90,
    # E2 50 vs 60 add up to 150 on both sides)
    two = run(
        [trade(exec_id="E1"), trade(exec_id="E2", quantity=D("50"))],
        [trade(exec_id="E1", quantity=D("90")), trade(exec_id="E2", quantity=D("60"))],
    )
    assert two.breaks.select("break_key", "type").rows() == [
        ("T:E1|E1", "quantity_mismatch"),
        ("T:E2|E2", "quantity_mismatch"),
    ]
    # and a pair that differs in side as well is no part of a group
    other_side = run(
        [trade(exec_id="E1")],
        [fill(exec_id="E1", quantity=D("60"), side="sell"), fill(exec_id="E1", quantity=D("40"))],
    )
    assert "aggregate" not in other_side.stats.matched_by_stage()


def test_aggregate_needs_equal_total_quantity_and_vwap_within_tolerance() -> None:
    venue = [fill(quantity=D("60")), fill(quantity=D("40"), price=D("10.0003"))]
    # VWAP 10.00012 vs 10: beyond 0.0001
    result = run([trade(exec_id="E1")], venue)
    assert "aggregate" not in result.stats.matched_by_stage()
    # E1 and the 60 differ in quantity only: a near match; the 40 is left over
    assert sorted(result.breaks["type"].to_list()) == ["missing_internal", "quantity_mismatch"]
    # the same split within a wider price tolerance matches
    wide = run(
        [trade(exec_id="E1")], venue, {"price": "0.00012", "commission": "0.01", "fees": "0.01"}
    )
    assert wide.breaks.height == 0
    short = run([trade(exec_id="E1")], [fill(quantity=D("60")), fill(quantity=D("39"))])
    assert short.matched.height == 0


def test_aggregate_vwap_is_compared_exactly_not_after_rounding() -> None:
    # internal notional 0.5 * 1.000000000003 + 0.5 * 1 = 1.0000000000015 (13 places);
    # venue 1 * 1.000000000002. Rounded to 12 places they look equal; exactly they differ.
    internal = [
        trade(exec_id="E1", quantity=D("0.5"), price=D("1.000000000003")),
        trade(exec_id="E2", quantity=D("0.5"), price=D("1")),
    ]
    venue = [fill(quantity=D("1"), price=D("1.000000000002"))]
    ints = frame(internal)
    rounded = ints.select((pl.col("quantity") * pl.col("price")).sum()).item()
    assert rounded == D("1.000000000002")  # what polars Decimal arithmetic would say
    exact = run(internal, venue, {"price": "0"})
    assert exact.matched.height == 0
    loose = run(internal, venue, {"price": "0.000000000001"})  # |diff| 5E-13 <= 1E-12 * 1
    assert loose.stats.matched == (("aggregate", 2, 1),)


def test_aggregate_tolerance_boundary() -> None:
    internal = [trade(exec_id="E1", quantity=D("1")), trade(exec_id="E2", quantity=D("1"))]
    tol = {"price": "0.0001"}
    edge = run(internal, [fill(quantity=D("2"), price=D("10.0001"))], tol)
    assert edge.stats.matched == (("aggregate", 2, 1),)
    over = run(internal, [fill(quantity=D("2"), price=D("10.000100000001"))], tol)
    assert over.matched.height == 0


def test_aggregate_with_other_fees_is_one_break_for_the_group() -> None:
    result = run(
        [trade(exec_id="E1")],
        [trade(quantity=D("60"), commission=D("1")), trade(quantity=D("40"), commission=D("1"))],
    )
    brk = only_break(result)
    assert brk["type"] == "fee_mismatch"
    assert brk["break_key"] == "T:E1|row:2,row:3"
    assert (brk["internal_refs"], brk["venue_refs"], brk["venue_rows"]) == (
        ["E1"],
        ["row:2", "row:3"],
        [2, 3],
    )
    assert diffs(brk) == {
        "commission": {"internal": "1", "venue": "2"},
        "fees": {"internal": "0.1", "venue": "0.2"},
    }
    assert brk["amount"] == D("1.1")


# --- stage 4: near matches, missing records, duplicates ---------------------------------------


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"quantity": D("90")}, "quantity_mismatch"),
        ({"price": D("10.5")}, "price_mismatch"),
        ({"side": "sell"}, "side_mismatch"),
        ({"trade_date": date(2024, 2, 29)}, "trade_date_mismatch"),
    ],
)
def test_near_match_without_exec_ids_is_a_mismatch_of_both_records(
    change: dict[str, Any], kind: str
) -> None:
    internal = [trade(exec_id="E1"), trade(exec_id="E2", symbol="MSFT")]
    venue = [trade(**change), trade(symbol="MSFT")]
    result = run(internal, venue)
    brk = only_break(result)
    assert brk["type"] == kind
    assert brk["break_key"] == "T:E1|row:2"
    assert list(diffs(brk)) == [next(iter(change))]


def test_near_match_must_be_unique_on_both_sides() -> None:
    result = run([trade(exec_id="E1")], [trade(quantity=D("90")), trade(quantity=D("111"))])
    assert result.breaks.select("break_key", "type", "suggestion").rows() == [
        ("T:E1|", "missing_at_venue", "venue row:2: buy 90 @ 10 on 2024-03-01"),
        ("T:|row:2", "missing_internal", "internal E1: buy 100 @ 10 on 2024-03-01"),
        ("T:|row:3", "missing_internal", "internal E1: buy 100 @ 10 on 2024-03-01"),
    ]


def test_missing_records_suggest_the_nearest_candidate() -> None:
    internal = [trade(exec_id="E1"), trade(exec_id="E9", symbol="IBM")]
    venue = [
        trade(trade_date=DAY + timedelta(days=2), price=D("11")),
        trade(trade_date=DAY - timedelta(days=1), quantity=D("50"), price=D("12")),
        trade(trade_date=DAY + timedelta(days=1), quantity=D("120"), price=D("12")),
        trade(trade_date=DAY - timedelta(days=1), quantity=D("80"), price=D("12")),
        trade(trade_date=DAY - timedelta(days=1), quantity=D("80"), price=D("13")),
    ]
    result = run(internal, venue)
    by_key = {r["break_key"]: r for r in result.breaks.iter_rows(named=True)}
    assert by_key["T:E1|"]["type"] == "missing_at_venue"
    assert by_key["T:E1|"]["suggestion"] == "venue row:5: buy 80 @ 12 on 2024-02-29"
    assert by_key["T:E1|"]["amount"] == D("1000")
    assert by_key["T:E9|"]["suggestion"] is None  # nothing of that symbol at the venue
    assert by_key["T:|row:2"]["type"] == "missing_internal"
    assert by_key["T:|row:2"]["suggestion"] == "internal E1: buy 100 @ 10 on 2024-03-01"
    assert by_key["T:|row:2"]["venue_rows"] == [2]
    assert by_key["T:|row:2"]["amount"] == D("1100")


def test_identical_venue_records_one_matched_the_other_is_a_duplicate() -> None:
    result = run([trade(exec_id="E1")], [trade(row=8), trade(row=4)])
    assert result.matched.select("internal_ref", "venue_row", "stage").rows() == [("E1", 4, "key")]
    brk = only_break(result)
    assert (brk["type"], brk["break_key"], brk["suggestion"]) == (
        "duplicate_venue",
        "T:|row:8",
        "duplicate of venue row 4",
    )


def test_identical_venue_records_neither_matched_are_both_missing() -> None:
    result = run([], [trade(), trade()])
    assert result.breaks["type"].to_list() == ["missing_internal", "missing_internal"]


def test_empty_sides() -> None:
    assert run([], []).breaks.height == 0
    assert run([trade(exec_id="E1")], []).breaks["type"].to_list() == ["missing_at_venue"]


def test_lazy_input_and_dispatch_give_the_same_result() -> None:
    ints = frame([trade(exec_id="E1"), trade(exec_id="E2", quantity=D("3"))])
    vens = frame([trade(exec_id="E1", price=D("11")), trade(quantity=D("4"))], venue=True)
    eager = match_trades(ints, vens, TOL)
    lazy = match("trades", ints.lazy(), vens.lazy(), TOL)
    assert eager.matched.equals(lazy.matched) and eager.breaks.equals(lazy.breaks)
    assert eager.stats == lazy.stats
    with pytest.raises(BadInput):
        match("bonds", ints, vens)


def test_extra_and_absent_optional_columns() -> None:
    ints = frame([trade(exec_id="E1")]).with_columns(pl.lit("x").alias("note"))
    vens = frame([trade(exec_id="E1")], venue=True).drop("settle_date", "commission", "fees")
    result = match_trades(ints, vens)
    assert result.breaks.height == 0 and result.matched.height == 1


# --- properties ------------------------------------------------------------------------------

ACCOUNTS = ("A1", "A2")
SYMBOLS = ("AAPL", "MSFT")
QTYS = (D("1"), D("2"), D("3"), D("5"))
PRICES = (D("10"), D("10.0001"), D("10.5"))
DATES = (DAY, DAY + timedelta(days=1))
MUTATIONS = (
    "same",
    "same",
    "drop",
    "no_exec",
    "dup",
    "split",
    "price",
    "quantity",
    "side",
    "date",
    "fee",
    "unreported",
    "twin",
)

base_trades = st.builds(
    lambda a, s, side, q, p, d, c: trade(
        account=a, symbol=s, side=side, quantity=q, price=p, trade_date=d, commission=c
    ),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(SYMBOLS),
    st.sampled_from(("buy", "sell")),
    st.sampled_from(QTYS),
    st.sampled_from(PRICES),
    st.sampled_from(DATES),
    st.sampled_from((D("1"), D("1.5"))),
)


def _venue_for(rec: dict[str, Any], mutation: str) -> list[dict[str, Any]]:
    v = dict(rec)
    match mutation:
        case "drop":
            return []
        case "no_exec":
            v["exec_id"] = None
        case "dup":
            return [v, dict(v)]
        case "twin":
            v["exec_id"] = None
            return [v, dict(v)]
        case "split":
            a, b = dict(v), dict(v)
            a["exec_id"] = b["exec_id"] = None
            a["quantity"] = v["quantity"] / 2
            b["quantity"] = v["quantity"] - a["quantity"]
            return [a, b]
        case "price":
            v["price"] = v["price"] + D("0.25")
        case "quantity":
            v["quantity"] = v["quantity"] + 1
        case "side":
            v["side"] = "sell" if v["side"] == "buy" else "buy"
        case "date":
            v["trade_date"] = v["trade_date"] + timedelta(days=1)
        case "fee":
            v["commission"] = v["commission"] + D("1")
        case "unreported":
            v["settle_date"] = v["commission"] = v["fees"] = None
    return [v]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    internal = draw(st.lists(base_trades, max_size=7))
    for n, rec in enumerate(internal):
        # now and then a malformed book repeating an exec_id: still nothing may get lost
        rec["exec_id"] = f"E{n - 1}" if n and draw(st.integers(0, 9)) == 0 else f"E{n}"
    venue: list[dict[str, Any]] = []
    for rec in internal:
        venue.extend(_venue_for(rec, draw(st.sampled_from(MUTATIONS))))
    extra = draw(st.lists(base_trades, max_size=3))
    for n, rec in enumerate(extra):
        rec["exec_id"] = draw(st.sampled_from((None, f"V{n}", "E0")))
    venue.extend(extra)
    rows = draw(st.permutations(range(2, 2 + len(venue))))
    for rec, row in zip(venue, rows, strict=True):
        rec["row"] = row
    return frame(internal), frame(venue, venue=True)


def _shuffled(df: pl.DataFrame, seed: int) -> pl.DataFrame:
    return df.sample(fraction=1.0, shuffle=True, seed=seed) if df.height else df


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**32 - 1), st.sampled_from([{}, TOL, {"price": "0.3"}]))
def test_every_record_is_accounted_for_and_order_does_not_matter(
    frames: tuple[pl.DataFrame, pl.DataFrame], seed: int, tol: dict[str, str]
) -> None:
    ints, vens = frames
    result = match_trades(ints, vens, tol)
    assert_accounted(result, ints, vens)
    again = match_trades(_shuffled(ints, seed), _shuffled(vens, seed + 1), tol)
    assert again.breaks.equals(result.breaks)
    assert again.matched.equals(result.matched)
    assert again.stats == result.stats


@settings(max_examples=40, deadline=None)
@given(st.lists(base_trades, max_size=8), st.booleans(), st.integers(0, 2**32 - 1))
def test_a_venue_file_equal_to_the_book_has_no_breaks(
    records: list[dict[str, Any]], keep_exec_ids: bool, seed: int
) -> None:
    for n, rec in enumerate(records):
        rec["exec_id"] = f"E{n}"
    venue = [dict(r, exec_id=r["exec_id"] if keep_exec_ids else None) for r in records]
    ints = frame(records)
    vens = _shuffled(frame(venue, venue=True), seed)
    result = match_trades(ints, vens)
    assert result.breaks.height == 0
    assert result.stats.matched_internal == result.stats.matched_venue == len(records)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(1, 4), st.sampled_from([{}, TOL]))
def test_the_exec_id_join_cut_into_ranges_gives_the_same_result(
    frames: tuple[pl.DataFrame, pl.DataFrame], rows: int, tol: dict[str, str]
) -> None:
    """Past engine_trades.JOIN_ROWS records the exec_id join runs once per range of exec_ids
    (null exec_ids, repeats and one-sided records included): the outcome is the same."""
    ints, vens = frames
    whole = match_trades(ints, vens, tol)
    saved, ranges = engine_trades.JOIN_ROWS, engine_trades._ranges
    used: list[int] = []

    def counted(cuts: list[str]) -> list[pl.Expr]:
        out = ranges(cuts)
        used.append(len(out))
        return out

    engine_trades.JOIN_ROWS = rows  # type: ignore[misc]
    engine_trades._ranges = counted
    try:
        cut = match_trades(ints, vens, tol)
    finally:
        engine_trades.JOIN_ROWS, engine_trades._ranges = saved, ranges  # type: ignore[misc]
    # cut when the exec_ids allow it (a range per distinct cut)
    distinct = vens["exec_id"].drop_nulls().n_unique()
    if max(ints.height, vens.height) > rows and distinct > 2:
        assert used[0] > 1
    assert cut.breaks.equals(whole.breaks)
    assert cut.matched.equals(whole.matched)
    assert cut.stats == whole.stats
