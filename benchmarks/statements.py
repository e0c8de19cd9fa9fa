"""Account statements for every account at once (`tieout report statement --all`), as HTML and
as PDF, on every core (default 1,000 accounts).

    python -m benchmarks.statements [sqlite|postgresql] [--accounts N] [--pdf-accounts M]
                                    [--workers W]

The book: N accounts, each with a deposit and about 20 fills in 12 of 50 symbols over November
2026, and daily bars of every symbol. Prints JSON: seconds for the N HTML statements
(statements per second) and for the PDF statements of the first M accounts (pages per
second), with the pages of a statement, and the CPU time they took: on a machine shared with
other work the wall clock says more about the neighbours than about tieout, so the JSON also
gives the time on idle cores (CPU time / workers). The targets: 1,000 HTML statements in 20 s
or less, and 5 PDF pages per second or more, on 2 cores."""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchmarks.common import backends, fresh_store, peak_rss_mb, reference_data, report
from oms import audit, book, executions, ledger, md_book
from oms.book import Ctx
from oms.calendars import is_session
from oms.store import Store
from reports import batch

START, END = date(2026, 11, 1), date(2026, 11, 30)
SYMBOLS = 50
FILLS_PER_ACCOUNT = 20


def arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def sessions() -> list[date]:
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    return [d for d in days if is_session("XNYS", d)]


def write_files(folder: Path, accounts: int) -> tuple[Path, Path]:
    rng = random.Random(11)
    days = sessions()
    base = {f"S{i}": Decimal(rng.randrange(2_000, 50_000)) / 100 for i in range(SYMBOLS)}
    closes: dict[tuple[str, date], Decimal] = {}
    bars = ["time,symbol,open,high,low,close,volume"]
    for sym, first in base.items():
        price = first
        for d in days:
            close = (price * (1 + Decimal(rng.randint(-200, 200)) / 10_000)).quantize(
                Decimal("0.01")
            )
            hi, lo = max(price, close) + Decimal("0.05"), min(price, close) - Decimal("0.05")
            bars.append(f"{d}T20:00:00Z,{sym},{price},{hi},{lo},{close},100000")
            closes[(sym, d)] = close
            price = close
    execs = [
        "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees,exec_time"
    ]
    n = 0
    for a in range(accounts):
        held: dict[str, int] = {}
        mine = rng.sample(sorted(base), 12)
        for _ in range(FILLS_PER_ACCOUNT):
            sym, d = rng.choice(mine), rng.choice(days)
            side = "sell" if held.get(sym, 0) > 0 and rng.random() < 0.4 else "buy"
            qty = rng.randint(1, 10) * 10
            if side == "sell":
                qty = min(qty, held[sym])
            held[sym] = held.get(sym, 0) + (qty if side == "buy" else -qty)
            n += 1
            px = closes[(sym, d)]
            execs.append(
                f"X{n},A{a},{sym},{side},{qty},{px},{d},BENCH,1.00,0.02,"
                f"{d}T{15 + n % 5:02d}:{n % 60:02d}:00Z"
            )
    bars_path, execs_path = folder / "bars.csv", folder / "execs.csv"
    bars_path.write_text("\n".join(bars) + "\n")
    execs_path.write_text("\n".join(execs) + "\n")
    return bars_path, execs_path


def build_book(store: Store, ctx: Ctx, accounts: int, folder: Path) -> None:
    reference_data(store, ctx, accounts=accounts, symbols=SYMBOLS)
    with store.write() as conn:  # every account's opening deposit in one business event
        entries = [
            ledger.deposit(f"A{a}", "USD", Decimal(1_000_000), date(2026, 10, 30), "bench")
            for a in range(accounts)
        ]
        book.post_entries(conn, ctx, entries)
        audit.append(conn, at=ctx.now, actor=ctx.actor, action="cash.deposit",
                     entity_type="account", entity_id=f"{accounts} accounts",
                     payload={"accounts": accounts})  # fmt: skip
    bars, execs = write_files(folder, accounts)
    # the month's bars and trades, imported once they have happened (md import keeps a bar from
    # the future aside, exec import refuses a trade dated after today)
    done = Ctx(ctx.actor, datetime(END.year, END.month, END.day, 23, tzinfo=UTC))
    md_book.import_bars(store, done, str(bars))
    executions.import_file(store, done, str(execs))


def run(store: Store, accounts: list[str], fmt: str, out: Path, workers: int) -> dict[str, object]:
    url = store.engine.url.render_as_string(hide_password=False)
    now = datetime(2026, 12, 1, 6, tzinfo=UTC)
    tasks = [
        (url, part, START, END, fmt, str(out), now, "fifo")
        for part in batch.chunks(accounts, workers)
    ]
    warm = batch.warm_pdf if fmt == "pdf" else batch.warm_html
    warm()  # imports and templates, as the command does before it forks its workers
    cpu0 = _cpu()
    t0 = time.perf_counter()
    with batch.Pool(batch.statements_chunk, tasks, workers) as pool:
        outcomes = list(pool)
    seconds = time.perf_counter() - t0
    cpu = _cpu() - cpu0  # this process and its (reaped) workers
    failed = [o for o in outcomes if o.written is None]
    assert not failed, failed[:3]
    pages = sum((o.written.pages or 0) for o in outcomes if o.written is not None)
    # On a shared machine the wall clock depends on the neighbours; the CPU time does not. With
    # `workers` idle cores the batch takes about cpu / workers seconds.
    idle = cpu / workers
    result: dict[str, object] = {
        "statements": len(outcomes),
        "seconds": round(seconds, 2),
        "statements_per_s": round(len(outcomes) / seconds, 1),
        "cpu_s": round(cpu, 2),
        "seconds_on_idle_cores": round(idle, 2),
        "statements_per_s_on_idle_cores": round(len(outcomes) / idle, 1),
    }
    if fmt == "pdf":
        result |= {
            "pages": pages,
            "pages_per_statement": round(pages / len(outcomes), 2),
            "pages_per_s": round(pages / seconds, 2),
            "pages_per_s_on_idle_cores": round(pages / idle, 2),
        }
    return result


def _cpu() -> float:  # float ok: a duration
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    n = arg("--accounts", 1000)
    n_pdf = min(n, arg("--pdf-accounts", 100))
    workers = arg("--workers", batch.default_workers())
    ctx = Ctx("bench", datetime(2026, 10, 30, 12, tzinfo=UTC))
    results = {}
    for backend in backends():
        with fresh_store(backend) as store, tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            build_book(store, ctx, n, Path(d))
            setup = time.perf_counter() - t0
            store.dispose()
            accounts = [f"A{a}" for a in range(n)]
            results[backend] = {
                "setup_s": round(setup, 1),
                "html": run(store, accounts, "html", Path(d) / "html", workers),
                "pdf": run(store, accounts[:n_pdf], "pdf", Path(d) / "pdf", workers),
            }
    report(
        {
            "benchmark": "statements",
            "accounts": n,
            "fills_per_account": FILLS_PER_ACCOUNT,
            "period": [START.isoformat(), END.isoformat()],
            "workers": workers,
            "results": results,
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


if __name__ == "__main__":
    main()
