"""Backup and restore of a book, each followed by a verification.

A backup is one tar file holding `manifest.json` and the database itself:
- SQLite: `database.sqlite3`, a copy made with SQLite's online backup API (a consistent snapshot
  while writers go on), switched to a self-contained rollback-journal file;
- PostgreSQL: `database.pgdump`, `pg_dump --format=custom` of the book's schema (the URL's
  search_path; `--schema`), taken on a snapshot exported by a REPEATABLE READ transaction, so
  that the counts in the manifest are those of the very same snapshot.
The manifest records the schema revision (Alembic), the rows of every table, the audit chain's
check (events, head) and the SHA-256 of the database file.

`restore` refuses a target that already holds tables (restore into a new SQLite file, an empty
database or a dropped schema), checks the file's SHA-256 before anything is written, restores
(`pg_restore --single-transaction --exit-on-error --no-owner`), then verifies: the schema
revision, every table's rows and the audit chain (intact, same head) must be those of the
manifest. A failed verification raises VerificationFailed (exit 7). A SQLite restore is
verified before the file is moved into place, so a failing one leaves nothing at the target;
a PostgreSQL one is left in place for inspection and the message says so. A verified restore
is recorded in the restored book's audit trail (`backup.restore`).

This module runs pg_dump / pg_restore (PATH, else TIEOUT_PG_BIN, else the highest
/usr/lib/postgresql/*/bin) and opens the SQLite copy itself; everything else goes through Store.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, func, inspect, select, table
from sqlalchemy import text as sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from oms import audit
from oms.book import Ctx
from oms.errors import (
    UNVERIFIED,
    BadInput,
    OutputFailed,
    Refused,
    TieoutError,
    VerificationFailed,
)
from oms.interrupts import interrupts_held
from oms.store import Store, book_schema, fsync_path, schema_revisions
from oms.values import utc_iso

FORMAT = "tieout-backup/1"
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"


# ---- reading a book's facts ---------------------------------------------------------------------


def table_counts(conn: Connection) -> dict[str, int]:
    """Rows of every table of the connection's schema (alembic_version included)."""
    names = sorted(inspect(conn).get_table_names())
    return {
        n: int(conn.execute(select(func.count()).select_from(table(n))).scalar() or 0)
        for n in names
    }


