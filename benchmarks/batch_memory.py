"""Peak memory of `order submit --file` as the file grows: the real command, in its own process.

    python -m benchmarks.batch_memory [sqlite|postgresql] [--orders N,N,...]

Per backend and per size (default 10,000 and 50,000 paper market orders, round-robin over 20
accounts, each filled): a fresh book, then `tieout order submit --file F --json` with stdout to
/dev/null, in a process of its own: wall seconds and the process's peak RSS (VmHWM), next to
`tieout --help` (start-up and imports alone). The figure that matters is the slope: how much the
peak grows per order as the file grows ((largest - smallest peak) / (largest - smallest size)).
What a batch must hold per order until it ends: its summary line (printed at the end) and what
the risk checks look back on (every order of the file is inside the duplicate and rate
windows: its terms, its time, its client order id); the orders themselves are held for two
groups only (oms.submission.Group.take). On SQLite the writer process is a child of its own:
its memory is not in the figure (it holds one group's rows at a time).
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.common import backends, report
from benchmarks.listing import book_and_file, measure
from benchmarks.order_submit import load_average


def sizes() -> list[int]:
    if "--orders" in sys.argv:
        return [int(x) for x in sys.argv[sys.argv.index("--orders") + 1].split(",")]
    return [10_000, 50_000]


def run(backend: str, n: int) -> dict[str, Any]:
    with book_and_file(backend, n) as (store, path):
        print(f"[batch_memory] {backend}: order submit --file of {n} orders", file=sys.stderr)
        out: dict[str, Any] = {"orders": n, "load_average_start": load_average()}
        out["submit_file"] = measure(["order", "submit", "--file", str(path), "--json"], store.url)
        out["submit_file"]["orders_per_s"] = round(n / out["submit_file"]["wall_s"])
        return out


def main() -> None:
    results: dict[str, Any] = {}
    help_run = measure(["--help"], "")
    for backend in backends():
        runs = [run(backend, n) for n in sizes()]
        first, last = runs[0], runs[-1]
        grown_mb = last["submit_file"]["peak_rss_mb"] - first["submit_file"]["peak_rss_mb"]
        results[backend] = {
            "runs": runs,
            "peak_rss_kb_per_order": round(grown_mb * 1024 / (last["orders"] - first["orders"]), 2)
            if last["orders"] > first["orders"]
            else None,
        }
    report({"benchmark": "batch_memory", "help": help_run, "results": results})


if __name__ == "__main__":
    main()
