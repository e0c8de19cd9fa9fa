"""Order commands: order submit, cancel, show, list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cli.common import (
    ActorOpt,
    DbOpt,
    JsonOpt,
    ProgressTask,
    acknowledging,
    clock,
    decimal_arg,
    emit_json,
    emit_json_list,
    emit_json_with_list,
    make_ctx,
    open_store,
    partial_json,
    progress_bar,
    say,
)
from oms import book, order_book
from oms.errors import BadInput, Refused
from oms.orders import Order, OrderStatus
from oms.values import OrdType, Side, TimeInForce, parse_date, parse_ident, utc_iso

order_app = typer.Typer(help="Orders: submit, cancel, show, list.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(order_app, name="order")


E = TypeVar("E", Side, OrdType, TimeInForce, OrderStatus)


def _choice(kind: type[E], text: str, option: str) -> E:
    try:
        return kind(text.strip().lower())
    except ValueError:
        allowed = ", ".join(k.value for k in kind)
        raise BadInput(option, f"{text!r} must be one of {allowed}") from None


def _price(text: str | None, option: str) -> Decimal | None:
    return None if text is None else decimal_arg(text, option, positive=True)


def _say_listed(doc: dict[str, Any], note: str = "") -> None:
    """An order's line, from its listing (order_book.order_listing) or its JSON: its terms
    (type, prices, time in force and, routed, its venue: a routed order and a paper one read
    alike), where it stands."""
    px = f" avg {doc['avg_px']}" if doc["avg_px"] is not None else ""
    prices = [f"{k} {doc[k + '_price']}" for k in ("stop", "limit") if doc[k + "_price"]]
    terms = " ".join(prices) or doc["type"]  # "limit 99", "stop 95 limit 94", "market"
    terms += f" {doc['tif']}" + ("" if doc["venue"] == order_book.PAPER else f" at {doc['venue']}")
    say(
        f"order {doc['order_id']} ({doc['client_order_id']}) {doc['side']} {doc['quantity']} "
        f"{doc['symbol']} {terms}: {doc['status']}, filled {doc['cum_qty']}{px}{note}"
    )


def _say_order(order: Order, note: str = "") -> None:
    _say_listed(order_book.order_json(order, history=False), note)


def _say_change(result: order_book.Changed, *, json: bool) -> None:
    """A cancel's or amend's answer; a resend of a request already recorded is marked a
    duplicate (it changed nothing), as a repeated submission is."""
    if json:
        doc = order_book.order_json(result.order, history=False)
        emit_json({**doc, "duplicate": result.duplicate})
    else:
        note = " (duplicate: this request was recorded before)" if result.duplicate else ""
        _say_order(result.order, note)


@order_app.command("submit")
def submit(
    account: Annotated[str | None, typer.Option(help="account")] = None,
    symbol: Annotated[str | None, typer.Option(help="symbol")] = None,
    side: Annotated[str | None, typer.Option(help="buy or sell")] = None,
    qty: Annotated[str | None, typer.Option(help="quantity")] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="market (the default), limit, stop, stop_limit")
    ] = None,
    limit: Annotated[str | None, typer.Option(help="limit price")] = None,
    stop: Annotated[str | None, typer.Option(help="stop price")] = None,
    tif: Annotated[str | None, typer.Option(help="day (the default), gtc, ioc, fok, gtd")] = None,
    expire_at: Annotated[str | None, typer.Option(help="gtd: last day (YYYY-MM-DD)")] = None,
    client_order_id: Annotated[str | None, typer.Option(help="your id, unique per account")] = None,
    venue: Annotated[
        str | None, typer.Option(help="paper (the simulated venue, the default) or an external one")
    ] = None,
    file: Annotated[str | None, typer.Option(help="CSV of orders (columns: the options)")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Submit an order (or a CSV of them with --file): risk-checked, recorded, routed. The same
    client order id again returns the first order (marked duplicate); with other terms it is
    refused."""
    if file is not None:
        given = {
            "--account": account,
            "--symbol": symbol,
            "--side": side,
            "--qty": qty,
            "--type": type_,
            "--limit": limit,
            "--stop": stop,
            "--tif": tif,
            "--expire-at": expire_at,
            "--client-order-id": client_order_id,
            "--venue": venue,
        }
        extra = [name for name, value in given.items() if value is not None]
        if extra:  # the file's rows carry the terms: an option beside it would be ignored
            raise typer.BadParameter(
                f"{', '.join(extra)} cannot be given with --file (the file's columns carry "
                "each order's terms)"
            )
        _submit_file(file, db, actor, json)
        return
    if account is None or symbol is None or side is None or qty is None:
        raise typer.BadParameter(  # a usage error (exit 2): which options the command needs
            "give --account, --symbol, --side and --qty, or --file"
        )
    req = order_book.OrderRequest(
        account=account,
        symbol=symbol,
        side=_choice(Side, side, "--side"),
        quantity=decimal_arg(qty, "--qty", positive=True),
        type=_choice(OrdType, "market" if type_ is None else type_, "--type"),
        tif=_choice(TimeInForce, "day" if tif is None else tif, "--tif"),
        limit_price=_price(limit, "--limit"),
        stop_price=_price(stop, "--stop"),
        expire_at=parse_date(expire_at, "--expire-at", bounded=False) if expire_at else None,
        client_order_id=parse_ident(client_order_id, "--client-order-id")
        if client_order_id
        else None,
        venue=order_book.venue_name("paper" if venue is None else venue, "--venue"),
    )
    try:
        result = order_book.submit(open_store(db), make_ctx(actor), req)
    except order_book.RiskRejected as exc:
        if json:
            codes = [code.value for code in exc.result.codes]  # stable: oms.risk.RiskCode
            doc = order_book.order_json(exc.order, history=False)
            emit_json({**doc, "duplicate": False, "risk_codes": codes})
        raise
    if json:
        doc = {**order_book.order_json(result.order, history=False), "duplicate": result.duplicate}
        if result.duplicate and result.order.status is OrderStatus.REJECTED:
            with open_store(db).read() as conn:  # the same answer as the first time
                doc["risk_codes"] = list(order_book.reject_codes(conn, result.order.order_id))
        emit_json(doc)
    else:
        _say_order(
            result.order, " (duplicate: the first order is returned)" if result.duplicate else ""
        )
    if result.duplicate and result.order.status is OrderStatus.REJECTED:
        # the same answer as the first time: that order was rejected (exit 4), not accepted
        raise Refused(
            f"order {result.order.order_id} ({result.order.client_order_id})",
            f"a duplicate of an order that was rejected: {result.order.reject_reason}",
            "duplicate_of_rejected",
        )


