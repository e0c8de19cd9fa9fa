"""An order file's requests (order_book.FileRequests), made from its rows a group at a time:
blank lines skipped, each request's physical line and written client order id, a row with bad
values as its BadInput, and slicing and iteration as a list of the same requests gives them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from oms import order_book, tabular
from oms.errors import BadInput

HEADER = "account,symbol,side,qty,client_order_id,type,limit"


def _requests(tmp_path: Path, body: str) -> order_book.FileRequests:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "\n" + body)
    return order_book.FileRequests(
        tabular.read_csv(
            str(path), required=order_book.FILE_REQUIRED, optional=order_book.FILE_OPTIONAL
        )
    )


def test_blank_lines_are_no_requests_and_lines_stay_physical(tmp_path: Path) -> None:
    rows = _requests(
        tmp_path,
        "A1,COIN,buy,1,K1,,\n"
        ",,,,,,\n"
        "A1,COIN,sell,2,,limit,10\n"
        '"A1",COIN,buy,-3,"K\n2",,\n'  # a quoted line break: the next row starts a line later
        "A2,ETH,buy,4,K3,,\n",
    )
    assert len(rows) == 4
    assert [rows.line(i) for i in range(4)] == [2, 4, 5, 7]
    assert rows.given(0, 4) == [(2, "K1"), (4, None), (5, "K\n2"), (7, "K3")]
    assert rows.given(1, 2) == [(4, None), (5, "K\n2")]
    first, second, bad, last = rows[0:4]
    assert isinstance(first, order_book.OrderRequest) and first.client_order_id == "K1"
    assert isinstance(second, order_book.OrderRequest)
    assert second.limit_price == Decimal(10) and second.client_order_id is None
    assert isinstance(bad, BadInput) and "qty" in bad.message
    assert isinstance(last, order_book.OrderRequest) and last.account == "A2"


def test_slicing_indexing_and_iteration_agree(tmp_path: Path) -> None:
    body = "".join(f"A{i % 3},COIN,buy,{i + 1},C{i},,\n" for i in range(2_345))
    rows = _requests(tmp_path, body)
    whole = rows[:]
    assert len(whole) == len(rows) == 2_345
    assert list(rows) == whole  # iteration goes a thousand rows at a time
    assert rows[1_000:1_003] == whole[1_000:1_003]
    assert rows[-1] == whole[-1] == rows[2_344]
    assert rows[10:2:-3] == whole[10:2:-3]
    assert rows[5_000:6_000] == []
    with pytest.raises(IndexError):
        rows[2_345]
    with pytest.raises(IndexError):
        rows[-2_346]
    assert [r.quantity for r in whole[:3] if isinstance(r, order_book.OrderRequest)] == [
        Decimal(1),
        Decimal(2),
        Decimal(3),
    ]
