"""Venue file loaders: a venue's file, read through its profile, as the canonical cells frame.

    load(profile, path) -> LoadedFile           # or load_bytes(profile, data, source)
    recon.validate.validate(profile, loaded) -> Validated(valid, quarantine)

Pure: bytes in, values out; no database, no clock. A file that cannot be read as a whole is
refused with BadInput (exit 3) and a message that says what to do: an empty file, bytes that
do not decode with the profile's encoding (the byte, its offset and line, and the [csv]
encoding key to set), a header without the columns the profile maps (named, with the mapping
and the file's columns), a file that is not of the profile's format. A bad *record* never
refuses the file: it is carried to validation, which quarantines it with every reason.

LoadedFile:
- sha256: of the file's bytes (the store refuses the same bytes reconciled twice).
- raw: the file's own fields as strings, one row per record, in the order of `cells` (the
  record's number is cells["row"]). CSV: the header's columns, cells as written (unstripped; an
  empty cell is ""). Parquet: every column as text (see below; null is ""). Other formats: the
  record's fields (absent ones null); see recon.loaders_records.
- cells: `row` (Int64) then every canonical field of the profile's kind
  (recon.profiles.FIELDS). A field is String text (the profile's [columns] applied, cells
  stripped (empty -> null), value maps applied ([values.FIELD], over the format's own codes
  such as FIX side 1/2), side lowercased when that makes it buy/sell, a three-letter currency
  uppercased, cash line_type defaulting to "movement"), except the fields of `typed`: Parquet
  columns kept in their own exact type (see below). Nothing is parsed yet: validation does
  that.
- problems: (row, reason) for records the reader already found wrong (a CSV line with more
  or fewer fields than the header, a FIX message with a bad checksum, a Flex element ibflex
  refuses). A CSV line's missing fields are not read as empty ones (`4` is not `4,,`): a
  venue's blank fee is "not reported", and a line cut short would match without its fees.
- skipped: records left out on purpose, counted by why (blank CSV lines, FIX messages that are
  not fills, Flex summary lines, pending camt.053 entries, ...). rows = cells.height; valid +
  quarantined = rows, always.
- typed: the fields of `cells` that hold typed values, not text; typed_text(name, dtype) is
  the text such a value stands for (what the quarantine shows and the checks' words refer to).
- how validation reads the text: date_formats (per field; absent = ISO 8601), decimal and
  thousands separators (not for plain_fields, whose text is a plain decimal already), timezone
  (for times written without a zone).

Row numbers: CSV the physical line (header = line 1 after the skip_rows lines before it; a
quoted cell spanning lines counts its lines); FIX the physical line; Parquet, Flex, MT940 and
camt.053 the record's ordinal in the file, from 1.

CSV: polars reads every cell as a string (no per-row Python): any one-character delimiter,
quoted fields with the profile's quote_char (doubled to escape), skip_rows lines before the
header, any Python encoding (UTF-8 is checked in place; other encodings are transcoded to UTF-8
in chunks). A header-only file is accepted with no rows (a venue's day without activity).

Parquet: string columns as they are. Columns whose type is exact and fits the field are kept
in their type, so that a 10-million-row file is not written out as text and parsed back:
integer and Decimal (scale <= 12) columns for quantity, price, commission, fees and amount;
Date and Datetime columns for date fields (a Datetime as its date); Datetime columns in us or
ms for exec_time. Validation checks those in their own types, with the same outcome as reading
their text. Other typed columns become text: integers and decimals as their exact text; float
columns as the shortest text that reads back as the same float (0.1 stays "0.1", polars' float
formatting); a float that prints with an exponent (1e+20), or more than 12 decimals, or
NaN/inf is quarantined as "not a decimal number" rather than guessed at; Date columns as
YYYY-MM-DD; Datetime columns as ISO 8601 (UTC when zoned). A field with a [values] map is read
as text. Typed columns ignore the profile's [parse] formats and separators. Nested columns
(list, struct, binary) are left out of raw; mapping a canonical field to one refuses the file.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Final

import polars as pl

from oms.errors import BadInput
from oms.values import FRAC_DIGITS
from recon.canonical import REQUIRED
from recon.profiles import (
    DATE_FIELDS,
    FIELDS,
    MONEY_FIELDS,
    SIDES,
    TIME_FIELDS,
    CsvOptions,
    Profile,
)

ROW: Final = "row"
ISO_DATE: Final = "%Y-%m-%d"
MONEY_NAMES: Final = frozenset(n for names in MONEY_FIELDS.values() for n in names)
CHUNK: Final = 1 << 24  # bytes decoded at a time when checking or transcoding text


@dataclass(frozen=True, slots=True)
class LoadedFile:
    source: str
    format: str
    kind: str
    sha256: str
    raw: pl.DataFrame | pl.LazyFrame  # Parquet: lazy (rendered as text for bad rows only)
    cells: pl.DataFrame
    problems: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={ROW: pl.Int64, "reason": pl.String})
    )
    skipped: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    date_formats: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    decimal_separator: str = "."
    thousands_separator: str | None = None
    plain_fields: frozenset[str] = frozenset()
    timezone: str = "UTC"
    null_is_empty: bool = False  # a null raw cell is an empty one (CSV, Parquet)
    typed: frozenset[str] = frozenset()  # fields of `cells` kept in their own (exact) type
    # bank files of several days (MT940, camt.053, IB Flex cash): each row's date (ISO text;
    # None: a statement without a closing balance): statements_of_day
    statement_days: Mapping[int, str | None] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def rows(self) -> int:
        return self.cells.height


def load(
    profile: Profile, path: str | Path, exchanges: Mapping[str, str] | None = None
) -> LoadedFile:
    """Read a venue file through its profile (see the module docstring). `exchanges`: the
    book's instruments' exchanges by symbol (a FIX fill without TradeDate is dated on its
    exchange, as the book dates it)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(str(path), "no such file")
    return load_bytes(profile, p.read_bytes(), str(path), exchanges=exchanges)


