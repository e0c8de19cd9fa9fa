"""Crash consistency of the order book: a process submitting orders and applying fills is killed
(SIGKILL) at random points, again and again, and restarted. An order's transition, its fills,
the cash journal and the audit event commit in one transaction or not at all, so after every
kill:

- the book is whole: each order once, its executions summing to its cum_qty, each execution with
  one balanced journal entry, one audit event per business event, positions equal to the signed
  sum of the executions, cash equal to the deposits less what the trades cost, and the audit
  chain intact;
- everything the killed process acknowledged is there (at most the one step it was in the middle
  of is there unacknowledged);

and once the last step is recovered, the book holds exactly what was acknowledged: every order
once, every fill once, none lost, and `tieout audit verify` passes.

The worker (tests/integration/kill_worker.py) is forked from this process, so that every round
spends its time working rather than importing. Its plan is deterministic (seed, step number);
the kill times come from a seeded generator. TIEOUT_KILL_ROUNDS and TIEOUT_KILL_MAX_S raise the
number and length of the rounds for a longer soak run.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from oms import audit, book, md_book, order_book, risk_limits
from oms.book import Ctx
from oms.positions import positions
from oms.refdata import make_account, make_instrument
from oms.schema import (
    audit_events,
    executions,
    journal_entries,
    journal_postings,
    order_client_ids,
    order_events,
    orders,
)
from oms.store import Store
from tests.conftest import Tieout
from tests.integration import kill_worker as kw

SEED = 20240611
ROUNDS = int(os.environ.get("TIEOUT_KILL_ROUNDS", "15"))
MIN_S, MAX_S = 0.3, float(os.environ.get("TIEOUT_KILL_MAX_S", "3.0"))
LIVE = {"pending_new", "new", "partially_filled", "pending_cancel", "pending_replace"}


def _setup(store: Store, tmp_path: Path) -> None:
    ctx = Ctx("setup", datetime.now(UTC))
    book.add_instruments(store, ctx, [make_instrument(s, "24/7", "USD") for s in kw.PRICES])
    for acct in kw.ACCOUNTS:
        book.open_account(store, ctx, make_account(acct, "USD", None, "margin", None))
        book.deposit(store, ctx, acct, kw.DEPOSIT, None)
    # thousands of orders in a minute from eight accounts, some with the same terms: neither
    # the order rate nor the double-submission check is what this test is about
    for name, value in (
        ("rate-window-s", "0.001"),
        ("duplicate-window-s", "0.001"),
        ("max-price-age-s", "86400"),
    ):
        risk_limits.set_limit(store, ctx, name, value)
    at = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bars = tmp_path / "bars.csv"
    bars.write_text(
        "time,symbol,open,high,low,close,volume\n"
        + "".join(f"{at},{s},{p},{p},{p},{p},1000000\n" for s, p in kw.PRICES.items())
    )
    md_book.import_bars(store, ctx, str(bars))


# ---- what the book holds -------------------------------------------------------------------------


@dataclass
class Book:
    orders: dict[str, Any]  # client order id -> row
    client_ids: Sequence[Any]
    execs: Sequence[Any]
    entries: Sequence[Any]
    postings: dict[int, list[Any]]  # entry id -> postings
    events: Sequence[Any]
    audit_actions: Counter[tuple[str, str]]  # (action, entity id) -> events
    chain: audit.ChainCheck
    positions: dict[str, dict[str, Decimal]]  # account -> symbol -> quantity (non-zero)
    cash: dict[str, book.CashBalance]
    totals_drift: list[str]  # order totals that differ from what the live orders make them
    cid_rows: Counter[str] = field(default_factory=Counter)

    def effective(self) -> dict[tuple[str, str], Any]:
        """The fills that count, as they stand: each under (venue, the ExecID it was filled
        with), its last correction's record if it has one; less those a bust took back."""
        fills: dict[tuple[str, str], Any] = {}
        root: dict[tuple[str, str], tuple[str, str]] = {}  # any ExecID of a fill -> its first
        for e in sorted(self.execs, key=lambda x: x.id):
            key = (e.venue, e.exec_id)
            if e.exec_type == "fill":
                fills[key] = e
                root[key] = key
                continue
            first = root[(e.venue, e.ref_exec_id)]
            if e.exec_type == "bust":
                del fills[first]
            else:  # a correction: the fill's new figures, under the fill's first ExecID
                fills[first] = e
                root[key] = first
        return fills


