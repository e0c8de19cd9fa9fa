"""Transaction monitoring at the edge: read one business date's orders, executions, history,
bars and sessions; run the pure rules (oms.surveil); store each alert with its evidence and the
run's audit event in one transaction.

`surveil_alerts` is append-only and each alert's key is unique: rerunning a date on the same
data adds nothing (the run itself is still audited, with the settings it used); new data that
changes an alert's evidence adds a new alert next to the old one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from oms import audit, executions, lots
from oms import surveil as sv
from oms.book import Ctx, exchanges_of, get_account, get_setting, put_setting
from oms.calendars import ALWAYS_OPEN, day_end, exchange_zone, session_bounds
from oms.errors import NotFound
from oms.marketdata import Bar
from oms.schema import executions as executions_table
from oms.schema import market_bars, order_events, orders, settings, surveil_alerts
from oms.store import Store, next_id
from oms.values import Side, day_start, dec_str, utc_iso

_IN_CHUNK = 1000
_DAY = timedelta(days=1)
_OR_CHUNK = 200


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---- settings --------------------------------------------------------------------------------


def load_settings(conn: Connection) -> sv.Settings:
    rows = conn.execute(
        select(settings.c.key, settings.c.value).where(settings.c.key.startswith(sv.PREFIX))
    )
    return sv.settings_from({k.removeprefix(sv.PREFIX): v for k, v in rows})


def set_setting(store: Store, ctx: Ctx, name: str, text: str) -> sv.Settings:
    """Change one threshold (validated, audited); returns the settings now in force. Linked
    accounts must exist."""
    param, value = sv.parse_param(name, text)
    with store.write() as conn:
        if param.name == "links":
            for group in value:
                for account in sorted(group):
                    get_account(conn, account)
        shown = param.show(value)
        if get_setting(conn, sv.PREFIX + param.name) != shown:
            put_setting(conn, ctx, sv.PREFIX + param.name, shown)
        return load_settings(conn)


# ---- reading a day ---------------------------------------------------------------------------


def _order_facts(conn: Connection, day: date) -> list[sv.OrderFact]:
    """Orders with an event near the date, with all their events: from the UTC day before to
    the UTC day after, since the date is the one on each order's exchange (its local day:
    Sydney's session of a date opens the UTC evening before); the rules take what falls on
    the date (surveil._on_day), and the order rate windows that begin on it."""
    ev = order_events.c
    start, end = day_start(day - timedelta(days=1)), day_start(day + timedelta(days=2))
    ids = sorted(
        conn.execute(select(ev.order_id).where(ev.at >= start, ev.at < end).distinct()).scalars()
    )
    events: dict[str, list[sv.OrderEvent]] = {}
    facts = []
    o = orders.c
    for chunk in _chunks(ids, _IN_CHUNK):
        for order_id, event, status, at in conn.execute(
            select(ev.order_id, ev.event, ev.status, ev.at)
            .where(ev.order_id.in_(chunk))
            .order_by(ev.event_id)
        ):
            events.setdefault(order_id, []).append(sv.OrderEvent(event, status, at))
        for r in conn.execute(
            select(
                o.order_id,
                o.account,
                o.symbol,
                o.side,
                o.quantity,
                o.limit_price,
                o.status,
                o.cum_qty,
                o.created_at,
            ).where(o.order_id.in_(chunk))
        ):
            facts.append(
                sv.OrderFact(
                    r.order_id,
                    r.account,
                    r.symbol,
                    Side(r.side),
                    r.quantity,
                    r.limit_price,
                    r.status,
                    r.cum_qty,
                    r.created_at,
                    tuple(events.get(r.order_id, ())),
                )
            )
    facts.sort(key=lambda f: (f.submitted_at, f.order_id))
    return facts


def _order_ids(
    conn: Connection, accounts: Sequence[str], since: date
) -> dict[tuple[str, str], str]:
    """(venue, exec_id) -> order_id of the accounts' executions from a trade date on."""
    e = executions_table.c
    out: dict[tuple[str, str], str] = {}
    for chunk in _chunks(accounts, _IN_CHUNK):
        rows = conn.execute(
            select(e.venue, e.exec_id, e.order_id).where(
                e.account.in_(chunk), e.trade_date >= since, e.order_id.is_not(None)
            )
        )
        out.update({(v, x): str(o) for v, x, o in rows})
    return out


