"""PartlyDone's message: what committed, and, when the connection was lost during a commit,
that the transaction it cut may have committed too (never "nothing was changed")."""

from oms.errors import COMMIT_UNKNOWN, PartlyDone


def message(done: str | None, reason: str) -> str:
    return str(PartlyDone("exec apply", done, reason, "Apply the file again.", {}))


def test_a_failure_the_database_answered_names_what_committed() -> None:
    assert message("the messages before line 6 (5 applied)", "deadlock detected") == (
        "exec apply: the database failed (deadlock detected); the messages before line 6 "
        "(5 applied) committed and stay in the book. Apply the file again."
    )
    assert "nothing was changed" in message(None, "deadlock detected")


def test_a_commit_cut_short_may_have_committed() -> None:
    reason = f"server closed the connection unexpectedly ({COMMIT_UNKNOWN})"
    said = message("the messages before line 6 (5 applied)", reason)
    assert "committed and stay in the book, and the one after may have" in said
    assert "nothing was changed" not in message(None, reason)
