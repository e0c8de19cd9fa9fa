"""Through the real command on both backends: the dates of a correction (ExecType G) or bust (H)
are the execution's, not the report's. A correction's TransactTime is when the venue changed
the execution: a SettlDate it restates is checked against the execution's trade date (it was
checked against the correction's own date, so a correction or bust sent after the settlement
date was refused, and a busted trade stayed in the book). A correction that restates neither
TradeDate nor SettlDate, or the same TradeDate, keeps the settlement date the venue stated
(it was reset to the calendar's)."""

from pathlib import Path

from tests.cli.test_exec_apply_review import apply, book, executions, external
from tests.cli.test_order_cli import report
from tests.conftest import Tieout

__all__ = ["book"]  # the fixture, used by name


def _position(t: Tieout) -> str:
    rows = t.ok("positions", "--account", "A1", "--json").json()
    return str(rows[0]["quantity"]) if rows else "0"


def test_a_correction_or_bust_sent_after_the_settlement_date_is_applied(
    book: Tieout, tmp_path: Path
) -> None:
    external(book.at("2026-11-24T14:00:00Z"), "X1", qty="100")
    filled = report("X1", "s1", "F", (32, "100"), (31, "100"), (60, "20261124-14:30:00"),
                    (75, "20261124"), (64, "20261125"))  # fmt: skip
    t = book.at("2026-11-24T15:00:00Z")
    assert apply(t, tmp_path, "fill.fix", report("X1", "X1E0", "0"), filled).code == 0
    later = book.at("2026-11-26T15:00:00Z")
    fixed = report("X1", "c1", "G", (19, "s1"), (32, "100"), (31, "100.5"),
                   (60, "20261126-14:00:00"), (64, "20261125"))  # fmt: skip
    r = apply(later, tmp_path, "corr.fix", fixed)
    assert r.code == 0, r.err
    ex = executions(book)
    assert (ex["c1"]["trade_date"], ex["c1"]["settle_date"]) == ("2026-11-24", "2026-11-25")
    busted = report("X1", "b1", "H", (19, "c1"), (32, "100"), (31, "100.5"),
                    (60, "20261126-14:05:00"), (64, "20261125"))  # fmt: skip
    r = apply(later, tmp_path, "bust.fix", busted)
    assert r.code == 0, r.err
    assert _position(book) == "0"
    # a restated SettlDate before the execution's trade date is still refused
    external(book.at("2026-11-24T14:00:00Z"), "X2", qty="10")
    fill2 = report("X2", "s2", "F", (32, "10"), (31, "100"), (60, "20261124-14:30:00"))
    assert apply(t, tmp_path, "f2.fix", report("X2", "X2E0", "0"), fill2).code == 0
    early = report("X2", "c2", "G", (19, "s2"), (32, "10"), (31, "99"),
                   (60, "20261126-14:00:00"), (64, "20261123"))  # fmt: skip
    r = apply(later, tmp_path, "early.fix", early)
    assert r.code == 3 and "before the trade date 2026-11-24" in r.err


def test_a_price_correction_keeps_the_settlement_date_the_venue_stated(
    book: Tieout, tmp_path: Path
) -> None:
    external(book.at("2026-11-24T14:00:00Z"), "X1", qty="100")
    t = book.at("2026-11-24T15:00:00Z")
    filled = report("X1", "s1", "F", (32, "100"), (31, "100"), (60, "20261124-14:30:00"),
                    (75, "20261124"), (64, "20261130"))  # fmt: skip
    assert apply(t, tmp_path, "fill.fix", report("X1", "X1E0", "0"), filled).code == 0
    same_day = report("X1", "c1", "G", (19, "s1"), (32, "100"), (31, "100.05"), (75, "20261124"))
    none = report("X1", "c2", "G", (19, "c1"), (32, "100"), (31, "100.1"))
    assert apply(t, tmp_path, "corr.fix", same_day, none).code == 0
    ex = executions(book)
    assert ex["c1"]["settle_date"] == "2026-11-30" and ex["c2"]["settle_date"] == "2026-11-30"
    cash = book.ok("cash", "balance", "A1", "--json").json()
    assert cash["balance"] == "89990.00"  # 100 x 100.1
