"""Retention, pure part: periods and cut-offs, holds, what has expired per class (positions and
balances unchanged by what is taken out), and the archive manifest's checks."""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms import ledger
from oms import retention as rt
from oms.errors import BadInput
from oms.lots import BUST, CORRECT, ExecRecord, build_positions, effective_fills
from oms.values import CostMethod, Side

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CUT = datetime(2020, 11, 26, 10, 0, tzinfo=UTC)
OLD = date(2019, 5, 6)
NEW = date(2025, 5, 6)


def hold(account: str | None = None, cls: str | None = None, *, released: bool = False) -> rt.Hold:
    return rt.Hold(1, "matter", account, cls, "reason", NOW, "legal",
                   released_at=NOW if released else None)


def fill(seq: int, side: str, qty: str, day: date = OLD, account: str = "A1",
         symbol: str = "X", **kw: object) -> ExecRecord:
    return ExecRecord(seq, "V", f"E{seq}", account, symbol, Side(side), Decimal(qty),
                      Decimal("10"), Decimal("0"), Decimal("0"), day, None, **kw)  # type: ignore[arg-type]


# ---- periods ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "period", "shown"), [
    ("6y", rt.Period(months=72), "6y"),
    ("6", rt.Period(months=72), "6y"),
    ("18m", rt.Period(months=18), "18m"),
    ("400d", rt.Period(days=400), "400d"),
    (" 7Y ", rt.Period(months=84), "7y"),
])
def test_periods_parse_and_show(text: str, period: rt.Period, shown: str) -> None:
    assert rt.parse_period(text) == period
    assert period.show() == shown
    assert rt.parse_period(shown) == period


@pytest.mark.parametrize("text", ["0", "11m", "364d", "0y", "six years", "-6y", "6w", ""])
def test_periods_shorter_than_a_year_or_garbled_are_refused(text: str) -> None:
    with pytest.raises(BadInput):
        rt.parse_period(text)


def test_cutoffs_move_on_the_calendar() -> None:
    assert rt.Period(months=72).cutoff(NOW) == CUT
    leap = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    assert rt.Period(months=12).cutoff(leap) == datetime(2023, 2, 28, 12, 0, tzinfo=UTC)
    assert rt.Period(months=1).cutoff(datetime(2026, 3, 31, tzinfo=UTC)) == datetime(
        2026, 2, 28, tzinfo=UTC)
    assert rt.Period(days=400).cutoff(NOW) == NOW - timedelta(days=400)


def test_default_periods_and_settings() -> None:
    periods = rt.periods_from({})
    assert {c: p.show() for c, p in periods.items()} == {
        "orders": "6y", "executions": "6y", "ledger": "6y", "audit": "6y",
        "confirmations": "3y"}
    assert rt.periods_from({"audit": "10y"})["audit"] == rt.Period(months=120)
    with pytest.raises(BadInput, match=r"retention\.ledger"):
        rt.periods_from({"ledger": "1d"})


# ---- holds --------------------------------------------------------------------------------------


def test_holds_cover_their_account_and_class_only_while_active() -> None:
    assert hold("A1").covers("ledger", ["A1"])
    assert not hold("A1").covers("ledger", ["B1"])
    assert hold(None).covers("orders", ["B1"])
    assert hold("A1", "audit").covers("audit", ["A1"])
    assert not hold("A1", "audit").covers("ledger", ["A1"])
    assert not hold("A1", released=True).covers("ledger", ["A1"])
    assert rt.covered([hold("B1"), hold("A1", "orders")], "orders", ["A1", "C1"])


# ---- executions ---------------------------------------------------------------------------------


def archived(sel: rt.Selection) -> list[int]:
    return list(sel.ids["executions"])


def test_a_flat_prefix_is_archived_and_the_open_rest_kept() -> None:
    recs = [fill(1, "buy", "100"), fill(2, "sell", "100"), fill(3, "buy", "10"),
            fill(4, "buy", "5", account="B1")]
    assert archived(rt.plan_executions(recs, CUT.date(), [])) == [1, 2]


