"""Retention on both backends: the drop-copy reports `exec apply` refused about an order
(refused_reports) are archived with the order and removed with it; a refusal younger than the
cut-off keeps its order (and itself) in the book."""

from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from oms.store import Store
from tests.cli.test_order_cli import report
from tests.conftest import Tieout, write

OLD = "2018-03-01T10:00:00Z"
YOUNG = "2026-01-05T10:00:00Z"


def _refused(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT order_id, exec_id FROM refused_reports ORDER BY 1, 2"))
        return [(r[0], r[1]) for r in rows]


def test_refused_reports_go_with_their_order_and_a_young_one_keeps_it(
    db_url: str, tmp_path: Path
) -> None:
    t = Tieout(db_url)
    o = t.at(OLD)
    o.ok("init")
    o.ok("instrument", "add", "COIN", "--exchange", "24/7", "--currency", "USD")
    o.ok("account", "open", "A1", "--currency", "USD", "--type", "margin")
    o.ok("cash", "deposit", "A1", "100000")
    bars = "time,symbol,open,high,low,close,volume\n2018-03-01T09:59:00Z,COIN,100,101,99,100,5000\n"
    o.ok("md", "import", write(tmp_path / "bars.csv", bars))

    def external(cl: str, qty: str) -> dict[str, Any]:
        terms = f"--side buy --qty {qty} --type limit --limit 101 --venue ACME"
        return o.ok(*f"order submit --account A1 --symbol COIN {terms} --json".split(),
                    "--client-order-id", cl).json()  # fmt: skip

    old, kept = external("X1", "10"), external("X2", "9")
    lines = [
        report("X1", "X1E0", "0"),
        report("X1", "X1E1", "F", (32, "11"), (31, "100")),  # an overfill: refused
        report("X1", "X1E2", "4"),
        report("X2", "X2E0", "0"),
        report("X2", "X2E1", "4"),
        report("X2", "X2E9", "0"),  # a second ack: refused
        # the newest order, kept as the highest id so that no id is handed out again
        report("X3", "X3E0", "0"),
    ]
    external("X3", "8")
    assert o("exec", "apply", write(tmp_path / "old.fix", "\n".join(lines) + "\n")).code == 3
    # 2026: a late fill for X2, canceled in 2018, is refused today
    late = report("X2", "X2E7", "F", (32, "1"), (31, "100"))
    assert t.at(YOUNG)("exec", "apply", write(tmp_path / "late.fix", late + "\n")).code == 3
    store = Store.open(t.db_url)
    refused = _refused(store)
    assert (old["order_id"], "X1E1") in refused
    assert (kept["order_id"], "X2E7") in refused

    archive = tmp_path / "archive"
    done = t.at(YOUNG).ok("retention", "apply", "--archive-dir", str(archive), "--json").json()
    assert done["archived"]["orders"] == 1
    assert done["archived"]["refused_reports"] == 1
    assert _refused(store) == [r for r in refused if r[0] != old["order_id"]]
    assert t.ok("order", "show", "--client-order-id", "X2", "--json").json()["status"] == "canceled"
    files = list(archive.rglob("refused_reports.parquet"))
    assert len(files) == 1
    frame = pl.read_parquet(files[0])
    assert frame.select("order_id", "exec_id").rows() == [(old["order_id"], "X1E1")]
    assert t.ok("retention", "verify-archive", str(files[0].parent)).code == 0
