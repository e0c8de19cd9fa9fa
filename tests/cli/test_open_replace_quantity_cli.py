"""Through the real command on both backends: an order with a replace the venue has not
answered may still trade either way, so the pre-trade checks count the larger of its leaves
and the replace's. The cash held did; the open quantity kept in order_totals counted the
leaves only, so an amend up let a cash account sell short and a buy pass the position limit.
"""

from pathlib import Path

from tests.cli.test_exec_apply_review import apply, book
from tests.cli.test_order_cli import report
from tests.conftest import Tieout

__all__ = ["book"]  # the fixture, used by name


def _order(t: Tieout, account: str, *args: str) -> dict:
    doc: dict = t.ok("order", "submit", "--account", account, "--symbol", "COIN", *args,
                     "--json").json()  # fmt: skip
    return doc


def _amended_up(t: Tieout, tmp_path: Path, account: str, side: str, qty: str, up: str) -> None:
    """An order of `qty` at the venue ACME, acknowledged, then amended up to `up` (pending)."""
    _order(t, account, "--side", side, "--qty", qty, "--type", "limit", "--limit", "100",
           "--venue", "ACME", "--client-order-id", f"{account}-1")  # fmt: skip
    assert apply(t, tmp_path, "ack.fix", report(f"{account}-1", f"{account}-E0", "0")).code == 0
    amended = t.ok("order", "amend", "--client-order-id", f"{account}-1", "--qty", up,
                   "--new-client-order-id", f"{account}-2", "--json").json()  # fmt: skip
    assert (amended["status"], amended["leaves_qty"]) == ("pending_replace", qty), amended


def test_a_cash_account_cannot_sell_what_an_open_replace_may_sell(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("account", "open", "C1", "--currency", "USD", "--type", "cash")
    book.ok("cash", "deposit", "C1", "100000")
    assert _order(book, "C1", "--side", "buy", "--qty", "100")["status"] == "filled"
    _amended_up(book, tmp_path, "C1", "sell", "50", "100")  # may sell all 100 held
    r = book("order", "submit", "--account", "C1", "--symbol", "COIN", "--side", "sell",
             "--qty", "50", "--type", "limit", "--limit", "105", "--json")  # fmt: skip
    assert r.code == 4, r.out
    assert "short_sale_cash_account" in r.json()["risk_codes"], r.out
    # the venue rejects the amend: 50 may be sold again
    rejected = apply(book, tmp_path, "rej.fix", "35=9|11=C1-2|41=C1-1|434=2|39=0|58=no")
    assert rejected.code == 0, rejected.err
    again = _order(book, "C1", "--side", "sell", "--qty", "50", "--type", "limit", "--limit",
                   "105")  # fmt: skip
    assert again["status"] == "new", again


def test_a_buy_cannot_pass_the_position_limit_beside_an_open_replace(
    book: Tieout, tmp_path: Path
) -> None:
    book.ok("risk", "set", "tier.standard.max-position", "1000")
    _amended_up(book, tmp_path, "A1", "buy", "500", "1000")
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "500", "--type", "limit", "--limit", "99", "--json")  # fmt: skip
    assert r.code == 4, r.out
    assert "position_limit" in r.json()["risk_codes"], r.out
    # the venue accepts it: 1000 open, as counted
    ok = apply(book, tmp_path, "rpl.fix", report("A1-2", "A1-E1", "5", (41, "A1-1"), (38, "1000")))
    assert ok.code == 0, ok.err
    r = book("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", "1", "--type", "limit", "--limit", "99", "--json")  # fmt: skip
    assert r.code == 4 and "position_limit" in r.json()["risk_codes"], r.out
    assert book.ok("audit", "verify", "--json").json()["ok"] is True
