"""`order submit --file` and `exec apply` show their progress on a terminal (stderr a tty):
how many of the file's orders committed, how many messages were applied (or skipped or
refused); nothing of it when stderr is not a terminal (cron, scripts), where the output stays
what it was."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_order_cli import report
from tests.conftest import Tieout, write

TIEOUT = Path(sys.executable).parent / "tieout"


def _orders(tmp_path: Path, n: int) -> str:
    rows = "".join(f"A1,COIN,buy,{i + 1},limit,50,gtc,P{i}\n" for i in range(n))  # not repeats
    return write(
        tmp_path / "orders.csv", "account,symbol,side,qty,type,limit,tif,client_order_id\n" + rows
    )


def _on_a_terminal(*args: str) -> tuple[int, bytes, str]:
    """Run the installed `tieout` with stderr on a pseudo-terminal: exit code, what the
    terminal showed, stdout."""
    main, tty = pty.openpty()
    env = {**os.environ, "TIEOUT_ACTOR": "tester", "COLUMNS": "100", "TERM": "xterm"}
    env.pop("TIEOUT_NOW", None)
    try:
        done = subprocess.run(
            [str(TIEOUT), *args], stdout=subprocess.PIPE, stderr=tty, env=env, timeout=120,
            check=False,
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
    return done.returncode, shown, done.stdout.decode()


def _book(t: Tieout) -> None:
    t.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    t.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "A1", "100000")


@pytest.mark.skipif(not TIEOUT.exists(), reason="the package is not installed in this venv")
def test_an_order_file_shows_its_progress_on_a_terminal(tieout: Tieout, tmp_path: Path) -> None:
    _book(tieout)
    path = _orders(tmp_path, 25)
    code, shown, out = _on_a_terminal("order", "submit", "--file", path, "--db", tieout.db_url)
    assert code == 0, shown
    assert b"orders.csv: committed" in shown and b"25/25" in shown, shown
    assert out.startswith(f"{path}: 25 orders, 25 accepted")


@pytest.mark.skipif(not TIEOUT.exists(), reason="the package is not installed in this venv")
def test_a_drop_copy_shows_its_progress_on_a_terminal(tieout: Tieout, tmp_path: Path) -> None:
    _book(tieout)
    for i in range(3):
        tieout.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                  "--qty", str(i + 1), "--type", "limit", "--limit", "50", "--tif", "gtc",
                  "--venue", "ACME", "--client-order-id", f"X{i}")  # fmt: skip
    lines = [report(f"X{i}", f"E{i}", "0") for i in range(3)]
    lines.append(report("NOPE", "E9", "0"))  # no such order: refused, still counted
    drop = write(tmp_path / "drop.fix", "\n".join(lines) + "\n")
    code, shown, out = _on_a_terminal("exec", "apply", drop, "--db", tieout.db_url)
    assert code == 3, shown
    assert b"drop.fix: applied" in shown and b"4/4" in shown, shown
    assert out.startswith(f"{drop}: 4 messages, 3 applied")


def test_no_progress_where_stderr_is_not_a_terminal(tieout: Tieout, tmp_path: Path) -> None:
    _book(tieout)
    r = tieout("order", "submit", "--file", _orders(tmp_path, 3))
    assert r.code == 0, r.err
    assert "committed" not in r.err and "3/3" not in r.err
    tieout.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
              "--qty", "1", "--type", "limit", "--limit", "50", "--venue", "ACME",
              "--client-order-id", "X1")  # fmt: skip
    drop = write(tmp_path / "drop.fix", report("X1", "E1", "0") + "\n")
    r = tieout("exec", "apply", drop)
    assert r.code == 0, r.err
    assert "applied" not in r.err and "1/1" not in r.err
