"""A seeded generator of venue files with injected faults: the reconciliation's proof of
correctness (tests/integration/test_recon_faults.py, tests/cli/test_recon_kinds_cli.py).

Pure: a seed in, text and bytes out (no database, no clock). `make_book(seed)` is a book of
record: accounts, instruments (XNYS and 24/7), a few hundred executions at venue ACME on one
trade date, market data marks and cash deposits and withdrawals, with the files that book it
(`Book.instruments_csv`, `executions_csv`, `bars_csv`, and `moves` for `book.deposit` /
`book.withdraw`). From it, `trades_scenario`, `positions_scenario` and `cash_scenario` write
the venue's file in one format through a profile of that format, injecting one fault of every
break type plus records that must match (differences within tolerance, a record split in 2-3
venue records, 2-3 records aggregated in one, an N:M group, venue records without an exec id,
reordered rows, another column layout, rows the loader skips) and bad rows (quarantined, never
breaks). A Scenario holds the file, the profile and what the run must report: the breaks
(type, internal refs, venue refs, amount, differing fields, suggestion) and the quarantined
rows, nothing else. `mismatches(scenario, run, breaks, quarantined)` compares a run's JSON
(`recon run --json`, `breaks list --json`, `recon quarantine --json`) with it, including the
records matched per stage and that every record is matched or in a break.

Venue records without an exec id (trades), every position line, and cash lines without a ref
are named by the run `<business date>/row:<n>` (positions), `<business date>/<account>/row:<n>`
(trades), `<business date>/<account>/<currency>/row:<n>` (cash): the writers return each
record's row number (the physical line for CSV and FIX, the record's ordinal for Parquet, Flex,
MT940, camt.053).

How each injected fault avoids the others (the engine's waterfall, recon.engine): the records
left after the reference stage (missing ones, splits, aggregations, records without an exec id)
each get their own (account, symbol, side), so the key and aggregate stages see only their own
group; the venue-only record that serves as the suggestion of the missing one shares its
account and symbol but differs in side and quantity (no near match); stage-1 faults are on
distinct executions.
"""

from __future__ import annotations

import io
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

D = Decimal
DAY: Final = date(2026, 11, 24)  # a Tuesday session of XNYS
PREV: Final = date(2026, 11, 23)
NEXT: Final = date(2026, 11, 25)  # T+1 on XNYS and on 24/7 markets
VENUE: Final = "ACME"
TRADING_ACCOUNTS: Final = ("ACC1", "ACC2", "ACC3", "ACC4")
ACCOUNTS: Final = {"ACC1": "USD", "ACC2": "USD", "ACC3": "USD", "ACC4": "USD", "ACC5": "EUR"}
INSTRUMENTS: Final = {
    "AAPL": ("XNYS", D("190.00")),
    "MSFT": ("XNYS", D("415.00")),
    "IBM": ("XNYS", D("250.00")),
    "SPY": ("XNYS", D("590.00")),
    "BTC-USD": ("24/7", D("91000.00")),
    "ETH-USD": ("24/7", D("3100.00")),
}
CRYPTO: Final = frozenset(s for s, (x, _) in INSTRUMENTS.items() if x == "24/7")
CENT: Final = D("0.01")
TRADE_TOLERANCE: Final = {"price": "0.0001", "commission": "0.01", "fees": "0.01"}
POSITION_TOLERANCE: Final = {"price": "0.01"}
CASH_TOLERANCE: Final = {"amount": "0.01"}
SOH: Final = "\x01"

TRADE_FORMATS: Final = ("csv", "parquet", "fix", "ibflex")
POSITION_FORMATS: Final = ("csv", "parquet", "ibflex")
CASH_FORMATS: Final = ("csv", "parquet", "ibflex", "mt940", "camt053")
IB_ACCOUNTS: Final = {a: f"U{7_000_000 + i}" for i, a in enumerate(ACCOUNTS, 1)}
FIX_ACCOUNTS: Final = {a: f"ACME/{a.lower()}" for a in ACCOUNTS}
BANK_ACCOUNTS: Final = {a: f"NL{10 + i}TIEO0{4_417_164_300 + i}" for i, a in enumerate(ACCOUNTS)}


def text(value: Decimal) -> str:
    """Canonical decimal text, as the engine writes it (no exponent, no trailing zeros)."""
    out = format(value.normalize(), "f")
    return "0" if out in ("-0", "") else out


def q(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_EVEN)


# ---- the book -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exec:
    exec_id: str
    account: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    commission: Decimal
    fees: Decimal
    exec_time: datetime
    client_order_id: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account, self.symbol, self.side)

    @property
    def notional(self) -> Decimal:
        return abs(self.quantity * self.price)


@dataclass(frozen=True, slots=True)
class Move:
    """A cash movement: a deposit (amount > 0) or a withdrawal, booked with value date `day`."""

    day: date
    account: str
    amount: Decimal
    ref: str | None


@dataclass(frozen=True, slots=True)
class Book:
    seed: int
    execs: tuple[Exec, ...]
    marks: Mapping[str, Decimal]  # the close at the end of DAY; a symbol without bars is absent
    moves: tuple[Move, ...]
    flat: tuple[str, str]  # (account, symbol) bought and sold back: a flat position
    no_position: tuple[tuple[str, str], ...]  # (account, symbol) never traded

    def instruments_csv(self) -> str:
        lines = ["symbol,exchange,currency,tick_size,lot_size,restricted"]
        for sym, (exchange, _) in INSTRUMENTS.items():
            tick, lot = ("0.01", "0.0001") if sym in CRYPTO else ("0.0001", "1")
            lines.append(f"{sym},{exchange},USD,{tick},{lot},false")
        return "\n".join(lines) + "\n"

    def executions_csv(self) -> str:
        lines = [
            "exec_id,account,symbol,side,quantity,price,trade_date,venue,commission,fees,"
            "exec_time,client_order_id"
        ]
        for e in self.execs:
            lines.append(
                f"{e.exec_id},{e.account},{e.symbol},{e.side},{text(e.quantity)},"
                f"{text(e.price)},{DAY},{VENUE},{text(e.commission)},{text(e.fees)},"
                f"{e.exec_time:%Y-%m-%dT%H:%M:%SZ},{e.client_order_id}"
            )
        return "\n".join(lines) + "\n"

    def bars_csv(self) -> str:
        lines = ["time,symbol,open,high,low,close,volume"]
        for sym, mark in sorted(self.marks.items()):
            m = text(mark)
            lines.append(f"{DAY}T20:00:00Z,{sym},{m},{m},{m},{m},1000")
        return "\n".join(lines) + "\n"

    def last_prices(self) -> dict[str, Decimal]:
        """Each symbol's last fill's price in the book's fill order (the exec time to the second,
        as the file gives it, then the order of the file): what the run values a break of a
        position nobody marks at."""
        last: dict[str, Decimal] = {}
        timed = sorted((e.exec_time.replace(microsecond=0), i) for i, e in enumerate(self.execs))
        for _, i in timed:
            last[self.execs[i].symbol] = self.execs[i].price
        return last

    def positions(self) -> dict[tuple[str, str], Decimal]:
        held: dict[tuple[str, str], Decimal] = {}
        for e in self.execs:
            signed = e.quantity if e.side == "buy" else -e.quantity
            held[(e.account, e.symbol)] = held.get((e.account, e.symbol), D(0)) + signed
        return held

    def cash_accounts(self) -> list[str]:
        return sorted({m.account for m in self.moves})

    def day_moves(self) -> list[Move]:
        return [m for m in self.moves if m.day == DAY]

    def balances(self, account: str) -> tuple[Decimal, Decimal]:
        """(opening, closing) cash of an account on DAY (trades settle on NEXT)."""
        opening = sum((m.amount for m in self.moves if m.account == account and m.day < DAY), D(0))
        return opening, opening + sum(
            (m.amount for m in self.moves if m.account == account and m.day == DAY), D(0)
        )


def _price(rng: random.Random, symbol: str) -> Decimal:
    base = INSTRUMENTS[symbol][1]
    move = D(rng.randint(-150, 150)) / D(10_000)
    return q(base * (1 + move), D("0.5") if symbol == "BTC-USD" else CENT)


def _quantity(rng: random.Random, symbol: str) -> Decimal:
    if symbol in CRYPTO:
        return D(rng.randint(5, 4000)) / D(1000)
    return D(rng.randint(1, 30) * 10)


