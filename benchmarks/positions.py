"""Positions and realized P&L over N executions (default 1,000,000) of one account.

    python -m benchmarks.positions [sqlite|postgresql] [--rows N]

Prints JSON, each figure as wall-clock seconds and this process's CPU seconds (the database
server's own work on PostgreSQL is in the wall-clock figure only), with the load average:

- positions_command: `tieout positions` end to end (the bulk read of the executions, the lot
  relief, marks), FIFO; the aim is <= 5 s;
- bulk_read: executions.fill_columns alone; relief_<method>: lots.build_positions_frame alone
  (in memory, every cost method);
- reference_load / reference_fifo: the reference path (executions.records into ExecRecords,
  build_positions), and whether the command's positions are identical to it, figure by
  figure (value and exponent).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.common import backends, fresh_store, peak_rss_mb, reference_data, report
from benchmarks.exec_import import rows_arg, write_file
from oms import executions, lots, positions
from oms.book import Ctx
from oms.store import Store
from oms.values import CostMethod

T = TypeVar("T")


def timed(timings: dict[str, Any], name: str, work: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    timings[name] = {
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
    }
    return result


def exact(built: dict[tuple[str, str], lots.Position]) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {
        key: (
            str(p.quantity),
            str(p.cost_basis),
            str(p.realized_pnl),
            str(p.commissions),
            str(p.fees),
            tuple(
                (lot.opened, str(lot.quantity), str(lot.price), str(lot.cost_basis))
                for lot in p.lots
            ),
        )
        for key, p in built.items()
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def fast(store: Store, timings: dict[str, Any]) -> dict[tuple[str, str], lots.Position]:
    with store.read() as conn:
        lines = timed(timings, "positions_command", lambda: positions.positions(conn, "A0"))
    assert 0 < len(lines) <= 500
    with store.read() as conn:
        frame, changes = timed(timings, "bulk_read", lambda: executions.fill_columns(conn, "A0"))
    assert not changes
    for method in CostMethod:
        timed(timings, f"relief_{method.value}", partial(lots.build_positions_frame, frame, method))
    return {(ln.position.account, ln.position.symbol): ln.position for ln in lines}


def reference(store: Store, timings: dict[str, Any]) -> dict[tuple[str, str], lots.Position]:
    with store.read() as conn:
        recs = timed(timings, "reference_load", lambda: executions.records(conn, account="A0"))
    fills = lots.effective_fills(recs)
    return timed(timings, "reference_fifo", partial(lots.build_positions, fills, CostMethod.FIFO))


def main() -> None:
    n = rows_arg(1_000_000)
    ctx = Ctx("bench", datetime.now(UTC))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "execs.csv"
        write_file(path, n, accounts=1, symbols=500)
        for backend in backends():
            with fresh_store(backend) as store:
                reference_data(store, ctx, accounts=1, symbols=500)
                executions.import_file(store, ctx, str(path))
                timings: dict[str, Any] = {"load_average_before": load_average()}
                mine = fast(store, timings)
                theirs = reference(store, timings)
                timings["identical_to_reference"] = exact(mine) == exact(theirs)
                timings["load_average_after"] = load_average()
                results[backend] = timings
    report(
        {
            "benchmark": "positions",
            "executions": n,
            "symbols": 500,
            "results": results,
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


if __name__ == "__main__":
    main()
