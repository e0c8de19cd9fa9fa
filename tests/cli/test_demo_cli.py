"""`tieout demo`: the README's main command works, is reproducible, and leaves a book worth
looking at: orders through the paper venue, venue files with discrepancies, breaks."""

from pathlib import Path

from tests.conftest import run_tieout


def _figures(out: Path) -> list[str]:
    r = run_tieout("demo", "--out", str(out), "--seed", "11")
    assert r.code == 0, r.err
    assert "chain intact" in r.out
    return [line for line in r.out.splitlines() if "head" not in line and str(out) not in line]


def test_the_same_seed_gives_the_same_day(tmp_path: Path) -> None:
    first = _figures(tmp_path / "a")
    second = _figures(tmp_path / "b")
    assert first == second
    for name in ("trades_20261124.csv", "positions_20261124.csv", "cash_20261124.csv"):
        assert (tmp_path / "a" / "venue" / name).read_bytes() == (
            tmp_path / "b" / "venue" / name
        ).read_bytes()
    db = f"sqlite:///{tmp_path / 'a' / 'tieout.db'}"
    assert run_tieout("audit", "verify", "--db", db, "--json").json()["ok"] is True
    assert len(run_tieout("md", "rejects", "--db", db, "--json").json()) == 2
    orders = run_tieout("order", "list", "--db", db, "--json").json()
    statuses = {o["status"] for o in orders}
    assert {"filled", "rejected", "canceled"} <= statuses
    assert all(o["venue"] == "paper" for o in orders)
    breaks = run_tieout("breaks", "list", "--status", "all", "--db", db, "--json").json()
    types = {(b["kind"], b["type"]) for b in breaks}
    assert {
        ("trades", "missing_at_venue"),
        ("trades", "missing_internal"),
        ("trades", "price_mismatch"),
        ("trades", "fee_mismatch"),
        ("trades", "duplicate_venue"),
        ("positions", "quantity_mismatch"),
        ("cash", "missing_internal"),
        ("cash", "balance_mismatch"),
    } <= types
    late = [b for b in breaks if b["type"] == "missing_internal" and b["kind"] == "trades"]
    assert [b["status"] for b in late] == ["resolved"]  # the late booking closed it
    runs = run_tieout("recon", "runs", "--db", db, "--json").json()
    assert [r["quarantined_rows"] for r in runs if r["profile"] == "paper-trades"] == [1, 1]


def test_running_it_again_starts_from_a_fresh_database(tmp_path: Path) -> None:
    assert _figures(tmp_path) == _figures(tmp_path)