def make_book(
    seed: int,
    executions: int = 200,
    cash_accounts: Sequence[str] = tuple(ACCOUNTS),
    *,
    withdrawals: bool = True,
) -> Book:
    """The book of seed `seed`: `executions` executions at ACME on DAY over TRADING_ACCOUNTS,
    and the cash of `cash_accounts`: an opening deposit on PREV, 3-5 deposits (and, unless
    `withdrawals` is false, withdrawals) on DAY."""
    rng = random.Random(f"tieout-recon-book/{seed}")
    combos = [(a, s) for a in TRADING_ACCOUNTS for s in INSTRUMENTS]
    rng.shuffle(combos)
    flat, *no_position = combos[:3]
    traded = combos[3:]
    execs: list[Exec] = []
    start = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(hours=14, minutes=30)

    def add(account: str, symbol: str, side: str, quantity: Decimal) -> None:
        n = len(execs) + 1
        price = _price(rng, symbol)
        notional = quantity * price
        commission = max(q(notional * D("0.0002"), CENT), D("1.00"))
        fees = q(notional * D("0.0000278"), CENT) if side == "sell" else D(0)
        execs.append(
            Exec(
                f"E{seed}-{n:04d}",
                account,
                symbol,
                side,
                quantity,
                price,
                commission,
                fees,
                start + timedelta(seconds=rng.randint(0, 6 * 3600)),
                f"C{seed}-{n:04d}",
            )
        )

    size = _quantity(rng, flat[1])
    add(*flat, "buy", size)
    add(*flat, "sell", size)
    while len(execs) < executions:
        account, symbol = rng.choice(traded)
        add(account, symbol, rng.choice(("buy", "sell")), _quantity(rng, symbol))
    rng.shuffle(execs)
    without_bars = rng.choice(sorted(INSTRUMENTS))
    marks = {s: _price(rng, s) for s in sorted(INSTRUMENTS) if s != without_bars}
    moves: list[Move] = []
    n = 0
    for account in cash_accounts:
        moves.append(Move(PREV, account, D(rng.randint(200, 900) * 1000), f"OPEN-{account}"))
        # amounts of one account differ by more than 2 (tolerance 0.01): no accidental pairs
        for units in rng.sample(range(100, 30_000, 3), rng.randint(3, 5)):
            n += 1
            amount = D(units) + D(rng.randint(0, 99)) / 100
            if withdrawals and rng.random() < 0.35:
                moves.append(Move(DAY, account, -amount, f"WD-{seed}-{n:03d}"))
            else:
                ref = f"DEP-{seed}-{n:03d}" if rng.random() < 0.8 else None
                moves.append(Move(DAY, account, amount, ref))
    return Book(seed, tuple(execs), marks, tuple(moves), flat, tuple(no_position))


# ---- what a scenario must find --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tok:
    """A venue record named by its row (resolved once the file is written)."""

    name: str


Ref = str | Tok


@dataclass(frozen=True, slots=True)
class Expect:
    type: str
    internal: tuple[str, ...]
    venue: tuple[Ref, ...]
    amount: Decimal
    fields: tuple[str, ...] = ()  # keys of `differences`
    suggestion: tuple[Ref, ...] | None = None  # pieces joined after resolving


