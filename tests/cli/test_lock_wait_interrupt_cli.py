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


def test_a_command_waiting_for_the_book_lock_stops_at_ctrl_c(tieout: Tieout) -> None:
    tieout.ok("account", "open", "A1", "--currency", "USD", "--type", "cash")
    env = {**os.environ, "TIEOUT_ACTOR": "ops", "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("TIEOUT_DB", None)
    store = Store.open(tieout.db_url)
    try:
        with store.write():  # another writer holds the book lock
            proc = subprocess.Popen(
                [sys.executable, "-c", "from cli.main import run; run()", "cash", "deposit",
                 "A1", "100", "--db", tieout.db_url],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(4)  # started (about 1 s) and waiting for the lock
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=20)  # not the minute of the busy timeout
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("Ctrl-C did not stop a command waiting for the lock") from None
    finally:
        store.dispose()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert tieout.ok("cash", "balance", "A1", "--json").json()["balance"] == "0"
