"""The streamed JSON list the listings write (cli.common.emit_json_list), and the summary with
its list last that a batch writes (emit_json_with_list), are byte for byte the document
emit_json writes of the whole."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.common import emit_json, emit_json_list, emit_json_with_list

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
# a batch's lines: flat, with a list of texts (the risk codes)
_LINES = st.dictionaries(
    st.text(),
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(alphabet=st.characters(codec="utf-8"))
    | st.lists(st.text(alphabet=st.characters(codec="utf-8")), max_size=3),
    max_size=6,
)


def _printed(emit: Any, encoding: str | None = None) -> str:
    """What `emit` writes to stdout: a StringIO, or a file of that encoding (its bytes)."""
    real = sys.stdout
    buf: Any = io.StringIO() if encoding is None else io.TextIOWrapper(io.BytesIO(), encoding)
    sys.stdout = buf
    try:
        emit()
    finally:
        sys.stdout = real
    if encoding is None:
        return str(buf.getvalue())
    buf.flush()
    return str(buf.buffer.getvalue().decode(encoding))


def _both(items: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    emit_json(items)
    whole = capsys.readouterr().out
    emit_json_list(iter(items))
    streamed = capsys.readouterr().out
    return whole, streamed


@given(st.lists(_FLAT | _VALUES, max_size=5))
def test_a_streamed_list_is_the_whole_document(items: list[Any]) -> None:
    assert _printed(lambda: emit_json_list(iter(items))) == _printed(lambda: emit_json(items))


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


@given(
    st.dictionaries(st.text(), _VALUES, max_size=4),
    st.text(),
    st.lists(_LINES | _FLAT | _VALUES, max_size=5),
)
def test_a_summary_with_its_list_streamed_is_the_whole_document(
    head: dict[str, Any], key: str, items: list[Any]
) -> None:
    whole = _printed(lambda: emit_json({**head, key: items}))
    assert _printed(lambda: emit_json_with_list(head, key, iter(items))) == whole


def test_a_batch_summary_streamed(capsys: pytest.CaptureFixture[str]) -> None:
    head = {"file": "o.csv", "orders": 2, "accepted": 1}
    items = [
        {"line": 2, "order_id": "O1", "risk_codes": [], "duplicate": False, "reason": None},
        {"line": 3, "order_id": None, "risk_codes": ["buying_power", 'a "q"\n'], "reason": "x"},
    ]
    emit_json({**head, "results": items})
    whole = capsys.readouterr().out
    emit_json_with_list(head, "results", iter(items))
    assert capsys.readouterr().out == whole
    emit_json({**head, 7: items})  # a key that is not text: as json.dumps writes it
    whole = capsys.readouterr().out
    emit_json_with_list(head, 7, iter(items))  # type: ignore[arg-type]
    assert capsys.readouterr().out == whole
    for empty_head, no_items in (({}, items), (head, []), ({}, [])):
        emit_json({**empty_head, "results": no_items})
        whole = capsys.readouterr().out
        emit_json_with_list(empty_head, "results", iter(no_items))
        assert capsys.readouterr().out == whole


@given(
    st.dictionaries(st.text(), _VALUES, max_size=3),
    st.lists(_LINES | _FLAT | _VALUES, max_size=4),
    st.sampled_from(["ascii", "latin-1", "utf-8"]),
)
def test_on_a_stdout_that_cannot_carry_every_character_json_escapes_what_is_not_ascii(
    head: dict[str, Any], items: list[Any], encoding: str
) -> None:
    """A locale that is not UTF-8: the same JSON (json.dumps with ensure_ascii), whole or
    streamed, never an encoding error half way; UTF-8 keeps the characters as they are."""
    ascii_only = encoding != "utf-8"
    whole = json.dumps({**head, "results": items}, indent=2, ensure_ascii=ascii_only) + "\n"
    listed = json.dumps(items, indent=2, ensure_ascii=ascii_only) + "\n"
    assert _printed(lambda: emit_json({**head, "results": items}), encoding) == whole
    streamed = _printed(lambda: emit_json_with_list(head, "results", iter(items)), encoding)
    assert streamed == whole
    assert _printed(lambda: emit_json_list(iter(items)), encoding) == listed
