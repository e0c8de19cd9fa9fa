"""The daily exception report: reconciliation runs of a business date, the breaks open at its
end by type and by age, the rows that were quarantined, and what was resolved that day. Pure:
the rows come in as plain values (reports.sources reads them), ages already counted in business
days of the firm's calendar.

"Open at the end of D" means first seen on or before D and not resolved by the end of D (a break
resolved later is listed with its current status, so that a report for a past date shows what
was open then). Break objects carry the fields of `tieout breaks list`, plus their age bucket
and comments.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from oms.lots import CONTEXT
from oms.values import ZERO, dec_str, utc_iso
from reports import charts
from reports.firm import Firm

AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-1", 0, 1),
    ("2-5", 2, 5),
    ("6-10", 6, 10),
    (">10", 11, None),
)


def age_bucket(age_days: int) -> str:
    for label, low, high in AGE_BUCKETS:
        if age_days >= low and (high is None or age_days <= high):
            return label
    return AGE_BUCKETS[0][0]  # negative ages do not happen: a break is 0 days old when found


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: int
    kind: str
    profile: str
    venue: str
    business_date: date
    input_path: str
    input_sha256: str
    forced: bool
    internal_rows: int
    venue_rows: int  # rows in the venue's file, quarantined ones included
    quarantined_rows: int
    matched: int  # venue rows matched
    breaks: tuple[tuple[str, int], ...]  # type -> count found by the run
    open_breaks: int
    closed_breaks: int
    started_at: datetime
    duration_s: Decimal
    actor: str

    @property
    def valid_rows(self) -> int:
        return self.venue_rows - self.quarantined_rows

    @property
    def match_rate_pct(self) -> Decimal | None:
        """Matched venue rows per valid venue row, in percent, two places (None: no rows)."""
        if self.valid_rows <= 0:
            return None
        with localcontext(CONTEXT):
            rate = Decimal(self.matched) * 100 / self.valid_rows
            return rate.quantize(Decimal("0.01"), ROUND_HALF_EVEN)

    @property
    def break_count(self) -> int:
        return sum(n for _, n in self.breaks)

    def as_json(self) -> dict[str, Any]:
        rate = self.match_rate_pct
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "profile": self.profile,
            "venue": self.venue,
            "business_date": self.business_date.isoformat(),
            "input_path": self.input_path,
            "input_sha256": self.input_sha256,
            "forced": self.forced,
            "internal_rows": self.internal_rows,
            "venue_rows": self.venue_rows,
            "valid_rows": self.valid_rows,
            "quarantined_rows": self.quarantined_rows,
            "matched": self.matched,
            "match_rate_pct": None if rate is None else dec_str(rate),
            "breaks": dict(self.breaks),
            "open_breaks": self.open_breaks,
            "closed_breaks": self.closed_breaks,
            "started_at": utc_iso(self.started_at),
            "duration_s": dec_str(self.duration_s),
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class Difference:
    field: str
    internal: Any  # as the break stores it (JSON value)
    venue: Any


@dataclass(frozen=True, slots=True)
class Comment:
    at: datetime
    actor: str
    text: str

    def as_json(self) -> dict[str, Any]:
        return {"at": utc_iso(self.at), "actor": self.actor, "text": self.text}


@dataclass(frozen=True, slots=True)
class BreakRow:
    break_id: int
    run_id: int  # the last run that found it
    first_run_id: int
    profile: str
    kind: str
    type: str
    status: str
    account: str | None
    symbol: str | None
    currency: str | None
    internal_refs: tuple[str, ...]
    venue_refs: tuple[str, ...]
    differences: tuple[Difference, ...]
    first_seen: date
    age_days: int
    amount: Decimal
    suggestion: str | None
    owner: str | None
    resolution: str | None
    resolution_note: str | None
    pending_approval: bool
    requested_by: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolved_run_id: int | None
    comments: tuple[Comment, ...] = ()

    @property
    def age_bucket(self) -> str:
        return age_bucket(self.age_days)

    def as_json(self) -> dict[str, Any]:
        return {
            "break_id": self.break_id,
            "run_id": self.run_id,
            "first_run_id": self.first_run_id,
            "profile": self.profile,
            "kind": self.kind,
            "type": self.type,
            "status": self.status,
            "account": self.account,
            "symbol": self.symbol,
            "currency": self.currency,
            "internal_refs": list(self.internal_refs),
            "venue_refs": list(self.venue_refs),
            "differences": {
                d.field: {"internal": d.internal, "venue": d.venue} for d in self.differences
            },
            "first_seen": self.first_seen.isoformat(),
            "age_days": self.age_days,
            "age_bucket": self.age_bucket,
            "amount": dec_str(self.amount),
            "suggestion": self.suggestion,
            "owner": self.owner,
            "resolution": self.resolution,
            "resolution_note": self.resolution_note,
            "pending_approval": self.pending_approval,
            "requested_by": self.requested_by,
            "resolved_by": self.resolved_by,
            "resolved_at": utc_iso(self.resolved_at) if self.resolved_at else None,
            "resolved_run_id": self.resolved_run_id,
            "comments": [c.as_json() for c in self.comments],
        }


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    run_id: int
    profile: str
    row: int  # the row of the venue's file
    values: tuple[tuple[str, Any], ...]
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "profile": self.profile,
            "row": self.row,
            "values": dict(self.values),
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A transaction-monitoring alert of the day (tieout surveil run), as compliance reads it."""

    alert_id: int
    rule: str
    account: str | None
    symbol: str | None
    score: Decimal
    details: tuple[tuple[str, str], ...]  # the figures that fired the rule, as text

    def as_json(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "account": self.account,
            "symbol": self.symbol,
            "score": dec_str(self.score),
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class ExceptionInput:
    day: date
    runs: tuple[RunRow, ...]
    open_breaks: tuple[BreakRow, ...]
    resolved: tuple[BreakRow, ...]
    quarantined: tuple[QuarantineRow, ...]
    firm: Firm
    generated_at: datetime
    audit_head: str | None
    alerts: tuple[AlertRow, ...] = ()


@dataclass(frozen=True, slots=True)
class TypeCount:
    kind: str
    type: str
    count: int
    amounts: tuple[tuple[str, Decimal], ...]  # currency -> sum of amounts ("" = none)


@dataclass(frozen=True, slots=True)
class ExceptionReport:
    day: date
    runs: tuple[RunRow, ...]
    open_breaks: tuple[BreakRow, ...]  # oldest first
    resolved: tuple[BreakRow, ...]
    quarantined: tuple[QuarantineRow, ...]
    by_type: tuple[TypeCount, ...]
    by_age: tuple[tuple[str, int], ...]
    chart: charts.BarChart
    firm: Firm
    generated_at: datetime
    audit_head: str | None
    alerts: tuple[AlertRow, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "surveillance_alerts": [a.as_json() for a in self.alerts],
            "runs": [r.as_json() for r in self.runs],
            "open_breaks": [b.as_json() for b in self.open_breaks],
            "by_type": [
                {
                    "kind": t.kind,
                    "type": t.type,
                    "count": t.count,
                    "amount": {c: dec_str(a) for c, a in t.amounts},
                }
                for t in self.by_type
            ],
            "by_age": dict(self.by_age),
            "quarantined": [q.as_json() for q in self.quarantined],
            "resolved": [b.as_json() for b in self.resolved],
            "firm": self.firm.as_json(),
            "generated_at": utc_iso(self.generated_at),
            "audit_head": self.audit_head,
        }


def _by_type(breaks: Sequence[BreakRow]) -> tuple[TypeCount, ...]:
    counts: Counter[tuple[str, str]] = Counter()
    amounts: Mapping[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
    with localcontext(CONTEXT):
        for b in breaks:
            key = (b.kind, b.type)
            counts[key] += 1
            ccy = b.currency or ""
            amounts[key][ccy] = amounts[key].get(ccy, ZERO) + b.amount
    return tuple(
        TypeCount(kind, typ, counts[(kind, typ)], tuple(sorted(amounts[(kind, typ)].items())))
        for kind, typ in sorted(counts)
    )


def build_exceptions(inp: ExceptionInput) -> ExceptionReport:
    """The exception report of a business date (pure)."""
    open_breaks = tuple(sorted(inp.open_breaks, key=lambda b: (-b.age_days, b.break_id)))
    ages = Counter(b.age_bucket for b in open_breaks)
    by_age = tuple((label, ages.get(label, 0)) for label, _, _ in AGE_BUCKETS)
    return ExceptionReport(
        day=inp.day,
        runs=tuple(sorted(inp.runs, key=lambda r: r.run_id)),
        open_breaks=open_breaks,
        resolved=tuple(sorted(inp.resolved, key=lambda b: b.break_id)),
        quarantined=tuple(sorted(inp.quarantined, key=lambda q: (q.run_id, q.row))),
        by_type=_by_type(open_breaks),
        by_age=by_age,
        chart=charts.bar_chart(by_age),
        firm=inp.firm,
        generated_at=inp.generated_at,
        audit_head=inp.audit_head,
        alerts=tuple(sorted(inp.alerts, key=lambda a: a.alert_id)),
    )
