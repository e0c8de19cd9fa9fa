"""Venue profiles: how one venue's file maps onto a canonical frame (recon.canonical).

A profile is TOML (read with tomllib), as the contract shows it:

    name = "acme"            # profile name (an identifier)
    venue = "ACME"           # internal venue code whose executions the file covers
    kind = "trades"          # trades | positions | cash
    format = "csv"           # csv | parquet | fix | ibflex | mt940 | camt053
    basis = "trade"          # positions only: trade | settlement (default trade)
    description = "..."      # optional free text
    [csv]                    # delimiter (","), quote_char ('"'), encoding ("utf-8"), skip_rows (0),
                             # short_lines ("quarantine"; "blank": missing trailing fields empty)
    [columns]                # canonical field = field in the file; unnamed fields keep their names
    [values.side]            # value in the file = canonical value ("" maps a value to empty)
    [parse]                  # date formats per field, decimal_separator, thousands_separator,
                             # timezone (for times written without a zone; default UTC)
    [tolerance]              # absolute, per money/quantity field, as decimal strings

Which keys apply where:
- formats per kind: csv, parquet and ibflex serve every kind; fix serves trades; mt940 and
  camt053 serve cash.
- [csv]: every key for csv; only `encoding` for the other line formats (fix, mt940), whose text
  is decoded with it; not allowed for parquet and the XML formats (they declare their encoding).
- [columns]: for csv and parquet, a column of the file's header; for fix a tag number ("17");
  for ibflex an attribute of the Flex element ("tradeID"); for mt940 and camt053 a field of the
  parsed statement line (see recon.loaders_records). Mappable canonical fields are those of
  recon.canonical's frame for the kind, except `row`, `ref` (cash files may map `ref`) and
  `venue` (always the profile's venue).
- [parse] date formats (strftime/chrono syntax, e.g. "%d/%m/%Y") apply to csv, parquet and fix;
  decimal and thousands separators to csv and parquet; timezone to csv, parquet, fix, ibflex.
- [tolerance]: trades quantity, price, commission, fees; positions quantity, price; cash amount.
  A decimal string ("0.01") or an integer; never a TOML float (floats are inexact).

A profile is checked whole: every problem is collected and ProfileError (a BadInput, exit 3)
lists them all, each naming its key ("columns.qty: ..."). Profile.to_toml() is the canonical
text (every effective setting, keys in a fixed order, decimals normalised); Profile.version is
the sha256 of it, so a run records "profile name and version" and two spellings of the same
settings have the same version. parse_profile(p.to_toml(), ...) == p.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from oms.errors import BadInput
from oms.values import CURRENCY_PATTERN, DECIMAL_PATTERN, IDENT_PATTERN, dec_str, normalize
from recon.canonical import KINDS

FORMATS: Final = ("csv", "parquet", "fix", "ibflex", "mt940", "camt053")
FORMAT_KINDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "csv": KINDS,
        "parquet": KINDS,
        "fix": ("trades",),
        "ibflex": KINDS,
        "mt940": ("cash",),
        "camt053": ("cash",),
    }
)
BASES: Final = ("trade", "settlement")
LINE_FORMATS: Final = ("csv", "fix", "mt940")  # text decoded with [csv] encoding
TABULAR_FORMATS: Final = ("csv", "parquet")

# Canonical fields a profile may name in [columns] / [values], per kind (recon.canonical's
# columns less row, ref and venue; cash files carry their own ref).
FIELDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "trades": (
            "exec_id",
            "account",
            "symbol",
            "side",
            "quantity",
            "price",
            "currency",
            "trade_date",
            "settle_date",
            "exec_time",
            "commission",
            "fees",
            "client_order_id",
        ),
        "positions": ("account", "symbol", "quantity", "price"),
        "cash": ("account", "currency", "date", "amount", "line_type", "ref"),
    }
)
DATE_FIELDS: Final = ("trade_date", "settle_date", "date")
TIME_FIELDS: Final = ("exec_time",)
MONEY_FIELDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "trades": ("quantity", "price", "commission", "fees"),
        "positions": ("quantity", "price"),
        "cash": ("amount",),
    }
)
SIDES: Final = ("buy", "sell")
LINE_TYPES: Final = ("movement", "opening_balance", "closing_balance")

TOP_KEYS: Final = (
    "name",
    "venue",
    "kind",
    "format",
    "basis",
    "description",
    "csv",
    "columns",
    "values",
    "parse",
    "tolerance",
)
CSV_KEYS: Final = ("delimiter", "quote_char", "encoding", "skip_rows", "short_lines")
# a line with fewer fields than the header: quarantined (a file cut short), or read with the
# missing trailing fields empty (a venue, or a spreadsheet, that leaves empty trailing fields out)
SHORT_LINES: Final = ("quarantine", "blank")
PARSE_OPTION_KEYS: Final = ("decimal_separator", "thousands_separator", "timezone")
DATE_FORMAT_FORMATS: Final = ("csv", "parquet", "fix")
SEPARATOR_FORMATS: Final = ("csv", "parquet")
TIMEZONE_FORMATS: Final = ("csv", "parquet", "fix", "ibflex")


class ProfileError(BadInput):
    """A venue profile that cannot be used, with every problem found (exit 3)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, tuple(problems)
        listed = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            source, f"invalid venue profile ({len(self.problems)} problem(s)):\n{listed}"
        )


