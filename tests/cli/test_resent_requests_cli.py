"""Through the real command on both backends: a cancel or amend sent again with the same new
client order id and the same terms (a script retrying after a timeout, an operator unsure the
first went through) changes nothing and answers with the order as it stands, marked a
duplicate, as a repeated submission is; the same new id with other terms, or for another kind
of request, is still refused (exit 4)."""

from pathlib import Path

from tests.cli.test_exec_apply_review import apply, audit_events, book, external, shown
from tests.cli.test_order_cli import fix_line, report, submit
from tests.conftest import Tieout

__all__ = ["book"]  # the fixture, used by name


def _events(t: Tieout, cl: str) -> list[str]:
    return [
        h["event"]
        for h in t.ok("order", "show", "--client-order-id", cl, "--json").json()["history"]
    ]


def _request(kind: str, cl: str, new_id: str, *more: str) -> tuple[str, ...]:
    """The arguments of `order cancel|amend` of the order with client order id `cl` under the
    new client order id `new_id`."""
    return ("order", kind, "--client-order-id", cl, "--new-client-order-id", new_id, *more)


def test_a_resent_cancel_is_a_duplicate_before_and_after_the_venue_answers(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "Y1")
    apply(book, tmp_path, "ack.fix", report("Y1", "Y1E0", "0"))
    cancel = _request("cancel", "Y1", "Y1c", "--json")
    first = book.ok(*cancel).json()
    assert (first["status"], first["duplicate"]) == ("pending_cancel", False)
    again = book.ok(*cancel).json()
    assert (again["status"], again["duplicate"]) == ("pending_cancel", True)
    assert _events(book, "Y1").count("cancel_requested") == 1
    assert len(audit_events(book, tmp_path, "order.cancel")) == 1
    assert audit_events(book, tmp_path, "order.cancel_refused") == []
    # the venue cancels; the resend, naming the order by its old id, still finds its request
    done = apply(
        book,
        tmp_path,
        "cxl.fix",
        fix_line((35, "8"), (11, "Y1c"), (41, "Y1"), (17, "Y1E1"), (150, "4")),
    )
    assert done.code == 0
    late = book.ok(*cancel).json()
    assert (late["status"], late["client_order_id"], late["duplicate"]) == ("canceled", "Y1c", True)
    text = book.ok(*cancel[:-1])
    assert "duplicate" in text.out and "canceled" in text.out


def test_a_resent_amend_with_other_terms_or_as_a_cancel_is_refused(
    book: Tieout, tmp_path: Path
) -> None:
    external(book, "Z1")
    apply(book, tmp_path, "ack.fix", report("Z1", "Z1E0", "0"))
    amend = _request("amend", "Z1", "Z2", "--qty", "6", "--json")
    assert book.ok(*amend).json()["duplicate"] is False
    same = book(*_request("amend", "Z1", "Z2", "--qty", "6.00", "--json"))
    assert same.code == 0 and same.json()["duplicate"] is True  # 6.00 is 6
    other = book(*_request("amend", "Z1", "Z2", "--qty", "7"))
    assert other.code == 4 and "used it already" in other.err
    repriced = book(*_request("amend", "Z1", "Z2", "--qty", "6", "--limit", "100"))
    assert repriced.code == 4
    as_cancel = book(*_request("cancel", "Z1", "Z2"))
    assert as_cancel.code == 4
    order = shown(book, "Z1")
    assert (order["status"], order["quantity"]) == ("pending_replace", "10")
    assert _events(book, "Z1").count("replace_requested") == 1
    refused = [e["payload"]["code"] for e in audit_events(book, tmp_path, "order.amend_refused")]
    assert refused == ["duplicate_client_order_id", "duplicate_client_order_id"]
    # the venue refuses the replace: a resend is answered with the order as it stands
    apply(
        book,
        tmp_path,
        "rej.fix",
        fix_line((35, "9"), (11, "Z2"), (41, "Z1"), (39, "0"), (434, "2"), (58, "too late")),
    )
    after = book.ok(*amend).json()
    assert (after["status"], after["quantity"], after["duplicate"]) == ("new", "10", True)
    assert _events(book, "Z1").count("replace_requested") == 1


def test_a_resent_paper_amend_changes_nothing_a_second_time(book: Tieout) -> None:
    order = submit(
        book,
        "--side",
        "buy",
        "--qty",
        "10",
        "--type",
        "limit",
        "--limit",
        "90",
        "--client-order-id",
        "P1",
    )
    assert order["status"] == "new"
    amend = (
        "order",
        "amend",
        order["order_id"],
        "--qty",
        "12",
        "--limit",
        "95",
        "--new-client-order-id",
        "P2",
        "--json",
    )
    first = book.ok(*amend).json()
    assert (first["quantity"], first["limit_price"], first["duplicate"]) == ("12", "95", False)
    again = book.ok(*amend).json()
    assert (again["quantity"], again["limit_price"], again["duplicate"]) == ("12", "95", True)
    assert again["updated_at"] == first["updated_at"]
    assert _events(book, "P2").count("replace_requested") == 1
    # without a new client order id, a second request is a second request
    assert (
        book.ok("order", "amend", order["order_id"], "--qty", "13", "--json").json()["duplicate"]
        is False
    )
