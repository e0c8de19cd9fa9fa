"""Reading input files: problems are reported at the file's physical line, as an editor shows
it, also when a quoted cell spans lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms import refdata, tabular
from oms.errors import BadFile, BadInput

INSTRUMENTS = 'symbol,exchange,currency,tick_size,lot_size,restricted\n'


def test_record_lines_follow_quoted_line_breaks() -> None:
    assert tabular.record_lines("a,b\n1,2\n3,4\n") is None  # no quotes: row + 2
    assert tabular.record_lines('a,b\n1,"2"\n3,4\n') is None  # quotes, one line each
    assert tabular.record_lines('a,b\n1,"x\ny"\n3,4\n\n5,"p\r\nq\r\nr"\n6,7\n') == (
        2, 4, 5, 6, 9,
    )  # fmt: skip
    assert tabular.line_of(1, (2, 4)) == 4
    assert tabular.line_of(1, None) == 3


def test_a_bad_row_after_a_multiline_cell_is_reported_at_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "instruments.csv"
    path.write_text(
        INSTRUMENTS
        + 'AAPL,XNYS,USD,0.01,1,"no\nnote spans\nthree lines"\n'  # lines 2-4
        + "MSFT,XNYS,USD,zero,1,false\n"  # line 5: bad tick size
        + "MSFT,XNYS,USD,0.01,1,false\n"  # line 6: duplicate symbol
    )
    with pytest.raises(BadFile) as exc:
        refdata.read_instruments(str(path))
    lines = {(e.line, e.field) for e in exc.value.errors}
    assert (5, "tick_size") in lines
    assert (6, "symbol") in lines
    assert (2, "restricted") in lines  # the multi-line cell is not a yes/no
    assert not any(e.line in (3, 4) for e in exc.value.errors)


def test_plain_files_keep_row_plus_two(tmp_path: Path) -> None:
    path = tmp_path / "instruments.csv"
    path.write_text(INSTRUMENTS + "AAPL,XNYS,USD,0.01,1,false\nMSFT,XNYS,USD,-1,1,false\n")
    with pytest.raises(BadFile) as exc:
        refdata.read_instruments(str(path))
    assert [(e.line, e.field) for e in exc.value.errors] == [(3, "tick_size")]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("A1,COIN,buy,1\nA1,COIN,buy\n", "line 3: 3 fields"),
        ("A1,COIN,buy,1\n\n  \nA1\n", "line 5: 1 field,"),  # blank lines are no records
        ('"A1",COIN,buy,1\n"A1","COIN, Inc"\n', "line 3: 2 fields"),  # quoted: read as CSV
        ('"A1","two\nlines",buy,1\nA1,COIN\n', "line 4: 2 fields"),
    ],
)
def test_a_short_record_is_refused_with_its_line(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "o.csv"
    path.write_text("account,symbol,side,qty\n" + body)
    with pytest.raises(BadInput) as caught:
        tabular.read_csv(str(path), required=["account", "symbol", "side", "qty"])
    assert where in str(caught.value) and "the header has 4" in str(caught.value)


def test_empty_last_values_and_blank_lines_are_not_short_records(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text('account,symbol,side,note\nA1,COIN,buy,\n\n,,,\r\nA1,"X, Y",sell,""\n')
    frame = tabular.read_csv(str(path), required=["account", "symbol", "side", "note"]).frame
    assert frame["note"].null_count() == frame.height
