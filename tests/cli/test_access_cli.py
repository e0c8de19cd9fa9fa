"""Operators and access control through the real command, on SQLite and PostgreSQL: the happy
path and the attacks (wrong, replayed or missing TOTP codes, expired and revoked sessions,
a trader trying an admin command, an operator approving their own change, an approval for
something else, withdrawals to destinations that are new or not whitelisted)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select, update

import migrations
from oms import access, book
from oms.schema import audit_events, op_sessions
from oms.store import Store
from tests.conftest import Result, Tieout

T0 = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests hash many passwords: the cheapest argon2 parameters keep them fast."""
    monkeypatch.setattr(access, "HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Desk:
    """Operators of one database, each with a session file of their own and a TOTP secret; one
    pinned clock that moves forward (a TOTP code is good once per operator and time step)."""

    def __init__(self, t: Tieout, tmp: Path) -> None:
        self.t, self.tmp, self.now = t, tmp, T0
        self.secrets: dict[str, str] = {}

    def tick(self, seconds: float = 31) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def cli(self, session: str, at: datetime | None = None) -> Tieout:
        path = str(self.tmp / f"{session}.session")
        key = str(self.tmp / "keys" / "totp.key")
        return self.t.with_env(TIEOUT_SESSION_FILE=path, TIEOUT_KEY_FILE=key).at(
            iso(at or self.now)
        )

    def code(self, name: str, at: datetime | None = None) -> str:
        return str(pyotp.TOTP(self.secrets[name]).at(at or self.now))

    def run(self, session: str, *args: str, totp: bool = False, stdin: str | None = None) -> Result:
        """A command in `session`'s name; totp=True: a fresh code of that operator (next step)."""
        if totp:
            self.tick()
            args = (*args, "--totp", self.code(session))
        return self.cli(session)(*args, stdin=stdin)

    def ok(self, session: str, *args: str, totp: bool = False) -> Result:
        r = self.run(session, *args, totp=totp)
        assert r.code == 0, f"{' '.join(args)} exited {r.code}: {r.err}{r.out}"
        return r

    def add(self, name: str, role: str, by: str | None = None) -> dict[str, Any]:
        args = ("user", "add", name, "--role", role, "--password-stdin", "--json")
        r = self.run(by or "nobody", *args, totp=by is not None, stdin=PASSWORD + "\n")
        assert r.code == 0, r.err
        doc: dict[str, Any] = r.json()
        self.secrets[name] = parse_qs(urlparse(doc["totp_uri"]).query)["secret"][0]
        return doc

    def login(self, name: str, session: str | None = None, password: str = PASSWORD,
              code: str | None = None) -> Result:
        self.tick()
        return self.cli(session or name)(
            "login", name, "--password-stdin", "--totp", code or self.code(name), "--json",
            stdin=password + "\n",
        )


def audit_rows(t: Tieout, action: str) -> list[Any]:
    store = Store.open(t.db_url)
    try:
        with store.read() as conn:
            a = audit_events.c
            return conn.execute(select(audit_events).where(a.action == action)
                                .order_by(a.seq)).all()
    finally:
        store.dispose()


def last_actor(t: Tieout, action: str) -> str:
    return str(audit_rows(t, action)[-1].actor)


@pytest.fixture
def desk(tieout: Tieout, tmp_path: Path) -> Desk:
    """An admin `root` (the first operator, added in local mode) logged in at T0."""
    d = Desk(tieout, tmp_path)
    d.add("root", "admin")
    assert d.login("root").code == 0
    return d


# ---- local mode -----------------------------------------------------------------------------


def test_local_mode_says_so_and_keeps_working(tieout: Tieout) -> None:
    w = tieout.ok("account", "open", "A1", "--currency", "USD", "--json")
    assert "local mode" in w.err and "acting as tester" in w.err
    assert w.json()["account"] == "A1"  # stdout stays one JSON document
    r = tieout.ok("account", "list", "--json")
    assert "local mode" not in r.err  # reads say nothing
    assert tieout.ok("whoami", "--json").json() == {"user": "tester", "role": None,
                                                    "mode": "local"}
    login = tieout("login", "tester", "--password-stdin", "--totp", "123456", stdin="x\n")
    assert login.code == 4 and "local mode" in login.err
    assert last_actor(tieout, "account.open") == "tester"
    # `--db` is on every command, `user roles` included (it was a usage error, exit 2)
    assert "order submit" in tieout.ok("user", "roles", "--json").json()["commands"]


def test_the_first_operator_must_be_an_admin(tieout: Tieout, tmp_path: Path) -> None:
    d = Desk(tieout, tmp_path)
    first = d.run("x", "user", "add", "alice", "--role", "trader", "--password-stdin",
                  stdin=PASSWORD + "\n")
    assert first.code == 4 and "first operator must be an admin" in first.err
    weak = d.run("x", "user", "add", "root", "--role", "admin", "--password-stdin",
                 stdin="short\n")
    assert weak.code == 3 and "at least 12" in weak.err
    doc = d.add("root", "admin")
    assert set(doc) == {"user", "role", "totp_uri"}
    assert doc["totp_uri"].startswith("otpauth://totp/tieout:root?")
    # operator mode from now on: writing needs a session, reading does not
    refused = d.run("x", "account", "open", "A1", "--currency", "USD")
    assert refused.code == 4 and "log in first" in refused.err
    assert d.run("x", "account", "list", "--json").code == 0
    again = d.run("x", "user", "add", "eve", "--role", "admin", "--password-stdin",
                  stdin=PASSWORD + "\n")
    assert again.code == 4 and "log in first" in again.err
    add = audit_rows(tieout, "operator.add")[0]
    assert add.actor == "tester" and d.secrets["root"] not in add.payload


# ---- login, actor, logout -------------------------------------------------------------------


def test_login_makes_the_operator_the_actor(desk: Desk) -> None:
    me = desk.ok("root", "whoami", "--json").json()
    assert me["user"] == "root" and me["role"] == "admin" and me["mode"] == "operators"
    assert me["expires_at"] == iso(desk.now + timedelta(minutes=30)).replace("Z", ".000000Z")
    opened = desk.ok("root", "account", "open", "A1", "--currency", "USD")
    assert "TIEOUT_ACTOR=tester ignored" in opened.err  # the helper's TIEOUT_ACTOR
    assert last_actor(desk.t, "account.open") == "root"
    assert last_actor(desk.t, "session.login") == "root"
    other = desk.run("root", "account", "open", "A2", "--currency", "USD", "--actor", "bob")
    assert other.code == 4 and "logged in as root" in other.err
    same = desk.run("root", "account", "open", "A3", "--currency", "USD", "--actor", "root")
    assert same.code == 0
    desk.ok("root", "logout")
    assert desk.run("root", "whoami", "--json").code == 4
    after = desk.run("root", "account", "open", "A4", "--currency", "USD")
    assert after.code == 4 and "log in first" in after.err


def test_a_guessed_token_is_not_a_session(desk: Desk) -> None:
    path = desk.tmp / "root.session"
    doc = json.loads(path.read_text())
    (desk.tmp / "mallory.session").write_text(json.dumps({**doc, "token": "guess"}))
    r = desk.run("mallory", "account", "open", "A1", "--currency", "USD")
    assert r.code == 4 and "session is unknown" in r.err
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # the token file is the operator's only


def test_wrong_password_and_wrong_totp_are_refused_audited_and_lock(desk: Desk) -> None:
    desk.add("alice", "ops", by="root")
    wrong_pw = desk.login("alice", password="not the password at all")
    assert wrong_pw.code == 4 and "wrong name, password or TOTP code" in wrong_pw.err
    wrong_code = desk.login("alice", code="000000" if desk.code("alice") != "000000" else "111111")
    assert wrong_code.code == 4
    nobody = desk.run("alice", "login", "mallory", "--password-stdin", "--totp", "123456",
                      stdin=PASSWORD + "\n")
    assert nobody.code == 4 and "wrong name, password or TOTP code" in nobody.err
    failures = audit_rows(desk.t, "auth.failed")
    assert [f.payload.count('"reason":"password"') for f in failures] == [1, 0, 0]
    assert '"reason":"totp"' in failures[1].payload
    assert '"reason":"unknown_operator"' in failures[2].payload
    assert all("not the password" not in f.payload and PASSWORD not in f.payload
               for f in failures)
    for _ in range(3):
        assert desk.login("alice", password="still not the password").code == 4
    locked = desk.login("alice")  # the right password and code, but locked now
    assert locked.code == 4 and "locked until" in locked.err
    desk.tick(15 * 60)
    assert desk.login("alice").code == 0


def test_a_replayed_totp_code_is_refused(desk: Desk) -> None:
    desk.add("alice", "ops", by="root")
    assert desk.login("alice").code == 0
    used = desk.code("alice")
    desk.ok("alice", "logout")
    replay = desk.cli("alice")("login", "alice", "--password-stdin", "--totp", used,
                               stdin=PASSWORD + "\n")
    assert replay.code == 4 and "used only once" in replay.err
    assert '"reason":"totp_replayed"' in audit_rows(desk.t, "auth.failed")[-1].payload
    # a sensitive action with the code of the login is a replay too
    assert desk.login("alice").code == 0
    again = desk.run("alice", "destination", "add", "A1", "bank-1", "--totp", desk.code("alice"))
    assert again.code == 4 and "used already" in again.err


def test_sessions_expire_idle_and_absolute(desk: Desk) -> None:
    desk.ok("root", "account", "open", "A1", "--currency", "USD")
    t29 = desk.tick(29 * 60)
    assert desk.run("root", "cash", "deposit", "A1", "10").code == 0  # used: idle clock restarts
    desk.tick(29 * 60)
    assert desk.run("root", "cash", "deposit", "A1", "10").code == 0
    desk.tick(30 * 60)
    idle = desk.run("root", "cash", "deposit", "A1", "10")
    assert idle.code == 4 and "30 minutes idle" in idle.err
    assert desk.run("root", "whoami").code == 4
    assert audit_rows(desk.t, "session.idle")
    # absolute: a session in use all along still ends 12 hours after login
    assert desk.login("root").code == 0
    login_at = desk.now
    store = Store.open(desk.t.db_url)
    with store.write() as conn:  # as if used every few minutes until then
        conn.execute(update(op_sessions).where(op_sessions.c.ended_at.is_(None))
                     .values(last_seen_at=login_at + timedelta(hours=11, minutes=55)))
    store.dispose()
    late = desk.cli("root", login_at + timedelta(hours=12))("cash", "deposit", "A1", "10")
    assert late.code == 4 and "12 hours after login" in late.err
    assert t29 < login_at


# ---- roles ----------------------------------------------------------------------------------


def test_a_trader_cannot_run_admin_or_ops_commands(desk: Desk) -> None:
    desk.add("tom", "trader", by="root")
    assert desk.login("tom").code == 0
    admin = desk.run("tom", "user", "add", "eve", "--role", "admin", "--password-stdin",
                     totp=True, stdin=PASSWORD + "\n")
    assert admin.code == 4 and "tom is trader" in admin.err
    ops = desk.run("tom", "account", "open", "A1", "--currency", "USD")
    assert ops.code == 4 and "needs admin, ops" in ops.err
    grants = desk.run("tom", "db", "grants", "--role", "x")
    assert grants.code == 4
    denied = audit_rows(desk.t, "access.denied")
    assert [r.actor for r in denied] == ["tom", "tom", "tom"]
    assert desk.run("tom", "risk", "kill").code == 0  # anyone may pull the brake
    # and reads stay open
    assert desk.run("tom", "risk", "show", "--json").json()["kill_switch"] is True


def test_a_second_concurrent_session_is_reported_and_can_be_revoked(desk: Desk) -> None:
    desk.add("alice", "ops", by="root")
    first = desk.login("alice", session="alice-laptop")
    assert first.code == 0 and "also have a session" not in first.err
    second = desk.login("alice", session="alice-desktop")
    assert second.code == 0
    assert "you also have a session from" in second.err and "started at" in second.err
    doc = second.json()
    assert [o["session_id"] for o in doc["other_sessions"]] == [first.json()["session_id"]]
    relog = desk.login("alice", session="alice-desktop").json()  # replaces this client's session
    assert relog["replaced_session"] == doc["session_id"]
    assert [o["session_id"] for o in relog["other_sessions"]] == [first.json()["session_id"]]
    doc = relog
    mine = desk.ok("alice-desktop", "sessions", "--json").json()
    assert sorted(s["session_id"] for s in mine) == sorted(
        [first.json()["session_id"], doc["session_id"]])
    assert {s["user"] for s in mine} == {"alice"}  # root's session is not hers to see
    assert len(desk.ok("root", "sessions", "--json").json()) == 3  # the admin sees all
    not_hers = desk.run("alice-desktop", "sessions", "--revoke", "1")  # root's
    assert not_hers.code == 4
    desk.ok("alice-desktop", "sessions", "--revoke", str(first.json()["session_id"]))
    gone = desk.run("alice-laptop", "account", "open", "A1", "--currency", "USD")
    assert gone.code == 4 and "revoked" in gone.err
    assert desk.run("alice-desktop", "account", "open", "A1", "--currency", "USD").code == 0
    # disabling an operator ends their sessions; the last admin stays
    desk.ok("root", "user", "disable", "alice", totp=True)
    off = desk.run("alice-desktop", "account", "open", "A2", "--currency", "USD")
    assert off.code == 4 and "disabled" in off.err
    last = desk.run("root", "user", "disable", "root", totp=True)
    assert last.code == 4 and "last active admin" in last.err


# ---- sensitive actions and four eyes ---------------------------------------------------------


def test_risk_limit_changes_need_a_second_operator_and_the_right_hash(desk: Desk) -> None:
    desk.add("carol", "compliance", by="root")
    desk.add("dave", "compliance", by="root")
    desk.add("tom", "trader", by="root")
    for name in ("carol", "dave", "tom"):
        assert desk.login(name).code == 0
    no_code = desk.run("carol", "risk", "set", "max-notional", "5000")
    assert no_code.code == 4 and "fresh TOTP code" in no_code.err
    bad = desk.run("carol", "risk", "set", "max-nothing", "5000", totp=True)
    assert bad.code == 3 and "not a risk limit" in bad.err  # tried first: no request
    req = desk.ok("carol", "risk", "set", "max-notional", "5000", "--json", totp=True).json()
    assert req["status"] == "pending" and req["action"] == "risk set"
    assert req["args"] == {"name": "max-notional", "value": "5000"}
    assert desk.ok("carol", "risk", "show", "--json").json()["max_notional"] != "5000"
    other = desk.ok("carol", "risk", "set", "max-notional", "9999999", "--json",
                    totp=True).json()
    rid = str(req["request_id"])
    listed = desk.ok("tom", "approvals", "--json").json()
    assert [r["request_id"] for r in listed] == [req["request_id"], other["request_id"]]
    own = desk.run("carol", "approve", rid, "--hash", req["hash"], totp=True)
    assert own.code == 4 and "another operator must approve" in own.err
    trader = desk.run("tom", "approve", rid, "--hash", req["hash"], totp=True)
    assert trader.code == 4
    wrong = desk.run("dave", "approve", rid, "--hash", other["hash"], totp=True)
    assert wrong.code == 4 and "for something else" in wrong.err
    done = desk.ok("dave", "approve", rid, "--hash", req["hash"], "--json", totp=True).json()
    assert done["status"] == "approved" and done["decided_by"] == "dave"
    assert desk.ok("dave", "risk", "show", "--json").json()["max_notional"] == "5000"
    assert last_actor(desk.t, "setting.set") == "dave"
    twice = desk.run("root", "approve", rid, totp=True)
    assert twice.code == 4 and "approved by dave" in twice.err
    # the other request was made before this change: approving it now is refused
    stale = desk.run("root", "approve", str(other["request_id"]), totp=True)
    assert stale.code == 4 and "changed since" in stale.err
    # each refused approval stays in the audit trail, with who tried and why (they were
    # rolled back with the refusal: an insider approving their own change left no trace)
    refused = [(r.actor, json.loads(r.payload)["reason"])
               for r in audit_rows(desk.t, "approval.refused")]  # fmt: skip
    assert refused == [("carol", "four_eyes"), ("dave", "hash_mismatch"),
                       ("root", "not_pending"), ("root", "request_changed")]  # fmt: skip
    assert "tom" in {r.actor for r in audit_rows(desk.t, "access.denied")}  # may not approve
    assert desk.ok("root", "audit", "verify", "--json").json()["ok"] is True


def test_a_stale_request_for_a_limit_named_in_another_case_is_refused(desk: Desk) -> None:
    """An audit (2026-11-28): a request for max-notional.usd recorded the state of a setting
    that does not exist (the limit is stored as max-notional.USD), so approving it after a
    newer approved change silently put the old, looser cap back."""
    desk.add("carl", "compliance", by="root")
    assert desk.login("carl").code == 0
    loose = desk.ok("carl", "risk", "set", "max-notional.usd", "1000000", "--json",
                    totp=True).json()  # fmt: skip
    tight = desk.ok("carl", "risk", "set", "max-notional.USD", "100", "--json", totp=True).json()
    assert loose["before"] == tight["before"]  # the same setting, as it stands
    desk.ok("root", "approve", str(tight["request_id"]), "--hash", tight["hash"], totp=True)
    stale = desk.run("root", "approve", str(loose["request_id"]), "--hash", loose["hash"],
                     totp=True)  # fmt: skip
    assert stale.code == 4 and "changed since" in stale.err, stale.err
    limits = desk.ok("root", "risk", "show", "--json").json()
    assert limits["max_notional_by_currency"]["USD"] == "100", limits


def test_releasing_a_kill_switch_needs_a_second_operator(desk: Desk) -> None:
    desk.add("carol", "compliance", by="root")
    assert desk.login("carol").code == 0
    desk.ok("carol", "risk", "kill", "--reason", "drill")
    req = desk.ok("carol", "risk", "release", "--json", totp=True).json()
    assert desk.ok("carol", "risk", "show", "--json").json()["kill_switch"] is True
    desk.ok("root", "approve", str(req["request_id"]), "--hash", req["hash"], totp=True)
    assert desk.ok("carol", "risk", "show", "--json").json()["kill_switch"] is False
    # a request not approved within a day expires
    desk.ok("carol", "risk", "kill", "--reason", "drill 2")
    old = desk.ok("carol", "risk", "release", "--json", totp=True).json()
    desk.tick(25 * 3600)
    assert desk.login("root").code == 0
    late = desk.run("root", "approve", str(old["request_id"]), totp=True)
    assert late.code == 4 and "expired at" in late.err


def test_a_release_asked_for_an_earlier_engagement_is_refused(desk: Desk) -> None:
    """An audit (2026-11-28): a release request compared only the switch's value, so a release
    asked for during one incident, left pending, released the switch engaged again later."""
    desk.add("carol", "compliance", by="root")
    assert desk.login("carol").code == 0
    desk.ok("carol", "risk", "kill", "--reason", "incident 1")
    old = desk.ok("carol", "risk", "release", "--json", totp=True).json()
    assert old["before"]["updated_by"] == "carol"  # what the approver is shown
    now = desk.ok("carol", "risk", "release", "--json", totp=True).json()
    desk.ok("root", "approve", str(now["request_id"]), "--hash", now["hash"], totp=True)
    desk.tick(60)
    desk.ok("carol", "risk", "kill", "--reason", "incident 2")
    assert desk.login("root").code == 0
    stale = desk.run("root", "approve", str(old["request_id"]), "--hash", old["hash"],
                     totp=True)  # fmt: skip
    assert stale.code == 4 and "changed since" in stale.err, stale.err
    assert desk.ok("root", "risk", "show", "--json").json()["kill_switch"] is True


def test_a_request_made_before_its_state_carried_its_write_time_is_approved(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-review: requests pending when tieout began to record when the setting was
    written held the value only, and were refused for ever as "changed since"."""
    desk.add("carol", "compliance", by="root")
    assert desk.login("carol").code == 0
    desk.ok("carol", "risk", "kill", "--reason", "incident")

    def value_only(conn: Any, key: str) -> dict[str, Any]:  # the state as tieout kept it then
        return {"setting": key, "value": book.get_setting(conn, key)}

    with monkeypatch.context() as older:
        older.setattr(access, "_setting_state", value_only)
        limit = desk.ok("carol", "risk", "set", "max-notional", "7000", "--json", totp=True).json()
        release = desk.ok("carol", "risk", "release", "--json", totp=True).json()
    assert "updated_at" not in release["before"]
    for req in (limit, release):
        desk.ok("root", "approve", str(req["request_id"]), "--hash", req["hash"], totp=True)
    shown = desk.ok("root", "risk", "show", "--json").json()
    assert (shown["max_notional"], shown["kill_switch"]) == ("7000", False)


def test_a_request_of_an_operator_disabled_since_is_not_carried_out(desk: Desk) -> None:
    """An audit's doubt: a request stayed approvable after its requester was disabled (an
    operator let go, their pending limit change approved the next morning)."""
    desk.add("carol", "compliance", by="root")
    desk.add("dave", "compliance", by="root")
    for name in ("carol", "dave"):
        assert desk.login(name).code == 0
    req = desk.ok("carol", "risk", "set", "max-notional", "7000", "--json", totp=True).json()
    desk.ok("root", "user", "disable", "carol", totp=True)
    r = desk.run("dave", "approve", str(req["request_id"]), "--hash", req["hash"], totp=True)
    assert r.code == 4 and "carol, who asked for it, is disabled" in r.err, r.err
    assert desk.ok("dave", "risk", "show", "--json").json()["max_notional"] != "7000"
    refused = [json.loads(x.payload)["reason"] for x in audit_rows(desk.t, "approval.refused")]
    assert refused == ["requester_disabled"]


def test_breaks_approval_needs_a_fresh_code(desk: Desk) -> None:
    no_code = desk.run("root", "breaks", "approve", "1")
    assert no_code.code == 4 and "fresh TOTP code" in no_code.err
    r = desk.run("root", "breaks", "approve", "1", totp=True)
    assert r.code == 5  # past the guard: the break does not exist


# ---- withdrawals to whitelisted destinations ---------------------------------------------------


def test_withdrawals_only_to_destinations_whitelisted_a_day_ago(tieout: Tieout) -> None:
    t = tieout.at(iso(T0))
    t.ok("account", "open", "A1", "--currency", "USD")
    t.ok("cash", "deposit", "A1", "1000")
    unknown = t("cash", "withdraw", "A1", "100", "--to", "IBAN-X")
    assert unknown.code == 4 and "not a whitelisted destination" in unknown.err
    added = t.ok("destination", "add", "A1", "IBAN-1", "--label", "main bank", "--json").json()
    assert added["usable_from"] == "2026-03-03T14:00:00.000000Z" and added["created"] is True
    soon = tieout.at(iso(T0 + timedelta(hours=23, minutes=59)))
    early = soon("cash", "withdraw", "A1", "100", "--to", "IBAN-1")
    assert early.code == 4 and "can be used from 2026-03-03T14:00:00" in early.err
    later = tieout.at(iso(T0 + timedelta(hours=24)))
    assert later.ok("cash", "withdraw", "A1", "100", "--to", "IBAN-1", "--json").json()[
        "balance"] == "900"
    listed = later.ok("destination", "list", "A1", "--json").json()
    assert [(d["destination"], d["usable"], d["label"]) for d in listed] == [
        ("IBAN-1", True, "main bank")]
    later.ok("destination", "remove", "A1", "IBAN-1")
    removed = later("cash", "withdraw", "A1", "100", "--to", "IBAN-1")
    assert removed.code == 4
    readded = later.ok("destination", "add", "A1", "IBAN-1", "--json").json()
    assert readded["usable"] is False  # a new waiting period
    assert len(audit_rows(tieout, "cash.withdraw_refused")) == 3
    assert [r.action for r in audit_rows(tieout, "destination.add")] == ["destination.add"] * 2
    assert len(audit_rows(tieout, "destination.remove")) == 1
    assert later("destination", "list", "NOPE", "--json").code == 5


def test_adding_a_destination_in_operator_mode_needs_a_fresh_code(desk: Desk) -> None:
    desk.ok("root", "account", "open", "A1", "--currency", "USD")
    no_code = desk.run("root", "destination", "add", "A1", "IBAN-1")
    assert no_code.code == 4 and "fresh TOTP code" in no_code.err
    desk.ok("root", "destination", "add", "A1", "IBAN-1", totp=True)
    assert last_actor(desk.t, "destination.add") == "root"


def test_db_grants_on_sqlite_is_refused(tieout: Tieout) -> None:
    if not tieout.db_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL side is in tests/integration/test_db_grants.py")
    r = tieout("db", "grants", "--role", "tieout_app")
    assert r.code == 3 and "PostgreSQL feature" in r.err


# ---- the TOTP key -----------------------------------------------------------------------------


def test_a_wrong_or_missing_totp_key_is_refused_clearly(desk: Desk, tmp_path: Path) -> None:
    before = len(audit_rows(desk.t, "auth.failed")), len(audit_rows(desk.t, "session.login"))
    desk.tick()
    elsewhere = desk.cli("root").with_env(TIEOUT_KEY_FILE=str(tmp_path / "elsewhere.key"))
    r = elsewhere("login", "root", "--password-stdin", "--totp", desk.code("root"),
                  stdin=PASSWORD + "\n")
    assert r.code == 3 and "no key" in r.err and "elsewhere.key" in r.err
    assert desk.secrets["root"] not in r.err + r.out
    # a sensitive command in a live session needs the key as well
    r = elsewhere("user", "add", "bob", "--role", "ops", "--password-stdin", "--totp",
                  desk.code("root"), stdin=PASSWORD + "\n")
    assert r.code == 3 and "no key" in r.err
    after = len(audit_rows(desk.t, "auth.failed")), len(audit_rows(desk.t, "session.login"))
    assert after == before  # nothing written: not even a failure


def test_rotating_the_totp_key_through_the_cli(desk: Desk) -> None:
    desk.add("bob", "ops", by="root")
    refused = desk.run("bob", "user", "rotate-key", totp=False)  # not logged in: refused
    assert refused.code == 4
    doc = desk.ok("root", "user", "rotate-key", "--json", totp=True).json()
    assert doc["operators"] == 2 and doc["key_id"] not in doc["previous_key_ids"]
    assert "retired" in doc["retired_key_file"]
    assert desk.login("bob").code == 0  # the new key opens bob's secret
    assert last_actor(desk.t, "secret_key.rotate") == "root"


def test_an_admin_logs_in_to_upgrade_a_book_an_upgraded_tieout_has_not_migrated(
    desk: Desk,
) -> None:
    """An operator-mode book at 0020, tieout upgraded in place, the admin's session long
    over: `init` needed an admin's session, and `login` refused the book ("run `tieout init`
    first"), so nobody could upgrade it. Login takes a book from 0011 on and says to run init;
    other commands still refuse it."""
    from alembic import command

    from oms.store import alembic_config

    store = Store.open(desk.t.db_url)
    try:
        with store.engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0020")
    finally:
        store.dispose()
    desk.tick(13 * 3600)  # the session is over
    assert desk.run("root", "init").code == 4
    assert desk.run("root", "order", "list").code == 1  # (refused: run init)
    r = desk.login("root")
    assert r.code == 0, r.err
    assert "schema revision 0020" in r.err and "tieout init" in r.err
    done = desk.ok("root", "init", "--json")
    assert migrations.HEAD in done.out
    assert desk.run("root", "order", "list").code == 0
