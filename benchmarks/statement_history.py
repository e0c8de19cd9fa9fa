"""One account's statement over a long history: the pure statement builder
(`reports.statement.build_statement`) for one account with many fills over a year.

    python -m benchmarks.statement_history [--fills N] [--days D] [--symbols S]

The account: N fills (default 20,000) spread evenly over D days (360) in S symbols (20), with
a mark of every symbol every day. Prints JSON: the seconds for the first month, the last month,
the first quarter and the whole year (the best of three runs each), and the ratios that show
how the cost grows: a statement's cost should follow its own period's days and fills, not the
whole history before it (the builder rebuilt every position from every fill since the account
opened on each traded day: the last month cost 2.7 times the first, the year 10 times the
quarter, measured 2026-11-29)."""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from benchmarks.common import report
from oms.lots import ExecRecord
from oms.values import CostMethod, Side
from reports.firm import firm_from_settings
from reports.statement import AccountInfo, CashEntry, Mark, StatementInput, build_statement

DAY0 = date(2026, 1, 1)


def arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def history(fills: int, days: int, symbols: int) -> tuple[list[ExecRecord], list[Mark]]:
    rng = random.Random(7)
    held = [0] * symbols
    out = []
    for seq in range(fills):
        on = DAY0 + timedelta(days=seq * days // fills)
        s = rng.randrange(symbols)
        sell = held[s] > 0 and rng.random() < 0.5
        qty = rng.randint(1, held[s]) if sell else rng.randint(1, 100)
        held[s] += -qty if sell else qty
        out.append(
            ExecRecord(
                seq=seq + 1, venue="V", exec_id=f"E{seq}", account="A1", symbol=f"S{s}",
                side=Side.SELL if sell else Side.BUY, quantity=Decimal(qty),
                price=Decimal(rng.randint(5_000, 15_000)).scaleb(-2),
                commission=Decimal("1.00"), fees=Decimal("0.10"), trade_date=on,
                exec_time=datetime.combine(on, datetime.min.time(), UTC) + timedelta(seconds=seq),
                currency="USD", settle_date=on + timedelta(days=1),
            )
        )  # fmt: skip
    marks = [
        Mark(f"S{s}", DAY0 + timedelta(days=d), Decimal(100 + (d + s) % 7))
        for d in range(days + 1)
        for s in range(symbols)
    ]
    return out, marks


def statement_input(
    fills: list[ExecRecord], marks: list[Mark], first: date, last: date
) -> StatementInput:
    """The statement of account A1 (margin, USD, FIFO) over [first, last]: its fills, its
    marks and one deposit of 10,000,000 on DAY0."""
    return StatementInput(
        account=AccountInfo("A1", "Bench", "USD", "margin"),
        period_from=first,
        period_to=last,
        fills=tuple(fills),
        cash_entries=(CashEntry(1, "deposit", DAY0, Decimal("10000000"), "w"),),
        marks=tuple(marks),
        settled_cash=Decimal(0),
        firm=firm_from_settings({}),
        generated_at=datetime(2027, 1, 2, tzinfo=UTC),
        audit_head="ab" * 32,
        method=CostMethod.FIFO,
    )


def timed(fills: list[ExecRecord], marks: list[Mark], first: date, last: date) -> float:
    inp = statement_input(fills, marks, first, last)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        build_statement(inp)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    n, days, symbols = arg("--fills", 20_000), arg("--days", 360), arg("--symbols", 20)
    fills, marks = history(n, days, symbols)
    end = DAY0 + timedelta(days=days - 1)
    periods = {
        "first_month": (DAY0, DAY0 + timedelta(days=29)),
        "last_month": (end - timedelta(days=29), end),
        "first_quarter": (DAY0, DAY0 + timedelta(days=89)),
        "year": (DAY0, end),
    }
    seconds = {name: round(timed(fills, marks, *span), 3) for name, span in periods.items()}
    report(
        {
            "benchmark": "statement_history",
            "fills": n,
            "days": days,
            "symbols": symbols,
            "seconds": seconds,
            "last_month_over_first_month": round(seconds["last_month"] / seconds["first_month"], 2),
            "year_over_quarter": round(seconds["year"] / seconds["first_quarter"], 2),
        }
    )


if __name__ == "__main__":
    main()
