"""Worker processes never outlive the command that forked them: a report batch's workers (and
`audit verify`'s, and an order file's writer) are killed with their parent. A `report
confirmations` killed with SIGKILL used to leave its workers running on, still writing
documents into the folder, then idle forever (found by an interruption audit)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reports.batch import Outcome

ROOT = Path(__file__).resolve().parents[2]


def sleeper(folder: str, n: int) -> list[Outcome]:
    """A chunk's work that takes long: says who runs it, then sleeps."""
    (Path(folder) / f"{n}.pid").write_text(str(os.getpid()))
    time.sleep(120)
    return []


_CHILD = """
import sys
from reports.batch import Pool
from tests.integration.test_worker_processes import sleeper
with Pool(sleeper, [(sys.argv[1], 1), (sys.argv[1], 2)], workers=2) as pool:
    list(pool)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (ended, not yet reaped by its new parent) counts as ended
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def test_a_report_batch_s_workers_die_with_the_command(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.pid"))) < 2:
            assert parent.poll() is None, "the batch ended before its workers began"
            assert time.monotonic() < deadline, "the workers never began"
            time.sleep(0.05)
        workers = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
        assert all(_alive(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, f"workers {workers} outlived their parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
        for p in tmp_path.glob("*.pid"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(p.read_text()), signal.SIGKILL)