def book_facts(conn: Connection) -> dict[str, Any]:
    """What a backup records and a restore must find again."""
    revision, _ = schema_revisions(conn)
    check = audit.verify_store(conn)
    return {
        "schema_revision": revision,
        "tables": table_counts(conn),
        "audit": {"ok": check.ok, "events": check.events, "head": check.head},
    }


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# ---- PostgreSQL tools ---------------------------------------------------------------------------


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    base = os.environ.get("TIEOUT_PG_BIN")
    candidates = [Path(base) / name] if base else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        reverse=True,
    )
    for c in candidates:
        if c.is_file():
            return str(c)
    raise TieoutError(f"{name} not found: install the PostgreSQL client or set TIEOUT_PG_BIN")


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string for the URL (without the password) and the environment that
    carries the password (PGPASSWORD), so that it never shows in a process list."""
    from psycopg.conninfo import make_conninfo

    params: dict[str, Any] = {}
    if url.host:
        params["host"] = url.host
    if url.port:
        params["port"] = url.port
    if url.username:
        params["user"] = url.username
    if url.database:
        params["dbname"] = url.database
    for k, v in url.query.items():
        params[k] = v if isinstance(v, str) else v[-1]
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return str(make_conninfo(**params)), env


def _run(cmd: list[str], env: Mapping[str, str], what: str) -> None:
    done = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        err = done.stderr.strip().splitlines()
        raise TieoutError(f"{what} failed: {err[-1] if err else f'exit {done.returncode}'}")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def search_schema(conn: Connection) -> str:
    """The schema the connection's search_path puts tieout's tables in (its first entry that
    is not "$user"), whether or not it exists yet."""
    path = str(conn.exec_driver_sql("SELECT current_setting('search_path')").scalar() or "")
    for part in re.findall(r'"(?:[^"]|"")*"|[^,\s]+', path):
        name = str(part[1:-1].replace('""', '"') if part.startswith('"') else part)
        if name != "$user":
            return name
    return "public"


# ---- create -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    manifest: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "file": str(self.path),
            "backend": m["backend"],
            "created_at": m["created_at"],
            "schema_revision": m["schema_revision"],
            "tables": m["tables"],
            "audit": m["audit"],
            "sha256": m["payload"]["sha256"],
            "bytes": m["payload"]["bytes"],
        }


def _sqlite_snapshot(store: Store, dest: Path) -> dict[str, Any]:
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if raw is None:
            raise RuntimeError("no DBAPI connection")
        target = sqlite3.connect(dest)
        try:
            raw.backup(target)  # all pages in one step: one consistent snapshot
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        except sqlite3.OperationalError as e:
            if "full" not in str(e) and "disk I/O" not in str(e):
                raise
            # the snapshot's disk (the backup's folder) is full or failing: said of the
            # backup, not taken for the book's own database
            raise OutputFailed(str(dest.parent.parent), f"the snapshot failed: {e}") from None
        finally:
            target.close()
    engine = create_engine(f"sqlite:///{dest}", poolclass=NullPool)
    try:
        with engine.connect() as conn, conn.begin():
            return book_facts(conn)
    finally:
        engine.dispose()


def _pg_snapshot(store: Store, dest: Path) -> dict[str, Any]:
    with store.engine.connect() as plain:
        conn = plain.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
            schema = book_schema(conn)  # (an app role's own schema may come first)
            facts = book_facts(conn)
            conninfo, env = _libpq(store.engine.url)
            _run(
                [
                    pg_tool("pg_dump"),
                    "--format=custom",
                    f"--schema={_quote_ident(schema)}",
                    f"--snapshot={snapshot}",
                    "--no-password",
                    f"--file={dest}",
                    f"--dbname={conninfo}",
                ],
                env,
                "pg_dump",
            )
    return {**facts, "schema": schema}


def create(store: Store, ctx: Ctx, out: Path) -> BackupInfo:
    """Back the book up into `out` and record the backup in the book's audit trail. The
    snapshot is taken in a temporary folder and packed into `.tieout-backup-XXXX.partial`
    beside `out`; the file takes its name inside the transaction that records it, just before
    the commit (Ctrl-C held from the rename to the commit): a backup file is never left
    without its `backup.create` event, short of a kill in that instant, and a run killed
    before leaves files whose names say they are incomplete."""
    if out.exists() and out.is_dir():
        raise BadInput(str(out), "is a directory: give the backup file's name")
    try:  # a file where a folder should be, no permission, a read-only disk
        out.parent.mkdir(parents=True, exist_ok=True)
        work = tempfile.TemporaryDirectory(dir=out.parent, prefix=".tieout-backup-")
    except OSError as e:
        raise BadInput(str(out), f"cannot be written: {e.strerror or e}") from None
    # a name of its own length (not the target's plus a suffix: a target name near the
    # file system's limit of 255 bytes would leave no room)
    partial = out.parent / f".tieout-backup-{secrets.token_hex(6)}.partial"
    # an earlier backup at `out`, kept aside until the new one is recorded: the rename puts
    # the new file in its place before the commit, and a commit that fails (a full disk under
    # the book) takes the new file away again: it must give the earlier one back
    previous = out.parent / f".tieout-backup-{secrets.token_hex(6)}.previous"
    held = contextlib.ExitStack()
    renamed = committed = False
    try:
        with work as tmp:
            if store.dialect == "sqlite":
                member = SQLITE_MEMBER
                facts = _sqlite_snapshot(store, Path(tmp) / member)
            else:
                member = PG_MEMBER
                facts = _pg_snapshot(store, Path(tmp) / member)
            payload = Path(tmp) / member
            manifest = {
                "format": FORMAT,
                "backend": store.dialect,
                "created_at": utc_iso(ctx.now),
                "created_by": ctx.actor,
                "source": store.url,
                **facts,
                "payload": {
                    "name": member,
                    "sha256": _sha256(payload),
                    "bytes": payload.stat().st_size,
                },
            }
            if not facts["audit"]["ok"]:
                manifest["warning"] = "the audit chain of the source did not verify"
            try:
                with tarfile.open(partial, "w") as tar:
                    text = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
                    info = tarfile.TarInfo(MANIFEST)
                    info.size = len(text)
                    info.mtime = int(ctx.now.timestamp())
                    tar.addfile(info, io.BytesIO(text))
                    tar.add(payload, arcname=member)
                fsync_path(partial)
            except OSError as e:  # a full or failing disk under the backup's folder
                raise OutputFailed(str(out), e.strerror or str(e)) from None
        with store.write() as conn:
            audit.append(
                conn,
                at=ctx.now,
                actor=ctx.actor,
                action="backup.create",
                entity_type="database",
                entity_id="backup",
                payload={
                    "file": str(out.resolve()),
                    "sha256": manifest["payload"]["sha256"],
                    "schema_revision": manifest["schema_revision"],
                    "audit_head": manifest["audit"]["head"],
                },
            )
            held.enter_context(interrupts_held())
            if out.is_file():
                os.link(out, previous)  # (the same folder: a second name, no copy)
            os.replace(partial, out)
            renamed = True
            fsync_path(out.parent)
        committed = True
        held.close()  # a Ctrl-C held since the rename is raised now, the backup recorded
    except BaseException:
        if renamed and not committed:  # the event rolled back: no file without it
            if previous.exists():
                os.replace(previous, out)  # the earlier backup, as it was
            else:
                out.unlink(missing_ok=True)
        raise
    finally:
        held.close()
        partial.unlink(missing_ok=True)  # (gone once renamed)
        previous.unlink(missing_ok=True)  # (a second name of the replaced file: gone with it)
    return BackupInfo(out, manifest)


# ---- reading a backup ---------------------------------------------------------------------------


def _unreadable(path: Path, exc: BaseException) -> str:
    """Why a backup's manifest cannot be read, in one line (tarfile's ReadError lists each
    compression it tried, one a line)."""
    if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError):
        return exc.strerror or str(exc)
    if path.is_file() and path.stat().st_size == 0:
        return "the file is empty"
    if isinstance(exc, tarfile.ReadError):
        return "it is not a tar archive (a tieout backup is one)"
    if isinstance(exc, KeyError):
        return f"it holds no {MANIFEST}"
    if isinstance(exc, ValueError):
        return f"its {MANIFEST} is not JSON"
    return " ".join(str(exc).split())


def _damaged(exc: tarfile.ReadError) -> bool:
    """Whether tarfile read a tar archive and found it broken ("unexpected end of data": an
    interrupted copy), rather than no archive at all: it then lists each compression it tried,
    one a line (an empty file too)."""
    return "could not be opened" not in str(exc)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path, "r") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            manifest = json.loads(member.read())
    except tarfile.ReadError as exc:
        if _damaged(exc):  # a tar archive cut short or damaged: the backup is damaged
            raise VerificationFailed(
                f"{path}: the backup is damaged or cut short (tarfile: {exc}): it cannot be "
                "restored; use another copy"
            ) from None
        raise BadInput(str(path), f"not a tieout backup: {_unreadable(path, exc)}") from None
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BadInput(str(path), f"not a tieout backup: {_unreadable(path, exc)}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadInput(str(path), "not a tieout backup (unknown manifest format)")
    missing = _manifest_gaps(manifest)
    if missing:
        raise VerificationFailed(
            f"{path}: the backup's manifest lacks or misstates {', '.join(missing)}: it was "
            "altered or damaged; nothing was restored"
        )
    return manifest


# what a manifest must hold, and of what type: (key, type) at the top; (key, sub-key, type)
_MANIFEST_SHAPE: tuple[tuple[str, ...], ...] = (
    ("backend", "str"),
    ("created_at", "str"),
    ("schema_revision", "str"),
    ("tables", "dict"),
    ("audit", "dict"),
    ("audit", "events", "int"),
    ("audit", "head", "any"),
    ("payload", "dict"),
    ("payload", "name", "str"),
    ("payload", "sha256", "str"),
    ("payload", "bytes", "int"),
)
_TYPES: dict[str, type | tuple[type, ...]] = {"str": str, "dict": dict, "int": int, "any": object}


def _manifest_gaps(manifest: Mapping[str, Any]) -> list[str]:
    gaps = []
    for *keys, kind in _MANIFEST_SHAPE:
        value: Any = manifest
        for key in keys:
            value = value.get(key, _ABSENT) if isinstance(value, dict) else _ABSENT
        if value is _ABSENT or not isinstance(value, _TYPES[kind]):
            gaps.append(".".join(keys))
    return gaps


_ABSENT = object()


_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})


def _reading(exc: OSError, path: Path) -> bool:
    """Whether an error names the backup file itself (what is read), not the scratch copy."""
    return exc.filename is not None and Path(str(exc.filename)) == path


@contextmanager
def _payload(path: Path, manifest: Mapping[str, Any], folder: Path) -> Iterator[Path]:
    """The database file of a backup, extracted into `folder` and checked against the
    manifest's SHA-256 (VerificationFailed if it differs)."""
    name = str(manifest["payload"]["name"])
    if name not in (SQLITE_MEMBER, PG_MEMBER):
        raise VerificationFailed(f"{path}: unexpected database member {name!r}")
    target = folder / name
    try:
        with tarfile.open(path, "r") as tar:
            src = tar.extractfile(name)
            if src is None:
                raise KeyError(name)
            with target.open("wb") as fh:
                shutil.copyfileobj(src, fh, 1 << 20)
    except OSError as exc:
        if exc.errno in _NO_ROOM and not _reading(exc, path):
            # the scratch copy's disk, not the backup: a good backup is not called damaged
            raise OutputFailed(
                str(folder),
                f"{exc.strerror}: no room to check the backup's database file",
                f"{path} was not judged: free space there (`backup verify` unpacks into "
                "TMPDIR, `backup restore` beside the database it restores)",
            ) from None
        raise VerificationFailed(f"{path}: the database file cannot be read: {exc}") from None
    except (tarfile.TarError, KeyError) as exc:
        raise VerificationFailed(f"{path}: the database file cannot be read: {exc}") from None
    digest = _sha256(target)
    if digest != manifest["payload"]["sha256"]:
        raise VerificationFailed(
            f"{path}: the database file's SHA-256 {digest} is not the manifest's "
            f"{manifest['payload']['sha256']}: the backup is damaged or was altered; "
            "nothing was restored"
        )
    yield target


