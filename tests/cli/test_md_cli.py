"""`tieout md ...` through the real entry point, on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tieout, write

HEADER = "time,symbol,open,high,low,close,volume\n"
GOOD = (
    "2026-01-05T14:30:00Z,AAPL,190,191,189.5,190.25,1000\n"
    "2026-01-05T15:31:00+01:00,AAPL,190.25,190.75,190,190.5,500\n"
    "2026-01-05T15:10:00Z,AAPL,190.5,192,190.5,191.75,700\n"
)
BAD = (
    "2026-01-05T14:32:00,AAPL,1,1,1,1,1\n"  # naive time
    "2026-01-05T14:33:00Z,MSFT,1,1,1,1,1\n"  # unknown symbol
    "2026-01-05T14:34:00Z,AAPL,190,189,191,190,-1\n"  # high < low, negative volume
)


@pytest.fixture
def t(tieout: Tieout) -> Tieout:
    tieout.ok("instrument", "add", "AAPL", "--exchange", "24/7", "--currency", "USD")
    tieout.ok("instrument", "add", "IDLE", "--exchange", "24/7", "--currency", "USD")
    return tieout


def state(t: Tieout) -> Any:
    """What a failed import must leave as it was."""
    return (
        t.ok("md", "bars", "AAPL", "--json").json(),
        t.ok("md", "rejects", "--json").json(),
        t.ok("audit", "verify", "--json").json()["events"],
    )


def test_import_counts_and_json(t: Tieout, tmp_path: Path) -> None:
    path = write(tmp_path / "bars.csv", HEADER + GOOD + BAD)
    r = t.ok("md", "import", path, "--json")
    doc = r.json()
    assert doc == {
        "file": path,
        "sha256": doc["sha256"],
        "rows": 6,
        "accepted": 3,
        "rejected": 3,
        "unchanged": 0,
        "import_id": doc["import_id"],
        "paper_orders_filled": 0,  # no resting paper orders to work
        "late_bars": [],
    }
    assert isinstance(doc["import_id"], int)

    again = t.ok("md", "import", path, "--json").json()
    assert (again["accepted"], again["rejected"], again["unchanged"]) == (0, 3, 3)
    assert again["sha256"] == doc["sha256"]


def test_import_human_output_lists_reasons(t: Tieout, tmp_path: Path) -> None:
    r = t.ok("md", "import", write(tmp_path / "bars.csv", HEADER + GOOD + BAD))
    assert "6 rows, 3 accepted, 3 rejected, 0 unchanged" in r.out
    assert "line 5: time '2026-01-05T14:32:00' has no time zone" in r.out
    assert "line 7: volume -1 must not be negative; high 189 is below low 191" in r.out


def test_rejects_listing(t: Tieout, tmp_path: Path) -> None:
    doc = t.ok("md", "import", write(tmp_path / "bars.csv", HEADER + GOOD + BAD), "--json").json()
    rejects = t.ok("md", "rejects", "--import", str(doc["import_id"]), "--json").json()
    assert [r["line"] for r in rejects] == [5, 6, 7]
    assert rejects[1]["values"] == {
        "time": "2026-01-05T14:33:00Z",
        "symbol": "MSFT",
        "open": "1",
        "high": "1",
        "low": "1",
        "close": "1",
        "volume": "1",
    }
    assert rejects[1]["reasons"] == [
        "symbol 'MSFT' is not a known instrument (tieout instrument add)"
    ]
    assert len(rejects[2]["reasons"]) == 2
    assert set(rejects[0]) == {"reject_id", "import_id", "file", "line", "values", "reasons"}
    assert t("md", "rejects", "--import", "999", "--json").code == 5


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.csv", ""),
        ("header_only.csv", HEADER),
        (
            "latin1.csv",
            HEADER.encode() + "2026-01-05T14:30:00Z,AAPL,1,1,1,1,1 caf\xe9\n".encode("latin-1"),
        ),
        ("missing_col.csv", "time,symbol,open,high,low,close\n2026-01-05T14:30:00Z,AAPL,1,1,1,1\n"),
        ("extra_col.csv", HEADER.strip() + ",venue\n2026-01-05T14:30:00Z,AAPL,1,1,1,1,1,X\n"),
    ],
)
def test_bad_files_exit_3_and_change_nothing(
    t: Tieout, tmp_path: Path, name: str, content: str | bytes
) -> None:
    t.ok("md", "import", write(tmp_path / "first.csv", HEADER + GOOD))
    before = state(t)
    r = t("md", "import", write(tmp_path / name, content), "--json")
    assert r.code == 3, r.err
    assert r.out == ""
    assert name in r.err
    assert state(t) == before


def test_missing_file_exits_3(t: Tieout, tmp_path: Path) -> None:
    r = t("md", "import", str(tmp_path / "nope.csv"))
    assert r.code == 3
    assert "no such file" in r.err


def test_md_last(t: Tieout, tmp_path: Path) -> None:
    t.ok("md", "import", write(tmp_path / "bars.csv", HEADER + GOOD))
    doc = t.ok("md", "last", "AAPL", "--json").json()
    assert doc == {"symbol": "AAPL", "price": "191.75", "time": "2026-01-05T15:10:00.000000Z"}

    unknown = t("md", "last", "NOPE", "--json")
    assert unknown.code == 5
    assert unknown.out == ""
    assert "instrument 'NOPE' not found" in unknown.err
    idle = t("md", "last", "IDLE", "--json")
    assert idle.code == 5
    assert "no market data for 'IDLE'" in idle.err


def test_md_bars_raw_and_aggregated(t: Tieout, tmp_path: Path) -> None:
    t.ok(
        "md",
        "import",
        write(
            tmp_path / "bars.csv",
            HEADER + GOOD + "2026-01-06T09:00:00Z,AAPL,191,191,190,190.5,10\n",
        ),
    )
    raw = t.ok("md", "bars", "AAPL", "--json").json()
    assert [b["time"] for b in raw] == [
        "2026-01-05T14:30:00.000000Z",
        "2026-01-05T14:31:00.000000Z",
        "2026-01-05T15:10:00.000000Z",
        "2026-01-06T09:00:00.000000Z",
    ]
    assert raw[0] == {
        "symbol": "AAPL",
        "time": "2026-01-05T14:30:00.000000Z",
        "open": "190",
        "high": "191",
        "low": "189.5",
        "close": "190.25",
        "volume": "1000",
    }

    hourly = t.ok("md", "bars", "AAPL", "--interval", "1h", "--json").json()
    assert hourly[0] == {
        "symbol": "AAPL",
        "interval": "1h",
        "time": "2026-01-05T14:00:00.000000Z",
        "open": "190",
        "high": "191",
        "low": "189.5",
        "close": "190.5",
        "volume": "1500",
        "bars": 2,
    }
    assert len(hourly) == 3

    daily = t.ok(
        "md",
        "bars",
        "AAPL",
        "--interval",
        "1d",
        "--from",
        "2026-01-05",
        "--to",
        "2026-01-05",
        "--json",
    ).json()
    assert daily == [
        {
            "symbol": "AAPL",
            "interval": "1d",
            "time": "2026-01-05T00:00:00.000000Z",
            "open": "190",
            "high": "192",
            "low": "189.5",
            "close": "191.75",
            "volume": "2200",
            "bars": 3,
        }
    ]
    later = t.ok("md", "bars", "AAPL", "--from", "2026-01-06", "--json").json()
    assert [b["time"][:10] for b in later] == ["2026-01-06"]

    bad = t("md", "bars", "AAPL", "--interval", "5m", "--json")
    assert (bad.code, bad.out) == (3, "")
    assert "'5m' must be 1h or 1d" in bad.err
    assert t("md", "bars", "AAPL", "--from", "05/01/2026").code == 3
    assert t("md", "bars", "NOPE", "--json").code == 5
    assert t.ok("md", "bars", "IDLE", "--json").json() == []


def test_md_settings_jump_limit(t: Tieout, tmp_path: Path) -> None:
    assert t.ok("md", "settings", "--json").json() == {"max_jump_pct": "25"}
    jump = HEADER + GOOD + "2026-01-05T16:00:00Z,AAPL,250,260,250,260,1\n"
    first = t.ok("md", "import", write(tmp_path / "a.csv", jump), "--json").json()
    assert (first["accepted"], first["rejected"]) == (3, 1)
    assert t.ok("md", "settings", "--max-jump-pct", "40", "--json").json() == {"max_jump_pct": "40"}
    second = t.ok("md", "import", write(tmp_path / "a.csv", jump), "--json").json()
    assert (second["accepted"], second["unchanged"]) == (1, 3)
    assert t("md", "settings", "--max-jump-pct", "0").code == 3
    assert json.loads(t.ok("md", "last", "AAPL", "--json").out)["price"] == "260"