def load_bytes(
    profile: Profile,
    data: bytes,
    source: str = "<bytes>",
    *,
    keep_types: bool = True,
    exchanges: Mapping[str, str] | None = None,
) -> LoadedFile:
    """The same as load, for bytes already read; `source` names them in messages.
    keep_types=False reads every Parquet column as text (no typed cells): the reading the
    typed one must agree with, for tests."""
    if not data or data.isspace():
        raise BadInput(
            source,
            "the file is empty (no header, no records): nothing to reconcile; check that the "
            "venue's export completed",
        )
    sha = hashlib.sha256(data).hexdigest()
    if profile.format == "csv":
        return _load_csv(profile, data, source, sha)
    if profile.format == "parquet":
        return _load_parquet(profile, data, source, sha, keep_types=keep_types)
    from recon import loaders_records

    records = loaders_records.read(profile, data, source, exchanges)
    return from_records(profile, records, source, sha)


# ---- text and encodings -----------------------------------------------------------------------


def _undecodable(source: str, data: bytes, encoding: str, offset: int) -> BadInput:
    line = data.count(b"\n", 0, offset) + 1
    hint = (
        'set the profile\'s [csv] encoding to the file\'s encoding (for example encoding = '
        '"latin-1" or "cp1252")'
    )
    return BadInput(
        source,
        f"cannot be decoded as {encoding}: byte 0x{data[offset]:02x} at byte offset {offset} "
        f"(line {line}) is not {encoding} text; {hint}",
    )


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def utf8_bytes(data: bytes, encoding: str, source: str) -> bytes:
    """The file's text as UTF-8 bytes without a BOM: UTF-8 input is checked in place (in chunks,
    no copy kept), other encodings are transcoded chunk by chunk. BadInput names the first byte
    that does not decode, its offset and line, and the [csv] encoding key."""
    if _is_utf8(encoding):
        start = 3 if data.startswith(codecs.BOM_UTF8) else 0
        checker = codecs.getincrementaldecoder("utf-8")()
        view = memoryview(data)
        for at in range(start, len(data), CHUNK):
            try:
                checker.decode(view[at : at + CHUNK], final=at + CHUNK >= len(data))
            except UnicodeDecodeError as exc:
                raise _undecodable(source, data, "utf-8", at + exc.start) from None
        return data[start:] if start else data
    decoder = codecs.getincrementaldecoder(encoding)()
    parts: list[bytes] = []
    for at in range(0, len(data), CHUNK):
        chunk = data[at : at + CHUNK]
        try:
            text = decoder.decode(chunk, final=at + CHUNK >= len(data))
        except UnicodeDecodeError as exc:
            raise _undecodable(source, data, encoding, at + exc.start) from None
        parts.append(text.removeprefix("\ufeff").encode("utf-8") if at == 0 else
                     text.encode("utf-8"))
    return b"".join(parts)


