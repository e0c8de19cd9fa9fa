"""Alerts after a run: what is worth an alert (pure), and sending it (the edge).

A run's findings: a missing input, a failed job, an abandoned run, and for reconciliations
(the JSON that `recon run --json` prints, and the profile's open breaks) breaks above the
count, amount and age thresholds and quarantined rows. All findings of a run go out as one
alert on every configured channel: e-mail over SMTP (plain, STARTTLS or implicit TLS, with
login) and a webhook (HTTP POST of the JSON document, with a bearer token). Each channel is
tried `attempts` times with exponential backoff; the outcome of every channel is recorded in
`schedule_alerts`. A channel that keeps failing is logged and recorded, never raised.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Connection, func, select

from oms.calendars import business_days
from oms.store import Store
from oms.values import dec_str, utc_iso
from recon.breaks import firm_calendar
from recon.schema import recon_breaks
from schedules.config import (
    SMTP_PASSWORD_ENV,
    WEBHOOK_TOKEN_ENV,
    AlertConfig,
    EmailChannel,
    Thresholds,
    WebhookChannel,
)
from schedules.schema import schedule_alerts

log = logging.getLogger("tieout.schedule")

# ---- the pure core ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # see evaluate(): input_missing, job_failed, breaks, quarantined...
    message: str

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


@dataclass(frozen=True, slots=True)
class ReconSummary:
    """What alerting needs of `recon run --json`."""

    run_id: int
    profile: str
    business_date: date | None
    breaks: dict[str, int]
    open_breaks: int
    quarantined_rows: int


def parse_recon_json(stdout: str) -> ReconSummary | None:
    """The recon result a job printed, or None when its output is no such document."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "run_id" not in doc or not isinstance(doc.get("breaks"), dict):
        return None
    try:
        breaks = {str(k): int(v) for k, v in doc["breaks"].items()}
        day = doc.get("business_date")
        return ReconSummary(
            run_id=int(doc["run_id"]),
            profile=str(doc.get("profile", "")),
            business_date=date.fromisoformat(day) if isinstance(day, str) else None,
            breaks=breaks,
            open_breaks=int(doc.get("open_breaks", sum(breaks.values()))),
            quarantined_rows=int(doc.get("quarantined_rows", 0)),
        )
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class BreakStats:
    """The profile's open breaks after the run: the largest amount and the oldest."""

    open: int
    max_amount: Decimal | None = None
    max_amount_break: int | None = None
    oldest_days: int | None = None
    oldest_break: int | None = None
    max_amount_currency: str | None = None  # None: a break whose currency is not known


@dataclass(frozen=True, slots=True)
class RunFacts:
    job: str
    status: str
    exit_code: int | None
    reason: str | None
    missing_inputs: tuple[str, ...] = ()
    # a skipped occurrence that should have run (missed: the scheduler was down or late; or its
    # previous run still running), not one of a day that is no session
    skipped_unexpectedly: bool = False


