import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.errors import BadInput, TieoutError
from recon.canonical import CASH, POSITIONS, TRADES
from recon.loaders import LoadedFile, load, load_bytes, statements_of_day
from recon.profiles import Profile, load_profile, parse_profile
from recon.validate import Validated, load_and_validate, validate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "recon"
D = Decimal


def profile(kind: str, fmt: str, extra: str = "") -> Profile:
    return parse_profile(
        f'name = "t"\nvenue = "ACME"\nkind = "{kind}"\nformat = "{fmt}"\n{extra}', "test"
    )


def check(prof: Profile, loaded: LoadedFile) -> Validated:
    out = validate(prof, loaded)
    assert out.valid.height + out.quarantine.height == loaded.rows
    assert set(out.valid["row"]).isdisjoint(out.quarantine["row"])
    assert sorted([*out.valid["row"], *out.quarantine["row"]]) == sorted(loaded.cells["row"])
    assert dict(out.valid.schema) == {"trades": TRADES, "positions": POSITIONS, "cash": CASH}[
        prof.kind
    ]
    assert out.quarantine.schema == pl.Schema(
        {"row": pl.Int64, "values": pl.String, "reasons": pl.List(pl.String)}
    )
    return out


def rows(frame: pl.DataFrame, *cols: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in frame.select(cols).iter_rows()]


def quarantined(out: Validated) -> dict[int, list[str]]:
    return {r: list(reasons) for r, reasons in rows(out.quarantine, "row", "reasons")}


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return str(path)


# ---- CSV --------------------------------------------------------------------------------------


def test_csv_with_semicolons_quotes_thousands_and_day_first_dates() -> None:
    prof = load_profile(FIXTURES / "acme_trades.toml")
    loaded, out = load_and_validate(prof, FIXTURES / "acme_trades.csv")
    check(prof, loaded)
    assert loaded.rows == 4 and out.quarantine.height == 0
    assert len(loaded.sha256) == 64
    v = out.valid
    # row = physical line: the quoted note of ACME-0003 spans lines 4-5
    assert rows(v, "row", "ref", "exec_id", "venue") == [
        (2, "ACME-0001", "ACME-0001", "ACME"),
        (3, "ACME-0002", "ACME-0002", "ACME"),
        (4, "ACME-0003", "ACME-0003", "ACME"),
        (6, "ACME-0004", "ACME-0004", "ACME"),
    ]
    assert rows(v, "side", "quantity", "price", "currency") == [
        ("buy", D("1234.5"), D("190.25"), "USD"),
        ("sell", D("10"), D("1410.123456789012"), "USD"),
        ("buy", D("5"), D("250"), "USD"),
        ("sell", D("5"), D("250.5"), "USD"),
    ]
    assert v["trade_date"].to_list() == [date(2026, 3, 11)] * 4
    assert v["settle_date"].to_list() == [date(2026, 3, 12)] * 2 + [None, date(2026, 3, 12)]
    assert v["exec_time"].to_list()[:3] == [
        datetime(2026, 3, 11, 14, 30, 5, tzinfo=UTC),
        datetime(2026, 3, 11, 14, 0, 0, tzinfo=UTC),
        None,
    ]
    assert v["commission"].to_list() == [D("1.25"), D("0"), None, D("-0.10")]
    assert v["fees"].to_list() == [None] * 4  # not reported: null, never a made-up zero
    raw = loaded.raw.row(3, named=True)
    assert raw["Note"] == 'he said "sell"' and raw["Qty"] == "5"


def test_latin1_file_with_banner_lines_and_decimal_commas() -> None:
    prof = profile(
        "trades",
        "csv",
        '[csv]\nencoding = "latin-1"\nskip_rows = 2\n'
        '[columns]\naccount = "Konto"\nsymbol = "Wertpapier"\nside = "Richtung"\n'
        'quantity = "Menge"\nprice = "Kurs"\ncurrency = "Währung"\ntrade_date = "Handelstag"\n'
        '[values.side]\nKauf = "buy"\nVerkauf = "sell"\n'
        '[parse]\ntrade_date = "%d.%m.%Y"\ndecimal_separator = ","\nthousands_separator = "."\n',
    )
    loaded = load(prof, FIXTURES / "broker_trades_latin1.csv")
    out = check(prof, loaded)
    assert out.quarantine.height == 0
    assert rows(out.valid, "row", "ref", "side", "quantity", "price", "trade_date") == [
        (4, "row:4", "buy", D("1234.5"), D("118.42"), date(2026, 3, 11)),
        (5, "row:5", "sell", D("10"), D("201.1"), date(2026, 3, 11)),
    ]
    assert loaded.raw["Bemerkung"].to_list() == ["Société Générale", "Zürich «OTC»"]


def test_undecodable_bytes_name_the_encoding_offset_and_the_key() -> None:
    prof = profile("trades", "csv", "[csv]\nskip_rows = 2\n")
    with pytest.raises(BadInput) as info:
        load(prof, FIXTURES / "broker_trades_latin1.csv")
    msg = info.value.message
    assert info.value.exit_code == 3
    assert "utf-8" in msg and "byte 0xe4 at byte offset 19 (line 1)" in msg
    assert "[csv] encoding" in msg


@pytest.mark.parametrize("content", [b"", b"  \n\r\n\t"])
def test_an_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(BadInput, match="the file is empty") as info:
        load(profile("trades", "csv"), write(tmp_path / "e.csv", content))
    assert info.value.exit_code == 3


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        load(profile("trades", "csv"), tmp_path / "nope.csv")


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    prof = profile("trades", "csv")
    f = write(tmp_path / "h.csv", "account,symbol,side,quantity,price,trade_date\n")
    loaded, out = load_and_validate(prof, f)
    check(prof, loaded)
    assert loaded.rows == 0 and out.valid.height == 0 and out.quarantine.height == 0


def test_skip_rows_past_the_end_is_refused(tmp_path: Path) -> None:
    prof = profile("trades", "csv", "[csv]\nskip_rows = 5\n")
    with pytest.raises(BadInput, match=r"no header line after the 5 line\(s\)"):
        load(prof, write(tmp_path / "s.csv", "a,b\n1,2\n"))


def test_missing_mapped_columns_are_named_with_the_mapping(tmp_path: Path) -> None:
    prof = profile("trades", "csv", '[columns]\nquantity = "Qty"\nsettle_date = "Settle"\n')
    f = write(tmp_path / "m.csv", "account,symbol,side,price,trade_date,Quantity\nA,S,buy,1,x,1\n")
    with pytest.raises(BadInput) as info:
        load(prof, f)
    msg = info.value.message
    assert info.value.exit_code == 3
    assert "quantity (mapped to 'Qty' by [columns] quantity = 'Qty')" in msg
    assert "settle_date (mapped to 'Settle'" in msg
    assert "'Quantity'" in msg and "'trade_date'" in msg  # the file's columns
    f = write(tmp_path / "n.csv", "account,symbol,Qty,Settle\nA,S,1,x\n")
    with pytest.raises(BadInput) as info:
        load(prof, f)
    assert "side (no [columns] entry, so a column named 'side')" in info.value.message
    assert "price" in info.value.message and "trade_date" in info.value.message


def test_a_repeated_header_column_is_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "d.csv", "account,symbol,account\nA,B,C\n")
    with pytest.raises(BadInput, match=r"'account' \(columns 1, 3\)"):
        load(profile("positions", "csv"), f)


