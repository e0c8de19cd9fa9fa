"""The order book at the edge: submissions and cancels as business events. Each command is one
transaction holding the book lock: the order's transitions, its fills booked as executions with
their cash journal entry, the order's events and the audit event commit together or not at all.

The decisions are the pure core's: oms.orders (the lifecycle), oms.risk (pre-trade checks).
This module loads their inputs, runs the built-in paper venue, and stores what they decided.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import re
import sys
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from functools import partial
from json.encoder import encode_basestring
from types import SimpleNamespace
from typing import Any, NamedTuple, get_args, overload

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Select,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    text,
)

from oms import audit, book, fix, ledger, lots, md_book, orders, paper, risk, risk_limits, tabular
from oms import marketdata as md
from oms.book import Ctx
from oms.calendars import (
    ALWAYS_OPEN,
    MAX_SETTLEMENT_SPAN,
    exchange_zone,
    next_close,
    next_session_label,
    session_bounds,
    session_break,
    session_label,
    settlement_date,
    trade_date,
    trading_at,
)
from oms.errors import BadInput, NotFound, PartlyDone, Refused, RowError, TieoutError
from oms.interrupts import caused_by_interrupt, interrupts_held
from oms.orders import ClientOrderId, Order, OrderId, OrderStatus, SubmitOrder, Transition
from oms.ranked import RankedSums
from oms.schema import (
    PRICED_EACH_INDEX,
    PRICED_EACH_WHERE,
    RESTING_WHERE,
    executions,
    imports,
    journal_postings,
    market_bars,
    order_client_ids,
    order_events,
    order_state_parts,
    order_totals,
    paper_bar_takes,
    refused_reports,
    running_sums,
)
from oms.schema import instruments as instruments_table
from oms.schema import orders as orders_table
from oms.store import Store, database_errors, database_reason, next_id
from oms.values import (
    AccountId,
    AccountType,
    ExecId,
    OrdType,
    Side,
    Symbol,
    TimeInForce,
    Venue,
    dec_str,
    is_decimal_text,
    parse_date,
    parse_decimal,
    parse_ident,
    printable,
    utc_iso,
    utc_iso_fast,
)

PAPER = orders.PAPER
LIVE_STATUSES = tuple(s.value for s in OrderStatus if not s.terminal)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What `tieout order submit` asks for (values parsed at the edge)."""

    account: str
    symbol: str
    side: Side
    quantity: Decimal
    type: OrdType = OrdType.MARKET
    tif: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    expire_at: date | None = None
    client_order_id: str | None = None
    venue: str = PAPER


@dataclass(frozen=True, slots=True)
class Submitted:
    order: Order
    duplicate: bool


class RiskRejected(Refused):
    """The order was recorded as rejected by the pre-trade checks (exit 4)."""

    def __init__(self, order: Order, result: risk.RiskResult) -> None:
        self.order, self.result = order, result
        reasons = "; ".join(f.message for f in result.failures)
        super().__init__(f"order {order.order_id} ({order.client_order_id})", reasons, "risk")


# ---- the Order value as stored JSON ---------------------------------------------------------


def order_state(order: Order, submitted: str | None = None) -> str:
    """The Order as stored: the text `audit.canonical_json(order)` gives (sorted keys, no
    spaces, decimals and times as strings), written field by field with the json module's own
    string escaper: this runs for every order (tests/unit/test_order_state.py and
    test_submission_fast_paths.py compare it with canonical_json). `submitted`:
    `submitted_text(order.submitted)` when the caller has it already. An order whose fills or
    history has STATE_PART_ITEMS entries or more is stored in parts instead (`stored_state`)."""
    return _state_text(
        order,
        _items_text(order.order_id, "fills", order.fills, _fill_text),
        _items_text(order.order_id, "history", order.history, _entry_text),
        "",
        submitted,
    )


def _items_text(
    order_id: str, name: str, items: tuple[Any, ...], text_of: Callable[[Any], str]
) -> str:
    if len(items) < _LONG:
        return ",".join(map(text_of, items))
    return _list_text(order_id, name, items, text_of)


def _state_text(
    order: Order, fills: str, history: str, parts: str, submitted: str | None = None
) -> str:
    q = _json_str
    pending = "null" if order.pending is None else _STATE_JSON(_pending_json(order.pending))
    if submitted is None:
        submitted = submitted_text(order.submitted)
    return (
        f'{{"account":{q(order.account)},"avg_px":{_opt_dec(order.avg_px)},'
        f'"client_order_id":{q(order.client_order_id)},"condition":{_opt_str(order.condition)},'
        f'"created_at":"{utc_iso_fast(order.created_at)}","cum_qty":"{dec_str(order.cum_qty)}",'
        f'"expire_at":{_opt_date(order.expire_at)},"fills":[{fills}],"history":[{history}],'
        f'"leaves_qty":"{dec_str(order.leaves_qty)}","limit_price":{_opt_dec(order.limit_price)},'
        f'"order_id":{q(order.order_id)},{parts}"pending":{pending},'
        f'"quantity":"{dec_str(order.quantity)}","reject_reason":{_opt_str(order.reject_reason)},'
        f'"side":{q(order.side)},"status":{q(order.status)},'
        f'"stop_price":{_opt_dec(order.stop_price)},"submitted":{submitted},'
        f'"symbol":{q(order.symbol)},"tif":{q(order.tif)},"type":{q(order.type)},'
        f'"updated_at":"{utc_iso_fast(order.updated_at)}","venue":{q(order.venue)}}}'
    )


# ---- a long order's state in parts ----------------------------------------------------------
#
# An order's fills and history only grow (a correction changes one fill, a bust takes one out),
# and an algorithm's day of drop copies gives one order thousands of them: its whole state,
# written again at every report, cost more with every fill (about a megabyte at 5,000 fills,
# journaled at each commit). A list of STATE_PART_ITEMS entries or more keeps its full chunks of
# STATE_PART_ITEMS in order_state_parts and the rest (its tail) in the state, which names the
# chunks by the digests of their text: `"parts":{"fills":[digest, ...],"history":[...]}`. A
# report then writes the order's small state and only the chunks that are new or changed.

STATE_PART_ITEMS = 256


class StatePart(NamedTuple):
    """A chunk of an order's list as stored."""

    part: str  # fills | history
    seq: int
    digest: str
    text: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.part, self.seq)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# the chunks written or read lately, by (order id, part, seq): their entries (the same objects,
# checked by identity) and what they were stored as
_KEPT_CHUNKS: dict[tuple[str, str, int], tuple[tuple[Any, ...], StatePart]] = {}
_KEEP_CHUNKS = 4_096


def _chunk(
    order_id: str, name: str, seq: int, items: tuple[Any, ...], text_of: Callable[[Any], str]
) -> StatePart:
    key = (order_id, name, seq)
    with _KEPT_LOCK:
        kept = _KEPT_CHUNKS.get(key)
    if kept is not None and len(kept[0]) == len(items) and all(map(operator.is_, kept[0], items)):
        return kept[1]
    text = ",".join(map(text_of, items))
    part = StatePart(name, seq, _digest(text), text)
    with _KEPT_LOCK:
        _KEPT_CHUNKS.pop(key, None)
        if len(_KEPT_CHUNKS) >= _KEEP_CHUNKS:
            del _KEPT_CHUNKS[next(iter(_KEPT_CHUNKS))]
        _KEPT_CHUNKS[key] = (items, part)
    return part


def _in_parts(order: Order) -> bool:
    return len(order.fills) >= STATE_PART_ITEMS or len(order.history) >= STATE_PART_ITEMS


def stored_state(order: Order) -> tuple[str, tuple[StatePart, ...]]:
    """The Order as `_store_order` writes it: its state text and the chunks of its lists kept
    apart (none for an order with fewer than STATE_PART_ITEMS fills and history entries: its
    text is then `order_state`'s, the canonical JSON)."""
    if not _in_parts(order):
        return order_state(order), ()
    size = STATE_PART_ITEMS
    chunks: list[StatePart] = []
    named: dict[str, list[str]] = {}
    tails: dict[str, str] = {}
    lists = (("fills", order.fills, _fill_text), ("history", order.history, _entry_text))
    for name, items, text_of in lists:
        whole = len(items) // size
        for seq in range(whole):
            part = _chunk(order.order_id, name, seq, items[seq * size : (seq + 1) * size], text_of)
            chunks.append(part)
            named.setdefault(name, []).append(part.digest)
        tails[name] = _items_text(order.order_id, name, items[whole * size :], text_of)
    parts = f'"parts":{_STATE_JSON(named)},'
    return _state_text(order, tails["fills"], tails["history"], parts), tuple(chunks)


_PARTS_OF = (
    select(order_state_parts.c.part, order_state_parts.c.seq, order_state_parts.c.digest)
    .where(order_state_parts.c.order_id == bindparam("b_order_id"))
    .order_by(order_state_parts.c.part, order_state_parts.c.seq)
)
_PART_TEXTS_OF = _PARTS_OF.add_columns(order_state_parts.c.text)
_PART_DELETE = order_state_parts.delete().where(
    order_state_parts.c.order_id == bindparam("b_order_id"),
    order_state_parts.c.part == bindparam("b_part"),
    order_state_parts.c.seq == bindparam("b_seq"),
)


def _write_parts(
    conn: Connection, order_id: str, chunks: Sequence[StatePart], before: Order | None
) -> None:
    """Store `chunks` as the order's parts: those new or changed since what is stored are
    written, those stored and no longer named (a bust shortened the list) deleted."""
    if before is None or not _in_parts(before):
        stored: dict[tuple[str, int], str] = {}  # a state of fewer entries has no parts
    else:
        stored = {(p, int(n)): d for p, n, d in conn.execute(_PARTS_OF, {"b_order_id": order_id})}
    wanted = {c.key: c for c in chunks}
    gone = [k for k, d in stored.items() if k not in wanted or wanted[k].digest != d]
    if gone:
        conn.execute(
            _PART_DELETE, [{"b_order_id": order_id, "b_part": p, "b_seq": n} for p, n in gone]
        )
    new = [c for k, c in wanted.items() if stored.get(k) != c.digest]
    if new:
        conn.execute(
            order_state_parts.insert(),
            [
                {"order_id": order_id, "part": p, "seq": n, "digest": d, "text": t}
                for p, n, d, t in new
            ],
        )


def _joined(conn: Connection | None, state: dict[str, Any], named: dict[str, list[str]]) -> None:
    """Put an order's stored chunks back in front of its lists' tails, each checked against
    the digest the state names it by (ValueError when they differ: the book is damaged)."""
    order_id = state["order_id"]
    if conn is None:
        raise ValueError(f"order {order_id}: its state is stored in parts; no connection given")
    found: dict[str, list[tuple[int, str, str]]] = {}
    for p, n, d, t in conn.execute(_PART_TEXTS_OF, {"b_order_id": order_id}):
        found.setdefault(p, []).append((int(n), d, t))
    for name in ("fills", "history"):
        names = named.get(name, [])
        rows = found.pop(name, [])
        stored = [(n, d) for n, d, _ in rows]
        if stored != list(enumerate(names)) or any(_digest(t) != d for _, d, t in rows):
            raise ValueError(
                f"order {order_id}: the stored chunks of its {name} are not those its state "
                f"names ({len(rows)} stored, {len(names)} named, or a chunk's text changed)"
            )
        if rows:
            state[name] = json.loads("[" + ",".join(t for _, _, t in rows) + "]") + state[name]
    if found:
        raise ValueError(f"order {order_id}: stored chunks of unknown lists {sorted(found)}")


def _fill_text(f: orders.Fill) -> str:
    q = _json_str
    return (
        f'[{q(f.exec_id)},"{dec_str(f.quantity)}","{dec_str(f.price)}",'
        f'"{utc_iso_fast(f.at)}",[{",".join(map(q, f.corrected_by))}]]'
    )


def _entry_text(h: orders.HistoryEntry) -> str:
    q = _json_str
    return f'[{q(h.status)},"{utc_iso_fast(h.at)}",{q(h.actor)},{_opt_str(h.reason)},{q(h.event)}]'


# An order with many fills (a drop copy of an algorithm's day) is written again for each report
# that changes it: its fills' and history's text is kept (the last few orders'), and a list
# that only grew since (the same objects, more at the end) has just its new items written.
_LONG = 64
_KEPT_LISTS: dict[tuple[str, str], tuple[tuple[Any, ...], str]] = {}


def _list_text(
    order_id: str, name: str, items: tuple[Any, ...], text_of: Callable[[Any], str]
) -> str:
    key = (order_id, name)
    with _KEPT_LOCK:
        kept = _KEPT_LISTS.pop(key, None)
    text = None
    if kept is not None:
        before, written = kept
        n = len(before)
        if n <= len(items) and all(map(operator.is_, before, items)):
            text = written + "".join("," + text_of(x) for x in items[n:])
    if text is None:
        text = ",".join(map(text_of, items))
    with _KEPT_LOCK:
        if len(_KEPT_LISTS) >= 2 * _KEEP_STATES:
            del _KEPT_LISTS[next(iter(_KEPT_LISTS))]
        _KEPT_LISTS[key] = (items, text)
    return text


# the json module's escaper of a string as its encoder writes it with ensure_ascii=False (a str
# subclass, such as a StrEnum member, is written as its text)
_json_str: Callable[[str], str] = encode_basestring


def _opt_str(v: str | None) -> str:
    return "null" if v is None else _json_str(v)


def _opt_dec(v: Decimal | None) -> str:
    return "null" if v is None else f'"{dec_str(v)}"'  # digits, "-" and ".": nothing to escape


def _opt_date(v: date | None) -> str:
    return "null" if v is None else f'"{v.isoformat()}"'


def submitted_text(c: SubmitOrder) -> str:
    """canonical_json of a SubmitOrder (its field names sorted, values as the hook gives them)."""
    q = _json_str
    return (
        f'{{"account":{q(c.account)},"client_order_id":{q(c.client_order_id)},'
        f'"expire_at":{_opt_date(c.expire_at)},"limit_price":{_opt_dec(c.limit_price)},'
        f'"order_id":{q(c.order_id)},"quantity":"{dec_str(c.quantity)}",'
        f'"reason":{_opt_str(c.reason)},"side":{q(c.side)},'
        f'"stop_price":{_opt_dec(c.stop_price)},"symbol":{q(c.symbol)},"tif":{q(c.tif)},'
        f'"type":{q(c.type)},"venue":{q(c.venue)}}}'
    )


# the order event payload of a command with only a reason (a reject: and its risk codes)
_REASON_ONLY: dict[Any, str] = {}  # command -> its payload text


def command_payload(command: Any, submitted: str | None = None) -> str:
    """An order event's payload: the text of `audit.canonical_json({"command": <class name>,
    "terms": command})`, faster for the commands every order goes through (a submit, with
    `submitted_text` of it when the caller has it; a fill; a command with only a reason)."""
    kind = type(command)
    if kind is SubmitOrder:
        terms = submitted_text(command) if submitted is None else submitted
        return f'{{"command":"SubmitOrder","terms":{terms}}}'
    if kind is orders.ApplyFill:  # its terms' names in sorted order, as canonical_json
        return (
            f'{{"command":"ApplyFill","terms":{{"exec_id":{_json_str(command.exec_id)},'
            f'"price":"{dec_str(command.price)}","quantity":"{dec_str(command.quantity)}",'
            f'"reason":{_opt_str(command.reason)}}}}}'
        )
    if kind in _REASON_ONLY_KINDS:
        key = command  # frozen and hashable; equal only to a command of its own class
        text = _REASON_ONLY.get(key)
        if text is None:
            if len(_REASON_ONLY) >= 256:
                _REASON_ONLY.clear()
            text = _REASON_ONLY[key] = audit.canonical_text(
                {"command": kind.__name__, "terms": command}
            )
        return text
    return audit.canonical_text({"command": kind.__name__, "terms": command})


_REASON_ONLY_KINDS = frozenset(
    k
    for k in (
        orders.AcknowledgeOrder,
        orders.RejectOrder,
        orders.ConfirmPendingCancel,
        orders.RejectCancel,
        orders.ConfirmPendingReplace,
        orders.RejectReplace,
        orders.Expire,
        orders.MarkDoneForDay,
        orders.Suspend,
    )
    if tuple(f.name for f in dataclasses.fields(k)) == ("reason",)
)


_STATE_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=audit._json_default
).encode


def _opt_text(v: Decimal | None) -> str | None:
    return None if v is None else dec_str(v)


def _pending_json(p: orders.PendingRequest) -> dict[str, Any]:
    return {
        "client_order_id": p.client_order_id,
        "kind": p.kind,
        "limit_price": _opt_text(p.limit_price),
        "quantity": _opt_text(p.quantity),
        "requested_at": utc_iso_fast(p.requested_at),
        "stop_price": _opt_text(p.stop_price),
        "under": None if p.under is None else _pending_json(p.under),
    }


def _pending(d: dict[str, Any] | None) -> orders.PendingRequest | None:
    """An open request as stored (`under`: absent from states stored before chaining)."""
    if d is None:
        return None
    return orders.PendingRequest(
        kind=orders.RequestKind(d["kind"]),
        requested_at=_time(d["requested_at"]),
        client_order_id=d["client_order_id"],
        quantity=_dec(d["quantity"]),
        limit_price=_dec(d["limit_price"]),
        stop_price=_dec(d["stop_price"]),
        under=_pending(d.get("under")),
    )


def _dec(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)


def _time(v: str) -> datetime:
    return datetime.fromisoformat(v)


def _submit(d: dict[str, Any]) -> SubmitOrder:
    return SubmitOrder(
        order_id=OrderId(d["order_id"]),
        client_order_id=ClientOrderId(d["client_order_id"]),
        account=AccountId(d["account"]),
        symbol=Symbol(d["symbol"]),
        side=Side(d["side"]),
        quantity=Decimal(d["quantity"]),
        type=OrdType(d["type"]),
        tif=TimeInForce(d["tif"]),
        limit_price=_dec(d["limit_price"]),
        stop_price=_dec(d["stop_price"]),
        expire_at=None if d["expire_at"] is None else date.fromisoformat(d["expire_at"]),
        venue=Venue(d["venue"]),
        reason=d["reason"],
    )


def load_state(text: str, conn: Connection | None) -> Order:
    """Rebuild an Order from its stored JSON (the Order constructor re-checks consistency);
    `conn` reads the chunks of a long order's lists (`stored_state`) in the same transaction.
    The last few states read or stored (`remember_state`) are kept by their text: an order
    with thousands of fills (a drop copy of an algorithm's day) is read for every report
    that changes it, and rebuilding it from its text took the most of each report's time,
    growing with the fills before it (2.3 ms a report at 500 fills, 35 ms at 2,300). The same
    text gives the same Order (frozen: shared safely)."""
    found = _KEPT_STATES.get(text)
    if found is not None:
        return found
    order = _load_state(text, conn)
    remember_state(text, order)
    return order


# the last states read or written, by their text (insertion order: the oldest is dropped)
_KEPT_STATES: dict[str, Order] = {}
_KEEP_STATES = 8
_KEPT_LOCK = threading.Lock()


def remember_state(text: str, order: Order) -> None:
    """Keep `order` as what `text` (its `order_state`) reads back as."""
    kept = _KEPT_STATES
    with _KEPT_LOCK:  # a program may work the book from several threads
        kept.pop(text, None)
        if len(kept) >= _KEEP_STATES:
            del kept[next(iter(kept))]
        kept[text] = order


def _load_state(text: str, conn: Connection | None) -> Order:
    d = json.loads(text)
    named = d.pop("parts", None)
    if named:
        _joined(conn, d, named)
    pending = d["pending"]
    return Order(
        order_id=OrderId(d["order_id"]),
        client_order_id=ClientOrderId(d["client_order_id"]),
        account=AccountId(d["account"]),
        symbol=Symbol(d["symbol"]),
        side=Side(d["side"]),
        type=OrdType(d["type"]),
        tif=TimeInForce(d["tif"]),
        quantity=Decimal(d["quantity"]),
        limit_price=_dec(d["limit_price"]),
        stop_price=_dec(d["stop_price"]),
        expire_at=None if d["expire_at"] is None else date.fromisoformat(d["expire_at"]),
        venue=Venue(d["venue"]),
        status=OrderStatus(d["status"]),
        condition=None if d["condition"] is None else OrderStatus(d["condition"]),
        cum_qty=Decimal(d["cum_qty"]),
        leaves_qty=Decimal(d["leaves_qty"]),
        avg_px=_dec(d["avg_px"]),
        pending=_pending(pending),
        fills=tuple(
            orders.Fill(
                ExecId(f[0]),
                Decimal(f[1]),
                Decimal(f[2]),
                _time(f[3]),
                tuple(ExecId(x) for x in f[4]),
            )
            for f in d["fills"]
        ),
        reject_reason=d["reject_reason"],
        created_at=_time(d["created_at"]),
        updated_at=_time(d["updated_at"]),
        history=tuple(
            orders.HistoryEntry(OrderStatus(h[0]), _time(h[1]), h[2], h[3], orders.Event(h[4]))
            for h in d["history"]
        ),
        submitted=_submit(d["submitted"]),
    )


# ---- reading ---------------------------------------------------------------------------------


class AmbiguousClientOrderId(BadInput):
    """A client order id that orders of several accounts have: which order is meant cannot be
    told (exit 3, a reference that needs the account); the account must be named."""

    def __init__(self, client_order_id: str) -> None:
        super().__init__(
            f"client order id {client_order_id!r}",
            "orders of several accounts have it: name the account (--account)",
        )


