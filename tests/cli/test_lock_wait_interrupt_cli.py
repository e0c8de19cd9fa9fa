"""Through the real command on both backends: a command waiting for the book lock stops at
Ctrl-C. On SQLite the wait was one busy-handler call of up to 60 s, in which Python never saw
the signal: Ctrl-C did nothing until another writer let go or the minute ran out."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from oms.store import Store
from tests.conftest import Tieout


def _interrupted_while_waiting(t: Tieout, *args: str, started: float = 4) -> str:
    """`tieout ARGS` run while another writer holds the book lock, sent SIGINT (to its own
    process only) once it waits: its stderr, once it ended with exit 130 (not the minute of
    SQLite's busy timeout later)."""
    env = {**os.environ, "TIEOUT_ACTOR": "ops", "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("TIEOUT_DB", None)
    store = Store.open(t.db_url)
    try:
        with store.write():  # another writer holds the book lock
            proc = subprocess.Popen(
                [sys.executable, "-c", "from cli.main import run; run()", *args, "--db", t.db_url],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(started)  # started (about 1 s) and waiting for the lock
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise AssertionError(f"Ctrl-C did not stop `tieout {args[0]}` waiting") from None
    finally:
        store.dispose()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err, err
    return err


def test_a_command_waiting_for_the_book_lock_stops_at_ctrl_c(tieout: Tieout) -> None:
    tieout.ok("account", "open", "A1", "--currency", "USD", "--type", "cash")
    _interrupted_while_waiting(tieout, "cash", "deposit", "A1", "100")
    assert tieout.ok("cash", "balance", "A1", "--json").json()["balance"] == "0"


def test_an_order_file_waiting_for_the_book_lock_stops_at_ctrl_c(
    tieout: Tieout, tmp_path: Path
) -> None:
    """A file of several groups is written by a writer of its own (on SQLite a forked process
    that ignored Ctrl-C, on PostgreSQL a thread): the command waited for the writer's group,
    and the writer for the lock, up to the minute, then committed the group after the signal."""
    tieout.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    tieout.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    tieout.ok("cash", "deposit", "A1", "10000000")
    rows = "".join(f"A1,COIN,buy,1,limit,{90 + i % 5},gtc\n" for i in range(2500))
    orders = tmp_path / "o.csv"
    orders.write_text("account,symbol,side,qty,type,limit,tif\n" + rows)
    # started, its first group decided and waiting for the lock
    _interrupted_while_waiting(tieout, "order", "submit", "--file", str(orders), started=5)
    assert tieout.ok("order", "list", "--json").json() == []  # the group waiting wrote nothing
    # a file of one group is written by the command itself: it held Ctrl-C over the group,
    # its wait for the lock too (the re-review: a 10-row file waited the minute out)
    small = tmp_path / "small.csv"
    small.write_text("account,symbol,side,qty,type,limit,tif\n" + rows[: rows.index("\n") + 1] * 10)
    _interrupted_while_waiting(tieout, "order", "submit", "--file", str(small))
    assert tieout.ok("order", "list", "--json").json() == []