def test_quarantine_keeps_every_bad_row_with_all_its_reasons(tmp_path: Path) -> None:
    prof = profile(
        "trades", "csv", '[columns]\nexec_id = "id"\n[values.side]\nB = "buy"\nS = "sell"\n'
    )
    text = (
        "id,account,symbol,side,quantity,price,currency,trade_date,settle_date,exec_time\n"
        "E1,A1,AAPL,B,10,1.5,USD,2026-03-11,2026-03-12,2026-03-11T10:00:00Z\n"  # 2 ok
        "E2,,AAPL,X,-3,0,US,2026-02-30,,noon\n"  # 3: six problems
        "E 3,A1,AAPL,S,1.1234567890123,1e3,USD,2026-03-11,2026-03-10,\n"  # 4
        "\n"  # 5: blank, skipped and counted
        "E4,A1,AAPL,S,1,2,USD,2026-03-11,,,surplus\n"  # 6: more fields than the header
        ",A1,MSFT,sell,1,2,usd,2026-03-11,,\n"  # 7 ok, ref row:7
        "E6,A1,AAPL,buy,1,2\n"  # 8: fewer fields than the header (trade_date among them)
    )
    loaded = load(prof, write(tmp_path / "q.csv", text))
    out = check(prof, loaded)
    assert loaded.rows == 6 and loaded.skipped == {"blank line": 1}
    assert rows(out.valid, "row", "ref", "currency") == [(2, "E1", "USD"), (7, "row:7", "USD")]
    q = quarantined(out)
    assert sorted(q) == [3, 4, 6, 8]
    assert q[3] == [
        "account: is required and empty",
        "side: 'X' must be buy or sell (map the file's codes in [values.side])",
        "quantity: '-3' must be a decimal number greater than zero (decimal separator '.', no "
        "thousands separator; at most 18 digits before the point and 12 after)",
        "price: '0' must be a decimal number greater than zero (decimal separator '.', no "
        "thousands separator; at most 18 digits before the point and 12 after)",
        "currency: 'US' must be a three-letter currency code",
        "trade_date: '2026-02-30' must be a date written %Y-%m-%d",
        "exec_time: 'noon' must be an ISO 8601 time (2026-03-11T14:30:00Z, an offset, or no "
        "zone for UTC)",
    ]
    assert [r.split(":")[0] for r in q[4]] == [
        "exec_id (id)", "quantity", "price", "settle_date"
    ]
    assert q[4][-1] == "settle_date: is before trade_date"
    assert q[6] == ["the line has more fields than the header's 10 (first extra field: 'surplus')"]
    assert q[8] == [
        "the line has fewer fields than the header's 10 (it has 6)",
        "trade_date: is required and empty",
    ]
    values = dict(rows(out.quarantine, "row", "values"))
    assert json.loads(values[3]) == {
        "id": "E2", "account": "", "symbol": "AAPL", "side": "X", "quantity": "-3",
        "price": "0", "currency": "US", "trade_date": "2026-02-30", "settle_date": "",
        "exec_time": "noon",
    }
    assert values[3].startswith('{"account":"","currency":"US",')  # sorted, compact


SHORT = "the line has fewer fields than the header's {} (it has {})"
TRADES_HEADER = "id,account,symbol,side,quantity,price,currency,trade_date,commission,fees\n"


def test_a_line_with_fewer_fields_than_the_header_is_quarantined(tmp_path: Path) -> None:
    # a blank commission or fee is "not reported" (not compared): a line cut short must not
    # pass as one whose venue left them blank
    prof = profile("trades", "csv", '[columns]\nexec_id = "id"\n')
    text = (
        TRADES_HEADER
        + "E1,A1,AAPL,buy,100,150.2,USD,2026-03-11,1.5,0.1\n"  # 2 ok
        + "E2,A1,AAPL,buy,100,150.2,USD,2026-03-11,1.5\n"  # 3: fees missing
        + "E3,A1,AAPL,buy,100,150.2,USD,2026-03-11,,\n"  # 4: both present, empty: ok
        + "\n"  # 5: blank, skipped
        + "E9,A1,AAPL,buy,100,150.2"  # 6: the last line, cut in transfer
    )
    loaded = load(prof, write(tmp_path / "s.csv", text))
    assert loaded.rows == 4 and loaded.skipped == {"blank line": 1}
    assert rows(loaded.problems, "row", "reason") == [
        (3, SHORT.format(10, 9)), (6, SHORT.format(10, 6))
    ]
    out = check(prof, loaded)
    assert rows(out.valid, "row", "commission", "fees") == [
        (2, D("1.5"), D("0.1")), (4, None, None)
    ]
    assert quarantined(out) == {
        3: [SHORT.format(10, 9)],  # otherwise valid: it would have matched, its fees unchecked
        6: [SHORT.format(10, 6), "trade_date: is required and empty"],
    }
    values = {r: json.loads(v) for r, v in rows(out.quarantine, "row", "values")}
    assert values[3] == {
        "id": "E2", "account": "A1", "symbol": "AAPL", "side": "buy", "quantity": "100",
        "price": "150.2", "currency": "USD", "trade_date": "2026-03-11", "commission": "1.5",
        "fees": "",
    }
    assert values[6]["price"] == "150.2" and values[6]["trade_date"] == ""


def test_a_profile_may_read_missing_trailing_fields_as_empty(tmp_path: Path) -> None:
    # a venue (or a spreadsheet saving the file) that leaves empty trailing fields out:
    # [csv] short_lines = "blank" reads them as the empty fields they stand for
    prof = profile("trades", "csv", '[columns]\nexec_id = "id"\n[csv]\nshort_lines = "blank"\n')
    text = (
        TRADES_HEADER
        + "E1,A1,AAPL,buy,100,150.2,USD,2026-03-11,1.5,0.1\n"
        + "E2,A1,AAPL,buy,100,150.2,USD,2026-03-11\n"  # no commission, no fees: not reported
    )
    loaded = load(prof, write(tmp_path / "s.csv", text))
    assert loaded.problems.height == 0
    out = check(prof, loaded)
    assert rows(out.valid, "row", "commission", "fees") == [
        (2, D("1.5"), D("0.1")), (3, None, None)
    ]  # fmt: skip


def test_short_lines_are_counted_as_csv_reads_them(tmp_path: Path) -> None:
    # a quoted delimiter is no field boundary; a quoted line break stays in its record (whose
    # row is the line it starts on); "" is an empty field; \r\n ends lines; banner lines first
    prof = profile("positions", "csv", "[csv]\nskip_rows = 2\n")
    text = (
        'banner,one\r\n"banner\r\n'  # the banner's quote is no quote: skip_rows lines are lines
        'account,symbol,quantity,note\r\n'  # 3: the header
        '"A1","AAPL","1",""\r\n'  # 4 ok: a fully quoted line, its last field empty
        'A1,"AA,PL",1\r\n'  # 5 short: three fields, one with a comma
        'A1,AAPL,2,"two\r\nlines"\r\n'  # 6-7 ok: a full record over two lines
        '"A,1","multi\r\nline",3\r\n'  # 8-9 short, over two lines
        'A1,MSFT,"4",\r\n'  # 10 ok: the last field present, empty
        '"A1","IBM","5"'  # 11 short, cut (no line end)
    )
    loaded = load(prof, write(tmp_path / "q.csv", text))
    out = check(prof, loaded)
    assert rows(loaded.cells, "row", "symbol") == [
        (4, "AAPL"), (5, "AA,PL"), (6, "AAPL"), (8, "multi\r\nline"), (10, "MSFT"), (11, "IBM")
    ]
    assert rows(loaded.problems, "row", "reason") == [
        (5, SHORT.format(4, 3)), (8, SHORT.format(4, 3)), (11, SHORT.format(4, 3))
    ]
    assert rows(out.valid, "row") == [(4,), (6,), (10,)]
    assert sorted(quarantined(out)) == [5, 8, 11]


def test_short_lines_without_quoting_and_with_another_delimiter(tmp_path: Path) -> None:
    prof = profile("positions", "csv", '[csv]\ndelimiter = ";"\nquote_char = ""\n')
    text = 'account;symbol;quantity\n"A1;AAPL;1\nA1;"IBM\n'  # a quote is text: 3 and 2 fields
    loaded = load(prof, write(tmp_path / "n.csv", text))
    assert rows(loaded.problems, "row", "reason") == [(3, SHORT.format(3, 2))]


def test_a_file_whose_last_column_is_always_empty_has_no_short_line(tmp_path: Path) -> None:
    # every record is read again (its last column is null): none is short
    prof = profile("trades", "csv", '[columns]\nexec_id = "id"\n')
    line = "E{},A1,AAPL,buy,100,150.2,USD,2026-03-11,1.5,\n"
    text = TRADES_HEADER + "".join(line.format(i) for i in range(3000)) + '"E","A1","AAPL"\n'
    loaded = load(prof, write(tmp_path / "e.csv", text))
    out = check(prof, loaded)
    assert out.valid.height == 3000
    assert rows(loaded.problems, "row", "reason") == [(3002, SHORT.format(10, 3))]


