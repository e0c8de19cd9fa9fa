"""Through the real command on both backends: what a review of the paper venue found. Time
priority for a cash account's cash, a bar filled in late, fok on a cash account, a sale that
cannot pay its commission, amends that cut or reprice a resting order, and prices off the
tick. NYSE on Monday 2026-03-02 (open 14:30Z)."""

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tieout, write

HEAD = "time,symbol,open,high,low,close,volume\n"


@pytest.fixture
def nyse(tieout: Tieout, tmp_path: Path) -> Tieout:
    """AAPL on XNYS (tick 0.01) with a first bar at the open, closing at 100; a margin account
    M with 1,000,000 USD."""
    tieout.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    tieout.ok("account", "open", "M", "--currency", "USD", "--type", "margin")
    tieout.ok("cash", "deposit", "M", "1000000")
    t = tieout.at("2026-03-02T14:31:00Z")
    t.ok("md", "import", write(tmp_path / "b0.csv",
                               HEAD + "2026-03-02T14:30:00Z,AAPL,100,101,99,100,100000\n"))
    return tieout


def _bar(t: Tieout, tmp_path: Path, name: str, line: str) -> None:
    t.ok("md", "import", write(tmp_path / name, HEAD + line + "\n"))


def _order(t: Tieout, account: str, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = t.ok("order", "submit", "--account", account, "--symbol", "AAPL",
                               *args, "--json").json()
    return doc


def _show(t: Tieout, order: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = t.ok("order", "show", order["order_id"], "--json").json()
    return doc


def test_an_older_buy_is_not_cut_by_a_younger_ones_repriced_reservation(
    nyse: Tieout, tmp_path: Path
) -> None:
    """A cash account's limit buy (older) and stop buy (younger) hold its cash. A bar closing
    at 120 reprices the stop's reservation (45 x 120 x 1.05); the limit used to be cut to 45
    of 50 by it, and the stop then spent the limit's cash. Older orders come first."""
    nyse.ok("account", "open", "C", "--currency", "USD", "--type", "cash")
    nyse.ok("cash", "deposit", "C", "10200")
    t = nyse.at("2026-03-02T14:32:00Z")
    limit = _order(t, "C", "--side", "buy", "--qty", "50", "--type", "limit", "--limit", "99.5",
                   "--tif", "gtc")  # holds 4,975
    stop = _order(t, "C", "--side", "buy", "--qty", "45", "--type", "stop", "--stop", "110",
                  "--tif", "gtc")  # holds 45 x 110 x 1.05 = 5,197.50
    _bar(nyse.at("2026-03-02T14:36:00Z"), tmp_path, "b1.csv",
         "2026-03-02T14:35:00Z,AAPL,99,125,98,120,100000")
    got = _show(nyse, limit)
    assert (got["status"], got["cum_qty"], got["avg_px"]) == ("filled", "50", "99"), got
    got = _show(nyse, stop)
    assert (got["status"], got["cum_qty"], got["avg_px"]) == ("filled", "45", "110"), got
    bal = nyse.ok("cash", "balance", "C", "--json").json()
    assert bal["balance"] == "300"  # 10,200 - 4,950 - 4,950


def test_a_bar_filled_in_late_does_not_fill_a_stop_a_later_bar_triggered(
    nyse: Tieout, tmp_path: Path
) -> None:
    t = nyse.at("2026-03-02T14:32:00Z")
    stop = _order(t, "M", "--side", "buy", "--qty", "100", "--type", "stop", "--stop", "105",
                  "--tif", "gtc")
    later = nyse.at("2026-03-02T14:51:00Z")
    _bar(later, tmp_path, "b1.csv", "2026-03-02T14:50:00Z,AAPL,104,106,104,106,5")  # no share
    assert _show(nyse, stop)["history"][-1]["event"] == "order_triggered"
    _bar(later, tmp_path, "b2.csv", "2026-03-02T14:40:00Z,AAPL,101,102,100.5,101.5,100000")
    assert _show(nyse, stop)["cum_qty"] == "0"  # it used to fill at 101, before its trigger
    _bar(later.at("2026-03-02T14:56:00Z"), tmp_path, "b3.csv",
         "2026-03-02T14:55:00Z,AAPL,106,107,105.5,106.5,100000")
    assert (_show(nyse, stop)["cum_qty"], _show(nyse, stop)["avg_px"]) == ("100", "106")


def test_fok_and_a_cash_account_fill_whole_or_not_at_all(nyse: Tieout) -> None:
    nyse.ok("account", "open", "C", "--currency", "USD", "--type", "cash")
    nyse.ok("cash", "deposit", "C", "10000")
    nyse.ok("paper", "set", "slippage-bps", "10")  # 100.10
    nyse.ok("risk", "set", "market-buffer-pct", "0")
    t = nyse.at("2026-03-02T14:32:00Z")
    fok = _order(t, "C", "--side", "buy", "--qty", "100", "--tif", "fok")
    assert (fok["status"], fok["cum_qty"]) == ("canceled", "0"), fok
    assert "a fok order fills whole or not at all" in _show(nyse, fok)["history"][-1]["reason"]
    assert nyse.ok("cash", "balance", "C", "--json").json()["balance"] == "10000"


def test_a_cash_accounts_sale_must_pay_its_commission(nyse: Tieout, tmp_path: Path) -> None:
    """A minimum commission of 5 on a sale worth 1 took a cash account to -4. The sale is
    refused (buying power) when its commission exceeds its proceeds plus the cash available."""
    nyse.ok("instrument", "add", "PENNY", "--exchange", "XNYS", "--currency", "USD")
    t = nyse.at("2026-03-02T14:32:00Z")
    _bar(t, tmp_path, "p.csv", "2026-03-02T14:31:00Z,PENNY,1,1,1,1,100000")
    nyse.ok("paper", "set", "commission-min", "5")
    nyse.ok("account", "open", "C", "--currency", "USD", "--type", "cash")
    nyse.ok("cash", "deposit", "C", "6")
    buy = t.ok("order", "submit", "--account", "C", "--symbol", "PENNY", "--side", "buy",
               "--qty", "1", "--type", "limit", "--limit", "1", "--json").json()
    assert buy["status"] == "filled"
    assert nyse.ok("cash", "balance", "C", "--json").json()["balance"] == "0.00"
    r = t("order", "submit", "--account", "C", "--symbol", "PENNY", "--side", "sell", "--qty",
          "1", "--json")
    assert r.code == 4 and r.json()["risk_codes"] == ["buying_power"], r.out
    assert "the sale's commission 5 USD exceeds its proceeds 1 USD" in r.err, r.err
    assert nyse.ok("cash", "balance", "C", "--json").json()["balance"] == "0.00"


def test_cutting_a_resting_order_does_not_fill_its_leaves_at_once(
    nyse: Tieout, tmp_path: Path
) -> None:
    """A buy of 1,000 @ 99.5 got 100 of a bar (its share) and rests, marketable against the
    close of 99.2. Amending it to 800 used to fill the 700 left at once; a new quantity alone
    does not make an order marketable, so it rests for the next bars."""
    t = nyse.at("2026-03-02T14:32:00Z")
    order = _order(t, "M", "--side", "buy", "--qty", "1000", "--type", "limit", "--limit",
                   "99.5", "--tif", "gtc")
    _bar(nyse.at("2026-03-02T14:36:00Z"), tmp_path, "b1.csv",
         "2026-03-02T14:35:00Z,AAPL,99.4,99.6,99,99.2,1000")
    assert _show(nyse, order)["cum_qty"] == "100"
    cut = nyse.at("2026-03-02T14:37:00Z").ok("order", "amend", order["order_id"], "--qty",
                                            "800", "--json").json()
    assert (cut["status"], cut["cum_qty"], cut["leaves_qty"]) == ("partially_filled", "100",
                                                                  "700")


def test_a_triggered_stop_limit_amended_to_a_marketable_limit_fills(
    nyse: Tieout, tmp_path: Path
) -> None:
    t = nyse.at("2026-03-02T14:32:00Z")
    order = _order(t, "M", "--side", "buy", "--qty", "100", "--type", "stop_limit", "--stop",
                   "101", "--limit", "101.5", "--tif", "gtc")
    later = nyse.at("2026-03-02T14:36:00Z")
    _bar(later, tmp_path, "b1.csv", "2026-03-02T14:35:00Z,AAPL,103,104,102.9,103.5,100000")
    assert _show(nyse, order)["history"][-1]["event"] == "order_triggered"
    done = nyse.at("2026-03-02T14:37:00Z").ok("order", "amend", order["order_id"], "--limit",
                                             "104", "--json").json()
    assert (done["status"], done["cum_qty"], done["avg_px"]) == ("filled", "100", "103.5")


def test_fill_prices_are_on_the_tick(nyse: Tieout, tmp_path: Path) -> None:
    """Bars may carry prices off an instrument's tick (0.05 here): a market buy at a last price
    of 100.03 filled at 100.03, a limit at an open of 99.98. Fills round against the order,
    inside the bar, never beyond a limit."""
    nyse.ok("instrument", "add", "BBB", "--exchange", "XNYS", "--currency", "USD",
            "--tick-size", "0.05")
    t = nyse.at("2026-03-02T14:31:00Z")
    _bar(t, tmp_path, "c0.csv", "2026-03-02T14:30:00Z,BBB,100.02,100.07,99.99,100.03,100000")
    buy = t.ok("order", "submit", "--account", "M", "--symbol", "BBB", "--side", "buy",
               "--qty", "10", "--json").json()
    assert buy["avg_px"] == "100.05"
    sell = t.ok("order", "submit", "--account", "M", "--symbol", "BBB", "--side", "sell",
                "--qty", "5", "--json").json()
    assert sell["avg_px"] == "100"
    rest = t.ok("order", "submit", "--account", "M", "--symbol", "BBB", "--side", "buy",
                "--qty", "10", "--type", "limit", "--limit", "100", "--tif", "gtc",
                "--json").json()
    _bar(nyse.at("2026-03-02T14:36:00Z"), tmp_path, "c1.csv",
         "2026-03-02T14:35:00Z,BBB,99.98,100.07,99.91,100.03,100000")
    assert _show(nyse, rest)["avg_px"] == "100"  # 99.98 up to the tick, at most the limit


def _cash_account_with_shares(nyse: Tieout) -> Tieout:
    """Cash account C that spent all its cash on 100 AAPL at 100; a minimum commission of 200."""
    nyse.ok("account", "open", "C", "--currency", "USD", "--type", "cash")
    nyse.ok("cash", "deposit", "C", "10000")
    t = nyse.at("2026-03-02T14:32:00Z")
    _order(t, "C", "--side", "buy", "--qty", "100", "--type", "limit", "--limit", "100")
    nyse.ok("paper", "set", "commission-min", "200")
    assert nyse.ok("cash", "balance", "C", "--json").json()["balance"] == "0"
    return t


def test_a_cash_accounts_sale_never_takes_it_below_zero_at_the_fill(
    nyse: Tieout, tmp_path: Path
) -> None:
    """Entry checks a sale at its price basis; at the fill, a partial fill (1 of 2 pays the
    whole minimum of 200 from 101 of proceeds) or slippage (2 at 99) used to leave the account
    at -99 or -2. Such a fill does not happen: the order is canceled with the figures."""
    t = _cash_account_with_shares(nyse)
    resting = _order(t, "C", "--side", "sell", "--qty", "2", "--type", "limit", "--limit", "101",
                     "--tif", "gtc")
    _bar(nyse.at("2026-03-02T14:36:00Z"), tmp_path, "s1.csv",
         "2026-03-02T14:35:00Z,AAPL,101,101,101,101,10")  # 10% of 10: 1 share
    got = _show(nyse, resting)
    assert (got["status"], got["cum_qty"]) == ("canceled", "0"), got
    assert "the sale's commission 200.00 USD exceeds its proceeds 101" in (
        got["history"][-1]["reason"])
    nyse.ok("paper", "set", "slippage-bps", "100")
    market = _order(nyse.at("2026-03-02T14:37:00Z"), "C", "--side", "sell", "--qty", "2")
    assert (market["status"], market["cum_qty"]) == ("canceled", "0"), market
    assert nyse.ok("cash", "balance", "C", "--json").json()["balance"] == "0"


def test_a_marketable_sell_limit_is_sized_at_the_market_for_the_notional_cap(
    nyse: Tieout,
) -> None:
    """A sell limit of 91 against a market of 100 fills at 100: 10,989 of them are 1,098,900
    dollars, past the 1,000,000 cap (it was checked at the limit, 999,999, and filled)."""
    r = nyse.at("2026-03-02T14:32:00Z")("order", "submit", "--account", "M", "--symbol", "AAPL",
                                        "--side", "sell", "--qty", "10989", "--type", "limit",
                                        "--limit", "91", "--json")
    assert r.code == 4 and r.json()["risk_codes"] == ["max_notional"], r.out
    assert "10989 x 100 reference = 1098900 USD exceeds" in r.err, r.err


def test_a_gtd_order_with_no_session_left_before_its_date_is_refused(nyse: Tieout) -> None:
    """Friday 2026-03-06 after the close, expiring on Saturday: no session is left (it used to
    be taken and hold its cash over the weekend). Expiring on Monday it may trade."""
    late = nyse.at("2026-03-06T22:00:00Z")
    args = ("order", "submit", "--account", "M", "--symbol", "AAPL", "--side", "buy", "--qty",
            "1", "--type", "limit", "--limit", "95", "--tif", "gtd")
    r = late(*args, "--expire-at", "2026-03-07")
    assert r.code == 3 and "is over; give a later date" in r.err, r.err
    assert late.ok(*args, "--expire-at", "2026-03-09", "--json").json()["status"] == "new"


def test_paper_terms_and_switches_say_what_they_cannot_be(nyse: Tieout) -> None:
    for name, value in (("slippage-bps", "10000"), ("commission-max-pct", "101")):
        r = nyse("paper", "set", name, value)
        assert r.code == 3, (name, r.err)
    nyse.ok("paper", "set", "slippage-bps", "9999")
    nyse.ok("risk", "kill", "--account", "M")
    nyse.ok("risk", "kill")
    out = nyse.ok("risk", "release").out
    assert "accounts whose own kill switch is still engaged: M (release each with --account)" \
        in out
    assert nyse("cash", "balance", "M", "--currency", "XX").code == 3


def test_a_currency_has_commission_amounts_of_its_own(nyse: Tieout, tmp_path: Path) -> None:
    """`paper set commission-min 1` meant a dollar, and charged one yen on a yen order.
    `commission-min.JPY 150` is the yen's minimum; a dollar order still pays 1."""
    nyse.ok("instrument", "add", "BTC-JPY", "--exchange", "24/7", "--currency", "JPY",
            "--lot-size", "0.01")
    nyse.ok("account", "open", "J", "--currency", "JPY", "--type", "margin")
    nyse.ok("cash", "deposit", "J", "100000000")
    t = nyse.at("2026-03-02T14:32:00Z")
    _bar(t, tmp_path, "j.csv", "2026-03-02T14:31:00Z,BTC-JPY,9000000,9000000,9000000,9000000,10")
    nyse.ok("paper", "set", "commission-min", "1")
    shown = nyse.ok("paper", "set", "commission-min.jpy", "150", "--json").json()
    assert (shown["commission-min"], shown["commission-min.JPY"]) == ("1", "150")
    assert nyse("paper", "set", "commission-bps.JPY", "1").code == 3  # a rate has no currency
    yen = t.ok("order", "submit", "--account", "J", "--symbol", "BTC-JPY", "--side", "buy",
               "--qty", "0.01", "--json").json()
    dollar = _order(t, "M", "--side", "buy", "--qty", "1")
    fills = {e["symbol"]: e["commission"] for e in t.ok("exec", "list", "--json").json()}
    assert fills == {"BTC-JPY": "150", "AAPL": "1.00"}
    assert (yen["status"], dollar["status"]) == ("filled", "filled")