def verify_file(path: Path) -> dict[str, Any]:
    """Check a backup file offline: manifest readable, database file intact (SHA-256)."""
    manifest = read_manifest(path)
    with (
        tempfile.TemporaryDirectory(prefix=".tieout-verify-") as tmp,
        _payload(path, manifest, Path(tmp)),
    ):
        pass
    return manifest


# ---- restore ------------------------------------------------------------------------------------


def compare(manifest: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """What a restored book's facts get wrong against the manifest (pure)."""
    problems = []
    if found["schema_revision"] != manifest["schema_revision"]:
        problems.append(
            f"schema revision {found['schema_revision']}, the backup has "
            f"{manifest['schema_revision']}"
        )
    want, got = manifest["tables"], found["tables"]
    for name in sorted(set(want) | set(got)):
        if want.get(name) != got.get(name):
            problems.append(f"table {name}: {got.get(name)} rows, the backup has {want.get(name)}")
    a, b = manifest["audit"], found["audit"]
    if not b["ok"]:
        problems.append("the restored audit chain does not verify")
    if (a.get("events"), a.get("head")) != (b["events"], b["head"]):
        problems.append(
            f"audit chain: {b['events']} events with head {b['head']}, the backup has "
            f"{a.get('events')} with head {a.get('head')}"
        )
    return problems


@dataclass(frozen=True, slots=True)
class RestoreReport:
    backup: Path
    database: str
    manifest: dict[str, Any]
    found: dict[str, Any]
    problems: tuple[str, ...]
    code_head: str | None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.backup),
            "database": self.database,
            "verified": self.ok,
            "schema_revision": self.found.get("schema_revision"),
            "schema_current": self.found.get("schema_revision") == self.code_head,
            "tables": self.found.get("tables"),
            "audit": self.found.get("audit"),
            "problems": list(self.problems),
        }