def test_short_lines_far_into_a_large_file_are_found_on_their_line(tmp_path: Path) -> None:
    # the lines before a short one are stepped over by blocks of the text (several here), not
    # one by one; a quoted line break early on moves every row after it down
    prof = profile("positions", "csv")
    head = 'account,symbol,quantity\n"A\n1",AAPL,1\n'  # row 2, over lines 2-3
    body = "".join(f"A1,S{i},{i}\n" for i in range(400_000))  # lines 4 to 400003, ~5 MB
    cut = {10, 70_000, 399_999}  # the lines of these records lose their quantity
    for i in sorted(cut, reverse=True):
        at = body.index(f"A1,S{i},{i}\n")
        body = body[:at] + f"A1,S{i}\n" + body[at + len(f"A1,S{i},{i}\n"):]
    loaded = load(prof, write(tmp_path / "big.csv", head + body + "A1,LAST"))
    assert loaded.rows == 400_002
    assert rows(loaded.problems, "row", "reason") == [
        *((i + 4, SHORT.format(3, 2)) for i in sorted(cut)), (400_004, SHORT.format(3, 2))
    ]


def test_hostile_text_survives_as_data(tmp_path: Path) -> None:
    long = "x" * 100_000
    markup = "<script>alert('x')</script>&amp;\u202e"
    prof = profile("positions", "csv")
    text = (
        'account,symbol,quantity,price,comment\n'
        f'"{markup}",AAPL,1,2,"{long}"\n'
        f'A1,AAPL,"{long}",2,"{markup}"\n'
        f'A1,"=HYPERLINK(""http://evil"")",1,,ok\n'
    )
    loaded = load(prof, write(tmp_path / "h.csv", text))
    out = check(prof, loaded)
    assert out.valid.height == 0
    values = {r: json.loads(v) for r, v in rows(out.quarantine, "row", "values")}
    assert values[2]["account"] == markup and values[2]["comment"] == long
    assert values[3]["quantity"] == long and values[3]["comment"] == markup
    assert values[4]["symbol"] == '=HYPERLINK("http://evil")'
    q = quarantined(out)
    assert q[2][0].startswith("account: '<script>alert('x')</script>")
    assert len(q[3][0]) < 400 and "..." in q[3][0]  # a long value is shortened in the reason


def test_positions_csv_signed_quantities() -> None:
    prof = profile("positions", "csv", 'basis = "settlement"\n')
    loaded, out = load_and_validate(prof, FIXTURES / "positions.csv")
    check(prof, loaded)
    assert rows(out.valid, "row", "ref", "account", "symbol", "quantity", "price") == [
        (2, "row:2", "ACC1", "AAPL", D("300"), D("191.5")),
        (3, "row:3", "ACC1", "MSFT", D("-25.5"), D("409.9")),
        (4, "row:4", "ACC2", "IBM", D("0"), None),
    ]


def test_cash_csv_refs_line_types_and_european_amounts() -> None:
    prof = profile(
        "cash",
        "csv",
        '[csv]\ndelimiter = "|"\n[columns]\nline_type = "type"\n'
        '[values.line_type]\nopening = "opening_balance"\nclosing = "closing_balance"\n'
        '[parse]\ndecimal_separator = ","\nthousands_separator = "."\n',
    )
    loaded, out = load_and_validate(prof, FIXTURES / "cash.csv")
    check(prof, loaded)
    assert rows(out.valid, "row", "ref", "date", "amount", "line_type") == [
        (2, "SETTLE-0311", date(2026, 3, 11), D("-19025.75"), "movement"),
        (3, "DEP-77", date(2026, 3, 11), D("5000"), "movement"),
        (4, "row:4", date(2026, 3, 10), D("100000"), "opening_balance"),
        (5, "row:5", date(2026, 3, 11), D("85974.25"), "closing_balance"),
    ]


def test_thousands_separators_must_be_grouped(tmp_path: Path) -> None:
    prof = profile("positions", "csv", '[parse]\nthousands_separator = ","\n')
    text = 'account,symbol,quantity\nA,S,"1,234"\nA,S,"12,34"\nA,S,"-1,234,567.5"\nA,S,+7\n'
    out = check(prof, load(prof, write(tmp_path / "t.csv", text)))
    assert out.valid["quantity"].to_list() == [D("1234"), D("-1234567.5"), D("7")]
    assert list(quarantined(out)) == [3]


def test_time_formats_and_zones(tmp_path: Path) -> None:
    prof = profile(
        "trades",
        "csv",
        '[parse]\nexec_time = "%d/%m/%Y %H:%M"\ntimezone = "America/New_York"\n',
    )
    text = (
        "account,symbol,side,quantity,price,trade_date,exec_time\n"
        "A,S,buy,1,1,2026-03-11,11/03/2026 09:30\n"
        "A,S,buy,1,1,2026-03-11,2026-03-11T09:30:00Z\n"
    )
    out = check(prof, load(prof, write(tmp_path / "t.csv", text)))
    assert out.valid["exec_time"].to_list() == [datetime(2026, 3, 11, 13, 30, tzinfo=UTC)]
    assert quarantined(out)[3] == ["exec_time: '2026-03-11T09:30:00Z' must be a time written "
                                   "%d/%m/%Y %H:%M"]
    naive = profile("trades", "csv", '[parse]\ntimezone = "Europe/London"\n')
    out = check(naive, load(naive, write(tmp_path / "n.csv", text.replace("11/03/2026 09:30",
                                                                         "2026-07-01 09:30:00"))))
    assert out.valid["exec_time"].to_list() == [
        datetime(2026, 7, 1, 8, 30, tzinfo=UTC), datetime(2026, 3, 11, 9, 30, tzinfo=UTC)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4),  # row
            st.integers(0, 8),  # column
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(["", " ", "-1", "0", "1e5", "x", "31/02/2026", '"', "\n", ";"]),
            ),
        ),
        max_size=12,
    )
)
def test_randomly_corrupted_cells_never_lose_a_row(
    corruptions: list[tuple[int, int, str]],
) -> None:
    header = ["TradeRef", "Account", "Symbol", "B/S", "Qty", "Price", "Ccy", "TradeDate",
              "SettleDate"]
    good = ["T{}", "ACC1", "AAPL", "B", "1,234.50", "190.25", "USD", "11/03/2026", "12/03/2026"]
    table = [[c.format(i) for c in good] for i in range(5)]
    for r, c, value in corruptions:
        table[r][c] = value
    lines = [";".join(header)] + [
        ";".join('"' + cell.replace('"', '""') + '"' for cell in row) for row in table
    ]
    prof = load_profile(FIXTURES / "acme_trades.toml")
    prof = parse_profile(prof.to_toml().replace('exec_time = "ExecTime"\n', "")
                         .replace('commission = "Comm"\n', ""), "t")
    loaded = load_bytes(prof, ("\n".join(lines) + "\n").encode(), "fuzz.csv")
    out = check(prof, loaded)
    assert loaded.rows + sum(loaded.skipped.values()) == 5
    for reasons in out.quarantine["reasons"].to_list():
        assert reasons


# ---- Parquet ----------------------------------------------------------------------------------


def test_parquet_typed_columns(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "ExecId": ["P1", "P2", "P3", "P4"],
            "account": ["A1", "A1", "A1", "A1"],
            "symbol": ["AAPL", "MSFT", "IBM", "IBM"],
            "side": ["BUY", "Sell", "buy", "buy"],
            "qty": [100, 5, 7, 1],
            "price": [0.1, 410.123456, 1e20, float("nan")],
            "commission": pl.Series(["1.25", "0", None, None]).cast(pl.Decimal(10, 4)),
            "trade_date": [date(2026, 3, 11)] * 4,
            "settle": [datetime(2026, 3, 12, 0, 0)] * 4,
            "ts": pl.Series([datetime(2026, 3, 11, 14, 30, 5, 123000)] * 4).dt.replace_time_zone(
                "Europe/Paris"
            ),
            "tags": [["a"], [], ["b"], ["c"]],
        }
    )
    f = tmp_path / "t.parquet"
    frame.write_parquet(f)
    prof = profile(
        "trades",
        "parquet",
        '[columns]\nexec_id = "ExecId"\nquantity = "qty"\nsettle_date = "settle"\n'
        'exec_time = "ts"\n[parse]\ntrade_date = "%d/%m/%Y"\ndecimal_separator = ","\n',
    )
    loaded = load(prof, f)
    out = check(prof, loaded)
    assert rows(out.valid, "row", "ref", "side", "quantity", "price", "commission") == [
        (1, "P1", "buy", D("100"), D("0.1"), D("1.25")),
        (2, "P2", "sell", D("5"), D("410.123456"), D("0")),
    ]
    assert out.valid["trade_date"].to_list() == [date(2026, 3, 11)] * 2
    assert out.valid["settle_date"].to_list() == [date(2026, 3, 12)] * 2
    assert out.valid["exec_time"].to_list()[0] == datetime(2026, 3, 11, 13, 30, 5, 123000,
                                                           tzinfo=UTC)
    q = quarantined(out)
    assert q[3][0].startswith("price: '1e+20' must be a decimal number")
    assert q[4][0].startswith("price: 'NaN' must be a decimal number")
    assert "tags" not in loaded.raw.collect_schema().names()
    assert json.loads(dict(rows(out.quarantine, "row", "values"))[3])["commission"] == ""
    nested = profile("trades", "parquet", '[columns]\nexec_id = "tags"\nquantity = "qty"\n'
                                          'settle_date = "settle"\n')
    with pytest.raises(BadInput, match="nested Parquet columns"):
        load(nested, f)


