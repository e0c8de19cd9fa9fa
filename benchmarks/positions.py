"""Positions and realized P&L over N executions (default 1,000,000) of one account.

    python -m benchmarks.positions [sqlite|postgresql] [--rows N]

Prints JSON: the pure lot relief alone (in memory), and `tieout positions` end to end (read the
executions from the store, apply corrections, relieve lots FIFO, mark to market)."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import backends, fresh_store, peak_rss_mb, reference_data, report
from benchmarks.exec_import import rows_arg, write_file
from oms import executions, lots, positions
from oms.book import Ctx
from oms.values import CostMethod


def main() -> None:
    n = rows_arg(1_000_000)
    ctx = Ctx("bench", datetime.now(UTC))
    results = {}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "execs.csv"
        write_file(path, n, accounts=1, symbols=500)
        for backend in backends():
            with fresh_store(backend) as store:
                reference_data(store, ctx, accounts=1, symbols=500)
                executions.import_file(store, ctx, str(path))
                with store.read() as conn:
                    t0 = time.perf_counter()
                    recs = executions.records(conn, account="A0")
                    t_load = time.perf_counter() - t0
                fills = lots.effective_fills(recs)
                timings = {"load_s": round(t_load, 2)}
                for method in CostMethod:
                    t0 = time.perf_counter()
                    lots.build_positions(fills, method)
                    timings[f"pure_{method.value}_s"] = round(time.perf_counter() - t0, 2)
                with store.read() as conn:
                    t0 = time.perf_counter()
                    lines = positions.positions(conn, "A0")
                    timings["positions_command_s"] = round(time.perf_counter() - t0, 2)
                assert 0 < len(lines) <= 500
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
