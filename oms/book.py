"""The book of record's commands at the edge: reference data and cash. Each public function that
writes is one business event: one transaction holding the book lock, with its audit event.
The clock and the actor come in as a Ctx; nothing here reads the environment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text

from oms import audit, ledger
from oms.calendars import DEFAULT_SETTLEMENT_DAYS, canonical_exchange
from oms.errors import AlreadyExists, BadInput, NotFound, Refused
from oms.schema import (
    ExactDecimal,
    accounts,
    instruments,
    journal_entries,
    journal_postings,
    running_sums,
    settings,
)
from oms.store import Store, bulk_insert, forget, next_id, remembered
from oms.values import AccountType, dec_str, decimal_context, minor_units, normalize, utc_iso

_SUM_CONTEXT = decimal_context(60)  # as oms.lots.CONTEXT
# the journal's rows as post_entries (and oms.submission) build them: the tables' own order
ENTRY_COLUMNS: tuple[str, ...] = tuple(journal_entries.c.keys())
POSTING_COLUMNS: tuple[str, ...] = tuple(journal_postings.c.keys())


@dataclass(frozen=True, slots=True)
class Ctx:
    """Who does it and when: the edge passes both in. `clock`, where the edge gives one, reads
    the time again for a command that waited for the book's lock (`granted`)."""

    actor: str
    now: datetime
    clock: Callable[[], datetime] | None = field(default=None, compare=False, repr=False)

    def granted(self) -> Ctx:
        """The context as of now, read once the book's lock is held: a command that waited
        behind another writer (SQLite does not grant its lock in turn) is dated when it went
        on, not when it started; dated when it started, it came before what the writer ahead
        of it booked, and a cash movement or a cancel was refused as "the clock is behind"
        with every clock right. Without a clock, or with one behind this time, it is as it
        was."""
        if self.clock is None:
            return self
        now = self.clock()
        return replace(self, now=now) if now > self.now else self


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    exchange: str
    currency: str
    tick_size: Decimal
    lot_size: Decimal
    restricted: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "exchange": self.exchange,
            "currency": self.currency,
            "tick_size": dec_str(self.tick_size),
            "lot_size": dec_str(self.lot_size),
            "restricted": self.restricted,
        }


@dataclass(frozen=True, slots=True)
class Account:
    account: str
    name: str
    currency: str
    type: AccountType
    tier: str

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "name": self.name,
            "currency": self.currency,
            "type": self.type.value,
            "tier": self.tier,
        }


@dataclass(frozen=True, slots=True)
class CashBalance:
    account: str
    currency: str
    balance: Decimal
    reserved: Decimal

    @property
    def available(self) -> Decimal:
        with localcontext(_SUM_CONTEXT):  # exact, as the balance (not 28 digits)
            return self.balance - self.reserved

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "currency": self.currency,
            "balance": dec_str(self.balance),
            "available": dec_str(self.available),
            "reserved": dec_str(self.reserved),
        }


# ---- reference data -------------------------------------------------------------------------


def _instrument(row: Any) -> Instrument:
    return Instrument(
        row.symbol, row.exchange, row.currency, row.tick_size, row.lot_size, bool(row.restricted)
    )


_INSTRUMENT = select(instruments).where(instruments.c.symbol == bindparam("b_symbol"))


def get_instrument(conn: Connection, symbol: str) -> Instrument:
    """The instrument, read once in a transaction (tx_memo): a business event's steps each ask
    for it."""

    def read() -> Instrument:
        row = conn.execute(_INSTRUMENT, {"b_symbol": symbol}).first()
        if row is None:
            raise NotFound("instrument", symbol)
        return _instrument(row)

    return remembered(conn, ("instrument", symbol), read)


def list_instruments(conn: Connection) -> list[Instrument]:
    return [
        _instrument(r) for r in conn.execute(select(instruments).order_by(instruments.c.symbol))
    ]


def exchanges_of(conn: Connection, symbols: Iterable[str] | None = None) -> dict[str, str]:
    """The exchange of each listed symbol (of all, or of `symbols`; unlisted ones left out)."""
    return _instrument_column(conn, instruments.c.exchange, symbols)


