"""Many documents at once on every core: statements of every account, the confirmations of a
day. Work is cut into chunks; each worker process opens the database itself and renders its
chunk in one read transaction. Results come back as they finish (the caller shows progress).

A document that fails is reported with its reason; the others are still written.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from oms.errors import TieoutError, WorkerEnded
from oms.interrupts import die_with
from oms.store import Store
from oms.values import CostMethod
from reports import documents, sources
from reports.confirmations import build_confirmation
from reports.documents import Written
from reports.exceptions import build_exceptions
from reports.firm import load_firm
from reports.statement import build_statement


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str  # the account, or the confirmation's number
    written: Written | None
    error: str | None = None


def _failed(key: str, exc: Exception) -> Outcome:
    why = exc.message if isinstance(exc, TieoutError) else f"{type(exc).__name__}: {exc}"
    return Outcome(key, None, why)


def statements_chunk(
    url: str,
    accounts: Sequence[str],
    period_from: date,
    period_to: date,
    fmt: str,
    out_dir: str,
    now: datetime,
    method: str,
) -> list[Outcome]:
    store = Store.open(url, check_schema=False)
    out: list[Outcome] = []
    try:
        with store.read() as conn:
            firm = load_firm(conn)
            for account in accounts:
                try:
                    inp = sources.statement_input(
                        conn, account, period_from, period_to, now,
                        method=CostMethod(method), firm=firm,
                    )  # fmt: skip
                    s = build_statement(inp)
                    data, pages = documents.encode_statement(s, fmt)
                    name = documents.statement_file(
                        account, period_from.isoformat(), period_to.isoformat(), fmt
                    )
                    out.append(
                        Outcome(account, documents.save(Path(out_dir) / name, fmt, data, pages))
                    )
                except Exception as exc:  # reported per document, the others go on
                    out.append(_failed(account, exc))
    finally:
        store.dispose()
    return out


def confirmations_chunk(
    url: str, trade_date: date, ids: Sequence[int], fmt: str, out_dir: str, now: datetime
) -> list[Outcome]:
    store = Store.open(url, check_schema=False)
    out: list[Outcome] = []
    wanted = set(ids)
    try:
        with store.read() as conn:
            inputs = [
                i for i in sources.confirmation_inputs(conn, trade_date, now)
                if i.execution.id in wanted
            ]  # fmt: skip
        for inp in inputs:
            c = build_confirmation(inp)
            try:
                data, pages = documents.encode_confirmation(c, fmt)
                path = Path(out_dir) / f"{c.file_name}.{fmt}"
                out.append(Outcome(c.number, documents.save(path, fmt, data, pages)))
            except Exception as exc:  # reported per document, the others go on
                out.append(_failed(c.number, exc))
    finally:
        store.dispose()
    return out


def chunks(items: Sequence[Any], workers: int, *, max_size: int = 25) -> list[list[Any]]:
    """Chunks small enough to balance the workers and show progress, large enough to share
    a connection and a transaction."""
    if not items:
        return []
    size = max(1, min(max_size, -(-len(items) // (workers * 4))))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def default_workers() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


_GRACE_S = 5.0  # for a worker to end its chunk once interrupted


def _signal(pids: Iterable[int | None], sig: signal.Signals) -> None:
    for pid in pids:
        if pid is not None:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)


def _chunk(fn: Callable[..., list[Outcome]], *args: Any) -> list[Outcome]:
    """A worker's chunk. Interrupted (Ctrl-C reaches the whole process group; the pool passes
    on one that reached the command alone), the worker ends once the interrupt has unwound
    the chunk (a document half-written is removed on the way), rather than go on to the
    chunks queued for it after the command was stopped."""
    try:
        return fn(*args)
    except KeyboardInterrupt:
        os._exit(130)


class Pool:
    """Runs `fn(*args)` for each chunk's args, in worker processes when workers > 1, and yields
    each outcome as its chunk finishes. Workers are forked when the pool is entered: enter it
    before starting any thread (a progress display)."""

    def __init__(
        self,
        fn: Callable[..., list[Outcome]],
        tasks: Sequence[tuple[Any, ...]],
        workers: int,
        warm: Callable[[], None] | None = None,
    ) -> None:
        self.fn, self.tasks = fn, list(tasks)
        self.workers = max(1, min(workers, len(self.tasks)))
        self.warm = warm
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[list[Outcome]]] = []

    def __enter__(self) -> Pool:
        if self.warm is not None:
            self.warm()  # imported once here, shared by the forked workers
        if self.workers > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context(method),
                initializer=die_with,  # a worker never outlives the command
                initargs=(os.getpid(),),
            )
            self._futures = [self._pool.submit(_chunk, self.fn, *args) for args in self.tasks]
        return self

    def __iter__(self) -> Iterator[Outcome]:
        if self._pool is None:
            for args in self.tasks:
                yield from self.fn(*args)
            return
        for future in as_completed(self._futures):
            try:
                done = future.result()
            except BrokenProcessPool:
                raise WorkerEnded("the batch") from None
            yield from done

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is None:
            return
        if exc_type is not None and not issubclass(exc_type, Exception):
            # interrupted (Ctrl-C, SIGTERM: KeyboardInterrupt here): the workers end the same
            # way (_chunk: a document half-written is removed), instead of writing the rest of
            # their chunks after the command was stopped. A signal to this process alone
            # (`kill PID`, `timeout`) does not reach them otherwise.
            # A worker whose interrupt Python swallowed (it came inside a garbage collector's
            # callback) gets SIGTERM after a grace time: it ends at once (its default there).
            # (The pool gives no public handle on its processes.)
            pids: dict[Any, int | None] = {
                p.sentinel: p.pid for p in self._pool._processes.values()
            }
            _signal(pids.values(), signal.SIGINT)
            deadline = time.monotonic() + _GRACE_S
            while pids and (left := deadline - time.monotonic()) > 0:
                for ended in multiprocessing.connection.wait(list(pids), left):
                    pids.pop(ended)
            _signal(pids.values(), signal.SIGTERM)
        self._pool.shutdown(wait=True, cancel_futures=True)


def warm_pdf() -> None:
    """Import WeasyPrint and load the templates before forking (each worker would otherwise
    pay for it)."""
    from reports import render

    render.weasyprint()
    import pypdf  # noqa: F401 (a long statement's PDF is rendered in parts and joined by pypdf)

    for template in ("statement.html", "confirmation.html", "page_numbers.html"):
        render.environment().get_template(template)


def warm_html() -> None:
    from reports import render

    render.environment().get_template("statement.html")
    render.environment().get_template("confirmation.html")


def day_documents(
    store: Store,
    period_from: date,
    period_to: date,
    business_date: date,
    out_dir: Path,
    now: datetime,
    formats: Sequence[str] = ("html", "pdf"),
) -> list[Written]:
    """Every account's statement for a period and the exception report of a business date,
    in each format, one process (what `tieout demo` writes next to its database)."""
    written = []
    with store.read() as conn:
        firm = load_firm(conn)
        statements = [
            build_statement(
                sources.statement_input(conn, account, period_from, period_to, now, firm=firm)
            )
            for account in sources.account_ids(conn)
        ]
        report = build_exceptions(sources.exception_input(conn, business_date, now))
    for fmt in formats:
        for s in statements:
            name = documents.statement_file(
                s.account.account, period_from.isoformat(), period_to.isoformat(), fmt
            )
            data, pages = documents.encode_statement(s, fmt)
            written.append(documents.save(out_dir / name, fmt, data, pages))
        data, pages = documents.encode_exceptions(report, fmt)
        name = f"exceptions-{business_date.isoformat()}.{fmt}"
        written.append(documents.save(out_dir / name, fmt, data, pages))
    return written