def _trades(
    conn: Connection, day: date, history_days: int
) -> tuple[list[sv.Trade], list[sv.Trade], dict[tuple[str, str], Decimal]]:
    """The date's effective executions, the same accounts' history and their opening
    positions (corrections and busts applied, as positions see them)."""
    e = executions_table.c
    accounts = sorted(
        conn.execute(select(e.account).where(e.trade_date == day).distinct()).scalars()
    )
    since = day - timedelta(days=history_days)
    order_of = _order_ids(conn, accounts, since)
    today: list[sv.Trade] = []
    past: list[sv.Trade] = []
    opening: dict[tuple[str, str], Decimal] = {}
    for account in accounts:
        for f in lots.effective_fills(executions.records(conn, account=account)):
            if f.trade_date > day:
                continue
            if f.trade_date < day:
                key = (f.account, f.symbol)
                opening[key] = opening.get(key, Decimal(0)) + f.quantity * f.side.sign
                if f.trade_date < since:
                    continue
            trade = sv.Trade(
                f.seq,
                f.venue,
                f.exec_id,
                f.account,
                f.symbol,
                f.side,
                f.quantity,
                f.price,
                f.trade_date,
                f.exec_time,
                order_of.get((f.venue, f.exec_id)),
            )
            (today if f.trade_date == day else past).append(trade)
    return today, past, opening


def _markets(exchanges: Mapping[str, str], day: date) -> dict[str, sv.Market]:
    """Each symbol's trading hours on the date, from its exchange."""
    out: dict[str, sv.Market] = {}
    for symbol, exchange in exchanges.items():
        if exchange == ALWAYS_OPEN:
            out[symbol] = sv.Market(symbol, always_open=True)
            continue
        bounds = session_bounds(exchange, day) or (None, None)
        out[symbol] = sv.Market(
            symbol,
            session_open=bounds[0],
            session_close=bounds[1],
            day_from=day_end(exchange, day - _DAY),  # the date on the exchange
            day_to=day_end(exchange, day),
        )
    return out


def _close_bars(conn: Connection, data: sv.DayData, window: timedelta) -> list[Bar]:
    """Bars in the close window of each symbol traded on the date."""
    spans = []
    for symbol in sorted({t.symbol for t in data.trades}):
        close = sv.close_of(data.markets.get(symbol), data)
        if close is not None:
            spans.append((symbol, close - window, close))
    b = market_bars.c
    out: list[Bar] = []
    for chunk in _chunks(spans, _OR_CHUNK):
        cond = or_(*(and_(b.symbol == s, b.time >= lo, b.time < hi) for s, lo, hi in chunk))
        out.extend(
            Bar(r.symbol, r.time, r.open, r.high, r.low, r.close, r.volume)
            for r in conn.execute(
                select(b.symbol, b.time, b.open, b.high, b.low, b.close, b.volume).where(cond)
            )
        )
    out.sort(key=lambda bar: (bar.symbol, bar.time))
    return out


def day_data(conn: Connection, day: date, s: sv.Settings) -> sv.DayData:
    """Everything the rules read about a business date (each exchange's: trades by their
    trade date, orders by their events' local day on their exchange)."""
    facts = _order_facts(conn, day)
    today, past, opening = _trades(conn, day, s.history_days)
    symbols = {t.symbol for t in today} | {o.symbol for o in facts}
    exchanges = exchanges_of(conn, symbols | {t.symbol for t in past})  # one read for both
    zones = {sym: exchange_zone(x) for sym, x in exchanges.items()}
    data = sv.DayData(
        day,
        facts,
        today,
        past,
        opening,
        (),
        _markets({s: x for s, x in exchanges.items() if s in symbols}, day),
        zones,
    )
    if sv.MARKING_CLOSE in s.rules and today:
        data = dataclasses.replace(data, bars=_close_bars(conn, data, s.close_window))
    return data