def currencies_of(conn: Connection, symbols: Iterable[str] | None = None) -> dict[str, str]:
    """The currency of each listed symbol (of all, or of `symbols`; unlisted ones left out)."""
    return _instrument_column(conn, instruments.c.currency, symbols)


def _instrument_column(
    conn: Connection, column: Any, symbols: Iterable[str] | None
) -> dict[str, str]:
    i = instruments.c
    if symbols is None:
        return {str(s): str(x) for s, x in conn.execute(select(i.symbol, column))}
    wanted = sorted(set(symbols))
    out: dict[str, str] = {}
    for n in range(0, len(wanted), 500):
        q = select(i.symbol, column).where(i.symbol.in_(wanted[n : n + 500]))
        out.update((str(s), str(x)) for s, x in conn.execute(q))
    return out


def set_restricted(
    store: Store, ctx: Ctx, symbol: str, restricted: bool, reason: str | None
) -> Instrument:
    """Put an instrument on the restricted list or take it off (audited with the reason): every
    order in it is refused from the next check on (oms.risk, restricted). Setting what is set
    already changes nothing and records nothing."""
    with store.write() as conn:
        before = get_instrument(conn, symbol)
        if before.restricted == restricted:
            return before
        conn.execute(
            instruments.update().where(instruments.c.symbol == symbol).values(restricted=restricted)
        )
        forget(conn)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="instrument.restrict" if restricted else "instrument.unrestrict",
            entity_type="instrument",
            entity_id=symbol,
            payload={"restricted": restricted},
            reason=reason,
        )
        return get_instrument(conn, symbol)


INSTRUMENT_TERMS = ("exchange", "currency", "tick_size", "lot_size", "restricted")


def stated_terms(item: Instrument) -> frozenset[str]:
    """The terms an instrument given without saying which were stated is compared by: all but
    `restricted` when it is not set (compliance's restrict and unrestrict keep that flag)."""
    return frozenset(t for t in INSTRUMENT_TERMS if t != "restricted" or item.restricted)


def instrument_conflicts(old: Instrument, new: Instrument, stated: Iterable[str]) -> list[str]:
    """The terms of `new` that contradict the book's instrument, each as "name: the book's X,
    not Y". Only the stated terms are compared: a file without a tick_size column, or `add`
    without --tick-size, leaves the book's tick size as it is; restricted is stated only when
    set (a master file's "false" leaves compliance's restriction alone; its "true" for an
    instrument the book has unrestricted is refused: `instrument restrict` does that)."""
    out = _conflicts(old, new, [t for t in INSTRUMENT_TERMS if t in stated])
    if "restricted" in stated and old.restricted != new.restricted:
        out[-1] += " (`tieout instrument restrict` restricts it)"
    return out


def _conflicts(old: Any, new: Any, names: Iterable[str]) -> list[str]:
    """The named terms on which `new` differs from the book's `old`: "name: the book's X, not
    Y" each."""
    out = []
    for name in names:
        was, now = getattr(old, name), getattr(new, name)
        if was != now:
            shown = [
                str(v).lower() if isinstance(v, bool) else str(getattr(v, "value", v))
                for v in (was, now)
            ]
            out.append(f"{name}: the book's {shown[0]}, not {shown[1]}")
    return out


def add_instruments(
    store: Store,
    ctx: Ctx,
    items: Sequence[Instrument],
    stated: Sequence[Iterable[str]] | None = None,
) -> tuple[int, int]:
    """Add instruments; an existing one the input agrees with (on the terms it states:
    `stated`, one per item, else stated_terms) is left as it is, one it contradicts is refused
    (exit 4, naming each term). Returns (added, unchanged). All or nothing."""
    with store.write() as conn:
        existing = {i.symbol: i for i in list_instruments(conn)}
        new = []
        for i, item in enumerate(items):
            old = existing.get(item.symbol)
            if old is None:
                new.append(item)
                existing[item.symbol] = item
                continue
            terms = stated[i] if stated is not None else stated_terms(item)
            conflicts = instrument_conflicts(old, item, terms)
            if conflicts:
                raise AlreadyExists("instrument", item.symbol, "; ".join(conflicts))
        forget(conn)
        for item in new:
            conn.execute(
                instruments.insert().values(
                    symbol=item.symbol,
                    exchange=item.exchange,
                    currency=item.currency,
                    tick_size=item.tick_size,
                    lot_size=item.lot_size,
                    restricted=item.restricted,
                    created_at=ctx.now,
                    created_by=ctx.actor,
                )
            )
        if new:
            audit.append(
                conn,
                at=ctx.now,
                actor=ctx.actor,
                action="instrument.add",
                entity_type="instrument",
                entity_id=new[0].symbol if len(new) == 1 else f"{len(new)} instruments",
                payload={"instruments": [i.as_json() for i in new]},
            )
    return len(new), len(items) - len(new)