def find(
    conn: Connection,
    order_id: str | None = None,
    *,
    account: str | None = None,
    client_order_id: str | None = None,
) -> Order:
    """An order by its id, or by a client order id (any it has had) of an account. An order
    id with an account must be that account's order (NotFound otherwise: an operator who names
    the account relies on it)."""
    if order_id is None:
        if client_order_id is None:
            raise NotFound("order", "(no id given)")
        if account is None:
            found = conn.execute(_IDS_OF_CLIENT_ID, {"b_client_id": client_order_id})
        else:
            found = conn.execute(
                _ID_OF_CLIENT_ID, {"b_client_id": client_order_id, "b_account": account}
            )
        ids = list(found.scalars())
        if len(ids) > 1:
            raise AmbiguousClientOrderId(client_order_id)
        if not ids:
            raise NotFound("order with client order id", client_order_id)
        order_id = ids[0]
    state = conn.execute(_STATE_OF, {"b_order_id": order_id}).scalar()
    if state is None:
        raise NotFound("order", order_id)
    order = load_state(state, conn)
    if account is not None and order.account != account:
        raise NotFound(f"order {order_id} in account", account)
    return order


def find_many(conn: Connection, order_ids: Sequence[str]) -> dict[str, Order]:
    """Orders by their ids, in one statement a thousand at a time (those not found are left
    out)."""
    out: dict[str, Order] = {}
    for at in range(0, len(order_ids), 1000):
        rows = conn.execute(_STATES_OF, {"b_order_ids": list(order_ids[at : at + 1000])})
        out.update((order_id, load_state(state, conn)) for order_id, state in rows)
    return out


# the statements of every order change, built once (parameters, not values: SQLAlchemy then
# finds each compiled in its cache without building and keying a new statement each time)
_STATE_OF = select(orders_table.c.state).where(orders_table.c.order_id == bindparam("b_order_id"))
_STATES_OF = select(orders_table.c.order_id, orders_table.c.state).where(
    orders_table.c.order_id.in_(bindparam("b_order_ids", expanding=True))
)
_ORDER_UPDATE = orders_table.update().where(orders_table.c.order_id == bindparam("b_order_id"))
_CLIENT_IDS_OF = select(order_client_ids.c.client_order_id).where(
    order_client_ids.c.order_id == bindparam("b_order_id")
)
_IDS_OF_CLIENT_ID = select(order_client_ids.c.order_id).where(
    order_client_ids.c.client_order_id == bindparam("b_client_id")
)
_ID_OF_CLIENT_ID = _IDS_OF_CLIENT_ID.where(order_client_ids.c.account == bindparam("b_account"))
_EXECUTION_BY_EXEC_ID = select(executions.c.order_id, executions.c.source).where(
    executions.c.venue == bindparam("b_venue"), executions.c.exec_id == bindparam("b_exec_id")
)
# the order that applied a venue's ExecID (ix_order_events_exec_id), if any
_ORDER_OF_VENUE_EXEC = (
    select(order_events.c.order_id)
    .join(orders_table, orders_table.c.order_id == order_events.c.order_id)
    .where(
        order_events.c.exec_id.is_not(None),
        order_events.c.exec_id == bindparam("b_exec_id"),
        orders_table.c.venue == bindparam("b_venue"),
    )
    .limit(1)
)
_EVENT_OF_EXEC = select(order_events.c.payload).where(
    order_events.c.order_id == bindparam("b_order_id"),
    order_events.c.exec_id == bindparam("b_exec_id"),
)


def list_orders(
    conn: Connection, *, account: str | None = None, status: str | None = None
) -> list[Order]:
    o = orders_table.c
    q = select(o.state).order_by(o.created_at, o.order_id)
    if account is not None:
        q = q.where(o.account == account)
    if status is not None:
        q = q.where(o.status == status)
    return [load_state(s, conn) for s in conn.execute(q).scalars()]


LISTING_BATCH = 1_000  # rows fetched at a time by order_listing (PostgreSQL: a server cursor)


def order_listing(
    conn: Connection, *, account: str | None = None, status: str | None = None
) -> Iterator[dict[str, Any]]:
    """What `order list` shows of each order, oldest first (listed_order, as order_json shows
    it), made from the orders table's columns (the projection of each order's state, written in the
    same transaction as the state) rather than from the stored state, and read LISTING_BATCH
    rows at a time, so that listing a book of a million orders neither parses a million
    histories nor holds them all."""
    o = orders_table.c
    q = select(*(o[name] for name in _LISTED)).order_by(o.created_at, o.order_id)
    if account is not None:
        q = q.where(o.account == account)
    if status is not None:
        q = q.where(o.status == status)
    for r in conn.execution_options(yield_per=LISTING_BATCH).execute(q):
        yield listed_order(r)


# the orders table's columns order_listing reads, in order_json's order
_LISTED = (
    "order_id",
    "client_order_id",
    "account",
    "symbol",
    "side",
    "type",
    "tif",
    "quantity",
    "limit_price",
    "stop_price",
    "status",
    "cum_qty",
    "leaves_qty",
    "avg_px",
    "venue",
    "expire_at",
    "reject_reason",
    "created_at",
    "updated_at",
)


def listed_order(r: Any) -> dict[str, Any]:
    """What `order list` shows of an order, from its `_LISTED` columns: a row of the orders
    table (order_listing), or the order's own values (order_json)."""
    return {
        "order_id": r.order_id,
        "client_order_id": r.client_order_id,
        "account": r.account,
        "symbol": r.symbol,
        "side": r.side,
        "type": r.type,
        "tif": r.tif,
        "quantity": dec_str(r.quantity),
        "limit_price": None if r.limit_price is None else dec_str(r.limit_price),
        "stop_price": None if r.stop_price is None else dec_str(r.stop_price),
        "status": r.status,
        "cum_qty": dec_str(r.cum_qty),
        "leaves_qty": dec_str(r.leaves_qty),
        "avg_px": None if r.avg_px is None else dec_str(r.avg_px),
        "venue": r.venue,
        "expire_at": None if r.expire_at is None else r.expire_at.isoformat(),
        "reject_reason": r.reject_reason,
        "created_at": utc_iso(r.created_at),
        "updated_at": utc_iso(r.updated_at),
    }


def reservation_price(
    limit: Decimal | None,
    stop: Decimal | None,
    last: Callable[[], Decimal | None],
    buffer_pct: Decimal,
) -> Decimal:
    """The price a live buy order holds cash at (its leaves x this price), as the buying power
    check sized it (oms.risk.reservation): a limit or stop-limit order its limit; a stop order
    the higher of its stop and the last price, a market order the last price, both plus the
    market buffer (they may fill above the price seen now); zero for a market order without a
    last price. `last()` is asked only when needed. Pure but for `last`; the one formula of
    reserved_cash, _reservation and oms.submission; the basis and buffer are risk's own."""
    if limit is not None:
        return limit
    basis = risk.unit_basis(None, stop, last())
    return Decimal(0) if basis is None else risk.buffered(basis, False, buffer_pct)


def charge_held(
    terms: paper.PaperTerms,
    filled_quantity: Decimal,
    filled_notional: Decimal,
    leaves: Decimal,
    limit: Decimal | None,
    stop: Decimal | None,
    last: Callable[[], Decimal | None],
    *,
    currency: str,
) -> Decimal:
    """The paper venue's commission a live paper buy's leaves will still pay, at the price
    basis the buying power check charged it at (risk.unit_basis, no buffer): held with the
    order's cash, so that what the order will pay stays covered while it rests. Zero when the
    schedule charges nothing or the order has no price basis."""
    if not paper.charges(terms):
        return Decimal(0)
    basis = risk.unit_basis(limit, stop, last())
    if basis is None:
        return Decimal(0)
    return paper.fill_commission(
        terms, filled_quantity, filled_notional, leaves, basis, currency=currency
    )


def order_reservation(
    order: Order,
    last: Callable[[], Decimal | None],
    buffer_pct: Decimal,
    terms: paper.PaperTerms | None = None,
    *,
    currency: str,
) -> Decimal:
    """The cash a live buy order holds (in its instrument's `currency`): its leaves at
    reservation_price, and on the paper venue (given its `terms`) the commission they will pay
    (charge_held); while a replace is pending,
    the larger of that and the replace's new leaves at its new prices (the venue may accept the
    replace: until it answers, either may trade). Zero for a sell or a finished order. In
    the book's exact context, whatever the caller's."""
    if order.side is not Side.BUY or not order.live:
        return Decimal(0)
    with localcontext(lots.CONTEXT):
        return _order_reservation(order, last, buffer_pct, terms, currency)


def _order_reservation(
    order: Order,
    last: Callable[[], Decimal | None],
    buffer_pct: Decimal,
    terms: paper.PaperTerms | None,
    currency: str,
) -> Decimal:
    paid = terms if order.venue == PAPER else None

    def held(leaves: Decimal, limit: Decimal | None, stop: Decimal | None) -> Decimal:
        cash = leaves * reservation_price(limit, stop, last, buffer_pct)
        if paid is not None and leaves > 0:
            notional = orders.filled_notional(order.fills)
            cash += charge_held(
                paid, order.cum_qty, notional, leaves, limit, stop, last, currency=currency
            )
        return cash

    total = held(order.leaves_qty, order.limit_price, order.stop_price)
    p = None if order.pending is None else order.pending.replace  # (also under a cancel)
    if p is not None:
        leaves = _replace_leaves(order, p)
        limit = p.limit_price if p.limit_price is not None else order.limit_price
        stop = p.stop_price if p.stop_price is not None else order.stop_price
        total = max(total, held(leaves, limit, stop))
    return total


def open_quantity(order: Order) -> Decimal:
    """What a live order may still trade, as order_totals keep it for the position limit and a
    cash account's short-sale check: its leaves, and while a replace is open (pending_replace,
    or under a chained cancel) the larger of that and the replace's leaves (the venue may
    accept the replace: until it answers, either may trade), as order_reservation holds cash
    for it. Pure."""
    p = None if order.pending is None else order.pending.replace
    if p is None or p.quantity is None:
        return order.leaves_qty
    with localcontext(lots.CONTEXT):
        return max(order.leaves_qty, _replace_leaves(order, p))


def _replace_leaves(order: Order, p: orders.PendingRequest) -> Decimal:
    """What an open replace would leave the order to trade (its quantity, or the order's,
    less what filled; never below zero)."""
    quantity = p.quantity if p.quantity is not None else order.quantity
    return max(quantity - order.cum_qty, Decimal(0))


def _last_close(conn: Connection, symbol: str, through: datetime | None = None) -> Decimal | None:
    """The symbol's last price: the close of its latest bar (at or before `through`, when
    given: times are kept to the microsecond)."""
    last = md_book.last_price(conn, symbol, None if through is None else through + _MICROSECOND)
    return last[0] if last else None


_MICROSECOND = timedelta(microseconds=1)


# the live buy orders of an account in a currency (live_buy_holds)
_LIVE_BUYS = (
    select(
        orders_table.c.order_id,
        orders_table.c.symbol,
        orders_table.c.status,
        orders_table.c.leaves_qty,
        orders_table.c.limit_price,
        orders_table.c.stop_price,
        orders_table.c.venue,
        orders_table.c.cum_qty,
    )
    .join_from(orders_table, instruments_table, instruments_table.c.symbol == orders_table.c.symbol)
    .where(
        orders_table.c.account == bindparam("b_account"),
        orders_table.c.side == Side.BUY.value,
        orders_table.c.status.in_(LIVE_STATUSES),
        instruments_table.c.currency == bindparam("b_currency"),
    )
)


# the statuses of an order that may have a replace open: pending_replace, and pending_cancel
# (a cancel chained behind a replace: orders.PendingRequest.under); its hold is read from its
# stored value (live_buy_holds, oms.submission's priced-each query)
REPLACE_MAY_BE_OPEN = (OrderStatus.PENDING_REPLACE.value, OrderStatus.PENDING_CANCEL.value)


def live_buy_holds(
    conn: Connection,
    account: str,
    currency: str,
    last_of: dict[str, Decimal | None] | None = None,
    through: datetime | None = None,
) -> dict[str, Decimal]:
    """The cash each live buy order of the account in instruments that trade in `currency`
    holds (order_reservation), by order id, read from every such order: from its columns,
    or from its stored value while a replace is pending or when the paper commission counts
    what filled already. Their sum is reserved_cash (read from the order totals instead).
    `last_of`: the last price of each symbol, as read so far (filled in as needed); `through`:
    the last price as it stood then (a bar being worked: not a later bar's of the same import)."""
    held: dict[str, Decimal] = {}
    rows = conn.execute(_LIVE_BUYS, {"b_account": account, "b_currency": currency})
    buffer = risk_limits.load_limits(conn).market_buffer_pct
    terms = paper.load_terms(conn)
    charging = paper.charges(terms)
    whole: list[str] = []  # orders whose stored value is needed
    known = {} if last_of is None else last_of  # the last price of each symbol, read once

    def last(symbol: str) -> Decimal | None:
        if symbol not in known:
            known[symbol] = _last_close(conn, symbol, through)
        return known[symbol]

    with localcontext(lots.CONTEXT):
        for order_id, symbol, status, leaves, limit, stop, venue, cum in rows:
            charged = charging and venue == PAPER
            if status in REPLACE_MAY_BE_OPEN or (charged and cum > 0):
                # a replace's new terms count too (also one under a chained cancel); the paper
                # commission counts what filled already
                whole.append(order_id)
                continue
            last_price = partial(last, symbol)
            hold = leaves * reservation_price(limit, stop, last_price, buffer)
            if charged:  # nothing filled yet: the commission of the whole leaves
                hold += charge_held(
                    terms, Decimal(0), Decimal(0), leaves, limit, stop, last_price,
                    currency=currency,
                )  # fmt: skip
            held[order_id] = hold
        for at in range(0, len(whole), 500):
            ids = whole[at : at + 500]
            states = select(orders_table.c.state).where(orders_table.c.order_id.in_(ids))
            for state in conn.execute(states).scalars():
                order = load_state(state, conn)
                last_price = partial(last, order.symbol)
                held[order.order_id] = order_reservation(
                    order, last_price, buffer, terms, currency=currency
                )
    return held


# ---- order totals (schema.order_totals) ---------------------------------------------------------


def priced_each(order: Order) -> bool:
    """Whether a live buy order's hold is priced each time it is read (schema.PRICED_EACH_WHERE),
    not kept in order_totals: a market or stop order (no limit price: it holds at the last
    price), or one with a replace pending (the replace's new terms count too)."""
    return (
        order.live
        and order.side is Side.BUY
        and (order.limit_price is None or order.status is OrderStatus.PENDING_REPLACE)
    )


def _no_last() -> Decimal | None:
    return None


def standing(
    order: Order | None, terms: paper.PaperTerms, *, currency: str, leaves_only: bool = False
) -> tuple[Decimal | None, Decimal | None]:
    """What an order adds to its account's order_totals row (its symbol and side): the open
    quantity (a live order's open_quantity: its leaves, or an open replace's if more) and the
    cash held (a live buy's order_reservation in its instrument's `currency`, unless
    priced_each: a limit or stop-limit order's does not depend on the market); None where it
    adds nothing (a finished order; a sale or an order priced each time holds nothing kept).
    `leaves_only`: the open quantity as schema revision 0016 counted it (its downgrade). Pure."""
    if order is None or not order.live:
        return None, None
    open_qty = order.leaves_qty if leaves_only else open_quantity(order)
    if order.side is not Side.BUY or priced_each(order):
        return open_qty, None
    with localcontext(lots.CONTEXT):
        held = order_reservation(order, _no_last, Decimal(0), terms, currency=currency)
    return open_qty, held


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


Places = tuple[tuple[int, int], ...]  # (decimal places, live orders whose amount has them)


def _count(places: Places, value: Decimal | None, step: int) -> Places:
    if value is None:
        return places
    counts = dict(places)
    key = _places(value)
    counts[key] = counts.get(key, 0) + step
    return tuple(sorted((p, n) for p, n in counts.items() if n))


@dataclass(frozen=True, slots=True)
class Total:
    """One order_totals row: the sums, and how many of the live orders summed have amounts with
    each number of decimal places. The sums are shown with as many places as the live orders'
    amounts have (what adding them up gives), not as many as an order that ended had."""

    open_qty: Decimal = Decimal(0)
    held: Decimal = Decimal(0)
    open_places: Places = ()
    held_places: Places = ()

    def moved(
        self,
        before: tuple[Decimal | None, Decimal | None],
        after: tuple[Decimal | None, Decimal | None],
    ) -> Total:
        """The row after an order that added `before` (standing) adds `after`."""
        zero = Decimal(0)
        with localcontext(lots.CONTEXT):
            return Total(
                self.open_qty + (after[0] or zero) - (before[0] or zero),
                self.held + (after[1] or zero) - (before[1] or zero),
                _count(_count(self.open_places, before[0], -1), after[0], 1),
                _count(_count(self.held_places, before[1], -1), after[1], 1),
            )

    @property
    def empty(self) -> bool:
        return not self.open_places and not self.held_places

    def shown(self) -> tuple[Decimal, Decimal]:
        """(open quantity, held) with the places the live orders' amounts have."""
        return _in_places(self.open_qty, self.open_places), _in_places(self.held, self.held_places)


def _in_places(value: Decimal, places: Places) -> Decimal:
    """A sum with the most places of the amounts summed (exact: it has no more); zero when
    nothing is summed."""
    if not places:
        return Decimal(0)
    with localcontext(lots.CONTEXT):
        return value.quantize(Decimal(1).scaleb(-max(p for p, _ in places)))


def places_text(places: Places) -> str:
    """As stored: "2:3,6:1" (3 orders' amounts with 2 places, 1 with 6)."""
    return ",".join(f"{p}:{n}" for p, n in places)


def parse_places(text: str) -> Places:
    return tuple((int(p), int(n)) for p, n in (item.split(":") for item in text.split(",") if item))


def total_of(open_qty: Decimal, held: Decimal, open_places: str, held_places: str) -> Total:
    return Total(open_qty, held, parse_places(open_places), parse_places(held_places))


Totals = dict[tuple[str, str, str], Total]  # (account, symbol, side) -> its row


def stored_totals(conn: Connection) -> Totals:
    """The order_totals rows as stored."""
    t = order_totals.c
    return {
        (r.account, r.symbol, r.side): total_of(r.open_qty, r.held, r.open_places, r.held_places)
        for r in conn.execute(
            select(t.account, t.symbol, t.side, t.open_qty, t.held, t.open_places, t.held_places)
        )
    }


def computed_totals(conn: Connection, *, leaves_only: bool = False) -> Totals:
    """The order totals as the live orders make them now (reads every live order); `standing`
    says what `leaves_only` is."""
    terms = paper.load_terms(conn)
    o, i = orders_table.c, instruments_table.c
    out: Totals = {}
    rows = conn.execute(
        select(o.state, i.currency)
        .join_from(orders_table, instruments_table, i.symbol == o.symbol)
        .where(o.status.in_(LIVE_STATUSES))
    )
    for state, currency in rows:
        order = load_state(state, conn)
        key = (order.account, order.symbol, order.side.value)
        added = standing(order, terms, currency=currency, leaves_only=leaves_only)
        out[key] = out.get(key, Total()).moved((None, None), added)
    return {key: total for key, total in out.items() if not total.empty}


def totals_drift(conn: Connection) -> list[str]:
    """Where the stored order totals differ from what the live orders make them (a row
    missing counts as none): empty when they agree."""
    stored, computed = stored_totals(conn), computed_totals(conn)
    out = []
    for key in sorted(stored.keys() | computed.keys()):
        have, want = stored.get(key, Total()), computed.get(key, Total())
        if have != want:
            account, symbol, side = key
            out.append(
                f"order totals of {account} {symbol} {side}: stored open "
                f"{dec_str(have.open_qty)} held {dec_str(have.held)} "
                f"({places_text(have.open_places)}; {places_text(have.held_places)}), the live "
                f"orders make open {dec_str(want.open_qty)} held {dec_str(want.held)} "
                f"({places_text(want.open_places)}; {places_text(want.held_places)})"
            )
    return out


def kept_sums_drift(conn: Connection) -> list[str]:
    """Where a kept running sum (running_sums) differs from the rows it sums up to its row id:
    a cash sum from its postings, a position from the account's executions in the symbol
    (corrections and busts resolved, as positions resolve them). Empty when they agree. The
    kept sums are a cache of the append-only record that cash balances and the pre-trade
    checks read: a change made to one behind tieout's back is found here."""
    from oms import executions as executions_book  # builds on the book

    rs, jp = running_sums.c, journal_postings.c
    out = []
    rows = conn.execute(
        select(rs.kind, rs.owner, rs.item, rs.through_id, rs.total).order_by(
            rs.kind, rs.owner, rs.item
        )
    ).all()
    with localcontext(lots.CONTEXT):
        for kind, owner, item, through, total in rows:
            if kind == book.RUNNING_CASH:
                amounts = conn.execute(
                    select(jp.amount).where(
                        jp.ledger_account == owner, jp.currency == item, jp.posting_id <= through
                    )
                ).scalars()
                want = sum(amounts, Decimal(0))
            else:  # a position: owner the account, item the symbol
                recs = executions_book.records(
                    conn, account=owner, symbol=item, through_id=through
                )
                want = lots.net_quantity(recs)
            if want != total:
                out.append(
                    f"kept {kind} sum of {owner} {item} up to row {through}: stored "
                    f"{dec_str(total)}, the record makes {dec_str(want)}"
                )
    return out


def _total_row(total: Total) -> dict[str, Any]:
    return {
        "open_qty": total.open_qty,
        "held": total.held,
        "open_places": places_text(total.open_places),
        "held_places": places_text(total.held_places),
    }