_BOUNDS = [0, 1, -1, 10**18 - 1, 10**18, -(10**18) + 1, -(10**18), 2**63 - 1, -(2**63)]
_INSTANTS = [
    datetime(2026, 3, 29, 2, 30),  # no such local time in Paris or New York (DST gap)
    datetime(2026, 10, 25, 2, 30),  # twice in Paris (DST end)
    datetime(2026, 3, 8, 2, 30),  # no such local time in New York
    datetime(2026, 11, 1, 1, 30),  # twice in New York
    datetime(1, 1, 1),
    datetime(9999, 12, 31, 23, 59, 59, 999999),
]


@st.composite
def typed_parquet(draw: st.DrawFn) -> tuple[pl.DataFrame, str]:
    """A trades (or positions) Parquet frame of typed columns with values at the edges of what
    a canonical decimal, date and time can hold, and the kind."""
    kind = draw(st.sampled_from(["trades", "positions"]))
    n = draw(st.integers(1, 8))
    scale = draw(st.integers(0, 12))

    def ints(lo: int, hi: int) -> list[int | None]:
        value = st.one_of(st.sampled_from([b for b in _BOUNDS if lo <= b <= hi]),
                          st.integers(lo, hi))
        return draw(st.lists(st.one_of(st.none(), value), min_size=n, max_size=n))

    def decimals(s: int) -> pl.Series:
        bound = 10**18 * 10**s
        raw = draw(st.lists(st.one_of(
            st.none(),
            st.sampled_from([0, 1, -1, bound - 1, bound, -bound + 1, -bound]),
            st.integers(-(10**37), 10**37),
            st.integers(-(10**(s + 3)), 10**(s + 3)),
        ), min_size=n, max_size=n))
        return pl.Series([None if r is None else D(r).scaleb(-s) for r in raw],
                         dtype=pl.Decimal(38, s))

    def instants() -> list[datetime | None]:
        one = st.one_of(st.sampled_from(_INSTANTS), st.datetimes())
        return draw(st.lists(st.one_of(st.none(), one), min_size=n, max_size=n))

    zone = draw(st.sampled_from([None, "UTC", "Europe/Paris", "Asia/Tokyo"]))
    unit = draw(st.sampled_from(["us", "ms"]))
    times = pl.Series(instants(), dtype=pl.Datetime("us")).dt.cast_time_unit(unit)
    if zone is not None:
        times = times.dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    if kind == "positions":
        frame = pl.DataFrame({
            "account": ["A1"] * n,
            "symbol": draw(st.lists(st.sampled_from(["S", None, " S", "bad id!"]),
                                    min_size=n, max_size=n)),
            "quantity": decimals(scale),
            "price": pl.Series(ints(-(2**63), 2**63 - 1), dtype=pl.Int64),
        })
        return frame, kind
    settle = pl.Series(instants(), dtype=pl.Datetime("us"))
    if draw(st.booleans()):
        settle = settle.dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Tokyo")
    frame = pl.DataFrame({
        "exec_id": draw(st.lists(st.sampled_from(["E1", "E2", None, " E3", "bad id!"]),
                                 min_size=n, max_size=n)),
        "account": ["A1"] * n,
        "symbol": ["S"] * n,
        "side": draw(st.lists(st.sampled_from(["buy", "SELL", "x"]), min_size=n, max_size=n)),
        "quantity": decimals(scale),
        "price": pl.Series(ints(-(2**63), 2**63 - 1), dtype=pl.Int64),
        "currency": ["USD"] * n,
        "trade_date": pl.Series(draw(st.lists(st.one_of(st.none(), st.dates()), min_size=n,
                                              max_size=n)), dtype=pl.Date),
        "settle_date": settle,
        "exec_time": times,
        "commission": decimals(12),
        "fees": pl.Series(ints(-(2**31), 2**31 - 1), dtype=pl.Int32),
    })
    return frame, kind


def same_as_text(frame: pl.DataFrame, kind: str, timezone: str) -> Validated:
    """Validate `frame` as a Parquet file read typed and read as text; assert the same outcome
    (valid frame, quarantine: rows, values, reasons) and return it."""
    import io

    buf = io.BytesIO()
    frame.write_parquet(buf)
    prof = profile(kind, "parquet", f'[parse]\ntimezone = "{timezone}"\n')
    typed = load_bytes(prof, buf.getvalue(), "t.parquet")
    text = load_bytes(prof, buf.getvalue(), "t.parquet", keep_types=False)
    assert not text.typed
    fields = {"quantity", "price", "trade_date", "settle_date", "exec_time", "commission", "fees"}
    assert typed.typed == fields & set(frame.columns)
    out_typed, out_text = check(prof, typed), check(prof, text)
    assert out_typed.valid.equals(out_text.valid)
    assert out_typed.quarantine.equals(out_text.quarantine)
    return out_typed


def test_parquet_decimal_38_18_columns_are_read_by_their_value(tmp_path: Path) -> None:
    """Spark writes DECIMAL(38,18): exact values came out as "100.000000000000000000", past
    the 12 places tieout keeps, and every row was quarantined (a false missing_at_venue for
    each trade). The scale's trailing zeros are not the value's places; 13 real ones are."""
    wide = pl.Decimal(38, 18)
    frame = pl.DataFrame(
        {
            "exec_id": ["P1", "P2"],
            "account": ["A1", "A1"],
            "symbol": ["AAPL", "AAPL"],
            "side": ["buy", "buy"],
            "quantity": pl.Series(["100", "1"]).cast(wide),
            "price": pl.Series(["190.250000000000000000", "0.0000000000001"]).cast(wide),
            "trade_date": [date(2026, 3, 11)] * 2,
        }
    )
    f = tmp_path / "w.parquet"
    frame.write_parquet(f)
    prof = profile("trades", "parquet")
    out = check(prof, load(prof, f))
    assert rows(out.valid, "ref", "quantity", "price") == [("P1", D("100"), D("190.25"))]
    assert list(quarantined(out)) == [2]  # 13 places: more than tieout keeps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_parquet(), st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]))
def test_typed_parquet_columns_validate_as_their_text_would(
    case: tuple[pl.DataFrame, str], timezone: str
) -> None:
    """Typed Parquet columns are checked and parsed in their own types (no text round trip);
    the outcome is exactly that of reading their text."""
    frame, kind = case
    same_as_text(frame, kind, timezone)


