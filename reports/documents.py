"""A report as a file: JSON (the data), HTML or PDF (the document), written atomically."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, TypeVar

from oms.errors import BadInput, OutputFailed
from reports import render
from reports.confirmations import Confirmation
from reports.exceptions import ExceptionReport
from reports.statement import Statement

FORMATS = ("html", "pdf", "json")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Written:
    path: str
    format: str
    pages: int | None  # PDF only
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"file": self.path, "format": self.format, "pages": self.pages, "bytes": self.size}


def check_format(value: str, allowed: tuple[str, ...] = FORMATS) -> str:
    fmt = value.strip().lower()
    if fmt not in allowed:
        raise BadInput("--format", f"{value!r} is not one of {', '.join(allowed)}")
    return fmt


def statement_html(
    s: Statement, *, pdf: bool = False, part: Part | None = None, unnumbered: bool = False
) -> str:
    """A statement as HTML: the whole of it, or one `part` of it (see exceptions_html)."""
    return render.render_html(
        "statement.html",
        pdf=pdf,
        s=s,
        part=part or statement_parts(s, size=None)[0],
        unnumbered=unnumbered,
        firm=s.firm,
        generated_at=s.generated_at,
        audit_head=s.audit_head,
    )


def exceptions_html(
    r: ExceptionReport, *, pdf: bool = False, part: Part | None = None, unnumbered: bool = False
) -> str:
    """The exception report as HTML: the whole of it, or one `part` of it (a PDF rendered in
    parts: exception_parts), without page numbers where `unnumbered` (render.render_pdf_parts
    numbers the pages of the whole)."""
    return render.render_html(
        "exceptions.html",
        pdf=pdf,
        r=r,
        part=part or exception_parts(r, size=None)[0],
        unnumbered=unnumbered,
        firm=r.firm,
        generated_at=r.generated_at,
        audit_head=r.audit_head,
    )


# A long document's PDF is rendered in parts of so many listed items (an exception report's
# breaks, quarantined rows, alerts and resolved breaks; a statement's positions, trades and cash
# lines): WeasyPrint holds a document's whole layout while it renders it (about 0.6 MB a break,
# 0.16 MB a statement's line), so a bad day of 100,000 breaks, or an active account's month,
# rendered whole would need tens of GB. A part begins a new page: the lighter a list's items,
# the more of them a part holds (its last page is a part's only short one).
PDF_PART_ITEMS = 200
STATEMENT_PART_ITEMS = 1000


@dataclass(frozen=True, slots=True)
class Section:
    """The items of one of a document's lists that a part shows: from its start (`first`: its
    heading, and its "none" line when the list is empty) or continued, to its end (`last`: its
    total line)."""

    items: tuple[Any, ...]
    first: bool
    last: bool


@dataclass(frozen=True, slots=True)
class Part:
    """A part of a document's PDF: the head (header and summaries) in the first, the closing
    lines and footer in the last, and a window of its lists, each a Section (the part shows
    it) or None, by name: `part["trades"]`, in a template `part.trades`."""

    head: bool
    tail: bool
    sections: Mapping[str, Section | None]

    def __getitem__(self, name: str) -> Section | None:
        return self.sections[name]


def parts(lists: Sequence[tuple[str, Sequence[Any]]], size: int | None) -> list[Part]:
    """A document's named lists, in its order, cut into parts of at most `size` items (None:
    one part). Every item is in exactly one part, in order; a list that is empty is shown (its
    "none" line) in the part where it would begin."""
    if size is not None and size < 1:
        raise ValueError(f"a part holds at least one item, not {size}")
    total = sum(len(items) for _, items in lists)
    size = max(1, total) if size is None else size
    count = max(1, -(-total // size))
    windows: list[dict[str, Section | None]] = [
        dict.fromkeys((name for name, _ in lists), None) for _ in range(count)
    ]
    offset = 0
    for name, items in lists:
        if not items:
            windows[min(offset // size, count - 1)][name] = Section((), first=True, last=True)
            continue
        for i in range(offset // size, -(-(offset + len(items)) // size)):
            lo, hi = max(offset, i * size), min(offset + len(items), (i + 1) * size)
            windows[i][name] = Section(
                tuple(items[lo - offset : hi - offset]),
                first=lo == offset,
                last=hi == offset + len(items),
            )
        offset += len(items)
    return [
        Part(i == 0, i == count - 1, MappingProxyType(window)) for i, window in enumerate(windows)
    ]


def exception_parts(r: ExceptionReport, size: int | None = PDF_PART_ITEMS) -> list[Part]:
    """The exception report's open breaks, quarantined rows, alerts and resolved breaks in
    parts (see `parts`)."""
    lists = (
        ("breaks", r.open_breaks),
        ("quarantined", r.quarantined),
        ("alerts", r.alerts),
        ("resolved", r.resolved),
    )
    return parts(lists, size)


def statement_parts(s: Statement, size: int | None = STATEMENT_PART_ITEMS) -> list[Part]:
    """A statement's open positions, trades and cash lines in parts (see `parts`)."""
    return parts((("positions", s.positions), ("trades", s.trades), ("cash", s.cash)), size)