def rebuild_totals(conn: Connection, *, leaves_only: bool = False) -> None:
    """Make order_totals again from the live orders (inside the caller's transaction, under the
    book lock): when the terms they were computed with change, and to fill the table first
    (`leaves_only`: as schema revision 0016 counted them, for its downgrade)."""
    conn.execute(order_totals.delete())
    rows = [
        {"account": a, "symbol": s, "side": d, **_total_row(total)}
        for (a, s, d), total in sorted(computed_totals(conn, leaves_only=leaves_only).items())
    ]
    if rows:
        conn.execute(order_totals.insert(), rows)


def set_paper_term(store: Store, ctx: Ctx, name: str, text: str) -> paper.PaperTerms:
    """Change one of the paper venue's terms (paper.set_term) and, in the same transaction,
    make the order totals again: the commission a live paper buy holds is computed with them."""
    return paper.set_term(store, ctx, name, text, then=rebuild_totals)


def _adjust_totals(conn: Connection, before: Order | None, after: Order) -> None:
    """Move the order's order_totals row from what `before` added to what `after` adds.
    `before` is the order as stored (_store_order reads it under the lock, not the caller's
    copy): the row moves from what the table holds, whatever the caller loaded when."""
    if not after.live and (before is None or not before.live):
        return
    currency = book.get_instrument(conn, after.symbol).currency
    terms = paper.load_terms(conn)
    new, old = standing(after, terms, currency=currency), standing(before, terms, currency=currency)
    if new == old:
        return
    key = {"b_account": after.account, "b_symbol": after.symbol, "b_side": after.side.value}
    row = conn.execute(_TOTAL_OF, key).first()
    kept = total_of(*row) if row is not None else Total()
    moved = kept.moved(old, new)
    if moved.empty:  # no live order left in it: no row (what no live order reads as)
        if row is not None:
            conn.execute(_TOTAL_DELETE, key)
    elif row is None:
        conn.execute(
            order_totals.insert(),
            {
                "account": after.account,
                "symbol": after.symbol,
                "side": after.side.value,
                **_total_row(moved),
            },
        )
    else:
        conn.execute(_TOTAL_UPDATE, {**key, **_total_row(moved)})


_TOTAL_KEY = (
    order_totals.c.account == bindparam("b_account"),
    order_totals.c.symbol == bindparam("b_symbol"),
    order_totals.c.side == bindparam("b_side"),
)
_TOTAL_OF = select(
    order_totals.c.open_qty,
    order_totals.c.held,
    order_totals.c.open_places,
    order_totals.c.held_places,
).where(*_TOTAL_KEY)
_TOTAL_DELETE = order_totals.delete().where(*_TOTAL_KEY)
_TOTAL_UPDATE = order_totals.update().where(*_TOTAL_KEY)


def reserved_cash(conn: Connection, account: str, currency: str) -> Decimal:
    """Cash in `currency` held for the account's live buy orders in instruments that trade in
    it (order_reservation: as the buying power check sized them). No FX: an order reserves cash
    in its instrument's currency only. Read from the account's order_totals (the holds they
    keep) plus the buys priced each time (priced_each); live_buy_holds gives the same per
    order."""
    t, i = order_totals.c, instruments_table.c
    kept = [
        total_of(*row).shown()[1]
        for row in conn.execute(
            select(t.open_qty, t.held, t.open_places, t.held_places)
            .join_from(order_totals, instruments_table, i.symbol == t.symbol)
            .where(t.account == account, t.side == Side.BUY.value, i.currency == currency)
        )
    ]
    indexed = f" INDEXED BY {PRICED_EACH_INDEX}" if conn.dialect.name == "sqlite" else ""
    states = conn.execute(
        text(
            f"SELECT orders.state FROM orders{indexed}"
            " JOIN instruments ON instruments.symbol = orders.symbol"
            f" WHERE account = :account AND instruments.currency = :currency"
            f" AND {PRICED_EACH_WHERE}"
        ),
        {"account": account, "currency": currency},
    ).scalars()
    buffer = risk_limits.load_limits(conn).market_buffer_pct
    terms = paper.load_terms(conn)
    with localcontext(lots.CONTEXT):
        total = sum(kept, Decimal(0))
        for state in states:
            order = load_state(state, conn)
            last = partial(_last_close, conn, order.symbol)
            total += order_reservation(order, last, buffer, terms, currency=currency)
    return total


# ---- risk inputs -------------------------------------------------------------------------------


def _reservation(conn: Connection, order: Order) -> Decimal:
    """The cash `reserved_cash` holds for one live order."""
    buffer = risk_limits.load_limits(conn).market_buffer_pct
    terms = paper.load_terms(conn)
    with localcontext(lots.CONTEXT):
        currency = book.get_instrument(conn, order.symbol).currency
        last = partial(_last_close, conn, order.symbol)
        return order_reservation(order, last, buffer, terms, currency=currency)


def _account_state(
    conn: Connection,
    req: OrderRequest,
    now: datetime,
    limits: risk.Limits,
    *,
    without: Order | None = None,
) -> risk.AccountState:
    """The account for the risk checks (as a submission sees it: oms.submission); `without`
    leaves one live order out (its reservation and open quantity), for checking a replace of it."""
    from oms import submission  # builds on this module

    del limits  # the group reads the same settings in the same transaction
    group = submission.Group(conn, Ctx("risk", now))
    # the sums in the book's exact decimal context, as Group.submit runs them (not Python's 28
    # digits)
    with localcontext(lots.CONTEXT):
        acct = group.account(req.account)
        state = group.account_state(acct, req)
        if without is None or not without.live:
            return state
        leaves = open_quantity(without)
        if without.side is Side.BUY:
            return dataclasses.replace(
                state,
                reserved=state.reserved - _reservation(conn, without),
                open_buy_quantity=state.open_buy_quantity - leaves,
            )
        return dataclasses.replace(state, open_sell_quantity=state.open_sell_quantity - leaves)


def market_state(
    inst: book.Instrument,
    last: tuple[Decimal, datetime] | None,
    now: datetime,
    volume: Decimal | None = None,
) -> risk.MarketState:
    """What the risk check knows of an instrument's market: its terms, the last price (and
    when) and today's session."""
    always = inst.exchange == ALWAYS_OPEN
    # the session it is in now (its label may be tomorrow's UTC date: Sydney), else the next
    # one to open (what a closed market's message names), else today's
    label = (
        None
        if always
        else session_label(inst.exchange, now)
        or next_session_label(inst.exchange, now)
        or now.date()
    )
    bounds = None if label is None else session_bounds(inst.exchange, label)
    pause = None if label is None else session_break(inst.exchange, label)
    return risk.MarketState(
        reference_price=last[0] if last else None,
        reference_time=last[1] if last else None,
        tick_size=inst.tick_size,
        lot_size=inst.lot_size,
        restricted=inst.restricted,
        session_open=bounds[0] if bounds else None,
        session_close=bounds[1] if bounds else None,
        always_open=always,
        reference_volume=volume,
        break_start=pause[0] if pause else None,
        break_end=pause[1] if pause else None,
    )


def _market_state(conn: Connection, symbol: str, now: datetime) -> risk.MarketState:
    inst = book.get_instrument(conn, symbol)
    bar = md_book.latest_bar(conn, symbol)
    last = None if bar is None else (bar.close, bar.time)
    return market_state(inst, last, now, None if bar is None else bar.volume)


# ---- writing ---------------------------------------------------------------------------------


def _store_order(
    conn: Connection,
    order: Order,
    ctx: Ctx,
    steps: Sequence[Transition],
    commands: Sequence[Any],
    *,
    before: Order | None,
    exec_id: str | None = None,
) -> None:
    """Write an order as it is after `steps`: its row, a new client order id it took, its
    events and its order totals. `before`: the order as stored before them (the callers read
    it in the same transaction); None for an order not in the book yet (the book's new orders
    are written by oms.submission; tests place orders with this)."""
    state, chunks = stored_state(order)
    _adjust_totals(conn, before, order)
    remember_state(state, order)
    values = {
        "client_order_id": order.client_order_id,
        "status": order.status.value,
        "quantity": order.quantity,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "cum_qty": order.cum_qty,
        "leaves_qty": order.leaves_qty,
        "avg_px": order.avg_px,
        "reject_reason": order.reject_reason,
        "updated_at": order.updated_at,
        "state": state,
    }
    if before is None:
        conn.execute(
            orders_table.insert(),
            {
                "order_id": order.order_id,
                "account": order.account,
                "symbol": order.symbol,
                "side": order.side.value,
                "type": order.type.value,
                "tif": order.tif.value,
                "expire_at": order.expire_at,
                "venue": order.venue,
                "created_at": order.created_at,
                "created_by": ctx.actor,
                **values,
            },
        )
    else:
        conn.execute(_ORDER_UPDATE, {"b_order_id": order.order_id, **values})
    if chunks or (before is not None and _in_parts(before)):
        _write_parts(conn, order.order_id, chunks, before)
    if before is None or order.client_order_id != before.client_order_id:  # new or renamed
        known = set(conn.execute(_CLIENT_IDS_OF, {"b_order_id": order.order_id}).scalars())
        if order.client_order_id not in known:  # not taken already by its request
            conn.execute(
                order_client_ids.insert(),
                {
                    "account": order.account,
                    "client_order_id": order.client_order_id,
                    "order_id": order.order_id,
                },
            )
    events: list[dict[str, Any]] = [
        {
            "order_id": order.order_id,
            "at": ctx.now,
            "actor": ctx.actor,
            "event": step.event.value,
            "status": step.order.status.value,
            "reason": step.order.history[-1].reason if step.order.history else None,
            "payload": command_payload(command),
            # the report's ExecID names the event it made; what follows from it has none
            "exec_id": exec_id if i == 0 else None,
        }
        for i, (step, command) in enumerate(zip(steps, commands, strict=True))
    ]
    if events:  # executemany (an empty list would insert one row of defaults)
        first = next_id(conn, order_events, "event_id")
        for i, event in enumerate(events):
            event["event_id"] = first + i
        conn.execute(order_events.insert(), events)


# an execution row's columns after its id (schema.executions), in the order fill_booking gives
EXECUTION_COLUMNS = (
    "exec_id",
    "venue",
    "account",
    "symbol",
    "side",
    "quantity",
    "price",
    "currency",
    "trade_date",
    "settle_date",
    "exec_time",
    "commission",
    "fees",
    "client_order_id",
    "order_id",
    "exec_type",
    "source",
    "booked_at",
    "actor",
)


def fill_booking(
    order: Order,
    fill: orders.ApplyFill,
    *,
    currency: str,
    exec_time: datetime,
    settle: date,
    booked_at: datetime,
    actor: str,
    commission: Decimal,
    source: str,
    traded: date | None = None,
) -> tuple[tuple[Any, ...], ledger.Entry]:
    """What a fill of `order` books, as values (pure): its execution row (EXECUTION_COLUMNS,
    the id is the caller's) and its cash journal entry. The one place both are made: stored
    one by one by _book_fill, collected for a bulk insert by oms.submission (the entry's rows
    there as book.post_entries writes them). `traded`: the trade date (calendars.trade_date),
    else the UTC date of the execution."""
    row = (
        fill.exec_id,
        order.venue,
        order.account,
        order.symbol,
        order.side.value,
        fill.quantity,
        fill.price,
        currency,
        exec_time.date() if traded is None else traded,
        settle,
        exec_time,
        commission,
        Decimal(0),
        order.client_order_id,
        order.order_id,
        "fill",
        source,
        booked_at,
        actor,
    )
    entry = ledger.trade(
        order.account,
        currency,
        order.side,
        fill.quantity,
        fill.price,
        commission,
        Decimal(0),
        settle,
        f"{order.venue}:{fill.exec_id}",
    )
    return row, entry


def _book_fill(
    conn: Connection,
    ctx: Ctx,
    order: Order,
    fill: orders.ApplyFill,
    at: datetime | None = None,
    *,
    commission: Decimal = Decimal(0),
    source: str = "paper",
    inst: book.Instrument | None = None,
    cycle: int | None = None,
) -> None:
    """A fill (paper, or a venue's report): an execution (at `at`, else now) and its cash
    journal entry, in the caller's transaction. `inst`: the order's instrument, and `cycle`
    its exchange's settlement cycle, when the caller has read them in this transaction."""
    if inst is None:
        inst = book.get_instrument(conn, order.symbol)
    if cycle is None:
        cycle = book.settlement_days(conn, inst.exchange)
    exec_time = at or ctx.now
    traded = trade_date(inst.exchange, exec_time)
    row, entry = fill_booking(
        order,
        fill,
        currency=inst.currency,
        exec_time=exec_time,
        traded=traded,
        settle=settlement_date(inst.exchange, traded, cycle),
        booked_at=ctx.now,
        actor=ctx.actor,
        commission=commission,
        source=source,
    )
    exec_pk = next_id(conn, executions, "id")
    values = dict(zip(EXECUTION_COLUMNS, row, strict=True))
    conn.execute(executions.insert(), {"id": exec_pk, **values})
    book.post_entries(conn, ctx, [entry], execution_ids=[exec_pk])


def submit(store: Store, ctx: Ctx, req: OrderRequest) -> Submitted:
    """Check, record and route one order in one transaction, committed before it returns (its
    acknowledgement). A repeated client order id returns the first order (duplicate); a risk
    rejection is recorded, then raised (RiskRejected). See oms.submission."""
    from oms import submission  # builds on this module

    return submission.submit(store, ctx, req)


def _run(
    conn: Connection,
    ctx: Ctx,
    order: Order,
    commands: list[Any],
    terms: paper.PaperTerms = paper.DEFAULT_TERMS,
) -> list[Transition]:
    """Decide commands one after the other, booking paper fills (with the paper venue's
    commission) as they happen."""
    steps: list[Transition] = []
    current = order
    for command in commands:
        before = current
        steps.append(orders.decide(current, command, ctx.now, ctx.actor))
        current = steps[-1].order
        if isinstance(command, orders.ApplyFill):
            currency = book.get_instrument(conn, current.symbol).currency
            fee = paper.fill_charge(terms, before, command, currency=currency)
            _book_fill(conn, ctx, current, command, commission=fee)
    return steps


def _request_change(conn: Connection, ctx: Ctx, order: Order, request: Any) -> Order:
    """A cancel or amend request inside the caller's transaction: on paper the venue answers at
    once (an amended order that has become marketable fills at the last price); elsewhere the
    order waits for the venue."""
    steps = _run(conn, ctx, order, [request])
    commands: list[Any] = [request]
    if order.venue == PAPER:
        answer: Any = (
            orders.AcceptCancel()
            if isinstance(request, orders.RequestCancel)
            else orders.AcceptReplace()
        )
        steps += _run(conn, ctx, steps[-1].order, [answer])
        commands.append(answer)
        now = steps[-1].order
        # a new price may make the order marketable; a new quantity alone does not (an order
        # resting for want of a bar's share does not fill its leaves at once when it is cut)
        repriced = (now.limit_price, now.stop_price) != (order.limit_price, order.stop_price)
        if isinstance(answer, orders.AcceptReplace) and now.live and repriced:
            terms = paper.load_terms(conn)
            more = paper.answer_live_order(
                now,
                _market_state(conn, now.symbol, ctx.now),
                terms,
                max_price_age=risk_limits.load_limits(conn).max_price_age,
            )
            steps += _run(conn, ctx, now, more, terms)
            commands += more
    current = steps[-1].order
    _store_order(conn, current, ctx, steps, commands, before=order)
    return current


def request_cancel(conn: Connection, ctx: Ctx, order: Order, reason: str) -> Order:
    """Cancel an order inside the caller's transaction (the kill switch)."""
    return _request_change(conn, ctx, order, orders.RequestCancel(reason=reason))


def _check_replace(conn: Connection, ctx: Ctx, order: Order, request: Any) -> None:
    """The pre-trade checks again, on a replace's new terms (exit 4 when they fail)."""
    if not isinstance(request, orders.RequestReplace) or not order.live:
        return  # the transition table refuses a replace of a finished order
    # a paper order whose day or date is over (expire-due has not expired it yet: no bar fills
    # it any more, and an amend must not either); an external venue answers for its own orders
    exchange = book.get_instrument(conn, order.symbol).exchange
    ran_out = due_at(order, exchange, ctx.now) if order.venue == PAPER else None
    if ran_out is not None:
        raise Refused(
            f"order amend {order.order_id}",
            f"the order's time in force ({order.tif.value}) ran out at {utc_iso(ran_out)}: it "
            "can no longer trade (`tieout order expire-due` expires it); cancel it, or submit "
            "a new order",
            "time_in_force_ran_out",
        )
    quantity = request.quantity if request.quantity is not None else order.quantity
    limit = request.limit_price if request.limit_price is not None else order.limit_price
    stop = request.stop_price if request.stop_price is not None else order.stop_price
    req = OrderRequest(
        order.account, order.symbol, order.side, quantity, order.type, order.tif, limit, stop
    )
    limits = risk_limits.load_limits(conn)
    market = _market_state(conn, order.symbol, ctx.now)
    charges = Decimal(0)
    if order.side is Side.BUY and order.venue == PAPER:  # what the new leaves will pay
        leaves = max(quantity - order.cum_qty, Decimal(0))
        terms, notional = paper.load_terms(conn), orders.filled_notional(order.fills)
        with localcontext(lots.CONTEXT):
            charges = charge_held(
                terms,
                order.cum_qty,
                notional,
                leaves,
                limit,
                stop,
                lambda: market.reference_price,
                currency=book.get_instrument(conn, order.symbol).currency,
            )
    result = risk.check_replace(
        risk.OrderRequest(
            order.account,
            order.symbol,
            order.side,
            quantity,
            order.type,
            order.tif,
            limit,
            stop,
            order.client_order_id,
            charges=charges,
        ),
        order.cum_qty,
        _account_state(conn, req, ctx.now, limits, without=order),
        market,
        limits,
        ctx.now,
        # only less of the same order, or the same under a new client order id (a rename):
        # restriction, exposure and market checks let it through
        reduces=quantity <= order.quantity
        and limit == order.limit_price
        and stop == order.stop_price,
    )
    if not result.ok:
        raise Refused(
            f"order amend {order.order_id}",
            "risk: " + "; ".join(f.message for f in result.failures),
            result.failures[0].code.value,
        )


def _record_refusal(
    store: Store,
    ctx: Ctx,
    action: str,
    ref: tuple[str | None, str | None, str | None],
    exc: Refused | BadInput,
) -> None:
    """A refused cancel or amend changes nothing but is recorded: who asked, for what, why,
    under the order's id (as its other events are) when the order is found. A bad value (an
    amend that changes nothing, or down to what filled) is recorded as `bad_input`."""
    order_id, client_order_id, account = ref
    with store.write() as conn:
        ctx = ctx.granted()  # (dated when the lock is held, as the request it refuses)
        entity: str
        try:
            entity = find(conn, order_id, account=account, client_order_id=client_order_id).order_id
        except TieoutError:  # not found, or ambiguous: the reference as given
            entity = order_id or (
                f"{account}/{client_order_id}" if account else str(client_order_id)
            )
        if isinstance(exc, Refused):
            payload: dict[str, Any] = {"code": exc.code, "reason": exc.reason}
        else:
            payload = {"code": "bad_input", "reason": exc.why}
        if client_order_id is not None:
            payload["client_order_id"] = client_order_id
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action=action + "_refused",
            entity_type="order",
            entity_id=entity,
            payload=payload,
        )


def _check_clock(ctx: Ctx, order: Order, action: str) -> None:
    """A cancel or amend is dated by the clock: a clock behind the order's last change would
    record the request before what it answers (history out of order). Refused: the clock is
    wrong (a machine's, or TIEOUT_NOW), and the operator is told so."""
    if order.live and ctx.now < order.updated_at:  # (a finished one is refused as finished)
        raise Refused(
            f"{action} of {order.order_id}",
            f"the clock reads {utc_iso(ctx.now)}, before the order's last change at "
            f"{utc_iso(order.updated_at)}; a request is not recorded before what it changes: "
            "check this machine's clock (or TIEOUT_NOW)",
            "clock_behind",
        )


@dataclass(frozen=True, slots=True)
class Changed:
    """A cancel or amend request's answer: the order as it now stands; `duplicate` when the
    request was a resend of one already recorded (same new client order id, same terms), which
    changed nothing."""

    order: Order
    duplicate: bool = False


def _change(
    store: Store,
    ctx: Ctx,
    action: str,
    ref: tuple[str | None, str | None, str | None],
    request: Any,
) -> Changed:
    try:
        return _apply_change(store, ctx, action, ref, request)
    except (Refused, BadInput) as exc:
        _record_refusal(store, ctx, action, ref, exc)
        raise


_REQUESTED = {
    orders.RequestCancel: orders.Event.CANCEL_REQUESTED.value,
    orders.RequestReplace: orders.Event.REPLACE_REQUESTED.value,
}


def _resent(conn: Connection, order: Order, request: Any) -> bool:
    """Whether `request` repeats one the order has already recorded: the same kind of request
    under the same new client order id, with the same terms. A resend (a script retrying after
    a timeout, an operator unsure the first went through) is answered with the order as it
    stands, as a repeated submission is; the same new id with other terms is refused by
    _reserve_client_id."""
    new_id = request.new_client_order_id
    if new_id is None:  # no id of its own: a second request is a second request
        return False
    e = order_events.c
    rows = conn.execute(
        select(e.payload).where(e.order_id == order.order_id, e.event == _REQUESTED[type(request)])
    ).scalars()
    for payload in rows:
        terms = json.loads(payload)["terms"]
        if terms.get("new_client_order_id") != new_id:
            continue
        if isinstance(request, orders.RequestCancel):
            return True
        return all(
            _same_number(terms.get(name), getattr(request, name))
            for name in ("quantity", "limit_price", "stop_price")
        )
    return False


