"""Through the real command on both backends: a cancel or replace request's new client order
id is taken at the request (never by another order, never one the account used), and a gtd
order's expire date is the last day it may trade, and an order whose time in force ran out
cannot be amended back into trading."""

from pathlib import Path

from tests.cli.test_exec_apply_review import apply, book, external, shown
from tests.cli.test_order_cli import _audit_actions, fix_line, report
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name


def test_a_new_client_order_id_is_taken_at_the_request(book: Tieout, tmp_path: Path) -> None:
    y1 = external(book, "Y1")
    apply(book, tmp_path, "ack.fix", report("Y1", "Y1E0", "0"))
    r = book("order", "cancel", "--client-order-id", "Y1", "--new-client-order-id", "Y1c",
             "--json")
    assert r.code == 0 and r.json()["status"] == "pending_cancel"
    # the id names Y1's order from now on: a new order with it is refused, not made
    taken = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
                 "--qty", "3", "--type", "limit", "--limit", "99", "--venue", "ACME",
                 "--client-order-id", "Y1c", "--json")
    assert taken.code == 4 and "other terms" in taken.err
    assert shown(book, "Y1c")["order_id"] == y1["order_id"]
    # the venue's cancel (11 = the new id, 41 = the old) lands on Y1's order
    done = apply(book, tmp_path, "cxl.fix",
                 fix_line((35, "8"), (11, "Y1c"), (41, "Y1"), (17, "Y1E1"), (150, "4")))
    assert done.code == 0
    assert (shown(book, "Y1")["status"], shown(book, "Y1")["client_order_id"]) == (
        "canceled", "Y1c")
    assert len(book.ok("order", "list", "--json").json()) == 1


def test_a_replace_may_not_take_another_orders_client_order_id(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "Z1")
    x2 = external(book, "X2", qty="11")  # other terms: not a duplicate order
    apply(book, tmp_path, "ack.fix", report("Z1", "Z1E0", "0"), report("X2", "X2E0", "0"))
    r = book("order", "amend", "--client-order-id", "Z1", "--qty", "6",
             "--new-client-order-id", "X2")
    assert r.code == 4 and f"used it already for order {x2['order_id']}" in r.err
    r = book("order", "amend", "--client-order-id", "Z1", "--qty", "6",
             "--new-client-order-id", "Z1")  # its own current id is not new either
    assert r.code == 4
    assert shown(book, "Z1")["status"] == "new"  # nothing applied
    ok = book.ok("order", "amend", "--client-order-id", "Z1", "--qty", "6",
                 "--new-client-order-id", "Z2", "--json").json()
    assert ok["status"] == "pending_replace"
    refused = [e["payload"]["code"] for e in _audit_actions(book, tmp_path)
               if e["action"] == "order.amend_refused"]
    assert refused == ["duplicate_client_order_id", "duplicate_client_order_id"]


def test_a_gtd_order_expires_at_the_close_of_its_expire_date(book: Tieout) -> None:
    """XNYS: a gtd order for Friday 2026-12-04 expires at that day's close (21:00 UTC); so does
    one for Saturday 2026-12-05 (no session: its last session is Friday's), not at Monday's
    close; one for the Monday after expires at Monday's close."""
    book.ok("instrument", "add", "NYSE1", "--exchange", "XNYS", "--currency", "USD")
    thursday = book.at("2026-12-03T15:00:00Z")

    def gtd(day: str, qty: str) -> dict:
        return thursday.ok("order", "submit", "--account", "A1", "--symbol", "NYSE1", "--side",
                           "buy", "--qty", qty, "--type", "limit", "--limit", "90", "--tif",
                           "gtd", "--expire-at", day, "--json").json()

    friday, saturday = gtd("2026-12-04", "1"), gtd("2026-12-05", "2")
    monday = gtd("2026-12-07", "3")
    assert (friday["status"], saturday["status"]) == ("new", "new")  # no market data: rests

    def expired_at(now: str) -> list[str]:
        return [o["order_id"] for o in book.at(now).ok("order", "expire-due", "--json").json()]

    assert expired_at("2026-12-04T20:59:59Z") == []
    assert expired_at("2026-12-04T21:00:01Z") == [friday["order_id"], saturday["order_id"]]
    assert expired_at("2026-12-07T20:59:59Z") == []
    assert expired_at("2026-12-07T21:00:01Z") == [monday["order_id"]]


def test_a_gtd_order_whose_expire_date_is_past_is_refused(book: Tieout) -> None:
    args = ["order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty",
            "1", "--type", "limit", "--limit", "90", "--tif", "gtd", "--expire-at"]
    now = book.at("2026-12-03T15:00:00Z")
    past = now(*args, "2026-12-02")
    assert past.code == 3 and "expire date 2026-12-02 is before today (2026-12-03" in past.err
    assert book.ok("order", "list", "--json").json() == []  # nothing made
    assert now.ok(*args, "2026-12-03", "--json").json()["status"] == "new"  # today: it may trade