def decode_text(data: bytes, encoding: str, source: str) -> str:
    """The whole file as text (for the small line formats: FIX, MT940)."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _undecodable(source, data, encoding, exc.start) from None
    return text.removeprefix("\ufeff")


# ---- the canonical text frame -----------------------------------------------------------------


def finish_text(
    frame: pl.DataFrame,
    profile: Profile,
    format_values: Mapping[str, Mapping[str, str]],
    typed: frozenset[str] = frozenset(),
) -> pl.DataFrame:
    """Strip, apply value maps (the format's own, then the profile's over them) and the small
    normalisations every format shares. `frame` has `row` and every canonical field; fields
    that are not String (Parquet columns kept in their type) are left as they are.

    A column is rewritten only when something in it changes (a file of 10 million rows should
    not be copied for nothing): which columns need stripping, hold empty cells or sides and
    currencies in other cases is asked first, in one pass."""
    fields = FIELDS[profile.kind]
    text = [n for n in fields if frame.schema[n] == pl.String]
    # `typed` fields are the text of typed values (numbers, dates, times): never blank or
    # padded. One regex per probed column says whether any cell is padded or blank (then the
    # column is stripped and its blank cells made empty); \s is Unicode White_Space, what
    # strip_chars strips.
    probed = [n for n in text if n not in typed]
    side, currency = pl.col("side"), pl.col("currency")
    probe = (
        frame.lazy()
        .select(
            *(pl.col(n).str.contains(r"^\s|\s$|^$").any().alias(f"pad:{n}") for n in probed),
            *([(~side.is_in(list(SIDES))).any().alias("case:side")] if "side" in text else []),
            *([currency.str.contains("[a-z]").any().alias("case:currency")]
              if "currency" in text else []),
        )
        .collect()
        .row(0, named=True)
        if frame.height and text
        else {}
    )
    exprs: list[pl.Expr] = []
    for name in text:
        col = pl.col(name)
        changed = False
        if probe.get(f"pad:{name}"):
            col, changed = col.str.strip_chars(), True
        mapping = {**format_values.get(name, {}), **profile.values.get(name, {})}
        if mapping:
            col, changed = col.replace(mapping), True
        # the case probes looked at the column as it is: they hold unless stripped or mapped
        case = changed or probe.get(f"case:{name}", True)
        if probe.get(f"pad:{name}") or "" in mapping.values():
            col, changed = pl.when(col == "").then(None).otherwise(col), True
        if name == "side" and case:
            low = col.str.to_lowercase()
            col, changed = pl.when(low.is_in(list(SIDES))).then(low).otherwise(col), True
        elif name == "currency" and case:
            upper = col.str.contains(r"^[A-Za-z]{3}$") & col.str.contains("[a-z]")
            col, changed = pl.when(upper).then(col.str.to_uppercase()).otherwise(col), True
        elif name == "line_type":
            col, changed = col.fill_null("movement"), True
        if changed:
            exprs.append(col.alias(name))
    return frame.select(pl.col(ROW).cast(pl.Int64), *fields).with_columns(exprs)


def _date_formats(profile: Profile, defaults: Mapping[str, str]) -> Mapping[str, str]:
    fields = FIELDS[profile.kind]
    out = {f: ISO_DATE for f in fields if f in DATE_FIELDS}
    out.update({f: v for f, v in defaults.items() if f in fields})
    out.update(profile.parse.date_formats)
    return MappingProxyType(out)


def _refuse_missing(source: str, profile: Profile, present: Sequence[str], what: str) -> None:
    """Refuse a file that lacks a required canonical field's source, or a source the profile
    names explicitly in [columns]; say which, how the profile maps them and what the file has."""
    missing = []
    for name in FIELDS[profile.kind]:
        src = profile.source_of(name)
        if src in present:
            continue
        if name in profile.columns:
            missing.append(f"{name} (mapped to {src!r} by [columns] {name} = {src!r})")
        elif name in REQUIRED[profile.kind]:
            missing.append(f"{name} (no [columns] entry, so a {what} named {name!r})")
    if missing:
        shown = ", ".join(repr(c) for c in present[:60])
        more = f" ... ({len(present)} in all)" if len(present) > 60 else ""
        raise BadInput(
            source,
            f"profile {profile.name!r}: missing required {what}(s) after the profile's mapping: "
            f"{'; '.join(missing)}. The file's {what}s are: {shown}{more}. Fix the profile's "
            f"[columns] (canonical field = {what} in the file) or the file.",
        )


# ---- CSV --------------------------------------------------------------------------------------


def _load_csv(profile: Profile, data: bytes, source: str, sha: str) -> LoadedFile:
    opts = profile.csv
    buf = utf8_bytes(data, opts.encoding, source)
    if b"\n" not in buf and b"\r" in buf:
        # lines that end in CR alone (classic Mac OS): polars would read one line, its header
        # and every row side by side; a CR is the only line break such a file has
        buf = buf.replace(b"\r", b"\n")
    quote = opts.quote_char or None
    common = {
        "separator": opts.delimiter,
        "quote_char": quote,
        "skip_lines": opts.skip_rows,
        "has_header": False,
        "infer_schema": False,
        "truncate_ragged_lines": True,
    }
    try:
        head = pl.read_csv(io.BytesIO(buf), n_rows=1, **common)  # type: ignore[arg-type]
    except pl.exceptions.NoDataError:
        raise BadInput(
            source,
            f"no header line after the {opts.skip_rows} line(s) the profile skips "
            "([csv] skip_rows); the file is empty there",
        ) from None
    except pl.exceptions.PolarsError as exc:
        raise BadInput(source, _csv_hint(profile, exc)) from None
    header = _header(source, head.row(0) if head.height else ())
    width = len(header)
    schema = {f"c{i}": pl.String for i in range(width + 1)}  # one more: fields past the header
    try:
        frame = pl.read_csv(
            io.BytesIO(buf),
            schema=schema,
            missing_columns="insert",
            row_index_name=ROW,
            row_index_offset=opts.skip_rows + 1,  # the header's line
            **common,  # type: ignore[arg-type]
        )
    except pl.exceptions.PolarsError as exc:
        raise BadInput(source, _csv_hint(profile, exc)) from None
    lines = buf.count(b"\n") + (0 if buf.endswith(b"\n") else 1) - opts.skip_rows
    cells = list(schema)
    frame = frame.with_columns(pl.col(ROW).cast(pl.Int64))
    if lines != frame.height:
        # Quoted cells span lines: count them (rare; this costs a pass over every cell).
        newlines = pl.sum_horizontal(
            pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in cells
        )
        first_line = opts.skip_rows + 1
        frame = frame.with_columns(
            ((newlines + 1).cum_sum().shift(1, fill_value=0) + first_line).cast(pl.Int64)
            .alias(ROW)
        )
    frame = frame.slice(1)  # the header line
    skipped: dict[str, int] = {}
    blank = pl.all_horizontal(pl.col(c).is_null() for c in cells)
    n_blank = frame.select(blank.sum()).item()
    if n_blank:
        frame = frame.filter(~blank)
        skipped["blank line"] = int(n_blank)
    extra = f"c{width}"
    problems = (
        frame.select(ROW, extra)
        .filter(pl.col(extra).is_not_null())
        .select(
            ROW,
            pl.format(
                "the line has more fields than the header's {} (first extra field: '{}')",
                pl.lit(width),
                pl.col(extra).str.slice(0, 40),
            ).alias("reason"),
        )
    )
    if opts.short_lines == "quarantine":
        short = _short_records(buf, frame, width, opts)
        if short.height:
            problems = pl.concat([problems, short]).sort(ROW)
    del buf
    renamed = dict(zip(cells[:width], header, strict=True))
    raw = frame.select(pl.col(c).alias(renamed[c]) for c in cells[:width])
    _refuse_missing(source, profile, header, "column")
    by_name = {h: c for c, h in renamed.items()}
    text = frame.select(
        ROW,
        *(
            (pl.col(by_name[src]) if src in by_name else pl.lit(None, pl.String)).alias(name)
            for name in FIELDS[profile.kind]
            for src in [profile.source_of(name)]
        ),
    )
    return LoadedFile(
        source=source,
        format="csv",
        kind=profile.kind,
        sha256=sha,
        raw=raw,
        cells=finish_text(text, profile, {}),
        problems=problems,
        skipped=MappingProxyType(skipped),
        date_formats=_date_formats(profile, {}),
        decimal_separator=profile.parse.decimal_separator,
        thousands_separator=profile.parse.thousands_separator,
        timezone=profile.parse.timezone,
        null_is_empty=True,
    )


def _short_records(buf: bytes, frame: pl.DataFrame, width: int, opts: CsvOptions) -> pl.DataFrame:
    """(row, reason) for the records of `frame` (c0, c1, ... as read from `buf`, header and
    blank lines out) with fewer fields than the header's `width`. polars reads a missing field
    as null, as it reads an empty one (`4` as `4,,`), so only a record whose last column is
    null can be short; those (none, usually) are counted again in the file's text: a line
    without a quote is one record (its delimiters, plus one), a quoted one is read by Python's
    csv module, up to the next record's line (a quoted cell may hold line breaks)."""
    last = frame.get_column(f"c{width - 1}")
    out = pl.DataFrame(schema={ROW: pl.Int64, "reason": pl.String})
    if last.null_count() == 0:
        return out
    candidates = frame.select(ROW, pl.col(ROW).shift(-1).alias("next")).filter(last.is_null())
    quote = opts.quote_char or None
    delimiter, quote_byte = opts.delimiter.encode(), quote.encode() if quote else None
    line_start = _line_starts(buf)
    rows: list[int] = []
    counts: list[int] = []
    for row, after in zip(*candidates.get_columns(), strict=True):
        start = line_start(row)
        eol = buf.find(b"\n", start)
        eol = len(buf) if eol < 0 else eol
        if quote_byte is None or buf.find(quote_byte, start, eol) < 0:
            fields = buf.count(delimiter, start, eol) + 1
        else:
            text = buf[start : len(buf) if after is None else line_start(after)].decode("utf-8")
            if len(text) > csv.field_size_limit():  # csv refuses a longer cell
                csv.field_size_limit(len(text))
            reader = csv.reader(
                io.StringIO(text, newline=""), delimiter=opts.delimiter, quotechar=quote
            )
            fields = len(next(reader, []))
        if fields < width:
            rows.append(row)
            counts.append(fields)
    if not rows:
        return out
    return pl.DataFrame({ROW: rows, "n": counts}, schema={ROW: pl.Int64, "n": pl.Int64}).select(
        ROW,
        pl.format(
            "the line has fewer fields than the header's {} (it has {})", pl.lit(width), "n"
        ).alias("reason"),
    )