def _same_number(recorded: str | None, asked: Decimal | None) -> bool:
    if recorded is None or asked is None:
        return recorded is None and asked is None
    return Decimal(recorded) == asked


def _apply_change(
    store: Store,
    ctx: Ctx,
    action: str,
    ref: tuple[str | None, str | None, str | None],
    request: Any,
) -> Changed:
    order_id, client_order_id, account = ref
    with store.write() as conn:
        ctx = ctx.granted()  # (dated when the lock is held: a fill may have come meanwhile)
        order = find(conn, order_id, account=account, client_order_id=client_order_id)
        if _resent(conn, order, request):
            return Changed(order, duplicate=True)
        _check_clock(ctx, order, action)
        _check_replace(conn, ctx, order, request)
        _reserve_client_id(conn, order, request.new_client_order_id, action)
        current = _request_change(conn, ctx, order, request)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action=action,
            entity_type="order",
            entity_id=current.order_id,
            payload={
                "client_order_id": current.client_order_id,
                "request": request,
                "status": current.status.value,
            },
        )
        return Changed(current)


def _reserve_client_id(
    conn: Connection, order: Order, new_id: ClientOrderId | None, action: str
) -> None:
    """A cancel or replace request's new client order id names the order from the request on
    (FIX 11 of the venue's answer, 41 then the old one), so it is taken at once: unique per
    account like every client order id, never one that an order of the account (this one
    included) has had. It stays taken whatever the venue answers (FIX: ClOrdIDs are not used
    again)."""
    if new_id is None:
        return
    c = order_client_ids.c
    taken = conn.execute(
        select(c.order_id).where(c.account == order.account, c.client_order_id == new_id)
    ).scalar()
    if taken is not None:
        raise Refused(
            f"{action.replace('.', ' ')} {order.order_id} with new client order id {new_id}",
            f"account {order.account} used it already for order {taken}",
            "duplicate_client_order_id",
        )
    conn.execute(
        order_client_ids.insert(),
        {"account": order.account, "client_order_id": new_id, "order_id": order.order_id},
    )


def cancel(
    store: Store,
    ctx: Ctx,
    order_id: str | None,
    *,
    client_order_id: str | None = None,
    account: str | None = None,
    new_client_order_id: str | None = None,
) -> Changed:
    """Cancel an order: at once on paper; on an external venue it waits in pending_cancel. A
    resend of a cancel already recorded (same new client order id) changes nothing and comes
    back as a duplicate."""
    new_id = ClientOrderId(new_client_order_id) if new_client_order_id else None
    return _change(
        store,
        ctx,
        "order.cancel",
        (order_id, client_order_id, account),
        orders.RequestCancel(new_client_order_id=new_id),
    )


def amend(
    store: Store,
    ctx: Ctx,
    order_id: str | None,
    *,
    client_order_id: str | None = None,
    account: str | None = None,
    quantity: Decimal | None = None,
    limit_price: Decimal | None = None,
    new_client_order_id: str | None = None,
) -> Changed:
    """Amend quantity or limit price (cancel/replace): at once on paper; pending_replace on an
    external venue until it answers. A resend of an amend already recorded (same new client
    order id, same terms) changes nothing and comes back as a duplicate."""
    new_id = ClientOrderId(new_client_order_id) if new_client_order_id else None
    return _change(
        store,
        ctx,
        "order.amend",
        (order_id, client_order_id, account),
        orders.RequestReplace(
            quantity=quantity, limit_price=limit_price, new_client_order_id=new_id
        ),
    )


_REJECTED = orders.Event.ORDER_REJECTED.value


