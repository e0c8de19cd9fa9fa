"""Alerts through real servers on 127.0.0.1: an aiosmtpd SMTP server (plain, and STARTTLS with
AUTH on a self-signed certificate made by the openssl command), and an http.server that records
the webhook's POSTs. Runs go through `tieout schedule trigger` on both backends."""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from oms import audit
from oms.book import Ctx
from oms.schema import settings
from oms.store import Store
from schedules import alerts, config
from tests.conftest import Result, Tieout, run_tieout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recon"
PASSWORD = "s3cret-pa55"
TOKEN = "hook-t0ken"

# A stand-in for the tieout program: fast, and it can sleep, fail or print what it is told.
FAKE_PROGRAM = """\
import json, os, sys, time
args = sys.argv[1:]
log = os.environ.get("FAKE_LOG")
if log:
    with open(log, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "job": os.environ.get("TIEOUT_SCHEDULE_JOB"),
                            "at": os.environ.get("TIEOUT_SCHEDULE_SCHEDULED_AT"),
                            "actor": os.environ.get("TIEOUT_ACTOR"),
                            "secret": os.environ.get("TIEOUT_SMTP_PASSWORD"),
                            "args": args}) + "\\n")
if args[:1] == ["sleep"]:
    time.sleep(float(args[1]))
if args[:1] == ["exit"]:
    print("failing on purpose", file=sys.stderr)
    sys.exit(int(args[1]))
if args[:1] == ["print"]:
    print(args[1])
else:
    print(json.dumps({"ok": True, "args": args}))
"""


def fake_program(tmp_path: Path) -> str:
    path = tmp_path / "fake_tieout.py"
    path.write_text(FAKE_PROGRAM, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def tieout_env(program: str | None = None, **extra: str) -> dict[str, str]:
    env = {"TIEOUT_ACTOR": "tester", **extra}
    if program:
        env["TIEOUT_PROGRAM"] = program
    return env


FAKE_VERBS = ("sleep", "exit", "print")  # FAKE_PROGRAM's commands, which tieout has not


def cli(db_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """`tieout` with --db placed before any `--` (a job's own arguments follow it). A job of
    FAKE_PROGRAM's is added as beside a scheduler running it: with TIEOUT_PROGRAM set (else
    `schedule add` refuses a command tieout has not)."""
    env = env or tieout_env()
    if "--" in args:
        i = args.index("--")
        if args[:2] == ("schedule", "add") and args[i + 1 : i + 2] and args[i + 1] in FAKE_VERBS:
            env = {"TIEOUT_PROGRAM": "fake-tieout", **env}
        args = (*args[:i], "--db", db_url, *args[i:])
    else:
        args = (*args, "--db", db_url)
    return run_tieout(*args, env=env)


def ok(db_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    r = cli(db_url, *args, env=env)
    assert r.code == 0, f"tieout {' '.join(args)} exited {r.code}: {r.err}{r.out}"
    return r


# ---- servers ----------------------------------------------------------------------------------


@dataclass
class Hook:
    url: str
    posts: list[dict[str, Any]]
    statuses: list[int] = field(default_factory=list)


@contextlib.contextmanager
def webhook_server(statuses: tuple[int, ...] = ()) -> Iterator[Hook]:
    """An HTTP server on loopback that records each POST and answers the given statuses in
    turn, then 200."""
    hook = Hook("", [], list(statuses))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.posts.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "text": envelope.content.decode("utf-8", "replace"),
                "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated),
            }
        )
        return "250 OK"


@dataclass
class Smtp:
    port: int
    box: Mailbox


@contextlib.contextmanager
def smtp_server(
    tls: ssl.SSLContext | None = None, users: dict[str, str] | None = None
) -> Iterator[Smtp]:
    box = Mailbox()
    kwargs: dict[str, Any] = {}
    if tls is not None:
        kwargs.update(tls_context=tls, require_starttls=True)
    if users is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            if isinstance(data, LoginPassword) and users.get(data.login.decode()) == (
                data.password.decode()
            ):
                box.logins.append(data.login.decode())
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False)

        kwargs.update(authenticator=authenticator, auth_require_tls=True)
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield Smtp(port, box)
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (the openssl command; `cryptography` is not a
    dependency of tieout)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
            "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls(certificate: tuple[str, str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


