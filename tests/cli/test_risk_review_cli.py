"""Through the real command on both backends: what a review of the pre-trade checks and the
paper venue found. Limits that would break every order, commission in currencies without
cents, a canceled order re-entered, a cash account paying more than it has at the fill price,
an amend that only lowers risk on a restricted symbol, a gtd order whose last session is over,
lunch breaks, and the next session named when the market is closed."""

from pathlib import Path

from tests.cli.test_order_cli import book, submit
from tests.conftest import Tieout

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
