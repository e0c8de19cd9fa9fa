"""What goes over the pipe to SQLite's writer process (oms.submission._pack/_unpack) comes
back as it went: plain rows by marshal, anything marshal cannot write by pickle."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from oms.submission import _pack, _unpack
from oms.values import Side

values = st.one_of(st.none(), st.integers(), st.text(), st.binary())
rows = st.dictionaries(st.text(max_size=12), st.lists(st.tuples(values, values, values)))


@given(rows, st.tuples(st.integers(min_value=0), st.text()))
def test_plain_rows_go_by_marshal_and_come_back_equal(
    group: dict[str, list[tuple[object, ...]]], head: tuple[int, str]
) -> None:
    data = _pack((group, head))
    assert data[:1] == b"M"
    assert _unpack(data) == (group, head)


def test_a_value_marshal_cannot_write_goes_by_pickle_and_keeps_its_type() -> None:
    group = {"orders": [("O00000001", Side.BUY, None, 3)]}
    data = _pack((group, (7, "abc")))
    assert data[:1] == b"P"
    back, head = _unpack(data)
    assert back == group and head == (7, "abc")
    assert back["orders"][0][1] is Side.BUY
