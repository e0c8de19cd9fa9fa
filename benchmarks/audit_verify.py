"""`audit verify` over N events (default 1,000,000) on SQLite and PostgreSQL.

    python -m benchmarks.audit_verify [sqlite|postgresql] [--rows N]

The chain is written with the same hashing tieout uses, in bulk; `seconds` times
audit.verify_url, which is what `tieout audit verify` runs (segments on every core),
`one_process_seconds` the same check in one process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from benchmarks.common import backends, fresh_store, peak_rss_mb, report
from benchmarks.exec_import import rows_arg
from oms import audit
from oms.schema import audit_events
from oms.store import bulk_insert
from oms.values import utc_iso


def chain_rows(n: int, after: tuple[int, str]):  # type: ignore[no-untyped-def]
    first, prev = after
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for seq in range(first + 1, first + n + 1):
        at = utc_iso(start + timedelta(milliseconds=seq))
        payload = audit.canonical_json({"entry_id": seq, "amount": f"{seq}.25", "ref": "bench"})
        h = audit.event_hash(
            prev, seq, at, "bench", "cash.deposit", "account", f"A{seq % 97}", None, payload
        )
        yield (seq, at, "bench", "cash.deposit", "account", f"A{seq % 97}", None, payload, prev, h)
        prev = h


def main() -> None:
    n = rows_arg(1_000_000)
    results = {}
    for backend in backends():
        with fresh_store(backend) as store:
            with store.write() as conn:
                bulk_insert(
                    conn,
                    audit_events,
                    [c.name for c in audit_events.columns],
                    chain_rows(n, audit.head(conn)),
                )
            url = store.engine.url.render_as_string(hide_password=False)
            t0 = time.perf_counter()
            check = audit.verify_url(url)  # what `tieout audit verify` runs
            elapsed = time.perf_counter() - t0
            with store.read() as conn:
                t0 = time.perf_counter()
                single = audit.verify_store(conn)
                one_core = time.perf_counter() - t0
            assert single == check
            assert check.ok
            assert check.events == n + 1  # and the event of init
            results[backend] = {
                "seconds": round(elapsed, 2),
                "one_process_seconds": round(one_core, 2),
                "events_per_s": round(n / elapsed),
            }
    report(
        {
            "benchmark": "audit_verify",
            "events": n,
            "results": results,
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


if __name__ == "__main__":
    main()