def _account(row: Any) -> Account:
    return Account(row.account_id, row.name, row.currency, AccountType(row.type), row.tier)


_ACCOUNT = select(accounts).where(accounts.c.account_id == bindparam("b_account"))


def get_account(conn: Connection, account: str) -> Account:
    row = conn.execute(_ACCOUNT, {"b_account": account}).first()
    if row is None:
        raise NotFound("account", account)
    return _account(row)


def list_accounts(conn: Connection) -> list[Account]:
    return [_account(r) for r in conn.execute(select(accounts).order_by(accounts.c.account_id))]


ACCOUNT_TERMS = ("currency", "type", "tier", "name")


def open_account(
    store: Store, ctx: Ctx, item: Account, stated: Iterable[str] = ACCOUNT_TERMS
) -> tuple[Account, bool]:
    """Open an account; opening it again with terms that agree with the book's (those
    `stated`: the others took their defaults) is a no-op that returns the book's account and
    created=False; with other terms it is refused (exit 4, naming each)."""
    with store.write() as conn:
        row = conn.execute(select(accounts).where(accounts.c.account_id == item.account)).first()
        if row is not None:
            old = _account(row)
            conflicts = _conflicts(old, item, [t for t in ACCOUNT_TERMS if t in stated])
            if conflicts:
                raise AlreadyExists("account", item.account, "; ".join(conflicts))
            return old, False
        conn.execute(
            accounts.insert().values(
                account_id=item.account,
                name=item.name,
                currency=item.currency,
                type=item.type.value,
                tier=item.tier,
                created_at=ctx.now,
                created_by=ctx.actor,
            )
        )
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="account.open",
            entity_type="account",
            entity_id=item.account,
            payload=item.as_json(),
        )
    return item, True


# ---- settings ------------------------------------------------------------------------------


def get_setting(conn: Connection, key: str) -> str | None:
    value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
    return None if value is None else str(value)


def put_setting(
    conn: Connection,
    ctx: Ctx,
    key: str,
    value: str,
    reason: str | None = None,
    *,
    default: str | None = None,
) -> str | None:
    """Set one setting inside the caller's write transaction, audited; returns the old value.
    `default`: the value in force while the setting was never set (the audit's "from" then)."""
    old = get_setting(conn, key)
    values = {"value": value, "updated_at": ctx.now, "updated_by": ctx.actor}
    forget(conn)  # what the transaction read of the settings (tx_memo)
    if old is None:
        conn.execute(settings.insert().values(key=key, **values))
    else:
        conn.execute(settings.update().where(settings.c.key == key).values(**values))
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action="setting.set",
        entity_type="setting",
        entity_id=key,
        payload={"key": key, "from": old if old is not None else default, "to": value},
        reason=reason,
    )
    return old


# ---- cash journal ---------------------------------------------------------------------------


def post_entries(
    conn: Connection,
    ctx: Ctx,
    entries: Iterable[ledger.Entry],
    execution_ids: Sequence[int | None] | None = None,
) -> list[int]:
    """Write journal entries and their postings (under the caller's book lock); returns ids."""
    entry_id = next_id(conn, journal_entries, "entry_id")
    posting_id = next_id(conn, journal_postings, "posting_id")
    posted_at = utc_iso(ctx.now)
    entry_rows: list[tuple[Any, ...]] = []
    posting_rows: list[tuple[Any, ...]] = []
    ids: list[int] = []
    for i, e in enumerate(entries):
        exec_id = execution_ids[i] if execution_ids is not None else None
        entry_rows.append(
            (
                entry_id,
                e.kind,
                e.account,
                e.currency,
                e.ref,
                e.destination,
                exec_id,
                e.value_date.isoformat(),
                posted_at,
                ctx.actor,
            )
        )
        for p in e.postings:
            posting_rows.append(
                (posting_id, entry_id, p.ledger_account, p.currency, dec_str(p.amount))
            )
            posting_id += 1
        ids.append(entry_id)
        entry_id += 1
    bulk_insert(conn, journal_entries, ENTRY_COLUMNS, entry_rows)
    bulk_insert(conn, journal_postings, POSTING_COLUMNS, posting_rows)
    return ids


