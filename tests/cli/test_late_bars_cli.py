"""Through the real command on both backends: a bar that reached a paper order inside its time
in force but came too late to fill it (after `order expire-due` expired the order, or behind a
later bar an earlier import brought) is named by `md import`, never passed over in silence."""

from pathlib import Path

from tests.cli.test_paper_bars_and_reports_cli import bars, book, show, submit
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name

LIMIT = ("--side", "buy", "--qty", "10", "--type", "limit", "--limit", "98")


def test_a_bar_imported_after_the_expiry_is_named(book: Tieout, tmp_path: Path) -> None:
    """COIN trades 24/7: its day closes at UTC midnight. Expire-due runs at 00:01, then the
    bars of 23:58 (does not reach 98) and 23:59 (does) come in."""
    day = submit(book, *LIMIT, "--tif", "day")
    gtd = submit(book, *LIMIT, "--tif", "gtd", "--expire-at", "2026-11-26")
    gtc = submit(book, *LIMIT, "--tif", "gtc")
    after = book.at("2026-11-27T00:01:00Z")
    expired = after.ok("order", "expire-due", "--json").json()
    assert sorted(o["order_id"] for o in expired) == sorted([day["order_id"], gtd["order_id"]])
    done = bars(
        after.at("2026-11-27T00:02:00Z"),
        tmp_path,
        "late.csv",
        "2026-11-26T23:58:00Z,100,101,99,100,5000",
        "2026-11-26T23:59:00Z,99,99,97,97,5000",
    )
    assert done["paper_orders_filled"] == 1  # the gtc order, as before
    assert show(after, gtc["order_id"])["status"] == "filled"
    assert done["late_bars"] == [
        {
            "order_id": oid,
            "symbol": "COIN",
            "bar_time": "2026-11-26T23:59:00.000000Z",
            "why": "expired",
            "expired_at": "2026-11-27T00:00:00.000000Z",
        }
        for oid in sorted([day["order_id"], gtd["order_id"]])
    ]
    # the orders stay expired: the venue's time only goes forward
    assert show(after, day["order_id"])["status"] == "expired"


def test_the_warning_names_the_order_and_the_bar(book: Tieout, tmp_path: Path) -> None:
    day = submit(book, *LIMIT, "--tif", "day")
    after = book.at("2026-11-27T00:05:00Z")
    after.ok("order", "expire-due")
    f = write(
        tmp_path / "late.csv",
        "time,symbol,open,high,low,close,volume\n2026-11-26T23:59:00Z,COIN,99,99,97,97,5000\n",
    )
    r = after.ok("md", "import", f)
    assert (
        "tieout: warning: the bar of COIN at 2026-11-26T23:59:00.000000Z reached "
        f"{day['order_id']}, which `order expire-due` expired at 2026-11-27T00:00:00.000000Z "
        "before the bar was imported: not filled"
    ) in " ".join(r.err.split())
    assert "reached" not in r.out


def test_bars_that_missed_or_came_after_the_time_in_force_are_not_named(
    book: Tieout, tmp_path: Path
) -> None:
    submit(book, *LIMIT, "--tif", "day")
    after = book.at("2026-11-27T00:01:00Z")
    after.ok("order", "expire-due")
    done = bars(
        after,
        tmp_path,
        "b.csv",
        "2026-11-26T23:59:00Z,100,101,99,100,5000",  # does not reach 98
        "2026-11-27T00:00:00Z,97,97,96,96,5000",  # reaches it, after the order's day
    )
    assert done["late_bars"] == []


def test_an_order_amended_after_the_bar_is_not_named(book: Tieout, tmp_path: Path) -> None:
    """A bar before the order's present terms was never the order's to fill."""
    day = submit(book, *LIMIT, "--tif", "day")
    book.at("2026-11-26T23:00:00Z").ok("order", "amend", day["order_id"], "--qty", "5")
    after = book.at("2026-11-27T00:01:00Z")
    after.ok("order", "expire-due")
    done = bars(after, tmp_path, "b.csv", "2026-11-26T22:59:00Z,97,97,96,96,5000")
    assert done["late_bars"] == []


def test_a_backfilled_bar_that_reached_a_resting_order_is_named(
    book: Tieout, tmp_path: Path
) -> None:
    gtc = submit(book, *LIMIT, "--tif", "gtc")
    t = book.at("2026-11-26T16:00:00Z")
    first = bars(t, tmp_path, "b1.csv", "2026-11-26T15:10:00Z,100,101,99,100,5000")
    assert (first["paper_orders_filled"], first["late_bars"]) == (0, [])
    # history filled in late: older than the bar of 15:10, and through the limit
    late = bars(t, tmp_path, "b2.csv", "2026-11-26T15:05:00Z,99,99,97,97,5000")
    assert late["paper_orders_filled"] == 0
    assert late["late_bars"] == [
        {
            "order_id": gtc["order_id"],
            "symbol": "COIN",
            "bar_time": "2026-11-26T15:05:00.000000Z",
            "why": "backfilled",
            "expired_at": None,
        }
    ]
    assert show(t, gtc["order_id"])["status"] == "new"