def doc(message: str = "boom") -> dict[str, Any]:
    return alerts.alert_document("job", {"run_id": 1}, [alerts.Finding("job_failed", message)])


# ---- channels on their own --------------------------------------------------------------------


def test_plain_smtp_and_webhook_with_token() -> None:
    with smtp_server() as smtp, webhook_server() as hook:
        cfg = config.alert_config(
            {
                "alert.smtp.host": "127.0.0.1",
                "alert.smtp.port": str(smtp.port),
                "alert.smtp.from": "tieout@desk.example",
                "alert.smtp.to": "ops@desk.example,risk@desk.example",
                "alert.webhook.url": hook.url,
            }
        )
        out = alerts.Sender(env={"TIEOUT_WEBHOOK_TOKEN": TOKEN}).deliver(cfg, doc("plain"))
    assert [(d.channel, d.status, d.attempts) for d in out] == [
        ("email", "sent", 1),
        ("webhook", "sent", 1),
    ]
    [mail] = smtp.box.messages
    assert mail["from"] == "tieout@desk.example"
    assert mail["to"] == ["ops@desk.example", "risk@desk.example"]
    assert "[tieout] job: plain" in mail["text"]
    [post] = hook.posts
    assert post["path"] == "/hook"
    assert post["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert post["headers"]["Content-Type"] == "application/json"
    assert post["body"]["findings"] == [{"kind": "job_failed", "message": "plain"}]


def test_starttls_with_login(certificate: tuple[str, str]) -> None:
    with smtp_server(tls=server_tls(certificate), users={"alerts": PASSWORD}) as smtp:
        settings = {
            "alert.smtp.host": "127.0.0.1",
            "alert.smtp.port": str(smtp.port),
            "alert.smtp.security": "starttls",
            "alert.smtp.user": "alerts",
            "alert.smtp.ca_file": certificate[0],
            "alert.smtp.to": "ops@desk.example",
            "alert.attempts": "2",
            "alert.backoff_s": "0",
        }
        good = alerts.Sender(env={"TIEOUT_SMTP_PASSWORD": PASSWORD})
        assert [d.status for d in good.deliver(config.alert_config(settings), doc())] == ["sent"]
        wrong = alerts.Sender(env={"TIEOUT_SMTP_PASSWORD": "nope"})
        [failed] = wrong.deliver(config.alert_config(settings), doc())
        untrusted = alerts.Sender(env={"TIEOUT_SMTP_PASSWORD": PASSWORD}).deliver(
            config.alert_config({**settings, "alert.smtp.ca_file": ""}), doc()
        )
    assert smtp.box.logins == ["alerts"]
    [mail] = smtp.box.messages
    assert mail["tls"]
    assert mail["authenticated"]
    assert (failed.status, failed.attempts) == ("failed", 2)
    assert "SMTPAuthenticationError" in (failed.error or "")
    assert "nope" not in (failed.error or "")
    assert untrusted[0].status == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in (untrusted[0].error or "")


def test_credentials_never_go_out_in_clear() -> None:
    with smtp_server() as smtp:
        cfg = config.alert_config(
            {
                "alert.smtp.host": "127.0.0.1",
                "alert.smtp.port": str(smtp.port),
                "alert.smtp.user": "alerts",
                "alert.smtp.to": "ops@desk.example",
                "alert.attempts": "1",
            }
        )
        [d] = alerts.Sender(env={"TIEOUT_SMTP_PASSWORD": PASSWORD}).deliver(cfg, doc())
    assert d.status == "failed"
    assert "without TLS" in (d.error or "")
    assert smtp.box.messages == []


def test_webhook_retries_then_succeeds_and_dead_channel_fails() -> None:
    slept: list[float] = []
    with webhook_server(statuses=(500, 503)) as hook:
        cfg = config.alert_config(
            {"alert.webhook.url": hook.url, "alert.attempts": "3", "alert.backoff_s": "0.05"}
        )
        [d] = alerts.Sender(env={}, sleep=slept.append).deliver(cfg, doc())
    assert (d.status, d.attempts) == ("sent", 3)
    assert len(hook.posts) == 3
    assert slept == [0.05, 0.1]
    dead = config.alert_config(
        {
            "alert.webhook.url": f"http://127.0.0.1:{free_port()}/nobody",
            "alert.attempts": "2",
            "alert.backoff_s": "0",
            "alert.timeout_s": "2",
        }
    )
    [gone] = alerts.Sender(env={}).deliver(dead, doc())
    assert (gone.status, gone.attempts) == ("failed", 2)
    assert "Connection refused" in (gone.error or "") or "URLError" in (gone.error or "")


# ---- runs that alert --------------------------------------------------------------------------


def set_settings(db_url: str, values: dict[str, str]) -> None:
    """Settings as `tieout schedule config set` stores them, in one go."""
    store = Store.open(db_url)
    try:
        for key, value in values.items():
            config.set_setting(store, Ctx("tester", datetime.now(UTC)), key, value)
    finally:
        store.dispose()


def _configure_channels(db_url: str, smtp_port: int, hook_url: str, cert: str) -> None:
    settings = {
        "alert.smtp.host": "127.0.0.1",
        "alert.smtp.port": str(smtp_port),
        "alert.smtp.security": "starttls",
        "alert.smtp.user": "alerts",
        "alert.smtp.ca_file": cert,
        "alert.smtp.from": "tieout@desk.example",
        "alert.smtp.to": "ops@desk.example",
        "alert.webhook.url": hook_url,
        "alert.backoff_s": "0",
    }
    set_settings(db_url, settings)


def test_missing_input_fails_the_run_and_alerts(
    db_url: str, tmp_path: Path, certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Tieout(db_url).ok("init")
    log = tmp_path / "ran.jsonl"
    env = tieout_env(
        fake_program(tmp_path),
        FAKE_LOG=str(log),
        TIEOUT_SMTP_PASSWORD=PASSWORD,
        TIEOUT_WEBHOOK_TOKEN=TOKEN,
    )
    with (
        smtp_server(tls=server_tls(certificate), users={"alerts": PASSWORD}) as smtp,
        webhook_server() as hook,
    ):
        _configure_channels(db_url, smtp.port, hook.url, certificate[0])
        ok(
            db_url,
            *("schedule", "add-builtin", "eod-recon", "--profile", "acme"),
            *("--file-pattern", "drops/acme/trades_{date:%Y%m%d}.csv", "--cron", "30 18 * * 1-5"),
        )
        r = cli(
            db_url,
            *("schedule", "trigger", "eod-recon-acme", "--date", "2026-03-11", "--json"),
            env=env,
        )
        assert r.code == 3, r.err
        run = r.json()
        # the file arrives: the same job now runs (the fake program stands in for tieout)
        (tmp_path / "drops" / "acme").mkdir(parents=True)
        (tmp_path / "drops" / "acme" / "trades_20260311.csv").write_text("x\n")
        again = cli(
            db_url,
            *("schedule", "trigger", "eod-recon-acme", "--date", "2026-03-11", "--json"),
            env=env,
        )
    assert run["status"] == "failed"
    assert run["exit_code"] is None
    assert run["reason"] == "input missing: drops/acme/trades_20260311.csv"
    assert run["command"][4:6] == ["--file", "drops/acme/trades_20260311.csv"]
    assert run["business_date"] == "2026-03-11"
    assert sorted((a["channel"], a["status"]) for a in run["alerts"]) == [
        ("email", "sent"),
        ("webhook", "sent"),
    ]
    [post] = hook.posts
    assert post["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert post["body"]["job"] == "eod-recon-acme"
    assert post["body"]["findings"][0]["kind"] == "input_missing"
    assert post["body"]["run"]["run_id"] == run["run_id"]
    [mail] = smtp.box.messages
    assert "input missing: drops/acme/trades_20260311.csv" in mail["text"]
    assert mail["tls"]
    assert mail["authenticated"]
    assert again.code == 0, again.err
    assert again.json()["status"] == "succeeded"
    [ran] = [json.loads(line) for line in log.read_text().splitlines()]
    assert ran["args"][:6] == [
        "recon", "run", "--profile", "acme", "--file", "drops/acme/trades_20260311.csv"
    ]  # fmt: skip
    assert ran["args"][-2:] == ["--db", db_url]
    assert ran["actor"] == "tester"
    assert ran["secret"] is None  # alert secrets are not handed to the jobs
    # secrets are neither stored nor printed
    store = Store.open(db_url)
    with store.read() as conn:
        trail = [e.as_json() for e in audit.events(conn)]
        stored = [tuple(row) for row in conn.execute(select(settings))]
    store.dispose()
    dump = json.dumps(
        [
            ok(db_url, "schedule", "config", "show", "--json").json(),
            ok(db_url, "schedule", "alerts", "--json").json(),
            ok(db_url, "schedule", "history", "--json").json(),
            trail,
        ],
        default=str,
    ) + repr(stored)
    assert any(e["action"] == "setting.set" for e in trail)
    assert PASSWORD not in dump
    assert TOKEN not in dump
    assert PASSWORD not in r.err + again.err
    refused = cli(db_url, "schedule", "config", "set", "alert.smtp.password", PASSWORD)
    assert refused.code == 3
    assert "TIEOUT_SMTP_PASSWORD" in refused.err


def test_a_failing_channel_is_recorded_and_the_run_still_recorded(
    db_url: str, tmp_path: Path
) -> None:
    Tieout(db_url).ok("init")
    set_settings(
        db_url,
        {
            "alert.webhook.url": f"http://127.0.0.1:{free_port()}/down",
            "alert.attempts": "2",
            "alert.backoff_s": "0",
        },
    )
    ok(db_url, "schedule", "add", "fails", "--cron", "0 6 * * *", "--", "exit", "4")
    r = cli(
        db_url, "schedule", "trigger", "fails", "--json", env=tieout_env(fake_program(tmp_path))
    )
    assert r.code == 4  # the job's own exit code
    run = r.json()
    assert (run["status"], run["exit_code"]) == ("failed", 4)
    assert "failing on purpose" in run["output_tail"]
    [alert] = run["alerts"]
    assert (alert["channel"], alert["status"], alert["attempts"]) == ("webhook", "failed", 2)
    assert alert["findings"] == [{"kind": "job_failed", "message": "job fails failed: exit code 4"}]


def test_real_recon_breaks_alert(db_url: str, tmp_path: Path) -> None:
    """The real tieout command in a subprocess: a venue file with trades the book lacks."""
    Tieout(db_url).ok("init")
    drops = tmp_path / "drops"
    drops.mkdir()
    shutil.copy(FIXTURES / "acme_trades.csv", drops / "acme_20260311.csv")
    with webhook_server() as hook:
        set_settings(db_url, {"alert.webhook.url": hook.url, "alert.max_break_amount": "100000"})
        ok(
            db_url,
            *("schedule", "add-builtin", "eod-recon", "--name", "acme-eod"),
            *("--profile", str(FIXTURES / "acme_trades.toml")),
            *("--file-pattern", str(drops / "acme_{date:%Y%m%d}.csv"), "--cron", "0 19 * * 1-5"),
            *("--max-quarantined", "none"),
        )
        r = cli(db_url, "schedule", "trigger", "acme-eod", "--date", "2026-03-11", "--json")
    assert r.code == 0, r.err + r.out
    run = r.json()
    assert (run["status"], run["exit_code"]) == ("succeeded", 0)
    result = json.loads(run["output_tail"][: run["output_tail"].rindex("}") + 1])
    assert result["breaks"] == {"missing_internal": 4}
    [post] = hook.posts
    kinds = [f["kind"] for f in post["body"]["findings"]]
    assert kinds == ["breaks", "break_amount"]
    assert "4 open break(s) for acme" in post["body"]["subject"]
    assert "234863.625 USD" in post["body"]["findings"][1]["message"]
