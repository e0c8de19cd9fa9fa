"""`tieout demo`: the README's main command works and is reproducible."""

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
    assert (tmp_path / "a" / "executions.csv").read_bytes() == (
        tmp_path / "b" / "executions.csv"
    ).read_bytes()
    db = f"sqlite:///{tmp_path / 'a' / 'tieout.db'}"
    pos = run_tieout("positions", "--account", "FUND-A", "--db", db, "--json")
    assert pos.code == 0 and pos.json()
    assert run_tieout("audit", "verify", "--db", db, "--json").json()["ok"] is True
    rejects = run_tieout("md", "rejects", "--db", db, "--json").json()
    assert len(rejects) == 2


def test_running_it_again_starts_from_a_fresh_database(tmp_path: Path) -> None:
    assert _figures(tmp_path) == _figures(tmp_path)
