"""The restore drill through the real command on both backends: back up, destroy, restore,
verify (schema version, rows per table, the audit chain, anchored at a retention archive); a
damaged or altered backup is refused with exit 7 and leaves nothing behind."""

import hashlib
import io
import json
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Tieout, write

OLD = "2018-03-01T10:00:00Z"
YOUNG = "2026-01-05T10:00:00Z"


@pytest.fixture
def book(db_url: str, tmp_path: Path) -> Tieout:
    """A book with executions, cash and a retention archive (the audit chain is anchored)."""
    t = Tieout(db_url)
    old = t.at(OLD)
    old.ok("init")
    old.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    old.ok("account", "open", "A1", "--currency", "USD")
    old.ok("cash", "deposit", "A1", "1000.50")
    young = t.at(YOUNG)
    young.ok("cash", "deposit", "A1", "10")
    young.ok("exec", "import", write(
        tmp_path / "e.csv",
        "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"
        "E1,A1,AAPL,buy,3,190.25,2026-01-05,ACME\n"))
    done = young.ok("retention", "apply", "--archive-dir", str(tmp_path / "archive"),
                    "--json").json()
    assert done["audit_anchor"] is not None
    return t


def restored_head() -> str | None:
    from alembic.script import ScriptDirectory

    from oms.store import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def facts(t: Tieout) -> dict[str, Any]:
    return {
        "cash": t.ok("cash", "balance", "A1", "--json").json(),
        "execs": t.ok("exec", "list", "--json").json(),
        "positions": t.ok("positions", "--account", "A1", "--json").json(),
        "archives": t.ok("retention", "show", "--json").json()["archives"],
    }


def destroy(db_url: str) -> None:
    """Lose the database: the SQLite file, or the test's PostgreSQL schema."""
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    base, schema = db_url.split("?options=-csearch_path%3D")
    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def rewrite(src: Path, dest: Path, *, payload: bytes | None = None,
            manifest: dict[str, Any] | None = None) -> str:
    """A copy of a backup with its database file and/or manifest replaced."""
    with tarfile.open(src) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    name = next(n for n in members if n != "manifest.json")
    if payload is not None:
        members[name] = payload
    if manifest is not None:
        members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(dest, "w") as tar:
        for n, data in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(dest)


def test_the_restore_drill(book: Tieout, tmp_path: Path) -> None:
    before = facts(book)
    verified = book.ok("audit", "verify", "--json").json()
    assert verified["ok"] is True
    out = tmp_path / "backups" / "book.tar"
    made = book.ok("backup", "create", "--out", str(out), "--json").json()
    assert made["schema_revision"] == restored_head()
    assert made["audit"] == {"ok": True, "events": verified["events"], "head": verified["head"]}
    assert made["tables"]["archives"] == 1 and made["tables"]["executions"] == 1
    assert book.ok("backup", "verify", str(out), "--json").json()["ok"] is True

    destroy(book.db_url)
    assert book("cash", "balance", "A1").code == 1  # the book is gone

    restored = book.ok("backup", "restore", str(out), "--json").json()
    assert restored["verified"] is True and restored["problems"] == []
    assert restored["tables"] == made["tables"]
    assert restored["schema_current"] is True
    assert facts(book) == before
    after = book.ok("audit", "verify", "--json").json()
    assert after["ok"] is True
    # what happened since the backup: the backup itself, then the restore, both audited
    assert after["events"] == verified["events"] + 1
    export = tmp_path / "audit.jsonl"
    book.ok("audit", "export", "--from", "2018-01-01", "--to", "2030-12-31", "--out", str(export))
    assert json.loads(export.read_text().splitlines()[-1])["action"] == "backup.restore"
    assert book.ok("audit", "verify", "--file", str(export), "--json").json()["ok"] is True

    again = book("backup", "restore", str(out))  # never over a live book
    assert again.code == 4
    assert "not empty" in again.err or "exists already" in again.err


