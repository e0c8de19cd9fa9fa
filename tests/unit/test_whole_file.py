"""reports.documents.whole_file, the writer of every document and export: a file written
whole or not at all, also when the disk fills up (an audit of the files tieout writes under
failure: a full disk gave a traceback; a pipe or device at the path was replaced by a file)."""

import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest

from oms.errors import BadInput, OutputFailed
from reports.documents import whole_file, write_file


class _FullDisk(io.BytesIO):
    """A file on a disk that fills up: a write (`on="write"`) or the last buffered bytes
    written on close (`on="close"`) fail with ENOSPC."""

    def __init__(self, on: str) -> None:
        super().__init__()
        self.on = on

    def write(self, data: Any) -> int:
        if self.on == "write":
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)

    def close(self) -> None:
        if self.on == "close" and not self.closed:
            super().close()
            raise OSError(errno.ENOSPC, "No space left on device")
        super().close()


@pytest.mark.parametrize("on", ["write", "close"])
def test_a_full_disk_is_said_plainly_and_leaves_the_earlier_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on: str
) -> None:
    path = tmp_path / "trades.csv"
    write_file(path, b"yesterday\n")
    real_fdopen = os.fdopen

    def fdopen(fd: int, mode: str) -> _FullDisk:
        real_fdopen(fd, mode).close()
        return _FullDisk(on)

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(OutputFailed) as caught, whole_file(path) as fh:
        fh.write(b"half of today")
    assert caught.value.exit_code == 1
    assert caught.value.message == (
        f"{path}: cannot be written: No space left on device; nothing was written there (a "
        "file already there is as it was)"
    )
    assert path.read_bytes() == b"yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["trades.csv"]  # no temporary file left


def test_an_oserror_of_the_input_is_not_said_as_the_output_failing(tmp_path: Path) -> None:
    """A block that fails reading its input (a missing file) raises that error, not "PATH
    cannot be written" of the file it was writing (a read error was said as a write error)."""
    path = tmp_path / "export.jsonl"
    write_file(path, b"yesterday\n")

    def export() -> None:
        with whole_file(path) as fh:
            fh.write(b"half of today")
            (tmp_path / "missing.csv").read_bytes()

    with pytest.raises(FileNotFoundError):
        export()
    assert path.read_bytes() == b"yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["export.jsonl"]


def test_a_pipe_or_a_device_at_the_path_is_refused_not_replaced(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(BadInput, match="is not a regular file"):
        write_file(pipe, b"rows\n")
    assert pipe.is_fifo()
    with pytest.raises(BadInput, match="is not a regular file"):
        write_file(Path("/dev/null"), b"rows\n")
    assert Path("/dev/null").is_char_device()
    # a symbolic link to a file is replaced by the file written (its target is left as it was)
    target = tmp_path / "target.csv"
    target.write_bytes(b"kept\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_file(link, b"new\n")
    assert (link.is_symlink(), link.read_bytes(), target.read_bytes()) == (
        False,
        b"new\n",
        b"kept\n",
    )
