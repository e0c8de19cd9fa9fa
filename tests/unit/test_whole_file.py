"""reports.documents.whole_file, the writer of every document and export: a file written
whole or not at all, also when the disk fills up (an audit of the files tieout writes under
failure: a full disk gave a traceback; a pipe or device at the path was replaced by a file)."""

import errno
import os
from pathlib import Path

import pytest

from oms.errors import BadInput, OutputFailed
from reports.documents import whole_file, write_file


def test_a_full_disk_is_said_plainly_and_leaves_the_earlier_file(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    write_file(path, b"yesterday\n")

    def today() -> None:
        with whole_file(path) as fh:
            fh.write(b"half of today")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputFailed) as caught:
        today()
    assert caught.value.exit_code == 1
    assert caught.value.message == (
        f"{path}: cannot be written: No space left on device; nothing was written there (a "
        "file already there is as it was)"
    )
    assert path.read_bytes() == b"yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["trades.csv"]  # no temporary file left


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