@contextmanager
def snapshot(store: Store) -> Iterator[Connection]:
    """One consistent view of the book. On PostgreSQL a repeatable-read snapshot: a killed
    client's last COMMIT may still land while the book is read, and read committed would show it
    to some of the queries only."""
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def read_book(store: Store) -> Book:
    with snapshot(store) as conn:
        o, e, je, jp, ev, a = (
            orders.c,
            executions.c,
            journal_entries.c,
            journal_postings.c,
            order_events.c,
            audit_events.c,
        )
        rows = conn.execute(
            select(
                o.order_id,
                o.client_order_id,
                o.account,
                o.symbol,
                o.side,
                o.type,
                o.venue,
                o.status,
                o.quantity,
                o.cum_qty,
                o.leaves_qty,
                o.state,
            )
        ).all()
        postings: dict[int, list[Any]] = defaultdict(list)
        for p in conn.execute(select(jp.entry_id, jp.ledger_account, jp.currency, jp.amount)):
            postings[p.entry_id].append(p)
        return Book(
            orders={r.client_order_id: r for r in rows},
            cid_rows=Counter(r.client_order_id for r in rows),
            client_ids=conn.execute(select(order_client_ids)).all(),
            execs=conn.execute(
                select(
                    e.id,
                    e.exec_id,
                    e.venue,
                    e.account,
                    e.symbol,
                    e.side,
                    e.quantity,
                    e.price,
                    e.commission,
                    e.fees,
                    e.order_id,
                    e.client_order_id,
                    e.exec_type,
                    e.ref_exec_id,
                    e.source,
                ).order_by(e.id)
            ).all(),
            entries=conn.execute(
                select(je.entry_id, je.kind, je.account, je.execution_id, je.ref)
            ).all(),
            postings=postings,
            events=conn.execute(
                select(ev.event_id, ev.order_id, ev.status, ev.exec_id).order_by(ev.event_id)
            ).all(),
            audit_actions=Counter(tuple(r) for r in conn.execute(select(a.action, a.entity_id))),
            positions={
                acct: {
                    p.position.symbol: p.position.quantity
                    for p in positions(conn, acct)
                    if p.position.quantity
                }
                for acct in kw.ACCOUNTS
            },
            cash={acct: book.cash_balance(conn, acct) for acct in kw.ACCOUNTS},
            totals_drift=order_book.totals_drift(conn),
            # last: on PostgreSQL verify_store leaves the connection streaming results, which
            # makes positions() on it drop an execution (see the report)
            chain=audit.verify_store(conn),
        )