def test_a_damaged_or_altered_backup_is_refused(book: Tieout, tmp_path: Path) -> None:
    out = tmp_path / "book.tar"
    book.ok("backup", "create", "--out", str(out))
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        payload = tar.extractfile(manifest["payload"]["name"]).read()  # type: ignore[union-attr]
    if book.db_url.startswith("sqlite"):
        target = Tieout(f"sqlite:///{tmp_path / 'restored.db'}")
    else:
        destroy(book.db_url)
        target = book

    # one flipped byte in the database file: refused before anything is written
    flipped = bytearray(payload)
    flipped[len(flipped) // 2] ^= 0x01
    r = target("backup", "restore", rewrite(out, tmp_path / "flip.tar", payload=bytes(flipped)))
    assert r.code == 7 and "SHA-256" in r.err and "nothing was restored" in r.err
    assert target("cash", "balance", "A1").code == 1  # still nothing there

    # a manifest that does not match the database: the verification after the restore fails
    lying = {**manifest, "tables": {**manifest["tables"], "executions": 2}}
    r = target("backup", "restore", rewrite(out, tmp_path / "lie.tar", manifest=lying), "--json")
    assert r.code == 7, r.err
    doc = json.loads(r.out)
    assert doc["verified"] is False
    assert doc["problems"] == ["table executions: 1 rows, the backup has 2"]
    if book.db_url.startswith("sqlite"):
        assert not (tmp_path / "restored.db").exists()  # verified before it was put in place
        # a database edited behind tieout's back, its digest fixed up: the audit chain fails
        edited = tmp_path / "edited.db"
        edited.write_bytes(payload)
        with sqlite3.connect(edited) as conn:
            conn.execute("DROP TRIGGER audit_events_no_update")
            conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = "
                         "(SELECT max(seq) FROM audit_events)")
        data = edited.read_bytes()
        fixed = {**manifest, "payload": {**manifest["payload"],
                                         "sha256": hashlib.sha256(data).hexdigest()}}
        r = target("backup", "restore",
                   rewrite(out, tmp_path / "edit.tar", payload=data, manifest=fixed))
        assert r.code == 7 and "audit chain" in r.err
        assert not (tmp_path / "restored.db").exists()
    else:
        assert "left for inspection" in r.err
        # and no command uses it (a deposit went through): not even `tieout init`
        for args in (("cash", "deposit", "A1", "5"), ("cash", "balance", "A1"), ("init",)):
            r = target(*args)
            assert r.code == 1 and "restore that did not verify" in r.err, (args, r.err)
        destroy(book.db_url)
    # the genuine backup still restores
    assert target.ok("backup", "restore", str(out), "--json").json()["verified"] is True
    assert target.ok("audit", "verify", "--json").json()["ok"] is True

    # a manifest that lost what it must say (its payload's name and digest): refused
    gutted = {k: v for k, v in manifest.items() if k != "payload"}
    for command in ("restore", "verify"):
        r = target("backup", command, rewrite(out, tmp_path / "gutted.tar", manifest=gutted))
        assert r.code == 7 and "manifest lacks or misstates payload" in r.err, r.err
    uncounted = {**manifest, "audit": {k: v for k, v in manifest["audit"].items() if k != "events"}}
    r = target("backup", "restore", rewrite(out, tmp_path / "uncounted.tar", manifest=uncounted))
    assert r.code == 7 and "misstates audit.events" in r.err, r.err

    # not a backup at all: bad input, said in one line (tarfile's error listed each
    # compression it tried, one a line)
    r = target("backup", "restore", write(tmp_path / "junk.tar", "junk"))
    assert r.code == 3 and "not a tieout backup: it is not a tar archive" in r.err, r.err
    assert [x for x in r.err.splitlines() if "local mode" not in x and x.strip()] == [
        r.err.strip().splitlines()[-1]
    ], r.err
    r = target("backup", "verify", write(tmp_path / "empty.tar", ""))
    assert r.code == 3 and r.err.strip().endswith("not a tieout backup: the file is empty"), r.err
    # a backup cut short (an interrupted copy) is a damaged backup, not "not a tar archive"
    whole = Path(out).read_bytes()
    for cut in (700, len(whole) // 2):
        short = tmp_path / f"cut-{cut}.tbk"
        short.write_bytes(whole[:cut])
        for command in ("restore", "verify"):
            r = target("backup", command, str(short))
            assert r.code == 7, (cut, command, r.err)
            assert "the backup is damaged or cut short (tarfile: unexpected end of data)" in r.err


def test_a_backup_holds_no_totp_secret(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Operators' TOTP secrets are encrypted with a key outside the database: the backup (the
    raw SQLite file; the PostgreSQL dump as pg_restore writes it out in SQL) never holds one in
    clear, and a restored book logs in only with the key, kept apart."""
    import subprocess
    from datetime import UTC, datetime, timedelta
    from urllib.parse import parse_qs, urlparse

    import pyotp
    from argon2 import PasswordHasher, profiles

    from oms import access, backup

    monkeypatch.setattr(access, "HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))
    key = tmp_path / "keys" / "totp.key"
    t0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    base = Tieout(db_url).with_env(TIEOUT_KEY_FILE=str(key),
                                   TIEOUT_SESSION_FILE=str(tmp_path / "root.session"))

    def at(seconds: int) -> Tieout:
        return base.at((t0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"))

    at(0).ok("init")
    password = "correct horse battery staple\n"
    doc = at(0)("user", "add", "root", "--role", "admin", "--password-stdin", "--json",
                stdin=password)
    assert doc.code == 0, doc.err
    secret = parse_qs(urlparse(doc.json()["totp_uri"]).query)["secret"][0]
    assert str(key) in doc.err  # the first operator is told where the key is

    def login(seconds: int, t: Tieout | None = None) -> Any:
        code = pyotp.TOTP(secret).at(t0 + timedelta(seconds=seconds))
        return (t or at(seconds))("login", "root", "--password-stdin", "--totp", code,
                                  stdin=password)

    assert login(31).code == 0
    out = tmp_path / "book.tar"
    at(40).ok("backup", "create", "--out", str(out))
    with tarfile.open(out) as tar:
        members = {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                   for m in tar.getmembers()}
    dump = b"".join(members.values())
    if not db_url.startswith("sqlite"):  # a custom-format dump is compressed: write it out
        pgdump = tmp_path / "db.pgdump"
        pgdump.write_bytes(members["database.pgdump"])
        dump = subprocess.run([backup.pg_tool("pg_restore"), "-f", "-", str(pgdump)],
                              check=True, capture_output=True).stdout
    assert b"v1:" in dump  # the check reads the operators' rows...
    assert secret.encode() not in dump  # ...and the secret is not among them
    assert key.read_bytes() not in dump

    destroy(db_url)
    restored = base.ok("backup", "restore", str(out), "--json").json()
    assert restored["verified"] is True
    assert login(62).code == 0  # with the key kept apart, the restored book logs in
    lost = at(93).with_env(TIEOUT_KEY_FILE=str(tmp_path / "lost.key"))
    r = login(93, lost)
    assert r.code == 3 and "no key" in r.err and secret not in r.err + r.out