def test_a_position_still_open_at_the_cutoff_is_kept_whole() -> None:
    recs = [fill(1, "buy", "100"), fill(2, "sell", "50"), fill(3, "sell", "50", NEW)]
    assert archived(rt.plan_executions(recs, CUT.date(), [])) == []


def test_late_bookings_and_the_newest_id_are_kept() -> None:
    recs = [fill(1, "buy", "100"), fill(2, "sell", "100"), fill(3, "buy", "1"),
            fill(4, "sell", "1")]
    assert archived(rt.plan_executions(recs, CUT.date(), [])) == [1, 2, 3, 4]
    assert archived(rt.plan_executions(recs, CUT.date(), [], late=frozenset({3}))) == [1, 2]
    assert archived(rt.plan_executions(recs, CUT.date(), [], keep=frozenset({4}))) == [1, 2]


def test_corrections_and_busts_go_with_their_fill() -> None:
    recs = [fill(1, "buy", "100"), fill(2, "sell", "90"),
            fill(3, "sell", "100", exec_type=CORRECT, ref_exec_id="E2"),
            fill(4, "buy", "7"), fill(5, "buy", "7", exec_type=BUST, ref_exec_id="E4")]
    assert archived(rt.plan_executions(recs, CUT.date(), [])) == [1, 2, 3, 4, 5]
    # a correction dated after the cut-off keeps its whole chain (and everything after it)
    late_fix = [*recs[:2], fill(3, "sell", "100", NEW, exec_type=CORRECT, ref_exec_id="E2")]
    assert archived(rt.plan_executions(late_fix, CUT.date(), [])) == []


def test_executions_on_hold_are_kept_and_counted() -> None:
    recs = [fill(1, "buy", "1"), fill(2, "sell", "1"), fill(3, "buy", "1", account="B1"),
            fill(4, "sell", "1", account="B1")]
    sel = rt.plan_executions(recs, CUT.date(), [hold("A1")])
    assert (archived(sel), sel.held) == ([3, 4], 2)
    assert archived(rt.plan_executions(recs, CUT.date(), [hold("A1", "ledger")])) == [1, 2, 3, 4]
    assert archived(rt.plan_executions(recs, CUT.date(), [hold()])) == []
    assert archived(rt.plan_executions(recs, CUT.date(), [hold(released=True)])) == [1, 2, 3, 4]


@st.composite
def books(draw: st.DrawFn) -> list[ExecRecord]:
    n = draw(st.integers(1, 14))
    recs = []
    for seq in range(1, n + 1):
        side = draw(st.sampled_from(["buy", "sell"]))
        qty = draw(st.sampled_from(["1", "2", "3", "5"]))
        day = date(2019, 1, 1) + timedelta(days=draw(st.integers(0, 2500)))
        acct = draw(st.sampled_from(["A1", "B1"]))
        recs.append(fill(seq, side, qty, day, acct))
    if draw(st.booleans()) and n > 1:  # a correction or bust of an earlier fill
        target = draw(st.integers(1, n - 1))
        kind = draw(st.sampled_from([CORRECT, BUST]))
        day = date(2019, 1, 1) + timedelta(days=draw(st.integers(0, 2500)))
        recs.append(fill(n + 1, recs[target - 1].side.value, "4", day, recs[target - 1].account,
                         exec_type=kind, ref_exec_id=f"E{target}"))
    return recs


