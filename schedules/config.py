"""Settings of scheduled operations: alert thresholds and channels, the default calendar.

Kept in the book's `settings` table (every change audited) under the keys below. Secrets are
never settings: the SMTP password comes from TIEOUT_SMTP_PASSWORD and the webhook's bearer token
from TIEOUT_WEBHOOK_TOKEN, read when an alert is sent, never stored, printed or logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parseaddr
from typing import Any

from sqlalchemy import Connection, select

from oms import book
from oms.book import Ctx
from oms.calendars import check_exchange
from oms.errors import BadInput
from oms.schema import settings
from oms.store import Store
from oms.values import dec_str, parse_decimal

SMTP_PASSWORD_ENV = "TIEOUT_SMTP_PASSWORD"  # noqa: S105 (a variable name, not a secret)
WEBHOOK_TOKEN_ENV = "TIEOUT_WEBHOOK_TOKEN"  # noqa: S105
DEFAULT_CALENDAR = "XNYS"
SECURITY_MODES = ("none", "starttls", "ssl")


def _int(text: str, key: str, *, low: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadInput(key, f"{text!r} is not a whole number") from None
    if value < low:
        raise BadInput(key, f"{value} is below {low}")
    return value


def _float(text: str, key: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInput(key, f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise BadInput(key, f"{text!r} is not between 0 and 3600 seconds")
    return value


def _optional(text: str) -> bool:
    """Whether a threshold's text switches it off ("none", "off" or empty)."""
    return text.strip().lower() in ("", "none", "off")


def _check(key: str, text: str) -> str:
    """The canonical text of a setting's value; BadInput when it cannot be accepted."""
    value = text.strip()
    if key == "schedule.calendar":
        return check_exchange(value)
    if key in ("alert.max_breaks", "alert.max_break_age_days", "alert.max_quarantined"):
        return "none" if _optional(value) else str(_int(value, key))
    if key == "alert.max_break_amount":
        return "none" if _optional(value) else dec_str(parse_decimal(value, key))
    if key in ("alert.smtp.port",):
        port = _int(value, key, low=1)
        if port > 65535:
            raise BadInput(key, f"{port} is not a TCP port")
        return str(port)
    if key == "alert.smtp.security":
        if value not in SECURITY_MODES:
            raise BadInput(key, f"{value!r}: use one of {', '.join(SECURITY_MODES)}")
        return value
    if key == "alert.attempts":
        return str(max(1, _int(value, key, low=1)))
    if key in ("alert.backoff_s", "alert.timeout_s"):
        return repr(_float(value, key))
    if key == "alert.webhook.url":
        if value and not value.startswith(("http://", "https://")):
            raise BadInput(key, f"{value!r} is not an http:// or https:// URL")
        return value
    if key == "alert.smtp.to":
        names = [a.strip() for a in value.split(",")]
        if value.strip() and not any(names):
            raise BadInput(key, f"{value!r} names no recipient")
        for a in names:
            # an address, or a name and its address ("Ops Desk <ops@example.com>")
            address = parseaddr(a)[1] if "<" in a else a
            if a and ("@" not in address or any(c.isspace() or c < " " for c in address)):
                raise BadInput(key, f"{a!r} is not an e-mail address")
        return ",".join(a for a in names if a)
    return value


def email_missing(s: Mapping[str, str]) -> str | None:
    """Why alerts go out by no e-mail though an SMTP server is set (no recipient), or None."""
    if s.get("alert.smtp.host") and not alert_config(s).email:
        return "alert.smtp.host is set but alert.smtp.to names no recipient: no e-mail goes out"
    return None


KEYS: dict[str, str] = {
    "schedule.calendar": "exchange calendar of {date} templates (default XNYS)",
    "alert.max_breaks": "alert when a recon leaves more open breaks than this (default 0)",
    "alert.max_break_amount": "alert when an open break's amount exceeds this (default none)",
    "alert.max_break_age_days": "alert when an open break is older than this many business "
    "days of the firm's calendar (recon calendar; default none)",
    "alert.max_quarantined": "alert when a recon quarantines more rows than this (default 0)",
    "alert.smtp.host": "SMTP server for alert e-mail (unset: no e-mail)",
    "alert.smtp.port": "SMTP port (default 25; 587 with starttls, 465 with ssl)",
    "alert.smtp.security": "none, starttls or ssl (default none)",
    "alert.smtp.user": f"SMTP login (its password only from {SMTP_PASSWORD_ENV})",
    "alert.smtp.from": "sender address (default tieout@localhost)",
    "alert.smtp.to": "recipients, comma-separated",
    "alert.smtp.ca_file": "CA certificates to trust for the SMTP server (default: system's)",
    "alert.webhook.url": f"URL that alerts are POSTed to as JSON (token from {WEBHOOK_TOKEN_ENV})",
    "alert.attempts": "attempts per channel and alert (default 3)",
    "alert.backoff_s": "seconds before the second attempt, doubling after (default 2)",
    "alert.timeout_s": "seconds a channel may take to answer (default 10)",
}
_SECRET_WORDS = ("password", "passwd", "secret", "token")


