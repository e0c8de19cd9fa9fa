"""`audit export` and `audit verify --file` at their edges: an export is whole or nothing, in
a folder it makes, never a directory, of a range whose start is not after its end; a file
cut in the middle of a line, or with a line that is no event, fails verification (exit 7,
with the JSON document), and the first and last seq of an export are shown, for the reader
to compare with the book's (a file cut at either end is still a chain)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_book_cli import setup_book
from tests.conftest import Tieout, run_tieout


def _export(t: Tieout, out: Path, start: str = "2000-01-01", end: str = "2100-01-01") -> Path:
    t.ok("audit", "export", "--from", start, "--to", end, "--out", str(out))
    return out


def _verify(path: Path) -> tuple[int, dict[str, object]]:
    r = run_tieout("audit", "verify", "--file", str(path), "--json")
    return r.code, json.loads(r.out)


def test_an_export_names_its_ends_and_a_broken_line_fails(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    out = _export(tieout, tmp_path / "a.jsonl")
    code, doc = _verify(out)
    assert code == 0 and doc["ok"] is True
    assert (doc["first_seq"], doc["last_seq"], doc["events"]) == (1, 5, 5)
    lines = out.read_text().splitlines()
    head_cut = tmp_path / "head.jsonl"
    head_cut.write_text("\n".join(lines[1:]) + "\n")
    code, doc = _verify(head_cut)  # still a chain: the first seq says where it starts
    assert code == 0 and (doc["first_seq"], doc["last_seq"]) == (2, 5)
    text = run_tieout("audit", "verify", "--file", str(head_cut))
    assert "seq 2 to 5" in text.out and "compare" in text.out

    for name, broken in (
        ("truncated", "\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2] + "\n"),
        ("seq as text", "\n".join([*lines[:2], lines[2].replace('"seq": 3', '"seq": "3"')])),
        ("seq as float", "\n".join([*lines[:2], lines[2].replace('"seq": 3', '"seq": 3.0')])),
    ):
        path = tmp_path / f"{name.replace(' ', '_')}.jsonl"
        path.write_text(broken)
        r = run_tieout("audit", "verify", "--file", str(path), "--json")
        assert r.code == 7, (name, r.err)
        doc = json.loads(r.out)
        assert doc["ok"] is False and isinstance(doc["first_bad_seq"], int), (name, doc)
        assert "is not an audit event" in r.err, (name, r.err)
    assert (
        json.loads(
            run_tieout("audit", "verify", "--file", str(tmp_path / "truncated.jsonl"), "--json").out
        )["first_bad_seq"]
        == 5
    )
    first_bad = tmp_path / "first.jsonl"
    first_bad.write_text("{not json\n" + "\n".join(lines[1:]) + "\n")
    r = run_tieout("audit", "verify", "--file", str(first_bad))
    assert r.code == 7 and "None" not in r.err and "line 1 is not an audit event" in r.err, r.err


def test_an_export_is_whole_in_a_folder_it_makes(tieout: Tieout, tmp_path: Path) -> None:
    setup_book(tieout)
    nested = _export(tieout, tmp_path / "new" / "folder" / "a.jsonl")
    code, doc = _verify(nested)
    assert (code, doc["events"]) == (0, 5)
    r = tieout("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out",
               str(tmp_path))  # fmt: skip
    assert r.code == 3 and "is a directory" in r.err and "Traceback" not in r.err
    back = tieout("audit", "export", "--from", "2026-03-05", "--to", "2026-03-01", "--out",
                  str(tmp_path / "b.jsonl"))  # fmt: skip
    assert back.code == 3 and "is after --to" in back.err
    assert not (tmp_path / "b.jsonl").exists()
    # no half-written file left (book.db is the SQLite book's)
    assert sorted(p.name for p in tmp_path.iterdir()) in (["new"], ["book.db", "new"])


def test_an_export_that_fails_part_way_leaves_no_file(
    tieout: Tieout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up at the fourth event written: exit 1, said as the file that cannot be
    written, and the earlier export is left as it was."""
    import errno
    import os

    setup_book(tieout)
    out = tmp_path / "a.jsonl"
    out.write_text("the export of yesterday\n")
    real_fdopen = os.fdopen

    class FillsUp:
        def __init__(self, fh: Any) -> None:
            self.fh, self.writes = fh, 0

        def write(self, data: bytes) -> int:
            self.writes += 1
            if self.writes == 4:
                raise OSError(errno.ENOSPC, "No space left on device")
            return int(self.fh.write(data))

        def close(self) -> None:
            self.fh.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FillsUp(real_fdopen(fd, mode)))
    r = tieout("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    assert r.code == 1, r.err
    assert f"{out}: cannot be written: No space left on device" in r.err, r.err
    assert out.read_text() == "the export of yesterday\n"  # not replaced by a part of one
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".a.jsonl")] == []
