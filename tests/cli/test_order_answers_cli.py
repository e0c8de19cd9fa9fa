"""Through the real command on both backends: the same answer to a repeated rejected order,
how long an order has really waited for its venue, and market data from the future."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, select

from oms.calendars import settlement_date
from oms.schema import paper_bar_takes
from tests.cli.test_exec_apply_review import apply, book, external
from tests.cli.test_order_cli import fix_line, report
from tests.conftest import Result, Tieout, write

__all__ = ["book"]  # the fixture, used by name


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_repeated_rejected_order_is_answered_as_rejected(book: Tieout) -> None:
    args = ["order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
            "5000", "--client-order-id", "BIG", "--json"]  # 5,000 x 100 > 100,000 USD
    first = book(*args)
    assert first.code == 4 and first.json()["status"] == "rejected"
    again = book(*args)
    assert again.code == 4, again.out  # not 0: a retrying script must not take it as accepted
    doc = again.json()
    assert (doc["order_id"], doc["status"], doc["duplicate"]) == (
        first.json()["order_id"], "rejected", True)
    assert "a duplicate of an order that was rejected: risk: buying power" in again.err
    assert len(book.ok("order", "list", "--json").json()) == 1


def test_a_cancel_waiting_for_its_venue_is_stuck_though_fills_came_meanwhile(
    book: Tieout, tmp_path: Path
) -> None:
    order = external(book, "X1")
    placed = datetime.fromisoformat(order["created_at"])
    t0 = book.at(_iso(placed + timedelta(minutes=1)))
    apply(t0, tmp_path, "ack.fix", report("X1", "X1E0", "0"))
    t0.ok("order", "cancel", "--client-order-id", "X1")  # asked at +1 min
    t1 = book.at(_iso(placed + timedelta(minutes=12)))
    apply(t1, tmp_path, "fill.fix", report("X1", "E1", "F", (32, "2"), (31, "100")))
    late = book.at(_iso(placed + timedelta(minutes=17)))  # 16 min after the request
    (stuck,) = late.ok("order", "list", "--stuck", "--json").json()
    assert (stuck["order_id"], stuck["status"]) == (order["order_id"], "pending_cancel")
    assert late.ok("order", "list", "--stuck", "--stuck-minutes", "20", "--json").json() == []
    r = late("order", "list", "--stuck", "--stuck-minutes", "-5")
    assert r.code == 3 and "must not be negative" in r.err


def test_a_bar_from_the_future_is_refused(book: Tieout, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ahead = _iso(now + timedelta(minutes=6))  # 5 minutes of clock skew are allowed
    f = write(tmp_path / "bars.csv", "time,symbol,open,high,low,close,volume\n"
              f"{_iso(now - timedelta(seconds=30))},COIN,100,100,100,100,10\n"
              f"{ahead},COIN,90,90,90,90,10\n")
    t = book.at(_iso(now))
    doc = t.ok("md", "import", f, "--json").json()
    assert (doc["accepted"], doc["rejected"]) == (1, 1)  # kept with its reason (contract)
    (rejected,) = t.ok("md", "rejects", "--import", str(doc["import_id"]), "--json").json()
    assert "is after now" in json.dumps(rejected)
    assert t.ok("md", "last", "COIN", "--json").json()["price"] == "100"  # not the future 90


def _acme(t: Tieout, account: str, *args: str) -> Result:
    return t("order", "submit", "--account", account, "--symbol", "COIN", "--venue", "ACME",
             *args, "--json")


def test_a_market_buy_reserves_what_the_buying_power_check_asked(book: Tieout) -> None:
    """Reserved = leaves x last x (1 + 5% buffer) for a market (or stop) buy, as the check sized
    it; without the buffer a second order could spend cash the first may still need."""
    book.ok("account", "open", "C1", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C1", "10500")
    first = _acme(book, "C1", "--side", "buy", "--qty", "100")  # 100 x 100 x 1.05 = 10,500
    assert first.code == 0 and first.json()["status"] == "pending_new"
    bal = book.ok("cash", "balance", "C1", "--json").json()
    assert (bal["reserved"], bal["available"]) == ("10500.00", "0.00")
    second = _acme(book, "C1", "--side", "buy", "--qty", "1", "--type", "limit", "--limit", "100")
    assert second.code == 4 and "buying power" in second.err


def test_a_pending_replace_reserves_the_larger_of_its_old_and_new_terms(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("account", "open", "C6", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C6", "100000")
    args = ("--side", "buy", "--qty", "100", "--type", "limit", "--limit", "99")
    order = _acme(book, "C6", *args, "--client-order-id", "e1").json()
    apply(book, tmp_path, "ack.fix", fix_line((35, "8"), (1, "C6"), (11, "e1"), (17, "e1E0"),
                                               (150, "0")))
    book.ok("order", "amend", order["order_id"], "--qty", "900", "--new-client-order-id", "e1b")
    # the venue may still fill the old 100 or accept the new 900: 900 x 99 is held
    assert book.ok("cash", "balance", "C6", "--json").json()["reserved"] == "89100"
    more = _acme(book, "C6", "--side", "buy", "--qty", "200", "--type", "limit", "--limit", "99")
    assert more.code == 4 and "available 10900" in more.err  # 200 x 99 = 19,800
    apply(book, tmp_path, "rej.fix", fix_line((35, "9"), (1, "C6"), (11, "e1b"), (41, "e1"),
                                               (434, "2")))
    assert book.ok("cash", "balance", "C6", "--json").json()["reserved"] == "9900"


def test_sydney_trades_in_its_session_that_opens_the_evening_before_in_utc(
    book: Tieout, tmp_path: Path
) -> None:
    """XASX's session of Thursday 2026-12-03 runs 2026-12-02T23:00Z to 12-03T05:00Z: at 23:30Z
    on the 2nd the market is open (it used to be looked up by the UTC date, and was closed)."""
    book.ok("instrument", "add", "BHP", "--exchange", "XASX", "--currency", "USD")
    t = book.at("2026-12-02T23:30:00Z")
    bars = "time,symbol,open,high,low,close,volume\n2026-12-02T23:29:00Z,BHP,40,40,40,40,5000\n"
    t.ok("md", "import", write(tmp_path / "b1.csv", bars))
    args = ("order", "submit", "--account", "A1", "--symbol", "BHP", "--side", "buy", "--json")
    filled = t.ok(*args, "--qty", "10").json()  # a market order, in session
    assert filled["status"] == "filled"
    (fill,) = [e for e in t.ok("exec", "list", "--json").json() if e["symbol"] == "BHP"]
    # traded on Thursday's session, whose morning is Wednesday evening in UTC
    assert (fill["trade_date"], fill["settle_date"]) == (
        "2026-12-03", settlement_date("XASX", date(2026, 12, 3)).isoformat())
    resting = t.ok(*args, "--qty", "20", "--type", "limit", "--limit", "39", "--tif", "gtc").json()
    assert resting["status"] == "new"
    later = book.at("2026-12-02T23:36:00Z")
    bars = "time,symbol,open,high,low,close,volume\n2026-12-02T23:35:00Z,BHP,39,39,38,38.5,5000\n"
    later.ok("md", "import", write(tmp_path / "b2.csv", bars))  # in session: works the order
    shown = later.ok("order", "show", resting["order_id"], "--json").json()
    assert (shown["status"], shown["avg_px"]) == ("filled", "39")
    closed = book.at("2026-12-03T06:00:00Z")(*args, "--qty", "1")  # after Thursday's close
    assert closed.code == 4 and "market closed" in closed.err


def test_a_marketable_limit_does_not_fill_on_a_stale_price(book: Tieout, tmp_path: Path) -> None:
    """The last close is 24 hours old: a buy limit above it rests (it would have filled at once
    at the old close); a market order is refused as stale; a fresh bar then fills the limit."""
    old = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    bars = f"time,symbol,open,high,low,close,volume\n{_iso(old)},COIN,100,100,100,100,50000\n"
    book.at(_iso(old)).ok("md", "import", write(tmp_path / "old.csv", bars))
    day = book.at(_iso(old + timedelta(hours=24)))
    args = ("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--json")
    order = day.ok(*args, "--qty", "10", "--type", "limit", "--limit", "105", "--tif", "gtc")
    assert order.json()["status"] == "new"
    assert day(*args, "--qty", "11").code == 4  # stale_price
    ioc = day.ok(*args, "--qty", "12", "--type", "limit", "--limit", "105", "--tif", "ioc")
    assert ioc.json()["status"] == "canceled"
    fresh = old + timedelta(hours=24, minutes=1)
    bars = f"time,symbol,open,high,low,close,volume\n{_iso(fresh)},COIN,104,104,103,103,50000\n"
    book.at(_iso(fresh + timedelta(seconds=30))).ok("md", "import", write(tmp_path / "n.csv", bars))
    shown = day.ok("order", "show", order.json()["order_id"], "--json").json()
    assert (shown["status"], shown["avg_px"]) == ("filled", "104")


def test_a_triggered_stop_goes_on_filling_as_a_market_order(book: Tieout, tmp_path: Path) -> None:
    """A buy stop 300 @ 101 triggers on a bar through 101 and fills 100 (10% of its volume);
    the next bar stays below the stop, but the order has triggered: it fills the rest there as
    a market order, at the open (it used to wait for another bar through its stop)."""
    placed = datetime.now(UTC).replace(microsecond=0)
    stop = book.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                   "--qty", "300", "--type", "stop", "--stop", "101", "--tif", "gtc",
                   "--json").json()
    assert stop["status"] == "new"
    t1, t2 = placed + timedelta(minutes=1), placed + timedelta(minutes=2)
    bars = ("time,symbol,open,high,low,close,volume\n"
            f"{_iso(t1)},COIN,100.6,101.5,100.6,101,1000\n"
            f"{_iso(t2)},COIN,100.7,100.8,100.1,100.4,5000\n")
    book.at(_iso(t2 + timedelta(minutes=1))).ok("md", "import", write(tmp_path / "s.csv", bars))
    shown = book.ok("order", "show", stop["order_id"], "--json").json()
    assert (shown["status"], shown["cum_qty"], shown["avg_px"]) == ("filled", "300", "100.8")


def test_risk_limits_take_a_zero_buffer_and_show_exact_seconds(book: Tieout) -> None:
    book.ok("risk", "set", "market-buffer-pct", "0")  # market buys then reserve qty x price
    r = book("risk", "set", "max-price-age-s", "0.0000001")  # would be no time at all
    assert r.code == 3 and "at most 6 decimal places" in r.err
    book.ok("risk", "set", "max-price-age-s", "90.5")
    doc = book.ok("risk", "show", "--json").json()
    assert (doc["market_buffer_pct"], doc["max_price_age_s"], doc["duplicate_window_s"]) == (
        "0", "90.5", "10")


def test_a_buy_must_afford_the_paper_venues_commission(book: Tieout) -> None:
    book.ok("paper", "set", "commission-min", "5")
    book.ok("account", "open", "C5", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C5", "10000")
    args = ("order", "submit", "--account", "C5", "--symbol", "COIN", "--side", "buy", "--type",
            "limit", "--limit", "100", "--json")
    r = book(*args, "--qty", "100")  # 100 x 100 + 5 > 10,000: the cash account would go negative
    assert r.code == 4 and "needs 10005 USD (100 x 100 limit + commission 5)" in r.err
    assert book.ok(*args, "--qty", "99").json()["status"] == "filled"
    assert book.ok("cash", "balance", "C5", "--json").json()["balance"] == "95.00"


def test_a_file_row_naming_an_unknown_account_or_symbol_is_a_bad_value(
    book: Tieout, tmp_path: Path
) -> None:
    f = write(tmp_path / "o.csv", "account,symbol,side,qty\nNOPE,COIN,buy,1\nA1,NOPE,buy,1\n")
    r = book("order", "submit", "--file", f, "--json")
    assert r.code == 3, r.err  # a value of the file that cannot be accepted (was 4, "rejected")
    assert [x["reason"] for x in r.json()["results"]] == [
        "account 'NOPE' not found", "instrument 'NOPE' not found"]


def test_ioc_and_fok_take_only_what_the_last_bar_offers(book: Tieout, tmp_path: Path) -> None:
    """The last bar traded 10,000: at the 10% participation rate 1,000 are there now, for all
    orders together. A fok for 5,000 is canceled whole (both used to fill in full); a fok for
    900 fills, which leaves 100: an ioc for 5,001 fills those and cancels the rest, and the
    next ioc finds nothing (each used to find the whole 1,000 again). A new bar brings a new
    share."""
    now = datetime.now(UTC).replace(microsecond=0)
    bars = f"time,symbol,open,high,low,close,volume\n{_iso(now)},COIN,100,100,100,100,10000\n"
    book.ok("md", "import", write(tmp_path / "v.csv", bars))
    book.ok("cash", "deposit", "A1", "10000000")
    args = ("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--type",
            "limit", "--limit", "101", "--json")
    fok = book.ok(*args, "--qty", "5000", "--tif", "fok").json()
    assert (fok["status"], fok["cum_qty"]) == ("canceled", "0")
    fits = book.ok(*args, "--qty", "900", "--tif", "fok").json()
    assert (fits["status"], fits["cum_qty"]) == ("filled", "900")
    ioc = book.ok(*args, "--qty", "5001", "--tif", "ioc").json()
    assert (ioc["status"], ioc["cum_qty"], ioc["leaves_qty"]) == ("canceled", "100", "0")
    none = book.ok(*args, "--qty", "10", "--tif", "ioc").json()
    assert (none["status"], none["cum_qty"]) == ("canceled", "0")
    history = book.ok("order", "show", none["order_id"], "--json").json()["history"]
    assert "nothing available now" in json.dumps(history)
    later = _iso(now + timedelta(seconds=1))
    book.at(later).ok("md", "import", write(tmp_path / "v2.csv", bars.replace(_iso(now), later)))
    again = book.at(later).ok(*args, "--qty", "5002", "--tif", "ioc").json()
    assert (again["status"], again["cum_qty"]) == ("canceled", "1000")
    # what the first bar gave out was let go when the second was worked: one row left
    engine = create_engine(book.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(paper_bar_takes.c.order_id)).scalars().all()
    finally:
        engine.dispose()
    assert rows == [again["order_id"]]


def test_ioc_orders_of_one_file_share_the_last_bar(book: Tieout, tmp_path: Path) -> None:
    """Two ioc buys of 600 in one file, against a share of 1,000: the first fills 600, the
    second the 400 left; a fok for 1 after them is canceled. As one submission after another
    would give."""
    now = datetime.now(UTC).replace(microsecond=0)
    bars = f"time,symbol,open,high,low,close,volume\n{_iso(now)},COIN,100,100,100,100,10000\n"
    book.ok("md", "import", write(tmp_path / "v.csv", bars))
    book.ok("cash", "deposit", "A1", "10000000")
    rows = "".join(f"A1,COIN,buy,{q},limit,101,{tif},F{n}\n"
                   for n, (q, tif) in enumerate([(600, "ioc"), (601, "ioc"), (1, "fok")]))
    f = write(tmp_path / "o.csv", "account,symbol,side,qty,type,limit,tif,client_order_id\n" + rows)
    book.ok("order", "submit", "--file", f, "--json")
    got = {o["client_order_id"]: (o["status"], o["cum_qty"])
           for o in book.ok("order", "list", "--json").json()}
    assert got == {"F0": ("filled", "600"), "F1": ("canceled", "400"), "F2": ("canceled", "0")}


def test_an_ioc_gets_only_what_resting_orders_left_of_the_bar(
    book: Tieout, tmp_path: Path
) -> None:
    """A resting buy of 300 @ 99 takes the whole share (100) of a bar of 1,000 through 99; an
    ioc right after finds nothing of that bar left."""
    placed = datetime.now(UTC).replace(microsecond=0)
    book.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--type",
            "limit", "--limit", "99", "--tif", "gtc", "--qty", "300")
    t1 = placed + timedelta(minutes=1)
    clock = book.at(_iso(t1 + timedelta(seconds=5)))
    clock.ok("md", "import", write(tmp_path / "b1.csv", "time,symbol,open,high,low,close,volume\n"
                                   f"{_iso(t1)},COIN,99.5,99.5,98.5,99,1000\n"))
    ioc = clock.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                   "--type", "limit", "--limit", "101", "--tif", "ioc", "--qty", "50",
                   "--json").json()
    assert (ioc["status"], ioc["cum_qty"]) == ("canceled", "0")


def test_a_drop_copy_without_trade_date_is_dated_by_its_session(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("instrument", "add", "BHP", "--exchange", "XASX", "--currency", "USD")
    t = book.at("2026-12-02T23:30:00Z")
    order = t.ok("order", "submit", "--account", "A1", "--symbol", "BHP", "--side", "buy",
                 "--qty", "10", "--type", "limit", "--limit", "40", "--venue", "ACME",
                 "--client-order-id", "S1", "--json").json()
    apply(t, tmp_path, "s.fix", report("S1", "S1E0", "0"),
          report("S1", "S1E1", "F", (32, "10"), (31, "40"), (60, "20261202-23:31:00")))
    (fill,) = [e for e in t.ok("exec", "list", "--json").json() if e["order_id"]
               == order["order_id"]]  # fmt: skip
    assert fill["trade_date"] == "2026-12-03"  # Thursday's session, not the UTC Wednesday


def test_resting_orders_share_one_participation_of_a_bar(book: Tieout, tmp_path: Path) -> None:
    """Two resting buys of 300 @ 99 (and 301): a bar of 1,000 through 99 gives the venue 10% =
    100, to the older order (each used to take 100); a bar of 5,000 gives 500: the older's 200,
    then the younger's 300."""
    placed = datetime.now(UTC).replace(microsecond=0)
    args = ("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--type",
            "limit", "--limit", "99", "--tif", "gtc", "--json")
    older = book.ok(*args, "--qty", "300").json()
    younger = book.ok(*args, "--qty", "301").json()  # other terms: not a duplicate order
    t1, t2 = placed + timedelta(minutes=1), placed + timedelta(minutes=2)
    clock = book.at(_iso(t2 + timedelta(minutes=1)))
    clock.ok("md", "import", write(tmp_path / "b1.csv", "time,symbol,open,high,low,close,volume\n"
                                   f"{_iso(t1)},COIN,99.5,99.5,98.5,99,1000\n"))

    def cum(order: dict) -> str:
        return str(book.ok("order", "show", order["order_id"], "--json").json()["cum_qty"])

    assert (cum(older), cum(younger)) == ("100", "0")
    clock.ok("md", "import", write(tmp_path / "b2.csv", "time,symbol,open,high,low,close,volume\n"
                                   f"{_iso(t2)},COIN,99,99,98,98.5,5000\n"))
    assert (cum(older), cum(younger)) == ("300", "300")  # the younger's last 1 waits