def _line_starts(buf: bytes) -> Callable[[int], int]:
    """A function giving where physical line `line` (from 1) of `buf` starts (len(buf) past
    the end). Asked for lines in ascending order, it walks `buf` once, as far as the last line
    asked for, stepping over blocks without one by counting their newlines: no list of the
    file's lines is made."""
    pos, at, size = 0, 1, len(buf)

    def start(line: int) -> int:
        nonlocal pos, at
        while line - at > 64 and pos < size:  # far ahead: skip whole blocks
            end = min(pos + CHUNK // 16, size)
            n = buf.count(b"\n", pos, end)
            if n >= line - at:
                break
            pos, at = end, at + n
        while at < line and pos < size:
            found = buf.find(b"\n", pos)
            pos, at = (size, line) if found < 0 else (found + 1, at + 1)
        return pos if at == line else size

    return start


def _csv_hint(profile: Profile, exc: Exception) -> str:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (
        f"not a readable CSV file with the profile's [csv] settings (delimiter "
        f"{profile.csv.delimiter!r}, quote_char {profile.csv.quote_char!r}, skip_rows "
        f"{profile.csv.skip_rows}): {first}"
    )


def _header(source: str, cells: Sequence[object]) -> list[str]:
    names = [("" if c is None else str(c)).strip() for c in cells]
    if not any(names):
        raise BadInput(source, "the header line is empty (is [csv] skip_rows right?)")
    names = [n or f"column_{i}" for i, n in enumerate(names, 1)]
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names, 1):
        seen.setdefault(n, []).append(i)
    dupes = {n: at for n, at in seen.items() if len(at) > 1}
    if dupes:
        said = "; ".join(
            f"{n!r} (columns {', '.join(map(str, at))})" for n, at in sorted(dupes.items())
        )
        raise BadInput(
            source, f"the header names a column more than once: {said}; rename them in the file"
        )
    return names


