"""Single submissions with many live orders behind the account: does an order cost more when
the account has 10,000 resting orders than when it has none?

    python -m benchmarks.order_live [sqlite|postgresql] [--live N,N,...] [--orders N] [--bars N]

Per backend and per count of live orders (default 0, 1,000 and 10,000): a 24/7 instrument, one
margin account with cash, that many resting limit orders of the account (sales and buys in
turn, 5% off the last price, placed by `order submit --file` more than the order rate's and
the duplicate check's windows (set to 1 s) before), then single resting limit
orders (`order_book.submit`, one transaction each, default 200), and the account's cash
balance with what its orders hold (`book.cash_balance`, as `tieout cash balance` reads it).
Prints JSON: p50/p99 of both, per count, and the ratio of the largest count's p50 to none's
(1.0: the live orders do not matter). What live orders hold and their open quantities are
kept per account, symbol and side (table order_totals) as orders change; before, each
submission read every live order of the account.

Then, per count, `md import` of N one-minute bars (default 60) that cross none of the resting
orders, and the paper venue working them: the venue reads only the resting orders a bar may
fill or trigger (order_book.may_act); before, it read every resting order of the symbol for
every bar.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.common import backends, fresh_store, report
from benchmarks.order_submit import (
    LIMITS,
    SYMBOL,
    load_average,
    pct,
    request,
    setup_book,
    write_batch,
)
from oms import book, md_book, order_book, risk_limits
from oms.book import Ctx
from oms.refdata import make_account, make_instrument


def arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def run(backend: str, live: int, orders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d, fresh_store(backend) as store:
        setup_book(store, 1)
        # the order rate and the duplicate check look back 1 s: the resting orders were placed
        # before that, as a day's resting orders were (those checks read the orders inside
        # their windows, whatever the book holds)
        for name in ("rate-window-s", "duplicate-window-s"):
            risk_limits.set_limit(store, Ctx("bench", datetime.now(UTC)), name, "1")
        path = Path(d) / "live.csv"
        if live:
            write_batch(path, live, 1, "limit")
            done = order_book.submit_file(store, Ctx("bench", datetime.now(UTC)), str(path))
            if done.accepted != live:
                raise SystemExit(f"{live} live orders: {done.rejected} rejected")
        time.sleep(1.1)
        submit: list[float] = []
        for i in range(live, live + orders):  # the same terms the file's next lines would have
            t = time.perf_counter()
            ctx = Ctx("bench", datetime.now(UTC))
            placed = order_book.submit(store, ctx, request(i, 1, "limit"))
            submit.append(time.perf_counter() - t)
            if placed.order.status.value != "new":
                raise SystemExit(f"order {i}: {placed.order.status.value}")
        balance: list[float] = []
        for _ in range(min(orders, 50)):
            t = time.perf_counter()
            with store.read() as conn:
                book.cash_balance(conn, "B0", "USD")
            balance.append(time.perf_counter() - t)
        with store.read() as conn:
            resting = len([o for o in order_book.list_orders(conn, account="B0") if o.live])
            # (the same script also runs on the code before order totals, for the README's
            # comparison: there is nothing to drift there)
            drift = order_book.totals_drift(conn) if hasattr(order_book, "totals_drift") else []
        if resting != live + orders:
            raise SystemExit(f"{resting} live orders, not {live + orders}")
        if drift:
            raise SystemExit(f"order totals drifted: {drift[:3]}")
    submit.sort()
    balance.sort()
    return {
        "live_orders": live,
        "orders": orders,
        "submit_p50_ms": round(pct(submit, 50) * 1000, 3),
        "submit_p99_ms": round(pct(submit, 99) * 1000, 3),
        "cash_balance_p50_ms": round(pct(balance, 50) * 1000, 3),
    }


def bars_run(backend: str, live: int, bars: int) -> dict[str, Any]:
    """`md import` of `bars` one-minute bars that cross none of the account's `live` resting
    limit orders, and the paper venue working them (as the command does: fill_pending), timed.
    The book's clock is set back: the last price's bar three hours ago, the resting orders
    placed two hours ago, the new bars after them."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as d, fresh_store(backend) as store:
        ctx = Ctx("bench", now - timedelta(hours=3))
        book.add_instruments(store, ctx, [make_instrument(SYMBOL, "24/7", "USD")])
        book.open_account(store, ctx, make_account("B0", "USD", None, "margin", None))
        book.deposit(store, ctx, "B0", Decimal(10) ** 12, None)
        for name, value in LIMITS.items():
            risk_limits.set_limit(store, ctx, name, value)
        first = Path(d) / "last.csv"
        _write_bars(first, now - timedelta(hours=3), 1)
        md_book.import_bars(store, ctx, str(first))
        if live:
            path = Path(d) / "live.csv"
            write_batch(path, live, 1, "limit")
            placed = Ctx("bench", now - timedelta(hours=2))
            done = order_book.submit_file(store, placed, str(path))
            if done.accepted != live:
                raise SystemExit(f"{live} live orders: {done.rejected} rejected")
        later = Path(d) / "bars.csv"
        _write_bars(later, now - timedelta(hours=2) + timedelta(minutes=1), bars)
        at = Ctx("bench", now)
        t = time.perf_counter()
        md_book.import_bars(store, at, str(later))
        imported = time.perf_counter() - t
        filled = order_book.fill_pending(store, at)
        worked = time.perf_counter() - t - imported
        if filled:
            raise SystemExit(f"{len(filled)} orders filled: the bars should cross none")
    return {
        "live_orders": live,
        "bars": bars,
        "import_s": round(imported, 3),
        "paper_venue_s": round(worked, 3),
        "paper_venue_ms_per_bar": round(worked / bars * 1000, 3),
    }


def _write_bars(path: Path, start: datetime, n: int) -> None:
    """n one-minute bars at 100, 99.5 to 100.5: they cross no order 5% away."""
    with path.open("w") as fh:
        fh.write("time,symbol,open,high,low,close,volume\n")
        for i in range(n):
            at = (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            fh.write(f"{at},{SYMBOL},100,100.5,99.5,100,100000\n")


def main() -> None:
    counts = [int(x) for x in arg("--live", "0,1000,10000").split(",")]
    orders = int(arg("--orders", "200"))
    bars = int(arg("--bars", "60"))
    results: dict[str, Any] = {}
    for backend in backends():
        doc: dict[str, Any] = {"load_average_start": load_average()}
        runs = [run(backend, n, orders) for n in counts]
        doc["runs"] = runs
        bar_runs = [bars_run(backend, n, bars) for n in counts]
        doc["bars"] = bar_runs
        doc["bars_ratio_most_to_fewest"] = round(
            bar_runs[-1]["paper_venue_s"] / max(bar_runs[0]["paper_venue_s"], 1e-6), 2
        )
        doc["p50_ratio_most_to_fewest"] = round(
            runs[-1]["submit_p50_ms"] / runs[0]["submit_p50_ms"], 2
        )
        doc["load_average_end"] = load_average()
        results[backend] = doc
    report({"benchmark": "order_live", "results": results})


if __name__ == "__main__":
    main()
