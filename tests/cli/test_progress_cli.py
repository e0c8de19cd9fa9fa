"""`order submit --file` shows its progress on a terminal (stderr a tty): how many orders
committed of the file's; nothing of it when stderr is not a terminal (cron, scripts), where
the output stays what it was."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Tieout, write

TIEOUT = Path(sys.executable).parent / "tieout"


def _orders(tmp_path: Path, n: int) -> str:
    rows = "".join(f"A1,COIN,buy,{i + 1},limit,50,gtc,P{i}\n" for i in range(n))  # not repeats
    return write(
        tmp_path / "orders.csv", "account,symbol,side,qty,type,limit,tif,client_order_id\n" + rows
    )


def _book(t: Tieout) -> None:
    t.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    t.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "A1", "100000")


@pytest.mark.skipif(not TIEOUT.exists(), reason="the package is not installed in this venv")
def test_an_order_file_shows_its_progress_on_a_terminal(tieout: Tieout, tmp_path: Path) -> None:
    _book(tieout)
    path = _orders(tmp_path, 25)
    main, tty = pty.openpty()
    env = {**os.environ, "TIEOUT_ACTOR": "tester", "COLUMNS": "100", "TERM": "xterm"}
    env.pop("TIEOUT_NOW", None)
    try:
        done = subprocess.run(
            [str(TIEOUT), "order", "submit", "--file", path, "--db", tieout.db_url],
            stdout=subprocess.PIPE, stderr=tty, env=env, timeout=120, check=False,
        )  # fmt: skip
        os.close(tty)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert done.returncode == 0, shown
    assert b"orders.csv: committed" in shown and b"25/25" in shown, shown
    assert done.stdout.decode().startswith(f"{path}: 25 orders, 25 accepted")


def test_no_progress_where_stderr_is_not_a_terminal(tieout: Tieout, tmp_path: Path) -> None:
    _book(tieout)
    r = tieout("order", "submit", "--file", _orders(tmp_path, 3))
    assert r.code == 0, r.err
    assert "committed" not in r.err and "3/3" not in r.err
