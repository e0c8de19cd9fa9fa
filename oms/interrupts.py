"""Interrupts and ends of processes: Ctrl-C held back over the few steps that must not be cut
apart (a commit and what records that it happened: an order file's acknowledgement of a group;
an archive folder put in place and the transaction that records it), and child processes that
end with the process that made them."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def interrupts_held() -> Iterator[None]:
    """SIGINT held back for the block. SIGINT's Python handler (which runs in the main thread,
    whichever thread the signal reached: polars has a pool of its own) only notes it
    meanwhile; once the block ends the signal is raised again under the handler that was
    there. Nested blocks hand it outwards. Keep such a block short (a commit, a group of an
    order file). Outside the main thread, where no handler can be set (and no
    KeyboardInterrupt is raised), nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: came.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if came:
            signal.raise_signal(signal.SIGINT)


def die_with(parent: int) -> None:
    """In a forked child (an order file's writer, a worker of a report batch or of `audit
    verify`): be killed when the process that forked it dies (Linux: PR_SET_PDEATHSIG), or end
    now if it has died already. Without it a parent killed outright (SIGKILL) leaves its
    workers running on: writing documents after the command was stopped, then idle forever."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
