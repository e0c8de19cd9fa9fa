"""Through the real command on both backends: bars an audit of market data input (2026-11-28)
found accepted, and what the paper venue and the risk check then did with them.

- The jump rule looked at the close only: a bar `100000,100000,99,100` after a close of 100
  filled a resting sell limit at 105 at 100,000 (the gap rule fills at the open).
- A bar starting after now (by up to 5 minutes) filled resting orders at a time that had not
  come, and priced market orders at a close not yet known.
- A bar of year 999 was stored on SQLite as "999-..." (strftime's %Y), which no read took back:
  every later import, `md last` and market order of the symbol failed. An offset that moves a
  time before year 1 ended the import with a traceback.
"""

from pathlib import Path

import pytest

from tests.conftest import Tieout, write

HEAD = "time,symbol,open,high,low,close,volume\n"
NOW = "2026-03-02T14:31:00Z"


@pytest.fixture
def nyse(tieout: Tieout, tmp_path: Path) -> Tieout:
    """AAPL on XNYS with a first bar at the open closing at 100; a margin account M with
    1,000,000 USD; the clock at 14:31."""
    tieout.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    tieout.ok("account", "open", "M", "--currency", "USD", "--type", "margin")
    tieout.ok("cash", "deposit", "M", "1000000")
    t = tieout.at(NOW)
    first = HEAD + "2026-03-02T14:30:00Z,AAPL,100,101,99,100,100000\n"
    t.ok("md", "import", write(tmp_path / "b0.csv", first))
    return t


def _rest(t: Tieout, side: str, *terms: str) -> str:
    r = t.ok("order", "submit", "--account", "M", "--symbol", "AAPL", "--side", side,
             "--qty", "10", *terms, "--tif", "gtc", "--json").json()  # fmt: skip
    assert r["status"] == "new", r
    return str(r["order_id"])


def _import(t: Tieout, tmp_path: Path, *lines: str) -> dict:
    return t.ok("md", "import", write(tmp_path / "b.csv", HEAD + "\n".join(lines) + "\n"),
                "--json").json()  # fmt: skip


def _reasons(t: Tieout) -> list[str]:
    return [" ".join(r["reasons"]) for r in t.ok("md", "rejects", "--json").json()]


def test_a_wild_open_high_or_low_is_a_bad_tick_like_a_wild_close(
    nyse: Tieout, tmp_path: Path
) -> None:
    sell = _rest(nyse, "sell", "--type", "limit", "--limit", "105")
    buy = _rest(nyse, "buy", "--type", "limit", "--limit", "95")
    stop = _rest(nyse, "sell", "--type", "stop", "--stop", "90")
    t = nyse.at("2026-03-02T14:33:00Z")
    doc = _import(t, tmp_path, "2026-03-02T14:31:00Z,AAPL,100000,100000,99,100,1000",
                  "2026-03-02T14:32:00Z,AAPL,0.01,101,0.01,100,1000")  # fmt: skip
    assert (doc["accepted"], doc["rejected"], doc["paper_orders_filled"]) == (0, 2, 0)
    spike, dip = _reasons(t)
    assert "open 100000 jumps 99900.00%, high 100000 jumps" in spike
    assert "from the previous close 100" in spike and "close" not in spike.split("from")[0]
    assert "open 0.01 jumps 99.99%, low 0.01 jumps 99.99%" in dip
    for order_id in (sell, buy, stop):
        assert t.ok("order", "show", order_id, "--json").json()["status"] == "new"
    assert t.ok("cash", "balance", "M", "--json").json()["balance"] == "1000000"
    # a bar within the limit in all four is taken, and works the orders it crosses
    ok = _import(t, tmp_path, "2026-03-02T14:32:00Z,AAPL,100,106,99,105.5,1000")
    assert (ok["accepted"], ok["paper_orders_filled"]) == (1, 1)
    assert t.ok("order", "show", sell, "--json").json()["avg_px"] == "105"


def test_a_bar_starting_after_now_is_refused(nyse: Tieout, tmp_path: Path) -> None:
    sell = _rest(nyse, "sell", "--type", "limit", "--limit", "110")
    doc = _import(nyse, tmp_path, "2026-03-02T14:35:00Z,AAPL,100,121,99,120,1000")
    assert (doc["accepted"], doc["rejected"]) == (0, 1)
    (why,) = _reasons(nyse)
    assert "time 2026-03-02T14:35:00.000000Z is after now (2026-03-02T14:31:00.000000Z)" in why
    assert nyse.ok("md", "last", "AAPL", "--json").json()["price"] == "100"
    assert nyse.ok("order", "show", sell, "--json").json()["status"] == "new"
    # the bar that started now is taken
    assert _import(nyse, tmp_path, "2026-03-02T14:31:00Z,AAPL,100,101,99,100.5,10")["accepted"] == 1


def test_a_bar_before_1900_or_before_year_one_is_a_bad_row(nyse: Tieout, tmp_path: Path) -> None:
    doc = _import(nyse, tmp_path, "0999-03-02T14:30:00Z,AAPL,100,101,99,100,10",
                  "0001-01-01T00:00:00+01:00,AAPL,100,101,99,100,10")  # fmt: skip
    assert (doc["accepted"], doc["rejected"]) == (0, 2)
    assert all("is before 1900: not market data of a book" in r for r in _reasons(nyse))
    # the symbol still works
    assert _import(nyse, tmp_path, "2026-03-02T14:31:00Z,AAPL,100,101,99,100.5,10")["accepted"] == 1
    assert nyse.ok("md", "last", "AAPL", "--json").json()["price"] == "100.5"