@dataclass(frozen=True, slots=True)
class CsvOptions:
    delimiter: str = ","
    quote_char: str = '"'  # "" = no quoting
    encoding: str = "utf-8"
    skip_rows: int = 0  # physical lines before the header
    short_lines: str = "quarantine"  # SHORT_LINES


@dataclass(frozen=True, slots=True)
class ParseOptions:
    date_formats: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    decimal_separator: str = "."
    thousands_separator: str | None = None
    timezone: str = "UTC"  # zone of times written without one


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    venue: str
    kind: str  # trades | positions | cash
    format: str  # csv | parquet | fix | ibflex | mt940 | camt053
    basis: str | None = None  # positions: trade | settlement
    description: str | None = None
    csv: CsvOptions = CsvOptions()
    columns: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    values: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    parse: ParseOptions = ParseOptions()
    tolerance: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))

    def source_of(self, canonical: str) -> str:
        """The file's name for a canonical field ([columns], else the field's own name)."""
        return self.columns.get(canonical, canonical)

    def to_toml(self) -> str:
        """The canonical text of the profile (see the module docstring)."""
        return _emit(self)

    @property
    def version(self) -> str:
        """sha256 (hex) of the canonical text."""
        return hashlib.sha256(self.to_toml().encode("utf-8")).hexdigest()


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile file (UTF-8 TOML); BadInput/ProfileError when it cannot be used."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(str(path), "no such profile file")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(
            str(path), f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from None
    return parse_profile(text, str(path))


