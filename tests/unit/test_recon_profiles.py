from decimal import Decimal
from pathlib import Path

import pytest

from oms.errors import BadInput
from recon.profiles import FORMAT_KINDS, Profile, ProfileError, load_profile, parse_profile

FIXTURES = Path(__file__).parent.parent / "fixtures" / "recon"

# The contract's example, as written (comments, empty [csv] table and all).
CONTRACT_EXAMPLE = """
name = "acme"            # profile name
venue = "ACME"           # internal venue code whose executions this file covers
kind = "trades"          # trades | positions | cash
format = "csv"           # csv | parquet | fix | ibflex | mt940 | camt053
[csv]                    # optional: delimiter (","), encoding ("utf-8"), skip_rows (0)
[columns]                # canonical field = column in the file; unnamed fields keep their names
exec_id = "TradeRef"
quantity = "Qty"
[values.side]            # value in the file = canonical value
B = "buy"
S = "sell"
[parse]                  # optional: date formats per field, decimal and thousands separators
trade_date = "%d/%m/%Y"
thousands_separator = ","
[tolerance]              # absolute, per canonical field, as decimal strings
price = "0.0001"
commission = "0.01"
fees = "0.01"
"""

HEAD = 'name = "p"\nvenue = "V"\n'


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, "test.toml")
    assert info.value.exit_code == 3
    assert isinstance(info.value, BadInput)
    return info.value.problems


def test_the_contract_example_is_accepted_as_written() -> None:
    p = parse_profile(CONTRACT_EXAMPLE, "acme.toml")
    assert (p.name, p.venue, p.kind, p.format) == ("acme", "ACME", "trades", "csv")
    assert p.columns == {"exec_id": "TradeRef", "quantity": "Qty"}
    assert p.source_of("quantity") == "Qty"
    assert p.source_of("account") == "account"  # unnamed fields keep their names
    assert p.values["side"] == {"B": "buy", "S": "sell"}
    assert p.parse.date_formats == {"trade_date": "%d/%m/%Y"}
    assert p.parse.thousands_separator == ","
    assert p.tolerance == {
        "price": Decimal("0.0001"),
        "commission": Decimal("0.01"),
        "fees": Decimal("0.01"),
    }
    assert (p.csv.delimiter, p.csv.encoding, p.csv.skip_rows, p.csv.quote_char) == (
        ",", "utf-8", 0, '"'
    )
    assert p.basis is None


def test_canonical_text_round_trips_and_versions_the_settings() -> None:
    p = parse_profile(CONTRACT_EXAMPLE, "acme.toml")
    text = p.to_toml()
    again = parse_profile(text, "canonical")
    assert again == p
    assert again.to_toml() == text
    assert len(p.version) == 64 and p.version == again.version
    # the same settings spelled differently: same version
    reordered = (
        'format = "csv"\nkind = "trades"\nvenue = "ACME"\nname = "acme"\n'
        '[tolerance]\nfees = "0.010"\ncommission = "0.01"\nprice = "0.00010"\n'
        '[values.side]\nS = "sell"\nB = "buy"\n'
        '[columns]\nquantity = "Qty"\nexec_id = "TradeRef"\n'
        '[parse]\nthousands_separator = ","\ntrade_date = "%d/%m/%Y"\n'
        '[csv]\ndelimiter = ","\nencoding = "UTF-8"\n'
    )
    assert parse_profile(reordered, "r").version == p.version
    changed = CONTRACT_EXAMPLE.replace('price = "0.0001"', 'price = "0.001"')
    assert parse_profile(changed, "c").version != p.version
    # short_lines: its default is not written (the versions of profiles made before it hold)
    assert "short_lines" not in text
    assert parse_profile(reordered + 'short_lines = "quarantine"\n', "d").version == p.version
    blank = parse_profile(reordered + 'short_lines = "blank"\n', "b")
    assert blank.csv.short_lines == "blank" and blank.version != p.version
    assert 'short_lines = "blank"' in blank.to_toml()
    assert parse_profile(blank.to_toml(), "again") == blank