# ---- stored alerts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAlert:
    alert_id: int
    alert_key: str
    business_date: date
    rule: str
    account: str | None
    symbol: str | None
    score: Decimal
    details: dict[str, Any]
    evidence: dict[str, Any]
    created_at: datetime
    actor: str
    # a later alert of the same rule, date, account and symbol on evidence that changed since
    # (a correction, late data): this one's figures are no longer the book's
    superseded_by: int | None = None

    def evidence_ids(self) -> frozenset[str]:
        """As surveil.Alert.evidence_ids, from the stored evidence."""
        return frozenset(
            [f"order:{o['order_id']}" for o in self.evidence.get("orders", [])]
            + [f"exec:{t['venue']}:{t['exec_id']}" for t in self.evidence.get("executions", [])]
        )

    def as_json(self, *, evidence: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "account": self.account,
            "symbol": self.symbol,
            "score": dec_str(self.score),
            "details": self.details,
            "business_date": self.business_date.isoformat(),
            "alert_key": self.alert_key,
            "created_at": utc_iso(self.created_at),
            "created_by": self.actor,
            "superseded_by": self.superseded_by,
        }
        if evidence:
            doc["evidence"] = self.evidence
        return doc


def _stored(row: Any) -> StoredAlert:
    return StoredAlert(
        int(row.alert_id),
        row.alert_key,
        row.business_date,
        row.rule,
        row.account,
        row.symbol,
        row.score,
        json.loads(row.details),
        json.loads(row.evidence),
        row.created_at,
        row.actor,
    )


def list_alerts(
    conn: Connection, day: date | None = None, rule: str | None = None
) -> list[StoredAlert]:
    """Stored alerts (of a date, of a rule), by id, each with the alert that superseded it."""
    a = surveil_alerts.c
    q = select(surveil_alerts).order_by(a.alert_id)
    if day is not None:
        q = q.where(a.business_date == day)
    if rule is not None:
        q = q.where(a.rule == rule)
    return _with_superseded(conn, [_stored(r) for r in conn.execute(q)])


def _with_superseded(conn: Connection, alerts: list[StoredAlert]) -> list[StoredAlert]:
    """The alerts, each with the first later alert that names it in `supersedes` (read from
    the alerts of their dates)."""
    if not alerts:
        return alerts
    a = surveil_alerts.c
    rows: list[tuple[int, dict[str, Any]]] = []
    days = sorted({x.business_date for x in alerts})
    for chunk in _chunks(days, _IN_CHUNK):
        rows += (
            (int(alert_id), json.loads(details))
            for alert_id, details in conn.execute(
                select(a.alert_id, a.details).where(a.business_date.in_(chunk))
            )
        )
    later = sv.superseded(sorted(rows, key=lambda r: r[0]))
    return [dataclasses.replace(x, superseded_by=later.get(x.alert_id)) for x in alerts]


def get_alert(conn: Connection, alert_id: int) -> StoredAlert:
    row = conn.execute(select(surveil_alerts).where(surveil_alerts.c.alert_id == alert_id)).first()
    if row is None:
        raise NotFound("surveillance alert", str(alert_id))
    return _with_superseded(conn, [_stored(row)])[0]


def _by_keys(conn: Connection, keys: Sequence[str]) -> dict[str, StoredAlert]:
    out: dict[str, StoredAlert] = {}
    for chunk in _chunks(keys, _IN_CHUNK):
        for row in conn.execute(
            select(surveil_alerts).where(surveil_alerts.c.alert_key.in_(chunk))
        ):
            out[row.alert_key] = _stored(row)
    return out


@dataclass(frozen=True, slots=True)
class RunResult:
    day: date
    alerts: tuple[StoredAlert, ...]  # what the rules found, as stored (new or from earlier runs)
    new_ids: frozenset[int]
    settings: sv.Settings

    def as_json(self) -> list[dict[str, Any]]:
        return [{**a.as_json(), "new": a.alert_id in self.new_ids} for a in self.alerts]