@settings(max_examples=150, deadline=None)
@given(recs=books(), holds=st.sampled_from([[], [hold("A1")], [hold("B1", "executions")]]))
def test_what_remains_gives_the_same_open_positions(recs: list[ExecRecord],
                                                    holds: list[rt.Hold]) -> None:
    sel = rt.plan_executions(recs, CUT.date(), holds)
    gone = set(sel.ids["executions"])
    rest = [r for r in recs if r.seq not in gone]
    for method in CostMethod:
        before = build_positions(effective_fills(recs), method)
        after = build_positions(effective_fills(rest), method)
        for key, pos in before.items():
            if key in after:
                assert (after[key].quantity, after[key].lots, after[key].cost_basis) == (
                    pos.quantity, pos.lots, pos.cost_basis)
            else:  # archived whole: it was flat
                assert pos.quantity == 0
    for r in recs:
        if r.seq in gone:
            assert r.trade_date < CUT.date()
            assert not any(h.covers("executions", [r.account]) for h in holds)


def test_closed_positions_record_what_the_archive_realized() -> None:
    recs = [fill(1, "buy", "100"), fill(2, "sell", "100")._replace(price=Decimal("11"))]
    assert rt.closed_positions(recs) == ({"account": "A1", "symbol": "X", "realized_pnl": "100",
                                          "commissions": "0", "fees": "0", "fills": 2,
                                          "first_trade_date": OLD.isoformat(),
                                          "last_trade_date": OLD.isoformat()},)


@settings(max_examples=150, deadline=None)
@given(recs=books(), prices=st.lists(st.sampled_from(["9.5", "10", "10.25", "11"]),
                                     min_size=16, max_size=16),
       costs=st.lists(st.sampled_from(["0", "0.5", "1.25"]), min_size=16, max_size=16))
def test_the_carried_realized_pnl_plus_what_remains_is_what_was_realized(
    recs: list[ExecRecord], prices: list[str], costs: list[str]
) -> None:
    """What positions show after an archive (the live fills plus the carry written from
    closed_positions) realizes what the whole history realized, for every cost method."""
    recs = [r._replace(price=Decimal(prices[i]), commission=Decimal(costs[i]))
            for i, r in enumerate(recs)]
    sel = rt.plan_executions(recs, CUT.date(), [])
    gone = set(sel.ids["executions"])
    carried = {(c["account"], c["symbol"]): c
               for c in rt.closed_positions([r for r in recs if r.seq in gone])}
    rest = [r for r in recs if r.seq not in gone]
    for method in CostMethod:
        before = build_positions(effective_fills(recs), method)
        after = build_positions(effective_fills(rest), method)
        for key, pos in before.items():
            live = after.get(key)
            c = carried.get(key)
            realized = (live.realized_pnl if live else 0) + (
                Decimal(c["realized_pnl"]) if c else 0)
            commissions = (live.commissions if live else 0) + (
                Decimal(c["commissions"]) if c else 0)
            assert (realized, commissions) == (pos.realized_pnl, pos.commissions), method
            assert live is not None or c is not None


# ---- ledger -------------------------------------------------------------------------------------


def entry(entry_id: int, account: str, amount: str, day: date = OLD,
          posted: datetime | None = None) -> rt.LedgerEntryRow:
    a = Decimal(amount)
    return rt.LedgerEntryRow(
        entry_id, "deposit", account, "USD", day,
        posted or datetime.combine(day, datetime.min.time(), tzinfo=UTC),
        ((entry_id * 10, ledger.Posting(f"{account}:cash", "USD", a)),
         (entry_id * 10 + 1, ledger.Posting(f"{account}:capital", "USD", -a))))


def test_the_ledger_carries_archived_balances_forward() -> None:
    entries = [entry(1, "A1", "100"), entry(2, "A1", "-30", date(2019, 7, 1)),
               entry(3, "B1", "5"), entry(4, "A1", "1", NEW),
               entry(5, "A1", "2", OLD, posted=NOW), entry(6, "C1", "9")]
    plan = rt.plan_ledger(entries, CUT, [hold("C1")], keep=frozenset({3}))
    assert plan.selection.ids["journal_entries"] == (1, 2)
    assert plan.selection.ids["journal_postings"] == (10, 11, 20, 21)
    assert plan.selection.held == 3
    (cf,) = plan.carry_forward
    assert (cf.kind, cf.account, cf.value_date) == ("carry_forward", "A1", date(2019, 7, 1))
    assert {p.ledger_account: p.amount for p in cf.postings} == {
        "A1:cash": Decimal("70"), "A1:capital": Decimal("-70")}


