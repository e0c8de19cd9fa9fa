"""`tieout demo`: a simulated trading day on a fresh embedded database, end to end through the
same functions the commands use, on the simulated day's own clock (so the same seed gives the
same files, figures and breaks, whenever it runs).

The day: reference data and deposits; market data bar by bar; orders through the OMS and the
paper venue as the bars come in (market and limit orders, some refused by pre-trade risk, some
canceled, resting limits filled by later bars, slippage and commission from the paper terms);
then the venue's trade, position and cash files with realistic discrepancies (a missing fill, a
price off by a tick, a fee difference, a late booking, a duplicate, a bad row), trade, position
and cash reconciliation, the late booking arriving and a second trade run closing its break.

The data generation is pure (seeded); `run_demo` is the edge that writes files and books them.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from oms import audit, book, executions, md_book, order_book, positions
from oms.book import Ctx
from oms.errors import BadInput, Refused
from oms.order_book import OrderRequest
from oms.refdata import make_account, read_instruments
from oms.store import Store
from oms.values import OrdType, Side, TimeInForce, dec_str, normalize, printable
from recon import runs

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
VENUE = "paper"
PAPER_TERMS = (
    ("slippage-bps", "2"),
    ("commission-per-unit", "0.005"),
    ("commission-min", "1"),
    ("commission-max-pct", "1"),
)

TRADE_PROFILE = """\
name = "paper-trades"
venue = "paper"
kind = "trades"
format = "csv"
description = "The paper venue's end-of-day trade file"
[csv]
delimiter = ";"
[columns]
exec_id = "TradeRef"
account = "Account"
symbol = "Ticker"
side = "BS"
quantity = "Qty"
price = "Price"
trade_date = "TradeDate"
settle_date = "SettleDate"
commission = "Commission"
[values.side]
B = "buy"
S = "sell"
[parse]
trade_date = "%d/%m/%Y"
settle_date = "%d/%m/%Y"
thousands_separator = ","
[tolerance]
price = "0.001"
commission = "0.01"
"""
POSITION_PROFILE = """\
name = "custodian-positions"
venue = "paper"
kind = "positions"
format = "csv"
basis = "trade"
[tolerance]
price = "0.05"
"""
CASH_PROFILE = """\
name = "bank-cash"
venue = "paper"
kind = "cash"
format = "csv"
[tolerance]
amount = "0.01"
"""


def _tick(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


# ---- the pure part: the day's data --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An order the demo's traders send `minutes` after bar `bar` opens."""

    bar: int
    minutes: int
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    type: OrdType = OrdType.MARKET
    limit: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    cancel_after_bar: int | None = None  # canceled at this bar if still live


@dataclass(frozen=True, slots=True)
class DemoDay:
    instruments: str
    bars: tuple[str, ...]  # one CSV per bar time, all symbols
    orders: tuple[PlannedOrder, ...]
    closes: dict[str, list[Decimal]] = field(hash=False)