# ---- Parquet ----------------------------------------------------------------------------------

_NESTED = (pl.List, pl.Array, pl.Struct, pl.Binary, pl.Object)


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        return col.dt.strftime("%Y-%m-%dT%H:%M:%S%.f")
    if isinstance(dtype, pl.Date):
        return col.dt.strftime(ISO_DATE)
    if isinstance(dtype, pl.Decimal) and dtype.scale > FRAC_DIGITS:
        # a wider scale than tieout keeps (Spark writes DECIMAL(38,18)): the value's own
        # digits, its scale's trailing zeros off ("100.000000000000000000" is 100); a value
        # with more than FRAC_DIGITS significant places still fails validation
        text = col.cast(pl.String)
        return text.str.replace(r"(\.[0-9]*[1-9])0+$", "${1}").str.replace(r"\.0+$", "")
    return col.cast(pl.String)


def _time_text(col: pl.Expr, dtype: pl.Datetime) -> pl.Expr:
    if dtype.time_zone is not None:
        return col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.f+00:00")
    return col.dt.strftime("%Y-%m-%dT%H:%M:%S%.f")


def keeps_type(name: str, dtype: pl.DataType) -> bool:
    """Whether a Parquet column of `dtype` mapped to canonical field `name` is kept in its type
    (see the module docstring): exact, and readable without text in between."""
    if name in MONEY_NAMES:
        return dtype.is_integer() or (
            isinstance(dtype, pl.Decimal) and dtype.scale <= FRAC_DIGITS
        )
    if name in DATE_FIELDS:
        return isinstance(dtype, (pl.Date, pl.Datetime))
    if name in TIME_FIELDS:
        return isinstance(dtype, pl.Datetime) and dtype.time_unit in ("us", "ms")
    return False