def order_history(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    """An order's history as its append-only events recorded it, oldest first: status, time,
    actor, reason and event of each transition, with the venue's ExecID where it sent one and
    the failed checks' reason codes (oms.risk.RiskCode) on a rejection (none from a venue)."""
    e = order_events.c
    rows = conn.execute(
        select(e.status, e.at, e.actor, e.reason, e.event, e.exec_id, e.payload)
        .where(e.order_id == order_id)
        .order_by(e.event_id)
    )
    out = []
    for status, at, actor, reason, event, venue_exec_id, payload in rows:
        item: dict[str, Any] = {
            "status": status,
            "at": utc_iso(at),
            "actor": actor,
            "reason": reason,
            "event": event,
        }
        terms = json.loads(payload)["terms"] if venue_exec_id is None or event == _REJECTED else {}
        exec_id = venue_exec_id or terms.get("exec_id")  # a paper fill's id is in its command
        if exec_id is not None:
            item["exec_id"] = exec_id
        if event == _REJECTED:
            item["risk_codes"] = list(terms.get("codes", []))
        out.append(item)
    return out


def order_json(order: Order, *, history: bool) -> dict[str, Any]:
    """An order as the contract shows it: what `order list` shows (listed_order, here of the
    order's own values, there of its row's columns), and its history if asked for."""
    columns = {name: getattr(order, name) for name in _LISTED}
    for name in ("side", "type", "tif", "status"):  # stored as their values
        columns[name] = columns[name].value
    doc = listed_order(SimpleNamespace(**columns))
    if history:
        doc["history"] = [
            {
                "status": h.status.value,
                "at": utc_iso(h.at),
                "actor": h.actor,
                "reason": h.reason,
                "event": h.event.value,
            }
            for h in order.history
        ]
    return doc


# ---- execution reports from external venues --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyResult:
    file: str
    messages: int
    applied: int
    duplicates: int
    refused: tuple[RowError, ...]
    # applied messages whose own figures disagree with the book (a fill missed, a price beyond
    # the order's limit): applied as the venue's facts, reported and audited to be chased
    warnings: tuple[RowError, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "messages": self.messages,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "refused": len(self.refused),
            "problems": [
                {"line": e.line, "field": e.field, "reason": e.reason} for e in self.refused
            ],
            "warnings": [
                {"line": e.line, "field": e.field, "reason": e.reason} for e in self.warnings
            ],
        }


def _report_order(conn: Connection, report: fix.Report) -> Order:
    """The order a report is about: the one its ClOrdID (11) names, else its OrigClOrdID (41)'s.
    Refused when both name orders and not the same one."""
    account = report.get(1)
    ambiguous: list[str] = []
    for tag in (11, 41):
        client_id = report.get(tag)
        if client_id:
            try:
                found = find(conn, None, account=account, client_order_id=client_id)
            except AmbiguousClientOrderId:
                ambiguous.append(f"{tag}={client_id}")
                continue
            except NotFound:
                continue
            _same_order_named(conn, report, account, found)
            return found
    if ambiguous:
        raise BadInput(
            "Account (1)",
            f"several accounts have an order with client order id {', '.join(ambiguous)}; "
            "the report needs Account (1) to say whose it is",
        )
    names = {11: "ClOrdID (11)", 41: "OrigClOrdID (41)"}
    given = [t for t in (11, 41) if report.get(t)]
    if not given:
        raise BadInput("ClOrdID (11)", "is missing: the report names no order")
    raise NotFound(
        "order with " + " or ".join(names[t] for t in given),
        " / ".join(str(report.get(t)) for t in given),
    )


def _same_order_named(
    conn: Connection, report: fix.Report, account: str | None, found: Order
) -> None:
    """A report found by its ClOrdID (11) whose OrigClOrdID (41) names another order (a
    venue's request id that is another order's client order id) is refused: which order it
    is about cannot be told."""
    orig, named = report.get(41), report.get(11)
    if not orig or orig == named:
        return
    if account is None:
        found_ids = conn.execute(_IDS_OF_CLIENT_ID, {"b_client_id": orig})
    else:
        found_ids = conn.execute(_ID_OF_CLIENT_ID, {"b_client_id": orig, "b_account": account})
    ids = set(found_ids.scalars())
    if ids and found.order_id not in ids:
        raise BadInput(
            "OrigClOrdID (41)",
            f"{orig} names order {', '.join(sorted(ids))}, while ClOrdID (11) {named} names "
            f"order {found.order_id}: the report names two orders",
        )


def _stored_execution(conn: Connection, venue: str, exec_id: str) -> Any:
    e = executions.c
    row = conn.execute(select(executions).where(e.venue == venue, e.exec_id == exec_id)).first()
    if row is None:
        raise NotFound(f"execution at {venue}", exec_id)
    return row


@dataclass(frozen=True, slots=True)
class _FillTerms:
    """What a venue's fill books besides quantity and price: when, which dates, commission."""

    exec_time: datetime
    trade_date: date
    settle_date: date
    commission: Decimal


def _fill_terms(
    conn: Connection, ctx: Ctx, order: Order, fill: orders.ApplyFill, report: fix.Report
) -> _FillTerms:
    """TransactTime (60) for the execution time (else now), TradeDate (75) (else the date of
    the session 60 falls in, as calendars.trade_date dates paper fills), SettlDate (64) (else
    the exchange calendar's settlement date of the trade date), Commission (12) by CommType
    (13). BadInput when one of them is wrong."""
    times = fix.trade_times(report)
    exec_time = _report_time(ctx, order, times.exec_time)
    instrument = book.get_instrument(conn, order.symbol)
    exchange = instrument.exchange
    trade = _stated_trade_date(ctx, order, exchange, times.trade_date) or trade_date(
        exchange, exec_time
    )
    settle = times.settle_date or settlement_date(
        exchange, trade, book.settlement_days(conn, exchange)
    )
    _check_settle(trade, settle)
    charged = fix.commission(report, fill.quantity, fill.price, currency=instrument.currency)
    return _FillTerms(exec_time, trade, settle, charged)


def _check_settle(trade: date, settle: date) -> None:
    """A SettlDate (64) on or after the trade date, and no more than a year after it."""
    if settle < trade:
        raise BadInput(
            "SettlDate (64)", f"{settle.isoformat()} is before the trade date {trade.isoformat()}"
        )
    if (settle - trade).days > MAX_SETTLEMENT_SPAN:
        raise BadInput(
            "SettlDate (64)",
            f"{settle.isoformat()} is more than a year after the trade date "
            f"{trade.isoformat()}: no trade the book takes settles that late",
        )


# how far a venue's times may be from ours (its clock's skew): a report's TransactTime after now,
# or before the order was placed, by more (exec import allows an exec_time as much)
REPORT_SKEW = timedelta(minutes=5)


def _stated_trade_date(ctx: Ctx, order: Order, exchange: str, stated: date | None) -> date | None:
    """A report's TradeDate (75), if it states one. Refused before the exchange's local date on
    which the order was placed, or after the trade date of now (the next session's, when the
    exchange is closed), each by more than a venue's clock may be off (REPORT_SKEW): the
    order did not exist then, and that day has not come yet."""
    if stated is None:
        return None
    skew = REPORT_SKEW
    placed = (order.created_at - skew).astimezone(exchange_zone(exchange)).date()
    latest = trade_date(exchange, ctx.now + skew)
    if stated < placed:
        raise BadInput(
            "TradeDate (75)",
            f"{stated.isoformat()} is before order {order.order_id} was placed "
            f"({placed.isoformat()} at {exchange})",
        )
    if stated > latest:
        raise BadInput(
            "TradeDate (75)",
            f"{stated.isoformat()} is after the trade date of now ({latest.isoformat()} at "
            f"{exchange})",
        )
    return stated


def _report_time(ctx: Ctx, order: Order, stated: datetime | None) -> datetime:
    """A report's TransactTime (60), else now. Refused when it is after now, or before the
    order was placed, by more than the clock skew a venue's report is allowed (REPORT_SKEW):
    nothing has happened yet then, and the order did not exist."""
    at = stated or ctx.now
    skew = REPORT_SKEW
    minutes = int(skew.total_seconds() // 60)
    if at > ctx.now + skew:
        raise BadInput(
            "TransactTime (60)",
            f"{utc_iso(at)} is after now ({utc_iso(ctx.now)}) by more than {minutes} minutes",
        )
    if at < order.created_at - skew:
        raise BadInput(
            "TransactTime (60)",
            f"{utc_iso(at)} is before order {order.order_id} was placed "
            f"({utc_iso(order.created_at)}) by more than {minutes} minutes",
        )
    return at


@dataclass(frozen=True, slots=True)
class _CorrectionTerms:
    """What a correction (ExecType G) restates besides quantity and price (None: as before)."""

    trade_date: date | None
    settle_date: date | None
    commission: Decimal | None


def _correction_terms(
    conn: Connection, ctx: Ctx, order: Order, command: orders.CorrectFill, report: fix.Report
) -> _CorrectionTerms:
    """TradeDate (75), SettlDate (64) (else, with a trade date other than the execution's, the
    calendar's settlement date of it; else the execution's stands) and Commission (12, by
    CommType 13) of a correction, when the report states them. SettlDate is checked against the
    trade date the correction restates, else the execution's as it stands (its last
    correction's, whichever of its ExecIDs the report names): not against its TransactTime,
    the time of the correction."""
    times = fix.trade_times(report, of_a_fill=False)
    settle = times.settle_date
    instrument = book.get_instrument(conn, order.symbol)
    exchange = instrument.exchange
    traded = _stated_trade_date(ctx, order, exchange, times.trade_date)
    # a fill it does not name is refused by _check_exec_ref
    fill = next((f for f in order.fills if f.known_as(command.exec_ref_id)), None)
    stands = (
        None
        if fill is None
        else _stored_execution(conn, order.venue, (fill.exec_id, *fill.corrected_by)[-1])
    )
    moved = traded is not None and (stands is None or traded != stands.trade_date)
    if traded is not None and moved and settle is None:
        settle = settlement_date(exchange, traded, book.settlement_days(conn, exchange))
    if settle is not None and stands is not None:
        _check_settle(traded or stands.trade_date, settle)
    commission = (
        fix.commission(report, command.quantity, command.price, currency=instrument.currency)
        if report.get(12)
        else None
    )
    return _CorrectionTerms(traded, settle, commission)


def _book_report(
    conn: Connection,
    ctx: Ctx,
    before: Order,
    after: Order,
    command: Any,
    terms: _FillTerms | _CorrectionTerms | None,
    exec_time: datetime,
) -> None:
    """The execution rows and cash entries of a fill (its terms from _fill_terms), correction
    (what it restates: _correction_terms) or bust (at `exec_time`) from a venue. A correction or
    bust reverses the execution as it stands (the last correction of it, if any)."""
    inst = book.get_instrument(conn, after.symbol)
    exec_pk = next_id(conn, executions, "id")
    if isinstance(command, orders.ApplyFill):
        assert isinstance(terms, _FillTerms)  # apply_reports works them out for every fill
        row, entry = fill_booking(
            after,
            command,
            currency=inst.currency,
            exec_time=terms.exec_time,
            settle=terms.settle_date,
            booked_at=ctx.now,
            actor=ctx.actor,
            commission=terms.commission,
            source="fix",
        )
        values = dict(zip(EXECUTION_COLUMNS, row, strict=True)) | {"trade_date": terms.trade_date}
        conn.execute(executions.insert(), {"id": exec_pk, **values})
        book.post_entries(conn, ctx, [entry], execution_ids=[exec_pk])
        return
    common = {
        "venue": after.venue,
        "account": after.account,
        "symbol": after.symbol,
        "side": after.side.value,
        "currency": inst.currency,
        "client_order_id": after.client_order_id,
        "order_id": after.order_id,
        "source": "fix",
        "booked_at": ctx.now,
        "actor": ctx.actor,
    }
    entries: list[ledger.Entry] = []
    old = next(f for f in before.fills if f.known_as(command.exec_ref_id))
    # the execution as it stands: its last correction, or itself
    ref = _stored_execution(conn, after.venue, (old.exec_id, *old.corrected_by)[-1])
    is_bust = isinstance(command, orders.BustFill)
    qty = old.quantity if is_bust else command.quantity
    px = old.price if is_bust else command.price
    restated = terms if isinstance(terms, _CorrectionTerms) else _CorrectionTerms(None, None, None)
    trade_day = restated.trade_date or ref.trade_date
    settle_day = restated.settle_date or ref.settle_date
    commission = ref.commission if restated.commission is None else restated.commission
    conn.execute(
        executions.insert(),
        {
            "id": exec_pk,
            "exec_id": command.exec_id,
            "quantity": qty,
            "price": px,
            "trade_date": trade_day,
            "settle_date": settle_day,
            "exec_time": exec_time,
            "commission": commission,
            "fees": ref.fees,
            "exec_type": "bust" if is_bust else "correct",
            "ref_exec_id": command.exec_ref_id,
            **common,
        },
    )
    booked = ledger.trade(
        after.account,
        inst.currency,
        after.side,
        old.quantity,
        old.price,
        ref.commission,
        ref.fees,
        ref.settle_date,
        f"{after.venue}:{command.exec_id}",
    )
    entries.append(
        ledger.reverse(
            booked, "bust" if is_bust else "correction", f"{after.venue}:{command.exec_id}"
        )
    )
    if not is_bust:
        entries.append(
            ledger.trade(
                after.account,
                inst.currency,
                after.side,
                qty,
                px,
                commission,
                ref.fees,
                settle_day,
                f"{after.venue}:{command.exec_id}",
            )
        )
    book.post_entries(conn, ctx, entries, execution_ids=[exec_pk] * len(entries))


_COMMAND_KINDS = {kind.__name__: kind.kind for kind in get_args(orders.Command)}


def _a_command(name: Any) -> str:
    """A stored command's class name as words with their article ("an accept cancel")."""
    kind = _COMMAND_KINDS.get(str(name))
    words = str(name) if kind is None else kind.value.replace("_", " ")
    return f"{'an' if words[:1].lower() in 'aeiou' else 'a'} {words}"


def _other_terms(payload: str, command: Any) -> list[str]:
    """Where an order event's stored command (its canonical JSON) differs from `command`: its
    kind, or the fields whose values differ (decimals compared as numbers); the free text (58)
    and a field the command did not have when it was stored aside. Empty: the same terms."""
    stored = json.loads(payload)
    if stored.get("command") != type(command).__name__:
        return [f"{_a_command(stored.get('command'))}, not {_a_command(type(command).__name__)}"]
    terms = stored.get("terms") or {}
    out = []
    for field in dataclasses.fields(command):
        if field.name == "reason" or field.name not in terms:
            continue
        new, old = getattr(command, field.name), terms.get(field.name)
        if isinstance(new, Decimal):
            if not (isinstance(old, str) and is_decimal_text(old) and Decimal(old) == new):
                out.append(field.name)
        elif isinstance(new, tuple):  # stored as a JSON list (a reject's codes: () as [])
            if not isinstance(old, list) or [str(v) for v in new] != [str(v) for v in old]:
                out.append(field.name)
        elif (None if new is None else str(new)) != old:
            out.append(field.name)
    return out


def _check_exec_ref(conn: Connection, order: Order, ref: str) -> None:
    """A correction or bust names a live fill of the order by its ExecRefID (19): refused,
    saying why, when it does not (the transition table alone would say only that a bust is
    not allowed in the order's status, once the busted fill was its last)."""
    if any(f.known_as(ref) for f in order.fills):
        return
    e = executions.c
    names, found = {ref}, [ref]  # the fill's ExecID and those of its corrections
    while found:
        found = list(
            conn.execute(
                select(e.exec_id).where(
                    e.venue == order.venue, e.ref_exec_id.in_(found), e.exec_type == "correct"
                )
            ).scalars()
        )
        found = [x for x in found if x not in names]
        names.update(found)
    bust = conn.execute(
        select(e.exec_id)
        .where(e.venue == order.venue, e.ref_exec_id.in_(names), e.exec_type == "bust")
        .order_by(e.id)
        .limit(1)
    ).scalar()
    why = f"busted already by {bust}" if bust else "no fill of it has that ExecID"
    raise BadInput(
        "ExecRefID (19)", f"execution {ref} is not a live fill of order {order.order_id}: {why}"
    )


def _booked_differently(
    conn: Connection,
    venue: str,
    exec_id: str,
    report: fix.Report,
    terms: _FillTerms | _CorrectionTerms,
) -> list[str]:
    """What a resent fill or correction states (TradeDate 75 or TransactTime 60, SettlDate 64,
    Commission 12) that differs from the execution booked under its ExecID the first time."""
    e = executions.c
    row = conn.execute(
        select(e.trade_date, e.settle_date, e.commission).where(
            e.venue == venue, e.exec_id == exec_id
        )
    ).first()
    return [] if row is None else _stated_differently(row, report, terms)


def _stated_differently(
    row: Any, report: fix.Report, terms: _FillTerms | _CorrectionTerms
) -> list[str]:
    """What the report states of the execution `row` (its trade date, settlement date and
    commission) that differs from it."""
    out = []
    if (report.get(75) or report.get(60)) and terms.trade_date not in (None, row.trade_date):
        out.append(f"trade date {terms.trade_date} against {row.trade_date} booked")
    if report.get(64) and terms.settle_date not in (None, row.settle_date):
        out.append(f"settlement date {terms.settle_date} against {row.settle_date} booked")
    if report.get(12) and terms.commission is not None and terms.commission != row.commission:
        out.append(
            f"commission {dec_str(terms.commission)} against {dec_str(row.commission)} booked"
        )
    return out


_DUPLICATE, _IMPORTED = "duplicate", "imported"  # what _check_exec_id found
_BOOKED_COMMANDS = (orders.ApplyFill, orders.CorrectFill, orders.BustFill)  # executions rows


def _check_exec_id(
    conn: Connection,
    order: Order,
    command: Any,
    report: fix.Report,
    terms: _FillTerms | _CorrectionTerms | None,
) -> str | None:
    """What the report's ExecID (17) is to the book: None, new; _DUPLICATE, applied to this
    order already with the same terms (a resend: skipped); _IMPORTED, a fill `exec import`
    booked already without its order, with the same terms (the venue's trade file came first):
    the fill is counted on the order and not booked a second time. Refused (BadInput) when the
    order had it with other terms, or when the venue's ExecID is booked already otherwise (on
    another order, or by import with other terms)."""
    exec_id = report.exec_id
    if not exec_id:
        return None
    seen = conn.execute(
        _EVENT_OF_EXEC, {"b_order_id": order.order_id, "b_exec_id": exec_id}
    ).first()
    if seen is not None:
        differs = _other_terms(seen.payload, command)
        if not differs and terms is not None:  # what the resend states of its booking
            differs = _booked_differently(conn, order.venue, exec_id, report, terms)
        if differs:
            raise BadInput(
                "ExecID (17)",
                f"{exec_id} was applied to order {order.order_id} already with other terms "
                f"({'; '.join(differs)}); a correction is a new ExecID (ExecType G), never an "
                "edit",
            )
        return _DUPLICATE
    other = conn.execute(
        _EXECUTION_BY_EXEC_ID, {"b_venue": order.venue, "b_exec_id": exec_id}
    ).first()
    if other is None:
        if isinstance(command, _BOOKED_COMMANDS):
            from oms import executions as executions_book  # builds on the book

            alias = executions_book.booked_in_another_spelling(conn, order.venue, exec_id)
            if alias is not None:
                raise BadInput(
                    "ExecID (17)",
                    f"{exec_id} is booked already at venue {alias}, the same venue as "
                    f"{order.venue} in another spelling: venue names are matched as written, "
                    "and it would be booked twice",
                )
        return None
    if other.order_id is None and isinstance(command, orders.ApplyFill) and terms is not None:
        differs = _imported_differently(conn, order, command, report, terms)
        counted = conn.execute(
            _ORDER_OF_VENUE_EXEC, {"b_venue": order.venue, "b_exec_id": exec_id}
        ).scalar()
        if counted is not None:  # (this order's own is a resend, found above)
            differs.append(f"counted already on order {counted}")
        if not differs:
            return _IMPORTED
        where = f"from {other.source}, no order: {'; '.join(differs)}"
    else:
        where = f"order {other.order_id}" if other.order_id else f"from {other.source}, no order"
    raise BadInput("ExecID (17)", f"{exec_id} is booked already at venue {order.venue} ({where})")


def _imported_differently(
    conn: Connection,
    order: Order,
    fill: orders.ApplyFill,
    report: fix.Report,
    terms: _FillTerms | _CorrectionTerms,
) -> list[str]:
    """How the execution `exec import` booked under a fill's ExecID differs from the fill
    (account, symbol, side, quantity, price, and the dates and commission the report states);
    also when it was traded before the order was placed, or the import changed it since (a
    correction or bust of it, which the order has not heard of)."""
    e = executions.c
    row = _stored_execution(conn, order.venue, fill.exec_id)
    out = [
        f"{name} {theirs} against {ours} booked"
        for name, theirs, ours in (
            ("account", order.account, row.account),
            ("symbol", order.symbol, row.symbol),
            ("side", order.side.value, row.side),
            ("quantity", dec_str(fill.quantity), dec_str(row.quantity)),
            ("price", dec_str(fill.price), dec_str(row.price)),
        )
        if theirs != ours
    ]
    if row.exec_type != "fill":
        out.append(f"booked as a {row.exec_type}")
    exchange = book.get_instrument(conn, order.symbol).exchange
    placed = (order.created_at - REPORT_SKEW).astimezone(exchange_zone(exchange)).date()
    if row.trade_date < placed:
        out.append(
            f"traded {row.trade_date.isoformat()}, before order {order.order_id} was placed "
            f"({placed.isoformat()} at {exchange})"
        )
    changed = conn.execute(
        select(e.exec_id)
        .where(e.venue == order.venue, e.ref_exec_id == fill.exec_id)
        .order_by(e.id)  # the first change of it (the same one every time)
        .limit(1)
    ).scalar()
    if changed is not None:
        out.append(f"changed since by {changed}")
    return out + _stated_differently(row, report, terms)


# FIX 4.4 OrdStatus (39) values: an order done (filled, canceled, rejected, expired), or still
# working (new, partially filled, done for day, replaced, pending cancel, stopped, suspended,
# pending new, accepted for bidding, pending replace); B (calculated) says neither
_FIX_DONE = frozenset({"2", "4", "8", "C"})
# what closes a cancel or replace request: the venue's answers to it
_REQUEST_ANSWERS = frozenset(
    {
        orders.Event.CANCEL_REJECTED,
        orders.Event.REPLACE_REJECTED,
        orders.Event.ORDER_CANCELED,
        orders.Event.ORDER_REPLACED,
    }
)
_FIX_LIVE = frozenset({"0", "1", "3", "5", "6", "7", "9", "A", "D", "E"})


# the venue's reports about a cancel or replace request (not its outcome): pending (150=6/E),
# refused (35=9)
_ABOUT_A_REQUEST = (
    orders.ConfirmPendingCancel,
    orders.ConfirmPendingReplace,
    orders.RejectCancel,
    orders.RejectReplace,
)


def _check_answer_names_request(
    order: Order, command: orders.AcceptCancel | orders.AcceptReplace, report: fix.Report
) -> None:
    """A cancel or replace accepted (150=4/5) while a request with an id of its own is open
    names that request by ClOrdID (11), or, a cancel the venue made on its own (unsolicited),
    the order. Another id is refused, as `_answered_already` refuses a pending report or a
    reject naming another request: applied, it renamed the order to it and left the open
    request unanswered."""
    named = report.get(11)
    pending = order.pending
    if isinstance(command, orders.AcceptReplace) and pending is not None:
        pending = pending.replace  # the replace it answers, also one under a chained cancel
    if not named or pending is None or pending.client_order_id is None:
        return
    allowed = {pending.client_order_id}
    if isinstance(command, orders.AcceptCancel):
        allowed.add(order.client_order_id)
    if named not in allowed:
        raise BadInput(
            "ClOrdID (11)",
            f"{named} is not the open request of order {order.order_id} (that is "
            f"{pending.client_order_id}): the venue's report names another request",
        )


def _answered_already(conn: Connection, order: Order, command: Any, report: fix.Report) -> bool:
    """Whether a report about a request (`_ABOUT_A_REQUEST`) repeats the venue's answer to a
    request the book has closed (True: skipped, it changes nothing). Refused (BadInput) when
    it names a request that is not the open one, which it would otherwise be applied to.

    The request is named by ClOrdID (11):
    - the open request's id: applied; the order's present id while the open request has none
      of its own (a cancel sent without a new id): applied, the venue names the order;
    - an id the order has had other than its own never-replaced one (an answered request's,
      taken when the request was made or first reported, or the venue's on a replace): a
      cancel reject repeats that answer; a pending report (150=6/E) comes out of sequence,
      after the answer, and would open a request the venue will never answer: refused;
    - any other id while a request with its own id is open: refused;
    - the order's own id with none open: a cancel reject repeats the last answer (or is for
      the transition table to refuse), a pending report opens a request the venue took by
      other means (a phone call);
    - an id never seen: a cancel reject with none open answers no request (refused);
      otherwise it names the open request, or the request the venue reports first, and is
      taken for the order."""
    rejects = isinstance(command, orders.RejectCancel | orders.RejectReplace)
    named = report.get(11)
    pending = order.pending
    if pending is not None and pending.under is not None:
        # a cancel chained behind a replace: two requests are open; the report is about one
        about_replace = isinstance(command, orders.RejectReplace | orders.ConfirmPendingReplace)
        other = pending if about_replace else pending.under
        pending = pending.under if about_replace else pending
        if named and named == other.client_order_id:
            raise BadInput(
                "ClOrdID (11)",
                f"{named} names order {order.order_id}'s open {other.kind.value} request; "
                f"this report answers its {pending.kind.value} request"
                + ("" if pending.client_order_id is None else f" ({pending.client_order_id})"),
            )
    if not named:
        return rejects and pending is None and _closed_request(order)
    open_id = None if pending is None else pending.client_order_id
    if named == open_id:
        return False
    if pending is not None and open_id is None and named == order.client_order_id:
        return False  # the open request has no id of its own: the venue names the order
    known = set(conn.execute(_CLIENT_IDS_OF, {"b_order_id": order.order_id}).scalars())
    # the order's own id, never a request's: it was submitted with it and never replaced
    own = named == order.client_order_id == order.submitted.client_order_id
    if named in known and not own:  # an answered request's, or a name the order had before
        if rejects:
            return True
        raise BadInput(
            "ClOrdID (11)",
            f"{named} names a request of order {order.order_id} that the venue answered "
            f"already; this report of it pending comes out of sequence"
            + ("" if open_id is None else f" (the open request is {open_id})"),
        )
    if open_id is not None:
        raise BadInput(
            "ClOrdID (11)",
            f"{named} is not the open request of order {order.order_id} (that is {open_id}): "
            "the venue's report names another request",
        )
    if own:  # none is open (or it has no id of its own: above)
        return rejects and _closed_request(order)
    if rejects and pending is None:
        raise BadInput(
            "ClOrdID (11)",
            f"{named} names no request of order {order.order_id}: none is open and none had "
            "that id",
        )
    # the open request's id, which it had none of, or a request the venue reports first: it
    # names the order from now on, as the id of a request tieout makes does from when it is made
    _reserve_client_id(conn, order, ClientOrderId(named), "order.report")
    return False


def _closed_request(order: Order) -> bool:
    return any(h.event in _REQUEST_ANSWERS for h in order.history)


def _venue_disagrees(
    report: fix.Report, before: Order, after: Order, command: Any, inst: book.Instrument
) -> list[RowError]:
    """Where an applied report's own figures disagree with the book: CumQty (14), LeavesQty
    (151) or AvgPx (6, to the decimals the venue sent) against the order after it (a fill
    missed or booked twice); a fill's or correction's price beyond the order's limit or off
    the instrument's tick, its quantity off the lot size; a fill-or-kill order ended with part
    of it filled. FIX 4.4 sends 14, 151 and 6 on every ExecutionReport for this."""
    with localcontext(lots.CONTEXT):
        return _disagreements(report, before, after, command, inst)


def _disagreements(
    report: fix.Report, before: Order, after: Order, command: Any, inst: book.Instrument
) -> list[RowError]:
    tick, lot = inst.tick_size, inst.lot_size
    out: list[RowError] = []
    line = report.line

    def stated(tag: int) -> Decimal | None:
        return fix.venue_number(report.get(tag))

    status = report.get(39)
    if status is not None and status not in _FIX_DONE | _FIX_LIVE | {"B"}:
        out.append(
            RowError(
                line,
                "39",
                printable(status[:20]),
                f"OrdStatus (39) {printable(status[:20])!r} is not a status FIX 4.4 defines: the "
                "order's status could not be compared",
            )
        )
    for tag, name in ((14, "CumQty"), (151, "LeavesQty"), (6, "AvgPx")):
        text = report.get(tag)
        if text is not None and fix.venue_number(text) is None:
            out.append(
                RowError(
                    line,
                    str(tag),
                    printable(text[:40]),
                    f"{name} ({tag}) {printable(text[:40])!r} is not a number: it could not be "
                    "compared with the book",
                )
            )
    if status in _FIX_DONE or status in _FIX_LIVE:
        venue_done = status in _FIX_DONE
        if venue_done == after.live:
            them = "done" if venue_done else "still working"
            us = after.status.value
            out.append(
                RowError(
                    line,
                    "39",
                    status,
                    f"the venue reports OrdStatus (39) {status} (the order {them}), the book has "
                    f"order {after.order_id} {us} after this report: a report may be missing",
                )
            )
    for tag, name, ours in ((14, "CumQty", after.cum_qty), (151, "LeavesQty", after.leaves_qty)):
        theirs = stated(tag)
        if tag == 151 and (status == "3" or after.status is OrderStatus.DONE_FOR_DAY):
            continue  # FIX: LeavesQty may be 0 for an order done for the day
        if theirs is not None and theirs != ours:
            out.append(
                RowError(
                    line,
                    str(tag),
                    dec_str(theirs),
                    f"the venue reports {name} ({tag}) {dec_str(theirs)}, the book has "
                    f"{dec_str(ours)} for order {after.order_id} after this report: a report "
                    "may be missing or booked twice",
                )
            )
    theirs = stated(6)
    if theirs is not None and after.avg_px is not None and after.cum_qty > 0:
        # within what rounding explains: half a unit of the venue's last place (FIX fixes no
        # rounding rule: a tie may go up or down) and half a unit of the book's 12th
        places = max(-theirs.as_tuple().exponent, 0)  # type: ignore[operator]
        slack = Decimal(5).scaleb(-places - 1) + _AVG_SLACK
        if abs(after.avg_px - theirs) > slack:
            out.append(
                RowError(
                    line,
                    "6",
                    dec_str(theirs),
                    f"the venue reports AvgPx (6) {dec_str(theirs)}, the book has "
                    f"{dec_str(after.avg_px)} for order {after.order_id}",
                )
            )
    price = getattr(command, "price", None)
    if isinstance(command, orders.ApplyFill | orders.CorrectFill) and price is not None:
        limit = before.limit_price
        buy = before.side is Side.BUY
        if limit is not None and (price > limit if buy else price < limit):
            side = "buy" if buy else "sell"
            out.append(
                RowError(
                    line,
                    "31",
                    dec_str(price),
                    f"fill price {dec_str(price)} is beyond order {before.order_id}'s limit "
                    f"{dec_str(limit)} (a {side} fills at its limit or better)",
                )
            )
        if tick > 0 and price % tick != 0:
            out.append(
                RowError(
                    line,
                    "31",
                    dec_str(price),
                    f"fill price {dec_str(price)} is not a multiple of {before.symbol}'s tick "
                    f"size {dec_str(tick)}",
                )
            )
        quantity: Decimal = command.quantity
        if lot > 0 and quantity % lot != 0:
            out.append(
                RowError(
                    line,
                    "32",
                    dec_str(quantity),
                    f"fill quantity {dec_str(quantity)} is not a multiple of {before.symbol}'s "
                    f"lot size {dec_str(lot)}",
                )
            )
    if (
        before.tif is TimeInForce.FOK
        and before.live
        and not after.live
        and 0 < after.cum_qty < after.quantity
    ):  # (a venue may fill it in several executions at once: the end tells)
        out.append(
            RowError(
                line,
                "150",
                report.get(150) or "",
                f"order {after.order_id} is fill or kill (fok) and ended with "
                f"{dec_str(after.cum_qty)} of {dec_str(after.quantity)} filled: a venue fills "
                "all of it or none",
            )
        )
    if isinstance(command, orders.BustFill):
        out += _bust_disagrees(report, before, command, stated)
    if isinstance(command, orders.ApplyFill) and len(after.fills) > len(before.fills):
        # executed after its time in force ran out (a day order's session close, a gtd's
        # date): booked, the venue's fact, but the venue may be working it as another kind
        when = fix.trade_times(report, of_a_fill=True).exec_time or after.fills[-1].at
        done_at = due_at(before, inst.exchange, when)
        if done_at is not None:
            executed = utc_iso(when)
            out.append(
                RowError(
                    line,
                    "60",
                    executed,
                    f"order {before.order_id} ({before.tif.value}) filled at {executed}, after "
                    f"its time in force ran out at {utc_iso(done_at)}: the venue may be working "
                    "it as another kind of order",
                )
            )
    return out


def _closed_with_it(report: fix.Report, after: Order, command: Any) -> Any:
    """The venue's end of an order that a bust or correction left live in the book, when the
    report itself says the order is done: OrdStatus (39) canceled (4) or expired (C) with
    LeavesQty (151) 0 or absent. A venue that busts a trade of a filled order need not reopen
    it; the book follows what the venue reports rather than keep the order working (cash
    reserved, open to fills) where the venue has ended it. The command that ends it (an
    unsolicited cancel or an expiry, in the transaction that applies the report), or None."""
    if not isinstance(command, orders.CorrectFill | orders.BustFill) or not after.live:
        return None
    if after.leaves_qty <= 0:  # nothing left to end (a pending cancel of a now filled order)
        return None
    status, leaves = report.get(39), report.get(151)
    if status not in ("4", "C") or (
        leaves is not None and fix.venue_number(leaves) != 0  # (FIX floats: 0., .0)
    ):
        return None
    what = "bust" if isinstance(command, orders.BustFill) else "correction"
    stated = "" if leaves is None else ", LeavesQty (151) 0"
    reason = (
        f"the venue reported the order {'canceled' if status == '4' else 'expired'} with the "
        f"{what} of {command.exec_ref_id} (OrdStatus (39) {status}{stated})"
    )
    return orders.AcceptCancel(reason=reason) if status == "4" else orders.Expire(reason=reason)


_AVG_SLACK = Decimal("0.0000000000005")  # half a unit of the 12 places an average is kept to


def _still_suspended(report: fix.Report, before: Order, after: Order, command: Any) -> Any:
    """A restatement (D) of a suspended order whose own OrdStatus (39) is 9 (suspended): the
    venue restated the order's terms during the suspension (a corporate action in a halt), it
    did not resume it. The suspension again, in the same transaction, or None."""
    if (
        isinstance(command, orders.Restate)
        and before.condition is OrderStatus.SUSPENDED
        and report.get(39) == OrderStatus.SUSPENDED.fix
        and after.live
        and after.leaves_qty > 0
    ):
        return orders.Suspend(reason="restated still suspended (OrdStatus (39) 9)")
    return None


def _bust_disagrees(
    report: fix.Report,
    before: Order,
    command: orders.BustFill,
    stated: Callable[[int], Decimal | None],
) -> list[RowError]:
    """A bust's LastQty (32) or LastPx (31), when it states them (and not as 0), against the
    fill it busts as the book has it: a bust of another trade than the venue meant."""
    busted = next((f for f in before.fills if f.known_as(command.exec_ref_id)), None)
    if busted is None:
        return []
    out: list[RowError] = []
    for tag, name, ours in ((32, "LastQty", busted.quantity), (31, "LastPx", busted.price)):
        theirs = stated(tag)
        if theirs is not None and theirs not in (0, ours):
            out.append(
                RowError(
                    report.line,
                    str(tag),
                    dec_str(theirs),
                    f"the bust states {name} ({tag}) {dec_str(theirs)}, the fill it busts "
                    f"({command.exec_ref_id} of order {before.order_id}) was "
                    f"{dec_str(busted.quantity)} at {dec_str(busted.price)}",
                )
            )
    return out


def _apply_report(
    conn: Connection,
    ctx: Ctx,
    report: fix.Report,
    path: str,
    warnings: list[RowError],
    about: list[str] | None = None,
) -> bool:
    """One report in the caller's transaction: True when applied, False for a duplicate.
    BadInput, Refused or NotFound when it cannot be applied (nothing of it is written). Where
    the applied report disagrees with the book, `warnings` gets why (and the audit trail).
    `about` gets the id of the order the report names, once found (a refusal's order)."""
    command = None if fix.is_status_report(report) else fix.command(report)
    order = _report_order(conn, report)
    if about is not None:
        about.append(order.order_id)
    if order.venue == PAPER:
        raise BadInput(
            f"order {order.order_id}",
            "is on the paper venue, which books its own fills; a drop copy cannot change it",
        )
    fix.check_order(report, order)
    currency = report.get(15)
    if currency is not None:
        traded_in = book.get_instrument(conn, order.symbol).currency
        if currency != traded_in:
            raise BadInput(
                "Currency (15)",
                f"{currency} is not order {order.order_id}'s currency ({order.symbol} trades in "
                f"{traded_in}); the book converts nothing",
            )
    if command is None:  # an order status report (I): checked against the book, no change
        _check_status_report(conn, ctx, report, path, order, warnings)
        return True
    terms: _FillTerms | _CorrectionTerms | None = None
    if isinstance(command, orders.ApplyFill):
        terms = _fill_terms(conn, ctx, order, command, report)
    elif isinstance(command, orders.CorrectFill):
        terms = _correction_terms(conn, ctx, order, command, report)
    exec_time = (
        terms.exec_time
        if isinstance(terms, _FillTerms)
        else _report_time(ctx, order, fix.trade_times(report, of_a_fill=False).exec_time)
    )
    seen = _check_exec_id(conn, order, command, report, terms)
    if seen == _DUPLICATE:
        return False
    refused_before = (
        conn.execute(_REFUSED_REPORT, _refused_key(order.order_id, report)).first()
        if report.exec_id
        else None
    )
    if isinstance(command, orders.CorrectFill | orders.BustFill):
        _check_exec_ref(conn, order, command.exec_ref_id)
    if isinstance(command, _ABOUT_A_REQUEST) and _answered_already(conn, order, command, report):
        return False
    if isinstance(command, orders.AcceptCancel | orders.AcceptReplace):
        _check_answer_names_request(order, command, report)
    step = orders.decide(order, command, ctx.now, ctx.actor)
    # (a fill imported already is booked once: by the import)
    if isinstance(command, _BOOKED_COMMANDS) and seen != _IMPORTED:
        _book_report(conn, ctx, order, step.order, command, terms, exec_time)
    exec_id = report.exec_id
    steps, commands = [step], [command]
    closing = _closed_with_it(report, step.order, command) or _still_suspended(
        report, order, step.order, command
    )
    if closing is not None:  # the venue ended the order with the bust or correction, or
        # restated it still suspended
        try:
            steps.append(orders.decide(step.order, closing, ctx.now, ctx.actor))
            commands.append(closing)
        except Refused:  # the order as it now stands cannot end so: the report is applied,
            pass  # and its OrdStatus disagreeing with the book is warned of (_venue_disagrees)
    after = steps[-1].order
    _store_order(conn, after, ctx, steps, commands, exec_id=exec_id, before=order)
    # the transition with its reason (the venue's Text), and what an execution report books,
    # in the hash-chained trail (order_events keep them too, unchained)
    reason = step.order.history[-1].reason
    payload: dict[str, Any] = {
        "file": path,
        "line": report.line,
        "exec_id": exec_id,
        "event": step.event.value,
        "status": after.status.value,
        "reason": reason,
    }
    if isinstance(command, orders.ApplyFill | orders.CorrectFill):
        payload |= {"quantity": dec_str(command.quantity), "price": dec_str(command.price)}
    if isinstance(command, orders.CorrectFill | orders.BustFill):
        payload["exec_ref_id"] = command.exec_ref_id
    if len(steps) > 1:  # the venue ended the order with it (or restated it still suspended)
        payload["then"] = [
            {
                "event": st.event.value,
                "status": st.order.status.value,
                "reason": st.order.history[-1].reason,
            }
            for st in steps[1:]
        ]
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action="order.report",
        entity_type="order",
        entity_id=order.order_id,
        payload=payload,
        reason=reason,
    )
    inst = book.get_instrument(conn, order.symbol)
    found = _venue_disagrees(report, order, after, command, inst)
    if seen == _IMPORTED:
        found.append(
            RowError(
                report.line,
                "17",
                exec_id,
                f"ExecID {exec_id} was booked already by exec import, without its order: the "
                f"fill is counted on order {order.order_id} and not booked a second time",
            )
        )
    if refused_before is not None:  # applied as the venue's fact, never unseen
        at, file, line, why = refused_before
        found.append(
            RowError(
                report.line,
                "17",
                None,
                f"ExecID {exec_id} was refused before ({utc_iso(at)}, {file} line {line}: "
                f"{why}); applied now that the book has moved on: unless the venue sent it "
                "again corrected, it is applied out of its place in the sequence it was "
                "refused in, check it with the venue",
            )
        )
    _audit_discrepancies(conn, ctx, path, report, order.order_id, found)
    if isinstance(command, orders.AcceptReplace | orders.RejectReplace) or (
        isinstance(command, orders.CorrectFill | orders.BustFill) and after.live and not order.live
    ):
        _cancel_if_killed(conn, ctx, after)
    warnings += found
    return True


# the first refusal of a report to an order (refused_reports), by the order and its ExecID
_REFUSED_REPORT = select(
    refused_reports.c.refused_at,
    refused_reports.c.file,
    refused_reports.c.line,
    refused_reports.c.reason,
).where(
    refused_reports.c.order_id == bindparam("b_order_id"),
    refused_reports.c.exec_id == bindparam("b_exec_id"),
)


def _refused_key(order_id: str, report: fix.Report) -> dict[str, str]:
    return {"b_order_id": order_id, "b_exec_id": report.exec_id or ""}


def _remember_refusal(
    conn: Connection,
    ctx: Ctx,
    report: fix.Report,
    path: str,
    reason: str,
    about: Sequence[str],
) -> None:
    """Keep the first refusal of an ExecutionReport with an ExecID to an order it found
    (`about`: refused_reports), so that a later apply that can apply it says so. Not one whose
    order was not found (entered later, its reports apply as they come), nor status reports
    (they change nothing); cancel rejects have no ExecID."""
    if (
        not about
        or not report.exec_id
        or report.msg_type != fix.EXECUTION_REPORT
        or fix.is_status_report(report)
    ):
        return
    key = _refused_key(about[0], report)
    if conn.execute(_REFUSED_REPORT, key).first() is None:
        conn.execute(
            refused_reports.insert(),
            {
                "order_id": key["b_order_id"],
                "exec_id": key["b_exec_id"],
                "refused_at": ctx.now,
                "file": path,
                "line": report.line,
                "reason": reason,
            },
        )


def _check_status_report(
    conn: Connection,
    ctx: Ctx,
    report: fix.Report,
    path: str,
    order: Order,
    warnings: list[RowError],
) -> None:
    """An order status report (150=I, the venue's answer to a status request) states the order
    as the venue has it; it changes nothing (FIX sends ExecID 0 on it: it is no execution to
    de-duplicate). Where its OrdStatus (39), CumQty (14), LeavesQty (151) or AvgPx (6)
    disagree with the book, `warnings` gets why, as for any report (a report missed or booked
    twice). Audited (`order.status_report`) with what the book had, so that a check made is on
    record."""
    found = _venue_disagrees(report, order, order, None, book.get_instrument(conn, order.symbol))
    found += _status_report_disagrees(report, order, found)
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action="order.status_report",
        entity_type="order",
        entity_id=order.order_id,
        payload={
            "file": path,
            "line": report.line,
            "exec_id": report.exec_id,
            "status": order.status.value,
            "disagreements": len(found),
        },
    )
    _audit_discrepancies(conn, ctx, path, report, order.order_id, found)
    warnings += found