def _submit_file(file: str, db: str | None, actor: str | None, json: bool) -> None:
    with partial_json(json), progress_bar() as bar:
        task = ProgressTask(bar, f"{Path(file).name}: committed")

        def committed(lines: Sequence[order_book.BatchLine]) -> None:
            task.advance(len(lines))

        result = order_book.submit_file(
            open_store(db), make_ctx(actor), file, committed, task.start
        )
    with acknowledging():  # every group committed: the lines say which order each row got
        if json:
            lines = (x.as_json() for x in result.lines)
            emit_json_with_list(result.summary_json(), "results", lines)
        else:
            say(
                f"{file}: {len(result.lines)} orders, {result.accepted} accepted, "
                f"{result.rejected} rejected, {result.duplicates} duplicates"
            )
            for x in result.lines:
                if x.reason:
                    say(f"  line {x.line}: {x.reason}")
    if any(x.bad_input for x in result.lines):
        raise BadInput(file, f"{sum(x.bad_input for x in result.lines)} row(s) had bad values")
    if result.rejected:
        raise Refused(f"orders of {file}", f"{result.rejected} order(s) rejected", "rejected")


@order_app.command("cancel")
def cancel(
    order_id: Annotated[str | None, typer.Argument(help="order id")] = None,
    client_order_id: Annotated[str | None, typer.Option(help="or its client order id")] = None,
    account: Annotated[str | None, typer.Option(help="account of the client order id")] = None,
    new_client_order_id: Annotated[
        str | None, typer.Option(help="id of the cancel request")
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Cancel an order (at once on paper; pending_cancel on an external venue)."""
    _need_one(order_id, client_order_id)
    result = order_book.cancel(
        open_store(db),
        make_ctx(actor),
        order_id,
        client_order_id=client_order_id,
        account=account,
        new_client_order_id=(
            None
            if new_client_order_id is None
            else parse_ident(new_client_order_id, "--new-client-order-id")
        ),
    )
    _say_change(result, json=json)


@order_app.command("expire-due")
def expire_due(db: DbOpt = None, actor: ActorOpt = None, json: JsonOpt = False) -> None:
    """Expire paper day orders past their session close and gtd orders past their date."""
    with partial_json(json):
        expired = order_book.expire_due(open_store(db), make_ctx(actor))
    if json:
        emit_json([order_book.order_json(o, history=False) for o in expired])
        return
    say(f"{len(expired)} order(s) expired")
    for o in expired:
        _say_order(o)


@order_app.command("amend")
def amend(
    order_id: Annotated[str | None, typer.Argument(help="order id")] = None,
    client_order_id: Annotated[str | None, typer.Option(help="or its client order id")] = None,
    account: Annotated[str | None, typer.Option(help="account of the client order id")] = None,
    qty: Annotated[str | None, typer.Option(help="new quantity")] = None,
    limit: Annotated[str | None, typer.Option(help="new limit price")] = None,
    new_client_order_id: Annotated[str | None, typer.Option(help="id of the amended order")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Amend an order's quantity or limit price (at once on paper; pending_replace on an
    external venue until it answers)."""
    _need_one(order_id, client_order_id)
    if qty is None and limit is None:
        raise typer.BadParameter("give --qty or --limit (or both)")
    result = order_book.amend(
        open_store(db),
        make_ctx(actor),
        order_id,
        client_order_id=client_order_id,
        account=account,
        quantity=_price(qty, "--qty"),
        limit_price=_price(limit, "--limit"),
        new_client_order_id=(
            None
            if new_client_order_id is None
            else parse_ident(new_client_order_id, "--new-client-order-id")
        ),
    )
    _say_change(result, json=json)


def _need_one(order_id: str | None, client_order_id: str | None) -> None:
    if (order_id is None) == (client_order_id is None):
        raise typer.BadParameter("name the order by ORDER_ID or --client-order-id (one of them)")


@order_app.command("show")
def show(
    order_id: Annotated[str | None, typer.Argument(help="order id")] = None,
    client_order_id: Annotated[str | None, typer.Option(help="or its client order id")] = None,
    account: Annotated[str | None, typer.Option(help="account of the client order id")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show an order with its history (read from its events)."""
    _need_one(order_id, client_order_id)
    with open_store(db).read() as conn:
        order = order_book.find(conn, order_id, account=account, client_order_id=client_order_id)
        history = order_book.order_history(conn, order.order_id)
    codes = [c for h in history for c in h.get("risk_codes", ())]
    doc = {**order_book.order_json(order, history=False), "history": history, "risk_codes": codes}
    if json:
        emit_json(doc)
        return
    _say_order(order)
    for h in history:
        extra = f" [{', '.join(h['risk_codes'])}]" if h.get("risk_codes") else ""
        say(f"  {h['at']} {h['status']:<17} {h['actor']:<12} {h['reason'] or ''}{extra}")


STUCK_MINUTES = 15  # order list --stuck: how long a venue may leave an order waiting


def _minutes(minutes: int) -> timedelta:
    """--stuck-minutes as a timespan (order_book.stuck refuses a negative one)."""
    try:
        return timedelta(minutes=minutes)
    except OverflowError:
        raise BadInput("stuck minutes", f"{minutes} is more than a timespan can hold") from None


@order_app.command("list")
def list_(
    account: Annotated[str | None, typer.Option(help="only this account")] = None,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    stuck: Annotated[
        bool, typer.Option("--stuck", help="only orders waiting too long for their venue")
    ] = False,
    stuck_minutes: Annotated[
        int | None, typer.Option(help="with --stuck: how long is too long (default 15)")
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """List orders (--stuck: left waiting by their venue for too long: pending_new,
    pending_cancel or pending_replace, or an external day or gtd order past its expiry that the
    venue has not reported)."""
    if stuck_minutes is not None and not stuck:  # it would list every order, quietly
        raise typer.BadParameter("--stuck-minutes goes with --stuck")
    wanted = _choice(OrderStatus, status, "--status").value if status else None
    with open_store(db).read() as conn:
        if account is not None:
            book.get_account(conn, account)  # an account the book does not know: exit 5
        if not stuck:  # every order of a large book: written as read, from one snapshot
            listing = order_book.order_listing(conn, account=account, status=wanted)
            if json:
                emit_json_list(listing)
                return
            for doc in listing:
                _say_listed(doc)
            return
        late = [
            x
            for x in order_book.stuck(
                conn, clock(), _minutes(STUCK_MINUTES if stuck_minutes is None else stuck_minutes)
            )
            if account in (None, x.order.account) and wanted in (None, x.order.status.value)
        ]
    if json:
        emit_json(
            [
                {
                    **order_book.order_json(x.order, history=False),
                    "waiting_for": x.waiting_for,
                    "waiting_since": utc_iso(x.since),
                    **(
                        {
                            "requests": [
                                {"request": kind, "requested_at": utc_iso(at)}
                                for kind, at in x.requested
                            ]
                        }
                        if x.requested
                        else {}
                    ),
                }
                for x in late
            ]
        )
        return
    for x in late:
        asked = "".join(f"; {kind} requested {utc_iso(at)}" for kind, at in x.requested)
        _say_order(x.order, f" (waiting for {x.waiting_for} since {utc_iso(x.since)}{asked})")
