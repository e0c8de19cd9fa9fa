"""Shared by the benchmark scripts: fresh databases on both backends and the machine's facts."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from oms import book
from oms.book import Ctx
from oms.refdata import make_account, make_instrument
from oms.store import Store

PG_ADMIN = os.environ.get("TIEOUT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def peak_rss_mb() -> float:  # float ok: a memory figure
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def fresh_store(backend: str) -> Iterator[Store]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            store = Store.open(f"sqlite:///{d}/bench.db", check_schema=False)
            store.init()
            yield store
            store.dispose()
        return
    name = f"tieout_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        store = Store.open(f"{base}/{name}", check_schema=False)
        store.init()
        yield store
        store.dispose()
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backends() -> list[str]:
    chosen = [a for a in sys.argv[1:] if a in ("sqlite", "postgresql")]
    return chosen or ["sqlite", "postgresql"]


def report(doc: dict[str, Any]) -> None:
    print(json.dumps({**doc, "machine": machine()}, indent=2))


def reference_data(store: Store, ctx: Ctx, accounts: int, symbols: int) -> None:
    """Instruments S0.. (XNYS, USD) and margin accounts A0.. for a benchmark book."""
    book.add_instruments(
        store, ctx, [make_instrument(f"S{i}", "XNYS", "USD") for i in range(symbols)]
    )
    for a in range(accounts):
        book.open_account(store, ctx, make_account(f"A{a}", "USD", None, "margin", None))