@dataclass(frozen=True, slots=True)
class Found:
    """An expected break, resolved: what `breaks list` must show."""

    type: str
    internal: tuple[str, ...]
    venue: tuple[str, ...]
    amount: Decimal
    fields: tuple[str, ...]
    suggestion: str | None

    @property
    def ident(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        return (self.type, self.internal, self.venue)


@dataclass(slots=True)
class Rec:
    """One record of a venue file: canonical values (the venue's, faults applied); `bad` gives
    fields written as raw text that validation must refuse."""

    values: dict[str, Any]
    token: str
    bad: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Written:
    data: bytes
    profile: str  # TOML
    rows: Mapping[str, int]  # token -> row number


@dataclass(frozen=True, slots=True)
class Scenario:
    kind: str
    fmt: str
    seed: int
    profile_name: str
    data: bytes
    profile: str
    suffix: str
    expected: tuple[Found, ...]
    rows: int  # valid + quarantined
    quarantined_rows: tuple[int, ...]
    internal_rows: int
    stages: Mapping[str, tuple[int, int]]  # matched (internal, venue) records per stage

    def idents(self) -> Counter[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        return Counter(f.ident for f in self.expected)

    def counts(self) -> dict[str, int]:
        return dict(Counter(f.type for f in self.expected))


def _finish(
    kind: str,
    fmt: str,
    seed: int,
    recs: Sequence[Rec],
    written: Written,
    expects: Iterable[Expect],
    refs: Callable[[Rec, int], str],
    internal_rows: int,
    suffix: str,
    stages: Mapping[str, tuple[int, int]],
) -> Scenario:
    by_token = {r.token: r for r in recs}
    assert len(by_token) == len(recs), "tokens must be unique"
    assert set(written.rows) == set(by_token), "every record gets a row"

    def resolve(ref: Ref) -> str:
        if isinstance(ref, Tok):
            return refs(by_token[ref.name], written.rows[ref.name])
        return ref

    found = []
    for e in expects:
        suggestion = None if e.suggestion is None else "".join(resolve(p) for p in e.suggestion)
        found.append(
            Found(
                e.type,
                tuple(sorted(e.internal)),
                tuple(sorted(resolve(v) for v in e.venue)),
                e.amount,
                tuple(sorted(e.fields)),
                suggestion,
            )
        )
    bad = tuple(sorted(written.rows[r.token] for r in recs if r.bad))
    return Scenario(
        kind,
        fmt,
        seed,
        f"acme-{kind}-{fmt}",
        written.data,
        written.profile,
        suffix,
        tuple(found),
        len(recs),
        bad,
        internal_rows,
        {k: v for k, v in stages.items() if v != (0, 0)},
    )


def _row_ref(row: int, *scope: Any) -> str:
    """A ref-less record's name: the business date, the record's account (trades; and its
    currency: cash; nothing else for positions), its row (recon.runs._name_rows)."""
    return "/".join([DAY.isoformat(), *("" if x is None else str(x) for x in scope), f"row:{row}"])


def _profile(kind: str, fmt: str, body: str, tolerance: Mapping[str, str]) -> str:
    head = f'name = "acme-{kind}-{fmt}"\nvenue = "{VENUE}"\nkind = "{kind}"\nformat = "{fmt}"\n'
    tol = "".join(f'{k} = "{v}"\n' for k, v in tolerance.items())
    return head + body + (f"\n[tolerance]\n{tol}" if tol else "")


def _values_table(name: str, mapping: Mapping[str, str]) -> str:
    return f"\n[values.{name}]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in mapping.items())


# ---- trades -----------------------------------------------------------------------------------


def _trade(e: Exec, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "exec_id": e.exec_id,
        "account": e.account,
        "symbol": e.symbol,
        "side": e.side,
        "quantity": e.quantity,
        "price": e.price,
        "currency": "USD",
        "trade_date": DAY,
        "settle_date": NEXT,
        "exec_time": e.exec_time,
        "commission": e.commission,
        "fees": e.fees,
        "client_order_id": e.client_order_id,
    }
    values.update(changes)
    return values


def _other(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def _cut(rng: random.Random, total: Decimal, parts: int, symbol: str) -> list[Decimal]:
    """`parts` positive quantities summing to `total`, all different from each other."""
    step = D("0.0001") if symbol in CRYPTO else D(1)
    while True:
        cuts = sorted(q(total * D(rng.randint(5, 95)) / 100, step) for _ in range(parts - 1))
        pieces = [b - a for a, b in zip([D(0), *cuts], [*cuts, total], strict=True)]
        if all(p > 0 for p in pieces) and len(set(pieces)) == parts:
            return pieces


def _shares(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`total` (money) split in proportion to `weights`, to the cent, summing exactly."""
    whole = sum(weights, D(0))
    out = [q(total * w / whole, CENT) for w in weights[:-1]]
    return [*out, total - sum(out, D(0))]


def trades_scenario(book: Book, fmt: str) -> Scenario:
    if fmt not in TRADE_FORMATS:
        raise ValueError(fmt)
    rng = random.Random(f"tieout-recon-trades/{book.seed}/{fmt}")
    fees_reported = fmt != "fix"
    by_key: dict[tuple[str, str, str], list[Exec]] = defaultdict(list)
    for e in book.execs:
        by_key[e.key].append(e)
    keys = sorted(by_key)
    rng.shuffle(keys)
    used: set[tuple[str, str, str]] = set()  # keys of the records left after stage 1
    taken: set[str] = set()  # executions given a fault or a role
    recs: list[Rec] = []
    expects: list[Expect] = []
    serial = iter(range(1, 10_000))

    def token(kind: str) -> str:
        return f"{kind}-{next(serial)}"

    def venue_id() -> str | None:
        return None if rng.random() < 0.5 else f"ACME-{rng.randint(10**7, 10**8 - 1)}"

    def claim(members: int) -> list[Exec]:
        for k in keys:
            if k in used or len(by_key[k]) < members:
                continue
            used.add(k)
            chosen = by_key[k][:members]
            taken.update(e.exec_id for e in chosen)
            return chosen
        raise AssertionError("the book has too few distinct keys for the scenario")

    def add(values: dict[str, Any], kind: str, bad: dict[str, str] | None = None) -> Tok:
        t = token(kind)
        recs.append(Rec(values, t, dict(bad or {})))
        return Tok(t)

    # missing at the venue, with a venue-only record of the same account and symbol (other side,
    # other quantity) that each names as the other's nearest unmatched record
    (gone,) = claim(1)
    other_key = (gone.account, gone.symbol, _other(gone.side))
    if other_key in used:
        raise AssertionError("unexpected: the opposite key is taken")
    used.add(other_key)
    quantity = gone.quantity + (D("0.5") if gone.symbol in CRYPTO else D(15))
    price = _price(rng, gone.symbol)
    lone = _trade(
        gone,
        exec_id=venue_id(),
        side=_other(gone.side),
        quantity=quantity,
        price=price,
        commission=D("2.00"),
        fees=D(0),
        client_order_id=None,
    )
    lone_tok = add(lone, "missing_internal")
    lone_ref: Ref = lone["exec_id"] or lone_tok
    expects.append(
        Expect(
            "missing_at_venue",
            (gone.exec_id,),
            (),
            gone.notional,
            (),
            ("venue ", lone_ref, f": {lone['side']} {text(quantity)} @ {text(price)} on {DAY}"),
        )
    )
    expects.append(
        Expect(
            "missing_internal",
            (),
            (lone_ref,),
            quantity * price,
            (),
            (
                "internal ",
                gone.exec_id,
                f": {gone.side} {text(gone.quantity)} @ {text(gone.price)} on {DAY}",
            ),
        )
    )
    # a venue-only record alone in its account and symbol: no suggestion
    alone = [k for k in keys if k not in used and (k[0], k[1]) != (gone.account, gone.symbol)]
    template = by_key[alone[0]][0]
    used.add(alone[0])
    q2 = template.quantity + (D("0.25") if template.symbol in CRYPTO else D(5))
    p2 = _price(rng, template.symbol)
    extra = _trade(
        template,
        exec_id=venue_id(),
        quantity=q2,
        price=p2,
        commission=D("1.00"),
        client_order_id=None,
    )
    extra_tok = add(extra, "missing_internal")
    expects.append(Expect("missing_internal", (), (extra["exec_id"] or extra_tok,), q2 * p2))

    # splits 1:2 and 1:3 at the same volume-weighted price (pieces at different prices)
    for parts in (2, 3):
        (e,) = claim(1)
        pieces = _cut(rng, e.quantity, parts, e.symbol)
        delta = D("0.0001")
        prices = [e.price + pieces[1] * delta, e.price - pieces[0] * delta, e.price][:parts]
        comms = _shares(e.commission, pieces)
        fees = _shares(e.fees, pieces)
        for i, (qty, px) in enumerate(zip(pieces, prices, strict=True)):
            add(
                _trade(
                    e,
                    exec_id=venue_id(),
                    quantity=qty,
                    price=px,
                    commission=comms[i],
                    fees=fees[i],
                    settle_date=NEXT if i else rng.choice((NEXT, None)),
                ),
                f"split{parts}",
            )
    # aggregations 2:1 and 3:1 at the volume-weighted price rounded to the tolerance
    for members in (2, 3):
        group = claim(members)
        total = sum((e.quantity for e in group), D(0))
        vwap = sum((e.quantity * e.price for e in group), D(0)) / total
        add(
            _trade(
                group[0],
                exec_id=venue_id(),
                quantity=total,
                price=q(vwap, D("0.0001")),
                commission=sum((e.commission for e in group), D(0)),
                fees=sum((e.fees for e in group), D(0)),
                client_order_id=None,
            ),
            f"aggregate{members}",
        )
    # N:M: two executions reported as two records of other sizes
    group = claim(2)
    total = sum((e.quantity for e in group), D(0))
    vwap = q(sum((e.quantity * e.price for e in group), D(0)) / total, D("0.0001"))
    while True:
        sizes = _cut(rng, total, 2, group[0].symbol)
        if not set(sizes) & {e.quantity for e in group}:
            break
    comms = _shares(sum((e.commission for e in group), D(0)), sizes)
    for i, size in enumerate(sizes):
        add(
            _trade(
                group[0],
                exec_id=venue_id(),
                quantity=size,
                price=vwap,
                commission=comms[i],
                fees=None,
                client_order_id=None,
            ),
            "n_to_m",
        )
    # records without the book's exec id, found on their key; one sent twice
    (e,) = claim(1)
    keyed = _trade(e, exec_id=venue_id())
    first = add(keyed, "keyed")
    second = add(dict(keyed), "keyed")
    if keyed["exec_id"] is None:
        # exact pairs are taken in ref order: the later ref (as text) is the duplicate of the
        # other
        twins = TwinOf(first.name, second.name)
        expects.append(
            Expect(
                "duplicate_venue",
                (),
                (twins,),
                e.notional,
                (),
                ("duplicate of venue row ", RowOf(twins, "matched")),
            )
        )
    else:
        expects.append(
            Expect(
                "duplicate_venue",
                (),
                (keyed["exec_id"],),
                e.notional,
                (),
                ("duplicate of venue row ", RowOf(TwinOf(first.name, second.name), "first")),
            )
        )
    (e,) = claim(1)
    add(_trade(e, exec_id=venue_id(), price=e.price + D("0.0001")), "keyed_within")

    # faults found on the exec id (stage 1), each on its own execution
    rest = [e for e in book.execs if e.exec_id not in taken]
    rng.shuffle(rest)
    pick = iter(rest)

    def fault(
        kind: str,
        fields: tuple[str, ...],
        amount: Callable[[Exec, dict], Decimal],
        **change: Callable[[Exec], Any],
    ) -> None:
        e = next(pick)
        values = _trade(e, **{k: f(e) for k, f in change.items()})
        if kind == "side_mismatch":
            values["side"] = _other(e.side)
        add(values, kind)
        expects.append(Expect(kind, (e.exec_id,), (e.exec_id,), amount(e, values), fields))

    def bump(e: Exec) -> Decimal:
        return e.quantity + (D("0.01") if e.symbol in CRYPTO else D(1))

    fault(
        "quantity_mismatch",
        ("quantity",),
        lambda e, v: abs(e.quantity - v["quantity"]) * v["price"],
        quantity=bump,
    )
    fault(
        "price_mismatch",
        ("price",),
        lambda e, v: abs(e.price - v["price"]) * e.quantity,
        price=lambda e: e.price + D("0.05"),
    )
    fault("side_mismatch", ("side",), lambda e, v: 2 * e.notional)
    fault(
        "trade_date_mismatch", ("trade_date",), lambda e, v: e.notional, trade_date=lambda e: PREV
    )
    fault(
        "settle_date_mismatch",
        ("settle_date",),
        lambda e, v: e.notional,
        settle_date=lambda e: NEXT + timedelta(days=1),
    )
    fault(
        "fee_mismatch",
        ("commission",),
        lambda e, v: D("1.25"),
        commission=lambda e: e.commission + D("1.25"),
    )
    if fees_reported:
        fault("fee_mismatch", ("fees",), lambda e, v: D("0.75"), fees=lambda e: e.fees + D("0.75"))
    # several fields differ: the type is the first in side, quantity, price, trade_date,
    # settle_date, fee; differences list all of them
    fault(
        "price_mismatch",
        ("commission", "price"),
        lambda e, v: D("0.02") * e.quantity,
        price=lambda e: e.price + D("0.02"),
        commission=lambda e: e.commission + D("0.50"),
    )
    fault(
        "quantity_mismatch",
        ("quantity", "settle_date"),
        lambda e, v: abs(e.quantity - v["quantity"]) * v["price"],
        quantity=bump,
        settle_date=lambda e: NEXT + timedelta(days=2),
    )
    fault(
        "side_mismatch",
        ("side", "trade_date"),
        lambda e, v: 2 * e.notional,
        trade_date=lambda e: PREV,
    )
    e = next(pick)
    first = add(_trade(e), "duplicated")
    second = add(_trade(e), "duplicate")
    expects.append(
        Expect(
            "duplicate_venue",
            (),
            (e.exec_id,),
            e.notional,
            (),
            ("duplicate of venue row ", RowOf(TwinOf(first.name, second.name), "first")),
        )
    )

    # within tolerance, or not reported by the venue: matched
    noise: list[dict[str, Callable[[Exec], Any]]] = [
        {"price": lambda e: e.price + D("0.0001")},
        {"price": lambda e: e.price - D("0.0001")},
        {"commission": lambda e: e.commission + D("0.01")},
        {"commission": lambda e: None},
        {"settle_date": lambda e: None},
        {"exec_time": lambda e: None, "client_order_id": lambda e: None},
    ]
    if fees_reported:
        noise += [{"fees": lambda e: e.fees - D("0.01")}, {"fees": lambda e: None}]
    for change in noise:
        e = next(pick)
        add(_trade(e, **{k: f(e) for k, f in change.items()}), "within")
    for e in pick:  # every other execution, as it is
        add(_trade(e), "clean")
    # bad rows: copies of real records (same exec id) that validation refuses
    for name, raw in _BAD_TRADE_FIELDS[fmt]:
        add(_trade(rng.choice(rest)), "bad", {name: raw})
    rng.shuffle(recs)
    written = _TRADE_WRITERS[fmt](recs, rng)
    expects = [_twins_resolved(x, recs, written) for x in expects]

    def ref(rec: Rec, row: int) -> str:
        return rec.values["exec_id"] or _row_ref(row, rec.values["account"])

    suffix = {"csv": ".csv", "parquet": ".parquet", "fix": ".fix", "ibflex": ".xml"}[fmt]
    n = _kinds(recs)
    reference = n["clean"] + n["within"] + n["duplicated"]
    grouped = n["split2"] + n["split3"] + n["aggregate2"] + n["aggregate3"] + n["n_to_m"]
    stages = {
        "reference": (reference, reference),
        "key": (2, 2),
        "aggregate": (1 + 1 + 2 + 3 + 2, grouped),
    }
    return _finish(
        "trades", fmt, book.seed, recs, written, expects, ref, len(book.execs), suffix, stages
    )


def _kinds(recs: Sequence[Rec]) -> Counter[str]:
    return Counter(r.token.rsplit("-", 1)[0] for r in recs)


@dataclass(frozen=True, slots=True)
class TwinOf:
    """Two identical venue records without an exec id: the later one in the file is the
    duplicate (the engine keeps file order, as for repeated exec ids)."""

    a: str
    b: str


@dataclass(frozen=True, slots=True)
class RowOf:
    """The row number of one of two identical venue records: the first in the file, or the
    one the key stage matched (also the first in the file)."""

    twins: TwinOf
    which: str  # "first" | "matched"


def _twins_resolved(x: Expect, recs: Sequence[Rec], written: Written) -> Expect:
    def twin(v: TwinOf, later: bool) -> str:
        rows = {written.rows[v.a]: v.a, written.rows[v.b]: v.b}  # file order decides
        return rows[max(rows) if later else min(rows)]

    def one(v: Any) -> Any:
        if isinstance(v, TwinOf):
            return Tok(twin(v, later=True))
        if isinstance(v, RowOf):
            if v.which == "first":
                return str(min(written.rows[v.twins.a], written.rows[v.twins.b]))
            return str(written.rows[twin(v.twins, later=False)])
        return v

    suggestion = None if x.suggestion is None else tuple(one(p) for p in x.suggestion)
    return Expect(
        x.type, x.internal, tuple(one(v) for v in x.venue), x.amount, x.fields, suggestion
    )


# bad rows per format: (canonical field, raw text); "checksum" breaks a FIX message
_BAD_TRADE_FIELDS: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "csv": (
        ("quantity", "12x"),
        ("side", "X"),
        ("trade_date", "31/02/2026"),
        ("settle_date", "01/01/2026"),
    ),
    "parquet": (("price", "NaN"), ("side", "HOLD"), ("commission", "1.2.3")),
    "fix": (("checksum", ""), ("side", "9"), ("quantity", "-5")),
    "ibflex": (("price", "abc"), ("side", "BOTH"), ("quantity", "1..5")),
}


# ---- trade writers ----------------------------------------------------------------------------

_CSV_TRADE_COLUMNS: Final = {
    "exec_id": "TradeRef",
    "account": "Account",
    "symbol": "Symbol",
    "side": "B/S",
    "quantity": "Qty",
    "price": "Price",
    "currency": "Ccy",
    "trade_date": "TradeDate",
    "settle_date": "SettleDate",
    "exec_time": "ExecTime",
    "commission": "Comm",
    "fees": "Fees",
    "client_order_id": "ClientRef",
}
_NOTES: Final = (
    "",
    "",
    "",
    "plain",
    "Société Générale",
    '"with; a semicolon"',
    '"he said ""sell"""',
    '"a note\nthat spans two lines"',
)


def _csv_trades(recs: Sequence[Rec], rng: random.Random) -> Written:
    order = [*_CSV_TRADE_COLUMNS, "note"]
    rng.shuffle(order)
    header = [_CSV_TRADE_COLUMNS.get(c, "Note") for c in order]
    lines = [f"ACME Securities;executions of {DAY:%d/%m/%Y}", ";".join(header)]
    rows: dict[str, int] = {}
    line = 2
    blank_at = rng.randrange(1, len(recs))
    for i, rec in enumerate(recs):
        if i == blank_at:
            lines.append("")
            line += 1
        v = rec.values
        note = rng.choice(_NOTES)
        cells = []
        for c in order:
            if c == "note":
                cells.append(note)
            elif c in rec.bad:
                cells.append(rec.bad[c])
            else:
                cells.append(_csv_trade_cell(c, v[c], rng))
        lines.append(";".join(cells))
        line += 1
        rows[rec.token] = line
        line += note.count("\n")
    profile = _profile(
        "trades",
        "csv",
        '\n[csv]\ndelimiter = ";"\nencoding = "cp1252"\nskip_rows = 1\n'
        + "\n[columns]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in _CSV_TRADE_COLUMNS.items())
        + '\n[values.side]\nB = "buy"\nS = "sell"\n'
        + '\n[parse]\ntrade_date = "%d/%m/%Y"\nsettle_date = "%d/%m/%Y"\n'
        'thousands_separator = ","\n',
        TRADE_TOLERANCE,
    )
    return Written(("\r\n".join(lines) + "\r\n").encode("cp1252"), profile, rows)


def _csv_trade_cell(name: str, value: Any, rng: random.Random) -> str:
    if value is None:
        return ""
    if name == "side":
        return "B" if value == "buy" else "S"
    if name in ("trade_date", "settle_date"):
        return f"{value:%d/%m/%Y}"
    if name == "exec_time":
        if rng.random() < 0.5:
            return f"{value:%Y-%m-%dT%H:%M:%SZ}"
        return (value + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S+01:00")
    if name == "currency":
        return value.lower() if rng.random() < 0.2 else value
    if isinstance(value, Decimal):
        out = format(value.normalize(), ",f") if abs(value) >= 1000 else text(value)
        return f'"{out}"' if rng.random() < 0.3 else out
    return str(value)


_PARQUET_TRADE_COLUMNS: Final = {
    "exec_id": "trade_ref",
    "account": "acct",
    "symbol": "ticker",
    "side": "direction",
    "quantity": "qty",
    "price": "px",
    "currency": "ccy",
    "trade_date": "tdate",
    "settle_date": "sdate",
    "exec_time": "ts",
    "commission": "comm",
    "fees": "fee_amt",
    "client_order_id": "clordid",
}


def _parquet_trades(recs: Sequence[Rec], rng: random.Random) -> Written:
    import polars as pl

    cols: dict[str, list[Any]] = {c: [] for c in _PARQUET_TRADE_COLUMNS}
    for rec in recs:
        v = rec.values
        for c, column in cols.items():
            value = v[c]
            if c in rec.bad:
                value = float("nan") if c == "price" else rec.bad[c]
            elif c == "side":
                value = value.upper()
            elif c == "price":
                value = float(value)
            elif c in ("commission", "fees") and value is not None:
                value = text(value) if c == "commission" else float(value)
            column.append(value)
    frame = pl.DataFrame(
        {_PARQUET_TRADE_COLUMNS[c]: vals for c, vals in cols.items()},
        schema={
            "trade_ref": pl.String,
            "acct": pl.String,
            "ticker": pl.String,
            "direction": pl.String,
            "qty": pl.Decimal(20, 6),
            "px": pl.Float64,
            "ccy": pl.String,
            "tdate": pl.Date,
            "sdate": pl.Date,
            "ts": pl.Datetime("us", "UTC"),
            "comm": pl.String,
            "fee_amt": pl.Float64,
            "clordid": pl.String,
        },
    )
    buf = io.BytesIO()
    frame.write_parquet(buf)
    profile = _profile(
        "trades",
        "parquet",
        "\n[columns]\n" + "".join(f'{k} = "{v}"\n' for k, v in _PARQUET_TRADE_COLUMNS.items()),
        TRADE_TOLERANCE,
    )
    return Written(buf.getvalue(), profile, {r.token: i for i, r in enumerate(recs, 1)})


def fix_message(pairs: Sequence[tuple[str, str]], sep: str = SOH) -> str:
    """A FIX 4.4 message with its BodyLength and CheckSum, fields separated by `sep` (the
    checksum is computed over SOH separators, as the reader does)."""
    body = "".join(f"{t}={v}{SOH}" for t, v in pairs)
    head = f"8=FIX.4.4{SOH}9={len(body.encode())}{SOH}"
    total = sum((head + body).encode()) % 256
    return (head + body + f"10={total:03d}{SOH}").replace(SOH, sep)


def _fix_trades(recs: Sequence[Rec], rng: random.Random) -> Written:
    sep = rng.choice((SOH, "|"))
    lines: list[str] = []
    rows: dict[str, int] = {}
    seq = iter(range(1, 100_000))

    def header() -> list[tuple[str, str]]:
        return [("49", "ACME"), ("56", "TIEOUT"), ("34", str(next(seq)))]

    def filler() -> str:
        kind = rng.choice(("heartbeat", "ack", "cancel"))
        if kind == "heartbeat":
            return fix_message([("35", "0"), *header()], sep)
        if kind == "ack":
            return fix_message(
                [
                    ("35", "8"),
                    *header(),
                    ("1", "ACME/acc1"),
                    ("11", "X"),
                    ("17", f"ACK-{next(seq)}"),
                    ("150", "0"),
                    ("39", "0"),
                    ("55", "AAPL"),
                    ("54", "1"),
                ],
                sep,
            )
        return fix_message(
            [
                ("35", "8"),
                *header(),
                ("20", "1"),
                ("1", "ACME/acc1"),
                ("17", f"CXL-{next(seq)}"),
                ("150", "F"),
                ("55", "AAPL"),
                ("54", "1"),
                ("32", "1"),
                ("31", "1"),
            ],
            sep,
        )

    for rec in recs:
        if rng.random() < 0.05:
            lines.append(filler())
        if rng.random() < 0.02:
            lines.append("")
        v = rec.values
        pairs: list[tuple[str, str]] = [("35", "8"), *header(), ("1", FIX_ACCOUNTS[v["account"]])]
        if v["client_order_id"]:
            pairs.append(("11", v["client_order_id"]))
        if v["exec_id"]:
            pairs.append(("17", v["exec_id"]))
        pairs += [
            ("150", rng.choice(("F", "F", "2"))),
            ("39", "2"),
            ("55", v["symbol"]),
            ("54", rec.bad.get("side") or ("1" if v["side"] == "buy" else "2")),
            ("32", rec.bad.get("quantity") or text(v["quantity"])),
            ("31", text(v["price"])),
            ("15", v["currency"]),
            ("75", f"{v['trade_date']:%Y%m%d}"),
        ]
        if v["settle_date"]:
            pairs.append(("64", f"{v['settle_date']:%Y%m%d}"))
        if v["exec_time"]:
            pairs.append(("60", v["exec_time"].strftime("%Y%m%d-%H:%M:%S.%f")[:-3]))
        if v["commission"] is not None:
            pairs += _fix_commission(v["commission"], v["quantity"], rng)
        message = fix_message(pairs, sep)
        if "checksum" in rec.bad:
            total = int(message.rstrip(sep)[-3:])
            message = message.rstrip(sep)[:-3] + f"{(total + 1) % 256:03d}" + sep
        lines.append(message)
        rows[rec.token] = len(lines)
    lines.append(filler())
    profile = _profile(
        "trades",
        "fix",
        _values_table("account", {v: k for k, v in FIX_ACCOUNTS.items()}),
        TRADE_TOLERANCE,
    )
    return Written(("\n".join(lines) + "\n").encode(), profile, rows)


def _fix_commission(
    amount: Decimal, quantity: Decimal, rng: random.Random
) -> list[tuple[str, str]]:
    """Tag 12 with CommType 13: absolute (3), or per unit (1) when that is exact."""
    per_unit = amount / quantity
    if rng.random() < 0.3 and per_unit * quantity == amount and -per_unit.as_tuple().exponent <= 8:
        return [("12", text(per_unit)), ("13", "1")]
    return [("12", text(amount)), ("13", "3")]


def _ib_trade(v: Mapping[str, Any], bad: Mapping[str, str], n: int) -> str:
    buy = v["side"] == "buy"
    signed = v["quantity"] if buy else -v["quantity"]
    attrs: dict[str, str] = {
        "accountId": IB_ACCOUNTS[v["account"]],
        "acctAlias": "",
        "currency": v["currency"],
        "assetCategory": "CRYPTO" if v["symbol"] in CRYPTO else "STK",
        "symbol": v["symbol"],
        "description": f'{v["symbol"]} <&> "{n}"',
    }
    if v["exec_id"]:
        attrs["tradeID"] = str(600_000 + n)
        attrs["ibExecID"] = v["exec_id"]
    attrs["tradeDate"] = v["trade_date"].strftime("%Y%m%d" if n % 2 else "%Y-%m-%d")
    if v["settle_date"]:
        attrs["settleDateTarget"] = v["settle_date"].isoformat()
    if v["exec_time"]:
        local = v["exec_time"] - timedelta(hours=5)  # America/New_York in November
        attrs["dateTime"] = local.strftime("%Y-%m-%d;%H%M%S")
    attrs["quantity"] = bad.get("quantity") or text(signed)
    attrs["tradePrice"] = bad.get("price") or text(v["price"])
    if v["fees"] is not None:
        attrs["taxes"] = text(-v["fees"])
    if v["commission"] is not None:
        attrs["ibCommission"] = text(-v["commission"])
        attrs["ibCommissionCurrency"] = v["currency"]
    attrs["buySell"] = bad.get("side") or ("BUY" if buy else "SELL")
    attrs["orderReference"] = v["client_order_id"] or ""
    attrs["levelOfDetail"] = "EXECUTION"
    return "<Trade " + " ".join(f"{k}={quoteattr(x)}" for k, x in attrs.items()) + " />"


def _flex(statements: Sequence[tuple[str, str]]) -> bytes:
    """A Flex Query response of (account id, statement body) in that order."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<FlexQueryResponse queryName="tieout-recon" type="AF">',
        f'<FlexStatements count="{len(statements)}">',
    ]
    for account, body in statements:
        parts.append(
            f'<FlexStatement accountId="{account}" fromDate="{DAY}" toDate="{DAY}" '
            f'period="LastBusinessDay" whenGenerated="{NEXT:%Y-%m-%d};020512">'
        )
        parts.append(body)
        parts.append("</FlexStatement>")
    parts += ["</FlexStatements>", "</FlexQueryResponse>", ""]
    return "\n".join(parts).encode()


def _grouped_by_account(recs: Sequence[Rec], rng: random.Random) -> list[tuple[str, list[Rec]]]:
    groups: dict[str, list[Rec]] = {}
    for rec in recs:
        groups.setdefault(rec.values["account"], []).append(rec)
    out = list(groups.items())
    rng.shuffle(out)
    return out


def _ibflex_trades(recs: Sequence[Rec], rng: random.Random) -> Written:
    rows: dict[str, int] = {}
    statements = []
    n = 0
    for account, group in _grouped_by_account(recs, rng):
        body = ["<Trades>"]
        for rec in group:
            if rng.random() < 0.05:
                body.append(
                    f'<Order accountId="{IB_ACCOUNTS[account]}" currency="USD" '
                    'symbol="AAPL" quantity="100" tradePrice="190" buySell="BUY" '
                    'levelOfDetail="ORDER" />'
                )
            n += 1
            body.append(_ib_trade(rec.values, rec.bad, n))
            rows[rec.token] = n
        body.append(
            f'<SymbolSummary accountId="{IB_ACCOUNTS[account]}" symbol="AAPL" '
            'levelOfDetail="SYMBOL_SUMMARY" />'
        )
        body.append("</Trades>")
        statements.append((IB_ACCOUNTS[account], "\n".join(body)))
    profile = _profile(
        "trades",
        "ibflex",
        '\n[parse]\ntimezone = "America/New_York"\n'
        + _values_table("account", {v: k for k, v in IB_ACCOUNTS.items()}),
        TRADE_TOLERANCE,
    )
    return Written(_flex(statements), profile, rows)


_TRADE_WRITERS: Final[Mapping[str, Callable[[Sequence[Rec], random.Random], Written]]] = {
    "csv": _csv_trades,
    "parquet": _parquet_trades,
    "fix": _fix_trades,
    "ibflex": _ibflex_trades,
}


# ---- positions --------------------------------------------------------------------------------


def positions_scenario(book: Book, fmt: str) -> Scenario:
    if fmt not in POSITION_FORMATS:
        raise ValueError(fmt)
    rng = random.Random(f"tieout-recon-positions/{book.seed}/{fmt}")
    held = book.positions()
    assert held[book.flat] == 0
    recs: list[Rec] = []
    expects: list[Expect] = []
    serial = iter(range(1, 10_000))

    def add(values: dict[str, Any], kind: str, bad: dict[str, str] | None = None) -> Tok:
        t = f"{kind}-{next(serial)}"
        recs.append(Rec(values, t, dict(bad or {})))
        return Tok(t)

    def line(account: str, symbol: str, quantity: Decimal, price: Decimal | None) -> dict:
        return {"account": account, "symbol": symbol, "quantity": quantity, "price": price}

    live = sorted(k for k, v in held.items() if v != 0)
    rng.shuffle(live)
    marked = [k for k in live if k[1] in book.marks]
    chosen: set[tuple[str, str]] = set()

    def take(pool: list[tuple[str, str]]) -> tuple[str, str]:
        k = next(k for k in pool if k not in chosen)
        chosen.add(k)
        return k

    # quantity differs (the venue's mark may differ within tolerance too)
    k = take(marked)
    qty = held[k] + (D("0.5") if k[1] in CRYPTO else D(7))
    mark = book.marks[k[1]] + D("0.01")
    tok = add(line(*k, qty, mark), "quantity_mismatch")
    expects.append(
        Expect(
            "quantity_mismatch",
            (f"{k[0]}|{k[1]}",),
            (tok,),
            abs(qty - held[k]) * mark,
            ("quantity",),
        )
    )
    # price beyond tolerance
    k = take(marked)
    mark = book.marks[k[1]] + D("1.50")
    tok = add(line(*k, held[k], mark), "price_mismatch")
    expects.append(
        Expect("price_mismatch", (f"{k[0]}|{k[1]}",), (tok,), D("1.50") * abs(held[k]), ("price",))
    )
    # quantity and price differ: quantity first, both listed; the venue's price values it
    k = take(marked)
    qty = held[k] - (D("0.25") if k[1] in CRYPTO else D(3))
    mark = book.marks[k[1]] * 2
    tok = add(line(*k, qty, mark), "quantity_mismatch")
    expects.append(
        Expect(
            "quantity_mismatch",
            (f"{k[0]}|{k[1]}",),
            (tok,),
            abs(qty - held[k]) * mark,
            ("price", "quantity"),
        )
    )
    # missing at the venue
    k = take(live)
    price = book.marks.get(k[1], book.last_prices()[k[1]])  # no mark: the last fill's price
    expects.append(Expect("missing_at_venue", (f"{k[0]}|{k[1]}",), (), abs(held[k]) * price))
    # at the venue only (a position the book does not have)
    k = book.no_position[0]
    qty, price = D(-40) if k[1] not in CRYPTO else D("-1.5"), _price(rng, k[1])
    tok = add(line(*k, qty, price), "missing_internal")
    expects.append(Expect("missing_internal", (), (tok,), abs(qty) * price))
    # flat on either side: matched, whether the other side lists it or not
    k = book.no_position[1]
    add(line(*k, D(0), rng.choice((None, _price(rng, k[1])))), "flat_venue_only")
    for k in sorted(k for k, v in held.items() if v == 0):  # book.flat, and any by chance
        if rng.random() < 0.5:
            add(line(*k, D("0.000"), None), "flat_both")
    # the others, as the book has them: the mark within tolerance, not given, or any when the
    # book has no mark
    for k in live:
        if k in chosen:
            continue
        mark = book.marks.get(k[1])
        if mark is None:
            price = _price(rng, k[1]) if rng.random() < 0.7 else None
        else:
            price = rng.choice((mark, mark, mark + D("0.01"), mark - D("0.01"), None))
        add(line(*k, held[k], price), "clean")
    for name, raw in _BAD_POSITION_FIELDS[fmt]:
        k = rng.choice(live)
        add(line(*k, held[k], book.marks.get(k[1])), "bad", {name: raw})
    rng.shuffle(recs)
    written = _POSITION_WRITERS[fmt](recs, rng)
    suffix = {"csv": ".csv", "parquet": ".parquet", "ibflex": ".xml"}[fmt]
    n = _kinds(recs)
    key = n["clean"] + n["flat_both"]
    flat_internal = sum(1 for v in held.values() if v == 0) - n["flat_both"]
    stages = {"key": (key, key), "flat": (flat_internal, n["flat_venue_only"])}
    return _finish(
        "positions",
        fmt,
        book.seed,
        recs,
        written,
        expects,
        lambda rec, row: _row_ref(row),
        len(held),
        suffix,
        stages,
    )


_BAD_POSITION_FIELDS: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "csv": (("quantity", "1.2.3"), ("account", ""), ("price", "-1,5")),
    "parquet": (("quantity", "abc"), ("price", "NaN")),
    "ibflex": (("quantity", "lots"), ("price", "-3")),
}


def _eu(value: Decimal) -> str:
    """1234.5 -> 1.234,5 (thousands '.', decimal ',')."""
    return format(value.normalize(), ",f").replace(",", "_").replace(".", ",").replace("_", ".")


def _csv_positions(recs: Sequence[Rec], rng: random.Random) -> Written:
    lines = ["Depot;Instrument;Bestand;Kurs"]
    rows: dict[str, int] = {}
    for rec in recs:
        v = rec.values
        cells = [
            rec.bad.get("account", v["account"]),
            v["symbol"],
            rec.bad.get("quantity") or _eu(v["quantity"]),
            rec.bad.get("price") or ("" if v["price"] is None else _eu(v["price"])),
        ]
        lines.append(";".join(cells))
        rows[rec.token] = len(lines)
    profile = _profile(
        "positions",
        "csv",
        '\n[csv]\ndelimiter = ";"\n\n[columns]\naccount = "Depot"\nsymbol = "Instrument"\n'
        'quantity = "Bestand"\nprice = "Kurs"\n\n[parse]\ndecimal_separator = ","\n'
        'thousands_separator = "."\n',
        POSITION_TOLERANCE,
    )
    return Written(("\n".join(lines) + "\n").encode(), profile, rows)


def _parquet_positions(recs: Sequence[Rec], rng: random.Random) -> Written:
    import polars as pl

    frame = pl.DataFrame(
        {
            "account_id": [r.values["account"] for r in recs],
            "instrument": [r.values["symbol"] for r in recs],
            "position": [r.bad.get("quantity") or text(r.values["quantity"]) for r in recs],
            "mark": [
                float("nan")
                if "price" in r.bad
                else None
                if r.values["price"] is None
                else float(r.values["price"])
                for r in recs
            ],
        },
        schema={
            "account_id": pl.String,
            "instrument": pl.String,
            "position": pl.String,
            "mark": pl.Float64,
        },
    )
    buf = io.BytesIO()
    frame.write_parquet(buf)
    profile = _profile(
        "positions",
        "parquet",
        '\n[columns]\naccount = "account_id"\nsymbol = "instrument"\nquantity = "position"\n'
        'price = "mark"\n',
        POSITION_TOLERANCE,
    )
    return Written(buf.getvalue(), profile, {r.token: i for i, r in enumerate(recs, 1)})


def _ibflex_positions(recs: Sequence[Rec], rng: random.Random) -> Written:
    rows: dict[str, int] = {}
    statements = []
    n = 0
    for account, group in _grouped_by_account(recs, rng):
        ib = IB_ACCOUNTS[account]
        body = ["<OpenPositions>"]
        for rec in group:
            v = rec.values
            attrs = {
                "accountId": ib,
                "currency": "USD",
                "symbol": v["symbol"],
                "assetCategory": "CRYPTO" if v["symbol"] in CRYPTO else "STK",
                "reportDate": DAY.isoformat(),
                "position": rec.bad.get("quantity") or text(v["quantity"]),
                "side": "Short" if v["quantity"] < 0 else "Long",
                "levelOfDetail": "SUMMARY",
            }
            if "price" in rec.bad:
                attrs["markPrice"] = rec.bad["price"]
            elif v["price"] is not None:
                attrs["markPrice"] = text(v["price"])
            body.append(
                "<OpenPosition " + " ".join(f"{k}={quoteattr(x)}" for k, x in attrs.items()) + " />"
            )
            n += 1
            rows[rec.token] = n
            if rng.random() < 0.2:
                body.append(
                    f'<OpenPosition accountId="{ib}" symbol="{v["symbol"]}" '
                    'position="1" markPrice="1" levelOfDetail="LOT" />'
                )
        body.append("</OpenPositions>")
        statements.append((ib, "\n".join(body)))
    profile = _profile(
        "positions",
        "ibflex",
        _values_table("account", {v: k for k, v in IB_ACCOUNTS.items()}),
        POSITION_TOLERANCE,
    )
    return Written(_flex(statements), profile, rows)


_POSITION_WRITERS: Final[Mapping[str, Callable[[Sequence[Rec], random.Random], Written]]] = {
    "csv": _csv_positions,
    "parquet": _parquet_positions,
    "ibflex": _ibflex_positions,
}


# ---- cash -------------------------------------------------------------------------------------


def cash_scenario(book: Book, fmt: str) -> Scenario:
    if fmt not in CASH_FORMATS:
        raise ValueError(fmt)
    rng = random.Random(f"tieout-recon-cash/{book.seed}/{fmt}")
    statement = fmt in ("ibflex", "mt940", "camt053")
    recs: list[Rec] = []
    expects: list[Expect] = []
    serial = iter(range(1, 10_000))

    def add(values: dict[str, Any], kind: str, bad: dict[str, str] | None = None) -> Tok:
        t = f"{kind}-{next(serial)}"
        recs.append(Rec(values, t, dict(bad or {})))
        return Tok(t)

    def movement(m: Move, **changes: Any) -> dict[str, Any]:
        values = {
            "account": m.account,
            "currency": ACCOUNTS[m.account],
            "date": m.day,
            "amount": m.amount,
            "ref": m.ref,
            "line_type": "movement",
        }
        values.update(changes)
        return values

    def bank_ref() -> str:
        return f"BNK{rng.randint(10**6, 10**7 - 1)}"

    moves = book.day_moves()
    with_ref = [m for m in moves if m.ref]
    rng.shuffle(with_ref)
    accounts = book.cash_accounts()
    rng.shuffle(accounts)
    chosen: set[int] = set()

    def take(
        pool: Sequence[Move], *, account: str | None = None, other_than: str | None = None
    ) -> Move:
        for m in pool:
            if id(m) in chosen or (account and m.account != account):
                continue
            if other_than and m.account == other_than:
                continue
            chosen.add(id(m))
            return m
        raise AssertionError("too few movements for the scenario")

    # missing at the venue, and a movement at the venue only in the same account: each names
    # the other as its nearest unmatched movement
    gone = take(with_ref)
    extra_amount = -(abs(gone.amount) + D("1234.56"))
    while any(abs(m.amount - extra_amount) < 2 for m in moves if m.account == gone.account):
        extra_amount -= D("7.77")
    extra_ref = rng.choice((bank_ref(), None))
    extra_tok = add(movement(gone, amount=extra_amount, ref=extra_ref), "missing_internal")
    extra_id: Ref = extra_ref or extra_tok
    expects.append(
        Expect(
            "missing_at_venue",
            (gone.ref or "",),
            (),
            abs(gone.amount),
            (),
            ("venue ", extra_id, f": {text(extra_amount)} on {DAY}"),
        )
    )
    expects.append(
        Expect(
            "missing_internal",
            (),
            (extra_id,),
            abs(extra_amount),
            (),
            ("internal ", gone.ref or "", f": {text(gone.amount)} on {DAY}"),
        )
    )
    # the same ref, another amount (the date may differ too: listed, not a break by itself)
    m = take(with_ref, other_than=gone.account)
    later = rng.random() < 0.5
    tok = add(
        movement(m, amount=m.amount + D("25.00"), date=NEXT if later else DAY), "amount_mismatch"
    )
    expects.append(
        Expect(
            "amount_mismatch",
            (m.ref or "",),
            (m.ref or "",),
            D("25.00"),
            ("amount", "date") if later else ("amount",),
        )
    )
    # within tolerance on the ref (the boundary), booked a day later by the bank
    m = take(with_ref)
    add(movement(m, amount=m.amount - D("0.01")), "within")
    m = take(with_ref)
    add(movement(m, date=NEXT), "later")
    # the bank's own refs (and none): matched on account, currency, date and amount
    for m in moves:
        if id(m) in chosen:
            continue
        chosen.add(id(m))
        if m.ref is None or rng.random() < 0.25:
            ref = rng.choice((bank_ref(), bank_ref(), None))
            nudge = rng.choice((D(0), D(0), D("0.01"), D("-0.01")))
            add(movement(m, ref=ref, amount=m.amount + nudge), "keyed")
        else:
            add(movement(m), "clean")
    # balances: one beyond tolerance, one at the boundary
    wrong = rng.choice(accounts)
    boundary = rng.choice([a for a in accounts if a != wrong])
    wrong_kind = rng.choice(("opening_balance", "closing_balance"))
    for account in accounts:
        opening, closing = book.balances(account)
        ccy = ACCOUNTS[account]
        for kind, booked in (("opening_balance", opening), ("closing_balance", closing)):
            amount = booked
            if account == wrong and kind == wrong_kind:
                amount += D("100.00")
                tok = add(
                    {
                        "account": account,
                        "currency": ccy,
                        "date": DAY,
                        "amount": amount,
                        "ref": None,
                        "line_type": kind,
                    },
                    "balance_mismatch",
                )
                expects.append(
                    Expect(
                        "balance_mismatch",
                        (f"balance:{kind}:{account}:{ccy}:{DAY}",),
                        (tok,),
                        D("100.00"),
                        ("amount",),
                    )
                )
                continue
            if account == boundary and kind == "closing_balance":
                amount += D("0.01")
            add(
                {
                    "account": account,
                    "currency": ccy,
                    "date": DAY,
                    "amount": amount,
                    "ref": None,
                    "line_type": kind,
                },
                "balance",
            )
    # bad rows
    for name, raw in _BAD_CASH_FIELDS[fmt]:
        m = rng.choice(moves)
        if name == "statement":  # a statement whose account id is not an identifier
            for kind in ("opening_balance", "movement", "movement", "closing_balance"):
                add(movement(m, account=raw, line_type=kind, ref=bank_ref()), "bad", {name: raw})
        else:
            add(movement(m, ref=bank_ref()), "bad", {name: raw})
    if statement:
        written = _CASH_WRITERS[fmt](recs, rng)
    else:
        rng.shuffle(recs)
        written = _CASH_WRITERS[fmt](recs, rng)

    def ref(rec: Rec, row: int) -> str:
        return rec.values["ref"] or _row_ref(row, rec.values["account"], rec.values["currency"])

    internal = len(moves)
    suffix = {
        "csv": ".csv",
        "parquet": ".parquet",
        "ibflex": ".xml",
        "mt940": ".sta",
        "camt053": ".xml",
    }[fmt]
    n = _kinds(recs)
    reference = n["clean"] + n["within"] + n["later"]
    stages = {
        "reference": (reference, reference),
        "key": (n["keyed"], n["keyed"]),
        "balance": (n["balance"], n["balance"]),
    }
    return _finish("cash", fmt, book.seed, recs, written, expects, ref, internal, suffix, stages)


_BAD_CASH_FIELDS: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "csv": (("amount", "12.34.5"), ("date", "31.02.2026"), ("currency", "EURO")),
    "parquet": (("amount", "abc"), ("line_type", "interim")),
    "ibflex": (("amount", "abc"),),
    "mt940": (("statement", "GB29 NWBK 6016 1331 9268 19"),),
    "camt053": (("sign", ""),),
}


def _csv_cash(recs: Sequence[Rec], rng: random.Random) -> Written:
    kinds = {
        "movement": ("", "Buchung"),
        "opening_balance": ("Anfangssaldo",),
        "closing_balance": ("Endsaldo",),
    }
    lines = ["Konto|Waehrung|Datum|Betrag|Referenz|Art"]
    rows: dict[str, int] = {}
    for rec in recs:
        v = rec.values
        cells = [
            v["account"],
            rec.bad.get("currency") or v["currency"],
            rec.bad.get("date") or f"{v['date']:%d.%m.%Y}",
            rec.bad.get("amount") or _eu(v["amount"]),
            v["ref"] or "",
            rng.choice(kinds[v["line_type"]]),
        ]
        lines.append("|".join(cells))
        rows[rec.token] = len(lines)
    profile = _profile(
        "cash",
        "csv",
        '\n[csv]\ndelimiter = "|"\n\n[columns]\naccount = "Konto"\ncurrency = "Waehrung"\n'
        'date = "Datum"\namount = "Betrag"\nref = "Referenz"\nline_type = "Art"\n'
        '\n[values.line_type]\nBuchung = "movement"\nAnfangssaldo = "opening_balance"\n'
        'Endsaldo = "closing_balance"\n'
        '\n[parse]\ndate = "%d.%m.%Y"\ndecimal_separator = ","\nthousands_separator = "."\n',
        CASH_TOLERANCE,
    )
    return Written(("\n".join(lines) + "\n").encode(), profile, rows)


def _parquet_cash(recs: Sequence[Rec], rng: random.Random) -> Written:
    import polars as pl

    frame = pl.DataFrame(
        {
            "account": [r.values["account"] for r in recs],
            "currency": [r.values["currency"] for r in recs],
            "value_date": [r.values["date"] for r in recs],
            "amount": [r.bad.get("amount") or text(r.values["amount"]) for r in recs],
            "reference": [r.values["ref"] for r in recs],
            "line_type": [r.bad.get("line_type") or r.values["line_type"] for r in recs],
        },
        schema={
            "account": pl.String,
            "currency": pl.String,
            "value_date": pl.Date,
            "amount": pl.String,
            "reference": pl.String,
            "line_type": pl.String,
        },
    )
    buf = io.BytesIO()
    frame.write_parquet(buf)
    profile = _profile(
        "cash", "parquet", '\n[columns]\ndate = "value_date"\nref = "reference"\n', CASH_TOLERANCE
    )
    return Written(buf.getvalue(), profile, {r.token: i for i, r in enumerate(recs, 1)})


def _statements(
    recs: Sequence[Rec], rng: random.Random
) -> list[tuple[str, Rec | None, list[Rec], Rec | None]]:
    """Per account (shuffled): opening balance, movements (shuffled), closing balance."""
    out = []
    for account, group in _grouped_by_account(recs, rng):
        opening = [r for r in group if r.values["line_type"] == "opening_balance"]
        closing = [r for r in group if r.values["line_type"] == "closing_balance"]
        moves = [r for r in group if r.values["line_type"] == "movement"]
        assert len(opening) <= 1 and len(closing) <= 1
        rng.shuffle(moves)
        out.append(
            (account, opening[0] if opening else None, moves, closing[0] if closing else None)
        )
    return out


def _ibflex_cash(recs: Sequence[Rec], rng: random.Random) -> Written:
    rows: dict[str, int] = {}
    statements = []
    n = 0
    for account, opening, moves, closing in _statements(recs, rng):
        assert opening is not None and closing is not None
        ib = IB_ACCOUNTS[account]
        ccy = ACCOUNTS[account]
        body = [
            "<CashReport>",
            f'<CashReportCurrency accountId="{ib}" currency="BASE_SUMMARY" '
            f'fromDate="{DAY}" toDate="{DAY}" startingCash="1" endingCash="2" />',
            f'<CashReportCurrency accountId="{ib}" currency="{ccy}" fromDate="{DAY}" '
            f'toDate="{DAY}" startingCash="{text(opening.values["amount"])}" '
            f'endingCash="{text(closing.values["amount"])}" />',
            "</CashReport>",
            "<CashTransactions>",
        ]
        rows[opening.token], rows[closing.token] = n + 1, n + 2
        n += 2
        for rec in moves:
            v = rec.values
            clock = f"{rng.randint(8, 17):02d}{rng.randint(0, 59):02d}00"
            attrs = {
                "accountId": ib,
                "currency": v["currency"],
                "type": "Deposits/Withdrawals",
                "description": "CASH RECEIPTS <b>&</b> TRANSFERS",
                "amount": rec.bad.get("amount") or text(v["amount"]),
                "dateTime": f"{v['date']:%Y-%m-%d};{clock}",
                "reportDate": v["date"].isoformat(),
                "transactionID": str(rng.randint(10**9, 10**10 - 1)),
                "levelOfDetail": "DETAIL",
            }
            if v["ref"]:
                attrs["clientReference"] = v["ref"]
            body.append(
                "<CashTransaction "
                + " ".join(f"{k}={quoteattr(x)}" for k, x in attrs.items())
                + " />"
            )
            n += 1
            rows[rec.token] = n
        body.append("</CashTransactions>")
        statements.append((ib, "\n".join(body)))
    profile = _profile(
        "cash",
        "ibflex",
        '\n[columns]\nref = "clientReference"\n'
        + _values_table("account", {v: k for k, v in IB_ACCOUNTS.items()}),
        CASH_TOLERANCE,
    )
    return Written(_flex(statements), profile, rows)


def _mt940_amount(value: Decimal) -> str:
    return format(abs(value).quantize(CENT), "f").replace(".", ",")


def _mt940_cash(recs: Sequence[Rec], rng: random.Random) -> Written:
    rows: dict[str, int] = {}
    lines: list[str] = []
    n = 0
    for number, (account, opening, moves, closing) in enumerate(_statements(recs, rng), 1):
        assert opening is not None and closing is not None
        ident = BANK_ACCOUNTS.get(account, account)
        ccy = opening.values["currency"]

        def balance(tag: str, rec: Rec, ccy: str = ccy) -> str:
            amount = rec.values["amount"]
            mark = "D" if amount < 0 else "C"
            return f":{tag}:{mark}{DAY:%y%m%d}{ccy}{_mt940_amount(amount)}"

        lines += [
            f":20:STMT{number:04d}",
            f":25:{ident}",
            f":28C:{number:05d}/001",
            balance("60F", opening),
        ]
        n += 1
        rows[opening.token] = n
        for rec in moves:
            v = rec.values
            amount = v["amount"]
            mark = "D" if amount < 0 else "C"
            ref = v["ref"]
            if ref is None:
                refs = "NONREF"
            elif ref.startswith("BNK"):
                refs = f"NONREF//{ref}"
            else:
                refs = f"{ref}//{rng.randint(10**5, 10**6 - 1)}"
            lines.append(f":61:{v['date']:%y%m%d}{DAY:%m%d}{mark}{_mt940_amount(amount)}NTRF{refs}")
            lines.append(":86:Transfer " + rng.choice(("", "client", "Société")))
            n += 1
            rows[rec.token] = n
        lines += [balance("62F", closing), "-"]
        n += 1
        rows[closing.token] = n
    mapping = {BANK_ACCOUNTS[a]: a for a in ACCOUNTS}
    profile = _profile("cash", "mt940", _values_table("account", mapping), CASH_TOLERANCE)
    return Written(("\n".join(lines) + "\n").encode(), profile, rows)


def _camt_cash(recs: Sequence[Rec], rng: random.Random) -> Written:
    rows: dict[str, int] = {}
    n = 0
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">',
        "<BkToCstmrStmt>",
        f"<GrpHdr><MsgId>MSG-{DAY}</MsgId><CreDtTm>{NEXT}T06:00:00+01:00</CreDtTm></GrpHdr>",
    ]

    def amount_xml(ccy: str, amount: Decimal, sign: bool = True) -> str:
        out = f'<Amt Ccy="{ccy}">{format(abs(amount).quantize(CENT), "f")}</Amt>'
        if sign:
            out += f"<CdtDbtInd>{'DBIT' if amount < 0 else 'CRDT'}</CdtDbtInd>"
        return out

    for number, (account, opening, moves, closing) in enumerate(_statements(recs, rng), 1):
        assert opening is not None and closing is not None
        ccy = opening.values["currency"]
        parts += [
            f"<Stmt><Id>STMT-{number}</Id><CreDtTm>{NEXT}T06:00:00+01:00</CreDtTm>",
            f"<Acct><Id><IBAN>{BANK_ACCOUNTS[account]}</IBAN></Id><Ccy>{ccy}</Ccy></Acct>",
        ]
        for code, rec in (("OPBD", opening), ("CLBD", closing), ("CLAV", closing)):
            parts.append(
                f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
                f"{amount_xml(ccy, rec.values['amount'])}<Dt><Dt>{DAY}</Dt></Dt></Bal>"
            )
        rows[opening.token] = n + 1
        n += 1
        for rec in moves:
            v = rec.values
            ref = v["ref"]
            entry = [
                f"<Ntry>{amount_xml(ccy, v['amount'], 'sign' not in rec.bad)}",
                "<Sts>BOOK</Sts>",
                f"<BookgDt><Dt>{DAY}</Dt></BookgDt>",
                f"<ValDt><Dt>{v['date']}</Dt></ValDt>",
            ]
            if ref and ref.startswith("BNK"):
                entry.append(f"<AcctSvcrRef>{ref}</AcctSvcrRef>")
            entry.append(
                "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd>"
                "<SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
            )
            e2e = ref if ref and not ref.startswith("BNK") else "NOTPROVIDED"
            entry.append(
                f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
                f"<RmtInf><Ustrd>{escape('<client> & co')}</Ustrd></RmtInf>"
                "</TxDtls></NtryDtls></Ntry>"
            )
            parts.append("".join(entry))
            n += 1
            rows[rec.token] = n
            if rng.random() < 0.15:
                parts.append(
                    f"<Ntry>{amount_xml(ccy, D('42.00'))}<Sts>PDNG</Sts>"
                    f"<BookgDt><Dt>{NEXT}</Dt></BookgDt>"
                    "<AcctSvcrRef>PENDING</AcctSvcrRef></Ntry>"
                )
        n += 1
        rows[closing.token] = n
        parts.append("</Stmt>")
    parts += ["</BkToCstmrStmt>", "</Document>", ""]
    mapping = {BANK_ACCOUNTS[a]: a for a in ACCOUNTS}
    profile = _profile("cash", "camt053", _values_table("account", mapping), CASH_TOLERANCE)
    return Written("\n".join(parts).encode(), profile, rows)


_CASH_WRITERS: Final[Mapping[str, Callable[[Sequence[Rec], random.Random], Written]]] = {
    "csv": _csv_cash,
    "parquet": _parquet_cash,
    "ibflex": _ibflex_cash,
    "mt940": _mt940_cash,
    "camt053": _camt_cash,
}


def scenario(book: Book, kind: str, fmt: str) -> Scenario:
    return {"trades": trades_scenario, "positions": positions_scenario, "cash": cash_scenario}[
        kind
    ](book, fmt)


FORMATS: Final = {"trades": TRADE_FORMATS, "positions": POSITION_FORMATS, "cash": CASH_FORMATS}


# ---- checking a run against a scenario --------------------------------------------------------


def _idents(
    breaks: Iterable[Mapping[str, Any]],
) -> Counter[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return Counter(
        (b["type"], tuple(sorted(b["internal_refs"])), tuple(sorted(b["venue_refs"])))
        for b in breaks
    )


def mismatches(
    sc: Scenario,
    run: Mapping[str, Any],
    breaks: Sequence[Mapping[str, Any]],
    quarantined: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Every way a run (`recon run --json`), its breaks (`breaks list --json`) and its
    quarantined rows (`recon quarantine --json`) differ from what the scenario injected."""
    out: list[str] = []
    counts = {
        "venue_rows": sc.rows,
        "quarantined_rows": len(sc.quarantined_rows),
        "internal_rows": sc.internal_rows,
        "new_breaks": len(sc.expected),
        "open_breaks": len(sc.expected),
        "closed_breaks": 0,
    }
    for name, want in counts.items():
        if run[name] != want:
            out.append(f"{name}: {run[name]} != {want}")
    rows = sorted(r["row"] for r in quarantined)
    if tuple(rows) != sc.quarantined_rows:
        out.append(f"quarantined rows {rows} != {list(sc.quarantined_rows)}")
    got, want = _idents(breaks), sc.idents()
    for ident in sorted(want - got):
        out.append(f"not found: {ident}")
    for ident in sorted(got - want):
        out.append(f"unexpected: {ident}")
    if run["breaks"] != sc.counts():
        out.append(f"break counts {run['breaks']} != {sc.counts()}")
    by_ident = {
        (b["type"], tuple(sorted(b["internal_refs"])), tuple(sorted(b["venue_refs"]))): b
        for b in breaks
    }
    for f in sc.expected:
        b = by_ident.get(f.ident)
        if b is None:
            continue
        if D(b["amount"]) != f.amount:
            out.append(f"{f.ident}: amount {b['amount']} != {text(f.amount)}")
        if tuple(sorted(b["differences"])) != f.fields:
            out.append(f"{f.ident}: differences {b['differences']} are not of {f.fields}")
        if b["suggestion"] != f.suggestion:
            out.append(f"{f.ident}: suggestion {b['suggestion']!r} != {f.suggestion!r}")
    stages = run.get("matched_by_stage", {})
    got_stages = {s: (n["internal"], n["venue"]) for s, n in stages.items()}
    if got_stages != dict(sc.stages):
        out.append(f"matched by stage {got_stages} != {dict(sc.stages)}")
    # every valid record is in exactly one matched row or one break (balances are no records)
    balance = stages.get("balance", {"internal": 0, "venue": 0})
    valid = sc.rows - len(sc.quarantined_rows)
    venue_in_breaks = sum(len(b["venue_refs"]) for b in breaks)
    if run["matched"] + venue_in_breaks != valid:
        out.append(
            f"venue records: {run['matched']} matched + {venue_in_breaks} in breaks "
            f"!= {valid} valid"
        )
    internal_in_breaks = sum(
        1 for b in breaks for r in b["internal_refs"] if not r.startswith("balance:")
    )
    matched_internal = run["matched_internal"] - balance["internal"]
    if matched_internal + internal_in_breaks != sc.internal_rows:
        out.append(
            f"internal records: {matched_internal} matched + {internal_in_breaks} in "
            f"breaks != {sc.internal_rows}"
        )
    return out


class RefLessBreak(Exception):
    """A break that names no record on either side: never a legitimate break."""


def set_refless_aside(
    run: Mapping[str, Any], breaks: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(run counts less the ref-less breaks, the other breaks, the ref-less ones), so that the
    rest of a run can be checked while a ref-less break is reported on its own."""
    refless = [b for b in breaks if not b["internal_refs"] and not b["venue_refs"]]
    counts = dict(run["breaks"])
    for b in refless:
        counts[b["type"]] -= 1
        if not counts[b["type"]]:
            del counts[b["type"]]
    n = len(refless)
    doc = {
        **run,
        "breaks": counts,
        "new_breaks": run["new_breaks"] - n,
        "open_breaks": run["open_breaks"] - n,
    }
    return doc, [b for b in breaks if b not in refless], refless