def reserved_cash(conn: Connection, account: str, currency: str) -> Decimal:
    """Cash held for the account's live buy orders (the order book computes it)."""
    from oms import order_book  # the order book builds on this module: imported when used

    return order_book.reserved_cash(conn, account, currency)


def cash_balance(conn: Connection, account: str, currency: str | None = None) -> CashBalance:
    acct = get_account(conn, account)
    ccy = currency or acct.currency
    total = cash_total(conn, account, ccy)
    return CashBalance(account, ccy, total, reserved_cash(conn, account, ccy))


# a value date counts as settled once that date has begun everywhere (UTC-12): the journal's
# value dates are the exchanges' own dates, which the book does not keep per entry; held a
# few hours longer where the day begins earlier, never paid out before its day
_LAST_TO_BEGIN = timedelta(hours=12)


def settled_through(now: datetime) -> date:
    """The last value date whose cash a cash account may pay out at `now`."""
    return (now - _LAST_TO_BEGIN).date()


def withdrawable_cash(
    conn: Connection, account: str, currency: str, today: date, available: Decimal
) -> Decimal:
    """What a cash account may pay out today: its available cash less what it has not yet
    received. The balance is on trade date, so it holds the proceeds of sales that settle
    later; paid out now, they would be lent before the buyer pays. Cash settled by today,
    less the least the account's future settlements leave it at on any later date, less its
    reservations: available - sum(flows) + min(0, lowest running sum of the flows by value
    date)."""
    j, p = journal_entries.c, journal_postings.c
    # (deposits and withdrawals are cash moved when booked, on the booking's own date: held
    # back by the UTC-12 rule, a morning's deposit could not be paid out until noon UTC)
    later = dict(
        conn.execute(
            select(j.entry_id, j.value_date).where(
                j.account == account,
                j.value_date > today,
                j.kind.not_in(("deposit", "withdrawal")),
            )
        ).all()
    )
    if not later:
        return available
    first = min(later)
    flows: dict[date, Decimal] = defaultdict(Decimal)
    # the account's cash postings from the newest back to the first entry not settled yet
    # (postings and entries are numbered in one order): the recent ones, not the history
    recent = conn.execute(
        select(p.entry_id, p.amount)
        .where(p.ledger_account == ledger.cash_account(account), p.currency == currency)
        .order_by(p.posting_id.desc())
        .execution_options(yield_per=512)
    )
    with localcontext(_SUM_CONTEXT):
        for entry_id, amount in recent:
            if entry_id < first:
                break
            if entry_id in later:
                flows[later[entry_id]] += Decimal(amount)
        recent.close()
        running, lowest = Decimal(0), Decimal(0)
        for day in sorted(flows):
            running += flows[day]
            lowest = min(lowest, running)
        return max(min(available, available - running + lowest), Decimal(0))


RUNNING_CASH = "cash"  # running_sums.kind of a cash ledger account's sum in a currency
_KEPT_CASH = select(running_sums.c.through_id, running_sums.c.total).where(
    running_sums.c.kind == RUNNING_CASH,
    running_sums.c.owner == bindparam("b_owner"),
    running_sums.c.item == bindparam("b_currency"),
)
_CASH_POSTINGS = select(journal_postings.c.amount).where(
    journal_postings.c.ledger_account == bindparam("b_owner"),
    journal_postings.c.currency == bindparam("b_currency"),
)
_CASH_AFTER = select(journal_postings.c.posting_id, journal_postings.c.amount).where(
    journal_postings.c.ledger_account == bindparam("b_owner"),
    journal_postings.c.currency == bindparam("b_currency"),
    journal_postings.c.posting_id > bindparam("b_through"),
)
_KEEP_CASH = text(
    "INSERT INTO running_sums (kind, owner, item, through_id, total)"
    " VALUES (:kind, :owner, :item, :through, :total)"
    " ON CONFLICT (kind, owner, item) DO UPDATE SET through_id = excluded.through_id,"
    " total = excluded.total"
).bindparams(bindparam("total", type_=ExactDecimal()))
# postings read after the kept sum that make a writer (keep=True) keep a new one (as
# oms.submission.KEEP_AFTER)
KEEP_CASH_AFTER = 64


