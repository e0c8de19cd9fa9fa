"""A book a newer tieout upgraded, through the real command: every command says so (it said
"run `tieout init`"), `tieout init` refuses it in one line (it died with alembic's traceback:
"Can't locate revision"), and a restored backup of one is not said to be behind."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tarfile
from pathlib import Path

from sqlalchemy import create_engine

from migrations import HEAD
from tests.conftest import Tieout, run_tieout

NEWER = f"{int(HEAD) + 1:04d}"


def _set_revision(db_url: str, revision: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
    finally:
        engine.dispose()


def test_a_newer_schema_is_said_so_and_init_refuses_it(tieout: Tieout) -> None:
    tieout.ok("account", "open", "A1", "--currency", "USD")
    _set_revision(tieout.db_url, NEWER)
    listed = tieout("account", "list")
    assert listed.code == 1
    assert f"schema revision {NEWER}" in listed.err and "a newer tieout upgraded it" in listed.err
    assert "run `tieout init" not in listed.err
    init = tieout("init")
    assert init.code == 1, init.err
    assert "Traceback" not in init.err and "a newer tieout upgraded it" in init.err
    assert len(init.err.strip().splitlines()) <= 2  # (a local-mode note may come first)
    _set_revision(tieout.db_url, HEAD)  # the book as it was: nothing was written
    assert [a["account"] for a in tieout.ok("account", "list", "--json").json()] == ["A1"]
    assert tieout.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_restored_backup_of_a_newer_schema_is_not_said_to_be_behind(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    Tieout(source).ok("init")
    archive = tmp_path / "b.tbk"
    Tieout(source).ok("backup", "create", "--out", str(archive))
    # the backup as a newer tieout would have made it: its database and manifest at NEWER
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(unpacked, filter="data")
    manifest = json.loads((unpacked / "manifest.json").read_text())
    [payload] = [n for n in names if n != "manifest.json"]
    with sqlite3.connect(unpacked / payload) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (NEWER,))
    data = (unpacked / payload).read_bytes()
    manifest["payload"]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["payload"]["bytes"] = len(data)
    manifest["schema_revision"] = NEWER
    (unpacked / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    newer = tmp_path / "newer.tbk"
    with tarfile.open(newer, "w") as tar:
        for name in names:
            tar.add(unpacked / name, arcname=name)
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    r = run_tieout("backup", "restore", str(newer), "--db", target)
    assert r.code == 0, r.err
    assert "behind" not in r.out and "tieout init" not in r.out
    assert f"the schema (revision {NEWER}) is not one this tieout (schema {HEAD}) knows" in r.out
    assert "a newer tieout made the backup" in r.out