@pytest.mark.parametrize("unit", ["us", "ms"])
def test_typed_parquet_edges(unit: str) -> None:
    """The edges, each in a row of its own: naive times in a DST gap and in a DST overlap of
    the file's zone, 18 and 19 integer digits, zero and negative where only positive is
    allowed, a settle date before the trade date, a Tokyo time whose local date differs."""
    edge = D("999999999999999999.999999999999")
    n = 9
    base = {
        "exec_id": [f"E{i}" for i in range(n)],
        "account": ["A1"] * n,
        "symbol": ["S"] * n,
        "side": ["buy"] * n,
        "currency": ["USD"] * n,
    }
    frame = pl.DataFrame({
        **base,
        "quantity": pl.Series([edge, D(1), D(1), D(10**18), D(0), D(1), D(1), D(1), D(1)],
                              dtype=pl.Decimal(38, 12)),
        "price": pl.Series([1, 1, 1, 1, 1, -1, 1, 1, 10**18], dtype=pl.Int64),
        "trade_date": [date(2026, 3, 29)] * n,
        "settle_date": pl.Series(
            [datetime(2026, 3, 29, 16)] * 6 + [datetime(2026, 3, 28, 10)] * 2
            + [datetime(2026, 3, 29, 16)]
        ).dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Tokyo"),
        "exec_time": pl.Series(
            [datetime(2026, 3, 29, 1, 30), datetime(2026, 3, 29, 2, 30),
             datetime(2026, 10, 25, 2, 30)] + [datetime(2026, 3, 29, 12)] * 6
        ).dt.cast_time_unit(unit),
    })
    out = same_as_text(frame, "trades", "Europe/Paris")
    assert out.valid["row"].to_list() == [1]
    assert out.valid["quantity"].to_list() == [edge]
    assert out.valid["settle_date"].to_list() == [date(2026, 3, 30)]  # the date in Tokyo
    q = quarantined(out)
    assert sorted(q) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert q[2] == [f"exec_time: '2026-03-29T02:30:00' {out_msg_time()}"]
    assert q[3] == [f"exec_time: '2026-10-25T02:30:00' {out_msg_time()}"]
    assert q[4][0].startswith("quantity: '1000000000000000000.000000000000' must be a decimal")
    assert q[5][0].startswith("quantity: '0.000000000000' must be a decimal number greater")
    assert q[6][0].startswith("price: '-1' must be a decimal number greater than zero")
    assert q[7] == q[8] == ["settle_date: is before trade_date"]
    assert q[9][0].startswith("price: '1000000000000000000' must be a decimal number")


def out_msg_time() -> str:
    return "must be a time written %Y-%m-%dT%H:%M:%S%.f"


def test_a_row_the_screen_flags_without_a_pandera_reason_is_refused_as_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-pass screen and the pandera schema must agree: a row flagged with no reason
    would be quarantined without one, so validation refuses (a bug) instead."""
    import recon.validate as validation

    f = tmp_path / "t.parquet"
    pl.DataFrame({
        "exec_id": ["E1"], "account": ["A1"], "symbol": ["S"], "side": ["buy"],
        "quantity": pl.Series([D(1)], dtype=pl.Decimal(38, 12)), "price": [5],
        "trade_date": [date(2026, 3, 11)],
    }).write_parquet(f)
    prof = profile("trades", "parquet")
    assert check(prof, load(prof, f)).valid.height == 1
    monkeypatch.setattr(validation, "_typed_test", lambda *a: pl.lit(value=False))
    with pytest.raises(TieoutError, match="failed a check but pandera found no reason"):
        validate(prof, load(prof, f))


def test_not_a_parquet_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a readable Parquet file") as info:
        load(profile("trades", "parquet"), write(tmp_path / "x.parquet", "hello"))
    assert info.value.exit_code == 3


# ---- FIX drop copy ----------------------------------------------------------------------------


def fix_line(*fields: tuple[int, str], sep: str = "|") -> str:
    body = "".join(f"{t}={v}\x01" for t, v in fields)
    head = f"8=FIX.4.4\x019={len(body.encode())}\x01"
    total = sum((head + body).encode()) % 256
    return (head + body + f"10={total:03d}\x01").replace("\x01", sep)


def test_fix_drop_copy_fills() -> None:
    prof = profile("trades", "fix")
    loaded = load(prof, FIXTURES / "drop_copy.fix")
    out = check(prof, loaded)
    assert loaded.skipped == {"ExecType 0": 1, "MsgType 0": 1}
    assert rows(out.valid, "row", "ref", "account", "symbol", "side", "quantity", "price",
                "currency", "client_order_id") == [
        (1, "EX-1", "ACC1", "AAPL", "buy", D("100"), D("190.25"), "USD", "CL-1"),
        (2, "EX-2", "ACC1", "MSFT", "sell", D("10"), D("410.5"), "USD", "CL-2"),
        (7, "EX-4", "ACC1", "IBM", "buy", D("5"), D("250"), "USD", "CL-4"),
    ]
    assert out.valid["trade_date"].to_list() == [date(2026, 3, 11)] * 3  # row 2: from tag 60
    assert out.valid["settle_date"].to_list() == [date(2026, 3, 12), None, None]
    assert out.valid["exec_time"][0] == datetime(2026, 3, 11, 14, 30, 5, 123000, tzinfo=UTC)
    assert out.valid["commission"].to_list() == [D("1.25"), D("0.1"), None]  # 13=1: per unit
    q = quarantined(out)
    assert q[6] == ["CheckSum 000 is wrong (056)"]
    assert q[8][0] == "side: '9' must be buy or sell (map the file's codes in [values.side])"
    assert q[8][1].startswith("quantity: '-5' must be a decimal number greater than zero")
    assert json.loads(dict(rows(out.quarantine, "row", "values"))[6])["17"] == "EX-6"


def test_fix_profile_maps_tags_and_codes(tmp_path: Path) -> None:
    lines = [
        fix_line((35, "8"), (150, "F"), (17, "X1"), (527, "SEC-1"), (1, "A1"), (55, "VOD.L"),
                 (54, "B"), (32, "3"), (31, "1.5"), (75, "11/03/2026"), (12, "0.005"), (13, "2"),
                 sep="\x01"),
        fix_line((35, "8"), (150, "H"), (17, "X2"), sep="\x01"),
        fix_line((35, "8"), (20, "2"), (150, "2"), (17, "X3"), sep="\x01"),
        fix_line((35, "9"), (11, "C1"), sep="\x01"),
    ]
    prof = profile("trades", "fix", '[columns]\nexec_id = "527"\n[values.side]\nB = "buy"\n'
                                    '[parse]\ntrade_date = "%d/%m/%Y"\n')
    loaded = load(prof, write(tmp_path / "d.fix", "\r\n".join(lines)))
    out = check(prof, loaded)
    assert loaded.skipped == {"ExecTransType 2": 1, "MsgType 9": 1}
    assert rows(out.valid, "ref", "side", "trade_date", "commission") == [
        ("SEC-1", "buy", date(2026, 3, 11), D("0.0225"))  # 0.5% of 3 x 1.5
    ]
    (bust,) = quarantined(out).values()  # a bust that names no fill (no ExecRefID 19)
    assert "without ExecRefID (19)" in bust[0]
    with pytest.raises(BadInput, match=r"\[columns\] exec_id = '999'"):
        load(profile("trades", "fix", '[columns]\nexec_id = "999"\n'),
             write(tmp_path / "d.fix", "\n".join(lines)))


def test_fix_busts_and_corrections_change_the_venue_s_side(tmp_path: Path) -> None:
    """An audit: a drop copy busting X1 and correcting X3 from 10 to 12 reconciled as if
    neither had come (ExecType G and H were skipped): X1 matched the book, X3 at 10. A bust
    takes its fill out; a correction replaces it, named as the trade (its first fill's
    ExecID); one of a fill not in the file stands alone, under the fill's name."""

    def fill(exec_id: str, qty: str, kind: str = "F", ref: str | None = None) -> str:
        refs = () if ref is None else ((19, ref),)
        return fix_line((35, "8"), (150, kind), (17, exec_id), *refs, (1, "A1"), (55, "AAPL"),
                        (54, "1"), (32, qty), (31, "100"), (75, "20260311"))  # fmt: skip

    lines = [
        fill("X1", "5"),
        fill("X2", "7"),
        fill("X3", "10"),
        fix_line((35, "8"), (150, "H"), (17, "B1"), (19, "X1")),
        fill("C3", "12", "G", "X3"),
        fill("C4", "3", "G", "X0"),  # corrects a fill of an earlier file
        fill("C5", "4", "G", "C3"),  # corrects the correction
    ]
    prof = profile("trades", "fix")
    loaded = load(prof, write(tmp_path / "d.fix", "\n".join(lines) + "\n"))
    out = check(prof, loaded)
    assert rows(out.valid, "ref", "quantity") == [
        ("X2", D("7")), ("X0", D("3")), ("X3", D("4"))
    ]  # fmt: skip
    assert loaded.skipped == {
        "ExecType H (bust)": 1,
        "fill replaced by a later ExecType G in the file": 2,
        "fill replaced by a later ExecType H in the file": 1,
    }


def test_fix_floats_without_digits_on_one_side_of_the_point_are_read(tmp_path: Path) -> None:
    """`exec apply` books LastQty .5 and LastPx 100. (FIX floats); the recon loader quarantined
    the same line and raised a false break (the second re-review)."""
    line = fix_line((35, "8"), (150, "F"), (17, "X1"), (1, "A1"), (55, "VOD.L"), (54, "1"),
                    (32, ".5"), (31, "100."), (75, "20260311"), (12, ".05"), (13, "2"))  # fmt: skip
    prof = profile("trades", "fix")
    out = check(prof, load(prof, write(tmp_path / "d.fix", line + "\n")))
    assert rows(out.valid, "quantity", "price", "commission") == [(D("0.5"), D("100"), D("2.5"))]


