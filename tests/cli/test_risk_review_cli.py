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
