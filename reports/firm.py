"""The firm's identity and disclosures on every document, from settings (`tieout` settings are
kept with oms.book.put_setting, audited), with sensible defaults when a key is not set.

Keys: firm.name, firm.address (lines separated by newlines or " | "), firm.contact (where to
report discrepancies), firm.disclosure (general disclosures on statements), firm.notice (the
notice to report discrepancies promptly), firm.confirm_disclosure (on confirmations),
firm.capacity (agent | principal | riskless principal: the capacity confirmations state).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from oms.errors import BadInput
from oms.schema import settings

DEFAULTS = {
    "firm.name": "Tieout Securities",
    "firm.address": "",
    "firm.contact": "your account representative",
    "firm.disclosure": (
        "Positions are marked at the last price available at the end of the period; a position "
        "without a market price is shown at its cost. Cash is shown on a trade-date basis: a "
        "trade moves cash on its trade date, and settled cash is shown separately."
    ),
    "firm.notice": (
        "Please review this statement carefully. Report any inaccuracy or discrepancy in your "
        "account promptly, and in any case within ten days, in writing, to {contact}. Any oral "
        "communication should be re-confirmed in writing to protect your rights."
    ),
    "firm.confirm_disclosure": (
        "This confirmation is furnished under SEC Rule 10b-10. Further information about the "
        "time of execution, the source and amount of any other remuneration, and the other "
        "party to the transaction is available on written request. Please report any "
        "discrepancy promptly to {contact}."
    ),
    "firm.capacity": "agent",
}
CAPACITIES = ("agent", "principal", "riskless principal")


@dataclass(frozen=True, slots=True)
class Firm:
    name: str
    address: tuple[str, ...]
    contact: str
    disclosure: str
    notice: str
    confirm_disclosure: str
    capacity: str

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "address": list(self.address)}


def firm_from_settings(values: dict[str, str | None]) -> Firm:
    """Pure: the firm from setting values (missing or blank ones take the defaults)."""

    def get(key: str) -> str:
        value = values.get(key)
        return value.strip() if value and value.strip() else DEFAULTS[key]

    contact = get("firm.contact")
    raw_address = get("firm.address").replace(" | ", "\n")
    capacity = get("firm.capacity").lower()
    if capacity not in CAPACITIES:
        raise BadInput(
            "setting firm.capacity", f"{capacity!r} is not one of {', '.join(CAPACITIES)}"
        )
    return Firm(
        name=get("firm.name"),
        address=tuple(line.strip() for line in raw_address.splitlines() if line.strip()),
        contact=contact,
        disclosure=get("firm.disclosure"),
        notice=get("firm.notice").replace("{contact}", contact),
        confirm_disclosure=get("firm.confirm_disclosure").replace("{contact}", contact),
        capacity=capacity,
    )


def load_firm(conn: Connection) -> Firm:
    rows = conn.execute(
        select(settings.c.key, settings.c.value).where(settings.c.key.in_(list(DEFAULTS)))
    ).all()
    return firm_from_settings({str(k): str(v) for k, v in rows})