def check_setting(key: str, value: str) -> str:
    if any(w in key.lower() for w in _SECRET_WORDS):
        raise BadInput(
            key,
            "secrets are never stored in the database: set "
            f"{SMTP_PASSWORD_ENV} or {WEBHOOK_TOKEN_ENV} in the scheduler's environment",
        )
    if key not in KEYS:
        raise BadInput(key, f"unknown setting (known: {', '.join(KEYS)})")
    return _check(key, value)


def set_setting(store: Store, ctx: Ctx, key: str, value: str) -> str:
    canonical = check_setting(key, value)
    with store.write() as conn:
        book.put_setting(conn, ctx, key, canonical)
    return canonical


def read_settings(conn: Connection) -> dict[str, str]:
    """The settings of scheduled operations that are set."""
    rows = conn.execute(
        select(settings.c.key, settings.c.value).where(
            settings.c.key.like("alert.%") | settings.c.key.like("schedule.%")
        )
    )
    return {str(k): str(v) for k, v in rows if str(k) in KEYS}


# ---- thresholds -------------------------------------------------------------------------------

THRESHOLD_NAMES = ("max_breaks", "max_break_amount", "max_break_age_days", "max_quarantined")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a recon's result alerts (None: never on that measure)."""

    max_breaks: int | None = 0
    max_break_amount: Decimal | None = None
    max_break_age_days: int | None = None
    max_quarantined: int | None = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "max_breaks": self.max_breaks,
            "max_break_amount": (
                None if self.max_break_amount is None else dec_str(self.max_break_amount)
            ),
            "max_break_age_days": self.max_break_age_days,
            "max_quarantined": self.max_quarantined,
        }


def threshold_text(name: str, text: str) -> str:
    """The canonical stored text of one threshold ("none" switches it off)."""
    return _check(f"alert.{name}", text)


def thresholds(global_settings: Mapping[str, str], job_overrides: Mapping[str, str]) -> Thresholds:
    """The job's overrides, else the settings, else the defaults."""
    base = Thresholds()
    values: dict[str, Any] = {}
    for name in THRESHOLD_NAMES:
        text = job_overrides.get(name, global_settings.get(f"alert.{name}"))
        if text is None:
            values[name] = getattr(base, name)
        elif _optional(text):
            values[name] = None
        elif name == "max_break_amount":
            values[name] = Decimal(text)
        else:
            values[name] = int(text)
    return Thresholds(**values)


# ---- channels ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailChannel:
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    security: str
    user: str | None
    ca_file: str | None


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    url: str


@dataclass(frozen=True, slots=True)
class AlertConfig:
    email: EmailChannel | None
    webhook: WebhookChannel | None
    attempts: int = 3
    backoff_s: float = 2.0
    timeout_s: float = 10.0

    def channels(self) -> list[str]:
        return [n for n, c in (("email", self.email), ("webhook", self.webhook)) if c is not None]


def alert_config(s: Mapping[str, str]) -> AlertConfig:
    """Channels from the settings: e-mail when a host and recipients are set, the webhook when
    its URL is."""
    email = None
    to = tuple(a for a in s.get("alert.smtp.to", "").split(",") if a)
    if s.get("alert.smtp.host") and to:
        security = s.get("alert.smtp.security", "none")
        default_port = {"none": 25, "starttls": 587, "ssl": 465}[security]
        email = EmailChannel(
            host=s["alert.smtp.host"],
            port=int(s.get("alert.smtp.port", default_port)),
            sender=s.get("alert.smtp.from") or "tieout@localhost",
            to=to,
            security=security,
            user=s.get("alert.smtp.user") or None,
            ca_file=s.get("alert.smtp.ca_file") or None,
        )
    webhook = WebhookChannel(s["alert.webhook.url"]) if s.get("alert.webhook.url") else None
    return AlertConfig(
        email=email,
        webhook=webhook,
        attempts=int(s.get("alert.attempts", "3")),
        backoff_s=float(s.get("alert.backoff_s", "2.0")),
        timeout_s=float(s.get("alert.timeout_s", "10.0")),
    )


def default_calendar(s: Mapping[str, str]) -> str:
    return s.get("schedule.calendar") or DEFAULT_CALENDAR