def cash_total(conn: Connection, account: str, currency: str, *, keep: bool = False) -> Decimal:
    """The account's cash in a currency: the sum of its cash ledger postings in it, read as
    the sum kept up to a posting (running_sums; the postings are append-only and their ids
    only grow) plus the postings after it, so that an account with a long history is not read
    whole for each balance. Exact, digit for digit what cash_total_scan gives (the state
    oracle compares them on random books). `keep`: the caller's transaction writes (it holds
    the book lock): having read KEEP_CASH_AFTER postings or more after the kept sum, it keeps
    the new one (order submissions keep them too)."""
    owner = ledger.cash_account(account)
    params = {"b_owner": owner, "b_currency": currency}
    kept = conn.execute(_KEPT_CASH, params).first()
    through, total = (int(kept[0]), kept[1]) if kept is not None else (0, Decimal(0))
    rows = conn.execute(_CASH_AFTER, {**params, "b_through": through}).all()
    with localcontext(_SUM_CONTEXT):  # exact, as PostgreSQL's NUMERIC sum (not 28 digits)
        total = sum((amount for _, amount in rows), total)
    if keep and len(rows) >= KEEP_CASH_AFTER:
        last = max(int(posting_id) for posting_id, _ in rows)
        row = {"kind": RUNNING_CASH, "owner": owner, "item": currency, "through": last}
        conn.execute(_KEEP_CASH, {**row, "total": total})
    return total


def cash_total_scan(conn: Connection, account: str, currency: str) -> Decimal:
    """cash_total from every posting, without the kept sum (what the kept sums must give)."""
    params = {"b_owner": ledger.cash_account(account), "b_currency": currency}
    amounts = conn.execute(_CASH_POSTINGS, params).scalars()
    with localcontext(_SUM_CONTEXT):
        return sum(amounts, Decimal(0))


def _check_minor_units(what: str, amount: Decimal, currency: str) -> None:
    """Money paid in or out comes in the currency's minor units (cents for USD, whole yen):
    a bank cannot move a fraction of a cent, and the book would never reconcile with it."""
    places = minor_units(currency)
    if normalize(amount).as_tuple().exponent < -places:  # type: ignore[operator]
        raise BadInput(
            f"{what} amount",
            f"{dec_str(amount)} {currency} has more decimals than the currency's {places}",
        )


# how far a writer's clock may lag the account's last entry (two hosts' clocks around
# midnight): the movement is then dated at that entry instead; further is a wrong clock
CLOCK_SKEW = timedelta(seconds=5)


def _cash_clock(conn: Connection, ctx: Ctx, account: str, what: str) -> Ctx:
    """Cash paid in or out is dated by the clock: a clock behind the account's last entry
    would date the movement before what is already booked (a withdrawal paid from a deposit
    booked later, dated before it, leaves the account's statement short for the days between;
    a deposit would change a period's statement already sent). A lag within CLOCK_SKEW is
    dated at the last entry; a longer one is refused: the clock is wrong (a machine's, or
    TIEOUT_NOW). Returns the context to book with."""
    j = journal_entries.c
    last = conn.execute(
        select(j.posted_at).where(j.account == account).order_by(j.entry_id.desc()).limit(1)
    ).scalar()
    ctx = ctx.granted()
    if last is None or ctx.now >= last:
        return ctx
    if last - ctx.now <= CLOCK_SKEW:
        return replace(ctx, now=last)
    raise Refused(
        f"{what} of account {account}",
        f"the clock reads {utc_iso(ctx.now)}, before the account's last entry at "
        f"{utc_iso(last)}; cash is not booked before what is booked already: check this "
        "machine's clock (or TIEOUT_NOW)",
        "clock_behind",
    )


@dataclass(frozen=True, slots=True)
class CashMoved:
    """A deposit's or withdrawal's answer: its journal entry, the balance after it, and whether
    it was booked already (the same reference and terms again: nothing was booked)."""

    entry_id: int
    balance: CashBalance
    duplicate: bool = False


