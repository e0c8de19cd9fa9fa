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


def slow_writer(folder: str, n: int) -> list[Outcome]:
    """A chunk of ten documents, written one by one, slowly."""
    from reports.documents import write_file

    for i in range(10):
        write_file(Path(folder) / f"{n}-{i}.txt", b"a document")
        time.sleep(0.3)
    return []


def stubborn_writer(folder: str, n: int) -> list[Outcome]:
    """A chunk of forty documents whose worker takes no notice of an interrupt (as when Python
    swallows one that came inside a garbage collector's callback)."""
    from reports.documents import write_file

    i = 0
    while i < 40:
        try:
            write_file(Path(folder) / f"{n}-{i}.txt", b"a document")
            time.sleep(0.3)
            i += 1
        except KeyboardInterrupt:
            continue
    return []


_TERMINATED = """
import signal, sys
from cli.main import _note_ctrl_c
from reports.batch import Pool
from tests.integration import test_worker_processes as here
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, _note_ctrl_c)  # as the command line sets it
fn = getattr(here, sys.argv[2])
try:
    with Pool(fn, [(sys.argv[1], n) for n in range(8)], workers=2) as pool:
        list(pool)
except KeyboardInterrupt:
    sys.exit(143)
"""


def test_sigterm_to_the_command_alone_stops_its_workers_mid_chunk(tmp_path: Path) -> None:
    """SIGTERM to a report batch's own process (`kill PID`, `timeout`), not to its process
    group: its workers stop with their chunk in flight, leaving no half-written document. They
    used to write the rest of their chunks (some 50 statements) after the command was stopped
    (a re-review)."""
    written = _terminated_batch(tmp_path, "slow_writer")
    assert all(name.endswith(".txt") for name in written), written  # no temporary file
    assert len(written) < 10, written  # neither worker went on to finish its chunk of ten


def _terminated_batch(folder: Path, fn: str) -> list[str]:
    """A batch of `fn` chunks in a process of its own, sent SIGTERM once the first document
    is written: the names in `folder` once it has ended (exit 143)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _TERMINATED, str(folder), fn],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while not list(folder.glob("*.txt")):
            assert parent.poll() is None, "the batch ended before its workers began"
            assert time.monotonic() < deadline, "the workers never began"
            time.sleep(0.05)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 143
    finally:
        if parent.poll() is None:
            parent.kill()
    return sorted(p.name for p in folder.iterdir())


def test_a_worker_that_misses_the_interrupt_is_ended_after_a_grace_time(tmp_path: Path) -> None:
    """A worker whose interrupt Python swallowed went on writing its chunks after the command
    had stopped (a re-review): it gets SIGTERM once the grace time (5 s) is over."""
    written = _terminated_batch(tmp_path, "stubborn_writer")
    assert len([n for n in written if n.endswith(".txt")]) < 40, written  # not a whole chunk


def test_a_worker_that_ends_alone_fails_the_batch_with_a_message(tmp_path: Path) -> None:
    """A worker killed on its own (out of memory, a signal to it alone) ends the batch with
    tieout's error (exit 1, what was written stays), not a BrokenProcessPool traceback."""
    import threading

    import pytest

    from oms.errors import WorkerEnded
    from reports.batch import Pool

    def kill_a_worker(pool: Pool) -> None:
        while not list(tmp_path.glob("*.txt")):
            time.sleep(0.05)
        assert pool._pool is not None
        os.kill(next(iter(pool._pool._processes)), signal.SIGKILL)

    with Pool(slow_writer, [(str(tmp_path), n) for n in range(4)], workers=2) as pool:
        killer = threading.Thread(target=kill_a_worker, args=(pool,), daemon=True)
        killer.start()
        with pytest.raises(WorkerEnded, match="a worker process ended before its work was"):
            list(pool)
    killer.join(timeout=60)