# ---- IB Flex ----------------------------------------------------------------------------------


def test_ib_flex_trades() -> None:
    prof = profile("trades", "ibflex", '[parse]\ntimezone = "America/New_York"\n')
    loaded = load(prof, FIXTURES / "ib_flex.xml")
    out = check(prof, loaded)
    assert loaded.skipped == {"Order element": 1}
    assert rows(out.valid, "row", "ref", "account", "symbol", "side", "quantity", "price",
                "commission", "fees", "client_order_id") == [
        (1, "0000e0d5.67f1a2b3.01.01", "U1234567", "AAPL", "buy", D("100"), D("190.25"),
         D("1.00"), D("0"), "CL-0001"),
        (2, "0000e0d5.67f1a2b3.01.02", "U1234567", "MSFT", "sell", D("25.5"), D("410.123456"),
         D("0.3575"), D("0.05"), None),
    ]
    assert out.valid["exec_time"][0] == datetime(2026, 3, 11, 18, 30, 5, tzinfo=UTC)
    assert out.valid["settle_date"].to_list() == [date(2026, 3, 12)] * 2
    assert quarantined(out) == {3: [
        "price: 'abc' must be a decimal number greater than zero (plain digits with an optional "
        "point; at most 18 digits before the point and 12 after)"
    ]}
    raw = json.loads(dict(rows(out.quarantine, "row", "values"))[3])
    assert raw["tradePrice"] == "abc" and raw["tradeID"] == "611003"


def test_ib_flex_a_decimal_comma_is_refused_not_read_as_thousands(tmp_path: Path) -> None:
    """ibflex drops commas as thousands separators: tradePrice="190,25" was read as 19025 (a
    break of 1,883,475 instead of a quarantined row)."""
    xml = (FIXTURES / "ib_flex.xml").read_text()
    xml = xml.replace('tradePrice="190.25"', 'tradePrice="190,25"')
    prof = profile("trades", "ibflex")
    out = check(prof, load(prof, write(tmp_path / "c.xml", xml)))
    assert quarantined(out)[1][0].startswith("price: '190,25' must be a decimal number")


@pytest.mark.parametrize(("given", "attribute"), [("abc", "ibCommission"), ("1,5", "taxes")])
def test_ib_flex_a_bad_cost_is_named_as_the_file_has_it(
    tmp_path: Path, given: str, attribute: str
) -> None:
    """IB reports costs negative and the loader negates them: a cost ibflex could not read was
    negated as text, so the quarantine said commission '-abc' where the file has abc."""
    xml = (FIXTURES / "ib_flex.xml").read_text()
    head, sep, rest = xml.partition("<Trade ")
    rest = re.sub(rf'{attribute}="[^"]*"', f'{attribute}="{given}"', rest, count=1)
    prof = profile("trades", "ibflex")
    out = check(prof, load(prof, write(tmp_path / "c.xml", head + sep + rest)))
    field = "commission" if attribute == "ibCommission" else "fees"
    assert quarantined(out)[1][0].startswith(f"{field}: '{given}' must be a decimal number")


IB_CANCELS = """<?xml version="1.0" encoding="UTF-8"?>
<FlexQueryResponse queryName="q" type="AF"><FlexStatements count="1">
<FlexStatement accountId="U1" fromDate="2026-03-11" toDate="2026-03-11"><Trades>
<Trade accountId="U1" currency="USD" symbol="AAPL" tradeID="1" ibExecID="X1"
 tradeDate="2026-03-11" quantity="100" tradePrice="190.25" buySell="BUY" notes=""/>
<Trade accountId="U1" currency="USD" symbol="AAPL" tradeID="2" ibExecID="X2"
 tradeDate="2026-03-11" quantity="50" tradePrice="191" buySell="BUY" notes=""/>
<Trade accountId="U1" currency="USD" symbol="AAPL" tradeID="3" ibExecID="X1-CA"
 tradeDate="2026-03-11" quantity="-100" tradePrice="190.25" buySell="BUY (Ca.)" notes="Ca"/>
<Trade accountId="U1" currency="USD" symbol="AAPL" tradeID="4" ibExecID="X9-CA"
 origTradeID="9" tradeDate="2026-03-11" quantity="-5" tradePrice="10" buySell="SELL (Ca.)"
 notes="Ca;P"/>
</Trades></FlexStatement></FlexStatements></FlexQueryResponse>
"""


def test_ib_flex_cancellations_undo_their_trades(tmp_path: Path) -> None:
    """An audit: IB cancelled X1 (a row buySell "BUY (Ca.)", notes "Ca"); the original still
    matched the book and the cancellation was quarantined as a bad side. A cancellation takes
    its trade out of the venue's side; one of a trade not in the file is quarantined."""
    prof = profile("trades", "ibflex")
    loaded = load(prof, write(tmp_path / "c.xml", IB_CANCELS))
    out = check(prof, loaded)
    assert rows(out.valid, "ref") == [("X2",)]
    assert loaded.skipped == {"IB cancellation (Ca.)": 1, "trade IB cancelled (Ca.)": 1}
    (reasons,) = quarantined(out).values()
    assert "IB cancellation (Ca.) of a trade not in this file (origTradeID 9)" in reasons[0]


def test_ib_flex_positions_and_cash() -> None:
    prof = profile("positions", "ibflex")
    loaded, out = load_and_validate(prof, FIXTURES / "ib_flex.xml")
    check(prof, loaded)
    assert loaded.skipped == {"OpenPosition levelOfDetail LOT": 1}
    assert rows(out.valid, "account", "symbol", "quantity", "price") == [
        ("U1234567", "AAPL", D("300"), D("191.5")),
        ("U1234567", "MSFT", D("-25.5"), D("409.9")),
    ]
    prof = profile("cash", "ibflex", '[values.account]\nU1234567 = "ACC1"\n')
    loaded, out = load_and_validate(prof, FIXTURES / "ib_flex.xml")
    check(prof, loaded)
    assert loaded.skipped == {"CashReportCurrency BASE_SUMMARY": 1}
    assert rows(out.valid, "ref", "account", "currency", "date", "amount", "line_type") == [
        ("row:1", "ACC1", "USD", date(2026, 3, 11), D("100000"), "opening_balance"),
        ("row:2", "ACC1", "USD", date(2026, 3, 11), D("90974.740628"), "closing_balance"),
        ("7001", "ACC1", "USD", date(2026, 3, 11), D("5000"), "movement"),
        ("7002", "ACC1", "USD", date(2026, 3, 11), D("-10.00"), "movement"),
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("<FlexQueryResponse><FlexStatements", "not a readable IB Flex Query XML"),
        ("<Other/>", "not an IB Flex Query response"),
        ("<FlexQueryResponse/>", "has no FlexStatement"),
        ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
         "<FlexQueryResponse>&e;</FlexQueryResponse>", "has no FlexStatement"),
    ],
)
def test_bad_flex_files_are_refused(tmp_path: Path, content: str, words: str) -> None:
    with pytest.raises(BadInput, match=words) as info:
        load(profile("trades", "ibflex"), write(tmp_path / "f.xml", content))
    assert info.value.exit_code == 3


# ---- MT940 and camt.053 -----------------------------------------------------------------------


def test_mt940_statement() -> None:
    prof = profile("cash", "mt940", '[values.account]\nNL91ABNA0417164300 = "ACC-EUR"\n')
    loaded, out = load_and_validate(prof, FIXTURES / "statement.mt940")
    check(prof, loaded)
    assert rows(out.valid, "row", "ref", "account", "currency", "date", "amount",
                "line_type") == [
        (1, "row:1", "ACC-EUR", "EUR", date(2026, 3, 10), D("1234.56"), "opening_balance"),
        (2, "TRD-0001", "ACC-EUR", "EUR", date(2026, 3, 11), D("-250.00"), "movement"),
        (3, "DEP77", "ACC-EUR", "EUR", date(2026, 3, 11), D("1000.5"), "movement"),
        (4, "FEE-MAR", "ACC-EUR", "EUR", date(2026, 3, 11), D("-15"), "movement"),  # RC
        (5, "row:5", "ACC-EUR", "EUR", date(2026, 3, 11), D("1970.06"), "closing_balance"),
    ]
    opening = out.valid["amount"][0]
    moves = sum(out.valid["amount"].to_list()[1:4], D(0))
    assert opening + moves == out.valid["amount"][4]
    assert loaded.raw.row(1, named=True)["transaction_details"] == "Settlement of trades"


