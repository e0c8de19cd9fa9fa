"""One error hierarchy. Each class carries the contract's exit code and builds its message from
typed fields. Expected data problems inside a file (a bad row, a break) are values, collected
and reported (see RowError); an exception is raised only when a command as a whole cannot go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import migrations


class TieoutError(Exception):
    """Root of every error tieout raises on purpose. Exit code 1: unexpected failure."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# the mark a restore that failed its verification leaves on the schema revision (oms.backup):
# every command, `tieout init` too, then refuses the database
UNVERIFIED = "-unverified"


class DatabaseNotReady(TieoutError):
    """The database is missing, unreachable, uninitialised or behind the code's schema."""

    exit_code = 1

    def __init__(self, url: str, current: str | None, head: str | None) -> None:
        self.url, self.current, self.head = url, current, head
        if current is not None and current.endswith(UNVERIFIED):
            super().__init__(
                f"database {url} holds a restore that did not verify (`backup restore` exit 7): "
                "do not use it; drop it and restore a good backup"
            )
            return
        if current is None:
            why = "has no tieout schema"
        elif not migrations.known(current):
            newer = migrations.newer(current)
            super().__init__(
                f"database {url} is at schema revision {current}, which this tieout (schema "
                f"{head}) does not know: "
                + (
                    "a newer tieout upgraded it; use that version or a later one (`tieout "
                    "init` cannot take a schema back)"
                    if newer
                    else "it is not one of tieout's revisions; restore a backup of the book"
                )
            )
            return
        else:
            why = f"is at schema revision {current}, this tieout needs {head}"
        super().__init__(f"database {url} {why}; run `tieout init --db {url}` first")

    def with_reason(self, reason: str) -> DatabaseNotReady:
        self.message = f"cannot connect to database {self.url}: {reason.strip()}"
        self.args = (self.message,)
        return self


class BadInput(TieoutError):
    """A file or value that cannot be accepted (exit 3)."""

    exit_code = 3

    def __init__(self, what: str, why: str, where: str | None = None) -> None:
        self.what, self.why, self.where = what, why, where
        place = f" ({where})" if where else ""
        super().__init__(f"{what}{place}: {why}")


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one row of an input file: a value, never raised on its own."""

    line: int | None  # physical line in the file, header = line 1; None for file-level problems
    field: str | None
    value: str | None
    reason: str

    def describe(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        fld = f", {self.field}" if self.field else ""
        val = f" {self.value!r}" if self.value is not None else ""
        return f"{where}{fld}:{val} {self.reason}".replace(":  ", ": ")


class BadFile(BadInput):
    """A file refused as a whole, with every row error found (exit 3)."""

    def __init__(
        self,
        path: str,
        errors: Sequence[RowError],
        *,
        limit: int = 50,
        verdict: str = "refused, nothing was written",
    ) -> None:
        self.path, self.errors = path, tuple(errors)
        shown = "\n".join("  " + e.describe() for e in self.errors[:limit])
        more = len(self.errors) - limit
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            what=path,
            why=f"{verdict} ({len(self.errors)} problem(s)):\n{shown}{tail}",
        )


class Refused(TieoutError):
    """Refused by a business rule: risk, illegal transition, permission, four-eyes (exit 4)."""

    exit_code = 4

    def __init__(self, action: str, reason: str, code: str = "refused") -> None:
        self.action, self.reason, self.code = action, reason, code
        super().__init__(f"{action} refused: {reason}")


class NotFound(TieoutError):
    """A named thing does not exist (exit 5)."""

    exit_code = 5

    def __init__(self, kind: str, key: str) -> None:
        self.kind, self.key = kind, key
        super().__init__(f"{kind} {key!r} not found")


class AlreadyExists(Refused):
    """Creating something that exists already with other terms (exit 4)."""

    def __init__(self, kind: str, key: str, differs: str | None = None) -> None:
        reason = f"{kind} {key!r} exists already"
        if differs:
            reason += f" with other terms: {differs}"
        super().__init__(f"create {kind} {key!r}", reason, "exists")


class VerificationFailed(TieoutError):
    """A verification found a problem (exit 7)."""

    exit_code = 7


# what a database error's reason adds when a connection was lost during a COMMIT (the server
# may have committed it: store.commit_unknown)
COMMIT_UNKNOWN = (
    "the connection was lost during the commit: whether that transaction committed is unknown"
)


class OutputFailed(TieoutError):
    """A file could not be written where it was asked for (a full disk, an I/O error): exit 1,
    the environment's failure, not the input's. Whatever was already at the path is as it
    was; `kept` says what else the command left as it was."""

    exit_code = 1

    def __init__(self, path: str, reason: str, kept: str = "") -> None:
        self.path, self.reason = path, reason
        tail = f"; {kept}" if kept else ""
        super().__init__(
            f"{path}: cannot be written: {reason}; nothing was written there (a file already "
            f"there is as it was){tail}"
        )


class PartlyDone(TieoutError):
    """A command of many transactions (a file's groups of orders, a drop copy's messages) that
    the database failed part way through (exit 1), or that an interrupt (Ctrl-C, SIGTERM:
    `interrupted`, which the command line ends with 130 or 143) or an unexpected error stopped:
    what committed before stays, so "nothing was changed" would be false. Says how far it got
    and what to do; `summary` is the JSON of what committed, for --json."""

    exit_code = 1

    def __init__(
        self,
        what: str,
        done: str | None,
        reason: str,
        advice: str,
        summary: object,
        *,
        interrupted: bool = False,
        database: bool = True,
    ) -> None:
        self.what, self.done, self.reason, self.advice = what, done, reason, advice
        self.summary, self.interrupted = summary, interrupted
        kept = (
            f"{done} committed and stay in the book" if done is not None else "nothing was changed"
        )
        if database and COMMIT_UNKNOWN in reason:  # the last transaction may have committed too
            kept = (
                f"{done} committed and stay in the book, and the one after may have"
                if done is not None
                else "nothing before the transaction it cut was changed"
            )
        cause = (
            "interrupted"
            if interrupted
            else f"the database failed ({reason.strip()})"
            if database
            else f"stopped by an unexpected error ({reason.strip()})"
        )
        super().__init__(f"{what}: {cause}; {kept}. {advice}")


class WorkerEnded(TieoutError):
    """A worker process of a batch (documents on every core) ended before its chunk was done:
    killed, or out of memory (exit 1). What was written before stays; the batch may be run
    again."""

    exit_code = 1

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(
            f"{what}: a worker process ended before its work was done (killed, or out of "
            "memory?); the documents written so far stay, the rest were not written: run it "
            "again"
        )