def run(store: Store, ctx: Ctx, day: date) -> RunResult:
    """Run the rules on a business date and store what is new, with the run's audit event, in
    one transaction. The rules run on a consistent read of the book, outside the book lock."""
    # the trades' sums and the rules' figures in the book's exact context, not the caller's
    with localcontext(lots.CONTEXT):
        with store.read() as conn:
            s = load_settings(conn)
            data = day_data(conn, day, s)
        found = list({a.key: a for a in sv.run_rules(data, s)}.values())
    keys = [a.key for a in found]
    with store.write() as conn:
        earlier = _of_day(conn, day)  # every key found is of this date
        taken = {s.alert_key for s in earlier}
        replaced = sv.superseded((s.alert_id, s.details) for s in earlier)
        # the newest stored alert on the same evidence (also one stored under a key of before,
        # a digest of its ids only): the same alert, not a new one, unless a later alert
        # superseded it and the evidence came back since (a correction undone): the book's
        # figures are then this evidence's again, and a new alert says so
        same = {(s.rule, s.account, s.symbol, sv.evidence_digest(s.evidence)): s for s in earlier}
        existing: dict[str, StoredAlert] = {}
        new: list[tuple[str, sv.Alert]] = []  # (the key it is stored under, the alert)
        for a in found:
            kept = same.get((a.rule, a.account, a.symbol, sv.evidence_digest(a.evidence())))
            if kept is not None and kept.alert_id not in replaced:
                existing[a.key] = kept
                continue
            key, n = a.key, 1
            while key in taken:  # the evidence of a superseded alert, back again
                n += 1
                key = f"{a.key}~{n}"
            taken.add(key)
            new.append((key, a))
        new_ids: list[int] = []
        if new:
            first = next_id(conn, surveil_alerts, "alert_id")
            for i, (key, a) in enumerate(new):
                conn.execute(
                    surveil_alerts.insert().values(
                        alert_id=first + i,
                        alert_key=key,
                        business_date=day,
                        rule=a.rule,
                        account=a.account,
                        symbol=a.symbol,
                        score=a.score,
                        details=audit.canonical_json(_superseding(a, earlier)),
                        evidence=audit.canonical_json(a.evidence()),
                        created_at=ctx.now,
                        actor=ctx.actor,
                    )
                )
                new_ids.append(first + i)
        audit.append(
            conn,
            at=ctx.now,
            actor=ctx.actor,
            action="surveil.run",
            entity_type="surveillance",
            entity_id=day.isoformat(),
            payload={
                "date": day.isoformat(),
                "alerts": len(found),
                "new_alert_ids": new_ids,
                "by_rule": {r: sum(1 for a in found if a.rule == r) for r in sv.RULES},
                "orders": len(data.orders),
                "executions": len(data.trades),
                "settings": s.as_json(),
            },
        )
        made = _by_keys(conn, [key for key, _ in new])
        stored = {**existing, **{a.key: made[key] for key, a in new}}
        alerts = _with_superseded(conn, [stored[k] for k in keys])
    return RunResult(day, tuple(alerts), frozenset(new_ids), s)


def _of_day(conn: Connection, day: date) -> list[StoredAlert]:
    a = surveil_alerts.c
    rows = conn.execute(select(surveil_alerts).where(a.business_date == day).order_by(a.alert_id))
    return [_stored(r) for r in rows]


def _superseding(alert: sv.Alert, earlier: Sequence[StoredAlert]) -> dict[str, Any]:
    """The alert's details, naming the stored alerts of its rule, date, account and symbol
    that share evidence with it (`supersedes`): their figures came from evidence that changed
    since (a correction), or they hold part of this one's (late data). They stay as they
    were raised; `surveil list` shows what superseded them."""
    ids = alert.evidence_ids()
    older = sorted(
        s.alert_id
        for s in earlier
        if (s.rule, s.account, s.symbol) == (alert.rule, alert.account, alert.symbol)
        and s.evidence_ids() & ids
    )
    return {**alert.details, **({"supersedes": older} if older else {})}
