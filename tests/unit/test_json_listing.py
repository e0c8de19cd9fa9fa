"""The streamed JSON list the listings write (cli.common.emit_json_list) is byte for byte the
document emit_json writes of the whole list."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.common import emit_json, emit_json_list

_SCALARS = st.none() | st.booleans() | st.integers() | st.text() | st.floats()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
# a listing's objects: flat, texts and nulls mostly (the fast path), hostile texts included
_FLAT = st.dictionaries(
    st.text(),
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.characters(codec="utf-8")),
    max_size=6,
)


def _both(items: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    emit_json(items)
    whole = capsys.readouterr().out
    emit_json_list(iter(items))
    streamed = capsys.readouterr().out
    return whole, streamed


@given(st.lists(_FLAT | _VALUES, max_size=5))
def test_a_streamed_list_is_the_whole_document(items: list[Any]) -> None:
    outs = []
    for emit in (lambda: emit_json(items), lambda: emit_json_list(iter(items))):
        buf, real = io.StringIO(), sys.stdout
        sys.stdout = buf
        try:
            emit()
        finally:
            sys.stdout = real
        outs.append(buf.getvalue())
    assert outs[1] == outs[0]


def test_the_listings_objects_and_the_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    items: list[Any] = [
        {"order_id": "O1", "reason": 'a "quoted"\n\x00 line\u2028', "avg_px": None, "n": 3},
        {},
        {"nested": {"a": [1, None]}, "ok": True, "px": 1.5},
        [],
    ]
    whole, streamed = _both(items, capsys)
    assert streamed == whole
    assert _both([], capsys) == ("[]\n", "[]\n")


def test_nothing_is_written_when_the_first_object_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refused() -> Any:
        raise LookupError("account X is not in the book")
        yield  # pragma: no cover

    with pytest.raises(LookupError):
        emit_json_list(refused())
    assert capsys.readouterr().out == ""