def evaluate(
    facts: RunFacts,
    recon: ReconSummary | None,
    stats: BreakStats | None,
    limits: Thresholds,
) -> list[Finding]:
    """Every reason the run deserves an alert, most important first."""
    found: list[Finding] = []
    if facts.missing_inputs:
        for path in facts.missing_inputs:
            found.append(Finding("input_missing", f"input missing: {path} has not arrived"))
    elif facts.status == "abandoned":
        found.append(Finding("abandoned", f"run abandoned: {facts.reason or 'no reason'}"))
    elif facts.status == "failed":
        why = f"exit code {facts.exit_code}" if facts.exit_code is not None else facts.reason
        found.append(Finding("job_failed", f"job {facts.job} failed: {why}"))
    elif facts.status == "skipped" and facts.skipped_unexpectedly:
        # an order-expiry run missed leaves day orders live and their cash held: say so
        found.append(Finding("run_skipped", f"job {facts.job} did not run: {facts.reason}"))
    if recon is not None:
        if limits.max_breaks is not None and recon.open_breaks > limits.max_breaks:
            kinds = ", ".join(f"{t} {n}" for t, n in sorted(recon.breaks.items()) if n)
            found.append(
                Finding(
                    "breaks",
                    f"{recon.open_breaks} open break(s) for {recon.profile} after recon run "
                    f"{recon.run_id} (threshold {limits.max_breaks})"
                    + (f"; this run: {kinds}" if kinds else ""),
                )
            )
        if (
            stats is not None
            and limits.max_break_amount is not None
            and stats.max_amount is not None
            and stats.max_amount > limits.max_break_amount
        ):
            found.append(
                Finding(
                    "break_amount",
                    f"break {stats.max_amount_break} amounts to {dec_str(stats.max_amount)}"
                    + (f" {stats.max_amount_currency}" if stats.max_amount_currency else "")
                    + f" (threshold {dec_str(limits.max_break_amount)}, in each break's "
                    "currency)",
                )
            )
        if (
            stats is not None
            and limits.max_break_age_days is not None
            and stats.oldest_days is not None
            and stats.oldest_days > limits.max_break_age_days
        ):
            found.append(
                Finding(
                    "break_age",
                    f"break {stats.oldest_break} is {stats.oldest_days} business day(s) old "
                    f"(threshold {limits.max_break_age_days})",
                )
            )
        if limits.max_quarantined is not None and recon.quarantined_rows > limits.max_quarantined:
            found.append(
                Finding(
                    "quarantined",
                    f"{recon.quarantined_rows} venue row(s) quarantined by recon run "
                    f"{recon.run_id} (threshold {limits.max_quarantined}); "
                    f"see `tieout recon quarantine --run {recon.run_id}`",
                )
            )
    return found


def alert_document(job: str, run: Mapping[str, Any], findings: Sequence[Finding]) -> dict[str, Any]:
    """The JSON document an alert carries (the webhook's body; the e-mail shows the same)."""
    first = findings[0].message if findings else "no findings"
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return {
        "source": "tieout",
        "subject": f"[tieout] {job}: {first}{more}",
        "job": job,
        "run": dict(run),
        "findings": [f.as_json() for f in findings],
    }


def alert_text(doc: Mapping[str, Any]) -> str:
    run = doc.get("run", {})
    lines = [str(doc["subject"]), ""]
    lines += [f"- {f['message']}" for f in doc.get("findings", [])]
    lines.append("")
    for key in ("run_id", "status", "scheduled_at", "started_at", "ended_at", "exit_code"):
        if run.get(key) is not None:
            lines.append(f"{key}: {run[key]}")
    if run.get("command"):
        lines.append("command: tieout " + " ".join(run["command"]))
    if run.get("output_tail"):
        lines += ["", "output (tail):", str(run["output_tail"])]
    return "\n".join(lines) + "\n"


def backoff_delays(
    attempts: int, base_s: float, factor: float = 2.0, cap_s: float = 60.0
) -> list[float]:
    """Pauses between attempts: base, base*factor, ... capped (attempts-1 of them)."""
    return [min(cap_s, base_s * factor**i) for i in range(max(0, attempts - 1))]


# ---- the edge: reading break figures, sending, recording -------------------------------------


def break_stats(conn: Connection, profile: str, as_of: date | None) -> BreakStats:
    rb = recon_breaks.c
    rows = conn.execute(
        select(rb.break_id, rb.amount, rb.currency, rb.first_seen).where(
            rb.profile == profile, rb.status == "open"
        )
    ).all()
    if not rows:
        return BreakStats(0)
    biggest = max(rows, key=lambda r: (r.amount.copy_abs(), -r.break_id))
    oldest = min(rows, key=lambda r: (r.first_seen, r.break_id))
    # business days of the firm's calendar, as `breaks list` and the exception report count a
    # break's age (calendar days here alerted on a break the report showed younger)
    calendar = firm_calendar(conn)
    age = business_days(oldest.first_seen, as_of, calendar) if as_of is not None else None
    return BreakStats(
        len(rows),
        biggest.amount.copy_abs(),
        biggest.break_id,
        age,
        oldest.break_id,
        biggest.currency,
    )