def check_whole(b: Book, states: dict[str, Any]) -> None:
    """What holds after any kill, whatever was acknowledged: no business event half-written.
    `states`: the orders' states read so far, by their stored text (an order whose text is as
    in an earlier round is not parsed again: half the check's time, on a book of 20,000
    orders read 16 times)."""
    assert b.chain.ok, b.chain
    assert b.totals_drift == [], b.totals_drift
    dup = {cid: n for cid, n in b.cid_rows.items() if n > 1}
    assert not dup, f"client order ids on more than one order: {dup}"
    by_id = {r.order_id: r for r in b.orders.values()}
    assert sorted((c.account, c.client_order_id, c.order_id) for c in b.client_ids) == sorted(
        (r.account, r.client_order_id, r.order_id) for r in b.orders.values()
    )
    # executions: each once, on an order that exists, with its side and symbol
    assert len({(x.venue, x.exec_id) for x in b.execs}) == len(b.execs)
    assert {x.exec_type for x in b.execs} <= {"fill", "bust", "correct"}
    for x in b.execs:
        r = by_id[x.order_id]
        assert (x.account, x.symbol, x.side, x.client_order_id, x.venue) == (
            r.account,
            r.symbol,
            r.side,
            r.client_order_id,
            r.venue,
        ), x
    effective = b.effective()
    per_order: dict[str, list[Any]] = defaultdict(list)
    for x in effective.values():
        per_order[x.order_id].append(x)
    events: dict[str, list[Any]] = defaultdict(list)
    for ev in b.events:
        events[ev.order_id].append(ev)
    roots = {x.id: key for key, x in effective.items()}  # a fill's record -> its first ExecID
    for r in b.orders.values():
        state = states.get(r.state)
        if state is None:  # few fills: whole states
            state = states[r.state] = order_book.load_state(r.state, None)
        assert (state.status.value, state.cum_qty, state.leaves_qty) == (
            r.status,
            r.cum_qty,
            r.leaves_qty,
        ), r.order_id
        fills = sorted((roots[x.id][1], x.quantity, x.price) for x in per_order[r.order_id])
        assert sorted((f.exec_id, f.quantity, f.price) for f in state.fills) == fills, r.order_id
        assert sum((f[1] for f in fills), Decimal(0)) == r.cum_qty, r.order_id
        if r.status in LIVE:
            assert r.cum_qty + r.leaves_qty == r.quantity, r.order_id
        # the order's history ends where the order is, and every venue report was audited
        assert events[r.order_id] and events[r.order_id][-1].status == r.status, r.order_id
        assert b.audit_actions[("order.submit", r.order_id)] == 1, r.order_id
        reports = sum(1 for ev in events[r.order_id] if ev.exec_id is not None)
        assert b.audit_actions[("order.report", r.order_id)] == reports, r.order_id
        assert b.audit_actions[("order.cancel", r.order_id)] == (r.status == "canceled")
    assert sum(
        n for (action, _), n in b.audit_actions.items() if action.startswith("order.")
    ) == len(b.orders) + sum(1 for ev in b.events if ev.exec_id is not None) + sum(
        1 for r in b.orders.values() if r.status == "canceled"
    )
    # the cash journal: every entry balances; one entry per execution, none without one
    for entry_id, ps in b.postings.items():
        assert sum((p.amount for p in ps), Decimal(0)) == 0, entry_id
    by_exec = defaultdict(list)
    for j in b.entries:
        assert j.entry_id in b.postings, j
        if j.execution_id is None:
            assert j.kind == "deposit", j
        else:
            by_exec[j.execution_id].append(j)
    assert sum(1 for j in b.entries if j.kind == "deposit") == len(kw.ACCOUNTS)
    assert set(by_exec) == {x.id for x in b.execs}
    fills_by_key = {(x.venue, x.exec_id): x for x in b.execs}

    def paid(trade: Any) -> Decimal:  # what a trade does to its account's cash
        sign = 1 if trade.side == "buy" else -1
        return -sign * trade.quantity * trade.price - trade.commission - trade.fees

    def posted(entry: Any, account: str) -> Decimal:
        (amount,) = [
            p.amount for p in b.postings[entry.entry_id] if p.ledger_account == f"{account}:cash"
        ]
        return Decimal(amount)

    for x in b.execs:
        if x.exec_type == "fill":
            (j,) = by_exec[x.id]
            assert (j.kind, posted(j, x.account)) == ("trade", paid(x)), (x, j)
            continue
        # a bust takes back what the execution it names stands at; a correction too, and
        # books its own figures
        before = fills_by_key[(x.venue, x.ref_exec_id)]
        got = sorted((j.kind, posted(j, x.account)) for j in by_exec[x.id])
        want = [("bust" if x.exec_type == "bust" else "correction", -paid(before))]
        if x.exec_type == "correct":
            want.append(("trade", paid(x)))
        assert got == sorted(want), (x, got)
    # positions and cash from the executions that count
    want_pos: dict[str, dict[str, Decimal]] = {acct: defaultdict(Decimal) for acct in kw.ACCOUNTS}
    want_cash = dict.fromkeys(kw.ACCOUNTS, kw.DEPOSIT)
    for x in effective.values():
        sign = 1 if x.side == "buy" else -1
        want_pos[x.account][x.symbol] += sign * x.quantity
        want_cash[x.account] -= sign * x.quantity * x.price + x.commission + x.fees
    for acct in kw.ACCOUNTS:
        assert b.positions[acct] == {s: q for s, q in want_pos[acct].items() if q}, acct
        assert b.cash[acct].balance == want_cash[acct], acct


# ---- what the worker acknowledged ---------------------------------------------------------------


