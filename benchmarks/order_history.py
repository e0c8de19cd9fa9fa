"""Single submissions with a long history behind the account: does an order cost more when the
account has 200,000 executions than when it has 1,000?

    python -m benchmarks.order_history [sqlite|postgresql] [--rows N] [--orders N]

Per backend: a 24/7 instrument, one margin account with cash, N executions of it in that
instrument imported (`exec import`, default 200,000), and 1,000 for comparison in a book of
its own; then single paper market orders (`order_book.submit`, one transaction each, default
200) for that account and instrument. Prints JSON: the first order's latency (it reads the
account's whole history once and keeps the running sums), then p50/p99 of the rest, for both
histories, and the ratio of the two p50s (1.0: the history does not matter). The pre-trade
checks read an account's cash and position as a running sum kept up to a row id plus the rows
after it (oms.submission, table running_sums); before it, each order read them all.
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
from benchmarks.exec_import import write_file
from benchmarks.order_submit import LIMITS, load_average, pct
from oms import book, executions, md_book, order_book, risk_limits
from oms.book import Ctx
from oms.refdata import make_account, make_instrument
from oms.values import OrdType, Side, TimeInForce


def int_arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def run(backend: str, rows: int, orders: int) -> dict[str, Any]:
    ctx = Ctx("bench", datetime.now(UTC))
    with tempfile.TemporaryDirectory() as d, fresh_store(backend) as store:
        # write_file's account A0 and symbol S0 (one account, one symbol)
        book.add_instruments(store, ctx, [make_instrument("S0", "24/7", "USD")])
        book.open_account(store, ctx, make_account("A0", "USD", None, "margin", None))
        book.deposit(store, ctx, "A0", Decimal(10) ** 12, None)
        for name, value in LIMITS.items():
            risk_limits.set_limit(store, ctx, name, value)
        path = Path(d) / "execs.csv"
        write_file(path, rows, accounts=1, symbols=1)
        t0 = time.perf_counter()
        executions.import_file(store, ctx, str(path))
        imported = time.perf_counter() - t0
        at = (datetime.now(UTC) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        bars = Path(d) / "bars.csv"
        bars.write_text(
            f"time,symbol,open,high,low,close,volume\n{at},S0,100,100,100,100,100000000\n"
        )
        md_book.import_bars(store, ctx, str(bars))
        lat: list[float] = []
        for i in range(orders):
            req = order_book.OrderRequest(
                "A0",
                "S0",
                Side.BUY if i % 2 else Side.SELL,
                Decimal(i + 1),  # no two alike (duplicate check)
                OrdType.MARKET,
                TimeInForce.DAY,
            )
            t = time.perf_counter()
            done = order_book.submit(store, Ctx("bench", datetime.now(UTC)), req)
            lat.append(time.perf_counter() - t)
            if done.order.status.value != "filled":
                raise SystemExit(f"order {i}: {done.order.status.value}")
    rest = sorted(lat[1:])
    return {
        "executions": rows,
        "import_s": round(imported, 2),
        "first_order_ms": round(lat[0] * 1000, 2),
        "orders": len(rest),
        "p50_ms": round(pct(rest, 50) * 1000, 3),
        "p99_ms": round(pct(rest, 99) * 1000, 3),
    }


def main() -> None:
    rows, orders = int_arg("--rows", 200_000), int_arg("--orders", 200)
    results: dict[str, Any] = {}
    for backend in backends():
        doc: dict[str, Any] = {"load_average_start": load_average()}
        small = run(backend, 1_000, orders)
        large = run(backend, rows, orders)
        doc.update(
            {
                "history_1000": small,
                f"history_{rows}": large,
                "p50_ratio_large_to_small": round(large["p50_ms"] / small["p50_ms"], 2),
                "load_average_end": load_average(),
            }
        )
        results[backend] = doc
    report({"benchmark": "order_history", "orders": orders, "results": results})


if __name__ == "__main__":
    main()