# every character `str.strip` takes (`str.isspace`), for SQL's trim (which takes spaces only
# by default); written out: computed, it cost every command 0.1 s at start
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _movement_ref(ref: str | None) -> str | None:
    """A deposit's or withdrawal's reference as kept and compared: trimmed ("R1 " is R1, as
    a destination is trimmed); a blank one is no reference (`--ref "$REF"` with REF unset
    would otherwise make every later blank-ref movement a "duplicate" booked never)."""
    return (ref or "").strip() or None


def _booked_ref(
    conn: Connection, account: str, kind: str, ref: str | None, amount: Decimal, **terms: str
) -> CashMoved | None:
    """A movement of the account with this reference booked already: the same amount (and
    terms) again is that movement (a retry after a commit of unknown outcome books nothing
    twice); other terms are refused, naming them. None: no such movement."""
    if not ref:
        return None
    j, p = journal_entries.c, journal_postings.c
    # read by the account's capital postings (its deposits and withdrawals only, by the
    # postings' index), not among all its entries, trades included
    row = conn.execute(
        select(j.entry_id, j.destination, j.posted_at, p.amount)
        .select_from(journal_postings)
        .join(journal_entries, j.entry_id == p.entry_id)
        # (trimmed: a reference booked padded before they were trimmed is found too, of any
        # whitespace `str.strip` takes, tabs and line ends included: SQL's trim takes spaces)
        .where(
            p.ledger_account == f"{account}:capital",
            j.kind == kind,
            func.trim(j.ref, WHITESPACE) == ref,
        )
        .order_by(j.entry_id)
        .limit(1)
    ).first()
    if row is None:
        return None
    booked = abs(Decimal(row.amount))
    differs = [f"amount: the book's {dec_str(booked)}, not {dec_str(amount)}"] * (booked != amount)
    differs += [
        f"{name}: the book's {row.destination}, not {value}"
        for name, value in terms.items()
        if name == "destination" and value != row.destination
    ]
    if differs:
        raise Refused(
            f"{kind} {ref!r} of account {account}",
            f"a {kind} with that reference was booked at {utc_iso(row.posted_at)} (entry "
            f"{row.entry_id}) with other terms: {'; '.join(differs)}",
            "duplicate_ref",
        )
    return CashMoved(int(row.entry_id), cash_balance(conn, account), duplicate=True)


def deposit(store: Store, ctx: Ctx, account: str, amount: Decimal, ref: str | None) -> CashMoved:
    """Book a deposit. With a reference, the same deposit again (a retry) is the first one,
    booked once (CashMoved.duplicate); the reference with another amount is refused."""
    if amount <= 0:
        raise Refused("deposit", f"amount {dec_str(amount)} must be greater than zero", "amount")
    ref = _movement_ref(ref)
    with store.write() as conn:
        acct = get_account(conn, account)
        _check_minor_units("deposit", amount, acct.currency)
        again = _booked_ref(conn, account, "deposit", ref, amount)
        if again is not None:
            return again
        ctx = _cash_clock(conn, ctx, account, "deposit")
        entry = ledger.deposit(account, acct.currency, amount, ctx.now.date(), ref)
        (entry_id,) = post_entries(conn, ctx, [entry])
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="cash.deposit",
            entity_type="account",
            entity_id=account,
            payload={"entry_id": entry_id, "amount": amount, "currency": acct.currency, "ref": ref},
        )
        return CashMoved(entry_id, cash_balance(conn, account))


