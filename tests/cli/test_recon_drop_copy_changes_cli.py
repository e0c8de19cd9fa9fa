"""`recon run` of a FIX drop copy through the real command on both backends: the venue's bust
and correction change its side as the book's own changed (a drop copy busting X1 and
correcting X3 reconciled as if neither had come), and what the reader passed over is in the
run's JSON (`skipped`: it was reported nowhere)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Tieout, write
from tests.unit.test_recon_loaders import fix_line

DAY = "2026-03-11"
EXECS = "exec_id,account,symbol,side,quantity,price,trade_date,venue\n"


def _fill(exec_id: str, qty: str, kind: str = "F", ref: str | None = None) -> str:
    refs = () if ref is None else ((19, ref),)
    return fix_line((35, "8"), (150, kind), (17, exec_id), *refs, (1, "A1"), (55, "AAPL"),
                    (54, "1"), (32, qty), (31, "100"), (75, DAY.replace("-", "")))  # fmt: skip


def test_a_drop_copy_s_bust_and_correction_reconcile_with_the_book(
    tieout: Tieout, tmp_path: Path
) -> None:
    t = tieout.at(f"{DAY}T22:00:00Z")
    t.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    t.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    # the book as the venue left it: X1 busted, X3 corrected to 12
    t.ok("exec", "import", write(tmp_path / "e.csv", EXECS
         + f"X2,A1,AAPL,buy,7,100,{DAY},ACME\nX3,A1,AAPL,buy,12,100,{DAY},ACME\n"))  # fmt: skip
    profile = write(tmp_path / "p.toml", 'name = "acme-fix"\nvenue = "ACME"\nkind = "trades"\n'
                    'format = "fix"\n')  # fmt: skip
    drop = [
        _fill("X1", "5"),
        _fill("X2", "7"),
        _fill("X3", "10"),
        fix_line((35, "8"), (150, "H"), (17, "B1"), (19, "X1")),
        _fill("C3", "12", "G", "X3"),
        fix_line((35, "0")),  # a heartbeat
    ]
    doc = t.ok("recon", "run", "--profile", profile, "--date", DAY, "--file",
               write(tmp_path / "d.fix", "\n".join(drop) + "\n"), "--json").json()  # fmt: skip
    assert (doc["breaks"], doc["matched"], doc["quarantined_rows"]) == ({}, 2, 0)
    assert doc["skipped"] == {
        "ExecType H (bust)": 1,
        "MsgType 0": 1,
        "fill replaced by a later ExecType G in the file": 1,
        "fill replaced by a later ExecType H in the file": 1,
    }
