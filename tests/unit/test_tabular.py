"""Reading input files: problems are reported at the file's physical line, as an editor shows
it, also when a quoted cell spans lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms import refdata, tabular
from oms.errors import BadFile

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
