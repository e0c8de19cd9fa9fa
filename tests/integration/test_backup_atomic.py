"""`backup create` writes its file and its audit event together (both backends): the file is
packed under a partial name and takes its own inside the transaction that records it. A
`backup create` killed after its rename used to leave a complete backup with no
`backup.create` event, and an empty temporary folder beside it (found by an interruption
audit). Here the commit fails after the rename: no backup file, no event, nothing left
beside it; an ordinary run leaves the file and its event and nothing else."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from oms import backup
from oms.book import Ctx
from oms.schema import audit_events
from oms.store import Store

NOW = datetime(2026, 11, 25, 15, tzinfo=UTC)


def _events(store: Store) -> list[str]:
    with store.read() as conn:
        q = sa.select(audit_events.c.action).where(audit_events.c.action == "backup.create")
        return list(conn.execute(q).scalars())


def test_a_backup_file_is_never_left_without_its_event(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "backups"
    out = folder / "book.tar"
    real = backup.fsync_path

    def fail_after_the_rename(path: Path) -> None:
        real(path)
        if path == out.parent and out.exists():  # renamed: the commit is next
            raise OSError("disk gone")

    with monkeypatch.context() as m:
        m.setattr(backup, "fsync_path", fail_after_the_rename)
        with pytest.raises(OSError, match="disk gone"):
            backup.create(store, Ctx("ops", NOW), out)
    assert list(folder.iterdir()) == []  # no backup, no partial file, no temporary folder
    assert _events(store) == []
    assert backup.create(store, Ctx("ops", NOW), out).path == out
    assert [p.name for p in folder.iterdir()] == ["book.tar"]
    assert _events(store) == ["backup.create"]
    # a name near the file system's limit (255 bytes) works as it did: the partial file's
    # name is its own, not the target's with a suffix (which failed with a traceback)
    long = folder / ("b" * 240 + ".tar")
    assert backup.create(store, Ctx("ops", NOW), long).path == long
    assert sorted(p.name for p in folder.iterdir()) == sorted(["book.tar", long.name])


def test_a_backup_that_fails_to_commit_gives_the_earlier_backup_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Yesterday's backup at the same path was deleted when today's commit failed after the
    rename (the book's disk full): the rename had put today's file in its place, and the
    failure removed that. The earlier backup is back, byte for byte, and nothing else is left
    beside it."""
    folder = tmp_path / "backups"
    out = folder / "nightly.tar"
    backup.create(store, Ctx("ops", NOW), out)
    before = out.read_bytes()
    real = backup.fsync_path

    def fail_after_the_rename(path: Path) -> None:
        real(path)
        if path == out.parent:  # renamed: the commit is next
            raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(backup, "fsync_path", fail_after_the_rename)
        with pytest.raises(OSError, match="disk full"):
            backup.create(store, Ctx("ops", NOW), out)
    assert out.read_bytes() == before
    assert [p.name for p in folder.iterdir()] == ["nightly.tar"]
    assert _events(store) == ["backup.create"]
    backup.verify_file(out)


def test_no_room_to_check_a_backup_is_not_a_damaged_backup(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`backup verify` with TMPDIR full said exit 7, "the database file cannot be read": a
    good backup condemned by a restore drill. It is the scratch disk's failure (exit 1)."""
    import errno

    from oms.errors import OutputFailed, VerificationFailed

    out = tmp_path / "b.tar"
    backup.create(store, Ctx("ops", NOW), out)

    def no_room(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(backup.shutil, "copyfileobj", no_room)
        with pytest.raises(OutputFailed, match="was not judged") as caught:
            backup.verify_file(out)
    assert not isinstance(caught.value, VerificationFailed) and caught.value.exit_code == 1
    backup.verify_file(out)


def test_a_full_disk_while_packing_is_said_plainly(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Room for the snapshot but not for the tar file: a traceback (ENOSPC from tarfile). It
    is exit 1 naming the backup file, and nothing is left beside it."""
    import errno
    import tarfile

    from oms.errors import OutputFailed

    def no_room(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "backups" / "b.tar"
    with monkeypatch.context() as m:
        m.setattr(tarfile.TarFile, "add", no_room)
        with pytest.raises(OutputFailed, match=r"b\.tar: cannot be written: No space left"):
            backup.create(store, Ctx("ops", NOW), out)
    assert list(out.parent.iterdir()) == []
    assert _events(store) == []
