"""Through the real command on both backends: a cancel chained behind a replace the venue has
not answered (FIX 4.4 lets a client send one; the order shows pending_cancel over
pending_replace). The venue answers the replace, then the cancel, or rejects either; each
answer lands on the request it names, and the order is never left with a request unanswered
or answered twice."""

from pathlib import Path
from typing import Any

from tests.cli.test_exec_apply_review import apply, book, external, shown
from tests.cli.test_order_cli import fix_line, report
from tests.conftest import Tieout

__all__ = ["book"]  # the fixture, used by name


def chained(t: Tieout, tmp_path: Path) -> dict[str, Any]:
    """X1: 10 at 101, acknowledged; amended to 8 (as X2), then canceled (as X3) before the
    venue answers the amend."""
    external(t, "X1")
    apply(t, tmp_path, "ack.fix", report("X1", "E0", "0"))
    amended = t.ok("order", "amend", "--client-order-id", "X1", "--qty", "8",
                   "--new-client-order-id", "X2", "--json").json()  # fmt: skip
    assert amended["status"] == "pending_replace"
    doc: dict[str, Any] = t.ok("order", "cancel", "--client-order-id", "X1",
                               "--new-client-order-id", "X3", "--json").json()  # fmt: skip
    return doc


def reserved(t: Tieout) -> str:
    return str(t.ok("cash", "balance", "A1", "--json").json()["reserved"])


def test_the_replace_then_the_cancel(book: Tieout, tmp_path: Path) -> None:
    doc = chained(book, tmp_path)
    assert (doc["status"], doc["quantity"], doc["client_order_id"]) == (
        "pending_cancel",
        "10",
        "X1",
    )
    assert reserved(book) == "1010"  # the larger of the order as it is and as amended
    # the venue fills 2 meanwhile: both requests stay open
    r = apply(book, tmp_path, "fill.fix", report("X1", "E1", "F", (32, "2"), (31, "100")))
    assert r.code == 0
    assert (shown(book, "X1")["status"], shown(book, "X1")["cum_qty"]) == ("pending_cancel", "2")
    r = apply(book, tmp_path, "rpl.fix", report("X2", "E2", "5", (41, "X1"), (38, "8")))
    assert r.code == 0, r.err
    after = shown(book, "X2")
    assert (after["status"], after["quantity"], after["leaves_qty"]) == ("pending_cancel", "8", "6")
    assert reserved(book) == "606"  # 6 left at 101
    r = apply(book, tmp_path, "cxl.fix", report("X3", "E3", "4", (41, "X2")))
    assert r.code == 0, r.err
    done = shown(book, "X3")
    assert (done["status"], done["cum_qty"], done["leaves_qty"]) == ("canceled", "2", "0")
    assert reserved(book) == "0"
    events = [h["status"] for h in done["history"]]
    assert events[-4:] == ["pending_cancel", "pending_cancel", "pending_cancel", "canceled"]
    assert book.ok("audit", "verify", "--json").json()["ok"] is True


def test_the_cancel_rejected_leaves_the_replace_open(book: Tieout, tmp_path: Path) -> None:
    chained(book, tmp_path)
    r = apply(book, tmp_path, "rej.fix",
              fix_line((35, "9"), (11, "X3"), (41, "X1"), (434, "1"), (39, "0")))  # fmt: skip
    assert r.code == 0, r.err
    assert shown(book, "X1")["status"] == "pending_replace"
    r = apply(book, tmp_path, "rpl.fix", report("X2", "E2", "5", (41, "X1"), (38, "8")))
    assert r.code == 0, r.err
    after = shown(book, "X2")
    assert (after["status"], after["quantity"]) == ("new", "8")


def test_the_replace_rejected_leaves_the_cancel_open(book: Tieout, tmp_path: Path) -> None:
    chained(book, tmp_path)
    r = apply(book, tmp_path, "rej.fix",
              fix_line((35, "9"), (11, "X2"), (41, "X1"), (434, "2"), (39, "0")))  # fmt: skip
    assert r.code == 0, r.err
    assert (shown(book, "X1")["status"], shown(book, "X1")["quantity"]) == ("pending_cancel", "10")
    r = apply(book, tmp_path, "cxl.fix", report("X3", "E3", "4", (41, "X1")))
    assert r.code == 0, r.err
    assert (shown(book, "X3")["status"], shown(book, "X3")["quantity"]) == ("canceled", "10")


def test_an_answer_naming_the_other_request_is_refused(book: Tieout, tmp_path: Path) -> None:
    """A cancel reject that names the replace's id (X2), or a replace accept that names the
    cancel's (X3), answers neither request: refused, the order unchanged."""
    chained(book, tmp_path)
    r = apply(book, tmp_path, "bad.fix",
              fix_line((35, "9"), (11, "X2"), (41, "X1"), (434, "1"), (39, "0")),
              report("X3", "E2", "5", (41, "X1"), (38, "8")))  # fmt: skip
    assert r.code == 3
    assert "names order" in r.err and "open replace request" in r.err
    assert "X3 is not the open request" in r.err
    after = shown(book, "X1")
    assert (after["status"], after["quantity"]) == ("pending_cancel", "10")


def test_the_chained_order_waits_since_the_replace(book: Tieout, tmp_path: Path) -> None:
    early = book.at("2026-11-26T15:00:00Z")
    external(early, "X1")
    apply(early, tmp_path, "ack.fix", report("X1", "E0", "0"))
    early.ok("order", "amend", "--client-order-id", "X1", "--qty", "8")
    book.at("2026-11-26T15:20:00Z").ok(
        "order", "cancel", "--client-order-id", "X1", "--new-client-order-id", "X3"
    )
    stuck = book.at("2026-11-26T15:25:00Z").ok("order", "list", "--stuck", "--json").json()
    assert [(o["status"], o["waiting_since"]) for o in stuck] == [
        ("pending_cancel", "2026-11-26T15:00:00.000000Z")
    ]


def test_a_cancel_without_an_id_of_its_own_is_not_chained(book: Tieout, tmp_path: Path) -> None:
    """The venue would name it by the order's name (X1), which the replace's acceptance changes
    to X2: a cancel reject naming X1 then read as a repeat of an answered request and was
    skipped, leaving the order pending_cancel for an answer that had come (a re-review). Such a
    cancel is refused instead, and the kill switch leaves the order to the replace's answer."""
    external(book, "X1")
    apply(book, tmp_path, "ack.fix", report("X1", "E0", "0"))
    book.ok("order", "amend", "--client-order-id", "X1", "--qty", "8",
            "--new-client-order-id", "X2")  # fmt: skip
    r = book("order", "cancel", "--client-order-id", "X1")
    assert r.code == 4 and "needs a client order id of its own" in r.err
    killed = book.ok("risk", "kill", "--json").json()
    assert killed["canceled"] == []
    assert [o["status"] for o in killed["awaiting_venue"]] == ["pending_replace"]
    assert shown(book, "X1")["status"] == "pending_replace"