def confirmation_html(c: Confirmation, *, pdf: bool = False) -> str:
    return render.render_html(
        "confirmation.html", pdf=pdf, cf=c, firm=c.firm, generated_at=c.generated_at,
        audit_head=None,
    )  # fmt: skip


def json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def encode(
    fmt: str,
    html: Callable[..., str],
    data: Callable[[], Any],
    parts: Callable[[], list[Part]] | None = None,
) -> tuple[bytes, int | None]:
    """The bytes of a document in a format, and its page count for a PDF. `html(pdf=...)`
    renders the document, `data()` gives its JSON. A PDF of several `parts()` is rendered part
    by part (render.render_pdf_parts), each by `html(pdf=True, part=..., unnumbered=True)`."""
    if fmt == "json":
        return json_bytes(data()), None
    if fmt == "html":
        return html(pdf=False).encode("utf-8"), None
    in_parts = parts() if parts is not None else []
    if len(in_parts) > 1:
        pdf = render.render_pdf_parts(html(pdf=True, part=p, unnumbered=True) for p in in_parts)
    else:
        pdf = render.render_pdf(html(pdf=True))
    return pdf.data, pdf.pages


def encode_statement(
    s: Statement, fmt: str, part_items: int = STATEMENT_PART_ITEMS
) -> tuple[bytes, int | None]:
    return encode(
        fmt, partial(statement_html, s), s.as_json, partial(statement_parts, s, part_items)
    )


def encode_exceptions(
    r: ExceptionReport, fmt: str, part_items: int = PDF_PART_ITEMS
) -> tuple[bytes, int | None]:
    return encode(
        fmt, partial(exceptions_html, r), r.as_json, partial(exception_parts, r, part_items)
    )


def encode_confirmation(c: Confirmation, fmt: str) -> tuple[bytes, int | None]:
    return encode(fmt, partial(confirmation_html, c), c.as_json)


class Sink:
    """What a `whole_file` block writes to. A failed write (a full disk) is `OutputFailed`;
    an OSError of anything else the block does (reading its input) stays that error."""

    __slots__ = ("_fh", "_path")

    def __init__(self, fh: BinaryIO, path: Path) -> None:
        self._fh, self._path = fh, path

    def write(self, data: bytes) -> int:
        return _written(self._path, partial(self._fh.write, data))


def _written(path: Path, step: Callable[[], _T]) -> _T:
    """A step of writing `path`; its OSError (a full disk, an I/O error) is said as such, not as
    a traceback."""
    try:
        return step()
    except OSError as e:
        raise OutputFailed(str(path), e.strerror or str(e)) from None


@contextmanager
def whole_file(path: Path) -> Iterator[Sink]:
    """A file written whole or not at all: a temporary file in the same folder (made if need
    be), renamed over `path` once the block ends; removed if it fails. A directory at `path`,
    or a folder that cannot be made or written in, is bad input (exit 3); a write that fails
    (a full disk) is OutputFailed (exit 1)."""
    if path.is_dir():
        raise BadInput(str(path), "is a directory: name the file to write")
    if path.exists() and not path.is_file():  # (renamed over, a pipe or device node would be
        # replaced by a file its reader never sees, /dev/null by a file of the export)
        raise BadInput(str(path), "is not a regular file (a pipe, a device or a socket)")
    # the mode any new file of the process gets (mkstemp makes 0600: a statement or export
    # the rest of the team could not read); read before the file exists, set inside the block
    # that removes it on failure (a SIGTERM in between left the temporary file behind)
    mode = 0o666 & ~_umask()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:  # a file where a folder should be, no permission, a read-only disk
        raise BadInput(str(path), f"cannot be written: {e.strerror or e}") from None
    fh: BinaryIO | None = None
    try:
        _written(path, partial(os.fchmod, fd, mode))
        fh = os.fdopen(fd, "wb")
        yield Sink(fh, path)
        _written(path, fh.close)  # (the last buffered bytes are written here)
        _written(path, partial(os.replace, tmp, path))
    except BaseException:
        with suppress(OSError):  # (the file's own error is the one to say)
            if fh is None:
                os.close(fd)
            else:
                fh.close()
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask: from /proc on Linux (nothing changes it meanwhile), else read by
    setting it and setting it back at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_file(path: Path, data: bytes) -> None:
    """Write a whole file or nothing (whole_file)."""
    with whole_file(path) as fh:
        fh.write(data)


def save(path: Path, fmt: str, data: bytes, pages: int | None) -> Written:
    write_file(path, data)
    return Written(str(path), fmt, pages, len(data))


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def statement_file(account: str, period_from: str, period_to: str, fmt: str) -> str:
    return f"statement-{safe_name(account)}-{period_from}-{period_to}.{fmt}"