def typed_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """The text of a typed cell (`cells` column `name` of `dtype`, a field of
    LoadedFile.typed): what the loader would have read had it not kept the type."""
    col = pl.col(name)
    if isinstance(dtype, pl.Date):
        return col.dt.strftime(ISO_DATE)
    if isinstance(dtype, pl.Datetime):
        return _time_text(col, dtype)
    return col.cast(pl.String)


def aligned(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every column in the chunks of the first. A lazy select passes columns
    through without copying them, in the chunks they had, but computes others (a literal, a
    horizontal reduction) in different chunks; any eager operation on such a frame then copies
    every column to align them (GBs at 10M rows). Here only the odd columns are copied."""
    columns = frame.get_columns()  # taken out one by one: never aligned (copied) as a frame
    if not columns:
        return frame
    lengths = [c.len() for c in columns[0].get_chunks()]
    out = []
    for column in columns:
        if [c.len() for c in column.get_chunks()] == lengths:
            out.append(column)
            continue
        whole, pieces, start = column.rechunk(), [], 0
        for n in lengths:
            pieces.append(whole.slice(start, n))
            start += n
        out.append(pl.concat(pieces, rechunk=False) if len(pieces) > 1 else whole)
    return pl.DataFrame(out)


def _row_numbers(frame: pl.DataFrame) -> pl.Series:
    """`row` (1, 2, ...) in the chunks of the frame's columns: a frame whose columns are
    chunked alike is never copied whole by polars to align them (GBs at 10M rows)."""
    if frame.width == 0 or frame.to_series(0).n_chunks() == 1:
        return pl.int_range(1, frame.height + 1, dtype=pl.Int64, eager=True).alias(ROW)
    pieces, start = [], 1
    for chunk in frame.to_series(0).get_chunks():
        pieces.append(pl.int_range(start, start + chunk.len(), dtype=pl.Int64, eager=True))
        start += chunk.len()
    return pl.concat(pieces, rechunk=False).alias(ROW)


def _load_parquet(
    profile: Profile, data: bytes, source: str, sha: str, *, keep_types: bool = True
) -> LoadedFile:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(source, f"not a readable Parquet file: {first}") from None
    schema = frame.schema
    flat = [c for c, t in schema.items() if not isinstance(t, _NESTED)]
    nested = [c for c, t in schema.items() if isinstance(t, _NESTED)]
    mapped_nested = [
        f"{n} -> {profile.source_of(n)!r}" for n in FIELDS[profile.kind]
        if profile.source_of(n) in nested
    ]
    if mapped_nested:
        raise BadInput(
            source,
            f"the profile maps to nested Parquet columns, which hold no single value: "
            f"{', '.join(mapped_nested)}",
        )
    _refuse_missing(source, profile, flat, "column")
    raw = frame.lazy().select(_as_text(c, schema[c]).alias(c) for c in flat)
    plain: set[str] = set()
    typed: set[str] = set()
    kept: set[str] = set()
    overrides: dict[str, str] = {}
    exprs: list[pl.Expr] = []
    for name in FIELDS[profile.kind]:
        src = profile.source_of(name)
        if src not in flat:
            exprs.append(pl.lit(None, pl.String).alias(name))
            continue
        dtype = schema[src]
        if dtype.is_numeric():
            plain.add(name)
        if dtype.is_numeric() or isinstance(dtype, (pl.Date, pl.Datetime, pl.Boolean)):
            typed.add(name)
        keep = keep_types and keeps_type(name, dtype) and name not in profile.values
        if name in DATE_FIELDS and isinstance(dtype, (pl.Date, pl.Datetime)):
            overrides[name] = ISO_DATE
            expr = (pl.col(src) if isinstance(dtype, pl.Date) else pl.col(src).dt.date())
            exprs.append((expr if keep else expr.dt.strftime(ISO_DATE)).alias(name))
        elif name in TIME_FIELDS and isinstance(dtype, pl.Datetime):
            # one exact format (whatever the profile says), parsed in one pass: a zoned column
            # as UTC with an explicit offset, a naive one in the profile's timezone
            overrides[name] = (
                "%Y-%m-%dT%H:%M:%S%.f%:z" if dtype.time_zone is not None else "%Y-%m-%dT%H:%M:%S%.f"
            )
            col = pl.col(src)
            exprs.append((col if keep else _time_text(col, dtype)).alias(name))
        else:
            exprs.append((pl.col(src) if keep else _as_text(src, dtype)).alias(name))
        if keep:
            kept.add(name)
    text = aligned(frame.select(exprs).insert_column(0, _row_numbers(frame)))
    formats = dict(_date_formats(profile, {}))
    for name, fmt in overrides.items():
        if fmt:
            formats[name] = fmt
        else:
            formats.pop(name, None)
    return LoadedFile(
        source=source,
        format="parquet",
        kind=profile.kind,
        sha256=sha,
        raw=raw,
        cells=finish_text(text, profile, {}, frozenset(typed)),
        date_formats=MappingProxyType(formats),
        decimal_separator=profile.parse.decimal_separator,
        thousands_separator=profile.parse.thousands_separator,
        plain_fields=frozenset(plain),
        timezone=profile.parse.timezone,
        null_is_empty=True,
        typed=frozenset(kept),
    )


# ---- record formats (FIX, IB Flex, MT940, camt.053) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a non-tabular file, as its reader found it."""

    row: int
    raw: Mapping[str, str]  # the record's own fields as written
    fields: Mapping[str, str | None]  # what [columns] may name (the library's reading)
    derived: Mapping[str, str | None]  # the format's default canonical text
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Records:
    records: Sequence[Record]
    skipped: Mapping[str, int]
    values: Mapping[str, Mapping[str, str]]  # the format's own value maps (FIX side 1/2)
    date_formats: Mapping[str, str]  # the format's date formats (FIX 75: %Y%m%d)
    timezone_applies: bool  # the profile's [parse] timezone reads naive times
    # row -> the date its statement closes on (bank statements: statements_of_day)
    statement_days: Mapping[int, str | None] = field(default_factory=dict)


def from_records(profile: Profile, recs: Records, source: str, sha: str) -> LoadedFile:
    fields = FIELDS[profile.kind]
    if recs.records:
        present: set[str] = set()
        for r in recs.records:
            present.update(k for k, v in r.fields.items() if v is not None)
        for name in fields:
            if name in profile.columns and profile.columns[name] not in present:
                raise BadInput(
                    source,
                    f"profile {profile.name!r}: [columns] {name} = {profile.columns[name]!r} "
                    f"names a field no record of this {profile.format} file has (fields seen: "
                    f"{', '.join(sorted(present)[:60])})",
                )
    columns: dict[str, list[str | None]] = {name: [] for name in fields}
    rows: list[int] = []
    for r in recs.records:
        rows.append(r.row)
        for name in fields:
            src = profile.columns.get(name)
            columns[name].append(r.fields.get(src) if src is not None else r.derived.get(name))
    text = pl.DataFrame(
        {ROW: rows, **columns},
        schema={ROW: pl.Int64, **dict.fromkeys(fields, pl.String)},
    )
    keys = sorted({k for r in recs.records for k in r.raw})
    raw = pl.DataFrame(
        {k: [r.raw.get(k) for r in recs.records] for k in keys},
        schema=dict.fromkeys(keys, pl.String),
    )
    problems = pl.DataFrame(
        {
            ROW: [r.row for r in recs.records if r.problem],
            "reason": [r.problem for r in recs.records if r.problem],
        },
        schema={ROW: pl.Int64, "reason": pl.String},
    )
    formats = {f: ISO_DATE for f in fields if f in DATE_FIELDS}
    formats.update({f: v for f, v in recs.date_formats.items() if f in fields})
    formats.update(profile.parse.date_formats)
    return LoadedFile(
        source=source,
        format=profile.format,
        kind=profile.kind,
        sha256=sha,
        raw=raw,
        cells=finish_text(text, profile, recs.values),
        problems=problems,
        skipped=MappingProxyType(dict(recs.skipped)),
        date_formats=MappingProxyType(formats),
        plain_fields=frozenset(fields),
        timezone=profile.parse.timezone if recs.timezone_applies else "UTC",
        statement_days=MappingProxyType(dict(recs.statement_days)),
    )


def statements_of_day(loaded: LoadedFile, day: date) -> LoadedFile:
    """A bank file of several days (a week's MT940 or camt.053 statements, an IB Flex cash
    statement of a period): the records of `day`, the others skipped, counted by their date.
    MT940 and camt.053 statements are taken whole, dated by their closing balance; an IB Flex
    period record by record (its opening balance is of the period's first day, its closing
    balance of the last, a movement of its date). Each date is its own run (`--date`): read
    whole against one date, the other days' movements were breaks (missing in the book) and
    their balances were compared with the wrong day's.

    A file all of one date is read whole, whatever the date (the run's date is the operator's
    to give); a file of several dates none of which is `day` is refused."""
    days = loaded.statement_days
    if len(set(days.values())) <= 1:
        return loaded
    wanted = day.isoformat()
    rows = loaded.cells[ROW]
    keep = pl.Series([days.get(r) == wanted for r in rows.to_list()], dtype=pl.Boolean)
    if not keep.any():
        held = ", ".join(sorted({d or "(no closing balance)" for d in days.values()}))
        raise BadInput(
            loaded.source,
            f"it holds statements of {held}, none of {wanted}: reconcile it with --date set "
            "to the date of the statement(s) you mean (each date is a run of its own)",
        )
    others = Counter(days.get(r) for r, kept in zip(rows, keep, strict=True) if not kept)
    skipped = dict(loaded.skipped)
    for of, count in others.items():
        why = f"of another date ({of})" if of else "of a statement without a closing balance"
        skipped[f"records {why}"] = count
    raw = loaded.raw
    assert isinstance(raw, pl.DataFrame)  # (records are read whole; only Parquet is lazy)
    return dataclasses.replace(
        loaded,
        raw=raw.filter(keep),
        cells=loaded.cells.filter(keep),
        problems=loaded.problems.filter(pl.col(ROW).is_in(rows.filter(keep).implode())),
        skipped=MappingProxyType(skipped),
    )