def test_entries_that_net_to_zero_carry_an_entry_of_nothing() -> None:
    """A deposit and a withdrawal of it: nothing to carry, but an entry still dates what was
    archived (a statement of those dates is refused; with no entry it showed neither)."""
    plan = rt.plan_ledger([entry(1, "A1", "100"), entry(2, "A1", "-100")], CUT, [])
    assert plan.selection.ids["journal_entries"] == (1, 2)
    (carried,) = plan.carry_forward
    assert [(p.ledger_account, p.amount) for p in carried.postings] == [("A1:cash", 0)]


# ---- orders -------------------------------------------------------------------------------------


def order(oid: str, status: str, updated: datetime, account: str = "A1",
          event_at: datetime | None = None) -> rt.OrderRow:
    created = datetime(2019, 1, 1, tzinfo=UTC)
    return rt.OrderRow(oid, account, status, created, updated, ((account, f"C{oid}"),),
                       ((int(oid), created), (int(oid) * 100, event_at or updated)))


def test_only_final_orders_older_than_the_cutoff_go() -> None:
    old = datetime(2019, 6, 1, tzinfo=UTC)
    rows = [order("1", "filled", old), order("2", "new", old), order("3", "canceled", NOW),
            order("4", "expired", old, event_at=NOW), order("5", "rejected", old, "B1"),
            order("6", "canceled", old)]
    sel = rt.plan_orders(rows, CUT, [hold("B1")], keep_events=frozenset({600}))
    assert sel.ids["orders"] == ("1",)
    assert sel.ids["order_client_ids"] == (("A1", "C1"),)
    assert sel.ids["order_events"] == (1, 100)
    assert sel.held == 4



def test_the_highest_order_id_stays_so_it_is_never_handed_out_again() -> None:
    old = datetime(2019, 6, 1, tzinfo=UTC)
    # the newest event belongs to order 3 (a late cancel), but 9 is the highest id
    rows = [order("3", "canceled", old), order("8", "filled", old), order("9", "filled", old)]
    sel = rt.plan_orders(rows, CUT, [], keep_events=frozenset({300}), keep_orders=frozenset({"9"}))
    assert sel.ids["orders"] == ("8",)

# ---- audit --------------------------------------------------------------------------------------


def ev(seq: int, at: datetime, entity: str = "X", payload: str = "{}") -> rt.AuditRow:
    return rt.AuditRow(seq, at, entity, payload)


def test_the_audit_prefix_ends_at_the_first_young_or_held_event() -> None:
    old = datetime(2019, 1, 1, tzinfo=UTC)
    rows = [ev(1, old), ev(2, old), ev(3, NOW), ev(4, old)]  # a pinned clock went back
    assert rt.plan_audit(rows, CUT, []) == (2, 0)
    held = [ev(1, old), ev(2, old, payload='{"orders":[{"account":"A1"}]}'), ev(3, old),
            ev(4, NOW)]
    assert rt.plan_audit(held, CUT, [hold("A1")]) == (1, 2)
    assert rt.plan_audit(held, CUT, [hold("A1", "ledger")]) == (3, 0)
    assert rt.plan_audit([ev(1, old, "A1")], CUT, [hold("A1", "audit")]) == (None, 1)
    assert rt.plan_audit(held, CUT, [hold()]) == (None, 3)


# ---- manifest -----------------------------------------------------------------------------------