def test_an_order_whose_time_in_force_ran_out_is_not_amended_into_a_fill(
    book: Tieout, tmp_path: Path
) -> None:
    """A paper day order of Monday and a gtd order for Monday, not expired yet (expire-due has
    not run): on Tuesday an amend to a marketable limit used to reprice them and fill them at
    Tuesday's price, an execution the client never authorised. It is refused (exit 4) and
    recorded; the orders are untouched, a cancel still works, and expire-due expires the
    other at Monday's close."""
    book.ok("instrument", "add", "NYSE1", "--exchange", "XNYS", "--currency", "USD")
    monday = book.at("2026-03-09T15:00:00Z")
    bars = "time,symbol,open,high,low,close,volume\n"
    monday.ok("md", "import", write(tmp_path / "mon.csv",
              bars + "2026-03-09T14:59:00Z,NYSE1,100,100,100,100,100000\n"))

    def limit_buy(*tif: str) -> dict:
        return monday.ok("order", "submit", "--account", "A1", "--symbol", "NYSE1", "--side",
                         "buy", "--qty", "10", "--type", "limit", "--limit", "95", *tif,
                         "--json").json()  # fmt: skip

    day, gtd = limit_buy(), limit_buy("--tif", "gtd", "--expire-at", "2026-03-09")
    tuesday = book.at("2026-03-10T15:00:00Z")
    tuesday.ok("md", "import", write(tmp_path / "tue.csv",
               bars + "2026-03-10T14:59:00Z,NYSE1,101,101,101,101,100000\n"))
    for order in (day, gtd):
        r = tuesday("order", "amend", order["order_id"], "--limit", "101")
        assert r.code == 4, r.err
        assert "ran out at 2026-03-09T20:00:00.000000Z" in r.err
        assert tuesday.ok("order", "show", order["order_id"], "--json").json()["status"] == "new"
    assert tuesday.ok("exec", "list", "--json").json() == []
    assert tuesday.ok("order", "cancel", day["order_id"], "--json").json()["status"] == "canceled"
    (expired,) = tuesday.ok("order", "expire-due", "--json").json()
    assert (expired["order_id"], expired["updated_at"]) == (
        gtd["order_id"], "2026-03-09T20:00:00.000000Z")


def test_an_expiry_is_dated_at_the_close_whenever_the_job_runs(
    book: Tieout, tmp_path: Path
) -> None:
    """A day order placed on Friday expires at Friday's close (21:00 UTC in December). Run on
    Monday morning, `expire-due` used to date the expiry Monday, the time the job ran: the
    order's history and `updated_at` now say Friday's close; the audit event is dated when the
    job ran and names the close it applied. An amend after the close is refused: the order
    can no longer trade (an amend used to reprice it and fill it in a later session)."""
    book.ok("instrument", "add", "NYSE1", "--exchange", "XNYS", "--currency", "USD")
    placed = book.at("2026-12-04T15:00:00Z").ok(
        "order", "submit", "--account", "A1", "--symbol", "NYSE1", "--side", "buy", "--qty",
        "1", "--type", "limit", "--limit", "90", "--json",
    ).json()  # fmt: skip
    late = book.at("2026-12-04T21:30:00Z")("order", "amend", placed["order_id"], "--qty", "2")
    assert late.code == 4 and (
        "the order's time in force (day) ran out at 2026-12-04T21:00:00.000000Z" in late.err
    )
    monday = book.at("2026-12-07T13:00:00Z")
    (done,) = monday.ok("order", "expire-due", "--json").json()
    assert (done["order_id"], done["status"]) == (placed["order_id"], "expired")
    assert done["updated_at"] == "2026-12-04T21:00:00.000000Z"
    order = monday.ok("order", "show", placed["order_id"], "--json").json()
    assert order["updated_at"] == "2026-12-04T21:00:00.000000Z"
    assert [(h["status"], h["at"]) for h in order["history"]][-1] == (
        "expired", "2026-12-04T21:00:00.000000Z")
    events = [e for e in _audit_actions(book, tmp_path) if e["action"] == "order.expire"]
    close = "2026-12-04T21:00:00.000000Z"
    assert [(e["at"], e["payload"]["session_close"], e["payload"]["expired_at"])
            for e in events] == [("2026-12-07T13:00:00.000000Z", close, close)]  # fmt: skip
    assert monday.ok("order", "expire-due", "--json").json() == []  # once
    assert monday.ok("audit", "verify", "--json").json()["ok"] is True