def test_canonical_text_quotes_awkward_keys_and_values() -> None:
    text = (
        HEAD + 'kind = "trades"\nformat = "csv"\ndescription = "ACME \\"EOD\\"\\tfile"\n'
        '[columns]\nside = "Buy/Sell \\u00e9"\n'
        '[values.side]\n"BUY (Ca.)" = "buy"\n"a\\"b" = "sell"\n'
    )
    p = parse_profile(text, "t")
    assert p.values["side"] == {"BUY (Ca.)": "buy", 'a"b': "sell"}
    assert parse_profile(p.to_toml(), "again") == p


def test_load_profile_reads_a_file(tmp_path: Path) -> None:
    p = load_profile(FIXTURES / "acme_trades.toml")
    assert p.name == "acme" and p.csv.delimiter == ";"
    with pytest.raises(BadInput) as info:
        load_profile(tmp_path / "nope.toml")
    assert info.value.exit_code == 3
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "\xff"\n')
    with pytest.raises(BadInput, match="not UTF-8"):
        load_profile(bad)


def test_positions_basis_defaults_to_trade_and_is_checked() -> None:
    p = parse_profile(HEAD + 'kind = "positions"\nformat = "csv"\n', "t")
    assert p.basis == "trade"
    p = parse_profile(HEAD + 'kind = "positions"\nformat = "csv"\nbasis = "settlement"\n', "t")
    assert p.basis == "settlement"
    assert any(x.startswith("basis:") for x in problems(
        HEAD + 'kind = "positions"\nformat = "csv"\nbasis = "value"\n'))
    assert problems(HEAD + 'kind = "trades"\nformat = "csv"\nbasis = "trade"\n') == (
        "basis: applies to positions profiles only",
    )


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('kind = "trades"\nformat = "csv"\ncolour = "red"\n', "colour", "unknown key"),
        ('kind = "trade"\nformat = "csv"\n', "kind", "not one of trades, positions, cash"),
        ('kind = "trades"\nformat = "xls"\n', "format", "not one of"),
        ('kind = "trades"\nformat = "mt940"\n', "format", "for cash only"),
        ('kind = "positions"\nformat = "fix"\n', "format", "for trades only"),
        ('kind = "cash"\nformat = "camt053"\n[columns]\nside = "x"\n', "columns.side",
         "unknown canonical field for cash"),
        ('kind = "trades"\nformat = "csv"\n[columns]\nqty = "Qty"\n', "columns.qty",
         "unknown canonical field"),
        ('kind = "trades"\nformat = "csv"\n[columns]\nvenue = "Mkt"\n', "columns.venue",
         "profile's `venue`"),
        ('kind = "trades"\nformat = "csv"\n[columns]\nquantity = 3\n', "columns.quantity",
         "non-empty string"),
        ('kind = "trades"\nformat = "csv"\n[values.side]\nB = "purchase"\n', "values.side.B",
         "not a side"),
        ('kind = "trades"\nformat = "csv"\n[values]\nside = "buy"\n', "values.side",
         "must be a table"),
        ('kind = "cash"\nformat = "csv"\n[values.line_type]\nO = "open"\n',
         "values.line_type.O", "not a line type"),
        ('kind = "trades"\nformat = "csv"\n[tolerance]\nprice = 0.01\n', "tolerance.price",
         "not a TOML float"),
        ('kind = "trades"\nformat = "csv"\n[tolerance]\nprice = "1e-4"\n', "tolerance.price",
         "not a decimal number"),
        ('kind = "trades"\nformat = "csv"\n[tolerance]\nprice = "-0.01"\n', "tolerance.price",
         "must not be negative"),
        ('kind = "trades"\nformat = "csv"\n[tolerance]\nprice = true\n', "tolerance.price",
         "decimal string"),
        ('kind = "cash"\nformat = "csv"\n[tolerance]\nprice = "0.01"\n', "tolerance.price",
         "no tolerance for price on cash"),
        ('kind = "trades"\nformat = "csv"\n[csv]\ndelimiter = ";;"\n', "csv.delimiter",
         "exactly one character"),
        ('kind = "trades"\nformat = "csv"\n[csv]\nencoding = "klingon"\n', "csv.encoding",
         "unknown encoding"),
        ('kind = "trades"\nformat = "csv"\n[csv]\nskip_rows = -1\n', "csv.skip_rows",
         "integer >= 0"),
        ('kind = "trades"\nformat = "csv"\n[csv]\nskip_rows = true\n', "csv.skip_rows",
         "integer >= 0"),
        ('kind = "trades"\nformat = "csv"\n[csv]\nseparator = ";"\n', "csv.separator",
         "unknown key"),
        ('kind = "trades"\nformat = "csv"\n[csv]\nshort_lines = "drop"\n', "csv.short_lines",
         "'drop' is not one of quarantine, blank"),
        ('kind = "trades"\nformat = "csv"\n[csv]\nshort_lines = true\n', "csv.short_lines",
         "must be a string"),
        ('kind = "trades"\nformat = "fix"\n[csv]\nshort_lines = "blank"\n', "csv.short_lines",
         "csv files only"),
        ('kind = "trades"\nformat = "parquet"\n[csv]\nencoding = "latin-1"\n', "csv",
         "does not apply to parquet"),
        ('kind = "trades"\nformat = "fix"\n[csv]\ndelimiter = ";"\n', "csv.delimiter",
         "csv files only"),
        ('kind = "trades"\nformat = "csv"\n[parse]\ntrade_date = "%d/%m"\n', "parse.trade_date",
         "cannot read dates"),
        ('kind = "trades"\nformat = "csv"\n[parse]\ntrade_date = "dd/mm/yyyy"\n',
         "parse.trade_date", "not a date format"),
        ('kind = "trades"\nformat = "ibflex"\n[parse]\ntrade_date = "%Y%m%d"\n',
         "parse.trade_date", "reads dates itself"),
        ('kind = "cash"\nformat = "csv"\n[parse]\ntrade_date = "%Y%m%d"\n', "parse.trade_date",
         "cash files have no field trade_date"),
        ('kind = "trades"\nformat = "csv"\n[parse]\ntimezone = "Mars/Olympus"\n',
         "parse.timezone", "unknown time zone"),
        ('kind = "trades"\nformat = "csv"\n[parse]\ndecimal = ","\n', "parse.decimal",
         "unknown key"),
        ('kind = "trades"\nformat = "csv"\n[parse]\nthousands_separator = "."\n',
         "parse.thousands_separator", "must differ from the decimal separator"),
        ('kind = "trades"\nformat = "mt940"\n[parse]\ndecimal_separator = ","\n',
         "parse.decimal_separator", "csv and parquet files only"),
    ],
)
def test_each_problem_names_its_key(body: str, key: str, words: str) -> None:
    found = problems(HEAD + body)
    assert any(p.startswith(f"{key}: ") and words in p for p in found), found


