"""Ref-less venue records keep their names by their content across deliveries of a file
(recon.runs._keep_names): a property over any earlier file, any later file made of its records
in any order with records taken out, changed and added."""

import json
from collections import Counter
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import breaks
from recon.canonical import conform
from recon.runs import _keep_names, _name_rows, _records_json

DAY = date(2026, 11, 24)


def named(rows: list[tuple[str, int]]) -> pl.DataFrame:
    """A trades file of account A: (side, quantity) per line, from line 2, named as a run does."""
    frame = pl.DataFrame(
        {
            "row": list(range(2, len(rows) + 2)),
            "ref": [f"row:{n}" for n in range(2, len(rows) + 2)],
            "account": ["A"] * len(rows),
            "symbol": ["UUU"] * len(rows),
            "side": [side for side, _ in rows],
            "quantity": [Decimal(q) for _, q in rows],
            "price": [Decimal(10)] * len(rows),
            "trade_date": [DAY] * len(rows),
        }
    )
    return _name_rows(conform(frame, "trades"), DAY, "trades")


def content(rec: dict[str, object]) -> tuple[object, ...]:
    return tuple(sorted((k, str(v)) for k, v in rec.items() if k != "ref"))


records = st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 4))


@settings(max_examples=150, deadline=None)
@given(
    first=st.lists(records, min_size=1, max_size=6),
    data=st.data(),
)
def test_a_record_keeps_its_name_whatever_its_line(
    first: list[tuple[str, int]], data: st.DataObject
) -> None:
    earlier = named(first)
    # each earlier record an open break of its own, as the breaks keep them
    open_rows = [SimpleNamespace(venue_records=json.dumps([rec])) for rec in _records_json(earlier)]
    kept = data.draw(st.lists(st.sampled_from(first), max_size=8)) if first else []
    later_rows = data.draw(st.permutations([*kept, *data.draw(st.lists(records, max_size=3))]))
    later = _keep_names(named(later_rows), open_rows, "trades")
    names = later["ref"].to_list()
    assert len(set(names)) == len(names)  # no two records of the file share a name
    assert all(breaks.is_row_ref(n) for n in names)
    before = {rec["ref"]: content(rec) for rec in _records_json(earlier)}
    now = [content(rec) for rec in _records_json(later)]
    # a name that an earlier record had names a record of the same content now, unless no
    # record of that content is left to take it... (a line corrected in place replaces it)
    for name, what in zip(names, now, strict=True):
        if name in before and before[name] != what:
            # the line's record was replaced: no record of the file has the replaced content
            # unless that content is held by other names enough to take every such record
            assert Counter(now)[before[name]] <= sum(c == before[name] for c in before.values())
    # every earlier record's content still in the file is on one of its earlier names, as many
    # times as both have it
    for what, count in Counter(before.values()).items():
        on_names = sum(
            1 for n, w in zip(names, now, strict=True) if w == what and before.get(n) == what
        )
        assert on_names == min(count, Counter(now)[what])
    # records the earlier file did not have keep their own line's name or a name of their own
    for name, what, line in zip(names, now, later["row"].to_list(), strict=True):
        if what not in before.values():
            assert name == f"{DAY}/A/row:{line}" or name.startswith(f"{DAY}/A/row:{line}+")
