"""Trade confirmations (SEC Rule 10b-10): one document per execution. Pure.

Each confirmation states the date and time of the transaction, the security, whether it was a
purchase or a sale, the quantity, the price, the commission and fees, the firm's capacity
(agent unless the setting firm.capacity says otherwise), the settlement date, the account and
the firm. A correction gets a corrected confirmation naming the execution it corrects, a bust
a cancellation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Any

from oms.lots import CONTEXT
from oms.values import Side, dec_str, utc_iso
from reports.firm import Firm
from reports.statement import AccountInfo

TITLES = {
    "fill": "Trade confirmation",
    "correct": "Corrected trade confirmation",
    "bust": "Cancellation of a trade",
}


@dataclass(frozen=True, slots=True)
class ExecutionFacts:
    """One stored execution row, as the book holds it."""

    id: int
    exec_id: str
    venue: str
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    currency: str
    trade_date: date
    settle_date: date
    exec_time: datetime | None
    commission: Decimal
    fees: Decimal
    order_id: str | None
    client_order_id: str | None
    exec_type: str  # fill | correct | bust
    ref_exec_id: str | None


@dataclass(frozen=True, slots=True)
class ConfirmationInput:
    execution: ExecutionFacts
    account: AccountInfo
    exchange: str
    firm: Firm
    generated_at: datetime
    # a correction's or bust's: when the trade it changes was executed (its row's own
    # exec_time is when the change was sent or booked); a fill's is its exec_time
    traded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Confirmation:
    number: str  # venue-exec_id: unique (exec_id is unique per venue)
    title: str
    execution: ExecutionFacts
    account: AccountInfo
    exchange: str
    gross: Decimal  # quantity * price
    net: Decimal  # buy: gross + costs (due from the client); sell: gross - costs (due to it)
    capacity: str
    firm: Firm
    generated_at: datetime
    traded_at: datetime | None = None  # ConfirmationInput.traded_at

    @property
    def traded_time(self) -> datetime | None:
        """When the trade confirmed was executed: for a correction or bust, the trade's it
        changes (None when that fill has no time: never the change's own)."""
        if self.execution.exec_type != "fill":
            return self.traded_at
        return self.execution.exec_time

    @property
    def side_text(self) -> str:
        return "Bought" if self.execution.side is Side.BUY else "Sold"

    @property
    def file_name(self) -> str:
        e = self.execution
        raw = f"confirm-{e.trade_date.isoformat()}-{e.account}-{e.venue}-{e.exec_id}"
        return re.sub(r"[^A-Za-z0-9._-]", "_", raw)

    def as_json(self) -> dict[str, Any]:
        e = self.execution
        return {
            "confirmation": self.number,
            "title": self.title,
            "exec_type": e.exec_type,
            "ref_exec_id": e.ref_exec_id,
            "exec_id": e.exec_id,
            "venue": e.venue,
            "account": e.account,
            "account_name": self.account.name,
            "symbol": e.symbol,
            "exchange": self.exchange,
            "currency": e.currency,
            "side": e.side.value,
            "quantity": dec_str(e.quantity),
            "price": dec_str(e.price),
            "gross": dec_str(self.gross),
            "commission": dec_str(e.commission),
            "fees": dec_str(e.fees),
            "net": dec_str(self.net),
            "trade_date": e.trade_date.isoformat(),
            "exec_time": utc_iso(e.exec_time) if e.exec_time else None,
            "traded_at": utc_iso(self.traded_time) if self.traded_time else None,
            "settle_date": e.settle_date.isoformat(),
            "capacity": self.capacity,
            "order_id": e.order_id,
            "client_order_id": e.client_order_id,
            "firm": self.firm.as_json(),
            "generated_at": utc_iso(self.generated_at),
        }


def build_confirmation(inp: ConfirmationInput) -> Confirmation:
    e = inp.execution
    with localcontext(CONTEXT):
        gross = e.quantity * e.price
        costs = e.commission + e.fees
        net = gross + costs if e.side is Side.BUY else gross - costs
    return Confirmation(
        number=f"{e.venue}-{e.exec_id}",
        title=TITLES.get(e.exec_type, TITLES["fill"]),
        execution=e,
        account=inp.account,
        exchange=inp.exchange,
        gross=gross,
        net=net,
        capacity=inp.firm.capacity,
        firm=inp.firm,
        generated_at=inp.generated_at,
        traded_at=inp.traded_at,
    )
