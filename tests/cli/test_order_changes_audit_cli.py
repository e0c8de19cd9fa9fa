"""Cancels, amends, `order list --stuck` and `positions` through the real command on both
backends: what an audit of the order lifecycle after submission found (session 17). An order id
named with another account's --account was changed anyway; a cancel under a clock behind the
order's last change was recorded before it; a rename-only amend of an order in a symbol
restricted since was refused; a refused cancel by an ambiguous client order id was audited under
"None/L1"; --stuck-minutes without --stuck listed every order; a venue's replace repeating the
limit was described as a change of it; the positions table ran its figures together."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.cli.test_exec_apply_audit_cli import _placed
from tests.cli.test_exec_apply_review import apply, book, shown
from tests.cli.test_order_cli import report
from tests.conftest import Tieout

__all__ = ["book"]  # the fixture, for pytest


def _limit(t: Tieout, cl: str, account: str = "A1", qty: str = "10") -> dict[str, Any]:
    doc: dict[str, Any] = t.ok(
        "order", "submit", "--account", account, "--symbol", "COIN", "--side", "buy", "--qty",
        qty, "--type", "limit", "--limit", "95", "--tif", "gtc", "--client-order-id", cl,
        "--json",
    ).json()  # fmt: skip
    return doc


def _audit(t: Tieout, tmp_path: Path) -> list[dict[str, Any]]:
    today = datetime.now(UTC).date()
    out = tmp_path / "audit.jsonl"
    t.ok("audit", "export", "--from", (today - timedelta(days=1)).isoformat(),
         "--to", (today + timedelta(days=1)).isoformat(), "--out", str(out))  # fmt: skip
    return [json.loads(x) for x in out.read_text().splitlines()]


def test_an_order_id_with_another_account_is_not_found_and_changes_nothing(
    book: Tieout,
) -> None:
    t = book
    t.ok("account", "open", "B2", "--currency", "USD", "--type", "margin")
    order_id = _limit(t, "G1")["order_id"]
    for args in (("amend", order_id, "--qty", "5"), ("cancel", order_id), ("show", order_id)):
        r = t("order", *args, "--account", "B2")
        assert r.code == 5, (args, r.err)
        assert f"order {order_id} in account 'B2' not found" in r.err
    s = shown(t, "G1")
    assert (s["status"], s["quantity"]) == ("new", "10")
    # its own account finds it
    t.ok("order", "amend", order_id, "--account", "A1", "--qty", "5")
    assert shown(t, "G1")["quantity"] == "5"


def test_a_request_under_a_clock_behind_the_order_s_last_change_is_refused(
    book: Tieout,
) -> None:
    t = book
    now = datetime.now(UTC)
    ahead = t.at((now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _placed(ahead, "E1")  # an external order placed a minute from now
    for args in (("cancel",), ("amend", "--qty", "5")):
        r = t("order", *args, "--client-order-id", "E1", "--account", "A1")
        assert r.code == 4, r.err
        assert "before the order's last change" in r.err and "check this machine's clock" in r.err
    s = shown(t, "E1")
    assert s["status"] == "pending_new" and len(s["history"]) == 1
    later = t.at((now + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    later.ok("order", "cancel", "--client-order-id", "E1", "--account", "A1")
    assert shown(t, "E1")["status"] == "pending_cancel"


def test_a_rename_only_amend_passes_a_restriction_made_since(book: Tieout) -> None:
    t = book
    _limit(t, "R1")
    t.ok("instrument", "restrict", "COIN")
    r = t("order", "amend", "--client-order-id", "R1", "--account", "A1", "--qty", "10",
          "--new-client-order-id", "R2", "--json")  # fmt: skip
    assert r.code == 0, r.err
    assert (shown(t, "R2")["status"], shown(t, "R2")["quantity"]) == ("new", "10")
    # more of it is still refused
    up = t("order", "amend", "--client-order-id", "R2", "--account", "A1", "--qty", "11")
    assert up.code == 4 and "restricted" in up.err


def test_a_refused_cancel_by_an_ambiguous_client_order_id_is_audited_under_the_id(
    book: Tieout, tmp_path: Path
) -> None:
    t = book
    t.ok("account", "open", "B2", "--currency", "USD", "--type", "margin")
    t.ok("cash", "deposit", "B2", "10000")
    _limit(t, "L1")
    _limit(t, "L1", account="B2")
    r = t("order", "cancel", "--client-order-id", "L1")
    assert r.code == 3, r.err
    (refused,) = [e for e in _audit(t, tmp_path) if e["action"] == "order.cancel_refused"]
    assert refused["entity_id"] == "L1"


def test_stuck_minutes_without_stuck_is_a_usage_error(book: Tieout) -> None:
    r = book("order", "list", "--stuck-minutes", "30")
    assert r.code == 2 and "--stuck-minutes goes with --stuck" in r.err
    assert book.ok("order", "list", "--stuck", "--stuck-minutes", "0", "--json").json() == []


def test_a_venue_s_replace_names_only_the_terms_it_changes(book: Tieout, tmp_path: Path) -> None:
    t = book
    _placed(t, "V1", qty="100")  # limit 101
    assert apply(t, tmp_path, "a.fix", report("V1", "V1E0", "0")).code == 0
    t.ok("order", "amend", "--client-order-id", "V1", "--account", "A1", "--qty", "50",
         "--new-client-order-id", "V2")  # fmt: skip
    r = apply(t, tmp_path, "b.fix", report("V2", "V1E1", "5", (41, "V1"), (38, "50"), (44, "101")))
    assert r.code == 0, r.err
    reason = shown(t, "V2")["history"][-1]["reason"]
    assert "quantity 100 -> 50" in reason and "limit" not in reason


def test_the_positions_table_keeps_its_figures_apart(book: Tieout, tmp_path: Path) -> None:
    t = book
    for qty in ("1", "2"):
        t.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy",
             "--qty", qty)  # fmt: skip
    bars = (
        "time,symbol,open,high,low,close,volume\n"
        f"{(datetime.now(UTC) - timedelta(seconds=20)).strftime('%Y-%m-%dT%H:%M:%SZ')},"
        "COIN,101,101,101,101,5000\n"
    )
    (tmp_path / "b2.csv").write_text(bars)
    t.ok("md", "import", str(tmp_path / "b2.csv"))
    t.ok("order", "submit", "--account", "A1", "--symbol", "COIN", "--side", "buy", "--qty", "3")
    (pos,) = t.ok("positions", "--account", "A1", "--json").json()
    head, row = t.ok("positions", "--account", "A1").out.splitlines()
    assert head.split() == [
        "symbol", "ccy", "quantity", "avg_cost", "market", "unrealized", "realized"
    ]  # fmt: skip
    assert row.split() == [
        "COIN",
        "USD",
        pos["quantity"],
        pos["avg_cost"],
        pos["market_price"],
        pos["unrealized_pnl"],
        pos["realized_pnl"],
    ]
    assert pos["quantity"] == "6" and len(pos["avg_cost"]) > 10  # 100.5 a share, in 12 places
    assert pos["currency"] == "USD"  # the instrument's: an account may trade in several