def test_required_keys_and_all_problems_at_once() -> None:
    found = problems(
        'kind = "cash"\nformat = "fix"\n[columns]\nfoo = "x"\n[tolerance]\nfees = 1.5\n'
    )
    keys = [p.split(":")[0] for p in found]
    assert keys == ["name", "venue", "format", "columns.foo", "tolerance.fees"]
    with pytest.raises(ProfileError) as info:
        parse_profile("name = ", "broken.toml")
    assert "not valid TOML" in info.value.message and "broken.toml" in info.value.message


def test_integer_tolerance_and_empty_value_targets_are_accepted() -> None:
    p = parse_profile(
        HEAD + 'kind = "trades"\nformat = "csv"\n[tolerance]\nquantity = 1\n'
        '[values.client_order_id]\n"N/A" = ""\n',
        "t",
    )
    assert p.tolerance["quantity"] == Decimal(1)
    assert p.values["client_order_id"] == {"N/A": ""}


def test_profile_is_frozen() -> None:
    p = parse_profile(CONTRACT_EXAMPLE, "acme.toml")
    with pytest.raises(AttributeError):
        p.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.columns["x"] = "y"  # type: ignore[index]
    assert isinstance(p, Profile)


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [(f, k) for f, kinds in sorted(FORMAT_KINDS.items()) for k in kinds],
)
def test_every_format_and_kind_round_trips(fmt: str, kind: str) -> None:
    p = parse_profile(f'{HEAD}kind = "{kind}"\nformat = "{fmt}"\n', "t")
    again = parse_profile(p.to_toml(), "canonical")
    assert again == p and again.version == p.version
