"""Risk commands: show and set limits, engage and release kill switches (all audited)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import (
    ActorOpt,
    DbOpt,
    JsonOpt,
    NumberArgs,
    emit_json,
    make_ctx,
    note,
    open_store,
    say,
)
from oms import order_book, risk_limits
from oms.risk import Limits
from oms.values import dec_str

risk_app = typer.Typer(help="Pre-trade risk limits and kill switches.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(risk_app, name="risk")


_seconds = risk_limits.seconds_text


def _limits_json(limits: Limits) -> dict[str, Any]:
    return {
        "max_order_quantity": dec_str(limits.max_order_quantity),
        "max_notional": dec_str(limits.max_notional),
        "price_collar_pct": dec_str(limits.price_collar_pct),
        "market_buffer_pct": dec_str(limits.market_buffer_pct),
        "max_price_age_s": _seconds(limits.max_price_age),
        "duplicate_window_s": _seconds(limits.duplicate_window),
        "max_orders_per_window": limits.max_orders_per_window,
        "rate_window_s": _seconds(limits.rate_window),
        "max_notional_by_currency": {
            ccy: dec_str(cap) for ccy, cap in sorted(limits.notional_by_currency.items())
        },
        "tiers": {
            name: {"max_position": dec_str(t.max_position)}
            for name, t in sorted(limits.tiers.items())
        },
        "kill_switch": limits.kill_switch,
    }


@risk_app.command("show")
def show(db: DbOpt = None, json: JsonOpt = False) -> None:
    """The limits in force (defaults unless changed with `tieout risk set`), the global kill
    switch and the accounts whose own switch is engaged."""
    with open_store(db).read() as conn:
        doc = _limits_json(risk_limits.load_limits(conn))
        doc["killed_accounts"] = risk_limits.killed_accounts(conn)  # their own switches
    if json:
        emit_json(doc)
        return
    for k, v in doc.items():
        # (the global switch beside the accounts' own: "kill_switch off" beside an account
        # killed read as if nothing were engaged)
        label = "kill_switch (global)" if k == "kill_switch" else k
        say(f"{label:<26} {_shown(v)}")


def _shown(value: Any) -> str:
    """A `risk show` value as text: a mapping as `key value` pairs, a list by commas."""
    if isinstance(value, dict):
        if not value:
            return "(none)"
        return ", ".join(f"{k} {_shown(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "(none)"
    if isinstance(value, bool):
        return "engaged" if value else "off"
    return str(value)


@risk_app.command("set", cls=NumberArgs)
def set_(
    name: Annotated[
        str,
        typer.Argument(
            help="e.g. max-notional, max-notional.JPY, tier.standard.max-position"
        ),
    ],
    value: str,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Change one limit (audited)."""
    store = open_store(db)
    limits = risk_limits.set_limit(store, make_ctx(actor), name, value)
    untraded = risk_limits.untraded_currency(store, name)
    if untraded is not None:
        currency, traded = untraded
        note(
            f"no instrument of this book trades in {currency} yet: the cap applies once one "
            f"does (instruments trade in {', '.join(traded) or 'no currency yet'})"
        )
    if json:
        emit_json(_limits_json(limits))
    else:
        say("{} = {}".format(*risk_limits.canonical_setting(name, value)))  # as stored


@risk_app.command("kill")
def kill(
    account: Annotated[str | None, typer.Option(help="one account (else: everyone)")] = None,
    reason: Annotated[str | None, typer.Option(help="why")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Engage a kill switch: refuse new orders and cancel the live ones it covers."""
    done = order_book.engage_kill_switch(open_store(db), make_ctx(actor), account, reason)
    if json:
        emit_json(
            {
                "account": account,
                "kill_switch": True,
                "changed": done.changed,
                "global_kill_switch": done.global_engaged,
                "killed_accounts": list(done.accounts_killed),
                "canceled": [order_book.order_json(o, history=False) for o in done.canceled],
                "awaiting_venue": [
                    order_book.order_json(o, history=False) for o in done.awaiting_venue
                ],
            }
        )
    else:
        what = "engaged" if done.changed else "was engaged already"
        say(
            f"kill switch {what} for {account or 'every account'}; "
            f"{len(done.canceled)} order(s) canceled or asked to cancel"
        )
        if done.awaiting_venue:
            listed = ", ".join(
                f"{o.order_id} ({o.client_order_id}, {o.status.value})" for o in done.awaiting_venue
            )
            say(
                f"{len(done.awaiting_venue)} live order(s) with a cancel or replace open are left "
                f"to the venue's answer: {listed}; a replace it accepts is then asked to cancel, "
                "a cancel it rejects leaves the order working: chase those with the venue"
            )


@risk_app.command("release")
def release(
    account: Annotated[
        str | None, typer.Option(help="one account (else: the global switch)")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="why")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
    json: JsonOpt = False,
) -> None:
    """Release a kill switch."""
    done = order_book.release_kill_switch(open_store(db), make_ctx(actor), account, reason)
    if json:
        emit_json(
            {
                "account": account,
                "kill_switch": False,
                "changed": done.changed,
                "global_kill_switch": done.global_engaged,
                "killed_accounts": list(done.accounts_killed),
            }
        )
        return
    who = account or "every account"
    say(
        f"kill switch released for {who}"
        if done.changed
        else f"kill switch for {who} was not engaged: nothing changed"
    )
    if done.global_engaged:
        say(f"the global kill switch is still engaged: {who} cannot trade until it is released")
    if account is None and done.accounts_killed:
        say(
            "accounts whose own kill switch is still engaged: "
            + ", ".join(done.accounts_killed)
            + " (release each with --account)"
        )
