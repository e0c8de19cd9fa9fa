"""Through the real command on both backends: what a cash account's resting buy may spend when
a bar fills it does not depend on how the bars were cut into files.

A bar's fill of a cash account's buy may spend the account's cash less what its older live
buys hold, and a stop buy holds at the higher of its stop and the last price. That last price
was the latest bar of the whole import: working the first bar of a file, an older stop was
priced at the close of a later bar of the same file (a price from that bar's future), so the
same bars filled a buy whole when imported one file each and cut it when imported together.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import Tieout, write

HEADER = "time,symbol,open,high,low,close,volume\n"


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rest_two_buys(t: Tieout, at: Tieout, symbol: str, account: str) -> list[str]:
    """A cash account with 1,000 and two resting buys: a stop of 2 at 110 (holds 2 x 110 x
    1.05 = 231 at the default 5% buffer) and, younger, a limit of 8 at 95 (holds 760)."""
    t.ok("account", "open", account, "--currency", "USD", "--type", "cash")
    t.ok("cash", "deposit", account, "1000")
    ids = []
    for terms in (
        ("--qty", "2", "--type", "stop", "--stop", "110"),
        ("--qty", "8", "--type", "limit", "--limit", "95"),
    ):
        r = at.ok("order", "submit", "--account", account, "--symbol", symbol, "--side", "buy",
                  *terms, "--tif", "gtc", "--json").json()  # fmt: skip
        assert r["status"] == "new", r
        ids.append(r["order_id"])
    return ids


def test_the_same_bars_fill_alike_in_one_file_or_two(tieout: Tieout, tmp_path: Path) -> None:
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    before = _iso(t0 - timedelta(minutes=1))
    tieout.ok("instrument", "add", "ONE", "--exchange", "24/7", "--currency", "USD")
    tieout.ok("instrument", "add", "TWO", "--exchange", "24/7", "--currency", "USD")
    last = f"{before},ONE,100,100,100,100,10000\n{before},TWO,100,100,100,100,10000\n"
    tieout.ok("md", "import", write(tmp_path / "last.csv", HEADER + last))
    at = tieout.at(_iso(t0))
    one = _rest_two_buys(tieout, at, "ONE", "C1")
    two = _rest_two_buys(tieout, at, "TWO", "C2")

    def bars(symbol: str) -> tuple[str, str]:
        # the limit at 95 fills in the first bar (low 94, last price 99); the second gaps up
        # to 123 and fills the stop at 110
        return (
            f"{_iso(t0 + timedelta(minutes=1))},{symbol},100,100,94,99,10000\n",
            f"{_iso(t0 + timedelta(minutes=2))},{symbol},100,123,99.5,123,10000\n",
        )

    later = tieout.at(_iso(t0 + timedelta(minutes=5)))
    later.ok("md", "import", write(tmp_path / "one.csv", HEADER + "".join(bars("ONE"))))
    first, second = bars("TWO")
    later.ok("md", "import", write(tmp_path / "two-a.csv", HEADER + first))
    later.ok("md", "import", write(tmp_path / "two-b.csv", HEADER + second))

    for account, ids in (("C1", one), ("C2", two)):
        shown = [tieout.ok("order", "show", i, "--json").json() for i in ids]
        got = [(s["status"], s["cum_qty"], s["avg_px"]) for s in shown]
        # the stop holds 2 x 110 x 1.05 = 231 while the first bar fills the limit: 769 pays
        # for all 8 at 95 (the stop priced at the later bar's 123 held 258.30: 7 of 8)
        assert got == [("filled", "2", "110"), ("filled", "8", "95")], (account, got)
        bal = tieout.ok("cash", "balance", account, "--json").json()
        assert (bal["balance"], bal["reserved"]) == ("20", "0"), (account, bal)
    assert tieout.ok("audit", "verify", "--json").json()["ok"] is True