def generate(seed: int) -> DemoDay:
    """The day's instruments, bars and planned orders (pure, seeded)."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
    inst = ["symbol,exchange,currency,tick_size,lot_size,restricted"]
    inst += [f"{s},XNYS,USD,0.01,1,false" for s in SYMBOLS]
    header = "time,symbol,open,high,low,close,volume"
    per_bar: list[list[str]] = [[header] for _ in range(BARS)]
    closes: dict[str, list[Decimal]] = {}
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
            per_bar[i].append(f"{t:%Y-%m-%dT%H:%M:%SZ},{sym},{o},{hi},{lo},{c},{vol}")
            closes[sym].append(c)
            price = c
    # what a vendor feed really sends now and then: a fat-fingered print and a broken row
    t = OPEN_UTC + timedelta(minutes=BAR_MINUTES * (BARS - 1), seconds=1)
    per_bar[-1].append(f"{t:%Y-%m-%dT%H:%M:%SZ},NVDA,14.20,14.30,14.10,14.25,1000")
    per_bar[-1].append(f"{t:%Y-%m-%dT%H:%M:%SZ},SPY,591.00,589.00,590.50,590.00,1200")

    planned: list[PlannedOrder] = []
    for account, _, kind, _ in ACCOUNTS:
        held: dict[str, int] = {}
        for _ in range(rng.randint(9, 13)):
            bar = rng.randint(0, BARS - 3)
            sym = rng.choice(list(SYMBOLS))
            can_sell = held.get(sym, 0) > 0 or kind == "margin"
            side = Side.SELL if can_sell and rng.random() < 0.4 else Side.BUY
            qty = rng.randint(1, 20) * 10
            if kind == "cash" and side is Side.SELL:
                qty = min(qty, held[sym])
            held[sym] = held.get(sym, 0) + (qty if side is Side.BUY else -qty)
            ref = closes[sym][bar - 1] if bar else Decimal(SYMBOLS[sym])
            if rng.random() < 0.3:  # a limit away from the market: it rests
                cancel = bar + 2 if rng.random() < 0.4 else None  # the trader gives up on it
                away = Decimal(rng.randint(60, 90) if cancel else rng.randint(5, 30)) / 10000
                limit = _tick(ref * (1 - away) if side is Side.BUY else ref * (1 + away))
                planned.append(
                    PlannedOrder(
                        bar,
                        rng.randint(1, 14),
                        account,
                        sym,
                        side,
                        Decimal(qty),
                        OrdType.LIMIT,
                        limit,
                        TimeInForce.DAY,
                        cancel,
                    )
                )
            else:
                planned.append(
                    PlannedOrder(bar, rng.randint(1, 14), account, sym, side, Decimal(qty))
                )
    # what pre-trade risk is there for: a fat finger, a short sale on a cash account, and a
    # limit typed with the decimal point in the wrong place
    planned.append(PlannedOrder(3, 7, "FUND-A", "AAPL", Side.BUY, Decimal(60_000)))
    planned.append(PlannedOrder(5, 9, "CLIENT-B", "TLT", Side.SELL, Decimal(5_000)))
    planned.append(
        PlannedOrder(
            6,
            3,
            "CLIENT-C",
            "MSFT",
            Side.BUY,
            Decimal(10),
            OrdType.LIMIT,
            _tick(closes["MSFT"][5] * 10),
        )
    )
    planned.sort(key=lambda o: (o.bar, o.minutes, o.account, o.symbol))
    return DemoDay(
        "\n".join(inst) + "\n",
        tuple("\n".join(b) + "\n" for b in per_bar),
        tuple(planned),
        closes,
    )


def _ddmmyyyy(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{d}/{m}/{y}"


def venue_trade_file(execs: list[dict[str, Any]], seed: int) -> tuple[str, dict[str, str], str]:
    """The venue's trade file for the day, from the book's executions, with the day's
    discrepancies; also the injected faults by exec id, and the late booking (a trade the
    venue has that the book will only get later) as a canonical execution CSV."""
    rng = random.Random(seed * 7919)  # noqa: S311
    rows = sorted(execs, key=lambda e: e["exec_id"])
    picks = rng.sample(range(len(rows)), 4)
    missing, tick, fee, dup = (rows[i]["exec_id"] for i in picks)
    faults = {
        missing: "missing_at_venue",
        tick: "price_mismatch",
        fee: "fee_mismatch",
        dup: "duplicate_venue",
    }
    lines = ["TradeRef;Account;Ticker;BS;Qty;Price;TradeDate;SettleDate;Commission"]
    for e in rows:
        if e["exec_id"] == missing:
            continue
        price = Decimal(e["price"]) + (CENT if e["exec_id"] == tick else 0)
        comm = Decimal(e["commission"]) + (Decimal("0.50") if e["exec_id"] == fee else 0)
        qty = f"{int(Decimal(e['quantity'])):,}"
        line = (
            f"{e['exec_id']};{e['account']};{e['symbol']};{'B' if e['side'] == 'buy' else 'S'};"
            f"{qty};{normalize(price)};{_ddmmyyyy(e['trade_date'])};"
            f"{_ddmmyyyy(e['settle_date'])};{normalize(comm)}"
        )
        lines.append(line)
        if e["exec_id"] == dup:
            lines.append(line)
    late = rows[rng.randrange(len(rows))]
    late_id = "GIVEUP-0001"
    faults[late_id] = "missing_internal"
    late_line = (
        f"{late_id};{late['account']};{late['symbol']};B;25;{late['price']};"
        f"{_ddmmyyyy(late['trade_date'])};{_ddmmyyyy(late['settle_date'])};1"
    )
    lines.insert(1 + rng.randrange(len(lines) - 1), late_line)
    lines.insert(1 + rng.randrange(len(lines) - 1), "BAD-1;FUND-A;AAPL;B;1O0;190.1;24/11/2026;;1")
    booking = (
        "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission\n"
        f"{late_id},{late['account']},{late['symbol']},buy,25,{late['price']},"
        f"{late['trade_date']},{VENUE},1\n"
    )
    return "\n".join(lines) + "\n", faults, booking


def venue_position_file(held: list[tuple[str, str, Decimal, Decimal | None]]) -> str:
    """The custodian's positions: the book's, except one quantity the custodian has wrong."""
    lines = ["account,symbol,quantity,price"]
    changed = False
    for account, symbol, qty, mark in sorted(held):
        if qty == 0:
            continue
        reported = qty
        if not changed and qty > 10:
            reported = qty - 10
            changed = True
        price = normalize(mark) if mark else ""
        lines.append(f"{account},{symbol},{normalize(reported)},{price}")
    return "\n".join(lines) + "\n"


def venue_cash_file(deposits: list[tuple[str, Decimal]]) -> str:
    """The bank's statement of the day: the deposits, and a wire fee the book does not have."""
    day = DEMO_DATE.isoformat()
    lines = ["account,currency,date,amount,ref,line_type"]
    for account, amount in deposits:
        lines.append(f"{account},USD,{day},0,,opening_balance")
        lines.append(f"{account},USD,{day},{amount},opening-{account},movement")
        closing = amount
        if account == "CLIENT-C":
            lines.append(f"{account},USD,{day},-25,WIRE-FEE-7731,movement")
            closing -= 25
        lines.append(f"{account},USD,{day},{closing},,closing_balance")
    return "\n".join(lines) + "\n"


