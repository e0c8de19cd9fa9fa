"""Drop copies of one external order with many fills (an algorithm's day), in process: what a
report costs as the order's fills grow, and where (decide, the pure core; the order's write;
the commit).

    python -m benchmarks.long_order [sqlite|postgresql] [--fills N] [--per N]

One external limit order, acknowledged, then fills of 1 in drop copies of --per messages
(default 500) applied with `order_book.apply_reports` (what `tieout exec apply` runs) until the
order has --fills fills (default 5,000); then one more file under cProfile. Per file: ms a
message; for the profiled file: ms a message in `orders.decide`, in writing the order
(`_store_order`) and in COMMIT. Prints one JSON document; progress and the profile's top
functions (by their own time) on stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import backends, fresh_store, report
from benchmarks.order_changes import fix_line, orders_file
from benchmarks.order_submit import SYMBOL, load_average, setup_book
from oms import order_book
from oms.book import Ctx


def _cumulative(stats: pstats.Stats, name: str) -> float:
    for (_, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        if function == name:
            return float(row[3])
    return 0.0


def run(backend: str, fills: int, per: int, folder: Path) -> dict[str, Any]:
    with fresh_store(backend) as store:
        setup_book(store, 20)
        rows = [f"B0,{SYMBOL},buy,{fills + 10 * per},limit,101,gtc,ACME,BIG"]
        path = orders_file(folder / "big.csv", rows)
        order_book.submit_file(store, Ctx("b", datetime.now(UTC)), path)
        done, k, per_file, profiled = 0, 0, [], {}
        while done <= fills:
            lines = [fix_line((35, "8"), (11, "BIG"), (17, "ACK"), (150, "0"))] if k == 0 else []
            lines += [
                fix_line((35, "8"), (11, "BIG"), (17, f"F{i}"), (150, "F"), (32, "1"), (31, "100"))
                for i in range(done, done + per)
            ]
            drop = folder / f"f{k}.fix"
            drop.write_text("\n".join(lines) + "\n")
            last = done >= fills
            profile = cProfile.Profile() if last else None
            t0 = time.perf_counter()
            if profile is not None:
                profile.enable()
            order_book.apply_reports(store, Ctx("b", datetime.now(UTC)), str(drop))
            if profile is not None:
                profile.disable()
                stats = pstats.Stats(profile, stream=sys.stderr)
                stats.sort_stats("tottime").print_stats(25)  # the listing on stderr
                profiled = {
                    f"ms_{label}_per_message": round(_cumulative(stats, name) / per * 1e3, 3)
                    for label, name in (
                        ("decide", "decide"),
                        ("write_order", "_store_order"),
                        ("commit", "commit"),
                    )
                }
            seconds = time.perf_counter() - t0
            per_file.append(round(seconds / per * 1e3, 3))
            print(f"[long_order] {backend}: fills {done}-{done + per}", file=sys.stderr)
            done += per
            k += 1
        return {
            "fills_before_profiled_file": fills,
            "per_file": per,
            "ms_per_message_by_file": per_file[:-1],
            "profiled_file": {"ms_per_message_under_profile": per_file[-1], **profiled},
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", nargs="?")
    parser.add_argument("--fills", type=int, default=5000)
    parser.add_argument("--per", type=int, default=500)
    args = parser.parse_args()
    results: dict[str, Any] = {"load_average_start": load_average()}
    with tempfile.TemporaryDirectory() as d:
        for backend in backends():
            results[backend] = run(backend, args.fills, args.per, Path(d))
    report({"benchmark": "long_order", "fills": args.fills, "per": args.per, "results": results})


if __name__ == "__main__":
    main()
