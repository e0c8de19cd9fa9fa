"""`tieout demo`: a simulated trading day on a fresh embedded database, end to end through the
same functions the commands use. The generated files are written to the demo folder so that a
reader can open them; the same seed gives the same files and the same figures.

The data generation is pure (seeded, no clock); `run_demo` is the edge that writes files and
books them. Later stages (orders, reconciliation, documents) extend it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from oms import audit, book, executions, md_book, positions
from oms.book import Ctx
from oms.refdata import make_account, read_instruments
from oms.store import Store
from oms.values import dec_str

DEMO_DATE = date(2026, 11, 24)  # a Tuesday session of XNYS
OPEN_UTC = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
BAR_MINUTES = 30
BARS = 13  # 09:30 to 16:00 New York
SYMBOLS = {"AAPL": "190.00", "MSFT": "415.00", "NVDA": "142.00", "SPY": "590.00", "TLT": "88.50"}
ACCOUNTS = (
    ("FUND-A", "Alpha Fund", "margin", "250000"),
    ("CLIENT-B", "Beta Family Office", "cash", "100000"),
    ("CLIENT-C", "Gamma Trading LLC", "margin", "150000"),
)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class DemoFiles:
    instruments: str
    bars: str
    executions: str


def _tick(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def generate(seed: int) -> DemoFiles:
    """The day's instrument, bar and execution files as CSV text (pure, seeded)."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
    inst = ["symbol,exchange,currency,tick_size,lot_size,restricted"]
    inst += [f"{s},XNYS,USD,0.01,1,false" for s in SYMBOLS]
    bars = ["time,symbol,open,high,low,close,volume"]
    closes: dict[str, list[tuple[datetime, Decimal]]] = {}
    for sym, start in SYMBOLS.items():
        price = Decimal(start)
        closes[sym] = []
        for i in range(BARS):
            t = OPEN_UTC + timedelta(minutes=BAR_MINUTES * i)
            o = price
            c = _tick(o * (1 + Decimal(rng.randint(-80, 80)) / 10000))
            hi = max(o, c) + Decimal(rng.randint(0, 40)) * CENT
            lo = min(o, c) - Decimal(rng.randint(0, 40)) * CENT
            vol = rng.randint(50_000, 400_000)
            bars.append(f"{t:%Y-%m-%dT%H:%M:%SZ},{sym},{o},{hi},{lo},{c},{vol}")
            closes[sym].append((t, c))
            price = c
    # what a vendor feed really sends now and then: a fat-fingered print and a broken row
    t = OPEN_UTC + timedelta(minutes=BAR_MINUTES * BARS)
    bars.append(f"{t:%Y-%m-%dT%H:%M:%SZ},NVDA,14.20,14.30,14.10,14.25,1000")
    bars.append(f"{t:%Y-%m-%dT%H:%M:%SZ},SPY,591.00,589.00,590.50,590.00,1200")
    execs = [
        "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees,"
        "exec_time,client_order_id"
    ]
    n = 0
    for account, _, kind, deposit in ACCOUNTS:
        held: dict[str, int] = {}
        cash = Decimal(deposit)
        for _ in range(rng.randint(8, 12)):
            sym = rng.choice(list(SYMBOLS))
            when, px = rng.choice(closes[sym][:-1])
            can_sell = held.get(sym, 0) > 0 or kind == "margin"
            side = "sell" if can_sell and rng.random() < 0.4 else "buy"
            qty = rng.randint(1, 20) * 10
            fill = _tick(px + Decimal(rng.randint(-5, 5)) * CENT)
            if kind == "cash":  # a cash account sells what it holds and buys what it can pay
                qty = (
                    min(qty, held[sym])
                    if side == "sell"
                    else min(qty, int(cash * Decimal("0.9") / fill) // 10 * 10)
                )
                if qty <= 0:
                    continue
                cash += qty * fill if side == "sell" else -qty * fill
            held[sym] = held.get(sym, 0) + (qty if side == "buy" else -qty)
            n += 1
            comm = _tick(Decimal(qty) * Decimal("0.005")).max(Decimal("1.00"))
            fees = _tick(Decimal(qty) * fill * Decimal("0.0000278")) if side == "sell" else 0
            at = when + timedelta(seconds=rng.randint(1, BAR_MINUTES * 60 - 1))
            execs.append(
                f"D{n:05d},{account},{sym},{side},{qty},{fill},{DEMO_DATE},PAPER,"
                f"{comm},{fees},{at:%Y-%m-%dT%H:%M:%S}Z,C{n:05d}"
            )
    return DemoFiles("\n".join(inst) + "\n", "\n".join(bars) + "\n", "\n".join(execs) + "\n")


def run_demo(
    out: Path, seed: int, actor: str, clock: Callable[[], datetime], say: Callable[[str], None]
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    db = out / "tieout.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    files = generate(seed)
    paths = {}
    for name, text in (
        ("instruments.csv", files.instruments),
        ("bars.csv", files.bars),
        ("executions.csv", files.executions),
    ):
        paths[name] = out / name
        paths[name].write_text(text, encoding="utf-8")

    def ctx() -> Ctx:
        return Ctx(actor, clock())

    store = Store.open(f"sqlite:///{db}", check_schema=False)
    store.init(actor, clock())
    say(f"tieout demo (seed {seed}): a trading day of {DEMO_DATE} in {out}/")
    added, _ = book.add_instruments(store, ctx(), read_instruments(str(paths["instruments.csv"])))
    say(f"  reference data: {added} instruments (XNYS), {len(ACCOUNTS)} accounts")
    for account, name, kind, cash in ACCOUNTS:
        book.open_account(store, ctx(), make_account(account, "USD", name, kind, None))
        book.deposit(store, ctx(), account, Decimal(cash), f"opening-{account}")
    md = md_book.import_bars(store, ctx(), str(paths["bars.csv"]))
    say(
        f"  market data: {md.accepted} bars accepted, {md.rejected} rejected and kept for "
        "review (`tieout md rejects`)"
    )
    ex = executions.import_file(store, ctx(), str(paths["executions.csv"]))
    say(f"  executions: {ex.booked} booked with their cash settlement entries")
    with store.read() as conn:
        for account, _, _, _ in ACCOUNTS:
            bal = book.cash_balance(conn, account)
            lines = positions.positions(conn, account)
            realized = sum((p.position.realized_pnl for p in lines), Decimal(0))
            unrealized = sum((p.valuation.unrealized_pnl or Decimal(0) for p in lines), Decimal(0))
            held = ", ".join(
                f"{dec_str(p.position.quantity)} {p.position.symbol}"
                for p in lines
                if p.position.quantity
            )
            say(
                f"  {account:<9} cash {dec_str(_tick(bal.balance)):>11}  realized "
                f"{dec_str(_tick(realized)):>9}  unrealized {dec_str(_tick(unrealized)):>9}"
                f"  [{held}]"
            )
        check = audit.verify_store(conn)
    say(
        f"  audit trail: {check.events} events, chain {'intact' if check.ok else 'BROKEN'}, "
        f"head {check.head}"
    )
    store.dispose()
    say(f"files: {', '.join(str(p) for p in paths.values())}")
    say(f"database: sqlite:///{db}  (try: tieout positions --db sqlite:///{db} --account FUND-A)")
    return db


__all__ = ["generate", "run_demo"]