def _audit_discrepancies(
    conn: Connection,
    ctx: Ctx,
    path: str,
    report: fix.Report,
    order_id: str,
    found: Sequence[RowError],
) -> None:
    """Each way an applied report disagrees with the book, in the audit trail."""
    for w in found:
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="order.report_discrepancy",
            entity_type="order",
            entity_id=order_id,
            payload={
                "file": path,
                "line": report.line,
                "exec_id": report.exec_id,
                "reason": w.reason,
            },
            reason=w.reason,
        )


# FIX 4.4 OrdStatus values the book has no status for (oms.orders.OrderStatus keeps the rest)
_UNKEPT_FIX_STATUSES = {
    "7": "stopped",
    "B": "calculated: filled or done for the day",
    "D": "accepted for bidding",
}
# what OrdStatus B (calculated) agrees with: the order completed for the day
_COMPLETED_FOR_THE_DAY = frozenset({OrderStatus.FILLED, OrderStatus.DONE_FOR_DAY})


def _status_report_disagrees(
    report: fix.Report, order: Order, found: Sequence[RowError]
) -> list[RowError]:
    """What a status report (150=I) says beyond what _venue_disagrees compares: its OrdStatus
    (39) against the order's own status exactly (not only live against done: suspended
    against new, canceled against filled)."""
    out: list[RowError] = []
    line = report.line
    status = report.get(39)
    if status is not None and not any(w.field == "39" for w in found):
        ours = order.status.fix
        calculated = status == "B" and order.status in _COMPLETED_FOR_THE_DAY
        if status != ours and not calculated:
            try:
                reason = (
                    f"the venue reports OrdStatus (39) {status} "
                    f"({OrderStatus.from_fix(status).value}), the book has order "
                    f"{order.order_id} {order.status.value} ({ours}): a report may be missing"
                )
            except BadInput:
                known = _UNKEPT_FIX_STATUSES.get(status)
                reason = (
                    f"the venue reports OrdStatus (39) {status} ({known}), a status the book does "
                    f"not keep; it has order {order.order_id} {order.status.value} ({ours})"
                    if known
                    else f"OrdStatus (39) {status!r} is not a status FIX 4.4 defines: the "
                    "order's status could not be compared"
                )
            out.append(RowError(line, "39", status, reason))
    return out


def _drop_copy_text(data: bytes) -> tuple[str, list[RowError]]:
    """The file's text; a line that is not UTF-8 (FIX messages are ASCII) is refused on its own
    (a RowError with its line) and left empty, so that the others keep their line numbers and
    are still applied."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    bad: list[RowError] = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            lines.append(raw.decode("utf-8-sig" if n == 1 else "utf-8"))
        except UnicodeDecodeError as exc:
            lines.append("")
            bad.append(RowError(n, None, None, f"not UTF-8 text: byte 0x{raw[exc.start]:02x}"))
    return "\n".join(lines), bad


_NAMED_TAG = re.compile(r"\((\d+)\)$")  # "LastQty (32)"


def _fix_tag(exc: BadInput | Refused | NotFound) -> str | None:
    """The FIX tag a refusal names ("ExecID (17)" -> "17"), for the problem's field."""
    found = _NAMED_TAG.search(exc.what) if isinstance(exc, BadInput) else None
    return found[1] if found else None


def apply_reports(
    store: Store, ctx: Ctx, path: str, on_progress: Callable[[int, int], None] | None = None
) -> ApplyResult:
    """Apply a venue's drop copy in order, each message its own business event. A message that
    cannot be applied is refused with its line and reason (and audited); the rest go on.
    `on_progress(done, messages)`: once the file is read (done 0), then as messages are
    applied, skipped or refused."""
    text, undecodable = _drop_copy_text(tabular.read_bytes(path))
    parsed: list[fix.Report | RowError] = [*undecodable, *fix.parse(text, fix44=True)]
    if not parsed:
        raise BadInput(
            path,
            "has no messages (it is empty, or blank lines only): a drop copy with nothing in "
            "it is refused rather than taken for a quiet day; check how it was transferred",
        )
    progress = _ApplyProgress(path, len(parsed), on_progress=on_progress)
    progress.told()
    try:
        return _apply_parsed(store, ctx, path, parsed, progress)
    except (KeyboardInterrupt, Exception) as exc:
        # the database failed, or Ctrl-C or SIGTERM (or an error no message should raise) came
        # after messages committed: how far the file got, rather than a bare interrupt
        interrupted = isinstance(exc, KeyboardInterrupt) or caused_by_interrupt(exc)
        database, reason = _why_stopped(exc, interrupted=interrupted)
        if not database and (isinstance(exc, TieoutError) or not progress.committed):
            raise
        so_far = progress.result()
        first = next((p.line for p in parsed if isinstance(p, fix.Report)), None)
        summary = {**so_far.as_json(), "complete": False, "interrupted": reason}
        summary["next_line"] = progress.line or first
        done = (
            f"the messages before line {progress.line} ({so_far.applied} applied, "
            f"{so_far.duplicates} skipped as duplicates, {len(so_far.refused)} refused)"
            if progress.committed
            else None
        )
        raise PartlyDone(
            f"drop copy {path}",
            done,
            reason,
            "Apply the file again: what was applied is skipped as a duplicate (by ExecID).",
            summary,
            interrupted=interrupted,
            database=database,
        ) from exc


@dataclass(slots=True)
class _ApplyProgress:
    """How far a drop copy got: what committed, and the line being applied."""

    path: str
    messages: int
    applied: int = 0
    duplicates: int = 0
    committed: bool = False  # a transaction of this run committed (a message, or an audit)
    line: int | None = None
    refused: list[RowError] = dataclasses.field(default_factory=list)
    warnings: list[RowError] = dataclasses.field(default_factory=list)
    on_progress: Callable[[int, int], None] | None = None

    def told(self) -> None:
        """Tell the caller how many messages are done (applied, skipped or refused)."""
        if self.on_progress is not None:
            done = self.applied + self.duplicates + len(self.refused)
            self.on_progress(done, self.messages)

    def result(self) -> ApplyResult:
        refused = sorted(self.refused, key=lambda e: e.line or 0)
        return ApplyResult(
            self.path,
            self.messages,
            self.applied,
            self.duplicates,
            tuple(refused),
            tuple(self.warnings),
        )


def _audit_refusal(
    conn: Connection,
    ctx: Ctx,
    path: str,
    line: int | None,
    exec_id: str | None,
    reason: str,
    order_id: str | None = None,
) -> None:
    """A drop-copy line refused, in the audit trail: about the order it named once found (its
    audit events show the refusal, and the file), else about the file."""
    payload: dict[str, Any] = {"line": line, "exec_id": exec_id, "reason": reason}
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action="order.report_refused",
        entity_type="file" if order_id is None else "order",
        entity_id=path if order_id is None else order_id,
        payload=payload if order_id is None else {"file": path, **payload},
        reason=reason,
    )


def _apply_parsed(
    store: Store,
    ctx: Ctx,
    path: str,
    parsed: list[fix.Report | RowError],
    progress: _ApplyProgress,
) -> ApplyResult:
    refused = progress.refused
    unreadable = [p for p in parsed if isinstance(p, RowError)]
    if unreadable:  # lines that are no message to apply (bad checksum, ...): audited alike
        with ExitStack() as held:  # (an interrupt waits from the commit until it is counted)
            with store.write() as conn:
                for problem in unreadable:
                    _audit_refusal(conn, ctx, path, problem.line, None, problem.reason)
                held.enter_context(interrupts_held())
            refused += unreadable
            progress.committed = True
            progress.told()
    for report in (p for p in parsed if isinstance(p, fix.Report)):
        progress.line = report.line
        about: list[str] = []  # the order the report names, once found
        # Ctrl-C and SIGTERM wait from the commit until it is counted: the summary an
        # interrupt prints says exactly what committed
        try:
            with ExitStack() as held:
                with store.write() as conn:
                    found: list[RowError] = []
                    applied = _apply_report(conn, ctx, report, path, found, about)
                    held.enter_context(interrupts_held())
                progress.committed = True
                if applied:
                    progress.applied += 1
                else:
                    progress.duplicates += 1
                progress.warnings += found  # once committed
                progress.line = report.line + 1  # what is left starts after it
            progress.told()
        except (BadInput, Refused, NotFound) as exc:
            problem = RowError(report.line, _fix_tag(exc), None, exc.message)
            with ExitStack() as held:
                with store.write() as conn:
                    named = about[0] if about else None  # the order, once found
                    _audit_refusal(conn, ctx, path, report.line, report.exec_id, exc.message, named)
                    _remember_refusal(conn, ctx, report, path, exc.message, about)
                    held.enter_context(interrupts_held())
                refused.append(problem)
                progress.committed = True
                progress.line = report.line + 1
            progress.told()
    return progress.result()


# ---- batches -----------------------------------------------------------------------------------

FILE_REQUIRED = ("account", "symbol", "side", "qty")
FILE_OPTIONAL = ("type", "limit", "stop", "tif", "expire_at", "client_order_id", "venue")


@dataclass(frozen=True, slots=True)
class BatchLine:
    """What became of one row of an order file: what its acknowledgement says, not the order
    itself (a large file's lines are all kept until its summary is printed; the orders are in
    the book)."""

    line: int
    order_id: str | None  # None: the row never became an order (bad values, unknown names)
    client_order_id: str | None  # the order's; else the row's, as written (also when refused)
    status: OrderStatus | None
    duplicate: bool
    reason: str | None
    bad_input: bool = False
    risk_codes: tuple[str, ...] = ()  # the failed checks' stable codes (oms.risk.RiskCode)

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "status": self.status.value if self.status else None,
            "duplicate": self.duplicate,
            "reason": self.reason,
            "risk_codes": list(self.risk_codes),
        }


@dataclass(frozen=True, slots=True)
class BatchResult:
    file: str
    lines: tuple[BatchLine, ...]

    @property
    def accepted(self) -> int:
        return sum(
            1 for x in self.lines if x.order_id is not None and not x.duplicate and x.reason is None
        )

    @property
    def duplicates(self) -> int:
        """Repeats answered with the first order (a repeat of a rejected one counts as
        rejected: accepted + rejected + duplicates = orders)."""
        return sum(1 for x in self.lines if x.duplicate and x.reason is None)

    @property
    def rejected(self) -> int:
        return sum(1 for x in self.lines if x.reason is not None)

    def summary_json(self) -> dict[str, Any]:
        """as_json without its results (a CLI writes them as they come)."""
        return {
            "file": self.file,
            "orders": len(self.lines),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.summary_json(), "results": [x.as_json() for x in self.lines]}


def _request(row: dict[str, str | None]) -> OrderRequest:
    def enum(kind: Any, name: str, default: str) -> Any:
        text = (row.get(name) or default).strip().lower()
        try:
            return kind(text)
        except ValueError:
            allowed = ", ".join(k.value for k in kind)
            raise BadInput(name, f"{text!r} must be one of {allowed}") from None

    def price(name: str) -> Decimal | None:
        text = row.get(name)
        return None if text is None else parse_decimal(text, name, positive=True)

    def required(name: str) -> str:
        text = row.get(name)
        if text is None:  # an empty cell (read_csv makes it null)
            raise BadInput(name, "is empty; the column is required in every row")
        return text

    expire = row.get("expire_at")
    client_id = row.get("client_order_id")
    return OrderRequest(
        account=sys.intern(required("account")),  # shared by the rows that name it
        symbol=sys.intern(required("symbol")),
        side=enum(Side, "side", required("side")),
        quantity=parse_decimal(required("qty"), "qty", positive=True),
        type=enum(OrdType, "type", "market"),
        tif=enum(TimeInForce, "tif", "day"),
        limit_price=price("limit"),
        stop_price=price("stop"),
        expire_at=parse_date(expire, "expire_at", bounded=False) if expire else None,
        client_order_id=parse_ident(client_id, "client_order_id") if client_id else None,
        venue=venue_name(row.get("venue") or PAPER, "venue"),
    )


def venue_name(text: str, field: str) -> str:
    """A venue as an order names it: `paper` in any case is the paper venue (`PAPER` must not
    route an order to an external venue that never answers); other names as given."""
    name = parse_ident(text, field)
    return PAPER if name.lower() == PAPER else name


class FileRequests(Sequence[OrderRequest | BadInput]):
    """An order file's requests, made from its rows when a group asks for them, so that a large
    file's requests are not all held at once (each group's are dropped once it is decided).
    Blank lines are no orders; a row whose values cannot make a request is its BadInput."""

    __slots__ = ("_lines", "_rows")

    def __init__(self, tf: tabular.TextFile) -> None:
        import polars as pl

        blank = pl.all_horizontal(pl.col(c).is_null() for c in tf.frame.columns)
        self._lines = tf.lines  # where each row starts (tabular.line_of), not the whole file
        # the file's row index beside each non-blank row
        self._rows = tf.frame.with_row_index(_ROW).filter(~blank)

    def __len__(self) -> int:
        return self._rows.height

    @overload
    def __getitem__(self, index: int) -> OrderRequest | BadInput: ...

    @overload
    def __getitem__(self, index: slice) -> list[OrderRequest | BadInput]: ...

    def __getitem__(
        self, index: int | slice
    ) -> OrderRequest | BadInput | list[OrderRequest | BadInput]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            part = self._rows.slice(start, max(stop - start, 0)).drop(_ROW)
            return [_parsed(row) for row in part.iter_rows(named=True)]
        at = index + len(self) if index < 0 else index
        if not 0 <= at < len(self):
            raise IndexError(index)
        return self[at : at + 1][0]

    def __iter__(self) -> Iterator[OrderRequest | BadInput]:
        for at in range(0, len(self), 1000):
            yield from self[at : at + 1000]

    def line(self, index: int) -> int:
        """The physical line of request `index`."""
        return tabular.line_of(self._rows.item(index, _ROW), self._lines)

    def given(self, start: int, count: int) -> list[tuple[int, str | None]]:
        """Requests start.. start+count: each one's physical line and client order id as its
        row wrote it."""
        part = self._rows.slice(start, count)
        rows, client_ids = part.get_column(_ROW).to_list(), part.get_column("client_order_id")
        lines = [tabular.line_of(row, self._lines) for row in rows]
        return list(zip(lines, client_ids.to_list(), strict=True))


_ROW = "__row"  # not a column an order file may have (read_csv refuses unknown ones)


def _parsed(row: dict[str, str | None]) -> OrderRequest | BadInput:
    try:
        return _request(row)
    except BadInput as exc:
        return exc


def submit_file(
    store: Store,
    ctx: Ctx,
    path: str,
    on_commit: Callable[[Sequence[BatchLine]], None] | None = None,
    on_read: Callable[[int], None] | None = None,
) -> BatchResult:
    """Submit every row of an order file, each checked on its own against the book as the
    orders before it left it (the same decisions as one `submit` per row), in groups of
    oms.submission.CHUNK orders, one transaction each (group commit): a bad or refused row does
    not stop the others, and a crash loses at most the group being written, never part of an
    order. `on_commit` is given each group's lines once the group has committed (the
    acknowledgements); `on_read` the number of orders, once the file is read."""
    from oms import submission  # builds on this module

    rows = FileRequests(tabular.read_csv(path, required=FILE_REQUIRED, optional=FILE_OPTIONAL))
    if not len(rows):
        raise BadInput(path, "the file has a header but no orders (only blank lines)")
    if on_read is not None:
        on_read(len(rows))
    out: list[BatchLine] = []

    def committed(start: int, outcomes: list[submission.Outcome]) -> None:
        given = rows.given(start, len(outcomes))
        lines = [
            _batch_line(line, o, client_id)
            for (line, client_id), o in zip(given, outcomes, strict=True)
        ]
        out.extend(lines)
        if on_commit is not None:
            on_commit(lines)

    try:
        submission.submit_many(store, ctx, rows, committed)
    except database_errors() as exc:
        if caused_by_interrupt(exc) and not out:  # nothing committed: an interrupt as any
            raise KeyboardInterrupt from exc
        if len(out) < len(rows):
            raise _batch_interrupted(path, rows, out, exc) from exc
        # every group committed and was acknowledged; the database failed after the last one
        # (closing a connection): the file is done, and says so
    except (KeyboardInterrupt, Exception) as exc:
        # Ctrl-C or SIGTERM, or an error no row should raise, after groups committed: which
        # lines are in the book, rather than a bare interrupt or a traceback; an interrupt once
        # every group committed (the writer ending) leaves the file done, and it says so
        if isinstance(exc, TieoutError) or not out:
            raise
        if len(out) < len(rows):
            raise _batch_interrupted(path, rows, out, exc) from exc
        if not isinstance(exc, KeyboardInterrupt):
            raise
    repeats = {
        x.order_id
        for x in out
        if x.duplicate and x.order_id is not None and x.status is OrderStatus.REJECTED
    }
    if repeats:  # a repeat of a rejected order answers as the first time: with its risk codes
        with store.read() as conn:
            codes = {oid: reject_codes(conn, oid) for oid in sorted(repeats)}
        out = [
            dataclasses.replace(x, risk_codes=codes[x.order_id])
            if x.duplicate and x.order_id in codes
            else x
            for x in out
        ]
    return BatchResult(path, tuple(out))


