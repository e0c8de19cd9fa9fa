"""Reading and validating tabular input files: the checks every file command shares.

A file is read as text (every column a string), checked whole with pandera on polars, and every
problem becomes a RowError value (line, field, value, reason). Lines are the file's physical
lines, the header being line 1, as an editor shows them: a quoted cell that spans lines moves
the rows after it down (TextFile.lines keeps where each row starts).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from oms.errors import BadFile, BadInput, RowError
from oms.values import DECIMAL_PATTERN, IDENT_PATTERN, currency_codes

if TYPE_CHECKING:
    import pandera.polars as pa
    import polars as pl

# polars (and pandera) are imported by the functions that read and check files, not when
# tieout starts: a command that reads no file does not pay for them

UTC_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
)
HEADER_LINE = 1


@dataclass(frozen=True, slots=True)
class TextFile:
    path: str
    sha256: str
    frame: pl.DataFrame  # all columns strings, stripped; empty cells are null
    # the physical line each row starts on, when a quoted cell spans lines (else row + 2)
    lines: tuple[int, ...] | None = None

    @property
    def rows(self) -> int:
        return self.frame.height

    def line(self, index: int) -> int:
        return line_of(index, self.lines)


def line_of(index: int, lines: Sequence[int] | None) -> int:
    """The physical line of row `index` (0-based, after the header)."""
    if lines is not None and 0 <= index < len(lines):
        return lines[index]
    return index + HEADER_LINE + 1


def record_lines(text: str) -> tuple[int, ...] | None:
    """Where each record after the header starts, when some quoted cell holds a line break;
    None when every record is one line (the common case, answered without parsing)."""
    if '"' not in text:
        return None
    starts: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    last = 0
    for _ in reader:
        starts.append(last + 1)
        last = reader.line_num
    if last == len(starts):  # every record on a line of its own
        return None
    return tuple(starts[1:])


def read_bytes(path: str) -> bytes:
    p = Path(path)
    if p.is_dir():
        raise BadInput(path, "is a directory: give a file")
    if not p.is_file():
        raise BadInput(path, "no such file" if not p.exists() else "not a regular file")
    try:
        return p.read_bytes()
    except PermissionError:
        raise BadInput(path, "cannot be read: permission denied") from None


def decode_utf8(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInput(
            path,
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} (save the file as UTF-8)",
        ) from None


def read_csv(path: str, *, required: Sequence[str], optional: Collection[str] = ()) -> TextFile:
    """Read a CSV with a header into a frame of stripped strings; refuse a file that is empty,
    not UTF-8, or whose header lacks a required column or has an unknown or repeated one."""
    import polars as pl

    data = read_bytes(path)
    text = decode_utf8(path, data)
    if not text.strip():
        raise BadInput(path, "the file is empty")
    try:
        frame = pl.read_csv(
            text.encode(),
            infer_schema=False,
            has_header=True,
        )
    except pl.exceptions.PolarsError as exc:
        where = _ragged_line(text)
        if where is not None:
            line, fields, expected = where
            raise BadInput(
                path,
                f"line {line}: {fields} fields, the header has {expected} (a value with a comma "
                "needs quotes)",
            ) from None
        quoted = _quote_problem(text)
        if quoted is not None:
            raise BadInput(path, f"line {quoted[0]}: {quoted[1]}") from None
        raise BadInput(path, f"not a readable CSV file: {str(exc).splitlines()[0]}") from None
    if frame.height and frame[frame.columns[-1]].null_count():  # maybe a short record
        short = _short_line(text, frame.width)
        if short is not None:
            line, fields = short
            raise BadInput(
                path,
                f"line {line}: {fields} field{'s' if fields != 1 else ''}, the header has "
                f"{frame.width} (a value or a comma missing?)",
            )
    # the header as written (polars renames a repeated column, which would hide the repeat)
    written = next(csv.reader(io.StringIO(text, newline="")), [])
    header = check_header(
        path, written if len(written) == frame.width else frame.columns, required, optional
    )
    frame.columns = header
    frame = frame.with_columns(
        pl.col(c).str.strip_chars().replace("", None) for c in header
    ).with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in optional if c not in header)
    if frame.height == 0:
        raise BadInput(path, "the file has a header but no rows")
    lines = record_lines(text)
    if lines is not None and len(lines) != frame.height:
        lines = None  # the two readers disagree on what a record is: fall back to row + 2
    return TextFile(path, hashlib.sha256(data).hexdigest(), frame, lines)


def without_blank_rows(tf: TextFile) -> TextFile:
    """The file without its blank rows (every cell empty: a blank line, a trailing one above
    all): no record, as in order files; the other rows keep their line numbers. Refused when
    nothing else is left."""
    import polars as pl

    blank = tf.frame.select(pl.all_horizontal(pl.all().is_null())).to_series()
    if not blank.any():
        return tf
    lines = [line_of(i, tf.lines) for i in range(tf.frame.height)]
    keep = (~blank).to_list()
    frame = tf.frame.filter(~blank)
    if frame.height == 0:
        raise BadInput(tf.path, "the file has a header but no rows (only blank lines)")
    kept = tuple(n for n, k in zip(lines, keep, strict=True) if k)
    return dataclasses.replace(tf, frame=frame, lines=kept)


def _quote_problem(text: str) -> tuple[int, str] | None:
    """The first misplaced double quote, read as RFC 4180 reads a CSV: (its line, what is wrong)
    for a quote inside a value that does not begin with one, a quoted value with more after its
    closing quote, or a quote that opens a value and never closes (the line it opens on). Only
    run on a file the reader refused: it walks the text a character at a time."""
    line, opened, quoted, start = 1, 0, False, True  # start: at the beginning of a value
    at, n = 0, len(text)
    while at < n:
        ch = text[at]
        if quoted:
            if ch == '"':
                if at + 1 < n and text[at + 1] == '"':  # a doubled quote inside the value
                    at += 2
                    continue
                quoted = False
                after = text[at + 1] if at + 1 < n else "\n"
                if after not in ",\r\n":
                    return line, (
                        "a quoted value goes on after its closing quote (a quote inside a "
                        'quoted value is written twice: "a ""b"" c")'
                    )
            elif ch == "\n":
                line += 1
        elif ch == '"':
            if not start:  # inside an unquoted value (spaces before a quote make one too):
                # the reader takes its quotes as they are when they pair up before the value
                # ends ("12""X", ' "x"'); an odd one swallows what follows
                end = at
                while end < n and text[end] not in ",\r\n":
                    end += 1
                if text.count('"', at, end) % 2 == 0:
                    at = end
                    start = False
                    continue
                return line, (
                    "a double quote inside a value that does not begin with one (a space before "
                    'it counts as the value\'s; quote the whole value and write the quote twice: '
                    '"AA""PL")'
                )
            quoted, opened = True, line
        elif ch == "\n":
            line += 1
        start = ch in ",\n" or (ch == "\r" and not quoted)
        at += 1
    if quoted:
        return opened, "a quote opens a value here and never closes (the rest of the file is in it)"
    return None


def _short_line(text: str, width: int) -> tuple[int, int] | None:
    """The first record, not blank, with fewer fields than the header's `width`: (its line,
    its fields). polars fills such a record's missing fields with nulls, which would be
    reported as empty values, or taken for optional ones left out."""
    import polars as pl

    if '"' in text:  # quoted values may hold commas and line breaks: read as CSV
        reader = csv.reader(io.StringIO(text, newline=""))
        next(reader, None)
        start = reader.line_num + 1
        for record in reader:
            if len(record) < width and any(v.strip() for v in record):
                return start, len(record)
            start = reader.line_num + 1
        return None
    lines = pl.Series(text.split("\n")[1:], dtype=pl.String)
    commas = lines.str.count_matches(",", literal=True)
    short = ((commas < width - 1) & (lines.str.strip_chars() != "")).arg_true()
    if short.len() == 0:
        return None
    first = int(short[0])
    return first + 2, int(commas[first]) + 1


def _ragged_line(text: str) -> tuple[int, int, int] | None:
    """The first record with more fields than the header: (its line, its fields, the header's)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    start = reader.line_num + 1
    for record in reader:
        if len(record) > len(header):
            return start, len(record), len(header)
        start = reader.line_num + 1
    return None


def check_header(
    path: str, names: Sequence[str], required: Sequence[str], optional: Collection[str] = ()
) -> list[str]:
    """The header's column names, stripped; BadInput when one repeats, a required one is
    missing or one is unknown (all said at once, with the columns the file may have)."""
    header = [c.strip() for c in names]
    dupes = sorted({c for c in header if c and header.count(c) > 1})
    if dupes:
        raise BadInput(path, f"column(s) {', '.join(dupes)} appear more than once in the header")
    missing = [c for c in required if c not in header]
    allowed = set(required) | set(optional)
    unknown = [c for c in header if c and c not in allowed]
    nameless = [str(n) for n, c in enumerate(header, 1) if not c]
    problems = []
    if nameless:
        problems.append(
            f"column(s) {', '.join(nameless)} of the header have no name (a comma too many?)"
        )
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    if problems:
        columns = ", ".join([*required, *optional])
        raise BadInput(path, "; ".join(problems) + f" (the columns are: {columns})")
    return header


# ---- pandera checks on text columns ---------------------------------------------------------


def column_check(test: Callable[[pl.Expr], pl.Expr], error: str) -> pa.Check:
    """A check of one text column, element-wise; empty cells pass (required columns are
    checked for emptiness by the schema's nullable flag)."""
    import pandera.polars as pa
    import polars as pl

    return pa.Check(
        lambda d: d.lazyframe.select(
            pl.col(d.key).is_null() | test(pl.col(d.key)).fill_null(value=False)
        ),
        error=error,
        ignore_na=False,
    )


def decimal_check(*, positive: bool = False, non_negative: bool = False) -> pa.Check:
    def test(col: pl.Expr) -> pl.Expr:
        ok = col.str.contains(DECIMAL_PATTERN)
        if positive:
            ok = ok & ~col.str.starts_with("-") & col.str.contains("[1-9]")
        if non_negative:
            ok = ok & (~col.str.starts_with("-") | ~col.str.contains("[1-9]"))
        return ok

    if positive:
        what = "must be a decimal number greater than zero"
    elif non_negative:
        what = "must be a decimal number, not negative"
    else:
        what = "must be a decimal number"
    return column_check(test, f"{what} (plain digits, optional point, at most 12 decimals)")


def date_check() -> pa.Check:
    return column_check(
        lambda c: c.str.to_date("%Y-%m-%d", strict=False).is_not_null(), "must be a date YYYY-MM-DD"
    )


def utc_time_expr(col: str | pl.Expr) -> pl.Expr:
    import polars as pl

    expr = pl.col(col) if isinstance(col, str) else col
    return (
        expr.str.replace(r"Z$", "+00:00")
        .str.replace(" ", "T")
        .str.replace(r"([+-][0-9]{2})([0-9]{2})$", "${1}:${2}")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC", time_unit="us")
    )


def utc_time_check() -> pa.Check:
    return column_check(
        lambda c: c.str.contains(UTC_TIME_PATTERN) & utc_time_expr(c).is_not_null(),
        "must be an ISO 8601 time with a zone (2026-11-25T14:30:00Z or +01:00)",
    )


def one_of(values: Collection[str]) -> pa.Check:
    allowed = sorted(values)
    return column_check(lambda c: c.is_in(allowed), f"must be one of {', '.join(allowed)}")


def known(values: Collection[str], what: str) -> pa.Check:
    allowed = list(values)
    return column_check(lambda c: c.is_in(allowed), f"unknown {what}")


def matches(pattern: str, error: str) -> pa.Check:
    return column_check(lambda c: c.str.contains(pattern), error)


# Built on first use (module __getattr__), so that importing tieout does not import pandera:
# every command would otherwise pay for it, most of them without validating a file.
_LAZY_CHECKS: dict[str, tuple[str, str]] = {
    "ident_check": (IDENT_PATTERN, "must be an identifier (letters, digits, ._:/-)"),
}


def __getattr__(name: str) -> pa.Check:
    if name in _LAZY_CHECKS:
        return matches(*_LAZY_CHECKS[name])
    if name == "currency_check":  # upper case by the reader (as `--currency usd` is)
        codes = sorted(currency_codes())
        return column_check(lambda c: c.is_in(codes), "must be an ISO 4217 currency code")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def text_column(*checks: pa.Check, required: bool = True) -> pa.Column:
    import pandera.polars as pa

    return pa.Column(str, list(checks), nullable=not required, required=True)


def validate(tf: TextFile, schema: pa.DataFrameSchema) -> list[RowError]:
    """Run a schema over the whole frame; every failure becomes a RowError (none: [])."""
    import pandera.polars as pa

    try:
        schema.validate(tf.frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return failure_rows(tf.frame, exc.failure_cases, tf.lines)
    return []


def failure_rows(
    frame: pl.DataFrame, cases: pl.DataFrame, lines: Sequence[int] | None = None
) -> list[RowError]:
    errors: list[RowError] = []
    for case in cases.iter_rows(named=True):
        check = str(case["check"])
        column = case["column"]
        index = case["index"]
        if check == "not_nullable":
            reason = "is required and empty"
        elif check.startswith(("field_uniqueness", "multiple_fields_unique")):
            reason = "duplicate row in the file"
        elif check == "column_in_dataframe":
            reason = "missing column"
        else:
            reason = check
        value = None
        if index is not None and column in frame.columns:
            raw = frame[column][int(index)]
            value = None if raw is None else str(raw)
        line = None if index is None else line_of(int(index), lines)
        errors.append(RowError(line, column, value, reason))
    errors.sort(key=lambda e: (e.line or 0, e.field or ""))
    return errors


def refuse_if(path: str, errors: Sequence[RowError]) -> None:
    if errors:
        raise BadFile(path, errors)


def duplicate_rows(
    frame: pl.DataFrame, keys: Sequence[str], lines: Sequence[int] | None = None
) -> list[RowError]:
    """Rows whose key repeats an earlier row of the same file."""
    import polars as pl

    dup = frame.with_row_index("_i").filter(
        pl.struct(keys).is_duplicated() & ~pl.struct(keys).is_first_distinct()
    )
    return [
        RowError(
            line_of(int(r["_i"]), lines),
            "+".join(keys),
            "/".join(str(r[k]) for k in keys),
            "duplicate of an earlier row in the file",
        )
        for r in dup.iter_rows(named=True)
    ]
