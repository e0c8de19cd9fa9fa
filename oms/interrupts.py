"""Interrupts and ends of processes: Ctrl-C and SIGTERM held back over the few steps that must
not be cut apart (a commit and what records that it happened: an order file's acknowledgement
of a group; an archive folder put in place and the transaction that records it), and child
processes that end with the process that made them."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_HELD = (signal.SIGINT, signal.SIGTERM)
# a command started by the scheduler: the pid of the scheduler, whose death ends it (cli.main)
DIE_WITH_ENV = "TIEOUT_DIE_WITH"


@contextmanager
def interrupts_held(on_signal: Callable[[int], None] | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM held back for the block. Their Python handlers (which run in the main
    thread, whichever thread the signal reached: polars has a pool of its own) only note them
    meanwhile; once the block ends each that came is raised again under the handler that was
    there (SIGTERM's default ends the process then, after the block rather than inside it).
    Nested blocks hand them outwards. Keep such a block short (a commit, a group of an order
    file). Outside the main thread, where no handler can be set (and no KeyboardInterrupt is
    raised), nothing is held. `on_signal`: called with each as it comes (to pass it on to
    what the block waits for)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def note(signum: int, _frame: object) -> None:
        came.append(signum)
        if on_signal is not None:
            on_signal(signum)

    previous = {sig: signal.signal(sig, note) for sig in _HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for signum in dict.fromkeys(came):  # each once, in the order they came
            signal.raise_signal(signum)


def die_with(parent: int, signum: int = signal.SIGKILL) -> None:
    """In a forked child (an order file's writer, a worker of a report batch or of `audit
    verify`): be killed when the process that forked it dies (Linux: PR_SET_PDEATHSIG), or end
    now if it has died already. Without it a parent killed outright (SIGKILL) leaves its
    workers running on: writing documents after the command was stopped, then idle forever.
    SIGTERM ends such a child where it stands, as by default (the command's own handler, which
    a fork inherits, turns it into the parent's orderly way out: the parent's to take).
    `signum`: what it gets when the parent dies (a scheduled job's command gets SIGTERM, and
    takes the command line's orderly way out; its SIGTERM handler is left as it is)."""
    if threading.current_thread() is threading.main_thread() and signum == signal.SIGKILL:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signum))
    if os.getppid() != parent:
        os._exit(1)


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether an error came of an interrupt: a KeyboardInterrupt (Ctrl-C, SIGTERM under the
    command line's handler) among the exceptions it was raised in handling. psycopg cancels the
    query in flight when one lands, and the rollback that follows fails ("another command is
    already in progress"): a database error to the caller, an interrupt in truth."""
    seen: set[int] = set()
    at: BaseException | None = exc
    while at is not None and id(at) not in seen:
        if isinstance(at, KeyboardInterrupt):
            return True
        seen.add(id(at))
        at = at.__cause__ or at.__context__
    return False