# ---- the edge -----------------------------------------------------------------------------------


def _at(bar: int, minutes: int = 0, seconds: int = 0) -> datetime:
    return OPEN_UTC + timedelta(minutes=BAR_MINUTES * bar + minutes, seconds=seconds)


@dataclass(slots=True)
class _Tally:
    orders: int = 0
    filled: int = 0
    rejected: int = 0
    canceled: int = 0
    resting_fills: int = 0
    reasons: list[str] = field(default_factory=list)


def _trade_the_day(
    store: Store, actor: str, day: DemoDay, out: Path, say: Callable[[str], None]
) -> _Tally:
    tally = _Tally()
    live: dict[str, tuple[str, PlannedOrder]] = {}
    by_bar: dict[int, list[PlannedOrder]] = {}
    for o in day.orders:
        by_bar.setdefault(o.bar, []).append(o)
    bars_dir = out / "bars"
    bars_dir.mkdir(exist_ok=True)
    accepted = rejected = 0
    for i, text in enumerate(day.bars):
        path = bars_dir / f"bars_{i:02d}.csv"
        path.write_text(text, encoding="utf-8")
        md = md_book.import_bars(store, Ctx(actor, _at(i, seconds=5)), str(path))
        accepted, rejected = accepted + md.accepted, rejected + md.rejected
        tally.resting_fills += len(
            order_book.fill_resting(store, Ctx(actor, _at(i, seconds=6)), md.import_id)
        )
        for order_id, (_, planned) in list(live.items()):
            if planned.cancel_after_bar == i:
                with store.read() as conn:
                    current = order_book.find(conn, order_id)
                if current.live:
                    order_book.cancel(store, Ctx(actor, _at(i, 0, 30)), order_id)
                    tally.canceled += 1
                del live[order_id]
        for n, o in enumerate(by_bar.get(i, [])):
            tally.orders += 1
            req = OrderRequest(
                o.account,
                o.symbol,
                o.side,
                o.quantity,
                o.type,
                o.tif,
                o.limit,
                client_order_id=f"{o.account}-{i:02d}-{n:02d}",
            )
            try:
                result = order_book.submit(store, Ctx(actor, _at(i, o.minutes, n)), req)
            except order_book.RiskRejected as exc:
                tally.rejected += 1
                tally.reasons += [f.code.value for f in exc.result.failures]
                continue
            if result.order.cum_qty:
                tally.filled += 1
            if result.order.live:
                live[result.order.order_id] = (result.order.client_order_id, o)
    say(f"  market data: {accepted} bars accepted, {rejected} rejected and kept for review")
    return tally