def check_acknowledged(b: Book, acks: list[dict[str, Any]], *, recovered: bool) -> int:
    """Everything acknowledged is in the book as acknowledged; what is in the book and was not
    acknowledged is the step the worker was killed in (none once recovered). Returns the number
    of unacknowledged orders found."""
    submitted = {r["i"]: r for r in acks if r["op"] == "submit"}
    applied = {r["i"] for r in acks if r["op"] == "apply"}
    canceled = {r["i"] for r in acks if r["op"] == "cancel"}
    batch_acked = {row["cid"]: row for r in acks if r["op"] == "batch" for row in r["rows"]}
    last = max(submitted, default=-1)
    cid_step = kw.steps_by_cid(SEED, last + 2)  # a batch's orders each with its own terms
    # every order is a step of the plan with its terms, and at most the one after the last
    # acknowledged is unacknowledged
    for cid, r in b.orders.items():
        assert cid in cid_step, f"order {r.order_id} ({cid}) was never attempted"
        step = cid_step[cid]
        assert (r.account, r.symbol, r.side, r.quantity) == (
            step.account,
            step.symbol,
            step.side,
            step.quantity,
        ), cid
        assert r.venue == (kw.VENUE if step.kind == "external" else "paper"), cid
    acked = {r["cid"] for r in submitted.values() if not r.get("batch")} | set(batch_acked)
    flight = kw.plan(SEED, last + 1)  # the step in flight: an order, or a batch's orders
    flight_cids = {
        s.client_order_id for s in (kw.batch_rows(flight) if flight.kind == "batch" else [flight])
    }
    unacked = {cid for cid in b.orders if cid not in acked}
    assert unacked <= (flight_cids if not recovered else set()), (unacked, last)
    if recovered:
        assert set(b.orders) == acked
    effective = b.effective()
    by_key = {(x.venue, x.exec_id): x for x in b.execs}
    acked_execs: set[tuple[str, str]] = set()
    report_ids: dict[str, set[str]] = defaultdict(set)
    for ev in b.events:
        if ev.exec_id is not None:
            report_ids[ev.order_id].add(ev.exec_id)
    for cid, row in batch_acked.items():  # each acknowledged order of a batch, with its fill
        step = cid_step[cid]
        r = b.orders.get(cid)
        assert r is not None and r.order_id == row["order_id"], f"acknowledged {row} is lost"
        assert r.status == "filled" and r.cum_qty == step.quantity, r
        ((exec_id, qty, px),) = row["fills"]
        x = effective.get(("paper", exec_id))
        assert x is not None, f"acknowledged batch fill {exec_id} is lost"
        assert (x.quantity, x.price, x.order_id) == (Decimal(qty), Decimal(px), r.order_id), x
        acked_execs.add(("paper", exec_id))
    for i, rec in submitted.items():
        step = kw.plan(SEED, i)
        if step.kind == "batch":
            continue  # its orders are checked above, group by group
        r = b.orders.get(step.client_order_id)
        assert r is not None and r.order_id == rec["order_id"], f"acknowledged {rec} is lost"
        if step.kind == "market":
            assert r.status == "filled" and r.cum_qty == step.quantity, r
            ((exec_id, qty, px),) = rec["fills"]
            key = ("paper", exec_id)
            assert key in effective, f"acknowledged fill {key} is lost"
            x = effective[key]
            assert (x.quantity, x.price) == (Decimal(qty), Decimal(px)) and x.order_id == (
                r.order_id
            ), (x, rec)
            acked_execs.add(key)
        elif step.kind == "external" and i in applied:
            assert r.status == "filled" and r.cum_qty == step.quantity, r
            assert report_ids[r.order_id] == set(kw.report_ids(step)), r.order_id
            for f in step.fills:
                x = by_key.get((kw.VENUE, f.exec_id))
                assert x is not None, f"acknowledged fill {f.exec_id} is lost"
                assert (x.quantity, x.price, x.commission) == (f.quantity, f.price, f.commission), x
                assert ((kw.VENUE, f.exec_id) in effective) != f.busted, f
                acked_execs.add((kw.VENUE, f.exec_id))
                if f.busted:
                    acked_execs.add((kw.VENUE, f"{f.exec_id}-X"))
                if f.corrected:  # it stands at the correction's figures
                    now = effective[(kw.VENUE, f.exec_id)]
                    assert (now.exec_id, now.quantity, (now.price, now.commission)) == (
                        f.last_id,
                        f.quantity,
                        f.corrected,
                    ), now
                    acked_execs.add((kw.VENUE, f.last_id))
        elif step.kind == "rest" and i in canceled:
            assert r.status == "canceled" and r.cum_qty == 0, r
    # executions nobody acknowledged belong to the step in flight: the order after the last
    # acknowledged one, or the last one's drop copy
    in_flight = set(flight_cids)
    if last >= 0 and kw.plan(SEED, last).kind == "external" and last not in applied:
        in_flight.add(kw.plan(SEED, last).client_order_id)
    stray = {x.client_order_id for x in b.execs if (x.venue, x.exec_id) not in acked_execs}
    assert stray <= (set() if recovered else in_flight), stray
    return len(unacked)