def test_manifest_problems_name_every_mismatch() -> None:
    files = [rt.ArchiveFile("executions", "executions.parquet", 2, "a" * 64, 10),
             rt.ArchiveFile("audit_events", "audit_events.parquet", 3, "b" * 64, 10),
             rt.ArchiveFile("orders", "../orders.parquet", 1, "c" * 64, 10)]
    info = rt.ManifestInfo(1, NOW, "ops", "sqlite:///x", "0008", rt.periods_from({}),
                           rt.cutoffs(rt.periods_from({}), NOW), [], {})
    manifest = rt.build_manifest(info, files, None)
    assert rt.manifest_text(manifest).endswith(b"}\n")
    problems = rt.manifest_problems(manifest, {"executions.parquet": ("a" * 64, 1),
                                               "audit_events.parquet": ("d" * 64, 3)})
    assert problems == [
        "executions.parquet: 1 rows, the manifest says 2",
        f"audit_events.parquet: SHA-256 {'d' * 64} is not the manifest's {'b' * 64}",
        "file name '../orders.parquet' is not a plain file name",
    ]
    good = {f.file: (f.sha256, f.rows) for f in files[:2]}
    assert rt.manifest_problems({**manifest, "files": manifest["files"][:2]}, good) == []


def test_a_declared_group_takes_only_old_unpinned_unheld_rows_with_their_children() -> None:
    group = rt.GroupSpec("recs", "id", ("at",), children=(rt.ChildSpec("kids", "id"),))
    old_t = datetime(2019, 1, 1, tzinfo=UTC)
    new_t = datetime(2025, 1, 1, tzinfo=UTC)

    def row(key: int, *times: object, accounts: tuple[str, ...] = ("A1",),
            pinned: bool = False) -> rt.GroupRow:
        return rt.GroupRow(key, tuple(times), frozenset(accounts),  # type: ignore[arg-type]
                           {"kids": (key * 10, key * 10 + 1)}, pinned)

    rows = [
        row(1, old_t, OLD),            # old, its child old: goes with both children
        row(2, old_t, new_t),          # a child younger than the cut-off: stays
        row(3, old_t, None),           # a time it does not have: stays
        row(4, old_t, pinned=True),    # referenced by a row that stays / newest id: stays
        row(5, old_t, accounts=("B1",)),
    ]
    sel = rt.plan_group("c", group, rows, CUT, [hold("B1")])
    assert sel.ids == {"kids": (10, 11), "recs": (1,)}
    assert sel.held == 3  # row 5 and its two children
    assert rt.plan_group("c", group, rows, CUT, [hold(None, "c")]).ids["recs"] == ()
    assert rt.plan_group("c", group, rows, CUT, [hold(None, "other")]).ids["recs"] == (1, 5)


def test_accounts_named_in_payloads_and_command_arguments() -> None:
    assert rt.accounts_in_json('["report", "statement", "--account", "A1"]') == {"A1"}
    assert rt.accounts_in_json('["x", "--account=A2"]') == {"A2"}
    assert rt.accounts_in_json('{"orders": [{"account": "A3"}]}') == {"A3"}
    assert rt.values_in_json('{"Acct": "A4", "Qty": "abc"}') == {"A4", "abc"}
    assert rt.accounts_in_json("not json") == set()


def test_an_orders_refused_reports_go_with_it_and_a_young_refusal_keeps_it() -> None:
    old = datetime(2019, 6, 1, tzinfo=UTC)
    rows = [
        dataclasses.replace(order("1", "canceled", old), refused=(("E1", old), ("E2", old))),
        dataclasses.replace(order("2", "canceled", old), refused=(("E3", NOW),)),
        dataclasses.replace(order("3", "filled", old, "B1"), refused=(("E4", old),)),
    ]
    sel = rt.plan_orders(rows, CUT, [hold("B1")])
    assert sel.ids["orders"] == ("1",)
    assert sel.ids["refused_reports"] == (("1", "E1"), ("1", "E2"))
    assert sel.held == 5  # order 3, its client id, its two events and its refused report