def test_statements_of_a_day_of_a_camt_file_of_three_statements(tmp_path: Path) -> None:
    """Statements closing on the 10th and the 11th, and one without a closing balance: the
    11th's run reads the 11th's alone; the others are skipped, counted as what they are; a
    file of one date (the fixture) is read whole whatever the date."""
    text = (FIXTURES / "statement.camt053.xml").read_text()
    start, end = text.index("<Stmt>"), text.index("</Stmt>") + len("</Stmt>")
    stmt = text[start:end]
    clbd = stmt.index("<Cd>CLBD</Cd>")  # the closing balance's date moved to the 10th
    tenth = stmt[:clbd] + stmt[clbd:].replace("2026-03-11", "2026-03-10", 1)
    assert tenth != stmt
    unclosed = stmt.replace("<Cd>CLBD</Cd>", "<Cd>ITBD</Cd>")
    three = text[:start] + tenth + stmt + unclosed + text[end:]
    prof = profile("cash", "camt053")
    loaded = load(prof, write(tmp_path / "three.xml", three))
    day = statements_of_day(loaded, date(2026, 3, 11))
    assert day.cells["row"].to_list() == [5, 6, 7, 8]  # OPBD, two booked entries, CLBD
    assert {k: v for k, v in day.skipped.items() if k.startswith("records")} == {
        "records of another date (2026-03-10)": 4,
        "records of a statement without a closing balance": 3,
    }
    assert validate(prof, day).valid.height == 4
    with pytest.raises(BadInput, match=r"of .*2026-03-10, 2026-03-11, none of 2026-03-12"):
        statements_of_day(loaded, date(2026, 3, 12))
    whole = load(prof, FIXTURES / "statement.camt053.xml")
    assert statements_of_day(whole, date(2026, 3, 12)) is whole


def test_mt940_bad_files_are_refused(tmp_path: Path) -> None:
    text = (FIXTURES / "statement.mt940").read_text()
    prof = profile("cash", "mt940")
    with pytest.raises(BadInput, match=r"line 4: the MT940 balance :60F: 'C260310EUR12x34,56'"):
        load(prof, write(tmp_path / "a.mt940", text.replace("EUR1234,56", "EUR12x34,56")))
    with pytest.raises(BadInput, match=r"line 5: the MT940 movement :61:'26031X"):
        load(prof, write(tmp_path / "b.mt940", text.replace(":61:260311", ":61:26031X")))
    # cut short: inside a movement's amount (C250,00 read as 25), or before the closing balance
    cut = text[: text.index("D250,00") + len("D25")]
    with pytest.raises(BadInput, match=r"line 5: the MT940 movement .* cut short\?"):
        load(prof, write(tmp_path / "cut1.mt940", cut))
    cut = text[: text.index(":62F:")]
    with pytest.raises(BadInput, match=r"1 of its 1 MT940 statement\(s\) end without a closing"):
        load(prof, write(tmp_path / "cut2.mt940", cut))
    with pytest.raises(BadInput, match="no MT940 statement"):
        load(prof, write(tmp_path / "c.mt940", "hello\n"))
    with pytest.raises(BadInput, match="cannot be decoded as utf-8"):
        load(prof, write(tmp_path / "d.mt940", text.encode().replace(b"Deposit", b"D\xe9p")))
    latin = profile("cash", "mt940", '[csv]\nencoding = "latin-1"\n')
    loaded = load(latin, write(tmp_path / "d.mt940", text.encode().replace(b"Deposit", b"D\xe9p")))
    assert loaded.raw["transaction_details"].to_list()[2] == "Dép from client"


def test_mt940_a_date_that_is_no_date_is_refused_with_its_line(tmp_path: Path) -> None:
    """The library raised "month must be in 1..12" for a bad value date: the message named
    neither the line nor the date (an entry date, MMDD, of 1331 was not checked either)."""
    text = (FIXTURES / "statement.mt940").read_text()
    prof = profile("cash", "mt940")
    for old, new, expected in [
        (":61:260311", ":61:261311", r"line 5: the MT940 movement :61: has a value date '261311'"),
        ("0311D250", "1331D250", r"line 5: the MT940 movement :61: has an entry date '1331'"),
        (":61:2603110311", ":61:2702260229", r"line 5: .* '0229' that is no date in 2027"),
        (":60F:C260310", ":60F:C260230", r"line 4: the MT940 balance :60F: has a value date"),
        (":62F:C260311", ":62F:C260011", r"line 11: the MT940 balance :62F: has a value date"),
    ]:
        with pytest.raises(BadInput, match=expected):
            load(prof, write(tmp_path / "x.mt940", text.replace(old, new, 1)))
    # 29 February as an entry date is a date (of a leap year: the value date's, or next to it)
    leap = text.replace(":61:2603110311D250,00", ":61:2803010229D250,00", 1)
    assert load(prof, write(tmp_path / "leap.mt940", leap)).rows == 5


def test_camt053_statement() -> None:
    prof = profile("cash", "camt053", '[values.account]\nDE89370400440532013000 = "ACC-EUR"\n')
    loaded, out = load_and_validate(prof, FIXTURES / "statement.camt053.xml")
    check(prof, loaded)
    assert loaded.skipped == {"balance type CLAV": 1, "entry status PDNG": 1}
    assert rows(out.valid, "row", "ref", "account", "currency", "date", "amount",
                "line_type") == [
        (1, "row:1", "ACC-EUR", "EUR", date(2026, 3, 10), D("-1500.00"), "opening_balance"),
        (2, "BNK-0001", "ACC-EUR", "EUR", date(2026, 3, 11), D("10000.00"), "movement"),
        (3, "BNK-0002", "ACC-EUR", "EUR", date(2026, 3, 12), D("-100.125"), "movement"),
        (4, "row:4", "ACC-EUR", "EUR", date(2026, 3, 11), D("8399.875"), "closing_balance"),
    ]
    assert "<script>" in loaded.raw["RemittanceInformation"].to_list()[1]


def test_camt053_several_statements_and_other_account_ids(tmp_path: Path) -> None:
    xml = (FIXTURES / "statement.camt053.xml").read_text()
    start, end = xml.index("<Stmt>"), xml.index("</Stmt>") + len("</Stmt>")
    second = (
        xml[start:end]
        .replace("<IBAN>DE89370400440532013000</IBAN>", "<Othr><Id>12345678</Id></Othr>")
        .replace("BNK-000", "OTH-000")
        .replace("<CdtDbtInd>CRDT</CdtDbtInd>\n        <Sts>BOOK", "<Sts>BOOK")
    )
    f = write(tmp_path / "two.xml", xml[:end] + second + xml[end:])
    prof = profile("cash", "camt053")
    loaded, out = load_and_validate(prof, f)
    check(prof, loaded)
    assert loaded.rows == 8
    assert [a for (a,) in rows(loaded.cells, "account")] == ["DE89370400440532013000"] * 4 + [
        "12345678"
    ] * 4
    assert loaded.skipped == {"balance type CLAV": 2, "entry status PDNG": 2}
    assert quarantined(out) == {6: ["CdtDbtInd is missing: the amount's sign is unknown"]}
    assert rows(out.valid, "row", "ref")[4:] == [(5, "row:5"), (7, "OTH-0002"), (8, "row:8")]


def test_not_a_camt053_file(tmp_path: Path) -> None:
    prof = profile("cash", "camt053")
    with pytest.raises(BadInput, match=r"not a readable camt\.053 XML file"):
        load(prof, write(tmp_path / "x.xml", "<Document><unclosed>"))
    with pytest.raises(BadInput, match="no statement"):
        load(prof, write(tmp_path / "y.xml", "<Document/>"))


def test_a_file_with_no_fix_message_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a FIX drop copy"):
        load(profile("trades", "fix"), write(tmp_path / "x.fix", "account,symbol\nA,B\n"))