def withdraw(
    store: Store, ctx: Ctx, account: str, amount: Decimal, destination: str, ref: str | None = None
) -> CashMoved:
    """Book a withdrawal. With a reference, the same withdrawal again (a retry) is the first
    one, paid once (CashMoved.duplicate); the reference with other terms is refused."""
    if amount <= 0:
        raise Refused("withdrawal", f"amount {dec_str(amount)} must be greater than zero", "amount")
    ref = _movement_ref(ref)
    with store.write() as conn:
        acct = get_account(conn, account)
        _check_minor_units("withdrawal", amount, acct.currency)
        again = _booked_ref(conn, account, "withdrawal", ref, amount, destination=destination)
        if again is not None:
            return again
        ctx = _cash_clock(conn, ctx, account, "withdrawal")
        before = cash_balance(conn, account)
        if amount > before.available:
            raise Refused(
                f"withdrawal of {dec_str(amount)} {acct.currency} from {account}",
                f"available cash is {dec_str(before.available)} {acct.currency}",
                "insufficient_cash",
            )
        if acct.type is AccountType.CASH:
            free = withdrawable_cash(
                conn, account, acct.currency, settled_through(ctx.now), before.available
            )
            if amount > free:
                raise Refused(
                    f"withdrawal of {dec_str(amount)} {acct.currency} from {account}",
                    f"available cash is {dec_str(before.available)} {acct.currency}, of which "
                    f"{dec_str(free)} can be paid out today: the rest is the proceeds of sales "
                    "not settled yet, or held for purchases that settle before them",
                    "unsettled_cash",
                )
        entry = ledger.withdrawal(account, acct.currency, amount, ctx.now.date(), destination, ref)
        (entry_id,) = post_entries(conn, ctx, [entry])
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="cash.withdraw",
            entity_type="account",
            entity_id=account,
            payload={
                "entry_id": entry_id,
                "amount": amount,
                "currency": acct.currency,
                "destination": destination,
                "ref": ref,
            },
        )
        return CashMoved(entry_id, cash_balance(conn, account))


# ---- settlement cycles ---------------------------------------------------------------------

SETTLEMENT_PREFIX = "settlement-days."  # settings: settlement-days.<EXCHANGE> = sessions
MAX_SETTLEMENT_DAYS = 10


def settlement_days(conn: Connection, exchange: str) -> int:
    """The settlement cycle of an exchange in sessions after the trade date: its setting, else
    T+1 (calendars.DEFAULT_SETTLEMENT_DAYS: the contract's default; US, Canadian and Mexican
    markets settle T+1, most others T+2 until they move, which `instrument settlement set`
    records)."""
    return settlement_cycles(conn).get(canonical_exchange(exchange), DEFAULT_SETTLEMENT_DAYS)


def settlement_cycles(conn: Connection) -> dict[str, int]:
    """The exchanges whose settlement cycle is set, with it, by their calendars' own codes
    (read once in a transaction: tx_memo)."""

    def read() -> dict[str, int]:
        s = settings.c
        rows = conn.execute(
            select(s.key, s.value).where(s.key.startswith(SETTLEMENT_PREFIX)).order_by(s.key)
        )
        return cycles_from((str(k), str(v)) for k, v in rows)

    return dict(remembered(conn, "settlement_cycles", read))


def cycles_from(items: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Settlement cycles from their settings (`settlement-days.<EXCHANGE>`, value), by the
    calendar's own code: a cycle set for XLON is LSE's too (instruments may name the exchange
    either way; a cycle set under LSE served only the instruments added as LSE). Set under
    both names, the code's own wins."""
    out: dict[str, int] = {}
    for key, value in sorted(items, key=lambda kv: kv[0]):
        if not key.startswith(SETTLEMENT_PREFIX):
            continue
        name = key[len(SETTLEMENT_PREFIX) :]
        code = canonical_exchange(name)
        if name == code or code not in out:
            out[code] = int(value)
    return out


def set_settlement_days(store: Store, ctx: Ctx, exchange: str, days: str) -> tuple[str, int]:
    """Set an exchange's settlement cycle (audited); it dates the settlement of every trade
    booked from then on (trades booked before keep theirs). Returns the calendar's own code
    it is kept under, and the cycle."""
    exchange = canonical_exchange(exchange)  # (LSE's cycle is XLON's: one calendar)
    if not (days.isascii() and days.isdigit()) or not 0 <= int(days) <= MAX_SETTLEMENT_DAYS:
        raise BadInput(
            "settlement days",
            f"{days!r}: give the sessions from trade date to settlement, 0 to "
            f"{MAX_SETTLEMENT_DAYS} (2 for T+2)",
        )
    with store.write() as conn:
        put_setting(
            conn,
            ctx,
            SETTLEMENT_PREFIX + exchange,
            str(int(days)),
            default=str(DEFAULT_SETTLEMENT_DAYS),
        )
    return exchange, int(days)