def _documents(store: Store, out: Path, now: datetime) -> list[Any]:
    """The day's statements and exception report (HTML and PDF), and a confirmation per
    execution (PDF), as ops would hand them out the next morning."""
    from reports import documents, sources
    from reports.batch import day_documents
    from reports.confirmations import build_confirmation

    out.mkdir(exist_ok=True)
    written = day_documents(store, DEMO_DATE, DEMO_DATE, DEMO_DATE, out, now)
    confirms = out / "confirmations"
    confirms.mkdir(exist_ok=True)
    with store.read() as conn:
        inputs = sources.confirmation_inputs(conn, DEMO_DATE, now)
    for inp in inputs:
        c = build_confirmation(inp)
        data, pages = documents.encode_confirmation(c, "pdf")
        written.append(documents.save(confirms / f"{c.file_name}.pdf", "pdf", data, pages))
    return written


def run_demo(
    out: Path,
    seed: int,
    actor: str,
    clock: Callable[[], datetime],
    say: Callable[[str], None],
    db_url: str | None = None,
) -> str:
    """The demo runs on the simulated day's clock; `clock` is not used (kept for the CLI). Its
    book: `db_url`, a database with no tables yet (anything else is refused: a demo never
    writes into a book), else a fresh SQLite file in `out`. Returns the book's URL."""
    del clock
    store: Store | None = None
    if db_url is not None:
        store = Store.open(db_url, check_schema=False)
        with store.read() as conn:
            taken = sorted(inspect(conn).get_table_names())
        if taken:
            raise Refused(
                "tieout demo",
                f"{store.url} holds {len(taken)} table(s) already ({', '.join(taken[:3])}"
                f"{', ...' if len(taken) > 3 else ''}): the demo runs on an empty database "
                "(or leave --db out: a fresh SQLite file in the --out folder)",
                "demo_needs_empty_database",
            )
    if out.exists() and not out.is_dir():
        raise BadInput(str(out), "is a file: --out names the folder the demo writes in")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # no permission, a read-only disk
        raise BadInput(str(out), f"cannot be made: {e.strerror or e}") from None
    try:
        return _run_demo(out, seed, actor, say, db_url, store)
    except BaseException:
        # a full disk, an interrupt: what the demo made so far stays, and it says so (the
        # error that follows says only "nothing was changed" of its last step); a failure
        # before it made anything (a database it cannot reach, a book refused) says nothing
        again = (
            "run it again once that is mended: it starts over"
            if db_url is None
            else "the database given by --db holds part of its book: empty it (or name "
            "another) before running it again"
        )
        sys.stderr.write(
            f"tieout demo stopped part way: {printable(str(out))} holds part of its files; "
            f"{again}\n"
        )
        raise


