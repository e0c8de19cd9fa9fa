"""Through the real command on both backends: `audit verify` also checks the sums tieout keeps
from the record (cash and position running sums, order totals) against the record. A cash sum
changed behind tieout's back (any user of the book's database role can write the table) raised
a cash balance and the buying power the pre-trade check allowed, while the audit trail, which
the change never touched, verified intact."""

from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.cli.test_order_cli import book
from tests.conftest import Tieout, write

__all__ = ["book"]  # the fixture, used by name


def _sql(t: Tieout, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(t.db_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _orders(t: Tieout, tmp_path: Path) -> None:
    """A file of 200 orders (market orders filled, limits resting), then one more order: it
    reads the account's cash and position past the 64 rows after which tieout keeps the sums."""
    rows = "".join(
        f"A1,COIN,{'buy' if i % 3 else 'sell'},{i + 1},{'market' if i % 2 else 'limit'},"
        f"{'' if i % 2 else '95'},gtc\n"
        for i in range(200)
    )
    f = write(tmp_path / "orders.csv", "account,symbol,side,qty,type,limit,tif\n" + rows)
    t("order", "submit", "--file", f)  # (some rows refused by the risk checks: no matter)
    t.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty", "1")


def test_a_clean_book_verifies_with_its_kept_sums(book: Tieout, tmp_path: Path) -> None:
    _orders(book, tmp_path)  # a file keeps the cash and position sums it read
    kinds = _sql(book, "SELECT DISTINCT kind FROM running_sums ORDER BY kind")
    assert kinds == [("cash",), ("position",)], kinds
    r = book("audit", "verify", "--json")
    assert r.code == 0, r.out + r.err
    assert (r.json()["ok"], r.json()["derived_drift"]) == (True, [])


def test_a_kept_sum_changed_behind_tieouts_back_is_found(book: Tieout, tmp_path: Path) -> None:
    _orders(book, tmp_path)
    real = Decimal(book.ok("cash", "balance", "A1", "--json").json()["balance"])
    _sql(
        book,
        "INSERT INTO running_sums (kind, owner, item, through_id, total)"
        " VALUES ('cash', 'A1:cash', 'USD', 0, '5000000') ON CONFLICT (kind, owner, item)"
        " DO UPDATE SET through_id = 0, total = '5000000'",
    )
    balance = Decimal(book.ok("cash", "balance", "A1", "--json").json()["balance"])
    assert balance == real + 5000000  # the balance (and the buying power) read it
    r = book("audit", "verify", "--json")
    assert r.code == 7, r.out
    doc = r.json()
    assert doc["ok"] is True  # the trail itself is intact: the change never touched it
    (drift,) = doc["derived_drift"]
    assert drift == (
        "kept cash sum of A1:cash USD up to row 0: stored 5000000, the record makes 0"
    ), drift
    assert "the record makes" in drift
    text_run = book("audit", "verify")
    assert text_run.code == 7 and "sums kept from the record differ from it (1)" in text_run.err


def test_order_totals_changed_behind_tieouts_back_are_found(book: Tieout, tmp_path: Path) -> None:
    _orders(book, tmp_path)
    _sql(book, "UPDATE order_totals SET open_qty = 0")
    r = book("audit", "verify", "--json")
    assert r.code == 7, r.out
    assert any(d.startswith("order totals of A1 COIN") for d in r.json()["derived_drift"]), r.out
