"""Through the real command on both backends: what a review of the pre-trade checks and the
paper venue found. Limits that would break every order, commission in currencies without
cents, a canceled order re-entered, a cash account paying more than it has at the fill price,
an amend that only lowers risk on a restricted symbol, a gtd order whose last session is over,
lunch breaks, and the next session named when the market is closed."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_order_cli import book, submit
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name


def test_windows_and_ages_past_a_year_are_refused(book: Tieout) -> None:
    """`risk set rate-window-s 100000000000` used to be taken, and every order then failed
    with a traceback (a window reaching before year 1)."""
    for name in ("rate-window-s", "duplicate-window-s", "max-price-age-s"):
        r = book("risk", "set", name, "100000000000")
        assert r.code == 3 and "more than 31,622,400 seconds (366 days)" in r.err, r.err
    book.ok("risk", "set", "rate-window-s", "31622400")  # a year is still a window
    assert submit(book, "--side", "buy", "--qty", "1")["status"] == "filled"


def test_an_order_canceled_and_entered_again_is_not_a_duplicate(book: Tieout) -> None:
    """Cancel, then re-enter the same terms inside the duplicate window: the first order can
    no longer trade, so the second is a new order (it was rejected as a duplicate). A live
    order's double is still refused, and so is a filled one's."""
    args = ("--side", "buy", "--qty", "5", "--type", "limit", "--limit", "95", "--tif", "gtc")
    submit(book, *args, "--client-order-id", "c1")
    book.ok("order", "cancel", "--client-order-id", "c1")
    again = submit(book, *args, "--client-order-id", "c2")
    assert again["status"] == "new", again
    third = book("order", "submit", "--account", "A1", "--symbol", "COIN", *args,
                 "--client-order-id", "c3")
    assert third.code == 4 and "duplicate order" in third.err  # c2 is live
    submit(book, "--side", "buy", "--qty", "7", "--client-order-id", "m1")  # fills
    double = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                  "--qty", "7", "--client-order-id", "m2")
    assert double.code == 4 and "duplicate order" in double.err


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_cash_account_never_pays_more_than_it_has_at_the_fill_price(
    book: Tieout, tmp_path: Path
) -> None:
    """Slippage above the market buffer, or a stop that gaps past its reservation, used to
    take a cash account below zero. The fill is now cut to what the cash pays at the fill
    price (with commission) and the rest of the order canceled, with the figures."""
    book.ok("account", "open", "C1", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C1", "10000")
    book.ok("risk", "set", "market-buffer-pct", "0")
    book.ok("paper", "set", "slippage-bps", "5")  # fills at 100.05
    r = book.ok("order", "submit", "--account", "C1", "--symbol", "COIN", "--side", "buy",
                "--qty", "100", "--json").json()  # 100 x 100 passes; 100 x 100.05 does not
    assert (r["status"], r["cum_qty"], r["avg_px"]) == ("canceled", "99", "100.05"), r
    shown = book.ok("order", "show", r["order_id"], "--json").json()
    assert "cash account: 10000.00 USD available pays for 99 of 100 at 100.05" in (
        shown["history"][-1]["reason"])
    bal = book.ok("cash", "balance", "C1", "--json").json()
    assert bal["balance"] == "95.05"  # 10,000 - 99 x 100.05, never below zero

    book.ok("paper", "set", "slippage-bps", "0")
    book.ok("risk", "set", "market-buffer-pct", "5")
    book.ok("account", "open", "C2", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C2", "100000")
    placed = datetime.now(UTC).replace(microsecond=0)
    stop = book.ok("order", "submit", "--account", "C2", "--symbol", "COIN", "--side", "buy",
                   "--qty", "860", "--type", "stop", "--stop", "110", "--tif", "gtc",
                   "--json").json()  # holds 860 x 110 x 1.05 = 99,330
    t1 = placed + timedelta(minutes=1)
    clock = book.at(_iso(t1 + timedelta(seconds=5)))
    clock.ok("md", "import", write(tmp_path / "gap.csv", "time,symbol,open,high,low,close,volume\n"
                                   f"{_iso(t1)},COIN,124,125,123,124,100000\n"))
    after = book.ok("order", "show", stop["order_id"], "--json").json()
    assert (after["status"], after["cum_qty"], after["avg_px"]) == ("canceled", "806", "124")
    bal = book.ok("cash", "balance", "C2", "--json").json()
    assert (bal["balance"], bal["reserved"]) == ("56", "0")  # 100,000 - 806 x 124
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_an_amend_that_only_reduces_passes_a_restriction(book: Tieout) -> None:
    """Compliance restricts a symbol with an order resting in it: the client may still ask for
    less of the same order (it used to be refused as restricted), not for more nor another
    price."""
    submit(book, "--side", "buy", "--qty", "10", "--type", "limit", "--limit", "95", "--tif",
           "gtc", "--client-order-id", "r0")
    book.ok("instrument", "restrict", "COIN", "--reason", "MNPI")
    down = book.ok("order", "amend", "--client-order-id", "r0", "--qty", "5", "--json").json()
    assert (down["quantity"], down["status"]) == ("5", "new")
    up = book("order", "amend", "--client-order-id", "r0", "--qty", "8")
    assert up.code == 4 and "restricted" in up.err, up.err
    price = book("order", "amend", "--client-order-id", "r0", "--qty", "4", "--limit", "96")
    assert price.code == 4 and "restricted" in price.err
    odd = book("order", "amend", "--client-order-id", "r0", "--qty", "4.5")
    assert odd.code == 4 and "lot" in odd.err, odd.err  # tick and lot still hold


def test_a_gtd_order_whose_last_session_is_over_is_refused(book: Tieout, tmp_path: Path) -> None:
    """At 22:00Z on Tuesday 2026-11-24 the NYSE closed an hour ago: a gtd order expiring that
    day could never trade, and would only have held cash until `order expire-due` (it was
    taken as new). Refused as a bad value (exit 3), nothing recorded; the next day is fine."""
    book.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    late = book.at("2026-11-24T22:00:00Z")
    late.ok("md", "import", write(tmp_path / "a.csv", "time,symbol,open,high,low,close,volume\n"
                                  "2026-11-24T20:55:00Z,AAPL,100,100,100,100,1000\n"))
    args = ("order", "submit", "--account", "A1", "--symbol", "AAPL", "--side", "buy", "--qty",
            "14", "--type", "limit", "--limit", "95", "--tif", "gtd")
    r = late(*args, "--expire-at", "2026-11-24")
    assert r.code == 3 and "the last session it may trade in (XNYS) is over" in r.err, r.err
    assert late.ok("order", "list", "--json").json() == []
    ok = late.ok(*args, "--expire-at", "2026-11-25", "--json").json()
    assert ok["status"] == "new"
    early = book.at("2026-11-24T20:00:00Z")  # the same day, in session: it may still trade
    assert early.ok(*args, "--qty", "15", "--expire-at", "2026-11-24", "--json").json()[
        "status"] == "new"


def test_the_lunch_break_is_closed(book: Tieout, tmp_path: Path) -> None:
    """Tokyo trades 09:00-11:30 and 12:30-15:30 JST (00:00-02:30 and 03:30-06:30 UTC): an
    order at 11:45 JST used to fill, and bars in the break filled resting orders. The break is
    closed now, for the risk check (market_closed, naming the break) and for the paper venue."""
    book.ok("instrument", "add", "7203", "--exchange", "XTKS", "--currency", "JPY",
            "--tick-size", "1", "--lot-size", "100")
    book.ok("account", "open", "J1", "--currency", "JPY", "--type", "margin")
    book.ok("cash", "deposit", "J1", "10000000")
    morning = book.at("2026-11-24T02:20:00Z")
    morning.ok("md", "import", write(tmp_path / "m.csv", "time,symbol,open,high,low,close,volume\n"
                                     "2026-11-24T02:15:00Z,7203,3000,3000,3000,3000,100000\n"))
    sell = ("order", "submit", "--account", "J1", "--symbol", "7203", "--side", "buy", "--qty",
            "100")
    lunch = book.at("2026-11-24T02:45:00Z")
    r = lunch(*sell, "--json")
    assert r.code == 4 and r.json()["risk_codes"][0] == "market_closed", r.out
    assert "is in the lunch break of 7203's session, 2026-11-24T02:30:00" in r.err, r.err
    resting = morning.ok(*sell, "--type", "limit", "--limit", "2990", "--tif", "gtc",
                         "--json").json()
    afternoon = book.at("2026-11-24T03:40:00Z")
    head = "time,symbol,open,high,low,close,volume\n"
    afternoon.ok("md", "import", write(tmp_path / "b.csv", head +
                                       "2026-11-24T02:45:00Z,7203,2980,2985,2975,2980,100000\n"))
    assert afternoon.ok("order", "show", resting["order_id"], "--json").json()["cum_qty"] == "0"
    afternoon.ok("md", "import", write(tmp_path / "c.csv", head +
                                       "2026-11-24T03:35:00Z,7203,2980,2985,2975,2980,100000\n"))
    assert afternoon.ok("order", "show", resting["order_id"], "--json").json()["cum_qty"] == "100"
    assert morning.ok(*sell, "--qty", "200", "--json").json()["status"] == "filled"


def test_a_closed_market_names_the_session_that_opens_next(book: Tieout) -> None:
    """One second before Sydney opens (23:00 UTC the evening before) the message used to name
    the session that had ended 18 hours before."""
    book.ok("instrument", "add", "BHP", "--exchange", "XASX", "--currency", "USD")
    r = book.at("2026-11-24T22:59:59Z")("order", "submit", "--account", "A1", "--symbol",
                                          "BHP", "--side", "buy", "--qty", "1")
    assert r.code == 4
    assert "is before BHP's next session, 2026-11-24T23:00:00" in r.err, r.err


def test_the_notional_cap_is_per_currency(book: Tieout, tmp_path: Path) -> None:
    """One cap of 1,000,000 in every currency refused a yen order worth some 8,000 dollars as a
    fat finger. Yen (and won, rupees) have caps of their own by default, any currency's can be
    set (audited), and `risk show` lists them."""
    book.ok("instrument", "add", "TOYO", "--exchange", "24/7", "--currency", "JPY",
            "--tick-size", "1", "--lot-size", "100")
    book.ok("account", "open", "J1", "--currency", "JPY", "--type", "margin")
    book.ok("cash", "deposit", "J1", "100000000")
    book.ok("md", "import", write(tmp_path / "t.csv", "time,symbol,open,high,low,close,volume\n"
                                  f"{_iso(datetime.now(UTC))},TOYO,3000,3000,3000,3000,100000\n"))
    buy = ("order", "submit", "--account", "J1", "--symbol", "TOYO", "--side", "buy")
    r = book.ok(*buy, "--qty", "400", "--json").json()  # 1,200,000 JPY
    assert r["status"] == "filled", r
    shown = book.ok("risk", "show", "--json").json()
    assert shown["max_notional"] == "1000000"
    assert shown["max_notional_by_currency"]["JPY"] == "150000000"
    book.ok("risk", "set", "max-notional.JPY", "1000000")
    big = book(*buy, "--qty", "500", "--json")
    assert big.code == 4 and big.json()["risk_codes"] == ["max_notional"]
    assert "1500000 JPY exceeds the per-order maximum of 1000000 JPY" in big.err
    bad = book("risk", "set", "max-notional.YENS", "5")
    assert bad.code == 3 and "not an ISO 4217 currency code" in bad.err, bad.err
    book.ok("risk", "set", "max-notional.krw", "5000000")  # the code as ISO writes it
    assert book.ok("risk", "show", "--json").json()["max_notional_by_currency"]["KRW"] == (
        "5000000")
    usd = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
               "--qty", "20000")  # 2,000,000 USD: the base cap still holds
    assert usd.code == 4 and "max notional" in usd.err


def test_a_negative_number_is_a_bad_value_not_an_unknown_option(book: Tieout) -> None:
    """`risk set max-notional -5` and `cash deposit A1 -5` used to be usage errors (exit 2,
    "No such option: -5"): the value's own check now says why it is refused (exit 3). An
    option the command does not have is still a usage error."""
    for args in (("risk", "set", "max-price-age-s", "-1m"), ("cash", "deposit", "A1", "-inf")):
        r = book(*args)
        assert r.code == 3 and "is not a decimal number" in r.err, (args, r.err)
    for args in (("risk", "set", "max-notional", "-5"),
                 ("risk", "set", "tier.standard.max-position", "-1"),
                 ("cash", "deposit", "A1", "-5"),
                 ("cash", "withdraw", "A1", "-5", "--to", "BANK"),
                 ("paper", "set", "commission-bps", "-1"),
                 ("instrument", "settlement", "set", "XNYS", "-1"),
                 ("surveil", "settings", "set", "wash.window-s", "-1"),
                 ("retention", "set", "orders", "-1")):
        r = book(*args)
        assert r.code == 3, (args, r.err)
        assert "-5" in r.err or "-1" in r.err, r.err
        assert "No such option" not in r.err
    for args in (("risk", "set", "max-notional", "5", "--jsn"), ("risk", "set", "--jsn", "5"),
                 ("cash", "deposit", "A1", "--jsn")):
        r = book(*args)
        assert r.code == 2 and "No such option: --jsn" in r.err, (args, r.err)
        assert "Invalid value" not in r.err and "(Possible options: --json)" in r.err, r.err
    # as click words it for a command that parses its own options
    plain = book("cash", "balance", "A1", "--jsn")
    assert plain.code == 2 and "No such option: --jsn (Possible options: --json)" in plain.err
    assert book.ok("cash", "deposit", "A1", "5", "--ref", "-x1", "--json").json()["balance"]
    assert book.ok("risk", "show", "--json").json()["max_notional"] != "5"


def test_an_account_of_a_tier_without_limits_is_refused_at_open(book: Tieout) -> None:
    """It used to open, and every order of it was then refused ("account tier 'vip' has no
    limits configured"): a misspelt tier was found at the first order. Once the tier has its
    limits the account opens and trades."""
    r = book("account", "open", "V1", "--currency", "USD", "--tier", "vip")
    assert r.code == 3, r.err
    assert "tier 'vip' has no risk limits" in r.err
    assert "tieout risk set tier.vip.max-position" in r.err and "standard" in r.err
    assert "V1" not in [a["account"] for a in book.ok("account", "list", "--json").json()]
    book.ok("risk", "set", "tier.vip.max-position", "500")
    book.ok("account", "open", "V1", "--currency", "USD", "--tier", "vip", "--type", "margin")
    book.ok("cash", "deposit", "V1", "100000")
    done = book.ok("order", "submit", "--account", "V1", "--symbol", "COIN", "--side", "buy",
                   "--qty", "5", "--json").json()
    assert done["status"] == "filled", done


def _setting_events(t: Tieout, tmp_path: Path, key: str) -> list[tuple[str | None, str]]:
    out = tmp_path / "audit.jsonl"
    t.ok("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    events = [json.loads(x) for x in out.read_text().splitlines()]
    return [(e["payload"]["from"], e["payload"]["to"]) for e in events
            if e["action"] == "setting.set" and e["entity_id"] == key]


def test_a_limit_is_kept_as_its_canonical_text(book: Tieout, tmp_path: Path) -> None:
    """`risk set max-order-quantity 0005` used to be stored and audited as typed, and `5` then
    `5.000` was audited as a change: the value is stored as `risk show` prints it, and the
    value already set changes nothing."""
    for text in ("0005", "5.000", "5"):
        book.ok("risk", "set", "max-order-quantity", text)
    book.ok("risk", "set", "tier.standard.max-position", "250.50")
    book.ok("risk", "set", "duplicate-window-s", "30.000")
    assert _setting_events(book, tmp_path, "risk.max-order-quantity") == [("50000", "5")]
    assert _setting_events(book, tmp_path, "risk.tier.standard.max-position") == [
        ("100000", "250.5")]
    assert _setting_events(book, tmp_path, "risk.duplicate-window-s") == [("10", "30")]
    shown = book.ok("risk", "show", "--json").json()
    assert (shown["max_order_quantity"], shown["duplicate_window_s"]) == ("5", "30")


def test_a_price_collar_of_100_percent_or_more_is_refused(book: Tieout) -> None:
    for text in ("100", "1000"):
        r = book("risk", "set", "price-collar-pct", text)
        assert r.code == 3 and "not below 100" in r.err, r.err
    book.ok("risk", "set", "price-collar-pct", "99.5")
    assert book.ok("risk", "show", "--json").json()["price_collar_pct"] == "99.5"


def test_risk_show_prints_text_not_python(book: Tieout) -> None:
    book.ok("risk", "kill", "--account", "A1", "--reason", "drill")
    shown = book.ok("risk", "show")
    text = shown.out + shown.err
    assert "{" not in text and "[" not in text, text
    assert "INR 85000000" in text and "standard max_position 100000" in text
    assert "killed_accounts" in text and "A1" in text and "kill_switch (global)       off" in text


def test_a_collar_stored_before_the_bound_still_opens_the_book(book: Tieout) -> None:
    """An earlier tieout took a collar of 150%: the bound is checked when a limit is set, not
    when the limits are read, so the book still trades and the collar can be set again."""
    from oms import book as book_mod
    from oms.book import Ctx
    from oms.store import Store

    store = Store.open(book.db_url)
    try:
        with store.write() as conn:
            book_mod.put_setting(conn, Ctx("old", datetime.now(UTC)), "risk.price-collar-pct",
                                 "150")
    finally:
        store.dispose()
    assert book.ok("risk", "show", "--json").json()["price_collar_pct"] == "150"
    assert submit(book, "--side", "buy", "--qty", "1")["status"] == "filled"
    book.ok("risk", "set", "price-collar-pct", "10")
    assert book.ok("risk", "show", "--json").json()["price_collar_pct"] == "10"


def test_a_limit_keeps_every_digit_given(book: Tieout) -> None:
    """Trailing zeros are dropped from the text, never by arithmetic: 30 digits were rounded
    to 28 (and 999...9.99...9 to a 19-digit 1000...0 that was then refused)."""
    for name, text, kept in (
        ("max-notional", "123456789012345678.123456789012", "123456789012345678.123456789012"),
        ("tier.standard.max-position", "999999999999999999.999999999999",
         "999999999999999999.999999999999"),
        ("max-notional.jpy", "100.0", "100"),
    ):
        r = book.ok("risk", "set", name, text)
        shown = r.out + r.err
        assert f"= {kept}" in shown, shown
    doc = book.ok("risk", "show", "--json").json()
    assert doc["max_notional"] == "123456789012345678.123456789012"
    assert doc["tiers"]["standard"]["max_position"] == "999999999999999999.999999999999"
    assert doc["max_notional_by_currency"]["JPY"] == "100"
    again = book.ok("risk", "set", "max-notional.jpy", "100.0")
    assert "max-notional.JPY = 100" in again.out + again.err


def test_a_kill_names_the_orders_it_leaves_to_the_venue_s_answer(
    book: Tieout, tmp_path: Path
) -> None:
    """An order with a replace (or cancel) open is left to the venue's answer by `risk kill`:
    it said only "0 order(s) canceled", though the order was still working at the venue (an
    audit of risk). It now names them, in the text and in the JSON."""
    from tests.cli.test_order_cli import report

    submit(book, "--side", "buy", "--qty", "10", "--type", "limit", "--limit", "99",
           "--venue", "EXT", "--client-order-id", "P1")  # fmt: skip
    submit(book, "--side", "buy", "--qty", "7", "--type", "limit", "--limit", "98",
           "--venue", "EXT", "--client-order-id", "Q1")  # fmt: skip
    book.ok("exec", "apply", write(tmp_path / "ack.fix", report("P1", "P1E0", "0") + "\n"
                                   + report("Q1", "Q1E0", "0") + "\n"))  # fmt: skip
    book.ok("order", "amend", "--client-order-id", "P1", "--account", "A1", "--qty", "5",
            "--new-client-order-id", "P2")  # fmt: skip
    done = book.ok("risk", "kill", "--account", "A1", "--json").json()
    assert [o["client_order_id"] for o in done["canceled"]] == ["Q1"]
    assert [(o["client_order_id"], o["status"]) for o in done["awaiting_venue"]] == [
        ("P1", "pending_replace")
    ]
    again = book.ok("risk", "kill", "--account", "A1")  # Q1's cancel is open now too
    assert "2 live order(s) with a cancel or replace open" in again.out
    assert "(P1, pending_replace)" in again.out and "(Q1, pending_cancel)" in again.out
    assert "chase those with the venue" in again.out


def test_a_cap_in_a_currency_no_instrument_trades_in_is_pointed_out(book: Tieout) -> None:
    """`risk set max-notional.YEN` (a typo for JPY) was stored without a word, a cap that
    never applies: it is still stored (a cap may be set before the instrument is added), with
    a note naming the currencies the book's instruments trade in. YEN itself is no ISO 4217
    code: refused (tests/cli/test_currency_codes_cli.py)."""
    typo = book("risk", "set", "max-notional.YEN", "5")
    assert typo.code == 3 and "no currency has it" in typo.err, typo.err
    r = book.ok("risk", "set", "max-notional.CHF", "5")
    assert "no instrument of this book trades in CHF yet" in r.err
    assert "instruments trade in USD" in r.err
    usd = book.ok("risk", "set", "max-notional.usd", "2000000")
    assert "note: no instrument" not in usd.err


def test_a_stop_order_needs_a_reference_price(book: Tieout, tmp_path: Path) -> None:
    """A stop order fills at the market once triggered: without a price for its symbol a buy
    stop at 0.01 was sized at 0.01 (a hold of 210 for 20,000), passed the notional cap, and
    filled at 100 for 2,000,000. It now fails closed, as a market order does; a stop-limit
    (its limit bounds what it pays) and a stop once a price is known pass."""
    book.ok("instrument", "add", "NEWCO", "--exchange", "24/7", "--currency", "USD")
    args = ("order", "submit", "--account", "A1", "--symbol", "NEWCO", "--tif", "gtc")
    for side in ("buy", "sell"):
        r = book(*args, "--side", side, "--qty", "20000", "--type", "stop", "--stop", "0.01",
                 "--json")  # fmt: skip
        assert r.code == 4, r.out
        assert r.json()["risk_codes"] == ["no_reference_price"], r.out
        assert "a stop order fills at the market once triggered" in r.err, r.err
    ok = book.ok(*args, "--side", "buy", "--qty", "10", "--type", "stop_limit", "--stop", "1",
                 "--limit", "1.05", "--json").json()  # fmt: skip
    assert ok["status"] == "new"
    # its limit is collared around its stop (where it trades), with or without a reference
    far = book(*args, "--side", "buy", "--qty", "10", "--type", "stop_limit", "--stop", "1",
               "--limit", "1.5", "--json")  # fmt: skip
    assert far.code == 4 and far.json()["risk_codes"] == ["price_collar"], far.out
    assert "outside 10% of the stop price 1 (allowed 0.9 to 1.1)" in far.err, far.err
    at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    book.ok("md", "import", write(tmp_path / "newco.csv", "time,symbol,open,high,low,close,"
                                  f"volume\n{at},NEWCO,100,100,100,100,10000000\n"))  # fmt: skip
    r = book(*args, "--side", "buy", "--qty", "20000", "--type", "stop", "--stop", "0.01",
             "--json")  # fmt: skip
    assert r.code == 4 and "max_notional" in r.json()["risk_codes"], r.out  # sized at 100 now
    ok = book.ok(*args, "--side", "buy", "--qty", "10", "--type", "stop", "--stop", "110",
                 "--json").json()  # fmt: skip
    assert ok["status"] == "new"