def _run_demo(
    out: Path,
    seed: int,
    actor: str,
    say: Callable[[str], None],
    db_url: str | None,
    store: Store | None,
) -> str:
    """The demo's work, once it is known to run (its folder made, its book given and empty or
    its own)."""
    if store is None:
        db = out / "tieout.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        db_url = f"sqlite:///{db}"
        store = Store.open(db_url, check_schema=False)
    day = generate(seed)
    (out / "instruments.csv").write_text(day.instruments, encoding="utf-8")
    start = Ctx(actor, datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    store.init(actor, start.now)
    say(f"tieout demo (seed {seed}): the trading day of {DEMO_DATE} in {out}/")
    added, _ = book.add_instruments(store, start, *read_instruments(str(out / "instruments.csv")))
    say(f"  reference data: {added} instruments (XNYS), {len(ACCOUNTS)} accounts")
    deposits = []
    for account, name, kind, cash in ACCOUNTS:
        book.open_account(store, start, make_account(account, "USD", name, kind, None))
        book.deposit(store, start, account, Decimal(cash), f"opening-{account}")
        deposits.append((account, Decimal(cash)))
    for name, value in PAPER_TERMS:
        order_book.set_paper_term(store, start, name, value)

    tally = _trade_the_day(store, actor, day, out, say)
    evening = Ctx(actor, datetime(2026, 11, 24, 22, 0, tzinfo=UTC))
    expired = order_book.expire_due(store, evening)
    say(
        f"  orders: {tally.orders} sent, {tally.filled} filled at once, {tally.resting_fills} "
        f"fills of resting limits, {tally.canceled} canceled, {len(expired)} day orders "
        f"expired at the close, {tally.rejected} refused by pre-trade risk "
        f"({', '.join(sorted(set(tally.reasons)))})"
    )
    with store.read() as conn:
        execs = executions.list_executions(conn, trade_date=DEMO_DATE)
        held = []
        for account, _, _, _ in ACCOUNTS:
            for line in positions.positions(conn, account):
                held.append(
                    (
                        account,
                        line.position.symbol,
                        line.position.quantity,
                        line.valuation.market_price,
                    )
                )
    say(f"  executions: {len(execs)} booked with their cash entries")

    venue_dir = out / "venue"
    venue_dir.mkdir(exist_ok=True)
    trades_text, faults, late = venue_trade_file(execs, seed)
    files = {
        "paper-trades.toml": TRADE_PROFILE,
        "custodian-positions.toml": POSITION_PROFILE,
        "bank-cash.toml": CASH_PROFILE,
        "trades_20261124.csv": trades_text,
        "positions_20261124.csv": venue_position_file(held),
        "cash_20261124.csv": venue_cash_file(deposits),
        "late_booking.csv": late,
    }
    for name, text in files.items():
        (venue_dir / name).write_text(text, encoding="utf-8")
    say(
        "  venue files with the day's discrepancies: "
        + ", ".join(f"{ref} ({kind})" for ref, kind in sorted(faults.items()))
        + ", a bad row; the custodian has one position wrong; the bank charged a wire fee"
    )

    def recon(profile: str, file: str, ctx: Ctx, *, force: bool = False) -> runs.RunResult:
        result = runs.run(
            store, ctx, str(venue_dir / profile), str(venue_dir / file), DEMO_DATE, force=force
        )
        found = ", ".join(f"{t} {n}" for t, n in sorted(result.breaks.items())) or "no breaks"
        say(
            f"  recon {result.profile}: {result.venue_rows} rows, {result.matched} matched, "
            f"{result.quarantined_rows} quarantined; {found}"
        )
        return result

    recon("paper-trades.toml", "trades_20261124.csv", evening)
    recon("custodian-positions.toml", "positions_20261124.csv", evening)
    recon("bank-cash.toml", "cash_20261124.csv", evening)
    later = Ctx(actor, datetime(2026, 11, 24, 23, 0, tzinfo=UTC))
    booked = executions.import_file(store, later, str(venue_dir / "late_booking.csv"))
    rerun = runs.run(
        store,
        later,
        str(venue_dir / "paper-trades.toml"),
        str(venue_dir / "trades_20261124.csv"),
        DEMO_DATE,
        force=True,
    )
    say(
        f"  the late booking arrives ({booked.booked} execution): a second trade run closes "
        f"{rerun.closed_breaks} break; {rerun.open_breaks} trade breaks stay open for ops"
    )
    with store.read() as conn:
        for account, _, _, _ in ACCOUNTS:
            bal = book.cash_balance(conn, account)
            lines = positions.positions(conn, account)
            realized = sum((p.position.realized_pnl for p in lines), Decimal(0))
            unrealized = sum((p.valuation.unrealized_pnl or Decimal(0) for p in lines), Decimal(0))
            say(
                f"  {account:<9} cash {dec_str(_tick(bal.balance)):>11}  realized "
                f"{dec_str(_tick(realized)):>9}  unrealized {dec_str(_tick(unrealized)):>9}"
            )
        check = audit.verify_store(conn)
    say(
        f"  audit trail: {check.events} events, chain {'intact' if check.ok else 'BROKEN'}, "
        f"head {check.head}"
    )
    docs_dir = out / "reports"
    written = _documents(store, docs_dir, datetime(2026, 11, 25, 7, 0, tzinfo=UTC))
    pdf_pages = sum(w.pages or 0 for w in written)
    say(
        f"  documents: {len(written)} files ({pdf_pages} PDF pages): statements, the exception "
        f"report and trade confirmations in {docs_dir}/"
    )
    store.dispose()
    say(f"files: {venue_dir}/, {out / 'bars'}/, {docs_dir}/")
    say(f"database: {store.url}  (try: tieout breaks list --db {store.url})")
    return store.url


__all__ = ["generate", "run_demo"]
