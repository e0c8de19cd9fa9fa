"""`exec import` of N rows (default 1,000,000) on SQLite and PostgreSQL.

    python -m benchmarks.exec_import [sqlite|postgresql] [--rows N]

Prints JSON: seconds to validate and book the file (executions, their journal entries and the
audit event, one transaction), rows per second, and the peak memory of the process."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.common import backends, fresh_store, peak_rss_mb, reference_data, report
from oms import executions
from oms.book import Ctx


def rows_arg(default: int) -> int:
    if "--rows" in sys.argv:
        return int(sys.argv[sys.argv.index("--rows") + 1])
    return default


def write_file(path: Path, n: int, accounts: int, symbols: int) -> None:
    rng = random.Random(7)
    start = date(2026, 11, 2)
    with path.open("w") as fh:
        fh.write(
            "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees,"
            "exec_time\n"
        )
        for i in range(n):
            d = start + timedelta(days=(i * 5 // n) * 1)
            t = datetime(d.year, d.month, d.day, 14, 30, tzinfo=UTC) + timedelta(microseconds=i * 7)
            fh.write(
                f"X{i},A{rng.randrange(accounts)},S{rng.randrange(symbols)},"
                f"{'buy' if rng.random() < 0.5 else 'sell'},{rng.randrange(1, 1000)},"
                f"{rng.randrange(1000, 100000) / 100:.2f},{d.isoformat()},BENCH,"
                f"{rng.randrange(0, 500) / 100:.2f},0.01,{t.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}\n"
            )


def main() -> None:
    n = rows_arg(1_000_000)
    ctx = Ctx("bench", datetime.now(UTC))
    results = {}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "execs.csv"
        write_file(path, n, accounts=200, symbols=500)
        for backend in backends():
            with fresh_store(backend) as store:
                reference_data(store, ctx, accounts=200, symbols=500)
                t0 = time.perf_counter()
                result = executions.import_file(store, ctx, str(path))
                elapsed = time.perf_counter() - t0
                assert result.booked == n
                results[backend] = {"seconds": round(elapsed, 2), "rows_per_s": round(n / elapsed)}
    report(
        {
            "benchmark": "exec_import",
            "rows": n,
            "results": results,
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


if __name__ == "__main__":
    main()
