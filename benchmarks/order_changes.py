"""What happens to orders after they are placed, at volume: a venue's drop copy, the day's
expiry, and bars filling resting orders.

    python -m benchmarks.order_changes [sqlite|postgresql] [--orders N]

Per backend, each in a fresh book with a 24/7 instrument and 20 margin accounts (and one cash
account for the bars), N orders (default 2,000):
- `tieout exec apply` (the real command, in its own process) of a drop copy with an
  acknowledgement and a full fill for each of N external limit orders: 2N messages, each its
  own transaction; seconds, and ms per message with and without the process's start-up
  (`tieout --help` timed in the same run).
- `tieout exec apply` of N fills to one external order (an algorithm's day) in 4 drop copies
  applied one after the other: seconds per file, ms per message, and the last file's over the
  first's (a report's cost should not grow with the fills before it).
- `order_book.expire_due` (what `tieout order expire-due` runs) over N resting paper day
  orders, a day later: ms per expired order, each its own transaction.
- a bar crossing N resting paper buy limits of one margin account, then of one cash account
  (`order_book.fill_pending`, what `tieout md import` runs after the import): ms per fill;
  a cash account's fill also reads its cash (book.cash_total: the running sum kept up to a
  posting plus the postings after it) and what its older live orders hold.
Prints one JSON document; progress on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.common import backends, fresh_store, report
from benchmarks.order_submit import LIMITS, SYMBOL, load_average, setup_book
from oms import book, md_book, order_book, risk_limits
from oms.book import Ctx
from oms.refdata import make_account, make_instrument

FMT = "%Y-%m-%dT%H:%M:%SZ"


def log(msg: str) -> None:
    print(f"[order_changes {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fix_line(*fields: tuple[int, str]) -> str:
    """A FIX 4.4 message, `|` separated, with its BodyLength and CheckSum."""
    body = "".join(f"{t}={v}\x01" for t, v in fields)
    head = f"8=FIX.4.4\x019={len(body.encode())}\x01"
    total = sum((head + body).encode()) % 256
    return (head + body + f"10={total:03d}\x01").replace("\x01", "|")


def cli(args: list[str], url: str | None) -> float:
    cmd = [sys.executable, "-c", "from cli.main import run; run()", *args]
    if url is not None:
        cmd += ["--db", url]
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "TIEOUT_ACTOR": "b"}
    )
    if done.returncode not in (0,):
        raise SystemExit(f"tieout {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return time.perf_counter() - t0


def orders_file(path: Path, rows: list[str]) -> str:
    path.write_text(
        "account,symbol,side,qty,type,limit,tif,venue,client_order_id\n" + "\n".join(rows) + "\n"
    )
    return str(path)


def drop_copy(backend: str, n: int, d: Path) -> dict[str, Any]:
    with fresh_store(backend) as store:
        setup_book(store, 20)
        rows = [f"B{i % 20},{SYMBOL},buy,{i + 1},limit,99,gtc,ACME,X{i}" for i in range(n)]
        order_book.submit_file(store, Ctx("b", datetime.now(UTC)), orders_file(d / "x.csv", rows))
        lines = [fix_line((35, "8"), (11, f"X{i}"), (17, f"A{i}"), (150, "0")) for i in range(n)]
        lines += [
            fix_line(
                (35, "8"), (11, f"X{i}"), (17, f"F{i}"), (150, "F"), (32, str(i + 1)), (31, "98.5")
            )
            for i in range(n)
        ]
        path = d / "drop.fix"
        path.write_text("\n".join(lines) + "\n")
        start_up = cli(["--help"], None)
        log(f"{backend}: exec apply of {2 * n} messages")
        wall = cli(["exec", "apply", str(path)], store.url)
        return {
            "messages": 2 * n,
            "seconds": round(wall, 2),
            "ms_per_message": round(wall / (2 * n) * 1e3, 3),
            "start_up_s": round(start_up, 2),
            "ms_per_message_after_start_up": round((wall - start_up) / (2 * n) * 1e3, 3),
        }


def one_order_fills(backend: str, n: int, d: Path, files: int = 4) -> dict[str, Any]:
    """N fills of 1 to one external order (an algorithm's day), in `files` drop copies applied
    one after the other: seconds per file, and the last file's ms per message over the
    first's (1 when a report's cost does not grow with the fills before it)."""
    with fresh_store(backend) as store:
        setup_book(store, 20)
        rows = [f"B0,{SYMBOL},buy,{n},limit,101,gtc,ACME,BIG"]
        order_book.submit_file(store, Ctx("b", datetime.now(UTC)), orders_file(d / "big.csv", rows))
        per = n // files
        start_up = cli(["--help"], None)
        seconds = []
        for k in range(files):
            lines = [fix_line((35, "8"), (11, "BIG"), (17, "ACK"), (150, "0"))] if k == 0 else []
            lines += [
                fix_line((35, "8"), (11, "BIG"), (17, f"F{i}"), (150, "F"), (32, "1"), (31, "100"))
                for i in range(k * per, (k + 1) * per)
            ]
            path = d / f"big{k}.fix"
            path.write_text("\n".join(lines) + "\n")
            log(f"{backend}: exec apply of fills {k * per + 1}-{(k + 1) * per} to one order")
            seconds.append(cli(["exec", "apply", str(path)], store.url))
        per_message = [(s - start_up) / per * 1e3 for s in seconds]
        return {
            "fills": per * files,
            "files": files,
            "seconds_per_file": [round(s, 2) for s in seconds],
            "ms_per_message_after_start_up": [round(m, 3) for m in per_message],
            "last_over_first": round(per_message[-1] / per_message[0], 2),
            "start_up_s": round(start_up, 2),
        }


def expiry(backend: str, n: int, d: Path) -> dict[str, Any]:
    with fresh_store(backend) as store:
        setup_book(store, 20)
        rows = []
        for i in range(n):  # buys at 95 and sales at 105: they rest
            side, limit = ("buy", 95) if i % 2 else ("sell", 105)
            rows.append(f"B{i % 20},{SYMBOL},{side},{i + 1},limit,{limit},day,paper,D{i}")
        order_book.submit_file(store, Ctx("b", datetime.now(UTC)), orders_file(d / "d.csv", rows))
        later = datetime.now(UTC) + timedelta(days=1, hours=1)
        log(f"{backend}: expire-due of {n} day orders")
        t0 = time.perf_counter()
        done = order_book.expire_due(store, Ctx("b", later))
        wall = time.perf_counter() - t0
        return {
            "expired": len(done),
            "seconds": round(wall, 2),
            "ms_per_order": round(wall / max(len(done), 1) * 1e3, 3),
        }


def bar_fills(backend: str, n: int, d: Path, kind: str) -> dict[str, Any]:
    with fresh_store(backend) as store:
        now = datetime.now(UTC)
        ctx = Ctx("b", now - timedelta(minutes=6))
        book.add_instruments(store, ctx, [make_instrument(SYMBOL, "24/7", "USD")])
        book.open_account(store, ctx, make_account("C0", "USD", None, kind, None))
        book.deposit(store, ctx, "C0", Decimal(10) ** 12, None)
        for name, value in LIMITS.items():
            risk_limits.set_limit(store, ctx, name, value)

        def bar(name: str, at: datetime, low: int) -> None:
            path = d / f"{name}.csv"
            path.write_text(
                "time,symbol,open,high,low,close,volume\n"
                f"{at.strftime(FMT)},{SYMBOL},100,100,{low},{low},{10**12}\n"
            )
            md_book.import_bars(store, Ctx("b", at + timedelta(seconds=1)), str(path))

        bar("b0", now - timedelta(minutes=5), 100)  # the last price the orders are checked at
        rows = [f"C0,{SYMBOL},buy,{i + 1},limit,95,gtc,paper,L{i}" for i in range(n)]
        path = orders_file(d / "l.csv", rows)
        order_book.submit_file(store, Ctx("b", now - timedelta(minutes=3)), path)
        bar("b1", now - timedelta(minutes=1), 94)  # crosses every order
        log(f"{backend}: a bar filling {n} resting buys of a {kind} account")
        t0 = time.perf_counter()
        filled = order_book.fill_pending(store, Ctx("b", now))
        wall = time.perf_counter() - t0
        count = sum(1 for o in filled if o.status.value == "filled")
        per = round(wall / max(count, 1) * 1e3, 3)
        return {"filled": count, "seconds": round(wall, 2), "ms_per_fill": per}


def main() -> None:
    n = int(sys.argv[sys.argv.index("--orders") + 1]) if "--orders" in sys.argv else 2_000
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for backend in backends():
            results[backend] = {
                "load_average_start": load_average(),
                "drop_copy": drop_copy(backend, n, d),
                "one_order_fills": one_order_fills(backend, n, d),
                "expire_due": expiry(backend, n, d),
                "bar_fills_margin": bar_fills(backend, n, d, "margin"),
                "bar_fills_cash": bar_fills(backend, n, d, "cash"),
            }
    report({"benchmark": "order_changes", "orders": n, "results": results})


if __name__ == "__main__":
    main()