def test_tab_delimited_csv_without_quoting(tmp_path: Path) -> None:
    prof = profile("positions", "csv", '[csv]\ndelimiter = "\\t"\nquote_char = ""\n')
    f = write(tmp_path / "t.tsv", 'account\tsymbol\tquantity\nA1\tAAPL\t"5"\nA1\tIBM\t-5\n')
    out = check(prof, load(prof, f))
    assert rows(out.valid, "row", "symbol", "quantity") == [(3, "IBM", D(-5))]
    assert quarantined(out)[2][0].startswith("""quantity: '"5"' must be a decimal number""")


def test_xml_comments_are_not_records(tmp_path: Path) -> None:
    xml = (FIXTURES / "ib_flex.xml").read_text().replace(
        "<Trades>", "<Trades><!-- a comment --><?pi x?>"
    )
    prof = profile("trades", "ibflex")
    loaded = load(prof, write(tmp_path / "c.xml", xml))
    assert loaded.rows == 3


CAMT_ENTRIES = """<?xml version="1.0" encoding="UTF-8"?>
<ns2:Document xmlns:ns2="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
 <ns2:BkToCstmrStmt><ns2:Stmt>
  <ns2:Acct><ns2:Id><ns2:IBAN>DE89370400440532013000</ns2:IBAN></ns2:Id></ns2:Acct>
  <ns2:Ntry><ns2:Amt Ccy="EUR">750.25</ns2:Amt><ns2:CdtDbtInd>CRDT</ns2:CdtDbtInd>
   <ns2:Sts>BOOK</ns2:Sts><ns2:ValDt><ns2:Dt>2026-03-11</ns2:Dt></ns2:ValDt>
   <ns2:AcctSvcrRef>BATCH-1</ns2:AcctSvcrRef>
   <ns2:NtryDtls><ns2:TxDtls><ns2:Refs><ns2:EndToEndId>E1</ns2:EndToEndId></ns2:Refs>
    <ns2:RmtInf><ns2:Ustrd>first</ns2:Ustrd></ns2:RmtInf></ns2:TxDtls>
    <ns2:TxDtls><ns2:Refs><ns2:EndToEndId>E2</ns2:EndToEndId></ns2:Refs>
    <ns2:RmtInf><ns2:Ustrd>second</ns2:Ustrd></ns2:RmtInf></ns2:TxDtls></ns2:NtryDtls>
  </ns2:Ntry>
  <ns2:Ntry><ns2:Amt Ccy="EUR">500.25</ns2:Amt><ns2:CdtDbtInd>CRDT</ns2:CdtDbtInd>
   <ns2:Sts><ns2:Cd>BOOK</ns2:Cd></ns2:Sts><ns2:ValDt><ns2:Dt>2026-03-11</ns2:Dt></ns2:ValDt>
   <ns2:NtryDtls><ns2:TxDtls><ns2:Refs><ns2:EndToEndId>E3</ns2:EndToEndId></ns2:Refs>
    <ns2:AmtDtls><ns2:InstdAmt><ns2:Amt Ccy="USD">545.00</ns2:Amt></ns2:InstdAmt></ns2:AmtDtls>
    <ns2:Chrgs><ns2:Rcrd><ns2:Amt Ccy="EUR">2.50</ns2:Amt><ns2:CdtDbtInd>DBIT</ns2:CdtDbtInd>
    </ns2:Rcrd></ns2:Chrgs></ns2:TxDtls></ns2:NtryDtls>
  </ns2:Ntry>
 </ns2:Stmt></ns2:BkToCstmrStmt>
</ns2:Document>
"""


def test_camt053_entries_are_read_as_the_bank_booked_them(tmp_path: Path) -> None:
    """An audit: a batch entry with two details came out twice with the whole amount; an
    instructed amount (USD) or a charges record (2.50 DBIT) in a detail became the entry's
    amount and sign; under a prefixed namespace no entry was found at all."""
    prof = profile("cash", "camt053")
    loaded, out = load_and_validate(prof, write(tmp_path / "e.xml", CAMT_ENTRIES))
    check(prof, loaded)
    assert rows(out.valid, "ref", "currency", "amount", "line_type") == [
        ("BATCH-1", "EUR", D("750.25"), "movement"),
        ("E3", "EUR", D("500.25"), "movement"),
    ]
    assert loaded.raw["RemittanceInformation"].to_list()[0] == "first; second"


def test_camt053_a_bad_or_signed_amount_is_quarantined_as_the_file_has_it(tmp_path: Path) -> None:
    """A debit whose amount is not a number was negated as text ('-1x0.125' where the file has
    1x0.125); a signed amount (-750.25 CRDT) is not a camt.053 amount (they are unsigned, the
    indicator signs them) and was read as a debit, or a debit of -x as a credit."""
    xml = (FIXTURES / "statement.camt053.xml").read_text().replace(">100.125<", ">1x0.125<")
    prof = profile("cash", "camt053")
    _, out = load_and_validate(prof, write(tmp_path / "a.xml", xml))
    assert quarantined(out)[3][0].startswith("amount: '1x0.125' must be a decimal number")
    signed = CAMT_ENTRIES.replace(">750.25<", ">-750.25<").replace(">500.25<", ">+500.25<")
    _, out = load_and_validate(prof, write(tmp_path / "b.xml", signed))
    assert quarantined(out) == {
        n: ["the amount is signed: camt.053 amounts are unsigned (CdtDbtInd signs them)"]
        for n in (1, 2)
    }


def test_mt940_a_statement_over_two_pages_is_checked_by_the_day_s_balances(
    tmp_path: Path,
) -> None:
    """A day split over two pages (:62M: closes the first, :60M: opens the second): the
    intermediate balances were compared with the book's day (false balance_mismatch breaks);
    they are skipped and counted, the day's :60F: and :62F: kept."""
    pages = (
        ":20:P1\n:25:NL91ABNA0417164300\n:28C:00071/001\n:60F:C260310EUR1000,00\n"
        ":61:2603110311C500,25NTRFA1//B1\n:62M:C260311EUR1500,25\n-\n"
        ":20:P2\n:25:NL91ABNA0417164300\n:28C:00071/002\n:60M:C260311EUR1500,25\n"
        ":61:2603110311C250,00NTRFA2//B2\n:62F:C260311EUR1750,25\n-\n"
    )
    prof = profile("cash", "mt940")
    loaded, out = load_and_validate(prof, write(tmp_path / "p.mt940", pages))
    assert rows(out.valid, "amount", "line_type") == [
        (D("1000.00"), "opening_balance"),
        (D("500.25"), "movement"),
        (D("250.00"), "movement"),
        (D("1750.25"), "closing_balance"),
    ]
    assert loaded.skipped == {
        "intermediate balance (intermediate_closing_balance)": 1,
        "intermediate balance (intermediate_opening_balance)": 1,
    }


_CELL = st.text(alphabet='ab1 ,"\n', max_size=6)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(1, 5), st.lists(_CELL, min_size=4, max_size=4)), max_size=12))
def test_short_lines_are_those_the_csv_module_counts_short(
    tmp_path: Path, records: list[tuple[int, list[str]]]
) -> None:
    # records of 1-5 fields, any of them quoted (a delimiter, a quote or a line break inside),
    # written by the csv module: exactly those of fewer than the header's 4 fields are short,
    # each on the line it starts on
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["account", "symbol", "quantity", "note"])
    expected, line = {}, 2
    for n, cells in records:
        fields = [f"A{line}", *cells[: n - 1]]  # a first field never empty: no blank line
        writer.writerow(fields)
        if n < 4:
            expected[line] = SHORT.format(4, n)
        line += 1 + sum(f.count("\n") for f in fields)
    loaded = load(profile("positions", "csv"), write(tmp_path / "p.csv", out.getvalue()))
    short = {r: why for r, why in rows(loaded.problems, "row", "reason") if "fewer" in why}
    assert short == expected
    assert loaded.rows == len(records)


def test_a_file_whose_lines_end_in_cr_alone_is_read_line_by_line(tmp_path: Path) -> None:
    # classic Mac OS line ends: before, the header and its rows were read as one line ("the
    # header names a column more than once")
    text = TRADES_HEADER + "E1,A1,AAPL,buy,100,150.2,USD,2026-03-11,1.5,0.1\n" + "E2,A1,AAPL\n"
    prof = profile("trades", "csv", '[columns]\nexec_id = "id"\n')
    loaded = load(prof, write(tmp_path / "cr.csv", text.replace("\n", "\r")))
    assert loaded.rows == 2
    assert rows(loaded.problems, "row", "reason") == [(3, SHORT.format(10, 3))]
    assert rows(check(prof, loaded).valid, "row", "exec_id") == [(2, "E1")]