def _facts_of(url: str) -> tuple[dict[str, Any], str | None]:
    store = Store.open(url, check_schema=False)
    try:
        with store.read() as conn:
            facts = book_facts(conn)
            _, head = schema_revisions(conn)
            return facts, head
    finally:
        store.dispose()


def _restore_sqlite(path: Path, manifest: Mapping[str, Any], url: str) -> RestoreReport:
    parsed = make_url(url)
    db = parsed.database
    if not db or db == ":memory:":
        raise BadInput("--db", "restore into a SQLite file: sqlite:///PATH")
    target = Path(db)
    if target.exists() and target.stat().st_size > 0:
        raise Refused(
            f"restore into {target}",
            "the file exists already: restore into a new file (move the old one away first)",
            "exists",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=target.parent, prefix=".tieout-restore-") as tmp,
        _payload(path, manifest, Path(tmp)) as staged,
    ):
        facts, head = _facts_of(f"sqlite:///{staged}")
        problems = tuple(compare(manifest, facts))
        if not problems:
            for suffix in ("-wal", "-shm"):
                Path(f"{staged}{suffix}").unlink(missing_ok=True)
            os.replace(staged, target)
    shown = parsed.render_as_string(hide_password=True)
    return RestoreReport(path, shown, dict(manifest), facts, problems, head)


def _pg_schema_state(store: Store, schema: str) -> tuple[bool, int]:
    """(schema exists, relations and functions in it)."""
    with store.read() as conn:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM pg_namespace WHERE nspname = %(s)s", {"s": schema}
        ).first()
        objects = conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %(s)s) + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n"
            " ON n.oid = p.pronamespace WHERE n.nspname = %(s)s)",
            {"s": schema},
        ).scalar()
    return exists is not None, int(objects or 0)


