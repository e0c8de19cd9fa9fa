"""The ledger plan is idempotent: a carry_forward entry moves only with other entries of its
account and currency; the journal's newest entry is archived only when a carry-forward (which
takes a higher id) is written, else its account and currency wait whole."""

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from oms import ledger
from oms import retention as rt

CUT = datetime(2020, 1, 1, tzinfo=UTC)
OLD = date(2018, 3, 1)
OLD_T = datetime(2018, 3, 1, tzinfo=UTC)


def row(entry_id: int, account: str, amount: str, kind: str = "deposit") -> rt.LedgerEntryRow:
    a = Decimal(amount)
    return rt.LedgerEntryRow(
        entry_id, kind, account, "USD", OLD, OLD_T,
        ((entry_id * 10, ledger.Posting(f"{account}:cash", "USD", a)),
         (entry_id * 10 + 1, ledger.Posting(f"{account}:capital", "USD", -a))))


def test_a_carry_forward_alone_stays() -> None:
    plan = rt.plan_ledger([row(1, "A1", "70", rt.CARRY_FORWARD)], CUT, [])
    assert plan.selection.ids["journal_entries"] == () and plan.carry_forward == ()
    plan = rt.plan_ledger([row(1, "A1", "70", rt.CARRY_FORWARD), row(2, "B1", "3")], CUT, [])
    assert plan.selection.ids["journal_entries"] == (2,)


def test_a_carry_forward_moves_with_its_account() -> None:
    plan = rt.plan_ledger([row(1, "A1", "70", rt.CARRY_FORWARD), row(2, "A1", "5")], CUT, [],
                          newest=2)
    assert plan.selection.ids["journal_entries"] == (1, 2)
    (cf,) = plan.carry_forward
    assert {p.ledger_account: p.amount for p in cf.postings} == {
        "A1:cash": Decimal("75"), "A1:capital": Decimal("-75")}


def test_the_newest_goes_when_something_is_carried_forward() -> None:
    plan = rt.plan_ledger([row(1, "A1", "100"), row(2, "B1", "5")], CUT, [], newest=2)
    assert plan.selection.ids["journal_entries"] == (1, 2)
    assert len(plan.carry_forward) == 2


def test_the_newest_goes_when_everything_nets_to_zero() -> None:
    entries = [row(1, "A1", "100"), row(2, "B1", "4"), row(3, "B1", "-4"), row(4, "A1", "-100")]
    plan = rt.plan_ledger(entries, CUT, [], newest=4)
    # everything nets to zero: each account still gets an entry of nothing (it dates what was
    # archived), which takes an id above 4, so the newest may go too
    assert plan.selection.ids["journal_entries"] == (1, 2, 3, 4)
    assert [c.account for c in plan.carry_forward] == ["A1", "B1"]


def _after(entries: list[rt.LedgerEntryRow], newest: int) -> list[rt.LedgerEntryRow]:
    """The journal after applying the plan: the rest, and the carry-forwards (posted now)."""
    plan = rt.plan_ledger(entries, CUT, [], newest=newest)
    gone = set(plan.selection.ids["journal_entries"])
    assert newest not in gone or plan.carry_forward  # an id is never freed for reuse
    rest = [e for e in entries if e.entry_id not in gone]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for i, cf in enumerate(plan.carry_forward):
        eid = newest + 1 + i
        rest.append(rt.LedgerEntryRow(
            eid, cf.kind, cf.account, cf.currency, cf.value_date, now,
            tuple((eid * 10 + j, p) for j, p in enumerate(cf.postings))))
    return rest


def _balances(entries: list[rt.LedgerEntryRow]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for e in entries:
        for _, p in e.postings:
            out[p.ledger_account] = out.get(p.ledger_account, Decimal(0)) + p.amount
    return {k: v for k, v in out.items() if v}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A1", "B1", "C1"]),
                          st.integers(-5, 5), st.booleans()), min_size=1, max_size=12))
def test_apply_twice_archives_nothing_the_second_time(
    spec: list[tuple[str, int, bool]],
) -> None:
    entries = [row(i + 1, acct, str(n), rt.CARRY_FORWARD if cf else "deposit")
               for i, (acct, n, cf) in enumerate(spec)]
    once = _after(entries, len(entries))
    assert _balances(once) == _balances(entries)
    newest = max(e.entry_id for e in once)
    second = rt.plan_ledger(once, CUT, [], newest=newest)
    assert second.selection.ids["journal_entries"] == ()
    assert second.carry_forward == ()
