"""`order list --json` and `exec list --json` on books of growing size: time and peak memory of
the real command, in its own process.

    python -m benchmarks.listing [sqlite|postgresql] [--orders N,N,...]

Per backend and per size (default 20,000 and 100,000 orders): a book of that many paper market
orders, which fill (as many executions), submitted by `order submit --file` in one process;
then `tieout order list --json`, `tieout order list` (text) and `tieout exec list --json`, each
in a process of its own with stdout to /dev/null: wall seconds and the process's peak RSS
(VmHWM), next to `tieout --help` (start-up and imports alone). The listings are written as they
are read, a batch of rows at a time (order_book.order_listing, executions.execution_listing),
so their memory should not grow with the book: the JSON gives the ratio of the largest size's
peak to the smallest's. On SQLite the page cache (up to 128 MiB, store.py) fills as the table
is read, whatever its size beyond that.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import backends, fresh_store, report
from benchmarks.order_submit import load_average, setup_book, write_batch
from oms import order_book
from oms.book import Ctx
from oms.store import Store

COMMANDS = {
    "help": ["--help"],
    "order_list_json": ["order", "list", "--json"],
    "order_list_text": ["order", "list"],
    "exec_list_json": ["exec", "list", "--json"],
}


def sizes() -> list[int]:
    if "--orders" in sys.argv:
        return [int(x) for x in sys.argv[sys.argv.index("--orders") + 1].split(",")]
    return [20_000, 100_000]


# the command in a process of its own, reporting its peak RSS as it exits: VmHWM belongs to the
# process's own memory since its exec (wait4's ru_maxrss would count the benchmark's memory
# the child was forked with)
_CHILD = """
import atexit, sys

def _peak():
    with open("/proc/self/status") as f:
        sys.stderr.write(next(line for line in f if line.startswith("VmHWM")))

atexit.register(_peak)
from cli.main import run
run()
"""


def measure(args: list[str], url: str) -> dict[str, Any]:
    """One run of the real command in its own process: wall seconds and peak RSS."""
    cmd = [sys.executable, "-c", _CHILD, *args]
    if args != ["--help"]:
        cmd += ["--db", url]
    t0 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        done = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    peak_kb = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0])
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak_kb / 1024)}


@contextmanager
def book_and_file(backend: str, n: int) -> Iterator[tuple[Store, Path]]:
    """A fresh benchmark book (order_submit.setup_book: 20 accounts) and a file of n paper
    market orders for it."""
    with fresh_store(backend) as store, tempfile.TemporaryDirectory() as d:
        setup_book(store, 20)
        path = Path(d) / "orders.csv"
        write_batch(path, n, 20)
        yield store, path


def run(backend: str, n: int) -> dict[str, Any]:
    with book_and_file(backend, n) as (store, path):
        print(f"[listing] {backend}: submitting {n} orders", file=sys.stderr)
        order_book.submit_file(store, Ctx("bench", datetime.now(UTC)), str(path))
        out: dict[str, Any] = {"orders": n, "load_average_start": load_average()}
        for name, args in COMMANDS.items():
            out[name] = measure(args, store.url)
        return out


def main() -> None:
    results: dict[str, Any] = {}
    for backend in backends():
        runs = [run(backend, n) for n in sizes()]
        first, last = runs[0], runs[-1]
        results[backend] = {
            "runs": runs,
            "peak_rss_ratio_largest_to_smallest": {
                name: round(last[name]["peak_rss_mb"] / first[name]["peak_rss_mb"], 2)
                for name in COMMANDS
            },
        }
    report({"benchmark": "listing", "results": results})


if __name__ == "__main__":
    main()