def _restore_pg(path: Path, manifest: Mapping[str, Any], url: str) -> RestoreReport:
    store = Store.open(url, check_schema=False)
    try:
        with store.read() as conn:
            schema = search_schema(conn)
        wanted = str(manifest.get("schema") or "public")
        if schema != wanted:
            raise BadInput(
                "--db",
                f"the backup holds schema {wanted!r} and pg_restore restores it under that name; "
                f"the URL's search_path points at {schema!r}",
            )
        exists, objects = _pg_schema_state(store, schema)
        if objects:
            raise Refused(
                f"restore into schema {schema!r}",
                f"it is not empty ({objects} relations or functions): restore into an empty "
                "database or drop the schema first",
                "exists",
            )
        conninfo, env = _libpq(store.engine.url)
    finally:
        store.dispose()
    with (
        tempfile.TemporaryDirectory(prefix=".tieout-restore-") as tmp,
        _payload(path, manifest, Path(tmp)) as dump,
    ):
        restore = pg_tool("pg_restore")
        cmd = [restore, "--single-transaction", "--exit-on-error", "--no-owner", "--no-password"]
        if exists:  # an empty schema is there already: restore everything but its creation
            listing = subprocess.run(
                [restore, "--list", str(dump)], capture_output=True, text=True, check=True
            ).stdout
            skip = re.compile(rf"^\d+; \d+ \d+ (SCHEMA|COMMENT) - (SCHEMA )?{re.escape(schema)} ")
            toc = Path(tmp) / "toc.list"
            toc.write_text(
                "".join(
                    (";" + line if skip.match(line) else line) + "\n"
                    for line in listing.splitlines()
                ),
                encoding="utf-8",
            )
            cmd.append(f"--use-list={toc}")
        _run([*cmd, f"--dbname={conninfo}", str(dump)], env, "pg_restore")
    try:
        facts, head = _facts_of(url)
        problems = tuple(compare(manifest, facts))
    except BaseException:  # restored, not verified: no command may use it
        _mark_unverified(url)
        raise
    if problems:  # left for inspection, but no command will work on it, `tieout init` neither
        _mark_unverified(url)
    shown = make_url(url).render_as_string(hide_password=True)
    return RestoreReport(path, shown, dict(manifest), facts, problems, head)


def _mark_unverified(url: str) -> None:
    store = Store.open(url, check_schema=False)
    try:
        with store.engine.begin() as conn:
            if inspect(conn).has_table("alembic_version"):
                conn.execute(
                    sql("UPDATE alembic_version SET version_num = version_num || :mark"),
                    {"mark": UNVERIFIED},
                )
            else:  # nothing says which revision it is: say it is an unverified restore
                conn.execute(sql("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
                conn.execute(
                    sql("INSERT INTO alembic_version VALUES (:mark)"), {"mark": "?" + UNVERIFIED}
                )
    finally:
        store.dispose()


def restore(path: Path, url: str, ctx: Ctx) -> RestoreReport:
    """Restore a backup into the (empty) database at `url` and verify it. Raises
    VerificationFailed when the file is damaged (before anything is written) or the restored
    book is not the one backed up; a verified restore is recorded in its audit trail."""
    manifest = read_manifest(path)
    backend = make_url(url).get_backend_name()
    if backend != manifest.get("backend"):
        raise BadInput(
            "--db", f"the backup is of a {manifest.get('backend')} database, not {backend}"
        )
    if backend == "sqlite":
        report = _restore_sqlite(path, manifest, url)
    else:
        report = _restore_pg(path, manifest, url)
    if report.ok:
        store = Store.open(url, check_schema=False)
        try:
            with store.write() as conn:
                audit.append(
                    conn,
                    at=ctx.now,
                    actor=ctx.actor,
                    action="backup.restore",
                    entity_type="database",
                    entity_id="restore",
                    payload={
                        "file": str(path.resolve()),
                        "sha256": manifest["payload"]["sha256"],
                        "backup_created_at": manifest["created_at"],
                        "schema_revision": manifest["schema_revision"],
                        "tables": manifest["tables"],
                    },
                )
        finally:
            store.dispose()
    return report


def describe_failure(report: RestoreReport) -> str:
    where = (
        "nothing was restored"
        if report.manifest.get("backend") == "sqlite"
        else "the restored schema is left for inspection, marked so that no command uses it"
    )
    return f"restore of {report.backup} did not verify ({where}): " + "; ".join(report.problems)