def _why_stopped(exc: BaseException, *, interrupted: bool) -> tuple[bool, str]:
    """Whether the database stopped a command of many transactions part way, and why it
    stopped, as its summary says it (`interrupted`: Ctrl-C or SIGTERM)."""
    database = isinstance(exc, database_errors()) and not interrupted
    if database:
        return True, database_reason(exc)
    if interrupted:
        return False, "interrupted (Ctrl-C or SIGTERM)"
    return False, f"{type(exc).__name__}: {exc}"


def _batch_interrupted(
    path: str, rows: FileRequests, out: Sequence[BatchLine], exc: BaseException
) -> PartlyDone:
    """The database failed (or an interrupt or an unexpected error came) after some groups of an
    order file committed: which lines are in the book, and how to submit the rest without
    submitting any order twice."""
    done, total = len(out), len(rows)
    rest = rows.line(done)
    interrupted = caused_by_interrupt(exc)  # (PostgreSQL: a failed rollback after Ctrl-C)
    database, reason = _why_stopped(exc, interrupted=interrupted)
    named = all(isinstance(r, OrderRequest) and r.client_order_id for r in rows)
    advice = (
        "Submit the file again."
        if not done
        else "Submit the file again: every row has a client_order_id, so the committed orders "
        "come back as duplicates and only the rest are submitted."
        if named
        else f"Submit only the rows from line {rest} on: rows without a client_order_id would "
        "be submitted a second time."
    )
    summary = {
        **BatchResult(path, tuple(out)).as_json(),
        "complete": False,
        "interrupted": reason,
        "next_line": rest,
    }
    return PartlyDone(
        f"orders of {path}",
        f"the first {done} of {total} orders (lines {rows.line(0)} to {rows.line(done - 1)})"
        if done
        else None,
        reason,
        advice + " If the failure hit a commit, check `tieout order list` for the group after "
        "them."
        if database
        else advice,
        summary,
        interrupted=interrupted,
        database=database,
    )


def reject_codes(conn: Connection, order_id: str) -> tuple[str, ...]:
    """The risk codes an order was rejected with (from its events; none for a venue's reject or
    an order that was not rejected)."""
    return tuple(c for h in order_history(conn, order_id) for c in h.get("risk_codes", ()))


def _batch_line(line: int, outcome: Any, client_order_id: str | None = None) -> BatchLine:
    """A row's acknowledgement from its outcome (`client_order_id`: the row's, as written)."""
    error = outcome.error
    order = outcome.order
    if error is None and outcome.duplicate and order.status is OrderStatus.REJECTED:
        # the same answer as the first time, as a single submission gives: rejected, not taken
        why = f"a duplicate of an order that was rejected: {order.reject_reason}"
        return _order_line(line, order, True, why)
    if error is None:
        return _order_line(line, order, outcome.duplicate, None)
    if isinstance(error, RiskRejected):
        codes = tuple(code.value for code in error.result.codes)
        return _order_line(line, error.order, False, error.reason, codes)
    if isinstance(error, BadInput | NotFound):
        # a bad value, or a name (account, instrument) the book does not know: a value of the
        # file that cannot be accepted (exit 3, as the contract has it for files)
        return BatchLine(line, None, client_order_id, None, False, error.message, bad_input=True)
    if isinstance(error, Refused):
        return BatchLine(line, None, client_order_id, None, False, error.message)
    raise error


def _order_line(
    line: int, order: Order, duplicate: bool, reason: str | None, codes: tuple[str, ...] = ()
) -> BatchLine:
    return BatchLine(
        line,
        order.order_id,
        order.client_order_id,
        order.status,
        duplicate,
        reason,
        risk_codes=codes,
    )


# ---- expiry and stuck orders ---------------------------------------------------------------------


def expiry_due(order: Order, exchange: str, now: datetime) -> bool:
    """Whether a live order's time in force has run out by `now` (due_at)."""
    return due_at(order, exchange, now) is not None


def due_at(order: Order, exchange: str, now: datetime) -> datetime | None:
    """When a live order's time in force ran out, if it has by `now` (else None): a day order at
    the first session close after it was placed; a gtd order at the close of its expire date's
    session (the last day it may trade), or, when that date has no session (a weekend, a
    holiday), at the close of the last session before it. 24/7 instruments close at UTC
    midnight."""
    if not order.live:
        return None
    at = expiry_time(order, exchange)
    return at if at is not None and now >= at else None


def expiry_time(order: Order, exchange: str) -> datetime | None:
    """When a day or gtd order's time in force runs out (expiry_due); None for the others."""
    if order.tif is TimeInForce.DAY:
        return next_close(exchange, order.created_at)
    if order.tif is TimeInForce.GTD and order.expire_at is not None:
        day = order.expire_at
        end = _end_of_day(day)
        if exchange == ALWAYS_OPEN:
            return end
        for back in range(_SESSION_SEARCH_DAYS):  # the last session on or before the date
            bounds = session_bounds(exchange, day - timedelta(days=back))
            if bounds is not None:
                return bounds[1]
        return end
    return None


def _end_of_day(day: date) -> datetime:
    """The end of a UTC day (midnight after it); the last day there is (9999-12-31) ends at the
    last instant there is, not an OverflowError."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + timedelta(days=1) if day < date.max else datetime.max.replace(tzinfo=UTC)


# how far back a gtd date without a session looks for the last session before it (weekends,
# holiday runs such as Golden Week or the Lunar New Year)
_SESSION_SEARCH_DAYS = 15


def gtd_can_trade(exchange: str, expire_at: date, now: datetime) -> bool:
    """Whether a gtd order expiring on `expire_at` has a session left to trade in: the one the
    exchange is in now, or the next to open, on or before that date (24/7: until the date is
    over). A date without a session of its own (a Saturday) trades in the sessions before it."""
    if exchange == ALWAYS_OPEN:
        return now < _end_of_day(expire_at)
    current = session_label(exchange, now)
    if current is not None and current <= expire_at:
        return True
    upcoming = next_session_label(exchange, now)
    if upcoming is None:  # none within a fortnight: only a later date may still see one
        return expire_at > now.date() + timedelta(days=14)
    return upcoming <= expire_at


def expire_due(store: Store, ctx: Ctx) -> list[Order]:
    """Expire the paper venue's day and gtd orders whose time has come (an external venue
    reports its own expiries). Each order is its own business event, dated at the close its
    time in force ran out at, or at its last change if that came later (its history and
    `updated_at`; the audit event is dated when the job ran and names both, `session_close`
    and `expired_at`)."""
    with store.read() as conn:
        o = orders_table.c
        candidates = [
            load_state(s, conn)
            for s in conn.execute(
                select(o.state)
                .where(
                    o.status.in_(LIVE_STATUSES),
                    o.venue == PAPER,
                    o.tif.in_([TimeInForce.DAY.value, TimeInForce.GTD.value]),
                )
                .order_by(o.order_id)  # in the order they came: the report names a range
            ).scalars()
        ]
        exchanges = {i.symbol: i.exchange for i in book.list_instruments(conn)}
    expired: list[Order] = []
    try:
        for order in candidates:
            if not expiry_due(order, exchanges[order.symbol], ctx.now):
                continue
            with store.write() as conn:
                current = find(conn, order.order_id)  # as it is now, under the lock
                due = due_at(current, exchanges[order.symbol], ctx.now)
                if due is None:
                    continue
                # the paper venue expired it at the close, whenever this job runs: its history
                # says so (never before its last change); the audit trail says when it was done
                at_close = dataclasses.replace(ctx, now=max(due, current.updated_at))
                command = orders.Expire(reason=f"{current.tif.value} order past its session close")
                steps = _run(conn, at_close, current, [command])
                _store_order(
                    conn, steps[-1].order, at_close, steps, [command], before=current
                )
                audit.append(
                    conn,
                    at=ctx.now,
                    actor=ctx.actor,
                    action="order.expire",
                    entity_type="order",
                    entity_id=current.order_id,
                    payload={
                        "tif": current.tif.value,
                        "leaves_qty": dec_str(current.leaves_qty),
                        "session_close": utc_iso(due),
                        # the close, or the order's last change if that came after it
                        "expired_at": utc_iso(at_close.now),
                    },
                )
            expired.append(steps[-1].order)  # committed
    except database_errors() as exc:
        if not expired:
            raise  # nothing was changed: the generic database error says so
        raise PartlyDone(
            "order expire-due",
            f"{len(expired)} expired order(s) ({expired[0].order_id} to {expired[-1].order_id})",
            database_reason(exc),
            "Run `tieout order expire-due` again: it expires the rest, none twice.",
            [order_json(o, history=False) for o in expired],
        ) from exc
    return expired


def waiting_since(order: Order) -> datetime:
    """Since when an order has waited for its venue's answer: its submission while the venue
    has not acknowledged it (pending_new, also under a cancel or replace request), else the
    open request's time. A fill or a pending confirmation from the venue meanwhile does not
    answer the request, so it does not restart the wait; a cancel chained behind an
    unanswered replace waits since the replace."""
    if order.condition is OrderStatus.PENDING_NEW or order.pending is None:
        return order.created_at
    return order.pending.since


@dataclass(frozen=True, slots=True)
class Stuck:
    """An order its venue has left without an answer for too long: what it waits for (`new`:
    the venue to acknowledge it; `cancel`, `replace`: the answer to a request; `expiry`: an
    external day or gtd order past its time in force that the venue has not reported expired,
    done or canceled) and since when."""

    order: Order
    waiting_for: str
    since: datetime
    # an order the venue has not acknowledged yet (waiting for `new`) with a cancel or replace
    # asked for meanwhile: each open request and when it was made, oldest first (a cancel
    # chained behind a replace: both)
    requested: tuple[tuple[str, datetime], ...] = ()


_WAITING_FOR = {
    OrderStatus.PENDING_NEW: "new",
    OrderStatus.PENDING_CANCEL: "cancel",
    OrderStatus.PENDING_REPLACE: "replace",
}


def _stuck_waiting(order: Order, since: datetime) -> Stuck:
    """An order in pending_new, pending_cancel or pending_replace: one the venue has not
    acknowledged waits for `new` since its submission, whatever was asked of it since (the
    request and its time said beside: "waiting for cancel since" its submission misled)."""
    pending = order.pending
    if order.condition is OrderStatus.PENDING_NEW and pending is not None:
        opened = [] if pending.under is None else [pending.under]
        requests = tuple((r.kind.value, r.requested_at) for r in (*opened, pending))
        return Stuck(order, "new", since, requests)
    return Stuck(order, _WAITING_FOR[order.status], since)


def stuck(conn: Connection, now: datetime, older_than: timedelta) -> list[Stuck]:
    """Orders left waiting by their venue for longer than `older_than`, longest first: a silent
    venue must not look like a quiet day. Those in pending_new, pending_cancel or
    pending_replace (waiting_since), and the live day and gtd orders of external venues whose
    time in force ran out longer ago, unless the venue reported a day order done for day (tieout
    expires only the paper venue's orders: an external
    venue reports its own expiries, and its fills of the day may still come in a later drop
    copy; until the venue reports, the order keeps its reservation)."""
    if older_than < timedelta(0):
        raise BadInput("stuck minutes", "must not be negative")
    try:
        before = now - older_than
    except OverflowError:
        raise BadInput("stuck minutes", f"{older_than} reaches before the year 1") from None
    o = orders_table.c
    pending = [s.value for s in _WAITING_FOR]
    rows = conn.execute(
        select(o.state).where(
            o.status.in_(LIVE_STATUSES),
            o.created_at < before,  # every wait starts at or after the order's creation
            (o.status.in_(pending))
            | ((o.venue != PAPER) & o.tif.in_([TimeInForce.DAY.value, TimeInForce.GTD.value])),
        )
    )
    found = [load_state(s, conn) for s in rows.scalars()]
    exchanges = {i.symbol: i.exchange for i in book.list_instruments(conn)} if found else {}
    late: list[Stuck] = []
    for order in found:
        if order.status in _WAITING_FOR:
            since = waiting_since(order)
            if since < before:  # longer than, not exactly as long
                late.append(_stuck_waiting(order, since))
                continue
        done = order.status is OrderStatus.DONE_FOR_DAY and order.tif is TimeInForce.DAY
        if order.venue != PAPER and not done:
            # a day order done for day: the venue's final word on it (a gtd one may trade
            # again the next session, and its expiry is still owed)
            expires = expiry_time(order, exchanges[order.symbol])
            if expires is not None and expires < before:
                late.append(Stuck(order, "expiry", expires))
    return sorted(late, key=lambda x: (x.since, x.order.order_id))


# ---- kill switch --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """A kill switch after `risk kill` or `risk release`: whether the command changed it (an
    engaged switch engaged again, or one not engaged released, is left as it was), whether the
    global switch is engaged (it stops every account whatever its own switch says), and the
    orders the command canceled or asked to cancel."""

    account: str | None  # None: the global switch
    engaged: bool
    changed: bool
    global_engaged: bool
    canceled: tuple[Order, ...] = ()
    # the accounts whose own switch is engaged (a global release leaves them stopped)
    accounts_killed: tuple[str, ...] = ()
    # live orders with a cancel or replace open, left to the venue's answer to it: a replace
    # the venue accepts is asked to cancel then; one whose cancel it rejects works on (ops
    # chase it), so the operator is told which they are
    awaiting_venue: tuple[Order, ...] = ()


def engage_kill_switch(
    store: Store, ctx: Ctx, account: str | None, reason: str | None = None
) -> KillSwitch:
    """Stop new orders (of an account, or of everyone) and cancel every live order it covers,
    in one transaction: paper orders are canceled at once, external ones asked to cancel (a
    pending_new one too: pending_cancel over pending_new). An order with a cancel or replace
    open is left to the venue's answer to it. A switch engaged already is left as it is, and
    the live orders it covers are canceled all the same."""
    with store.write() as conn:
        changed = risk_limits.set_kill_flag(conn, ctx, account, on=True, reason=reason)
        o = orders_table.c
        q = select(o.state).where(o.status.in_(LIVE_STATUSES)).order_by(o.order_id)
        if account is not None:
            q = q.where(o.account == account)
        canceled, awaiting = [], []
        for state in conn.execute(q).scalars().all():
            order = load_state(state, conn)
            if order.pending is not None:
                # a cancel or replace is open: the venue's answer comes first; once it has
                # come, exec apply asks to cancel what is still live (_cancel_if_killed). (Its
                # cancel has no client order id of its own, so it is not chained behind an
                # open replace: orders, RequestCancel)
                awaiting.append(order)
                continue
            canceled.append(_kill_cancel(conn, ctx, order))
        return KillSwitch(
            account,
            engaged=True,
            changed=changed,
            global_engaged=account is None or risk_limits.load_limits(conn).kill_switch,
            canceled=tuple(canceled),
            accounts_killed=tuple(risk_limits.killed_accounts(conn)),
            awaiting_venue=tuple(awaiting),
        )


def _kill_cancel(conn: Connection, ctx: Ctx, order: Order) -> Order:
    """Cancel one order for the kill switch, and record it in the audit trail. Never refused for
    a clock behind the order's last change (as `order cancel` is: _check_clock): its request is
    dated no earlier than that change, as expire_due dates an expiry (the audit trail keeps when
    it was done)."""
    at = dataclasses.replace(ctx, now=max(ctx.now, order.updated_at))
    current = request_cancel(conn, at, order, "kill switch")
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action="order.cancel",
        entity_type="order",
        entity_id=current.order_id,
        payload={
            "client_order_id": current.client_order_id,
            "request": "kill switch",
            "status": current.status.value,
        },
        reason="kill switch",
    )
    return current


def _cancel_if_killed(conn: Connection, ctx: Ctx, order: Order) -> Order:
    """After the venue answered a replace, or a bust or correction gave a filled order
    something left to trade again: an order live, with no request open, under an engaged kill
    switch (its account's or the global one) is asked to cancel, in the same transaction. A
    replace pending when the switch was engaged was left to the venue, and a filled order had
    nothing to cancel then: either would otherwise go on working. (A cancel the venue rejected
    is not asked again: ops chase it.)"""
    if not order.live or order.pending is not None:
        return order
    if not risk_limits.killed(conn, order.account):
        return order
    return _kill_cancel(conn, ctx, order)


def release_kill_switch(
    store: Store, ctx: Ctx, account: str | None, reason: str | None = None
) -> KillSwitch:
    """Release a kill switch (audited); one that is not engaged is left as it is."""
    with store.write() as conn:
        changed = risk_limits.set_kill_flag(conn, ctx, account, on=False, reason=reason)
        glob = account is not None and risk_limits.load_limits(conn).kill_switch
        killed = tuple(risk_limits.killed_accounts(conn))
        return KillSwitch(
            account, engaged=False, changed=changed, global_engaged=glob, accounts_killed=killed
        )


# ---- the paper venue working resting orders against market data ---------------------------------


def bar_fill_price(order: Order, bar: md.Bar) -> Decimal | None:
    """The price at which a bar fills a resting limit, stop or stop-limit order, or None when the
    bar does not reach it. A buy limit fills at its limit or the open if the bar opened through
    it; a stop triggers when the bar trades through it and then fills at the stop or the open
    (a gap) as a market order, a stop-limit as a limit order. A stop or stop-limit order that
    has triggered already (orders.triggered: a trigger in its history, or a fill) works as a
    market or limit order on later bars, whether or not they trade through the stop again: a
    stop fills at their open."""
    buy = order.side is Side.BUY
    base = bar.open
    if orders.triggered(order):
        if order.type is OrdType.STOP:
            return bar.open  # triggered: a market order
    elif order.type in (OrdType.STOP, OrdType.STOP_LIMIT):
        if not stop_reached(order, bar):
            return None
        stop = order.stop_price
        assert stop is not None
        base = max(stop, bar.open) if buy else min(stop, bar.open)
        if order.type is OrdType.STOP:
            return base
    limit = order.limit_price
    if limit is None:
        return None
    if buy:
        return min(limit, base) if bar.low <= limit else None
    return max(limit, base) if bar.high >= limit else None


_NEW_TERMS = frozenset({orders.Event.ORDER_REPLACED, orders.Event.ORDER_RESTATED})


def terms_since(order: Order) -> datetime:
    """When the order's present terms took effect: its last replace or restatement, else its
    placement."""
    for h in reversed(order.history):
        if h.event in _NEW_TERMS:
            return h.at
    return order.created_at


def stop_reached(order: Order, bar: md.Bar) -> bool:
    """Whether a bar trades through a stop or stop-limit order's stop price (a buy's at or
    above it, a sell's at or below)."""
    stop = order.stop_price
    if order.type not in (OrdType.STOP, OrdType.STOP_LIMIT) or stop is None:
        return False
    return bar.high >= stop if order.side is Side.BUY else bar.low <= stop


def bar_fill_quantity(
    order: Order, bar: md.Bar, participation_pct: Decimal, lot_size: Decimal
) -> Decimal:
    """How much a bar can fill: the leaves, at most the participation rate of the bar's volume,
    in whole lots."""
    return paper.participation_quantity(bar.volume, participation_pct, lot_size, order.leaves_qty)


def _in_session(exchange: str, at: datetime) -> bool:
    """Whether the exchange is in session at a time (open <= at < close; 24/7 always)."""
    return trading_at(exchange, at)


def may_act(dialect: str, bar: md.Bar) -> ColumnElement[bool]:
    """Which resting orders a bar may fill or trigger (bar_fill_price, _remember_trigger), as
    a condition on their columns: a limit order whose limit the bar reaches; a stop or
    stop-limit order whose stop it reaches, or one triggered already (a fill, or a trigger
    among its events). The others are left unread: a bar is worked in time one query, not one
    order's state per resting order. At least every order the bar acts on: on SQLite, where
    decimals are stored as text, prices are compared as floating point with a margin of a
    billionth (the exact comparison is the pure one's, on the orders read); on PostgreSQL
    exactly."""
    o = orders_table.c
    low: Any
    high: Any
    if dialect == "sqlite":
        # float ok: bounds of which rows to read, widened; no amount or decision uses them
        lo, hi = float(bar.low), float(bar.high)  # float ok
        low, high = lo - abs(lo) * 1e-9, hi + abs(hi) * 1e-9

        def num(col: Any) -> Any:
            return cast(col, Float)

        filled = num(o.cum_qty) > 0
    else:
        low, high = bar.low, bar.high

        def num(col: Any) -> Any:
            return col

        filled = o.cum_qty > 0
    buy, sell = o.side == Side.BUY.value, o.side == Side.SELL.value
    limit, stop = num(o.limit_price), num(o.stop_price)
    e = order_events.c
    trigger = (
        select(e.event_id)
        .where(e.order_id == o.order_id, e.event == orders.Event.ORDER_TRIGGERED.value)
        .exists()
    )
    return or_(
        and_(
            o.type == OrdType.LIMIT.value,
            or_(and_(buy, limit >= low), and_(sell, limit <= high)),
        ),
        and_(
            o.type.in_([OrdType.STOP.value, OrdType.STOP_LIMIT.value]),
            or_(and_(buy, stop <= high), and_(sell, stop >= low), filled, trigger),
        ),
    )


def resting_query(dialect: str, bar: md.Bar) -> Select[str]:
    """The stored states of the paper venue's resting orders in the bar's symbol, placed by
    its time, that it may act on (may_act), oldest first: found by the index of the resting
    orders (ix_orders_resting), not by reading every order placed."""
    o = orders_table.c
    return (
        select(o.state)
        .where(
            o.symbol == bar.symbol,
            text(RESTING_WHERE),  # as the index says it
            o.type != OrdType.MARKET.value,
            o.created_at <= bar.time,
            may_act(dialect, bar),
        )
        .order_by(o.created_at, o.order_id)
    )


def fill_resting(
    store: Store,
    ctx: Ctx,
    import_id: int,
    touched: dict[str, Order] | None = None,
    late: list[LateBar] | None = None,
) -> list[Order]:
    """Work the paper venue's resting orders against the bars of one market-data import, in
    time order: each bar is its own business event (its fills executed at its time), and records
    itself worked (imports.bars_worked) in the same transaction, so that work a crash cut short
    resumes where it stopped (`fill_pending`): no bar is worked twice or never. A bar outside
    the instrument's session fills nothing (the venue trades only in session). The
    participation rate caps the venue's share of a bar for all its resting orders together,
    given out in time priority (oldest first). Its arithmetic runs in the book's exact context,
    whatever the caller's. `late` collects the backfilled bars that reached a resting order
    (LateBar), once their bar committed."""
    with localcontext(lots.CONTEXT):
        return _fill_resting(store, ctx, import_id, touched, late)


def _fill_resting(
    store: Store,
    ctx: Ctx,
    import_id: int,
    touched: dict[str, Order] | None,
    late: list[LateBar] | None,
) -> list[Order]:
    with store.read() as conn:
        bars = _import_bars(conn, import_id)
        terms = paper.load_terms(conn)
    # the orders filled, once their bar committed (`touched`: also a caller's, which keeps
    # what committed when a later bar fails)
    touched = {} if touched is None else touched
    outside: dict[str, LateBar] = {}  # the orders a bar outside the session reached (first)
    n = 0  # the bars worked
    while n < len(bars):
        in_bar: dict[str, Order] = {}
        late_in_bar: list[LateBar] = []
        with store.write() as conn:
            worked = conn.execute(
                select(imports.c.bars_worked).where(imports.c.import_id == import_id)
            ).scalar()
            n = max(n, worked or 0)  # (worked before a crash, or by another process)
            first = n
            # the symbols with a resting order (by ix_orders_resting): a bar of another symbol
            # reaches none, unread (building each bar's query cost 1.5 ms)
            o = orders_table.c
            resting_symbols = set(
                conn.execute(
                    select(o.symbol).where(text(RESTING_WHERE), o.type != OrdType.MARKET.value)
                    .distinct()
                ).scalars()
            )  # fmt: skip
            last_bar: dict[str, datetime] = {}  # each symbol's last bar taken in
            # a bar that reaches no resting order is worked with the bars beside it, in one
            # transaction (one commit a bar made an import of a million bars an hour's work);
            # a bar that may act is its own business event, alone in its transaction
            while n < len(bars) and n - first < _IDLE_BARS_AT_ONCE:
                bar = bars[n]
                resting = (
                    [
                        load_state(s, conn)
                        for s in conn.execute(resting_query(conn.dialect.name, bar)).scalars()
                    ]
                    if bar.symbol in resting_symbols
                    else []
                )
                if resting and n > first:
                    break  # its own transaction, next
                last_bar[bar.symbol] = bar.time
                n += 1
                if resting:
                    _forget_takes(conn, {bar.symbol: last_bar.pop(bar.symbol)})
                    in_bar, late_in_bar = _work_bar(
                        conn, ctx, import_id, bar, resting, terms, outside
                    )
                    break
            _forget_takes(conn, last_bar)  # (once a symbol, not once a bar)
            conn.execute(
                imports.update().where(imports.c.import_id == import_id).values(bars_worked=n)
            )
        touched.update(in_bar)  # committed
        if late is not None:
            late.extend(late_in_bar)
    if late is not None:  # each order a bar outside the session reached, its first such bar
        late += outside.values()
    return list(touched.values())


_IDLE_BARS_AT_ONCE = 1000  # bars that reach no resting order, worked in one transaction


def _forget_takes(conn: Connection, last_bar: dict[str, datetime]) -> None:
    """What earlier bars of each symbol gave out no longer counts once a later bar of it is
    worked (only the last bar's share is offered to ioc/fok orders): the table keeps about one
    bar per symbol. `last_bar`: each symbol's latest bar worked."""
    t = paper_bar_takes.c
    for symbol, until in last_bar.items():
        conn.execute(paper_bar_takes.delete().where(t.symbol == symbol, t.bar_time < until))


def _work_bar(
    conn: Connection,
    ctx: Ctx,
    import_id: int,
    bar: md.Bar,
    resting: list[Order],
    terms: paper.PaperTerms,
    outside: dict[str, LateBar],
) -> tuple[dict[str, Order], list[LateBar]]:
    """One bar's work on the resting orders it may act on (oldest first): the orders it
    filled, and the backfilled bars that reached one (LateBar); `outside` collects the orders
    a bar outside the session reached."""
    in_bar: dict[str, Order] = {}
    late_in_bar: list[LateBar] = []
    inst = book.get_instrument(conn, bar.symbol) if resting else None
    if inst is not None and not _in_session(inst.exchange, bar.time):
        # the venue trades only in session: a bar outside it fills nothing (the orders
        # it reached are said at the end, whatever later bars do: the same whether the
        # bars come in one file or many)
        for order in resting:
            if (
                order.order_id not in outside
                and _the_orders_bar(order, inst.exchange, bar)
                and bar_reaches(order, bar)
            ):
                outside[order.order_id] = LateBar(
                    order.order_id, order.symbol, bar.time, "outside_session"
                )
        resting = []
    if resting and _backfilled(conn, bar, import_id):
        # a bar older than one an earlier import brought (history filled in late):
        # the venue's time only goes forward, so it fills and triggers nothing (a stop
        # a later bar triggered would otherwise fill at a time before its trigger)
        assert inst is not None
        late_in_bar = [
            LateBar(order.order_id, order.symbol, bar.time, "backfilled")
            for order in resting
            if _the_orders_bar(order, inst.exchange, bar) and bar_reaches(order, bar)
        ]
        resting = []
    # the venue's share of the bar, for all its resting orders together (oldest first),
    # less what it gave out of the bar before (work resumed after a crash, or ioc/fok
    # orders while the bar was the last one)
    share = (
        paper.participation_quantity(bar.volume, terms.participation_pct, inst.lot_size)
        - _bar_taken(conn, bar.symbol, bar.time)
        if inst is not None
        else Decimal(0)
    )
    holds = _BarHolds(conn, bar.time)  # the cash accounts' holds, read once in this bar
    cash_accounts: dict[str, bool] = {}
    cycle: int | None = None  # the exchange's settlement cycle, read once in this bar
    for order in resting:
        assert inst is not None
        if not _the_orders_bar(order, inst.exchange, bar):
            continue
        price = bar_fill_price(order, bar)
        if price is None:
            _remember_trigger(conn, ctx, order, bar)
            continue
        if order.type is OrdType.STOP:  # triggered: it fills as a market order
            slipped = paper.slipped_price(
                price, order.side, terms.slippage_bps, inst.tick_size
            )  # but never outside the bar's range
            price = min(slipped, bar.high) if order.side is Side.BUY else max(slipped, bar.low)
        # on the tick (a bar's prices may lie off it), never beyond a limit
        price = paper.on_tick(price, order.side, inst.tick_size, bar.low, bar.high)
        limit = order.limit_price
        if limit is not None and (price > limit if order.side is Side.BUY else price < limit):
            price = limit
        qty = min(bar_fill_quantity(order, bar, terms.participation_pct, inst.lot_size), share)
        if qty <= 0:
            _remember_trigger(conn, ctx, order, bar)
            continue
        fill = orders.ApplyFill(
            ExecId(f"{order.order_id}-{len(order.fills) + 1}"),
            qty,
            price,
            reason=f"bar {utc_iso(bar.time)}",
        )
        answers: list[orders.ApplyFill | orders.AcceptCancel] = [fill]
        cash_account = cash_accounts.get(order.account)
        if cash_account is None:  # an account's type, read once in the bar
            cash_account = cash_accounts[order.account] = _cash_account(conn, order.account)
        if cash_account:
            # a cash account pays at most what it has at the fill price (a gap)
            answers = paper.within_cash(
                answers,
                order,
                _available_to(conn, order, inst.currency, holds),
                inst.lot_size,
                terms,
                inst.currency,
            )
        if cycle is None:
            cycle = book.settlement_days(conn, inst.exchange)
        done = in_bar[order.order_id] = _fill_from_bar(
            conn, ctx, order, answers, bar, terms, inst, cycle
        )
        if cash_account:  # what it holds now, for the younger orders after it
            holds.changed(done, inst.currency)
        share -= sum(a.quantity for a in answers if isinstance(a, orders.ApplyFill))
    return in_bar, late_in_bar


@dataclass(frozen=True, slots=True)
class LateBar:
    """A bar that reached a paper order's price (its limit, or its stop) inside the order's
    time in force, and that the paper venue did not work for it: it came too late (the order
    had expired, `order expire-due` having run before the bar was imported; or an earlier
    import had brought a later bar of the symbol: the venue's time only goes forward), or its
    time is outside the exchange's session (the venue trades only in session). Not an error:
    the import stands; said so that a fill the data seemed to allow is never lost unseen."""

    order_id: str
    symbol: str
    bar_time: datetime
    why: str  # "expired" | "backfilled" | "outside_session"
    expired_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "symbol": self.symbol,
            "bar_time": utc_iso(self.bar_time),
            "why": self.why,
            "expired_at": None if self.expired_at is None else utc_iso(self.expired_at),
        }

    def message(self) -> str:
        bar = f"the bar of {self.symbol} at {utc_iso(self.bar_time)} reached {self.order_id}"
        if self.why == "expired":
            assert self.expired_at is not None
            return (
                f"{bar}, which `order expire-due` expired at {utc_iso(self.expired_at)} before "
                "the bar was imported: not filled (import a session's bars before the expiry "
                "job runs)"
            )
        if self.why == "outside_session":
            return (
                f"{bar} outside its exchange's session: the paper venue trades only in "
                "session, so that bar did not fill it (a bar's time is its start: pre- and "
                "after-market bars, and daily bars stamped at midnight UTC, never fill an "
                "exchange's orders)"
            )
        return (
            f"{bar}, but an earlier import brought a later bar of {self.symbol}: the paper "
            "venue's time only goes forward, so it was not filled"
        )