# ---- the test ---------------------------------------------------------------------------------


def _error(ack: Path) -> str:
    err = Path(f"{ack}.error")
    return err.read_text() if err.exists() else "(no error file)"


def test_killed_order_flow_leaves_a_whole_book(store: Store, db_url: str, tmp_path: Path) -> None:
    _setup(store, tmp_path)
    ack = tmp_path / "acks.jsonl"
    fork = multiprocessing.get_context("fork")
    rng = random.Random(SEED)
    workers: list[Any] = []

    def start(*args: Any) -> Any:
        worker = fork.Process(target=kw.run, args=(db_url, str(ack), SEED, *args), daemon=True)
        worker.start()
        workers.append(worker)
        return worker

    started = time.monotonic()
    unacked = 0
    states: dict[str, Any] = {}
    try:
        for _ in range(ROUNDS):
            worker = start()
            worker.join(rng.uniform(MIN_S, MAX_S))
            assert worker.exitcode is None, f"the worker stopped by itself: {_error(ack)}"
            os.kill(worker.pid, signal.SIGKILL)
            worker.join()
            assert worker.exitcode == -signal.SIGKILL
            b = read_book(store)
            check_whole(b, states)
            unacked += check_acknowledged(b, kw.read_acks(ack), recovered=False)
        worked = time.monotonic() - started
        # a last run, not killed: it finishes the step the last kill interrupted, and stops
        worker = start(10**9, True)
        worker.join(120)
        assert worker.exitcode == 0, _error(ack)
    finally:
        for w in workers:
            if w.is_alive():
                os.kill(w.pid, signal.SIGKILL)
                w.join()
    acks = kw.read_acks(ack)
    b = read_book(store)
    check_whole(b, states)
    check_acknowledged(b, acks, recovered=True)
    verified = Tieout(db_url).ok("audit", "verify", "--json").json()
    assert verified["ok"] is True and verified["events"] == b.chain.events
    assert not [r for r in b.orders.values() if r.status in LIVE]
    assert all(c.reserved == 0 for c in b.cash.values())
    assert 1 < [r["op"] for r in acks].count("start") <= ROUNDS + 1  # one per process
    assert acks[-1]["op"] == "stop"
    # the killed rounds did work (the last run alone does one step)
    assert max(r["last"] for r in acks if r["op"] == "start") >= 0
    kinds = Counter(kw.plan(SEED, r["i"]).kind for r in acks if r["op"] == "submit")
    replays = [r for r in acks if r["op"] == "replay"]
    print(
        f"\n{store.dialect}: {ROUNDS} kills in {worked:.1f}s; {len(b.orders)} orders "
        f"({dict(kinds)}), {len(b.execs)} executions, {b.chain.events} audit events; "
        f"{unacked} kills between a commit and its acknowledgement; "
        f"{sum(r['submits'] for r in replays)} acknowledged submits and "
        f"{sum(r['applies'] for r in replays)} drop copies repeated after restarts; "
        f"{sum(len(r['rows']) for r in acks if r['op'] == 'batch')} batch orders acknowledged "
        f"group by group, {kinds['batch']} batch files"
    )
    assert kinds["batch"] >= 1  # the rounds included files submitted by group commit


@pytest.mark.parametrize("text", ['{"op": "submit"', '{"op": "start", "i": 1}\n{"op'])
def test_a_cut_ack_record_is_not_acknowledged(tmp_path: Path, text: str) -> None:
    path = tmp_path / "acks.jsonl"
    path.write_text(text)
    acks = kw.Acks(path)
    acks.add(op="stop")
    assert [r["op"] for r in kw.read_acks(path)] == [*(["start"] if "\n" in text else []), "stop"]