def send_email(
    channel: EmailChannel, subject: str, body: str, password: str | None, timeout_s: float
) -> None:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    msg.set_content(body)
    context = ssl.create_default_context(cafile=channel.ca_file)
    smtp: smtplib.SMTP
    if channel.security == "ssl":
        smtp = smtplib.SMTP_SSL(channel.host, channel.port, timeout=timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(channel.host, channel.port, timeout=timeout_s)
    with smtp:
        smtp.ehlo()
        if channel.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if channel.user:
            if channel.security == "none":
                raise RuntimeError("refusing to send SMTP credentials without TLS")
            if password is None:
                raise RuntimeError(f"alert.smtp.user is set but {SMTP_PASSWORD_ENV} is not")
            smtp.login(channel.user, password)
        smtp.send_message(msg)


def post_webhook(
    channel: WebhookChannel, doc: Mapping[str, Any], token: str | None, timeout_s: float
) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "tieout-scheduler"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(doc, ensure_ascii=False).encode()
    request = urllib.request.Request(channel.url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"HTTP {exc.code} {exc.reason}") from None
    if not 200 <= status < 300:
        raise RuntimeError(f"HTTP {status}")


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str
    status: str  # sent | failed | logged
    attempts: int
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
        }


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Sender:
    """Sends alerts on the configured channels, with retries; secrets from the environment."""

    env: Mapping[str, str]
    sleep: Callable[[float], None] = time.sleep
    email_fn: Callable[..., None] = field(default=send_email)
    webhook_fn: Callable[..., None] = field(default=post_webhook)

    def deliver(self, config: AlertConfig, doc: Mapping[str, Any]) -> list[Delivery]:
        subject = str(doc["subject"])
        log.warning("alert: %s", subject)
        if not config.channels():
            return [Delivery("log", "logged", 1)]
        out = []
        attempts = max(1, config.attempts)
        for name in config.channels():
            error: str | None = None
            delays = backoff_delays(attempts, config.backoff_s)
            for attempt in range(1, attempts + 1):
                try:
                    if name == "email" and config.email is not None:
                        self.email_fn(
                            config.email,
                            subject,
                            alert_text(doc),
                            self.env.get(SMTP_PASSWORD_ENV),
                            config.timeout_s,
                        )
                    elif config.webhook is not None:
                        self.webhook_fn(
                            config.webhook, doc, self.env.get(WEBHOOK_TOKEN_ENV), config.timeout_s
                        )
                except Exception as exc:  # any failure of a channel is recorded, never raised
                    error = _describe(exc)
                    log.warning("alert channel %s attempt %d failed: %s", name, attempt, error)
                    if attempt < attempts:
                        self.sleep(delays[attempt - 1])
                    continue
                out.append(Delivery(name, "sent", attempt))
                break
            else:
                log.error("alert channel %s failed %d time(s): %s", name, attempts, error)
                out.append(Delivery(name, "failed", attempts, error))
        return out


def record_deliveries(
    store: Store,
    now: datetime,
    run_id: int | None,
    job: str | None,
    doc: Mapping[str, Any],
    deliveries: Sequence[Delivery],
) -> None:
    payload = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
    with store.engine.connect() as conn:
        conn.info["write"] = True
        with conn.begin():
            for d in deliveries:
                conn.execute(
                    schedule_alerts.insert().values(
                        run_id=run_id,
                        job=job,
                        channel=d.channel,
                        status=d.status,
                        attempts=d.attempts,
                        error=d.error,
                        subject=str(doc["subject"]),
                        payload=payload,
                        created_at=now,
                    )
                )


def list_alerts(
    conn: Connection, run_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    a = schedule_alerts.c
    q = select(schedule_alerts).order_by(a.alert_id.desc()).limit(limit)
    if run_id is not None:
        q = q.where(a.run_id == run_id)
    rows = list(conn.execute(q))
    return [
        {
            "alert_id": r.alert_id,
            "run_id": r.run_id,
            "job": r.job,
            "channel": r.channel,
            "status": r.status,
            "attempts": r.attempts,
            "error": r.error,
            "subject": r.subject,
            "findings": json.loads(r.payload).get("findings", []),
            "created_at": utc_iso(r.created_at),
        }
        for r in reversed(rows)
    ]


def alert_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(schedule_alerts)).scalar() or 0)