def bar_reaches(order: Order, bar: md.Bar) -> bool:
    """Whether a bar reaches a resting order's price: a fill price (bar_fill_price), or for an
    untriggered stop or stop-limit order a stop it trades through (it would trigger it). One
    that triggered after the bar's time is judged as it stood then, untriggered; one triggered
    before only by its fill price (a triggered stop-limit by its limit, whatever the stop)."""
    if order.type in (OrdType.STOP, OrdType.STOP_LIMIT):
        since = _triggered_at(order)
        if since is None or bar.time < since:
            return stop_reached(order, bar)
    return bar_fill_price(order, bar) is not None


_TRIGGERING = frozenset({orders.Event.ORDER_TRIGGERED, orders.Event.FILL_APPLIED})


def _triggered_at(order: Order) -> datetime | None:
    """When a stop or stop-limit order triggered (its first trigger or fill), if it has."""
    return next((h.at for h in order.history if h.event in _TRIGGERING), None)


def reached_after_expiry(
    order: Order, exchange: str, bars: Sequence[md.Bar]
) -> tuple[md.Bar, datetime] | None:
    """The first of `bars` (in time order) that reached an expired day or gtd order inside its
    time in force: in session, at or after its present terms took effect and before it ran
    out; with the time it ran out. None when no bar did. Only the bars inside the order's time
    are looked at (an import of a long history against many expired orders)."""
    end = expiry_time(order, exchange)
    if order.status is not OrderStatus.EXPIRED or end is None:
        return None
    since = terms_since(order)
    for bar in bars[bisect_left(bars, since, key=_bar_time) :]:
        if bar.time >= end:
            break
        if _in_session(exchange, bar.time) and bar_reaches(order, bar):
            return bar, end
    return None


def _bar_time(bar: md.Bar) -> datetime:
    return bar.time


def late_for_expired(store: Store, import_id: int) -> list[LateBar]:
    """The paper orders an import's bars reached after `order expire-due` had expired them
    (reached_after_expiry): one LateBar an order, its first such bar."""
    with store.read() as conn:
        o = orders_table.c
        bars = _import_bars(conn, import_id)
        if not bars:
            return []
        by_symbol: dict[str, list[md.Bar]] = {}
        for bar in bars:
            by_symbol.setdefault(bar.symbol, []).append(bar)
        # expired since the import's first bar: only those can have expired before a bar of it
        expired = [
            load_state(s, conn)
            for s in conn.execute(
                select(o.state)
                .where(
                    o.status == OrderStatus.EXPIRED.value,
                    o.venue == PAPER,
                    o.symbol.in_(sorted(by_symbol)),
                    o.updated_at > bars[0].time,
                )
                .order_by(o.order_id)
            ).scalars()
        ]
        if not expired:
            return []
        exchanges = {i.symbol: i.exchange for i in book.list_instruments(conn)}
    late: list[LateBar] = []
    for order in expired:
        found = reached_after_expiry(order, exchanges[order.symbol], by_symbol[order.symbol])
        if found is not None:
            bar, end = found
            late.append(LateBar(order.order_id, order.symbol, bar.time, "expired", end))
    return late


def _import_bars(conn: Connection, import_id: int) -> list[md.Bar]:
    """The bars an import stored, in time order (then by symbol)."""
    mb = market_bars.c
    return [
        md.Bar(r.symbol, r.time, r.open, r.high, r.low, r.close, r.volume)
        for r in conn.execute(
            select(market_bars).where(mb.import_id == import_id).order_by(mb.time, mb.symbol)
        )
    ]


def _the_orders_bar(order: Order, exchange: str, bar: md.Bar) -> bool:
    """Whether a bar is the order's to fill by its time: not before the order's present terms
    (placed or last amended), nor after its time in force ran out (expire-due may not have run
    yet)."""
    return terms_since(order) <= bar.time and not expiry_due(order, exchange, bar.time)


def _backfilled(conn: Connection, bar: md.Bar, import_id: int) -> bool:
    """Whether an earlier import brought a bar of the symbol later than this one."""
    mb = market_bars.c
    later = conn.execute(
        select(mb.time)
        .where(mb.symbol == bar.symbol, mb.time > bar.time, mb.import_id < import_id)
        .limit(1)
    ).first()
    return later is not None


def _cash_account(conn: Connection, account: str) -> bool:
    return book.get_account(conn, account).type is AccountType.CASH


class _BarHolds:
    """What the live buy orders of the cash accounts a bar fills hold, per account and
    currency: read once in the bar's transaction (live_buy_holds), then kept as the bar's
    fills change them (`changed`), so that each fill asks for the sum of the older orders'
    holds without reading every older order again (RankedSums: the same sum, in log time).
    Within the transaction only the bar's fills change an order: a trigger (ExecType L)
    changes no hold, and the risk limits and paper terms are read once here. The last price a
    hold is priced at is as it stood at the bar's time (`through`): a later bar of the same
    import is the future (the same bars filled otherwise as one file than as one file each)."""

    def __init__(self, conn: Connection, through: datetime) -> None:
        self.conn = conn
        self.through = through
        self._by: dict[tuple[str, str], RankedSums] = {}
        self._limits: tuple[Decimal, paper.PaperTerms] | None = None
        self._last: dict[str, Decimal | None] = {}  # each symbol's last price, read once

    def _of(self, account: str, currency: str) -> RankedSums:
        key = (account, currency)
        found = self._by.get(key)
        if found is None:
            held = live_buy_holds(self.conn, account, currency, self._last, self.through)
            found = self._by[key] = RankedSums(held)
        return found

    def _last_close(self, symbol: str) -> Decimal | None:
        if symbol not in self._last:
            self._last[symbol] = _last_close(self.conn, symbol, self.through)
        return self._last[symbol]

    def older(self, order: Order, currency: str) -> Decimal:
        """What the account's live buys placed before `order` hold (ids grow with time)."""
        with localcontext(lots.CONTEXT):
            return self._of(order.account, currency).before(order.order_id)

    def changed(self, order: Order, currency: str) -> None:
        """`order` as a fill left it: what it holds now (nothing once it is done)."""
        if order.side is not Side.BUY:
            return  # a sale holds no cash (order_reservation)
        holds = self._of(order.account, currency)
        if self._limits is None:
            conn = self.conn
            self._limits = (
                risk_limits.load_limits(conn).market_buffer_pct,
                paper.load_terms(conn),
            )
        buffer, terms = self._limits
        last = partial(self._last_close, order.symbol)
        with localcontext(lots.CONTEXT):
            holds.set(
                order.order_id,
                order_reservation(order, last, buffer, terms, currency=currency),
            )


def _available_to(conn: Connection, order: Order, currency: str, holds: _BarHolds) -> Decimal:
    """The cash a live order may spend (a buy) or must keep whole (a sale's commission) when
    a bar fills it: the account's cash in the currency less what its *older* live buy orders
    hold. Time priority, as the bar's share is given out: a younger order's reservation,
    repriced as the market moved (a stop's at the new last price), never cuts an older order's
    fill; and what is spent never exceeds the cash, so a cash account stays at or above zero."""
    cash = book.cash_total(conn, order.account, currency, keep=True)
    older = holds.older(order, currency)
    with localcontext(lots.CONTEXT):
        return cash - older


def _fill_from_bar(
    conn: Connection,
    ctx: Ctx,
    order: Order,
    answers: list[orders.ApplyFill | orders.AcceptCancel],
    bar: md.Bar,
    terms: paper.PaperTerms,
    inst: book.Instrument,
    cycle: int,
) -> Order:
    """Book the paper venue's answers to a resting order from one bar (a fill, and the rest
    canceled when a cash account cannot pay it), each step stored and the fill audited.
    `cycle`: the settlement cycle of the instrument's exchange."""
    steps: list[Transition] = []
    current = order
    for answer in answers:
        before = current
        step = orders.decide(before, answer, ctx.now, ctx.actor)
        steps.append(step)
        current = step.order
        payload: dict[str, Any] = {"bar": utc_iso(bar.time), "status": current.status.value}
        if isinstance(answer, orders.ApplyFill):
            fee = paper.fill_charge(terms, before, answer, currency=inst.currency)
            _book_fill(
                conn, ctx, current, answer, at=bar.time, commission=fee, inst=inst, cycle=cycle
            )
            conn.execute(
                paper_bar_takes.insert(),
                {
                    "symbol": bar.symbol,
                    "bar_time": bar.time,
                    "order_id": order.order_id,
                    "quantity": answer.quantity,
                },
            )
            payload |= {"quantity": answer.quantity, "price": answer.price}
            action = "order.paper_fill"
        else:
            payload["reason"] = answer.reason
            action = "order.paper_cancel"
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action=action,
            entity_type="order",
            entity_id=order.order_id,
            payload=payload,
        )
    _store_order(conn, current, ctx, steps, list(answers), before=order)
    return current


def _bar_taken(conn: Connection, symbol: str, at: datetime) -> Decimal:
    """What the paper venue has given out of the share of the symbol's bar at `at`."""
    t = paper_bar_takes.c
    found = conn.execute(select(t.quantity).where(t.symbol == symbol, t.bar_time == at)).scalars()
    return sum(found, Decimal(0))


def _remember_trigger(conn: Connection, ctx: Ctx, order: Order, bar: md.Bar) -> None:
    """A bar that reached an untriggered stop's price but filled none of it (a stop-limit's
    limit not reached, or no share of the bar left): the order triggered (ExecType L), and
    works from now on as a limit (or market) order whatever the price does next."""
    if orders.triggered(order) or not stop_reached(order, bar):
        return
    command = orders.TriggerOrder(reason=f"bar {utc_iso(bar.time)}")
    step = orders.decide(order, command, ctx.now, ctx.actor)
    _store_order(conn, step.order, ctx, [step], [command], before=order)
    audit.append(
        conn,
        at=ctx.now,
        actor=ctx.actor,
        action="order.paper_trigger",
        entity_type="order",
        entity_id=order.order_id,
        payload={"bar": utc_iso(bar.time), "stop_price": order.stop_price},
    )


def fill_pending(
    store: Store,
    ctx: Ctx,
    *,
    before: str | None = None,
    summary: dict[str, Any] | None = None,
    late: list[LateBar] | None = None,
) -> list[Order]:
    """Finish working every market-data import whose bars the paper venue has not all worked
    (a crash between an import and its fills, or among them). When the database fails part
    way: PartlyDone, naming the fills that committed and `before`, what the caller committed
    before (an import's bars; `summary`: its JSON, completed with the fills). `late`: as
    fill_resting's."""
    with store.read() as conn:
        mb, i = market_bars.c, imports.c
        pending = (
            conn.execute(
                select(i.import_id)
                .join(market_bars, mb.import_id == i.import_id)
                .where(i.kind == md_book.IMPORT_KIND)
                .group_by(i.import_id, i.bars_worked)
                .having(func.coalesce(i.bars_worked, 0) < func.count())
                .order_by(i.import_id)
            )
            .scalars()
            .all()
        )
    touched: dict[str, Order] = {}
    try:
        for import_id in pending:
            fill_resting(store, ctx, import_id, touched, late)
    except database_errors() as exc:
        if not touched and before is None:
            raise  # nothing was changed: the generic database error says so
        reason = database_reason(exc)
        fills = f"{len(touched)} resting paper order(s) filled" if touched else None
        raise PartlyDone(
            "the paper venue's work on the imported bars",
            "; ".join(x for x in (before, fills) if x),
            reason,
            "Run `tieout md import` again (with the same file its bars come back unchanged): "
            "the paper venue works the bars it has not worked yet, none twice.",
            {
                **(summary or {}),
                "paper_orders_filled": len(touched),
                "complete": False,
                "interrupted": reason,
            },
        ) from exc
    return list(touched.values())