def parse_profile(text: str, source: str) -> Profile:
    """Parse and check a profile's TOML text; `source` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(source, [f"not valid TOML: {exc}"]) from None
    return _Checker(source).profile(doc)


# ---- checking ---------------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a float",
        bool: "a boolean",
        dict: "a table",
        list: "an array",
    }.get(type(value), type(value).__name__)


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def bad(self, key: str, why: str) -> None:
        self.problems.append(f"{key}: {why}")

    def string(self, doc: Mapping[str, Any], key: str, path: str, *, required: bool) -> str | None:
        if key not in doc:
            if required:
                self.bad(path, "missing (required)")
            return None
        value = doc[key]
        if not isinstance(value, str):
            self.bad(path, f"must be a string, not {_type_name(value)}")
            return None
        return value

    def choice(
        self, doc: Mapping[str, Any], key: str, choices: tuple[str, ...], *, required: bool
    ) -> str | None:
        value = self.string(doc, key, key, required=required)
        if value is not None and value not in choices:
            self.bad(key, f"{_show(value)} is not one of {', '.join(choices)}")
            return None
        return value

    def table(self, doc: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            self.bad(path, f"must be a table ([{path}]), not {_type_name(value)}")
            return {}
        return value

    def unknown(self, doc: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
        for key in doc:
            if key not in known:
                self.bad(f"{prefix}{key}", f"unknown key (known: {', '.join(known)})")

    def char(self, value: object, path: str, *, empty_ok: bool = False) -> str | None:
        if not isinstance(value, str):
            self.bad(path, f"must be a one-character string, not {_type_name(value)}")
            return None
        if value == "" and empty_ok:
            return value
        if len(value) != 1 or value in "\r\n":
            self.bad(path, f"must be exactly one character (not a line break), not {_show(value)}")
            return None
        return value

    def profile(self, doc: Mapping[str, Any]) -> Profile:
        self.unknown(doc, TOP_KEYS, "")
        name = self.string(doc, "name", "name", required=True)
        if name is not None and not re.match(IDENT_PATTERN, name):
            self.bad("name", f"{_show(name)} is not an identifier (letters, digits, ._:/-)")
        venue = self.string(doc, "venue", "venue", required=True)
        if venue is not None and not re.match(IDENT_PATTERN, venue):
            self.bad("venue", f"{_show(venue)} is not a venue code (letters, digits, ._:/-)")
        kind = self.choice(doc, "kind", KINDS, required=True)
        fmt = self.choice(doc, "format", FORMATS, required=True)
        if kind is not None and fmt is not None and kind not in FORMAT_KINDS[fmt]:
            self.bad(
                "format",
                f"{fmt} files are for {' or '.join(FORMAT_KINDS[fmt])} only, not {kind} "
                f"(for {kind} use one of "
                f"{', '.join(f for f in FORMATS if kind in FORMAT_KINDS[f])})",
            )
        basis = self.choice(doc, "basis", BASES, required=False)
        if kind == "positions" and basis is None and "basis" not in doc:
            basis = "trade"
        if basis is not None and kind is not None and kind != "positions":
            self.bad("basis", "applies to positions profiles only")
        description = self.string(doc, "description", "description", required=False)
        fields = FIELDS.get(kind or "", ())
        csv = self.csv_options(self.table(doc, "csv", "csv"), fmt, "csv" in doc)
        columns = self.columns(self.table(doc, "columns", "columns"), kind, fields)
        values = self.values(self.table(doc, "values", "values"), kind, fields)
        parse = self.parse_options(self.table(doc, "parse", "parse"), kind, fmt)
        tolerance = self.tolerance(self.table(doc, "tolerance", "tolerance"), kind)
        if self.problems:
            raise ProfileError(self.source, self.problems)
        assert name is not None
        assert venue is not None
        assert kind is not None
        assert fmt is not None
        return Profile(
            name=name,
            venue=venue,
            kind=kind,
            format=fmt,
            basis=basis,
            description=description,
            csv=csv,
            columns=columns,
            values=values,
            parse=parse,
            tolerance=tolerance,
        )

    def csv_options(self, doc: dict[str, Any], fmt: str | None, given: bool) -> CsvOptions:
        self.unknown(doc, CSV_KEYS, "csv.")
        if given and fmt is not None and fmt not in LINE_FORMATS:
            self.bad("csv", f"does not apply to {fmt} files")
        elif fmt is not None and fmt != "csv":
            for key in doc:
                if key in CSV_KEYS and key != "encoding":
                    self.bad(f"csv.{key}", f"applies to csv files only, not {fmt}")
        out = CsvOptions()
        delimiter = out.delimiter
        if "delimiter" in doc:
            delimiter = self.char(doc["delimiter"], "csv.delimiter") or delimiter
            if not delimiter.isascii():
                self.bad("csv.delimiter", f"must be an ASCII character, not {_show(delimiter)}")
        quote = out.quote_char
        if "quote_char" in doc:
            got = self.char(doc["quote_char"], "csv.quote_char", empty_ok=True)
            quote = quote if got is None else got
            if not quote.isascii():
                self.bad("csv.quote_char", f"must be an ASCII character, not {_show(quote)}")
            elif quote and quote == delimiter:
                self.bad("csv.quote_char", "must differ from csv.delimiter")
        encoding = out.encoding
        if "encoding" in doc:
            value = doc["encoding"]
            if not isinstance(value, str):
                self.bad("csv.encoding", f"must be a string, not {_type_name(value)}")
            else:
                try:
                    encoding = codecs.lookup(value).name
                except LookupError:
                    self.bad(
                        "csv.encoding",
                        f"unknown encoding {_show(value)} (e.g. utf-8, latin-1, cp1252)",
                    )
        skip = out.skip_rows
        if "skip_rows" in doc:
            value = doc["skip_rows"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.bad("csv.skip_rows", f"must be an integer >= 0, not {_show(value)}")
            else:
                skip = value
        short = self.string(doc, "short_lines", "csv.short_lines", required=False)
        if short is not None and short not in SHORT_LINES:
            self.bad("csv.short_lines", f"{_show(short)} is not one of {', '.join(SHORT_LINES)}")
        return CsvOptions(
            delimiter=delimiter,
            quote_char=quote,
            encoding=encoding,
            skip_rows=skip,
            short_lines=short if short in SHORT_LINES else out.short_lines,
        )

    def columns(
        self, doc: dict[str, Any], kind: str | None, fields: tuple[str, ...]
    ) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for key, value in doc.items():
            path = f"columns.{key}"
            if kind is not None and key not in fields:
                self.bad(path, self.unknown_field(key, kind, fields))
                continue
            if not isinstance(value, str) or not value.strip():
                self.bad(path, f"must be a non-empty string naming the file's field, not "
                               f"{_show(value)}")
                continue
            out[key] = value.strip()
        return MappingProxyType(dict(sorted(out.items())))

    @staticmethod
    def unknown_field(key: str, kind: str, fields: tuple[str, ...]) -> str:
        if key == "venue" and kind == "trades":
            return "not mappable: every row's venue is the profile's `venue`"
        if key in ("row", "ref"):
            return f"not mappable: `{key}` is set by the loader"
        return f"unknown canonical field for {kind} (fields: {', '.join(fields)})"

    def values(
        self, doc: dict[str, Any], kind: str | None, fields: tuple[str, ...]
    ) -> Mapping[str, Mapping[str, str]]:
        out: dict[str, Mapping[str, str]] = {}
        for key, table in doc.items():
            path = f"values.{key}"
            if kind is not None and key not in fields:
                self.bad(path, self.unknown_field(key, kind, fields))
                continue
            if not isinstance(table, dict):
                self.bad(path, f"must be a table ([values.{key}]), not {_type_name(table)}")
                continue
            mapping: dict[str, str] = {}
            for file_value, canonical in table.items():
                vpath = f"{path}.{file_value}" if re.match(r"^[A-Za-z0-9_-]+$", file_value) \
                    else f"{path}.{_quote(file_value)}"
                if not isinstance(canonical, str):
                    self.bad(vpath, f"must be a string, not {_type_name(canonical)}")
                    continue
                problem = _bad_target(key, canonical)
                if problem:
                    self.bad(vpath, problem)
                    continue
                mapping[file_value] = canonical
            out[key] = MappingProxyType(dict(sorted(mapping.items())))
        return MappingProxyType(dict(sorted(out.items())))

    def parse_options(self, doc: dict[str, Any], kind: str | None, fmt: str | None) -> ParseOptions:
        kind_fields = FIELDS.get(kind or "", ())
        dates: dict[str, str] = {}
        out = ParseOptions()
        decimal_sep, thousands, tz = out.decimal_separator, out.thousands_separator, out.timezone
        for key, value in doc.items():
            path = f"parse.{key}"
            if key in DATE_FIELDS or key in TIME_FIELDS:
                if kind is not None and key not in kind_fields:
                    self.bad(path, f"{kind} files have no field {key}")
                    continue
                if fmt is not None and fmt not in DATE_FORMAT_FORMATS:
                    self.bad(path, f"date formats apply to csv, parquet and fix files; the {fmt} "
                                   "loader reads dates itself")
                    continue
                if not isinstance(value, str):
                    self.bad(path, f"must be a date format string, not {_type_name(value)}")
                    continue
                problem = _bad_format(value, time=key in TIME_FIELDS)
                if problem:
                    self.bad(path, problem)
                    continue
                dates[key] = value
            elif key in ("decimal_separator", "thousands_separator"):
                if fmt is not None and fmt not in SEPARATOR_FORMATS:
                    self.bad(path, f"applies to csv and parquet files only, not {fmt}")
                    continue
                ch = self.char(value, path)
                if ch is None:
                    continue
                if ch.isdigit() or ch in "-+":
                    self.bad(path, f"cannot be {_show(ch)}")
                    continue
                if key == "decimal_separator":
                    decimal_sep = ch
                else:
                    thousands = ch
            elif key == "timezone":
                if fmt is not None and fmt not in TIMEZONE_FORMATS:
                    self.bad(path, f"does not apply to {fmt} files")
                    continue
                if not isinstance(value, str):
                    self.bad(path, f"must be a string, not {_type_name(value)}")
                    continue
                try:
                    ZoneInfo(value)
                except (ZoneInfoNotFoundError, ValueError):
                    self.bad(path, f"unknown time zone {_show(value)} (e.g. UTC, "
                                   "America/New_York, Europe/London)")
                    continue
                tz = value
            else:
                known = [f for f in kind_fields if f in DATE_FIELDS or f in TIME_FIELDS]
                self.bad(path, f"unknown key (known: {', '.join([*known, *PARSE_OPTION_KEYS])})")
        if thousands is not None and thousands == decimal_sep:
            self.bad("parse.thousands_separator", "must differ from the decimal separator "
                                                  f"({_show(decimal_sep)})")
        return ParseOptions(
            date_formats=MappingProxyType(dict(sorted(dates.items()))),
            decimal_separator=decimal_sep,
            thousands_separator=thousands,
            timezone=tz,
        )

    def tolerance(self, doc: dict[str, Any], kind: str | None) -> Mapping[str, Decimal]:
        allowed = MONEY_FIELDS.get(kind or "", ())
        out: dict[str, Decimal] = {}
        for key, value in doc.items():
            path = f"tolerance.{key}"
            if kind is not None and key not in allowed:
                self.bad(path, f"no tolerance for {key} on {kind} (fields: {', '.join(allowed)})")
                continue
            if isinstance(value, float):
                self.bad(path, f"write the tolerance as a decimal string (\"{value}\"), not a "
                               "TOML float: floats are inexact")
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                self.bad(path, f"must be a decimal string such as \"0.01\", not "
                               f"{_type_name(value)}")
                continue
            text = str(value).strip()
            if not re.match(DECIMAL_PATTERN, text):
                self.bad(path, f"{_show(value)} is not a decimal number (digits with an optional "
                               "point, at most 12 decimals)")
                continue
            amount = Decimal(text)
            if amount < 0:
                self.bad(path, f"{_show(value)} must not be negative")
                continue
            out[key] = normalize(amount)
        return MappingProxyType(dict(sorted(out.items())))


def _bad_target(field_name: str, canonical: str) -> str | None:
    if canonical == "":
        return None  # maps the value to empty (null)
    if field_name == "side" and canonical not in SIDES:
        return f"{_show(canonical)} is not a side (buy, sell)"
    if field_name == "line_type" and canonical not in LINE_TYPES:
        return f"{_show(canonical)} is not a line type ({', '.join(LINE_TYPES)})"
    if field_name == "currency" and not re.match(CURRENCY_PATTERN, canonical):
        return f"{_show(canonical)} is not a three-letter currency code"
    return None


_SAMPLE = datetime(2026, 12, 31, 13, 45, 59)  # noqa: DTZ001 (a fixed sample, no zone)


def _bad_format(fmt: str, *, time: bool) -> str | None:
    """Why a date/time format cannot read the dates it writes (None: it can)."""
    if "%" not in fmt:
        return f"{_show(fmt)} is not a date format (use strftime codes such as %d/%m/%Y)"
    zoned = any(z in fmt for z in ("%z", "%:z", "%#z"))
    base = _SAMPLE.replace(tzinfo=UTC) if zoned else _SAMPLE
    try:
        sample = base.strftime(fmt.replace("%.f", "").replace("%:z", "%z").replace("%#z", "%z"))
    except ValueError as exc:
        return f"{_show(fmt)} is not a valid format ({exc})"
    series = pl.Series([sample])
    try:
        if time:
            parsed = series.str.to_datetime(
                fmt, strict=False, time_unit="us", time_zone="UTC" if zoned else None
            )
            ok = parsed[0] is not None and parsed[0].date() == _SAMPLE.date()
        else:
            parsed_date = series.str.to_date(fmt, strict=False)[0]
            ok = parsed_date == _SAMPLE.date()
    except pl.exceptions.PolarsError as exc:
        return f"{_show(fmt)} is not a valid format ({str(exc).splitlines()[0]})"
    if not ok:
        what = "dates (it needs a year, a month and a day)"
        return f"{_show(fmt)} cannot read {what}: {sample!r} does not parse back"
    return None


# ---- canonical text ---------------------------------------------------------------------------


def _quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _key(text: str) -> str:
    return text if re.match(r"^[A-Za-z0-9_-]+$", text) else _quote(text)


def _emit(p: Profile) -> str:
    lines = [
        f"name = {_quote(p.name)}",
        f"venue = {_quote(p.venue)}",
        f"kind = {_quote(p.kind)}",
        f"format = {_quote(p.format)}",
    ]
    if p.basis is not None:
        lines.append(f"basis = {_quote(p.basis)}")
    if p.description is not None:
        lines.append(f"description = {_quote(p.description)}")
    if p.format == "csv":
        lines += [
            "",
            "[csv]",
            f"delimiter = {_quote(p.csv.delimiter)}",
            f"quote_char = {_quote(p.csv.quote_char)}",
            f"encoding = {_quote(p.csv.encoding)}",
            f"skip_rows = {p.csv.skip_rows}",
        ]
        if p.csv.short_lines != SHORT_LINES[0]:  # (the default is not written: versions hold)
            lines.append(f"short_lines = {_quote(p.csv.short_lines)}")
    elif p.format in LINE_FORMATS:
        lines += ["", "[csv]", f"encoding = {_quote(p.csv.encoding)}"]
    if p.columns:
        lines += ["", "[columns]"]
        lines += [f"{_key(k)} = {_quote(v)}" for k, v in p.columns.items()]
    for fld, mapping in p.values.items():
        lines += ["", f"[values.{_key(fld)}]"]
        lines += [f"{_key(k)} = {_quote(v)}" for k, v in mapping.items()]
    parse: list[str] = [f"{_key(k)} = {_quote(v)}" for k, v in p.parse.date_formats.items()]
    if p.format in SEPARATOR_FORMATS:
        parse.append(f"decimal_separator = {_quote(p.parse.decimal_separator)}")
        if p.parse.thousands_separator is not None:
            parse.append(f"thousands_separator = {_quote(p.parse.thousands_separator)}")
    if p.format in TIMEZONE_FORMATS:
        parse.append(f"timezone = {_quote(p.parse.timezone)}")
    if parse:
        lines += ["", "[parse]", *parse]
    if p.tolerance:
        lines += ["", "[tolerance]"]
        lines += [f"{_key(k)} = {_quote(dec_str(v))}" for k, v in p.tolerance.items()]
    return "\n".join(lines) + "\n"