def test_a_stop_triggered_after_a_backfilled_bar_is_judged_untriggered_by_it(
    book: Tieout, tmp_path: Path
) -> None:
    """A buy stop at 102 triggers (and fills in part) on the bar of 15:10. A backfilled bar of
    15:05 that never traded through 102 could not have filled it: not named (a re-review saw it
    named, a triggered stop filling at any bar's open). One of 15:08 that did trade through
    the stop is."""
    stop = submit(book, "--side", "buy", "--qty", "100", "--type", "stop", "--stop", "102",
                  "--tif", "gtc")  # fmt: skip
    t = book.at("2026-11-26T16:00:00Z")
    first = bars(t, tmp_path, "b1.csv", "2026-11-26T15:10:00Z,101,103,101,103,20")
    assert first["paper_orders_filled"] == 1
    below = bars(t, tmp_path, "b2.csv", "2026-11-26T15:05:00Z,100,100.5,99.5,100,5000")
    assert below["late_bars"] == []
    through = bars(t, tmp_path, "b3.csv", "2026-11-26T15:08:00Z,101,103,101,102,5000")
    assert [(x["order_id"], x["why"]) for x in through["late_bars"]] == [
        (stop["order_id"], "backfilled")
    ]


HEAD = "time,symbol,open,high,low,close,volume\n"


def _aapl(book: Tieout, tmp_path: Path) -> Tieout:
    """AAPL on the NYSE with a last price of 100, and the CLI at 20:01Z on Tuesday 2026-11-24
    (in session) to place orders with."""
    book.ok("instrument", "add", "AAPL", "--exchange", "XNYS", "--currency", "USD")
    book.ok("md", "import", write(tmp_path / "a0.csv", HEAD
            + "2026-11-24T20:00:00Z,AAPL,100,100,100,100,5000000\n"))  # fmt: skip
    return book.at("2026-11-24T20:01:00Z")


def test_a_bar_outside_the_session_that_reaches_an_order_is_named(
    book: Tieout, tmp_path: Path
) -> None:
    """The paper venue trades only in session, so a daily bar stamped at midnight UTC never
    fills an NYSE order: it used to be passed over without a word (`paper_orders_filled` 0,
    `late_bars` empty). Each order such a bar reached is now named, once an import; a bar in
    session fills it as before."""
    placed = _aapl(book, tmp_path)  # Tuesday, in session
    order = placed.ok("order", "submit", "--account", "A", "--symbol", "AAPL", *LIMIT[:-1],
                      "99", "--tif", "gtc", "--json").json()  # fmt: skip
    night = book.at("2026-11-25T01:00:00Z")
    f = write(tmp_path / "daily.csv", HEAD
              + "2026-11-25T00:00:00Z,AAPL,100,101,95,97,5000000\n"  # a daily bar, at midnight
              + "2026-11-25T00:30:00Z,AAPL,97,97,94,96,5000000\n"  # reaches it again: said once
              + "2026-11-25T00:40:00Z,AAPL,100,101,99.5,100,5000000\n")  # fmt: skip
    r = night.ok("md", "import", f, "--json")
    done = r.json()
    assert done["paper_orders_filled"] == 0
    assert done["late_bars"] == [
        {
            "order_id": order["order_id"],
            "symbol": "AAPL",
            "bar_time": "2026-11-25T00:00:00.000000Z",
            "why": "outside_session",
            "expired_at": None,
        }
    ]
    assert (
        f"the bar of AAPL at 2026-11-25T00:00:00.000000Z reached {order['order_id']} outside "
        "its exchange's session: the paper venue trades only in session, so that bar did not "
        "fill it"
    ) in " ".join(r.err.split())
    assert show(night, order["order_id"])["status"] == "new"
    day = book.at("2026-11-25T15:05:00Z")
    f = write(tmp_path / "in.csv", HEAD + "2026-11-25T15:00:00Z,AAPL,99,99,98,98.5,5000000\n")
    done = day.ok("md", "import", f, "--json").json()
    assert (done["paper_orders_filled"], done["late_bars"]) == (1, [])
    assert show(day, order["order_id"])["status"] == "filled"


def test_extended_hours_bars_are_named_whether_or_not_a_later_bar_fills(
    book: Tieout, tmp_path: Path
) -> None:
    """A pre-market bar that reaches two resting orders names both (once each), whatever the
    bars in session after it do: the same in one file as in one file a bar (a first version
    said nothing when the import also had a bar in session, so how a feed was cut into files
    decided whether the order was named)."""
    placed = _aapl(book, tmp_path)
    args = ("order", "submit", "--account", "A", "--symbol", "AAPL", "--side", "buy", "--qty",
            "10", "--type", "limit", "--tif", "gtc", "--json")  # fmt: skip
    kept = placed.ok(*args, "--limit", "97").json()
    filled = placed.ok(*args, "--limit", "99").json()
    day = book.at("2026-11-25T15:00:00Z")
    f = write(tmp_path / "ext.csv", HEAD
              + "2026-11-25T13:00:00Z,AAPL,99,99,96,98,10000\n"  # pre-market: reaches both
              + "2026-11-25T13:30:00Z,AAPL,98,98,95,96,10000\n"  # again: named once
              + "2026-11-25T14:31:00Z,AAPL,99.5,99.5,98,98.5,5000000\n")  # fills the 99 only
    done = day.ok("md", "import", f, "--json").json()
    assert done["paper_orders_filled"] == 1
    named = sorted((x["order_id"], x["bar_time"], x["why"]) for x in done["late_bars"])
    assert named == sorted(
        (o["order_id"], "2026-11-25T13:00:00.000000Z", "outside_session") for o in (kept, filled)
    )
    assert show(day, filled["order_id"])["status"] == "filled"
    assert show(day, kept["order_id"])["status"] == "new"
